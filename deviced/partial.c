/*
 * partial: the interpolation between the cloud model and an adapted model
 * (partial.h). Only the tensors the adaptation trains are touched, so a
 * MetaPatch path mixes its m and bias tables and not the 0.8 MiB rest.
 */
#include <errno.h>
#include <string.h>

#include "deviced/partial.h"

const double partial_alpha[PARTIAL_NA] = { 0.25, 0.5, 1.0 };

int
partial_mix(struct ctr *c, const struct ctr *c0, const float *save, double a,
    enum ctr_sel sel)
{
	int nt = ctr_num_tensors(c);
	const float *base = ctr_params(c);
	float fa = (float)a;

	if (nt != ctr_num_tensors(c0) || ctr_num_params(c) !=
	    ctr_num_params(c0))
		return -EINVAL;
	for (int i = 0; i < nt; i++) {
		const struct param_tensor *t = ctr_tensor_at(c, i);
		const struct param_tensor *t0 = ctr_tensor_at(c0, i);
		const float *s = save + (t->data - base);

		if (t->n != t0->n)
			return -EINVAL;
		if (!ctr_sel_trains(sel, t->kind))
			continue;
		for (size_t j = 0; j < t->n; j++)
			t->data[j] = t0->data[j] + fa * (s[j] - t0->data[j]);
	}
	return 0;
}
