/*
 * text: see text.h.
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

#include "shared/data/text.h"
#include "shared/xmalloc.h"

/* ------------------------------------------------------------------------ */
/* error reporting                                                          */


void
text_err_set(struct dataset_err *err, const char *fmt, ...)
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
int
text_bad_line(struct text_ectx *e, const char *path, size_t line, const char *what)
{
	text_err_set(e->err, "%s:%zu: %s", path, line, what);
	if (e->err != NULL)
		e->err->n_bad++;
	return e->skip ? 0 : -EINVAL;
}

/* ------------------------------------------------------------------------ */
/* line reader                                                              */



int
text_lr_open(struct text_lr *r, const char *path)
{
	struct stat st;

	memset(r, 0, sizeof(*r));
	r->fd = open(path, O_RDONLY);
	if (r->fd < 0)
		return -errno;
	r->path = path;
	/*
	 * A small file gets a small buffer (at least a longest line and its
	 * "\r\n", so TEXT_LR_LONG means the same): a 1 MiB allocation per
	 * read dominated short reads (the fuzz harness ran ~1k inputs/s).
	 */
	r->cap = TEXT_LR_BUFSZ;
	if (fstat(r->fd, &st) == 0 && S_ISREG(st.st_mode) &&
	    st.st_size < (off_t)TEXT_LR_BUFSZ)
		r->cap = (size_t)st.st_size + 1 > DATASET_LINE_MAX + 2 ?
		    (size_t)st.st_size + 1 : DATASET_LINE_MAX + 2;
	r->buf = xmalloc(r->cap);
	return 0;
}

void
text_lr_close(struct text_lr *r)
{
	if (r->fd >= 0)
		close(r->fd);
	free(r->buf);
	r->fd = -1;
	r->buf = NULL;
}

/*
 * Next line (without "\n" / "\r\n") in *line, *len; the bytes stay valid
 * until the next call and may be modified in place. Returns TEXT_LR_LINE,
 * TEXT_LR_LONG (a line longer than DATASET_LINE_MAX was consumed), TEXT_LR_EOF or
 * TEXT_LR_IOERR (errno set).
 */
int
text_lr_next(struct text_lr *r, char **line, size_t *len)
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
				return TEXT_LR_LONG;
			}
			if (n > 0 && p[n - 1] == '\r')
				n--;
			*line = p;
			*len = n;
			return TEXT_LR_LINE;
		}
		if (r->eof) {
			if (r->skipping) {
				r->skipping = 0;
				r->lineno++;
				return TEXT_LR_LONG;
			}
			return TEXT_LR_EOF;
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
			return TEXT_LR_IOERR;
		if (k == 0)
			r->eof = 1;
		r->end += (size_t)k;
	}
}

/* ------------------------------------------------------------------------ */
/* field splitting and number parsing                                       */


/* Splits on a one-byte delimiter; returns the total field count (may exceed
 * max; only the first max are stored). */
int
text_split_c(char *s, size_t n, char d, struct text_fld *f, int max)
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
int
text_split_first(char *s, size_t n, char d, struct text_fld *f, int k)
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
int
text_parse_idlist(const char *p, size_t n, uint32_t lim, uint32_t *out, int max)
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
int
text_split_cc(char *s, size_t n, struct text_fld *f, int max)
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
int
text_split_csv(char *s, size_t n, struct text_fld *f, int max)
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
int
text_parse_u64(const char *p, size_t n, uint64_t *out)
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

int
text_parse_u32(const char *p, size_t n, uint32_t *out)
{
	uint64_t v;

	if (text_parse_u64(p, n, &v) != 0 || v > UINT32_MAX)
		return -1;
	*out = (uint32_t)v;
	return 0;
}

int
text_parse_i64(const char *p, size_t n, int64_t *out)
{
	uint64_t v;
	int neg = 0;

	if (n > 0 && (*p == '-' || *p == '+')) {
		neg = *p == '-';
		p++;
		n--;
	}
	if (text_parse_u64(p, n, &v) != 0)
		return -1;
	*out = neg ? -(int64_t)v : (int64_t)v;
	return 0;
}

/*
 * Decimal [+-]digits[.digits][(e|E)[+-]digits]: at least one mantissa digit,
 * at most 40 bytes. Exact for the short decimals we write (ratings, labels
 * printed with %.9g round-trip through float).
 */
int
text_parse_dbl(const char *p, size_t n, double *out)
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
