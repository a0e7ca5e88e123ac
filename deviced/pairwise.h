/*
 * pairwise: a pairwise logistic (BPR-style) loss over one user's
 * (click, no-click) pairs of a batch, added to the device's BCE by the
 * "-pair" evaluation rows (learn.c). BCE on a device's few samples mostly
 * learns the user's calibration; per-user AUC moves only through the
 * order of such pairs, which this loss trains directly.
 */
#ifndef DEVICED_PAIRWISE_H
#define DEVICED_PAIRWISE_H

/*
 * L = (1/P) sum over pairs (i, j) with y[i] >= 0.5 > y[j], both with
 * use[i], use[j] nonzero (use NULL: all), of log(1 + exp(-(z[i] - z[j]))),
 * P the number of pairs. g (B) gets dL/dz (zeros without a pair). Returns
 * L (0 without a pair).
 */
double	pairwise_loss(const float *z, const float *y,
	    const unsigned char *use, int B, float *g);

#endif
