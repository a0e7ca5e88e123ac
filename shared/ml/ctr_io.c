/*
 * ctr_io: CTR model <-> protobuf Model (see ctr_io.h for the format and
 * the checksum definition).
 *
 * DESIGN. Packing points the protobuf Tensor messages straight at the
 * model's parameter buffer (no copy). Unpacking follows the ntpd rule:
 * bound the input, unpack, then check format, kind, config ranges, the
 * parameter count, and every tensor's name, shape, length and finiteness
 * against the layout the config implies, all before the model is
 * allocated; then copy the data in and compare the checksum. unpack and
 * free_unpacked stay in the same function.
 *
 * Threads: any; no shared state (sodium_init is idempotent and
 * thread-safe).
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "model.pb-c.h"
#include "shared/ml/ctr.h"
#include "shared/ml/ctr_io.h"
#include "shared/ml/kern.h"
#include "shared/ml/tensor_io.h"
#include "shared/xmalloc.h"

const char *
ctr_io_strerror(int rc)
{
	switch (rc) {
	case 0:
		return "success";
	case CTR_IO_EUNPACK:
		return "not a valid protobuf Model (truncated or garbage)";
	case CTR_IO_ETOOBIG:
		return "size beyond limits";
	case CTR_IO_EFORMAT:
		return "unsupported model format";
	case CTR_IO_EKIND:
		return "model kind is not \"ctr\"";
	case CTR_IO_ECONFIG:
		return "model config missing or invalid";
	case CTR_IO_EMISSING:
		return "tensor missing";
	case CTR_IO_EUNKNOWN:
		return "unknown or duplicate tensor";
	case CTR_IO_ESHAPE:
		return "tensor shape does not match the config";
	case CTR_IO_ENONFINITE:
		return "NaN or Inf in tensor";
	case CTR_IO_ECHECKSUM:
		return "checksum mismatch";
	case CTR_IO_EMETA:
		return "metrics out of range";
	case CTR_IO_ENOPATCH:
		return "model has no MetaPatch";
	}
	return "unknown error";
}

#define fail(rc, err, errlen, ...)					\
	tensor_io_fail((rc), "", ctr_io_strerror(rc), (err), (errlen),	\
	    __VA_ARGS__)

/* ---- checksum ------------------------------------------------------------- */

/* Whether c uses anything of format 2. */
static int
uses_opts(const struct ctr_config *c)
{
	return c->interaction || c->attention || c->n_side > 0;
}

void
ctr_io_checksum(const struct ctr *m, uint8_t out[CTR_IO_CHECKSUM_LEN])
{
	const struct ctr_config *c = ctr_config(m);
	crypto_generichash_state st;

	if (sodium_init() < 0)
		abort();	/* cannot happen after a successful link */
	crypto_generichash_init(&st, NULL, 0, CTR_IO_CHECKSUM_LEN);
	tensor_io_hash_u32(&st, c->n_users);
	tensor_io_hash_u32(&st, c->n_items);
	tensor_io_hash_u32(&st, c->n_genres);
	tensor_io_hash_u32(&st, (uint32_t)c->dim);
	tensor_io_hash_u32(&st, (uint32_t)c->hist_k);
	tensor_io_hash_u32(&st, (uint32_t)c->n_hidden);
	for (int l = 0; l < c->n_hidden; l++)
		tensor_io_hash_u32(&st, (uint32_t)c->hidden[l]);
	tensor_io_hash_u32(&st, (uint32_t)c->patch_rank);
	tensor_io_hash_u32(&st, SAMPLE_N_HOURS);
	tensor_io_hash_u32(&st, SAMPLE_N_WDAYS);
	/* only in format 2, so format-1 checksums stay what they were */
	if (uses_opts(c)) {
		tensor_io_hash_u32(&st, (uint32_t)c->interaction);
		tensor_io_hash_u32(&st, (uint32_t)c->attention);
		tensor_io_hash_u32(&st, c->n_side);
		for (uint32_t f = 0; f < c->n_side; f++)
			tensor_io_hash_u32(&st, c->side_card[f]);
	}
	/* only in format 3, so older checksums stay what they were */
	if (c->item_prior)
		tensor_io_hash_u32(&st, (uint32_t)CTR_IO_FORMAT_PRIOR);
	/* only in a device's slice, so other checksums stay what they were */
	if (c->sliced) {
		tensor_io_hash_u32(&st, CTR_IO_ROWS_SLICE);
		tensor_io_hash_u32(&st, c->slice_user);
	}
	for (int i = 0; i < ctr_num_tensors(m); i++) {
		const struct param_tensor *t = ctr_tensor_at(m, i);
		tensor_io_hash(&st, t->name, t->ndim, t->shape, t->data, t->n);
	}
	crypto_generichash_final(&st, out, CTR_IO_CHECKSUM_LEN);
}

/* ---- pack ----------------------------------------------------------------- */

int
ctr_io_pack(const struct ctr *m, const struct ctr_meta *meta, uint8_t **buf,
    size_t *len)
{
	const struct ctr_config *c = ctr_config(m);
	Dccl__Model msg = DCCL__MODEL__INIT;
	Dccl__ModelConfig cfg = DCCL__MODEL_CONFIG__INIT;
	Dccl__Tensor tens[CTR_MAX_TENSORS], *tp[CTR_MAX_TENSORS];
	Dccl__Metric met[CTR_IO_MAX_METRICS], *mp[CTR_IO_MAX_METRICS];
	uint32_t hidden[CTR_MAX_LAYERS], side[SAMPLE_SIDE_MAX];
	uint8_t sum[CTR_IO_CHECKSUM_LEN];
	int nt = ctr_num_tensors(m);

	*buf = NULL;
	*len = 0;
	if (meta != NULL && (meta->n_metrics < 0 ||
	    meta->n_metrics > CTR_IO_MAX_METRICS))
		return CTR_IO_EMETA;
	/* Every reader refuses it: say so where the model is made. */
	for (int i = 0; i < nt; i++) {
		const struct param_tensor *t = ctr_tensor_at(m, i);
		if (!kern_finite(t->data, t->n))
			return CTR_IO_ENONFINITE;
	}

	cfg.n_users = c->n_users;
	cfg.n_items = c->n_items;
	cfg.n_genres = c->n_genres;
	cfg.dim = (uint32_t)c->dim;
	cfg.hist_k = (uint32_t)c->hist_k;
	for (int l = 0; l < c->n_hidden; l++)
		hidden[l] = (uint32_t)c->hidden[l];
	cfg.n_hidden = (size_t)c->n_hidden;
	cfg.hidden = hidden;
	cfg.patch_rank = (uint32_t)c->patch_rank;
	cfg.n_hours = SAMPLE_N_HOURS;
	cfg.n_wdays = SAMPLE_N_WDAYS;
	cfg.interaction = (uint32_t)c->interaction;
	cfg.attention = c->attention != 0;
	cfg.item_prior = c->item_prior != 0;
	for (uint32_t f = 0; f < c->n_side; f++)
		side[f] = c->side_card[f];
	cfg.n_side_card = c->n_side;
	cfg.side_card = side;

	for (int i = 0; i < nt; i++) {
		const struct param_tensor *t = ctr_tensor_at(m, i);
		tensor_io_view(&tens[i], t->name, t->ndim, t->shape, t->data,
		    t->n);
		tp[i] = &tens[i];
	}

	msg.format = c->item_prior ? CTR_IO_FORMAT_PRIOR : uses_opts(c) ?
	    CTR_IO_FORMAT_OPTS : CTR_IO_FORMAT;
	if (c->sliced) {
		msg.user_rows = CTR_IO_ROWS_SLICE;
		msg.slice_user = c->slice_user;
	}
	msg.config = &cfg;
	msg.n_tensors = (size_t)nt;
	msg.tensors = tp;
	msg.kind = (char *)CTR_IO_KIND;
	if (meta != NULL) {
		msg.version = meta->version;
		msg.parent = meta->parent;
		msg.global_ctr = meta->global_ctr;
		msg.created = meta->created;
		for (int i = 0; i < meta->n_metrics; i++) {
			dccl__metric__init(&met[i]);
			if (memchr(meta->metrics[i].name, '\0',
			    CTR_IO_METRIC_NAME) == NULL)
				return CTR_IO_EMETA;
			met[i].name = (char *)meta->metrics[i].name;
			met[i].value = meta->metrics[i].value;
			mp[i] = &met[i];
		}
		msg.n_metrics = (size_t)meta->n_metrics;
		msg.metrics = mp;
	}
	ctr_io_checksum(m, sum);
	msg.checksum.data = sum;
	msg.checksum.len = sizeof(sum);

	*len = dccl__model__get_packed_size(&msg);
	*buf = xmalloc(*len);
	dccl__model__pack(&msg, *buf);
	return 0;
}

/* ---- unpack --------------------------------------------------------------- */

/* Maps the config message to a struct ctr_config, bounded. */
static int
config_from_msg(struct ctr_config *c, const Dccl__ModelConfig *mc,
    uint32_t format, char *err, size_t errlen)
{
	if (mc == NULL)
		return fail(CTR_IO_ECONFIG, err, errlen, "no config");
	if (format < CTR_IO_FORMAT_OPTS && (mc->interaction || mc->attention ||
	    mc->n_side_card > 0))
		return fail(CTR_IO_EFORMAT, err, errlen, "format %u with "
		    "interaction, attention or side fields", format);
	/* format 3 is the item prior's, and the prior needs format 3 */
	if ((format < CTR_IO_FORMAT_PRIOR) == (mc->item_prior != 0))
		return fail(CTR_IO_EFORMAT, err, errlen, "format %u %s an "
		    "item prior", format, mc->item_prior ? "with" : "without");
	if (mc->interaction > CTR_INTER_FM)
		return fail(CTR_IO_ECONFIG, err, errlen, "interaction %u",
		    mc->interaction);
	if (mc->n_side_card > SAMPLE_SIDE_MAX)
		return fail(CTR_IO_ETOOBIG, err, errlen, "%zu side fields",
		    mc->n_side_card);
	for (size_t f = 0; f < mc->n_side_card; f++)
		if (mc->side_card[f] > CTR_MAX_SIDE_CARD)
			return fail(CTR_IO_ETOOBIG, err, errlen,
			    "side_card[%zu] = %u", f, mc->side_card[f]);
	if (mc->n_users > CTR_MAX_USERS || mc->n_items > CTR_MAX_ITEMS ||
	    mc->dim > CTR_MAX_DIM || mc->n_hidden > CTR_MAX_LAYERS ||
	    mc->patch_rank > CTR_MAX_RANK || mc->hist_k > SAMPLE_HIST_MAX ||
	    mc->n_genres > SAMPLE_GENRES_MAX)
		return fail(CTR_IO_ETOOBIG, err, errlen,
		    "config users %u items %u dim %u layers %zu rank %u "
		    "hist_k %u genres %u", mc->n_users, mc->n_items, mc->dim,
		    mc->n_hidden, mc->patch_rank, mc->hist_k, mc->n_genres);
	if (mc->n_hours != SAMPLE_N_HOURS || mc->n_wdays != SAMPLE_N_WDAYS)
		return fail(CTR_IO_ECONFIG, err, errlen, "n_hours %u n_wdays %u",
		    mc->n_hours, mc->n_wdays);
	memset(c, 0, sizeof(*c));
	c->n_users = mc->n_users;
	c->n_items = mc->n_items;
	c->n_genres = mc->n_genres;
	c->dim = (int)mc->dim;
	c->hist_k = (int)mc->hist_k;
	c->n_hidden = (int)mc->n_hidden;
	for (size_t l = 0; l < mc->n_hidden; l++) {
		if (mc->hidden[l] > CTR_MAX_HIDDEN)
			return fail(CTR_IO_ETOOBIG, err, errlen,
			    "hidden[%zu] = %u", l, mc->hidden[l]);
		c->hidden[l] = (int)mc->hidden[l];
	}
	c->patch_rank = (int)mc->patch_rank;
	c->interaction = (int)mc->interaction;
	c->attention = mc->attention ? 1 : 0;
	c->item_prior = mc->item_prior ? 1 : 0;
	c->n_side = (uint32_t)mc->n_side_card;
	for (size_t f = 0; f < mc->n_side_card; f++)
		c->side_card[f] = mc->side_card[f];
	if (ctr_config_num_params(c) > CTR_MAX_PARAMS)
		return fail(CTR_IO_ETOOBIG, err, errlen, "%zu parameters",
		    ctr_config_num_params(c));
	if (ctr_config_check(c) != 0)
		return fail(CTR_IO_ECONFIG, err, errlen, "dim %d, hidden sizes",
		    c->dim);
	return 0;
}

/*
 * Checks the message's tensors against the layout of `ref` (a model built
 * from the same config) and fills map[i] = message index of ref tensor i.
 */
static int
check_tensors(const struct ctr *ref, const Dccl__Model *msg, int *map,
    char *err, size_t errlen)
{
	int nt = ctr_num_tensors(ref), rc;
	char detail[96];

	if (msg->n_tensors > CTR_MAX_TENSORS)
		return fail(CTR_IO_EUNKNOWN, err, errlen, "%zu tensors",
		    msg->n_tensors);
	/* the model's table: ctr_tensor_at is &t[i] */
	if ((rc = tensor_io_match(msg->tensors, msg->n_tensors,
	    ctr_tensor_at(ref, 0), nt, NULL, 0, map, detail,
	    sizeof(detail))) != 0)
		return fail(rc == TENSOR_IO_UNKNOWN ? CTR_IO_EUNKNOWN :
		    CTR_IO_ESHAPE, err, errlen, "%s", detail);
	for (int i = 0; i < nt; i++)
		if (map[i] < 0)
			return fail(CTR_IO_EMISSING, err, errlen, "'%s'",
			    ctr_tensor_at(ref, i)->name);
	for (int i = 0; i < nt; i++) {
		const Dccl__Tensor *mt = msg->tensors[map[i]];
		if (!kern_finite(mt->data, mt->n_data))
			return fail(CTR_IO_ENONFINITE, err, errlen, "'%s'",
			    mt->name);
	}
	return 0;
}

static int
meta_from_msg(struct ctr_meta *meta, const Dccl__Model *msg, char *err,
    size_t errlen)
{
	memset(meta, 0, sizeof(*meta));
	if (msg->n_metrics > CTR_IO_MAX_METRICS)
		return fail(CTR_IO_EMETA, err, errlen, "%zu metrics",
		    msg->n_metrics);
	meta->version = msg->version;
	meta->parent = msg->parent;
	meta->global_ctr = msg->global_ctr;
	meta->created = msg->created;
	for (size_t i = 0; i < msg->n_metrics; i++) {
		const char *nm = msg->metrics[i]->name ?
		    msg->metrics[i]->name : "";
		if (strlen(nm) >= CTR_IO_METRIC_NAME)
			return fail(CTR_IO_EMETA, err, errlen,
			    "metric name '%.40s...'", nm);
		snprintf(meta->metrics[i].name, CTR_IO_METRIC_NAME, "%s", nm);
		meta->metrics[i].value = msg->metrics[i]->value;
	}
	meta->n_metrics = (int)msg->n_metrics;
	return 0;
}

int
ctr_io_unpack(struct ctr **out, struct ctr_meta *meta, const uint8_t *buf,
    size_t len, char *err, size_t errlen)
{
	Dccl__Model *msg = NULL;
	int rc;

	*out = NULL;
	if (err != NULL && errlen > 0)
		err[0] = '\0';
	if (len > CTR_IO_MAX_BYTES)
		return fail(CTR_IO_ETOOBIG, err, errlen, "%zu bytes", len);
	if (buf == NULL || len == 0)
		return fail(CTR_IO_EUNPACK, err, errlen, "empty input");
	if ((msg = dccl__model__unpack(NULL, len, buf)) == NULL)
		return fail(CTR_IO_EUNPACK, err, errlen, "%zu bytes", len);
	rc = ctr_io_unpack_msg(out, meta, msg, len, 1, err, errlen);
	dccl__model__free_unpacked(msg, NULL);
	return rc;
}

int
ctr_io_unpack_msg(struct ctr **out, struct ctr_meta *meta,
    const Dccl__Model *msg, size_t len, int verify, char *err, size_t errlen)
{
	struct ctr_config cfg;
	struct ctr_meta tmp;
	struct ctr *m = NULL;
	uint8_t sum[CTR_IO_CHECKSUM_LEN];
	int map[CTR_MAX_TENSORS];
	int rc;

	*out = NULL;
	if (msg->format != CTR_IO_FORMAT && msg->format != CTR_IO_FORMAT_2 &&
	    msg->format != CTR_IO_FORMAT_3) {
		rc = fail(CTR_IO_EFORMAT, err, errlen, "format %u", msg->format);
		goto fail;
	}
	if (msg->kind == NULL || strcmp(msg->kind, CTR_IO_KIND) != 0) {
		rc = fail(CTR_IO_EKIND, err, errlen, "kind '%.32s'",
		    msg->kind ? msg->kind : "");
		goto fail;
	}
	if ((rc = config_from_msg(&cfg, msg->config, msg->format, err,
	    errlen)) != 0)
		goto fail;
	if (msg->user_rows == CTR_IO_ROWS_SLICE) {
		cfg.sliced = 1;
		cfg.slice_user = msg->slice_user;
	} else if (msg->user_rows != CTR_IO_ROWS_ALL) {
		/* a shared part is read with its rows by ctr_slice_assemble */
		rc = fail(CTR_IO_EFORMAT, err, errlen, "user_rows %u%s",
		    msg->user_rows, msg->user_rows == CTR_IO_ROWS_SHARED ?
		    " (a shared part without its user's rows)" : "");
		goto fail;
	}
	if ((rc = meta_from_msg(&tmp, msg, err, errlen)) != 0)
		goto fail;
	if (verify && msg->checksum.len != CTR_IO_CHECKSUM_LEN) {
		rc = fail(CTR_IO_ECHECKSUM, err, errlen, "checksum is %zu bytes",
		    msg->checksum.len);
		goto fail;
	}
	/*
	 * The config is bounded now, and a valid message carries every
	 * parameter it declares (4 bytes each), so building the model (the
	 * reference layout for the tensor checks) may cost at most about
	 * the message itself: a few bytes declaring 2^28 parameters are
	 * refused before anything is allocated.
	 */
	if (ctr_config_num_params(&cfg) > 2 * (len / sizeof(float)) + 65536) {
		rc = fail(CTR_IO_ETOOBIG, err, errlen, "config declares %zu "
		    "parameters in a %zu-byte model", ctr_config_num_params(
		    &cfg), len);
		goto fail;
	}
	if ((rc = ctr_new_zero(&m, &cfg)) != 0) {	/* check_tensors: all */
		rc = fail(CTR_IO_ECONFIG, err, errlen, "rejected by ctr_new");
		goto fail;
	}
	if ((rc = check_tensors(m, msg, map, err, errlen)) != 0)
		goto fail_model;
	for (int i = 0; i < ctr_num_tensors(m); i++) {
		const struct param_tensor *t = ctr_tensor_at(m, i);
		if (t->n > 0)
			memcpy(t->data, msg->tensors[map[i]]->data,
			    t->n * sizeof(float));
	}
	ctr_io_checksum(m, sum);
	if (verify && sodium_memcmp(sum, msg->checksum.data, sizeof(sum)) !=
	    0) {
		rc = fail(CTR_IO_ECHECKSUM, err, errlen, "data or config "
		    "altered");
		goto fail_model;
	}
	if (meta != NULL)
		*meta = tmp;
	*out = m;
	return 0;

fail_model:
	ctr_free(m);
fail:
	return rc;
}

/* ---- MetaPatch tensors ---------------------------------------------------- */

static float *
patch_row(const struct ctr *m, int l, uint32_t user)
{
	char nm[24];
	const struct param_tensor *t;

	snprintf(nm, sizeof(nm), "patch_m%d", l);
	if ((t = ctr_tensor_find(m, nm)) == NULL)
		return NULL;
	return t->data + (size_t)ctr_config_user_row(ctr_config(m), user) *
	    t->shape[1];
}

static int
has_patch(const struct ctr *m)
{
	const struct ctr_config *c = ctr_config(m);

	return c->patch_rank > 0 && c->n_hidden > 0;
}

int
ctr_io_patch_get(const struct ctr *m, uint32_t user, Dccl__Tensor ***t,
    size_t *n)
{
	const struct ctr_config *c = ctr_config(m);
	int L = c->n_hidden, R = c->patch_rank;

	*t = NULL;
	*n = 0;
	if (!has_patch(m))
		return CTR_IO_ENOPATCH;
	*t = xcalloc((size_t)L, sizeof(**t));
	for (int l = 0; l < L; l++) {
		Dccl__Tensor *x = xmalloc(sizeof(*x));
		dccl__tensor__init(x);
		x->name = xmalloc(24);
		snprintf(x->name, 24, "patch_m%d", l);
		x->n_shape = 1;
		x->shape = xmalloc(sizeof(uint32_t));
		x->shape[0] = (uint32_t)R;
		x->n_data = (size_t)R;
		x->data = xmalloc((size_t)R * sizeof(float));
		memcpy(x->data, patch_row(m, l, user), (size_t)R * sizeof(float));
		(*t)[l] = x;
	}
	*n = (size_t)L;
	return 0;
}

void
ctr_io_tensors_free(Dccl__Tensor **t, size_t n)
{
	if (t == NULL)
		return;
	for (size_t i = 0; i < n; i++) {
		if (t[i] == NULL)
			continue;
		free(t[i]->name);
		free(t[i]->shape);
		free(t[i]->data);
		free(t[i]);
	}
	free(t);
}

int
ctr_io_patch_put(struct ctr *m, uint32_t user, Dccl__Tensor *const *t,
    size_t n)
{
	const struct ctr_config *c = ctr_config(m);
	int L = c->n_hidden, R = c->patch_rank;
	int map[CTR_MAX_LAYERS];

	if (!has_patch(m))
		return CTR_IO_ENOPATCH;
	for (int l = 0; l < L; l++)
		map[l] = -1;
	if (n > (size_t)L)
		return CTR_IO_EUNKNOWN;
	for (size_t j = 0; j < n; j++) {
		const Dccl__Tensor *x = t[j];
		int l;
		if (x == NULL || x->name == NULL ||
		    strncmp(x->name, "patch_m", 7) != 0 ||
		    x->name[7] < '0' || x->name[7] >= '0' + L ||
		    x->name[8] != '\0')
			return CTR_IO_EUNKNOWN;
		l = x->name[7] - '0';
		if (map[l] >= 0)
			return CTR_IO_EUNKNOWN;
		map[l] = (int)j;
		if (x->n_shape != 1 || x->shape[0] != (uint32_t)R ||
		    x->n_data != (size_t)R)
			return CTR_IO_ESHAPE;
		if (!kern_finite(x->data, x->n_data))
			return CTR_IO_ENONFINITE;
	}
	for (int l = 0; l < L; l++)
		if (map[l] < 0)
			return CTR_IO_EMISSING;
	for (int l = 0; l < L; l++)
		memcpy(patch_row(m, l, user), t[map[l]]->data,
		    (size_t)R * sizeof(float));
	return 0;
}
