/*
 * dccl-eval: the evaluation table from the devices' prediction files.
 *
 *   dccl-eval [--task ctr|ranking] --seeds-dirs DIR1,DIR2,... [DIR...]
 *       [--out OUTDIR] [--name NAME] [--methods m1,m2,...]
 *       [--baseline cloud] [--long-tail FRAC] [--user-counts FILE]
 *       [--boot B] [--boot-seed S] [--k K] [--extra FILE|DIR]...
 *       [--cold-users FILE[,FILE...]] [--users all|warm|cold]
 *       [--reference NAME]
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
"           [--cold-users FILE[,FILE...]] [--users all|warm|cold]\n"
"           [--reference NAME]\n"
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
"  --user-counts FILE[,FILE...] 'user,n_local' lines for the long tail,\n"
"                     one file for all runs or one per run (in the order\n"
"                     of the runs); without it the tail is by test rows\n"
"                     (ctr) / test positives\n"
"  --cold-users FILE[,FILE...] the split's cold.csv ('user' lines), one\n"
"                     for all runs or one per run; --users warm keeps the\n"
"                     other users' rows, --users cold only theirs (all);\n"
"                     the cost columns then average the group's devices\n"
"                     (<prefix>-<user>.extra files)\n"
"  --reference NAME   a row shown but left out of the Holm family (oracle)\n"
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
	O_COUNTS, O_BOOT, O_BSEED, O_K, O_EXTRA, O_COLD, O_USERS, O_REF,
	O_HELP
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
	{ "cold-users", required_argument, NULL, O_COLD },
	{ "users", required_argument, NULL, O_USERS },
	{ "reference", required_argument, NULL, O_REF },
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

/*
 * A user list ("user" header, then one id a line): set (n entries) gets 1
 * for each listed user. Returns 0 or -1 with a message printed.
 */
static int
read_users(const char *path, uint8_t **set, uint32_t *n)
{
	FILE *fp = fopen(path, "r");
	char line[128], *end;
	size_t ln = 0;

	*set = NULL;
	*n = 0;
	if (fp == NULL) {
		fprintf(stderr, "%s: %s: %s\n", prog, path, strerror(errno));
		return -1;
	}
	while (fgets(line, sizeof(line), fp) != NULL) {
		unsigned long u;

		ln++;
		line[strcspn(line, "\r\n")] = '\0';
		if (line[0] == '\0' || (ln == 1 && strcmp(line, "user") == 0))
			continue;
		errno = 0;
		u = strtoul(line, &end, 10);
		if (errno != 0 || end == line || *end != '\0' ||
		    line[0] == '-' || u >= EVALAGG_ID_MAX) {
			fprintf(stderr, "%s: %s:%zu: not a user id\n", prog,
			    path, ln);
			fclose(fp);
			free(*set);
			*set = NULL;
			return -1;
		}
		if (u >= *n) {
			uint32_t nn = (uint32_t)u + 1;

			*set = xreallocarray(*set, nn, 1);
			memset(*set + *n, 0, nn - *n);
			*n = nn;
		}
		(*set)[u] = 1;
	}
	fclose(fp);
	return 0;
}

/*
 * The *.extra files of dir whose device serves a user of the chosen group:
 * deviced names them <prefix>-<user>.extra. keep_in_set as in
 * evalagg_run_filter(); files without a user id are left out.
 */
struct users_arg {
	struct evalagg_extra	*x;
	const uint8_t		*set;
	uint32_t		 n;
	int			 keep_in_set;
	char			 err[512];
};

static int
extra_user_cb(void *arg, const char *path, const char *name)
{
	struct users_arg *a = arg;
	const char *dash = strrchr(name, '-');
	char *end;
	unsigned long u;

	if (dash == NULL)
		return 0;
	errno = 0;
	u = strtoul(dash + 1, &end, 10);
	if (errno != 0 || end == dash + 1 || strcmp(end, ".extra") != 0)
		return 0;
	if ((u < a->n && a->set[u]) != (a->keep_in_set != 0))
		return 0;
	return evalagg_extra_read(a->x, path, a->err, sizeof(a->err));
}

static int
extra_read_users(struct evalagg_extra *x, const char *dir, const uint8_t *set,
    uint32_t n, int keep_in_set)
{
	struct users_arg a = { x, set, n, keep_in_set, "" };
	int rc;

	rc = evalagg_each_file(dir, ".extra", extra_user_cb, &a, a.err,
	    sizeof(a.err));
	if (rc == -ENOENT)
		return 0;	/* as evalagg_extra_read_dir: none is fine */
	if (rc < 0) {
		fprintf(stderr, "%s: %s\n", prog, a.err);
		return -1;
	}
	return 0;
}

/* One file for all runs or one per run: file i of list for run i. */
static const char *
per_run(char **list, size_t n_list, size_t i)
{
	return n_list == 1 ? list[0] : list[i];
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
	const char *out = NULL, *name = NULL;
	char **cpaths = NULL, **upaths = NULL;
	size_t n_cpaths = 0, n_upaths = 0;
	uint32_t **counts = NULL, *n_counts = NULL;
	int ch, rc = 1, which = 0;	/* --users: 0 all, 1 warm, 2 cold */
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
			split_list(optarg, &cpaths, &n_cpaths);
			break;
		case O_COLD:
			split_list(optarg, &upaths, &n_upaths);
			break;
		case O_USERS:
			which = strcmp(optarg, "all") == 0 ? 0 :
			    strcmp(optarg, "warm") == 0 ? 1 :
			    strcmp(optarg, "cold") == 0 ? 2 : -1;
			if (which < 0) {
				fprintf(stderr, "%s: --users: want all, warm "
				    "or cold, got '%s'\n", prog, optarg);
				return 2;
			}
			break;
		case O_REF:
			o.reference = optarg;
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
	if ((n_cpaths > 1 && n_cpaths != n_dirs) ||
	    (n_upaths > 1 && n_upaths != n_dirs)) {
		fprintf(stderr, "%s: --user-counts and --cold-users take one "
		    "file or one per run (%zu runs)\n", prog, n_dirs);
		return 2;
	}
	if (which != 0 && n_upaths == 0) {
		fprintf(stderr, "%s: --users %s needs --cold-users\n", prog,
		    which == 1 ? "warm" : "cold");
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
		if (which != 0) {
			uint8_t *set;
			uint32_t ns;

			if (read_users(per_run(upaths, n_upaths, i), &set,
			    &ns) != 0)
				goto done;
			evalagg_run_filter(&runs[i], set, ns, which == 2);
			free(set);
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
	if (n_cpaths > 0) {
		counts = xcalloc(n_dirs, sizeof(*counts));
		n_counts = xcalloc(n_dirs, sizeof(*n_counts));
		for (size_t i = 0; i < n_dirs; i++)
			if (evalagg_read_counts(per_run(cpaths, n_cpaths, i),
			    &counts[i], &n_counts[i], err, sizeof(err)) != 0) {
				fprintf(stderr, "%s: %s\n", prog, err);
				goto done;
			}
	}
	/*
	 * The devices' own cost lines first (with --users, the group's
	 * devices only), then the --extra files.
	 */
	for (size_t i = 0; i < n_dirs; i++) {
		if (which != 0) {
			uint8_t *set;
			uint32_t ns;
			int r;

			if (read_users(per_run(upaths, n_upaths, i), &set,
			    &ns) != 0)
				goto done;
			r = extra_read_users(&x, dirs[i], set, ns, which == 2);
			free(set);
			if (r != 0)
				goto done;
		} else if (evalagg_extra_read_dir(&x, dirs[i], err,
		    sizeof(err)) != 0) {
			fprintf(stderr, "%s: %s\n", prog, err);
			goto done;
		}
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
	    (const char *const *)methods, n_methods,
	    (const uint32_t *const *)counts, n_counts, err,
	    sizeof(err)) != 0) {
		fprintf(stderr, "%s: %s%s\n", prog, err, n_cpaths ?
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
	for (size_t i = 0; counts != NULL && i < n_dirs; i++)
		free(counts[i]);
	free(counts);
	free(n_counts);
	free(cpaths);
	free(upaths);
	evalagg_extra_fini(&x);
	return rc;
}
