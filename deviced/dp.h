/*
 * dp: differential privacy for what leaves the device (issue 6): the
 * uploaded patch and the retrieval query vectors are clipped to an L2 norm
 * and noised with the Gaussian mechanism, and the device accounts for its
 * cumulative privacy loss. Loop thread (the device's own state).
 *
 * Accountant: zero-concentrated DP (Bun & Steinke 2016). One release of a
 * vector clipped to C with noise N(0, (zC)^2 I) is rho = 1/(2 z^2)-zCDP
 * for adding or removing this user's contribution (sensitivity C); n query
 * vectors clipped and noised each are n/(2 z^2); rho adds up over
 * releases (composition). The budget is reported as (epsilon, delta)-DP
 * with epsilon = rho + 2 sqrt(rho ln(1/delta)) (Bun & Steinke, Prop. 1.3).
 * The running rho is kept in <dir>/dp.budget, so it survives restarts.
 */
#ifndef DEVICED_DP_H
#define DEVICED_DP_H

#include <stddef.h>

#include "deviced/deviced.h"

/* (epsilon, delta) of a rho-zCDP mechanism. */
double	dp_epsilon(double rho, double delta);
/* One N(0, 1) draw from libsodium's CSPRNG. */
double	dp_gauss(void);
/*
 * Clips x (n floats) to L2 norm clip and adds N(0, (z clip)^2) to each.
 * Returns the norm before clipping.
 */
double	dp_release(float *x, size_t n, double clip, double z);

/*
 * The device's patch (d->patch) before it is packed; spends budget. -1:
 * it must not be released (the budget is unknown, dp.max-epsilon would be
 * exceeded, or the spent budget could not be saved).
 */
int	dp_device_patch(struct device *d);
/* n query vectors of dim in v before they are sent; as above. */
int	dp_device_vectors(struct device *d, float *v, size_t n, int dim);
/*
 * Loads d->dp_rho from <dir>/dp.budget. Missing on a fresh device (fresh:
 * its state was just created): 0, written. Missing otherwise, or corrupt:
 * -1, and d->dp_bad refuses every DP release.
 */
int	dp_device_load(struct device *d, int fresh);

#endif
