/*
 * test_manifest: the download manifest (shared/manifest.c; protocol 5,
 * per-chunk BLAKE2b-256 since protocol 6, and SHA-256 beside it since 8).
 *
 *   - the chunk hashes against BLAKE2b-256 and SHA-256 known answers and
 *     libsodium's incremental BLAKE2b over a 256 KiB chunk split anywhere;
 *   - a manifest with only one of the two lists (protocols 5 to 7) is
 *     refused;
 *   - the attacks the manifest must refuse, with either list checked,
 *     each with its typed code and nothing taken: a tampered chunk (one
 *     bit), a chunk of another
 *     version or size, a manifest for another version than asked, an
 *     inconsistent manifest;
 *   - a replayed manifest: a manifest reply MACed for an earlier request
 *     is refused by the device's reply check (bound to the counter), and
 *     an unMACed manifest is not authenticated (the device takes only an
 *     Error unMACed).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <nanomsg/nn.h>
#include <sodium.h>

#include "shared/auth.h"
#include "shared/manifest.h"
#include "shared/wire.h"

static void
hexeq(const uint8_t *h, const char *want)
{
	char s[65];

	sodium_bin2hex(s, sizeof(s), h, 32);
	assert_string_equal(s, want);
}

static void
test_chunk_hash(void **state)
{
	static uint8_t buf[262144 + 7];
	uint8_t a[32], b[32];

	(void)state;
	/* BLAKE2b with a 32-byte digest, unkeyed (known answers) */
	manifest_chunk_hash(a, "", 0);
	hexeq(a, "0e5751c026e543b2e8ab2eb06099daa1d1e5df47778f7787faab45cdf12fe3a8");
	manifest_chunk_hash(a, "abc", 3);
	hexeq(a, "bddd813c634239723171ef3fee98579b94964e3bb1cb3e427262c8c068d52319");
	/* SHA-256 (FIPS 180-2 known answers) */
	assert_int_equal(manifest_chunk_sha256(a, "", 0), 0);
	hexeq(a, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
	assert_int_equal(manifest_chunk_sha256(a, "abc", 3), 0);
	hexeq(a, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
	assert_true(manifest_alg_auto() == MANIFEST_SHA256 ||
	    manifest_alg_auto() == MANIFEST_BLAKE2B);
	/* the whole equals the incremental hash over any split */
	randombytes_buf(buf, sizeof(buf));
	for (size_t n = 0; n <= 300; n += 7) {
		crypto_generichash_state st;
		manifest_chunk_hash(a, buf + 3, 262144);
		crypto_generichash_init(&st, NULL, 0, 32);
		crypto_generichash_update(&st, buf + 3, n);
		crypto_generichash_update(&st, buf + 3 + n, 262144 - n);
		crypto_generichash_final(&st, b, 32);
		assert_memory_equal(a, b, 32);
	}
}

#define CS	1000
#define TOTAL	3500

struct fx {
	uint8_t		 blob[TOTAL];
	uint8_t		 sum[32];
	uint8_t		 hashes[4 * 32];
	uint8_t		 sha[4 * 32];
	Dccl__Manifest	 m;
};

static void
fx_init(struct fx *f)
{
	randombytes_buf(f->blob, sizeof(f->blob));
	crypto_generichash(f->sum, 32, f->blob, TOTAL, NULL, 0);
	for (int i = 0; i < 4; i++) {
		manifest_chunk_hash(f->hashes + 32 * i, f->blob + i * CS,
		    i < 3 ? CS : TOTAL - 3 * CS);
		assert_int_equal(manifest_chunk_sha256(f->sha + 32 * i,
		    f->blob + i * CS, i < 3 ? CS : TOTAL - 3 * CS), 0);
	}
	dccl__manifest__init(&f->m);
	f->m.version = 7;
	f->m.n_chunks = 4;
	f->m.chunk_size = CS;
	f->m.total_size = TOTAL;
	f->m.checksum.data = f->sum;
	f->m.checksum.len = 32;
	f->m.chunk_blake2b.data = f->hashes;
	f->m.chunk_blake2b.len = sizeof(f->hashes);
	f->m.chunk_sha256.data = f->sha;
	f->m.chunk_sha256.len = sizeof(f->sha);
}

static void
chunk(struct fx *f, Dccl__ModelChunk *c, uint32_t i, uint8_t *copy)
{
	size_t len = i < 3 ? CS : TOTAL - 3 * CS;

	dccl__model_chunk__init(c);
	memcpy(copy, f->blob + i * CS, len);
	c->version = 7;
	c->chunk_index = i;
	c->n_chunks = 4;
	c->total_size = TOTAL;
	c->checksum.data = f->sum;
	c->checksum.len = 32;
	c->data.data = copy;
	c->data.len = len;
}

static void
chunks_alg(int alg)
{
	struct fx f;
	Dccl__ModelChunk c;
	uint8_t copy[CS];
	uint8_t keep[32];

	fx_init(&f);
	assert_int_equal(manifest_check(&f.m, 7, 1 << 20), MANIFEST_OK);
	assert_int_equal(manifest_check(&f.m, 0, 1 << 20), MANIFEST_OK);
	for (uint32_t i = 0; i < 4; i++) {
		chunk(&f, &c, i, copy);
		assert_int_equal(manifest_check_chunk_alg(&f.m, &c, alg),
		    MANIFEST_OK);
		/* one flipped bit anywhere: refused by its hash */
		copy[(i * 131) % c.data.len] ^= 0x10;
		assert_int_equal(manifest_check_chunk_alg(&f.m, &c, alg),
		    MANIFEST_EHASH);
	}
	/* chunk 1's bytes presented as chunk 2 */
	chunk(&f, &c, 1, copy);
	c.chunk_index = 2;
	assert_int_equal(manifest_check_chunk_alg(&f.m, &c, alg),
	    MANIFEST_EHASH);
	/* the checked list is the one that counts: chunk 2's entry in it
	 * spoiled, the other list intact: refused */
	chunk(&f, &c, 2, copy);
	{
		uint8_t *l = alg == MANIFEST_SHA256 ? f.sha : f.hashes;
		memcpy(keep, l + 64, 32);
		l[64] ^= 1;
		assert_int_equal(manifest_check_chunk_alg(&f.m, &c, alg),
		    MANIFEST_EHASH);
		memcpy(l + 64, keep, 32);
	}
	/* a chunk of another version, its own header */
	chunk(&f, &c, 1, copy);
	c.version = 8;
	assert_int_equal(manifest_check_chunk_alg(&f.m, &c, alg),
	    MANIFEST_EHEADER);
	chunk(&f, &c, 3, copy);
	c.data.len--;		/* truncated last chunk */
	assert_int_equal(manifest_check_chunk_alg(&f.m, &c, alg),
	    MANIFEST_EHEADER);
	chunk(&f, &c, 0, copy);
	c.chunk_index = 4;	/* past the end */
	assert_int_equal(manifest_check_chunk_alg(&f.m, &c, alg),
	    MANIFEST_EHEADER);
	chunk(&f, &c, 0, copy);
	c.checksum.data = f.hashes;	/* another model's checksum */
	assert_int_equal(manifest_check_chunk_alg(&f.m, &c, alg),
	    MANIFEST_EHEADER);
	/* a list too short for the index (a caller that skipped
	 * manifest_check) is refused, not read past */
	chunk(&f, &c, 3, copy);
	f.m.chunk_sha256.len = f.m.chunk_blake2b.len = 96;
	assert_int_equal(manifest_check_chunk_alg(&f.m, &c, alg),
	    MANIFEST_EHASH);
}

static void
test_chunks(void **state)
{
	struct fx f;
	Dccl__ModelChunk c;
	uint8_t copy[CS];

	(void)state;
	chunks_alg(MANIFEST_BLAKE2B);
	chunks_alg(MANIFEST_SHA256);
	/* the device's default checks whichever it picked */
	fx_init(&f);
	chunk(&f, &c, 1, copy);
	assert_int_equal(manifest_check_chunk(&f.m, &c), MANIFEST_OK);
	copy[7] ^= 0x80;
	assert_int_equal(manifest_check_chunk(&f.m, &c), MANIFEST_EHASH);
}

static void
test_manifest_shape(void **state)
{
	struct fx f;

	(void)state;
	fx_init(&f);
	/* a manifest for another version than the one asked */
	assert_int_equal(manifest_check(&f.m, 6, 1 << 20), MANIFEST_EVERSION);
	f.m.version = 0;
	assert_int_equal(manifest_check(&f.m, 0, 1 << 20), MANIFEST_EVERSION);
	fx_init(&f);
	f.m.n_chunks = 3;
	assert_int_equal(manifest_check(&f.m, 7, 1 << 20), MANIFEST_ESHAPE);
	fx_init(&f);
	f.m.chunk_blake2b.len -= 32;
	assert_int_equal(manifest_check(&f.m, 7, 1 << 20), MANIFEST_ESHAPE);
	fx_init(&f);
	f.m.chunk_sha256.len -= 32;
	assert_int_equal(manifest_check(&f.m, 7, 1 << 20), MANIFEST_ESHAPE);
	/* a protocol-5 manifest (SHA-256 list only) is no protocol-8 one */
	fx_init(&f);
	f.m.chunk_blake2b.data = NULL;
	f.m.chunk_blake2b.len = 0;
	assert_int_equal(manifest_check(&f.m, 7, 1 << 20), MANIFEST_ESHAPE);
	/* nor is a protocol-6/7 one (BLAKE2b list only) */
	fx_init(&f);
	f.m.chunk_sha256.data = NULL;
	f.m.chunk_sha256.len = 0;
	assert_int_equal(manifest_check(&f.m, 7, 1 << 20), MANIFEST_ESHAPE);
	fx_init(&f);
	assert_int_equal(manifest_check(&f.m, 7, 100), MANIFEST_ESHAPE);
	f.m.chunk_size = 0;
	assert_int_equal(manifest_check(&f.m, 7, 1 << 20), MANIFEST_ESHAPE);
}

/* The device's reply check binds a manifest to the request it answers. */
static void
test_replayed_manifest(void **state)
{
	struct fx f;
	struct auth_dev a;
	struct auth_key up, down;
	struct auth_seal s;
	uint8_t cpk[32], csk[32];
	char path[] = "/tmp/dccl-test-manifest-XXXXXX";
	Dccl__Envelope e = DCCL__ENVELOPE__INIT, *got;
	char err[128];
	void *msg;
	size_t len;
	int fd;

	(void)state;
	fx_init(&f);
	assert_true((fd = mkstemp(path)) >= 0);
	close(fd);
	unlink(path);
	assert_int_equal(auth_dev_open(&a, path, "tok", AUTH_MAC), 0);
	crypto_kx_keypair(cpk, csk);
	assert_int_equal(auth_dev_set_cloud(&a, cpk, AUTH_MAC), 0);
	assert_int_equal(auth_session_cloud(&up, &down, cpk, csk, a.pk), 0);
	e.version = WIRE_VERSION;
	e.device_id = "d";
	e.request_id = 3;
	e.body_case = DCCL__ENVELOPE__BODY_MANIFEST;
	e.manifest = &f.m;
	memset(&s, 0, sizeof(s));
	s.mode = AUTH_MAC;
	s.dir = AUTH_DOWN;
	s.key = down;
	for (int mode = 0; mode < 3; mode++) {
		s.counter = 7;		/* the reply to the request sent at 7 */
		s.mode = mode == 2 ? AUTH_OFF : AUTH_MAC;
		assert_int_equal(auth_pack_nn(&e, &s, &msg, &len), 0);
		assert_int_equal(wire_unpack(msg, len, &got, err, sizeof(err)),
		    0);
		if (mode == 0)		/* the genuine answer */
			assert_int_equal(auth_dev_check(&a, msg, len, got, 7,
			    DCCL__ENVELOPE__BODY_GET_MANIFEST), 1);
		else if (mode == 1)	/* replayed to a later request (9) */
			assert_int_equal(auth_dev_check(&a, msg, len, got, 9,
			    DCCL__ENVELOPE__BODY_GET_MANIFEST), -1);
		else			/* unMACed: not authenticated */
			assert_int_equal(auth_dev_check(&a, msg, len, got, 7,
			    DCCL__ENVELOPE__BODY_GET_MANIFEST), 0);
		wire_free(got);
		nn_freemsg(msg);
	}
	unlink(path);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_chunk_hash),
		cmocka_unit_test(test_chunks),
		cmocka_unit_test(test_manifest_shape),
		cmocka_unit_test(test_replayed_manifest),
	};

	if (sodium_init() < 0)
		return 1;
	return cmocka_run_group_tests(tests, NULL, NULL);
}
