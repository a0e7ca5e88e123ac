/*
 * model_fit: does a cloud model's feature schema fit the device's data?
 * A model embeds n_side side fields with side_card[k] values each (issue
 * 16); the device's samples carry their own (the local data's, dstore).
 * A model of other side fields would read the wrong values, or the OOV
 * row for all of them, so the device refuses it (MODEL_FIT_REFUSED) and
 * keeps what it had. A device with no local samples and no side fields
 * yet takes the model's (MODEL_FIT_ADOPT): its app events then carry them.
 */
#ifndef DEVICED_MODEL_FIT_H
#define DEVICED_MODEL_FIT_H

#include <stddef.h>

#include "shared/data/sample.h"
#include "shared/ml/ctr.h"

enum model_fit {
	MODEL_FIT_OK = 0,
	MODEL_FIT_ADOPT,	/* no local data: take the model's fields */
	MODEL_FIT_REFUSED,	/* side fields differ; why in err */
};

/* device.c's return code for a refused model (no errno, no ctr_io code) */
#define MODEL_FIT_EREFUSED	(-2001)

enum model_fit model_fit_check(const struct ctr_config *c,
	    const struct dataset *local, char *err, size_t errlen);

#endif
