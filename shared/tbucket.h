/*
 * tbucket: a token bucket. It refills at rate tokens per unit of time up to
 * depth, starts full on first use, and lends nothing: a take of n tokens
 * either finds them all or takes none. The caller supplies the clock (in
 * any unit, rate per that unit), so one bucket type serves the cloud's
 * per-device request limit, its unknown-id limit and its download pacing.
 * A clock that steps back refills nothing. Not thread-safe.
 */
#ifndef SHARED_TBUCKET_H
#define SHARED_TBUCKET_H

struct tbucket {
	double	 tokens;
	double	 t;		/* clock at the last refill */
	int	 primed;	/* 0: full on first use (zeroed = fresh) */
};

/*
 * 1 when n tokens were there and are taken, else 0 (nothing taken).
 * rate <= 0 means no limit: always 1.
 */
int	tbucket_take(struct tbucket *b, double rate, double depth, double now,
	    double n);

/* Time until n tokens are in b (0 when they are now); rate > 0. */
double	tbucket_wait(const struct tbucket *b, double rate, double n);

#endif
