/*
 * keylookup: device-key store work off the loop thread (replicas,
 * PostgreSQL), on a thread and connection of its own, so that neither a
 * packet under an unknown id, nor a failed MAC of a known device, nor the
 * cron's counter flush costs the loop a database round trip:
 *
 *  - lookups: the key of one id is read from the store (a device may have
 *    enrolled, or had its key replaced, through another replica). The
 *    requests that wait for it are parked, each with a copy of its raw
 *    bytes; once the answer is in, the done callback caches it and says
 *    how to answer them, then each goes to the resume callback;
 *  - counter flushes: a batch of counters written as a max-merge
 *    (store_authkey_counters); one at a time, its result to the flushed
 *    callback.
 *
 * It knows neither the guard nor the request type: both come in as
 * callbacks and opaque pointers at keylookup_start().
 *
 * Bounded: at most KEYLOOKUP_MAX ids in flight, KEYLOOKUP_PER_ID requests
 * parked per id (beyond either keylookup_park says -EBUSY) and one flush.
 * The rate of lookups is limited by the caller (guard.c).
 *
 * Loop thread API.
 */
#ifndef CLOUDD_KEYLOOKUP_H
#define CLOUDD_KEYLOOKUP_H

#include <stddef.h>
#include <uv.h>

struct job_ctl;
struct keylookup;
struct store_authkey;

#define KEYLOOKUP_MAX		64
#define KEYLOOKUP_PER_ID	8

struct keylookup_cb {
	/*
	 * A lookup of id finished: rc 0 (key read into *key), -ENOENT (not
	 * enrolled) or another -errno (err says why). Returns the code for
	 * the requests parked on it: 0 (admit them again) or an error code.
	 */
	int	(*done)(void *arg, const char *id, int rc,
		    const struct store_authkey *key, const char *err);
	/* A parked request, with its bytes, and the code done() gave. */
	void	(*resume)(void *arg, void *req, const void *buf, size_t len,
		    int code);
	/* A flush finished: 0 or -errno; keys/n are the batch flushed. */
	void	(*flushed)(void *arg, int rc, const struct store_authkey *keys,
		    size_t n, const char *err);
	void	*arg;
};

/*
 * Opens a connection to the store (backend, target, busy_ms as
 * store_open) and starts the thread. Parked requests count as jobs of
 * job. 0, or -1 (logged).
 */
int	keylookup_start(struct keylookup **out, uv_loop_t *loop,
	    struct job_ctl *job, const char *backend, const char *target,
	    int busy_ms, const struct keylookup_cb *cb);
/*
 * Joins the thread (the work in progress finishes first), then hands
 * out every answer: done lookups as usual, lookups not started with
 * E_SHUTTING_DOWN. NULL is a no-op.
 */
void	keylookup_stop(struct keylookup *k);
/*
 * Parks req (copying buf/len) until id's key has been read; the lookup is
 * started unless one for id is already in flight. 0, or -EBUSY.
 */
int	keylookup_park(struct keylookup *k, void *req, const char *id,
	    const void *buf, size_t len);
/*
 * Writes the n counters of keys (taken, freed after flushed()) off the
 * loop. 0, or -EBUSY while the previous flush is still running (keys are
 * not taken).
 */
int	keylookup_flush(struct keylookup *k, struct store_authkey *keys,
	    size_t n);

#endif
