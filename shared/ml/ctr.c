/*
 * ctr: the CTR model (see ctr.h for the architecture and the API contract).
 *
 * DESIGN. All parameters are one float buffer carved into named tensors in a
 * fixed order (the order ctr_io serialises; the table, its optimisers and
 * the epoch loop are param.c and fit.c), gradients a second buffer with
 * the same layout, so SGD/Adam over dense tensors is one loop and clone or
 * best-params snapshots are one memcpy. Embedding tables and the MetaPatch m
 * tables are row-sparse: backward records touched rows (struct kern_rows),
 * zero_grad and step visit only those, so a step costs O(batch), not
 * O(table). Activations are scratch owned by the model, grown on demand to
 * the largest batch seen.
 *
 * Input layout (B, C0): [user | item | genre bag | hour | wday | behaviour |
 * side 0 .. side n_side-1 | pairwise dots (interaction only)], each field D
 * wide, F = 6 + n_side fields. The dots join the MLP input (and, with
 * CTR_INTER_FM, a weighted sum of them the logit, beside the per-user
 * bias) so that MetaPatch and the output layer keep their shapes.
 * Layer l: pre = x W^T + b, act = relu(pre), hout = act + U diag(m) V act
 * (or act when R = 0); logits = hout_last w_out^T + b_out.
 *
 * Threads: one thread per model at a time (scratch buffers); const
 * functions only read.
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#ifdef __SSE2__
#include <emmintrin.h>
#endif

#include "shared/ml/ctr.h"
#include "shared/ml/fit.h"
#include "shared/ml/gemm.h"
#include "shared/ml/kern.h"
#include "shared/ml/metapatch.h"
#include "shared/ml/param.h"
#include "shared/rng.h"
#include "shared/xmalloc.h"

#define PRED_BATCH	256
#define EMB_INIT_STD	0.05

enum { T_USER = 0, T_ITEM, T_GENRE, T_HOUR, T_WDAY, T_FIRST_MLP };

struct ctr {
	struct ctr_config cfg;
	int		 C0;		/* MLP input: F*D (+ F(F-1)/2) */
	int		 F;		/* fields: CTR_N_FIELDS + n_side */
	int		 P;		/* pairwise dots, 0 without interaction */
	int		 L;		/* hidden layers */
	int		 R;		/* patch rank */
	struct param_table p;	/* over t and rows */
	struct param_tensor t[CTR_MAX_TENSORS];
	int		 ti_w[CTR_MAX_LAYERS], ti_b[CTR_MAX_LAYERS];
	int		 ti_ow, ti_ob;
	int		 ti_pu[CTR_MAX_LAYERS], ti_pv[CTR_MAX_LAYERS];
	int		 ti_pm[CTR_MAX_LAYERS];
	int		 ti_pb;		/* per-user logit bias, -1 = none */
	int		 ti_side[SAMPLE_SIDE_MAX];
	int		 ti_att;	/* attention W, -1 = none */
	int		 ti_fm;		/* FM pair weights, -1 = none */
	int		 ti_prior;	/* fixed item logit offset, -1 = none */
	struct kern_rows rows[CTR_MAX_TENSORS];	/* sparse tensors only */
	/*
	 * Change tracking (ctr_track): 0 off, 1 on, 2 on but everything
	 * may have changed; the rows each sparse tensor's steps wrote, and
	 * which dense tensors they wrote.
	 */
	int		 track;
	struct kern_rows chg[CTR_MAX_TENSORS];
	unsigned char	 chg_dense[CTR_MAX_TENSORS];
	struct ctr	*base;		/* a view's (ctr_view): whose shared
					   tensors it reads; NULL otherwise */
	atomic_int	 refs;		/* 1 + the views reading this model */

	/* scratch, sized for cap rows */
	int		 cap;
	int		 B;		/* batch of the last forward, 0 = none */
	int		 trunk_fwd;	/* it was ctr_forward_trunk */
	int		 dense_clean;	/* dense grads are zero since zero_grad
					   (a device's m or bias training
					   writes none: 100 KiB a step less) */
	float		*act;		/* one block for the float buffers */
	float		*x0, *dx0;	/* (B,C0) */
	float		*pre[CTR_MAX_LAYERS], *relu[CTR_MAX_LAYERS];
	float		*pt[CTR_MAX_LAYERS], *pout[CTR_MAX_LAYERS];
	float		*dpre[CTR_MAX_LAYERS], *drelu[CTR_MAX_LAYERS];
	float		*dpout[CTR_MAX_LAYERS];
	float		*logit, *dlogit, *y;	/* (B) */
	float		*attu, *attw;	/* (B,D) W t; (B*K) weights */
	uint32_t	*ids;		/* one block for the id buffers */
	uint32_t	*uid, *iid, *hid, *wid;	/* (B) */
	uint32_t	*gid, *goff;	/* (B*NG), (B+1) */
	uint32_t	*bid, *boff;	/* (B*K), (B+1) */
	uint32_t	*sid;		/* (n_side,B) side rows, field-major */
};

void
ctr_opt_default(struct ctr_opt *o, enum ctr_optim kind, float lr)
{
	o->kind = kind;
	o->lr = lr;
	o->beta1 = 0.9f;
	o->beta2 = 0.999f;
	o->eps = 1e-8f;
	o->wd = 0.0f;
}

void
ctr_train_opts_default(struct ctr_train_opts *o)
{
	memset(o, 0, sizeof(*o));
	ctr_opt_default(&o->opt, CTR_OPT_ADAM, 1e-3f);
	o->sel = CTR_SEL_ALL;
	o->epochs = 1;
	o->batch = 256;
	o->patience = 0;
	o->seed = 1;
}

/* ---- layout ---------------------------------------------------------------- */

/*
 * Walks the tensor layout of cfg. With m != NULL it also fills m->t and the
 * index tables; the data/grad pointers are set later. Returns the total
 * parameter count, computed in size_t with each factor already bounded.
 */
static size_t
layout(const struct ctr_config *cfg, struct ctr *m)
{
	size_t total = 0;
	int nt = 0, D = cfg->dim, R = cfg->patch_rank, L = cfg->n_hidden;
	int C = ctr_config_input_dim(cfg);

#define ADD(nm, r, c, nd, sp, k)					\
	param_add(m != NULL ? m->t : NULL, &nt, &total, (nm), (size_t)(r), \
	    (size_t)(c), (nd), (sp), (k), -1)

	ADD("emb_user", ctr_config_user_rows(cfg), D, 2, 1, CTR_T_BASE);
	ADD("emb_item", (size_t)cfg->n_items + 1, D, 2, 1, CTR_T_BASE);
	ADD("emb_genre", cfg->n_genres, D, 2, 1, CTR_T_BASE);
	ADD("emb_hour", SAMPLE_N_HOURS, D, 2, 1, CTR_T_BASE);
	ADD("emb_wday", SAMPLE_N_WDAYS, D, 2, 1, CTR_T_BASE);
	for (uint32_t f = 0; f < cfg->n_side; f++) {
		char nm[24];
		snprintf(nm, sizeof(nm), "emb_side%u", f);
		if (m != NULL)
			m->ti_side[f] = nt;
		ADD(nm, (size_t)cfg->side_card[f] + 1, D, 2, 1, CTR_T_BASE);
	}
	if (m != NULL)
		m->ti_att = cfg->attention ? nt : -1;
	if (cfg->attention)
		ADD("att_w", D, D, 2, 0, CTR_T_BASE);
	if (m != NULL)
		m->ti_prior = cfg->item_prior ? nt : -1;
	if (cfg->item_prior)
		ADD("item_prior", (size_t)cfg->n_items + 1, 1, 1, 0,
		    CTR_T_FIXED);
	if (m != NULL)
		m->ti_fm = cfg->interaction == CTR_INTER_FM ? nt : -1;
	if (cfg->interaction == CTR_INTER_FM) {
		int F = CTR_N_FIELDS + (int)cfg->n_side;
		ADD("fm_w", F * (F - 1) / 2, 1, 1, 0, CTR_T_BASE);
	}
	for (int l = 0; l < L; l++) {
		char nm[24];
		int H = cfg->hidden[l];
		snprintf(nm, sizeof(nm), "mlp%d_w", l);
		if (m != NULL)
			m->ti_w[l] = nt;
		ADD(nm, H, C, 2, 0, CTR_T_BASE);
		snprintf(nm, sizeof(nm), "mlp%d_b", l);
		if (m != NULL)
			m->ti_b[l] = nt;
		ADD(nm, H, 1, 1, 0, CTR_T_BASE);
		C = H;
	}
	if (m != NULL)
		m->ti_ow = nt;
	ADD("out_w", 1, C, 2, 0, CTR_T_BASE);
	if (m != NULL)
		m->ti_ob = nt;
	ADD("out_b", 1, 1, 1, 0, CTR_T_BASE);
	for (int l = 0; R > 0 && l < L; l++) {
		char nm[24];
		int H = cfg->hidden[l];
		snprintf(nm, sizeof(nm), "patch_u%d", l);
		if (m != NULL)
			m->ti_pu[l] = nt;
		ADD(nm, H, R, 2, 0, CTR_T_PATCH_UV);
		snprintf(nm, sizeof(nm), "patch_v%d", l);
		if (m != NULL)
			m->ti_pv[l] = nt;
		ADD(nm, R, H, 2, 0, CTR_T_PATCH_UV);
		snprintf(nm, sizeof(nm), "patch_m%d", l);
		if (m != NULL)
			m->ti_pm[l] = nt;
		ADD(nm, ctr_config_user_rows(cfg), R, 2, 1, CTR_T_PATCH_M);
	}
	if (m != NULL)
		m->ti_pb = R > 0 && L > 0 ? nt : -1;
	/*
	 * A per-user logit bias beside the patch: a user's rate shift is a
	 * bias, and through U diag(m) V h alone it would reorder items too.
	 */
	if (R > 0 && L > 0)
		ADD("patch_b", ctr_config_user_rows(cfg), 1, 2, 1,
		    CTR_T_PATCH_B);
#undef ADD
	if (m != NULL)
		m->p.n_tensors = nt;
	return total;
}

int
ctr_config_input_dim(const struct ctr_config *cfg)
{
	int F = CTR_N_FIELDS + (int)cfg->n_side;

	return F * cfg->dim + (cfg->interaction ? F * (F - 1) / 2 : 0);
}

size_t
ctr_config_user_rows(const struct ctr_config *cfg)
{
	return cfg->sliced ? 2 : (size_t)cfg->n_users + 1;
}

uint32_t
ctr_config_user_row(const struct ctr_config *cfg, uint32_t id)
{
	if (cfg->sliced)
		return id == cfg->slice_user && id < cfg->n_users ? 0 : 1;
	return id < cfg->n_users ? id : cfg->n_users;
}

int
ctr_config_check(const struct ctr_config *cfg)
{
	if (cfg == NULL)
		return -EINVAL;
	if (cfg->interaction < CTR_INTER_OFF ||
	    cfg->interaction > CTR_INTER_FM ||
	    (cfg->attention != 0 && cfg->attention != 1) ||
	    (cfg->item_prior != 0 && cfg->item_prior != 1) ||
	    (cfg->sliced != 0 && cfg->sliced != 1) ||
	    cfg->n_side > SAMPLE_SIDE_MAX)
		return -EINVAL;
	for (uint32_t f = 0; f < cfg->n_side; f++)
		if (cfg->side_card[f] > CTR_MAX_SIDE_CARD)
			return -EINVAL;
	if (cfg->n_users > CTR_MAX_USERS || cfg->n_items > CTR_MAX_ITEMS ||
	    cfg->n_genres > SAMPLE_GENRES_MAX)
		return -EINVAL;
	if (cfg->dim < 1 || cfg->dim > CTR_MAX_DIM)
		return -EINVAL;
	if (cfg->hist_k < 0 || cfg->hist_k > SAMPLE_HIST_MAX)
		return -EINVAL;
	if (cfg->n_hidden < 0 || cfg->n_hidden > CTR_MAX_LAYERS)
		return -EINVAL;
	for (int l = 0; l < cfg->n_hidden; l++)
		if (cfg->hidden[l] < 1 || cfg->hidden[l] > CTR_MAX_HIDDEN)
			return -EINVAL;
	if (cfg->patch_rank < 0 || cfg->patch_rank > CTR_MAX_RANK ||
	    cfg->patch_rank > KERN_RANK_MAX)
		return -EINVAL;
	/* Each factor is bounded above, so this cannot overflow size_t. */
	if (layout(cfg, NULL) > CTR_MAX_PARAMS)
		return -EINVAL;
	return 0;
}

size_t
ctr_config_num_params(const struct ctr_config *cfg)
{
	return layout(cfg, NULL);
}

/* A model of cfg with its layout walked and nothing allocated. */
static struct ctr *
ctr_shape(const struct ctr_config *cfg)
{
	struct ctr *m = xcalloc(1, sizeof(*m));

	m->cfg = *cfg;
	/* unused hidden[] slots are 0, so configs compare with memcmp */
	for (int l = cfg->n_hidden; l < CTR_MAX_LAYERS; l++)
		m->cfg.hidden[l] = 0;
	for (uint32_t f = cfg->n_side; f < SAMPLE_SIDE_MAX; f++)
		m->cfg.side_card[f] = 0;
	m->F = CTR_N_FIELDS + (int)cfg->n_side;
	m->P = cfg->interaction ? m->F * (m->F - 1) / 2 : 0;
	m->C0 = ctr_config_input_dim(cfg);
	m->L = cfg->n_hidden;
	m->R = cfg->n_hidden > 0 ? cfg->patch_rank : 0;
	atomic_init(&m->refs, 1);
	layout(cfg, m);
	return m;
}

/* Allocates everything but the scratch; params and grads are zero. */
static struct ctr *
ctr_alloc(const struct ctr_config *cfg)
{
	struct ctr *m = ctr_shape(cfg);

	param_alloc(&m->p, m->t, m->p.n_tensors, m->rows);
	return m;
}

/* ---- views ----------------------------------------------------------------- */

/* Tensor i of a view is its own (a per-user table), not base's. */
static int
view_owns(const struct ctr *m, int i)
{
	return i == T_USER || m->t[i].kind == CTR_T_PATCH_M ||
	    m->t[i].kind == CTR_T_PATCH_B;
}

int
ctr_view(struct ctr **out, struct ctr *base, const struct ctr_config *cfg,
    const struct ctr *own)
{
	struct ctr_config a = *cfg, b = base->cfg;
	float *shared[CTR_MAX_TENSORS];
	struct ctr *m;

	*out = NULL;
	for (int l = a.n_hidden; l >= 0 && l < CTR_MAX_LAYERS; l++)
		a.hidden[l] = 0;	/* as ctr_shape keeps them */
	for (uint32_t f = a.n_side; f < SAMPLE_SIDE_MAX; f++)
		a.side_card[f] = 0;
	a.slice_user = b.slice_user = 0;
	if (base->base != NULL || memcmp(&a, &b, sizeof(a)) != 0 ||
	    (own != NULL && memcmp(cfg, &own->cfg, sizeof(*cfg)) != 0))
		return -EINVAL;
	m = ctr_shape(cfg);
	for (int i = 0; i < m->p.n_tensors; i++)
		shared[i] = view_owns(m, i) ? NULL : base->t[i].data;
	param_alloc_view(&m->p, m->t, m->p.n_tensors, m->rows, shared);
	if (own == NULL)
		own = base;
	for (int i = 0; i < m->p.n_tensors; i++)
		if (view_owns(m, i))
			memcpy(m->t[i].data, own->t[i].data,
			    m->t[i].n * sizeof(float));
	atomic_fetch_add(&base->refs, 1);
	m->base = base;
	*out = m;
	return 0;
}

const struct ctr *
ctr_view_base(const struct ctr *m)
{
	return m->base;
}

struct ctr *
ctr_view_of(const struct ctr *m)
{
	/* the reference count is the only thing of base a view changes */
	struct ctr *base = m->base != NULL ? m->base : (struct ctr *)m;
	struct ctr *v;

	return ctr_view(&v, base, &m->cfg, m) == 0 ? v : ctr_clone(m);
}

/* Copy on write: the view gets its own copy of every parameter. */
static void
view_own(struct ctr *m)
{
	if (m->base == NULL)
		return;
	param_own(&m->p);
	ctr_free(m->base);
	m->base = NULL;
}

/* ... before writing the tensors sel trains, if a shared one is among them. */
static void
view_own_sel(struct ctr *m, enum ctr_sel sel)
{
	if (ctr_sel_trains(sel, CTR_T_BASE) ||
	    ctr_sel_trains(sel, CTR_T_PATCH_UV))
		view_own(m);
}

/* dst's parameters = src's, tensor by tensor (either may be a view). */
static void
copy_data(struct ctr *dst, const struct ctr *src)
{
	for (int i = 0; i < src->p.n_tensors; i++)
		memcpy(dst->t[i].data, src->t[i].data,
		    src->t[i].n * sizeof(float));
}

int
ctr_new_zero(struct ctr **out, const struct ctr_config *cfg)
{
	int rc;

	*out = NULL;
	if ((rc = ctr_config_check(cfg)) != 0)
		return rc;
	*out = ctr_alloc(cfg);
	return 0;
}

int
ctr_new(struct ctr **out, const struct ctr_config *cfg, uint64_t seed)
{
	struct ctr *m;
	struct rng rng;
	int rc, D;

	*out = NULL;
	if ((rc = ctr_config_check(cfg)) != 0)
		return rc;
	m = ctr_alloc(cfg);
	D = cfg->dim;
	rng_seed(&rng, seed);
	for (int i = T_USER; i <= T_WDAY; i++)
		param_fill_normal(m->t[i].data, m->t[i].n, EMB_INIT_STD, &rng);
	/* OOV rows start at zero: an unknown id contributes nothing. */
	memset(m->t[T_USER].data +
	    (size_t)ctr_config_user_row(cfg, cfg->n_users) * D, 0,
	    (size_t)D * sizeof(float));
	memset(m->t[T_ITEM].data + (size_t)cfg->n_items * D, 0,
	    (size_t)D * sizeof(float));
	for (uint32_t f = 0; f < cfg->n_side; f++) {
		struct param_tensor *t = &m->t[m->ti_side[f]];
		param_fill_normal(t->data, t->n, EMB_INIT_STD, &rng);
		memset(t->data + (size_t)cfg->side_card[f] * D, 0,
		    (size_t)D * sizeof(float));
	}
	/* att_w stays 0: attention starts as the mean pooling. */
	if (m->ti_fm >= 0)	/* FM starts as the plain sum of the dots */
		for (size_t p = 0; p < m->t[m->ti_fm].n; p++)
			m->t[m->ti_fm].data[p] = 1.0f;
	for (int l = 0; l <= m->L; l++) {
		int tw = l < m->L ? m->ti_w[l] : m->ti_ow;
		int tb = l < m->L ? m->ti_b[l] : m->ti_ob;
		double a = 1.0 / sqrt((double)m->t[tw].shape[1]);
		param_fill_unif(m->t[tw].data, m->t[tw].n, a, &rng);
		param_fill_unif(m->t[tb].data, m->t[tb].n, a, &rng);
	}
	for (int l = 0; m->R > 0 && l < m->L; l++) {
		int H = cfg->hidden[l];
		param_fill_normal(m->t[m->ti_pu[l]].data, m->t[m->ti_pu[l]].n,
		    1.0 / sqrt((double)m->R), &rng);
		param_fill_normal(m->t[m->ti_pv[l]].data, m->t[m->ti_pv[l]].n,
		    1.0 / sqrt((double)H), &rng);
		/* patch_m stays 0: the patch starts as the identity. */
	}
	*out = m;
	return 0;
}

void
ctr_free(struct ctr *m)
{
	struct ctr *base;

	if (m == NULL || atomic_fetch_sub(&m->refs, 1) > 1)
		return;		/* views still read it */
	base = m->base;
	ctr_untrack(m);
	param_free(&m->p);
	free(m->act);
	free(m->ids);
	free(m);
	ctr_free(base);
}

struct ctr *
ctr_clone(const struct ctr *m)
{
	struct ctr *c = ctr_shape(&m->cfg);

	/* copy_data writes every parameter: no zeroing first */
	param_alloc_raw(&c->p, c->t, c->p.n_tensors, c->rows);
	copy_data(c, m);
	param_copy_adam(&c->p, &m->p);
	return c;
}

int
ctr_logit_affine(struct ctr *m, double a, double b)
{
	int ts[4] = { m->ti_ow, m->ti_fm, m->ti_pb, m->ti_prior };

	if (!(a > 0) || m->base != NULL)
		return -EINVAL;
	for (int i = 0; i < 4; i++) {
		struct param_tensor *t = ts[i] >= 0 ? &m->t[ts[i]] : NULL;

		for (size_t k = 0; t != NULL && k < t->n; k++)
			t->data[k] = (float)(a * t->data[k]);
	}
	m->t[m->ti_ob].data[0] = (float)(a * m->t[m->ti_ob].data[0] + b);
	ctr_track_all(m);
	return 0;
}

int
ctr_copy_params(struct ctr *dst, const struct ctr *src)
{
	if (memcmp(&dst->cfg, &src->cfg, sizeof(dst->cfg)) != 0)
		return -EINVAL;
	view_own(dst);
	copy_data(dst, src);
	ctr_track_all(dst);
	return 0;
}

int
ctr_copy_params_sel(struct ctr *dst, const struct ctr *src, enum ctr_sel sel)
{
	if (memcmp(&dst->cfg, &src->cfg, sizeof(dst->cfg)) != 0)
		return -EINVAL;
	view_own_sel(dst, sel);
	for (int i = 0; i < src->p.n_tensors; i++)
		if (ctr_sel_trains(sel, src->t[i].kind))
			memcpy(dst->t[i].data, src->t[i].data,
			    src->t[i].n * sizeof(float));
	ctr_track_all(dst);
	return 0;
}

/*
 * Up to this size ctr_track does nothing and a revert copies the tensors
 * it is told may have changed: they stream through the cache at little
 * cost and leave the rows the next path gathers warm, where recording
 * rows made ml-latest-small's 0.8 MiB model's job 2-4 % slower.
 */
#define CTR_TRACK_MIN	(2u << 20)

/* Empties every change set: m equals its source now. */
static void
track_clear(struct ctr *m)
{
	for (int i = 0; i < m->p.n_tensors; i++) {
		if (m->t[i].sparse)
			kern_rows_clear(&m->chg[i], NULL, 0);
		m->chg_dense[i] = 0;
	}
	m->track = 1;
}

void
ctr_track(struct ctr *m)
{
	if (ctr_num_params(m) * sizeof(float) <= CTR_TRACK_MIN)
		return;
	if (m->track == 0)
		param_rows_alloc(m->t, m->p.n_tensors, m->chg);
	track_clear(m);
}

void
ctr_untrack(struct ctr *m)
{
	if (m->track)
		param_rows_free(m->t, m->p.n_tensors, m->chg);
	m->track = 0;
}

void
ctr_track_all(struct ctr *m)
{
	if (m->track)
		m->track = 2;
}

/* Records what a step of sel writes (ctr_step, before it runs). */
static void
track_step(struct ctr *m, enum ctr_sel sel)
{
	if (m->track != 1)
		return;
	for (int i = 0; i < m->p.n_tensors; i++) {
		if (!ctr_sel_trains(sel, m->t[i].kind))
			continue;
		if (m->t[i].sparse)
			kern_rows_add(&m->chg[i], m->rows[i].list,
			    m->rows[i].n);
		else
			m->chg_dense[i] = 1;
	}
}

int
ctr_revert(struct ctr *m, const struct ctr *src, enum ctr_sel sel)
{
	if (memcmp(&m->cfg, &src->cfg, sizeof(m->cfg)) != 0)
		return -EINVAL;
	if (m->track == 0)
		return ctr_copy_params_sel(m, src, sel);
	view_own(m);
	if (m->track == 2) {	/* written otherwise: anything may differ */
		copy_data(m, src);
		track_clear(m);
		return 0;
	}
	for (int i = 0; i < m->p.n_tensors; i++) {
		const struct param_tensor *ts = &src->t[i];
		struct param_tensor *t = &m->t[i];
		struct kern_rows *r = &m->chg[i];

		if (t->sparse) {
			size_t D = t->shape[1];
			for (uint32_t k = 0; k < r->n; k++)
				memcpy(t->data + (size_t)r->list[k] * D,
				    ts->data + (size_t)r->list[k] * D,
				    D * sizeof(float));
		} else if (m->chg_dense[i])
			memcpy(t->data, ts->data, t->n * sizeof(float));
	}
	track_clear(m);
	return 0;
}

const struct ctr_config *
ctr_config(const struct ctr *m)
{
	return &m->cfg;
}

size_t
ctr_num_params(const struct ctr *m)
{
	return m->p.n_params;
}

float *
ctr_params(const struct ctr *m)
{
	return m->base != NULL ? NULL : m->p.params;
}

int
ctr_num_tensors(const struct ctr *m)
{
	return m->p.n_tensors;
}

const struct param_tensor *
ctr_tensor_at(const struct ctr *m, int i)
{
	return param_at(&m->p, i);
}

const struct param_tensor *
ctr_tensor_find(const struct ctr *m, const char *name)
{
	return param_find(&m->p, name);
}

/* ---- scratch ------------------------------------------------------------- */

static void
scratch_reserve(struct ctr *m, int B)
{
	size_t nf = 0, ni = 0, b = (size_t)B;
	int NG = (int)m->cfg.n_genres, K = m->cfg.hist_k;
	float *f;
	uint32_t *u;

	if (B <= m->cap)
		return;
	nf += 2 * b * m->C0;
	for (int l = 0; l < m->L; l++)
		nf += b * (6 * (size_t)m->cfg.hidden[l] + m->R);
	nf += 3 * b;
	if (m->ti_att >= 0)
		nf += b * (size_t)m->cfg.dim + b * K;
	ni = 4 * b + b * NG + (b + 1) + b * K + (b + 1) + b * m->cfg.n_side;

	free(m->act);
	free(m->ids);
	m->act = f = xcalloc(nf, sizeof(float));
	m->ids = u = xcalloc(ni, sizeof(uint32_t));
#define CARVE(p, base, n) do { (p) = (base); (base) += (n); } while (0)
	CARVE(m->x0, f, b * m->C0);
	CARVE(m->dx0, f, b * m->C0);
	for (int l = 0; l < m->L; l++) {
		size_t H = (size_t)m->cfg.hidden[l];
		CARVE(m->pre[l], f, b * H);
		CARVE(m->relu[l], f, b * H);
		CARVE(m->pout[l], f, b * H);
		CARVE(m->dpre[l], f, b * H);
		CARVE(m->drelu[l], f, b * H);
		CARVE(m->dpout[l], f, b * H);
		CARVE(m->pt[l], f, b * m->R);
	}
	CARVE(m->logit, f, b);
	CARVE(m->dlogit, f, b);
	CARVE(m->y, f, b);
	if (m->ti_att >= 0) {
		CARVE(m->attu, f, b * m->cfg.dim);
		CARVE(m->attw, f, b * K);
	}
	CARVE(m->uid, u, b);
	CARVE(m->iid, u, b);
	CARVE(m->hid, u, b);
	CARVE(m->wid, u, b);
	CARVE(m->gid, u, b * NG);
	CARVE(m->goff, u, b + 1);
	CARVE(m->bid, u, b * K);
	CARVE(m->boff, u, b + 1);
	CARVE(m->sid, u, b * m->cfg.n_side);
#undef CARVE
	m->cap = B;
}

/* Output of hidden layer l as the next layer sees it. */
static float *
hout(const struct ctr *m, int l)
{
	return m->R > 0 ? m->pout[l] : m->relu[l];
}

static float *
dhout(const struct ctr *m, int l)
{
	return m->R > 0 ? m->dpout[l] : m->drelu[l];
}

static uint32_t
map_id(uint32_t id, uint32_t n)
{
	return id < n ? id : n;	/* row n is the OOV row */
}

/* A list that runs past ds->hist (a broken dataset) counts as empty. */
const uint32_t *
ctr_behaviour_ids(const struct dataset *ds, const struct sample *s, int K,
    uint32_t *cnt)
{
	uint32_t n = s->hist_n;

	if (ds->hist == NULL || (size_t)s->hist_off + n > ds->hist_len) {
		*cnt = 0;
		return NULL;
	}
	if (n > (uint32_t)K)
		n = (uint32_t)K;
	*cnt = n;
	return ds->hist + s->hist_off + (s->hist_n - n);
}

/* ---- attention and interaction -------------------------------------------- */

/*
 * Target attention: u = W t (t = the row's item field), a = softmax over
 * the row's history items h_j of D (h_j . u), behaviour = sum_j a_j h_j.
 * Keeps u and a for the backward pass. The factor D: Adam moves each entry
 * of W by about lr per step whatever its gradient, and the embeddings are
 * small (std 0.05), so without it the scores stay near 0 and the weights
 * near the mean for the few epochs the cloud trains.
 */
static void
att_forward(struct ctr *m, int B)
{
	int D = m->cfg.dim, C0 = m->C0;
	const float *W = m->t[m->ti_att].data, *E = m->t[T_ITEM].data;

	for (int b = 0; b < B; b++) {
		const float *t = m->x0 + (size_t)b * C0 + D;
		float *beh = m->x0 + (size_t)b * C0 + 5 * D;
		float *u = m->attu + (size_t)b * D;
		uint32_t lo = m->boff[b], cnt = m->boff[b + 1] - lo;
		float *a = m->attw + lo, mx = -INFINITY, sum = 0.0f;

		for (int r = 0; r < D; r++) {
			float acc = 0.0f;
			for (int c = 0; c < D; c++)
				acc += W[(size_t)r * D + c] * t[c];
			u[r] = acc;
		}
		memset(beh, 0, (size_t)D * sizeof(float));
		for (uint32_t j = 0; j < cnt; j++) {
			const float *h = E + (size_t)m->bid[lo + j] * D;
			float sc = 0.0f;
			for (int c = 0; c < D; c++)
				sc += h[c] * u[c];
			sc *= (float)D;
			a[j] = sc;
			if (sc > mx)
				mx = sc;
		}
		for (uint32_t j = 0; j < cnt; j++) {
			a[j] = expf(a[j] - mx);
			sum += a[j];
		}
		for (uint32_t j = 0; j < cnt; j++) {
			const float *h = E + (size_t)m->bid[lo + j] * D;
			a[j] /= sum;
			for (int c = 0; c < D; c++)
				beh[c] += a[j] * h[c];
		}
	}
}

/*
 * Backward of att_forward: from the behaviour slot of dx0 into the item
 * table's history rows, att_w, and the item slot of dx0 (the target, which
 * the caller then scatters with the item field).
 */
static void
att_backward(struct ctr *m, int B)
{
	int D = m->cfg.dim, C0 = m->C0;
	const float *W = m->t[m->ti_att].data, *E = m->t[T_ITEM].data;
	float *gW = m->t[m->ti_att].grad, *gE = m->t[T_ITEM].grad;
	float ga[SAMPLE_HIST_MAX], du[CTR_MAX_DIM];

	for (int b = 0; b < B; b++) {
		const float *t = m->x0 + (size_t)b * C0 + D;
		const float *dbeh = m->dx0 + (size_t)b * C0 + 5 * D;
		const float *u = m->attu + (size_t)b * D;
		float *dt = m->dx0 + (size_t)b * C0 + D;
		uint32_t lo = m->boff[b], cnt = m->boff[b + 1] - lo;
		const float *a = m->attw + lo;
		float abar = 0.0f;

		if (cnt == 0)
			continue;
		for (uint32_t j = 0; j < cnt; j++) {
			const float *h = E + (size_t)m->bid[lo + j] * D;
			float g = 0.0f;
			for (int c = 0; c < D; c++)
				g += dbeh[c] * h[c];
			ga[j] = g;
			abar += a[j] * g;
		}
		memset(du, 0, (size_t)D * sizeof(float));
		for (uint32_t j = 0; j < cnt; j++) {
			const float *h = E + (size_t)m->bid[lo + j] * D;
			float *gh = gE + (size_t)m->bid[lo + j] * D;
			/* d (h_j . u) = D d score_j */
			float gs = (float)D * a[j] * (ga[j] - abar);
			for (int c = 0; c < D; c++) {
				gh[c] += a[j] * dbeh[c] + gs * u[c];
				du[c] += gs * h[c];
			}
		}
		for (int r = 0; r < D; r++)
			for (int c = 0; c < D; c++) {
				gW[(size_t)r * D + c] += du[r] * t[c];
				dt[c] += W[(size_t)r * D + c] * du[r];
			}
	}
}

/* The pairwise dots of the F field vectors, after them in each x0 row. */
static void
dots_forward(struct ctr *m, int B)
{
	int D = m->cfg.dim, F = m->F;

	for (int b = 0; b < B; b++) {
		const float *row = m->x0 + (size_t)b * m->C0;
		float *p = m->x0 + (size_t)b * m->C0 + (size_t)F * D;
		for (int i = 0; i < F; i++)
			for (int j = i + 1; j < F; j++) {
				float acc = 0.0f;
				for (int c = 0; c < D; c++)
					acc += row[i * D + c] * row[j * D + c];
				*p++ = acc;
			}
	}
}

/* Adds the dots' gradients (in dx0) into the field slots of dx0. */
static void
dots_backward(struct ctr *m, int B)
{
	int D = m->cfg.dim, F = m->F;

	for (int b = 0; b < B; b++) {
		const float *row = m->x0 + (size_t)b * m->C0;
		float *drow = m->dx0 + (size_t)b * m->C0;
		const float *g = drow + (size_t)F * D;
		for (int i = 0; i < F; i++)
			for (int j = i + 1; j < F; j++) {
				float gk = *g++;
				int c = 0;
				if (gk == 0.0f)
					continue;
#ifdef __SSE2__
				/* the same operations per element: same bits */
				const __m128 vg = _mm_set1_ps(gk);
				for (; c + 4 <= D; c += 4) {
					float *di = drow + i * D + c;
					float *dj = drow + j * D + c;
					_mm_storeu_ps(di, _mm_add_ps(_mm_loadu_ps(di),
					    _mm_mul_ps(vg, _mm_loadu_ps(row + j * D +
					    c))));
					_mm_storeu_ps(dj, _mm_add_ps(_mm_loadu_ps(dj),
					    _mm_mul_ps(vg, _mm_loadu_ps(row + i * D +
					    c))));
				}
#endif
				for (; c < D; c++) {
					drow[i * D + c] += gk * row[j * D + c];
					drow[j * D + c] += gk * row[i * D + c];
				}
			}
	}
}

/* ---- forward / backward / step ------------------------------------------ */

/*
 * Gathers the ids of ds->s[idx[0..B)] and fills x0 (B,C0), with the
 * attention, side fields and dots the config asks for. Returns 0 or
 * -EINVAL.
 */
static int
gather_embed(struct ctr *m, const struct dataset *ds, const uint32_t *idx,
    int B)
{
	const struct ctr_config *c = &m->cfg;
	int D = c->dim, C0 = m->C0;
	uint32_t ng = 0, nb = 0;

	m->B = 0;
	m->trunk_fwd = 0;
	if (B < 1 || ds == NULL || idx == NULL)
		return -EINVAL;
	for (int b = 0; b < B; b++)
		if (idx[b] >= ds->n)
			return -EINVAL;
	scratch_reserve(m, B);

	/* gather ids */
	m->goff[0] = m->boff[0] = 0;
	for (int b = 0; b < B; b++) {
		const struct sample *s = &ds->s[idx[b]];
		const uint32_t *h;
		uint32_t cnt;

		/*
		 * Shuffled samples and their history lists are cache misses:
		 * ask for a sample 8 rows ahead, for its list 4 rows ahead.
		 */
		if (b + 8 < B)
			__builtin_prefetch(&ds->s[idx[b + 8]]);
		if (b + 4 < B && ds->hist != NULL) {
			const struct sample *s4 = &ds->s[idx[b + 4]];
			if ((size_t)s4->hist_off < ds->hist_len)
				__builtin_prefetch(ds->hist + s4->hist_off);
		}

		m->uid[b] = ctr_config_user_row(c, s->user);
		m->iid[b] = map_id(s->item, c->n_items);
		m->hid[b] = sample_hour(s->ts);
		m->wid[b] = sample_wday(s->ts);
		m->y[b] = s->label;
		for (uint32_t g = 0; g < c->n_genres; g++)
			if (s->genres & (1u << g))
				m->gid[ng++] = g;
		m->goff[b + 1] = ng;
		h = ctr_behaviour_ids(ds, s, c->hist_k, &cnt);
		for (uint32_t j = 0; j < cnt; j++)
			m->bid[nb++] = map_id(h[j], c->n_items);
		m->boff[b + 1] = nb;
		/* a field the data do not have is unknown: the OOV row */
		for (uint32_t f = 0; f < c->n_side; f++)
			m->sid[(size_t)f * B + b] = map_id(f < ds->n_side ?
			    s->side[f] : c->side_card[f], c->side_card[f]);
	}

	/* x0 (B,C0) = [user | item | genre bag | hour | wday | behaviour |
	   sides | dots] */
	embed_forward(m->x0, m->uid, m->t[T_USER].data, B, D, C0);
	embed_forward(m->x0 + D, m->iid, m->t[T_ITEM].data, B, D, C0);
	embed_bag_forward(m->x0 + 2 * D, m->gid, m->goff, m->t[T_GENRE].data,
	    B, D, C0);
	embed_forward(m->x0 + 3 * D, m->hid, m->t[T_HOUR].data, B, D, C0);
	embed_forward(m->x0 + 4 * D, m->wid, m->t[T_WDAY].data, B, D, C0);
	if (m->ti_att >= 0)
		att_forward(m, B);
	else
		embed_bag_forward(m->x0 + 5 * D, m->bid, m->boff,
		    m->t[T_ITEM].data, B, D, C0);
	for (uint32_t f = 0; f < c->n_side; f++)
		embed_forward(m->x0 + (CTR_N_FIELDS + f) * D,
		    m->sid + (size_t)f * B, m->t[m->ti_side[f]].data, B, D, C0);
	if (m->P > 0)
		dots_forward(m, B);
	return 0;
}

/* Row b's FM term (fm_w . dots), from x0; 0 without the fm option. */
static float
fm_term(const struct ctr *m, int b)
{
	const float *d, *r;
	float acc = 0.0f;

	if (m->ti_fm < 0)
		return 0.0f;
	d = m->x0 + (size_t)b * m->C0 + (size_t)m->F * m->cfg.dim;
	r = m->t[m->ti_fm].data;
	for (int p = 0; p < m->P; p++)
		acc += r[p] * d[p];
	return acc;
}

/* The first hidden layer's linear and ReLU, from x0 (L > 0). */
static void
first_layer(struct ctr *m, int B)
{
	linear_forward(m->pre[0], m->x0, m->t[m->ti_w[0]].data,
	    m->t[m->ti_b[0]].data, B, m->C0, m->cfg.hidden[0]);
	relu_forward(m->relu[0], m->pre[0], (size_t)B * m->cfg.hidden[0]);
}

/*
 * The rest of the forward pass once relu[0] holds the first layer's ReLU
 * output (or, with no hidden layer, from x0): the patches, the layers
 * above, the logit, the per-user bias and the FM term (from x0, or from
 * fmt[b] when given: the frozen-trunk path keeps no x0).
 */
static void
forward_rest(struct ctr *m, int B, float *logits, const float *fmt)
{
	const struct ctr_config *c = &m->cfg;
	const float *x = m->x0;
	int C = m->C0;

	for (int l = 0; l < m->L; l++) {
		int H = c->hidden[l];
		if (l > 0) {
			linear_forward(m->pre[l], x, m->t[m->ti_w[l]].data,
			    m->t[m->ti_b[l]].data, B, C, H);
			relu_forward(m->relu[l], m->pre[l], (size_t)B * H);
		}
		if (m->R > 0)
			metapatch_forward(m->pout[l], m->pt[l], m->relu[l],
			    m->t[m->ti_pu[l]].data, m->t[m->ti_pv[l]].data,
			    m->t[m->ti_pm[l]].data, m->uid, B, H, m->R);
		x = hout(m, l);
		C = H;
	}
	linear_forward(m->logit, x, m->t[m->ti_ow].data, m->t[m->ti_ob].data,
	    B, C, 1);
	if (m->ti_pb >= 0)
		for (int b = 0; b < B; b++)
			m->logit[b] += m->t[m->ti_pb].data[m->uid[b]];
	if (m->ti_prior >= 0)	/* fixed: no gradient flows into it */
		for (int b = 0; b < B; b++)
			m->logit[b] += m->t[m->ti_prior].data[m->iid[b]];
	if (m->ti_fm >= 0)
		for (int b = 0; b < B; b++)
			m->logit[b] += fmt != NULL ? fmt[b] : fm_term(m, b);
	if (logits != NULL)
		memcpy(logits, m->logit, (size_t)B * sizeof(float));
	m->B = B;
}

int
ctr_forward(struct ctr *m, const struct dataset *ds, const uint32_t *idx,
    int B, float *logits)
{
	int rc;

	if ((rc = gather_embed(m, ds, idx, B)) != 0)
		return rc;
	if (m->L > 0)
		first_layer(m, B);
	forward_rest(m, B, logits, NULL);
	return 0;
}

/* A trunk row: the first layer's output, then the FM term with fm. */
int
ctr_trunk_dim(const struct ctr *m)
{
	return m->L > 0 ? m->cfg.hidden[0] + (m->ti_fm >= 0) : 0;
}

int
ctr_trunk(struct ctr *m, const struct dataset *ds, const uint32_t *idx,
    size_t n, float *out)
{
	size_t T = (size_t)ctr_trunk_dim(m), H = m->L > 0 ?
	    (size_t)m->cfg.hidden[0] : 0;
	int rc;

	if (T == 0)
		return -EINVAL;
	/*
	 * In batches a training step's product takes (at most GEMM_SMALL
	 * rows, gemm.h), so a row is bit for bit the one ctr_forward
	 * computes: with larger batches cblas_sgemm rounds differently,
	 * and a frozen-trunk path would drift from the whole-model
	 * reference it replaces by an ulp.
	 */
	for (size_t i = 0; i < n; i += GEMM_SMALL) {
		int B = (int)(n - i < GEMM_SMALL ? n - i : GEMM_SMALL);
		if ((rc = gather_embed(m, ds, idx + i, B)) != 0)
			return rc;
		first_layer(m, B);
		for (int b = 0; b < B; b++) {
			float *row = out + (i + (size_t)b) * T;
			memcpy(row, m->relu[0] + (size_t)b * H,
			    H * sizeof(float));
			if (T > H)
				row[H] = fm_term(m, b);
		}
	}
	m->B = 0;
	return 0;
}

int
ctr_forward_trunk(struct ctr *m, const struct dataset *ds,
    const float *trunk, const uint32_t *idx, int B, float *logits)
{
	size_t T = (size_t)ctr_trunk_dim(m), H = m->L > 0 ?
	    (size_t)m->cfg.hidden[0] : 0;

	m->B = 0;
	if (T == 0 || B < 1 || ds == NULL || idx == NULL || trunk == NULL)
		return -EINVAL;
	for (int b = 0; b < B; b++)
		if (idx[b] >= ds->n)
			return -EINVAL;
	scratch_reserve(m, B);
	for (int b = 0; b < B; b++) {
		const struct sample *s = &ds->s[idx[b]];
		m->uid[b] = ctr_config_user_row(&m->cfg, s->user);
		/* forward_rest adds the item prior by item id */
		m->iid[b] = map_id(s->item, m->cfg.n_items);
		m->y[b] = s->label;
		memcpy(m->relu[0] + (size_t)b * H, trunk + (size_t)idx[b] * T,
		    H * sizeof(float));
		/* dlogit is scratch until the backward pass clears it */
		m->dlogit[b] = T > H ? trunk[(size_t)idx[b] * T + H] : 0.0f;
	}
	forward_rest(m, B, logits, m->dlogit);
	m->trunk_fwd = 1;
	return 0;
}

int
ctr_sel_trains(enum ctr_sel sel, enum ctr_tkind k)
{
	switch (sel) {
	case CTR_SEL_ALL:
		return 1;
	case CTR_SEL_METAPATCH_ONLY:
		return k == CTR_T_PATCH_M || k == CTR_T_PATCH_B;
	case CTR_SEL_NO_PATCH:
		return k != CTR_T_PATCH_M && k != CTR_T_PATCH_B;
	case CTR_SEL_BIAS_ONLY:
		return k == CTR_T_PATCH_B;
	case CTR_SEL_PATCH_UV:
		return k == CTR_T_PATCH_UV;
	}
	return 0;
}

void
ctr_release_grads(struct ctr *m)
{
	param_grads_release(&m->p);
}

void
ctr_zero_grad(struct ctr *m)
{
	param_grads_ensure(&m->p);
	param_zero_grad(&m->p, m->dense_clean);
	m->dense_clean = 1;
}

/* Gradient pointer of tensor i if sel trains it, else NULL. */
static float *
gsel(struct ctr *m, int i, enum ctr_sel sel)
{
	return ctr_sel_trains(sel, m->t[i].kind) ? m->t[i].grad : NULL;
}

int
ctr_backward(struct ctr *m, enum ctr_sel sel, const float *y, const float *w,
    const float *off, double *loss)
{
	const struct ctr_config *c = &m->cfg;
	int B = m->B, D = c->dim, C0 = m->C0, L = m->L;
	int base = ctr_sel_trains(sel, CTR_T_BASE);
	int lowest;	/* lowest layer whose input gradient is needed */
	double l;

	if (B < 1)
		return -EINVAL;
	param_grads_ensure(&m->p);
	/* After ctr_forward_trunk only the patches and the bias may train. */
	if (m->trunk_fwd && (base || ctr_sel_trains(sel, CTR_T_PATCH_UV)))
		return -EINVAL;
	if (y == NULL)
		y = m->y;
	if (base || ctr_sel_trains(sel, CTR_T_PATCH_UV))
		m->dense_clean = 0;
	l = bce_logits_forward(NULL, m->logit, y, w, off, B);
	if (loss != NULL)
		*loss = l;
	memset(m->dlogit, 0, (size_t)B * sizeof(float));
	bce_logits_backward(m->dlogit, m->logit, y, w, off, B);

	/*
	 * Gradients flow down only as far as something trainable lies:
	 * the embeddings (base), else the lowest patch (m, U, V), else
	 * the output layer.
	 */
	if (base)
		lowest = -1;
	else if (m->R > 0 && (ctr_sel_trains(sel, CTR_T_PATCH_M) ||
	    ctr_sel_trains(sel, CTR_T_PATCH_UV)))
		lowest = 0;
	else
		lowest = L;

	if (m->ti_pb >= 0 && ctr_sel_trains(sel, CTR_T_PATCH_B)) {
		float *gb = m->t[m->ti_pb].grad;
		for (int b = 0; b < B; b++)
			gb[m->uid[b]] += m->dlogit[b];
		kern_rows_add(&m->rows[m->ti_pb], m->uid, (size_t)B);
	}

	int H = L > 0 ? c->hidden[L - 1] : C0;
	const float *x = L > 0 ? hout(m, L - 1) : m->x0;
	float *dx = L > 0 ? dhout(m, L - 1) : m->dx0;
	if (lowest < L)
		memset(dx, 0, (size_t)B * H * sizeof(float));
	linear_backward(lowest < L ? dx : NULL, gsel(m, m->ti_ow, sel),
	    gsel(m, m->ti_ob, sel), m->dlogit, x, m->t[m->ti_ow].data, B, H, 1);

	for (int k = L - 1; k >= 0 && k >= lowest; k--) {
		int Hk = c->hidden[k];
		int Ck = k > 0 ? c->hidden[k - 1] : C0;
		size_t n = (size_t)B * Hk;
		if (m->R > 0) {
			memset(m->drelu[k], 0, n * sizeof(float));
			metapatch_backward(m->drelu[k],
			    gsel(m, m->ti_pu[k], sel), gsel(m, m->ti_pv[k], sel),
			    gsel(m, m->ti_pm[k], sel), m->dpout[k], m->relu[k],
			    m->pt[k], m->t[m->ti_pu[k]].data,
			    m->t[m->ti_pv[k]].data, m->t[m->ti_pm[k]].data,
			    m->uid, B, Hk, m->R);
			if (ctr_sel_trains(sel, CTR_T_PATCH_M))
				kern_rows_add(&m->rows[m->ti_pm[k]], m->uid,
				    (size_t)B);
		}
		if (k == lowest)
			break;	/* nothing below this patch trains */
		memset(m->dpre[k], 0, n * sizeof(float));
		relu_backward(m->dpre[k], m->drelu[k], m->relu[k], n);
		float *din = k > 0 ? dhout(m, k - 1) : m->dx0;
		int need_din = k - 1 >= lowest;
		if (need_din)
			memset(din, 0, (size_t)B * Ck * sizeof(float));
		linear_backward(need_din ? din : NULL, gsel(m, m->ti_w[k], sel),
		    gsel(m, m->ti_b[k], sel), m->dpre[k],
		    k > 0 ? hout(m, k - 1) : m->x0, m->t[m->ti_w[k]].data, B,
		    Ck, Hk);
	}
	if (!base)
		return 0;

	/* the FM term, the dots, then attention, back into the field slots */
	if (m->ti_fm >= 0)
		for (int b = 0; b < B; b++) {
			const float *d = m->x0 + (size_t)b * C0 +
			    (size_t)m->F * D;
			float *dd = m->dx0 + (size_t)b * C0 + (size_t)m->F * D;
			const float *r = m->t[m->ti_fm].data;
			float *gr = m->t[m->ti_fm].grad;
			for (int p = 0; p < m->P; p++) {
				dd[p] += m->dlogit[b] * r[p];
				gr[p] += m->dlogit[b] * d[p];
			}
		}
	if (m->P > 0)
		dots_backward(m, B);
	if (m->ti_att >= 0)
		att_backward(m, B);

	/* scatter the field slots of dx0 into the embedding tables */
	embed_backward(m->t[T_USER].grad, m->dx0, m->uid, B, D, C0);
	embed_backward(m->t[T_ITEM].grad, m->dx0 + D, m->iid, B, D, C0);
	embed_bag_backward(m->t[T_GENRE].grad, m->dx0 + 2 * D, m->gid,
	    m->goff, B, D, C0);
	embed_backward(m->t[T_HOUR].grad, m->dx0 + 3 * D, m->hid, B, D, C0);
	embed_backward(m->t[T_WDAY].grad, m->dx0 + 4 * D, m->wid, B, D, C0);
	if (m->ti_att < 0)
		embed_bag_backward(m->t[T_ITEM].grad, m->dx0 + 5 * D, m->bid,
		    m->boff, B, D, C0);
	for (uint32_t f = 0; f < c->n_side; f++) {
		int ti = m->ti_side[f];
		embed_backward(m->t[ti].grad, m->dx0 + (CTR_N_FIELDS + f) * D,
		    m->sid + (size_t)f * B, B, D, C0);
		kern_rows_add(&m->rows[ti], m->sid + (size_t)f * B, (size_t)B);
	}
	kern_rows_add(&m->rows[T_USER], m->uid, (size_t)B);
	kern_rows_add(&m->rows[T_ITEM], m->iid, (size_t)B);
	kern_rows_add(&m->rows[T_ITEM], m->bid, m->boff[B]);
	kern_rows_add(&m->rows[T_GENRE], m->gid, m->goff[B]);
	kern_rows_add(&m->rows[T_HOUR], m->hid, (size_t)B);
	kern_rows_add(&m->rows[T_WDAY], m->wid, (size_t)B);
	return 0;
}

/* The set of tensor kinds sel trains, as param_step takes it. */
static unsigned
sel_kinds(enum ctr_sel sel)
{
	unsigned k = 0;

	for (int i = CTR_T_BASE; i <= CTR_T_PATCH_B; i++)
		if (ctr_sel_trains(sel, (enum ctr_tkind)i))
			k |= 1u << i;
	return k;
}

int
ctr_step(struct ctr *m, enum ctr_sel sel, const struct ctr_opt *o)
{
	struct param_opt po;

	if (o == NULL)
		return -EINVAL;
	view_own_sel(m, sel);
	param_grads_ensure(&m->p);
	track_step(m, sel);
	po.kind = o->kind == CTR_OPT_SGD ? PARAM_OPT_SGD :
	    o->kind == CTR_OPT_ADAM ? PARAM_OPT_ADAM : -1;
	po.lr = o->lr;
	po.beta1 = o->beta1;
	po.beta2 = o->beta2;
	po.eps = o->eps;
	po.wd = o->wd;
	return param_step(&m->p, sel_kinds(sel), &po);
}

/* ---- inference ----------------------------------------------------------- */

static int
run_batched(struct ctr *m, const struct dataset *ds, const uint32_t *idx,
    size_t n, float *out, int prob)
{
	int rc;

	for (size_t i = 0; i < n; i += PRED_BATCH) {
		int B = (int)(n - i < PRED_BATCH ? n - i : PRED_BATCH);
		if ((rc = ctr_forward(m, ds, idx + i, B, out + i)) != 0)
			return rc;
		if (prob)
			for (int b = 0; b < B; b++) {
				double z = out[i + b];
				out[i + b] = (float)(1.0 / (1.0 + exp(-z)));
			}
	}
	return 0;
}

int
ctr_predict(struct ctr *m, const struct dataset *ds, const uint32_t *idx,
    size_t n, float *out)
{
	return run_batched(m, ds, idx, n, out, 1);
}

int
ctr_logits(struct ctr *m, const struct dataset *ds, const uint32_t *idx,
    size_t n, float *out)
{
	return run_batched(m, ds, idx, n, out, 0);
}

int
ctr_eval_logloss(struct ctr *m, const struct dataset *ds,
    const uint32_t *idx, size_t n, double *out)
{
	double sum = 0.0;
	int rc;

	*out = NAN;
	if (n == 0)
		return -EINVAL;
	for (size_t i = 0; i < n; i += PRED_BATCH) {
		int B = (int)(n - i < PRED_BATCH ? n - i : PRED_BATCH);
		if ((rc = ctr_forward(m, ds, idx + i, B, NULL)) != 0)
			return rc;
		sum += bce_logits_forward(NULL, m->logit, m->y, NULL, NULL, B) *
		    B;
	}
	*out = sum / (double)n;
	return 0;
}

/* ---- training --------------------------------------------------------------- */

/* ctr_train's hooks for fit_run. */
struct train_ctx {
	struct ctr	*m;
	const struct dataset *ds;
	const struct ctr_train_opts *o;
	const uint32_t	*val;
	size_t		 nval;
	float		*wb, *ob;	/* (batch) weights and offsets */
};

static int
train_grad(void *arg, const uint32_t *idx, int B, struct rng *rng,
    double *loss)
{
	struct train_ctx *c = arg;
	const struct ctr_train_opts *o = c->o;
	int rc;

	for (int b = 0; b < B; b++) {
		if (o->weight != NULL)
			c->wb[b] = o->weight[idx[b]];
		if (o->offset != NULL)
			c->ob[b] = o->offset[idx[b]];
	}
	if ((rc = ctr_forward(c->m, c->ds, idx, B, NULL)) != 0)
		return rc;
	ctr_zero_grad(c->m);
	ctr_backward(c->m, o->sel, NULL, o->weight ? c->wb : NULL,
	    o->offset ? c->ob : NULL, loss);
	return 0;
}

static int
train_update(void *arg)
{
	struct train_ctx *c = arg;

	return ctr_step(c->m, c->o->sel, &c->o->opt);
}

static int
train_val(void *arg, double *loss)
{
	struct train_ctx *c = arg;

	return ctr_eval_logloss(c->m, c->ds, c->val, c->nval, loss);
}

static void
train_epoch(void *arg, int epoch, double train, double val)
{
	struct train_ctx *c = arg;

	if (c->o->progress != NULL)
		c->o->progress(c->o->progress_arg, epoch, train, val);
}

int
ctr_train(struct ctr *m, const struct dataset *ds, const uint32_t *idx,
    size_t n, const uint32_t *val, size_t nval,
    const struct ctr_train_opts *o, struct ctr_train_stats *stats)
{
	struct train_ctx c = { m, ds, o, val, nval, NULL, NULL };
	struct fit_hooks h = { train_grad, train_update,
	    nval > 0 ? train_val : NULL, NULL, train_epoch, &c };
	struct fit_opts fo;
	struct fit_stats fs;
	int rc;

	if (o == NULL || ds == NULL || idx == NULL || n == 0 ||
	    o->epochs < 1 || o->batch < 1 || (nval > 0 && val == NULL))
		return -EINVAL;
	if (o->opt.kind != CTR_OPT_SGD && o->opt.kind != CTR_OPT_ADAM)
		return -EINVAL;
	for (size_t i = 0; i < n; i++)
		if (idx[i] >= ds->n)
			return -EINVAL;
	view_own(m);	/* fit_run snapshots the one parameter buffer */
	c.wb = xmalloc((size_t)o->batch * sizeof(float));
	c.ob = xmalloc((size_t)o->batch * sizeof(float));
	fo = (struct fit_opts){ o->epochs, o->batch, o->patience, o->seed, 0,
	    o->stop };
	rc = fit_run(m->p.params, m->p.n_params, idx, n, &fo, &h, &fs);
	ctr_zero_grad(m);
	if (stats != NULL) {
		stats->train_loss = fs.train_loss;
		stats->val_loss = fs.val_loss;
		stats->epochs = fs.epochs;
		stats->best_epoch = fs.best_epoch;
	}
	free(c.ob);
	free(c.wb);
	return rc;
}

double
ctr_flops(const struct ctr *m)
{
	const struct ctr_config *c = &m->cfg;
	double D = c->dim, f;
	int C = m->C0;

	/* pooling: user, item, hour, wday copies are free; bags add */
	f = D * ((double)c->n_genres + c->hist_k);
	if (m->ti_att >= 0)	/* W t, scores, softmax, weighted sum */
		f += 2.0 * D * D + 4.0 * D * c->hist_k + 3.0 * c->hist_k;
	f += 2.0 * D * m->P;	/* pairwise dots */
	if (m->ti_fm >= 0)
		f += 2.0 * m->P;
	for (int l = 0; l < m->L; l++) {
		double H = c->hidden[l];
		f += 2.0 * C * H + 2.0 * H;		/* linear + bias, relu */
		if (m->R > 0)
			f += 4.0 * H * m->R + 2.0 * H;	/* V x, U s, add */
		C = c->hidden[l];
	}
	f += 2.0 * C + 1.0;	/* output layer */
	return f;
}
