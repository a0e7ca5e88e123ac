/*
 * wire: the envelope codec. Packs protobuf-c envelopes into nanomsg message
 * buffers and unpacks + validates what comes off the wire, so handlers see
 * only well-formed envelopes. Any thread.
 */
#ifndef SHARED_WIRE_H
#define SHARED_WIRE_H

#include <stddef.h>
#include <stdint.h>

#include "dccl.pb-c.h"

#define WIRE_VERSION	8	/* protocol version spoken and accepted */
#define WIRE_DEVID_MAX	64

/*
 * Packs e into a buffer from nn_allocmsg(). On success *msg is owned by the
 * caller (send it with NN_MSG, or nn_freemsg it). Returns 0 or -ENOMEM.
 */
int	wire_pack_nn(const Dccl__Envelope *e, void **msg, size_t *len);

/*
 * Unpacks and validates buf. Returns 0 with *out set, or a positive
 * DCCL__ERROR_CODE__* with a message in err. When the envelope decoded but
 * failed validation (bad version, device id, missing body), *out is still
 * set so the caller can echo its device and request ids; otherwise NULL.
 * Free *out with wire_free().
 */
int	wire_unpack(const void *buf, size_t len, Dccl__Envelope **out,
	    char *err, size_t errlen);
void	wire_free(Dccl__Envelope *e);
/*
 * Before wire_unpack on the device socket: walks the raw fields and
 * refuses, without allocating, what a device may not send: admin bodies
 * (E_FORBIDDEN), reply bodies (E_UNKNOWN_BODY), unknown fields, a second
 * body, and more than 64 tensors or 32 metrics in an upload (E_TOO_LARGE),
 * as protobuf-c allocates a struct per repeated sub-message and unknown
 * field. 0 or an error code with a message.
 */
int	wire_precheck_device(const void *buf, size_t len, char *err,
	    size_t errlen);

/* 1 when id is 1..64 chars of [A-Za-z0-9._-]. */
int	wire_devid_valid(const char *id);
/* "register_req", "get_model", ... for logs and metrics. */
const char *wire_body_name(int body_case);
/* "E_BAD_REQUEST" ... */
const char *wire_error_name(int code);

/*
 * Validates a tensor: non-empty name, shape product == n_data <= max_elems,
 * all values finite. Returns 0 or E_BAD_TENSOR with a message.
 */
int	wire_tensor_check(const Dccl__Tensor *t, size_t max_elems, char *err,
	    size_t errlen);

#endif
