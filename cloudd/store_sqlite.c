/*
 * store_sqlite: the SQLite backend of store.h (store.c dispatches; the
 * model tables are in store_sqlite_model.c). WAL mode, so readers (the loop
 * thread) never wait for the writer (an import or training job on a worker
 * connection); synchronous=NORMAL, which in WAL mode keeps every committed
 * transaction across a process crash (kill -9) and loses at most the last
 * transactions on power loss (set db-synchronous=full to keep those too).
 * The schema is versioned in schema_version; migrations[] upgrades it.
 */
#include <errno.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cloudd/store.h"
#include "cloudd/store_impl.h"
#include "cloudd/store_meta.h"
#include "cloudd/store_sqlite_impl.h"
#include "shared/data/dataset.h"
#include "shared/db.h"
#include "shared/xmalloc.h"


static const struct store_ops sq_ops;
static void sq_close(struct store *base);

/* migrations[i] takes the schema from version i to i + 1. */
static const char *const migrations[] = {
	"CREATE TABLE pool("
	"  id INTEGER PRIMARY KEY,"
	"  user INTEGER NOT NULL, item INTEGER NOT NULL, ts INTEGER NOT NULL,"
	"  rating REAL NOT NULL, label REAL NOT NULL, genres INTEGER NOT NULL,"
	"  hist BLOB, repr BLOB, repr_version INTEGER);"
	"CREATE INDEX pool_user ON pool(user);"
	"CREATE TABLE meta(key TEXT PRIMARY KEY, value INTEGER NOT NULL);"
	"CREATE TABLE models("
	"  version INTEGER PRIMARY KEY, parent INTEGER NOT NULL,"
	"  created INTEGER NOT NULL, size INTEGER NOT NULL,"
	"  checksum BLOB NOT NULL, global_ctr REAL NOT NULL, blob BLOB NOT NULL);"
	"CREATE TABLE devices("
	"  device_id TEXT PRIMARY KEY, user_id INTEGER NOT NULL,"
	"  compute_class TEXT NOT NULL, memory_mb INTEGER NOT NULL,"
	"  registered INTEGER NOT NULL, last_seen INTEGER NOT NULL);"
	"CREATE TABLE patches("
	"  id INTEGER PRIMARY KEY, device_id TEXT NOT NULL,"
	"  user_id INTEGER NOT NULL, request_id INTEGER NOT NULL,"
	"  base_version INTEGER NOT NULL, kind TEXT NOT NULL,"
	"  created INTEGER NOT NULL, size INTEGER NOT NULL, blob BLOB NOT NULL,"
	"  UNIQUE(device_id, request_id));"
	"CREATE INDEX patches_base ON patches(base_version);",
	/* 2: work that must happen once, for whichever replica leads. */
	"CREATE TABLE tasks("
	"  id INTEGER PRIMARY KEY, kind TEXT NOT NULL, arg INTEGER NOT NULL,"
	"  created INTEGER NOT NULL, done INTEGER, result INTEGER);",
	/* 3: Forward-OFA models, one per CTR version (ofa_train.c). */
	"CREATE TABLE ofa_models("
	"  base_version INTEGER PRIMARY KEY, size INTEGER NOT NULL,"
	"  blob BLOB NOT NULL);",
	/*
	 * 4: authentication state (guard.c), formerly in a per-process
	 * auth.db: the cloud's key pair and the devices' public keys.
	 */
	"CREATE TABLE cloud_key("
	"  id INTEGER PRIMARY KEY CHECK (id = 1), pk BLOB NOT NULL,"
	"  sk BLOB NOT NULL, created INTEGER NOT NULL);"
	"CREATE TABLE device_keys("
	"  device_id TEXT PRIMARY KEY, pk BLOB NOT NULL,"
	"  counter INTEGER NOT NULL, enrolled INTEGER NOT NULL);",
	/*
	 * 5 (issue 16): the pool's feature schema (its canonical text) and
	 * each sample's side values (n_side uint32s; NULL when none).
	 */
	"ALTER TABLE pool ADD COLUMN side BLOB;"
	"CREATE TABLE pool_schema("
	"  id INTEGER PRIMARY KEY CHECK (id = 1), text TEXT NOT NULL);",
	/*
	 * 6: the distillation run that used each patch (its base version; 0:
	 * none yet), indexed where the cron looks: the unused ones.
	 */
	"ALTER TABLE patches ADD COLUMN distilled INTEGER NOT NULL DEFAULT 0;"
	"CREATE INDEX patches_pending ON patches(base_version) "
	"  WHERE distilled = 0;",
};

static int
sq_schema_version(struct store *base)
{
	struct sq *st = SQ(base);
	sqlite3_stmt *s;
	int v = -1;

	if (sqlite3_prepare_v2(st->db,
	    "SELECT max(version) FROM schema_version", -1, &s, NULL) !=
	    SQLITE_OK)
		return -1;
	if (sqlite3_step(s) == SQLITE_ROW)
		v = sqlite3_column_int(s, 0);
	sqlite3_finalize(s);
	return v;
}

static int
migrate(struct sq *st)
{
	int v, n = sizeof(migrations) / sizeof(migrations[0]);
	char sql[128];

	/*
	 * Read the version inside the write transaction, so two connections
	 * opening a new database at once cannot both run a migration.
	 */
	if (exec(st, "BEGIN IMMEDIATE") != 0)
		return -EIO;
	if (exec(st, "CREATE TABLE IF NOT EXISTS schema_version("
	    "version INTEGER PRIMARY KEY, applied INTEGER NOT NULL)") != 0)
		goto fail;
	v = sq_schema_version(&st->base);
	if (v < 0)
		v = 0;
	if (v > n) {
		snprintf(st->base.err, sizeof(st->base.err), "database schema version "
		    "%d is newer than this cloudd (%d)", v, n);
		exec(st, "ROLLBACK");
		return -EPROTO;
	}
	for (; v < n; v++) {
		snprintf(sql, sizeof(sql), "INSERT INTO schema_version "
		    "VALUES(%d, strftime('%%s','now'))", v + 1);
		if (exec(st, migrations[v]) != 0 || exec(st, sql) != 0) {
			char keep[200];
			snprintf(keep, sizeof(keep), "%.199s", st->base.err);
			snprintf(st->base.err, sizeof(st->base.err), "migration %d: %.200s",
			    v + 1, keep);
			goto fail;
		}
	}
	return exec(st, "COMMIT");
fail:
	exec(st, "ROLLBACK");
	return -EIO;
}

int
store_sqlite_open(struct store **out, const char *target, int busy_ms,
    char *err, size_t errlen)
{
	struct sq *st;
	int rc;

	*out = NULL;
	st = xcalloc(1, sizeof(*st));
	st->base.ops = &sq_ops;
	if ((rc = db_open(&st->db, target, busy_ms, err, errlen)) != 0)
		goto fail;
	if ((rc = exec(st, "PRAGMA foreign_keys=ON")) != 0 ||
	    (rc = migrate(st)) != 0) {
		snprintf(err, errlen, "%s: %s", target, st->base.err);
		goto fail;
	}
	*out = &st->base;
	return 0;
fail:
	sq_close(&st->base);
	return rc;
}

static void
sq_close(struct store *base)
{
	struct sq *st = SQ(base);

	sqlite3_finalize(st->patch_ins);
	sqlite3_finalize(st->patch_find);
	sqlite3_finalize(st->patch_trim);
	sqlite3_finalize(st->dev_put);
	sqlite3_close(st->db);
	free(st);
}

static int
set_meta(struct sq *st, const char *key, int64_t v)
{
	sqlite3_stmt *s;
	int rc = 0;

	if (prep(st, "INSERT INTO meta VALUES(?1, ?2) ON CONFLICT(key) DO "
	    "UPDATE SET value = max(value, ?2)", &s) != 0)
		return -EIO;
	sqlite3_bind_text(s, 1, key, -1, SQLITE_STATIC);
	sqlite3_bind_int64(s, 2, v);
	if (sqlite3_step(s) != SQLITE_DONE)
		rc = fail_db(st, "meta");
	sqlite3_finalize(s);
	return rc;
}

static int64_t
get_meta(struct sq *st, const char *key)
{
	sqlite3_stmt *s;
	int64_t v = 0;

	if (prep(st, "SELECT value FROM meta WHERE key = ?1", &s) != 0)
		return 0;
	sqlite3_bind_text(s, 1, key, -1, SQLITE_STATIC);
	if (sqlite3_step(s) == SQLITE_ROW)
		v = sqlite3_column_int64(s, 0);
	sqlite3_finalize(s);
	return v;
}

/* set_meta and get_meta for store_meta_side_put/get */
static int
meta_set(struct store *base, const char *key, int64_t v)
{
	return set_meta(SQ(base), key, v);
}

static int64_t
meta_get(struct store *base, const char *key)
{
	return get_meta(SQ(base), key);
}

/* The pool's schema text into *out (malloc'ed), or NULL when none. */
static int
schema_get(struct sq *st, char **out)
{
	sqlite3_stmt *s;
	int r;

	*out = NULL;
	if (prep(st, "SELECT text FROM pool_schema WHERE id = 1", &s) != 0)
		return -EIO;
	if ((r = sqlite3_step(s)) == SQLITE_ROW)
		*out = xstrdup((const char *)sqlite3_column_text(s, 0));
	sqlite3_finalize(s);
	return r == SQLITE_ROW || r == SQLITE_DONE ? 0 : fail_db(st,
	    "pool schema");
}

static int
sq_pool_schema(struct store *base, char **schema)
{
	int rc = schema_get(SQ(base), schema);

	return rc == 0 && *schema == NULL ? -ENOENT : rc;
}

/*
 * A pool keeps one schema (store.h): checks schema against the stored
 * one, and stores it when the pool has none. Inside the transaction.
 */
static int
schema_put(struct sq *st, const char *schema)
{
	sqlite3_stmt *s;
	char *old;
	uint64_t n = 0;
	int rc;

	if ((rc = schema_get(st, &old)) != 0)
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
	if (prep(st, "SELECT count(*) FROM pool", &s) != 0)
		return -EIO;
	if (sqlite3_step(s) == SQLITE_ROW)
		n = (uint64_t)sqlite3_column_int64(s, 0);
	sqlite3_finalize(s);
	if (n > 0) {
		snprintf(st->base.err, sizeof(st->base.err), "the pool holds "
		    "%llu samples without a feature schema",
		    (unsigned long long)n);
		return -EEXIST;
	}
	if (prep(st, "INSERT INTO pool_schema VALUES(1, ?1)", &s) != 0)
		return -EIO;
	sqlite3_bind_text(s, 1, schema, -1, SQLITE_STATIC);
	rc = sqlite3_step(s) == SQLITE_DONE ? 0 : fail_db(st, "pool schema");
	sqlite3_finalize(s);
	return rc;
}

static int
sq_pool_insert(struct store *base, const struct dataset *ds,
    const char *schema, uint64_t *rows)
{
	struct sq *st = SQ(base);
	sqlite3_stmt *s = NULL;
	int rc;

	*rows = 0;
	if ((rc = exec(st, "BEGIN IMMEDIATE")) != 0)
		return rc;
	if ((rc = schema_put(st, schema)) != 0)
		goto fail;
	if ((rc = prep(st, "INSERT INTO pool(user, item, ts, rating, label, "
	    "genres, hist, side) VALUES(?,?,?,?,?,?,?,?)", &s)) != 0)
		goto fail;
	for (size_t i = 0; i < ds->n; i++) {
		const struct sample *x = &ds->s[i];
		sqlite3_bind_int64(s, 1, x->user);
		sqlite3_bind_int64(s, 2, x->item);
		sqlite3_bind_int64(s, 3, x->ts);
		sqlite3_bind_double(s, 4, x->rating);
		sqlite3_bind_double(s, 5, x->label);
		sqlite3_bind_int64(s, 6, x->genres);
		if (x->hist_n > 0)
			sqlite3_bind_blob(s, 7, sample_hist(ds, x),
			    x->hist_n * sizeof(uint32_t), SQLITE_STATIC);
		else
			sqlite3_bind_null(s, 7);
		if (ds->n_side > 0 && ds->n_side <= SAMPLE_SIDE_MAX)
			sqlite3_bind_blob(s, 8, x->side, ds->n_side *
			    sizeof(uint32_t), SQLITE_STATIC);
		else
			sqlite3_bind_null(s, 8);
		if (sqlite3_step(s) != SQLITE_DONE) {
			rc = fail_db(st, "pool insert");
			goto fail;
		}
		sqlite3_reset(s);
	}
	sqlite3_finalize(s);
	s = NULL;
	if ((rc = set_meta(st, "n_users", ds->n_users)) != 0 ||
	    (rc = set_meta(st, "n_items", ds->n_items)) != 0 ||
	    (rc = set_meta(st, "n_genres", ds->n_genres)) != 0 ||
	    (rc = store_meta_side_put(&st->base, meta_set, ds)) != 0)
		goto fail;
	if ((rc = exec(st, "COMMIT")) != 0)
		goto fail;
	*rows = ds->n;
	return 0;
fail:
	sqlite3_finalize(s);
	exec(st, "ROLLBACK");
	return rc;
}

static int
count(struct sq *st, const char *sql, uint64_t *n)
{
	sqlite3_stmt *s;
	int rc = 0;

	if (prep(st, sql, &s) != 0)
		return -EIO;
	if (sqlite3_step(s) == SQLITE_ROW)
		*n = (uint64_t)sqlite3_column_int64(s, 0);
	else
		rc = fail_db(st, "count");
	sqlite3_finalize(s);
	return rc;
}

static int
sq_pool_count(struct store *base, uint64_t *n)
{
	struct sq *st = SQ(base);
	return count(st, "SELECT count(*) FROM pool", n);
}

static int
sq_pool_load(struct store *base, struct dataset *ds, uint64_t **rowid)
{
	struct sq *st = SQ(base);
	sqlite3_stmt *s;
	uint64_t n = 0;
	size_t cap;
	uint64_t *ids;
	int rc = 0, r;

	if ((rc = sq_pool_count(&st->base, &n)) != 0)
		return rc;
	cap = n ? n : 1;
	ids = xcalloc(cap, sizeof(*ids));
	if (prep(st, "SELECT id, user, item, ts, rating, label, genres, hist, "
	    "side FROM pool ORDER BY id", &s) != 0) {
		free(ids);
		return -EIO;
	}
	while ((r = sqlite3_step(s)) == SQLITE_ROW) {
		struct sample x;
		int hb = sqlite3_column_bytes(s, 7);
		size_t hn = hb / sizeof(uint32_t);

		if (ds->n >= cap)
			break;	/* rows appeared since the count */
		memset(&x, 0, sizeof(x));
		x.user = (uint32_t)sqlite3_column_int64(s, 1);
		x.item = (uint32_t)sqlite3_column_int64(s, 2);
		x.ts = sqlite3_column_int64(s, 3);
		x.rating = (float)sqlite3_column_double(s, 4);
		x.label = (float)sqlite3_column_double(s, 5);
		x.genres = (uint32_t)sqlite3_column_int64(s, 6);
		{
			/* side values (a row stored before schema 5: none) */
			size_t sb = (size_t)sqlite3_column_bytes(s, 8);

			if (sb > sizeof(x.side))
				sb = sizeof(x.side);
			if (sb > 0)
				memcpy(x.side, sqlite3_column_blob(s, 8), sb);
		}
		if (hn > SAMPLE_HIST_MAX)
			hn = SAMPLE_HIST_MAX;
		ids[ds->n] = (uint64_t)sqlite3_column_int64(s, 0);
		dataset_append(ds, &x, sqlite3_column_blob(s, 7), hn);
	}
	if (r != SQLITE_DONE && r != SQLITE_ROW)
		rc = fail_db(st, "pool load");
	sqlite3_finalize(s);
	ds->n_users = (uint32_t)get_meta(st, "n_users");
	ds->n_items = (uint32_t)get_meta(st, "n_items");
	ds->n_genres = (uint32_t)get_meta(st, "n_genres");
	store_meta_side_get(&st->base, meta_get, ds);
	if (rc != 0) {
		free(ids);
		return rc;
	}
	*rowid = ids;
	return 0;
}

static int
sq_pool_set_repr(struct store *base, const uint64_t *rowid,
    const float *repr, size_t n, int dim, uint64_t version)
{
	struct sq *st = SQ(base);
	sqlite3_stmt *s = NULL;
	int rc;

	if ((rc = exec(st, "BEGIN IMMEDIATE")) != 0)
		return rc;
	if ((rc = prep(st, "UPDATE pool SET repr = ?1, repr_version = ?2 "
	    "WHERE id = ?3", &s)) != 0)
		goto fail;
	for (size_t i = 0; i < n; i++) {
		sqlite3_bind_blob(s, 1, repr + i * dim, dim * sizeof(float),
		    SQLITE_STATIC);
		sqlite3_bind_int64(s, 2, (int64_t)version);
		sqlite3_bind_int64(s, 3, (int64_t)rowid[i]);
		if (sqlite3_step(s) != SQLITE_DONE) {
			rc = fail_db(st, "repr update");
			goto fail;
		}
		sqlite3_reset(s);
	}
	sqlite3_finalize(s);
	return exec(st, "COMMIT");
fail:
	sqlite3_finalize(s);
	exec(st, "ROLLBACK");
	return rc;
}

static int
sq_pool_get_repr(struct store *base, float *repr, size_t n, int dim,
    uint64_t version)
{
	struct sq *st = SQ(base);
	sqlite3_stmt *s;
	size_t i = 0;
	int rc = 0;

	if (prep(st, "SELECT repr, repr_version FROM pool ORDER BY id", &s))
		return -EIO;
	while (sqlite3_step(s) == SQLITE_ROW && i < n) {
		if ((uint64_t)sqlite3_column_int64(s, 1) != version ||
		    sqlite3_column_bytes(s, 0) != (int)(dim * sizeof(float))) {
			rc = -ENOENT;
			break;
		}
		memcpy(repr + i * dim, sqlite3_column_blob(s, 0),
		    dim * sizeof(float));
		i++;
	}
	if (rc == 0 && i != n)
		rc = -ENOENT;
	sqlite3_finalize(s);
	return rc;
}

static int
sq_device_put(struct store *base, const struct store_device *d)
{
	struct sq *st = SQ(base);
	sqlite3_stmt *s;
	int rc = 0;

	if (prep(st, "INSERT INTO devices VALUES(?1,?2,?3,?4,?5,?5) "
	    "ON CONFLICT(device_id) DO UPDATE SET user_id = ?2, "
	    "compute_class = ?3, memory_mb = ?4, last_seen = ?5", &s) != 0)
		return -EIO;
	sqlite3_bind_text(s, 1, d->id, -1, SQLITE_STATIC);
	sqlite3_bind_int64(s, 2, d->user_id);
	sqlite3_bind_text(s, 3, d->compute_class, -1, SQLITE_STATIC);
	sqlite3_bind_int64(s, 4, d->memory_mb);
	sqlite3_bind_int64(s, 5, d->last_seen);
	if (sqlite3_step(s) != SQLITE_DONE)
		rc = fail_db(st, "device put");
	sqlite3_finalize(s);
	return rc;
}

static int
sq_device_list(struct store *base, struct store_device **out, size_t *n)
{
	struct sq *st = SQ(base);
	sqlite3_stmt *s;
	size_t cap = 64;

	*n = 0;
	*out = xcalloc(cap, sizeof(**out));
	if (prep(st, "SELECT d.device_id, d.user_id, d.compute_class, "
	    "d.memory_mb, d.registered, d.last_seen, (SELECT count(*) FROM "
	    "patches p WHERE p.device_id = d.device_id) FROM devices d "
	    "ORDER BY d.device_id", &s) != 0)
		{
		free(*out);
		*out = NULL;
		return -EIO;
	}
	while (sqlite3_step(s) == SQLITE_ROW) {
		struct store_device *d;
		if (*n == cap)
			*out = xreallocarray(*out, cap *= 2, sizeof(**out));
		d = &(*out)[(*n)++];
		memset(d, 0, sizeof(*d));
		snprintf(d->id, sizeof(d->id), "%s",
		    (const char *)sqlite3_column_text(s, 0));
		d->user_id = (uint32_t)sqlite3_column_int64(s, 1);
		snprintf(d->compute_class, sizeof(d->compute_class), "%s",
		    (const char *)sqlite3_column_text(s, 2));
		d->memory_mb = (uint32_t)sqlite3_column_int64(s, 3);
		d->registered = sqlite3_column_int64(s, 4);
		d->last_seen = sqlite3_column_int64(s, 5);
		d->patches = (uint64_t)sqlite3_column_int64(s, 6);
	}
	sqlite3_finalize(s);
	return 0;
}

static int
sq_device_count(struct store *base, uint64_t *n)
{
	struct sq *st = SQ(base);
	return count(st, "SELECT count(*) FROM devices", n);
}

static int
sq_user_device_count(struct store *base, uint32_t user, uint64_t *n)
{
	char q[96];

	snprintf(q, sizeof(q), "SELECT count(*) FROM devices WHERE "
	    "user_id = %u", user);
	return count(SQ(base), q, n);
}

/*
 * The group commit's transaction (store.h). BEGIN IMMEDIATE takes the
 * write lock now, waiting up to the busy timeout for a worker's write,
 * instead of failing with SQLITE_BUSY at the first insert.
 */
static int
sq_begin(struct store *base)
{
	return exec(SQ(base), "BEGIN IMMEDIATE");
}

static int
sq_commit(struct store *base)
{
	return exec(SQ(base), "COMMIT");
}

static int
sq_wal_manual(struct store *base)
{
	return exec(SQ(base), "PRAGMA wal_autocheckpoint=0");
}

static int
sq_wal_checkpoint(struct store *base)
{
	struct sq *st = SQ(base);
	int rc = sqlite3_wal_checkpoint_v2(st->db, NULL,
	    SQLITE_CHECKPOINT_PASSIVE, NULL, NULL);

	/* BUSY: another checkpoint is running; the next tick retries. */
	return rc == SQLITE_OK || rc == SQLITE_BUSY ? 0 :
	    fail_db(st, "wal checkpoint");
}

/*
 * SQLite rolls the whole transaction back by itself on some errors
 * (SQLITE_FULL, SQLITE_IOERR, SQLITE_NOMEM), and a second ROLLBACK would
 * fail: only roll back what is still open. Keeps store_errmsg (the
 * failure that led here).
 */
static void
sq_rollback(struct store *base)
{
	struct sq *st = SQ(base);

	if (!sqlite3_get_autocommit(st->db))
		sqlite3_exec(st->db, "ROLLBACK", NULL, NULL, NULL);
}

/*
 * Deletes a device's patches older than its newest keep; on every upload,
 * so the statement is kept like the insert's.
 */
static int
patch_retain(struct sq *st, const char *device_id, uint32_t keep)
{
	int r;

	if (st->patch_trim == NULL && prep(st, "DELETE FROM patches WHERE "
	    "device_id = ?1 AND id < (SELECT min(id) FROM (SELECT id FROM "
	    "patches WHERE device_id = ?1 ORDER BY id DESC LIMIT ?2))",
	    &st->patch_trim) != 0)
		return -EIO;
	sqlite3_bind_text(st->patch_trim, 1, device_id, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st->patch_trim, 2, keep);
	r = sqlite3_step(st->patch_trim);
	sqlite3_reset(st->patch_trim);
	return r == SQLITE_DONE ? 0 : fail_db(st, "patch retention");
}

static int
sq_patch_put(struct store *base, const struct store_patch *p, uint32_t keep,
    uint64_t *id, int *dup)
{
	struct sq *st = SQ(base);
	int r;

	*dup = 0;
	if ((st->patch_ins == NULL || st->patch_find == NULL) &&
	    (sqlite3_finalize(st->patch_ins), sqlite3_finalize(st->patch_find),
	    st->patch_ins = st->patch_find = NULL, prep(st, "INSERT INTO patches("
	    "device_id, user_id, request_id, base_version, kind, created, "
	    "size, blob) VALUES(?,?,?,?,?,?,?,?) ON CONFLICT DO NOTHING",
	    &st->patch_ins) != 0 || prep(st, "SELECT id FROM patches WHERE "
	    "device_id = ?1 AND request_id = ?2", &st->patch_find) != 0))
		return -EIO;
	sqlite3_bind_text(st->patch_ins, 1, p->device_id, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st->patch_ins, 2, p->user_id);
	sqlite3_bind_int64(st->patch_ins, 3, (int64_t)p->request_id);
	sqlite3_bind_int64(st->patch_ins, 4, (int64_t)p->base_version);
	sqlite3_bind_text(st->patch_ins, 5, p->kind, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st->patch_ins, 6, p->created);
	sqlite3_bind_int64(st->patch_ins, 7, (int64_t)p->size);
	sqlite3_bind_blob64(st->patch_ins, 8, p->blob, p->size,
	    SQLITE_STATIC);
	r = sqlite3_step(st->patch_ins);
	sqlite3_reset(st->patch_ins);
	if (r != SQLITE_DONE)
		return fail_db(st, "patch insert");
	if (sqlite3_changes(st->db) == 1) {
		*id = (uint64_t)sqlite3_last_insert_rowid(st->db);
		/* The device's newest keep stay (limits.patches-per-device). */
		return keep > 0 ? patch_retain(st, p->device_id, keep) : 0;
	}
	/* Already stored under this request id: a resend. */
	*dup = 1;
	sqlite3_bind_text(st->patch_find, 1, p->device_id, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st->patch_find, 2, (int64_t)p->request_id);
	r = sqlite3_step(st->patch_find);
	*id = r == SQLITE_ROW ?
	    (uint64_t)sqlite3_column_int64(st->patch_find, 0) : 0;
	sqlite3_reset(st->patch_find);
	return r == SQLITE_ROW ? 0 : fail_db(st, "patch find");
}

static int
sq_patch_count(struct store *base, uint64_t *n)
{
	struct sq *st = SQ(base);
	return count(st, "SELECT count(*) FROM patches", n);
}

static int
sq_patch_list(struct store *base, uint64_t min_base, struct store_patch **out,
    size_t *n)
{
	struct sq *st = SQ(base);
	sqlite3_stmt *s;
	size_t cap = 64;

	*n = 0;
	*out = xcalloc(cap, sizeof(**out));
	if (prep(st, "SELECT id, device_id, user_id, request_id, base_version,"
	    " kind, created, size, blob FROM patches WHERE base_version >= ?1"
	    " ORDER BY id", &s) != 0)
		{
		free(*out);
		*out = NULL;
		return -EIO;
	}
	sqlite3_bind_int64(s, 1, (int64_t)min_base);
	while (sqlite3_step(s) == SQLITE_ROW) {
		struct store_patch *p;
		size_t sz = (size_t)sqlite3_column_bytes(s, 8);
		if (*n == cap)
			*out = xreallocarray(*out, cap *= 2, sizeof(**out));
		p = &(*out)[(*n)++];
		memset(p, 0, sizeof(*p));
		p->id = (uint64_t)sqlite3_column_int64(s, 0);
		snprintf(p->device_id, sizeof(p->device_id), "%s",
		    (const char *)sqlite3_column_text(s, 1));
		p->user_id = (uint32_t)sqlite3_column_int64(s, 2);
		p->request_id = (uint64_t)sqlite3_column_int64(s, 3);
		p->base_version = (uint64_t)sqlite3_column_int64(s, 4);
		snprintf(p->kind, sizeof(p->kind), "%s",
		    (const char *)sqlite3_column_text(s, 5));
		p->created = sqlite3_column_int64(s, 6);
		p->size = sz;
		p->blob = xmalloc(sz);
		memcpy(p->blob, sqlite3_column_blob(s, 8), sz);
	}
	sqlite3_finalize(s);
	return 0;
}


static int
sq_patch_pending(struct store *base, uint64_t min_base, uint64_t max_base,
    uint32_t *users, int64_t *first)
{
	struct sq *st = SQ(base);
	sqlite3_stmt *s;
	int rc = 0;

	if (prep(st, "SELECT count(DISTINCT user_id), coalesce(min(created), "
	    "0) FROM patches WHERE distilled = 0 AND base_version BETWEEN ?1 "
	    "AND ?2 AND kind = 'metapatch'", &s) != 0)
		return -EIO;
	sqlite3_bind_int64(s, 1, (int64_t)min_base);
	sqlite3_bind_int64(s, 2, (int64_t)max_base);
	if (sqlite3_step(s) == SQLITE_ROW) {
		*users = (uint32_t)sqlite3_column_int64(s, 0);
		*first = sqlite3_column_int64(s, 1);
	} else
		rc = fail_db(st, "patch pending");
	sqlite3_finalize(s);
	return rc;
}

static int
sq_patch_used(struct store *base, const uint64_t *ids, size_t n, uint64_t run)
{
	struct sq *st = SQ(base);
	sqlite3_stmt *s;
	int rc = 0;

	if (exec(st, "BEGIN IMMEDIATE") != 0)
		return -EIO;
	if (prep(st, "UPDATE patches SET distilled = ?1 WHERE id = ?2", &s)) {
		sq_rollback(base);
		return -EIO;
	}
	for (size_t i = 0; i < n && rc == 0; i++) {
		sqlite3_bind_int64(s, 1, (int64_t)run);
		sqlite3_bind_int64(s, 2, (int64_t)ids[i]);
		if (sqlite3_step(s) != SQLITE_DONE)
			rc = fail_db(st, "patch used");
		sqlite3_reset(s);
	}
	sqlite3_finalize(s);
	if (rc == 0 && exec(st, "COMMIT") != 0)
		rc = -EIO;
	if (rc != 0)
		sq_rollback(base);
	return rc;
}

static int
sq_device_get(struct store *base, const char *id, struct store_device *d)
{
	struct sq *st = SQ(base);
	sqlite3_stmt *s;
	int rc = -ENOENT, r;

	if (prep(st, "SELECT device_id, user_id, compute_class, memory_mb, "
	    "registered, last_seen FROM devices WHERE device_id = ?1", &s))
		return -EIO;
	sqlite3_bind_text(s, 1, id, -1, SQLITE_STATIC);
	if ((r = sqlite3_step(s)) == SQLITE_ROW) {
		memset(d, 0, sizeof(*d));
		snprintf(d->id, sizeof(d->id), "%s",
		    (const char *)sqlite3_column_text(s, 0));
		d->user_id = (uint32_t)sqlite3_column_int64(s, 1);
		snprintf(d->compute_class, sizeof(d->compute_class), "%s",
		    (const char *)sqlite3_column_text(s, 2));
		d->memory_mb = (uint32_t)sqlite3_column_int64(s, 3);
		d->registered = sqlite3_column_int64(s, 4);
		d->last_seen = sqlite3_column_int64(s, 5);
		rc = 0;
	} else if (r != SQLITE_DONE)
		rc = fail_db(st, "device get");
	sqlite3_finalize(s);
	return rc;
}

/* --- authentication ------------------------------------------------------ */

static int
sq_cloud_key(struct store *base, const uint8_t *cand_pk,
    const uint8_t *cand_sk, uint8_t *pk, uint8_t *sk, int *created)
{
	struct sq *st = SQ(base);
	sqlite3_stmt *s;
	int rc = 0, r;

	/* Insert-if-absent, then read back: the first writer's pair wins. */
	if (prep(st, "INSERT OR IGNORE INTO cloud_key VALUES(1, ?1, ?2, "
	    "strftime('%s','now'))", &s) != 0)
		return -EIO;
	sqlite3_bind_blob(s, 1, cand_pk, 32, SQLITE_STATIC);
	sqlite3_bind_blob(s, 2, cand_sk, 32, SQLITE_STATIC);
	if (sqlite3_step(s) != SQLITE_DONE)
		rc = fail_db(st, "cloud key insert");
	else
		*created = sqlite3_changes(st->db) == 1;
	sqlite3_finalize(s);
	if (rc != 0)
		return rc;
	if (prep(st, "SELECT pk, sk FROM cloud_key WHERE id = 1", &s) != 0)
		return -EIO;
	if ((r = sqlite3_step(s)) == SQLITE_ROW &&
	    sqlite3_column_bytes(s, 0) == 32 &&
	    sqlite3_column_bytes(s, 1) == 32) {
		memcpy(pk, sqlite3_column_blob(s, 0), 32);
		memcpy(sk, sqlite3_column_blob(s, 1), 32);
	} else if (r == SQLITE_ROW || r == SQLITE_DONE) {
		snprintf(st->base.err, sizeof(st->base.err), "cloud key: "
		    "missing or malformed row");
		rc = -EIO;
	} else
		rc = fail_db(st, "cloud key read");
	sqlite3_finalize(s);
	return rc;
}

static int
sq_authkey_put(struct store *base, const struct store_authkey *k,
    int replace, int *how)
{
	struct sq *st = SQ(base);
	sqlite3_stmt *s = NULL;
	const char *sql;
	int rc, r, same = 0, found;

	/* One write transaction: the check and the write cannot interleave. */
	if ((rc = exec(st, "BEGIN IMMEDIATE")) != 0)
		return rc;
	if ((rc = prep(st, "SELECT pk FROM device_keys WHERE device_id = ?1",
	    &s)) != 0)
		goto fail;
	sqlite3_bind_text(s, 1, k->device_id, -1, SQLITE_STATIC);
	if ((r = sqlite3_step(s)) != SQLITE_ROW && r != SQLITE_DONE) {
		rc = fail_db(st, "key get");
		goto fail;
	}
	found = r == SQLITE_ROW;
	if (found)
		same = sqlite3_column_bytes(s, 0) == 32 &&
		    memcmp(sqlite3_column_blob(s, 0), k->pk, 32) == 0;
	sqlite3_finalize(s);
	s = NULL;
	if (found && !same && !replace) {
		snprintf(st->base.err, sizeof(st->base.err), "device %s is "
		    "enrolled with another key", k->device_id);
		rc = -EEXIST;
		goto fail;
	}
	if (!found) {
		sql = "INSERT INTO device_keys VALUES(?1, ?2, ?3, ?4)";
		*how = STORE_AUTHKEY_NEW;
	} else if (same) {
		/* ?4 (enrolled) is unused here; binding it is harmless. */
		sql = "UPDATE device_keys SET counter = max(counter, ?3) WHERE "
		    "device_id = ?1 AND pk = ?2";
		*how = STORE_AUTHKEY_SAME;
	} else {
		sql = "UPDATE device_keys SET pk = ?2, counter = ?3, "
		    "enrolled = ?4 WHERE device_id = ?1";
		*how = STORE_AUTHKEY_REPLACED;
	}
	if ((rc = prep(st, sql, &s)) != 0)
		goto fail;
	sqlite3_bind_text(s, 1, k->device_id, -1, SQLITE_STATIC);
	sqlite3_bind_blob(s, 2, k->pk, 32, SQLITE_STATIC);
	sqlite3_bind_int64(s, 3, (int64_t)k->counter);
	sqlite3_bind_int64(s, 4, k->enrolled);
	if (sqlite3_step(s) != SQLITE_DONE) {
		rc = fail_db(st, "key put");
		goto fail;
	}
	sqlite3_finalize(s);
	return exec(st, "COMMIT");
fail:
	sqlite3_finalize(s);
	exec(st, "ROLLBACK");
	return rc;
}

static void
read_authkey(sqlite3_stmt *s, struct store_authkey *k)
{
	memset(k, 0, sizeof(*k));
	snprintf(k->device_id, sizeof(k->device_id), "%s",
	    (const char *)sqlite3_column_text(s, 0));
	if (sqlite3_column_bytes(s, 1) == 32)
		memcpy(k->pk, sqlite3_column_blob(s, 1), 32);
	k->counter = (uint64_t)sqlite3_column_int64(s, 2);
	k->enrolled = sqlite3_column_int64(s, 3);
}

static int
sq_authkey_get(struct store *base, const char *id, struct store_authkey *k)
{
	struct sq *st = SQ(base);
	sqlite3_stmt *s;
	int rc = -ENOENT, r;

	if (prep(st, "SELECT device_id, pk, counter, enrolled FROM "
	    "device_keys WHERE device_id = ?1", &s) != 0)
		return -EIO;
	sqlite3_bind_text(s, 1, id, -1, SQLITE_STATIC);
	if ((r = sqlite3_step(s)) == SQLITE_ROW) {
		read_authkey(s, k);
		rc = 0;
	} else if (r != SQLITE_DONE)
		rc = fail_db(st, "key get");
	sqlite3_finalize(s);
	return rc;
}

static int
sq_authkey_list(struct store *base, struct store_authkey **out, size_t *n)
{
	struct sq *st = SQ(base);
	sqlite3_stmt *s;
	size_t cap = 64;
	int r;

	if (prep(st, "SELECT device_id, pk, counter, enrolled FROM "
	    "device_keys ORDER BY device_id", &s) != 0)
		return -EIO;
	*out = xcalloc(cap, sizeof(**out));
	while ((r = sqlite3_step(s)) == SQLITE_ROW) {
		if (*n == cap)
			*out = xreallocarray(*out, cap *= 2, sizeof(**out));
		read_authkey(s, &(*out)[(*n)++]);
	}
	sqlite3_finalize(s);
	if (r != SQLITE_DONE) {
		free(*out);
		*out = NULL;
		*n = 0;
		return fail_db(st, "key list");
	}
	return 0;
}

static int
sq_authkey_counters(struct store *base, const struct store_authkey *k,
    size_t n)
{
	struct sq *st = SQ(base);
	sqlite3_stmt *s = NULL;
	int rc;

	if ((rc = exec(st, "BEGIN IMMEDIATE")) != 0)
		return rc;
	if ((rc = prep(st, "UPDATE device_keys SET counter = ?2 WHERE "
	    "device_id = ?1 AND pk = ?3 AND counter < ?2", &s)) != 0)
		goto fail;
	for (size_t i = 0; i < n; i++) {
		sqlite3_bind_text(s, 1, k[i].device_id, -1, SQLITE_STATIC);
		sqlite3_bind_int64(s, 2, (int64_t)k[i].counter);
		sqlite3_bind_blob(s, 3, k[i].pk, 32, SQLITE_STATIC);
		if (sqlite3_step(s) != SQLITE_DONE) {
			rc = fail_db(st, "counters");
			goto fail;
		}
		sqlite3_reset(s);
	}
	sqlite3_finalize(s);
	return exec(st, "COMMIT");
fail:
	sqlite3_finalize(s);
	exec(st, "ROLLBACK");
	return rc;
}

/* One process per SQLite database: it always leads. */
static int
sq_leader_try(struct store *base, int *leader)
{
	(void)base;
	*leader = 1;
	return 0;
}

static int
sq_task_add(struct store *base, const char *kind, int64_t arg, uint64_t *id)
{
	struct sq *st = SQ(base);
	sqlite3_stmt *s;
	int rc = 0;

	if (prep(st, "INSERT INTO tasks(kind, arg, created) VALUES(?1, ?2, "
	    "strftime('%s','now'))", &s) != 0)
		return -EIO;
	sqlite3_bind_text(s, 1, kind, -1, SQLITE_STATIC);
	sqlite3_bind_int64(s, 2, arg);
	if (sqlite3_step(s) != SQLITE_DONE)
		rc = fail_db(st, "task add");
	else
		*id = (uint64_t)sqlite3_last_insert_rowid(st->db);
	sqlite3_finalize(s);
	return rc;
}

static int
sq_task_next(struct store *base, struct store_task *t)
{
	struct sq *st = SQ(base);
	sqlite3_stmt *s;
	int rc = -ENOENT, r;

	if (prep(st, "SELECT id, kind, arg, created FROM tasks WHERE done IS "
	    "NULL ORDER BY id LIMIT 1", &s) != 0)
		return -EIO;
	if ((r = sqlite3_step(s)) == SQLITE_ROW) {
		memset(t, 0, sizeof(*t));
		t->id = (uint64_t)sqlite3_column_int64(s, 0);
		snprintf(t->kind, sizeof(t->kind), "%s",
		    (const char *)sqlite3_column_text(s, 1));
		t->arg = sqlite3_column_int64(s, 2);
		t->created = sqlite3_column_int64(s, 3);
		rc = 0;
	} else if (r != SQLITE_DONE)
		rc = fail_db(st, "task next");
	sqlite3_finalize(s);
	return rc;
}

static int
sq_task_done(struct store *base, uint64_t id, uint64_t result)
{
	struct sq *st = SQ(base);
	sqlite3_stmt *s;
	int rc;

	if (prep(st, "UPDATE tasks SET done = strftime('%s','now'), result = "
	    "?2 WHERE id = ?1 AND done IS NULL", &s) != 0)
		return -EIO;
	sqlite3_bind_int64(s, 1, (int64_t)id);
	sqlite3_bind_int64(s, 2, (int64_t)result);
	if (sqlite3_step(s) != SQLITE_DONE)
		rc = fail_db(st, "task done");
	else
		rc = sqlite3_changes(st->db) == 1 ? 0 : -ENOENT;
	sqlite3_finalize(s);
	return rc;
}

static const struct store_ops sq_ops = {
	.name = "sqlite",
	.close = sq_close,
	.schema_version = sq_schema_version,
	.begin = sq_begin,
	.commit = sq_commit,
	.wal_manual = sq_wal_manual,
	.wal_checkpoint = sq_wal_checkpoint,
	.rollback = sq_rollback,
	.pool_insert = sq_pool_insert,
	.pool_schema = sq_pool_schema,
	.pool_count = sq_pool_count,
	.pool_load = sq_pool_load,
	.pool_set_repr = sq_pool_set_repr,
	.pool_get_repr = sq_pool_get_repr,
	.model_put = sq_model_put,
	.model_info = sq_model_info,
	.model_read = sq_model_read,
	.model_list = sq_model_list,
	.model_copy = sq_model_copy,
	.model_delete = sq_model_delete,
	.model_prune = sq_model_prune,
	.ofa_put = sq_ofa_put,
	.ofa_get = sq_ofa_get,
	.device_put = sq_device_put,
	.device_get = sq_device_get,
	.device_list = sq_device_list,
	.device_count = sq_device_count,
	.user_device_count = sq_user_device_count,
	.patch_put = sq_patch_put,
	.patch_count = sq_patch_count,
	.patch_list = sq_patch_list,
	.patch_pending = sq_patch_pending,
	.patch_used = sq_patch_used,
	.cloud_key = sq_cloud_key,
	.authkey_put = sq_authkey_put,
	.authkey_get = sq_authkey_get,
	.authkey_list = sq_authkey_list,
	.authkey_counters = sq_authkey_counters,
	.leader_try = sq_leader_try,
	.task_add = sq_task_add,
	.task_next = sq_task_next,
	.task_done = sq_task_done,
};
