/*
 * ctr_slice: the per-user slice of a CTR model (protocol 7, issue 14).
 *
 * A cloud model holds a row per pool user in its per-user tables
 * (emb_user, patch_m<l>, patch_b). A device needs only its own, so the
 * cloud serves two things:
 *
 *   the shared part: the packed Model with each per-user table cut to its
 *     OOV row (shape [1, cols]), Model.user_rows = 1, and as checksum
 *     BLAKE2b-256 of "dccl-shared-v1" || the message packed with an empty
 *     checksum. The same bytes for every device, one manifest per version.
 *   the user's rows: per per-user table, a Tensor of that name with shape
 *     [1, cols] (the row as it is in the model) or [0, cols] for a user id
 *     the model has no row for (it reads the OOV row, as the full model).
 *
 * ctr_slice_assemble checks both and packs the device's slice: a model
 * with user_rows = 2 whose per-user tables hold the user's row (row 0) and
 * the OOV row (row 1) (ctr_config.sliced; ctr_config_user_row maps ids),
 * with ctr_io's checksum. Every forward, backward and patch of the slice
 * for that user reads and writes exactly what the full model would.
 *
 * Threads: none of these keep state; any thread.
 */
#ifndef SHARED_CTR_SLICE_H
#define SHARED_CTR_SLICE_H

#include <stddef.h>
#include <stdint.h>

#include "model.pb-c.h"

#define CTR_SLICE_MAX_TENSORS	(2 + 4)	/* emb_user, patch_b, patch_m0..3 */

/* 1 if name is one of the per-user tables. */
int	ctr_slice_user_tensor(const char *name);

/*
 * The shared part of full (a CTR model with every user's row, as stored)
 * packed into *out (caller frees), *len. 0 or a CTR_IO_E* code with err.
 */
int	ctr_slice_shared(const Dccl__Model *full, uint8_t **out, size_t *len,
	    char *err, size_t errlen);

/*
 * Views of user's rows of full into t (no copies; they point into full
 * and shape, 2 entries per tensor); tp[i] = &t[i]. Returns the count
 * (<= CTR_SLICE_MAX_TENSORS).
 */
size_t	ctr_slice_rows(const Dccl__Model *full, uint32_t user,
	    Dccl__Tensor t[CTR_SLICE_MAX_TENSORS],
	    Dccl__Tensor *tp[CTR_SLICE_MAX_TENSORS],
	    uint32_t shape[2 * CTR_SLICE_MAX_TENSORS]);

/*
 * Checks the shared part blob (len bytes) and user's rows (n tensors) and
 * packs the device's slice into *out (caller frees), *outlen. 0 or a
 * CTR_IO_E* code with err: CTR_IO_EFORMAT for a blob that is not a shared
 * part, CTR_IO_ECHECKSUM for an altered one, CTR_IO_EMISSING,
 * CTR_IO_EUNKNOWN, CTR_IO_ESHAPE or CTR_IO_ENONFINITE for bad rows.
 */
int	ctr_slice_assemble(const uint8_t *blob, size_t len, uint32_t user,
	    Dccl__Tensor *const *rows, size_t n, uint8_t **out, size_t *outlen,
	    char *err, size_t errlen);

/*
 * The checksum of the shared part a device's slice (blob, len, as
 * ctr_slice_assemble packed it) was assembled from, recomputed from the
 * slice alone (the per-user tables cut back to their OOV row): what the
 * devices of one model version have in common, so a deviced can share it
 * between them (deviced/dev_model.c). It does not check the slice's own
 * checksum. 0, CTR_IO_EUNPACK, CTR_IO_EFORMAT (not a slice) or
 * CTR_IO_ESHAPE.
 */
int	ctr_slice_shared_sum(const uint8_t *blob, size_t len, uint8_t out[32]);

/*
 * The checksum a shared part (blob, len) carries, unchecked (which
 * ctr_slice_assemble does): what names it. 0, CTR_IO_EUNPACK or
 * CTR_IO_EFORMAT (not a shared part).
 */
int	ctr_slice_shared_id(const uint8_t *blob, size_t len, uint8_t out[32]);

/*
 * User's slice as a view (ctr_view) of base, a slice of the same shared
 * part (another user's: its shared tensors and OOV rows are the shared
 * part's), with user's rows (n tensors, checked as ctr_slice_assemble
 * checks them): the model ctr_slice_assemble and ctr_io_unpack would give,
 * without assembling or unpacking the shared part again. The caller
 * vouches that base's shared part is the one the rows go with (the same
 * version and shared-part checksum). 0 or a CTR_IO_E* code with err.
 */
struct ctr;
int	ctr_slice_view(struct ctr **out, struct ctr *base, uint32_t user,
	    Dccl__Tensor *const *rows, size_t n, char *err, size_t errlen);

#endif
