/*
 * delay: the seeded per-device, per-version delay draw (delay.h).
 */
#include <math.h>

#include "deviced/delay.h"
#include "shared/rng.h"

uint64_t
delay_draw(int dist, int64_t ms, uint64_t seed, const char *id,
    uint64_t version)
{
	struct rng r;
	uint64_t h = 1469598103934665603ULL;	/* FNV-1a of the id */
	double x;

	if (ms <= 0)
		return 0;
	for (const unsigned char *p = (const unsigned char *)id; *p; p++)
		h = (h ^ *p) * 1099511628211ULL;
	rng_seed(&r, seed ^ h ^ (version * 0x9e3779b97f4a7c15ULL));
	switch (dist) {
	case DELAY_UNIFORM:
		x = 2 * rng_unif(&r);
		break;
	case DELAY_EXP:
		x = -log(1 - rng_unif(&r));
		break;
	case DELAY_LOGNORMAL:
		x = exp(rng_normal(&r));
		break;
	default:
		x = 1;
		break;
	}
	if (x > DELAY_CAP)
		x = DELAY_CAP;
	return (uint64_t)(x * (double)ms);
}
