/*
 * dp: see dp.h. The noise comes from libsodium's CSPRNG (a seeded
 * xorshift would let whoever knows the seed subtract it).
 */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

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

/*
 * The spent budget, written through a synced temporary file renamed into
 * place, so a crash leaves the old or the new value, never a truncated
 * one. 0 or -1 (then the release that spent it must not go out).
 */
static int
save(struct device *d, int sync)
{
	char path[1100], tmp[1110], buf[64];
	int fd, n, ok;

	snprintf(path, sizeof(path), "%s/dp.budget", d->dir);
	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	n = snprintf(buf, sizeof(buf), "%.17g\n", d->dp_rho);
	if ((fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC, 0600)) < 0) {
		log_warn("DP: device=%s: cannot save %s", d->id, path);
		return -1;
	}
	ok = write(fd, buf, (size_t)n) == n && (!sync || fsync(fd) == 0);
	ok = close(fd) == 0 && ok;
	if (!ok || rename(tmp, path) != 0) {
		log_warn("DP: device=%s: cannot save %s", d->id, path);
		unlink(tmp);
		return -1;
	}
	return 0;
}

int
dp_device_load(struct device *d, int fresh)
{
	char path[1100], buf[64], *end;
	FILE *f;
	size_t n;

	d->dp_rho = 0;
	d->dp_bad = 0;
	snprintf(path, sizeof(path), "%s/dp.budget", d->dir);
	if ((f = fopen(path, "r")) == NULL) {
		/*
		 * A new device: nothing spent. Not synced (a start of many
		 * devices would wait on one fsync each); should a crash lose
		 * it, the device refuses DP releases, which is the safe side.
		 */
		if (errno == ENOENT && fresh)
			return save(d, 0);
		log_warnx("DP-BUDGET: device=%s: %s is missing for a device "
		    "that has state; the spent budget is unknown, so nothing "
		    "is released with DP on (restore the file)", d->id, path);
		d->dp_bad = 1;
		return -1;
	}
	n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	d->dp_rho = strtod(buf, &end);
	if (n == 0 || end == buf || (*end != '\n' && *end != '\0') ||
	    !isfinite(d->dp_rho) || d->dp_rho < 0) {
		log_warnx("DP-BUDGET: device=%s: %s is corrupt; nothing is "
		    "released with DP on", d->id, path);
		d->dp_bad = 1;
		return -1;
	}
	return 0;
}

/*
 * 1 when spending rho more is allowed: the budget file was readable and
 * the total stays within dp.max-epsilon (0 = no cap).
 */
static int
may_spend(struct device *d, double rho, const char *what)
{
	const struct deviced_conf *cf = &d->dd->cf;
	double eps = dp_epsilon(d->dp_rho + rho, cf->dp_delta);

	if (d->dp_bad) {
		log_warnx("DP-BUDGET: device=%s %s not released: the spent "
		    "budget is unknown", d->id, what);
		return 0;
	}
	if (cf->dp_max_eps > 0 && eps > cf->dp_max_eps) {
		log_warnx("DP-BUDGET: device=%s %s not released: epsilon would "
		    "reach %.3f > dp.max-epsilon %g", d->id, what, eps,
		    cf->dp_max_eps);
		return 0;
	}
	return 1;
}

int
dp_device_patch(struct device *d)
{
	const struct deviced_conf *cf = &d->dd->cf;
	size_t n = 0, k = 0;
	float *all;
	double norm, rho = 1 / (2 * cf->dp_noise * cf->dp_noise);

	if (cf->dp_clip <= 0 || d->n_patch == 0)
		return 0;
	if (!may_spend(d, rho, "patch"))
		return -1;
	/* One vector over all tensors: the patch is one release. */
	for (size_t i = 0; i < d->n_patch; i++)
		n += d->patch[i]->n_data;
	all = calloc(n ? n : 1, sizeof(*all));
	if (all == NULL)
		return -1;
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
	/* Spent before anything goes out; unsaved, nothing goes out. */
	d->dp_rho += rho;
	if (save(d, 1) != 0) {
		d->dp_bad = 1;
		return -1;
	}
	log_info("DP: device=%s patch norm %.4f clipped to %g, noise sigma "
	    "%.4g; budget rho %.4g zCDP = (%.3f, %g)-DP", d->id, norm,
	    cf->dp_clip, cf->dp_noise * cf->dp_clip, d->dp_rho,
	    dp_epsilon(d->dp_rho, cf->dp_delta), cf->dp_delta);
	return 0;
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

int
dp_device_vectors(struct device *d, float *v, size_t n, int dim)
{
	const struct deviced_conf *cf = &d->dd->cf;
	unsigned char key[32];
	size_t len = n * (size_t)dim;
	float *out;
	double rho;

	if (cf->dp_repr_clip <= 0 || n == 0)
		return 0;
	rho = (double)n / (2 * cf->dp_repr_noise * cf->dp_repr_noise);
	vec_key(cf, v, n, dim, key);
	out = calloc(len, sizeof(*out));
	if (out != NULL && vec_cached(d, key, out, len)) {
		memcpy(v, out, len * sizeof(*v));
		free(out);
		log_info("DP: device=%s %zu query vectors: the earlier release "
		    "again; budget rho %.4g zCDP = (%.3f, %g)-DP", d->id, n,
		    d->dp_rho, dp_epsilon(d->dp_rho, cf->dp_delta),
		    cf->dp_delta);
		return 0;
	}
	if (!may_spend(d, rho, "query vectors")) {
		free(out);
		return -1;
	}
	for (size_t i = 0; i < n; i++)
		(void)dp_release(v + i * (size_t)dim, (size_t)dim,
		    cf->dp_repr_clip, cf->dp_repr_noise);
	d->dp_rho += rho;
	if (save(d, 1) != 0) {
		d->dp_bad = 1;
		free(out);
		return -1;
	}
	vec_store(d, key, v, len);
	free(out);
	log_info("DP: device=%s %zu query vectors clipped to %g, noise sigma "
	    "%.4g; budget rho %.4g zCDP = (%.3f, %g)-DP", d->id, n,
	    cf->dp_repr_clip, cf->dp_repr_noise * cf->dp_repr_clip, d->dp_rho,
	    dp_epsilon(d->dp_rho, cf->dp_delta), cf->dp_delta);
	return 0;
}
