/*
 * tensor_io: the pieces every model file shares (ctr_io, ofa_io,
 * encoder_io): a tensor as a protobuf Tensor that points at the model's
 * floats, the BLAKE2b checksum of a tensor (name length, name, ndim,
 * shape, float32 data, as little-endian bytes), the check of a received
 * tensor against the shape its layout expects, and the error message
 * writer. What a model's checksum covers besides its tensors, and its
 * error codes, stay in its own _io file.
 *
 * Ownership: views point into the caller's memory and allocate nothing.
 * Threads: any; no shared state.
 */
#ifndef SHARED_ML_TENSOR_IO_H
#define SHARED_ML_TENSOR_IO_H

#include <stddef.h>
#include <stdint.h>

#include <sodium.h>

#include "model.pb-c.h"
#include "shared/ml/param.h"

/*
 * Writes "<pre><what>: <detail>" into err (errlen; nothing if err is NULL
 * or errlen 0), detail from fmt (at most 127 bytes), and returns rc.
 */
int	tensor_io_fail(int rc, const char *pre, const char *what, char *err,
	    size_t errlen, const char *fmt, ...)
	    __attribute__((format(printf, 6, 7)));

/* Checksum input: v as 4 little-endian bytes; floats likewise. */
void	tensor_io_hash_u32(crypto_generichash_state *st, uint32_t v);
void	tensor_io_hash_floats(crypto_generichash_state *st, const float *p,
	    size_t n);
/* One tensor: name length, name, ndim, shape[0..ndim), the n floats. */
void	tensor_io_hash(crypto_generichash_state *st, const char *name,
	    int ndim, const uint32_t *shape, const float *data, size_t n);

/* *mt = a Tensor message over name, shape and data (no copy). */
void	tensor_io_view(Dccl__Tensor *mt, const char *name, int ndim,
	    const uint32_t *shape, const float *data, size_t n);
/*
 * Whether the received mt has ndim dims, that shape and n floats: 0, or
 * -1 with what differs in detail (dlen).
 */
int	tensor_io_shape(const Dccl__Tensor *mt, const char *name, int ndim,
	    const uint32_t *shape, size_t n, char *detail, size_t dlen);
/*
 * Matches the n received tensors mt against a model's table t (nt) by
 * name and shape: map[i] = the index in mt of t[i], or -1 if absent. A
 * name t lacks, or whose want[i] is 0 (want may be NULL: all wanted), is
 * unknown; with finite, each matched tensor must also be finite. Returns
 * 0, or TENSOR_IO_UNKNOWN (unknown or duplicate name), TENSOR_IO_SHAPE or
 * TENSOR_IO_NONFINITE for the first bad tensor, with detail (dlen). Which
 * tensors must be present is the caller's check.
 */
enum { TENSOR_IO_UNKNOWN = 1, TENSOR_IO_SHAPE, TENSOR_IO_NONFINITE };
int	tensor_io_match(Dccl__Tensor *const *mt, size_t n,
	    const struct param_tensor *t, int nt, const uint8_t *want,
	    int finite, int *map, char *detail, size_t dlen);

#endif
