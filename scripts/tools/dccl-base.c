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
 * best_epoch,val_logloss,train_s,samples_per_s).
 *
 *   dccl-base SPLIT_DIR OUTDIR [--seed S] [--variants V1,V2,...]
 *
 * A variant is a '+'-joined set of: base (no option), inter (pairwise
 * interaction as MLP inputs), fm (the same plus a weighted FM term in the
 * logit), att (target attention), side (the data's side fields; without
 * it the model ignores them). Default: base,inter,fm,att,inter+att,fm+att.
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
};

static int
parse_variant(struct variant *v, const char *s)
{
	char buf[48], *tok, *save = NULL;

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
		else if (strcmp(tok, "base") != 0)
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
	fprintf(fs, "variant,params,epochs,best_epoch,val_logloss,train_s,"
	    "samples_per_s\n");

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
		if (ctr_new(&m, &cc, seed) != 0) {
			fprintf(stderr, "%s: %s: bad config\n", prog,
			    var[k].name);
			return 1;
		}
		double t0 = clock_now();
		int rc = splitdir_train_cloud(m, &sd, seed, &st);
		double dt = clock_now() - t0;
		if (rc != 0) {
			fprintf(stderr, "%s: %s: training failed (%d)\n", prog,
			    var[k].name, rc);
			return 1;
		}
		printf("%s: %zu params, %d epochs (best %d), val logloss %.4f, "
		    "%.1f s, %.0f samples/s\n", var[k].name, ctr_num_params(m),
		    st.epochs, st.best_epoch, st.val_loss, dt,
		    (double)sd.ntr * st.epochs / dt);
		fprintf(fs, "%s,%zu,%d,%d,%.6f,%.3f,%.0f\n", var[k].name,
		    ctr_num_params(m), st.epochs, st.best_epoch, st.val_loss,
		    dt, (double)sd.ntr * st.epochs / dt);
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
