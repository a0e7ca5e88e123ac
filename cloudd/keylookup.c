/*
 * keylookup: see keylookup.h. Lookups go in through a mutex-guarded list
 * the thread waits on and come back through a second list and a uv_async
 * wakeup, as in seal.c. Each lookup (one per id in flight) carries the
 * requests parked on it; every parked request is a job (job.c), so a
 * shutdown waits for its answer.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cloudd/cloudd.h"
#include "cloudd/guard.h"
#include "cloudd/keylookup.h"
#include "cloudd/rpc.h"
#include "shared/log.h"
#include "shared/wire.h"
#include "shared/xmalloc.h"

struct parked {
	struct parked	*next;
	struct rpc_req	*r;
	void		*buf;		/* the request's raw bytes */
	size_t		 len;
};

struct lookup {
	struct lookup		*next;		/* in or done list */
	char			 id[WIRE_DEVID_MAX + 1];
	struct parked		*reqs, **tail;	/* loop only; in order */
	int			 n_reqs;
	/* the thread's answer */
	int			 rc;
	struct store_authkey	 key;
	char			 err[256];
};

struct keylookup {
	struct cloudd		*cd;
	struct store		*st;	/* the thread's connection */
	pthread_t		 th;
	pthread_mutex_t		 mu;
	pthread_cond_t		 cv;
	struct lookup		*in, **in_tail;
	struct lookup		*done, **done_tail;
	int			 quit;
	uv_async_t		 wake;
	/* loop only: the lookups in flight, by id */
	struct lookup		*fly[KEYLOOKUP_MAX];
	unsigned long long	 count;
};

static void *
lookup_main(void *arg)
{
	struct keylookup *k = arg;

	pthread_mutex_lock(&k->mu);
	for (;;) {
		struct lookup *l;
		while (k->in == NULL && !k->quit)
			pthread_cond_wait(&k->cv, &k->mu);
		if (k->in == NULL)
			break;
		l = k->in;
		if ((k->in = l->next) == NULL)
			k->in_tail = &k->in;
		pthread_mutex_unlock(&k->mu);
		l->rc = store_authkey_get(k->st, l->id, &l->key);
		if (l->rc != 0 && l->rc != -ENOENT)
			snprintf(l->err, sizeof(l->err), "%s",
			    store_errmsg(k->st));
		pthread_mutex_lock(&k->mu);
		l->next = NULL;
		*k->done_tail = l;
		k->done_tail = &l->next;
		uv_async_send(&k->wake);
	}
	pthread_mutex_unlock(&k->mu);
	return NULL;
}

/* Caches l's answer and admits its requests again (or refuses them). */
static void
finish(struct keylookup *k, struct lookup *l, int code)
{
	struct cloudd *cd = k->cd;
	struct parked *p, *next;

	for (int i = 0; i < KEYLOOKUP_MAX; i++)
		if (k->fly[i] == l)
			k->fly[i] = NULL;
	if (code == 0) {
		guard_lookup_done(cd->guard, l->id, l->rc, &l->key, l->err);
		if (l->rc != 0 && l->rc != -ENOENT)
			code = DCCL__ERROR_CODE__E_STORAGE;
	}
	k->count++;
	for (p = l->reqs; p != NULL; p = next) {
		next = p->next;
		job_end(&cd->job, 1);
		p->r->looked_up = 1;
		rpc_resume(cd, p->r, p->buf, p->len, code);
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
	struct lookup *l, *next;

	pthread_mutex_lock(&k->mu);
	l = k->done;
	k->done = NULL;
	k->done_tail = &k->done;
	pthread_mutex_unlock(&k->mu);
	for (; l != NULL; l = next) {
		next = l->next;
		finish(k, l, 0);
	}
	job_idle(&k->cd->job);
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
keylookup_start(struct cloudd *cd, struct keylookup **out)
{
	struct keylookup *k = xcalloc(1, sizeof(*k));
	char err[256];

	*out = NULL;
	k->cd = cd;
	k->in_tail = &k->in;
	k->done_tail = &k->done;
	if (store_open(&k->st, cd->cf.store, cd->dbpath, (int)cd->cf.busy_ms,
	    err, sizeof(err)) != 0) {
		log_warnx("AUTH: no connection for key lookups (%s); they "
		    "run on the loop", err);
		free(k);
		return -1;
	}
	if (uv_async_init(&cd->loop, &k->wake, wake_cb) != 0) {
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
keylookup_stop(struct cloudd *cd, struct keylookup *k)
{
	struct lookup *l, *next;

	if (k == NULL)
		return;
	pthread_mutex_lock(&k->mu);
	k->quit = 1;
	pthread_cond_signal(&k->cv);
	pthread_mutex_unlock(&k->mu);
	pthread_join(k->th, NULL);
	/* Nothing is left when the daemon stops (parked requests are
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
	log_info("AUTH: %llu device-key lookups off the loop", k->count);
	uv_close((uv_handle_t *)&k->wake, closed_cb);
	(void)cd;
}

int
keylookup_park(struct keylookup *k, struct rpc_req *r, const char *id,
    const void *buf, size_t len)
{
	struct lookup *l = NULL;
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
	p->r = r;
	p->buf = xmalloc(len ? len : 1);
	memcpy(p->buf, buf, len);
	p->len = len;
	job_begin(&k->cd->job);
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
	pthread_mutex_lock(&k->mu);
	*k->in_tail = l;
	k->in_tail = &l->next;
	pthread_cond_signal(&k->cv);
	pthread_mutex_unlock(&k->mu);
	return 0;
}

unsigned long long
keylookup_count(const struct keylookup *k)
{
	return k != NULL ? k->count : 0;
}
