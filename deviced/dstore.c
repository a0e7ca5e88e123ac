/*
 * dstore: see dstore.h. WAL + synchronous=NORMAL, as in the cloud's store.
 * The download chunks are in dstore_dl.c.
 */
#include <errno.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "deviced/dstore.h"
#include "deviced/dstore_impl.h"
#include "shared/db.h"
#include "shared/data/dataset.h"
#include "shared/xmalloc.h"

static const char schema[] =
	"CREATE TABLE IF NOT EXISTS samples(id INTEGER PRIMARY KEY,"
	"  item INTEGER NOT NULL, ts INTEGER NOT NULL, rating REAL NOT NULL,"
	"  label REAL NOT NULL, genres INTEGER NOT NULL, hist BLOB);"
	"CREATE TABLE IF NOT EXISTS model(id INTEGER PRIMARY KEY CHECK(id=1),"
	"  version INTEGER NOT NULL, blob BLOB NOT NULL);"
	"CREATE TABLE IF NOT EXISTS download(version INTEGER NOT NULL,"
	"  idx INTEGER NOT NULL, off INTEGER NOT NULL, len INTEGER NOT NULL,"
	"  PRIMARY KEY(version, idx));"
	"CREATE TABLE IF NOT EXISTS outbox(request_id INTEGER PRIMARY KEY,"
	"  base_version INTEGER NOT NULL, blob BLOB NOT NULL,"
	"  acked INTEGER NOT NULL DEFAULT 0, patch_id INTEGER);"
	"CREATE TABLE IF NOT EXISTS kv(key TEXT PRIMARY KEY, value INTEGER);"
	/* the retention window's order (dstore_samples_add's keep) */
	"CREATE INDEX IF NOT EXISTS samples_ts ON samples(ts, id);";

/* The shared helpers (shared/db.h), reporting into the store's message. */
int
dstore_fail(struct dstore *st, const char *what)
{
	return db_fail(st->db, what, st->err, sizeof(st->err));
}

int
dstore_exec(struct dstore *st, const char *sql)
{
	return db_exec(st->db, sql, st->err, sizeof(st->err));
}

int
dstore_prep(struct dstore *st, const char *sql, sqlite3_stmt **s)
{
	return db_prep(st->db, sql, s, st->err, sizeof(st->err));
}

/* Does probe (a SELECT of one column) compile: does the column exist? */
static int
has_column(struct dstore *st, const char *probe)
{
	sqlite3_stmt *s;

	if (sqlite3_prepare_v2(st->db, probe, -1, &s, NULL) != SQLITE_OK)
		return 0;
	sqlite3_finalize(s);
	return 1;
}

/*
 * Side values (issue 16): a store made before them gets the column (its
 * samples have none); the dimensions live in kv (n_side, side_card<k>).
 */
static int
add_side(struct dstore *st)
{
	if (has_column(st, "SELECT side FROM samples LIMIT 0"))
		return 0;
	return dstore_exec(st, "ALTER TABLE samples ADD COLUMN side BLOB");
}

/*
 * Download chunks in a file beside the store (dstore_dl.c): a store made
 * before kept them as blobs in the download table. That table goes; a
 * download it held starts over, which costs one model's chunks once.
 */
static int
drop_blob_chunks(struct dstore *st)
{
	if (!has_column(st, "SELECT data FROM download LIMIT 0"))
		return 0;
	return dstore_exec(st,
	    "DROP TABLE download; PRAGMA incremental_vacuum");
}

int
dstore_open(struct dstore **out, const char *path, char *err, size_t errlen)
{
	struct dstore *st = xcalloc(1, sizeof(*st));

	*out = NULL;
	if ((size_t)snprintf(st->dlpath, sizeof(st->dlpath), "%s-download",
	    path) >= sizeof(st->dlpath)) {
		snprintf(err, errlen, "%s: path too long", path);
		free(st);
		return -ENAMETOOLONG;
	}
	if (db_open(&st->db, path, 1000, err, errlen) != 0) {
		dstore_close(st);
		return -EIO;
	}
	/*
	 * A small page cache: deviced may host hundreds of stores, and
	 * SQLite's default (2 MiB each) would be most of a hosted device's
	 * memory. The store is read mostly at start and written in chunks.
	 */
	/*
	 * Pages freed in the store go back to the file system (a new store
	 * is in incremental auto-vacuum mode, shared/db.c), and the WAL is
	 * cut to 1 MiB after each checkpoint, so a device does not keep the
	 * high-water mark of an old store's chunk blobs or a large outbox.
	 */
	if (dstore_exec(st, "PRAGMA cache_size = -128") != 0 ||
	    dstore_exec(st, "PRAGMA journal_size_limit = 1048576") != 0 ||
	    drop_blob_chunks(st) != 0 || dstore_exec(st, schema) != 0 ||
	    add_side(st) != 0) {
		snprintf(err, errlen, "%s: %s", path, st->err);
		dstore_close(st);
		return -EIO;
	}
	*out = st;
	return 0;
}

void
dstore_close(struct dstore *st)
{
	if (st == NULL)
		return;
	sqlite3_close(st->db);
	free(st);
}

const char *
dstore_errmsg(struct dstore *st)
{
	return st->err;
}

int
dstore_samples_count(struct dstore *st, uint64_t *n)
{
	sqlite3_stmt *s;
	int rc = 0;

	if (dstore_prep(st, "SELECT count(*) FROM samples", &s) != 0)
		return -EIO;
	if (sqlite3_step(s) == SQLITE_ROW)
		*n = (uint64_t)sqlite3_column_int64(s, 0);
	else
		rc = dstore_fail(st, "count");
	sqlite3_finalize(s);
	return rc;
}

/* Deletes all but the newest keep samples (by time, then id). */
static int
samples_trim(struct dstore *st, uint64_t keep)
{
	sqlite3_stmt *s;
	int rc = 0;

	if (dstore_prep(st, "DELETE FROM samples WHERE id IN (SELECT id FROM "
	    "samples ORDER BY ts DESC, id DESC LIMIT -1 OFFSET ?)", &s) != 0)
		return -EIO;
	sqlite3_bind_int64(s, 1, (sqlite3_int64)keep);
	if (sqlite3_step(s) != SQLITE_DONE)
		rc = dstore_fail(st, "sample trim");
	sqlite3_finalize(s);
	return rc;
}

int
dstore_samples_trim(struct dstore *st, uint64_t keep)
{
	int rc;

	if ((rc = dstore_exec(st, "BEGIN IMMEDIATE")) != 0)
		return rc;
	if ((rc = samples_trim(st, keep)) != 0) {
		dstore_exec(st, "ROLLBACK");
		return rc;
	}
	return dstore_exec(st, "COMMIT");
}

int
dstore_samples_last_id(struct dstore *st, int64_t *id)
{
	sqlite3_stmt *s;

	*id = 0;
	if (dstore_prep(st, "SELECT coalesce(max(id), 0) FROM samples", &s) !=
	    0)
		return -EIO;
	if (sqlite3_step(s) == SQLITE_ROW)
		*id = sqlite3_column_int64(s, 0);
	sqlite3_finalize(s);
	return 0;
}

int
dstore_samples_add(struct dstore *st, const struct dataset *ds,
    uint64_t keep, int64_t *last_id)
{
	sqlite3_stmt *s = NULL;
	int rc;

	if ((rc = dstore_exec(st, "BEGIN IMMEDIATE")) != 0)
		return rc;
	if (ds->n_side > 0 && ds->n_side <= SAMPLE_SIDE_MAX) {
		char key[32];

		if ((rc = dstore_kv_set(st, "n_side", ds->n_side)) != 0)
			goto fail;
		for (uint32_t k = 0; k < ds->n_side; k++) {
			snprintf(key, sizeof(key), "side_card%u", k);
			if ((rc = dstore_kv_set(st, key, ds->side_card[k])) !=
			    0)
				goto fail;
		}
	}
	if ((rc = dstore_prep(st, "INSERT INTO samples(item, ts, rating, "
	    "label, genres, hist, side) VALUES(?,?,?,?,?,?,?)", &s)) != 0)
		goto fail;
	for (size_t i = 0; i < ds->n; i++) {
		const struct sample *x = &ds->s[i];
		sqlite3_bind_int64(s, 1, x->item);
		sqlite3_bind_int64(s, 2, x->ts);
		sqlite3_bind_double(s, 3, x->rating);
		sqlite3_bind_double(s, 4, x->label);
		sqlite3_bind_int64(s, 5, x->genres);
		if (x->hist_n)
			sqlite3_bind_blob(s, 6, sample_hist(ds, x),
			    x->hist_n * 4, SQLITE_STATIC);
		else
			sqlite3_bind_null(s, 6);
		if (ds->n_side > 0 && ds->n_side <= SAMPLE_SIDE_MAX)
			sqlite3_bind_blob(s, 7, x->side, ds->n_side * 4,
			    SQLITE_STATIC);
		else
			sqlite3_bind_null(s, 7);
		if (sqlite3_step(s) != SQLITE_DONE) {
			rc = dstore_fail(st, "sample insert");
			goto fail;
		}
		sqlite3_reset(s);
	}
	sqlite3_finalize(s);
	s = NULL;
	if (last_id != NULL)
		*last_id = sqlite3_last_insert_rowid(st->db);
	/* The window, in the same transaction: one sync per event. */
	if (keep > 0 && (rc = samples_trim(st, keep)) != 0)
		goto fail;
	return dstore_exec(st, "COMMIT");
fail:
	sqlite3_finalize(s);
	dstore_exec(st, "ROLLBACK");
	return rc;
}

int
dstore_samples_load(struct dstore *st, struct dataset *ds, uint32_t user)
{
	sqlite3_stmt *s;
	int64_t ns = 0, c;
	char key[32];

	if (dstore_kv_get(st, "n_side", &ns) == 0 && ns > 0 &&
	    ns <= SAMPLE_SIDE_MAX) {
		ds->n_side = (uint32_t)ns;
		for (uint32_t k = 0; k < ds->n_side; k++) {
			snprintf(key, sizeof(key), "side_card%u", k);
			ds->side_card[k] = dstore_kv_get(st, key, &c) == 0 &&
			    c > 0 && c <= UINT32_MAX ? (uint32_t)c : 1;
		}
	}
	if (dstore_prep(st, "SELECT item, ts, rating, label, genres, hist, "
	    "side FROM samples ORDER BY ts, id", &s) != 0)
		return -EIO;
	while (sqlite3_step(s) == SQLITE_ROW) {
		struct sample x;
		size_t hn = (size_t)sqlite3_column_bytes(s, 5) / 4;
		size_t sb = (size_t)sqlite3_column_bytes(s, 6);

		memset(&x, 0, sizeof(x));
		if (sb > ds->n_side * sizeof(uint32_t))
			sb = ds->n_side * sizeof(uint32_t);
		if (sb > 0)
			memcpy(x.side, sqlite3_column_blob(s, 6), sb);
		/* a value above its card (a foreign store): unknown */
		for (uint32_t k = 0; k < ds->n_side; k++)
			if (x.side[k] > ds->side_card[k])
				x.side[k] = ds->side_card[k];
		x.user = user;
		x.item = (uint32_t)sqlite3_column_int64(s, 0);
		x.ts = sqlite3_column_int64(s, 1);
		x.rating = (float)sqlite3_column_double(s, 2);
		x.label = (float)sqlite3_column_double(s, 3);
		x.genres = (uint32_t)sqlite3_column_int64(s, 4);
		dataset_append(ds, &x, sqlite3_column_blob(s, 5), hn);
	}
	sqlite3_finalize(s);
	return 0;
}

int
dstore_model_get(struct dstore *st, uint64_t *version, void **blob,
    size_t *len)
{
	sqlite3_stmt *s;
	int rc = -ENOENT;

	if (dstore_prep(st, "SELECT version, blob FROM model WHERE id = 1",
	    &s) != 0)
		return -EIO;
	if (sqlite3_step(s) == SQLITE_ROW) {
		*version = (uint64_t)sqlite3_column_int64(s, 0);
		*len = (size_t)sqlite3_column_bytes(s, 1);
		*blob = xmalloc(*len);
		memcpy(*blob, sqlite3_column_blob(s, 1), *len);
		rc = 0;
	}
	sqlite3_finalize(s);
	return rc;
}

int
dstore_model_put(struct dstore *st, uint64_t version, const void *blob,
    size_t len)
{
	sqlite3_stmt *s;
	int rc = 0;

	if (dstore_prep(st, "INSERT OR REPLACE INTO model VALUES(1, ?, ?)", &s))
		return -EIO;
	sqlite3_bind_int64(s, 1, (int64_t)version);
	sqlite3_bind_blob64(s, 2, blob, len, SQLITE_STATIC);
	if (sqlite3_step(s) != SQLITE_DONE)
		rc = dstore_fail(st, "model put");
	sqlite3_finalize(s);
	return rc;
}

int
dstore_next_request_id(struct dstore *st, uint64_t *id)
{
	sqlite3_stmt *s;
	int rc = 0;

	if (dstore_prep(st, "INSERT INTO kv VALUES('next_request', 2) ON "
	    "CONFLICT(key) DO UPDATE SET value = value + 1 RETURNING value - 1",
	    &s) != 0)
		return -EIO;
	if (sqlite3_step(s) == SQLITE_ROW)
		*id = (uint64_t)sqlite3_column_int64(s, 0);
	else
		rc = dstore_fail(st, "request id");
	sqlite3_finalize(s);
	return rc;
}

int
dstore_outbox_put(struct dstore *st, uint64_t req_id, uint64_t base,
    const void *blob, size_t len)
{
	sqlite3_stmt *s;
	int rc = 0;

	if (dstore_prep(st, "INSERT INTO outbox(request_id, base_version, "
	    "blob) VALUES(?, ?, ?)", &s) != 0)
		return -EIO;
	sqlite3_bind_int64(s, 1, (int64_t)req_id);
	sqlite3_bind_int64(s, 2, (int64_t)base);
	sqlite3_bind_blob64(s, 3, blob, len, SQLITE_STATIC);
	if (sqlite3_step(s) != SQLITE_DONE)
		rc = dstore_fail(st, "outbox put");
	sqlite3_finalize(s);
	return rc;
}

int
dstore_outbox_pending(struct dstore *st, uint64_t *req_id, uint64_t *base,
    void **blob, size_t *len)
{
	sqlite3_stmt *s;
	int rc = -ENOENT;

	if (dstore_prep(st, "SELECT request_id, base_version, blob FROM outbox "
	    "WHERE acked = 0 ORDER BY request_id LIMIT 1", &s) != 0)
		return -EIO;
	if (sqlite3_step(s) == SQLITE_ROW) {
		*req_id = (uint64_t)sqlite3_column_int64(s, 0);
		*base = (uint64_t)sqlite3_column_int64(s, 1);
		*len = (size_t)sqlite3_column_bytes(s, 2);
		*blob = xmalloc(*len);
		memcpy(*blob, sqlite3_column_blob(s, 2), *len);
		rc = 0;
	}
	sqlite3_finalize(s);
	return rc;
}

int
dstore_outbox_ack(struct dstore *st, uint64_t req_id, uint64_t patch)
{
	sqlite3_stmt *s;
	int rc = 0;

	if (dstore_prep(st, "UPDATE outbox SET acked = 1, patch_id = ? WHERE "
	    "request_id = ?", &s) != 0)
		return -EIO;
	sqlite3_bind_int64(s, 1, (int64_t)patch);
	sqlite3_bind_int64(s, 2, (int64_t)req_id);
	if (sqlite3_step(s) != SQLITE_DONE)
		rc = dstore_fail(st, "outbox ack");
	sqlite3_finalize(s);
	return rc;
}

int
dstore_outbox_last_base(struct dstore *st, uint64_t *base)
{
	sqlite3_stmt *s;
	int rc = 0;

	*base = 0;
	if (dstore_prep(st, "SELECT MAX(base_version) FROM outbox", &s) != 0)
		return -EIO;
	if (sqlite3_step(s) == SQLITE_ROW)
		*base = (uint64_t)sqlite3_column_int64(s, 0);
	else
		rc = dstore_fail(st, "outbox last base");
	sqlite3_finalize(s);
	return rc;
}

int
dstore_kv_get(struct dstore *st, const char *key, int64_t *v)
{
	sqlite3_stmt *s;

	*v = 0;
	if (dstore_prep(st, "SELECT value FROM kv WHERE key = ?", &s) != 0)
		return -EIO;
	sqlite3_bind_text(s, 1, key, -1, SQLITE_STATIC);
	if (sqlite3_step(s) == SQLITE_ROW)
		*v = sqlite3_column_int64(s, 0);
	sqlite3_finalize(s);
	return 0;
}

int
dstore_kv_set(struct dstore *st, const char *key, int64_t v)
{
	sqlite3_stmt *s;
	int rc = 0;

	if (dstore_prep(st, "INSERT INTO kv VALUES(?, ?) ON CONFLICT(key) DO "
	    "UPDATE SET value = excluded.value", &s) != 0)
		return -EIO;
	sqlite3_bind_text(s, 1, key, -1, SQLITE_STATIC);
	sqlite3_bind_int64(s, 2, v);
	if (sqlite3_step(s) != SQLITE_DONE)
		rc = dstore_fail(st, "kv set");
	sqlite3_finalize(s);
	return rc;
}
