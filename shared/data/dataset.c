/*
 * dataset: see dataset.h.
 *
 * DESIGN
 *  - Text input (the samples CSV in csv.c, the MovieLens loaders in
 *    scripts/tools/movielens.c) goes through text.c's bounded reader.
 *  - The canonical order is (user, ts, item, original index): a counting
 *    sort by user followed by a per-user sort, so it is deterministic and
 *    costs O(n log n_u) rather than one big comparison sort.
 * No global state; any thread may call these on objects it owns.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "shared/data/dataset.h"
#include "shared/data/text.h"
#include "shared/rng.h"
#include "shared/xmalloc.h"

/* ------------------------------------------------------------------------ */
/* lifecycle                                                                */

void
dataset_opts_default(struct dataset_opts *o)
{
	memset(o, 0, sizeof(*o));
	o->label_threshold = 4.0f;
	o->hist_k = DATASET_HIST_DEFAULT;
	o->skip_bad = 0;
	o->fmt = DATASET_FMT_AUTO;
}

void
dataset_init(struct dataset *ds)
{
	memset(ds, 0, sizeof(*ds));
}

void
dataset_fini(struct dataset *ds)
{
	free(ds->s);
	free(ds->hist);
	dataset_init(ds);
}

void
dataset_reserve(struct dataset *ds, size_t n_samples, size_t n_hist)
{
	if (n_samples > ds->cap) {
		ds->s = xreallocarray(ds->s, n_samples, sizeof(*ds->s));
		ds->cap = n_samples;
	}
	if (n_hist > ds->hist_cap) {
		ds->hist = xreallocarray(ds->hist, n_hist, sizeof(*ds->hist));
		ds->hist_cap = n_hist;
	}
}

static void
grow(struct dataset *ds, size_t add_s, size_t add_h)
{
	size_t ns = ds->cap, nh = ds->hist_cap;

	if (ds->n + add_s > ns)
		ns = ds->n + add_s > 2 * ns ? ds->n + add_s : 2 * ns;
	if (ds->hist_len + add_h > nh)
		nh = ds->hist_len + add_h > 2 * nh ? ds->hist_len + add_h :
		    2 * nh;
	if (ns < 64)
		ns = 64;
	if (nh < 256)
		nh = 256;
	dataset_reserve(ds, ns, nh);
}

size_t
dataset_append(struct dataset *ds, const struct sample *s,
    const uint32_t *hist, size_t hist_n)
{
	struct sample *d;

	if (hist_n > SAMPLE_HIST_MAX) {
		hist += hist_n - SAMPLE_HIST_MAX;
		hist_n = SAMPLE_HIST_MAX;
	}
	/* hist_off is 32-bit: a dataset beyond that is a broken invariant. */
	if (ds->hist_len + hist_n > UINT32_MAX)
		abort();
	if (ds->n >= ds->cap || ds->hist_len + hist_n > ds->hist_cap)
		grow(ds, 1, hist_n);
	d = &ds->s[ds->n];
	*d = *s;
	d->hist_off = (uint32_t)ds->hist_len;
	d->hist_n = (uint16_t)hist_n;
	if (hist_n > 0)
		memcpy(ds->hist + ds->hist_len, hist, hist_n * sizeof(*hist));
	ds->hist_len += hist_n;
	if (s->user >= ds->n_users)
		ds->n_users = s->user + 1;
	if (s->item >= ds->n_items)
		ds->n_items = s->item + 1;
	for (size_t i = 0; i < hist_n; i++)
		if (hist[i] >= ds->n_items)
			ds->n_items = hist[i] + 1;
	return ds->n++;
}

void
dataset_keep_last(struct dataset *ds, size_t n)
{
	size_t drop, h = 0, cap;
	uint32_t *nh;

	if (ds->n <= n)
		return;
	drop = ds->n - n;
	memmove(ds->s, ds->s + drop, n * sizeof(*ds->s));
	ds->n = n;
	/*
	 * Fresh storage for the kept histories: samples may share a slice
	 * (ranking negatives share their positive's), so the old array
	 * cannot be compacted in place.
	 */
	for (size_t i = 0; i < n; i++)
		h += ds->s[i].hist_n;
	cap = h + h / 4 + 256;	/* room for the appends that follow */
	nh = xmalloc(cap * sizeof(*nh));
	h = 0;
	for (size_t i = 0; i < n; i++) {
		struct sample *x = &ds->s[i];

		if (x->hist_n > 0)
			memcpy(nh + h, ds->hist + x->hist_off,
			    x->hist_n * sizeof(*nh));
		x->hist_off = (uint32_t)h;
		h += x->hist_n;
	}
	free(ds->hist);
	ds->hist = nh;
	ds->hist_len = h;
	ds->hist_cap = cap;
}

/* qsort has no context argument: sort (ts, index) pairs. */
struct tsi {
	int64_t		 ts;
	uint32_t	 i;
};

static int
tsi_cmp(const void *a, const void *b)
{
	const struct tsi *x = a, *y = b;

	if (x->ts != y->ts)
		return x->ts < y->ts ? -1 : 1;
	return x->i < y->i ? -1 : x->i > y->i;
}

void
dataset_sort_by_time(const struct dataset *ds, uint32_t *idx, size_t n)
{
	struct tsi *t;

	if (n < 2)
		return;
	t = xmalloc(n * sizeof(*t));
	for (size_t i = 0; i < n; i++) {
		t[i].ts = ds->s[idx[i]].ts;
		t[i].i = idx[i];
	}
	qsort(t, n, sizeof(*t), tsi_cmp);
	for (size_t i = 0; i < n; i++)
		idx[i] = t[i].i;
	free(t);
}

void
dataset_append_subset(struct dataset *dst, const struct dataset *src,
    const size_t *idx, size_t n)
{
	size_t nh = 0;

	for (size_t i = 0; i < n; i++)
		nh += src->s[idx[i]].hist_n;
	dataset_reserve(dst, dst->n + n, dst->hist_len + nh);
	for (size_t i = 0; i < n; i++) {
		const struct sample *s = &src->s[idx[i]];

		dataset_append(dst, s, sample_hist(src, s), s->hist_n);
	}
	if (src->n_users > dst->n_users)
		dst->n_users = src->n_users;
	if (src->n_items > dst->n_items)
		dst->n_items = src->n_items;
	if (src->n_genres > dst->n_genres)
		dst->n_genres = src->n_genres;
	if (dst->n_side == 0) {
		dst->n_side = src->n_side;
		memcpy(dst->side_card, src->side_card, sizeof(dst->side_card));
	}
}

void
dataset_meta_init(struct dataset_meta *m)
{
	memset(m, 0, sizeof(*m));
}

void
dataset_meta_fini(struct dataset_meta *m)
{
	free(m->user_raw);
	free(m->item_raw);
	free(m->item_genres);
	free(m->schema);
	free(m->item_side);
	dataset_meta_init(m);
}

void
dataset_meta_item_side(struct dataset_meta *m, const struct dataset *ds,
    uint32_t mask)
{
	uint8_t *seen;

	free(m->item_side);
	m->item_side = NULL;
	m->side_item_mask = mask;
	if (mask == 0 || ds->n_items == 0)
		return;
	m->item_side = xcalloc((size_t)ds->n_items * SAMPLE_SIDE_MAX,
	    sizeof(*m->item_side));
	seen = xcalloc(ds->n_items, 1);
	/* unknown (= card) until the item is seen */
	for (uint32_t i = 0; i < ds->n_items; i++)
		for (uint32_t k = 0; k < ds->n_side; k++)
			if (mask & (1u << k))
				m->item_side[(size_t)i * SAMPLE_SIDE_MAX + k] =
				    ds->side_card[k];
	for (size_t j = 0; j < ds->n; j++) {
		const struct sample *s = &ds->s[j];

		if (s->item >= ds->n_items || seen[s->item]++)
			continue;
		for (uint32_t k = 0; k < ds->n_side; k++)
			if (mask & (1u << k))
				m->item_side[(size_t)s->item * SAMPLE_SIDE_MAX +
				    k] = s->side[k];
	}
	free(seen);
}

const char *
dataset_fmt_name(enum dataset_fmt f)
{
	switch (f) {
	case DATASET_FMT_100K:
		return "100k";
	case DATASET_FMT_1M:
		return "1m";
	case DATASET_FMT_LATEST:
		return "latest";
	case DATASET_FMT_CSV:
		return "csv";
	default:
		return "synth";
	}
}

/* ------------------------------------------------------------------------ */
/* canonical order and histories                                            */

struct okey {
	int64_t	 ts;
	uint32_t item;
	size_t	 idx;
};

static int
okey_cmp(const void *a, const void *b)
{
	const struct okey *x = a, *y = b;

	if (x->ts != y->ts)
		return x->ts < y->ts ? -1 : 1;
	if (x->item != y->item)
		return x->item < y->item ? -1 : 1;
	return x->idx < y->idx ? -1 : x->idx > y->idx;
}

/*
 * Canonical order of the samples at sel[0..n) (sel NULL = all): grouped by
 * user (uoff, n_users + 1 entries, allocated), then (ts, item, position).
 * Returns the order as an allocated array of sample indices.
 */
static size_t *
canon_order(const struct dataset *ds, const size_t *sel, size_t n,
    uint32_t n_users, size_t **uoff_out)
{
	size_t *uoff = xcalloc((size_t)n_users + 1, sizeof(*uoff));
	size_t *ord = xmalloc((n ? n : 1) * sizeof(*ord));
	size_t *pos = xmalloc(((size_t)n_users + 1) * sizeof(*pos));
	struct okey *k = NULL;
	size_t kcap = 0;

	for (size_t i = 0; i < n; i++)
		uoff[ds->s[sel ? sel[i] : i].user + 1]++;
	for (uint32_t u = 0; u < n_users; u++)
		uoff[u + 1] += uoff[u];
	memcpy(pos, uoff, ((size_t)n_users + 1) * sizeof(*pos));
	for (size_t i = 0; i < n; i++) {
		size_t j = sel ? sel[i] : i;

		ord[pos[ds->s[j].user]++] = j;
	}
	free(pos);
	for (uint32_t u = 0; u < n_users; u++) {
		size_t a = uoff[u], b = uoff[u + 1], m = b - a;
		int sorted = 1;

		for (size_t i = a + 1; i < b && sorted; i++) {
			const struct sample *p = &ds->s[ord[i - 1]];
			const struct sample *q = &ds->s[ord[i]];

			if (p->ts > q->ts || (p->ts == q->ts &&
			    p->item > q->item))
				sorted = 0;
		}
		if (sorted)
			continue;	/* ties keep position order: stable */
		if (m > kcap) {
			kcap = m;
			k = xreallocarray(k, kcap, sizeof(*k));
		}
		for (size_t i = 0; i < m; i++) {
			const struct sample *s = &ds->s[ord[a + i]];

			k[i].ts = s->ts;
			k[i].item = s->item;
			k[i].idx = ord[a + i];
		}
		qsort(k, m, sizeof(*k), okey_cmp);
		for (size_t i = 0; i < m; i++)
			ord[a + i] = k[i].idx;
	}
	free(k);
	*uoff_out = uoff;
	return ord;
}

uint32_t
dataset_max_user(const struct dataset *ds)
{
	uint32_t nu = ds->n_users;

	for (size_t i = 0; i < ds->n; i++)
		if (ds->s[i].user >= nu)
			nu = ds->s[i].user + 1;
	return nu;
}

void
dataset_build_hist(struct dataset *ds, int H)
{
	uint32_t nu = dataset_max_user(ds), ring[SAMPLE_HIST_MAX];
	size_t *uoff, *ord = canon_order(ds, NULL, ds->n, nu, &uoff);
	struct dataset nd;

	if (H < 0)
		H = 0;
	if (H > SAMPLE_HIST_MAX)
		H = SAMPLE_HIST_MAX;
	dataset_init(&nd);
	dataset_reserve(&nd, ds->n, ds->n * (size_t)(H < 8 ? H : 8));
	for (uint32_t u = 0; u < nu; u++) {
		size_t head = 0, cnt = 0;
		uint32_t tmp[SAMPLE_HIST_MAX];

		/*
		 * Samples of one second form a group that shares the history
		 * before it: a rating given in the same second as another is
		 * not known to be earlier (23% of ml-latest-small's ratings
		 * share a user and a second with another one).
		 */
		for (size_t g = uoff[u], e; g < uoff[u + 1]; g = e) {
			int64_t ts = ds->s[ord[g]].ts;

			/* ring holds the last cnt positives; oldest at head */
			for (size_t j = 0; j < cnt; j++)
				tmp[j] = ring[(head + j) % (size_t)H];
			for (e = g; e < uoff[u + 1] && ds->s[ord[e]].ts == ts;
			    e++)
				dataset_append(&nd, &ds->s[ord[e]], tmp, cnt);
			for (size_t i = g; i < e; i++) {
				const struct sample *s = &ds->s[ord[i]];

				if (H == 0 || !(s->label >= 0.5f))
					continue;
				if (cnt < (size_t)H) {
					ring[(head + cnt) % (size_t)H] =
					    s->item;
					cnt++;
				} else {
					ring[head] = s->item;
					head = (head + 1) % (size_t)H;
				}
			}
		}
	}
	nd.n_users = nu > ds->n_users ? nu : ds->n_users;
	if (ds->n_items > nd.n_items)
		nd.n_items = ds->n_items;
	nd.n_genres = ds->n_genres;
	nd.n_side = ds->n_side;
	memcpy(nd.side_card, ds->side_card, sizeof(nd.side_card));
	free(ord);
	free(uoff);
	dataset_fini(ds);
	*ds = nd;
}

/* ------------------------------------------------------------------------ */
/* index subsets                                                            */

void
dataset_idx_fini(struct dataset_idx *x)
{
	free(x->v);
	free(x->uoff);
	memset(x, 0, sizeof(*x));
}

void
dataset_idx_all(struct dataset_idx *out, const struct dataset *ds)
{
	uint32_t nu = dataset_max_user(ds);

	memset(out, 0, sizeof(*out));
	out->v = canon_order(ds, NULL, ds->n, nu, &out->uoff);
	out->n = ds->n;
	out->n_users = nu;
}

void
dataset_idx_user(struct dataset_idx *out, const struct dataset_idx *x,
    uint32_t u)
{
	size_t a = 0, b = 0;

	memset(out, 0, sizeof(*out));
	out->n_users = x->n_users;
	out->uoff = xcalloc((size_t)x->n_users + 1, sizeof(*out->uoff));
	if (u < x->n_users) {
		a = x->uoff[u];
		b = x->uoff[u + 1];
	}
	out->n = b - a;
	out->v = xmalloc((out->n ? out->n : 1) * sizeof(*out->v));
	if (out->n > 0)
		memcpy(out->v, x->v + a, out->n * sizeof(*out->v));
	for (uint32_t w = 0; w < x->n_users; w++)
		out->uoff[w + 1] = w >= u ? out->n : 0;
}

/* ------------------------------------------------------------------------ */
/* split                                                                    */

void
dataset_fracs_default(struct dataset_fracs *f)
{
	f->pool = 0.70;
	f->local = 0.15;
	f->test = 0.15;
	f->min_user = 3;
	f->cold = 0;
	f->cold_seed = 1;
}

static int
fracs_ok(const struct dataset_fracs *f)
{
	return f->pool >= 0 && f->local >= 0 && f->test >= 0 &&
	    fabs(f->pool + f->local + f->test - 1.0) <= 1e-6 &&
	    f->cold >= 0 && f->cold < 1;
}

int
dataset_fracs_parse(struct dataset_fracs *f, const char *s)
{
	char buf[128];
	struct text_fld fl[4];
	double v[3];
	struct dataset_fracs t = *f;
	size_t n = strlen(s);

	if (n == 0 || n >= sizeof(buf))
		return -EINVAL;
	memcpy(buf, s, n + 1);
	if (text_split_c(buf, n, ',', fl, 4) != 3)
		return -EINVAL;
	for (int i = 0; i < 3; i++)
		if (text_parse_dbl(fl[i].p, fl[i].n, &v[i]) != 0)
			return -EINVAL;
	t.pool = v[0];
	t.local = v[1];
	t.test = v[2];
	if (!fracs_ok(&t))
		return -EINVAL;
	*f = t;
	return 0;
}

static void
idx_alloc(struct dataset_idx *x, size_t n, uint32_t nu)
{
	x->v = xmalloc((n ? n : 1) * sizeof(*x->v));
	x->n = 0;
	x->uoff = xcalloc((size_t)nu + 1, sizeof(*x->uoff));
	x->n_users = nu;
}

struct cold_key {
	uint64_t h;
	uint32_t user;
};

static int
cold_cmp(const void *a, const void *b)
{
	const struct cold_key *x = a, *y = b;

	if (x->h != y->h)
		return x->h < y->h ? -1 : 1;
	return x->user < y->user ? -1 : x->user > y->user;
}

/* Flags the cold users: a seeded hash order, so the count is exact. */
static void
pick_cold(struct dataset_split *sp, const struct dataset_idx *all,
    const struct dataset_fracs *f)
{
	struct cold_key *k = xmalloc((all->n_users ? all->n_users : 1) *
	    sizeof(*k));
	size_t n = 0, want;

	for (uint32_t u = 0; u < all->n_users; u++) {
		uint64_t x = f->cold_seed ^ 0x434f4c44ULL;	/* "COLD" */

		if (all->uoff[u + 1] - all->uoff[u] < f->min_user ||
		    all->uoff[u + 1] == all->uoff[u])
			continue;
		x += 0x9e3779b97f4a7c15ULL * ((uint64_t)u + 1);
		k[n].h = rng_splitmix(&x);
		k[n++].user = u;
	}
	qsort(k, n, sizeof(*k), cold_cmp);
	want = (size_t)floor(f->cold * (double)n + 0.5);
	for (size_t i = 0; i < want && i < n; i++)
		sp->cold[k[i].user] = 1;
	sp->n_cold = (uint32_t)(want < n ? want : n);
	free(k);
}

int
dataset_split(struct dataset_split *sp, const struct dataset *ds,
    const struct dataset_fracs *f)
{
	struct dataset_idx all;
	struct dataset_idx *part[3] = { &sp->pool, &sp->local, &sp->test };

	memset(sp, 0, sizeof(*sp));
	if (!fracs_ok(f))
		return -EINVAL;
	dataset_idx_all(&all, ds);
	for (int k = 0; k < 3; k++)
		idx_alloc(part[k], ds->n, all.n_users);
	sp->cold = xcalloc(all.n_users ? all.n_users : 1, 1);
	if (f->cold > 0)
		pick_cold(sp, &all, f);
	for (uint32_t u = 0; u < all.n_users; u++) {
		size_t a = all.uoff[u], n = all.uoff[u + 1] - a, cut[3];

		if (n < f->min_user) {
			cut[0] = n;
			cut[1] = n;
		} else {
			cut[0] = (size_t)floor(f->pool * (double)n + 1e-9);
			cut[1] = (size_t)floor((f->pool + f->local) *
			    (double)n + 1e-9);
			if (cut[1] > n)
				cut[1] = n;
			if (cut[0] > cut[1])
				cut[0] = cut[1];
			if (sp->cold[u])
				cut[0] = 0;
		}
		cut[2] = n;
		for (size_t i = 0, k = 0; i < n; i++) {
			while (i >= cut[k])
				k++;
			part[k]->v[part[k]->n++] = all.v[a + i];
		}
		for (int k = 0; k < 3; k++)
			part[k]->uoff[u + 1] = part[k]->n;
	}
	dataset_idx_fini(&all);
	return 0;
}

void
dataset_split_fini(struct dataset_split *sp)
{
	dataset_idx_fini(&sp->pool);
	dataset_idx_fini(&sp->local);
	dataset_idx_fini(&sp->test);
	free(sp->cold);
	sp->cold = NULL;
	sp->n_cold = 0;
}

int
dataset_carve_val(struct dataset_idx *train, struct dataset_idx *val,
    const struct dataset_idx *x, double frac)
{
	memset(train, 0, sizeof(*train));
	memset(val, 0, sizeof(*val));
	if (!(frac >= 0 && frac < 1))
		return -EINVAL;
	idx_alloc(train, x->n, x->n_users);
	idx_alloc(val, x->n, x->n_users);
	for (uint32_t u = 0; u < x->n_users; u++) {
		size_t a = x->uoff[u], n = x->uoff[u + 1] - a;
		size_t nv = (size_t)floor(frac * (double)n + 0.5);

		if (n > 0 && nv > n - 1)
			nv = n - 1;
		memcpy(train->v + train->n, x->v + a,
		    (n - nv) * sizeof(*x->v));
		train->n += n - nv;
		memcpy(val->v + val->n, x->v + a + n - nv,
		    nv * sizeof(*x->v));
		val->n += nv;
		train->uoff[u + 1] = train->n;
		val->uoff[u + 1] = val->n;
	}
	return 0;
}
