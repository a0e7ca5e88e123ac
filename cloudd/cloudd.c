/*
 * cloudd: main, configuration, sockets, signals, cron and shutdown.
 *
 * DESIGN: one libuv loop thread owns struct cloudd. Requests arrive on raw
 * REP sockets (many in flight); light ones are answered on the loop, heavy
 * ones (retrieval, import, training, index builds) run in the threadpool and
 * reply from their after_cb. SIGTERM/SIGINT stop intake, let in-flight work
 * finish (training is told to stop), close the sockets and the database, and
 * exit 0. SIGHUP re-reads the reloadable options. The optional Prometheus
 * exporter (metrics.c) answers on libmicrohttpd's own thread from a text the
 * loop renders and swaps in; that thread never reads struct cloudd, and it
 * is joined before the sockets close.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <nanomsg/nn.h>
#include <nanomsg/pubsub.h>
#include <nanomsg/reqrep.h>
#include <cblas.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cloudd/cloudd.h"
#include "cloudd/dlslots.h"
#include "cloudd/train_model.h"
#include "cloudd/guard.h"
#include "cloudd/distill.h"
#include "cloudd/fedsel.h"
#include "cloudd/ckpt.h"
#include "cloudd/metrics.h"
#include "cloudd/seal.h"
#include "cloudd/manifest.h"
#include "cloudd/ofa_train.h"
#include "cloudd/rpc.h"
#include "shared/clock.h"
#include "shared/fsutil.h"
#include "shared/log.h"
#include "shared/numlist.h"
#include "shared/notify.h"
#include "shared/ml/ofa.h"
#include "shared/xmalloc.h"
#include "shared/wire.h"

#define CD_OFF(f) offsetof(struct cloudd_conf, f)

static const char *const log_levels[] = { "error", "warn", "info", "debug",
	NULL };
static const char *const retr_kinds[] = { "auto", "exact", "ivf", NULL };
static const char *const auth_modes[] = { "off", "mac", "encrypt", NULL };
/* enum ctr_inter order */
static const char *const inter_modes[] = { "off", "mlp", "fm", NULL };
static const char *const norm_actions[] = { "reject", "clip", NULL };
static const char *const stale_rules[] = { "drop", "decay", "poly", NULL };

static const struct conf_opt cloudd_opts[] = {
	CONF_STR("cloudd.listen", CD_OFF(listen), "tcp://127.0.0.1:7400", 0,
	    "public REP endpoints for devices, comma-separated"),
	CONF_STR("cloudd.admin-listen", CD_OFF(admin_listen),
	    "ipc:///tmp/dccl-cloudd-admin.ipc", 0,
	    "admin REP endpoint for dcctl (keep it local)"),
	CONF_STR("cloudd.pub-listen", CD_OFF(pub_listen),
	    "tcp://127.0.0.1:7401", 0, "PUB endpoint for model announcements"),
	CONF_STR("cloudd.data-dir", CD_OFF(data_dir), ".", 0,
	    "directory for the database and state"),
	CONF_STR("cloudd.db-path", CD_OFF(db_path), "cloudd.db", 0,
	    "database file; relative to data-dir"),
	CONF_STR("cloudd.store", CD_OFF(store), "sqlite", 0,
	    "store backend: sqlite (one cloudd) or postgresql (several "
	    "replicas share it)"),
	CONF_STR("cloudd.pg-conninfo", CD_OFF(pg_conninfo), "dbname=dccl", 0,
	    "store=postgresql: libpq connection string (host=, port=, "
	    "dbname=, user=; PG* environment variables apply)"),
	CONF_ENUM("cloudd.log-level", CD_OFF(log_level), "info", log_levels, 1,
	    "error, warn, info or debug"),
	CONF_INT("cloudd.workers", CD_OFF(workers), "2", 1, 64, 0,
	    "threadpool size (UV_THREADPOOL_SIZE)"),
	CONF_INT("cloudd.cron-ms", CD_OFF(cron_ms), "1000", 10, 60000, 1,
	    "housekeeping period"),
	CONF_INT("cloudd.checkpoint-ms", CD_OFF(checkpoint_ms), "1000", 0,
	    3600000, 0, "SQLite WAL checkpoint period, on a thread of its own "
	    "(0 = inside commits, on the loop, as SQLite does by default)"),
	CONF_INT("limits.max-message", CD_OFF(max_message), "4194304", 4096,
	    1073741824, 0, "largest message accepted (NN_RCVMAXSIZE), bytes"),
	CONF_INT("limits.socket-buffer", CD_OFF(sockbuf), "4194304", 65536,
	    268435456, 0, "socket send and receive buffers, bytes (NN_SNDBUF, "
	    "NN_RCVBUF; the kernel caps them at wmem_max/rmem_max); "
	    "nanomsg's 128 KiB caps a round trip at 256 KiB"),
	CONF_INT("limits.chunk-size", CD_OFF(chunk_size), "1048576", 1024,
	    16777216, 1, "model download chunk, bytes (< max-message)"),
	CONF_INT("limits.max-download-bytes", CD_OFF(max_download_bytes),
	    "134217728", 1024, 68719476736LL, 1, "model downloads at once: "
	    "this over chunk-size (at least one); each device holds one from "
	    "its first chunk request to its last; beyond it E_BUSY"),
	CONF_INT("limits.max-inflight", CD_OFF(max_inflight), "64", 1, 100000,
	    1, "heavy requests queued or running; beyond it E_BUSY"),
	CONF_INT("limits.max-latency-ms", CD_OFF(max_latency_ms), "2000", 0,
	    3600000, 1, "heavy requests: while their mean time from arrival "
	    "to reply is above this, new ones get E_BUSY (0 = no bound)"),
	CONF_DBL("limits.download-rate", CD_OFF(download_rate), "1024", 0,
	    1e6, 1, "model and OFA chunk bytes sent per second, all devices "
	    "together, MiB/s (0 = no bound); beyond it a chunk request gets "
	    "E_BUSY with a retry-after"),
	CONF_INT("limits.max-k", CD_OFF(max_k), "10000", 1, 1000000, 1,
	    "retrieval: largest k"),
	CONF_INT("limits.max-queries", CD_OFF(max_queries), "4096", 1, 1000000,
	    1, "retrieval: most query vectors per request"),
	CONF_INT("limits.max-tensor", CD_OFF(max_tensor), "1048576", 1,
	    268435456, 1, "upload: most floats in one tensor"),
	CONF_DBL("limits.rate", CD_OFF(rate), "200", 0, 1e9, 1,
	    "requests per second per device (token bucket; 0 = no limit); "
	    "beyond it E_RATE_LIMITED"),
	CONF_INT("limits.burst", CD_OFF(burst), "400", 1, 1000000000, 1,
	    "requests a device may send at once before limits.rate applies"),
	CONF_INT("limits.device-inflight", CD_OFF(dev_inflight), "4", 1,
	    100000, 1, "heavy requests (retrieval) of one device in the "
	    "threadpool; beyond it E_BUSY"),
	CONF_DBL("limits.patch-norm-factor", CD_OFF(patch_norm_factor), "10",
	    0, 1e9, 1, "a patch whose L2 norm is above this many times the "
	    "median norm of the last 1024 accepted patches (once 32 were "
	    "accepted) is treated as above max-patch-norm (0 = off)"),
	CONF_DBL("limits.enroll-rate", CD_OFF(enroll_rate), "100", 0.001, 1e9,
	    0, "first enrolments per second, all devices together (each "
	    "costs an X25519 operation and a commit); beyond it "
	    "E_RATE_LIMITED before any crypto or store work"),
	CONF_INT("limits.enroll-burst", CD_OFF(enroll_burst), "2000", 1,
	    1000000000, 0, "bucket depth of limits.enroll-rate"),
	CONF_INT("limits.max-devices", CD_OFF(max_devices), "1000000", 1,
	    1000000000, 0, "most enrolled device keys; a new one beyond it "
	    "gets E_BUSY"),
	CONF_INT("limits.patches-per-device", CD_OFF(patches_per_device), "8",
	    1, 1000000, 1, "a device's newest uploads kept in the store; a "
	    "new one deletes the older (MoMoDistill reads each user's "
	    "newest)"),
	CONF_DBL("limits.max-patch-norm", CD_OFF(max_patch_norm), "100", 0,
	    1e30, 1, "largest L2 norm of an uploaded patch (0 = no limit)"),
	CONF_ENUM("limits.patch-norm-action", CD_OFF(patch_clip), "reject",
	    norm_actions, 1, "a patch above max-patch-norm: reject "
	    "(E_BAD_TENSOR) or clip (scaled down, stored)"),
	CONF_ENUM("auth.mode", CD_OFF(auth_mode), "mac", auth_modes, 0,
	    "device authentication: off, mac (every request signed) or "
	    "encrypt (mac + payloads encrypted)"),
	CONF_STR("auth.token", CD_OFF(auth_token), "", 0,
	    "enrollment token devices register with (empty: $DCCL_AUTH_TOKEN, "
	    "else auth.token-file)"),
	CONF_STR("auth.token-file", CD_OFF(auth_token_file), "enroll.token",
	    0, "token file, relative to data-dir; created with a random "
	    "token (mode 0600) when missing"),
	CONF_STR("auth.db", CD_OFF(auth_db), "auth.db", 0,
	    "legacy key database (before store schema 4, keys are in the "
	    "store now): if present at start, its keys move into the store "
	    "and it is renamed <file>.imported; relative to data-dir"),
	CONF_BOOL("auth.rekey", CD_OFF(auth_rekey), "no", 0,
	    "let a token holder re-enroll a known device id with a new key"),
	CONF_INT("auth.user-devices", CD_OFF(user_devices), "0", 0, 1000000, 0,
	    "device ids that may bind themselves to one user with the token "
	    "(a first RegisterReq naming a user that has this many gets "
	    "E_FORBIDDEN; ids pre-enrolled with dcctl enroll are exempt); "
	    "0 = no limit"),
	CONF_INT("limits.busy-ms", CD_OFF(busy_ms), "2000", 0, 600000, 0,
	    "SQLite busy timeout; PostgreSQL lock_timeout"),
	CONF_BOOL("train.on-start", CD_OFF(train_on_start), "yes", 1,
	    "train a model at start when the pool has none"),
	CONF_INT("train.dim", CD_OFF(dim),
	    TRAIN_STR(TRAIN_DIM), 1, 256, 1,
	    "embedding dimension"),
	CONF_INT("train.hist-k", CD_OFF(hist_k),
	    TRAIN_STR(TRAIN_HIST_K), 0, SAMPLE_HIST_MAX, 1,
	    "behaviour: last K positive items"),
	CONF_INT("train.hidden1", CD_OFF(hidden1),
	    TRAIN_STR(TRAIN_HIDDEN1), 1, 4096, 1,
	    "first MLP layer"),
	CONF_INT("train.hidden2", CD_OFF(hidden2),
	    TRAIN_STR(TRAIN_HIDDEN2), 0, 4096, 1,
	    "second MLP layer (0 = none)"),
	CONF_INT("train.patch-rank", CD_OFF(patch_rank),
	    TRAIN_STR(TRAIN_PATCH_RANK), 0, 256, 1,
	    "MetaPatch rank per hidden layer (0 = no patches)"),
	CONF_ENUM("train.interaction", CD_OFF(interaction),
	    TRAIN_INTERACTION_NAME, inter_modes,
	    1, "pairwise dot products of the field embeddings: off, mlp (as "
	    "MLP inputs) or fm (also a weighted FM term in the logit; chosen "
	    "on validation by scripts/eval-base.sh)"),
	CONF_BOOL("train.attention", CD_OFF(attention),
	    TRAIN_ATTENTION ? "yes" : "no", 1,
	    "target attention over the behaviour (else its mean)"),
	CONF_BOOL("train.item-prior", CD_OFF(item_prior),
	    TRAIN_ITEM_PRIOR ? "yes" : "no", 1,
	    "add the items' shrunk click rates to the logit, weighted by "
	    "validation GAUC from train.item-prior-weights (model format 3; "
	    "weight 0: none)"),
	CONF_STR("train.item-prior-weights", CD_OFF(prior_weights),
	    TRAIN_PRIOR_WEIGHTS, 1,
	    "the item prior's weights tried, comma-separated, in [0, 100]"),
	CONF_INT("train.epochs", CD_OFF(epochs), "20", 1, 1000, 1,
	    "maximum epochs (early stopping on a validation slice)"),
	CONF_INT("train.batch", CD_OFF(batch), "256", 1, 65536, 1,
	    "minibatch size"),
	CONF_INT("train.patience", CD_OFF(patience), "2", 0, 100, 1,
	    "epochs without validation gain before stopping"),
	CONF_INT("train.seed", CD_OFF(seed), "1", 0, 2147483647, 1,
	    "training seed"),
	CONF_DBL("train.lr", CD_OFF(lr), "0.001", 1e-7, 10, 1,
	    "Adam learning rate"),
	CONF_DBL("train.l2", CD_OFF(l2), "0", 0, 1, 1, "weight decay"),
	CONF_STR("train.lr-grid", CD_OFF(lr_grid), TRAIN_LR_GRID, 1,
	    "learning rates tried, comma-separated: one model each, the one "
	    "with the best GAUC on the validation slice is kept (\"\" = "
	    "train.lr alone)"),
	CONF_BOOL("train.encoder", CD_OFF(encoder), "yes", 1,
	    "train the auxiliary encoder (users' samples -> their user row, "
	    "patch and bias) and the unknown-user rows after each model, and "
	    "ship it in the model (format 2)"),
	CONF_DBL("train.val-frac", CD_OFF(val_frac), "0.1", 0, 0.5, 1,
	    "share of each user's pool samples kept for validation"),
	CONF_ENUM("retrieve.index", CD_OFF(retr_kind), "auto", retr_kinds, 1,
	    "auto (ivf above ivf-min vectors), exact or ivf"),
	CONF_INT("retrieve.ivf-min", CD_OFF(retr_ivf_min), "200000", 1,
	    1000000000, 1, "auto: pool size from which IVF is used"),
	CONF_INT("retrieve.nlist", CD_OFF(retr_nlist), "0", 0, 1000000, 1,
	    "IVF lists (0 = 4 sqrt(n))"),
	CONF_INT("retrieve.nprobe", CD_OFF(retr_nprobe), "0", 0, 1000000, 1,
	    "IVF lists probed (0 = default)"),
	/*
	 * Off by default: a fixed port would collide when several cloudd run
	 * on one host (tests, staging), and an exporter should be opted into.
	 */
	CONF_STR("metrics.listen", CD_OFF(metrics_listen), "", 0,
	    "Prometheus HTTP endpoint host:port, e.g. 127.0.0.1:9400 (empty "
	    "= off; port 0 = any free port, logged)"),
	CONF_INT("metrics.interval-ms", CD_OFF(metrics_ms), "250", 10, 60000,
	    0, "how often the served exposition is re-rendered"),
	CONF_INT("models.keep", CD_OFF(models_keep), "10", 1, 1000000, 1,
	    "model versions kept by dcctl prune (the current one always)"),
	CONF_DBL("distill.lambda", CD_OFF(distill_lambda), "1", 0, 100, 1,
	    "MoMoDistill: weight of the distillation term"),
	CONF_INT("distill.min-patches", CD_OFF(distill_min_patches), "0", 0,
	    100000000, 1, "distill automatically once this many users have a "
	    "patch on the current version (0 = only on dcctl distill)"),
	CONF_INT("distill.window-s", CD_OFF(distill_window_s), "0", 0,
	    100000000, 1, "with min-patches > 0: also distill when the first "
	    "patch on the current version is this old (0 = never)"),
	CONF_INT("distill.buffer", CD_OFF(distill_buffer), "0", 0,
	    100000000, 1, "round-free: distill automatically once this "
	    "many users uploaded a patch since the last run, on any base "
	    "(weighed by distill.stale; 0 = off)"),
	CONF_ENUM("distill.stale", CD_OFF(distill_stale), "decay",
	    stale_rules, 1, "patches on an older version: drop, decay "
	    "(teacher = their own base + patch, weight lambda * decay^age) "
	    "or poly (weight lambda / (1 + age)^poly-a)"),
	CONF_DBL("distill.poly-a", CD_OFF(distill_poly_a), "0.5", 0, 1, 1,
	    "poly: the staleness exponent a"),
	CONF_DBL("distill.decay", CD_OFF(distill_decay), "0.5", 0, 1, 1,
	    "decay: weight factor per version of age"),
	CONF_INT("distill.max-age", CD_OFF(distill_max_age), "3", 0, 1000000,
	    1, "decay: patches more versions old than this are dropped"),
	CONF_INT("distill.epochs", CD_OFF(distill_epochs), "3", 1, 1000, 1,
	    "maximum distillation epochs (best on the validation slice)"),
	CONF_DBL("distill.lr", CD_OFF(distill_lr), "0.0005", 1e-7, 10, 1,
	    "distillation Adam learning rate (warm start from the model)"),
	CONF_DBL("distill.accept-z", CD_OFF(distill_accept_z), "2", 0, 100,
	    1, "a distillation publishes a version only if its validation "
	    "logloss gain is this many standard errors (clustered by user) "
	    "above 0; 0 = any gain"),
	CONF_BOOL("distill.freeze-users", CD_OFF(distill_freeze_users), "yes",
	    1, "keep the student's per-user rows (user embedding, MetaPatch "
	    "m) fixed, so device knowledge enters the shared parameters"),
	CONF_INT("fedsel.min-devices", CD_OFF(fedsel_min_devices), "10", 1,
	    100000000, 0, "federated selection: device reports a method's "
	    "choice needs before it leaves the default setting"),
	CONF_INT("fedsel.min-samples", CD_OFF(fedsel_min_n), "200", 1,
	    1e12, 0, "federated selection: held-out samples it needs"),
	CONF_DBL("fedsel.z", CD_OFF(fedsel_z), "1", 0, 10, 0,
	    "federated selection: a setting replaces the default only if its "
	    "paired mean gain over it exceeds z standard errors"),
	CONF_STR("fedsel.pair-weights", CD_OFF(fedsel_pw), "0,1,3,9", 0,
	    "federated selection: candidate weights of the pairwise loss, "
	    "the first the default; chosen by net held-out pairs"),
	CONF_BOOL("fedsel.groups", CD_OFF(fedsel_groups), "yes", 0,
	    "federated selection: choose for warm users (trained rows in the "
	    "model) and cold users apart when each has the evidence"),
	CONF_INT("fedsel.max-devices", CD_OFF(fedsel_max_devices), "100000",
	    1, 10000000, 0, "federated selection: distinct devices counted "
	    "per round (8 bytes each; beyond, E_BUSY)"),
	CONF_BOOL("ofa.enable", CD_OFF(ofa_enable), "yes", 1,
	    "Forward-OFA: after each training job, train the OFA model on "
	    "the pool with the new model's embeddings and serve it"),
	CONF_INT("ofa.epochs", CD_OFF(ofa_epochs), "20", 1, 1000, 1,
	    "Forward-OFA: maximum epochs (early stopping, train.patience)"),
	CONF_INT("ofa.blocks", CD_OFF(ofa_blocks), "4", 1, OFA_MAX_BLOCKS, 1,
	    "Forward-OFA: residual blocks L"),
	CONF_INT("ofa.hidden", CD_OFF(ofa_hidden), "64", 1, OFA_MAX_DIM, 1,
	    "Forward-OFA: residual stream width H"),
	CONF_INT("ofa.inner", CD_OFF(ofa_inner), "64", 1, OFA_MAX_DIM, 1,
	    "Forward-OFA: block inner width F"),
	CONF_INT("ofa.rank", CD_OFF(ofa_rank), "8", 1, OFA_MAX_RANK, 1,
	    "Forward-OFA: rank R of each block's behaviour mapper"),
	CONF_DBL("ofa.mu", CD_OFF(ofa_mu), "0.01", 0, 100, 1,
	    "Forward-OFA: weight of the block cost penalty"),
	CONF_DBL("ofa.lr", CD_OFF(ofa_lr), "0.001", 1e-7, 10, 1,
	    "Forward-OFA: Adam learning rate"),
	CONF_DBL("ofa.res-val", CD_OFF(ofa_res_val), "0.5", 0, 0.9, 1,
	    "Forward-OFA: learn from the pool's validation slice, which the "
	    "CTR model did not fit, stopping on each user's newest share of "
	    "it; 0 = learn from the CTR model's training samples"),
	{ NULL }
};

static void
usage(FILE *f)
{
	fprintf(f,
"usage: cloudd [-f FILE] [-o section.key=value]... [options]\n"
"  -f, --config FILE     read FILE (INI; see conf/cloudd.conf)\n"
"  -o, --option K=V      override one option (repeatable)\n"
"  -n, --check           check the configuration and exit\n"
"  -p, --print-config    print effective options and their sources\n"
"  -E, --example-config  print a commented config with every default\n"
"  -i, --import FILE     import a samples CSV into the pool and exit\n"
"  -s, --schema FILE     with --import: the feature schema of FILE, which\n"
"                        may then be any header CSV whose columns it names\n"
"  -d, --debug           log-level debug\n"
"  -h, --help            this help\n"
"  -V, --version         print the version\n");
}

static void
closed_cb(struct nnuv *s)
{
	struct cloudd *cd = s->data;

	cd->n_open--;
}

/* The idle hook (job.c): once stopping and no job is left, close. */
static void
maybe_exit(void *arg)
{
	struct cloudd *cd = arg;

	if (!cd->stopping || cd->job.n > 0 || cd->n_open < 0)
		return;
	cd->n_open = -1;	/* once */
	log_info("STOPPING: closing sockets");
	metrics_stop(cd);
	seal_stop(cd);
	guard_lookup_stop(cd);
	nnuv_close(&cd->rep, closed_cb);
	nnuv_close(&cd->adm, closed_cb);
	nnuv_close(&cd->pub, closed_cb);
	uv_close((uv_handle_t *)&cd->sigterm, NULL);
	uv_close((uv_handle_t *)&cd->sigint, NULL);
	uv_close((uv_handle_t *)&cd->sighup, NULL);
	uv_close((uv_handle_t *)&cd->cron, NULL);
	upload_fini(cd);
}

static void
reload(struct cloudd *cd)
{
	struct cloudd_conf nc;
	struct conf c;
	int bad = 0;

	if (cd->conf_path == NULL) {
		log_info("RELOAD: no config file; nothing to do");
		return;
	}
	memset(&nc, 0, sizeof(nc));
	if (conf_init(&c, cloudd_opts, &nc, stderr) != 0 ||
	    conf_load(&c, cd->conf_path) != 0) {
		log_warnx("RELOAD: %s has errors; keeping the running config",
		    cd->conf_path);
		conf_fini(&c);
		return;
	}
	for (const struct conf_opt *o = cloudd_opts; o->name; o++) {
		char a[512], b[512];
		conf_format(o, &cd->cf, a, sizeof(a));
		conf_format(o, &nc, b, sizeof(b));
		if (strcmp(a, b) == 0 || cd->conf.src[o - cloudd_opts] ==
		    CONF_SRC_FLAG)
			continue;
		if (!o->reload) {
			log_warnx("RELOAD: %s changed (%s -> %s) but needs a "
			    "restart", o->name, a, b);
			bad++;
			continue;
		}
		conf_set(&cd->conf, o->name, b, CONF_SRC_FILE, "reload");
		log_info("RELOAD: %s = %s", o->name, b);
	}
	conf_fini(&c);
	log_setlevel(cd->cf.log_level);
	log_info("RELOAD: done%s", bad ? " (some changes need a restart)" :
	    "");
}

static void
signal_cb(uv_signal_t *h, int sig)
{
	struct cloudd *cd = h->data;

	if (sig == SIGHUP) {
		reload(cd);
		return;
	}
	if (cd->stopping)
		return;
	log_info("SHUTDOWN: signal %d; finishing %u jobs", sig, cd->job.n);
	cd->stopping = 1;
	notify_stopping();
	atomic_store(&cd->stop, 1);
	nnuv_pause(&cd->rep);
	nnuv_pause(&cd->adm);
	job_idle(&cd->job);
}

static void
cron_cb(uv_timer_t *t)
{
	struct cloudd *cd = t->data;

	log_debug("cron: %llu requests, %u in flight",
	    (unsigned long long)cd->requests, cd->inflight);
	if (guard_flush(cd->guard) != 0)
		log_warnx("AUTH-DB: cannot save device counters: %s",
		    guard_errmsg(cd->guard));
	/*
	 * Self-healing: the pool's vectors must be of the served model, or
	 * every retrieval gets E_STALE. Jobs that swap pool and model keep
	 * them in step, but a pool reload racing a rollback can leave them
	 * apart; reload once nothing else is changing either.
	 */
	if (cd->pool != NULL && cd->pool->ds.n > 0 && cd->model.version != 0 &&
	    cd->pool->version != cd->model.version && !cd->stopping &&
	    !cd->training && !cd->pool_loading && !cd->rolling_back &&
	    clock_now() - cd->pool_heal_t >= 10) {	/* a failing load: retry slowly */
		cd->pool_heal_t = clock_now();
		log_info("CRON: pool vectors are of v%llu, model is v%llu; "
		    "reloading the pool", (unsigned long long)cd->pool->version,
		    (unsigned long long)cd->model.version);
		if (pool_start_load(cd) != 0)
			log_warnx("CRON: cannot start a pool load");
	}
	replica_cron(cd);
	if (cd->leader)		/* once per cluster: the leader distills */
		distill_cron(cd);
}

/* Binds a socket to each comma-separated endpoint. */
static int
bind_all(int sock, const char *list, const char *what)
{
	char *dup = xstrdup(list), *save = NULL, *ep;
	int n = 0;

	for (ep = strtok_r(dup, ",", &save); ep; ep = strtok_r(NULL, ",",
	    &save)) {
		while (*ep == ' ')
			ep++;
		if (nn_bind(sock, ep) < 0) {
			log_warnx("BIND: %s %s: %s", what, ep,
			    nn_strerror(nn_errno()));
			free(dup);
			return -1;
		}
		n++;
	}
	free(dup);
	return n > 0 ? 0 : -1;
}

static int
open_rep(struct cloudd *cd, struct nnuv *s, const char *eps, const char *what)
{
	int sock = nn_socket(AF_SP_RAW, NN_REP);
	int max = (int)cd->cf.max_message;

	if (sock < 0)
		return -1;
	if (nn_setsockopt(sock, NN_SOL_SOCKET, NN_RCVMAXSIZE, &max,
	    sizeof(max)) < 0 || nnuv_sockbuf(sock, (int)cd->cf.sockbuf) != 0 ||
	    bind_all(sock, eps, what) != 0 ||
	    nnuv_init(s, &cd->loop, sock, 1, rpc_recv_cb, cd) != 0) {
		nn_close(sock);
		return -1;
	}
	cd->n_open++;
	return 0;
}

/* The pool hook: a daemon with a pool and no model trains its first. */
static void
pool_loaded(struct cloudd *cd)
{
	/* Replicas: only the leader trains (replica.c). */
	if (cd->model.version == 0 && cd->pool->ds.n > 0 &&
	    cd->cf.train_on_start && !cd->stopping && cd->leader)
		train_start(cd, 0);
}

/*
 * Every request cloudd serves: body, the sockets it is served on, handler.
 * GetStatus is served on both sockets; the admin socket authenticates
 * nobody, so it serves no device request; device requests but Register
 * need a registered device.
 */
static const struct rpc_route routes[] = {
	{ DCCL__ENVELOPE__BODY_GET_STATUS, RPC_DEVICE | RPC_ADMIN, status_rpc },
	{ DCCL__ENVELOPE__BODY_REGISTER_REQ, RPC_DEVICE, register_rpc },
	{ DCCL__ENVELOPE__BODY_GET_MODEL, RPC_DEVICE | RPC_REGISTERED,
	    download_rpc },
	{ DCCL__ENVELOPE__BODY_GET_MANIFEST, RPC_DEVICE | RPC_REGISTERED,
	    manifest_rpc },
	{ DCCL__ENVELOPE__BODY_GET_OFA, RPC_DEVICE | RPC_REGISTERED,
	    ofa_download_rpc },
	{ DCCL__ENVELOPE__BODY_RETRIEVE, RPC_DEVICE | RPC_REGISTERED,
	    retrieve_rpc },
	{ DCCL__ENVELOPE__BODY_UPLOAD, RPC_DEVICE | RPC_REGISTERED,
	    upload_rpc },
	{ DCCL__ENVELOPE__BODY_SELECT_REPORT, RPC_DEVICE | RPC_REGISTERED,
	    fedsel_report_rpc },
	{ DCCL__ENVELOPE__BODY_GET_SELECTION, RPC_DEVICE | RPC_REGISTERED,
	    fedsel_get_rpc },
	{ DCCL__ENVELOPE__BODY_ADMIN_LIST, RPC_ADMIN, list_rpc },
	{ DCCL__ENVELOPE__BODY_ADMIN_TRAIN, RPC_ADMIN, train_rpc },
	{ DCCL__ENVELOPE__BODY_ADMIN_IMPORT, RPC_ADMIN, import_rpc },
	{ DCCL__ENVELOPE__BODY_ADMIN_METRICS, RPC_ADMIN, metrics_rpc },
	{ DCCL__ENVELOPE__BODY_ADMIN_MODEL_SHOW, RPC_ADMIN,
	    lifecycle_show_rpc },
	{ DCCL__ENVELOPE__BODY_ADMIN_ROLLBACK, RPC_ADMIN,
	    lifecycle_rollback_rpc },
	{ DCCL__ENVELOPE__BODY_ADMIN_PRUNE, RPC_ADMIN, lifecycle_prune_rpc },
	{ DCCL__ENVELOPE__BODY_ADMIN_DISTILL, RPC_ADMIN, distill_rpc },
	{ DCCL__ENVELOPE__BODY_ADMIN_ENROLL, RPC_ADMIN, enroll_rpc },
	{ 0, 0, NULL }
};

/*
 * The SQLite store holds the cloud's secret key and the device keys, so
 * whoever reads it can act as the cloud. It is created 0600 whatever the
 * umask (SQLite gives its -wal and -shm files the database's mode), and a
 * store that other users can read or write is refused. 0, or -1 with err.
 */
static int
keystore_perms(const char *path, char *err, size_t errlen)
{
	static const char *sfx[] = { "", "-wal", "-shm" };
	char p[1200];
	struct stat sb;
	int fd;

	if ((fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC,
	    0600)) >= 0)
		close(fd);	/* an empty file is an empty database */
	for (size_t i = 0; i < sizeof(sfx) / sizeof(sfx[0]); i++) {
		snprintf(p, sizeof(p), "%s%s", path, sfx[i]);
		if (stat(p, &sb) != 0)
			continue;	/* DB-OPEN reports a missing store */
		if (sb.st_mode & (S_IROTH | S_IWOTH)) {
			snprintf(err, errlen, "%.300s is accessible to other "
			    "users (mode %03o) and holds the cloud's secret "
			    "key: chmod 600 it and its -wal and -shm files",
			    p, (unsigned)(sb.st_mode & 0777));
			return -1;
		}
	}
	return 0;
}

int
main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "config", required_argument, NULL, 'f' },
		{ "option", required_argument, NULL, 'o' },
		{ "check", no_argument, NULL, 'n' },
		{ "print-config", no_argument, NULL, 'p' },
		{ "example-config", no_argument, NULL, 'E' },
		{ "import", required_argument, NULL, 'i' },
		{ "schema", required_argument, NULL, 's' },
		{ "debug", no_argument, NULL, 'd' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ NULL, 0, NULL, 0 }
	};
	struct cloudd *cd = xcalloc(1, sizeof(*cd));
	const char *import = NULL, *schema = NULL;
	char *dbpath = cd->dbpath, err[512], threads[16];
	int ch, check = 0, print = 0, debug = 0, bad = 0, rc;
	char **overrides = xcalloc(argc + 1, sizeof(char *));
	int n_over = 0;

	if (conf_init(&cd->conf, cloudd_opts, &cd->cf, stderr) != 0)
		fatalx("built-in defaults are invalid");
	while ((ch = getopt_long(argc, argv, "f:o:npEi:s:dhV", longopts, NULL))
	    != -1) {
		switch (ch) {
		case 'f': cd->conf_path = optarg; break;
		case 'o': overrides[n_over++] = optarg; break;
		case 'n': check = 1; break;
		case 'p': print = 1; break;
		case 'E': conf_write_example(cloudd_opts, "cloudd.conf: the dccl cloud daemon", stdout);
			rc = 0; goto early;
		case 'i': import = optarg; break;
		case 's': schema = optarg; break;
		case 'd': debug = 1; break;
		case 'h': usage(stdout); rc = 0; goto early;
		case 'V': printf("cloudd %s (protocol %d)\n", CLOUDD_VERSION,
		    WIRE_VERSION); rc = 0; goto early;
		default: usage(stderr); rc = 2; goto early;
		}
	}
	if (optind != argc || (schema != NULL && import == NULL)) {
		usage(stderr);
		rc = 2;
		goto early;
	}
	if (cd->conf_path != NULL && conf_load(&cd->conf, cd->conf_path) != 0)
		bad = 1;
	for (int i = 0; i < n_over; i++)
		if (conf_set_arg(&cd->conf, overrides[i], CONF_SRC_FLAG) != 0)
			bad = 1;
	if (cd->cf.chunk_size + 4096 > cd->cf.max_message) {
		fprintf(stderr, "limits.chunk-size (%lld) must be at least 4096 "
		    "below limits.max-message (%lld)\n",
		    (long long)cd->cf.chunk_size,
		    (long long)cd->cf.max_message);
		bad = 1;
	}
	{
		struct fedsel_opts fo;

		if (fedsel_pw_parse(cd->cf.fedsel_pw, &fo, err,
		    sizeof(err)) != 0) {
			fprintf(stderr, "fedsel.pair-weights: %s\n", err);
			bad = 1;
		}
	}
	{
		double pw[TRAIN_PRIOR_WMAX];
		int npw;

		if (numlist_parse(cd->cf.prior_weights, pw, TRAIN_PRIOR_WMAX,
		    0, 100, &npw, err, sizeof(err)) != 0) {
			fprintf(stderr, "train.item-prior-weights: %s\n", err);
			bad = 1;
		}
	}
	{
		double lrs[TRAIN_LR_MAX];
		int nlr;

		if (train_lr_grid_parse(cd->cf.lr_grid, lrs, &nlr, err,
		    sizeof(err)) != 0) {
			fprintf(stderr, "train.lr-grid: %s\n", err);
			bad = 1;
		}
	}
	if (bad) {
		fprintf(stderr, "cloudd: configuration has errors\n");
		rc = 1;
		goto early;
	}
	if (debug)
		conf_set(&cd->conf, "cloudd.log-level", "debug", CONF_SRC_FLAG,
		    "-d");
	if (print)
		conf_print(&cd->conf, stdout);
	if (check)
		printf("configuration OK\n");
	if (check || print) {
		rc = 0;
		goto early;
	}
	free(overrides);

	log_init("cloudd", cd->cf.log_level);
	openblas_set_num_threads(1);
	snprintf(threads, sizeof(threads), "%lld", (long long)cd->cf.workers);
	setenv("UV_THREADPOOL_SIZE", threads, 1);

	if (fs_mkdirs(cd->cf.data_dir, 0750) != 0)
		fatal("DATA-DIR: %s", cd->cf.data_dir);
	if (strcmp(cd->cf.store, "postgresql") == 0)
		snprintf(dbpath, sizeof(cd->dbpath), "%s", cd->cf.pg_conninfo);
	else if (cd->cf.db_path[0] == '/')
		snprintf(dbpath, sizeof(cd->dbpath), "%s", cd->cf.db_path);
	else
		snprintf(dbpath, sizeof(cd->dbpath), "%s/%s", cd->cf.data_dir,
		    cd->cf.db_path);
	if (strcmp(cd->cf.store, "postgresql") != 0 &&
	    keystore_perms(dbpath, err, sizeof(err)) != 0)
		fatalx("DB-PERMS: %s", err);
	if ((rc = store_open(&cd->st, cd->cf.store, dbpath, (int)cd->cf.busy_ms,
	    err, sizeof(err))) != 0)
		fatalx("DB-OPEN: %s", err);

	if (import != NULL) {
		uint64_t rows = 0;
		double t0 = clock_now(), dt;
		if (import_file_schema(cd->st, import, schema, &rows, err,
		    sizeof(err)) != 0)
			fatalx("IMPORT: %s", err);
		dt = clock_now() - t0;
		log_info("IMPORT: %llu rows from %s in %.3f s (%.0f rows/s)",
		    (unsigned long long)rows, import, dt, rows / (dt > 0 ? dt :
		    1e-9));
		store_close(cd->st);
		conf_fini(&cd->conf);
		free(cd);
		return 0;
	}

	if (guard_start(cd, err, sizeof(err)) != 0)
		fatalx("AUTH: %s", err);
	if (replica_start(cd, err, sizeof(err)) != 0)
		fatalx("DB-OPEN: leader connection: %s", err);
	if ((rc = uv_loop_init(&cd->loop)) != 0)
		fatalx("uv_loop_init: %s", uv_strerror(rc));
	cd->started = clock_now();
	cd->job.idle = maybe_exit;
	cd->job.arg = cd;
	rpc_set_routes(cd, routes);
	fedsel_open(cd);
	cd->pool_loaded = pool_loaded;
	devtab_init(&cd->devs);
	{
		struct store_device *d;
		size_t n;
		if (store_device_list(cd->st, &d, &n) == 0)
			for (size_t i = 0; i < n; i++)
				devtab_put(&cd->devs, d[i].id, d[i].user_id);
		free(d);
	}
	if (open_rep(cd, &cd->rep, cd->cf.listen, "listen") != 0)
		fatalx("BIND: cannot listen on %s", cd->cf.listen);
	if (open_rep(cd, &cd->adm, cd->cf.admin_listen, "admin") != 0)
		fatalx("BIND: cannot listen on %s", cd->cf.admin_listen);
	cd->adm.data = cd;
	{
		int sock = nn_socket(AF_SP, NN_PUB);
		if (sock < 0 || bind_all(sock, cd->cf.pub_listen, "pub") != 0 ||
		    nnuv_init(&cd->pub, &cd->loop, sock, 0, NULL, cd) != 0)
			fatalx("BIND: cannot publish on %s", cd->cf.pub_listen);
		cd->n_open++;
	}
	uv_signal_init(&cd->loop, &cd->sigterm);
	uv_signal_init(&cd->loop, &cd->sigint);
	uv_signal_init(&cd->loop, &cd->sighup);
	cd->sigterm.data = cd->sigint.data = cd->sighup.data = cd;
	uv_signal_start(&cd->sigterm, signal_cb, SIGTERM);
	uv_signal_start(&cd->sigint, signal_cb, SIGINT);
	uv_signal_start(&cd->sighup, signal_cb, SIGHUP);
	signal(SIGPIPE, SIG_IGN);
	uv_timer_init(&cd->loop, &cd->cron);
	cd->cron.data = cd;
	uv_timer_start(&cd->cron, cron_cb, cd->cf.cron_ms, cd->cf.cron_ms);
	if ((rc = upload_init(cd)) != 0)
		fatalx("uv_check_init: %s", uv_strerror(rc));

	if ((rc = model_load_latest(cd)) != 0)
		fatalx("MODEL: cannot load the latest model: %s",
		    store_errmsg(cd->st));
	/*
	 * Counted once here, then kept current by the upload handler (and,
	 * on a shared store, by replica_cron).
	 */
	if (store_patch_count(cd->st, &cd->patches) != 0)
		fatalx("DB: cannot count patches: %s", store_errmsg(cd->st));
	(void)ckpt_start(cd);	/* it says why when it cannot */
	guard_lookup_start(cd, rpc_resume);
	if (seal_start(cd) != 0)
		fatalx("SEAL: cannot start the sealing thread");
	if (metrics_start(cd) != 0)
		fatalx("METRICS: cannot serve on '%s'", cd->cf.metrics_listen);
	if (pool_start_load(cd) != 0)
		fatalx("POOL: cannot start loading the pool");

	log_info("READY: cloudd %s listening on %s (admin %s, pub %s), "
	    "model v%llu", CLOUDD_VERSION, cd->cf.listen, cd->cf.admin_listen,
	    cd->cf.pub_listen, (unsigned long long)cd->model.version);
	notify_ready(NULL);
	notify_status("model v%llu", (unsigned long long)cd->model.version);
	uv_run(&cd->loop, UV_RUN_DEFAULT);

	if ((rc = uv_loop_close(&cd->loop)) != 0)
		log_warnx("uv_loop_close: %s", uv_strerror(rc));
	pool_unref(cd, cd->pool);
	model_cache_fini(&cd->model);
	log_info("DLPACE: %llu chunks sent, %llu refused at "
	    "limits.download-rate %g MiB/s",
	    (unsigned long long)cd->dlpace.granted,
	    (unsigned long long)cd->dlpace.refused, cd->cf.download_rate);
	download_cache_free(cd);
	dlslots_free(cd);
	retrieve_rpc_free(cd);
	ofa_cloud_free(cd);
	fedsel_close(cd);
	devtab_fini(&cd->devs);
	guard_close(cd->guard);
	replica_stop(cd);
	ckpt_stop(cd);
	store_close(cd->st);
	log_info("EXIT: clean shutdown");
	conf_fini(&cd->conf);
	free(cd);
	return 0;
early:
	free(overrides);
	conf_fini(&cd->conf);
	free(cd);
	return rc;
}
