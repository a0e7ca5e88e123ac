/*
 * learn_diag: diagnostic evaluation rows (deviced.eval-methods), which
 * measure where a user's ranking error lies rather than being methods a
 * device could serve. "diag-nohist" scores the cloud model with the
 * behaviour feature emptied (how much the history carries);
 * "diag-hide-rows" with the user's personal rows (user embedding, m,
 * bias) replaced by the unknown-user rows (what a warm user's rows,
 * trained on all their pool data, are worth: a cold user's best case for
 * any method that only sets personal rows);
 * "diag-ceil-ft" and "diag-ceil-mp" fit fine-tuning or MetaPatch on the
 * user's test samples themselves and score them in-sample (a ceiling of
 * what the model's trainable parts can reach for this user; it reads the
 * test labels, so it is never a method).
 */
#ifndef DEVICED_LEARN_DIAG_H
#define DEVICED_LEARN_DIAG_H

#include <stdio.h>

struct device;
struct dataset;
struct learn_in;

/*
 * If nm is a diagnostic row, scores d's test queries q (app_replay's) and
 * writes its rows to f like learn_eval's methods; returns 1. Returns 0
 * for any other name.
 */
int	learn_diag(struct device *d, const struct learn_in *in, const char *nm,
	    const struct dataset *q, FILE *f);

#endif
