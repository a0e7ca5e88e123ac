/*
 * pool: immutable in-memory snapshots of the global sample pool with their
 * representation vectors and retrieval indexes. A snapshot is built in the
 * threadpool (at start, after an import, after training) and swapped in by
 * the loop; requests in flight keep the old one alive by reference.
 * Vectors are computed with the current model and stored in the pool
 * table, so a restart reuses them instead of recomputing.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "cloudd/cloudd.h"
#include "cloudd/coda_retrieve.h"
#include "shared/clock.h"
#include "shared/ml/ctr.h"
#include "shared/ml/ctr_io.h"
#include "shared/data/dataset.h"
#include "shared/data/schema.h"
#include "shared/log.h"
#include "shared/xmalloc.h"

struct pool_job {
	uv_work_t	 w;
	struct cloudd	*cd;
	struct pool	*p;
	uint8_t		*blob;		/* copy of the current model */
	size_t		 size;
	uint64_t	 version;
	struct cloudd_conf cf;		/* copy: only plain values are read */
	char		*dbpath;
	int		 rc;
	char		 err[256];
	double		 seconds;
};

struct pool *
pool_new(void)
{
	struct pool *p = xcalloc(1, sizeof(*p));

	p->refs = 1;
	p->srefs = xmalloc(sizeof(*p->srefs));
	atomic_init(p->srefs, 1);
	dataset_init(&p->ds);
	return p;
}

/*
 * A new snapshot of src's samples in src's order, without their vectors
 * or indexes: the sample arrays are shared, not copied (a pool of a
 * million samples is hundreds of MB, and a training would otherwise hold
 * two copies while it indexes the new one).
 */
struct pool *
pool_share_samples(struct pool *src)
{
	struct pool *p = xcalloc(1, sizeof(*p));

	p->refs = 1;
	p->srefs = src->srefs;
	atomic_fetch_add(p->srefs, 1);
	p->ds = src->ds;
	p->rowid = src->rowid;
	p->user_off = src->user_off;
	p->by_user = src->by_user;
	p->side_ship = src->side_ship;
	return p;
}

/*
 * A new snapshot of src's samples in the order ord (n = all of them): the
 * samples are shared when the order is src's own, which it is from the
 * first training on (canonical order is stable), else copied.
 */
struct pool *
pool_snapshot(struct pool *src, const size_t *ord, size_t n)
{
	const struct dataset *ds = &src->ds;
	struct pool *p;
	size_t i;

	for (i = 0; i < n && ord[i] == i; i++)
		;
	if (i == n && n == ds->n)
		return pool_share_samples(src);
	p = pool_new();
	dataset_append_subset(&p->ds, ds, ord, n);
	p->ds.n_users = ds->n_users;
	p->ds.n_items = ds->n_items;
	p->ds.n_genres = ds->n_genres;
	p->side_ship = src->side_ship;
	p->rowid = xcalloc(n + 1, sizeof(uint64_t));
	for (i = 0; i < n; i++)
		p->rowid[i] = src->rowid[ord[i]];
	pool_group_users(p);
	return p;
}

void
pool_free(struct pool *p)
{
	if (p == NULL)
		return;
	if (atomic_fetch_sub(p->srefs, 1) == 1) {
		dataset_fini(&p->ds);
		free(p->rowid);
		free(p->user_off);
		free(p->by_user);
		free(p->srefs);
	}
	retr_free(p->index);
	retr_free(p->uindex);
	free(p);
}

void
pool_unref(struct cloudd *cd, struct pool *p)
{
	(void)cd;
	if (p != NULL && --p->refs == 0)
		pool_free(p);
}

/* Groups sample indices by user (counting sort), for MODE_USERS. */
void
pool_group_users(struct pool *p)
{
	uint32_t nu = p->ds.n_users, *fill;

	/* Only while the samples are this pool's alone (at build time). */
	free(p->user_off);
	free(p->by_user);
	p->user_off = xcalloc(nu + 1, sizeof(uint32_t));
	p->by_user = xcalloc(p->ds.n + 1, sizeof(uint32_t));
	for (size_t i = 0; i < p->ds.n; i++)
		p->user_off[p->ds.s[i].user + 1]++;
	for (uint32_t u = 0; u < nu; u++)
		p->user_off[u + 1] += p->user_off[u];
	fill = xcalloc(nu + 1, sizeof(uint32_t));
	memcpy(fill, p->user_off, nu * sizeof(uint32_t));
	for (size_t i = 0; i < p->ds.n; i++)
		p->by_user[fill[p->ds.s[i].user]++] = (uint32_t)i;
	free(fill);
}

int
pool_index(struct pool *p, const struct ctr *m, struct store *st,
    uint64_t version, const struct cloudd_conf *cf, char *err, size_t errlen)
{
	struct retr_opts o;
	uint32_t *owner = NULL, *idx = NULL;
	uint64_t *row = NULL;
	size_t n = p->ds.n;
	int d = ctr_repr_dim(m), rc = 0;
	/* Until the indexes are built; then the sample index owns it. */
	float *repr;

	if (n == 0)
		return 0;
	p->dim = d;
	p->version = version;
	repr = xcalloc(n * d, sizeof(float));
	if (st == NULL || store_pool_get_repr(st, repr, n, d, version)) {
		idx = xcalloc(n, sizeof(*idx));
		for (size_t i = 0; i < n; i++)
			idx[i] = (uint32_t)i;
		ctr_repr(m, &p->ds, idx, n, repr);
		if (st != NULL && (rc = store_pool_set_repr(st, p->rowid,
		    repr, n, d, version)) != 0) {
			snprintf(err, errlen, "storing vectors: %s",
			    store_errmsg(st));
			goto done;
		}
	}
	owner = xcalloc(n, sizeof(*owner));
	row = xcalloc(n, sizeof(*row));
	for (size_t i = 0; i < n; i++) {
		owner[i] = p->ds.s[i].user;
		row[i] = i;	/* the sample's place in p->ds */
	}
	retr_opts_default(&o);
	o.kind = cf->retr_kind == 1 ? RETR_EXACT : cf->retr_kind == 2 ?
	    RETR_IVF : RETR_AUTO;
	o.ivf_min_n = (size_t)cf->retr_ivf_min;
	o.nlist = (uint32_t)cf->retr_nlist;
	o.nprobe = (uint32_t)cf->retr_nprobe;
	retr_free(p->index);
	retr_free(p->uindex);
	p->index = p->uindex = NULL;
	/* The user means first: the sample index then takes repr. */
	if ((rc = retr_users_build(&p->uindex, repr, owner, n, d,
	    p->ds.n_users)) != 0 ||
	    (rc = retr_build_take(&p->index, &repr, owner, row, n, d,
	    &o)) != 0)
		snprintf(err, errlen, "index build failed (%d)", rc);
done:
	free(repr);
	free(idx);
	free(owner);
	free(row);
	return rc;
}

/* The side slots of the pool's schema that are not user-side. */
static uint32_t
side_ship(struct store *st, const struct dataset *ds)
{
	struct schema sc;
	char *txt = NULL, err[256];
	uint32_t m = 0;

	if (ds->n_side == 0 || store_pool_schema(st, &txt) != 0)
		return 0;
	schema_init(&sc);
	if (schema_parse(&sc, txt, strlen(txt), "pool schema", err,
	    sizeof(err)) == 0 && sc.n_side == ds->n_side)
		for (uint32_t k = 0; k < sc.n_side; k++)
			if (sc.f[sc.side_field[k]].side != SCHEMA_S_USER)
				m |= 1u << k;
	schema_fini(&sc);
	free(txt);
	return m;
}

static void
load_work_cb(uv_work_t *w)
{
	struct pool_job *j = w->data;
	struct store *st = NULL;
	struct ctr *m = NULL;
	double t0 = clock_now();

	if ((j->rc = store_open(&st, j->cf.store, j->dbpath,
	    (int)j->cf.busy_ms, j->err, sizeof(j->err))) != 0)
		return;
	if ((j->rc = store_pool_load(st, &j->p->ds, &j->p->rowid)) != 0) {
		snprintf(j->err, sizeof(j->err), "%s", store_errmsg(st));
		goto done;
	}
	pool_group_users(j->p);
	j->p->side_ship = side_ship(st, &j->p->ds);
	if (j->blob != NULL && j->p->ds.n > 0) {
		if ((j->rc = ctr_io_unpack(&m, NULL, j->blob, j->size, j->err,
		    sizeof(j->err))) != 0)
			goto done;
		j->rc = pool_index(j->p, m, st, j->version, &j->cf, j->err,
		    sizeof(j->err));
	}
done:
	j->seconds = clock_now() - t0;
	ctr_free(m);
	store_close(st);
}

static void
load_after_cb(uv_work_t *w, int status)
{
	struct pool_job *j = w->data;
	struct cloudd *cd = j->cd;

	job_end(&cd->job, 1);
	cd->pool_loading = 0;
	if (status != 0 || j->rc != 0) {
		log_warnx("POOL: load failed: %s", status ? "cancelled" :
		    j->err);
		pool_free(j->p);
	} else if (j->version != cd->model.version) {
		/* A newer model arrived meanwhile; its job brought a pool. */
		pool_free(j->p);
	} else {
		log_info("POOL: %zu samples, %u users, %u items; vectors of "
		    "v%llu, %s index (%.2f s)", j->p->ds.n, j->p->ds.n_users,
		    j->p->ds.n_items, (unsigned long long)j->version,
		    j->p->index ? (retr_kind(j->p->index) == RETR_IVF ? "ivf" :
		    "exact") : "no", j->seconds);
		cd->last_index_s = j->seconds;
		pool_unref(cd, cd->pool);
		cd->pool = j->p;
		if (cd->pool_loaded != NULL)
			cd->pool_loaded(cd);
	}
	free(j->blob);
	free(j);
	job_idle(&cd->job);
}

int
pool_start_load(struct cloudd *cd)
{
	struct pool_job *j;

	if (cd->pool_loading)
		return 0;
	j = xcalloc(1, sizeof(*j));
	j->cd = cd;
	j->p = pool_new();
	j->cf = cd->cf;
	j->dbpath = cd->dbpath;
	j->version = cd->model.version;
	if (cd->model.blob != NULL) {
		j->blob = xmalloc(cd->model.size);
		memcpy(j->blob, cd->model.blob, cd->model.size);
		j->size = cd->model.size;
	}
	j->w.data = j;
	cd->pool_loading = 1;
	job_begin(&cd->job);
	return uv_queue_work(&cd->loop, &j->w, load_work_cb, load_after_cb);
}
