/*
 * loadtest: many authenticated devices against one cloudd, as raw REQ
 * sockets driven by nn_poll (no deviced), in two modes:
 *
 *   loadtest load EP [-d DEVICES] [-p PROCS] [-t SECONDS] [-D DIM]
 *       DEVICES devices (default 1000) over PROCS processes (default 4;
 *       nanomsg allows 512 sockets per process), each device keeping one
 *       request in flight for SECONDS: a mix of GetStatus (40%), GetModel
 *       chunks (20%), retrievals of 16 vectors of dim DIM, k=100 (20%) and
 *       patch uploads (20%). Prints throughput and p50/p99/max latency per
 *       request type, and the errors by code.
 *
 *   loadtest uploads EP -n N [-d DEVICES] -a ACKFILE
 *       N uploads spread over DEVICES devices (default 20), each resent with
 *       the same request id (new counter) until acknowledged; every Ack is
 *       appended to ACKFILE as "device request-id patch-id" before the next
 *       upload starts. The crash test (tests/integ/crash1000.sh) kills and
 *       restarts cloudd underneath it.
 *
 * Every request is signed (shared/auth.h) with $DCCL_AUTH_TOKEN; device key
 * files go to $LOADTEST_KEYS (default /dev/shm/dccl-loadtest.<pid>).
 * Patches are MetaPatch-shaped for the default model (2 hidden layers,
 * rank 16: -L, -R change it).
 */
#include <errno.h>
#include <math.h>
#include <nanomsg/nn.h>
#include <nanomsg/reqrep.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "shared/clock.h"
#include "shared/auth.h"
#include "shared/wire.h"

enum { T_STATUS, T_MODEL, T_RETRIEVE, T_UPLOAD, T_REGISTER, N_TYPES };
static const char *const tname[N_TYPES] = { "GetStatus", "GetModel",
	"Retrieve", "Upload", "Register" };
#define N_LAT	4608	/* latency buckets, see bucket() */
enum { PH_BURST, PH_STEADY, N_PHASES };	/* load test phases */

struct stats {
	uint64_t	n[N_TYPES], err[N_TYPES], lat[N_TYPES][N_LAT];
	double		max[N_TYPES];
	uint64_t	codes[16];
};

struct dev {
	char		 id[40];
	int		 sock;
	struct auth_dev	 a;
	int		 registered, waiting, type;
	uint64_t	 req, ctr, version, n_chunks, upload_req, uploads_done;
	double		 t0;
	double		 next;		/* load: send the next request then */
};

static const char *ep, *ackfile;
static int n_dev = 1000, n_proc = 4, seconds = 10, dim = 48, layers = 2,
    rank = 16;
static long n_uploads;
static double gap;	/* uploads: seconds between a device's uploads */
static double think = 0.5;	/* load: mean pause between requests, s */
static int mix[3] = { 40, 60, 80 };	/* cumulative %: status, model, retr */
static char keydir[512];

/* 10 us linear buckets up to 40.96 ms, then 2% log buckets. */
static int
bucket(double s)
{
	double us = s * 1e6;
	int b;

	if (us < 40960)
		return (int)(us / 10);
	b = 4096 + (int)(log(us / 40960) / log(1.02));
	return b < N_LAT ? b : N_LAT - 1;
}

static double
bucket_s(int b)
{
	if (b < 4096)
		return (b + 1) * 10e-6;
	return 40960e-6 * pow(1.02, b - 4096 + 1);
}

static void
send_env(struct dev *d, Dccl__Envelope *e, int type)
{
	void *msg;
	size_t len;

	e->version = WIRE_VERSION;
	e->device_id = d->id;
	if (e->request_id == 0)
		e->request_id = ++d->req;
	if (auth_dev_pack(&d->a, e, &msg, &len) != 0) {
		fprintf(stderr, "loadtest: cannot seal\n");
		exit(1);
	}
	d->ctr = e->counter;
	d->type = type;
	d->t0 = clock_now();
	if (nn_send(d->sock, &msg, NN_MSG, NN_DONTWAIT) < 0) {
		nn_freemsg(msg);
		d->waiting = 0;
		return;
	}
	d->waiting = 1;
}

static void
do_register(struct dev *d)
{
	Dccl__Envelope e = DCCL__ENVELOPE__INIT;
	Dccl__RegisterReq r = DCCL__REGISTER_REQ__INIT;

	r.user_id = 0;
	r.pubkey.data = d->a.pk;
	r.pubkey.len = 32;
	e.body_case = DCCL__ENVELOPE__BODY_REGISTER_REQ;
	e.register_req = &r;
	send_env(d, &e, T_REGISTER);
}

static void
do_upload(struct dev *d, uint64_t rid)
{
	Dccl__Envelope e = DCCL__ENVELOPE__INIT;
	Dccl__UploadPatch up = DCCL__UPLOAD_PATCH__INIT;
	Dccl__Tensor t[8], *tp[8];
	char names[8][24];
	uint32_t shape[1] = { (uint32_t)rank };
	float data[256];

	for (int i = 0; i < rank && i < 256; i++)
		data[i] = 0.01f * (float)((rid + (uint64_t)i) % 7);
	for (int l = 0; l < layers && l < 8; l++) {
		dccl__tensor__init(&t[l]);
		snprintf(names[l], sizeof(names[l]), "patch_m%d", l);
		t[l].name = names[l];
		t[l].n_shape = 1;
		t[l].shape = shape;
		t[l].n_data = (size_t)rank;
		t[l].data = data;
		tp[l] = &t[l];
	}
	up.base_version = d->version;
	up.n_tensors = (size_t)layers;
	up.tensors = tp;
	up.kind = "metapatch";
	e.request_id = rid;
	e.body_case = DCCL__ENVELOPE__BODY_UPLOAD;
	e.upload = &up;
	send_env(d, &e, T_UPLOAD);
}

static void
do_random(struct dev *d, unsigned *seed)
{
	Dccl__Envelope e = DCCL__ENVELOPE__INIT;
	Dccl__GetStatusReq gs = DCCL__GET_STATUS_REQ__INIT;
	Dccl__GetModelReq gm = DCCL__GET_MODEL_REQ__INIT;
	Dccl__RetrieveReq rq = DCCL__RETRIEVE_REQ__INIT;
	float vec[16 * 256];
	int r = rand_r(seed) % 100;

	if (r < mix[0]) {
		e.body_case = DCCL__ENVELOPE__BODY_GET_STATUS;
		e.get_status = &gs;
		send_env(d, &e, T_STATUS);
	} else if (r < mix[1]) {
		gm.version = d->version;
		gm.chunk_index = d->n_chunks ? (uint32_t)(rand_r(seed) %
		    d->n_chunks) : 0;
		e.body_case = DCCL__ENVELOPE__BODY_GET_MODEL;
		e.get_model = &gm;
		send_env(d, &e, T_MODEL);
	} else if (r < mix[2]) {
		int n = 16, dd = dim < 256 ? dim : 256;
		for (int i = 0; i < n * dd; i++)
			vec[i] = (float)(rand_r(seed) % 1000) / 1000.0f - 0.5f;
		rq.model_version = d->version;
		rq.dim = (uint32_t)dd;
		rq.n = (uint32_t)n;
		rq.n_vectors = (size_t)(n * dd);
		rq.vectors = vec;
		rq.k = 100;
		e.body_case = DCCL__ENVELOPE__BODY_RETRIEVE;
		e.retrieve = &rq;
		send_env(d, &e, T_RETRIEVE);
	} else
		do_upload(d, ++d->req);
}

static int
open_dev(struct dev *d, int i)
{
	char path[700];
	int ms = 1000000;

	snprintf(d->id, sizeof(d->id), "load-%d", i);
	snprintf(path, sizeof(path), "%s/%s.key", keydir, d->id);
	if (auth_dev_open(&d->a, path, getenv("DCCL_AUTH_TOKEN"), AUTH_MAC))
		return -1;
	d->req = (uint64_t)time(NULL) << 20;	/* fresh ids per run */
	if ((d->sock = nn_socket(AF_SP, NN_REQ)) < 0)
		return -1;
	/* Never re-sent by nanomsg: a reply arriving for a re-sent request
	 * makes 1.1.5's REQ abort (see deviced's transmit()). */
	nn_setsockopt(d->sock, NN_REQ, NN_REQ_RESEND_IVL, &ms, sizeof(ms));
	if (nn_connect(d->sock, ep) < 0)
		return -1;
	return 0;
}

/* Receives d's reply if there is one; returns its envelope or NULL. */
static Dccl__Envelope *
take_reply(struct dev *d)
{
	Dccl__Envelope *e = NULL;
	void *buf = NULL;
	char err[256];
	int n = nn_recv(d->sock, &buf, NN_MSG, NN_DONTWAIT);

	if (n < 0)
		return NULL;
	d->waiting = 0;
	if (wire_unpack(buf, (size_t)n, &e, err, sizeof(err)) != 0) {
		wire_free(e);
		nn_freemsg(buf);
		return NULL;
	}
	if (auth_dev_check(&d->a, buf, (size_t)n, e, d->ctr, d->type ==
	    T_REGISTER ? DCCL__ENVELOPE__BODY_REGISTER_REQ : 0) < 0 &&
	    e->body_case != DCCL__ENVELOPE__BODY_ERROR) {
		fprintf(stderr, "loadtest: %s: forged reply\n", d->id);
		wire_free(e);
		nn_freemsg(buf);
		return NULL;
	}
	if (e->body_case == DCCL__ENVELOPE__BODY_REGISTERED &&
	    e->registered->cloud_pubkey.len == 32) {
		auth_dev_set_cloud(&d->a, e->registered->cloud_pubkey.data,
		    (int)e->registered->auth_mode);
		d->registered = 1;
		d->version = e->registered->model_version;
	}
	if (e->body_case == DCCL__ENVELOPE__BODY_MODEL_CHUNK)
		d->n_chunks = e->model_chunk->n_chunks;
	nn_freemsg(buf);
	return e;
}

/*
 * Phase barrier between the load processes: each child writes a byte up
 * and waits for one down; the parent releases them once all arrived.
 */
static int bar_up[2] = { -1, -1 }, bar_down[2] = { -1, -1 };

static void
barrier_wait(void)
{
	char c = 0;

	if (write(bar_up[1], &c, 1) != 1 || read(bar_down[0], &c, 1) != 1)
		exit(1);
}

static int
barrier_release(int kids)
{
	char c;

	for (int i = 0; i < kids; i++)
		if (read(bar_up[0], &c, 1) != 1)
			return -1;
	for (int i = 0; i < kids; i++)
		if (write(bar_down[1], &c, 1) != 1)
			return -1;
	return 0;
}

/*
 * Receives d's reply, if any, into st's latency of d's request type as
 * seen at t; returns 1 if a reply was taken.
 */
static int
take_timed(struct dev *d, struct stats *st, double t)
{
	Dccl__Envelope *e = take_reply(d);
	double dt;

	if (e == NULL)
		return 0;
	dt = t - d->t0;
	st->n[d->type]++;
	st->lat[d->type][bucket(dt)]++;
	if (dt > st->max[d->type])
		st->max[d->type] = dt;
	if (e->body_case == DCCL__ENVELOPE__BODY_ERROR) {
		st->err[d->type]++;
		st->codes[e->error->code < 16 ? e->error->code : 0]++;
	}
	wire_free(e);
	return 1;
}

/* One process's share of the load test. */
static void
run_load(int first, int n, int fd)
{
	struct dev *dv = calloc((size_t)n, sizeof(*dv));
	struct nn_pollfd *pf = calloc((size_t)n, sizeof(*pf));
	static struct stats st[N_PHASES];
	unsigned seed = (unsigned)first * 7919u + 1;
	double end, t;

	for (int i = 0; i < n; i++)
		if (open_dev(&dv[i], first + i) != 0) {
			fprintf(stderr, "loadtest: device %d: %s\n", first + i,
			    nn_strerror(nn_errno()));
			exit(1);
		}
	/* Enroll everyone first (not timed as load). */
	for (int i = 0; i < n; i++)
		do_register(&dv[i]);
	end = clock_now() + 30;
	for (int done = 0; done < n && clock_now() < end;) {
		for (int i = 0; i < n; i++) {
			pf[i].fd = dv[i].sock;
			pf[i].events = NN_POLLIN;
		}
		if (nn_poll(pf, n, 100) <= 0)
			continue;
		for (int i = 0; i < n; i++) {
			Dccl__Envelope *e;
			if (!(pf[i].revents & NN_POLLIN) ||
			    (e = take_reply(&dv[i])) == NULL)
				continue;
			if (dv[i].registered)
				done++;
			else
				do_register(&dv[i]);	/* busy: again */
			wire_free(e);
		}
	}
	/*
	 * Burst: every device sends one request at the same instant (a
	 * herd, as after a cloud restart), timed until all are answered.
	 * Barriers keep the processes' phases aligned.
	 */
	barrier_wait();
	end = clock_now() + 30;
	for (int i = 0; i < n; i++)
		do_random(&dv[i], &seed);
	for (int left = n; left > 0 && clock_now() < end;) {
		for (int i = 0; i < n; i++) {
			pf[i].fd = dv[i].sock;
			pf[i].events = NN_POLLIN;
		}
		(void)nn_poll(pf, n, 2);
		t = clock_now();
		for (int i = 0; i < n; i++)
			if (pf[i].revents & NN_POLLIN &&
			    take_timed(&dv[i], &st[PH_BURST], t))
				left--;
	}
	/*
	 * Steady: devices start at random points of one think time, so the
	 * timed mix measures the load, not the lockstep of the burst.
	 */
	barrier_wait();
	t = clock_now();
	end = t + seconds;
	for (int i = 0; i < n; i++) {
		dv[i].waiting = 0;
		dv[i].next = think > 0 ? t + think * 2 *
		    (rand_r(&seed) % 1000) / 1000.0 : t;
	}
	while ((t = clock_now()) < end) {
		for (int i = 0; think > 0 && i < n; i++)
			if (!dv[i].waiting && dv[i].next <= t) {
				dv[i].next = 1e300;
				do_random(&dv[i], &seed);
			}
		for (int i = 0; think <= 0 && i < n; i++)
			if (!dv[i].waiting)
				do_random(&dv[i], &seed);
		for (int i = 0; i < n; i++) {
			pf[i].fd = dv[i].sock;
			pf[i].events = NN_POLLIN;
		}
		(void)nn_poll(pf, n, 2);
		t = clock_now();
		for (int i = 0; i < n; i++) {
			struct dev *d = &dv[i];
			if (!(pf[i].revents & NN_POLLIN) ||
			    !take_timed(d, &st[PH_STEADY], t))
				continue;
			/* Think time, uniform in [0, 2 * mean]. */
			d->next = t + think * 2 * (rand_r(&seed) % 1000) /
			    1000.0;
		}
	}
	for (size_t off = 0; off < sizeof(st);) {
		ssize_t w = write(fd, (char *)st + off, sizeof(st) - off);
		if (w <= 0)
			exit(1);
		off += (size_t)w;
	}
	for (int i = 0; i < n; i++)
		nn_close(dv[i].sock);
	free(dv);
	free(pf);
}

/* Reads exactly n bytes (the stats outgrow the pipe buffer). */
static int
readn(int fd, void *buf, size_t n)
{
	size_t got = 0;

	while (got < n) {
		ssize_t r = read(fd, (char *)buf + got, n - got);
		if (r <= 0)
			return -1;
		got += (size_t)r;
	}
	return 0;
}

static double
pct(const uint64_t *lat, uint64_t n, double q)
{
	uint64_t want = (uint64_t)(q * (double)n), c = 0;

	if (n == 0)
		return 0;
	for (int b = 0; b < N_LAT; b++) {
		c += lat[b];
		if (c > want)
			return bucket_s(b);
	}
	return bucket_s(N_LAT - 1);
}

/* Prints one phase's table: throughput over secs seconds, latencies. */
static uint64_t
print_phase(const struct stats *st, double secs)
{
	uint64_t all = 0;

	printf("%-10s %9s %9s %8s %9s %9s %9s\n", "type", "requests", "req/s",
	    "errors", "p50 ms", "p99 ms", "max ms");
	for (int t = 0; t < T_REGISTER; t++) {
		all += st->n[t];
		if (st->n[t] == 0)
			continue;
		printf("%-10s %9llu %9.0f %8llu %9.2f %9.2f %9.2f\n", tname[t],
		    (unsigned long long)st->n[t], st->n[t] / secs,
		    (unsigned long long)st->err[t],
		    pct(st->lat[t], st->n[t], 0.5) * 1e3,
		    pct(st->lat[t], st->n[t], 0.99) * 1e3, st->max[t] * 1e3);
	}
	printf("%-10s %9llu %9.0f\n", "all", (unsigned long long)all,
	    all / secs);
	for (int c = 1; c < 16; c++)
		if (st->codes[c])
			printf("errors %s: %llu\n", wire_error_name(c),
			    (unsigned long long)st->codes[c]);
	return all;
}

static int
load_main(void)
{
	static struct stats tot[N_PHASES], one[N_PHASES];
	int per = (n_dev + n_proc - 1) / n_proc, kids_n = 0;
	pid_t *kids = calloc((size_t)n_proc, sizeof(pid_t));
	int *rfd = calloc((size_t)n_proc, sizeof(int));
	double burst_s;
	uint64_t all;

	if (pipe(bar_up) != 0 || pipe(bar_down) != 0)
		return 1;
	/* Fork before any nanomsg socket exists (nanomsg does not survive
	 * a fork). */
	for (int p = 0; p < n_proc; p++) {
		int first = p * per, n = first + per > n_dev ? n_dev - first :
		    per;
		int fds[2];
		if (n <= 0)
			break;
		/* A pipe each: the stats outgrow PIPE_BUF, so writes from
		 * processes that finish together would interleave. */
		if (pipe(fds) != 0)
			return 1;
		if ((kids[p] = fork()) == 0) {
			close(fds[0]);
			close(bar_up[0]);
			close(bar_down[1]);
			run_load(first, n, fds[1]);
			_exit(0);
		}
		close(fds[1]);
		rfd[kids_n++] = fds[0];
	}
	close(bar_up[1]);
	close(bar_down[0]);
	/* Registered → burst; burst answered → steady. Bounded: a process
	 * that died would leave the others waiting. */
	alarm((unsigned)seconds + 120);
	if (barrier_release(kids_n) != 0 || barrier_release(kids_n) != 0) {
		fprintf(stderr, "loadtest: a load process died\n");
		return 1;
	}
	for (int k = 0; k < kids_n; k++) {
		if (readn(rfd[k], one, sizeof(one)) != 0) {
			fprintf(stderr, "loadtest: a load process died\n");
			return 1;
		}
		close(rfd[k]);
		for (int ph = 0; ph < N_PHASES; ph++) {
			struct stats *a = &tot[ph], *o = &one[ph];
			for (int t = 0; t < N_TYPES; t++) {
				a->n[t] += o->n[t];
				a->err[t] += o->err[t];
				if (o->max[t] > a->max[t])
					a->max[t] = o->max[t];
				for (int b = 0; b < N_LAT; b++)
					a->lat[t][b] += o->lat[t][b];
			}
			for (int c = 0; c < 16; c++)
				a->codes[c] += o->codes[c];
		}
	}
	for (int p = 0; p < n_proc; p++)
		if (kids[p] > 0)
			waitpid(kids[p], NULL, 0);
	burst_s = 0;
	for (int t = 0; t < N_TYPES; t++)
		if (tot[PH_BURST].max[t] > burst_s)
			burst_s = tot[PH_BURST].max[t];
	printf("burst: all %d devices send one request at the same instant; "
	    "all answered in %.0f ms\n", n_dev, burst_s * 1e3);
	print_phase(&tot[PH_BURST], burst_s > 0 ? burst_s : 1);
	if (think > 0)
		printf("steady: %d devices in %d processes, %d s, each "
		    "pausing 0..%.0f ms (mean %.0f) between requests\n", n_dev,
		    n_proc, seconds, 2e3 * think, 1e3 * think);
	else
		printf("steady: %d devices in %d processes, %d s, closed "
		    "loop: one request always in flight per device\n", n_dev,
		    n_proc, seconds);
	all = print_phase(&tot[PH_STEADY], seconds);
	printf("RESULT p99_status_ms=%.2f total=%llu burst_ms=%.0f "
	    "p99_status_burst_ms=%.2f\n",
	    pct(tot[PH_STEADY].lat[T_STATUS], tot[PH_STEADY].n[T_STATUS],
	    0.99) * 1e3, (unsigned long long)all, burst_s * 1e3,
	    pct(tot[PH_BURST].lat[T_STATUS], tot[PH_BURST].n[T_STATUS],
	    0.99) * 1e3);
	free(kids);
	free(rfd);
	return all > 0 ? 0 : 1;
}

/* Crash-test client: every upload resent until acknowledged. */
static int
uploads_main(void)
{
	struct dev *dv = calloc((size_t)n_dev, sizeof(*dv));
	struct nn_pollfd *pf = calloc((size_t)n_dev, sizeof(*pf));
	FILE *ack = fopen(ackfile, "a");
	long per = (n_uploads + n_dev - 1) / n_dev, acked = 0, resent = 0;
	double deadline = clock_now() + 600;
	int never = 1000000;	/* ms: nanomsg never re-sends by itself */

	if (ack == NULL || dv == NULL)
		return 1;
	setvbuf(ack, NULL, _IOLBF, 0);
	for (int i = 0; i < n_dev; i++) {
		if (open_dev(&dv[i], i) != 0)
			return 1;
		dv[i].req = 0;
		dv[i].upload_req = 0;
		do_register(&dv[i]);
	}
	while (acked < n_uploads && clock_now() < deadline) {
		double t = clock_now();
		for (int i = 0; i < n_dev; i++) {
			struct dev *d = &dv[i];
			/*
			 * Lost reply (cloud killed): resend, new counter, on
			 * a new socket. On the same one a late reply to the
			 * old send would make nanomsg 1.1.5's REQ abort.
			 */
			if (d->waiting && t - d->t0 > 0.5) {
				resent++;
				d->waiting = 0;
				nn_close(d->sock);
				if ((d->sock = nn_socket(AF_SP, NN_REQ)) < 0 ||
				    nn_connect(d->sock, ep) < 0) {
					fprintf(stderr, "loadtest: reopen: %s\n",
					    nn_strerror(nn_errno()));
					return 1;
				}
				nn_setsockopt(d->sock, NN_REQ,
				    NN_REQ_RESEND_IVL, &never, sizeof(never));
				if (!d->registered)
					do_register(d);
				else
					do_upload(d, d->upload_req);
			} else if (!d->waiting && d->t0 + 0.05 < t) {
				if (!d->registered)
					do_register(d);
				else if (d->upload_req != 0)
					do_upload(d, d->upload_req);
			}
			pf[i].fd = d->sock;
			pf[i].events = NN_POLLIN;
		}
		if (nn_poll(pf, n_dev, 20) <= 0)
			continue;
		for (int i = 0; i < n_dev; i++) {
			struct dev *d = &dv[i];
			Dccl__Envelope *e;
			if (!(pf[i].revents & NN_POLLIN) ||
			    (e = take_reply(d)) == NULL)
				continue;
			if (e->body_case == DCCL__ENVELOPE__BODY_ACK) {
				fprintf(ack, "%s %llu %llu%s\n", d->id,
				    (unsigned long long)e->request_id,
				    (unsigned long long)e->ack->patch_id,
				    e->ack->duplicate ? " dup" : "");
				acked++;
				d->uploads_done++;
				d->upload_req = d->uploads_done < (uint64_t)per
				    ? 1000 + d->uploads_done : 0;
				/* The next one goes after the gap (below). */
				d->t0 = clock_now() + gap - 0.05;
			} else if (e->body_case ==
			    DCCL__ENVELOPE__BODY_REGISTERED) {
				d->upload_req = 1000;
				do_upload(d, d->upload_req);
			} else if (e->body_case == DCCL__ENVELOPE__BODY_ERROR &&
			    (e->error->code ==
			    DCCL__ERROR_CODE__E_NOT_REGISTERED ||
			    e->error->code ==
			    DCCL__ERROR_CODE__E_UNAUTHENTICATED))
				d->registered = 0;	/* enroll again */
			/* other errors: resent after the idle delay */
			wire_free(e);
		}
	}
	fclose(ack);
	printf("uploads: %ld acknowledged of %ld (%ld resends after lost "
	    "replies)\n", acked, n_uploads, resent);
	for (int i = 0; i < n_dev; i++)
		nn_close(dv[i].sock);
	free(dv);
	free(pf);
	return acked >= n_uploads ? 0 : 1;
}

int
main(int argc, char **argv)
{
	const char *mode;
	int ch, rc;

	if (argc < 3) {
		fprintf(stderr, "usage: loadtest load|uploads EP [-d N] [-p P] "
		    "[-t S] [-D DIM] [-n N] [-a FILE] [-L LAYERS] [-R RANK]\n");
		return 2;
	}
	mode = argv[1];
	ep = argv[2];
	optind = 3;
	while ((ch = getopt(argc, argv, "d:p:t:D:n:a:L:R:w:z:")) != -1) {
		switch (ch) {
		case 'd': n_dev = atoi(optarg); break;
		case 'p': n_proc = atoi(optarg); break;
		case 't': seconds = atoi(optarg); break;
		case 'D': dim = atoi(optarg); break;
		case 'n': n_uploads = atol(optarg); break;
		case 'a': ackfile = optarg; break;
		case 'L': layers = atoi(optarg); break;
		case 'R': rank = atoi(optarg); break;
		case 'w': gap = atoi(optarg) / 1e3; break;
		case 'z': think = atoi(optarg) / 1e3; break;
		default: return 2;
		}
	}
	if (getenv("LOADTEST_MIX") != NULL) {	/* "status,model,retrieve" % */
		int a = 0, b = 0, c = 0;
		if (sscanf(getenv("LOADTEST_MIX"), "%d,%d,%d", &a, &b, &c) == 3) {
			mix[0] = a;
			mix[1] = a + b;
			mix[2] = a + b + c;
		}
	}
	if (getenv("LOADTEST_KEYS") != NULL)
		snprintf(keydir, sizeof(keydir), "%s", getenv("LOADTEST_KEYS"));
	else
		snprintf(keydir, sizeof(keydir), "/dev/shm/dccl-loadtest.%d",
		    (int)getpid());
	mkdir(keydir, 0700);
	signal(SIGPIPE, SIG_IGN);
	if (!strcmp(mode, "load"))
		rc = load_main();
	else if (!strcmp(mode, "uploads") && ackfile != NULL && n_uploads > 0) {
		if (!strcmp(mode, "uploads"))
			n_proc = 1;
		rc = uploads_main();
	} else
		rc = 2;
	if (getenv("LOADTEST_KEYS") == NULL) {
		char cmd[600];
		snprintf(cmd, sizeof(cmd), "rm -rf '%s'", keydir);
		if (system(cmd) != 0)
			rc = rc ? rc : 1;
	}
	return rc;
}
