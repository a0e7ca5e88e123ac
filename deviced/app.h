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
 * The features of a query (the device's own history at ts) and their
 * scoring are app_query.h's.
 */
#ifndef DEVICED_APP_H
#define DEVICED_APP_H

#include <stddef.h>
#include <stdint.h>

#include "deviced/app_query.h"

#define APP_VERSION	2		/* app protocol version (2: side values) */
#define APP_ITEM_MAX	(1u << 24)	/* == CTR_MAX_ITEMS: ids beyond it
					   are refused; ids in the model's
					   vocabulary..this use its OOV row */
#define APP_TS_MAX	((int64_t)1 << 40)	/* sanity bound, seconds */
#define APP_RATING_MAX	10.0f

struct device;

/* --- the socket: loop thread only --------------------------------------- */

/*
 * Binds d's app socket when deviced.app-listen is set ("{dir}" and "{id}"
 * expand to the device's state directory and id). 0, or -1 logged.
 *
 * Giving d its app state (here or in app_attach) sets d's hooks
 * (device_set_hooks): at a learning job's end app.c takes the job's
 * serving model (d->job_serving) and merges the events recorded during
 * the job into d->local; an idle device asks it whether enough new samples
 * arrived to re-run the job; closing the device closes the socket, and
 * freeing it frees the app state.
 */
int	app_open(struct device *d);

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
