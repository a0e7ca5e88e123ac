/*
 * test_dstore: the device store across a model download and install
 * (deviced/dstore.c, dstore_dl.c). An installed device keeps about one
 * copy of its model on disk, not the chunks beside it (at 10,000 hosted
 * devices the difference was 2x the model per device, scripts/bench-results.md,
 * Scale); the chunks are written once, to their own file, not through the
 * WAL; a chunk file cut short (a power cut) resumes at its last whole
 * chunk; chunks out of order are refused; a full disk refuses the chunk
 * that does not fit and keeps the others; a store whose chunks were blobs
 * opens and downloads again; the local samples' retention window
 * (learn.max-local) keeps the newest.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>
#include <sqlite3.h>

#include "deviced/dstore.h"
#include "shared/data/dataset.h"

#define CHUNK	(256 * 1024)
#define NCHUNK	16		/* a 4 MiB model */

static off_t
file_size(const char *path)
{
	struct stat sb;

	assert_int_equal(stat(path, &sb), 0);
	return sb.st_size;
}

static void
test_install_gives_chunk_pages_back(void **state)
{
	char dir[] = "/tmp/test_dstore.XXXXXX", path[256], wal[300];
	struct dstore *st;
	char err[256];
	uint8_t *chunk = malloc(CHUNK);
	void *blob;
	size_t len;
	uint32_t next;

	(void)state;
	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/device.db", dir);
	snprintf(wal, sizeof(wal), "%s-wal", path);
	assert_int_equal(dstore_open(&st, path, err, sizeof(err)), 0);
	for (uint32_t i = 0; i < NCHUNK; i++) {
		memset(chunk, (int)(i + 1), CHUNK);
		assert_int_equal(dstore_dl_put(st, 7, i, chunk, CHUNK), 0);
	}
	assert_int_equal(dstore_dl_next(st, 7, &next), 0);
	assert_int_equal(next, NCHUNK);
	assert_int_equal(dstore_dl_assemble(st, 7, &blob, &len), 0);
	assert_int_equal(len, (size_t)NCHUNK * CHUNK);
	assert_int_equal(dstore_model_put(st, 7, blob, len), 0);
	assert_int_equal(dstore_dl_clear(st), 0);
	free(blob);

	dstore_close(st);

	/* Reopened: the model is whole, no chunk is left. */
	assert_int_equal(dstore_open(&st, path, err, sizeof(err)), 0);
	uint64_t v = 0;
	assert_int_equal(dstore_model_get(st, &v, &blob, &len), 0);
	assert_int_equal(v, 7);
	assert_int_equal(len, (size_t)NCHUNK * CHUNK);
	assert_int_equal(((uint8_t *)blob)[len - 1], NCHUNK);
	free(blob);
	assert_int_equal(dstore_dl_next(st, 7, &next), 0);
	assert_int_equal(next, 0);
	dstore_close(st);

	/* One model's worth on disk (plus slack), not the chunks beside it. */
	off_t sz = file_size(path);
	printf("store after install: %lld bytes for a %d-byte model\n",
	    (long long)sz, NCHUNK * CHUNK);
	assert_true(sz < (off_t)NCHUNK * CHUNK * 5 / 4);

	unlink(path);
	unlink(wal);
	snprintf(wal, sizeof(wal), "%s-shm", path);
	unlink(wal);
	rmdir(dir);
	free(chunk);
}

/* A fresh store in a fresh directory; paths into the caller's buffers. */
static struct dstore *
fresh(char *dir, char *path, size_t plen, char *dl, size_t dlen)
{
	struct dstore *st;
	char err[256];

	assert_non_null(mkdtemp(dir));
	snprintf(path, plen, "%s/device.db", dir);
	snprintf(dl, dlen, "%s-download", path);
	assert_int_equal(dstore_open(&st, path, err, sizeof(err)), 0);
	return st;
}

static void
cleanup(const char *dir)
{
	char cmd[300];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	assert_int_equal(system(cmd), 0);
}

/* Bytes this process has passed to write(2) and its kin (/proc). */
static long long
wchar(void)
{
	FILE *f = fopen("/proc/self/io", "r");
	char line[128];
	long long v = -1;

	assert_non_null(f);
	while (fgets(line, sizeof(line), f) != NULL)
		if (sscanf(line, "wchar: %lld", &v) == 1)
			break;
	fclose(f);
	assert_true(v >= 0);
	return v;
}

/*
 * The chunks' bytes are written once, to their own file: the WAL holds
 * only their rows. As blobs they passed through the WAL and were written
 * again at each checkpoint (8.1 MiB written for these 4 MiB, before the
 * clear wrote the freed pages).
 */
static void
test_chunks_bypass_wal(void **state)
{
	char dir[] = "/tmp/test_dstore.XXXXXX", path[256], dl[300], wal[300];
	struct dstore *st;
	uint8_t *chunk = malloc(CHUNK);
	uint32_t next;

	(void)state;
	st = fresh(dir, path, sizeof(path), dl, sizeof(dl));
	snprintf(wal, sizeof(wal), "%s-wal", path);
	long long w0 = wchar();
	for (uint32_t i = 0; i < NCHUNK; i++) {
		memset(chunk, (int)(i + 1), CHUNK);
		assert_int_equal(dstore_dl_put(st, 7, i, chunk, CHUNK), 0);
	}
	long long w = wchar() - w0;
	printf("%d chunks of %d bytes: %lld bytes written, chunk file %lld, "
	    "WAL %lld\n", NCHUNK, CHUNK, w, (long long)file_size(dl),
	    (long long)file_size(wal));
	assert_true(w < (long long)NCHUNK * CHUNK * 9 / 8);
	assert_int_equal(file_size(dl), (off_t)NCHUNK * CHUNK);
	assert_true(file_size(wal) < 512 * 1024);
	assert_int_equal(dstore_dl_next(st, 7, &next), 0);
	assert_int_equal(next, NCHUNK);
	assert_int_equal(dstore_dl_clear(st), 0);
	assert_int_equal(access(dl, F_OK), -1);
	assert_int_equal(dstore_dl_next(st, 7, &next), 0);
	assert_int_equal(next, 0);
	dstore_close(st);
	cleanup(dir);
	free(chunk);
}

/* Chunks 0..n-1 of version are whole: len bytes, the last one last. */
static void
assert_whole(struct dstore *st, uint64_t version, uint32_t n, size_t len,
    uint8_t last)
{
	uint32_t next;
	void *blob;
	size_t got;

	assert_int_equal(dstore_dl_next(st, version, &next), 0);
	assert_int_equal(next, n);
	assert_int_equal(dstore_dl_assemble(st, version, &blob, &got), 0);
	assert_int_equal(got, len);
	assert_int_equal(((uint8_t *)blob)[len - 1], last);
	free(blob);
}

/*
 * Rows committed for bytes the file lost (a power cut after the commit):
 * the download resumes at the last chunk the file holds whole.
 */
static void
test_short_file_resumes_at_last_whole_chunk(void **state)
{
	char dir[] = "/tmp/test_dstore.XXXXXX", path[256], dl[300];
	struct dstore *st;
	uint8_t chunk[1000];

	(void)state;
	st = fresh(dir, path, sizeof(path), dl, sizeof(dl));
	for (uint32_t i = 0; i < 4; i++) {
		memset(chunk, (int)(i + 1), sizeof(chunk));
		assert_int_equal(dstore_dl_put(st, 3, i, chunk, sizeof(chunk)),
		    0);
	}
	assert_int_equal(truncate(dl, 2500), 0);
	assert_whole(st, 3, 2, 2000, 2);
	/* the download goes on from there and assembles whole */
	memset(chunk, 9, sizeof(chunk));
	assert_int_equal(dstore_dl_put(st, 3, 2, chunk, sizeof(chunk)), 0);
	assert_whole(st, 3, 3, 3000, 9);
	dstore_close(st);
	cleanup(dir);
}

/* A chunk that does not follow the one before it is refused. */
static void
test_out_of_order_refused(void **state)
{
	char dir[] = "/tmp/test_dstore.XXXXXX", path[256], dl[300];
	struct dstore *st;
	uint8_t chunk[100];
	uint32_t next;

	(void)state;
	memset(chunk, 1, sizeof(chunk));
	st = fresh(dir, path, sizeof(path), dl, sizeof(dl));
	assert_int_equal(dstore_dl_put(st, 5, 1, chunk, sizeof(chunk)),
	    -EINVAL);
	assert_non_null(strstr(dstore_errmsg(st), "without chunk 0"));
	for (uint32_t i = 0; i < 3; i++)
		assert_int_equal(dstore_dl_put(st, 5, i, chunk, 100), 0);
	assert_int_equal(dstore_dl_put(st, 5, 4, chunk, 100), -EINVAL);
	/* chunk 1 of another version: no chunk 0 of it */
	assert_int_equal(dstore_dl_put(st, 6, 1, chunk, 100), -EINVAL);
	assert_int_equal(dstore_dl_next(st, 5, &next), 0);
	assert_int_equal(next, 3);
	/* chunk 1 again: chunk 2 is gone with the old chunk 1 */
	assert_int_equal(dstore_dl_put(st, 5, 1, chunk, 50), 0);
	assert_int_equal(dstore_dl_next(st, 5, &next), 0);
	assert_int_equal(next, 2);
	/* chunk 0 of another version starts over */
	assert_int_equal(dstore_dl_put(st, 6, 0, chunk, 100), 0);
	assert_int_equal(dstore_dl_next(st, 5, &next), 0);
	assert_int_equal(next, 0);
	assert_int_equal(file_size(dl), 100);
	dstore_close(st);
	cleanup(dir);
}

/*
 * A full disk (here a file size limit): the chunk that does not fit is
 * refused with the reason, the chunks before it stay whole, and the
 * download goes on from there once there is room.
 */
static void
test_full_disk_keeps_whole_chunks(void **state)
{
	char dir[] = "/tmp/test_dstore.XXXXXX", path[256], dl[300];
	struct dstore *st;
	struct rlimit old, lim;
	uint8_t *chunk = malloc(CHUNK);
	uint32_t next;
	int rc = 0, i;

	(void)state;
	st = fresh(dir, path, sizeof(path), dl, sizeof(dl));
	signal(SIGXFSZ, SIG_IGN);
	assert_int_equal(getrlimit(RLIMIT_FSIZE, &old), 0);
	lim = old;
	lim.rlim_cur = 4 * CHUNK + CHUNK / 2;
	assert_int_equal(setrlimit(RLIMIT_FSIZE, &lim), 0);
	for (i = 0; i < 8 && rc == 0; i++) {
		memset(chunk, i + 1, CHUNK);
		rc = dstore_dl_put(st, 9, (uint32_t)i, chunk, CHUNK);
	}
	assert_int_equal(setrlimit(RLIMIT_FSIZE, &old), 0);
	signal(SIGXFSZ, SIG_DFL);
	printf("chunk %d refused: %d (%s)\n", i - 1, rc, dstore_errmsg(st));
	assert_int_equal(i - 1, 4);
	assert_int_equal(rc, -EFBIG);
	assert_non_null(strstr(dstore_errmsg(st), "write"));
	assert_int_equal(dstore_dl_next(st, 9, &next), 0);
	assert_int_equal(next, 4);
	memset(chunk, 5, CHUNK);
	assert_int_equal(dstore_dl_put(st, 9, 4, chunk, CHUNK), 0);
	assert_int_equal(dstore_dl_next(st, 9, &next), 0);
	assert_int_equal(next, 5);
	dstore_close(st);
	cleanup(dir);
	free(chunk);
}

/* A store whose chunks were blobs in the download table (before). */
static void
test_old_blob_store_opens(void **state)
{
	char dir[] = "/tmp/test_dstore.XXXXXX", path[256], err[256];
	struct dstore *st;
	sqlite3 *db;
	uint8_t chunk[100];
	uint32_t next;

	(void)state;
	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/device.db", dir);
	assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
	assert_int_equal(sqlite3_exec(db, "CREATE TABLE download(version "
	    "INTEGER NOT NULL, idx INTEGER NOT NULL, data BLOB NOT NULL, "
	    "PRIMARY KEY(version, idx)); INSERT INTO download VALUES(2, 0, "
	    "x'0102')", NULL, NULL, NULL), SQLITE_OK);
	sqlite3_close(db);
	assert_int_equal(dstore_open(&st, path, err, sizeof(err)), 0);
	assert_int_equal(dstore_dl_next(st, 2, &next), 0);
	assert_int_equal(next, 0);
	memset(chunk, 4, sizeof(chunk));
	assert_int_equal(dstore_dl_put(st, 2, 0, chunk, sizeof(chunk)), 0);
	assert_int_equal(dstore_dl_next(st, 2, &next), 0);
	assert_int_equal(next, 1);
	dstore_close(st);
	cleanup(dir);
}

/*
 * The retention window: dstore_samples_add with keep leaves the newest
 * keep samples (by time), in the same transaction; ids keep growing, so
 * the last id tells a job's samples from later ones; dstore_samples_trim
 * cuts an older, larger store; the loaded samples come oldest first.
 */
static void
test_samples_window(void **state)
{
	char dir[] = "/tmp/test_dstore.XXXXXX", path[256], dl[300];
	struct dstore *st = fresh(dir, path, sizeof(path), dl, sizeof(dl));
	struct dataset ds, got;
	struct sample x;
	uint32_t h[2] = { 7, 8 };
	uint64_t n;
	int64_t id, last = 0;

	(void)state;
	memset(&x, 0, sizeof(x));
	for (int i = 0; i < 12; i++) {
		dataset_init(&ds);
		x.item = (uint32_t)i;
		x.ts = 100 + i;
		x.label = (float)(i % 2);
		dataset_append(&ds, &x, h, (size_t)(i % 3));
		assert_int_equal(dstore_samples_add(st, &ds, 5, &id), 0);
		assert_true(id > last);		/* ids only grow */
		last = id;
		dataset_fini(&ds);
		assert_int_equal(dstore_samples_count(st, &n), 0);
		assert_int_equal(n, i < 5 ? (uint64_t)i + 1 : 5);
	}
	assert_int_equal(dstore_samples_last_id(st, &id), 0);
	assert_int_equal(id, last);
	dataset_init(&got);
	assert_int_equal(dstore_samples_load(st, &got, 3), 0);
	assert_int_equal(got.n, 5);
	for (size_t i = 0; i < 5; i++) {
		assert_int_equal(got.s[i].item, 7 + i);	/* the newest 5 */
		assert_int_equal(got.s[i].user, 3);
		assert_int_equal(got.s[i].hist_n, (7 + i) % 3);
	}
	dataset_fini(&got);
	/* Without keep nothing goes; a trim then cuts to the newest 2. */
	dataset_init(&ds);
	x.item = 50;
	x.ts = 200;
	dataset_append(&ds, &x, NULL, 0);
	x.item = 49;			/* older, inserted later */
	x.ts = 150;
	dataset_append(&ds, &x, NULL, 0);
	assert_int_equal(dstore_samples_add(st, &ds, 0, NULL), 0);
	dataset_fini(&ds);
	assert_int_equal(dstore_samples_count(st, &n), 0);
	assert_int_equal(n, 7);
	assert_int_equal(dstore_samples_trim(st, 2), 0);
	dataset_init(&got);
	assert_int_equal(dstore_samples_load(st, &got, 0), 0);
	assert_int_equal(got.n, 2);
	assert_int_equal(got.s[0].item, 49);
	assert_int_equal(got.s[1].item, 50);
	dataset_fini(&got);
	dstore_close(st);
	cleanup(dir);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_install_gives_chunk_pages_back),
		cmocka_unit_test(test_chunks_bypass_wal),
		cmocka_unit_test(test_short_file_resumes_at_last_whole_chunk),
		cmocka_unit_test(test_out_of_order_refused),
		cmocka_unit_test(test_full_disk_keeps_whole_chunks),
		cmocka_unit_test(test_old_blob_store_opens),
		cmocka_unit_test(test_samples_window),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
