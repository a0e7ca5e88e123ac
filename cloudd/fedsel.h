/*
 * fedsel: federated selection of the devices' learning settings (issue
 * 17). Devices report, per method, what each point of their setting grid
 * scored on their local validation folds (sums and counts, never a
 * sample); fedsel aggregates the reports of one base version in a bounded
 * table and chooses each method's setting for the next round by the rule
 * of fedsel_choose. Pure: no loop, no store; fedsel_rpc.c serves it.
 */
#ifndef CLOUDD_FEDSEL_H
#define CLOUDD_FEDSEL_H

#include <stddef.h>
#include <stdint.h>

#include "dccl.pb-c.h"

#define FEDSEL_LR	3	/* grid: learning rates */
#define FEDSEL_ST	2	/* grid: step counts */
#define FEDSEL_GRID	(FEDSEL_LR * FEDSEL_ST)
#define FEDSEL_DEFAULT	(1 * FEDSEL_ST + 1)	/* base lr, full steps */
#define FEDSEL_METHODS	16	/* per report, and per round's table */
#define FEDSEL_NAME	32	/* method name, with its NUL */
#define FEDSEL_ROUNDS	2	/* base versions kept: newest, previous */
#define FEDSEL_MAX_N	10000000u	/* held-out samples in one report */
#define FEDSEL_MAX_LOSS	100.0	/* |per-sample gain| bound (logloss) */

struct fedsel_opts {
	int64_t	min_devices;	/* reports a choice needs */
	int64_t	min_n;		/* held-out samples it needs */
	double	z;		/* a point must beat the default by z SE */
	int64_t	max_devices;	/* distinct reporters per round (E_BUSY) */
};

/* One method's sums over the reports of a round. */
struct fedsel_agg {
	char		 method[FEDSEL_NAME];
	double		 lr[FEDSEL_LR];
	uint32_t	 steps[FEDSEL_ST];
	uint32_t	 devices;
	uint64_t	 n, pairs;
	double		 gain[FEDSEL_GRID], dsq[FEDSEL_GRID];
	double		 rank[FEDSEL_GRID];
};

struct fedsel_choice {
	int		 point;		/* grid index */
	int		 by_evidence;	/* 0: the default point */
	double		 lr;
	uint32_t	 steps;
	double		 mean_gain, default_gain, se;
};

struct fedsel_round {
	uint64_t	 version;	/* 0 = unused */
	int		 n;
	struct fedsel_agg m[FEDSEL_METHODS];
	uint64_t	*seen;		/* hashes of reporters' ids; open
					   addressing, 0 = empty */
	size_t		 nseen, cap;
};

struct fedsel {
	struct fedsel_opts o;
	struct fedsel_round r[FEDSEL_ROUNDS];	/* r[0] newest */
};

void	fedsel_init(struct fedsel *fs, const struct fedsel_opts *o);
void	fedsel_fini(struct fedsel *fs);

/*
 * Checks a report on its own (names, grid, counts, finite and bounded
 * sums). 0, or a DCCL__ERROR_CODE__* with the reason in err.
 */
int	fedsel_check(const Dccl__SelectReport *q, char *err, size_t errlen);

/*
 * Adds device's report (checked first) to the round of q->base_version:
 * all of it or nothing. A report on a version newer than the newest round
 * starts a round (the oldest is dropped); an older one than every kept
 * round is E_STALE. A device counts once per round (*dup = 1: nothing
 * added). 0, or a DCCL error code with err: E_BAD_REQUEST (malformed, a
 * grid other than the round's for that method), E_TOO_LARGE (too many
 * methods), E_BUSY (the round's reporter table is full), E_STALE.
 */
int	fedsel_add(struct fedsel *fs, const char *device,
	    const Dccl__SelectReport *q, int *dup, char *err, size_t errlen);

/*
 * The rule. With fewer than min_devices reports or min_n held-out
 * samples: the default point. Else each other point's paired gain over
 * the default (mean of its per-sample difference, and that mean's
 * standard error from diff_sq); the point with the largest mean gain
 * among those whose difference stays positive after subtracting z
 * standard errors, ties to the lower index; none: the default.
 */
void	fedsel_choose(const struct fedsel_agg *a, const struct fedsel_opts *o,
	    struct fedsel_choice *c);

/*
 * The choice for method: from the newest round with enough evidence for
 * it, else the default point of the newest round that has the method.
 * -1 if no round has the method. *round, *agg out (may be NULL).
 */
int	fedsel_lookup(const struct fedsel *fs, const char *method,
	    struct fedsel_choice *c, uint64_t *round,
	    const struct fedsel_agg **agg);

#endif
