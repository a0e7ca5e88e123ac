/*
 * dev_model: cloud models are read-only once installed (training clones
 * them), so the devices one deviced hosts share them (struct deviced's
 * models list), reference-counted: a device's slice (protocol 7) is a
 * view (ctr_view) of its version's shared parameters, held once per
 * version and shared-part checksum, with the device's own per-user rows;
 * any other model is shared whole by version and checksum. Loop thread
 * only; a running job holds its device's reference.
 */
#ifndef DEVICED_DEV_MODEL_H
#define DEVICED_DEV_MODEL_H

#include <stddef.h>
#include <stdint.h>

#include "dccl.pb-c.h"

struct ctr;
struct deviced;
struct enc;

/*
 * The model packed in blob (len): a slice's view of the shared part of
 * version this deviced holds (unpacked from blob for the first device),
 * else the model shared if this deviced holds version with the same
 * checksum; *global_ctr (may be NULL) gets its r_g.
 * Returns 0 or ctr_io's / encoder_io's code with err.
 */
int	dev_model_get(struct deviced *dd, uint64_t version, const void *blob,
	    size_t len, struct ctr **out, double *global_ctr, char *err,
	    size_t errlen);
/*
 * User's slice from its rows over the shared part of version with
 * checksum sum, when this deviced holds it (no unpacking, no assembly);
 * -ENOENT when it does not (the caller assembles the slice and calls
 * dev_model_get), else 0 or ctr_slice_view's code with err.
 */
int	dev_model_view(struct deviced *dd, uint64_t version,
	    const uint8_t sum[32], uint32_t user, const Dccl__UserRows *rows,
	    struct ctr **out, double *global_ctr, char *err, size_t errlen);
/* Drops a reference; the last one frees the model (NULL: nothing). */
void	dev_model_put(struct deviced *dd, struct ctr *m);
/* The oldest version this deviced holds, UINT64_MAX if none. */
uint64_t dev_model_oldest(const struct deviced *dd);
/* The encoder shipped with shared model m, or NULL. */
struct enc *dev_model_enc(const struct deviced *dd, const struct ctr *m);

#endif
