/*
 * sblob: immutable bytes shared by reference (a model version's packed
 * blob, a cached chunk of an older version, a packed Forward-OFA part)
 * with their BLAKE2b-256 checksum, so a reply being sealed on the seal
 * thread points into them instead of holding a copy of its chunk.
 *
 * The count is changed on the loop thread only (seal jobs are made and
 * finished there); other threads only read the bytes while a reference
 * taken for them is held.
 */
#ifndef CLOUDD_SBLOB_H
#define CLOUDD_SBLOB_H

#include <stddef.h>
#include <stdint.h>

struct sblob {
	uint32_t	 refs;
	uint64_t	 version;
	uint8_t		*data;
	size_t		 len;
	uint8_t		 sum[32];	/* as the owner set it */
};

/* Takes ownership of data (malloc'd); one reference. */
struct sblob	*sblob_wrap(void *data, size_t len, uint64_t version);
struct sblob	*sblob_ref(struct sblob *b);
/* Drops a reference; frees the bytes with the last. NULL is a no-op. */
void		 sblob_unref(struct sblob *b);

#endif
