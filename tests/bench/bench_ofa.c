/*
 * bench_ofa: the device-side cost of Forward-OFA per capability class:
 * the adaptation (behaviour encoding + controller + mapper + materialising
 * the assembled blocks: the one forward pass a device re-runs whenever a
 * new local sample changes its behaviour), one prediction with the
 * assembled model against one prediction with the uniform cloud CTR model,
 * FLOPs per prediction and the bytes of the part a device downloads.
 *
 *   make bin/bench_ofa && bin/bench_ofa
 *
 * Shapes are those of ml-latest-small with cloudd's defaults (610 users,
 * 9742 items, 20 genres, D 16, K 20, CTR MLP 128-64) and the OFA defaults
 * (H 64, F 64, L 4, R 8). Weights are random with every controller open,
 * so the budget projection alone sets the blocks: 1, 2 and 4. Timing is
 * the median of 15 runs of N repetitions each, OpenBLAS on one thread.
 * Each figure is one "BENCH name key=value ..." line.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "shared/clock.h"
#include "shared/ml/ctr.h"
#include "shared/ml/ofa.h"
#include "shared/ml/ofa_io.h"
#include "shared/rng.h"

void	openblas_set_num_threads(int);

static int
cmp(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

#define RUNS 15

int
main(void)
{
	struct ctr_config cc = { 0 };
	struct ofa_config oc;
	struct ctr *cloud = NULL;
	struct ofa *m = NULL;
	struct ofa_assembled a;
	struct dataset ds;
	struct rng r;
	uint32_t items[21], idx[1] = { 0 };
	float z[16], x0[96], out[1], scratch[3 * 64];
	double t[RUNS];
	const int N = 2000;

	openblas_set_num_threads(1);
	cc.n_users = 610;
	cc.n_items = 9742;
	cc.n_genres = 20;
	cc.dim = 16;
	cc.hist_k = 20;
	cc.n_hidden = 2;
	cc.hidden[0] = 128;
	cc.hidden[1] = 64;
	cc.patch_rank = 16;
	ctr_new(&cloud, &cc, 1);
	ofa_config_default(&oc, cloud);
	ofa_new(&m, &oc, 1);
	ofa_assembled_init(&a);
	rng_seed(&r, 3);

	/* one test sample with a full history */
	memset(&ds, 0, sizeof(ds));
	struct sample s = { 0 };
	uint32_t hist[20];
	for (int i = 0; i < 20; i++)
		hist[i] = items[i] = rng_below(&r, cc.n_items);
	s.user = 5;
	s.item = 77;
	s.ts = 1500000000;
	s.genres = 0x15;
	s.hist_n = 20;
	ds.s = &s;
	ds.n = 1;
	ds.hist = hist;
	ds.hist_len = 20;
	ds.n_users = cc.n_users;
	ds.n_items = cc.n_items;
	ds.n_genres = cc.n_genres;

	struct ofa_meta om = { 0 };
	om.version = om.base_version = 1;
	size_t base = ofa_io_size(m, &om, 1, 0);
	printf("BENCH ofa_model params=%zu base_params=%zu block_params=%zu "
	    "base_bytes=%zu all_bytes=%zu\n", ofa_num_params(m),
	    ofa_base_params(m), ofa_block_params(m), base,
	    ofa_io_size(m, &om, 1, OFA_IO_ALL));

	for (int k = 0; k < OFA_N_CLASSES; k++) {
		uint32_t mask = 0;
		/* adaptation: a new local sample arrived */
		for (int run = 0; run < RUNS; run++) {
			double t0 = clock_now();
			for (int i = 0; i < N; i++) {
				items[20] = (uint32_t)i % cc.n_items;
				ofa_behaviour(cloud, items + 1, 20, oc.hist_k, z);
				ofa_assemble(m, z, ofa_class_budget[k], &a);
			}
			t[run] = (clock_now() - t0) / N * 1e6;
		}
		qsort(t, RUNS, sizeof(double), cmp);
		double adapt = t[RUNS / 2];
		for (int b = 0; b < a.n_blocks; b++)
			mask |= 1u << a.block[b];
		/* one prediction, features included */
		for (int run = 0; run < RUNS; run++) {
			double t0 = clock_now();
			for (int i = 0; i < N; i++) {
				ofa_inputs_base(m, cloud, &ds, idx, 1, x0,
				    NULL);
				ofa_assembled_logits(&a, x0, 1, out, scratch);
			}
			t[run] = (clock_now() - t0) / N * 1e6;
		}
		qsort(t, RUNS, sizeof(double), cmp);
		printf("BENCH ofa_%s blocks=%d adapt_us=%.2f adapt_flops=%.0f "
		    "predict_us=%.2f flops=%.0f bytes_down=%zu\n",
		    ofa_class_name[k], a.n_blocks, adapt,
		    ofa_adapt_flops(m, a.n_blocks), t[RUNS / 2],
		    ofa_in_flops(m, cloud) + ofa_assembled_flops(&a),
		    base + (mask ? ofa_io_size(m, &om, 0, mask) : 0));
	}
	for (int run = 0; run < RUNS; run++) {
		double t0 = clock_now();
		for (int i = 0; i < N; i++)
			ctr_predict(cloud, &ds, idx, 1, out);
		t[run] = (clock_now() - t0) / N * 1e6;
	}
	qsort(t, RUNS, sizeof(double), cmp);
	printf("BENCH ctr_cloud predict_us=%.2f flops=%.0f\n", t[RUNS / 2],
	    ctr_flops(cloud));
	ofa_assembled_fini(&a);
	ofa_free(m);
	ctr_free(cloud);
	return 0;
}
