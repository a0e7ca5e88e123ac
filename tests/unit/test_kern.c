/*
 * test_kern: cmocka tests for shared/ml/kern.c.
 *
 * Gradient checks: every layer's float backward is compared against central
 * finite differences of an independent double-precision reference forward
 * (eps = 1e-5), for the scalar loss L = sum_i out_i * r_i with fixed random
 * r (BCE uses its own scalar loss). Tolerance: |analytic - numeric| <=
 * 1e-4 + 1e-3 |numeric|, i.e. float32 round-off of the analytic side; the
 * first mismatches are printed as in llm.c's check_tensor.
 */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <cblas.h>

#include "shared/ml/gemm.h"
#include "shared/ml/kern.h"
#include "shared/ml/metapatch.h"
#include "shared/ml/param.h"
#include "shared/rng.h"

void	openblas_set_num_threads(int);

#define FD_EPS	1e-5
#define ATOL	1e-4
#define RTOL	1e-3

/* Prints the first few mismatches and returns how many there are. */
static int
check_tensor(const char *label, const float *a, const double *n, size_t N)
{
	int bad = 0;
	double maxd = 0.0;

	for (size_t i = 0; i < N; i++) {
		double d = fabs((double)a[i] - n[i]);
		if (d > maxd)
			maxd = d;
		if (d > ATOL + RTOL * fabs(n[i])) {
			if (bad < 5)
				printf("  %s[%zu]: analytic %.8f numeric %.8f\n",
				    label, i, a[i], n[i]);
			bad++;
		}
	}
	printf("  %-10s %zu values, max |diff| %.3g, %d bad\n", label, N, maxd,
	    bad);
	return bad;
}

static void
randf(float *p, size_t n, double scale, struct rng *r)
{
	for (size_t i = 0; i < n; i++)
		p[i] = (float)(scale * (2.0 * rng_unif(r) - 1.0));
}

static double *
to_double(const float *p, size_t n)
{
	double *d = malloc(n * sizeof(*d));
	for (size_t i = 0; i < n; i++)
		d[i] = p[i];
	return d;
}

/*
 * Numeric gradient of f over the double array x (n): central differences,
 * writing into g (n).
 */
typedef double (*loss_fn)(void *ctx);

static void
numgrad(double *x, size_t n, double *g, loss_fn f, void *ctx)
{
	for (size_t i = 0; i < n; i++) {
		double keep = x[i];
		x[i] = keep + FD_EPS;
		double lp = f(ctx);
		x[i] = keep - FD_EPS;
		double lm = f(ctx);
		x[i] = keep;
		g[i] = (lp - lm) / (2 * FD_EPS);
	}
}

/* ---- naive vs BLAS ------------------------------------------------------- */

static void
test_linear_naive_vs_blas(void **state)
{
	struct rng r;
	int B = 37, C = 53, O = 29;
	float *inp = malloc(B * C * 4), *w = malloc(O * C * 4),
	    *bias = malloc(O * 4), *o1 = malloc(B * O * 4),
	    *o2 = malloc(B * O * 4), *dout = malloc(B * O * 4);
	float *di1 = calloc(B * C, 4), *di2 = calloc(B * C, 4),
	    *dw1 = calloc(O * C, 4), *dw2 = calloc(O * C, 4),
	    *db1 = calloc(O, 4), *db2 = calloc(O, 4);

	rng_seed(&r, 7);
	randf(inp, B * C, 1, &r);
	randf(w, O * C, 1, &r);
	randf(bias, O, 1, &r);
	randf(dout, B * O, 1, &r);
	/* non-zero start: backward must accumulate */
	for (int i = 0; i < O; i++)
		db1[i] = db2[i] = 0.5f;
	linear_forward_naive(o1, inp, w, bias, B, C, O);
	linear_forward(o2, inp, w, bias, B, C, O);
	for (int i = 0; i < B * O; i++)
		assert_true(fabsf(o1[i] - o2[i]) <= 1e-4f * (1 + fabsf(o1[i])));
	linear_forward_naive(o1, inp, w, NULL, B, C, O);
	linear_forward(o2, inp, w, NULL, B, C, O);
	for (int i = 0; i < B * O; i++)
		assert_true(fabsf(o1[i] - o2[i]) <= 1e-4f * (1 + fabsf(o1[i])));
	for (int rep = 0; rep < 2; rep++) {
		linear_backward_naive(di1, dw1, db1, dout, inp, w, B, C, O);
		linear_backward(di2, dw2, db2, dout, inp, w, B, C, O);
	}
	for (int i = 0; i < B * C; i++)
		assert_true(fabsf(di1[i] - di2[i]) <= 1e-4f *
		    (1 + fabsf(di1[i])));
	for (int i = 0; i < O * C; i++)
		assert_true(fabsf(dw1[i] - dw2[i]) <= 1e-4f *
		    (1 + fabsf(dw1[i])));
	for (int i = 0; i < O; i++)
		assert_true(fabsf(db1[i] - db2[i]) <= 1e-4f *
		    (1 + fabsf(db1[i])));
	/* NULL gradients are skipped */
	linear_backward(NULL, NULL, NULL, dout, inp, w, B, C, O);
	free(inp); free(w); free(bias); free(o1); free(o2); free(dout);
	free(di1); free(di2); free(dw1); free(dw2); free(db1); free(db2);
}

/* ---- gemm ------------------------------------------------------------------ */

/*
 * gemm_f32 against a double loop, over the shapes of every path: the
 * three transposition cases with batches around the kernels' register
 * blocks (6 rows, 3 x 4 dots) and GEMM_SMALL, columns around 8 and 16
 * lanes, K around 8 lanes and DOT_MIN_K, padded leading dimensions, beta
 * 0 (C starts as NaN: it must not be read) and 1. A canary after C
 * catches a write past the last row.
 */
static int
gemm_case(int ta, int tb, int M, int N, int K, float beta, struct rng *r)
{
	int lda = (ta ? M : K) + 3, ldb = (tb ? K : N) + 2, ldc = N + 5;
	size_t na = (size_t)(ta ? K : M) * lda, nb = (size_t)(tb ? N : K) * ldb;
	size_t nc = (size_t)M * ldc;
	float *A = malloc(na * 4), *B = malloc(nb * 4);
	float *C = malloc((nc + 8) * 4);
	double *want = malloc(nc * sizeof(double));
	double *tol = malloc(nc * sizeof(double));
	int bad = 0;

	randf(A, na, 1, r);
	randf(B, nb, 1, r);
	randf(C, nc + 8, 1, r);
	for (int i = 0; i < 8; i++)
		C[nc + i] = 12345.0f;
	for (int i = 0; i < M; i++)
		for (int j = 0; j < N; j++) {
			double s = 0, mag = 0;
			float *c = C + (size_t)i * ldc + j;
			for (int k = 0; k < K; k++) {
				double a = ta ? A[(size_t)k * lda + i] :
				    A[(size_t)i * lda + k];
				double b = tb ? B[(size_t)j * ldb + k] :
				    B[(size_t)k * ldb + j];
				s += a * b;
				mag += fabs(a * b);
			}
			if (beta == 0.0f)
				*c = NAN;
			else {
				s += *c;
				mag += fabs(*c);
			}
			want[(size_t)i * ldc + j] = s;
			/* float rounding of K + 1 terms, in any order */
			tol[(size_t)i * ldc + j] = 1e-6 * (K + 2) * mag + 1e-7;
		}
	gemm_f32(ta, tb, M, N, K, A, lda, B, ldb, beta, C, ldc);
	for (int i = 0; i < M; i++)
		for (int j = 0; j < N; j++) {
			double w = want[(size_t)i * ldc + j];
			double got = C[(size_t)i * ldc + j];
			if (!(fabs(got - w) <= tol[(size_t)i * ldc + j])) {
				if (bad++ < 3)
					printf("  gemm %d%d M%d N%d K%d beta %g "
					    "[%d,%d]: %.7g want %.7g\n", ta, tb,
					    M, N, K, beta, i, j, got, w);
			}
		}
	for (int i = 0; i < 8; i++)
		if (C[nc + i] != 12345.0f)
			bad++;
	free(A);
	free(B);
	free(C);
	free(want);
	free(tol);
	return bad;
}

static void
test_gemm_shapes(void **state)
{
	static const int Ms[] = { 1, 2, 3, 4, 5, 6, 7, 8, 9, 11, 13, 31, 32,
	    33 };
	static const int Ns[] = { 1, 2, 3, 4, 5, 7, 8, 9, 15, 16, 17, 31, 64,
	    133 };
	static const int Ks[] = { 1, 2, 7, 8, 9, 16, 17, 31, 32, 33, 64,
	    133 };
	static const int T[][2] = { { 0, 1 }, { 0, 0 }, { 1, 0 }, { 1, 1 } };
	size_t nm = sizeof(Ms) / sizeof(Ms[0]), nn = sizeof(Ns) / sizeof(Ns[0]);
	size_t nk = sizeof(Ks) / sizeof(Ks[0]);
	struct rng r;
	int bad = 0, small = 0, cases = 0;

	(void)state;
	rng_seed(&r, 11);
	for (size_t t = 0; t < 4; t++)
		for (size_t x = 0; x < nm * nn * nk * 2; x++) {
			int ta = T[t][0], tb = T[t][1], beta = (int)(x % 2);
			int m = Ms[x / 2 % nm], n = Ns[x / 2 / nm % nn];
			int k = Ks[x / 2 / nm / nn];
			if (ta && !tb) {	/* TN's batch is K */
				int bt = m;
				m = n;
				n = k;
				k = bt;
			}
			small += gemm_small_path(ta, tb, m, n, k, beta);
			bad += gemm_case(ta, tb, m, n, k, beta, &r);
			cases++;
		}
	printf("  gemm: %d cases, %d on the in-place kernels, %d bad\n",
	    cases, small, bad);
	assert_int_equal(bad, 0);
	/* beta other than 0 or 1, and K = 0, go through the fallback */
	assert_false(gemm_small_path(0, 0, 4, 4, 4, 0.5f));
	assert_false(gemm_small_path(0, 0, 4, 4, 0, 1.0f));
	{
		float C[4] = { NAN, NAN, NAN, NAN }, A[1] = { 0 }, B[1] = { 0 };
		gemm_f32(0, 0, 2, 2, 0, A, 1, B, 2, 0.0f, C, 2);
		for (int i = 0; i < 4; i++)
			assert_true(C[i] == 0.0f);
	}
}

/* ---- embedding ------------------------------------------------------------ */

struct emb_ctx {
	double	*emb;		/* (V,D) */
	const uint32_t *ids, *off;
	const double *r;	/* (B,D) */
	int	 B, D, bag;
};

static double
emb_loss(void *p)
{
	struct emb_ctx *c = p;
	double L = 0;

	for (int b = 0; b < c->B; b++) {
		uint32_t lo = c->bag ? c->off[b] : (uint32_t)b;
		uint32_t hi = c->bag ? c->off[b + 1] : (uint32_t)b + 1;
		for (int i = 0; i < c->D; i++) {
			double s = 0;
			for (uint32_t j = lo; j < hi; j++)
				s += c->emb[c->ids[j] * c->D + i];
			if (hi > lo)
				s /= (hi - lo);
			L += s * c->r[b * c->D + i];
		}
	}
	return L;
}

static void
test_embed_grad(void **state)
{
	enum { V = 11, D = 5, B = 6, LD = 9 };
	/* bags: sizes 3, 0 (empty), 1, 2 (repeated id), 4, 1 */
	uint32_t ids[] = { 1, 4, 7, 2, 3, 3, 0, 5, 9, 10, 6 };
	uint32_t off[B + 1] = { 0, 3, 3, 4, 6, 10, 11 };
	uint32_t one[B] = { 3, 3, 0, 10, 5, 1 };
	float emb[V * D], out[B * LD], dout[B * LD], demb[V * D];
	double r[B * D], num[V * D];
	struct rng rg;

	rng_seed(&rg, 11);
	randf(emb, V * D, 1, &rg);
	for (int b = 0; b < B; b++)
		for (int i = 0; i < D; i++) {
			r[b * D + i] = 2 * rng_unif(&rg) - 1;
			dout[b * LD + i] = (float)r[b * D + i];
		}
	for (int bag = 0; bag < 2; bag++) {
		struct emb_ctx c = { to_double(emb, V * D),
		    bag ? ids : one, off, r, B, D, bag };
		/* forward agrees with the reference (loss value) */
		if (bag)
			embed_bag_forward(out, ids, off, emb, B, D, LD);
		else
			embed_forward(out, one, emb, B, D, LD);
		double L = 0;
		for (int b = 0; b < B; b++)
			for (int i = 0; i < D; i++)
				L += out[b * LD + i] * r[b * D + i];
		assert_true(fabs(L - emb_loss(&c)) < 1e-5);
		if (bag)	/* empty bag -> zero vector */
			for (int i = 0; i < D; i++)
				assert_true(out[1 * LD + i] == 0.0f);
		memset(demb, 0, sizeof(demb));
		if (bag)
			embed_bag_backward(demb, dout, ids, off, B, D, LD);
		else
			embed_backward(demb, dout, one, B, D, LD);
		numgrad(c.emb, V * D, num, emb_loss, &c);
		assert_int_equal(check_tensor(bag ? "bag demb" : "emb demb",
		    demb, num, V * D), 0);
		free(c.emb);
	}
}

/*
 * adam_update's vector paths (AVX where the CPU has it, SSE) give the bits
 * of its scalar loop: n = 45 runs all three, n = 1 only the scalar one.
 */
static void
test_adam_paths(void **state)
{
	enum { N = 45 };
	float w[N], g[N], m[N], v[N], w1[N], m1[N], v1[N];

	(void)state;
	for (int i = 0; i < N; i++) {
		w[i] = w1[i] = 0.1f * (float)(i - 20);
		g[i] = 0.37f * (float)((i * 7) % 11) - 1.9f;
		m[i] = m1[i] = 0.01f * (float)(i % 5);
		v[i] = v1[i] = 0.001f * (float)(i % 3);
	}
	for (long t = 1; t <= 3; t++) {
		adam_update(w, g, m, v, N, 0.01f, 0.9f, 0.999f, 1e-8f, 0.1f,
		    t);
		for (int i = 0; i < N; i++)
			adam_update(w1 + i, g + i, m1 + i, v1 + i, 1, 0.01f,
			    0.9f, 0.999f, 1e-8f, 0.1f, t);
	}
	assert_memory_equal(w, w1, sizeof(w));
	assert_memory_equal(m, m1, sizeof(m));
	assert_memory_equal(v, v1, sizeof(v));
}

/*
 * sgd_update's vector paths give the bits of its scalar loop (n = 45 runs
 * AVX, SSE and the tail; n = 1 the scalar loop alone), which is the
 * update written out, with and without weight decay.
 */
static void
test_sgd_paths(void **state)
{
	enum { N = 45 };
	float w[N], g[N], w1[N], w2[N];
	const float wds[2] = { 0.0f, 0.1f };

	(void)state;
	for (int k = 0; k < 2; k++) {
		float lr = 0.03f, wd = wds[k];
		for (int i = 0; i < N; i++) {
			w[i] = w1[i] = w2[i] = 0.1f * (float)(i - 20);
			g[i] = 0.37f * (float)((i * 7) % 11) - 1.9f;
		}
		for (int t = 0; t < 3; t++) {
			sgd_update(w, g, N, lr, wd);
			for (int i = 0; i < N; i++) {
				sgd_update(w1 + i, g + i, 1, lr, wd);
				volatile float d = wd == 0.0f ? g[i] :
				    g[i] + wd * w2[i];
				volatile float s = lr * d;
				w2[i] = w2[i] - s;
			}
		}
		assert_memory_equal(w, w1, sizeof(w));
		assert_memory_equal(w, w2, sizeof(w));
	}
}

/*
 * param_step's compact Adam moments for sparse tensors (a row gets its
 * moments when first stepped) give exactly the table-sized lazy Adam of
 * adam_rows, over steps that touch different rows, and param_copy_adam
 * carries them: a copy stepped the same way stays identical.
 */
static void
test_param_lazy_adam(void **state)
{
	enum { V = 70, D = 5, N = 7 };	/* V > 64: the moments grow twice */
	struct param_tensor t[2], t2[2];
	struct kern_rows rows[2] = { { 0 } }, rows2[2] = { { 0 } };
	struct param_table p, p2;
	struct param_opt o = { PARAM_OPT_ADAM, 0.01f, 0.9f, 0.999f, 1e-8f,
	    0.01f };
	float ref[V * D], rm[V * D] = { 0 }, rv[V * D] = { 0 };
	float dref[N], dm[N] = { 0 }, dv[N] = { 0 };
	size_t total = 0;
	int nt = 0, nt2 = 0;

	(void)state;
	param_add(t, &nt, &total, "emb", V, D, 2, 1, 0, -1);
	param_add(t, &nt, &total, "w", N, 1, 1, 0, 0, -1);
	total = 0;
	param_add(t2, &nt2, &total, "emb", V, D, 2, 1, 0, -1);
	param_add(t2, &nt2, &total, "w", N, 1, 1, 0, 0, -1);
	param_alloc(&p, t, nt, rows);
	param_alloc(&p2, t2, nt2, rows2);
	for (int i = 0; i < V * D; i++)
		ref[i] = t[0].data[i] = 0.01f * (float)(i % 17) - 0.05f;
	for (int i = 0; i < N; i++)
		dref[i] = t[1].data[i] = 0.1f * (float)i;
	for (int step = 1; step <= 6; step++) {
		uint32_t ids[V];
		int n = 0;
		/* steps 1-3 touch a few rows, 4 all of them, 5-6 a few again */
		for (uint32_t r = 0; r < V; r++)
			if (step == 4 || (r * 7 + (uint32_t)step * 3) % 11 == 0)
				ids[n++] = r;
		if (step == 5)	/* a copy of the state steps from here on */
			param_copy_adam(&p2, &p);
		for (int k = 0; k < n; k++)
			for (int i = 0; i < D; i++)
				t[0].grad[ids[k] * D + i] = 0.3f *
				    (float)((ids[k] + (uint32_t)i * 5 +
				    (uint32_t)step) % 13) - 1.7f;
		for (int i = 0; i < N; i++)
			t[1].grad[i] = 0.2f * (float)(i - step);
		kern_rows_add(&rows[0], ids, (size_t)n);
		if (step >= 5) {
			memcpy(p2.params, p.params, p.n_params * sizeof(float));
			memcpy(p2.grads, p.grads, p.n_params * sizeof(float));
			kern_rows_add(&rows2[0], ids, (size_t)n);
		}
		adam_rows(ref, t[0].grad, rm, rv, rows[0].list, rows[0].n, D,
		    o.lr, o.beta1, o.beta2, o.eps, o.wd, step);
		adam_update(dref, t[1].grad, dm, dv, N, o.lr, o.beta1,
		    o.beta2, o.eps, o.wd, step);
		assert_int_equal(param_step(&p, 1u, &o), 0);
		if (step >= 5) {
			assert_int_equal(param_step(&p2, 1u, &o), 0);
			assert_memory_equal(p2.params, p.params,
			    p.n_params * sizeof(float));
		}
		assert_memory_equal(t[0].data, ref, sizeof(ref));
		assert_memory_equal(t[1].data, dref, sizeof(dref));
		param_zero_grad(&p, 0);
		param_zero_grad(&p2, 0);
	}
	assert_int_equal(p.rm[0].n, V);
	param_free(&p);
	param_free(&p2);
}

static void
test_rows(void **state)
{
	enum { V = 10, D = 3 };
	uint8_t mark[V] = { 0 };
	uint32_t list[V];
	struct kern_rows rs = { mark, list, 0 };
	uint32_t ids[] = { 4, 2, 4, 9, 2 };
	float w[V * D], w0[V * D], g[V * D], m[V * D] = { 0 }, v[V * D] = { 0 };
	float w2[V * D], m2[V * D] = { 0 }, v2[V * D] = { 0 };

	kern_rows_add(&rs, ids, 5);
	assert_int_equal(rs.n, 3);
	assert_int_equal(list[0], 4);
	assert_int_equal(list[1], 2);
	assert_int_equal(list[2], 9);
	for (int i = 0; i < V * D; i++) {
		w[i] = w0[i] = w2[i] = (float)i;
		g[i] = 0.1f * (float)(i + 1);
	}
	sgd_rows(w, g, list, rs.n, D, 0.5f, 0.0f);
	for (int row = 0; row < V; row++)
		for (int i = 0; i < D; i++) {
			int k = row * D + i;
			int touched = row == 4 || row == 2 || row == 9;
			assert_true(w[k] == (touched ? w0[k] - 0.5f * g[k] :
			    w0[k]));
		}
	/* lazy Adam on rows == dense Adam restricted to those rows */
	memcpy(w, w0, sizeof(w));
	adam_rows(w, g, m, v, list, rs.n, D, 0.01f, 0.9f, 0.999f, 1e-8f, 0.1f,
	    3);
	adam_update(w2, g, m2, v2, V * D, 0.01f, 0.9f, 0.999f, 1e-8f, 0.1f, 3);
	for (int row = 0; row < V; row++)
		for (int i = 0; i < D; i++) {
			int k = row * D + i;
			int touched = row == 4 || row == 2 || row == 9;
			assert_true(w[k] == (touched ? w2[k] : w0[k]));
		}
	kern_rows_clear(&rs, g, D);
	assert_int_equal(rs.n, 0);
	for (int i = 0; i < V; i++)
		assert_int_equal(mark[i], 0);
	assert_true(g[4 * D] == 0.0f && g[2 * D + 1] == 0.0f &&
	    g[9 * D + 2] == 0.0f && g[0] != 0.0f);
}

/* ---- linear ---------------------------------------------------------------- */

struct lin_ctx {
	double	*inp, *w, *b, *r;
	int	 B, C, O;
};

static double
lin_loss(void *p)
{
	struct lin_ctx *c = p;
	double L = 0;

	for (int b = 0; b < c->B; b++)
		for (int o = 0; o < c->O; o++) {
			double s = c->b[o];
			for (int i = 0; i < c->C; i++)
				s += c->w[o * c->C + i] * c->inp[b * c->C + i];
			L += s * c->r[b * c->O + o];
		}
	return L;
}

static void
test_linear_grad(void **state)
{
	enum { B = 5, C = 7, O = 4 };
	float inp[B * C], w[O * C], bias[O], dout[B * O];
	double num[B * C];
	struct rng rg;

	rng_seed(&rg, 3);
	randf(inp, B * C, 1, &rg);
	randf(w, O * C, 1, &rg);
	randf(bias, O, 1, &rg);
	randf(dout, B * O, 1, &rg);
	for (int impl = 0; impl < 2; impl++) {
		struct lin_ctx c = { to_double(inp, B * C), to_double(w, O * C),
		    to_double(bias, O), to_double(dout, B * O), B, C, O };
		float di[B * C] = { 0 }, dw[O * C] = { 0 }, db[O] = { 0 };
		float out[B * O];
		(impl ? linear_forward : linear_forward_naive)(out, inp, w, bias,
		    B, C, O);
		double L = 0;
		for (int i = 0; i < B * O; i++)
			L += out[i] * c.r[i];
		assert_true(fabs(L - lin_loss(&c)) < 1e-4);
		(impl ? linear_backward : linear_backward_naive)(di, dw, db,
		    dout, inp, w, B, C, O);
		printf(" %s:\n", impl ? "blas" : "naive");
		numgrad(c.inp, B * C, num, lin_loss, &c);
		assert_int_equal(check_tensor("dinp", di, num, B * C), 0);
		numgrad(c.w, O * C, num, lin_loss, &c);
		assert_int_equal(check_tensor("dw", dw, num, O * C), 0);
		numgrad(c.b, O, num, lin_loss, &c);
		assert_int_equal(check_tensor("dbias", db, num, O), 0);
		free(c.inp); free(c.w); free(c.b); free(c.r);
	}
}

/* ---- relu ------------------------------------------------------------------- */

struct relu_ctx {
	double	*x, *r;
	int	 N;
};

static double
relu_loss(void *p)
{
	struct relu_ctx *c = p;
	double L = 0;

	for (int i = 0; i < c->N; i++)
		L += (c->x[i] > 0 ? c->x[i] : 0) * c->r[i];
	return L;
}

static void
test_relu_grad(void **state)
{
	enum { N = 40 };
	float x[N], out[N], dout[N], dx[N] = { 0 };
	double num[N];
	struct rng rg;

	rng_seed(&rg, 5);
	for (int i = 0; i < N; i++) {
		/* keep away from the kink, where FD is undefined */
		float a = (float)(0.1 + rng_unif(&rg));
		x[i] = (i % 2) ? a : -a;
	}
	randf(dout, N, 1, &rg);
	struct relu_ctx c = { to_double(x, N), to_double(dout, N), N };
	relu_forward(out, x, N);
	relu_backward(dx, dout, out, N);
	numgrad(c.x, N, num, relu_loss, &c);
	assert_int_equal(check_tensor("relu dx", dx, num, N), 0);
	free(c.x);
	free(c.r);
}

/* ---- BCE ----------------------------------------------------------------------- */

struct bce_ctx {
	double	*x;
	const float *y, *w, *off;
	int	 B;
};

/* Reference: textbook -[y log p + (1-y) log(1-p)], p = sigmoid(x+off). */
static double
bce_loss(void *p)
{
	struct bce_ctx *c = p;
	double L = 0;

	for (int b = 0; b < c->B; b++) {
		double z = c->x[b] + (c->off ? c->off[b] : 0);
		double pr = 1 / (1 + exp(-z));
		double y = c->y[b];
		double l = -(y * log(pr) + (1 - y) * log(1 - pr));
		L += l * (c->w ? c->w[b] : 1);
	}
	return L / c->B;
}

static void
test_bce_grad(void **state)
{
	enum { B = 9 };
	float x[B], y[B], w[B], off[B], dx[B];
	double num[B];
	struct rng rg;

	rng_seed(&rg, 9);
	randf(x, B, 4, &rg);
	for (int b = 0; b < B; b++) {
		y[b] = (b % 3 == 0) ? 1.0f : (b % 3 == 1) ? 0.0f :
		    (float)rng_unif(&rg);	/* soft labels */
		w[b] = (float)(0.2 + 2 * rng_unif(&rg));
		off[b] = (float)(2 * rng_unif(&rg) - 1);
	}
	for (int v = 0; v < 4; v++) {
		const float *wp = (v & 1) ? w : NULL;
		const float *op = (v & 2) ? off : NULL;
		struct bce_ctx c = { to_double(x, B), y, wp, op, B };
		float losses[B];
		double L = bce_logits_forward(losses, x, y, wp, op, B);
		double sum = 0;
		for (int b = 0; b < B; b++)
			sum += losses[b];
		assert_true(fabs(L - bce_loss(&c)) < 1e-9);
		assert_true(fabs(sum / B - L) < 1e-6);
		memset(dx, 0, sizeof(dx));
		bce_logits_backward(dx, x, y, wp, op, B);
		printf(" weights %d offsets %d:\n", v & 1, (v >> 1) & 1);
		numgrad(c.x, B, num, bce_loss, &c);
		assert_int_equal(check_tensor("bce dx", dx, num, B), 0);
		free(c.x);
	}
	/* stability: huge logits give finite loss and gradient */
	float big[2] = { 1e4f, -1e4f }, yy[2] = { 0, 1 }, d2[2] = { 0, 0 };
	double L = bce_logits_forward(NULL, big, yy, NULL, NULL, 2);
	bce_logits_backward(d2, big, yy, NULL, NULL, 2);
	assert_true(isfinite(L) && fabs(L - 1e4) < 1);
	assert_true(fabsf(d2[0] - 0.5f) < 1e-6f && fabsf(d2[1] + 0.5f) < 1e-6f);
}

/* ---- MetaPatch ------------------------------------------------------------------ */

struct mp_ctx {
	double	*x, *U, *V, *m, *r;
	const uint32_t *mid;
	int	 B, H, R;
};

static double
mp_loss(void *p)
{
	struct mp_ctx *c = p;
	double L = 0;

	for (int b = 0; b < c->B; b++) {
		const double *x = c->x + b * c->H;
		const double *m = c->m + c->mid[b] * c->R;
		for (int h = 0; h < c->H; h++) {
			double o = x[h];
			for (int r = 0; r < c->R; r++) {
				double t = 0;
				for (int k = 0; k < c->H; k++)
					t += c->V[r * c->H + k] * x[k];
				o += c->U[h * c->R + r] * m[r] * t;
			}
			L += o * c->r[b * c->H + h];
		}
	}
	return L;
}

static void
test_metapatch_grad(void **state)
{
	enum { B = 4, H = 6, R = 3, M = 3 };
	uint32_t mid[B] = { 2, 0, 2, 1 };
	float x[B * H], U[H * R], V[R * H], m[M * R], dout[B * H];
	float out[B * H], t[B * R];
	float dx[B * H] = { 0 }, dU[H * R] = { 0 }, dV[R * H] = { 0 },
	    dm[M * R] = { 0 };
	double num[B * H];
	struct rng rg;

	rng_seed(&rg, 13);
	randf(x, B * H, 1, &rg);
	randf(U, H * R, 1, &rg);
	randf(V, R * H, 1, &rg);
	randf(m, M * R, 1, &rg);
	randf(dout, B * H, 1, &rg);
	struct mp_ctx c = { to_double(x, B * H), to_double(U, H * R),
	    to_double(V, R * H), to_double(m, M * R), to_double(dout, B * H),
	    mid, B, H, R };
	for (int impl = 0; impl < 2; impl++) {
		memset(dx, 0, sizeof(dx));
		memset(dU, 0, sizeof(dU));
		memset(dV, 0, sizeof(dV));
		memset(dm, 0, sizeof(dm));
		(impl ? metapatch_forward : metapatch_forward_naive)(out, t, x,
		    U, V, m, mid, B, H, R);
		double L = 0;
		for (int i = 0; i < B * H; i++)
			L += out[i] * c.r[i];
		assert_true(fabs(L - mp_loss(&c)) < 1e-4);
		(impl ? metapatch_backward : metapatch_backward_naive)(dx, dU,
		    dV, dm, dout, x, t, U, V, m, mid, B, H, R);
		printf(" %s:\n", impl ? "blas" : "naive");
		numgrad(c.x, B * H, num, mp_loss, &c);
		assert_int_equal(check_tensor("mp dinp", dx, num, B * H), 0);
		numgrad(c.U, H * R, num, mp_loss, &c);
		assert_int_equal(check_tensor("mp dU", dU, num, H * R), 0);
		numgrad(c.V, R * H, num, mp_loss, &c);
		assert_int_equal(check_tensor("mp dV", dV, num, R * H), 0);
		numgrad(c.m, M * R, num, mp_loss, &c);
		assert_int_equal(check_tensor("mp dm", dm, num, M * R), 0);
	}

	/* m = 0: the patch is the identity */
	float z[M * R] = { 0 };
	metapatch_forward(out, t, x, U, V, z, mid, B, H, R);
	assert_memory_equal(out, x, sizeof(x));
	free(c.x); free(c.U); free(c.V); free(c.m); free(c.r);
}

static void
test_metapatch_naive_vs_blas(void **state)
{
	/* B crosses the 64-row block boundary */
	enum { B = 150, H = 33, R = 7, M = 11 };
	struct rng rg;
	uint32_t mid[B];
	float *x = malloc(B * H * 4), *U = malloc(H * R * 4),
	    *V = malloc(R * H * 4), *m = malloc(M * R * 4),
	    *d = malloc(B * H * 4);
	float *o[2], *t[2], *dx[2], *dU[2], *dV[2], *dm[2];

	rng_seed(&rg, 23);
	randf(x, B * H, 1, &rg);
	randf(U, H * R, 1, &rg);
	randf(V, R * H, 1, &rg);
	randf(m, M * R, 1, &rg);
	randf(d, B * H, 1, &rg);
	for (int b = 0; b < B; b++)
		mid[b] = rng_below(&rg, M);
	for (int i = 0; i < 2; i++) {
		o[i] = malloc(B * H * 4);
		t[i] = malloc(B * R * 4);
		dx[i] = calloc(B * H, 4);
		dU[i] = calloc(H * R, 4);
		dV[i] = calloc(R * H, 4);
		dm[i] = calloc(M * R, 4);
		(i ? metapatch_forward : metapatch_forward_naive)(o[i], t[i], x,
		    U, V, m, mid, B, H, R);
		(i ? metapatch_backward : metapatch_backward_naive)(dx[i],
		    dU[i], dV[i], dm[i], d, x, t[i], U, V, m, mid, B, H, R);
	}
#define CLOSE(a, b, n) for (int k = 0; k < (n); k++) \
	assert_true(fabsf((a)[k] - (b)[k]) <= 1e-4f * (1 + fabsf((a)[k])))
	CLOSE(o[0], o[1], B * H);
	CLOSE(t[0], t[1], B * R);
	CLOSE(dx[0], dx[1], B * H);
	CLOSE(dU[0], dU[1], H * R);
	CLOSE(dV[0], dV[1], R * H);
	CLOSE(dm[0], dm[1], M * R);
#undef CLOSE
	for (int i = 0; i < 2; i++) {
		free(o[i]); free(t[i]); free(dx[i]); free(dU[i]); free(dV[i]);
		free(dm[i]);
	}
	free(x); free(U); free(V); free(m); free(d);
}

/* ---- tiny end-to-end: logistic regression falls on separable data ---------- */

static void
test_loss_falls(void **state)
{
	enum { B = 64, C = 4 };
	float x[B * C], y[B], w[C] = { 0 }, b[1] = { 0 }, logit[B];
	float dl[B], dw[C], db[1];
	struct rng rg;
	double first = 0, last = 0;

	rng_seed(&rg, 17);
	for (int i = 0; i < B; i++) {
		randf(x + i * C, C, 1, &rg);
		y[i] = x[i * C] + 0.5f * x[i * C + 1] > 0 ? 1.0f : 0.0f;
	}
	for (int it = 0; it < 300; it++) {
		linear_forward(logit, x, w, b, B, C, 1);
		double L = bce_logits_forward(NULL, logit, y, NULL, NULL, B);
		if (it == 0)
			first = L;
		last = L;
		memset(dl, 0, sizeof(dl));
		memset(dw, 0, sizeof(dw));
		db[0] = 0;
		bce_logits_backward(dl, logit, y, NULL, NULL, B);
		linear_backward(NULL, dw, db, dl, x, w, B, C, 1);
		sgd_update(w, dw, C, 1.0f, 0.0f);
		sgd_update(b, db, 1, 1.0f, 0.0f);
	}
	printf("  loss %.4f -> %.4f\n", first, last);
	assert_true(first > 0.69 && last < 0.2);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_linear_naive_vs_blas),
		cmocka_unit_test(test_gemm_shapes),
		cmocka_unit_test(test_embed_grad),
		cmocka_unit_test(test_rows),
		cmocka_unit_test(test_param_lazy_adam),
		cmocka_unit_test(test_adam_paths),
		cmocka_unit_test(test_sgd_paths),
		cmocka_unit_test(test_linear_grad),
		cmocka_unit_test(test_relu_grad),
		cmocka_unit_test(test_bce_grad),
		cmocka_unit_test(test_metapatch_grad),
		cmocka_unit_test(test_metapatch_naive_vs_blas),
		cmocka_unit_test(test_loss_falls),
	};

	openblas_set_num_threads(1);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
