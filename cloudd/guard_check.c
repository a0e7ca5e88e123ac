/*
 * guard_check: the guard's pure checks of request contents beyond their
 * shape (guard.h): an upload's metric count, names and values, its kind,
 * its tensors' finiteness and L2 norm (refused or clipped against the
 * limit), and a RegisterReq's strings and numbers. No state, any thread;
 * moved out of guard.c, which keeps the authentication and rate limits.
 */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "cloudd/guard.h"
#include "shared/ml/kern.h"
#include "shared/wire.h"

static int
name_ok(const char *s)
{
	size_t n = s ? strlen(s) : 0;

	if (n == 0 || n > 64)
		return 0;
	for (size_t i = 0; i < n; i++)
		if (s[i] < 0x21 || s[i] > 0x7e)
			return 0;
	return 1;
}

double
guard_patch_norm(const Dccl__UploadPatch *q)
{
	double s = 0;

	for (size_t i = 0; i < q->n_tensors; i++)
		for (size_t j = 0; j < q->tensors[i]->n_data; j++)
			s += (double)q->tensors[i]->data[j] *
			    q->tensors[i]->data[j];
	return sqrt(s);
}

int
guard_upload_check(Dccl__UploadPatch *q, double max_norm, int clip,
    int *clipped, char *err, size_t errlen)
{
	double norm;

	*clipped = 0;
	if (q->n_metrics > 32) {
		snprintf(err, errlen, "at most 32 metrics, got %zu",
		    q->n_metrics);
		return DCCL__ERROR_CODE__E_BAD_REQUEST;
	}
	for (size_t i = 0; i < q->n_metrics; i++) {
		if (!name_ok(q->metrics[i]->name)) {
			snprintf(err, errlen, "metric %zu: bad name", i);
			return DCCL__ERROR_CODE__E_BAD_REQUEST;
		}
		if (!isfinite(q->metrics[i]->value)) {
			snprintf(err, errlen, "metric %s is not finite",
			    q->metrics[i]->name);
			return DCCL__ERROR_CODE__E_BAD_REQUEST;
		}
	}
	if (q->kind != NULL && strlen(q->kind) > 23) {
		snprintf(err, errlen, "patch kind too long");
		return DCCL__ERROR_CODE__E_BAD_REQUEST;
	}
	for (size_t i = 0; i < q->n_tensors; i++)
		if (!kern_finite(q->tensors[i]->data,
		    q->tensors[i]->n_data)) {
			snprintf(err, errlen, "tensor %zu: NaN or Inf", i);
			return DCCL__ERROR_CODE__E_BAD_TENSOR;
		}
	norm = guard_patch_norm(q);
	if (!isfinite(norm)) {
		snprintf(err, errlen, "patch norm overflows");
		return DCCL__ERROR_CODE__E_BAD_TENSOR;
	}
	if (max_norm > 0 && norm > max_norm) {
		if (!clip) {
			snprintf(err, errlen, "patch L2 norm %.4g above the "
			    "limit %.4g (limits.max-patch-norm, "
			    "limits.patch-norm-factor)", norm, max_norm);
			return DCCL__ERROR_CODE__E_BAD_TENSOR;
		}
		for (size_t i = 0; i < q->n_tensors; i++)
			for (size_t j = 0; j < q->tensors[i]->n_data; j++)
				q->tensors[i]->data[j] = (float)(
				    q->tensors[i]->data[j] * (max_norm / norm));
		*clipped = 1;
	}
	return 0;
}

int
guard_register_check(const Dccl__RegisterReq *q, int need_key, char *err,
    size_t errlen)
{
	if (q->software != NULL && strlen(q->software) > 64) {
		snprintf(err, errlen, "software string longer than 64");
		return DCCL__ERROR_CODE__E_BAD_REQUEST;
	}
	if (q->capability != NULL && (q->capability->memory_mb > (1u << 24)
	    || (q->capability->compute_class != NULL &&
	    strlen(q->capability->compute_class) > 8))) {
		snprintf(err, errlen, "capability out of range");
		return DCCL__ERROR_CODE__E_BAD_REQUEST;
	}
	if (need_key && q->pubkey.len != 32) {
		snprintf(err, errlen, "RegisterReq needs a 32-byte X25519 "
		    "public key (got %zu bytes)", q->pubkey.len);
		return DCCL__ERROR_CODE__E_UNAUTHENTICATED;
	}
	return 0;
}

