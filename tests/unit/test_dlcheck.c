/*
 * test_dlcheck: the check stage of a pipelined download (shared/dlcheck.c,
 * issue 14), inline (0 threads) and on 1 and 3 threads, checking either
 * hash list (BLAKE2b-256, SHA-256):
 *
 *   - every chunk of a manifest put in order is stored at its place, and
 *     the stored bytes are the model;
 *   - a chunk with one flipped bit, a chunk moved to another index, and a
 *     chunk of another version are refused with their MANIFEST_E* code
 *     and index, and not one byte of the refused chunk reaches the store;
 *     puts after the refusal return its code and store nothing more;
 *   - each put chunk's owner is released exactly once, refused or not;
 *   - bad arguments are refused.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <sodium.h>

#include "shared/dlcheck.h"
#include "shared/manifest.h"

#define CS	4096
#define NCH	24
#define TOTAL	(CS * (NCH - 1) + 1000)

struct fx {
	uint8_t		 blob[TOTAL];
	uint8_t		 sum[32];
	uint8_t		 hashes[NCH * 32];
	uint8_t		 sha[NCH * 32];
	Dccl__Manifest	 m;
};

/*
 * A put chunk's owner: its bytes, and a count of releases. Atomic: the
 * check threads release owners concurrently, and a plain ++ lost counts
 * (test_refused failed about 1 run in 20 with 3 threads).
 */
struct own {
	uint8_t		 data[CS];
	atomic_int	*released;
};

static void
release(void *p)
{
	struct own *o = p;

	(*o->released)++;
	free(o);
}

static size_t
len_of(uint32_t i)
{
	return i < NCH - 1 ? CS : TOTAL - (size_t)(NCH - 1) * CS;
}

static void
fx_init(struct fx *f)
{
	randombytes_buf(f->blob, sizeof(f->blob));
	crypto_generichash(f->sum, 32, f->blob, TOTAL, NULL, 0);
	for (uint32_t i = 0; i < NCH; i++) {
		manifest_chunk_hash(f->hashes + 32 * i, f->blob + i * CS,
		    len_of(i));
		assert_int_equal(manifest_chunk_sha256(f->sha + 32 * i,
		    f->blob + i * CS, len_of(i)), 0);
	}
	dccl__manifest__init(&f->m);
	f->m.version = 7;
	f->m.n_chunks = NCH;
	f->m.chunk_size = CS;
	f->m.total_size = TOTAL;
	f->m.checksum.data = f->sum;
	f->m.checksum.len = 32;
	f->m.chunk_blake2b.data = f->hashes;
	f->m.chunk_blake2b.len = sizeof(f->hashes);
	f->m.chunk_sha256.data = f->sha;
	f->m.chunk_sha256.len = sizeof(f->sha);
	assert_int_equal(manifest_check(&f->m, 7, 1 << 20), MANIFEST_OK);
}

/* Chunk i of f's model in a fresh owner (bytes of chunk src). */
static struct own *
chunk(struct fx *f, Dccl__ModelChunk *c, uint32_t i, uint32_t src,
    atomic_int *released)
{
	struct own *o = calloc(1, sizeof(*o));

	assert_non_null(o);
	o->released = released;
	memcpy(o->data, f->blob + (size_t)src * CS, len_of(src));
	dccl__model_chunk__init(c);
	c->version = 7;
	c->chunk_index = i;
	c->n_chunks = NCH;
	c->total_size = TOTAL;
	c->checksum.data = f->sum;
	c->checksum.len = 32;
	c->data.data = o->data;
	c->data.len = len_of(src);
	return o;
}

static void
whole(int alg, int nthreads)
{
	static struct fx f;
	static uint8_t dst[TOTAL];
	struct dlcheck *q;
	Dccl__ModelChunk c;
	atomic_int released = 0;

	fx_init(&f);
	memset(dst, 0, sizeof(dst));
	assert_int_equal(dlcheck_new(&q, &f.m, dst, alg, nthreads, 4), 0);
	for (uint32_t i = 0; i < NCH; i++) {
		struct own *o = chunk(&f, &c, i, i, &released);
		assert_int_equal(dlcheck_put(q, &c, o, release), 0);
	}
	assert_int_equal(dlcheck_wait(q, NCH, NULL), 0);
	assert_memory_equal(dst, f.blob, TOTAL);
	dlcheck_free(q);
	assert_int_equal(released, NCH);
}

/*
 * Chunks 0..NCH-1 in order, chunk bad replaced by what spoil makes of it;
 * the refusal must come with code and index, and nothing of it stored.
 */
enum spoil { FLIP, MOVED, VERSION };

static void
refused(int alg, int nthreads, uint32_t bad, enum spoil how, int code)
{
	static struct fx f;
	static uint8_t dst[TOTAL];
	struct dlcheck *q;
	Dccl__ModelChunk c;
	uint32_t at = 99;
	atomic_int released = 0;
	int rc = 0, puts = 0;

	fx_init(&f);
	memset(dst, 0, sizeof(dst));
	assert_int_equal(dlcheck_new(&q, &f.m, dst, alg, nthreads, 3), 0);
	for (uint32_t i = 0; i < NCH; i++) {
		struct own *o = chunk(&f, &c, i, how == MOVED && i == bad ?
		    (bad + 1) % (NCH - 1) : i, &released);
		if (i == bad && how == FLIP)
			o->data[(bad * 977) % c.data.len] ^= 0x04;
		if (i == bad && how == VERSION)
			c.version = 8;
		puts++;
		if ((rc = dlcheck_put(q, &c, o, release)) != 0) {
			assert_int_equal(rc, code);
			break;
		}
	}
	assert_int_equal(dlcheck_wait(q, NCH, &at), code);
	assert_int_equal(at, bad);
	dlcheck_free(q);
	assert_int_equal(released, puts);
	/* not one byte of the refused chunk in the store */
	for (size_t k = 0; k < len_of(bad); k++)
		assert_int_equal(dst[(size_t)bad * CS + k], 0);
	/* what was stored is the model's, at its place */
	for (uint32_t i = 0; i < NCH; i++)
		if (dst[(size_t)i * CS] != 0 || dst[(size_t)i * CS + 1] != 0)
			assert_memory_equal(dst + (size_t)i * CS,
			    f.blob + (size_t)i * CS, len_of(i));
}

static void
test_whole(void **state)
{
	(void)state;
	for (int alg = 0; alg < 2; alg++) {
		whole(alg, 0);
		whole(alg, 1);
		whole(alg, 3);
	}
}

static void
test_refused(void **state)
{
	static const int nt[] = { 0, 1, 3 };

	(void)state;
	for (int a = 0; a < 2; a++)
		for (int t = 0; t < 3; t++) {
			refused(a, nt[t], 5, FLIP, MANIFEST_EHASH);
			refused(a, nt[t], 0, FLIP, MANIFEST_EHASH);
			refused(a, nt[t], NCH - 1, FLIP, MANIFEST_EHASH);
			refused(a, nt[t], 9, MOVED, MANIFEST_EHASH);
			refused(a, nt[t], 3, VERSION, MANIFEST_EHEADER);
		}
}

static void
test_args(void **state)
{
	static struct fx f;
	uint8_t dst[8];
	struct dlcheck *q = (struct dlcheck *)1;

	(void)state;
	fx_init(&f);
	assert_int_equal(dlcheck_new(&q, &f.m, dst, 0, -1, 4), -EINVAL);
	assert_null(q);
	assert_int_equal(dlcheck_new(&q, &f.m, dst, 0,
	    DLCHECK_MAX_THREADS + 1, 4), -EINVAL);
	assert_int_equal(dlcheck_new(&q, &f.m, dst, 0, 1, 0), -EINVAL);
	assert_int_equal(dlcheck_new(&q, &f.m, dst, 0, 1,
	    DLCHECK_MAX_QUEUE + 1), -EINVAL);
	assert_int_equal(dlcheck_new(&q, NULL, dst, 0, 1, 4), -EINVAL);
	dlcheck_free(NULL);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_whole),
		cmocka_unit_test(test_refused),
		cmocka_unit_test(test_args),
	};

	if (sodium_init() < 0)
		return 1;
	return cmocka_run_group_tests(tests, NULL, NULL);
}
