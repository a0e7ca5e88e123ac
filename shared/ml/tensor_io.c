/*
 * tensor_io: what the model files share (see tensor_io.h).
 */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "shared/ml/kern.h"
#include "shared/ml/tensor_io.h"

int
tensor_io_fail(int rc, const char *pre, const char *what, char *err,
    size_t errlen, const char *fmt, ...)
{
	va_list ap;
	char detail[128];

	if (err == NULL || errlen == 0)
		return rc;
	va_start(ap, fmt);
	vsnprintf(detail, sizeof(detail), fmt, ap);
	va_end(ap);
	snprintf(err, errlen, "%s%s: %s", pre, what, detail);
	return rc;
}

void
tensor_io_hash_u32(crypto_generichash_state *st, uint32_t v)
{
	uint8_t b[4] = { v & 0xff, (v >> 8) & 0xff, (v >> 16) & 0xff,
	    (v >> 24) & 0xff };

	crypto_generichash_update(st, b, sizeof(b));
}

void
tensor_io_hash_floats(crypto_generichash_state *st, const float *p, size_t n)
{
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
	crypto_generichash_update(st, (const uint8_t *)p, n * sizeof(float));
#else
	for (size_t i = 0; i < n; i++) {
		uint32_t u;
		memcpy(&u, &p[i], sizeof(u));
		tensor_io_hash_u32(st, u);
	}
#endif
}

void
tensor_io_hash(crypto_generichash_state *st, const char *name, int ndim,
    const uint32_t *shape, const float *data, size_t n)
{
	size_t nl = strlen(name);

	tensor_io_hash_u32(st, (uint32_t)nl);
	crypto_generichash_update(st, (const uint8_t *)name, nl);
	tensor_io_hash_u32(st, (uint32_t)ndim);
	for (int d = 0; d < ndim; d++)
		tensor_io_hash_u32(st, shape[d]);
	tensor_io_hash_floats(st, data, n);
}

void
tensor_io_view(Dccl__Tensor *mt, const char *name, int ndim,
    const uint32_t *shape, const float *data, size_t n)
{
	dccl__tensor__init(mt);
	/* Pack only reads these; the casts drop const for the API. */
	mt->name = (char *)name;
	mt->n_shape = (size_t)ndim;
	mt->shape = (uint32_t *)shape;
	mt->n_data = n;
	mt->data = (float *)data;
}

int
tensor_io_shape(const Dccl__Tensor *mt, const char *name, int ndim,
    const uint32_t *shape, size_t n, char *detail, size_t dlen)
{
	if (mt->n_shape != (size_t)ndim) {
		snprintf(detail, dlen, "'%s' has %zu dims, want %d", name,
		    mt->n_shape, ndim);
		return -1;
	}
	for (int d = 0; d < ndim; d++)
		if (mt->shape[d] != shape[d]) {
			snprintf(detail, dlen, "'%s' dim %d is %u, want %u",
			    name, d, mt->shape[d], shape[d]);
			return -1;
		}
	if (mt->n_data != n) {
		snprintf(detail, dlen, "'%s' has %zu floats, want %zu", name,
		    mt->n_data, n);
		return -1;
	}
	return 0;
}

int
tensor_io_match(Dccl__Tensor *const *mt, size_t n,
    const struct param_tensor *t, int nt, const uint8_t *want, int finite,
    int *map, char *detail, size_t dlen)
{
	for (int i = 0; i < nt; i++)
		map[i] = -1;
	for (size_t j = 0; j < n; j++) {
		const Dccl__Tensor *m = mt[j];
		int i;
		for (i = 0; i < nt; i++)
			if (m->name != NULL && strcmp(t[i].name, m->name) == 0)
				break;
		if (i == nt || (want != NULL && !want[i])) {
			snprintf(detail, dlen, "'%.32s'", m->name ? m->name :
			    "");
			return TENSOR_IO_UNKNOWN;
		}
		if (map[i] >= 0) {
			snprintf(detail, dlen, "duplicate '%s'", t[i].name);
			return TENSOR_IO_UNKNOWN;
		}
		map[i] = (int)j;
		if (tensor_io_shape(m, t[i].name, t[i].ndim, t[i].shape,
		    t[i].n, detail, dlen) != 0)
			return TENSOR_IO_SHAPE;
		if (finite && !kern_finite(m->data, m->n_data)) {
			snprintf(detail, dlen, "'%s'", t[i].name);
			return TENSOR_IO_NONFINITE;
		}
	}
	return 0;
}

