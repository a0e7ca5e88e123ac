/*
 * fit: the epoch loop (see fit.h).
 */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "shared/ml/fit.h"
#include "shared/rng.h"
#include "shared/xmalloc.h"

int
fit_run(float *params, size_t n_params, const uint32_t *idx, size_t n,
    const struct fit_opts *o, const struct fit_hooks *h, struct fit_stats *st)
{
	struct fit_stats s = { NAN, NAN, 0, 0 };
	struct rng rng;
	uint32_t *perm;
	float *best = NULL;
	double best_loss = INFINITY;
	int rc = 0, bad = 0;

	perm = xmalloc(n * sizeof(*perm));
	memcpy(perm, idx, n * sizeof(*perm));
	if (h->val != NULL) {
		if ((rc = h->val(h->arg, &best_loss)) != 0)
			goto out;
		best = xmalloc(n_params * sizeof(float));
		memcpy(best, params, n_params * sizeof(float));
		if (h->improved != NULL)
			h->improved(h->arg);
	}
	rng_seed(&rng, o->seed);
	for (int e = 1; e <= o->epochs; e++) {
		double sum = 0.0;
		if (o->reseed) {
			memcpy(perm, idx, n * sizeof(*perm));
			rng_seed(&rng, o->seed + (uint64_t)e);
		}
		/* Fisher-Yates */
		for (size_t i = n - 1; i > 0; i--) {
			uint32_t j = rng_below(&rng, (uint32_t)(i + 1));
			uint32_t tmp = perm[i];
			perm[i] = perm[j];
			perm[j] = tmp;
		}
		for (size_t i = 0; i < n; i += (size_t)o->batch) {
			int B = (int)(n - i < (size_t)o->batch ? n - i :
			    (size_t)o->batch);
			double l;
			if (o->stop != NULL && atomic_load(o->stop)) {
				rc = -ECANCELED;
				goto out;
			}
			if ((rc = h->grad(h->arg, perm + i, B, &rng, &l)) != 0)
				goto out;
			if (!isfinite(l)) {
				rc = -ERANGE;
				goto out;
			}
			if ((rc = h->update(h->arg)) != 0)
				goto out;
			sum += l * B;
		}
		s.train_loss = sum / (double)n;
		s.epochs = e;
		double vl = NAN;
		if (h->val != NULL) {
			if ((rc = h->val(h->arg, &vl)) != 0)
				goto out;
			if (vl < best_loss) {
				best_loss = vl;
				s.best_epoch = e;
				memcpy(best, params, n_params * sizeof(float));
				if (h->improved != NULL)
					h->improved(h->arg);
				bad = 0;
			} else
				bad++;
		} else
			s.best_epoch = e;
		if (h->epoch != NULL)
			h->epoch(h->arg, e, s.train_loss, vl);
		if (h->val != NULL && o->patience > 0 && bad >= o->patience)
			break;
	}
out:
	if (best != NULL) {
		memcpy(params, best, n_params * sizeof(float));
		s.val_loss = best_loss;
	}
	if (st != NULL)
		*st = s;
	free(best);
	free(perm);
	return rc;
}
