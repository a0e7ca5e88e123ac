/*
 * kern: numeric kernels for the CTR model (see kern.h for the contract).
 *
 * DESIGN. Written after llm.c: each layer is a forward/backward pair over
 * flat float32 arrays, backward passes accumulate into gradients the caller
 * zeroed, and nothing here allocates or keeps state. The linear layer has a
 * naive reference next to the gemm_f32 version with the same signature;
 * tests/unit/test_kern.c checks that they agree and gradient-checks every
 * layer by finite differences in double.
 *
 * Dimension legend: B batch, D embedding dim, V table rows, N ids in a bag
 * batch, C linear inputs, O linear outputs, H hidden width, R MetaPatch
 * rank, M rows of the MetaPatch m table (MetaPatch itself: metapatch.c).
 *
 * Threads: any; no shared state.
 */
#include <math.h>
#include <stdint.h>
#include <string.h>

#ifdef __SSE2__
#include <emmintrin.h>
#endif
#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#define KERN_AVX	1	/* AVX paths, chosen at run time */
#endif

#include "shared/ml/gemm.h"
#include "shared/ml/kern.h"

/* ---- embedding lookup ---------------------------------------------------- */

void
embed_forward(float *out, const uint32_t *ids, const float *emb, int B,
    int D, int ldo)
{
	for (int b = 0; b < B; b++)
		memcpy(out + (size_t)b * ldo, emb + (size_t)ids[b] * D,
		    (size_t)D * sizeof(float));
}

void
embed_backward(float *demb, const float *dout, const uint32_t *ids, int B,
    int D, int ldo)
{
	for (int b = 0; b < B; b++) {
		const float *d = dout + (size_t)b * ldo;
		float *g = demb + (size_t)ids[b] * D;
		for (int i = 0; i < D; i++)
			g[i] += d[i];
	}
}

/*
 * The bags read rows of a table far larger than the cache in an order the
 * data give (a sample's history), so each row is asked for KERN_PF rows
 * ahead of its use; and on x86-64 a row of D % 4 == 0 floats is summed in
 * SSE registers, in the same order per element as the scalar loop (the
 * results are identical).
 */
#define KERN_PF	8

void
embed_bag_forward(float *out, const uint32_t *ids, const uint32_t *off,
    const float *emb, int B, int D, int ldo)
{
	uint32_t end = B > 0 ? off[B] : 0;

	for (int b = 0; b < B; b++) {
		float *o = out + (size_t)b * ldo;
		uint32_t n = off[b + 1] - off[b];
		memset(o, 0, (size_t)D * sizeof(float));
		if (n == 0)
			continue;
		for (uint32_t j = off[b]; j < off[b + 1]; j++) {
			const float *e = emb + (size_t)ids[j] * D;
			int i = 0;
			if (j + KERN_PF < end)
				__builtin_prefetch(emb + (size_t)ids[j +
				    KERN_PF] * D);
#ifdef __SSE2__
			for (; i + 4 <= D; i += 4)
				_mm_storeu_ps(o + i, _mm_add_ps(_mm_loadu_ps(
				    o + i), _mm_loadu_ps(e + i)));
#endif
			for (; i < D; i++)
				o[i] += e[i];
		}
		float inv = 1.0f / (float)n;
		for (int i = 0; i < D; i++)
			o[i] *= inv;
	}
}

void
embed_bag_backward(float *demb, const float *dout, const uint32_t *ids,
    const uint32_t *off, int B, int D, int ldo)
{
	uint32_t end = B > 0 ? off[B] : 0;

	for (int b = 0; b < B; b++) {
		const float *d = dout + (size_t)b * ldo;
		uint32_t n = off[b + 1] - off[b];
		if (n == 0)
			continue;
		float inv = 1.0f / (float)n;
		for (uint32_t j = off[b]; j < off[b + 1]; j++) {
			float *g = demb + (size_t)ids[j] * D;
			int i = 0;
			if (j + KERN_PF < end)
				__builtin_prefetch(demb + (size_t)ids[j +
				    KERN_PF] * D, 1);
#ifdef __SSE2__
			const __m128 vinv = _mm_set1_ps(inv);
			for (; i + 4 <= D; i += 4)
				_mm_storeu_ps(g + i, _mm_add_ps(_mm_loadu_ps(
				    g + i), _mm_mul_ps(_mm_loadu_ps(d + i),
				    vinv)));
#endif
			for (; i < D; i++)
				g[i] += d[i] * inv;
		}
	}
}

void
kern_rows_add(struct kern_rows *r, const uint32_t *ids, size_t cnt)
{
	for (size_t i = 0; i < cnt; i++) {
		uint32_t id = ids[i];
		if (!r->mark[id]) {
			r->mark[id] = 1;
			r->list[r->n++] = id;
		}
	}
}

void
kern_rows_clear(struct kern_rows *r, float *g, int D)
{
	for (uint32_t i = 0; i < r->n; i++) {
		uint32_t id = r->list[i];
		r->mark[id] = 0;
		if (g != NULL)
			memset(g + (size_t)id * D, 0, (size_t)D * sizeof(float));
	}
	r->n = 0;
}

int
kern_finite(const float *x, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (!isfinite(x[i]))
			return 0;
	return 1;
}

/* ---- linear ---------------------------------------------------------------- */

void
linear_forward_naive(float *out, const float *inp, const float *w,
    const float *bias, int B, int C, int O)
{
	for (int b = 0; b < B; b++) {
		const float *x = inp + (size_t)b * C;
		float *o = out + (size_t)b * O;
		for (int j = 0; j < O; j++) {
			const float *wr = w + (size_t)j * C;
			float s = bias != NULL ? bias[j] : 0.0f;
			for (int i = 0; i < C; i++)
				s += wr[i] * x[i];
			o[j] = s;
		}
	}
}

void
linear_forward(float *out, const float *inp, const float *w,
    const float *bias, int B, int C, int O)
{
	/* Seed out with the bias, then out += inp W^T in one gemm_f32. */
	for (int b = 0; b < B; b++) {
		float *o = out + (size_t)b * O;
		if (bias != NULL)
			memcpy(o, bias, (size_t)O * sizeof(float));
		else
			memset(o, 0, (size_t)O * sizeof(float));
	}
	if (B == 0 || C == 0 || O == 0)
		return;
	gemm_f32(0, 1, B, O, C, inp, C, w, C, 1.0f, out, O);
}

void
linear_backward_naive(float *dinp, float *dw, float *dbias,
    const float *dout, const float *inp, const float *w, int B, int C, int O)
{
	for (int b = 0; b < B; b++) {
		const float *d = dout + (size_t)b * O;
		const float *x = inp + (size_t)b * C;
		float *dx = dinp != NULL ? dinp + (size_t)b * C : NULL;
		for (int j = 0; j < O; j++) {
			float dj = d[j];
			const float *wr = w + (size_t)j * C;
			if (dx != NULL)
				for (int i = 0; i < C; i++)
					dx[i] += wr[i] * dj;
			if (dw != NULL) {
				float *dwr = dw + (size_t)j * C;
				for (int i = 0; i < C; i++)
					dwr[i] += x[i] * dj;
			}
			if (dbias != NULL)
				dbias[j] += dj;
		}
	}
}

void
linear_backward(float *dinp, float *dw, float *dbias, const float *dout,
    const float *inp, const float *w, int B, int C, int O)
{
	if (B == 0 || C == 0 || O == 0)
		return;
	if (dinp != NULL)	/* dinp (B,C) += dout (B,O) W (O,C) */
		gemm_f32(0, 0, B, C, O, dout, O, w, C, 1.0f, dinp, C);
	if (dw != NULL)		/* dw (O,C) += dout^T (O,B) inp (B,C) */
		gemm_f32(1, 0, O, C, B, dout, O, inp, C, 1.0f, dw, C);
	if (dbias != NULL)
		for (int b = 0; b < B; b++) {
			const float *d = dout + (size_t)b * O;
			for (int j = 0; j < O; j++)
				dbias[j] += d[j];
		}
}

/* ---- relu ------------------------------------------------------------------ */

/*
 * SSE on x86-64 because -O2 does not vectorize these loops (aliasing);
 * max(x, 0) and the mask treat NaN and -0 exactly like the scalar tail.
 */
void
relu_forward(float *out, const float *inp, size_t N)
{
	size_t i = 0;
#ifdef __SSE2__
	const __m128 z = _mm_setzero_ps();
	for (; i + 4 <= N; i += 4)
		_mm_storeu_ps(out + i, _mm_max_ps(_mm_loadu_ps(inp + i), z));
#endif
	for (; i < N; i++)
		out[i] = inp[i] > 0.0f ? inp[i] : 0.0f;
}

void
relu_backward(float *dinp, const float *dout, const float *out, size_t N)
{
	size_t i = 0;
#ifdef __SSE2__
	const __m128 z = _mm_setzero_ps();
	for (; i + 4 <= N; i += 4) {
		__m128 mask = _mm_cmpgt_ps(_mm_loadu_ps(out + i), z);
		__m128 d = _mm_and_ps(mask, _mm_loadu_ps(dout + i));
		_mm_storeu_ps(dinp + i, _mm_add_ps(_mm_loadu_ps(dinp + i), d));
	}
#endif
	for (; i < N; i++)
		if (out[i] > 0.0f)
			dinp[i] += dout[i];
}

/* ---- BCE with logits -------------------------------------------------------- */

double
bce_logits_forward(float *losses, const float *x, const float *y,
    const float *w, const float *off, int B)
{
	double sum = 0.0;

	for (int b = 0; b < B; b++) {
		double z = (double)x[b] + (off != NULL ? (double)off[b] : 0.0);
		double l = bce_logit(z, (double)y[b]);
		if (w != NULL)
			l *= (double)w[b];
		if (losses != NULL)
			losses[b] = (float)l;
		sum += l;
	}
	return B > 0 ? sum / B : 0.0;
}

void
bce_logits_backward(float *dx, const float *x, const float *y,
    const float *w, const float *off, int B)
{
	if (B <= 0)
		return;
	double invb = 1.0 / B;
	for (int b = 0; b < B; b++) {
		double z = (double)x[b] + (off != NULL ? (double)off[b] : 0.0);
		/* sigmoid without overflow on either side */
		double p = z >= 0.0 ? 1.0 / (1.0 + exp(-z)) :
		    exp(z) / (1.0 + exp(z));
		double d = (p - (double)y[b]) * invb;
		if (w != NULL)
			d *= (double)w[b];
		dx[b] += (float)d;
	}
}

/* ---- optimizers ------------------------------------------------------------- */

#ifdef KERN_AVX
/* sgd_update's loops 8 wide (AVX): the same operations per element. */
__attribute__((target("avx"))) static size_t
sgd_core_avx(float *w, const float *g, size_t n, float lr, float wd)
{
	const __m256 vlr = _mm256_set1_ps(lr), vwd = _mm256_set1_ps(wd);
	size_t i = 0;

	if (wd == 0.0f)
		for (; i + 8 <= n; i += 8)
			_mm256_storeu_ps(w + i, _mm256_sub_ps(_mm256_loadu_ps(
			    w + i), _mm256_mul_ps(vlr, _mm256_loadu_ps(g + i))));
	else
		for (; i + 8 <= n; i += 8) {
			__m256 wi = _mm256_loadu_ps(w + i);
			__m256 gi = _mm256_add_ps(_mm256_loadu_ps(g + i),
			    _mm256_mul_ps(vwd, wi));
			_mm256_storeu_ps(w + i, _mm256_sub_ps(wi,
			    _mm256_mul_ps(vlr, gi)));
		}
	return i;
}
#endif

/*
 * Plain SGD over the dense tensors runs every step of a device's
 * fine-tune, and -O2 leaves the loop scalar (w and g may alias), so it
 * is vectorized by hand: the same float operations per element in the
 * same order (no FMA), so the same bits as the scalar tail.
 */
void
sgd_update(float *w, const float *g, size_t n, float lr, float wd)
{
	size_t i = 0;

#ifdef KERN_AVX
	if (n >= 8 && __builtin_cpu_supports("avx"))
		i = sgd_core_avx(w, g, n, lr, wd);
#endif
	if (wd == 0.0f) {
#ifdef __SSE2__
		const __m128 vlr = _mm_set1_ps(lr);
		for (; i + 4 <= n; i += 4)
			_mm_storeu_ps(w + i, _mm_sub_ps(_mm_loadu_ps(w + i),
			    _mm_mul_ps(vlr, _mm_loadu_ps(g + i))));
#endif
		for (; i < n; i++)
			w[i] -= lr * g[i];
		return;
	}
	for (; i < n; i++)
		w[i] -= lr * (g[i] + wd * w[i]);
}

/*
 * One Adam step over n floats with the bias corrections precomputed.
 * Without -fno-math-errno the compiler will not vectorize sqrtf, and Adam
 * over the dense MLP is the largest cost of a device fine-tune, so on x86-64
 * the loop uses SSE (baseline there). Same operations in the same order in
 * float32 (no FMA), so both paths give bit-identical results.
 * torch's mhat / (sqrt(v) / sbc2 + eps) is computed as
 * (step sbc2) m / (sqrt(v) + eps sbc2): the same value up to float
 * rounding with one division instead of two (division and square root
 * bound this loop).
 */
#ifdef KERN_AVX
/*
 * The loop below 8 wide, for CPUs with AVX (the build's baseline is SSE2):
 * the same operations in the same order, so the same bits. Returns how
 * many floats it did.
 */
__attribute__((target("avx"))) static size_t
adam_core_avx(float *w, const float *g, float *m, float *v, size_t n,
    float lw, float st2, float b1, float b2, float eps2)
{
	const __m256 vb1 = _mm256_set1_ps(b1), vb2 = _mm256_set1_ps(b2);
	const __m256 vc1 = _mm256_set1_ps(1.0f - b1);
	const __m256 vc2 = _mm256_set1_ps(1.0f - b2);
	const __m256 vstep = _mm256_set1_ps(st2), veps = _mm256_set1_ps(eps2);
	const __m256 vlw = _mm256_set1_ps(lw);
	size_t i = 0;

	for (; i + 8 <= n; i += 8) {
		__m256 gi = _mm256_loadu_ps(g + i);
		__m256 mi = _mm256_add_ps(_mm256_mul_ps(vb1,
		    _mm256_loadu_ps(m + i)), _mm256_mul_ps(vc1, gi));
		__m256 vi = _mm256_add_ps(_mm256_mul_ps(vb2,
		    _mm256_loadu_ps(v + i)), _mm256_mul_ps(_mm256_mul_ps(vc2,
		    gi), gi));
		__m256 den = _mm256_add_ps(_mm256_sqrt_ps(vi), veps);
		__m256 upd = _mm256_div_ps(_mm256_mul_ps(vstep, mi), den);
		__m256 wi = _mm256_loadu_ps(w + i);
		_mm256_storeu_ps(m + i, mi);
		_mm256_storeu_ps(v + i, vi);
		_mm256_storeu_ps(w + i, _mm256_sub_ps(wi, _mm256_add_ps(upd,
		    _mm256_mul_ps(vlw, wi))));
	}
	return i;
}
#endif

static void
adam_core(float *w, const float *g, float *m, float *v, size_t n, float lr,
    float step, float sbc2, float b1, float b2, float eps, float wd)
{
	const float st2 = step * sbc2, eps2 = eps * sbc2;
	size_t i = 0;
#ifdef KERN_AVX
	if (n >= 8 && __builtin_cpu_supports("avx"))
		i = adam_core_avx(w, g, m, v, n, lr * wd, st2, b1, b2, eps2);
#endif
#ifdef __SSE2__
	const __m128 vb1 = _mm_set1_ps(b1), vb2 = _mm_set1_ps(b2);
	const __m128 vc1 = _mm_set1_ps(1.0f - b1), vc2 = _mm_set1_ps(1.0f - b2);
	const __m128 vstep = _mm_set1_ps(st2), veps = _mm_set1_ps(eps2);
	const __m128 vlw = _mm_set1_ps(lr * wd);

	for (; i + 4 <= n; i += 4) {
		__m128 gi = _mm_loadu_ps(g + i);
		__m128 mi = _mm_add_ps(_mm_mul_ps(vb1, _mm_loadu_ps(m + i)),
		    _mm_mul_ps(vc1, gi));
		__m128 vi = _mm_add_ps(_mm_mul_ps(vb2, _mm_loadu_ps(v + i)),
		    _mm_mul_ps(_mm_mul_ps(vc2, gi), gi));
		__m128 den = _mm_add_ps(_mm_sqrt_ps(vi), veps);
		__m128 upd = _mm_div_ps(_mm_mul_ps(vstep, mi), den);
		__m128 wi = _mm_loadu_ps(w + i);
		_mm_storeu_ps(m + i, mi);
		_mm_storeu_ps(v + i, vi);
		_mm_storeu_ps(w + i, _mm_sub_ps(wi, _mm_add_ps(upd,
		    _mm_mul_ps(vlw, wi))));
	}
#endif
	for (; i < n; i++) {
		float gi = g[i];
		m[i] = b1 * m[i] + (1.0f - b1) * gi;
		v[i] = b2 * v[i] + (1.0f - b2) * gi * gi;
		float upd = st2 * m[i] / (sqrtf(v[i]) + eps2);
		w[i] -= upd + lr * wd * w[i];
	}
}

/* Bias corrections folded into the step size, as in torch.optim.Adam. */
static void
adam_scale(float lr, float b1, float b2, long t, float *step, float *sbc2)
{
	double bc1 = 1.0 - pow((double)b1, (double)t);
	double bc2 = 1.0 - pow((double)b2, (double)t);

	*step = (float)(lr / bc1);
	*sbc2 = (float)sqrt(bc2);
}

void
adam_update(float *w, const float *g, float *m, float *v, size_t n,
    float lr, float b1, float b2, float eps, float wd, long t)
{
	float step, sbc2;

	adam_scale(lr, b1, b2, t, &step, &sbc2);
	adam_core(w, g, m, v, n, lr, step, sbc2, b1, b2, eps, wd);
}

void
sgd_rows(float *w, const float *g, const uint32_t *rows, uint32_t nr, int D,
    float lr, float wd)
{
	for (uint32_t i = 0; i < nr; i++) {
		size_t o = (size_t)rows[i] * D;
		sgd_update(w + o, g + o, (size_t)D, lr, wd);
	}
}

void
adam_rows(float *w, const float *g, float *m, float *v, const uint32_t *rows,
    uint32_t nr, int D, float lr, float b1, float b2, float eps, float wd,
    long t)
{
	float step, sbc2;

	adam_scale(lr, b1, b2, t, &step, &sbc2);
	for (uint32_t i = 0; i < nr; i++) {
		size_t o = (size_t)rows[i] * D;
		adam_core(w + o, g + o, m + o, v + o, (size_t)D, lr, step,
		    sbc2, b1, b2, eps, wd);
	}
}

void
adam_rows_slot(float *w, const float *g, float *m, float *v,
    const uint32_t *rows, uint32_t nr, const uint32_t *slot, int D, float lr,
    float b1, float b2, float eps, float wd, long t)
{
	float step, sbc2;

	adam_scale(lr, b1, b2, t, &step, &sbc2);
	for (uint32_t i = 0; i < nr; i++) {
		size_t o = (size_t)rows[i] * D;
		size_t mo = (size_t)(slot[rows[i]] - 1) * D;
		adam_core(w + o, g + o, m + mo, v + mo, (size_t)D, lr, step,
		    sbc2, b1, b2, eps, wd);
	}
}
