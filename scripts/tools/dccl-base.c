/*
 * dccl-base: the cloud model's base-model options, offline, on a split
 * directory written by `dccl-data split`. For every variant it trains the
 * cloud CTR model on the pool exactly as cloudd does (train.* defaults,
 * the model's from cloudd/train_model.h: D 16, K 20, MLP 128-64, MetaPatch
 * rank 16; Adam lr 1e-3, batch 256, up to
 * 20 epochs, patience 2 on a 10 % validation slice of the pool, seed S for
 * init and shuffling) with that variant's options, and scores:
 *
 *   OUTDIR/val/preds.csv   every device's local slice (the devices'
 *                          validation data: never the test share)
 *   OUTDIR/test/preds.csv  every device's test slice
 *
 * as lines method,user,item,label,score for bin/dccl-eval (method = the
 * variant's name), and OUTDIR/variants.csv (variant,params,epochs,
 * best_epoch,val_logloss,val_gauc,lr,train_s,samples_per_s; val_* on the
 * pool's validation slice, lr the rate kept).
 *
 *   dccl-base SPLIT_DIR OUTDIR [--seed S] [--variants V1,V2,...]
 *
 * A variant is a '+'-joined set of: base (no option), inter (pairwise
 * interaction as MLP inputs), fm (the same plus a weighted FM term in the
 * logit), att (target attention), side (the data's side fields; without
 * it the model ignores them); training options lrX (Adam's rate), wdX
 * (decoupled weight decay), dN (embedding dim), bN (batch), pN (patience),
 * e.g. side+fm+lr3e-4+wd1e-5; lrgrid trains one model per rate of cloudd's
 * train.lr-grid default and keeps the one of best pool-validation GAUC, as
 * cloudd does (cloudd/train_model.h); prior adds cloudd's item prior
 * after training (train_model_finish: the weight of best pool-validation
 * GAUC from train.item-prior-weights' default, then the recalibration).
 * Default: base,inter,fm,att,inter+att,fm+att.
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
#include "scripts/tools/splitdir.h"
#include "shared/clock.h"
#include "shared/data/dataset.h"
#include "shared/ml/ctr.h"
#include "shared/xmalloc.h"

void	openblas_set_num_threads(int);

static const char *prog = "dccl-base";

#define MAX_VARIANTS	16

struct variant {
	char	 name[48];
	int	 inter, att, side;
	/* training options; 0 = cloudd's default (splitdir_train_cloud) */
	double	 lr, wd;
	int	 dim, batch, patience;
	int	 grid;		/* lrgrid: cloudd's train.lr-grid */
	int	 prior;		/* prior: cloudd's train.item-prior */
};

/* "<pre><number>" with nothing after the number: *out = the number */
static int
num_tok(const char *tok, const char *pre, double *out)
{
	size_t n = strlen(pre);
	char *end;

	if (strncmp(tok, pre, n) != 0 || tok[n] == '\0')
		return 0;
	*out = strtod(tok + n, &end);
	return *end == '\0' && isfinite(*out) && *out >= 0;
}

static int
parse_variant(struct variant *v, const char *s)
{
	char buf[48], *tok, *save = NULL;
	double x;

	memset(v, 0, sizeof(*v));
	if (strlen(s) == 0 || strlen(s) >= sizeof(buf))
		return -1;
	snprintf(v->name, sizeof(v->name), "%s", s);
	snprintf(buf, sizeof(buf), "%s", s);
	for (tok = strtok_r(buf, "+", &save); tok != NULL;
	    tok = strtok_r(NULL, "+", &save)) {
		if (strcmp(tok, "inter") == 0)
			v->inter = CTR_INTER_MLP;
		else if (strcmp(tok, "fm") == 0)
			v->inter = CTR_INTER_FM;
		else if (strcmp(tok, "att") == 0)
			v->att = 1;
		else if (strcmp(tok, "side") == 0)
			v->side = 1;
		else if (strcmp(tok, "base") == 0)
			;
		else if (strcmp(tok, "lrgrid") == 0)
			v->grid = 1;
		else if (strcmp(tok, "prior") == 0)
			v->prior = 1;
		else if (num_tok(tok, "lr", &x) && x > 0 && x <= 1)
			v->lr = x;
		else if (num_tok(tok, "wd", &x) && x <= 1)
			v->wd = x;
		else if (num_tok(tok, "d", &x) && x >= 1 && x <= CTR_MAX_DIM)
			v->dim = (int)x;
		else if (num_tok(tok, "b", &x) && x >= 1 && x <= 65536)
			v->batch = (int)x;
		else if (num_tok(tok, "p", &x) && x >= 1 && x <= 100)
			v->patience = (int)x;
		else
			return -1;
	}
	return 0;
}

static int
mkdirs(const char *p)
{
	char b[4096];

	snprintf(b, sizeof(b), "%s", p);
	for (char *q = b + 1; *q; q++)
		if (*q == '/') {
			*q = '\0';
			if (mkdir(b, 0755) != 0 && errno != EEXIST)
				return -1;
			*q = '/';
		}
	return mkdir(b, 0755) != 0 && errno != EEXIST ? -1 : 0;
}

static int
write_preds(FILE *fp, struct ctr *m, const char *name,
    const struct dataset *ds)
{
	uint32_t *idx = xcalloc(ds->n + 1, sizeof(*idx));
	float *p = xcalloc(ds->n + 1, sizeof(*p));
	int rc;

	for (size_t i = 0; i < ds->n; i++)
		idx[i] = (uint32_t)i;
	if (ds->n > 0 && (rc = ctr_predict(m, ds, idx, ds->n, p)) != 0)
		goto out;
	rc = 0;
	for (size_t i = 0; i < ds->n; i++)
		fprintf(fp, "%s,%u,%u,%g,%.7g\n", name, ds->s[i].user,
		    ds->s[i].item, (double)ds->s[i].label, (double)p[i]);
out:
	free(p);
	free(idx);
	return rc;
}

int
main(int argc, char **argv)
{
	const char *dir, *out, *vlist = "base,inter,fm,att,inter+att,fm+att";
	struct variant var[MAX_VARIANTS];
	int nv = 0, ch;
	uint64_t seed = 1;
	static const struct option lopts[] = {
		{ "seed", required_argument, NULL, 's' },
		{ "variants", required_argument, NULL, 'v' },
		{ NULL, 0, NULL, 0 }
	};

	while ((ch = getopt_long(argc, argv, "", lopts, NULL)) != -1) {
		switch (ch) {
		case 's': seed = strtoull(optarg, NULL, 10); break;
		case 'v': vlist = optarg; break;
		default: goto usage;
		}
	}
	if (argc - optind != 2)
		goto usage;
	dir = argv[optind];
	out = argv[optind + 1];
	{
		char buf[1024], *tok, *save = NULL;
		snprintf(buf, sizeof(buf), "%s", vlist);
		for (tok = strtok_r(buf, ",", &save); tok != NULL;
		    tok = strtok_r(NULL, ",", &save)) {
			if (nv == MAX_VARIANTS ||
			    parse_variant(&var[nv], tok) != 0) {
				fprintf(stderr, "%s: bad variant '%s'\n", prog,
				    tok);
				return 2;
			}
			nv++;
		}
	}
	openblas_set_num_threads(1);

	char p[4096];
	struct splitdir sd;
	if (splitdir_load(&sd, dir, prog) != 0)
		return 1;
	printf("data: %s: %u users, pool %zu, local %zu, test %zu, %u side "
	    "fields\n", dir, sd.meta.n_users, sd.pool.n, sd.loc.n, sd.tst.n,
	    sd.pool.n_side);

	FILE *fv, *ft, *fs;
	snprintf(p, sizeof(p), "%s/val", out);
	if (mkdirs(p) != 0)
		goto io;
	snprintf(p, sizeof(p), "%s/test", out);
	if (mkdirs(p) != 0)
		goto io;
	snprintf(p, sizeof(p), "%s/val/preds.csv", out);
	if ((fv = fopen(p, "w")) == NULL)
		goto io;
	snprintf(p, sizeof(p), "%s/test/preds.csv", out);
	if ((ft = fopen(p, "w")) == NULL)
		goto io;
	snprintf(p, sizeof(p), "%s/variants.csv", out);
	if ((fs = fopen(p, "w")) == NULL)
		goto io;
	fprintf(fs, "variant,params,epochs,best_epoch,val_logloss,val_gauc,lr,"
	    "train_s,samples_per_s\n");

	for (int k = 0; k < nv; k++) {
		struct ctr_config cc;
		struct ctr_train_stats st;
		struct ctr *m = NULL;

		/* cloudd's shape; the options are the variant's */
		train_model_defaults(&cc, &sd.pool);
		cc.interaction = var[k].inter;
		cc.attention = var[k].att;
		if (!var[k].side)
			cc.n_side = 0;
		if (var[k].dim > 0)
			cc.dim = var[k].dim;
		cc.item_prior = var[k].prior;
		struct ctr_train_opts co;
		struct train_fit tf;
		double lrs[TRAIN_LR_MAX];
		int nlr = 1;
		char err[128];

		splitdir_train_opts(&co, seed);
		lrs[0] = var[k].lr > 0 ? var[k].lr : co.opt.lr;
		if (var[k].grid && train_lr_grid_parse(TRAIN_LR_GRID, lrs,
		    &nlr, err, sizeof(err)) != 0) {
			fprintf(stderr, "%s: %s\n", prog, err);
			return 1;
		}
		co.opt.wd = (float)var[k].wd;
		if (var[k].batch > 0)
			co.batch = var[k].batch;
		if (var[k].patience > 0)
			co.patience = var[k].patience;
		double t0 = clock_now();
		int rc = train_model_fit(&m, &cc, seed, &sd.pool, sd.tri,
		    sd.ntr, sd.vai, sd.nva, &co, lrs, nlr, &tf);
		double dt = clock_now() - t0;
		if (rc == 0 && var[k].prior) {
			struct train_prior tp;

			if ((rc = train_model_finish_default(&m, &sd.pool,
			    sd.tri, sd.ntr, sd.vai, sd.nva, &tp)) == 0)
				printf("%s: item prior weight %g (pool-val GAUC "
				    "%.4f, at 0 %.4f), logit' = %.4f logit "
				    "%+.4f\n", var[k].name, tp.w, tp.g, tp.g0,
				    tp.a, tp.b);
		}
		if (rc != 0) {
			fprintf(stderr, "%s: %s: training failed (%d)\n", prog,
			    var[k].name, rc);
			return 1;
		}
		st = tf.st[tf.chosen];
		int ep = 0;
		for (int i = 0; i < tf.n; i++)
			ep += tf.st[i].epochs;
		for (int i = 0; i < tf.n; i++)
			printf("%s: lr %g: %d epochs (best %d), pool-val "
			    "logloss %.4f GAUC %.4f%s\n", var[k].name, tf.lr[i],
			    tf.st[i].epochs, tf.st[i].best_epoch,
			    tf.val_loss[i], tf.val_gauc[i],
			    i == tf.chosen && tf.n > 1 ? " (chosen)" : "");
		printf("%s: %zu params, %.1f s, %.0f samples/s\n", var[k].name,
		    ctr_num_params(m), dt, (double)sd.ntr * ep / dt);
		fprintf(fs, "%s,%zu,%d,%d,%.6f,%.4f,%g,%.3f,%.0f\n",
		    var[k].name, ctr_num_params(m), st.epochs, st.best_epoch,
		    st.val_loss, tf.val_gauc[tf.chosen], tf.lr[tf.chosen], dt,
		    (double)sd.ntr * ep / dt);
		if (write_preds(fv, m, var[k].name, &sd.loc) != 0 ||
		    write_preds(ft, m, var[k].name, &sd.tst) != 0) {
			fprintf(stderr, "%s: %s: prediction failed\n", prog,
			    var[k].name);
			return 1;
		}
		ctr_free(m);
	}
	if (fclose(fv) != 0 || fclose(ft) != 0 || fclose(fs) != 0)
		goto io;
	splitdir_fini(&sd);
	return 0;
io:
	fprintf(stderr, "%s: %s: cannot write\n", prog, out);
	return 1;
usage:
	fprintf(stderr, "usage: %s SPLIT_DIR OUTDIR [--seed S] "
	    "[--variants V1,V2,...]\n", prog);
	return 2;
}
