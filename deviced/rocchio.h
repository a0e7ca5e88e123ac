/*
 * rocchio: a cold user's user row in closed form from their own local
 * samples (issue 17, cold users). The cloud has no trained row for a user
 * whose samples never reached the pool; Rocchio's relevance feedback gives
 * one without training: the unknown-user row plus gamma times the unit
 * direction from the mean item embedding of the user's no-clicks to that
 * of their clicks, divided by the item table's RMS row norm, so the FM
 * user-item dot moves each item's logit by about gamma * cos(direction,
 * item). The rest of the personal rows (m, bias) stay the unknown-user
 * rows.
 *
 * gamma comes from a grid (0 included) by forward-chaining
 * cross-validation over the local samples: block f is scored with the
 * direction of blocks 0..f-1 only, and gamma is the one with the most net
 * held-out (click, no-click) pairs ordered right against gamma 0 (ties:
 * the smaller; per-user AUC moves only through those pairs). Fewer than
 * min_n samples, or no positive net, keeps gamma 0.
 */
#ifndef DEVICED_ROCCHIO_H
#define DEVICED_ROCCHIO_H

#include <stddef.h>
#include <stdint.h>

struct ctr;
struct dataset;

#define ROCCHIO_NG	6	/* the gamma grid, rocchio_gamma[] */
extern const double rocchio_gamma[ROCCHIO_NG];

/*
 * Net held-out pairs of ds[ho[0..nh)] (click, no-click) that scores z
 * order right, less those z0 orders right (ties count half): the
 * forward-chaining CV's measure here and in knnrows.c.
 */
double	rocchio_net_pairs(const struct dataset *ds, const uint32_t *ho,
	    size_t nh, const float *z, const float *z0);

/*
 * Forward-chaining CV over ds[idx[0..n)] in K blocks (at least 2, at most
 * n): for each block after the first, prep(arg, lo) prepares from the
 * samples before it (0: the block is skipped), then the block is scored
 * with user's rows o and with each candidate g = 1..ng-1 that cand writes
 * (ENC_MAX_OUT floats) from o; sum[g] adds the net pairs candidate g
 * orders right against o. Returns the g of the largest sum (0: none above
 * o's). user's rows in c are left at the last candidate's.
 */
typedef int	rocchio_prep_fn(void *arg, size_t lo);
typedef void	rocchio_cand_fn(void *arg, int g, const float *o, float *r);
int	rocchio_fcv(struct ctr *c, const struct dataset *ds,
	    const uint32_t *idx, size_t n, uint32_t user, int K, int ng,
	    const float *o, rocchio_prep_fn *prep, rocchio_cand_fn *cand,
	    void *arg, double *sum);

/*
 * Direction of ds[idx[0..n)] (clicks' mean item embedding minus
 * no-clicks', either mean 0 when it has no sample) as a unit vector over
 * the item table's RMS row norm, oriented by the sign of the FM
 * user-item weight, into dir (dim floats); 0 vector when it is zero.
 */
void	rocchio_dir(const struct ctr *c, const struct dataset *ds,
	    const uint32_t *idx, size_t n, float *dir);

/*
 * Personal rows (encoder.h's layout, ENC_MAX_OUT floats) for user from ds[idx[0..n)] under c:
 * the unknown-user rows, user row + gamma * dir, gamma chosen as above
 * (folds K, at least min_n samples). c's rows of user are used as scratch
 * and left at the result. Returns the chosen gamma (0: the unknown-user
 * rows). *net (may be NULL): the chosen gamma's net held-out pairs.
 */
double	rocchio_rows(struct ctr *c, const struct dataset *ds,
	    const uint32_t *idx, size_t n, uint32_t user, int K, size_t min_n,
	    float *rows, double *net);

#endif
