/*
 * app: the device's local app interface; see app.h (and app_query.h for the
 * feature rules) and proto/app.proto for the messages.
 *
 * DESIGN. One raw REP socket per device, watched by nnuv on the daemon's
 * loop; every request is answered synchronously on the loop thread (an
 * event is one SQLite transaction, a rank is one batched forward pass over
 * at most deviced.app-max-candidates samples), so there is no in-flight
 * state to bound or cancel. Ownership while a learning job runs (state
 * DEV_TRAIN): the worker reads d->local and d->model, so the loop only
 * reads them too; events recorded meanwhile go to a->pending and are
 * merged when the job ends (job_done, one of the device hooks app.c
 * sets). Ranking never touches d->model while a job may be reading it:
 * it uses d->serving, a model the loop owns (the job's result: its
 * adopted model, or a view of the cloud model, which shares only tensors
 * nobody writes; or a copy of the cloud model made outside a job). Between the first download and the end of the first job there may
 * be no such copy, and a rank gets E_BUSY.
 */
#include <errno.h>
#include <math.h>
#include <nanomsg/nn.h>
#include <nanomsg/reqrep.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "app.pb-c.h"
#include "deviced/app.h"
#include "deviced/deviced.h"
#include "deviced/ofa_dev.h"
#include "shared/ml/ctr.h"
#include "shared/data/dataset.h"
#include "shared/log.h"
#include "shared/xmalloc.h"

struct app {
	struct device	*d;
	struct nnuv	 sock;
	int		 open;
	char		 ep[1200];
	struct dataset	 pending;	/* events recorded during a job */
	int64_t		 pending_last_id;	/* store id of its newest */
	uint64_t	 since_train;	/* events since the last job began */
	uint64_t	 trainings;	/* jobs finished */
	int		 personalized;	/* d->serving is an adopted model */
	uint64_t	 serving_version;	/* d->serving's cloud base */
	int		 force;		/* app_retrain_now: a job is wanted */
};

/* Reply under construction: the envelope and storage for its body. */
struct rctx {
	Dccl__App__AppReply	 r;
	Dccl__App__AppError	 err;
	Dccl__App__EventStored	 st;
	Dccl__App__Ranked	 rk;
	Dccl__App__AppStatus	 ss;
	char			 msg[256];
};

/* ---- the serving model ---------------------------------------------------- */

/* A parameters-only copy of m (no optimizer state), for the cloud model
   the loop serves outside a job. */
static struct ctr *
serving_copy(const struct ctr *m)
{
	struct ctr *s;

	if (ctr_new_zero(&s, ctr_config(m)) != 0 ||
	    ctr_copy_params(s, m) != 0) {
		ctr_free(s);
		return ctr_clone(m);
	}
	return s;
}

/*
 * The device's hooks (device.c calls them; app.c sets them when it gives
 * a device its app state).
 */

/* The job ended: take its serving model, merge the events it missed. */
static void
job_done(struct device *d, int ok)
{
	struct app *a = d->app;
	struct ctr *c = d->job_serving;

	d->job_serving = NULL;
	if (a == NULL) {
		ctr_free(c);
		return;
	}
	if (ok && c != NULL) {
		/*
		 * The job's model is the loop's now and only read: kept as
		 * it is (a copy here was a whole model on the loop thread
		 * per job; the job's results are views or its own copy,
		 * trained by SGD, so they hold no optimizer state).
		 */
		ctr_free(d->serving);
		ctr_release_grads(c);
		d->serving = c;
		c = NULL;
		a->personalized = d->adopted;
		a->serving_version = d->version;
	}
	ctr_free(c);
	a->trainings++;
	/* The job is over: d->local is the loop's again. */
	for (size_t i = 0; i < a->pending.n; i++) {
		const struct sample *s = &a->pending.s[i];
		dataset_append(&d->local, s, sample_hist(&a->pending, s),
		    s->hist_n);
	}
	if (a->pending.n > 0)
		d->local_last_id = a->pending_last_id;
	dataset_keep_last(&d->local, (size_t)d->dd->cf.max_local);
	a->since_train = a->pending.n;
	if (a->pending.n > 0 && ofa_dev_samples(d))
		device_poke(d);		/* Forward-OFA: fetch, adapt again */
	dataset_fini(&a->pending);
	dataset_init(&a->pending);
}

/* 1 when enough new samples arrived (or a job was asked for). */
static int
job_wanted(struct device *d)
{
	struct app *a = d->app;
	int64_t every = d->dd->cf.retrain_every;

	if (a == NULL || d->model == NULL || d->version == 0 ||
	    d->dd->stopping)
		return 0;
	if (a->force) {
		a->force = 0;
		log_info("APP-RETRAIN: device=%s asked for; re-running the "
		    "learning job", d->id);
		return 1;
	}
	if (every <= 0 || a->since_train < (uint64_t)every)
		return 0;
	log_info("APP-RETRAIN: device=%s %llu new local samples (of %zu); "
	    "re-running the learning job", d->id,
	    (unsigned long long)a->since_train, d->local.n);
	return 1;
}

/* ---- request handlers ----------------------------------------------------- */

static const char *
code_name(int code)
{
	const ProtobufCEnumValue *v = protobuf_c_enum_descriptor_get_value(
	    &dccl__app__app_error_code__descriptor, code);

	return v ? v->name : "E_UNKNOWN";
}

__attribute__((format(printf, 3, 4)))
static int
fail(struct rctx *c, int code, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(c->msg, sizeof(c->msg), fmt, ap);
	va_end(ap);
	dccl__app__app_error__init(&c->err);
	c->err.code = code;
	c->err.message = c->msg;
	c->r.body_case = DCCL__APP__APP_REPLY__BODY_ERROR;
	c->r.error = &c->err;
	return -1;
}

static int
check_ts(struct rctx *c, int64_t ts)
{
	if (ts < 0 || ts > APP_TS_MAX)
		return fail(c, DCCL__APP__APP_ERROR_CODE__E_BAD_REQUEST,
		    "ts %lld out of range (0 = now, else unix seconds)",
		    (long long)ts);
	return 0;
}

static int64_t
last_ts(const struct app *a)
{
	const struct device *d = a->d;

	if (a->pending.n > 0)
		return a->pending.s[a->pending.n - 1].ts;
	return d->local.n > 0 ? d->local.s[d->local.n - 1].ts : 0;
}

/*
 * Side values given by the app (issue 16) for the local data's side
 * fields: none (all unknown) or exactly n_side, each <= its card (==
 * card: unknown). 0, or a typed E_BAD_REQUEST.
 */
static int
side_values(const struct device *d, const uint32_t *v, size_t n,
    uint32_t *out, struct rctx *c, const char *what, size_t at)
{
	const struct dataset *l = &d->local;

	memset(out, 0, SAMPLE_SIDE_MAX * sizeof(*out));
	for (uint32_t k = 0; k < l->n_side; k++)
		out[k] = l->side_card[k];
	if (n == 0)
		return 0;
	if (n != l->n_side)
		return fail(c, DCCL__APP__APP_ERROR_CODE__E_BAD_REQUEST,
		    "%s %zu: %zu side values; the local data have %u side "
		    "fields", what, at, n, l->n_side);
	for (size_t k = 0; k < n; k++) {
		if (v[k] > l->side_card[k])
			return fail(c, DCCL__APP__APP_ERROR_CODE__E_BAD_REQUEST,
			    "%s %zu: side value %zu is %u; field %zu has %u "
			    "values", what, at, k, v[k], k, l->side_card[k]);
		out[k] = v[k];
	}
	return 0;
}

static int
on_event(struct app *a, const Dccl__App__RecordEvent *ev, struct rctx *c)
{
	struct device *d = a->d;
	int64_t every = d->dd->cf.retrain_every, ts = ev->ts, id = 0;
	size_t max = (size_t)d->dd->cf.max_local;
	struct dataset one;
	struct dataset *to;
	const struct sample *s;
	uint32_t side[SAMPLE_SIDE_MAX];
	size_t i;

	if (side_values(d, ev->side, ev->n_side, side, c, "event", 0) != 0)
		return -1;
	if (ev->item >= APP_ITEM_MAX)
		return fail(c, DCCL__APP__APP_ERROR_CODE__E_BAD_REQUEST,
		    "item %u beyond the id space (< %u)", ev->item,
		    APP_ITEM_MAX);
	if (!isfinite(ev->rating) || ev->rating < 0 ||
	    ev->rating > APP_RATING_MAX)
		return fail(c, DCCL__APP__APP_ERROR_CODE__E_BAD_REQUEST,
		    "rating %g not in 0..%g", ev->rating, APP_RATING_MAX);
	if (check_ts(c, ts) != 0)
		return -1;
	if (ts == 0)
		ts = (int64_t)time(NULL);
	/* Histories need the samples in time order (app_hist). */
	if (ts < last_ts(a))
		return fail(c, DCCL__APP__APP_ERROR_CODE__E_BAD_REQUEST,
		    "ts %lld is before the last local sample (%lld)",
		    (long long)ts, (long long)last_ts(a));
	/*
	 * The events of a running job wait in memory until it ends: at most
	 * learn.max-local of them, then the app is told to come back.
	 */
	if (d->state == DEV_TRAIN && a->pending.n >= max)
		return fail(c, DCCL__APP__APP_ERROR_CODE__E_BUSY,
		    "a learning job is running and %zu events wait for it "
		    "(learn.max-local); retry", a->pending.n);
	dataset_init(&one);
	app_query(&one, &d->local, &a->pending, app_hist_k(d->model),
	    d->user, ev->item, ev->genres, ts, ev->clicked ? 1.0f : 0.0f,
	    ev->rating);
	one.n_side = d->local.n_side;
	memcpy(one.side_card, d->local.side_card, sizeof(one.side_card));
	memcpy(one.s[0].side, side, sizeof(side));
	/* Committed before the reply: an acknowledged event survives. */
	/* The store keeps the newest learn.max-local (same transaction). */
	if (dstore_samples_add(d->st, &one, (uint64_t)max, &id) != 0) {
		log_warnx("APP-STORE: device=%s: %s", d->id,
		    dstore_errmsg(d->st));
		dataset_fini(&one);
		return fail(c, DCCL__APP__APP_ERROR_CODE__E_STORAGE,
		    "the event was not stored");
	}
	to = d->state == DEV_TRAIN ? &a->pending : &d->local;
	s = &one.s[0];
	i = dataset_append(to, s, sample_hist(&one, s), s->hist_n);
	dataset_fini(&one);
	if (to == &d->local) {
		d->local_last_id = id;
		if (d->local.n > max) {	/* the oldest goes */
			dataset_keep_last(&d->local, max);
			i = d->local.n - 1;
		}
	} else
		a->pending_last_id = id;
	a->since_train++;
	if (to == &d->local && ofa_dev_samples(d))
		device_poke(d);		/* Forward-OFA: fetch, adapt again */
	dccl__app__event_stored__init(&c->st);
	c->st.n_samples = d->local.n + a->pending.n;
	c->st.since_train = a->since_train;
	c->st.retrain = every > 0 && a->since_train >= (uint64_t)every;
	c->st.oov = d->model != NULL && ev->item >= ctr_config(d->model)->n_items;
	c->st.hist_n = to->s[i].hist_n;
	c->r.body_case = DCCL__APP__APP_REPLY__BODY_STORED;
	c->r.stored = &c->st;
	log_info("APP-EVENT: device=%s item=%u clicked=%d ts=%lld hist=%u: "
	    "%llu samples, %llu since the last learning job%s", d->id,
	    ev->item, ev->clicked ? 1 : 0, (long long)ts, c->st.hist_n,
	    (unsigned long long)c->st.n_samples,
	    (unsigned long long)a->since_train, c->st.oov ? ", new item" : "");
	if (c->st.retrain)
		device_poke(d);	/* starts the job now if the device is idle */
	return 0;
}

/*
 * The model to rank with: the job's result, else a copy of the cloud
 * model (refreshed when a newer cloud model arrived and no job is using
 * d->model). NULL with an error set when there is none.
 */
static struct ctr *
serving(struct app *a, struct rctx *c)
{
	struct device *d = a->d;

	if (d->serving != NULL && (a->personalized ||
	    a->serving_version == d->version))
		return d->serving;
	if (d->model == NULL) {
		if (d->serving != NULL)
			return d->serving;
		fail(c, DCCL__APP__APP_ERROR_CODE__E_NO_MODEL,
		    "no model downloaded yet");
		return NULL;
	}
	if (d->state == DEV_TRAIN) {
		if (d->serving != NULL)
			return d->serving;
		fail(c, DCCL__APP__APP_ERROR_CODE__E_BUSY,
		    "the first learning job is running; retry");
		return NULL;
	}
	ctr_free(d->serving);
	d->serving = serving_copy(d->model);
	a->personalized = 0;
	a->serving_version = d->version;
	return d->serving;
}

struct scored {
	float		 s;
	uint32_t	 i;
};

static int
cmp_scored(const void *x, const void *y)
{
	const struct scored *a = x, *b = y;

	if (a->s != b->s)
		return a->s > b->s ? -1 : 1;
	return a->i < b->i ? -1 : a->i > b->i;
}

static int
on_rank(struct app *a, const Dccl__App__RankRequest *rq, struct rctx *c)
{
	struct device *d = a->d;
	size_t n = rq->n_candidates, k;
	int64_t ts = rq->ts;
	struct dataset q;
	struct scored *o;
	struct ctr *m;
	float *p;
	uint32_t n_items, oov = 0;
	int K, rc;

	if (n == 0)
		return fail(c, DCCL__APP__APP_ERROR_CODE__E_BAD_REQUEST,
		    "no candidates");
	if (n > (size_t)d->dd->cf.app_max_candidates)
		return fail(c, DCCL__APP__APP_ERROR_CODE__E_TOO_LARGE,
		    "%zu candidates; at most %lld", n,
		    (long long)d->dd->cf.app_max_candidates);
	for (size_t i = 0; i < n; i++) {
		uint32_t side[SAMPLE_SIDE_MAX];

		if (rq->candidates[i]->item >= APP_ITEM_MAX)
			return fail(c, DCCL__APP__APP_ERROR_CODE__E_BAD_REQUEST,
			    "candidate %zu: item %u beyond the id space "
			    "(< %u)", i, rq->candidates[i]->item,
			    APP_ITEM_MAX);
		if (side_values(d, rq->candidates[i]->side,
		    rq->candidates[i]->n_side, side, c, "candidate", i) != 0)
			return -1;
	}
	if (check_ts(c, ts) != 0)
		return -1;
	if (ts == 0)
		ts = (int64_t)time(NULL);
	if ((m = serving(a, c)) == NULL)
		return -1;
	K = app_hist_k(m);
	n_items = ctr_config(m)->n_items;
	dataset_init(&q);
	dataset_reserve(&q, n, n * (size_t)K);
	q.n_side = d->local.n_side;
	memcpy(q.side_card, d->local.side_card, sizeof(q.side_card));
	for (size_t i = 0; i < n; i++) {
		const Dccl__App__Candidate *x = rq->candidates[i];
		size_t j = app_query(&q, &d->local, &a->pending, K, d->user,
		    x->item, x->genres, ts, 0, 0);

		/* checked above: cannot fail */
		(void)side_values(d, x->side, x->n_side, q.s[j].side, c,
		    "candidate", i);
		oov += x->item >= n_items;
	}
	p = xcalloc(n, sizeof(*p));
	rc = app_score(m, &q, p);
	c->rk.hist_n = q.s[0].hist_n;
	dataset_fini(&q);
	if (rc != 0) {
		free(p);
		return fail(c, DCCL__APP__APP_ERROR_CODE__E_INTERNAL,
		    "scoring failed (%s)", rc == -ERANGE ? "non-finite score" :
		    "bad input");
	}
	o = xcalloc(n, sizeof(*o));
	for (size_t i = 0; i < n; i++) {
		o[i].s = p[i];
		o[i].i = (uint32_t)i;
	}
	free(p);
	qsort(o, n, sizeof(*o), cmp_scored);
	k = rq->k == 0 || rq->k > n ? n : rq->k;
	c->rk.n_items = c->rk.n_scores = c->rk.n_index = k;
	c->rk.items = xcalloc(k, sizeof(uint32_t));
	c->rk.scores = xcalloc(k, sizeof(float));
	c->rk.index = xcalloc(k, sizeof(uint32_t));
	for (size_t i = 0; i < k; i++) {
		c->rk.items[i] = rq->candidates[o[i].i]->item;
		c->rk.scores[i] = o[i].s;
		c->rk.index[i] = o[i].i;
	}
	free(o);
	c->rk.model_version = a->serving_version;
	c->rk.personalized = a->personalized;
	c->rk.n_oov = oov;
	c->r.body_case = DCCL__APP__APP_REPLY__BODY_RANKED;
	c->r.ranked = &c->rk;
	log_debug("APP-RANK: device=%s %zu candidates, top %zu, model v%llu%s",
	    d->id, n, k, (unsigned long long)a->serving_version,
	    a->personalized ? " (personalized)" : "");
	return 0;
}

static int
on_status(struct app *a, struct rctx *c)
{
	struct device *d = a->d;

	c->ss.device_id = d->id;
	c->ss.user_id = d->user;
	c->ss.state = (char *)device_state_name(d->state);
	c->ss.model_version = d->version;
	c->ss.personalized = d->serving != NULL && a->personalized;
	c->ss.n_samples = d->local.n + a->pending.n;
	c->ss.since_train = a->since_train;
	c->ss.retrain_every = (uint32_t)d->dd->cf.retrain_every;
	c->ss.n_items = d->model ? ctr_config(d->model)->n_items : 0;
	c->ss.max_candidates = (uint32_t)d->dd->cf.app_max_candidates;
	c->ss.trainings = a->trainings;
	c->r.body_case = DCCL__APP__APP_REPLY__BODY_STATUS;
	c->r.status = &c->ss;
	return 0;
}

static void
reply(struct app *a, struct rctx *c, void *hdr)
{
	size_t len;
	void *msg;

	c->r.version = APP_VERSION;
	c->r.device_id = a->d->id;
	len = dccl__app__app_reply__get_packed_size(&c->r);
	if ((msg = nn_allocmsg(len ? len : 1, 0)) == NULL) {
		log_warnx("APP-SEND: device=%s: out of message memory",
		    a->d->id);
		if (hdr != NULL)
			nn_freemsg(hdr);
		return;
	}
	dccl__app__app_reply__pack(&c->r, msg);
	if (nnuv_send(&a->sock, msg, len, hdr) != 0)
		log_warnx("APP-SEND: device=%s: %s", a->d->id,
		    nn_strerror(nn_errno()));
}

/*
 * Answers the packed request msg into c: the one dispatch of the socket and
 * of app_request (the embeddable library). Returns the unpacked request,
 * which the reply's strings point into (free after packing), or NULL.
 */
static Dccl__App__AppRequest *
dispatch(struct app *a, const void *msg, size_t len, struct rctx *c)
{
	struct device *d = a->d;
	Dccl__App__AppRequest *q;

	memset(c, 0, sizeof(*c));
	dccl__app__app_reply__init(&c->r);
	dccl__app__ranked__init(&c->rk);
	dccl__app__app_status__init(&c->ss);
	q = dccl__app__app_request__unpack(NULL, len, msg);
	if (q == NULL)
		fail(c, DCCL__APP__APP_ERROR_CODE__E_BAD_REQUEST,
		    "malformed request (%zu bytes)", len);
	else {
		c->r.request_id = q->request_id;
		if (q->version != APP_VERSION)
			fail(c, DCCL__APP__APP_ERROR_CODE__E_VERSION,
			    "app protocol version %u (this device speaks %d)",
			    q->version, APP_VERSION);
		else if (q->device_id[0] != '\0' &&
		    strcmp(q->device_id, d->id) != 0)
			fail(c, DCCL__APP__APP_ERROR_CODE__E_NOT_FOUND,
			    "this socket serves device %s", d->id);
		else if (d->dd->stopping)
			fail(c, DCCL__APP__APP_ERROR_CODE__E_SHUTTING_DOWN,
			    "deviced is shutting down");
		else if (q->body_case == DCCL__APP__APP_REQUEST__BODY_EVENT)
			on_event(a, q->event, c);
		else if (q->body_case == DCCL__APP__APP_REQUEST__BODY_RANK)
			on_rank(a, q->rank, c);
		else if (q->body_case == DCCL__APP__APP_REQUEST__BODY_STATUS)
			on_status(a, c);
		else
			fail(c, DCCL__APP__APP_ERROR_CODE__E_UNKNOWN_BODY,
			    "request has no body");
	}
	if (c->r.body_case == DCCL__APP__APP_REPLY__BODY_ERROR)
		log_warnx("APP-BADREQ: device=%s req=%llu %s: %s", d->id,
		    (unsigned long long)c->r.request_id,
		    code_name(c->err.code), c->msg);
	c->r.version = APP_VERSION;
	c->r.device_id = d->id;
	return q;
}

static void
rctx_fini(struct rctx *c, Dccl__App__AppRequest *q)
{
	free(c->rk.items);
	free(c->rk.scores);
	free(c->rk.index);
	if (q != NULL)
		dccl__app__app_request__free_unpacked(q, NULL);
}

int
app_request(struct device *d, const void *req, size_t len, void **rep,
    size_t *rep_len)
{
	Dccl__App__AppRequest *q;
	struct rctx c;

	*rep = NULL;
	*rep_len = 0;
	if (d->app == NULL)
		return -ENOTCONN;
	q = dispatch(d->app, req, len, &c);
	*rep_len = dccl__app__app_reply__get_packed_size(&c.r);
	*rep = xmalloc(*rep_len ? *rep_len : 1);
	dccl__app__app_reply__pack(&c.r, *rep);
	rctx_fini(&c, q);
	return 0;
}

static void	app_close(struct device *d);
static void	app_fini(struct device *d);

static const struct device_hooks app_hooks = {
	.job_done = job_done,
	.job_wanted = job_wanted,
	.close = app_close,
	.fini = app_fini,
};

int
app_attach(struct device *d)
{
	struct app *a;

	if (d->app != NULL)
		return 0;
	a = xcalloc(1, sizeof(*a));
	a->d = d;
	dataset_init(&a->pending);
	d->app = a;
	device_set_hooks(d, &app_hooks);
	return 0;
}

void
app_retrain_now(struct device *d)
{
	if (d->app == NULL)
		return;
	d->app->force = 1;
	device_poke(d);
}

static void
app_recv_cb(struct nnuv *s, void *msg, size_t len, void *hdr)
{
	struct app *a = s->data;
	Dccl__App__AppRequest *q;
	struct rctx c;

	q = dispatch(a, msg, len, &c);
	nn_freemsg(msg);
	reply(a, &c, hdr);
	rctx_fini(&c, q);
}

/* ---- socket lifecycle ----------------------------------------------------- */

/* Expands {dir} and {id} in tmpl into out. -1 if it does not fit. */
static int
expand(const char *tmpl, const struct device *d, char *out, size_t len)
{
	size_t n = 0;

	for (const char *p = tmpl; *p != '\0'; ) {
		const char *v = NULL;
		size_t vl;
		if (strncmp(p, "{dir}", 5) == 0)
			v = d->dir;
		else if (strncmp(p, "{id}", 4) == 0)
			v = d->id;
		if (v != NULL) {
			vl = strlen(v);
			p += p[1] == 'd' ? 5 : 4;
		} else {
			v = p++;
			vl = 1;
		}
		if (n + vl + 1 > len)
			return -1;
		memcpy(out + n, v, vl);
		n += vl;
	}
	out[n] = '\0';
	return 0;
}

int
app_open(struct device *d)
{
	const struct deviced_conf *cf = &d->dd->cf;
	struct app *a;
	int sock, max;

	if (cf->app_listen[0] == '\0')
		return 0;
	if (d->dd->max_dev > 1 && strstr(cf->app_listen, "{dir}") == NULL &&
	    strstr(cf->app_listen, "{id}") == NULL) {
		log_warnx("APP-BIND: deviced.app-listen needs {dir} or {id} "
		    "with several devices");
		return -1;
	}
	a = xcalloc(1, sizeof(*a));
	a->d = d;
	dataset_init(&a->pending);
	if (expand(cf->app_listen, d, a->ep, sizeof(a->ep)) != 0 ||
	    (strncmp(a->ep, "ipc://", 6) != 0 &&
	    strncmp(a->ep, "tcp://127.0.0.1:", 16) != 0 &&
	    strncmp(a->ep, "tcp://localhost:", 16) != 0)) {
		/* Anyone who can connect can train this device: local only. */
		log_warnx("APP-BIND: %s: not a local endpoint (ipc:// or "
		    "tcp://127.0.0.1:PORT)", a->ep);
		goto fail;
	}
	/* Room for twice the candidate limit; larger is dropped by nanomsg. */
	max = (int)(cf->app_max_candidates * 32 + 65536);
	if ((sock = nn_socket(AF_SP_RAW, NN_REP)) < 0) {
		log_warnx("APP-BIND: %s", nn_strerror(nn_errno()));
		goto fail;
	}
	if (nn_setsockopt(sock, NN_SOL_SOCKET, NN_RCVMAXSIZE, &max,
	    sizeof(max)) < 0 || nn_bind(sock, a->ep) < 0) {
		log_warnx("APP-BIND: device=%s %s: %s", d->id, a->ep,
		    nn_strerror(nn_errno()));
		nn_close(sock);
		goto fail;
	}
	if (nnuv_init(&a->sock, &d->dd->loop, sock, 1, app_recv_cb, a) != 0) {
		log_warnx("APP-BIND: device=%s: cannot watch the socket", d->id);
		nn_close(sock);
		goto fail;
	}
	a->open = 1;
	d->app = a;
	device_set_hooks(d, &app_hooks);
	log_info("APP: device=%s listening on %s", d->id, a->ep);
	return 0;
fail:
	dataset_fini(&a->pending);
	free(a);
	return -1;
}

static void
app_close(struct device *d)
{
	if (d->app != NULL && d->app->open) {
		nnuv_close(&d->app->sock, NULL);
		d->app->open = 0;
	}
}

static void
app_fini(struct device *d)
{
	/* d->serving and d->job_serving are device.c's to free. */
	if (d->app == NULL)
		return;
	dataset_fini(&d->app->pending);
	free(d->app);
	d->app = NULL;
}
