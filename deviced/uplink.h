/*
 * uplink: a host's connections to the cloud, shared by all the devices it
 * hosts. A few lanes (raw REQ sockets, one connection each) carry at most
 * one request at a time; the request id carries the device's slot above
 * a per-device sequence number, so replies find their device. Sends that
 * find every lane busy wait in a FIFO, one entry per device (a re-send
 * replaces the device's waiting entry), so the wait is bounded by the
 * number of devices hosted.
 *
 * Why lanes: one socket per device made a deviced of 250 devices hold 250
 * connections, and the cloud one per device of the fleet; at 30,000
 * devices that is more descriptors than a cloudd may open here
 * (RLIMIT_NOFILE 20,000). One connection for all devices fails the other
 * way: nanomsg's raw REP socket silently drops a reply to a connection
 * that is still writing an earlier one (a 256 KiB chunk), so devices
 * sharing a connection lost replies and timed out (29 % of requests at
 * 10,000 devices). One request in flight per connection never meets that
 * drop (issue 14, tests/integ/uplink.sh).
 */
#ifndef DCCL_UPLINK_H
#define DCCL_UPLINK_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "shared/nnuv.h"

/* A request id is 31 bits (nanomsg's top bit marks the last hop): the
 * slot above UPLINK_SEQ_BITS of sequence. 2^19 devices per host. */
#define UPLINK_SEQ_BITS		12
#define UPLINK_SEQ_MASK		((1u << UPLINK_SEQ_BITS) - 1)
#define UPLINK_MAX_SLOTS	(1u << (31 - UPLINK_SEQ_BITS))
#define UPLINK_MAX_LANES	64
#define UPLINK_NONE		UINT32_MAX

/*
 * A reply for slot, to the request numbered seq. Takes ownership of msg
 * (nn_freemsg). Replies without a valid request id never get here.
 */
typedef void (*uplink_recv_fn)(void *data, uint32_t slot, uint32_t seq,
    void *msg, size_t len);

struct uplink;

struct uplink_lane {
	struct nnuv	 nn;
	struct uplink	*u;
	uint32_t	 id;		/* request id in flight, 0 when free */
	uint64_t	 since;		/* uv_now when it was sent */
};

/* A device's send waiting for a lane, and when its last one left. */
struct uplink_wait {
	void		*msg;		/* NULL: nothing waiting */
	size_t		 len;
	uint32_t	 id;
	uint32_t	 next;		/* FIFO link, UPLINK_NONE at the end */
	uint64_t	 sent;		/* uv_now when the latest went out */
};

struct uplink {
	uv_loop_t		*loop;
	struct uplink_lane	*lane;
	int			 n_lane;
	int			 open;
	struct uplink_wait	*wait;		/* one per slot */
	uint32_t		 n_slots;
	uint32_t		 head, tail;	/* the FIFO of waiting slots */
	uint32_t		 n_waiting, most_waiting;
	uint64_t		 lane_timeout_ms;
	uv_timer_t		 reap;		/* frees lanes never answered */
	uint64_t		 n_bad;		/* replies with no request id */
	uint64_t		 n_reaped;	/* lanes freed unanswered */
	uplink_recv_fn		 recv;
	void			*data;
};

/* How uplink_open connects. */
struct uplink_opts {
	int		 lanes;		/* connections */
	uint32_t	 n_slots;	/* devices */
	uint64_t	 timeout_ms;	/* a lane's reply deadline */
	int		 max_message;	/* NN_RCVMAXSIZE */
	int		 sockbuf;	/* nnuv_sockbuf, bytes */
};

/*
 * Opens o->lanes connections (each to every endpoint of the
 * comma-separated list: replicas share the requests, as nanomsg's REQ
 * balances them) for o->n_slots devices. A lane whose request has had no
 * reply for o->timeout_ms takes the next one. Replies larger than
 * o->max_message are refused by nanomsg. 0, or -1 with the reason in err.
 */
int	uplink_open(struct uplink *u, uv_loop_t *loop, const char *endpoints,
	    const struct uplink_opts *o, uplink_recv_fn recv, void *data,
	    char *err, size_t errlen);
/*
 * Sends msg (an nn_allocmsg buffer, owned from here on) as request seq of
 * slot, on a free lane or once one is free. 0, or -1 (msg freed) when
 * the socket is gone.
 */
int	uplink_send(struct uplink *u, uint32_t slot, uint32_t seq, void *msg,
	    size_t len);
/*
 * When slot's latest request went out on a lane (uv_now ms) in *at: 0, or
 * -1 while it still waits for one. A device's deadline counts from then:
 * the wait for a lane is its own host's queue, not the cloud's silence.
 */
int	uplink_sent_at(const struct uplink *u, uint32_t slot, uint64_t *at);
/* Delivers the replies already waiting now (nnuv_drain). */
void	uplink_drain(struct uplink *u);
/* Closes the lanes; their handles close as the loop runs on. */
void	uplink_close(struct uplink *u);
/* Frees what is left, once the loop has run (after uplink_close). */
void	uplink_fini(struct uplink *u);

#endif
