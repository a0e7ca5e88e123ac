/*
 * dccl-probe: sends one crafted request to a cloudd endpoint and prints the
 * reply as "REPLY <body>", "ERROR <code>: <message>" or "NO-REPLY". The
 * integration tests use it to check that hostile or broken input gets a
 * typed error and that cloudd keeps serving.
 *
 *   dccl-probe EP garbage|version|nobody|unregistered|replybody|admin|
 *              status|register DEV|nan-upload DEV|oversize BYTES
 */
#include <nanomsg/nn.h>
#include <nanomsg/reqrep.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "shared/wire.h"

static int
exchange(int sock, const void *buf, size_t len)
{
	void *rep = NULL;
	Dccl__Envelope *e = NULL;
	char err[256];
	int n;

	if (nn_send(sock, buf, len, 0) < 0) {
		printf("SEND-FAILED: %s\n", nn_strerror(nn_errno()));
		return 1;
	}
	if ((n = nn_recv(sock, &rep, NN_MSG, 0)) < 0) {
		printf("NO-REPLY\n");
		return 0;
	}
	if (wire_unpack(rep, (size_t)n, &e, err, sizeof(err)) != 0)
		printf("BAD-REPLY: %s\n", err);
	else if (e->body_case == DCCL__ENVELOPE__BODY_ERROR)
		printf("ERROR %s: %s\n", wire_error_name(e->error->code),
		    e->error->message);
	else
		printf("REPLY %s\n", wire_body_name(e->body_case));
	wire_free(e);
	nn_freemsg(rep);
	return 0;
}

static int
send_env(int sock, Dccl__Envelope *e)
{
	void *msg;
	size_t len;
	int rc;

	if (wire_pack_nn(e, &msg, &len) != 0)
		return 1;
	rc = exchange(sock, msg, len);
	nn_freemsg(msg);
	return rc;
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
	Dccl__Tensor t = DCCL__TENSOR__INIT, *tp = &t;
	uint32_t shape[1] = { 4 };
	float data[4] = { 0.1f, 0.2f, 0.0f, 0.3f };
	const char *ep, *what;
	int sock, tmo = 3000;

	if (argc < 3) {
		fprintf(stderr, "usage: dccl-probe ENDPOINT WHAT [ARG]\n");
		return 2;
	}
	ep = argv[1];
	what = argv[2];
	if ((sock = nn_socket(AF_SP, NN_REQ)) < 0 ||
	    nn_setsockopt(sock, NN_SOL_SOCKET, NN_RCVTIMEO, &tmo,
	    sizeof(tmo)) < 0 || nn_connect(sock, ep) < 0) {
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
		return exchange(sock, junk, sizeof(junk));
	} else if (!strcmp(what, "oversize") && argc > 3) {
		size_t n = strtoul(argv[3], NULL, 10);
		char *big = calloc(n, 1);
		int rc = exchange(sock, big, n);
		free(big);
		return rc;
	} else if (!strcmp(what, "version")) {
		e.version = 99;
	} else if (!strcmp(what, "nobody")) {
		e.body_case = DCCL__ENVELOPE__BODY__NOT_SET;
	} else if (!strcmp(what, "unregistered")) {
		e.device_id = "nobody-knows-me";
		e.body_case = DCCL__ENVELOPE__BODY_GET_MODEL;
		e.get_model = &gm;
	} else if (!strcmp(what, "replybody")) {
		e.body_case = DCCL__ENVELOPE__BODY_ACK;
		e.ack = &ack;
	} else if (!strcmp(what, "admin")) {
		e.body_case = DCCL__ENVELOPE__BODY_ADMIN_LIST;
		e.admin_list = &al;
	} else if (!strcmp(what, "register") && argc > 3) {
		e.device_id = argv[3];
		rg.user_id = 0;
		e.body_case = DCCL__ENVELOPE__BODY_REGISTER_REQ;
		e.register_req = &rg;
	} else if (!strcmp(what, "nan-upload") && argc > 3) {
		e.device_id = argv[3];
		data[2] = strtof("nan", NULL);
		t.name = "patch_m0";
		t.n_shape = 1;
		t.shape = shape;
		t.n_data = 4;
		t.data = data;
		up.base_version = 1;
		up.n_tensors = 1;
		up.tensors = &tp;
		e.body_case = DCCL__ENVELOPE__BODY_UPLOAD;
		e.upload = &up;
	} else if (strcmp(what, "status") != 0) {
		fprintf(stderr, "dccl-probe: unknown probe '%s'\n", what);
		return 2;
	}
	return send_env(sock, &e);
}
