/*
 * dev_model: cloud models are read-only once installed (training clones
 * them), so the devices one deviced hosts share one copy per version and
 * checksum (struct deviced's models list), reference-counted. Loop thread
 * only; a running job holds its device's reference.
 */
#ifndef DEVICED_DEV_MODEL_H
#define DEVICED_DEV_MODEL_H

#include <stddef.h>
#include <stdint.h>

struct ctr;
struct deviced;
struct enc;

/*
 * The model packed in blob (len), shared if this deviced already holds
 * version with the same checksum; *global_ctr (may be NULL) gets its r_g.
 * Returns 0 or ctr_io's / encoder_io's code with err.
 */
int	dev_model_get(struct deviced *dd, uint64_t version, const void *blob,
	    size_t len, struct ctr **out, double *global_ctr, char *err,
	    size_t errlen);
/* Drops a reference; the last one frees the model (NULL: nothing). */
void	dev_model_put(struct deviced *dd, struct ctr *m);
/* The encoder shipped with shared model m, or NULL. */
struct enc *dev_model_enc(const struct deviced *dd, const struct ctr *m);

#endif
