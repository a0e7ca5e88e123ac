/*
 * ofa_ctrl: Forward-OFA's behaviour controller (see ofa_ctrl.h). The
 * backward is per sample because ofa.c produces each sample's dc only
 * after its whole block loop; the cost is O(Hc (ZB + L)) per sample.
 */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "shared/data/dataset.h"
#include "shared/ml/ofa.h"
#include "shared/ml/ofa_ctrl.h"
#include "shared/xmalloc.h"

#define PRED_BATCH	256

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

/*
 * The behaviour controller's standardisation from (up to 8192 of) the
 * training samples' z, with the class budgets in turn.
 */
void
ofa_ctrl_fit(struct ofa *m, const struct ctr *emb, const struct dataset *ds,
    const uint32_t *idx, size_t n)
{
	const struct ofa_config *c = ofa_config(m);
	const struct param_tensor *mu = ofa_tensor_find(m, "ctl_mu");
	const struct param_tensor *sc = ofa_tensor_find(m, "ctl_sc");
	size_t k = n < 8192 ? n : 8192, Z = (size_t)c->z_dim, ZB = Z + OFA_NB;
	float *x0, *z, *zin;

	if (mu == NULL || sc == NULL)
		return;
	x0 = xcalloc(PRED_BATCH * (size_t)c->in_dim, sizeof(float));
	z = xcalloc(PRED_BATCH * Z, sizeof(float));
	zin = xcalloc(k * ZB + 1, sizeof(float));
	for (size_t i = 0; i < k; i += PRED_BATCH) {
		int B = (int)(k - i < PRED_BATCH ? k - i : PRED_BATCH);
		ofa_inputs(emb, ds, idx + i, B, x0, z);
		for (int b = 0; b < B; b++) {
			float *r = zin + (i + (size_t)b) * ZB;
			memcpy(r, z + (size_t)b * Z, Z * sizeof(float));
			r[Z] = (float)ofa_class_budget[(i + b) % OFA_N_CLASSES];
		}
	}
	ofa_ctrl_fit_scale(mu->data, sc->data, zin, k, (int)ZB);
	free(x0);
	free(z);
	free(zin);
}
