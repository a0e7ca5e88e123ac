/*
 * ofa_dev: Forward-OFA on the device; see ofa_dev.h.
 *
 * DESIGN. The download is a list of parts of the OFA model of the
 * device's CTR version v: step 0 is the base (with_base, no blocks), each
 * later step one block mask. The masks come from the controller, run on
 * the base with the device's budget (device.flops-budget if set, else its
 * compute class) and its behaviour encoding z (the mean embedding of its
 * last K positives, from the CTR model's item table). A device fetches
 * only its own mask. An evaluation run fetches the mask of every class
 * (distinct masks once), so each ofa-* row can report the bytes of its
 * own part: base + that class's blocks, as the cloud sent them.
 *
 * Parts are small (tens of kB), so a part's chunks are collected in
 * memory, not in the device store: a restart downloads the part again.
 * Each part is checked against its BLAKE2b-256 checksum and its
 * base_version before it is used; ofa_io_merge validates the blocks.
 *
 * The adaptation is ofa_behaviour + ofa_assemble: timed in microseconds
 * and logged with the blocks, FLOPs per prediction and bytes (tests grep
 * "OFA-ADAPT:"). Nothing is trained on the device. The evaluation rows
 * (ofa_dev_eval) serve as the cloud trained: z recomputed for every
 * impression, within the blocks the device holds.
 */
#include <errno.h>
#include <math.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "shared/clock.h"
#include "deviced/deviced.h"
#include "deviced/ofa_dev.h"
#include "shared/ml/ctr.h"
#include "shared/ml/ctr_io.h"
#include "shared/data/dataset.h"
#include "shared/log.h"
#include "shared/ml/ofa.h"
#include "shared/ml/ofa_io.h"
#include "shared/xmalloc.h"

#define OFA_DEV_MAX_PART	((size_t)64 << 20)
#define OFA_DEV_MAX_FAIL	5
#define OFA_DEV_STEPS		(1 + OFA_N_CLASSES)

struct ofa_dev {
	struct ofa	*m;		/* base + the blocks fetched so far */
	uint64_t	 version;	/* CTR version it belongs to */
	int		 done;		/* every step fetched */
	int		 then;		/* dev_state after the fetch */
	int		 fails;
	/* the fetch plan: step 0 = base, step s = masks[s - 1] */
	int		 n_steps, step;
	uint32_t	 masks[OFA_DEV_STEPS];
	uint64_t	 up[OFA_DEV_STEPS], down[OFA_DEV_STEPS];
	/* the part being collected */
	uint32_t	 chunk, n_chunks;
	uint8_t		*buf;
	size_t		 len, total;
	uint8_t		 sum[32];
	/* the device's assembled model */
	struct ofa_assembled a;
	int		 adapted;
	int		 cls;		/* budget class, -1 = flops budget */
	double		 budget, adapt_us;
	uint64_t	 adaptations;
};

static int
wanted(const struct device *d)
{
	const struct deviced_conf *cf = &d->dd->cf;

	if (d->model == NULL)
		return 0;
	return cf->ofa || (cf->eval_dir[0] != '\0' &&
	    strstr(cf->eval_methods, "ofa-") != NULL);
}

static int
evaluating(const struct device *d)
{
	const struct deviced_conf *cf = &d->dd->cf;

	return cf->eval_dir[0] != '\0' &&
	    strstr(cf->eval_methods, "ofa-") != NULL;
}

static void
reset_part(struct ofa_dev *o)
{
	free(o->buf);
	o->buf = NULL;
	o->len = o->total = 0;
	o->chunk = o->n_chunks = 0;
}

/* The device's behaviour encoding z (Z) from its local samples. */
static void
behaviour(const struct device *d, const struct ofa *m, float *z)
{
	uint32_t items[SAMPLE_HIST_MAX + 1];
	size_t n = ofa_recent_items(&d->local, items);

	ofa_behaviour(d->model, items, n, ofa_config(m)->hist_k, z);
}

static uint32_t
mask_of(const int *sel, int L)
{
	uint32_t mask = 0;

	for (int l = 0; l < L; l++)
		if (sel[l])
			mask |= 1u << l;
	return mask;
}

/* Blocks of mask the model does not hold yet. */
static uint32_t
missing(const struct ofa *m, uint32_t mask)
{
	uint32_t out = 0;

	for (int l = 0; l < ofa_config(m)->n_blocks; l++)
		if ((mask >> l & 1) && !ofa_has_block(m, l))
			out |= 1u << l;
	return out;
}

static void
add_step(struct ofa_dev *o, uint32_t mask)
{
	if (mask == 0 || o->n_steps >= OFA_DEV_STEPS)
		return;
	for (int s = 1; s < o->n_steps; s++)
		if (o->masks[s - 1] == mask)
			return;
	o->masks[o->n_steps - 1] = mask;
	o->up[o->n_steps] = o->down[o->n_steps] = 0;
	o->n_steps++;
}

/* The base is in: plan the block downloads. */
static void
plan(struct device *d, struct ofa_dev *o)
{
	float z[OFA_MAX_DIM];
	int sel[OFA_MAX_BLOCKS];
	int L = ofa_config(o->m)->n_blocks;

	behaviour(d, o->m, z);
	o->n_steps = 1;
	ofa_select(o->m, z, o->budget, sel, NULL);
	add_step(o, mask_of(sel, L));
	if (evaluating(d))
		for (int k = 0; k < OFA_N_CLASSES; k++) {
			ofa_select(o->m, z, ofa_class_budget[k], sel, NULL);
			add_step(o, mask_of(sel, L));
		}
}

/* One forward pass: structure and parameters from z and the budget. */
static int
adapt(struct device *d, struct ofa_dev *o, const char *why)
{
	float z[OFA_MAX_DIM];
	double t0 = (clock_now() * 1e6), bytes = 0;
	int rc;

	behaviour(d, o->m, z);
	rc = ofa_assemble(o->m, z, o->budget, &o->a);
	o->adapt_us = (clock_now() * 1e6) - t0;
	if (rc != 0)
		return rc;
	o->adapted = 1;
	o->adaptations++;
	for (int s = 0; s < o->n_steps; s++)
		bytes += (double)o->down[s];
	log_info("OFA-ADAPT: device=%s v%llu %s budget %.2f (%s): %d of %d "
	    "blocks assembled, %.1f us, %.0f FLOPs/prediction, %.0f bytes "
	    "down (%s)", d->id, (unsigned long long)o->version,
	    o->cls >= 0 ? ofa_class_name[o->cls] : "flops", o->budget, why,
	    o->a.n_blocks, ofa_config(o->m)->n_blocks, o->adapt_us,
	    ofa_in_flops(o->m, d->model) + ofa_assembled_flops(&o->a), bytes,
	    evaluating(d) ? "every class's blocks, for the evaluation" :
	    "base + own blocks");
	return 0;
}

int
ofa_dev_start(struct device *d)
{
	const struct deviced_conf *cf = &d->dd->cf;
	struct ofa_dev *o;

	if (!wanted(d))
		return 0;
	if (d->ofa == NULL) {
		d->ofa = xcalloc(1, sizeof(*d->ofa));
		ofa_assembled_init(&d->ofa->a);
	}
	o = d->ofa;
	/* Already adapted on this version (a re-registration): keep it. */
	if (o->m != NULL && o->version == d->version && o->done &&
	    o->adapted)
		return 0;
	reset_part(o);
	ofa_free(o->m);
	o->m = NULL;
	o->version = d->version;
	o->done = o->adapted = o->fails = 0;
	o->then = DEV_RETRIEVE;
	o->n_steps = 1;
	o->step = 0;
	memset(o->up, 0, sizeof(o->up));
	memset(o->down, 0, sizeof(o->down));
	o->cls = cf->flops_budget > 0 ? -1 :
	    ofa_class_find(cf->compute_class);
	if (o->cls < 0 && cf->flops_budget == 0)
		o->cls = 1;
	return 1;
}

int
ofa_dev_next(struct device *d, Dccl__GetOfaReq *q, int *then)
{
	struct ofa_dev *o = d->ofa;

	if (o == NULL || o->done || o->fails >= OFA_DEV_MAX_FAIL ||
	    o->version != d->version) {
		if (o != NULL && !o->done && o->fails >= OFA_DEV_MAX_FAIL)
			ofa_dev_skip(d, "too many bad parts");
		*then = o != NULL ? o->then : DEV_RETRIEVE;
		return 1;
	}
	dccl__get_ofa_req__init(q);
	q->base_version = o->version;
	q->with_base = o->step == 0;
	q->block_mask = o->step == 0 ? 0 : o->masks[o->step - 1];
	q->chunk_index = o->chunk;
	return 0;
}

void
ofa_dev_bytes(struct device *d, int up, size_t len)
{
	struct ofa_dev *o = d->ofa;

	if (o == NULL || o->step >= OFA_DEV_STEPS)
		return;
	if (up)
		o->up[o->step] += len;
	else
		o->down[o->step] += len;
}

/* A complete part: check it and put it into the model. */
static int
take_part(struct device *d, struct ofa_dev *o)
{
	const struct deviced_conf *cf = &d->dd->cf;
	struct ofa_meta meta;
	uint8_t sum[32];
	char err[256];
	int rc;

	crypto_generichash(sum, 32, o->buf, o->len, NULL, 0);
	if (o->len != o->total || memcmp(sum, o->sum, 32) != 0) {
		log_warnx("OFA: device=%s v%llu part %d: checksum mismatch",
		    d->id, (unsigned long long)o->version, o->step);
		return -1;
	}
	if (o->step == 0) {
		rc = ofa_io_unpack(&o->m, &meta, o->buf, o->len, err,
		    sizeof(err));
		if (rc == 0 && meta.base_version != d->version) {
			snprintf(err, sizeof(err), "built on v%llu",
			    (unsigned long long)meta.base_version);
			ofa_free(o->m);
			o->m = NULL;
			rc = -1;
		}
		if (rc == 0 && ofa_fits_ctr(o->m, d->model) != 0) {
			snprintf(err, sizeof(err), "input options do not fit "
			    "the CTR model");
			ofa_free(o->m);
			o->m = NULL;
			rc = -1;
		}
		if (rc != 0) {
			log_warnx("OFA: device=%s v%llu base refused: %s",
			    d->id, (unsigned long long)o->version, err);
			return -1;
		}
		o->budget = o->cls >= 0 ? ofa_class_budget[o->cls] :
		    ofa_budget_from_flops(o->m, (double)cf->flops_budget -
		    ofa_in_flops(o->m, d->model));
		plan(d, o);
	} else if ((rc = ofa_io_merge(o->m, o->version, o->buf, o->len, err,
	    sizeof(err))) != 0) {
		log_warnx("OFA: device=%s v%llu blocks 0x%x refused: %s", d->id,
		    (unsigned long long)o->version, o->masks[o->step - 1], err);
		return -1;
	}
	return 0;
}

int
ofa_dev_on_chunk(struct device *d, const Dccl__ModelChunk *c)
{
	struct ofa_dev *o = d->ofa;

	if (o == NULL)
		return -1;
	if (c->version != o->version || c->chunk_index != o->chunk ||
	    c->checksum.len != 32 || c->n_chunks == 0 ||
	    c->total_size > OFA_DEV_MAX_PART || (o->chunk > 0 &&
	    (c->n_chunks != o->n_chunks || c->total_size != o->total ||
	    memcmp(c->checksum.data, o->sum, 32) != 0)) ||
	    o->len + c->data.len > c->total_size) {
		o->fails++;
		reset_part(o);
		return -1;
	}
	if (o->chunk == 0) {
		reset_part(o);
		o->total = c->total_size;
		o->n_chunks = c->n_chunks;
		o->buf = xmalloc(o->total ? o->total : 1);
		memcpy(o->sum, c->checksum.data, 32);
	}
	if (c->data.len > 0)
		memcpy(o->buf + o->len, c->data.data, c->data.len);
	o->len += c->data.len;
	if (++o->chunk < o->n_chunks)
		return 0;
	if (take_part(d, o) != 0) {
		o->fails++;
		reset_part(o);
		return -1;
	}
	reset_part(o);
	if (++o->step < o->n_steps)
		return 0;
	o->done = 1;
	if (adapt(d, o, o->then == DEV_IDLE ? "new samples" : "new model")
	    != 0)
		log_warnx("OFA: device=%s v%llu: a selected block is missing",
		    d->id, (unsigned long long)o->version);
	return 0;
}

void
ofa_dev_skip(struct device *d, const char *why)
{
	struct ofa_dev *o = d->ofa;

	if (o == NULL)
		return;
	log_info("OFA: device=%s v%llu: no OFA model (%s); serving without",
	    d->id, (unsigned long long)o->version, why);
	reset_part(o);
	ofa_free(o->m);
	o->m = NULL;
	o->done = 1;
	o->adapted = 0;
}

int
ofa_dev_samples(struct device *d)
{
	struct ofa_dev *o = d->ofa;
	float z[OFA_MAX_DIM];
	int sel[OFA_MAX_BLOCKS];
	uint32_t need;

	/* During a fetch the adaptation at its end sees the new samples. */
	if (o == NULL || o->m == NULL || !o->done || d->state == DEV_OFA)
		return 0;
	behaviour(d, o->m, z);
	ofa_select(o->m, z, o->budget, sel, NULL);
	need = missing(o->m, mask_of(sel, ofa_config(o->m)->n_blocks));
	if (need != 0) {
		/* The new structure needs blocks: fetch them, then adapt. */
		o->n_steps = o->step = 1;
		add_step(o, need);
		o->up[1] = o->down[1] = 0;
		o->done = 0;
		o->then = DEV_IDLE;
		log_info("OFA: device=%s v%llu: new samples need blocks 0x%x",
		    d->id, (unsigned long long)o->version, need);
		return 1;
	}
	adapt(d, o, "new samples");
	return 0;
}

int
ofa_dev_pending(const struct device *d)
{
	const struct ofa_dev *o = d->ofa;

	return o != NULL && o->m != NULL && !o->done &&
	    o->version == d->version;
}

/* ---- evaluation ------------------------------------------------------------ */

int
ofa_dev_eval(struct device *d, const char *method, const struct dataset *q,
    FILE *f, FILE *x)
{
	struct ofa_dev *o = d->ofa;
	struct ofa_assembled a;
	float z[OFA_MAX_DIM], *x0, *pr, *scratch;
	uint32_t idx[64], mask;
	double t0, us, bytes = 0, up = 0;
	int k, L, C0;

	if (strncmp(method, "ofa-", 4) != 0 ||
	    (k = ofa_class_find(method + 4)) < 0 || o == NULL ||
	    o->m == NULL || !o->done || q->n == 0)
		return -1;
	ofa_assembled_init(&a);
	/* The adaptation as the device runs it, for this class's budget. */
	t0 = (clock_now() * 1e6);
	behaviour(d, o->m, z);
	if (ofa_assemble(o->m, z, ofa_class_budget[k], &a) != 0) {
		ofa_assembled_fini(&a);
		return -1;
	}
	us = (clock_now() * 1e6) - t0;
	L = ofa_config(o->m)->n_blocks;
	C0 = ofa_config(o->m)->in_dim;
	mask = 0;
	for (int b = 0; b < a.n_blocks; b++)
		mask |= 1u << a.block[b];
	/* Bytes of this class's own part: the base + its block subset. */
	bytes = (double)o->down[0];
	up = (double)o->up[0];
	if (mask != 0) {
		int s;
		for (s = 1; s < o->n_steps; s++)
			if (o->masks[s - 1] == mask)
				break;
		if (s < o->n_steps) {
			bytes += (double)o->down[s];
			up += (double)o->up[s];
		} else {
			struct ofa_meta meta;
			memset(&meta, 0, sizeof(meta));
			meta.version = meta.base_version = o->version;
			bytes += (double)ofa_io_size(o->m, &meta, 0, mask);
		}
	}
	x0 = xcalloc((size_t)C0, sizeof(float));
	pr = xcalloc(1, sizeof(float));
	scratch = xcalloc((size_t)3 * OFA_MAX_DIM, sizeof(float));
	/*
	 * Served as trained: each impression's own z (the history before it)
	 * gives its structure and its blocks' parameters. A structure that
	 * needs a block this device did not download keeps the device's own
	 * (counted). FLOPs: the assembled blocks plus the controller and the
	 * mapper run per impression, unmaterialised (ofa_impression_flops).
	 */
	int dmask[OFA_MAX_BLOCKS], mk[OFA_MAX_BLOCKS];
	double nb = 0, fl = 0;
	size_t nfb = 0;
	struct ofa_assembled ai;
	ofa_assembled_init(&ai);
	for (int l = 0; l < L; l++)
		dmask[l] = (mask >> l) & 1u;
	for (size_t i = 0; i < q->n; i++) {
		float zi[OFA_MAX_DIM];
		const struct sample *s = &d->test.s[i];
		int have = 1;
		idx[0] = (uint32_t)i;
		if (ofa_inputs_base(o->m, d->model, q, idx, 1, x0, zi) != 0)
			break;
		ofa_select(o->m, zi, ofa_class_budget[k], mk, NULL);
		for (int l = 0; l < L; l++)
			have &= !mk[l] || ofa_has_block(o->m, l);
		if (!have) {
			memcpy(mk, dmask, sizeof(dmask));
			nfb++;
		}
		if (ofa_assemble_mask(o->m, zi, mk, &ai) != 0)
			break;
		ofa_assembled_logits(&ai, x0, 1, pr, scratch);
		nb += ai.n_blocks;
		fl += ofa_assembled_flops(&ai) +
		    ofa_impression_flops(o->m, ai.n_blocks);
		fprintf(f, "%s,%u,%u,%g,%.9g\n", method, s->user, s->item,
		    s->label, 1 / (1 + exp(-(double)pr[0])));
	}
	ofa_assembled_fini(&ai);
	if (nfb > 0)
		log_info("OFA: device=%s %s: %zu of %zu impressions kept the "
		    "device's structure (a block not downloaded)", d->id,
		    method, nfb, q->n);
	fprintf(x, "%s,device_ms,%.4f\n%s,device_us,%.2f\n%s,flops,%.0f\n"
	    "%s,blocks,%.2f\n%s,ofa_bytes,%.0f\n%s,bytes_down,%.0f\n"
	    "%s,bytes_up,%.0f\n%s,train_kib,%.1f\n%s,adopted,1\n",
	    method, us / 1e3, method, us, method, ofa_in_flops(o->m, d->model) +
	    fl / (double)q->n, method, nb / (double)q->n, method, bytes,
	    method, bytes + (double)d->b_model, method, up + (double)d->b_reg,
	    method, (double)(ofa_base_params(o->m) + (size_t)a.n_blocks *
	    ofa_block_params(o->m)) * 4 / 1024, method);

	free(x0);
	free(pr);
	free(scratch);
	ofa_assembled_fini(&a);
	return 0;
}

void
ofa_dev_free(struct device *d)
{
	struct ofa_dev *o = d->ofa;

	if (o == NULL)
		return;
	reset_part(o);
	ofa_free(o->m);
	ofa_assembled_fini(&o->a);
	free(o);
	d->ofa = NULL;
}
