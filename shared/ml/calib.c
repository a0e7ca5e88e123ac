/*
 * calib: the affine recalibration of logits (calib.h).
 */
#include <math.h>

#include "shared/ml/calib.h"
#include "shared/ml/kern.h"

double
calib_loss(const float *z, const float *y, size_t n, double prior,
    double t, double b, double *gt, double *gb)
{
	double l = prior / 8 * (t * t + b * b), dt = prior / 4 * t,
	    db = prior / 4 * b;

	for (size_t i = 0; i < n; i++) {
		double u = (1 + t) * z[i] + b, yy = y[i] >= 0.5f;
		double p = 1 / (1 + exp(-u));
		l += bce_logit(u, yy);
		dt += (p - yy) * z[i];
		db += p - yy;
	}
	if (gt != NULL)
		*gt = dt;
	if (gb != NULL)
		*gb = db;
	return l;
}

int
calib_fit(const float *z, const float *y, size_t n, double prior,
    double *t, double *b)
{
	double ct = 0, cb = 0, l = calib_loss(z, y, n, prior, 0, 0, NULL,
	    NULL);

	*t = *b = 0;
	if (n == 0)
		return 0;
	for (int it = 0; it < 50; it++) {
		double gt, gb, htt = prior / 4, hbb = prior / 4, htb = 0;
		double det, st, sb, step = 1, nl;

		(void)calib_loss(z, y, n, prior, ct, cb, &gt, &gb);
		for (size_t i = 0; i < n; i++) {
			double u = (1 + ct) * z[i] + cb;
			double p = 1 / (1 + exp(-u)), w = p * (1 - p);
			htt += w * z[i] * z[i];
			htb += w * z[i];
			hbb += w;
		}
		det = htt * hbb - htb * htb;
		if (!(det > 0))
			return -1;
		st = (hbb * gt - htb * gb) / det;
		sb = (htt * gb - htb * gt) / det;
		/* backtrack until the loss falls and 1 + t stays >= 0.1 */
		for (;;) {
			double nt = ct - step * st, nb = cb - step * sb;
			if (1 + nt >= 0.1) {
				nl = calib_loss(z, y, n, prior, nt, nb, NULL,
				    NULL);
				if (nl <= l) {
					ct = nt;
					cb = nb;
					break;
				}
			}
			step /= 2;
			if (step < 1e-6)
				goto done;
		}
		if (fabs(l - nl) < 1e-10 * (1 + fabs(l))) {
			l = nl;
			break;
		}
		l = nl;
	}
done:
	if (!isfinite(ct) || !isfinite(cb))
		return -1;
	*t = ct;
	*b = cb;
	return 0;
}

void
calib_probs(float *p, size_t n, double t, double b)
{
	for (size_t i = 0; i < n; i++) {
		double q = p[i], z = log(q) - log1p(-q);
		p[i] = (float)(1 / (1 + exp(-((1 + t) * z + b))));
	}
}
