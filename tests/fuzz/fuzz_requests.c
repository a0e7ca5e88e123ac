/*
 * fuzz_requests: libFuzzer harness for the request handlers' validation.
 * Each input is decoded as an envelope and its body run through the same
 * pure checks cloudd's handlers apply before touching state: RegisterReq
 * (guard_register_check), UploadPatch (wire_tensor_check per tensor,
 * patch_shape_check against a model with 2 hidden layers of rank 16, then
 * guard_upload_check with clipping and with rejection). RetrieveReq and
 * GetModelReq are bounds-checked inside their handlers, which need a
 * running cloudd (store, index, model): tests/integ/badrequests.sh sends
 * out-of-range ones through the real daemon. A copy of those checks here
 * would only test itself, so there is none.
 */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cloudd/cloudd.h"
#include "cloudd/guard.h"
#include "cloudd/rpc.h"
#include "shared/wire.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct cloudd *cd;
	Dccl__Envelope *e = NULL;
	char err[256];
	int clipped, rc;

	if (cd == NULL) {
		cd = calloc(1, sizeof(*cd));
		cd->model.n_hidden = 2;
		cd->model.patch_rank = 16;
		cd->model.version = 1;
		cd->cf.max_tensor = 1 << 20;
	}
	if (wire_unpack(data, size, &e, err, sizeof(err)) != 0) {
		wire_free(e);
		return 0;
	}
	switch (e->body_case) {
	case DCCL__ENVELOPE__BODY_REGISTER_REQ:
		(void)guard_register_check(e->register_req, 1, err,
		    sizeof(err));
		break;
	case DCCL__ENVELOPE__BODY_UPLOAD: {
		Dccl__UploadPatch *q = e->upload;
		if (q->n_tensors == 0 || q->n_tensors > 64)
			break;
		rc = 0;
		for (size_t i = 0; i < q->n_tensors && rc == 0; i++)
			rc = wire_tensor_check(q->tensors[i],
			    (size_t)cd->cf.max_tensor, err, sizeof(err));
		if (rc != 0 || patch_shape_check(&cd->model, q, err,
		    sizeof(err)) != 0)
			break;
		if (guard_upload_check(q, 100, 0, &clipped, err,
		    sizeof(err)) == 0 && guard_patch_norm(q) > 100 * 1.0001)
			abort();	/* passed while above the limit */
		if (guard_upload_check(q, 1, 1, &clipped, err, sizeof(err)) ==
		    0 && guard_patch_norm(q) > 1.0001)
			abort();	/* clipping must bound the norm */
		break;
	}
	default:
		(void)wire_body_name(e->body_case);
		break;
	}
	wire_free(e);
	return 0;
}
