/*
 * splitdir: a `dccl-data split` directory for the offline tools (see
 * splitdir.h).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "scripts/tools/splitdir.h"
#include "shared/xmalloc.h"

/* Every user's file of one kind (local, test), appended into ds. */
static int
read_users(struct dataset *ds, size_t *off, const char *dir, uint32_t nu,
    const char *kind, const char *prog)
{
	char p[4096];
	struct dataset_err err;

	for (uint32_t u = 0; u < nu; u++) {
		off[u] = ds->n;
		snprintf(p, sizeof(p), "%s/devices/%u.%s.csv", dir, u, kind);
		memset(&err, 0, sizeof(err));
		if (dataset_read_csv(ds, p, NULL, &err) != 0) {
			fprintf(stderr, "%s: %s: %s\n", prog, p, err.msg);
			return -1;
		}
	}
	off[nu] = ds->n;
	return 0;
}

static uint32_t *
to_u32(const struct dataset_idx *x)
{
	uint32_t *v = xcalloc(x->n + 1, sizeof(*v));

	for (size_t i = 0; i < x->n; i++)
		v[i] = (uint32_t)x->v[i];
	return v;
}

int
splitdir_load(struct splitdir *s, const char *dir, const char *prog)
{
	char p[4096];
	struct dataset_err derr;
	struct dataset_idx all, tr, va;
	int rc;

	memset(s, 0, sizeof(*s));
	dataset_meta_init(&s->meta);
	dataset_init(&s->pool);
	dataset_init(&s->loc);
	dataset_init(&s->tst);
	snprintf(p, sizeof(p), "%s/meta.txt", dir);
	if (dataset_meta_read(&s->meta, p, &derr) != 0) {
		fprintf(stderr, "%s: %s: %s\n", prog, p, derr.msg);
		return -1;
	}
	snprintf(p, sizeof(p), "%s/pool.csv", dir);
	if (dataset_read_csv(&s->pool, p, NULL, &derr) != 0) {
		fprintf(stderr, "%s: %s: %s\n", prog, p, derr.msg);
		return -1;
	}
	s->loff = xcalloc((size_t)s->meta.n_users + 1, sizeof(size_t));
	s->toff = xcalloc((size_t)s->meta.n_users + 1, sizeof(size_t));
	if (read_users(&s->loc, s->loff, dir, s->meta.n_users, "local",
	    prog) != 0 || read_users(&s->tst, s->toff, dir, s->meta.n_users,
	    "test", prog) != 0)
		return -1;
	s->pool.n_users = s->meta.n_users;
	s->pool.n_items = s->meta.n_items;
	s->pool.n_genres = s->meta.n_genres;

	dataset_idx_all(&all, &s->pool);
	if ((rc = dataset_carve_val(&tr, &va, &all, 0.1)) == 0) {
		s->tri = to_u32(&tr);
		s->vai = to_u32(&va);
		s->ntr = tr.n;
		s->nva = va.n;
		dataset_idx_fini(&tr);
		dataset_idx_fini(&va);
	} else
		fprintf(stderr, "%s: validation split failed\n", prog);
	dataset_idx_fini(&all);
	return rc == 0 ? 0 : -1;
}

void
splitdir_fini(struct splitdir *s)
{
	free(s->tri);
	free(s->vai);
	free(s->loff);
	free(s->toff);
	dataset_fini(&s->pool);
	dataset_fini(&s->loc);
	dataset_fini(&s->tst);
	dataset_meta_fini(&s->meta);
}

void
splitdir_train_opts(struct ctr_train_opts *co, uint64_t seed)
{
	ctr_train_opts_default(co);
	co->epochs = 20;
	co->patience = 2;
	co->seed = seed;
}

int
splitdir_train_cloud(struct ctr *m, const struct splitdir *s, uint64_t seed,
    struct ctr_train_stats *st)
{
	struct ctr_train_opts co;

	splitdir_train_opts(&co, seed);
	return ctr_train(m, &s->pool, s->tri, s->ntr, s->vai, s->nva, &co,
	    st);
}
