/*
 * encoder_io: the auxiliary encoder (encoder.h) inside a packed CTR model.
 * A model with its encoder is a Model message of format CTR_IO_FORMAT_ENC
 * (2) with enc_tensors ("enc_mu", "enc_sd" [nin], "enc_w" [nout, nin],
 * "enc_c" [nout]; shapes fixed by the model's config), enc_mode and
 * enc_checksum: BLAKE2b-256 over little-endian uint32 nin, nout, then per
 * tensor in that order name length, name bytes, ndim, shape, float32 data.
 * ctr_io_unpack reads the model part of either format; a reader that only
 * knows format 1 refuses format 2 with CTR_IO_EFORMAT.
 *
 * Errors are ctr_io's codes (ctr_io_strerror). Ownership: buffers and
 * encoders returned belong to the caller. Threads: any.
 */
#ifndef SHARED_ENCODER_IO_H
#define SHARED_ENCODER_IO_H

#include <stddef.h>
#include <stdint.h>

#include "shared/ml/ctr_io.h"
#include "shared/ml/encoder.h"

/*
 * Adds e (trained in mode) to the packed format-1 model *buf (*len bytes):
 * on success *buf is replaced by a new malloc'd format-2 model and the old
 * buffer freed. Returns 0, CTR_IO_EUNPACK, CTR_IO_EFORMAT (not format 1)
 * or CTR_IO_ESHAPE (e does not fit the model's config).
 */
int	encoder_io_attach(uint8_t **buf, size_t *len, const struct enc *e,
	    enum enc_mode mode);

/*
 * The encoder in packed model buf for model m (already unpacked from buf by
 * ctr_io_unpack): *out NULL and 0 for format 1, a new encoder for format
 * 2, or a code (EMISSING, EUNKNOWN, ESHAPE, ENONFINITE, ECHECKSUM,
 * EFORMAT: encoder tensors in a format-1 model) with a message in err.
 * *mode (may be NULL) gets how it was trained.
 */
int	encoder_io_unpack(struct enc **out, enum enc_mode *mode,
	    const struct ctr *m, const uint8_t *buf, size_t len, char *err,
	    size_t errlen);

#endif
