/*
 * learn_diag: diagnostic rows of the evaluation matrix (learn_diag.h).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "deviced/app.h"
#include "deviced/deviced.h"
#include "deviced/learn.h"
#include "deviced/learn_diag.h"
#include "shared/ml/ctr.h"
#include "shared/ml/encoder.h"
#include "shared/data/dataset.h"
#include "shared/xmalloc.h"

/* A fit on the test queries themselves (in-sample): the method inner
 * with a wider grid (learning rates x3, steps x4). */
static struct ctr *
ceiling(const struct learn_in *in, const struct dataset *q, const char *inner)
{
	struct deviced_conf cf = *in->cf;
	struct learn_in ein = *in;
	struct learn_prep p;
	struct learn_choice ch;
	struct dataset none;
	struct ctr *c;
	double secs, mem;

	cf.ft_lr *= 3;
	cf.lr *= 3;
	cf.ft_steps *= 4;
	cf.steps *= 4;
	cf.coda = 0;
	dataset_init(&none);
	ein.cf = &cf;
	ein.local = q;
	ein.retrieved = &none;
	ein.need_coda = 0;
	learn_prep_init(&p, &ein, &none);
	c = learn_method_run(&p, inner, NULL, &ch, &secs, &mem);
	learn_prep_fini(&p);
	dataset_fini(&none);
	return c;
}

int
learn_diag(struct device *d, const struct learn_in *in, const char *nm,
    const struct dataset *q, FILE *f)
{
	struct dataset qq;
	struct ctr *c = NULL;
	float *pr;
	size_t n = q->n;

	if (strncmp(nm, "diag-", 5) != 0)
		return 0;
	dataset_init(&qq);
	for (size_t i = 0; i < n; i++)
		(void)dataset_append(&qq, &q->s[i], sample_hist(q, &q->s[i]),
		    q->s[i].hist_n);
	qq.n_users = q->n_users;
	qq.n_items = q->n_items;
	qq.n_genres = q->n_genres;
	qq.n_side = q->n_side;
	memcpy(qq.side_card, q->side_card, sizeof(qq.side_card));
	if (strcmp(nm, "diag-nohist") == 0) {
		for (size_t i = 0; i < qq.n; i++)
			qq.s[i].hist_n = 0;
		c = ctr_clone(in->model);
	} else if (strcmp(nm, "diag-hide-rows") == 0) {
		/* A warm user as a cold one would look: their trained rows
		   replaced by the unknown-user rows (what those rows give). */
		float o[ENC_MAX_OUT];
		int nin, nout;
		c = ctr_clone(in->model);
		if (enc_shape(c, &nin, &nout) == 0) {
			enc_rows_get(c, ctr_config(c)->n_users, o);
			enc_rows_set(c, d->user, o);
		}
	} else if (strcmp(nm, "diag-ceil-ft") == 0)
		c = ceiling(in, &qq, "ft-cv");
	else if (strcmp(nm, "diag-ceil-mp") == 0)
		c = ceiling(in, &qq, "mp-cv");
	if (c == NULL) {
		dataset_fini(&qq);
		return 1;	/* an unknown diagnostic: no rows */
	}
	pr = xcalloc(n + 1, sizeof(float));
	(void)app_score(c, &qq, pr);
	for (size_t i = 0; i < n; i++) {
		const struct sample *s = &d->test.s[i];
		fprintf(f, "%s,%u,%u,%g,%.9g\n", nm, s->user, s->item,
		    s->label, pr[i]);
	}
	free(pr);
	ctr_free(c);
	dataset_fini(&qq);
	return 1;
}
