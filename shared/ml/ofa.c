/*
 * ofa: the Forward-OFA model (see ofa.h for the architecture and the API).
 *
 * DESIGN. Parameters are one float buffer in a fixed order: the base
 * section (stem, head, the controllers of all blocks), then block 0..L-1,
 * each one contiguous slice (w, b, a, bm, v, c, gw, gb), so that ofa_io
 * can ship a block as a slice and a device can hold a subset of blocks.
 * Gradients and Adam moments mirror the buffer (param.c; the epoch loop
 * is fit.c). Training scratch is owned by the model and grown to the
 * largest batch.
 *
 * Gates. In training every sample gets its own budget and its own hard
 * gates (threshold, then the budget projection), and every block is
 * computed for every sample: the straight-through estimator needs the
 * output of a block that was not assembled to tell the controller what
 * assembling it would have done. The gate mode OFA_GATE_SOFT (tests only)
 * uses gate = sigma(c) without projection; there the straight-through
 * formula is the exact gradient, which is what the gradient check uses.
 * OFA_GATE_STATIC is the backbone alone, the baseline Forward-OFA has to
 * beat: every gate 1 and every generated g_l 0, so each block is the
 * static W_l, and the controller and the mapper (with A_l, Bm_l, which
 * only act through g_l) get no gradient.
 *
 * Device. ofa_assemble runs the controller and, for the chosen blocks only,
 * the mapper, and materialises W_l + A_l diag(g_l) Bm_l once; serving then
 * costs one plain residual MLP of the assembled depth.
 *
 * Threads: one thread per model at a time; const functions only read.
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cblas.h>

#include "shared/ml/ctr.h"
#include "shared/ml/fit.h"
#include "shared/ml/kern.h"
#include "shared/ml/ofa.h"
#include "shared/ml/ofa_base.h"
#include "shared/ml/ofa_config.h"
#include "shared/ml/ofa_ctrl.h"
#include "shared/ml/ofa_duet.h"
#include "shared/rng.h"
#include "shared/xmalloc.h"

#define PRED_BATCH	256
/* Tensor order inside a block. */
enum { BT_W = 0, BT_B, BT_A, BT_BM, BT_V, BT_C, BT_GW, BT_GB, BT_N };
/* Base tensors. */
enum { T_STEM_W = 0, T_STEM_B, T_OUT_W, T_OUT_B, T_CTL_W, T_CTL_B, T_BASE_N };

struct ofa {
	struct ofa_config cfg;
	int		 ZB;		/* Z + OFA_NB: controller input */
	int		 Zg;		/* mapper input: Z, or Hg (ofa_duet) */
	int		 nbt;		/* base tensors */
	int		 ti_cmu, ti_csc, ti_cw1, ti_cb1;	/* ofa_ctrl, or -1 */
	int		 ti_gw, ti_gb;	/* ofa_duet, or -1 */
	size_t		 n_base, n_block;
	struct param_table p;		/* over t */
	struct param_tensor t[OFA_MAX_TENSORS];
	int		 has[OFA_MAX_BLOCKS];
	int		 gate_mode;

	/* scratch for cap rows */
	int		 cap, B;
	float		*scr;
	float		*x0, *z, *zin, *bud, *y;	/* (B,C0) (B,Z) (B,ZB) (B) */
	float		*spre, *xs[OFA_MAX_BLOCKS + 1];	/* (B,H) */
	float		*t_[OFA_MAX_BLOCKS], *g[OFA_MAX_BLOCKS];	/* (B,R) */
	float		*s[OFA_MAX_BLOCKS];
	float		*pre[OFA_MAX_BLOCKS], *h[OFA_MAX_BLOCKS];	/* (B,F) */
	float		*o[OFA_MAX_BLOCKS];	/* (B,H) */
	float		*cl[OFA_MAX_BLOCKS], *gate[OFA_MAX_BLOCKS];	/* (B) */
	float		*logit;		/* (B) */
	float		*dx, *dxn, *dpre, *dh, *dov;	/* (B,H) (B,H) (B,F) */
	float		*ds, *dt, *dg;	/* (B,R) */
	float		*dcl;		/* (B) */
	float		*ch, *dcls;	/* (B,Hc) (L,B): ofa_ctrl */
	float		*gz, *dgz;	/* (B,Zg): mapper input, its gradient */
};

/* ---- layout -------------------------------------------------------------- */

static size_t
layout(const struct ofa_config *c, struct ofa *m)
{
	size_t total = 0;
	int nt = 0, H = c->hidden, F = c->inner, R = c->rank, Z = c->z_dim;
	int L = c->n_blocks, ZB = Z + OFA_NB, Hc = c->ctrl_hidden;
	int Zg = c->gen_hidden > 0 ? c->gen_hidden : Z;

#define ADD(nm, r, cc, nd, blk)					\
	param_add(m != NULL ? m->t : NULL, &nt, &total, (nm), (size_t)(r), \
	    (size_t)(cc), (nd), 0, 0, (blk))
	ADD("stem_w", H, c->in_dim, 2, -1);
	ADD("stem_b", H, 1, 1, -1);
	ADD("out_w", 1, H, 2, -1);
	ADD("out_b", 1, 1, 1, -1);
	ADD("ctl_w", L, Hc > 0 ? Hc : ZB, 2, -1);
	ADD("ctl_b", L, 1, 1, -1);
	if (m != NULL)
		m->ti_cmu = m->ti_csc = m->ti_cw1 = m->ti_cb1 = m->ti_gw =
		    m->ti_gb = -1;
	if (Hc > 0) {
		if (m != NULL) {
			m->ti_cmu = nt;
			m->ti_csc = nt + 1;
			m->ti_cw1 = nt + 2;
			m->ti_cb1 = nt + 3;
		}
		ADD("ctl_mu", ZB, 1, 1, -1);
		ADD("ctl_sc", ZB, 1, 1, -1);
		ADD("ctl_w1", Hc, ZB, 2, -1);
		ADD("ctl_b1", Hc, 1, 1, -1);
	}
	if (c->gen_hidden > 0) {
		if (m != NULL) {
			m->ti_gw = nt;
			m->ti_gb = nt + 1;
		}
		ADD("gen_w", c->gen_hidden, Z, 2, -1);
		ADD("gen_b", c->gen_hidden, 1, 1, -1);
	}
	if (m != NULL)
		m->nbt = nt;
	for (int l = 0; l < L; l++) {
		char nm[24];
#define BADD(suf, r, cc, nd) do {					\
	snprintf(nm, sizeof(nm), "b%d_%s", l, (suf));			\
	ADD(nm, r, cc, nd, l);						\
} while (0)
		BADD("w", F, H, 2);
		BADD("b", F, 1, 1);
		BADD("a", F, R, 2);
		BADD("bm", R, H, 2);
		BADD("v", H, F, 2);
		BADD("c", H, 1, 1);
		BADD("gw", R, Zg, 2);
		BADD("gb", R, 1, 1);
#undef BADD
	}
#undef ADD
	if (m != NULL)
		m->p.n_tensors = nt;
	return total;
}

static struct ofa *
ofa_alloc(const struct ofa_config *c)
{
	struct ofa *m = xcalloc(1, sizeof(*m));

	m->cfg = *c;
	m->ZB = c->z_dim + OFA_NB;
	m->Zg = c->gen_hidden > 0 ? c->gen_hidden : c->z_dim;
	layout(c, m);
	param_alloc(&m->p, m->t, m->p.n_tensors, NULL);
	for (int i = 0; i < m->p.n_tensors; i++)
		if (m->t[i].block < 0)
			m->n_base = (size_t)(m->t[i].data - m->p.params) +
			    m->t[i].n;
	m->n_block = (m->p.n_params - m->n_base) / (size_t)c->n_blocks;
	for (int l = 0; l < c->n_blocks; l++)
		m->has[l] = 1;
	return m;
}

/* Block tensor i of block l. */
static struct param_tensor *
bt(const struct ofa *m, int l, int i)
{
	return (struct param_tensor *)&m->t[m->nbt + l * BT_N + i];
}

int
ofa_new(struct ofa **out, const struct ofa_config *c, uint64_t seed)
{
	struct ofa *m;
	struct rng r;
	int rc, H = c->hidden, F = c->inner;

	*out = NULL;
	if ((rc = ofa_config_check(c)) != 0)
		return rc;
	m = ofa_alloc(c);
	rng_seed(&r, seed);
	param_fill_unif(m->t[T_STEM_W].data, m->t[T_STEM_W].n,
	    1.0 / sqrt((double)c->in_dim), &r);
	param_fill_unif(m->t[T_STEM_B].data, m->t[T_STEM_B].n,
	    1.0 / sqrt((double)c->in_dim), &r);
	param_fill_unif(m->t[T_OUT_W].data, m->t[T_OUT_W].n, 1.0 / sqrt((double)H),
	    &r);
	/* On the CTR model's logit the residual starts at 0: OFA = CTR. */
	if (c->ctr_base)
		memset(m->t[T_OUT_W].data, 0, m->t[T_OUT_W].n * sizeof(float));
	/* Controllers start open (c = 1): every block assembled until the
	 * penalty and the budget projection teach otherwise. */
	param_fill_normal(m->t[T_CTL_W].data, m->t[T_CTL_W].n, 0.01, &r);
	for (int l = 0; l < c->n_blocks; l++)
		m->t[T_CTL_B].data[l] = 1.0f;
	if (m->ti_cw1 >= 0) {
		/* standardisation starts as the identity (ofa_train fits it);
		 * b1 > 0 so that every hidden unit carries gradient at first */
		for (int k = 0; k < m->ZB; k++)
			m->t[m->ti_csc].data[k] = 1.0f;
		param_fill_unif(m->t[m->ti_cw1].data, m->t[m->ti_cw1].n,
		    1.0 / sqrt((double)m->ZB), &r);
		for (int j = 0; j < c->ctrl_hidden; j++)
			m->t[m->ti_cb1].data[j] = 0.1f;
		param_fill_normal(m->t[T_CTL_W].data, m->t[T_CTL_W].n, 0.01, &r);
	}
	if (m->ti_gw >= 0) {
		param_fill_unif(m->t[m->ti_gw].data, m->t[m->ti_gw].n,
		    1.0 / sqrt((double)c->z_dim), &r);
		for (int j = 0; j < c->gen_hidden; j++)
			m->t[m->ti_gb].data[j] = 0.1f;
	}
	for (int l = 0; l < c->n_blocks; l++) {
		param_fill_unif(bt(m, l, BT_W)->data, bt(m, l, BT_W)->n,
		    1.0 / sqrt((double)H), &r);
		/* Residual branches start small so that any subset of blocks
		 * is a sensible network from the first step. */
		param_fill_unif(bt(m, l, BT_V)->data, bt(m, l, BT_V)->n,
		    0.1 / sqrt((double)F), &r);
		param_fill_normal(bt(m, l, BT_A)->data, bt(m, l, BT_A)->n,
		    0.1 / sqrt((double)c->rank), &r);
		param_fill_normal(bt(m, l, BT_BM)->data, bt(m, l, BT_BM)->n,
		    1.0 / sqrt((double)H), &r);
		param_fill_normal(bt(m, l, BT_GW)->data, bt(m, l, BT_GW)->n,
		    1.0 / sqrt((double)m->Zg), &r);
	}
	*out = m;
	return 0;
}

void
ofa_free(struct ofa *m)
{
	if (m == NULL)
		return;
	free(m->scr);
	param_free(&m->p);
	free(m);
}

struct ofa *
ofa_clone(const struct ofa *m)
{
	struct ofa *c = ofa_alloc(&m->cfg);

	memcpy(c->p.params, m->p.params, m->p.n_params * sizeof(float));
	memcpy(c->has, m->has, sizeof(c->has));
	c->gate_mode = m->gate_mode;
	return c;
}

const struct ofa_config *
ofa_config(const struct ofa *m)
{
	return &m->cfg;
}

size_t
ofa_num_params(const struct ofa *m)
{
	return m->p.n_params;
}

float *
ofa_params(const struct ofa *m)
{
	return m->p.params;
}

float *
ofa_grads(const struct ofa *m)
{
	return m->p.grads;
}

int
ofa_num_tensors(const struct ofa *m)
{
	return m->p.n_tensors;
}

const struct param_tensor *
ofa_tensor_at(const struct ofa *m, int i)
{
	return param_at(&m->p, i);
}

const struct param_tensor *
ofa_tensor_find(const struct ofa *m, const char *name)
{
	return param_find(&m->p, name);
}

size_t
ofa_base_params(const struct ofa *m)
{
	return m->n_base;
}

size_t
ofa_block_params(const struct ofa *m)
{
	return m->n_block;
}

int
ofa_has_block(const struct ofa *m, int l)
{
	return l >= 0 && l < m->cfg.n_blocks && m->has[l];
}

void
ofa_set_has_block(struct ofa *m, int l, int has)
{
	if (l >= 0 && l < m->cfg.n_blocks)
		m->has[l] = has != 0;
}

void
ofa_set_gate_mode(struct ofa *m, int mode)
{
	m->gate_mode = mode;
}

/* ---- inputs --------------------------------------------------------------- */

static uint32_t
map_id(uint32_t id, uint32_t n)
{
	return id < n ? id : n;
}

static const float *
emb_table(const struct ctr *emb, const char *name)
{
	const struct param_tensor *t = ctr_tensor_find(emb, name);

	return t != NULL ? t->data : NULL;
}

/* out (D) = mean of item rows ids (n); zero when n = 0. */
static void
pool_items(const float *item, uint32_t n_items, const uint32_t *ids,
    size_t n, int D, float *out)
{
	memset(out, 0, (size_t)D * sizeof(float));
	if (n == 0)
		return;
	for (size_t j = 0; j < n; j++) {
		const float *e = item + (size_t)map_id(ids[j], n_items) * D;
		for (int i = 0; i < D; i++)
			out[i] += e[i];
	}
	for (int i = 0; i < D; i++)
		out[i] /= (float)n;
}

void
ofa_inputs(const struct ctr *emb, const struct dataset *ds,
    const uint32_t *idx, int B, float *x0, float *z)
{
	const struct ctr_config *c = ctr_config(emb);
	int D = c->dim, C0 = ofa_input_dim(emb);
	const float *eu = emb_table(emb, "emb_user");
	const float *ei = emb_table(emb, "emb_item");
	const float *eg = emb_table(emb, "emb_genre");
	const float *eh = emb_table(emb, "emb_hour");
	const float *ew = emb_table(emb, "emb_wday");

	for (int b = 0; b < B; b++) {
		const struct sample *s = &ds->s[idx[b]];
		float *x = x0 + (size_t)b * C0;
		uint32_t hn = s->hist_n, ng = 0;

		memcpy(x, eu + (size_t)ctr_config_user_row(c, s->user) * D,
		    (size_t)D * sizeof(float));
		memcpy(x + D, ei + (size_t)map_id(s->item, c->n_items) * D,
		    (size_t)D * sizeof(float));
		memset(x + 2 * D, 0, (size_t)D * sizeof(float));
		for (uint32_t g = 0; g < c->n_genres; g++)
			if (s->genres & (1u << g)) {
				for (int i = 0; i < D; i++)
					x[2 * D + i] += eg[(size_t)g * D + i];
				ng++;
			}
		for (int i = 0; ng > 0 && i < D; i++)
			x[2 * D + i] /= (float)ng;
		memcpy(x + 3 * D, eh + (size_t)sample_hour(s->ts) * D,
		    (size_t)D * sizeof(float));
		memcpy(x + 4 * D, ew + (size_t)sample_wday(s->ts) * D,
		    (size_t)D * sizeof(float));
		/* behaviour: the last K history items, as ctr does */
		if (ds->hist == NULL || (size_t)s->hist_off + hn > ds->hist_len)
			hn = 0;
		if (hn > (uint32_t)c->hist_k)
			hn = (uint32_t)c->hist_k;
		pool_items(ei, c->n_items, hn ? ds->hist + s->hist_off +
		    (s->hist_n - hn) : NULL, hn, D, x + 5 * D);
		if (z != NULL)
			memcpy(z + (size_t)b * D, x + 5 * D,
			    (size_t)D * sizeof(float));
		ofa_inputs_extra(emb, ds, s, x);
	}
}

void
ofa_behaviour(const struct ctr *emb, const uint32_t *items, size_t n, int K,
    float *z)
{
	const struct ctr_config *c = ctr_config(emb);

	size_t k = n > (size_t)K ? (size_t)K : n;

	/* the last K of the list: the most recent interactions */
	pool_items(emb_table(emb, "emb_item"), c->n_items,
	    k ? items + (n - k) : NULL, k, c->dim, z);
}

size_t
ofa_recent_items(const struct dataset *ds, uint32_t *items)
{
	const struct sample *s;
	size_t n = 0;

	if (ds->n == 0)
		return 0;
	s = &ds->s[ds->n - 1];
	if (ds->hist != NULL && (size_t)s->hist_off + s->hist_n <=
	    ds->hist_len)
		for (uint32_t j = 0; j < s->hist_n; j++)
			items[n++] = ds->hist[s->hist_off + j];
	if (s->label >= 0.5f)
		items[n++] = s->item;
	if (n > SAMPLE_HIST_MAX) {
		memmove(items, items + (n - SAMPLE_HIST_MAX),
		    SAMPLE_HIST_MAX * sizeof(*items));
		n = SAMPLE_HIST_MAX;
	}
	return n;
}

/* ---- gates ------------------------------------------------------------------ */

static double
sigm(double x)
{
	return 1.0 / (1.0 + exp(-x));
}

/* The behaviour controller's tensors (data or grad). */
static struct ofa_ctrl_w
ctrl_w(const struct ofa *m, int grad)
{
	struct ofa_ctrl_w w;
	const struct param_tensor *t = m->t;

#define P_(i) (grad ? t[i].grad : t[i].data)
	w.mu = P_(m->ti_cmu);
	w.sc = P_(m->ti_csc);
	w.w1 = P_(m->ti_cw1);
	w.b1 = P_(m->ti_cb1);
	w.w2 = P_(T_CTL_W);
	w.b2 = P_(T_CTL_B);
#undef P_
	return w;
}

/*
 * Controller logits cl (L) for zin (ZB); h (ctrl_hidden) gets the
 * behaviour controller's hidden layer (unused by the linear one).
 */
static void
controller(const struct ofa *m, const float *zin, float *cl, float *h)
{
	const float *w = m->t[T_CTL_W].data, *b = m->t[T_CTL_B].data;

	if (m->ti_cw1 >= 0) {
		struct ofa_ctrl_w cw = ctrl_w(m, 0);
		ofa_ctrl_forward(&cw, m->ZB, m->cfg.ctrl_hidden,
		    m->cfg.n_blocks, zin, h, cl);
		return;
	}
	for (int l = 0; l < m->cfg.n_blocks; l++) {
		double a = b[l];
		for (int k = 0; k < m->ZB; k++)
			a += (double)w[(size_t)l * m->ZB + k] * zin[k];
		cl[l] = (float)a;
	}
}

/*
 * Hard gates from logits cl (L) under budget: open blocks (c > 0), in
 * descending c (ties: lower index first), while the cost fits.
 */
static int
project(int L, const float *cl, double budget, float *gate)
{
	int order[OFA_MAX_BLOCKS], n = 0;
	double cost = 1.0 / L, used = 0;

	for (int l = 0; l < L; l++) {
		int k = l;
		while (k > 0 && cl[order[k - 1]] < cl[l]) {
			order[k] = order[k - 1];
			k--;
		}
		order[k] = l;
		gate[l] = 0.0f;
	}
	for (int i = 0; i < L; i++) {
		int l = order[i];
		if (!(cl[l] > 0.0f))
			break;
		if (used + cost > budget + 1e-9)
			break;
		gate[l] = 1.0f;
		used += cost;
		n++;
	}
	return n;
}

/* ---- scratch ------------------------------------------------------------- */

static void
reserve(struct ofa *m, int B)
{
	const struct ofa_config *c = &m->cfg;
	size_t b = (size_t)B, H = c->hidden, F = c->inner, R = c->rank;
	size_t L = (size_t)c->n_blocks, nf;
	float *f;

	if (B <= m->cap)
		return;
	nf = b * (c->in_dim + c->z_dim + m->ZB + 2) + b * H * (L + 2) +
	    L * b * (3 * R + 2 * F + H + 2) + b + b * (3 * H + 2 * F) +
	    3 * b * R + b + b * (size_t)c->ctrl_hidden + L * b +
	    2 * b * (size_t)m->Zg;
	free(m->scr);
	m->scr = f = xcalloc(nf, sizeof(float));
#define CARVE(p, n) do { (p) = f; f += (n); } while (0)
	CARVE(m->x0, b * c->in_dim);
	CARVE(m->z, b * c->z_dim);
	CARVE(m->zin, b * m->ZB);
	CARVE(m->bud, b);
	CARVE(m->y, b);
	CARVE(m->spre, b * H);
	for (size_t l = 0; l <= L; l++)
		CARVE(m->xs[l], b * H);
	for (size_t l = 0; l < L; l++) {
		CARVE(m->t_[l], b * R);
		CARVE(m->g[l], b * R);
		CARVE(m->s[l], b * R);
		CARVE(m->pre[l], b * F);
		CARVE(m->h[l], b * F);
		CARVE(m->o[l], b * H);
		CARVE(m->cl[l], b);
		CARVE(m->gate[l], b);
	}
	CARVE(m->logit, b);
	CARVE(m->dx, b * H);
	CARVE(m->dxn, b * H);
	CARVE(m->dov, b * H);
	CARVE(m->dpre, b * F);
	CARVE(m->dh, b * F);
	CARVE(m->ds, b * R);
	CARVE(m->dt, b * R);
	CARVE(m->dg, b * R);
	CARVE(m->dcl, b);
	CARVE(m->ch, b * c->ctrl_hidden);
	CARVE(m->dcls, L * b);
	CARVE(m->gz, b * m->Zg);
	CARVE(m->dgz, b * m->Zg);
#undef CARVE
	m->cap = B;
}

/* out (B,O) += inp (B,C) W^T, W (O,C). */
static void
gemm_acc(float *out, const float *inp, const float *w, int B, int C, int O)
{
	cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, B, O, C, 1.0f,
	    inp, C, w, C, 1.0f, out, O);
}

/* ---- forward / backward ---------------------------------------------------- */

int
ofa_forward(struct ofa *m, const float *x0, const float *z,
    const float *budget, int B, float *gates, float *logits)
{
	const struct ofa_config *c = &m->cfg;
	int H = c->hidden, F = c->inner, R = c->rank, L = c->n_blocks;
	int Z = c->z_dim, C0 = c->in_dim;

	m->B = 0;
	if (B < 1)
		return -EINVAL;
	for (int l = 0; l < L; l++)
		if (!m->has[l])
			return -EINVAL;
	reserve(m, B);
	memcpy(m->x0, x0, (size_t)B * C0 * sizeof(float));
	memcpy(m->z, z, (size_t)B * Z * sizeof(float));
	for (int b = 0; b < B; b++) {
		float cl[OFA_MAX_BLOCKS], gt[OFA_MAX_BLOCKS];
		float *zi = m->zin + (size_t)b * m->ZB;
		memcpy(zi, z + (size_t)b * Z, (size_t)Z * sizeof(float));
		zi[Z] = budget[b];
		m->bud[b] = budget[b];
		controller(m, zi, cl, m->ch + (size_t)b * c->ctrl_hidden);
		if (m->gate_mode == OFA_GATE_SOFT) {
			for (int l = 0; l < L; l++)
				gt[l] = (float)sigm(cl[l]);
		} else if (m->gate_mode == OFA_GATE_STATIC ||
		    m->gate_mode == OFA_GATE_ALL) {
			for (int l = 0; l < L; l++)
				gt[l] = 1.0f;
		} else
			project(L, cl, budget[b], gt);
		for (int l = 0; l < L; l++) {
			m->cl[l][b] = cl[l];
			m->gate[l][b] = gt[l];
			if (gates != NULL)
				gates[(size_t)b * L + l] = gt[l];
		}
	}

	/* stem */
	linear_forward(m->spre, m->x0, m->t[T_STEM_W].data,
	    m->t[T_STEM_B].data, B, C0, H);
	relu_forward(m->xs[0], m->spre, (size_t)B * H);
	/* the mapper's input: z, or the DUET-style generator's layer */
	if (m->ti_gw >= 0)
		ofa_duet_forward(m->t[m->ti_gw].data, m->t[m->ti_gb].data,
		    m->z, B, Z, m->Zg, m->gz);
	else
		memcpy(m->gz, m->z, (size_t)B * Z * sizeof(float));
	for (int l = 0; l < L; l++) {
		const float *x = m->xs[l];
		float *xn = m->xs[l + 1];
		/* g = gz Wg^T + bg; t = x Bm^T; s = g * t */
		linear_forward(m->g[l], m->gz, bt(m, l, BT_GW)->data,
		    bt(m, l, BT_GB)->data, B, m->Zg, R);
		if (m->gate_mode == OFA_GATE_STATIC)
			memset(m->g[l], 0, (size_t)B * R * sizeof(float));
		linear_forward(m->t_[l], x, bt(m, l, BT_BM)->data, NULL, B, H,
		    R);
		for (size_t i = 0; i < (size_t)B * R; i++)
			m->s[l][i] = m->g[l][i] * m->t_[l][i];
		/* pre = x W^T + b + s A^T */
		linear_forward(m->pre[l], x, bt(m, l, BT_W)->data,
		    bt(m, l, BT_B)->data, B, H, F);
		gemm_acc(m->pre[l], m->s[l], bt(m, l, BT_A)->data, B, R, F);
		relu_forward(m->h[l], m->pre[l], (size_t)B * F);
		linear_forward(m->o[l], m->h[l], bt(m, l, BT_V)->data,
		    bt(m, l, BT_C)->data, B, F, H);
		for (int b = 0; b < B; b++) {
			float gt = m->gate[l][b];
			for (int j = 0; j < H; j++) {
				size_t k = (size_t)b * H + j;
				xn[k] = x[k] + gt * m->o[l][k];
			}
		}
	}
	linear_forward(m->logit, m->xs[L], m->t[T_OUT_W].data,
	    m->t[T_OUT_B].data, B, H, 1);
	if (c->interaction == CTR_INTER_FM)	/* the base's FM term */
		for (int b = 0; b < B; b++)
			m->logit[b] += x0[(size_t)b * C0 + C0 - 1];
	if (logits != NULL)
		memcpy(logits, m->logit, (size_t)B * sizeof(float));
	m->B = B;
	return 0;
}

void
ofa_zero_grad(struct ofa *m)
{
	param_zero_grad(&m->p, 0);
}

int
ofa_backward(struct ofa *m, const float *y, double mu, double *loss,
    double *pen)
{
	const struct ofa_config *c = &m->cfg;
	int B = m->B, H = c->hidden, F = c->inner, R = c->rank;
	int L = c->n_blocks, Z = c->z_dim, C0 = c->in_dim;
	double p = 0, cost = 1.0 / L;
	float *dlogit = m->dcl;

	if (B < 1)
		return -EINVAL;
	memcpy(m->y, y, (size_t)B * sizeof(float));
	if (loss != NULL)
		*loss = bce_logits_forward(NULL, m->logit, m->y, NULL, NULL, B);
	memset(dlogit, 0, (size_t)B * sizeof(float));
	memset(m->dgz, 0, (size_t)B * m->Zg * sizeof(float));
	bce_logits_backward(dlogit, m->logit, m->y, NULL, NULL, B);
	/* head: dx = dlogit wo */
	memset(m->dx, 0, (size_t)B * H * sizeof(float));
	linear_backward(m->dx, m->t[T_OUT_W].grad, m->t[T_OUT_B].grad, dlogit,
	    m->xs[L], m->t[T_OUT_W].data, B, H, 1);

	for (int l = L - 1; l >= 0; l--) {
		const float *x = m->xs[l];
		float *dcl = m->dcl;
		/* gates: dgate_b = dx_b . o_b + mu cost / (B budget_b) */
		for (int b = 0; b < B; b++) {
			double dg = 0, gt = m->gate[l][b];
			const float *dxb = m->dx + (size_t)b * H;
			const float *ob = m->o[l] + (size_t)b * H;
			for (int j = 0; j < H; j++)
				dg += (double)dxb[j] * ob[j];
			dg += mu * cost / ((double)B * m->bud[b]);
			p += cost * gt / m->bud[b];
			double sg = sigm(m->cl[l][b]);
			dcl[b] = m->gate_mode == OFA_GATE_STATIC ||
			    m->gate_mode == OFA_GATE_ALL ? 0.0f :
			    (float)(dg * sg * (1.0 - sg));
			m->dcls[(size_t)l * B + b] = dcl[b];
			/* do = gate * dx */
			for (int j = 0; j < H; j++)
				m->dov[(size_t)b * H + j] = (float)gt * dxb[j];
		}
		/* controller: dwc[l] += dcl^T zin, dbc[l] += sum dcl */
		float *dwc = m->t[T_CTL_W].grad + (size_t)l * m->ZB;
		for (int b = 0; b < B && m->ti_cw1 < 0; b++) {
			const float *zi = m->zin + (size_t)b * m->ZB;
			for (int k = 0; k < m->ZB; k++)
				dwc[k] += dcl[b] * zi[k];
			m->t[T_CTL_B].grad[l] += dcl[b];
		}
		/* residual: dxn starts as dx */
		memcpy(m->dxn, m->dx, (size_t)B * H * sizeof(float));
		memset(m->dh, 0, (size_t)B * F * sizeof(float));
		linear_backward(m->dh, bt(m, l, BT_V)->grad,
		    bt(m, l, BT_C)->grad, m->dov, m->h[l], bt(m, l, BT_V)->data,
		    B, F, H);
		memset(m->dpre, 0, (size_t)B * F * sizeof(float));
		relu_backward(m->dpre, m->dh, m->h[l], (size_t)B * F);
		linear_backward(m->dxn, bt(m, l, BT_W)->grad,
		    bt(m, l, BT_B)->grad, m->dpre, x, bt(m, l, BT_W)->data, B,
		    H, F);
		/* s path: ds = dpre A, dA += dpre^T s */
		memset(m->ds, 0, (size_t)B * R * sizeof(float));
		linear_backward(m->ds, bt(m, l, BT_A)->grad, NULL, m->dpre,
		    m->s[l], bt(m, l, BT_A)->data, B, R, F);
		for (size_t i = 0; i < (size_t)B * R; i++) {
			m->dg[i] = m->gate_mode == OFA_GATE_STATIC ? 0.0f :
			    m->ds[i] * m->t_[l][i];
			m->dt[i] = m->ds[i] * m->g[l][i];
		}
		linear_backward(m->dxn, bt(m, l, BT_BM)->grad, NULL, m->dt, x,
		    bt(m, l, BT_BM)->data, B, H, R);
		linear_backward(m->ti_gw >= 0 ? m->dgz : NULL,
		    bt(m, l, BT_GW)->grad, bt(m, l, BT_GB)->grad, m->dg, m->gz,
		    bt(m, l, BT_GW)->data, B, m->Zg, R);
		float *tmp = m->dx;
		m->dx = m->dxn;
		m->dxn = tmp;
	}
	/* the behaviour controller, per sample, from every block's dc */
	if (m->ti_cw1 >= 0) {
		struct ofa_ctrl_w cw = ctrl_w(m, 0), cg = ctrl_w(m, 1);
		float dc[OFA_MAX_BLOCKS];
		for (int b = 0; b < B; b++) {
			for (int l = 0; l < L; l++)
				dc[l] = m->dcls[(size_t)l * B + b];
			ofa_ctrl_backward(&cw, &cg, m->ZB, c->ctrl_hidden, L,
			    m->zin + (size_t)b * m->ZB,
			    m->ch + (size_t)b * c->ctrl_hidden, dc);
		}
	}
	if (m->ti_gw >= 0)
		ofa_duet_backward(m->t[m->ti_gw].grad, m->t[m->ti_gb].grad,
		    m->dgz, m->gz, m->z, m->t[m->ti_gw].data, B, Z, m->Zg);
	/* stem: dspre = dx0 * (x0 > 0) */
	memset(m->dxn, 0, (size_t)B * H * sizeof(float));
	relu_backward(m->dxn, m->dx, m->xs[0], (size_t)B * H);
	linear_backward(NULL, m->t[T_STEM_W].grad, m->t[T_STEM_B].grad,
	    m->dxn, m->x0, m->t[T_STEM_W].data, B, C0, H);
	if (pen != NULL)
		*pen = p / B;
	return 0;
}

void
ofa_adam_step(struct ofa *m, float lr, float wd)
{
	struct param_opt o = { PARAM_OPT_ADAM, lr, 0.9f, 0.999f, 1e-8f, wd };

	/* every tensor trains: all kinds are 0 */
	param_step(&m->p, ~0u, &o);
}

/* ---- training --------------------------------------------------------------- */

void
ofa_train_opts_default(struct ofa_train_opts *o)
{
	memset(o, 0, sizeof(*o));
	o->epochs = 20;
	o->batch = 256;
	o->patience = 2;
	o->lr = 1e-3f;
	o->wd = 0.0f;
	o->mu = 0.01;
	o->seed = 1;
}

/* Mean val logloss over the classes; blocks (OFA_N_CLASSES) out. */
static int
val_loss(struct ofa *m, const struct ctr *emb, const struct dataset *ds,
    const uint32_t *val, size_t nval, double *out, double *blocks)
{
	float *p = xcalloc(nval + 1, sizeof(float));
	double sum = 0;
	int rc = 0;

	for (int k = 0; k < OFA_N_CLASSES; k++) {
		double ll = 0;
		if ((rc = ofa_predict(m, emb, ds, val, nval,
		    ofa_class_budget[k], p, &blocks[k])) != 0)
			break;
		for (size_t i = 0; i < nval; i++) {
			double q = p[i], y = ds->s[val[i]].label;
			q = q < 1e-7 ? 1e-7 : q > 1 - 1e-7 ? 1 - 1e-7 : q;
			ll -= y * log(q) + (1 - y) * log(1 - q);
		}
		sum += ll / (double)nval;
	}
	*out = sum / OFA_N_CLASSES;
	free(p);
	return rc;
}

int
ofa_inputs_base(const struct ofa *m, struct ctr *emb,
    const struct dataset *ds, const uint32_t *idx, int B, float *x0,
    float *z)
{
	int C0 = m->cfg.in_dim, rc;
	float *lg;

	ofa_inputs(emb, ds, idx, B, x0, z);
	if (!m->cfg.ctr_base || B < 1)
		return 0;
	lg = xmalloc((size_t)B * sizeof(float));
	if ((rc = ctr_logits(emb, ds, idx, (size_t)B, lg)) == 0)
		for (int b = 0; b < B; b++)
			x0[(size_t)b * C0 + C0 - 1] = lg[b];
	free(lg);
	return rc;
}

/* x0 and z for m: with ctr_base from scr, emb's working copy. */
static int
inputs(const struct ofa *m, const struct ctr *emb, struct ctr *scr,
    const struct dataset *ds, const uint32_t *idx, int B, float *x0,
    float *z)
{
	if (!m->cfg.ctr_base) {
		ofa_inputs(emb, ds, idx, B, x0, z);
		return 0;
	}
	return scr != NULL ? ofa_inputs_base(m, scr, ds, idx, B, x0, z) :
	    -EINVAL;
}

/* ofa_train's hooks for fit_run. */
struct train_ctx {
	struct ofa	*m;
	const struct ctr *emb;
	struct ctr	*scr;		/* ctr_base: emb's copy for its logits */
	const struct dataset *ds;
	const struct ofa_train_opts *o;
	const uint32_t	*val;
	size_t		 nval;
	float		*x0, *z, *bud, *y;	/* (batch) inputs */
	double		 blk[OFA_N_CLASSES];	/* of the last val */
	struct ofa_train_stats *st;
};

static int
train_grad(void *arg, const uint32_t *idx, int B, struct rng *rng,
    double *loss)
{
	struct train_ctx *c = arg;
	int rc;

	if ((rc = inputs(c->m, c->emb, c->scr, c->ds, idx, B, c->x0,
	    c->z)) != 0)
		return rc;
	for (int b = 0; b < B; b++) {
		c->bud[b] = (float)ofa_class_budget[rng_below(rng,
		    OFA_N_CLASSES)];
		c->y[b] = c->ds->s[idx[b]].label;
	}
	ofa_forward(c->m, c->x0, c->z, c->bud, B, NULL, NULL);
	ofa_zero_grad(c->m);
	ofa_backward(c->m, c->y, c->o->mu, loss, NULL);
	return 0;
}

static int
train_update(void *arg)
{
	struct train_ctx *c = arg;

	ofa_adam_step(c->m, c->o->lr, c->o->wd);
	return 0;
}

static int
train_val(void *arg, double *loss)
{
	struct train_ctx *c = arg;

	return val_loss(c->m, c->emb, c->ds, c->val, c->nval, loss, c->blk);
}

static void
train_improved(void *arg)
{
	struct train_ctx *c = arg;

	memcpy(c->st->blocks, c->blk, sizeof(c->blk));
}

static void
train_epoch(void *arg, int epoch, double train, double val)
{
	struct train_ctx *c = arg;

	if (c->o->progress != NULL)
		c->o->progress(c->o->progress_arg, epoch, train, val,
		    c->nval > 0 ? (c->blk[0] + c->blk[1] + c->blk[2]) / 3 :
		    NAN);
}

int
ofa_fits_ctr(const struct ofa *m, const struct ctr *emb)
{
	const struct ctr_config *c = ctr_config(emb);
	const struct ofa_config *o = ofa_config(m);

	return o->in_dim == ofa_input_dim(emb) && o->z_dim == c->dim &&
	    o->n_side == (int)c->n_side && o->interaction == c->interaction ?
	    0 : -EINVAL;
}

/*
 * The behaviour controller's standardisation from (up to 8192 of) the
 * training samples' z, with the class budgets in turn.
 */
static void
ctrl_fit(struct ofa *m, const struct ctr *emb, const struct dataset *ds,
    const uint32_t *idx, size_t n)
{
	const struct ofa_config *c = ofa_config(m);
	const struct param_tensor *mu = ofa_tensor_find(m, "ctl_mu");
	const struct param_tensor *sc = ofa_tensor_find(m, "ctl_sc");
	size_t k = n < 8192 ? n : 8192, Z = (size_t)c->z_dim, ZB = Z + OFA_NB;
	float *x0, *z, *zin;

	if (mu == NULL || sc == NULL)
		return;
	x0 = xcalloc(PRED_BATCH * (size_t)c->in_dim, sizeof(float));
	z = xcalloc(PRED_BATCH * Z, sizeof(float));
	zin = xcalloc(k * ZB + 1, sizeof(float));
	for (size_t i = 0; i < k; i += PRED_BATCH) {
		int B = (int)(k - i < PRED_BATCH ? k - i : PRED_BATCH);
		ofa_inputs(emb, ds, idx + i, B, x0, z);
		for (int b = 0; b < B; b++) {
			float *r = zin + (i + (size_t)b) * ZB;
			memcpy(r, z + (size_t)b * Z, Z * sizeof(float));
			r[Z] = (float)ofa_class_budget[(i + b) % OFA_N_CLASSES];
		}
	}
	ofa_ctrl_fit_scale(mu->data, sc->data, zin, k, (int)ZB);
	free(x0);
	free(z);
	free(zin);
}

int
ofa_train(struct ofa *m, const struct ctr *emb, const struct dataset *ds,
    const uint32_t *idx, size_t n, const uint32_t *val, size_t nval,
    const struct ofa_train_opts *o, struct ofa_train_stats *stats)
{
	const struct ofa_config *c = &m->cfg;
	struct ofa_train_stats st;
	struct train_ctx tc = { m, emb, NULL, ds, o, val, nval, NULL, NULL,
	    NULL, NULL, { 0 }, &st };
	struct fit_hooks h = { train_grad, train_update,
	    nval > 0 ? train_val : NULL, train_improved, train_epoch, &tc };
	struct fit_opts fo;
	struct fit_stats fs;
	int rc, Bm;

	memset(&st, 0, sizeof(st));
	st.val_loss = st.train_loss = NAN;
	if (o == NULL || ds == NULL || idx == NULL || n == 0 ||
	    o->epochs < 1 || o->batch < 1 || (nval > 0 && val == NULL))
		return -EINVAL;
	for (size_t i = 0; i < n; i++)
		if (idx[i] >= ds->n)
			return -EINVAL;
	if (ofa_fits_ctr(m, emb) != 0)
		return -EINVAL;
	if (m->ti_cw1 >= 0)
		ctrl_fit(m, emb, ds, idx, n);
	Bm = o->batch;
	if (c->ctr_base)
		tc.scr = ctr_clone(emb);
	tc.x0 = xcalloc((size_t)Bm * c->in_dim, sizeof(float));
	tc.z = xcalloc((size_t)Bm * c->z_dim, sizeof(float));
	tc.bud = xcalloc((size_t)Bm, sizeof(float));
	tc.y = xcalloc((size_t)Bm, sizeof(float));
	fo = (struct fit_opts){ o->epochs, Bm, o->patience, o->seed, 0,
	    o->stop };
	rc = fit_run(m->p.params, m->p.n_params, idx, n, &fo, &h, &fs);
	ofa_zero_grad(m);
	st.train_loss = fs.train_loss;
	st.val_loss = fs.val_loss;
	st.epochs = fs.epochs;
	st.best_epoch = fs.best_epoch;
	if (stats != NULL)
		*stats = st;
	ctr_free(tc.scr);
	free(tc.x0);
	free(tc.z);
	free(tc.bud);
	free(tc.y);
	return rc;
}

int
ofa_predict(struct ofa *m, const struct ctr *emb, const struct dataset *ds,
    const uint32_t *idx, size_t n, double budget, float *out, double *blocks)
{
	const struct ofa_config *c = &m->cfg;
	struct ctr *scr;
	float *x0, *z, *bud, *gt;
	double nb = 0;
	int rc = 0, L = c->n_blocks;

	for (size_t i = 0; i < n; i++)
		if (idx[i] >= ds->n)
			return -EINVAL;
	if (ofa_fits_ctr(m, emb) != 0)
		return -EINVAL;
	scr = c->ctr_base ? ctr_clone(emb) : NULL;
	x0 = xcalloc((size_t)PRED_BATCH * c->in_dim, sizeof(float));
	z = xcalloc((size_t)PRED_BATCH * c->z_dim, sizeof(float));
	bud = xcalloc(PRED_BATCH, sizeof(float));
	gt = xcalloc((size_t)PRED_BATCH * L, sizeof(float));
	for (int b = 0; b < PRED_BATCH; b++)
		bud[b] = (float)budget;
	for (size_t i = 0; i < n; i += PRED_BATCH) {
		int B = (int)(n - i < PRED_BATCH ? n - i : PRED_BATCH);
		if ((rc = inputs(m, emb, scr, ds, idx + i, B, x0, z)) != 0 ||
		    (rc = ofa_forward(m, x0, z, bud, B, gt, out + i)) != 0)
			break;
		for (int k = 0; k < B * L; k++)
			nb += gt[k];
		for (int b = 0; b < B; b++)
			out[i + b] = (float)sigm(out[i + b]);
	}
	if (blocks != NULL)
		*blocks = n ? nb / (double)n : 0;
	ctr_free(scr);
	free(x0);
	free(z);
	free(bud);
	free(gt);
	return rc;
}

/* ---- device ------------------------------------------------------------------ */

void
ofa_assembled_init(struct ofa_assembled *a)
{
	memset(a, 0, sizeof(*a));
}

void
ofa_assembled_fini(struct ofa_assembled *a)
{
	free(a->buf);
	memset(a, 0, sizeof(*a));
}

int
ofa_select(const struct ofa *m, const float *z, double budget, int *mask,
    float *gate_logit)
{
	float zin[CTR_MAX_DIM + OFA_NB], cl[OFA_MAX_BLOCKS], gt[OFA_MAX_BLOCKS];
	float h[OFA_CTRL_MAX_HIDDEN];
	int L = m->cfg.n_blocks, n;

	memcpy(zin, z, (size_t)m->cfg.z_dim * sizeof(float));
	zin[m->cfg.z_dim] = (float)budget;
	controller(m, zin, cl, h);
	n = project(L, cl, budget, gt);
	for (int l = 0; l < L; l++) {
		if (mask != NULL)
			mask[l] = gt[l] > 0.5f;
		if (gate_logit != NULL)
			gate_logit[l] = cl[l];
	}
	return n;
}

int
ofa_assemble(const struct ofa *m, const float *z, double budget,
    struct ofa_assembled *a)
{
	int mask[OFA_MAX_BLOCKS];

	ofa_select(m, z, budget, mask, a->gate_logit);
	if (m->gate_mode == OFA_GATE_ALL || m->gate_mode == OFA_GATE_STATIC)
		for (int l = 0; l < m->cfg.n_blocks; l++)
			mask[l] = 1;
	return ofa_assemble_mask(m, z, mask, a);
}

int
ofa_assemble_mask(const struct ofa *m, const float *z, const int *mask,
    struct ofa_assembled *a)
{
	const struct ofa_config *c = &m->cfg;
	int L = c->n_blocks, H = c->hidden, F = c->inner;
	int R = c->rank, C0 = c->in_dim, k = 0;
	size_t need;
	float *f, *As;
	float gz[OFA_DUET_MAX_HIDDEN + CTR_MAX_DIM];

	for (int l = 0; l < L; l++)
		if (mask[l] && !m->has[l])
			return -ENOENT;
	if (m->ti_gw >= 0)
		ofa_duet_forward(m->t[m->ti_gw].data, m->t[m->ti_gb].data, z,
		    1, c->z_dim, m->Zg, gz);
	else
		memcpy(gz, z, (size_t)c->z_dim * sizeof(float));
	need = (size_t)H * C0 + H + H + 1 + (size_t)L * (2 * (size_t)F * H +
	    F + H) + (size_t)F * R;
	if (need > a->cap) {
		free(a->buf);
		a->buf = xmalloc(need * sizeof(float));
		a->cap = need;
	}
	a->C0 = C0;
	a->H = H;
	a->F = F;
	a->fm = c->interaction == CTR_INTER_FM;
	f = a->buf;
	a->stem_w = f; f += (size_t)H * C0;
	a->stem_b = f; f += H;
	a->out_w = f; f += H;
	a->out_b = f; f += 1;
	As = f; f += (size_t)F * R;	/* A diag(g), per block */
	memcpy(a->stem_w, m->t[T_STEM_W].data, (size_t)H * C0 * sizeof(float));
	memcpy(a->stem_b, m->t[T_STEM_B].data, (size_t)H * sizeof(float));
	memcpy(a->out_w, m->t[T_OUT_W].data, (size_t)H * sizeof(float));
	a->out_b[0] = m->t[T_OUT_B].data[0];
	for (int l = 0; l < L; l++) {
		float g[OFA_MAX_RANK];
		const float *W = bt(m, l, BT_W)->data, *A = bt(m, l, BT_A)->data;
		const float *Bm = bt(m, l, BT_BM)->data;
		if (!mask[l])
			continue;
		a->block[k] = l;
		a->w[k] = f; f += (size_t)F * H;
		a->b[k] = f; f += F;
		a->v[k] = f; f += (size_t)H * F;
		a->c[k] = f; f += H;
		/* mapper: g = Wg gz + bg (gz = z, or the generator's layer);
		 * the static backbone has none */
		if (m->gate_mode == OFA_GATE_STATIC)
			memset(g, 0, (size_t)R * sizeof(float));
		else
			linear_forward(g, gz, bt(m, l, BT_GW)->data,
			    bt(m, l, BT_GB)->data, 1, m->Zg, R);
		/* W' = W + (A diag(g)) Bm: scale A's columns, one GEMM */
		for (int i = 0; i < F; i++)
			for (int r = 0; r < R; r++)
				As[(size_t)i * R + r] = A[(size_t)i * R + r] *
				    g[r];
		memcpy(a->w[k], W, (size_t)F * H * sizeof(float));
		cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, F, H, R,
		    1.0f, As, R, Bm, H, 1.0f, a->w[k], H);
		memcpy(a->b[k], bt(m, l, BT_B)->data, (size_t)F * sizeof(float));
		memcpy(a->v[k], bt(m, l, BT_V)->data,
		    (size_t)H * F * sizeof(float));
		memcpy(a->c[k], bt(m, l, BT_C)->data, (size_t)H * sizeof(float));
		k++;
	}
	a->n_blocks = k;
	return 0;
}

void
ofa_assembled_logits(const struct ofa_assembled *a, const float *x0, int B,
    float *out, float *scratch)
{
	int H = a->H, F = a->F, C0 = a->C0;
	float *x = scratch, *o = scratch + H, *h = scratch + 2 * H;

	/* One sample at a time: the device scores a handful of items. */
	for (int b = 0; b < B; b++) {
		linear_forward(x, x0 + (size_t)b * C0, a->stem_w, a->stem_b, 1,
		    C0, H);
		relu_forward(x, x, (size_t)H);
		for (int k = 0; k < a->n_blocks; k++) {
			linear_forward(h, x, a->w[k], a->b[k], 1, H, F);
			relu_forward(h, h, (size_t)F);
			linear_forward(o, h, a->v[k], a->c[k], 1, F, H);
			for (int j = 0; j < H; j++)
				x[j] += o[j];
		}
		linear_forward(out + b, x, a->out_w, a->out_b, 1, H, 1);
		if (a->fm)
			out[b] += x0[(size_t)b * C0 + C0 - 1];
	}
}

double
ofa_assembled_flops(const struct ofa_assembled *a)
{
	double H = a->H, F = a->F, f;

	f = 2.0 * a->C0 * H + 2.0 * H;			/* stem + relu */
	f += a->n_blocks * (2.0 * H * F + 2.0 * F +	/* W x + b, relu */
	    2.0 * F * H + 2.0 * H);			/* V h + c, add */
	f += 2.0 * H + 1.0;				/* head */
	return f + (a->fm ? 1.0 : 0.0);			/* + FM term */
}

double
ofa_adapt_flops(const struct ofa *m, int n_assembled)
{
	const struct ofa_config *c = &m->cfg;
	double f = c->ctrl_hidden > 0 ? ofa_ctrl_flops(m->ZB, c->ctrl_hidden,
	    c->n_blocks) : 2.0 * c->n_blocks * m->ZB;	/* controller */

	if (c->gen_hidden > 0 && n_assembled > 0)	/* generator layer */
		f += ofa_duet_flops(c->z_dim, c->gen_hidden);
	f += n_assembled * (2.0 * m->Zg * c->rank +	/* mapper */
	    (double)c->inner * c->rank +		/* A diag(g) */
	    2.0 * c->inner * c->hidden * c->rank);	/* + (A g) Bm */
	return f;
}

double
ofa_impression_flops(const struct ofa *m, int n_assembled)
{
	const struct ofa_config *c = &m->cfg;
	double f = c->ctrl_hidden > 0 ? ofa_ctrl_flops(m->ZB, c->ctrl_hidden,
	    c->n_blocks) : 2.0 * c->n_blocks * m->ZB;

	if (m->gate_mode == OFA_GATE_ALL || m->gate_mode == OFA_GATE_STATIC)
		f = 0;				/* no controller */
	if (m->gate_mode == OFA_GATE_STATIC)
		return f;			/* nor a mapper */
	if (c->gen_hidden > 0 && n_assembled > 0)
		f += ofa_duet_flops(c->z_dim, c->gen_hidden);
	/* per block g = Wg gz + bg, t = Bm x, g * t, A (g * t) */
	return f + n_assembled * (2.0 * m->Zg * c->rank + 2.0 * c->hidden *
	    c->rank + c->rank + 2.0 * c->rank * c->inner);
}

double
ofa_input_flops(const struct ctr *emb)
{
	const struct ctr_config *c = ctr_config(emb);

	int F = CTR_N_FIELDS + (int)c->n_side, P = F * (F - 1) / 2;
	double f = (double)c->dim * ((double)c->n_genres + c->hist_k);

	/* as ctr_flops: genre bag and behaviour pooling at full length, and
	 * the base's dots and FM term */
	if (c->interaction)
		f += 2.0 * c->dim * P;
	if (c->interaction == CTR_INTER_FM)
		f += 2.0 * P;
	return f;
}

double
ofa_in_flops(const struct ofa *m, const struct ctr *emb)
{
	return m->cfg.ctr_base ? ctr_flops(emb) : ofa_input_flops(emb);
}

double
ofa_full_flops(const struct ofa *m)
{
	struct ofa_assembled a;

	memset(&a, 0, sizeof(a));
	a.C0 = m->cfg.in_dim;
	a.H = m->cfg.hidden;
	a.F = m->cfg.inner;
	a.fm = m->cfg.interaction == CTR_INTER_FM;
	a.n_blocks = m->cfg.n_blocks;
	return ofa_assembled_flops(&a);
}

double
ofa_budget_from_flops(const struct ofa *m, double flops)
{
	struct ofa_assembled a;
	double base, full, b;

	memset(&a, 0, sizeof(a));
	a.C0 = m->cfg.in_dim;
	a.H = m->cfg.hidden;
	a.F = m->cfg.inner;
	base = ofa_assembled_flops(&a);
	full = ofa_full_flops(m);
	b = (flops - base) / (full - base);
	return b < 0 ? 0 : b > 1 ? 1 : b;
}
