/*
 * dshared: the version's shared part on disk once per data directory, not
 * once per device store (issue 14). Since protocol 7 a device's slice is
 * the shared part (the same bytes for every device of a version) and its
 * own rows; a device's store keeps a reference (dshared_ref_*: the shared
 * part's checksum and the rows, a few hundred bytes) in its model row,
 * and the shared part lies in <data-dir>/shared/v<version>-<checksum>.part
 * as the cloud served it.
 *
 * The files are content-addressed and written once (a temporary file,
 * fsync, rename), so the deviced processes sharing a data directory may
 * race to write one: either copy is the same. A reader checks a file
 * against the checksum it is named by (ctr_slice_assemble checks the
 * content against its keyed checksum). Installing version v removes the
 * files of older versions no device of this deviced still holds
 * (dshared_prune); a device whose file is gone (another deviced sharing
 * the directory pruned it, or it was damaged) downloads its model again
 * at its next start, as for a store of protocol 6.
 *
 * Threads: the loop's; no state.
 */
#ifndef DEVICED_DSHARED_H
#define DEVICED_DSHARED_H

#include <stddef.h>
#include <stdint.h>

#include "dccl.pb-c.h"

/*
 * Writes blob (the shared part of version, checksum sum) unless its file
 * exists. 0 or -errno.
 */
int	dshared_put(const char *data_dir, uint64_t version,
	    const uint8_t sum[32], const void *blob, size_t len);
/*
 * The shared part of version with checksum sum: *blob (caller frees),
 * *len; its checksum field is sum. 0, -ENOENT or -EBADMSG (damaged).
 */
int	dshared_get(const char *data_dir, uint64_t version,
	    const uint8_t sum[32], void **blob, size_t *len);
/* Removes the shared parts of versions below version. */
void	dshared_prune(const char *data_dir, uint64_t version);

/* A device's stored reference: sum and rows, packed into *out (freed). */
void	dshared_ref_pack(const uint8_t sum[32], const Dccl__UserRows *rows,
	    uint8_t **out, size_t *len);
/* 1 if blob (a store's model row) is a reference, 0 if a model. */
int	dshared_ref_is(const void *blob, size_t len);
/*
 * 1 and *rows (dccl__user_rows__free_unpacked), sum, if blob is a
 * reference; 0 if it is not one (a model), -EBADMSG if damaged.
 */
int	dshared_ref_unpack(const void *blob, size_t len, uint8_t sum[32],
	    Dccl__UserRows **rows);

#endif
