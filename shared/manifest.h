/*
 * manifest: the device-side checks of the download manifest (protocol 5;
 * per-chunk hash BLAKE2b-256 since protocol 6, and SHA-256 beside it
 * since protocol 8; proto/dccl.proto, Manifest). A manifest arrives
 * authenticated in the device's session (its reply's MAC, bound to the
 * request counter); the chunks that follow arrive without a per-device
 * MAC, so each is taken only when it matches the manifest: same version,
 * count, size and model checksum, the expected length, and the hash
 * listed for its index in the list the device checks (either is a
 * 256-bit collision-resistant hash; the device takes the one its CPU
 * computes fastest: manifest_alg_auto). Pure functions; any thread.
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

/* Which per-chunk list a device checks (protocol 8). */
enum manifest_alg {
	MANIFEST_BLAKE2B = 0,	/* chunk_blake2b: libsodium, software */
	MANIFEST_SHA256 = 1,	/* chunk_sha256: OpenSSL's libcrypto */
};

const char	*manifest_errname(int code);
const char	*manifest_alg_name(int alg);
/*
 * SHA-256 where the CPU has SHA instructions, which libcrypto uses (x86
 * SHA extensions, arm64 SHA2: 1.66 GB/s against BLAKE2b's 0.60 GB/s on
 * this project's x86 VM), else BLAKE2b (faster than a software SHA-256).
 */
int	manifest_alg_auto(void);
/*
 * A chunk's BLAKE2b-256 as chunk_blake2b lists it: unkeyed (libsodium's
 * crypto_generichash; the cloud computes both lists once per chunk and
 * version, the device one hash per chunk received).
 */
void	manifest_chunk_hash(uint8_t out[MANIFEST_HASH_LEN], const void *p,
	    size_t len);
/* The SHA-256 of a chunk (libcrypto): 0, or -1 if libcrypto failed. */
int	manifest_chunk_sha256(uint8_t out[MANIFEST_HASH_LEN], const void *p,
	    size_t len);
/*
 * A received manifest for a request of version want (0: latest, any
 * version > 0 goes) and a model of at most max_total bytes; both hash
 * lists must be there, n_chunks x 32 bytes each.
 */
int	manifest_check(const Dccl__Manifest *m, uint64_t want,
	    uint64_t max_total);
/* Chunk c (its header and bytes) against an accepted manifest m, hashed
 * with alg (enum manifest_alg). */
int	manifest_check_chunk_alg(const Dccl__Manifest *m,
	    const Dccl__ModelChunk *c, int alg);
/* The same with manifest_alg_auto(). */
int	manifest_check_chunk(const Dccl__Manifest *m,
	    const Dccl__ModelChunk *c);

#endif
