/*
 * keylookup: see keylookup.h. Work goes in through a mutex-guarded list
 * the thread waits on and comes back through a second list and a uv_async
 * wakeup, as in seal.c. Each lookup (one per id in flight) carries the
 * requests parked on it; every parked request is a job (job.h), so a
 * shutdown waits for its answer. A flush is an item of the same lists.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cloudd/job.h"
#include "cloudd/keylookup.h"
#include "cloudd/store.h"
#include "dccl.pb-c.h"
#include "shared/log.h"
#include "shared/wire.h"
#include "shared/xmalloc.h"

struct parked {
	struct parked	*next;
	void		*req;
	void		*buf;		/* the request's raw bytes */
	size_t		 len;
};

struct item {
	struct item		*next;		/* in or done list */
	/* a flush (keys != NULL), else a lookup of id */
	struct store_authkey	*keys;
	size_t			 n;
	char			 id[WIRE_DEVID_MAX + 1];
	struct parked		*reqs, **tail;	/* loop only; in order */
	int			 n_reqs;
	/* the thread's answer */
	int			 rc;
	struct store_authkey	 key;
	char			 err[256];
};

struct keylookup {
	struct keylookup_cb	 cb;
	struct job_ctl		*job;
	struct store		*st;	/* the thread's connection */
	pthread_t		 th;
	pthread_mutex_t		 mu;
	pthread_cond_t		 cv;
	struct item		*in, **in_tail;
	struct item		*done, **done_tail;
	int			 quit;
	uv_async_t		 wake;
	/* loop only: the lookups in flight, by id, and the flush */
	struct item		*fly[KEYLOOKUP_MAX];
	struct item		*flushing;
	unsigned long long	 count, flushes;
};

static void
run(struct keylookup *k, struct item *l)
{
	if (l->keys != NULL)	/* a max-merge: never lowers a counter */
		l->rc = store_authkey_counters(k->st, l->keys, l->n);
	else
		l->rc = store_authkey_get(k->st, l->id, &l->key);
	if (l->rc != 0 && l->rc != -ENOENT)
		snprintf(l->err, sizeof(l->err), "%s", store_errmsg(k->st));
}

static void *
lookup_main(void *arg)
{
	struct keylookup *k = arg;

	pthread_mutex_lock(&k->mu);
	for (;;) {
		struct item *l;
		while (k->in == NULL && !k->quit)
			pthread_cond_wait(&k->cv, &k->mu);
		if (k->in == NULL)
			break;
		l = k->in;
		if ((k->in = l->next) == NULL)
			k->in_tail = &k->in;
		pthread_mutex_unlock(&k->mu);
		run(k, l);
		pthread_mutex_lock(&k->mu);
		l->next = NULL;
		*k->done_tail = l;
		k->done_tail = &l->next;
		uv_async_send(&k->wake);
	}
	pthread_mutex_unlock(&k->mu);
	return NULL;
}

static void
enqueue(struct keylookup *k, struct item *l)
{
	pthread_mutex_lock(&k->mu);
	l->next = NULL;
	*k->in_tail = l;
	k->in_tail = &l->next;
	pthread_cond_signal(&k->cv);
	pthread_mutex_unlock(&k->mu);
}

/*
 * Hands out l's answer: a flush to cb.flushed; a lookup to cb.done, then
 * its requests to cb.resume (code: E_SHUTTING_DOWN for one never run).
 */
static void
finish(struct keylookup *k, struct item *l, int code)
{
	struct parked *p, *next;

	if (l->keys != NULL) {
		k->flushing = NULL;
		k->flushes++;
		k->cb.flushed(k->cb.arg, code != 0 ? -ECANCELED : l->rc,
		    l->keys, l->n, code != 0 ? "cloudd is shutting down" :
		    l->err);
		memset(l->keys, 0, l->n * sizeof(*l->keys));
		free(l->keys);
		free(l);
		return;
	}
	for (int i = 0; i < KEYLOOKUP_MAX; i++)
		if (k->fly[i] == l)
			k->fly[i] = NULL;
	if (code == 0)
		code = k->cb.done(k->cb.arg, l->id, l->rc, &l->key, l->err);
	k->count++;
	for (p = l->reqs; p != NULL; p = next) {
		next = p->next;
		job_end(k->job, 1);
		k->cb.resume(k->cb.arg, p->req, p->buf, p->len, code);
		free(p->buf);
		free(p);
	}
	memset(&l->key, 0, sizeof(l->key));
	free(l);
}

static void
wake_cb(uv_async_t *h)
{
	struct keylookup *k = h->data;
	struct item *l, *next;

	pthread_mutex_lock(&k->mu);
	l = k->done;
	k->done = NULL;
	k->done_tail = &k->done;
	pthread_mutex_unlock(&k->mu);
	for (; l != NULL; l = next) {
		next = l->next;
		finish(k, l, 0);
	}
	job_idle(k->job);
}

static void
closed_cb(uv_handle_t *h)
{
	struct keylookup *k = h->data;

	store_close(k->st);
	pthread_mutex_destroy(&k->mu);
	pthread_cond_destroy(&k->cv);
	free(k);
}

int
keylookup_start(struct keylookup **out, uv_loop_t *loop, struct job_ctl *job,
    const char *backend, const char *target, int busy_ms,
    const struct keylookup_cb *cb)
{
	struct keylookup *k = xcalloc(1, sizeof(*k));
	char err[256];

	*out = NULL;
	k->cb = *cb;
	k->job = job;
	k->in_tail = &k->in;
	k->done_tail = &k->done;
	if (store_open(&k->st, backend, target, busy_ms, err,
	    sizeof(err)) != 0) {
		log_warnx("AUTH: no connection for key lookups (%s); they "
		    "run on the loop", err);
		free(k);
		return -1;
	}
	if (uv_async_init(loop, &k->wake, wake_cb) != 0) {
		store_close(k->st);
		free(k);
		return -1;
	}
	k->wake.data = k;
	pthread_mutex_init(&k->mu, NULL);
	pthread_cond_init(&k->cv, NULL);
	if (pthread_create(&k->th, NULL, lookup_main, k) != 0) {
		log_warnx("AUTH: no key lookup thread; lookups run on the "
		    "loop");
		uv_close((uv_handle_t *)&k->wake, closed_cb);
		return -1;
	}
	*out = k;
	return 0;
}

void
keylookup_stop(struct keylookup *k)
{
	struct item *l, *next;

	if (k == NULL)
		return;
	pthread_mutex_lock(&k->mu);
	k->quit = 1;
	pthread_cond_signal(&k->cv);
	pthread_mutex_unlock(&k->mu);
	pthread_join(k->th, NULL);
	/* Nothing is parked when the daemon stops (parked requests are
	 * jobs); anything that is gets its answer or a refusal. */
	for (l = k->done; l != NULL; l = next) {
		next = l->next;
		finish(k, l, 0);
	}
	for (l = k->in; l != NULL; l = next) {
		next = l->next;
		finish(k, l, DCCL__ERROR_CODE__E_SHUTTING_DOWN);
	}
	k->in = k->done = NULL;
	log_info("AUTH: off the loop: %llu device-key lookups, %llu "
	    "counter flushes", k->count, k->flushes);
	uv_close((uv_handle_t *)&k->wake, closed_cb);
}

int
keylookup_park(struct keylookup *k, void *req, const char *id,
    const void *buf, size_t len)
{
	struct item *l = NULL;
	struct parked *p;
	int free_slot = -1;

	for (int i = 0; i < KEYLOOKUP_MAX; i++) {
		if (k->fly[i] == NULL) {
			if (free_slot < 0)
				free_slot = i;
		} else if (strcmp(k->fly[i]->id, id) == 0)
			l = k->fly[i];
	}
	if (l == NULL && free_slot < 0)
		return -EBUSY;
	if (l != NULL && l->n_reqs >= KEYLOOKUP_PER_ID)
		return -EBUSY;
	p = xcalloc(1, sizeof(*p));
	p->req = req;
	p->buf = xmalloc(len ? len : 1);
	memcpy(p->buf, buf, len);
	p->len = len;
	job_begin(k->job);
	if (l != NULL) {	/* in order: counters must rise */
		*l->tail = p;
		l->tail = &p->next;
		l->n_reqs++;
		return 0;
	}
	l = xcalloc(1, sizeof(*l));
	snprintf(l->id, sizeof(l->id), "%s", id);
	l->reqs = p;
	l->tail = &p->next;
	l->n_reqs = 1;
	k->fly[free_slot] = l;
	enqueue(k, l);
	return 0;
}

int
keylookup_flush(struct keylookup *k, struct store_authkey *keys, size_t n)
{
	struct item *l;

	if (k->flushing != NULL)
		return -EBUSY;
	l = xcalloc(1, sizeof(*l));
	l->keys = keys;
	l->n = n;
	k->flushing = l;
	enqueue(k, l);
	return 0;
}
