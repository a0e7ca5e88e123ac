/*
 * upload: UploadPatch and the group commit of uploads. upload_rpc
 * validates an upload (patch.c) and replies at once to anything it
 * rejects; an upload it accepts is queued (upload_queue: the request and
 * its prepared patch, the blob owned) and counted in cd->job, so a
 * shutdown waits for its reply.
 *
 * DESIGN: the nanomsg receive callbacks run in the loop's poll phase and
 * read bursts of up to 64 messages per socket. A uv_check_t, active only
 * while the batch is non-empty, runs right after that phase, in the same
 * loop iteration: it stores the whole batch in one transaction
 * (store_begin, store_patch_put each, store_commit) and only then sends
 * the Acks. One commit (one WAL write on SQLite, one round trip and one
 * WAL flush on PostgreSQL) then serves every upload of the iteration,
 * instead of one per upload. Nothing is acknowledged before the commit
 * returned, so every acknowledged patch still survives kill -9.
 *
 * If any insert or the commit fails, the transaction is rolled back and
 * each upload of the batch is stored alone, in its own transaction as
 * before batching, and gets its own Ack or E_STORAGE: one bad row cannot
 * fail the others, and errors read exactly as without batching. Inserts
 * are idempotent by (device_id, request_id), so a retry after a commit
 * that did happen although it reported failure (a connection lost on its
 * way back) finds the rows and acknowledges them as duplicates, with
 * their ids.
 *
 * A batch holds at most UPLOAD_BATCH_MAX uploads; a full one is flushed
 * at once, so a larger burst commits in several transactions and one
 * flush never holds the loop long. A flush runs from start to end without
 * returning to the loop, so no other store write on this connection can
 * land inside its transaction. Loop thread only.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cloudd/cloudd.h"
#include "cloudd/rpc.h"
#include "shared/clock.h"
#include "shared/log.h"
#include "shared/xmalloc.h"

static void
ack(struct cloudd *cd, struct upload_item *it, uint64_t id, int dup)
{
	struct rpc_req *r = it->r;
	Dccl__Envelope e;
	Dccl__Ack a = DCCL__ACK__INIT;

	if (!dup)
		cd->patches++;
	log_info("UPLOAD: device=%s req=%llu base=v%llu patch=%llu%s",
	    it->p.device_id, (unsigned long long)it->p.request_id,
	    (unsigned long long)it->p.base_version, (unsigned long long)id,
	    dup ? " (duplicate)" : "");
	rpc_reply_init(&e, r);
	a.patch_id = id;
	a.duplicate = dup;
	e.body_case = DCCL__ENVELOPE__BODY_ACK;
	e.ack = &a;
	rpc_reply(cd, r, &e);
}

/* Stores and answers every queued upload; the batch is empty after. */
static void
flush(struct cloudd *cd)
{
	struct upload_item *it = cd->up;
	size_t n = cd->up_n, i;
	uint64_t id[UPLOAD_BATCH_MAX];
	int dup[UPLOAD_BATCH_MAX];
	double t0 = clock_now();
	uint32_t keep = (uint32_t)cd->cf.patches_per_device;
	int rc = -1;

	if (n == 0)
		return;
	cd->up_n = 0;
	uv_check_stop(&cd->up_check);
	/* One alone commits on its own: BEGIN/COMMIT would add round trips. */
	if (n > 1) {
		rc = store_begin(cd->st);
		for (i = 0; i < n && rc == 0; i++)
			rc = store_patch_put(cd->st, &it[i].p, keep, &id[i],
			    &dup[i]);
		if (rc == 0)
			rc = store_commit(cd->st);
		if (rc != 0) {
			log_warnx("UPLOAD-BATCH: %zu uploads not committed "
			    "together (%s); storing each alone", n,
			    store_errmsg(cd->st));
			store_rollback(cd->st);
		}
	}
	if (rc == 0) {
		log_debug("UPLOAD-BATCH: %zu uploads in one transaction, "
		    "%.3f ms", n, (clock_now() - t0) * 1e3);
		for (i = 0; i < n; i++)
			ack(cd, &it[i], id[i], dup[i]);
	} else {
		for (i = 0; i < n; i++) {
			if (store_patch_put(cd->st, &it[i].p, keep, &id[i],
			    &dup[i]) == 0)
				ack(cd, &it[i], id[i], dup[i]);
			else
				rpc_error(cd, it[i].r,
				    DCCL__ERROR_CODE__E_STORAGE,
				    "patch not stored: %s",
				    store_errmsg(cd->st));
		}
	}
	for (i = 0; i < n; i++) {
		free(it[i].p.blob);
		it[i].p.blob = NULL;
		it[i].r = NULL;
	}
	job_end(&cd->job, (uint32_t)n);
	job_idle(&cd->job);
}

static void
check_cb(uv_check_t *h)
{
	flush(h->data);
}

int
upload_init(struct cloudd *cd)
{
	int rc;

	if ((rc = uv_check_init(&cd->loop, &cd->up_check)) != 0)
		return rc;
	cd->up_check.data = cd;
	return 0;
}

void
upload_queue(struct cloudd *cd, struct rpc_req *r, const struct store_patch *p)
{
	struct upload_item *it = &cd->up[cd->up_n++];

	it->r = r;
	it->p = *p;
	job_begin(&cd->job);
	/* uv_check_start fails only without a callback; flush anyway. */
	if ((cd->up_n == 1 && uv_check_start(&cd->up_check, check_cb) != 0) ||
	    cd->up_n == UPLOAD_BATCH_MAX)
		flush(cd);
}

/* At exit no job is left, so the batch is empty. */
void
upload_fini(struct cloudd *cd)
{
	uv_close((uv_handle_t *)&cd->up_check, NULL);
}

/* UploadPatch: validated at once, then queued for the group commit. */
void
upload_rpc(struct cloudd *cd, struct rpc_req *r)
{
	Dccl__UploadPatch *q = r->env->upload;
	struct store_patch p;
	char err[256];
	double clipped;
	int rc;

	if ((rc = patch_validate(cd, q, &clipped, err, sizeof(err))) != 0) {
		rpc_error(cd, r, rc, "%s", err);
		return;
	}
	if (clipped > 0)
		log_warnx("UPLOAD-CLIPPED: device=%s req=%llu: patch norm "
		    "clipped to %g", r->env->device_id,
		    (unsigned long long)r->env->request_id, clipped);
	memset(&p, 0, sizeof(p));
	snprintf(p.device_id, sizeof(p.device_id), "%s", r->env->device_id);
	p.user_id = r->user;
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
