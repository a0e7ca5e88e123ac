/* db: see db.h. */
#include <errno.h>
#include <stdio.h>

#include "shared/db.h"

int
db_fail(sqlite3 *db, const char *what, char *err, size_t errlen)
{
	snprintf(err, errlen, "%s: %s", what, sqlite3_errmsg(db));
	return -EIO;
}

int
db_exec(sqlite3 *db, const char *sql, char *err, size_t errlen)
{
	char *msg = NULL;

	if (sqlite3_exec(db, sql, NULL, NULL, &msg) != SQLITE_OK) {
		snprintf(err, errlen, "%s", msg ? msg : "?");
		sqlite3_free(msg);
		return -EIO;
	}
	return 0;
}

int
db_prep(sqlite3 *db, const char *sql, sqlite3_stmt **s, char *err,
    size_t errlen)
{
	if (sqlite3_prepare_v2(db, sql, -1, s, NULL) != SQLITE_OK)
		return db_fail(db, "prepare", err, errlen);
	return 0;
}

int
db_open(sqlite3 **out, const char *path, int busy_ms, char *err,
    size_t errlen)
{
	sqlite3 *db = NULL;
	char why[256];

	*out = NULL;
	if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE |
	    SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, NULL) != SQLITE_OK) {
		snprintf(err, errlen, "%s: %s", path, db ? sqlite3_errmsg(db) :
		    "cannot open");
		sqlite3_close(db);
		return -EIO;
	}
	sqlite3_busy_timeout(db, busy_ms);
	/*
	 * auto_vacuum only takes on a new file, before WAL mode is set: a
	 * new store can then give freed pages back (PRAGMA
	 * incremental_vacuum, deviced/dstore.c after an install); a store
	 * that never asks keeps its free pages, as before.
	 */
	if (db_exec(db, "PRAGMA auto_vacuum=INCREMENTAL", why,
	    sizeof(why)) != 0 ||
	    db_exec(db, "PRAGMA journal_mode=WAL", why, sizeof(why)) != 0 ||
	    db_exec(db, "PRAGMA synchronous=NORMAL", why, sizeof(why)) != 0) {
		snprintf(err, errlen, "%s: %s", path, why);
		sqlite3_close(db);
		return -EIO;
	}
	*out = db;
	return 0;
}
