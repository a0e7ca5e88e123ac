/*
 * upload.c on a real SQLite store: an upload is validated and refused at
 * once (nothing queued, nothing stored), or queued and acknowledged only
 * after its group commit; a resend by request id is a duplicate with the
 * same patch id; a burst beyond UPLOAD_BATCH_MAX commits in full batches;
 * a failing store answers every upload of the batch E_STORAGE (stored
 * alone after the batch failed) and stores nothing. Replies are read from
 * the accounting (cd->res) and, for their patch ids, from the store.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <math.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cloudd/cloudd.h"
#include "cloudd/rpc.h"
#include "shared/clock.h"
#include "shared/wire.h"
#include "shared/xmalloc.h"

#define BD	DCCL__ENVELOPE__BODY_UPLOAD

struct fx {
	struct cloudd	*cd;
	char		 dir[64];
	char		 db[128];
};

static int
fx_setup(void **state)
{
	struct fx *f = xcalloc(1, sizeof(*f));
	struct store_model_info mi;
	struct cloudd *cd;
	char err[256];

	snprintf(f->dir, sizeof(f->dir), "/tmp/test_upload.XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	snprintf(f->db, sizeof(f->db), "%s/cloudd.db", f->dir);
	cd = f->cd = xcalloc(1, sizeof(*cd));
	assert_int_equal(uv_loop_init(&cd->loop), 0);
	assert_int_equal(store_open(&cd->st, "sqlite", f->db, 2000, err,
	    sizeof(err)), 0);
	assert_int_equal(upload_init(cd), 0);
	/* Model v1 with a MetaPatch of rank 4 on one hidden layer. */
	memset(&mi, 0, sizeof(mi));
	mi.version = 1;
	mi.size = 3;
	assert_int_equal(store_model_put(cd->st, &mi, "abc", 3), 0);
	cd->model.version = 1;
	cd->model.n_hidden = 1;
	cd->model.patch_rank = 4;
	cd->cf.max_tensor = 1 << 20;
	cd->cf.max_patch_norm = 100;
	cd->cf.patch_norm_factor = 0;
	cd->n_open = -1;	/* replies are accounted, not sent */
	*state = f;
	return 0;
}

static int
fx_teardown(void **state)
{
	struct fx *f = *state;
	char cmd[128];

	upload_fini(f->cd);
	uv_run(&f->cd->loop, UV_RUN_NOWAIT);
	assert_int_equal(uv_loop_close(&f->cd->loop), 0);
	store_close(f->cd->st);
	free(f->cd);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", f->dir);
	assert_int_equal(system(cmd), 0);
	free(f);
	return 0;
}

/* An UploadPatch request of device dev, request id rid, patch entries x. */
static struct rpc_req *
mkreq(struct cloudd *cd, const char *dev, uint64_t rid, float x,
    const char *name)
{
	Dccl__Envelope e = DCCL__ENVELOPE__INIT;
	Dccl__UploadPatch up = DCCL__UPLOAD_PATCH__INIT;
	Dccl__Tensor t = DCCL__TENSOR__INIT, *tp[1] = { &t };
	uint32_t shape[1] = { 4 };
	float d[4] = { x, x, x, x };
	struct rpc_req *r = xcalloc(1, sizeof(*r));
	char err[256];
	uint8_t *buf;
	size_t len;

	t.name = (char *)name;
	t.n_shape = 1;
	t.shape = shape;
	t.n_data = 4;
	t.data = d;
	up.base_version = 1;
	up.n_tensors = 1;
	up.tensors = tp;
	e.version = WIRE_VERSION;
	e.device_id = (char *)dev;
	e.request_id = rid;
	e.body_case = BD;
	e.upload = &up;
	len = dccl__envelope__get_packed_size(&e);
	buf = xmalloc(len);
	dccl__envelope__pack(&e, buf);
	r->cd = cd;
	r->t0 = clock_now();
	assert_int_equal(wire_unpack(buf, len, &r->env, err, sizeof(err)), 0);
	free(buf);
	r->body = BD;
	r->user = 7;
	return r;
}

static uint64_t
stored(struct cloudd *cd)
{
	uint64_t n = 0;

	assert_int_equal(store_patch_count(cd->st, &n), 0);
	return n;
}

/* Runs the loop once: the check handle commits the batch. */
static void
iterate(struct cloudd *cd)
{
	uv_run(&cd->loop, UV_RUN_NOWAIT);
}

static void
test_refused_at_once(void **state)
{
	struct cloudd *cd = ((struct fx *)*state)->cd;

	upload_rpc(cd, mkreq(cd, "d1", 1, NAN, "patch_m0"));
	assert_int_equal(cd->res[BD][DCCL__ERROR_CODE__E_BAD_TENSOR], 1);
	upload_rpc(cd, mkreq(cd, "d1", 2, 0.1f, "patch_m1"));
	assert_int_equal(cd->res[BD][DCCL__ERROR_CODE__E_BAD_TENSOR], 2);
	upload_rpc(cd, mkreq(cd, "d1", 3, 1000.0f, "patch_m0")); /* norm */
	assert_int_equal(cd->res[BD][DCCL__ERROR_CODE__E_BAD_TENSOR], 3);
	{
		struct rpc_req *r = mkreq(cd, "d1", 4, 0.1f, "patch_m0");
		r->env->upload->base_version = 9;	/* unknown */
		upload_rpc(cd, r);
		assert_int_equal(cd->res[BD][DCCL__ERROR_CODE__E_STALE], 1);
	}
	/* Answered at once: nothing queued, nothing owed, nothing stored. */
	assert_int_equal(cd->up_n, 0);
	assert_int_equal(cd->job.n, 0);
	iterate(cd);
	assert_int_equal(stored(cd), 0);
	assert_int_equal(cd->res[BD][0], 0);
}

static void
test_group_commit(void **state)
{
	struct cloudd *cd = ((struct fx *)*state)->cd;
	struct store_patch *p = NULL;
	size_t n = 0;

	for (int i = 0; i < 3; i++)
		upload_rpc(cd, mkreq(cd, "d2", 10 + (uint64_t)i, 0.1f,
		    "patch_m0"));
	/* Queued, not acknowledged before the commit. */
	assert_int_equal(cd->up_n, 3);
	assert_int_equal(cd->job.n, 3);
	assert_int_equal(cd->res[BD][0], 0);
	assert_int_equal(stored(cd), 0);
	iterate(cd);
	assert_int_equal(cd->up_n, 0);
	assert_int_equal(cd->job.n, 0);
	assert_int_equal(cd->res[BD][0], 3);
	assert_int_equal(stored(cd), 3);
	assert_int_equal(cd->patches, 3);
	/* The same request id again: a duplicate, not a second row. */
	upload_rpc(cd, mkreq(cd, "d2", 11, 0.1f, "patch_m0"));
	iterate(cd);
	assert_int_equal(cd->res[BD][0], 4);
	assert_int_equal(stored(cd), 3);
	assert_int_equal(cd->patches, 3);
	/* Stored under the authenticated device and its bound user. */
	assert_int_equal(store_patch_list(cd->st, 0, &p, &n), 0);
	assert_int_equal(n, 3);
	for (size_t i = 0; i < n; i++) {
		assert_string_equal(p[i].device_id, "d2");
		assert_int_equal(p[i].user_id, 7);
		assert_string_equal(p[i].kind, "metapatch");
	}
	store_patch_free(p, n);
}

/* A burst larger than one batch: full batches flush at once. */
static void
test_batch_bound(void **state)
{
	struct cloudd *cd = ((struct fx *)*state)->cd;
	int n = UPLOAD_BATCH_MAX + 5;

	for (int i = 0; i < n; i++) {
		upload_rpc(cd, mkreq(cd, "d3", 100 + (uint64_t)i, 0.1f,
		    "patch_m0"));
		assert_true(cd->up_n < UPLOAD_BATCH_MAX);
	}
	/* The first UPLOAD_BATCH_MAX were committed when the batch filled. */
	assert_int_equal(cd->res[BD][0], UPLOAD_BATCH_MAX);
	assert_int_equal(cd->up_n, 5);
	iterate(cd);
	assert_int_equal(cd->res[BD][0], n);
	assert_int_equal(stored(cd), n);
	assert_int_equal(cd->job.n, 0);
}

/* The store fails: every upload gets E_STORAGE, none is acknowledged. */
static void
test_storage_error(void **state)
{
	struct fx *f = *state;
	struct cloudd *cd = f->cd;
	sqlite3 *db;

	assert_int_equal(sqlite3_open(f->db, &db), SQLITE_OK);
	assert_int_equal(sqlite3_exec(db, "DROP TABLE patches", NULL, NULL,
	    NULL), SQLITE_OK);
	sqlite3_close(db);
	for (int i = 0; i < 3; i++)
		upload_rpc(cd, mkreq(cd, "d4", 1 + (uint64_t)i, 0.1f,
		    "patch_m0"));
	iterate(cd);
	assert_int_equal(cd->res[BD][DCCL__ERROR_CODE__E_STORAGE], 3);
	assert_int_equal(cd->res[BD][0], 0);
	assert_int_equal(cd->patches, 0);
	assert_int_equal(cd->job.n, 0);
	/* One alone (no batch transaction): E_STORAGE too. */
	upload_rpc(cd, mkreq(cd, "d4", 9, 0.1f, "patch_m0"));
	iterate(cd);
	assert_int_equal(cd->res[BD][DCCL__ERROR_CODE__E_STORAGE], 4);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_refused_at_once, fx_setup,
		    fx_teardown),
		cmocka_unit_test_setup_teardown(test_group_commit, fx_setup,
		    fx_teardown),
		cmocka_unit_test_setup_teardown(test_batch_bound, fx_setup,
		    fx_teardown),
		cmocka_unit_test_setup_teardown(test_storage_error, fx_setup,
		    fx_teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
