/*
 * ofa_train: the cloud half of Forward-OFA (README "Forward-OFA",
 * shared/ml/ofa.h). After each CTR training or distillation job, the same
 * threadpool job trains the OFA model on the same pool split with the new
 * CTR model's embedding tables frozen and stores it, packed whole, in the
 * store's ofa_models table under that CTR version. The loop keeps the OFA
 * model of one version in memory and serves GetOfaReq: the base and any
 * subset of blocks, packed on demand (download.c sends them as
 * ModelChunks).
 */
#ifndef CLOUDD_OFA_TRAIN_H
#define CLOUDD_OFA_TRAIN_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

struct cloudd;
struct cloudd_conf;
struct ctr;
struct dataset;
struct ofa;
struct rpc_req;
struct store;

/* What the worker hands back to the loop (embedded in the train job). */
struct ofa_result {
	int		 ran;		/* ofa.enable was on */
	int		 rc;		/* 0 = trained and stored */
	char		 err[256];
	struct ofa	*model;		/* trained model; loop takes it */
	uint64_t	 version;	/* the CTR version it belongs to */
	double		 seconds, val_loss;
	double		 blocks[3];	/* mean blocks low/mid/high on val */
	int		 epochs;
	int		 held_out;	/* learnt from held-out samples */
	size_t		 ntrain, nval;	/* samples learnt from, stopped on */
	size_t		 size;		/* packed bytes (base + all blocks) */
};

/*
 * Threadpool (the training job's worker): when cf->ofa_enable, trains the
 * OFA model with emb's embeddings on each user's older part of vai,
 * early-stopped on the newest cf->ofa_res_val of it (ofa.res-val; 0, or a
 * slice too small to split: on ds->s[tri], early stopping on vai),
 * packs it and stores it under version on st (the job's connection). Any
 * failure is reported in res, never fatal to the CTR job.
 */
void	ofa_train_run(struct ofa_result *res, const struct cloudd_conf *cf,
	    const struct ctr *emb, const struct dataset *ds,
	    const uint32_t *tri, size_t ntr, const uint32_t *vai, size_t nva,
	    uint64_t version, struct store *st, atomic_int *stop);
/* Loop: logs res and makes its model the served one (takes ownership). */
void	ofa_train_done(struct cloudd *cd, struct ofa_result *res);
/* Frees what res still owns (failed or cancelled jobs). */
void	ofa_result_fini(struct ofa_result *res);

/*
 * Loop: the part of version v's OFA model with the base (with_base) and
 * the blocks in mask, packed once and cached (at most OFA_PART_SLOTS parts
 * and OFA_PART_BYTES), with its BLAKE2b-256 in (*out)->sum. *out is held
 * by the cache until the next call: take a reference to keep it. 0, or a
 * DCCL error code with the message in err.
 */
#define OFA_PART_SLOTS	64
#define OFA_PART_BYTES	((size_t)16 << 20)
struct sblob;
int	ofa_part_get(struct cloudd *cd, uint64_t v, int with_base,
	    uint32_t mask, struct sblob **out, char *err, size_t errlen);
/* Loop: frees the served OFA model and the part cache (shutdown). */
void	ofa_cloud_free(struct cloudd *cd);

#endif
