/*
 * seal: see seal.h. Jobs go in through a mutex-guarded list the thread
 * waits on; sealed jobs come back through a second list and a uv_async
 * wakeup, and the loop sends them. Each job holds a reference to the
 * shared bytes its chunk points into (struct sblob), so a model swap on
 * the loop cannot pull them from under the thread, and no chunk is copied
 * before packing.
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "cloudd/cloudd.h"
#include "cloudd/rpc.h"
#include "cloudd/sblob.h"
#include "cloudd/seal.h"
#include "shared/log.h"
#include "shared/wire.h"
#include "shared/xmalloc.h"

struct seal_job {
	struct seal_job		*next;
	struct rpc_req		*r;
	Dccl__ModelChunk	 mc;
	struct sblob		*owner;		/* mc.data points into it */
	int			 copied;	/* or mc.data is our copy */
	uint8_t			 checksum[32];
	void			*out;		/* packed reply, or NULL */
	size_t			 out_len;
};

struct sealer {
	struct cloudd		*cd;
	pthread_t		 th;
	pthread_mutex_t		 mu;
	pthread_cond_t		 cv;
	struct seal_job		*in, **in_tail;		/* to seal */
	struct seal_job		*done, **done_tail;	/* to send */
	int			 quit;
	uv_async_t		 wake;
	size_t			 queued;	/* jobs not yet sent (loop) */
	size_t			 queued_bytes;	/* their chunks' bytes */
	/* since start, for the log at stop (bench: bytes copied per chunk) */
	uint64_t		 n_jobs, shared_bytes, copied_bytes;
};

/*
 * Each job's packed reply is as large as its chunk, so the queue is
 * bounded in entries and in chunk bytes (whatever limits.chunk-size is):
 * beyond either a chunk request gets E_BUSY with a retry-after hint (128
 * chunks of the default 1 MiB; dlslots.c admits as many downloads).
 */
#define SEAL_MAX_JOBS	512
#define SEAL_MAX_BYTES	((size_t)128 << 20)

static void
pack_as(struct seal_job *j, const struct auth_seal *s)
{
	Dccl__Envelope e = DCCL__ENVELOPE__INIT;

	e.version = WIRE_VERSION;
	e.device_id = j->r->env->device_id;	/* as rpc_reply: never empty */
	if (e.device_id == NULL || e.device_id[0] == '\0')
		e.device_id = "cloudd";
	e.request_id = j->r->env->request_id;
	e.body_case = DCCL__ENVELOPE__BODY_MODEL_CHUNK;
	e.model_chunk = &j->mc;
	if (auth_pack_nn(&e, s, &j->out, &j->out_len) != 0)
		j->out = NULL;
}

static void
pack(struct seal_job *j)
{
	pack_as(j, &j->r->seal);
}

static void *
seal_main(void *arg)
{
	struct sealer *s = arg;

	pthread_mutex_lock(&s->mu);
	for (;;) {
		struct seal_job *j;
		while (s->in == NULL && !s->quit)
			pthread_cond_wait(&s->cv, &s->mu);
		if (s->in == NULL)
			break;
		j = s->in;
		if ((s->in = j->next) == NULL)
			s->in_tail = &s->in;
		pthread_mutex_unlock(&s->mu);
		pack(j);
		pthread_mutex_lock(&s->mu);
		j->next = NULL;
		*s->done_tail = j;
		s->done_tail = &j->next;
		uv_async_send(&s->wake);
	}
	pthread_mutex_unlock(&s->mu);
	return NULL;
}

/* Sends j's packed reply (or an error) and frees j's request. */
static void
reply(struct cloudd *cd, struct seal_job *j)
{
	if (j->out == NULL)
		rpc_error(cd, j->r, DCCL__ERROR_CODE__E_INTERNAL,
		    "out of message memory");
	else
		rpc_send_packed(cd, j->r, j->out, j->out_len, 0);
}

static void
wake_cb(uv_async_t *h)
{
	struct sealer *s = h->data;
	struct cloudd *cd = s->cd;
	struct seal_job *j, *next;

	pthread_mutex_lock(&s->mu);
	j = s->done;
	s->done = NULL;
	s->done_tail = &s->done;
	pthread_mutex_unlock(&s->mu);
	for (; j != NULL; j = next) {
		next = j->next;
		job_end(&cd->job, 1);
		s->queued--;
		s->queued_bytes -= j->mc.data.len;
		reply(cd, j);
		if (j->copied)
			free(j->mc.data.data);
		sblob_unref(j->owner);
		free(j);
	}
	job_idle(&cd->job);
}

static void
closed_cb(uv_handle_t *h)
{
	struct sealer *s = h->data;

	pthread_mutex_destroy(&s->mu);
	pthread_cond_destroy(&s->cv);
	free(s);
}

int
seal_start(struct cloudd *cd)
{
	struct sealer *s = xcalloc(1, sizeof(*s));
	int rc;

	s->cd = cd;
	s->in_tail = &s->in;
	s->done_tail = &s->done;
	if ((rc = uv_async_init(&cd->loop, &s->wake, wake_cb)) != 0) {
		free(s);
		return rc;
	}
	s->wake.data = s;
	pthread_mutex_init(&s->mu, NULL);
	pthread_cond_init(&s->cv, NULL);
	if ((rc = pthread_create(&s->th, NULL, seal_main, s)) != 0) {
		log_warnx("SEAL: cannot start the thread; sealing on the loop");
		uv_close((uv_handle_t *)&s->wake, closed_cb);
		return 0;
	}
	cd->sealer = s;
	return 0;
}

void
seal_stop(struct cloudd *cd)
{
	struct sealer *s = cd->sealer;

	if (s == NULL)
		return;
	cd->sealer = NULL;
	pthread_mutex_lock(&s->mu);
	s->quit = 1;
	pthread_cond_signal(&s->cv);
	pthread_mutex_unlock(&s->mu);
	pthread_join(s->th, NULL);
	log_info("SEAL: %llu chunks sealed off the loop, %llu bytes shared, "
	    "%llu copied", (unsigned long long)s->n_jobs,
	    (unsigned long long)s->shared_bytes,
	    (unsigned long long)s->copied_bytes);
	/* jobs == 0 when the daemon stops, so both lists are empty. */
	uv_close((uv_handle_t *)&s->wake, closed_cb);
}

void
seal_chunk_plain(struct cloudd *cd, struct rpc_req *r,
    const Dccl__ModelChunk *mc)
{
	struct seal_job one = { .r = r, .mc = *mc };

	pack_as(&one, NULL);
	reply(cd, &one);
}

void
seal_chunk(struct cloudd *cd, struct rpc_req *r, const Dccl__ModelChunk *mc,
    struct sblob *owner)
{
	struct sealer *s = cd->sealer;
	struct seal_job *j;

	if (s == NULL || mc->data.len < SEAL_MIN_BYTES ||
	    r->seal.mode == AUTH_OFF) {
		/* Inline: plain packing is one memcpy. */
		struct seal_job one = { .r = r, .mc = *mc };
		pack(&one);
		reply(cd, &one);
		return;
	}
	if (s->queued >= SEAL_MAX_JOBS || (s->queued > 0 &&
	    s->queued_bytes + mc->data.len > SEAL_MAX_BYTES)) {
		rpc_error(cd, r, DCCL__ERROR_CODE__E_BUSY, "%zu chunks (%zu "
		    "bytes) waiting to be sealed; retry later", s->queued,
		    s->queued_bytes);
		return;
	}
	s->queued++;
	s->queued_bytes += mc->data.len;
	j = xcalloc(1, sizeof(*j));
	j->r = r;
	j->mc = *mc;
	s->n_jobs++;
	if (owner != NULL && mc->data.data >= owner->data &&
	    mc->data.data + mc->data.len <= owner->data + owner->len) {
		j->owner = sblob_ref(owner);
		s->shared_bytes += mc->data.len;
	} else {
		j->mc.data.data = xmalloc(mc->data.len);
		memcpy(j->mc.data.data, mc->data.data, mc->data.len);
		j->copied = 1;
		s->copied_bytes += mc->data.len;
	}
	if (mc->checksum.len == sizeof(j->checksum)) {
		memcpy(j->checksum, mc->checksum.data, sizeof(j->checksum));
		j->mc.checksum.data = j->checksum;
	}
	job_begin(&cd->job);
	pthread_mutex_lock(&s->mu);
	*s->in_tail = j;
	s->in_tail = &j->next;
	pthread_cond_signal(&s->cv);
	pthread_mutex_unlock(&s->mu);
}
