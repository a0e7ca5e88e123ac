/*
 * bench_replicas: small-request throughput of a set of cloudd replicas, as
 * devices see it. Run by bench_replicas.sh, which starts the replicas on
 * one PostgreSQL store (authentication off) and passes their endpoints:
 *
 *   bench_replicas -e EP[,EP...] [-c CLIENTS] [-d SECONDS] [-m MODE]
 *
 * CLIENTS threads (default 16) each own one cooked REQ socket connected to
 * every endpoint, as deviced connects to every replica, so nanomsg spreads
 * the requests over the replicas. Each client keeps one request in flight
 * for SECONDS (default 3) and checks every reply. MODE:
 *   status    GetStatusReq: answered from memory on the loop thread (the
 *             replica's CPU is the limit)
 *   register  RegisterReq: one upsert into the shared devices table per
 *             request, committed before the reply (the store is the limit)
 * Prints one line: mode, endpoints, clients, requests/s, errors. Exits 1
 * when a client could not connect or most requests failed.
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <nanomsg/nn.h>
#include <nanomsg/reqrep.h>

#include "shared/clock.h"
#include "shared/wire.h"

#define MAX_CLIENTS 256

struct client {
	pthread_t	 th;
	int		 id;
	uint64_t	 ok, errors;
	char		 err[160];
};

static const char *eps;
static int reg_mode;
static atomic_int stop;
static pthread_barrier_t go;

static int
once(int sock, const char *dev, uint64_t rid, uint32_t user, char *err,
    size_t errlen)
{
	Dccl__Envelope e = DCCL__ENVELOPE__INIT, *r = NULL;
	Dccl__GetStatusReq gs = DCCL__GET_STATUS_REQ__INIT;
	Dccl__RegisterReq rg = DCCL__REGISTER_REQ__INIT;
	void *msg, *rep = NULL;
	size_t len;
	int n, rc = -1;

	e.version = WIRE_VERSION;
	e.device_id = (char *)dev;
	e.request_id = rid;
	if (reg_mode) {
		rg.user_id = user;
		e.body_case = DCCL__ENVELOPE__BODY_REGISTER_REQ;
		e.register_req = &rg;
	} else {
		e.body_case = DCCL__ENVELOPE__BODY_GET_STATUS;
		e.get_status = &gs;
	}
	if (wire_pack_nn(&e, &msg, &len) != 0) {
		snprintf(err, errlen, "pack failed");
		return -1;
	}
	if (nn_send(sock, &msg, NN_MSG, 0) < 0) {
		snprintf(err, errlen, "send: %s", nn_strerror(nn_errno()));
		nn_freemsg(msg);
		return -1;
	}
	if ((n = nn_recv(sock, &rep, NN_MSG, 0)) < 0) {
		snprintf(err, errlen, "recv: %s", nn_strerror(nn_errno()));
		return -1;
	}
	if (wire_unpack(rep, (size_t)n, &r, err, errlen) == 0) {
		int want = reg_mode ? DCCL__ENVELOPE__BODY_REGISTERED :
		    DCCL__ENVELOPE__BODY_STATUS;
		if ((int)r->body_case == want && r->request_id == rid)
			rc = 0;
		else
			snprintf(err, errlen, "reply %s", r->body_case ==
			    DCCL__ENVELOPE__BODY_ERROR ? r->error->message :
			    wire_body_name(r->body_case));
	}
	wire_free(r);
	nn_freemsg(rep);
	return rc;
}

static void *
client_main(void *arg)
{
	struct client *c = arg;
	char dev[32], err[160], *dup, *save = NULL, *ep;
	uint64_t rid = 1;
	int sock, tmo = 10000, bad = 0;

	snprintf(dev, sizeof(dev), "bench-rep-%03d", c->id);
	if ((sock = nn_socket(AF_SP, NN_REQ)) < 0 ||
	    nn_setsockopt(sock, NN_SOL_SOCKET, NN_RCVTIMEO, &tmo,
	    sizeof(tmo)) < 0)
		bad = 1;
	dup = strdup(eps);
	for (ep = strtok_r(dup, ",", &save); !bad && ep; ep = strtok_r(NULL,
	    ",", &save))
		if (nn_connect(sock, ep) < 0)
			bad = 1;
	free(dup);
	if (bad)
		snprintf(c->err, sizeof(c->err), "socket: %s",
		    nn_strerror(nn_errno()));
	/* The first exchange waits for a connection. */
	else if (once(sock, dev, rid++, (uint32_t)c->id % 10, c->err,
	    sizeof(c->err)) != 0)
		bad = 1;
	if (bad)
		c->errors = 1000000000;
	{
		/* Let the other pipes connect too, so load spreads. */
		struct timespec ts = { 0, 200 * 1000 * 1000 };
		nanosleep(&ts, NULL);
	}
	pthread_barrier_wait(&go);
	while (!bad && !atomic_load(&stop)) {
		if (once(sock, dev, rid++, (uint32_t)c->id % 10, err,
		    sizeof(err)) == 0)
			c->ok++;
		else if (c->errors++ == 0)
			snprintf(c->err, sizeof(c->err), "%s", err);
	}
	if (sock >= 0)
		nn_close(sock);
	return NULL;
}

int
main(int argc, char **argv)
{
	static struct client cl[MAX_CLIENTS];
	const char *mode = "status";
	double secs = 3, t0, t1;
	uint64_t ok = 0, errors = 0;
	int n = 16, ch, neps = 1;

	while ((ch = getopt(argc, argv, "e:c:d:m:h")) != -1) {
		switch (ch) {
		case 'e': eps = optarg; break;
		case 'c': n = atoi(optarg); break;
		case 'd': secs = strtod(optarg, NULL); break;
		case 'm': mode = optarg; break;
		default:
			fprintf(stderr, "usage: bench_replicas -e EP[,EP...] "
			    "[-c CLIENTS] [-d SECONDS] [-m status|register]\n");
			return 2;
		}
	}
	if (eps == NULL || n < 1 || n > MAX_CLIENTS || secs <= 0 ||
	    (strcmp(mode, "status") && strcmp(mode, "register"))) {
		fprintf(stderr, "bench_replicas: bad arguments\n");
		return 2;
	}
	reg_mode = strcmp(mode, "register") == 0;
	for (const char *p = eps; *p; p++)
		neps += *p == ',';
	pthread_barrier_init(&go, NULL, (unsigned)n + 1);
	for (int i = 0; i < n; i++) {
		cl[i].id = i;
		if (pthread_create(&cl[i].th, NULL, client_main, &cl[i]))
			abort();
	}
	pthread_barrier_wait(&go);
	t0 = clock_now();
	{
		struct timespec ts = { (time_t)secs,
		    (long)((secs - (time_t)secs) * 1e9) };
		while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
			;
	}
	atomic_store(&stop, 1);
	t1 = clock_now();
	for (int i = 0; i < n; i++) {
		pthread_join(cl[i].th, NULL);
		ok += cl[i].ok;
		errors += cl[i].errors;
		if (cl[i].errors && cl[i].err[0])
			fprintf(stderr, "client %d: %s\n", i, cl[i].err);
	}
	printf("%-8s replicas=%d clients=%d: %.0f req/s (%llu ok, %llu "
	    "errors)\n", mode, neps, n, ok / (t1 - t0),
	    (unsigned long long)ok, (unsigned long long)errors);
	return errors > ok ? 1 : 0;
}
