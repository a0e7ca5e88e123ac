/*
 * seal.c: chunk replies sealed inline and on the seal thread, over a real
 * raw REP socket (inproc) and a REQ client: the bytes and the MAC of what
 * arrives, the shared bytes referenced (not copied) while a job waits and
 * released after, a model swap while a job waits, the copy path without
 * an owner, and the bounds of the queue (entries, then bytes) with E_BUSY
 * beyond each, all accepted jobs still answered.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <nanomsg/nn.h>
#include <nanomsg/reqrep.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cloudd/cloudd.h"
#include "cloudd/rpc.h"
#include "cloudd/sblob.h"
#include "cloudd/seal.h"
#include "shared/auth.h"
#include "shared/clock.h"
#include "shared/wire.h"
#include "shared/xmalloc.h"

struct fx {
	struct cloudd	*cd;
	struct nnuv	 srv;
	int		 cli;
	void		*hdr;		/* the last request's routing header */
	Dccl__Envelope	*env;		/* ... and its envelope */
	struct auth_key	 key;
	void		*req;		/* a packed GetModel request */
	size_t		 req_len;
};

static void
srv_recv(struct nnuv *s, void *msg, size_t len, void *hdr)
{
	struct fx *f = s->data;
	char err[256];

	assert_null(f->hdr);
	assert_int_equal(wire_unpack(msg, len, &f->env, err, sizeof(err)), 0);
	f->hdr = hdr;
	nn_freemsg(msg);
}

static void
pump(struct fx *f)
{
	struct timespec ts = { 0, 1000000 };

	uv_run(&f->cd->loop, UV_RUN_NOWAIT);
	nanosleep(&ts, NULL);
}

static int
fx_setup(void **state)
{
	static int seq;
	struct fx *f = xcalloc(1, sizeof(*f));
	Dccl__Envelope e = DCCL__ENVELOPE__INIT;
	Dccl__GetModelReq gm = DCCL__GET_MODEL_REQ__INIT;
	char url[64];
	int s;

	f->cd = xcalloc(1, sizeof(*f->cd));
	assert_int_equal(uv_loop_init(&f->cd->loop), 0);
	snprintf(url, sizeof(url), "inproc://test-seal-%d", seq++);
	assert_true((s = nn_socket(AF_SP_RAW, NN_REP)) >= 0);
	assert_true(nn_bind(s, url) >= 0);
	assert_int_equal(nnuv_init(&f->srv, &f->cd->loop, s, 1, srv_recv, f),
	    0);
	assert_true((f->cli = nn_socket(AF_SP, NN_REQ)) >= 0);
	assert_true(nn_connect(f->cli, url) >= 0);
	auth_token_key("seal-test", &f->key);
	e.version = WIRE_VERSION;
	e.device_id = "dev";
	e.request_id = 9;
	e.counter = 7;
	e.body_case = DCCL__ENVELOPE__BODY_GET_MODEL;
	e.get_model = &gm;
	f->req_len = dccl__envelope__get_packed_size(&e);
	f->req = xmalloc(f->req_len);
	dccl__envelope__pack(&e, f->req);
	*state = f;
	return 0;
}

static void
closed(struct nnuv *s)
{
	(void)s;
}

static int
fx_teardown(void **state)
{
	struct fx *f = *state;

	seal_stop(f->cd);
	nnuv_close(&f->srv, closed);
	nn_close(f->cli);
	for (int i = 0; i < 10; i++)
		pump(f);
	assert_int_equal(uv_loop_close(&f->cd->loop), 0);
	free(f->req);
	free(f->cd);
	free(f);
	return 0;
}

/* A request object as rpc.c makes it, for the request just received. */
static struct rpc_req *
mkreq(struct fx *f, int with_hdr)
{
	struct rpc_req *r = xcalloc(1, sizeof(*r));
	char err[256];

	r->cd = f->cd;
	r->sock = &f->srv;
	r->t0 = clock_now();
	if (with_hdr) {
		r->hdr = f->hdr;
		r->env = f->env;
		f->hdr = NULL;
		f->env = NULL;
	} else
		assert_int_equal(wire_unpack(f->req, f->req_len, &r->env, err,
		    sizeof(err)), 0);
	r->body = DCCL__ENVELOPE__BODY_GET_MODEL;
	r->seal.mode = AUTH_MAC;
	r->seal.dir = AUTH_DOWN;
	r->seal.counter = 7;
	r->seal.key = f->key;
	return r;
}

/* Sends the request and returns it, received by the server side. */
static struct rpc_req *
request(struct fx *f)
{
	assert_true(nn_send(f->cli, f->req, f->req_len, 0) >= 0);
	for (int i = 0; i < 5000 && f->hdr == NULL; i++)
		pump(f);
	assert_non_null(f->hdr);
	return mkreq(f, 1);
}

/* Runs the loop until the client has a reply; checks its MAC and bytes. */
static void
expect_chunk(struct fx *f, const uint8_t *want, size_t len, uint32_t idx)
{
	Dccl__Envelope *e = NULL;
	void *buf = NULL;
	char err[256];
	int n = -1;

	for (int i = 0; i < 5000 && n < 0; i++) {
		pump(f);
		n = nn_recv(f->cli, &buf, NN_MSG, NN_DONTWAIT);
	}
	assert_true(n > 0);
	assert_int_equal(wire_unpack(buf, (size_t)n, &e, err, sizeof(err)), 0);
	assert_int_equal(e->body_case, DCCL__ENVELOPE__BODY_MODEL_CHUNK);
	assert_int_equal(e->request_id, 9);
	assert_int_equal(e->model_chunk->chunk_index, idx);
	assert_int_equal(e->model_chunk->data.len, len);
	assert_memory_equal(e->model_chunk->data.data, want, len);
	assert_int_equal(e->model_chunk->checksum.len, 32);
	assert_int_equal(auth_verify(buf, (size_t)n, e, &f->key, AUTH_DOWN),
	    0);
	/* A byte of the chunk flipped under the tag: refused. */
	((uint8_t *)buf)[n / 2] ^= 1;
	wire_free(e);
	e = NULL;
	if (wire_unpack(buf, (size_t)n, &e, err, sizeof(err)) == 0)
		assert_int_not_equal(auth_verify(buf, (size_t)n, e, &f->key,
		    AUTH_DOWN), 0);
	wire_free(e);
	nn_freemsg(buf);
}

static struct sblob *
blob(size_t len, uint64_t version, unsigned seed)
{
	struct sblob *b = sblob_wrap(xmalloc(len), len, version);

	for (size_t i = 0; i < len; i++)
		b->data[i] = (uint8_t)(i * 31 + seed);
	memset(b->sum, 0xab, 32);
	return b;
}

static void
chunk_of(Dccl__ModelChunk *mc, struct sblob *b, size_t off, size_t len,
    uint32_t idx)
{
	dccl__model_chunk__init(mc);
	mc->version = b->version;
	mc->chunk_index = idx;
	mc->n_chunks = (uint32_t)((b->len + len - 1) / len);
	mc->total_size = b->len;
	mc->checksum.data = b->sum;
	mc->checksum.len = 32;
	mc->data.data = b->data + off;
	mc->data.len = len;
}

/* No seal thread: sealed inline, the reply arrives at once. */
static void
test_inline(void **state)
{
	struct fx *f = *state;
	struct sblob *b = blob(4096, 1, 3);
	Dccl__ModelChunk mc;

	chunk_of(&mc, b, 1024, 1024, 1);
	seal_chunk(f->cd, request(f), &mc, b);
	assert_int_equal(b->refs, 1);	/* nothing kept */
	assert_int_equal(f->cd->job.n, 0);
	expect_chunk(f, b->data + 1024, 1024, 1);
	sblob_unref(b);
}

/* The seal thread: the job references the owner's bytes, never a copy. */
static void
test_thread_shares(void **state)
{
	struct fx *f = *state;
	size_t cs = 64 * 1024;
	struct sblob *b = blob(4 * cs, 2, 5), *b2;
	Dccl__ModelChunk mc;

	assert_int_equal(seal_start(f->cd), 0);
	assert_non_null(f->cd->sealer);
	chunk_of(&mc, b, 2 * cs, cs, 2);
	seal_chunk(f->cd, request(f), &mc, b);
	assert_int_equal(b->refs, 2);	/* the job's reference */
	assert_int_equal(f->cd->job.n, 1);
	expect_chunk(f, b->data + 2 * cs, cs, 2);
	for (int i = 0; i < 100 && f->cd->job.n > 0; i++)
		pump(f);
	assert_int_equal(f->cd->job.n, 0);
	assert_int_equal(b->refs, 1);	/* released after the reply */
	/* A model swap while the job waits: the bytes stay valid. */
	b2 = blob(4 * cs, 3, 9);
	chunk_of(&mc, b2, cs, cs, 1);
	seal_chunk(f->cd, request(f), &mc, b2);
	sblob_unref(b2);		/* the owner lets go */
	{
		struct sblob *ref = blob(4 * cs, 3, 9);
		expect_chunk(f, ref->data + cs, cs, 1);
		sblob_unref(ref);
	}
	/* Without an owner the chunk is copied: the source may go. */
	{
		uint8_t *src = xmalloc(cs);
		memcpy(src, b->data, cs);
		chunk_of(&mc, b, 0, cs, 0);	/* b2 and its checksum are gone */
		mc.data.data = src;
		seal_chunk(f->cd, request(f), &mc, NULL);
		memset(src, 0, cs);
		free(src);
		expect_chunk(f, b->data, cs, 0);
	}
	/* An owner the chunk does not lie in: copied too, not referenced. */
	b2 = blob(cs, 4, 1);
	chunk_of(&mc, b, 0, cs, 0);
	seal_chunk(f->cd, request(f), &mc, b2);
	assert_int_equal(b2->refs, 1);
	expect_chunk(f, b->data, cs, 0);
	sblob_unref(b2);
	for (int i = 0; i < 100 && f->cd->job.n > 0; i++)
		pump(f);
	assert_int_equal(f->cd->job.n, 0);
	sblob_unref(b);
}

/*
 * The queue's bounds, with the loop not running (replies wait for it):
 * SEAL_MAX_JOBS small chunks, then E_BUSY; after draining, chunks up to
 * the byte bound, then E_BUSY. Every accepted one is answered after.
 * Replies go nowhere (socket closed: n_open < 0) but are accounted.
 */
static void
test_bounds(void **state)
{
	struct fx *f = *state;
	struct cloudd *cd = f->cd;
	size_t small = SEAL_MIN_BYTES, big = (size_t)4 << 20;
	struct sblob *b = blob(big, 5, 7);
	Dccl__ModelChunk mc;
	int bd = DCCL__ENVELOPE__BODY_GET_MODEL;
	uint64_t nbig = (uint64_t)((size_t)128 << 20) / big;

	assert_int_equal(seal_start(cd), 0);
	cd->n_open = -1;
	chunk_of(&mc, b, 0, small, 0);
	for (int i = 0; i < 512; i++)
		seal_chunk(cd, mkreq(f, 0), &mc, b);
	assert_int_equal(cd->err[DCCL__ERROR_CODE__E_BUSY], 0);
	assert_int_equal(b->refs, 1 + 512);
	seal_chunk(cd, mkreq(f, 0), &mc, b);
	assert_int_equal(cd->err[DCCL__ERROR_CODE__E_BUSY], 1);
	assert_int_equal(cd->res[bd][DCCL__ERROR_CODE__E_BUSY], 1);
	for (int i = 0; i < 20000 && cd->job.n > 0; i++)
		pump(f);
	assert_int_equal(cd->job.n, 0);
	assert_int_equal(cd->res[bd][0], 512);
	assert_int_equal(b->refs, 1);
	/* Bytes: 128 MiB of 4 MiB chunks, then E_BUSY. */
	chunk_of(&mc, b, 0, big, 0);
	for (uint64_t i = 0; i < nbig; i++)
		seal_chunk(cd, mkreq(f, 0), &mc, b);
	assert_int_equal(cd->err[DCCL__ERROR_CODE__E_BUSY], 1);
	seal_chunk(cd, mkreq(f, 0), &mc, b);
	assert_int_equal(cd->err[DCCL__ERROR_CODE__E_BUSY], 2);
	for (int i = 0; i < 20000 && cd->job.n > 0; i++)
		pump(f);
	assert_int_equal(cd->job.n, 0);
	assert_int_equal(cd->res[bd][0], 512 + nbig);
	assert_int_equal(cd->dropped, 512 + nbig + 2);	/* nowhere to go */
	assert_int_equal(b->refs, 1);
	sblob_unref(b);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_inline, fx_setup,
		    fx_teardown),
		cmocka_unit_test_setup_teardown(test_thread_shares, fx_setup,
		    fx_teardown),
		cmocka_unit_test_setup_teardown(test_bounds, fx_setup,
		    fx_teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
