/*
 * store_meta: the side-field meta rows of both backends (store_meta.h).
 */
#include <stdio.h>

#include "cloudd/store_meta.h"
#include "shared/data/dataset.h"

int
store_meta_side_put(struct store *s, store_meta_set_fn *set,
    const struct dataset *ds)
{
	char key[32];
	int rc;

	if (ds->n_side == 0 || ds->n_side > SAMPLE_SIDE_MAX)
		return 0;
	rc = set(s, "n_side", ds->n_side);
	for (uint32_t k = 0; k < ds->n_side && rc == 0; k++) {
		snprintf(key, sizeof(key), "side_card%u", k);
		rc = set(s, key, ds->side_card[k]);
	}
	return rc;
}

void
store_meta_side_get(struct store *s, store_meta_get_fn *get,
    struct dataset *ds)
{
	char key[32];
	int64_t ns = get(s, "n_side");

	ds->n_side = ns > 0 && ns <= SAMPLE_SIDE_MAX ? (uint32_t)ns : 0;
	for (uint32_t k = 0; k < ds->n_side; k++) {
		snprintf(key, sizeof(key), "side_card%u", k);
		ds->side_card[k] = (uint32_t)get(s, key);
	}
}
