/*
 * Unit tests for cloudd/fedsel.c, federated selection's aggregation and
 * choice rule: sums add up across devices, a device counts once per
 * round, the minimum-evidence rule and the paired-SE rule keep the
 * default, ties go to the default (and between other points to the lower
 * index), and malformed reports (NaN, inf, wrong grid, out of range, too
 * many methods, another grid for the round) are refused with a typed
 * code and change nothing. The pair weight (issue 17, fifth pass): the
 * net pairs at each device's own CV point pooled per group of users,
 * the paired SE over devices, minimum evidence, the fallback to both
 * groups pooled, bad weights refused, and older reports at weight 0.
 */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "cloudd/fedsel.h"

/* One method's report, with fields a test can break. */
struct rep {
	Dccl__SelectReport	 q;
	Dccl__GridReport	 g, *gp[FEDSEL_METHODS + 2];
	Dccl__GridReport	 more[FEDSEL_METHODS + 1];
	char			 names[FEDSEL_METHODS + 1][16];
	double			 lr[FEDSEL_LR];
	uint32_t		 steps[FEDSEL_ST];
	double			 gain[FEDSEL_GRID], dsq[FEDSEL_GRID];
	double			 rank[FEDSEL_GRID];
};

/*
 * n held-out samples whose per-sample gain at point s is base[s] + the
 * same noise e_i (so the paired differences are exact: diff_sq =
 * n (base[s] - base[def])^2), noise sum 0.
 */
static void
rep_init(struct rep *r, const char *method, uint64_t version, uint32_t n,
    const double *base)
{
	memset(r, 0, sizeof(*r));
	dccl__select_report__init(&r->q);
	dccl__grid_report__init(&r->g);
	r->lr[0] = 0.01 / 3;
	r->lr[1] = 0.01;
	r->lr[2] = 0.03;
	r->steps[0] = 5;
	r->steps[1] = 20;
	for (int s = 0; s < FEDSEL_GRID; s++) {
		double d = base[s] - base[FEDSEL_DEFAULT];
		r->gain[s] = base[s] * n;
		r->dsq[s] = d * d * n;
		r->rank[s] = 0;
	}
	r->g.method = (char *)method;
	r->g.n_lr = FEDSEL_LR;
	r->g.lr = r->lr;
	r->g.n_steps = FEDSEL_ST;
	r->g.steps = r->steps;
	r->g.n = n;
	r->g.pairs = n / 4;
	r->g.n_gain_sum = r->g.n_diff_sq = r->g.n_rank_net = FEDSEL_GRID;
	r->g.gain_sum = r->gain;
	r->g.diff_sq = r->dsq;
	r->g.rank_net = r->rank;
	r->gp[0] = &r->g;
	r->q.base_version = version;
	r->q.n_methods = 1;
	r->q.methods = r->gp;
}

static const struct fedsel_opts opts = { 3, 30, 1.0, 1000, 0, { 0 } };

static int
add(struct fedsel *fs, const char *dev, struct rep *r, int *dup)
{
	char err[256];

	return fedsel_add(fs, dev, FEDSEL_WARM, &r->q, dup, err,
	    sizeof(err));
}

static const double flat[FEDSEL_GRID] = { 0.01, 0.01, 0.01, 0.01, 0.01,
	0.01 };
/* point 4 (lr 0.03, 5 steps) best, point 5 second */
static const double peak[FEDSEL_GRID] = { 0.00, 0.01, 0.01, 0.02, 0.05,
	0.04 };

static void
test_sums_and_choice(void **state)
{
	struct fedsel fs;
	struct rep r;
	struct fedsel_choice c;
	struct fedsel_agg a;
	uint64_t round;
	int dup;
	char dev[16];

	(void)state;
	fedsel_init(&fs, &opts);
	for (int i = 0; i < 4; i++) {
		snprintf(dev, sizeof(dev), "d%d", i);
		rep_init(&r, "ft-cv", 7, 20, peak);
		assert_int_equal(add(&fs, dev, &r, &dup), 0);
		assert_int_equal(dup, 0);
	}
	assert_int_equal(fedsel_lookup(&fs, "ft-cv", FEDSEL_WARM, &c, &round,
	    &a), 0);
	assert_int_equal(round, 7);
	assert_int_equal(a.devices, 4);
	assert_int_equal(a.n, 80);
	assert_true(fabs(a.gain[4] - 0.05 * 80) < 1e-9);
	assert_int_equal(c.point, 4);
	assert_true(c.by_evidence);
	assert_true(c.lr == 0.03 && c.steps == 5);
	assert_true(fabs(c.mean_gain - 0.05) < 1e-12);
	assert_true(fabs(c.default_gain - 0.02) < 1e-12);
	/* Unknown method. */
	assert_int_equal(fedsel_lookup(&fs, "mp-cv", FEDSEL_WARM, &c, NULL,
	    NULL), -1);
	fedsel_fini(&fs);
}

static void
test_once_per_device(void **state)
{
	struct fedsel fs;
	struct rep r;
	struct fedsel_agg a;
	struct fedsel_choice c;
	int dup;

	(void)state;
	fedsel_init(&fs, &opts);
	rep_init(&r, "bias", 3, 50, peak);
	assert_int_equal(add(&fs, "one", &r, &dup), 0);
	assert_int_equal(add(&fs, "one", &r, &dup), 0);
	assert_int_equal(dup, 1);
	assert_int_equal(fedsel_lookup(&fs, "bias", FEDSEL_WARM, &c, NULL,
	    &a), 0);
	assert_int_equal(a.devices, 1);
	assert_int_equal(a.n, 50);
	/* One device is too little evidence (min 3): the default. */
	assert_int_equal(c.point, FEDSEL_DEFAULT);
	assert_false(c.by_evidence);
	fedsel_fini(&fs);
}

static void
test_too_little_evidence(void **state)
{
	struct fedsel fs;
	struct rep r;
	struct fedsel_choice c;
	int dup;

	(void)state;
	fedsel_init(&fs, &opts);
	/* Enough devices, too few samples (3 x 9 < 30). */
	for (int i = 0; i < 3; i++) {
		char dev[16];
		snprintf(dev, sizeof(dev), "d%d", i);
		rep_init(&r, "bias", 3, 9, peak);
		assert_int_equal(add(&fs, dev, &r, &dup), 0);
	}
	assert_int_equal(fedsel_lookup(&fs, "bias", FEDSEL_WARM, &c, NULL,
	    NULL), 0);
	assert_int_equal(c.point, FEDSEL_DEFAULT);
	assert_false(c.by_evidence);
	/* A fourth device brings it to 36 samples: now by evidence. */
	rep_init(&r, "bias", 3, 9, peak);
	assert_int_equal(add(&fs, "d3", &r, &dup), 0);
	assert_int_equal(fedsel_lookup(&fs, "bias", FEDSEL_WARM, &c, NULL,
	    NULL), 0);
	assert_int_equal(c.point, 4);
	fedsel_fini(&fs);
}

static void
test_ties_and_noise(void **state)
{
	struct fedsel fs;
	struct fedsel_agg a;
	struct fedsel_choice c;
	struct fedsel_opts o = opts;

	(void)state;
	/* Every point equal: the default. */
	fedsel_init(&fs, &opts);
	memset(&a, 0, sizeof(a));
	a.devices = 10;
	a.n = 100;
	a.lr[0] = 1; a.lr[1] = 2; a.lr[2] = 3;
	a.steps[0] = 1; a.steps[1] = 4;
	for (int s = 0; s < FEDSEL_GRID; s++)
		a.gain[s] = flat[s] * 100;
	fedsel_choose(&a, &o, &c);
	assert_int_equal(c.point, FEDSEL_DEFAULT);
	assert_false(c.by_evidence);
	assert_true(c.lr == 2 && c.steps == 4);
	/* Two points tie above the default: the lower index. */
	a.gain[1] = a.gain[5] = 3;
	a.dsq[1] = a.dsq[5] = 100 * 0.02 * 0.02;
	fedsel_choose(&a, &o, &c);
	assert_int_equal(c.point, 1);
	/*
	 * A larger mean gain that noise explains: per-sample differences
	 * of mean 0.02 and SD 0.5 over 100 samples (SE 0.05) do not pass
	 * z = 1; with z = 0 they do.
	 */
	a.gain[1] = a.gain[5] = a.gain[FEDSEL_DEFAULT];
	a.dsq[1] = a.dsq[5] = 0;
	a.gain[0] = a.gain[FEDSEL_DEFAULT] + 0.02 * 100;
	a.dsq[0] = 100 * (0.5 * 0.5 + 0.02 * 0.02);
	fedsel_choose(&a, &o, &c);
	assert_int_equal(c.point, FEDSEL_DEFAULT);
	o.z = 0;
	fedsel_choose(&a, &o, &c);
	assert_int_equal(c.point, 0);
	assert_true(c.se > 0.04 && c.se < 0.06);
	/* A point worse than the default never wins. */
	a.gain[0] = a.gain[FEDSEL_DEFAULT] - 1;
	fedsel_choose(&a, &o, &c);
	assert_int_equal(c.point, FEDSEL_DEFAULT);
	fedsel_fini(&fs);
}

/* Each broken report is refused with code, and the table is unchanged. */
static void
refused(struct fedsel *fs, struct rep *r, int code)
{
	struct fedsel_agg a;
	struct fedsel_choice c;
	uint64_t n0 = 0, d0 = 0;
	char err[256] = "";
	int dup;

	if (fedsel_lookup(fs, "ft-cv", FEDSEL_WARM, &c, NULL, &a) == 0) {
		n0 = a.n;
		d0 = a.devices;
	}
	assert_int_equal(fedsel_add(fs, "bad", FEDSEL_WARM, &r->q, &dup, err,
	    sizeof(err)),
	    code);
	assert_true(err[0] != '\0');
	assert_int_equal(fedsel_lookup(fs, "ft-cv", FEDSEL_WARM, &c, NULL, &a),
	    0);
	assert_int_equal(a.n, n0);
	assert_int_equal(a.devices, d0);
}

static void
test_malformed(void **state)
{
	struct fedsel fs;
	struct rep r;
	int dup;

	(void)state;
	fedsel_init(&fs, &opts);
	rep_init(&r, "ft-cv", 5, 40, peak);
	assert_int_equal(add(&fs, "good", &r, &dup), 0);

	rep_init(&r, "ft-cv", 5, 40, peak);
	r.gain[2] = NAN;
	refused(&fs, &r, DCCL__ERROR_CODE__E_BAD_REQUEST);
	rep_init(&r, "ft-cv", 5, 40, peak);
	r.dsq[0] = INFINITY;
	refused(&fs, &r, DCCL__ERROR_CODE__E_BAD_REQUEST);
	rep_init(&r, "ft-cv", 5, 40, peak);
	r.rank[0] = -INFINITY;
	refused(&fs, &r, DCCL__ERROR_CODE__E_BAD_REQUEST);
	rep_init(&r, "ft-cv", 5, 40, peak);
	r.lr[1] = NAN;
	refused(&fs, &r, DCCL__ERROR_CODE__E_BAD_REQUEST);
	rep_init(&r, "ft-cv", 5, 40, peak);
	r.g.n_gain_sum = 5;		/* not the grid */
	refused(&fs, &r, DCCL__ERROR_CODE__E_BAD_REQUEST);
	rep_init(&r, "ft-cv", 5, 40, peak);
	r.g.n = 0;
	refused(&fs, &r, DCCL__ERROR_CODE__E_BAD_REQUEST);
	rep_init(&r, "ft-cv", 5, 40, peak);
	r.gain[0] = 1e9;		/* |gain| > 100 per sample */
	refused(&fs, &r, DCCL__ERROR_CODE__E_BAD_REQUEST);
	rep_init(&r, "ft-cv", 5, 40, peak);
	r.dsq[1] = -1;
	refused(&fs, &r, DCCL__ERROR_CODE__E_BAD_REQUEST);
	rep_init(&r, "ft-cv", 5, 40, peak);
	r.rank[1] = 1000;		/* more than the pairs */
	refused(&fs, &r, DCCL__ERROR_CODE__E_BAD_REQUEST);
	rep_init(&r, "FT cv", 5, 40, peak);
	r.g.method = "FT cv";
	refused(&fs, &r, DCCL__ERROR_CODE__E_BAD_REQUEST);
	/* Another grid than the round's for the method. */
	rep_init(&r, "ft-cv", 5, 40, peak);
	r.steps[1] = 40;
	refused(&fs, &r, DCCL__ERROR_CODE__E_BAD_REQUEST);
	/* A method twice in one report. */
	rep_init(&r, "ft-cv", 5, 40, peak);
	r.gp[1] = &r.g;
	r.q.n_methods = 2;
	refused(&fs, &r, DCCL__ERROR_CODE__E_BAD_REQUEST);
	/* Too many methods for one report. */
	rep_init(&r, "ft-cv", 5, 40, peak);
	for (int i = 0; i <= FEDSEL_METHODS; i++) {
		r.more[i] = r.g;
		snprintf(r.names[i], sizeof(r.names[i]), "m%d", i);
		r.more[i].method = r.names[i];
		r.gp[i] = &r.more[i];
	}
	r.q.n_methods = FEDSEL_METHODS + 1;
	refused(&fs, &r, DCCL__ERROR_CODE__E_TOO_LARGE);
	/* A version older than every round kept: stale. */
	rep_init(&r, "ft-cv", 6, 40, peak);
	assert_int_equal(add(&fs, "x1", &r, &dup), 0);	/* round 6 */
	rep_init(&r, "ft-cv", 7, 40, peak);
	assert_int_equal(add(&fs, "x1", &r, &dup), 0);	/* round 7; 5 gone */
	rep_init(&r, "ft-cv", 5, 40, peak);
	{
		char err[128];
		assert_int_equal(fedsel_add(&fs, "late", FEDSEL_WARM, &r.q, &dup,
		    err,
		    sizeof(err)), DCCL__ERROR_CODE__E_STALE);
	}
	fedsel_fini(&fs);
}

static void
test_bounds(void **state)
{
	struct fedsel fs;
	struct fedsel_opts o = opts;
	struct rep r;
	int dup;
	char dev[16], err[128];

	(void)state;
	/* The round's reporter table: max_devices, then E_BUSY. */
	o.max_devices = 100;
	fedsel_init(&fs, &o);
	for (int i = 0; i < 100; i++) {
		snprintf(dev, sizeof(dev), "d%d", i);
		rep_init(&r, "bias", 1, 10, flat);
		assert_int_equal(add(&fs, dev, &r, &dup), 0);
	}
	rep_init(&r, "bias", 1, 10, flat);
	assert_int_equal(fedsel_add(&fs, "d100", FEDSEL_WARM, &r.q, &dup, err,
	    sizeof(err)),
	    DCCL__ERROR_CODE__E_BUSY);
	/* A known one is still a duplicate, not busy. */
	assert_int_equal(add(&fs, "d7", &r, &dup), 0);
	assert_int_equal(dup, 1);
	/* The round's table: FEDSEL_METHODS methods, then E_TOO_LARGE. */
	fedsel_fini(&fs);
	fedsel_init(&fs, &opts);
	for (int i = 0; i < FEDSEL_METHODS; i++) {
		char name[16];
		snprintf(dev, sizeof(dev), "d%d", i);
		snprintf(name, sizeof(name), "m%d", i);
		rep_init(&r, name, 1, 10, flat);
		assert_int_equal(add(&fs, dev, &r, &dup), 0);
	}
	rep_init(&r, "extra", 1, 10, flat);
	assert_int_equal(fedsel_add(&fs, "dx", FEDSEL_WARM, &r.q, &dup, err,
	    sizeof(err)),
	    DCCL__ERROR_CODE__E_TOO_LARGE);
	/* Only two rounds are kept. */
	for (uint64_t v = 2; v <= 5; v++) {
		rep_init(&r, "m0", v, 10, flat);
		assert_int_equal(add(&fs, "d0", &r, &dup), 0);
	}
	assert_int_equal(fs.r[0].version, 5);
	assert_int_equal(fs.r[1].version, 4);
	fedsel_fini(&fs);
}

/* A newer round without enough evidence still answers with the older. */
static void
test_rounds(void **state)
{
	struct fedsel fs;
	struct rep r;
	struct fedsel_choice c;
	uint64_t round;
	int dup;
	char dev[16];

	(void)state;
	fedsel_init(&fs, &opts);
	for (int i = 0; i < 4; i++) {
		snprintf(dev, sizeof(dev), "d%d", i);
		rep_init(&r, "mp-cv", 1, 20, peak);
		assert_int_equal(add(&fs, dev, &r, &dup), 0);
	}
	rep_init(&r, "mp-cv", 2, 20, flat);
	assert_int_equal(add(&fs, "d0", &r, &dup), 0);
	assert_int_equal(fedsel_lookup(&fs, "mp-cv", FEDSEL_WARM, &c, &round,
	    NULL), 0);
	assert_int_equal(round, 1);
	assert_int_equal(c.point, 4);
	fedsel_fini(&fs);
}

/* --- the pair weight (fedsel_choose_pw) --------------------------------- */

static const double pws[4] = { 0, 1, 3, 9 };

/* One method's report at the four candidate weights (n 40, 10 pairs). */
struct fam {
	Dccl__SelectReport	 q;
	Dccl__GridReport	 g[4], *gp[4];
	double			 lr[FEDSEL_LR];
	uint32_t		 steps[FEDSEL_ST];
	double			 gain[4][FEDSEL_GRID], dsq[4][FEDSEL_GRID];
	double			 rank[4][FEDSEL_GRID];
};

/*
 * Weight k's grid: the gains of peak (its own CV point is 4), net pairs
 * own[k] at point 4 and other[k] at every other point (which the rule
 * must not read).
 */
static void
fam_init(struct fam *f, const char *method, uint64_t version, int nw,
    const double *own, const double *other)
{
	memset(f, 0, sizeof(*f));
	dccl__select_report__init(&f->q);
	f->lr[0] = 0.01 / 3;
	f->lr[1] = 0.01;
	f->lr[2] = 0.03;
	f->steps[0] = 5;
	f->steps[1] = 20;
	for (int k = 0; k < nw; k++) {
		Dccl__GridReport *g = &f->g[k];
		dccl__grid_report__init(g);
		for (int s = 0; s < FEDSEL_GRID; s++) {
			double d = peak[s] - peak[FEDSEL_DEFAULT];
			f->gain[k][s] = peak[s] * 40;
			f->dsq[k][s] = d * d * 40;
			f->rank[k][s] = s == 4 ? own[k] : other[k];
		}
		g->method = (char *)method;
		g->pair_weight = pws[k];
		g->n_lr = FEDSEL_LR;
		g->lr = f->lr;
		g->n_steps = FEDSEL_ST;
		g->steps = f->steps;
		g->n = 40;
		g->pairs = 10;
		g->n_gain_sum = g->n_diff_sq = g->n_rank_net = FEDSEL_GRID;
		g->gain_sum = f->gain[k];
		g->diff_sq = f->dsq[k];
		g->rank_net = f->rank[k];
		f->gp[k] = g;
	}
	f->q.base_version = version;
	f->q.n_methods = (size_t)nw;
	f->q.methods = f->gp;
}

static struct fedsel_opts
pw_opts(double z)
{
	struct fedsel_opts o = opts;
	char err[128];

	o.z = z;
	assert_int_equal(fedsel_pw_parse("0,1,3,9", &o, err, sizeof(err)), 0);
	return o;
}

static int
fam_add(struct fedsel *fs, int i, int group, struct fam *f)
{
	char dev[16], err[256];
	int dup;

	snprintf(dev, sizeof(dev), "%c%d", group == FEDSEL_COLD ? 'c' : 'w',
	    i);
	return fedsel_add(fs, dev, group, &f->q, &dup, err, sizeof(err));
}

static const double other[4] = { -10, -10, -10, -10 };

static void
test_pw_choice(void **state)
{
	struct fedsel_opts o = pw_opts(1);
	struct fedsel fs;
	struct fam f;
	struct fedsel_choice c;
	struct fedsel_agg a;
	const double own[4] = { 1, 3, 5, 2 };

	(void)state;
	fedsel_init(&fs, &o);
	for (int i = 0; i < 4; i++) {
		fam_init(&f, "ft-pairw-cv", 3, 4, own, other);
		assert_int_equal(fam_add(&fs, i, FEDSEL_WARM, &f), 0);
	}
	assert_int_equal(fedsel_lookup(&fs, "ft-pairw-cv", FEDSEL_WARM, &c,
	    NULL, &a), 0);
	/* Each device's net pairs at its own CV point (4), not elsewhere. */
	assert_int_equal(c.ev.devices, 4);
	assert_true(c.ev.own[0] == 4 && c.ev.own[1] == 12 &&
	    c.ev.own[2] == 20 && c.ev.own[3] == 8);
	/* Weight 3 has the most, every device agrees: by evidence. */
	assert_int_equal(c.pw, 2);
	assert_true(c.pair_weight == 3);
	assert_true(c.pw_by_evidence);
	assert_int_equal(c.group, FEDSEL_WARM);
	/* (lr, steps) by the logloss rule at that weight. */
	assert_int_equal(c.point, 4);
	assert_int_equal(a.devices, 4);
	assert_true(fabs(a.rank[4] - 20) < 1e-9);
	fedsel_fini(&fs);
}

static void
test_pw_noise_and_evidence(void **state)
{
	struct fedsel_opts o = pw_opts(1);
	struct fedsel fs;
	struct fam f;
	struct fedsel_choice c;
	const double up[4] = { 0, 6, 0, 0 }, down[4] = { 4, 0, 4, 4 };
	const double own[4] = { 1, 3, 5, 2 };

	(void)state;
	/*
	 * Weight 1 leads by +6 on half the devices and trails by 4 on the
	 * others: +12 over 12 devices, SE sqrt(312 - 144 / 12) = 17.3 > 12.
	 */
	fedsel_init(&fs, &o);
	for (int i = 0; i < 12; i++) {
		fam_init(&f, "m", 1, 4, i % 2 ? up : down, other);
		assert_int_equal(fam_add(&fs, i, FEDSEL_WARM, &f), 0);
	}
	assert_int_equal(fedsel_lookup(&fs, "m", FEDSEL_WARM, &c, NULL, NULL),
	    0);
	assert_true(c.ev.own[1] - c.ev.own[0] == 12);
	assert_int_equal(c.pw, 0);
	assert_false(c.pw_by_evidence);
	assert_int_equal(fedsel_choose_pw(&c.ev, &o, NULL), 0);
	o.z = 0;
	assert_int_equal(fedsel_choose_pw(&c.ev, &o, NULL), 1);
	o.z = 0.5;	/* 12 - 0.5 * 17.3 > 0 */
	assert_int_equal(fedsel_choose_pw(&c.ev, &o, NULL), 1);
	fedsel_fini(&fs);

	/* Two complete reports (min 3): the default weight. */
	o = pw_opts(1);
	fedsel_init(&fs, &o);
	for (int i = 0; i < 2; i++) {
		fam_init(&f, "m", 1, 4, own, other);
		assert_int_equal(fam_add(&fs, i, FEDSEL_WARM, &f), 0);
	}
	/* Reports without weight 9 count for the grids, not between weights. */
	for (int i = 2; i < 6; i++) {
		fam_init(&f, "m", 1, 3, own, other);
		assert_int_equal(fam_add(&fs, i, FEDSEL_WARM, &f), 0);
	}
	assert_int_equal(fedsel_lookup(&fs, "m", FEDSEL_WARM, &c, NULL, NULL),
	    0);
	assert_int_equal(c.ev.devices, 2);
	assert_int_equal(c.pw, 0);
	assert_int_equal(c.point, 4);	/* 6 reports at weight 0 */
	/* A third complete one: now weight 3. */
	fam_init(&f, "m", 1, 4, own, other);
	assert_int_equal(fam_add(&fs, 6, FEDSEL_WARM, &f), 0);
	assert_int_equal(fedsel_lookup(&fs, "m", FEDSEL_WARM, &c, NULL, NULL),
	    0);
	assert_true(c.pair_weight == 3);
	/* Ties between weights: the lower index. */
	memset(&c.ev, 0, sizeof(c.ev));
	c.ev.devices = 10;
	c.ev.n = 400;
	c.ev.own[1] = c.ev.own[3] = 50;
	assert_int_equal(fedsel_choose_pw(&c.ev, &o, NULL), 1);
	/* One candidate: always it. */
	o.npw = 1;
	assert_int_equal(fedsel_choose_pw(&c.ev, &o, NULL), 0);
	fedsel_fini(&fs);
}

static void
test_pw_groups(void **state)
{
	struct fedsel_opts o = pw_opts(1);
	struct fedsel fs;
	struct fam f;
	struct fedsel_choice c;
	const double w3[4] = { 1, 3, 5, 2 }, w9[4] = { 0, 1, 2, 6 };

	(void)state;
	fedsel_init(&fs, &o);
	for (int i = 0; i < 5; i++) {
		fam_init(&f, "m", 2, 4, w3, other);
		assert_int_equal(fam_add(&fs, i, FEDSEL_WARM, &f), 0);
		fam_init(&f, "m", 2, 4, w9, other);
		assert_int_equal(fam_add(&fs, i, FEDSEL_COLD, &f), 0);
	}
	assert_int_equal(fedsel_lookup(&fs, "m", FEDSEL_WARM, &c, NULL, NULL),
	    0);
	assert_true(c.pair_weight == 3 && c.group == FEDSEL_WARM);
	assert_int_equal(c.ev.devices, 5);
	assert_int_equal(fedsel_lookup(&fs, "m", FEDSEL_COLD, &c, NULL, NULL),
	    0);
	assert_true(c.pair_weight == 9 && c.group == FEDSEL_COLD);
	/* Both pooled: 25 + 10 at 3, 10 + 30 at 9. */
	assert_int_equal(fedsel_lookup(&fs, "m", FEDSEL_ALL, &c, NULL, NULL),
	    0);
	assert_true(c.group == FEDSEL_ALL && c.ev.devices == 10);
	assert_true(c.pair_weight == 9);
	fedsel_fini(&fs);

	/* Two cold reports (min 3): a cold device gets the pooled choice. */
	fedsel_init(&fs, &o);
	for (int i = 0; i < 5; i++) {
		fam_init(&f, "m", 2, 4, w3, other);
		assert_int_equal(fam_add(&fs, i, FEDSEL_WARM, &f), 0);
	}
	for (int i = 0; i < 2; i++) {
		fam_init(&f, "m", 2, 4, w9, other);
		assert_int_equal(fam_add(&fs, i, FEDSEL_COLD, &f), 0);
	}
	assert_int_equal(fedsel_lookup(&fs, "m", FEDSEL_COLD, &c, NULL, NULL),
	    0);
	assert_int_equal(c.group, FEDSEL_ALL);
	assert_int_equal(c.ev.devices, 7);
	assert_true(c.pair_weight == 3);	/* 29 against 22 at 9 */
	fedsel_fini(&fs);
}

/* A refused report changes nothing: "m"'s weight-0 sums stay. */
static void
pw_refused(struct fedsel *fs, struct fam *f, int code)
{
	struct fedsel_choice c;
	struct fedsel_agg a;
	uint64_t n0;
	char err[256] = "";
	int dup;

	assert_int_equal(fedsel_lookup(fs, "m", FEDSEL_WARM, &c, NULL, &a), 0);
	n0 = c.ev.n;
	assert_int_equal(fedsel_add(fs, "bad", FEDSEL_WARM, &f->q, &dup, err,
	    sizeof(err)), code);
	assert_true(err[0] != '\0');
	assert_int_equal(fedsel_lookup(fs, "m", FEDSEL_WARM, &c, NULL, &a), 0);
	assert_int_equal(c.ev.n, n0);
}

static void
test_pw_malformed(void **state)
{
	struct fedsel_opts o = pw_opts(1);
	struct fedsel fs;
	struct fam f;
	const double own[4] = { 1, 3, 5, 2 };
	char err[128];

	(void)state;
	fedsel_init(&fs, &o);
	fam_init(&f, "m", 1, 4, own, other);
	assert_int_equal(fam_add(&fs, 0, FEDSEL_WARM, &f), 0);
	/* Not a candidate. */
	fam_init(&f, "m", 1, 4, own, other);
	f.g[3].pair_weight = 5;
	pw_refused(&fs, &f, DCCL__ERROR_CODE__E_BAD_REQUEST);
	/* Out of range, not finite. */
	fam_init(&f, "m", 1, 4, own, other);
	f.g[2].pair_weight = NAN;
	pw_refused(&fs, &f, DCCL__ERROR_CODE__E_BAD_REQUEST);
	fam_init(&f, "m", 1, 4, own, other);
	f.g[2].pair_weight = -1;
	pw_refused(&fs, &f, DCCL__ERROR_CODE__E_BAD_REQUEST);
	/* Without the default weight's grid. */
	fam_init(&f, "m", 1, 4, own, other);
	f.q.methods = f.gp + 1;
	f.q.n_methods = 3;
	pw_refused(&fs, &f, DCCL__ERROR_CODE__E_BAD_REQUEST);
	/* A weight twice. */
	fam_init(&f, "m", 1, 4, own, other);
	f.g[3].pair_weight = 3;
	pw_refused(&fs, &f, DCCL__ERROR_CODE__E_BAD_REQUEST);
	/* Another grid at another weight. */
	fam_init(&f, "m", 1, 4, own, other);
	{
		static uint32_t st2[FEDSEL_ST] = { 5, 40 };
		f.g[1].steps = st2;
	}
	pw_refused(&fs, &f, DCCL__ERROR_CODE__E_BAD_REQUEST);
	fedsel_fini(&fs);
	/* The candidate list. */
	assert_int_equal(fedsel_pw_parse("0,1,3,9", &o, err, sizeof(err)), 0);
	assert_int_equal(o.npw, 4);
	assert_int_equal(fedsel_pw_parse("0", &o, err, sizeof(err)), 0);
	assert_int_equal(o.npw, 1);
	assert_int_equal(fedsel_pw_parse("", &o, err, sizeof(err)), -1);
	assert_int_equal(fedsel_pw_parse("0,1,", &o, err, sizeof(err)), -1);
	assert_int_equal(fedsel_pw_parse("0,1,1", &o, err, sizeof(err)), -1);
	assert_int_equal(fedsel_pw_parse("0,-1", &o, err, sizeof(err)), -1);
	assert_int_equal(fedsel_pw_parse("0,101", &o, err, sizeof(err)), -1);
	assert_int_equal(fedsel_pw_parse("0,x", &o, err, sizeof(err)), -1);
	assert_int_equal(fedsel_pw_parse("0,1,2,3,4,5,6,7,8", &o, err,
	    sizeof(err)), -1);
}

/* Reports without pair_weight (older devices) count at weight 0. */
static void
test_pw_old_reports(void **state)
{
	struct fedsel_opts o = pw_opts(1);
	struct fedsel fs;
	struct rep r;
	struct fedsel_choice c;
	int dup;
	char dev[16];

	(void)state;
	fedsel_init(&fs, &o);
	for (int i = 0; i < 4; i++) {
		snprintf(dev, sizeof(dev), "d%d", i);
		rep_init(&r, "ft-cv", 7, 20, peak);
		assert_int_equal(add(&fs, dev, &r, &dup), 0);
	}
	assert_int_equal(fedsel_lookup(&fs, "ft-cv", FEDSEL_WARM, &c, NULL,
	    NULL), 0);
	assert_int_equal(c.point, 4);
	assert_true(c.pair_weight == 0 && !c.pw_by_evidence);
	assert_int_equal(c.ev.devices, 0);
	fedsel_fini(&fs);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_sums_and_choice),
		cmocka_unit_test(test_once_per_device),
		cmocka_unit_test(test_too_little_evidence),
		cmocka_unit_test(test_ties_and_noise),
		cmocka_unit_test(test_malformed),
		cmocka_unit_test(test_bounds),
		cmocka_unit_test(test_rounds),
		cmocka_unit_test(test_pw_choice),
		cmocka_unit_test(test_pw_noise_and_evidence),
		cmocka_unit_test(test_pw_groups),
		cmocka_unit_test(test_pw_malformed),
		cmocka_unit_test(test_pw_old_reports),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
