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
param_alloc(struct param_table *p, struct param_tensor *t, int n,
    struct kern_rows *rows)
{
	size_t off = 0, total = 0;

	for (int i = 0; i < n; i++)
		total += t[i].n;
	memset(p, 0, sizeof(*p));
	p->n_tensors = n;
	p->t = t;
	p->rows = rows;
	p->n_params = total;
	p->params = xcalloc(total, sizeof(float));
	p->grads = xcalloc(total, sizeof(float));
	for (int i = 0; i < n; i++) {
		t[i].data = p->params + off;
		t[i].grad = p->grads + off;
		off += t[i].n;
		if (t[i].sparse) {
			uint32_t V = t[i].shape[0] ? t[i].shape[0] : 1;
			rows[i].mark = xcalloc(V, 1);
			rows[i].list = xcalloc(V, sizeof(uint32_t));
		}
	}
}

void
param_free(struct param_table *p)
{
	for (int i = 0; i < p->n_tensors; i++)
		if (p->t[i].sparse) {
			free(p->rows[i].mark);
			free(p->rows[i].list);
		}
	free(p->adam_m);
	free(p->adam_v);
	free(p->grads);
	free(p->params);
}

void
param_copy_adam(struct param_table *dst, const struct param_table *src)
{
	size_t nb = src->n_params * sizeof(float);

	if (src->adam_m == NULL)
		return;
	if (dst->adam_m == NULL) {
		dst->adam_m = xmalloc(nb);
		dst->adam_v = xmalloc(nb);
	}
	memcpy(dst->adam_m, src->adam_m, nb);
	memcpy(dst->adam_v, src->adam_v, nb);
	dst->adam_t = src->adam_t;
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
	if (o == NULL || !(o->lr >= 0.0f) || !isfinite(o->lr))
		return -EINVAL;
	if (o->kind != PARAM_OPT_SGD && o->kind != PARAM_OPT_ADAM)
		return -EINVAL;
	if (o->kind == PARAM_OPT_ADAM) {
		if (p->adam_m == NULL) {
			p->adam_m = xcalloc(p->n_params, sizeof(float));
			p->adam_v = xcalloc(p->n_params, sizeof(float));
		}
		p->adam_t++;
	}
	for (int i = 0; i < p->n_tensors; i++) {
		struct param_tensor *t = &p->t[i];
		size_t po = (size_t)(t->data - p->params);
		if (!((kinds >> t->kind) & 1u) || t->n == 0)
			continue;
		if (o->kind == PARAM_OPT_SGD && t->sparse)
			sgd_rows(t->data, t->grad, p->rows[i].list,
			    p->rows[i].n, (int)t->shape[1], o->lr, o->wd);
		else if (o->kind == PARAM_OPT_SGD)
			sgd_update(t->data, t->grad, t->n, o->lr, o->wd);
		else if (t->sparse)
			adam_rows(t->data, t->grad, p->adam_m + po,
			    p->adam_v + po, p->rows[i].list, p->rows[i].n,
			    (int)t->shape[1], o->lr, o->beta1, o->beta2, o->eps,
			    o->wd, p->adam_t);
		else
			adam_update(t->data, t->grad, p->adam_m + po,
			    p->adam_v + po, t->n, o->lr, o->beta1, o->beta2,
			    o->eps, o->wd, p->adam_t);
	}
	return 0;
}
