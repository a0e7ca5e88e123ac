/*
 * patch: validation of uploaded patches before they are stored. A
 * MetaPatch upload must carry exactly one finite vector "patch_m<l>" of the
 * model's patch rank per hidden layer; anything else is refused, so no
 * malformed or poisoned tensor reaches the patches table (and later
 * distillation). Loop thread.
 */
#include <stdio.h>
#include <string.h>

#include "cloudd/rpc.h"

int
patch_validate(struct cloudd *cd, const Dccl__UploadPatch *q, char *err,
    size_t errlen)
{
	const struct model_cache *m = &cd->model;
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
