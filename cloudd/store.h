/*
 * store: the cloud's persistent state behind one small interface, so that
 * handlers never see SQL and a second backend (PostgreSQL, for several
 * cloudd replicas) can follow. SQLite is the embedded default.
 *
 * A struct store is one database connection: use it from one thread at a
 * time. Workers open their own (store_open on the same target). Every
 * write returns only after its transaction committed, so a caller may
 * acknowledge once it returns 0. Functions return 0 or a negative errno
 * (-ENOENT when a row is missing, -EIO on a database error; the message is
 * in store_errmsg()).
 */
#ifndef CLOUDD_STORE_H
#define CLOUDD_STORE_H

#include <stddef.h>
#include <stdint.h>

#include "shared/sample.h"

#define STORE_SCHEMA_VERSION 1

struct store;

struct store_model_info {
	uint64_t	version, parent, size;
	int64_t		created;
	double		global_ctr;
	uint8_t		checksum[32];	/* BLAKE2b-256 of the blob */
};

struct store_device {
	char		id[65];
	uint32_t	user_id;
	char		compute_class[16];
	uint32_t	memory_mb;
	int64_t		registered, last_seen;
	uint64_t	patches;
};

struct store_patch {
	uint64_t	id;
	char		device_id[65];
	uint32_t	user_id;
	uint64_t	request_id, base_version;
	char		kind[24];
	int64_t		created;
	void		*blob;		/* packed UploadPatch; owned */
	size_t		size;
};

/* backend: "sqlite"; target: a file path. */
int	store_open(struct store **out, const char *backend, const char *target,
	    int busy_ms, char *err, size_t errlen);
void	store_close(struct store *st);
const char *store_errmsg(struct store *st);
int	store_schema_version(struct store *st);

/* Pool. Inserts every sample of ds in one transaction. */
int	store_pool_insert(struct store *st, const struct dataset *ds,
	    uint64_t *rows);
int	store_pool_count(struct store *st, uint64_t *n);
/* Loads the pool into ds (initialised, empty); *rowid gets n row ids. */
int	store_pool_load(struct store *st, struct dataset *ds, uint64_t **rowid);
/* Stores representation vectors (n x dim) computed with model version. */
int	store_pool_set_repr(struct store *st, const uint64_t *rowid,
	    const float *repr, size_t n, int dim, uint64_t version);
/* Loads vectors of model version into repr (n x dim); -ENOENT if absent. */
int	store_pool_get_repr(struct store *st, float *repr, size_t n, int dim,
	    uint64_t version);

/* Models: versioned packed Model blobs. */
int	store_model_put(struct store *st, const struct store_model_info *mi,
	    const void *blob, size_t len);
/* version 0 = the latest. */
int	store_model_info(struct store *st, uint64_t version,
	    struct store_model_info *mi);
int	store_model_read(struct store *st, uint64_t version, uint64_t off,
	    void *buf, size_t len);
int	store_model_list(struct store *st, struct store_model_info **out,
	    size_t *n);
/*
 * Stores the blob of version from again as a new version (rollback). In:
 * mi->version (must be free), mi->parent, mi->created; out: the rest of *mi
 * (size, checksum, global_ctr), copied from the source row. The copy runs
 * inside SQLite, so the blob is never in this process's memory. -ENOENT if
 * from is missing, -EIO if mi->version exists (nothing is written).
 */
int	store_model_copy(struct store *st, uint64_t from,
	    struct store_model_info *mi);
/* Deletes one version; -ENOENT if it does not exist. */
int	store_model_delete(struct store *st, uint64_t version);
/*
 * Deletes every version except the keep (>= 1) newest and except keep_also
 * (the one being served; 0 = none), in one transaction. Patches are not
 * touched, even those whose base version goes. *deleted (caller frees; may
 * be NULL when *n is 0) gets the deleted versions in ascending order, *bytes
 * their total blob size. Pass deleted = NULL to only count.
 */
int	store_model_prune(struct store *st, size_t keep, uint64_t keep_also,
	    uint64_t **deleted, size_t *n, uint64_t *bytes);

/* Devices. put inserts or updates (registration). */
int	store_device_put(struct store *st, const struct store_device *d);
int	store_device_list(struct store *st, struct store_device **out,
	    size_t *n);
int	store_device_count(struct store *st, uint64_t *n);

/*
 * Patches, idempotent by (device_id, request_id): a resend of a stored
 * request sets *dup and returns the stored id without writing.
 */
int	store_patch_put(struct store *st, const struct store_patch *p,
	    uint64_t *id, int *dup);
int	store_patch_count(struct store *st, uint64_t *n);
/* Patches with base_version >= min_base (all fields; free with below). */
int	store_patch_list(struct store *st, uint64_t min_base,
	    struct store_patch **out, size_t *n);
void	store_patch_free(struct store_patch *p, size_t n);

#endif
