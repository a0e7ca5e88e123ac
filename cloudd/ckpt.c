/*
 * ckpt: see ckpt.h. A passive checkpoint every cloudd.checkpoint-ms never
 * blocks the loop's writers: they keep appending to the log while it
 * copies what is already there.
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cloudd/ckpt.h"
#include "cloudd/cloudd.h"
#include "cloudd/store.h"
#include "shared/log.h"
#include "shared/xmalloc.h"

struct ckpt {
	pthread_t	 th;
	pthread_mutex_t	 mu;
	pthread_cond_t	 cv;
	int		 quit;
	long		 ms;
	struct store	*st;	/* the thread's own connection */
};

static void *
ckpt_main(void *arg)
{
	struct ckpt *c = arg;
	struct timespec ts;

	pthread_mutex_lock(&c->mu);
	while (!c->quit) {
		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_sec += c->ms / 1000;
		ts.tv_nsec += (c->ms % 1000) * 1000000L;
		if (ts.tv_nsec >= 1000000000L) {
			ts.tv_sec++;
			ts.tv_nsec -= 1000000000L;
		}
		if (pthread_cond_timedwait(&c->cv, &c->mu, &ts) != ETIMEDOUT)
			continue;	/* woken to quit (or spuriously) */
		pthread_mutex_unlock(&c->mu);
		if (store_wal_checkpoint(c->st) != 0)
			log_warnx("CHECKPOINT: %s", store_errmsg(c->st));
		pthread_mutex_lock(&c->mu);
	}
	pthread_mutex_unlock(&c->mu);
	return NULL;
}

int
ckpt_start(struct cloudd *cd)
{
	struct ckpt *c;
	char err[256];

	if (strcmp(cd->cf.store, "sqlite") != 0 || cd->cf.checkpoint_ms <= 0)
		return 0;
	c = xcalloc(1, sizeof(*c));
	c->ms = (long)cd->cf.checkpoint_ms;
	if (store_open(&c->st, cd->cf.store, cd->dbpath, (int)cd->cf.busy_ms,
	    err, sizeof(err)) != 0) {
		log_warnx("CHECKPOINT: %s; checkpoints stay in commits", err);
		goto fail;
	}
	pthread_mutex_init(&c->mu, NULL);
	pthread_cond_init(&c->cv, NULL);
	if (pthread_create(&c->th, NULL, ckpt_main, c) != 0) {
		log_warnx("CHECKPOINT: no thread; checkpoints stay in commits");
		pthread_mutex_destroy(&c->mu);
		pthread_cond_destroy(&c->cv);
		goto fail;
	}
	/* Only now: without the thread the log would grow without end. */
	if (store_wal_manual(cd->st) != 0)
		log_warnx("CHECKPOINT: %s", store_errmsg(cd->st));
	cd->ckpt = c;
	return 0;
fail:
	if (c->st != NULL)
		store_close(c->st);
	free(c);
	return -1;
}

void
ckpt_stop(struct cloudd *cd)
{
	struct ckpt *c = cd->ckpt;

	if (c == NULL)
		return;
	cd->ckpt = NULL;
	pthread_mutex_lock(&c->mu);
	c->quit = 1;
	pthread_cond_signal(&c->cv);
	pthread_mutex_unlock(&c->mu);
	pthread_join(c->th, NULL);
	pthread_mutex_destroy(&c->mu);
	pthread_cond_destroy(&c->cv);
	store_close(c->st);
	free(c);
}
