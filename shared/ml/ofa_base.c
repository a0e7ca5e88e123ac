/*
 * ofa_base: Forward-OFA's inputs from its CTR base model's options (see
 * ofa_base.h). Kept apart from ofa.c: it follows ctr.c's input layout
 * (gather_embed, dots_forward), not OFA's own model.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "shared/data/dataset.h"
#include "shared/ml/ctr.h"
#include "shared/ml/ofa_base.h"

static uint32_t
map_id(uint32_t id, uint32_t n)
{
	return id < n ? id : n;
}

static const float *
emb_table(const struct ctr *emb, const char *name)
{
	const struct param_tensor *t = ctr_tensor_find(emb, name);

	return t != NULL ? t->data : NULL;
}

int
ofa_input_dim(const struct ctr *emb)
{
	const struct ctr_config *c = ctr_config(emb);
	int F = CTR_N_FIELDS + (int)c->n_side;

	return F * c->dim + (c->interaction ? F * (F - 1) / 2 : 0) +
	    (c->interaction == CTR_INTER_FM);
}

/*
 * The side fields, dots and FM term of x (one row of width C0) after its
 * six fixed fields, as ctr's gather_embed and dots_forward make them.
 */
void
ofa_inputs_extra(const struct ctr *emb, const struct dataset *ds,
    const struct sample *s, float *x)
{
	const struct ctr_config *c = ctr_config(emb);
	int D = c->dim, F = CTR_N_FIELDS + (int)c->n_side;
	float *p = x + (size_t)F * D;
	const float *fw = NULL;
	double fm = 0;

	for (uint32_t f = 0; f < c->n_side; f++) {
		char nm[24];
		const float *t;
		uint32_t v = f < ds->n_side ? s->side[f] : c->side_card[f];
		snprintf(nm, sizeof(nm), "emb_side%u", f);
		t = emb_table(emb, nm);
		memcpy(x + (size_t)(CTR_N_FIELDS + f) * D, t +
		    (size_t)map_id(v, c->side_card[f]) * D,
		    (size_t)D * sizeof(float));
	}
	if (!c->interaction)
		return;
	if (c->interaction == CTR_INTER_FM)
		fw = emb_table(emb, "fm_w");
	for (int i = 0, k = 0; i < F; i++)
		for (int j = i + 1; j < F; j++, k++) {
			float acc = 0.0f;
			for (int e = 0; e < D; e++)
				acc += x[i * D + e] * x[j * D + e];
			*p++ = acc;
			if (fw != NULL)
				fm += (double)fw[k] * acc;
		}
	if (fw != NULL)
		*p = (float)fm;
}

