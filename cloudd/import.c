/*
 * import: bulk pool import from a samples CSV (shared/data/dataset.h format), in
 * one transaction with a prepared statement. `cloudd --import FILE` runs it
 * directly; `dcctl import FILE` runs it in the threadpool on a connection of
 * its own, then reloads the pool snapshot (and trains a first model when
 * there is none and train.on-start is set).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cloudd/cloudd.h"
#include "cloudd/rpc.h"
#include "shared/clock.h"
#include "shared/data/dataset.h"
#include "shared/log.h"
#include "shared/wire.h"

int
import_file(struct store *st, const char *path, uint64_t *rows, char *err,
    size_t errlen)
{
	struct dataset ds;
	struct dataset_opts o;
	struct dataset_err de;
	int rc;

	dataset_init(&ds);
	dataset_opts_default(&o);
	o.skip_bad = 0;
	memset(&de, 0, sizeof(de));
	if ((rc = dataset_read_csv(&ds, path, &o, &de)) != 0) {
		snprintf(err, errlen, "%s", de.msg[0] ? de.msg : strerror(-rc));
		goto done;
	}
	if ((rc = store_pool_insert(st, &ds, rows)) != 0)
		snprintf(err, errlen, "%s", store_errmsg(st));
done:
	dataset_fini(&ds);
	return rc;
}

static void
import_work_cb(uv_work_t *w)
{
	struct rpc_req *r = w->data;
	struct store *st = NULL;
	double t0 = clock_now();

	if (store_open(&st, r->cd->cf.store, r->cd->dbpath,
	    (int)r->cd->cf.busy_ms, r->err, sizeof(r->err)) != 0) {
		r->code = DCCL__ERROR_CODE__E_STORAGE;
		return;
	}
	if (import_file(st, r->env->admin_import->path, &r->rows, r->err,
	    sizeof(r->err)) != 0)
		r->code = DCCL__ERROR_CODE__E_BAD_REQUEST;
	r->seconds = clock_now() - t0;
	store_close(st);
}

static void
import_after_cb(uv_work_t *w, int status)
{
	struct rpc_req *r = w->data;
	struct cloudd *cd = r->cd;
	Dccl__Envelope e = DCCL__ENVELOPE__INIT;
	Dccl__ImportDone d = DCCL__IMPORT_DONE__INIT;

	job_end(&cd->job, 1);
	cd->inflight--;
	if (status != 0)
		rpc_error(cd, r, DCCL__ERROR_CODE__E_SHUTTING_DOWN, "cancelled");
	else if (r->code != 0)
		rpc_error(cd, r, r->code, "import failed: %s", r->err);
	else {
		log_info("IMPORT: %llu rows in %.3f s (%.0f rows/s)",
		    (unsigned long long)r->rows, r->seconds, r->rows /
		    (r->seconds > 0 ? r->seconds : 1e-9));
		d.rows = r->rows;
		d.seconds = r->seconds;
		e.device_id = r->env->device_id;
		e.request_id = r->env->request_id;
		e.body_case = DCCL__ENVELOPE__BODY_IMPORT_DONE;
		e.import_done = &d;
		rpc_reply(cd, r, &e);
		if (!cd->stopping)
			pool_start_load(cd);
	}
	job_idle(&cd->job);
}

void
import_rpc(struct cloudd *cd, struct rpc_req *r)
{
	const char *path = r->env->admin_import->path;

	if (path == NULL || path[0] != '/') {
		rpc_error(cd, r, DCCL__ERROR_CODE__E_BAD_REQUEST,
		    "import needs an absolute path");
		return;
	}
	/* Its pool reload would race the rollback's. */
	if (cd->rolling_back) {
		rpc_error(cd, r, DCCL__ERROR_CODE__E_BUSY,
		    "a rollback is in progress; retry later");
		return;
	}
	if (cd->training || cd->pool_loading) {
		rpc_error(cd, r, DCCL__ERROR_CODE__E_BUSY,
		    "training or pool load in progress; retry later");
		return;
	}
	/* An import holds a threadpool worker like a retrieval. */
	if (cd->inflight >= (uint32_t)cd->cf.max_inflight) {
		rpc_error(cd, r, DCCL__ERROR_CODE__E_BUSY, "%u heavy requests "
		    "in flight; retry later", cd->inflight);
		return;
	}
	r->work.data = r;
	job_begin(&cd->job);
	cd->inflight++;
	uv_queue_work(&cd->loop, &r->work, import_work_cb, import_after_cb);
}
