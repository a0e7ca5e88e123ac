/*
 * bench_retrieve: throughput and recall of cloudd/coda_retrieve.c on synthetic
 * clustered data, and the dataset for the faiss comparison
 * (tests/bench/retrieve_faiss.py, driven by bench_retrieve.sh).
 *
 * Data: a Gaussian mixture on the unit sphere, the shape a trained
 * representation has (samples cluster by user taste / item genre). C
 * component directions are uniform on the sphere; component weights follow
 * a Zipf-like law (w_c ~ 1/sqrt(c+1)), so list sizes are uneven as in real
 * pools; a point is normalise(mu_c + sigma * g / sqrt(d)), g ~ N(0, I).
 * Queries are fresh draws from the same mixture. Everything comes from
 * shared/rng.h with a fixed seed, so runs are identical.
 *
 * With -o DIR it writes raw little-endian files for the Python side:
 * base.f32 (n,d), queries.f32 (nq,d), centroids.f32 (nlist,d), gt.u64
 * (nq,k) exact top-k positions, meta.txt ("n d nq k nlist nprobe nq1").
 *
 * Output: "RESULT <name> <value>" lines (parsed by bench_retrieve.sh) and
 * human-readable lines. Single thread: OpenBLAS is pinned to 1.
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cblas.h>

#include "shared/clock.h"
#include "shared/rng.h"
#include "shared/xmalloc.h"

#include "cloudd/coda_retrieve.h"

void	openblas_set_num_threads(int);

static void
unit(float *v, int d)
{
	double ss = 0;

	for (int j = 0; j < d; j++)
		ss += (double)v[j] * v[j];
	for (int j = 0; j < d; j++)
		v[j] = (float)(v[j] / sqrt(ss));
}

/* X (n,d) mixture draws; mu (C,d) unit directions; cdf (C) of weights. */
static void
draw(float *X, size_t n, int d, const float *mu, const double *cdf, int C,
    double sigma, struct rng *rng)
{
	for (size_t i = 0; i < n; i++) {
		double u = rng_unif(rng);
		int lo = 0, hi = C - 1;
		while (lo < hi) {
			int mid = (lo + hi) / 2;
			if (cdf[mid] < u)
				lo = mid + 1;
			else
				hi = mid;
		}
		float *x = X + i * d;
		for (int j = 0; j < d; j++)
			x[j] = (float)(mu[(size_t)lo * d + j] +
			    sigma * rng_normal(rng) / sqrt((double)d));
		unit(x, d);
	}
}

static void
write_raw(const char *dir, const char *name, const void *p, size_t len)
{
	char path[4096];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	if ((f = fopen(path, "wb")) == NULL || fwrite(p, 1, len, f) != len ||
	    fclose(f) != 0) {
		fprintf(stderr, "bench_retrieve: %s: %s\n", path,
		    strerror(errno));
		exit(1);
	}
}

static double
recall(const struct retr_hit *a, const struct retr_hit *gt, size_t nq,
    size_t k)
{
	size_t hit = 0;

	for (size_t q = 0; q < nq; q++)
		for (size_t i = 0; i < k; i++)
			for (size_t j = 0; j < k; j++)
				if (a[q * k + i].row == gt[q * k + j].row) {
					hit++;
					break;
				}
	return (double)hit / (double)(nq * k);
}

/* Per-query search of nq queries in batches of bs; returns seconds. */
static double
run(const struct retr *r, const float *Q, size_t nq, size_t bs, size_t k,
    uint32_t nprobe, struct retr_hit *out)
{
	double t0 = clock_now();

	for (size_t q0 = 0; q0 < nq; q0 += bs) {
		size_t b = nq - q0 < bs ? nq - q0 : bs;
		int rc = retr_topk(r, Q + q0 * retr_dim(r), b, k,
		    RETR_NO_OWNER, nprobe, out + q0 * k, NULL);
		if (rc != 0) {
			fprintf(stderr, "retr_topk: %d\n", rc);
			exit(1);
		}
	}
	return clock_now() - t0;
}

static void
usage(void)
{
	fprintf(stderr, "usage: bench_retrieve [-n n] [-d d] [-q nq] "
	    "[-c components] [-s sigma] [-l nlist] [-p nprobe]\n"
	    "    [-t train_size] [-i kmeans_iters] [-o dir]\n");
	exit(2);
}

int
main(int argc, char **argv)
{
	size_t n = 1000000, nq = 1000, nq1 = 50, k = 100, bs = 64;
	int d = 32, C = 1000, ch;
	double sigma = 1.0;
	uint32_t nlist = 0, nprobe = 0, train = 0, iters = 0;
	const char *dir = NULL;

	while ((ch = getopt(argc, argv, "n:d:q:c:s:l:p:t:i:o:")) != -1) {
		switch (ch) {
		case 'n': n = strtoull(optarg, NULL, 10); break;
		case 'd': d = atoi(optarg); break;
		case 'q': nq = strtoull(optarg, NULL, 10); break;
		case 'c': C = atoi(optarg); break;
		case 's': sigma = atof(optarg); break;
		case 'l': nlist = (uint32_t)atoi(optarg); break;
		case 'p': nprobe = (uint32_t)atoi(optarg); break;
		case 't': train = (uint32_t)atoi(optarg); break;
		case 'i': iters = (uint32_t)atoi(optarg); break;
		case 'o': dir = optarg; break;
		default: usage();
		}
	}
	if (n < 1 || d < 1 || d > RETR_MAX_D || nq < 1 || C < 1 || n < k)
		usage();
	if (nq1 > nq)
		nq1 = nq;
	openblas_set_num_threads(1);

	/* Dataset. */
	struct rng rng;
	rng_seed(&rng, 20240611);
	float *mu = xmalloc((size_t)C * d * sizeof(float));
	double *cdf = xmalloc(C * sizeof(double)), tot = 0;
	for (int c = 0; c < C; c++) {
		for (int j = 0; j < d; j++)
			mu[(size_t)c * d + j] = (float)rng_normal(&rng);
		unit(mu + (size_t)c * d, d);
		tot += 1.0 / sqrt(c + 1.0);
		cdf[c] = tot;
	}
	for (int c = 0; c < C; c++)
		cdf[c] /= tot;
	float *X = xmalloc(n * d * sizeof(float));
	float *Q = xmalloc(nq * d * sizeof(float));
	double t0 = clock_now();
	draw(X, n, d, mu, cdf, C, sigma, &rng);
	draw(Q, nq, d, mu, cdf, C, sigma, &rng);
	uint32_t *owner = xmalloc(n * sizeof(*owner));
	uint64_t *row = xmalloc(n * sizeof(*row));
	for (size_t i = 0; i < n; i++) {
		owner[i] = (uint32_t)(i % 10007);
		row[i] = i;
	}
	printf("data: n=%zu d=%d nq=%zu k=%zu, mixture of %d unit-sphere "
	    "Gaussians, sigma=%.2f, Zipf-ish weights (%.1f s to generate)\n",
	    n, d, nq, k, C, sigma, clock_now() - t0);

	/* Exact. */
	struct retr *ex, *ivf;
	struct retr_opts o;
	retr_opts_default(&o);
	o.kind = RETR_EXACT;
	if (retr_build(&ex, X, owner, row, n, d, &o) != 0)
		return 1;
	struct retr_hit *gt = xmalloc(nq * k * sizeof(*gt));
	struct retr_hit *res = xmalloc(nq * k * sizeof(*res));
	double te1 = run(ex, Q, nq1, 1, k, 0, res) / nq1;
	double teb = run(ex, Q, nq, bs, k, 0, gt) / nq;
	printf("exact: single %.3f ms/query (%.0f q/s), batch %zu %.3f "
	    "ms/query (%.0f q/s)\n", te1 * 1e3, 1 / te1, bs, teb * 1e3,
	    1 / teb);
	for (size_t q = 0; q < nq1; q++)
		for (size_t i = 0; i < k; i++)
			if (res[q * k + i].row != gt[q * k + i].row &&
			    res[q * k + i].score != gt[q * k + i].score) {
				fprintf(stderr, "single/batch mismatch\n");
				return 1;
			}

	/* Merged daemon search, 64 queries. */
	size_t nm;
	t0 = clock_now();
	for (size_t q0 = 0; q0 + bs <= nq; q0 += bs)
		retr_search(ex, Q + q0 * d, bs, k, 3, res, &nm);
	double tm = (clock_now() - t0) / (double)(nq / bs);

	/* IVF. */
	retr_opts_default(&o);
	o.kind = RETR_IVF;
	o.nlist = nlist;
	o.nprobe = nprobe;
	o.train_size = train;
	o.kmeans_iters = iters;
	t0 = clock_now();
	if (retr_build(&ivf, X, owner, row, n, d, &o) != 0)
		return 1;
	double tb = clock_now() - t0;
	nlist = retr_nlist(ivf);
	nprobe = retr_nprobe(ivf);
	printf("ivf: nlist=%u nprobe=%u train=%u iters=%u, build %.1f s\n",
	    nlist, nprobe, train ? train : 32 * nlist, iters ? iters : 10, tb);
	double ti1 = run(ivf, Q, nq, 1, k, 0, res) / nq;
	double rec = recall(res, gt, nq, k);
	double tib = run(ivf, Q, nq, bs, k, 0, res) / nq;
	printf("ivf: single %.3f ms/query (%.0f q/s), batch %zu %.3f "
	    "ms/query (%.0f q/s), recall@%zu %.4f\n", ti1 * 1e3, 1 / ti1, bs,
	    tib * 1e3, 1 / tib, k, rec);
	uint32_t sweep[] = { nprobe / 4, nprobe / 2, nprobe * 2, nprobe * 4 };
	for (size_t i = 0; i < sizeof(sweep) / sizeof(sweep[0]); i++) {
		if (sweep[i] < 1 || sweep[i] > nlist)
			continue;
		double t = run(ivf, Q, nq, 1, k, sweep[i], res) / nq;
		printf("  nprobe %4u: single %.3f ms/query, recall@%zu %.4f, "
		    "speedup vs exact single %.1fx\n", sweep[i], t * 1e3, k,
		    recall(res, gt, nq, k), te1 / t);
	}
	printf("merged search (m=%zu, k=%zu, exclude owner): exact %.1f ms",
	    bs, k, tm * 1e3);
	t0 = clock_now();
	for (size_t q0 = 0; q0 + bs <= nq; q0 += bs)
		retr_search(ivf, Q + q0 * d, bs, k, 3, res, &nm);
	printf(", ivf %.1f ms per call\n",
	    (clock_now() - t0) / (double)(nq / bs) * 1e3);

	printf("RESULT exact_single_ms %.4f\n", te1 * 1e3);
	printf("RESULT exact_batch_ms %.4f\n", teb * 1e3);
	printf("RESULT ivf_single_ms %.4f\n", ti1 * 1e3);
	printf("RESULT ivf_batch_ms %.4f\n", tib * 1e3);
	printf("RESULT ivf_recall %.4f\n", rec);
	printf("RESULT ivf_build_s %.2f\n", tb);

	if (dir != NULL) {
		uint64_t *ids = xmalloc(nq * k * sizeof(*ids));
		for (size_t i = 0; i < nq * k; i++)
			ids[i] = gt[i].row;
		/* faiss IVFFlat gets our centroids, so both scan the
		 * same lists and only the search code differs. */
		float *cen = xmalloc((size_t)nlist * d * sizeof(float));
		if (retr_centroids(ivf, cen) != 0)
			return 1;
		write_raw(dir, "centroids.f32", cen,
		    (size_t)nlist * d * sizeof(float));
		free(cen);
		write_raw(dir, "base.f32", X, n * d * sizeof(float));
		write_raw(dir, "queries.f32", Q, nq * d * sizeof(float));
		write_raw(dir, "gt.u64", ids, nq * k * sizeof(*ids));
		free(ids);
		char meta[256];
		int len = snprintf(meta, sizeof(meta), "%zu %d %zu %zu %u %u "
		    "%zu %zu\n", n, d, nq, k, nlist, nprobe, nq1, bs);
		write_raw(dir, "meta.txt", meta, (size_t)len);
	}
	retr_free(ivf);
	retr_free(ex);
	free(res);
	free(gt);
	free(row);
	free(owner);
	free(Q);
	free(X);
	free(cdf);
	free(mu);
	return 0;
}
