/*
 * recency: loss weights that favour a user's recent local samples, for
 * the "-recK" evaluation rows (learn.c). The served model scores the
 * weeks after the local window, and a user's tastes drift, so the
 * latest samples are the likelier guide to the next ones. Sample i of
 * the n local samples a fit trains on (time order, 0 the oldest) gets
 * 2^(-K (n - 1 - i) / n): the newest 1, the oldest about 2^-K; the local
 * weights are then scaled to a mean of 1, so a rate keeps its meaning.
 */
#ifndef DEVICED_RECENCY_H
#define DEVICED_RECENCY_H

#include <stddef.h>
#include <stdint.h>

/*
 * w = w0 (nw weights), then for the entries tr[0..ntr) below nlocal
 * (local samples, indices in time order) the recency weight of strength
 * k times w0's, scaled to a mean of w0's over them. k <= 0: w0 only.
 */
void	recency_weights(const float *w0, size_t nw, const uint32_t *tr,
	    size_t ntr, size_t nlocal, double k, float *w);

#endif
