/*
 * movielens: loaders of the MovieLens layouts (100K, 1M, latest) into a
 * canonical dataset. Offline tooling (dccl-data, dccl-distill); no daemon
 * links it.
 */
#ifndef SCRIPTS_TOOLS_MOVIELENS_H
#define SCRIPTS_TOOLS_MOVIELENS_H

#include <stddef.h>
#include <stdint.h>

#include "shared/data/dataset.h"

/* --- MovieLens ----------------------------------------------------------- */

/* Returns the layout found in dir, or -ENOENT if none is recognized. */
int	dataset_detect(const char *dir);
/*
 * Loads a MovieLens directory into ds (initialized, empty) and meta
 * (initialized). Users and items get dense ids by ascending raw id; items are
 * those with at least one rating (movies that are listed but never rated get
 * no id; rated movies missing from the movies file get genres 0). Label =
 * rating >= o->label_threshold. The result is canonical with H = o->hist_k.
 * Layouts: latest (ratings.csv + movies.csv, each with its header line),
 * 1M (ratings.dat + movies.dat, "::"), 100K (u.data + u.item, optional
 * u.genre; u.user is not read: no demographic features). Detection prefers
 * latest, then 1M, then 100K. The movies file is optional (genres 0).
 * Empty lines are ignored. err may be NULL; err->n_lines counts data lines.
 * On failure ds and meta are left empty.
 */
int	dataset_load_movielens(struct dataset *ds, struct dataset_meta *meta,
	    const char *dir, const struct dataset_opts *o,
	    struct dataset_err *err);

#endif
