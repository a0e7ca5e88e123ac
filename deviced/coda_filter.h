/*
 * coda_filter: CoDA's fine-grained filtering (Gu et al. 2022; the symbols
 * keep their filt_ prefix). A small
 * personalized classifier learns, on the device, the boundary between the
 * user's own data (local = 1) and what the cloud's coarse matching
 * returned (retrieved = 0), over the samples' representation vectors;
 * retrieved samples that look most like local ones are kept.
 *
 * The classifier is L2-regularised logistic regression, trained full-batch
 * with class-balanced weights: with 10 local and 100 retrieved samples an
 * unweighted model puts nearly every retrieved sample below 0.5 and a fixed
 * tau keeps nothing (shared/ml/README.md, CoDA), so the classes are weighted to equal mass
 * and p(local) is calibrated to a 1:1 prior. Keep rule: p >= tau, or the
 * top rho share by p (rho > 0 wins). Any thread; no state between calls.
 */
#ifndef DEVICED_CODA_FILTER_H
#define DEVICED_CODA_FILTER_H

#include <stddef.h>

struct filt_opts {
	double	tau;		/* keep p(local) >= tau (when rho == 0) */
	double	rho;		/* keep the top rho share (0 = use tau) */
	double	l2;		/* weight decay */
	int	iters;		/* gradient steps */
	double	lr;
};

void	filt_opts_default(struct filt_opts *o);
/*
 * Trains on L (nl x d, local) and R (nr x d, retrieved), scores R into
 * p (nr) = p(local), and sets keep (nr) to 1 for kept samples. Returns the
 * number kept, or -1 for bad arguments (nl == 0 or nr == 0 keeps nothing
 * and returns 0).
 */
int	filt_select(const float *L, size_t nl, const float *R, size_t nr,
	    int d, const struct filt_opts *o, float *p, unsigned char *keep);

#endif
