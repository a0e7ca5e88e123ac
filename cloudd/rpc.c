/*
 * rpc: the request server. Each message from a raw REP socket is decoded,
 * validated and dispatched by body type. Every request gets exactly one
 * reply: its typed reply body or an Error; a message too broken to carry a
 * routable reply is answered with an Error anyway (the routing header is
 * all REP needs), so a device never waits for a timeout. rpc.c is the
 * server core only (receive, admit, route, reply, error, account,
 * announce): it names no handler. The daemon hands it a route table at
 * start (rpc_set_routes), body -> handler and the sockets it is served
 * on; handlers answer through rpc_reply/rpc_error, on the loop thread or
 * from a job's after_cb. Loop thread only.
 */
#include <errno.h>
#include <nanomsg/nn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cloudd/cloudd.h"
#include "cloudd/guard.h"
#include "cloudd/rpc.h"
#include "shared/clock.h"
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
	double dt = clock_now() - r->t0;
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
	if (code == DCCL__ERROR_CODE__E_BUSY ||
	    code == DCCL__ERROR_CODE__E_RATE_LIMITED) {
		/*
		 * Pacing: the more requests turned away this second, the
		 * later each is asked to come back, so retries spread over a
		 * window the cloud can serve instead of returning as a wave.
		 */
		uint64_t now = uv_now(&cd->loop) / 1000;
		if (now != cd->busy_sec) {
			cd->busy_sec = now;
			cd->busy_n = 0;
		}
		cd->busy_n++;
		er.retry_after_ms = (uint32_t)(RPC_BUSY_BASE_MS *
		    (1 + cd->busy_n / RPC_BUSY_PER_STEP));
		if (er.retry_after_ms < r->retry_min_ms)
			er.retry_after_ms = r->retry_min_ms;
		if (er.retry_after_ms > RPC_BUSY_MAX_MS)
			er.retry_after_ms = RPC_BUSY_MAX_MS;
		if (r->retry_exact_ms > 0)
			er.retry_after_ms = r->retry_exact_ms;
	}
	e.body_case = DCCL__ENVELOPE__BODY_ERROR;
	e.error = &er;
	if (r->env != NULL) {
		e.device_id = wire_devid_valid(r->env->device_id) ?
		    r->env->device_id : "";
		e.request_id = r->env->request_id;
	}
	/* Busy refusals are counted (metrics), not logged one by one:
	 * under overload they would flood the log. */
	(code == DCCL__ERROR_CODE__E_BUSY ? log_debug : log_warnx)(
	    "RPC-ERROR: %s device=%s req=%llu body=%s: %s",
	    wire_error_name(code), r->env ? r->env->device_id : "-",
	    r->env ? (unsigned long long)r->env->request_id : 0ULL,
	    wire_body_name(r->body), msg);
	rpc_reply(cd, r, &e);
}

/* Starts a reply envelope addressed to r's device and request. */
void
rpc_reply_init(Dccl__Envelope *e, const struct rpc_req *r)
{
	dccl__envelope__init(e);
	e->device_id = r->env->device_id;
	e->request_id = r->env->request_id;
}

void
rpc_set_routes(struct cloudd *cd, const struct rpc_route *routes)
{
	memset(cd->route, 0, sizeof(cd->route));
	for (const struct rpc_route *rt = routes; rt->fn != NULL; rt++)
		if (rt->body > 0 && rt->body < RPC_N_BODIES)
			cd->route[rt->body] = rt;
}

/* The size of every err buffer handed to dispatch(). */
#define RPC_ERR_LEN	256

static void dispatch(struct cloudd *cd, struct rpc_req *r, int admin,
    int code, char *err);

void
rpc_recv_cb(struct nnuv *s, void *msg, size_t len, void *hdr)
{
	struct cloudd *cd = s->data;
	struct rpc_req *r = xcalloc(1, sizeof(*r));
	int admin = (s == &cd->adm);
	char err[RPC_ERR_LEN];
	int code;

	r->cd = cd;
	r->sock = s;
	r->hdr = hdr;
	r->t0 = clock_now();
	/* Refuse what a device may not send before unpacking allocates. */
	code = admin ? 0 : wire_precheck_device(msg, len, err, sizeof(err));
	if (code == 0)
		code = wire_unpack(msg, len, &r->env, err, sizeof(err));
	/* Authentication and rate limits need the bytes as received. */
	if (code == 0 && !admin && !cd->stopping)
		code = guard_admit(cd, r, msg, len, err, sizeof(err));
	nn_freemsg(msg);
	if (code == GUARD_PARKED)
		return;		/* rpc_resume, after the key lookup */
	dispatch(cd, r, admin, code, err);
}

void
rpc_resume(struct cloudd *cd, struct rpc_req *r, const void *buf,
    size_t len, int code)
{
	char err[RPC_ERR_LEN] = "";

	if (code == 0 && cd->stopping)
		code = DCCL__ERROR_CODE__E_SHUTTING_DOWN;
	if (code == 0)
		code = guard_admit(cd, r, buf, len, err, sizeof(err));
	else
		snprintf(err, sizeof(err), "%s", code ==
		    DCCL__ERROR_CODE__E_STORAGE ? "cannot read device keys" :
		    "cloudd is shutting down");
	if (code == GUARD_PARKED) {	/* r->looked_up: cannot happen */
		code = DCCL__ERROR_CODE__E_INTERNAL;
		snprintf(err, sizeof(err), "key lookup loop");
	}
	dispatch(cd, r, 0, code, err);
}

/* The rest of a request's way once admitted (or refused with code). */
static void
dispatch(struct cloudd *cd, struct rpc_req *r, int admin, int code,
    char *err)
{
	const struct rpc_route *rt;

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
		/* Not executed again: the first reply's bytes, nonce and all,
		 * or a typed refusal (guard.h). */
		void *out;
		size_t olen;
		if ((code = guard_cached_reply(r, &out, &olen, err,
		    RPC_ERR_LEN)) == 0)
			rpc_send_packed(cd, r, out, olen, 0);
		else
			rpc_error(cd, r, code, "%s", err);
		return;
	}
	rt = r->body > 0 && r->body < RPC_N_BODIES ? cd->route[r->body] : NULL;
	if (rt == NULL) {
		rpc_error(cd, r, DCCL__ERROR_CODE__E_UNKNOWN_BODY,
		    "'%s' is not a request", wire_body_name(r->body));
		return;
	}
	if (!admin && !(rt->flags & RPC_DEVICE)) {
		rpc_error(cd, r, DCCL__ERROR_CODE__E_FORBIDDEN,
		    "admin requests only on the admin socket");
		return;
	}
	/*
	 * The admin socket authenticates nobody, so it takes no device
	 * request: an upload there would be stored under a device id and
	 * user nobody proved.
	 */
	if (admin && !(rt->flags & RPC_ADMIN)) {
		rpc_error(cd, r, DCCL__ERROR_CODE__E_FORBIDDEN, "device "
		    "requests only on the device socket");
		return;
	}
	/* Device requests: the device must be registered. */
	if (!admin && (rt->flags & RPC_REGISTERED) &&
	    devtab_lookup(&cd->devs, cd->lead ? cd->st : NULL,
	    r->env->device_id, &r->user) != 0) {
		rpc_error(cd, r, DCCL__ERROR_CODE__E_NOT_REGISTERED,
		    "device %s is not registered", r->env->device_id);
		return;
	}
	rt->fn(cd, r);
}

void
rpc_announce(struct cloudd *cd)
{
	Dccl__Envelope e = DCCL__ENVELOPE__INIT;
	Dccl__ModelAnnounce a = DCCL__MODEL_ANNOUNCE__INIT;
	uint8_t sig[64];
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
	guard_sign_announce(cd->guard, &a, sig);
	e.body_case = DCCL__ENVELOPE__BODY_ANNOUNCE;
	e.announce = &a;
	if (wire_pack_nn(&e, &msg, &len) != 0 ||
	    nnuv_send(&cd->pub, msg, len, NULL) != 0)
		cd->dropped++;
	log_info("ANNOUNCE: model v%llu (%zu bytes)",
	    (unsigned long long)cd->model.version, cd->model.size);
}
