/*
 * dccl_device: the device side of dccl as a library, for an app that links
 * it where running deviced is not an option. One device per handle, with
 * the daemon's code throughout: the protocol with the cloud (register,
 * download, retrieve, upload; device.c), the SQLite store (dstore.c), the
 * learning job (learn.c) and the app requests (app.c: events and ranking
 * answered by the same dispatch as deviced's app socket, so the library and
 * the socket validate, store and score identically). A handle is a host of
 * one device (host.c), as deviced is of many: the same setup, announcement
 * socket and stop.
 *
 * Configuration: the daemon's options (conf/deviced.conf, deviced -E), from
 * an INI file and/or "section.key=value" strings; deviced.shards and
 * --devices (several devices per process) are the daemon's only.
 *
 * THREADING. A handle is not thread-safe: call every function for one
 * handle from one thread at a time (the app's, or a thread it dedicates).
 * The handle owns a private libuv loop which runs only inside
 * dccl_device_poll, dccl_device_learn, dccl_device_event/rank/status and
 * close; between calls nothing happens (the cloud's announcements wait in
 * the socket), so call dccl_device_poll regularly, or when
 * dccl_device_fd() is readable. A learning job runs on libuv's threadpool
 * (process-wide, UV_THREADPOOL_SIZE threads) while the loop keeps serving
 * rank and event calls, with the rules of app.c (ranking uses the last
 * adopted model; events recorded during a job join the next one).
 * Process-wide effects of dccl_device_open: libsodium is initialised,
 * OpenBLAS is set to one thread, and logging (stderr, the level of
 * deviced.log-level) is set up. SIGPIPE is left alone: deviced ignores
 * it, and an app should too (a peer closing a socket must not kill it).
 *
 * OWNERSHIP. The caller owns everything it passes in and everything it
 * gets back (output arrays are the caller's, filled in place); the handle
 * owns its state directory <deviced.data-dir>/<device-id>/ while open (no
 * two handles, nor a deviced, on one directory). dccl_device_errmsg's
 * string belongs to the handle and lasts until the next call on it.
 *
 * RESULTS. 0 on success, else a negative DCCL_DEVICE_E_* code; the codes
 * down to -16 are the app protocol's (proto/app.proto AppErrorCode,
 * negated), the rest the library's own.
 */
#ifndef DCCL_DEVICE_H
#define DCCL_DEVICE_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

enum {
	DCCL_DEVICE_OK			= 0,
	DCCL_DEVICE_E_BAD_REQUEST	= -1,	/* invalid argument */
	DCCL_DEVICE_E_NOT_FOUND		= -5,
	DCCL_DEVICE_E_TOO_LARGE		= -6,	/* > deviced.app-max-candidates */
	DCCL_DEVICE_E_BUSY		= -7,	/* first job running; retry */
	DCCL_DEVICE_E_INTERNAL		= -8,	/* e.g. a non-finite score */
	DCCL_DEVICE_E_STORAGE		= -9,	/* the event was not stored */
	DCCL_DEVICE_E_SHUTTING_DOWN	= -15,
	DCCL_DEVICE_E_NO_MODEL		= -16,	/* nothing downloaded yet */
	DCCL_DEVICE_E_CONFIG		= -100,	/* bad configuration */
	DCCL_DEVICE_E_SYSTEM		= -101,	/* store, socket or loop */
	DCCL_DEVICE_E_TIMEOUT		= -102,
	DCCL_DEVICE_E_FAILED		= -103	/* the learning job failed */
};

struct dccl_device;

struct dccl_event {
	uint32_t	 item;		/* dense item id, < 2^24 */
	int64_t		 ts;		/* unix seconds, 0 = now; not before
					   the last local sample */
	int		 clicked;	/* the label */
	uint32_t	 genres;	/* genre bitmask, as in the samples CSV */
	float		 rating;	/* 0 = unknown, else 0..10 */
	/* side values, one per side field of the device's data (its
	 * feature schema); n_side 0 = all unknown (deviced/README.md) */
	const uint32_t	*side;
	size_t		 n_side;
};

struct dccl_event_result {
	uint64_t	 n_samples;	/* local samples now */
	uint64_t	 since_train;	/* recorded since the last job began */
	int		 retrain;	/* this event started (or queued) a job */
	int		 oov;		/* item beyond the model's vocabulary */
};

struct dccl_candidate {
	uint32_t	 item;
	uint32_t	 genres;
	const uint32_t	*side;		/* as dccl_event.side */
	size_t		 n_side;
};

struct dccl_scored {
	uint32_t	 item;
	uint32_t	 index;		/* position in the candidates */
	float		 score;		/* P(click) */
};

struct dccl_device_status {
	char		 device_id[65];
	uint32_t	 user_id;
	char		 state[16];	/* register, download, ..., idle */
	uint64_t	 model_version;	/* 0 = none yet */
	int		 personalized;	/* ranking uses an adopted patch */
	uint64_t	 n_samples, since_train, trainings;
};

/*
 * Opens the device: reads conf_path (NULL = defaults only), then options
 * (NULL-terminated "section.key=value" strings, applied in order, as
 * deviced's -o), opens or creates the state directory and store, imports
 * deviced.local-data once, connects to the cloud and starts the protocol
 * (it advances in the calls below). On failure *out is NULL and err (if
 * not NULL) says why.
 */
int	dccl_device_open(struct dccl_device **out, const char *conf_path,
	    const char *const *options, char *err, size_t errlen);

/* Runs the protocol for up to timeout_ms (0: only what is ready). 0. */
int	dccl_device_poll(struct dccl_device *dv, int timeout_ms);

/* A file descriptor that is readable when dccl_device_poll has work. */
int	dccl_device_fd(struct dccl_device *dv);

/*
 * Runs one learning job to its end and waits for the cloud to acknowledge
 * its upload: the first round's job if the device has not trained yet
 * (registering and downloading first), else a new one on the samples
 * recorded so far. 0, DCCL_DEVICE_E_TIMEOUT (the job may still finish in
 * a later poll) or DCCL_DEVICE_E_FAILED.
 */
int	dccl_device_learn(struct dccl_device *dv, int timeout_ms);

/* Records one impression or click as a local sample (committed on return). */
int	dccl_device_event(struct dccl_device *dv, const struct dccl_event *ev,
	    struct dccl_event_result *res);

/*
 * Ranks n candidates at ts (0 = now) with the device's serving model: out
 * gets the best min(k, n) (k = 0: all), best first, and *n_out how many.
 * out must hold that many.
 */
int	dccl_device_rank(struct dccl_device *dv,
	    const struct dccl_candidate *cand, size_t n, int64_t ts, size_t k,
	    struct dccl_scored *out, size_t *n_out);

int	dccl_device_status(struct dccl_device *dv,
	    struct dccl_device_status *st);

/*
 * The id of a string user or item id for data whose feature schema marks
 * the field ids=hash with vocab=buckets (shared/data/README.md, "String
 * ids"): FNV-1a 64 of the n bytes mod buckets, the same rule as the
 * import, so an app can pass its own SKUs or user hashes.
 */
uint32_t dccl_device_hash_id(const char *s, size_t n, uint32_t buckets);

/* Why the last call on dv failed ("" after a success). */
const char *dccl_device_errmsg(const struct dccl_device *dv);

/*
 * Stops: waits for a running learning job, closes the sockets and the
 * store, frees dv. NULL is a no-op.
 */
void	dccl_device_close(struct dccl_device *dv);

#ifdef __cplusplus
}
#endif

#endif
