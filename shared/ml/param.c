/*
 * param: the parameter table (see param.h).
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "shared/ml/kern.h"
#include "shared/ml/param.h"
#include "shared/rng.h"
#include "shared/xmalloc.h"

void
param_add(struct param_tensor *t, int *nt, size_t *total, const char *name,
    size_t r, size_t c, int ndim, int sparse, unsigned kind, int block)
{
	if (t != NULL) {
		struct param_tensor *t_ = &t[*nt];
		snprintf(t_->name, sizeof(t_->name), "%s", name);
		t_->shape[0] = (uint32_t)r;
		t_->shape[1] = (uint32_t)c;
		t_->ndim = ndim;
		t_->n = r * c;
		t_->sparse = sparse;
		t_->kind = kind;
		t_->block = block;
	}
	*total += r * c;
	(*nt)++;
}

void
param_rows_alloc(const struct param_tensor *t, int n, struct kern_rows *rows)
{
	for (int i = 0; i < n; i++)
		if (t[i].sparse) {
			uint32_t V = t[i].shape[0] ? t[i].shape[0] : 1;
			rows[i].mark = xcalloc(V, 1);
			rows[i].list = xcalloc(V, sizeof(uint32_t));
			rows[i].n = 0;
		}
}

static void
alloc_table(struct param_table *p, struct param_tensor *t, int n,
    struct kern_rows *rows, int zero)
{
	size_t off = 0, total = 0;

	for (int i = 0; i < n; i++)
		total += t[i].n;
	memset(p, 0, sizeof(*p));
	p->n_tensors = n;
	p->t = t;
	p->rows = rows;
	p->n_params = total;
	p->params = zero ? xcalloc(total, sizeof(float)) :
	    xmalloc((total ? total : 1) * sizeof(float));
	p->grads = xzalloc_lazy(total, sizeof(float));
	for (int i = 0; i < n; i++) {
		t[i].data = p->params + off;
		t[i].grad = p->grads + off;
		off += t[i].n;
	}
	param_rows_alloc(t, n, rows);
}

void
param_alloc(struct param_table *p, struct param_tensor *t, int n,
    struct kern_rows *rows)
{
	alloc_table(p, t, n, rows, 1);
}

void
param_alloc_raw(struct param_table *p, struct param_tensor *t, int n,
    struct kern_rows *rows)
{
	alloc_table(p, t, n, rows, 0);
}

void
param_alloc_view(struct param_table *p, struct param_tensor *t, int n,
    struct kern_rows *rows, float *const *shared)
{
	size_t off = 0, own = 0;

	memset(p, 0, sizeof(*p));
	p->n_tensors = n;
	p->t = t;
	p->rows = rows;
	for (int i = 0; i < n; i++) {
		p->n_params += t[i].n;
		if (shared[i] == NULL)
			own += t[i].n;
	}
	p->params = xcalloc(own ? own : 1, sizeof(float));
	for (int i = 0; i < n; i++) {
		t[i].grad = NULL;
		if (shared[i] != NULL)
			t[i].data = shared[i];
		else {
			t[i].data = p->params + off;
			off += t[i].n;
		}
	}
	param_rows_alloc(t, n, rows);
}

void
param_own(struct param_table *p)
{
	float *buf = xcalloc(p->n_params ? p->n_params : 1, sizeof(float));
	size_t off = 0;

	for (int i = 0; i < p->n_tensors; i++) {
		memcpy(buf + off, p->t[i].data, p->t[i].n * sizeof(float));
		p->t[i].data = buf + off;
		off += p->t[i].n;
	}
	free(p->params);
	p->params = buf;
}

void
param_grads_release(struct param_table *p)
{
	xzfree_lazy(p->grads);
	p->grads = NULL;
	for (int i = 0; i < p->n_tensors; i++)
		p->t[i].grad = NULL;
}

void
param_grads_ensure(struct param_table *p)
{
	size_t off = 0;

	if (p->grads != NULL)
		return;
	p->grads = xzalloc_lazy(p->n_params ? p->n_params : 1, sizeof(float));
	for (int i = 0; i < p->n_tensors; i++) {
		p->t[i].grad = p->grads + off;
		off += p->t[i].n;
	}
}

void
param_rows_free(const struct param_tensor *t, int n, struct kern_rows *rows)
{
	for (int i = 0; i < n; i++)
		if (t[i].sparse) {
			free(rows[i].mark);
			free(rows[i].list);
			memset(&rows[i], 0, sizeof(rows[i]));
		}
}

void
param_free(struct param_table *p)
{
	param_rows_free(p->t, p->n_tensors, p->rows);
	for (int i = 0; p->rm != NULL && i < p->n_tensors; i++) {
		free(p->rm[i].slot);
		free(p->rm[i].m);
		free(p->rm[i].v);
	}
	free(p->rm);
	free(p->adam_m);
	free(p->adam_v);
	xzfree_lazy(p->grads);
	free(p->params);
}

/*
 * Allocates the Adam state: the dense tensors' moments back to back (in
 * tensor order, skipping the sparse ones), the sparse ones empty.
 */
static void
adam_alloc(struct param_table *p)
{
	size_t nd = 0;

	for (int i = 0; i < p->n_tensors; i++)
		if (!p->t[i].sparse)
			nd += p->t[i].n;
	p->n_dense = nd;
	p->adam_m = xcalloc(nd, sizeof(float));
	p->adam_v = xcalloc(nd, sizeof(float));
	p->rm = xcalloc((size_t)(p->n_tensors ? p->n_tensors : 1),
	    sizeof(*p->rm));
	for (int i = 0; i < p->n_tensors; i++)
		if (p->t[i].sparse)
			p->rm[i].slot = xcalloc(p->t[i].shape[0] ?
			    p->t[i].shape[0] : 1, sizeof(uint32_t));
}

void
param_copy_adam(struct param_table *dst, const struct param_table *src)
{
	if (src->adam_m == NULL)
		return;
	if (dst->adam_m == NULL)
		adam_alloc(dst);
	memcpy(dst->adam_m, src->adam_m, src->n_dense * sizeof(float));
	memcpy(dst->adam_v, src->adam_v, src->n_dense * sizeof(float));
	for (int i = 0; i < src->n_tensors; i++) {
		const struct param_tensor *t = &src->t[i];
		const struct param_rowmom *a = &src->rm[i];
		struct param_rowmom *b = &dst->rm[i];
		size_t D = t->shape[1];
		if (!t->sparse)
			continue;
		memcpy(b->slot, a->slot, (t->shape[0] ? t->shape[0] : 1) *
		    sizeof(uint32_t));
		if (b->cap < a->n) {
			b->m = xreallocarray(b->m, (size_t)a->n * D,
			    sizeof(float));
			b->v = xreallocarray(b->v, (size_t)a->n * D,
			    sizeof(float));
			b->cap = a->n;
		}
		if (a->n > 0) {
			memcpy(b->m, a->m, a->n * D * sizeof(float));
			memcpy(b->v, a->v, a->n * D * sizeof(float));
		}
		b->n = a->n;
	}
	dst->adam_t = src->adam_t;
}

/* Gives every listed row of sparse tensor i moments (zero at first). */
static void
rowmom_reserve(struct param_table *p, int i)
{
	struct param_rowmom *a = &p->rm[i];
	const struct kern_rows *r = &p->rows[i];
	size_t D = p->t[i].shape[1];

	for (uint32_t k = 0; k < r->n; k++) {
		uint32_t row = r->list[k];
		if (a->slot[row] != 0)
			continue;
		if (a->n == a->cap) {
			/* at most the table's rows, so no overflow */
			uint32_t cap = a->cap ? a->cap * 2 : 64;
			if (cap > p->t[i].shape[0])
				cap = p->t[i].shape[0];
			a->m = xreallocarray(a->m, (size_t)cap * D,
			    sizeof(float));
			a->v = xreallocarray(a->v, (size_t)cap * D,
			    sizeof(float));
			a->cap = cap;
		}
		memset(a->m + a->n * D, 0, D * sizeof(float));
		memset(a->v + a->n * D, 0, D * sizeof(float));
		a->slot[row] = ++a->n;
	}
}

struct param_tensor *
param_at(const struct param_table *p, int i)
{
	return i >= 0 && i < p->n_tensors ? &p->t[i] : NULL;
}

struct param_tensor *
param_find(const struct param_table *p, const char *name)
{
	for (int i = 0; i < p->n_tensors; i++)
		if (strcmp(p->t[i].name, name) == 0)
			return &p->t[i];
	return NULL;
}

void
param_fill_normal(float *p, size_t n, double std, struct rng *r)
{
	for (size_t i = 0; i < n; i++)
		p[i] = (float)(std * rng_normal(r));
}

void
param_fill_unif(float *p, size_t n, double a, struct rng *r)
{
	for (size_t i = 0; i < n; i++)
		p[i] = (float)(a * (2.0 * rng_unif(r) - 1.0));
}

void
param_zero_grad(struct param_table *p, int dense_clean)
{
	for (int i = 0; i < p->n_tensors; i++) {
		struct param_tensor *t = &p->t[i];
		if (t->sparse)
			kern_rows_clear(&p->rows[i], t->grad, (int)t->shape[1]);
		else if (!dense_clean)
			memset(t->grad, 0, t->n * sizeof(float));
	}
}

int
param_step(struct param_table *p, unsigned kinds, const struct param_opt *o)
{
	size_t doff = 0;

	if (o == NULL || !(o->lr >= 0.0f) || !isfinite(o->lr))
		return -EINVAL;
	if (o->kind != PARAM_OPT_SGD && o->kind != PARAM_OPT_ADAM)
		return -EINVAL;
	if (o->kind == PARAM_OPT_ADAM) {
		if (p->adam_m == NULL)
			adam_alloc(p);
		p->adam_t++;
	}
	for (int i = 0; i < p->n_tensors; i++) {
		struct param_tensor *t = &p->t[i];
		size_t po = doff;	/* the tensor's dense moments */
		if (!t->sparse)
			doff += t->n;
		if (!((kinds >> t->kind) & 1u) || t->n == 0)
			continue;
		if (o->kind == PARAM_OPT_SGD && t->sparse)
			sgd_rows(t->data, t->grad, p->rows[i].list,
			    p->rows[i].n, (int)t->shape[1], o->lr, o->wd);
		else if (o->kind == PARAM_OPT_SGD)
			sgd_update(t->data, t->grad, t->n, o->lr, o->wd);
		else if (t->sparse) {
			rowmom_reserve(p, i);
			adam_rows_slot(t->data, t->grad, p->rm[i].m,
			    p->rm[i].v, p->rows[i].list, p->rows[i].n,
			    p->rm[i].slot, (int)t->shape[1], o->lr, o->beta1,
			    o->beta2, o->eps, o->wd, p->adam_t);
		} else
			adam_update(t->data, t->grad, p->adam_m + po,
			    p->adam_v + po, t->n, o->lr, o->beta1, o->beta2,
			    o->eps, o->wd, p->adam_t);
	}
	return 0;
}
