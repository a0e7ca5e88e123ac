/*
 * test_store, pool and models: the pool, representation vectors, model
 * versions (read, list, copy, delete, prune) and OFA models, run against
 * each backend by test_store.c's table (store_fixture.h).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <errno.h>
#include <libpq-fe.h>
#include <pthread.h>
#include <sqlite3.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "cloudd/store.h"
#include "shared/data/dataset.h"
#include "tests/unit/store_fixture.h"

/* --- pool ---------------------------------------------------------------- */

void
make_dataset(struct dataset *ds, size_t n)
{
	dataset_init(ds);
	for (size_t i = 0; i < n; i++) {
		struct sample x;
		uint32_t h[SAMPLE_HIST_MAX];
		size_t hn = i % 5 == 4 ? SAMPLE_HIST_MAX : i % 4;

		memset(&x, 0, sizeof(x));
		x.user = (uint32_t)(i % 7);
		x.item = (uint32_t)(i * 3 % 50);
		x.ts = 1600000000 + (int64_t)i * 60;
		x.rating = (float)(i % 5) + 0.5f;
		x.label = i % 3 == 0 ? 1.0f : i % 3 == 1 ? 0.0f : 0.25f;
		x.genres = (uint32_t)(1u << (i % 20)) | 1u;
		for (size_t k = 0; k < hn; k++)
			h[k] = (uint32_t)((i + k) % 50);
		dataset_append(ds, &x, h, hn);
	}
	ds->n_users = 10;	/* more than the ids need */
	ds->n_items = 60;
	ds->n_genres = 20;
}

void
test_pool_round_trip(void **state)
{
	struct store *st = *state;
	struct dataset in, out;
	uint64_t rows = 0, n = 0, *ids = NULL;

	make_dataset(&in, 57);
	assert_int_equal(store_pool_insert(st, &in, &rows), 0);
	assert_int_equal(rows, 57);
	assert_int_equal(store_pool_count(st, &n), 0);
	assert_int_equal(n, 57);

	dataset_init(&out);
	assert_int_equal(store_pool_load(st, &out, &ids), 0);
	assert_non_null(ids);
	assert_int_equal(out.n, 57);
	assert_int_equal(out.n_users, 10);
	assert_int_equal(out.n_items, 60);
	assert_int_equal(out.n_genres, 20);
	for (size_t i = 0; i < out.n; i++) {
		const struct sample *a = &in.s[i], *b = &out.s[i];
		assert_int_equal(b->user, a->user);
		assert_int_equal(b->item, a->item);
		assert_int_equal(b->ts, a->ts);
		assert_true(b->rating == a->rating);
		assert_true(b->label == a->label);
		assert_int_equal(b->genres, a->genres);
		assert_int_equal(b->hist_n, a->hist_n);
		if (a->hist_n > 0)
			assert_memory_equal(sample_hist(&out, b),
			    sample_hist(&in, a), a->hist_n * sizeof(uint32_t));
		if (i > 0)
			assert_true(ids[i] > ids[i - 1]);
	}

	/* A second insert appends; meta keeps the maximum. */
	in.n_users = 3;
	assert_int_equal(store_pool_insert(st, &in, &rows), 0);
	assert_int_equal(store_pool_count(st, &n), 0);
	assert_int_equal(n, 114);
	free(ids);
	dataset_fini(&out);
	dataset_init(&out);
	assert_int_equal(store_pool_load(st, &out, &ids), 0);
	assert_int_equal(out.n, 114);
	assert_int_equal(out.n_users, 10);

	free(ids);
	dataset_fini(&out);
	dataset_fini(&in);
}

void
test_pool_empty(void **state)
{
	struct store *st = *state;
	struct dataset ds;
	uint64_t n = 1, rows = 1, *ids = NULL;

	dataset_init(&ds);
	assert_int_equal(store_pool_insert(st, &ds, &rows), 0);
	assert_int_equal(rows, 0);
	assert_int_equal(store_pool_load(st, &ds, &ids), 0);
	assert_int_equal(ds.n, 0);
	assert_int_equal(store_pool_count(st, &n), 0);
	assert_int_equal(n, 0);
	free(ids);
	dataset_fini(&ds);
}

void
test_pool_repr(void **state)
{
	struct store *st = *state;
	struct dataset ds;
	uint64_t rows, *ids = NULL;
	enum { N = 9, D = 4 };
	float repr[N * D], back[N * D];

	make_dataset(&ds, N);
	assert_int_equal(store_pool_insert(st, &ds, &rows), 0);
	dataset_fini(&ds);
	dataset_init(&ds);
	assert_int_equal(store_pool_load(st, &ds, &ids), 0);
	for (int i = 0; i < N * D; i++)
		repr[i] = (float)i * 0.5f - 3.0f;

	/* Nothing stored yet. */
	assert_int_equal(store_pool_get_repr(st, back, N, D, 2), -ENOENT);

	assert_int_equal(store_pool_set_repr(st, ids, repr, N, D, 2), 0);
	memset(back, 0, sizeof(back));
	assert_int_equal(store_pool_get_repr(st, back, N, D, 2), 0);
	assert_memory_equal(back, repr, sizeof(repr));
	/* Another model version, or another width, is absent. */
	assert_int_equal(store_pool_get_repr(st, back, N, D, 3), -ENOENT);
	assert_int_equal(store_pool_get_repr(st, back, N, D + 1, 2), -ENOENT);
	/* Asking for more rows than the pool has is -ENOENT, too. */
	{
		float more[(N + 1) * D];
		assert_int_equal(store_pool_get_repr(st, more, N + 1, D, 2),
		    -ENOENT);
	}
	/* Partly re-computed: mixed versions are absent for both. */
	assert_int_equal(store_pool_set_repr(st, ids, repr, 3, D, 3), 0);
	assert_int_equal(store_pool_get_repr(st, back, N, D, 3), -ENOENT);
	assert_int_equal(store_pool_get_repr(st, back, N, D, 2), -ENOENT);

	free(ids);
	dataset_fini(&ds);
}

/* --- models -------------------------------------------------------------- */

void
put_model(struct store *st, uint64_t v, uint64_t parent, size_t len)
{
	struct store_model_info mi;
	uint8_t *blob = malloc(len);

	assert_non_null(blob);
	for (size_t i = 0; i < len; i++)
		blob[i] = (uint8_t)(i * 7 + v);
	memset(&mi, 0, sizeof(mi));
	mi.version = v;
	mi.parent = parent;
	mi.created = 1700000000 + (int64_t)v;
	mi.global_ctr = 0.1 * (double)v;
	for (int i = 0; i < 32; i++)
		mi.checksum[i] = (uint8_t)(v + (uint64_t)i);
	assert_int_equal(store_model_put(st, &mi, blob, len), 0);
	free(blob);
}

void
test_models(void **state)
{
	struct store *st = *state;
	struct store_model_info mi, *list = NULL;
	uint8_t buf[100];
	size_t n = 0;

	assert_int_equal(store_model_info(st, 0, &mi), -ENOENT);
	put_model(st, 1, 0, 1000);
	put_model(st, 2, 1, 3000);
	put_model(st, 3, 2, 500);

	assert_int_equal(store_model_info(st, 0, &mi), 0);	/* latest */
	assert_int_equal(mi.version, 3);
	assert_int_equal(mi.parent, 2);
	assert_int_equal(mi.size, 500);
	assert_int_equal(mi.created, 1700000003);
	assert_true(mi.global_ctr == 0.1 * 3.0);
	for (int i = 0; i < 32; i++)
		assert_int_equal(mi.checksum[i], 3 + i);

	assert_int_equal(store_model_info(st, 2, &mi), 0);
	assert_int_equal(mi.version, 2);
	assert_int_equal(mi.size, 3000);
	assert_int_equal(store_model_info(st, 7, &mi), -ENOENT);

	/* Reads of ranges, including the last byte exactly. */
	assert_int_equal(store_model_read(st, 2, 0, buf, 100), 0);
	for (int i = 0; i < 100; i++)
		assert_int_equal(buf[i], (uint8_t)(i * 7 + 2));
	assert_int_equal(store_model_read(st, 2, 2900, buf, 100), 0);
	for (int i = 0; i < 100; i++)
		assert_int_equal(buf[i], (uint8_t)((2900 + i) * 7 + 2));
	assert_int_equal(store_model_read(st, 2, 3000, buf, 0), 0);
	assert_int_equal(store_model_read(st, 2, 2950, buf, 100), -ERANGE);
	assert_int_equal(store_model_read(st, 2, 5000, buf, 1), -ERANGE);
	assert_int_equal(store_model_read(st, 7, 0, buf, 1), -ENOENT);

	/* Same version twice is refused (a database error, not a crash). */
	{
		struct store_model_info dup;
		memset(&dup, 0, sizeof(dup));
		dup.version = 2;
		assert_int_equal(store_model_put(st, &dup, buf, 10), -EIO);
		assert_non_null(strstr(store_errmsg(st), "model insert"));
	}

	assert_int_equal(store_model_list(st, &list, &n), 0);
	assert_int_equal(n, 3);
	for (size_t i = 0; i < n; i++)
		assert_int_equal(list[i].version, i + 1);
	assert_int_equal(list[1].size, 3000);
	free(list);
}

/*
 * off + len must not wrap around: a huge offset is past the end (-ERANGE),
 * not a database error.
 */
/* Forward-OFA blobs: one per CTR version, replaced on put. */
void
test_ofa_models(void **state)
{
	struct store *st = *state;
	uint8_t a[300], b[40];
	void *blob = NULL;
	size_t len = 1;

	for (size_t i = 0; i < sizeof(a); i++)
		a[i] = (uint8_t)(i * 3 + 1);
	memset(b, 0xab, sizeof(b));
	assert_int_equal(store_ofa_get(st, 1, &blob, &len), -ENOENT);
	assert_null(blob);
	assert_int_equal(len, 0);
	/* Only for a stored CTR version (one pruned meanwhile is refused). */
	assert_int_equal(store_ofa_put(st, 1, a, sizeof(a)), -ENOENT);
	put_model(st, 1, 0, 100);
	put_model(st, 2, 1, 100);
	assert_int_equal(store_ofa_put(st, 1, a, sizeof(a)), 0);
	assert_int_equal(store_ofa_put(st, 2, b, sizeof(b)), 0);
	assert_int_equal(store_ofa_get(st, 1, &blob, &len), 0);
	assert_int_equal(len, sizeof(a));
	assert_memory_equal(blob, a, sizeof(a));
	free(blob);
	assert_int_equal(store_ofa_put(st, 1, b, sizeof(b)), 0);
	assert_int_equal(store_ofa_get(st, 1, &blob, &len), 0);
	assert_int_equal(len, sizeof(b));
	assert_memory_equal(blob, b, sizeof(b));
	free(blob);
	assert_int_equal(store_ofa_get(st, 3, &blob, &len), -ENOENT);
}

void
test_model_read_offset_overflow(void **state)
{
	struct store *st = *state;
	uint8_t buf[16];

	put_model(st, 1, 0, 100);
	assert_int_equal(store_model_read(st, 1, UINT64_MAX, buf, 2), -ERANGE);
	assert_int_equal(store_model_read(st, 1, UINT64_MAX - 5, buf, 16),
	    -ERANGE);
}

void
test_model_list_many(void **state)
{
	struct store *st = *state;
	struct store_model_info *list = NULL;
	size_t n = 0;

	for (uint64_t v = 1; v <= 40; v++)	/* past the initial capacity */
		put_model(st, v, v - 1, 10);
	assert_int_equal(store_model_list(st, &list, &n), 0);
	assert_int_equal(n, 40);
	assert_int_equal(list[39].version, 40);
	assert_int_equal(list[39].parent, 39);
	free(list);
}

/*
 * A rollback copy: same blob, size, checksum and r_g as the source, new
 * version/parent/created; a missing source or a taken version writes
 * nothing.
 */
void
test_model_copy(void **state)
{
	struct store *st = *state;
	struct store_model_info mi, got, *list = NULL;
	uint8_t a[300], b[300];
	size_t n = 0;

	put_model(st, 1, 0, 300);
	put_model(st, 2, 1, 200);
	memset(&mi, 0, sizeof(mi));
	mi.version = 3;
	mi.parent = 2;
	mi.created = 1800000000;
	assert_int_equal(store_model_copy(st, 1, &mi), 0);
	/* Out: the source's facts. */
	assert_int_equal(mi.version, 3);
	assert_int_equal(mi.parent, 2);
	assert_int_equal(mi.size, 300);
	assert_int_equal(mi.created, 1800000000);
	assert_true(mi.global_ctr == 0.1);
	for (int i = 0; i < 32; i++)
		assert_int_equal(mi.checksum[i], 1 + i);
	assert_int_equal(store_model_info(st, 0, &got), 0);	/* latest */
	assert_int_equal(got.version, 3);
	assert_int_equal(got.parent, 2);
	assert_int_equal(store_model_read(st, 1, 0, a, sizeof(a)), 0);
	assert_int_equal(store_model_read(st, 3, 0, b, sizeof(b)), 0);
	assert_memory_equal(a, b, sizeof(a));

	/* Missing source: -ENOENT, no row. */
	mi.version = 4;
	assert_int_equal(store_model_copy(st, 9, &mi), -ENOENT);
	assert_int_equal(store_model_info(st, 4, &got), -ENOENT);
	/* Taken version: a database error, the old row untouched. */
	mi.version = 2;
	assert_int_equal(store_model_copy(st, 1, &mi), -EIO);
	assert_non_null(strstr(store_errmsg(st), "model copy"));
	assert_int_equal(store_model_info(st, 2, &got), 0);
	assert_int_equal(got.size, 200);
	assert_int_equal(store_model_list(st, &list, &n), 0);
	assert_int_equal(n, 3);
	free(list);
}

void
test_model_delete(void **state)
{
	struct store *st = *state;
	struct store_model_info got;
	uint8_t buf[8];

	put_model(st, 1, 0, 50);
	put_model(st, 2, 1, 50);
	assert_int_equal(store_model_delete(st, 1), 0);
	assert_int_equal(store_model_info(st, 1, &got), -ENOENT);
	assert_int_equal(store_model_read(st, 1, 0, buf, 8), -ENOENT);
	assert_int_equal(store_model_delete(st, 1), -ENOENT);
	assert_int_equal(store_model_delete(st, 0), -ENOENT);
	assert_int_equal(store_model_info(st, 0, &got), 0);
	assert_int_equal(got.version, 2);
	/* The version number is free again (rollback cleanup relies on it). */
	put_model(st, 1, 0, 10);
}

static void
put_patch(struct store *st, uint64_t rid, uint64_t base)
{
	struct store_patch p;
	uint64_t id;
	int dup;
	uint8_t blob[4] = { 1, 2, 3, 4 };

	memset(&p, 0, sizeof(p));
	snprintf(p.device_id, sizeof(p.device_id), "dev-1");
	p.request_id = rid;
	p.base_version = base;
	snprintf(p.kind, sizeof(p.kind), "metapatch");
	p.blob = blob;
	p.size = sizeof(blob);
	assert_int_equal(store_patch_put(st, &p, 0, &id, &dup), 0);
	assert_int_equal(dup, 0);
}

static void
assert_versions(struct store *st, const uint64_t *want, size_t nwant)
{
	struct store_model_info *list = NULL;
	size_t n = 0;

	assert_int_equal(store_model_list(st, &list, &n), 0);
	assert_int_equal(n, nwant);
	for (size_t i = 0; i < n; i++)
		assert_int_equal(list[i].version, want[i]);
	free(list);
}

/*
 * Prune keeps the keep newest plus the served version, deletes the rest in
 * ascending order, reports their bytes, and leaves patches alone.
 */
void
test_model_prune(void **state)
{
	struct store *st = *state;
	uint64_t *del = NULL, bytes = 0, np = 0;
	size_t n = 0;

	for (uint64_t v = 1; v <= 6; v++)
		put_model(st, v, v - 1, 100 * v);
	put_patch(st, 1, 1);
	put_patch(st, 2, 2);
	assert_int_equal(store_ofa_put(st, 1, "ofa-1", 5), 0);
	assert_int_equal(store_ofa_put(st, 6, "ofa-6", 5), 0);

	/* Nothing beyond keep: nothing deleted. */
	assert_int_equal(store_model_prune(st, 10, 6, &del, &n, &bytes), 0);
	assert_int_equal(n, 0);
	assert_int_equal(bytes, 0);
	free(del);

	/* Served version among the newest: exactly keep remain. */
	assert_int_equal(store_model_prune(st, 4, 6, &del, &n, &bytes), 0);
	assert_int_equal(n, 2);
	assert_int_equal(del[0], 1);
	assert_int_equal(del[1], 2);
	assert_int_equal(bytes, 100 + 200);
	free(del);
	assert_versions(st, (const uint64_t[]){ 3, 4, 5, 6 }, 4);

	/* Served version older than the keep newest: it stays as well. */
	assert_int_equal(store_model_prune(st, 1, 3, &del, &n, &bytes), 0);
	assert_int_equal(n, 2);
	assert_int_equal(del[0], 4);
	assert_int_equal(del[1], 5);
	assert_int_equal(bytes, 400 + 500);
	free(del);
	assert_versions(st, (const uint64_t[]){ 3, 6 }, 2);

	/* keep 0 is taken as 1; count only (deleted = NULL). */
	assert_int_equal(store_model_prune(st, 0, 6, NULL, &n, &bytes), 0);
	assert_int_equal(n, 1);
	assert_int_equal(bytes, 300);
	assert_versions(st, (const uint64_t[]){ 6 }, 1);

	/* The served version is never deleted, whatever keep says. */
	put_model(st, 7, 6, 10);
	assert_int_equal(store_model_prune(st, 1, 6, &del, &n, &bytes), 0);
	assert_int_equal(n, 0);
	free(del);
	assert_versions(st, (const uint64_t[]){ 6, 7 }, 2);

	/* Patches on pruned bases are kept. */
	assert_int_equal(store_patch_count(st, &np), 0);
	assert_int_equal(np, 2);
	/* A pruned version's OFA model went with it; the served one's stays. */
	{
		void *blob = NULL;
		size_t len = 0;
		assert_int_equal(store_ofa_get(st, 1, &blob, &len), -ENOENT);
		assert_int_equal(store_ofa_get(st, 6, &blob, &len), 0);
		assert_int_equal(len, 5);
		free(blob);
	}
}
