/*
 * clock: the monotonic clock in seconds, for durations and timeouts (never
 * for timestamps that are stored or sent). Any thread.
 */
#ifndef SHARED_CLOCK_H
#define SHARED_CLOCK_H

#include <time.h>

static inline double
clock_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

#endif
