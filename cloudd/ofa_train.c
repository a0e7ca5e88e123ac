/*
 * ofa_train: Forward-OFA on the cloud; see ofa_train.h.
 *
 * DESIGN. Training runs inside the CTR training job (train.c), after the
 * CTR model and the pool vectors are stored and before the job hands the
 * version to the loop, so a version is announced only once its OFA model
 * is stored too: a device that downloads version v and asks for v's OFA
 * part finds it. It costs the job one more training run (about 1.5 s on
 * ml-latest-small's pool, 7 s on the ranking pool with its negatives),
 * which is why ofa.enable can stay on by default. OFA failures are logged
 * and leave the CTR version alone.
 *
 * Serving (loop thread): struct ofa_cloud holds the unpacked OFA model of
 * one version (the newest trained, or whatever a request last named, read
 * back from the store) and a cache of packed parts (version, with_base,
 * mask) with their BLAKE2b-256 checksums, least recently used out beyond
 * OFA_PART_SLOTS entries or OFA_PART_BYTES. So the chunks of a part come
 * from the same bytes, each part is packed and hashed once per version,
 * and requests alternating parts or versions cost no store read, unpack,
 * pack or hash once their parts are cached. A version's OFA model never
 * changes, so a cached part stays valid. Parts are small (one block is
 * 38 kB, the base 25 kB at the default shape) so packing on demand is
 * cheaper than storing every subset; a miss packs on the loop (well
 * under a millisecond at the default shape). Replies are ModelChunks whose version is the CTR base version
 * (README: the OFA version space is that of the CTR model it extends).
 */
#include <errno.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cloudd/cloudd.h"
#include "cloudd/ofa_train.h"
#include "cloudd/sblob.h"
#include "shared/clock.h"
#include "shared/data/carve.h"
#include "shared/ml/ctr.h"
#include "shared/ml/ctr_io.h"
#include "shared/log.h"
#include "shared/ml/ofa.h"
#include "shared/ml/ofa_io.h"
#include "shared/xmalloc.h"

struct ofa_cloud {
	struct ofa	*m;		/* OFA model of version, or NULL */
	uint64_t	 version;
	uint64_t	 missing;	/* version known to have none */
	double		 missing_t;	/* when that was learnt */
	/* packed parts, b->version theirs; b NULL: a free slot */
	struct {
		struct sblob	*b;
		int		 base;
		uint32_t	 mask;
		uint64_t	 used;	/* LRU tick */
	}		 part[OFA_PART_SLOTS];
	size_t		 part_bytes;
	uint64_t	 tick;
	uint64_t	 packed, hits;	/* parts packed, requests from cache */
};

void
ofa_train_run(struct ofa_result *res, const struct cloudd_conf *cf,
    const struct ctr *emb, const struct dataset *ds, const uint32_t *tri,
    size_t ntr, const uint32_t *vai, size_t nva, uint64_t version,
    struct store *st, atomic_int *stop)
{
	struct ofa_config oc;
	struct ofa_train_opts o;
	struct ofa_train_stats stats;
	struct ofa_meta meta;
	struct ofa *m = NULL;
	uint8_t *blob = NULL;
	uint32_t *older = NULL, *newest = NULL;
	size_t len = 0, nolder = 0, nnewest = 0;
	double t0 = clock_now();

	memset(res, 0, sizeof(*res));
	if (!cf->ofa_enable)
		return;
	res->ran = 1;
	res->version = version;
	/*
	 * ofa.res-val: OFA is the CTR model's logit plus a residual, and on
	 * the CTR model's own training samples that logit is already fitted,
	 * so the residual finds nothing there that holds on validation (it
	 * stays 0). It learns instead from each user's older part of the
	 * validation slice, which the CTR model did not fit, and stops on
	 * the newest part. Too small a slice to split: as before.
	 */
	if (cf->ofa_res_val > 0 && carve_newest(ds, vai, nva, cf->ofa_res_val,
	    &older, &nolder, &newest, &nnewest) == 0 && nolder > 0 &&
	    nnewest > 0) {
		res->held_out = 1;
		tri = older;
		ntr = nolder;
		vai = newest;
		nva = nnewest;
	}
	res->ntrain = ntr;
	res->nval = nva;
	ofa_config_default(&oc, emb);
	oc.hidden = (int)cf->ofa_hidden;
	oc.inner = (int)cf->ofa_inner;
	oc.n_blocks = (int)cf->ofa_blocks;
	oc.rank = (int)cf->ofa_rank;
	if ((res->rc = ofa_new(&m, &oc, (uint64_t)cf->seed)) != 0) {
		snprintf(res->err, sizeof(res->err), "invalid OFA shape");
		goto done;
	}
	ofa_train_opts_default(&o);
	o.epochs = (int)cf->ofa_epochs;
	o.batch = (int)cf->batch;
	o.patience = (int)cf->patience;
	o.lr = (float)cf->ofa_lr;
	o.mu = cf->ofa_mu;
	o.seed = (uint64_t)cf->seed;
	o.stop = stop;
	memset(&stats, 0, sizeof(stats));
	res->rc = ofa_train(m, emb, ds, tri, ntr, vai, nva, &o, &stats);
	if (res->rc != 0) {
		snprintf(res->err, sizeof(res->err), "%s", res->rc ==
		    -ECANCELED ? "stopped" : "training diverged or failed");
		goto done;
	}
	res->val_loss = stats.val_loss;
	res->epochs = stats.epochs;
	for (int k = 0; k < OFA_N_CLASSES && k < 3; k++)
		res->blocks[k] = stats.blocks[k];
	memset(&meta, 0, sizeof(meta));
	meta.version = meta.base_version = version;
	meta.created = time(NULL);
	snprintf(meta.metrics[0].name, CTR_IO_METRIC_NAME, "val_logloss");
	meta.metrics[0].value = stats.val_loss;
	snprintf(meta.metrics[1].name, CTR_IO_METRIC_NAME, "epochs");
	meta.metrics[1].value = stats.epochs;
	meta.n_metrics = 2;
	if ((res->rc = ofa_io_pack(m, &meta, 1, OFA_IO_ALL, &blob, &len))) {
		snprintf(res->err, sizeof(res->err), "%s",
		    ctr_io_strerror(res->rc));
		goto done;
	}
	res->size = len;
	if ((res->rc = store_ofa_put(st, version, blob, len)) != 0) {
		snprintf(res->err, sizeof(res->err), "%s", store_errmsg(st));
		goto done;
	}
	res->model = m;
	m = NULL;
done:
	res->seconds = clock_now() - t0;
	free(blob);
	free(older);
	free(newest);
	ofa_free(m);
}

void
ofa_result_fini(struct ofa_result *res)
{
	ofa_free(res->model);
	res->model = NULL;
}

static struct ofa_cloud *
cloud_state(struct cloudd *cd)
{
	if (cd->ofa == NULL)
		cd->ofa = xcalloc(1, sizeof(*cd->ofa));
	return cd->ofa;
}

static void
drop_part(struct ofa_cloud *oc, int i)
{
	if (oc->part[i].b == NULL)
		return;
	oc->part_bytes -= oc->part[i].b->len;
	sblob_unref(oc->part[i].b);	/* chunks being sealed keep theirs */
	oc->part[i].b = NULL;
}

/* The least recently used slot (a free one first). */
static int
lru_part(const struct ofa_cloud *oc, int free_ok)
{
	int k = -1;

	for (int i = 0; i < OFA_PART_SLOTS; i++) {
		if (oc->part[i].b == NULL) {
			if (free_ok)
				return i;
			continue;
		}
		if (k < 0 || oc->part[i].used < oc->part[k].used)
			k = i;
	}
	return k;
}

/* Caches b (one reference given) under (base, mask), within the bounds. */
static void
keep_part(struct ofa_cloud *oc, struct sblob *b, int base, uint32_t mask)
{
	int k = lru_part(oc, 1);

	drop_part(oc, k);
	while (oc->part_bytes + b->len > OFA_PART_BYTES) {
		int i = lru_part(oc, 0);
		if (i < 0)
			break;		/* empty: one part is always kept */
		drop_part(oc, i);
	}
	oc->part[k].b = b;
	oc->part[k].base = base;
	oc->part[k].mask = mask;
	oc->part[k].used = ++oc->tick;
	oc->part_bytes += b->len;
}

static void
install(struct ofa_cloud *oc, uint64_t version, struct ofa *m)
{
	ofa_free(oc->m);
	oc->m = m;
	oc->version = version;
	if (oc->missing == version)
		oc->missing = 0;
}

void
ofa_train_done(struct cloudd *cd, struct ofa_result *res)
{
	const struct ofa_config *c;

	if (!res->ran)
		return;
	if (res->rc != 0 || res->model == NULL) {
		log_warnx("OFA: no model for v%llu: %s", (unsigned long long)
		    res->version, res->err);
		ofa_result_fini(res);
		return;
	}
	c = ofa_config(res->model);
	log_info("OFA: model for v%llu in %.1f s: %d blocks, hidden %d, rank "
	    "%d, %zu params (base %zu, %zu per block), %zu bytes; learnt "
	    "from %zu %s samples, %d epochs, val logloss %.4f on %zu, blocks "
	    "low %.2f mid %.2f high %.2f",
	    (unsigned long long)res->version, res->seconds, c->n_blocks,
	    c->hidden, c->rank, ofa_num_params(res->model),
	    ofa_base_params(res->model), ofa_block_params(res->model),
	    res->size, res->ntrain, res->held_out ? "held-out validation" :
	    "training", res->epochs, res->val_loss, res->nval,
	    res->blocks[0], res->blocks[1], res->blocks[2]);
	install(cloud_state(cd), res->version, res->model);
	res->model = NULL;
}

void
ofa_cloud_free(struct cloudd *cd)
{
	if (cd->ofa == NULL)
		return;
	log_info("OFA: %llu parts packed, %llu requests served from the part "
	    "cache", (unsigned long long)cd->ofa->packed,
	    (unsigned long long)cd->ofa->hits);
	for (int i = 0; i < OFA_PART_SLOTS; i++)
		drop_part(cd->ofa, i);
	ofa_free(cd->ofa->m);
	free(cd->ofa);
	cd->ofa = NULL;
}

/*
 * The OFA model of version, from memory or the store. 0, -ENOENT (none
 * for that version), or another error with the message in err.
 */
static int
model_for(struct cloudd *cd, uint64_t version, char *err, size_t errlen)
{
	struct ofa_cloud *oc = cloud_state(cd);
	struct ofa_meta meta;
	struct ofa *m = NULL;
	void *blob;
	size_t len;
	int rc;

	if (oc->m != NULL && oc->version == version)
		return 0;
	/* A version without OFA is asked by every device: remember it. */
	if (oc->missing == version && clock_now() - oc->missing_t < 5)
		return -ENOENT;
	rc = store_ofa_get(cd->st, version, &blob, &len);
	if (rc == -ENOENT || rc == -ENOTSUP) {
		oc->missing = version;
		oc->missing_t = clock_now();
		return -ENOENT;
	}
	if (rc != 0) {
		snprintf(err, errlen, "%s", store_errmsg(cd->st));
		return rc;
	}
	rc = ofa_io_unpack(&m, &meta, blob, len, err, errlen);
	free(blob);
	if (rc != 0)
		return -EBADMSG;
	install(oc, version, m);
	log_info("OFA: loaded the model for v%llu from the store",
	    (unsigned long long)version);
	return 0;
}

int
ofa_part_get(struct cloudd *cd, uint64_t v, int with_base, uint32_t mask,
    struct sblob **out, char *err, size_t errlen)
{
	struct ofa_cloud *oc = cloud_state(cd);
	struct ofa_meta meta;
	struct sblob *b;
	uint8_t *part;
	size_t len;
	int L, rc;

	with_base = with_base != 0;
	for (int i = 0; i < OFA_PART_SLOTS; i++) {
		b = oc->part[i].b;
		if (b != NULL && b->version == v && oc->part[i].base ==
		    with_base && oc->part[i].mask == mask) {
			oc->part[i].used = ++oc->tick;
			oc->hits++;
			*out = b;
			return 0;
		}
	}
	if ((rc = model_for(cd, v, err, errlen)) != 0) {
		char why[256];

		snprintf(why, sizeof(why), "%s", rc == -ENOENT ? "none" : err);
		snprintf(err, errlen, "OFA model for v%llu: %s",
		    (unsigned long long)v, why);
		return rc == -ENOENT ? DCCL__ERROR_CODE__E_NOT_FOUND :
		    DCCL__ERROR_CODE__E_STORAGE;
	}
	L = ofa_config(oc->m)->n_blocks;
	if ((L < 32 && (mask >> L) != 0) || (!with_base && mask == 0)) {
		snprintf(err, errlen, "block mask 0x%x%s: the model has %d "
		    "blocks", mask, with_base ? "" : " without the base", L);
		return DCCL__ERROR_CODE__E_BAD_REQUEST;
	}
	memset(&meta, 0, sizeof(meta));
	meta.version = meta.base_version = v;
	if ((rc = ofa_io_pack(oc->m, &meta, with_base, mask, &part,
	    &len)) != 0) {
		snprintf(err, errlen, "OFA part: %s", ctr_io_strerror(rc));
		return DCCL__ERROR_CODE__E_INTERNAL;
	}
	b = sblob_wrap(part, len, v);
	crypto_generichash(b->sum, 32, b->data, b->len, NULL, 0);
	keep_part(oc, b, with_base, mask);
	oc->packed++;
	*out = b;
	return 0;
}
