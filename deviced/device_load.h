/*
 * device_load: a device's state on disk (device_load.c), below device.c.
 */
#ifndef DEVICED_DEVICE_LOAD_H
#define DEVICED_DEVICE_LOAD_H

#include <stdint.h>

#include "deviced/deviced.h"
#include "shared/ml/ctr.h"

/*
 * Opens d's directory, store and key and loads its samples and stored
 * model (d->dd, d->id set, the datasets initialised). 0, or -1 logged.
 */
int	device_load(struct device *d, const char *id, uint32_t user,
	    const char *local_csv, const char *test_csv);
/*
 * 0 if model m (version) fits the local data (a device without data takes
 * its side fields), else MODEL_FIT_EREFUSED, logged.
 */
int	device_load_fits(struct device *d, struct ctr *m, uint64_t version);
/*
 * Installs the downloaded model d->dl_version from the store's chunks
 * after checking its size and checksum; clears the chunks either way.
 * 0, MODEL_FIT_EREFUSED, or another error (logged).
 */
int	device_load_install(struct device *d, const Dccl__UserRows *rows);
/* Logs what a device that cannot enrol must be given, in one line. */
void	device_load_token_hint(const struct device *d);

#endif
