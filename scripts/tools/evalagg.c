/*
 * evalagg: see evalagg.h for the file formats and what each number means.
 *
 * DESIGN. Rows are kept per run and per method as plain arrays, exactly as
 * read. Every metric is computed by shared/ml/metrics.c; this file only
 * groups rows, selects users (long tail, users present under two methods)
 * and pools per-user values over runs. Per-user arrays are indexed by the
 * dense user id, so ids are bounded (EVALAGG_ID_MAX) when read.
 */
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "scripts/tools/evalagg.h"
#include "shared/rng.h"
#include "shared/xmalloc.h"

static void
seterr(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void
seterr(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	if (err == NULL || errlen == 0)
		return;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
}

void
evalagg_opts_default(struct evalagg_opts *o)
{
	o->task = EVALAGG_CTR;
	o->baseline = "cloud";
	o->tail_frac = 0.2;
	o->k = 10;
	o->boot = 1000;
	o->boot_seed = 1;
	o->reference = NULL;
}

/* --- reading ------------------------------------------------------------- */

void
evalagg_run_init(struct evalagg_run *r)
{
	memset(r, 0, sizeof(*r));
}

void
evalagg_run_fini(struct evalagg_run *r)
{
	for (size_t i = 0; i < r->n_m; i++) {
		free(r->m[i].user);
		free(r->m[i].item);
		free(r->m[i].label);
		free(r->m[i].score);
	}
	free(r->m);
	evalagg_run_init(r);
}

void
evalagg_run_filter(struct evalagg_run *r, const uint8_t *set, uint32_t n,
    int keep_in_set)
{
	for (size_t i = 0; i < r->n_m; i++) {
		struct evalagg_rows *m = &r->m[i];
		size_t k = 0;

		for (size_t j = 0; j < m->n; j++) {
			int in = m->user[j] < n && set[m->user[j]];

			if (in != (keep_in_set != 0))
				continue;
			m->user[k] = m->user[j];
			m->item[k] = m->item[j];
			m->label[k] = m->label[j];
			m->score[k] = m->score[j];
			k++;
		}
		m->n = k;
	}
}

struct evalagg_rows *
evalagg_run_find(struct evalagg_run *r, const char *name)
{
	for (size_t i = 0; i < r->n_m; i++)
		if (strcmp(r->m[i].method, name) == 0)
			return &r->m[i];
	return NULL;
}

static struct evalagg_rows *
run_get(struct evalagg_run *r, const char *name)
{
	struct evalagg_rows *m;

	if ((m = evalagg_run_find(r, name)) != NULL)
		return m;
	r->m = xreallocarray(r->m, r->n_m + 1, sizeof(*r->m));
	m = &r->m[r->n_m++];
	memset(m, 0, sizeof(*m));
	snprintf(m->method, sizeof(m->method), "%s", name);
	return m;
}

static void
rows_push(struct evalagg_rows *m, uint32_t user, uint32_t item, float label,
    float score)
{
	if (m->n == m->cap) {
		m->cap = m->cap ? 2 * m->cap : 256;
		m->user = xreallocarray(m->user, m->cap, sizeof(*m->user));
		m->item = xreallocarray(m->item, m->cap, sizeof(*m->item));
		m->label = xreallocarray(m->label, m->cap, sizeof(*m->label));
		m->score = xreallocarray(m->score, m->cap, sizeof(*m->score));
	}
	m->user[m->n] = user;
	m->item[m->n] = item;
	m->label[m->n] = label;
	m->score[m->n] = score;
	m->n++;
}

/* A method (or column) name: 1..NAME_MAX-1 bytes of [A-Za-z0-9_.+-@]. */
static int
valid_name(const char *s)
{
	size_t n = strlen(s);

	if (n == 0 || n >= EVALAGG_NAME_MAX)
		return 0;
	for (; *s; s++)
		if (!isalnum((unsigned char)*s) && strchr("_.+-@", *s) == NULL)
			return 0;
	return 1;
}

static int
parse_id(const char *s, uint32_t *out)
{
	char *end;
	unsigned long v;

	if (!isdigit((unsigned char)*s))
		return -1;
	errno = 0;
	v = strtoul(s, &end, 10);
	if (errno != 0 || *end != '\0' || v >= EVALAGG_ID_MAX)
		return -1;
	*out = (uint32_t)v;
	return 0;
}

static int
parse_num(const char *s, double *out)
{
	char *end;

	if (*s == '\0' || isspace((unsigned char)*s))
		return -1;
	errno = 0;
	*out = strtod(s, &end);
	if (*end != '\0' || (errno == ERANGE && fabs(*out) > 1))
		return -1;
	return 0;
}

/*
 * Splits line at commas into at most max fields (in place). Returns the
 * number of fields, or max + 1 when there are more.
 */
static int
split_fields(char *line, char **f, int max)
{
	int n = 0;

	for (char *p = line;;) {
		char *c = strchr(p, ',');

		if (n == max)
			return max + 1;
		f[n++] = p;
		if (c == NULL)
			return n;
		*c = '\0';
		p = c + 1;
	}
}

/*
 * Reads the next line of fp into buf with the line end stripped. Returns
 * 1 on a line, 0 at EOF, -1 when the line does not fit.
 */
static int
read_line(FILE *fp, char *buf, size_t len)
{
	size_t n;

	if (fgets(buf, (int)len, fp) == NULL)
		return 0;
	n = strlen(buf);
	if (n == len - 1 && buf[n - 1] != '\n' && !feof(fp))
		return -1;
	while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r'))
		buf[--n] = '\0';
	return 1;
}

int
evalagg_read_fp(struct evalagg_run *r, FILE *fp, const char *name, char *err,
    size_t errlen)
{
	char buf[EVALAGG_LINE_MAX], *f[6];
	size_t ln = 0;
	int rc;

	while ((rc = read_line(fp, buf, sizeof(buf))) != 0) {
		uint32_t user, item;
		double label, score;
		int nf;

		ln++;
		if (rc < 0) {
			seterr(err, errlen, "%s:%zu: line too long", name, ln);
			return -EINVAL;
		}
		if (buf[0] == '\0')
			continue;
		if (ln == 1 &&
		    strcmp(buf, "method,user,item,label,score") == 0)
			continue;
		if ((nf = split_fields(buf, f, 5)) != 5) {
			seterr(err, errlen, "%s:%zu: want 5 fields "
			    "method,user,item,label,score, got %s", name, ln,
			    nf > 5 ? "more" : nf == 1 ? "1" : nf == 2 ? "2" :
			    nf == 3 ? "3" : "4");
			return -EINVAL;
		}
		if (!valid_name(f[0])) {
			seterr(err, errlen, "%s:%zu: bad method name '%.64s'",
			    name, ln, f[0]);
			return -EINVAL;
		}
		if (parse_id(f[1], &user) != 0 || parse_id(f[2], &item) != 0) {
			seterr(err, errlen, "%s:%zu: bad user or item id "
			    "('%.32s', '%.32s')", name, ln, f[1], f[2]);
			return -EINVAL;
		}
		if (parse_num(f[3], &label) != 0 || !(label >= 0 &&
		    label <= 1)) {
			seterr(err, errlen, "%s:%zu: bad label '%.32s' (want "
			    "a number in [0, 1])", name, ln, f[3]);
			return -EINVAL;
		}
		if (parse_num(f[4], &score) != 0) {
			seterr(err, errlen, "%s:%zu: bad score '%.32s'", name,
			    ln, f[4]);
			return -EINVAL;
		}
		if (isnan(score) || !isfinite((float)score)) {
			seterr(err, errlen, "%s:%zu: %s score '%.32s'", name,
			    ln, isnan(score) ? "NaN" : "infinite", f[4]);
			return -EINVAL;
		}
		rows_push(run_get(r, f[0]), user, item, (float)label,
		    (float)score);
		if (user >= r->n_users)
			r->n_users = user + 1;
	}
	if (ferror(fp)) {
		seterr(err, errlen, "%s: read error", name);
		return -EIO;
	}
	return 0;
}

int
evalagg_read_file(struct evalagg_run *r, const char *path, char *err,
    size_t errlen)
{
	FILE *fp;
	int rc;

	if ((fp = fopen(path, "r")) == NULL) {
		rc = -errno;
		seterr(err, errlen, "%s: %s", path, strerror(errno));
		return rc;
	}
	rc = evalagg_read_fp(r, fp, path, err, errlen);
	fclose(fp);
	if (rc == 0)
		r->n_files++;
	return rc;
}

static int
str_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/*
 * Sorted names of the files of dir ending in suffix (not starting with
 * '.'); *n gets their number. Returns NULL with -errno in *rc when dir
 * cannot be opened.
 */
static char **
list_dir(const char *dir, const char *suffix, size_t *n, int *rc)
{
	DIR *d;
	struct dirent *e;
	char **names = NULL;
	size_t sl = strlen(suffix);

	*n = 0;
	*rc = 0;
	if ((d = opendir(dir)) == NULL) {
		*rc = -errno;
		return NULL;
	}
	while ((e = readdir(d)) != NULL) {
		size_t len = strlen(e->d_name);

		if (len <= sl || e->d_name[0] == '.' ||
		    strcmp(e->d_name + len - sl, suffix) != 0)
			continue;
		names = xreallocarray(names, *n + 1, sizeof(*names));
		names[(*n)++] = xstrdup(e->d_name);
	}
	closedir(d);
	/* Name order, so that row order (and any tie) is reproducible. */
	if (*n > 0)
		qsort(names, *n, sizeof(*names), str_cmp);
	return names;
}

static void
free_names(char **names, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(names[i]);
	free(names);
}

int
evalagg_read_dir(struct evalagg_run *r, const char *dir, char *err,
    size_t errlen)
{
	char **names, path[4096];
	size_t n;
	int rc;

	names = list_dir(dir, ".csv", &n, &rc);
	if (rc != 0) {
		seterr(err, errlen, "%s: %s", dir, strerror(-rc));
		return rc;
	}
	if (n == 0) {
		seterr(err, errlen, "%s: no prediction files (*.csv)", dir);
		return -ENOENT;
	}
	for (size_t i = 0; i < n && rc == 0; i++) {
		snprintf(path, sizeof(path), "%s/%s", dir, names[i]);
		rc = evalagg_read_file(r, path, err, errlen);
	}
	free_names(names, n);
	return rc;
}

int
evalagg_read_counts(const char *path, uint32_t **counts, uint32_t *n_users,
    char *err, size_t errlen)
{
	char buf[EVALAGG_LINE_MAX], *f[3];
	uint32_t *c = NULL, n = 0;
	size_t ln = 0;
	FILE *fp;
	int rc;

	*counts = NULL;
	*n_users = 0;
	if ((fp = fopen(path, "r")) == NULL) {
		rc = -errno;
		seterr(err, errlen, "%s: %s", path, strerror(errno));
		return rc;
	}
	while ((rc = read_line(fp, buf, sizeof(buf))) != 0) {
		uint32_t u, k;

		ln++;
		if (rc < 0)
			goto bad;
		if (buf[0] == '\0' || (ln == 1 && isalpha((unsigned char)
		    buf[0])))
			continue;
		if (split_fields(buf, f, 2) != 2 || parse_id(f[0], &u) != 0 ||
		    parse_id(f[1], &k) != 0)
			goto bad;
		if (u >= n) {
			uint32_t nn = u + 1;

			c = xreallocarray(c, nn, sizeof(*c));
			for (uint32_t i = n; i < nn; i++)
				c[i] = UINT32_MAX;
			n = nn;
		}
		c[u] = k;
	}
	fclose(fp);
	*counts = c;
	*n_users = n;
	return 0;
bad:
	seterr(err, errlen, "%s:%zu: want 'user,n_local' (two ids)", path, ln);
	fclose(fp);
	free(c);
	return -EINVAL;
}

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
		qsort(all, n, sizeof(*all), str_cmp);
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
	    o->tail_frac <= 1) || !valid_name(o->baseline)) {
		seterr(err, errlen, "bad options (need >= 1 run, k >= 1, "
		    "boot >= 1, tail fraction in [0, 1], a baseline name)");
		return -EINVAL;
	}
	for (size_t r = 0; r < n_runs; r++) {
		if (evalagg_run_find(&runs[r], o->baseline) == NULL) {
			seterr(err, errlen, "run %zu has no rows of the "
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
				seterr(err, errlen, "user %u has test rows "
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

/* --- extra columns ------------------------------------------------------- */

void
evalagg_extra_init(struct evalagg_extra *x)
{
	memset(x, 0, sizeof(*x));
}

void
evalagg_extra_fini(struct evalagg_extra *x)
{
	for (size_t i = 0; i < x->n_col; i++)
		free(x->col[i]);
	for (size_t i = 0; i < x->n_method; i++)
		free(x->method[i]);
	free(x->col);
	free(x->method);
	free(x->sum);
	free(x->cnt);
	evalagg_extra_init(x);
}

/* Index of s in v (n), appending it when absent. */
static size_t
intern(char ***v, size_t *n, const char *s)
{
	for (size_t i = 0; i < *n; i++)
		if (strcmp((*v)[i], s) == 0)
			return i;
	*v = xreallocarray(*v, *n + 1, sizeof(**v));
	(*v)[*n] = xstrdup(s);
	return (*n)++;
}

/* Re-lays sum/cnt out for new dimensions (nm x nc from om x oc). */
static void
extra_grow(struct evalagg_extra *x, size_t om, size_t oc)
{
	size_t nm = x->n_method, nc = x->n_col;
	double *s, *c;

	if (nm == om && nc == oc)
		return;
	s = xcalloc(nm * nc, sizeof(*s));
	c = xcalloc(nm * nc, sizeof(*c));
	for (size_t i = 0; i < om; i++)
		for (size_t j = 0; j < oc; j++) {
			s[i * nc + j] = x->sum[i * oc + j];
			c[i * nc + j] = x->cnt[i * oc + j];
		}
	free(x->sum);
	free(x->cnt);
	x->sum = s;
	x->cnt = c;
}

int
evalagg_extra_read(struct evalagg_extra *x, const char *path, char *err,
    size_t errlen)
{
	char buf[EVALAGG_LINE_MAX], *f[4];
	size_t ln = 0;
	FILE *fp;
	int rc;

	if ((fp = fopen(path, "r")) == NULL) {
		rc = -errno;
		seterr(err, errlen, "%s: %s", path, strerror(errno));
		return rc;
	}
	while ((rc = read_line(fp, buf, sizeof(buf))) != 0) {
		size_t om = x->n_method, oc = x->n_col, mi, ci;
		double v;

		ln++;
		if (rc < 0)
			goto bad;
		if (buf[0] == '\0' || (ln == 1 &&
		    strcmp(buf, "method,column,value") == 0))
			continue;
		if (split_fields(buf, f, 3) != 3 || !valid_name(f[0]) ||
		    f[1][0] == '\0' || strlen(f[1]) >= EVALAGG_NAME_MAX ||
		    strchr(f[1], '|') != NULL || parse_num(f[2], &v) != 0 ||
		    !isfinite(v))
			goto bad;
		mi = intern(&x->method, &x->n_method, f[0]);
		ci = intern(&x->col, &x->n_col, f[1]);
		extra_grow(x, om, oc);
		x->sum[mi * x->n_col + ci] += v;
		x->cnt[mi * x->n_col + ci]++;
	}
	fclose(fp);
	return 0;
bad:
	seterr(err, errlen, "%s:%zu: want 'method,column,value' (a finite "
	    "number)", path, ln);
	fclose(fp);
	return -EINVAL;
}

int
evalagg_extra_read_dir(struct evalagg_extra *x, const char *dir, char *err,
    size_t errlen)
{
	char **names, path[4096];
	size_t n;
	int rc;

	names = list_dir(dir, ".extra", &n, &rc);
	if (rc != 0) {
		seterr(err, errlen, "%s: %s", dir, strerror(-rc));
		return rc;
	}
	for (size_t i = 0; i < n && rc == 0; i++) {
		snprintf(path, sizeof(path), "%s/%s", dir, names[i]);
		rc = evalagg_extra_read(x, path, err, errlen);
	}
	free_names(names, n);
	return rc;
}

/* Mean of method's column c, NaN when absent. */
static double
extra_get(const struct evalagg_extra *x, const char *method, size_t c)
{
	for (size_t i = 0; x != NULL && i < x->n_method; i++)
		if (strcmp(x->method[i], method) == 0)
			return x->cnt[i * x->n_col + c] > 0 ?
			    x->sum[i * x->n_col + c] /
			    x->cnt[i * x->n_col + c] : NAN;
	return NAN;
}

/* --- output -------------------------------------------------------------- */

/* Metrics shown, in column order, per task. */
static const int ctr_cols[] = { EVALAGG_GAUC, EVALAGG_AUC, EVALAGG_LOGLOSS,
	EVALAGG_IMPROVED, EVALAGG_LT_GAUC };
static const int rank_cols[] = { EVALAGG_HR, EVALAGG_NDCG, EVALAGG_GAUC };
/* CSV: every metric that means something for the task. */
static const int ctr_csv[] = { EVALAGG_GAUC, EVALAGG_AUC, EVALAGG_LOGLOSS,
	EVALAGG_IMPROVED, EVALAGG_WORSE, EVALAGG_LT_GAUC };
static const int rank_csv[] = { EVALAGG_HR, EVALAGG_NDCG, EVALAGG_GAUC,
	EVALAGG_AUC, EVALAGG_IMPROVED, EVALAGG_WORSE, EVALAGG_LT_GAUC };

/*
 * The row label of a method in the Markdown table: a readable name for the
 * methods deviced knows (the code stays in the CSV and in parentheses).
 */
static const char *
method_label(const char *code, char *buf, size_t len)
{
	static const char *const map[][2] = {
		{ "cloud", "cloud model only" },
		{ "naive-ft", "naive fine-tuning" },
		{ "ft-guard", "fine-tuning, guarded" },
		{ "ft-lc", "fine-tuning + label correction (soft)" },
		{ "ft-lcoff", "fine-tuning + label correction (offset)" },
		{ "ft-coda", "fine-tuning + CoDA" },
		{ "ft-lc-coda", "fine-tuning + label correction + CoDA" },
		{ "metapatch", "MetaPatch" },
		{ "mp-lc-coda", "MetaPatch + label correction + CoDA" },
		{ "ft-coda-u", "fine-tuning + CoDA by similar users" },
		{ "mp-lc-coda-u", "MetaPatch + LC + CoDA by similar users" },
		{ "ofa-low", "Forward-OFA, low budget" },
		{ "ofa-mid", "Forward-OFA, mid budget" },
		{ "ofa-high", "Forward-OFA, high budget" },
	};

	for (size_t i = 0; i < sizeof(map) / sizeof(map[0]); i++)
		if (strcmp(map[i][0], code) == 0) {
			snprintf(buf, len, "%s (%s)", map[i][1], code);
			return buf;
		}
	return code;
}

static const char *
metric_title(int m, int k, char *buf, size_t len)
{
	switch (m) {
	case EVALAGG_GAUC: return "GAUC";
	case EVALAGG_AUC: return "AUC";
	case EVALAGG_LOGLOSS: return "logloss";
	case EVALAGG_IMPROVED: return "users improved / worse";
	case EVALAGG_WORSE: return "users worse";
	case EVALAGG_LT_GAUC: return "long-tail GAUC";
	case EVALAGG_HR: snprintf(buf, len, "HR@%d", k); return buf;
	case EVALAGG_NDCG: snprintf(buf, len, "NDCG@%d", k); return buf;
	}
	return "?";
}

static const char *
metric_key(int m, int k, char *buf, size_t len)
{
	switch (m) {
	case EVALAGG_GAUC: return "gauc";
	case EVALAGG_AUC: return "auc";
	case EVALAGG_LOGLOSS: return "logloss";
	case EVALAGG_IMPROVED: return "users_improved";
	case EVALAGG_WORSE: return "users_worse";
	case EVALAGG_LT_GAUC: return "lt_gauc";
	case EVALAGG_HR: snprintf(buf, len, "hr%d", k); return buf;
	case EVALAGG_NDCG: snprintf(buf, len, "ndcg%d", k); return buf;
	}
	return "?";
}

static const int cmp_metric[EVALAGG_N_CMP] = { EVALAGG_GAUC, EVALAGG_HR,
	EVALAGG_NDCG, EVALAGG_LT_GAUC, EVALAGG_LOGLOSS };

/* Comparisons shown for the task, in column order (task_has_cmp()). */
static size_t
task_cmps(enum evalagg_task t, int *out)
{
	if (t == EVALAGG_CTR) {
		out[0] = EVALAGG_CMP_GAUC;
		out[1] = EVALAGG_CMP_LT_GAUC;
		out[2] = EVALAGG_CMP_LOGLOSS;
		return 3;
	}
	out[0] = EVALAGG_CMP_HR;
	out[1] = EVALAGG_CMP_NDCG;
	out[2] = EVALAGG_CMP_GAUC;
	out[3] = EVALAGG_CMP_LT_GAUC;
	return 4;
}

/* Users improved / worse: two shares in one cell, in per cent. */
static void
md_users(FILE *fp, const struct evalagg_row *row)
{
	double b = 100 * row->mean[EVALAGG_IMPROVED];
	double w = 100 * row->mean[EVALAGG_WORSE];

	if (row->is_baseline || isnan(b))
		fputs(" — |", fp);
	else if (row->n_runs > 1)
		fprintf(fp, " %.1f ± %.1f / %.1f ± %.1f %% |", b,
		    100 * row->std[EVALAGG_IMPROVED], w,
		    100 * row->std[EVALAGG_WORSE]);
	else
		fprintf(fp, " %.1f / %.1f %% |", b, w);
}

static void
md_cell(FILE *fp, const struct evalagg_row *row, int m, size_t n_runs)
{
	double mu = row->mean[m], sd = row->std[m];
	int pct = m == EVALAGG_IMPROVED || m == EVALAGG_WORSE;

	if (isnan(mu)) {
		fputs(" — |", fp);
		return;
	}
	if (pct) {
		mu *= 100;
		sd *= 100;
	}
	fprintf(fp, pct ? " %.1f %%" : " %.4f", mu);
	if (n_runs > 1)
		fprintf(fp, pct ? " ± %.1f" : " ± %.4f", sd);
	fputs(" |", fp);
}

void
evalagg_write_md(FILE *fp, const struct evalagg_result *res,
    const struct evalagg_extra *x, const char *title)
{
	const int *cols = res->task == EVALAGG_CTR ? ctr_cols : rank_cols;
	size_t nc = res->task == EVALAGG_CTR ? sizeof(ctr_cols) /
	    sizeof(ctr_cols[0]) : sizeof(rank_cols) / sizeof(rank_cols[0]);
	int cmps[EVALAGG_N_CMP];
	size_t ncmp = task_cmps(res->task, cmps), n_extra = x ? x->n_col : 0;
	int any_sig = 0;
	char buf[32];
	char label[128];

	if (title != NULL)
		fprintf(fp, "### %s (task %s)\n\n", title,
		    res->task == EVALAGG_CTR ? "ctr" : "ranking");
	fputs("| method |", fp);
	for (size_t i = 0; i < nc; i++)
		fprintf(fp, " %s |", metric_title(cols[i], res->k, buf,
		    sizeof(buf)));
	for (size_t i = 0; i < ncmp; i++)
		fprintf(fp, " Δ%s vs %s [95 %% CI] |",
		    metric_title(cmp_metric[cmps[i]], res->k, buf,
		    sizeof(buf)), res->baseline);
	for (size_t i = 0; i < n_extra; i++)
		fprintf(fp, " %s |", x->col[i]);
	fputs("\n|---|", fp);
	for (size_t i = 0; i < nc + ncmp + n_extra; i++)
		fputs("---|", fp);
	fputs("\n", fp);
	for (size_t r = 0; r < res->n_row; r++) {
		const struct evalagg_row *row = &res->row[r];

		fprintf(fp, "| %s |", method_label(row->method, label,
		    sizeof(label)));
		for (size_t i = 0; i < nc; i++) {
			if (cols[i] == EVALAGG_IMPROVED)
				md_users(fp, row);
			else
				md_cell(fp, row, cols[i], row->n_runs);
		}
		for (size_t i = 0; i < ncmp; i++) {
			const struct metrics_ci *ci = &row->ci[cmps[i]];
			int sig;

			if (!row->has_ci[cmps[i]]) {
				fputs(" — |", fp);
				continue;
			}
			/* * : Holm; ° : the raw interval only */
			sig = row->p_holm[cmps[i]] < 0.05 ? 2 :
			    ci->lo > 0 || ci->hi < 0;
			any_sig |= sig;
			fprintf(fp, " %+.4f [%+.4f, %+.4f]%s |", ci->mean,
			    ci->lo, ci->hi, sig == 2 ? " *" : sig ? " °" : "");
		}
		for (size_t i = 0; i < n_extra; i++) {
			double v = extra_get(x, row->method, i);

			/* Byte counts and the like: no exponent. */
			if (isnan(v))
				fputs(" — |", fp);
			else if (fabs(v) >= 1e4)
				fprintf(fp, " %.0f |", v);
			else
				fprintf(fp, " %.4g |", v);
		}
		fputs("\n", fp);
	}
	fputs("\n", fp);
	if (res->n_runs > 1)
		fprintf(fp, "- %zu runs (seeds); cells are mean ± sample std "
		    "over runs.", res->n_runs);
	else
		fputs("- 1 run (one seed): no spread.", fp);
	fprintf(fp, " %zu users with test rows; GAUC is the impression-"
	    "weighted mean of per-user AUC over users with both classes.\n",
	    res->n_users);
	if (res->task == EVALAGG_RANKING)
		fprintf(fp, "- HR@%d, NDCG@%d: each test positive ranked "
		    "against its own block of sampled negatives, scored in "
		    "its context (ties count against it), averaged over "
		    "positives.\n", res->k, res->k);
	else
		fprintf(fp, "- users improved / worse: shares of users "
		    "whose per-user AUC is above / below %s's, among users "
		    "with both classes under both (the rest are ties).\n",
		    res->baseline);
	fprintf(fp, "- long-tail%s: in each run, the %.0f %% of users (%zu) "
	    "with the fewest %s (<= %u each), ties broken by user id.\n",
	    res->task == EVALAGG_CTR ? "" : " (CSV: lt_gauc)",
	    100 * res->tail_frac, res->n_tail, res->tail_from_counts ?
	    "local samples" : res->task == EVALAGG_CTR ?
	    "test rows (no --user-counts)" :
	    "test positives (no --user-counts)", res->tail_max_count);
	fprintf(fp, "- Δ: paired per-user bootstrap (%d resamples of users) "
	    "of the mean per-user difference against %s; each user's "
	    "difference is averaged over runs, users weighted by %s; "
	    "long-tail: the same over the tail users; logloss: per-user "
	    "logloss, weighted by rows (lower is better). %s\n", res->boot,
	    res->baseline, res->task == EVALAGG_CTR ?
	    "impressions" : "positives (HR, NDCG) or impressions (GAUC)",
	    any_sig ? "" : "No interval excludes 0.");
	fprintf(fp, "- Family-wise: * = significant at 5 %% after Holm's "
	    "adjustment over all %zu comparisons of this table (p from the "
	    "bootstrap standard error)%s; ° = the 95 %% interval excludes 0 "
	    "but the Holm-adjusted p does not pass.\n", res->n_family,
	    res->reference[0] ? ", the reference row left out" : "");
	if (res->reference[0])
		fprintf(fp, "- %s: a reference, not a method (the synthetic "
		    "data's true click probabilities).\n", res->reference);
	if (n_extra > 0)
		fputs("- extra columns (from the *.extra files): mean over "
		    "all devices and runs.\n", fp);
	for (size_t r = 1; r < res->n_row; r++)
		if (res->row[r].n_users != res->n_users ||
		    res->row[r].n_runs != res->n_runs)
			fprintf(fp, "- %s: rows for %zu of %zu users in %zu "
			    "of %zu runs; comparisons use the users present "
			    "under both.\n", res->row[r].method,
			    res->row[r].n_users, res->n_users,
			    res->row[r].n_runs, res->n_runs);
}

static void
csv_num(FILE *fp, double v)
{
	if (isnan(v))
		fputs(",", fp);
	else
		fprintf(fp, ",%.6f", v);
}

void
evalagg_write_csv(FILE *fp, const struct evalagg_result *res,
    const struct evalagg_extra *x)
{
	const int *cols = res->task == EVALAGG_CTR ? ctr_csv : rank_csv;
	size_t nc = res->task == EVALAGG_CTR ? sizeof(ctr_csv) /
	    sizeof(ctr_csv[0]) : sizeof(rank_csv) / sizeof(rank_csv[0]);
	int cmps[EVALAGG_N_CMP];
	size_t ncmp = task_cmps(res->task, cmps), n_extra = x ? x->n_col : 0;
	char buf[32];

	fputs("method", fp);
	for (size_t i = 0; i < nc; i++) {
		const char *k = metric_key(cols[i], res->k, buf, sizeof(buf));

		fprintf(fp, ",%s,%s_std", k, k);
	}
	for (size_t i = 0; i < ncmp; i++) {
		const char *k = metric_key(cmp_metric[cmps[i]], res->k, buf,
		    sizeof(buf));

		fprintf(fp, ",d_%s,d_%s_lo,d_%s_hi,d_%s_users,d_%s_p,"
		    "d_%s_p_holm", k, k, k, k, k, k);
	}
	fputs(",n_runs,n_users", fp);
	for (size_t i = 0; i < n_extra; i++)
		fprintf(fp, ",%s", x->col[i]);
	fputs("\n", fp);
	for (size_t r = 0; r < res->n_row; r++) {
		const struct evalagg_row *row = &res->row[r];

		fputs(row->method, fp);
		for (size_t i = 0; i < nc; i++) {
			csv_num(fp, row->mean[cols[i]]);
			csv_num(fp, row->n_runs > 1 ? row->std[cols[i]] : NAN);
		}
		for (size_t i = 0; i < ncmp; i++) {
			const struct metrics_ci *ci = &row->ci[cmps[i]];

			if (!row->has_ci[cmps[i]]) {
				fputs(",,,,,,", fp);
				continue;
			}
			csv_num(fp, ci->mean);
			csv_num(fp, ci->lo);
			csv_num(fp, ci->hi);
			fprintf(fp, ",%zu", ci->n);
			csv_num(fp, row->p[cmps[i]]);
			csv_num(fp, row->p_holm[cmps[i]]);
		}
		fprintf(fp, ",%zu,%zu", row->n_runs, row->n_users);
		for (size_t i = 0; i < n_extra; i++)
			csv_num(fp, extra_get(x, row->method, i));
		fputs("\n", fp);
	}
}
