/*
 * model_fit: a cloud model's side fields against the local data's
 * (model_fit.h).
 */
#include <stdio.h>

#include "deviced/model_fit.h"

enum model_fit
model_fit_check(const struct ctr_config *c, const struct dataset *local,
    char *err, size_t errlen)
{
	if (local->n == 0 && local->n_side == 0)
		return c->n_side > 0 ? MODEL_FIT_ADOPT : MODEL_FIT_OK;
	if (c->n_side != local->n_side) {
		snprintf(err, errlen, "the model has %u side fields, the "
		    "local data %u (a feature schema other than this "
		    "device's)", c->n_side, local->n_side);
		return MODEL_FIT_REFUSED;
	}
	for (uint32_t k = 0; k < c->n_side; k++)
		if (c->side_card[k] != local->side_card[k]) {
			snprintf(err, errlen, "side field %u has %u values "
			    "in the model, %u in the local data (a feature "
			    "schema other than this device's)", k,
			    c->side_card[k], local->side_card[k]);
			return MODEL_FIT_REFUSED;
		}
	return MODEL_FIT_OK;
}
