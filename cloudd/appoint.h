/*
 * appoint: admission by appointment for a queue served at a measured rate
 * (issue 14; CoDA retrievals). A request refused because the queue is
 * full is told to come back when its turn will come, not after a fixed
 * hint: the first time after the queue drains (queued requests × the gap
 * between completions) that no earlier refusal was given, so the refused
 * come back spread at the rate the cloud serves them. The device keeps
 * its appointment: when it comes back at or after its time it goes in
 * ahead of devices without one (which, while appointments are
 * outstanding, are given the next free time instead), so a refused device
 * is normally refused once, not again and again by newcomers (if every
 * place is taken, retrieve_rpc.c lets it wait in a bounded lobby rather
 * than refuse it again). A device
 * early for its appointment is told the time left; one that never comes
 * back only leaves a gap. The table is bounded (APPOINT_SLOTS entries,
 * APPOINT_PROBE places tried per device): a device that finds no place
 * still gets the time, just no priority. Pure bookkeeping on the caller's
 * clock (milliseconds), single-threaded; unit-tested in test_appoint.
 */
#ifndef CLOUDD_APPOINT_H
#define CLOUDD_APPOINT_H

#include <stdint.h>

#define APPOINT_SLOTS	32768	/* power of two; 16 bytes each */
#define APPOINT_PROBE	8
#define APPOINT_GRACE_MS 60000	/* kept this long after its time */
#define APPOINT_MAX_MS	30000	/* no appointment further ahead */

struct appoint {
	struct appoint_e {
		uint64_t	 who;	/* the device's keyed hash; 0 = none */
		double		 at;	/* its time, caller's clock (ms) */
	}		*e;
	double		 horizon;	/* the latest time given */
	double		 rebooked;	/* the latest given by appoint_rebook */
	uint64_t	 booked, kept, early, nospace;	/* counters */
};

enum appoint_verdict {
	APPOINT_NONE,	/* no appointment: usual admission */
	APPOINT_DUE,	/* its time has come: admit ahead of others */
	APPOINT_EARLY,	/* too early: *wait_ms says how long still */
	APPOINT_QUEUE,	/* none, but others hold earlier ones: book */
};

void	appoint_init(struct appoint *a);
void	appoint_free(struct appoint *a);
/*
 * What who (a non-zero keyed hash of the device id) may do at now: see
 * the verdicts. *wait_ms is set for APPOINT_EARLY.
 */
enum appoint_verdict appoint_check(struct appoint *a, uint64_t who,
	    double now, uint32_t *wait_ms);
/*
 * Books who (again) after a refusal: the first time >= now + queued ×
 * gap_ms (the queue drained) and > every time given before, spaced
 * gap_ms. Returns the wait in ms, 1..APPOINT_MAX_MS.
 */
uint32_t appoint_book(struct appoint *a, uint64_t who, double now,
	    uint32_t queued, double gap_ms);
/*
 * Books who, whose appointment was due but found the queue full, again
 * as soon as the queue has room (now + queued × gap_ms), not behind the
 * appointments given since: it keeps its place in the order (one gap
 * after the last device re-booked so).
 */
uint32_t appoint_rebook(struct appoint *a, uint64_t who, double now,
	    uint32_t queued, double gap_ms);
/* who was admitted: its appointment is used up. */
void	appoint_used(struct appoint *a, uint64_t who);
/* Appointments outstanding at now (tests, the exit line). */
uint32_t appoint_held(const struct appoint *a, double now);

#endif
