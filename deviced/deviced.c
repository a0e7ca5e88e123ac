/*
 * deviced: the device side's options (deviced.*, device.*, net.*, auth.*,
 * dp.*, learn.*), read the same way by the daemon (main.c) and the
 * embeddable library (dccl_device.c). See deviced.h for the process model,
 * host.c for what runs the devices and device.c for a device's lifecycle.
 */
#include <stddef.h>
#include <stdio.h>

#include "deviced/deviced.h"
#include "shared/numlist.h"
#include "shared/wire.h"

#define DV_OFF(f) offsetof(struct deviced_conf, f)

static const char *const log_levels[] = { "error", "warn", "info", "debug",
	NULL };
static const char *const classes[] = { "low", "mid", "high", NULL };
static const char *const adapts[] = { "none", "metapatch", "finetune",
	"bias", NULL };
static const char *const delay_dists[] = { "fixed", "uniform", "exp",
	"lognormal", NULL };
static const char *const lcs[] = { "none", "soft", "offset", NULL };
static const char *const lctgts[] = { "global", "model", NULL };
static const char *const selects[] = { "cv", "fed", NULL };
static const char *const pair_selects[] = { "fixed", "fed", NULL };
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
	CONF_INT("net.uplink-lanes", DV_OFF(uplink_lanes), "16", 1, 64, 0,
	    "connections to the cloud, one request in flight on each "
	    "(at most two per hosted device)"),
	CONF_INT("net.start-jitter-ms", DV_OFF(start_jitter_ms), "1000", 0,
	    3600000, 0, "each device starts at a random time this long "
	    "after it is loaded (0 = all at once, when all are)"),
	CONF_INT("net.backoff-min-ms", DV_OFF(backoff_min_ms), "100", 1,
	    3600000, 0, "first retry delay (doubles, with jitter)"),
	CONF_INT("net.backoff-max-ms", DV_OFF(backoff_max_ms), "30000", 1,
	    3600000, 0, "largest retry delay"),
	CONF_INT("net.max-message", DV_OFF(max_message), "4194304", 4096,
	    1073741824, 0, "largest reply accepted (NN_RCVMAXSIZE)"),
	CONF_INT("net.socket-buffer", DV_OFF(sockbuf), "4194304", 65536,
	    268435456, 0, "socket send and receive buffers, bytes (NN_SNDBUF, "
	    "NN_RCVBUF; the kernel caps them at wmem_max/rmem_max); "
	    "nanomsg's 128 KiB caps a round trip at 256 KiB"),
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
	CONF_ENUM("learn.adapt", DV_OFF(adapt), "finetune", adapts, 0,
	    "what the device trains and serves: none, metapatch (its m and "
	    "bias), finetune (all weights; the upload is a MetaPatch fitted "
	    "for the cloud) or bias (its logit bias only)"),
	CONF_BOOL("learn.bias-fallback", DV_OFF(bias_fallback), "yes", 0,
	    "when the guard refuses the adaptation, try the per-user bias "
	    "alone under the same guard"),
	CONF_ENUM("learn.lc", DV_OFF(lc), "offset", lcs, 0,
	    "label correction: none, soft (paper) or offset (logit offset)"),
	CONF_ENUM("learn.lc-target", DV_OFF(lc_target), "model", lctgts, 0,
	    "align the local rate to the model's own mean prediction (model) "
	    "or to r_g (global, the paper)"),
	CONF_INT("learn.lc-min-n", DV_OFF(lc_min_n), "0", 0, 1000000, 0,
	    "no label correction below this many local samples"),
	CONF_DBL("learn.lc-prior", DV_OFF(lc_prior), "2", 0, 1000, 0,
	    "pseudo-samples at the target rate smoothing the local CTR r_u"),
	CONF_BOOL("learn.coda", DV_OFF(coda), "no", 0,
	    "train on the retrieved samples the personal filter keeps (no: the "
	    "device retrieves nothing but for the evaluation)"),
	CONF_DBL("learn.coda-rho", DV_OFF(coda_rho), "0.3", 0, 1, 0,
	    "CoDA filter: keep the top share by p(local) (0 = use tau)"),
	CONF_DBL("learn.coda-tau", DV_OFF(coda_tau), "0.5", 0, 1, 0,
	    "CoDA filter: keep p(local) >= tau when coda-rho is 0"),
	CONF_DBL("learn.coda-weight", DV_OFF(coda_weight), "0.5", 0, 10, 0,
	    "loss weight of a kept retrieved sample (local = 1)"),
	CONF_INT("learn.retrieve-k", DV_OFF(retrieve_k), "100", 0, 1000000, 0,
	    "pool samples to retrieve with learn.coda (0 = no retrieval)"),
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
	CONF_DBL("learn.pair-weight", DV_OFF(pair_weight), "3", 0, 100, 0,
	    "weight of a pairwise loss over the user's own (click, no-click) "
	    "pairs added to BCE (0: BCE alone; deviced/README.md)"),
	CONF_INT("learn.batch", DV_OFF(batch), "32", 1, 65536, 0,
	    "samples per SGD step (full batch below it)"),
	CONF_INT("learn.cv-folds", DV_OFF(cv_folds), "3", 2, 100, 0,
	    "cross-validation folds over the local samples (setting choice "
	    "and guard)"),
	CONF_DBL("learn.guard-z", DV_OFF(guard_z), "1", 0, 10, 0,
	    "adopt only if the CV logloss gain minus guard-z standard errors "
	    "is positive"),
	CONF_ENUM("learn.select", DV_OFF(select), "cv", selects, 0,
	    "the served method's setting: cv (this device's cross-validation) "
	    "or fed (the cloud's federated choice; the default setting until "
	    "it has one; the guard's CV then trains only that setting)"),
	CONF_BOOL("learn.fedsel-report", DV_OFF(fedsel_report), "no", 0,
	    "after each job, report the validation sums of every setting of "
	    "learn.fedsel-methods to the cloud (never with DP on)"),
	CONF_STR("learn.fedsel-methods", DV_OFF(fedsel_methods), "serve", 0,
	    "methods the report covers: serve (the served method) and "
	    "evaluation method names, comma-separated, at most 16"),
	CONF_ENUM("learn.pair-select", DV_OFF(pair_select), "fixed",
	    pair_selects, 0, "the served method's pair weight: fixed "
	    "(learn.pair-weight) or fed (the cloud's federated choice)"),
	CONF_STR("learn.pair-weights", DV_OFF(pair_weights), "0,1,3,9", 0,
	    "pair weights reported for a family (\"-pairw\" rows; serve with "
	    "pair-select fed), the first the default; as the cloud's"),
	CONF_BOOL("learn.guard-rank", DV_OFF(guard_rank), "yes", 0,
	    "adopt what reorders a user's items only if it orders more "
	    "held-out (click, no-click) pairs right than the cloud model"),
	CONF_DBL("learn.guard-move", DV_OFF(guard_move), "0", 0, 1, 0,
	    "adopt what reorders a user's items only if it reverses at "
	    "least this share of held-out sample pairs against the cloud "
	    "model (labels unused; 0 off)"),
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
	CONF_INT("learn.delay-ms", DV_OFF(delay_ms), "0", 0, 3600000, 0,
	    "experiments: hold each patch this long, times a draw from "
	    "learn.delay-dist, before uploading it (0 = off)"),
	CONF_ENUM("learn.delay-dist", DV_OFF(delay_dist), "fixed",
	    delay_dists, 0, "the delay's draw: fixed, uniform (0..2x), exp "
	    "(mean 1x) or lognormal (median 1x, sigma 1); at most 50x"),
	CONF_INT("learn.delay-seed", DV_OFF(delay_seed), "1", 0, 2147483647,
	    0, "seed of the delay draws (with the device id and version)"),
	CONF_INT("learn.retrain-every", DV_OFF(retrain_every), "20", 0,
	    1000000, 0, "re-run the learning job after this many new local "
	    "samples from the app (0 = never)"),
	CONF_INT("learn.window", DV_OFF(window), "1024", 0, 1000000, 0,
	    "each fit (CV folds, final) trains on at most this many of the "
	    "newest local samples before its held-out block (0 = all; 1024 "
	    "chosen on validation, scripts/eval-results.md)"),
	CONF_INT("learn.max-local", DV_OFF(max_local), "4096", 16, 1000000, 0,
	    "local samples a device keeps and learns from: the newest; "
	    "older ones are deleted from its store (bounds the job's memory "
	    "and time; events beyond it during a job get E_BUSY)"),
	{ NULL }
};

int
deviced_conf_metapatch(struct conf *c, const char *where)
{
	static const char *const kv[][2] = { { "learn.adapt", "metapatch" },
		{ "learn.lc", "none" }, { "learn.pair-weight", "0" } };

	for (size_t i = 0; i < sizeof(kv) / sizeof(kv[0]); i++)
		if (conf_set(c, kv[i][0], kv[i][1], CONF_SRC_FLAG, where) != 0)
			return -1;
	return 0;
}

int
deviced_configure(struct deviced *dd, const char *path,
    const char *const *opts, size_t n_opts, FILE *err)
{
	int bad = 0;

	if (conf_init(&dd->conf, deviced_opts, &dd->cf, err) != 0)
		bad = 1;	/* the built-in defaults: a bug, reported */
	if (!bad && path != NULL && conf_load(&dd->conf, path) != 0)
		bad = 1;
	for (size_t i = 0; i < n_opts; i++)
		if (conf_set_arg(&dd->conf, opts[i], CONF_SRC_FLAG) != 0)
			bad = 1;
	dd->conf_path = path;
	return bad ? -1 : 0;
}

int
deviced_conf_done(struct deviced *dd)
{
	char err[128];

	if (!wire_devid_valid(dd->cf.device_id)) {
		fprintf(dd->conf.err != NULL ? dd->conf.err : stderr,
		    "deviced.device-id: 1..64 of [A-Za-z0-9._-]\n");
		return -1;
	}
	dd->cf.compute_class = (char *)classes[dd->cf.compute_class_i];
	if (numlist_parse(dd->cf.pair_weights, dd->cf.pw,
	    (int)(sizeof(dd->cf.pw) / sizeof(dd->cf.pw[0])), 0, 100,
	    &dd->cf.npw, err, sizeof(err)) != 0) {
		fprintf(dd->conf.err != NULL ? dd->conf.err : stderr,
		    "learn.pair-weights: %s\n", err);
		return -1;
	}
	return 0;
}
