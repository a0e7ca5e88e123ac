/*
 * store_fixture: what the files of test_store (test_store.c, store_models.c,
 * store_fleet.c) share: the backend under test and its helpers (defined in
 * test_store.c), the helpers one file defines for another, and the tests
 * test_store.c's table runs. Private to those files.
 */
#ifndef TESTS_UNIT_STORE_FIXTURE_H
#define TESTS_UNIT_STORE_FIXTURE_H

#include <stddef.h>
#include <stdint.h>

#include "cloudd/store.h"
#include "shared/data/dataset.h"

struct backend {
	const char	*name;		/* store_open's backend */
	/* A new, empty database (file or schema). */
	void		(*fresh)(char *buf, size_t len);
	/* For the in-memory tests: ":memory:" or a fresh schema. */
	void		(*mem)(char *buf, size_t len);
	int64_t		(*raw_count)(const char *target, const char *sql);
	void		(*raw_exec)(const char *target, const char *sql);
};

/* The backend the running group tests (test_store.c). */
extern const struct backend *B;

/* Helpers. */
void	db_path(char *buf, size_t len);
int	is_pg(void);
struct store *open_ok(const char *target);
int64_t	raw_count(const char *target, const char *sql);
void	make_dataset(struct dataset *ds, size_t n);
void	put_model(struct store *st, uint64_t v, uint64_t parent, size_t len);
void	patch(struct store_patch *p, const char *dev, uint64_t req, uint64_t base,
	    void *blob, size_t size);

/* Tests (store_models.c, store_fleet.c). */
void	test_pool_round_trip(void **state);
void	test_pool_empty(void **state);
void	test_pool_repr(void **state);
void	test_models(void **state);
void	test_ofa_models(void **state);
void	test_model_read_offset_overflow(void **state);
void	test_model_list_many(void **state);
void	test_model_copy(void **state);
void	test_model_delete(void **state);
void	test_model_prune(void **state);
void	test_devices(void **state);
void	test_patches(void **state);
void	test_patches_many(void **state);
void	test_patch_retention(void **state);
void	test_patch_dup_across_reopen(void **state);
void	test_patch_tx_commit(void **state);
void	test_patch_tx_rollback(void **state);
void	test_patch_tx_lost_session(void **state);
void	test_patch_pending(void **state);
void	test_device_get(void **state);
void	test_leader(void **state);
void	test_tasks(void **state);
void	test_reconnect(void **state);
void	test_cloud_key(void **state);
void	test_cloud_key_race(void **state);
void	test_authkeys(void **state);
void	test_authkey_counters_many(void **state);
void	test_bulk(void **state);

#endif
