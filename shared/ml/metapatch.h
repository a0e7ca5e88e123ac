/*
 * metapatch: MetaPatch's math (Yao et al. 2021, DCCL): a hidden layer's
 * output h becomes h + U diag(m_u) V h, U and V shared by all users and
 * m_u the R-vector of the sample's user, so a device personalises the
 * model by training its own m_u (and a per-user bias) alone. The CTR model
 * (ctr.c) holds U, V and the m table as tensors and calls these kernels;
 * the device's training and guard are deviced/learn.c, the upload checks
 * cloudd/patch.c. Same contract as kern.h: flat float32 arrays, backward
 * accumulates into gradients the caller zeroed, nothing allocates.
 * Threads: any; no shared state.
 */
#ifndef SHARED_ML_METAPATCH_H
#define SHARED_ML_METAPATCH_H

#include <stdint.h>

#include "shared/ml/kern.h"	/* KERN_RANK_MAX */

/*
 * out = inp + U diag(m_b) V inp, row-wise, with U, V shared and m_b the row
 * mtab[mid[b]] (the m vector of the user of sample b). The plain names use
 * gemm_f32 on blocks of rows, the *_naive ones are reference loops with
 * identical signatures. R <= KERN_RANK_MAX.
 *
 * out  (B,H)   may not alias inp
 * t    (B,R)   saved V inp, needed by the backward
 * inp  (B,H)
 * U    (H,R)
 * V    (R,H)
 * mtab (M,R)
 * mid  (B)     each < M
 */
void	metapatch_forward(float *out, float *t, const float *inp,
	    const float *U, const float *V, const float *mtab,
	    const uint32_t *mid, int B, int H, int R);
void	metapatch_forward_naive(float *out, float *t, const float *inp,
	    const float *U, const float *V, const float *mtab,
	    const uint32_t *mid, int B, int H, int R);
/*
 * dinp (B,H) += dout + V^T diag(m) U^T dout    may be NULL
 * dU   (H,R) += dout^T (m * t)                 may be NULL
 * dV   (R,H) += (m * U^T dout)^T inp           may be NULL
 * dm   (M,R) += (U^T dout) * t, rows by mid    may be NULL
 * dout (B,H)
 */
void	metapatch_backward(float *dinp, float *dU, float *dV, float *dm,
	    const float *dout, const float *inp, const float *t,
	    const float *U, const float *V, const float *mtab,
	    const uint32_t *mid, int B, int H, int R);
void	metapatch_backward_naive(float *dinp, float *dU, float *dV,
	    float *dm, const float *dout, const float *inp, const float *t,
	    const float *U, const float *V, const float *mtab,
	    const uint32_t *mid, int B, int H, int R);

#endif
