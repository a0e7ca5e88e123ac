/*
 * bench_download: authenticated model download from cloudd, as deviced
 * does it (RegisterReq with the enrollment token, then every chunk in
 * order with a MACed GetModelReq, each reply's MAC checked, the BLAKE2b-256
 * of the whole checked against the chunks' checksum). Run by
 * bench_download.sh:
 *
 *   bench_download -e EP [-E PEER_EP] [-k KEYDIR] [-r RUNS] [-P CLIENTS]
 *
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
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <nanomsg/nn.h>
#include <nanomsg/reqrep.h>

#include "shared/auth.h"
#include "shared/clock.h"
#include "shared/wire.h"
#include "tests/bench/bench_client.h"

#define MAX_RUNS	16
#define MAX_CLIENTS	16

static const char *keydir = ".";
/* Fresh device ids per run: each download starts with a full rate-limit
 * bucket (limits.burst 400 > 256 chunks of a 64 MiB model), as a device
 * downloading a new version would. */
static int run_no;

/*
 * Registers as dev (key file under keydir) and downloads the current
 * model; its size in *size and the seconds of the chunk loop in *secs.
 * 0 on success.
 */
static int
download(const char *ep, const char *dev, uint64_t *size, double *secs,
    char *err, size_t errlen)
{
	Dccl__Envelope e = DCCL__ENVELOPE__INIT, *r;
	Dccl__RegisterReq rg = DCCL__REGISTER_REQ__INIT;
	Dccl__GetModelReq gm = DCCL__GET_MODEL_REQ__INIT;
	struct auth_dev a;
	char path[1024];
	uint8_t sum[32], want[32];
	uint8_t *blob = NULL;
	uint64_t total = 0, version, cs;
	uint32_t n_chunks = 1;
	int sock, rc = -1;
	double t0;

	snprintf(path, sizeof(path), "%s/%s.key", keydir, dev);
	if (auth_dev_open(&a, path, getenv("DCCL_AUTH_TOKEN"), AUTH_MAC)) {
		snprintf(err, errlen, "cannot open the key file");
		return -1;
	}
	if ((sock = bench_connect(ep, 30000, err, errlen)) < 0)
		return -1;
	e.version = WIRE_VERSION;
	e.device_id = (char *)dev;
	e.request_id = 1;
	rg.pubkey.data = a.pk;
	rg.pubkey.len = 32;
	rg.software = "bench_download";
	e.body_case = DCCL__ENVELOPE__BODY_REGISTER_REQ;
	e.register_req = &rg;
	if ((r = bench_call(sock, &a, &e, err, errlen)) == NULL)
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
	cs = r->registered->chunk_size;
	wire_free(r);
	e.body_case = DCCL__ENVELOPE__BODY_GET_MODEL;
	e.get_model = &gm;
	gm.version = version;
	t0 = clock_now();
	for (uint32_t i = 0; i < n_chunks; i++) {
		Dccl__ModelChunk *c;

		e.request_id = 2 + i;
		gm.chunk_index = i;
		if ((r = bench_call(sock, &a, &e, err, errlen)) == NULL)
			goto done;
		c = r->model_chunk;
		if (r->body_case != DCCL__ENVELOPE__BODY_MODEL_CHUNK ||
		    c->version != version || c->chunk_index != i ||
		    c->checksum.len != 32 || c->n_chunks == 0 ||
		    (i > 0 && (c->n_chunks != n_chunks ||
		    c->total_size != total)) ||
		    (uint64_t)i * cs + c->data.len > c->total_size ||
		    (i + 1 < c->n_chunks && c->data.len != cs)) {
			snprintf(err, errlen, "chunk %u: bad reply", i);
			wire_free(r);
			goto done;
		}
		if (i == 0) {
			n_chunks = c->n_chunks;
			total = c->total_size;
			memcpy(want, c->checksum.data, 32);
			if ((blob = malloc(total ? total : 1)) == NULL) {
				snprintf(err, errlen, "out of memory");
				wire_free(r);
				goto done;
			}
		}
		memcpy(blob + (uint64_t)i * cs, c->data.data, c->data.len);
		wire_free(r);
	}
	*secs = clock_now() - t0;
	*size = total;
	crypto_generichash(sum, sizeof(sum), blob, total, NULL, 0);
	if (memcmp(sum, want, 32) != 0) {
		snprintf(err, errlen, "BLAKE2b-256 mismatch");
		goto done;
	}
	rc = 0;
done:
	free(blob);
	nn_close(sock);
	return rc;
}

static int
cmp_dbl(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

static double
median(const double *v, int n)
{
	double s[MAX_RUNS];

	memcpy(s, v, (size_t)n * sizeof(*s));
	qsort(s, (size_t)n, sizeof(*s), cmp_dbl);
	return n % 2 ? s[n / 2] : (s[n / 2 - 1] + s[n / 2]) / 2;
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
		snprintf(dev, sizeof(dev), "bdl-%s-%d-1", tag, ++run_no);
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
			snprintf(dev, sizeof(dev), "bdl-%s-%d-%d", tag, run_no,
			    k);
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
	    median(a, runs), runs);
	if (peer != NULL) {
		double lo = q[0], hi = q[0];
		for (int i = 1; i < runs; i++) {
			lo = q[i] < lo ? q[i] : lo;
			hi = q[i] > hi ? q[i] : hi;
		}
		printf("); peer %.0f MB/s; pairwise ratio median %.2f "
		    "[%.2f, %.2f] over %d alternating pairs\n",
		    median(b, runs), median(q, runs), lo, hi, runs);
	} else
		printf(")\n");
	fflush(stdout);
	return 0;
}

static void
usage(void)
{
	fprintf(stderr, "usage: bench_download -e EP [-E PEER_EP] [-k KEYDIR] "
	    "[-r RUNS] [-P CLIENTS]\n");
	exit(2);
}

int
main(int argc, char **argv)
{
	const char *ep = NULL, *peer = NULL;
	int ch, runs = 5, clients = 4, rc = 0;
	char what[64];

	while ((ch = getopt(argc, argv, "e:E:k:r:P:")) != -1) {
		switch (ch) {
		case 'e': ep = optarg; break;
		case 'E': peer = optarg; break;
		case 'k': keydir = optarg; break;
		case 'r': runs = atoi(optarg); break;
		case 'P': clients = atoi(optarg); break;
		default: usage();
		}
	}
	if (ep == NULL || optind != argc || runs < 1 || runs > MAX_RUNS ||
	    clients < 1 || clients > MAX_CLIENTS)
		usage();
	if (sodium_init() < 0)
		return 1;
	rc |= report("auth mac, 1 client", ep, peer, runs, 1);
	snprintf(what, sizeof(what), "auth mac, %d clients at once", clients);
	if (clients > 1)
		rc |= report(what, ep, peer, runs, clients);
	return rc;
}
