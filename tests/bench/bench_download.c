/*
 * bench_download: authenticated model download from cloudd, the protocol
 * deviced speaks (8): RegisterReq with the enrollment token, the
 * version's Manifest, MACed in the session, then every chunk with a MACed
 * GetModelReq, each chunk checked against the manifest (header, length,
 * its hash in the list this CPU hashes fastest, or -H's) before it is
 * stored in the model buffer, all inside the timed loop; the BLAKE2b-256
 * of the whole checked against the manifest's checksum after the clock
 * stops. What deviced does beyond it, and this does not: it writes each
 * chunk to a file beside its store and installs the model
 * (scripts/bench-results.md, Benchmarks). Run by bench_download.sh:
 *
 *   bench_download -e EP [-E PEER_EP] [-k KEYDIR] [-r RUNS] [-P CLIENTS]
 *       [-W WINDOW] [-T THREADS] [-H blake2b|sha256]
 *
 * WINDOW 2 (the default, as deviced since protocol 8) asks for the next
 * chunk as soon as this one arrived, so the cloud packs and sends it
 * while the client checks this one: the most one connection allows
 * (cloudd's raw REP socket drops a reply to a pipe that is still sending
 * the previous one, and a second connection would reorder the counters
 * the cloud's replay check wants increasing). WINDOW 1 asks once this one
 * is checked and stored. THREADS (0, the default, as deviced) checks and
 * stores each chunk inline; more hands them to that many check threads
 * (shared/dlcheck.h), which measured slower on 2 cores (the chunk moves
 * between cores' caches; scripts/bench-results.md, Benchmarks).
 * The token comes from $DCCL_AUTH_TOKEN. With -E, every figure is taken
 * from runs alternating between EP and PEER_EP (A B A B ..., RUNS pairs):
 * the median of each side and the median and range of the pairwise
 * ratios EP/PEER_EP are printed. Two figures:
 *   1. one client downloading the model (MB/s, MB = 10^6 bytes);
 *   2. CLIENTS processes downloading it at the same time (aggregate MB/s:
 *      the total bytes over the time from the first start to the last end).
 * A failed check prints "FAIL: ..." and exits 1.
 */
#include <errno.h>
#include <getopt.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <nanomsg/nn.h>
#include <nanomsg/reqrep.h>

#include "shared/auth.h"
#include "shared/clock.h"
#include "shared/dlcheck.h"
#include "shared/manifest.h"
#include "shared/memtune.h"
#include "shared/nnuv.h"
#include "shared/wire.h"
#include "tests/bench/bench_stats.h"

#define MAX_RUNS	16
#define MAX_CLIENTS	16
#define MAX_WINDOW	2
#define SP_LEN		(sizeof(size_t) + 4)	/* SP_HDR: size, id */

static int window = 2;
static int nthreads = 0;	/* check threads with window 2 (-T) */
static int alg = -1;		/* hash list checked (-H); -1: as deviced */

static void
release_env(void *e)
{
	wire_free(e);
}

#define HUGE_PAGE	((size_t)2 << 20)

/*
 * The model's buffer: anonymous memory from a 2 MiB boundary, marked for
 * transparent huge pages (the system's setting is "madvise" here).
 * Writing the model into fresh 4 KiB pages cost half the client's CPU in
 * this VM, a page fault per 4 KiB (perf: the check stage's memcpy and
 * exc_page_fault); a huge page faults once per 2 MiB. BENCH_NO_HUGEPAGE=1
 * leaves the buffer in 4 KiB pages. *map and *maplen: what to munmap.
 */
static uint8_t *
model_buf(size_t len, void **map, size_t *maplen)
{
	size_t n = (len + HUGE_PAGE - 1) / HUGE_PAGE * HUGE_PAGE + HUGE_PAGE;
	uint8_t *p = mmap(NULL, n, PROT_READ | PROT_WRITE,
	    MAP_PRIVATE | MAP_ANONYMOUS, -1, 0), *a;

	if (p == MAP_FAILED)
		return NULL;
	a = (uint8_t *)(((uintptr_t)p + HUGE_PAGE - 1) & ~(HUGE_PAGE - 1));
	if (getenv("BENCH_NO_HUGEPAGE") == NULL)
		(void)madvise(a, n - (size_t)(a - p), MADV_HUGEPAGE);
	*map = p;
	*maplen = n;
	return a;
}

static const char *keydir = ".";
/* CPU seconds of this process (all threads) in each 1-client timed
 * loop; their median is printed beside the MB/s. */
static double loop_cpu[MAX_RUNS];
static int n_loop_cpu;

static double
cpu_now(void)
{
	struct rusage u;

	getrusage(RUSAGE_SELF, &u);
	return (double)u.ru_utime.tv_sec + u.ru_utime.tv_usec / 1e6 +
	    (double)u.ru_stime.tv_sec + u.ru_stime.tv_usec / 1e6;
}
/* Fresh device ids per run and process: each download starts with a full
 * rate-limit bucket (limits.burst 400 > 256 chunks of a 64 MiB model), as a device
 * downloading a new version would. */
static int run_no;

/* Sends e signed by a on the raw REQ socket as request id (SP header). */
static int
rsend(int sock, struct auth_dev *a, Dccl__Envelope *e, uint32_t id,
    char *err, size_t errlen)
{
	struct nn_msghdr h;
	struct nn_iovec iov;
	struct nn_cmsghdr *c;
	void *msg, *hdr;
	size_t len;
	uint8_t *p;

	if (auth_dev_pack(a, e, &msg, &len) != 0) {
		snprintf(err, errlen, "cannot sign");
		return -1;
	}
	if ((hdr = nn_allocmsg(NN_CMSG_SPACE(SP_LEN), 0)) == NULL) {
		nn_freemsg(msg);
		snprintf(err, errlen, "out of message memory");
		return -1;
	}
	c = hdr;
	c->cmsg_len = NN_CMSG_LEN(SP_LEN);
	c->cmsg_level = PROTO_SP;
	c->cmsg_type = SP_HDR;
	p = NN_CMSG_DATA(c);
	*(size_t *)(void *)p = 4;
	p += sizeof(size_t);
	p[0] = (uint8_t)(0x80 | id >> 24);
	p[1] = (uint8_t)(id >> 16);
	p[2] = (uint8_t)(id >> 8);
	p[3] = (uint8_t)id;
	iov.iov_base = &msg;
	iov.iov_len = NN_MSG;
	memset(&h, 0, sizeof(h));
	h.msg_iov = &iov;
	h.msg_iovlen = 1;
	h.msg_control = &hdr;
	h.msg_controllen = NN_MSG;
	if (nn_sendmsg(sock, &h, 0) < 0) {
		snprintf(err, errlen, "send: %s", nn_strerror(nn_errno()));
		nn_freemsg(msg);
		nn_freemsg(hdr);
		return -1;
	}
	return 0;
}

/*
 * The next reply: decoded, its MAC checked against the request it answers
 * (counter ctr[request_id - base], body want). An unMACed reply is taken
 * only as an Error or a model chunk (checked against the manifest by the
 * caller); *authed says which. NULL after err.
 */
static Dccl__Envelope *
rrecv(int sock, struct auth_dev *a, const uint64_t *ctr, uint64_t base,
    uint64_t n, int want, int *authed, uint32_t *busy_ms, uint64_t *busy_id,
    char *err, size_t errlen)
{
	struct nn_msghdr h;
	struct nn_iovec iov;
	Dccl__Envelope *r = NULL;
	void *rep = NULL, *hdr = NULL;
	int n_, ok;

	iov.iov_base = &rep;
	iov.iov_len = NN_MSG;
	memset(&h, 0, sizeof(h));
	h.msg_iov = &iov;
	h.msg_iovlen = 1;
	h.msg_control = &hdr;
	h.msg_controllen = NN_MSG;
	if ((n_ = nn_recvmsg(sock, &h, 0)) < 0) {
		snprintf(err, errlen, "recv: %s", nn_strerror(nn_errno()));
		return NULL;
	}
	if (hdr != NULL)
		nn_freemsg(hdr);
	if (wire_unpack(rep, (size_t)n_, &r, err, errlen) != 0) {
		wire_free(r);
		nn_freemsg(rep);
		return NULL;
	}
	if (r->request_id < base || r->request_id >= base + n) {
		snprintf(err, errlen, "reply to request %llu, not asked",
		    (unsigned long long)r->request_id);
		goto bad;
	}
	ok = auth_dev_check(a, rep, (size_t)n_, r, ctr[r->request_id - base],
	    want);
	if (ok < 0 || (ok == 0 && r->body_case !=
	    DCCL__ENVELOPE__BODY_ERROR && r->body_case !=
	    DCCL__ENVELOPE__BODY_MODEL_CHUNK)) {
		snprintf(err, errlen, "reply not authenticated (%s)",
		    ok < 0 ? "forged" : "unMACed");
		goto bad;
	}
	if (r->body_case == DCCL__ENVELOPE__BODY_ERROR) {
		snprintf(err, errlen, "%s: %s", wire_error_name(r->error->code),
		    r->error->message);
		/* E_BUSY: the caller may come back when the cloud said */
		if (busy_ms != NULL &&
		    r->error->code == DCCL__ERROR_CODE__E_BUSY) {
			*busy_ms = r->error->retry_after_ms > 0 ?
			    r->error->retry_after_ms : 1;
			*busy_id = r->request_id;
		}
		goto bad;
	}
	*authed = ok;
	nn_freemsg(rep);
	return r;
bad:
	wire_free(r);
	nn_freemsg(rep);
	return NULL;
}

/* One request, its checked reply. */
static Dccl__Envelope *
call(int sock, struct auth_dev *a, Dccl__Envelope *e, char *err,
    size_t errlen)
{
	uint64_t ctr;
	int authed;

	if (rsend(sock, a, e, (uint32_t)e->request_id, err, errlen) != 0)
		return NULL;
	ctr = e->counter;
	return rrecv(sock, a, &ctr, e->request_id, 1, e->body_case, &authed,
	    NULL, NULL, err, errlen);
}

/*
 * Registers as dev (key file under keydir) and downloads the current
 * model; its size in *size and the seconds from the manifest request to
 * the last chunk checked in *secs. 0 on success.
 */
static int
download(const char *ep, const char *dev, uint64_t *size, double *secs,
    char *err, size_t errlen)
{
	Dccl__Envelope e = DCCL__ENVELOPE__INIT, *r, *man = NULL;
	Dccl__RegisterReq rg = DCCL__REGISTER_REQ__INIT;
	Dccl__GetModelReq gm = DCCL__GET_MODEL_REQ__INIT;
	Dccl__GetManifestReq gq = DCCL__GET_MANIFEST_REQ__INIT;
	const Dccl__Manifest *m;
	struct auth_dev a;
	char path[1024];
	uint8_t sum[32];
	uint8_t *blob = NULL;
	uint64_t *ctr = NULL, version;
	uint32_t n_chunks, sent = 0, got = 0, busy_ms, n_busy = 0;
	uint64_t busy_id = 0;
	struct dlcheck *chk = NULL;
	uint32_t bad = 0;
	void *map = NULL;
	size_t maplen = 0;
	int sock, tmo = 30000, unlimited = -1, rc = -1, authed, mc;
	double t0, c0;

	snprintf(path, sizeof(path), "%s/%s.key", keydir, dev);
	if (auth_dev_open(&a, path, getenv("DCCL_AUTH_TOKEN"), AUTH_MAC)) {
		snprintf(err, errlen, "cannot open the key file");
		return -1;
	}
	/* Buffers as deviced's net.socket-buffer default. */
	if ((sock = nn_socket(AF_SP_RAW, NN_REQ)) < 0 ||
	    nnuv_sockbuf(sock, 4194304) != 0 ||
	    nn_setsockopt(sock, NN_SOL_SOCKET, NN_RCVTIMEO, &tmo,
	    sizeof(tmo)) < 0 ||
	    nn_setsockopt(sock, NN_SOL_SOCKET, NN_RCVMAXSIZE, &unlimited,
	    sizeof(unlimited)) < 0 || nn_connect(sock, ep) < 0) {
		snprintf(err, errlen, "socket: %s", nn_strerror(nn_errno()));
		if (sock >= 0)
			nn_close(sock);
		return -1;
	}
	e.version = WIRE_VERSION;
	e.device_id = (char *)dev;
	e.request_id = 1;
	rg.pubkey.data = a.pk;
	rg.pubkey.len = 32;
	rg.software = "bench_download";
	e.body_case = DCCL__ENVELOPE__BODY_REGISTER_REQ;
	e.register_req = &rg;
	if ((r = call(sock, &a, &e, err, errlen)) == NULL)
		goto done;
	if (r->body_case != DCCL__ENVELOPE__BODY_REGISTERED ||
	    r->registered->model_version == 0 ||
	    r->registered->cloud_pubkey.len != 32 ||
	    auth_dev_set_cloud(&a, r->registered->cloud_pubkey.data,
	    (int)r->registered->auth_mode) != 0) {
		snprintf(err, errlen, "register: no model or no cloud key");
		wire_free(r);
		goto done;
	}
	version = r->registered->model_version;
	wire_free(r);
	c0 = cpu_now();
	t0 = clock_now();
	e.request_id = 2;
	gq.version = version;
	e.body_case = DCCL__ENVELOPE__BODY_GET_MANIFEST;
	e.get_manifest = &gq;
	if ((man = call(sock, &a, &e, err, errlen)) == NULL)
		goto done;
	if (man->body_case != DCCL__ENVELOPE__BODY_MANIFEST ||
	    (a.mode != AUTH_OFF && man->counter != e.counter) ||
	    (mc = manifest_check(man->manifest, version, 1u << 30)) != 0) {
		snprintf(err, errlen, "manifest refused");
		goto done;
	}
	m = man->manifest;
	n_chunks = m->n_chunks;
	if ((blob = model_buf(m->total_size, &map, &maplen)) == NULL ||
	    (ctr = calloc(n_chunks, sizeof(*ctr))) == NULL) {
		snprintf(err, errlen, "out of memory");
		goto done;
	}
	/*
	 * Chunk i is request 3 + i; WINDOW of them in flight, in order. The
	 * check stage (shared/dlcheck.h) checks each chunk against the
	 * manifest before it stores it in blob: inline (window 1, or 0
	 * threads), or on THREADS threads while the next chunk comes.
	 */
	if ((mc = dlcheck_new(&chk, m, blob, alg, window > 1 ? nthreads : 0,
	    4)) != 0) {
		snprintf(err, errlen, "check stage: %s", strerror(-mc));
		goto done;
	}
	e.body_case = DCCL__ENVELOPE__BODY_GET_MODEL;
	e.get_model = &gm;
	gm.version = version;
	while (got < n_chunks) {
		Dccl__ModelChunk *c;
		/* window 1: the next request after this chunk is checked;
		 * 2: as soon as it arrived, so the cloud serves the next one
		 * while this one is hashed. Never two replies in transit: a
		 * raw REP socket drops a reply to a pipe still sending one. */
		if (sent == got) {
			e.request_id = 3 + sent;
			gm.chunk_index = sent;
			if (rsend(sock, &a, &e, (uint32_t)e.request_id, err,
			    errlen) != 0)
				goto done;
			ctr[sent++] = e.counter;
		}
		busy_ms = 0;
		if ((r = rrecv(sock, &a, ctr, 3, n_chunks,
		    DCCL__ENVELOPE__BODY_GET_MODEL, &authed, &busy_ms,
		    &busy_id, err, errlen)) == NULL) {
			/*
			 * Refused (limits.download-rate, download slots): as
			 * deviced, wait the hint and ask for that chunk again
			 * (the clock runs on: it is part of the download). No
			 * new request meanwhile, so at most WINDOW in flight.
			 */
			if (busy_ms == 0 || ++n_busy > 10000)
				goto done;
			usleep((useconds_t)busy_ms * 1000);
			e.request_id = busy_id;
			gm.chunk_index = (uint32_t)(busy_id - 3);
			if (rsend(sock, &a, &e, (uint32_t)e.request_id, err,
			    errlen) != 0)
				goto done;
			ctr[busy_id - 3] = e.counter;
			continue;
		}
		c = r->model_chunk;
		/* in order: the chunk asked for next, as its own answer */
		if (r->body_case != DCCL__ENVELOPE__BODY_MODEL_CHUNK ||
		    r->request_id != 3 + (uint64_t)got ||
		    c->chunk_index != got) {
			snprintf(err, errlen, "chunk %llu refused: not the "
			    "chunk %u asked for", (unsigned long long)
			    r->request_id - 3, got);
			wire_free(r);
			goto done;
		}
		if (window > 1 && sent < n_chunks) {
			e.request_id = 3 + sent;
			gm.chunk_index = sent;
			if (rsend(sock, &a, &e, (uint32_t)e.request_id, err,
			    errlen) != 0) {
				wire_free(r);
				goto done;
			}
			ctr[sent++] = e.counter;
		}
		got++;
		if ((mc = dlcheck_put(chk, c, r, release_env)) != 0)
			break;
	}
	if ((mc = dlcheck_wait(chk, n_chunks, &bad)) != 0) {
		snprintf(err, errlen, "chunk %u refused: %s", bad,
		    manifest_errname(mc));
		goto done;
	}
	*secs = clock_now() - t0;
	if (n_loop_cpu < MAX_RUNS)
		loop_cpu[n_loop_cpu++] = cpu_now() - c0;
	*size = m->total_size;
	crypto_generichash(sum, sizeof(sum), blob, m->total_size, NULL, 0);
	if (memcmp(sum, m->checksum.data, 32) != 0) {
		snprintf(err, errlen, "BLAKE2b-256 mismatch");
		goto done;
	}
	rc = 0;
done:
	dlcheck_free(chk);	/* before the manifest it checks against */
	wire_free(man);
	free(ctr);
	if (map != NULL)
		munmap(map, maplen);
	nn_close(sock);
	return rc;
}

/*
 * One figure on ep: clients processes at once (1: in this process), each
 * downloading the model once. Aggregate MB/s, or -1 after a FAIL line.
 */
static double
figure(const char *ep, const char *tag, int clients)
{
	double *res, t0, mbs;
	uint64_t size = 0;
	char err[256], dev[64];
	int bad = 0;

	if (clients == 1) {
		double secs;
		snprintf(dev, sizeof(dev), "bdl-%s%ld-%d-1", tag,
		    (long)getpid(), ++run_no);
		if (download(ep, dev, &size, &secs, err, sizeof(err)) != 0) {
			printf("FAIL: download from %s: %s\n", ep, err);
			return -1;
		}
		return size / 1e6 / secs;
	}
	/* shared: each child's bytes (as a double), 0 on failure */
	res = mmap(NULL, MAX_CLIENTS * sizeof(double), PROT_READ | PROT_WRITE,
	    MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (res == MAP_FAILED) {
		printf("FAIL: mmap: %s\n", strerror(errno));
		return -1;
	}
	t0 = clock_now();
	run_no++;
	for (int k = 0; k < clients; k++) {
		pid_t p = fork();
		if (p == 0) {
			double secs;
			snprintf(dev, sizeof(dev), "bdl-%s%ld-%d-%d", tag,
			    (long)getppid(), run_no, k);
			res[k] = download(ep, dev, &size, &secs, err,
			    sizeof(err)) == 0 ? (double)size : 0;
			if (res[k] == 0)
				printf("FAIL: client %d on %s: %s\n", k, ep,
				    err);
			fflush(stdout);
			_exit(0);
		}
	}
	for (int k = 0; k < clients; k++)
		wait(NULL);
	mbs = 0;
	for (int k = 0; k < clients; k++) {
		if (res[k] == 0)
			bad = 1;
		mbs += res[k];
	}
	mbs = mbs / 1e6 / (clock_now() - t0);
	munmap(res, MAX_CLIENTS * sizeof(double));
	return bad ? -1 : mbs;
}

static int
report(const char *what, const char *ep, const char *peer, int runs,
    int clients)
{
	double a[MAX_RUNS], b[MAX_RUNS], q[MAX_RUNS];

	for (int i = 0; i < runs; i++) {
		if ((a[i] = figure(ep, "a", clients)) < 0)
			return 1;
		if (peer != NULL && (b[i] = figure(peer, "b", clients)) < 0)
			return 1;
		if (peer != NULL)
			q[i] = a[i] / b[i];
	}
	printf("download %s: %.0f MB/s (median of %d runs", what,
	    bench_median(a, runs), runs);
	if (clients == 1 && peer == NULL && n_loop_cpu > 0)
		printf("; client CPU in the timed loop %.0f ms, median",
		    bench_median(loop_cpu, n_loop_cpu) * 1e3);
	n_loop_cpu = 0;
	if (peer != NULL) {
		double lo = q[0], hi = q[0];
		for (int i = 1; i < runs; i++) {
			lo = q[i] < lo ? q[i] : lo;
			hi = q[i] > hi ? q[i] : hi;
		}
		printf("); peer %.0f MB/s; pairwise ratio median %.2f "
		    "[%.2f, %.2f] over %d alternating pairs\n",
		    bench_median(b, runs), bench_median(q, runs), lo, hi, runs);
	} else
		printf(")\n");
	fflush(stdout);
	return 0;
}

static void
usage(void)
{
	fprintf(stderr, "usage: bench_download -e EP [-E PEER_EP] [-k KEYDIR] "
	    "[-r RUNS] [-P CLIENTS] [-W WINDOW] [-T THREADS]\n"
	    "    [-H blake2b|sha256]\n");
	exit(2);
}

int
main(int argc, char **argv)
{
	const char *ep = NULL, *peer = NULL;
	int ch, runs = 5, clients = 4, rc = 0;
	char what[96];

	while ((ch = getopt(argc, argv, "e:E:k:r:P:W:T:H:")) != -1) {
		switch (ch) {
		case 'e': ep = optarg; break;
		case 'E': peer = optarg; break;
		case 'k': keydir = optarg; break;
		case 'r': runs = atoi(optarg); break;
		case 'P': clients = atoi(optarg); break;
		case 'W': window = atoi(optarg); break;
		case 'T': nthreads = atoi(optarg); break;
		case 'H':
			alg = !strcmp(optarg, "sha256") ? MANIFEST_SHA256 :
			    !strcmp(optarg, "blake2b") ? MANIFEST_BLAKE2B : -2;
			break;
		default: usage();
		}
	}
	if (ep == NULL || optind != argc || runs < 1 || runs > MAX_RUNS ||
	    clients < 1 || clients > MAX_CLIENTS || window < 1 ||
	    window > MAX_WINDOW || nthreads < 0 ||
	    nthreads > DLCHECK_MAX_THREADS || alg == -2)
		usage();
	if (sodium_init() < 0)
		return 1;
	memtune_chunks();	/* as deviced: chunk buffers reused */
	if (alg < 0)
		alg = manifest_alg_auto();
	snprintf(what, sizeof(what), "auth mac, %s, window %d%s, 1 client",
	    manifest_alg_name(alg), window, window > 1 && nthreads > 0 ?
	    " + check thread" : "");
	rc |= report(what, ep, peer, runs, 1);
	snprintf(what, sizeof(what), "auth mac, %s, window %d%s, %d clients "
	    "at once", manifest_alg_name(alg), window, window > 1 &&
	    nthreads > 0 ? " + check thread" : "", clients);
	if (clients > 1)
		rc |= report(what, ep, peer, runs, clients);
	return rc;
}
