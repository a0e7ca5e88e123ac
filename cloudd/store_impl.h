/*
 * store_impl: what a store backend provides to store.c, which dispatches
 * every store_* call through the ops table of the connection. Private to
 * cloudd/store*.c. A backend's connection struct starts with a struct
 * store, so a struct store * is a pointer to it.
 */
#ifndef CLOUDD_STORE_IMPL_H
#define CLOUDD_STORE_IMPL_H

#include "cloudd/store.h"

struct store_ops {
	const char *name;
	void	(*close)(struct store *);
	int	(*schema_version)(struct store *);
	int	(*begin)(struct store *);
	int	(*commit)(struct store *);
	void	(*rollback)(struct store *);
	int	(*wal_manual)(struct store *);
	int	(*wal_checkpoint)(struct store *);
	int	(*pool_insert)(struct store *, const struct dataset *,
		    const char *, uint64_t *);
	int	(*pool_schema)(struct store *, char **);
	int	(*pool_count)(struct store *, uint64_t *);
	int	(*pool_load)(struct store *, struct dataset *, uint64_t **);
	int	(*pool_set_repr)(struct store *, const uint64_t *,
		    const float *, size_t, int, uint64_t);
	int	(*pool_get_repr)(struct store *, float *, size_t, int,
		    uint64_t);
	int	(*model_put)(struct store *, const struct store_model_info *,
		    const void *, size_t);
	int	(*model_info)(struct store *, uint64_t,
		    struct store_model_info *);
	int	(*model_read)(struct store *, uint64_t, uint64_t, void *,
		    size_t);
	int	(*model_list)(struct store *, struct store_model_info **,
		    size_t *);
	int	(*model_copy)(struct store *, uint64_t,
		    struct store_model_info *);
	int	(*model_delete)(struct store *, uint64_t);
	int	(*model_prune)(struct store *, size_t, uint64_t, uint64_t **,
		    size_t *, uint64_t *);
	int	(*ofa_put)(struct store *, uint64_t, const void *, size_t);
	int	(*ofa_get)(struct store *, uint64_t, void **, size_t *);
	int	(*device_put)(struct store *, const struct store_device *);
	int	(*device_get)(struct store *, const char *,
		    struct store_device *);
	int	(*device_list)(struct store *, struct store_device **,
		    size_t *);
	int	(*device_count)(struct store *, uint64_t *);
	int	(*user_device_count)(struct store *, uint32_t, uint64_t *);
	int	(*patch_put)(struct store *, const struct store_patch *,
		    uint32_t, uint64_t *, int *);
	int	(*patch_count)(struct store *, uint64_t *);
	int	(*patch_list)(struct store *, uint64_t, struct store_patch **,
		    size_t *);
	int	(*patch_pending)(struct store *, uint64_t, uint64_t, uint32_t *,
		    int64_t *);
	int	(*patch_used)(struct store *, const uint64_t *, size_t,
		    uint64_t);
	int	(*cloud_key)(struct store *, const uint8_t *, const uint8_t *,
		    uint8_t *, uint8_t *, int *);
	int	(*authkey_put)(struct store *, const struct store_authkey *,
		    int, int *);
	int	(*authkey_get)(struct store *, const char *,
		    struct store_authkey *);
	int	(*authkey_list)(struct store *, struct store_authkey **,
		    size_t *);
	int	(*authkey_counters)(struct store *,
		    const struct store_authkey *, size_t);
	int	(*leader_try)(struct store *, int *);
	int	(*task_add)(struct store *, const char *, int64_t,
		    uint64_t *);
	int	(*task_next)(struct store *, struct store_task *);
	int	(*task_done)(struct store *, uint64_t, uint64_t);
};

struct store {
	const struct store_ops	*ops;
	char			 err[256];	/* last error, for store_errmsg */
};

/* store_sqlite.c: target is a file path (or ":memory:"). */
int	store_sqlite_open(struct store **out, const char *target, int busy_ms,
	    char *err, size_t errlen);
/* store_pg.c: target is a libpq connection string. */
int	store_pg_open(struct store **out, const char *target, int busy_ms,
	    char *err, size_t errlen);

#endif
