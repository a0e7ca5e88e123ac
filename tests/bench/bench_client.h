/*
 * bench_client: the request client the download benchmarks share
 * (bench_rpc's unsigned client, bench_download's signed one): a REQ
 * socket with a receive timeout and no size limit, and one exchange that
 * returns the decoded, checked reply. Header-only, as each program
 * of tests/bench is one source file.
 */
#ifndef TESTS_BENCH_CLIENT_H
#define TESTS_BENCH_CLIENT_H

#include <stdio.h>

#include <nanomsg/nn.h>
#include <nanomsg/reqrep.h>

#include "shared/auth.h"
#include "shared/wire.h"

/* A REQ socket connected to ep (timeout tmo_ms), or -1 with err. */
static inline int
bench_connect(const char *ep, int tmo_ms, char *err, size_t errlen)
{
	int sock, unlimited = -1;

	if ((sock = nn_socket(AF_SP, NN_REQ)) < 0 ||
	    nn_setsockopt(sock, NN_SOL_SOCKET, NN_RCVTIMEO, &tmo_ms,
	    sizeof(tmo_ms)) < 0 ||
	    nn_setsockopt(sock, NN_SOL_SOCKET, NN_RCVMAXSIZE, &unlimited,
	    sizeof(unlimited)) < 0 || nn_connect(sock, ep) < 0) {
		snprintf(err, errlen, "socket: %s", nn_strerror(nn_errno()));
		if (sock >= 0)
			nn_close(sock);
		return -1;
	}
	return sock;
}

/*
 * Sends e on sock, signed by a (NULL: unsigned), and returns the decoded
 * reply (free with wire_free), or NULL with err: a transport error, a
 * reply that is not a valid envelope or (signed) not authenticated, or an
 * Error reply.
 */
static inline Dccl__Envelope *
bench_call(int sock, struct auth_dev *a, Dccl__Envelope *e, char *err,
    size_t errlen)
{
	Dccl__Envelope *r = NULL;
	void *msg, *rep = NULL;
	size_t len;
	int n;

	if ((a != NULL ? auth_dev_pack(a, e, &msg, &len) :
	    wire_pack_nn(e, &msg, &len)) != 0) {
		snprintf(err, errlen, a != NULL ? "cannot sign" :
		    "nn_allocmsg failed");
		return NULL;
	}
	if (nn_send(sock, &msg, NN_MSG, 0) < 0) {
		snprintf(err, errlen, "send: %s", nn_strerror(nn_errno()));
		nn_freemsg(msg);
		return NULL;
	}
	if ((n = nn_recv(sock, &rep, NN_MSG, 0)) < 0) {
		snprintf(err, errlen, "recv: %s", nn_strerror(nn_errno()));
		return NULL;
	}
	if (wire_unpack(rep, (size_t)n, &r, err, errlen) != 0) {
		wire_free(r);
		r = NULL;
	} else if (a != NULL && auth_dev_check(a, rep, (size_t)n, r,
	    e->counter, e->body_case) != 1) {
		snprintf(err, errlen, "reply not authenticated (%s)",
		    r->body_case == DCCL__ENVELOPE__BODY_ERROR ?
		    r->error->message : "forged");
		wire_free(r);
		r = NULL;
	} else if (r->body_case == DCCL__ENVELOPE__BODY_ERROR) {
		snprintf(err, errlen, "%s: %s", wire_error_name(r->error->code),
		    r->error->message);
		wire_free(r);
		r = NULL;
	}
	nn_freemsg(rep);
	return r;
}

#endif
