/*
 * test_carve: carve_newest (shared/data/carve.h), the per-user newest
 * split that Forward-OFA's residual learns from: per-user counts and
 * rounding (at least one sample stays older), each user's newest samples
 * and only those go to the newest list, frac 0 keeps everything older,
 * and bad input (frac outside [0, 1), an index out of range, a user's
 * samples split in two runs or out of time order) is -EINVAL with no
 * lists.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "shared/data/carve.h"
#include "shared/data/sample.h"

/* Users 0, 1, 2 with 10, 3 and 1 samples, ts ascending per user. */
#define NS	14

static struct sample sm[NS];
static struct dataset ds;
static uint32_t idx[NS];

static void
fixture(void)
{
	static const uint32_t user[NS] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
		1, 1, 1, 2 };

	memset(sm, 0, sizeof(sm));
	memset(&ds, 0, sizeof(ds));
	for (int i = 0; i < NS; i++) {
		sm[i].user = user[i];
		sm[i].ts = 1000 + 10 * i;
		idx[i] = (uint32_t)i;
	}
	ds.s = sm;
	ds.n = NS;
	ds.n_users = 3;
}

static void
test_split(void **state)
{
	uint32_t *o, *w;
	size_t no, nw;

	(void)state;
	fixture();
	/* 0.3: user 0 -> 3 newest, user 1 -> round(0.9) = 1, user 2 -> 0
	 * (its one sample stays older) */
	assert_int_equal(carve_newest(&ds, idx, NS, 0.3, &o, &no, &w, &nw), 0);
	assert_int_equal(nw, 4);
	assert_int_equal(no, NS - 4);
	assert_int_equal(w[0], 7);
	assert_int_equal(w[1], 8);
	assert_int_equal(w[2], 9);
	assert_int_equal(w[3], 12);
	for (size_t i = 0; i < no; i++) {
		assert_true(o[i] != 7 && o[i] != 8 && o[i] != 9 && o[i] != 12);
		if (i > 0)
			assert_true(o[i] > o[i - 1]);	/* idx's order */
	}
	assert_int_equal(o[no - 1], 13);
	free(o);
	free(w);
	/* 0.5 of 3 rounds to 2; at most n - 1 of a user's samples */
	assert_int_equal(carve_newest(&ds, idx, NS, 0.99, &o, &no, &w, &nw), 0);
	assert_int_equal(nw, 9 + 2 + 0);
	assert_int_equal(no, 3);
	assert_int_equal(o[0], 0);
	assert_int_equal(o[1], 10);
	assert_int_equal(o[2], 13);
	free(o);
	free(w);
	/* frac 0: everything older */
	assert_int_equal(carve_newest(&ds, idx, NS, 0, &o, &no, &w, &nw), 0);
	assert_int_equal(no, NS);
	assert_int_equal(nw, 0);
	free(o);
	free(w);
	/* an empty list */
	assert_int_equal(carve_newest(&ds, idx, 0, 0.5, &o, &no, &w, &nw), 0);
	assert_int_equal(no + nw, 0);
	free(o);
	free(w);
}

static void
test_bad(void **state)
{
	uint32_t *o, *w, bad[NS];
	size_t no, nw;

	(void)state;
	fixture();
	assert_int_equal(carve_newest(&ds, idx, NS, 1.0, &o, &no, &w, &nw),
	    -EINVAL);
	assert_null(o);
	assert_null(w);
	assert_int_equal(carve_newest(&ds, idx, NS, -0.1, &o, &no, &w, &nw),
	    -EINVAL);
	memcpy(bad, idx, sizeof(bad));
	bad[5] = NS;			/* out of range */
	assert_int_equal(carve_newest(&ds, bad, NS, 0.5, &o, &no, &w, &nw),
	    -EINVAL);
	assert_null(o);
	memcpy(bad, idx, sizeof(bad));
	bad[13] = 0;			/* user 0 again after users 1 */
	assert_int_equal(carve_newest(&ds, bad, NS, 0.5, &o, &no, &w, &nw),
	    -EINVAL);
	assert_null(o);
	assert_int_equal(nw + no, 0);
	memcpy(bad, idx, sizeof(bad));
	bad[3] = 4;			/* user 0 out of time order */
	bad[4] = 3;
	assert_int_equal(carve_newest(&ds, bad, NS, 0.5, &o, &no, &w, &nw),
	    -EINVAL);
	assert_null(w);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_split),
		cmocka_unit_test(test_bad),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
