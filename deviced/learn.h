/*
 * learn: a device's learning job (learn.c) and the evaluation matrix that
 * an evaluation run adds to it (learn_eval.c). The job reads a struct
 * learn_in and fills a struct learn_result; the device's loop applies the
 * result (learn_apply). Nothing in learn.c writes struct device.
 *
 * Threads: learn_run, learn_method_run and learn_eval run in the
 * threadpool (or any thread); they only read what learn_in points to, and
 * the caller keeps it unchanged until they return. learn_apply is loop
 * thread only.
 */
#ifndef DEVICED_LEARN_H
#define DEVICED_LEARN_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "dccl.pb-c.h"
#include "deviced/mix.h"
#include "shared/data/sample.h"

struct ctr;
struct device;
struct deviced_conf;
struct fedsel_dev;

/* What a learning job reads. */
struct learn_in {
	const struct deviced_conf *cf;	/* learn.*; the served method */
	const struct ctr	*model;	/* the cloud model; only read, so
					   several jobs may share it */
	const struct dataset	*local;	/* the user's samples, time order */
	const struct dataset	*retrieved;	/* CoDA's pool samples */
	uint32_t		 user;
	double			 global_ctr;	/* r_g, label correction */
	atomic_int		*stop;	/* set: the job ends early; or NULL */
	int			 want_serving;	/* hand back the served model */
	int			 need_coda;	/* run the CoDA filter even if
					   the served method does not */
	int			 reference;	/* every path through the whole
					   model: the slow reference the fast
					   paths are checked and timed
					   against (tests, bench_learn) */
	const struct fedsel_dev	*fed;	/* the cloud's chosen settings
					   (deviced/fedsel_choice.h), or NULL */
	int			 report;	/* make a grid report */
};

/* What a learning job produces; learn_apply hands it to the device. */
struct learn_result {
	int		 rc;		/* 0 or -EINVAL (no MetaPatch) */
	char		 err[256];	/* why, when rc != 0 or a write failed */
	struct ctr	*serving;	/* want_serving: the served model */
	Dccl__Tensor	**patch;	/* the user's m rows, to upload: the
					   served MetaPatch's, with finetune
					   the "metapatch" row's fitted for
					   the cloud, else the cloud's own */
	size_t		 n_patch;
	double		 val_before;	/* mean local logloss, cloud model */
	double		 val_after;	/* minus the CV gain when adopted */
	double		 secs;		/* the served method's job time */
	int		 adopted;	/* the served method passed its guard */
	int		 fallback;	/* what was adopted is the bias alone */
	int		 taught;	/* patch holds an adopted MetaPatch */
	double		 lr;		/* the chosen setting (0 if none) */
	int		 steps;
	double		 cv_gain;	/* its cross-validated logloss gain */
	size_t		 kept;		/* retrieved samples the filter kept */
	int		 fed;		/* learn_choice.fed of the served one */
	double		 pick_lr;	/* with fed: the setting it trained at */
	int		 pick_steps;
	double		 pair_w;	/* the pair weight it trained with */
	int		 pw_fed;	/* learn_choice.pw_fed of the served */
	void		*report;	/* in->report: packed SelectReport */
	size_t		 report_len;
};

/*
 * The cross-validation of one method over its whole setting grid: sums
 * over the held-out local samples, what a device reports for federated
 * selection (deviced/fedsel.c). Point s = lr index * LEARN_GRID_ST +
 * steps index; LEARN_GRID_DEF is the default setting.
 */
#define LEARN_GRID_LR	3
#define LEARN_GRID_ST	2
#define LEARN_GRID_N	(LEARN_GRID_LR * LEARN_GRID_ST)
#define LEARN_GRID_DEF	(1 * LEARN_GRID_ST + 1)
struct learn_grid {
	int	have;
	double	lr[LEARN_GRID_LR];
	int	steps[LEARN_GRID_ST];
	size_t	n, pairs;		/* held-out samples, (click, no) pairs */
	double	gain[LEARN_GRID_N];	/* sum of logloss gains */
	double	sq[LEARN_GRID_N];	/* sum of their squares */
	double	dsq[LEARN_GRID_N];	/* sum of (gain - default's gain)^2 */
	double	rank[LEARN_GRID_N];	/* pairs ordered better, net */
};

/*
 * Nested validation of the guard (learn.c, nested()): the setting and
 * the guard's evidence (gain, se, rank) chosen on every CV fold but the
 * last, and that setting's result on the last fold (out_*). Lets a guard
 * rule be chosen on validation data (scripts/guard_select.py).
 */
struct learn_nested {
	int	have;		/* at least 3 folds with samples */
	double	gain, se;	/* inner folds: mean logloss gain, its SE */
	double	rank;		/* inner folds: net pairs ordered better */
	size_t	out_n, out_pairs;	/* last fold: samples, pairs */
	double	out_gain;	/* last fold: mean logloss gain */
	double	out_rank;	/* last fold: net pairs ordered better */
	double	mv;		/* inner folds: share of held-out pairs
				   reordered against the cloud model (for an
				   evaluation, a report or learn.guard-move;
				   else 0) */
	int	have_cal;	/* fine-tuning: out_cal is set */
	double	out_cal;	/* last fold: the logloss gain of the
				   recalibration fitted on the inner folds
				   (calib.h), over the uncalibrated fit */
};

/* Chosen setting of one method's run. */
struct learn_choice {
	int	adopted;
	int	fallback;	/* adopted the bias alone */
	double	lr;
	int	steps;
	double	gain, se;	/* CV mean logloss gain and its std. error */
	double	rank;		/* held-out pairs ordered better, net */
	double	mv;		/* held-out pairs reordered, share (as
				   learn_nested's, over every fold) */
	double	alpha;		/* the step weight (partial.h; 1 whole) */
	int	fed;		/* 1 the cloud's choice, -1 its default
				   (no choice for the method), 0 not asked */
	double	pick_lr;	/* with fed: the setting it trained at */
	int	pick_steps;
	double	pair_w;		/* the pairwise loss's weight */
	int	pw_fed;		/* a family's (learn_pair_family): 1 the
				   cloud's pair weight, -1 the default
				   (the cloud has none), 0 not a family */
	struct learn_grid grid;	/* the CV over the whole grid */
	unsigned char alive[LEARN_GRID_N];	/* scored in every fold */
	struct learn_nested nested;
	/* each grid point's (whole step), as nested would be for a pick */
	struct learn_nested nested_at[LEARN_GRID_N];
	int	mixed;		/* serve the logit mixture at alpha (mix.h) */
	struct mix_ev mix;	/* fine-tuning: the CV's evidence per weight */
	int	cal_have;	/* fine-tuning: a recalibration was fitted */
	double	cal_t, cal_b;	/* z' = (1 + t) z + b (calib.h) */
	int	calibrated;	/* serve it ("-cal" rows) */
};

/*
 * What every method of one job shares: the local samples (then the kept
 * retrieved ones), their labels and weights, the cloud model's
 * per-sample loss, and caches of what the frozen parts of the cloud model
 * compute (MetaPatch and bias training recompute only what they change).
 * Owned by the job; one thread.
 */
struct learn_prep {
	const struct learn_in *in;
	const struct dataset *ret;	/* what CoDA filtered */
	struct dataset	 work;		/* local samples, then kept retrieved */
	float		*weight;	/* work.n: 1 local, coda-weight kept */
	float		*y;		/* work.n: the hard labels */
	float		*loss0;		/* n: the cloud model's per-sample loss */
	float		*p0;		/* n: the cloud model's probability */
	size_t		 n, nkept, nlate;
	/*
	 * The working models, made on first use: w a copy (tracked,
	 * ctr_track) for paths through the whole model; wv a view of the
	 * cloud model (its per-user rows its own) for the paths that train
	 * only those (MetaPatch, the bias), so a job that fine-tunes
	 * nothing copies no model. An adopted fine-tune takes w as its
	 * result (w is then made again if a later path needs it).
	 */
	struct ctr	*w;
	int		 w_dirty;	/* 0 w is the cloud model, 1 but for
					   the m and bias tables, 2 not */
	struct ctr	*wv;
	int		 wv_dirty;	/* its m and bias tables moved */
	float		*trunk;		/* work.n rows of ctr_trunk_dim, or
					   NULL (not computed yet) */
	float		*zb;		/* n logits without the user's bias */
	int		 one_user;	/* every local sample is one user's */
};

/* Shared work of the evaluation rows (learn_memo.h); opaque here. */
struct learn_memo;

/* Properties of a named method (learn.c's methods[]). */
struct learn_method_info {
	const char	*name;
	int		 adapts;	/* trains something */
	int		 finetune;	/* changes the whole model */
	int		 coda;		/* uses retrieved samples */
	int		 users;		/* the set retrieved by similar users */
};

/* learn.c */

/*
 * The served method (learn.adapt, .lc, .lc-target, .coda, guarded, with
 * learn.bias-fallback) on in: fills *r (zeroed first), and p, which the
 * caller frees with learn_prep_fini (learn_eval reuses it). memo may be
 * NULL; with one, the evaluation rows reuse this run's work.
 */
void	learn_run(const struct learn_in *in, struct learn_prep *p,
	    struct learn_memo *memo, struct learn_result *r);
/* Frees what r owns (serving model, patch). */
void	learn_result_fini(struct learn_result *r);

/* Computes p for in, with CoDA filtering ret; learn_prep_fini frees. */
void	learn_prep_init(struct learn_prep *p, const struct learn_in *in,
	    const struct dataset *ret);
void	learn_prep_fini(struct learn_prep *p);

/* Fills *out for the method called name; -1 if there is none. */
int	learn_method_info(const char *name, struct learn_method_info *out);
/*
 * Runs the method called name on p (a method with the fallback tries the
 * bias alone when its guard refuses) and returns the model to serve: a new
 * model, or a copy of the cloud model when nothing is adopted; the caller
 * frees it. *ch, *secs (the time this method alone takes) and *mem (bytes
 * of model, gradients and samples) out. NULL for an unknown name.
 */
struct ctr *learn_method_run(struct learn_prep *p, const char *name,
	    struct learn_memo *memo, struct learn_choice *ch, double *secs,
	    double *mem);
/*
 * The cross-validation of the method called name over its whole grid
 * (the CV a method with a chosen setting runs), into *g (g->have = 0 for
 * a method that chooses nothing), with the pairwise loss at weight pw
 * (pw < 0: the method's own). -1 for an unknown name.
 */
int	learn_method_grid(struct learn_prep *p, const char *name, double pw,
	    struct learn_memo *memo, struct learn_grid *g);
/*
 * Is name a pair-weight family, whose pair weight the cloud chooses
 * (a "-pairw" row, or "serve" with learn.pair-select = fed)? A report
 * carries a family at every weight of learn.pair-weights.
 */
int	learn_pair_family(const struct deviced_conf *cf, const char *name);
/* An empty memo, and its end (frees what it holds; NULL is a no-op). */
struct learn_memo *learn_memo_new(void);
void	learn_memo_free(struct learn_memo *mm);

/* learn_job.c */

/*
 * learn_work_cb (deviced.h) is the device's job: learn_run on the
 * device's data, then, with deviced.eval-dir set and test samples,
 * learn_eval. Its result waits in d->learned until learn_apply, which
 * moves it into d (loop thread, learn_after_cb). Without a result (the
 * job was cancelled before it ran) d gets job_rc -ECANCELED.
 */
void	learn_apply(struct device *d);

/* learn_eval.c */

/*
 * The evaluation matrix (deviced.eval-methods): every method on the same
 * prepared data p (and, for the methods by similar users, on
 * d->retrieved_u), each scored on d's test samples through the app
 * socket's scoring. Writes <eval-dir>/<device>.csv (method, user, item,
 * label, score) and <device>.extra (method, column, value: costs and the
 * chosen settings). A write error goes to r->err. Threadpool, while d is
 * in DEV_TRAIN.
 */
void	learn_eval(struct device *d, const struct learn_in *in,
	    struct learn_prep *p, struct learn_memo *memo,
	    struct learn_result *r);

#endif
