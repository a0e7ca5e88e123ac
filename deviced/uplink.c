/*
 * uplink: see uplink.h. The request id rides in the raw socket's SP_HDR
 * control data: the header's size (a size_t, 4), then the id big-endian.
 */
#include <nanomsg/nn.h>
#include <nanomsg/reqrep.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "deviced/uplink.h"
#include "shared/log.h"
#include "shared/xmalloc.h"

#define SP_LEN	(sizeof(size_t) + 4)

static void
recv_cb(struct nnuv *s, void *msg, size_t len, void *hdr)
{
	struct uplink *u = s->data;
	const struct nn_cmsghdr *c = hdr;
	const uint8_t *id;
	uint32_t v = 0;

	if (c != NULL && c->cmsg_level == PROTO_SP && c->cmsg_type == SP_HDR &&
	    c->cmsg_len >= NN_CMSG_LEN(SP_LEN) &&
	    *(const size_t *)(const void *)NN_CMSG_DATA(c) == 4) {
		id = NN_CMSG_DATA(c) + sizeof(size_t);
		v = (uint32_t)id[0] << 24 | (uint32_t)id[1] << 16 |
		    (uint32_t)id[2] << 8 | id[3];
	}
	if (hdr != NULL)
		nn_freemsg(hdr);
	if (!(v & 0x80000000u)) {
		/* Not one of ours (a raw REQ only sees replies to its ids,
		 * but a peer may send anything). */
		u->n_bad++;
		nn_freemsg(msg);
		return;
	}
	v &= 0x7fffffff;
	u->recv(u->data, v >> UPLINK_SEQ_BITS, v & UPLINK_SEQ_MASK, msg, len);
}

int
uplink_open(struct uplink *u, uv_loop_t *loop, const char *endpoints,
    int max_message, uplink_recv_fn recv, void *data, char *err,
    size_t errlen)
{
	char *dup = NULL, *save = NULL, *ep;
	int sock;

	memset(u, 0, sizeof(*u));
	u->recv = recv;
	u->data = data;
	/* Raw: deviced numbers its requests itself and keeps only the reply
	 * to a device's latest send. nanomsg 1.1.5's own REQ state machine
	 * aborts in nn_recvmsg when replies arrive for requests it re-sent
	 * or dropped (tests/integ/late_replies.sh). */
	if ((sock = nn_socket(AF_SP_RAW, NN_REQ)) < 0) {
		snprintf(err, errlen, "REQ: %s", nn_strerror(nn_errno()));
		return -1;
	}
	nn_setsockopt(sock, NN_SOL_SOCKET, NN_RCVMAXSIZE, &max_message,
	    sizeof(max_message));
	dup = xstrdup(endpoints);
	for (ep = strtok_r(dup, ",", &save); ep; ep = strtok_r(NULL, ",",
	    &save))
		if (nn_connect(sock, ep) < 0) {
			snprintf(err, errlen, "CONNECT: %s: %s", ep,
			    nn_strerror(nn_errno()));
			goto fail;
		}
	if (nnuv_init(&u->nn, loop, sock, 1, recv_cb, u) != 0) {
		snprintf(err, errlen, "REQ: cannot watch the socket");
		goto fail;
	}
	free(dup);
	u->open = 1;
	return 0;
fail:
	free(dup);
	nn_close(sock);
	return -1;
}

int
uplink_send(struct uplink *u, uint32_t slot, uint32_t seq, void *msg,
    size_t len)
{
	struct nn_cmsghdr *c;
	uint32_t v;
	uint8_t *id;
	void *hdr;

	if (!u->open || slot >= UPLINK_MAX_SLOTS ||
	    (hdr = nn_allocmsg(NN_CMSG_SPACE(SP_LEN), 0)) == NULL) {
		nn_freemsg(msg);
		return -1;
	}
	c = hdr;
	c->cmsg_len = NN_CMSG_LEN(SP_LEN);
	c->cmsg_level = PROTO_SP;
	c->cmsg_type = SP_HDR;
	v = 0x80000000u | slot << UPLINK_SEQ_BITS | (seq & UPLINK_SEQ_MASK);
	id = NN_CMSG_DATA(c);
	*(size_t *)(void *)id = 4;
	id += sizeof(size_t);
	id[0] = (uint8_t)(v >> 24);	/* last hop: the top bit */
	id[1] = (uint8_t)(v >> 16);
	id[2] = (uint8_t)(v >> 8);
	id[3] = (uint8_t)v;
	return nnuv_send(&u->nn, msg, len, hdr);
}

void
uplink_drain(struct uplink *u)
{
	if (u->open)
		nnuv_drain(&u->nn);
}

void
uplink_close(struct uplink *u)
{
	if (!u->open)
		return;
	if (u->n_bad > 0)
		log_warnx("UPLINK: %llu replies without a request id dropped",
		    (unsigned long long)u->n_bad);
	nnuv_close(&u->nn, NULL);
	u->open = 0;
}
