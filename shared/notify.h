/*
 * notify: the sd_notify(3) protocol for daemons supervised by systemd
 * (Type=notify units). Every function is a no-op returning 0 when
 * NOTIFY_SOCKET is unset, which is the case outside systemd (tests,
 * docker-compose, a shell), so callers need no "are we under systemd"
 * checks. Results follow shared/ conventions: 0 on success (or no-op),
 * -errno on failure, and nothing is logged here; a daemon may ignore the
 * result (supervision is best-effort) or log it once with log_warnx.
 *
 * Any thread: each call is one sendmsg(2) on a socket opened for the call,
 * and NOTIFY_SOCKET is only read, never unset, so later calls keep working.
 */
#ifndef SHARED_NOTIFY_H
#define SHARED_NOTIFY_H

/*
 * Tells the service manager that start-up is complete ("READY=1"), with an
 * optional one-line STATUS (NULL or "" for none). Call once, right after the
 * "READY:" log line, i.e. once the sockets are bound and the loop is about
 * to run; systemd holds back "systemctl start" and dependent units until
 * then.
 */
int	notify_ready(const char *status);

/*
 * Tells the service manager that shutdown has begun ("STOPPING=1"). Call
 * when the first SIGTERM/SIGINT is handled, before draining work, so that
 * "systemctl status" shows "deactivating" rather than "running".
 */
int	notify_stopping(void);

/*
 * Tells the service manager that a reload has begun ("RELOADING=1"); follow
 * it with notify_ready() when the reload is done, as sd_notify(3) asks.
 */
int	notify_reloading(void);

/*
 * Sets the free-form status shown by "systemctl status" ("STATUS=...").
 * The formatted text is truncated to 255 bytes; newlines become spaces so
 * the text cannot inject further assignments.
 */
int	notify_status(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif
