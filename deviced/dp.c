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

/*
 * A retried retrieval (E_BUSY, timeout, backoff, or the second matching
 * mode) computes the same clean vectors again. A fresh noise draw would be
 * a new release (the cloud could average the draws), so the device resends
 * its earlier one, which costs nothing more: <dir>/dp.vectors holds the
 * BLAKE2b of the clean input and settings, then the noised vectors.
 */
static void
vec_key(const struct deviced_conf *cf, const float *v, size_t n, int dim,
    unsigned char key[32])
{
	crypto_generichash_state st;
	double p[2] = { cf->dp_repr_clip, cf->dp_repr_noise };
	uint64_t sz[2] = { n, (uint64_t)dim };

	crypto_generichash_init(&st, NULL, 0, 32);
	crypto_generichash_update(&st, (const void *)sz, sizeof(sz));
	crypto_generichash_update(&st, (const void *)p, sizeof(p));
	crypto_generichash_update(&st, (const void *)v, n * dim * sizeof(*v));
	crypto_generichash_final(&st, key, 32);
}

static int
vec_cached(struct device *d, const unsigned char key[32], float *v,
    size_t len)
{
	char path[1100];
	unsigned char k[32];
	FILE *f;
	int hit;

	snprintf(path, sizeof(path), "%s/dp.vectors", d->dir);
	if ((f = fopen(path, "rb")) == NULL)
		return 0;
	hit = fread(k, 1, 32, f) == 32 && memcmp(k, key, 32) == 0 &&
	    fread(v, sizeof(*v), len, f) == len && fgetc(f) == EOF;
	fclose(f);
	return hit;
}

static void
vec_store(struct device *d, const unsigned char key[32], const float *v,
    size_t len)
{
	char path[1100], tmp[1110];
	FILE *f;

	snprintf(path, sizeof(path), "%s/dp.vectors", d->dir);
	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	if ((f = fopen(tmp, "wb")) == NULL || fwrite(key, 1, 32, f) != 32 ||
	    fwrite(v, sizeof(*v), len, f) != len || fclose(f) != 0 ||
	    rename(tmp, path) != 0)
		log_warn("DP: device=%s: cannot save %s", d->id, path);
}

void
dp_device_vectors(struct device *d, float *v, size_t n, int dim)
{
	const struct deviced_conf *cf = &d->dd->cf;
	unsigned char key[32];
	size_t len = n * (size_t)dim;
	float *out;

	if (cf->dp_repr_clip <= 0 || n == 0)
		return;
	vec_key(cf, v, n, dim, key);
	out = calloc(len, sizeof(*out));
	if (out != NULL && vec_cached(d, key, out, len)) {
		memcpy(v, out, len * sizeof(*v));
		free(out);
		log_info("DP: device=%s %zu query vectors: the earlier release "
		    "again; budget rho %.4g zCDP = (%.3f, %g)-DP", d->id, n,
		    d->dp_rho, dp_epsilon(d->dp_rho, cf->dp_delta),
		    cf->dp_delta);
		return;
	}
	for (size_t i = 0; i < n; i++)
		(void)dp_release(v + i * (size_t)dim, (size_t)dim,
		    cf->dp_repr_clip, cf->dp_repr_noise);
	d->dp_rho += (double)n / (2 * cf->dp_repr_noise * cf->dp_repr_noise);
	save(d);
	vec_store(d, key, v, len);
	free(out);
	log_info("DP: device=%s %zu query vectors clipped to %g, noise sigma "
	    "%.4g; budget rho %.4g zCDP = (%.3f, %g)-DP", d->id, n,
	    cf->dp_repr_clip, cf->dp_repr_noise * cf->dp_repr_clip, d->dp_rho,
	    dp_epsilon(d->dp_rho, cf->dp_delta), cf->dp_delta);
}
