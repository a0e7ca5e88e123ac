/*
 * distill: MoMoDistill (DCCL, shared/ml/README.md section 3). The cloud model is
 * trained again on the pool with
 *
 *   L = BCE(y, f(x)) + lambda * w_u * BCE(sigmoid(f_u(x)), sigmoid(f(x)))
 *
 * where f_u is the personalized device model of user u (the patch's frozen
 * base model with u's MetaPatch m rows replaced by the uploaded patch) and
 * the second term runs over u's pool training samples. w_u is 1 for a
 * patch on the current version and decay^age for an older one
 * (distill.stale = decay), or the patch is not used (drop).
 *
 * The job is a train.c job with a different model step (a struct train_step), so
 * storing, vectors, index and the announcement are shared with training;
 * a run whose best epoch is 0 (the current weights), or whose validation
 * gain is below distill.accept-z clustered standard errors, stores and
 * announces nothing (TRAIN_KEPT).
 * Patches are selected on the loop thread when the job starts (so dcctl
 * gets the counts); the worker builds the teachers and trains.
 */
#ifndef CLOUDD_DISTILL_H
#define CLOUDD_DISTILL_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "cloudd/cloudd.h"
#include "cloudd/store.h"
#include "shared/ml/ctr.h"
#include "shared/ml/ctr_io.h"

/*
 * Weight of a patch age versions old: drop (not used), decay (lambda *
 * decay^age) or poly (lambda / (1 + age)^a, FedAsync's polynomial
 * staleness function, a in [0, 1]); decay and poly drop beyond max_age.
 */
enum { DISTILL_STALE_DROP = 0, DISTILL_STALE_DECAY, DISTILL_STALE_POLY };

struct distill_opts {
	double	 lambda;	/* weight of the distillation term */
	int	 stale;		/* DISTILL_STALE_* */
	double	 decay;		/* decay: weight factor per version of age */
	int64_t	 max_age;	/* decay: older patches are dropped */
	int	 freeze_users;	/* distill_fit: DISTILL_FIT_FREEZE_USERS */
	double	 poly_a;	/* poly: the exponent a */
};

/* distill_fit flags */
#define DISTILL_FIT_FREEZE_USERS 0x1	/* student's emb_user and m rows fixed */
/*
 * The teacher teaches only within-user differences: its soft target is
 * sigmoid(s + (t - s) - mean_u(t - s)), t and s the teacher's and the
 * student's logits, the mean over the user's distilled samples. A patch
 * fit on newer data moves the user's level on the older pool samples
 * (a calibration GAUC ignores) more than their order; this keeps the order.
 */
#define DISTILL_FIT_CENTER 0x2

/* One user's teacher: patch p[patch] on base version base. */
struct distill_pick {
	uint32_t	 user;
	uint64_t	 base;
	size_t		 patch;		/* index into the patch array */
	float		 weight;	/* lambda * staleness factor */
	int		 teacher;	/* set by the worker */
	/*
	 * distill_fit: the teacher labels only the user's most recent
	 * fraction of pool training samples, the ones nearest in time to
	 * the slice its patch was fit on (0 or >= 1: all of them).
	 */
	float		 recent;
};

struct distill_counts {
	size_t	 fresh;		/* users with a patch on the current base */
	size_t	 stale_used;	/* users whose newest patch is older, used */
	size_t	 stale_dropped;	/* ... not used (drop, or beyond max-age) */
	size_t	 skipped;	/* superseded, wrong kind, future base */
};

/*
 * Picks each user's newest patch (highest base version, then highest id)
 * among p[0..n) and weighs it against version current by the rule in o.
 * Patches of kind other than "metapatch" or with base > current are
 * skipped. *out (caller frees; NULL when *nout is 0) gets the used picks
 * sorted by user. Pure; any thread. Returns 0.
 */
int	 distill_select(const struct store_patch *p, size_t n,
	    uint64_t current, const struct distill_opts *o,
	    struct distill_pick **out, size_t *nout, struct distill_counts *c);

struct distill_stats {
	size_t	 n_soft;	/* distillation samples added */
	double	 soft_mean;	/* mean teacher probability over them */
	double	 val_before, val_after;	/* pool validation logloss */
	int	 epochs, best_epoch;
};

/*
 * The model step. student (warm start, trained in place) learns on the
 * mixed data set: ds->s[tri[0..ntr)] with their labels, plus, for every
 * pick with weight > 0, a copy of each of the pick's user's samples in tri
 * (with 0 < pick.recent < 1 only the newest ceil(recent * n) of them, by
 * timestamp) labelled with sigmoid(teachers[pick.teacher] logit) and
 * weighted pick.weight. ctr_train takes its labels from the samples, so the soft
 * targets ride on copies rather than a second loss. Early stopping on the
 * validation logloss of ds->s[vai[0..nva)], as in training: the best of
 * the initial params and epochs 1..o->epochs is kept (best_epoch 0 means
 * the distilled model did not beat the current one on validation: student
 * keeps the current weights, and cloudd publishes no version). With
 * DISTILL_FIT_FREEZE_USERS in flags the student's per-user rows (emb_user,
 * the m tables) are put back after every step, so what the teachers know
 * has to enter the shared parameters (embeddings of items, genres, time,
 * the MLP, U and V).
 * Worker thread; touches only its arguments. Returns 0, -EINVAL,
 * -ECANCELED or -ERANGE (see ctr_train).
 */
int	 distill_fit(struct ctr *student, const struct dataset *ds,
	    const uint32_t *tri, size_t ntr, const uint32_t *vai, size_t nva,
	    struct ctr *const *teachers, const struct distill_pick *picks,
	    size_t npicks, const struct ctr_train_opts *o, int flags,
	    struct distill_stats *st);

/*
 * Writes the m rows of picks[i].user in teacher from the packed
 * UploadPatch blob of p[picks[i].patch]. Returns 0 or a CTR_IO_E* code /
 * -EINVAL (not an UploadPatch). Any thread (the teacher is the caller's).
 */
int	 distill_apply_patch(struct ctr *teacher, const struct store_patch *p,
	    uint32_t user);

/*
 * The acceptance test's figures: student's validation gain over the model
 * whose probabilities on ds->s[vai[0..nva)] are p0, the mean per-sample
 * logloss reduction, and its standard error clustered by user (one
 * user's samples are not independent; metrics_clustered_mean). cloudd
 * publishes a distilled model only if gain - distill.accept-z * se > 0.
 * Any thread. Returns 0 or -EINVAL (no sample, or a score not finite).
 */
int	 distill_val_gain(struct ctr *student, const float *p0,
	    const struct dataset *ds, const uint32_t *vai, size_t nva,
	    double *gain, double *se);

/*
 * Whether the UploadPatch blob of p carries exactly teacher's current m
 * rows of user: what a device uploads when its guard did not adopt the
 * patch. Such a teacher equals the student, so it teaches nothing and
 * only dilutes; the worker leaves it out. Returns 1, 0, or -EINVAL (not
 * an UploadPatch). Any thread (reads teacher).
 */
int	 distill_patch_is_base(const struct ctr *teacher,
	    const struct store_patch *p, uint32_t user);

/* The job handed to train_queue(); created and freed on the loop. */
struct distill_job {
	struct store_patch	*patches;	/* n_patches, owned */
	size_t			 n_patches;
	struct distill_pick	*picks;		/* n_picks, owned */
	size_t			 n_picks;
	struct distill_counts	 counts;
	struct distill_opts	 o;
	uint8_t			*blob;		/* copy of the current model */
	size_t			 size;
	uint64_t		 base;		/* its version */
	uint32_t		 epochs;	/* 0 = distill.epochs */
	/* validation gain over the current model (tested: computed) */
	double			 gain, gain_se;
	int			 tested;
	/* worker results */
	struct distill_stats	 st;
	size_t			 n_bad;		/* patches that did not apply */
	size_t			 n_same;	/* not adopted: the base's rows */
	size_t			 n_gone;	/* base model no longer stored */
	double			 seconds;
};

/*
 * Loop: selects patches and queues a distillation of the current model.
 * Returns 0, -EBUSY (training, a pool load or a rollback running), -ENOENT
 * (no model, or no usable patch; *c says why), or -EIO (store).
 */
int	 distill_start(struct cloudd *cd, uint32_t epochs,
	    struct distill_counts *c);

struct rpc_req;
/* Loop: AdminDistillReq -> DistillStarted or Error. Admin socket only. */
void	 distill_rpc(struct cloudd *cd, struct rpc_req *r);
/*
 * Loop: the automatic trigger, called from cron: distill.min-patches users
 * (distill.buffer: K) with a patch newer than the last finished run's.
 */
void	 distill_cron(struct cloudd *cd);

#endif
