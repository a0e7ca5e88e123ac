/*
 * store_pg: the PostgreSQL backend of store.h, for several cloudd replicas
 * sharing one database. Same tables, columns and migration numbers as
 * store_sqlite.c, in PostgreSQL's dialect (BIGINT, BYTEA, DOUBLE
 * PRECISION; "user" is quoted). Every query is PQexecParams with binary
 * results, so blobs and doubles come back exactly and without escaping;
 * integer and double parameters go as text ("%lld", "%.17g", both exact).
 *
 * Durability: each write is its own transaction (or one explicit
 * transaction) committed with the server's synchronous_commit (on by
 * default), so a write that returned 0 survives a crash of cloudd and of
 * the server: an upload is still committed before it is acknowledged.
 * Writes between store_begin and store_commit are durable once
 * store_commit returned 0 (the group commit of uploads).
 *
 * Bulk paths use COPY in binary format: pool import streams the samples
 * into pool; storing representation vectors streams (id, vector) into a
 * temporary table and updates pool from it in one statement. Model blobs
 * are stored uncompressed out of line (STORAGE EXTERNAL), so a chunk read
 * with substring() fetches only the TOAST pages it needs.
 *
 * Migrations run in one transaction under an advisory transaction lock,
 * so replicas starting together against a new database run each migration
 * once. The leader lock (store_leader_try) is a session advisory lock on a
 * connection the caller keeps for it alone.
 *
 * One connection per thread at a time, as for every store.
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


static const struct store_ops pg_ops;

/* migrations[i] takes the schema from version i to i + 1 (store_sqlite.c). */
static const char *const migrations[] = {
	"CREATE TABLE pool("
	"  id BIGSERIAL PRIMARY KEY,"
	"  \"user\" BIGINT NOT NULL, item BIGINT NOT NULL, ts BIGINT NOT NULL,"
	"  rating DOUBLE PRECISION NOT NULL, label DOUBLE PRECISION NOT NULL,"
	"  genres BIGINT NOT NULL, hist BYTEA, repr BYTEA, repr_version BIGINT);"
	"CREATE INDEX pool_user ON pool(\"user\");"
	"CREATE TABLE meta(key TEXT PRIMARY KEY, value BIGINT NOT NULL);"
	"CREATE TABLE models("
	"  version BIGINT PRIMARY KEY, parent BIGINT NOT NULL,"
	"  created BIGINT NOT NULL, size BIGINT NOT NULL,"
	"  checksum BYTEA NOT NULL, global_ctr DOUBLE PRECISION NOT NULL,"
	"  blob BYTEA NOT NULL);"
	"ALTER TABLE models ALTER COLUMN blob SET STORAGE EXTERNAL;"
	"CREATE TABLE devices("
	"  device_id TEXT PRIMARY KEY, user_id BIGINT NOT NULL,"
	"  compute_class TEXT NOT NULL, memory_mb BIGINT NOT NULL,"
	"  registered BIGINT NOT NULL, last_seen BIGINT NOT NULL);"
	"CREATE TABLE patches("
	"  id BIGSERIAL PRIMARY KEY, device_id TEXT NOT NULL,"
	"  user_id BIGINT NOT NULL, request_id BIGINT NOT NULL,"
	"  base_version BIGINT NOT NULL, kind TEXT NOT NULL,"
	"  created BIGINT NOT NULL, size BIGINT NOT NULL, blob BYTEA NOT NULL,"
	"  UNIQUE(device_id, request_id));"
	"CREATE INDEX patches_base ON patches(base_version);",
	"CREATE TABLE tasks("
	"  id BIGSERIAL PRIMARY KEY, kind TEXT NOT NULL, arg BIGINT NOT NULL,"
	"  created BIGINT NOT NULL, done BIGINT, result BIGINT);",
	"CREATE TABLE ofa_models("
	"  base_version BIGINT PRIMARY KEY, size BIGINT NOT NULL,"
	"  blob BYTEA NOT NULL);",
	"CREATE TABLE cloud_key("
	"  id INTEGER PRIMARY KEY CHECK (id = 1), pk BYTEA NOT NULL,"
	"  sk BYTEA NOT NULL, created BIGINT NOT NULL);"
	"CREATE TABLE device_keys("
	"  device_id TEXT PRIMARY KEY, pk BYTEA NOT NULL,"
	"  counter BIGINT NOT NULL, enrolled BIGINT NOT NULL);",
	/* 5 (issue 16): the pool's feature schema, per-sample side values. */
	"ALTER TABLE pool ADD COLUMN side BYTEA;"
	"CREATE TABLE pool_schema("
	"  id INTEGER PRIMARY KEY CHECK (id = 1), text TEXT NOT NULL);",
	/* 6: the distillation run that used each patch (store_sqlite.c). */
	"ALTER TABLE patches ADD COLUMN distilled BIGINT NOT NULL DEFAULT 0;"
	"CREATE INDEX patches_pending ON patches(base_version) "
	"  WHERE distilled = 0;",
};


/* --- parameters and results ---------------------------------------------- */

void
a_i64(struct args *a, int64_t x)
{
	snprintf(a->buf[a->n], sizeof(a->buf[0]), "%lld", (long long)x);
	a->v[a->n] = a->buf[a->n];
	a->len[a->n] = a->fmt[a->n] = 0;
	a->n++;
}

void
a_f64(struct args *a, double x)
{
	snprintf(a->buf[a->n], sizeof(a->buf[0]), "%.17g", x);
	a->v[a->n] = a->buf[a->n];
	a->len[a->n] = a->fmt[a->n] = 0;
	a->n++;
}

void
a_text(struct args *a, const char *s)
{
	a->v[a->n] = s;
	a->len[a->n] = a->fmt[a->n] = 0;
	a->n++;
}

void
a_bytes(struct args *a, const void *p, size_t n)
{
	a->v[a->n] = n ? p : "";
	a->len[a->n] = (int)n;
	a->fmt[a->n] = 1;
	a->n++;
}

/* Sets the error from res (or the connection); clears res. */
int
fail_pg(struct pg *st, const char *what, PGresult *res)
{
	const char *m = res ? PQresultErrorMessage(res) : "";
	size_t l;

	if (m == NULL || m[0] == '\0')
		m = PQerrorMessage(st->c);
	snprintf(st->base.err, sizeof(st->base.err), "%s: %s", what, m);
	l = strlen(st->base.err);
	while (l > 0 && (st->base.err[l - 1] == '\n' ||
	    st->base.err[l - 1] == ' '))
		st->base.err[--l] = '\0';
	PQclear(res);
	return -EIO;
}

static int session_init(struct pg *st);

/*
 * A connection the server dropped (restart, failover, idle kill) is
 * reopened before the next statement, never retried after a failed one:
 * the request that saw the failure gets its error, the next one works.
 */
void
ensure_conn(struct pg *st)
{
	/*
	 * Inside store_begin a new session would run the rest of the
	 * transaction's statements each in its own, committed before
	 * store_commit: let them fail instead.
	 */
	if (PQstatus(st->c) == CONNECTION_OK || st->in_tx)
		return;
	st->leader = 0;		/* a session lock does not survive */
	PQreset(st->c);
	if (PQstatus(st->c) == CONNECTION_OK)
		session_init(st);
}

/* Runs sql with args, binary results; *out gets the result (caller clears). */
int
q(struct pg *st, const char *what, const char *sql, const struct args *a,
    PGresult **out)
{
	PGresult *r;

	ensure_conn(st);
	r = PQexecParams(st->c, sql, a ? a->n : 0, NULL,
	    a ? a->v : NULL, a ? a->len : NULL, a ? a->fmt : NULL, 1);
	ExecStatusType s = PQresultStatus(r);

	*out = NULL;
	if (s != PGRES_TUPLES_OK && s != PGRES_COMMAND_OK)
		return fail_pg(st, what, r);
	*out = r;
	return 0;
}

/* Runs a command and drops its result. */
int
cmd(struct pg *st, const char *what, const char *sql, const struct args *a)
{
	PGresult *r;
	int rc = q(st, what, sql, a, &r);

	PQclear(r);
	return rc;
}

int
exec(struct pg *st, const char *sql)
{
	PGresult *r;
	ExecStatusType s;

	ensure_conn(st);
	r = PQexec(st->c, sql);
	s = PQresultStatus(r);

	if (s != PGRES_TUPLES_OK && s != PGRES_COMMAND_OK)
		return fail_pg(st, sql, r);
	PQclear(r);
	return 0;
}

void
rollback(struct pg *st)
{
	PQclear(PQexec(st->c, "ROLLBACK"));
}

/* Binary integers of any width (int2/4/8, bool); NULL reads as 0. */
int64_t
g_i64(const PGresult *r, int row, int col)
{
	const unsigned char *p = (const unsigned char *)PQgetvalue(r, row, col);
	int len = PQgetlength(r, row, col);
	uint64_t v = 0;

	if (PQgetisnull(r, row, col))
		return 0;
	for (int i = 0; i < len && i < 8; i++)
		v = v << 8 | p[i];
	if (len == 4)
		return (int32_t)(uint32_t)v;
	if (len == 2)
		return (int16_t)(uint16_t)v;
	return (int64_t)v;
}

double
g_f64(const PGresult *r, int row, int col)
{
	const unsigned char *p = (const unsigned char *)PQgetvalue(r, row, col);
	uint64_t v = 0;
	double d;

	if (PQgetisnull(r, row, col) || PQgetlength(r, row, col) != 8)
		return 0;
	for (int i = 0; i < 8; i++)
		v = v << 8 | p[i];
	memcpy(&d, &v, sizeof(d));
	return d;
}

void
g_text(const PGresult *r, int row, int col, char *buf, size_t len)
{
	snprintf(buf, len, "%s", PQgetisnull(r, row, col) ? "" :
	    PQgetvalue(r, row, col));
}

uint64_t
changes(const PGresult *r)
{
	return strtoull(PQcmdTuples((PGresult *)r), NULL, 10);
}

/* --- COPY in binary format ----------------------------------------------- */

static void
cb_flush(struct copybuf *cb)
{
	if (cb->rc == 0 && cb->n > 0 &&
	    PQputCopyData(cb->st->c, (const char *)cb->b, (int)cb->n) != 1)
		cb->rc = fail_pg(cb->st, "copy data", NULL);
	cb->n = 0;
}

static void
cb_put(struct copybuf *cb, const void *p, size_t n)
{
	if (cb->n + n > cb->cap)
		cb_flush(cb);
	if (n > cb->cap) {
		cb->cap = n;
		cb->b = xreallocarray(cb->b, cb->cap, 1);
	}
	memcpy(cb->b + cb->n, p, n);
	cb->n += n;
}

void
cb_u16(struct copybuf *cb, uint16_t v)
{
	unsigned char b[2] = { (unsigned char)(v >> 8), (unsigned char)v };

	cb_put(cb, b, 2);
}

static void
cb_u32(struct copybuf *cb, uint32_t v)
{
	unsigned char b[4] = { (unsigned char)(v >> 24),
		(unsigned char)(v >> 16), (unsigned char)(v >> 8),
		(unsigned char)v };

	cb_put(cb, b, 4);
}

void
cb_i64(struct copybuf *cb, int64_t x)
{
	uint64_t v = (uint64_t)x;

	cb_u32(cb, 8);
	cb_u32(cb, (uint32_t)(v >> 32));
	cb_u32(cb, (uint32_t)v);
}

void
cb_f64(struct copybuf *cb, double d)
{
	uint64_t v;

	memcpy(&v, &d, sizeof(v));
	cb_i64(cb, (int64_t)v);
}

void
cb_bytes(struct copybuf *cb, const void *p, size_t n)
{
	if (p == NULL) {
		cb_u32(cb, 0xffffffffu);	/* NULL */
		return;
	}
	cb_u32(cb, (uint32_t)n);
	cb_put(cb, p, n);
}

/* Starts COPY ... FROM STDIN (FORMAT binary) and writes the header. */
int
cb_begin(struct copybuf *cb, struct pg *st, const char *sql)
{
	static const unsigned char sig[11] = "PGCOPY\n\377\r\n";
	PGresult *r;

	memset(cb, 0, sizeof(*cb));
	cb->st = st;
	r = PQexec(st->c, sql);
	if (PQresultStatus(r) != PGRES_COPY_IN)
		return fail_pg(st, "copy", r);
	PQclear(r);
	cb->cap = 1 << 20;
	cb->b = xmalloc(cb->cap);
	cb_put(cb, sig, sizeof(sig));	/* with its trailing NUL */
	cb_u32(cb, 0);			/* flags */
	cb_u32(cb, 0);			/* header extension length */
	return 0;
}

/* Writes the trailer and ends the COPY; 0 when the server took it all. */
int
cb_end(struct copybuf *cb)
{
	struct pg *st = cb->st;
	PGresult *r;
	int rc;

	cb_u16(cb, 0xffff);
	cb_flush(cb);
	free(cb->b);
	cb->b = NULL;
	if (PQputCopyEnd(st->c, cb->rc ? "client error" : NULL) != 1 &&
	    cb->rc == 0)
		cb->rc = fail_pg(st, "copy end", NULL);
	rc = cb->rc;
	while ((r = PQgetResult(st->c)) != NULL) {
		if (PQresultStatus(r) != PGRES_COMMAND_OK && rc == 0)
			rc = fail_pg(st, "copy", r);
		else
			PQclear(r);
	}
	return rc;
}

/* --- open, schema -------------------------------------------------------- */

static void
quiet_cb(void *arg, const char *msg)
{
	(void)arg;
	(void)msg;	/* NOTICEs ("already exists, skipping") are not ours */
}

static int
pg_schema_version(struct store *base)
{
	struct pg *st = PG(base);
	PGresult *r;
	int v = -1;

	if (q(st, "schema version", "SELECT coalesce(max(version), 0) FROM "
	    "schema_version", NULL, &r) != 0)
		return -1;
	if (PQntuples(r) == 1)
		v = (int)g_i64(r, 0, 0);
	PQclear(r);
	return v;
}

static int
migrate(struct pg *st)
{
	int v, n = sizeof(migrations) / sizeof(migrations[0]);
	char sql[160];

	if (exec(st, "BEGIN") != 0)
		return -EIO;
	snprintf(sql, sizeof(sql), "SELECT pg_advisory_xact_lock(%lld)",
	    (long long)STORE_PG_LOCK_MIGRATE);
	if (exec(st, sql) != 0 ||
	    exec(st, "CREATE TABLE IF NOT EXISTS schema_version("
	    "version INTEGER PRIMARY KEY, applied BIGINT NOT NULL)") != 0)
		goto fail;
	if ((v = pg_schema_version(&st->base)) < 0)
		goto fail;
	if (v > n) {
		snprintf(st->base.err, sizeof(st->base.err), "database schema "
		    "version %d is newer than this cloudd (%d)", v, n);
		rollback(st);
		return -EPROTO;
	}
	for (; v < n; v++) {
		snprintf(sql, sizeof(sql), "INSERT INTO schema_version "
		    "VALUES(%d, " NOW_SQL ")", v + 1);
		if (exec(st, migrations[v]) != 0 || exec(st, sql) != 0) {
			char keep[200];
			snprintf(keep, sizeof(keep), "%.199s", st->base.err);
			snprintf(st->base.err, sizeof(st->base.err),
			    "migration %d: %.200s", v + 1, keep);
			goto fail;
		}
	}
	return exec(st, "COMMIT");
fail:
	rollback(st);
	return -EIO;
}

static void
pg_close(struct store *base)
{
	struct pg *st = PG(base);

	PQfinish(st->c);
	free(st);
}

/* Per-session settings, again after a reconnect. */
static int
session_init(struct pg *st)
{
	char sql[96];
	PGresult *r;
	int rc = 0;

	PQsetNoticeProcessor(st->c, quiet_cb, NULL);
	/* Row and table locks wait as long as SQLite's busy timeout would. */
	snprintf(sql, sizeof(sql), "SET lock_timeout = %d", st->busy_ms);
	r = PQexec(st->c, sql);
	if (PQresultStatus(r) != PGRES_COMMAND_OK)
		return fail_pg(st, sql, r);
	PQclear(r);
	return rc;
}

int
store_pg_open(struct store **out, const char *target, int busy_ms,
    char *err, size_t errlen)
{
	struct pg *st;
	int rc;

	*out = NULL;
	st = xcalloc(1, sizeof(*st));
	st->base.ops = &pg_ops;
	st->c = PQconnectdb(target);
	if (st->c == NULL || PQstatus(st->c) != CONNECTION_OK) {
		/* Never echo target: a connection string may hold a password. */
		fail_pg(st, "postgresql", NULL);
		snprintf(err, errlen, "%s", st->base.err);
		rc = -EIO;
		goto fail;
	}
	st->busy_ms = busy_ms;
	if ((rc = session_init(st)) != 0 || (rc = migrate(st)) != 0) {
		snprintf(err, errlen, "postgresql %s/%s: %s", PQdb(st->c),
		    PQhost(st->c), st->base.err);
		goto fail;
	}
	st->base.err[0] = '\0';
	*out = &st->base;
	return 0;
fail:
	pg_close(&st->base);
	return rc;
}


/* Counts the rows a query returns in its first column. */
int
count(struct pg *st, const char *sql, uint64_t *n)
{
	PGresult *r;

	if (q(st, "count", sql, NULL, &r) != 0)
		return -EIO;
	*n = (uint64_t)g_i64(r, 0, 0);
	PQclear(r);
	return 0;
}

/* --- explicit transactions (store_begin) ---------------------------------- */

static int
pg_begin(struct store *base)
{
	struct pg *st = PG(base);
	int rc;

	if ((rc = exec(st, "BEGIN")) == 0)
		st->in_tx = 1;
	return rc;
}

/*
 * COMMIT of a transaction that an error aborted answers "ROLLBACK" with
 * PGRES_COMMAND_OK: that is a failure too.
 */
static int
pg_commit(struct store *base)
{
	struct pg *st = PG(base);
	PGresult *r;

	/* Whatever COMMIT answered, the transaction is over. */
	r = PQexec(st->c, "COMMIT");
	st->in_tx = 0;
	if (PQresultStatus(r) != PGRES_COMMAND_OK)
		return fail_pg(st, "COMMIT", r);
	if (strcmp(PQcmdStatus(r), "COMMIT") != 0) {
		PQclear(r);
		snprintf(st->base.err, sizeof(st->base.err), "COMMIT: the "
		    "transaction was aborted and rolled back");
		return -EIO;
	}
	PQclear(r);
	return 0;
}

/* Keeps store_errmsg; on a dead connection there is nothing to end. */
static void
pg_rollback(struct store *base)
{
	struct pg *st = PG(base);

	if (PQstatus(st->c) == CONNECTION_OK &&
	    PQtransactionStatus(st->c) != PQTRANS_IDLE)
		rollback(st);
	st->in_tx = 0;
}

static const struct store_ops pg_ops = {
	.name = "postgresql",
	.close = pg_close,
	.schema_version = pg_schema_version,
	.begin = pg_begin,
	.commit = pg_commit,
	.rollback = pg_rollback,
	.pool_insert = pg_pool_insert,
	.pool_schema = pg_pool_schema,
	.pool_count = pg_pool_count,
	.pool_load = pg_pool_load,
	.pool_set_repr = pg_pool_set_repr,
	.pool_get_repr = pg_pool_get_repr,
	.model_put = pg_model_put,
	.model_info = pg_model_info,
	.model_read = pg_model_read,
	.model_list = pg_model_list,
	.model_copy = pg_model_copy,
	.model_delete = pg_model_delete,
	.model_prune = pg_model_prune,
	.ofa_put = pg_ofa_put,
	.ofa_get = pg_ofa_get,
	.device_put = pg_device_put,
	.device_get = pg_device_get,
	.device_list = pg_device_list,
	.device_count = pg_device_count,
	.user_device_count = pg_user_device_count,
	.patch_put = pg_patch_put,
	.patch_count = pg_patch_count,
	.patch_list = pg_patch_list,
	.patch_pending = pg_patch_pending,
	.patch_used = pg_patch_used,
	.cloud_key = pg_cloud_key,
	.authkey_put = pg_authkey_put,
	.authkey_get = pg_authkey_get,
	.authkey_list = pg_authkey_list,
	.authkey_counters = pg_authkey_counters,
	.leader_try = pg_leader_try,
	.task_add = pg_task_add,
	.task_next = pg_task_next,
	.task_done = pg_task_done,
};
