/*
 * metapatch: MetaPatch's forward and backward kernels (see metapatch.h),
 * a naive reference loop beside each gemm_f32 version with the same
 * signature; tests/unit/test_kern.c checks that they agree and
 * gradient-checks both by finite differences.
 *
 * Threads: any; no shared state.
 */
#include <stdint.h>
#include <string.h>

#include "shared/ml/gemm.h"
#include "shared/ml/metapatch.h"

void
metapatch_forward_naive(float *out, float *t, const float *inp, const float *U,
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
metapatch_backward_naive(float *dinp, float *dU, float *dV, float *dm,
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

/*
 * gemm_f32 versions: rows go in blocks of MP_BLK so the per-row s = m * t and
 * ds, dt live in stack scratch (3 x MP_BLK x KERN_RANK_MAX floats).
 */
#define MP_BLK	64

void
metapatch_forward(float *out, float *t, const float *inp, const float *U,
    const float *V, const float *mtab, const uint32_t *mid, int B, int H,
    int R)
{
	float s[MP_BLK * KERN_RANK_MAX];

	if (R == 0) {
		memcpy(out, inp, (size_t)B * H * sizeof(float));
		return;
	}
	for (int b0 = 0; b0 < B; b0 += MP_BLK) {
		int nb = B - b0 < MP_BLK ? B - b0 : MP_BLK;
		const float *x = inp + (size_t)b0 * H;
		float *tb = t + (size_t)b0 * R, *o = out + (size_t)b0 * H;
		/* t (nb,R) = x (nb,H) V^T */
		gemm_f32(0, 1, nb, R, H, x, H, V, H, 0.0f, tb, R);
		for (int b = 0; b < nb; b++) {
			const float *m = mtab + (size_t)mid[b0 + b] * R;
			for (int r = 0; r < R; r++)
				s[b * R + r] = m[r] * tb[b * R + r];
		}
		/* o (nb,H) = x + s (nb,R) U^T */
		memcpy(o, x, (size_t)nb * H * sizeof(float));
		gemm_f32(0, 1, nb, H, R, s, R, U, R, 1.0f, o, H);
	}
}

void
metapatch_backward(float *dinp, float *dU, float *dV, float *dm,
    const float *dout, const float *inp, const float *t, const float *U,
    const float *V, const float *mtab, const uint32_t *mid, int B, int H,
    int R)
{
	float s[MP_BLK * KERN_RANK_MAX], ds[MP_BLK * KERN_RANK_MAX];
	float dt[MP_BLK * KERN_RANK_MAX];

	if (R == 0) {
		if (dinp != NULL)
			for (size_t i = 0; i < (size_t)B * H; i++)
				dinp[i] += dout[i];
		return;
	}
	for (int b0 = 0; b0 < B; b0 += MP_BLK) {
		int nb = B - b0 < MP_BLK ? B - b0 : MP_BLK;
		const float *d = dout + (size_t)b0 * H;
		const float *x = inp + (size_t)b0 * H;
		const float *tb = t + (size_t)b0 * R;
		/* ds (nb,R) = d (nb,H) U (H,R) */
		gemm_f32(0, 0, nb, R, H, d, H, U, R, 0.0f, ds, R);
		for (int b = 0; b < nb; b++) {
			const float *m = mtab + (size_t)mid[b0 + b] * R;
			float *g = dm != NULL ? dm + (size_t)mid[b0 + b] * R :
			    NULL;
			for (int r = 0; r < R; r++) {
				int k = b * R + r;
				s[k] = m[r] * tb[k];
				dt[k] = ds[k] * m[r];
				if (g != NULL)
					g[r] += ds[k] * tb[k];
			}
		}
		/* dU (H,R) += d^T (H,nb) s (nb,R) */
		if (dU != NULL)
			gemm_f32(1, 0, H, R, nb, d, H, s, R, 1.0f, dU, R);
		/* dV (R,H) += dt^T (R,nb) x (nb,H) */
		if (dV != NULL)
			gemm_f32(1, 0, R, H, nb, dt, R, x, H, 1.0f, dV, H);
		/* dinp (nb,H) += d + dt (nb,R) V (R,H) */
		if (dinp != NULL) {
			float *dx = dinp + (size_t)b0 * H;
			for (size_t i = 0; i < (size_t)nb * H; i++)
				dx[i] += d[i];
			gemm_f32(0, 0, nb, H, R, dt, R, V, H, 1.0f, dx, H);
		}
	}
}
