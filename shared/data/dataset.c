/*
 * dataset: see dataset.h.
 *
 * DESIGN
 *  - All text input goes through one buffered line reader (struct lr): 1 MiB
 *    read(2) chunks, memchr for newlines, lines longer than DATASET_LINE_MAX
 *    are reported and skipped as a whole. Fields are split in place and
 *    numbers are parsed by hand (no sscanf, no locale), each parser bounded
 *    by the field length, so garbage input can only produce an error.
 *  - MovieLens loading is three small format-specific parsers producing raw
 *    records (raw user, raw item, rating, ts) plus a raw item -> genre mask
 *    table; one common finisher assigns dense ids (ascending raw id), labels,
 *    genres, and the canonical order + histories (dataset_build_hist).
 *  - The canonical order is (user, ts, item, original index): a counting
 *    sort by user followed by a per-user sort, so it is deterministic and
 *    costs O(n log n_u) rather than one big comparison sort.
 *  - The generator draws each user from its own RNG stream seeded by
 *    (seed, user), so a user's data does not depend on how many users come
 *    after it, and items/clusters come from a separate stream.
 * No global state; any thread may call these on objects it owns.
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

#include "shared/data/dataset.h"
#include "shared/rng.h"
#include "shared/xmalloc.h"

#define LR_BUFSZ	(1u << 20)
#define SYNTH_MAX_USERS	10000000u
#define SYNTH_MAX_ITEMS	100000000u
#define SYNTH_MAX_AFF	(1u << 28)	/* clusters x items floats */
#define SYNTH_MAX_PER_USER 1000000u

/* ------------------------------------------------------------------------ */
/* error reporting                                                          */

struct ectx {
	struct dataset_err *err;
	int	 skip;
};

static void
err_set(struct dataset_err *err, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void
err_set(struct dataset_err *err, const char *fmt, ...)
{
	va_list ap;

	if (err == NULL || err->msg[0] != '\0')
		return;		/* keep the first message */
	va_start(ap, fmt);
	vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
	va_end(ap);
}

/*
 * A bad line: records "path:line: what". Returns 0 when the caller should
 * skip the line and go on, -EINVAL when it should stop.
 */
static int
bad_line(struct ectx *e, const char *path, size_t line, const char *what)
{
	err_set(e->err, "%s:%zu: %s", path, line, what);
	if (e->err != NULL)
		e->err->n_bad++;
	return e->skip ? 0 : -EINVAL;
}

/* ------------------------------------------------------------------------ */
/* line reader                                                              */

struct lr {
	int	 fd;
	const char *path;
	char	*buf;
	size_t	 beg, end, cap;
	size_t	 lineno;
	int	 eof;
	int	 skipping;	/* inside an over-long line */
};

enum { LR_EOF = 0, LR_LINE = 1, LR_LONG = 2, LR_IOERR = -1 };

static int
lr_open(struct lr *r, const char *path)
{
	struct stat st;

	memset(r, 0, sizeof(*r));
	r->fd = open(path, O_RDONLY);
	if (r->fd < 0)
		return -errno;
	r->path = path;
	/*
	 * A small file gets a small buffer (at least a longest line and its
	 * "\r\n", so LR_LONG means the same): a 1 MiB allocation per read
	 * dominated short reads (the fuzz harness ran ~1k inputs/s).
	 */
	r->cap = LR_BUFSZ;
	if (fstat(r->fd, &st) == 0 && S_ISREG(st.st_mode) &&
	    st.st_size < (off_t)LR_BUFSZ)
		r->cap = (size_t)st.st_size + 1 > DATASET_LINE_MAX + 2 ?
		    (size_t)st.st_size + 1 : DATASET_LINE_MAX + 2;
	r->buf = xmalloc(r->cap);
	return 0;
}

static void
lr_close(struct lr *r)
{
	if (r->fd >= 0)
		close(r->fd);
	free(r->buf);
	r->fd = -1;
	r->buf = NULL;
}

/*
 * Next line (without "\n" / "\r\n") in *line, *len; the bytes stay valid
 * until the next call and may be modified in place. Returns LR_LINE,
 * LR_LONG (a line longer than DATASET_LINE_MAX was consumed), LR_EOF or
 * LR_IOERR (errno set).
 */
static int
lr_next(struct lr *r, char **line, size_t *len)
{
	for (;;) {
		char *p = r->buf + r->beg;
		char *nl = memchr(p, '\n', r->end - r->beg);
		size_t n;
		ssize_t k;

		if (nl != NULL || (r->eof && r->beg < r->end)) {
			n = nl != NULL ? (size_t)(nl - p) : r->end - r->beg;
			r->beg += n + (nl != NULL);
			r->lineno++;
			if (r->skipping || n > DATASET_LINE_MAX) {
				r->skipping = 0;
				return LR_LONG;
			}
			if (n > 0 && p[n - 1] == '\r')
				n--;
			*line = p;
			*len = n;
			return LR_LINE;
		}
		if (r->eof) {
			if (r->skipping) {
				r->skipping = 0;
				r->lineno++;
				return LR_LONG;
			}
			return LR_EOF;
		}
		if (r->beg > 0) {
			memmove(r->buf, r->buf + r->beg, r->end - r->beg);
			r->end -= r->beg;
			r->beg = 0;
		}
		if (r->end == r->cap) {
			/* No newline in a full buffer: drop it, keep going. */
			r->skipping = 1;
			r->end = 0;
		}
		do
			k = read(r->fd, r->buf + r->end, r->cap - r->end);
		while (k < 0 && errno == EINTR);
		if (k < 0)
			return LR_IOERR;
		if (k == 0)
			r->eof = 1;
		r->end += (size_t)k;
	}
}

/* ------------------------------------------------------------------------ */
/* field splitting and number parsing                                       */

struct fld {
	char	*p;
	size_t	 n;
};

/* Splits on a one-byte delimiter; returns the total field count (may exceed
 * max; only the first max are stored). */
static int
split_c(char *s, size_t n, char d, struct fld *f, int max)
{
	int k = 0;
	char *end = s + n;

	for (;;) {
		char *q = memchr(s, d, (size_t)(end - s));
		char *e = q != NULL ? q : end;

		if (k < max) {
			f[k].p = s;
			f[k].n = (size_t)(e - s);
		}
		k++;
		if (q == NULL)
			return k;
		s = q + 1;
	}
}

/*
 * The samples CSV hot path: the first k - 1 fields are short, so they are
 * cut with a byte loop (cheaper than memchr calls on tiny spans); field k
 * is the rest of the line, which may itself contain more delimiters.
 * Returns the number of fields found, <= k.
 */
static int
split_first(char *s, size_t n, char d, struct fld *f, int k)
{
	int j = 0;
	size_t a = 0;

	for (size_t i = 0; i < n && j < k - 1; i++) {
		if (s[i] != d)
			continue;
		f[j].p = s + a;
		f[j].n = i - a;
		j++;
		a = i + 1;
	}
	f[j].p = s + a;
	f[j].n = n - a;
	return j + 1;
}

/*
 * '|'-separated uint32 ids (each < lim), at most max of them; "" is none.
 * Returns the count, or -1 on a malformed list, -2 when there are too many.
 */
static int
parse_idlist(const char *p, size_t n, uint32_t lim, uint32_t *out, int max)
{
	const char *e = p + n;
	int k = 0;

	if (n == 0)
		return 0;
	for (;;) {
		const char *st = p;
		uint64_t v = 0;

		while (p < e && (unsigned)(*p - '0') <= 9 && p - st < 11)
			v = v * 10 + (uint64_t)(*p++ - '0');
		if (p == st || v >= lim || (p < e && *p != '|'))
			return -1;
		if (k == max)
			return -2;
		out[k++] = (uint32_t)v;
		if (p == e)
			return k;
		if (++p == e)
			return -1;	/* trailing '|' */
	}
}

/* Splits on "::" (MovieLens 1M). */
static int
split_cc(char *s, size_t n, struct fld *f, int max)
{
	int k = 0;
	char *end = s + n;

	for (;;) {
		char *q = s;
		char *e = NULL;

		while ((q = memchr(q, ':', (size_t)(end - q))) != NULL) {
			if (q + 1 < end && q[1] == ':') {
				e = q;
				break;
			}
			q++;
		}
		if (k < max) {
			f[k].p = s;
			f[k].n = (size_t)((e != NULL ? e : end) - s);
		}
		k++;
		if (e == NULL)
			return k;
		s = e + 2;
	}
}

/*
 * RFC 4180-ish CSV split, unquoting in place ("" -> "). Returns the field
 * count, or -1 on a quote error (unterminated, or text after a closing
 * quote).
 */
static int
split_csv(char *s, size_t n, struct fld *f, int max)
{
	char *end = s + n;
	int k = 0;

	for (;;) {
		char *start = s, *w;

		if (s < end && *s == '"') {
			w = start;
			s++;
			for (;;) {
				if (s >= end)
					return -1;
				if (*s == '"') {
					if (s + 1 < end && s[1] == '"') {
						*w++ = '"';
						s += 2;
						continue;
					}
					s++;
					break;
				}
				*w++ = *s++;
			}
			if (s < end && *s != ',')
				return -1;
		} else {
			char *q = memchr(s, ',', (size_t)(end - s));

			s = q != NULL ? q : end;
			w = s;
			if (memchr(start, '"', (size_t)(s - start)) != NULL)
				return -1;
		}
		if (k < max) {
			f[k].p = start;
			f[k].n = (size_t)(w - start);
		}
		k++;
		if (s >= end)
			return k;
		s++;	/* the comma */
	}
}

/* Unsigned decimal, 1..18 digits, nothing else. */
static int
parse_u64(const char *p, size_t n, uint64_t *out)
{
	uint64_t v = 0;

	if (n == 0 || n > 18)
		return -1;
	for (size_t i = 0; i < n; i++) {
		unsigned d = (unsigned char)p[i] - '0';

		if (d > 9)
			return -1;
		v = v * 10 + d;
	}
	*out = v;
	return 0;
}

static int
parse_u32(const char *p, size_t n, uint32_t *out)
{
	uint64_t v;

	if (parse_u64(p, n, &v) != 0 || v > UINT32_MAX)
		return -1;
	*out = (uint32_t)v;
	return 0;
}

static int
parse_i64(const char *p, size_t n, int64_t *out)
{
	uint64_t v;
	int neg = 0;

	if (n > 0 && (*p == '-' || *p == '+')) {
		neg = *p == '-';
		p++;
		n--;
	}
	if (parse_u64(p, n, &v) != 0)
		return -1;
	*out = neg ? -(int64_t)v : (int64_t)v;
	return 0;
}

/*
 * Decimal [+-]digits[.digits][(e|E)[+-]digits]: at least one mantissa digit,
 * at most 40 bytes. Exact for the short decimals we write (ratings, labels
 * printed with %.9g round-trip through float).
 */
static int
parse_dbl(const char *p, size_t n, double *out)
{
	const char *e = p + n;
	double v = 0, scale = 1;
	int neg = 0, nd = 0, ex = 0, exneg = 0, nex = 0;

	if (n == 0 || n > 40)
		return -1;
	if (*p == '-' || *p == '+')
		neg = *p++ == '-';
	for (; p < e && (unsigned)(*p - '0') <= 9; p++, nd++)
		v = v * 10 + (*p - '0');
	if (p < e && *p == '.') {
		for (p++; p < e && (unsigned)(*p - '0') <= 9; p++, nd++) {
			v = v * 10 + (*p - '0');
			scale *= 10;
		}
	}
	if (nd == 0)
		return -1;
	if (p < e && (*p == 'e' || *p == 'E')) {
		p++;
		if (p < e && (*p == '-' || *p == '+'))
			exneg = *p++ == '-';
		for (; p < e && (unsigned)(*p - '0') <= 9; p++, nex++)
			if (ex < 400)
				ex = ex * 10 + (*p - '0');
		if (nex == 0)
			return -1;
	}
	if (p != e)
		return -1;
	v /= scale;
	if (ex != 0)
		v *= pow(10, exneg ? -ex : ex);
	*out = neg ? -v : v;
	return isfinite(*out) ? 0 : -1;
}

/* ------------------------------------------------------------------------ */
/* lifecycle                                                                */

void
dataset_opts_default(struct dataset_opts *o)
{
	memset(o, 0, sizeof(*o));
	o->label_threshold = 4.0f;
	o->hist_k = DATASET_HIST_DEFAULT;
	o->skip_bad = 0;
	o->fmt = DATASET_FMT_AUTO;
}

void
dataset_init(struct dataset *ds)
{
	memset(ds, 0, sizeof(*ds));
}

void
dataset_fini(struct dataset *ds)
{
	free(ds->s);
	free(ds->hist);
	dataset_init(ds);
}

void
dataset_reserve(struct dataset *ds, size_t n_samples, size_t n_hist)
{
	if (n_samples > ds->cap) {
		ds->s = xreallocarray(ds->s, n_samples, sizeof(*ds->s));
		ds->cap = n_samples;
	}
	if (n_hist > ds->hist_cap) {
		ds->hist = xreallocarray(ds->hist, n_hist, sizeof(*ds->hist));
		ds->hist_cap = n_hist;
	}
}

static void
grow(struct dataset *ds, size_t add_s, size_t add_h)
{
	size_t ns = ds->cap, nh = ds->hist_cap;

	if (ds->n + add_s > ns)
		ns = ds->n + add_s > 2 * ns ? ds->n + add_s : 2 * ns;
	if (ds->hist_len + add_h > nh)
		nh = ds->hist_len + add_h > 2 * nh ? ds->hist_len + add_h :
		    2 * nh;
	if (ns < 64)
		ns = 64;
	if (nh < 256)
		nh = 256;
	dataset_reserve(ds, ns, nh);
}

size_t
dataset_append(struct dataset *ds, const struct sample *s,
    const uint32_t *hist, size_t hist_n)
{
	struct sample *d;

	if (hist_n > SAMPLE_HIST_MAX) {
		hist += hist_n - SAMPLE_HIST_MAX;
		hist_n = SAMPLE_HIST_MAX;
	}
	/* hist_off is 32-bit: a dataset beyond that is a broken invariant. */
	if (ds->hist_len + hist_n > UINT32_MAX)
		abort();
	if (ds->n >= ds->cap || ds->hist_len + hist_n > ds->hist_cap)
		grow(ds, 1, hist_n);
	d = &ds->s[ds->n];
	*d = *s;
	d->hist_off = (uint32_t)ds->hist_len;
	d->hist_n = (uint16_t)hist_n;
	if (hist_n > 0)
		memcpy(ds->hist + ds->hist_len, hist, hist_n * sizeof(*hist));
	ds->hist_len += hist_n;
	if (s->user >= ds->n_users)
		ds->n_users = s->user + 1;
	if (s->item >= ds->n_items)
		ds->n_items = s->item + 1;
	for (size_t i = 0; i < hist_n; i++)
		if (hist[i] >= ds->n_items)
			ds->n_items = hist[i] + 1;
	return ds->n++;
}

void
dataset_append_subset(struct dataset *dst, const struct dataset *src,
    const size_t *idx, size_t n)
{
	size_t nh = 0;

	for (size_t i = 0; i < n; i++)
		nh += src->s[idx[i]].hist_n;
	dataset_reserve(dst, dst->n + n, dst->hist_len + nh);
	for (size_t i = 0; i < n; i++) {
		const struct sample *s = &src->s[idx[i]];

		dataset_append(dst, s, sample_hist(src, s), s->hist_n);
	}
	if (src->n_users > dst->n_users)
		dst->n_users = src->n_users;
	if (src->n_items > dst->n_items)
		dst->n_items = src->n_items;
	if (src->n_genres > dst->n_genres)
		dst->n_genres = src->n_genres;
}

void
dataset_meta_init(struct dataset_meta *m)
{
	memset(m, 0, sizeof(*m));
}

void
dataset_meta_fini(struct dataset_meta *m)
{
	free(m->user_raw);
	free(m->item_raw);
	free(m->item_genres);
	dataset_meta_init(m);
}

const char *
dataset_fmt_name(enum dataset_fmt f)
{
	switch (f) {
	case DATASET_FMT_100K:
		return "100k";
	case DATASET_FMT_1M:
		return "1m";
	case DATASET_FMT_LATEST:
		return "latest";
	default:
		return "synth";
	}
}

/* ------------------------------------------------------------------------ */
/* canonical order and histories                                            */

struct okey {
	int64_t	 ts;
	uint32_t item;
	size_t	 idx;
};

static int
okey_cmp(const void *a, const void *b)
{
	const struct okey *x = a, *y = b;

	if (x->ts != y->ts)
		return x->ts < y->ts ? -1 : 1;
	if (x->item != y->item)
		return x->item < y->item ? -1 : 1;
	return x->idx < y->idx ? -1 : x->idx > y->idx;
}

/*
 * Canonical order of the samples at sel[0..n) (sel NULL = all): grouped by
 * user (uoff, n_users + 1 entries, allocated), then (ts, item, position).
 * Returns the order as an allocated array of sample indices.
 */
static size_t *
canon_order(const struct dataset *ds, const size_t *sel, size_t n,
    uint32_t n_users, size_t **uoff_out)
{
	size_t *uoff = xcalloc((size_t)n_users + 1, sizeof(*uoff));
	size_t *ord = xmalloc((n ? n : 1) * sizeof(*ord));
	size_t *pos = xmalloc(((size_t)n_users + 1) * sizeof(*pos));
	struct okey *k = NULL;
	size_t kcap = 0;

	for (size_t i = 0; i < n; i++)
		uoff[ds->s[sel ? sel[i] : i].user + 1]++;
	for (uint32_t u = 0; u < n_users; u++)
		uoff[u + 1] += uoff[u];
	memcpy(pos, uoff, ((size_t)n_users + 1) * sizeof(*pos));
	for (size_t i = 0; i < n; i++) {
		size_t j = sel ? sel[i] : i;

		ord[pos[ds->s[j].user]++] = j;
	}
	free(pos);
	for (uint32_t u = 0; u < n_users; u++) {
		size_t a = uoff[u], b = uoff[u + 1], m = b - a;
		int sorted = 1;

		for (size_t i = a + 1; i < b && sorted; i++) {
			const struct sample *p = &ds->s[ord[i - 1]];
			const struct sample *q = &ds->s[ord[i]];

			if (p->ts > q->ts || (p->ts == q->ts &&
			    p->item > q->item))
				sorted = 0;
		}
		if (sorted)
			continue;	/* ties keep position order: stable */
		if (m > kcap) {
			kcap = m;
			k = xreallocarray(k, kcap, sizeof(*k));
		}
		for (size_t i = 0; i < m; i++) {
			const struct sample *s = &ds->s[ord[a + i]];

			k[i].ts = s->ts;
			k[i].item = s->item;
			k[i].idx = ord[a + i];
		}
		qsort(k, m, sizeof(*k), okey_cmp);
		for (size_t i = 0; i < m; i++)
			ord[a + i] = k[i].idx;
	}
	free(k);
	*uoff_out = uoff;
	return ord;
}

static uint32_t
max_user(const struct dataset *ds)
{
	uint32_t nu = ds->n_users;

	for (size_t i = 0; i < ds->n; i++)
		if (ds->s[i].user >= nu)
			nu = ds->s[i].user + 1;
	return nu;
}

void
dataset_build_hist(struct dataset *ds, int H)
{
	uint32_t nu = max_user(ds), ring[SAMPLE_HIST_MAX];
	size_t *uoff, *ord = canon_order(ds, NULL, ds->n, nu, &uoff);
	struct dataset nd;

	if (H < 0)
		H = 0;
	if (H > SAMPLE_HIST_MAX)
		H = SAMPLE_HIST_MAX;
	dataset_init(&nd);
	dataset_reserve(&nd, ds->n, ds->n * (size_t)(H < 8 ? H : 8));
	for (uint32_t u = 0; u < nu; u++) {
		size_t head = 0, cnt = 0;
		uint32_t tmp[SAMPLE_HIST_MAX];

		/*
		 * Samples of one second form a group that shares the history
		 * before it: a rating given in the same second as another is
		 * not known to be earlier (23% of ml-latest-small's ratings
		 * share a user and a second with another one).
		 */
		for (size_t g = uoff[u], e; g < uoff[u + 1]; g = e) {
			int64_t ts = ds->s[ord[g]].ts;

			/* ring holds the last cnt positives; oldest at head */
			for (size_t j = 0; j < cnt; j++)
				tmp[j] = ring[(head + j) % (size_t)H];
			for (e = g; e < uoff[u + 1] && ds->s[ord[e]].ts == ts;
			    e++)
				dataset_append(&nd, &ds->s[ord[e]], tmp, cnt);
			for (size_t i = g; i < e; i++) {
				const struct sample *s = &ds->s[ord[i]];

				if (H == 0 || !(s->label >= 0.5f))
					continue;
				if (cnt < (size_t)H) {
					ring[(head + cnt) % (size_t)H] =
					    s->item;
					cnt++;
				} else {
					ring[head] = s->item;
					head = (head + 1) % (size_t)H;
				}
			}
		}
	}
	nd.n_users = nu > ds->n_users ? nu : ds->n_users;
	if (ds->n_items > nd.n_items)
		nd.n_items = ds->n_items;
	nd.n_genres = ds->n_genres;
	free(ord);
	free(uoff);
	dataset_fini(ds);
	*ds = nd;
}

/* ------------------------------------------------------------------------ */
/* index subsets                                                            */

void
dataset_idx_fini(struct dataset_idx *x)
{
	free(x->v);
	free(x->uoff);
	memset(x, 0, sizeof(*x));
}

void
dataset_idx_all(struct dataset_idx *out, const struct dataset *ds)
{
	uint32_t nu = max_user(ds);

	memset(out, 0, sizeof(*out));
	out->v = canon_order(ds, NULL, ds->n, nu, &out->uoff);
	out->n = ds->n;
	out->n_users = nu;
}

void
dataset_idx_user(struct dataset_idx *out, const struct dataset_idx *x,
    uint32_t u)
{
	size_t a = 0, b = 0;

	memset(out, 0, sizeof(*out));
	out->n_users = x->n_users;
	out->uoff = xcalloc((size_t)x->n_users + 1, sizeof(*out->uoff));
	if (u < x->n_users) {
		a = x->uoff[u];
		b = x->uoff[u + 1];
	}
	out->n = b - a;
	out->v = xmalloc((out->n ? out->n : 1) * sizeof(*out->v));
	if (out->n > 0)
		memcpy(out->v, x->v + a, out->n * sizeof(*out->v));
	for (uint32_t w = 0; w < x->n_users; w++)
		out->uoff[w + 1] = w >= u ? out->n : 0;
}

/* ------------------------------------------------------------------------ */
/* split                                                                    */

void
dataset_fracs_default(struct dataset_fracs *f)
{
	f->pool = 0.70;
	f->local = 0.15;
	f->test = 0.15;
	f->min_user = 3;
	f->cold = 0;
	f->cold_seed = 1;
}

static int
fracs_ok(const struct dataset_fracs *f)
{
	return f->pool >= 0 && f->local >= 0 && f->test >= 0 &&
	    fabs(f->pool + f->local + f->test - 1.0) <= 1e-6 &&
	    f->cold >= 0 && f->cold < 1;
}

int
dataset_fracs_parse(struct dataset_fracs *f, const char *s)
{
	char buf[128];
	struct fld fl[4];
	double v[3];
	struct dataset_fracs t = *f;
	size_t n = strlen(s);

	if (n == 0 || n >= sizeof(buf))
		return -EINVAL;
	memcpy(buf, s, n + 1);
	if (split_c(buf, n, ',', fl, 4) != 3)
		return -EINVAL;
	for (int i = 0; i < 3; i++)
		if (parse_dbl(fl[i].p, fl[i].n, &v[i]) != 0)
			return -EINVAL;
	t.pool = v[0];
	t.local = v[1];
	t.test = v[2];
	if (!fracs_ok(&t))
		return -EINVAL;
	*f = t;
	return 0;
}

static void
idx_alloc(struct dataset_idx *x, size_t n, uint32_t nu)
{
	x->v = xmalloc((n ? n : 1) * sizeof(*x->v));
	x->n = 0;
	x->uoff = xcalloc((size_t)nu + 1, sizeof(*x->uoff));
	x->n_users = nu;
}

struct cold_key {
	uint64_t h;
	uint32_t user;
};

static int
cold_cmp(const void *a, const void *b)
{
	const struct cold_key *x = a, *y = b;

	if (x->h != y->h)
		return x->h < y->h ? -1 : 1;
	return x->user < y->user ? -1 : x->user > y->user;
}

/* Flags the cold users: a seeded hash order, so the count is exact. */
static void
pick_cold(struct dataset_split *sp, const struct dataset_idx *all,
    const struct dataset_fracs *f)
{
	struct cold_key *k = xmalloc((all->n_users ? all->n_users : 1) *
	    sizeof(*k));
	size_t n = 0, want;

	for (uint32_t u = 0; u < all->n_users; u++) {
		uint64_t x = f->cold_seed ^ 0x434f4c44ULL;	/* "COLD" */

		if (all->uoff[u + 1] - all->uoff[u] < f->min_user ||
		    all->uoff[u + 1] == all->uoff[u])
			continue;
		x += 0x9e3779b97f4a7c15ULL * ((uint64_t)u + 1);
		k[n].h = rng_splitmix(&x);
		k[n++].user = u;
	}
	qsort(k, n, sizeof(*k), cold_cmp);
	want = (size_t)floor(f->cold * (double)n + 0.5);
	for (size_t i = 0; i < want && i < n; i++)
		sp->cold[k[i].user] = 1;
	sp->n_cold = (uint32_t)(want < n ? want : n);
	free(k);
}

int
dataset_split(struct dataset_split *sp, const struct dataset *ds,
    const struct dataset_fracs *f)
{
	struct dataset_idx all;
	struct dataset_idx *part[3] = { &sp->pool, &sp->local, &sp->test };

	memset(sp, 0, sizeof(*sp));
	if (!fracs_ok(f))
		return -EINVAL;
	dataset_idx_all(&all, ds);
	for (int k = 0; k < 3; k++)
		idx_alloc(part[k], ds->n, all.n_users);
	sp->cold = xcalloc(all.n_users ? all.n_users : 1, 1);
	if (f->cold > 0)
		pick_cold(sp, &all, f);
	for (uint32_t u = 0; u < all.n_users; u++) {
		size_t a = all.uoff[u], n = all.uoff[u + 1] - a, cut[3];

		if (n < f->min_user) {
			cut[0] = n;
			cut[1] = n;
		} else {
			cut[0] = (size_t)floor(f->pool * (double)n + 1e-9);
			cut[1] = (size_t)floor((f->pool + f->local) *
			    (double)n + 1e-9);
			if (cut[1] > n)
				cut[1] = n;
			if (cut[0] > cut[1])
				cut[0] = cut[1];
			if (sp->cold[u])
				cut[0] = 0;
		}
		cut[2] = n;
		for (size_t i = 0, k = 0; i < n; i++) {
			while (i >= cut[k])
				k++;
			part[k]->v[part[k]->n++] = all.v[a + i];
		}
		for (int k = 0; k < 3; k++)
			part[k]->uoff[u + 1] = part[k]->n;
	}
	dataset_idx_fini(&all);
	return 0;
}

void
dataset_split_fini(struct dataset_split *sp)
{
	dataset_idx_fini(&sp->pool);
	dataset_idx_fini(&sp->local);
	dataset_idx_fini(&sp->test);
	free(sp->cold);
	sp->cold = NULL;
	sp->n_cold = 0;
}

int
dataset_carve_val(struct dataset_idx *train, struct dataset_idx *val,
    const struct dataset_idx *x, double frac)
{
	memset(train, 0, sizeof(*train));
	memset(val, 0, sizeof(*val));
	if (!(frac >= 0 && frac < 1))
		return -EINVAL;
	idx_alloc(train, x->n, x->n_users);
	idx_alloc(val, x->n, x->n_users);
	for (uint32_t u = 0; u < x->n_users; u++) {
		size_t a = x->uoff[u], n = x->uoff[u + 1] - a;
		size_t nv = (size_t)floor(frac * (double)n + 0.5);

		if (n > 0 && nv > n - 1)
			nv = n - 1;
		memcpy(train->v + train->n, x->v + a,
		    (n - nv) * sizeof(*x->v));
		train->n += n - nv;
		memcpy(val->v + val->n, x->v + a + n - nv,
		    nv * sizeof(*x->v));
		val->n += nv;
		train->uoff[u + 1] = train->n;
		val->uoff[u + 1] = val->n;
	}
	return 0;
}

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
	uint32_t nu = max_user(ds);
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

/* ------------------------------------------------------------------------ */
/* MovieLens                                                                */

struct rawr {
	int64_t	 u, i, ts;
	float	 rating;
};

struct rawmovie {
	int64_t	 id;
	size_t	 line;
	uint32_t mask;
};

struct mlload {
	struct ectx e;
	struct rawr *r;
	size_t	 nr, rcap;
	struct rawmovie *m;
	size_t	 nm, mcap;
	char	 genre[SAMPLE_GENRES_MAX][DATASET_GENRE_NAME_MAX];
	uint32_t n_genres;
	int	 fixed_genres;	/* 100K: genre bits fixed by u.genre */
};

static int
path_exists(const char *dir, const char *name)
{
	char p[4096];
	struct stat st;

	if ((size_t)snprintf(p, sizeof(p), "%s/%s", dir, name) >= sizeof(p))
		return 0;
	return stat(p, &st) == 0 && S_ISREG(st.st_mode);
}

int
dataset_detect(const char *dir)
{
	if (path_exists(dir, "ratings.csv"))
		return DATASET_FMT_LATEST;
	if (path_exists(dir, "ratings.dat"))
		return DATASET_FMT_1M;
	if (path_exists(dir, "u.data"))
		return DATASET_FMT_100K;
	return -ENOENT;
}

static void
add_rating(struct mlload *L, int64_t u, int64_t i, double r, int64_t ts)
{
	if (L->nr == L->rcap) {
		L->rcap = L->rcap ? 2 * L->rcap : 4096;
		L->r = xreallocarray(L->r, L->rcap, sizeof(*L->r));
	}
	L->r[L->nr].u = u;
	L->r[L->nr].i = i;
	L->r[L->nr].ts = ts;
	L->r[L->nr].rating = (float)r;
	L->nr++;
}

static void
add_movie(struct mlload *L, int64_t id, size_t line, uint32_t mask)
{
	if (L->nm == L->mcap) {
		L->mcap = L->mcap ? 2 * L->mcap : 1024;
		L->m = xreallocarray(L->m, L->mcap, sizeof(*L->m));
	}
	L->m[L->nm].id = id;
	L->m[L->nm].line = line;
	L->m[L->nm].mask = mask;
	L->nm++;
}

/* Raw ids are non-negative decimals below 2^53. */
static int
parse_id(const struct fld *f, int64_t *out)
{
	uint64_t v;

	if (parse_u64(f->p, f->n, &v) != 0 || v > (1ull << 53))
		return -1;
	*out = (int64_t)v;
	return 0;
}

/* Checks and stores one rating from its four fields. */
static int
rating_fields(struct mlload *L, const char *path, size_t line,
    const struct fld *f)
{
	int64_t u, i, ts;
	double r;

	if (parse_id(&f[0], &u) != 0)
		return bad_line(&L->e, path, line, "bad user id");
	if (parse_id(&f[1], &i) != 0)
		return bad_line(&L->e, path, line, "bad item id");
	if (parse_dbl(f[2].p, f[2].n, &r) != 0 || r < 0 || r > 10)
		return bad_line(&L->e, path, line, "bad rating");
	if (parse_i64(f[3].p, f[3].n, &ts) != 0)
		return bad_line(&L->e, path, line, "bad timestamp");
	add_rating(L, u, i, r, ts);
	return 0;
}

/* Genre name -> bit, adding it if new; -1 when more than 32. */
static int
genre_bit(struct mlload *L, const char *p, size_t n)
{
	for (uint32_t g = 0; g < L->n_genres; g++)
		if (strlen(L->genre[g]) == n && memcmp(L->genre[g], p, n) == 0)
			return (int)g;
	if (L->n_genres == SAMPLE_GENRES_MAX)
		return -1;
	memcpy(L->genre[L->n_genres], p, n);
	L->genre[L->n_genres][n] = '\0';
	return (int)L->n_genres++;
}

/* "A|B|C" -> mask; "(no genres listed)" and "" -> 0. */
static int
genre_list(struct mlload *L, const char *path, size_t line, char *p,
    size_t n, uint32_t *mask)
{
	struct fld g[SAMPLE_GENRES_MAX + 1];
	int k;

	*mask = 0;
	if (n == 0 || (n == 18 && memcmp(p, "(no genres listed)", 18) == 0))
		return 0;
	k = split_c(p, n, '|', g, SAMPLE_GENRES_MAX + 1);
	if (k > SAMPLE_GENRES_MAX)
		return bad_line(&L->e, path, line, "too many genres") ? -1 : 1;
	for (int j = 0; j < k; j++) {
		int b;

		if (g[j].n == 0 || g[j].n >= DATASET_GENRE_NAME_MAX ||
		    memchr(g[j].p, '\0', g[j].n) != NULL)
			return bad_line(&L->e, path, line, "bad genre name") ?
			    -1 : 1;
		if ((b = genre_bit(L, g[j].p, g[j].n)) < 0)
			return bad_line(&L->e, path, line,
			    "more than 32 distinct genres") ? -1 : 1;
		*mask |= 1u << b;
	}
	return 0;
}

typedef int (*line_fn)(struct mlload *, const char *, size_t, char *,
    size_t);

/*
 * Runs fn over every non-empty line of dir/name; header lines (count
 * hdr) must equal hdr_text when it is non-NULL. Returns 0, -ENOENT, -EIO
 * or -EINVAL.
 */
static int
for_lines(struct mlload *L, const char *dir, const char *name,
    const char *hdr_text, line_fn fn)
{
	char path[4096];
	struct lr r;
	char *line;
	size_t len;
	int rc, st, skip;

	if ((size_t)snprintf(path, sizeof(path), "%s/%s", dir, name) >=
	    sizeof(path))
		return -ENAMETOOLONG;
	if ((rc = lr_open(&r, path)) != 0) {
		err_set(L->e.err, "%s: %s", path, strerror(-rc));
		return rc;
	}
	rc = 0;
	skip = L->e.skip;
	while ((st = lr_next(&r, &line, &len)) != LR_EOF) {
		if (st == LR_IOERR) {
			rc = -errno;
			err_set(L->e.err, "%s: %s", path, strerror(errno));
			break;
		}
		if (st == LR_LONG) {
			if (r.lineno == 1 && hdr_text != NULL)
				L->e.skip = 0;
			if ((rc = bad_line(&L->e, path, r.lineno,
			    "line too long")) != 0)
				break;
			continue;
		}
		if (r.lineno == 1 && len >= 3 &&
		    memcmp(line, "\xef\xbb\xbf", 3) == 0) {
			line += 3;	/* UTF-8 BOM */
			len -= 3;
		}
		if (r.lineno == 1 && hdr_text != NULL) {
			if (len != strlen(hdr_text) ||
			    memcmp(line, hdr_text, len) != 0) {
				char m[128];

				snprintf(m, sizeof(m), "expected header '%s'",
				    hdr_text);
				/* A bad header is never skippable. */
				L->e.skip = 0;
				rc = bad_line(&L->e, path, r.lineno, m);
				break;
			}
			continue;
		}
		if (len == 0)
			continue;
		if (L->e.err != NULL)
			L->e.err->n_lines++;
		if ((rc = fn(L, path, r.lineno, line, len)) != 0)
			break;
	}
	L->e.skip = skip;
	lr_close(&r);
	return rc;
}

static int
ratings_tab_fn(struct mlload *L, const char *path, size_t line, char *s,
    size_t n)
{
	struct fld f[4];

	if (split_c(s, n, '\t', f, 4) != 4)
		return bad_line(&L->e, path, line, "expected 4 fields");
	return rating_fields(L, path, line, f);
}

static int
ratings_dat_fn(struct mlload *L, const char *path, size_t line, char *s,
    size_t n)
{
	struct fld f[4];

	if (split_cc(s, n, f, 4) != 4)
		return bad_line(&L->e, path, line, "expected 4 fields");
	return rating_fields(L, path, line, f);
}

static int
ratings_csv_fn(struct mlload *L, const char *path, size_t line, char *s,
    size_t n)
{
	struct fld f[4];
	int k = split_csv(s, n, f, 4);

	if (k < 0)
		return bad_line(&L->e, path, line, "bad quoting");
	if (k != 4)
		return bad_line(&L->e, path, line, "expected 4 fields");
	return rating_fields(L, path, line, f);
}

static int
movie_common(struct mlload *L, const char *path, size_t line,
    const struct fld *id, char *g, size_t gn)
{
	int64_t mid;
	uint32_t mask;
	int rc;

	if (parse_id(id, &mid) != 0)
		return bad_line(&L->e, path, line, "bad movie id");
	if ((rc = genre_list(L, path, line, g, gn, &mask)) != 0)
		return rc < 0 ? -EINVAL : 0;
	add_movie(L, mid, line, mask);
	return 0;
}

static int
movies_csv_fn(struct mlload *L, const char *path, size_t line, char *s,
    size_t n)
{
	struct fld f[3];
	int k = split_csv(s, n, f, 3);

	if (k < 0)
		return bad_line(&L->e, path, line, "bad quoting");
	if (k != 3)
		return bad_line(&L->e, path, line, "expected 3 fields");
	if (f[1].n > DATASET_FIELD_MAX)
		return bad_line(&L->e, path, line, "title too long");
	return movie_common(L, path, line, &f[0], f[2].p, f[2].n);
}

static int
movies_dat_fn(struct mlload *L, const char *path, size_t line, char *s,
    size_t n)
{
	struct fld f[64];
	int k = split_cc(s, n, f, 64);

	/* A title containing "::" just yields more fields: id is the first,
	 * genres the last. */
	if (k < 3)
		return bad_line(&L->e, path, line, "expected 3 fields");
	if (k > 64)
		return bad_line(&L->e, path, line, "too many fields");
	return movie_common(L, path, line, &f[0], f[k - 1].p, f[k - 1].n);
}

static int
uitem_fn(struct mlload *L, const char *path, size_t line, char *s, size_t n)
{
	struct fld f[128];
	int k = split_c(s, n, '|', f, 128);
	int ng = (int)L->n_genres;
	uint32_t mask = 0;
	int64_t mid;

	/* id|title|date|video date|url|flags...: title may hold '|', so the
	 * flags are the last n_genres fields. */
	if (k < 5 + ng)
		return bad_line(&L->e, path, line, "too few fields");
	if (k > 128)
		return bad_line(&L->e, path, line, "too many fields");
	if (parse_id(&f[0], &mid) != 0)
		return bad_line(&L->e, path, line, "bad movie id");
	for (int g = 0; g < ng; g++) {
		const struct fld *x = &f[k - ng + g];

		if (x->n != 1 || (x->p[0] != '0' && x->p[0] != '1'))
			return bad_line(&L->e, path, line, "bad genre flag");
		if (x->p[0] == '1')
			mask |= 1u << g;
	}
	add_movie(L, mid, line, mask);
	return 0;
}

static int
ugenre_fn(struct mlload *L, const char *path, size_t line, char *s,
    size_t n)
{
	struct fld f[3];
	uint32_t idx;

	if (split_c(s, n, '|', f, 3) != 2)
		return bad_line(&L->e, path, line, "expected 2 fields");
	if (parse_u32(f[1].p, f[1].n, &idx) != 0 || idx != L->n_genres ||
	    idx >= SAMPLE_GENRES_MAX)
		return bad_line(&L->e, path, line, "bad genre index");
	if (f[0].n == 0 || f[0].n >= DATASET_GENRE_NAME_MAX)
		return bad_line(&L->e, path, line, "bad genre name");
	memcpy(L->genre[idx], f[0].p, f[0].n);
	L->genre[idx][f[0].n] = '\0';
	L->n_genres++;
	return 0;
}

static const char *const ml100k_genres[] = {
	"unknown", "Action", "Adventure", "Animation", "Children's",
	"Comedy", "Crime", "Documentary", "Drama", "Fantasy", "Film-Noir",
	"Horror", "Musical", "Mystery", "Romance", "Sci-Fi", "Thriller",
	"War", "Western",
};

static int
i64_cmp(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;

	return x < y ? -1 : x > y;
}

static int
movie_cmp(const void *a, const void *b)
{
	const struct rawmovie *x = a, *y = b;

	if (x->id != y->id)
		return x->id < y->id ? -1 : 1;
	return x->line < y->line ? -1 : x->line > y->line;
}

/* Sorted unique copy of a field of the raw ratings. */
static int64_t *
uniq_ids(const struct rawr *r, size_t n, int which, uint32_t *nout)
{
	int64_t *v = xmalloc((n ? n : 1) * sizeof(*v));
	size_t w = 0;

	for (size_t i = 0; i < n; i++)
		v[i] = which ? r[i].i : r[i].u;
	qsort(v, n, sizeof(*v), i64_cmp);
	for (size_t i = 0; i < n; i++)
		if (w == 0 || v[w - 1] != v[i])
			v[w++] = v[i];
	*nout = (uint32_t)w;
	return xreallocarray(v, w ? w : 1, sizeof(*v));
}

static size_t
find_id(const int64_t *v, size_t n, int64_t id)
{
	size_t lo = 0, hi = n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (v[mid] < id)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

struct gname {
	char	 name[DATASET_GENRE_NAME_MAX];
	uint32_t old;
};

static int
gname_cmp(const void *a, const void *b)
{
	return strcmp(((const struct gname *)a)->name,
	    ((const struct gname *)b)->name);
}

/* Dense ids, labels, genres, canonical order, histories. */
static int
ml_finish(struct mlload *L, struct dataset *ds, struct dataset_meta *meta,
    const struct dataset_opts *o)
{
	uint32_t nu, ni, remap[SAMPLE_GENRES_MAX];
	int64_t *uraw, *iraw;
	uint32_t *igen;

	if (L->nr == 0) {
		err_set(L->e.err, "no ratings");
		return -EINVAL;
	}
	if (L->nr > UINT32_MAX) {
		err_set(L->e.err, "too many ratings");
		return -E2BIG;
	}
	/* Genre bits sorted by name, except 100K which keeps u.genre order. */
	for (uint32_t g = 0; g < SAMPLE_GENRES_MAX; g++)
		remap[g] = g;
	if (!L->fixed_genres) {
		struct gname gn[SAMPLE_GENRES_MAX];

		for (uint32_t g = 0; g < L->n_genres; g++) {
			memcpy(gn[g].name, L->genre[g], sizeof(gn[g].name));
			gn[g].old = g;
		}
		qsort(gn, L->n_genres, sizeof(gn[0]), gname_cmp);
		for (uint32_t g = 0; g < L->n_genres; g++) {
			remap[gn[g].old] = g;
			memcpy(L->genre[g], gn[g].name, sizeof(gn[g].name));
		}
	}
	uraw = uniq_ids(L->r, L->nr, 0, &nu);
	iraw = uniq_ids(L->r, L->nr, 1, &ni);
	igen = xcalloc(ni, sizeof(*igen));
	if (L->nm > 0)
		qsort(L->m, L->nm, sizeof(*L->m), movie_cmp);
	for (uint32_t i = 0; i < ni; i++) {
		size_t lo = 0, hi = L->nm;

		while (lo < hi) {
			size_t mid = lo + (hi - lo) / 2;

			if (L->m[mid].id < iraw[i])
				lo = mid + 1;
			else
				hi = mid;
		}
		if (lo < L->nm && L->m[lo].id == iraw[i]) {
			uint32_t m = L->m[lo].mask, mm = 0;

			for (uint32_t g = 0; g < L->n_genres; g++)
				if (m & (1u << g))
					mm |= 1u << remap[g];
			igen[i] = mm;
		}
	}
	dataset_reserve(ds, L->nr, 0);
	for (size_t k = 0; k < L->nr; k++) {
		struct sample *s = &ds->s[k];
		const struct rawr *r = &L->r[k];

		memset(s, 0, sizeof(*s));
		s->user = (uint32_t)find_id(uraw, nu, r->u);
		s->item = (uint32_t)find_id(iraw, ni, r->i);
		s->ts = r->ts;
		s->rating = r->rating;
		s->label = r->rating >= o->label_threshold ? 1.0f : 0.0f;
		s->genres = igen[s->item];
	}
	ds->n = L->nr;
	ds->n_users = nu;
	ds->n_items = ni;
	ds->n_genres = L->n_genres;
	dataset_build_hist(ds, o->hist_k);
	meta->n_users = nu;
	meta->n_items = ni;
	meta->n_genres = L->n_genres;
	meta->user_raw = uraw;
	meta->item_raw = iraw;
	meta->item_genres = igen;
	memcpy(meta->genre, L->genre, sizeof(meta->genre));
	return 0;
}

int
dataset_load_movielens(struct dataset *ds, struct dataset_meta *meta,
    const char *dir, const struct dataset_opts *o, struct dataset_err *err)
{
	struct dataset_opts def;
	struct dataset_err dummy;
	struct mlload L;
	int fmt, rc;

	if (o == NULL) {
		dataset_opts_default(&def);
		o = &def;
	}
	if (err == NULL)
		err = &dummy;
	memset(err, 0, sizeof(*err));
	memset(&L, 0, sizeof(L));
	L.e.err = err;
	L.e.skip = o->skip_bad;
	if (o->hist_k < 0 || o->hist_k > SAMPLE_HIST_MAX) {
		err_set(err, "hist length %d out of range 0..%d", o->hist_k,
		    SAMPLE_HIST_MAX);
		return -EINVAL;
	}
	fmt = o->fmt != DATASET_FMT_AUTO ? (int)o->fmt : dataset_detect(dir);
	if (fmt < 0) {
		err_set(err, "%s: no MovieLens ratings file (ratings.csv, "
		    "ratings.dat or u.data)", dir);
		return fmt;
	}
	switch (fmt) {
	case DATASET_FMT_LATEST:
		rc = for_lines(&L, dir, "ratings.csv",
		    "userId,movieId,rating,timestamp", ratings_csv_fn);
		if (rc == 0 && path_exists(dir, "movies.csv"))
			rc = for_lines(&L, dir, "movies.csv",
			    "movieId,title,genres", movies_csv_fn);
		break;
	case DATASET_FMT_1M:
		rc = for_lines(&L, dir, "ratings.dat", NULL, ratings_dat_fn);
		if (rc == 0 && path_exists(dir, "movies.dat"))
			rc = for_lines(&L, dir, "movies.dat", NULL,
			    movies_dat_fn);
		break;
	case DATASET_FMT_100K:
		L.fixed_genres = 1;
		rc = for_lines(&L, dir, "u.data", NULL, ratings_tab_fn);
		if (rc == 0 && path_exists(dir, "u.genre"))
			rc = for_lines(&L, dir, "u.genre", NULL, ugenre_fn);
		if (rc == 0 && L.n_genres == 0) {
			L.n_genres = sizeof(ml100k_genres) /
			    sizeof(ml100k_genres[0]);
			for (uint32_t g = 0; g < L.n_genres; g++)
				snprintf(L.genre[g], sizeof(L.genre[g]), "%s",
				    ml100k_genres[g]);
		}
		if (rc == 0 && path_exists(dir, "u.item"))
			rc = for_lines(&L, dir, "u.item", NULL, uitem_fn);
		break;
	default:
		rc = -EINVAL;
		err_set(err, "unknown format %d", fmt);
	}
	/* The movies file is optional: without it all genres are 0 (100K
	 * still names its 19 genres). */
	if (rc == 0) {
		meta->fmt = (enum dataset_fmt)fmt;
		rc = ml_finish(&L, ds, meta, o);
	}
	free(L.r);
	free(L.m);
	if (rc != 0) {
		dataset_fini(ds);
		dataset_meta_fini(meta);
	}
	return rc;
}

/* ------------------------------------------------------------------------ */
/* synthetic generator                                                      */

void
synth_opts_default(struct synth_opts *o)
{
	memset(o, 0, sizeof(*o));
	o->n_users = 1000;
	o->n_items = 2000;
	o->n_clusters = 8;
	o->n_genres = 16;
	o->min_per_user = 20;
	o->max_per_user = 200;
	o->base_ctr = 0.3;
	o->bias_std = 1.0;
	o->affinity_std = 1.5;
	o->genre_weight = 0.5;
	o->drift_mean = 0.0;
	o->drift_std = 1.0;
	o->taste_drift = 0.0;
	o->drift_start = 0.70;
	o->noise = 0.0;
	o->item_zipf = 0.8;
	o->hist_k = DATASET_HIST_DEFAULT;
	o->seed = 1;
}

static double
sigmoid(double x)
{
	return 1.0 / (1.0 + exp(-x));
}

int
dataset_synth(struct dataset *ds, struct dataset_meta *meta,
    struct synth_truth **truth_out, const struct synth_opts *o)
{
	return dataset_synth_p(ds, meta, truth_out, NULL, o);
}

int
dataset_synth_p(struct dataset *ds, struct dataset_meta *meta,
    struct synth_truth **truth_out, float **p_true,
    const struct synth_opts *o)
{
	uint32_t K = o->n_clusters, I = o->n_items, G = o->n_genres;
	uint32_t H = (uint32_t)o->hist_k;
	struct synth_truth *tr;
	struct rng g;
	uint64_t sm = o->seed, total = 0;
	float *aff;
	double *cdf, *taste, b0, gw;
	uint32_t *stamp, *igen;
	float *pt = NULL;
	int distinct;

	*truth_out = NULL;
	if (p_true != NULL)
		*p_true = NULL;
	if (o->n_users == 0 || I == 0 || K == 0 || G > SAMPLE_GENRES_MAX ||
	    o->min_per_user == 0 || o->min_per_user > o->max_per_user ||
	    !(o->base_ctr > 0 && o->base_ctr < 1) || o->bias_std < 0 ||
	    o->affinity_std < 0 || o->noise < 0 || o->drift_std < 0 ||
	    !(o->genre_weight >= 0 && o->genre_weight <= 1) ||
	    !(o->taste_drift >= 0 && o->taste_drift <= 1) ||
	    !(o->drift_start >= 0 && o->drift_start <= 1) ||
	    o->item_zipf < 0 || o->item_zipf > 5 || o->hist_k < 0 ||
	    !(o->count_tail >= 0 && o->count_tail <= 100) ||
	    o->hist_k > SAMPLE_HIST_MAX || !isfinite(o->drift_mean))
		return -EINVAL;
	if (o->n_users > SYNTH_MAX_USERS || I > SYNTH_MAX_ITEMS ||
	    (uint64_t)K * I > SYNTH_MAX_AFF ||
	    o->max_per_user > SYNTH_MAX_PER_USER ||
	    (uint64_t)o->n_users * o->max_per_user > UINT32_MAX ||
	    (uint64_t)o->n_users * o->max_per_user * H > UINT32_MAX)
		return -E2BIG;
	gw = G > 0 ? o->genre_weight : 0;
	b0 = log(o->base_ctr / (1 - o->base_ctr));

	/* Items and clusters: one stream, fixed order of draws. */
	rng_seed(&g, rng_splitmix(&sm));
	igen = xcalloc(I, sizeof(*igen));
	for (uint32_t i = 0; i < I && G > 0; i++) {
		igen[i] = 1u << rng_below(&g, G);
		if (rng_unif(&g) < 0.3)
			igen[i] |= 1u << rng_below(&g, G);
	}
	taste = xmalloc(((size_t)K * (G ? G : 1)) * sizeof(*taste));
	for (size_t j = 0; j < (size_t)K * G; j++)
		taste[j] = rng_normal(&g);
	aff = xmalloc((size_t)K * I * sizeof(*aff));
	for (uint32_t c = 0; c < K; c++) {
		for (uint32_t i = 0; i < I; i++) {
			double t = 0;
			int ng = 0;

			for (uint32_t x = igen[i]; x != 0; x &= x - 1, ng++)
				t += taste[(size_t)c * G +
				    (uint32_t)__builtin_ctz(x)];
			if (ng > 0)
				t /= sqrt((double)ng);
			aff[(size_t)c * I + i] = (float)(o->affinity_std *
			    (sqrt(1 - gw) * rng_normal(&g) + sqrt(gw) * t));
		}
	}
	free(taste);
	/* Zipf popularity over item ids: item i has weight (i+1)^-zipf. */
	cdf = xmalloc(I * sizeof(*cdf));
	for (uint32_t i = 0; i < I; i++)
		cdf[i] = (i ? cdf[i - 1] : 0) + pow(i + 1.0, -o->item_zipf);
	for (uint32_t i = 0; i < I; i++)
		cdf[i] /= cdf[I - 1];

	tr = xcalloc(o->n_users, sizeof(*tr));
	for (uint32_t u = 0; u < o->n_users; u++) {
		uint32_t span = o->max_per_user - o->min_per_user + 1;

		if (o->count_tail > 0) {
			/* 1 - unif is in (0, 1]: the power stays finite */
			double c = o->min_per_user * pow(1.0 - rng_unif(&g),
			    -1.0 / o->count_tail);

			tr[u].n = c >= o->max_per_user ? o->max_per_user :
			    (uint32_t)c;
		} else {
			tr[u].n = o->min_per_user + rng_below(&g, span);
		}
		total += tr[u].n;
	}
	dataset_init(ds);
	dataset_reserve(ds, (size_t)total, (size_t)total * (H < 16 ? H : 16));
	stamp = xcalloc(I, sizeof(*stamp));
	distinct = o->max_per_user <= I / 2;
	if (p_true != NULL)
		pt = xmalloc((size_t)(total ? total : 1) * sizeof(*pt));

	for (uint32_t u = 0; u < o->n_users; u++) {
		struct synth_truth *t = &tr[u];
		uint64_t us = o->seed ^ (0xa0761d6478bd642fULL * (u + 1ULL));
		struct rng r;
		uint32_t ring[SAMPLE_HIST_MAX], tmp[SAMPLE_HIST_MAX];
		size_t head = 0, cnt = 0;
		double pe = 0, pl = 0;
		int64_t ts;

		rng_seed(&r, rng_splitmix(&us));
		t->cluster = rng_below(&r, K);
		t->cluster_late = t->cluster;
		if (K > 1 && rng_unif(&r) < o->taste_drift)
			t->cluster_late = (t->cluster + 1 +
			    rng_below(&r, K - 1)) % K;
		t->bias = (float)(o->bias_std * rng_normal(&r));
		t->drift = (float)(o->drift_mean + o->drift_std *
		    rng_normal(&r));
		t->n_early = (uint32_t)floor(o->drift_start * t->n + 1e-9);
		ts = 1500000000 + (int64_t)rng_below(&r, 86400 * 365);
		for (uint32_t k = 0; k < t->n; k++) {
			struct sample s;
			int late = k >= t->n_early;
			uint32_t c = late ? t->cluster_late : t->cluster;
			uint32_t it;
			double x, p;

			for (int tries = 0;; tries++) {
				double q = rng_unif(&r);
				size_t lo = 0, hi = I - 1;

				while (lo < hi) {
					size_t mid = lo + (hi - lo) / 2;

					if (cdf[mid] <= q)
						lo = mid + 1;
					else
						hi = mid;
				}
				it = (uint32_t)lo;
				if (!distinct || stamp[it] != u + 1)
					break;
				if (tries > 64) {
					/* Heavy skew: fall back to uniform. */
					it = rng_below(&r, I);
					if (stamp[it] != u + 1)
						break;
				}
			}
			stamp[it] = u + 1;
			x = b0 + t->bias + (late ? t->drift : 0) +
			    aff[(size_t)c * I + it];
			if (o->noise > 0)
				x += o->noise * rng_normal(&r);
			p = sigmoid(x);
			if (late)
				pl += p;
			else
				pe += p;
			ts += 60 + (int64_t)rng_below(&r, 7200);
			memset(&s, 0, sizeof(s));
			s.user = u;
			s.item = it;
			s.ts = ts;
			s.label = rng_unif(&r) < p ? 1.0f : 0.0f;
			s.rating = 0;
			s.genres = igen[it];
			for (size_t j = 0; j < cnt; j++)
				tmp[j] = ring[(head + j) % H];
			if (pt != NULL)
				pt[ds->n] = (float)p;
			dataset_append(ds, &s, tmp, cnt);
			if (H > 0 && s.label > 0.5f) {
				if (cnt < H) {
					ring[(head + cnt) % H] = it;
					cnt++;
				} else {
					ring[head] = it;
					head = (head + 1) % H;
				}
			}
		}
		t->p_early = t->n_early ? (float)(pe / t->n_early) : 0;
		t->p_late = t->n > t->n_early ?
		    (float)(pl / (t->n - t->n_early)) : 0;
	}
	ds->n_users = o->n_users;
	ds->n_items = I;
	ds->n_genres = G;
	free(stamp);
	free(cdf);
	free(aff);

	dataset_meta_init(meta);
	meta->fmt = DATASET_FMT_AUTO;
	meta->n_users = o->n_users;
	meta->n_items = I;
	meta->n_genres = G;
	meta->item_genres = igen;
	meta->user_raw = xmalloc(o->n_users * sizeof(*meta->user_raw));
	for (uint32_t u = 0; u < o->n_users; u++)
		meta->user_raw[u] = u;
	meta->item_raw = xmalloc(I * sizeof(*meta->item_raw));
	for (uint32_t i = 0; i < I; i++)
		meta->item_raw[i] = i;
	for (uint32_t k = 0; k < G; k++)
		snprintf(meta->genre[k], sizeof(meta->genre[k]), "g%u", k);
	*truth_out = tr;
	if (p_true != NULL)
		*p_true = pt;
	return 0;
}

/* ------------------------------------------------------------------------ */
/* samples CSV                                                              */

#define CSV_HEADER	"user,item,ts,rating,label,genres,hist"
#define WBUF_SZ		(1u << 20)

struct wbuf {
	FILE	*fp;
	char	*b;
	size_t	 n;
	int	 err;
};

static void
wb_flush(struct wbuf *w)
{
	if (w->n > 0 && fwrite(w->b, 1, w->n, w->fp) != w->n)
		w->err = errno ? errno : EIO;
	w->n = 0;
}

static char *
put_u64(char *p, uint64_t v)
{
	char t[24];
	int k = 0;

	do {
		t[k++] = (char)('0' + v % 10);
		v /= 10;
	} while (v != 0);
	while (k > 0)
		*p++ = t[--k];
	return p;
}

static char *
put_i64(char *p, int64_t v)
{
	if (v < 0) {
		*p++ = '-';
		return put_u64(p, (uint64_t)0 - (uint64_t)v);
	}
	return put_u64(p, (uint64_t)v);
}

/* Multiples of 0.5 in [0, 1e6] are printed by hand, others with %.9g
 * (enough digits for a float to round-trip). */
static char *
put_num(char *p, float f)
{
	float h = f * 2;

	if (f >= 0 && f <= 1e6f && h == (float)(uint32_t)h) {
		uint32_t v = (uint32_t)h;

		p = put_u64(p, v / 2);
		if (v & 1) {
			*p++ = '.';
			*p++ = '5';
		}
		return p;
	}
	return p + snprintf(p, 32, "%.9g", (double)f);
}

int
dataset_write_csv_fp(FILE *fp, const struct dataset *ds, const size_t *idx,
    size_t n)
{
	struct wbuf w = { fp, xmalloc(WBUF_SZ), 0, 0 };
	int rc;

	if (idx == NULL)
		n = ds->n;
	w.n = (size_t)snprintf(w.b, 256,
	    "# dccl-samples v1 n_users=%u n_items=%u n_genres=%u\n"
	    CSV_HEADER "\n", ds->n_users, ds->n_items, ds->n_genres);
	for (size_t k = 0; k < n && !w.err; k++) {
		const struct sample *s = &ds->s[idx ? idx[k] : k];
		const uint32_t *h = sample_hist(ds, s);
		char *p;

		/* a row is < 5 * 21 + 2 * 32 + 11 * (1 + SAMPLE_HIST_MAX) */
		if (w.n + 2048 > WBUF_SZ)
			wb_flush(&w);
		p = w.b + w.n;
		p = put_u64(p, s->user);
		*p++ = ',';
		p = put_u64(p, s->item);
		*p++ = ',';
		p = put_i64(p, s->ts);
		*p++ = ',';
		p = put_num(p, s->rating);
		*p++ = ',';
		p = put_num(p, s->label);
		*p++ = ',';
		p = put_u64(p, s->genres);
		*p++ = ',';
		for (uint16_t j = 0; j < s->hist_n && j < SAMPLE_HIST_MAX;
		    j++) {
			if (j > 0)
				*p++ = '|';
			p = put_u64(p, h[j]);
		}
		*p++ = '\n';
		w.n = (size_t)(p - w.b);
	}
	wb_flush(&w);
	rc = w.err ? -w.err : 0;
	free(w.b);
	return rc;
}

int
dataset_write_csv(const char *path, const struct dataset *ds,
    const size_t *idx, size_t n)
{
	FILE *fp = fopen(path, "w");
	int rc;

	if (fp == NULL)
		return -errno;
	rc = dataset_write_csv_fp(fp, ds, idx, n);
	if (fclose(fp) != 0 && rc == 0)
		rc = -errno;
	return rc;
}

/* "key=value" from a '#' header line; returns 0 and the value if found. */
static int
hdr_u32(const char *line, size_t len, const char *key, uint32_t *out)
{
	size_t kl = strlen(key);

	for (size_t i = 0; i + kl < len; i++) {
		if ((i == 0 || line[i - 1] == ' ') &&
		    memcmp(line + i, key, kl) == 0 && line[i + kl] == '=') {
			size_t a = i + kl + 1, b = a;

			while (b < len && line[b] != ' ')
				b++;
			return parse_u32(line + a, b - a, out);
		}
	}
	return -1;
}

int
dataset_read_csv(struct dataset *ds, const char *path,
    const struct dataset_opts *o, struct dataset_err *err)
{
	struct dataset_err dummy;
	struct ectx e;
	struct lr r;
	char *line;
	size_t len;
	int rc, st, have_hdr = 0, seen_cols = 0;
	uint32_t nu = 0, ni = 0, ng = 0;
	struct dataset saved = *ds;	/* sizes, to undo a failed read */

	if (err == NULL)
		err = &dummy;
	memset(err, 0, sizeof(*err));
	e.err = err;
	e.skip = o != NULL && o->skip_bad;
	if ((rc = lr_open(&r, path)) != 0) {
		err_set(err, "%s: %s", path, strerror(-rc));
		return rc;
	}
	while ((st = lr_next(&r, &line, &len)) != LR_EOF) {
		struct fld f[8];
		struct sample s;
		uint32_t hist[SAMPLE_HIST_MAX];
		size_t hn = 0;
		double rating, label;
		const char *why = NULL;
		int k;

		if (st == LR_IOERR) {
			rc = -errno;
			err_set(err, "%s: %s", path, strerror(errno));
			break;
		}
		if (st == LR_LONG) {
			if (!seen_cols)
				e.skip = 0;	/* headers are never skipped */
			if ((rc = bad_line(&e, path, r.lineno,
			    "line too long")) != 0)
				break;
			continue;
		}
		if (!seen_cols) {
			if (len > 0 && line[0] == '#') {
				if (len > 16 && memcmp(line,
				    "# dccl-samples v1", 17) == 0 &&
				    hdr_u32(line, len, "n_users", &nu) == 0 &&
				    hdr_u32(line, len, "n_items", &ni) == 0 &&
				    hdr_u32(line, len, "n_genres", &ng) == 0 &&
				    ng <= SAMPLE_GENRES_MAX &&
				    nu <= DATASET_ID_MAX && ni <= DATASET_ID_MAX)
					have_hdr = 1;
				else {
					e.skip = 0;
					rc = bad_line(&e, path, r.lineno,
					    "bad '# dccl-samples v1' line");
					break;
				}
				continue;
			}
			if (len != sizeof(CSV_HEADER) - 1 ||
			    memcmp(line, CSV_HEADER, len) != 0) {
				e.skip = 0;
				rc = bad_line(&e, path, r.lineno,
				    "expected header '" CSV_HEADER "'");
				break;
			}
			seen_cols = 1;
			continue;
		}
		if (len == 0)
			continue;
		err->n_lines++;
		k = split_first(line, len, ',', f, 7);
		memset(&s, 0, sizeof(s));
		if (k != 7 || memchr(f[6].p, ',', f[6].n) != NULL)
			why = "expected 7 fields";
		else if (parse_u32(f[0].p, f[0].n, &s.user) != 0 ||
		    s.user >= (have_hdr ? nu : DATASET_ID_MAX))
			why = "bad user id";
		else if (parse_u32(f[1].p, f[1].n, &s.item) != 0 ||
		    s.item >= (have_hdr ? ni : DATASET_ID_MAX))
			why = "bad item id";
		else if (parse_i64(f[2].p, f[2].n, &s.ts) != 0)
			why = "bad timestamp";
		else if (parse_dbl(f[3].p, f[3].n, &rating) != 0 ||
		    rating < 0 || rating > 1e6)
			why = "bad rating";
		else if (parse_dbl(f[4].p, f[4].n, &label) != 0 ||
		    label < 0 || label > 1)
			why = "bad label";
		else if (parse_u32(f[5].p, f[5].n, &s.genres) != 0 ||
		    (have_hdr && ng < 32 && (s.genres >> ng) != 0))
			why = "bad genres";
		else {
			int nh = parse_idlist(f[6].p, f[6].n, have_hdr ? ni :
			    DATASET_ID_MAX, hist, SAMPLE_HIST_MAX);

			if (nh == -2)
				why = "history too long";
			else if (nh < 0)
				why = "bad history item";
			else
				hn = (size_t)nh;
		}
		if (why != NULL) {
			if ((rc = bad_line(&e, path, r.lineno, why)) != 0)
				break;
			continue;
		}
		s.rating = (float)rating;
		s.label = (float)label;
		dataset_append(ds, &s, hist, hn);
	}
	lr_close(&r);
	if (rc == 0 && !seen_cols) {
		err_set(err, "%s: missing header '" CSV_HEADER "'", path);
		rc = -EINVAL;
	}
	if (rc != 0) {
		ds->n = saved.n;
		ds->hist_len = saved.hist_len;
		ds->n_users = saved.n_users;
		ds->n_items = saved.n_items;
		ds->n_genres = saved.n_genres;
	}
	if (rc == 0 && have_hdr) {
		if (nu > ds->n_users)
			ds->n_users = nu;
		if (ni > ds->n_items)
			ds->n_items = ni;
		if (ng > ds->n_genres)
			ds->n_genres = ng;
	}
	return rc;
}

/* ------------------------------------------------------------------------ */
/* meta file                                                                */

int
dataset_meta_write(const char *path, const struct dataset_meta *m)
{
	FILE *fp = fopen(path, "w");
	int rc = 0;

	if (fp == NULL)
		return -errno;
	fprintf(fp, "# dccl-meta v1\nformat=%s\nn_users=%u\nn_items=%u\n"
	    "n_genres=%u\ngenres=", dataset_fmt_name(m->fmt), m->n_users,
	    m->n_items, m->n_genres);
	for (uint32_t g = 0; g < m->n_genres && g < SAMPLE_GENRES_MAX; g++)
		fprintf(fp, "%s%s", g ? "|" : "", m->genre[g]);
	fputc('\n', fp);
	if (ferror(fp))
		rc = -EIO;
	if (fclose(fp) != 0 && rc == 0)
		rc = -errno;
	return rc;
}

int
dataset_meta_read(struct dataset_meta *m, const char *path,
    struct dataset_err *err)
{
	struct dataset_err dummy;
	struct ectx e;
	struct lr r;
	char *line;
	size_t len;
	int rc, st, seen = 0;

	if (err == NULL)
		err = &dummy;
	memset(err, 0, sizeof(*err));
	e.err = err;
	e.skip = 0;
	dataset_meta_init(m);
	if ((rc = lr_open(&r, path)) != 0) {
		err_set(err, "%s: %s", path, strerror(-rc));
		return rc;
	}
	while ((st = lr_next(&r, &line, &len)) != LR_EOF) {
		char *eq;
		size_t kl;
		const char *v;
		size_t vl;

		if (st != LR_LINE) {
			rc = st == LR_IOERR ? -errno :
			    bad_line(&e, path, r.lineno, "line too long");
			break;
		}
		if (len == 0 || line[0] == '#')
			continue;
		if ((eq = memchr(line, '=', len)) == NULL) {
			rc = bad_line(&e, path, r.lineno, "expected key=value");
			break;
		}
		kl = (size_t)(eq - line);
		v = eq + 1;
		vl = len - kl - 1;
#define KEY(s) (kl == sizeof(s) - 1 && memcmp(line, s, kl) == 0)
		if (KEY("n_users") || KEY("n_items") || KEY("n_genres")) {
			uint32_t x;

			if (parse_u32(v, vl, &x) != 0 || (KEY("n_genres") &&
			    x > SAMPLE_GENRES_MAX)) {
				rc = bad_line(&e, path, r.lineno, "bad number");
				break;
			}
			if (KEY("n_users"))
				m->n_users = x;
			else if (KEY("n_items"))
				m->n_items = x;
			else
				m->n_genres = x;
			seen++;
		} else if (KEY("format")) {
			m->fmt = vl == 4 && memcmp(v, "100k", 4) == 0 ?
			    DATASET_FMT_100K : vl == 2 && memcmp(v, "1m", 2) ==
			    0 ? DATASET_FMT_1M : vl == 6 && memcmp(v, "latest",
			    6) == 0 ? DATASET_FMT_LATEST : DATASET_FMT_AUTO;
		} else if (KEY("genres")) {
			struct fld g[SAMPLE_GENRES_MAX + 1];
			int k = vl ? split_c((char *)v, vl, '|', g,
			    SAMPLE_GENRES_MAX + 1) : 0;

			if (k > SAMPLE_GENRES_MAX) {
				rc = bad_line(&e, path, r.lineno,
				    "too many genres");
				break;
			}
			for (int j = 0; j < k; j++) {
				size_t n = g[j].n < DATASET_GENRE_NAME_MAX ?
				    g[j].n : DATASET_GENRE_NAME_MAX - 1;

				memcpy(m->genre[j], g[j].p, n);
				m->genre[j][n] = '\0';
			}
		}
#undef KEY
	}
	lr_close(&r);
	if (rc == 0 && seen < 3) {
		err_set(err, "%s: missing n_users/n_items/n_genres", path);
		rc = -EINVAL;
	}
	return rc;
}
