/*
 * ctr: the CTR model. Embeddings of [user, item, genre bag, hour, weekday,
 * behaviour, side fields] are concatenated (F = 6 + n_side fields, F*D
 * floats), optionally followed by the F(F-1)/2 pairwise dot products of
 * those field embeddings (interaction), then an MLP with ReLU hidden
 * layers (up to CTR_MAX_LAYERS), a MetaPatch h' = h + U diag(m_user) V h on
 * every hidden layer's output when patch_rank > 0, a final linear to one
 * logit plus, with the patch, a per-user bias b_user ("patch_b",
 * CTR_T_PATCH_B: it moves with m and starts at 0), sigmoid and BCE.
 *
 *   behaviour = mean item embedding of the sample's last hist_k history
 *               items (zero vector if none); the item table is shared by the
 *               item field and the behaviour field. With attention, a
 *               weighted sum instead: a_j = softmax_j(D h_j . (W t)) over the
 *               history items h_j, t the target item's embedding, W (D,D)
 *               "att_w" starting at 0 (so at first it is the mean).
 *   side f    = embedding of sample.side[f] in its own table "emb_side<f>"
 *               of side_card[f] + 1 rows (value >= side_card[f]: the OOV
 *               row, which starts at zero).
 *   interaction = e_i . e_j for every pair p of the F field vectors above,
 *               fed to the MLP as DLRM does (CTR_INTER_MLP), and with
 *               CTR_INTER_FM also straight to the logit as a field-weighted
 *               FM term sum_p r_p (e_i . e_j), r "fm_w" (P) starting at 1.
 *   genre bag = mean genre embedding over the set bits of sample.genres
 *               below n_genres (zero vector if none; higher bits ignored).
 *
 * Out-of-range ids: the user, item and MetaPatch m tables have one extra,
 * reserved OOV row (row n_users / n_items); any user id >= n_users or item
 * id >= n_items (field or history) reads and trains that row. OOV rows start
 * at zero. Hours and weekdays are always in range (sample_hour/sample_wday).
 *
 * Parameters live in one float buffer with named tensors (llm.c's
 * malloc_and_point_parameters), gradients in a second buffer with the same
 * layout; Adam moments are allocated on the first Adam step. Embedding and
 * m tables are "sparse": backward records which rows it touched, zero_grad
 * and step visit only those rows (SGD and lazy Adam: untouched rows keep
 * their moments and get no weight decay for that step; the bias-correction
 * step counter is global).
 *
 * Ownership: ctr_new/ctr_clone return a model the caller frees with
 * ctr_free. Pointers returned by ctr_params/ctr_tensor_* point into the
 * model and live as long as it does.
 * Threads: a model is used by one thread at a time; forward, backward,
 * step, train, predict and eval write the model's scratch buffers. Functions
 * taking `const struct ctr *` only read, and may run concurrently with each
 * other (not with a writer). Distinct models are independent. BLAS threads
 * are the caller's business (openblas_set_num_threads).
 */
#ifndef SHARED_CTR_H
#define SHARED_CTR_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "shared/data/sample.h"
#include "shared/ml/param.h"

#define CTR_MAX_LAYERS	4
#define CTR_MAX_TENSORS	48
#define CTR_MAX_USERS	(1u << 24)	/* sane bounds, checked by */
#define CTR_MAX_ITEMS	(1u << 24)	/* ctr_config_check */
#define CTR_MAX_DIM	256
#define CTR_MAX_HIDDEN	4096
#define CTR_MAX_RANK	64		/* == KERN_RANK_MAX */
#define CTR_MAX_PARAMS	((size_t)1 << 28)	/* floats; 1 GiB */
#define CTR_N_FIELDS	6		/* fixed fields; + n_side side fields */
#define CTR_MAX_SIDE_CARD (1u << 24)	/* rows of one side table */

struct ctr_config {
	uint32_t n_users;	/* ids < n_users; others use the OOV row */
	uint32_t n_items;
	uint32_t n_genres;	/* <= SAMPLE_GENRES_MAX */
	int	 dim;		/* D */
	int	 hist_k;	/* K, 0..SAMPLE_HIST_MAX */
	int	 n_hidden;	/* 0..CTR_MAX_LAYERS */
	int	 hidden[CTR_MAX_LAYERS];
	int	 patch_rank;	/* R, 0 = no MetaPatch */
	/* Since model format 2 (ctr_io); all zero = the format-1 model. */
	int	 interaction;	/* enum ctr_inter */
	int	 attention;	/* 1 = target attention pools the behaviour */
	uint32_t n_side;	/* side fields, <= SAMPLE_SIDE_MAX */
	uint32_t side_card[SAMPLE_SIDE_MAX];	/* values per side field */
	/*
	 * Since model format 3: 1 = a fixed per-item logit offset
	 * "item_prior" (n_items + 1 rows, the OOV row 0) added to the logit,
	 * set from the training samples' smoothed click rates
	 * (ctr_item_prior_fit, item_prior.h) and never trained.
	 */
	int	 item_prior;
	/*
	 * A device's slice (issue 14, ctr_slice.h): the per-user tables
	 * (emb_user, patch_m<l>, patch_b) hold two rows, user slice_user's
	 * (row 0) and the OOV row (row 1); n_users stays the cloud model's.
	 */
	int	 sliced;
	uint32_t slice_user;
};

/* The pairwise interaction term (see above). */
enum ctr_inter {
	CTR_INTER_OFF = 0,
	CTR_INTER_MLP,		/* field dots as MLP inputs */
	CTR_INTER_FM,		/* ... and a weighted FM term in the logit */
};

/* Which parameters a backward/step may change. */
enum ctr_sel {
	CTR_SEL_ALL = 0,
	CTR_SEL_METAPATCH_ONLY,	/* only the per-user m and bias (device) */
	CTR_SEL_NO_PATCH,	/* all but the m and bias tables (cloud) */
	CTR_SEL_BIAS_ONLY,	/* only the per-user bias (device) */
	CTR_SEL_PATCH_UV,	/* only the shared U, V (cloud: DCCL's second
				   step, distilled from the device models) */
};

enum ctr_tkind {
	CTR_T_BASE = 0,		/* embeddings, MLP, output layer */
	CTR_T_PATCH_UV,		/* shared MetaPatch U, V */
	CTR_T_PATCH_M,		/* per-user MetaPatch m table */
	CTR_T_PATCH_B,		/* per-user logit bias (with the patch) */
	CTR_T_FIXED,		/* set once, never trained (item_prior) */
};

/* Whether selection sel trains tensors of kind k. */
int	ctr_sel_trains(enum ctr_sel sel, enum ctr_tkind k);

/*
 * A tensor is a struct param_tensor (shared/ml/param.h): kind is its enum
 * ctr_tkind, block is -1.
 */

enum ctr_optim { CTR_OPT_SGD = 0, CTR_OPT_ADAM };

struct ctr_opt {
	enum ctr_optim	 kind;
	float		 lr;
	float		 beta1, beta2, eps;	/* Adam only */
	float		 wd;	/* SGD: L2; Adam: decoupled (AdamW) */
};

struct ctr;

/* Fills *o with lr and the usual defaults (0.9, 0.999, 1e-8, wd 0). */
void	ctr_opt_default(struct ctr_opt *o, enum ctr_optim kind, float lr);

/*
 * Checks ranges and that the parameter count is below CTR_MAX_PARAMS.
 * Returns 0 or -EINVAL. Any thread.
 */
int	ctr_config_check(const struct ctr_config *cfg);
/* Rows of the per-user tables: n_users + 1, or 2 in a slice. */
size_t	ctr_config_user_rows(const struct ctr_config *cfg);
/*
 * The per-user tables' row of user id: id < n_users ? id : n_users (the
 * OOV row); in a slice 0 for slice_user (when < n_users), else 1.
 */
uint32_t ctr_config_user_row(const struct ctr_config *cfg, uint32_t id);
/* Parameter count of a valid config (no allocation). */
size_t	ctr_config_num_params(const struct ctr_config *cfg);
/* Width of the MLP input: F*D plus F(F-1)/2 with interaction. */
int	ctr_config_input_dim(const struct ctr_config *cfg);

/*
 * Allocates a model and initialises it from seed (embeddings N(0, 0.05),
 * OOV rows 0, linear layers U(+-1/sqrt(fan_in)), patch U N(0, 1/sqrt(R)),
 * V N(0, 1/sqrt(H)), m = 0 so the patch starts as the identity).
 * Returns 0 and *out, or -EINVAL for a bad config.
 */
int	ctr_new(struct ctr **out, const struct ctr_config *cfg,
	    uint64_t seed);
/*
 * As ctr_new with every parameter zero, for a caller that writes them all
 * (a loader: the random initialisation was most of a small model's load).
 */
int	ctr_new_zero(struct ctr **out, const struct ctr_config *cfg);
/* NULL is a no-op. */
void	ctr_free(struct ctr *m);
/* Deep copy of config, params and Adam state (grads start at zero). */
struct ctr *ctr_clone(const struct ctr *m);
/*
 * Frees m's gradient buffer (as large as its parameters) while m is only
 * read; ctr_zero_grad, ctr_backward and ctr_step allocate it again.
 */
void	ctr_release_grads(struct ctr *m);
/*
 * Model views (issue 14): the devices one deviced hosts on one model
 * version read the same shared parameters, so they hold them once.
 * ctr_view makes a model of config cfg with a copy of own's per-user
 * tables (emb_user, patch_m<l>, patch_b; base's when own is NULL) whose
 * other tensors read base's parameters, not copied. cfg must equal base's
 * but for slice_user (and own's, if given), and base must not be a view. The view holds a reference on
 * base (ctr_free drops it: base's memory goes with the last of its owner
 * and its views) and never writes through it: a step, ctr_train or
 * parameter copy that would change a shared tensor first gives the view
 * its own copy of every parameter (copy on write), after which it is an
 * ordinary model. Forward passes of views of one base may run on
 * different threads, as long as nothing writes base. ctr_clone of a view
 * is an ordinary model; ctr_params of a view is NULL (its parameters are
 * not one buffer). Returns 0 or -EINVAL.
 */
int	ctr_view(struct ctr **out, struct ctr *base,
	    const struct ctr_config *cfg, const struct ctr *own);
/* The model view m reads (ctr_view), or NULL: m is no view (any more). */
const struct ctr *ctr_view_base(const struct ctr *m);
/*
 * A view equal to m: m's shared tensors (its base's, if m is a view) and
 * copies of m's per-user tables. What differs from m only in its per-user
 * rows (a MetaPatch, a bias) costs those rows, not a model. A clone
 * where ctr_view refuses (it does not for m and its base, whose configs
 * match).
 */
struct ctr *ctr_view_of(const struct ctr *m);

/*
 * Makes m's logit a z + b for every input, a > 0, by scaling the tensors
 * the logit is a sum of (out_w, fm_w, patch_b, item_prior) by a and
 * setting out_b to a out_b + b: a recalibration folded into the model
 * (cloudd/train.c after the item prior). Order within any set of inputs
 * is kept. Returns 0, or -EINVAL for a <= 0 or a view.
 */
int	ctr_logit_affine(struct ctr *m, double a, double b);

/* Copies the parameters of src into dst; -EINVAL if the configs differ. */
int	ctr_copy_params(struct ctr *dst, const struct ctr *src);

/* Copies only the tensors sel trains; -EINVAL if the configs differ. */
int	ctr_copy_params_sel(struct ctr *dst, const struct ctr *src,
	    enum ctr_sel sel);

/*
 * Change tracking, for a working copy that is reset to its source many
 * times (the device's learning job resets its clone of the cloud model
 * before every training path). ctr_revert(m, src, sel) makes m equal src
 * again, given that only tensors sel trains changed since m last did: an
 * untracked m copies those tensors whole. After ctr_track(m), which says
 * m equals the source now, ctr_step records what it writes (the dense
 * tensors and the rows of the sparse ones) and a revert copies back only
 * those, so it costs O(rows a path touched), not O(catalogue): with
 * 200,000 items the copies were most of a device's job. ctr_track does
 * nothing for a model of up to 2 MiB (whole tensors are faster there:
 * they leave the cache warm). ctr_copy_params(_sel) count as writes of
 * everything; a caller that writes a tracked model's parameters otherwise
 * (through ctr_params) calls ctr_track_all, and the next revert copies
 * everything. Returns 0, or -EINVAL if the configs differ.
 */
void	ctr_track(struct ctr *m);
void	ctr_track_all(struct ctr *m);
/* Ends tracking and frees its row sets (a working copy kept as a result). */
void	ctr_untrack(struct ctr *m);
int	ctr_revert(struct ctr *m, const struct ctr *src, enum ctr_sel sel);

/* The model's config (unused hidden[] slots zeroed). */
const struct ctr_config *ctr_config(const struct ctr *m);
/* Number of float parameters. */
size_t	ctr_num_params(const struct ctr *m);
/*
 * The parameter buffer (ctr_num_params floats, tensors in ctr_tensor_at
 * order). Writable, for tests and loaders; the caller keeps the rules above.
 * NULL for a view (ctr_view).
 */
float	*ctr_params(const struct ctr *m);
/* Number of named tensors (at most CTR_MAX_TENSORS). */
int	ctr_num_tensors(const struct ctr *m);
/* Tensor i in buffer order, 0 <= i < ctr_num_tensors; NULL otherwise. */
const struct param_tensor *ctr_tensor_at(const struct ctr *m, int i);
const struct param_tensor *ctr_tensor_find(const struct ctr *m,
	    const char *name);

/*
 * Forward pass over ds->s[idx[0..B)].
 * idx    (B)  indices into ds->s, each < ds->n
 * logits (B)  output, may be NULL (kept inside for backward anyway)
 * Returns 0, or -EINVAL (B < 1, idx out of range).
 */
int	ctr_forward(struct ctr *m, const struct dataset *ds,
	    const uint32_t *idx, int B, float *logits);
/*
 * Frozen-trunk passes, for training that changes only the per-user m and
 * bias (CTR_SEL_METAPATCH_ONLY, CTR_SEL_BIAS_ONLY, as a device does): the
 * first hidden layer's ReLU output of a sample depends on neither, so it
 * is computed once (ctr_trunk) and every later step starts from it.
 * ctr_trunk_dim is its width per sample (hidden[0], plus 1 for the FM
 * term with interaction fm; 0 without a hidden layer, when these
 * functions return -EINVAL).
 * ctr_trunk       out (n, trunk_dim) for ds->s[idx[0..n)]; no backward
 * ctr_forward_trunk  ctr_forward over ds->s[idx[0..B)], reading sample
 *                 idx[b]'s trunk from row idx[b] of trunk (ds->n rows);
 *                 the result equals ctr_forward's as long as the
 *                 embeddings and the first layer are unchanged since
 *                 ctr_trunk (bit for bit with batches of at most
 *                 GEMM_SMALL, gemm.h, where its kernels run). A
 *                 ctr_backward after it accepts only selections that
 *                 train the m tables and the bias (-EINVAL otherwise).
 */
int	ctr_trunk_dim(const struct ctr *m);
int	ctr_trunk(struct ctr *m, const struct dataset *ds, const uint32_t *idx,
	    size_t n, float *out);
int	ctr_forward_trunk(struct ctr *m, const struct dataset *ds,
	    const float *trunk, const uint32_t *idx, int B, float *logits);
/* Zeroes the dense gradients and the touched rows of sparse ones. */
void	ctr_zero_grad(struct ctr *m);
/*
 * Backward of BCE-with-logits for the batch of the last forward, mean over
 * the batch. Accumulates into the gradients of the tensors sel allows.
 * y   (B) targets, NULL = the samples' labels (soft labels allowed)
 * w   (B) per-sample weights, NULL = 1
 * off (B) fixed logit offsets added before the loss, NULL = 0
 * *loss (may be NULL) gets the mean weighted loss.
 * Returns 0, or -EINVAL if no forward preceded it.
 */
int	ctr_backward(struct ctr *m, enum ctr_sel sel, const float *y,
	    const float *w, const float *off, double *loss);
/*
 * One optimizer step on the tensors sel allows, using the current grads.
 * Sparse tables update only the rows touched since the last zero_grad.
 * Returns 0 or -EINVAL (bad lr/optimizer).
 */
int	ctr_step(struct ctr *m, enum ctr_sel sel, const struct ctr_opt *o);

struct ctr_train_opts {
	struct ctr_opt	 opt;
	enum ctr_sel	 sel;
	int		 epochs;	/* >= 1 */
	int		 batch;		/* >= 1 */
	int		 patience;	/* stop after this many epochs without
					   val improvement; 0 = never */
	uint64_t	 seed;		/* shuffling */
	const float	*weight;	/* (ds->n) per-sample weight or NULL */
	const float	*offset;	/* (ds->n) per-sample logit offset */
	atomic_int	*stop;		/* checked per batch; may be NULL */
	/* Called after every epoch; val_loss is NAN without a val set. */
	void		(*progress)(void *arg, int epoch, double loss,
			    double val_loss);
	void		*progress_arg;
};

struct ctr_train_stats {
	double	train_loss;	/* mean (weighted) loss of the last epoch */
	double	val_loss;	/* val logloss of the returned params; NAN */
	int	epochs;		/* epochs run */
	int	best_epoch;	/* 0 = the initial params were best */
};

/* Fills *o: Adam lr 1e-3, 1 epoch, batch 256, patience 0, seed 1, ALL. */
void	ctr_train_opts_default(struct ctr_train_opts *o);
/*
 * Trains on ds->s[idx[0..n)] with seeded, shuffled minibatches. With a
 * validation set (nval > 0), the val logloss (plain labels, no weights or
 * offsets) is measured before training and after each epoch, and the best
 * params, possibly the initial ones, are restored at the end; patience > 0
 * stops early. Returns 0, -EINVAL (bad arguments), -ECANCELED (*stop was
 * set; params are the best so far with a val set, else as left) or -ERANGE
 * (loss became non-finite; same restore rule). stats may be NULL.
 */
int	ctr_train(struct ctr *m, const struct dataset *ds,
	    const uint32_t *idx, size_t n, const uint32_t *val, size_t nval,
	    const struct ctr_train_opts *o, struct ctr_train_stats *stats);

/*
 * Batched inference over ds->s[idx[0..n)]; out (n) gets probabilities
 * (ctr_predict) or logits (ctr_logits). Returns 0 or -EINVAL.
 */
int	ctr_predict(struct ctr *m, const struct dataset *ds,
	    const uint32_t *idx, size_t n, float *out);
int	ctr_logits(struct ctr *m, const struct dataset *ds,
	    const uint32_t *idx, size_t n, float *out);
/* Mean logloss against the samples' labels, in double. */
int	ctr_eval_logloss(struct ctr *m, const struct dataset *ds,
	    const uint32_t *idx, size_t n, double *out);

/*
 * The history item ids the behaviour field pools: the last K of sample s's
 * list in ds; *cnt of them (0 and NULL for a list past ds->hist).
 */
const uint32_t *ctr_behaviour_ids(const struct dataset *ds,
	    const struct sample *s, int K, uint32_t *cnt);

/*
 * CoDA's representations (ctr_repr.c).
 * Retrieval representation of a sample: concat(item emb, genre bag,
 * behaviour) = 3D floats, L2-normalised (zero stays zero). It leaves out
 * the user embedding and time on purpose, so that samples of *other* users
 * about similar items with similar recent behaviour are close in cosine.
 * The behaviour here is always the mean (also with attention), and side
 * fields are left out, so the vectors of one data set stay comparable.
 * out (n, ctr_repr_dim).
 */
int	ctr_repr_dim(const struct ctr *m);
void	ctr_repr(const struct ctr *m, const struct dataset *ds,
	    const uint32_t *idx, size_t n, float *out);
/*
 * User representation over a set of that user's samples: concat(mean user
 * embedding, mean behaviour embedding), each half L2-normalised and scaled
 * by 1/sqrt(2), so the whole has norm 1 (or 0); the behaviour half keeps
 * users the model has not seen (OOV row) comparable. out (ctr_user_repr_dim
 * = 2D). n == 0 gives zeros.
 */
int	ctr_user_repr_dim(const struct ctr *m);
void	ctr_user_repr(const struct ctr *m, const struct dataset *ds,
	    const uint32_t *idx, size_t n, float *out);

/*
 * Floating-point operations of one forward prediction (a multiply-add
 * counts 2; embedding pooling counted at full history and genre bags).
 */
double	ctr_flops(const struct ctr *m);

#endif
