/* manifest: see manifest.h. */
#include <openssl/evp.h>
#include <sodium.h>
#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
#elif defined(__aarch64__) && defined(__linux__)
#include <asm/hwcap.h>
#include <sys/auxv.h>
#endif

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

const char *
manifest_alg_name(int alg)
{
	return alg == MANIFEST_SHA256 ? "sha256" : "blake2b";
}

int
manifest_alg_auto(void)
{
#if defined(__x86_64__) || defined(__i386__)
	unsigned int a, b, c, d;

	/* CPUID leaf 7: EBX bit 29, the SHA extensions */
	if (__get_cpuid_count(7, 0, &a, &b, &c, &d) && (b & (1u << 29)))
		return MANIFEST_SHA256;
#elif defined(__aarch64__) && defined(__linux__)
	if (getauxval(AT_HWCAP) & HWCAP_SHA2)
		return MANIFEST_SHA256;
#endif
	return MANIFEST_BLAKE2B;
}

void
manifest_chunk_hash(uint8_t out[MANIFEST_HASH_LEN], const void *p, size_t len)
{
	crypto_generichash(out, MANIFEST_HASH_LEN, p, len, NULL, 0);
}

int
manifest_chunk_sha256(uint8_t out[MANIFEST_HASH_LEN], const void *p,
    size_t len)
{
	unsigned int n = 0;

	if (EVP_Digest(p, len, out, &n, EVP_sha256(), NULL) != 1 ||
	    n != MANIFEST_HASH_LEN)
		return -1;
	return 0;
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
	/* protocol 8: both lists, whichever the device checks */
	if (n != m->n_chunks || m->chunk_blake2b.len != n * MANIFEST_HASH_LEN ||
	    m->chunk_sha256.len != n * MANIFEST_HASH_LEN)
		return MANIFEST_ESHAPE;
	return MANIFEST_OK;
}

int
manifest_check_chunk_alg(const Dccl__Manifest *m, const Dccl__ModelChunk *c,
    int alg)
{
	uint64_t off = (uint64_t)c->chunk_index * m->chunk_size;
	uint8_t h[MANIFEST_HASH_LEN];
	const ProtobufCBinaryData *list;

	if (c->version != m->version || c->n_chunks != m->n_chunks ||
	    c->chunk_index >= m->n_chunks || c->total_size != m->total_size ||
	    c->checksum.len != 32 ||
	    sodium_memcmp(c->checksum.data, m->checksum.data, 32) != 0)
		return MANIFEST_EHEADER;
	if (c->data.len != (m->total_size - off < m->chunk_size ?
	    m->total_size - off : m->chunk_size))
		return MANIFEST_EHEADER;
	if (alg == MANIFEST_SHA256) {
		list = &m->chunk_sha256;
		if (manifest_chunk_sha256(h, c->data.data, c->data.len) != 0)
			return MANIFEST_EHASH;	/* cannot vouch for it */
	} else {
		list = &m->chunk_blake2b;
		manifest_chunk_hash(h, c->data.data, c->data.len);
	}
	/* manifest_check sized both lists; a caller may skip it: check */
	if (list->len < ((size_t)c->chunk_index + 1) * MANIFEST_HASH_LEN ||
	    sodium_memcmp(h, list->data + (size_t)c->chunk_index *
	    MANIFEST_HASH_LEN, MANIFEST_HASH_LEN) != 0)
		return MANIFEST_EHASH;
	return MANIFEST_OK;
}

int
manifest_check_chunk(const Dccl__Manifest *m, const Dccl__ModelChunk *c)
{
	return manifest_check_chunk_alg(m, c, manifest_alg_auto());
}
