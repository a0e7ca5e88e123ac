/* slice: see slice.h. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "cloudd/cloudd.h"
#include "cloudd/sblob.h"
#include "cloudd/slice.h"
#include "shared/log.h"
#include "shared/ml/ctr_slice.h"
#include "shared/xmalloc.h"

/*
 * Three versions: the current one, the one before it that stragglers
 * still fetch after a publish, and one a rollback or an old request
 * brings in. Each costs its shared part plus its per-user tables: the
 * model's size once.
 */
#define SLICE_SLOTS	3

struct slice_cache {
	struct slice_ver	 e[SLICE_SLOTS];
	uint64_t		 tick;
};

static void
slot_clear(struct slice_ver *s)
{
	sblob_unref(s->shared);
	for (size_t i = 0; i < s->full.n_tensors; i++) {
		free(s->t[i].name);
		free(s->t[i].data);
	}
	memset(s, 0, sizeof(*s));
}

/* Copies full's per-user tables into s (its rows' source). */
static void
keep_rows(struct slice_ver *s, const Dccl__Model *full)
{
	size_t k = 0;

	dccl__model__init(&s->full);
	dccl__model_config__init(&s->cfg);
	s->cfg.n_users = full->config->n_users;
	s->full.config = &s->cfg;
	for (size_t i = 0; i < full->n_tensors && k < CTR_SLICE_MAX_TENSORS;
	    i++) {
		const Dccl__Tensor *x = full->tensors[i];
		if (!ctr_slice_user_tensor(x->name) || x->n_shape != 2)
			continue;
		dccl__tensor__init(&s->t[k]);
		s->t[k].name = xstrdup(x->name);
		s->shape[2 * k] = x->shape[0];
		s->shape[2 * k + 1] = x->shape[1];
		s->t[k].n_shape = 2;
		s->t[k].shape = &s->shape[2 * k];
		s->t[k].n_data = x->n_data;
		s->t[k].data = xmalloc(x->n_data ? x->n_data * sizeof(float) :
		    1);
		memcpy(s->t[k].data, x->data, x->n_data * sizeof(float));
		s->tp[k] = &s->t[k];
		k++;
	}
	s->full.n_tensors = k;
	s->full.tensors = s->tp;
}

void
slice_cache_free(struct cloudd *cd)
{
	if (cd->slc == NULL)
		return;
	for (int i = 0; i < SLICE_SLOTS; i++)
		slot_clear(&cd->slc->e[i]);
	free(cd->slc);
	cd->slc = NULL;
}

/* Fills s for version v. 0, or an Error code with err. */
static int
build(struct cloudd *cd, struct slice_ver *s, uint64_t v, char *err,
    size_t errlen)
{
	struct store_model_info mi;
	Dccl__Model *full;
	const uint8_t *blob;
	uint8_t *own = NULL, *sh;
	size_t len, shlen;
	int rc;

	if (v == cd->model.version && cd->model.bytes != NULL) {
		blob = cd->model.bytes->data;
		len = cd->model.bytes->len;
	} else if ((rc = store_model_info(cd->st, v, &mi)) != 0) {
		snprintf(err, errlen, "model v%llu: %s", (unsigned long long)v,
		    rc == -ENOENT ? "no such version" : store_errmsg(cd->st));
		return rc == -ENOENT ? DCCL__ERROR_CODE__E_NOT_FOUND :
		    DCCL__ERROR_CODE__E_STORAGE;
	} else {
		own = xmalloc(mi.size ? mi.size : 1);
		if (store_model_read(cd->st, v, 0, own, mi.size) != 0) {
			snprintf(err, errlen, "model v%llu: %s",
			    (unsigned long long)v, store_errmsg(cd->st));
			free(own);
			return DCCL__ERROR_CODE__E_STORAGE;
		}
		blob = own;
		len = mi.size;
	}
	full = dccl__model__unpack(NULL, len, blob);
	free(own);
	if (full == NULL) {
		snprintf(err, errlen, "model v%llu: stored model does not "
		    "unpack", (unsigned long long)v);
		return DCCL__ERROR_CODE__E_INTERNAL;
	}
	if ((rc = ctr_slice_shared(full, &sh, &shlen, err, errlen)) != 0) {
		dccl__model__free_unpacked(full, NULL);
		return DCCL__ERROR_CODE__E_INTERNAL;
	}
	keep_rows(s, full);
	dccl__model__free_unpacked(full, NULL);
	s->shared = sblob_wrap(sh, shlen, v);
	crypto_generichash(s->shared->sum, 32, sh, shlen, NULL, 0);
	s->version = v;
	log_info("SLICE: v%llu, shared part %zu of %zu bytes",
	    (unsigned long long)v, shlen, len);
	return 0;
}

int
slice_get(struct cloudd *cd, uint64_t v, struct slice_ver **out, char *err,
    size_t errlen)
{
	struct slice_cache *c;
	int k = 0, code;

	*out = NULL;
	if ((c = cd->slc) == NULL)
		c = cd->slc = xcalloc(1, sizeof(*cd->slc));
	for (int i = 0; i < SLICE_SLOTS; i++)
		if (c->e[i].version == v) {
			c->e[i].used = ++c->tick;
			*out = &c->e[i];
			return 0;
		}
	/* the least recently used slot (a free one first) */
	for (int i = 1; i < SLICE_SLOTS; i++)
		if (c->e[i].used < c->e[k].used)
			k = i;
	slot_clear(&c->e[k]);
	if ((code = build(cd, &c->e[k], v, err, errlen)) != 0) {
		slot_clear(&c->e[k]);
		return code;
	}
	c->e[k].used = ++c->tick;
	*out = &c->e[k];
	return 0;
}
