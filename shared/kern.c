/*
 * kern: numeric kernels for the CTR model (see kern.h for the contract).
 *
 * DESIGN. Written after llm.c: each layer is a forward/backward pair over
 * flat float32 arrays, backward passes accumulate into gradients the caller
 * zeroed, and nothing here allocates or keeps state. The linear layer has a
 * naive reference next to the cblas_sgemm version with the same signature;
 * tests/unit/test_kern.c checks that they agree and gradient-checks every
 * layer by finite differences in double.
 *
 * Dimension legend: B batch, D embedding dim, V table rows, N ids in a bag
 * batch, C linear inputs, O linear outputs, H hidden width, R MetaPatch
 * rank, M rows of the MetaPatch m table.
 *
 * Threads: any; no shared state.
 */
#include <math.h>
#include <stdint.h>
#include <string.h>

#include <cblas.h>

#include "shared/kern.h"

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

void
embed_bag_forward(float *out, const uint32_t *ids, const uint32_t *off,
    const float *emb, int B, int D, int ldo)
{
	for (int b = 0; b < B; b++) {
		float *o = out + (size_t)b * ldo;
		uint32_t n = off[b + 1] - off[b];
		memset(o, 0, (size_t)D * sizeof(float));
		if (n == 0)
			continue;
		for (uint32_t j = off[b]; j < off[b + 1]; j++) {
			const float *e = emb + (size_t)ids[j] * D;
			for (int i = 0; i < D; i++)
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
	for (int b = 0; b < B; b++) {
		const float *d = dout + (size_t)b * ldo;
		uint32_t n = off[b + 1] - off[b];
		if (n == 0)
			continue;
		float inv = 1.0f / (float)n;
		for (uint32_t j = off[b]; j < off[b + 1]; j++) {
			float *g = demb + (size_t)ids[j] * D;
			for (int i = 0; i < D; i++)
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
	/* Seed out with the bias, then out += inp W^T in one sgemm. */
	for (int b = 0; b < B; b++) {
		float *o = out + (size_t)b * O;
		if (bias != NULL)
			memcpy(o, bias, (size_t)O * sizeof(float));
		else
			memset(o, 0, (size_t)O * sizeof(float));
	}
	if (B == 0 || C == 0 || O == 0)
		return;
	cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, B, O, C, 1.0f,
	    inp, C, w, C, 1.0f, out, O);
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
		cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, B, C, O,
		    1.0f, dout, O, w, C, 1.0f, dinp, C);
	if (dw != NULL)		/* dw (O,C) += dout^T (O,B) inp (B,C) */
		cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, O, C, B,
		    1.0f, dout, O, inp, C, 1.0f, dw, C);
	if (dbias != NULL)
		for (int b = 0; b < B; b++) {
			const float *d = dout + (size_t)b * O;
			for (int j = 0; j < O; j++)
				dbias[j] += d[j];
		}
}

/* ---- relu ------------------------------------------------------------------ */

void
relu_forward(float *out, const float *inp, size_t N)
{
	for (size_t i = 0; i < N; i++)
		out[i] = inp[i] > 0.0f ? inp[i] : 0.0f;
}

void
relu_backward(float *dinp, const float *dout, const float *out, size_t N)
{
	for (size_t i = 0; i < N; i++)
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
		/* Stable form: never exponentiates a positive number. */
		double l = (z > 0.0 ? z : 0.0) - z * (double)y[b] +
		    log1p(exp(-fabs(z)));
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

/* ---- MetaPatch --------------------------------------------------------------- */

void
metapatch_forward(float *out, float *t, const float *inp, const float *U,
    const float *V, const float *mtab, const uint32_t *mid, int B, int H,
    int R)
{
	float s[KERN_RANK_MAX];

	for (int b = 0; b < B; b++) {
		const float *x = inp + (size_t)b * H;
		const float *m = mtab + (size_t)mid[b] * R;
		float *tb = t + (size_t)b * R;
		float *o = out + (size_t)b * H;
		/* t = V x (R), s = m * t */
		for (int r = 0; r < R; r++) {
			const float *vr = V + (size_t)r * H;
			float acc = 0.0f;
			for (int h = 0; h < H; h++)
				acc += vr[h] * x[h];
			tb[r] = acc;
			s[r] = m[r] * acc;
		}
		/* o = x + U s */
		for (int h = 0; h < H; h++) {
			const float *ur = U + (size_t)h * R;
			float acc = 0.0f;
			for (int r = 0; r < R; r++)
				acc += ur[r] * s[r];
			o[h] = x[h] + acc;
		}
	}
}

void
metapatch_backward(float *dinp, float *dU, float *dV, float *dm,
    const float *dout, const float *inp, const float *t, const float *U,
    const float *V, const float *mtab, const uint32_t *mid, int B, int H,
    int R)
{
	float ds[KERN_RANK_MAX], dt[KERN_RANK_MAX];

	for (int b = 0; b < B; b++) {
		const float *d = dout + (size_t)b * H;
		const float *x = inp + (size_t)b * H;
		const float *tb = t + (size_t)b * R;
		const float *m = mtab + (size_t)mid[b] * R;

		/* ds = U^T d (R) */
		for (int r = 0; r < R; r++)
			ds[r] = 0.0f;
		for (int h = 0; h < H; h++) {
			const float *ur = U + (size_t)h * R;
			float dh = d[h];
			for (int r = 0; r < R; r++)
				ds[r] += ur[r] * dh;
		}
		/* dU += d (m*t)^T */
		if (dU != NULL)
			for (int h = 0; h < H; h++) {
				float *g = dU + (size_t)h * R;
				float dh = d[h];
				for (int r = 0; r < R; r++)
					g[r] += dh * m[r] * tb[r];
			}
		if (dm != NULL) {
			float *g = dm + (size_t)mid[b] * R;
			for (int r = 0; r < R; r++)
				g[r] += ds[r] * tb[r];
		}
		for (int r = 0; r < R; r++)
			dt[r] = ds[r] * m[r];
		/* dV += dt x^T,  dinp += d + V^T dt */
		if (dV != NULL)
			for (int r = 0; r < R; r++) {
				float *g = dV + (size_t)r * H;
				float dr = dt[r];
				for (int h = 0; h < H; h++)
					g[h] += dr * x[h];
			}
		if (dinp != NULL) {
			float *dx = dinp + (size_t)b * H;
			for (int h = 0; h < H; h++)
				dx[h] += d[h];
			for (int r = 0; r < R; r++) {
				const float *vr = V + (size_t)r * H;
				float dr = dt[r];
				for (int h = 0; h < H; h++)
					dx[h] += vr[h] * dr;
			}
		}
	}
}

/* ---- optimizers ------------------------------------------------------------- */

void
sgd_update(float *w, const float *g, size_t n, float lr, float wd)
{
	if (wd == 0.0f) {
		for (size_t i = 0; i < n; i++)
			w[i] -= lr * g[i];
		return;
	}
	for (size_t i = 0; i < n; i++)
		w[i] -= lr * (g[i] + wd * w[i]);
}

/* One Adam step over n floats with the bias corrections precomputed. */
static void
adam_core(float *w, const float *g, float *m, float *v, size_t n, float lr,
    float step, float sbc2, float b1, float b2, float eps, float wd)
{
	for (size_t i = 0; i < n; i++) {
		float gi = g[i];
		m[i] = b1 * m[i] + (1.0f - b1) * gi;
		v[i] = b2 * v[i] + (1.0f - b2) * gi * gi;
		float upd = step * m[i] / (sqrtf(v[i]) / sbc2 + eps);
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
