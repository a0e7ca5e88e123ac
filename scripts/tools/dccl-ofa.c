/*
 * dccl-ofa: standalone Forward-OFA run on a split directory written by
 * `dccl-data split`: trains the cloud CTR model on the pool (cloudd's
 * defaults, item prior included unless --no-prior), then the Forward-OFA model on the same pool with the CTR
 * model's embeddings frozen, and evaluates on every user's test samples:
 *
 *   cloud      the uniform cloud CTR model
 *   cloud-nouser  the cloud model with its per-user MetaPatch m and bias
 *              rows zeroed (what a user's id alone brings besides its
 *              embedding, which OFA reads too): a diagnostic of the gap
 *              between OFA and the CTR model
 *   naive-ft   full fine-tuning of the cloud model on the user's local
 *              samples (deviced's defaults: Adam lr 1e-3, 1 epoch, batch 32)
 *   ofa-C      Forward-OFA for capability class C (low, mid, high): one
 *              forward pass over the user's most recent behaviour (end of
 *              the local share) gives the structure and parameters, which
 *              then score all of the user's test samples
 *   ofa-imp-C  the same with class C's budget and z recomputed for every
 *              impression (the history before it), as in training: no
 *              train/serve skew; its FLOPs include the controller and the
 *              mapper run for every prediction
 *   bc-C, bc-imp-C  the same with the behaviour controller (ofa_ctrl.h,
 *              --ctrl-hidden, default 16), z per device and per impression
 *   duet       the DUET-style per-sample generator (ofa_duet.h,
 *              --gen-hidden, default 32): every block, parameters
 *              generated from each impression's own z
 *   static     OFA's own backbone, trained alone on the same pool with
 *              the same options (OFA_GATE_STATIC: every block, no mapper):
 *              the baseline that Forward-OFA has to beat per FLOP
 *   cloud-full the CTR model on every training sample (cloudd's); the
 *              same as cloud except with --holdout
 *
 * Where OFA learns (OFA = the CTR logit + a residual): --res-val F
 * (default 0.5, cloudd's ofa.res-val) from each user's older 1 - F of the
 * pool's validation slice, which the CTR model did not fit, stopping on
 * its newest F; --res-val 0 from the CTR model's own training samples
 * (before 2026-12-03: the residual then stays 0); --holdout F (with
 * --res-val 0) fits the CTR model on each user's older training samples
 * only and OFA on the newest F of them. With --res-val, the run also
 * trains OFA in-sample and prints the rule (logloss of the CTR model,
 * in-sample and held-out OFA on the stop set) and, as a diagnostic, the
 * CTR logit recalibrated (Platt) on the same held-out part.
 * --lr-grid X,Y,.. trains every OFA-family model once per rate and keeps
 * the one of the lowest stop-set logloss.
 *
 * Every OFA model takes the cloud model's input options (side fields,
 * field dots and FM term with train.interaction; ofa_config_default).
 *
 * The spread of the structures each controller chose, across users (one
 * per device and class) and across impressions, is printed after the
 * table ("structures ..." lines; also DIR/ofa.spread with --preds). --preds DIR writes
 * DIR/ofa.csv (method,user,item,label,score per test sample, for
 * bin/dccl-eval over seeds) and DIR/ofa.extra (method,column,value:
 * flops, blocks), used by scripts/eval-cloud.sh.
 *
 * Prints GAUC, AUC, logloss, the paired per-user bootstrap interval of the
 * GAUC difference to the cloud model, blocks assembled, device time per
 * adaptation (us), FLOPs per prediction and bytes downloaded.
 *
 *   dccl-ofa SPLIT_DIR [--seed N] [--mu X] [--epochs N] [--blocks L]
 *            [--hidden H] [--inner F] [--rank R] [--lr X] [--save FILE]
 *            [--preds DIR] [--ctrl-hidden N] [--gen-hidden N]
 *            [--wd X] [--res-val F] [--holdout F] [--lr-grid X,Y,..]
 */
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "cloudd/train_model.h"
#include "scripts/tools/splitdir.h"
#include "shared/clock.h"
#include "shared/ml/ctr.h"
#include "shared/ml/ctr_io.h"
#include "shared/data/carve.h"
#include "shared/data/dataset.h"
#include "shared/ml/metrics.h"
#include "shared/ml/ofa.h"
#include "shared/ml/ofa_io.h"
#include "shared/xmalloc.h"

void	openblas_set_num_threads(int);

static const char *prog = "dccl-ofa";

static void
ofa_progress(void *arg, int epoch, double loss, double vl, double blocks)
{
	(void)arg;
	fprintf(stderr, "  ofa epoch %d: train %.4f val %.4f, mean blocks "
	    "%.2f\n", epoch, loss, vl, blocks);
}

enum { M_CLOUD = 0, M_FT, M_NOUSER, M_LOW, M_MID, M_HIGH, M_ILOW, M_IMID, M_IHIGH,
	M_BLOW, M_BMID, M_BHIGH, M_BILOW, M_BIMID, M_BIHIGH, M_DUET,
	M_STATIC, M_FULL, M_N };
static const char *mname[M_N] = { "cloud", "naive-ft", "cloud-nouser",
	"ofa-low", "ofa-mid",
	"ofa-high", "ofa-imp-low", "ofa-imp-mid", "ofa-imp-high", "bc-low",
	"bc-mid", "bc-high", "bc-imp-low", "bc-imp-mid", "bc-imp-high", "duet",
	"static", "cloud-full" };
/* The two controllers: model, first per-device and per-impression row. */
enum { V_OFA = 0, V_BC, V_N };
static const char *vname[V_N] = { "linear controller", "behaviour controller" };
static const int vdev[V_N] = { M_LOW, M_BLOW }, vimp[V_N] = { M_ILOW, M_BILOW };

/*
 * Distinct structures among n masks, the share of the commonest, and the
 * three commonest as text ("{0,2} 71%, ...") into top3 (len bytes).
 */
static void
spread(const uint32_t *mask, size_t n, int *distinct, double *top,
    char *top3, size_t len)
{
	size_t nm = (size_t)1 << OFA_MAX_BLOCKS, used = 0;
	size_t *cnt = xcalloc(nm, sizeof(*cnt));

	*distinct = 0;
	for (size_t i = 0; i < n; i++)
		if (mask[i] < nm && cnt[mask[i]]++ == 0)
			(*distinct)++;
	*top = 0;
	top3[0] = '\0';
	for (int r = 0; r < 3; r++) {
		size_t best = 0, bk = 0;
		for (size_t k = 0; k < nm; k++)
			if (cnt[k] > best) {
				best = cnt[k];
				bk = k;
			}
		if (best == 0)
			break;
		if (r == 0)
			*top = n ? (double)best / (double)n : 0;
		used += (size_t)snprintf(top3 + used, used < len ? len - used :
		    0, "%s{", r ? ", " : "");
		for (int l = 0; l < OFA_MAX_BLOCKS; l++)
			if ((bk >> l) & 1u)
				used += (size_t)snprintf(top3 + used, used < len ?
				    len - used : 0, "%s%d", (bk & ((1u << l) -
				    1)) ? "," : "", l);
		used += (size_t)snprintf(top3 + used, used < len ? len - used :
		    0, "} %.0f%%", 100.0 * (double)best / (double)n);
		cnt[bk] = 0;
	}
	free(cnt);
}

/* What every OFA fit of a run shares. */
struct fitset {
	struct ctr		*cloud;
	const struct dataset	*pool;
	const uint32_t		*tri, *vai;	/* what OFA learns, stops on */
	size_t			 ntr, nva;
	const double		*lrs;		/* the learning-rate grid */
	int			 nlr;
};

/*
 * One OFA-family model of config c and gate mode per learning rate of the
 * grid, each early-stopped on fs->vai; returns the one of the lowest
 * validation logloss there (the first on a tie), *st its stats and *lr
 * its rate. NULL on a bad config.
 */
static struct ofa *
fit_best(const struct fitset *fs, const struct ofa_config *c, int gate,
    uint64_t seed, struct ofa_train_opts *oo, struct ofa_train_stats *st,
    double *lr)
{
	struct ofa *best = NULL;
	struct ofa_train_stats s;

	for (int i = 0; i < fs->nlr; i++) {
		struct ofa *m;
		if (ofa_new(&m, c, seed) != 0)
			return NULL;
		ofa_set_gate_mode(m, gate);
		oo->lr = (float)fs->lrs[i];
		ofa_train(m, fs->cloud, fs->pool, fs->tri, fs->ntr, fs->vai,
		    fs->nva, oo, &s);
		if (fs->nlr > 1)
			printf("  lr %g: %d epochs (best %d), val logloss "
			    "%.4f\n", fs->lrs[i], s.epochs, s.best_epoch,
			    s.val_loss);
		if (best == NULL || s.val_loss < st->val_loss) {
			ofa_free(best);
			best = m;
			*st = s;
			*lr = fs->lrs[i];
		} else
			ofa_free(m);
	}
	return best;
}

/* Mean logloss of m over the budget classes on pool[idx] (n). */
static double
ofa_ll(struct ofa *m, const struct ctr *cloud, const struct dataset *ds,
    const uint32_t *idx, size_t n)
{
	float *p = xcalloc(n + 1, sizeof(float)), *y = xcalloc(n + 1,
	    sizeof(float));
	double ll = 0;

	for (size_t i = 0; i < n; i++)
		y[i] = ds->s[idx[i]].label;
	for (int k = 0; k < OFA_N_CLASSES; k++) {
		ofa_predict(m, cloud, ds, idx, n, ofa_class_budget[k], p, NULL);
		ll += metrics_logloss(p, y, n) / OFA_N_CLASSES;
	}
	free(p);
	free(y);
	return ll;
}

/*
 * Platt scaling of the CTR logit, a diagnostic of how much of what OFA
 * learns is calibration: sigma(a * logit + b) fitted by Newton's method
 * on pool[fit] (nf), its logloss on pool[ev] (ne) returned.
 */
static double
platt_ll(struct ctr *cloud, const struct dataset *ds, const uint32_t *fit,
    size_t nf, const uint32_t *ev, size_t ne, double *pa, double *pb)
{
	float *lg = xcalloc((nf > ne ? nf : ne) + 1, sizeof(float));
	float *p = xcalloc(ne + 1, sizeof(float)), *y = xcalloc(ne + 1,
	    sizeof(float));
	double a = 1, b = 0, ll;

	ctr_logits(cloud, ds, fit, nf, lg);
	for (int it = 0; it < 25; it++) {
		double ga = 0, gb = 0, haa = 0, hab = 0, hbb = 0, det;
		for (size_t i = 0; i < nf; i++) {
			double x = lg[i], q = 1 / (1 + exp(-(a * x + b)));
			double r = q - ds->s[fit[i]].label, w = q * (1 - q);
			ga += r * x;
			gb += r;
			haa += w * x * x;
			hab += w * x;
			hbb += w;
		}
		haa += 1e-6;
		hbb += 1e-6;
		det = haa * hbb - hab * hab;
		if (!(det > 0))
			break;
		a -= (hbb * ga - hab * gb) / det;
		b -= (haa * gb - hab * ga) / det;
	}
	ctr_logits(cloud, ds, ev, ne, lg);
	for (size_t i = 0; i < ne; i++) {
		p[i] = (float)(1 / (1 + exp(-(a * lg[i] + b))));
		y[i] = ds->s[ev[i]].label;
	}
	ll = metrics_logloss(p, y, ne);
	*pa = a;
	*pb = b;
	free(lg);
	free(p);
	free(y);
	return ll;
}

int
main(int argc, char **argv)
{
	const char *dir, *save = NULL, *csv = NULL;
	uint64_t seed = 1;
	int epochs = 20, ch;
	struct ofa_train_opts oo;
	struct ofa_config oc;
	struct splitdir sd;
	struct ctr_config cc;
	struct ctr_train_stats cst;
	struct ofa_train_stats ost;
	struct ctr *cloud = NULL;
	struct ofa *ofa = NULL, *sta = NULL, *bc = NULL, *du = NULL;
	int hidden = 64, inner = 64, blocks = 4, rank = 8;
	int ctrl_hidden = 16, gen_hidden = 32;
	double mu = 0.01, lr = 1e-3, wd = 0, holdout = 0, resval = 0.5;
	int prior = TRAIN_ITEM_PRIOR;	/* --no-prior: 0 */
	double lrs[8], lr_used = 0;
	int nlr = 0;
	uint32_t *ctri = NULL, *resi = NULL, *rvai = NULL;
	size_t nctr = 0, nres = 0, nrva = 0;
	struct ctr *full = NULL;
	static const struct option lopts[] = {
		{ "seed", required_argument, NULL, 's' },
		{ "mu", required_argument, NULL, 'm' },
		{ "epochs", required_argument, NULL, 'e' },
		{ "blocks", required_argument, NULL, 'L' },
		{ "hidden", required_argument, NULL, 'H' },
		{ "inner", required_argument, NULL, 'F' },
		{ "rank", required_argument, NULL, 'R' },
		{ "lr", required_argument, NULL, 'l' },
		{ "save", required_argument, NULL, 'o' },
		{ "preds", required_argument, NULL, 'c' },
		{ "ctrl-hidden", required_argument, NULL, 'C' },
		{ "gen-hidden", required_argument, NULL, 'G' },
		{ "wd", required_argument, NULL, 'w' },
		{ "holdout", required_argument, NULL, 'h' },
		{ "res-val", required_argument, NULL, 'V' },
		{ "lr-grid", required_argument, NULL, 'g' },
		{ "no-prior", no_argument, NULL, 'P' },
		{ NULL, 0, NULL, 0 }
	};

	while ((ch = getopt_long(argc, argv, "", lopts, NULL)) != -1) {
		switch (ch) {
		case 's': seed = strtoull(optarg, NULL, 10); break;
		case 'm': mu = atof(optarg); break;
		case 'e': epochs = atoi(optarg); break;
		case 'L': blocks = atoi(optarg); break;
		case 'H': hidden = atoi(optarg); break;
		case 'F': inner = atoi(optarg); break;
		case 'R': rank = atoi(optarg); break;
		case 'l': lr = atof(optarg); break;
		case 'o': save = optarg; break;
		case 'c': csv = optarg; break;
		case 'C': ctrl_hidden = atoi(optarg); break;
		case 'G': gen_hidden = atoi(optarg); break;
		case 'w': wd = atof(optarg); break;
		case 'h': holdout = atof(optarg); break;
		case 'V': resval = atof(optarg); break;
		case 'P': prior = 0; break;
		case 'g': {
			char *e = optarg;
			for (nlr = 0; nlr < 8 && *e != '\0'; nlr++) {
				lrs[nlr] = strtod(e, &e);
				if (*e == ',')
					e++;
			}
			break;
		}
		default:
			fprintf(stderr, "usage: %s SPLIT_DIR [--seed N] [--mu X] "
			    "[--epochs N] [--blocks L] [--hidden H] [--inner F] "
			    "[--rank R] [--lr X] [--save FILE] [--preds DIR] "
			    "[--ctrl-hidden N] [--gen-hidden N] [--wd X] "
			    "[--holdout F] [--res-val F] [--lr-grid X,Y,..] "
			    "[--no-prior]\n",
			    prog);
			return 2;
		}
	}
	if (optind >= argc) {
		fprintf(stderr, "usage: %s SPLIT_DIR [options]\n", prog);
		return 2;
	}
	dir = argv[optind];
	openblas_set_num_threads(1);

	char p[4096];
	if (splitdir_load(&sd, dir, prog) != 0)
		return 1;
	uint32_t nu = sd.meta.n_users;
	sd.loc.n_users = sd.tst.n_users = sd.meta.n_users;
	printf("data: %s: %u users, pool %zu, local %zu, test %zu\n", dir, nu,
	    sd.pool.n, sd.loc.n, sd.tst.n);

	/* ---- cloud CTR model, as cloudd trains it ---- */
	double t0 = clock_now();
	train_model_defaults(&cc, &sd.pool);
	cc.item_prior = prior;
	if (ctr_new(&full, &cc, seed) != 0)
		return 1;
	splitdir_train_cloud(full, &sd, seed, &cst);
	printf("cloud CTR: %d epochs (best %d), val logloss %.4f, %.1f s\n",
	    cst.epochs, cst.best_epoch, cst.val_loss, clock_now() - t0);
	if (prior) {
		struct train_prior tp;

		if (train_model_finish_default(&full, &sd.pool, sd.tri, sd.ntr,
		    sd.vai, sd.nva, &tp) != 0) {
			fprintf(stderr, "%s: item prior failed\n", prog);
			return 1;
		}
		printf("cloud CTR: item prior weight %g (pool-val GAUC %.4f, "
		    "at 0 %.4f), logit' = %.4f logit %+.4f\n", tp.w, tp.g,
		    tp.g0, tp.a, tp.b);
		cc = *ctr_config(full);	/* without the prior at weight 0 */
	}
	/*
	 * --holdout F: the CTR model OFA sits on fits each user's older
	 * training samples only, and the OFA models learn from the newest F
	 * (ctr logits out of sample, and after the CTR model's data as in
	 * serving); both stop early on the pool's validation slice.
	 */
	if (carve_newest(&sd.pool, sd.tri, sd.ntr, holdout, &ctri,
	    &nctr, &resi, &nres) != 0 || (holdout > 0 && resval > 0)) {
		fprintf(stderr, "%s: --holdout must be in [0, 1), and "
		    "needs --res-val 0\n", prog);
		return 2;
	}
	if (resval > 0) {
		/*
		 * --res-val F: the CTR model is cloudd's (the whole training
		 * carve); the OFA models learn from each user's older 1 - F
		 * of the validation slice and stop early on its newest F.
		 */
		free(resi);
		if (carve_newest(&sd.pool, sd.vai, sd.nva, resval,
		    &resi, &nres, &rvai, &nrva) != 0) {
			fprintf(stderr, "%s: --res-val must be in (0, 1)\n",
			    prog);
			return 2;
		}
		cloud = ctr_clone(full);
		printf("OFA learns from the older %zu of the pool's "
		    "validation slice, stops on its newest %zu\n", nres, nrva);
	} else if (holdout > 0) {
		struct ctr_train_opts co;
		t0 = clock_now();
		if (ctr_new(&cloud, &cc, seed) != 0)
			return 1;
		splitdir_train_opts(&co, seed);
		ctr_train(cloud, &sd.pool, ctri, nctr, sd.vai, sd.nva, &co,
		    &cst);
		printf("cloud CTR on the older %zu (holdout %.2f: OFA learns "
		    "from the newest %zu): %d epochs (best %d), val logloss "
		    "%.4f, %.1f s\n", nctr, holdout, nres, cst.epochs,
		    cst.best_epoch, cst.val_loss, clock_now() - t0);
	} else {
		cloud = ctr_clone(full);
		free(resi);
		resi = sd.tri;
		nres = sd.ntr;
	}
	if (rvai == NULL) {
		rvai = sd.vai;
		nrva = sd.nva;
	}

	/* ---- Forward-OFA on the same pool, embeddings frozen ---- */
	t0 = clock_now();
	if (nlr == 0)
		lrs[nlr++] = lr;
	struct fitset fs = { cloud, &sd.pool, resi, rvai, nres, nrva, lrs,
	    nlr };
	ofa_config_default(&oc, cloud);
	oc.hidden = hidden;
	oc.inner = inner;
	oc.n_blocks = blocks;
	oc.rank = rank;
	ofa_train_opts_default(&oo);
	oo.epochs = epochs;
	oo.mu = mu;
	oo.wd = (float)wd;
	oo.seed = seed;
	oo.progress = nlr == 1 ? ofa_progress : NULL;
	if ((ofa = fit_best(&fs, &oc, OFA_GATE_HARD, seed, &oo, &ost,
	    &lr_used)) == NULL) {
		fprintf(stderr, "%s: bad OFA config\n", prog);
		return 1;
	}
	printf("OFA: %zu params (base %zu, %zu per block), lr %g, %d epochs "
	    "(best %d), val logloss %.4f, val blocks low %.2f mid %.2f high "
	    "%.2f, %.1f s\n", ofa_num_params(ofa), ofa_base_params(ofa),
	    ofa_block_params(ofa), lr_used, ost.epochs, ost.best_epoch,
	    ost.val_loss, ost.blocks[0], ost.blocks[1], ost.blocks[2],
	    clock_now() - t0);

	/*
	 * With --res-val, the rule that says where OFA should learn: on the
	 * set both stop on (each user's newest F of the validation slice),
	 * the CTR model, the same OFA trained in-sample (on the CTR model's
	 * own training samples, stopped on the whole validation slice, as
	 * cloudd does) and OFA trained on the held-out older part.
	 */
	if (rvai != sd.vai) {
		struct ofa_train_stats is;
		struct fitset fi = fs;
		double ilr, cll, ill, hll = ofa_ll(ofa, cloud, &sd.pool, rvai,
		    nrva);
		float *pp = xcalloc(nrva + 1, sizeof(float)), *yy =
		    xcalloc(nrva + 1, sizeof(float));
		struct ofa *ins;
		fi.tri = sd.tri;
		fi.ntr = sd.ntr;
		fi.vai = sd.vai;
		fi.nva = sd.nva;
		if ((ins = fit_best(&fi, &oc, OFA_GATE_HARD, seed, &oo, &is,
		    &ilr)) == NULL)
			return 1;
		ill = ofa_ll(ins, cloud, &sd.pool, rvai, nrva);
		ctr_predict(cloud, &sd.pool, rvai, nrva, pp);
		for (size_t i = 0; i < nrva; i++)
			yy[i] = sd.pool.s[rvai[i]].label;
		cll = metrics_logloss(pp, yy, nrva);
		printf("where OFA learns (logloss on the newest %.2f of the "
		    "pool's validation slice, %zu samples): CTR model %.4f, "
		    "OFA in-sample %.4f (lr %g, best epoch %d of %d), OFA on "
		    "the held-out older part %.4f: %s\n", resval, nrva, cll,
		    ill, ilr, is.best_epoch, is.epochs, hll, hll < ill ?
		    "held-out" : "in-sample");
		/* what it learnt: calibration, or also order within users */
		{
			uint32_t *uu = xcalloc(nrva + 1, sizeof(uint32_t));
			double gc, go, pa, pb, pll;
			for (size_t i = 0; i < nrva; i++)
				uu[i] = sd.pool.s[rvai[i]].user;
			gc = metrics_gauc(pp, yy, uu, nrva, nu, NULL, NULL,
			    NULL);
			ofa_predict(ofa, cloud, &sd.pool, rvai, nrva,
			    ofa_class_budget[0], pp, NULL);
			go = metrics_gauc(pp, yy, uu, nrva, nu, NULL, NULL,
			    NULL);
			pll = platt_ll(cloud, &sd.pool, resi, nres, rvai, nrva,
			    &pa, &pb);
			printf("  there: GAUC CTR %.4f, OFA (low) %.4f; the CTR "
			    "logit recalibrated on the same held-out part "
			    "(sigma(%.3f logit %+.3f)): logloss %.4f\n", gc, go,
			    pa, pb, pll);
			free(uu);
		}
		ofa_free(ins);
		free(pp);
		free(yy);
	}

	/* ---- its static backbone: same config, options and seed ---- */
	t0 = clock_now();
	oo.progress = NULL;
	if ((sta = fit_best(&fs, &oc, OFA_GATE_STATIC, seed, &oo, &ost,
	    &lr_used)) == NULL)
		return 1;
	printf("static backbone: lr %g, %d epochs (best %d), val logloss "
	    "%.4f, %.1f s\n", lr_used, ost.epochs, ost.best_epoch,
	    ost.val_loss, clock_now() - t0);

	/* ---- the behaviour controller and the DUET-style generator ---- */
	struct ofa_config bcc = oc, duc = oc;
	bcc.ctrl_hidden = ctrl_hidden;
	duc.gen_hidden = gen_hidden;
	t0 = clock_now();
	if ((bc = fit_best(&fs, &bcc, OFA_GATE_HARD, seed, &oo, &ost,
	    &lr_used)) == NULL) {
		fprintf(stderr, "%s: bad --ctrl-hidden\n", prog);
		return 1;
	}
	printf("behaviour controller (Hc %d): lr %g, %d epochs (best %d), "
	    "val logloss %.4f, val blocks low %.2f mid %.2f high %.2f, "
	    "%.1f s\n", ctrl_hidden, lr_used, ost.epochs, ost.best_epoch,
	    ost.val_loss, ost.blocks[0], ost.blocks[1], ost.blocks[2],
	    clock_now() - t0);
	t0 = clock_now();
	if ((du = fit_best(&fs, &duc, OFA_GATE_ALL, seed, &oo, &ost,
	    &lr_used)) == NULL) {
		fprintf(stderr, "%s: bad --gen-hidden\n", prog);
		return 1;
	}
	printf("DUET-style generator (Hg %d): lr %g, %d epochs (best %d), "
	    "val logloss %.4f, %.1f s\n", gen_hidden, lr_used, ost.epochs,
	    ost.best_epoch, ost.val_loss, clock_now() - t0);

	/* ---- evaluation on the users' test samples ---- */
	size_t n = sd.tst.n;
	float *pr[M_N], *y = xcalloc(n + 1, sizeof(float));
	uint32_t *uid = xcalloc(n + 1, sizeof(uint32_t));
	uint32_t *idx = xcalloc(n + 1, sizeof(uint32_t));
	double cost_us[M_N] = { 0 }, flops[M_N] = { 0 }, bytes[M_N] = { 0 };
	double nblk[M_N] = { 0 }, nadapt = 0;
	for (int k = 0; k < M_N; k++)
		pr[k] = xcalloc(n + 1, sizeof(float));
	for (size_t i = 0; i < n; i++) {
		idx[i] = (uint32_t)i;
		y[i] = sd.tst.s[i].label;
		uid[i] = sd.tst.s[i].user;
	}
	struct ofa *vm[V_N] = { ofa, bc };
	ctr_predict(cloud, &sd.tst, idx, n, pr[M_CLOUD]);
	ctr_predict(full, &sd.tst, idx, n, pr[M_FULL]);
	{
		struct ctr *cn = ctr_clone(cloud);
		for (int i = 0; i < ctr_num_tensors(cn); i++) {
			const struct param_tensor *t = ctr_tensor_at(cn, i);
			if (t->kind == CTR_T_PATCH_M || t->kind == CTR_T_PATCH_B)
				memset(t->data, 0, t->n * sizeof(float));
		}
		ctr_predict(cn, &sd.tst, idx, n, pr[M_NOUSER]);
		ctr_free(cn);
	}
	for (int v = 0; v < V_N; v++)
		for (int k = 0; k < OFA_N_CLASSES; k++)
			ofa_predict(vm[v], cloud, &sd.tst, idx, n,
			    ofa_class_budget[k], pr[vimp[v] + k],
			    &nblk[vimp[v] + k]);
	ofa_predict(du, cloud, &sd.tst, idx, n, 1.0, pr[M_DUET],
	    &nblk[M_DUET]);
	ofa_predict(sta, cloud, &sd.tst, idx, n, 1.0, pr[M_STATIC],
	    &nblk[M_STATIC]);
	uint8_t *cb;
	size_t cbl;
	struct ofa_meta om = { 0 };
	int prc = ctr_io_pack(cloud, NULL, &cb, &cbl);
	if (prc != 0) {
		fprintf(stderr, "%s: cloud model: %s\n", prog,
		    ctr_io_strerror(prc));
		return 1;
	}
	free(cb);
	bytes[M_CLOUD] = bytes[M_FT] = bytes[M_NOUSER] = bytes[M_FULL] =
	    (double)cbl;
	flops[M_CLOUD] = flops[M_FT] = flops[M_NOUSER] = flops[M_FULL] =
	    ctr_flops(cloud);
	om.version = om.base_version = 1;
	size_t base_bytes = ofa_io_size(ofa, &om, 1, 0);

	struct ofa_assembled a;
	float *x0 = xcalloc((size_t)64 * oc.in_dim, sizeof(float));
	float scratch[3 * OFA_MAX_DIM];
	/* structures per device (V_N, class) and per impression */
	uint32_t *masks[V_N][OFA_N_CLASSES], *imasks[V_N][OFA_N_CLASSES];
	size_t nmask = 0;
	for (int v = 0; v < V_N; v++)
		for (int k = 0; k < OFA_N_CLASSES; k++) {
			masks[v][k] = xcalloc(nu + 1, sizeof(uint32_t));
			imasks[v][k] = xcalloc(n + 1, sizeof(uint32_t));
		}
	ofa_assembled_init(&a);
	struct ctr_train_opts fo;
	ctr_train_opts_default(&fo);
	fo.batch = 32;
	fo.epochs = 1;
	fo.seed = seed;
	for (uint32_t u = 0; u < nu; u++) {
		size_t t_lo = sd.toff[u], t_n = sd.toff[u + 1] - t_lo;
		size_t l_lo = sd.loff[u], l_n = sd.loff[u + 1] - l_lo;
		uint32_t items[SAMPLE_HIST_MAX + 1];
		size_t ni = 0;
		float z[CTR_MAX_DIM];

		if (t_n == 0)
			continue;
		/* naive fine-tuning on the local samples */
		if (l_n > 0) {
			struct ctr *c = ctr_clone(cloud);
			uint32_t *li = xcalloc(l_n, sizeof(uint32_t));
			for (size_t i = 0; i < l_n; i++)
				li[i] = (uint32_t)(l_lo + i);
			double t1 = clock_now();
			ctr_train(c, &sd.loc, li, l_n, NULL, 0, &fo, NULL);
			cost_us[M_FT] += (clock_now() - t1) * 1e6;
			ctr_predict(c, &sd.tst, idx + t_lo, t_n,
			    pr[M_FT] + t_lo);
			ctr_free(c);
			free(li);
		} else
			memcpy(pr[M_FT] + t_lo, pr[M_CLOUD] + t_lo,
			    t_n * sizeof(float));
		/* the device's recent behaviour: end of its local share */
		if (l_n > 0) {
			const struct sample *s = &sd.loc.s[l_lo + l_n - 1];
			for (uint32_t j = 0; j < s->hist_n; j++)
				items[ni++] = sd.loc.hist[s->hist_off + j];
			if (s->label >= 0.5f)
				items[ni++] = s->item;
		}
		nadapt++;
		for (int v = 0; v < V_N; v++)
		for (int k = 0; k < OFA_N_CLASSES; k++) {
			int mth = vdev[v] + k;
			uint32_t mask = 0;
			/* one forward pass: behaviour encoding + structure +
			 * parameters, timed as the device would run it */
			double t1 = clock_now();
			ofa_behaviour(cloud, items, ni, oc.hist_k, z);
			ofa_assemble(vm[v], z, ofa_class_budget[k], &a);
			cost_us[mth] += (clock_now() - t1) * 1e6;
			nblk[mth] += a.n_blocks;
			for (int b = 0; b < a.n_blocks; b++)
				mask |= 1u << a.block[b];
			masks[v][k][nmask] = mask;
			bytes[mth] += (double)(base_bytes +
			    (mask ? ofa_io_size(vm[v], &om, 0, mask) : 0));
			flops[mth] += ofa_in_flops(vm[v], cloud) +
			    ofa_assembled_flops(&a);
			for (size_t i = 0; i < t_n; i += 64) {
				int B = (int)(t_n - i < 64 ? t_n - i : 64);
				float *out = pr[mth] + t_lo + i;
				ofa_inputs_base(vm[v], cloud, &sd.tst,
				    idx + t_lo + i, B, x0, NULL);
				ofa_assembled_logits(&a, x0, B, out, scratch);
				for (int b = 0; b < B; b++)
					out[b] = (float)(1 / (1 + exp(-out[b])));
			}
		}
		nmask++;
	}
	for (int v = 0; v < V_N; v++)
		for (int k = vdev[v]; k < vdev[v] + OFA_N_CLASSES; k++) {
			cost_us[k] /= nadapt;
			nblk[k] /= nadapt;
			bytes[k] /= nadapt;
			flops[k] /= nadapt;
		}
	cost_us[M_FT] /= nadapt;
	/* the structure of every impression, from its own z */
	for (size_t i = 0; i < n; i++) {
		float zi[CTR_MAX_DIM];
		int mk[OFA_MAX_BLOCKS];
		ofa_inputs(cloud, &sd.tst, idx + i, 1, x0, zi);
		for (int v = 0; v < V_N; v++)
			for (int k = 0; k < OFA_N_CLASSES; k++) {
				uint32_t mask = 0;
				ofa_select(vm[v], zi, ofa_class_budget[k], mk,
				    NULL);
				for (int l = 0; l < oc.n_blocks; l++)
					mask |= (uint32_t)(mk[l] != 0) << l;
				imasks[v][k][i] = mask;
			}
	}
	/*
	 * Per impression: the blocks the gates kept, plus the controller and
	 * the mapper of those blocks for every prediction.
	 */
	{
		struct ofa_assembled a0;
		double base_f, blk_f, ad1, ad1g, R = oc.rank;

		memset(&a0, 0, sizeof(a0));
		a0.C0 = oc.in_dim;
		a0.H = oc.hidden;
		a0.F = oc.inner;
		a0.fm = oc.interaction == CTR_INTER_FM;
		base_f = ofa_assembled_flops(&a0);
		blk_f = (ofa_full_flops(ofa) - base_f) / oc.n_blocks;
		/*
		 * The controller, and per kept block the mapper g = Wg z + bg,
		 * t = Bm x, g * t and A (g * t): nothing is materialised.
		 */
		ad1 = 2.0 * oc.z_dim * R + 2.0 * oc.hidden * R + R +
		    2.0 * R * oc.inner;
		for (int v = 0; v < V_N; v++)
			for (int k = 0; k < OFA_N_CLASSES; k++) {
				int mth = vimp[v] + k;
				flops[mth] = ofa_in_flops(vm[v], cloud) + base_f +
				    nblk[mth] * (blk_f + ad1) +
				    ofa_adapt_flops(vm[v], 0);
				bytes[mth] = (double)ofa_io_size(vm[v], &om, 1,
				    OFA_IO_ALL);
			}
		/* DUET: no controller; the generator layer, then every
		 * block's mapper from it */
		ad1g = 2.0 * gen_hidden * R + 2.0 * oc.hidden * R + R +
		    2.0 * R * oc.inner;
		flops[M_DUET] = ofa_in_flops(du, cloud) + base_f +
		    oc.n_blocks * (blk_f + ad1g) + 2.0 * oc.z_dim * gen_hidden +
		    2.0 * gen_hidden;
		bytes[M_DUET] = (double)ofa_io_size(du, &om, 1, OFA_IO_ALL);
	}
	flops[M_STATIC] = ofa_in_flops(sta, cloud) + ofa_full_flops(sta);
	bytes[M_STATIC] = (double)ofa_io_size(sta, &om, 1, OFA_IO_ALL);

	double *pu[M_N], *w = xcalloc(nu, sizeof(double));
	printf("\n| method | GAUC | AUC | logloss | dGAUC vs cloud [95%% CI] "
	    "| better/worse users | dGAUC vs static [95%% CI] | blocks | "
	    "device us/adapt | FLOPs/pred | FLOPs vs static | bytes down |\n"
	    "|---|---|---|---|---|---|---|---|---|---|---|---|\n");
	FILE *cf = NULL, *pf = NULL;
	if (csv != NULL) {
		if (mkdir(csv, 0755) != 0 && errno != EEXIST)
			fprintf(stderr, "%s: %s: %s\n", prog, csv,
			    strerror(errno));
		snprintf(p, sizeof(p), "%s/ofa.extra", csv);
		cf = fopen(p, "w");
		snprintf(p, sizeof(p), "%s/ofa.csv", csv);
		pf = fopen(p, "w");
		if (cf == NULL || pf == NULL) {
			fprintf(stderr, "%s: cannot write %s\n", prog, p);
			return 1;
		}
		for (int k = 0; k < M_N; k++)
			for (size_t i = 0; i < n; i++)
				fprintf(pf, "%s,%u,%u,%g,%.6f\n", mname[k],
				    uid[i], sd.tst.s[i].item, y[i] >= 0.5f ?
				    1.0 : 0.0, pr[k][i]);
	}
	/* per-user AUCs of the static backbone first, for the second CI */
	double *pst = xcalloc(nu, sizeof(double)), *wst = xcalloc(nu,
	    sizeof(double));
	{
		size_t used;
		metrics_gauc(pr[M_STATIC], y, uid, n, nu, &used, pst, wst);
	}
	for (int k = 0; k < M_N; k++) {
		size_t used;
		pu[k] = xcalloc(nu, sizeof(double));
		double g = metrics_gauc(pr[k], y, uid, n, nu, &used, pu[k], w);
		double auc = metrics_auc(pr[k], y, n);
		double ll = metrics_logloss(pr[k], y, n);
		char ci[96] = "—", bw[48] = "—";
		if (k != M_CLOUD) {
			struct metrics_ci c;
			if (metrics_paired_bootstrap(pu[k], pu[M_CLOUD], w, nu,
			    1000, 7, &c) == 0) {
				snprintf(ci, sizeof(ci), "%+.4f [%+.4f, %+.4f]%s",
				    c.mean, c.lo, c.hi, c.lo > 0 || c.hi < 0 ?
				    " *" : "");
				snprintf(bw, sizeof(bw), "%.1f / %.1f %%",
				    100 * c.share_better, 100 * c.share_worse);
			}
		}
		char cs[96] = "—";
		struct metrics_ci c2 = { 0 };
		if (k != M_STATIC && metrics_paired_bootstrap(pu[k], pst, w,
		    nu, 1000, 7, &c2) == 0)
			snprintf(cs, sizeof(cs), "%+.4f [%+.4f, %+.4f]%s",
			    c2.mean, c2.lo, c2.hi, c2.lo > 0 || c2.hi < 0 ?
			    " *" : "");
		printf("| %s | %.4f | %.4f | %.4f | %s | %s | %s | %.2f | "
		    "%.1f | %.0f | %.0f %% | %.0f |\n", mname[k], g, auc, ll,
		    ci, bw, cs, k >= M_LOW && k != M_FULL ? nblk[k] : 0.0,
		    cost_us[k],
		    flops[k], 100 * flops[k] / flops[M_STATIC], bytes[k]);
		if (cf != NULL)
			fprintf(cf, "%s,flops,%.0f\n%s,blocks,%.2f\n",
			    mname[k], flops[k], mname[k], k >= M_LOW &&
			    k != M_FULL ? nblk[k] : 0.0);
	}
	if ((cf != NULL && fclose(cf) != 0) || (pf != NULL && fclose(pf) != 0))
		fprintf(stderr, "%s: cannot write %s\n", prog, csv);
	FILE *sf = NULL;
	if (csv != NULL) {
		snprintf(p, sizeof(p), "%s/ofa.spread", csv);
		if ((sf = fopen(p, "w")) == NULL)
			fprintf(stderr, "%s: cannot write %s\n", prog, p);
	}
	printf("\n");
	for (int v = 0; v < V_N; v++)
		for (int sc = 0; sc < 2; sc++) {
			printf("structures, %s, %s:", vname[v], sc ? "per "
			    "impression" : "per device (one z per device)");
			for (int k = 0; k < OFA_N_CLASSES; k++) {
				int nd;
				double top;
				char t3[160];
				size_t cnt = sc ? n : nmask;
				spread(sc ? imasks[v][k] : masks[v][k], cnt,
				    &nd, &top, t3, sizeof(t3));
				printf(" %s: %d distinct over %zu %s (%s)%s",
				    ofa_class_name[k], nd, cnt, sc ?
				    "impressions" : "users", t3, k + 1 <
				    OFA_N_CLASSES ? ";" : "\n");
				if (sf != NULL)
					fprintf(sf, "%s,%s,%s,%d,%zu,%.4f,%s\n",
					    v ? "bc" : "ofa", sc ? "impression" :
					    "device", ofa_class_name[k], nd, cnt,
					    top, t3);
			}
		}
	if (sf != NULL && fclose(sf) != 0)
		fprintf(stderr, "%s: cannot write %s\n", prog, csv);
	if (save != NULL) {
		uint8_t *ob;
		size_t obl;
		FILE *f = fopen(save, "wb");
		ofa_io_pack(ofa, &om, 1, OFA_IO_ALL, &ob, &obl);
		if (f == NULL || fwrite(ob, 1, obl, f) != obl || fclose(f) != 0)
			fprintf(stderr, "%s: cannot write %s\n", prog, save);
		free(ob);
	}
	ofa_assembled_fini(&a);
	for (int v = 0; v < V_N; v++)
		for (int k = 0; k < OFA_N_CLASSES; k++) {
			free(masks[v][k]);
			free(imasks[v][k]);
		}
	ofa_free(bc);
	ofa_free(du);
	free(pst);
	free(wst);
	ofa_free(sta);
	for (int k = 0; k < M_N; k++) {
		free(pr[k]);
		free(pu[k]);
	}
	free(w);
	free(x0);
	free(y);
	free(uid);
	free(idx);
	ofa_free(ofa);
	ctr_free(cloud);
	ctr_free(full);
	free(ctri);
	if (resi != sd.tri)
		free(resi);
	if (rvai != sd.vai)
		free(rvai);
	splitdir_fini(&sd);
	return 0;
}
