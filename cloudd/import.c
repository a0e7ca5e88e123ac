/*
 * import: bulk pool import from a samples CSV (shared/data/dataset.h format)
 * or, with a feature schema (shared/data/schema.h), from any header CSV
 * whose columns the schema names, in one transaction with a prepared
 * statement. The schema's canonical text is stored with the pool, and a
 * pool keeps one schema (store_pool_insert_schema). `cloudd --import FILE` runs it
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
#include "shared/data/schema.h"
#include "shared/log.h"
#include "shared/wire.h"

/* A samples CSV starts with its '#' line or its column header. */
static int
is_samples_csv(const char *path)
{
	static const char hdr[] = "user,item,ts,rating,label,genres,hist";
	char b[64];
	size_t n;
	FILE *fp = fopen(path, "r");

	if (fp == NULL)
		return 1;	/* the reader reports the error */
	n = fread(b, 1, sizeof(b), fp);
	fclose(fp);
	return (n >= 14 && memcmp(b, "# dccl-samples", 14) == 0) ||
	    (n >= sizeof(hdr) - 1 && memcmp(b, hdr, sizeof(hdr) - 1) == 0 &&
	    (n == sizeof(hdr) - 1 || b[sizeof(hdr) - 1] == '\n' ||
	    b[sizeof(hdr) - 1] == '\r' || b[sizeof(hdr) - 1] == ','));
}

int
import_file_schema(struct store *st, const char *path, const char *schema,
    uint64_t *rows, char *err, size_t errlen)
{
	struct dataset ds;
	struct dataset_opts o;
	struct dataset_err de;
	struct schema sc;
	char *text = NULL;
	int rc;

	dataset_init(&ds);
	dataset_opts_default(&o);
	schema_init(&sc);
	o.skip_bad = 0;
	memset(&de, 0, sizeof(de));
	if (schema != NULL) {
		if ((rc = schema_load(&sc, schema, err, errlen)) != 0)
			goto done;
		text = schema_format(&sc);
	}
	if (is_samples_csv(path)) {
		if ((rc = dataset_read_csv(&ds, path, &o, &de)) != 0) {
			snprintf(err, errlen, "%s", de.msg[0] ? de.msg :
			    strerror(-rc));
			goto done;
		}
		/*
		 * Side values without a schema import as they are (a v2
		 * file names its cards); with one, they must be its own.
		 */
		if (schema != NULL) {
			struct dataset want;

			dataset_init(&want);
			schema_apply(&sc, &want);
			if (want.n_side != ds.n_side ||
			    memcmp(want.side_card, ds.side_card,
			    sizeof(want.side_card)) != 0) {
				snprintf(err, errlen, "%s: its side fields "
				    "(n_side %u) are not those of %s (n_side "
				    "%u)", path, ds.n_side, schema,
				    want.n_side);
				rc = -EINVAL;
				goto done;
			}
		}
	} else if (schema == NULL) {
		snprintf(err, errlen, "%s: not a samples CSV (header '%s'); "
		    "a CSV of other columns needs a schema", path,
		    "user,item,ts,rating,label,genres,hist");
		rc = -EINVAL;
		goto done;
	} else if ((rc = schema_read_csv(&ds, path, &sc, &o, &de)) != 0) {
		snprintf(err, errlen, "%s", de.msg[0] ? de.msg : strerror(-rc));
		goto done;
	}
	if ((rc = store_pool_insert_schema(st, &ds, text, rows)) != 0)
		snprintf(err, errlen, "%s", store_errmsg(st));
done:
	free(text);
	schema_fini(&sc);
	dataset_fini(&ds);
	return rc;
}

int
import_file(struct store *st, const char *path, uint64_t *rows, char *err,
    size_t errlen)
{
	return import_file_schema(st, path, NULL, rows, err, errlen);
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
	if (import_file_schema(st, r->env->admin_import->path,
	    r->env->admin_import->schema_path != NULL &&
	    r->env->admin_import->schema_path[0] != '\0' ?
	    r->env->admin_import->schema_path : NULL, &r->rows, r->err,
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

	const char *sp = r->env->admin_import->schema_path;

	if (path == NULL || path[0] != '/' || (sp != NULL && sp[0] != '\0' &&
	    sp[0] != '/')) {
		rpc_error(cd, r, DCCL__ERROR_CODE__E_BAD_REQUEST,
		    "import needs absolute paths");
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
