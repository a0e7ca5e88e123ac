/*
 * encoder_train: the cloud half of DCCL's auxiliary encoder
 * (shared/ml/encoder.h). After each CTR training or distillation job, with
 * train.encoder on, the same worker fits the encoder on the same pool split
 * through the new, frozen model, writes the trained unknown-user rows into
 * the model's OOV rows, and train.c ships the encoder inside the packed
 * model (format 2, shared/ml/encoder_io.h).
 */
#ifndef CLOUDD_ENCODER_TRAIN_H
#define CLOUDD_ENCODER_TRAIN_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "shared/ml/encoder.h"

struct cloudd_conf;

/*
 * Threadpool (the training job's worker): fits the encoder of m on
 * ds->s[tri] with validation ds->s[vai] and logs what validation chose.
 * On success *out gets it (caller frees) and m's OOV rows change; on any
 * failure (logged) *out is NULL and m is unchanged: the model ships
 * without an encoder.
 */
void	encoder_train(struct ctr *m, const struct dataset *ds,
	    const uint32_t *tri, size_t ntr, const uint32_t *vai, size_t nva,
	    const struct cloudd_conf *cf, atomic_int *stop, struct enc **out,
	    enum enc_mode *mode);

#endif
