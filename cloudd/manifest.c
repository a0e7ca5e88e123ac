/* manifest: see manifest.h. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cloudd/cloudd.h"
#include "cloudd/manifest.h"
#include "cloudd/rpc.h"
#include "cloudd/sblob.h"
#include "cloudd/slice.h"
#include "shared/log.h"
#include "shared/manifest.h"
#include "shared/ml/ctr_slice.h"
#include "shared/xmalloc.h"

/* 2 x 32 bytes per chunk: 4 KiB for a 64 MiB model in 1 MiB chunks. */
#define MF_SLOTS	8

struct mf_cache {
	struct {
		uint64_t	 version;	/* 0: free */
		uint32_t	 chunk_size;
		uint32_t	 n_chunks;
		uint64_t	 total;
		uint8_t		 sum[32];
		uint8_t		*hashes;	/* n_chunks * 32, BLAKE2b */
		uint8_t		*sha;		/* n_chunks * 32, SHA-256 */
		uint64_t	 used;
	}		 e[MF_SLOTS];
	uint64_t	 tick;
};

void
manifest_cache_free(struct cloudd *cd)
{
	if (cd->mf == NULL)
		return;
	for (int i = 0; i < MF_SLOTS; i++) {
		free(cd->mf->e[i].hashes);
		free(cd->mf->e[i].sha);
	}
	free(cd->mf);
	cd->mf = NULL;
}

/*
 * Hashes version v's chunks into slot k: the chunks of its shared part
 * (slice.c), with BLAKE2b-256 and SHA-256 (protocol 8: each device checks
 * the one its CPU hashes fastest). About 150 ms of CPU for 64 MiB here
 * (BLAKE2b 110, SHA-256 40), on the loop, once per version. 0, or an error code with err.
 */
static int
build(struct cloudd *cd, int k, uint64_t v, char *err, size_t errlen)
{
	struct mf_cache *c = cd->mf;
	uint32_t cs = (uint32_t)cd->cf.chunk_size;
	struct slice_ver *sv;
	const struct sblob *b;
	uint64_t n;
	uint8_t *h, *sha;
	int code;

	if ((code = slice_get(cd, v, &sv, err, errlen)) != 0)
		return code;
	b = sv->shared;
	n = (b->len + cs - 1) / cs;
	h = xmalloc(n ? n * 32 : 1);
	sha = xmalloc(n ? n * 32 : 1);
	for (uint64_t i = 0; i < n; i++) {
		uint64_t off = i * cs, len = b->len - off < cs ?
		    b->len - off : cs;
		manifest_chunk_hash(h + i * 32, b->data + off, len);
		if (manifest_chunk_sha256(sha + i * 32, b->data + off,
		    len) != 0) {
			free(h);
			free(sha);
			snprintf(err, errlen, "SHA-256 failed (libcrypto)");
			return DCCL__ERROR_CODE__E_INTERNAL;
		}
	}
	free(c->e[k].hashes);
	free(c->e[k].sha);
	c->e[k].sha = sha;
	c->e[k].version = v;
	c->e[k].chunk_size = cs;
	c->e[k].n_chunks = (uint32_t)n;
	c->e[k].total = b->len;
	memcpy(c->e[k].sum, b->sum, 32);
	c->e[k].hashes = h;
	log_info("MANIFEST: v%llu, %llu chunks of %u bytes hashed",
	    (unsigned long long)v, (unsigned long long)n, cs);
	return 0;
}

void
manifest_rpc(struct cloudd *cd, struct rpc_req *r)
{
	Dccl__Envelope e;
	Dccl__Manifest m = DCCL__MANIFEST__INIT;
	Dccl__UserRows rows = DCCL__USER_ROWS__INIT;
	Dccl__Tensor rt[CTR_SLICE_MAX_TENSORS], *rtp[CTR_SLICE_MAX_TENSORS];
	uint32_t shape[2 * CTR_SLICE_MAX_TENSORS];
	struct slice_ver *sv;
	uint64_t v = r->env->get_manifest->version;
	struct mf_cache *c;
	char err[256];
	int k = -1, code;

	if (v == 0)
		v = cd->model.version;
	if (v == 0) {
		rpc_error(cd, r, DCCL__ERROR_CODE__E_NOT_FOUND,
		    "no model trained yet");
		return;
	}
	if ((c = cd->mf) == NULL)
		c = cd->mf = xcalloc(1, sizeof(*cd->mf));
	for (int i = 0; i < MF_SLOTS && k < 0; i++)
		if (c->e[i].version == v && c->e[i].chunk_size ==
		    (uint32_t)cd->cf.chunk_size)
			k = i;
	if (k < 0) {
		/* the least recently used slot (a free one first) */
		k = 0;
		for (int i = 1; i < MF_SLOTS; i++)
			if (c->e[i].used < c->e[k].used)
				k = i;
		if ((code = build(cd, k, v, err, sizeof(err))) != 0) {
			c->e[k].version = 0;
			rpc_error(cd, r, code, "%s", err);
			return;
		}
	}
	/*
	 * Protocol 7: the device's own rows, for the user it registered
	 * as (rpc.c looked r->user up by its authenticated id); the request
	 * names no user. Views into the cached per-user tables, no copy.
	 */
	if ((code = slice_get(cd, v, &sv, err, sizeof(err))) != 0) {
		rpc_error(cd, r, code, "%s", err);
		return;
	}
	rows.user_id = r->user;
	rows.n_tensors = ctr_slice_rows(&sv->full, r->user, rt, rtp, shape);
	rows.tensors = rtp;
	m.rows = &rows;
	c->e[k].used = ++c->tick;
	m.version = v;
	m.n_chunks = c->e[k].n_chunks;
	m.chunk_size = c->e[k].chunk_size;
	m.total_size = c->e[k].total;
	m.checksum.data = c->e[k].sum;
	m.checksum.len = 32;
	m.chunk_blake2b.data = c->e[k].hashes;
	m.chunk_blake2b.len = (size_t)c->e[k].n_chunks * 32;
	m.chunk_sha256.data = c->e[k].sha;
	m.chunk_sha256.len = (size_t)c->e[k].n_chunks * 32;
	rpc_reply_init(&e, r);
	e.body_case = DCCL__ENVELOPE__BODY_MANIFEST;
	e.manifest = &m;
	rpc_reply(cd, r, &e);
}
