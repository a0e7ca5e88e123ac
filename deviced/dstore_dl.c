/*
 * dstore_dl: a download's chunks, written once to a file beside the store.
 *
 * As blobs in the store, each chunk was written twice (the WAL, then the
 * checkpoint into the database) and its freed pages a third time, with a
 * checkpoint's fsyncs every few chunks: at 10,000 simulated devices half
 * of deviced's CPU was the kernel's (scripts/bench-results.md, Scale). Now the
 * bytes go to <store>-download with one pwrite and the table keeps only
 * (version, idx, off, len) of each chunk written whole, committed after
 * the bytes. Nothing is fsynced: a process crash keeps what was written
 * (the page cache), and what a power cut loses the install's hash of the
 * whole model finds, after which the download starts over
 * (device_load_install). The file goes when the download is cleared.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "deviced/dstore.h"
#include "deviced/dstore_impl.h"
#include "shared/fsutil.h"
#include "shared/xmalloc.h"

static int
fail_io(struct dstore *st, const char *what, int e)
{
	snprintf(st->err, sizeof(st->err), "%s %.160s: %s", what, st->dlpath,
	    strerror(e));
	return -e;
}

/* The end of chunk idx - 1 of version: where chunk idx goes. */
static int
chunk_end(struct dstore *st, uint64_t version, uint32_t idx, int64_t *end)
{
	sqlite3_stmt *s;
	int rc = -EINVAL;

	*end = 0;
	if (idx == 0)
		return 0;
	if (dstore_prep(st, "SELECT off + len FROM download WHERE version = ? "
	    "AND idx = ?", &s) != 0)
		return -EIO;
	sqlite3_bind_int64(s, 1, (int64_t)version);
	sqlite3_bind_int64(s, 2, idx - 1);
	if (sqlite3_step(s) == SQLITE_ROW) {
		*end = sqlite3_column_int64(s, 0);
		rc = 0;
	} else
		snprintf(st->err, sizeof(st->err), "chunk %u of v%llu without "
		    "chunk %u before it", idx, (unsigned long long)version,
		    idx - 1);
	sqlite3_finalize(s);
	return rc;
}

int
dstore_dl_put(struct dstore *st, uint64_t version, uint32_t idx,
    const void *data, size_t len)
{
	sqlite3_stmt *s = NULL;
	int64_t off;
	int fd = -1, rc;

	if ((rc = chunk_end(st, version, idx, &off)) != 0)
		return rc;
	if (len > (size_t)INT64_MAX - (size_t)off) {
		snprintf(st->err, sizeof(st->err), "chunk %u too long", idx);
		return -EFBIG;
	}
	/* a chunk stored again, and every one after it, is no longer whole */
	if (idx == 0)
		rc = dstore_exec(st, "DELETE FROM download");
	else if ((rc = dstore_prep(st, "DELETE FROM download WHERE version = ?"
	    " AND idx >= ?", &s)) == 0) {
		sqlite3_bind_int64(s, 1, (int64_t)version);
		sqlite3_bind_int64(s, 2, idx);
		if (sqlite3_step(s) != SQLITE_DONE)
			rc = dstore_fail(st, "chunk drop");
		sqlite3_finalize(s);
		s = NULL;
	}
	if (rc != 0)
		return rc;
	if ((fd = open(st->dlpath, O_WRONLY | O_CREAT | O_CLOEXEC, 0600)) < 0)
		return fail_io(st, "open", errno);
	if (idx == 0 && ftruncate(fd, 0) != 0) {
		rc = fail_io(st, "truncate", errno);
		goto fail;
	}
	if (fs_pwrite_all(fd, data, len, (off_t)off) != 0) {
		rc = fail_io(st, "write", errno);
		goto fail;
	}
	if ((rc = dstore_prep(st, "INSERT INTO download VALUES(?, ?, ?, ?)",
	    &s)) != 0)
		goto fail;
	sqlite3_bind_int64(s, 1, (int64_t)version);
	sqlite3_bind_int64(s, 2, idx);
	sqlite3_bind_int64(s, 3, off);
	sqlite3_bind_int64(s, 4, (int64_t)len);
	if (sqlite3_step(s) != SQLITE_DONE)
		rc = dstore_fail(st, "chunk put");
fail:
	sqlite3_finalize(s);
	close(fd);
	return rc;
}

/* The file's size, 0 when it is missing. */
static int64_t
file_size(const char *path)
{
	struct stat sb;

	return stat(path, &sb) == 0 ? (int64_t)sb.st_size : 0;
}

/*
 * The chunks of version stored whole: n of them, in order, each where the
 * one before ended and all in the file; *end is where the last one ends.
 */
static int
whole(struct dstore *st, uint64_t version, uint32_t *n, int64_t *end)
{
	sqlite3_stmt *s;
	int64_t have = file_size(st->dlpath);

	*n = 0;
	*end = 0;
	if (dstore_prep(st, "SELECT idx, off, len FROM download WHERE version "
	    "= ? ORDER BY idx", &s) != 0)
		return -EIO;
	sqlite3_bind_int64(s, 1, (int64_t)version);
	while (sqlite3_step(s) == SQLITE_ROW &&
	    (uint32_t)sqlite3_column_int64(s, 0) == *n &&
	    sqlite3_column_int64(s, 1) == *end &&
	    *end + sqlite3_column_int64(s, 2) <= have) {
		*end += sqlite3_column_int64(s, 2);
		(*n)++;
	}
	sqlite3_finalize(s);
	return 0;
}

int
dstore_dl_next(struct dstore *st, uint64_t version, uint32_t *next)
{
	int64_t end;

	return whole(st, version, next, &end);
}

int
dstore_dl_assemble(struct dstore *st, uint64_t version, void **blob,
    size_t *len)
{
	uint32_t n;
	int64_t total = 0;
	uint8_t *b = NULL;
	size_t got = 0;
	int fd = -1, rc;

	*blob = NULL;
	*len = 0;
	if ((rc = whole(st, version, &n, &total)) != 0)
		return rc;
	b = xmalloc(total > 0 ? (size_t)total : 1);
	if (total > 0 && (fd = open(st->dlpath, O_RDONLY | O_CLOEXEC)) < 0) {
		rc = fail_io(st, "open", errno);
		goto fail;
	}
	while (got < (size_t)total) {
		ssize_t r = pread(fd, b + got, (size_t)total - got, (off_t)got);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0) {
			rc = fail_io(st, "read", r < 0 ? errno : EIO);
			goto fail;
		}
		got += (size_t)r;
	}
	if (fd >= 0)
		close(fd);
	*blob = b;
	*len = got;
	return 0;
fail:
	if (fd >= 0)
		close(fd);
	free(b);
	return rc;
}

int
dstore_dl_clear(struct dstore *st)
{
	if (dstore_exec(st, "DELETE FROM download") != 0)
		return -EIO;
	if (unlink(st->dlpath) != 0 && errno != ENOENT)
		return fail_io(st, "unlink", errno);
	/* pages an older store's chunk blobs or outbox left free */
	return dstore_exec(st, "PRAGMA incremental_vacuum");
}
