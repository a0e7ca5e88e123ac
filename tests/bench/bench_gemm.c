/*
 * bench_gemm: gemm_f32 against cblas_sgemm on the products of a device's
 * learning step (shared/ml/gemm.h), alternately.
 *
 *   bench_gemm [ROUNDS]
 *
 * For batches of 4, 11 (the median device's CV fold) and 32 (learn.batch)
 * it times one step's products of cloudd's default model (MLP input 133,
 * hidden 128-64, output 1, MetaPatch rank 16 on both hidden layers):
 * each layer's forward (NT), input gradient (NN) and weight gradient (TN),
 * and the patch's. A round times the whole set through cblas_sgemm, then
 * through gemm_f32 (A B A B ...); each figure is the median over 2000
 * repetitions in the round. It prints per batch the median over rounds of
 * the pairwise ratio cblas / gemm_f32 with its range, and per shape the
 * last round's times ("BENCH gemm ..."). One thread: run with
 * OPENBLAS_NUM_THREADS=1 (the devices' setting).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cblas.h>

#include "shared/clock.h"
#include "shared/ml/gemm.h"
#include "tests/bench/bench_stats.h"

#define REPS	2000
#define MAXR	32

struct shape {
	int	ta, tb, M, N, K;	/* the batch is M (NT, NN) or K (TN) */
	const char *what;
};

/* Seconds for REPS products of shape s through one path. */
static double
time_shape(const struct shape *s, int mine, const float *A, const float *B,
    float *C)
{
	int lda = s->ta ? s->M : s->K, ldb = s->tb ? s->K : s->N;
	double t0 = clock_now();

	for (int r = 0; r < REPS; r++) {
		if (mine)
			gemm_f32(s->ta, s->tb, s->M, s->N, s->K, A, lda, B,
			    ldb, 1.0f, C, s->N);
		else
			cblas_sgemm(CblasRowMajor, s->ta ? CblasTrans :
			    CblasNoTrans, s->tb ? CblasTrans : CblasNoTrans,
			    s->M, s->N, s->K, 1.0f, A, lda, B, ldb, 1.0f, C,
			    s->N);
	}
	return (clock_now() - t0) / REPS;
}

int
main(int argc, char **argv)
{
	static const int batches[] = { 4, 11, 32 };
	int rounds = argc > 1 ? atoi(argv[1]) : 5;
	float *A = malloc(256 * 256 * sizeof(float));
	float *B = malloc(256 * 256 * sizeof(float));
	float *C = malloc(256 * 256 * sizeof(float));

	if (rounds < 1 || rounds > MAXR || A == NULL || B == NULL ||
	    C == NULL) {
		fprintf(stderr, "usage: bench_gemm [ROUNDS 1..%d]\n", MAXR);
		return 2;
	}
	for (int i = 0; i < 256 * 256; i++) {
		A[i] = (float)(i % 97) / 97.0f - 0.5f;
		B[i] = (float)(i % 89) / 89.0f - 0.5f;
		C[i] = 0;
	}
	for (size_t bi = 0; bi < sizeof(batches) / sizeof(batches[0]); bi++) {
		int b = batches[bi];
		struct shape sh[] = {
			{ 0, 1, b, 128, 133, "layer 1 forward" },
			{ 0, 1, b, 64, 128, "layer 2 forward" },
			{ 0, 1, b, 1, 64, "output forward" },
			{ 0, 0, b, 133, 128, "layer 1 input grad" },
			{ 0, 0, b, 128, 64, "layer 2 input grad" },
			{ 0, 0, b, 64, 1, "output input grad" },
			{ 1, 0, 128, 133, b, "layer 1 weight grad" },
			{ 1, 0, 64, 128, b, "layer 2 weight grad" },
			{ 1, 0, 1, 64, b, "output weight grad" },
			{ 0, 1, b, 16, 128, "patch t = h V^T" },
			{ 0, 1, b, 128, 16, "patch s U^T" },
			{ 0, 0, b, 16, 128, "patch ds = d U" },
			{ 0, 0, b, 128, 16, "patch dt V" },
			{ 1, 0, 128, 16, b, "patch dU" },
			{ 1, 0, 16, 128, b, "patch dV" },
		};
		int ns = (int)(sizeof(sh) / sizeof(sh[0]));
		double ratio[MAXR], last[2][16];

		for (int r = 0; r < rounds; r++) {
			double tot[2] = { 0, 0 };
			for (int k = 0; k < 2; k++)	/* cblas, then ours */
				for (int s = 0; s < ns; s++) {
					last[k][s] = time_shape(&sh[s], k, A, B,
					    C);
					tot[k] += last[k][s];
				}
			ratio[r] = tot[0] / tot[1];
		}
		for (int s = 0; s < ns; s++)
			printf("BENCH gemm batch=%d %-20s %d%d M=%d N=%d K=%d "
			    "cblas_us=%.3f gemm_us=%.3f ratio=%.2f small=%d\n",
			    b, sh[s].what, sh[s].ta, sh[s].tb, sh[s].M,
			    sh[s].N, sh[s].K, last[0][s] * 1e6,
			    last[1][s] * 1e6, last[0][s] / last[1][s],
			    gemm_small_path(sh[s].ta, sh[s].tb, sh[s].M,
			    sh[s].N, sh[s].K, 1.0f));
		double lo = ratio[0], hi = ratio[0];
		for (int r = 1; r < rounds; r++) {
			lo = ratio[r] < lo ? ratio[r] : lo;
			hi = ratio[r] > hi ? ratio[r] : hi;
		}
		printf("BENCH gemm batch=%d step: cblas/gemm_f32 median %.2fx "
		    "[%.2f, %.2f] over %d alternating rounds\n", b,
		    bench_median(ratio, rounds), lo, hi, rounds);
	}
	free(A);
	free(B);
	free(C);
	return 0;
}
