/*
 * ofa_dev: the device half of Forward-OFA (README "Forward-OFA",
 * shared/ml/ofa.h). Once the CTR model of version v is installed, a device
 * with learn.ofa (or an evaluation run scoring ofa-* methods) enters
 * DEV_OFA: it downloads the base of v's OFA model (stem, head,
 * controllers), runs the controller for its own budget over its recent
 * behaviour, downloads only the blocks the controller assembles, merges
 * them and assembles its model in one forward pass (no backpropagation).
 * New local samples from the app re-run that forward pass; a block the
 * new structure needs and the device lacks is fetched first.
 *
 * Threads: loop thread, except ofa_dev_eval, which the learning job runs
 * in the threadpool while the device is in DEV_TRAIN (the loop then leaves
 * the OFA state alone: ofa_dev_samples waits for the job to end).
 */
#ifndef DEVICED_OFA_DEV_H
#define DEVICED_OFA_DEV_H

#include <stddef.h>
#include <stdio.h>

#include "dccl.pb-c.h"

struct dataset;
struct device;

/*
 * Called after a CTR model is installed: 1 if the device wants its OFA
 * part (enter DEV_OFA), 0 if not (learn.ofa off, not evaluating OFA).
 */
int	ofa_dev_start(struct device *d);
/*
 * DEV_OFA: fills q with the next request; 0 = send it, 1 = nothing to
 * fetch, continue in *then (a dev_state).
 */
int	ofa_dev_next(struct device *d, Dccl__GetOfaReq *q, int *then);
/* A ModelChunk answering it: 0 = ask for the next, -1 = back off. */
int	ofa_dev_on_chunk(struct device *d, const Dccl__ModelChunk *c);
/* The cloud has no OFA part for the version (or refused it): go on. */
void	ofa_dev_skip(struct device *d, const char *why);
/* Wire bytes of a request sent (up) or reply received in DEV_OFA. */
void	ofa_dev_bytes(struct device *d, int up, size_t len);
/*
 * New local samples (app.c): re-run the adaptation. Not while a learning
 * job runs (it may read the model): app.c calls it when the job is over.
 * 1 when the new structure needs blocks the device lacks: the caller
 * pokes the device (device_poke), whose idle state fetches them (DEV_OFA).
 */
int	ofa_dev_samples(struct device *d);
/* 1 when a re-adaptation needs blocks the device must fetch (DEV_IDLE). */
int	ofa_dev_pending(const struct device *d);
/*
 * Evaluation (threadpool, DEV_TRAIN): method "ofa-low|mid|high" scores
 * the queries q (app_replay) with the model assembled for that class and
 * writes rows to f and cost columns to x. Returns 0, or -1 when method is
 * not an OFA method or the device has no OFA model (nothing written).
 */
int	ofa_dev_eval(struct device *d, const char *method,
	    const struct dataset *q, FILE *f, FILE *x);
/* Frees the device's OFA state. */
void	ofa_dev_free(struct device *d);

#endif
