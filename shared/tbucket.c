/* tbucket: see tbucket.h. */
#include "shared/tbucket.h"

int
tbucket_take(struct tbucket *b, double rate, double depth, double now,
    double n)
{
	if (rate <= 0)
		return 1;
	if (!b->primed) {
		b->tokens = depth;
		b->t = now;
		b->primed = 1;
	} else if (now > b->t) {
		b->tokens += (now - b->t) * rate;
		b->t = now;
	}
	if (b->tokens > depth)
		b->tokens = depth;
	if (b->tokens < n)
		return 0;
	b->tokens -= n;
	return 1;
}

double
tbucket_wait(const struct tbucket *b, double rate, double n)
{
	return b->tokens >= n ? 0 : (n - b->tokens) / rate;
}
