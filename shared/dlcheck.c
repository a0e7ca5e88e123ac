/* dlcheck: see dlcheck.h. One mutex guards the queue and the counts. */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "shared/dlcheck.h"
#include "shared/manifest.h"

struct dlslot {
	Dccl__ModelChunk	 c;
	void			*owner;
	dlcheck_release_fn	 release;
};

struct dlcheck {
	const Dccl__Manifest	*m;
	uint8_t			*dst;
	int			 alg;
	pthread_mutex_t		 mu;
	pthread_cond_t		 more;	/* workers: a chunk waits, or quit */
	pthread_cond_t		 less;	/* putter: room, or a chunk done */
	struct dlslot		 q[DLCHECK_MAX_QUEUE];
	int			 qmax, head, n;
	int			 nthreads, quit;
	pthread_t		 th[DLCHECK_MAX_THREADS];
	uint32_t		 stored;
	int			 bad;		/* first refusal's code */
	uint32_t		 bad_index;
};

/* Checks s against the manifest and stores it: 0 or MANIFEST_E*. */
static int
check_store(struct dlcheck *q, const struct dlslot *s)
{
	int rc = manifest_check_chunk_alg(q->m, &s->c, q->alg);

	if (rc == MANIFEST_OK)
		memcpy(q->dst + (size_t)s->c.chunk_index * q->m->chunk_size,
		    s->c.data.data, s->c.data.len);
	return rc;
}

/* Under mu: one chunk done with rc. */
static void
account(struct dlcheck *q, const struct dlslot *s, int rc)
{
	if (rc == MANIFEST_OK)
		q->stored++;
	else if (q->bad == 0) {
		q->bad = rc;
		q->bad_index = s->c.chunk_index;
	}
	pthread_cond_broadcast(&q->less);
}

static void *
worker(void *arg)
{
	struct dlcheck *q = arg;
	struct dlslot s;
	int rc;

	pthread_mutex_lock(&q->mu);
	for (;;) {
		while (q->n == 0 && !q->quit)
			pthread_cond_wait(&q->more, &q->mu);
		if (q->n == 0)
			break;
		s = q->q[q->head];
		q->head = (q->head + 1) % q->qmax;
		q->n--;
		pthread_cond_broadcast(&q->less);	/* room */
		/* after a refusal nothing more is stored */
		rc = q->bad ? -1 : 0;
		pthread_mutex_unlock(&q->mu);
		if (rc == 0)
			rc = check_store(q, &s);
		s.release(s.owner);
		pthread_mutex_lock(&q->mu);
		if (rc >= 0)
			account(q, &s, rc);
	}
	pthread_mutex_unlock(&q->mu);
	return NULL;
}

int
dlcheck_new(struct dlcheck **out, const Dccl__Manifest *m, uint8_t *dst,
    int alg, int nthreads, int qmax)
{
	struct dlcheck *q;

	*out = NULL;
	if (nthreads < 0 || nthreads > DLCHECK_MAX_THREADS || qmax < 1 ||
	    qmax > DLCHECK_MAX_QUEUE || m == NULL || dst == NULL)
		return -EINVAL;
	if ((q = calloc(1, sizeof(*q))) == NULL)
		return -ENOMEM;
	q->m = m;
	q->dst = dst;
	q->alg = alg;
	q->qmax = qmax;
	pthread_mutex_init(&q->mu, NULL);
	pthread_cond_init(&q->more, NULL);
	pthread_cond_init(&q->less, NULL);
	for (; q->nthreads < nthreads; q->nthreads++)
		if (pthread_create(&q->th[q->nthreads], NULL, worker, q) != 0) {
			dlcheck_free(q);
			return -EAGAIN;
		}
	*out = q;
	return 0;
}

int
dlcheck_put(struct dlcheck *q, const Dccl__ModelChunk *c, void *owner,
    dlcheck_release_fn release)
{
	struct dlslot s = { .c = *c, .owner = owner, .release = release };
	int rc;

	if (q->nthreads == 0) {
		/* serial: check and store now */
		rc = q->bad ? q->bad : check_store(q, &s);
		release(owner);
		if (q->bad == 0)
			account(q, &s, rc);
		return q->bad;
	}
	pthread_mutex_lock(&q->mu);
	while (q->n == q->qmax && q->bad == 0)
		pthread_cond_wait(&q->less, &q->mu);
	if ((rc = q->bad) == 0) {
		q->q[(q->head + q->n) % q->qmax] = s;
		q->n++;
		pthread_cond_signal(&q->more);
	}
	pthread_mutex_unlock(&q->mu);
	if (rc != 0)
		release(owner);
	return rc;
}

int
dlcheck_wait(struct dlcheck *q, uint32_t n, uint32_t *bad_index)
{
	int rc;

	pthread_mutex_lock(&q->mu);
	while (q->stored < n && q->bad == 0)
		pthread_cond_wait(&q->less, &q->mu);
	rc = q->bad;
	if (rc != 0 && bad_index != NULL)
		*bad_index = q->bad_index;
	pthread_mutex_unlock(&q->mu);
	return rc;
}

void
dlcheck_free(struct dlcheck *q)
{
	if (q == NULL)
		return;
	pthread_mutex_lock(&q->mu);
	q->quit = 1;
	pthread_cond_broadcast(&q->more);
	pthread_mutex_unlock(&q->mu);
	for (int i = 0; i < q->nthreads; i++)
		pthread_join(q->th[i], NULL);
	/* workers drain the queue before they quit; with none, it is empty */
	pthread_mutex_destroy(&q->mu);
	pthread_cond_destroy(&q->more);
	pthread_cond_destroy(&q->less);
	free(q);
}
