/*
 * ofa_config: Forward-OFA's sizes and limits (struct ofa_config, the
 * OFA_* bounds) and its budget classes, below the model (ofa.c) and its
 * helpers, so that they depend on these and not on the model.
 */
#ifndef SHARED_OFA_CONFIG_H
#define SHARED_OFA_CONFIG_H

struct ctr;

#define OFA_MAX_BLOCKS	16
#define OFA_MAX_DIM	1024
#define OFA_MAX_RANK	64
#define OFA_MAX_TENSORS	(12 + 8 * OFA_MAX_BLOCKS)
#define OFA_NB		1	/* budget features fed to the controller */
#define OFA_N_CLASSES	3	/* low, mid, high */

struct ofa_config {
	int	in_dim;		/* C0 = 6D of the CTR model */
	int	z_dim;		/* Z = D */
	int	hidden;		/* H: residual stream width */
	int	inner;		/* F: block inner width */
	int	n_blocks;	/* L */
	int	rank;		/* R: mapper rank */
	int	hist_k;		/* K: behaviour length (== CTR hist_k) */
	/*
	 * Since OFA format 2 (ofa_io); all zero = the format-1 model.
	 * n_side, interaction: the CTR base's options (ofa_input_dim): its
	 * side fields and, with interaction, its field dots join x0, and with
	 * CTR_INTER_FM its FM term (fm_w . dots, frozen) is x0's last column
	 * and is added to the logit, so OFA starts from what the base model
	 * knows. ctrl_hidden > 0: the behaviour controller (ofa_ctrl.h);
	 * gen_hidden > 0: the DUET-style generator (ofa_duet.h).
	 */
	int	n_side;
	int	interaction;	/* enum ctr_inter of the base */
	int	ctrl_hidden;	/* Hc */
	int	gen_hidden;	/* Hg */
	/*
	 * Since OFA format 3, needs CTR_INTER_FM: x0's last column is the
	 * CTR model's whole logit instead of its FM term (ofa_inputs_base),
	 * and the head starts at 0, so OFA is the deployed CTR model plus a
	 * learnt residual and starts equal to it.
	 */
	int	ctr_base;
};

/* The budget shares of the classes "low", "mid", "high". */
extern const double ofa_class_budget[OFA_N_CLASSES];
extern const char *const ofa_class_name[OFA_N_CLASSES];
/* Class index of name, or -1. */
int	ofa_class_find(const char *name);

int	ofa_config_check(const struct ofa_config *cfg);
/* Fills cfg for a CTR model: H 64, F 64, L 4, R 8; ctr_base with fm. */
void	ofa_config_default(struct ofa_config *cfg, const struct ctr *emb);

#endif
