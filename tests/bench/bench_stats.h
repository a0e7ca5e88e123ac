/*
 * bench_stats: the order statistics the benchmarks quote (a median of
 * runs or of pairwise ratios). Header-only, as each program of
 * tests/bench is one source file.
 */
#ifndef TESTS_BENCH_STATS_H
#define TESTS_BENCH_STATS_H

#include <stdlib.h>
#include <string.h>

#include "shared/xmalloc.h"

/* qsort's comparison of doubles, ascending. */
static inline int
bench_cmp_dbl(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

/* The median of v (n > 0); v stays as it was. */
static inline double
bench_median(const double *v, int n)
{
	double *s = xmalloc((size_t)n * sizeof(*s)), m;

	memcpy(s, v, (size_t)n * sizeof(*s));
	qsort(s, (size_t)n, sizeof(*s), bench_cmp_dbl);
	m = n % 2 ? s[n / 2] : (s[n / 2 - 1] + s[n / 2]) / 2;
	free(s);
	return m;
}

#endif
