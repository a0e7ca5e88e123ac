/*
 * encoder_dev: personal rows for cold users from the shipped encoder or the
 * unknown-user rows (encoder_dev.h).
 */
#include <stdlib.h>
#include <string.h>

#include "deviced/deviced.h"
#include "deviced/encoder_dev.h"
#include "shared/ml/ctr.h"
#include "shared/ml/encoder.h"
#include "shared/xmalloc.h"

static const struct {
	const char	*name;
	int		 start;
	const char	*method;	/* learn.c's methods[] */
} rows[] = {
	{ "oov", ENCDEV_OOV, "cloud" },
	{ "enc", ENCDEV_ENC, "cloud" },
	{ "oov-mp", ENCDEV_OOV, "mp-fb" },
	{ "enc-mp", ENCDEV_ENC, "mp-fb" },
	{ "enc-ft", ENCDEV_ENC, "ft-fb" },
};

struct ctr *
encoder_dev_start(const struct device *d, int start, int *applied)
{
	struct ctr *c = ctr_clone(d->model);
	const struct ctr_config *cfg = ctr_config(c);
	float r[ENC_MAX_OUT], x[ENC_MAX_IN];
	int ok = start != ENCDEV_CLOUD && enc_rows_untrained(c, d->user);

	if (ok && start == ENCDEV_ENC && (d->enc == NULL ||
	    enc_check(d->enc, c) != 0))
		ok = 0;
	if (ok && start == ENCDEV_OOV) {
		enc_rows_get(c, cfg->n_users, r);
		enc_rows_set(c, d->user, r);
	} else if (ok) {
		uint32_t *idx = xcalloc(d->local.n + 1, sizeof(uint32_t));
		for (size_t i = 0; i < d->local.n; i++)
			idx[i] = (uint32_t)i;
		enc_features(c, &d->local, idx, d->local.n, x);
		enc_apply(d->enc, x, r);
		enc_rows_set(c, d->user, r);
		free(idx);
	}
	if (applied != NULL)
		*applied = ok;
	return c;
}

const char *
encoder_dev_view(const struct device *d, const char *name,
    struct device *dv)
{
	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++)
		if (strcmp(rows[i].name, name) == 0) {
			*dv = *d;
			dv->model = encoder_dev_start(d, rows[i].start, NULL);
			return rows[i].method;
		}
	return NULL;
}

void
encoder_dev_view_fini(struct device *dv)
{
	ctr_free(dv->model);
	dv->model = NULL;
}
