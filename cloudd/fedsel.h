/*
 * fedsel: federated selection of the devices' learning settings (issue
 * 17). Devices report, per method and pair weight, what each point of
 * their setting grid scored on their local validation folds (sums and
 * counts, never a sample); fedsel aggregates the reports of one base
 * version in a bounded table, per group of users (warm, cold), and
 * chooses each method's pair weight (fedsel_choose_pw, by net held-out
 * pairs) and setting at it (fedsel_choose, by logloss gain) for the next
 * round. Pure: no loop, no store; fedsel_rpc.c serves it.
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
#define FEDSEL_PW	8	/* candidate pair weights (fedsel.pair-weights) */
#define FEDSEL_MAX_PW	100.0	/* a pair weight's bound */
/*
 * Groups of reporters, by the cloud's own knowledge of the reporting
 * device's user (fedsel_rpc.c: whether the model the report was trained
 * from has trained personal rows for it, i.e. the user had pool samples
 * when it was trained). FEDSEL_ALL is both pooled.
 */
enum { FEDSEL_WARM = 0, FEDSEL_COLD = 1, FEDSEL_GROUPS = 2,
	FEDSEL_ALL = 2 };

struct fedsel_opts {
	int64_t	min_devices;	/* reports a choice needs */
	int64_t	min_n;		/* held-out samples it needs */
	double	z;		/* a point must beat the default by z SE */
	int64_t	max_devices;	/* distinct reporters per round (E_BUSY) */
	/* candidate pair weights, the first the default; npw 0 = { 0 } */
	int	npw;
	double	pw[FEDSEL_PW];
};

/* One method's sums at one pair weight over the reports of a round. */
struct fedsel_agg {
	char		 method[FEDSEL_NAME];
	double		 lr[FEDSEL_LR];
	uint32_t	 steps[FEDSEL_ST];
	uint32_t	 devices;
	uint64_t	 n, pairs;
	double		 gain[FEDSEL_GRID], dsq[FEDSEL_GRID];
	double		 rank[FEDSEL_GRID];
};

/*
 * The evidence between pair weights: over the reports that carry the
 * method at every candidate weight, per weight k the sum of each
 * device's net held-out pairs ordered better than the cloud model at its
 * own CV's point (the grid point of the largest gain sum, lowest index
 * on ties: what a "-cv" row trains at), and the sum of the squares of
 * its per-device difference from the default weight's.
 */
struct fedsel_pwev {
	uint32_t	 devices;
	uint64_t	 n, pairs;	/* at the default weight */
	double		 own[FEDSEL_PW], dsq[FEDSEL_PW];
};

/* One method in one group of a round: its grid per candidate weight. */
struct fedsel_meth {
	char		 method[FEDSEL_NAME];
	int		 group;
	struct fedsel_agg w[FEDSEL_PW];	/* w[k].devices 0: no report */
	struct fedsel_pwev ev;
};

struct fedsel_choice {
	int		 point;		/* grid index */
	int		 by_evidence;	/* 0: the default point */
	double		 lr;
	uint32_t	 steps;
	double		 mean_gain, default_gain, se;
	/* the pair weight (fedsel_choose_pw) */
	int		 pw;		/* candidate index */
	double		 pair_weight;
	int		 pw_by_evidence;	/* 0: the default weight */
	double		 pw_se;		/* SE of its summed difference */
	int		 group;		/* FEDSEL_WARM, _COLD or _ALL */
	struct fedsel_pwev ev;		/* what chose it */
};

struct fedsel_round {
	uint64_t	 version;	/* 0 = unused */
	int		 n;
	struct fedsel_meth m[FEDSEL_METHODS * FEDSEL_GROUPS];
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
 * sums and pair weights, a (method, pair weight) once). 0, or a
 * DCCL__ERROR_CODE__* with the reason in err.
 */
int	fedsel_check(const Dccl__SelectReport *q, char *err, size_t errlen);

/*
 * Parses a list of pair weights ("0,1,3,9": comma-separated, each in [0,
 * FEDSEL_MAX_PW], distinct, at most FEDSEL_PW) into o->pw, o->npw. 0 or
 * -1 with err.
 */
int	fedsel_pw_parse(const char *s, struct fedsel_opts *o, char *err,
	    size_t errlen);

/*
 * Adds device's report (checked first) to the round of q->base_version,
 * in group (FEDSEL_WARM or FEDSEL_COLD): all of it or nothing. A report
 * on a version newer than the newest round starts a round (the oldest is
 * dropped); an older one than every kept round is E_STALE. A device
 * counts once per round (*dup = 1: nothing added). 0, or a DCCL error
 * code with err: E_BAD_REQUEST (malformed, a grid other than the
 * round's for that method, a pair weight that is not a candidate, one
 * without the default weight's grid beside it), E_TOO_LARGE (too many
 * methods), E_BUSY (the round's reporter table is full), E_STALE.
 */
int	fedsel_add(struct fedsel *fs, const char *device, int group,
	    const Dccl__SelectReport *q, int *dup, char *err, size_t errlen);

/*
 * The rule for (lr, steps) at one pair weight. With fewer than
 * min_devices reports or min_n held-out samples: the default point.
 * Else each other point's paired gain over the default (mean of its
 * per-sample difference, and that mean's standard error from diff_sq);
 * the point with the largest mean gain among those whose difference
 * stays positive after subtracting z standard errors, ties to the lower
 * index; none: the default.
 */
void	fedsel_choose(const struct fedsel_agg *a, const struct fedsel_opts *o,
	    struct fedsel_choice *c);

/*
 * The rule for the pair weight: the candidate index. With one candidate,
 * fewer than min_devices complete reports or min_n held-out samples in
 * them: 0 (the default weight). Else each other weight k's summed
 * difference d_k = own[k] - own[0] over the D devices, with the standard
 * error of that sum sqrt(dsq[k] - d_k^2 / D) (devices independent); the
 * weight with the largest own[k] among those with d_k - z se > 0, ties
 * to the lower index; none: 0. *se (may be NULL) gets the chosen one's.
 */
int	fedsel_choose_pw(const struct fedsel_pwev *e,
	    const struct fedsel_opts *o, double *se);

/*
 * The choice for method and a device of group: from the newest round
 * with enough evidence (min_devices reports and min_n samples at the
 * default weight) in that group, else in both groups pooled; else the
 * default point and weight of the newest round's pooled sums. The pair
 * weight by fedsel_choose_pw, then (lr, steps) by fedsel_choose at it.
 * -1 if no round has the method. *round, *agg (the sums at the chosen
 * weight, copied) out (may be NULL).
 */
int	fedsel_lookup(const struct fedsel *fs, const char *method, int group,
	    struct fedsel_choice *c, uint64_t *round, struct fedsel_agg *agg);

#endif
