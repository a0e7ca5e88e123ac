/*
 * retrieve_rpc: CoDA coarse matching over the protocol. The device sends
 * representation vectors of its local samples, computed with the model
 * version it names; the search runs in the threadpool against the pool
 * snapshot of that version (never returning the requester's own samples)
 * and the worker packs the Samples reply, which the loop then sends.
 */
#include <math.h>
#include <nanomsg/nn.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cloudd/cloudd.h"
#include "cloudd/guard.h"
#include "cloudd/coda_retrieve.h"
#include "cloudd/rpc.h"
#include "shared/clock.h"
#include "shared/log.h"
#include "shared/ml/kern.h"
#include "shared/wire.h"
#include "shared/xmalloc.h"

#define RETR_USERS_K 10	/* similar users consulted in MODE_USERS */
#define RETR_SVC_GUESS_S 0.01	/* a search's time before one is measured */

static void start(struct cloudd *, struct rpc_req *, struct pool *);
static void lobby_pump(struct cloudd *);

static void
pack_samples(struct rpc_req *r, const struct pool *p, const uint32_t *idx,
    const float *score, size_t n)
{
	Dccl__Envelope e = DCCL__ENVELOPE__INIT;
	Dccl__Samples out = DCCL__SAMPLES__INIT;
	Dccl__Sample *s = xcalloc(n + 1, sizeof(*s));
	Dccl__Sample **sp = xcalloc(n + 1, sizeof(*sp));
	uint32_t ns = p->ds.n_side <= SAMPLE_SIDE_MAX ? p->ds.n_side : 0;
	uint32_t *side = xcalloc(n * ns + 1, sizeof(*side));

	for (size_t i = 0; i < n; i++) {
		const struct sample *x = &p->ds.s[idx[i]];
		dccl__sample__init(&s[i]);
		s[i].item = x->item;
		s[i].ts = x->ts;
		s[i].label = x->label;
		s[i].genres = x->genres;
		s[i].n_hist = x->hist_n;
		s[i].hist = (uint32_t *)sample_hist(&p->ds, x);
		s[i].score = score[i];
		/* user-side values of other users stay home: unknown */
		for (uint32_t k = 0; k < ns; k++)
			side[i * ns + k] = p->side_ship & (1u << k) ?
			    x->side[k] : p->ds.side_card[k];
		s[i].n_side = ns;
		s[i].side = side + i * ns;
		sp[i] = &s[i];
	}
	out.model_version = p->version;
	out.n_samples = n;
	out.samples = sp;
	e.version = WIRE_VERSION;
	e.device_id = r->env->device_id;
	e.request_id = r->env->request_id;
	e.body_case = DCCL__ENVELOPE__BODY_SAMPLES;
	e.samples = &out;
	if (auth_pack_nn(&e, &r->seal, &r->out, &r->out_len) != 0) {
		r->code = DCCL__ERROR_CODE__E_INTERNAL;
		snprintf(r->err, sizeof(r->err), "out of message memory");
	}
	free(s);
	free(sp);
	free(side);
}

static void
retrieve_work_cb(uv_work_t *w)
{
	struct rpc_req *r = w->data;
	const struct pool *p = r->pool;
	const Dccl__RetrieveReq *q = r->env->retrieve;
	size_t k = q->k, nout = 0;
	uint32_t *idx = xcalloc(k, sizeof(*idx));
	float *score = xcalloc(k, sizeof(*score));
	int rc;

	double t0 = clock_now();

	guard_worker_nice();	/* light requests first (guard.h) */
	if (q->mode == DCCL__RETRIEVE_MODE__MODE_USERS) {
		uint32_t uids[RETR_USERS_K];
		float us[RETR_USERS_K];
		size_t nu = 0;
		rc = retr_similar_users(p->uindex, q->vectors, q->n, r->user,
		    RETR_USERS_K, uids, us, &nu);
		/* The pool samples of the most similar users, in order. */
		for (size_t j = 0; rc == 0 && j < nu && nout < k; j++)
			for (uint32_t o = p->user_off[uids[j]];
			    o < p->user_off[uids[j] + 1] && nout < k; o++) {
				idx[nout] = p->by_user[o];
				score[nout++] = us[j];
			}
	} else {
		struct retr_hit *h = xcalloc(k, sizeof(*h));
		rc = retr_search(p->index, q->vectors, q->n, k, r->user, h,
		    &nout);
		for (size_t i = 0; rc == 0 && i < nout; i++) {
			/* The index's row is the sample's place in the pool. */
			idx[i] = (uint32_t)h[i].row;
			score[i] = h[i].score;
		}
		free(h);
	}
	if (rc != 0) {
		r->code = DCCL__ERROR_CODE__E_BAD_REQUEST;
		snprintf(r->err, sizeof(r->err), "search failed (%d)", rc);
	} else
		pack_samples(r, p, idx, score, nout);
	free(idx);
	free(score);
	r->seconds = clock_now() - t0;
}

static void
retrieve_after_cb(uv_work_t *w, int status)
{
	struct rpc_req *r = w->data;
	struct cloudd *cd = r->cd;

	job_end(&cd->job, 1);
	cd->inflight--;
	cd->heavy_s += (clock_now() - r->t0 - cd->heavy_s) / 8;
	if (status == 0)
		cd->retr_svc_s += (r->seconds - cd->retr_svc_s) / 8;
	cd->retr_turn_s += (clock_now() - r->t_admit - cd->retr_turn_s) / 8;
	/*
	 * The time between completions while searches wait: what the
	 * queue really drains at (the threadpool also runs other jobs, and
	 * replies leave from the loop), which the search time alone
	 * overstates.
	 */
	if (cd->retr_done_t > 0)
		cd->retr_gap_s += (clock_now() - cd->retr_done_t -
		    cd->retr_gap_s) / 8;
	cd->retr_done_t = cd->inflight > 0 ? clock_now() : 0;
	pool_unref(cd, r->pool);
	r->pool = NULL;
	if (status != 0 || r->code != 0) {
		if (r->out != NULL)
			nn_freemsg(r->out);
		rpc_error(cd, r, status ? DCCL__ERROR_CODE__E_SHUTTING_DOWN :
		    r->code, "%s", status ? "cancelled" : r->err);
	} else {
		rpc_send_packed(cd, r, r->out, r->out_len, 0);
	}
	lobby_pump(cd);
	job_idle(&cd->job);
}

/*
 * The pool r's vectors can be searched in, or NULL after a typed error:
 * checked on arrival and again on leaving the lobby (a new version may
 * have been indexed meanwhile).
 */
static struct pool *
pool_for(struct cloudd *cd, struct rpc_req *r)
{
	const Dccl__RetrieveReq *q = r->env->retrieve;
	struct pool *p = cd->pool;

	if (p == NULL || p->index == NULL) {
		rpc_error(cd, r, DCCL__ERROR_CODE__E_NOT_FOUND,
		    "no retrieval index yet (no model or empty pool)");
		return NULL;
	}
	if (q->model_version != p->version) {
		rpc_error(cd, r, DCCL__ERROR_CODE__E_STALE, "vectors from model "
		    "v%llu, the pool is indexed with v%llu",
		    (unsigned long long)q->model_version,
		    (unsigned long long)p->version);
		return NULL;
	}
	return p;
}

/*
 * A place is free: the lobby's oldest go in, or, once stopping, are told
 * so. Runs after each completion, which a waiting device always has
 * coming (it waits only while every place is taken).
 */
static void
lobby_pump(struct cloudd *cd)
{
	while (cd->retr_lobby_n > 0 && (cd->stopping ||
	    cd->inflight < (uint32_t)cd->cf.max_inflight)) {
		struct rpc_req *r = cd->retr_lobby[cd->retr_lobby_0];
		struct pool *p;

		cd->retr_lobby_0 = (cd->retr_lobby_0 + 1) % RETR_LOBBY_MAX;
		cd->retr_lobby_n--;
		if (cd->stopping) {
			rpc_error(cd, r, DCCL__ERROR_CODE__E_SHUTTING_DOWN,
			    "cloudd is shutting down");
			cd->retr_lobby_stop++;
		} else if ((p = pool_for(cd, r)) != NULL)
			start(cd, r, p);
		job_end(&cd->job, 1);	/* the lobby's; start took its own */
	}
}

/* The device's keyed hash (never 0): its appointment's key. */
static uint64_t
who(struct cloudd *cd, const struct rpc_req *r)
{
	const char *id = r->env->device_id != NULL ? r->env->device_id : "";
	uint8_t h[crypto_shorthash_BYTES];
	uint64_t w;

	crypto_shorthash(h, (const unsigned char *)id, strlen(id),
	    cd->retr_key);
	memcpy(&w, h, sizeof(w));
	return w != 0 ? w : 1;
}

/* The time between two searches' ends while they queue (ms). */
static double
drain_gap_ms(const struct cloudd *cd)
{
	double svc = cd->retr_svc_s > 0 ? cd->retr_svc_s : RETR_SVC_GUESS_S;
	/*
	 * Completions come workers at a time, one per svc / workers, or as
	 * close as they were seen to come: the nearer of the two. Too near
	 * costs a device a second refusal; too far idles the searches when
	 * the machine speeds up after a burst, and lengthens the round.
	 */
	double gap = svc * 1e3 / (double)cd->cf.workers;
	/*
	 * Nor faster than max-inflight searches at a time, each holding its
	 * place from admission to reply (Little's law): with few places
	 * (limits.max-inflight below the workers) that turn, not the search
	 * alone, sets the pace, and a gap of one search time sends devices
	 * back before there is room for them.
	 */
	double turn = cd->retr_turn_s * 1e3 / (double)cd->cf.max_inflight;

	if (turn > gap)
		gap = turn;
	if (cd->retr_gap_s > 0 && cd->retr_gap_s * 1e3 < gap)
		gap = cd->retr_gap_s * 1e3;
	return gap;
}

/* The longest wait the lobby takes on (cloudd.h). */
static double
lobby_wait_ms(const struct cloudd *cd)
{
	return cd->cf.max_latency_ms > 0 ? (double)cd->cf.max_latency_ms / 2 :
	    RETR_LOBBY_WAIT_MS;
}

/* E_BUSY with an appointment (appoint.h) as its retry-after. */
static void
refuse(struct cloudd *cd, struct rpc_req *r, uint64_t w, int due,
    const char *why)
{
	struct appoint *a = &cd->retr_appt;
	double gap = drain_gap_ms(cd);
	double now = (double)uv_now(&cd->loop);

	r->retry_exact_ms = due ? appoint_rebook(a, w, now, cd->inflight, gap) :
	    appoint_book(a, w, now, cd->inflight, gap);
	rpc_error(cd, r, DCCL__ERROR_CODE__E_BUSY, "%s; come back in %u ms",
	    why, r->retry_exact_ms);
}

/*
 * Admission of a search: 1 to run it, 0 after an E_BUSY reply, 2 when it
 * waits in the lobby (lobby_pump starts it). The bounds are those of
 * every heavy request (limits.max-inflight, and limits.max-latency-ms on
 * the mean time from arrival to reply; one request is always let in so
 * the mean keeps being measured); what is new is the order: a device
 * whose appointment has come goes in ahead of devices without one (into
 * the lobby if every place is taken), which while appointments are
 * outstanding wait their turn unless the queue is nearly empty (the
 * devices booked did not come).
 */
static int
admit(struct cloudd *cd, struct rpc_req *r)
{
	struct appoint *a = &cd->retr_appt;
	uint32_t max = (uint32_t)cd->cf.max_inflight, wait = 0;
	int slow = cd->cf.max_latency_ms > 0 && cd->inflight > 0 &&
	    cd->heavy_s * 1e3 > (double)cd->cf.max_latency_ms;
	char why[96];
	uint64_t w;

	if (a->e == NULL) {
		appoint_init(a);
		crypto_shorthash_keygen(cd->retr_key);
	}
	w = who(cd, r);
	if (cd->inflight >= max)
		snprintf(why, sizeof(why), "%u heavy requests in flight",
		    cd->inflight);
	else
		snprintf(why, sizeof(why), "heavy requests take %.0f ms",
		    cd->heavy_s * 1e3);
	switch (appoint_check(a, w, (double)uv_now(&cd->loop), &wait)) {
	case APPOINT_EARLY:
		if (cd->inflight < max / 4 && !slow) {
			appoint_used(a, w);	/* room now: no idling */
			return 1;
		}
		r->retry_exact_ms = wait;
		rpc_error(cd, r, DCCL__ERROR_CODE__E_BUSY, "early for the "
		    "appointment; come back in %u ms", wait);
		return 0;
	case APPOINT_DUE:
		if (cd->inflight < max && !slow) {
			appoint_used(a, w);
			return 1;
		}
		/*
		 * Every place taken: wait in the lobby for a completion
		 * rather than go back to the network. Devices come back
		 * late and together (a host's busy loop, the network's
		 * jitter: tens of ms; a search: a few), and sent away
		 * again they crowd again (appoint.sh: 1.5-2.6 refusals per
		 * refused device before, about 1.0 with it). Bounded in
		 * number, as a parked request holds its connection, and in
		 * the wait it adds, by the operator's latency budget
		 * (cloudd.h): a fixed 100 ms held 3 devices once searches
		 * slowed to 30 ms, and the rest were refused again.
		 */
		if (!slow && cd->retr_lobby_n < RETR_LOBBY_MAX &&
		    (cd->retr_lobby_n + 1) * drain_gap_ms(cd) <=
		    lobby_wait_ms(cd)) {
			appoint_used(a, w);
			cd->retr_lobby[(cd->retr_lobby_0 + cd->retr_lobby_n++) %
			    RETR_LOBBY_MAX] = r;
			cd->retr_lobbied++;
			job_begin(&cd->job);	/* a reply owed */
			return 2;
		}
		refuse(cd, r, w, 1, why);
		return 0;
	case APPOINT_QUEUE:
		if (cd->inflight < max / 4 && !slow)
			return 1;
		snprintf(why, sizeof(why), "devices with earlier "
		    "appointments first");
		break;
	case APPOINT_NONE:
		if (cd->inflight < max && !slow)
			return 1;
		break;
	}
	refuse(cd, r, w, 0, why);
	return 0;
}

void
retrieve_rpc_free(struct cloudd *cd)
{
	struct appoint *a = &cd->retr_appt;

	if (a->e == NULL)
		return;
	log_info("APPOINT: %llu retrievals refused with an appointment, %llu "
	    "came and went in ahead (%llu waited in the lobby, %llu of them "
	    "told at stop), %llu came early, %llu found no place; a search "
	    "took %.1f ms, completions came %.1f ms apart (moving means)",
	    (unsigned long long)a->booked, (unsigned long long)a->kept,
	    (unsigned long long)cd->retr_lobbied,
	    (unsigned long long)cd->retr_lobby_stop,
	    (unsigned long long)a->early, (unsigned long long)a->nospace,
	    cd->retr_svc_s * 1e3, cd->retr_gap_s * 1e3);
	appoint_free(a);
}

void
retrieve_rpc(struct cloudd *cd, struct rpc_req *r)
{
	const Dccl__RetrieveReq *q = r->env->retrieve;
	struct pool *p;

	if ((p = pool_for(cd, r)) == NULL)
		return;
	if (q->dim != (uint32_t)p->dim || q->n == 0 ||
	    q->n > (uint64_t)cd->cf.max_queries ||
	    q->n_vectors != (size_t)q->n * q->dim) {
		rpc_error(cd, r, DCCL__ERROR_CODE__E_BAD_REQUEST,
		    "need 1..%lld vectors of dim %d (got n=%u dim=%u, %zu "
		    "floats)", (long long)cd->cf.max_queries, p->dim, q->n,
		    q->dim, q->n_vectors);
		return;
	}
	if (q->k == 0 || q->k > (uint64_t)cd->cf.max_k) {
		rpc_error(cd, r, DCCL__ERROR_CODE__E_TOO_LARGE,
		    "k must be 1..%lld", (long long)cd->cf.max_k);
		return;
	}
	if (!kern_finite(q->vectors, q->n_vectors)) {
		rpc_error(cd, r, DCCL__ERROR_CODE__E_BAD_TENSOR,
		    "query vectors contain NaN or Inf");
		return;
	}
	if (admit(cd, r) != 1)
		return;		/* refused, or in the lobby */
	start(cd, r, p);
}

/* Queues r's search on the threadpool. */
static void
start(struct cloudd *cd, struct rpc_req *r, struct pool *p)
{
	r->t_admit = clock_now();
	r->pool = p;
	p->refs++;
	r->work.data = r;
	job_begin(&cd->job);
	cd->inflight++;
	uv_queue_work(&cd->loop, &r->work, retrieve_work_cb,
	    retrieve_after_cb);
}
