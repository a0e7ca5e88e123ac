/*
 * rpc: the request server. Each message from a raw REP socket is decoded,
 * validated and dispatched by body type. Every request gets exactly one
 * reply: its typed reply body or an Error; a message too broken to carry a
 * routable reply is answered with an Error anyway (the routing header is
 * all REP needs), so a device never waits for a timeout. Light requests are
 * answered on the loop thread; retrieval and admin import/training go to
 * the threadpool (see retrieve_rpc.c, import.c, train.c) and reply from
 * their after_cb. An upload is validated here (every rejection answered at
 * once) and then queued for the group commit (upload.c), which stores the
 * uploads of one loop iteration in one transaction at the end of that
 * iteration and acknowledges each after the commit. Loop thread only.
 */
#include <errno.h>
#include <nanomsg/nn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cloudd/cloudd.h"
#include "cloudd/distill.h"
#include "cloudd/guard.h"
#include "cloudd/ofa_train.h"
#include "cloudd/rpc.h"
#include "cloudd/seal.h"
#include "shared/log.h"
#include "shared/wire.h"
#include "shared/xmalloc.h"

/* Upper bounds of the latency histogram, seconds (the last is +Inf). */
const double rpc_buckets[RPC_N_BUCKETS] = { 0.0005, 0.001, 0.0025, 0.005,
	0.01, 0.025, 0.05, 0.1, 0.25, 1, 5, 1e300 };

void
rpc_req_free(struct rpc_req *r)
{
	if (r == NULL)
		return;
	guard_release(r);
	if (r->hdr != NULL)
		nn_freemsg(r->hdr);
	wire_free(r->env);
	free(r);
}

static void
account(struct cloudd *cd, struct rpc_req *r, int code)
{
	double dt = now_s() - r->t0;
	int b = r->body >= 0 && r->body < RPC_N_BODIES ? r->body : 0;
	int c = code >= 0 && code < RPC_N_CODES ? code :
	    DCCL__ERROR_CODE__E_INTERNAL;
	int k = 0;

	cd->requests++;
	cd->req[b]++;
	cd->res[b][c]++;
	if (code != 0) {
		cd->errors++;
		cd->err[code < RPC_N_CODES ? code : 0]++;
	}
	while (k < RPC_N_BUCKETS - 1 && dt > rpc_buckets[k])
		k++;
	cd->lat[b][k]++;
	cd->lat_sum[b] += dt;
	/* Retrievals that ran a search, apart from the ones refused early. */
	if (b == DCCL__ENVELOPE__BODY_RETRIEVE && code == 0) {
		cd->retr_lat[k]++;
		cd->retr_sum += dt;
	}
}

/* Sends reply (a filled envelope) for r and frees r. */
void
rpc_reply(struct cloudd *cd, struct rpc_req *r, Dccl__Envelope *reply)
{
	void *msg;
	size_t len;
	int code = reply->body_case == DCCL__ENVELOPE__BODY_ERROR ?
	    (int)reply->error->code : 0;

	reply->version = WIRE_VERSION;
	if (reply->device_id == NULL || reply->device_id[0] == '\0')
		reply->device_id = "cloudd";
	if (auth_pack_nn(reply, &r->seal, &msg, &len) != 0) {
		log_warnx("RPC-PACK: out of nanomsg memory");
		cd->dropped++;
		account(cd, r, DCCL__ERROR_CODE__E_INTERNAL);
		rpc_req_free(r);
		return;
	}
	rpc_send_packed(cd, r, msg, len, code);
}

/* Sends an already packed reply (from a worker) and frees r. */
void
rpc_send_packed(struct cloudd *cd, struct rpc_req *r, void *msg, size_t len,
    int code)
{
	guard_keep_reply(r, msg, len);	/* for an exact resend */
	if (cd->n_open < 0 || r->sock->sock < 0) {
		nn_freemsg(msg);	/* socket already closed at shutdown */
		cd->dropped++;
	} else if (nnuv_send(r->sock, msg, len, r->hdr) != 0) {
		log_warnx("RPC-SEND: %s", nn_strerror(nn_errno()));
		cd->dropped++;
	}
	r->hdr = NULL;	/* nnuv_send took it */
	account(cd, r, code);
	rpc_req_free(r);
}

void
rpc_error(struct cloudd *cd, struct rpc_req *r, int code, const char *fmt,
    ...)
{
	Dccl__Envelope e = DCCL__ENVELOPE__INIT;
	Dccl__Error er = DCCL__ERROR__INIT;
	char msg[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	er.code = code;
	er.message = msg;
	e.body_case = DCCL__ENVELOPE__BODY_ERROR;
	e.error = &er;
	if (r->env != NULL) {
		e.device_id = wire_devid_valid(r->env->device_id) ?
		    r->env->device_id : "";
		e.request_id = r->env->request_id;
	}
	log_warnx("RPC-ERROR: %s device=%s req=%llu body=%s: %s",
	    wire_error_name(code), r->env ? r->env->device_id : "-",
	    r->env ? (unsigned long long)r->env->request_id : 0ULL,
	    wire_body_name(r->body), msg);
	rpc_reply(cd, r, &e);
}

static void
reply_init(Dccl__Envelope *e, const struct rpc_req *r)
{
	dccl__envelope__init(e);
	e->device_id = r->env->device_id;
	e->request_id = r->env->request_id;
}

static void
h_register(struct cloudd *cd, struct rpc_req *r)
{
	Dccl__RegisterReq *q = r->env->register_req;
	struct store_device d;
	Dccl__Envelope e;
	Dccl__Registered rg = DCCL__REGISTERED__INIT;
	const char *cls = "mid";
	char err[256];
	uint32_t bound;
	int rc, known;

	if (q->capability != NULL && q->capability->compute_class != NULL &&
	    q->capability->compute_class[0] != '\0') {
		cls = q->capability->compute_class;
		if (strcmp(cls, "low") && strcmp(cls, "mid") &&
		    strcmp(cls, "high")) {
			rpc_error(cd, r, DCCL__ERROR_CODE__E_BAD_REQUEST,
			    "compute class must be low, mid or high");
			return;
		}
	}
	if (cd->pool != NULL && cd->pool->ds.n_users > 0 &&
	    q->user_id >= cd->pool->ds.n_users) {
		rpc_error(cd, r, DCCL__ERROR_CODE__E_BAD_REQUEST,
		    "user id %u unknown (pool has %u users)", q->user_id,
		    cd->pool->ds.n_users);
		return;
	}
	if ((rc = guard_register_check(q, cd->guard != NULL &&
	    cd->cf.auth_mode != AUTH_OFF, err, sizeof(err))) != 0) {
		rpc_error(cd, r, rc, "%s", err);
		return;
	}
	/*
	 * The user is bound at enrolment: patches are stored, distilled and
	 * excluded from retrieval under it, so a device may not move itself
	 * to another user later.
	 */
	known = replica_device(cd, r->env->device_id, &bound) == 0;
	if (known && bound != q->user_id) {
		rpc_error(cd, r, DCCL__ERROR_CODE__E_FORBIDDEN, "device %s is "
		    "bound to user %u (a new user needs a new device id)",
		    r->env->device_id, bound);
		return;
	}
	memset(&d, 0, sizeof(d));
	snprintf(d.id, sizeof(d.id), "%s", r->env->device_id);
	d.user_id = q->user_id;
	snprintf(d.compute_class, sizeof(d.compute_class), "%s", cls);
	d.memory_mb = q->capability ? q->capability->memory_mb : 0;
	d.registered = d.last_seen = time(NULL);
	/*
	 * The key is committed before Registered names the cloud's, and
	 * before the devices row: a key refused by the store (another one
	 * enrolled through another replica) leaves that row alone.
	 */
	if ((rc = guard_enroll(cd, r, &rg, err, sizeof(err))) != 0) {
		rpc_error(cd, r, rc, "%s", err);
		return;
	}
	/* A token-only re-registration is answered but changes nothing. */
	if (!(r->reg_token_only && known) &&
	    (rc = store_device_put(cd->st, &d)) != 0) {
		rpc_error(cd, r, DCCL__ERROR_CODE__E_STORAGE, "%s",
		    store_errmsg(cd->st));
		return;
	}
	devtab_put(&cd->devs, d.id, d.user_id);
	log_info("REGISTER: device=%s user=%u class=%s%s", d.id, d.user_id,
	    cls, r->reg_token_only && known ? " (token only: nothing changed)" :
	    "");
	reply_init(&e, r);
	rg.model_version = cd->model.version;
	rg.chunk_size = (uint32_t)cd->cf.chunk_size;
	rg.max_message = (uint32_t)cd->cf.max_message;
	e.body_case = DCCL__ENVELOPE__BODY_REGISTERED;
	e.registered = &rg;
	rpc_reply(cd, r, &e);
}

static void
h_get_model(struct cloudd *cd, struct rpc_req *r)
{
	Dccl__GetModelReq *q = r->env->get_model;
	struct store_model_info mi;
	Dccl__ModelChunk mc = DCCL__MODEL_CHUNK__INIT;
	uint64_t v = q->version ? q->version : cd->model.version;
	uint64_t cs = (uint64_t)cd->cf.chunk_size, off, n_chunks;
	void *buf = NULL;
	int rc;

	if (v == 0) {
		rpc_error(cd, r, DCCL__ERROR_CODE__E_NOT_FOUND,
		    "no model trained yet");
		return;
	}
	if (v == cd->model.version) {
		mi.version = v;
		mi.size = cd->model.size;
		memcpy(mi.checksum, cd->model.checksum, 32);
	} else if ((rc = store_model_info(cd->st, v, &mi)) != 0) {
		rpc_error(cd, r, rc == -ENOENT ? DCCL__ERROR_CODE__E_NOT_FOUND :
		    DCCL__ERROR_CODE__E_STORAGE, "model v%llu: %s",
		    (unsigned long long)v, rc == -ENOENT ? "no such version" :
		    store_errmsg(cd->st));
		return;
	}
	n_chunks = (mi.size + cs - 1) / cs;
	if (q->chunk_index >= n_chunks) {
		rpc_error(cd, r, DCCL__ERROR_CODE__E_NOT_FOUND,
		    "chunk %u out of range (model v%llu has %llu)",
		    q->chunk_index, (unsigned long long)v,
		    (unsigned long long)n_chunks);
		return;
	}
	off = (uint64_t)q->chunk_index * cs;
	mc.data.len = (size_t)(mi.size - off < cs ? mi.size - off : cs);
	if (v == cd->model.version) {
		mc.data.data = (uint8_t *)cd->model.blob + off;
	} else {
		buf = xmalloc(mc.data.len);
		if ((rc = store_model_read(cd->st, v, off, buf, mc.data.len))) {
			free(buf);
			rpc_error(cd, r, DCCL__ERROR_CODE__E_STORAGE,
			    "model v%llu: %s", (unsigned long long)v,
			    store_errmsg(cd->st));
			return;
		}
		mc.data.data = buf;
	}
	mc.version = v;
	mc.chunk_index = q->chunk_index;
	mc.n_chunks = (uint32_t)n_chunks;
	mc.total_size = mi.size;
	mc.checksum.data = mi.checksum;
	mc.checksum.len = 32;
	seal_chunk(cd, r, &mc);
	free(buf);
}

static int
fcmp(const void *a, const void *b)
{
	float x = *(const float *)a, y = *(const float *)b;

	return (x > y) - (x < y);
}

/*
 * The norm limit for the next patch: limits.max-patch-norm, lowered to
 * limits.patch-norm-factor times the median norm of the last NORM_HIST
 * accepted patches once NORM_HIST_MIN were accepted. The median moves
 * only with what was accepted, so a poisoned patch cannot widen it for
 * the next one; it is recomputed every 16 patches.
 */
static double
norm_limit(struct cloudd *cd)
{
	struct normhist *h = &cd->norms;
	double lim = cd->cf.max_patch_norm, rel;

	if (cd->cf.patch_norm_factor <= 0 || h->n < NORM_HIST_MIN)
		return lim;
	if (h->median <= 0 || h->since >= 16) {
		float *tmp = xmalloc(h->n * sizeof(*tmp));
		memcpy(tmp, h->v, h->n * sizeof(*tmp));
		qsort(tmp, h->n, sizeof(*tmp), fcmp);
		h->median = tmp[h->n / 2];
		h->since = 0;
		free(tmp);
	}
	rel = cd->cf.patch_norm_factor * h->median;
	if (rel <= 0)
		return lim;
	return lim > 0 && lim < rel ? lim : rel;
}

static void
norm_record(struct cloudd *cd, double norm)
{
	struct normhist *h = &cd->norms;

	h->v[h->i] = (float)norm;
	h->i = (h->i + 1) % NORM_HIST;
	if (h->n < NORM_HIST)
		h->n++;
	h->since++;
}

static void
h_upload(struct cloudd *cd, struct rpc_req *r, uint32_t user)
{
	Dccl__UploadPatch *q = r->env->upload;
	struct store_model_info mi;
	struct store_patch p;
	char err[256];
	double lim;
	int dup, rc;

	if (q->n_tensors == 0 || q->n_tensors > 64) {
		rpc_error(cd, r, DCCL__ERROR_CODE__E_BAD_REQUEST,
		    "a patch needs 1..64 tensors, got %zu", q->n_tensors);
		return;
	}
	for (size_t i = 0; i < q->n_tensors; i++)
		if ((rc = wire_tensor_check(q->tensors[i],
		    (size_t)cd->cf.max_tensor, err, sizeof(err))) != 0) {
			rpc_error(cd, r, rc, "%s", err);
			return;
		}
	for (size_t i = 0; i < q->n_metrics; i++)
		if (q->metrics[i]->value != q->metrics[i]->value ||
		    q->metrics[i]->value > 1e300 ||
		    q->metrics[i]->value < -1e300) {
			rpc_error(cd, r, DCCL__ERROR_CODE__E_BAD_REQUEST,
			    "metric %s is not finite", q->metrics[i]->name);
			return;
		}
	/* Metrics, norm: a poisoned patch is never stored (guard.c). */
	lim = norm_limit(cd);
	if ((rc = guard_upload_check(q, lim, cd->cf.patch_clip, &dup, err,
	    sizeof(err))) != 0) {
		rpc_error(cd, r, rc, "%s", err);
		return;
	}
	if (dup)
		log_warnx("UPLOAD-CLIPPED: device=%s req=%llu: patch norm "
		    "clipped to %g", r->env->device_id,
		    (unsigned long long)r->env->request_id, lim);
	if ((rc = store_model_info(cd->st, q->base_version, &mi)) != 0) {
		rpc_error(cd, r, rc == -ENOENT ? DCCL__ERROR_CODE__E_STALE :
		    DCCL__ERROR_CODE__E_STORAGE, "base model v%llu: %s",
		    (unsigned long long)q->base_version, rc == -ENOENT ?
		    "unknown" : store_errmsg(cd->st));
		return;
	}
	if ((rc = patch_validate(cd, q, err, sizeof(err))) != 0) {
		rpc_error(cd, r, rc, "%s", err);
		return;
	}
	norm_record(cd, guard_patch_norm(q));
	memset(&p, 0, sizeof(p));
	snprintf(p.device_id, sizeof(p.device_id), "%s", r->env->device_id);
	p.user_id = user;
	p.request_id = r->env->request_id;
	p.base_version = q->base_version;
	snprintf(p.kind, sizeof(p.kind), "%s", q->kind && q->kind[0] ?
	    q->kind : "metapatch");
	p.created = time(NULL);
	p.size = dccl__upload_patch__get_packed_size(q);
	p.blob = xmalloc(p.size);
	dccl__upload_patch__pack(q, p.blob);
	/*
	 * Stored with the other uploads of this loop iteration in one
	 * transaction; the Ack (or E_STORAGE) goes out after its commit.
	 */
	upload_queue(cd, r, &p);
}

void
rpc_fill_status(struct cloudd *cd, Dccl__Status *st)
{
	st->model_version = cd->model.version;
	st->pool_size = cd->pool ? cd->pool->ds.n : 0;
	st->devices = cd->devs.n;
	/* Counted in memory: a SQL count here cost every GetStatus a scan. */
	st->patches = cd->patches;
	st->uptime = now_s() - cd->started;
	st->requests = cd->requests;
	st->errors = cd->errors;
	st->inflight = cd->inflight;
	st->server = "cloudd/" CLOUDD_VERSION;
	st->training = cd->training;
	st->last_train_seconds = cd->last_train_s;
	st->last_index_seconds = cd->last_index_s;
	st->dropped = cd->dropped;
}

static void
h_status(struct cloudd *cd, struct rpc_req *r)
{
	Dccl__Envelope e;
	Dccl__Status st = DCCL__STATUS__INIT;
	Dccl__Metric m[RPC_N_BODIES], *mp[RPC_N_BODIES];
	size_t n = 0;

	rpc_fill_status(cd, &st);
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
	reply_init(&e, r);
	e.body_case = DCCL__ENVELOPE__BODY_STATUS;
	e.status = &st;
	rpc_reply(cd, r, &e);
}

static void
h_list(struct cloudd *cd, struct rpc_req *r)
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
	reply_init(&e, r);
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

static void
h_train(struct cloudd *cd, struct rpc_req *r)
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
	reply_init(&e, r);
	ts.base_version = cd->model.version;
	e.body_case = DCCL__ENVELOPE__BODY_TRAIN_STARTED;
	e.train_started = &ts;
	rpc_reply(cd, r, &e);
}

/* dcctl enroll: the key goes into the store shared by every replica. */
static void
h_enroll(struct cloudd *cd, struct rpc_req *r)
{
	Dccl__Envelope e;
	Dccl__Enrolled en = DCCL__ENROLLED__INIT;
	char err[256];
	int code;

	if ((code = guard_admin_enroll(cd, r->env->admin_enroll, &en, err,
	    sizeof(err))) != 0) {
		rpc_error(cd, r, code, "%s", err);
		return;
	}
	reply_init(&e, r);
	e.body_case = DCCL__ENVELOPE__BODY_ENROLLED;
	e.enrolled = &en;
	rpc_reply(cd, r, &e);
}

void
rpc_recv_cb(struct nnuv *s, void *msg, size_t len, void *hdr)
{
	struct cloudd *cd = s->data;
	struct rpc_req *r = xcalloc(1, sizeof(*r));
	int admin = (s == &cd->adm);
	char err[256];
	uint32_t user = 0;
	int code;

	r->cd = cd;
	r->sock = s;
	r->hdr = hdr;
	r->t0 = now_s();
	/* Refuse what a device may not send before unpacking allocates. */
	code = admin ? 0 : wire_precheck_device(msg, len, err, sizeof(err));
	if (code == 0)
		code = wire_unpack(msg, len, &r->env, err, sizeof(err));
	/* Authentication and rate limits need the bytes as received. */
	if (code == 0 && !admin && !cd->stopping)
		code = guard_admit(cd, r, msg, len, err, sizeof(err));
	nn_freemsg(msg);
	if (r->env != NULL)
		r->body = r->env->body_case;
	if (code != 0) {
		rpc_error(cd, r, code, "%s", err);
		return;
	}
	if (cd->stopping) {
		rpc_error(cd, r, DCCL__ERROR_CODE__E_SHUTTING_DOWN,
		    "cloudd is shutting down");
		return;
	}
	if (r->resend) {
		/* Not executed again: the first reply's bytes, nonce and all. */
		void *out;
		size_t olen;
		if (guard_cached_reply(r, &out, &olen) == 0) {
			rpc_send_packed(cd, r, out, olen, 0);
			return;
		}
	}
	switch (r->body) {
	case DCCL__ENVELOPE__BODY_GET_STATUS:
		h_status(cd, r);
		return;
	case DCCL__ENVELOPE__BODY_REGISTER_REQ:
		if (admin)
			break;	/* refused below */
		h_register(cd, r);
		return;
	case DCCL__ENVELOPE__BODY_ADMIN_IMPORT:
	case DCCL__ENVELOPE__BODY_ADMIN_TRAIN:
	case DCCL__ENVELOPE__BODY_ADMIN_LIST:
	case DCCL__ENVELOPE__BODY_ADMIN_METRICS:
	case DCCL__ENVELOPE__BODY_ADMIN_MODEL_SHOW:
	case DCCL__ENVELOPE__BODY_ADMIN_ROLLBACK:
	case DCCL__ENVELOPE__BODY_ADMIN_PRUNE:
	case DCCL__ENVELOPE__BODY_ADMIN_DISTILL:
	case DCCL__ENVELOPE__BODY_ADMIN_ENROLL:
		if (!admin) {
			rpc_error(cd, r, DCCL__ERROR_CODE__E_FORBIDDEN,
			    "admin requests only on the admin socket");
			return;
		}
		switch (r->body) {
		case DCCL__ENVELOPE__BODY_ADMIN_LIST: h_list(cd, r); break;
		case DCCL__ENVELOPE__BODY_ADMIN_TRAIN: h_train(cd, r); break;
		case DCCL__ENVELOPE__BODY_ADMIN_IMPORT:
			/* Its pool reload would race the rollback's. */
			if (cd->rolling_back)
				rpc_error(cd, r, DCCL__ERROR_CODE__E_BUSY,
				    "a rollback is in progress; retry later");
			else
				import_rpc(cd, r);
			break;
		case DCCL__ENVELOPE__BODY_ADMIN_METRICS:
			metrics_rpc(cd, r);
			break;
		case DCCL__ENVELOPE__BODY_ADMIN_MODEL_SHOW:
			lifecycle_show_rpc(cd, r);
			break;
		case DCCL__ENVELOPE__BODY_ADMIN_ROLLBACK:
			lifecycle_rollback_rpc(cd, r);
			break;
		case DCCL__ENVELOPE__BODY_ADMIN_DISTILL:
			distill_rpc(cd, r);
			break;
		case DCCL__ENVELOPE__BODY_ADMIN_ENROLL:
			h_enroll(cd, r);
			break;
		default:
			lifecycle_prune_rpc(cd, r);
			break;
		}
		return;
	case DCCL__ENVELOPE__BODY_GET_MODEL:
	case DCCL__ENVELOPE__BODY_GET_OFA:
	case DCCL__ENVELOPE__BODY_RETRIEVE:
	case DCCL__ENVELOPE__BODY_UPLOAD:
		break;
	default:
		rpc_error(cd, r, DCCL__ERROR_CODE__E_UNKNOWN_BODY,
		    "'%s' is not a request", wire_body_name(r->body));
		return;
	}
	/*
	 * The admin socket authenticates nobody, so it takes no device
	 * request: an upload there would be stored under a device id and
	 * user nobody proved.
	 */
	if (admin) {
		rpc_error(cd, r, DCCL__ERROR_CODE__E_FORBIDDEN, "device "
		    "requests only on the device socket");
		return;
	}
	/* Device requests: the device must be registered. */
	if (replica_device(cd, r->env->device_id, &user) != 0) {
		rpc_error(cd, r, DCCL__ERROR_CODE__E_NOT_REGISTERED,
		    "device %s is not registered", r->env->device_id);
		return;
	}
	if (r->body == DCCL__ENVELOPE__BODY_GET_MODEL)
		h_get_model(cd, r);
	else if (r->body == DCCL__ENVELOPE__BODY_UPLOAD)
		h_upload(cd, r, user);
	else if (r->body == DCCL__ENVELOPE__BODY_GET_OFA)
		ofa_rpc(cd, r);
	else
		retrieve_rpc(cd, r, user);
}

void
rpc_announce(struct cloudd *cd)
{
	Dccl__Envelope e = DCCL__ENVELOPE__INIT;
	Dccl__ModelAnnounce a = DCCL__MODEL_ANNOUNCE__INIT;
	void *msg;
	size_t len;

	if (cd->n_open < 0)
		return;
	e.version = WIRE_VERSION;
	e.device_id = "cloudd";
	a.version = cd->model.version;
	a.parent = cd->model.parent;
	a.size = cd->model.size;
	a.checksum.data = cd->model.checksum;
	a.checksum.len = 32;
	e.body_case = DCCL__ENVELOPE__BODY_ANNOUNCE;
	e.announce = &a;
	if (wire_pack_nn(&e, &msg, &len) != 0 ||
	    nnuv_send(&cd->pub, msg, len, NULL) != 0)
		cd->dropped++;
	log_info("ANNOUNCE: model v%llu (%zu bytes)",
	    (unsigned long long)cd->model.version, cd->model.size);
}
