/*
 * store: the cloud's persistent state behind one small interface, so that
 * handlers never see SQL. Two backends with the same schema and
 * migrations: SQLite (store_sqlite.c, the embedded default, one cloudd per
 * database) and PostgreSQL (store_pg.c, shared by several cloudd
 * replicas). store.c dispatches.
 *
 * A struct store is one database connection: use it from one thread at a
 * time. Workers open their own (store_open on the same target). Outside
 * store_begin/store_commit every write returns only after its transaction
 * committed, so a caller may acknowledge once it returns 0; inside, a
 * write is durable only once store_commit returned 0. Functions return 0
 * or a negative errno (-ENOENT when a row is missing, -EIO on a database
 * error; the message is in store_errmsg()).
 */
#ifndef CLOUDD_STORE_H
#define CLOUDD_STORE_H

#include <stddef.h>
#include <stdint.h>

#include "shared/data/sample.h"

#define STORE_SCHEMA_VERSION 6

/*
 * PostgreSQL advisory lock keys (one namespace per database): migrations
 * run under the first (transaction lock), the replica that holds the
 * second (session lock, on a connection of its own) is the leader.
 */
#define STORE_PG_LOCK_MIGRATE	0x6463636c0001LL	/* "dccl" 1 */
#define STORE_PG_LOCK_LEADER	0x6463636c0002LL

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

/*
 * A device's enrolled public key (cloudd/guard.c). counter is the
 * high-water mark of the request counters accepted from it, written
 * lazily by the replicas (see store_authkey_counters).
 */
struct store_authkey {
	char		device_id[65];
	uint8_t		pk[32];
	uint64_t	counter;
	int64_t		enrolled;	/* unix time of the (re-)enrolment */
};

/* What store_authkey_put did. */
enum store_authkey_how {
	STORE_AUTHKEY_NEW = 0,		/* inserted */
	STORE_AUTHKEY_SAME = 1,		/* already there with this key */
	STORE_AUTHKEY_REPLACED = 2,	/* another key was replaced */
};

/* Work that must happen once, done by the leader (see store_task_*). */
struct store_task {
	uint64_t	id;
	char		kind[16];	/* "train" */
	int64_t		arg;		/* train: epochs (0 = configured) */
	int64_t		created;
};

/*
 * backend: "sqlite" (target: a file path) or "postgresql" (target: a libpq
 * connection string; error messages never repeat it, as it may hold a
 * password). On failure *out is NULL and err says why.
 */
int	store_open(struct store **out, const char *backend, const char *target,
	    int busy_ms, char *err, size_t errlen);
void	store_close(struct store *st);
const char *store_errmsg(struct store *st);
const char *store_backend(struct store *st);	/* "sqlite", "postgresql" */
int	store_schema_version(struct store *st);

/*
 * An explicit transaction around several store_patch_put calls (the group
 * commit of uploads, cloudd/upload.c); nothing else may run inside one,
 * as the other writes open transactions of their own. SQLite: BEGIN
 * IMMEDIATE, so the write lock is taken up front (waiting up to busy_ms)
 * rather than failing at the first insert. PostgreSQL: BEGIN; a connection
 * lost inside the transaction is not silently reopened (the next write
 * fails instead of committing on its own). After any failed call inside,
 * or a failed store_commit, call store_rollback: it ends whatever is left
 * of the transaction (SQLite rolls some failures back by itself) and may
 * be called when none is open. A store_commit that failed may still have
 * committed (the connection died after the server committed), so retry
 * the writes idempotently, never assume they are absent.
 */
int	store_begin(struct store *st);
int	store_commit(struct store *st);
void	store_rollback(struct store *st);

/*
 * WAL checkpoints (SQLite; no-ops on PostgreSQL). A checkpoint writes the
 * log back into the database and syncs it: 100+ ms on a slow disk. By
 * default SQLite runs one inside whichever commit crosses 1000 log pages;
 * store_wal_manual() turns that off on this connection (the loop's), and
 * store_wal_checkpoint() runs a passive one, which never blocks writers
 * (cloudd/ckpt.c, on a thread and connection of its own).
 */
int	store_wal_manual(struct store *st);
int	store_wal_checkpoint(struct store *st);

/* Pool. Inserts every sample of ds in one transaction. */
int	store_pool_insert(struct store *st, const struct dataset *ds,
	    uint64_t *rows);
/*
 * Same, with the feature schema the samples follow (schema's canonical
 * text, shared/data/schema.h; NULL = none), stored with the pool in the
 * same transaction. A pool keeps one schema: -EEXIST (nothing inserted)
 * when the pool has a schema and this one differs or is NULL, or when it
 * has samples but no schema and this import brings one. ds's side values
 * (n_side of them per sample) are stored per sample.
 */
int	store_pool_insert_schema(struct store *st, const struct dataset *ds,
	    const char *schema, uint64_t *rows);
/* The pool's schema text (malloc'ed, NUL-terminated); -ENOENT if none. */
int	store_pool_schema(struct store *st, char **schema);
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
 * their total blob size. Pass deleted = NULL to only count. A deleted
 * version's Forward-OFA model (below) is deleted with it.
 */
int	store_model_prune(struct store *st, size_t keep, uint64_t keep_also,
	    uint64_t **deleted, size_t *n, uint64_t *bytes);

/*
 * Forward-OFA models (cloudd/ofa_train.c): one packed OFA model (kind
 * "ofa": base and every block) per CTR version whose embedding tables it
 * uses. put inserts or replaces, and returns -ENOENT when that CTR version
 * is not stored (pruned meanwhile); get allocates *blob (caller frees) and
 * returns -ENOENT when that version has none.
 */
int	store_ofa_put(struct store *st, uint64_t base_version,
	    const void *blob, size_t len);
int	store_ofa_get(struct store *st, uint64_t base_version, void **blob,
	    size_t *len);

/* Devices. put inserts or updates (registration). */
int	store_device_put(struct store *st, const struct store_device *d);
/* One device by id; -ENOENT if it never registered. */
int	store_device_get(struct store *st, const char *id,
	    struct store_device *d);
int	store_device_list(struct store *st, struct store_device **out,
	    size_t *n);
int	store_device_count(struct store *st, uint64_t *n);
/* Device ids bound to user. */
int	store_user_device_count(struct store *st, uint32_t user, uint64_t *n);

/*
 * Patches, idempotent by (device_id, request_id): a resend of a stored
 * request sets *dup and returns the stored id without writing. Inside a
 * transaction a request put earlier in the same transaction counts as
 * stored. A new patch then leaves its device's newest keep patches and
 * deletes the older ones in the same statement group (keep 0: all stay;
 * limits.patches-per-device).
 */
int	store_patch_put(struct store *st, const struct store_patch *p,
	    uint32_t keep, uint64_t *id, int *dup);
int	store_patch_count(struct store *st, uint64_t *n);
/* Patches with base_version >= min_base (all fields; free with below). */
int	store_patch_list(struct store *st, uint64_t min_base,
	    struct store_patch **out, size_t *n);
void	store_patch_free(struct store_patch *p, size_t n);
/*
 * Distillation's bookkeeping (cloudd/distill.c), kept with the patches so
 * it holds across restarts and replicas, and a patch that commits late
 * under a lower id than one a run used still counts. pending: the number
 * of distinct users with a "metapatch" patch no run has used whose
 * base_version is in [min_base, max_base], and the oldest such patch's
 * created (0 if none). used: records that the run on version run (>= 1)
 * used the patches ids[0..n) (one transaction; unknown ids are skipped).
 */
int	store_patch_pending(struct store *st, uint64_t min_base,
	    uint64_t max_base, uint32_t *users, int64_t *first);
int	store_patch_used(struct store *st, const uint64_t *ids, size_t n,
	    uint64_t run);

/*
 * Authentication state, shared by every replica of one store (guard.c).
 *
 * The cloud's X25519 key pair, made once: stores cand_pk/cand_sk when the
 * store has no key pair yet, then reads back the one stored into pk/sk,
 * so replicas starting together all end with the same pair (the first
 * insert wins; the others' candidates are dropped). *created = 1 when the
 * candidate was stored. The secret key is in the store: whoever can read
 * the database can act as the cloud.
 */
int	store_cloud_key(struct store *st, const uint8_t cand_pk[32],
	    const uint8_t cand_sk[32], uint8_t pk[32], uint8_t sk[32],
	    int *created);
/*
 * Enrols k (device_id, pk, counter, enrolled) atomically. Absent: inserted
 * (*how NEW). Present with the same pk: its counter is raised to
 * k->counter if that is higher, nothing else changes (SAME). Present with
 * another pk: with replace, pk, counter and enrolled are overwritten
 * (REPLACED); without, -EEXIST and nothing is written.
 */
int	store_authkey_put(struct store *st, const struct store_authkey *k,
	    int replace, int *how);
/* One device's key; -ENOENT if it never enrolled. */
int	store_authkey_get(struct store *st, const char *id,
	    struct store_authkey *k);
/* Every enrolled key (caller frees *out), ordered by device id. */
int	store_authkey_list(struct store *st, struct store_authkey **out,
	    size_t *n);
/*
 * Raises the stored counters to k[i].counter in one transaction (a
 * max-merge: never lowers one), each only while the stored pk is still
 * k[i].pk, so a flush of a replica that missed a re-enrolment cannot touch
 * the new key's counter. Ids not enrolled are skipped.
 */
int	store_authkey_counters(struct store *st, const struct store_authkey *k,
	    size_t n);

/*
 * Leadership among replicas. Tries to take the leader lock on this
 * connection; *leader = 1 while this connection holds it. PostgreSQL: a
 * session-level pg_try_advisory_lock, so keep a connection for it alone;
 * the server drops the lock when the connection dies (the leader's process
 * exits or is killed), and another replica's next try takes it. A call
 * while leading checks that the connection is still alive: if it is not,
 * *leader = 0 and -EIO. SQLite: one process per database, always leader.
 */
int	store_leader_try(struct store *st, int *leader);

/*
 * Tasks: work that must happen once (a training request), recorded so
 * that any replica can accept it and whichever leads runs it; if the
 * leader dies mid-job the task stays pending for the next leader. next
 * gives the oldest pending task (-ENOENT if none); done marks it with a
 * result (train: the model version made).
 */
int	store_task_add(struct store *st, const char *kind, int64_t arg,
	    uint64_t *id);
int	store_task_next(struct store *st, struct store_task *t);
int	store_task_done(struct store *st, uint64_t id, uint64_t result);

#endif
