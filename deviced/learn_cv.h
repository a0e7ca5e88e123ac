/*
 * learn_cv: how the learning job (learn.c) chooses a method's setting on
 * the device's own data. Forward-chaining cross-validation over the
 * local samples in time order: block f of K is scored by fits on blocks
 * 0..f-1 (learn_path.c's paths), every grid setting by each held-out
 * sample's loss gain over the cloud model and by the held-out pairs it
 * orders better; the nested validation (the setting chosen on the inner
 * folds, scored on the last) and, for the rows that serve them, the
 * logit mixture's evidence and a recalibration.
 */
#ifndef DEVICED_LEARN_CV_H
#define DEVICED_LEARN_CV_H

#include <stddef.h>
#include <stdint.h>

#include "deviced/learn.h"
#include "deviced/learn_path.h"
#include "deviced/learn_rows.h"

/*
 * The setting grid: learning rates base/3, base, 3*base (learn.ft-lr for
 * fine-tuning, learn.lr for MetaPatch, learn.bias-lr for the bias alone)
 * times step counts steps/4 and steps (learn.ft-steps for fine-tuning,
 * learn.steps otherwise). Setting s = li * GRID_ST + si.
 */
#define GRID_LR	LEARN_GRID_LR
#define GRID_ST	LEARN_GRID_ST
#define GRID_N	LEARN_GRID_N

struct grid {
	double	lr[GRID_LR];
	int	steps[GRID_ST];
};

/* The grid of a method that adapts adapt (ADAPT_*), from cf. */
void	cv_grid(const struct deviced_conf *cf, int adapt, struct grid *g);
/*
 * Training indices of fold f of K (K < 2: all) into tr: the local samples
 * before block f, the newest rows_window of them, then the kept pool
 * ones. Returns their count.
 */
size_t	cv_train_set(const struct learn_prep *p, const struct method *m,
	    int K, int fold, uint32_t *tr);
/*
 * The cross-validation of m on grid g with the path pa: ch gets the best
 * setting, its mean gain and standard error, ranking evidence, nested
 * validation, the grid (for a report) and, with want_mix, the mixture's
 * evidence and recalibration. With only >= 0 only that grid point is
 * trained. Returns 0, or -1 without evidence.
 */
int	cv_select(struct learn_prep *p, const struct method *m,
	    const struct grid *g, struct path *pa, int only, int want_mix,
	    struct learn_choice *ch);

#endif
