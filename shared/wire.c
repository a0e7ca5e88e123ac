/*
 * wire: see wire.h. The envelope is validated here once; handlers then check
 * only their own body's fields against the daemon's limits.
 */
#include <nanomsg/nn.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "shared/ml/kern.h"
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
	if (!kern_finite(t->data, t->n_data)) {
		snprintf(err, errlen, "tensor %s: NaN or Inf", t->name);
		return DCCL__ERROR_CODE__E_BAD_TENSOR;
	}
	return 0;
}

/* --- pre-unpack check of a device request ------------------------------ */

/*
 * protobuf-c allocates a struct per repeated sub-message and per unknown
 * field while it unpacks, so a few bytes on the wire can cost a hundred
 * times as much memory before anything is authenticated. The check walks
 * the raw fields against what a device may send and refuses the rest
 * first. Wire types as masks.
 */
#define PB_V	(1u << 0)	/* varint */
#define PB_F64	(1u << 1)
#define PB_LD	(1u << 2)	/* length-delimited */
#define PB_F32	(1u << 5)

struct pbrule;
struct pbschema {
	const struct pbrule	*r;
	size_t			 n;
};
struct pbrule {
	uint32_t		 num;
	uint32_t		 wts;	/* allowed wire types */
	const struct pbschema	*sub;	/* LD payload is this message */
	uint32_t		 max;	/* occurrences */
};

#define SCHEMA(name, ...)						\
	static const struct pbrule name##_r[] = { __VA_ARGS__ };	\
	static const struct pbschema name = { name##_r,			\
	    sizeof(name##_r) / sizeof(name##_r[0]) }

static const struct pbschema pb_empty = { NULL, 0 };
SCHEMA(pb_capability, { 1, PB_LD, NULL, 4 }, { 2, PB_V, NULL, 4 },
    { 3, PB_V, NULL, 4 });
SCHEMA(pb_register, { 1, PB_V, NULL, 4 }, { 2, PB_LD, &pb_capability, 1 },
    { 3, PB_LD, NULL, 4 }, { 60, PB_LD, NULL, 4 });
SCHEMA(pb_getmodel, { 1, PB_V, NULL, 4 }, { 2, PB_V, NULL, 4 });
SCHEMA(pb_retrieve, { 1, PB_V, NULL, 4 }, { 2, PB_V, NULL, 4 },
    { 3, PB_V, NULL, 4 }, { 4, PB_LD | PB_F32, NULL, 1u << 22 },
    { 5, PB_V, NULL, 4 }, { 6, PB_V, NULL, 4 });
SCHEMA(pb_tensor, { 1, PB_LD, NULL, 4 }, { 2, PB_V | PB_LD, NULL, 1u << 16 },
    { 3, PB_F32 | PB_LD, NULL, 1u << 22 });
SCHEMA(pb_metric, { 1, PB_LD, NULL, 4 }, { 2, PB_F64, NULL, 4 });
SCHEMA(pb_upload, { 1, PB_V, NULL, 4 }, { 2, PB_LD, &pb_tensor, 64 },
    { 3, PB_LD, &pb_metric, 32 }, { 4, PB_LD, NULL, 4 });
SCHEMA(pb_getofa, { 1, PB_V, NULL, 4 }, { 2, PB_V, NULL, 4 },
    { 3, PB_V, NULL, 4 }, { 4, PB_V, NULL, 4 });
/*
 * Federated selection (v5; field 9, pair_weight, since issue 17's fifth
 * pass): a report's methods, the choice's request.
 */
SCHEMA(pb_gridreport, { 1, PB_LD, NULL, 4 }, { 2, PB_F64 | PB_LD, NULL, 16 },
    { 3, PB_V | PB_LD, NULL, 16 }, { 4, PB_V, NULL, 4 }, { 5, PB_V, NULL, 4 },
    { 6, PB_F64 | PB_LD, NULL, 16 }, { 7, PB_F64 | PB_LD, NULL, 16 },
    { 8, PB_F64 | PB_LD, NULL, 16 }, { 9, PB_F64, NULL, 4 });
SCHEMA(pb_selreport, { 1, PB_V, NULL, 4 }, { 2, PB_LD, &pb_gridreport, 64 });
SCHEMA(pb_getsel, { 1, PB_V, NULL, 4 });
SCHEMA(pb_getmanifest, { 1, PB_V, NULL, 4 });
/* The envelope of a device request: bodies 11, 13, 15, 17, 19, 72, 74, 80, 81. */
SCHEMA(pb_device_env, { 1, PB_V, NULL, 4 }, { 2, PB_LD, NULL, 4 },
    { 3, PB_V, NULL, 4 }, { 11, PB_LD, &pb_register, 1 },
    { 13, PB_LD, &pb_getmodel, 1 }, { 15, PB_LD, &pb_retrieve, 1 },
    { 17, PB_LD, &pb_upload, 1 }, { 19, PB_LD, &pb_empty, 1 },
    { 72, PB_LD, &pb_selreport, 1 }, { 74, PB_LD, &pb_getsel, 1 },
    { 80, PB_LD, &pb_getofa, 1 }, { 81, PB_LD, &pb_getmanifest, 1 },
    { 60, PB_V, NULL, 4 },
    { 61, PB_LD, NULL, 1 }, { 62, PB_LD, NULL, 1 });

/* Admin bodies: refused with E_FORBIDDEN on the device socket. */
static int
admin_body(uint32_t num)
{
	return num == 22 || num == 24 || num == 26 || num == 40 ||
	    num == 42 || num == 44 || num == 46 || num == 48 || num == 70;
}

static int
pb_varint(const uint8_t **p, const uint8_t *end, uint64_t *v)
{
	*v = 0;
	for (int sh = 0; sh < 64 && *p < end; sh += 7) {
		uint8_t b = *(*p)++;
		*v |= (uint64_t)(b & 0x7f) << sh;
		if (!(b & 0x80))
			return 0;
	}
	return -1;
}

static int
pb_walk(const struct pbschema *sc, const uint8_t *p, size_t len, int top,
    int *bodies, char *err, size_t errlen)
{
	const uint8_t *end = p + len;
	uint32_t seen[16];

	memset(seen, 0, sizeof(seen));
	while (p < end) {
		uint64_t key, v;
		uint32_t num, wt;
		const struct pbrule *r = NULL;
		size_t i;

		if (pb_varint(&p, end, &key) != 0 || (key >> 3) == 0 ||
		    (key >> 3) > 0x1fffffff)
			goto malformed;
		num = (uint32_t)(key >> 3);
		wt = (uint32_t)(key & 7);
		for (i = 0; i < sc->n; i++)
			if (sc->r[i].num == num) {
				r = &sc->r[i];
				break;
			}
		if (r == NULL) {
			if (top && admin_body(num)) {
				snprintf(err, errlen, "admin requests only on "
				    "the admin socket");
				return DCCL__ERROR_CODE__E_FORBIDDEN;
			}
			if (top && num >= 10 && num < 100) {
				snprintf(err, errlen, "'%s' is not a request",
				    wire_body_name((int)num));
				return DCCL__ERROR_CODE__E_UNKNOWN_BODY;
			}
			snprintf(err, errlen, "unexpected field %u", num);
			return DCCL__ERROR_CODE__E_BAD_REQUEST;
		}
		if (!(r->wts & (1u << wt))) {
			snprintf(err, errlen, "field %u: wire type %u", num,
			    wt);
			return DCCL__ERROR_CODE__E_BAD_REQUEST;
		}
		if (i < 16 && ++seen[i] > r->max) {
			snprintf(err, errlen, "field %u more than %u times",
			    num, r->max);
			return DCCL__ERROR_CODE__E_TOO_LARGE;
		}
		if (top && r->sub != NULL && ++*bodies > 1) {
			snprintf(err, errlen, "more than one body");
			return DCCL__ERROR_CODE__E_BAD_REQUEST;
		}
		switch (wt) {
		case 0:
			if (pb_varint(&p, end, &v) != 0)
				goto malformed;
			break;
		case 1:
			if ((size_t)(end - p) < 8)
				goto malformed;
			p += 8;
			break;
		case 5:
			if ((size_t)(end - p) < 4)
				goto malformed;
			p += 4;
			break;
		case 2:
			if (pb_varint(&p, end, &v) != 0 ||
			    v > (uint64_t)(end - p))
				goto malformed;
			if (r->sub != NULL) {
				int rc, dummy = 0;
				if ((rc = pb_walk(r->sub, p, (size_t)v, 0,
				    &dummy, err, errlen)) != 0)
					return rc;
			}
			p += v;
			break;
		default:
			goto malformed;
		}
	}
	return 0;
malformed:
	snprintf(err, errlen, "malformed envelope (%zu bytes)", len);
	return DCCL__ERROR_CODE__E_BAD_REQUEST;
}

int
wire_precheck_device(const void *buf, size_t len, char *err, size_t errlen)
{
	int bodies = 0;

	return pb_walk(&pb_device_env, buf, len, 1, &bodies, err, errlen);
}

