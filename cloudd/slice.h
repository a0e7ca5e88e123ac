/*
 * slice: the per-user slice of the served models (protocol 7, issue 14;
 * shared/ml/ctr_slice.h). Per version, on its first request, cloudd packs
 * the shared part once (the bytes every manifest and chunk of that
 * version serve) and keeps the full model unpacked, from which a
 * manifest reply takes the requesting device's rows by reference. At
 * most SLICE_SLOTS versions, least recently used out. Loop thread only.
 */
#ifndef CLOUDD_SLICE_H
#define CLOUDD_SLICE_H

#include <stddef.h>
#include <stdint.h>

#include "model.pb-c.h"
#include "shared/ml/ctr_slice.h"

struct cloudd;
struct sblob;

struct slice_ver {
	uint64_t		 version;	/* 0: free */
	struct sblob		*shared;	/* the shared part, sum = BLAKE2b */
	/*
	 * The per-user tables alone (copied out of the stored model, which
	 * is then freed): a Model with only config.n_users and them, for
	 * ctr_slice_rows.
	 */
	Dccl__Model		 full;
	Dccl__ModelConfig	 cfg;
	Dccl__Tensor		 t[CTR_SLICE_MAX_TENSORS];
	Dccl__Tensor		*tp[CTR_SLICE_MAX_TENSORS];
	uint32_t		 shape[2 * CTR_SLICE_MAX_TENSORS];
	uint64_t		 used;
};

/*
 * Version v's entry, built on first use (from the served bytes for the
 * current version, else from the store). The pointer lives until the
 * next slice_get or slice_cache_free. 0, or an Error code with err.
 */
int	slice_get(struct cloudd *cd, uint64_t v, struct slice_ver **out,
	    char *err, size_t errlen);
/* Drops every entry (a chunk being sealed keeps its sblob reference). */
void	slice_cache_free(struct cloudd *cd);

#endif
