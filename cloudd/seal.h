/*
 * seal: one thread, at the loop's priority, that packs and MACs (or
 * encrypts) model chunks (GetModel, GetOfa) off the loop. Keyed BLAKE2b over a 256 KiB chunk
 * costs ~300 us; done on the loop it was 68% of the loop's time under a
 * download-heavy load, and every light request queued behind it. The
 * threadpool is not the place either: its workers run niced retrievals,
 * so a chunk would wait behind a search queue.
 *
 * Loop thread API. Without a started sealer (tests, fuzz harnesses)
 * seal_chunk() seals inline.
 */
#ifndef CLOUDD_SEAL_H
#define CLOUDD_SEAL_H

#include "dccl.pb-c.h"

struct cloudd;
struct rpc_req;
struct sblob;

/* Replies smaller than this are sealed inline: the handoff costs more. */
#define SEAL_MIN_BYTES	(32 * 1024)

int	seal_start(struct cloudd *cd);
/* Closes the wakeup handle and joins the thread; no jobs may be left. */
void	seal_stop(struct cloudd *cd);
/*
 * Sends mc as r's reply, sealed with r->seal, and frees r, now or from the
 * loop once the thread is done. When mc->data lies within owner the job
 * holds a reference to owner instead of a copy of the chunk; otherwise
 * (owner NULL) the chunk is copied. mc's other fields are copied.
 */
void	seal_chunk(struct cloudd *cd, struct rpc_req *r,
	    const Dccl__ModelChunk *mc, struct sblob *owner);
/*
 * Sends mc as r's reply packed without MAC or encryption, now, on the loop
 * (one copy into the message): a protocol-5 model chunk in auth.mode mac,
 * which the device checks against the version's manifest.
 */
void	seal_chunk_plain(struct cloudd *cd, struct rpc_req *r,
	    const Dccl__ModelChunk *mc);

#endif
