/*
 * download: GetModel, one chunk of a model version per request. The
 * current version is served from memory, older ones from the store; the
 * chunk is sealed (MAC or encryption) off the loop by seal.c. GetOfa
 * serves parts of the Forward-OFA model the same way (ofa_train.c packs
 * and caches them). Loop thread only.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "cloudd/cloudd.h"
#include "cloudd/ofa_train.h"
#include "cloudd/rpc.h"
#include "cloudd/seal.h"
#include "shared/log.h"
#include "shared/xmalloc.h"

void
download_rpc(struct cloudd *cd, struct rpc_req *r)
{
	Dccl__GetModelReq *q = r->env->get_model;
	struct store_model_info mi;
	Dccl__ModelChunk mc = DCCL__MODEL_CHUNK__INIT;
	uint64_t v = q->version ? q->version : cd->model.version;
	uint64_t cs = (uint64_t)cd->cf.chunk_size, off, n_chunks;
	void *buf = NULL;
	int rc;

	if (v == 0) {
		rpc_error(cd, r, DCCL__ERROR_CODE__E_NOT_FOUND,
		    "no model trained yet");
		return;
	}
	if (v == cd->model.version) {
		mi.version = v;
		mi.size = cd->model.size;
		memcpy(mi.checksum, cd->model.checksum, 32);
	} else if ((rc = store_model_info(cd->st, v, &mi)) != 0) {
		rpc_error(cd, r, rc == -ENOENT ? DCCL__ERROR_CODE__E_NOT_FOUND :
		    DCCL__ERROR_CODE__E_STORAGE, "model v%llu: %s",
		    (unsigned long long)v, rc == -ENOENT ? "no such version" :
		    store_errmsg(cd->st));
		return;
	}
	n_chunks = (mi.size + cs - 1) / cs;
	if (q->chunk_index >= n_chunks) {
		rpc_error(cd, r, DCCL__ERROR_CODE__E_NOT_FOUND,
		    "chunk %u out of range (model v%llu has %llu)",
		    q->chunk_index, (unsigned long long)v,
		    (unsigned long long)n_chunks);
		return;
	}
	off = (uint64_t)q->chunk_index * cs;
	mc.data.len = (size_t)(mi.size - off < cs ? mi.size - off : cs);
	if (v == cd->model.version) {
		mc.data.data = (uint8_t *)cd->model.blob + off;
	} else {
		buf = xmalloc(mc.data.len);
		if ((rc = store_model_read(cd->st, v, off, buf, mc.data.len))) {
			free(buf);
			rpc_error(cd, r, DCCL__ERROR_CODE__E_STORAGE,
			    "model v%llu: %s", (unsigned long long)v,
			    store_errmsg(cd->st));
			return;
		}
		mc.data.data = buf;
	}
	mc.version = v;
	mc.chunk_index = q->chunk_index;
	mc.n_chunks = (uint32_t)n_chunks;
	mc.total_size = mi.size;
	mc.checksum.data = mi.checksum;
	mc.checksum.len = 32;
	seal_chunk(cd, r, &mc);
	free(buf);
}


/* GetOfa: one chunk of a Forward-OFA part (the base and/or some blocks). */
void
ofa_download_rpc(struct cloudd *cd, struct rpc_req *r)
{
	const Dccl__GetOfaReq *q = r->env->get_ofa;
	uint64_t v = q->base_version ? q->base_version : cd->model.version;
	uint64_t cs = (uint64_t)cd->cf.chunk_size, off, n_chunks;
	Dccl__ModelChunk mc = DCCL__MODEL_CHUNK__INIT;
	struct ofa_part part;
	char err[256] = "";
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
	n_chunks = (part.len + cs - 1) / cs;
	if (q->chunk_index >= n_chunks) {
		rpc_error(cd, r, DCCL__ERROR_CODE__E_NOT_FOUND,
		    "chunk %u out of range (OFA part has %llu)",
		    q->chunk_index, (unsigned long long)n_chunks);
		return;
	}
	off = (uint64_t)q->chunk_index * cs;
	mc.version = v;
	mc.chunk_index = q->chunk_index;
	mc.n_chunks = (uint32_t)n_chunks;
	mc.total_size = part.len;
	mc.checksum.data = (uint8_t *)part.checksum;
	mc.checksum.len = 32;
	mc.data.data = (uint8_t *)part.data + off;
	mc.data.len = (size_t)(part.len - off < cs ? part.len - off : cs);
	log_debug("OFA-GET: device=%s v%llu base=%d mask=0x%x chunk %u/%llu",
	    r->env->device_id, (unsigned long long)v, q->with_base ? 1 : 0,
	    q->block_mask, q->chunk_index, (unsigned long long)n_chunks);
	seal_chunk(cd, r, &mc);
}
