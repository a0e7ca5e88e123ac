/*
 * download: GetModel, one chunk of a model version's shared part per
 * request (protocol 7: the model without other users' rows, packed once
 * per version by slice.c, which keeps the last few versions); GetOfa
 * serves parts of the Forward-OFA model the same way (ofa_train.c packs and caches them).
 * Every chunk is handed to seal.c (MAC or encryption off the loop) with
 * a reference to the shared bytes it lies in, never a copy. Loop thread
 * only.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "cloudd/cloudd.h"
#include "cloudd/dlslots.h"
#include "cloudd/manifest.h"
#include "cloudd/ofa_train.h"
#include "cloudd/rpc.h"
#include "cloudd/sblob.h"
#include "cloudd/seal.h"
#include "cloudd/slice.h"
#include "shared/log.h"
#include "shared/xmalloc.h"

void
download_cache_free(struct cloudd *cd)
{
	manifest_cache_free(cd);
	slice_cache_free(cd);
}

/*
 * The chunk arithmetic of both requests: chunk idx of a blob of total
 * bytes, limits.chunk-size each. Fills mc's version, index, count, total,
 * checksum and length and *off; 0, or -1 after an E_NOT_FOUND reply.
 */
static int
chunk_fill(struct cloudd *cd, struct rpc_req *r, const char *what,
    uint64_t v, uint32_t idx, uint64_t total, const uint8_t *sum,
    Dccl__ModelChunk *mc, uint64_t *off)
{
	uint64_t cs = (uint64_t)cd->cf.chunk_size;
	uint64_t n_chunks = (total + cs - 1) / cs;

	if (idx >= n_chunks) {
		rpc_error(cd, r, DCCL__ERROR_CODE__E_NOT_FOUND,
		    "chunk %u out of range (%s v%llu has %llu)", idx, what,
		    (unsigned long long)v, (unsigned long long)n_chunks);
		return -1;
	}
	*off = (uint64_t)idx * cs;
	mc->version = v;
	mc->chunk_index = idx;
	mc->n_chunks = (uint32_t)n_chunks;
	mc->total_size = total;
	mc->checksum.data = (uint8_t *)sum;
	mc->checksum.len = 32;
	mc->data.len = (size_t)(total - *off < cs ? total - *off : cs);
	return 0;
}

/*
 * Download pacing (dlpace.h): 0 when the chunk in mc may go out now, else
 * -1 after an E_BUSY reply that says when to come back.
 */
static int
paced(struct cloudd *cd, struct rpc_req *r, const Dccl__ModelChunk *mc)
{
	uint32_t ms = dlpace_take(cd, mc->data.len);

	if (ms == 0)
		return 0;
	r->retry_min_ms = ms;
	rpc_error(cd, r, DCCL__ERROR_CODE__E_BUSY, "downloads are at "
	    "limits.download-rate (%g MiB/s); retry later",
	    cd->cf.download_rate);
	return -1;
}

void
download_rpc(struct cloudd *cd, struct rpc_req *r)
{
	Dccl__GetModelReq *q = r->env->get_model;
	Dccl__ModelChunk mc = DCCL__MODEL_CHUNK__INIT;
	uint64_t v = q->version ? q->version : cd->model.version, off;
	struct slice_ver *sv;
	struct sblob *owner;
	char err[256];
	int code;

	if (v == 0) {
		rpc_error(cd, r, DCCL__ERROR_CODE__E_NOT_FOUND,
		    "no model trained yet");
		return;
	}
	/* Protocol 7: every version's shared part (slice.h), never rows. */
	if ((code = slice_get(cd, v, &sv, err, sizeof(err))) != 0) {
		rpc_error(cd, r, code, "%s", err);
		return;
	}
	owner = sv->shared;
	if (chunk_fill(cd, r, "model", v, q->chunk_index, owner->len,
	    owner->sum, &mc, &off) != 0)
		return;
	mc.data.data = owner->data + off;
	/* A device's slot first (it holds it between chunks), then the rate. */
	if (dlslots_take(cd, r, mc.chunk_index, mc.n_chunks) != 0 ||
	    paced(cd, r, &mc) != 0)
		return;
	/*
	 * Protocol 5: the device checks a model chunk against the version's
	 * manifest, which came MACed in its session, so with auth.mode mac
	 * the chunk goes out as shared bytes without a per-device keyed
	 * hash. encrypt still seals each (confidentiality is per session).
	 */
	if (r->seal.mode == AUTH_MAC)
		seal_chunk_plain(cd, r, &mc);
	else
		seal_chunk(cd, r, &mc, owner);
}

/* GetOfa: one chunk of a Forward-OFA part (the base and/or some blocks). */
void
ofa_download_rpc(struct cloudd *cd, struct rpc_req *r)
{
	const Dccl__GetOfaReq *q = r->env->get_ofa;
	uint64_t v = q->base_version ? q->base_version : cd->model.version;
	Dccl__ModelChunk mc = DCCL__MODEL_CHUNK__INIT;
	struct sblob *part;
	char err[256] = "";
	uint64_t off;
	int code;

	if (v == 0) {
		rpc_error(cd, r, DCCL__ERROR_CODE__E_NOT_FOUND,
		    "no model trained yet");
		return;
	}
	if ((code = ofa_part_get(cd, v, q->with_base != 0, q->block_mask,
	    &part, err, sizeof(err))) != 0) {
		rpc_error(cd, r, code, "%s", err);
		return;
	}
	if (chunk_fill(cd, r, "OFA part of", v, q->chunk_index, part->len,
	    part->sum, &mc, &off) != 0)
		return;
	mc.data.data = part->data + off;
	if (paced(cd, r, &mc) != 0)
		return;
	log_debug("OFA-GET: device=%s v%llu base=%d mask=0x%x chunk %u/%u",
	    r->env->device_id, (unsigned long long)v, q->with_base ? 1 : 0,
	    q->block_mask, q->chunk_index, mc.n_chunks);
	seal_chunk(cd, r, &mc, part);
}
