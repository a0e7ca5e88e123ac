/*
 * uplink: a host's one connection to the cloud, shared by all the devices
 * it hosts. A raw REQ socket whose request ids carry the device's slot
 * above a per-device sequence number, so replies find their device.
 *
 * Why: one socket per device made a deviced of 250 devices hold 250
 * connections, and the cloud one per device of the fleet. At 30,000
 * devices that is more descriptors than a cloudd process may open here
 * (RLIMIT_NOFILE 20,000), and nanomsg then spins on accept (issue 14).
 * Now the cloud holds one connection per deviced process and endpoint.
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

/*
 * A reply for slot, to the request numbered seq. Takes ownership of msg
 * (nn_freemsg). Replies without a valid request id never get here.
 */
typedef void (*uplink_recv_fn)(void *data, uint32_t slot, uint32_t seq,
    void *msg, size_t len);

struct uplink {
	struct nnuv	 nn;
	int		 open;
	uint64_t	 n_bad;		/* replies with no valid request id */
	uplink_recv_fn	 recv;
	void		*data;
};

/*
 * Connects to every endpoint of the comma-separated list (replicas share
 * the requests, as nanomsg's REQ balances them). Replies larger than
 * max_message are refused by nanomsg. 0, or -1 with the reason in err.
 */
int	uplink_open(struct uplink *u, uv_loop_t *loop, const char *endpoints,
	    int max_message, uplink_recv_fn recv, void *data, char *err,
	    size_t errlen);
/*
 * Sends msg (an nn_allocmsg buffer, owned from here on) as request seq of
 * slot. 0, or -1 (msg freed) when the socket is gone.
 */
int	uplink_send(struct uplink *u, uint32_t slot, uint32_t seq, void *msg,
	    size_t len);
/* Delivers the replies already waiting now (nnuv_drain). */
void	uplink_drain(struct uplink *u);
void	uplink_close(struct uplink *u);

#endif
