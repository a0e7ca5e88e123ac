/*
 * dstore: a device's own SQLite store: its local samples (which never
 * leave it), the current model, the chunks of a download in progress (so an
 * interrupted download resumes; their bytes in a file beside it), and the
 * patch outbox (a patch keeps its
 * request id until acknowledged, so a resend after a crash is recognised
 * by the cloud as the same upload). One connection, loop thread only.
 */
#ifndef DEVICED_DSTORE_H
#define DEVICED_DSTORE_H

#include <stddef.h>
#include <stdint.h>

#include "shared/data/sample.h"

struct dstore;

int	dstore_open(struct dstore **out, const char *path, char *err,
	    size_t errlen);
void	dstore_close(struct dstore *st);
const char *dstore_errmsg(struct dstore *st);

int	dstore_samples_count(struct dstore *st, uint64_t *n);
/*
 * Appends every sample of ds, then, when keep > 0, deletes all but the
 * newest keep samples (by time, then insertion): one transaction.
 * *last_id (may be NULL) := the id of the last sample inserted; ids only
 * grow, so it tells which samples a job saw (learn.max-local).
 */
int	dstore_samples_add(struct dstore *st, const struct dataset *ds,
	    uint64_t keep, int64_t *last_id);
/* Deletes all but the newest keep samples. */
int	dstore_samples_trim(struct dstore *st, uint64_t keep);
/* The largest sample id (0 when there is none). */
int	dstore_samples_last_id(struct dstore *st, int64_t *id);
/* Loads the samples into ds (initialised), oldest first; user := user. */
int	dstore_samples_load(struct dstore *st, struct dataset *ds,
	    uint32_t user);

/* The current model: *blob malloc'd; -ENOENT when none. */
int	dstore_model_get(struct dstore *st, uint64_t *version, void **blob,
	    size_t *len);
int	dstore_model_put(struct dstore *st, uint64_t version, const void *blob,
	    size_t len);

/*
 * Download in progress: the chunks of one version, in order (dstore_dl.c).
 * Their bytes go to a file beside the store (<path>-download), the table
 * says which are whole. Chunk 0 starts a download over; chunk i > 0 must
 * follow chunk i - 1 of the same version (-EINVAL otherwise). The caller
 * checks the assembled model's hash, so bytes a power cut lost are found.
 */
int	dstore_dl_put(struct dstore *st, uint64_t version, uint32_t idx,
	    const void *data, size_t len);
/* Number of contiguous chunks 0..n-1 stored whole for version. */
int	dstore_dl_next(struct dstore *st, uint64_t version, uint32_t *next);
/* Concatenates chunks 0..n-1 of version into a malloc'd buffer. */
int	dstore_dl_assemble(struct dstore *st, uint64_t version, void **blob,
	    size_t *len);
/* Drops all download chunks and their file. */
int	dstore_dl_clear(struct dstore *st);

/* Next request id (persisted, strictly increasing). */
int	dstore_next_request_id(struct dstore *st, uint64_t *id);
/* Outbox: at most one pending patch. */
int	dstore_outbox_put(struct dstore *st, uint64_t req_id, uint64_t base,
	    const void *blob, size_t len);
int	dstore_outbox_pending(struct dstore *st, uint64_t *req_id,
	    uint64_t *base, void **blob, size_t *len);
int	dstore_outbox_ack(struct dstore *st, uint64_t req_id, uint64_t patch);
/* The newest base version of any patch in the outbox, sent or not (0 if
 * none): what the device last trained on, across restarts. */
int	dstore_outbox_last_base(struct dstore *st, uint64_t *base);
/* Small persistent counters; a missing key reads 0. */
int	dstore_kv_get(struct dstore *st, const char *key, int64_t *v);
int	dstore_kv_set(struct dstore *st, const char *key, int64_t v);

#endif
