/*
 * deviced: the daemon (deviced_main; main.c calls it), configuration, the
 * shared SUB socket, signals, shutdown. See deviced.h for the process model
 * and device.c for the lifecycle. The option table and deviced_conf_done
 * are shared with the embeddable library (dccl_device.c).
 */
#include <dirent.h>
#include <errno.h>
#include <getopt.h>
#include <malloc.h>
#include <nanomsg/nn.h>
#include <nanomsg/pubsub.h>
#include <cblas.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "deviced/app.h"
#include "deviced/deviced.h"
#include "shared/auth.h"
#include "shared/log.h"
#include "shared/notify.h"
#include "shared/wire.h"
#include "shared/xmalloc.h"

#define DV_OFF(f) offsetof(struct deviced_conf, f)

static const char *const log_levels[] = { "error", "warn", "info", "debug",
	NULL };
static const char *const classes[] = { "low", "mid", "high", NULL };
static const char *const adapts[] = { "none", "metapatch", "finetune",
	"bias", NULL };
static const char *const lcs[] = { "none", "soft", "offset", NULL };
static const char *const lctgts[] = { "global", "model", NULL };
static const char *const rmodes[] = { "samples", "users", NULL };
static const char *const auth_modes[] = { "off", "mac", "encrypt", NULL };

/* deviced reads its configuration at start only (SIGHUP just says so), so
 * no option is marked reloadable. */
const struct conf_opt deviced_opts[] = {
	CONF_STR("deviced.cloud", DV_OFF(cloud), "tcp://127.0.0.1:7400", 0,
	    "cloud REP endpoints, comma-separated (requests spread over them)"),
	CONF_STR("deviced.cloud-pub", DV_OFF(cloud_pub),
	    "tcp://127.0.0.1:7401", 0, "cloud PUB endpoints, comma-separated"),
	CONF_STR("deviced.device-id", DV_OFF(device_id), "dev", 0,
	    "device id; with several devices, the prefix of <id>-<user>"),
	CONF_INT("deviced.user-id", DV_OFF(user_id), "0", 0, 4294967295.0, 0,
	    "this device's user (dense id); ignored with shards"),
	CONF_STR("deviced.data-dir", DV_OFF(data_dir), "deviced-data", 0,
	    "state directory; each device uses <data-dir>/<id>/"),
	CONF_STR("deviced.local-data", DV_OFF(local_data), "", 0,
	    "samples CSV imported once into the device store"),
	CONF_STR("deviced.shards", DV_OFF(shards), "", 0,
	    "directory of <user>.local.csv files: one device per file"),
	CONF_INT("deviced.devices", DV_OFF(devices), "0", 0, 100000, 0,
	    "with shards: how many devices to host (0 = all)"),
	CONF_STR("deviced.eval-dir", DV_OFF(eval_dir), "", 0,
	    "write test predictions per method here (evaluation only)"),
	CONF_BOOL("deviced.run-once", DV_OFF(run_once), "no", 0,
	    "exit when every device has uploaded one patch"),
	CONF_ENUM("deviced.log-level", DV_OFF(log_level), "info", log_levels,
	    0, "error, warn, info or debug"),
	CONF_INT("deviced.workers", DV_OFF(workers), "1", 1, 64, 0,
	    "threadpool size for training jobs"),
	CONF_ENUM("device.compute-class", DV_OFF(compute_class_i), "mid",
	    classes, 0, "capability class: low, mid or high"),
	CONF_INT("device.memory-mb", DV_OFF(memory_mb), "512", 1, 1048576, 0,
	    "memory available to the model"),
	CONF_INT("device.flops-budget", DV_OFF(flops_budget), "0", 0,
	    1e15, 0, "FLOPs per prediction (0 = from the class)"),
	CONF_INT("net.request-timeout-ms", DV_OFF(request_timeout_ms), "10000",
	    100, 3600000, 0, "reply deadline before a retry"),
	CONF_INT("net.resend-ms", DV_OFF(resend_ms), "5000", 100, 3600000, 0,
	    "re-send a request unanswered this long (maybe to another "
	    "replica)"),
	CONF_INT("net.start-jitter-ms", DV_OFF(start_jitter_ms), "1000", 0,
	    3600000, 0, "each device starts at a random time this long "
	    "after deviced (0 = at once)"),
	CONF_INT("net.backoff-min-ms", DV_OFF(backoff_min_ms), "100", 1,
	    3600000, 0, "first retry delay (doubles, with jitter)"),
	CONF_INT("net.backoff-max-ms", DV_OFF(backoff_max_ms), "30000", 1,
	    3600000, 0, "largest retry delay"),
	CONF_INT("net.max-message", DV_OFF(max_message), "4194304", 4096,
	    1073741824, 0, "largest reply accepted (NN_RCVMAXSIZE)"),
	CONF_STR("deviced.eval-methods", DV_OFF(eval_methods),
	    "cloud,naive-ft,ft-cv,ft-guard,ft-lc,ft-lcm,ft-lcoffm,ft-coda,"
	    "ft-lcm-coda,ft-coda-u,metapatch,mp-cv,mp-lc-coda,mp-lcm-coda,bias,"
	    "ft-fb,mp-fb,oov,enc,enc-cv,ofa-low,ofa-mid,ofa-high", 0,
	    "evaluation: methods to score (see README)"),
	CONF_STR("deviced.app-listen", DV_OFF(app_listen), "", 0,
	    "local app socket (ipc:// or tcp://127.0.0.1:PORT; {dir} and {id} "
	    "expand to each device's state dir and id; \"\" = off), e.g. "
	    "ipc://{dir}/app.ipc"),
	CONF_INT("deviced.app-max-candidates", DV_OFF(app_max_candidates),
	    "1000", 1, 100000, 0, "most candidates in one app rank request"),
	CONF_ENUM("auth.mode", DV_OFF(auth_mode), "mac", auth_modes, 0,
	    "off, mac (sign every request) or encrypt (also encrypt "
	    "payloads); the cloud's mode wins when it is stricter"),
	CONF_STR("auth.token", DV_OFF(auth_token), "", 0,
	    "enrollment token (empty: $DCCL_AUTH_TOKEN, else auth.token-file)"),
	CONF_STR("auth.token-file", DV_OFF(auth_token_file), "enroll.token", 0,
	    "file whose first line is the enrollment token, relative to the "
	    "working directory: a copy of cloudd's <cloudd.data-dir>/"
	    "enroll.token (a missing file means no token)"),
	CONF_BOOL("auth.repin", DV_OFF(auth_repin), "no", 0,
	    "accept a cloud key other than the pinned one, once (after the "
	    "operator replaced the cloud's key store)"),
	CONF_DBL("dp.clip", DV_OFF(dp_clip), "0", 0, 1e9, 0,
	    "differential privacy: L2 clip norm of the uploaded patch "
	    "(0 = no DP on patches)"),
	CONF_DBL("dp.noise", DV_OFF(dp_noise), "1", 0.01, 1e6, 0,
	    "Gaussian noise multiplier z: sigma = z * clip"),
	CONF_DBL("dp.repr-clip", DV_OFF(dp_repr_clip), "0", 0, 1e9, 0,
	    "L2 clip norm of each retrieval query vector (0 = no DP on "
	    "vectors)"),
	CONF_DBL("dp.repr-noise", DV_OFF(dp_repr_noise), "1", 0.01, 1e6, 0,
	    "noise multiplier for query vectors: sigma = z * repr-clip"),
	CONF_DBL("dp.max-epsilon", DV_OFF(dp_max_eps), "20", 0, 1e9, 0,
	    "cap on the total epsilon a device spends (at dp.delta); a "
	    "release that would pass it is not made (0 = no cap)"),
	CONF_DBL("dp.delta", DV_OFF(dp_delta), "1e-5", 1e-12, 0.1, 0,
	    "delta of the reported (epsilon, delta) budget"),
	CONF_ENUM("learn.adapt", DV_OFF(adapt), "metapatch", adapts, 0,
	    "what the device trains: none, metapatch (its m and bias), "
	    "finetune (all weights) or bias (its logit bias only)"),
	CONF_BOOL("learn.bias-fallback", DV_OFF(bias_fallback), "yes", 0,
	    "when the guard refuses the adaptation, try the per-user bias "
	    "alone under the same guard"),
	CONF_ENUM("learn.lc", DV_OFF(lc), "none", lcs, 0,
	    "label correction: none, soft (paper) or offset (logit offset)"),
	CONF_ENUM("learn.lc-target", DV_OFF(lc_target), "model", lctgts, 0,
	    "align the local rate to the model's own mean prediction (model) "
	    "or to r_g (global, the paper)"),
	CONF_INT("learn.lc-min-n", DV_OFF(lc_min_n), "0", 0, 1000000, 0,
	    "no label correction below this many local samples"),
	CONF_DBL("learn.lc-prior", DV_OFF(lc_prior), "2", 0, 1000, 0,
	    "pseudo-samples at the target rate smoothing the local CTR r_u"),
	CONF_BOOL("learn.coda", DV_OFF(coda), "no", 0,
	    "train on the retrieved samples the personal filter keeps"),
	CONF_DBL("learn.coda-rho", DV_OFF(coda_rho), "0.3", 0, 1, 0,
	    "CoDA filter: keep the top share by p(local) (0 = use tau)"),
	CONF_DBL("learn.coda-tau", DV_OFF(coda_tau), "0.5", 0, 1, 0,
	    "CoDA filter: keep p(local) >= tau when coda-rho is 0"),
	CONF_DBL("learn.coda-weight", DV_OFF(coda_weight), "0.5", 0, 10, 0,
	    "loss weight of a kept retrieved sample (local = 1)"),
	CONF_INT("learn.retrieve-k", DV_OFF(retrieve_k), "100", 0, 1000000, 0,
	    "pool samples to retrieve (0 = no retrieval)"),
	CONF_INT("learn.retrieve-queries", DV_OFF(retrieve_queries), "64", 1,
	    100000, 0, "most recent local samples sent as query vectors"),
	CONF_ENUM("learn.retrieve-mode", DV_OFF(retrieve_mode), "samples",
	    rmodes, 0, "samples (similar samples) or users (similar users)"),
	CONF_DBL("learn.lr", DV_OFF(lr), "0.01", 1e-7, 100, 0,
	    "MetaPatch SGD learning rate (grid: lr/3, lr, 3 lr)"),
	CONF_DBL("learn.bias-lr", DV_OFF(bias_lr), "0.3", 1e-7, 100, 0,
	    "per-user bias SGD learning rate (grid: lr/3, lr, 3 lr)"),
	CONF_DBL("learn.ft-lr", DV_OFF(ft_lr), "0.01", 1e-7, 100, 0,
	    "fine-tuning SGD learning rate (grid: lr/3, lr, 3 lr)"),
	CONF_INT("learn.steps", DV_OFF(steps), "20", 1, 10000, 0,
	    "MetaPatch SGD steps (grid: steps/4, steps)"),
	CONF_INT("learn.ft-steps", DV_OFF(ft_steps), "20", 1, 10000, 0,
	    "fine-tuning SGD steps (grid: steps/4, steps)"),
	CONF_INT("learn.batch", DV_OFF(batch), "32", 1, 65536, 0,
	    "samples per SGD step (full batch below it)"),
	CONF_INT("learn.cv-folds", DV_OFF(cv_folds), "3", 2, 100, 0,
	    "cross-validation folds over the local samples (setting choice "
	    "and guard)"),
	CONF_DBL("learn.guard-z", DV_OFF(guard_z), "1", 0, 10, 0,
	    "adopt only if the CV logloss gain minus guard-z standard errors "
	    "is positive"),
	CONF_BOOL("learn.guard-rank", DV_OFF(guard_rank), "yes", 0,
	    "adopt what reorders a user's items only if it orders more "
	    "held-out (click, no-click) pairs right than the cloud model"),
	CONF_INT("learn.guard-min-n", DV_OFF(guard_min_n), "4", 2, 1000000,
	    0, "adopt nothing with fewer local samples"),
	CONF_INT("learn.seed", DV_OFF(seed), "1", 0, 2147483647, 0,
	    "training seed"),
	CONF_BOOL("learn.encoder", DV_OFF(encoder), "no", 0,
	    "a cold user (no trained rows in the model) starts from the "
	    "shipped encoder's rows or the unknown-user rows, chosen by CV "
	    "(off: no ranking gain measured; deviced/README.md)"),
	CONF_BOOL("learn.ofa", DV_OFF(ofa), "no", 0,
	    "Forward-OFA: fetch the base and the blocks this device "
	    "assembles, adapt in one forward pass (on in eval runs with "
	    "ofa-* methods)"),
	CONF_INT("learn.retrain-every", DV_OFF(retrain_every), "20", 0,
	    1000000, 0, "re-run the learning job after this many new local "
	    "samples from the app (0 = never)"),
	{ NULL }
};

int
deviced_conf_done(struct deviced *dd)
{
	if (!wire_devid_valid(dd->cf.device_id)) {
		fprintf(stderr, "deviced.device-id: 1..64 of [A-Za-z0-9._-]\n");
		return -1;
	}
	dd->cf.compute_class = (char *)classes[dd->cf.compute_class_i];
	return 0;
}

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
shutdown_all(struct deviced *dd)
{
	if (dd->closed)
		return;
	dd->closed = 1;
	for (int i = 0; i < dd->n_dev; i++)
		device_close(&dd->dev[i]);
	if (dd->has_sub)
		nnuv_close(&dd->sub, NULL);
	uv_close((uv_handle_t *)&dd->sigterm, NULL);
	uv_close((uv_handle_t *)&dd->sigint, NULL);
	uv_close((uv_handle_t *)&dd->sighup, NULL);
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
sub_cb(struct nnuv *s, void *msg, size_t len, void *hdr)
{
	struct deviced *dd = s->data;
	Dccl__Envelope *e = NULL;
	char err[128];

	(void)hdr;
	if (wire_unpack(msg, len, &e, err, sizeof(err)) == 0 &&
	    e->body_case == DCCL__ENVELOPE__BODY_ANNOUNCE) {
		/* Signed with the key each device learned at registration
		 * (all from the same cloud); a forged one is dropped. */
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

int
deviced_main(int argc, char **argv)
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
	struct deviced *dd = xcalloc(1, sizeof(*dd));
	char **over = xcalloc(argc + 1, sizeof(char *)), threads[16];
	int ch, n_over = 0, check = 0, print = 0, bad = 0, rc, signalled;
	const char *ndev = NULL;

	if (conf_init(&dd->conf, deviced_opts, &dd->cf, stderr) != 0)
		fatalx("built-in defaults are invalid");
	while ((ch = getopt_long(argc, argv, "f:o:N:npEdhV", longopts, NULL))
	    != -1) {
		switch (ch) {
		case 'f': dd->conf_path = optarg; break;
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
	if (dd->conf_path != NULL && conf_load(&dd->conf, dd->conf_path) != 0)
		bad = 1;
	for (int i = 0; i < n_over; i++)
		if (conf_set_arg(&dd->conf, over[i], CONF_SRC_FLAG) != 0)
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
	if (sodium_init() < 0)
		fatalx("libsodium failed to initialise");
	openblas_set_num_threads(1);
	snprintf(threads, sizeof(threads), "%lld", (long long)dd->cf.workers);
	setenv("UV_THREADPOOL_SIZE", threads, 1);
	signal(SIGPIPE, SIG_IGN);
	if ((rc = uv_loop_init(&dd->loop)) != 0)
		fatalx("uv_loop_init: %s", uv_strerror(rc));

	if (dd->cf.shards[0] != '\0') {
		int n, per;
		uint32_t *users = list_shards(dd->cf.shards, &n);
		if (n == 0)
			fatalx("SHARDS: no <user>.local.csv in %s",
			    dd->cf.shards);
		if (dd->cf.devices > 0 && dd->cf.devices < n)
			n = (int)dd->cf.devices;
		/* nanomsg allows NN_MAX_SOCKETS (512) per process: one REQ
		 * socket per device, one more with an app socket, and the
		 * SUB. Past that nn_socket fails mid-start; refuse up front. */
		per = dd->cf.app_listen[0] != '\0' ? 2 : 1;
		if ((long long)n * per + 1 > DEVICED_MAX_SOCKETS)
			fatalx("SHARDS: %d devices need %lld nanomsg sockets, "
			    "more than the %d one process may have: host at "
			    "most %d per process (deviced.devices) and run "
			    "several deviced", n, (long long)n * per + 1,
			    DEVICED_MAX_SOCKETS, (DEVICED_MAX_SOCKETS - 1) / per);
		dd->dev = xcalloc(n, sizeof(*dd->dev));
		for (int i = 0; i < n; i++) {
			char id[80], lp[1200], tp[1200];
			snprintf(id, sizeof(id), "%.40s-%u", dd->cf.device_id,
			    users[i]);
			snprintf(lp, sizeof(lp), "%s/%u.local.csv",
			    dd->cf.shards, users[i]);
			snprintf(tp, sizeof(tp), "%s/%u.test.csv",
			    dd->cf.shards, users[i]);
			if (device_init(dd, &dd->dev[i], id, users[i], lp, tp))
				fatalx("DEVICE: cannot start %s", id);
			dd->n_dev++;
		}
		free(users);
	} else {
		dd->dev = xcalloc(1, sizeof(*dd->dev));
		if (device_init(dd, &dd->dev[0], dd->cf.device_id,
		    (uint32_t)dd->cf.user_id, dd->cf.local_data, NULL) != 0)
			fatalx("DEVICE: cannot start %s", dd->cf.device_id);
		dd->n_dev = 1;
	}
	{
		int sock = nn_socket(AF_SP, NN_SUB);
		char *dup = xstrdup(dd->cf.cloud_pub), *save = NULL, *ep;
		if (sock < 0 || nn_setsockopt(sock, NN_SUB, NN_SUB_SUBSCRIBE,
		    "", 0) < 0)
			fatalx("SUB: %s", nn_strerror(nn_errno()));
		for (ep = strtok_r(dup, ",", &save); ep;
		    ep = strtok_r(NULL, ",", &save))
			if (nn_connect(sock, ep) < 0)
				fatalx("SUB: %s: %s", ep,
				    nn_strerror(nn_errno()));
		free(dup);
		if (nnuv_init(&dd->sub, &dd->loop, sock, 0, sub_cb, dd) != 0)
			fatalx("SUB: cannot watch the socket");
		dd->has_sub = 1;
	}
	for (int i = 0; i < dd->n_dev; i++)
		if (app_open(&dd->dev[i]) != 0)
			fatalx("APP: cannot open the app socket of %s",
			    dd->dev[i].id);
	uv_signal_init(&dd->loop, &dd->sigterm);
	uv_signal_init(&dd->loop, &dd->sigint);
	uv_signal_init(&dd->loop, &dd->sighup);
	dd->sigterm.data = dd->sigint.data = dd->sighup.data = dd;
	uv_signal_start(&dd->sigterm, signal_cb, SIGTERM);
	uv_signal_start(&dd->sigint, signal_cb, SIGINT);
	uv_signal_start(&dd->sighup, signal_cb, SIGHUP);

	log_info("READY: deviced %s hosting %d device(s), cloud %s",
	    DEVICED_VERSION, dd->n_dev, dd->cf.cloud);
	notify_ready(NULL);
	for (int i = 0; i < dd->n_dev; i++)
		device_start(&dd->dev[i]);
	uv_run(&dd->loop, UV_RUN_DEFAULT);
	notify_stopping();

	/* Stopped (signal or all done): let jobs finish, close, drain. */
	signalled = dd->stopping;
	dd->stopping = 1;
	atomic_store(&dd->stop, 1);
	while (dd->jobs > 0)
		uv_run(&dd->loop, UV_RUN_ONCE);
	shutdown_all(dd);
	uv_run(&dd->loop, UV_RUN_DEFAULT);
	if ((rc = uv_loop_close(&dd->loop)) != 0)
		log_warnx("uv_loop_close: %s", uv_strerror(rc));
	{
		uint64_t up = 0, down = 0;
		for (int i = 0; i < dd->n_dev; i++) {
			up += dd->dev[i].bytes_up;
			down += dd->dev[i].bytes_down;
			device_fini(&dd->dev[i]);
		}
		log_info("EXIT: %d/%d devices done, %llu bytes up, %llu down",
		    dd->n_done, dd->n_dev, (unsigned long long)up,
		    (unsigned long long)down);
		log_info("TRAFFIC: %llu requests, %llu re-sends, %llu "
		    "timeouts, %llu busy", (unsigned long long)dd->n_req,
		    (unsigned long long)dd->n_resend,
		    (unsigned long long)dd->n_timeout,
		    (unsigned long long)dd->n_busy);
	}
	rc = dd->cf.run_once && !signalled && dd->n_done < dd->n_dev;
	free(dd->dev);
	conf_fini(&dd->conf);
	free(dd);
	return rc;
early:
	free(over);
	conf_fini(&dd->conf);
	free(dd);
	return rc;
}
