/*
 * item_prior: the model's fixed per-item logit offset (item_prior.h).
 */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "shared/data/dataset.h"
#include "shared/ml/ctr.h"
#include "shared/ml/item_prior.h"
#include "shared/xmalloc.h"

int
ctr_item_prior_fit(struct ctr *m, const struct dataset *ds,
    const uint32_t *idx, size_t n, double k, double w)
{
	const struct ctr_config *cfg = ctr_config(m);
	const struct param_tensor *t = ctr_tensor_find(m, "item_prior");
	double *pos, *cnt, all = 0, g, lg;
	uint32_t I = cfg->n_items;

	if (t == NULL || !(k > 0))
		return -EINVAL;
	pos = xcalloc((size_t)I + 1, sizeof(double));
	cnt = xcalloc((size_t)I + 1, sizeof(double));
	for (size_t j = 0; j < n; j++) {
		const struct sample *s = &ds->s[idx[j]];

		all += s->label;	/* the global rate counts every sample */
		if (s->item >= I)
			continue;	/* the OOV row stays 0 */
		pos[s->item] += s->label;
		cnt[s->item] += 1;
	}
	g = n > 0 ? all / (double)n : 0;
	memset(t->data, 0, t->n * sizeof(float));
	if (g > 0 && g < 1) {
		lg = log(g / (1 - g));
		for (uint32_t i = 0; i < I; i++) {
			double r = (pos[i] + k * g) / (cnt[i] + k);

			t->data[i] = (float)(w * (log(r / (1 - r)) - lg));
		}
	}
	free(pos);
	free(cnt);
	return 0;
}

struct ctr *
ctr_item_prior_drop(const struct ctr *m)
{
	struct ctr_config cfg = *ctr_config(m);
	struct ctr *o = NULL;

	if (!cfg.item_prior)
		return NULL;
	cfg.item_prior = 0;
	if (ctr_new_zero(&o, &cfg) != 0)
		return NULL;
	for (int i = 0; i < ctr_num_tensors(o); i++) {
		const struct param_tensor *d = ctr_tensor_at(o, i);
		const struct param_tensor *s = ctr_tensor_find(m, d->name);

		/* the same config but for the prior: same names and sizes */
		memcpy(d->data, s->data, d->n * sizeof(float));
	}
	return o;
}
