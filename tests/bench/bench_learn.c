/*
 * bench_learn: device time per learning job (issue 17's goal: <= 5 ms
 * median, <= 16 MiB), on the devices of a real split.
 *
 *   bench_learn SPLIT_DIR [--stride S] [--methods a,b,...] [-o key=value]...
 *               [--save-model FILE]
 *
 * SPLIT_DIR is what `dccl-data split` writes (pool.csv, devices/). The
 * cloud model is trained here as cloudd trains it (train_model_defaults:
 * D 16, K 20, MLP 128-64, patch rank 16, the pool's side fields,
 * interaction fm; Adam 1e-3, batch 256, up to 20 epochs with patience 2
 * on the last 10 % of each user's pool samples). Then,
 * for every S-th device (local samples only, no retrieval), it times:
 *   - the served job (learn_run with the learn.* defaults or -o options):
 *     preparation, cross-validation, guard, final fit, patch;
 *   - each evaluation method alone (preparation + learn_method_run, no
 *     work shared with other methods).
 * and prints median, p90, mean and max per line ("BENCH learn ..."). The
 * CoDA methods need the cloud's retrieval and are left out (an empty
 * retrieved set would time plain fine-tuning under their name).
 * Finally a child process that holds only the model and the largest
 * device's samples runs the served job and reports its peak RSS.
 */
#include <errno.h>
#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/wait.h>
#include <cblas.h>

#include "cloudd/train_model.h"
#include "deviced/deviced.h"
#include "deviced/learn.h"
#include "shared/conf.h"
#include "shared/ml/ctr.h"
#include "shared/ml/ctr_io.h"
#include "shared/data/dataset.h"
#include "shared/xmalloc.h"

#define DEFAULT_METHODS "naive-ft,ft-cv,ft-guard,ft-lc,ft-lcm,ft-lcoff," \
	"ft-lcoffm,metapatch,mp-cv,bias,ft-fb,ft-lcoffm-fb,mp-fb"
#define MAX_OPTS 32
#define ROUNDS 2

/*
 * The job's CPU time (this thread's): on a shared machine wall time
 * measures the other tenants as much as the job. BENCH_WALL=1 uses the
 * monotonic clock instead.
 */
static double
now(void)
{
	static int wall = -1;
	struct timespec ts;

	if (wall < 0)
		wall = getenv("BENCH_WALL") != NULL &&
		    strcmp(getenv("BENCH_WALL"), "1") == 0;
	clock_gettime(wall ? CLOCK_MONOTONIC : CLOCK_THREAD_CPUTIME_ID, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

/*
 * VmRSS or VmHWM (the peak) of this process from /proc/self/status, in
 * KiB; 0 if unknown. Unlike getrusage's ru_maxrss, VmHWM is this
 * program's own: ru_maxrss keeps the forking parent's size across exec.
 */
static long
status_kib(const char *key)
{
	char line[256];
	long v = 0;
	size_t kl = strlen(key);
	FILE *f = fopen("/proc/self/status", "r");

	if (f == NULL)
		return 0;
	while (fgets(line, sizeof(line), f) != NULL)
		if (strncmp(line, key, kl) == 0 && line[kl] == ':')
			v = strtol(line + kl + 1, NULL, 10);
	fclose(f);
	return v;
}

/*
 * Resets VmHWM to the present RSS (Linux >= 4.0: "5" to clear_refs), so
 * that a later peak is the job's own, not loading's; 0 if it did.
 */
static int
reset_peak(void)
{
	FILE *f = fopen("/proc/self/clear_refs", "w");
	int ok;

	if (f == NULL)
		return -1;
	ok = fputs("5", f) >= 0;
	return fclose(f) == 0 && ok ? 0 : -1;
}

static int
cmp_dbl(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

static void
report(const char *what, double *ms, size_t n, int adopted)
{
	double sum = 0;

	if (n == 0)
		return;
	qsort(ms, n, sizeof(double), cmp_dbl);
	for (size_t i = 0; i < n; i++)
		sum += ms[i];
	printf("BENCH learn %-14s devices=%zu median_ms=%.3f p90_ms=%.3f "
	    "mean_ms=%.3f max_ms=%.3f", what, n, ms[n / 2],
	    ms[(size_t)(0.9 * (double)(n - 1))], sum / (double)n, ms[n - 1]);
	if (adopted >= 0)
		printf(" adopted=%d", adopted);
	printf("\n");
	fflush(stdout);
}

static int
conf_setup(struct conf *c, struct deviced_conf *cf, char **opts, int nopt)
{
	memset(cf, 0, sizeof(*cf));
	if (conf_init(c, deviced_opts, cf, stderr) != 0)
		return -1;
	for (int i = 0; i < nopt; i++)
		if (conf_set_arg(c, opts[i], CONF_SRC_FLAG) != 0)
			return -1;
	return 0;
}

/* The cloud model, trained as cloudd trains it. */
static int
train_cloud(const char *pool_csv, struct ctr **out, double *gctr)
{
	struct dataset ds;
	struct dataset_idx all, tr, va;
	struct ctr_config cfg;
	struct ctr_train_opts o;
	uint32_t *tri, *vai;
	double pos = 0;
	int rc;

	dataset_init(&ds);
	if ((rc = dataset_read_csv(&ds, pool_csv, NULL, NULL)) != 0)
		return rc;
	memset(&all, 0, sizeof(all));
	memset(&tr, 0, sizeof(tr));
	memset(&va, 0, sizeof(va));
	dataset_idx_all(&all, &ds);
	if ((rc = dataset_carve_val(&tr, &va, &all, 0.1)) != 0)
		return rc;
	tri = xcalloc(tr.n + 1, sizeof(uint32_t));
	vai = xcalloc(va.n + 1, sizeof(uint32_t));
	for (size_t i = 0; i < tr.n; i++) {
		tri[i] = (uint32_t)tr.v[i];
		pos += ds.s[tri[i]].label;
	}
	for (size_t i = 0; i < va.n; i++)
		vai[i] = (uint32_t)va.v[i];
	/* cloudd's model for this pool: its side fields, train.interaction
	 * fm (BENCH_INTERACTION=0|1|2 overrides, as in bench_train) */
	train_model_defaults(&cfg, &ds);
	if (getenv("BENCH_INTERACTION") != NULL)
		cfg.interaction = atoi(getenv("BENCH_INTERACTION"));
	if ((rc = ctr_new(out, &cfg, 1)) != 0)
		return rc;
	ctr_train_opts_default(&o);
	ctr_opt_default(&o.opt, CTR_OPT_ADAM, 1e-3f);
	o.epochs = 20;
	o.batch = 256;
	o.patience = 2;
	o.seed = 1;
	rc = ctr_train(*out, &ds, tri, tr.n, vai, va.n, &o, NULL);
	*gctr = tr.n ? pos / (double)tr.n : 0;
	free(tri);
	free(vai);
	dataset_idx_fini(&all);
	dataset_idx_fini(&tr);
	dataset_idx_fini(&va);
	dataset_fini(&ds);
	return rc;
}

static int
cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The local CSVs of dir/devices, sorted. */
static char **
list_devices(const char *dir, size_t *n)
{
	char path[1024], **v = NULL;
	struct dirent *e;
	DIR *d;
	size_t cap = 0;

	*n = 0;
	snprintf(path, sizeof(path), "%s/devices", dir);
	if ((d = opendir(path)) == NULL)
		return NULL;
	while ((e = readdir(d)) != NULL) {
		size_t l = strlen(e->d_name);
		if (l < 11 || strcmp(e->d_name + l - 10, ".local.csv") != 0)
			continue;
		if (*n == cap) {
			cap = cap ? 2 * cap : 256;
			v = xreallocarray(v, cap, sizeof(char *));
		}
		snprintf(path, sizeof(path), "%s/devices/%s", dir, e->d_name);
		v[(*n)++] = xstrdup(path);
	}
	closedir(d);
	if (*n > 0)
		qsort(v, *n, sizeof(char *), cmp_str);
	return v;
}

/* A device's local samples, the newest max as deviced keeps them. */
static int
load_local(const char *path, struct dataset *ds, int64_t max)
{
	struct dataset_opts o;

	dataset_init(ds);
	dataset_opts_default(&o);
	if (dataset_read_csv(ds, path, &o, NULL) != 0)
		return -1;
	dataset_keep_last(ds, (size_t)max);
	return 0;
}

/* Child: only the model and one device's samples; the served job's RSS. */
static int
rss_child(const char *model_path, const char *local_csv, char **opts,
    int nopt)
{
	struct deviced_conf cf;
	struct conf c;
	struct learn_in in;
	struct learn_prep p;
	struct learn_result r;
	struct dataset local, none;
	struct ctr *m = NULL;
	struct ctr_meta meta;
	uint8_t *buf;
	size_t len;
	long before, peak;
	int peak_reset;
	FILE *f;
	double t0;

	openblas_set_num_threads(1);
	if (conf_setup(&c, &cf, opts, nopt) != 0 ||
	    load_local(local_csv, &local, cf.max_local) != 0 ||
	    (f = fopen(model_path, "rb")) == NULL)
		return 1;
	fseek(f, 0, SEEK_END);
	len = (size_t)ftell(f);
	rewind(f);
	buf = xmalloc(len);
	if (fread(buf, 1, len, f) != len ||
	    ctr_io_unpack(&m, &meta, buf, len, NULL, 0) != 0)
		return 1;
	fclose(f);
	free(buf);
	dataset_init(&none);
	peak_reset = reset_peak() == 0;
	before = status_kib("VmRSS");
	memset(&in, 0, sizeof(in));
	in.cf = &cf;
	in.model = m;
	in.local = &local;
	in.retrieved = &none;
	in.user = local.n ? local.s[0].user : 0;
	in.global_ctr = meta.global_ctr;
	in.want_serving = 1;	/* with the app socket: the most held */
	t0 = now();
	learn_run(&in, &p, NULL, &r);
	learn_prep_fini(&p);
	learn_result_fini(&r);
	peak = status_kib("VmHWM");
	/*
	 * The job's own peak: the process peak above the RSS before it,
	 * exact when the peak was reset before the job ("="); else a bound
	 * ("<=", 0 when an earlier peak, e.g. loading, is higher).
	 */
	printf("BENCH learn_rss local_samples=%zu job_ms=%.3f "
	    "rss_before_job_mib=%.2f peak_rss_mib=%.2f job_peak_mib%s%.2f "
	    "model_mib=%.2f\n", local.n, (now() - t0) * 1e3, before / 1024.0,
	    peak / 1024.0, peak_reset ? "=" : "<=",
	    peak > before ? (peak - before) / 1024.0 : 0.0,
	    ctr_num_params(m) * 4.0 / (1 << 20));
	ctr_free(m);
	dataset_fini(&local);
	conf_fini(&c);
	return 0;
}

int
main(int argc, char **argv)
{
	const char *dir = NULL, *methods = DEFAULT_METHODS, *save_model = NULL;
	char *opts[MAX_OPTS], pool[1024], model_path[] =
	    "/tmp/bench_learn.XXXXXX", **dev, *list, *save = NULL, *nm;
	int nopt = 0, stride = 1, fd, status;
	struct deviced_conf cf;
	struct conf c;
	struct ctr *model;
	struct ctr_meta meta;
	double gctr, t0, *ms, *ms_ref;
	size_t ndev, nsel = 0, big = 0, bign = 0;
	struct dataset *local, none;
	struct learn_result *res[2];
	uint8_t *buf;
	size_t len;
	pid_t pid;

	if (argc > 1 && strcmp(argv[1], "--rss") == 0 && argc >= 4)
		return rss_child(argv[2], argv[3], argv + 4, argc - 4);
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--stride") == 0 && i + 1 < argc)
			stride = atoi(argv[++i]);
		else if (strcmp(argv[i], "--methods") == 0 && i + 1 < argc)
			methods = argv[++i];
		else if (strcmp(argv[i], "--save-model") == 0 && i + 1 < argc)
			save_model = argv[++i];
		else if (strcmp(argv[i], "-o") == 0 && i + 1 < argc &&
		    nopt < MAX_OPTS)
			opts[nopt++] = argv[++i];
		else if (dir == NULL && argv[i][0] != '-')
			dir = argv[i];
		else {
			fprintf(stderr, "usage: bench_learn SPLIT_DIR [--stride "
			    "S] [--methods a,b] [-o key=value]...\n");
			return 2;
		}
	}
	if (dir == NULL || stride < 1) {
		fprintf(stderr, "usage: bench_learn SPLIT_DIR [--stride S] "
		    "[--methods a,b] [-o key=value]...\n");
		return 2;
	}
	openblas_set_num_threads(1);
	if (conf_setup(&c, &cf, opts, nopt) != 0)
		return 2;
	snprintf(pool, sizeof(pool), "%s/pool.csv", dir);
	t0 = now();
	if (train_cloud(pool, &model, &gctr) != 0) {
		fprintf(stderr, "bench_learn: cannot train on %s\n", pool);
		return 1;
	}
	printf("BENCH learn_cloud train_s=%.1f params=%zu interaction=%d "
	    "n_side=%u\n", now() - t0, ctr_num_params(model),
	    (int)ctr_config(model)->interaction, ctr_config(model)->n_side);
	if ((dev = list_devices(dir, &ndev)) == NULL || ndev == 0) {
		fprintf(stderr, "bench_learn: no devices in %s/devices\n", dir);
		return 1;
	}
	local = xcalloc(ndev, sizeof(struct dataset));
	for (size_t i = 0; i < ndev; i += (size_t)stride) {
		if (load_local(dev[i], &local[nsel], cf.max_local) != 0) {
			fprintf(stderr, "bench_learn: %s: bad CSV\n", dev[i]);
			return 1;
		}
		if (local[nsel].n > bign) {
			bign = local[nsel].n;
			big = i;
		}
		nsel++;
	}
	dataset_init(&none);
	ms = xcalloc(nsel + 1, sizeof(double));
	ms_ref = xcalloc(nsel + 1, sizeof(double));
	res[0] = xcalloc(nsel + 1, sizeof(struct learn_result));
	res[1] = xcalloc(nsel + 1, sizeof(struct learn_result));

	/*
	 * The served job, as deviced runs it without an evaluation, and the
	 * same job with every path through the whole model (the reference
	 * the frozen-trunk and bias-only paths replace): ROUNDS alternating
	 * passes over the devices (a pass each, so neither runs on the
	 * other's caches), each device's best time per side.
	 */
	{
		int adopted = 0, differ = 0;
		double dmax = 0;
		for (size_t i = 0; i < nsel; i++)
			ms[i] = ms_ref[i] = INFINITY;
		for (int pass = 0; pass < 2 * ROUNDS; pass++) {
			int ref = pass % 2;
			for (size_t i = 0; i < nsel; i++) {
				struct learn_in in = { &cf, model, &local[i],
					&none, local[i].n ?
					local[i].s[0].user : 0, gctr, NULL, 0,
					0, ref, NULL, 0 };
				struct learn_prep p;
				double *t = ref ? ms_ref : ms;
				t0 = now();
				learn_run(&in, &p, NULL, &res[ref][i]);
				learn_prep_fini(&p);
				t0 = (now() - t0) * 1e3;
				t[i] = t0 < t[i] ? t0 : t[i];
				if (pass < 2 * ROUNDS - 2)
					learn_result_fini(&res[ref][i]);
			}
		}
		for (size_t i = 0; i < nsel; i++) {
			struct learn_result *r0 = &res[0][i], *r1 = &res[1][i];
			adopted += r0->adopted;
			if (r0->adopted != r1->adopted ||
			    r0->fallback != r1->fallback ||
			    r0->steps != r1->steps || r0->lr != r1->lr)
				differ++;
			for (size_t t = 0; t < r0->n_patch &&
			    t < r1->n_patch; t++)
				for (size_t j = 0; j < r0->patch[t]->n_data;
				    j++) {
					double e = fabs(r0->patch[t]->data[j] -
					    r1->patch[t]->data[j]);
					dmax = e > dmax ? e : dmax;
				}
			learn_result_fini(r0);
			learn_result_fini(r1);
		}
		report("served", ms, nsel, adopted);
		report("served-ref", ms_ref, nsel, -1);
		printf("BENCH learn served_vs_ref choices_differ=%d "
		    "patch_max_abs_diff=%.3g\n", differ, dmax);
	}
	/* Each evaluation method alone: preparation + the method. */
	list = xstrdup(methods);
	for (nm = strtok_r(list, ",", &save); nm; nm = strtok_r(NULL, ",",
	    &save)) {
		struct learn_method_info mi;
		int adopted = 0;
		if (learn_method_info(nm, &mi) != 0) {
			fprintf(stderr, "bench_learn: no method %s\n", nm);
			continue;
		}
		for (size_t i = 0; i < nsel; i++) {
			struct learn_in in = { &cf, model, &local[i], &none,
				local[i].n ? local[i].s[0].user : 0, gctr, NULL,
				1, 0, 0, NULL, 0 };
			struct learn_prep p;
			struct learn_choice ch;
			double secs, mem;
			t0 = now();
			learn_prep_init(&p, &in, &none);
			ctr_free(learn_method_run(&p, nm, NULL, &ch, &secs,
			    &mem));
			learn_prep_fini(&p);
			ms[i] = (now() - t0) * 1e3;
			adopted += ch.adopted;
		}
		report(nm, ms, nsel, adopted);
	}
	free(list);

	/* Peak RSS of a process holding one device (the largest). */
	memset(&meta, 0, sizeof(meta));
	meta.global_ctr = gctr;
	if ((fd = mkstemp(model_path)) < 0 ||
	    ctr_io_pack(model, &meta, &buf, &len) != 0 ||
	    write(fd, buf, len) != (ssize_t)len) {
		fprintf(stderr, "bench_learn: cannot write the model\n");
		return 1;
	}
	close(fd);
	free(buf);
	fflush(stdout);
	if ((pid = fork()) == 0) {
		char *args[MAX_OPTS * 2 + 5];
		int k = 0;
		args[k++] = argv[0];
		args[k++] = "--rss";
		args[k++] = model_path;
		args[k++] = dev[big];
		for (int i = 0; i < nopt; i++)
			args[k++] = opts[i];
		args[k] = NULL;
		execv("/proc/self/exe", args);
		_exit(127);
	}
	if (pid < 0 || waitpid(pid, &status, 0) < 0 || !WIFEXITED(status) ||
	    WEXITSTATUS(status) != 0)
		fprintf(stderr, "bench_learn: rss child failed\n");
	if (save_model != NULL && rename(model_path, save_model) != 0)
		fprintf(stderr, "bench_learn: cannot keep the model\n");
	unlink(model_path);
	for (size_t i = 0; i < nsel; i++)
		dataset_fini(&local[i]);
	for (size_t i = 0; i < ndev; i++)
		free(dev[i]);
	free(dev);
	free(local);
	free(ms);
	free(ms_ref);
	free(res[0]);
	free(res[1]);
	ctr_free(model);
	conf_fini(&c);
	return 0;
}
