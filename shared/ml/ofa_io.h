/*
 * ofa_io: a Forward-OFA model to and from the protobuf Model message
 * (proto/model.proto, kind "ofa"), whole or in part: the "base" section
 * (stem, head, controllers) and any subset of the blocks, so that a device
 * downloads the base, runs its controller, and then downloads only the
 * blocks it assembles (or the cloud packs a per-class sub-model).
 *
 * Checksum (BLAKE2b-256, no key) over, as little-endian uint32: in_dim,
 * z_dim, hidden, inner, n_blocks, rank, hist_k, (format 2 only: n_side,
 * interaction, ctrl_hidden, gen_hidden,) has_base, the number of
 * blocks and each block index, the low and high halves of base_version;
 * then for every included tensor in canonical order: name length, name,
 * ndim, shape, float32 data. Metadata (version, metrics) is not covered.
 *
 * Ownership: packed buffers belong to the caller (free). Threads: any;
 * packing only reads the model.
 */
#ifndef SHARED_OFA_IO_H
#define SHARED_OFA_IO_H

#include <stddef.h>
#include <stdint.h>

#include "shared/ml/ctr_io.h"
#include "shared/ml/ofa.h"

#define OFA_IO_KIND	"ofa"
#define OFA_IO_ALL	0xffffffffu	/* every block */
/*
 * Format 1: the six fixed input fields, linear controller and mapper.
 * Format 2 (ofa_config's n_side, interaction, ctrl_hidden, gen_hidden,
 * OfaConfig fields 8-11, covered by the checksum): written exactly when
 * one of them is set, so a format-1 model is still written and read as
 * before; a format-1 reader refuses format 2 with its EFORMAT.
 */
#define OFA_IO_FORMAT_2	2
/*
 * Format 3: ctr_base set (OfaConfig field 12, covered by the checksum
 * after the format-2 fields). Formats 1 and 2 are read as before; a
 * format-3 header without ctr_base, or ctr_base under another header, is
 * refused with CTR_IO_EFORMAT, and a format-2 reader refuses format 3.
 */
#define OFA_IO_FORMAT_3	3

struct ofa_meta {
	uint64_t	 version;	/* OFA version (== base_version here) */
	uint64_t	 base_version;	/* CTR model whose embeddings it uses */
	int64_t		 created;
	int		 n_metrics;
	struct ctr_metric metrics[CTR_IO_MAX_METRICS];
};

/*
 * Packs m's base (with_base) and the blocks of mask (bit l = block l) that
 * are set; every requested block must be present in m (else -ENOENT).
 * *buf (caller frees), *len out. Returns 0, -ENOENT or CTR_IO_EMETA.
 */
int	ofa_io_pack(const struct ofa *m, const struct ofa_meta *meta,
	    int with_base, uint32_t mask, uint8_t **buf, size_t *len);
/*
 * Unpacks and validates a packed OFA model that includes the base into a
 * new model (*out, ofa_free) holding exactly the included blocks.
 * Returns 0 or a CTR_IO_E* code (message in err).
 */
int	ofa_io_unpack(struct ofa **out, struct ofa_meta *meta,
	    const uint8_t *buf, size_t len, char *err, size_t errlen);
/*
 * Merges the blocks (and base, if included) of a packed part into m,
 * whose config and base_version must match; validates everything before
 * writing. Returns 0 or a CTR_IO_E* code.
 */
int	ofa_io_merge(struct ofa *m, uint64_t base_version, const uint8_t *buf,
	    size_t len, char *err, size_t errlen);
/* The format m's config is written in (1, OFA_IO_FORMAT_2 or _3). */
int	ofa_io_format(const struct ofa_config *c);
/* Bytes of the packed part (base? + blocks of mask), without packing. */
size_t	ofa_io_size(const struct ofa *m, const struct ofa_meta *meta,
	    int with_base, uint32_t mask);

#endif
