/*
 * admin: GetStatus (both sockets) and the admin requests that read or
 * start things on the daemon itself: the model and device listings and a
 * training run. Loop thread only.
 */
#include <errno.h>
#include <stdlib.h>

#include "cloudd/cloudd.h"
#include "cloudd/rpc.h"
#include "shared/clock.h"
#include "shared/wire.h"
#include "shared/xmalloc.h"

static void
fill_status(struct cloudd *cd, Dccl__Status *st)
{
	st->model_version = cd->model.version;
	st->pool_size = cd->pool ? cd->pool->ds.n : 0;
	st->devices = cd->devs.n;
	/* Counted in memory: a SQL count here cost every GetStatus a scan. */
	st->patches = cd->patches;
	st->uptime = clock_now() - cd->started;
	st->requests = cd->requests;
	st->errors = cd->errors;
	st->inflight = cd->inflight;
	st->server = "cloudd/" CLOUDD_VERSION;
	st->training = cd->training;
	st->last_train_seconds = cd->last_train_s;
	st->last_index_seconds = cd->last_index_s;
	st->dropped = cd->dropped;
}

void
status_rpc(struct cloudd *cd, struct rpc_req *r)
{
	Dccl__Envelope e;
	Dccl__Status st = DCCL__STATUS__INIT;
	Dccl__Metric m[RPC_N_BODIES], *mp[RPC_N_BODIES];
	size_t n = 0;

	fill_status(cd, &st);
	/* Requests by body type, as in dccl_requests_total (summed). */
	for (int t = 0; t < RPC_N_BODIES; t++) {
		if (cd->req[t] == 0)
			continue;
		dccl__metric__init(&m[n]);
		m[n].name = (char *)wire_body_name(t);
		m[n].value = (double)cd->req[t];
		mp[n] = &m[n];
		n++;
	}
	st.n_requests_by_type = n;
	st.requests_by_type = mp;
	rpc_reply_init(&e, r);
	e.body_case = DCCL__ENVELOPE__BODY_STATUS;
	e.status = &st;
	rpc_reply(cd, r, &e);
}

void
list_rpc(struct cloudd *cd, struct rpc_req *r)
{
	Dccl__Envelope e;
	Dccl__Listing l = DCCL__LISTING__INIT;
	struct store_model_info *mi = NULL;
	struct store_device *dv = NULL;
	Dccl__ModelInfo *m = NULL, **mp = NULL;
	Dccl__DeviceInfo *d = NULL, **dp = NULL;
	size_t n = 0;
	int rc;

	if (r->env->admin_list->what == 0) {
		if ((rc = store_model_list(cd->st, &mi, &n)) != 0)
			goto fail;
		m = xcalloc(n + 1, sizeof(*m));
		mp = xcalloc(n + 1, sizeof(*mp));
		for (size_t i = 0; i < n; i++) {
			dccl__model_info__init(&m[i]);
			m[i].version = mi[i].version;
			m[i].parent = mi[i].parent;
			m[i].size = mi[i].size;
			m[i].created = mi[i].created;
			m[i].global_ctr = mi[i].global_ctr;
			m[i].checksum.data = mi[i].checksum;
			m[i].checksum.len = 32;
			m[i].current = mi[i].version == cd->model.version;
			mp[i] = &m[i];
		}
		l.n_models = n;
		l.models = mp;
	} else {
		if ((rc = store_device_list(cd->st, &dv, &n)) != 0)
			goto fail;
		d = xcalloc(n + 1, sizeof(*d));
		dp = xcalloc(n + 1, sizeof(*dp));
		for (size_t i = 0; i < n; i++) {
			dccl__device_info__init(&d[i]);
			d[i].device_id = dv[i].id;
			d[i].user_id = dv[i].user_id;
			d[i].compute_class = dv[i].compute_class;
			d[i].registered = dv[i].registered;
			d[i].last_seen = dv[i].last_seen;
			d[i].patches = dv[i].patches;
			dp[i] = &d[i];
		}
		l.n_devices = n;
		l.devices = dp;
	}
	rpc_reply_init(&e, r);
	e.body_case = DCCL__ENVELOPE__BODY_LISTING;
	e.listing = &l;
	rpc_reply(cd, r, &e);
	goto done;
fail:
	rpc_error(cd, r, DCCL__ERROR_CODE__E_STORAGE, "%s",
	    store_errmsg(cd->st));
done:
	free(mi); free(m); free(mp);
	free(dv); free(d); free(dp);
}

void
train_rpc(struct cloudd *cd, struct rpc_req *r)
{
	Dccl__Envelope e;
	Dccl__TrainStarted ts = DCCL__TRAIN_STARTED__INIT;
	int rc;

	/* A rollback also makes a new version: one writer of versions. */
	if (cd->rolling_back) {
		rpc_error(cd, r, DCCL__ERROR_CODE__E_BUSY,
		    "a rollback is in progress");
		return;
	}
	/* Replicas: a task in the shared store, run by the leader. */
	if (replica_shared(cd)) {
		if ((rc = replica_train(cd, r->env->admin_train->epochs)) != 0) {
			rpc_error(cd, r, DCCL__ERROR_CODE__E_STORAGE, "%s",
			    store_errmsg(cd->st));
			return;
		}
	} else if ((rc = train_start(cd, r->env->admin_train->epochs)) != 0) {
		rpc_error(cd, r, rc == -EBUSY ? DCCL__ERROR_CODE__E_BUSY :
		    DCCL__ERROR_CODE__E_NOT_FOUND, "%s", rc == -EBUSY ?
		    "training already running" : "the pool is empty");
		return;
	}
	rpc_reply_init(&e, r);
	ts.base_version = cd->model.version;
	e.body_case = DCCL__ENVELOPE__BODY_TRAIN_STARTED;
	e.train_started = &ts;
	rpc_reply(cd, r, &e);
}

