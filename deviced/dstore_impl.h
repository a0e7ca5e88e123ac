/*
 * dstore_impl: what the store's files share (dstore.c, dstore_dl.c); not
 * for callers of dstore.h.
 */
#ifndef DEVICED_DSTORE_IMPL_H
#define DEVICED_DSTORE_IMPL_H

#include <sqlite3.h>

struct dstore {
	sqlite3	*db;
	char	 dlpath[1024];	/* the download's chunk file */
	char	 err[256];
};

/* shared/db.h's helpers, reporting into st->err; each returns 0 or -EIO. */
int	dstore_fail(struct dstore *st, const char *what);
int	dstore_exec(struct dstore *st, const char *sql);
int	dstore_prep(struct dstore *st, const char *sql, sqlite3_stmt **s);

#endif
