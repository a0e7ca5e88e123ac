/*
 * fedsel: the aggregation and the choice rule of federated selection
 * (fedsel.h). A round is one base version's reports; two are kept, so a
 * choice made on version v still answers devices while v+1's reports
 * arrive. Everything is bounded: FEDSEL_METHODS methods per round, one
 * report per device per round, opts.max_devices reporters per round.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cloudd/fedsel.h"
#include "shared/xmalloc.h"

void
fedsel_init(struct fedsel *fs, const struct fedsel_opts *o)
{
	memset(fs, 0, sizeof(*fs));
	fs->o = *o;
}

static void
round_clear(struct fedsel_round *r)
{
	free(r->seen);
	memset(r, 0, sizeof(*r));
}

void
fedsel_fini(struct fedsel *fs)
{
	for (int i = 0; i < FEDSEL_ROUNDS; i++)
		round_clear(&fs->r[i]);
}

static int
name_ok(const char *s)
{
	size_t n = strlen(s);

	if (n == 0 || n >= FEDSEL_NAME)
		return 0;
	for (size_t i = 0; i < n; i++)
		if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' &&
		    s[i] <= '9') || s[i] == '-' || s[i] == '_'))
			return 0;
	return 1;
}

#define BAD(...) do { snprintf(err, errlen, __VA_ARGS__); \
	return DCCL__ERROR_CODE__E_BAD_REQUEST; } while (0)

int
fedsel_check(const Dccl__SelectReport *q, char *err, size_t errlen)
{
	if (q->n_methods == 0)
		BAD("a report without methods");
	if (q->n_methods > FEDSEL_METHODS) {
		snprintf(err, errlen, "%zu methods (at most %d)", q->n_methods,
		    FEDSEL_METHODS);
		return DCCL__ERROR_CODE__E_TOO_LARGE;
	}
	if (q->base_version == 0)
		BAD("base_version 0");
	for (size_t i = 0; i < q->n_methods; i++) {
		const Dccl__GridReport *g = q->methods[i];
		double n = g->n, lim = FEDSEL_MAX_LOSS * g->n;

		if (g->method == NULL || !name_ok(g->method))
			BAD("method %zu: bad name", i);
		for (size_t j = 0; j < i; j++)
			if (strcmp(q->methods[j]->method, g->method) == 0)
				BAD("method %s twice", g->method);
		if (g->n_lr != FEDSEL_LR || g->n_steps != FEDSEL_ST ||
		    g->n_gain_sum != FEDSEL_GRID ||
		    g->n_diff_sq != FEDSEL_GRID ||
		    g->n_rank_net != FEDSEL_GRID)
			BAD("%s: the grid is %d learning rates x %d step "
			    "counts, %d points", g->method, FEDSEL_LR,
			    FEDSEL_ST, FEDSEL_GRID);
		if (g->n == 0 || g->n > FEDSEL_MAX_N)
			BAD("%s: n %u out of range", g->method, g->n);
		if ((double)g->pairs > n * n / 4 + 1)
			BAD("%s: more pairs than n samples have", g->method);
		for (int k = 0; k < FEDSEL_LR; k++)
			if (!(isfinite(g->lr[k]) && g->lr[k] > 0 &&
			    g->lr[k] <= 100))
				BAD("%s: learning rate out of range",
				    g->method);
		for (int k = 0; k < FEDSEL_ST; k++)
			if (g->steps[k] == 0 || g->steps[k] > 1000000)
				BAD("%s: step count out of range", g->method);
		for (int k = 0; k < FEDSEL_GRID; k++) {
			if (!isfinite(g->gain_sum[k]) ||
			    !isfinite(g->diff_sq[k]) ||
			    !isfinite(g->rank_net[k]))
				BAD("%s: a non-finite sum", g->method);
			if (fabs(g->gain_sum[k]) > lim || g->diff_sq[k] < 0 ||
			    g->diff_sq[k] > 4 * lim * FEDSEL_MAX_LOSS ||
			    fabs(g->rank_net[k]) > (double)g->pairs)
				BAD("%s: a sum out of range", g->method);
		}
		if (g->diff_sq[FEDSEL_DEFAULT] != 0)
			BAD("%s: the default point differs from itself",
			    g->method);
	}
	return 0;
}

/* FNV-1a 64 of a device id; 0 is the empty slot, so never returned. */
static uint64_t
id_hash(const char *s)
{
	uint64_t h = 1469598103934665603ull;

	for (; *s; s++) {
		h ^= (unsigned char)*s;
		h *= 1099511628211ull;
	}
	return h == 0 ? 1 : h;
}

/* Slot of h in r's set: where it is or would go. */
static size_t
seen_slot(const struct fedsel_round *r, uint64_t h)
{
	size_t i = (size_t)(h % r->cap);

	while (r->seen[i] != 0 && r->seen[i] != h)
		i = (i + 1) % r->cap;
	return i;
}

/* Room for one more reporter (load at most 1/2); -1 when full. */
static int
seen_reserve(struct fedsel_round *r, int64_t max)
{
	uint64_t *old = r->seen;
	size_t oc = r->cap;

	if ((int64_t)r->nseen >= max)
		return -1;
	if (r->cap != 0 && 2 * (r->nseen + 1) <= r->cap)
		return 0;
	r->cap = oc == 0 ? 64 : 2 * oc;
	r->seen = xcalloc(r->cap, sizeof(uint64_t));
	for (size_t i = 0; i < oc; i++)
		if (old[i] != 0)
			r->seen[seen_slot(r, old[i])] = old[i];
	free(old);
	return 0;
}

static struct fedsel_agg *
agg_find(struct fedsel_round *r, const char *method)
{
	for (int i = 0; i < r->n; i++)
		if (strcmp(r->m[i].method, method) == 0)
			return &r->m[i];
	return NULL;
}

static int
same_grid(const struct fedsel_agg *a, const Dccl__GridReport *g)
{
	for (int k = 0; k < FEDSEL_LR; k++)
		if (a->lr[k] != g->lr[k])
			return 0;
	for (int k = 0; k < FEDSEL_ST; k++)
		if (a->steps[k] != g->steps[k])
			return 0;
	return 1;
}

int
fedsel_add(struct fedsel *fs, const char *device,
    const Dccl__SelectReport *q, int *dup, char *err, size_t errlen)
{
	struct fedsel_round *r = NULL;
	uint64_t h = id_hash(device);
	int code, fresh = 0;

	*dup = 0;
	if ((code = fedsel_check(q, err, errlen)) != 0)
		return code;
	for (int i = 0; i < FEDSEL_ROUNDS; i++)
		if (fs->r[i].version == q->base_version)
			r = &fs->r[i];
	if (r == NULL && q->base_version < fs->r[0].version) {
		snprintf(err, errlen, "base v%llu is older than the rounds "
		    "kept", (unsigned long long)q->base_version);
		return DCCL__ERROR_CODE__E_STALE;
	}
	if (r == NULL)
		fresh = 1;	/* a new round, once the report is known good */
	/* Everything is checked before anything changes. */
	if (!fresh) {
		if (r->cap != 0 && r->seen[seen_slot(r, h)] == h) {
			*dup = 1;
			return 0;
		}
		int extra = 0;
		for (size_t i = 0; i < q->n_methods; i++) {
			const struct fedsel_agg *a = agg_find(r,
			    q->methods[i]->method);
			if (a == NULL)
				extra++;
			else if (!same_grid(a, q->methods[i]))
				BAD("%s: a grid other than this round's",
				    a->method);
		}
		if (r->n + extra > FEDSEL_METHODS) {
			snprintf(err, errlen, "the round's table holds %d "
			    "methods", FEDSEL_METHODS);
			return DCCL__ERROR_CODE__E_TOO_LARGE;
		}
		if (seen_reserve(r, fs->o.max_devices) != 0) {
			snprintf(err, errlen, "%zu devices reported on this "
			    "round already", r->nseen);
			return DCCL__ERROR_CODE__E_BUSY;
		}
	} else {
		if (fs->o.max_devices < 1) {
			snprintf(err, errlen, "reports are off");
			return DCCL__ERROR_CODE__E_BUSY;
		}
		round_clear(&fs->r[FEDSEL_ROUNDS - 1]);
		memmove(&fs->r[1], &fs->r[0],
		    (FEDSEL_ROUNDS - 1) * sizeof(fs->r[0]));
		memset(&fs->r[0], 0, sizeof(fs->r[0]));
		r = &fs->r[0];
		r->version = q->base_version;
		(void)seen_reserve(r, fs->o.max_devices);
	}
	r->seen[seen_slot(r, h)] = h;
	r->nseen++;
	for (size_t i = 0; i < q->n_methods; i++) {
		const Dccl__GridReport *g = q->methods[i];
		struct fedsel_agg *a = agg_find(r, g->method);

		if (a == NULL) {
			a = &r->m[r->n++];
			memset(a, 0, sizeof(*a));
			snprintf(a->method, sizeof(a->method), "%s",
			    g->method);
			memcpy(a->lr, g->lr, sizeof(a->lr));
			memcpy(a->steps, g->steps, sizeof(a->steps));
		}
		a->devices++;
		a->n += g->n;
		a->pairs += g->pairs;
		for (int k = 0; k < FEDSEL_GRID; k++) {
			a->gain[k] += g->gain_sum[k];
			a->dsq[k] += g->diff_sq[k];
			a->rank[k] += g->rank_net[k];
		}
	}
	return 0;
}

void
fedsel_choose(const struct fedsel_agg *a, const struct fedsel_opts *o,
    struct fedsel_choice *c)
{
	double n = (double)a->n;
	int best = FEDSEL_DEFAULT;

	memset(c, 0, sizeof(*c));
	if (a->n > 0)
		c->default_gain = a->gain[FEDSEL_DEFAULT] / n;
	if ((int64_t)a->devices >= o->min_devices && (int64_t)a->n >= o->min_n &&
	    a->n > 0)
		for (int s = 0; s < FEDSEL_GRID; s++) {
			double d = (a->gain[s] - a->gain[FEDSEL_DEFAULT]) / n;
			double var = a->dsq[s] / n - d * d;
			double se = sqrt((var > 0 ? var : 0) / n);

			if (s == FEDSEL_DEFAULT || !(d - o->z * se > 0))
				continue;
			if (best == FEDSEL_DEFAULT || a->gain[s] > a->gain[best]) {
				best = s;
				c->se = se;
			}
		}
	c->point = best;
	c->by_evidence = best != FEDSEL_DEFAULT;
	c->lr = a->lr[best / FEDSEL_ST];
	c->steps = a->steps[best % FEDSEL_ST];
	c->mean_gain = a->n > 0 ? a->gain[best] / n : 0;
}

int
fedsel_lookup(const struct fedsel *fs, const char *method,
    struct fedsel_choice *c, uint64_t *round, const struct fedsel_agg **agg)
{
	const struct fedsel_agg *first = NULL;
	uint64_t v0 = 0;

	for (int i = 0; i < FEDSEL_ROUNDS; i++) {
		const struct fedsel_round *r = &fs->r[i];
		for (int j = 0; r->version != 0 && j < r->n; j++) {
			const struct fedsel_agg *a = &r->m[j];
			if (strcmp(a->method, method) != 0)
				continue;
			if (first == NULL) {
				first = a;
				v0 = r->version;
			}
			if ((int64_t)a->devices >= fs->o.min_devices &&
			    (int64_t)a->n >= fs->o.min_n) {
				fedsel_choose(a, &fs->o, c);
				if (round != NULL)
					*round = r->version;
				if (agg != NULL)
					*agg = a;
				return 0;
			}
		}
	}
	if (first == NULL)
		return -1;
	fedsel_choose(first, &fs->o, c);
	if (round != NULL)
		*round = v0;
	if (agg != NULL)
		*agg = first;
	return 0;
}
