/*
 * host: runs devices on one loop, for the daemon (main.c) and the library
 * (dccl_device.c) alike, so neither repeats the other's setup. The caller
 * has configured dd (deviced_configure, deviced_conf_done). Loop thread.
 * In order:
 *   host_open: logging as ident, libsodium, OpenBLAS on one thread, the
 *     loop, room for max_dev devices (0 or -1, why in err);
 *   host_add per device (device_init; 0 or -1, logged);
 *   host_listen: the SUB socket for the cloud's signed announcements, and
 *     each device's app socket when deviced.app-listen is set;
 *   host_start: every device begins (device_start); the caller runs
 *     dd->loop;
 *   host_stop: waits for the learning jobs, closes the devices' and the
 *     host's handles (the caller then closes its own on dd->loop);
 *   host_close: drains and closes the loop, frees the devices and the
 *     options; after any step above, failed ones included.
 * Process-wide settings beyond those (malloc tuning, UV_THREADPOOL_SIZE,
 * SIGPIPE, signal handlers) are the daemon's, not the host's.
 */
#ifndef DEVICED_HOST_H
#define DEVICED_HOST_H

#include <stddef.h>
#include <stdint.h>

struct deviced;

int	host_open(struct deviced *dd, const char *ident, int max_dev,
	    char *err, size_t errlen);
int	host_add(struct deviced *dd, const char *id, uint32_t user,
	    const char *local_csv, const char *test_csv);
int	host_listen(struct deviced *dd, char *err, size_t errlen);
void	host_start(struct deviced *dd);
/*
 * Or, to start each device as soon as it is added (a host of hundreds
 * loads them for tens of seconds), host_listen before the first host_add
 * and host_begin after each: its app socket, then device_start. 0 or -1.
 */
int	host_begin(struct deviced *dd, int i, char *err, size_t errlen);
void	host_stop(struct deviced *dd);
void	host_close(struct deviced *dd);

#endif
