/* ctr_slice: see ctr_slice.h. */
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "shared/ml/ctr.h"
#include "shared/ml/ctr_io.h"
#include "shared/ml/ctr_slice.h"
#include "shared/ml/kern.h"
#include "shared/ml/tensor_io.h"
#include "shared/xmalloc.h"

#define SHARED_KEY	"dccl-shared-v1"

#define fail(rc, err, errlen, ...)					\
	tensor_io_fail((rc), "", ctr_io_strerror(rc), (err), (errlen),	\
	    __VA_ARGS__)

int
ctr_slice_user_tensor(const char *name)
{
	if (name == NULL)
		return 0;
	if (strcmp(name, "emb_user") == 0 || strcmp(name, "patch_b") == 0)
		return 1;
	return strncmp(name, "patch_m", 7) == 0 && name[7] >= '0' &&
	    name[7] < '0' + CTR_MAX_LAYERS && name[8] == '\0';
}

/* The shared part's checksum: msg packed with an empty checksum, keyed. */
static void
shared_sum(Dccl__Model *msg, uint8_t out[32])
{
	ProtobufCBinaryData keep = msg->checksum;
	size_t n;
	uint8_t *b;

	msg->checksum.data = NULL;
	msg->checksum.len = 0;
	n = dccl__model__get_packed_size(msg);
	b = xmalloc(n ? n : 1);
	dccl__model__pack(msg, b);
	crypto_generichash(out, 32, b, n, (const uint8_t *)SHARED_KEY,
	    sizeof(SHARED_KEY) - 1);
	free(b);
	msg->checksum = keep;
}

/* The number of rows of a per-user table t of a model with nu users. */
static int
user_table(const Dccl__Tensor *t, size_t rows)
{
	return t->n_shape == 2 && t->shape[0] == rows && t->shape[1] > 0 &&
	    t->n_data == (size_t)t->shape[0] * t->shape[1];
}

int
ctr_slice_shared(const Dccl__Model *full, uint8_t **out, size_t *len,
    char *err, size_t errlen)
{
	Dccl__Model msg = *full;
	Dccl__Tensor *tp[CTR_MAX_TENSORS], cut[CTR_SLICE_MAX_TENSORS];
	uint32_t shape[2 * CTR_SLICE_MAX_TENSORS];
	uint8_t sum[32];
	size_t k = 0, nu;

	*out = NULL;
	*len = 0;
	if (full->user_rows != CTR_IO_ROWS_ALL)
		return fail(CTR_IO_EFORMAT, err, errlen, "user_rows %u",
		    full->user_rows);
	if (full->kind == NULL || strcmp(full->kind, CTR_IO_KIND) != 0 ||
	    full->config == NULL)
		return fail(CTR_IO_EKIND, err, errlen, "not a CTR model");
	if (full->n_tensors > CTR_MAX_TENSORS)
		return fail(CTR_IO_EUNKNOWN, err, errlen, "%zu tensors",
		    full->n_tensors);
	nu = (size_t)full->config->n_users;
	for (size_t i = 0; i < full->n_tensors; i++) {
		const Dccl__Tensor *t = full->tensors[i];
		tp[i] = full->tensors[i];
		if (!ctr_slice_user_tensor(t->name))
			continue;
		if (k == CTR_SLICE_MAX_TENSORS || !user_table(t, nu + 1))
			return fail(CTR_IO_ESHAPE, err, errlen, "'%s'",
			    t->name);
		/* its OOV row, the last */
		shape[2 * k] = 1;
		shape[2 * k + 1] = t->shape[1];
		tensor_io_view(&cut[k], t->name, 2, &shape[2 * k],
		    t->data + nu * t->shape[1], t->shape[1]);
		tp[i] = &cut[k++];
	}
	msg.tensors = tp;
	msg.user_rows = CTR_IO_ROWS_SHARED;
	msg.slice_user = 0;
	shared_sum(&msg, sum);
	msg.checksum.data = sum;
	msg.checksum.len = sizeof(sum);
	*len = dccl__model__get_packed_size(&msg);
	*out = xmalloc(*len);
	dccl__model__pack(&msg, *out);
	return 0;
}

size_t
ctr_slice_rows(const Dccl__Model *full, uint32_t user,
    Dccl__Tensor t[CTR_SLICE_MAX_TENSORS],
    Dccl__Tensor *tp[CTR_SLICE_MAX_TENSORS],
    uint32_t shape[2 * CTR_SLICE_MAX_TENSORS])
{
	size_t k = 0, nu = full->config ? full->config->n_users : 0;
	int has = user < nu;

	for (size_t i = 0; i < full->n_tensors && k < CTR_SLICE_MAX_TENSORS;
	    i++) {
		const Dccl__Tensor *x = full->tensors[i];
		if (!ctr_slice_user_tensor(x->name) || !user_table(x, nu + 1))
			continue;
		shape[2 * k] = has ? 1 : 0;
		shape[2 * k + 1] = x->shape[1];
		tensor_io_view(&t[k], x->name, 2, &shape[2 * k],
		    has ? x->data + (size_t)user * x->shape[1] : NULL,
		    has ? x->shape[1] : 0);
		tp[k] = &t[k];
		k++;
	}
	return k;
}

/* The rows tensor named name, or NULL (also when named twice). */
static const Dccl__Tensor *
find_rows(Dccl__Tensor *const *rows, size_t n, const char *name)
{
	const Dccl__Tensor *r = NULL;

	for (size_t j = 0; j < n; j++)
		if (rows[j] != NULL && rows[j]->name != NULL &&
		    strcmp(rows[j]->name, name) == 0) {
			if (r != NULL)
				return NULL;
			r = rows[j];
		}
	return r;
}

/*
 * user's row of the per-user table name (c columns) among rows: one
 * tensor of that name, shape [1, c] ([0, c] for a cold user), finite.
 * 0 and *out, or a CTR_IO_E* code with err.
 */
static int
row_check(const char *name, size_t c, uint32_t user, int cold,
    Dccl__Tensor *const *rows, size_t n, const Dccl__Tensor **out, char *err,
    size_t errlen)
{
	const Dccl__Tensor *r;

	if ((r = find_rows(rows, n, name)) == NULL)
		return fail(CTR_IO_EMISSING, err, errlen, "row of '%s'", name);
	if (r->n_shape != 2 || r->shape[0] != (cold ? 0u : 1u) ||
	    r->shape[1] != c || r->n_data != (cold ? 0 : c))
		return fail(CTR_IO_ESHAPE, err, errlen, "row of '%s' for user "
		    "%u", name, user);
	if (!kern_finite(r->data, r->n_data))
		return fail(CTR_IO_ENONFINITE, err, errlen, "row of '%s'",
		    name);
	*out = r;
	return 0;
}

int
ctr_slice_assemble(const uint8_t *blob, size_t len, uint32_t user,
    Dccl__Tensor *const *rows, size_t n, uint8_t **out, size_t *outlen,
    char *err, size_t errlen)
{
	Dccl__Model *msg = NULL;
	struct {
		Dccl__Tensor	*t;
		float		*data;
		size_t		 n_data;
		uint32_t	 rows;
	} sw[CTR_SLICE_MAX_TENSORS];
	size_t k = 0, nu, used = 0;
	ProtobufCBinaryData ck;
	uint8_t sum[32];
	struct ctr *m = NULL;
	int rc = 0, cold;

	*out = NULL;
	*outlen = 0;
	if (err != NULL && errlen > 0)
		err[0] = '\0';
	if (len > CTR_IO_MAX_BYTES)
		return fail(CTR_IO_ETOOBIG, err, errlen, "%zu bytes", len);
	if (blob == NULL || len == 0 ||
	    (msg = dccl__model__unpack(NULL, len, blob)) == NULL)
		return fail(CTR_IO_EUNPACK, err, errlen, "%zu bytes", len);
	if (msg->user_rows != CTR_IO_ROWS_SHARED) {
		rc = fail(CTR_IO_EFORMAT, err, errlen, "user_rows %u, not a "
		    "shared part", msg->user_rows);
		goto out;
	}
	if (msg->kind == NULL || strcmp(msg->kind, CTR_IO_KIND) != 0 ||
	    msg->config == NULL) {
		rc = fail(CTR_IO_EKIND, err, errlen, "not a CTR model");
		goto out;
	}
	shared_sum(msg, sum);
	if (msg->checksum.len != sizeof(sum) ||
	    sodium_memcmp(sum, msg->checksum.data, sizeof(sum)) != 0) {
		rc = fail(CTR_IO_ECHECKSUM, err, errlen, "shared part altered");
		goto out;
	}
	nu = msg->config->n_users;
	cold = user >= nu;
	/* Every per-user table gets its row; nothing else is taken. */
	for (size_t i = 0; i < msg->n_tensors; i++) {
		Dccl__Tensor *t = msg->tensors[i];
		const Dccl__Tensor *r;
		size_t c;
		float *d;
		if (!ctr_slice_user_tensor(t->name))
			continue;
		if (k == CTR_SLICE_MAX_TENSORS || !user_table(t, 1)) {
			rc = fail(CTR_IO_ESHAPE, err, errlen, "'%s' in the "
			    "shared part", t->name);
			goto out;
		}
		c = t->shape[1];
		if ((rc = row_check(t->name, c, user, cold, rows, n, &r, err,
		    errlen)) != 0)
			goto out;
		used++;
		/* row 0: the user's (the OOV row again when it has none) */
		d = xmalloc(2 * c * sizeof(float));
		memcpy(d, cold ? t->data : r->data, c * sizeof(float));
		memcpy(d + c, t->data, c * sizeof(float));
		sw[k].t = t;
		sw[k].data = t->data;
		sw[k].n_data = t->n_data;
		sw[k].rows = t->shape[0];
		t->data = d;
		t->n_data = 2 * c;
		t->shape[0] = 2;
		k++;
	}
	if (used != n) {
		rc = fail(CTR_IO_EUNKNOWN, err, errlen, "%zu rows for %zu "
		    "per-user tables", n, used);
		goto out;
	}
	msg->user_rows = CTR_IO_ROWS_SLICE;
	msg->slice_user = user;
	if ((rc = ctr_io_unpack_msg(&m, NULL, msg,
	    dccl__model__get_packed_size(msg), 0, err, errlen)) != 0)
		goto out;
	ctr_io_checksum(m, sum);
	ctr_free(m);
	ck = msg->checksum;
	msg->checksum.data = sum;
	msg->checksum.len = sizeof(sum);
	*outlen = dccl__model__get_packed_size(msg);
	*out = xmalloc(*outlen);
	dccl__model__pack(msg, *out);
	msg->checksum = ck;	/* sum is ours; the unpacked bytes are freed */
out:
	while (k-- > 0) {
		free(sw[k].t->data);
		sw[k].t->data = sw[k].data;
		sw[k].t->n_data = sw[k].n_data;
		sw[k].t->shape[0] = sw[k].rows;
	}
	dccl__model__free_unpacked(msg, NULL);
	return rc;
}

int
ctr_slice_shared_sum(const uint8_t *blob, size_t len, uint8_t out[32])
{
	Dccl__Model *msg;
	struct {
		Dccl__Tensor	*t;
		float		*data;
	} sw[CTR_SLICE_MAX_TENSORS];
	size_t k = 0;
	int rc = 0;

	if (blob == NULL || len == 0 || len > CTR_IO_MAX_BYTES ||
	    (msg = dccl__model__unpack(NULL, len, blob)) == NULL)
		return CTR_IO_EUNPACK;
	if (msg->user_rows != CTR_IO_ROWS_SLICE || msg->kind == NULL ||
	    strcmp(msg->kind, CTR_IO_KIND) != 0) {
		rc = CTR_IO_EFORMAT;
		goto out;
	}
	/* Every per-user table back to its OOV row (row 1), as served. */
	for (size_t i = 0; i < msg->n_tensors; i++) {
		Dccl__Tensor *t = msg->tensors[i];
		if (!ctr_slice_user_tensor(t->name))
			continue;
		if (k == CTR_SLICE_MAX_TENSORS || !user_table(t, 2)) {
			rc = CTR_IO_ESHAPE;
			goto out;
		}
		sw[k].t = t;
		sw[k++].data = t->data;
		t->data += t->shape[1];
		t->n_data = t->shape[1];
		t->shape[0] = 1;
	}
	msg->user_rows = CTR_IO_ROWS_SHARED;
	msg->slice_user = 0;
	shared_sum(msg, out);
out:
	while (k-- > 0) {	/* what free_unpacked frees */
		sw[k].t->data = sw[k].data;
		sw[k].t->n_data = 2 * sw[k].t->shape[1];
		sw[k].t->shape[0] = 2;
	}
	dccl__model__free_unpacked(msg, NULL);
	return rc;
}

int
ctr_slice_view(struct ctr **out, struct ctr *base, uint32_t user,
    Dccl__Tensor *const *rows, size_t n, char *err, size_t errlen)
{
	struct ctr_config cfg = *ctr_config(base);
	struct ctr *v = NULL;
	size_t used = 0;
	int cold = user >= cfg.n_users;

	*out = NULL;
	if (err != NULL && errlen > 0)
		err[0] = '\0';
	if (!cfg.sliced)
		return fail(CTR_IO_EFORMAT, err, errlen, "base is no slice");
	cfg.slice_user = user;
	/* the rows' checks of ctr_slice_assemble, against base's tables */
	for (int i = 0; i < ctr_num_tensors(base); i++) {
		const struct param_tensor *t = ctr_tensor_at(base, i);
		const Dccl__Tensor *r;
		int rc;
		if (!ctr_slice_user_tensor(t->name))
			continue;
		if ((rc = row_check(t->name, t->shape[1], user, cold, rows, n,
		    &r, err, errlen)) != 0)
			return rc;
		used++;
	}
	if (used != n)
		return fail(CTR_IO_EUNKNOWN, err, errlen, "%zu rows for %zu "
		    "per-user tables", n, used);
	if (ctr_view(&v, base, &cfg, NULL) != 0)
		return fail(CTR_IO_ECONFIG, err, errlen, "base is a view");
	/* row 0: the user's (the OOV row again when it has none) */
	for (int i = 0; i < ctr_num_tensors(v); i++) {
		const struct param_tensor *t = ctr_tensor_at(v, i);
		size_t c = t->shape[1];
		if (!ctr_slice_user_tensor(t->name))
			continue;
		memcpy(t->data, cold ? t->data + c : find_rows(rows, n,
		    t->name)->data, c * sizeof(float));
	}
	*out = v;
	return 0;
}

int
ctr_slice_shared_id(const uint8_t *blob, size_t len, uint8_t out[32])
{
	Dccl__Model *msg;
	int rc = 0;

	if (blob == NULL || len == 0 || len > CTR_IO_MAX_BYTES ||
	    (msg = dccl__model__unpack(NULL, len, blob)) == NULL)
		return CTR_IO_EUNPACK;
	if (msg->user_rows != CTR_IO_ROWS_SHARED || msg->checksum.len != 32)
		rc = CTR_IO_EFORMAT;
	else
		memcpy(out, msg->checksum.data, 32);
	dccl__model__free_unpacked(msg, NULL);
	return rc;
}
