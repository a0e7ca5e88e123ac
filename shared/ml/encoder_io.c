/*
 * encoder_io: the auxiliary encoder in a packed model (encoder_io.h). The
 * model part is ctr_io's; this file re-packs a model with four more
 * tensors rather than growing ctr_io_pack, and reads them back.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "shared/ml/encoder_io.h"
#include "shared/ml/tensor_io.h"
#include "shared/xmalloc.h"

#define ENC_IO_N	4
static const char *const enc_names[ENC_IO_N] = { "enc_mu", "enc_sd",
	"enc_w", "enc_c" };

#define fail(rc, err, errlen, ...)					\
	tensor_io_fail((rc), "encoder: ", ctr_io_strerror(rc), (err),	\
	    (errlen), __VA_ARGS__)

static size_t
n_of(const uint32_t *shape, int ndim)
{
	return ndim == 1 ? shape[0] : (size_t)shape[0] * shape[1];
}

/* The tensors' data, shapes and lengths for e, in enc_names order. */
static void
views(const struct enc *e, float *data[ENC_IO_N], uint32_t shape[ENC_IO_N][2],
    int ndim[ENC_IO_N])
{
	data[0] = e->mu;
	data[1] = e->sd;
	data[2] = e->w;
	data[3] = e->c;
	shape[0][0] = shape[1][0] = (uint32_t)e->nin;
	ndim[0] = ndim[1] = ndim[3] = 1;
	shape[2][0] = (uint32_t)e->nout;
	shape[2][1] = (uint32_t)e->nin;
	ndim[2] = 2;
	shape[3][0] = (uint32_t)e->nout;
}

static void
checksum(const struct enc *e, uint8_t out[CTR_IO_CHECKSUM_LEN])
{
	crypto_generichash_state st;
	float *data[ENC_IO_N];
	uint32_t shape[ENC_IO_N][2];
	int ndim[ENC_IO_N];

	views(e, data, shape, ndim);
	crypto_generichash_init(&st, NULL, 0, CTR_IO_CHECKSUM_LEN);
	tensor_io_hash_u32(&st, (uint32_t)e->nin);
	tensor_io_hash_u32(&st, (uint32_t)e->nout);
	for (int t = 0; t < ENC_IO_N; t++)
		tensor_io_hash(&st, enc_names[t], ndim[t], shape[t], data[t],
		    n_of(shape[t], ndim[t]));
	crypto_generichash_final(&st, out, CTR_IO_CHECKSUM_LEN);
}

int
encoder_io_attach(uint8_t **buf, size_t *len, const struct enc *e,
    enum enc_mode mode)
{
	Dccl__Model *msg;
	Dccl__Tensor t[ENC_IO_N], *tp[ENC_IO_N];
	float *data[ENC_IO_N];
	uint32_t shape[ENC_IO_N][2];
	int ndim[ENC_IO_N];
	uint8_t sum[CTR_IO_CHECKSUM_LEN], *out;
	size_t n;
	struct ctr *m = NULL;
	int rc;

	if ((rc = ctr_io_unpack(&m, NULL, *buf, *len, NULL, 0)) != 0)
		return rc;
	rc = enc_check(e, m);
	ctr_free(m);
	if (rc != 0)
		return CTR_IO_ESHAPE;
	if ((msg = dccl__model__unpack(NULL, *len, *buf)) == NULL)
		return CTR_IO_EUNPACK;
	if ((msg->format != CTR_IO_FORMAT && msg->format != CTR_IO_FORMAT_2 &&
	    msg->format != CTR_IO_FORMAT_3) || msg->n_enc_tensors > 0) {
		dccl__model__free_unpacked(msg, NULL);
		return CTR_IO_EFORMAT;
	}
	views(e, data, shape, ndim);
	for (int i = 0; i < ENC_IO_N; i++) {
		tensor_io_view(&t[i], enc_names[i], ndim[i], shape[i], data[i],
		    n_of(shape[i], ndim[i]));
		tp[i] = &t[i];
	}
	checksum(e, sum);
	if (msg->format < CTR_IO_FORMAT_ENC)	/* format 3 stays 3 */
		msg->format = CTR_IO_FORMAT_ENC;
	msg->n_enc_tensors = ENC_IO_N;
	msg->enc_tensors = tp;
	msg->enc_checksum.data = sum;
	msg->enc_checksum.len = sizeof(sum);
	msg->enc_mode = (uint32_t)mode;
	n = dccl__model__get_packed_size(msg);
	out = xmalloc(n + 1);
	dccl__model__pack(msg, out);
	/* Not the unpacker's memory: detach before freeing the message. */
	msg->n_enc_tensors = 0;
	msg->enc_tensors = NULL;
	msg->enc_checksum.data = NULL;
	msg->enc_checksum.len = 0;
	dccl__model__free_unpacked(msg, NULL);
	free(*buf);
	*buf = out;
	*len = n;
	return 0;
}

int
encoder_io_unpack(struct enc **out, enum enc_mode *mode, const struct ctr *m,
    const uint8_t *buf, size_t len, char *err, size_t errlen)
{
	Dccl__Model *msg;
	struct enc *e = NULL;
	float *data[ENC_IO_N];
	uint32_t shape[ENC_IO_N][2];
	int ndim[ENC_IO_N], seen[ENC_IO_N] = { 0 }, rc = 0;
	uint8_t sum[CTR_IO_CHECKSUM_LEN];

	*out = NULL;
	if (err != NULL && errlen > 0)
		err[0] = '\0';
	if (len > CTR_IO_MAX_BYTES)
		return fail(CTR_IO_ETOOBIG, err, errlen, "%zu bytes", len);
	if (buf == NULL || len == 0 ||
	    (msg = dccl__model__unpack(NULL, len, buf)) == NULL)
		return fail(CTR_IO_EUNPACK, err, errlen, "%zu bytes", len);
	if (msg->format == CTR_IO_FORMAT) {
		if (msg->n_enc_tensors > 0)
			rc = fail(CTR_IO_EFORMAT, err, errlen,
			    "encoder tensors in a format-1 model");
		goto done;
	}
	if (msg->format != CTR_IO_FORMAT_ENC &&
	    (msg->format != CTR_IO_FORMAT_3 || msg->config == NULL ||
	    !msg->config->item_prior)) {
		rc = fail(CTR_IO_EFORMAT, err, errlen, "format %u",
		    msg->format);
		goto done;
	}
	if (msg->n_enc_tensors == 0 && msg->enc_checksum.len == 0)
		goto done;	/* format 2 for the model's options alone */
	if (msg->enc_mode > ENC_MODE_REG) {
		rc = fail(CTR_IO_EMETA, err, errlen, "enc_mode %u",
		    msg->enc_mode);
		goto done;
	}
	if ((e = enc_new(m)) == NULL) {
		rc = fail(CTR_IO_ECONFIG, err, errlen, "no encoder shape");
		goto done;
	}
	views(e, data, shape, ndim);
	for (size_t i = 0; i < msg->n_enc_tensors; i++) {
		const Dccl__Tensor *t = msg->enc_tensors[i];
		char detail[96];
		int k = -1;
		size_t n;

		for (int j = 0; j < ENC_IO_N; j++)
			if (t->name != NULL && strcmp(t->name, enc_names[j]) == 0)
				k = j;
		if (k < 0 || seen[k]) {
			rc = fail(CTR_IO_EUNKNOWN, err, errlen,
			    "tensor '%.32s'", t->name ? t->name : "");
			goto done;
		}
		seen[k] = 1;
		n = n_of(shape[k], ndim[k]);
		if (tensor_io_shape(t, enc_names[k], ndim[k], shape[k], n,
		    detail, sizeof(detail)) != 0) {
			rc = fail(CTR_IO_ESHAPE, err, errlen, "%s", detail);
			goto done;
		}
		for (size_t j = 0; j < n; j++)
			if (!isfinite(t->data[j]) || (k == 1 &&
			    !(t->data[j] > 0))) {
				rc = fail(CTR_IO_ENONFINITE, err, errlen,
				    "%s[%zu]", enc_names[k], j);
				goto done;
			}
		memcpy(data[k], t->data, n * sizeof(float));
	}
	for (int k = 0; k < ENC_IO_N; k++)
		if (!seen[k]) {
			rc = fail(CTR_IO_EMISSING, err, errlen, "tensor %s",
			    enc_names[k]);
			goto done;
		}
	checksum(e, sum);
	if (msg->enc_checksum.len != sizeof(sum) ||
	    sodium_memcmp(msg->enc_checksum.data, sum, sizeof(sum)) != 0) {
		rc = fail(CTR_IO_ECHECKSUM, err, errlen, "encoder");
		goto done;
	}
	if (mode != NULL)
		*mode = (enum enc_mode)msg->enc_mode;
	*out = e;
	e = NULL;
done:
	enc_free(e);
	dccl__model__free_unpacked(msg, NULL);
	return rc;
}
