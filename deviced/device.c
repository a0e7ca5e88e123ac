/*
 * device: one device's lifecycle over the protocol, as a state machine on
 * the loop thread:
 *
 *   REGISTER -> DOWNLOAD (chunks, resumable, checksum) [-> OFA (Forward-OFA
 *   parts, ofa_dev.c)] -> RETRIEVE (CoDA coarse matching) -> TRAIN
 *   (threadpool, learn.c) -> UPLOAD (outbox, idempotent request id) -> IDLE
 *   -> on a newer announced version, DOWNLOAD (README: the state table)
 *
 * The machine is a dispatch table (states[]): a state's handler sends its
 * request and returns its own state (wait for the reply), or returns the
 * state to go to when it has nothing to send; enter() runs handlers until
 * one waits. Replies, timers and the learning job's end call enter() with
 * the state they lead to. Nothing above this file is named here: the app
 * interface (app.c) hears of jobs and shutdown through the hooks it sets
 * (struct device_hooks, deviced.h).
 *
 * Each request has a reply deadline; a missing reply or a retryable error
 * (busy, storage, shutting down) backs off exponentially with jitter and
 * resends, one log line per attempt, so an unreachable cloud costs a timer,
 * not a busy loop. Not-registered sends the device back to REGISTER.
 */
#include <errno.h>
#include <unistd.h>
#include <nanomsg/nn.h>
#include <nanomsg/reqrep.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "deviced/delay.h"
#include "deviced/dev_model.h"
#include "deviced/deviced.h"
#include "deviced/device_load.h"
#include "deviced/dp.h"
#include "deviced/fedsel.h"
#include "deviced/learn.h"
#include "deviced/model_fit.h"
#include "deviced/ofa_dev.h"
#include "deviced/uplink.h"
#include "shared/auth.h"
#include "shared/ml/ctr.h"
#include "shared/ml/ctr_io.h"
#include "shared/ml/encoder_io.h"
#include "shared/data/dataset.h"
#include "shared/fsutil.h"
#include "shared/log.h"
#include "shared/manifest.h"
#include "shared/ml/ctr_slice.h"
#include "shared/notify.h"
#include "shared/wire.h"
#include "shared/xmalloc.h"

static void enter(struct device *d, enum dev_state s);
static void backoff(struct device *d, const char *why);
static void resend(struct device *d);
static void arm(struct device *d);
static int model_wanted(const struct device *d);

/*
 * 1 if d's request still waits for an uplink lane, or left less than
 * net.request-timeout-ms ago: then the deadline is moved to count from
 * when it left (a host of hundreds of devices queues their requests for
 * its few lanes; that wait is no sign of a lost reply) and the timer is
 * armed again.
 */
static int
queued(struct device *d)
{
	double now = (double)uv_now(&d->dd->loop);
	double tmo = (double)d->dd->cf.request_timeout_ms;
	uint64_t at;

	if (uplink_sent_at(&d->dd->up, (uint32_t)(d - d->dd->dev), &at) == 0) {
		if ((double)at + tmo <= d->deadline)
			return 0;
		d->deadline = (double)at + tmo;
		if (now >= d->deadline)
			return 0;
	} else
		d->deadline = now + tmo;
	arm(d);
	return 1;
}

static void
timer_cb(uv_timer_t *t)
{
	struct device *d = t->data;

	if (d->dd->stopping)
		return;
	if (d->waiting && queued(d))
		return;		/* not out yet: nothing to re-send or time */
	if (d->waiting && (double)uv_now(&d->dd->loop) < d->deadline &&
	    d->state != DEV_DOWNLOAD && d->state != DEV_OFA) {
		resend(d);
		return;
	}
	if (d->waiting) {
		/*
		 * A loop busy for longer than the deadline (installs, stores,
		 * hundreds of devices) runs this timer before it polls: read
		 * what already arrived first, so a reply that came in time
		 * is no timeout (and no second copy of a chunk).
		 */
		uint64_t rid = d->req_id;
		uint32_t sp = d->sp_id;
		uplink_drain(&d->dd->up);
		if (!d->waiting || d->req_id != rid || d->sp_id != sp ||
		    d->dd->stopping)
			return;	/* answered: recv_cb moved it on */
		d->dd->n_timeout++;
		log_warnx("TIMEOUT: device=%s %s req=%llu: no reply in %lld ms",
		    d->id, device_state_name(d->state),
		    (unsigned long long)d->req_id,
		    (long long)d->dd->cf.request_timeout_ms);
		backoff(d, "no reply");
		return;
	}
	enter(d, d->state);	/* the backoff elapsed: try again */
}

/* Schedules a retry of the current state after an exponential backoff. */
static void
backoff(struct device *d, const char *why)
{
	const struct deviced_conf *cf = &d->dd->cf;
	double ms = (double)cf->backoff_min_ms;
	int a = d->attempt < 30 ? d->attempt : 30;

	if (d->retry_after > 0) {
		/* The cloud said when: then, spread by up to an eighth so
		 * the devices it turned away together do not return together.
		 * Not more: the cloud spreads its hints itself (a retrieval's
		 * is an appointment, cloudd/appoint.h), and every ms past
		 * the hint is a ms the cloud's capacity may idle. */
		ms = (double)d->retry_after;
		/* A retrieval's hint is an appointment, one turn apart from
		 * the others' (cloudd/appoint.h): kept as given. */
		if (d->state != DEV_RETRIEVE)
			ms += (double)randombytes_uniform(d->retry_after / 8 +
			    1);
		d->retry_after = 0;
	} else {
		for (int i = 0; i < a && ms < cf->backoff_max_ms; i++)
			ms *= 2;
		if (ms > cf->backoff_max_ms)
			ms = (double)cf->backoff_max_ms;
		ms = ms / 2 +
		    (double)randombytes_uniform((uint32_t)(ms / 2) + 1);
	}
	d->attempt++;
	log_info("RETRY: device=%s %s attempt %d in %.0f ms (%s)", d->id,
	    device_state_name(d->state), d->attempt, ms, why);
	d->waiting = 0;
	uv_timer_start(&d->timer, timer_cb, (uint64_t)ms, 0);
}

/*
 * Requests go out on a raw REQ socket: deviced numbers them itself (the
 * nanomsg header) and keeps only the reply to its latest send. nanomsg
 * 1.1.5's own REQ state machine aborts in nn_recvmsg when replies arrive
 * for requests it has re-sent or dropped (tests/integ/late_replies.sh).
 */
static int
transmit(struct device *d, Dccl__Envelope *e)
{
	void *msg;
	size_t len;

	/* Signed (and sealed) with the device's keys: shared/auth.h. */
	if (auth_dev_pack(d->auth, e, &msg, &len) != 0)
		return -1;
	d->sp_id = (d->sp_id + 1) & UPLINK_SEQ_MASK;
	d->sent_ctr = e->counter;
	d->sent_body = e->body_case;
	d->bytes_up += len;
	if (d->state == DEV_RETRIEVE)
		*(d->ret_pass ? &d->b_retu_up : &d->b_ret_up) += len;
	else if (d->state == DEV_OFA)
		ofa_dev_bytes(d, 1, len);
	else if (d->state != DEV_UPLOAD)
		d->b_reg += len;	/* register + chunk requests */
	/* The host's one connection (uplink.h); the slot routes the reply. */
	return uplink_send(&d->dd->up, (uint32_t)(d - d->dd->dev), d->sp_id,
	    msg, len);
}

/* Arms the timer for the next re-send, or for the deadline if sooner. */
static void
arm(struct device *d)
{
	double now = (double)uv_now(&d->dd->loop);
	double ms = (double)d->dd->cf.resend_ms;

	/*
	 * A chunk request is never re-sent while it may still be served: a
	 * second copy would cost the cloud another chunk and, under load,
	 * feed the congestion that delays the first. Its deadline decides.
	 */
	if (d->state == DEV_DOWNLOAD || d->state == DEV_OFA)
		ms = d->deadline - now;
	if (now + ms > d->deadline)
		ms = d->deadline > now ? d->deadline - now : 0;
	uv_timer_start(&d->timer, timer_cb, (uint64_t)ms, 0);
}

static void
send_req(struct device *d, Dccl__Envelope *e)
{
	e->version = WIRE_VERSION;
	e->device_id = d->id;
	if (e->request_id == 0)
		e->request_id = ++d->req_id;
	else
		d->req_id = e->request_id;
	/* Kept unsealed: a re-send is sealed again, with a new counter. */
	free(d->pend);
	d->pend_len = dccl__envelope__get_packed_size(e);
	d->pend = xmalloc(d->pend_len ? d->pend_len : 1);
	dccl__envelope__pack(e, d->pend);
	if (transmit(d, e) != 0) {
		backoff(d, "cannot seal or send the request");
		return;
	}
	d->dd->n_req++;
	d->sp_first = d->sp_id;
	d->first_ctr = d->sent_ctr;
	d->waiting = 1;
	/*
	 * The loop's clock is read once per iteration; one that ran many
	 * callbacks (installs, job ends of hundreds of devices) would date
	 * this send seconds back, and its timer would fire at once.
	 */
	uv_update_time(&d->dd->loop);
	d->deadline = (double)uv_now(&d->dd->loop) +
	    (double)d->dd->cf.request_timeout_ms;
	arm(d);
}

/*
 * No reply within net.resend-ms: the same request again, as a new send
 * (a replica that died took the first one with it; the load balancer
 * picks a live pipe). Uploads stay idempotent by request id.
 */
static void
resend(struct device *d)
{
	Dccl__Envelope *e;
	char err[256];

	if (wire_unpack(d->pend, d->pend_len, &e, err, sizeof(err)) != 0) {
		wire_free(e);
		backoff(d, "cannot re-send");
		return;
	}
	d->dd->n_resend++;
	log_debug("RESEND: device=%s %s req=%llu", d->id,
	    device_state_name(d->state), (unsigned long long)d->req_id);
	if (transmit(d, e) != 0) {
		wire_free(e);
		backoff(d, "cannot seal or send the request");
		return;
	}
	wire_free(e);
	arm(d);
}

/* ---- the states' handlers: each returns the state to be in next ---------- */

static enum dev_state
st_register(struct device *d)
{
	Dccl__Envelope e = DCCL__ENVELOPE__INIT;
	Dccl__RegisterReq r = DCCL__REGISTER_REQ__INIT;
	Dccl__Capability c = DCCL__CAPABILITY__INIT;

	c.compute_class = d->dd->cf.compute_class;
	c.memory_mb = (uint32_t)d->dd->cf.memory_mb;
	c.flops_budget = (uint64_t)d->dd->cf.flops_budget;
	r.user_id = d->user;
	r.capability = &c;
	r.software = "deviced/" DEVICED_VERSION;
	r.pubkey.data = d->auth->pk;
	r.pubkey.len = sizeof(d->auth->pk);
	e.body_case = DCCL__ENVELOPE__BODY_REGISTER_REQ;
	e.register_req = &r;
	send_req(d, &e);
	return DEV_REGISTER;
}

/* Forgets the download's manifest (done, refused, or a bad chunk). */
static void
drop_manifest(struct device *d)
{
	wire_free(d->dl_man);
	d->dl_man = NULL;
}

static enum dev_state
st_download(struct device *d)
{
	Dccl__Envelope e = DCCL__ENVELOPE__INIT;
	Dccl__GetModelReq g = DCCL__GET_MODEL_REQ__INIT;
	Dccl__GetManifestReq mq = DCCL__GET_MANIFEST_REQ__INIT;

	if (d->dl_man == NULL || d->dl_man->manifest->version !=
	    d->dl_version) {
		/* Protocol 5: the version's manifest first, once. */
		drop_manifest(d);
		mq.version = d->dl_version;
		e.body_case = DCCL__ENVELOPE__BODY_GET_MANIFEST;
		e.get_manifest = &mq;
		send_req(d, &e);
		return DEV_DOWNLOAD;
	}

	/* asked for already, while the chunk before it was checked */
	if (d->waiting && d->dl_ahead == d->dl_next + 1 &&
	    d->sent_body == DCCL__ENVELOPE__BODY_GET_MODEL)
		return DEV_DOWNLOAD;
	d->dl_ahead = 0;
	if (d->dl_next == 0 && dstore_dl_next(d->st, d->dl_version,
	    &d->dl_next) == 0 && d->dl_next > 0)
		log_info("DOWNLOAD: device=%s resuming model v%llu at chunk %u "
		    "(chunks 0..%u are in its store)", d->id,
		    (unsigned long long)d->dl_version, d->dl_next,
		    d->dl_next - 1);
	g.version = d->dl_version;
	g.chunk_index = d->dl_next;
	e.body_case = DCCL__ENVELOPE__BODY_GET_MODEL;
	e.get_model = &g;
	send_req(d, &e);
	return DEV_DOWNLOAD;
}

/* Forward-OFA: the next part, or on to the state after it (ofa_dev.c). */
static enum dev_state
st_ofa(struct device *d)
{
	Dccl__Envelope e = DCCL__ENVELOPE__INIT;
	Dccl__GetOfaReq g;
	int then;

	if (ofa_dev_next(d, &g, &then) != 0)
		return (enum dev_state)then;
	e.body_case = DCCL__ENVELOPE__BODY_GET_OFA;
	e.get_ofa = &g;
	send_req(d, &e);
	return DEV_OFA;
}

static enum dev_state
st_retrieve(struct device *d)
{
	const struct deviced_conf *cf = &d->dd->cf;
	Dccl__Envelope e = DCCL__ENVELOPE__INIT;
	Dccl__RetrieveReq q = DCCL__RETRIEVE_REQ__INIT;
	size_t n = d->local.n, first;
	int dim = ctr_repr_dim(d->model);
	uint32_t *idx;

	/* The cloud's chosen settings first, once per model (fedsel.c). */
	if (fedsel_dev_wanted(d) && d->fedsel_version != d->version)
		return DEV_SELECT;
	if (cf->retrieve_k == 0 || n == 0 || !learn_wants_retrieved(d))
		return DEV_TRAIN;
	/* The most recent samples describe the user best. */
	if (n > (size_t)cf->retrieve_queries)
		n = (size_t)cf->retrieve_queries;
	first = d->local.n - n;
	idx = xcalloc(n, sizeof(*idx));
	for (size_t i = 0; i < n; i++)
		idx[i] = (uint32_t)(first + i);
	q.model_version = d->version;
	q.dim = (uint32_t)dim;
	q.n = (uint32_t)n;
	q.n_vectors = n * dim;
	q.vectors = xcalloc(n * dim, sizeof(float));
	ctr_repr(d->model, &d->local, idx, n, q.vectors);
	if (dp_device_vectors(d, q.vectors, n, dim) != 0) {
		/* No budget for them: train on local data only. */
		free(q.vectors);
		free(idx);
		return DEV_TRAIN;
	}
	q.k = (uint32_t)cf->retrieve_k;
	q.mode = cf->retrieve_mode || d->ret_pass ?
	    DCCL__RETRIEVE_MODE__MODE_USERS : DCCL__RETRIEVE_MODE__MODE_SAMPLES;
	e.body_case = DCCL__ENVELOPE__BODY_RETRIEVE;
	e.retrieve = &q;
	send_req(d, &e);
	free(q.vectors);
	free(idx);
	return DEV_RETRIEVE;
}

/*
 * Uploads the outbox now, or after learn.delay-ms scaled by this device's
 * draw (delay.h): the timer's callback re-enters DEV_UPLOAD. A model
 * announced meanwhile is fetched after the upload, so the patch arrives
 * stale, as a slow device's would.
 */
static void
upload_later(struct device *d)
{
	const struct deviced_conf *cf = &d->dd->cf;
	uint64_t ms = delay_draw(cf->delay_dist, cf->delay_ms,
	    (uint64_t)cf->delay_seed, d->id, d->version);

	if (ms == 0) {
		enter(d, DEV_UPLOAD);
		return;
	}
	log_info("DELAY: device=%s upload of v%llu's patch in %llu ms", d->id,
	    (unsigned long long)d->version, (unsigned long long)ms);
	d->state = DEV_UPLOAD;
	d->attempt = 0;
	d->waiting = 0;
	uv_timer_start(&d->timer, timer_cb, ms, 0);
}

/*
 * The job's serving model goes to the owner's hook (app.c ranks with it,
 * and merges the events recorded during the job), else nowhere.
 */
static void
job_done(struct device *d, int ok)
{
	if (d->hooks != NULL && d->hooks->job_done != NULL)
		d->hooks->job_done(d, ok);
	ctr_free(d->job_serving);
	d->job_serving = NULL;
}

/* The learning job's end (loop thread): apply its result, then upload. */
static void
learn_after_cb(uv_work_t *w, int status)
{
	struct device *d = w->data;
	Dccl__UploadPatch up = DCCL__UPLOAD_PATCH__INIT;
	Dccl__Metric m[6], *mp[6];
	const char *names[6] = { "local_samples", "retrieved", "val_logloss_base",
		"val_logloss_patched", "dp_epsilon", "dp_rho" };
	double vals[6];
	int nm;
	uint64_t rid;
	uint8_t *blob;
	size_t len;

	d->dd->jobs--;
	learn_apply(d);		/* the job's result into d (learn.h) */
	if (status != 0 || d->job_rc != 0 || d->dd->stopping) {
		job_done(d, 0);
		if (!d->dd->stopping)
			log_warnx("TRAIN: device=%s failed: %s", d->id,
			    status ? "cancelled" : d->job_err);
		ctr_io_tensors_free(d->patch, d->n_patch);
		d->patch = NULL;
		if (!d->dd->stopping)
			enter(d, DEV_IDLE);
		return;
	}
	log_info("TRAIN: device=%s %zu local + %zu/%zu retrieved samples, val "
	    "logloss %.4f -> %.4f, %s, uploads %s, %.1f ms", d->id,
	    d->local.n, d->kept, d->retrieved.n, d->val_before, d->val_after,
	    d->adopted ? "patch adopted" : "kept the cloud model",
	    d->taught ? "its MetaPatch" : "the cloud's rows",
	    d->train_s * 1e3);
	/* Differential privacy: clip + noise what goes up (dp.c). */
	if (dp_device_patch(d) != 0) {
		job_done(d, 0);
		ctr_io_tensors_free(d->patch, d->n_patch);
		d->patch = NULL;
		enter(d, DEV_IDLE);
		return;
	}
	vals[0] = (double)d->local.n;
	vals[1] = (double)d->retrieved.n;
	vals[2] = d->val_before;
	vals[3] = d->val_after;
	vals[4] = dp_epsilon(d->dp_rho, d->dd->cf.dp_delta);
	vals[5] = d->dp_rho;
	/*
	 * With DP on, the sample counts and validation losses would go up
	 * unnoised, outside epsilon: only the budget itself is sent.
	 */
	{
		int first = d->dd->cf.dp_clip > 0 ? 4 : 0;
		nm = 0;
		for (int i = first; i < (d->dp_rho > 0 ? 6 : 4); i++) {
			dccl__metric__init(&m[nm]);
			m[nm].name = (char *)names[i];
			m[nm].value = vals[i];
			mp[nm] = &m[nm];
			nm++;
		}
	}
	up.base_version = d->version;
	up.n_tensors = d->n_patch;
	up.tensors = d->patch;
	up.n_metrics = (size_t)nm;
	up.metrics = mp;
	up.kind = "metapatch";
	len = dccl__upload_patch__get_packed_size(&up);
	blob = xmalloc(len);
	dccl__upload_patch__pack(&up, blob);
	ctr_io_tensors_free(d->patch, d->n_patch);
	d->patch = NULL;
	/* Persist before sending: a resend after a crash reuses the id. */
	if (dstore_next_request_id(d->st, &rid) != 0 ||
	    dstore_outbox_put(d->st, rid, d->version, blob, len) != 0 ||
	    dstore_kv_set(d->st, "trained_last_id", d->local_last_id) != 0)
		log_warnx("OUTBOX: device=%s: %s", d->id,
		    dstore_errmsg(d->st));
	free(blob);
	job_done(d, 1);		/* serve the job's model (app.c) */
	d->trained_version = d->version;
	upload_later(d);
}

static enum dev_state
st_upload(struct device *d)
{
	Dccl__Envelope e = DCCL__ENVELOPE__INIT;
	Dccl__UploadPatch *up;
	uint64_t rid, base;
	void *blob;
	size_t len;

	if (dstore_outbox_pending(d->st, &rid, &base, &blob, &len) != 0)
		return d->report != NULL ? DEV_REPORT : DEV_IDLE;
	up = dccl__upload_patch__unpack(NULL, len, blob);
	free(blob);
	if (up == NULL) {
		log_warnx("OUTBOX: device=%s: corrupt entry %llu dropped",
		    d->id, (unsigned long long)rid);
		dstore_outbox_ack(d->st, rid, 0);
		return DEV_IDLE;
	}
	e.request_id = rid;
	e.body_case = DCCL__ENVELOPE__BODY_UPLOAD;
	e.upload = up;
	send_req(d, &e);
	dccl__upload_patch__free_unpacked(up, NULL);
	return DEV_UPLOAD;
}

/* Federated selection (fedsel.c): the cloud's choice for this model. */
static enum dev_state
st_select(struct device *d)
{
	Dccl__Envelope e = DCCL__ENVELOPE__INIT;
	Dccl__GetSelectionReq g = DCCL__GET_SELECTION_REQ__INIT;

	g.model_version = d->version;
	e.body_case = DCCL__ENVELOPE__BODY_GET_SELECTION;
	e.get_selection = &g;
	send_req(d, &e);
	return DEV_SELECT;
}

/* The last job's grid report, after its patch (not kept over a restart). */
static enum dev_state
st_report(struct device *d)
{
	Dccl__Envelope e = DCCL__ENVELOPE__INIT;
	Dccl__SelectReport *q;

	if (d->report == NULL)
		return DEV_IDLE;
	if ((q = dccl__select_report__unpack(NULL, d->report_len,
	    d->report)) == NULL) {
		free(d->report);
		d->report = NULL;
		return DEV_IDLE;
	}
	e.body_case = DCCL__ENVELOPE__BODY_SELECT_REPORT;
	e.select_report = q;
	send_req(d, &e);
	dccl__select_report__free_unpacked(q, NULL);
	return DEV_REPORT;
}

/* The learning job, in the threadpool (learn.c); learn_after_cb ends it. */
static enum dev_state
st_train(struct device *d)
{
	d->ret_pass = 0;
	d->work.data = d;
	d->dd->jobs++;
	uv_queue_work(&d->dd->loop, &d->work, learn_work_cb, learn_after_cb);
	return DEV_TRAIN;
}

/* Work for an idle device: a newer model, OFA blocks, a job the owner wants. */
static enum dev_state
st_idle(struct device *d)
{
	if (d->dd->cf.run_once && d->trained_version != 0) {
		d->t_done = uv_hrtime() / 1e9;
		log_info("DONE: device=%s model v%llu, %llu bytes up, %llu down",
		    d->id, (unsigned long long)d->version,
		    (unsigned long long)d->bytes_up,
		    (unsigned long long)d->bytes_down);
		d->dd->n_done++;
		if (d->dd->n_done + d->dd->n_refused == d->dd->max_dev)
			uv_stop(&d->dd->loop);
		return DEV_DONE;
	}
	if (model_wanted(d)) {
		d->dl_version = d->announced;
		d->dl_next = 0;
		return DEV_DOWNLOAD;
	}
	if (ofa_dev_pending(d))
		return DEV_OFA;		/* blocks for new samples */
	if (d->hooks != NULL && d->hooks->job_wanted != NULL &&
	    d->hooks->job_wanted(d))
		return DEV_RETRIEVE;	/* new local samples (app.c) */
	return DEV_IDLE;
}

static enum dev_state
st_done(struct device *d)
{
	(void)d;
	return DEV_DONE;
}

static const struct {
	const char	*name;
	enum dev_state	(*run)(struct device *);
} states[] = {
	[DEV_REGISTER]	= { "register",	st_register },
	[DEV_DOWNLOAD]	= { "download",	st_download },
	[DEV_RETRIEVE]	= { "retrieve",	st_retrieve },
	[DEV_TRAIN]	= { "train",	st_train },
	[DEV_UPLOAD]	= { "upload",	st_upload },
	[DEV_IDLE]	= { "idle",	st_idle },
	[DEV_DONE]	= { "done",	st_done },
	[DEV_OFA]	= { "ofa",	st_ofa },
	[DEV_SELECT]	= { "select",	st_select },
	[DEV_REPORT]	= { "report",	st_report },
};

/* More handlers in a row than the machine can take without waiting. */
#define DEV_MAX_STEPS	16

/*
 * Goes to state s and runs handlers until one waits (returns its own
 * state). A new state starts with a fresh retry count.
 */
static void
enter(struct device *d, enum dev_state s)
{
	for (int step = 0; !d->dd->stopping; step++) {
		enum dev_state next;

		if (step == DEV_MAX_STEPS) {
			/* A bug, not the cloud's doing: wait, then go on. */
			log_warnx("STATE: device=%s no request after %d "
			    "states (at %s)", d->id, step, states[s].name);
			backoff(d, "state machine loop");
			return;
		}
		if (s != d->state)
			d->attempt = 0;
		d->state = s;
		if ((next = states[s].run(d)) == s)
			return;
		s = next;
	}
}

const char *
device_state_name(enum dev_state s)
{
	return (unsigned)s < sizeof(states) / sizeof(states[0]) ?
	    states[s].name : "?";
}

/* A newer model than the device has, and not one it refused. */
static int
model_wanted(const struct device *d)
{
	return d->announced > d->version && d->announced > d->refused;
}

/*
 * Protocol 7: a manifest carries the device's own rows, for the user it
 * registered as (their shapes are ctr_slice_assemble's check, at install).
 */
static int
rows_check(const struct device *d, const Dccl__Manifest *m)
{
	if (m->rows == NULL || m->rows->user_id != d->user ||
	    m->rows->n_tensors > CTR_SLICE_MAX_TENSORS)
		return MANIFEST_ESHAPE;
	return 0;
}

/*
 * A manifest in reply to our GetManifestReq (e, authenticated like every
 * reply): kept when it is for the version asked and consistent. Takes e.
 */
static void
on_manifest(struct device *d, Dccl__Envelope *e)
{
	const Dccl__Manifest *m = e->manifest;
	int rc = MANIFEST_EVERSION;	/* not what we asked for */

	if (d->sent_body != DCCL__ENVELOPE__BODY_GET_MANIFEST ||
	    (rc = manifest_check(m, d->dl_version, CTR_IO_MAX_BYTES)) != 0 ||
	    (rc = rows_check(d, m)) != 0) {
		log_warnx("BAD-MANIFEST: device=%s %s (v%llu, asked v%llu); "
		    "refused", d->id, manifest_errname(rc),
		    (unsigned long long)m->version,
		    (unsigned long long)d->dl_version);
		wire_free(e);
		backoff(d, "manifest refused");
		return;
	}
	if (d->dl_version != m->version) {
		/* "latest" resolved to a concrete version */
		if (d->dl_next != 0)
			dstore_dl_clear(d->st);
		d->dl_version = m->version;
		d->dl_next = 0;
	}
	drop_manifest(d);
	d->dl_man = e;
	d->dl_checked = 0;
	uv_update_time(&d->dd->loop);
	d->dl_t0 = (double)uv_now(&d->dd->loop);
	/*
	 * attempt is not reset here but by the next chunk kept: else a path
	 * that corrupts every chunk would have the device fetch manifest and
	 * chunk again at the shortest backoff for ever.
	 */
	enter(d, DEV_DOWNLOAD);	/* its chunks */
}

static void	chunk_take(struct device *, const Dccl__ModelChunk *);

/*
 * Issue 14: asks for the chunk after c before c is hashed and stored, so
 * the cloud packs and sends it meanwhile (one request ahead: cloudd's raw
 * REP socket holds one reply per pipe, and c's has arrived). Only for the
 * chunk the download needs next, under the current manifest. Should c
 * then be refused or fail to store, the backoff ends the wait and the
 * ahead reply is dropped as late (late_chunk takes only dl_next, under a
 * manifest), so nothing unchecked is kept either way.
 */
static void
ask_ahead(struct device *d, const Dccl__ModelChunk *c)
{
	Dccl__Envelope e = DCCL__ENVELOPE__INIT;
	Dccl__GetModelReq g = DCCL__GET_MODEL_REQ__INIT;

	if (d->dl_man == NULL || c->version != d->dl_version ||
	    c->version != d->dl_man->manifest->version ||
	    c->chunk_index != d->dl_next ||
	    c->n_chunks != d->dl_man->manifest->n_chunks ||
	    c->chunk_index + 1 >= c->n_chunks)
		return;
	g.version = d->dl_version;
	g.chunk_index = c->chunk_index + 1;
	e.body_case = DCCL__ENVELOPE__BODY_GET_MODEL;
	e.get_model = &g;
	send_req(d, &e);
	if (d->waiting)
		d->dl_ahead = g.chunk_index + 1;
}

static void
on_chunk(struct device *d, const Dccl__ModelChunk *c)
{
	int rc = 0;

	d->dl_ahead = 0;
	ask_ahead(d, c);
	/*
	 * Protocol 5: a chunk is kept only when it matches the manifest (in
	 * auth.mode mac it carries no MAC of its own). Nothing of a chunk
	 * that does not is stored; the manifest goes, and is asked again.
	 */
	if (d->dl_man == NULL || (rc = manifest_check_chunk(
	    d->dl_man->manifest, c)) != 0) {
		log_warnx("BAD-CHUNK: device=%s v%llu chunk %u: %s; refused",
		    d->id, (unsigned long long)c->version, c->chunk_index,
		    d->dl_man == NULL ? "no manifest" : manifest_errname(rc));
		drop_manifest(d);
		backoff(d, "chunk does not match the manifest");
		return;
	}
	chunk_take(d, c);
}

/* A chunk that matched the manifest: stored, and the download goes on. */
static void
chunk_take(struct device *d, const Dccl__ModelChunk *c)
{
	int rc;

	if (c->version != d->dl_version) {
		/* "latest" resolved to a concrete version: follow it. */
		if (d->dl_next != 0)
			dstore_dl_clear(d->st);
		d->dl_version = c->version;
		d->dl_next = 0;
		if (c->chunk_index != 0) {
			enter(d, DEV_DOWNLOAD);
			return;
		}
	}
	if (c->chunk_index != d->dl_next || c->checksum.len != 32 ||
	    c->n_chunks == 0 || c->total_size > CTR_IO_MAX_BYTES) {
		backoff(d, "unexpected chunk");
		return;
	}
	if (dstore_dl_put(d->st, c->version, c->chunk_index, c->data.data,
	    c->data.len) != 0) {
		backoff(d, dstore_errmsg(d->st));
		return;
	}
	memcpy(d->dl_sum, c->checksum.data, 32);
	d->dl_total = c->total_size;
	d->dl_n = c->n_chunks;
	d->dl_checked = c->chunk_index == 0 ? 1 : d->dl_checked + 1;
	d->dl_next++;
	d->attempt = 0;
	if (d->dl_next < d->dl_n) {
		enter(d, DEV_DOWNLOAD);	/* the next chunk */
		return;
	}
	/* the manifest's rows are the device's own (protocol 7) */
	uv_update_time(&d->dd->loop);
	d->dl_t1 = (double)uv_now(&d->dd->loop);
	rc = device_load_install(d, d->dl_man->manifest->rows);
	drop_manifest(d);
	if (rc == MODEL_FIT_EREFUSED) {
		/* Not for this device's data: no retry of it, no learning. */
		d->refused = d->dl_version;
		if (d->dd->cf.run_once) {
			d->dd->n_refused++;
			if (d->dd->n_done + d->dd->n_refused == d->dd->max_dev)
				uv_stop(&d->dd->loop);
			enter(d, DEV_DONE);
		} else
			enter(d, DEV_IDLE);
		return;
	}
	if (rc != 0) {
		backoff(d, "model rejected");
		return;
	}
	enter(d, ofa_dev_start(d) ? DEV_OFA : DEV_RETRIEVE);
}

static void
on_samples(struct device *d, const Dccl__Samples *s)
{
	struct dataset *to = d->ret_pass ? &d->retrieved_u : &d->retrieved;
	uint32_t ns = d->local.n_side;
	size_t bad_side = 0;

	dataset_fini(to);
	dataset_init(to);
	/* Retrieved samples take the local data's side fields. */
	to->n_side = ns;
	memcpy(to->side_card, d->local.side_card, sizeof(to->side_card));
	for (size_t i = 0; i < s->n_samples; i++) {
		const Dccl__Sample *p = s->samples[i];
		struct sample x;
		int ok = 1;

		memset(&x, 0, sizeof(x));
		/*
		 * A pool without side fields: unknown. Local data without
		 * them: the pool's are ignored. Else they must be the same.
		 */
		for (uint32_t k = 0; k < ns; k++)
			x.side[k] = d->local.side_card[k];
		if (ns > 0 && p->n_side > 0 && p->n_side != ns)
			ok = 0;
		for (size_t k = 0; ok && ns > 0 && k < p->n_side; k++) {
			if (p->side[k] > d->local.side_card[k])
				ok = 0;
			else
				x.side[k] = p->side[k];
		}
		if (!ok) {
			bad_side++;
			continue;
		}
		x.user = d->user;	/* trained on as this user's */
		x.item = p->item;
		x.ts = p->ts;
		x.label = p->label;
		x.genres = p->genres;
		x.flags = SAMPLE_F_RETRIEVED;
		if (!(p->label >= 0 && p->label <= 1))
			continue;	/* never train on garbage labels */
		dataset_append(to, &x, p->hist, p->n_hist);
	}
	log_info("RETRIEVE: device=%s got %zu pool samples (model v%llu%s)%s",
	    d->id, to->n, (unsigned long long)s->model_version,
	    d->ret_pass ? ", similar users" : "", ns > 0 && s->n_samples > 0 &&
	    s->samples[0]->n_side == ns ? " with side values" : "");
	if (bad_side > 0)
		log_warnx("RETRIEVE: device=%s dropped %zu pool samples whose "
		    "side values do not fit the local data's %u side fields",
		    d->id, bad_side, ns);
	/* Evaluation measures both matching modes: fetch by users too. */
	if (!d->ret_pass && !d->dd->cf.retrieve_mode &&
	    d->dd->cf.eval_dir[0] != '\0' &&
	    strstr(d->dd->cf.eval_methods, "-u") != NULL) {
		d->ret_pass = 1;
		enter(d, DEV_RETRIEVE);
		return;
	}
	enter(d, DEV_TRAIN);
}

/*
 * signed_: the error carries the cloud's MAC (or auth is off). An unsigned
 * one may come from anyone on the path, so it may cause a retry or a
 * backoff but never loses data.
 */
static void
on_error(struct device *d, const Dccl__Error *er, int signed_)
{
	log_warnx("CLOUD-ERROR: device=%s %s: %s: %s%s", d->id,
	    device_state_name(d->state), wire_error_name(er->code), er->message,
	    signed_ ? "" : " (unsigned)");
	/* No OFA part for this version, or a cloud without OFA: go on. */
	if (d->state == DEV_OFA && (er->code == DCCL__ERROR_CODE__E_NOT_FOUND ||
	    er->code == DCCL__ERROR_CODE__E_UNKNOWN_BODY ||
	    er->code == DCCL__ERROR_CODE__E_BAD_REQUEST ||
	    er->code == DCCL__ERROR_CODE__E_STALE)) {
		ofa_dev_skip(d, wire_error_name(er->code));
		enter(d, DEV_OFA);
		return;
	}
	/* A cloud without a choice for us (or refusing it): go on without. */
	if (d->state == DEV_SELECT && signed_ &&
	    (er->code == DCCL__ERROR_CODE__E_UNKNOWN_BODY ||
	    er->code == DCCL__ERROR_CODE__E_BAD_REQUEST ||
	    er->code == DCCL__ERROR_CODE__E_NOT_FOUND)) {
		d->fedsel_version = d->version;
		enter(d, DEV_RETRIEVE);
		return;
	}
	switch ((int)er->code) {
	case DCCL__ERROR_CODE__E_NOT_REGISTERED:
		enter(d, DEV_REGISTER);
		return;
	case DCCL__ERROR_CODE__E_UNAUTHENTICATED:
		/* Refused enrolment (token, key) or a lost session: enrol
		 * again, after a backoff so a wrong token is no busy loop. */
		if (d->state != DEV_REGISTER)
			d->attempt = 0;
		else if (d->attempt == 0 && d->auth != NULL &&
		    !d->auth->have_tok && !d->auth->have_cpk)
			device_load_token_hint(d);
		d->state = DEV_REGISTER;
		backoff(d, "unauthenticated");
		return;
	case DCCL__ERROR_CODE__E_STALE:
		if (d->state == DEV_RETRIEVE) {
			d->announced = d->announced > d->version ?
			    d->announced : d->version;
			d->dl_version = 0;	/* latest */
			d->dl_next = 0;
			enter(d, DEV_DOWNLOAD);
			return;
		}
		break;
	case DCCL__ERROR_CODE__E_NOT_FOUND:
		if (d->state == DEV_RETRIEVE) {
			enter(d, DEV_TRAIN);	/* no index: local data only */
			return;
		}
		if (d->state == DEV_DOWNLOAD) {
			/*
			 * Forget the announced version too: an announcement
			 * is not signed, and one of a version that does not
			 * exist would otherwise send us round this loop
			 * forever. Registered says what is current.
			 */
			dstore_dl_clear(d->st);
			d->dl_next = 0;
			d->announced = d->version;
			enter(d, DEV_REGISTER);
			return;
		}
		break;
	case DCCL__ERROR_CODE__E_BUSY:
	case DCCL__ERROR_CODE__E_RATE_LIMITED:
		if (er->code == DCCL__ERROR_CODE__E_BUSY)
			d->dd->n_busy++;
		/* The cloud's pacing hint, capped: an unsigned error may
		 * come from anyone and must not park the device for long. */
		d->retry_after = er->retry_after_ms <
		    (uint32_t)d->dd->cf.backoff_max_ms ? er->retry_after_ms :
		    (uint32_t)d->dd->cf.backoff_max_ms;
		backoff(d, wire_error_name(er->code));
		return;
	case DCCL__ERROR_CODE__E_STORAGE:
	case DCCL__ERROR_CODE__E_INTERNAL:
	case DCCL__ERROR_CODE__E_SHUTTING_DOWN:
		backoff(d, wire_error_name(er->code));
		return;
	default:
		break;
	}
	if (d->state == DEV_UPLOAD && signed_) {
		/* The cloud refused this patch for good: drop it. */
		dstore_outbox_ack(d->st, d->req_id, 0);
		enter(d, DEV_IDLE);
		return;
	}
	if (d->state == DEV_REPORT && signed_) {
		/* Refused for good (stale, malformed, full): drop it. */
		free(d->report);
		d->report = NULL;
		enter(d, DEV_IDLE);
		return;
	}
	backoff(d, wire_error_name(er->code));
}

/*
 * 1 if hdr (freed here) carries the id of one of the sends of d's current
 * request: the first reply to any of them answers it, so a cloud slower
 * than net.resend-ms still gets through.
 */
static int
reply_is_current(const struct device *d, uint32_t seq)
{
	if (!d->waiting)
		return 0;
	/* Sequence numbers wrap (UPLINK_SEQ_MASK): compare distances. */
	return ((d->sp_id - seq) & UPLINK_SEQ_MASK) <=
	    ((d->sp_id - d->sp_first) & UPLINK_SEQ_MASK);
}

/*
 * A reply to an older request (one the device gave up on at its deadline)
 * that is the very chunk the download needs now: kept, not dropped. Under
 * load such a reply arrives after its deadline while the re-request's
 * reply is still queued (or dropped by the cloud's socket, which holds
 * one reply per device at a time). Safe because a model chunk is checked
 * against the version's manifest, not by the request it answers; in
 * auth.mode encrypt the reply is sealed for its own request and is not
 * readable here. e is the reply if the caller has unpacked it (the
 * caller frees it), else NULL. 1 if kept (msg consumed), else 0.
 */
static int
late_chunk(struct device *d, void *msg, size_t len, Dccl__Envelope *e)
{
	Dccl__Envelope *own = NULL;
	const Dccl__ModelChunk *c;
	char err[64];
	int kept = 0;

	if (d->state != DEV_DOWNLOAD || d->dl_man == NULL)
		return 0;
	if (e == NULL) {
		if (wire_unpack(msg, len, &own, err, sizeof(err)) != 0) {
			wire_free(own);
			return 0;
		}
		e = own;
	}
	c = e->body_case == DCCL__ENVELOPE__BODY_MODEL_CHUNK ?
	    e->model_chunk : NULL;
	if (c != NULL && c->version == d->dl_version &&
	    c->chunk_index == d->dl_next &&
	    manifest_check_chunk(d->dl_man->manifest, c) == 0) {
		d->dd->n_late_chunk++;
		log_debug("LATE-CHUNK: device=%s v%llu chunk %u kept", d->id,
		    (unsigned long long)c->version, c->chunk_index);
		d->bytes_down += len;
		d->b_model += len;
		d->waiting = 0;	/* its re-request's reply will be late */
		uv_timer_stop(&d->timer);
		nn_freemsg(msg);
		chunk_take(d, c);	/* checked above */
		kept = 1;
	}
	wire_free(own);
	return kept;
}

/* The uplink's reply for a hosted device (uplink.h). */
static void
recv_cb(void *data, uint32_t slot, uint32_t seq, void *msg, size_t len)
{
	struct deviced *dd = data;
	struct device *d;
	Dccl__Envelope *e = NULL;
	char err[256];
	int a = 1;	/* authenticated (or auth off) */

	if (slot >= (uint32_t)dd->n_dev || dd->stopping) {
		nn_freemsg(msg);	/* no such device, or closing */
		return;
	}
	d = &dd->dev[slot];
	if (!reply_is_current(d, seq)) {
		/* An answer to an older request. */
		if (late_chunk(d, msg, len, NULL))
			return;
		log_debug("LATE: device=%s reply to an older request dropped",
		    d->id);
		nn_freemsg(msg);
		return;
	}
	d->bytes_down += len;
	if (d->state == DEV_RETRIEVE)
		*(d->ret_pass ? &d->b_retu_down : &d->b_ret_down) += len;
	else if (d->state == DEV_OFA)
		ofa_dev_bytes(d, 0, len);
	else if (d->state != DEV_UPLOAD)
		d->b_model += len;
	if (wire_unpack(msg, len, &e, err, sizeof(err)) != 0) {
		nn_freemsg(msg);
		wire_free(e);
		log_warnx("BAD-REPLY: device=%s: %s", d->id, err);
		backoff(d, "bad reply");
		return;
	}
	if (!d->waiting || e->request_id != d->req_id) {
		/* A late reply to a request we gave up on or re-sent. */
		log_debug("LATE: device=%s req=%llu dropped", d->id,
		    (unsigned long long)e->request_id);
		if (!late_chunk(d, msg, len, e))
			nn_freemsg(msg);
		wire_free(e);
		return;
	}
	if (d->auth->want != AUTH_OFF) {
		/* Only an Error may come unsigned (the cloud could not
		 * authenticate us); anything else must carry our MAC. */
		/* It echoes the counter of the send it answers. */
		uint64_t c = e->counter >= d->first_ctr &&
		    e->counter <= d->sent_ctr ? e->counter : d->sent_ctr;
		a = auth_dev_check(d->auth, msg, len, e, c, d->sent_body);
		/* A model chunk may come unMACed: on_chunk checks it
		 * against the manifest that came with our MAC. */
		if (a < 0 || (a == 0 && e->body_case !=
		    DCCL__ENVELOPE__BODY_ERROR && !(e->body_case ==
		    DCCL__ENVELOPE__BODY_MODEL_CHUNK && d->state ==
		    DEV_DOWNLOAD && d->dl_man != NULL))) {
			nn_freemsg(msg);
			wire_free(e);
			log_warnx("BAD-REPLY: device=%s: %s reply", d->id,
			    a < 0 ? "forged or misdirected" : "unsigned");
			return;	/* the real reply may still come */
		}
	}
	nn_freemsg(msg);
	d->waiting = 0;
	uv_timer_stop(&d->timer);
	switch (e->body_case) {
	case DCCL__ENVELOPE__BODY_ERROR:
		on_error(d, e->error, a == 1);
		break;
	case DCCL__ENVELOPE__BODY_REGISTERED:
		if (d->auth->want != AUTH_OFF) {
			const Dccl__Registered *g = e->registered;
			int rc = g->cloud_pubkey.len != 32 ? -EINVAL :
			    auth_dev_set_cloud(d->auth, g->cloud_pubkey.data,
			    (int)g->auth_mode);
			if (rc == -EPERM) {
				log_warnx("AUTH-PIN: device=%s the cloud "
				    "answered with key %02x%02x%02x%02x..., not "
				    "the pinned %02x%02x%02x%02x...; refused "
				    "(auth.repin=yes accepts it once)", d->id,
				    g->cloud_pubkey.data[0],
				    g->cloud_pubkey.data[1],
				    g->cloud_pubkey.data[2],
				    g->cloud_pubkey.data[3], d->auth->cpk[0],
				    d->auth->cpk[1], d->auth->cpk[2],
				    d->auth->cpk[3]);
				backoff(d, "cloud key differs from the pinned");
				break;
			} else if (rc != 0) {
				backoff(d, "Registered without a cloud key");
				break;
			}
			if (auth_dev_set_announce_key(d->auth,
			    g->announce_key.data, g->announce_key.len,
			    g->announce_key_mac.data,
			    g->announce_key_mac.len) != 0)
				log_warnx("AUTH-ANNOUNCE: device=%s no valid "
				    "announcement key; announcements are "
				    "ignored", d->id);
		}
		log_info("REGISTERED: device=%s user=%u; cloud model v%llu",
		    d->id, d->user,
		    (unsigned long long)e->registered->model_version);
		if (e->registered->model_version > d->announced)
			d->announced = e->registered->model_version;
		/*
		 * Restarted after a crash with a patch for this version still
		 * unacknowledged in the outbox: that job is done; upload it
		 * rather than train again (a second patch of the same job).
		 */
		if (d->trained_version == 0 && d->model != NULL) {
			uint64_t rid, base;
			void *blob;
			size_t blen;
			if (dstore_outbox_pending(d->st, &rid, &base, &blob,
			    &blen) == 0) {
				if (base == d->version)
					d->trained_version = d->version;
				free(blob);
			}
		}
		if (model_wanted(d)) {
			d->dl_version = d->announced;
			d->dl_next = 0;
			enter(d, DEV_DOWNLOAD);
		} else if (d->model != NULL && d->trained_version != d->version)
			enter(d, ofa_dev_start(d) ? DEV_OFA : DEV_RETRIEVE);
		else
			enter(d, DEV_UPLOAD);	/* anything left in the outbox */
		break;
	case DCCL__ENVELOPE__BODY_MODEL_CHUNK:
		if (d->state != DEV_OFA)
			on_chunk(d, e->model_chunk);
		else if (ofa_dev_on_chunk(d, e->model_chunk) != 0)
			backoff(d, "OFA part rejected");
		else
			enter(d, DEV_OFA);	/* the next part */
		break;
	case DCCL__ENVELOPE__BODY_MANIFEST:
		if (d->state == DEV_DOWNLOAD) {
			on_manifest(d, e);
			e = NULL;	/* taken */
		} else
			backoff(d, "unexpected manifest");
		break;
	case DCCL__ENVELOPE__BODY_SAMPLES:
		on_samples(d, e->samples);
		break;
	case DCCL__ENVELOPE__BODY_SELECTION:
		if (d->state != DEV_SELECT) {
			backoff(d, "unexpected reply");
			break;
		}
		if (fedsel_dev_take(d, e->selection) != 0)
			log_warnx("SELECTION: device=%s malformed choice "
			    "ignored", d->id);
		d->fedsel_version = d->version;
		enter(d, DEV_RETRIEVE);
		break;
	case DCCL__ENVELOPE__BODY_REPORT_ACK:
		if (d->state != DEV_REPORT) {
			backoff(d, "unexpected reply");
			break;
		}
		log_info("REPORTED: device=%s %u methods%s", d->id,
		    e->report_ack->methods, e->report_ack->duplicate ?
		    " (duplicate)" : "");
		free(d->report);
		d->report = NULL;
		enter(d, DEV_IDLE);
		break;
	case DCCL__ENVELOPE__BODY_ACK:
		log_info("ACK: device=%s req=%llu patch=%llu%s", d->id,
		    (unsigned long long)e->request_id,
		    (unsigned long long)e->ack->patch_id,
		    e->ack->duplicate ? " (duplicate)" : "");
		dstore_outbox_ack(d->st, e->request_id, e->ack->patch_id);
		enter(d, DEV_UPLOAD);	/* next pending, else idle */
		break;
	default:
		backoff(d, "unexpected reply");
		break;
	}
	wire_free(e);
}

int
device_init(struct deviced *dd, struct device *d, const char *id,
    uint32_t user, const char *local_csv, const char *test_csv)
{
	const struct deviced_conf *cf = &dd->cf;
	char err[256];

	memset(d, 0, sizeof(*d));
	d->dd = dd;
	snprintf(d->id, sizeof(d->id), "%s", id);
	d->user = user;
	dataset_init(&d->local);
	dataset_init(&d->test);
	dataset_init(&d->retrieved);
	dataset_init(&d->retrieved_u);
	if (device_load(d, id, user, local_csv, test_csv) != 0)
		return -1;
	if ((uint32_t)(d - dd->dev) >= UPLINK_MAX_SLOTS)
		return -1;
	if (!dd->up.open) {
		struct uplink_opts uo = {
			.lanes = uplink_lanes(dd),
			.n_slots = (uint32_t)dd->max_dev,
			.timeout_ms = (uint64_t)cf->request_timeout_ms,
			.max_message = (int)cf->max_message,
			.sockbuf = (int)cf->sockbuf,
		};

		if (uplink_open(&dd->up, &dd->loop, cf->cloud, &uo, recv_cb,
		    dd, err, sizeof(err)) != 0) {
			log_warnx("%s", err);
			return -1;
		}
	}
	uv_timer_init(&dd->loop, &d->timer);
	d->timer.data = d;
	log_info("DEVICE: %s user=%u, %zu local samples, %zu test, model v%llu",
	    d->id, user, d->local.n, d->test.n, (unsigned long long)d->version);
	return 0;
}

void
device_start(struct device *d)
{
	int64_t j = d->dd->cf.start_jitter_ms;

	d->t_start = uv_hrtime() / 1e9;
	if (j <= 0) {
		enter(d, DEV_REGISTER);
		return;
	}
	/* Not all at once: a fleet that boots together (a simulation, a
	 * power cut's end) would otherwise meet the cloud in one burst. */
	d->state = DEV_REGISTER;
	uv_timer_start(&d->timer, timer_cb,
	    randombytes_uniform((uint32_t)j + 1), 0);
}

void
device_announce(struct device *d, uint64_t version)
{
	if (version <= d->announced)
		return;
	d->announced = version;
	if (d->state == DEV_IDLE && !d->waiting)
		enter(d, DEV_IDLE);
}

void
device_poke(struct device *d)
{
	if (d->state == DEV_IDLE && !d->waiting)
		enter(d, DEV_IDLE);
}

void
device_set_hooks(struct device *d, const struct device_hooks *h)
{
	d->hooks = h;
}

void
device_close(struct device *d)
{
	if (d->hooks != NULL && d->hooks->close != NULL)
		d->hooks->close(d);
	uv_timer_stop(&d->timer);
	uv_close((uv_handle_t *)&d->timer, NULL);
}

void
device_fini(struct device *d)
{
	if (d->hooks != NULL && d->hooks->fini != NULL)
		d->hooks->fini(d);
	ctr_free(d->serving);
	d->serving = NULL;
	ctr_free(d->job_serving);
	d->job_serving = NULL;
	ofa_dev_free(d);
	fedsel_dev_fini(d);
	if (d->auth != NULL)
		sodium_memzero(d->auth, sizeof(*d->auth));
	free(d->auth);
	free(d->pend);
	drop_manifest(d);
	dev_model_put(d->dd, d->model);
	d->model = NULL;
	d->enc = NULL;
	dataset_fini(&d->local);
	dataset_fini(&d->test);
	dataset_fini(&d->retrieved);
	dataset_fini(&d->retrieved_u);
	dstore_close(d->st);
}
