/*
 * db: the SQLite plumbing both daemons' stores share: opening a database
 * the way dccl keeps them (WAL, synchronous=NORMAL, a busy timeout) and
 * running or preparing statements with the error message captured into a
 * caller's buffer. Nothing here logs. A connection is used by one thread
 * at a time (SQLITE_OPEN_NOMUTEX).
 */
#ifndef SHARED_DB_H
#define SHARED_DB_H

#include <stddef.h>
#include <sqlite3.h>

/*
 * Opens (creating if missing) path in WAL mode with synchronous=NORMAL:
 * every committed transaction survives a process crash. Returns 0 with
 * *out set, or -EIO with "path: reason" in err and *out NULL.
 */
int	db_open(sqlite3 **out, const char *path, int busy_ms, char *err,
	    size_t errlen);
/* Runs sql (one or more statements). Returns 0, or -EIO with err set. */
int	db_exec(sqlite3 *db, const char *sql, char *err, size_t errlen);
/* Prepares sql into *s. Returns 0, or -EIO with err set. */
int	db_prep(sqlite3 *db, const char *sql, sqlite3_stmt **s, char *err,
	    size_t errlen);
/* Writes "what: <sqlite's last error>" to err and returns -EIO. */
int	db_fail(sqlite3 *db, const char *what, char *err, size_t errlen);

#endif
