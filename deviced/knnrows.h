/*
 * knnrows: a cold user's personal rows borrowed from the warm users the
 * cloud trained (issue 17, cold users; CoDA's "similar users" applied to
 * rows instead of samples). The device holds every pool user's rows in
 * the downloaded model. The neighbours are the k trained users whose user
 * row has the largest cosine with the cold user's click direction
 * (rocchio.h: mean item embedding of their clicks minus that of their
 * no-clicks, from their local samples); their personal rows (user
 * embedding, m, bias) are averaged, and the start is the unknown-user
 * rows moved by lambda towards that average.
 *
 * lambda comes from a grid (0 included) by forward-chaining
 * cross-validation over the local samples, as in rocchio.h: block f is
 * scored with neighbours found from blocks 0..f-1 only, by the net
 * held-out (click, no-click) pairs ordered right against lambda 0 (ties:
 * the smaller). Fewer than min_n samples, or no positive net, keeps
 * lambda 0.
 */
#ifndef DEVICED_KNNROWS_H
#define DEVICED_KNNROWS_H

#include <stddef.h>
#include <stdint.h>

struct ctr;
struct dataset;

#define KNNROWS_K	20	/* neighbours averaged */
#define KNNROWS_NL	4	/* the lambda grid, knnrows_lambda[] */
extern const double knnrows_lambda[KNNROWS_NL];

/*
 * The average personal rows (encoder.h's layout, ENC_MAX_OUT floats) of
 * the at most k trained users (m or bias row not zero, not user) whose
 * user rows have the largest cosine with dir (dim floats); returns how
 * many were averaged (0: avg untouched). Always 0 on a device's slice
 * (protocol 7), which holds no other user's rows.
 */
int	knnrows_avg(const struct ctr *c, const float *dir, uint32_t user,
	    int k, float *avg);

/*
 * Personal rows for user from ds[idx[0..n)] under c, lambda chosen as
 * above (folds K, at least min_n samples); c's rows of user are used as
 * scratch and left at the result. Returns lambda (0: the unknown-user
 * rows); *net (may be NULL): its net held-out pairs.
 */
double	knnrows_rows(struct ctr *c, const struct dataset *ds,
	    const uint32_t *idx, size_t n, uint32_t user, int K, size_t min_n,
	    float *rows, double *net);

#endif
