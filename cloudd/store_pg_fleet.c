/*
 * store_pg_fleet: the PostgreSQL backend's devices, patches,
 * authentication keys, leadership and tasks (store_pg.c has the
 * connection, the helpers and the ops table).
 */
#include <errno.h>
#include <libpq-fe.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cloudd/store.h"
#include "cloudd/store_impl.h"
#include "cloudd/store_pg_impl.h"
#include "shared/data/dataset.h"
#include "shared/xmalloc.h"

/* --- devices ------------------------------------------------------------- */

int
pg_device_put(struct store *base, const struct store_device *d)
{
	struct pg *st = PG(base);
	struct args a = { 0 };

	a_text(&a, d->id);
	a_i64(&a, d->user_id);
	a_text(&a, d->compute_class);
	a_i64(&a, d->memory_mb);
	a_i64(&a, d->last_seen);
	return cmd(st, "device put", "INSERT INTO devices VALUES($1, $2, $3, "
	    "$4, $5, $5) ON CONFLICT(device_id) DO UPDATE SET user_id = "
	    "EXCLUDED.user_id, compute_class = EXCLUDED.compute_class, "
	    "memory_mb = EXCLUDED.memory_mb, last_seen = EXCLUDED.last_seen",
	    &a);
}

static void
read_device(const PGresult *r, int i, struct store_device *d)
{
	memset(d, 0, sizeof(*d));
	g_text(r, i, 0, d->id, sizeof(d->id));
	d->user_id = (uint32_t)g_i64(r, i, 1);
	g_text(r, i, 2, d->compute_class, sizeof(d->compute_class));
	d->memory_mb = (uint32_t)g_i64(r, i, 3);
	d->registered = g_i64(r, i, 4);
	d->last_seen = g_i64(r, i, 5);
	if (PQnfields(r) > 6)
		d->patches = (uint64_t)g_i64(r, i, 6);
}

int
pg_device_get(struct store *base, const char *id, struct store_device *d)
{
	struct pg *st = PG(base);
	struct args a = { 0 };
	PGresult *r;
	int rc = -ENOENT;

	a_text(&a, id);
	if (q(st, "device get", "SELECT device_id, user_id, compute_class, "
	    "memory_mb, registered, last_seen FROM devices WHERE device_id = "
	    "$1", &a, &r) != 0)
		return -EIO;
	if (PQntuples(r) == 1) {
		read_device(r, 0, d);
		rc = 0;
	}
	PQclear(r);
	return rc;
}

int
pg_device_list(struct store *base, struct store_device **out, size_t *n)
{
	struct pg *st = PG(base);
	PGresult *r;

	*n = 0;
	*out = NULL;
	if (q(st, "device list", "SELECT d.device_id, d.user_id, "
	    "d.compute_class, d.memory_mb, d.registered, d.last_seen, (SELECT "
	    "count(*) FROM patches p WHERE p.device_id = d.device_id) FROM "
	    "devices d ORDER BY d.device_id COLLATE \"C\"", NULL, &r) != 0)
		return -EIO;
	*n = (size_t)PQntuples(r);
	*out = xcalloc(*n + 1, sizeof(**out));
	for (size_t i = 0; i < *n; i++)
		read_device(r, (int)i, &(*out)[i]);
	PQclear(r);
	return 0;
}

int
pg_device_count(struct store *base, uint64_t *n)
{
	return count(PG(base), "SELECT count(*) FROM devices", n);
}

int
pg_user_device_count(struct store *base, uint32_t user, uint64_t *n)
{
	char q[96];

	snprintf(q, sizeof(q), "SELECT count(*) FROM devices WHERE "
	    "user_id = %u", user);
	return count(PG(base), q, n);
}

/* --- patches ------------------------------------------------------------- */

int
pg_patch_put(struct store *base, const struct store_patch *p, uint32_t keep,
    uint64_t *id, int *dup)
{
	struct pg *st = PG(base);
	struct args a = { 0 };
	PGresult *r;

	*dup = 0;
	a_text(&a, p->device_id);
	a_i64(&a, p->user_id);
	a_i64(&a, (int64_t)p->request_id);
	a_i64(&a, (int64_t)p->base_version);
	a_text(&a, p->kind);
	a_i64(&a, p->created);
	a_i64(&a, (int64_t)p->size);
	a_bytes(&a, p->blob, p->size);
	if (q(st, "patch insert", "INSERT INTO patches(device_id, user_id, "
	    "request_id, base_version, kind, created, size, blob) VALUES($1, "
	    "$2, $3, $4, $5, $6, $7, $8) ON CONFLICT(device_id, request_id) DO "
	    "NOTHING RETURNING id", &a, &r) != 0)
		return -EIO;
	if (PQntuples(r) == 1) {
		*id = (uint64_t)g_i64(r, 0, 0);
		PQclear(r);
		if (keep == 0)
			return 0;
		/* The device's newest keep stay (limits.patches-per-device). */
		a.n = 0;
		a_text(&a, p->device_id);
		a_i64(&a, keep);
		return cmd(st, "patch retention", "DELETE FROM patches WHERE "
		    "device_id = $1 AND id < (SELECT min(id) FROM (SELECT id "
		    "FROM patches WHERE device_id = $1 ORDER BY id DESC LIMIT "
		    "$2) AS k)", &a) != 0 ? -EIO : 0;
	}
	PQclear(r);
	/* Already stored under this request id: a resend. */
	*dup = 1;
	a.n = 0;
	a_text(&a, p->device_id);
	a_i64(&a, (int64_t)p->request_id);
	if (q(st, "patch find", "SELECT id FROM patches WHERE device_id = $1 "
	    "AND request_id = $2", &a, &r) != 0)
		return -EIO;
	if (PQntuples(r) != 1) {
		PQclear(r);
		snprintf(st->base.err, sizeof(st->base.err), "patch find: "
		    "conflicting row vanished");
		return -EIO;
	}
	*id = (uint64_t)g_i64(r, 0, 0);
	PQclear(r);
	return 0;
}

int
pg_patch_count(struct store *base, uint64_t *n)
{
	return count(PG(base), "SELECT count(*) FROM patches", n);
}

int
pg_patch_list(struct store *base, uint64_t min_base, struct store_patch **out,
    size_t *n)
{
	struct pg *st = PG(base);
	struct args a = { 0 };
	PGresult *r;

	*n = 0;
	*out = NULL;
	a_i64(&a, (int64_t)min_base);
	if (q(st, "patch list", "SELECT id, device_id, user_id, request_id, "
	    "base_version, kind, created, size, blob FROM patches WHERE "
	    "base_version >= $1 ORDER BY id", &a, &r) != 0)
		return -EIO;
	*n = (size_t)PQntuples(r);
	*out = xcalloc(*n + 1, sizeof(**out));
	for (size_t i = 0; i < *n; i++) {
		struct store_patch *p = &(*out)[i];
		int row = (int)i;
		size_t sz = (size_t)PQgetlength(r, row, 8);

		p->id = (uint64_t)g_i64(r, row, 0);
		g_text(r, row, 1, p->device_id, sizeof(p->device_id));
		p->user_id = (uint32_t)g_i64(r, row, 2);
		p->request_id = (uint64_t)g_i64(r, row, 3);
		p->base_version = (uint64_t)g_i64(r, row, 4);
		g_text(r, row, 5, p->kind, sizeof(p->kind));
		p->created = g_i64(r, row, 6);
		p->size = sz;
		p->blob = xmalloc(sz ? sz : 1);
		memcpy(p->blob, PQgetvalue(r, row, 8), sz);
	}
	PQclear(r);
	return 0;
}

int
pg_patch_pending(struct store *base, uint64_t min_base, uint64_t max_base,
    uint32_t *users, int64_t *first)
{
	struct pg *st = PG(base);
	struct args a = { 0 };
	PGresult *r;

	a_i64(&a, (int64_t)min_base);
	a_i64(&a, (int64_t)max_base);
	if (q(st, "patch pending", "SELECT count(DISTINCT user_id), "
	    "coalesce(min(created), 0)::bigint FROM patches WHERE distilled = 0 "
	    "AND base_version BETWEEN $1 AND $2 AND kind = 'metapatch'", &a,
	    &r) != 0)
		return -EIO;
	*users = (uint32_t)g_i64(r, 0, 0);
	*first = g_i64(r, 0, 1);
	PQclear(r);
	return 0;
}

/* One statement, so atomic without a transaction: ids as an array. */
int
pg_patch_used(struct store *base, const uint64_t *ids, size_t n, uint64_t run)
{
	struct pg *st = PG(base);
	struct args a = { 0 };
	size_t cap = n * 21 + 3, off = 0;
	char *arr = xmalloc(cap);
	int rc;

	arr[off++] = '{';
	for (size_t i = 0; i < n; i++)
		off += (size_t)snprintf(arr + off, cap - off, "%s%llu",
		    i ? "," : "", (unsigned long long)ids[i]);
	arr[off++] = '}';
	arr[off] = '\0';
	a_i64(&a, (int64_t)run);
	a_text(&a, arr);
	rc = cmd(st, "patch used", "UPDATE patches SET distilled = $1 WHERE "
	    "id = ANY($2::bigint[])", &a);
	free(arr);
	return rc;
}

/* --- authentication ------------------------------------------------------ */

int
pg_cloud_key(struct store *base, const uint8_t *cand_pk,
    const uint8_t *cand_sk, uint8_t *pk, uint8_t *sk, int *created)
{
	struct pg *st = PG(base);
	struct args a = { 0 };
	PGresult *r;
	int rc = 0;

	/*
	 * Insert-if-absent, then read back. A replica racing us waits on
	 * the primary key until the first insert commits, then inserts
	 * nothing, so every replica reads the same pair.
	 */
	a_bytes(&a, cand_pk, 32);
	a_bytes(&a, cand_sk, 32);
	if (q(st, "cloud key insert", "INSERT INTO cloud_key VALUES(1, $1, "
	    "$2, " NOW_SQL ") ON CONFLICT (id) DO NOTHING RETURNING id", &a,
	    &r) != 0)
		return -EIO;
	*created = PQntuples(r) == 1;
	PQclear(r);
	if (q(st, "cloud key read", "SELECT pk, sk FROM cloud_key WHERE id = "
	    "1", NULL, &r) != 0)
		return -EIO;
	if (PQntuples(r) == 1 && PQgetlength(r, 0, 0) == 32 &&
	    PQgetlength(r, 0, 1) == 32) {
		memcpy(pk, PQgetvalue(r, 0, 0), 32);
		memcpy(sk, PQgetvalue(r, 0, 1), 32);
	} else {
		snprintf(st->base.err, sizeof(st->base.err), "cloud key: "
		    "missing or malformed row");
		rc = -EIO;
	}
	PQclear(r);
	return rc;
}

int
pg_authkey_put(struct store *base, const struct store_authkey *k,
    int replace, int *how)
{
	struct pg *st = PG(base);
	struct args a = { 0 };
	PGresult *r = NULL;
	int rc, same;

	if ((rc = exec(st, "BEGIN")) != 0)
		return rc;
	a_text(&a, k->device_id);
	a_bytes(&a, k->pk, 32);
	a_i64(&a, (int64_t)k->counter);
	a_i64(&a, k->enrolled);
	if ((rc = q(st, "key put", "INSERT INTO device_keys VALUES($1, $2, "
	    "$3, $4) ON CONFLICT (device_id) DO NOTHING RETURNING 1", &a,
	    &r)) != 0)
		goto fail;
	if (PQntuples(r) == 1) {
		PQclear(r);
		*how = STORE_AUTHKEY_NEW;
		return exec(st, "COMMIT");
	}
	PQclear(r);
	/* Present: decide under the row lock, so a racing put waits. */
	a.n = 0;
	a_text(&a, k->device_id);
	if ((rc = q(st, "key put", "SELECT pk FROM device_keys WHERE "
	    "device_id = $1 FOR UPDATE", &a, &r)) != 0)
		goto fail;
	if (PQntuples(r) != 1) {
		PQclear(r);
		snprintf(st->base.err, sizeof(st->base.err), "key put: "
		    "conflicting row vanished");
		rc = -EIO;
		goto fail;
	}
	same = PQgetlength(r, 0, 0) == 32 &&
	    memcmp(PQgetvalue(r, 0, 0), k->pk, 32) == 0;
	PQclear(r);
	if (!same && !replace) {
		snprintf(st->base.err, sizeof(st->base.err), "device %s is "
		    "enrolled with another key", k->device_id);
		rc = -EEXIST;
		goto fail;
	}
	a.n = 0;
	a_text(&a, k->device_id);
	a_bytes(&a, k->pk, 32);
	a_i64(&a, (int64_t)k->counter);
	if (same) {
		*how = STORE_AUTHKEY_SAME;
		rc = cmd(st, "key put", "UPDATE device_keys SET counter = "
		    "greatest(counter, $3) WHERE device_id = $1 AND pk = $2",
		    &a);
	} else {
		*how = STORE_AUTHKEY_REPLACED;
		a_i64(&a, k->enrolled);
		rc = cmd(st, "key put", "UPDATE device_keys SET pk = $2, "
		    "counter = $3, enrolled = $4 WHERE device_id = $1", &a);
	}
	if (rc != 0 || (rc = exec(st, "COMMIT")) != 0)
		goto fail;
	return 0;
fail:
	rollback(st);
	return rc;
}

static void
read_authkey(const PGresult *r, int i, struct store_authkey *k)
{
	memset(k, 0, sizeof(*k));
	g_text(r, i, 0, k->device_id, sizeof(k->device_id));
	if (PQgetlength(r, i, 1) == 32)
		memcpy(k->pk, PQgetvalue(r, i, 1), 32);
	k->counter = (uint64_t)g_i64(r, i, 2);
	k->enrolled = g_i64(r, i, 3);
}

int
pg_authkey_get(struct store *base, const char *id, struct store_authkey *k)
{
	struct pg *st = PG(base);
	struct args a = { 0 };
	PGresult *r;
	int rc = -ENOENT;

	a_text(&a, id);
	if (q(st, "key get", "SELECT device_id, pk, counter, enrolled FROM "
	    "device_keys WHERE device_id = $1", &a, &r) != 0)
		return -EIO;
	if (PQntuples(r) == 1) {
		read_authkey(r, 0, k);
		rc = 0;
	}
	PQclear(r);
	return rc;
}

int
pg_authkey_list(struct store *base, struct store_authkey **out, size_t *n)
{
	struct pg *st = PG(base);
	PGresult *r;

	if (q(st, "key list", "SELECT device_id, pk, counter, enrolled FROM "
	    "device_keys ORDER BY device_id COLLATE \"C\"", NULL, &r) != 0)
		return -EIO;
	*n = (size_t)PQntuples(r);
	*out = xcalloc(*n + 1, sizeof(**out));
	for (size_t i = 0; i < *n; i++)
		read_authkey(r, (int)i, &(*out)[i]);
	PQclear(r);
	return 0;
}

/* Appends s as a quoted element to the array literal b ("{" so far). */
static void
arr_put(char **b, size_t *len, size_t *cap, const char *s)
{
	size_t need = *len + 2 * strlen(s) + 5;

	if (need > *cap) {
		*cap = need * 2;
		*b = xreallocarray(*b, *cap, 1);
	}
	if (*len > 1)
		(*b)[(*len)++] = ',';
	(*b)[(*len)++] = '"';
	for (; *s; s++) {
		if (*s == '"' || *s == '\\')
			(*b)[(*len)++] = '\\';
		(*b)[(*len)++] = *s;
	}
	(*b)[(*len)++] = '"';
	(*b)[*len] = '\0';
}

int
pg_authkey_counters(struct store *base, const struct store_authkey *k,
    size_t n)
{
	struct pg *st = PG(base);
	struct args a = { 0 };
	char *arr[3], num[24], hex[65];
	size_t len[3], cap[3];
	int rc;

	/*
	 * One statement for the whole batch (arrays of ids, counters and
	 * keys): a round trip per device would hold the loop thread for
	 * each. Rows are locked in id order, so two replicas flushing
	 * overlapping devices at once cannot deadlock.
	 */
	for (int j = 0; j < 3; j++) {
		cap[j] = 64 + n * (j == 2 ? 70 : j == 1 ? 24 : 140);
		arr[j] = xmalloc(cap[j]);
		arr[j][0] = '{';
		arr[j][1] = '\0';
		len[j] = 1;
	}
	for (size_t i = 0; i < n; i++) {
		snprintf(num, sizeof(num), "%lld", (long long)k[i].counter);
		for (int b = 0; b < 32; b++)
			snprintf(hex + 2 * b, 3, "%02x", k[i].pk[b]);
		arr_put(&arr[0], &len[0], &cap[0], k[i].device_id);
		arr_put(&arr[1], &len[1], &cap[1], num);
		arr_put(&arr[2], &len[2], &cap[2], hex);
	}
	for (int j = 0; j < 3; j++) {
		if (len[j] + 2 > cap[j])
			arr[j] = xreallocarray(arr[j], cap[j] = len[j] + 2, 1);
		arr[j][len[j]++] = '}';
		arr[j][len[j]] = '\0';
		a_text(&a, arr[j]);
	}
	rc = cmd(st, "counters", "WITH v AS (SELECT i, c, decode(p, 'hex') AS "
	    "pk FROM unnest($1::text[], $2::bigint[], $3::text[]) AS u(i, c, "
	    "p)), l AS (SELECT d.device_id FROM device_keys d JOIN v ON "
	    "d.device_id = v.i AND d.pk = v.pk AND d.counter < v.c ORDER BY "
	    "d.device_id FOR UPDATE OF d) UPDATE device_keys d SET counter = "
	    "v.c FROM v WHERE d.device_id = v.i AND d.pk = v.pk AND "
	    "d.counter < v.c AND d.device_id IN (SELECT device_id FROM l)", &a);
	for (int j = 0; j < 3; j++)
		free(arr[j]);
	return rc;
}

/* --- leadership and tasks ------------------------------------------------ */

int
pg_leader_try(struct store *base, int *leader)
{
	struct pg *st = PG(base);
	char sql[96];
	PGresult *r;

	*leader = 0;
	/* A lost session lost its lock too: reconnect, then try again. */
	ensure_conn(st);
	if (PQstatus(st->c) != CONNECTION_OK)
		return fail_pg(st, "leader connection", NULL);
	if (st->leader) {
		/* Still ours while the session lives. */
		if (q(st, "leader check", "SELECT 1", NULL, &r) != 0) {
			st->leader = 0;
			return -EIO;
		}
		PQclear(r);
		*leader = 1;
		return 0;
	}
	snprintf(sql, sizeof(sql), "SELECT pg_try_advisory_lock(%lld)",
	    (long long)STORE_PG_LOCK_LEADER);
	if (q(st, "leader lock", sql, NULL, &r) != 0)
		return -EIO;
	st->leader = *leader = PQntuples(r) == 1 && g_i64(r, 0, 0) != 0;
	PQclear(r);
	return 0;
}

int
pg_task_add(struct store *base, const char *kind, int64_t arg, uint64_t *id)
{
	struct pg *st = PG(base);
	struct args a = { 0 };
	PGresult *r;

	a_text(&a, kind);
	a_i64(&a, arg);
	if (q(st, "task add", "INSERT INTO tasks(kind, arg, created) VALUES("
	    "$1, $2, " NOW_SQL ") RETURNING id", &a, &r) != 0)
		return -EIO;
	*id = (uint64_t)g_i64(r, 0, 0);
	PQclear(r);
	return 0;
}

int
pg_task_next(struct store *base, struct store_task *t)
{
	struct pg *st = PG(base);
	PGresult *r;
	int rc = -ENOENT;

	if (q(st, "task next", "SELECT id, kind, arg, created FROM tasks WHERE "
	    "done IS NULL ORDER BY id LIMIT 1", NULL, &r) != 0)
		return -EIO;
	if (PQntuples(r) == 1) {
		memset(t, 0, sizeof(*t));
		t->id = (uint64_t)g_i64(r, 0, 0);
		g_text(r, 0, 1, t->kind, sizeof(t->kind));
		t->arg = g_i64(r, 0, 2);
		t->created = g_i64(r, 0, 3);
		rc = 0;
	}
	PQclear(r);
	return rc;
}

int
pg_task_done(struct store *base, uint64_t id, uint64_t result)
{
	struct pg *st = PG(base);
	struct args a = { 0 };
	PGresult *r;
	int rc;

	a_i64(&a, (int64_t)id);
	a_i64(&a, (int64_t)result);
	if (q(st, "task done", "UPDATE tasks SET done = " NOW_SQL ", result = "
	    "$2 WHERE id = $1 AND done IS NULL", &a, &r) != 0)
		return -EIO;
	rc = changes(r) == 1 ? 0 : -ENOENT;
	PQclear(r);
	return rc;
}

