/*
 * learn_memo: the evaluation rows share work (learn.c). ft-cv, ft-guard
 * and ft-fb run the same cross-validation (they differ only in what they
 * do with its choice), a fallback runs the bias row's, and rows that
 * choose the same setting train the same final fit. An entry is keyed by
 * the prep and what changes the computation (adapt, label correction and
 * its target, CoDA, partial step, pairwise weight, training window);
 * learn.c fills it.
 * learn_memo_new and learn_memo_free are declared in learn.h.
 */
#ifndef DEVICED_LEARN_MEMO_H
#define DEVICED_LEARN_MEMO_H

#include "deviced/learn.h"

#define MEMO_MAX	48
#define MEMO_FITS	4
#define MEMO_KEPT	24	/* trained models kept (0.8 MiB each here) */

/*
 * The evaluation rows share work: ft-cv, ft-guard and ft-fb run the same
 * cross-validation (they differ only in what they do with its choice), a
 * fallback runs the bias row's, and rows that choose the same setting
 * train the same final fit. Each is computed once per job and its time
 * counted for every row that uses it, so a row's device_ms is what the
 * method costs alone.
 */
struct memo_fit {
	double	 lr;
	int	 steps;
	int	 rc;
	float	*params;	/* the trained model's, when rc == 0 */
	double	 secs;
};

struct memo_ent {
	const struct learn_prep *p;
	int		 adapt, lc, tgt, coda, ps;
	float		 pair;
	size_t		 window;
	int		 have_cv, cv_rc;
	struct learn_choice cv;
	double		 cv_secs;
	int		 nfit;
	struct memo_fit	 fit[MEMO_FITS];
};

struct learn_memo {
	struct memo_ent	 e[MEMO_MAX];
	int		 n;
	int		 kept;	/* fits holding params */
};

/* The entry of (p, key); a new one if there is room, else NULL (also for
 * a NULL mm). */
struct memo_ent *learn_memo_get(struct learn_memo *mm,
	    const struct learn_prep *p, int adapt, int lc, int tgt, int coda,
	    int ps, float pair, size_t window);
/* The fit of (lr, steps) in e (may be NULL), or NULL. */
struct memo_fit *learn_memo_fit_find(struct memo_ent *e, double lr,
	    int steps);

#endif
