/*
 * dp: see dp.h. The noise comes from libsodium's CSPRNG (a seeded
 * xorshift would let whoever knows the seed subtract it).
 */
#include <math.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "deviced/dp.h"
#include "shared/log.h"

double
dp_epsilon(double rho, double delta)
{
	if (rho <= 0)
		return 0;
	return rho + 2 * sqrt(rho * log(1 / delta));
}

static double
uniform01(void)
{
	uint64_t r;

	randombytes_buf(&r, sizeof(r));
	return ((double)(r >> 11) + 0.5) / 9007199254740992.0;	/* (0,1) */
}

double
dp_gauss(void)
{
	/* Box-Muller. */
	return sqrt(-2 * log(uniform01())) * cos(2 * M_PI * uniform01());
}

double
dp_release(float *x, size_t n, double clip, double z)
{
	double s = 0, norm, scale;

	for (size_t i = 0; i < n; i++)
		s += (double)x[i] * x[i];
	norm = sqrt(s);
	scale = norm > clip ? clip / norm : 1;
	for (size_t i = 0; i < n; i++)
		x[i] = (float)(x[i] * scale + z * clip * dp_gauss());
	return norm;
}

static void
save(struct device *d)
{
	char path[1100];
	FILE *f;

	snprintf(path, sizeof(path), "%s/dp.budget", d->dir);
	if ((f = fopen(path, "w")) == NULL ||
	    fprintf(f, "%.17g\n", d->dp_rho) < 0 || fclose(f) != 0)
		log_warn("DP: device=%s: cannot save %s", d->id, path);
}

void
dp_device_load(struct device *d)
{
	char path[1100];
	FILE *f;

	d->dp_rho = 0;
	snprintf(path, sizeof(path), "%s/dp.budget", d->dir);
	if ((f = fopen(path, "r")) != NULL) {
		if (fscanf(f, "%lf", &d->dp_rho) != 1 || !(d->dp_rho >= 0))
			d->dp_rho = 0;
		fclose(f);
	}
}

void
dp_device_patch(struct device *d)
{
	const struct deviced_conf *cf = &d->dd->cf;
	size_t n = 0, k = 0;
	float *all;
	double norm;

	if (cf->dp_clip <= 0 || d->n_patch == 0)
		return;
	/* One vector over all tensors: the patch is one release. */
	for (size_t i = 0; i < d->n_patch; i++)
		n += d->patch[i]->n_data;
	all = calloc(n ? n : 1, sizeof(*all));
	if (all == NULL)
		return;
	for (size_t i = 0; i < d->n_patch; i++) {
		memcpy(all + k, d->patch[i]->data, d->patch[i]->n_data *
		    sizeof(float));
		k += d->patch[i]->n_data;
	}
	norm = dp_release(all, n, cf->dp_clip, cf->dp_noise);
	k = 0;
	for (size_t i = 0; i < d->n_patch; i++) {
		memcpy(d->patch[i]->data, all + k, d->patch[i]->n_data *
		    sizeof(float));
		k += d->patch[i]->n_data;
	}
	free(all);
	d->dp_rho += 1 / (2 * cf->dp_noise * cf->dp_noise);
	save(d);
	log_info("DP: device=%s patch norm %.4f clipped to %g, noise sigma "
	    "%.4g; budget rho %.4g zCDP = (%.3f, %g)-DP", d->id, norm,
	    cf->dp_clip, cf->dp_noise * cf->dp_clip, d->dp_rho,
	    dp_epsilon(d->dp_rho, cf->dp_delta), cf->dp_delta);
}

void
dp_device_vectors(struct device *d, float *v, size_t n, int dim)
{
	const struct deviced_conf *cf = &d->dd->cf;

	if (cf->dp_repr_clip <= 0 || n == 0)
		return;
	for (size_t i = 0; i < n; i++)
		(void)dp_release(v + i * (size_t)dim, (size_t)dim,
		    cf->dp_repr_clip, cf->dp_repr_noise);
	d->dp_rho += (double)n / (2 * cf->dp_repr_noise * cf->dp_repr_noise);
	save(d);
	log_info("DP: device=%s %zu query vectors clipped to %g, noise sigma "
	    "%.4g; budget rho %.4g zCDP = (%.3f, %g)-DP", d->id, n,
	    cf->dp_repr_clip, cf->dp_repr_noise * cf->dp_repr_clip, d->dp_rho,
	    dp_epsilon(d->dp_rho, cf->dp_delta), cf->dp_delta);
}
