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
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "scripts/tools/evalagg.h"
#include "scripts/tools/evalagg_int.h"
#include "shared/rng.h"
#include "shared/xmalloc.h"

void
evalagg_seterr(char *err, size_t errlen, const char *fmt, ...)
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
int
evalagg_valid_name(const char *s)
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
			evalagg_seterr(err, errlen, "%s:%zu: line too long", name, ln);
			return -EINVAL;
		}
		if (buf[0] == '\0')
			continue;
		if (ln == 1 &&
		    strcmp(buf, "method,user,item,label,score") == 0)
			continue;
		if ((nf = split_fields(buf, f, 5)) != 5) {
			evalagg_seterr(err, errlen, "%s:%zu: want 5 fields "
			    "method,user,item,label,score, got %s", name, ln,
			    nf > 5 ? "more" : nf == 1 ? "1" : nf == 2 ? "2" :
			    nf == 3 ? "3" : "4");
			return -EINVAL;
		}
		if (!evalagg_valid_name(f[0])) {
			evalagg_seterr(err, errlen, "%s:%zu: bad method name '%.64s'",
			    name, ln, f[0]);
			return -EINVAL;
		}
		if (parse_id(f[1], &user) != 0 || parse_id(f[2], &item) != 0) {
			evalagg_seterr(err, errlen, "%s:%zu: bad user or item id "
			    "('%.32s', '%.32s')", name, ln, f[1], f[2]);
			return -EINVAL;
		}
		if (parse_num(f[3], &label) != 0 || !(label >= 0 &&
		    label <= 1)) {
			evalagg_seterr(err, errlen, "%s:%zu: bad label '%.32s' (want "
			    "a number in [0, 1])", name, ln, f[3]);
			return -EINVAL;
		}
		if (parse_num(f[4], &score) != 0) {
			evalagg_seterr(err, errlen, "%s:%zu: bad score '%.32s'", name,
			    ln, f[4]);
			return -EINVAL;
		}
		if (isnan(score) || !isfinite((float)score)) {
			evalagg_seterr(err, errlen, "%s:%zu: %s score '%.32s'", name,
			    ln, isnan(score) ? "NaN" : "infinite", f[4]);
			return -EINVAL;
		}
		rows_push(run_get(r, f[0]), user, item, (float)label,
		    (float)score);
		if (user >= r->n_users)
			r->n_users = user + 1;
	}
	if (ferror(fp)) {
		evalagg_seterr(err, errlen, "%s: read error", name);
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
		evalagg_seterr(err, errlen, "%s: %s", path, strerror(errno));
		return rc;
	}
	rc = evalagg_read_fp(r, fp, path, err, errlen);
	fclose(fp);
	if (rc == 0)
		r->n_files++;
	return rc;
}

int
evalagg_str_cmp(const void *a, const void *b)
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
		qsort(names, *n, sizeof(*names), evalagg_str_cmp);
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
evalagg_each_file(const char *dir, const char *suffix,
    int (*fn)(void *arg, const char *path, const char *name), void *arg,
    char *err, size_t errlen)
{
	char **names, path[4096];
	size_t n;
	int rc;

	names = list_dir(dir, suffix, &n, &rc);
	if (rc != 0) {
		evalagg_seterr(err, errlen, "%s: %s", dir, strerror(-rc));
		return rc;
	}
	for (size_t i = 0; i < n && rc == 0; i++) {
		snprintf(path, sizeof(path), "%s/%s", dir, names[i]);
		rc = fn(arg, path, names[i]);
	}
	free_names(names, n);
	return rc < 0 ? rc : (int)(n > INT_MAX ? INT_MAX : n);
}

struct read_arg {
	void	*dst;
	char	*err;
	size_t	 errlen;
};

static int
read_run_cb(void *arg, const char *path, const char *name)
{
	struct read_arg *a = arg;

	(void)name;
	return evalagg_read_file(a->dst, path, a->err, a->errlen);
}

int
evalagg_read_dir(struct evalagg_run *r, const char *dir, char *err,
    size_t errlen)
{
	struct read_arg a = { r, err, errlen };
	int rc;

	rc = evalagg_each_file(dir, ".csv", read_run_cb, &a, err, errlen);
	if (rc == 0) {
		evalagg_seterr(err, errlen, "%s: no prediction files (*.csv)", dir);
		return -ENOENT;
	}
	return rc < 0 ? rc : 0;
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
		evalagg_seterr(err, errlen, "%s: %s", path, strerror(errno));
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
	evalagg_seterr(err, errlen, "%s:%zu: want 'user,n_local' (two ids)", path, ln);
	fclose(fp);
	free(c);
	return -EINVAL;
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
		evalagg_seterr(err, errlen, "%s: %s", path, strerror(errno));
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
		if (split_fields(buf, f, 3) != 3 || !evalagg_valid_name(f[0]) ||
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
	evalagg_seterr(err, errlen, "%s:%zu: want 'method,column,value' (a finite "
	    "number)", path, ln);
	fclose(fp);
	return -EINVAL;
}

static int
read_extra_cb(void *arg, const char *path, const char *name)
{
	struct read_arg *a = arg;

	(void)name;
	return evalagg_extra_read(a->dst, path, a->err, a->errlen);
}

int
evalagg_extra_read_dir(struct evalagg_extra *x, const char *dir, char *err,
    size_t errlen)
{
	struct read_arg a = { x, err, errlen };
	int rc;

	rc = evalagg_each_file(dir, ".extra", read_extra_cb, &a, err, errlen);
	return rc < 0 ? rc : 0;
}

double
evalagg_extra_get(const struct evalagg_extra *x, const char *method, size_t c)
{
	for (size_t i = 0; x != NULL && i < x->n_method; i++)
		if (strcmp(x->method[i], method) == 0)
			return x->cnt[i * x->n_col + c] > 0 ?
			    x->sum[i * x->n_col + c] /
			    x->cnt[i * x->n_col + c] : NAN;
	return NAN;
}
