/*
 * ofa: the Forward-OFA model (shared/ml/README.md, section 4): a backbone of L
 * residual MLP blocks whose structure (which blocks are assembled) and
 * parameters are computed from the device's recent behaviour and budget in
 * one forward pass, with no backpropagation on the device.
 *
 *   x0 (B,C0)  input = the CTR model's embedding concat [user | item |
 *              genre bag | hour | wday | behaviour] (C0 = 6D). The OFA
 *              model reuses the embedding tables of the CTR model it was
 *              trained on (frozen), so a device that already holds that
 *              CTR model downloads only the OFA head and its blocks.
 *   z  (B,Z)   behaviour encoding = mean item embedding of the last K
 *              positive interactions (Z = D).
 *   b  (B)     budget: the share of the blocks' FLOPs the device may run,
 *              in (0, 1] (low 0.25, mid 0.5, high 1.0 by default).
 *
 *   stem       x = relu(Ws x0 + bs)                          (B,H)
 *   controller c_l = wc_l . [z, b] + bc_l; gate_l = 1[sigma(c_l) > 1/2],
 *              then projected onto the budget (blocks by descending c_l
 *              while the summed cost stays <= b); straight-through
 *              gradient d c_l = d gate_l * sigma'(c_l)
 *   mapper     g_l = Wg_l z + bg_l                            (B,R)
 *              one generator per block (own parameters, so blocks get no
 *              conflicting gradients through a shared generator)
 *   block l    pre = (W_l + A_l diag(g_l) Bm_l) x + b_l         (B,F)
 *              x  <- x + gate_l (V_l relu(pre) + c_l)
 *   head       logit = wo . x + bo
 *   loss       BCE(logit, y) + mu * sum_l cost_l gate_l / b  (mean over B)
 *
 * The cost penalty is scaled by 1/b, so the same block costs a low-budget
 * device more; the budget projection makes the constraint hard.
 *
 * Parameter layout: one float buffer. The "base" tensors (stem, head and
 * the controller of every block) come first, then every block's tensors
 * contiguously (w, b, a, bm, v, c, gw, gb), so a block is one slice and can
 * be shipped on its own (ofa_io). A model may hold only some blocks
 * (ofa_has_block): a device that downloaded only the blocks it assembles.
 *
 * Ownership: ofa_new returns a model freed with ofa_free; struct
 * ofa_assembled is caller-owned (ofa_assembled_fini). Threads: one thread
 * per model at a time (scratch); const functions only read.
 */
#ifndef SHARED_OFA_H
#define SHARED_OFA_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "shared/data/sample.h"
#include "shared/ml/ofa_base.h"
#include "shared/ml/ofa_config.h"
#include "shared/ml/param.h"

struct ctr;

struct ofa;

/* Allocates and initialises from seed; all blocks present. */
int	ofa_new(struct ofa **out, const struct ofa_config *cfg, uint64_t seed);
void	ofa_free(struct ofa *m);
struct ofa *ofa_clone(const struct ofa *m);
const struct ofa_config *ofa_config(const struct ofa *m);

/* A tensor is a struct param_tensor (shared/ml/param.h): block is its
 * block, -1 for the base section. */

size_t	ofa_num_params(const struct ofa *m);
float	*ofa_params(const struct ofa *m);
float	*ofa_grads(const struct ofa *m);
int	ofa_num_tensors(const struct ofa *m);
const struct param_tensor *ofa_tensor_at(const struct ofa *m, int i);
const struct param_tensor *ofa_tensor_find(const struct ofa *m,
	    const char *name);
/* Floats of the base section and of one block. */
size_t	ofa_base_params(const struct ofa *m);
size_t	ofa_block_params(const struct ofa *m);
/* Whether block l's parameters are present (downloaded). */
int	ofa_has_block(const struct ofa *m, int l);
void	ofa_set_has_block(struct ofa *m, int l, int has);

/*
 * Gate mode: OFA_GATE_HARD (default: threshold + budget projection,
 * straight-through gradient) or OFA_GATE_SOFT (gate = sigma(c), no
 * projection; the exact gradient, for the gradient check in tests).
 */
/*
 * OFA_GATE_STATIC: the static backbone (all blocks, g = 0: no controller,
 * no mapper), trained and served as the baseline of Forward-OFA.
 */
/*
 * OFA_GATE_ALL: every block, mapper on, no controller (the DUET-style
 * variant, which chooses no structure).
 */
enum { OFA_GATE_HARD = 0, OFA_GATE_SOFT, OFA_GATE_STATIC, OFA_GATE_ALL };
void	ofa_set_gate_mode(struct ofa *m, int mode);

/* ---- inputs -------------------------------------------------------------- */

/*
 * Gathers x0 (B,C0) and z (B,Z) for ds->s[idx[0..B)] from the embedding
 * tables of the CTR model emb (frozen). z is the behaviour slice of x0.
 * x0 = [user | item | genre bag | hour | wday | behaviour | emb's side
 * fields | with interaction its field dots | with fm its FM term]; the
 * behaviour is always the mean pooling. C0 = ofa_input_dim(emb).
 */
/* ofa_input_dim(emb), C0: ofa_base.h */
/* 0 if m's input options are emb's (ofa_inputs fits), else -EINVAL. */
int	ofa_fits_ctr(const struct ofa *m, const struct ctr *emb);
void	ofa_inputs(const struct ctr *emb, const struct dataset *ds,
	    const uint32_t *idx, int B, float *x0, float *z);
/*
 * ofa_inputs for m: with m's ctr_base, x0's last column is then emb's
 * logit (ctr_logits, which needs emb writable: its scratch), so OFA's
 * logit is the CTR model's plus its residual. What every caller that
 * serves or trains m uses. Returns 0 or ctr_logits' error.
 */
int	ofa_inputs_base(const struct ofa *m, struct ctr *emb,
	    const struct dataset *ds, const uint32_t *idx, int B, float *x0,
	    float *z);
/*
 * Device behaviour encoding: z (Z) = mean item embedding of the last K of
 * items (n, oldest first), i.e. of the device's most recent positives.
 */
void	ofa_behaviour(const struct ctr *emb, const uint32_t *items, size_t n,
	    int K, float *z);
/*
 * The most recent behaviour of a device with local samples ds (time
 * order): the last sample's history plus the sample itself if positive.
 * items (SAMPLE_HIST_MAX + 1) out; returns the count.
 */
size_t	ofa_recent_items(const struct dataset *ds, uint32_t *items);

/* ---- training ------------------------------------------------------------- */

/*
 * Forward with per-sample gates. x0 (B,C0), z (B,Z), budget (B).
 * gates (B,L) out, may be NULL; logits (B) out, may be NULL.
 * Every block is computed (the straight-through gradient of an unassembled
 * block needs its output), so all blocks must be present.
 * Returns 0 or -EINVAL.
 */
int	ofa_forward(struct ofa *m, const float *x0, const float *z,
	    const float *budget, int B, float *gates, float *logits);
/*
 * Backward of BCE + mu * penalty for the last forward; y (B) targets.
 * Accumulates into the gradients (zero them with ofa_zero_grad).
 * *loss (may be NULL) gets the mean BCE, *pen the mean penalty.
 */
int	ofa_backward(struct ofa *m, const float *y, double mu, double *loss,
	    double *pen);
void	ofa_zero_grad(struct ofa *m);
/* Adam step (lr, wd decoupled) over all parameters. */
void	ofa_adam_step(struct ofa *m, float lr, float wd);

struct ofa_train_opts {
	int		 epochs, batch, patience;
	float		 lr, wd;
	double		 mu;		/* cost penalty weight */
	uint64_t	 seed;
	atomic_int	*stop;		/* may be NULL */
	void		(*progress)(void *arg, int epoch, double loss,
			    double val_loss, double blocks);
	void		*progress_arg;
};

struct ofa_train_stats {
	double	train_loss, val_loss;	/* BCE */
	double	blocks[OFA_N_CLASSES];	/* mean blocks per class on val */
	int	epochs, best_epoch;
};

void	ofa_train_opts_default(struct ofa_train_opts *o);
/*
 * Trains on ds->s[idx[0..n)] with budgets sampled per sample from the
 * three classes; early stopping on the mean val logloss over the classes.
 * The CTR model emb supplies the (frozen) embeddings. Returns 0,
 * -EINVAL, -ECANCELED or -ERANGE (as ctr_train).
 */
int	ofa_train(struct ofa *m, const struct ctr *emb,
	    const struct dataset *ds, const uint32_t *idx, size_t n,
	    const uint32_t *val, size_t nval, const struct ofa_train_opts *o,
	    struct ofa_train_stats *stats);
/*
 * Per-sample inference (each sample's own z, the given budget): out (n)
 * probabilities; blocks (may be NULL) gets the mean assembled blocks.
 */
int	ofa_predict(struct ofa *m, const struct ctr *emb,
	    const struct dataset *ds, const uint32_t *idx, size_t n,
	    double budget, float *out, double *blocks);

/* ---- device: forward-only adaptation -------------------------------------- */

/*
 * A model assembled for one device: the chosen blocks with their generated
 * weights materialised (W_l + A_l diag(g_l(z)) Bm_l), so that serving costs
 * exactly the assembled blocks and nothing of the mapper.
 */
struct ofa_assembled {
	int	 n_blocks;		/* assembled */
	int	 block[OFA_MAX_BLOCKS];	/* which, in backbone order */
	float	 gate_logit[OFA_MAX_BLOCKS];	/* c_l of every block */
	int	 C0, H, F;
	int	 fm;			/* add x0's last column to the logit */
	float	*buf;			/* one allocation for all below */
	float	*stem_w, *stem_b, *out_w, *out_b;	/* copies */
	float	*w[OFA_MAX_BLOCKS], *b[OFA_MAX_BLOCKS];	/* (F,H) (F) */
	float	*v[OFA_MAX_BLOCKS], *c[OFA_MAX_BLOCKS];	/* (H,F) (H) */
	size_t	 cap;
};

void	ofa_assembled_init(struct ofa_assembled *a);
void	ofa_assembled_fini(struct ofa_assembled *a);
/*
 * Which blocks a device with behaviour z (Z) and budget assembles: the
 * controller and the budget projection only (needs the base section, not
 * the blocks). mask (L) out; returns the count.
 */
int	ofa_select(const struct ofa *m, const float *z, double budget,
	    int *mask, float *gate_logit);
/*
 * The device's one forward pass: structure (ofa_select) and parameters
 * (the mapper of each assembled block) from z and budget. Returns 0, or
 * -ENOENT if a selected block is not present in m.
 */
int	ofa_assemble(const struct ofa *m, const float *z, double budget,
	    struct ofa_assembled *a);
/*
 * The same for a given structure mask (L): the parameters of those blocks
 * from z. Used to serve with z recomputed per impression on the blocks a
 * device holds. Returns 0 or -ENOENT (a block of mask not present).
 */
int	ofa_assemble_mask(const struct ofa *m, const float *z, const int *mask,
	    struct ofa_assembled *a);
/*
 * Serving: logits or probabilities for x0 (B,C0) with an assembled model.
 * scratch (2 * H + F floats) caller-provided. Any thread (a is read).
 */
void	ofa_assembled_logits(const struct ofa_assembled *a, const float *x0,
	    int B, float *out, float *scratch);
/* Floating-point operations of one prediction with a (as ctr_flops). */
double	ofa_assembled_flops(const struct ofa_assembled *a);
/* FLOPs of the device adaptation (controller + mapper + materialising). */
double	ofa_adapt_flops(const struct ofa *m, int n_assembled);
/*
 * Extra FLOPs of one prediction with z recomputed for that impression and
 * n_assembled blocks, without materialising: the controller (none under
 * OFA_GATE_ALL/STATIC), the generator layer, and per block the mapper
 * applied as A (g * (Bm x)).
 */
double	ofa_impression_flops(const struct ofa *m, int n_assembled);
/* FLOPs of the embedding pooling per prediction (added by callers). */
double	ofa_input_flops(const struct ctr *emb);
/*
 * What m's x0 costs per prediction: ofa_input_flops, or with ctr_base the
 * CTR model's whole forward (ctr_flops), which makes the same inputs.
 */
double	ofa_in_flops(const struct ofa *m, const struct ctr *emb);
/* FLOPs per prediction with all L blocks (per-sample mapper excluded). */
double	ofa_full_flops(const struct ofa *m);
/* Budget share for a FLOP budget per prediction (clipped to [0, 1]). */
double	ofa_budget_from_flops(const struct ofa *m, double flops);

#endif
