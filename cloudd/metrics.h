/*
 * metrics.h: cloudd's Prometheus exporter. The exposition text is rendered
 * from struct cloudd on the loop thread; an HTTP server (libmicrohttpd, on
 * its own thread) serves the latest rendering and never reads struct
 * cloudd. See metrics.c for the metric names.
 */
#ifndef CLOUDD_METRICS_H
#define CLOUDD_METRICS_H

#include <stddef.h>

struct cloudd;

/*
 * Starts the HTTP endpoint on cd->cf.metrics_listen ("host:port", IPv4 or
 * "[v6]:port"; port 0 picks a free one, logged in the METRICS: line) and
 * the render timer. A no-op returning 0 when metrics_listen is "". Returns
 * 0, or -1 after logging why (bad address, bind failure). Loop thread,
 * after uv_loop_init.
 */
int	metrics_start(struct cloudd *cd);

/*
 * Stops the HTTP server (joins its thread, so no scrape is in progress
 * afterwards) and closes the timer; the state is freed in the timer's
 * close callback. Idempotent. Loop thread, before the final uv_run.
 */
void	metrics_stop(struct cloudd *cd);

/*
 * Renders the exposition text of cd's statistics now. Returns a malloc'd,
 * NUL-terminated string (caller frees); *len (may be NULL) gets its
 * length. Loop thread only (it reads struct cloudd).
 */
char	*metrics_render(struct cloudd *cd, size_t *len);

#endif
