/*
 * evalagg_stats: the evaluation's numbers (evalagg.h): per-method metrics
 * pooled over runs, the paired per-user bootstrap against the baseline,
 * and Holm's adjustment over a table. Every metric is computed by
 * shared/ml/metrics.c.
 */
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "scripts/tools/evalagg.h"
#include "scripts/tools/evalagg_int.h"
#include "shared/rng.h"
#include "shared/xmalloc.h"

/* --- metrics ------------------------------------------------------------- */

struct tail_key {
	uint32_t count, user;
};

static int
tail_cmp(const void *a, const void *b)
{
	const struct tail_key *x = a, *y = b;

	if (x->count != y->count)
		return x->count < y->count ? -1 : 1;
	return x->user < y->user ? -1 : x->user > y->user;
}

size_t
evalagg_tail(const uint32_t *count, const uint8_t *present, uint32_t n_users,
    double frac, uint8_t *tail, uint32_t *max_count)
{
	struct tail_key *k = xmalloc((n_users ? n_users : 1) * sizeof(*k));
	size_t n = 0, want;

	memset(tail, 0, n_users);
	if (max_count != NULL)
		*max_count = 0;
	for (uint32_t u = 0; u < n_users; u++)
		if (present[u] && count[u] != UINT32_MAX) {
			k[n].count = count[u];
			k[n].user = u;
			n++;
		}
	qsort(k, n, sizeof(*k), tail_cmp);
	want = (size_t)floor(frac * (double)n + 0.5);
	if (want > n)
		want = n;
	for (size_t i = 0; i < want; i++)
		tail[k[i].user] = 1;
	if (max_count != NULL && want > 0)
		*max_count = k[want - 1].count;
	free(k);
	return want;
}

void
evalagg_stats_fini(struct evalagg_stats *st)
{
	free(st->auc);
	free(st->w);
	free(st->hr);
	free(st->ndcg);
	free(st->npos);
	free(st->ll);
	free(st->nrow);
	memset(st, 0, sizeof(*st));
}

/*
 * Ranking: rows grouped by user (counting sort, stable: file order within
 * a user); every positive is ranked against its block of negatives (the
 * negatives right before it; after another positive, the last block).
 */
static void
ranking_stats(struct evalagg_stats *st, const struct evalagg_rows *rows,
    uint32_t n_users, int k)
{
	size_t *off = xcalloc((size_t)n_users + 1, sizeof(*off));
	size_t *ord = xmalloc((rows->n ? rows->n : 1) * sizeof(*ord));
	size_t *fill = xmalloc(((size_t)n_users + 1) * sizeof(*fill));
	float *neg = xmalloc((rows->n ? rows->n : 1) * sizeof(*neg));
	double hr = 0, ndcg = 0;

	for (size_t i = 0; i < rows->n; i++)
		off[rows->user[i] + 1]++;
	for (uint32_t u = 0; u < n_users; u++)
		off[u + 1] += off[u];
	memcpy(fill, off, ((size_t)n_users + 1) * sizeof(*fill));
	for (size_t i = 0; i < rows->n; i++)
		ord[fill[rows->user[i]]++] = i;
	for (uint32_t u = 0; u < n_users; u++) {
		size_t nn = 0, np = 0;
		double uh = 0, un = 0;
		int after_pos = 1;

		for (size_t j = off[u]; j < off[u + 1]; j++) {
			size_t i = ord[j], rk;

			if (!(rows->label[i] >= 0.5f)) {
				if (after_pos)	/* a new block begins */
					nn = 0;
				neg[nn++] = rows->score[i];
				after_pos = 0;
				continue;
			}
			after_pos = 1;
			if (nn == 0) {
				st->n_unranked++;
				continue;
			}
			rk = metrics_rank(rows->score[i], neg, nn);
			uh += metrics_hr_at(rk, (size_t)k);
			un += metrics_ndcg_at(rk, (size_t)k);
			np++;
		}
		if (np > 0) {
			st->hr[u] = uh / (double)np;
			st->ndcg[u] = un / (double)np;
			st->npos[u] = (double)np;
			hr += uh;
			ndcg += un;
			st->n_ranked += np;
		}
	}
	if (st->n_ranked > 0) {
		st->v[EVALAGG_HR] = hr / (double)st->n_ranked;
		st->v[EVALAGG_NDCG] = ndcg / (double)st->n_ranked;
	}
	free(off);
	free(ord);
	free(fill);
	free(neg);
}

void
evalagg_stats_compute(struct evalagg_stats *st,
    const struct evalagg_rows *rows, uint32_t n_users,
    const struct evalagg_stats *base, const uint8_t *tail,
    const struct evalagg_opts *o)
{
	size_t n = rows->n, nb = 0, nw = 0;
	uint8_t *seen;
	double num = 0, den = 0;
	int prob = 1;

	memset(st, 0, sizeof(*st));
	for (int i = 0; i < EVALAGG_N_METRICS; i++)
		st->v[i] = NAN;
	st->n_users = n_users;
	st->n_rows = n;
	st->auc = xmalloc((n_users ? n_users : 1) * sizeof(*st->auc));
	st->w = xmalloc((n_users ? n_users : 1) * sizeof(*st->w));
	st->hr = xmalloc((n_users ? n_users : 1) * sizeof(*st->hr));
	st->ndcg = xmalloc((n_users ? n_users : 1) * sizeof(*st->ndcg));
	st->npos = xcalloc(n_users ? n_users : 1, sizeof(*st->npos));
	st->ll = xcalloc(n_users ? n_users : 1, sizeof(*st->ll));
	st->nrow = xcalloc(n_users ? n_users : 1, sizeof(*st->nrow));
	for (uint32_t u = 0; u < n_users; u++) {
		st->auc[u] = st->hr[u] = st->ndcg[u] = NAN;
		st->w[u] = 0;
	}
	seen = xcalloc(n_users ? n_users : 1, 1);
	for (size_t i = 0; i < n; i++) {
		if (rows->user[i] < n_users && !seen[rows->user[i]]) {
			seen[rows->user[i]] = 1;
			st->n_present++;
		}
		if (!(rows->score[i] >= 0 && rows->score[i] <= 1))
			prob = 0;
	}
	free(seen);
	if (n == 0)
		return;
	st->v[EVALAGG_GAUC] = metrics_gauc(rows->score, rows->label,
	    rows->user, n, n_users, &st->n_auc_users, st->auc, st->w);
	st->v[EVALAGG_AUC] = metrics_auc(rows->score, rows->label, n);
	if (prob)
		st->v[EVALAGG_LOGLOSS] = metrics_logloss(rows->score,
		    rows->label, n);
	/* Per-user logloss, with metrics_logloss's clipping of p. */
	for (size_t i = 0; i < n; i++) {
		uint32_t u = rows->user[i];
		double q = rows->score[i], y = rows->label[i];

		if (u >= n_users)
			continue;
		q = q < METRICS_EPS ? METRICS_EPS : q > 1 - METRICS_EPS ?
		    1 - METRICS_EPS : q;
		st->ll[u] -= y * log(q) + (1 - y) * log(1 - q);
		st->nrow[u]++;
	}
	for (uint32_t u = 0; u < n_users; u++)
		st->ll[u] = prob && st->nrow[u] > 0 ? st->ll[u] / st->nrow[u] :
		    NAN;
	for (uint32_t u = 0; tail != NULL && u < n_users; u++)
		if (tail[u] && !isnan(st->auc[u])) {
			num += st->w[u] * st->auc[u];
			den += st->w[u];
			st->n_lt_users++;
		}
	if (den > 0)
		st->v[EVALAGG_LT_GAUC] = num / den;
	if (base != NULL) {
		for (uint32_t u = 0; u < n_users && u < base->n_users; u++) {
			if (isnan(st->auc[u]) || isnan(base->auc[u]))
				continue;
			st->n_cmp++;
			nb += st->auc[u] > base->auc[u];
			nw += st->auc[u] < base->auc[u];
		}
		if (st->n_cmp > 0) {
			st->v[EVALAGG_IMPROVED] = (double)nb /
			    (double)st->n_cmp;
			st->v[EVALAGG_WORSE] = (double)nw / (double)st->n_cmp;
		}
	}
	if (o->task == EVALAGG_RANKING)
		ranking_stats(st, rows, n_users, o->k);
}

/* Names of all methods over the runs in output order (baseline first). */
static char **
method_order(struct evalagg_run *runs, size_t n_runs, const char *baseline,
    const char *const *order, size_t n_order, size_t *n_out)
{
	char **all = NULL, **out;
	size_t n = 0, m = 0;

	for (size_t r = 0; r < n_runs; r++)
		for (size_t i = 0; i < runs[r].n_m; i++) {
			size_t j;

			for (j = 0; j < n; j++)
				if (strcmp(all[j], runs[r].m[i].method) == 0)
					break;
			if (j < n ||
			    strcmp(runs[r].m[i].method, baseline) == 0)
				continue;
			all = xreallocarray(all, n + 1, sizeof(*all));
			all[n++] = runs[r].m[i].method;
		}
	if (n > 0)	/* only the baseline: all is NULL */
		qsort(all, n, sizeof(*all), evalagg_str_cmp);
	out = xmalloc((n + 1) * sizeof(*out));
	out[m++] = (char *)baseline;
	/* First the named ones, in the given order, then the rest. */
	for (size_t k = 0; k < n_order; k++)
		for (size_t j = 0; j < n; j++)
			if (all[j] != NULL && strcmp(all[j], order[k]) == 0) {
				out[m++] = all[j];
				all[j] = NULL;
			}
	for (size_t j = 0; j < n; j++)
		if (all[j] != NULL)
			out[m++] = all[j];
	free(all);
	*n_out = m;
	return out;
}

/* Per-user sums over runs for one paired comparison. */
struct pair_acc {
	double	*a, *b, *w, *cnt;	/* n_users each */
};

static void
pair_init(struct pair_acc *p, uint32_t n)
{
	p->a = xcalloc(n ? n : 1, sizeof(double));
	p->b = xcalloc(n ? n : 1, sizeof(double));
	p->w = xcalloc(n ? n : 1, sizeof(double));
	p->cnt = xcalloc(n ? n : 1, sizeof(double));
}

static void
pair_fini(struct pair_acc *p)
{
	free(p->a);
	free(p->b);
	free(p->w);
	free(p->cnt);
}

/* Adds users u with mask[u] (mask NULL: all). */
static void
pair_add(struct pair_acc *p, const double *a, const double *b,
    const double *w, uint32_t n, const uint8_t *mask)
{
	for (uint32_t u = 0; u < n; u++) {
		if ((mask != NULL && !mask[u]) || isnan(a[u]) || isnan(b[u]) ||
		    !(w[u] > 0))
			continue;
		p->a[u] += a[u];
		p->b[u] += b[u];
		p->w[u] += w[u];
		p->cnt[u]++;
	}
}

/*
 * Two-sided p-value of the w-weighted mean of a - b from the bootstrap
 * standard error: the resamples of metrics_paired_bootstrap() (same
 * seed, same draws), z = mean / sd of the resampled means.
 */
static double
pair_p(const double *a, const double *b, const double *w, size_t n, int B,
    uint64_t seed)
{
	double *d = xmalloc((n ? n : 1) * sizeof(*d));
	double *dw = xmalloc((n ? n : 1) * sizeof(*dw));
	double sw = 0, sd = 0, mu, s1 = 0, s2 = 0, se, p;
	size_t m = 0;
	struct rng r;

	for (size_t i = 0; i < n; i++) {
		if (isnan(a[i]) || isnan(b[i]) || !(w[i] > 0) || isinf(w[i]))
			continue;
		d[m] = a[i] - b[i];
		dw[m] = w[i];
		sd += w[i] * d[m];
		sw += w[i];
		m++;
	}
	if (m == 0 || m > UINT32_MAX || B < 2) {
		free(d);
		free(dw);
		return NAN;
	}
	mu = sd / sw;
	rng_seed(&r, seed);
	for (int k = 0; k < B; k++) {
		double t = 0, ws = 0;

		for (size_t i = 0; i < m; i++) {
			uint32_t j = rng_below(&r, (uint32_t)m);

			t += dw[j] * d[j];
			ws += dw[j];
		}
		s1 += t / ws;
		s2 += (t / ws) * (t / ws);
	}
	se = sqrt(fmax(0, (s2 - s1 * s1 / B) / (B - 1)));
	if (se > 0)
		p = erfc(fabs(mu) / se / sqrt(2.0));
	else
		p = mu == 0 ? 1 : 0;
	free(d);
	free(dw);
	return p;
}

/* Turns sums into per-user means over runs and bootstraps them. */
static int
pair_ci(struct pair_acc *p, uint32_t n, const struct evalagg_opts *o,
    struct metrics_ci *ci, double *pv)
{
	for (uint32_t u = 0; u < n; u++) {
		if (p->cnt[u] > 0) {
			p->a[u] /= p->cnt[u];
			p->b[u] /= p->cnt[u];
			p->w[u] /= p->cnt[u];
		} else {
			p->a[u] = p->b[u] = NAN;
		}
	}
	if (metrics_paired_bootstrap(p->a, p->b, p->w, n, o->boot,
	    o->boot_seed, ci) != 0)
		return 0;
	*pv = pair_p(p->a, p->b, p->w, n, o->boot, o->boot_seed);
	return 1;
}

struct holm_key {
	double	 p;
	size_t	 i;
};

static int
holm_cmp(const void *x, const void *y)
{
	const struct holm_key *a = x, *b = y;

	if (a->p != b->p)
		return a->p < b->p ? -1 : 1;
	return a->i < b->i ? -1 : a->i > b->i;
}

void
evalagg_holm(const double *p, size_t n, double *adj)
{
	struct holm_key *k = xmalloc((n ? n : 1) * sizeof(*k));
	size_t m = 0;
	double run = 0;

	for (size_t i = 0; i < n; i++) {
		adj[i] = NAN;
		if (!isnan(p[i])) {
			k[m].p = p[i];
			k[m++].i = i;
		}
	}
	qsort(k, m, sizeof(*k), holm_cmp);
	/* p_(j) * (m - j), made monotone, capped at 1 */
	for (size_t j = 0; j < m; j++) {
		double v = k[j].p * (double)(m - j);

		if (v > run)
			run = v;
		adj[k[j].i] = run < 1 ? run : 1;
	}
	free(k);
}

/* Comparisons with an interval for the task. */
static int
task_has_cmp(enum evalagg_task t, int c)
{
	if (t == EVALAGG_CTR)
		return c == EVALAGG_CMP_GAUC || c == EVALAGG_CMP_LT_GAUC ||
		    c == EVALAGG_CMP_LOGLOSS;
	return c == EVALAGG_CMP_HR || c == EVALAGG_CMP_NDCG ||
	    c == EVALAGG_CMP_GAUC || c == EVALAGG_CMP_LT_GAUC;
}

/* Holm over every comparison of the table but the reference row's. */
static void
holm_table(struct evalagg_result *res)
{
	size_t n = res->n_row * EVALAGG_N_CMP, m = 0;
	double *p = xmalloc((n ? n : 1) * sizeof(*p));
	double *adj = xmalloc((n ? n : 1) * sizeof(*adj));

	for (size_t r = 0; r < res->n_row; r++)
		for (int c = 0; c < EVALAGG_N_CMP; c++) {
			const struct evalagg_row *row = &res->row[r];
			int in = row->has_ci[c] && !row->is_baseline &&
			    strcmp(row->method, res->reference) != 0;

			p[r * EVALAGG_N_CMP + c] = in ? row->p[c] : NAN;
			m += in && !isnan(row->p[c]);
		}
	evalagg_holm(p, n, adj);
	for (size_t r = 0; r < res->n_row; r++)
		for (int c = 0; c < EVALAGG_N_CMP; c++)
			res->row[r].p_holm[c] = adj[r * EVALAGG_N_CMP + c];
	res->n_family = m;
	free(p);
	free(adj);
}

int
evalagg_compute(struct evalagg_result *res, struct evalagg_run *runs,
    size_t n_runs, const struct evalagg_opts *o, const char *const *order,
    size_t n_order, const uint32_t *const *counts, const uint32_t *n_counts,
    char *err, size_t errlen)
{
	struct evalagg_stats *base = NULL;
	uint32_t n_users = 0, *cnt = NULL;
	uint8_t *present = NULL, *tail = NULL, *seen_any = NULL;
	char **names = NULL;
	size_t n_names = 0;
	double *vals = NULL, *fin = NULL;
	int rc = 0;

	memset(res, 0, sizeof(*res));
	if (n_runs == 0 || o->k < 1 || o->boot < 1 || !(o->tail_frac >= 0 &&
	    o->tail_frac <= 1) || !evalagg_valid_name(o->baseline)) {
		evalagg_seterr(err, errlen, "bad options (need >= 1 run, k >= 1, "
		    "boot >= 1, tail fraction in [0, 1], a baseline name)");
		return -EINVAL;
	}
	for (size_t r = 0; r < n_runs; r++) {
		if (evalagg_run_find(&runs[r], o->baseline) == NULL) {
			evalagg_seterr(err, errlen, "run %zu has no rows of the "
			    "baseline '%s'", r + 1, o->baseline);
			return -EINVAL;
		}
		if (runs[r].n_users > n_users)
			n_users = runs[r].n_users;
	}
	res->task = o->task;
	res->n_runs = n_runs;
	res->k = o->k;
	res->boot = o->boot;
	res->tail_frac = o->tail_frac;
	snprintf(res->baseline, sizeof(res->baseline), "%s", o->baseline);
	snprintf(res->reference, sizeof(res->reference), "%s",
	    o->reference != NULL ? o->reference : "");

	/*
	 * Each run's long tail (the data, and so the users' local counts,
	 * may differ between seeds), fixed for all methods of the run.
	 */
	present = xcalloc(n_users ? n_users : 1, 1);
	seen_any = xcalloc(n_users ? n_users : 1, 1);
	tail = xcalloc((n_users ? n_users : 1) * n_runs, 1);
	cnt = xcalloc(n_users ? n_users : 1, sizeof(*cnt));
	res->tail_from_counts = counts != NULL;
	for (size_t r = 0; r < n_runs; r++) {
		struct evalagg_rows *b = evalagg_run_find(&runs[r],
		    o->baseline);
		uint32_t mc = 0;

		memset(present, 0, n_users ? n_users : 1);
		memset(cnt, 0, (n_users ? n_users : 1) * sizeof(*cnt));
		for (size_t i = 0; i < b->n; i++) {
			if (!seen_any[b->user[i]])
				res->n_users++;
			seen_any[b->user[i]] = 1;
			present[b->user[i]] = 1;
			if (o->task == EVALAGG_CTR || b->label[i] >= 0.5f)
				cnt[b->user[i]]++;
		}
		for (uint32_t u = 0; counts != NULL && u < n_users; u++) {
			if (!present[u])
				continue;
			if (u >= n_counts[r] || counts[r][u] == UINT32_MAX) {
				evalagg_seterr(err, errlen, "user %u has test rows "
				    "but no local sample count (run %zu)", u,
				    r + 1);
				rc = -EINVAL;
				goto done;
			}
			cnt[u] = counts[r][u];
		}
		res->n_tail += evalagg_tail(cnt, present, n_users,
		    o->tail_frac, tail + r * (size_t)n_users, &mc);
		if (mc > res->tail_max_count)
			res->tail_max_count = mc;
	}
	res->n_tail = (res->n_tail + n_runs / 2) / n_runs;

	base = xcalloc(n_runs, sizeof(*base));
	for (size_t r = 0; r < n_runs; r++)
		evalagg_stats_compute(&base[r], evalagg_run_find(&runs[r],
		    o->baseline), n_users, NULL, tail + r * (size_t)n_users, o);

	names = method_order(runs, n_runs, o->baseline, order, n_order,
	    &n_names);
	res->row = xcalloc(n_names, sizeof(*res->row));
	vals = xmalloc(EVALAGG_N_METRICS * n_runs * sizeof(*vals));
	fin = xmalloc(n_runs * sizeof(*fin));
	for (size_t j = 0; j < n_names; j++) {
		struct evalagg_row *row = &res->row[res->n_row];
		struct pair_acc pa[EVALAGG_N_CMP];
		size_t nr = 0;
		uint8_t *seen = xcalloc(n_users ? n_users : 1, 1);

		snprintf(row->method, sizeof(row->method), "%s", names[j]);
		row->is_baseline = j == 0;
		for (int c = 0; c < EVALAGG_N_CMP; c++) {
			pair_init(&pa[c], n_users);
			row->p[c] = row->p_holm[c] = NAN;
		}
		for (size_t r = 0; r < n_runs; r++) {
			struct evalagg_rows *m = evalagg_run_find(&runs[r],
			    names[j]);
			const uint8_t *tl = tail + r * (size_t)n_users;
			struct evalagg_stats st;
			const struct evalagg_stats *s = &st;

			if (m == NULL)
				continue;
			for (size_t i = 0; i < m->n; i++)
				if (!seen[m->user[i]]) {
					seen[m->user[i]] = 1;
					row->n_users++;
				}
			if (j == 0)
				s = &base[r];
			else
				evalagg_stats_compute(&st, m, n_users,
				    &base[r], tl, o);
			for (int k = 0; k < EVALAGG_N_METRICS; k++)
				vals[k * n_runs + nr] = s->v[k];
			nr++;
			if (j != 0) {
				const struct evalagg_stats *b = &base[r];

				pair_add(&pa[EVALAGG_CMP_GAUC], st.auc,
				    b->auc, b->w, n_users, NULL);
				pair_add(&pa[EVALAGG_CMP_HR], st.hr,
				    b->hr, b->npos, n_users, NULL);
				pair_add(&pa[EVALAGG_CMP_NDCG], st.ndcg,
				    b->ndcg, b->npos, n_users, NULL);
				pair_add(&pa[EVALAGG_CMP_LT_GAUC], st.auc,
				    b->auc, b->w, n_users, tl);
				pair_add(&pa[EVALAGG_CMP_LOGLOSS], st.ll,
				    b->ll, b->nrow, n_users, NULL);
				evalagg_stats_fini(&st);
			}
		}
		free(seen);
		row->n_runs = nr;
		for (int k = 0; k < EVALAGG_N_METRICS; k++) {
			size_t nf = 0;

			/* A metric undefined in a run (NaN) is left out. */
			for (size_t i = 0; i < nr; i++)
				if (!isnan(vals[k * n_runs + i]))
					fin[nf++] = vals[k * n_runs + i];
			metrics_mean_std(fin, nf, &row->mean[k], &row->std[k]);
		}
		for (int c = 0; c < EVALAGG_N_CMP; c++) {
			if (j != 0 && task_has_cmp(o->task, c))
				row->has_ci[c] = pair_ci(&pa[c], n_users, o,
				    &row->ci[c], &row->p[c]);
			pair_fini(&pa[c]);
		}
		res->n_row++;
	}
	holm_table(res);
done:
	for (size_t r = 0; base != NULL && r < n_runs; r++)
		evalagg_stats_fini(&base[r]);
	free(base);
	free(names);
	free(vals);
	free(fin);
	free(present);
	free(seen_any);
	free(tail);
	free(cnt);
	if (rc != 0)
		evalagg_result_fini(res);
	return rc;
}

void
evalagg_result_fini(struct evalagg_result *res)
{
	free(res->row);
	memset(res, 0, sizeof(*res));
}
