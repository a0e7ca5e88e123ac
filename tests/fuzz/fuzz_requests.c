/*
 * fuzz_requests: libFuzzer harness for cloudd's real request path. The
 * harness compiles cloudd.c itself (its main renamed), so it serves with
 * the daemon's own option defaults and route table. At the first input it
 * builds a cloudd the way main does, minus the sockets: a SQLite store in
 * a temporary directory, a small synthetic pool imported and trained (a
 * model and its retrieval index), devices "d0".."d3" and "dev-1"
 * registered (srv_*.bin seeds, written by DCCL_FUZZ_SEEDS, are valid
 * requests for this model). Each
 * input is then handed to rpc_recv_cb as a message read from the device
 * socket (decode, guard, route, registration, handler), and, if it is a
 * read-only admin body, from the admin socket too; the loop runs until
 * every reply is out (retrievals on the threadpool, uploads after their
 * group commit). A handler that reads past a chunk, a tensor or the pool
 * is an ASan report; a request left without exactly one reply aborts.
 * Replies are counted, not sent: there is no socket (n_open = -1 is the
 * daemon's own "sockets closed" state, which drops the packed reply).
 * auth.mode is off so that fuzzed bodies reach the handlers (with a MAC
 * they would all stop at the guard, whose parsing fuzz_envelope covers).
 * Admin bodies that start jobs or change the served model (train,
 * import, distill, rollback, prune, enroll) are not sent: a fuzzed import
 * path would read the host's files, and each job would cost seconds.
 */
#define main cloudd_main
#include "cloudd/cloudd.c"
#undef main

#include <nanomsg/nn.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "shared/wire.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
fuzz_set(struct cloudd *cd, const char *name, const char *value)
{
	if (conf_set(&cd->conf, name, value, CONF_SRC_FLAG, "fuzz") != 0)
		abort();
}

/* A pool with a learnable signal: item parity and user taste. */
static void
fuzz_pool(const char *path)
{
	FILE *f = fopen(path, "w");
	uint32_t s = 12345;

	if (f == NULL)
		abort();
	fprintf(f, "# dccl-samples v1 n_users=12 n_items=60 n_genres=16\n"
	    "user,item,ts,rating,label,genres,hist\n");
	for (int u = 0; u < 12; u++)
		for (int k = 0; k < 40; k++) {
			int item, label;
			s = s * 1103515245u + 12345u;
			item = (int)((s >> 8) % 60);
			label = ((item + u) % 3 == 0) ^ ((s >> 4) % 10 == 0);
			fprintf(f, "%d,%d,%d,0,%d,%d,\n", u, item,
			    1500000000 + u * 1000 + k, label, 1 << (item % 16));
		}
	if (fclose(f) != 0)
		abort();
}

/*
 * Runs the loop until n requests were answered and no job is left; a
 * request still unanswered after 60 s (a lost reply) aborts.
 */
static void
fuzz_drain(struct cloudd *cd, uint64_t n)
{
	double limit = clock_now() + 60;

	while (cd->requests < n || cd->job.n > 0) {
		if (clock_now() > limit) {
			fprintf(stderr, "fuzz_requests: %llu of %llu requests "
			    "answered, %u jobs left after 60 s\n",
			    (unsigned long long)cd->requests,
			    (unsigned long long)n, cd->job.n);
			abort();
		}
		(void)uv_run(&cd->loop, UV_RUN_NOWAIT);
		if (cd->requests < n || cd->job.n > 0)
			usleep(50);	/* a worker or the commit is running */
	}
	if (cd->requests != n) {
		fprintf(stderr, "fuzz_requests: %llu replies to %llu "
		    "requests\n", (unsigned long long)cd->requests,
		    (unsigned long long)n);
		abort();
	}
}

static char fuzz_dir[64];

/* The temporary store goes at exit (a crash keeps it, with the input). */
static void
fuzz_rmdir(void)
{
	char cmd[128];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", fuzz_dir);
	if (fuzz_dir[0] != '\0' && system(cmd) != 0)
		fprintf(stderr, "fuzz_requests: cannot remove %s\n", fuzz_dir);
}

static struct cloudd *
fuzz_cloudd(void)
{
	struct cloudd *cd = xcalloc(1, sizeof(*cd));
	char dir[] = "/tmp/dccl-fuzzreq.XXXXXX", path[1200], err[512];
	uint64_t rows;

	if (mkdtemp(dir) == NULL || conf_init(&cd->conf, cloudd_opts, &cd->cf,
	    stderr) != 0)
		abort();
	snprintf(fuzz_dir, sizeof(fuzz_dir), "%s", dir);
	atexit(fuzz_rmdir);
	fuzz_set(cd, "cloudd.data-dir", dir);
	/* DCCL_FUZZ_LOG=debug shows each request's fate. */
	fuzz_set(cd, "cloudd.log-level", getenv("DCCL_FUZZ_LOG") != NULL ?
	    getenv("DCCL_FUZZ_LOG") : "error");
	fuzz_set(cd, "cloudd.checkpoint-ms", "0");
	fuzz_set(cd, "auth.mode", "off");
	fuzz_set(cd, "limits.rate", "0");
	fuzz_set(cd, "limits.chunk-size", "4096");
	fuzz_set(cd, "train.dim", "8");
	fuzz_set(cd, "train.hidden1", "16");
	fuzz_set(cd, "train.hidden2", "8");
	fuzz_set(cd, "train.patch-rank", "4");
	fuzz_set(cd, "train.epochs", "2");
	/* the encoder's fit is no request path, and slow under ASan */
	fuzz_set(cd, "train.encoder", "no");
	fuzz_set(cd, "ofa.enable", "yes");
	fuzz_set(cd, "ofa.epochs", "1");
	fuzz_set(cd, "metrics.listen", "");
	log_init("fuzz_requests", cd->cf.log_level);
	openblas_set_num_threads(1);
	snprintf(cd->dbpath, sizeof(cd->dbpath), "%s/cloudd.db", dir);
	snprintf(path, sizeof(path), "%s/pool.csv", dir);
	fuzz_pool(path);
	if (store_open(&cd->st, "sqlite", cd->dbpath, 2000, err,
	    sizeof(err)) != 0 || import_file(cd->st, path, &rows, err,
	    sizeof(err)) != 0 || guard_start(cd, err, sizeof(err)) != 0 ||
	    replica_start(cd, err, sizeof(err)) != 0 ||
	    uv_loop_init(&cd->loop) != 0) {
		fprintf(stderr, "fuzz_requests: setup: %s\n", err);
		abort();
	}
	cd->started = clock_now();
	rpc_set_routes(cd, routes);
	fedsel_open(cd);
	cd->pool_loaded = pool_loaded;
	devtab_init(&cd->devs);
	cd->rep.sock = cd->adm.sock = -1;
	cd->rep.data = cd->adm.data = cd;
	cd->n_open = -1;	/* no socket: replies are packed, then dropped */
	if (upload_init(cd) != 0 || model_load_latest(cd) != 0 ||
	    store_patch_count(cd->st, &cd->patches) != 0 ||
	    pool_start_load(cd) != 0)
		abort();
	/* The pool load trains the first model, which reloads the pool. */
	/* A deadline, not a count: a busy loop spins through any count. */
	for (double t0 = clock_now(); clock_now() - t0 < 600 &&
	    (cd->model.version == 0 || cd->pool_loading || cd->training ||
	    cd->job.n > 0 || cd->pool == NULL ||
	    cd->pool->version != cd->model.version);) {
		(void)uv_run(&cd->loop, UV_RUN_NOWAIT);
		usleep(200);
	}
	if (cd->model.version == 0 || cd->pool->version != cd->model.version) {
		fprintf(stderr, "fuzz_requests: no model after training\n");
		abort();
	}
	for (int i = 0; i < 5; i++) {
		char id[8];
		/* dev-1: the device of the envelope seeds */
		snprintf(id, sizeof(id), i == 4 ? "dev-1" : "d%d", i);
		struct store_device d = { .user_id = (uint32_t)i };
		snprintf(d.id, sizeof(d.id), "%s", id);
		if (store_device_put(cd->st, &d) != 0)
			abort();
		devtab_put(&cd->devs, id, (uint32_t)i);
	}
	return cd;
}

/*
 * DCCL_FUZZ_SEEDS=dir: writes one valid request per handler for this
 * harness's model (shapes, version, dim) into dir, the seed corpus
 * tests/fuzz/corpus/requests/srv_*.bin, and returns.
 */
static void
fuzz_seed(const char *dir, const char *name, Dccl__Envelope *e)
{
	char path[1200];
	size_t len = dccl__envelope__get_packed_size(e);
	uint8_t *buf = xmalloc(len > 0 ? len : 1);
	FILE *f;

	dccl__envelope__pack(e, buf);
	snprintf(path, sizeof(path), "%s/srv_%s.bin", dir, name);
	if ((f = fopen(path, "wb")) == NULL || fwrite(buf, 1, len, f) != len ||
	    fclose(f) != 0)
		abort();
	free(buf);
}

static void
fuzz_seeds(const struct cloudd *cd, const char *dir)
{
	Dccl__Envelope e = DCCL__ENVELOPE__INIT;
	Dccl__GetModelReq gm = DCCL__GET_MODEL_REQ__INIT;
	Dccl__GetOfaReq go = DCCL__GET_OFA_REQ__INIT;
	Dccl__RetrieveReq rq = DCCL__RETRIEVE_REQ__INIT;
	Dccl__RegisterReq rg = DCCL__REGISTER_REQ__INIT;
	Dccl__UploadPatch up = DCCL__UPLOAD_PATCH__INIT;
	Dccl__Tensor t[8], *tp[8];
	uint32_t rank = (uint32_t)cd->model.patch_rank;
	float vec[2 * 256], patch[64];
	uint32_t dim = (uint32_t)cd->pool->dim;

	e.version = WIRE_VERSION;
	e.device_id = "d1";
	e.request_id = 7;
	e.body_case = DCCL__ENVELOPE__BODY_GET_MODEL;
	e.get_model = &gm;
	gm.version = cd->model.version;
	/* The last chunk: the boundary a bounds check is about. */
	gm.chunk_index = (uint32_t)((cd->model.size + (size_t)cd->cf.chunk_size
	    - 1) / (size_t)cd->cf.chunk_size - 1);
	fuzz_seed(dir, "get_model", &e);
	e.body_case = DCCL__ENVELOPE__BODY_GET_OFA;
	e.get_ofa = &go;
	go.with_base = 1;
	go.block_mask = 3;
	fuzz_seed(dir, "get_ofa", &e);
	if (dim == 0 || dim > 256)
		abort();
	for (size_t i = 0; i < 2 * (size_t)dim; i++)
		vec[i] = (float)i / 16;
	e.body_case = DCCL__ENVELOPE__BODY_RETRIEVE;
	e.retrieve = &rq;
	rq.model_version = cd->model.version;
	rq.dim = dim;
	rq.n = 2;
	rq.n_vectors = 2 * (size_t)dim;
	rq.vectors = vec;
	rq.k = 5;
	fuzz_seed(dir, "retrieve", &e);
	for (size_t i = 0; i < rank && i < 64; i++)
		patch[i] = 0.01f * (float)i;
	for (int l = 0; l < cd->model.n_hidden && l < 8; l++) {
		static char names[8][16];
		dccl__tensor__init(&t[l]);
		snprintf(names[l], sizeof(names[l]), "patch_m%d", l);
		t[l].name = names[l];
		t[l].n_shape = 1;
		t[l].shape = &rank;
		t[l].n_data = rank;
		t[l].data = patch;
		tp[l] = &t[l];
	}
	e.body_case = DCCL__ENVELOPE__BODY_UPLOAD;
	e.upload = &up;
	up.base_version = cd->model.version;
	up.kind = "metapatch";
	up.n_tensors = (size_t)cd->model.n_hidden;
	up.tensors = tp;
	fuzz_seed(dir, "upload", &e);
	{
		/* Federated selection: a report and the choice's request. */
		static double lr[3] = { 0.01 / 3, 0.01, 0.03 }, gs[6] = { 1,
			2, 3, 4, 5, 6 }, dq[6] = { 1, 1, 1, 0, 1, 1 }, rk[6];
		static uint32_t st[2] = { 5, 20 };
		Dccl__SelectReport sr = DCCL__SELECT_REPORT__INIT;
		Dccl__GridReport g = DCCL__GRID_REPORT__INIT, *gp = &g;
		Dccl__GetSelectionReq gsr = DCCL__GET_SELECTION_REQ__INIT;
		g.method = "ft-cv";
		g.n_lr = 3;
		g.lr = lr;
		g.n_steps = 2;
		g.steps = st;
		g.n = 40;
		g.pairs = 30;
		g.n_gain_sum = g.n_diff_sq = g.n_rank_net = 6;
		g.gain_sum = gs;
		g.diff_sq = dq;
		g.rank_net = rk;
		sr.base_version = cd->model.version;
		sr.n_methods = 1;
		sr.methods = &gp;
		e.body_case = DCCL__ENVELOPE__BODY_SELECT_REPORT;
		e.select_report = &sr;
		fuzz_seed(dir, "select_report", &e);
		e.body_case = DCCL__ENVELOPE__BODY_GET_SELECTION;
		e.get_selection = &gsr;
		fuzz_seed(dir, "get_selection", &e);
	}
	e.device_id = "d9";
	e.body_case = DCCL__ENVELOPE__BODY_REGISTER_REQ;
	e.register_req = &rg;
	rg.user_id = 3;
	rg.software = "deviced/0.1.0";
	fuzz_seed(dir, "register", &e);
}

static void
fuzz_send(struct cloudd *cd, struct nnuv *s, const uint8_t *data,
    size_t size)
{
	void *msg = nn_allocmsg(size > 0 ? size : 1, 0);

	if (msg == NULL)
		abort();
	memcpy(msg, data, size);
	rpc_recv_cb(s, msg, size, NULL);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct cloudd *cd;
	static uint64_t sent;
	Dccl__Envelope *e = NULL;
	char err[256];
	int body = 0;

	if (cd == NULL) {
		const char *seeds = getenv("DCCL_FUZZ_SEEDS");
		cd = fuzz_cloudd();
		if (seeds != NULL) {
			fuzz_seeds(cd, seeds);
			_exit(0);	/* not exit: libFuzzer reports that */
		}
	}
	fuzz_send(cd, &cd->rep, data, size);
	fuzz_drain(cd, ++sent);
	if (wire_unpack(data, size, &e, err, sizeof(err)) == 0)
		body = e->body_case;
	wire_free(e);
	switch (body) {
	case DCCL__ENVELOPE__BODY_GET_STATUS:
	case DCCL__ENVELOPE__BODY_ADMIN_LIST:
	case DCCL__ENVELOPE__BODY_ADMIN_METRICS:
	case DCCL__ENVELOPE__BODY_ADMIN_MODEL_SHOW:
	case DCCL__ENVELOPE__BODY_GET_MODEL:	/* refused there: forbidden */
	case DCCL__ENVELOPE__BODY_UPLOAD:
		fuzz_send(cd, &cd->adm, data, size);
		fuzz_drain(cd, ++sent);
		break;
	default:
		break;
	}
	return 0;
}
