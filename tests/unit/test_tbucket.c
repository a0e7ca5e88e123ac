/*
 * Unit tests for shared/tbucket.c: full on first use, refill at the rate
 * up to the depth, all-or-nothing takes, a clock that steps back refills
 * nothing, rate <= 0 admits everything, and the wait until n tokens.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "shared/tbucket.h"

static void
test_full_then_empty(void **state)
{
	struct tbucket b = { 0 };
	int n = 0;

	(void)state;
	while (tbucket_take(&b, 10, 5, 100, 1))
		n++;
	assert_int_equal(n, 5);		/* depth 5, no time passed */
	assert_false(tbucket_take(&b, 10, 5, 100, 1));
}

static void
test_refill_rate_and_depth(void **state)
{
	struct tbucket b = { 0 };

	(void)state;
	assert_true(tbucket_take(&b, 10, 5, 0, 5));	/* empties it */
	assert_false(tbucket_take(&b, 10, 5, 0.05, 1));	/* 0.5 token */
	assert_true(tbucket_take(&b, 10, 5, 0.1, 1));	/* 1 token */
	assert_false(tbucket_take(&b, 10, 5, 0.1, 1));
	/* a long pause refills to the depth, not beyond */
	assert_true(tbucket_take(&b, 10, 5, 100, 5));
	assert_false(tbucket_take(&b, 10, 5, 100, 1));
}

static void
test_all_or_nothing(void **state)
{
	struct tbucket b = { 0 };

	(void)state;
	assert_true(tbucket_take(&b, 1, 4, 0, 3));
	assert_false(tbucket_take(&b, 1, 4, 0, 2));	/* 1 left: none taken */
	assert_true(tbucket_take(&b, 1, 4, 0, 1));
}

static void
test_clock_back(void **state)
{
	struct tbucket b = { 0 };

	(void)state;
	assert_true(tbucket_take(&b, 1, 2, 10, 2));
	/* a step back does not refill, nor does the way back to 10 */
	assert_false(tbucket_take(&b, 1, 2, 5, 1));
	assert_false(tbucket_take(&b, 1, 2, 10, 1));
	assert_true(tbucket_take(&b, 1, 2, 11, 1));
}

static void
test_no_rate_no_limit(void **state)
{
	struct tbucket b = { 0 };

	(void)state;
	for (int i = 0; i < 1000; i++)
		assert_true(tbucket_take(&b, 0, 1, 0, 1));
}

static void
test_wait(void **state)
{
	struct tbucket b = { 0 };

	(void)state;
	assert_true(tbucket_take(&b, 4, 8, 0, 8));
	assert_true(tbucket_wait(&b, 4, 2) == 0.5);
	assert_true(tbucket_take(&b, 4, 8, 0.5, 2));
	assert_true(tbucket_take(&b, 4, 8, 1, 1));
	assert_true(tbucket_wait(&b, 4, 1) == 0);	/* 1 left */
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_full_then_empty),
		cmocka_unit_test(test_refill_rate_and_depth),
		cmocka_unit_test(test_all_or_nothing),
		cmocka_unit_test(test_clock_back),
		cmocka_unit_test(test_no_rate_no_limit),
		cmocka_unit_test(test_wait),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
