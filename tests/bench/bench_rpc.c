/*
 * bench_rpc: RPC throughput of a running cloudd against bare nanomsg, model
 * download throughput, and pool import speed. Run by bench_rpc.sh, which
 * starts the daemons in a temp dir and passes their endpoints:
 *
 *   bench_rpc -t TCP -i IPC -b BARE_TCP -B BARE_IPC
 *             [-T TCP_1M -I IPC_1M] [-u USER] [-d SECONDS]
 *             [-x CLOUDD -p POOL_CSV -D FRESH_DIR]
 *
 * 1. GetStatus round trips/s with 1 and 16 concurrent clients (one thread
 *    and one cooked REQ socket each, for -d seconds) against cloudd (-t, -i)
 *    and against a bare nanomsg echo server over the same transport. The
 *    echo server is this binary re-executed with --serve-bare (a separate
 *    process like cloudd, so both sides get their own nanomsg worker
 *    thread): one raw REP socket served by one thread with
 *    nn_recvmsg/nn_sendmsg, replying with the request bytes padded to the
 *    size of a real Status reply. The clients send the same packed
 *    GetStatus envelope to both servers and check every reply (cloudd's is
 *    decoded and must be a Status for the same request id; the echo must
 *    carry the request bytes). dccl and bare alternate in 5 slices per
 *    figure and the median slices are compared (see bench_status).
 * 2. Download of the current model: register (RegisterReq, user -u), then
 *    fetch every chunk in order with GetModelReq as deviced does, and check
 *    the BLAKE2b-256 of the whole against the chunks' checksum. -t/-i serve
 *    the default chunk size, -T/-I (optional) a cloudd with 1 MiB chunks.
 *    Five downloads each; the median is reported (MB = 10^6 bytes).
 * 3. Pool import: runs `CLOUDD --import POOL_CSV` into FRESH_DIR (which must
 *    not hold a database yet) and reports the rows/s of its IMPORT log line
 *    and the wall time of the whole process.
 *
 * One line per figure on stdout; a failed check prints "FAIL: ..." and the
 * exit status is 1. Single process plus the echo server child; client
 * threads touch only their own socket and counters.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <sodium.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <nanomsg/nn.h>
#include <nanomsg/reqrep.h>

#include "shared/clock.h"
#include "shared/wire.h"
#include "tests/bench/bench_client.h"
#include "tests/bench/bench_stats.h"

#define MAX_CLIENTS	16
#define DL_RUNS		5
#define RT_ROUNDS	5	/* alternating dccl/bare slices per figure */

static int failures;

static void
fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static void
fail(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	printf("FAIL: ");
	vprintf(fmt, ap);
	printf("\n");
	va_end(ap);
	fflush(stdout);
	failures++;
}

/* ------------------------------------------------------------------------
 * The bare echo server (child process).
 */

static volatile sig_atomic_t bare_stop;

static void
bare_sig(int sig)
{
	(void)sig;
	bare_stop = 1;
}

/*
 * Serves a raw REP socket bound to each endpoint until SIGTERM: every
 * request is answered with its own bytes, zero-padded to reply_len (the
 * size of a real Status reply) so that both servers move as many bytes.
 */
static int
serve_bare(int n_ep, char **eps, size_t reply_len)
{
	struct sigaction sa;
	int sock, tmo = 200;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = bare_sig;
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	if ((sock = nn_socket(AF_SP_RAW, NN_REP)) < 0 ||
	    nn_setsockopt(sock, NN_SOL_SOCKET, NN_RCVTIMEO, &tmo,
	    sizeof(tmo)) < 0) {
		fprintf(stderr, "bare: socket: %s\n", nn_strerror(nn_errno()));
		return 1;
	}
	for (int i = 0; i < n_ep; i++)
		if (nn_bind(sock, eps[i]) < 0) {
			fprintf(stderr, "bare: bind %s: %s\n", eps[i],
			    nn_strerror(nn_errno()));
			return 1;
		}
	printf("READY\n");
	fflush(stdout);
	while (!bare_stop) {
		void *body = NULL, *hdr = NULL, *out;
		struct nn_iovec iov = { &body, NN_MSG };
		struct nn_msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1,
		    .msg_control = &hdr, .msg_controllen = NN_MSG };
		size_t olen;
		int n;

		if ((n = nn_recvmsg(sock, &mh, 0)) < 0) {
			if (nn_errno() == ETIMEDOUT || nn_errno() == EINTR)
				continue;
			fprintf(stderr, "bare: recv: %s\n",
			    nn_strerror(nn_errno()));
			break;
		}
		olen = (size_t)n > reply_len ? (size_t)n : reply_len;
		if ((out = nn_allocmsg(olen, 0)) == NULL) {
			nn_freemsg(body);
			nn_freemsg(hdr);
			continue;
		}
		memcpy(out, body, (size_t)n);
		memset((char *)out + n, 0, olen - (size_t)n);
		nn_freemsg(body);
		iov.iov_base = &out;
		iov.iov_len = NN_MSG;
		mh.msg_control = &hdr;
		mh.msg_controllen = NN_MSG;
		if (nn_sendmsg(sock, &mh, 0) < 0) {
			nn_freemsg(out);
			nn_freemsg(hdr);
		}
	}
	nn_close(sock);
	return 0;
}

/* Starts this binary as the echo server; returns its pid or -1. */
static pid_t
spawn_bare(const char *self, const char *ep1, const char *ep2,
    size_t reply_len)
{
	char len[32];
	int p[2];
	pid_t pid;

	snprintf(len, sizeof(len), "%zu", reply_len);
	if (pipe(p) != 0)
		return -1;
	if ((pid = fork()) < 0)
		return -1;
	if (pid == 0) {
		/* Only async-signal-safe calls until exec: we may have threads. */
		dup2(p[1], 1);
		close(p[0]);
		close(p[1]);
		execl(self, self, "--serve-bare", len, ep1, ep2, (char *)NULL);
		_exit(127);
	}
	close(p[1]);
	{
		char buf[16] = "";
		ssize_t n = read(p[0], buf, sizeof(buf) - 1);
		close(p[0]);
		if (n < 5 || strncmp(buf, "READY", 5) != 0) {
			kill(pid, SIGTERM);
			waitpid(pid, NULL, 0);
			return -1;
		}
	}
	return pid;
}

/* ------------------------------------------------------------------------
 * Round-trip clients.
 */

struct rt_run {
	const char	*ep;
	int		 bare;		/* 1: expect the echo, not a Status */
	pthread_barrier_t go;
	atomic_int	 stop;
};

struct rt_client {
	pthread_t	 th;
	struct rt_run	*run;
	int		 id;
	uint64_t	 count;
	uint64_t	 errors;
	int		 setup_failed;
	char		 err[160];
};

/* Packs a GetStatus request into an nn_allocmsg buffer. */
static void *
pack_status(const char *dev, uint64_t rid, size_t *len)
{
	Dccl__Envelope e = DCCL__ENVELOPE__INIT;
	Dccl__GetStatusReq gs = DCCL__GET_STATUS_REQ__INIT;
	void *msg;

	e.version = WIRE_VERSION;
	e.device_id = (char *)dev;
	e.request_id = rid;
	e.body_case = DCCL__ENVELOPE__BODY_GET_STATUS;
	e.get_status = &gs;
	if (wire_pack_nn(&e, &msg, len) != 0)
		return NULL;
	return msg;
}

/*
 * One request/reply; returns 0 when the reply is the right one. The request
 * is packed fresh each time, for both servers, so the client does the same
 * work on both sides apart from checking the reply.
 */
static int
rt_once(int sock, const char *dev, uint64_t rid, int bare, char *err,
    size_t errlen)
{
	Dccl__Envelope *e = NULL;
	void *req, *rep = NULL;
	size_t len;
	char copy[128];
	int n, rc = -1;

	if ((req = pack_status(dev, rid, &len)) == NULL) {
		snprintf(err, errlen, "nn_allocmsg failed");
		return -1;
	}
	if (bare && len <= sizeof(copy))
		memcpy(copy, req, len);
	if (nn_send(sock, &req, NN_MSG, 0) < 0) {
		snprintf(err, errlen, "send: %s", nn_strerror(nn_errno()));
		nn_freemsg(req);
		return -1;
	}
	if ((n = nn_recv(sock, &rep, NN_MSG, 0)) < 0) {
		snprintf(err, errlen, "recv: %s", nn_strerror(nn_errno()));
		return -1;
	}
	if (bare) {
		if ((size_t)n >= len && len <= sizeof(copy) &&
		    memcmp(rep, copy, len) == 0)
			rc = 0;
		else
			snprintf(err, errlen, "echo mismatch (%d bytes)", n);
	} else if (wire_unpack(rep, (size_t)n, &e, err, errlen) == 0) {
		if (e->body_case == DCCL__ENVELOPE__BODY_STATUS &&
		    e->request_id == rid)
			rc = 0;
		else
			snprintf(err, errlen, "reply %s for request %llu",
			    e->body_case == DCCL__ENVELOPE__BODY_ERROR ?
			    e->error->message : wire_body_name(e->body_case),
			    (unsigned long long)e->request_id);
	}
	wire_free(e);
	nn_freemsg(rep);
	return rc;
}

static void *
rt_client_main(void *arg)
{
	struct rt_client *c = arg;
	struct rt_run *run = c->run;
	char dev[32], err[160];
	uint64_t rid = 1;
	int sock, tmo = 10000;

	snprintf(dev, sizeof(dev), "bench-rt-%02d", c->id);
	if ((sock = nn_socket(AF_SP, NN_REQ)) < 0 ||
	    nn_setsockopt(sock, NN_SOL_SOCKET, NN_RCVTIMEO, &tmo,
	    sizeof(tmo)) < 0 || nn_connect(sock, run->ep) < 0) {
		snprintf(c->err, sizeof(c->err), "socket: %s",
		    nn_strerror(nn_errno()));
		c->setup_failed = 1;
	} else if (rt_once(sock, dev, rid++, run->bare, c->err,
	    sizeof(c->err)) != 0) {
		/* The first exchange also waits for the connection. */
		c->setup_failed = 1;
	}
	pthread_barrier_wait(&run->go);
	if (!c->setup_failed)
		while (!atomic_load_explicit(&run->stop,
		    memory_order_relaxed)) {
			if (rt_once(sock, dev, rid++, run->bare, err,
			    sizeof(err)) == 0) {
				c->count++;
			} else {
				if (c->errors++ == 0)
					snprintf(c->err, sizeof(c->err), "%s",
					    err);
			}
		}
	if (sock >= 0)
		nn_close(sock);
	return NULL;
}

/* Runs n clients against ep for secs seconds; returns round trips/s. */
static double
rt_bench(const char *ep, int bare, int n, double secs)
{
	struct rt_run run;
	struct rt_client cl[MAX_CLIENTS];
	uint64_t total = 0, errors = 0;
	double t0, t1;
	int bad = 0;

	memset(&run, 0, sizeof(run));
	memset(cl, 0, sizeof(cl));
	run.ep = ep;
	run.bare = bare;
	atomic_init(&run.stop, 0);
	pthread_barrier_init(&run.go, NULL, (unsigned)n + 1);
	for (int i = 0; i < n; i++) {
		cl[i].run = &run;
		cl[i].id = i;
		if (pthread_create(&cl[i].th, NULL, rt_client_main, &cl[i]))
			abort();
	}
	pthread_barrier_wait(&run.go);
	t0 = clock_now();
	{
		struct timespec ts = { (time_t)secs,
		    (long)((secs - (time_t)secs) * 1e9) };
		while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
			;
	}
	atomic_store(&run.stop, 1);
	for (int i = 0; i < n; i++)
		pthread_join(cl[i].th, NULL);
	t1 = clock_now();
	pthread_barrier_destroy(&run.go);
	for (int i = 0; i < n; i++) {
		total += cl[i].count;
		errors += cl[i].errors;
		if (cl[i].setup_failed || cl[i].errors) {
			if (!bad)
				fail("%s %s client %d: %s", bare ? "bare" :
				    "dccl", ep, i, cl[i].err);
			bad = 1;
		}
	}
	if (errors)
		fail("%s %s: %llu failed round trips", bare ? "bare" : "dccl",
		    ep, (unsigned long long)errors);
	return bad ? 0 : total / (t1 - t0);
}

/* Size of a real Status reply from ep, or 0. */
static size_t
status_reply_size(const char *ep)
{
	void *req, *rep = NULL;
	size_t len;
	int sock, n, tmo = 10000;

	if ((sock = nn_socket(AF_SP, NN_REQ)) < 0)
		return 0;
	nn_setsockopt(sock, NN_SOL_SOCKET, NN_RCVTIMEO, &tmo, sizeof(tmo));
	if (nn_connect(sock, ep) < 0 ||
	    (req = pack_status("bench-probe", 1, &len)) == NULL) {
		nn_close(sock);
		return 0;
	}
	if (nn_send(sock, &req, NN_MSG, 0) < 0) {
		nn_freemsg(req);
		n = -1;
	} else
		n = nn_recv(sock, &rep, NN_MSG, 0);
	if (n > 0)
		nn_freemsg(rep);
	nn_close(sock);
	return n > 0 ? (size_t)n : 0;
}

/*
 * The machine is shared and its speed drifts (other processes, CPU
 * placement of 16 client threads on 2 cores), so dccl and bare are not
 * measured in two long runs one after the other: each figure is RT_ROUNDS
 * alternating slices of secs / RT_ROUNDS (the order swaps every round) and
 * the median slice of each side is reported.
 */
static void
bench_status(const char *tp, const char *ep, const char *bare_ep,
    double secs)
{
	static const int clients[] = { 1, 16 };
	double slice = secs / RT_ROUNDS;

	for (size_t k = 0; k < sizeof(clients) / sizeof(clients[0]); k++) {
		double d[RT_ROUNDS], b[RT_ROUNDS], dm, bm;
		int n = clients[k];

		for (int r = 0; r < RT_ROUNDS; r++) {
			if (r % 2 == 0) {
				d[r] = rt_bench(ep, 0, n, slice);
				b[r] = rt_bench(bare_ep, 1, n, slice);
			} else {
				b[r] = rt_bench(bare_ep, 1, n, slice);
				d[r] = rt_bench(ep, 0, n, slice);
			}
		}
		qsort(d, RT_ROUNDS, sizeof(double), bench_cmp_dbl);
		qsort(b, RT_ROUNDS, sizeof(double), bench_cmp_dbl);
		dm = d[RT_ROUNDS / 2];
		bm = b[RT_ROUNDS / 2];
		printf("getstatus %s %d client%s: dccl %.0f rt/s, bare %.0f "
		    "rt/s, ratio %.2f%s  [slices: dccl %.0f..%.0f, bare "
		    "%.0f..%.0f]\n", tp, n, n > 1 ? "s" : "", dm, bm,
		    bm > 0 ? dm / bm : 0, bm > 0 && dm / bm >= 0.8 ? "" :
		    " (goal >= 0.8)", d[0], d[RT_ROUNDS - 1], b[0],
		    b[RT_ROUNDS - 1]);
		fflush(stdout);
	}
}

/* ------------------------------------------------------------------------
 * Model download.
 */

struct dl_result {
	double	 seconds;	/* first GetModel to last chunk */
	double	 hash_seconds;
	uint64_t size;
	uint32_t n_chunks;
	uint32_t chunk_size;
	uint64_t version;
};

/* Registers as dev and downloads the current model; 0 on success. */
static int
download(const char *ep, const char *dev, uint32_t user,
    struct dl_result *out, char *err, size_t errlen)
{
	Dccl__Envelope e = DCCL__ENVELOPE__INIT, *r;
	Dccl__RegisterReq rg = DCCL__REGISTER_REQ__INIT;
	Dccl__Capability cap = DCCL__CAPABILITY__INIT;
	Dccl__GetModelReq gm = DCCL__GET_MODEL_REQ__INIT;
	uint8_t sum[32], want[32];
	uint8_t *blob = NULL;
	uint64_t rid = 1, total = 0;
	uint32_t n_chunks = 1;
	int sock, rc = -1;
	double t0;

	memset(out, 0, sizeof(*out));
	if ((sock = bench_connect(ep, 30000, err, errlen)) < 0)
		return -1;
	e.version = WIRE_VERSION;
	e.device_id = (char *)dev;
	e.request_id = rid++;
	cap.compute_class = "high";
	cap.memory_mb = 4096;
	rg.user_id = user;
	rg.capability = &cap;
	rg.software = "bench_rpc";
	e.body_case = DCCL__ENVELOPE__BODY_REGISTER_REQ;
	e.register_req = &rg;
	if ((r = bench_call(sock, NULL, &e, err, errlen)) == NULL)
		goto done;
	if (r->body_case != DCCL__ENVELOPE__BODY_REGISTERED ||
	    r->registered->model_version == 0) {
		snprintf(err, errlen, "register: %s",
		    r->body_case != DCCL__ENVELOPE__BODY_REGISTERED ?
		    "unexpected reply" : "the cloud has no model");
		wire_free(r);
		goto done;
	}
	out->version = r->registered->model_version;
	out->chunk_size = r->registered->chunk_size;
	wire_free(r);

	e.body_case = DCCL__ENVELOPE__BODY_GET_MODEL;
	e.get_model = &gm;
	gm.version = out->version;
	t0 = clock_now();
	for (uint32_t i = 0; i < n_chunks; i++) {
		Dccl__ModelChunk *c;

		e.request_id = rid++;
		gm.chunk_index = i;
		if ((r = bench_call(sock, NULL, &e, err, errlen)) == NULL)
			goto done;
		c = r->model_chunk;
		if (r->body_case != DCCL__ENVELOPE__BODY_MODEL_CHUNK ||
		    c->version != out->version || c->chunk_index != i ||
		    c->checksum.len != 32 || c->n_chunks == 0 ||
		    (i > 0 && (c->n_chunks != n_chunks ||
		    c->total_size != total)) ||
		    (uint64_t)i * out->chunk_size + c->data.len >
		    c->total_size ||
		    (i + 1 < c->n_chunks && c->data.len != out->chunk_size)) {
			snprintf(err, errlen, "chunk %u: bad reply", i);
			wire_free(r);
			goto done;
		}
		if (i == 0) {
			n_chunks = c->n_chunks;
			total = c->total_size;
			memcpy(want, c->checksum.data, 32);
			blob = malloc(total ? total : 1);
			if (blob == NULL) {
				snprintf(err, errlen, "out of memory");
				wire_free(r);
				goto done;
			}
		}
		memcpy(blob + (uint64_t)i * out->chunk_size, c->data.data,
		    c->data.len);
		if (i + 1 == n_chunks &&
		    (uint64_t)i * out->chunk_size + c->data.len != total) {
			snprintf(err, errlen, "last chunk: short model");
			wire_free(r);
			goto done;
		}
		wire_free(r);
	}
	out->seconds = clock_now() - t0;
	t0 = clock_now();
	crypto_generichash(sum, sizeof(sum), blob, total, NULL, 0);
	out->hash_seconds = clock_now() - t0;
	out->size = total;
	out->n_chunks = n_chunks;
	if (memcmp(sum, want, 32) != 0) {
		snprintf(err, errlen, "BLAKE2b-256 mismatch over %llu bytes",
		    (unsigned long long)total);
		goto done;
	}
	rc = 0;
done:
	free(blob);
	nn_close(sock);
	return rc;
}

static void
bench_download(const char *tp, const char *ep, uint32_t user)
{
	struct dl_result res[DL_RUNS];
	double mbs[DL_RUNS], sorted[DL_RUNS];
	char dev[64], err[256];

	snprintf(dev, sizeof(dev), "bench-dl-%s", tp);
	for (int k = 0; k < DL_RUNS; k++) {
		if (download(ep, dev, user, &res[k], err, sizeof(err)) != 0) {
			fail("download %s (%s): %s", tp, ep, err);
			return;
		}
		mbs[k] = res[k].size / 1e6 / res[k].seconds;
	}
	memcpy(sorted, mbs, sizeof(sorted));
	qsort(sorted, DL_RUNS, sizeof(double), bench_cmp_dbl);
	printf("download %s chunk %u KiB: %.1f MB/s (median of %d runs:",
	    tp, res[0].chunk_size / 1024, sorted[DL_RUNS / 2], DL_RUNS);
	for (int k = 0; k < DL_RUNS; k++)
		printf(" %.0f", mbs[k]);
	printf("), model v%llu %.2f MiB in %u chunks, BLAKE2b-256 OK (hash "
	    "%.0f ms)\n", (unsigned long long)res[0].version,
	    res[0].size / 1048576.0, res[0].n_chunks,
	    res[0].hash_seconds * 1e3);
	fflush(stdout);
}

/* ------------------------------------------------------------------------
 * Pool import.
 */

static void
bench_import(const char *cloudd, const char *csv, const char *dir)
{
	char db[4096], optdir[4200], line[1024], file[1024];
	unsigned long long rows = 0;
	double secs = 0, rate = 0, t0, wall;
	struct stat sb;
	int p[2], status, found = 0;
	pid_t pid;
	FILE *fp;

	snprintf(db, sizeof(db), "%s/cloudd.db", dir);
	if (stat(db, &sb) == 0) {
		fail("import: %s exists; want a fresh database", db);
		return;
	}
	snprintf(optdir, sizeof(optdir), "cloudd.data-dir=%s", dir);
	if (pipe(p) != 0) {
		fail("import: pipe: %s", strerror(errno));
		return;
	}
	t0 = clock_now();
	if ((pid = fork()) < 0) {
		fail("import: fork: %s", strerror(errno));
		return;
	}
	if (pid == 0) {
		dup2(p[1], 2);
		dup2(p[1], 1);
		close(p[0]);
		close(p[1]);
		execl(cloudd, cloudd, "-o", optdir, "-o",
		    "cloudd.log-level=info", "--import", csv, (char *)NULL);
		_exit(127);
	}
	close(p[1]);
	fp = fdopen(p[0], "r");
	while (fp != NULL && fgets(line, sizeof(line), fp) != NULL) {
		const char *s = strstr(line, "IMPORT: ");
		if (s != NULL && sscanf(s, "IMPORT: %llu rows from %1023s in "
		    "%lf s (%lf rows/s)", &rows, file, &secs, &rate) == 4)
			found = 1;
		else if (strstr(line, "IMPORT") != NULL)
			fprintf(stderr, "%s", line);
	}
	if (fp != NULL)
		fclose(fp);
	waitpid(pid, &status, 0);
	wall = clock_now() - t0;
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0 || !found) {
		fail("import: cloudd --import %s exited %d without an IMPORT "
		    "line", csv, WIFEXITED(status) ? WEXITSTATUS(status) : -1);
		return;
	}
	printf("import %llu rows: %.0f rows/s (cloudd log: %.3f s parse + "
	    "insert)%s; whole process %.3f s = %.0f rows/s\n", rows, rate,
	    secs, rate >= 200000 ? "" : " (goal >= 200000)", wall,
	    rows / wall);
	fflush(stdout);
}

static void
usage(void)
{
	fprintf(stderr,
"usage: bench_rpc -t TCP_EP -i IPC_EP -b BARE_TCP_EP -B BARE_IPC_EP\n"
"                 [-T TCP_EP_1M] [-I IPC_EP_1M] [-u USER] [-d SECONDS]\n"
"                 [-x CLOUDD -p POOL_CSV -D FRESH_DIR]\n"
"       bench_rpc --serve-bare REPLY_LEN EP...\n");
	exit(2);
}

int
main(int argc, char **argv)
{
	const char *tcp = NULL, *ipc = NULL, *btcp = NULL, *bipc = NULL;
	const char *tcp1 = NULL, *ipc1 = NULL, *cloudd = NULL, *csv = NULL;
	const char *dir = NULL;
	char self[4096];
	double secs = 3;
	uint32_t user = 0;
	size_t reply_len;
	pid_t bare;
	ssize_t n;
	int ch;

	if (argc >= 4 && strcmp(argv[1], "--serve-bare") == 0)
		return serve_bare(argc - 3, argv + 3,
		    strtoul(argv[2], NULL, 10));
	while ((ch = getopt(argc, argv, "t:i:b:B:T:I:u:d:x:p:D:h")) != -1) {
		switch (ch) {
		case 't': tcp = optarg; break;
		case 'i': ipc = optarg; break;
		case 'b': btcp = optarg; break;
		case 'B': bipc = optarg; break;
		case 'T': tcp1 = optarg; break;
		case 'I': ipc1 = optarg; break;
		case 'u': user = (uint32_t)strtoul(optarg, NULL, 10); break;
		case 'd': secs = strtod(optarg, NULL); break;
		case 'x': cloudd = optarg; break;
		case 'p': csv = optarg; break;
		case 'D': dir = optarg; break;
		default: usage();
		}
	}
	if (!tcp || !ipc || !btcp || !bipc || optind != argc || secs <= 0 ||
	    ((cloudd || csv || dir) && !(cloudd && csv && dir)))
		usage();
	if (sodium_init() < 0) {
		fprintf(stderr, "bench_rpc: sodium_init failed\n");
		return 1;
	}
	if ((n = readlink("/proc/self/exe", self, sizeof(self) - 1)) <= 0) {
		fprintf(stderr, "bench_rpc: readlink: %s\n", strerror(errno));
		return 1;
	}
	self[n] = '\0';

	/* 1. GetStatus vs bare nanomsg. */
	if ((reply_len = status_reply_size(tcp)) == 0) {
		fprintf(stderr, "bench_rpc: no Status reply from %s\n", tcp);
		return 1;
	}
	if ((bare = spawn_bare(self, btcp, bipc, reply_len)) < 0) {
		fprintf(stderr, "bench_rpc: the echo server did not start\n");
		return 1;
	}
	{
		size_t req_len = 0;
		void *m = pack_status("bench-rt-00", 1, &req_len);

		nn_freemsg(m);
		printf("getstatus: request %zu bytes, Status reply %zu bytes, "
		    "%.1f s per figure\n", req_len, reply_len, secs);
	}
	fflush(stdout);
	bench_status("tcp", tcp, btcp, secs);
	bench_status("ipc", ipc, bipc, secs);
	kill(bare, SIGTERM);
	waitpid(bare, NULL, 0);

	/* 2. Model download. */
	bench_download("tcp", tcp, user);
	bench_download("ipc", ipc, user);
	if (tcp1 != NULL)
		bench_download("tcp", tcp1, user);
	if (ipc1 != NULL)
		bench_download("ipc", ipc1, user);

	/* 3. Pool import. */
	if (cloudd != NULL)
		bench_import(cloudd, csv, dir);
	return failures ? 1 : 0;
}
