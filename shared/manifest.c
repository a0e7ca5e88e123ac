/* manifest: see manifest.h. */
#include <sodium.h>

#include "shared/manifest.h"

const char *
manifest_errname(int code)
{
	switch (code) {
	case MANIFEST_OK: return "ok";
	case MANIFEST_EVERSION: return "MANIFEST_EVERSION";
	case MANIFEST_ESHAPE: return "MANIFEST_ESHAPE";
	case MANIFEST_EHEADER: return "MANIFEST_EHEADER";
	case MANIFEST_EHASH: return "MANIFEST_EHASH";
	}
	return "MANIFEST_E?";
}

void
manifest_chunk_hash(uint8_t out[MANIFEST_HASH_LEN], const void *p, size_t len)
{
	crypto_generichash(out, MANIFEST_HASH_LEN, p, len, NULL, 0);
}

int
manifest_check(const Dccl__Manifest *m, uint64_t want, uint64_t max_total)
{
	uint64_t n;

	if (m->version == 0 || (want != 0 && m->version != want))
		return MANIFEST_EVERSION;
	if (m->chunk_size == 0 || m->total_size == 0 ||
	    m->total_size > max_total || m->checksum.len != 32)
		return MANIFEST_ESHAPE;
	n = (m->total_size + m->chunk_size - 1) / m->chunk_size;
	if (n != m->n_chunks || m->chunk_blake2b.len != n * MANIFEST_HASH_LEN)
		return MANIFEST_ESHAPE;
	return MANIFEST_OK;
}

int
manifest_check_chunk(const Dccl__Manifest *m, const Dccl__ModelChunk *c)
{
	uint64_t off = (uint64_t)c->chunk_index * m->chunk_size;
	uint8_t h[MANIFEST_HASH_LEN];

	if (c->version != m->version || c->n_chunks != m->n_chunks ||
	    c->chunk_index >= m->n_chunks || c->total_size != m->total_size ||
	    c->checksum.len != 32 ||
	    sodium_memcmp(c->checksum.data, m->checksum.data, 32) != 0)
		return MANIFEST_EHEADER;
	if (c->data.len != (m->total_size - off < m->chunk_size ?
	    m->total_size - off : m->chunk_size))
		return MANIFEST_EHEADER;
	manifest_chunk_hash(h, c->data.data, c->data.len);
	if (sodium_memcmp(h, m->chunk_blake2b.data + (size_t)c->chunk_index *
	    MANIFEST_HASH_LEN, MANIFEST_HASH_LEN) != 0)
		return MANIFEST_EHASH;
	return MANIFEST_OK;
}
