/*
 * host: what runs devices, under both the daemon (main.c) and the
 * embeddable library (dccl_device.c): the process setup, one loop with its
 * devices, the cloud connection and announcement socket they share
 * (uplink.h), and the orderly
 * stop. What only a daemon needs (command line, signals, shards of many
 * devices, sd_notify) is main.c's. See host.h.
 */
#include <cblas.h>
#include <nanomsg/nn.h>
#include <nanomsg/pubsub.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "deviced/app.h"
#include "deviced/deviced.h"
#include "deviced/host.h"
#include "shared/auth.h"
#include "shared/log.h"
#include "shared/wire.h"
#include "shared/xmalloc.h"

/*
 * The cloud's model announcements, to every hosted device: signed with
 * the key each device learned at registration (all from the same cloud),
 * so a forged one is dropped.
 */
static void
sub_cb(struct nnuv *s, void *msg, size_t len, void *hdr)
{
	struct deviced *dd = s->data;
	Dccl__Envelope *e = NULL;
	char err[128];

	(void)hdr;
	if (wire_unpack(msg, len, &e, err, sizeof(err)) == 0 &&
	    e->body_case == DCCL__ENVELOPE__BODY_ANNOUNCE) {
		int ok = 0;
		for (int i = 0; i < dd->n_dev; i++)
			if (auth_dev_announce_ok(dd->dev[i].auth, e->announce)) {
				device_announce(&dd->dev[i],
				    e->announce->version);
				ok++;
			}
		if (ok > 0)
			log_info("ANNOUNCED: model v%llu",
			    (unsigned long long)e->announce->version);
		else
			log_warnx("BAD-ANNOUNCE: model v%llu %s; ignored",
			    (unsigned long long)e->announce->version,
			    e->announce->signature.len ? "wrongly signed" :
			    "unsigned");
	}
	wire_free(e);
	nn_freemsg(msg);
}

/* A SUB socket on deviced.cloud-pub, watched on the loop. */
static int
open_sub(struct deviced *dd, char *err, size_t errlen)
{
	int sock = nn_socket(AF_SP, NN_SUB);
	char *dup, *save = NULL, *ep;

	if (sock < 0 || nn_setsockopt(sock, NN_SUB, NN_SUB_SUBSCRIBE, "",
	    0) < 0) {
		snprintf(err, errlen, "SUB: %s", nn_strerror(nn_errno()));
		goto fail;
	}
	dup = xstrdup(dd->cf.cloud_pub);
	for (ep = strtok_r(dup, ",", &save); ep; ep = strtok_r(NULL, ",",
	    &save))
		if (nn_connect(sock, ep) < 0) {
			snprintf(err, errlen, "SUB: %s: %s", ep,
			    nn_strerror(nn_errno()));
			free(dup);
			goto fail;
		}
	free(dup);
	if (nnuv_init(&dd->sub, &dd->loop, sock, 0, sub_cb, dd) != 0) {
		snprintf(err, errlen, "SUB: cannot watch the socket");
		goto fail;
	}
	dd->has_sub = 1;
	return 0;
fail:
	if (sock >= 0)
		nn_close(sock);
	return -1;
}

int
host_open(struct deviced *dd, const char *ident, int max_dev, char *err,
    size_t errlen)
{
	int rc;

	log_init(ident, dd->cf.log_level);
	if (sodium_init() < 0) {
		snprintf(err, errlen, "libsodium failed to initialise");
		return -1;
	}
	/* Jobs run one per worker thread; BLAS threads would oversubscribe. */
	openblas_set_num_threads(1);
	if ((rc = uv_loop_init(&dd->loop)) != 0) {
		snprintf(err, errlen, "uv_loop_init: %s", uv_strerror(rc));
		return -1;
	}
	dd->loop_open = 1;
	/* Devices stay put: their handles are registered by address. */
	dd->dev = xcalloc(max_dev > 0 ? max_dev : 1, sizeof(*dd->dev));
	dd->max_dev = max_dev;
	return 0;
}

int
host_add(struct deviced *dd, const char *id, uint32_t user,
    const char *local_csv, const char *test_csv)
{
	struct device *d;

	if (dd->n_dev >= dd->max_dev)
		return -1;
	d = &dd->dev[dd->n_dev];
	if (device_init(dd, d, id, user, local_csv, test_csv) != 0) {
		device_fini(d);		/* what it opened before failing */
		return -1;
	}
	dd->n_dev++;
	return 0;
}

int
host_listen(struct deviced *dd, char *err, size_t errlen)
{
	if (open_sub(dd, err, errlen) != 0)
		return -1;
	for (int i = 0; i < dd->n_dev; i++)
		if (app_open(&dd->dev[i]) != 0) {
			snprintf(err, errlen, "APP: cannot open the app socket "
			    "of %s (%s)", dd->dev[i].id, dd->cf.app_listen);
			return -1;
		}
	return 0;
}

int
host_begin(struct deviced *dd, int i, char *err, size_t errlen)
{
	if (app_open(&dd->dev[i]) != 0) {
		snprintf(err, errlen, "APP: cannot open the app socket of %s "
		    "(%s)", dd->dev[i].id, dd->cf.app_listen);
		return -1;
	}
	device_start(&dd->dev[i]);
	return 0;
}

void
host_start(struct deviced *dd)
{
	for (int i = 0; i < dd->n_dev; i++)
		device_start(&dd->dev[i]);
}

void
host_stop(struct deviced *dd)
{
	if (!dd->loop_open || dd->stopped)
		return;
	dd->stopped = 1;
	dd->stopping = 1;
	atomic_store(&dd->stop, 1);
	while (dd->jobs > 0)	/* a job reads its device: let it end */
		uv_run(&dd->loop, UV_RUN_ONCE);
	for (int i = 0; i < dd->n_dev; i++)
		device_close(&dd->dev[i]);
	uplink_close(&dd->up);
	if (dd->has_sub)
		nnuv_close(&dd->sub, NULL);
	dd->has_sub = 0;
}

void
host_close(struct deviced *dd)
{
	int rc;

	if (dd->loop_open) {
		host_stop(dd);
		uv_run(&dd->loop, UV_RUN_DEFAULT);
		if ((rc = uv_loop_close(&dd->loop)) != 0)
			log_warnx("uv_loop_close: %s", uv_strerror(rc));
		dd->loop_open = 0;
	}
	uplink_fini(&dd->up);
	for (int i = 0; i < dd->n_dev; i++)
		device_fini(&dd->dev[i]);
	free(dd->dev);
	dd->dev = NULL;
	dd->n_dev = dd->max_dev = 0;
	conf_fini(&dd->conf);
}
