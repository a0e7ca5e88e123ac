/*
 * register: the RegisterReq handler (a device announces its user and
 * capability; the guard enrolls its key) and the admin enrollment of a
 * device key (dcctl enroll). Loop thread only.
 */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "cloudd/cloudd.h"
#include "cloudd/guard.h"
#include "cloudd/rpc.h"
#include "shared/log.h"

void
register_rpc(struct cloudd *cd, struct rpc_req *r)
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
	known = devtab_lookup(&cd->devs, cd->lead ? cd->st : NULL,
	    r->env->device_id, &bound) == 0;
	if (known && bound != q->user_id) {
		rpc_error(cd, r, DCCL__ERROR_CODE__E_FORBIDDEN, "device %s is "
		    "bound to user %u (a new user needs a new device id)",
		    r->env->device_id, bound);
		return;
	}
	/*
	 * A fresh id may not claim a user that already has its devices:
	 * MoMoDistill takes each user's newest patch, so it would replace
	 * that user's teacher. Only the token vouches for such an id; one
	 * the admin pre-enrolled (dcctl enroll, session MAC) is exempt.
	 */
	if (!known && cd->cf.user_devices > 0 &&
	    (r->reg_token || cd->cf.auth_mode == AUTH_OFF)) {
		uint64_t n;
		if (store_user_device_count(cd->st, q->user_id, &n) != 0) {
			rpc_error(cd, r, DCCL__ERROR_CODE__E_STORAGE, "%s",
			    store_errmsg(cd->st));
			return;
		}
		if (n >= (uint64_t)cd->cf.user_devices) {
			rpc_error(cd, r, DCCL__ERROR_CODE__E_FORBIDDEN, "user "
			    "%u already has %llu device id(s) "
			    "(auth.user-devices = %lld): pre-enrol this one "
			    "with dcctl enroll", q->user_id,
			    (unsigned long long)n,
			    (long long)cd->cf.user_devices);
			return;
		}
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
	rpc_reply_init(&e, r);
	rg.model_version = cd->model.version;
	rg.chunk_size = (uint32_t)cd->cf.chunk_size;
	rg.max_message = (uint32_t)cd->cf.max_message;
	e.body_case = DCCL__ENVELOPE__BODY_REGISTERED;
	e.registered = &rg;
	rpc_reply(cd, r, &e);
}

/* dcctl enroll: the key goes into the store shared by every replica. */
void
enroll_rpc(struct cloudd *cd, struct rpc_req *r)
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
	rpc_reply_init(&e, r);
	e.body_case = DCCL__ENVELOPE__BODY_ENROLLED;
	e.enrolled = &en;
	rpc_reply(cd, r, &e);
}

