/* appoint: see appoint.h. */
#include <math.h>
#include <stdlib.h>

#include "cloudd/appoint.h"
#include "shared/xmalloc.h"

void
appoint_init(struct appoint *a)
{
	a->e = xcalloc(APPOINT_SLOTS, sizeof(*a->e));
	a->horizon = a->rebooked = 0;
	a->booked = a->kept = a->early = a->nospace = 0;
}

void
appoint_free(struct appoint *a)
{
	free(a->e);
	a->e = NULL;
}

static int
live(const struct appoint_e *e, double now)
{
	return e->who != 0 && e->at + APPOINT_GRACE_MS > now;
}

/* who's entry, or NULL. */
static struct appoint_e *
find(const struct appoint *a, uint64_t who, double now)
{
	for (uint32_t i = 0; i < APPOINT_PROBE; i++) {
		struct appoint_e *e = &a->e[(who + i) & (APPOINT_SLOTS - 1)];
		if (e->who == who && live(e, now))
			return e;
	}
	return NULL;
}

enum appoint_verdict
appoint_check(struct appoint *a, uint64_t who, double now,
    uint32_t *wait_ms)
{
	const struct appoint_e *e;

	if (a->e == NULL || who == 0)
		return APPOINT_NONE;
	if ((e = find(a, who, now)) != NULL) {
		if (e->at <= now)
			return APPOINT_DUE;
		a->early++;
		*wait_ms = (uint32_t)ceil(e->at - now);
		return APPOINT_EARLY;
	}
	return a->horizon > now ? APPOINT_QUEUE : APPOINT_NONE;
}

/* Books who at t (or the cap); returns the wait. */
static uint32_t
book_at(struct appoint *a, uint64_t who, double now, double t)
{
	struct appoint_e *e;

	if (t > now + APPOINT_MAX_MS)
		t = now + APPOINT_MAX_MS;	/* comes back and is re-booked */
	if (t > a->horizon)
		a->horizon = t;
	a->booked++;
	if (a->e != NULL && who != 0) {
		if ((e = find(a, who, now)) == NULL)
			for (uint32_t i = 0; i < APPOINT_PROBE && e == NULL;
			    i++) {
				e = &a->e[(who + i) & (APPOINT_SLOTS - 1)];
				if (live(e, now))
					e = NULL;
			}
		if (e != NULL) {
			e->who = who;
			e->at = t;
		} else
			a->nospace++;
	}
	return t - now < 1 ? 1 : (uint32_t)ceil(t - now);
}

uint32_t
appoint_book(struct appoint *a, uint64_t who, double now, uint32_t queued,
    double gap_ms)
{
	double t;

	if (!(gap_ms >= 1))
		gap_ms = 1;
	t = now + queued * gap_ms;
	if (a->horizon + gap_ms > t)
		t = a->horizon + gap_ms;
	return book_at(a, who, now, t);
}

uint32_t
appoint_rebook(struct appoint *a, uint64_t who, double now, uint32_t queued,
    double gap_ms)
{
	if (!(gap_ms >= 1))
		gap_ms = 1;
	double t = now + (queued > 0 ? queued : 1) * gap_ms;

	/* apart from the others re-booked, or they collide again */
	if (a->rebooked + gap_ms > t)
		t = a->rebooked + gap_ms;
	a->rebooked = t;
	return book_at(a, who, now, t);
}

void
appoint_used(struct appoint *a, uint64_t who)
{
	struct appoint_e *e;

	if (a->e != NULL && who != 0 && (e = find(a, who, 0)) != NULL) {
		e->who = 0;
		a->kept++;
	}
}

uint32_t
appoint_held(const struct appoint *a, double now)
{
	uint32_t n = 0;

	for (uint32_t i = 0; a->e != NULL && i < APPOINT_SLOTS; i++)
		n += live(&a->e[i], now);
	return n;
}
