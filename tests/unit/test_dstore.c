/*
 * test_dstore: the device store's disk footprint across a model install
 * (deviced/dstore.c). A model passes through the store twice (its chunks,
 * then the assembled blob); once the download is cleared the chunk pages
 * go back to the file system, so an installed device keeps about one copy
 * of its model on disk, not the chunks beside it. At 10,000 hosted devices
 * the difference was 2x the model per device (scripts/README.md, Scale).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "deviced/dstore.h"

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

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_install_gives_chunk_pages_back),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
