/*
 * store_sqlite_model: the SQLite backend's model tables: CTR models
 * (put, info, chunked read, list, copy, delete, prune) and Forward-OFA
 * models, one per CTR version (see store.h for the contract).
 */
#include <errno.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cloudd/store_sqlite_impl.h"
#include "shared/xmalloc.h"

int
sq_model_put(struct store *base, const struct store_model_info *mi,
    const void *blob, size_t len)
{
	struct sq *st = SQ(base);
	sqlite3_stmt *s;
	int rc = 0;

	if (prep(st, "INSERT INTO models(version, parent, created, size, "
	    "checksum, global_ctr, blob) VALUES(?,?,?,?,?,?,?)", &s) != 0)
		return -EIO;
	sqlite3_bind_int64(s, 1, (int64_t)mi->version);
	sqlite3_bind_int64(s, 2, (int64_t)mi->parent);
	sqlite3_bind_int64(s, 3, mi->created);
	sqlite3_bind_int64(s, 4, (int64_t)len);
	sqlite3_bind_blob(s, 5, mi->checksum, 32, SQLITE_STATIC);
	sqlite3_bind_double(s, 6, mi->global_ctr);
	sqlite3_bind_blob64(s, 7, blob, len, SQLITE_STATIC);
	if (sqlite3_step(s) != SQLITE_DONE)
		rc = fail_db(st, "model insert");
	sqlite3_finalize(s);
	return rc;
}

int
sq_ofa_put(struct store *base, uint64_t version, const void *blob, size_t len)
{
	struct sq *st = SQ(base);
	sqlite3_stmt *s;
	int rc = 0;

	/* Only for a stored version: it may be pruned while OFA trains. */
	if (prep(st, "INSERT OR REPLACE INTO ofa_models(base_version, size, "
	    "blob) SELECT ?1, ?2, ?3 WHERE EXISTS (SELECT 1 FROM models "
	    "WHERE version = ?1)", &s) != 0)
		return -EIO;
	sqlite3_bind_int64(s, 1, (int64_t)version);
	sqlite3_bind_int64(s, 2, (int64_t)len);
	sqlite3_bind_blob64(s, 3, blob, len, SQLITE_STATIC);
	if (sqlite3_step(s) != SQLITE_DONE)
		rc = fail_db(st, "ofa insert");
	else if (sqlite3_changes(st->db) == 0) {
		snprintf(st->base.err, sizeof(st->base.err), "model v%llu is "
		    "not stored (pruned?)", (unsigned long long)version);
		rc = -ENOENT;
	}
	sqlite3_finalize(s);
	return rc;
}

int
sq_ofa_get(struct store *base, uint64_t version, void **blob, size_t *len)
{
	struct sq *st = SQ(base);
	sqlite3_stmt *s;
	int rc;

	if (prep(st, "SELECT blob FROM ofa_models WHERE base_version = ?",
	    &s) != 0)
		return -EIO;
	sqlite3_bind_int64(s, 1, (int64_t)version);
	rc = sqlite3_step(s);
	if (rc == SQLITE_ROW) {
		*len = (size_t)sqlite3_column_bytes(s, 0);
		*blob = xmalloc(*len ? *len : 1);
		if (*len > 0)
			memcpy(*blob, sqlite3_column_blob(s, 0), *len);
		rc = 0;
	} else if (rc == SQLITE_DONE)
		rc = -ENOENT;
	else
		rc = fail_db(st, "ofa read");
	sqlite3_finalize(s);
	return rc;
}

static void
read_info(sqlite3_stmt *s, struct store_model_info *mi)
{
	memset(mi, 0, sizeof(*mi));
	mi->version = (uint64_t)sqlite3_column_int64(s, 0);
	mi->parent = (uint64_t)sqlite3_column_int64(s, 1);
	mi->created = sqlite3_column_int64(s, 2);
	mi->size = (uint64_t)sqlite3_column_int64(s, 3);
	if (sqlite3_column_bytes(s, 4) == 32)
		memcpy(mi->checksum, sqlite3_column_blob(s, 4), 32);
	mi->global_ctr = sqlite3_column_double(s, 5);
}

#define MODEL_COLS "version, parent, created, size, checksum, global_ctr"

int
sq_model_info(struct store *base, uint64_t version,
    struct store_model_info *mi)
{
	struct sq *st = SQ(base);
	sqlite3_stmt *s;
	int rc = -ENOENT, r;

	if (prep(st, version ? "SELECT " MODEL_COLS " FROM models WHERE "
	    "version = ?1" : "SELECT " MODEL_COLS " FROM models ORDER BY "
	    "version DESC LIMIT 1", &s) != 0)
		return -EIO;
	if (version)
		sqlite3_bind_int64(s, 1, (int64_t)version);
	if ((r = sqlite3_step(s)) == SQLITE_ROW) {
		read_info(s, mi);
		rc = 0;
	} else if (r != SQLITE_DONE)
		rc = fail_db(st, "model info");
	sqlite3_finalize(s);
	return rc;
}

int
sq_model_read(struct store *base, uint64_t version, uint64_t off, void *buf,
    size_t len)
{
	struct sq *st = SQ(base);
	sqlite3_blob *b;
	int rc = 0;

	if (sqlite3_blob_open(st->db, "main", "models", "blob",
	    (sqlite3_int64)version, 0, &b) != SQLITE_OK)
		return sqlite3_errcode(st->db) == SQLITE_ERROR ? -ENOENT :
		    fail_db(st, "model blob");
	if (off > (uint64_t)sqlite3_blob_bytes(b) ||
	    len > (uint64_t)sqlite3_blob_bytes(b) - off)
		rc = -ERANGE;
	else if (sqlite3_blob_read(b, buf, (int)len, (int)off) != SQLITE_OK)
		rc = fail_db(st, "model read");
	sqlite3_blob_close(b);
	return rc;
}

int
sq_model_list(struct store *base, struct store_model_info **out, size_t *n)
{
	struct sq *st = SQ(base);
	sqlite3_stmt *s;
	size_t cap = 16;

	*n = 0;
	*out = xcalloc(cap, sizeof(**out));
	if (prep(st, "SELECT " MODEL_COLS " FROM models ORDER BY version",
	    &s) != 0)
		{
		free(*out);
		*out = NULL;
		return -EIO;
	}
	while (sqlite3_step(s) == SQLITE_ROW) {
		if (*n == cap)
			*out = xreallocarray(*out, cap *= 2, sizeof(**out));
		read_info(s, &(*out)[(*n)++]);
	}
	sqlite3_finalize(s);
	return 0;
}

int
sq_model_copy(struct store *base, uint64_t from, struct store_model_info *mi)
{
	struct sq *st = SQ(base);
	sqlite3_stmt *s;
	int rc;

	if (prep(st, "INSERT INTO models(version, parent, created, size, "
	    "checksum, global_ctr, blob) SELECT ?1, ?2, ?3, size, checksum, "
	    "global_ctr, blob FROM models WHERE version = ?4", &s) != 0)
		return -EIO;
	sqlite3_bind_int64(s, 1, (int64_t)mi->version);
	sqlite3_bind_int64(s, 2, (int64_t)mi->parent);
	sqlite3_bind_int64(s, 3, mi->created);
	sqlite3_bind_int64(s, 4, (int64_t)from);
	if (sqlite3_step(s) != SQLITE_DONE)
		rc = fail_db(st, "model copy");
	else
		rc = sqlite3_changes(st->db) == 1 ? 0 : -ENOENT;
	sqlite3_finalize(s);
	if (rc == 0)
		rc = sq_model_info(&st->base, mi->version, mi);
	return rc;
}

int
sq_model_delete(struct store *base, uint64_t version)
{
	struct sq *st = SQ(base);
	sqlite3_stmt *s;
	int rc;

	if (prep(st, "DELETE FROM models WHERE version = ?1", &s) != 0)
		return -EIO;
	sqlite3_bind_int64(s, 1, (int64_t)version);
	if (sqlite3_step(s) != SQLITE_DONE)
		rc = fail_db(st, "model delete");
	else
		rc = sqlite3_changes(st->db) == 1 ? 0 : -ENOENT;
	sqlite3_finalize(s);
	return rc;
}

int
sq_model_prune(struct store *base, size_t keep, uint64_t keep_also,
    uint64_t **deleted, size_t *n, uint64_t *bytes)
{
	struct sq *st = SQ(base);
	sqlite3_stmt *sel = NULL, *del = NULL, *del_ofa = NULL;
	uint64_t *v = NULL;
	size_t cap = 0;
	int rc, r;

	*n = 0;
	*bytes = 0;
	if (deleted != NULL)
		*deleted = NULL;
	if (keep < 1)
		keep = 1;	/* never leave the store without a model */
	/* One transaction: a crash leaves all of them or none deleted. */
	if ((rc = exec(st, "BEGIN IMMEDIATE")) != 0)
		return rc;
	if ((rc = prep(st, "SELECT version, size FROM models WHERE version "
	    "!= ?2 ORDER BY version DESC LIMIT -1 OFFSET ?1", &sel)) != 0 ||
	    (rc = prep(st, "DELETE FROM models WHERE version = ?1", &del)) ||
	    (rc = prep(st, "DELETE FROM ofa_models WHERE base_version = ?1",
	    &del_ofa)))
		goto fail;
	/* OFFSET counts keep_also among the newest when it is one of them. */
	sqlite3_bind_int64(sel, 1, (int64_t)keep);
	sqlite3_bind_int64(sel, 2, (int64_t)keep_also);
	{
		struct store_model_info cur;
		if (keep_also != 0 && sq_model_info(&st->base, keep_also, &cur) ==
		    0) {
			sqlite3_stmt *c;
			uint64_t newer = 0;
			if ((rc = prep(st, "SELECT count(*) FROM models WHERE "
			    "version > ?1", &c)) != 0)
				goto fail;
			sqlite3_bind_int64(c, 1, (int64_t)keep_also);
			if (sqlite3_step(c) == SQLITE_ROW)
				newer = (uint64_t)sqlite3_column_int64(c, 0);
			sqlite3_finalize(c);
			/*
			 * The served version is among the keep newest: the
			 * others kept number keep - 1.
			 */
			if (newer < keep)
				sqlite3_bind_int64(sel, 1, (int64_t)keep - 1);
		}
	}
	while ((r = sqlite3_step(sel)) == SQLITE_ROW) {
		if (*n == cap) {
			cap = cap ? cap * 2 : 16;
			v = xreallocarray(v, cap, sizeof(*v));
		}
		v[(*n)++] = (uint64_t)sqlite3_column_int64(sel, 0);
		*bytes += (uint64_t)sqlite3_column_int64(sel, 1);
	}
	if (r != SQLITE_DONE) {
		rc = fail_db(st, "model prune");
		goto fail;
	}
	/* A version's OFA model goes with it: nothing else serves it. */
	for (size_t i = 0; i < *n; i++) {
		sqlite3_bind_int64(del, 1, (int64_t)v[i]);
		sqlite3_bind_int64(del_ofa, 1, (int64_t)v[i]);
		if (sqlite3_step(del) != SQLITE_DONE ||
		    sqlite3_step(del_ofa) != SQLITE_DONE) {
			rc = fail_db(st, "model prune");
			goto fail;
		}
		sqlite3_reset(del);
		sqlite3_reset(del_ofa);
	}
	sqlite3_finalize(sel);
	sqlite3_finalize(del);
	sqlite3_finalize(del_ofa);
	sel = del = del_ofa = NULL;
	if ((rc = exec(st, "COMMIT")) != 0)
		goto fail;
	/* Ascending, as listed by store_model_list. */
	for (size_t i = 0; i < *n / 2; i++) {
		uint64_t t = v[i];
		v[i] = v[*n - 1 - i];
		v[*n - 1 - i] = t;
	}
	if (deleted != NULL)
		*deleted = v;
	else
		free(v);
	return 0;
fail:
	sqlite3_finalize(sel);
	sqlite3_finalize(del);
	sqlite3_finalize(del_ofa);
	exec(st, "ROLLBACK");
	free(v);
	*n = 0;
	*bytes = 0;
	return rc;
}
