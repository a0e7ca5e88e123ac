/*
 * patch: validation of uploaded patches before they are stored, every
 * check once and in one place. A MetaPatch upload must name a known base
 * version and carry exactly one finite vector "patch_m<l>" of the model's
 * patch rank per hidden layer, with finite metrics and a norm within
 * limits.max-patch-norm (guard_upload_check); anything else is refused, so
 * no malformed or poisoned tensor reaches the patches table (and later
 * distillation). Loop thread.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "cloudd/guard.h"
#include "cloudd/rpc.h"
#include "shared/wire.h"

int
patch_validate(struct cloudd *cd, Dccl__UploadPatch *q, int *clipped,
    char *err, size_t errlen)
{
	struct store_model_info mi;
	int rc;

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
	if ((rc = guard_upload_check(q, cd->cf.max_patch_norm,
	    cd->cf.patch_clip, clipped, err, errlen)) != 0)
		return rc;
	if ((rc = store_model_info(cd->st, q->base_version, &mi)) != 0) {
		snprintf(err, errlen, "base model v%llu: %s",
		    (unsigned long long)q->base_version, rc == -ENOENT ?
		    "unknown" : store_errmsg(cd->st));
		return rc == -ENOENT ? DCCL__ERROR_CODE__E_STALE :
		    DCCL__ERROR_CODE__E_STORAGE;
	}
	return patch_shape_check(&cd->model, q, err, errlen);
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
