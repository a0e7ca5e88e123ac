/*
 * kern: numeric kernels for the CTR model, llm.c style. One forward and one
 * backward function per layer, plain float32 arrays, shapes in comments.
 * Every *_backward ACCUMULATES (+=) into its gradient outputs; the caller
 * zeroes them. Any gradient output documented "may be NULL" is skipped, so
 * frozen parameters cost nothing.
 *
 * Dimension legend:
 *   B  batch size
 *   D  embedding dimension
 *   V  rows of an embedding table
 *   N  total ids in a bag batch (off[B])
 *   C  input channels of a linear layer
 *   O  output channels of a linear layer
 *   H  hidden width (MetaPatch layer)
 *   R  MetaPatch rank
 *   M  rows of the MetaPatch m table (one per user)
 *
 * Ownership: kernels allocate nothing and keep no state, except struct
 * kern_rows, which the caller owns. Threads: any thread; two calls may run
 * at once if they write disjoint memory.
 */
#ifndef SHARED_KERN_H
#define SHARED_KERN_H

#include <math.h>
#include <stddef.h>
#include <stdint.h>

#define KERN_RANK_MAX	64	/* bound on R (stack scratch in metapatch) */

/* ---- embedding lookup ---------------------------------------------------- */

/*
 * out (B,ldo)  row b, columns [0,D) = emb[ids[b]]; ldo >= D lets the result
 *              land inside a wider concatenated input
 * ids (B)      row ids, each < V (caller maps out-of-range ids)
 * emb (V,D)
 */
void	embed_forward(float *out, const uint32_t *ids, const float *emb,
	    int B, int D, int ldo);
/* demb (V,D) += scatter of dout (B,ldo) columns [0,D) by ids (B). */
void	embed_backward(float *demb, const float *dout, const uint32_t *ids,
	    int B, int D, int ldo);

/*
 * Mean-pooled embedding bag (CSR batch). Row b pools ids[off[b]..off[b+1]);
 * an empty bag gives a zero vector.
 * out (B,ldo)  columns [0,D) written
 * ids (N)      each < V
 * off (B+1)    off[0] = 0, non-decreasing, off[B] = N
 * emb (V,D)
 */
void	embed_bag_forward(float *out, const uint32_t *ids,
	    const uint32_t *off, const float *emb, int B, int D, int ldo);
/* demb (V,D) += dout (B,ldo) / bag size, scattered to each id of the bag. */
void	embed_bag_backward(float *demb, const float *dout,
	    const uint32_t *ids, const uint32_t *off, int B, int D, int ldo);

/*
 * Sparse-row bookkeeping for an embedding table of V rows: the set of rows
 * touched since the last clear, so that zeroing and optimizer steps visit
 * only those rows. mark (V) and list (V) are caller-owned, mark zeroed.
 */
struct kern_rows {
	uint8_t		*mark;	/* (V) 1 if the row is in list */
	uint32_t	*list;	/* (V) first n entries are the touched rows */
	uint32_t	 n;
};

/* Adds ids (cnt) to the set; each id < V. */
void	kern_rows_add(struct kern_rows *r, const uint32_t *ids, size_t cnt);
/* Zeroes the touched rows of g (V,D), if g != NULL, and empties the set. */
void	kern_rows_clear(struct kern_rows *r, float *g, int D);

/* 1 if every one of x (n) is finite (no NaN, no infinity): the check of
   received tensors, logits and retrieval vectors. */
int	kern_finite(const float *x, size_t n);

/* ---- linear ----------------------------------------------------------------
 * out = inp W^T + bias. The *_naive versions are the reference loops, the
 * plain names call gemm_f32 (gemm.h); signatures are identical.
 *
 * out  (B,O)
 * inp  (B,C)
 * w    (O,C)
 * bias (O), may be NULL
 */
void	linear_forward(float *out, const float *inp, const float *w,
	    const float *bias, int B, int C, int O);
void	linear_forward_naive(float *out, const float *inp, const float *w,
	    const float *bias, int B, int C, int O);
/*
 * dinp  (B,C) += dout W        may be NULL
 * dw    (O,C) += dout^T inp    may be NULL
 * dbias (O)   += sum_b dout    may be NULL
 * dout  (B,O)
 */
void	linear_backward(float *dinp, float *dw, float *dbias,
	    const float *dout, const float *inp, const float *w,
	    int B, int C, int O);
void	linear_backward_naive(float *dinp, float *dw, float *dbias,
	    const float *dout, const float *inp, const float *w,
	    int B, int C, int O);

/* ---- relu ---------------------------------------------------------------- */

/* out (N) = max(inp (N), 0); out may alias inp. */
void	relu_forward(float *out, const float *inp, size_t N);
/* dinp (N) += dout (N) where out (N) > 0. */
void	relu_backward(float *dinp, const float *dout, const float *out,
	    size_t N);

/* ---- fused BCE with logits ----------------------------------------------
 * z_b = x_b + off_b,   l_b = w_b (max(z,0) - z y + log1p(exp(-|z|)))
 * loss = sum_b l_b / B   (mean over the batch, not over the weights)
 *
 * x      (B)  logits
 * y      (B)  targets in [0,1] (soft labels allowed)
 * w      (B)  per-sample weights, NULL = all 1
 * off    (B)  per-sample fixed logit offsets, NULL = all 0
 * losses (B)  per-sample l_b, may be NULL
 * Returns the mean loss, accumulated in double.
 */
double	bce_logits_forward(float *losses, const float *x, const float *y,
	    const float *w, const float *off, int B);
/* One sample's l = max(z,0) - z y + log1p(exp(-|z|)), in double. */
static inline double
bce_logit(double z, double y)
{
	/* Stable form: never exponentiates a positive number. */
	return (z > 0.0 ? z : 0.0) - z * y + log1p(exp(-fabs(z)));
}
/* dx (B) += w_b (sigmoid(z_b) - y_b) / B. */
void	bce_logits_backward(float *dx, const float *x, const float *y,
	    const float *w, const float *off, int B);

/* ---- optimizers ------------------------------------------------------------
 * Dense updates over n contiguous floats; the *_rows variants apply the same
 * update to the listed rows of a (V,D) table only (sparse / lazy).
 * SGD: w -= lr (g + wd w).
 * Adam (decoupled weight decay, AdamW): m = b1 m + (1-b1) g,
 *   v = b2 v + (1-b2) g^2, w -= lr (mhat / (sqrt(vhat) + eps) + wd w),
 *   with bias correction by the global step t >= 1.
 */
void	sgd_update(float *w, const float *g, size_t n, float lr, float wd);
void	adam_update(float *w, const float *g, float *m, float *v, size_t n,
	    float lr, float b1, float b2, float eps, float wd, long t);
void	sgd_rows(float *w, const float *g, const uint32_t *rows, uint32_t nr,
	    int D, float lr, float wd);
void	adam_rows(float *w, const float *g, float *m, float *v,
	    const uint32_t *rows, uint32_t nr, int D, float lr, float b1,
	    float b2, float eps, float wd, long t);
/*
 * adam_rows with the moments of row rows[i] at row slot[rows[i]] - 1 of m
 * and v (compact moment storage: only the rows ever stepped have one;
 * every slot[rows[i]] >= 1).
 */
void	adam_rows_slot(float *w, const float *g, float *m, float *v,
	    const uint32_t *rows, uint32_t nr, const uint32_t *slot, int D,
	    float lr, float b1, float b2, float eps, float wd, long t);

#endif
