/*
 * dccl-probe: sends one crafted request to a cloudd endpoint and prints the
 * reply as "REPLY <body>", "ERROR <code>: <message>" or "NO-REPLY". The
 * integration tests use it to check that hostile or broken input gets a
 * typed error and that cloudd keeps serving.
 *
 *   dccl-probe EP garbage|version|oldversion|nobody|unregistered|replybody|admin|
 *              status|register DEV|nan-upload DEV|oversize BYTES|
 *              unsigned|forged|replay|badtoken DEV|other-device A B|
 *              bignorm-upload DEV|upload DEV [REQID]|flood DEV N [STOPFILE]|
 *              burst DEV N [FIRST]|getmodel DEV VERSION CHUNK|
 *              slice DEV USER OUTDIR|model-rows FILE USER|
 *              mitm-rows CLOUD-EP SECS (EP: where to listen)|
 *              retrieve DEV K N DIM|hijack DEV KEYFILE USER|resend DEV|
 *              amplify BYTES|mitm CLOUD-EP SECS (EP: where to listen)|
 *              mitm-dl CLOUD-EP SECS (EP: where to listen)|
 *              forge-log|norm-upload DEV REQID X (every entry X)|
 *              nonce-reuse DEV N|enroll-flood N|resend-chunk DEV|
 *              stranger ID (signed, under an id never enrolled)|
 *              ofa-alternate DEV N|
 *              report DEV good|nan|inf|grid|many|huge|pairw|pairw-bad|
 *                  pairw-nodef [VERSION]|
 *              selection DEV|
 *              announce VERSION [unsigned|forged|CSK-HEX] (EP: a PUB
 *              endpoint to bind; CSK-HEX: sign as the cloud whose X25519
 *              secret key that is, read from its store by the test)
 *
 * burst sends N uploads of DEV (request ids FIRST..FIRST+N-1, FIRST
 * defaulting to 1000) and the first
 * one again, each on a REQ socket of its own, all at once once every
 * socket is connected, so that cloudd reads them in one loop iteration
 * (one message per connection at a time in nanomsg); then prints a line
 * "ACK request-id patch-id new|dup" or "ERROR ..." per reply. Unsigned:
 * for a cloudd with auth.mode=off (without a token), as one device's
 * counters from many sockets would arrive out of order.
 *
 * mitm-dl is an on-path attacker without keys on a download (protocol 5,
 * auth.mode mac): it flips one bit in the middle of every model chunk it
 * forwards and, every second time, once it has seen every chunk of the
 * model, rewrites the whole-model checksum the last chunk carries to that
 * of the tampered model (so that only the manifest tells); and it answers
 * the second GetManifest it sees with the first manifest reply it
 * recorded, relabelled with this request's id and counter (a replay, its
 * MAC made for an earlier request). Prints a line per
 * chunk tampered and per manifest replayed as it goes (it is killed).
 *
 * Authentication (shared/auth.h): with $DCCL_AUTH_TOKEN set, the probe is
 * a well-behaved device except where the probe says otherwise: it keeps a
 * key file per device id in $DCCL_PROBE_DIR (default .), enrolls a device
 * the first time it speaks for it, and signs every request. Without the
 * token it sends everything unsigned, as before authentication existed.
 */
#include <errno.h>
#include <nanomsg/nn.h>
#include <nanomsg/pubsub.h>
#include <nanomsg/reqrep.h>
#include <sodium.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "shared/auth.h"
#include "shared/ml/ctr_slice.h"
#include "shared/wire.h"

static int sock;
static const char *token;

static int
recv_reply(Dccl__Envelope **out, void **raw, size_t *rawlen)
{
	void *rep = NULL;
	char err[256];
	int n;

	*out = NULL;
	if ((n = nn_recv(sock, &rep, NN_MSG, 0)) < 0)
		return -1;
	if (wire_unpack(rep, (size_t)n, out, err, sizeof(err)) != 0) {
		printf("BAD-REPLY: %s\n", err);
		wire_free(*out);
		*out = NULL;
		nn_freemsg(rep);
		return -2;
	}
	*raw = rep;
	*rawlen = (size_t)n;
	return 0;
}

static void
print_reply(const Dccl__Envelope *e)
{
	if (e->body_case == DCCL__ENVELOPE__BODY_ERROR)
		printf("ERROR %s: %s\n", wire_error_name(e->error->code),
		    e->error->message);
	else
		printf("REPLY %s\n", wire_body_name(e->body_case));
	/* Federated selection: the choices and the report's count. */
	if (e->body_case == DCCL__ENVELOPE__BODY_SELECTION)
		for (size_t i = 0; i < e->selection->n_choices; i++) {
			const Dccl__MethodChoice *c = e->selection->choices[i];
			printf("CHOICE %s lr %g steps %u point %u %s devices %u "
			    "n %llu round %llu\n", c->method, c->lr, c->steps,
			    c->point, c->by_evidence ? "evidence" : "default",
			    c->devices, (unsigned long long)c->n,
			    (unsigned long long)e->selection->round);
			if (c->n_pair_weights < 2)
				continue;
			printf("PAIRW %s weight %g %s group %u devices %u net",
			    c->method, c->pair_weight, c->pair_by_evidence ?
			    "evidence" : "default", c->group, c->pair_devices);
			for (size_t k = 0; k < c->n_pair_weights &&
			    k < c->n_pair_net; k++)
				printf(" %g:%g", c->pair_weights[k],
				    c->pair_net[k]);
			printf("\n");
		}
	if (e->body_case == DCCL__ENVELOPE__BODY_REPORT_ACK)
		printf("COUNTED %u%s\n", e->report_ack->methods,
		    e->report_ack->duplicate ? " duplicate" : "");
}

/* Sends buf, prints the reply; a = the device (NULL: do not verify). */
static int
exchange_dev(struct auth_dev *a, const void *buf, size_t len, uint64_t ctr,
    int body)
{
	Dccl__Envelope *e;
	void *raw;
	size_t rawlen;
	int rc;

	if (nn_send(sock, buf, len, 0) < 0) {
		printf("SEND-FAILED: %s\n", nn_strerror(nn_errno()));
		return 1;
	}
	if ((rc = recv_reply(&e, &raw, &rawlen)) == -1) {
		printf("NO-REPLY\n");
		return 0;
	}
	if (rc != 0)
		return 0;
	if (a != NULL && a->want != AUTH_OFF && auth_dev_check(a, raw, rawlen,
	    e, ctr, body) < 0)
		printf("FORGED-REPLY ");
	print_reply(e);
	wire_free(e);
	nn_freemsg(raw);
	return 0;
}

static int
exchange(const void *buf, size_t len)
{
	return exchange_dev(NULL, buf, len, 0, 0);
}

/* Packs e as device a would (signed) and sends it. */
static int
send_dev(struct auth_dev *a, Dccl__Envelope *e)
{
	void *msg;
	size_t len;
	int rc;

	if (auth_dev_pack(a, e, &msg, &len) != 0)
		return 1;
	rc = exchange_dev(a, msg, len, e->counter, e->body_case);
	nn_freemsg(msg);
	return rc;
}

/* The burst probe (see the top): 0, or 1 when a socket failed. */
static int
burst(const char *ep, Dccl__Envelope *e, int n, uint64_t first)
{
	int socks[257], tmo = 10000, rc = 0;
	struct timespec ts = { 0, 300 * 1000 * 1000 };

	if (n < 1 || n > 256) {
		fprintf(stderr, "dccl-probe: burst: N must be 1..256\n");
		return 2;
	}
	for (int i = 0; i <= n; i++)
		if ((socks[i] = nn_socket(AF_SP, NN_REQ)) < 0 ||
		    nn_setsockopt(socks[i], NN_SOL_SOCKET, NN_RCVTIMEO, &tmo,
		    sizeof(tmo)) < 0 || nn_connect(socks[i], ep) < 0) {
			fprintf(stderr, "dccl-probe: %s\n",
			    nn_strerror(nn_errno()));
			return 1;
		}
	nanosleep(&ts, NULL);	/* nn_connect is asynchronous */
	for (int i = 0; i <= n; i++) {
		void *msg;
		size_t len;
		e->request_id = first + (uint64_t)(i < n ? i : 0);
		if (wire_pack_nn(e, &msg, &len) != 0 ||
		    nn_send(socks[i], &msg, NN_MSG, 0) < 0) {
			printf("SEND-FAILED: %s\n", nn_strerror(nn_errno()));
			return 1;
		}
	}
	for (int i = 0; i <= n; i++) {
		Dccl__Envelope *r;
		void *raw;
		size_t rawlen;
		int save = sock;
		sock = socks[i];
		if (recv_reply(&r, &raw, &rawlen) != 0) {
			printf("NO-REPLY\n");
			rc = 1;
		} else if (r->body_case == DCCL__ENVELOPE__BODY_ACK) {
			printf("ACK %llu %llu %s\n",
			    (unsigned long long)r->request_id,
			    (unsigned long long)r->ack->patch_id,
			    r->ack->duplicate ? "dup" : "new");
		} else
			print_reply(r);
		if (r != NULL) {
			wire_free(r);
			nn_freemsg(raw);
		}
		sock = save;
		nn_close(socks[i]);
	}
	return rc;
}

/*
 * The probe's device id: its key file, enrolled on first use (quietly).
 * Returns NULL without a token (unsigned probing).
 */
static struct auth_dev *
device(const char *id, int enroll)
{
	static struct auth_dev devs[4];
	static int n;
	const char *dir = getenv("DCCL_PROBE_DIR");
	struct auth_dev *a;
	char path[1024];

	if (token == NULL || n == 4)
		return NULL;
	a = &devs[n++];
	if (dir == NULL)
		dir = ".";
	mkdir(dir, 0700);
	snprintf(path, sizeof(path), "%s/%s.key", dir, id);
	if (auth_dev_open(a, path, token, AUTH_MAC) != 0) {
		fprintf(stderr, "dccl-probe: %s: cannot open\n", path);
		exit(1);
	}
	if (enroll && !a->have_cpk) {
		Dccl__Envelope e = DCCL__ENVELOPE__INIT, *r;
		Dccl__RegisterReq rg = DCCL__REGISTER_REQ__INIT;
		void *msg, *raw;
		size_t len, rawlen;

		e.version = WIRE_VERSION;
		e.device_id = (char *)id;
		e.request_id = 1;
		rg.pubkey.data = a->pk;
		rg.pubkey.len = 32;
		e.body_case = DCCL__ENVELOPE__BODY_REGISTER_REQ;
		e.register_req = &rg;
		if (auth_dev_pack(a, &e, &msg, &len) != 0 ||
		    nn_send(sock, &msg, NN_MSG, 0) < 0 ||
		    recv_reply(&r, &raw, &rawlen) != 0) {
			printf("ENROLL-FAILED: no reply\n");
			exit(0);
		}
		if (r->body_case != DCCL__ENVELOPE__BODY_REGISTERED ||
		    auth_dev_check(a, raw, rawlen, r, e.counter,
		    e.body_case) != 1 || r->registered->cloud_pubkey.len != 32 ||
		    auth_dev_set_cloud(a, r->registered->cloud_pubkey.data,
		    (int)r->registered->auth_mode) != 0) {
			printf("ENROLL-FAILED: ");
			print_reply(r);
			exit(0);
		}
		wire_free(r);
		nn_freemsg(raw);
	}
	return a;
}

static int
send_env(Dccl__Envelope *e)
{
	void *msg;
	size_t len;
	int rc;

	if (wire_pack_nn(e, &msg, &len) != 0)
		return 1;
	rc = exchange(msg, len);
	nn_freemsg(msg);
	return rc;
}

/* Sends e signed as device id (enrolled first), or unsigned without token. */
static int
send_as(const char *id, Dccl__Envelope *e)
{
	struct auth_dev *a = device(id, 1);

	return a != NULL ? send_dev(a, e) : send_env(e);
}

/* The packed inner envelope of an unsealed reply: what the cloud sealed. */
static uint8_t *
inner_bytes(const Dccl__Envelope *e, size_t *n)
{
	Dccl__Envelope in = DCCL__ENVELOPE__INIT;
	uint8_t *b;
	void *body;

	memcpy(&body, &e->error, sizeof(body));
	in.body_case = e->body_case;
	memcpy(&in.error, &body, sizeof(body));
	*n = dccl__envelope__get_packed_size(&in);
	if ((b = malloc(*n ? *n : 1)) != NULL)
		dccl__envelope__pack(&in, b);
	return b;
}

/*
 * The nonce-reuse attack (issue 13, finding 7), auth.mode=encrypt: one
 * sealed GetStatus, then the same bytes resent (as a captured message would
 * be) until the cloud answers with a sealed E_RATE_LIMITED for the same
 * counter. An eavesdropper who guesses that short error (here: the
 * device's own decryption of it) XORs both ciphertexts with it; when they
 * share a keystream, that yields the first reply's plaintext. Prints
 * "KEYSTREAM-REUSED n" (bytes recovered) or "NO-REUSE".
 */
static int
nonce_reuse(struct auth_dev *a, Dccl__Envelope *e, int max)
{
	Dccl__Envelope *r[2] = { NULL, NULL };
	void *msg, *raw[2] = { NULL, NULL };
	size_t len, n[2], m;
	uint8_t *p[2] = { NULL, NULL };
	int got = 0, rc = 1;

	if (a == NULL || a->mode != AUTH_ENCRYPT) {
		printf("NOT-ENCRYPTED\n");
		return 1;
	}
	if (auth_dev_pack(a, e, &msg, &len) != 0)
		return 1;
	for (int i = 0; i < max && got < 2; i++) {
		Dccl__Envelope *x;
		void *xr;
		size_t xl;
		if (nn_send(sock, msg, len, 0) < 0 ||
		    recv_reply(&x, &xr, &xl) != 0)
			break;
		if (auth_dev_check(a, xr, xl, x, e->counter,
		    e->body_case) != 1 || x->sealed.len == 0 ||
		    (got == 1 && x->body_case !=
		    DCCL__ENVELOPE__BODY_ERROR)) {
			wire_free(x);
			nn_freemsg(xr);
			continue;
		}
		r[got] = x;
		raw[got] = xr;
		got++;
	}
	nn_freemsg(msg);
	if (got < 2) {
		printf("NO-SECOND-REPLY\n");
		goto out;
	}
	for (int k = 0; k < 2; k++)
		if ((p[k] = inner_bytes(r[k], &n[k])) == NULL)
			goto out;
	m = n[0] < n[1] ? n[0] : n[1];
	if (r[0]->sealed.len < m)
		m = r[0]->sealed.len;
	if (r[1]->sealed.len < m)
		m = r[1]->sealed.len;
	{
		size_t ok = 0;
		while (ok < m && (r[0]->sealed.data[ok] ^
		    r[1]->sealed.data[ok] ^ p[1][ok]) == p[0][ok])
			ok++;
		if (ok == m && m > 0)
			printf("KEYSTREAM-REUSED %zu\n", ok);
		else
			printf("NO-REUSE\n");
	}
	rc = 0;
out:
	for (int k = 0; k < 2; k++) {
		free(p[k]);
		if (r[k] != NULL) {
			wire_free(r[k]);
			nn_freemsg(raw[k]);
		}
	}
	return rc;
}

/*
 * The two raw sockets of an on-path proxy: *fs bound at front for the
 * device, *bs connected to the cloud at back. -1 after a message.
 */
static int
mitm_open(const char *what, const char *front, const char *back, int *fs,
    int *bs)
{
	*fs = nn_socket(AF_SP_RAW, NN_REP);
	*bs = nn_socket(AF_SP_RAW, NN_REQ);
	if (*fs < 0 || *bs < 0 || nn_bind(*fs, front) < 0 ||
	    nn_connect(*bs, back) < 0) {
		fprintf(stderr, "dccl-probe: %s: %s\n", what,
		    nn_strerror(nn_errno()));
		return -1;
	}
	return 0;
}

/*
 * One message through an on-path proxy (mitm_run): k 0 is a request from
 * the device, 1 a reply from the cloud (the raw REQ socket's 4-byte
 * request id, then the envelope). The step may replace *body (the nn
 * message of n bytes; the old one is freed) and sets *answer when its
 * message goes back to the device instead of on to the cloud.
 */
typedef void mitm_step(void *arg, int k, void **body, int n, int *answer);

/*
 * The proxy's loop: a raw REP socket on front for the device, a raw REQ
 * socket to the cloud at back, every message through step, for secs
 * seconds.
 */
static int
mitm_run(const char *what, const char *front, const char *back, int secs,
    mitm_step *step, void *arg)
{
	int fs, bs;
	time_t end = time(NULL) + secs;

	if (mitm_open(what, front, back, &fs, &bs) != 0)
		return 1;
	while (time(NULL) < end) {
		struct nn_pollfd pfd[2] = { { fs, NN_POLLIN, 0 },
		    { bs, NN_POLLIN, 0 } };
		if (nn_poll(pfd, 2, 200) <= 0)
			continue;
		for (int k = 0; k < 2; k++) {
			struct nn_msghdr h;
			struct nn_iovec iov;
			void *body = NULL, *ctl = NULL;
			int n, answer = 0;
			if (!(pfd[k].revents & NN_POLLIN))
				continue;
			memset(&h, 0, sizeof(h));
			iov.iov_base = &body;
			iov.iov_len = NN_MSG;
			h.msg_iov = &iov;
			h.msg_iovlen = 1;
			h.msg_control = &ctl;
			h.msg_controllen = NN_MSG;
			if ((n = nn_recvmsg(k == 0 ? fs : bs, &h,
			    NN_DONTWAIT)) < 0)
				continue;
			step(arg, k, &body, n, &answer);
			if (nn_sendmsg(k == 0 && !answer ? bs : fs, &h,
			    0) < 0) {
				nn_freemsg(body);
				nn_freemsg(ctl);
			}
		}
	}
	nn_close(fs);
	nn_close(bs);
	return 0;
}

/*
 * *body (a reply: request id, envelope) rebuilt as e packed without its
 * MAC, then trailer (AUTH_TRAILER bytes; none when NULL) last, where a
 * MACed reply keeps its MAC. 0, or -1 with *body untouched.
 */
static int
mitm_repack(void **body, Dccl__Envelope *e, const void *trailer)
{
	size_t maclen = e->mac.len, len, tl = trailer ? AUTH_TRAILER : 0;
	void *msg, *out = NULL;
	int rc = -1;

	e->mac.len = 0;
	if (wire_pack_nn(e, &msg, &len) == 0) {
		if ((out = nn_allocmsg(len + 4 + tl, 0)) != NULL) {
			memcpy(out, *body, 4);
			memcpy((uint8_t *)out + 4, msg, len);
			if (tl)
				memcpy((uint8_t *)out + 4 + len, trailer, tl);
			nn_freemsg(*body);
			*body = out;
			rc = 0;
		}
		nn_freemsg(msg);
	}
	e->mac.len = maclen;
	return rc;
}

/* The envelope of a reply (after its request id), or NULL. */
static Dccl__Envelope *
mitm_reply(const void *body, int n)
{
	Dccl__Envelope *e = NULL;
	char err[128];

	if (n <= 4 || wire_unpack((const uint8_t *)body + 4, (size_t)n - 4,
	    &e, err, sizeof(err)) != 0)
		return NULL;
	return e;
}

/*
 * An on-path attacker without keys (issue 13, finding 6): it forwards
 * every request to the cloud and every reply back, except an
 * UploadPatch, which it answers itself with an unsigned E_BAD_TENSOR.
 * Runs for secs seconds, then prints "MITM forwarded N refused-uploads M".
 */
struct mitm_up {
	int	 fwd, refused;
};

static void
mitm_up_step(void *arg, int k, void **body, int n, int *answer)
{
	struct mitm_up *s = arg;
	Dccl__Envelope *e = NULL;
	char err[128];

	if (k == 0 && wire_unpack(*body, (size_t)n, &e, err,
	    sizeof(err)) == 0 && e->sealed.len == 0 &&
	    e->body_case == DCCL__ENVELOPE__BODY_UPLOAD) {
		/* Answer it ourselves, unsigned. */
		Dccl__Envelope r = DCCL__ENVELOPE__INIT;
		Dccl__Error er = DCCL__ERROR__INIT;
		void *msg;
		size_t len;
		r.version = WIRE_VERSION;
		r.device_id = e->device_id;
		r.request_id = e->request_id;
		er.code = DCCL__ERROR_CODE__E_BAD_TENSOR;
		er.message = "patch refused";
		r.body_case = DCCL__ENVELOPE__BODY_ERROR;
		r.error = &er;
		if (wire_pack_nn(&r, &msg, &len) == 0) {
			nn_freemsg(*body);
			*body = msg;
			*answer = 1;
			s->refused++;
		}
	} else
		s->fwd++;
	wire_free(e);
}

static int
mitm(const char *front, const char *back, int secs)
{
	struct mitm_up s = { 0, 0 };

	if (mitm_run("mitm", front, back, secs, mitm_up_step, &s) != 0)
		return 1;
	printf("MITM forwarded %d refused-uploads %d\n", s.fwd, s.refused);
	return 0;
}

/*
 * mitm-dl (see the head comment). Chunks are kept per index (at most
 * MITM_MAX_CHUNKS, MITM_MAX_BYTES in all) to compute the tampered model's
 * checksum; a model larger than that is tampered without the rewrite.
 */
#define MITM_MAX_CHUNKS	64
#define MITM_MAX_BYTES	(64u << 20)
struct mitm_dl {
	int	 fwd, tampered, replayed, manifests;
	uint8_t	*kept[MITM_MAX_CHUNKS];
	size_t	 klen[MITM_MAX_CHUNKS], kbytes;
	uint64_t kver;
	void	*man;		/* the first manifest reply, as sent */
	size_t	 manlen;
};

/* The second manifest reply: the first, relabelled as its answer. */
static void
mitm_dl_replay(struct mitm_dl *s, void **body, const Dccl__Envelope *e)
{
	Dccl__Envelope *old = NULL;
	char err[128];

	if (s->man == NULL || s->manlen <= AUTH_TRAILER ||
	    wire_unpack(s->man, s->manlen, &old, err, sizeof(err)) != 0)
		return;
	old->request_id = e->request_id;
	old->counter = e->counter;
	/* Its MAC trailer (auth.h) stays last, as it came. */
	if (mitm_repack(body, old, (uint8_t *)s->man + s->manlen -
	    AUTH_TRAILER) == 0) {
		s->replayed++;
		printf("MITM-DL replayed a manifest\n");
		fflush(stdout);
	}
	wire_free(old);
}

/* A chunk with one bit flipped (and, every second time, a checksum to
 * match the tampered model). */
static void
mitm_dl_tamper(struct mitm_dl *s, void **body, Dccl__Envelope *e)
{
	Dccl__ModelChunk *c = e->model_chunk;
	uint32_t i = c->chunk_index, nc = c->n_chunks;
	uint8_t sum[32];

	c->data.data[c->data.len / 2] ^= 0x01;
	if (c->version != s->kver) {
		for (int j = 0; j < MITM_MAX_CHUNKS; j++) {
			free(s->kept[j]);
			s->kept[j] = NULL;
			s->klen[j] = 0;
		}
		s->kbytes = 0;
		s->kver = c->version;
	}
	if (nc <= MITM_MAX_CHUNKS && i < nc && s->kept[i] == NULL &&
	    s->kbytes + c->data.len <= MITM_MAX_BYTES &&
	    (s->kept[i] = malloc(c->data.len)) != NULL) {
		memcpy(s->kept[i], c->data.data, c->data.len);
		s->klen[i] = c->data.len;
		s->kbytes += c->data.len;
	}
	if (nc <= MITM_MAX_CHUNKS && i + 1 == nc && c->checksum.len == 32 &&
	    s->tampered % 2) {
		crypto_generichash_state st;
		uint32_t j;
		crypto_generichash_init(&st, NULL, 0, 32);
		for (j = 0; j < nc && s->kept[j]; j++)
			crypto_generichash_update(&st, s->kept[j],
			    s->klen[j]);
		crypto_generichash_final(&st, sum, 32);
		if (j == nc)
			memcpy(c->checksum.data, sum, 32);
	}
	if (mitm_repack(body, e, NULL) == 0) {
		s->tampered++;
		printf("MITM-DL tampered v%llu chunk %u\n",
		    (unsigned long long)s->kver, i);
		fflush(stdout);
	}
}

static void
mitm_dl_step(void *arg, int k, void **body, int n, int *answer)
{
	struct mitm_dl *s = arg;
	Dccl__Envelope *e;

	(void)answer;
	s->fwd++;
	if (k != 1 || (e = mitm_reply(*body, n)) == NULL)
		return;
	if (e->sealed.len == 0 && e->body_case ==
	    DCCL__ENVELOPE__BODY_MANIFEST && ++s->manifests <= 2) {
		if (s->manifests == 1 &&
		    (s->man = malloc((size_t)n - 4)) != NULL) {
			memcpy(s->man, (uint8_t *)*body + 4, (size_t)n - 4);
			s->manlen = (size_t)n - 4;
		} else if (s->manifests == 2)
			mitm_dl_replay(s, body, e);
	} else if (e->sealed.len == 0 &&
	    e->body_case == DCCL__ENVELOPE__BODY_MODEL_CHUNK &&
	    e->model_chunk->data.len > 0)
		mitm_dl_tamper(s, body, e);
	wire_free(e);
}

static int
mitm_dl(const char *front, const char *back, int secs)
{
	struct mitm_dl *s = calloc(1, sizeof(*s));
	int rc;

	if (s == NULL)
		return 1;
	if ((rc = mitm_run("mitm-dl", front, back, secs, mitm_dl_step,
	    s)) == 0)
		printf("MITM-DL forwarded %d tampered-chunks %d "
		    "replayed-manifests %d\n", s->fwd, s->tampered,
		    s->replayed);
	for (int j = 0; j < MITM_MAX_CHUNKS; j++)
		free(s->kept[j]);
	free(s->man);
	free(s);
	return rc;
}

/*
 * mitm-rows (protocol 7): an on-path attacker without keys flips one bit
 * in the user rows of every manifest reply it forwards (auth.mode mac),
 * keeping the reply's MAC trailer; prints "MITM-ROWS flipped" each time.
 */
struct mitm_rows {
	int	 fwd, flipped;
};

static void
mitm_rows_step(void *arg, int k, void **body, int n, int *answer)
{
	struct mitm_rows *s = arg;
	Dccl__Envelope *e;
	Dccl__UserRows *ur;
	uint8_t trailer[AUTH_TRAILER];

	(void)answer;
	s->fwd++;
	if (k != 1 || n <= 4 + AUTH_TRAILER ||
	    (e = mitm_reply(*body, n)) == NULL)
		return;
	if (e->sealed.len == 0 &&
	    e->body_case == DCCL__ENVELOPE__BODY_MANIFEST &&
	    (ur = e->manifest->rows) != NULL && ur->n_tensors > 0 &&
	    ur->tensors[0]->n_data > 0) {
		((uint8_t *)ur->tensors[0]->data)[0] ^= 0x01;
		memcpy(trailer, (uint8_t *)*body + n - AUTH_TRAILER,
		    AUTH_TRAILER);
		if (mitm_repack(body, e, trailer) == 0) {
			s->flipped++;
			printf("MITM-ROWS flipped\n");
			fflush(stdout);
		}
	}
	wire_free(e);
}

static int
mitm_rows(const char *front, const char *back, int secs)
{
	struct mitm_rows s = { 0, 0 };

	if (mitm_run("mitm-rows", front, back, secs, mitm_rows_step,
	    &s) != 0)
		return 1;
	printf("MITM-ROWS forwarded %d flipped %d\n", s.fwd, s.flipped);
	return 0;
}

/* Writes n bytes of p to path; 0 or -1. */
static int
write_file(const char *path, const void *p, size_t n)
{
	FILE *f = fopen(path, "wb");
	int rc = 0;

	if (f == NULL)
		return -1;
	if (n > 0 && fwrite(p, 1, n, f) != n)
		rc = -1;
	if (fclose(f) != 0)
		rc = -1;
	return rc;
}

/* Prints a tensor's floats as "ROW name rows cols hex" (little-endian). */
static void
print_row(const char *what, const Dccl__Tensor *t)
{
	const uint8_t *b = (const uint8_t *)t->data;

	printf("%s %s %u %u ", what, t->name, t->n_shape > 0 ? t->shape[0] : 0,
	    t->n_shape > 1 ? t->shape[1] : 0);
	for (size_t i = 0; i < t->n_data * sizeof(float); i++)
		printf("%02x", b[i]);
	printf("\n");
}

/*
 * slice DEV USER OUTDIR (protocol 7): as device DEV (enrolled, so
 * registered as user 0), a GetManifestReq that also names USER in unknown
 * fields (2, 3, 8 and 100), its reply printed as "CRAFTED <reply>" and
 * kept in OUTDIR/crafted.raw; then a plain GetManifestReq: prints the
 * rows it got ("ROWS user U n N", a ROW line each) and
 * whether a copy with one bit flipped in them still passes the MAC
 * ("TAMPERED-ROWS rejected|accepted"), then fetches every chunk.
 * OUTDIR/manifest.raw: the manifest reply as received; OUTDIR/shared.bin:
 * the chunks' bytes.
 */
static int
slice_probe(const char *dev, uint32_t other, const char *dir)
{
	struct auth_dev *a = device(dev, 1);
	Dccl__Envelope e = DCCL__ENVELOPE__INIT, *r = NULL, *tr = NULL;
	Dccl__GetManifestReq q = DCCL__GET_MANIFEST_REQ__INIT;
	Dccl__GetModelReq gm = DCCL__GET_MODEL_REQ__INIT;
	ProtobufCMessageUnknownField uf[4];
	uint8_t vb[4][10], *shared = NULL, *cp;
	uint32_t tags[4] = { 2, 3, 8, 100 };
	void *msg, *raw;
	size_t len, rawlen, total = 0;
	char path[1024];
	int rc = 1;

	if (a == NULL) {
		printf("slice needs DCCL_AUTH_TOKEN\n");
		return 2;
	}
	for (int i = 0; i < 4; i++) {
		/* a varint USER under every tag (8: as bytes of it) */
		size_t k = 0;
		uint32_t v = other;
		do {
			vb[i][k++] = (uint8_t)((v & 0x7f) | (v > 0x7f ? 0x80 : 0));
			v >>= 7;
		} while (v != 0);
		uf[i].tag = tags[i];
		uf[i].wire_type = tags[i] == 8 ? PROTOBUF_C_WIRE_TYPE_LENGTH_PREFIXED :
		    PROTOBUF_C_WIRE_TYPE_VARINT;
		uf[i].len = k;
		uf[i].data = vb[i];
	}
	q.base.n_unknown_fields = 4;
	q.base.unknown_fields = uf;
	e.version = WIRE_VERSION;
	e.device_id = (char *)dev;
	e.request_id = 7000;
	e.body_case = DCCL__ENVELOPE__BODY_GET_MANIFEST;
	e.get_manifest = &q;
	/* the crafted request: its reply as received in crafted.raw */
	if (auth_dev_pack(a, &e, &msg, &len) != 0 ||
	    nn_send(sock, &msg, NN_MSG, 0) < 0 ||
	    recv_reply(&r, &raw, &rawlen) != 0) {
		printf("NO-REPLY\n");
		return 1;
	}
	snprintf(path, sizeof(path), "%s/crafted.raw", dir);
	if (write_file(path, raw, rawlen) != 0)
		goto out;
	printf("CRAFTED ");
	print_reply(r);
	wire_free(r);
	nn_freemsg(raw);
	r = NULL;
	raw = NULL;
	/* then the plain one */
	q.base.n_unknown_fields = 0;
	q.base.unknown_fields = NULL;
	e.request_id = 7001;
	if (auth_dev_pack(a, &e, &msg, &len) != 0 ||
	    nn_send(sock, &msg, NN_MSG, 0) < 0 ||
	    recv_reply(&r, &raw, &rawlen) != 0) {
		printf("NO-REPLY\n");
		return 1;
	}
	snprintf(path, sizeof(path), "%s/manifest.raw", dir);
	if (write_file(path, raw, rawlen) != 0)
		goto out;
	/* the tampered copy first: a failed check changes no state */
	if (r->body_case == DCCL__ENVELOPE__BODY_MANIFEST &&
	    r->manifest->rows != NULL && r->manifest->rows->n_tensors > 0 &&
	    r->manifest->rows->tensors[0]->n_data > 0 &&
	    (cp = malloc(rawlen)) != NULL) {
		const uint8_t *row = (const uint8_t *)
		    r->manifest->rows->tensors[0]->data;
		char err[128];
		memcpy(cp, raw, rawlen);
		for (size_t i = 0; i + 4 <= rawlen; i++)
			if (memcmp((uint8_t *)raw + i, row, 4) == 0) {
				cp[i] ^= 0x01;
				break;
			}
		if (wire_unpack(cp, rawlen, &tr, err, sizeof(err)) != 0)
			printf("TAMPERED-ROWS rejected (unpack)\n");
		else
			printf("TAMPERED-ROWS %s\n", auth_dev_check(a, cp,
			    rawlen, tr, e.counter, e.body_case) == 1 ?
			    "accepted" : "rejected");
		wire_free(tr);
		free(cp);
	}
	if (auth_dev_check(a, raw, rawlen, r, e.counter, e.body_case) != 1)
		printf("FORGED-REPLY ");
	print_reply(r);
	if (r->body_case != DCCL__ENVELOPE__BODY_MANIFEST)
		goto out;
	if (r->manifest->rows == NULL) {
		printf("ROWS none\n");
		goto out;
	}
	printf("ROWS user %u n %zu\n", r->manifest->rows->user_id,
	    r->manifest->rows->n_tensors);
	for (size_t i = 0; i < r->manifest->rows->n_tensors; i++)
		print_row("ROW", r->manifest->rows->tensors[i]);
	/* the chunks: every device's same bytes */
	gm.version = r->manifest->version;
	for (uint32_t i = 0; i < r->manifest->n_chunks; i++) {
		Dccl__Envelope *c = NULL;
		void *craw;
		size_t crawlen;
		gm.chunk_index = i;
		e.request_id = 7002 + i;
		e.body_case = DCCL__ENVELOPE__BODY_GET_MODEL;
		e.get_model = &gm;
		if (auth_dev_pack(a, &e, &msg, &len) != 0 ||
		    nn_send(sock, &msg, NN_MSG, 0) < 0 ||
		    recv_reply(&c, &craw, &crawlen) != 0) {
			printf("NO-REPLY chunk %u\n", i);
			goto out;
		}
		if (c->body_case != DCCL__ENVELOPE__BODY_MODEL_CHUNK) {
			print_reply(c);
			wire_free(c);
			nn_freemsg(craw);
			goto out;
		}
		shared = realloc(shared, total + c->model_chunk->data.len + 1);
		memcpy(shared + total, c->model_chunk->data.data,
		    c->model_chunk->data.len);
		total += c->model_chunk->data.len;
		wire_free(c);
		nn_freemsg(craw);
	}
	snprintf(path, sizeof(path), "%s/shared.bin", dir);
	if (write_file(path, shared, total) != 0)
		goto out;
	printf("SHARED bytes %zu\n", total);
	rc = 0;
out:
	free(shared);
	wire_free(r);
	nn_freemsg(raw);
	return rc;
}

/* model-rows FILE USER: a packed Model's per-user rows of USER. */
static int
model_rows(const char *file, uint32_t user)
{
	FILE *f = fopen(file, "rb");
	uint8_t *b = NULL;
	size_t n = 0, cap = 0, k;
	Dccl__Model *m;

	if (f == NULL)
		return 1;
	for (;;) {
		if (n == cap && (b = realloc(b, cap = cap ? 2 * cap : 65536)) ==
		    NULL)
			return 1;
		if ((k = fread(b + n, 1, cap - n, f)) == 0)
			break;
		n += k;
	}
	fclose(f);
	if ((m = dccl__model__unpack(NULL, n, b)) == NULL) {
		free(b);
		printf("NOT-A-MODEL\n");
		return 1;
	}
	for (size_t i = 0; i < m->n_tensors; i++) {
		Dccl__Tensor *t = m->tensors[i], x = *t;
		uint32_t sh[2];
		if (!ctr_slice_user_tensor(t->name) || t->n_shape != 2 ||
		    user >= t->shape[0])
			continue;
		sh[0] = 1;
		sh[1] = t->shape[1];
		x.shape = sh;
		x.data = t->data + (size_t)user * t->shape[1];
		x.n_data = t->shape[1];
		print_row("ROW", &x);
	}
	dccl__model__free_unpacked(m, NULL);
	free(b);
	return 0;
}

int
main(int argc, char **argv)
{
	Dccl__Envelope e = DCCL__ENVELOPE__INIT;
	Dccl__GetStatusReq gs = DCCL__GET_STATUS_REQ__INIT;
	Dccl__GetModelReq gm = DCCL__GET_MODEL_REQ__INIT;
	Dccl__Ack ack = DCCL__ACK__INIT;
	Dccl__AdminListReq al = DCCL__ADMIN_LIST_REQ__INIT;
	Dccl__RegisterReq rg = DCCL__REGISTER_REQ__INIT;
	Dccl__UploadPatch up = DCCL__UPLOAD_PATCH__INIT;
	Dccl__Tensor t = DCCL__TENSOR__INIT, t2 = DCCL__TENSOR__INIT;
	Dccl__Tensor *tp[2] = { &t, &t2 };
	uint32_t shape[1] = { 4 }, shape16[1] = { 16 };
	float data[4] = { 0.1f, 0.2f, 0.0f, 0.3f }, big[16];
	const char *ep, *what;
	int tmo = 3000;

	if (argc < 3) {
		fprintf(stderr, "usage: dccl-probe ENDPOINT WHAT [ARG]\n");
		return 2;
	}
	ep = argv[1];
	what = argv[2];
	token = getenv("DCCL_AUTH_TOKEN");
	if (token != NULL && token[0] == '\0')
		token = NULL;
	if ((sock = nn_socket(AF_SP, NN_REQ)) < 0 ||
	    nn_setsockopt(sock, NN_SOL_SOCKET, NN_RCVTIMEO, &tmo,
	    sizeof(tmo)) < 0 || (strcmp(what, "announce") != 0 &&
	    strcmp(what, "mitm") != 0 && strcmp(what, "mitm-dl") != 0 &&
	    strcmp(what, "mitm-rows") != 0 &&
	    nn_connect(sock, ep) < 0)) {
		fprintf(stderr, "dccl-probe: %s\n", nn_strerror(nn_errno()));
		return 1;
	}
	e.version = WIRE_VERSION;
	e.device_id = "probe";
	e.request_id = 42;
	e.body_case = DCCL__ENVELOPE__BODY_GET_STATUS;
	e.get_status = &gs;
	if (!strcmp(what, "garbage")) {
		static const char junk[] = "\xff\xff\xff\xff this is not protobuf";
		return exchange(junk, sizeof(junk));
	} else if (!strcmp(what, "oversize") && argc > 3) {
		size_t n = strtoul(argv[3], NULL, 10);
		char *big_msg = calloc(n, 1);
		int rc = exchange(big_msg, n);
		free(big_msg);
		return rc;
	} else if (!strcmp(what, "forge-log")) {
		/* A device id that would end the log line and forge one. */
		e.device_id = "x\n1970-01-01T00:00:00.000Z info cloudd[1]: "
		    "FORGED-LINE";
		return send_env(&e);
	} else if (!strcmp(what, "amplify") && argc > 3) {
		/*
		 * An unauthenticated upload of BYTES of empty tensors (two
		 * bytes each on the wire, a struct each once unpacked).
		 */
		size_t n = strtoul(argv[3], NULL, 10), k = 0, body;
		uint8_t *b = malloc(n + 32);
		int rc;
		if (b == NULL || n < 64)
			return 2;
		body = n - 16;
		b[k++] = 0x08; b[k++] = WIRE_VERSION;		/* version */
		b[k++] = 0x12; b[k++] = 1; b[k++] = 'a';	/* device id */
		b[k++] = 0x8a; b[k++] = 0x01;			/* upload (17) */
		for (int sh = 0; ; sh += 7) {			/* its length */
			uint8_t c = (uint8_t)((body >> sh) & 0x7f);
			if ((body >> sh) >> 7) {
				b[k++] = c | 0x80;
				continue;
			}
			b[k++] = c;
			break;
		}
		for (size_t i = 0; i + 1 < body; i += 2) {
			b[k++] = 0x12;	/* tensors (2), empty */
			b[k++] = 0x00;
		}
		rc = exchange(b, k);
		free(b);
		return rc;
	} else if (!strcmp(what, "version")) {
		e.version = 99;
		return send_env(&e);
	} else if (!strcmp(what, "oldversion")) {
		/* the previous protocol (v5: SHA-256 chunk list in the manifest) */
		e.version = WIRE_VERSION - 1;
		return send_env(&e);
	} else if (!strcmp(what, "nobody")) {
		e.body_case = DCCL__ENVELOPE__BODY__NOT_SET;
		return send_env(&e);
	} else if (!strcmp(what, "unregistered")) {
		/* Signed with a key the cloud never saw. */
		struct auth_dev *a = device("nobody-knows-me", 0);
		e.device_id = "nobody-knows-me";
		e.body_case = DCCL__ENVELOPE__BODY_GET_MODEL;
		e.get_model = &gm;
		if (a != NULL) {
			/* A pinned (any) cloud key makes it sign. */
			uint8_t fake[32] = { 9 };
			auth_dev_set_cloud(a, fake, AUTH_MAC);
			return send_dev(a, &e);
		}
		return send_env(&e);
	} else if (!strcmp(what, "replybody")) {
		e.body_case = DCCL__ENVELOPE__BODY_ACK;
		e.ack = &ack;
	} else if (!strcmp(what, "admin")) {
		e.body_case = DCCL__ENVELOPE__BODY_ADMIN_LIST;
		e.admin_list = &al;
	} else if (!strcmp(what, "register") && argc > 3) {
		struct auth_dev *a = device(argv[3], 0);
		e.device_id = argv[3];
		rg.user_id = 0;
		e.body_case = DCCL__ENVELOPE__BODY_REGISTER_REQ;
		e.register_req = &rg;
		if (a == NULL)
			return send_env(&e);
		rg.pubkey.data = a->pk;
		rg.pubkey.len = 32;
		{
			void *msg, *raw;
			size_t len, rawlen;
			Dccl__Envelope *r;
			int rc;
			if (auth_dev_pack(a, &e, &msg, &len) != 0 ||
			    nn_send(sock, &msg, NN_MSG, 0) < 0)
				return 1;
			if ((rc = recv_reply(&r, &raw, &rawlen)) != 0) {
				if (rc == -1)
					printf("NO-REPLY\n");
				return 0;
			}
			if (r->body_case == DCCL__ENVELOPE__BODY_REGISTERED &&
			    auth_dev_check(a, raw, rawlen, r, e.counter,
			    e.body_case) == 1)
				auth_dev_set_cloud(a,
				    r->registered->cloud_pubkey.data,
				    (int)r->registered->auth_mode);
			else if (r->body_case ==
			    DCCL__ENVELOPE__BODY_REGISTERED)
				printf("FORGED-REPLY ");
			print_reply(r);
			wire_free(r);
			nn_freemsg(raw);
			return 0;
		}
	} else if (!strcmp(what, "hijack") && argc > 5) {
		/*
		 * A token holder's attack on an enrolled device DEV (issue
		 * 13): a RegisterReq carrying DEV's public key (sent in clear
		 * in every RegisterReq; read here from DEV's key file), a new
		 * user and counter INT64_MAX, MACed with the token key only.
		 */
		struct auth_dev v;
		struct auth_seal sl;
		void *msg;
		size_t len;
		int rc;
		if (token == NULL || auth_dev_open(&v, argv[4], NULL,
		    AUTH_MAC) != 0) {
			fprintf(stderr, "dccl-probe: hijack: needs the token "
			    "and DEV's key file\n");
			return 2;
		}
		e.device_id = argv[3];
		rg.user_id = (uint32_t)strtoul(argv[5], NULL, 10);
		rg.pubkey.data = v.pk;
		rg.pubkey.len = 32;
		e.body_case = DCCL__ENVELOPE__BODY_REGISTER_REQ;
		e.register_req = &rg;
		memset(&sl, 0, sizeof(sl));
		sl.mode = AUTH_MAC;
		sl.dir = AUTH_UP;
		sl.counter = INT64_MAX;
		auth_token_key(token, &sl.key);
		if (auth_pack_nn(&e, &sl, &msg, &len) != 0)
			return 1;
		rc = exchange(msg, len);
		nn_freemsg(msg);
		return rc;
	} else if (!strcmp(what, "enroll-flood") && argc > 3) {
		/* N first enrolments of fresh ids, back to back. */
		int n = atoi(argv[3]), ok = 0, limited = 0, other = 0;
		const char *dir = getenv("DCCL_PROBE_DIR");
		for (int i = 0; i < n && token != NULL; i++) {
			struct auth_dev a;
			Dccl__Envelope *r;
			void *msg, *raw;
			size_t len, rawlen;
			char path[1024], id[32];
			snprintf(id, sizeof(id), "ef-%d", i);
			snprintf(path, sizeof(path), "%s/%s.key", dir ? dir :
			    ".", id);
			if (auth_dev_open(&a, path, token, AUTH_MAC) != 0)
				return 1;
			e.device_id = id;
			rg.pubkey.data = a.pk;
			rg.pubkey.len = 32;
			e.body_case = DCCL__ENVELOPE__BODY_REGISTER_REQ;
			e.register_req = &rg;
			if (auth_dev_pack(&a, &e, &msg, &len) != 0 ||
			    nn_send(sock, &msg, NN_MSG, 0) < 0 ||
			    recv_reply(&r, &raw, &rawlen) != 0) {
				other++;
				continue;
			}
			if (r->body_case == DCCL__ENVELOPE__BODY_REGISTERED)
				ok++;
			else if (r->body_case == DCCL__ENVELOPE__BODY_ERROR &&
			    r->error->code ==
			    DCCL__ERROR_CODE__E_RATE_LIMITED)
				limited++;
			else
				other++;
			wire_free(r);
			nn_freemsg(raw);
		}
		printf("ENROLL-FLOOD ok %d rate-limited %d other %d\n", ok,
		    limited, other);
		return 0;
	} else if (!strcmp(what, "mitm") && argc > 4) {
		return mitm(ep, argv[3], atoi(argv[4]));
	} else if (!strcmp(what, "mitm-dl") && argc > 4) {
		return mitm_dl(ep, argv[3], atoi(argv[4]));
	} else if (!strcmp(what, "announce") && argc > 3) {
		/*
		 * A forged, unsigned ModelAnnounce of version ARG published
		 * on ENDPOINT (bound here, as a rogue publisher would):
		 * five times over a second, once the subscribers connected.
		 */
		Dccl__ModelAnnounce an = DCCL__MODEL_ANNOUNCE__INIT;
		int pub = nn_socket(AF_SP, NN_PUB);
		struct timespec ts = { 0, 200 * 1000 * 1000 };
		if (pub < 0 || nn_bind(pub, ep) < 0) {
			fprintf(stderr, "dccl-probe: %s\n",
			    nn_strerror(nn_errno()));
			return 1;
		}
		const char *how = argc > 4 ? argv[4] : "unsigned";
		uint8_t sig[AUTH_SIG_LEN], csk[32], spk[32], ssk[64];
		e.device_id = "cloudd";
		an.version = strtoull(argv[3], NULL, 10);
		if (!strcmp(how, "forged")) {
			/* Signed, but by a key of the attacker's own. */
			randombytes_buf(csk, sizeof(csk));
			auth_announce_keypair(csk, spk, ssk);
			auth_announce_sign(ssk, &an, sig);
		} else if (strcmp(how, "unsigned") != 0) {
			if (strlen(how) != 64 || sodium_hex2bin(csk, 32, how,
			    64, NULL, NULL, NULL) != 0) {
				fprintf(stderr, "dccl-probe: announce: CSK-HEX "
				    "must be 64 hex digits\n");
				return 2;
			}
			auth_announce_keypair(csk, spk, ssk);
			auth_announce_sign(ssk, &an, sig);
		}
		e.body_case = DCCL__ENVELOPE__BODY_ANNOUNCE;
		e.announce = &an;
		for (int i = 0; i < 10; i++) {
			void *msg;
			size_t len;
			nanosleep(&ts, NULL);
			if (i < 5)
				continue;	/* let the SUBs connect */
			if (wire_pack_nn(&e, &msg, &len) != 0 ||
			    nn_send(pub, &msg, NN_MSG, 0) < 0)
				return 1;
		}
		nanosleep(&ts, NULL);
		nn_close(pub);
		printf("ANNOUNCED %s\n", argv[3]);
		return 0;
	} else if (!strcmp(what, "resend") && argc > 3) {
		/*
		 * One signed GetStatus sent twice, byte for byte (as a
		 * retransmission or a captured copy): "RESEND identical" when
		 * the second reply is the first one's bytes, "RESEND
		 * re-executed" when the cloud ran it again.
		 */
		struct auth_dev *a = device(argv[3], 1);
		void *msg, *raw[2] = { NULL, NULL };
		size_t len, rl[2] = { 0, 0 };
		Dccl__Envelope *r;
		int same;
		e.device_id = argv[3];
		if (a == NULL || auth_dev_pack(a, &e, &msg, &len) != 0)
			return 1;
		for (int k = 0; k < 2; k++)
			if (nn_send(sock, msg, len, 0) < 0 ||
			    recv_reply(&r, &raw[k], &rl[k]) != 0) {
				printf("NO-REPLY\n");
				return 1;
			} else
				wire_free(r);
		nn_freemsg(msg);
		same = rl[0] == rl[1] && memcmp(raw[0], raw[1], rl[0]) == 0;
		printf("RESEND %s\n", same ? "identical" : "re-executed");
		nn_freemsg(raw[0]);
		nn_freemsg(raw[1]);
		return 0;
	} else if (!strcmp(what, "resend-chunk") && argc > 3) {
		/*
		 * One signed GetModel (chunk 0 of the current version) sent
		 * twice, byte for byte: a captured copy replayed. Prints
		 * "RESEND-CHUNK <bytes of the first reply> <what the second
		 * got>": the old cloud executed it again (another model_chunk,
		 * resealed) when the reply was over 16 KiB.
		 */
		struct auth_dev *a = device(argv[3], 1);
		void *msg, *raw = NULL;
		size_t len, rl = 0, first = 0;
		Dccl__Envelope *r;
		e.device_id = argv[3];
		dccl__get_model_req__init(&gm);
		e.body_case = DCCL__ENVELOPE__BODY_GET_MODEL;
		e.get_model = &gm;
		if (a == NULL || auth_dev_pack(a, &e, &msg, &len) != 0)
			return 1;
		printf("RESEND-CHUNK");
		for (int k = 0; k < 2; k++) {
			if (nn_send(sock, msg, len, 0) < 0 ||
			    recv_reply(&r, &raw, &rl) != 0) {
				printf(" NO-REPLY\n");
				return 1;
			}
			if (auth_dev_check(a, raw, rl, r, e.counter,
			    e.body_case) < 0)
				printf(" FORGED");
			if (k == 0)
				first = rl;
			if (k == 0)
				printf(" %zu", first);
			else if (r->body_case == DCCL__ENVELOPE__BODY_ERROR)
				printf(" %s\n", wire_error_name(
				    r->error->code));
			else
				printf(" %s\n", wire_body_name(r->body_case));
			wire_free(r);
			nn_freemsg(raw);
		}
		nn_freemsg(msg);
		return 0;
	} else if (!strcmp(what, "nonce-reuse") && argc > 4) {
		e.device_id = argv[3];
		return nonce_reuse(device(e.device_id, 1), &e, atoi(argv[4]));
	} else if (!strcmp(what, "badtoken") && argc > 3) {
		/* Enrolment with the wrong token. */
		struct auth_dev a;
		char path[1024];
		snprintf(path, sizeof(path), "%s/%s.badkey",
		    getenv("DCCL_PROBE_DIR") ? getenv("DCCL_PROBE_DIR") : ".",
		    argv[3]);
		if (auth_dev_open(&a, path, "not-the-token", AUTH_MAC) != 0)
			return 1;
		e.device_id = argv[3];
		rg.pubkey.data = a.pk;
		rg.pubkey.len = 32;
		e.body_case = DCCL__ENVELOPE__BODY_REGISTER_REQ;
		e.register_req = &rg;
		return send_dev(&a, &e);
	} else if (!strcmp(what, "unsigned")) {
		/* An enrolled device's request without the MAC. */
		device("probe", 1);
		return send_env(&e);
	} else if (!strcmp(what, "forged") || !strcmp(what, "replay")) {
		struct auth_dev *a = device("probe", 1);
		void *msg;
		size_t len;
		if (a == NULL)
			return send_env(&e);
		if (!strcmp(what, "replay")) {
			/* A good request, then another one reusing its
			 * counter (a captured message with a new id). */
			uint64_t c;
			if (send_dev(a, &e) != 0)
				return 1;
			c = a->ctr;
			a->ctr = c - 1;
			e.request_id = 43;
			return send_dev(a, &e);
		}
		if (auth_dev_pack(a, &e, &msg, &len) != 0)
			return 1;
		((uint8_t *)msg)[len - 1] ^= 1;	/* flip a bit of the tag */
		{
			int rc = exchange(msg, len);
			nn_freemsg(msg);
			return rc;
		}
	} else if (!strcmp(what, "ofa-alternate") && argc > 4) {
		/*
		 * N GetOfa requests (chunk 0 of the current version) cycling
		 * through three parts: the base, block 0, blocks 0 and 1.
		 * Prints "OFA-ALTERNATE ok BAD" (model_chunk replies, others).
		 */
		struct auth_dev *a = device(argv[3], 1);
		Dccl__GetOfaReq go = DCCL__GET_OFA_REQ__INIT;
		int n = atoi(argv[4]), ok = 0, bad = 0;
		e.device_id = argv[3];
		e.body_case = DCCL__ENVELOPE__BODY_GET_OFA;
		e.get_ofa = &go;
		for (int i = 0; i < n; i++) {
			Dccl__Envelope *r;
			void *msg, *raw;
			size_t len, rl;
			go.with_base = i % 3 == 0;
			go.block_mask = i % 3 == 0 ? 0 : i % 3 == 1 ? 1 : 3;
			e.request_id = 100 + (uint64_t)i;
			/* Unsigned without the token (the admin socket). */
			if ((a != NULL ? auth_dev_pack(a, &e, &msg, &len) :
			    wire_pack_nn(&e, &msg, &len)) != 0)
				return 1;
			if (nn_send(sock, &msg, NN_MSG, 0) < 0 ||
			    recv_reply(&r, &raw, &rl) != 0) {
				printf("NO-REPLY\n");
				return 1;
			}
			if ((a == NULL || auth_dev_check(a, raw, rl, r,
			    e.counter, e.body_case) == 1) && r->body_case ==
			    DCCL__ENVELOPE__BODY_MODEL_CHUNK)
				ok++;
			else {
				bad++;
				print_reply(r);
			}
			wire_free(r);
			nn_freemsg(raw);
		}
		printf("OFA-ALTERNATE %d %d\n", ok, bad);
		return 0;
	} else if (!strcmp(what, "stranger") && argc > 3) {
		/* Signed (well-formed MAC) under an id never enrolled: with
		 * PostgreSQL the cloud must ask the store about it. */
		struct auth_dev *a = device("probe", 1);
		e.device_id = argv[3];
		return a != NULL ? send_dev(a, &e) : send_env(&e);
	} else if (!strcmp(what, "other-device") && argc > 4) {
		/* Signed with A's key, claiming to be B (both enrolled). */
		struct auth_dev *a = device(argv[3], 1);
		device(argv[4], 1);
		if (a == NULL)
			return 2;
		e.device_id = argv[4];
		return send_dev(a, &e);
	} else if (!strcmp(what, "flood") && argc > 4) {
		/*
		 * N requests back to back; counts the outcomes. With a
		 * STOPFILE, it stops early once that file exists, so a test
		 * can hold the flood for as long as it needs it.
		 */
		struct auth_dev *a = device(argv[3], 1);
		int n = atoi(argv[4]), ok = 0, limited = 0, other = 0;
		const char *stop = argc > 5 ? argv[5] : NULL;
		e.device_id = argv[3];
		for (int i = 0; i < n; i++) {
			if (stop != NULL && i % 50 == 0 &&
			    access(stop, F_OK) == 0)
				break;
			Dccl__Envelope *r;
			void *msg, *raw;
			size_t len, rawlen;
			e.request_id = 100 + (uint64_t)i;
			if (auth_dev_pack(a, &e, &msg, &len) != 0 ||
			    nn_send(sock, &msg, NN_MSG, 0) < 0 ||
			    recv_reply(&r, &raw, &rawlen) != 0) {
				other++;
				continue;
			}
			auth_dev_check(a, raw, rawlen, r, r->counter,
			    DCCL__ENVELOPE__BODY_GET_STATUS);	/* unseal */
			if (r->body_case == DCCL__ENVELOPE__BODY_STATUS)
				ok++;
			else if (r->body_case == DCCL__ENVELOPE__BODY_ERROR &&
			    r->error->code ==
			    DCCL__ERROR_CODE__E_RATE_LIMITED)
				limited++;
			else
				other++;
			wire_free(r);
			nn_freemsg(raw);
		}
		printf("FLOOD ok %d rate-limited %d other %d\n", ok, limited,
		    other);
		return 0;
	} else if (!strcmp(what, "chunk-flood") && argc > 4) {
		/*
		 * N GetModel requests (chunk 0 of the current version) back
		 * to back, each signed anew: download pacing (cloudd/dlpace.h).
		 * Prints the chunks, the E_BUSY and their least and largest
		 * retry-after.
		 */
		static Dccl__GetModelReq gmr = DCCL__GET_MODEL_REQ__INIT;
		struct auth_dev *a = device(argv[3], 1);
		int n = atoi(argv[4]), ok = 0, busy = 0, other = 0;
		uint32_t lo = UINT32_MAX, hi = 0;
		e.device_id = argv[3];
		e.body_case = DCCL__ENVELOPE__BODY_GET_MODEL;
		e.get_model = &gmr;
		for (int i = 0; i < n; i++) {
			Dccl__Envelope *r;
			void *msg, *raw;
			size_t len, rawlen;
			e.request_id = 100 + (uint64_t)i;
			if (a == NULL || auth_dev_pack(a, &e, &msg, &len) != 0 ||
			    nn_send(sock, &msg, NN_MSG, 0) < 0 ||
			    recv_reply(&r, &raw, &rawlen) != 0) {
				other++;
				continue;
			}
			if (r->body_case == DCCL__ENVELOPE__BODY_MODEL_CHUNK)
				ok++;
			else if (r->body_case == DCCL__ENVELOPE__BODY_ERROR &&
			    r->error->code == DCCL__ERROR_CODE__E_BUSY) {
				uint32_t ms = r->error->retry_after_ms;
				busy++;
				lo = ms < lo ? ms : lo;
				hi = ms > hi ? ms : hi;
			} else
				other++;
			wire_free(r);
			nn_freemsg(raw);
		}
		printf("CHUNK-FLOOD chunks %d busy %d other %d retry-after "
		    "%u..%u\n", ok, busy, other, busy ? lo : 0, hi);
		return 0;
	} else if ((!strcmp(what, "nan-upload") || !strcmp(what, "upload") ||
	    !strcmp(what, "bignorm-upload") || !strcmp(what, "burst") ||
	    (!strcmp(what, "norm-upload") && argc > 5)) && argc > 3) {
		e.device_id = argv[3];
		if (argc > 4 && strcmp(what, "burst") != 0)
			/* upload DEV REQUEST-ID */
			e.request_id = strtoull(argv[4], NULL, 10);
		if (!strcmp(what, "nan-upload")) {
			data[2] = strtof("nan", NULL);
			t.name = "patch_m0";
			t.n_shape = 1;
			t.shape = shape;
			t.n_data = 4;
			t.data = data;
			up.n_tensors = 1;
		} else {
			/* The model's shape (2 hidden layers, rank 16), a
			 * norm of 1000 * sqrt(32). */
			for (int i = 0; i < 16; i++)
				big[i] = !strcmp(what, "norm-upload") ?
				    strtof(argv[5], NULL) :
				    strcmp(what, "bignorm-upload") ?
				    0.01f : 1000.0f;
			t.name = "patch_m0";
			t2.name = "patch_m1";
			t.n_shape = t2.n_shape = 1;
			t.shape = t2.shape = shape16;
			t.n_data = t2.n_data = 16;
			t.data = t2.data = big;
			up.n_tensors = 2;
		}
		up.base_version = 1;
		up.tensors = tp;
		e.body_case = DCCL__ENVELOPE__BODY_UPLOAD;
		e.upload = &up;
		if (!strcmp(what, "burst"))
			return argc > 4 ? burst(ep, &e, atoi(argv[4]),
			    argc > 5 ? strtoull(argv[5], NULL, 10) : 1000) : 2;
		return send_as(argv[3], &e);
	} else if (!strcmp(what, "mitm-rows") && argc > 4) {
		return mitm_rows(ep, argv[3], atoi(argv[4]));
	} else if (!strcmp(what, "slice") && argc > 5) {
		return slice_probe(argv[3], (uint32_t)strtoul(argv[4], NULL,
		    10), argv[5]);
	} else if (!strcmp(what, "model-rows") && argc > 4) {
		return model_rows(argv[3], (uint32_t)strtoul(argv[4], NULL,
		    10));
	} else if (!strcmp(what, "getmodel") && argc > 5) {
		/* Any version and chunk index: the real handler's bounds. */
		static Dccl__GetModelReq gmr = DCCL__GET_MODEL_REQ__INIT;
		gmr.version = strtoull(argv[4], NULL, 10);
		gmr.chunk_index = (uint32_t)strtoul(argv[5], NULL, 10);
		e.device_id = argv[3];
		e.body_case = DCCL__ENVELOPE__BODY_GET_MODEL;
		e.get_model = &gmr;
		return send_as(argv[3], &e);
	} else if (!strcmp(what, "report") && argc > 4) {
		/*
		 * A federated-selection report (cloudd/fedsel.c): good (one
		 * method "probe-m", point 0 best by far), or broken: a NaN or
		 * an inf sum, a grid of 5 points, 17 methods (the report
		 * limit) or 65 (the wire's).
		 */
		static Dccl__SelectReport q = DCCL__SELECT_REPORT__INIT;
		static Dccl__GridReport g[65], *gp[65];
		static char names[65][16];
		static double lr[3] = { 0.01 / 3, 0.01, 0.03 };
		static uint32_t st[2] = { 5, 20 };
		static double gain[6] = { 40, 1, 1, 1, 1, 1 };
		static double dsq[6] = { 16, 0, 0, 0, 0, 0 };
		static double rank[6];
		/* "pairw": probe-w at weights 0, 1, 3, 9; at its own CV
		   point (0) 1, 2, 6, 3 net pairs; "pairw-bad" a weight 5,
		   "pairw-nodef" without weight 0 */
		static const double pw[4] = { 0, 1, 3, 9 };
		static double prank[4][6] = { { 1, -2 }, { 2, -2 }, { 6, -2 },
			{ 3, -2 } };
		const char *k = argv[4];
		int fam = !strncmp(k, "pairw", 5);
		size_t nm = !strcmp(k, "many") ? 17 : !strcmp(k, "huge") ? 65 :
		    fam ? 4 : 1;
		if (!strcmp(k, "nan"))
			gain[3] = strtod("nan", NULL);
		else if (!strcmp(k, "inf"))
			dsq[1] = strtod("inf", NULL);
		for (size_t i = 0; i < nm; i++) {
			dccl__grid_report__init(&g[i]);
			snprintf(names[i], sizeof(names[i]), i ? "m%zu" : "probe-m",
			    i);
			g[i].method = names[i];
			g[i].n_lr = 3;
			g[i].lr = lr;
			g[i].n_steps = 2;
			g[i].steps = st;
			g[i].n = 100;
			g[i].pairs = 10;
			g[i].n_gain_sum = !strcmp(k, "grid") ? 5 : 6;
			g[i].n_diff_sq = g[i].n_rank_net = 6;
			g[i].gain_sum = gain;
			g[i].diff_sq = dsq;
			g[i].rank_net = rank;
			if (fam) {
				g[i].method = "probe-w";
				g[i].pair_weight = !strcmp(k, "pairw-bad") &&
				    i == 3 ? 5 : pw[i];
				g[i].rank_net = prank[i];
			}
			gp[i] = &g[i];
		}
		q.base_version = argc > 5 ? strtoull(argv[5], NULL, 10) : 1;
		q.n_methods = nm;
		q.methods = gp;
		if (!strcmp(k, "pairw-nodef")) {
			q.n_methods = 3;
			q.methods = gp + 1;
		}
		e.device_id = argv[3];
		e.body_case = DCCL__ENVELOPE__BODY_SELECT_REPORT;
		e.select_report = &q;
		return send_as(argv[3], &e);
	} else if (!strcmp(what, "selection") && argc > 3) {
		static Dccl__GetSelectionReq gsel = DCCL__GET_SELECTION_REQ__INIT;
		e.device_id = argv[3];
		e.body_case = DCCL__ENVELOPE__BODY_GET_SELECTION;
		e.get_selection = &gsel;
		return send_as(argv[3], &e);
	} else if (!strcmp(what, "retrieve") && argc > 6) {
		/* k, n and dim as given, with 4 (not n * dim) vectors unless
		 * they agree: the real handler's bounds and shape checks. */
		static Dccl__RetrieveReq rq = DCCL__RETRIEVE_REQ__INIT;
		static float v[4096];
		size_t nv;
		rq.model_version = 1;
		rq.k = (uint32_t)strtoul(argv[4], NULL, 10);
		rq.n = (uint32_t)strtoul(argv[5], NULL, 10);
		rq.dim = (uint32_t)strtoul(argv[6], NULL, 10);
		nv = (size_t)rq.n * rq.dim;
		rq.n_vectors = nv <= sizeof(v) / sizeof(v[0]) ? nv : 4;
		rq.vectors = v;
		e.device_id = argv[3];
		e.body_case = DCCL__ENVELOPE__BODY_RETRIEVE;
		e.retrieve = &rq;
		return send_as(argv[3], &e);
	} else if (strcmp(what, "status") != 0) {
		fprintf(stderr, "dccl-probe: unknown probe '%s'\n", what);
		return 2;
	}
	return send_as(e.device_id, &e);
}
