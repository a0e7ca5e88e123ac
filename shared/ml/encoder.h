/*
 * encoder: DCCL's auxiliary encoder. A small cloud-trained map from a
 * user's own samples to that user's personal parameters of a CTR model
 * (ctr.h): the user embedding row, the MetaPatch m rows (one per hidden
 * layer) and the per-user bias b. A device whose user the cloud never saw
 * (a cold user) gets personal parameters from its local samples alone.
 *
 * Rows ("the personal part" of user u, nout floats, in this order):
 *   emb_user[u] (D) | patch_m0[u] (R) | ... | patch_m{L-1}[u] (R) | patch_b[u]
 * (without a patch, R = 0: only the user row). Ids >= n_users mean the
 * model's OOV row, as in the model itself.
 *
 * Features of a set of one user's samples (nin = 2D + 2 floats), under the
 * model whose item table they read:
 *   mean emb_item of the positives (label >= 0.5; zero if none) | mean
 *   emb_item of the negatives | logit of the shrunk click rate
 *   (pos + 1) / (n + 2) | log1p(n)
 * standardised with the training users' mean and spread (mu, sd), then one
 * linear layer: rows = W (x - mu) / sd + c. W = 0 gives the constant c for
 * everybody: the trained "unknown user" rows.
 *
 * Ownership: enc_new/enc_fit/enc_clone return an encoder freed with
 * enc_free. Threads: an encoder is read-only after fitting (any number of
 * readers); the functions taking a struct ctr * write that model.
 */
#ifndef SHARED_ENCODER_H
#define SHARED_ENCODER_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "shared/data/sample.h"
#include "shared/ml/ctr.h"

#define ENC_MAX_IN	(2 * CTR_MAX_DIM + 2)
#define ENC_MAX_OUT	(CTR_MAX_DIM + CTR_MAX_LAYERS * CTR_MAX_RANK + 1)

struct enc {
	int	 dim, n_layers, rank;	/* of the model it fits */
	int	 nin, nout;
	float	*mu, *sd;		/* nin */
	float	*w;			/* nout x nin, row-major */
	float	*c;			/* nout */
};

/* How an encoder was trained (enc_fit's choice, on validation). */
enum enc_mode {
	ENC_MODE_CONST = 0,	/* W = 0: the trained unknown-user rows */
	ENC_MODE_FIT,		/* through the frozen model, user dropout */
	ENC_MODE_REG,		/* regression onto the learned rows */
};

/* Shapes an encoder for model m would have (nin, nout); 0 or -EINVAL. */
int	enc_shape(const struct ctr *m, int *nin, int *nout);
/* A zero encoder (W = 0, c = 0, mu = 0, sd = 1) for m; NULL if m's
 * config cannot have one (dim or rank beyond the bounds above). */
struct enc *enc_new(const struct ctr *m);
struct enc *enc_clone(const struct enc *e);
void	enc_free(struct enc *e);
/* 0 if e's shapes match model m, else -EINVAL. */
int	enc_check(const struct enc *e, const struct ctr *m);

/* The personal rows of user in m: read, write, and their gradient. */
void	enc_rows_get(const struct ctr *m, uint32_t user, float *out);
void	enc_rows_set(struct ctr *m, uint32_t user, const float *in);
void	enc_rows_grad(const struct ctr *m, uint32_t user, float *out);
/* Is user's personal part all zero in m (m and b never trained)? 0 when
 * the model has no patch: then it cannot tell. */
int	enc_rows_untrained(const struct ctr *m, uint32_t user);

/* Raw features (nin) of ds->s[idx[0..n)] under m (n == 0 allowed). */
void	enc_features(const struct ctr *m, const struct dataset *ds,
	    const uint32_t *idx, size_t n, float *x);
/*
 * e's mu and sd from n feature vectors (nin floats each) of x: rows
 * idx[0..n) (idx NULL: rows 0..n-1), n >= 1; mu must start at 0. A spread
 * below 1e-6 counts as 1.
 */
void	enc_standardise(struct enc *e, const float *x, const uint32_t *idx,
	    size_t n);
/* rows (nout) = W (x - mu) / sd + c. */
void	enc_apply(const struct enc *e, const float *x, float *rows);

/*
 * One user's loss and the encoder's gradient: enc_apply(x) is written into
 * user's rows of m (a scratch model: those rows are overwritten), m scores
 * ds->s[idx[0..B)] (every one of them user's), and the gradient of the mean
 * BCE (the samples' labels) flows back through the rows: gw (nout x nin)
 * and gc (nout) get scale times it added. *loss (may be NULL) gets the
 * mean loss. Returns 0 or -EINVAL (B < 1, a sample of another user).
 */
int	enc_loss_grad(const struct enc *e, struct ctr *m, uint32_t user,
	    const float *x, const struct dataset *ds, const uint32_t *idx,
	    int B, float scale, float *gw, float *gc, double *loss);

struct enc_fit_opts {
	float		 lr;		/* Adam */
	float		 wd;		/* decoupled weight decay on W */
	int		 epochs;	/* per mode, >= 1 */
	int		 patience;	/* epochs without val gain; 0 = never */
	int		 users_per_step;
	int		 max_targets;	/* target samples per user and step */
	uint64_t	 seed;
	atomic_int	*stop;		/* checked per step; may be NULL */
};

struct enc_fit_report {
	size_t		 n_users, n_val_users, n_val;
	double		 val_rows;	/* val logloss of the learned rows */
	double		 val_const, val_fit, val_reg;
	int		 ep_const, ep_fit, ep_reg;	/* best epochs */
	enum enc_mode	 chosen;
	double		 seconds;
};

/* lr 3e-3, wd 1e-4, 30 epochs, patience 3, 8 users per step, 256, seed 1 */
void	enc_fit_opts_default(struct enc_fit_opts *o);
/*
 * Trains the encoder of model m on the pool: ds->s[tr[0..ntr)] train,
 * ds->s[va[0..nva)] validation (the later samples of the same users).
 * Three candidates: the constant (W = 0, c trained through the frozen
 * model), FIT (W and c trained through the frozen model with user dropout:
 * each step, a user's features come from a random time prefix of their
 * training samples and the loss from the rest, with the encoder's rows in
 * place of the learned ones) and REG (W and c regressed onto the learned
 * rows, features over all their training samples). Each keeps its epoch
 * of lowest validation logloss (features from a user's training samples,
 * loss on their validation samples); *out is the candidate with the lowest
 * one. The constant's rows are written into m's OOV rows (the rows of ids
 * the model does not know); nothing else of m changes.
 * Returns 0, -EINVAL (no patch-compatible shapes, no users with two
 * training samples or no validation sample), -ECANCELED or -ERANGE.
 */
int	enc_fit(struct enc **out, struct ctr *m, const struct dataset *ds,
	    const uint32_t *tr, size_t ntr, const uint32_t *va, size_t nva,
	    const struct enc_fit_opts *o, struct enc_fit_report *rep);

const char *enc_mode_name(enum enc_mode mode);

#endif
