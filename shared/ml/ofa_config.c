/*
 * ofa_config: Forward-OFA's budget classes and its configuration's check
 * and defaults (ofa_config.h). Pure functions and constant tables; moved
 * out of ofa.c so that nothing below the model needs the model's file.
 */
#include <errno.h>
#include <string.h>

#include "shared/data/sample.h"
#include "shared/ml/ctr.h"
#include "shared/ml/ofa_base.h"
#include "shared/ml/ofa_config.h"
#include "shared/ml/ofa_ctrl.h"
#include "shared/ml/ofa_duet.h"

/* x0 at most: every field, side field and pair dot, and the FM term */
#define OFA_N_FMAX	(CTR_N_FIELDS + SAMPLE_SIDE_MAX)
#define OFA_MAX_IN	(OFA_N_FMAX * CTR_MAX_DIM + \
	OFA_N_FMAX * (OFA_N_FMAX - 1) / 2 + 1)

const double ofa_class_budget[OFA_N_CLASSES] = { 0.25, 0.5, 1.0 };
const char *const ofa_class_name[OFA_N_CLASSES] = { "low", "mid", "high" };


int
ofa_class_find(const char *name)
{
	for (int i = 0; i < OFA_N_CLASSES; i++)
		if (strcmp(name, ofa_class_name[i]) == 0)
			return i;
	return -1;
}

int
ofa_config_check(const struct ofa_config *c)
{
	if (c == NULL)
		return -EINVAL;
	if (c->in_dim < 1 || c->in_dim > OFA_MAX_IN || c->z_dim < 1 ||
	    c->z_dim > CTR_MAX_DIM)
		return -EINVAL;
	if (c->n_side < 0 || c->n_side > SAMPLE_SIDE_MAX ||
	    c->interaction < CTR_INTER_OFF || c->interaction > CTR_INTER_FM ||
	    (c->interaction == CTR_INTER_FM && c->in_dim < 2) ||
	    c->ctrl_hidden < 0 || c->ctrl_hidden > OFA_CTRL_MAX_HIDDEN ||
	    c->gen_hidden < 0 || c->gen_hidden > OFA_DUET_MAX_HIDDEN ||
	    c->ctr_base < 0 || c->ctr_base > 1 ||
	    (c->ctr_base && c->interaction != CTR_INTER_FM))
		return -EINVAL;
	if (c->hidden < 1 || c->hidden > OFA_MAX_DIM || c->inner < 1 ||
	    c->inner > OFA_MAX_DIM)
		return -EINVAL;
	if (c->n_blocks < 1 || c->n_blocks > OFA_MAX_BLOCKS)
		return -EINVAL;
	if (c->rank < 1 || c->rank > OFA_MAX_RANK)
		return -EINVAL;
	if (c->hist_k < 0 || c->hist_k > SAMPLE_HIST_MAX)
		return -EINVAL;
	return 0;
}

void
ofa_config_default(struct ofa_config *c, const struct ctr *emb)
{
	const struct ctr_config *cc = ctr_config(emb);

	memset(c, 0, sizeof(*c));
	c->n_side = (int)cc->n_side;
	c->interaction = cc->interaction;
	c->in_dim = ofa_input_dim(emb);
	c->z_dim = cc->dim;
	c->hidden = 64;
	c->inner = 64;
	c->n_blocks = 4;
	c->rank = 8;
	c->hist_k = cc->hist_k;
	c->ctr_base = cc->interaction == CTR_INTER_FM;
}
