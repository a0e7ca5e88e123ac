/*
 * dccl-eval: the evaluation table from the devices' prediction files.
 *
 *   dccl-eval [--task ctr|ranking] --seeds-dirs DIR1,DIR2,... [DIR...]
 *       [--out OUTDIR] [--name NAME] [--methods m1,m2,...]
 *       [--baseline cloud] [--long-tail FRAC] [--user-counts FILE]
 *       [--boot B] [--boot-seed S] [--k K] [--extra FILE|DIR]...
 *
 * Each DIR is one run (one seed) and holds the per-device prediction files
 * deviced writes with deviced.eval-dir set (*.csv, lines
 * "method,user,item,label,score"). The metrics, their pooling over runs and
 * the paired bootstrap against the baseline are those of scripts/tools/evalagg.h.
 * Extra columns (device time, memory, bytes) are the means of the
 * "method,column,value" lines of the runs' *.extra files and --extra.
 * The Markdown table goes to stdout and, with --out, to OUTDIR/NAME.md
 * together with OUTDIR/NAME.csv. Single-threaded; exits 0 on success, 1 on
 * bad input (the message names file:line), 2 on usage errors.
 */
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "scripts/tools/evalagg.h"
#include "shared/xmalloc.h"

static const char *prog = "dccl-eval";

static void
usage(FILE *fp)
{
	fprintf(fp,
"usage: %s [--task ctr|ranking] --seeds-dirs DIR1,DIR2,... [DIR...]\n"
"           [--out OUTDIR] [--name NAME] [--methods m1,m2,...]\n"
"           [--baseline NAME] [--long-tail FRAC] [--user-counts FILE]\n"
"           [--boot B] [--boot-seed S] [--k K] [--extra FILE|DIR]...\n"
"\n"
"Each DIR holds one run's (seed's) prediction files, *.csv with lines\n"
"method,user,item,label,score. Per method and run: ctr: GAUC, AUC,\n"
"logloss, users improved over the baseline, long-tail GAUC; ranking:\n"
"HR@K, NDCG@K (each positive against its user's negatives), GAUC. Then\n"
"mean +- std over runs and a paired per-user bootstrap interval of each\n"
"method's difference against the baseline (default cloud).\n"
"  --out OUTDIR       also write OUTDIR/NAME.md and OUTDIR/NAME.csv\n"
"  --name NAME        file name and title (default: the task)\n"
"  --methods LIST     row order after the baseline; others follow, sorted\n"
"  --long-tail FRAC   share of users with the fewest samples (0.2)\n"
"  --user-counts FILE 'user,n_local' lines for the long tail; without it\n"
"                     the tail is by test rows (ctr) / test positives\n"
"  --boot B           bootstrap resamples (1000); --boot-seed S (1)\n"
"  --k K              cut-off of HR and NDCG (10)\n"
"  --extra FILE|DIR   'method,column,value' lines (a DIR: its *.extra\n"
"                     files): averaged, appended as columns (repeatable).\n"
"                     The *.extra files of the run directories (device\n"
"                     costs written by deviced) are always read.\n",
	    prog);
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

/* Splits a comma list (modified in place) and appends to *v. */
static void
split_list(char *s, char ***v, size_t *n)
{
	for (char *t = strtok(s, ","); t != NULL; t = strtok(NULL, ",")) {
		*v = xreallocarray(*v, *n + 1, sizeof(**v));
		(*v)[(*n)++] = t;
	}
}

enum {
	O_TASK = 256, O_DIRS, O_OUT, O_NAME, O_METHODS, O_BASE, O_TAIL,
	O_COUNTS, O_BOOT, O_BSEED, O_K, O_EXTRA, O_HELP
};

static const struct option longopts[] = {
	{ "task", required_argument, NULL, O_TASK },
	{ "seeds-dirs", required_argument, NULL, O_DIRS },
	{ "out", required_argument, NULL, O_OUT },
	{ "name", required_argument, NULL, O_NAME },
	{ "methods", required_argument, NULL, O_METHODS },
	{ "baseline", required_argument, NULL, O_BASE },
	{ "long-tail", required_argument, NULL, O_TAIL },
	{ "user-counts", required_argument, NULL, O_COUNTS },
	{ "boot", required_argument, NULL, O_BOOT },
	{ "boot-seed", required_argument, NULL, O_BSEED },
	{ "k", required_argument, NULL, O_K },
	{ "extra", required_argument, NULL, O_EXTRA },
	{ "help", no_argument, NULL, O_HELP },
	{ NULL, 0, NULL, 0 },
};

static int
write_out(const char *dir, const char *name, const struct evalagg_result *res,
    const struct evalagg_extra *x)
{
	char p[4096];
	FILE *fp;

	if (mkdir(dir, 0755) != 0 && errno != EEXIST) {
		fprintf(stderr, "%s: mkdir %s: %s\n", prog, dir,
		    strerror(errno));
		return -1;
	}
	for (int csv = 0; csv < 2; csv++) {
		snprintf(p, sizeof(p), "%s/%s.%s", dir, name, csv ? "csv" :
		    "md");
		if ((fp = fopen(p, "w")) == NULL) {
			fprintf(stderr, "%s: %s: %s\n", prog, p,
			    strerror(errno));
			return -1;
		}
		if (csv)
			evalagg_write_csv(fp, res, x);
		else
			evalagg_write_md(fp, res, x, name);
		if (fclose(fp) != 0) {
			fprintf(stderr, "%s: %s: %s\n", prog, p,
			    strerror(errno));
			return -1;
		}
	}
	return 0;
}

int
main(int argc, char **argv)
{
	struct evalagg_opts o;
	struct evalagg_extra x;
	struct evalagg_result res;
	struct evalagg_run *runs = NULL;
	char **dirs = NULL, **methods = NULL, **extras = NULL, err[512];
	size_t n_dirs = 0, n_methods = 0, n_extras = 0;
	const char *out = NULL, *name = NULL, *counts_path = NULL;
	uint32_t *counts = NULL, n_counts = 0;
	int ch, rc = 1;
	double v;

	evalagg_opts_default(&o);
	evalagg_extra_init(&x);
	while ((ch = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
		switch (ch) {
		case O_TASK:
			if (strcmp(optarg, "ctr") == 0)
				o.task = EVALAGG_CTR;
			else if (strcmp(optarg, "ranking") == 0)
				o.task = EVALAGG_RANKING;
			else {
				fprintf(stderr, "%s: --task: want ctr or "
				    "ranking, got '%s'\n", prog, optarg);
				return 2;
			}
			break;
		case O_DIRS:
			split_list(optarg, &dirs, &n_dirs);
			break;
		case O_OUT:
			out = optarg;
			break;
		case O_NAME:
			name = optarg;
			break;
		case O_METHODS:
			split_list(optarg, &methods, &n_methods);
			break;
		case O_BASE:
			o.baseline = optarg;
			break;
		case O_TAIL:
			if (num("long-tail", optarg, 0, 1, &o.tail_frac) != 0)
				return 2;
			break;
		case O_COUNTS:
			counts_path = optarg;
			break;
		case O_BOOT:
			if (num("boot", optarg, 1, 1e6, &v) != 0)
				return 2;
			o.boot = (int)v;
			break;
		case O_BSEED:
			if (num("boot-seed", optarg, 0, 9007199254740992.0,
			    &v) != 0)
				return 2;
			o.boot_seed = (uint64_t)v;
			break;
		case O_K:
			if (num("k", optarg, 1, 1e6, &v) != 0)
				return 2;
			o.k = (int)v;
			break;
		case O_EXTRA:
			extras = xreallocarray(extras, n_extras + 1,
			    sizeof(*extras));
			extras[n_extras++] = optarg;
			break;
		case O_HELP:
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	for (int i = optind; i < argc; i++) {
		dirs = xreallocarray(dirs, n_dirs + 1, sizeof(*dirs));
		dirs[n_dirs++] = argv[i];
	}
	if (n_dirs == 0) {
		fprintf(stderr, "%s: no run directory (--seeds-dirs)\n", prog);
		usage(stderr);
		return 2;
	}
	if (name == NULL)
		name = o.task == EVALAGG_CTR ? "ctr" : "ranking";
	if (strchr(name, '/') != NULL || name[0] == '\0') {
		fprintf(stderr, "%s: --name: '%s' is not a file name\n", prog,
		    name);
		return 2;
	}

	runs = xcalloc(n_dirs, sizeof(*runs));
	for (size_t i = 0; i < n_dirs; i++) {
		evalagg_run_init(&runs[i]);
		if (evalagg_read_dir(&runs[i], dirs[i], err, sizeof(err)) !=
		    0) {
			fprintf(stderr, "%s: %s\n", prog, err);
			goto done;
		}
		if (evalagg_run_find(&runs[i], o.baseline) == NULL) {
			fprintf(stderr, "%s: %s: no rows of the baseline "
			    "method '%s'\n", prog, dirs[i], o.baseline);
			goto done;
		}
	}
	for (size_t j = 0; j < n_methods; j++) {
		size_t i;

		for (i = 0; i < n_dirs; i++)
			if (evalagg_run_find(&runs[i], methods[j]) != NULL)
				break;
		if (i == n_dirs)
			fprintf(stderr, "%s: warning: --methods: no rows of "
			    "'%s' in any run; skipped\n", prog, methods[j]);
	}
	if (counts_path != NULL && evalagg_read_counts(counts_path, &counts,
	    &n_counts, err, sizeof(err)) != 0) {
		fprintf(stderr, "%s: %s\n", prog, err);
		goto done;
	}
	/* The devices' own cost lines first, then the --extra files. */
	for (size_t i = 0; i < n_dirs; i++)
		if (evalagg_extra_read_dir(&x, dirs[i], err, sizeof(err)) !=
		    0) {
			fprintf(stderr, "%s: %s\n", prog, err);
			goto done;
		}
	for (size_t i = 0; i < n_extras; i++) {
		struct stat st;

		int isdir = stat(extras[i], &st) == 0 && S_ISDIR(st.st_mode);

		if ((isdir ? evalagg_extra_read_dir(&x, extras[i], err,
		    sizeof(err)) : evalagg_extra_read(&x, extras[i], err,
		    sizeof(err))) != 0) {
			fprintf(stderr, "%s: %s\n", prog, err);
			goto done;
		}
	}
	if (evalagg_compute(&res, runs, n_dirs, &o,
	    (const char *const *)methods, n_methods, counts, n_counts, err,
	    sizeof(err)) != 0) {
		fprintf(stderr, "%s: %s%s\n", prog, err, counts_path ?
		    " (--user-counts)" : "");
		goto done;
	}
	evalagg_write_md(stdout, &res, &x, name);
	rc = out != NULL && write_out(out, name, &res, &x) != 0 ? 1 : 0;
	evalagg_result_fini(&res);
done:
	for (size_t i = 0; i < n_dirs; i++)
		evalagg_run_fini(&runs[i]);
	free(runs);
	free(dirs);
	free(methods);
	free(extras);
	free(counts);
	evalagg_extra_fini(&x);
	return rc;
}
