/*
 * store_pg_data: the PostgreSQL backend's pool, model and OFA tables
 * (store_pg.c has the connection, the helpers and the ops table).
 */
#include <errno.h>
#include <libpq-fe.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cloudd/store.h"
#include "cloudd/store_impl.h"
#include "cloudd/store_meta.h"
#include "cloudd/store_pg_impl.h"
#include "shared/data/dataset.h"
#include "shared/xmalloc.h"

/* --- pool ---------------------------------------------------------------- */

static int
set_meta(struct pg *st, const char *key, int64_t v)
{
	struct args a = { 0 };

	a_text(&a, key);
	a_i64(&a, v);
	return cmd(st, "meta", "INSERT INTO meta VALUES($1, $2) ON CONFLICT"
	    "(key) DO UPDATE SET value = greatest(meta.value, EXCLUDED.value)",
	    &a);
}

static int64_t
get_meta(struct pg *st, const char *key)
{
	struct args a = { 0 };
	PGresult *r;
	int64_t v = 0;

	a_text(&a, key);
	if (q(st, "meta", "SELECT value FROM meta WHERE key = $1", &a, &r))
		return 0;
	if (PQntuples(r) == 1)
		v = g_i64(r, 0, 0);
	PQclear(r);
	return v;
}

/* set_meta and get_meta for store_meta_side_put/get */
static int
meta_set(struct store *base, const char *key, int64_t v)
{
	return set_meta(PG(base), key, v);
}

static int64_t
meta_get(struct store *base, const char *key)
{
	return get_meta(PG(base), key);
}

/* The pool's schema text into *out (malloc'ed), or NULL when none. */
static int
schema_get(struct pg *st, char **out)
{
	PGresult *r;

	*out = NULL;
	if (q(st, "pool schema", "SELECT text FROM pool_schema WHERE id = 1",
	    NULL, &r) != 0)
		return -EIO;
	if (PQntuples(r) == 1)
		*out = xstrdup(PQgetvalue(r, 0, 0));
	PQclear(r);
	return 0;
}

int
pg_pool_schema(struct store *base, char **schema)
{
	int rc = schema_get(PG(base), schema);

	return rc == 0 && *schema == NULL ? -ENOENT : rc;
}

/*
 * A pool keeps one schema (store.h). Inside the transaction; the row lock
 * on pool_schema (or the table lock when there is none yet) keeps two
 * replicas' imports from both storing one.
 */
static int
schema_put(struct pg *st, const char *schema)
{
	struct args a = { 0 };
	char *old;
	uint64_t n = 0;
	int rc;

	if ((rc = exec(st, "LOCK TABLE pool_schema IN EXCLUSIVE MODE")) != 0 ||
	    (rc = schema_get(st, &old)) != 0)
		return rc;
	if (old != NULL || schema == NULL) {
		rc = (old == NULL) == (schema == NULL) && (old == NULL ||
		    strcmp(old, schema) == 0) ? 0 : -EEXIST;
		free(old);
		if (rc != 0)
			snprintf(st->base.err, sizeof(st->base.err), "the "
			    "pool's feature schema differs from this "
			    "import's");
		return rc;
	}
	if ((rc = count(st, "SELECT count(*) FROM pool", &n)) != 0)
		return rc;
	if (n > 0) {
		snprintf(st->base.err, sizeof(st->base.err), "the pool holds "
		    "%llu samples without a feature schema",
		    (unsigned long long)n);
		return -EEXIST;
	}
	a_text(&a, schema);
	return cmd(st, "pool schema", "INSERT INTO pool_schema VALUES(1, $1)",
	    &a);
}

int
pg_pool_insert(struct store *base, const struct dataset *ds,
    const char *schema, uint64_t *rows)
{
	struct pg *st = PG(base);
	struct copybuf cb;
	int rc;

	*rows = 0;
	if ((rc = exec(st, "BEGIN")) != 0)
		return rc;
	if ((rc = schema_put(st, schema)) != 0)
		goto fail;
	if ((rc = cb_begin(&cb, st, "COPY pool(\"user\", item, ts, rating, "
	    "label, genres, hist, side) FROM STDIN (FORMAT binary)")) != 0)
		goto fail;
	for (size_t i = 0; i < ds->n && cb.rc == 0; i++) {
		const struct sample *x = &ds->s[i];
		cb_u16(&cb, 8);
		cb_i64(&cb, x->user);
		cb_i64(&cb, x->item);
		cb_i64(&cb, x->ts);
		cb_f64(&cb, x->rating);
		cb_f64(&cb, x->label);
		cb_i64(&cb, x->genres);
		cb_bytes(&cb, x->hist_n > 0 ? sample_hist(ds, x) : NULL,
		    x->hist_n * sizeof(uint32_t));
		cb_bytes(&cb, ds->n_side > 0 && ds->n_side <= SAMPLE_SIDE_MAX ?
		    x->side : NULL, ds->n_side * sizeof(uint32_t));
	}
	if ((rc = cb_end(&cb)) != 0)
		goto fail;
	if ((rc = set_meta(st, "n_users", ds->n_users)) != 0 ||
	    (rc = set_meta(st, "n_items", ds->n_items)) != 0 ||
	    (rc = set_meta(st, "n_genres", ds->n_genres)) != 0 ||
	    (rc = store_meta_side_put(&st->base, meta_set, ds)) != 0 ||
	    (rc = exec(st, "COMMIT")) != 0)
		goto fail;
	*rows = ds->n;
	return 0;
fail:
	rollback(st);
	return rc;
}

int
pg_pool_count(struct store *base, uint64_t *n)
{
	return count(PG(base), "SELECT count(*) FROM pool", n);
}

int
pg_pool_load(struct store *base, struct dataset *ds, uint64_t **rowid)
{
	struct pg *st = PG(base);
	PGresult *r;
	uint64_t *ids;
	int n;

	if (q(st, "pool load", "SELECT id, \"user\", item, ts, rating, label, "
	    "genres, hist, side FROM pool ORDER BY id", NULL, &r) != 0)
		return -EIO;
	n = PQntuples(r);
	ids = xcalloc(n ? n : 1, sizeof(*ids));
	for (int i = 0; i < n; i++) {
		struct sample x;
		size_t hn = PQgetlength(r, i, 7) / sizeof(uint32_t);
		uint32_t h[SAMPLE_HIST_MAX];

		memset(&x, 0, sizeof(x));
		x.user = (uint32_t)g_i64(r, i, 1);
		x.item = (uint32_t)g_i64(r, i, 2);
		x.ts = g_i64(r, i, 3);
		x.rating = (float)g_f64(r, i, 4);
		x.label = (float)g_f64(r, i, 5);
		x.genres = (uint32_t)g_i64(r, i, 6);
		if (hn > SAMPLE_HIST_MAX)
			hn = SAMPLE_HIST_MAX;
		memcpy(h, PQgetvalue(r, i, 7), hn * sizeof(uint32_t));
		{
			/* side values (a row stored before schema 5: none) */
			size_t sb = (size_t)PQgetlength(r, i, 8);

			memcpy(x.side, PQgetvalue(r, i, 8), sb < sizeof(x.side) ?
			    sb : sizeof(x.side));
		}
		ids[ds->n] = (uint64_t)g_i64(r, i, 0);
		dataset_append(ds, &x, h, hn);
	}
	PQclear(r);
	ds->n_users = (uint32_t)get_meta(st, "n_users");
	ds->n_items = (uint32_t)get_meta(st, "n_items");
	ds->n_genres = (uint32_t)get_meta(st, "n_genres");
	store_meta_side_get(&st->base, meta_get, ds);
	*rowid = ids;
	return 0;
}

int
pg_pool_set_repr(struct store *base, const uint64_t *rowid,
    const float *repr, size_t n, int dim, uint64_t version)
{
	struct pg *st = PG(base);
	struct copybuf cb;
	struct args a = { 0 };
	int rc;

	if ((rc = exec(st, "BEGIN")) != 0)
		return rc;
	if ((rc = exec(st, "CREATE TEMP TABLE IF NOT EXISTS repr_in(id BIGINT,"
	    " repr BYTEA) ON COMMIT DELETE ROWS")) != 0 ||
	    (rc = cb_begin(&cb, st, "COPY repr_in FROM STDIN (FORMAT binary)"))
	    != 0)
		goto fail;
	for (size_t i = 0; i < n && cb.rc == 0; i++) {
		cb_u16(&cb, 2);
		cb_i64(&cb, (int64_t)rowid[i]);
		cb_bytes(&cb, repr + i * dim, dim * sizeof(float));
	}
	if ((rc = cb_end(&cb)) != 0)
		goto fail;
	a_i64(&a, (int64_t)version);
	if ((rc = cmd(st, "repr update", "UPDATE pool SET repr = r.repr, "
	    "repr_version = $1 FROM repr_in r WHERE pool.id = r.id", &a)) != 0 ||
	    (rc = exec(st, "COMMIT")) != 0)
		goto fail;
	return 0;
fail:
	rollback(st);
	return rc;
}

int
pg_pool_get_repr(struct store *base, float *repr, size_t n, int dim,
    uint64_t version)
{
	struct pg *st = PG(base);
	PGresult *r;
	size_t i = 0, rows;
	int rc = 0;

	if (q(st, "repr", "SELECT repr, repr_version FROM pool ORDER BY id",
	    NULL, &r) != 0)
		return -EIO;
	rows = (size_t)PQntuples(r);
	for (; i < rows && i < n; i++) {
		if (PQgetisnull(r, i, 1) ||
		    (uint64_t)g_i64(r, i, 1) != version ||
		    PQgetlength(r, i, 0) != (int)(dim * sizeof(float))) {
			rc = -ENOENT;
			break;
		}
		memcpy(repr + i * dim, PQgetvalue(r, i, 0),
		    dim * sizeof(float));
	}
	if (rc == 0 && i != n)
		rc = -ENOENT;
	PQclear(r);
	return rc;
}

/* --- models -------------------------------------------------------------- */

#define MODEL_COLS "version, parent, created, size, checksum, global_ctr"

static void
read_info(const PGresult *r, int row, struct store_model_info *mi)
{
	memset(mi, 0, sizeof(*mi));
	mi->version = (uint64_t)g_i64(r, row, 0);
	mi->parent = (uint64_t)g_i64(r, row, 1);
	mi->created = g_i64(r, row, 2);
	mi->size = (uint64_t)g_i64(r, row, 3);
	if (PQgetlength(r, row, 4) == 32)
		memcpy(mi->checksum, PQgetvalue(r, row, 4), 32);
	mi->global_ctr = g_f64(r, row, 5);
}

int
pg_model_put(struct store *base, const struct store_model_info *mi,
    const void *blob, size_t len)
{
	struct pg *st = PG(base);
	struct args a = { 0 };

	a_i64(&a, (int64_t)mi->version);
	a_i64(&a, (int64_t)mi->parent);
	a_i64(&a, mi->created);
	a_i64(&a, (int64_t)len);
	a_bytes(&a, mi->checksum, 32);
	a_f64(&a, mi->global_ctr);
	a_bytes(&a, blob, len);
	return cmd(st, "model insert", "INSERT INTO models(version, parent, "
	    "created, size, checksum, global_ctr, blob) VALUES($1, $2, $3, $4, "
	    "$5, $6, $7)", &a);
}

int
pg_ofa_put(struct store *base, uint64_t version, const void *blob, size_t len)
{
	struct pg *st = PG(base);
	struct args a = { 0 };

	PGresult *r;
	int rc;

	a_i64(&a, (int64_t)version);
	a_i64(&a, (int64_t)len);
	a_bytes(&a, blob, len);
	/* Only for a stored version: it may be pruned while OFA trains. */
	if ((rc = q(st, "ofa insert", "INSERT INTO ofa_models(base_version, "
	    "size, blob) SELECT $1::bigint, $2::bigint, $3::bytea WHERE "
	    "EXISTS (SELECT 1 FROM models WHERE version = $1::bigint) "
	    "ON CONFLICT (base_version) DO UPDATE SET "
	    "size = EXCLUDED.size, blob = EXCLUDED.blob", &a, &r)) == 0 &&
	    changes(r) == 0) {
		snprintf(st->base.err, sizeof(st->base.err), "model v%llu is "
		    "not stored (pruned?)", (unsigned long long)version);
		rc = -ENOENT;
	}
	PQclear(r);
	return rc;
}

int
pg_ofa_get(struct store *base, uint64_t version, void **blob, size_t *len)
{
	struct pg *st = PG(base);
	struct args a = { 0 };
	PGresult *r;
	int rc = -ENOENT;

	a_i64(&a, (int64_t)version);
	if (q(st, "ofa read", "SELECT blob FROM ofa_models WHERE "
	    "base_version = $1", &a, &r) != 0)
		return -EIO;
	if (PQntuples(r) == 1) {
		*len = (size_t)PQgetlength(r, 0, 0);
		*blob = xmalloc(*len ? *len : 1);
		if (*len > 0)
			memcpy(*blob, PQgetvalue(r, 0, 0), *len);
		rc = 0;
	}
	PQclear(r);
	return rc;
}

int
pg_model_info(struct store *base, uint64_t version,
    struct store_model_info *mi)
{
	struct pg *st = PG(base);
	struct args a = { 0 };
	PGresult *r;
	int rc = -ENOENT;

	if (version)
		a_i64(&a, (int64_t)version);
	if (q(st, "model info", version ? "SELECT " MODEL_COLS " FROM models "
	    "WHERE version = $1" : "SELECT " MODEL_COLS " FROM models ORDER BY "
	    "version DESC LIMIT 1", &a, &r) != 0)
		return -EIO;
	if (PQntuples(r) == 1) {
		read_info(r, 0, mi);
		rc = 0;
	}
	PQclear(r);
	return rc;
}

int
pg_model_read(struct store *base, uint64_t version, uint64_t off, void *buf,
    size_t len)
{
	struct pg *st = PG(base);
	struct args a = { 0 };
	PGresult *r;
	int rc = 0;

	/*
	 * bytea is below 1 GiB, so clamping to BIG keeps every answer: a
	 * clamped range is past the end either way. BIG + 1 must still fit
	 * int4, as PostgreSQL folds the substring() arguments even where the
	 * CASE does not reach them. One round trip: the range is checked
	 * inside the query.
	 */
	enum { BIG = 0x40000000 };
	a_i64(&a, (int64_t)version);
	a_i64(&a, off > BIG ? BIG : (int64_t)off);
	a_i64(&a, len > BIG ? BIG : (int64_t)len);
	if (q(st, "model read", "SELECT octet_length(blob), CASE WHEN "
	    "$2::int8 + $3::int8 <= octet_length(blob) THEN substring(blob "
	    "FROM ($2::int8 + 1)::int4 FOR $3::int4) END FROM models WHERE "
	    "version = $1", &a, &r) != 0)
		return -EIO;
	if (PQntuples(r) != 1)
		rc = -ENOENT;
	else if (PQgetisnull(r, 0, 1) || (size_t)PQgetlength(r, 0, 1) != len)
		rc = -ERANGE;
	else if (len > 0)
		memcpy(buf, PQgetvalue(r, 0, 1), len);
	PQclear(r);
	return rc;
}

int
pg_model_list(struct store *base, struct store_model_info **out, size_t *n)
{
	struct pg *st = PG(base);
	PGresult *r;

	*n = 0;
	*out = NULL;
	if (q(st, "model list", "SELECT " MODEL_COLS " FROM models ORDER BY "
	    "version", NULL, &r) != 0)
		return -EIO;
	*n = (size_t)PQntuples(r);
	*out = xcalloc(*n + 1, sizeof(**out));
	for (size_t i = 0; i < *n; i++)
		read_info(r, (int)i, &(*out)[i]);
	PQclear(r);
	return 0;
}

int
pg_model_copy(struct store *base, uint64_t from, struct store_model_info *mi)
{
	struct pg *st = PG(base);
	struct args a = { 0 };
	PGresult *r;
	int rc;

	a_i64(&a, (int64_t)mi->version);
	a_i64(&a, (int64_t)mi->parent);
	a_i64(&a, mi->created);
	a_i64(&a, (int64_t)from);
	if (q(st, "model copy", "INSERT INTO models(version, parent, created, "
	    "size, checksum, global_ctr, blob) SELECT $1, $2, $3, size, "
	    "checksum, global_ctr, blob FROM models WHERE version = $4", &a,
	    &r) != 0)
		return -EIO;
	rc = changes(r) == 1 ? 0 : -ENOENT;
	PQclear(r);
	if (rc == 0)
		rc = pg_model_info(base, mi->version, mi);
	return rc;
}

int
pg_model_delete(struct store *base, uint64_t version)
{
	struct pg *st = PG(base);
	struct args a = { 0 };
	PGresult *r;
	int rc;

	a_i64(&a, (int64_t)version);
	if (q(st, "model delete", "DELETE FROM models WHERE version = $1", &a,
	    &r) != 0)
		return -EIO;
	rc = changes(r) == 1 ? 0 : -ENOENT;
	PQclear(r);
	return rc;
}

int
pg_model_prune(struct store *base, size_t keep, uint64_t keep_also,
    uint64_t **deleted, size_t *n, uint64_t *bytes)
{
	struct pg *st = PG(base);
	struct args a = { 0 };
	struct store_model_info cur;
	PGresult *r = NULL;
	uint64_t *v = NULL;
	size_t off;
	int rc;

	*n = 0;
	*bytes = 0;
	if (deleted != NULL)
		*deleted = NULL;
	if (keep < 1)
		keep = 1;	/* never leave the store without a model */
	off = keep;
	if ((rc = exec(st, "BEGIN")) != 0)
		return rc;
	/* Serialises with model writers on other replicas. */
	if ((rc = exec(st, "LOCK TABLE models IN SHARE ROW EXCLUSIVE MODE")))
		goto fail;
	if (keep_also != 0 && pg_model_info(base, keep_also, &cur) == 0) {
		a_i64(&a, (int64_t)keep_also);
		if ((rc = q(st, "model prune", "SELECT count(*) FROM models "
		    "WHERE version > $1", &a, &r)) != 0)
			goto fail;
		/* The served version is among the keep newest. */
		if ((uint64_t)g_i64(r, 0, 0) < keep)
			off = keep - 1;
		PQclear(r);
		r = NULL;
	}
	a.n = 0;
	a_i64(&a, (int64_t)off);
	a_i64(&a, (int64_t)keep_also);
	if ((rc = q(st, "model prune", "SELECT version, size FROM models "
	    "WHERE version != $2 ORDER BY version ASC LIMIT greatest(0, "
	    "(SELECT count(*) FROM models WHERE version != $2) - $1)", &a,
	    &r)) != 0)
		goto fail;
	*n = (size_t)PQntuples(r);
	v = xcalloc(*n + 1, sizeof(*v));
	for (size_t i = 0; i < *n; i++) {
		v[i] = (uint64_t)g_i64(r, (int)i, 0);
		*bytes += (uint64_t)g_i64(r, (int)i, 1);
	}
	PQclear(r);
	r = NULL;
	for (size_t i = 0; i < *n; i++) {
		a.n = 0;
		a_i64(&a, (int64_t)v[i]);
		/* A version's OFA model goes with it. */
		if ((rc = cmd(st, "model prune", "DELETE FROM models WHERE "
		    "version = $1", &a)) != 0 || (rc = cmd(st, "model prune",
		    "DELETE FROM ofa_models WHERE base_version = $1", &a)) != 0)
			goto fail;
	}
	if ((rc = exec(st, "COMMIT")) != 0)
		goto fail;
	if (deleted != NULL)
		*deleted = v;
	else
		free(v);
	return 0;
fail:
	PQclear(r);
	rollback(st);
	free(v);
	*n = 0;
	*bytes = 0;
	return rc;
}

