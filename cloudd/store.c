/*
 * store: the backend-neutral half of store.h. store_open picks the backend
 * by name (store_sqlite.c, store_pg.c); every other call goes through the
 * connection's ops table. Errors stay in the connection (store_errmsg).
 * Same threading rule as the backends: one connection, one thread at a time.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cloudd/store.h"
#include "cloudd/store_impl.h"

int
store_open(struct store **out, const char *backend, const char *target,
    int busy_ms, char *err, size_t errlen)
{
	*out = NULL;
	if (strcmp(backend, "sqlite") == 0)
		return store_sqlite_open(out, target, busy_ms, err, errlen);
	if (strcmp(backend, "postgresql") == 0)
		return store_pg_open(out, target, busy_ms, err, errlen);
	snprintf(err, errlen, "unknown store backend '%s'", backend);
	return -EINVAL;
}

void
store_close(struct store *st)
{
	if (st != NULL)
		st->ops->close(st);
}

const char *
store_errmsg(struct store *st)
{
	return st->err;
}

const char *
store_backend(struct store *st)
{
	return st->ops->name;
}

/* A backend without them (ops NULL) says so instead of crashing. */
int
store_ofa_put(struct store *st, uint64_t base_version, const void *blob,
    size_t len)
{
	if (st->ops->ofa_put == NULL) {
		snprintf(st->err, sizeof(st->err), "%s: no OFA models",
		    st->ops->name);
		return -ENOTSUP;
	}
	return st->ops->ofa_put(st, base_version, blob, len);
}

int
store_ofa_get(struct store *st, uint64_t base_version, void **blob,
    size_t *len)
{
	*blob = NULL;
	*len = 0;
	if (st->ops->ofa_get == NULL) {
		snprintf(st->err, sizeof(st->err), "%s: no OFA models",
		    st->ops->name);
		return -ENOTSUP;
	}
	return st->ops->ofa_get(st, base_version, blob, len);
}

int
store_schema_version(struct store *st)
{
	return st->ops->schema_version(st);
}

int
store_begin(struct store *st)
{
	return st->ops->begin(st);
}

int
store_commit(struct store *st)
{
	return st->ops->commit(st);
}

void
store_rollback(struct store *st)
{
	st->ops->rollback(st);
}

int
store_wal_manual(struct store *st)
{
	return st->ops->wal_manual ? st->ops->wal_manual(st) : 0;
}

int
store_wal_checkpoint(struct store *st)
{
	return st->ops->wal_checkpoint ? st->ops->wal_checkpoint(st) : 0;
}

int
store_pool_insert(struct store *st, const struct dataset *ds, uint64_t *rows)
{
	return st->ops->pool_insert(st, ds, NULL, rows);
}

int
store_pool_insert_schema(struct store *st, const struct dataset *ds,
    const char *schema, uint64_t *rows)
{
	return st->ops->pool_insert(st, ds, schema, rows);
}

int
store_pool_schema(struct store *st, char **schema)
{
	return st->ops->pool_schema(st, schema);
}

int
store_pool_count(struct store *st, uint64_t *n)
{
	return st->ops->pool_count(st, n);
}

int
store_pool_load(struct store *st, struct dataset *ds, uint64_t **rowid)
{
	return st->ops->pool_load(st, ds, rowid);
}

int
store_pool_set_repr(struct store *st, const uint64_t *rowid,
    const float *repr, size_t n, int dim, uint64_t version)
{
	return st->ops->pool_set_repr(st, rowid, repr, n, dim, version);
}

int
store_pool_get_repr(struct store *st, float *repr, size_t n, int dim,
    uint64_t version)
{
	return st->ops->pool_get_repr(st, repr, n, dim, version);
}

int
store_model_put(struct store *st, const struct store_model_info *mi,
    const void *blob, size_t len)
{
	return st->ops->model_put(st, mi, blob, len);
}

int
store_model_info(struct store *st, uint64_t version,
    struct store_model_info *mi)
{
	return st->ops->model_info(st, version, mi);
}

int
store_model_read(struct store *st, uint64_t version, uint64_t off, void *buf,
    size_t len)
{
	return st->ops->model_read(st, version, off, buf, len);
}

int
store_model_list(struct store *st, struct store_model_info **out, size_t *n)
{
	return st->ops->model_list(st, out, n);
}

int
store_model_copy(struct store *st, uint64_t from, struct store_model_info *mi)
{
	return st->ops->model_copy(st, from, mi);
}

int
store_model_delete(struct store *st, uint64_t version)
{
	return st->ops->model_delete(st, version);
}

int
store_model_prune(struct store *st, size_t keep, uint64_t keep_also,
    uint64_t **deleted, size_t *n, uint64_t *bytes)
{
	return st->ops->model_prune(st, keep, keep_also, deleted, n, bytes);
}

int
store_device_put(struct store *st, const struct store_device *d)
{
	return st->ops->device_put(st, d);
}

int
store_device_get(struct store *st, const char *id, struct store_device *d)
{
	return st->ops->device_get(st, id, d);
}

int
store_device_list(struct store *st, struct store_device **out, size_t *n)
{
	return st->ops->device_list(st, out, n);
}

int
store_device_count(struct store *st, uint64_t *n)
{
	return st->ops->device_count(st, n);
}

int
store_user_device_count(struct store *st, uint32_t user, uint64_t *n)
{
	return st->ops->user_device_count(st, user, n);
}

int
store_patch_put(struct store *st, const struct store_patch *p,
    uint32_t keep, uint64_t *id, int *dup)
{
	return st->ops->patch_put(st, p, keep, id, dup);
}

int
store_patch_count(struct store *st, uint64_t *n)
{
	return st->ops->patch_count(st, n);
}

int
store_patch_list(struct store *st, uint64_t min_base, struct store_patch **out,
    size_t *n)
{
	return st->ops->patch_list(st, min_base, out, n);
}

int
store_patch_pending(struct store *st, uint64_t min_base, uint64_t max_base,
    uint32_t *users, int64_t *first)
{
	*users = 0;
	*first = 0;
	return st->ops->patch_pending(st, min_base, max_base, users, first);
}

int
store_patch_used(struct store *st, const uint64_t *ids, size_t n,
    uint64_t run)
{
	if (n == 0)
		return 0;
	return st->ops->patch_used(st, ids, n, run);
}

void
store_patch_free(struct store_patch *p, size_t n)
{
	if (p == NULL)
		return;
	for (size_t i = 0; i < n; i++)
		free(p[i].blob);
	free(p);
}

int
store_cloud_key(struct store *st, const uint8_t cand_pk[32],
    const uint8_t cand_sk[32], uint8_t pk[32], uint8_t sk[32], int *created)
{
	*created = 0;
	return st->ops->cloud_key(st, cand_pk, cand_sk, pk, sk, created);
}

int
store_authkey_put(struct store *st, const struct store_authkey *k,
    int replace, int *how)
{
	*how = STORE_AUTHKEY_NEW;
	return st->ops->authkey_put(st, k, replace, how);
}

int
store_authkey_get(struct store *st, const char *id, struct store_authkey *k)
{
	return st->ops->authkey_get(st, id, k);
}

int
store_authkey_list(struct store *st, struct store_authkey **out, size_t *n)
{
	*out = NULL;
	*n = 0;
	return st->ops->authkey_list(st, out, n);
}

int
store_authkey_counters(struct store *st, const struct store_authkey *k,
    size_t n)
{
	if (n == 0)
		return 0;
	return st->ops->authkey_counters(st, k, n);
}

int
store_leader_try(struct store *st, int *leader)
{
	return st->ops->leader_try(st, leader);
}

int
store_task_add(struct store *st, const char *kind, int64_t arg, uint64_t *id)
{
	return st->ops->task_add(st, kind, arg, id);
}

int
store_task_next(struct store *st, struct store_task *t)
{
	return st->ops->task_next(st, t);
}

int
store_task_done(struct store *st, uint64_t id, uint64_t result)
{
	return st->ops->task_done(st, id, result);
}
