/*
 * manifest: the device-side checks of the download manifest (protocol 5,
 * per-chunk hash BLAKE2b-256 since protocol 6; proto/dccl.proto,
 * Manifest). A manifest arrives authenticated in the device's session
 * (its reply's MAC, bound to the request counter); the chunks that follow
 * arrive without a per-device MAC, so each is taken only when it matches
 * the manifest: same version, count, size and model checksum, the
 * expected length, and the BLAKE2b-256 listed for its index. Pure
 * functions; any thread.
 */
#ifndef SHARED_MANIFEST_H
#define SHARED_MANIFEST_H

#include <stddef.h>
#include <stdint.h>

#include "dccl.pb-c.h"

/* Why a manifest or a chunk is refused (0: accepted). */
enum manifest_err {
	MANIFEST_OK = 0,
	MANIFEST_EVERSION = 1,	/* for another version than asked */
	MANIFEST_ESHAPE = 2,	/* count, sizes or hash list inconsistent */
	MANIFEST_EHEADER = 3,	/* chunk header differs from the manifest */
	MANIFEST_EHASH = 4,	/* chunk bytes differ from the listed hash */
};

#define MANIFEST_HASH_LEN	32

const char	*manifest_errname(int code);
/*
 * A chunk's hash as the manifest lists it: unkeyed BLAKE2b-256
 * (libsodium's crypto_generichash; the cloud computes it once per chunk
 * and version, the device once per chunk received).
 */
void	manifest_chunk_hash(uint8_t out[MANIFEST_HASH_LEN], const void *p,
	    size_t len);
/*
 * A received manifest for a request of version want (0: latest, any
 * version > 0 goes) and a model of at most max_total bytes.
 */
int	manifest_check(const Dccl__Manifest *m, uint64_t want,
	    uint64_t max_total);
/* Chunk c (its header and bytes) against an accepted manifest m. */
int	manifest_check_chunk(const Dccl__Manifest *m,
	    const Dccl__ModelChunk *c);

#endif
