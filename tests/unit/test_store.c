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

static char tmpdir[256];
static int db_seq;

/* --- backends ------------------------------------------------------------ */

struct backend {
	const char	*name;		/* store_open's backend */
	/* A new, empty database (file or schema). */
	void		(*fresh)(char *buf, size_t len);
	/* For the in-memory tests: ":memory:" or a fresh schema. */
	void		(*mem)(char *buf, size_t len);
	int64_t		(*raw_count)(const char *target, const char *sql);
	void		(*raw_exec)(const char *target, const char *sql);
};

static const struct backend *B;
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

static void
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

static int
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

static struct store *
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

static int64_t
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
static void	put_model(struct store *st, uint64_t v, uint64_t parent,
		    size_t len);
static void	patch(struct store_patch *p, const char *dev, uint64_t req,
		    uint64_t base, void *blob, size_t size);

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
	assert_int_equal(STORE_SCHEMA_VERSION, 5);	/* else update this test */
	db_path(path, sizeof(path));
	st = open_ok(path);
	memset(&d, 0, sizeof(d));
	snprintf(d.id, sizeof(d.id), "dev-old");
	d.user_id = 42;
	snprintf(d.compute_class, sizeof(d.compute_class), "high");
	d.last_seen = 77;
	assert_int_equal(store_device_put(st, &d), 0);
	patch(&p, "dev-old", 9, 1, blob, sizeof(blob));
	assert_int_equal(store_patch_put(st, &p, &id, &dup), 0);
	put_model(st, 1, 0, 300);
	assert_int_equal(store_ofa_put(st, 1, "ofa-blob", 8), 0);
	store_close(st);
	B->raw_exec(path, "DROP TABLE cloud_key; DROP TABLE device_keys; "
	    "ALTER TABLE pool DROP COLUMN side; DROP TABLE pool_schema; "
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
	assert_int_equal(store_patch_put(st, &p, &id2, &dup), 0);
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
	    "INSERT INTO schema_version VALUES(1, 0);"
	    "COMMIT", NULL, NULL, &msg), SQLITE_OK);
	assert_int_equal(pthread_join(th, NULL), 0);
	sqlite3_close(db);
	if (j.rc != 0)
		fail_msg("second first-open failed: %d %s", j.rc, j.err);
}

/* --- pool ---------------------------------------------------------------- */

static void
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

static void
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

static void
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
	    "DROP TABLE pool_schema; DELETE FROM schema_version WHERE "
	    "version = 5");
	assert_int_equal(raw_count(path, "SELECT max(version) FROM "
	    "schema_version"), 4);
	st = open_ok(path);
	assert_int_equal(store_schema_version(st), 5);
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

static void
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

static void
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

static void
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
static void
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

static void
test_model_read_offset_overflow(void **state)
{
	struct store *st = *state;
	uint8_t buf[16];

	put_model(st, 1, 0, 100);
	assert_int_equal(store_model_read(st, 1, UINT64_MAX, buf, 2), -ERANGE);
	assert_int_equal(store_model_read(st, 1, UINT64_MAX - 5, buf, 16),
	    -ERANGE);
}

static void
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
static void
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

static void
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
	assert_int_equal(store_patch_put(st, &p, &id, &dup), 0);
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
static void
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

/* --- devices ------------------------------------------------------------- */

static void
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

static void
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

static void
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
	assert_int_equal(store_patch_put(st, &p, &id1, &dup), 0);
	assert_int_equal(dup, 0);
	assert_true(id1 > 0);

	/* The same request again: a duplicate, same id, nothing written. */
	patch(&p, "dev-a", 1, 5, b2, sizeof(b2));
	dup = -1;
	assert_int_equal(store_patch_put(st, &p, &id2, &dup), 0);
	assert_int_equal(dup, 1);
	assert_int_equal(id2, id1);
	assert_int_equal(store_patch_count(st, &n), 0);
	assert_int_equal(n, 1);

	/* Same request id from another device is a new patch. */
	patch(&p, "dev-b", 1, 7, b2, sizeof(b2));
	assert_int_equal(store_patch_put(st, &p, &id3, &dup), 0);
	assert_int_equal(dup, 0);
	assert_true(id3 != id1);
	/* And a new request id from the first device. */
	patch(&p, "dev-a", 2, 6, b2, sizeof(b2));
	assert_int_equal(store_patch_put(st, &p, &id4, &dup), 0);
	assert_int_equal(dup, 0);
	assert_int_equal(store_patch_count(st, &n), 0);
	assert_int_equal(n, 3);

	/* A resend after other writes is still found. */
	patch(&p, "dev-b", 1, 7, b1, sizeof(b1));
	assert_int_equal(store_patch_put(st, &p, &id2, &dup), 0);
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

static void
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
		assert_int_equal(store_patch_put(st, &p, &id, &dup), 0);
		assert_int_equal(dup, 0);
	}
	assert_int_equal(store_patch_list(st, 50, &list, &ln), 0);
	assert_int_equal(ln, 51);
	assert_int_equal(list[50].request_id, 100);
	store_patch_free(list, ln);
}

/* Patches survive reopening, and idempotency holds across connections. */
static void
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
	assert_int_equal(store_patch_put(st, &p, &id1, &dup), 0);
	assert_int_equal(dup, 0);
	store_close(st);
	st = open_ok(path);
	assert_int_equal(store_patch_put(st, &p, &id2, &dup), 0);
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
static void
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
	assert_int_equal(store_patch_put(st, &p, &id0, &dup[0]), 0);
	assert_int_equal(dup[0], 0);

	assert_int_equal(store_begin(st), 0);
	patch(&p, "dev-t", 2, 1, b, sizeof(b));
	assert_int_equal(store_patch_put(st, &p, &id[0], &dup[0]), 0);
	patch(&p, "dev-u", 2, 1, b, sizeof(b));
	assert_int_equal(store_patch_put(st, &p, &id[1], &dup[1]), 0);
	patch(&p, "dev-t", 2, 1, b, 2);			/* the first again */
	assert_int_equal(store_patch_put(st, &p, &id[2], &dup[2]), 0);
	patch(&p, "dev-t", 1, 1, b, sizeof(b));		/* committed before */
	assert_int_equal(store_patch_put(st, &p, &id[3], &dup[3]), 0);
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
	assert_int_equal(store_patch_put(st, &p, &id[0], &dup[0]), 0);
	assert_int_equal(raw_count(path, "SELECT count(*) FROM patches"), 4);
	store_close(st);
}

/*
 * A rolled-back batch leaves nothing: its requests are new when stored
 * again (each alone, as the fallback does). store_rollback without an
 * open transaction does nothing.
 */
static void
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
	assert_int_equal(store_patch_put(st, &p, &id[0], &dup[0]), 0);
	patch(&p, "dev-r", 2, 1, b, sizeof(b));
	assert_int_equal(store_patch_put(st, &p, &id[1], &dup[1]), 0);
	store_rollback(st);
	assert_int_equal(store_patch_count(st, &n), 0);
	assert_int_equal(n, 0);
	assert_int_equal(raw_count(path, "SELECT count(*) FROM patches"), 0);
	store_rollback(st);			/* none open: a no-op */
	for (int i = 0; i < 2; i++) {
		patch(&p, "dev-r", (uint64_t)i + 1, 1, b, sizeof(b));
		assert_int_equal(store_patch_put(st, &p, &id[2], &dup[2]), 0);
		assert_int_equal(dup[2], 0);	/* not a duplicate */
		assert_int_equal(raw_count(path, "SELECT count(*) FROM "
		    "patches"), i + 1);		/* committed at once */
	}
	/* A new transaction after a rollback works. */
	assert_int_equal(store_begin(st), 0);
	patch(&p, "dev-r", 3, 1, b, sizeof(b));
	assert_int_equal(store_patch_put(st, &p, &id[2], &dup[2]), 0);
	assert_int_equal(store_commit(st), 0);
	assert_int_equal(raw_count(path, "SELECT count(*) FROM patches"), 3);
	store_close(st);
}

/*
 * PostgreSQL: a session lost inside a transaction is not silently
 * replaced (the rest of the batch would commit statement by statement):
 * the writes fail until store_rollback, then the store reconnects.
 */
static void
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
	assert_int_equal(store_patch_put(st, &p, &id, &dup), 0);
	B->raw_exec(path, "SELECT pg_terminate_backend(pid) FROM "
	    "pg_stat_activity WHERE pid <> pg_backend_pid() AND "
	    "backend_type = 'client backend' AND datname = "
	    "current_database()");
	{
		struct timespec ts = { 0, 100 * 1000 * 1000 };
		nanosleep(&ts, NULL);	/* the backend exits on a signal */
	}
	patch(&p, "dev-l", 2, 1, b, sizeof(b));
	assert_int_equal(store_patch_put(st, &p, &id, &dup), -EIO);
	patch(&p, "dev-l", 3, 1, b, sizeof(b));
	assert_int_equal(store_patch_put(st, &p, &id, &dup), -EIO);
	assert_int_not_equal(store_commit(st), 0);
	store_rollback(st);
	assert_int_equal(raw_count(path, "SELECT count(*) FROM patches"), 0);
	assert_int_equal(store_patch_put(st, &p, &id, &dup), 0);
	assert_int_equal(dup, 0);
	assert_int_equal(store_patch_count(st, &n), 0);
	assert_int_equal(n, 1);
	store_close(st);
}

/* --- replicas: device lookup, leadership, tasks ------------------------- */

static void
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
static void
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

static void
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
static void
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
static void
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

static void
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

static void
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
static void
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
static void
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

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_open_creates_schema),
		cmocka_unit_test(test_reopen_keeps_data),
		cmocka_unit_test(test_newer_schema_refused),
		cmocka_unit_test(test_upgrade_from_previous_schema),
		cmocka_unit_test(test_upgrade_4_to_5),
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
		cmocka_unit_test(test_patch_dup_across_reopen),
		cmocka_unit_test(test_patch_tx_commit),
		cmocka_unit_test(test_patch_tx_rollback),
		cmocka_unit_test(test_patch_tx_lost_session),
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
