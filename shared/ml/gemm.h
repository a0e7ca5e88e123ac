/*
 * gemm: C = op(A) op(B) + beta C in float32, row-major, with cblas_sgemm's
 * meaning of M, N, K, lda, ldb, ldc and alpha fixed at 1.
 *
 * Why not cblas_sgemm alone: a device's learning job multiplies batches
 * of 1 to 32 samples (learn.batch) by layers of 16 to 133 columns, and
 * there OpenBLAS (Debian 12's, Haswell kernels) spends as long packing
 * its panels as multiplying. Products whose batch dimension is at most
 * GEMM_SMALL go to AVX2/FMA kernels that read both operands in place
 * (x86-64 with AVX2 and FMA, checked at run time); everything else,
 * other CPUs and the cloud's batches of 256, goes to cblas_sgemm.
 * tests/unit/test_kern.c (test_gemm_shapes) checks every path against a
 * double-precision loop; scripts/bench-results.md (Benchmarks, small products)
 * has the timings behind GEMM_SMALL.
 *
 * Threads: any; no state.
 */
#ifndef SHARED_ML_GEMM_H
#define SHARED_ML_GEMM_H

/* The largest batch dimension sent to the in-place kernels. */
#define GEMM_SMALL	32

/*
 * C (M,N) = op(A) (M,K) op(B) (K,N) + beta C, op(X) = X or X^T as ta/tb
 * are 0 or 1. A is (M,lda) or, transposed, (K,lda); B is (K,ldb) or
 * (N,ldb). beta 0 ignores C's old contents (it may be uninitialized).
 */
void	gemm_f32(int ta, int tb, int M, int N, int K, const float *A,
	    int lda, const float *B, int ldb, float beta, float *C, int ldc);

/* 1 if gemm_f32(ta, tb, M, N, K, ...) with this beta takes the in-place
   kernels on this CPU (for the tests). */
int	gemm_small_path(int ta, int tb, int M, int N, int K, float beta);

#endif /* SHARED_ML_GEMM_H */
