/*
 * test_wire: unit tests for shared/wire.c, the envelope codec.
 *
 * Round trips go through wire_pack_nn() (an nn_allocmsg buffer, freed with
 * nn_freemsg) and back through wire_unpack(); the hostile-input tests feed
 * garbage, every prefix of a valid message and seeded random bytes and
 * mutations, and only require that nothing crashes (valgrind and the
 * sanitizer build see the rest) and that what is refused is refused with
 * E_BAD_REQUEST. Single-threaded; the RNG is a local xorshift so that runs
 * are reproducible.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <math.h>
#include <nanomsg/nn.h>

#include "shared/ml/kern.h"
#include "shared/wire.h"

#define E_OK		0
#define E_BAD_REQUEST	DCCL__ERROR_CODE__E_BAD_REQUEST
#define E_VERSION	DCCL__ERROR_CODE__E_VERSION
#define E_UNKNOWN_BODY	DCCL__ERROR_CODE__E_UNKNOWN_BODY
#define E_BAD_TENSOR	DCCL__ERROR_CODE__E_BAD_TENSOR

static uint64_t rng_state;

static uint64_t
rnd(void)
{
	uint64_t x = rng_state;

	x ^= x << 13;
	x ^= x >> 7;
	x ^= x << 17;
	return rng_state = x;
}

/* Packs e, unpacks it again; returns the wire code, *out the envelope. */
static int
round_trip(const Dccl__Envelope *e, Dccl__Envelope **out)
{
	void *msg = NULL;
	size_t len = 0;
	char err[256] = "";
	int rc;

	assert_int_equal(wire_pack_nn(e, &msg, &len), 0);
	assert_non_null(msg);
	assert_int_equal(len, dccl__envelope__get_packed_size(e));
	rc = wire_unpack(msg, len, out, err, sizeof(err));
	nn_freemsg(msg);
	if (rc == 0)
		assert_string_equal(err, "");
	return rc;
}

static void
envelope_init(Dccl__Envelope *e, const char *dev, uint64_t req)
{
	dccl__envelope__init(e);
	e->version = WIRE_VERSION;
	e->device_id = (char *)dev;
	e->request_id = req;
}

/* Packs a valid upload envelope into a malloc'd buffer, for the fuzzers. */
static uint8_t *
sample_packed(size_t *len)
{
	Dccl__Envelope e;
	Dccl__UploadPatch up = DCCL__UPLOAD_PATCH__INIT;
	Dccl__Tensor t = DCCL__TENSOR__INIT, *tp = &t;
	Dccl__Metric m = DCCL__METRIC__INIT, *mp = &m;
	uint32_t shape[2] = { 2, 3 };
	float data[6] = { 1, -2, 3.5f, 0, 1e-3f, 7 };
	uint8_t *buf;

	envelope_init(&e, "phone-01", 42);
	e.body_case = DCCL__ENVELOPE__BODY_UPLOAD;
	e.upload = &up;
	up.base_version = 3;
	up.kind = "metapatch";
	up.n_tensors = 1;
	up.tensors = &tp;
	up.n_metrics = 1;
	up.metrics = &mp;
	t.name = "patch_m0";
	t.n_shape = 2;
	t.shape = shape;
	t.n_data = 6;
	t.data = data;
	m.name = "auc";
	m.value = 0.75;
	*len = dccl__envelope__get_packed_size(&e);
	buf = malloc(*len);
	assert_non_null(buf);
	assert_int_equal(dccl__envelope__pack(&e, buf), *len);
	return buf;
}

/* --- round trips --------------------------------------------------------- */

static void
test_round_trip_register(void **state)
{
	Dccl__Envelope e, *out = NULL;
	Dccl__RegisterReq rr = DCCL__REGISTER_REQ__INIT;
	Dccl__Capability cap = DCCL__CAPABILITY__INIT;

	(void)state;
	envelope_init(&e, "Dev_1.a-b", 7);
	rr.user_id = 123;
	rr.software = "deviced/0.1.0";
	rr.capability = &cap;
	cap.compute_class = "mid";
	cap.memory_mb = 2048;
	cap.flops_budget = 1ULL << 40;
	e.body_case = DCCL__ENVELOPE__BODY_REGISTER_REQ;
	e.register_req = &rr;

	assert_int_equal(round_trip(&e, &out), E_OK);
	assert_non_null(out);
	assert_int_equal(out->version, WIRE_VERSION);
	assert_string_equal(out->device_id, "Dev_1.a-b");
	assert_int_equal(out->request_id, 7);
	assert_int_equal(out->body_case, DCCL__ENVELOPE__BODY_REGISTER_REQ);
	assert_int_equal(out->register_req->user_id, 123);
	assert_string_equal(out->register_req->software, "deviced/0.1.0");
	assert_non_null(out->register_req->capability);
	assert_string_equal(out->register_req->capability->compute_class,
	    "mid");
	assert_int_equal(out->register_req->capability->memory_mb, 2048);
	assert_int_equal(out->register_req->capability->flops_budget,
	    1ULL << 40);
	wire_free(out);
}

static void
test_round_trip_model_chunk(void **state)
{
	Dccl__Envelope e, *out = NULL;
	Dccl__ModelChunk mc = DCCL__MODEL_CHUNK__INIT;
	uint8_t sum[32], *data;
	size_t n = 1 << 20;	/* 1 MiB: larger than any small buffer */

	(void)state;
	data = malloc(n);
	assert_non_null(data);
	for (size_t i = 0; i < n; i++)
		data[i] = (uint8_t)(i * 131 + 7);
	for (int i = 0; i < 32; i++)
		sum[i] = (uint8_t)(255 - i);
	envelope_init(&e, "d", UINT64_MAX);
	mc.version = 9;
	mc.chunk_index = 3;
	mc.n_chunks = 10;
	mc.total_size = 10 * (uint64_t)n;
	mc.checksum.data = sum;
	mc.checksum.len = sizeof(sum);
	mc.data.data = data;
	mc.data.len = n;
	e.body_case = DCCL__ENVELOPE__BODY_MODEL_CHUNK;
	e.model_chunk = &mc;

	assert_int_equal(round_trip(&e, &out), E_OK);
	assert_int_equal(out->request_id, UINT64_MAX);
	assert_int_equal(out->body_case, DCCL__ENVELOPE__BODY_MODEL_CHUNK);
	assert_int_equal(out->model_chunk->version, 9);
	assert_int_equal(out->model_chunk->chunk_index, 3);
	assert_int_equal(out->model_chunk->n_chunks, 10);
	assert_int_equal(out->model_chunk->total_size, 10 * (uint64_t)n);
	assert_int_equal(out->model_chunk->checksum.len, 32);
	assert_memory_equal(out->model_chunk->checksum.data, sum, 32);
	assert_int_equal(out->model_chunk->data.len, n);
	assert_memory_equal(out->model_chunk->data.data, data, n);
	wire_free(out);
	free(data);
}

static void
test_round_trip_retrieve(void **state)
{
	Dccl__Envelope e, *out = NULL;
	Dccl__RetrieveReq rq = DCCL__RETRIEVE_REQ__INIT;
	float v[3 * 8];

	(void)state;
	for (size_t i = 0; i < 24; i++)
		v[i] = (float)i / 7.0f - 1.5f;
	v[5] = -0.0f;
	v[6] = 1e-38f;	/* subnormal-adjacent values stay bit-exact */
	envelope_init(&e, "dev-2", 1);
	rq.model_version = 4;
	rq.dim = 8;
	rq.n = 3;
	rq.n_vectors = 24;
	rq.vectors = v;
	rq.k = 50;
	rq.mode = DCCL__RETRIEVE_MODE__MODE_USERS;
	e.body_case = DCCL__ENVELOPE__BODY_RETRIEVE;
	e.retrieve = &rq;

	assert_int_equal(round_trip(&e, &out), E_OK);
	assert_int_equal(out->body_case, DCCL__ENVELOPE__BODY_RETRIEVE);
	assert_int_equal(out->retrieve->model_version, 4);
	assert_int_equal(out->retrieve->dim, 8);
	assert_int_equal(out->retrieve->n, 3);
	assert_int_equal(out->retrieve->k, 50);
	assert_int_equal(out->retrieve->mode, DCCL__RETRIEVE_MODE__MODE_USERS);
	assert_int_equal(out->retrieve->n_vectors, 24);
	assert_memory_equal(out->retrieve->vectors, v, sizeof(v));
	assert_true(kern_finite(out->retrieve->vectors, 24));
	wire_free(out);
}

static void
test_round_trip_upload(void **state)
{
	Dccl__Envelope e, *out = NULL;
	Dccl__UploadPatch up = DCCL__UPLOAD_PATCH__INIT;
	Dccl__Tensor t[2] = { DCCL__TENSOR__INIT, DCCL__TENSOR__INIT };
	Dccl__Tensor *tp[2] = { &t[0], &t[1] };
	Dccl__Metric m = DCCL__METRIC__INIT, *mp = &m;
	uint32_t s0[2] = { 4, 3 }, s1[1] = { 5 };
	float d0[12], d1[5];
	char err[256];

	(void)state;
	for (int i = 0; i < 12; i++)
		d0[i] = (float)i * 0.25f;
	for (int i = 0; i < 5; i++)
		d1[i] = -(float)i;
	envelope_init(&e, "phone-01", 99);
	up.base_version = 12;
	up.kind = "finetune-delta";
	up.n_tensors = 2;
	up.tensors = tp;
	up.n_metrics = 1;
	up.metrics = &mp;
	t[0].name = "patch_m0";
	t[0].n_shape = 2;
	t[0].shape = s0;
	t[0].n_data = 12;
	t[0].data = d0;
	t[1].name = "patch_b0";
	t[1].n_shape = 1;
	t[1].shape = s1;
	t[1].n_data = 5;
	t[1].data = d1;
	m.name = "logloss";
	m.value = 0.5;
	e.body_case = DCCL__ENVELOPE__BODY_UPLOAD;
	e.upload = &up;

	assert_int_equal(round_trip(&e, &out), E_OK);
	assert_int_equal(out->body_case, DCCL__ENVELOPE__BODY_UPLOAD);
	assert_int_equal(out->upload->base_version, 12);
	assert_string_equal(out->upload->kind, "finetune-delta");
	assert_int_equal(out->upload->n_tensors, 2);
	assert_string_equal(out->upload->tensors[0]->name, "patch_m0");
	assert_int_equal(out->upload->tensors[0]->n_shape, 2);
	assert_memory_equal(out->upload->tensors[0]->shape, s0, sizeof(s0));
	assert_memory_equal(out->upload->tensors[0]->data, d0, sizeof(d0));
	assert_string_equal(out->upload->tensors[1]->name, "patch_b0");
	assert_memory_equal(out->upload->tensors[1]->data, d1, sizeof(d1));
	assert_int_equal(out->upload->n_metrics, 1);
	assert_string_equal(out->upload->metrics[0]->name, "logloss");
	assert_true(out->upload->metrics[0]->value == 0.5);
	for (size_t i = 0; i < 2; i++)
		assert_int_equal(wire_tensor_check(out->upload->tensors[i], 1000,
		    err, sizeof(err)), 0);
	wire_free(out);
}

static void
test_round_trip_empty_bodies(void **state)
{
	Dccl__Envelope e, *out = NULL;
	Dccl__GetStatusReq gs = DCCL__GET_STATUS_REQ__INIT;
	Dccl__Error er = DCCL__ERROR__INIT;

	(void)state;
	/* A body with no fields still sets the oneof case. */
	envelope_init(&e, "x", 0);
	e.body_case = DCCL__ENVELOPE__BODY_GET_STATUS;
	e.get_status = &gs;
	assert_int_equal(round_trip(&e, &out), E_OK);
	assert_int_equal(out->body_case, DCCL__ENVELOPE__BODY_GET_STATUS);
	wire_free(out);

	envelope_init(&e, "x", 5);
	er.code = DCCL__ERROR_CODE__E_BUSY;
	er.message = "try later";
	e.body_case = DCCL__ENVELOPE__BODY_ERROR;
	e.error = &er;
	assert_int_equal(round_trip(&e, &out), E_OK);
	assert_int_equal(out->error->code, DCCL__ERROR_CODE__E_BUSY);
	assert_string_equal(out->error->message, "try later");
	wire_free(out);
}

/* --- validation ---------------------------------------------------------- */

static void
test_wrong_version(void **state)
{
	Dccl__Envelope e, *out = NULL;
	Dccl__GetStatusReq gs = DCCL__GET_STATUS_REQ__INIT;
	void *msg;
	size_t len;
	char err[256];

	(void)state;
	envelope_init(&e, "dev-9", 77);
	e.version = WIRE_VERSION + 1;
	e.body_case = DCCL__ENVELOPE__BODY_GET_STATUS;
	e.get_status = &gs;
	assert_int_equal(wire_pack_nn(&e, &msg, &len), 0);
	assert_int_equal(wire_unpack(msg, len, &out, err, sizeof(err)),
	    E_VERSION);
	nn_freemsg(msg);
	/* Still returned so that the reply can echo the ids. */
	assert_non_null(out);
	assert_string_equal(out->device_id, "dev-9");
	assert_int_equal(out->request_id, 77);
	{
		char want[32];
		snprintf(want, sizeof(want), "version %d", WIRE_VERSION + 1);
		assert_non_null(strstr(err, want));
	}
	wire_free(out);

	/* A peer of protocol version 1 (counter nonces) gets E_VERSION. */
	e.version = 1;
	assert_int_equal(wire_pack_nn(&e, &msg, &len), 0);
	assert_int_equal(wire_unpack(msg, len, &out, err, sizeof(err)),
	    E_VERSION);
	nn_freemsg(msg);
	wire_free(out);

	/* Version 0 (field absent) is refused too, even with a bad id. */
	envelope_init(&e, "", 1);
	e.version = 0;
	assert_int_equal(round_trip(&e, &out), E_VERSION);
	assert_non_null(out);
	wire_free(out);
}

static void
test_bad_device_ids(void **state)
{
	char long65[66], long64[65];
	const char *bad[] = { "", long65, "has space", "slash/x", "semi;",
	    "ümlaut", "tab\t", "quote'", "nl\n" };
	Dccl__Envelope e, *out = NULL;
	Dccl__GetStatusReq gs = DCCL__GET_STATUS_REQ__INIT;
	char err[256];
	void *msg;
	size_t len;

	(void)state;
	memset(long65, 'a', 65);
	long65[65] = '\0';
	memset(long64, 'b', 64);
	long64[64] = '\0';

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		assert_int_equal(wire_devid_valid(bad[i]), 0);
		envelope_init(&e, bad[i], 1);
		e.body_case = DCCL__ENVELOPE__BODY_GET_STATUS;
		e.get_status = &gs;
		assert_int_equal(wire_pack_nn(&e, &msg, &len), 0);
		err[0] = '\0';
		assert_int_equal(wire_unpack(msg, len, &out, err,
		    sizeof(err)), E_BAD_REQUEST);
		nn_freemsg(msg);
		assert_non_null(out);
		assert_non_null(strstr(err, "device id"));
		wire_free(out);
	}
	assert_int_equal(wire_devid_valid(long64), 1);
	assert_int_equal(wire_devid_valid("a"), 1);
	assert_int_equal(wire_devid_valid("AZaz09._-"), 1);
	envelope_init(&e, long64, 1);
	e.body_case = DCCL__ENVELOPE__BODY_GET_STATUS;
	e.get_status = &gs;
	assert_int_equal(round_trip(&e, &out), E_OK);
	wire_free(out);
}

static void
test_no_body(void **state)
{
	Dccl__Envelope e, *out = NULL;
	char err[256];
	void *msg;
	size_t len;

	(void)state;
	envelope_init(&e, "dev", 3);
	assert_int_equal(wire_pack_nn(&e, &msg, &len), 0);
	assert_int_equal(wire_unpack(msg, len, &out, err, sizeof(err)),
	    E_UNKNOWN_BODY);
	nn_freemsg(msg);
	assert_non_null(out);
	assert_int_equal(out->request_id, 3);
	assert_non_null(strstr(err, "no body"));
	wire_free(out);
}

static void
test_empty_envelope(void **state)
{
	Dccl__Envelope e, *out = NULL;
	char err[256];
	void *msg = NULL;
	size_t len = 99;

	(void)state;
	/* All defaults pack to zero bytes; pack still gives a buffer. */
	dccl__envelope__init(&e);
	assert_int_equal(wire_pack_nn(&e, &msg, &len), 0);
	assert_non_null(msg);
	assert_int_equal(len, 0);
	assert_int_equal(wire_unpack(msg, len, &out, err, sizeof(err)),
	    E_VERSION);
	nn_freemsg(msg);
	wire_free(out);
	wire_free(NULL);	/* harmless */
}

/* --- hostile input ------------------------------------------------------- */

static void
test_garbage(void **state)
{
	static const uint8_t g1[] = { 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
	    0xff, 0xff, 0xff, 0xff };	/* overlong varint key */
	static const uint8_t g2[] = { 0x12, 0x7f, 'a' };  /* string, len 127 */
	static const uint8_t g3[] = { 0x7a, 0xff, 0xff, 0xff, 0xff, 0x0f };
	/* ^ field 15 (retrieve), length 4 GiB */
	static const uint8_t g4[] = { 0x0f };	/* wire type 7: invalid */
	static const uint8_t g5[] = { 0x08 };	/* key without a value */
	static const uint8_t g6[] = "GET / HTTP/1.1\r\nHost: x\r\n\r\n";
	static const struct { const uint8_t *p; size_t n; } g[] = {
		{ g1, sizeof(g1) }, { g2, sizeof(g2) }, { g3, sizeof(g3) },
		{ g4, sizeof(g4) }, { g5, sizeof(g5) },
		{ g6, sizeof(g6) - 1 },
	};
	Dccl__Envelope *out;
	char err[256];

	(void)state;
	for (size_t i = 0; i < sizeof(g) / sizeof(g[0]); i++) {
		out = (Dccl__Envelope *)&out;	/* must be reset to NULL */
		err[0] = '\0';
		assert_int_equal(wire_unpack(g[i].p, g[i].n, &out, err,
		    sizeof(err)), E_BAD_REQUEST);
		assert_null(out);
		assert_non_null(strstr(err, "malformed"));
	}
}

static void
test_truncated_prefixes(void **state)
{
	size_t len, refused = 0;
	uint8_t *full = sample_packed(&len);
	Dccl__Envelope *out;
	char err[256];

	(void)state;
	assert_true(len > 40);
	assert_int_equal(wire_unpack(full, len, &out, err, sizeof(err)), 0);
	wire_free(out);
	for (size_t n = 0; n < len; n++) {
		/* A heap copy of exactly n bytes, so overreads are caught. */
		uint8_t *p = malloc(n ? n : 1);
		int rc;

		assert_non_null(p);
		memcpy(p, full, n);
		rc = wire_unpack(p, n, &out, err, sizeof(err));
		if (rc == E_BAD_REQUEST && out == NULL)
			refused++;
		else
			/* Cut at a top-level field boundary: decodes, but then
			 * the envelope lacks its body (or its id / version). */
			assert_int_not_equal(rc, 0);
		wire_free(out);
		free(p);
	}
	/* Only the few cuts at top-level field boundaries can decode. */
	assert_true(refused >= len - 5);
	free(full);
}

static void
test_fuzz_random(void **state)
{
	uint8_t buf[256];
	Dccl__Envelope *out;
	char err[256];
	int ok = 0;

	(void)state;
	rng_state = 0x9e3779b97f4a7c15ULL;
	for (int it = 0; it < 4000; it++) {
		size_t n = rnd() % sizeof(buf);
		uint8_t *p;
		int rc;

		for (size_t i = 0; i < n; i++)
			buf[i] = (uint8_t)rnd();
		p = malloc(n ? n : 1);
		assert_non_null(p);
		memcpy(p, buf, n);
		rc = wire_unpack(p, n, &out, err, sizeof(err));
		assert_true(rc >= 0 && rc <= E_UNKNOWN_BODY);
		if (rc == E_BAD_REQUEST && out == NULL)
			assert_non_null(strstr(err, "malformed"));
		if (rc == 0) {
			ok++;
			assert_non_null(out);
			assert_true(wire_devid_valid(out->device_id));
		}
		wire_free(out);
		free(p);
	}
	(void)ok;
}

static void
test_fuzz_mutations(void **state)
{
	size_t len;
	uint8_t *full = sample_packed(&len);
	Dccl__Envelope *out;
	char err[256];

	(void)state;
	rng_state = 12345;
	for (int it = 0; it < 4000; it++) {
		uint8_t *p = malloc(len);
		int flips = 1 + (int)(rnd() % 4), rc;

		assert_non_null(p);
		memcpy(p, full, len);
		for (int k = 0; k < flips; k++) {
			size_t at = rnd() % len;
			if (rnd() & 1)
				p[at] ^= (uint8_t)(1u << (rnd() % 8));
			else
				p[at] = (uint8_t)rnd();
		}
		rc = wire_unpack(p, len, &out, err, sizeof(err));
		if (rc == 0 && out->body_case == DCCL__ENVELOPE__BODY_UPLOAD)
			for (size_t i = 0; i < out->upload->n_tensors; i++)
				(void)wire_tensor_check(out->upload->tensors[i],
				    1 << 20, err, sizeof(err));
		wire_free(out);
		free(p);
	}
	free(full);
}

/* --- tensors ------------------------------------------------------------- */

static void
tensor(Dccl__Tensor *t, const char *name, uint32_t *shape, size_t n_shape,
    float *data, size_t n_data)
{
	dccl__tensor__init(t);
	t->name = (char *)name;
	t->shape = shape;
	t->n_shape = n_shape;
	t->data = data;
	t->n_data = n_data;
}

static void
expect_bad(const Dccl__Tensor *t, size_t max, const char *needle)
{
	char err[256] = "";

	assert_int_equal(wire_tensor_check(t, max, err, sizeof(err)),
	    E_BAD_TENSOR);
	if (strstr(err, needle) == NULL)
		fail_msg("'%s' lacks '%s'", err, needle);
}

static void
test_tensor_check(void **state)
{
	uint32_t s[5] = { 2, 3, 1, 1, 1 };
	float d[6] = { 1, 2, 3, 4, 5, 6 };
	char name65[66], err[256];
	Dccl__Tensor t;

	(void)state;
	tensor(&t, "w", s, 2, d, 6);
	assert_int_equal(wire_tensor_check(&t, 6, err, sizeof(err)), 0);
	tensor(&t, "w", s, 4, d, 6);	/* rank 4: 2x3x1x1 */
	assert_int_equal(wire_tensor_check(&t, 100, err, sizeof(err)), 0);

	tensor(&t, "w", s, 2, d, 6);	/* more than max_elems */
	expect_bad(&t, 5, "bad shape");
	tensor(&t, "w", s, 2, d, 5);	/* shape/data mismatch */
	expect_bad(&t, 100, "shape holds 6 values, data has 5");
	tensor(&t, "w", s, 1, d, 6);
	expect_bad(&t, 100, "shape holds 2 values");
	tensor(&t, "w", s, 0, d, 6);	/* rank 0 */
	expect_bad(&t, 100, "rank 0");
	tensor(&t, "w", s, 5, d, 6);	/* rank 5 */
	expect_bad(&t, 100, "rank 5");
	tensor(&t, "", s, 2, d, 6);
	expect_bad(&t, 100, "name");
	memset(name65, 'n', 65);
	name65[65] = '\0';
	tensor(&t, name65, s, 2, d, 6);
	expect_bad(&t, 100, "name");
	tensor(&t, NULL, s, 2, d, 6);
	expect_bad(&t, 100, "name");
	{
		uint32_t z[2] = { 3, 0 };	/* zero dim */
		tensor(&t, "w", z, 2, d, 0);
		expect_bad(&t, 100, "bad shape");
	}
	{
		/* Products that overflow 32 and 64 bits must not wrap to a
		 * small number that happens to match n_data. */
		uint32_t big[4] = { 0xffffffffu, 0xffffffffu, 0xffffffffu,
		    0xffffffffu };
		uint32_t wrap[2] = { 65536, 65536 };
		tensor(&t, "w", big, 4, d, 1);
		expect_bad(&t, SIZE_MAX, "bad shape");
		tensor(&t, "w", wrap, 2, d, 0);
		expect_bad(&t, SIZE_MAX, "shape holds");
		tensor(&t, "w", wrap, 2, d, 6);
		expect_bad(&t, 1 << 20, "bad shape");
	}
	{
		float bad[6] = { 1, 2, 3, 4, 5, 6 };
		tensor(&t, "w", s, 2, bad, 6);
		bad[4] = NAN;
		expect_bad(&t, 100, "NaN or Inf");
		bad[4] = INFINITY;
		expect_bad(&t, 100, "NaN or Inf");
		bad[4] = -INFINITY;
		expect_bad(&t, 100, "NaN or Inf");
		bad[4] = 3.4e38f;	/* large but finite is fine */
		assert_int_equal(wire_tensor_check(&t, 100, err, sizeof(err)),
		    0);
	}
	assert_int_equal(kern_finite(NULL, 0), 1);
}

/* --- names --------------------------------------------------------------- */

static void
test_names(void **state)
{
	(void)state;
	assert_string_equal(wire_body_name(DCCL__ENVELOPE__BODY__NOT_SET),
	    "none");
	assert_string_equal(wire_body_name(DCCL__ENVELOPE__BODY_REGISTER_REQ),
	    "register_req");
	assert_string_equal(wire_body_name(DCCL__ENVELOPE__BODY_GET_MODEL),
	    "get_model");
	assert_string_equal(wire_body_name(DCCL__ENVELOPE__BODY_UPLOAD),
	    "upload");
	assert_string_equal(wire_body_name(DCCL__ENVELOPE__BODY_LISTING),
	    "listing");
	assert_string_equal(wire_body_name(DCCL__ENVELOPE__BODY_ERROR),
	    "error");
	assert_string_equal(wire_body_name(9), "unknown");
	assert_string_equal(wire_body_name(28), "unknown");
	assert_string_equal(wire_body_name(-1), "unknown");
	assert_string_equal(wire_body_name(1 << 20), "unknown");

	assert_string_equal(wire_error_name(DCCL__ERROR_CODE__E_NONE),
	    "E_NONE");
	assert_string_equal(wire_error_name(E_BAD_REQUEST), "E_BAD_REQUEST");
	assert_string_equal(wire_error_name(E_VERSION), "E_VERSION");
	assert_string_equal(wire_error_name(E_BAD_TENSOR), "E_BAD_TENSOR");
	assert_string_equal(wire_error_name(
	    DCCL__ERROR_CODE__E_SHUTTING_DOWN), "E_SHUTTING_DOWN");
	assert_string_equal(wire_error_name(16), "E_UNKNOWN");
	assert_string_equal(wire_error_name(-1), "E_UNKNOWN");
}

/*
 * Field numbers 1..3 are the envelope's version, device_id and request_id,
 * not bodies: wire_body_name() must not name them as if they were.
 */
static void
test_body_name_non_body_fields(void **state)
{
	(void)state;
	assert_string_equal(wire_body_name(1), "unknown");
	assert_string_equal(wire_body_name(2), "unknown");
	assert_string_equal(wire_body_name(3), "unknown");
}

/* wire_precheck_device: what a device may not send, before unpacking. */
static void
test_precheck_device(void **state)
{
	Dccl__Envelope e;
	Dccl__GetStatusReq gs = DCCL__GET_STATUS_REQ__INIT;
	Dccl__AdminListReq al = DCCL__ADMIN_LIST_REQ__INIT;
	Dccl__Ack ack = DCCL__ACK__INIT;
	Dccl__UploadPatch up = DCCL__UPLOAD_PATCH__INIT;
	Dccl__Tensor t = DCCL__TENSOR__INIT, *tp[65];
	static const uint8_t unknown_field[] = { 0x08, 0x02, 0xa8, 0x01, 0x01 };
	void *msg;
	size_t len;
	char err[256];

	(void)state;
	envelope_init(&e, "dev-1", 1);
	e.body_case = DCCL__ENVELOPE__BODY_GET_STATUS;
	e.get_status = &gs;
	assert_int_equal(wire_pack_nn(&e, &msg, &len), 0);
	assert_int_equal(wire_precheck_device(msg, len, err, sizeof(err)), 0);
	nn_freemsg(msg);
	e.body_case = DCCL__ENVELOPE__BODY_ADMIN_LIST;
	e.admin_list = &al;
	assert_int_equal(wire_pack_nn(&e, &msg, &len), 0);
	assert_int_equal(wire_precheck_device(msg, len, err, sizeof(err)),
	    DCCL__ERROR_CODE__E_FORBIDDEN);
	nn_freemsg(msg);
	e.body_case = DCCL__ENVELOPE__BODY_ACK;
	e.ack = &ack;
	assert_int_equal(wire_pack_nn(&e, &msg, &len), 0);
	assert_int_equal(wire_precheck_device(msg, len, err, sizeof(err)),
	    E_UNKNOWN_BODY);
	nn_freemsg(msg);
	/* field 21 at the top level: not a body of a device, not known */
	assert_int_equal(wire_precheck_device(unknown_field,
	    sizeof(unknown_field), err, sizeof(err)), E_UNKNOWN_BODY);
	for (int i = 0; i < 65; i++)
		tp[i] = &t;
	t.name = "patch_m0";
	e.body_case = DCCL__ENVELOPE__BODY_UPLOAD;
	e.upload = &up;
	up.tensors = tp;
	up.n_tensors = 64;
	assert_int_equal(wire_pack_nn(&e, &msg, &len), 0);
	assert_int_equal(wire_precheck_device(msg, len, err, sizeof(err)), 0);
	nn_freemsg(msg);
	up.n_tensors = 65;
	assert_int_equal(wire_pack_nn(&e, &msg, &len), 0);
	assert_int_equal(wire_precheck_device(msg, len, err, sizeof(err)),
	    DCCL__ERROR_CODE__E_TOO_LARGE);
	nn_freemsg(msg);
	/* garbage and every prefix of a good message: no crash */
	assert_int_equal(wire_precheck_device("\xff\xff\xff", 3, err,
	    sizeof(err)), E_BAD_REQUEST);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_round_trip_register),
		cmocka_unit_test(test_round_trip_model_chunk),
		cmocka_unit_test(test_round_trip_retrieve),
		cmocka_unit_test(test_round_trip_upload),
		cmocka_unit_test(test_round_trip_empty_bodies),
		cmocka_unit_test(test_wrong_version),
		cmocka_unit_test(test_bad_device_ids),
		cmocka_unit_test(test_no_body),
		cmocka_unit_test(test_empty_envelope),
		cmocka_unit_test(test_garbage),
		cmocka_unit_test(test_truncated_prefixes),
		cmocka_unit_test(test_fuzz_random),
		cmocka_unit_test(test_fuzz_mutations),
		cmocka_unit_test(test_tensor_check),
		cmocka_unit_test(test_names),
		cmocka_unit_test(test_body_name_non_body_fields),
		cmocka_unit_test(test_precheck_device),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
