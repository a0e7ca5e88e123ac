/*
 * dccl-score: scores every model version a cloudd SQLite store holds on the
 * devices' test files, offline, so that a run's versions can be compared
 * after the fact without the devices evaluating each one
 * (scripts/eval-async.sh).
 *
 *   dccl-score CLOUDD_DB SHARDS_DIR OUTDIR [--from V]
 *
 * For each version V (>= --from, default 1) in the models table it writes
 * OUTDIR/vV/preds.csv with lines "cloud,user,item,label,score" for every
 * SHARDS_DIR/<user>.test.csv, the format deviced's eval-dir files have and
 * bin/dccl-eval reads. The test files carry the histories the app socket
 * would build (deviced/app.h), so the scores are the ones a device
 * evaluating that version writes in its "cloud" row. Exits 0, 1 on errors,
 * 2 on usage errors.
 */
#include <dirent.h>
#include <errno.h>
#include <getopt.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "shared/data/dataset.h"
#include "shared/ml/ctr.h"
#include "shared/ml/ctr_io.h"
#include "shared/xmalloc.h"

void	openblas_set_num_threads(int);

static const char *prog = "dccl-score";

struct shard {
	uint32_t	user;
	struct dataset	test;
};

static int
cmp_u32(const void *a, const void *b)
{
	uint32_t x = ((const struct shard *)a)->user;
	uint32_t y = ((const struct shard *)b)->user;

	return x < y ? -1 : x > y;
}

/* Reads every <user>.test.csv of dir; *out sorted by user. */
static int
load_shards(const char *dir, struct shard **out, size_t *nout)
{
	DIR *dp = opendir(dir);
	struct dirent *de;
	struct shard *sh = NULL;
	size_t n = 0, cap = 0;
	struct dataset_opts o;

	if (dp == NULL) {
		fprintf(stderr, "%s: %s: %s\n", prog, dir, strerror(errno));
		return -1;
	}
	dataset_opts_default(&o);
	while ((de = readdir(dp)) != NULL) {
		char path[4200], *end;
		unsigned long u = strtoul(de->d_name, &end, 10);
		struct dataset_err err;

		if (end == de->d_name || strcmp(end, ".test.csv") != 0)
			continue;
		if (n == cap) {
			cap = cap ? cap * 2 : 64;
			sh = xreallocarray(sh, cap, sizeof(*sh));
		}
		snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
		dataset_init(&sh[n].test);
		memset(&err, 0, sizeof(err));
		if (dataset_read_csv(&sh[n].test, path, &o, &err) != 0) {
			fprintf(stderr, "%s: %s: %s\n", prog, path, err.msg);
			dataset_fini(&sh[n].test);
			continue;
		}
		sh[n].user = (uint32_t)u;
		for (size_t i = 0; i < sh[n].test.n; i++)
			sh[n].test.s[i].user = (uint32_t)u;
		n++;
	}
	closedir(dp);
	if (n > 1)
		qsort(sh, n, sizeof(*sh), cmp_u32);
	*out = sh;
	*nout = n;
	return 0;
}

static int
score_version(struct ctr *m, const struct shard *sh, size_t n,
    const char *path)
{
	FILE *f = fopen(path, "w");
	int rc = 0;

	if (f == NULL) {
		fprintf(stderr, "%s: %s: %s\n", prog, path, strerror(errno));
		return -1;
	}
	for (size_t k = 0; k < n && rc == 0; k++) {
		const struct dataset *t = &sh[k].test;
		uint32_t *idx;
		float *p;

		if (t->n == 0)
			continue;
		idx = xcalloc(t->n, sizeof(*idx));
		p = xcalloc(t->n, sizeof(*p));
		for (size_t i = 0; i < t->n; i++)
			idx[i] = (uint32_t)i;
		if (ctr_predict(m, t, idx, t->n, p) != 0) {
			fprintf(stderr, "%s: user %u: predict failed\n", prog,
			    sh[k].user);
			rc = -1;
		}
		for (size_t i = 0; rc == 0 && i < t->n; i++)
			fprintf(f, "cloud,%u,%u,%g,%.9g\n", t->s[i].user,
			    t->s[i].item, t->s[i].label, p[i]);
		free(idx);
		free(p);
	}
	if (fclose(f) != 0)
		rc = -1;
	return rc;
}

int
main(int argc, char **argv)
{
	sqlite3 *db = NULL;
	sqlite3_stmt *q = NULL;
	struct shard *sh = NULL;
	size_t nsh = 0;
	long long from = 1;
	int c, rc = 1, nv = 0;

	openblas_set_num_threads(1);
	static const struct option lo[] = {
		{ "from", required_argument, NULL, 'f' },
		{ NULL, 0, NULL, 0 }
	};

	while ((c = getopt_long(argc, argv, "f:", lo, NULL)) != -1) {
		char *end;
		if (c != 'f')
			goto usage;
		from = strtoll(optarg, &end, 10);
		if (*end != '\0' || from < 0)
			goto usage;
	}
	if (argc - optind != 3)
		goto usage;
	if (load_shards(argv[optind + 1], &sh, &nsh) != 0)
		return 1;
	if (nsh == 0) {
		fprintf(stderr, "%s: no <user>.test.csv in %s\n", prog,
		    argv[optind + 1]);
		goto out;
	}
	if (sqlite3_open_v2(argv[optind], &db, SQLITE_OPEN_READONLY, NULL) !=
	    SQLITE_OK || sqlite3_prepare_v2(db, "SELECT version, blob FROM "
	    "models WHERE version >= ? ORDER BY version", -1, &q, NULL) !=
	    SQLITE_OK) {
		fprintf(stderr, "%s: %s: %s\n", prog, argv[optind],
		    db ? sqlite3_errmsg(db) : "out of memory");
		goto out;
	}
	sqlite3_bind_int64(q, 1, from);
	if (mkdir(argv[optind + 2], 0755) != 0 && errno != EEXIST) {
		fprintf(stderr, "%s: %s: %s\n", prog, argv[optind + 2],
		    strerror(errno));
		goto out;
	}
	while ((c = sqlite3_step(q)) == SQLITE_ROW) {
		long long v = sqlite3_column_int64(q, 0);
		const void *b = sqlite3_column_blob(q, 1);
		size_t len = (size_t)sqlite3_column_bytes(q, 1);
		char dir[4200], path[4300], err[256];
		struct ctr *m;

		if (ctr_io_unpack(&m, NULL, b, len, err, sizeof(err)) != 0) {
			fprintf(stderr, "%s: v%lld: %s\n", prog, v, err);
			goto out;
		}
		snprintf(dir, sizeof(dir), "%s/v%lld", argv[optind + 2], v);
		snprintf(path, sizeof(path), "%s/preds.csv", dir);
		if ((mkdir(dir, 0755) != 0 && errno != EEXIST) ||
		    score_version(m, sh, nsh, path) != 0) {
			fprintf(stderr, "%s: v%lld: cannot write %s\n", prog,
			    v, path);
			ctr_free(m);
			goto out;
		}
		ctr_free(m);
		nv++;
	}
	if (c != SQLITE_DONE) {
		fprintf(stderr, "%s: %s\n", prog, sqlite3_errmsg(db));
		goto out;
	}
	fprintf(stderr, "%s: %d versions scored on %zu devices' tests\n",
	    prog, nv, nsh);
	rc = 0;
out:
	sqlite3_finalize(q);
	sqlite3_close(db);
	for (size_t i = 0; i < nsh; i++)
		dataset_fini(&sh[i].test);
	free(sh);
	return rc;
usage:
	fprintf(stderr, "usage: %s CLOUDD_DB SHARDS_DIR OUTDIR [--from V]\n",
	    prog);
	return 2;
}
