/*
 * test_store: unit tests for cloudd/store.h, one suite run against each
 * backend: the same test table runs as the group "store/sqlite", then as
 * "store/postgresql". struct backend says how to get a fresh database and
 * how to look behind the interface (row counts, a forged schema_version)
 * with a raw connection; a few checks are backend-specific (WAL mode, the
 * leader lock) and say so.
 *
 * SQLite: most tests use ":memory:"; the schema, reopen and concurrency
 * tests use a file in a private mkdtemp() directory that the group
 * teardown removes. PostgreSQL: DCCL_TEST_PG names a server (a libpq
 * connection string); otherwise the test starts a throwaway one with
 * scripts/pg-test-server.sh (run from the source tree, as run-tests.sh
 * does) and stops it at the end. Each test gets a fresh schema on it, as
 * good as a new database. When PostgreSQL is not installed, the PostgreSQL
 * run is skipped with a SKIP: line and exit 77 (after a passing SQLite run);
 * a server that is installed but cannot start is a failure.
 * Single-threaded except test_concurrent_first_open, which runs one
 * store_open on a helper thread.
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

static char tmpdir[256];
static int db_seq;

/* --- backends ------------------------------------------------------------ */

const struct backend *B;
static char pg_base[512];	/* connection string of the test server */
static char pg_dir[256];	/* its directory, when the test started it */

static int
group_setup(void **state)
{
	(void)state;
	snprintf(tmpdir, sizeof(tmpdir), "/tmp/test_store.XXXXXX");
	return mkdtemp(tmpdir) == NULL ? -1 : 0;
}

static int
group_teardown(void **state)
{
	char cmd[300];

	(void)state;
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
	return system(cmd) == 0 ? 0 : -1;
}

void
db_path(char *buf, size_t len)
{
	B->fresh(buf, len);
}

static void
sq_fresh(char *buf, size_t len)
{
	snprintf(buf, len, "%s/s%d.db", tmpdir, db_seq++);
}

static void
sq_mem(char *buf, size_t len)
{
	snprintf(buf, len, ":memory:");
}

/* One row count through a raw connection, behind the store's back. */
static int64_t
sq_raw_count(const char *path, const char *sql)
{
	sqlite3 *db;
	sqlite3_stmt *s;
	int64_t n = -1;

	assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
	assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &s, NULL), SQLITE_OK);
	if (sqlite3_step(s) == SQLITE_ROW)
		n = sqlite3_column_int64(s, 0);
	sqlite3_finalize(s);
	sqlite3_close(db);
	return n;
}

static void
sq_raw_exec(const char *path, const char *sql)
{
	sqlite3 *db;
	char *msg = NULL;

	assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
	if (sqlite3_exec(db, sql, NULL, NULL, &msg) != SQLITE_OK)
		fail_msg("%s: %s", sql, msg);
	sqlite3_close(db);
}

static PGconn *
pg_raw(const char *target)
{
	PGconn *c = PQconnectdb(target);

	if (PQstatus(c) != CONNECTION_OK)
		fail_msg("connect: %s", PQerrorMessage(c));
	PQclear(PQexec(c, "SET client_min_messages = warning"));
	return c;
}

static void
pg_exec(PGconn *c, const char *sql)
{
	PGresult *r = PQexec(c, sql);

	if (PQresultStatus(r) != PGRES_COMMAND_OK &&
	    PQresultStatus(r) != PGRES_TUPLES_OK)
		fail_msg("%s: %s", sql, PQerrorMessage(c));
	PQclear(r);
}

static void
pg_fresh(char *buf, size_t len)
{
	char sql[64];
	PGconn *c = pg_raw(pg_base);

	snprintf(sql, sizeof(sql), "CREATE SCHEMA t%d", db_seq);
	pg_exec(c, sql);
	PQfinish(c);
	snprintf(buf, len, "%s options='-c search_path=t%d'", pg_base,
	    db_seq++);
}

static int64_t
pg_raw_count(const char *target, const char *sql)
{
	PGconn *c = pg_raw(target);
	PGresult *r = PQexec(c, sql);
	int64_t n = -1;

	if (PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1)
		n = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
	PQclear(r);
	PQfinish(c);
	return n;
}

static void
pg_raw_exec(const char *target, const char *sql)
{
	PGconn *c = pg_raw(target);

	pg_exec(c, sql);
	PQfinish(c);
}

static const struct backend backend_sqlite = {
	"sqlite", sq_fresh, sq_mem, sq_raw_count, sq_raw_exec,
};
static const struct backend backend_pg = {
	"postgresql", pg_fresh, pg_fresh, pg_raw_count, pg_raw_exec,
};

int
is_pg(void)
{
	return B == &backend_pg;
}

/*
 * The PostgreSQL server: DCCL_TEST_PG, or a throwaway one. 0 when there is
 * one; else why is in why.
 */
static int
pg_start(char *why, size_t len)
{
	const char *env = getenv("DCCL_TEST_PG");
	char line[256] = "";
	FILE *f;
	int st;

	if (env != NULL && env[0] != '\0') {
		snprintf(pg_base, sizeof(pg_base), "%s", env);
		return 0;
	}
	if (access("scripts/pg-test-server.sh", R_OK) != 0) {
		snprintf(why, len, "scripts/pg-test-server.sh not found (run "
		    "from the source tree) and DCCL_TEST_PG not set");
		return -1;
	}
	if ((f = popen("sh scripts/pg-test-server.sh start", "r")) == NULL) {
		snprintf(why, len, "popen failed");
		return -1;
	}
	if (fgets(line, sizeof(line), f) == NULL)
		line[0] = '\0';
	st = pclose(f);
	line[strcspn(line, "\n")] = '\0';
	if (st != 0 || strncmp(line, "/tmp/dccl-pg.", 13) != 0) {
		snprintf(why, len, "%s", line[0] ? line :
		    "pg-test-server.sh start failed");
		/* Exit 77: no PostgreSQL installed, a skip. Anything else
		 * (initdb or pg_ctl failing) is a failure. */
		return WIFEXITED(st) && WEXITSTATUS(st) == 77 ? -77 : -1;
	}
	snprintf(pg_dir, sizeof(pg_dir), "%s", line);
	snprintf(pg_base, sizeof(pg_base), "host=%s user=dccl dbname=postgres",
	    pg_dir);
	return 0;
}

static void
pg_stop(void)
{
	char cmd[400];

	if (pg_dir[0] == '\0')
		return;
	snprintf(cmd, sizeof(cmd), "sh scripts/pg-test-server.sh stop '%s'",
	    pg_dir);
	if (system(cmd) != 0)
		fprintf(stderr, "pg-test-server stop failed\n");
}

struct store *
open_ok(const char *target)
{
	struct store *st = NULL;
	char err[512] = "";
	int rc = store_open(&st, B->name, target, 1000, err, sizeof(err));

	if (rc != 0)
		fail_msg("store_open(%s): %d %s", target, rc, err);
	assert_non_null(st);
	return st;
}

static int
mem_setup(void **state)
{
	char target[700];

	B->mem(target, sizeof(target));
	*state = open_ok(target);
	return 0;
}

static int
mem_teardown(void **state)
{
	store_close(*state);
	return 0;
}

int64_t
raw_count(const char *target, const char *sql)
{
	return B->raw_count(target, sql);
}

/* --- schema -------------------------------------------------------------- */

static void
test_open_creates_schema(void **state)
{
	char path[700];
	struct store *st;
	uint64_t n = 99;

	(void)state;
	db_path(path, sizeof(path));
	st = open_ok(path);
	assert_int_equal(store_schema_version(st), STORE_SCHEMA_VERSION);
	assert_string_equal(store_errmsg(st), "");
	assert_int_equal(store_pool_count(st, &n), 0);
	assert_int_equal(n, 0);
	store_close(st);
	/* One schema_version row per migration; SQLite: in WAL mode. */
	assert_int_equal(raw_count(path, "SELECT count(*) FROM schema_version"),
	    STORE_SCHEMA_VERSION);
	assert_string_equal(store_backend(st = open_ok(path)), B->name);
	store_close(st);
	if (!is_pg()) {
		sqlite3 *db;
		sqlite3_stmt *s;
		assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
		assert_int_equal(sqlite3_prepare_v2(db, "PRAGMA journal_mode",
		    -1, &s, NULL), SQLITE_OK);
		assert_int_equal(sqlite3_step(s), SQLITE_ROW);
		assert_string_equal((const char *)sqlite3_column_text(s, 0),
		    "wal");
		sqlite3_finalize(s);
		sqlite3_close(db);
	}
}

static void
test_reopen_keeps_data(void **state)
{
	char path[700];
	struct store *st;
	struct store_device d;
	uint64_t n = 0;

	(void)state;
	db_path(path, sizeof(path));
	st = open_ok(path);
	memset(&d, 0, sizeof(d));
	snprintf(d.id, sizeof(d.id), "dev-a");
	snprintf(d.compute_class, sizeof(d.compute_class), "low");
	d.last_seen = 10;
	assert_int_equal(store_device_put(st, &d), 0);
	store_close(st);

	/* Reopening migrates nothing and keeps the rows. */
	st = open_ok(path);
	assert_int_equal(store_schema_version(st), STORE_SCHEMA_VERSION);
	assert_int_equal(store_device_count(st, &n), 0);
	assert_int_equal(n, 1);
	store_close(st);
	assert_int_equal(raw_count(path, "SELECT count(*) FROM schema_version"),
	    STORE_SCHEMA_VERSION);
}

static void
test_newer_schema_refused(void **state)
{
	char path[700], err[512] = "";
	struct store *st;
	int rc;

	(void)state;
	db_path(path, sizeof(path));
	st = open_ok(path);
	store_close(st);
	B->raw_exec(path, "INSERT INTO schema_version VALUES(99, 0)");

	st = (struct store *)&st;
	rc = store_open(&st, B->name, path, 1000, err, sizeof(err));
	assert_true(rc < 0);
	assert_int_equal(rc, -EPROTO);
	assert_null(st);
	/* SQLite names the file; PostgreSQL never echoes the conninfo. */
	if (is_pg())
		assert_null(strstr(err, "search_path"));
	else
		assert_non_null(strstr(err, path));
	assert_non_null(strstr(err, "schema version 99 is newer"));
}

/*
 * A store at the previous schema (3: before the keys moved into the store)
 * with rows in every table it had, opened by today's code: migration 4
 * runs once, every row is still there, and the new tables work. The
 * migrations are append-only, so version 3 is today's store with what
 * migration 4 created dropped and its schema_version row deleted.
 */
static void
test_upgrade_from_previous_schema(void **state)
{
	char path[700];
	struct store *st;
	struct store_device d;
	struct store_patch p;
	struct store_model_info mi;
	struct store_authkey k, kk;
	uint8_t pk[32], sk[32], cpk[32], csk[32], blob[20] = "old patch bytes", buf[100];
	uint64_t n = 0, id = 0, id2 = 0;
	void *ofa = NULL;
	size_t olen = 0;
	int dup = -1, created = -1, how = -1;

	(void)state;
	assert_int_equal(STORE_SCHEMA_VERSION, 6);	/* else update this test */
	db_path(path, sizeof(path));
	st = open_ok(path);
	memset(&d, 0, sizeof(d));
	snprintf(d.id, sizeof(d.id), "dev-old");
	d.user_id = 42;
	snprintf(d.compute_class, sizeof(d.compute_class), "high");
	d.last_seen = 77;
	assert_int_equal(store_device_put(st, &d), 0);
	patch(&p, "dev-old", 9, 1, blob, sizeof(blob));
	assert_int_equal(store_patch_put(st, &p, 0, &id, &dup), 0);
	put_model(st, 1, 0, 300);
	assert_int_equal(store_ofa_put(st, 1, "ofa-blob", 8), 0);
	store_close(st);
	B->raw_exec(path, "DROP TABLE cloud_key; DROP TABLE device_keys; "
	    "ALTER TABLE pool DROP COLUMN side; DROP TABLE pool_schema; "
	    "DROP INDEX patches_pending; "
	    "ALTER TABLE patches DROP COLUMN distilled; "
	    "DELETE FROM schema_version WHERE version >= 4");
	assert_int_equal(raw_count(path, "SELECT max(version) FROM "
	    "schema_version"), 3);

	st = open_ok(path);
	assert_int_equal(store_schema_version(st), STORE_SCHEMA_VERSION);
	assert_int_equal(raw_count(path, "SELECT count(*) FROM schema_version"),
	    STORE_SCHEMA_VERSION);
	/* The old rows. */
	memset(&d, 0, sizeof(d));
	assert_int_equal(store_device_get(st, "dev-old", &d), 0);
	assert_int_equal(d.user_id, 42);
	assert_string_equal(d.compute_class, "high");
	assert_int_equal(store_patch_count(st, &n), 0);
	assert_int_equal(n, 1);
	patch(&p, "dev-old", 9, 1, blob, sizeof(blob));	/* a resend */
	assert_int_equal(store_patch_put(st, &p, 0, &id2, &dup), 0);
	assert_int_equal(dup, 1);
	assert_int_equal(id2, id);
	assert_int_equal(store_model_info(st, 0, &mi), 0);
	assert_int_equal(mi.version, 1);
	assert_int_equal(mi.size, 300);
	assert_int_equal(store_model_read(st, 1, 0, buf, sizeof(buf)), 0);
	for (size_t i = 0; i < sizeof(buf); i++)
		assert_int_equal(buf[i], (uint8_t)(i * 7 + 1));
	assert_int_equal(store_ofa_get(st, 1, &ofa, &olen), 0);
	assert_int_equal(olen, 8);
	assert_memory_equal(ofa, "ofa-blob", 8);
	free(ofa);
	/* The tables migration 4 created. */
	memset(cpk, 1, sizeof(cpk));
	memset(csk, 2, sizeof(csk));
	assert_int_equal(store_cloud_key(st, cpk, csk, pk, sk, &created), 0);
	assert_int_equal(created, 1);
	assert_memory_equal(pk, cpk, 32);
	memset(&k, 0, sizeof(k));
	snprintf(k.device_id, sizeof(k.device_id), "dev-old");
	memset(k.pk, 3, sizeof(k.pk));
	k.enrolled = 5;
	assert_int_equal(store_authkey_put(st, &k, 0, &how), 0);
	assert_int_equal(how, STORE_AUTHKEY_NEW);
	assert_int_equal(store_authkey_get(st, "dev-old", &kk), 0);
	assert_memory_equal(kk.pk, k.pk, 32);
	store_close(st);
	/* Upgraded once: reopening runs nothing again. */
	st = open_ok(path);
	assert_int_equal(store_schema_version(st), STORE_SCHEMA_VERSION);
	store_close(st);
	assert_int_equal(raw_count(path, "SELECT count(*) FROM schema_version"),
	    STORE_SCHEMA_VERSION);
}

static void
test_unknown_backend(void **state)
{
	struct store *st = (struct store *)&st;
	char err[256] = "";

	(void)state;
	assert_int_equal(store_open(&st, "postgres", "x", 0, err, sizeof(err)),
	    -EINVAL);
	assert_null(st);
	assert_string_equal(err, "unknown store backend 'postgres'");
}

static void
test_unwritable_path(void **state)
{
	struct store *st = (struct store *)&st;
	char err[256] = "";
	int rc;

	(void)state;
	if (is_pg()) {
		/* No server there: an error, no connection string in it. */
		rc = store_open(&st, B->name, "host=/proc/nonexistent "
		    "password=sekrit connect_timeout=2", 0, err, sizeof(err));
		assert_true(rc < 0);
		assert_null(st);
		assert_non_null(strstr(err, "postgresql"));
		assert_null(strstr(err, "sekrit"));
		return;
	}
	rc = store_open(&st, "sqlite", "/proc/nonexistent/x.db", 0, err,
	    sizeof(err));
	assert_true(rc < 0);
	assert_null(st);
	assert_non_null(strstr(err, "/proc/nonexistent/x.db"));

	/* A directory is not a database either. */
	st = (struct store *)&st;
	rc = store_open(&st, "sqlite", tmpdir, 0, err, sizeof(err));
	assert_true(rc < 0);
	assert_null(st);
}

/*
 * Two first opens of the same new file (cloudd and a worker, or two
 * processes) must not both run migration 1. The helper thread's open is held
 * at its BEGIN IMMEDIATE by a write lock taken here; meanwhile this thread
 * migrates the file to version 1. The helper must then see version 1 and
 * succeed, instead of re-running CREATE TABLE on the stale version it read
 * before taking the lock.
 */
struct open_job {
	const char	*path;
	int		 rc;
	char		 err[512];
};

static void *
open_thread(void *arg)
{
	struct open_job *j = arg;
	struct store *st = NULL;

	j->rc = store_open(&st, B->name, j->path, 5000, j->err,
	    sizeof(j->err));
	store_close(st);
	return NULL;
}

/*
 * Side values and the feature schema (store 5): stored per sample and
 * with the pool, loaded back; one schema per pool.
 */
static void
test_pool_schema(void **state)
{
	struct store *st = *state;
	struct dataset in, out, plain;
	uint64_t rows = 0, n = 0, *ids = NULL;
	char *txt = NULL;
	const char *sch = "dccl-schema 1\nfield u user\n";

	assert_int_equal(store_pool_schema(st, &txt), -ENOENT);
	assert_null(txt);
	make_dataset(&in, 23);
	in.n_side = 3;
	in.side_card[0] = 5;
	in.side_card[1] = 1000;
	in.side_card[2] = 2;
	for (size_t i = 0; i < in.n; i++) {
		in.s[i].side[0] = (uint32_t)(i % 6);	/* 5: unknown */
		in.s[i].side[1] = (uint32_t)(i * 37 % 1000);
		in.s[i].side[2] = (uint32_t)(i % 2);
	}
	assert_int_equal(store_pool_insert_schema(st, &in, sch, &rows), 0);
	assert_int_equal(rows, 23);
	assert_int_equal(store_pool_schema(st, &txt), 0);
	assert_string_equal(txt, sch);
	free(txt);
	dataset_init(&out);
	assert_int_equal(store_pool_load(st, &out, &ids), 0);
	assert_int_equal(out.n, 23);
	assert_int_equal(out.n_side, 3);
	assert_memory_equal(out.side_card, in.side_card,
	    sizeof(in.side_card));
	for (size_t i = 0; i < out.n; i++)
		assert_memory_equal(out.s[i].side, in.s[i].side,
		    sizeof(in.s[i].side));
	free(ids);
	dataset_fini(&out);

	/* Another schema, or none, is refused and inserts nothing. */
	assert_int_equal(store_pool_insert_schema(st, &in, "dccl-schema 1\n"
	    "field v user\n", &rows), -EEXIST);
	assert_non_null(strstr(store_errmsg(st), "schema differs"));
	make_dataset(&plain, 4);
	assert_int_equal(store_pool_insert(st, &plain, &rows), -EEXIST);
	assert_int_equal(store_pool_count(st, &n), 0);
	assert_int_equal(n, 23);
	/* The same schema appends. */
	assert_int_equal(store_pool_insert_schema(st, &in, sch, &rows), 0);
	assert_int_equal(store_pool_count(st, &n), 0);
	assert_int_equal(n, 46);
	dataset_fini(&in);
	dataset_fini(&plain);
}

/* A pool without a schema takes no schema afterwards. */
static void
test_pool_schema_late(void **state)
{
	struct store *st = *state;
	struct dataset ds;
	uint64_t rows = 0, *ids = NULL;
	char *txt = NULL;

	make_dataset(&ds, 5);
	assert_int_equal(store_pool_insert(st, &ds, &rows), 0);
	assert_int_equal(store_pool_insert_schema(st, &ds, "dccl-schema 1\n",
	    &rows), -EEXIST);
	assert_non_null(strstr(store_errmsg(st), "without a feature schema"));
	assert_int_equal(store_pool_schema(st, &txt), -ENOENT);
	dataset_fini(&ds);
	/* Rows without side values load with zeros and n_side 0. */
	dataset_init(&ds);
	assert_int_equal(store_pool_load(st, &ds, &ids), 0);
	assert_int_equal(ds.n, 5);
	assert_int_equal(ds.n_side, 0);
	for (size_t i = 0; i < ds.n; i++)
		for (int k = 0; k < SAMPLE_SIDE_MAX; k++)
			assert_int_equal(ds.s[i].side[k], 0);
	free(ids);
	dataset_fini(&ds);
}

/*
 * A store at schema 4 with pool rows, opened by today's code: migration 5
 * adds the side column and the schema table; the old rows load with no
 * side values and the pool takes no schema (it has samples without one).
 */
static void
test_upgrade_4_to_5(void **state)
{
	char path[700];
	struct store *st;
	struct dataset ds;
	uint64_t rows = 0, *ids = NULL;

	(void)state;
	db_path(path, sizeof(path));
	st = open_ok(path);
	make_dataset(&ds, 7);
	assert_int_equal(store_pool_insert(st, &ds, &rows), 0);
	store_close(st);
	dataset_fini(&ds);
	B->raw_exec(path, "ALTER TABLE pool DROP COLUMN side; "
	    "DROP TABLE pool_schema; DROP INDEX patches_pending; "
	    "ALTER TABLE patches DROP COLUMN distilled; "
	    "DELETE FROM schema_version WHERE version >= 5");
	assert_int_equal(raw_count(path, "SELECT max(version) FROM "
	    "schema_version"), 4);
	st = open_ok(path);
	assert_int_equal(store_schema_version(st), STORE_SCHEMA_VERSION);
	dataset_init(&ds);
	assert_int_equal(store_pool_load(st, &ds, &ids), 0);
	assert_int_equal(ds.n, 7);
	assert_int_equal(ds.n_side, 0);
	assert_int_equal(ds.s[3].side[0], 0);
	free(ids);
	dataset_fini(&ds);
	make_dataset(&ds, 2);
	assert_int_equal(store_pool_insert_schema(st, &ds, "dccl-schema 1\n",
	    &rows), -EEXIST);
	dataset_fini(&ds);
	store_close(st);
}

/*
 * A store at schema 5 with patches, opened by today's code: migration 6
 * adds the distillation record; every old patch counts as unused (as
 * before, when a restart forgot which patches the last run had used).
 */
static void
test_upgrade_5_to_6(void **state)
{
	char path[700];
	struct store *st;
	struct store_patch p;
	uint8_t b[4] = "abcd";
	uint64_t id[2];
	uint32_t users = 0;
	int64_t first = 0;
	int dup;

	(void)state;
	db_path(path, sizeof(path));
	st = open_ok(path);
	patch(&p, "dev-a", 1, 1, b, sizeof(b));
	assert_int_equal(store_patch_put(st, &p, 0, &id[0], &dup), 0);
	patch(&p, "dev-b", 1, 1, b, sizeof(b));
	p.user_id = 9;
	assert_int_equal(store_patch_put(st, &p, 0, &id[1], &dup), 0);
	store_close(st);
	B->raw_exec(path, "DROP INDEX patches_pending; "
	    "ALTER TABLE patches DROP COLUMN distilled; "
	    "DELETE FROM schema_version WHERE version = 6");
	assert_int_equal(raw_count(path, "SELECT max(version) FROM "
	    "schema_version"), 5);
	st = open_ok(path);
	assert_int_equal(store_schema_version(st), 6);
	assert_int_equal(store_patch_pending(st, 1, 1, &users, &first), 0);
	assert_int_equal(users, 2);
	assert_int_equal(store_patch_used(st, id, 1, 1), 0);
	assert_int_equal(store_patch_pending(st, 1, 1, &users, &first), 0);
	assert_int_equal(users, 1);
	store_close(st);
}

static void
test_concurrent_first_open(void **state)
{
	char path[700], *msg = NULL;
	struct open_job j;
	pthread_t th;
	sqlite3 *db;
	struct timespec ts = { 0, 500 * 1000 * 1000 };

	(void)state;
	db_path(path, sizeof(path));
	if (is_pg()) {
		/*
		 * The same race on PostgreSQL: migrations run under an
		 * advisory transaction lock, held here while the helper waits.
		 */
		char sql[128];
		PGconn *c = pg_raw(path);

		pg_exec(c, "BEGIN");
		snprintf(sql, sizeof(sql), "SELECT pg_advisory_xact_lock(%lld)",
		    (long long)STORE_PG_LOCK_MIGRATE);
		pg_exec(c, sql);
		pg_exec(c, "CREATE TABLE schema_version(version INTEGER PRIMARY "
		    "KEY, applied BIGINT NOT NULL)");
		memset(&j, 0, sizeof(j));
		j.path = path;
		assert_int_equal(pthread_create(&th, NULL, open_thread, &j), 0);
		nanosleep(&ts, NULL);
		pg_exec(c, "CREATE TABLE pool(id BIGINT PRIMARY KEY)");
		pg_exec(c, "CREATE TABLE patches(id BIGINT PRIMARY KEY, "
		    "base_version BIGINT NOT NULL)");
		pg_exec(c, "INSERT INTO schema_version VALUES(1, 0)");
		pg_exec(c, "COMMIT");
		assert_int_equal(pthread_join(th, NULL), 0);
		PQfinish(c);
		if (j.rc != 0)
			fail_msg("second first-open failed: %d %s", j.rc,
			    j.err);
		assert_int_equal(raw_count(path, "SELECT max(version) FROM "
		    "schema_version"), STORE_SCHEMA_VERSION);
		return;
	}
	/* The file exists in WAL mode with an empty schema_version. */
	assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
	assert_int_equal(sqlite3_exec(db, "PRAGMA journal_mode=WAL;"
	    "CREATE TABLE schema_version(version INTEGER PRIMARY KEY, "
	    "applied INTEGER NOT NULL);", NULL, NULL, &msg), SQLITE_OK);
	assert_int_equal(sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, &msg),
	    SQLITE_OK);

	memset(&j, 0, sizeof(j));
	j.path = path;
	assert_int_equal(pthread_create(&th, NULL, open_thread, &j), 0);
	nanosleep(&ts, NULL);	/* let it read version 0 and block */

	/* Another opener wins the race and migrates to version 1. */
	assert_int_equal(sqlite3_exec(db,
	    "CREATE TABLE pool(id INTEGER PRIMARY KEY);"
	    "CREATE TABLE patches(id INTEGER PRIMARY KEY, "
	    "base_version INTEGER NOT NULL);"
	    "INSERT INTO schema_version VALUES(1, 0);"
	    "COMMIT", NULL, NULL, &msg), SQLITE_OK);
	assert_int_equal(pthread_join(th, NULL), 0);
	sqlite3_close(db);
	if (j.rc != 0)
		fail_msg("second first-open failed: %d %s", j.rc, j.err);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_open_creates_schema),
		cmocka_unit_test(test_reopen_keeps_data),
		cmocka_unit_test(test_newer_schema_refused),
		cmocka_unit_test(test_upgrade_from_previous_schema),
		cmocka_unit_test(test_upgrade_4_to_5),
		cmocka_unit_test(test_upgrade_5_to_6),
		cmocka_unit_test_setup_teardown(test_pool_schema, mem_setup,
		    mem_teardown),
		cmocka_unit_test_setup_teardown(test_pool_schema_late,
		    mem_setup, mem_teardown),
		cmocka_unit_test(test_unknown_backend),
		cmocka_unit_test(test_unwritable_path),
		cmocka_unit_test(test_concurrent_first_open),
		cmocka_unit_test_setup_teardown(test_pool_round_trip,
		    mem_setup, mem_teardown),
		cmocka_unit_test_setup_teardown(test_pool_empty, mem_setup,
		    mem_teardown),
		cmocka_unit_test_setup_teardown(test_pool_repr, mem_setup,
		    mem_teardown),
		cmocka_unit_test_setup_teardown(test_models, mem_setup,
		    mem_teardown),
		cmocka_unit_test_setup_teardown(test_ofa_models, mem_setup,
		    mem_teardown),
		cmocka_unit_test_setup_teardown(test_model_read_offset_overflow,
		    mem_setup, mem_teardown),
		cmocka_unit_test_setup_teardown(test_model_list_many, mem_setup,
		    mem_teardown),
		cmocka_unit_test_setup_teardown(test_model_copy, mem_setup,
		    mem_teardown),
		cmocka_unit_test_setup_teardown(test_model_delete, mem_setup,
		    mem_teardown),
		cmocka_unit_test_setup_teardown(test_model_prune, mem_setup,
		    mem_teardown),
		cmocka_unit_test_setup_teardown(test_devices, mem_setup,
		    mem_teardown),
		cmocka_unit_test_setup_teardown(test_patches, mem_setup,
		    mem_teardown),
		cmocka_unit_test_setup_teardown(test_patches_many, mem_setup,
		    mem_teardown),
		cmocka_unit_test_setup_teardown(test_patch_retention, mem_setup,
		    mem_teardown),
		cmocka_unit_test(test_patch_dup_across_reopen),
		cmocka_unit_test(test_patch_tx_commit),
		cmocka_unit_test(test_patch_tx_rollback),
		cmocka_unit_test(test_patch_tx_lost_session),
		cmocka_unit_test(test_patch_pending),
		cmocka_unit_test_setup_teardown(test_device_get, mem_setup,
		    mem_teardown),
		cmocka_unit_test(test_leader),
		cmocka_unit_test_setup_teardown(test_tasks, mem_setup,
		    mem_teardown),
		cmocka_unit_test_setup_teardown(test_bulk, mem_setup,
		    mem_teardown),
		cmocka_unit_test(test_reconnect),
		cmocka_unit_test_setup_teardown(test_cloud_key, mem_setup,
		    mem_teardown),
		cmocka_unit_test(test_cloud_key_race),
		cmocka_unit_test_setup_teardown(test_authkeys, mem_setup,
		    mem_teardown),
		cmocka_unit_test_setup_teardown(test_authkey_counters_many,
		    mem_setup, mem_teardown),
	};
	char why[600] = "";
	int rc, prc;

	B = &backend_sqlite;
	rc = cmocka_run_group_tests_name("store/sqlite", tests, group_setup,
	    group_teardown);
	B = &backend_pg;
	if ((prc = pg_start(why, sizeof(why))) != 0) {
		if (prc != -77) {
			printf("FAIL: store/postgresql could not start: %s\n",
			    why);
			return 1;
		}
		/* The SQLite half ran; the PostgreSQL half is a skip, which
		 * the runner must count as one (exit 77), not as a pass. */
		printf("SKIP: store/postgresql not run: %s\n", why);
		return rc != 0 ? rc : 77;
	}
	db_seq = 0;
	rc |= cmocka_run_group_tests_name("store/postgresql", tests,
	    group_setup, group_teardown);
	pg_stop();
	return rc;
}
