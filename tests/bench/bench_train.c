/*
 * bench_train: training throughput of the dccl CTR model, BLAS vs naive
 * linear layers, and the cost of one device fine-tune.
 *
 *   make bin/bench_train && bin/bench_train
 *   /usr/bin/python3 tests/bench/train_torch.py     (the PyTorch side)
 *
 * Model: D=16, hidden 128-64, K=20, batch 256, Adam lr 1e-3, on a synthetic
 * dataset of 200k samples (2000 users, 10000 items, 20 genres, history up
 * to 40 items, labels from a hidden logistic model). Throughput is one
 * epoch with OpenBLAS pinned to 1 and then 2 threads (the rest of the step
 * is single-threaded). The fine-tune figure re-executes this binary with
 * --finetune so that its peak RSS (getrusage ru_maxrss) covers only one
 * device: a model of the same shape, 200 local samples, 5 epochs, batch 32.
 * BENCH_INTERACTION=0|1|2 and BENCH_ATTENTION=0|1 in the environment set
 * the model's base-model options (ctr.h; default off).
 * Each figure is one "BENCH name key=value ..." line. --train-once prints
 * only the 1-thread throughput; tests/bench/train_pair.sh runs it
 * alternately with the PyTorch peer for the ratio.
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cblas.h>

#include "cloudd/train_model.h"
#include "shared/clock.h"
#include "shared/ml/ctr.h"
#include "shared/ml/kern.h"
#include "shared/rng.h"

#define N_USERS		2000
#define N_ITEMS		10000
#define N_GENRES	20
#define N_SAMPLES	200000
#define DEV_SAMPLES	200

/*
 * Synthetic CTR data: per-user and per-item biases plus a user-genre taste
 * term drive a logistic label; history = the user's previous positives.
 * Users are drawn from [u0, u0 + nu).
 */
static void
make_data(struct dataset *ds, size_t n, uint32_t u0, uint32_t nu,
    uint64_t seed)
{
	struct rng r;
	float ub[N_USERS], ib[N_ITEMS];
	uint32_t igen[N_ITEMS], taste[N_USERS];
	uint32_t last[N_USERS][40];
	uint16_t nlast[N_USERS];

	memset(ds, 0, sizeof(*ds));
	rng_seed(&r, seed);
	for (int u = 0; u < N_USERS; u++) {
		ub[u] = (float)(0.5 * rng_normal(&r));
		taste[u] = rng_below(&r, N_GENRES);
		nlast[u] = 0;
	}
	for (int i = 0; i < N_ITEMS; i++) {
		ib[i] = (float)(0.8 * rng_normal(&r));
		igen[i] = (1u << rng_below(&r, N_GENRES)) |
		    (1u << rng_below(&r, N_GENRES));
	}
	ds->s = calloc(n, sizeof(*ds->s));
	ds->hist = calloc(n * 40, sizeof(uint32_t));
	ds->n = ds->cap = n;
	ds->hist_cap = n * 40;
	ds->n_users = N_USERS;
	ds->n_items = N_ITEMS;
	ds->n_genres = N_GENRES;
	for (size_t k = 0; k < n; k++) {
		struct sample *s = &ds->s[k];
		uint32_t u = u0 + rng_below(&r, nu);
		/* popularity skew: square of a uniform */
		double p = rng_unif(&r);
		uint32_t it = (uint32_t)(p * p * N_ITEMS);
		s->user = u;
		s->item = it;
		s->ts = 1500000000 + (int64_t)k * 60;
		s->genres = igen[it];
		double z = ub[u] + ib[it] +
		    ((igen[it] >> taste[u]) & 1 ? 1.5 : -0.3);
		s->label = rng_unif(&r) < 1 / (1 + exp(-z)) ? 1.0f : 0.0f;
		s->hist_off = (uint32_t)ds->hist_len;
		s->hist_n = nlast[u];
		memcpy(ds->hist + ds->hist_len, last[u],
		    nlast[u] * sizeof(uint32_t));
		ds->hist_len += nlast[u];
		if (s->label > 0.5f) {
			if (nlast[u] == 40) {
				memmove(last[u], last[u] + 1,
				    39 * sizeof(uint32_t));
				nlast[u]--;
			}
			last[u][nlast[u]++] = it;
		}
	}
}

static struct ctr_config
bench_cfg(int rank)
{
	struct ctr_config c;

	/*
	 * cloudd's shape, but no base-model options unless BENCH_INTERACTION
	 * or BENCH_ATTENTION ask (the PyTorch peer, train_torch.py, reads the
	 * same variables: both time the same model; BENCH_INTERACTION=2 is
	 * cloudd's default, train_model.h).
	 */
	train_model_defaults(&c, NULL);
	c.n_users = N_USERS;
	c.n_items = N_ITEMS;
	c.n_genres = N_GENRES;
	c.patch_rank = rank;
	c.interaction = CTR_INTER_OFF;
	c.attention = 0;
	if (getenv("BENCH_INTERACTION") != NULL)
		c.interaction = atoi(getenv("BENCH_INTERACTION"));
	if (getenv("BENCH_ATTENTION") != NULL)
		c.attention = atoi(getenv("BENCH_ATTENTION"));
	return c;
}

static void
bench_linear(void)
{
	enum { B = 256, C = 96, O = 128, IT = 200 };
	float *inp = malloc(B * C * 4), *w = malloc(O * C * 4),
	    *bias = malloc(O * 4), *out = malloc(B * O * 4),
	    *dout = malloc(B * O * 4), *din = calloc(B * C, 4),
	    *dw = calloc(O * C, 4), *db = calloc(O, 4);
	struct rng r;

	rng_seed(&r, 1);
	for (int i = 0; i < B * C; i++)
		inp[i] = (float)rng_unif(&r);
	for (int i = 0; i < O * C; i++)
		w[i] = (float)rng_unif(&r);
	for (int i = 0; i < B * O; i++)
		dout[i] = (float)rng_unif(&r);
	for (int i = 0; i < O; i++)
		bias[i] = 0;
	for (int impl = 0; impl < 2; impl++) {
		double t0 = clock_now();
		for (int it = 0; it < IT; it++) {
			if (impl) {
				linear_forward(out, inp, w, bias, B, C, O);
				linear_backward(din, dw, db, dout, inp, w, B,
				    C, O);
			} else {
				linear_forward_naive(out, inp, w, bias, B, C,
				    O);
				linear_backward_naive(din, dw, db, dout, inp,
				    w, B, C, O);
			}
		}
		double dt = clock_now() - t0;
		double gf = 6.0 * B * C * O * IT / dt * 1e-9;
		printf("BENCH linear_%s B=%d C=%d O=%d fwd+bwd_us=%.1f "
		    "gflops=%.2f threads=1\n", impl ? "blas" : "naive", B, C,
		    O, dt / IT * 1e6, gf);
	}
	free(inp); free(w); free(bias); free(out); free(dout);
	free(din); free(dw); free(db);
}

/* The process's CPU seconds, every thread (BLAS threads included). */
static double
proc_cpu_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
	return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

static int
bench_throughput(const struct dataset *ds, int threads, int rank)
{
	struct ctr_config c = bench_cfg(rank);
	struct ctr_train_opts o;
	struct ctr_train_stats st;
	struct ctr *m;
	uint32_t *idx = malloc(ds->n * sizeof(uint32_t));
	int rc;

	for (size_t i = 0; i < ds->n; i++)
		idx[i] = (uint32_t)i;
	openblas_set_num_threads(threads);
	if ((rc = ctr_new(&m, &c, 1)) != 0)
		return rc;
	ctr_train_opts_default(&o);
	o.batch = 256;
	o.epochs = 1;
	/* warm-up: scratch allocation, Adam moments, page faults */
	ctr_train(m, ds, idx, 256 * 20, NULL, 0, &o, NULL);
	double t0 = clock_now(), c0 = proc_cpu_now();
	rc = ctr_train(m, ds, idx, ds->n, NULL, 0, &o, &st);
	double dt = clock_now() - t0, dc = proc_cpu_now() - c0;
	/* cpu_sps: per second of the process's CPU time (all its threads),
	   as train_torch.py reports it: on a loaded machine the wall rate
	   measures the other tenants */
	printf("BENCH train_dccl threads=%d rank=%d samples=%zu secs=%.3f "
	    "samples_per_s=%.0f cpu_secs=%.3f cpu_sps=%.0f loss=%.4f "
	    "flops_per_pred=%.0f params=%zu\n", threads, rank, ds->n, dt,
	    ds->n / dt, dc, ds->n / dc, st.train_loss, ctr_flops(m),
	    ctr_num_params(m));
	ctr_free(m);
	free(idx);
	return rc;
}

/* This thread's CPU seconds: on a loaded machine, wall time measures the
 * other tenants. */
static double
cpu_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

/*
 * One device: a fresh process holding one model and 200 samples. The
 * model stands in for the downloaded cloud model (same shape); its init
 * does not matter for the timing.
 */
static int
finetune(void)
{
	struct ctr_config c = bench_cfg(8);
	struct dataset ds;
	struct ctr_train_opts o;
	struct ctr *base, *m;
	uint32_t idx[DEV_SAMPLES];
	enum { REPS = 20 };
	struct rusage ru;
	int rc;

	openblas_set_num_threads(1);
	make_data(&ds, DEV_SAMPLES, 42, 1, 7);	/* one user */
	for (int i = 0; i < DEV_SAMPLES; i++)
		idx[i] = (uint32_t)i;
	if ((rc = ctr_new(&base, &c, 1)) != 0)
		return rc;
	for (int mode = 0; mode < 2; mode++) {
		double best = INFINITY, sum = 0, cbest = INFINITY, csum = 0;
		ctr_train_opts_default(&o);
		o.epochs = 5;
		o.batch = 32;
		o.sel = mode ? CTR_SEL_METAPATCH_ONLY : CTR_SEL_ALL;
		if (mode)
			o.opt.lr = 1e-2f;
		for (int rep = 0; rep < REPS; rep++) {
			m = ctr_clone(base);
			double c0 = cpu_now(), t0 = clock_now();
			rc = ctr_train(m, &ds, idx, DEV_SAMPLES, NULL, 0, &o,
			    NULL);
			double dt = clock_now() - t0, dc = cpu_now() - c0;
			cbest = dc < cbest ? dc : cbest;
			csum += dc;
			ctr_free(m);
			if (rc != 0)
				return rc;
			sum += dt;
			best = dt < best ? dt : best;
		}
		printf("BENCH finetune_dccl sel=%s samples=%d epochs=5 batch=32 "
		    "ms_mean=%.3f ms_min=%.3f cpu_ms_min=%.3f cpu_ms_mean=%.3f\n",
		    mode ? "metapatch" : "all", DEV_SAMPLES, sum / REPS * 1e3,
		    best * 1e3, cbest * 1e3, csum / REPS * 1e3);
	}
	getrusage(RUSAGE_SELF, &ru);
	printf("BENCH finetune_dccl_rss peak_rss_mib=%.2f params=%zu "
	    "model_mib=%.2f\n", ru.ru_maxrss / 1024.0, ctr_num_params(base),
	    ctr_num_params(base) * 4.0 / (1 << 20));
	ctr_free(base);
	free(ds.s);
	free(ds.hist);
	return 0;
}

int
main(int argc, char **argv)
{
	struct dataset ds;
	int rc, status;
	pid_t pid;

	if (argc > 1 && strcmp(argv[1], "--finetune") == 0)
		return finetune() == 0 ? 0 : 1;
	/* One throughput figure on 1 thread: the A side of train_pair.sh. */
	if (argc > 1 && strcmp(argv[1], "--train-once") == 0) {
		openblas_set_num_threads(1);
		make_data(&ds, N_SAMPLES, 0, N_USERS, 1);
		rc = bench_throughput(&ds, 1, 0);
		free(ds.s);
		free(ds.hist);
		return rc == 0 ? 0 : 1;
	}

	/* The device figure first, in its own process (clean RSS). */
	fflush(stdout);
	if ((pid = fork()) == 0) {
		/* as a device would run: no OpenBLAS thread pool at all */
		setenv("OPENBLAS_NUM_THREADS", "1", 1);
		execl("/proc/self/exe", argv[0], "--finetune", (char *)NULL);
		_exit(127);
	}
	if (pid < 0 || waitpid(pid, &status, 0) < 0 || !WIFEXITED(status) ||
	    WEXITSTATUS(status) != 0)
		fprintf(stderr, "bench_train: finetune child failed\n");

	openblas_set_num_threads(1);
	bench_linear();
	make_data(&ds, N_SAMPLES, 0, N_USERS, 1);
	printf("BENCH data samples=%zu hist_len=%zu\n", ds.n, ds.hist_len);
	if ((rc = bench_throughput(&ds, 1, 0)) != 0 ||
	    (rc = bench_throughput(&ds, 2, 0)) != 0 ||
	    (rc = bench_throughput(&ds, 1, 8)) != 0) {
		fprintf(stderr, "bench_train: %s\n", strerror(-rc));
		return 1;
	}
	free(ds.s);
	free(ds.hist);
	return 0;
}
