/*
 * lifecycle: model versions from the admin socket (dcctl model show,
 * rollback, prune). Loop thread, except rollback_work_cb, which runs in
 * the threadpool and touches only its job.
 *
 * Rollback makes an old version's weights current by storing its blob
 * again as a NEW version (latest + 1, parent = the version that was
 * current) and publishing that like a freshly trained one. Versions thus
 * stay monotonic: devices, which only ever move to a higher announced
 * version, simply download it; a restart loads it as the latest; and the
 * history says what happened (the blob is byte-identical to the original,
 * so its checksum matches and its own metadata still names the version
 * that trained it, which `model show` reports as "copy of"). The pool's
 * representation vectors and retrieval index are rebuilt for the new
 * version number in the same job, as after training, so retrieval never
 * sees a version without an index.
 *
 * Prune keeps the models.keep newest versions and always the current one.
 * Patches whose base version is pruned are kept: they are the devices'
 * uploads (small, and what distillation will consume), and deleting user
 * contributions as a side effect of housekeeping would be a surprise.
 */
#include <errno.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cloudd/cloudd.h"
#include "cloudd/rpc.h"
#include "shared/clock.h"
#include "shared/ml/ctr.h"
#include "shared/ml/ctr_io.h"
#include "shared/data/dataset.h"
#include "shared/log.h"
#include "shared/xmalloc.h"

struct rollback_job {
	uv_work_t		 w;
	struct cloudd		*cd;
	struct rpc_req		*r;		/* replied to in after_cb */
	struct pool		*src;	/* ref held, read only; or NULL */
	struct pool		*np;		/* the new snapshot */
	struct cloudd_conf	 cf;		/* copy: plain values only */
	char			*dbpath;
	uint64_t		 from, parent;
	struct store_model_info	 mi;		/* the new version */
	uint8_t			*blob;
	size_t			 size;
	int			 rc, code;
	char			 err[256];
	double			 seconds;
};

void
lifecycle_show_rpc(struct cloudd *cd, struct rpc_req *r)
{
	uint64_t v = r->env->admin_model_show->version;
	struct store_model_info mi;
	Dccl__Envelope e;
	Dccl__ModelInfo out = DCCL__MODEL_INFO__INIT;
	Dccl__Model *pm = NULL;
	void *blob = NULL;
	const void *b;
	int rc;

	if (v == 0)
		v = cd->model.version;
	if (v == 0) {
		rpc_error(cd, r, DCCL__ERROR_CODE__E_NOT_FOUND,
		    "no model trained yet");
		return;
	}
	if ((rc = store_model_info(cd->st, v, &mi)) != 0) {
		rpc_error(cd, r, rc == -ENOENT ? DCCL__ERROR_CODE__E_NOT_FOUND :
		    DCCL__ERROR_CODE__E_STORAGE, "model v%llu: %s",
		    (unsigned long long)v, rc == -ENOENT ? "no such version" :
		    store_errmsg(cd->st));
		return;
	}
	if (v == cd->model.version) {
		b = cd->model.blob;
	} else {
		blob = xmalloc(mi.size ? mi.size : 1);
		if ((rc = store_model_read(cd->st, v, 0, blob, mi.size)) != 0) {
			rpc_error(cd, r, DCCL__ERROR_CODE__E_STORAGE,
			    "model v%llu: %s", (unsigned long long)v,
			    store_errmsg(cd->st));
			goto done;
		}
		b = blob;
	}
	/* The metrics are only inside the stored Model. */
	if ((pm = dccl__model__unpack(NULL, mi.size, b)) == NULL) {
		rpc_error(cd, r, DCCL__ERROR_CODE__E_INTERNAL,
		    "stored model v%llu does not unpack",
		    (unsigned long long)v);
		goto done;
	}
	out.version = mi.version;
	out.parent = mi.parent;
	out.size = mi.size;
	out.created = mi.created;
	out.global_ctr = mi.global_ctr;
	out.n_metrics = pm->n_metrics;
	out.metrics = pm->metrics;
	out.copy_of = pm->version != mi.version ? pm->version : 0;
	out.checksum.data = mi.checksum;
	out.checksum.len = 32;
	out.current = mi.version == cd->model.version;
	rpc_reply_init(&e, r);
	e.body_case = DCCL__ENVELOPE__BODY_MODEL_INFO;
	e.model_info = &out;
	rpc_reply(cd, r, &e);
done:
	if (pm != NULL)
		dccl__model__free_unpacked(pm, NULL);
	free(blob);
}

/* Threadpool: touches only *j (and its own store connection). */
static void
rollback_work_cb(uv_work_t *w)
{
	struct rollback_job *j = w->data;
	struct store *st = NULL;
	struct store_model_info src, last;
	struct ctr *m = NULL;
	int stored = 0;
	double t0 = clock_now();

	j->code = DCCL__ERROR_CODE__E_STORAGE;
	if ((j->rc = store_open(&st, j->cf.store, j->dbpath,
	    (int)j->cf.busy_ms, j->err, sizeof(j->err))) != 0)
		goto done;
	if ((j->rc = store_model_info(st, j->from, &src)) != 0) {
		if (j->rc == -ENOENT)
			j->code = DCCL__ERROR_CODE__E_NOT_FOUND;
		snprintf(j->err, sizeof(j->err), "model v%llu: %s",
		    (unsigned long long)j->from, j->rc == -ENOENT ?
		    "no such version (pruned?)" : store_errmsg(st));
		goto done;
	}
	/* Check the weights before they become a version. */
	j->size = src.size;
	j->blob = xmalloc(src.size ? src.size : 1);
	if ((j->rc = store_model_read(st, j->from, 0, j->blob, j->size))) {
		snprintf(j->err, sizeof(j->err), "%s", store_errmsg(st));
		goto done;
	}
	if ((j->rc = ctr_io_unpack(&m, NULL, j->blob, j->size, j->err,
	    sizeof(j->err))) != 0) {
		j->code = DCCL__ERROR_CODE__E_INTERNAL;
		goto done;
	}
	/* Newer than everything stored, even a version never published. */
	memset(&j->mi, 0, sizeof(j->mi));
	j->mi.version = j->parent + 1;
	if (store_model_info(st, 0, &last) == 0 &&
	    last.version >= j->mi.version)
		j->mi.version = last.version + 1;
	j->mi.parent = j->parent;
	j->mi.created = time(NULL);
	if ((j->rc = store_model_copy(st, j->from, &j->mi)) != 0) {
		snprintf(j->err, sizeof(j->err), "%s", store_errmsg(st));
		goto done;
	}
	stored = 1;
	if (j->src != NULL && j->src->ds.n > 0) {
		j->np = pool_share_samples(j->src);
		if ((j->rc = pool_index(j->np, m, st, j->mi.version, &j->cf,
		    j->err, sizeof(j->err))) != 0) {
			j->code = DCCL__ERROR_CODE__E_INTERNAL;
			goto done;
		}
	}
	/* The same weights: V's Forward-OFA model serves the copy as is. */
	{
		void *ob = NULL;
		size_t olen = 0;
		if (store_ofa_get(st, j->from, &ob, &olen) == 0 &&
		    store_ofa_put(st, j->mi.version, ob, olen) != 0)
			log_warnx("ROLLBACK: v%llu gets no OFA model: %s",
			    (unsigned long long)j->mi.version, store_errmsg(st));
		free(ob);
	}
done:
	/* A rollback that cannot be published leaves no version behind. */
	if (j->rc != 0 && stored)
		store_model_delete(st, j->mi.version);
	j->seconds = clock_now() - t0;
	ctr_free(m);
	store_close(st);
}

static void
rollback_after_cb(uv_work_t *w, int status)
{
	struct rollback_job *j = w->data;
	struct cloudd *cd = j->cd;
	struct rpc_req *r = j->r;
	Dccl__Envelope e;
	Dccl__RolledBack rb = DCCL__ROLLED_BACK__INIT;

	job_end(&cd->job, 1);
	cd->rolling_back = 0;
	pool_unref(cd, j->src);
	if (status != 0 || j->rc != 0) {
		log_warnx("ROLLBACK: to v%llu failed: %s",
		    (unsigned long long)j->from, status ? "cancelled" : j->err);
		rpc_error(cd, r, status ? DCCL__ERROR_CODE__E_SHUTTING_DOWN :
		    j->code, "rollback to v%llu: %s", (unsigned long long)
		    j->from, status ? "cancelled" : j->err);
		pool_free(j->np);
		free(j->blob);
	} else {
		log_info("ROLLBACK: model v%llu = v%llu's weights (parent "
		    "v%llu) in %.2f s", (unsigned long long)j->mi.version,
		    (unsigned long long)j->from, (unsigned long long)j->parent,
		    j->seconds);
		model_publish(cd, &j->mi, j->blob, j->size);	/* owns blob */
		/*
		 * An import may have reloaded the pool meanwhile (or be
		 * reloading it): then our copy lacks its samples. Keep the
		 * newer pool; its vectors are of the old version, and the cron
		 * reloads it for this one once no job is running.
		 */
		if (j->np != NULL && cd->pool == j->src && !cd->pool_loading) {
			pool_unref(cd, cd->pool);
			cd->pool = j->np;
		} else
			pool_free(j->np);
		rpc_reply_init(&e, r);
		rb.version = j->mi.version;
		rb.parent = j->mi.parent;
		rb.copy_of = j->from;
		e.body_case = DCCL__ENVELOPE__BODY_ROLLED_BACK;
		e.rolled_back = &rb;
		rpc_reply(cd, r, &e);
	}
	free(j);
	job_idle(&cd->job);
}

void
lifecycle_rollback_rpc(struct cloudd *cd, struct rpc_req *r)
{
	uint64_t v = r->env->admin_rollback->version;
	struct store_model_info mi;
	struct rollback_job *j;
	int rc;

	if (v == 0) {
		rpc_error(cd, r, DCCL__ERROR_CODE__E_BAD_REQUEST,
		    "rollback needs a version");
		return;
	}
	/* One writer of versions at a time; and the pool must be settled. */
	if (cd->training || cd->pool_loading || cd->rolling_back) {
		rpc_error(cd, r, DCCL__ERROR_CODE__E_BUSY, "%s in progress; "
		    "retry later", cd->training ? "training" : cd->rolling_back ?
		    "a rollback" : "a pool load");
		return;
	}
	if ((rc = store_model_info(cd->st, v, &mi)) != 0) {
		rpc_error(cd, r, rc == -ENOENT ? DCCL__ERROR_CODE__E_NOT_FOUND :
		    DCCL__ERROR_CODE__E_STORAGE, "model v%llu: %s",
		    (unsigned long long)v, rc == -ENOENT ? "no such version" :
		    store_errmsg(cd->st));
		return;
	}
	if (v == cd->model.version) {
		rpc_error(cd, r, DCCL__ERROR_CODE__E_BAD_REQUEST,
		    "v%llu is already current", (unsigned long long)v);
		return;
	}
	j = xcalloc(1, sizeof(*j));
	j->cd = cd;
	j->r = r;
	j->src = cd->pool;
	if (j->src != NULL)
		j->src->refs++;
	j->cf = cd->cf;
	j->dbpath = cd->dbpath;
	j->from = v;
	j->parent = cd->model.version;
	j->w.data = j;
	if ((rc = uv_queue_work(&cd->loop, &j->w, rollback_work_cb,
	    rollback_after_cb)) != 0) {
		pool_unref(cd, j->src);
		free(j);
		rpc_error(cd, r, DCCL__ERROR_CODE__E_INTERNAL,
		    "uv_queue_work: %s", uv_strerror(rc));
		return;
	}
	cd->rolling_back = 1;
	job_begin(&cd->job);
	log_info("ROLLBACK: started: v%llu's weights as a new version (current "
	    "v%llu)", (unsigned long long)v,
	    (unsigned long long)cd->model.version);
}

void
lifecycle_prune_rpc(struct cloudd *cd, struct rpc_req *r)
{
	uint32_t keep = r->env->admin_prune->keep;
	struct store_model_info *left = NULL;
	Dccl__Envelope e;
	Dccl__Pruned pr = DCCL__PRUNED__INIT;
	uint64_t *del = NULL, bytes = 0;
	size_t n = 0, nleft = 0;
	char list[256] = "";
	int rc;

	if (keep == 0)
		keep = (uint32_t)cd->cf.models_keep;
	/* The rollback job reads its source version from the store. */
	if (cd->rolling_back) {
		rpc_error(cd, r, DCCL__ERROR_CODE__E_BUSY,
		    "a rollback is in progress; retry later");
		return;
	}
	if ((rc = store_model_prune(cd->st, keep, cd->model.version, &del, &n,
	    &bytes)) != 0 || (rc = store_model_list(cd->st, &left, &nleft))) {
		rpc_error(cd, r, DCCL__ERROR_CODE__E_STORAGE, "prune: %s",
		    store_errmsg(cd->st));
		goto done;
	}
	for (size_t i = 0; i < n; i++) {
		size_t l = strlen(list);
		if (l + 24 >= sizeof(list)) {
			snprintf(list + l, sizeof(list) - l, " ...");
			break;
		}
		snprintf(list + l, sizeof(list) - l, "%sv%llu", i ? " " : "",
		    (unsigned long long)del[i]);
	}
	if (n > 0)	/* no cached chunk of a pruned version is served */
		download_cache_free(cd);
	log_info("PRUNE: deleted %zu versions (%s), %llu bytes; %zu left, "
	    "keep %u + current v%llu", n, n ? list : "none",
	    (unsigned long long)bytes, nleft, keep,
	    (unsigned long long)cd->model.version);
	rpc_reply_init(&e, r);
	pr.n_deleted = n;
	pr.deleted = del;
	pr.bytes = bytes;
	pr.remaining = nleft;
	e.body_case = DCCL__ENVELOPE__BODY_PRUNED;
	e.pruned = &pr;
	rpc_reply(cd, r, &e);
done:
	free(del);
	free(left);
}
