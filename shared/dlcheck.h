/*
 * dlcheck: the check stage of a pipelined model download (issue 14).
 * Chunks that arrived go into a bounded queue; worker threads check each
 * against the download's authenticated manifest (manifest_check_chunk_alg:
 * header, length, the hash listed for its index) and only then store it (copy
 * its bytes to their place in dst). Meanwhile the receiving thread asks
 * for and receives the next chunk, so the hash, which costs about as much
 * CPU as the rest of the download together, is off the receive path.
 * A chunk that fails its check is never stored, and every chunk after the
 * first refusal that still waits is dropped unchecked.
 *
 * With 0 threads a put checks and stores inline (the serial path).
 * dlcheck_put and dlcheck_wait: one (the receiving) thread; the workers
 * are the module's own. The manifest and dst must outlive the dlcheck.
 */
#ifndef SHARED_DLCHECK_H
#define SHARED_DLCHECK_H

#include <stddef.h>
#include <stdint.h>

#include "dccl.pb-c.h"

#define DLCHECK_MAX_THREADS	8
#define DLCHECK_MAX_QUEUE	64

struct dlcheck;

/* Releases the bytes a put chunk points into (its owner), any thread. */
typedef void	(*dlcheck_release_fn)(void *owner);

/*
 * A check stage for manifest m (accepted by manifest_check) storing into
 * dst (m->total_size bytes), hashing with alg (enum manifest_alg):
 * nthreads workers (0..DLCHECK_MAX_THREADS), at most qmax chunks waiting
 * (1..DLCHECK_MAX_QUEUE). 0 or -errno.
 */
int	dlcheck_new(struct dlcheck **out, const Dccl__Manifest *m,
	    uint8_t *dst, int alg, int nthreads, int qmax);
/*
 * Queues chunk c (copied by value; its data and checksum point into
 * owner, which release frees once the chunk is checked and stored or
 * refused). Blocks while qmax chunks wait. Returns 0, or the
 * MANIFEST_E* code of a chunk refused earlier (c is then released
 * unchecked and nothing more is stored).
 */
int	dlcheck_put(struct dlcheck *q, const Dccl__ModelChunk *c, void *owner,
	    dlcheck_release_fn release);
/*
 * Waits until n chunks were stored or one was refused: 0, or the
 * MANIFEST_E* code with the refused chunk's index in *bad_index.
 */
int	dlcheck_wait(struct dlcheck *q, uint32_t n, uint32_t *bad_index);
/* Stops the workers, releases what still waits. NULL is a no-op. */
void	dlcheck_free(struct dlcheck *q);

#endif
