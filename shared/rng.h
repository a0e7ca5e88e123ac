/*
 * rng: a small deterministic PRNG (xoshiro128+ seeded by splitmix64), so that
 * training, splits and sampling are reproducible for a given seed. Each
 * thread owns its own struct rng.
 */
#ifndef SHARED_RNG_H
#define SHARED_RNG_H

#include <math.h>
#include <stdint.h>

struct rng {
	uint64_t s[2];
};

static inline uint64_t
rng_splitmix(uint64_t *x)
{
	uint64_t z = (*x += 0x9e3779b97f4a7c15ULL);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

static inline void
rng_seed(struct rng *r, uint64_t seed)
{
	r->s[0] = rng_splitmix(&seed);
	r->s[1] = rng_splitmix(&seed);
	if (r->s[0] == 0 && r->s[1] == 0)
		r->s[0] = 1;
}

/* xoroshiro128+ */
static inline uint64_t
rng_u64(struct rng *r)
{
	uint64_t s0 = r->s[0], s1 = r->s[1], res = s0 + s1;
	s1 ^= s0;
	r->s[0] = ((s0 << 24) | (s0 >> 40)) ^ s1 ^ (s1 << 16);
	r->s[1] = (s1 << 37) | (s1 >> 27);
	return res;
}

/* Uniform in [0, 1). */
static inline double
rng_unif(struct rng *r)
{
	return (rng_u64(r) >> 11) * (1.0 / 9007199254740992.0);
}

/* Uniform integer in [0, n); n > 0. */
static inline uint32_t
rng_below(struct rng *r, uint32_t n)
{
	return (uint32_t)(((rng_u64(r) >> 32) * (uint64_t)n) >> 32);
}

/* Standard normal (Box-Muller). */
static inline double
rng_normal(struct rng *r)
{
	double u1 = rng_unif(r), u2 = rng_unif(r);
	if (u1 < 1e-300)
		u1 = 1e-300;
	return sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2);
}

#endif
