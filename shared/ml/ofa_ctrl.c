/*
 * ofa_ctrl: Forward-OFA's behaviour controller (see ofa_ctrl.h). The
 * backward is per sample because ofa.c produces each sample's dc only
 * after its whole block loop; the cost is O(Hc (ZB + L)) per sample.
 */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "shared/ml/ofa_ctrl.h"


void
ofa_ctrl_forward(const struct ofa_ctrl_w *w, int ZB, int Hc, int L,
    const float *zin, float *h, float *cl)
{
	float u[OFA_CTRL_MAX_HIDDEN + 64];

	for (int k = 0; k < ZB; k++)
		u[k] = (zin[k] - w->mu[k]) * w->sc[k];
	for (int j = 0; j < Hc; j++) {
		double a = w->b1[j];
		for (int k = 0; k < ZB; k++)
			a += (double)w->w1[(size_t)j * ZB + k] * u[k];
		h[j] = a > 0 ? (float)a : 0.0f;
	}
	for (int l = 0; l < L; l++) {
		double a = w->b2[l];
		for (int j = 0; j < Hc; j++)
			a += (double)w->w2[(size_t)l * Hc + j] * h[j];
		cl[l] = (float)a;
	}
}

void
ofa_ctrl_backward(const struct ofa_ctrl_w *w, const struct ofa_ctrl_w *g,
    int ZB, int Hc, int L, const float *zin, const float *h,
    const float *dcl)
{
	float dh[OFA_CTRL_MAX_HIDDEN], du[OFA_CTRL_MAX_HIDDEN + 64];

	memset(dh, 0, (size_t)Hc * sizeof(float));
	for (int l = 0; l < L; l++) {
		if (dcl[l] == 0.0f)
			continue;
		g->b2[l] += dcl[l];
		for (int j = 0; j < Hc; j++) {
			g->w2[(size_t)l * Hc + j] += dcl[l] * h[j];
			dh[j] += dcl[l] * w->w2[(size_t)l * Hc + j];
		}
	}
	memset(du, 0, (size_t)ZB * sizeof(float));
	for (int j = 0; j < Hc; j++) {
		if (!(h[j] > 0.0f) || dh[j] == 0.0f)
			continue;
		g->b1[j] += dh[j];
		for (int k = 0; k < ZB; k++) {
			float u = (zin[k] - w->mu[k]) * w->sc[k];
			g->w1[(size_t)j * ZB + k] += dh[j] * u;
			du[k] += dh[j] * w->w1[(size_t)j * ZB + k];
		}
	}
	/* u = (zin - mu) sc: d sc = du (zin - mu), d mu = -du sc */
	for (int k = 0; k < ZB; k++) {
		g->sc[k] += du[k] * (zin[k] - w->mu[k]);
		g->mu[k] -= du[k] * w->sc[k];
	}
}

void
ofa_ctrl_fit_scale(float *mu, float *sc, const float *zin, size_t n, int ZB)
{
	for (int k = 0; k < ZB; k++) {
		double s = 0, s2 = 0, sd;
		for (size_t i = 0; i < n; i++) {
			double v = zin[i * (size_t)ZB + k];
			s += v;
			s2 += v * v;
		}
		mu[k] = n ? (float)(s / (double)n) : 0.0f;
		sd = n ? sqrt(fmax(s2 / (double)n - (s / n) * (s / n), 0)) : 0;
		sc[k] = sd > 1e-6 ? (float)(1.0 / sd) : 1.0f;
	}
}

double
ofa_ctrl_flops(int ZB, int Hc, int L)
{
	return 2.0 * ZB + 2.0 * Hc * ZB + 2.0 * Hc + 2.0 * L * Hc;
}
