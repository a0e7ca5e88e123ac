/*
 * fedsel: the aggregation and the choice rules of federated selection
 * (fedsel.h). A round is one base version's reports; two are kept, so a
 * choice made on version v still answers devices while v+1's reports
 * arrive. Within a round the sums are kept per (method, group of users,
 * pair weight), and per (method, group) the evidence between the pair
 * weights. Everything is bounded: FEDSEL_METHODS methods per group and
 * round, FEDSEL_PW weights, one report per device per round,
 * opts.max_devices reporters per round.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cloudd/fedsel.h"
#include "shared/numlist.h"
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
		if (!(isfinite(g->pair_weight) && g->pair_weight >= 0 &&
		    g->pair_weight <= FEDSEL_MAX_PW))
			BAD("%s: pair weight out of range", g->method);
		for (size_t j = 0; j < i; j++)
			if (strcmp(q->methods[j]->method, g->method) == 0 &&
			    q->methods[j]->pair_weight == g->pair_weight)
				BAD("method %s twice at pair weight %g",
				    g->method, g->pair_weight);
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
		/* One method's grids at several weights: one grid. */
		for (size_t j = 0; j < i; j++) {
			const Dccl__GridReport *h = q->methods[j];
			if (strcmp(h->method, g->method) != 0)
				continue;
			if (memcmp(h->lr, g->lr, sizeof(double) * FEDSEL_LR) ||
			    memcmp(h->steps, g->steps, sizeof(uint32_t) *
			    FEDSEL_ST))
				BAD("%s: other grids at other pair weights",
				    g->method);
		}
	}
	return 0;
}

int
fedsel_pw_parse(const char *s, struct fedsel_opts *o, char *err,
    size_t errlen)
{
	return numlist_parse(s, o->pw, FEDSEL_PW, 0, FEDSEL_MAX_PW, &o->npw,
	    err, errlen);
}

/* Candidate index of pair weight w, or -1 (npw 0: the one weight 0). */
static int
pw_index(const struct fedsel_opts *o, double w)
{
	if (o->npw == 0)
		return w == 0 ? 0 : -1;
	for (int k = 0; k < o->npw; k++)
		if (o->pw[k] == w)
			return k;
	return -1;
}

static int
npw_of(const struct fedsel_opts *o)
{
	return o->npw > 0 ? o->npw : 1;
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

static struct fedsel_meth *
meth_find(struct fedsel_round *r, const char *method, int group)
{
	for (int i = 0; i < r->n; i++)
		if (r->m[i].group == group &&
		    strcmp(r->m[i].method, method) == 0)
			return &r->m[i];
	return NULL;
}

/* The round's grid of method (any group, any weight), or NULL. */
static const struct fedsel_agg *
round_grid(const struct fedsel_round *r, const char *method)
{
	for (int i = 0; i < r->n; i++)
		if (strcmp(r->m[i].method, method) == 0)
			for (int k = 0; k < FEDSEL_PW; k++)
				if (r->m[i].w[k].devices > 0)
					return &r->m[i].w[k];
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

/* Is q's grid i the first of its method in q? */
static int
first_of(const Dccl__SelectReport *q, size_t i)
{
	for (size_t j = 0; j < i; j++)
		if (strcmp(q->methods[j]->method, q->methods[i]->method) == 0)
			return 0;
	return 1;
}

/*
 * The net pairs ordered better at the device's own CV point: the grid
 * point of the largest gain sum, the lowest index on ties (as
 * deviced/learn.c's cv_select picks it).
 */
static double
own_rank(const Dccl__GridReport *g)
{
	int b = 0;

	for (int s = 1; s < FEDSEL_GRID; s++)
		if (g->gain_sum[s] > g->gain_sum[b])
			b = s;
	return g->rank_net[b];
}

/*
 * The pair-weight evidence of method's grids in q, when q has it at
 * every candidate weight (else nothing).
 */
static void
add_pwev(struct fedsel_pwev *e, const struct fedsel_opts *o,
    const Dccl__SelectReport *q, const char *method)
{
	const Dccl__GridReport *by[FEDSEL_PW] = { NULL };
	int np = npw_of(o);
	double r0;

	for (size_t i = 0; i < q->n_methods; i++)
		if (strcmp(q->methods[i]->method, method) == 0)
			by[pw_index(o, q->methods[i]->pair_weight)] =
			    q->methods[i];
	for (int k = 0; k < np; k++)
		if (by[k] == NULL)
			return;
	r0 = own_rank(by[0]);
	e->devices++;
	e->n += by[0]->n;
	e->pairs += by[0]->pairs;
	for (int k = 0; k < np; k++) {
		double d = own_rank(by[k]) - r0;
		e->own[k] += own_rank(by[k]);
		e->dsq[k] += d * d;
	}
}

int
fedsel_add(struct fedsel *fs, const char *device, int group,
    const Dccl__SelectReport *q, int *dup, char *err, size_t errlen)
{
	struct fedsel_round *r = NULL;
	uint64_t h = id_hash(device);
	int code, fresh = 0;

	*dup = 0;
	if (group < 0 || group >= FEDSEL_GROUPS)
		group = FEDSEL_WARM;
	if ((code = fedsel_check(q, err, errlen)) != 0)
		return code;
	/* Every weight a candidate; a non-default one beside the default. */
	for (size_t i = 0; i < q->n_methods; i++) {
		const Dccl__GridReport *g = q->methods[i];
		int k = pw_index(&fs->o, g->pair_weight), have0 = 0;

		if (k < 0)
			BAD("%s: pair weight %g is not a candidate "
			    "(fedsel.pair-weights)", g->method,
			    g->pair_weight);
		for (size_t j = 0; k > 0 && j < q->n_methods; j++)
			have0 |= strcmp(q->methods[j]->method,
			    g->method) == 0 && pw_index(&fs->o,
			    q->methods[j]->pair_weight) == 0;
		if (k > 0 && !have0)
			BAD("%s: pair weight %g without the default weight's "
			    "grid", g->method, g->pair_weight);
	}
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
		int extra = 0, have = 0;
		if (r->cap != 0 && r->seen[seen_slot(r, h)] == h) {
			*dup = 1;
			return 0;
		}
		for (size_t i = 0; i < q->n_methods; i++) {
			const Dccl__GridReport *g = q->methods[i];
			const struct fedsel_agg *a = round_grid(r, g->method);
			if (a != NULL && !same_grid(a, g))
				BAD("%s: a grid other than this round's",
				    g->method);
			if (first_of(q, i) && meth_find(r, g->method,
			    group) == NULL)
				extra++;
		}
		for (int i = 0; i < r->n; i++)
			have += r->m[i].group == group;
		if (have + extra > FEDSEL_METHODS) {
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
		struct fedsel_meth *m = meth_find(r, g->method, group);
		struct fedsel_agg *a;

		if (m == NULL) {
			m = &r->m[r->n++];
			memset(m, 0, sizeof(*m));
			snprintf(m->method, sizeof(m->method), "%s",
			    g->method);
			m->group = group;
		}
		a = &m->w[pw_index(&fs->o, g->pair_weight)];
		if (a->devices == 0) {
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
		if (first_of(q, i))
			add_pwev(&m->ev, &fs->o, q, g->method);
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
fedsel_choose_pw(const struct fedsel_pwev *e, const struct fedsel_opts *o,
    double *se)
{
	double D = e->devices;
	int best = 0;

	if (se != NULL)
		*se = 0;
	if (o->npw < 2 || e->devices == 0 ||
	    (int64_t)e->devices < o->min_devices || (int64_t)e->n < o->min_n)
		return 0;
	for (int k = 1; k < o->npw; k++) {
		double d = e->own[k] - e->own[0];
		double var = e->dsq[k] - d * d / D;
		double s = sqrt(var > 0 ? var : 0);

		if (!(d - o->z * s > 0))
			continue;
		if (best == 0 || e->own[k] > e->own[best]) {
			best = k;
			if (se != NULL)
				*se = s;
		}
	}
	return best;
}

static void
agg_plus(struct fedsel_agg *a, const struct fedsel_agg *b)
{
	if (b->devices == 0)
		return;
	if (a->devices == 0) {
		*a = *b;
		return;
	}
	a->devices += b->devices;
	a->n += b->n;
	a->pairs += b->pairs;
	for (int k = 0; k < FEDSEL_GRID; k++) {
		a->gain[k] += b->gain[k];
		a->dsq[k] += b->dsq[k];
		a->rank[k] += b->rank[k];
	}
}

/* method's sums in r for group (FEDSEL_ALL: both) into *m; 0 if none. */
static int
meth_pool(const struct fedsel_round *r, const char *method, int group,
    struct fedsel_meth *m)
{
	int found = 0;

	memset(m, 0, sizeof(*m));
	snprintf(m->method, sizeof(m->method), "%s", method);
	m->group = group;
	for (int i = 0; r->version != 0 && i < r->n; i++) {
		const struct fedsel_meth *x = &r->m[i];
		if (strcmp(x->method, method) != 0 ||
		    (group != FEDSEL_ALL && x->group != group))
			continue;
		found = 1;
		for (int k = 0; k < FEDSEL_PW; k++)
			agg_plus(&m->w[k], &x->w[k]);
		m->ev.devices += x->ev.devices;
		m->ev.n += x->ev.n;
		m->ev.pairs += x->ev.pairs;
		for (int k = 0; k < FEDSEL_PW; k++) {
			m->ev.own[k] += x->ev.own[k];
			m->ev.dsq[k] += x->ev.dsq[k];
		}
	}
	return found;
}

static int
enough(const struct fedsel_meth *m, const struct fedsel_opts *o)
{
	return (int64_t)m->w[0].devices >= o->min_devices &&
	    (int64_t)m->w[0].n >= o->min_n;
}

static void
decide(const struct fedsel_meth *m, const struct fedsel_opts *o,
    struct fedsel_choice *c, struct fedsel_agg *agg)
{
	double se;
	int k = fedsel_choose_pw(&m->ev, o, &se);

	fedsel_choose(&m->w[k], o, c);
	c->pw = k;
	c->pair_weight = o->npw > 0 ? o->pw[k] : 0;
	c->pw_by_evidence = k != 0;
	c->pw_se = se;
	c->group = m->group;
	c->ev = m->ev;
	if (agg != NULL)
		*agg = m->w[k];
}

int
fedsel_lookup(const struct fedsel *fs, const char *method, int group,
    struct fedsel_choice *c, uint64_t *round, struct fedsel_agg *agg)
{
	struct fedsel_meth *g = xmalloc(sizeof(*g)), *first = NULL;
	uint64_t v = 0;

	for (int i = 0; i < FEDSEL_ROUNDS; i++) {
		const struct fedsel_round *r = &fs->r[i];
		if (r->version == 0)
			continue;
		if (group != FEDSEL_ALL && meth_pool(r, method, group, g) &&
		    enough(g, &fs->o)) {
			v = r->version;
			goto found;
		}
		if (!meth_pool(r, method, FEDSEL_ALL, g))
			continue;
		if (enough(g, &fs->o)) {
			v = r->version;
			goto found;
		}
		if (first == NULL) {
			first = xmalloc(sizeof(*first));
			*first = *g;
			v = r->version;
		}
	}
	if (first == NULL) {
		free(g);
		return -1;
	}
	*g = *first;
found:
	decide(g, &fs->o, c, agg);
	if (round != NULL)
		*round = v;
	free(first);
	free(g);
	return 0;
}
