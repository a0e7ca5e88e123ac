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

static void	pump(struct uplink *u);

/* Sends msg as request id on lane l, which is free. 0, or -1 (freed). */
static int
lane_send(struct uplink_lane *l, uint32_t id, void *msg, size_t len)
{
	struct uplink *u = l->u;
	uint32_t slot = (id & 0x7fffffff) >> UPLINK_SEQ_BITS;
	struct nn_cmsghdr *c;
	uint8_t *p;
	void *hdr;

	if ((hdr = nn_allocmsg(NN_CMSG_SPACE(SP_LEN), 0)) == NULL) {
		nn_freemsg(msg);
		return -1;
	}
	c = hdr;
	c->cmsg_len = NN_CMSG_LEN(SP_LEN);
	c->cmsg_level = PROTO_SP;
	c->cmsg_type = SP_HDR;
	p = NN_CMSG_DATA(c);
	*(size_t *)(void *)p = 4;
	p += sizeof(size_t);
	p[0] = (uint8_t)(id >> 24);	/* last hop: the top bit */
	p[1] = (uint8_t)(id >> 16);
	p[2] = (uint8_t)(id >> 8);
	p[3] = (uint8_t)id;
	if (nnuv_send(&l->nn, msg, len, hdr) != 0)
		return -1;
	l->id = id;
	l->since = uv_now(u->loop);
	u->wait[slot].sent = l->since;
	return 0;
}

static struct uplink_lane *
free_lane(struct uplink *u)
{
	for (int i = 0; i < u->n_lane; i++)
		if (u->lane[i].id == 0)
			return &u->lane[i];
	return NULL;
}

/* Sends waiting requests, oldest first, while lanes are free. */
static void
pump(struct uplink *u)
{
	struct uplink_lane *l;
	struct uplink_wait *w;
	uint32_t s;

	while (u->head != UPLINK_NONE && (l = free_lane(u)) != NULL) {
		s = u->head;
		w = &u->wait[s];
		u->head = w->next;
		if (u->head == UPLINK_NONE)
			u->tail = UPLINK_NONE;
		u->n_waiting--;
		/* A send that fails is the device's timeout to handle. */
		(void)lane_send(l, w->id, w->msg, w->len);
		w->msg = NULL;
	}
}

static void
recv_cb(struct nnuv *s, void *msg, size_t len, void *hdr)
{
	struct uplink_lane *l = s->data;
	struct uplink *u = l->u;
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
	/* The lane is free once its own request is answered; a late reply
	 * to a request it gave up on leaves the current one in flight. */
	if (v != 0 && v == l->id) {
		l->id = 0;
		pump(u);	/* the waiting go first: FIFO */
	}
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

/* Frees the lanes whose request went unanswered (a replica died with it,
 * or the reply was lost): the devices time out on their own. */
static void
reap_cb(uv_timer_t *t)
{
	struct uplink *u = t->data;
	uint64_t now = uv_now(u->loop);
	int n = 0;

	for (int i = 0; i < u->n_lane; i++)
		if (u->lane[i].id != 0 &&
		    now - u->lane[i].since >= u->lane_timeout_ms) {
			u->lane[i].id = 0;
			u->n_reaped++;
			n++;
		}
	if (n > 0)
		pump(u);
}

static int
lane_open(struct uplink_lane *l, struct uplink *u, const char *endpoints,
    const struct uplink_opts *o, char *err, size_t errlen)
{
	char *dup = NULL, *save = NULL, *ep;
	int sock;

	l->u = u;
	/* Raw: deviced numbers its requests itself and keeps only the reply
	 * to a device's latest send. nanomsg 1.1.5's own REQ state machine
	 * aborts in nn_recvmsg when replies arrive for requests it re-sent
	 * or dropped (tests/integ/late_replies.sh). */
	if ((sock = nn_socket(AF_SP_RAW, NN_REQ)) < 0) {
		snprintf(err, errlen, "REQ: %s", nn_strerror(nn_errno()));
		return -1;
	}
	if (nn_setsockopt(sock, NN_SOL_SOCKET, NN_RCVMAXSIZE,
	    &o->max_message, sizeof(o->max_message)) < 0 ||
	    nnuv_sockbuf(sock, o->sockbuf) != 0) {
		snprintf(err, errlen, "REQ: %s", nn_strerror(nn_errno()));
		nn_close(sock);
		return -1;
	}
	dup = xstrdup(endpoints);
	for (ep = strtok_r(dup, ",", &save); ep; ep = strtok_r(NULL, ",",
	    &save))
		if (nn_connect(sock, ep) < 0) {
			snprintf(err, errlen, "CONNECT: %s: %s", ep,
			    nn_strerror(nn_errno()));
			goto fail;
		}
	if (nnuv_init(&l->nn, u->loop, sock, 1, recv_cb, l) != 0) {
		snprintf(err, errlen, "REQ: cannot watch the socket");
		goto fail;
	}
	free(dup);
	return 0;
fail:
	free(dup);
	nn_close(sock);
	return -1;
}

int
uplink_open(struct uplink *u, uv_loop_t *loop, const char *endpoints,
    const struct uplink_opts *o, uplink_recv_fn recv, void *data,
    char *err, size_t errlen)
{
	int lanes = o->lanes;
	uint32_t n_slots = o->n_slots;
	uint64_t timeout_ms = o->timeout_ms;
	uint64_t tick;

	memset(u, 0, sizeof(*u));
	if (lanes < 1 || lanes > UPLINK_MAX_LANES || n_slots < 1 ||
	    n_slots > UPLINK_MAX_SLOTS) {
		snprintf(err, errlen, "UPLINK: %d lanes for %u devices", lanes,
		    n_slots);
		return -1;
	}
	u->loop = loop;
	u->recv = recv;
	u->data = data;
	u->n_slots = n_slots;
	u->head = u->tail = UPLINK_NONE;
	u->lane_timeout_ms = timeout_ms > 0 ? timeout_ms : 1;
	u->wait = xcalloc(n_slots, sizeof(*u->wait));
	u->lane = xcalloc((size_t)lanes, sizeof(*u->lane));
	for (; u->n_lane < lanes; u->n_lane++)
		if (lane_open(&u->lane[u->n_lane], u, endpoints, o, err,
		    errlen) != 0)
			goto fail;
	uv_timer_init(loop, &u->reap);
	u->reap.data = u;
	tick = u->lane_timeout_ms / 4 > 0 ? u->lane_timeout_ms / 4 : 1;
	uv_timer_start(&u->reap, reap_cb, tick, tick);
	u->open = 1;
	return 0;
fail:
	for (int i = 0; i < u->n_lane; i++)
		nnuv_close(&u->lane[i].nn, NULL);
	/* The lanes' handles close on the next loop turn: uplink_fini. */
	return -1;
}

int
uplink_send(struct uplink *u, uint32_t slot, uint32_t seq, void *msg,
    size_t len)
{
	struct uplink_lane *l;
	struct uplink_wait *w;
	uint32_t id;

	if (!u->open || slot >= u->n_slots) {
		nn_freemsg(msg);
		return -1;
	}
	id = 0x80000000u | slot << UPLINK_SEQ_BITS | (seq & UPLINK_SEQ_MASK);
	if (u->head == UPLINK_NONE && (l = free_lane(u)) != NULL)
		return lane_send(l, id, msg, len);
	w = &u->wait[slot];
	if (w->msg != NULL) {
		/* A re-send while the first still waits: it takes the place,
		 * so a device never waits twice. */
		nn_freemsg(w->msg);
	} else {
		w->next = UPLINK_NONE;
		if (u->tail == UPLINK_NONE)
			u->head = slot;
		else
			u->wait[u->tail].next = slot;
		u->tail = slot;
		if (++u->n_waiting > u->most_waiting)
			u->most_waiting = u->n_waiting;
	}
	w->msg = msg;
	w->len = len;
	w->id = id;
	return 0;
}

int
uplink_sent_at(const struct uplink *u, uint32_t slot, uint64_t *at)
{
	if (!u->open || slot >= u->n_slots || u->wait[slot].msg != NULL)
		return -1;
	*at = u->wait[slot].sent;
	return 0;
}

void
uplink_drain(struct uplink *u)
{
	if (!u->open)
		return;
	for (int i = 0; i < u->n_lane; i++)
		nnuv_drain(&u->lane[i].nn);
}

void
uplink_close(struct uplink *u)
{
	if (!u->open)
		return;
	if (u->n_bad > 0)
		log_warnx("UPLINK: %llu replies without a request id dropped",
		    (unsigned long long)u->n_bad);
	log_info("UPLINK: %d lanes, at most %u requests waited for one, %llu "
	    "lanes freed unanswered", u->n_lane, u->most_waiting,
	    (unsigned long long)u->n_reaped);
	for (int i = 0; i < u->n_lane; i++)
		nnuv_close(&u->lane[i].nn, NULL);
	uv_timer_stop(&u->reap);
	uv_close((uv_handle_t *)&u->reap, NULL);
	u->open = 0;
}

void
uplink_fini(struct uplink *u)
{
	if (u->wait != NULL)
		for (uint32_t s = 0; s < u->n_slots; s++)
			if (u->wait[s].msg != NULL)
				nn_freemsg(u->wait[s].msg);
	free(u->wait);
	free(u->lane);
	u->wait = NULL;
	u->lane = NULL;
	u->n_lane = 0;
}
