/*
 * ofa_io: Forward-OFA model <-> protobuf Model, whole or per block (see
 * ofa_io.h for the format and the checksum).
 *
 * DESIGN. As ctr_io: packing points Tensor messages at the model's buffer
 * (no copy); unpacking bounds the input, unpacks, checks kind, config,
 * the block list and every tensor's name, shape and finiteness against the
 * layout the config implies before anything is written, then compares the
 * checksum. A part carries its block list, so a tensor of a block that is
 * not listed is "unknown", and a listed block must be complete.
 *
 * Threads: any; no shared state.
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "model.pb-c.h"
#include "shared/ml/ofa.h"
#include "shared/ml/ofa_io.h"
#include "shared/ml/tensor_io.h"
#include "shared/xmalloc.h"

#define fail(rc, err, errlen, ...)					\
	tensor_io_fail((rc), "", (rc) == CTR_IO_EKIND ?			\
	    "model kind is not \"ofa\"" : ctr_io_strerror(rc), (err),	\
	    (errlen), __VA_ARGS__)

/* Whether tensor t is included in a part (with_base, mask). */
static int
included(const struct param_tensor *t, int with_base, uint32_t mask)
{
	return t->block < 0 ? with_base != 0 : (int)((mask >> t->block) & 1u);
}

int
ofa_io_format(const struct ofa_config *c)
{
	if (c->ctr_base)
		return OFA_IO_FORMAT_3;
	return c->n_side || c->interaction || c->ctrl_hidden ||
	    c->gen_hidden ? OFA_IO_FORMAT_2 : CTR_IO_FORMAT;
}

static void
checksum(const struct ofa *m, int with_base, uint32_t mask, uint64_t bv,
    uint8_t out[CTR_IO_CHECKSUM_LEN])
{
	const struct ofa_config *c = ofa_config(m);
	crypto_generichash_state st;
	uint32_t nb = 0;

	if (sodium_init() < 0)
		abort();
	crypto_generichash_init(&st, NULL, 0, CTR_IO_CHECKSUM_LEN);
	tensor_io_hash_u32(&st, (uint32_t)c->in_dim);
	tensor_io_hash_u32(&st, (uint32_t)c->z_dim);
	tensor_io_hash_u32(&st, (uint32_t)c->hidden);
	tensor_io_hash_u32(&st, (uint32_t)c->inner);
	tensor_io_hash_u32(&st, (uint32_t)c->n_blocks);
	tensor_io_hash_u32(&st, (uint32_t)c->rank);
	tensor_io_hash_u32(&st, (uint32_t)c->hist_k);
	if (ofa_io_format(c) >= OFA_IO_FORMAT_2) {
		tensor_io_hash_u32(&st, (uint32_t)c->n_side);
		tensor_io_hash_u32(&st, (uint32_t)c->interaction);
		tensor_io_hash_u32(&st, (uint32_t)c->ctrl_hidden);
		tensor_io_hash_u32(&st, (uint32_t)c->gen_hidden);
	}
	if (ofa_io_format(c) == OFA_IO_FORMAT_3)
		tensor_io_hash_u32(&st, (uint32_t)c->ctr_base);
	tensor_io_hash_u32(&st, (uint32_t)(with_base != 0));
	for (int l = 0; l < c->n_blocks; l++)
		nb += (mask >> l) & 1u;
	tensor_io_hash_u32(&st, nb);
	for (int l = 0; l < c->n_blocks; l++)
		if ((mask >> l) & 1u)
			tensor_io_hash_u32(&st, (uint32_t)l);
	tensor_io_hash_u32(&st, (uint32_t)(bv & 0xffffffffu));
	tensor_io_hash_u32(&st, (uint32_t)(bv >> 32));
	for (int i = 0; i < ofa_num_tensors(m); i++) {
		const struct param_tensor *t = ofa_tensor_at(m, i);
		if (included(t, with_base, mask))
			tensor_io_hash(&st, t->name, t->ndim, t->shape,
			    t->data, t->n);
	}
	crypto_generichash_final(&st, out, CTR_IO_CHECKSUM_LEN);
}

/* Fills msg (pointing into m and the caller's arrays); returns 0/-errno. */
static int
build(const struct ofa *m, const struct ofa_meta *meta, int with_base,
    uint32_t mask, Dccl__Model *msg, Dccl__OfaConfig *cfg,
    Dccl__Tensor *tens, Dccl__Tensor **tp, uint32_t *blocks,
    Dccl__Metric *met, Dccl__Metric **mp, uint8_t *sum)
{
	const struct ofa_config *c = ofa_config(m);
	size_t nt = 0, nb = 0;

	mask &= c->n_blocks >= 32 ? 0xffffffffu : ((1u << c->n_blocks) - 1);
	for (int l = 0; l < c->n_blocks; l++)
		if (((mask >> l) & 1u) && !ofa_has_block(m, l))
			return -ENOENT;
	if (meta != NULL && (meta->n_metrics < 0 ||
	    meta->n_metrics > CTR_IO_MAX_METRICS))
		return CTR_IO_EMETA;
	dccl__model__init(msg);
	dccl__ofa_config__init(cfg);
	cfg->in_dim = (uint32_t)c->in_dim;
	cfg->z_dim = (uint32_t)c->z_dim;
	cfg->hidden = (uint32_t)c->hidden;
	cfg->inner = (uint32_t)c->inner;
	cfg->n_blocks = (uint32_t)c->n_blocks;
	cfg->rank = (uint32_t)c->rank;
	cfg->hist_k = (uint32_t)c->hist_k;
	cfg->n_side = (uint32_t)c->n_side;
	cfg->interaction = (uint32_t)c->interaction;
	cfg->ctrl_hidden = (uint32_t)c->ctrl_hidden;
	cfg->gen_hidden = (uint32_t)c->gen_hidden;
	cfg->ctr_base = (uint32_t)c->ctr_base;
	for (int i = 0; i < ofa_num_tensors(m); i++) {
		const struct param_tensor *t = ofa_tensor_at(m, i);
		if (!included(t, with_base, mask))
			continue;
		tensor_io_view(&tens[nt], t->name, t->ndim, t->shape, t->data,
		    t->n);
		tp[nt] = &tens[nt];
		nt++;
	}
	for (int l = 0; l < c->n_blocks; l++)
		if ((mask >> l) & 1u)
			blocks[nb++] = (uint32_t)l;
	msg->format = (uint32_t)ofa_io_format(c);
	msg->kind = (char *)OFA_IO_KIND;
	msg->ofa_config = cfg;
	msg->ofa_has_base = with_base != 0;
	msg->n_ofa_blocks = nb;
	msg->ofa_blocks = blocks;
	msg->n_tensors = nt;
	msg->tensors = tp;
	if (meta != NULL) {
		msg->version = meta->version;
		msg->ofa_base_version = meta->base_version;
		msg->created = meta->created;
		for (int i = 0; i < meta->n_metrics; i++) {
			dccl__metric__init(&met[i]);
			met[i].name = (char *)meta->metrics[i].name;
			met[i].value = meta->metrics[i].value;
			mp[i] = &met[i];
		}
		msg->n_metrics = (size_t)meta->n_metrics;
		msg->metrics = mp;
	}
	checksum(m, with_base, mask, meta ? meta->base_version : 0, sum);
	msg->checksum.data = sum;
	msg->checksum.len = CTR_IO_CHECKSUM_LEN;
	return 0;
}

struct packbuf {
	Dccl__Model	 msg;
	Dccl__OfaConfig	 cfg;
	Dccl__Tensor	 tens[OFA_MAX_TENSORS], *tp[OFA_MAX_TENSORS];
	uint32_t	 blocks[OFA_MAX_BLOCKS];
	Dccl__Metric	 met[CTR_IO_MAX_METRICS], *mp[CTR_IO_MAX_METRICS];
	uint8_t		 sum[CTR_IO_CHECKSUM_LEN];
};

int
ofa_io_pack(const struct ofa *m, const struct ofa_meta *meta, int with_base,
    uint32_t mask, uint8_t **buf, size_t *len)
{
	struct packbuf *p = xcalloc(1, sizeof(*p));
	int rc;

	*buf = NULL;
	*len = 0;
	rc = build(m, meta, with_base, mask, &p->msg, &p->cfg, p->tens, p->tp,
	    p->blocks, p->met, p->mp, p->sum);
	if (rc == 0) {
		*len = dccl__model__get_packed_size(&p->msg);
		*buf = xmalloc(*len ? *len : 1);
		dccl__model__pack(&p->msg, *buf);
	}
	free(p);
	return rc;
}

size_t
ofa_io_size(const struct ofa *m, const struct ofa_meta *meta, int with_base,
    uint32_t mask)
{
	struct packbuf *p = xcalloc(1, sizeof(*p));
	size_t n = 0;

	if (build(m, meta, with_base, mask, &p->msg, &p->cfg, p->tens, p->tp,
	    p->blocks, p->met, p->mp, p->sum) == 0)
		n = dccl__model__get_packed_size(&p->msg);
	free(p);
	return n;
}

/* ---- unpack ------------------------------------------------------------- */

static int
config_from_msg(struct ofa_config *c, const Dccl__OfaConfig *mc,
    uint32_t format, char *err, size_t errlen)
{
	if (mc == NULL)
		return fail(CTR_IO_ECONFIG, err, errlen, "no ofa_config");
	if (mc->in_dim > 64 * CTR_MAX_DIM || mc->z_dim > CTR_MAX_DIM ||
	    mc->hidden > OFA_MAX_DIM || mc->inner > OFA_MAX_DIM ||
	    mc->n_blocks > OFA_MAX_BLOCKS || mc->rank > OFA_MAX_RANK ||
	    mc->hist_k > SAMPLE_HIST_MAX || mc->n_side > SAMPLE_SIDE_MAX ||
	    mc->interaction > 2 || mc->ctrl_hidden > 4096 ||
	    mc->gen_hidden > 4096 || mc->ctr_base > 1)
		return fail(CTR_IO_ETOOBIG, err, errlen, "ofa config out of "
		    "range");
	/* format 1 has none of the options: a writer that set one lied */
	if (format == CTR_IO_FORMAT && (mc->n_side || mc->interaction ||
	    mc->ctrl_hidden || mc->gen_hidden))
		return fail(CTR_IO_EFORMAT, err, errlen, "format 1 with "
		    "format-2 options");
	memset(c, 0, sizeof(*c));
	c->in_dim = (int)mc->in_dim;
	c->z_dim = (int)mc->z_dim;
	c->hidden = (int)mc->hidden;
	c->inner = (int)mc->inner;
	c->n_blocks = (int)mc->n_blocks;
	c->rank = (int)mc->rank;
	c->hist_k = (int)mc->hist_k;
	c->n_side = (int)mc->n_side;
	c->interaction = (int)mc->interaction;
	c->ctrl_hidden = (int)mc->ctrl_hidden;
	c->gen_hidden = (int)mc->gen_hidden;
	c->ctr_base = (int)mc->ctr_base;
	if (ofa_io_format(c) != (int)format)
		return fail(CTR_IO_EFORMAT, err, errlen, "format %u for a "
		    "format-%d config", format, ofa_io_format(c));
	if (ofa_config_check(c) != 0)
		return fail(CTR_IO_ECONFIG, err, errlen, "invalid ofa config");
	return 0;
}

/*
 * Validates msg against the layout of ref and the part it declares;
 * fills map (tensor index -> message index, -1 = not included) and
 * *mask. Writes nothing into ref.
 */
static int
check(const struct ofa *ref, const Dccl__Model *msg, int *map,
    uint32_t *mask, char *err, size_t errlen)
{
	int nt = ofa_num_tensors(ref), L = ofa_config(ref)->n_blocks;
	int with_base = msg->ofa_has_base, rc;
	uint8_t want[OFA_MAX_TENSORS];
	char detail[96];

	*mask = 0;
	if (msg->n_ofa_blocks > (size_t)L)
		return fail(CTR_IO_EUNKNOWN, err, errlen, "%zu blocks",
		    msg->n_ofa_blocks);
	for (size_t i = 0; i < msg->n_ofa_blocks; i++) {
		uint32_t b = msg->ofa_blocks[i];
		if (b >= (uint32_t)L || ((*mask >> b) & 1u) ||
		    (i > 0 && b < msg->ofa_blocks[i - 1]))
			return fail(CTR_IO_EUNKNOWN, err, errlen,
			    "block list (block %u)", b);
		*mask |= 1u << b;
	}
	if (msg->n_tensors > (size_t)nt)
		return fail(CTR_IO_EUNKNOWN, err, errlen, "%zu tensors",
		    msg->n_tensors);
	for (int i = 0; i < nt; i++)
		want[i] = (uint8_t)included(ofa_tensor_at(ref, i), with_base,
		    *mask);
	/* the model's table: ofa_tensor_at is &t[i] */
	if ((rc = tensor_io_match(msg->tensors, msg->n_tensors,
	    ofa_tensor_at(ref, 0), nt, want, 1, map, detail,
	    sizeof(detail))) != 0)
		return fail(rc == TENSOR_IO_UNKNOWN ? CTR_IO_EUNKNOWN :
		    rc == TENSOR_IO_SHAPE ? CTR_IO_ESHAPE : CTR_IO_ENONFINITE,
		    err, errlen, "%s", detail);
	for (int i = 0; i < nt; i++)
		if (map[i] < 0 && included(ofa_tensor_at(ref, i), with_base,
		    *mask))
			return fail(CTR_IO_EMISSING, err, errlen, "'%s'",
			    ofa_tensor_at(ref, i)->name);
	if (msg->checksum.len != CTR_IO_CHECKSUM_LEN)
		return fail(CTR_IO_ECHECKSUM, err, errlen, "checksum is %zu "
		    "bytes", msg->checksum.len);
	return 0;
}

/* Unpacks buf into a message after the common checks; NULL on error. */
static Dccl__Model *
unpack_msg(const uint8_t *buf, size_t len, struct ofa_config *cfg, int *rc,
    char *err, size_t errlen)
{
	Dccl__Model *msg;

	if (err != NULL && errlen > 0)
		err[0] = '\0';
	if (len > CTR_IO_MAX_BYTES) {
		*rc = fail(CTR_IO_ETOOBIG, err, errlen, "%zu bytes", len);
		return NULL;
	}
	if (buf == NULL || len == 0 ||
	    (msg = dccl__model__unpack(NULL, len, buf)) == NULL) {
		*rc = fail(CTR_IO_EUNPACK, err, errlen, "%zu bytes", len);
		return NULL;
	}
	if (msg->format != CTR_IO_FORMAT && msg->format != OFA_IO_FORMAT_2 &&
	    msg->format != OFA_IO_FORMAT_3)
		*rc = fail(CTR_IO_EFORMAT, err, errlen, "format %u",
		    msg->format);
	else if (msg->kind == NULL || strcmp(msg->kind, OFA_IO_KIND) != 0)
		*rc = fail(CTR_IO_EKIND, err, errlen, "kind '%.32s'",
		    msg->kind ? msg->kind : "");
	else if (msg->n_metrics > CTR_IO_MAX_METRICS)
		*rc = fail(CTR_IO_EMETA, err, errlen, "%zu metrics",
		    msg->n_metrics);
	else
		*rc = config_from_msg(cfg, msg->ofa_config, msg->format, err,
		    errlen);
	if (*rc != 0) {
		dccl__model__free_unpacked(msg, NULL);
		return NULL;
	}
	return msg;
}

/* Copies the included tensors of msg into m and marks the blocks. */
static void
copy_in(struct ofa *m, const Dccl__Model *msg, const int *map, uint32_t mask)
{
	for (int i = 0; i < ofa_num_tensors(m); i++)
		if (map[i] >= 0)
			memcpy(ofa_tensor_at(m, i)->data,
			    msg->tensors[map[i]]->data,
			    ofa_tensor_at(m, i)->n * sizeof(float));
	for (int l = 0; l < ofa_config(m)->n_blocks; l++)
		if ((mask >> l) & 1u)
			ofa_set_has_block(m, l, 1);
}

static int
verify_sum(const struct ofa *m, const Dccl__Model *msg, uint32_t mask,
    char *err, size_t errlen)
{
	uint8_t sum[CTR_IO_CHECKSUM_LEN];

	checksum(m, msg->ofa_has_base, mask, msg->ofa_base_version, sum);
	if (sodium_memcmp(sum, msg->checksum.data, sizeof(sum)) != 0)
		return fail(CTR_IO_ECHECKSUM, err, errlen, "data or config "
		    "altered");
	return 0;
}

int
ofa_io_unpack(struct ofa **out, struct ofa_meta *meta, const uint8_t *buf,
    size_t len, char *err, size_t errlen)
{
	Dccl__Model *msg;
	struct ofa_config cfg;
	struct ofa *m = NULL;
	int map[OFA_MAX_TENSORS], rc;
	uint32_t mask;

	*out = NULL;
	if ((msg = unpack_msg(buf, len, &cfg, &rc, err, errlen)) == NULL)
		return rc;
	if (!msg->ofa_has_base) {
		rc = fail(CTR_IO_EMISSING, err, errlen, "no base section");
		goto done;
	}
	if ((rc = ofa_new(&m, &cfg, 0)) != 0) {
		rc = fail(CTR_IO_ECONFIG, err, errlen, "rejected by ofa_new");
		goto done;
	}
	if ((rc = check(m, msg, map, &mask, err, errlen)) != 0)
		goto done;
	/* A fresh model has every block; keep only the included ones. */
	for (int l = 0; l < cfg.n_blocks; l++)
		ofa_set_has_block(m, l, 0);
	memset(ofa_params(m), 0, ofa_num_params(m) * sizeof(float));
	copy_in(m, msg, map, mask);
	if ((rc = verify_sum(m, msg, mask, err, errlen)) != 0)
		goto done;
	if (meta != NULL) {
		memset(meta, 0, sizeof(*meta));
		meta->version = msg->version;
		meta->base_version = msg->ofa_base_version;
		meta->created = msg->created;
		for (size_t i = 0; i < msg->n_metrics; i++) {
			snprintf(meta->metrics[i].name, CTR_IO_METRIC_NAME,
			    "%s", msg->metrics[i]->name ?
			    msg->metrics[i]->name : "");
			meta->metrics[i].value = msg->metrics[i]->value;
		}
		meta->n_metrics = (int)msg->n_metrics;
	}
	*out = m;
	m = NULL;
done:
	ofa_free(m);
	dccl__model__free_unpacked(msg, NULL);
	return rc;
}

int
ofa_io_merge(struct ofa *m, uint64_t base_version, const uint8_t *buf,
    size_t len, char *err, size_t errlen)
{
	Dccl__Model *msg;
	struct ofa_config cfg;
	struct ofa *tmp = NULL;
	int map[OFA_MAX_TENSORS], rc;
	uint32_t mask;

	if ((msg = unpack_msg(buf, len, &cfg, &rc, err, errlen)) == NULL)
		return rc;
	if (memcmp(&cfg, ofa_config(m), sizeof(cfg)) != 0 ||
	    msg->ofa_base_version != base_version) {
		rc = fail(CTR_IO_ECONFIG, err, errlen, "part of another model");
		goto done;
	}
	if ((rc = check(m, msg, map, &mask, err, errlen)) != 0)
		goto done;
	/* Verify on a scratch copy, then copy into m. */
	tmp = ofa_clone(m);
	copy_in(tmp, msg, map, mask);
	if ((rc = verify_sum(tmp, msg, mask, err, errlen)) != 0)
		goto done;
	copy_in(m, msg, map, mask);
done:
	ofa_free(tmp);
	dccl__model__free_unpacked(msg, NULL);
	return rc;
}
