/*
 * delay: a simulated spread of device speeds and availability for
 * experiments with round-free acceptance (scripts/eval-async.sh). With
 * learn.delay-ms > 0 a device holds each finished patch for a delay drawn
 * from learn.delay-dist before it uploads it, as a slower or intermittently
 * available phone would; the draw is seeded by learn.delay-seed, the device
 * id and the model version the patch was trained on, so a run is
 * reproducible and every device has its own sequence.
 */
#ifndef DEVICED_DELAY_H
#define DEVICED_DELAY_H

#include <stdint.h>

/* learn.delay-dist's order */
enum { DELAY_FIXED = 0, DELAY_UNIFORM, DELAY_EXP, DELAY_LOGNORMAL };

/* The cap of any draw, in multiples of learn.delay-ms (bounds the wait). */
#define DELAY_CAP	50

/*
 * The delay in ms for device id's patch on version (0 when ms <= 0):
 * fixed ms; uniform on [0, 2 ms); exponential with mean ms; log-normal
 * with median ms and sigma 1 (a heavy straggler tail); capped at
 * DELAY_CAP * ms.
 */
uint64_t	delay_draw(int dist, int64_t ms, uint64_t seed, const char *id,
		    uint64_t version);

#endif
