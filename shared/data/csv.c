/*
 * csv: the samples CSV interchange and the meta file (dataset.h), read
 * through text.c's bounded reader.
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
#include "shared/data/text.h"
#include "shared/xmalloc.h"

/* ------------------------------------------------------------------------ */
/* samples CSV                                                              */

#define CSV_HEADER	"user,item,ts,rating,label,genres,hist"
#define CSV_HEADER_SIDE	CSV_HEADER ",side"	/* v2: with side values */
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
	/* v1 when there are no side fields, so older readers still read it */
	if (ds->n_side == 0 || ds->n_side > SAMPLE_SIDE_MAX)
		w.n = (size_t)snprintf(w.b, 256,
		    "# dccl-samples v1 n_users=%u n_items=%u n_genres=%u\n"
		    CSV_HEADER "\n", ds->n_users, ds->n_items, ds->n_genres);
	else {
		char *p;

		w.n = (size_t)snprintf(w.b, 256, "# dccl-samples v2 n_users=%u "
		    "n_items=%u n_genres=%u n_side=%u side_card=", ds->n_users,
		    ds->n_items, ds->n_genres, ds->n_side);
		p = w.b + w.n;
		for (uint32_t k = 0; k < ds->n_side; k++) {
			if (k > 0)
				*p++ = '|';
			p = put_u64(p, ds->side_card[k]);
		}
		p += snprintf(p, 64, "\n" CSV_HEADER_SIDE "\n");
		w.n = (size_t)(p - w.b);
	}
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
		for (uint32_t j = 0; j < ds->n_side && j < SAMPLE_SIDE_MAX;
		    j++) {
			*p++ = j ? '|' : ',';
			p = put_u64(p, s->side[j]);
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
			return text_parse_u32(line + a, b - a, out);
		}
	}
	return -1;
}

/* "n_side=K side_card=c0|c1|..." of a v2 line; 0 or -1. */
static int
hdr_side(const char *line, size_t len, uint32_t *ns, uint32_t *card)
{
	const char *p;
	uint32_t got[SAMPLE_SIDE_MAX];
	int k;

	if (hdr_u32(line, len, "n_side", ns) != 0 || *ns == 0 ||
	    *ns > SAMPLE_SIDE_MAX)
		return -1;
	for (p = line; p + 11 <= line + len; p++)
		if (memcmp(p, " side_card=", 11) == 0)
			break;
	if (p + 11 > line + len)
		return -1;
	p += 11;
	{
		size_t n = 0;

		while (p + n < line + len && p[n] != ' ')
			n++;
		k = text_parse_idlist(p, n, UINT32_MAX, got, SAMPLE_SIDE_MAX);
	}
	if (k != (int)*ns)
		return -1;
	for (int j = 0; j < k; j++)
		if (got[j] == 0)
			return -1;
	memset(card, 0, SAMPLE_SIDE_MAX * sizeof(*card));
	memcpy(card, got, (size_t)k * sizeof(*card));
	return 0;
}

/* "v0|v1|..." with exactly ns values, each <= its card (== card: unknown). */
static int
side_values(const char *p, size_t n, uint32_t ns, const uint32_t *card,
    uint32_t *out)
{
	uint32_t v[SAMPLE_SIDE_MAX];
	int k = text_parse_idlist(p, n, UINT32_MAX, v, SAMPLE_SIDE_MAX);

	if (k != (int)ns)
		return -1;
	for (int j = 0; j < k; j++) {
		if (v[j] > card[j])
			return -1;
		out[j] = v[j];
	}
	return 0;
}

int
dataset_read_csv(struct dataset *ds, const char *path,
    const struct dataset_opts *o, struct dataset_err *err)
{
	struct dataset_err dummy;
	struct text_ectx e;
	struct text_lr r;
	char *line;
	size_t len;
	int rc, st, have_hdr = 0, seen_cols = 0, with_side = 0;
	uint32_t nu = 0, ni = 0, ng = 0, ns = 0, card[SAMPLE_SIDE_MAX] = { 0 };
	struct dataset saved = *ds;	/* sizes, to undo a failed read */

	if (err == NULL)
		err = &dummy;
	memset(err, 0, sizeof(*err));
	e.err = err;
	e.skip = o != NULL && o->skip_bad;
	if ((rc = text_lr_open(&r, path)) != 0) {
		text_err_set(err, "%s: %s", path, strerror(-rc));
		return rc;
	}
	while ((st = text_lr_next(&r, &line, &len)) != TEXT_LR_EOF) {
		struct text_fld f[8];
		struct sample s;
		uint32_t hist[SAMPLE_HIST_MAX];
		size_t hn = 0;
		double rating, label;
		const char *why = NULL;
		int k;

		if (st == TEXT_LR_IOERR) {
			rc = -errno;
			text_err_set(err, "%s: %s", path, strerror(errno));
			break;
		}
		if (st == TEXT_LR_LONG) {
			if (!seen_cols)
				e.skip = 0;	/* headers are never skipped */
			if ((rc = text_bad_line(&e, path, r.lineno,
			    "line too long")) != 0)
				break;
			continue;
		}
		if (!seen_cols) {
			if (len > 0 && line[0] == '#') {
				int v2 = len > 16 && memcmp(line,
				    "# dccl-samples v2", 17) == 0;

				if (v2 && hdr_side(line, len, &ns, card) != 0) {
					e.skip = 0;
					rc = text_bad_line(&e, path, r.lineno,
					    "bad n_side/side_card in '# "
					    "dccl-samples v2' line");
					break;
				}
				if (len > 16 && (v2 || memcmp(line,
				    "# dccl-samples v1", 17) == 0) &&
				    hdr_u32(line, len, "n_users", &nu) == 0 &&
				    hdr_u32(line, len, "n_items", &ni) == 0 &&
				    hdr_u32(line, len, "n_genres", &ng) == 0 &&
				    ng <= SAMPLE_GENRES_MAX &&
				    nu <= DATASET_ID_MAX && ni <= DATASET_ID_MAX)
					have_hdr = 1;
				else {
					e.skip = 0;
					rc = text_bad_line(&e, path, r.lineno,
					    "bad '# dccl-samples' line");
					break;
				}
				continue;
			}
			with_side = len == sizeof(CSV_HEADER_SIDE) - 1 &&
			    memcmp(line, CSV_HEADER_SIDE, len) == 0;
			if (!with_side && (len != sizeof(CSV_HEADER) - 1 ||
			    memcmp(line, CSV_HEADER, len) != 0)) {
				e.skip = 0;
				rc = text_bad_line(&e, path, r.lineno,
				    "expected header '" CSV_HEADER "'");
				break;
			}
			if (with_side != (ns > 0) || (ds->n > 0 &&
			    (ds->n_side != ns || memcmp(ds->side_card, card,
			    sizeof(card)) != 0))) {
				e.skip = 0;
				rc = text_bad_line(&e, path, r.lineno,
				    with_side != (ns > 0) ? "a side column "
				    "needs '# dccl-samples v2 ... n_side=K "
				    "side_card=...' and the reverse" :
				    "side fields differ from the samples "
				    "already read");
				break;
			}
			seen_cols = 1;
			continue;
		}
		if (len == 0)
			continue;
		err->n_lines++;
		k = text_split_first(line, len, ',', f, 7 + with_side);
		memset(&s, 0, sizeof(s));
		if (k != 7 + with_side || memchr(f[6 + with_side].p, ',',
		    f[6 + with_side].n) != NULL)
			why = with_side ? "expected 8 fields" :
			    "expected 7 fields";
		else if (with_side && side_values(f[7].p, f[7].n, ns, card,
		    s.side) != 0)
			why = "bad side values";
		else if (text_parse_u32(f[0].p, f[0].n, &s.user) != 0 ||
		    s.user >= (have_hdr ? nu : DATASET_ID_MAX))
			why = "bad user id";
		else if (text_parse_u32(f[1].p, f[1].n, &s.item) != 0 ||
		    s.item >= (have_hdr ? ni : DATASET_ID_MAX))
			why = "bad item id";
		else if (text_parse_i64(f[2].p, f[2].n, &s.ts) != 0)
			why = "bad timestamp";
		else if (text_parse_dbl(f[3].p, f[3].n, &rating) != 0 ||
		    rating < 0 || rating > 1e6)
			why = "bad rating";
		else if (text_parse_dbl(f[4].p, f[4].n, &label) != 0 ||
		    label < 0 || label > 1)
			why = "bad label";
		else if (text_parse_u32(f[5].p, f[5].n, &s.genres) != 0 ||
		    (have_hdr && ng < 32 && (s.genres >> ng) != 0))
			why = "bad genres";
		else {
			int nh = text_parse_idlist(f[6].p, f[6].n, have_hdr ? ni :
			    DATASET_ID_MAX, hist, SAMPLE_HIST_MAX);

			if (nh == -2)
				why = "history too long";
			else if (nh < 0)
				why = "bad history item";
			else
				hn = (size_t)nh;
		}
		if (why != NULL) {
			if ((rc = text_bad_line(&e, path, r.lineno, why)) != 0)
				break;
			continue;
		}
		s.rating = (float)rating;
		s.label = (float)label;
		dataset_append(ds, &s, hist, hn);
	}
	text_lr_close(&r);
	if (rc == 0 && !seen_cols) {
		text_err_set(err, "%s: missing header '" CSV_HEADER "'", path);
		rc = -EINVAL;
	}
	if (rc != 0) {
		ds->n = saved.n;
		ds->hist_len = saved.hist_len;
		ds->n_users = saved.n_users;
		ds->n_items = saved.n_items;
		ds->n_genres = saved.n_genres;
	}
	if (rc == 0 && ns > 0) {
		ds->n_side = ns;
		memcpy(ds->side_card, card, sizeof(card));
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
	struct text_ectx e;
	struct text_lr r;
	char *line;
	size_t len;
	int rc, st, seen = 0;

	if (err == NULL)
		err = &dummy;
	memset(err, 0, sizeof(*err));
	e.err = err;
	e.skip = 0;
	dataset_meta_init(m);
	if ((rc = text_lr_open(&r, path)) != 0) {
		text_err_set(err, "%s: %s", path, strerror(-rc));
		return rc;
	}
	while ((st = text_lr_next(&r, &line, &len)) != TEXT_LR_EOF) {
		char *eq;
		size_t kl;
		const char *v;
		size_t vl;

		if (st != TEXT_LR_LINE) {
			rc = st == TEXT_LR_IOERR ? -errno :
			    text_bad_line(&e, path, r.lineno, "line too long");
			break;
		}
		if (len == 0 || line[0] == '#')
			continue;
		if ((eq = memchr(line, '=', len)) == NULL) {
			rc = text_bad_line(&e, path, r.lineno, "expected key=value");
			break;
		}
		kl = (size_t)(eq - line);
		v = eq + 1;
		vl = len - kl - 1;
#define KEY(s) (kl == sizeof(s) - 1 && memcmp(line, s, kl) == 0)
		if (KEY("n_users") || KEY("n_items") || KEY("n_genres")) {
			uint32_t x;

			if (text_parse_u32(v, vl, &x) != 0 || (KEY("n_genres") &&
			    x > SAMPLE_GENRES_MAX)) {
				rc = text_bad_line(&e, path, r.lineno, "bad number");
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
			    6) == 0 ? DATASET_FMT_LATEST : vl == 3 &&
			    memcmp(v, "csv", 3) == 0 ? DATASET_FMT_CSV :
			    DATASET_FMT_AUTO;
		} else if (KEY("genres")) {
			struct text_fld g[SAMPLE_GENRES_MAX + 1];
			int k = vl ? text_split_c((char *)v, vl, '|', g,
			    SAMPLE_GENRES_MAX + 1) : 0;

			if (k > SAMPLE_GENRES_MAX) {
				rc = text_bad_line(&e, path, r.lineno,
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
	text_lr_close(&r);
	if (rc == 0 && seen < 3) {
		text_err_set(err, "%s: missing n_users/n_items/n_genres", path);
		rc = -EINVAL;
	}
	return rc;
}
