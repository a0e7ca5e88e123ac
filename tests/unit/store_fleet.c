/*
 * test_store, the fleet: devices, patches (duplicates, transactions, a
 * lost session), replicas (device lookup, leadership, tasks, reconnect),
 * the authentication state and bulk blobs, run against each backend by
 * test_store.c's table (store_fixture.h).
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

/* --- devices ------------------------------------------------------------- */

void
test_devices(void **state)
{
	struct store *st = *state;
	struct store_device d, *list = NULL;
	uint64_t n = 9;
	size_t ln = 0;

	assert_int_equal(store_device_count(st, &n), 0);
	assert_int_equal(n, 0);

	memset(&d, 0, sizeof(d));
	snprintf(d.id, sizeof(d.id), "phone-b");
	d.user_id = 5;
	snprintf(d.compute_class, sizeof(d.compute_class), "low");
	d.memory_mb = 512;
	d.registered = d.last_seen = 100;
	assert_int_equal(store_device_put(st, &d), 0);
	snprintf(d.id, sizeof(d.id), "phone-a");
	d.user_id = 6;
	assert_int_equal(store_device_put(st, &d), 0);

	/* Re-registration updates, keeping the first registration time. */
	snprintf(d.id, sizeof(d.id), "phone-b");
	d.user_id = 7;
	snprintf(d.compute_class, sizeof(d.compute_class), "high");
	d.memory_mb = 4096;
	d.registered = d.last_seen = 200;
	assert_int_equal(store_device_put(st, &d), 0);

	assert_int_equal(store_device_count(st, &n), 0);
	assert_int_equal(n, 2);
	assert_int_equal(store_device_list(st, &list, &ln), 0);
	assert_int_equal(ln, 2);
	assert_string_equal(list[0].id, "phone-a");	/* ordered by id */
	assert_int_equal(list[0].user_id, 6);
	assert_string_equal(list[1].id, "phone-b");
	assert_int_equal(list[1].user_id, 7);
	assert_string_equal(list[1].compute_class, "high");
	assert_int_equal(list[1].memory_mb, 4096);
	assert_int_equal(list[1].registered, 100);
	assert_int_equal(list[1].last_seen, 200);
	assert_int_equal(list[1].patches, 0);
	free(list);
}

/* --- patches ------------------------------------------------------------- */

void
patch(struct store_patch *p, const char *dev, uint64_t req, uint64_t base,
    void *blob, size_t size)
{
	memset(p, 0, sizeof(*p));
	snprintf(p->device_id, sizeof(p->device_id), "%s", dev);
	p->user_id = 3;
	p->request_id = req;
	p->base_version = base;
	snprintf(p->kind, sizeof(p->kind), "metapatch");
	p->created = 1234;
	p->blob = blob;
	p->size = size;
}

void
test_patches(void **state)
{
	struct store *st = *state;
	struct store_patch p, *list = NULL;
	struct store_device d, *dl = NULL;
	uint8_t b1[10] = "0123456789", b2[3] = "xyz";
	uint64_t id1 = 0, id2 = 0, id3 = 0, id4 = 0, n = 0;
	size_t ln = 0;
	int dup = -1;

	patch(&p, "dev-a", 1, 5, b1, sizeof(b1));
	assert_int_equal(store_patch_put(st, &p, 0, &id1, &dup), 0);
	assert_int_equal(dup, 0);
	assert_true(id1 > 0);

	/* The same request again: a duplicate, same id, nothing written. */
	patch(&p, "dev-a", 1, 5, b2, sizeof(b2));
	dup = -1;
	assert_int_equal(store_patch_put(st, &p, 0, &id2, &dup), 0);
	assert_int_equal(dup, 1);
	assert_int_equal(id2, id1);
	assert_int_equal(store_patch_count(st, &n), 0);
	assert_int_equal(n, 1);

	/* Same request id from another device is a new patch. */
	patch(&p, "dev-b", 1, 7, b2, sizeof(b2));
	assert_int_equal(store_patch_put(st, &p, 0, &id3, &dup), 0);
	assert_int_equal(dup, 0);
	assert_true(id3 != id1);
	/* And a new request id from the first device. */
	patch(&p, "dev-a", 2, 6, b2, sizeof(b2));
	assert_int_equal(store_patch_put(st, &p, 0, &id4, &dup), 0);
	assert_int_equal(dup, 0);
	assert_int_equal(store_patch_count(st, &n), 0);
	assert_int_equal(n, 3);

	/* A resend after other writes is still found. */
	patch(&p, "dev-b", 1, 7, b1, sizeof(b1));
	assert_int_equal(store_patch_put(st, &p, 0, &id2, &dup), 0);
	assert_int_equal(dup, 1);
	assert_int_equal(id2, id3);

	assert_int_equal(store_patch_list(st, 0, &list, &ln), 0);
	assert_int_equal(ln, 3);
	assert_int_equal(list[0].id, id1);
	assert_string_equal(list[0].device_id, "dev-a");
	assert_int_equal(list[0].user_id, 3);
	assert_int_equal(list[0].request_id, 1);
	assert_int_equal(list[0].base_version, 5);
	assert_string_equal(list[0].kind, "metapatch");
	assert_int_equal(list[0].created, 1234);
	assert_int_equal(list[0].size, sizeof(b1));
	assert_memory_equal(list[0].blob, b1, sizeof(b1));	/* not b2 */
	store_patch_free(list, ln);

	assert_int_equal(store_patch_list(st, 6, &list, &ln), 0);
	assert_int_equal(ln, 2);
	assert_int_equal(list[0].id, id3);
	assert_int_equal(list[0].base_version, 7);
	assert_int_equal(list[1].id, id4);
	assert_int_equal(list[1].base_version, 6);
	store_patch_free(list, ln);

	assert_int_equal(store_patch_list(st, 8, &list, &ln), 0);
	assert_int_equal(ln, 0);
	store_patch_free(list, ln);
	store_patch_free(NULL, 0);

	/* device_list counts each device's patches. */
	memset(&d, 0, sizeof(d));
	snprintf(d.id, sizeof(d.id), "dev-a");
	snprintf(d.compute_class, sizeof(d.compute_class), "mid");
	assert_int_equal(store_device_put(st, &d), 0);
	assert_int_equal(store_device_list(st, &dl, &ln), 0);
	assert_int_equal(ln, 1);
	assert_int_equal(dl[0].patches, 2);
	free(dl);
}

/*
 * limits.patches-per-device: a new patch leaves its device's newest keep
 * and deletes the older ones, in order; other devices' patches stay; a
 * resend of a kept request is still a duplicate and deletes nothing;
 * keep 0 deletes nothing.
 */
void
test_patch_retention(void **state)
{
	struct store *st = *state;
	struct store_patch p, *list = NULL;
	uint8_t b[4] = "abcd";
	uint64_t id[8], idb = 0, x = 0, n = 0;
	size_t ln = 0;
	int dup = -1;

	patch(&p, "dev-b", 1, 1, b, sizeof(b));
	assert_int_equal(store_patch_put(st, &p, 3, &idb, &dup), 0);
	for (int i = 0; i < 6; i++) {
		patch(&p, "dev-a", (uint64_t)(10 + i), 1, b, sizeof(b));
		assert_int_equal(store_patch_put(st, &p, 3, &id[i], &dup), 0);
		assert_int_equal(dup, 0);
	}
	assert_int_equal(store_patch_count(st, &n), 0);
	assert_int_equal(n, 4);		/* dev-a's newest 3, dev-b's one */
	assert_int_equal(store_patch_list(st, 0, &list, &ln), 0);
	assert_int_equal(ln, 4);
	assert_int_equal(list[0].id, idb);
	for (int i = 0; i < 3; i++) {
		assert_int_equal(list[1 + i].id, id[3 + i]);
		assert_int_equal(list[1 + i].request_id, 13 + i);
	}
	store_patch_free(list, ln);
	/* A resend of a kept request: the same id, nothing deleted. */
	patch(&p, "dev-a", 14, 1, b, sizeof(b));
	assert_int_equal(store_patch_put(st, &p, 1, &x, &dup), 0);
	assert_int_equal(dup, 1);
	assert_int_equal(x, id[4]);
	assert_int_equal(store_patch_count(st, &n), 0);
	assert_int_equal(n, 4);
	/* keep 0: every patch stays; keep 1: the newest alone. */
	patch(&p, "dev-a", 16, 1, b, sizeof(b));
	assert_int_equal(store_patch_put(st, &p, 0, &id[6], &dup), 0);
	assert_int_equal(store_patch_count(st, &n), 0);
	assert_int_equal(n, 5);
	patch(&p, "dev-a", 17, 1, b, sizeof(b));
	assert_int_equal(store_patch_put(st, &p, 1, &id[7], &dup), 0);
	assert_int_equal(store_patch_list(st, 0, &list, &ln), 0);
	assert_int_equal(ln, 2);
	assert_int_equal(list[0].id, idb);
	assert_int_equal(list[1].id, id[7]);
	store_patch_free(list, ln);
}

void
test_patches_many(void **state)
{
	struct store *st = *state;
	struct store_patch p, *list = NULL;
	uint8_t b = 'x';
	uint64_t id;
	size_t ln = 0;
	int dup;

	for (uint64_t r = 1; r <= 100; r++) {	/* past the list capacity */
		patch(&p, "dev", r, r, &b, 1);
		assert_int_equal(store_patch_put(st, &p, 0, &id, &dup), 0);
		assert_int_equal(dup, 0);
	}
	assert_int_equal(store_patch_list(st, 50, &list, &ln), 0);
	assert_int_equal(ln, 51);
	assert_int_equal(list[50].request_id, 100);
	store_patch_free(list, ln);
}

/* Patches survive reopening, and idempotency holds across connections. */
void
test_patch_dup_across_reopen(void **state)
{
	char path[700];
	struct store *st;
	struct store_patch p;
	uint8_t b[4] = "abcd";
	uint64_t id1, id2;
	int dup;

	(void)state;
	db_path(path, sizeof(path));
	st = open_ok(path);
	patch(&p, "dev-z", 77, 1, b, sizeof(b));
	assert_int_equal(store_patch_put(st, &p, 0, &id1, &dup), 0);
	assert_int_equal(dup, 0);
	store_close(st);
	st = open_ok(path);
	assert_int_equal(store_patch_put(st, &p, 0, &id2, &dup), 0);
	assert_int_equal(dup, 1);
	assert_int_equal(id2, id1);
	store_close(st);
	assert_int_equal(raw_count(path, "SELECT count(*) FROM patches"), 1);
}

/*
 * The group commit of uploads (cloudd/upload.c): several puts in one
 * transaction, a request repeated inside it found as a duplicate of the
 * first with its id, none visible to another connection before the
 * commit, all of them after.
 */
void
test_patch_tx_commit(void **state)
{
	char path[700];
	struct store *st;
	struct store_patch p;
	uint8_t b[4] = "abcd";
	uint64_t id0, id[4], n = 0;
	int dup[4];

	(void)state;
	db_path(path, sizeof(path));
	st = open_ok(path);
	patch(&p, "dev-t", 1, 1, b, sizeof(b));		/* committed before */
	assert_int_equal(store_patch_put(st, &p, 0, &id0, &dup[0]), 0);
	assert_int_equal(dup[0], 0);

	assert_int_equal(store_begin(st), 0);
	patch(&p, "dev-t", 2, 1, b, sizeof(b));
	assert_int_equal(store_patch_put(st, &p, 0, &id[0], &dup[0]), 0);
	patch(&p, "dev-u", 2, 1, b, sizeof(b));
	assert_int_equal(store_patch_put(st, &p, 0, &id[1], &dup[1]), 0);
	patch(&p, "dev-t", 2, 1, b, 2);			/* the first again */
	assert_int_equal(store_patch_put(st, &p, 0, &id[2], &dup[2]), 0);
	patch(&p, "dev-t", 1, 1, b, sizeof(b));		/* committed before */
	assert_int_equal(store_patch_put(st, &p, 0, &id[3], &dup[3]), 0);
	assert_int_equal(dup[0], 0);
	assert_int_equal(dup[1], 0);
	assert_true(id[0] != id[1] && id[0] != id0 && id[1] != id0);
	assert_int_equal(dup[2], 1);
	assert_int_equal(id[2], id[0]);
	assert_int_equal(dup[3], 1);
	assert_int_equal(id[3], id0);
	/* Inside: this connection sees its rows, another one does not. */
	assert_int_equal(store_patch_count(st, &n), 0);
	assert_int_equal(n, 3);
	assert_int_equal(raw_count(path, "SELECT count(*) FROM patches"), 1);
	assert_int_equal(store_commit(st), 0);
	assert_int_equal(raw_count(path, "SELECT count(*) FROM patches"), 3);
	assert_int_equal(raw_count(path, "SELECT count(*) FROM patches WHERE "
	    "device_id = 'dev-t' AND request_id = 2 AND size = 4"), 1);
	/* After the commit, writes commit on their own again. */
	patch(&p, "dev-v", 1, 1, b, sizeof(b));
	assert_int_equal(store_patch_put(st, &p, 0, &id[0], &dup[0]), 0);
	assert_int_equal(raw_count(path, "SELECT count(*) FROM patches"), 4);
	store_close(st);
}

/*
 * A rolled-back batch leaves nothing: its requests are new when stored
 * again (each alone, as the fallback does). store_rollback without an
 * open transaction does nothing.
 */
void
test_patch_tx_rollback(void **state)
{
	char path[700];
	struct store *st;
	struct store_patch p;
	uint8_t b[4] = "abcd";
	uint64_t id[3], n = 9;
	int dup[3];

	(void)state;
	db_path(path, sizeof(path));
	st = open_ok(path);
	assert_int_equal(store_begin(st), 0);
	patch(&p, "dev-r", 1, 1, b, sizeof(b));
	assert_int_equal(store_patch_put(st, &p, 0, &id[0], &dup[0]), 0);
	patch(&p, "dev-r", 2, 1, b, sizeof(b));
	assert_int_equal(store_patch_put(st, &p, 0, &id[1], &dup[1]), 0);
	store_rollback(st);
	assert_int_equal(store_patch_count(st, &n), 0);
	assert_int_equal(n, 0);
	assert_int_equal(raw_count(path, "SELECT count(*) FROM patches"), 0);
	store_rollback(st);			/* none open: a no-op */
	for (int i = 0; i < 2; i++) {
		patch(&p, "dev-r", (uint64_t)i + 1, 1, b, sizeof(b));
		assert_int_equal(store_patch_put(st, &p, 0, &id[2], &dup[2]), 0);
		assert_int_equal(dup[2], 0);	/* not a duplicate */
		assert_int_equal(raw_count(path, "SELECT count(*) FROM "
		    "patches"), i + 1);		/* committed at once */
	}
	/* A new transaction after a rollback works. */
	assert_int_equal(store_begin(st), 0);
	patch(&p, "dev-r", 3, 1, b, sizeof(b));
	assert_int_equal(store_patch_put(st, &p, 0, &id[2], &dup[2]), 0);
	assert_int_equal(store_commit(st), 0);
	assert_int_equal(raw_count(path, "SELECT count(*) FROM patches"), 3);
	store_close(st);
}

/*
 * PostgreSQL: a session lost inside a transaction is not silently
 * replaced (the rest of the batch would commit statement by statement):
 * the writes fail until store_rollback, then the store reconnects.
 */
void
test_patch_tx_lost_session(void **state)
{
	char path[700];
	struct store *st;
	struct store_patch p;
	uint8_t b[4] = "abcd";
	uint64_t id, n = 9;
	int dup;

	(void)state;
	if (!is_pg())
		return;		/* an SQLite file has no session to lose */
	db_path(path, sizeof(path));
	st = open_ok(path);
	assert_int_equal(store_begin(st), 0);
	patch(&p, "dev-l", 1, 1, b, sizeof(b));
	assert_int_equal(store_patch_put(st, &p, 0, &id, &dup), 0);
	B->raw_exec(path, "SELECT pg_terminate_backend(pid) FROM "
	    "pg_stat_activity WHERE pid <> pg_backend_pid() AND "
	    "backend_type = 'client backend' AND datname = "
	    "current_database()");
	{
		struct timespec ts = { 0, 100 * 1000 * 1000 };
		nanosleep(&ts, NULL);	/* the backend exits on a signal */
	}
	patch(&p, "dev-l", 2, 1, b, sizeof(b));
	assert_int_equal(store_patch_put(st, &p, 0, &id, &dup), -EIO);
	patch(&p, "dev-l", 3, 1, b, sizeof(b));
	assert_int_equal(store_patch_put(st, &p, 0, &id, &dup), -EIO);
	assert_int_not_equal(store_commit(st), 0);
	store_rollback(st);
	assert_int_equal(raw_count(path, "SELECT count(*) FROM patches"), 0);
	assert_int_equal(store_patch_put(st, &p, 0, &id, &dup), 0);
	assert_int_equal(dup, 0);
	assert_int_equal(store_patch_count(st, &n), 0);
	assert_int_equal(n, 1);
	store_close(st);
}

/* --- replicas: device lookup, leadership, tasks ------------------------- */

void
test_device_get(void **state)
{
	struct store *st = *state;
	struct store_device d, got;

	assert_int_equal(store_device_get(st, "nobody", &got), -ENOENT);
	memset(&d, 0, sizeof(d));
	snprintf(d.id, sizeof(d.id), "phone-x");
	d.user_id = 42;
	snprintf(d.compute_class, sizeof(d.compute_class), "high");
	d.memory_mb = 2048;
	d.registered = d.last_seen = 300;
	assert_int_equal(store_device_put(st, &d), 0);
	memset(&got, 0xff, sizeof(got));
	assert_int_equal(store_device_get(st, "phone-x", &got), 0);
	assert_string_equal(got.id, "phone-x");
	assert_int_equal(got.user_id, 42);
	assert_string_equal(got.compute_class, "high");
	assert_int_equal(got.memory_mb, 2048);
	assert_int_equal(got.registered, 300);
	assert_int_equal(got.last_seen, 300);
	assert_int_equal(store_device_get(st, "phone-", &got), -ENOENT);
}

/*
 * Two replicas' connections: one leads. PostgreSQL: the second takes over
 * once the first connection is gone. SQLite: one process per database, so
 * every connection leads.
 */
void
test_leader(void **state)
{
	char path[700];
	struct store *a, *b;
	int la = -1, lb = -1;

	(void)state;
	db_path(path, sizeof(path));
	a = open_ok(path);
	b = open_ok(path);
	assert_int_equal(store_leader_try(a, &la), 0);
	assert_int_equal(la, 1);
	assert_int_equal(store_leader_try(a, &la), 0);	/* still */
	assert_int_equal(la, 1);
	assert_int_equal(store_leader_try(b, &lb), 0);
	if (!is_pg()) {
		assert_int_equal(lb, 1);
		store_close(a);
		store_close(b);
		return;
	}
	assert_int_equal(lb, 0);
	assert_int_equal(store_leader_try(b, &lb), 0);
	assert_int_equal(lb, 0);
	store_close(a);		/* the leader dies */
	/* The server ends the session asynchronously: poll, up to 5 s. */
	for (int i = 0; i < 250 && lb == 0; i++) {
		struct timespec ts = { 0, 20 * 1000 * 1000 };
		assert_int_equal(store_leader_try(b, &lb), 0);
		if (lb == 0)
			nanosleep(&ts, NULL);
	}
	assert_int_equal(lb, 1);
	assert_int_equal(store_leader_try(b, &lb), 0);
	assert_int_equal(lb, 1);
	store_close(b);
}

void
test_tasks(void **state)
{
	struct store *st = *state;
	struct store_task t;
	uint64_t a = 0, b = 0;

	assert_int_equal(store_task_next(st, &t), -ENOENT);
	assert_int_equal(store_task_add(st, "train", 3, &a), 0);
	assert_int_equal(store_task_add(st, "train", 0, &b), 0);
	assert_true(a > 0 && b > a);
	/* The oldest pending one, until it is done. */
	assert_int_equal(store_task_next(st, &t), 0);
	assert_int_equal(t.id, a);
	assert_string_equal(t.kind, "train");
	assert_int_equal(t.arg, 3);
	assert_true(t.created > 1600000000);
	assert_int_equal(store_task_next(st, &t), 0);
	assert_int_equal(t.id, a);
	assert_int_equal(store_task_done(st, a, 7), 0);
	assert_int_equal(store_task_done(st, a, 8), -ENOENT);	/* once */
	assert_int_equal(store_task_next(st, &t), 0);
	assert_int_equal(t.id, b);
	assert_int_equal(t.arg, 0);
	assert_int_equal(store_task_done(st, b, 9), 0);
	assert_int_equal(store_task_next(st, &t), -ENOENT);
	assert_int_equal(store_task_done(st, 12345, 1), -ENOENT);
}

/*
 * PostgreSQL: a session the server ends (restart, failover, idle kill)
 * fails the statement that meets it and is reopened for the next one; a
 * leader whose session ended is no longer leader until it locks again.
 */
void
test_reconnect(void **state)
{
	char path[700];
	struct store *st;
	uint64_t n = 9;
	int l = 0, rc;

	(void)state;
	if (!is_pg())
		return;		/* an SQLite file has no session to lose */
	db_path(path, sizeof(path));
	st = open_ok(path);
	assert_int_equal(store_leader_try(st, &l), 0);
	assert_int_equal(l, 1);
	B->raw_exec(path, "SELECT pg_terminate_backend(pid) FROM "
	    "pg_stat_activity WHERE pid <> pg_backend_pid() AND "
	    "backend_type = 'client backend' AND datname = "
	    "current_database()");
	{
		struct timespec ts = { 0, 100 * 1000 * 1000 };
		nanosleep(&ts, NULL);	/* the backend exits on a signal */
	}
	rc = store_pool_count(st, &n);
	assert_int_equal(rc, -EIO);	/* the one that met the dead session */
	assert_non_null(strstr(store_errmsg(st), "count"));
	assert_int_equal(store_pool_count(st, &n), 0);
	assert_int_equal(n, 0);
	assert_int_equal(store_leader_try(st, &l), 0);
	assert_int_equal(l, 1);	/* locked again on the new session */
	store_close(st);
}

/* --- authentication state (guard.c) ------------------------------------- */

static void
key_of(uint8_t k[32], int seed)
{
	for (int i = 0; i < 32; i++)
		k[i] = (uint8_t)(seed * 31 + i);
}

/* The first candidate stored wins; later ones read it back unchanged. */
void
test_cloud_key(void **state)
{
	struct store *st = *state;
	uint8_t apk[32], ask[32], bpk[32], bsk[32], pk[32], sk[32];
	int created = -1;

	key_of(apk, 1);
	key_of(ask, 2);
	key_of(bpk, 3);
	key_of(bsk, 4);
	assert_int_equal(store_cloud_key(st, apk, ask, pk, sk, &created), 0);
	assert_int_equal(created, 1);
	assert_memory_equal(pk, apk, 32);
	assert_memory_equal(sk, ask, 32);
	assert_int_equal(store_cloud_key(st, bpk, bsk, pk, sk, &created), 0);
	assert_int_equal(created, 0);
	assert_memory_equal(pk, apk, 32);
	assert_memory_equal(sk, ask, 32);
}

/*
 * Replicas starting together: each connection offers its own key pair at
 * once; exactly one is stored and every connection reads that one.
 */
struct key_job {
	const char	*path;
	int		 seed, rc, created;
	uint8_t		 pk[32], sk[32];
	pthread_barrier_t *go;
};

static void *
key_thread(void *arg)
{
	struct key_job *j = arg;
	struct store *st = NULL;
	uint8_t cpk[32], csk[32];
	char err[512];

	key_of(cpk, j->seed);
	key_of(csk, j->seed + 100);
	j->rc = store_open(&st, B->name, j->path, 10000, err, sizeof(err));
	pthread_barrier_wait(j->go);
	if (j->rc == 0)
		j->rc = store_cloud_key(st, cpk, csk, j->pk, j->sk,
		    &j->created);
	store_close(st);
	return NULL;
}

void
test_cloud_key_race(void **state)
{
	enum { N = 4 };
	char path[700];
	struct key_job j[N];
	pthread_t th[N];
	pthread_barrier_t go;
	struct store *st;
	int created = 0;

	(void)state;
	db_path(path, sizeof(path));
	store_close(open_ok(path));	/* migrated once, before the race */
	pthread_barrier_init(&go, NULL, N);
	for (int i = 0; i < N; i++) {
		memset(&j[i], 0, sizeof(j[i]));
		j[i].path = path;
		j[i].seed = 10 + i;
		j[i].go = &go;
		assert_int_equal(pthread_create(&th[i], NULL, key_thread,
		    &j[i]), 0);
	}
	for (int i = 0; i < N; i++)
		assert_int_equal(pthread_join(th[i], NULL), 0);
	pthread_barrier_destroy(&go);
	for (int i = 0; i < N; i++) {
		assert_int_equal(j[i].rc, 0);
		created += j[i].created;
		assert_memory_equal(j[i].pk, j[0].pk, 32);
		assert_memory_equal(j[i].sk, j[0].sk, 32);
	}
	assert_int_equal(created, 1);
	assert_int_equal(raw_count(path, "SELECT count(*) FROM cloud_key"), 1);
	/* A replica started later gets the same pair. */
	{
		uint8_t c[32] = { 0 }, pk[32], sk[32];
		st = open_ok(path);
		assert_int_equal(store_cloud_key(st, c, c, pk, sk, &created),
		    0);
		assert_int_equal(created, 0);
		assert_memory_equal(pk, j[0].pk, 32);
		store_close(st);
	}
}

static void
authkey(struct store_authkey *k, const char *id, int seed, uint64_t ctr)
{
	memset(k, 0, sizeof(*k));
	snprintf(k->device_id, sizeof(k->device_id), "%s", id);
	key_of(k->pk, seed);
	k->counter = ctr;
	k->enrolled = 1000 + seed;
}

void
test_authkeys(void **state)
{
	struct store *st = *state;
	struct store_authkey k, got, b[3], *list = NULL;
	size_t n = 0;
	int how = -1;

	assert_int_equal(store_authkey_get(st, "dev-a", &got), -ENOENT);
	assert_int_equal(store_authkey_list(st, &list, &n), 0);
	assert_int_equal(n, 0);
	free(list);

	/* New, then the same key again: counters are max-merged. */
	authkey(&k, "dev-a", 1, 5);
	assert_int_equal(store_authkey_put(st, &k, 0, &how), 0);
	assert_int_equal(how, STORE_AUTHKEY_NEW);
	k.counter = 3;
	assert_int_equal(store_authkey_put(st, &k, 0, &how), 0);
	assert_int_equal(how, STORE_AUTHKEY_SAME);
	assert_int_equal(store_authkey_get(st, "dev-a", &got), 0);
	assert_string_equal(got.device_id, "dev-a");
	assert_int_equal(got.counter, 5);
	assert_int_equal(got.enrolled, 1001);
	k.counter = 9;
	assert_int_equal(store_authkey_put(st, &k, 0, &how), 0);
	assert_int_equal(store_authkey_get(st, "dev-a", &got), 0);
	assert_int_equal(got.counter, 9);

	/* Another key for the id: refused unless replace. */
	authkey(&k, "dev-a", 2, 1);
	assert_int_equal(store_authkey_put(st, &k, 0, &how), -EEXIST);
	assert_int_equal(store_authkey_get(st, "dev-a", &got), 0);
	key_of(k.pk, 1);
	assert_memory_equal(got.pk, k.pk, 32);
	assert_int_equal(got.counter, 9);

	/* Counters: raised, never lowered, only for the stored key. */
	authkey(&b[0], "dev-a", 1, 20);
	authkey(&b[1], "not-enrolled", 1, 7);
	authkey(&b[2], "dev-a", 1, 15);	/* lower, in the same batch */
	assert_int_equal(store_authkey_counters(st, b, 3), 0);
	assert_int_equal(store_authkey_get(st, "dev-a", &got), 0);
	assert_int_equal(got.counter, 20);
	assert_int_equal(store_authkey_get(st, "not-enrolled", &got), -ENOENT);
	authkey(&b[0], "dev-a", 1, 10);
	assert_int_equal(store_authkey_counters(st, b, 1), 0);
	authkey(&b[0], "dev-a", 2, 50);	/* a key dev-a no longer has */
	assert_int_equal(store_authkey_counters(st, b, 1), 0);
	assert_int_equal(store_authkey_get(st, "dev-a", &got), 0);
	assert_int_equal(got.counter, 20);
	assert_int_equal(store_authkey_counters(st, b, 0), 0);

	/* Replace: the new key with its own counter and time. */
	authkey(&k, "dev-a", 2, 1);
	assert_int_equal(store_authkey_put(st, &k, 1, &how), 0);
	assert_int_equal(how, STORE_AUTHKEY_REPLACED);
	assert_int_equal(store_authkey_get(st, "dev-a", &got), 0);
	assert_memory_equal(got.pk, k.pk, 32);
	assert_int_equal(got.counter, 1);
	assert_int_equal(got.enrolled, 1002);
	/* A flush by a replica that still had the old key changes nothing. */
	authkey(&b[0], "dev-a", 1, 99);
	assert_int_equal(store_authkey_counters(st, b, 1), 0);
	assert_int_equal(store_authkey_get(st, "dev-a", &got), 0);
	assert_int_equal(got.counter, 1);

	/* Listing, by id. */
	authkey(&k, "dev-0", 3, 0);
	assert_int_equal(store_authkey_put(st, &k, 0, &how), 0);
	assert_int_equal(store_authkey_list(st, &list, &n), 0);
	assert_int_equal(n, 2);
	assert_string_equal(list[0].device_id, "dev-0");
	assert_string_equal(list[1].device_id, "dev-a");
	assert_int_equal(list[1].counter, 1);
	free(list);
}

/* A batch past any buffer size, and ids that need quoting in an array. */
void
test_authkey_counters_many(void **state)
{
	struct store *st = *state;
	enum { N = 300 };
	struct store_authkey *b = calloc(N + 1, sizeof(*b)), got;
	static const char odd[] = "we\"ird,{id}\\ x";
	int how;

	assert_non_null(b);
	for (int i = 0; i < N; i++) {
		char id[32];
		snprintf(id, sizeof(id), "phone-%04d", i);
		authkey(&b[i], id, i, 1);
		assert_int_equal(store_authkey_put(st, &b[i], 0, &how), 0);
		b[i].counter = 1000 + (uint64_t)i;
	}
	authkey(&b[N], odd, 7, 1);
	assert_int_equal(store_authkey_put(st, &b[N], 0, &how), 0);
	b[N].counter = 4242;
	assert_int_equal(store_authkey_counters(st, b, N + 1), 0);
	for (int i = 0; i < N; i += 37) {
		assert_int_equal(store_authkey_get(st, b[i].device_id, &got),
		    0);
		assert_int_equal(got.counter, 1000 + (uint64_t)i);
	}
	assert_int_equal(store_authkey_get(st, odd, &got), 0);
	assert_int_equal(got.counter, 4242);
	free(b);
}

/* A pool larger than one COPY buffer, and a model blob of many chunks. */
void
test_bulk(void **state)
{
	struct store *st = *state;
	struct dataset in, out;
	uint64_t rows = 0, *ids = NULL;
	enum { N = 30000 };
	uint8_t *blob, *back;
	size_t len = 3 * 1024 * 1024 + 17;
	struct store_model_info mi;

	make_dataset(&in, N);
	assert_int_equal(store_pool_insert(st, &in, &rows), 0);
	assert_int_equal(rows, N);
	dataset_init(&out);
	assert_int_equal(store_pool_load(st, &out, &ids), 0);
	assert_int_equal(out.n, N);
	for (size_t i = 0; i < N; i += 997) {
		assert_int_equal(out.s[i].item, in.s[i].item);
		assert_int_equal(out.s[i].hist_n, in.s[i].hist_n);
		assert_true(out.s[i].label == in.s[i].label);
	}
	free(ids);
	dataset_fini(&out);
	dataset_fini(&in);

	blob = malloc(len);
	back = malloc(len);
	assert_non_null(blob);
	assert_non_null(back);
	for (size_t i = 0; i < len; i++)
		blob[i] = (uint8_t)(i * 2654435761u >> 13);
	memset(&mi, 0, sizeof(mi));
	mi.version = 1;
	assert_int_equal(store_model_put(st, &mi, blob, len), 0);
	for (size_t off = 0; off < len; off += 262144) {
		size_t n = len - off < 262144 ? len - off : 262144;
		assert_int_equal(store_model_read(st, 1, off, back + off, n), 0);
	}
	assert_memory_equal(back, blob, len);
	free(blob);
	free(back);
}

/*
 * Distillation's bookkeeping: pending counts distinct users of unused
 * "metapatch" patches in a base range; used records a run's patches, in
 * the store (a reopen sees it). A patch that commits after a run listed
 * the others still counts, though its id is lower than a used one: on
 * PostgreSQL played with two sessions (the id is taken at the insert, the
 * row seen at the commit), on SQLite (one writer) by recording only the
 * higher id.
 */
void
test_patch_pending(void **state)
{
	char path[700];
	struct store *st, *late = NULL;
	struct store_patch p;
	uint8_t b[4] = "abcd";
	uint64_t id[6], lo = 0;
	uint32_t users = 0;
	int64_t first = 0;
	int dup;

	(void)state;
	db_path(path, sizeof(path));
	st = open_ok(path);
	assert_int_equal(store_patch_pending(st, 1, 9, &users, &first), 0);
	assert_int_equal(users, 0);
	assert_int_equal(first, 0);
	patch(&p, "dev-a", 1, 2, b, sizeof(b));		/* user 3 */
	p.created = 500;
	assert_int_equal(store_patch_put(st, &p, 0, &id[0], &dup), 0);
	patch(&p, "dev-a", 2, 2, b, sizeof(b));		/* user 3 again */
	assert_int_equal(store_patch_put(st, &p, 0, &id[1], &dup), 0);
	patch(&p, "dev-b", 1, 2, b, sizeof(b));
	p.user_id = 4;
	assert_int_equal(store_patch_put(st, &p, 0, &id[2], &dup), 0);
	patch(&p, "dev-c", 1, 1, b, sizeof(b));		/* older base */
	p.user_id = 5;
	p.created = 100;
	assert_int_equal(store_patch_put(st, &p, 0, &id[3], &dup), 0);
	patch(&p, "dev-d", 1, 2, b, sizeof(b));		/* not a metapatch */
	p.user_id = 6;
	snprintf(p.kind, sizeof(p.kind), "other");
	assert_int_equal(store_patch_put(st, &p, 0, &id[4], &dup), 0);

	assert_int_equal(store_patch_pending(st, 2, 2, &users, &first), 0);
	assert_int_equal(users, 2);
	assert_int_equal(first, 500);
	assert_int_equal(store_patch_pending(st, 1, 2, &users, &first), 0);
	assert_int_equal(users, 3);
	assert_int_equal(first, 100);
	assert_int_equal(store_patch_pending(st, 3, 9, &users, &first), 0);
	assert_int_equal(users, 0);

	/* A run on v2 used user 3's patches and the older base's. */
	uint64_t used[3] = { id[0], id[1], id[3] };
	assert_int_equal(store_patch_used(st, used, 3, 2), 0);
	assert_int_equal(store_patch_used(st, NULL, 0, 2), 0);
	assert_int_equal(store_patch_pending(st, 1, 2, &users, &first), 0);
	assert_int_equal(users, 1);				/* user 4 */
	assert_int_equal(first, 1234);
	store_close(st);

	/* Kept in the store. */
	st = open_ok(path);
	assert_int_equal(store_patch_pending(st, 1, 2, &users, &first), 0);
	assert_int_equal(users, 1);
	assert_int_equal(raw_count(path, "SELECT count(*) FROM patches WHERE "
	    "distilled = 2"), 3);

	/* A late commit under a lower id. */
	patch(&p, "dev-e", 1, 2, b, sizeof(b));
	p.user_id = 7;
	if (is_pg()) {
		late = open_ok(path);
		assert_int_equal(store_begin(late), 0);
		assert_int_equal(store_patch_put(late, &p, 0, &lo, &dup), 0);
	}
	patch(&p, "dev-f", 1, 2, b, sizeof(b));
	p.user_id = 8;
	assert_int_equal(store_patch_put(st, &p, 0, &id[5], &dup), 0);
	if (!is_pg()) {
		patch(&p, "dev-e", 1, 2, b, sizeof(b));
		p.user_id = 7;
		assert_int_equal(store_patch_put(st, &p, 0, &lo, &dup), 0);
	}
	/* The run lists its patches: user 4's and user 8's. */
	uint64_t run[2] = { id[2], id[5] };
	assert_int_equal(store_patch_used(st, run, 2, 3), 0);
	if (late != NULL) {
		assert_true(lo < id[5]);
		assert_int_equal(store_commit(late), 0);
		store_close(late);
	}
	assert_int_equal(store_patch_pending(st, 1, 2, &users, &first), 0);
	assert_int_equal(users, 1);				/* user 7 */
	assert_int_equal(raw_count(path, "SELECT count(*) FROM patches WHERE "
	    "distilled = 0 AND user_id = 7"), 1);
	store_close(st);
}
