/*
 * ctr_io: a CTR model to and from the protobuf Model message (proto/
 * model.proto): config, every tensor by name with its shape, metadata
 * (version, parent, global_ctr r_g, metrics, created, kind "ctr") and a
 * BLAKE2b-256 checksum. Unpacking validates everything before a model is
 * allocated; a round trip is bit-exact.
 *
 * Checksum (crypto_generichash, 32 bytes, no key) over, in order, as
 * little-endian uint32: n_users, n_items, n_genres, dim, hist_k, n_hidden,
 * hidden[0..n_hidden), patch_rank, n_hours, n_wdays; in format 2 then
 * interaction, attention, n_side, side_card[0..n_side); then for every tensor in
 * the model's canonical order: name length, name bytes, ndim, shape[0..ndim),
 * and the float32 data as little-endian bytes. Metadata is not covered.
 *
 * Ownership: buffers from ctr_io_pack and tensor arrays from
 * ctr_io_patch_get belong to the caller (free / ctr_io_tensors_free).
 * Input buffers are only read. Threads: any; packing reads the model
 * (const), so it may run beside other readers, not beside a writer.
 */
#ifndef SHARED_CTR_IO_H
#define SHARED_CTR_IO_H

#include <stddef.h>
#include <stdint.h>

#include <sodium.h>

#include "model.pb-c.h"
#include "shared/ml/ctr.h"

#define CTR_IO_FORMAT		1	/* also Forward-OFA's (ofa_io.c) */
/*
 * Format 2: a CTR model with interaction, attention or side fields, or one
 * carrying its auxiliary encoder (encoder_io.h), or both; a format-1
 * reader refuses it with its EFORMAT. Any other model is written as
 * format 1, so readers of format 1 keep loading them. Both are read;
 * ctr_io_unpack reads the model part of either.
 */
#define CTR_IO_FORMAT_2		2
#define CTR_IO_FORMAT_OPTS	CTR_IO_FORMAT_2
#define CTR_IO_FORMAT_ENC	CTR_IO_FORMAT_2
/*
 * Format 3: format 2 with the fixed item prior (ctr.h item_prior); readers
 * of formats 1 and 2 refuse it with their EFORMAT instead of misreading
 * its tensors. Only a model with the prior is written as format 3.
 */
#define CTR_IO_FORMAT_3		3
#define CTR_IO_FORMAT_PRIOR	CTR_IO_FORMAT_3
#define CTR_IO_KIND		"ctr"
/* Model.user_rows (protocol 7, ctr_slice.h) */
#define CTR_IO_ROWS_ALL		0	/* every user's row */
#define CTR_IO_ROWS_SHARED	1	/* the shared part: only the OOV row */
#define CTR_IO_ROWS_SLICE	2	/* one user's row, then the OOV row */
#define CTR_IO_CHECKSUM_LEN	32
#define CTR_IO_MAX_METRICS	32
#define CTR_IO_METRIC_NAME	32	/* incl. NUL */
/* Largest packed model accepted: the largest legal tensor payload + 64 MiB. */
#define CTR_IO_MAX_BYTES	(CTR_MAX_PARAMS * 4 + ((size_t)64 << 20))

/* Error codes, each distinct; ctr_io_strerror() explains them. */
enum ctr_io_err {
	CTR_IO_EUNPACK = -1001,		/* not a protobuf Model (truncated..) */
	CTR_IO_ETOOBIG = -1002,		/* input or a size beyond limits */
	CTR_IO_EFORMAT = -1003,		/* Model.format not 1, 2 or 3, or
					   an older format with a newer
					   format's config fields */
	CTR_IO_EKIND = -1004,		/* Model.kind != "ctr" */
	CTR_IO_ECONFIG = -1005,		/* config missing or invalid */
	CTR_IO_EMISSING = -1006,	/* an expected tensor is missing */
	CTR_IO_EUNKNOWN = -1007,	/* unknown or duplicate tensor */
	CTR_IO_ESHAPE = -1008,		/* shape/length differs from config */
	CTR_IO_ENONFINITE = -1009,	/* NaN or Inf in a tensor */
	CTR_IO_ECHECKSUM = -1010,	/* checksum missing or mismatch */
	CTR_IO_EMETA = -1011,		/* metrics too many / names too long */
	CTR_IO_ENOPATCH = -1012,	/* model has no MetaPatch */
};

struct ctr_metric {
	char	 name[CTR_IO_METRIC_NAME];
	double	 value;
};

/* What a Model carries beside the weights. */
struct ctr_meta {
	uint64_t	 version;	/* 1.., 0 = unversioned */
	uint64_t	 parent;	/* 0 = none */
	double		 global_ctr;	/* r_g */
	int64_t		 created;	/* unix seconds */
	int		 n_metrics;
	struct ctr_metric metrics[CTR_IO_MAX_METRICS];
};

/* Static string for a ctr_io code (or "unknown error"). */
const char *ctr_io_strerror(int rc);

/* The checksum's building blocks are tensor_io's (tensor_io.h). */
/* The checksum described above. */
void	ctr_io_checksum(const struct ctr *m,
	    uint8_t out[CTR_IO_CHECKSUM_LEN]);

/*
 * Packs m and meta (NULL = all zero) into a malloc'd protobuf Model.
 * On success *buf (caller frees) and *len are set. Returns 0,
 * CTR_IO_EMETA (bad metrics) or CTR_IO_ENONFINITE (a NaN or Inf weight,
 * which every unpack refuses: a diverged fit is not published).
 */
int	ctr_io_pack(const struct ctr *m, const struct ctr_meta *meta,
	    uint8_t **buf, size_t *len);

/*
 * Unpacks and validates buf (len bytes) into a new model (*out, caller
 * frees with ctr_free) and *meta (may be NULL). On failure *out is NULL,
 * the return is a CTR_IO_E* code, and err (errlen bytes, may be NULL) gets a
 * message naming the offending field.
 */
int	ctr_io_unpack(struct ctr **out, struct ctr_meta *meta,
	    const uint8_t *buf, size_t len, char *err, size_t errlen);
/*
 * ctr_io_unpack of an unpacked message (len: its packed size, which
 * bounds the parameters it may declare). verify = 0 skips the checksum
 * check, for ctr_slice_assemble, which computes it. A model with
 * user_rows = 2 is a slice (ctr_config.sliced); 1 (a shared part) is
 * refused with CTR_IO_EFORMAT.
 */
int	ctr_io_unpack_msg(struct ctr **out, struct ctr_meta *meta,
	    const Dccl__Model *msg, size_t len, int verify, char *err,
	    size_t errlen);

/*
 * MetaPatch upload support. ctr_io_patch_get returns the m rows of user
 * (the OOV row if user >= n_users, like the model itself) as one tensor
 * per hidden layer, "patch_m<l>" with shape [R]; *t (n entries) is freed
 * with ctr_io_tensors_free. Returns 0 or CTR_IO_ENOPATCH.
 */
int	ctr_io_patch_get(const struct ctr *m, uint32_t user,
	    Dccl__Tensor ***t, size_t *n);
void	ctr_io_tensors_free(Dccl__Tensor **t, size_t n);
/*
 * Validates uploaded tensors t (n) (exactly the names above, any order,
 * shape [R], finite) and only then writes them into user's m rows.
 * Returns 0 or CTR_IO_ENOPATCH, _EMISSING, _EUNKNOWN, _ESHAPE, _ENONFINITE.
 */
int	ctr_io_patch_put(struct ctr *m, uint32_t user,
	    Dccl__Tensor *const *t, size_t n);

#endif
