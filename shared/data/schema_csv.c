/*
 * schema_csv: reading a header CSV through a feature schema (schema.h):
 * the header's columns are looked up in the schema, each row becomes one
 * sample. Read with text.c's bounded line reader; errors are
 * "path:line: what" like every other reader of shared/data.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "shared/data/schema.h"
#include "shared/data/text.h"
#include "shared/xmalloc.h"

/* Reads the header line into col[] (schema field per column). */
static int
header(struct text_ectx *e, const struct schema *sc, const char *path,
    size_t lineno, char *line, size_t len, int *col, int *ncol)
{
	struct text_fld f[SCHEMA_FIELDS_MAX + 1];
	uint8_t seen[SCHEMA_FIELDS_MAX] = { 0 };
	char m[160];
	int k;

	if (len >= 3 && memcmp(line, "\xef\xbb\xbf", 3) == 0) {
		line += 3;	/* UTF-8 BOM */
		len -= 3;
	}
	e->skip = 0;	/* a bad header is never skippable */
	k = text_split_csv(line, len, f, SCHEMA_FIELDS_MAX + 1);
	if (k < 0)
		return text_bad_line(e, path, lineno, "header: bad quoting");
	if (k > SCHEMA_FIELDS_MAX)
		return text_bad_line(e, path, lineno, "header: more than 64 "
		    "columns");
	for (int c = 0; c < k; c++) {
		int i = schema_find(sc, f[c].p, f[c].n);

		if (i < 0) {
			snprintf(m, sizeof(m), "unknown column '%.*s' (not in "
			    "the schema)", (int)(f[c].n < 64 ? f[c].n : 64),
			    f[c].p);
			return text_bad_line(e, path, lineno, m);
		}
		if (seen[i]++) {
			snprintf(m, sizeof(m), "column '%s' given twice",
			    sc->f[i].name);
			return text_bad_line(e, path, lineno, m);
		}
		col[c] = i;
	}
	for (uint32_t i = 0; i < sc->n; i++)
		if (!seen[i] && sc->f[i].kind != SCHEMA_K_SKIP) {
			snprintf(m, sizeof(m), "schema field '%s' has no "
			    "column", sc->f[i].name);
			return text_bad_line(e, path, lineno, m);
		}
	*ncol = k;
	return 0;
}

/*
 * The 64-bit hashes of one hashed id field's strings, to count collisions.
 * Deduplicated in place whenever full, so it holds at most about twice the
 * distinct strings, however many rows refer to them.
 */
struct idset {
	uint64_t *h;
	size_t	 n, cap;
};

static int
u64cmp(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

static void
idset_uniq(struct idset *d)
{
	size_t w = 0;

	if (d->n == 0)
		return;
	qsort(d->h, d->n, sizeof(*d->h), u64cmp);
	for (size_t i = 1; i < d->n; i++)
		if (d->h[i] != d->h[w])
			d->h[++w] = d->h[i];
	d->n = w + 1;
}

static void
idset_add(struct idset *d, uint64_t h)
{
	if (d->n == d->cap) {
		idset_uniq(d);
		if (d->n * 2 >= d->cap) {
			d->cap = d->cap ? d->cap * 2 : 1024;
			d->h = xreallocarray(d->h, d->cap, sizeof(*d->h));
		}
	}
	d->h[d->n++] = h;
}

/* One row's hashed ids (user 0, item 1), added only if the row is good. */
struct rowids {
	uint64_t h[2 + SAMPLE_HIST_MAX];
	uint8_t	 f[2 + SAMPLE_HIST_MAX];
	int	 n;
};

static void
rowids_add(struct rowids *r, int f, const char *p, size_t n)
{
	if (r != NULL && r->n < (int)(sizeof(r->h) / sizeof(r->h[0]))) {
		r->h[r->n] = schema_hash64(p, n);
		r->f[r->n++] = (uint8_t)f;
	}
}

/* Distinct strings and the buckets (mod card) they fill; frees d. */
static void
idset_count(struct idset *d, uint32_t card, uint64_t *strings,
    uint64_t *buckets)
{
	idset_uniq(d);
	*strings = d->n;
	for (size_t i = 0; i < d->n; i++)
		d->h[i] %= card;
	idset_uniq(d);
	*buckets = d->n;
	free(d->h);
	memset(d, 0, sizeof(*d));
}

/* An id column's value; NULL or why it is bad (into m). */
static const char *
id_value(const struct schema_field *fd, const char *p, size_t n,
    uint32_t *out, struct rowids *ids, char *m, size_t ml)
{
	int rc = schema_encode_id(fd, p, n, out);

	if (rc == -2) {
		snprintf(m, ml, "column '%s': id %u out of range (vocab %u)",
		    fd->name, *out, fd->card ? fd->card : DATASET_ID_MAX);
		return m;
	}
	if (rc != 0) {
		snprintf(m, ml, "column '%s': %s", fd->name, fd->ids_hash ?
		    "empty id" : "bad id");
		return m;
	}
	if (fd->ids_hash)
		rowids_add(ids, fd->kind == SCHEMA_K_ITEM, p, n);
	return NULL;
}

/* A hist column of hashed item ids: '|'-separated strings. */
static int
hist_hashed(const struct schema_field *fi, const char *p, size_t n,
    uint32_t *out, struct rowids *ids)
{
	size_t at = 0;
	int k = 0;

	if (n == 0)
		return 0;
	while (at <= n) {
		const char *q = memchr(p + at, '|', n - at);
		size_t l = (q ? (size_t)(q - p) : n) - at;

		if (l == 0)
			return -1;
		if (k == SAMPLE_HIST_MAX)
			return -2;
		(void)schema_encode_id(fi, p + at, l, &out[k++]);
		rowids_add(ids, 1, p + at, l);
		at += l + 1;
	}
	return k;
}

/* One data row; returns NULL or why it is bad (into m). */
static const char *
row(const struct schema *sc, const int *col, int ncol, char *line,
    size_t len, size_t rowno, struct sample *s, uint32_t *hist, size_t *hn,
    struct rowids *ids, char *m, size_t ml)
{
	struct text_fld f[SCHEMA_FIELDS_MAX + 1];
	double rating = 0, label = -1;
	int k = text_split_csv(line, len, f, SCHEMA_FIELDS_MAX + 1);

	memset(s, 0, sizeof(*s));
	*hn = 0;
	s->ts = (int64_t)rowno;	/* without a ts column: file order */
	if (k < 0)
		return "bad quoting";
	if (k != ncol) {
		snprintf(m, ml, "expected %d fields, got %d", ncol, k);
		return m;
	}
	for (int c = 0; c < ncol; c++) {
		const struct schema_field *fd = &sc->f[col[c]];
		const char *p = f[c].p;
		size_t n = f[c].n;
		const struct schema_field *fi = &sc->f[sc->item];
		const char *why = NULL;
		int nh;

		switch (fd->kind) {
		case SCHEMA_K_USER:
			if (id_value(fd, p, n, &s->user, ids, m, ml) != NULL)
				return m;
			break;
		case SCHEMA_K_ITEM:
			if (id_value(fd, p, n, &s->item, ids, m, ml) != NULL)
				return m;
			break;
		case SCHEMA_K_TS:
			if (text_parse_i64(p, n, &s->ts) != 0)
				why = "bad timestamp";
			break;
		case SCHEMA_K_LABEL:
			if (text_parse_dbl(p, n, &label) != 0 || label < 0 ||
			    label > 1)
				why = "bad label (want a number in [0, 1])";
			break;
		case SCHEMA_K_RATING:
			if (text_parse_dbl(p, n, &rating) != 0 || rating < 0 ||
			    rating > 1e6)
				why = "bad rating";
			break;
		case SCHEMA_K_HIST:
			nh = fi->ids_hash ? hist_hashed(fi, p, n, hist, ids) :
			    text_parse_idlist(p, n, fi->card ?
			    fi->card : DATASET_ID_MAX, hist, SAMPLE_HIST_MAX);
			if (nh == -2)
				why = "history too long";
			else if (nh < 0)
				why = "bad history item";
			else
				*hn = (size_t)nh;
			break;
		case SCHEMA_K_BAG:
			if (schema_encode_bag(fd, p, n, &s->genres) != 0)
				why = "bad value";
			break;
		case SCHEMA_K_CAT:
		case SCHEMA_K_NUM:
		case SCHEMA_K_HASH:
			if (schema_encode(fd, p, n, &s->side[fd->slot]) != 0)
				why = "bad value";
			break;
		case SCHEMA_K_SKIP:
			break;
		}
		if (why != NULL) {
			snprintf(m, ml, "column '%s': %s", fd->name, why);
			return m;
		}
	}
	s->rating = (float)rating;
	if (sc->label >= 0)
		s->label = (float)label;
	else
		s->label = rating >= sc->f[sc->rating].threshold ? 1.0f : 0.0f;
	return NULL;
}

int
schema_read_csv(struct dataset *ds, const char *path, const struct schema *sc,
    const struct dataset_opts *o, struct dataset_err *err)
{
	return schema_read_csv_ids(ds, path, sc, o, err, NULL);
}

int
schema_read_csv_ids(struct dataset *ds, const char *path,
    const struct schema *sc, const struct dataset_opts *o,
    struct dataset_err *err, struct schema_ids *out)
{
	struct idset ids[2];	/* user, item */
	struct rowids rid;
	struct dataset_opts def;
	struct dataset_err dummy;
	struct text_ectx e;
	struct text_lr r;
	char *line, m[200];
	size_t len, rowno = 0;
	int rc, st, col[SCHEMA_FIELDS_MAX], ncol = -1, skip;

	if (o == NULL) {
		dataset_opts_default(&def);
		o = &def;
	}
	if (err == NULL)
		err = &dummy;
	memset(err, 0, sizeof(*err));
	memset(ids, 0, sizeof(ids));
	if (out != NULL)
		memset(out, 0, sizeof(*out));
	if (ds->n != 0 || o->hist_k < 0 || o->hist_k > SAMPLE_HIST_MAX) {
		text_err_set(err, "%s: want an empty dataset and hist 0..%d",
		    path, SAMPLE_HIST_MAX);
		return -EINVAL;
	}
	if ((rc = schema_check(sc, m, sizeof(m))) != 0) {
		text_err_set(err, "%s: schema: %s", path, m);
		return rc;
	}
	e.err = err;
	skip = o->skip_bad;
	if ((rc = text_lr_open(&r, path)) != 0) {
		text_err_set(err, "%s: %s", path, strerror(-rc));
		return rc;
	}
	while ((st = text_lr_next(&r, &line, &len)) != TEXT_LR_EOF) {
		struct sample s;
		uint32_t hist[SAMPLE_HIST_MAX];
		size_t hn;
		const char *why;

		e.skip = skip;
		if (st == TEXT_LR_IOERR) {
			rc = -errno;
			text_err_set(err, "%s: %s", path, strerror(errno));
			break;
		}
		if (st == TEXT_LR_LONG) {
			if (ncol < 0)
				e.skip = 0;
			if ((rc = text_bad_line(&e, path, r.lineno,
			    "line too long")) != 0)
				break;
			continue;
		}
		if (ncol < 0) {
			if ((rc = header(&e, sc, path, r.lineno, line, len, col,
			    &ncol)) != 0)
				break;
			continue;
		}
		if (len == 0)
			continue;
		err->n_lines++;
		rid.n = 0;
		why = row(sc, col, ncol, line, len, rowno, &s, hist, &hn,
		    out != NULL ? &rid : NULL, m, sizeof(m));
		if (why != NULL) {
			if ((rc = text_bad_line(&e, path, r.lineno, why)) != 0)
				break;
			continue;
		}
		rowno++;
		for (int k = 0; k < rid.n; k++)
			idset_add(&ids[rid.f[k]], rid.h[k]);
		dataset_append(ds, &s, hist, hn);
	}
	text_lr_close(&r);
	if (rc == 0 && ncol < 0) {
		text_err_set(err, "%s: empty file (no header line)", path);
		rc = -EINVAL;
	}
	if (rc == 0 && out != NULL && sc->f[sc->user].ids_hash)
		idset_count(&ids[0], sc->f[sc->user].card, &out->user_strings,
		    &out->user_buckets);
	if (rc == 0 && out != NULL && sc->f[sc->item].ids_hash)
		idset_count(&ids[1], sc->f[sc->item].card, &out->item_strings,
		    &out->item_buckets);
	free(ids[0].h);
	free(ids[1].h);
	if (rc != 0) {
		dataset_fini(ds);
		return rc;
	}
	schema_apply(sc, ds);
	if (sc->user >= 0 && sc->f[sc->user].card > ds->n_users)
		ds->n_users = sc->f[sc->user].card;
	if (sc->item >= 0 && sc->f[sc->item].card > ds->n_items)
		ds->n_items = sc->f[sc->item].card;
	if (sc->hist < 0)
		dataset_build_hist(ds, o->hist_k);
	return 0;
}
