/*
 * Unit tests for cloudd/appoint.c: refusals are booked one gap apart after
 * the queue drains; a device early for its appointment is told the time
 * left, one whose time has come is due; others queue behind outstanding
 * appointments and enter freely once the last has passed; appointments
 * are capped, expire, are used up once; a full probe window still gives
 * the time (no place kept).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "cloudd/appoint.h"

static void
test_spacing(void **state)
{
	struct appoint a;

	(void)state;
	appoint_init(&a);
	/* 4 queued, 10 ms between completions: the queue drains at 40 */
	assert_int_equal(appoint_book(&a, 11, 0, 4, 10), 40);
	assert_int_equal(appoint_book(&a, 12, 0, 4, 10), 50);
	assert_int_equal(appoint_book(&a, 13, 5, 4, 10), 55);	/* at 60 */
	/* a longer queue now: after it, not merely after the last */
	assert_int_equal(appoint_book(&a, 14, 10, 20, 10), 200);
	assert_int_equal(a.booked, 4);
	assert_int_equal(appoint_held(&a, 10), 4);
	appoint_free(&a);
}

static void
test_verdicts(void **state)
{
	struct appoint a;
	uint32_t wait = 0;

	(void)state;
	appoint_init(&a);
	assert_int_equal(appoint_check(&a, 11, 0, &wait), APPOINT_NONE);
	appoint_book(&a, 11, 0, 4, 10);		/* at 40 */
	appoint_book(&a, 12, 0, 4, 10);		/* at 50 */
	assert_int_equal(appoint_check(&a, 11, 15, &wait), APPOINT_EARLY);
	assert_int_equal(wait, 25);
	assert_int_equal(a.early, 1);
	assert_int_equal(appoint_check(&a, 11, 40, &wait), APPOINT_DUE);
	/* a newcomer waits behind the appointments still outstanding */
	assert_int_equal(appoint_check(&a, 99, 45, &wait), APPOINT_QUEUE);
	appoint_used(&a, 11);
	assert_int_equal(a.kept, 1);
	/* used up: 11 is now like any other */
	assert_int_equal(appoint_check(&a, 11, 45, &wait), APPOINT_QUEUE);
	/* past the last appointment given: free entry again */
	assert_int_equal(appoint_check(&a, 99, 51, &wait), APPOINT_NONE);
	/* 12 never came: still due within the grace, then forgotten */
	assert_int_equal(appoint_check(&a, 12, 51, &wait), APPOINT_DUE);
	assert_int_equal(appoint_check(&a, 12, 50 + APPOINT_GRACE_MS + 1,
	    &wait), APPOINT_NONE);
	appoint_free(&a);
}

static void
test_rebook_moves_back(void **state)
{
	struct appoint a;
	uint32_t wait = 0;

	(void)state;
	appoint_init(&a);
	appoint_book(&a, 11, 0, 0, 10);		/* at 10 */
	appoint_book(&a, 12, 0, 0, 10);		/* at 20 */
	/* 11 came at its time and found the queue full: behind 12 now */
	assert_int_equal(appoint_book(&a, 11, 10, 1, 10), 20);	/* at 30 */
	assert_int_equal(appoint_held(&a, 10), 2);		/* one entry */
	assert_int_equal(appoint_check(&a, 11, 25, &wait), APPOINT_EARLY);
	assert_int_equal(wait, 5);
	/* due, queue full (3 queued): it keeps its place, as soon as
	 * the queue has room, not behind the horizon (30) */
	assert_int_equal(appoint_rebook(&a, 12, 20, 3, 2), 6);	/* at 26 */
	assert_int_equal(appoint_book(&a, 13, 20, 0, 10), 20);	/* at 40 */
	assert_int_equal(appoint_check(&a, 12, 26, &wait), APPOINT_DUE);
	/* another due one re-booked at the same moment: a gap later */
	assert_int_equal(appoint_rebook(&a, 13, 20, 3, 2), 8);	/* at 28 */
	appoint_free(&a);
}

static void
test_cap(void **state)
{
	struct appoint a;

	(void)state;
	appoint_init(&a);
	assert_int_equal(appoint_book(&a, 11, 0, 1000000, 10),
	    APPOINT_MAX_MS);
	/* at least 1 ms, even with nothing queued and a gap below 1 */
	appoint_free(&a);
	appoint_init(&a);
	assert_int_equal(appoint_book(&a, 11, 0, 0, 0.001), 1);
	appoint_free(&a);
}

static void
test_full_window(void **state)
{
	struct appoint a;
	uint32_t wait = 0;
	uint64_t w;

	(void)state;
	appoint_init(&a);
	/* ids whose hashes share a probe window: APPOINT_PROBE places */
	for (w = 0; w < APPOINT_PROBE; w++)
		appoint_book(&a, 5 + w * APPOINT_SLOTS, 0, 0, 10);
	assert_int_equal(a.nospace, 0);
	w = 5 + (uint64_t)APPOINT_PROBE * APPOINT_SLOTS;
	assert_int_equal(appoint_book(&a, w, 0, 0, 10), 10 * (APPOINT_PROBE +
	    1));
	assert_int_equal(a.nospace, 1);
	/* no place kept: it queues like a newcomer, never due */
	assert_int_equal(appoint_check(&a, w, 10 * (APPOINT_PROBE + 1), &wait),
	    APPOINT_NONE);
	assert_int_equal(appoint_held(&a, 0), APPOINT_PROBE);
	appoint_free(&a);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_spacing),
		cmocka_unit_test(test_verdicts),
		cmocka_unit_test(test_rebook_moves_back),
		cmocka_unit_test(test_cap),
		cmocka_unit_test(test_full_window),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
