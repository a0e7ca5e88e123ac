/*
 * movielens: the MovieLens loaders (see movielens.h).
 *
 * DESIGN: three small format-specific parsers produce raw records (raw
 * user, raw item, rating, ts) plus a raw item -> genre mask table; one
 * common finisher assigns dense ids (ascending raw id), labels, genres,
 * and the canonical order + histories (dataset_build_hist).
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

#include "scripts/tools/movielens.h"
#include "shared/data/schema.h"
#include "shared/data/text.h"
#include "shared/xmalloc.h"

/* ------------------------------------------------------------------------ */
/* MovieLens                                                                */

struct rawr {
	int64_t	 u, i, ts;
	float	 rating;
};

struct rawmovie {
	int64_t	 id;
	size_t	 line;
	uint32_t mask;
	int	 year;		/* release year from the title; 0 unknown */
};

/* Demographics (100K u.user, 1M users.dat); fields -1 when unknown. */
struct rawuser {
	int64_t	 id;
	int	 age, gender, occ, zip;
};

struct mlload {
	struct text_ectx e;
	struct rawr *r;
	size_t	 nr, rcap;
	struct rawmovie *m;
	size_t	 nm, mcap;
	char	 genre[SAMPLE_GENRES_MAX][DATASET_GENRE_NAME_MAX];
	uint32_t n_genres;
	int	 fixed_genres;	/* 100K: genre bits fixed by u.genre */
	struct rawuser *u;
	size_t	 nu, ucap;
	int	 year;		/* the year of the movie line being added */
};

static int
path_exists(const char *dir, const char *name)
{
	char p[4096];
	struct stat st;

	if ((size_t)snprintf(p, sizeof(p), "%s/%s", dir, name) >= sizeof(p))
		return 0;
	return stat(p, &st) == 0 && S_ISREG(st.st_mode);
}

int
dataset_detect(const char *dir)
{
	if (path_exists(dir, "ratings.csv"))
		return DATASET_FMT_LATEST;
	if (path_exists(dir, "ratings.dat"))
		return DATASET_FMT_1M;
	if (path_exists(dir, "u.data"))
		return DATASET_FMT_100K;
	return -ENOENT;
}

static void
add_rating(struct mlload *L, int64_t u, int64_t i, double r, int64_t ts)
{
	if (L->nr == L->rcap) {
		L->rcap = L->rcap ? 2 * L->rcap : 4096;
		L->r = xreallocarray(L->r, L->rcap, sizeof(*L->r));
	}
	L->r[L->nr].u = u;
	L->r[L->nr].i = i;
	L->r[L->nr].ts = ts;
	L->r[L->nr].rating = (float)r;
	L->nr++;
}

static void
add_movie(struct mlload *L, int64_t id, size_t line, uint32_t mask)
{
	if (L->nm == L->mcap) {
		L->mcap = L->mcap ? 2 * L->mcap : 1024;
		L->m = xreallocarray(L->m, L->mcap, sizeof(*L->m));
	}
	L->m[L->nm].id = id;
	L->m[L->nm].line = line;
	L->m[L->nm].mask = mask;
	L->m[L->nm].year = L->year;
	L->nm++;
	L->year = 0;
}

/* Raw ids are non-negative decimals below 2^53. */
static int
parse_id(const struct text_fld *f, int64_t *out)
{
	uint64_t v;

	if (text_parse_u64(f->p, f->n, &v) != 0 || v > (1ull << 53))
		return -1;
	*out = (int64_t)v;
	return 0;
}

/* Checks and stores one rating from its four fields. */
static int
rating_fields(struct mlload *L, const char *path, size_t line,
    const struct text_fld *f)
{
	int64_t u, i, ts;
	double r;

	if (parse_id(&f[0], &u) != 0)
		return text_bad_line(&L->e, path, line, "bad user id");
	if (parse_id(&f[1], &i) != 0)
		return text_bad_line(&L->e, path, line, "bad item id");
	if (text_parse_dbl(f[2].p, f[2].n, &r) != 0 || r < 0 || r > 10)
		return text_bad_line(&L->e, path, line, "bad rating");
	if (text_parse_i64(f[3].p, f[3].n, &ts) != 0)
		return text_bad_line(&L->e, path, line, "bad timestamp");
	add_rating(L, u, i, r, ts);
	return 0;
}

/* Genre name -> bit, adding it if new; -1 when more than 32. */
static int
genre_bit(struct mlload *L, const char *p, size_t n)
{
	for (uint32_t g = 0; g < L->n_genres; g++)
		if (strlen(L->genre[g]) == n && memcmp(L->genre[g], p, n) == 0)
			return (int)g;
	if (L->n_genres == SAMPLE_GENRES_MAX)
		return -1;
	memcpy(L->genre[L->n_genres], p, n);
	L->genre[L->n_genres][n] = '\0';
	return (int)L->n_genres++;
}

/* "A|B|C" -> mask; "(no genres listed)" and "" -> 0. */
static int
genre_list(struct mlload *L, const char *path, size_t line, char *p,
    size_t n, uint32_t *mask)
{
	struct text_fld g[SAMPLE_GENRES_MAX + 1];
	int k;

	*mask = 0;
	if (n == 0 || (n == 18 && memcmp(p, "(no genres listed)", 18) == 0))
		return 0;
	k = text_split_c(p, n, '|', g, SAMPLE_GENRES_MAX + 1);
	if (k > SAMPLE_GENRES_MAX)
		return text_bad_line(&L->e, path, line, "too many genres") ? -1 : 1;
	for (int j = 0; j < k; j++) {
		int b;

		if (g[j].n == 0 || g[j].n >= DATASET_GENRE_NAME_MAX ||
		    memchr(g[j].p, '\0', g[j].n) != NULL)
			return text_bad_line(&L->e, path, line, "bad genre name") ?
			    -1 : 1;
		if ((b = genre_bit(L, g[j].p, g[j].n)) < 0)
			return text_bad_line(&L->e, path, line,
			    "more than 32 distinct genres") ? -1 : 1;
		*mask |= 1u << b;
	}
	return 0;
}

/*
 * The release year at the end of a title, "Heat (1995)" (trailing blanks
 * and a closing quote allowed); 0 when there is none or it is implausible.
 */
static int
title_year(const char *p, size_t n)
{
	int y = 0;

	while (n > 0 && (p[n - 1] == ' ' || p[n - 1] == '"' || p[n - 1] == '\r'))
		n--;
	if (n < 6 || p[n - 1] != ')' || p[n - 6] != '(')
		return 0;
	for (size_t i = n - 5; i < n - 1; i++) {
		if (p[i] < '0' || p[i] > '9')
			return 0;
		y = y * 10 + (p[i] - '0');
	}
	return y >= 1800 && y <= 2200 ? y : 0;
}

static const char *const ml100k_occ[] = {
	"administrator", "artist", "doctor", "educator", "engineer",
	"entertainment", "executive", "healthcare", "homemaker", "lawyer",
	"librarian", "marketing", "none", "other", "programmer", "retired",
	"salesman", "scientist", "student", "technician", "writer",
};
#define ML_N_OCC	21	/* 1M codes 0..20, 100K the names above */

static void
add_user(struct mlload *L, const struct rawuser *u)
{
	if (L->nu == L->ucap) {
		L->ucap = L->ucap ? 2 * L->ucap : 1024;
		L->u = xreallocarray(L->u, L->ucap, sizeof(*L->u));
	}
	L->u[L->nu++] = *u;
}

/* Fills a rawuser from raw id, age, gender, occupation, zip fields. */
static int
user_fields(struct mlload *L, const char *path, size_t line,
    const struct text_fld *id, const struct text_fld *age,
    const struct text_fld *gen, const struct text_fld *occ,
    const struct text_fld *zip, int occ_names)
{
	struct rawuser u;
	uint32_t v;

	if (parse_id(id, &u.id) != 0)
		return text_bad_line(&L->e, path, line, "bad user id");
	u.age = text_parse_u32(age->p, age->n, &v) == 0 && v < 200 ?
	    (int)v : -1;
	u.gender = gen->n == 1 && gen->p[0] == 'F' ? 0 : gen->n == 1 &&
	    gen->p[0] == 'M' ? 1 : -1;
	u.occ = -1;
	if (occ_names) {
		for (int k = 0; k < ML_N_OCC; k++)
			if (strlen(ml100k_occ[k]) == occ->n &&
			    memcmp(ml100k_occ[k], occ->p, occ->n) == 0)
				u.occ = k;
	} else if (text_parse_u32(occ->p, occ->n, &v) == 0 && v < ML_N_OCC)
		u.occ = (int)v;
	u.zip = zip->n > 0 && zip->p[0] >= '0' && zip->p[0] <= '9' ?
	    zip->p[0] - '0' : -1;
	add_user(L, &u);
	return 0;
}

typedef int (*line_fn)(struct mlload *, const char *, size_t, char *,
    size_t);

/*
 * Runs fn over every non-empty line of dir/name; header lines (count
 * hdr) must equal hdr_text when it is non-NULL. Returns 0, -ENOENT, -EIO
 * or -EINVAL.
 */
static int
for_lines(struct mlload *L, const char *dir, const char *name,
    const char *hdr_text, line_fn fn)
{
	char path[4096];
	struct text_lr r;
	char *line;
	size_t len;
	int rc, st, skip;

	if ((size_t)snprintf(path, sizeof(path), "%s/%s", dir, name) >=
	    sizeof(path))
		return -ENAMETOOLONG;
	if ((rc = text_lr_open(&r, path)) != 0) {
		text_err_set(L->e.err, "%s: %s", path, strerror(-rc));
		return rc;
	}
	rc = 0;
	skip = L->e.skip;
	while ((st = text_lr_next(&r, &line, &len)) != TEXT_LR_EOF) {
		if (st == TEXT_LR_IOERR) {
			rc = -errno;
			text_err_set(L->e.err, "%s: %s", path, strerror(errno));
			break;
		}
		if (st == TEXT_LR_LONG) {
			if (r.lineno == 1 && hdr_text != NULL)
				L->e.skip = 0;
			if ((rc = text_bad_line(&L->e, path, r.lineno,
			    "line too long")) != 0)
				break;
			continue;
		}
		if (r.lineno == 1 && len >= 3 &&
		    memcmp(line, "\xef\xbb\xbf", 3) == 0) {
			line += 3;	/* UTF-8 BOM */
			len -= 3;
		}
		if (r.lineno == 1 && hdr_text != NULL) {
			if (len != strlen(hdr_text) ||
			    memcmp(line, hdr_text, len) != 0) {
				char m[128];

				snprintf(m, sizeof(m), "expected header '%s'",
				    hdr_text);
				/* A bad header is never skippable. */
				L->e.skip = 0;
				rc = text_bad_line(&L->e, path, r.lineno, m);
				break;
			}
			continue;
		}
		if (len == 0)
			continue;
		if (L->e.err != NULL)
			L->e.err->n_lines++;
		if ((rc = fn(L, path, r.lineno, line, len)) != 0)
			break;
	}
	L->e.skip = skip;
	text_lr_close(&r);
	return rc;
}

static int
ratings_tab_fn(struct mlload *L, const char *path, size_t line, char *s,
    size_t n)
{
	struct text_fld f[4];

	if (text_split_c(s, n, '\t', f, 4) != 4)
		return text_bad_line(&L->e, path, line, "expected 4 fields");
	return rating_fields(L, path, line, f);
}

static int
ratings_dat_fn(struct mlload *L, const char *path, size_t line, char *s,
    size_t n)
{
	struct text_fld f[4];

	if (text_split_cc(s, n, f, 4) != 4)
		return text_bad_line(&L->e, path, line, "expected 4 fields");
	return rating_fields(L, path, line, f);
}

static int
ratings_csv_fn(struct mlload *L, const char *path, size_t line, char *s,
    size_t n)
{
	struct text_fld f[4];
	int k = text_split_csv(s, n, f, 4);

	if (k < 0)
		return text_bad_line(&L->e, path, line, "bad quoting");
	if (k != 4)
		return text_bad_line(&L->e, path, line, "expected 4 fields");
	return rating_fields(L, path, line, f);
}

static int
movie_common(struct mlload *L, const char *path, size_t line,
    const struct text_fld *id, char *g, size_t gn)
{
	int64_t mid;
	uint32_t mask;
	int rc;

	if (parse_id(id, &mid) != 0)
		return text_bad_line(&L->e, path, line, "bad movie id");
	if ((rc = genre_list(L, path, line, g, gn, &mask)) != 0)
		return rc < 0 ? -EINVAL : 0;
	add_movie(L, mid, line, mask);
	return 0;
}

static int
movies_csv_fn(struct mlload *L, const char *path, size_t line, char *s,
    size_t n)
{
	struct text_fld f[3];
	int k = text_split_csv(s, n, f, 3);

	if (k < 0)
		return text_bad_line(&L->e, path, line, "bad quoting");
	if (k != 3)
		return text_bad_line(&L->e, path, line, "expected 3 fields");
	if (f[1].n > DATASET_FIELD_MAX)
		return text_bad_line(&L->e, path, line, "title too long");
	L->year = title_year(f[1].p, f[1].n);
	return movie_common(L, path, line, &f[0], f[2].p, f[2].n);
}

static int
movies_dat_fn(struct mlload *L, const char *path, size_t line, char *s,
    size_t n)
{
	struct text_fld f[64];
	int k = text_split_cc(s, n, f, 64);

	/* A title containing "::" just yields more fields: id is the first,
	 * genres the last. */
	if (k < 3)
		return text_bad_line(&L->e, path, line, "expected 3 fields");
	if (k > 64)
		return text_bad_line(&L->e, path, line, "too many fields");
	L->year = title_year(f[k - 2].p, f[k - 2].n);
	return movie_common(L, path, line, &f[0], f[k - 1].p, f[k - 1].n);
}

static int
uitem_fn(struct mlload *L, const char *path, size_t line, char *s, size_t n)
{
	struct text_fld f[128];
	int k = text_split_c(s, n, '|', f, 128);
	int ng = (int)L->n_genres;
	uint32_t mask = 0;
	int64_t mid;

	/* id|title|date|video date|url|flags...: title may hold '|', so the
	 * flags are the last n_genres fields. */
	if (k < 5 + ng)
		return text_bad_line(&L->e, path, line, "too few fields");
	if (k > 128)
		return text_bad_line(&L->e, path, line, "too many fields");
	if (parse_id(&f[0], &mid) != 0)
		return text_bad_line(&L->e, path, line, "bad movie id");
	for (int g = 0; g < ng; g++) {
		const struct text_fld *x = &f[k - ng + g];

		if (x->n != 1 || (x->p[0] != '0' && x->p[0] != '1'))
			return text_bad_line(&L->e, path, line, "bad genre flag");
		if (x->p[0] == '1')
			mask |= 1u << g;
	}
	/* the title's year, else the release date's (01-Jan-1995) */
	L->year = title_year(f[1].p, f[1].n);
	if (L->year == 0 && f[2].n == 11) {
		uint32_t y;

		if (text_parse_u32(f[2].p + 7, 4, &y) == 0 && y >= 1800 &&
		    y <= 2200)
			L->year = (int)y;
	}
	add_movie(L, mid, line, mask);
	return 0;
}

static int
ugenre_fn(struct mlload *L, const char *path, size_t line, char *s,
    size_t n)
{
	struct text_fld f[3];
	uint32_t idx;

	if (text_split_c(s, n, '|', f, 3) != 2)
		return text_bad_line(&L->e, path, line, "expected 2 fields");
	if (text_parse_u32(f[1].p, f[1].n, &idx) != 0 || idx != L->n_genres ||
	    idx >= SAMPLE_GENRES_MAX)
		return text_bad_line(&L->e, path, line, "bad genre index");
	if (f[0].n == 0 || f[0].n >= DATASET_GENRE_NAME_MAX)
		return text_bad_line(&L->e, path, line, "bad genre name");
	memcpy(L->genre[idx], f[0].p, f[0].n);
	L->genre[idx][f[0].n] = '\0';
	L->n_genres++;
	return 0;
}

/* 100K u.user: id|age|gender|occupation|zip */
static int
uuser_fn(struct mlload *L, const char *path, size_t line, char *s, size_t n)
{
	struct text_fld f[6];

	if (text_split_c(s, n, '|', f, 6) != 5)
		return text_bad_line(&L->e, path, line, "expected 5 fields");
	return user_fields(L, path, line, &f[0], &f[1], &f[2], &f[3], &f[4],
	    1);
}

/* 1M users.dat: UserID::Gender::Age::Occupation::Zip-code */
static int
users_dat_fn(struct mlload *L, const char *path, size_t line, char *s,
    size_t n)
{
	struct text_fld f[6];

	if (text_split_cc(s, n, f, 6) != 5)
		return text_bad_line(&L->e, path, line, "expected 5 fields");
	return user_fields(L, path, line, &f[0], &f[2], &f[1], &f[3], &f[4],
	    0);
}

static const char *const ml100k_genres[] = {
	"unknown", "Action", "Adventure", "Animation", "Children's",
	"Comedy", "Crime", "Documentary", "Drama", "Fantasy", "Film-Noir",
	"Horror", "Musical", "Mystery", "Romance", "Sci-Fi", "Thriller",
	"War", "Western",
};

static int
i64_cmp(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;

	return x < y ? -1 : x > y;
}

static int
movie_cmp(const void *a, const void *b)
{
	const struct rawmovie *x = a, *y = b;

	if (x->id != y->id)
		return x->id < y->id ? -1 : 1;
	return x->line < y->line ? -1 : x->line > y->line;
}

/* Sorted unique copy of a field of the raw ratings. */
static int64_t *
uniq_ids(const struct rawr *r, size_t n, int which, uint32_t *nout)
{
	int64_t *v = xmalloc((n ? n : 1) * sizeof(*v));
	size_t w = 0;

	for (size_t i = 0; i < n; i++)
		v[i] = which ? r[i].i : r[i].u;
	qsort(v, n, sizeof(*v), i64_cmp);
	for (size_t i = 0; i < n; i++)
		if (w == 0 || v[w - 1] != v[i])
			v[w++] = v[i];
	*nout = (uint32_t)w;
	return xreallocarray(v, w ? w : 1, sizeof(*v));
}

static size_t
find_id(const int64_t *v, size_t n, int64_t id)
{
	size_t lo = 0, hi = n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (v[mid] < id)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

struct gname {
	char	 name[DATASET_GENRE_NAME_MAX];
	uint32_t old;
};

static int
gname_cmp(const void *a, const void *b)
{
	return strcmp(((const struct gname *)a)->name,
	    ((const struct gname *)b)->name);
}

static int
user_cmp(const void *a, const void *b)
{
	const struct rawuser *x = a, *y = b;

	return x->id < y->id ? -1 : x->id > y->id;
}

static void
fld(struct schema *sc, const char *name, enum schema_kind k,
    enum schema_side sd, uint32_t card, const double *b, uint32_t nb,
    const char *values, uint32_t nv)
{
	struct schema_field f;
	char err[128];

	memset(&f, 0, sizeof(f));
	snprintf(f.name, sizeof(f.name), "%s", name);
	f.kind = k;
	f.side = sd;
	f.card = card;
	f.n_bounds = nb;
	if (nb > 0)
		memcpy(f.bounds, b, nb * sizeof(*b));
	f.values = (char *)values;
	f.n_values = nv;
	if (schema_add(sc, &f, err, sizeof(err)) != 0)
		abort();	/* the fields below are valid */
}

/*
 * The schema of the loaded data: ids, time, rating, the genre bag, and
 * the side fields the layout has: user demographics (100K u.user, 1M
 * users.dat: age bucketed as 1M's groups, gender, occupation, the zip's
 * first digit) and the release year (from titles; bucketed). *user_side
 * gets the slot of age (the others follow), *year_slot the year's; -1
 * when absent.
 */
static void
ml_schema(struct mlload *L, struct schema *sc, const struct dataset_opts *o,
    int *user_side, int *year_slot)
{
	static const double age_b[] = { 18, 25, 35, 45, 50, 56 };
	static const double year_b[] = { 1950, 1960, 1970, 1980, 1990, 1995,
	    2000, 2005, 2010, 2015 };
	struct schema_field *r;
	int years = 0;

	schema_init(sc);
	fld(sc, "user", SCHEMA_K_USER, SCHEMA_S_NONE, 0, NULL, 0, NULL, 0);
	fld(sc, "item", SCHEMA_K_ITEM, SCHEMA_S_NONE, 0, NULL, 0, NULL, 0);
	fld(sc, "timestamp", SCHEMA_K_TS, SCHEMA_S_NONE, 0, NULL, 0, NULL, 0);
	fld(sc, "rating", SCHEMA_K_RATING, SCHEMA_S_NONE, 0, NULL, 0, NULL, 0);
	r = &sc->f[sc->rating];
	r->threshold = o->label_threshold;
	if (L->n_genres > 0)
		fld(sc, "genres", SCHEMA_K_BAG, SCHEMA_S_ITEM, L->n_genres,
		    NULL, 0, NULL, 0);
	*user_side = *year_slot = -1;
	if (L->nu > 0) {
		*user_side = (int)sc->n_side;
		fld(sc, "age", SCHEMA_K_NUM, SCHEMA_S_USER, 0, age_b,
		    sizeof(age_b) / sizeof(age_b[0]), NULL, 0);
		fld(sc, "gender", SCHEMA_K_CAT, SCHEMA_S_USER, 0, NULL, 0,
		    "F\0M", 2);
		fld(sc, "occupation", SCHEMA_K_CAT, SCHEMA_S_USER, ML_N_OCC,
		    NULL, 0, NULL, 0);
		fld(sc, "zip1", SCHEMA_K_CAT, SCHEMA_S_USER, 10, NULL, 0, NULL,
		    0);
	}
	for (size_t i = 0; i < L->nm; i++)
		years |= L->m[i].year != 0;
	if (years) {
		*year_slot = (int)sc->n_side;
		fld(sc, "year", SCHEMA_K_NUM, SCHEMA_S_ITEM, 0, year_b,
		    sizeof(year_b) / sizeof(year_b[0]), NULL, 0);
	}
}

/* Dense ids, labels, genres, canonical order, histories. */
static int
ml_finish(struct mlload *L, struct dataset *ds, struct dataset_meta *meta,
    const struct dataset_opts *o)
{
	uint32_t nu, ni, remap[SAMPLE_GENRES_MAX];
	int64_t *uraw, *iraw;
	uint32_t *igen, *iyear, (*uside)[4];
	struct schema sc;
	int us, ys;

	if (L->nr == 0) {
		text_err_set(L->e.err, "no ratings");
		return -EINVAL;
	}
	if (L->nr > UINT32_MAX) {
		text_err_set(L->e.err, "too many ratings");
		return -E2BIG;
	}
	/* Genre bits sorted by name, except 100K which keeps u.genre order. */
	for (uint32_t g = 0; g < SAMPLE_GENRES_MAX; g++)
		remap[g] = g;
	if (!L->fixed_genres) {
		struct gname gn[SAMPLE_GENRES_MAX];

		for (uint32_t g = 0; g < L->n_genres; g++) {
			memcpy(gn[g].name, L->genre[g], sizeof(gn[g].name));
			gn[g].old = g;
		}
		qsort(gn, L->n_genres, sizeof(gn[0]), gname_cmp);
		for (uint32_t g = 0; g < L->n_genres; g++) {
			remap[gn[g].old] = g;
			memcpy(L->genre[g], gn[g].name, sizeof(gn[g].name));
		}
	}
	uraw = uniq_ids(L->r, L->nr, 0, &nu);
	iraw = uniq_ids(L->r, L->nr, 1, &ni);
	igen = xcalloc(ni, sizeof(*igen));
	ml_schema(L, &sc, o, &us, &ys);
	iyear = xcalloc(ni, sizeof(*iyear));
	uside = xcalloc(nu, sizeof(*uside));
	/* user side values (unknown = card when missing) */
	if (us >= 0) {
		qsort(L->u, L->nu, sizeof(*L->u), user_cmp);
		for (uint32_t u = 0; u < nu; u++) {
			size_t lo = 0, hi = L->nu;
			const struct rawuser *x = NULL;

			while (lo < hi) {
				size_t mid = lo + (hi - lo) / 2;

				if (L->u[mid].id < uraw[u])
					lo = mid + 1;
				else
					hi = mid;
			}
			if (lo < L->nu && L->u[lo].id == uraw[u])
				x = &L->u[lo];
			for (int k = 0; k < 4; k++) {
				const struct schema_field *f =
				    &sc.f[sc.side_field[us + k]];
				int v = x == NULL ? -1 : k == 0 ? x->age :
				    k == 1 ? x->gender : k == 2 ? x->occ :
				    x->zip;

				uside[u][k] = v < 0 ? f->card : k == 0 ?
				    schema_bucket(f, v) : (uint32_t)v;
			}
		}
	}
	if (ys >= 0)
		for (uint32_t i = 0; i < ni; i++)
			iyear[i] = sc.f[sc.side_field[ys]].card;
	if (L->nm > 0)
		qsort(L->m, L->nm, sizeof(*L->m), movie_cmp);
	for (uint32_t i = 0; i < ni; i++) {
		size_t lo = 0, hi = L->nm;

		while (lo < hi) {
			size_t mid = lo + (hi - lo) / 2;

			if (L->m[mid].id < iraw[i])
				lo = mid + 1;
			else
				hi = mid;
		}
		if (lo < L->nm && L->m[lo].id == iraw[i]) {
			uint32_t m = L->m[lo].mask, mm = 0;

			for (uint32_t g = 0; g < L->n_genres; g++)
				if (m & (1u << g))
					mm |= 1u << remap[g];
			igen[i] = mm;
			if (ys >= 0 && L->m[lo].year != 0)
				iyear[i] = schema_bucket(
				    &sc.f[sc.side_field[ys]], L->m[lo].year);
		}
	}
	dataset_reserve(ds, L->nr, 0);
	for (size_t k = 0; k < L->nr; k++) {
		struct sample *s = &ds->s[k];
		const struct rawr *r = &L->r[k];

		memset(s, 0, sizeof(*s));
		s->user = (uint32_t)find_id(uraw, nu, r->u);
		s->item = (uint32_t)find_id(iraw, ni, r->i);
		s->ts = r->ts;
		s->rating = r->rating;
		s->label = r->rating >= o->label_threshold ? 1.0f : 0.0f;
		s->genres = igen[s->item];
		for (int j = 0; us >= 0 && j < 4; j++)
			s->side[us + j] = uside[s->user][j];
		if (ys >= 0)
			s->side[ys] = iyear[s->item];
	}
	ds->n = L->nr;
	ds->n_users = nu;
	ds->n_items = ni;
	ds->n_genres = L->n_genres;
	schema_apply(&sc, ds);
	dataset_build_hist(ds, o->hist_k);
	meta->n_users = nu;
	meta->n_items = ni;
	meta->n_genres = L->n_genres;
	meta->user_raw = uraw;
	meta->item_raw = iraw;
	meta->item_genres = igen;
	memcpy(meta->genre, L->genre, sizeof(meta->genre));
	meta->schema = schema_format(&sc);
	dataset_meta_item_side(meta, ds, schema_item_mask(&sc));
	schema_fini(&sc);
	free(iyear);
	free(uside);
	return 0;
}

int
dataset_load_movielens(struct dataset *ds, struct dataset_meta *meta,
    const char *dir, const struct dataset_opts *o, struct dataset_err *err)
{
	struct dataset_opts def;
	struct dataset_err dummy;
	struct mlload L;
	int fmt, rc;

	if (o == NULL) {
		dataset_opts_default(&def);
		o = &def;
	}
	if (err == NULL)
		err = &dummy;
	memset(err, 0, sizeof(*err));
	memset(&L, 0, sizeof(L));
	L.e.err = err;
	L.e.skip = o->skip_bad;
	if (o->hist_k < 0 || o->hist_k > SAMPLE_HIST_MAX) {
		text_err_set(err, "hist length %d out of range 0..%d", o->hist_k,
		    SAMPLE_HIST_MAX);
		return -EINVAL;
	}
	fmt = o->fmt != DATASET_FMT_AUTO ? (int)o->fmt : dataset_detect(dir);
	if (fmt < 0) {
		text_err_set(err, "%s: no MovieLens ratings file (ratings.csv, "
		    "ratings.dat or u.data)", dir);
		return fmt;
	}
	switch (fmt) {
	case DATASET_FMT_LATEST:
		rc = for_lines(&L, dir, "ratings.csv",
		    "userId,movieId,rating,timestamp", ratings_csv_fn);
		if (rc == 0 && path_exists(dir, "movies.csv"))
			rc = for_lines(&L, dir, "movies.csv",
			    "movieId,title,genres", movies_csv_fn);
		break;
	case DATASET_FMT_1M:
		rc = for_lines(&L, dir, "ratings.dat", NULL, ratings_dat_fn);
		if (rc == 0 && path_exists(dir, "movies.dat"))
			rc = for_lines(&L, dir, "movies.dat", NULL,
			    movies_dat_fn);
		if (rc == 0 && path_exists(dir, "users.dat"))
			rc = for_lines(&L, dir, "users.dat", NULL,
			    users_dat_fn);
		break;
	case DATASET_FMT_100K:
		L.fixed_genres = 1;
		rc = for_lines(&L, dir, "u.data", NULL, ratings_tab_fn);
		if (rc == 0 && path_exists(dir, "u.genre"))
			rc = for_lines(&L, dir, "u.genre", NULL, ugenre_fn);
		if (rc == 0 && L.n_genres == 0) {
			L.n_genres = sizeof(ml100k_genres) /
			    sizeof(ml100k_genres[0]);
			for (uint32_t g = 0; g < L.n_genres; g++)
				snprintf(L.genre[g], sizeof(L.genre[g]), "%s",
				    ml100k_genres[g]);
		}
		if (rc == 0 && path_exists(dir, "u.item"))
			rc = for_lines(&L, dir, "u.item", NULL, uitem_fn);
		if (rc == 0 && path_exists(dir, "u.user"))
			rc = for_lines(&L, dir, "u.user", NULL, uuser_fn);
		break;
	default:
		rc = -EINVAL;
		text_err_set(err, "unknown format %d", fmt);
	}
	/* The movies file is optional: without it all genres are 0 (100K
	 * still names its 19 genres). */
	if (rc == 0) {
		meta->fmt = (enum dataset_fmt)fmt;
		rc = ml_finish(&L, ds, meta, o);
	}
	free(L.r);
	free(L.m);
	free(L.u);
	if (rc != 0) {
		dataset_fini(ds);
		dataset_meta_fini(meta);
	}
	return rc;
}
