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
#include "shared/data/dataset.h"
#include "shared/xmalloc.h"

struct pg {
	struct store	 base;		/* first: a struct store * is a struct pg * */
	PGconn		*c;
	int		 leader;	/* this session holds the leader lock */
	int		 busy_ms;	/* lock_timeout of the session */
	int		 in_tx;		/* inside store_begin: no reconnect */
};

#define PG(s)	((struct pg *)(s))

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
};

#define NOW_SQL	"extract(epoch from now())::bigint"

/* --- parameters and results ---------------------------------------------- */

#define MAXARGS 10

struct args {
	int		 n;
	const char	*v[MAXARGS];
	int		 len[MAXARGS], fmt[MAXARGS];
	char		 buf[MAXARGS][32];
};

static void
a_i64(struct args *a, int64_t x)
{
	snprintf(a->buf[a->n], sizeof(a->buf[0]), "%lld", (long long)x);
	a->v[a->n] = a->buf[a->n];
	a->len[a->n] = a->fmt[a->n] = 0;
	a->n++;
}

static void
a_f64(struct args *a, double x)
{
	snprintf(a->buf[a->n], sizeof(a->buf[0]), "%.17g", x);
	a->v[a->n] = a->buf[a->n];
	a->len[a->n] = a->fmt[a->n] = 0;
	a->n++;
}

static void
a_text(struct args *a, const char *s)
{
	a->v[a->n] = s;
	a->len[a->n] = a->fmt[a->n] = 0;
	a->n++;
}

static void
a_bytes(struct args *a, const void *p, size_t n)
{
	a->v[a->n] = n ? p : "";
	a->len[a->n] = (int)n;
	a->fmt[a->n] = 1;
	a->n++;
}

/* Sets the error from res (or the connection); clears res. */
static int
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
static void
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
static int
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
static int
cmd(struct pg *st, const char *what, const char *sql, const struct args *a)
{
	PGresult *r;
	int rc = q(st, what, sql, a, &r);

	PQclear(r);
	return rc;
}

static int
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

static void
rollback(struct pg *st)
{
	PQclear(PQexec(st->c, "ROLLBACK"));
}

/* Binary integers of any width (int2/4/8, bool); NULL reads as 0. */
static int64_t
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

static double
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

static void
g_text(const PGresult *r, int row, int col, char *buf, size_t len)
{
	snprintf(buf, len, "%s", PQgetisnull(r, row, col) ? "" :
	    PQgetvalue(r, row, col));
}

static uint64_t
changes(const PGresult *r)
{
	return strtoull(PQcmdTuples((PGresult *)r), NULL, 10);
}

/* --- COPY in binary format ----------------------------------------------- */

struct copybuf {
	struct pg	*st;
	unsigned char	*b;
	size_t		 n, cap;
	int		 rc;
};

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

static void
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

static void
cb_i64(struct copybuf *cb, int64_t x)
{
	uint64_t v = (uint64_t)x;

	cb_u32(cb, 8);
	cb_u32(cb, (uint32_t)(v >> 32));
	cb_u32(cb, (uint32_t)v);
}

static void
cb_f64(struct copybuf *cb, double d)
{
	uint64_t v;

	memcpy(&v, &d, sizeof(v));
	cb_i64(cb, (int64_t)v);
}

static void
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
static int
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
static int
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

/* --- pool ---------------------------------------------------------------- */

static int
set_meta(struct pg *st, const char *key, int64_t v)
{
	struct args a = { 0 };

	a_text(&a, key);
	a_i64(&a, v);
	return cmd(st, "meta", "INSERT INTO meta VALUES($1, $2) ON CONFLICT"
	    "(key) DO UPDATE SET value = greatest(meta.value, EXCLUDED.value)",
	    &a);
}

static int64_t
get_meta(struct pg *st, const char *key)
{
	struct args a = { 0 };
	PGresult *r;
	int64_t v = 0;

	a_text(&a, key);
	if (q(st, "meta", "SELECT value FROM meta WHERE key = $1", &a, &r))
		return 0;
	if (PQntuples(r) == 1)
		v = g_i64(r, 0, 0);
	PQclear(r);
	return v;
}

static int	count(struct pg *st, const char *sql, uint64_t *n);

/* n_side and side_card<k> (the schema fixes them: greatest() is a no-op). */
static int
set_side_meta(struct pg *st, const struct dataset *ds)
{
	char key[32];
	int rc;

	if (ds->n_side == 0 || ds->n_side > SAMPLE_SIDE_MAX)
		return 0;
	rc = set_meta(st, "n_side", ds->n_side);
	for (uint32_t k = 0; k < ds->n_side && rc == 0; k++) {
		snprintf(key, sizeof(key), "side_card%u", k);
		rc = set_meta(st, key, ds->side_card[k]);
	}
	return rc;
}

static void
get_side_meta(struct pg *st, struct dataset *ds)
{
	char key[32];
	int64_t ns = get_meta(st, "n_side");

	ds->n_side = ns > 0 && ns <= SAMPLE_SIDE_MAX ? (uint32_t)ns : 0;
	for (uint32_t k = 0; k < ds->n_side; k++) {
		snprintf(key, sizeof(key), "side_card%u", k);
		ds->side_card[k] = (uint32_t)get_meta(st, key);
	}
}

/* The pool's schema text into *out (malloc'ed), or NULL when none. */
static int
schema_get(struct pg *st, char **out)
{
	PGresult *r;

	*out = NULL;
	if (q(st, "pool schema", "SELECT text FROM pool_schema WHERE id = 1",
	    NULL, &r) != 0)
		return -EIO;
	if (PQntuples(r) == 1)
		*out = xstrdup(PQgetvalue(r, 0, 0));
	PQclear(r);
	return 0;
}

static int
pg_pool_schema(struct store *base, char **schema)
{
	int rc = schema_get(PG(base), schema);

	return rc == 0 && *schema == NULL ? -ENOENT : rc;
}

/*
 * A pool keeps one schema (store.h). Inside the transaction; the row lock
 * on pool_schema (or the table lock when there is none yet) keeps two
 * replicas' imports from both storing one.
 */
static int
schema_put(struct pg *st, const char *schema)
{
	struct args a = { 0 };
	char *old;
	uint64_t n = 0;
	int rc;

	if ((rc = exec(st, "LOCK TABLE pool_schema IN EXCLUSIVE MODE")) != 0 ||
	    (rc = schema_get(st, &old)) != 0)
		return rc;
	if (old != NULL || schema == NULL) {
		rc = (old == NULL) == (schema == NULL) && (old == NULL ||
		    strcmp(old, schema) == 0) ? 0 : -EEXIST;
		free(old);
		if (rc != 0)
			snprintf(st->base.err, sizeof(st->base.err), "the "
			    "pool's feature schema differs from this "
			    "import's");
		return rc;
	}
	if ((rc = count(st, "SELECT count(*) FROM pool", &n)) != 0)
		return rc;
	if (n > 0) {
		snprintf(st->base.err, sizeof(st->base.err), "the pool holds "
		    "%llu samples without a feature schema",
		    (unsigned long long)n);
		return -EEXIST;
	}
	a_text(&a, schema);
	return cmd(st, "pool schema", "INSERT INTO pool_schema VALUES(1, $1)",
	    &a);
}

static int
pg_pool_insert(struct store *base, const struct dataset *ds,
    const char *schema, uint64_t *rows)
{
	struct pg *st = PG(base);
	struct copybuf cb;
	int rc;

	*rows = 0;
	if ((rc = exec(st, "BEGIN")) != 0)
		return rc;
	if ((rc = schema_put(st, schema)) != 0)
		goto fail;
	if ((rc = cb_begin(&cb, st, "COPY pool(\"user\", item, ts, rating, "
	    "label, genres, hist, side) FROM STDIN (FORMAT binary)")) != 0)
		goto fail;
	for (size_t i = 0; i < ds->n && cb.rc == 0; i++) {
		const struct sample *x = &ds->s[i];
		cb_u16(&cb, 8);
		cb_i64(&cb, x->user);
		cb_i64(&cb, x->item);
		cb_i64(&cb, x->ts);
		cb_f64(&cb, x->rating);
		cb_f64(&cb, x->label);
		cb_i64(&cb, x->genres);
		cb_bytes(&cb, x->hist_n > 0 ? sample_hist(ds, x) : NULL,
		    x->hist_n * sizeof(uint32_t));
		cb_bytes(&cb, ds->n_side > 0 && ds->n_side <= SAMPLE_SIDE_MAX ?
		    x->side : NULL, ds->n_side * sizeof(uint32_t));
	}
	if ((rc = cb_end(&cb)) != 0)
		goto fail;
	if ((rc = set_meta(st, "n_users", ds->n_users)) != 0 ||
	    (rc = set_meta(st, "n_items", ds->n_items)) != 0 ||
	    (rc = set_meta(st, "n_genres", ds->n_genres)) != 0 ||
	    (rc = set_side_meta(st, ds)) != 0 ||
	    (rc = exec(st, "COMMIT")) != 0)
		goto fail;
	*rows = ds->n;
	return 0;
fail:
	rollback(st);
	return rc;
}

static int
count(struct pg *st, const char *sql, uint64_t *n)
{
	PGresult *r;

	if (q(st, "count", sql, NULL, &r) != 0)
		return -EIO;
	*n = (uint64_t)g_i64(r, 0, 0);
	PQclear(r);
	return 0;
}

static int
pg_pool_count(struct store *base, uint64_t *n)
{
	return count(PG(base), "SELECT count(*) FROM pool", n);
}

static int
pg_pool_load(struct store *base, struct dataset *ds, uint64_t **rowid)
{
	struct pg *st = PG(base);
	PGresult *r;
	uint64_t *ids;
	int n;

	if (q(st, "pool load", "SELECT id, \"user\", item, ts, rating, label, "
	    "genres, hist, side FROM pool ORDER BY id", NULL, &r) != 0)
		return -EIO;
	n = PQntuples(r);
	ids = xcalloc(n ? n : 1, sizeof(*ids));
	for (int i = 0; i < n; i++) {
		struct sample x;
		size_t hn = PQgetlength(r, i, 7) / sizeof(uint32_t);
		uint32_t h[SAMPLE_HIST_MAX];

		memset(&x, 0, sizeof(x));
		x.user = (uint32_t)g_i64(r, i, 1);
		x.item = (uint32_t)g_i64(r, i, 2);
		x.ts = g_i64(r, i, 3);
		x.rating = (float)g_f64(r, i, 4);
		x.label = (float)g_f64(r, i, 5);
		x.genres = (uint32_t)g_i64(r, i, 6);
		if (hn > SAMPLE_HIST_MAX)
			hn = SAMPLE_HIST_MAX;
		memcpy(h, PQgetvalue(r, i, 7), hn * sizeof(uint32_t));
		{
			/* side values (a row stored before schema 5: none) */
			size_t sb = (size_t)PQgetlength(r, i, 8);

			memcpy(x.side, PQgetvalue(r, i, 8), sb < sizeof(x.side) ?
			    sb : sizeof(x.side));
		}
		ids[ds->n] = (uint64_t)g_i64(r, i, 0);
		dataset_append(ds, &x, h, hn);
	}
	PQclear(r);
	ds->n_users = (uint32_t)get_meta(st, "n_users");
	ds->n_items = (uint32_t)get_meta(st, "n_items");
	ds->n_genres = (uint32_t)get_meta(st, "n_genres");
	get_side_meta(st, ds);
	*rowid = ids;
	return 0;
}

static int
pg_pool_set_repr(struct store *base, const uint64_t *rowid,
    const float *repr, size_t n, int dim, uint64_t version)
{
	struct pg *st = PG(base);
	struct copybuf cb;
	struct args a = { 0 };
	int rc;

	if ((rc = exec(st, "BEGIN")) != 0)
		return rc;
	if ((rc = exec(st, "CREATE TEMP TABLE IF NOT EXISTS repr_in(id BIGINT,"
	    " repr BYTEA) ON COMMIT DELETE ROWS")) != 0 ||
	    (rc = cb_begin(&cb, st, "COPY repr_in FROM STDIN (FORMAT binary)"))
	    != 0)
		goto fail;
	for (size_t i = 0; i < n && cb.rc == 0; i++) {
		cb_u16(&cb, 2);
		cb_i64(&cb, (int64_t)rowid[i]);
		cb_bytes(&cb, repr + i * dim, dim * sizeof(float));
	}
	if ((rc = cb_end(&cb)) != 0)
		goto fail;
	a_i64(&a, (int64_t)version);
	if ((rc = cmd(st, "repr update", "UPDATE pool SET repr = r.repr, "
	    "repr_version = $1 FROM repr_in r WHERE pool.id = r.id", &a)) != 0 ||
	    (rc = exec(st, "COMMIT")) != 0)
		goto fail;
	return 0;
fail:
	rollback(st);
	return rc;
}

static int
pg_pool_get_repr(struct store *base, float *repr, size_t n, int dim,
    uint64_t version)
{
	struct pg *st = PG(base);
	PGresult *r;
	size_t i = 0, rows;
	int rc = 0;

	if (q(st, "repr", "SELECT repr, repr_version FROM pool ORDER BY id",
	    NULL, &r) != 0)
		return -EIO;
	rows = (size_t)PQntuples(r);
	for (; i < rows && i < n; i++) {
		if (PQgetisnull(r, i, 1) ||
		    (uint64_t)g_i64(r, i, 1) != version ||
		    PQgetlength(r, i, 0) != (int)(dim * sizeof(float))) {
			rc = -ENOENT;
			break;
		}
		memcpy(repr + i * dim, PQgetvalue(r, i, 0),
		    dim * sizeof(float));
	}
	if (rc == 0 && i != n)
		rc = -ENOENT;
	PQclear(r);
	return rc;
}

/* --- models -------------------------------------------------------------- */

#define MODEL_COLS "version, parent, created, size, checksum, global_ctr"

static void
read_info(const PGresult *r, int row, struct store_model_info *mi)
{
	memset(mi, 0, sizeof(*mi));
	mi->version = (uint64_t)g_i64(r, row, 0);
	mi->parent = (uint64_t)g_i64(r, row, 1);
	mi->created = g_i64(r, row, 2);
	mi->size = (uint64_t)g_i64(r, row, 3);
	if (PQgetlength(r, row, 4) == 32)
		memcpy(mi->checksum, PQgetvalue(r, row, 4), 32);
	mi->global_ctr = g_f64(r, row, 5);
}

static int
pg_model_put(struct store *base, const struct store_model_info *mi,
    const void *blob, size_t len)
{
	struct pg *st = PG(base);
	struct args a = { 0 };

	a_i64(&a, (int64_t)mi->version);
	a_i64(&a, (int64_t)mi->parent);
	a_i64(&a, mi->created);
	a_i64(&a, (int64_t)len);
	a_bytes(&a, mi->checksum, 32);
	a_f64(&a, mi->global_ctr);
	a_bytes(&a, blob, len);
	return cmd(st, "model insert", "INSERT INTO models(version, parent, "
	    "created, size, checksum, global_ctr, blob) VALUES($1, $2, $3, $4, "
	    "$5, $6, $7)", &a);
}

static int
pg_ofa_put(struct store *base, uint64_t version, const void *blob, size_t len)
{
	struct pg *st = PG(base);
	struct args a = { 0 };

	PGresult *r;
	int rc;

	a_i64(&a, (int64_t)version);
	a_i64(&a, (int64_t)len);
	a_bytes(&a, blob, len);
	/* Only for a stored version: it may be pruned while OFA trains. */
	if ((rc = q(st, "ofa insert", "INSERT INTO ofa_models(base_version, "
	    "size, blob) SELECT $1::bigint, $2::bigint, $3::bytea WHERE "
	    "EXISTS (SELECT 1 FROM models WHERE version = $1::bigint) "
	    "ON CONFLICT (base_version) DO UPDATE SET "
	    "size = EXCLUDED.size, blob = EXCLUDED.blob", &a, &r)) == 0 &&
	    changes(r) == 0) {
		snprintf(st->base.err, sizeof(st->base.err), "model v%llu is "
		    "not stored (pruned?)", (unsigned long long)version);
		rc = -ENOENT;
	}
	PQclear(r);
	return rc;
}

static int
pg_ofa_get(struct store *base, uint64_t version, void **blob, size_t *len)
{
	struct pg *st = PG(base);
	struct args a = { 0 };
	PGresult *r;
	int rc = -ENOENT;

	a_i64(&a, (int64_t)version);
	if (q(st, "ofa read", "SELECT blob FROM ofa_models WHERE "
	    "base_version = $1", &a, &r) != 0)
		return -EIO;
	if (PQntuples(r) == 1) {
		*len = (size_t)PQgetlength(r, 0, 0);
		*blob = xmalloc(*len ? *len : 1);
		if (*len > 0)
			memcpy(*blob, PQgetvalue(r, 0, 0), *len);
		rc = 0;
	}
	PQclear(r);
	return rc;
}

static int
pg_model_info(struct store *base, uint64_t version,
    struct store_model_info *mi)
{
	struct pg *st = PG(base);
	struct args a = { 0 };
	PGresult *r;
	int rc = -ENOENT;

	if (version)
		a_i64(&a, (int64_t)version);
	if (q(st, "model info", version ? "SELECT " MODEL_COLS " FROM models "
	    "WHERE version = $1" : "SELECT " MODEL_COLS " FROM models ORDER BY "
	    "version DESC LIMIT 1", &a, &r) != 0)
		return -EIO;
	if (PQntuples(r) == 1) {
		read_info(r, 0, mi);
		rc = 0;
	}
	PQclear(r);
	return rc;
}

static int
pg_model_read(struct store *base, uint64_t version, uint64_t off, void *buf,
    size_t len)
{
	struct pg *st = PG(base);
	struct args a = { 0 };
	PGresult *r;
	int rc = 0;

	/*
	 * bytea is below 1 GiB, so clamping to BIG keeps every answer: a
	 * clamped range is past the end either way. BIG + 1 must still fit
	 * int4, as PostgreSQL folds the substring() arguments even where the
	 * CASE does not reach them. One round trip: the range is checked
	 * inside the query.
	 */
	enum { BIG = 0x40000000 };
	a_i64(&a, (int64_t)version);
	a_i64(&a, off > BIG ? BIG : (int64_t)off);
	a_i64(&a, len > BIG ? BIG : (int64_t)len);
	if (q(st, "model read", "SELECT octet_length(blob), CASE WHEN "
	    "$2::int8 + $3::int8 <= octet_length(blob) THEN substring(blob "
	    "FROM ($2::int8 + 1)::int4 FOR $3::int4) END FROM models WHERE "
	    "version = $1", &a, &r) != 0)
		return -EIO;
	if (PQntuples(r) != 1)
		rc = -ENOENT;
	else if (PQgetisnull(r, 0, 1) || (size_t)PQgetlength(r, 0, 1) != len)
		rc = -ERANGE;
	else if (len > 0)
		memcpy(buf, PQgetvalue(r, 0, 1), len);
	PQclear(r);
	return rc;
}

static int
pg_model_list(struct store *base, struct store_model_info **out, size_t *n)
{
	struct pg *st = PG(base);
	PGresult *r;

	*n = 0;
	*out = NULL;
	if (q(st, "model list", "SELECT " MODEL_COLS " FROM models ORDER BY "
	    "version", NULL, &r) != 0)
		return -EIO;
	*n = (size_t)PQntuples(r);
	*out = xcalloc(*n + 1, sizeof(**out));
	for (size_t i = 0; i < *n; i++)
		read_info(r, (int)i, &(*out)[i]);
	PQclear(r);
	return 0;
}

static int
pg_model_copy(struct store *base, uint64_t from, struct store_model_info *mi)
{
	struct pg *st = PG(base);
	struct args a = { 0 };
	PGresult *r;
	int rc;

	a_i64(&a, (int64_t)mi->version);
	a_i64(&a, (int64_t)mi->parent);
	a_i64(&a, mi->created);
	a_i64(&a, (int64_t)from);
	if (q(st, "model copy", "INSERT INTO models(version, parent, created, "
	    "size, checksum, global_ctr, blob) SELECT $1, $2, $3, size, "
	    "checksum, global_ctr, blob FROM models WHERE version = $4", &a,
	    &r) != 0)
		return -EIO;
	rc = changes(r) == 1 ? 0 : -ENOENT;
	PQclear(r);
	if (rc == 0)
		rc = pg_model_info(base, mi->version, mi);
	return rc;
}

static int
pg_model_delete(struct store *base, uint64_t version)
{
	struct pg *st = PG(base);
	struct args a = { 0 };
	PGresult *r;
	int rc;

	a_i64(&a, (int64_t)version);
	if (q(st, "model delete", "DELETE FROM models WHERE version = $1", &a,
	    &r) != 0)
		return -EIO;
	rc = changes(r) == 1 ? 0 : -ENOENT;
	PQclear(r);
	return rc;
}

static int
pg_model_prune(struct store *base, size_t keep, uint64_t keep_also,
    uint64_t **deleted, size_t *n, uint64_t *bytes)
{
	struct pg *st = PG(base);
	struct args a = { 0 };
	struct store_model_info cur;
	PGresult *r = NULL;
	uint64_t *v = NULL;
	size_t off;
	int rc;

	*n = 0;
	*bytes = 0;
	if (deleted != NULL)
		*deleted = NULL;
	if (keep < 1)
		keep = 1;	/* never leave the store without a model */
	off = keep;
	if ((rc = exec(st, "BEGIN")) != 0)
		return rc;
	/* Serialises with model writers on other replicas. */
	if ((rc = exec(st, "LOCK TABLE models IN SHARE ROW EXCLUSIVE MODE")))
		goto fail;
	if (keep_also != 0 && pg_model_info(base, keep_also, &cur) == 0) {
		a_i64(&a, (int64_t)keep_also);
		if ((rc = q(st, "model prune", "SELECT count(*) FROM models "
		    "WHERE version > $1", &a, &r)) != 0)
			goto fail;
		/* The served version is among the keep newest. */
		if ((uint64_t)g_i64(r, 0, 0) < keep)
			off = keep - 1;
		PQclear(r);
		r = NULL;
	}
	a.n = 0;
	a_i64(&a, (int64_t)off);
	a_i64(&a, (int64_t)keep_also);
	if ((rc = q(st, "model prune", "SELECT version, size FROM models "
	    "WHERE version != $2 ORDER BY version ASC LIMIT greatest(0, "
	    "(SELECT count(*) FROM models WHERE version != $2) - $1)", &a,
	    &r)) != 0)
		goto fail;
	*n = (size_t)PQntuples(r);
	v = xcalloc(*n + 1, sizeof(*v));
	for (size_t i = 0; i < *n; i++) {
		v[i] = (uint64_t)g_i64(r, (int)i, 0);
		*bytes += (uint64_t)g_i64(r, (int)i, 1);
	}
	PQclear(r);
	r = NULL;
	for (size_t i = 0; i < *n; i++) {
		a.n = 0;
		a_i64(&a, (int64_t)v[i]);
		/* A version's OFA model goes with it. */
		if ((rc = cmd(st, "model prune", "DELETE FROM models WHERE "
		    "version = $1", &a)) != 0 || (rc = cmd(st, "model prune",
		    "DELETE FROM ofa_models WHERE base_version = $1", &a)) != 0)
			goto fail;
	}
	if ((rc = exec(st, "COMMIT")) != 0)
		goto fail;
	if (deleted != NULL)
		*deleted = v;
	else
		free(v);
	return 0;
fail:
	PQclear(r);
	rollback(st);
	free(v);
	*n = 0;
	*bytes = 0;
	return rc;
}

/* --- devices ------------------------------------------------------------- */

static int
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

static int
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

static int
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

static int
pg_device_count(struct store *base, uint64_t *n)
{
	return count(PG(base), "SELECT count(*) FROM devices", n);
}

static int
pg_user_device_count(struct store *base, uint32_t user, uint64_t *n)
{
	char q[96];

	snprintf(q, sizeof(q), "SELECT count(*) FROM devices WHERE "
	    "user_id = %u", user);
	return count(PG(base), q, n);
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

/* --- patches ------------------------------------------------------------- */

static int
pg_patch_put(struct store *base, const struct store_patch *p, uint64_t *id,
    int *dup)
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
		return 0;
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

static int
pg_patch_count(struct store *base, uint64_t *n)
{
	return count(PG(base), "SELECT count(*) FROM patches", n);
}

static int
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

/* --- authentication ------------------------------------------------------ */

static int
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

static int
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

static int
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

static int
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

static int
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

static int
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

static int
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

static int
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

static int
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
