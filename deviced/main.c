/*
 * deviced: the device daemon, a host (host.c) with what only a daemon
 * needs on top: the command line and config file, many devices from a
 * directory of shards, signals, sd_notify and the exit accounting. The
 * device's protocol, store, learning and app requests are the library's
 * (deviced.h, host.h, dccl_device.h), which an app can link instead.
 */
#include <dirent.h>
#include <getopt.h>
#include <malloc.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "deviced/deviced.h"
#include "deviced/host.h"
#include "shared/log.h"
#include "shared/notify.h"
#include "shared/wire.h"
#include "shared/xmalloc.h"

/*
 * The devices of deviced.shards are added and started one per loop turn:
 * a store to open or create, keys, samples and a stored model take a few
 * ms each, and a host of hundreds would otherwise load for tens of
 * seconds before its first device spoke to the cloud.
 */
struct loader {
	uv_idle_t	 idle;
	uint32_t	*users;		/* the shards' user ids, n of them */
	int		 n, next;
};

struct daemon {
	struct deviced	 dd;
	uv_signal_t	 sigterm, sigint, sighup;
	struct loader	 ld;
};

static void
usage(FILE *f)
{
	fprintf(f,
"usage: deviced [-f FILE] [-o section.key=value]... [options]\n"
"  -f, --config FILE     read FILE (INI; see conf/deviced.conf)\n"
"  -o, --option K=V      override one option (repeatable)\n"
"  -N, --devices N       host N devices (needs deviced.shards)\n"
"  -n, --check           check the configuration and exit\n"
"  -p, --print-config    print effective options and their sources\n"
"  -E, --example-config  print a commented config with every default\n"
"  -d, --debug           log-level debug\n"
"  -h, --help            this help\n"
"  -V, --version         print the version\n");
}

static void
signal_cb(uv_signal_t *h, int sig)
{
	struct deviced *dd = h->data;

	if (sig == SIGHUP) {
		log_info("RELOAD: deviced reads its config at start; restart "
		    "to apply changes");
		return;
	}
	log_info("SHUTDOWN: signal %d", sig);
	dd->stopping = 1;
	atomic_store(&dd->stop, 1);
	uv_stop(&dd->loop);
}

static void
signals_start(struct daemon *dm)
{
	uv_signal_t *h[] = { &dm->sigterm, &dm->sigint, &dm->sighup };
	int sig[] = { SIGTERM, SIGINT, SIGHUP };

	for (int i = 0; i < 3; i++) {
		uv_signal_init(&dm->dd.loop, h[i]);
		h[i]->data = &dm->dd;
		uv_signal_start(h[i], signal_cb, sig[i]);
	}
}

static void
signals_close(struct daemon *dm)
{
	uv_close((uv_handle_t *)&dm->sigterm, NULL);
	uv_close((uv_handle_t *)&dm->sigint, NULL);
	uv_close((uv_handle_t *)&dm->sighup, NULL);
}

static int
cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

	return x < y ? -1 : x > y;
}

/* Users with a <user>.local.csv in dir, ascending. */
static uint32_t *
list_shards(const char *dir, int *n)
{
	DIR *dp = opendir(dir);
	struct dirent *de;
	uint32_t *u = NULL;
	int cap = 0;

	*n = 0;
	if (dp == NULL)
		return NULL;
	while ((de = readdir(dp)) != NULL) {
		char *end;
		unsigned long v = strtoul(de->d_name, &end, 10);
		if (end == de->d_name || strcmp(end, ".local.csv") != 0)
			continue;
		if (*n == cap)
			u = xreallocarray(u, cap = cap ? cap * 2 : 64,
			    sizeof(*u));
		u[(*n)++] = (uint32_t)v;
	}
	closedir(dp);
	if (*n > 0)
		qsort(u, *n, sizeof(*u), cmp_u32);
	return u;
}

static void
ready(struct deviced *dd)
{
	log_info("READY: deviced %s hosting %d device(s), cloud %s",
	    DEVICED_VERSION, dd->n_dev, dd->cf.cloud);
	notify_ready(NULL);
}

/* Adds and starts the next device of the shards (struct loader). */
static void
load_cb(uv_idle_t *h)
{
	struct daemon *dm = h->data;
	struct deviced *dd = &dm->dd;
	struct loader *ld = &dm->ld;
	char id[80], lp[1200], tp[1200], err[256];
	uint32_t u;

	if (dd->stopping || ld->next >= ld->n) {
		uv_idle_stop(h);
		uv_close((uv_handle_t *)h, NULL);
		if (!dd->stopping)
			ready(dd);
		return;
	}
	u = ld->users[ld->next++];
	snprintf(id, sizeof(id), "%.40s-%u", dd->cf.device_id, u);
	snprintf(lp, sizeof(lp), "%s/%u.local.csv", dd->cf.shards, u);
	snprintf(tp, sizeof(tp), "%s/%u.test.csv", dd->cf.shards, u);
	if (host_add(dd, id, u, lp, tp) != 0)
		fatalx("DEVICE: cannot start %s", id);
	/* net.start-jitter-ms = 0 is "at once": all of them, once loaded. */
	if (dd->cf.start_jitter_ms > 0 &&
	    host_begin(dd, dd->n_dev - 1, err, sizeof(err)) != 0)
		fatalx("%s", err);
	if (dd->cf.start_jitter_ms == 0 && ld->next == ld->n) {
		if (host_listen(dd, err, sizeof(err)) != 0)
			fatalx("%s", err);
		host_start(dd);
	}
}

/*
 * The devices of deviced.shards (one per <user>.local.csv), started by
 * load_cb as they load; else the one device of deviced.device-id,
 * started here.
 */
static void
add_devices(struct daemon *dm)
{
	struct deviced *dd = &dm->dd;
	struct loader *ld = &dm->ld;
	char err[256];
	int n, per;
	long long fixed;

	if (dd->cf.shards[0] == '\0') {
		if (host_open(dd, "deviced", 1, err, sizeof(err)) != 0)
			fatalx("%s", err);
		if (host_add(dd, dd->cf.device_id, (uint32_t)dd->cf.user_id,
		    dd->cf.local_data, NULL) != 0)
			fatalx("DEVICE: cannot start %s", dd->cf.device_id);
		if (host_listen(dd, err, sizeof(err)) != 0)
			fatalx("%s", err);
		ready(dd);
		host_start(dd);
		return;
	}
	ld->users = list_shards(dd->cf.shards, &n);
	if (n == 0)
		fatalx("SHARDS: no <user>.local.csv in %s", dd->cf.shards);
	if (dd->cf.devices > 0 && dd->cf.devices < n)
		n = (int)dd->cf.devices;
	/* nanomsg allows NN_MAX_SOCKETS (512) per process: the uplink's
	 * lanes and the SUB, and an app socket per device if they listen.
	 * Past that nn_socket fails mid-start; refuse up front. */
	per = dd->cf.app_listen[0] != '\0' ? 1 : 0;
	fixed = 1 + (2 * (long long)n < dd->cf.uplink_lanes ? 2 *
	    (long long)n : dd->cf.uplink_lanes);	/* uplink_lanes() */
	if ((long long)n * per + fixed > DEVICED_MAX_SOCKETS)
		fatalx("SHARDS: %d devices need %lld nanomsg sockets, more "
		    "than the %d one process may have: host at most %lld per "
		    "process (deviced.devices) and run several deviced", n,
		    (long long)n * per + fixed, DEVICED_MAX_SOCKETS,
		    (long long)(DEVICED_MAX_SOCKETS - fixed) / per);
	ld->n = n;
	if (host_open(dd, "deviced", n, err, sizeof(err)) != 0)
		fatalx("%s", err);
	/* The SUB now; app sockets with each device, or all at the end. */
	if (dd->cf.start_jitter_ms > 0 &&
	    host_listen(dd, err, sizeof(err)) != 0)
		fatalx("%s", err);
	uv_idle_init(&dd->loop, &ld->idle);
	ld->idle.data = dm;
	uv_idle_start(&ld->idle, load_cb);
}

int
main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "config", required_argument, NULL, 'f' },
		{ "option", required_argument, NULL, 'o' },
		{ "devices", required_argument, NULL, 'N' },
		{ "check", no_argument, NULL, 'n' },
		{ "print-config", no_argument, NULL, 'p' },
		{ "example-config", no_argument, NULL, 'E' },
		{ "debug", no_argument, NULL, 'd' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ NULL, 0, NULL, 0 }
	};
	struct daemon *dm = xcalloc(1, sizeof(*dm));
	struct deviced *dd = &dm->dd;
	const char **over = xcalloc(argc + 1, sizeof(char *));
	const char *ndev = NULL, *path = NULL;
	char threads[16];
	int ch, n_over = 0, check = 0, print = 0, bad = 0, rc, signalled;
	uint64_t up = 0, down = 0;

	while ((ch = getopt_long(argc, argv, "f:o:N:npEdhV", longopts, NULL))
	    != -1) {
		switch (ch) {
		case 'f': path = optarg; break;
		case 'o': over[n_over++] = optarg; break;
		case 'N': ndev = optarg; break;
		case 'n': check = 1; break;
		case 'p': print = 1; break;
		case 'E': conf_write_example(deviced_opts, "deviced.conf: the dccl device daemon", stdout);
			rc = 0; goto early;
		case 'd': over[n_over++] = "deviced.log-level=debug"; break;
		case 'h': usage(stdout); rc = 0; goto early;
		case 'V': printf("deviced %s (protocol %d)\n",
		    DEVICED_VERSION, WIRE_VERSION); rc = 0; goto early;
		default: usage(stderr); rc = 2; goto early;
		}
	}
	if (optind != argc) {
		usage(stderr);
		rc = 2;
		goto early;
	}
	if (deviced_configure(dd, path, over, (size_t)n_over, stderr) != 0)
		bad = 1;
	if (ndev != NULL && conf_set(&dd->conf, "deviced.devices", ndev,
	    CONF_SRC_FLAG, "--devices") != 0)
		bad = 1;
	if (deviced_conf_done(dd) != 0)
		bad = 1;
	if (bad) {
		fprintf(stderr, "deviced: configuration has errors\n");
		rc = 1;
		goto early;
	}
	if (print)
		conf_print(&dd->conf, stdout);
	if (check)
		printf("configuration OK\n");
	if (print || check) {
		rc = 0;
		goto early;
	}
	free(over);

	log_init("deviced", dd->cf.log_level);
	/*
	 * Training jobs clone the model (params, grads, Adam state: a few MB)
	 * many times; served from mmap each clone costs fresh page faults.
	 * Keeping them on the heap makes a clone a reuse of warm memory.
	 */
	mallopt(M_MMAP_THRESHOLD, 256 << 20);
	mallopt(M_TRIM_THRESHOLD, 512 << 20);
	snprintf(threads, sizeof(threads), "%lld", (long long)dd->cf.workers);
	setenv("UV_THREADPOOL_SIZE", threads, 1);
	signal(SIGPIPE, SIG_IGN);
	add_devices(dm);
	signals_start(dm);
	uv_run(&dd->loop, UV_RUN_DEFAULT);
	notify_stopping();

	/* Stopped (signal or all done): let jobs finish, close, drain. */
	signalled = dd->stopping;
	host_stop(dd);
	signals_close(dm);
	for (int i = 0; i < dd->n_dev; i++) {
		up += dd->dev[i].bytes_up;
		down += dd->dev[i].bytes_down;
	}
	log_info("EXIT: %d/%d devices done, %llu bytes up, %llu down",
	    dd->n_done, dd->n_dev, (unsigned long long)up,
	    (unsigned long long)down);
	if (dd->n_refused > 0)
		log_warnx("EXIT: %d device(s) refused the cloud model: its "
		    "feature schema is not their data's (SCHEMA lines)",
		    dd->n_refused);
	log_info("TRAFFIC: %llu requests, %llu re-sends, %llu timeouts, %llu "
	    "busy, %llu late chunks kept", (unsigned long long)dd->n_req,
	    (unsigned long long)dd->n_resend,
	    (unsigned long long)dd->n_timeout, (unsigned long long)dd->n_busy,
	    (unsigned long long)dd->n_late_chunk);
	rc = dd->cf.run_once && !signalled && dd->n_done < dd->n_dev;
	host_close(dd);
	free(dm->ld.users);
	free(dm);
	return rc;
early:
	free(over);
	conf_fini(&dd->conf);
	free(dm);
	return rc;
}
