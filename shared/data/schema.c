/*
 * schema: the feature schema parser, its canonical writer and the value
 * encoders (see schema.h; the format is in shared/data/README.md).
 *
 * The parser works on a bounded buffer, one line at a time, and never
 * allocates more than the values lists it keeps, so hostile input can only
 * produce an error (tests/fuzz/fuzz_schema.c checks that, and that the
 * canonical text parses back to itself).
 */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "shared/data/schema.h"
#include "shared/data/text.h"
#include "shared/xmalloc.h"

static const char *const kind_names[] = {
	[SCHEMA_K_USER] = "user", [SCHEMA_K_ITEM] = "item",
	[SCHEMA_K_TS] = "ts", [SCHEMA_K_LABEL] = "label",
	[SCHEMA_K_RATING] = "rating", [SCHEMA_K_HIST] = "hist",
	[SCHEMA_K_BAG] = "bag", [SCHEMA_K_CAT] = "cat",
	[SCHEMA_K_NUM] = "num", [SCHEMA_K_HASH] = "hash",
	[SCHEMA_K_SKIP] = "skip",
};
#define N_KINDS	((int)(sizeof(kind_names) / sizeof(kind_names[0])))

static const char *const side_names[] = {
	[SCHEMA_S_NONE] = "none", [SCHEMA_S_USER] = "user",
	[SCHEMA_S_ITEM] = "item", [SCHEMA_S_CONTEXT] = "context",
};

/* Keys each kind accepts (bit k = key k of key_names). */
enum { KY_SIDE, KY_VOCAB, KY_VALUES, KY_BOUNDS, KY_BUCKETS, KY_THRESHOLD,
	KY_IDS, N_KEYS };
static const char *const key_names[N_KEYS] = {
	"side", "vocab", "values", "bounds", "buckets", "threshold", "ids",
};
#define B(k)	(1u << (k))
static const unsigned kind_keys[SCHEMA_K_SKIP + 1] = {
	[SCHEMA_K_USER] = B(KY_VOCAB) | B(KY_IDS),
	[SCHEMA_K_ITEM] = B(KY_VOCAB) | B(KY_IDS),
	[SCHEMA_K_RATING] = B(KY_THRESHOLD),
	[SCHEMA_K_BAG] = B(KY_SIDE) | B(KY_VOCAB) | B(KY_VALUES),
	[SCHEMA_K_CAT] = B(KY_SIDE) | B(KY_VOCAB) | B(KY_VALUES),
	[SCHEMA_K_NUM] = B(KY_SIDE) | B(KY_BOUNDS),
	[SCHEMA_K_HASH] = B(KY_SIDE) | B(KY_BUCKETS),
};

const char *
schema_kind_name(enum schema_kind k)
{
	return (int)k > 0 && (int)k < N_KINDS ? kind_names[k] : "?";
}

const char *
schema_side_name(enum schema_side sd)
{
	return (unsigned)sd <= SCHEMA_S_CONTEXT ? side_names[sd] : "?";
}

void
schema_init(struct schema *s)
{
	memset(s, 0, sizeof(*s));
	s->user = s->item = s->ts = s->label = s->rating = s->hist =
	    s->bag = -1;
	for (int k = 0; k < SAMPLE_SIDE_MAX; k++)
		s->side_field[k] = -1;
}

void
schema_fini(struct schema *s)
{
	for (uint32_t i = 0; i < s->n; i++)
		free(s->f[i].values);
	schema_init(s);
}

static int
ferr(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int
ferr(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	if (errlen > 0) {
		va_start(ap, fmt);
		vsnprintf(err, errlen, fmt, ap);
		va_end(ap);
	}
	return -EINVAL;
}

static int
name_ok(const char *p, size_t n)
{
	if (n == 0 || n >= SCHEMA_NAME_MAX)
		return 0;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)p[i];

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		    (c >= '0' && c <= '9') || c == '_' || c == '.' || c == '-'))
			return 0;
	}
	return 1;
}

/* A decimal number, through strtod so that %.17g round-trips exactly. */
static int
parse_num(const char *p, size_t n, double *out)
{
	char b[64];
	char *end;

	if (n == 0 || n >= sizeof(b))
		return -1;
	memcpy(b, p, n);
	b[n] = '\0';
	if (strspn(b, "0123456789+-.eE") != n)
		return -1;	/* no hex, inf or nan through strtod */
	*out = strtod(b, &end);
	return end == b + n && isfinite(*out) ? 0 : -1;
}

static int
parse_card(const char *p, size_t n, uint32_t *out)
{
	return text_parse_u32(p, n, out) != 0 || *out == 0 ||
	    *out > SCHEMA_CARD_MAX ? -1 : 0;
}

/* "a|b|c" -> f->values; returns 0 or a static message. */
static const char *
parse_values(struct schema_field *f, const char *p, size_t n, uint32_t max)
{
	size_t at = 0, used = 0;

	f->values = xmalloc(n + 1);
	f->n_values = 0;
	while (at <= n) {
		const char *q = memchr(p + at, '|', n - at);
		size_t l = (q ? (size_t)(q - p) : n) - at;
		const char *v = f->values;

		if (!name_ok(p + at, l))
			return "bad value name (1-63 of [A-Za-z0-9_.-])";
		for (uint32_t k = 0; k < f->n_values; k++, v += strlen(v) + 1)
			if (strlen(v) == l && memcmp(v, p + at, l) == 0)
				return "duplicate value name";
		if (f->n_values == max)
			return "too many values";
		memcpy(f->values + used, p + at, l);
		f->values[used + l] = '\0';
		used += l + 1;
		f->n_values++;
		at += l + 1;
	}
	return NULL;
}

static const char *
parse_bounds(struct schema_field *f, const char *p, size_t n)
{
	size_t at = 0;

	f->n_bounds = 0;
	while (at <= n) {
		const char *q = memchr(p + at, ',', n - at);
		size_t l = (q ? (size_t)(q - p) : n) - at;
		double v;

		if (f->n_bounds == SCHEMA_BOUNDS_MAX)
			return "too many bounds (at most 64)";
		if (parse_num(p + at, l, &v) != 0)
			return "bad bound (want finite decimals)";
		if (f->n_bounds > 0 && !(v > f->bounds[f->n_bounds - 1]))
			return "bounds must increase strictly";
		f->bounds[f->n_bounds++] = v;
		at += l + 1;
	}
	return NULL;
}

/* Checks one field on its own and gives it its slot. */
static const char *
add_field(struct schema *s, struct schema_field *f, unsigned seen)
{
	unsigned need = 0;
	int *role = NULL;

	if (s->n == SCHEMA_FIELDS_MAX)
		return "too many fields (at most 64)";
	if (!name_ok(f->name, strlen(f->name)))
		return "bad field name (1-63 of [A-Za-z0-9_.-])";
	if (schema_find(s, f->name, strlen(f->name)) >= 0)
		return "duplicate field name";
	if ((int)f->kind <= 0 || (int)f->kind >= N_KINDS)
		return "bad kind";
	if (seen & ~kind_keys[f->kind])
		return "key not valid for this kind";
	switch (f->kind) {
	case SCHEMA_K_USER: role = &s->user; break;
	case SCHEMA_K_ITEM: role = &s->item; break;
	case SCHEMA_K_TS: role = &s->ts; break;
	case SCHEMA_K_LABEL: role = &s->label; break;
	case SCHEMA_K_RATING: role = &s->rating; break;
	case SCHEMA_K_HIST: role = &s->hist; break;
	case SCHEMA_K_BAG: role = &s->bag; break;
	case SCHEMA_K_CAT:
	case SCHEMA_K_NUM:
	case SCHEMA_K_HASH:
	case SCHEMA_K_SKIP:
		break;
	}
	if (role != NULL && *role >= 0)
		return "a second field of this kind";
	if (f->kind == SCHEMA_K_CAT || f->kind == SCHEMA_K_NUM ||
	    f->kind == SCHEMA_K_HASH)
		need = B(KY_SIDE) | (f->kind == SCHEMA_K_NUM ? B(KY_BOUNDS) :
		    f->kind == SCHEMA_K_HASH ? B(KY_BUCKETS) : 0);
	if ((seen & need) != need)
		return f->kind == SCHEMA_K_NUM ? "num needs side= and bounds=" :
		    f->kind == SCHEMA_K_HASH ? "hash needs side= and buckets=" :
		    "cat needs side=";
	if (f->kind == SCHEMA_K_CAT || f->kind == SCHEMA_K_BAG) {
		int v = (seen & B(KY_VOCAB)) != 0, n = (seen & B(KY_VALUES)) != 0;

		if (v == n)
			return "want exactly one of vocab= and values=";
		if (n)
			f->card = f->n_values;
		if (f->kind == SCHEMA_K_BAG && f->card > SAMPLE_GENRES_MAX)
			return "a bag has at most 32 values";
		if (f->kind == SCHEMA_K_BAG && f->side == SCHEMA_S_NONE)
			f->side = SCHEMA_S_ITEM;
	}
	/* Hashed ids need the bucket count: it is the model's vocabulary. */
	if (f->ids_hash && !(seen & B(KY_VOCAB)))
		return "ids=hash needs vocab= (the number of buckets)";
	if (f->kind == SCHEMA_K_NUM)
		f->card = f->n_bounds + 1;
	if (f->kind == SCHEMA_K_RATING && !(seen & B(KY_THRESHOLD)))
		f->threshold = 4;
	f->slot = -1;
	if (f->kind == SCHEMA_K_CAT || f->kind == SCHEMA_K_NUM ||
	    f->kind == SCHEMA_K_HASH) {
		if (s->n_side == SAMPLE_SIDE_MAX)
			return "more than 8 side fields (cat, num, hash)";
		f->slot = (int)s->n_side;
		s->side_field[s->n_side++] = (int)s->n;
	}
	if (role != NULL)
		*role = (int)s->n;
	s->f[s->n++] = *f;
	return NULL;
}

int
schema_add(struct schema *s, const struct schema_field *in, char *err,
    size_t errlen)
{
	struct schema_field f = *in;
	const char *why;
	unsigned seen = 0;

	/* Which keys the description amounts to. */
	if (f.side != SCHEMA_S_NONE && f.kind != SCHEMA_K_BAG)
		seen |= B(KY_SIDE);
	if (f.n_values > 0)
		seen |= B(KY_VALUES);
	else if (f.card > 0 && (f.kind == SCHEMA_K_CAT ||
	    f.kind == SCHEMA_K_BAG || f.kind == SCHEMA_K_USER ||
	    f.kind == SCHEMA_K_ITEM))
		seen |= B(KY_VOCAB);
	if (f.kind == SCHEMA_K_NUM && f.n_bounds > 0)
		seen |= B(KY_BOUNDS);
	if (f.kind == SCHEMA_K_HASH && f.card > 0)
		seen |= B(KY_BUCKETS);
	if (f.kind == SCHEMA_K_RATING)
		seen |= B(KY_THRESHOLD);
	if (f.ids_hash)
		seen |= B(KY_IDS);
	if (f.card > SCHEMA_CARD_MAX || f.n_bounds > SCHEMA_BOUNDS_MAX)
		return ferr(err, errlen, "field %s: too large", f.name);
	if (f.n_values > 0) {
		/* own a copy of the names */
		const char *v = in->values;
		size_t len = 0;

		for (uint32_t k = 0; k < f.n_values; k++)
			len += strlen(v + len) + 1;
		f.values = xmalloc(len);
		memcpy(f.values, in->values, len);
	} else
		f.values = NULL;
	if ((why = add_field(s, &f, seen)) != NULL) {
		free(f.values);
		return ferr(err, errlen, "field %s: %s", f.name, why);
	}
	return 0;
}

int
schema_check(const struct schema *s, char *err, size_t errlen)
{
	if (s->user < 0)
		return ferr(err, errlen, "no user field");
	if (s->item < 0)
		return ferr(err, errlen, "no item field");
	if (s->label < 0 && s->rating < 0)
		return ferr(err, errlen, "no label or rating field");
	return 0;
}

uint32_t
schema_item_mask(const struct schema *s)
{
	uint32_t m = 0;

	for (uint32_t k = 0; k < s->n_side; k++)
		if (s->f[s->side_field[k]].side == SCHEMA_S_ITEM)
			m |= 1u << k;
	return m;
}

int
schema_find(const struct schema *s, const char *p, size_t n)
{
	for (uint32_t i = 0; i < s->n; i++)
		if (strlen(s->f[i].name) == n && memcmp(s->f[i].name, p, n) == 0)
			return (int)i;
	return -1;
}

/* Splits at blanks: returns the number of tokens (max + 1 if more). */
static int
tokens(const char *p, size_t n, struct text_fld *t, int max)
{
	int k = 0;
	size_t i = 0;

	for (;;) {
		while (i < n && (p[i] == ' ' || p[i] == '\t'))
			i++;
		if (i == n)
			return k;
		if (k == max)
			return max + 1;
		t[k].p = (char *)p + i;
		while (i < n && p[i] != ' ' && p[i] != '\t')
			i++;
		t[k].n = i - (size_t)(t[k].p - p);
		k++;
	}
}

#define TOK(t, s) ((t).n == sizeof(s) - 1 && memcmp((t).p, s, (t).n) == 0)

/* One "field NAME KIND key=value..." line. Returns NULL or why not. */
static const char *
field_line(struct schema *s, const struct text_fld *t, int k)
{
	struct schema_field f;
	unsigned seen = 0;
	const char *why = NULL;
	int kind = 0;

	memset(&f, 0, sizeof(f));
	if (k < 3 || !TOK(t[0], "field"))
		return "expected 'field NAME KIND [key=value ...]'";
	if (!name_ok(t[1].p, t[1].n))
		return "bad field name (1-63 of [A-Za-z0-9_.-])";
	memcpy(f.name, t[1].p, t[1].n);
	for (int j = 1; j < N_KINDS; j++)
		if (strlen(kind_names[j]) == t[2].n &&
		    memcmp(kind_names[j], t[2].p, t[2].n) == 0)
			kind = j;
	if (kind == 0)
		return "unknown kind (want user, item, ts, label, rating, "
		    "hist, bag, cat, num, hash or skip)";
	f.kind = (enum schema_kind)kind;
	for (int j = 3; j < k && why == NULL; j++) {
		const char *eq = memchr(t[j].p, '=', t[j].n), *v;
		size_t kl, vl;
		int key = -1;

		if (eq == NULL) {
			why = "expected key=value";
			break;
		}
		kl = (size_t)(eq - t[j].p);
		v = eq + 1;
		vl = t[j].n - kl - 1;
		for (int x = 0; x < N_KEYS; x++)
			if (strlen(key_names[x]) == kl &&
			    memcmp(key_names[x], t[j].p, kl) == 0)
				key = x;
		if (key < 0)
			why = "unknown key (want side, vocab, values, bounds, "
			    "buckets, threshold or ids)";
		else if (seen & B(key))
			why = "key given twice";
		else if (!(kind_keys[kind] & B(key)))
			why = "key not valid for this kind";
		if (why != NULL)
			break;
		seen |= B(key);
		switch (key) {
		case KY_SIDE:
			if (vl == 4 && memcmp(v, "user", 4) == 0)
				f.side = SCHEMA_S_USER;
			else if (vl == 4 && memcmp(v, "item", 4) == 0)
				f.side = SCHEMA_S_ITEM;
			else if (vl == 7 && memcmp(v, "context", 7) == 0)
				f.side = SCHEMA_S_CONTEXT;
			else
				why = "side must be user, item or context";
			break;
		case KY_VOCAB:
		case KY_BUCKETS:
			if (parse_card(v, vl, &f.card) != 0)
				why = "bad count (want 1..1048576)";
			break;
		case KY_VALUES:
			why = parse_values(&f, v, vl, kind == SCHEMA_K_BAG ?
			    SAMPLE_GENRES_MAX : SCHEMA_VALUES_MAX);
			break;
		case KY_BOUNDS:
			why = parse_bounds(&f, v, vl);
			break;
		case KY_THRESHOLD:
			if (parse_num(v, vl, &f.threshold) != 0)
				why = "bad threshold";
			break;
		case KY_IDS:
			if (vl == 4 && memcmp(v, "hash", 4) == 0)
				f.ids_hash = 1;
			else if (!(vl == 3 && memcmp(v, "int", 3) == 0))
				why = "ids must be int or hash";
			break;
		}
	}
	if (why == NULL)
		why = add_field(s, &f, seen);
	if (why != NULL)
		free(f.values);
	return why;
}

int
schema_parse(struct schema *s, const char *text, size_t len,
    const char *name, char *err, size_t errlen)
{
	size_t at = 0, lineno = 0;
	int have_ver = 0, rc;

	schema_fini(s);
	if (len > SCHEMA_TEXT_MAX)
	{
		ferr(err, errlen, "%s: larger than %u bytes", name,
		    SCHEMA_TEXT_MAX);
		return -E2BIG;
	}
	while (at < len) {
		const char *p = text + at, *nl = memchr(p, '\n', len - at);
		size_t n = nl ? (size_t)(nl - p) : len - at;
		struct text_fld t[3 + N_KEYS + 1];
		const char *why = NULL;
		int k;

		at += n + 1;
		lineno++;
		if (n > 0 && p[n - 1] == '\r')
			n--;
		if (memchr(p, '\0', n) != NULL) {
			why = "NUL byte";
			goto bad;
		}
		k = tokens(p, n, t, 3 + N_KEYS);
		if (k == 0 || t[0].p[0] == '#')
			continue;
		if (!have_ver) {
			if (k != 2 || !TOK(t[0], "dccl-schema"))
				why = "expected 'dccl-schema 1' first";
			else if (!TOK(t[1], "1"))
				why = "unsupported schema version (this "
				    "program reads 1)";
			else
				have_ver = 1;
		} else if (k > 3 + N_KEYS)
			why = "too many keys";
		else
			why = field_line(s, t, k);
		if (why != NULL) {
bad:
			ferr(err, errlen, "%s:%zu: %s", name, lineno, why);
			schema_fini(s);
			return -EINVAL;
		}
	}
	if (!have_ver) {
		ferr(err, errlen, "%s: empty schema (no 'dccl-schema 1' line)",
		    name);
		return -EINVAL;
	}
	if ((rc = schema_check(s, err, errlen)) != 0) {
		char m[256];

		snprintf(m, sizeof(m), "%s", err);
		ferr(err, errlen, "%s: %s", name, m);
		schema_fini(s);
	}
	return rc;
}

int
schema_load(struct schema *s, const char *path, char *err, size_t errlen)
{
	char *buf = NULL;
	ssize_t r;
	size_t n = 0;
	int fd, rc;

	schema_fini(s);
	if ((fd = open(path, O_RDONLY)) < 0) {
		rc = -errno;
		ferr(err, errlen, "%s: %s", path, strerror(errno));
		return rc;
	}
	buf = xmalloc(SCHEMA_TEXT_MAX + 1);
	while (n <= SCHEMA_TEXT_MAX && (r = read(fd, buf + n,
	    SCHEMA_TEXT_MAX + 1 - n)) != 0) {
		if (r < 0) {
			if (errno == EINTR)
				continue;
			rc = -EIO;
			ferr(err, errlen, "%s: %s", path, strerror(errno));
			goto done;
		}
		n += (size_t)r;
	}
	rc = schema_parse(s, buf, n, path, err, errlen);
done:
	close(fd);
	free(buf);
	return rc;
}

/* Appends to a growing string. */
struct sbuf {
	char	*b;
	size_t	 n, cap;
};

static void
sb_printf(struct sbuf *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void
sb_printf(struct sbuf *b, const char *fmt, ...)
{
	va_list ap;
	int k;

	for (;;) {
		va_start(ap, fmt);
		k = vsnprintf(b->b + b->n, b->cap - b->n, fmt, ap);
		va_end(ap);
		if (k >= 0 && (size_t)k < b->cap - b->n) {
			b->n += (size_t)k;
			return;
		}
		b->cap = 2 * b->cap + (size_t)(k > 0 ? k : 0) + 1;
		b->b = xreallocarray(b->b, b->cap, 1);
	}
}

char *
schema_format(const struct schema *s)
{
	struct sbuf b = { xmalloc(1024), 0, 1024 };

	b.b[0] = '\0';
	sb_printf(&b, "dccl-schema 1\n");
	for (uint32_t i = 0; i < s->n; i++) {
		const struct schema_field *f = &s->f[i];

		sb_printf(&b, "field %s %s", f->name, schema_kind_name(f->kind));
		if (f->kind == SCHEMA_K_CAT || f->kind == SCHEMA_K_NUM ||
		    f->kind == SCHEMA_K_HASH || f->kind == SCHEMA_K_BAG)
			sb_printf(&b, " side=%s", schema_side_name(f->side));
		if (f->n_values > 0) {
			const char *v = f->values;

			sb_printf(&b, " values=");
			for (uint32_t k = 0; k < f->n_values; k++) {
				sb_printf(&b, "%s%s", k ? "|" : "", v);
				v += strlen(v) + 1;
			}
		} else if (f->card > 0 && (f->kind == SCHEMA_K_CAT ||
		    f->kind == SCHEMA_K_BAG || f->kind == SCHEMA_K_USER ||
		    f->kind == SCHEMA_K_ITEM))
			sb_printf(&b, " vocab=%u", f->card);
		if (f->ids_hash)
			sb_printf(&b, " ids=hash");
		if (f->kind == SCHEMA_K_NUM) {
			sb_printf(&b, " bounds=");
			for (uint32_t k = 0; k < f->n_bounds; k++)
				sb_printf(&b, "%s%.17g", k ? "," : "",
				    f->bounds[k]);
		}
		if (f->kind == SCHEMA_K_HASH)
			sb_printf(&b, " buckets=%u", f->card);
		if (f->kind == SCHEMA_K_RATING)
			sb_printf(&b, " threshold=%.17g", f->threshold);
		sb_printf(&b, "\n");
	}
	return b.b;
}

void
schema_apply(const struct schema *s, struct dataset *ds)
{
	ds->n_side = s->n_side;
	memset(ds->side_card, 0, sizeof(ds->side_card));
	for (uint32_t k = 0; k < s->n_side; k++)
		ds->side_card[k] = s->f[s->side_field[k]].card;
	if (s->bag >= 0 && s->f[s->bag].card > ds->n_genres)
		ds->n_genres = s->f[s->bag].card;
}

/* FNV-1a, 64 bits: stable across runs and machines. */
uint64_t
schema_hash64(const char *p, size_t n)
{
	uint64_t h = 0xcbf29ce484222325ULL;

	for (size_t i = 0; i < n; i++) {
		h ^= (unsigned char)p[i];
		h *= 0x100000001b3ULL;
	}
	return h;
}

/* A named value's index, or an integer < card; -1 if neither. */
static int
cat_index(const struct schema_field *f, const char *p, size_t n,
    uint32_t *out)
{
	if (f->n_values > 0) {
		const char *v = f->values;

		for (uint32_t k = 0; k < f->n_values; k++) {
			size_t l = strlen(v);

			if (l == n && memcmp(v, p, n) == 0) {
				*out = k;
				return 0;
			}
			v += l + 1;
		}
		return -1;
	}
	return text_parse_u32(p, n, out) != 0 || *out >= f->card ? -1 : 0;
}

uint32_t
schema_bucket(const struct schema_field *f, double x)
{
	uint32_t lo = 0, hi = f->n_bounds;

	while (lo < hi) {
		uint32_t mid = lo + (hi - lo) / 2;

		if (f->bounds[mid] <= x)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

int
schema_encode(const struct schema_field *f, const char *p, size_t n,
    uint32_t *out)
{
	double x;

	if (n == 0) {
		*out = f->card;
		return 0;
	}
	switch (f->kind) {
	case SCHEMA_K_CAT:
		return cat_index(f, p, n, out);
	case SCHEMA_K_HASH:
		*out = (uint32_t)(schema_hash64(p, n) % f->card);
		return 0;
	case SCHEMA_K_NUM:
		if (text_parse_dbl(p, n, &x) != 0)
			return -1;
		*out = schema_bucket(f, x);
		return 0;
	default:
		return -1;
	}
}

int
schema_encode_id(const struct schema_field *f, const char *p, size_t n,
    uint32_t *out)
{
	uint32_t lim = f->card ? f->card : DATASET_ID_MAX;

	if (n == 0)
		return -1;
	if (f->ids_hash) {
		*out = (uint32_t)(schema_hash64(p, n) % lim);
		return 0;
	}
	if (text_parse_u32(p, n, out) != 0)
		return -1;
	return *out < lim ? 0 : -2;
}

int
schema_encode_bag(const struct schema_field *f, const char *p, size_t n,
    uint32_t *out)
{
	size_t at = 0;

	*out = 0;
	if (n == 0)
		return 0;
	while (at <= n) {
		const char *q = memchr(p + at, '|', n - at);
		size_t l = (q ? (size_t)(q - p) : n) - at;
		uint32_t k;

		if (cat_index(f, p + at, l, &k) != 0 || k >= 32)
			return -1;
		*out |= 1u << k;
		at += l + 1;
	}
	return 0;
}
