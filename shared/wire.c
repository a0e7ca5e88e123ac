/*
 * wire: see wire.h. The envelope is validated here once; handlers then check
 * only their own body's fields against the daemon's limits.
 */
#include <math.h>
#include <nanomsg/nn.h>
#include <stdio.h>
#include <string.h>

#include "shared/wire.h"

int
wire_pack_nn(const Dccl__Envelope *e, void **msg, size_t *len)
{
	size_t n = dccl__envelope__get_packed_size(e);
	void *m = nn_allocmsg(n ? n : 1, 0);

	if (m == NULL)
		return -12;	/* -ENOMEM */
	dccl__envelope__pack(e, m);
	*msg = m;
	*len = n;
	return 0;
}

int
wire_devid_valid(const char *id)
{
	size_t n = strlen(id);

	if (n == 0 || n > WIRE_DEVID_MAX)
		return 0;
	for (size_t i = 0; i < n; i++) {
		char c = id[i];
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		    (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-'))
			return 0;
	}
	return 1;
}

int
wire_unpack(const void *buf, size_t len, Dccl__Envelope **out, char *err,
    size_t errlen)
{
	Dccl__Envelope *e;

	*out = NULL;
	e = dccl__envelope__unpack(NULL, len, buf);
	if (e == NULL) {
		snprintf(err, errlen, "malformed envelope (%zu bytes)", len);
		return DCCL__ERROR_CODE__E_BAD_REQUEST;
	}
	*out = e;
	if (e->version != WIRE_VERSION) {
		snprintf(err, errlen, "unsupported protocol version %u "
		    "(this server speaks %d)", e->version, WIRE_VERSION);
		return DCCL__ERROR_CODE__E_VERSION;
	}
	if (!wire_devid_valid(e->device_id)) {
		snprintf(err, errlen, "invalid device id");
		return DCCL__ERROR_CODE__E_BAD_REQUEST;
	}
	/* A sealed body (shared/auth.h) is checked once it is opened. */
	if (e->body_case == DCCL__ENVELOPE__BODY__NOT_SET &&
	    e->sealed.len == 0) {
		snprintf(err, errlen, "envelope has no body");
		return DCCL__ERROR_CODE__E_UNKNOWN_BODY;
	}
	return 0;
}

void
wire_free(Dccl__Envelope *e)
{
	if (e != NULL)
		dccl__envelope__free_unpacked(e, NULL);
}

const char *
wire_body_name(int c)
{
	const ProtobufCFieldDescriptor *f;

	if (c == DCCL__ENVELOPE__BODY__NOT_SET)
		return "none";
	if (c < DCCL__ENVELOPE__BODY_ERROR)
		return "unknown";	/* a header field, not a body */
	f = protobuf_c_message_descriptor_get_field(
	    &dccl__envelope__descriptor, (unsigned)c);
	return f ? f->name : "unknown";
}

const char *
wire_error_name(int code)
{
	const ProtobufCEnumValue *v = protobuf_c_enum_descriptor_get_value(
	    &dccl__error_code__descriptor, code);

	return v ? v->name : "E_UNKNOWN";
}

int
wire_floats_finite(const float *v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (!isfinite(v[i]))
			return 0;
	return 1;
}

int
wire_tensor_check(const Dccl__Tensor *t, size_t max_elems, char *err,
    size_t errlen)
{
	size_t prod = 1;

	if (t->name == NULL || t->name[0] == '\0' || strlen(t->name) > 64) {
		snprintf(err, errlen, "tensor without a valid name");
		return DCCL__ERROR_CODE__E_BAD_TENSOR;
	}
	if (t->n_shape == 0 || t->n_shape > 4) {
		snprintf(err, errlen, "tensor %s: rank %zu not in 1..4",
		    t->name, t->n_shape);
		return DCCL__ERROR_CODE__E_BAD_TENSOR;
	}
	for (size_t i = 0; i < t->n_shape; i++) {
		if (t->shape[i] == 0 || prod > max_elems / t->shape[i]) {
			snprintf(err, errlen, "tensor %s: bad shape", t->name);
			return DCCL__ERROR_CODE__E_BAD_TENSOR;
		}
		prod *= t->shape[i];
	}
	if (prod != t->n_data) {
		snprintf(err, errlen, "tensor %s: shape holds %zu values, "
		    "data has %zu", t->name, prod, t->n_data);
		return DCCL__ERROR_CODE__E_BAD_TENSOR;
	}
	if (!wire_floats_finite(t->data, t->n_data)) {
		snprintf(err, errlen, "tensor %s: NaN or Inf", t->name);
		return DCCL__ERROR_CODE__E_BAD_TENSOR;
	}
	return 0;
}
