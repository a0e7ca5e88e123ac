/*
 * store_pg_impl: what the files of the PostgreSQL backend (store_pg.c,
 * store_pg_data.c, store_pg_fleet.c) share: the connection, the query
 * and COPY helpers (defined in store_pg.c) and the backend functions the
 * ops table in store_pg.c names. Private to cloudd/store_pg*.c.
 */
#ifndef CLOUDD_STORE_PG_IMPL_H
#define CLOUDD_STORE_PG_IMPL_H

#include <libpq-fe.h>
#include <stddef.h>
#include <stdint.h>

#include "cloudd/store.h"
#include "cloudd/store_impl.h"

struct pg {
	struct store	 base;		/* first: a struct store * is a struct pg * */
	PGconn		*c;
	int		 leader;	/* this session holds the leader lock */
	int		 busy_ms;	/* lock_timeout of the session */
	int		 in_tx;		/* inside store_begin: no reconnect */
};

#define PG(s)	((struct pg *)(s))

#define NOW_SQL	"extract(epoch from now())::bigint"

#define MAXARGS 10

struct args {
	int		 n;
	const char	*v[MAXARGS];
	int		 len[MAXARGS], fmt[MAXARGS];
	char		 buf[MAXARGS][32];
};

struct copybuf {
	struct pg	*st;
	unsigned char	*b;
	size_t		 n, cap;
	int		 rc;
};

/* Helpers (store_pg.c). */
void	a_i64(struct args *a, int64_t x);
void	a_f64(struct args *a, double x);
void	a_text(struct args *a, const char *s);
void	a_bytes(struct args *a, const void *p, size_t n);
int	fail_pg(struct pg *st, const char *what, PGresult *res);
void	ensure_conn(struct pg *st);
int	q(struct pg *st, const char *what, const char *sql, const struct args *a,
	    PGresult **out);
int	cmd(struct pg *st, const char *what, const char *sql, const struct args *a);
int	exec(struct pg *st, const char *sql);
void	rollback(struct pg *st);
int64_t	g_i64(const PGresult *r, int row, int col);
double	g_f64(const PGresult *r, int row, int col);
void	g_text(const PGresult *r, int row, int col, char *buf, size_t len);
uint64_t changes(const PGresult *r);
int	count(struct pg *st, const char *sql, uint64_t *n);
int	cb_begin(struct copybuf *cb, struct pg *st, const char *sql);
int	cb_end(struct copybuf *cb);
void	cb_i64(struct copybuf *cb, int64_t x);
void	cb_u16(struct copybuf *cb, uint16_t v);
void	cb_f64(struct copybuf *cb, double d);
void	cb_bytes(struct copybuf *cb, const void *p, size_t n);

/* The backend functions of the ops table. */
int	pg_pool_insert(struct store *base, const struct dataset *ds,
	    const char *schema, uint64_t *rows);
int	pg_pool_schema(struct store *base, char **schema);
int	pg_pool_count(struct store *base, uint64_t *n);
int	pg_pool_load(struct store *base, struct dataset *ds, uint64_t **rowid);
int	pg_pool_set_repr(struct store *base, const uint64_t *rowid,
	    const float *repr, size_t n, int dim, uint64_t version);
int	pg_pool_get_repr(struct store *base, float *repr, size_t n, int dim,
	    uint64_t version);
int	pg_model_put(struct store *base, const struct store_model_info *mi,
	    const void *blob, size_t len);
int	pg_ofa_put(struct store *base, uint64_t version, const void *blob, size_t len);
int	pg_ofa_get(struct store *base, uint64_t version, void **blob, size_t *len);
int	pg_model_info(struct store *base, uint64_t version,
	    struct store_model_info *mi);
int	pg_model_read(struct store *base, uint64_t version, uint64_t off, void *buf,
	    size_t len);
int	pg_model_list(struct store *base, struct store_model_info **out, size_t *n);
int	pg_model_copy(struct store *base, uint64_t from, struct store_model_info *mi);
int	pg_model_delete(struct store *base, uint64_t version);
int	pg_model_prune(struct store *base, size_t keep, uint64_t keep_also,
	    uint64_t **deleted, size_t *n, uint64_t *bytes);
int	pg_device_put(struct store *base, const struct store_device *d);
int	pg_device_get(struct store *base, const char *id, struct store_device *d);
int	pg_device_list(struct store *base, struct store_device **out, size_t *n);
int	pg_device_count(struct store *base, uint64_t *n);
int	pg_user_device_count(struct store *base, uint32_t user, uint64_t *n);
int	pg_patch_put(struct store *base, const struct store_patch *p,
	    uint32_t keep, uint64_t *id, int *dup);
int	pg_patch_count(struct store *base, uint64_t *n);
int	pg_patch_list(struct store *base, uint64_t min_base, struct store_patch **out,
	    size_t *n);
int	pg_patch_pending(struct store *base, uint64_t min_base,
	    uint64_t max_base, uint32_t *users, int64_t *first);
int	pg_patch_used(struct store *base, const uint64_t *ids, size_t n,
	    uint64_t run);
int	pg_cloud_key(struct store *base, const uint8_t *cand_pk,
	    const uint8_t *cand_sk, uint8_t *pk, uint8_t *sk, int *created);
int	pg_authkey_put(struct store *base, const struct store_authkey *k,
	    int replace, int *how);
int	pg_authkey_get(struct store *base, const char *id, struct store_authkey *k);
int	pg_authkey_list(struct store *base, struct store_authkey **out, size_t *n);
int	pg_authkey_counters(struct store *base, const struct store_authkey *k,
	    size_t n);
int	pg_leader_try(struct store *base, int *leader);
int	pg_task_add(struct store *base, const char *kind, int64_t arg, uint64_t *id);
int	pg_task_next(struct store *base, struct store_task *t);
int	pg_task_done(struct store *base, uint64_t id, uint64_t result);

#endif
