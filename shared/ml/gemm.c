/*
 * gemm: small-batch products in place, everything else through
 * cblas_sgemm (see gemm.h for the contract and why).
 *
 * DESIGN. Two register-blocked AVX2/FMA kernels cover the three shapes
 * of a layer's forward and backward pass:
 *   - axpy form, C[i,:] += sum_k a(i,k) B[k,:]: rows of B stream through
 *     while a block of 6 rows by 16 columns of C stays in 12 registers.
 *     A is read through strides, so NN (a(i,k) = A[i lda + k], the input
 *     gradient) and TN (a(i,k) = A[k lda + i], the weight gradient, K =
 *     the batch) are the same code;
 *   - dot form, C[i,j] = A[i,:] . B[j,:] (NT, the forward pass against a
 *     weight stored (out, in)): 3 rows of A by 4 rows of B in 12
 *     registers, 8 lanes of K at a time, then one horizontal reduction
 *     per block.
 * Neither packs; column and K tails use masked loads and stores, so
 * nothing outside the operands is read or written. Summation order
 * differs from OpenBLAS's, so results agree to rounding, not bits.
 * The thresholds in small_ok are where these kernels stopped beating
 * OpenBLAS 0.3.21 on this project's shapes (scripts/bench-results.md).
 */
#include <stddef.h>
#include <string.h>

#include <cblas.h>
#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#define GEMM_AVX2	1
#endif

#include "shared/ml/gemm.h"

/* The dot form loses to OpenBLAS on short rows once the batch grows. */
#define DOT_MIN_K	32
#define DOT_ANY_K_M	8

static int
small_shape(int ta, int tb, int M, int N, int K, float beta)
{
	if (M < 1 || N < 1 || K < 1 || (beta != 0.0f && beta != 1.0f))
		return 0;
	if (!ta && tb)
		return M <= GEMM_SMALL && (K >= DOT_MIN_K || M <= DOT_ANY_K_M);
	if (!ta && !tb)
		return M <= GEMM_SMALL;
	if (ta && !tb)
		return K <= GEMM_SMALL;
	return 0;
}

#ifdef GEMM_AVX2

#define AVX2	__attribute__((target("avx2,fma")))
#define INLINE	static inline __attribute__((always_inline))

static int
have_avx2(void)
{
	return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
}

/* lanes(n): a mask of the first n of 8 lanes (n clamped to 0..8). */
static const int lane_tab[16] = { -1, -1, -1, -1, -1, -1, -1, -1,
    0, 0, 0, 0, 0, 0, 0, 0 };

AVX2 INLINE __m256i
lanes(int n)
{
	n = n < 0 ? 0 : n > 8 ? 8 : n;
	return _mm256_loadu_si256((const __m256i *)(lane_tab + 8 - n));
}

/*
 * Axpy form on mr (1..6) rows of C: C[r,:] = beta C[r,:] +
 * sum_k A[r rsa + k csa] B[k ldb + :], 16 columns at a time.
 */
AVX2 INLINE void
axpy_rows(const int mr, int N, int K, const float *A, size_t rsa,
    size_t csa, const float *B, size_t ldb, int beta, float *C, size_t ldc)
{
	for (int j = 0; j < N; j += 16) {
		__m256 acc[6][2], b0, b1;
		int nl = N - j;

		if (nl >= 16) {
			_Pragma("GCC unroll 6")
			for (int r = 0; r < mr; r++) {
				const float *c = C + (size_t)r * ldc + j;
				acc[r][0] = beta ? _mm256_loadu_ps(c) :
				    _mm256_setzero_ps();
				acc[r][1] = beta ? _mm256_loadu_ps(c + 8) :
				    _mm256_setzero_ps();
			}
			for (int k = 0; k < K; k++) {
				const float *b = B + (size_t)k * ldb + j;
				b0 = _mm256_loadu_ps(b);
				b1 = _mm256_loadu_ps(b + 8);
				_Pragma("GCC unroll 6")
				for (int r = 0; r < mr; r++) {
					__m256 a = _mm256_broadcast_ss(A +
					    (size_t)r * rsa + (size_t)k * csa);
					acc[r][0] = _mm256_fmadd_ps(a, b0,
					    acc[r][0]);
					acc[r][1] = _mm256_fmadd_ps(a, b1,
					    acc[r][1]);
				}
			}
			_Pragma("GCC unroll 6")
			for (int r = 0; r < mr; r++) {
				float *c = C + (size_t)r * ldc + j;
				_mm256_storeu_ps(c, acc[r][0]);
				_mm256_storeu_ps(c + 8, acc[r][1]);
			}
			continue;
		}
		/* The last 1..15 columns, masked. */
		__m256i m0 = lanes(nl), m1 = lanes(nl - 8);
		int two = nl > 8;
		_Pragma("GCC unroll 6")
		for (int r = 0; r < mr; r++) {
			const float *c = C + (size_t)r * ldc + j;
			acc[r][0] = beta ? _mm256_maskload_ps(c, m0) :
			    _mm256_setzero_ps();
			acc[r][1] = beta && two ? _mm256_maskload_ps(c + 8,
			    m1) : _mm256_setzero_ps();
		}
		for (int k = 0; k < K; k++) {
			const float *b = B + (size_t)k * ldb + j;
			b0 = _mm256_maskload_ps(b, m0);
			b1 = two ? _mm256_maskload_ps(b + 8, m1) :
			    _mm256_setzero_ps();
			_Pragma("GCC unroll 6")
			for (int r = 0; r < mr; r++) {
				__m256 a = _mm256_broadcast_ss(A +
				    (size_t)r * rsa + (size_t)k * csa);
				acc[r][0] = _mm256_fmadd_ps(a, b0, acc[r][0]);
				acc[r][1] = _mm256_fmadd_ps(a, b1, acc[r][1]);
			}
		}
		_Pragma("GCC unroll 6")
		for (int r = 0; r < mr; r++) {
			float *c = C + (size_t)r * ldc + j;
			_mm256_maskstore_ps(c, m0, acc[r][0]);
			if (two)
				_mm256_maskstore_ps(c + 8, m1, acc[r][1]);
		}
	}
}

AVX2 static void
axpy_form(int M, int N, int K, const float *A, size_t rsa, size_t csa,
    const float *B, size_t ldb, int beta, float *C, size_t ldc)
{
	int i = 0;

	for (; i + 6 <= M; i += 6)
		axpy_rows(6, N, K, A + (size_t)i * rsa, rsa, csa, B, ldb,
		    beta, C + (size_t)i * ldc, ldc);
	A += (size_t)i * rsa;
	C += (size_t)i * ldc;
	switch (M - i) {	/* constant mr: the blocks stay in registers */
	case 5: axpy_rows(5, N, K, A, rsa, csa, B, ldb, beta, C, ldc); break;
	case 4: axpy_rows(4, N, K, A, rsa, csa, B, ldb, beta, C, ldc); break;
	case 3: axpy_rows(3, N, K, A, rsa, csa, B, ldb, beta, C, ldc); break;
	case 2: axpy_rows(2, N, K, A, rsa, csa, B, ldb, beta, C, ldc); break;
	case 1: axpy_rows(1, N, K, A, rsa, csa, B, ldb, beta, C, ldc); break;
	}
}

/* The four lane sums of a0..a3, in order. */
AVX2 INLINE __m128
hsum4(__m256 a0, __m256 a1, __m256 a2, __m256 a3)
{
	__m256 t = _mm256_hadd_ps(_mm256_hadd_ps(a0, a1),
	    _mm256_hadd_ps(a2, a3));

	return _mm_add_ps(_mm256_castps256_ps128(t),
	    _mm256_extractf128_ps(t, 1));
}

/* Dot form on mr (1..3) rows of A by nr (1..4) rows of B. */
AVX2 INLINE void
dot_block(const int mr, const int nr, int K, const float *A, size_t lda,
    const float *B, size_t ldb, int beta, float *C, size_t ldc)
{
	__m256 acc[3][4], a[3], b;
	int k = 0;

	_Pragma("GCC unroll 3")
	for (int r = 0; r < mr; r++)
		_Pragma("GCC unroll 4")
		for (int c = 0; c < 4; c++)
			acc[r][c] = _mm256_setzero_ps();
	for (; k + 8 <= K; k += 8) {
		_Pragma("GCC unroll 3")
		for (int r = 0; r < mr; r++)
			a[r] = _mm256_loadu_ps(A + (size_t)r * lda + k);
		_Pragma("GCC unroll 4")
		for (int c = 0; c < nr; c++) {
			b = _mm256_loadu_ps(B + (size_t)c * ldb + k);
			_Pragma("GCC unroll 3")
			for (int r = 0; r < mr; r++)
				acc[r][c] = _mm256_fmadd_ps(a[r], b,
				    acc[r][c]);
		}
	}
	if (k < K) {
		__m256i m = lanes(K - k);
		_Pragma("GCC unroll 3")
		for (int r = 0; r < mr; r++)
			a[r] = _mm256_maskload_ps(A + (size_t)r * lda + k, m);
		_Pragma("GCC unroll 4")
		for (int c = 0; c < nr; c++) {
			b = _mm256_maskload_ps(B + (size_t)c * ldb + k, m);
			_Pragma("GCC unroll 3")
			for (int r = 0; r < mr; r++)
				acc[r][c] = _mm256_fmadd_ps(a[r], b,
				    acc[r][c]);
		}
	}
	_Pragma("GCC unroll 3")
	for (int r = 0; r < mr; r++) {
		float s[4], *c = C + (size_t)r * ldc;
		_mm_storeu_ps(s, hsum4(acc[r][0], acc[r][1], acc[r][2],
		    acc[r][3]));
		for (int j = 0; j < nr; j++)
			c[j] = (beta ? c[j] : 0.0f) + s[j];
	}
}

/* Dot form on mr rows of A against every row of B. */
AVX2 INLINE void
dot_rows(const int mr, int N, int K, const float *A, size_t lda,
    const float *B, size_t ldb, int beta, float *C, size_t ldc)
{
	int j = 0;

	for (; j + 4 <= N; j += 4)
		dot_block(mr, 4, K, A, lda, B + (size_t)j * ldb, ldb, beta,
		    C + j, ldc);
	B += (size_t)j * ldb;
	C += j;
	switch (N - j) {
	case 3: dot_block(mr, 3, K, A, lda, B, ldb, beta, C, ldc); break;
	case 2: dot_block(mr, 2, K, A, lda, B, ldb, beta, C, ldc); break;
	case 1: dot_block(mr, 1, K, A, lda, B, ldb, beta, C, ldc); break;
	}
}

AVX2 static void
dot_form(int M, int N, int K, const float *A, size_t lda, const float *B,
    size_t ldb, int beta, float *C, size_t ldc)
{
	int i = 0;

	for (; i + 3 <= M; i += 3)
		dot_rows(3, N, K, A + (size_t)i * lda, lda, B, ldb, beta,
		    C + (size_t)i * ldc, ldc);
	if (M - i == 2)
		dot_rows(2, N, K, A + (size_t)i * lda, lda, B, ldb, beta,
		    C + (size_t)i * ldc, ldc);
	else if (M - i == 1)
		dot_rows(1, N, K, A + (size_t)i * lda, lda, B, ldb, beta,
		    C + (size_t)i * ldc, ldc);
}

#else

static int
have_avx2(void)
{
	return 0;
}

#endif /* GEMM_AVX2 */

int
gemm_small_path(int ta, int tb, int M, int N, int K, float beta)
{
	return have_avx2() && small_shape(ta, tb, M, N, K, beta);
}

void
gemm_f32(int ta, int tb, int M, int N, int K, const float *A, int lda,
    const float *B, int ldb, float beta, float *C, int ldc)
{
#ifdef GEMM_AVX2
	if (gemm_small_path(ta, tb, M, N, K, beta)) {
		int acc = beta != 0.0f;
		if (!ta && tb)
			dot_form(M, N, K, A, (size_t)lda, B, (size_t)ldb, acc,
			    C, (size_t)ldc);
		else if (!ta)
			axpy_form(M, N, K, A, (size_t)lda, 1, B, (size_t)ldb,
			    acc, C, (size_t)ldc);
		else
			axpy_form(M, N, K, A, 1, (size_t)lda, B, (size_t)ldb,
			    acc, C, (size_t)ldc);
		return;
	}
#endif
	cblas_sgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans,
	    tb ? CblasTrans : CblasNoTrans, M, N, K, 1.0f, A, lda, B, ldb, beta,
	    C, ldc);
}
