/*
 * dlpace: pacing of model downloads. Every chunk reply (GetModel, GetOfa)
 * draws its bytes from one token bucket of limits.download-rate MiB/s,
 * 0.25 s deep. nanomsg's raw REP socket takes any reply at once and
 * holds it until the device reads it, and silently drops a second reply
 * to a device whose first one is still being written; a cloud that packs
 * chunks faster than the fleet reads them builds up those held replies
 * (memory) and the devices' deadlines expire on replies that are queued,
 * not lost. Beyond the bucket a chunk request gets E_BUSY at once, with a
 * retry-after of at least the time the bucket needs to refill for it.
 * The default, 1024 MiB/s (8.6 Gbit/s), is 86 % of a 10 Gbit/s port: it
 * keeps the rest of a cloud's replies a share of that egress, and lets
 * one device download at 1 GB/s (issue 14; 256 MiB/s before, which capped
 * every download at 268 MB/s in all). Memory does not need it lower:
 * download slots (dlslots.h) bound the chunk bytes held to 128 MiB, and a
 * device has one chunk reply in transit (nanomsg's REP, one per pipe), so
 * no per-device rate is kept either.
 * Loop thread only.
 */
#ifndef CLOUDD_DLPACE_H
#define CLOUDD_DLPACE_H

#include <stddef.h>
#include <stdint.h>

#include "shared/tbucket.h"

struct cloudd;

struct dlpace {
	struct tbucket	 b;	/* bytes, refilled per uv_now ms */
	uint64_t granted, refused;	/* chunks, for the metrics */
};

/*
 * 0 when a chunk of len bytes may go out now (its bytes are taken), else
 * the milliseconds (>= 1) until the bucket holds them. Always 0 when
 * limits.download-rate is 0.
 */
uint32_t	dlpace_take(struct cloudd *cd, size_t len);

#endif
