/*
 * ofa_duet: the DUET-style generator's hidden layer (see ofa_duet.h); the
 * per-block output layer is the mapper's gw, gb in ofa.c.
 */
#include <stddef.h>

#include "shared/ml/kern.h"
#include "shared/ml/ofa_duet.h"

void
ofa_duet_forward(const float *wh, const float *bh, const float *z, int B,
    int Z, int Hg, float *u)
{
	linear_forward(u, z, wh, bh, B, Z, Hg);
	relu_forward(u, u, (size_t)B * Hg);
}

void
ofa_duet_backward(float *gwh, float *gbh, float *du, const float *u,
    const float *z, const float *wh, int B, int Z, int Hg)
{
	for (size_t i = 0; i < (size_t)B * Hg; i++)
		if (!(u[i] > 0.0f))
			du[i] = 0.0f;
	linear_backward(NULL, gwh, gbh, du, z, wh, B, Z, Hg);
}

double
ofa_duet_flops(int Z, int Hg)
{
	return 2.0 * Z * Hg + 2.0 * Hg;
}
