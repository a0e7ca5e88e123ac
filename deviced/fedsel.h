/*
 * fedsel: the device's half of federated selection (issue 17). After a
 * learning job a device reports what each point of its setting grid
 * scored on its local validation folds (learn_grid: sums over held-out
 * samples, never a sample); the cloud (cloudd/fedsel.c) pools the reports
 * and chooses each method's setting; the device fetches the choice before
 * its next job and a "-fed" row, or the served method with learn.select =
 * fed, trains at it. Part of the learning layer (with learn.c and
 * learn_eval.c); device.c sends and receives.
 */
#ifndef DEVICED_FEDSEL_H
#define DEVICED_FEDSEL_H

#include <stddef.h>
#include <stdint.h>

#include "dccl.pb-c.h"

#include "deviced/fedsel_choice.h"

struct device;
struct learn_prep;
struct learn_memo;
struct learn_result;

/* Does d report after its jobs (learn.fedsel-report, and no DP)? */
int	fedsel_dev_reports(const struct device *d);
/* Does d fetch the cloud's choice before a job? */
int	fedsel_dev_wanted(const struct device *d);

/*
 * Threadpool: the grid of every method of learn.fedsel-methods on p, a
 * pair-weight family (learn_pair_family) at every weight of
 * learn.pair-weights, as a packed SelectReport on base version into
 * r->report (nothing when no method has a grid: too few local samples).
 * At most FEDSEL_DEV_METHODS grids: the list is cut at a whole method.
 */
void	fedsel_dev_report(struct learn_prep *p, struct learn_memo *memo,
	    uint64_t version, struct learn_result *r);

/* Loop thread. */
/*
 * A job's end: logs the served setting when it was the cloud's, and moves
 * r's report into d (a previous unsent one is replaced).
 */
void	fedsel_dev_after(struct device *d, struct learn_result *r);
/* Takes a Selection reply: 0, or -1 (malformed: d keeps none). */
int	fedsel_dev_take(struct device *d, const Dccl__Selection *s);
void	fedsel_dev_fini(struct device *d);

#endif
