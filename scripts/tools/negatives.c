/*
 * negatives: the ranking task's negative sampling (see negatives.h).
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "scripts/tools/negatives.h"
#include "shared/rng.h"
#include "shared/xmalloc.h"

/* ------------------------------------------------------------------------ */
/* ranking negatives                                                        */

static int
u32_cmp(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

	return x < y ? -1 : x > y;
}

void
dataset_rated_build(struct dataset_rated *r, const struct dataset *ds)
{
	uint32_t nu = dataset_max_user(ds);
	size_t *pos;

	memset(r, 0, sizeof(*r));
	r->n_users = nu;
	r->n_items = ds->n_items;
	r->off = xcalloc((size_t)nu + 1, sizeof(*r->off));
	r->items = xmalloc((ds->n ? ds->n : 1) * sizeof(*r->items));
	for (size_t i = 0; i < ds->n; i++)
		r->off[ds->s[i].user + 1]++;
	for (uint32_t u = 0; u < nu; u++)
		r->off[u + 1] += r->off[u];
	pos = xmalloc(((size_t)nu + 1) * sizeof(*pos));
	memcpy(pos, r->off, ((size_t)nu + 1) * sizeof(*pos));
	for (size_t i = 0; i < ds->n; i++)
		r->items[pos[ds->s[i].user]++] = ds->s[i].item;
	free(pos);
	/* Sort and dedupe each user's list, compacting in place. */
	{
		size_t w = 0, a = 0;

		for (uint32_t u = 0; u < nu; u++) {
			size_t b = r->off[u + 1], start = w;

			qsort(r->items + a, b - a, sizeof(*r->items),
			    u32_cmp);
			for (size_t i = a; i < b; i++)
				if (w == start || r->items[w - 1] !=
				    r->items[i])
					r->items[w++] = r->items[i];
			r->off[u] = start;
			a = b;
		}
		r->off[nu] = w;
	}
}

void
dataset_rated_fini(struct dataset_rated *r)
{
	free(r->off);
	free(r->items);
	memset(r, 0, sizeof(*r));
}

int
dataset_rated_has(const struct dataset_rated *r, uint32_t u, uint32_t item)
{
	size_t lo, hi;

	if (u >= r->n_users)
		return 0;
	lo = r->off[u];
	hi = r->off[u + 1];
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (r->items[mid] < item)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo < r->off[u + 1] && r->items[lo] == item;
}

int
dataset_negatives(const struct dataset_rated *r, uint32_t u, uint32_t n,
    uint64_t seed, uint32_t *out)
{
	struct rng g;
	uint64_t sm = seed ^ ((uint64_t)u * 0x9e3779b97f4a7c15ULL);
	size_t n_rated, n_un;
	uint32_t k = 0;

	if (u >= r->n_users)
		return -EINVAL;
	n_rated = r->off[u + 1] - r->off[u];
	n_un = r->n_items - n_rated;
	if (n > n_un)
		return -ENOSPC;
	rng_seed(&g, rng_splitmix(&sm));
	if (n_un >= 4 * (size_t)n && 2 * n_rated <= r->n_items) {
		/* Rejection: each draw is accepted with p >= 3/8. */
		while (k < n) {
			uint32_t it = rng_below(&g, r->n_items), j;

			if (dataset_rated_has(r, u, it))
				continue;
			for (j = 0; j < k && out[j] != it; j++)
				;
			if (j == k)
				out[k++] = it;
		}
		return 0;
	}
	/* Dense case: enumerate the unrated items, partial Fisher-Yates. */
	{
		uint32_t *un = xmalloc((n_un ? n_un : 1) * sizeof(*un));
		size_t m = 0, p = r->off[u];

		for (uint32_t it = 0; it < r->n_items; it++) {
			if (p < r->off[u + 1] && r->items[p] == it) {
				p++;
				continue;
			}
			un[m++] = it;
		}
		for (k = 0; k < n; k++) {
			uint32_t j = k + rng_below(&g, (uint32_t)(m - k));
			uint32_t t = un[j];

			un[j] = un[k];
			un[k] = t;
			out[k] = t;
		}
		free(un);
	}
	return 0;
}
