/*
 * patch: validation of uploaded patches before they are stored, every
 * check once and in one place. A MetaPatch upload must name a known base
 * version and carry exactly one finite vector "patch_m<l>" of the model's
 * patch rank per hidden layer, with finite metrics and a norm within the
 * limit (limits.max-patch-norm, or a multiple of the median norm of the
 * accepted patches; guard_upload_check); anything else is refused, so
 * no malformed or poisoned tensor reaches the patches table (and later
 * distillation). Loop thread.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cloudd/guard.h"
#include "cloudd/rpc.h"
#include "shared/wire.h"
#include "shared/xmalloc.h"

static int
fcmp(const void *a, const void *b)
{
	float x = *(const float *)a, y = *(const float *)b;

	return (x > y) - (x < y);
}

/*
 * The norm limit for the next patch: limits.max-patch-norm, lowered to
 * limits.patch-norm-factor times the median norm of the last NORM_HIST
 * accepted patches once NORM_HIST_MIN were accepted. The median moves
 * only with what was accepted, so a poisoned patch cannot widen it for
 * the next one; it is recomputed every 16 patches.
 */
static double
norm_limit(struct cloudd *cd)
{
	struct normhist *h = &cd->norms;
	double lim = cd->cf.max_patch_norm, rel;

	if (cd->cf.patch_norm_factor <= 0 || h->n < NORM_HIST_MIN)
		return lim;
	if (h->median <= 0 || h->since >= 16) {
		float *tmp = xmalloc(h->n * sizeof(*tmp));
		memcpy(tmp, h->v, h->n * sizeof(*tmp));
		qsort(tmp, h->n, sizeof(*tmp), fcmp);
		h->median = tmp[h->n / 2];
		h->since = 0;
		free(tmp);
	}
	rel = cd->cf.patch_norm_factor * h->median;
	if (rel <= 0)
		return lim;
	return lim > 0 && lim < rel ? lim : rel;
}

static void
norm_record(struct cloudd *cd, double norm)
{
	struct normhist *h = &cd->norms;

	h->v[h->i] = (float)norm;
	h->i = (h->i + 1) % NORM_HIST;
	if (h->n < NORM_HIST)
		h->n++;
	h->since++;
}

int
patch_validate(struct cloudd *cd, Dccl__UploadPatch *q, double *clipped,
    char *err, size_t errlen)
{
	struct store_model_info mi;
	double lim;
	int rc, clip;

	*clipped = 0;
	if (q->n_tensors == 0 || q->n_tensors > 64) {
		snprintf(err, errlen, "a patch needs 1..64 tensors, got %zu",
		    q->n_tensors);
		return DCCL__ERROR_CODE__E_BAD_REQUEST;
	}
	for (size_t i = 0; i < q->n_tensors; i++)
		if ((rc = wire_tensor_check(q->tensors[i],
		    (size_t)cd->cf.max_tensor, err, errlen)) != 0)
			return rc;
	/* Metrics, norm: a poisoned patch is never stored. */
	lim = norm_limit(cd);
	if ((rc = guard_upload_check(q, lim, cd->cf.patch_clip, &clip, err,
	    errlen)) != 0)
		return rc;
	if (clip)
		*clipped = lim;
	if ((rc = store_model_info(cd->st, q->base_version, &mi)) != 0) {
		snprintf(err, errlen, "base model v%llu: %s",
		    (unsigned long long)q->base_version, rc == -ENOENT ?
		    "unknown" : store_errmsg(cd->st));
		return rc == -ENOENT ? DCCL__ERROR_CODE__E_STALE :
		    DCCL__ERROR_CODE__E_STORAGE;
	}
	if ((rc = patch_shape_check(&cd->model, q, err, errlen)) != 0)
		return rc;
	norm_record(cd, guard_patch_norm(q));
	return 0;
}

int
patch_shape_check(const struct model_cache *m, const Dccl__UploadPatch *q,
    char *err, size_t errlen)
{
	int seen[8] = { 0 };

	if (q->kind != NULL && q->kind[0] != '\0' &&
	    strcmp(q->kind, "metapatch") != 0) {
		snprintf(err, errlen, "patch kind '%s' not accepted", q->kind);
		return DCCL__ERROR_CODE__E_BAD_REQUEST;
	}
	if (m->patch_rank == 0 || m->n_hidden == 0 || m->n_hidden > 8) {
		snprintf(err, errlen, "the current model has no MetaPatch");
		return DCCL__ERROR_CODE__E_BAD_REQUEST;
	}
	if (q->n_tensors != (size_t)m->n_hidden) {
		snprintf(err, errlen, "a patch has %d tensors, got %zu",
		    m->n_hidden, q->n_tensors);
		return DCCL__ERROR_CODE__E_BAD_TENSOR;
	}
	for (size_t i = 0; i < q->n_tensors; i++) {
		const Dccl__Tensor *t = q->tensors[i];
		int l = -1;
		char tail;

		if (sscanf(t->name, "patch_m%d%c", &l, &tail) != 1 || l < 0 ||
		    l >= m->n_hidden || seen[l]++) {
			snprintf(err, errlen, "unexpected tensor '%s'", t->name);
			return DCCL__ERROR_CODE__E_BAD_TENSOR;
		}
		if (t->n_shape != 1 || t->shape[0] != (uint32_t)m->patch_rank) {
			snprintf(err, errlen, "tensor %s: shape must be [%d]",
			    t->name, m->patch_rank);
			return DCCL__ERROR_CODE__E_BAD_TENSOR;
		}
	}
	return 0;
}
