/*
 * dccl-data: offline data preparation for dccl.
 *
 *   dccl-data split DATASET_DIR OUTDIR [options]   MovieLens -> pool + shards
 *       --task ranking: implicit feedback + sampled negatives (see
 *       make_ranking()), same layout
 *   dccl-data synth OUTDIR [options]               generator -> same layout
 *   dccl-data stats FILE|DIR                       summary of any of these
 *
 * Output layout (all sample files in the samples CSV format of
 * shared/data/dataset.h, dense ids):
 *   OUTDIR/meta.txt                    dataset_meta_write() format
 *   OUTDIR/pool.csv                    every user's pool share (cloud)
 *   OUTDIR/devices/<user>.local.csv    the device's local share
 *   OUTDIR/devices/<user>.test.csv     the device's test share
 *   OUTDIR/devices/<user>.neg.csv      with --negatives N: "item,genres",
 *                                      N items the user never rated
 *   OUTDIR/items.csv                   item,raw,genres
 *   OUTDIR/users.csv                   user,raw,n_pool,n_local,n_test
 *                                      (rows of the files: with --task
 *                                      ranking, negatives included)
 *   OUTDIR/cold.csv                    with --cold: "user" lines, the
 *                                      cold users (no pool samples)
 *   OUTDIR/truth.csv                   synth only: per-user ground truth
 *   OUTDIR/oracle.pred                 synth only: the test rows' true
 *                                      click probabilities as prediction
 *                                      lines "oracle,user,item,label,p"
 * Single-threaded; exits 0 on success, 1 on error, 2 on usage errors.
 */
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "scripts/tools/movielens.h"
#include "scripts/tools/negatives.h"
#include "scripts/tools/synth.h"
#include "shared/clock.h"
#include "shared/data/dataset.h"
#include "shared/data/schema.h"
#include "shared/rng.h"
#include "shared/xmalloc.h"

static const char *prog = "dccl-data";

static void
usage(FILE *fp)
{
	fprintf(fp,
"usage: %s split DATASET_DIR OUTDIR [--fractions P,L,T] [--hist H]\n"
"           [--threshold R] [--min-user N] [--skip-bad] [--negatives N]\n"
"           [--task ctr|ranking] [--train-negatives K] [--seed S]\n"
"           [--cold FRAC] [--rank-positives P] [--schema FILE]\n"
"           [--no-side]\n"
"       %s synth OUTDIR [--users N] [--items M] [--clusters K]\n"
"           [--genres G] [--min-per-user A] [--max-per-user B] [--ctr C]\n"
"           [--bias-std X] [--affinity-std X] [--genre-weight X]\n"
"           [--drift X] [--drift-std X] [--taste-drift P] [--noise X]\n"
"           [--zipf X] [--hist H] [--fractions P,L,T] [--negatives N]\n"
"           [--drift-start X] [--count-tail A] [--cold FRAC] [--seed S]\n"
"           [--side-features]\n"
"       %s stats FILE|DIR\n"
"\n"
"split loads a MovieLens directory (100K, 1M or latest layout, detected),\n"
"splits each user's ratings by time into pool/local/test (default\n"
"0.7,0.15,0.15) and writes OUTDIR/{meta.txt,pool.csv,items.csv,users.csv}\n"
"and OUTDIR/devices/<user>.{local,test}.csv. Histories hold positives\n"
"strictly earlier than the sample (not from the same second).\n"
"--cold FRAC: that share of users (with >= --min-user samples) is cold:\n"
"no pool samples, the whole pre-test history local (cold.csv lists them).\n"
"--seed affects the cold users, --negatives (N never-rated items per\n"
"user, devices/<user>.neg.csv), the ranking task's sampled negatives and\n"
"the synthetic data.\n"
"--task ranking: every rating is an interaction (label 1), split by time\n"
"as above; pool and local sets get K (--train-negatives, 4) never-rated\n"
"items per interaction as label-0 samples (same timestamp and history);\n"
"each test interaction gets N (--negatives, 99) never-rated items of its own\n"
"(label 0), with its timestamp and history, for each of the user's\n"
"first P (--rank-positives, 5) test interactions; later ones are left out.\n"
"synth writes the same layout from the drift generator plus truth.csv and\n"
"oracle.pred; the drift starts at the local share (--drift-start moves\n"
"it, e.g. 0.9: inside the test window); --count-tail A draws per-user\n"
"counts from a Pareto of shape A (heavy tail) instead of uniformly.\n"
"--schema FILE: DATASET_DIR is instead a header CSV whose columns the\n"
"feature schema FILE names (shared/data/README.md); OUTDIR/schema.txt\n"
"gets the schema, and the sample files carry its side values.\n"
"--no-side: leave the side fields out (v1 sample files, no schema), the\n"
"data as models before side fields saw them.\n"
"synth --side-features adds a user-side field (segment: the user's taste\n"
"cluster) and an item-side one (category: the cluster that likes the\n"
"item most), each uniform with probability 0.3.\n"
"stats summarizes a samples CSV, a split directory or a MovieLens dir.\n",
	    prog, prog, prog);
}

static int
num(const char *opt, const char *s, double lo, double hi, double *out)
{
	char *end;
	double v;

	errno = 0;
	v = strtod(s, &end);
	if (errno != 0 || end == s || *end != '\0' || !(v >= lo && v <= hi)) {
		fprintf(stderr, "%s: --%s: '%s' is not a number in [%g, %g]\n",
		    prog, opt, s, lo, hi);
		return -1;
	}
	*out = v;
	return 0;
}

static int
mkdirs(const char *out)
{
	char p[4096];

	if (mkdir(out, 0755) != 0 && errno != EEXIST) {
		fprintf(stderr, "%s: mkdir %s: %s\n", prog, out,
		    strerror(errno));
		return -1;
	}
	snprintf(p, sizeof(p), "%s/devices", out);
	if (mkdir(p, 0755) != 0 && errno != EEXIST) {
		fprintf(stderr, "%s: mkdir %s: %s\n", prog, p, strerror(errno));
		return -1;
	}
	return 0;
}

/*
 * Writes everything but truth.csv for the split sp of ds. "Never rated"
 * (neg.csv) is judged on rated, which is ds itself except for the ranking
 * task, whose ds also holds the sampled negatives.
 */
static int
write_split(const char *out, const struct dataset *ds,
    const struct dataset_meta *m, const struct dataset_split *sp,
    const struct dataset *rated, int n_neg, uint64_t seed,
    const float *p_true)
{
	struct dataset_rated rt;
	char p[4096];
	uint32_t *neg = NULL;
	FILE *fp;
	int rc;

/*
 * Old files are unlinked before being rewritten: truncating and rewriting
 * a file in place makes ext4 (auto_da_alloc) flush it on close, which made
 * re-running a split into the same directory 2-3x slower.
 */
#define PATH(...) (snprintf(p, sizeof(p), __VA_ARGS__), (void)unlink(p))
#define CHECK(what) do { if (rc != 0) { fprintf(stderr, "%s: %s: %s\n", \
	prog, what, strerror(-rc)); goto fail; } } while (0)
	PATH("%s/meta.txt", out);
	rc = dataset_meta_write(p, m);
	CHECK(p);
	/* The feature schema travels with the data (cloudd --schema). */
	PATH("%s/schema.txt", out);
	if (m->schema != NULL) {
		if ((fp = fopen(p, "w")) == NULL) {
			rc = -errno;
			CHECK(p);
		}
		fputs(m->schema, fp);
		rc = fclose(fp) == 0 ? 0 : -errno;
		CHECK(p);
	}
	PATH("%s/pool.csv", out);
	rc = dataset_write_csv(p, ds, sp->pool.v, sp->pool.n);
	CHECK(p);
	if (n_neg > 0) {
		dataset_rated_build(&rt, rated);
		neg = xmalloc((size_t)n_neg * sizeof(*neg));
	}
	for (uint32_t u = 0; u < sp->pool.n_users; u++) {
		/* Ids without samples (empty hash buckets) get no device. */
		if (sp->pool.uoff[u + 1] == sp->pool.uoff[u] &&
		    sp->local.uoff[u + 1] == sp->local.uoff[u] &&
		    sp->test.uoff[u + 1] == sp->test.uoff[u])
			continue;
		PATH("%s/devices/%u.local.csv", out, u);
		rc = dataset_write_csv(p, ds, sp->local.v + sp->local.uoff[u],
		    sp->local.uoff[u + 1] - sp->local.uoff[u]);
		CHECK(p);
		PATH("%s/devices/%u.test.csv", out, u);
		rc = dataset_write_csv(p, ds, sp->test.v + sp->test.uoff[u],
		    sp->test.uoff[u + 1] - sp->test.uoff[u]);
		CHECK(p);
		if (n_neg > 0) {
			PATH("%s/devices/%u.neg.csv", out, u);
			rc = dataset_negatives(&rt, u, (uint32_t)n_neg, seed,
			    neg);
			CHECK("negatives");
			if ((fp = fopen(p, "w")) == NULL) {
				rc = -errno;
				CHECK(p);
			}
			fputs("item,genres\n", fp);
			for (int k = 0; k < n_neg; k++)
				fprintf(fp, "%u,%u\n", neg[k],
				    m->item_genres ? m->item_genres[neg[k]] :
				    0);
			rc = fclose(fp) == 0 ? 0 : -errno;
			CHECK(p);
		}
	}
	PATH("%s/items.csv", out);
	if ((fp = fopen(p, "w")) == NULL) {
		rc = -errno;
		CHECK(p);
	}
	fputs("item,raw,genres\n", fp);
	for (uint32_t i = 0; i < ds->n_items; i++)
		fprintf(fp, "%u,%lld,%u\n", i, m->item_raw ?
		    (long long)m->item_raw[i] : (long long)i,
		    m->item_genres ? m->item_genres[i] : 0);
	rc = fclose(fp) == 0 ? 0 : -errno;
	CHECK(p);
	/* Cold users (never in the pool): the evaluation's warm/cold sets. */
	PATH("%s/cold.csv", out);
	if (sp->n_cold > 0) {
		if ((fp = fopen(p, "w")) == NULL) {
			rc = -errno;
			CHECK(p);
		}
		fputs("user\n", fp);
		for (uint32_t u = 0; u < sp->pool.n_users; u++)
			if (sp->cold[u])
				fprintf(fp, "%u\n", u);
		rc = fclose(fp) == 0 ? 0 : -errno;
		CHECK(p);
	}
	/* The synthetic oracle: the test rows' true click probabilities. */
	PATH("%s/oracle.pred", out);
	if (p_true != NULL) {
		if ((fp = fopen(p, "w")) == NULL) {
			rc = -errno;
			CHECK(p);
		}
		for (size_t i = 0; i < sp->test.n; i++) {
			const struct sample *s = &ds->s[sp->test.v[i]];

			fprintf(fp, "oracle,%u,%u,%g,%.9g\n", s->user,
			    s->item, s->label, p_true[sp->test.v[i]]);
		}
		rc = fclose(fp) == 0 ? 0 : -errno;
		CHECK(p);
	}
	PATH("%s/users.csv", out);
	if ((fp = fopen(p, "w")) == NULL) {
		rc = -errno;
		CHECK(p);
	}
	fputs("user,raw,n_pool,n_local,n_test\n", fp);
	for (uint32_t u = 0; u < sp->pool.n_users; u++)
		fprintf(fp, "%u,%lld,%zu,%zu,%zu\n", u, m->user_raw ?
		    (long long)m->user_raw[u] : (long long)u,
		    sp->pool.uoff[u + 1] - sp->pool.uoff[u],
		    sp->local.uoff[u + 1] - sp->local.uoff[u],
		    sp->test.uoff[u + 1] - sp->test.uoff[u]);
	rc = fclose(fp) == 0 ? 0 : -errno;
	CHECK(p);
	printf("wrote %s: %u users (%u cold), %u items, pool %zu, local %zu, "
	    "test %zu\n", out, sp->pool.n_users, sp->n_cold, ds->n_items,
	    sp->pool.n, sp->local.n, sp->test.n);
fail:
	if (n_neg > 0) {
		dataset_rated_fini(&rt);
		free(neg);
	}
	return rc == 0 ? 0 : -1;
#undef PATH
#undef CHECK
}

/* Writes everything but truth.csv: the CTR split of ds. */
static int
write_layout(const char *out, const struct dataset *ds,
    const struct dataset_meta *m, const struct dataset_fracs *f, int n_neg,
    uint64_t seed, const float *p_true)
{
	struct dataset_split sp;
	int rc;

	if (mkdirs(out) != 0)
		return -1;
	if ((rc = dataset_split(&sp, ds, f)) != 0) {
		fprintf(stderr, "%s: split: %s\n", prog, strerror(-rc));
		return -1;
	}
	rc = write_split(out, ds, m, &sp, ds, n_neg, seed, p_true);
	dataset_split_fini(&sp);
	return rc;
}

/* A sampled negative gets its own item's item-side values. */
static void
item_side(struct sample *s, const struct dataset_meta *m, uint32_t item)
{
	if (m->item_side == NULL || item >= m->n_items)
		return;
	for (uint32_t k = 0; k < SAMPLE_SIDE_MAX; k++)
		if (m->side_item_mask & (1u << k))
			s->side[k] = m->item_side[(size_t)item *
			    SAMPLE_SIDE_MAX + k];
}

/*
 * Ranking task (shared/ml/README.md: every rating is an interaction, each test
 * interaction ranked against 99 items the user never rated). ds holds all
 * ratings; they all become positives (label 1) and the histories are
 * rebuilt over them, so every rating counts as behaviour. The positives are
 * split by time exactly as in the CTR task; then rd gets, per user:
 *  - pool and local: each positive followed by k_train negatives, items
 *    the user never rated drawn uniformly (with replacement across
 *    positives) from the user's own stream (seed, user), with the
 *    positive's timestamp and history, rating 0 and label 0;
 *  - test: the user's first n_pos test positives (in time; later ones are
 *    left out, which bounds the test set at n_pos * (n_test + 1) rows per
 *    user), each preceded by n_test negatives of its own (items the user
 *    never rated, a fresh dataset_negatives() draw per positive) with the
 *    positive's own timestamp and history: each positive is ranked against
 *    its block of negatives, in its own context (evalagg groups a
 *    positive with the negatives right before it).
 * Train negatives never use the user's test negatives, so the model does
 * not see those items as this user's negatives before the test. Negatives
 * share their positive's history storage (same hist_off) and never enter
 * any history. rsp indexes rd like dataset_split() would (cold users
 * included).
 */
static int
make_ranking(struct dataset *rd, struct dataset_split *rsp,
    struct dataset *ds, const struct dataset_meta *m,
    const struct dataset_fracs *f, int hist_k, int k_train, int n_test,
    int n_pos, uint64_t seed, size_t *n_short)
{
	struct dataset_split sp;
	struct dataset_rated rt;
	struct dataset_idx *in[3], *out[3];
	uint32_t *tneg = NULL, *cand = NULL, nu = ds->n_users, ni = ds->n_items;
	uint8_t *mark = NULL;
	int rc;

	*n_short = 0;
	for (size_t i = 0; i < ds->n; i++)
		ds->s[i].label = 1;
	dataset_build_hist(ds, hist_k);
	if ((rc = dataset_split(&sp, ds, f)) != 0) {
		fprintf(stderr, "%s: split: %s\n", prog, strerror(-rc));
		return -1;
	}
	dataset_rated_build(&rt, ds);
	memset(rsp, 0, sizeof(*rsp));
	in[0] = &sp.pool, in[1] = &sp.local, in[2] = &sp.test;
	out[0] = &rsp->pool, out[1] = &rsp->local, out[2] = &rsp->test;
	rsp->cold = sp.cold;
	rsp->n_cold = sp.n_cold;
	sp.cold = NULL;
	for (int k = 0; k < 3; k++) {
		size_t cap = in[k]->n * (size_t)(k < 2 ? k_train + 1 : 1) *
		    (size_t)(k < 2 ? 1 : n_test + 1);

		out[k]->v = xmalloc((cap ? cap : 1) * sizeof(size_t));
		out[k]->uoff = xcalloc((size_t)nu + 1, sizeof(size_t));
		out[k]->n_users = nu;
	}
	dataset_reserve(rd, ds->n * (size_t)(k_train + 1) + sp.test.n *
	    (size_t)n_test, ds->hist_len);
	tneg = xmalloc(((size_t)n_test * (size_t)n_pos + 1) * sizeof(*tneg));
	mark = xcalloc(ni ? ni : 1, 1);
	cand = xmalloc((ni ? ni : 1) * sizeof(*cand));
	for (uint32_t u = 0; u < nu; u++) {
		size_t nt = sp.test.uoff[u + 1] - sp.test.uoff[u], n_cand = 0;
		size_t n_rated = rt.off[u + 1] - rt.off[u], avail, n_mark = 0;
		struct rng r;
		uint64_t x = seed ^ 0x52414e4bULL;	/* "RANK" */

		rc = 0;
		if (nt > (size_t)n_pos)
			nt = (size_t)n_pos;
		/* Positive j's negatives: a draw of their own per j. */
		for (size_t j = 0; j < nt && n_test > 0; j++) {
			uint64_t sj = seed + 0x9e3779b97f4a7c15ULL * j;

			if ((rc = dataset_negatives(&rt, u, (uint32_t)n_test,
			    sj, tneg + j * (size_t)n_test)) != 0)
				break;
		}
		if (rc != 0) {
			fprintf(stderr, "%s: user %u: fewer than %d items "
			    "never rated\n", prog, u, n_test);
			break;
		}
		for (size_t j = 0; j < nt * (size_t)n_test; j++)
			if (!mark[tneg[j]]) {
				mark[tneg[j]] = 1;
				n_mark++;
			}
		avail = ni - n_rated - n_mark;
		/* Users who rated nearly everything: draw from a list. */
		if (avail > 0 && avail * 8 < ni)
			for (uint32_t i = 0; i < ni; i++)
				if (!mark[i] && !dataset_rated_has(&rt, u, i))
					cand[n_cand++] = i;
		x += 0x9e3779b97f4a7c15ULL * ((uint64_t)u + 1);
		rng_seed(&r, rng_splitmix(&x));
		for (int k = 0; k < 3; k++) {
			struct dataset_idx *o = out[k];
			const struct dataset_idx *ix = in[k];
			size_t a = ix->uoff[u], b = ix->uoff[u + 1];

			/*
			 * Test: each kept positive goes into rd first so
			 * that its negatives can share its history; the file
			 * lists the negatives first, then the positive.
			 */
			for (size_t q = 0; k == 2 && q < nt; q++) {
				const struct sample *ps = &ds->s[ix->v[a + q]];
				size_t t0 = dataset_append(rd, ps,
				    sample_hist(ds, ps), ps->hist_n);
				const uint32_t *tn = tneg + q * (size_t)n_test;

				for (int j = 0; j < n_test; j++) {
					struct sample ng = rd->s[t0];
					size_t t;

					ng.item = tn[j];
					ng.rating = 0;
					ng.label = 0;
					ng.genres = m->item_genres ?
					    m->item_genres[tn[j]] : 0;
					item_side(&ng, m, tn[j]);
					t = dataset_append(rd, &ng, NULL, 0);
					rd->s[t].hist_off = rd->s[t0].hist_off;
					rd->s[t].hist_n = rd->s[t0].hist_n;
					o->v[o->n++] = t;
				}
				o->v[o->n++] = t0;
			}
			if (k == 2)
				a = b;
			for (size_t i = a; i < b; i++) {
				const struct sample *ps = &ds->s[ix->v[i]];
				size_t t = dataset_append(rd, ps,
				    sample_hist(ds, ps), ps->hist_n);

				o->v[o->n++] = t;
				for (int j = 0; k < 2 && j < k_train; j++) {
					struct sample ng = rd->s[t];
					uint32_t it;
					size_t nn;

					if (avail == 0) {
						(*n_short)++;
						break;
					}
					if (n_cand > 0)
						it = cand[rng_below(&r,
						    (uint32_t)n_cand)];
					else
						do
							it = rng_below(&r, ni);
						while (mark[it] ||
						    dataset_rated_has(&rt, u,
						    it));
					ng.item = it;
					ng.rating = 0;
					ng.label = 0;
					ng.genres = m->item_genres ?
					    m->item_genres[it] : 0;
					item_side(&ng, m, it);
					nn = dataset_append(rd, &ng, NULL, 0);
					rd->s[nn].hist_off = rd->s[t].hist_off;
					rd->s[nn].hist_n = rd->s[t].hist_n;
					o->v[o->n++] = nn;
				}
			}
			o->uoff[u + 1] = o->n;
		}
		for (size_t j = 0; j < nt * (size_t)n_test; j++)
			mark[tneg[j]] = 0;
	}
	rd->n_users = ds->n_users;
	rd->n_items = ds->n_items;
	rd->n_genres = ds->n_genres;
	rd->n_side = ds->n_side;
	memcpy(rd->side_card, ds->side_card, sizeof(rd->side_card));
	free(tneg);
	free(mark);
	free(cand);
	dataset_rated_fini(&rt);
	dataset_split_fini(&sp);
	if (rc != 0) {
		dataset_split_fini(rsp);
		return -1;
	}
	return 0;
}

enum {
	O_FRAC = 256, O_HIST, O_THR, O_MINU, O_SKIP, O_NEG, O_SEED, O_USERS,
	O_ITEMS, O_CLUST, O_GENRES, O_MINPU, O_MAXPU, O_CTR, O_BIAS, O_AFF,
	O_GW, O_DRIFT, O_DSTD, O_TASTE, O_NOISE, O_ZIPF, O_TASK, O_TNEG,
	O_COLD, O_RPOS, O_DSTART, O_CTAIL, O_SCHEMA, O_SIDE, O_NOSIDE, O_HELP
};

static const struct option longopts[] = {
	{ "fractions", required_argument, NULL, O_FRAC },
	{ "hist", required_argument, NULL, O_HIST },
	{ "threshold", required_argument, NULL, O_THR },
	{ "min-user", required_argument, NULL, O_MINU },
	{ "skip-bad", no_argument, NULL, O_SKIP },
	{ "negatives", required_argument, NULL, O_NEG },
	{ "seed", required_argument, NULL, O_SEED },
	{ "users", required_argument, NULL, O_USERS },
	{ "items", required_argument, NULL, O_ITEMS },
	{ "clusters", required_argument, NULL, O_CLUST },
	{ "genres", required_argument, NULL, O_GENRES },
	{ "min-per-user", required_argument, NULL, O_MINPU },
	{ "max-per-user", required_argument, NULL, O_MAXPU },
	{ "ctr", required_argument, NULL, O_CTR },
	{ "bias-std", required_argument, NULL, O_BIAS },
	{ "affinity-std", required_argument, NULL, O_AFF },
	{ "genre-weight", required_argument, NULL, O_GW },
	{ "drift", required_argument, NULL, O_DRIFT },
	{ "drift-std", required_argument, NULL, O_DSTD },
	{ "taste-drift", required_argument, NULL, O_TASTE },
	{ "noise", required_argument, NULL, O_NOISE },
	{ "zipf", required_argument, NULL, O_ZIPF },
	{ "task", required_argument, NULL, O_TASK },
	{ "train-negatives", required_argument, NULL, O_TNEG },
	{ "cold", required_argument, NULL, O_COLD },
	{ "rank-positives", required_argument, NULL, O_RPOS },
	{ "drift-start", required_argument, NULL, O_DSTART },
	{ "count-tail", required_argument, NULL, O_CTAIL },
	{ "schema", required_argument, NULL, O_SCHEMA },
	{ "side-features", no_argument, NULL, O_SIDE },
	{ "no-side", no_argument, NULL, O_NOSIDE },
	{ "help", no_argument, NULL, O_HELP },
	{ NULL, 0, NULL, 0 },
};

struct args {
	struct dataset_opts lo;
	struct dataset_fracs fr;
	struct synth_opts so;
	int	 n_neg;
	int	 neg_given;	/* --negatives was passed */
	int	 ranking;	/* split --task ranking */
	int	 k_train;	/* --train-negatives (ranking) */
	int	 k_given;
	int	 n_pos;		/* --rank-positives (ranking) */
	double	 drift_start;	/* --drift-start (synth); < 0: the pool share */
	uint64_t seed;
	const char *schema;	/* split --schema: DATASET is a header CSV */
	int	 no_side;	/* split --no-side: drop the side fields */
};

/* Parses options for split (synth = 0) or synth (synth = 1). */
static int
parse_opts(int argc, char **argv, struct args *a, int synth)
{
	int ch;
	double v;

	dataset_opts_default(&a->lo);
	dataset_fracs_default(&a->fr);
	synth_opts_default(&a->so);
	a->n_neg = 0;
	a->neg_given = 0;
	a->ranking = 0;
	a->k_train = 4;
	a->k_given = 0;
	a->n_pos = 5;
	a->drift_start = -1;
	a->seed = 1;
	a->schema = NULL;
	a->no_side = 0;
	optind = 1;
	while ((ch = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
		int ok = 0;

		switch (ch) {
		case O_FRAC: {
			uint32_t mu = a->fr.min_user;

			if (dataset_fracs_parse(&a->fr, optarg) != 0) {
				fprintf(stderr, "%s: --fractions: want P,L,T "
				    "summing to 1, got '%s'\n", prog, optarg);
				return -1;
			}
			a->fr.min_user = mu;
			continue;
		}
		case O_HIST:
			ok = num("hist", optarg, 0, SAMPLE_HIST_MAX, &v) == 0;
			a->lo.hist_k = a->so.hist_k = (int)v;
			break;
		case O_SEED:
			ok = num("seed", optarg, 0, 9007199254740992.0, &v) ==
			    0;
			a->seed = a->so.seed = a->fr.cold_seed = (uint64_t)v;
			break;
		case O_COLD:
			ok = num("cold", optarg, 0, 0.99, &v) == 0;
			a->fr.cold = v;
			break;
		case O_NEG:
			ok = num("negatives", optarg, 0, 100000, &v) == 0;
			a->n_neg = (int)v;
			a->neg_given = 1;
			break;
		case O_HELP:
		case 'h':
			usage(stdout);
			exit(0);
		default:
			if (!synth && ch == O_THR) {
				ok = num("threshold", optarg, 0, 10, &v) == 0;
				a->lo.label_threshold = (float)v;
			} else if (!synth && ch == O_MINU) {
				ok = num("min-user", optarg, 0, 1e9, &v) == 0;
				a->fr.min_user = (uint32_t)v;
			} else if (!synth && ch == O_SKIP) {
				a->lo.skip_bad = 1;
				ok = 1;
			} else if (!synth && ch == O_TASK) {
				ok = strcmp(optarg, "ctr") == 0 ||
				    strcmp(optarg, "ranking") == 0;
				a->ranking = strcmp(optarg, "ranking") == 0;
				if (!ok)
					fprintf(stderr, "%s: --task: want ctr "
					    "or ranking, got '%s'\n", prog,
					    optarg);
			} else if (!synth && ch == O_TNEG) {
				ok = num("train-negatives", optarg, 0, 1000,
				    &v) == 0;
				a->k_train = (int)v;
				a->k_given = 1;
			} else if (!synth && ch == O_SCHEMA) {
				a->schema = optarg;
				ok = 1;
			} else if (!synth && ch == O_NOSIDE) {
				a->no_side = 1;
				ok = 1;
			} else if (!synth && ch == O_RPOS) {
				ok = num("rank-positives", optarg, 1, 100000,
				    &v) == 0;
				a->n_pos = (int)v;
			} else if (synth && ch == O_DSTART) {
				ok = num("drift-start", optarg, 0, 1, &v) == 0;
				a->drift_start = v;
			} else if (synth && ch == O_SIDE) {
				a->so.side = 1;
				ok = 1;
			} else if (synth && ch == O_CTAIL) {
				ok = num("count-tail", optarg, 0, 100, &v) ==
				    0;
				a->so.count_tail = v;
			} else if (synth && ch >= O_USERS && ch <= O_ZIPF) {
				struct synth_opts *o = &a->so;
				const char *nm = longopts[ch - O_FRAC].name;
				double hi = ch <= O_MAXPU ? 1e8 : 1e3;

				ok = num(nm, optarg, ch == O_DRIFT ? -1e3 : 0,
				    hi, &v) == 0;
				switch (ch) {
				case O_USERS: o->n_users = (uint32_t)v; break;
				case O_ITEMS: o->n_items = (uint32_t)v; break;
				case O_CLUST: o->n_clusters = (uint32_t)v; break;
				case O_GENRES: o->n_genres = (uint32_t)v; break;
				case O_MINPU: o->min_per_user = (uint32_t)v;
					break;
				case O_MAXPU: o->max_per_user = (uint32_t)v;
					break;
				case O_CTR: o->base_ctr = v; break;
				case O_BIAS: o->bias_std = v; break;
				case O_AFF: o->affinity_std = v; break;
				case O_GW: o->genre_weight = v; break;
				case O_DRIFT: o->drift_mean = v; break;
				case O_DSTD: o->drift_std = v; break;
				case O_TASTE: o->taste_drift = v; break;
				case O_NOISE: o->noise = v; break;
				case O_ZIPF: o->item_zipf = v; break;
				}
			} else {
				if (ch != '?')
					fprintf(stderr, "%s: option not valid "
					    "for %s\n", prog, synth ? "synth" :
					    "split");
				usage(stderr);
				return -1;
			}
		}
		if (!ok)
			return -1;
	}
	if (a->k_given && !a->ranking) {
		fprintf(stderr, "%s: --train-negatives needs --task ranking\n",
		    prog);
		return -1;
	}
	return 0;
}

/* split --task ranking: make_ranking(), then the usual files. */
static int
split_ranking(const char *out, struct dataset *ds,
    const struct dataset_meta *m, const struct args *a)
{
	struct dataset rd;
	struct dataset_split rsp;
	int n_test = a->neg_given ? a->n_neg : 99, rc;
	size_t n_short;

	if (mkdirs(out) != 0)
		return -1;
	dataset_init(&rd);
	if (make_ranking(&rd, &rsp, ds, m, &a->fr, a->lo.hist_k, a->k_train,
	    n_test, a->n_pos, a->seed, &n_short) != 0) {
		dataset_fini(&rd);
		return -1;
	}
	printf("ranking: %zu interactions (all ratings), %d negatives per "
	    "pool/local interaction, %d per test positive (first %d per "
	    "user)\n", ds->n, a->k_train, n_test, a->n_pos);
	if (n_short > 0)
		fprintf(stderr, "%s: %zu train negatives not drawn (users "
		    "who rated every other item)\n", prog, n_short);
	rc = write_split(out, &rd, m, &rsp, ds, a->neg_given ? a->n_neg : 0,
	    a->seed, NULL);
	dataset_split_fini(&rsp);
	dataset_fini(&rd);
	return rc;
}

/*
 * split --schema: a header CSV through its feature schema. Ids are used as
 * they are (dense, below the schema's vocab); raw = dense in items.csv and
 * users.csv; genre names are the bag's values when it names them.
 */
static int
load_schema_csv(struct dataset *ds, struct dataset_meta *m, const char *csv,
    const char *spath, const struct dataset_opts *o, struct dataset_err *e)
{
	struct schema sc;
	struct schema_ids ids;
	int rc;

	schema_init(&sc);
	memset(e, 0, sizeof(*e));
	if ((rc = schema_load(&sc, spath, e->msg, sizeof(e->msg))) != 0)
		return rc;
	if ((rc = schema_read_csv_ids(ds, csv, &sc, o, e, &ids)) == 0) {
		/* Hashed ids: say how many strings share a bucket. */
		if (sc.f[sc.user].ids_hash)
			fprintf(stderr, "%s: ids: %llu user strings in %llu of "
			    "%u buckets (%llu share one)\n", prog,
			    (unsigned long long)ids.user_strings,
			    (unsigned long long)ids.user_buckets,
			    sc.f[sc.user].card, (unsigned long long)
			    (ids.user_strings - ids.user_buckets));
		if (sc.f[sc.item].ids_hash)
			fprintf(stderr, "%s: ids: %llu item strings in %llu of "
			    "%u buckets (%llu share one)\n", prog,
			    (unsigned long long)ids.item_strings,
			    (unsigned long long)ids.item_buckets,
			    sc.f[sc.item].card, (unsigned long long)
			    (ids.item_strings - ids.item_buckets));
		m->fmt = DATASET_FMT_CSV;
		m->n_users = ds->n_users;
		m->n_items = ds->n_items;
		m->n_genres = ds->n_genres;
		if (sc.bag >= 0) {
			const struct schema_field *f = &sc.f[sc.bag];
			const char *v = f->values;

			for (uint32_t g = 0; g < f->card && g <
			    SAMPLE_GENRES_MAX; g++) {
				snprintf(m->genre[g], sizeof(m->genre[g]),
				    "%s", v != NULL ? v : "");
				if (v == NULL)
					snprintf(m->genre[g],
					    sizeof(m->genre[g]), "g%u", g);
				else
					v += strlen(v) + 1;
			}
		}
		m->schema = schema_format(&sc);
		dataset_meta_item_side(m, ds, schema_item_mask(&sc));
	}
	schema_fini(&sc);
	return rc;
}

static int
cmd_split(int argc, char **argv)
{
	struct args a;
	struct dataset ds;
	struct dataset_meta m;
	struct dataset_err e;
	double t0 = clock_now(), t1;
	int rc;

	if (parse_opts(argc, argv, &a, 0) != 0)
		return 2;
	if (argc - optind != 2) {
		usage(stderr);
		return 2;
	}
	dataset_init(&ds);
	dataset_meta_init(&m);
	if (a.schema != NULL)
		rc = load_schema_csv(&ds, &m, argv[optind], a.schema, &a.lo,
		    &e);
	else
		rc = dataset_load_movielens(&ds, &m, argv[optind], &a.lo, &e);
	if (rc != 0) {
		fprintf(stderr, "%s: %s\n", prog, e.msg[0] ? e.msg :
		    strerror(-rc));
		return 1;
	}
	if (e.n_bad > 0)
		fprintf(stderr, "%s: skipped %zu bad lines (first: %s)\n",
		    prog, e.n_bad, e.msg);
	if (a.no_side) {
		/* as before the loaders had side fields (v1 files) */
		dataset_meta_item_side(&m, &ds, 0);
		ds.n_side = 0;
		memset(ds.side_card, 0, sizeof(ds.side_card));
		free(m.schema);
		m.schema = NULL;
	}
	t1 = clock_now();
	printf("loaded %s (%s): %zu ratings, %u users, %u items, %u genres "
	    "in %.3f s\n", argv[optind], dataset_fmt_name(m.fmt), ds.n,
	    ds.n_users, ds.n_items, ds.n_genres, t1 - t0);
	if (a.ranking)
		rc = split_ranking(argv[optind + 1], &ds, &m, &a);
	else
		rc = write_layout(argv[optind + 1], &ds, &m, &a.fr, a.n_neg,
		    a.seed, NULL);
	printf("total %.3f s\n", clock_now() - t0);
	dataset_fini(&ds);
	dataset_meta_fini(&m);
	return rc == 0 ? 0 : 1;
}

static int
cmd_synth(int argc, char **argv)
{
	struct args a;
	struct dataset ds;
	struct dataset_meta m;
	struct synth_truth *tr;
	float *pt;
	char p[4096];
	double t0 = clock_now();
	FILE *fp;
	int rc;

	if (parse_opts(argc, argv, &a, 1) != 0)
		return 2;
	if (argc - optind != 1) {
		usage(stderr);
		return 2;
	}
	/*
	 * The drift starts where the split's local share starts, unless
	 * --drift-start puts it elsewhere (e.g. inside the test window).
	 */
	a.so.drift_start = a.drift_start >= 0 ? a.drift_start : a.fr.pool;
	if ((rc = dataset_synth_p(&ds, &m, &tr, &pt, &a.so)) != 0) {
		fprintf(stderr, "%s: synth: %s\n", prog, rc == -E2BIG ?
		    "sizes too large" : "invalid options");
		return 2;
	}
	printf("generated %zu samples, %u users in %.3f s\n", ds.n,
	    ds.n_users, clock_now() - t0);
	rc = write_layout(argv[optind], &ds, &m, &a.fr, a.n_neg, a.seed, pt);
	if (rc == 0) {
		snprintf(p, sizeof(p), "%s/truth.csv", argv[optind]);
		if ((fp = fopen(p, "w")) == NULL) {
			fprintf(stderr, "%s: %s: %s\n", prog, p,
			    strerror(errno));
			rc = -1;
		} else {
			fputs("user,cluster,cluster_late,bias,drift,n,n_early,"
			    "p_early,p_late\n", fp);
			for (uint32_t u = 0; u < ds.n_users; u++)
				fprintf(fp, "%u,%u,%u,%.6g,%.6g,%u,%u,%.6g,"
				    "%.6g\n", u, tr[u].cluster,
				    tr[u].cluster_late, tr[u].bias,
				    tr[u].drift, tr[u].n, tr[u].n_early,
				    tr[u].p_early, tr[u].p_late);
			if (fclose(fp) != 0) {
				fprintf(stderr, "%s: %s: %s\n", prog, p,
				    strerror(errno));
				rc = -1;
			}
		}
	}
	printf("total %.3f s\n", clock_now() - t0);
	free(tr);
	free(pt);
	dataset_fini(&ds);
	dataset_meta_fini(&m);
	return rc == 0 ? 0 : 1;
}

static int
dbl_cmp(const void *x, const void *y)
{
	double a = *(const double *)x, b = *(const double *)y;

	return a < b ? -1 : a > b;
}

static double
median(double *v, size_t n)
{
	if (n == 0)
		return NAN;
	qsort(v, n, sizeof(*v), dbl_cmp);
	return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

/*
 * Prints a summary of ds. When r_g is given (a split's pool CTR), also
 * the per-user drift of this set against it: mean |r_u - r_g|.
 */
static void
summarize(const char *name, const struct dataset *ds, double r_g)
{
	uint32_t nu = 0;
	size_t *cnt, users = 0, hist = 0;
	double *pos, *sizes, lab = 0, drift = 0, mn = 0, mx = 0;
	int64_t t_lo = INT64_MAX, t_hi = INT64_MIN;

	for (size_t i = 0; i < ds->n; i++)
		if (ds->s[i].user >= nu)
			nu = ds->s[i].user + 1;
	cnt = xcalloc(nu + 1, sizeof(*cnt));
	pos = xcalloc(nu + 1, sizeof(*pos));
	sizes = xcalloc(nu + 1, sizeof(*sizes));
	for (size_t i = 0; i < ds->n; i++) {
		const struct sample *s = &ds->s[i];

		cnt[s->user]++;
		pos[s->user] += s->label;
		lab += s->label;
		hist += s->hist_n;
		if (s->ts < t_lo)
			t_lo = s->ts;
		if (s->ts > t_hi)
			t_hi = s->ts;
	}
	for (uint32_t u = 0; u < nu; u++) {
		if (cnt[u] == 0)
			continue;
		if (users == 0 || cnt[u] < mn)
			mn = (double)cnt[u];
		if (cnt[u] > mx)
			mx = (double)cnt[u];
		sizes[users++] = (double)cnt[u];
		if (r_g >= 0)
			drift += fabs(pos[u] / (double)cnt[u] - r_g);
	}
	printf("%s: %zu samples, %zu users, n_items %u, n_genres %u\n", name,
	    ds->n, users, ds->n_items, ds->n_genres);
	if (ds->n > 0) {
		printf("  CTR %.4f, mean hist %.2f, ts %lld..%lld\n",
		    lab / (double)ds->n, (double)hist / (double)ds->n,
		    (long long)t_lo, (long long)t_hi);
		printf("  per user: min %.0f, median %.1f, max %.0f\n", mn,
		    median(sizes, users), mx);
		if (r_g >= 0)
			printf("  mean |r_u - r_g| %.4f (r_g %.4f)\n",
			    drift / (double)users, r_g);
	}
	free(cnt);
	free(pos);
	free(sizes);
}

/* Reads all device files of one kind into ds. */
static int
read_devices(struct dataset *ds, const char *dir, const char *kind,
    uint32_t n_users)
{
	struct dataset_opts o;
	struct dataset_err e;
	char p[4096];

	dataset_opts_default(&o);
	for (uint32_t u = 0; u < n_users; u++) {
		int rc;

		snprintf(p, sizeof(p), "%s/devices/%u.%s.csv", dir, u, kind);
		if ((rc = dataset_read_csv(ds, p, &o, &e)) != 0) {
			fprintf(stderr, "%s: %s\n", prog, e.msg);
			return -1;
		}
	}
	return 0;
}

static int
cmd_stats(int argc, char **argv)
{
	const char *path;
	struct stat st;
	struct dataset ds;
	struct dataset_opts o;
	struct dataset_err e;
	char p[4096];
	double t0 = clock_now();
	int rc;

	if (argc >= 2 && (strcmp(argv[1], "-h") == 0 ||
	    strcmp(argv[1], "--help") == 0)) {
		usage(stdout);
		return 0;
	}
	if (argc != 2) {
		usage(stderr);
		return 2;
	}
	path = argv[1];
	if (stat(path, &st) != 0) {
		fprintf(stderr, "%s: %s: %s\n", prog, path, strerror(errno));
		return 1;
	}
	dataset_opts_default(&o);
	dataset_init(&ds);
	if (!S_ISDIR(st.st_mode)) {
		if ((rc = dataset_read_csv(&ds, path, &o, &e)) != 0) {
			fprintf(stderr, "%s: %s\n", prog, e.msg);
			return 1;
		}
		printf("read %zu rows in %.3f s (%.2f M rows/s)\n", ds.n,
		    clock_now() - t0, ds.n / (clock_now() - t0) / 1e6);
		summarize(path, &ds, -1);
		dataset_fini(&ds);
		return 0;
	}
	snprintf(p, sizeof(p), "%s/meta.txt", path);
	if (stat(p, &st) == 0) {
		struct dataset_meta m;
		double r_g = 0;

		if ((rc = dataset_meta_read(&m, p, &e)) != 0) {
			fprintf(stderr, "%s: %s\n", prog, e.msg);
			return 1;
		}
		printf("%s: format %s, %u users, %u items, %u genres\n", p,
		    dataset_fmt_name(m.fmt), m.n_users, m.n_items, m.n_genres);
		snprintf(p, sizeof(p), "%s/pool.csv", path);
		if ((rc = dataset_read_csv(&ds, p, &o, &e)) != 0) {
			fprintf(stderr, "%s: %s\n", prog, e.msg);
			return 1;
		}
		for (size_t i = 0; i < ds.n; i++)
			r_g += ds.s[i].label;
		r_g = ds.n ? r_g / (double)ds.n : 0;
		summarize("pool", &ds, -1);
		dataset_fini(&ds);
		dataset_init(&ds);
		if (read_devices(&ds, path, "local", m.n_users) != 0)
			return 1;
		summarize("local", &ds, r_g);
		dataset_fini(&ds);
		dataset_init(&ds);
		if (read_devices(&ds, path, "test", m.n_users) != 0)
			return 1;
		summarize("test", &ds, r_g);
		dataset_fini(&ds);
		dataset_meta_fini(&m);
		return 0;
	}
	if (dataset_detect(path) >= 0) {
		struct dataset_meta m;

		dataset_meta_init(&m);
		if ((rc = dataset_load_movielens(&ds, &m, path, &o, &e)) != 0) {
			fprintf(stderr, "%s: %s\n", prog, e.msg);
			return 1;
		}
		printf("loaded %s (%s) in %.3f s\n", path,
		    dataset_fmt_name(m.fmt), clock_now() - t0);
		summarize(path, &ds, -1);
		printf("  genres:");
		for (uint32_t g = 0; g < m.n_genres; g++)
			printf(" %s", m.genre[g]);
		printf("\n");
		dataset_fini(&ds);
		dataset_meta_fini(&m);
		return 0;
	}
	fprintf(stderr, "%s: %s: neither a samples CSV, a split directory "
	    "(meta.txt) nor a MovieLens directory\n", prog, path);
	return 1;
}

int
main(int argc, char **argv)
{
	if (argc < 2) {
		usage(stderr);
		return 2;
	}
	if (strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0) {
		usage(stdout);
		return 0;
	}
	if (strcmp(argv[1], "split") == 0)
		return cmd_split(argc - 1, argv + 1);
	if (strcmp(argv[1], "synth") == 0)
		return cmd_synth(argc - 1, argv + 1);
	if (strcmp(argv[1], "stats") == 0)
		return cmd_stats(argc - 1, argv + 1);
	fprintf(stderr, "%s: unknown command '%s'\n", prog, argv[1]);
	usage(stderr);
	return 2;
}
