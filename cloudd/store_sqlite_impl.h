/*
 * store_sqlite_impl: what the SQLite backend's files share (store_sqlite.c:
 * open, migrations, pool, devices, patches, keys, tasks;
 * store_sqlite_model.c: the CTR and Forward-OFA models). Private to them.
 */
#ifndef CLOUDD_STORE_SQLITE_IMPL_H
#define CLOUDD_STORE_SQLITE_IMPL_H

#include <sqlite3.h>

#include "cloudd/store.h"
#include "cloudd/store_impl.h"
#include "shared/db.h"

struct sq {
	struct store	 base;		/* first: a struct store * is a struct sq * */
	sqlite3		*db;
	sqlite3_stmt	*patch_ins, *patch_find, *patch_trim, *dev_put;
};

#define SQ(s)	((struct sq *)(s))

/* The shared helpers (shared/db.h), reporting into the store's message. */
static inline int
fail_db(struct sq *st, const char *what)
{
	return db_fail(st->db, what, st->base.err, sizeof(st->base.err));
}

static inline int
exec(struct sq *st, const char *sql)
{
	return db_exec(st->db, sql, st->base.err, sizeof(st->base.err));
}

static inline int
prep(struct sq *st, const char *sql, sqlite3_stmt **s)
{
	return db_prep(st->db, sql, s, st->base.err, sizeof(st->base.err));
}

/* store_sqlite_model.c: the store_ops of the model tables */
int	sq_model_put(struct store *base, const struct store_model_info *mi,
	    const void *blob, size_t len);
int	sq_model_info(struct store *base, uint64_t version,
	    struct store_model_info *mi);
int	sq_model_read(struct store *base, uint64_t version, uint64_t off,
	    void *buf, size_t len);
int	sq_model_list(struct store *base, struct store_model_info **out,
	    size_t *n);
int	sq_model_copy(struct store *base, uint64_t from,
	    struct store_model_info *mi);
int	sq_model_delete(struct store *base, uint64_t version);
int	sq_model_prune(struct store *base, size_t keep, uint64_t keep_also,
	    uint64_t **deleted, size_t *n, uint64_t *bytes);
int	sq_ofa_put(struct store *base, uint64_t version, const void *blob,
	    size_t len);
int	sq_ofa_get(struct store *base, uint64_t version, void **blob,
	    size_t *len);

#endif
