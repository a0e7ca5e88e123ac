/*
 * dccl_device: see dccl_device.h. A handle is a host (host.c: the same
 * setup, announcement socket and stop as the daemon's) of one device on a
 * private loop; app calls go through app_request (app.c), the dispatch of
 * the app socket, as packed proto/app.proto messages, so there is one
 * validation and one scoring path. The loop runs only inside the calls.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "app.pb-c.h"
#include "deviced/app.h"
#include "deviced/dccl_device.h"
#include "deviced/deviced.h"
#include "deviced/host.h"
#include "shared/data/schema.h"
#include "shared/log.h"
#include "shared/xmalloc.h"

struct dccl_device {
	struct deviced	 dd;		/* a host of one device (host.c) */
	uv_timer_t	 timer;		/* wakes run_until at its deadline */
	int		 has_timer;
	int		 expired;
	uint64_t	 req_id;
	uint64_t	 trainings0;	/* jobs finished when learn began */
	char		 err[512];
};

static int
seterr(struct dccl_device *dv, int rc, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int
seterr(struct dccl_device *dv, int rc, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(dv->err, sizeof(dv->err), fmt, ap);
	va_end(ap);
	return rc;
}

/* Reads the configuration; conf's reports go into dv->err. */
static int
configure(struct dccl_device *dv, const char *conf_path,
    const char *const *options)
{
	struct deviced *dd = &dv->dd;
	char *text = NULL;
	size_t tlen = 0, n_opts = 0;
	FILE *f = open_memstream(&text, &tlen);
	int bad = 0;

	if (f == NULL)
		return seterr(dv, DCCL_DEVICE_E_SYSTEM, "open_memstream: %s",
		    strerror(errno));
	while (options != NULL && options[n_opts] != NULL)
		n_opts++;
	if (deviced_configure(dd, conf_path, options, n_opts, f) != 0 ||
	    deviced_conf_done(dd) != 0)
		bad = 1;
	if (!bad && dd->cf.shards[0] != '\0') {
		fprintf(f, "deviced.shards: a library handle is one device "
		    "(deviced.device-id, deviced.local-data)\n");
		bad = 1;
	}
	fclose(f);
	dd->conf.err = stderr;
	if (bad) {
		size_t n = strlen(text);
		while (n > 0 && text[n - 1] == '\n')
			text[--n] = '\0';
		seterr(dv, DCCL_DEVICE_E_CONFIG, "%s", n ? text :
		    "configuration has errors");
	}
	free(text);
	return bad ? DCCL_DEVICE_E_CONFIG : 0;
}

int
dccl_device_open(struct dccl_device **out, const char *conf_path,
    const char *const *options, char *err, size_t errlen)
{
	struct dccl_device *dv = xcalloc(1, sizeof(*dv));
	struct deviced *dd = &dv->dd;
	char why[256];
	int rc;

	*out = NULL;
	if ((rc = configure(dv, conf_path, options)) != 0)
		goto fail;
	if (host_open(dd, "dccl_device", 1, why, sizeof(why)) != 0) {
		rc = seterr(dv, DCCL_DEVICE_E_SYSTEM, "%s", why);
		goto fail;
	}
	uv_timer_init(&dd->loop, &dv->timer);
	dv->timer.data = dv;
	dv->has_timer = 1;
	if (host_add(dd, dd->cf.device_id, (uint32_t)dd->cf.user_id,
	    dd->cf.local_data, NULL) != 0) {
		rc = seterr(dv, DCCL_DEVICE_E_SYSTEM, "cannot start device "
		    "%s (state in %s; see the log)", dd->cf.device_id,
		    dd->cf.data_dir);
		goto fail;
	}
	/* The socket too when deviced.app-listen is set; the calls always. */
	if (host_listen(dd, why, sizeof(why)) != 0) {
		rc = seterr(dv, DCCL_DEVICE_E_SYSTEM, "%s", why);
		goto fail;
	}
	app_attach(&dd->dev[0]);
	log_info("READY: dccl_device %s for device %s, cloud %s",
	    DEVICED_VERSION, dd->dev[0].id, dd->cf.cloud);
	host_start(dd);
	*out = dv;
	return 0;
fail:
	if (err != NULL)
		snprintf(err, errlen, "%s", dv->err);
	dccl_device_close(dv);
	return rc;
}

static void
timer_cb(uv_timer_t *t)
{
	struct dccl_device *dv = t->data;

	dv->expired = 1;
}

/* Runs the loop until done(dv) or timeout_ms; 1 if done. */
static int
run_until(struct dccl_device *dv, int (*done)(struct dccl_device *),
    int timeout_ms)
{
	dv->expired = 0;
	uv_timer_start(&dv->timer, timer_cb, timeout_ms > 0 ?
	    (uint64_t)timeout_ms : 0, 0);
	while (!(done != NULL && done(dv)) && !dv->expired)
		uv_run(&dv->dd.loop, UV_RUN_ONCE);
	uv_timer_stop(&dv->timer);
	return done != NULL && done(dv);
}

int
dccl_device_poll(struct dccl_device *dv, int timeout_ms)
{
	dv->err[0] = '\0';
	if (timeout_ms <= 0)
		uv_run(&dv->dd.loop, UV_RUN_NOWAIT);
	else
		run_until(dv, NULL, timeout_ms);
	return 0;
}

int
dccl_device_fd(struct dccl_device *dv)
{
	return uv_backend_fd(&dv->dd.loop);
}

/* --- app requests -------------------------------------------------------- */

/* Sends q through app.c's dispatch; *rp gets the reply, or an error. */
static int
request(struct dccl_device *dv, Dccl__App__AppRequest *q,
    Dccl__App__AppReply **rp)
{
	struct device *d = &dv->dd.dev[0];
	size_t len, rlen;
	uint8_t *buf;
	void *rep;
	Dccl__App__AppReply *r;

	*rp = NULL;
	dv->err[0] = '\0';
	q->version = APP_VERSION;
	q->request_id = ++dv->req_id;
	len = dccl__app__app_request__get_packed_size(q);
	buf = xmalloc(len ? len : 1);
	dccl__app__app_request__pack(q, buf);
	if (app_request(d, buf, len, &rep, &rlen) != 0) {
		free(buf);
		return seterr(dv, DCCL_DEVICE_E_SYSTEM, "no app state");
	}
	free(buf);
	r = dccl__app__app_reply__unpack(NULL, rlen, rep);
	free(rep);
	if (r == NULL)
		return seterr(dv, DCCL_DEVICE_E_INTERNAL, "unreadable reply");
	if (r->body_case == DCCL__APP__APP_REPLY__BODY_ERROR) {
		int code = r->error->code;
		seterr(dv, -code, "%s", r->error->message);
		dccl__app__app_reply__free_unpacked(r, NULL);
		return -code;
	}
	*rp = r;
	return 0;
}

int
dccl_device_event(struct dccl_device *dv, const struct dccl_event *ev,
    struct dccl_event_result *res)
{
	Dccl__App__AppRequest q = DCCL__APP__APP_REQUEST__INIT;
	Dccl__App__RecordEvent e = DCCL__APP__RECORD_EVENT__INIT;
	Dccl__App__AppReply *r;
	int rc;

	if (ev == NULL)
		return seterr(dv, DCCL_DEVICE_E_BAD_REQUEST, "no event");
	e.item = ev->item;
	e.ts = ev->ts;
	e.clicked = ev->clicked != 0;
	e.genres = ev->genres;
	e.rating = ev->rating;
	e.side = (uint32_t *)ev->side;
	e.n_side = ev->side != NULL ? ev->n_side : 0;
	q.body_case = DCCL__APP__APP_REQUEST__BODY_EVENT;
	q.event = &e;
	if ((rc = request(dv, &q, &r)) != 0)
		return rc;
	if (r->body_case != DCCL__APP__APP_REPLY__BODY_STORED)
		rc = seterr(dv, DCCL_DEVICE_E_INTERNAL, "unexpected reply");
	else if (res != NULL) {
		res->n_samples = r->stored->n_samples;
		res->since_train = r->stored->since_train;
		res->retrain = r->stored->retrain;
		res->oov = r->stored->oov;
	}
	dccl__app__app_reply__free_unpacked(r, NULL);
	return rc;
}

int
dccl_device_rank(struct dccl_device *dv, const struct dccl_candidate *cand,
    size_t n, int64_t ts, size_t k, struct dccl_scored *out, size_t *n_out)
{
	Dccl__App__AppRequest q = DCCL__APP__APP_REQUEST__INIT;
	Dccl__App__RankRequest rq = DCCL__APP__RANK_REQUEST__INIT;
	Dccl__App__Candidate *c = NULL, **cp = NULL;
	Dccl__App__AppReply *r;
	int rc;

	*n_out = 0;
	/* Counts (none, too many) are app.c's to refuse, as for the socket. */
	if (n > 0 && cand == NULL)
		return seterr(dv, DCCL_DEVICE_E_BAD_REQUEST, "no candidates");
	if (k > UINT32_MAX)
		return seterr(dv, DCCL_DEVICE_E_BAD_REQUEST, "k too large");
	if (n > 0) {
		c = xcalloc(n, sizeof(*c));
		cp = xcalloc(n, sizeof(*cp));
	}
	for (size_t i = 0; i < n; i++) {
		dccl__app__candidate__init(&c[i]);
		c[i].item = cand[i].item;
		c[i].genres = cand[i].genres;
		c[i].side = (uint32_t *)cand[i].side;
		c[i].n_side = cand[i].side != NULL ? cand[i].n_side : 0;
		cp[i] = &c[i];
	}
	rq.n_candidates = n;
	rq.candidates = cp;
	rq.ts = ts;
	rq.k = (uint32_t)k;
	q.body_case = DCCL__APP__APP_REQUEST__BODY_RANK;
	q.rank = &rq;
	rc = request(dv, &q, &r);
	free(cp);
	free(c);
	if (rc != 0)
		return rc;
	if (r->body_case != DCCL__APP__APP_REPLY__BODY_RANKED ||
	    r->ranked->n_items != r->ranked->n_scores ||
	    r->ranked->n_items != r->ranked->n_index)
		rc = seterr(dv, DCCL_DEVICE_E_INTERNAL, "unexpected reply");
	else {
		for (size_t i = 0; i < r->ranked->n_items; i++) {
			out[i].item = r->ranked->items[i];
			out[i].index = r->ranked->index[i];
			out[i].score = r->ranked->scores[i];
		}
		*n_out = r->ranked->n_items;
	}
	dccl__app__app_reply__free_unpacked(r, NULL);
	return rc;
}

int
dccl_device_status(struct dccl_device *dv, struct dccl_device_status *st)
{
	Dccl__App__AppRequest q = DCCL__APP__APP_REQUEST__INIT;
	Dccl__App__StatusRequest sr = DCCL__APP__STATUS_REQUEST__INIT;
	Dccl__App__AppReply *r;
	int rc;

	q.body_case = DCCL__APP__APP_REQUEST__BODY_STATUS;
	q.status = &sr;
	if ((rc = request(dv, &q, &r)) != 0)
		return rc;
	if (r->body_case != DCCL__APP__APP_REPLY__BODY_STATUS)
		rc = seterr(dv, DCCL_DEVICE_E_INTERNAL, "unexpected reply");
	else {
		memset(st, 0, sizeof(*st));
		snprintf(st->device_id, sizeof(st->device_id), "%s",
		    r->status->device_id);
		st->user_id = r->status->user_id;
		snprintf(st->state, sizeof(st->state), "%s", r->status->state);
		st->model_version = r->status->model_version;
		st->personalized = r->status->personalized;
		st->n_samples = r->status->n_samples;
		st->since_train = r->status->since_train;
		st->trainings = r->status->trainings;
	}
	dccl__app__app_reply__free_unpacked(r, NULL);
	return rc;
}

/* --- learning ------------------------------------------------------------- */

/* Done: a job finished after the call began and its upload is settled. */
static int
learn_done(struct dccl_device *dv)
{
	struct dccl_device_status st;
	struct device *d = &dv->dd.dev[0];

	if (dccl_device_status(dv, &st) != 0)
		return 0;
	return st.trainings > dv->trainings0 && d->state == DEV_IDLE &&
	    !d->waiting && d->dd->jobs == 0;
}

int
dccl_device_learn(struct dccl_device *dv, int timeout_ms)
{
	struct dccl_device_status st;
	struct device *d = &dv->dd.dev[0];
	int rc;

	if ((rc = dccl_device_status(dv, &st)) != 0)
		return rc;
	dv->trainings0 = st.trainings;
	/* Trained already: ask for another job; else the round's job is it. */
	if (d->trained_version != 0)
		app_retrain_now(d);
	if (!run_until(dv, learn_done, timeout_ms))
		return seterr(dv, DCCL_DEVICE_E_TIMEOUT, "no finished learning "
		    "job within %d ms (state %s)", timeout_ms, st.state);
	if (d->job_rc != 0)
		return seterr(dv, DCCL_DEVICE_E_FAILED, "learning job failed: "
		    "%s", d->job_err);
	dv->err[0] = '\0';
	return 0;
}

uint32_t
dccl_device_hash_id(const char *s, size_t n, uint32_t buckets)
{
	return buckets ? (uint32_t)(schema_hash64(s, n) % buckets) : 0;
}

const char *
dccl_device_errmsg(const struct dccl_device *dv)
{
	return dv->err;
}

void
dccl_device_close(struct dccl_device *dv)
{
	if (dv == NULL)
		return;
	host_stop(&dv->dd);
	if (dv->has_timer)
		uv_close((uv_handle_t *)&dv->timer, NULL);
	host_close(&dv->dd);
	free(dv);
}
