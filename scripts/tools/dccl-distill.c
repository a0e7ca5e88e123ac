/*
 * dccl-distill: MoMoDistill with its controls, offline, on a rolling time
 * split. It runs the same code as cloudd and deviced (ctr_train,
 * distill_fit, and each device's own learning job, learn_run with
 * deviced's defaults) without the sockets, so that every arm sees the
 * same data and the same seeds and differs in one thing only.
 *
 *   dccl-distill DATA OUTDIR [--seed S] [--slices P,S1,..,SK] [--min-dev N]
 *                [--synth USERS] [--lambda X] [--distill-epochs N]
 *                [--recent F] [--arms A,B,...] [--no-prior]
 *                [--patch-lr X] [--cold F] [--device-opt KEY=VALUE]...
 *
 * v1 is trained as cloudd trains it, item prior included
 * (train_model_finish); --no-prior leaves the prior out (the runs before
 * 2026-12-04).
 *
 * --synth USERS replaces DATA by dataset_synth's drift set (seed 7 for
 * every run, 30 % of the users change taste) whose drift starts at the
 * device slices: the case where devices know what the pool cannot.
 *
 * Rolling split: every user's history, by time, is cut into the cloud's
 * share P and K device slices S1..SK (default 0.7,0.1,0.1,0.1); users with
 * fewer than --min-dev samples (20) stay in the pool and are no device.
 * The pool never grows: what the cloud learns after v1 comes only through
 * the devices' patches. Round r (1..K-1): every device holds S_r and runs
 * deviced's learning job (learn_run: MetaPatch, its setting by
 * cross-validation over the samples, the guard, the bias fallback) on the
 * first 80 % of S_r from the arm's current cloud model; the last 20 % is
 * its validation slice. A patch teaches only if the job adopted it (not
 * the bias alone), with the m rows the device uploads. --patch-lr X
 * trains the patches as this tool did before 2026-12-04 instead: Adam at
 * rate X for up to 10 epochs (batch 32, patience 2), adopted if the
 * validation slice has a lower logloss and no lower AUC.
 * The cloud then distils (distill_fit, train.* and distill.* defaults) and
 * the new model is scored on S_{r+1}, data after everything round r saw.
 *
 * Arms (each its own line of models over the rounds):
 *   v1           the cloud model, early-stopped (patience 2), never changed
 *   lam0         the same distillation epochs with lambda = 0
 *   self         self-distillation: the same users' soft copies, teachers
 *                without patches (the extra steps and soft labels alone)
 *   distill      MoMoDistill, every parameter of the student trains
 *   distill-frz  MoMoDistill, the student's per-user rows frozen
 *   *-fix        the same four without the validation rule: the cloud's
 *                validation slice is the end of the pool, older than
 *                anything the devices learned, so "best of the initial
 *                model and each epoch on it" can reject exactly the new
 *                knowledge; these keep the last of distill.epochs epochs
 *   conv-*       the same from a v1 trained to convergence (patience 6)
 *   *-rec        self, distill and distill-frz with each teacher labelling
 *                only its user's newest --recent share (0.2) of pool
 *                training samples: the pool samples nearest in time to the
 *                slice the patch was fit on (distill_pick.recent)
 *   teachers     not a cloud model: v1 with every adopted patch of the
 *                round in its user's rows, scored as is (what the
 *                teachers themselves get on the next slice; the most
 *                device knowledge could give the cloud in ranking)
 *   distill-cv, teachers-cv  distill and teachers with only the patches
 *                that also pass one forward-chaining fold earlier (the
 *                job on the first half of the device's training part of
 *                S_r adopts a patch too; with --patch-lr: trained on
 *                that half, checked on the second)
 *   *-ctr        distill and distill-frz with centred teachers
 *                (DISTILL_FIT_CENTER: within-user differences only); the
 *                self-distillation teacher is the student, which centring
 *                leaves as it is, so self is their control too
 *   *-2step      DCCL's second step after the arm's fit: the same teachers
 *                (none for lam0) distilled into the shared patch
 *                parameters alone (U, V; CTR_SEL_PATCH_UV), same epochs
 *                and validation rule; distill-2step, self-2step, lam0-2step
 *   *-uv         that step instead of the whole-model fit: distill-uv,
 *                lam0-uv
 *   enc-pool     v1, and for cold users (--cold) the rows of the
 *                auxiliary encoder as cloudd trains it on the pool
 *                (enc_fit, its mode chosen on the pool's validation), from
 *                the features of the samples the device trained on in S_r
 *   enc-dev      the same with the encoder distilled from the round's
 *                device models (encoder_distill.h): regressed onto the
 *                personal rows of every adopted upload (a cold device's
 *                m rows only: its user row and bias are untrained), the
 *                epoch chosen on held-out devices' validation slices;
 *                cold users are cross-fitted in two folds, so no cold
 *                user's own patch trained the encoder that scores it
 *
 * --device-opt KEY=VALUE sets one of deviced's options for every device's
 * job, after the MetaPatch preset (e.g. learn.guard-z=0 and
 * learn.guard-rank=no: every patch with a positive cross-validated gain
 * is adopted and teaches).
 *
 * --cold F: a seeded share F of the device users (by --seed) are cold:
 * none of their samples reach the pool, so v1 never trained their rows;
 * OUTDIR/cold lists them (dccl-eval --cold-users). Their devices hold the
 * same slices as everybody's.
 *
 * Output: OUTDIR/test/rR/preds.csv (S_{R+1}) and OUTDIR/val/rR/preds.csv
 * (the devices' validation slices of S_R), lines method,user,item,label,
 * score as deviced writes them for bin/dccl-eval; OUTDIR/counts (user,
 * pool samples: the long tail is the users the cloud knows least);
 * OUTDIR/arms.csv (round,arm,adopted,soft,val_before,val_after,best_epoch,
 * epochs,val_gain,val_gain_se: the gain and clustered standard error of
 * cloudd's acceptance test, distill_val_gain, for the distilled arms).
 * Single-threaded; exits 0, 1 on errors, 2 on usage errors.
 */
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cloudd/train_model.h"
#include "scripts/tools/movielens.h"
#include "scripts/tools/synth.h"
#include "cloudd/distill.h"
#include "deviced/deviced.h"
#include "deviced/learn.h"
#include "shared/data/dataset.h"
#include "shared/conf.h"
#include "shared/ml/ctr.h"
#include "shared/ml/ctr_io.h"
#include "shared/ml/encoder.h"
#include "shared/ml/encoder_distill.h"
#include "shared/ml/metrics.h"
#include "shared/rng.h"
#include "shared/xmalloc.h"

void	openblas_set_num_threads(int);

static const char *prog = "dccl-distill";

#define MAX_SLICES	8
#define MAX_DOPTS	16

enum { ARM_STATIC = 0, ARM_LAM0, ARM_SELF, ARM_DISTILL, ARM_TEACH,
	ARM_ENC_POOL, ARM_ENC_DEV };

struct arm {
	const char	*name;
	int		 conv;		/* starts from the converged v1 */
	int		 kind;
	int		 freeze;
	int		 fixed;		/* no validation rule: the last epoch */
	int		 recent;	/* teachers label --recent only */
	int		 center;	/* DISTILL_FIT_CENTER */
	int		 cv;		/* teachers pass a second, earlier fold */
	int		 uv;		/* DCCL's second step: 1 after the fit,
					   2 instead of it (UV_*) */
	struct ctr	*m;
};

/*
 * DCCL's second step: the same teachers distilled into the shared patch
 * parameters alone (U and V of every layer, CTR_SEL_PATCH_UV), with the
 * same epochs and validation rule, after the whole-model fit (UV_AFTER)
 * or instead of it (UV_ONLY).
 */
enum { UV_NONE = 0, UV_AFTER, UV_ONLY };

static struct arm arms[] = {
	{ "v1",			0, ARM_STATIC,	0, 0, 0, 0, 0, 0, NULL },
	{ "lam0",		0, ARM_LAM0,	0, 0, 0, 0, 0, 0, NULL },
	{ "self",		0, ARM_SELF,	0, 0, 0, 0, 0, 0, NULL },
	{ "distill",		0, ARM_DISTILL,	0, 0, 0, 0, 0, 0, NULL },
	{ "distill-frz",	0, ARM_DISTILL,	1, 0, 0, 0, 0, 0, NULL },
	{ "lam0-fix",		0, ARM_LAM0,	0, 1, 0, 0, 0, 0, NULL },
	{ "self-fix",		0, ARM_SELF,	0, 1, 0, 0, 0, 0, NULL },
	{ "distill-fix",	0, ARM_DISTILL,	0, 1, 0, 0, 0, 0, NULL },
	{ "distill-frz-fix",	0, ARM_DISTILL,	1, 1, 0, 0, 0, 0, NULL },
	{ "conv-v1",		1, ARM_STATIC,	0, 0, 0, 0, 0, 0, NULL },
	{ "conv-lam0",		1, ARM_LAM0,	0, 0, 0, 0, 0, 0, NULL },
	{ "conv-distill",	1, ARM_DISTILL,	0, 0, 0, 0, 0, 0, NULL },
	{ "self-rec",		0, ARM_SELF,	0, 0, 1, 0, 0, 0, NULL },
	{ "distill-rec",	0, ARM_DISTILL,	0, 0, 1, 0, 0, 0, NULL },
	{ "distill-frz-rec",	0, ARM_DISTILL,	1, 0, 1, 0, 0, 0, NULL },
	{ "distill-ctr",	0, ARM_DISTILL,	0, 0, 0, 1, 0, 0, NULL },
	{ "distill-frz-ctr",	0, ARM_DISTILL,	1, 0, 0, 1, 0, 0, NULL },
	{ "distill-ctr-rec",	0, ARM_DISTILL,	0, 0, 1, 1, 0, 0, NULL },
	{ "teachers",		0, ARM_TEACH,	0, 0, 0, 0, 0, 0, NULL },
	{ "distill-cv",		0, ARM_DISTILL,	0, 0, 0, 0, 1, 0, NULL },
	{ "teachers-cv",	0, ARM_TEACH,	0, 0, 0, 0, 1, 0, NULL },
	{ "distill-2step",	0, ARM_DISTILL,	0, 0, 0, 0, 0, UV_AFTER, NULL },
	{ "self-2step",		0, ARM_SELF,	0, 0, 0, 0, 0, UV_AFTER, NULL },
	{ "lam0-2step",		0, ARM_LAM0,	0, 0, 0, 0, 0, UV_AFTER, NULL },
	{ "distill-uv",		0, ARM_DISTILL,	0, 0, 0, 0, 0, UV_ONLY, NULL },
	{ "lam0-uv",		0, ARM_LAM0,	0, 0, 0, 0, 0, UV_ONLY, NULL },
	{ "enc-pool",		0, ARM_ENC_POOL, 0, 0, 0, 0, 0, 0, NULL },
	{ "enc-dev",		0, ARM_ENC_DEV,	0, 0, 0, 0, 0, 0, NULL },
};
#define N_ARMS	(sizeof(arms) / sizeof(arms[0]))

struct split {
	uint32_t	*pool_tr, *pool_va;
	size_t		 ntr, nva;
	uint32_t	*dev;		/* device users */
	size_t		 ndev;
	unsigned char	*cold;		/* per device: no pool samples */
	/* per device: bounds of slice k in the user's chronological idx */
	size_t		(*cut)[MAX_SLICES + 2];
	int		 k;		/* device slices */
};

struct run {
	struct dataset		 ds;
	struct dataset_idx	 all;
	struct split		 sp;
	uint64_t		 seed;
	double			 lambda;
	double			 recent;
	double			 accept_z;	/* cloudd's distill.accept-z */
	int			 distill_epochs;
	int			 prior;		/* cloudd's item prior on v1 */
	double			 patch_lr;	/* > 0: --patch-lr, Adam patches */
	struct conf		 dconf;		/* deviced's options, defaults */
	struct deviced_conf	 dcf;
	int			 have_dconf;
	double			 r_g;		/* the pool's click rate */
	double			 cold;		/* --cold share of devices */
	struct enc		*enc_pool;	/* enc-pool's, fitted once */
	const char		*out;
	/* what the adopted patches of the current arm and round change */
	struct patch_gap {
		size_t	 n, n_pool;	/* patches, their pool samples */
		double	 dm, m0;	/* sum |m_u - m_cloud|^2, |m_cloud|^2 */
		double	 dp, err;	/* sum |p_u - p| and |y - p| on the pool */
		double	 ll0, ll1;	/* sum logloss of p and of p_u there */
	}			 gap;
};

static void
usage(FILE *fp)
{
	fprintf(fp,
"usage: %s DATA OUTDIR [--seed S] [--slices P,S1,...,SK] [--min-dev N]\n"
"           [--synth USERS] [--lambda X] [--distill-epochs N] [--recent F]\n"
"           [--accept-z Z] (cloudd's acceptance test for the report, 2)\n"
"           [--arms A,B,...] (default: every arm) [--no-prior]\n"
"           [--patch-lr X] (Adam patches at rate X instead of deviced's\n"
"           own learning job) [--cold F] (a share F of the devices' users\n"
"           never reach the pool) [--device-opt KEY=VALUE]... (deviced's\n"
"           options for the devices' jobs)\n"
"DATA is a MovieLens directory (or, with --synth, ignored: a synthetic\n"
"drift set of USERS users whose drift, bias and for 30 %% of the users\n"
"taste, starts at the device slices).\n",
	    prog);
}

static int
mkdirs(const char *p)
{
	char b[1200];

	for (size_t i = 1; i <= strlen(p); i++) {
		if (p[i] != '/' && p[i] != '\0')
			continue;
		snprintf(b, sizeof(b), "%.*s", (int)i, p);
		if (mkdir(b, 0755) != 0 && errno != EEXIST)
			return -errno;
	}
	return 0;
}

/* Entry j of user u's chronological samples. */
static uint32_t
at(const struct run *r, uint32_t u, size_t j)
{
	return (uint32_t)r->all.v[r->all.uoff[u] + j];
}

/* A seeded hash of user u for purpose k (cold share, fold, validation). */
static uint64_t
user_hash(const struct run *r, uint32_t u, uint64_t k)
{
	uint64_t h = r->seed * 0x9e3779b97f4a7c15ull ^ ((uint64_t)u << 16) ^ k;

	return rng_splitmix(&h);
}

static int
make_split(struct run *r, const double *fr, int nf, uint32_t min_dev)
{
	struct split *sp = &r->sp;
	uint32_t nu = r->ds.n_users;

	memset(sp, 0, sizeof(*sp));
	sp->k = nf - 1;
	sp->pool_tr = xcalloc(r->ds.n + 1, sizeof(uint32_t));
	sp->pool_va = xcalloc(r->ds.n + 1, sizeof(uint32_t));
	sp->dev = xcalloc((size_t)nu + 1, sizeof(uint32_t));
	sp->cold = xcalloc((size_t)nu + 1, 1);
	sp->cut = xcalloc((size_t)nu + 1, sizeof(*sp->cut));
	for (uint32_t u = 0; u < nu; u++) {
		size_t n = r->all.uoff[u + 1] - r->all.uoff[u], np, nv;
		double acc = 0;

		if (n >= min_dev) {
			size_t *c = sp->cut[sp->ndev];
			c[0] = 0;
			for (int k = 0; k < nf; k++) {
				acc += fr[k];
				c[k + 1] = k == nf - 1 ? n :
				    (size_t)floor(acc * (double)n + 1e-9);
			}
			np = c[1];
			if (user_hash(r, u, 1) % 1000 < (uint64_t)(r->cold *
			    1000 + 0.5)) {
				sp->cold[sp->ndev] = 1;
				np = 0;		/* nothing reaches the pool */
			}
			sp->dev[sp->ndev++] = u;
		} else
			np = n;
		/* cloudd's train.val-frac 0.1: each user's last pool share. */
		nv = (size_t)(0.1 * (double)np + 0.5);
		if (nv >= np)
			nv = np > 0 ? np - 1 : 0;
		for (size_t j = 0; j < np; j++) {
			if (j < np - nv)
				sp->pool_tr[sp->ntr++] = at(r, u, j);
			else
				sp->pool_va[sp->nva++] = at(r, u, j);
		}
	}
	return sp->ndev > 0 && sp->ntr > 0 ? 0 : -EINVAL;
}

static int
train_v1(struct run *r, int patience, int epochs, struct ctr **out)
{
	struct ctr_config cfg;
	struct ctr_train_opts o;
	struct ctr_train_stats st;
	int rc;

	train_model_defaults(&cfg, &r->ds);	/* cloudd's train.* */
	cfg.item_prior = r->prior;
	if ((rc = ctr_new(out, &cfg, r->seed)) != 0)
		return rc;
	ctr_train_opts_default(&o);
	ctr_opt_default(&o.opt, CTR_OPT_ADAM, 0.001f);
	o.epochs = epochs;
	o.batch = 256;
	o.patience = patience;
	o.seed = r->seed;
	rc = ctr_train(*out, &r->ds, r->sp.pool_tr, r->sp.ntr, r->sp.pool_va,
	    r->sp.nva, &o, &st);
	fprintf(stderr, "%s: v1 (patience %d): best epoch %d of %d, val "
	    "logloss %.4f\n", prog, patience, st.best_epoch, st.epochs,
	    st.val_loss);
	if (rc == 0 && r->prior) {
		struct train_prior tp;

		if ((rc = train_model_finish_default(out, &r->ds,
		    r->sp.pool_tr, r->sp.ntr, r->sp.pool_va, r->sp.nva,
		    &tp)) == 0)
			fprintf(stderr, "%s: v1 (patience %d): item prior "
			    "weight %g (pool-val GAUC %.4f, at 0 %.4f)\n", prog,
			    patience, tp.w, tp.g, tp.g0);
	}
	return rc;
}

static double
auc_of(struct ctr *m, const struct dataset *ds, const uint32_t *idx,
    size_t n)
{
	float *s = xcalloc(n + 1, sizeof(float)), *y = xcalloc(n + 1,
	    sizeof(float));
	int pos = 0, neg = 0;
	double a = -1;

	for (size_t i = 0; i < n; i++) {
		y[i] = ds->s[idx[i]].label >= 0.5f ? 1.0f : 0.0f;
		pos += y[i] > 0;
		neg += y[i] == 0;
	}
	if (pos > 0 && neg > 0 && ctr_predict(m, ds, idx, n, s) == 0)
		a = metrics_auc(s, y, n);
	free(s);
	free(y);
	return a;
}

/*
 * How far an adopted patch is from what the cloud already has (the
 * evidence for "the devices add nothing measurable"): the squared
 * distance of u's patched m rows from the cloud's own, and on u's pool
 * samples (what distillation trains on) the mean |p_teacher - p_cloud|
 * next to the cloud's own error |y - p_cloud|.
 */
static void
patch_gap(struct run *r, size_t d, struct ctr *m, struct ctr *c)
{
	uint32_t u = r->sp.dev[d];
	size_t np = r->sp.cut[d][1];
	uint32_t *idx = xcalloc(np + 1, sizeof(*idx));
	float *p0 = xcalloc(np + 1, sizeof(float));
	float *p1 = xcalloc(np + 1, sizeof(float));

	for (int i = 0; i < ctr_num_tensors(c); i++) {
		const struct param_tensor *s = ctr_tensor_at(c, i);
		const struct param_tensor *t = ctr_tensor_at(m, i);
		if (s->kind != CTR_T_PATCH_M)
			continue;
		for (uint32_t k = 0; k < s->shape[1]; k++) {
			double a = s->data[(size_t)u * s->shape[1] + k];
			double b = t->data[(size_t)u * s->shape[1] + k];
			r->gap.dm += (a - b) * (a - b);
			r->gap.m0 += b * b;
		}
	}
	for (size_t j = 0; j < np; j++)
		idx[j] = at(r, u, j);
	if (np > 0 && ctr_predict(m, &r->ds, idx, np, p0) == 0 &&
	    ctr_predict(c, &r->ds, idx, np, p1) == 0) {
		for (size_t j = 0; j < np; j++) {
			double y = r->ds.s[idx[j]].label;
			double q0 = fmin(fmax(p0[j], 1e-7), 1 - 1e-7);
			double q1 = fmin(fmax(p1[j], 1e-7), 1 - 1e-7);
			r->gap.dp += fabs((double)p1[j] - p0[j]);
			r->gap.err += fabs(y - p0[j]);
			r->gap.ll0 -= y * log(q0) + (1 - y) * log(1 - q0);
			r->gap.ll1 -= y * log(q1) + (1 - y) * log(1 - q1);
		}
		r->gap.n_pool += np;
	}
	r->gap.n++;
	free(idx);
	free(p0);
	free(p1);
}

/*
 * MetaPatch from m on idx[0..nt) as deviced trains it (learn.lr 0.01 or
 * --patch-lr, 10
 * epochs, batch 32, patience 2 on idx[nt..nt+nv)) and deviced's guard
 * there: lower logloss and no lower AUC than m. Returns 1 if it passes
 * (*out then the patched clone, which the caller frees), else 0.
 */
static int
patch_fold(struct run *r, struct ctr *m, const uint32_t *idx, size_t nt,
    size_t nv, struct ctr **out)
{
	struct ctr *c = ctr_clone(m);
	struct ctr_train_opts o;
	struct ctr_train_stats st;
	double base, auc0;
	int ok = 0;

	*out = NULL;
	ctr_eval_logloss(c, &r->ds, idx + nt, nv, &base);
	auc0 = auc_of(c, &r->ds, idx + nt, nv);
	ctr_train_opts_default(&o);
	ctr_opt_default(&o.opt, CTR_OPT_ADAM, (float)r->patch_lr);
	o.sel = CTR_SEL_METAPATCH_ONLY;
	o.epochs = 10;
	o.batch = 32;
	o.patience = 2;
	o.seed = r->seed;
	if (ctr_train(c, &r->ds, idx, nt, idx + nt, nv, &o, &st) == 0 &&
	    st.val_loss < base)
		ok = auc_of(c, &r->ds, idx + nt, nv) >= auc0;
	if (ok)
		*out = c;
	else
		ctr_free(c);
	return ok;
}

/*
 * Device u in round rd on cloud model m: MetaPatch on S_rd as deviced
 * does (learn.lr 0.01, 10 epochs, batch 32, patience 2, guard). Returns
 * 1 and writes u's m rows into teacher if adopted, else 0. With cv the
 * patch teaches only if the same procedure one fold earlier (trained on
 * the first half of the training part, checked on its second half) also
 * passed the guard: forward-chaining evidence, from S_rd alone, that
 * this device's patches hold on its later data.
 */
/*
 * Device u's learning job as deviced runs it (learn_run: MetaPatch, its
 * setting by CV over the local samples, the guard, the bias fallback)
 * on idx[0..n) over model m. Returns 1 when it uploads an adopted
 * MetaPatch (learn_result.taught; not the bias alone): *res then
 * holds the m rows it uploads. The caller frees *res (learn_result_fini)
 * whenever n > 0.
 */
static int
deviced_job(struct run *r, uint32_t u, const struct ctr *m,
    const uint32_t *idx, size_t n, struct learn_result *res)
{
	struct dataset local, none;
	struct learn_prep p;
	size_t *ix = xcalloc(n + 1, sizeof(size_t));
	struct learn_in in;

	for (size_t j = 0; j < n; j++)
		ix[j] = idx[j];
	dataset_init(&local);
	dataset_init(&none);
	dataset_append_subset(&local, &r->ds, ix, n);
	memset(&in, 0, sizeof(in));
	in.cf = &r->dcf;
	in.model = m;
	in.local = &local;
	in.retrieved = &none;
	in.user = u;
	in.global_ctr = r->r_g;
	learn_run(&in, &p, NULL, res);
	learn_prep_fini(&p);
	dataset_fini(&local);
	dataset_fini(&none);
	free(ix);
	return res->rc == 0 && res->taught && res->n_patch > 0;
}

/*
 * device() with deviced's own job on the training part idx[0..nt): with
 * cv, the same job on its first half must adopt too.
 */
static int
device_deviced(struct run *r, size_t d, struct ctr *m, struct ctr *teacher,
    const uint32_t *idx, size_t nt, int cv)
{
	uint32_t u = r->sp.dev[d];
	struct learn_result res;
	struct ctr *c;
	int adopted;

	if (cv) {
		size_t h = nt / 2;

		if (h == 0)
			return 0;
		adopted = deviced_job(r, u, m, idx, h, &res);
		learn_result_fini(&res);
		if (!adopted)
			return 0;
	}
	adopted = deviced_job(r, u, m, idx, nt, &res);
	if (adopted && teacher != NULL) {
		/* what the cloud holds of it: the uploaded m rows */
		if ((c = ctr_clone(m)) != NULL) {
			if (ctr_io_patch_put(c, u, res.patch, res.n_patch) == 0)
				patch_gap(r, d, m, c);
			ctr_free(c);
		}
		if (ctr_io_patch_put(teacher, u, res.patch, res.n_patch) != 0)
			adopted = 0;
	}
	learn_result_fini(&res);
	return adopted;
}

/*
 * Device d's slice rd: idx (n samples, caller frees), of which the first
 * *nt train and the rest (20 %) validate. NULL when either part is empty.
 */
static uint32_t *
slice_of(const struct run *r, size_t d, int rd, size_t *n, size_t *nt)
{
	uint32_t u = r->sp.dev[d], *idx;
	size_t lo = r->sp.cut[d][rd], hi = r->sp.cut[d][rd + 1];
	size_t nv = (size_t)(0.2 * (double)(hi - lo) + 0.5);

	*n = hi - lo;
	if (nv >= *n)
		nv = *n > 0 ? *n - 1 : 0;
	*nt = *n - nv;
	if (*nt == 0 || nv == 0)
		return NULL;
	idx = xcalloc(*n, sizeof(*idx));
	for (size_t j = 0; j < *n; j++)
		idx[j] = at(r, u, lo + j);
	return idx;
}

static int
device(struct run *r, size_t d, int rd, struct ctr *m, struct ctr *teacher,
    int cv)
{
	uint32_t u = r->sp.dev[d], *idx;
	size_t n, nt, nv;
	struct ctr *c;
	int adopted;

	if ((idx = slice_of(r, d, rd, &n, &nt)) == NULL)
		return 0;
	nv = n - nt;
	if (r->patch_lr == 0) {
		adopted = device_deviced(r, d, m, teacher, idx, nt, cv);
		free(idx);
		return adopted;
	}
	if (cv) {
		struct ctr *c1;
		size_t h = nt / 2;
		/* no earlier fold to check: such a device does not teach */
		if (h == 0 || !patch_fold(r, m, idx, h, nt - h, &c1)) {
			free(idx);
			return 0;
		}
		ctr_free(c1);
	}
	adopted = patch_fold(r, m, idx, nt, nv, &c);
	if (adopted && teacher != NULL)
		patch_gap(r, d, m, c);
	if (adopted && teacher != NULL) {
		for (int i = 0; i < ctr_num_tensors(c); i++) {
			const struct param_tensor *s = ctr_tensor_at(c, i);
			const struct param_tensor *t = ctr_tensor_at(teacher, i);
			if (s->kind != CTR_T_PATCH_M)
				continue;
			memcpy(t->data + (size_t)u * s->shape[1],
			    s->data + (size_t)u * s->shape[1],
			    s->shape[1] * sizeof(float));
		}
	}
	ctr_free(c);
	free(idx);
	return adopted;
}

/* Appends m's predictions on slice k of every device (val: last 20 %). */
static int
predict(struct run *r, struct ctr *m, const char *name, int k, int val,
    FILE *fp)
{
	for (size_t d = 0; d < r->sp.ndev; d++) {
		uint32_t u = r->sp.dev[d], idx[4096];
		size_t lo = r->sp.cut[d][k], hi = r->sp.cut[d][k + 1], n;
		float p[4096];

		if (val) {
			size_t nv = (size_t)(0.2 * (double)(hi - lo) + 0.5);
			if (nv >= hi - lo)
				nv = hi - lo > 0 ? hi - lo - 1 : 0;
			lo = hi - nv;
		}
		for (; lo < hi; lo += n) {
			n = hi - lo < 4096 ? hi - lo : 4096;
			for (size_t j = 0; j < n; j++)
				idx[j] = at(r, u, lo + j);
			if (ctr_predict(m, &r->ds, idx, n, p) != 0)
				return -EINVAL;
			for (size_t j = 0; j < n; j++) {
				const struct sample *s = &r->ds.s[idx[j]];
				fprintf(fp, "%s,%u,%u,%g,%.6f\n", name, u,
				    s->item, s->label >= 0.5f ? 1.0 : 0.0,
				    p[j]);
			}
		}
	}
	return 0;
}

static FILE *
open_preds(const struct run *r, const char *what, int rd)
{
	char p[1200];
	FILE *fp;

	snprintf(p, sizeof(p), "%s/%s/r%d", r->out, what, rd);
	if (mkdirs(p) != 0)
		return NULL;
	snprintf(p, sizeof(p), "%s/%s/r%d/preds.csv", r->out, what, rd);
	if ((fp = fopen(p, "w")) == NULL)
		fprintf(stderr, "%s: %s: %s\n", prog, p, strerror(errno));
	return fp;
}

/* Whether name is in the comma-separated list only (NULL: every arm). */
static int
arm_wanted(const char *only, const char *name)
{
	size_t n = strlen(name);

	for (const char *p = only; p != NULL; p = strchr(p, ',')) {
		if (*p == ',')
			p++;
		if (strncmp(p, name, n) == 0 && (p[n] == ',' || p[n] == '\0'))
			return 1;
	}
	return only == NULL;
}

/*
 * The encoder arms' state for one round: every device's features over the
 * samples it trained on in S_r (under v1), and a scratch copy of v1 whose
 * rows the validation overwrites and restores.
 */
struct encr {
	struct run	*r;
	int		 rd;
	struct ctr	*v1, *m;
	int		 nin, nout;
	float		*x;		/* ndev x nin */
	size_t		*val;		/* validation devices */
	size_t		 nval;
};

/*
 * enc_distill_fit's validation: the logloss of the validation devices'
 * own validation slices (the last 20 % of S_r) with e's rows in place of
 * theirs.
 */
static double
encr_val(void *arg, const struct enc *e)
{
	struct encr *er = arg;
	float rows[ENC_MAX_OUT], keep[ENC_MAX_OUT];
	double sum = 0, ll;
	size_t tot = 0;

	for (size_t i = 0; i < er->nval; i++) {
		size_t d = er->val[i], n, nt;
		uint32_t u = er->r->sp.dev[d];
		uint32_t *idx = slice_of(er->r, d, er->rd, &n, &nt);

		if (idx == NULL)
			continue;
		enc_rows_get(er->m, u, keep);
		enc_apply(e, er->x + d * (size_t)er->nin, rows);
		enc_rows_set(er->m, u, rows);
		if (ctr_eval_logloss(er->m, &er->r->ds, idx + nt, n - nt,
		    &ll) == 0) {
			sum += ll * (double)(n - nt);
			tot += n - nt;
		}
		enc_rows_set(er->m, u, keep);
		free(idx);
	}
	return tot > 0 ? sum / (double)tot : NAN;
}

/* Cold user u's cross-fitting fold (0 or 1). */
static int
cold_fold(const struct run *r, uint32_t u)
{
	return (int)(user_hash(r, u, 2) & 1);
}

/*
 * enc-dev's encoder for the cold users of fold f: fitted on the adopted
 * uploads of round rd (taught[d], teacher rows in trow) of every device
 * but fold f's cold ones, a seeded fifth of those held out to validate.
 * Below ENC_MIN_PAIRS training uploads or ENC_MIN_VAL validation devices
 * it returns -EAGAIN: the cloud keeps the pool's encoder.
 */
#define ENC_MIN_PAIRS	20
#define ENC_MIN_VAL	5
static int
encr_fit_fold(struct encr *er, const unsigned char *taught,
    const float *trow, int f, struct enc **out)
{
	struct run *r = er->r;
	size_t nd = r->sp.ndev, np = 0, D = (size_t)ctr_config(er->v1)->dim;
	size_t mhi = (size_t)er->nout - 1;	/* m rows: [D, nout - 1) */
	float *x = xcalloc(nd * (size_t)er->nin + 1, sizeof(float));
	float *rows = xcalloc(nd * (size_t)er->nout + 1, sizeof(float));
	unsigned char *mask = xcalloc(nd * (size_t)er->nout + 1, 1);
	struct enc_pairs p;
	struct enc_fit_opts o;
	struct enc_distill_report rep;
	int rc;

	er->nval = 0;
	for (size_t d = 0; d < nd; d++) {
		uint32_t u = r->sp.dev[d];
		if (!taught[d] || (r->sp.cold[d] && cold_fold(r, u) == f))
			continue;
		if (user_hash(r, u, 3) % 5 == 0) {
			er->val[er->nval++] = d;
			continue;
		}
		memcpy(x + np * (size_t)er->nin, er->x + d * (size_t)er->nin,
		    (size_t)er->nin * sizeof(float));
		memcpy(rows + np * (size_t)er->nout, trow + d *
		    (size_t)er->nout, (size_t)er->nout * sizeof(float));
		for (size_t o2 = 0; o2 < (size_t)er->nout; o2++)
			mask[np * (size_t)er->nout + o2] = !r->sp.cold[d] ||
			    (o2 >= D && o2 < mhi);
		np++;
	}
	if (np < ENC_MIN_PAIRS || er->nval < ENC_MIN_VAL) {
		fprintf(stderr, "%s: round %d enc-dev fold %d: %zu uploads, %zu "
		    "validation devices: too few to distill (%d, %d); the "
		    "pool's encoder\n", prog, er->rd, f, np, er->nval,
		    ENC_MIN_PAIRS, ENC_MIN_VAL);
		free(x);
		free(rows);
		free(mask);
		return -EAGAIN;
	}
	p.n = np;
	p.x = x;
	p.rows = rows;
	p.mask = mask;
	enc_fit_opts_default(&o);
	o.seed = r->seed + 1000u * (uint64_t)er->rd + (uint64_t)f;
	rc = enc_distill_fit(out, er->v1, &p, &o, encr_val, er, &rep);
	fprintf(stderr, "%s: round %d enc-dev fold %d: %zu uploads, %zu "
	    "validation devices, val logloss %.4f (mean rows) -> %.4f "
	    "(epoch %d of %d), train error %.4f, rc %d\n", prog, er->rd, f,
	    rep.n, er->nval, rep.val0, rep.val, rep.best_epoch, rep.epochs,
	    rep.mse, rc);
	free(x);
	free(rows);
	free(mask);
	return rc;
}

/* enc-pool's encoder, fitted on the pool once per run (v1 never changes). */
static int
pool_encoder(struct run *r, const struct ctr *v1)
{
	struct ctr *c;
	struct enc_fit_opts o;
	struct enc_fit_report fr;
	int rc;

	if (r->enc_pool != NULL)
		return 0;
	c = ctr_clone(v1);
	enc_fit_opts_default(&o);
	o.seed = r->seed;
	rc = enc_fit(&r->enc_pool, c, &r->ds, r->sp.pool_tr, r->sp.ntr,
	    r->sp.pool_va, r->sp.nva, &o, &fr);
	fprintf(stderr, "%s: enc-pool: %zu users, val logloss learned rows "
	    "%.4f, const %.4f, fit %.4f, reg %.4f; chose %s, rc %d\n", prog,
	    fr.n_users, fr.val_rows, fr.val_const, fr.val_fit, fr.val_reg,
	    enc_mode_name(fr.chosen), rc);
	ctr_free(c);
	return rc;
}

/*
 * One round of enc-pool or enc-dev: v1 with each cold user's rows from
 * the arm's encoder on that device's S_r training samples; every other
 * user keeps v1's rows.
 */
static int
round_enc(struct run *r, struct arm *a, int rd, FILE *fv, FILE *ft,
    FILE *fa)
{
	struct encr er;
	struct ctr *scored = ctr_clone(a->m);
	struct enc *e[2] = { NULL, NULL };
	unsigned char *taught = NULL;
	float *trow = NULL, rows[ENC_MAX_OUT];
	size_t nd = r->sp.ndev, nup = 0;
	int rc = 0;

	memset(&er, 0, sizeof(er));
	er.r = r;
	er.rd = rd;
	er.v1 = a->m;
	if (enc_shape(a->m, &er.nin, &er.nout) != 0) {
		fprintf(stderr, "%s: %s: the model has no encoder shape\n",
		    prog, a->name);
		ctr_free(scored);
		return -EINVAL;
	}
	er.x = xcalloc(nd * (size_t)er.nin + 1, sizeof(float));
	for (size_t d = 0; d < nd; d++) {
		size_t n, nt;
		uint32_t *idx = slice_of(r, d, rd, &n, &nt);
		enc_features(a->m, &r->ds, idx, idx != NULL ? nt : 0,
		    er.x + d * (size_t)er.nin);
		free(idx);
	}
	if (a->kind == ARM_ENC_POOL) {
		if ((rc = pool_encoder(r, a->m)) == 0) {
			e[0] = enc_clone(r->enc_pool);
			e[1] = enc_clone(r->enc_pool);
		}
	} else {
		/* The round's uploads: deviced's job on v1, as teachers. */
		struct ctr *t = ctr_clone(a->m);
		taught = xcalloc(nd + 1, 1);
		trow = xcalloc(nd * (size_t)er.nout + 1, sizeof(float));
		for (size_t d = 0; d < nd; d++) {
			taught[d] = (unsigned char)device(r, d, rd, a->m, t, 0);
			enc_rows_get(t, r->sp.dev[d], trow + d *
			    (size_t)er.nout);
			nup += taught[d];
		}
		ctr_free(t);
		er.m = ctr_clone(a->m);
		er.val = xcalloc(nd + 1, sizeof(size_t));
		for (int f = 0; f < 2 && rc == 0; f++) {
			rc = encr_fit_fold(&er, taught, trow, f, &e[f]);
			if (rc != -EAGAIN)
				continue;
			/* Too few device models: cloudd keeps its encoder. */
			if ((rc = pool_encoder(r, a->m)) == 0)
				e[f] = enc_clone(r->enc_pool);
		}
	}
	for (size_t d = 0; d < nd && rc == 0; d++) {
		uint32_t u = r->sp.dev[d];
		if (!r->sp.cold[d])
			continue;
		enc_apply(e[cold_fold(r, u)], er.x + d * (size_t)er.nin, rows);
		enc_rows_set(scored, u, rows);
	}
	if (rc == 0) {
		fprintf(fa, "%d,%s,%zu,0,nan,nan,0,0,nan,nan\n", rd, a->name, nup);
		if ((rc = predict(r, scored, a->name, rd, 1, fv)) == 0)
			rc = predict(r, scored, a->name, rd + 1, 0, ft);
	}
	enc_free(e[0]);
	enc_free(e[1]);
	ctr_free(scored);
	ctr_free(er.m);
	free(er.x);
	free(er.val);
	free(taught);
	free(trow);
	return rc;
}

/* One round of one arm; FILEs get the arm's predictions. */
static int
round_arm(struct run *r, struct arm *a, int rd, FILE *fv, FILE *ft,
    FILE *fa)
{
	struct ctr *teacher = NULL;
	struct distill_pick *pk = NULL;
	struct distill_stats st;
	struct ctr_train_opts o;
	size_t np = 0;
	double vb = NAN, gain = NAN, se = NAN;
	float *p0;
	int rc = 0;

	if (a->kind == ARM_ENC_POOL || a->kind == ARM_ENC_DEV)
		return round_enc(r, a, rd, fv, ft, fa);
	memset(&st, 0, sizeof(st));
	st.val_before = st.val_after = NAN;
	memset(&r->gap, 0, sizeof(r->gap));
	if (a->kind == ARM_TEACH) {
		/* a->m stays v1; the round's teachers are scored instead */
		teacher = ctr_clone(a->m);
		for (size_t d = 0; d < r->sp.ndev; d++)
			np += (size_t)device(r, d, rd, a->m, teacher, a->cv);
		fprintf(fa, "%d,%s,%zu,0,nan,nan,0,0,nan,nan\n", rd, a->name, np);
		rc = predict(r, teacher, a->name, rd, 1, fv);
		if (rc == 0)
			rc = predict(r, teacher, a->name, rd + 1, 0, ft);
		ctr_free(teacher);
		return rc;
	}
	if (a->kind != ARM_STATIC) {
		teacher = ctr_clone(a->m);
		pk = xcalloc(r->sp.ndev + 1, sizeof(*pk));
		for (size_t d = 0; d < r->sp.ndev; d++) {
			/* lam0 needs no teachers: every weight is 0. */
			if (a->kind == ARM_LAM0 || !device(r, d, rd, a->m,
			    a->kind == ARM_SELF ? NULL : teacher, a->cv))
				continue;
			pk[np].user = r->sp.dev[d];
			pk[np].weight = (float)r->lambda;
			pk[np].teacher = 0;
			pk[np].recent = a->recent ? (float)r->recent : 0;
			np++;
		}
		ctr_train_opts_default(&o);
		ctr_opt_default(&o.opt, CTR_OPT_ADAM, 0.0005f);
		o.epochs = r->distill_epochs;
		o.batch = 256;
		o.patience = 2;
		o.seed = r->seed + 1000u * (uint64_t)rd;
		if (a->fixed)
			ctr_eval_logloss(a->m, &r->ds, r->sp.pool_va,
			    r->sp.nva, &vb);
		/* the starting model's scores, for cloudd's acceptance test */
		p0 = xcalloc(r->sp.nva + 1, sizeof(*p0));
		if (ctr_predict(a->m, &r->ds, r->sp.pool_va, r->sp.nva,
		    p0) != 0) {
			free(p0);
			p0 = NULL;
		}
		if (a->uv == UV_ONLY)
			o.sel = CTR_SEL_PATCH_UV;
		rc = distill_fit(a->m, &r->ds, r->sp.pool_tr, r->sp.ntr,
		    r->sp.pool_va, a->fixed ? 0 : r->sp.nva, &teacher, pk,
		    np, &o, (a->freeze ? DISTILL_FIT_FREEZE_USERS : 0) |
		    (a->center ? DISTILL_FIT_CENTER : 0), &st);
		if (rc == 0 && a->uv == UV_AFTER) {
			/* arms.csv gets the second step's validation */
			struct distill_stats st2;
			o.sel = CTR_SEL_PATCH_UV;
			rc = distill_fit(a->m, &r->ds, r->sp.pool_tr,
			    r->sp.ntr, r->sp.pool_va, r->sp.nva, &teacher, pk,
			    np, &o, 0, &st2);
			fprintf(stderr, "%s: round %d %-16s step 2 (U, V): val "
			    "logloss %.4f -> %.4f (best epoch %d)\n", prog, rd,
			    a->name, st2.val_before, st2.val_after,
			    st2.best_epoch);
			st.val_after = st2.val_after;
			st.best_epoch = st2.best_epoch;
			st.epochs += st2.epochs;
		}
		ctr_free(teacher);
		free(pk);
		if (rc == 0 && p0 != NULL && (st.best_epoch > 0 ||
		    a->fixed) && distill_val_gain(a->m, p0, &r->ds, r->sp.pool_va,
		    r->sp.nva, &gain, &se) != 0)
			gain = se = NAN;
		free(p0);
		if (rc != 0) {
			fprintf(stderr, "%s: %s round %d: distill_fit %d\n",
			    prog, a->name, rd, rc);
			return rc;
		}
	}
	if (a->fixed && a->kind != ARM_STATIC) {
		st.val_before = vb;
		ctr_eval_logloss(a->m, &r->ds, r->sp.pool_va, r->sp.nva,
		    &st.val_after);
	}
	fprintf(fa, "%d,%s,%zu,%zu,%.5f,%.5f,%d,%d,%.6f,%.6f\n", rd, a->name,
	    np, st.n_soft, st.val_before, st.val_after, st.best_epoch,
	    st.epochs, gain, se);
	fprintf(stderr, "%s: round %d %-16s adopted %4zu soft %6zu val "
	    "logloss %.4f -> %.4f (best epoch %d)", prog, rd, a->name, np,
	    st.n_soft, st.val_before, st.val_after, st.best_epoch);
	if (isfinite(gain))
		fprintf(stderr, ", gain %.5f (se %.5f): cloudd would %s",
		    gain, se, gain - r->accept_z * se > 0 ? "publish" :
		    "keep the current model");
	fputc('\n', stderr);
	if (r->gap.n > 0 && r->gap.n_pool > 0)
		fprintf(stderr, "%s: round %d %-16s patch gap: %zu adopted, "
		    "|m_u - m_cloud| / |m_cloud| %.3f, on their %zu pool "
		    "samples mean |p_u - p| %.4f vs |y - p| %.4f, logloss "
		    "teacher %.4f vs cloud %.4f\n", prog, rd,
		    a->name, r->gap.n, r->gap.m0 > 0 ? sqrt(r->gap.dm /
		    r->gap.m0) : NAN, r->gap.n_pool, r->gap.dp /
		    (double)r->gap.n_pool, r->gap.err / (double)r->gap.n_pool,
		    r->gap.ll1 / (double)r->gap.n_pool,
		    r->gap.ll0 / (double)r->gap.n_pool);
	if ((rc = predict(r, a->m, a->name, rd, 1, fv)) != 0 ||
	    (rc = predict(r, a->m, a->name, rd + 1, 0, ft)) != 0)
		return rc;
	return 0;
}

int
main(int argc, char **argv)
{
	static const struct option lo[] = {
		{ "seed", required_argument, NULL, 's' },
		{ "slices", required_argument, NULL, 'f' },
		{ "min-dev", required_argument, NULL, 'm' },
		{ "synth", required_argument, NULL, 'y' },
		{ "lambda", required_argument, NULL, 'l' },
		{ "distill-epochs", required_argument, NULL, 'e' },
		{ "recent", required_argument, NULL, 'r' },
		{ "arms", required_argument, NULL, 'a' },
		{ "no-prior", no_argument, NULL, 'P' },
		{ "patch-lr", required_argument, NULL, 'L' },
		{ "cold", required_argument, NULL, 'c' },
		{ "device-opt", required_argument, NULL, 'o' },
		{ "accept-z", required_argument, NULL, 'z' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 }
	};
	struct run r;
	struct dataset_meta meta;
	struct dataset_opts dopt;
	struct dataset_err e;
	double fr[MAX_SLICES + 1] = { 0.7, 0.1, 0.1, 0.1 }, sum = 0;
	int nf = 4, ch, rc = 1, synth = 0;
	const char *only = NULL;	/* --arms: run only these */
	uint32_t min_dev = 20;
	size_t ncold = 0;
	const char *dopts[MAX_DOPTS];
	int ndopt = 0;
	struct ctr *v1 = NULL, *conv = NULL;
	FILE *fa = NULL, *fc = NULL;
	char p[1200];

	openblas_set_num_threads(1);
	memset(&r, 0, sizeof(r));
	r.seed = 1;
	r.lambda = 1.0;
	r.prior = TRAIN_ITEM_PRIOR;
	r.patch_lr = 0;		/* deviced's own job */
	r.distill_epochs = 3;
	r.recent = 0.2;
	r.accept_z = 2;		/* cloudd's distill.accept-z default */
	while ((ch = getopt_long(argc, argv, "h", lo, NULL)) != -1) {
		char *end = NULL, *s, *tok, *save = NULL;
		switch (ch) {
		case 's':
			r.seed = strtoull(optarg, &end, 10);
			break;
		case 'm':
			min_dev = (uint32_t)strtoul(optarg, &end, 10);
			break;
		case 'y':
			synth = (int)strtol(optarg, &end, 10);
			break;
		case 'l':
			r.lambda = strtod(optarg, &end);
			break;
		case 'a':
			only = optarg;
			end = "";
			break;
		case 'P':
			r.prior = 0;
			end = "";
			break;
		case 'L':
			r.patch_lr = strtod(optarg, &end);
			if (!(r.patch_lr > 0 && r.patch_lr <= 1))
				end = "x";	/* out of range: usage error */
			break;
		case 'r':
			r.recent = strtod(optarg, &end);
			break;
		case 'o':
			end = ndopt < MAX_DOPTS ? "" : "x";
			if (ndopt < MAX_DOPTS)
				dopts[ndopt++] = optarg;
			break;
		case 'c':
			r.cold = strtod(optarg, &end);
			if (!(r.cold >= 0 && r.cold < 1))
				end = "x";	/* out of range: usage error */
			break;
		case 'e':
			r.distill_epochs = (int)strtol(optarg, &end, 10);
			break;
		case 'z':
			r.accept_z = strtod(optarg, &end);
			if (!(r.accept_z >= 0 && r.accept_z <= 100))
				end = "x";	/* cloudd's range */
			break;
		case 'f':
			nf = 0;
			s = xstrdup(optarg);
			for (tok = strtok_r(s, ",", &save); tok != NULL;
			    tok = strtok_r(NULL, ",", &save)) {
				if (nf > MAX_SLICES)
					break;
				fr[nf++] = strtod(tok, NULL);
			}
			free(s);
			end = "";
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
		if (end == NULL || *end != '\0') {
			fprintf(stderr, "%s: bad number '%s'\n", prog, optarg);
			return 2;
		}
	}
	for (int i = 0; i < nf; i++)
		sum += fr[i];
	if (argc - optind != 2 || nf < 3 || nf > MAX_SLICES + 1 ||
	    fabs(sum - 1) > 1e-6 || min_dev < 2 * (uint32_t)nf ||
	    r.distill_epochs < 1 || r.lambda < 0 || synth < 0 ||
	    !(r.recent > 0 && r.recent <= 1)) {
		usage(stderr);
		return 2;
	}
	r.out = argv[optind + 1];
	dataset_init(&r.ds);
	dataset_meta_init(&meta);
	if (synth > 0) {
		struct synth_opts so;
		struct synth_truth *truth = NULL;

		synth_opts_default(&so);
		so.n_users = (uint32_t)synth;
		so.drift_start = fr[0];
		/*
		 * A per-user bias shift alone leaves every per-user AUC as it
		 * is; a change of taste is what ranking (GAUC) can see.
		 */
		so.taste_drift = 0.3;
		so.seed = 7;	/* the data stay fixed across seeds */
		if (dataset_synth(&r.ds, &meta, &truth, &so) != 0) {
			fprintf(stderr, "%s: synth failed\n", prog);
			goto out;
		}
		free(truth);
	} else {
		dataset_opts_default(&dopt);
		if (dataset_load_movielens(&r.ds, &meta, argv[optind], &dopt,
		    &e) != 0) {
			fprintf(stderr, "%s: %s: %s\n", prog, argv[optind],
			    e.msg);
			goto out;
		}
	}
	dataset_idx_all(&r.all, &r.ds);
	if (make_split(&r, fr, nf, min_dev) != 0) {
		fprintf(stderr, "%s: no device user (--min-dev)\n", prog);
		goto out;
	}
	/*
	 * The devices' own job: deviced's defaults, the pool's r_g. What a
	 * device uploads is the same MetaPatch whether it serves that patch
	 * or a fine-tuned model (learn_run fits the patch for the cloud
	 * then), and the fine-tuned model never leaves it; so the devices
	 * here serve MetaPatch (conf/deviced-metapatch.conf) and skip a
	 * fine-tuning whose result nothing here would read.
	 */
	if (conf_init(&r.dconf, deviced_opts, &r.dcf, stderr) != 0)
		goto out;
	r.have_dconf = 1;
	if (deviced_conf_metapatch(&r.dconf, prog) != 0)
		goto out;
	for (int i = 0; i < ndopt; i++)
		if (conf_set_arg(&r.dconf, dopts[i], CONF_SRC_FLAG) != 0)
			goto out;
	for (size_t i = 0; i < r.sp.ntr; i++)
		r.r_g += r.ds.s[r.sp.pool_tr[i]].label >= 0.5f;
	r.r_g /= r.sp.ntr > 0 ? (double)r.sp.ntr : 1;
	for (size_t d = 0; d < r.sp.ndev; d++)
		ncold += r.sp.cold[d];
	fprintf(stderr, "%s: %zu samples, %u users (%zu devices, %zu cold), "
	    "pool %zu train + %zu val, %d device slices, seed %llu\n", prog,
	    r.ds.n, r.ds.n_users, r.sp.ndev, ncold, r.sp.ntr, r.sp.nva,
	    r.sp.k, (unsigned long long)r.seed);
	if (mkdirs(r.out) != 0)
		goto out;
	snprintf(p, sizeof(p), "%s/counts", r.out);
	if ((fc = fopen(p, "w")) == NULL)
		goto out;
	for (size_t d = 0; d < r.sp.ndev; d++)
		fprintf(fc, "%u,%zu\n", r.sp.dev[d], r.sp.cold[d] ? 0 :
		    r.sp.cut[d][1]);
	fclose(fc);
	snprintf(p, sizeof(p), "%s/cold", r.out);
	if ((fc = fopen(p, "w")) == NULL)
		goto out;
	for (size_t d = 0; d < r.sp.ndev; d++)
		if (r.sp.cold[d])
			fprintf(fc, "%u\n", r.sp.dev[d]);
	if (fclose(fc) != 0)
		goto out;
	snprintf(p, sizeof(p), "%s/arms.csv", r.out);
	if ((fa = fopen(p, "w")) == NULL)
		goto out;
	fprintf(fa, "round,arm,adopted,soft,val_before,val_after,best_epoch,"
	    "epochs,val_gain,val_gain_se\n");
	if (train_v1(&r, 2, 100, &v1) != 0 || train_v1(&r, 6, 100,
	    &conv) != 0)
		goto out;
	for (size_t i = 0; i < N_ARMS; i++)
		arms[i].m = ctr_clone(arms[i].conv ? conv : v1);
	for (int rd = 1; rd < r.sp.k; rd++) {
		FILE *fv = open_preds(&r, "val", rd), *ft = open_preds(&r,
		    "test", rd);
		int bad = fv == NULL || ft == NULL;

		for (size_t i = 0; i < N_ARMS && !bad; i++)
			if (arm_wanted(only, arms[i].name))
				bad = round_arm(&r, &arms[i], rd, fv, ft,
				    fa) != 0;
		if (fv != NULL && fclose(fv) != 0)
			bad = 1;
		if (ft != NULL && fclose(ft) != 0)
			bad = 1;
		if (bad)
			goto out;
	}
	rc = 0;
out:
	if (fa != NULL && fclose(fa) != 0)
		rc = 1;
	for (size_t i = 0; i < N_ARMS; i++)
		ctr_free(arms[i].m);
	ctr_free(v1);
	ctr_free(conv);
	free(r.sp.pool_tr);
	free(r.sp.pool_va);
	free(r.sp.dev);
	free(r.sp.cold);
	free(r.sp.cut);
	enc_free(r.enc_pool);
	dataset_idx_fini(&r.all);
	if (r.have_dconf)
		conf_fini(&r.dconf);
	dataset_meta_fini(&meta);
	dataset_fini(&r.ds);
	return rc;
}
