/*
 * app: a device's local app interface (proto/app.proto). deviced binds one
 * raw REP socket per device (deviced.app-listen, "" = off) on its loop;
 * the app records impressions and clicks, which become local samples, and
 * asks for candidates ranked by the device's serving model.
 *
 * The evaluation scores through the same code: learn.c builds its test
 * queries with app_replay() and scores them with app_score(), the two
 * functions the socket handler uses (app_query() + app_score()), so what
 * the evaluation measures is what an app gets (README, "App interface").
 *
 * Features of a query, as the device sees them: user = the device's user,
 * item and genres from the app, hour and weekday from ts, and history = the
 * device's own last K positives at ts (K = app_hist_k()): the history of
 * the first local sample of the latest second at or before ts, plus that
 * second's positives (samples of one second may share one history, as
 * dataset_build_hist makes them). Replaying a test set (app_replay) takes
 * strictly earlier seconds only, as the split's files do; a live app's
 * events are ordered, so a query sees the events of its own second.
 * Local samples imported from a CSV carry their histories,
 * so a device's histories continue the ones it was given; for a canonical
 * split, replaying the test samples gives exactly the test file's
 * histories (tests/unit/test_app.c).
 */
#ifndef DEVICED_APP_H
#define DEVICED_APP_H

#include <stddef.h>
#include <stdint.h>

#define APP_VERSION	2		/* app protocol version (2: side values) */
#define APP_ITEM_MAX	(1u << 24)	/* == CTR_MAX_ITEMS: ids beyond it
					   are refused; ids in the model's
					   vocabulary..this use its OOV row */
#define APP_TS_MAX	((int64_t)1 << 40)	/* sanity bound, seconds */
#define APP_RATING_MAX	10.0f

struct ctr;
struct dataset;
struct device;

/* --- features and scoring: pure, any thread ----------------------------- */

/* History length for model m (NULL: the dataset default). */
int	app_hist_k(const struct ctr *m);
/*
 * The last K positives at ts over the samples of a, then b (each in time
 * order; b after a; b may be NULL), oldest first, into out (K). Returns the
 * count.
 */
size_t	app_hist(const struct dataset *a, const struct dataset *b, int64_t ts,
	    int K, uint32_t *out);
/* Same, strictly before ts's second (the split files' rule). */
size_t	app_hist_before(const struct dataset *a, const struct dataset *b,
	    int64_t ts, int K, uint32_t *out);
/*
 * Appends one query sample (user, item, genres, ts, label, rating, history
 * from a and b as above) to q and returns its index.
 */
size_t	app_query(struct dataset *q, const struct dataset *a,
	    const struct dataset *b, int K, uint32_t user, uint32_t item,
	    uint32_t genres, int64_t ts, float label, float rating);
/*
 * The evaluation's queries: replays events (in time order) on top of the
 * local samples as an app would, query first, then the event recorded, so
 * each gets the history an app's rank request would have got at its time,
 * from strictly earlier seconds (app_hist_before: the split's files do not
 * know the order within a second). q (initialised, empty) gets events->n
 * samples in events' order.
 */
void	app_replay(struct dataset *q, const struct dataset *local,
	    const struct dataset *events, uint32_t user, int K);
/*
 * Scores every sample of q with m: out (q->n) gets P(click). Returns 0,
 * -EINVAL (empty q) or -ERANGE (a non-finite score). The one scoring path
 * of the app socket and the evaluation.
 */
int	app_score(struct ctr *m, const struct dataset *q, float *out);

/* --- the socket: loop thread only --------------------------------------- */

/*
 * Binds d's app socket when deviced.app-listen is set ("{dir}" and "{id}"
 * expand to the device's state directory and id). 0, or -1 logged.
 */
int	app_open(struct device *d);
/* Stops serving (closes the socket); safe when off. */
void	app_close(struct device *d);
/* Frees what app_open and the jobs left (after the loop has closed). */
void	app_fini(struct device *d);
/*
 * Called by learn_after_cb with ok = the job succeeded: takes the job's
 * serving model (d->job_serving) and merges the events recorded during the
 * job into d->local.
 */
void	app_job_done(struct device *d, int ok);
/* 1 when enough new samples arrived to re-run the learning job. */
int	app_retrain_due(struct device *d);

/* --- in-process requests (deviced/dccl_device.c): loop thread only ------ */

/* Gives d the app state without a socket (no-op if it has one). 0. */
int	app_attach(struct device *d);
/*
 * Answers one packed AppRequest exactly as the socket would: *rep gets a
 * packed AppReply (malloc'd, the caller frees it), errors included. 0, or
 * -ENOTCONN without app state (app_open or app_attach).
 */
int	app_request(struct device *d, const void *req, size_t len, void **rep,
	    size_t *rep_len);
/* Asks for a learning job now; it starts when the device is next idle. */
void	app_retrain_now(struct device *d);

#endif
