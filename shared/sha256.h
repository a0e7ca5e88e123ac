/*
 * sha256: SHA-256 of a buffer, with the x86 SHA extensions when the CPU
 * has them (about 1.7 GB/s here, 3.5x libsodium's keyed BLAKE2b), else
 * libsodium's portable code. It checks the chunks of a model download
 * against the version's manifest (protocol 5), where the hash is the
 * device's only per-chunk cost. Any thread.
 */
#ifndef SHARED_SHA256_H
#define SHARED_SHA256_H

#include <stddef.h>
#include <stdint.h>

#define SHA256_LEN	32

void	sha256(uint8_t out[SHA256_LEN], const void *data, size_t len);
/* 1 when sha256() uses the SHA extensions (for benchmarks and logs). */
int	sha256_fast(void);

#endif
