/*
 * dlslots: bounds the model-download chunk bytes the cloud has in flight
 * (issue 14). Every device downloading holds a slot from its first chunk
 * request; limits.max-download-bytes / limits.chunk-size slots (at least
 * one, at most DLSLOTS_MAX), so chunk replies handed to the network for devices holding a
 * slot stay within limits.max-download-bytes whatever the fleet size
 * (nanomsg keeps at most one reply per connection: a raw REP socket
 * drops a reply to a pipe still sending one). A slot frees
 * DLSLOTS_DRAIN_MS after its device asked for its last chunk, or
 * DLSLOTS_IDLE_MS after its last chunk request (a device that went
 * away). A chunk request of a device without a slot while all are held
 * gets E_BUSY with the retry-after hint, before any chunk is packed: the
 * downloads under way finish instead of all slowing down together.
 * Loop thread only.
 */
#ifndef CLOUDD_DLSLOTS_H
#define CLOUDD_DLSLOTS_H

#include "cloudd/rpc.h"

#define DLSLOTS_DRAIN_MS	100
#define DLSLOTS_IDLE_MS		5000
/* at most this many slots (a linear scan per chunk request) */
#define DLSLOTS_MAX		4096

/*
 * Takes or renews r's device's slot for a request of chunk idx of
 * n_chunks. 0, or -1 after an E_BUSY reply (r is then answered).
 */
int	dlslots_take(struct cloudd *cd, struct rpc_req *r, uint32_t idx,
	    uint32_t n_chunks);
/* Slots held now (metrics, tests). */
uint32_t	dlslots_held(struct cloudd *cd);
void	dlslots_free(struct cloudd *cd);

#endif
