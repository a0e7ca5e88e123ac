/*
 * schema: a declared feature schema (issue 16). It names the columns of a
 * header CSV and says how each one becomes part of a struct sample: which
 * column is the user id, the item id, the timestamp, the label or rating,
 * the behaviour sequence and the genre-like bag, and which categorical,
 * numeric or hashed columns become the sample's side values (one of the
 * SAMPLE_SIDE_MAX slots each, in declaration order). The format is in
 * shared/data/README.md ("Feature schema"). The parser is strict: every
 * error is "NAME:LINE: what". No global state; any thread, on objects it
 * owns. Nothing here logs.
 */
#ifndef SHARED_DATA_SCHEMA_H
#define SHARED_DATA_SCHEMA_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "shared/data/dataset.h"

#define SCHEMA_FIELDS_MAX	64	/* columns a schema may name */
#define SCHEMA_NAME_MAX		64	/* field name, bytes with the NUL */
#define SCHEMA_VALUES_MAX	256	/* named values of one cat/bag field */
#define SCHEMA_BOUNDS_MAX	64	/* bucket bounds of one num field */
#define SCHEMA_CARD_MAX		(1u << 20)	/* vocab / hash buckets */
#define SCHEMA_TEXT_MAX		65536	/* schema file, bytes */

enum schema_kind {
	SCHEMA_K_USER = 1,	/* user id: dense integer */
	SCHEMA_K_ITEM,		/* item id: dense integer */
	SCHEMA_K_TS,		/* unix seconds */
	SCHEMA_K_LABEL,		/* 0/1 or a soft label in [0, 1] */
	SCHEMA_K_RATING,	/* a rating; label = rating >= threshold */
	SCHEMA_K_HIST,		/* behaviour sequence: '|'-separated item ids */
	SCHEMA_K_BAG,		/* multi-value categorical -> sample.genres */
	SCHEMA_K_CAT,		/* single-value categorical -> a side slot */
	SCHEMA_K_NUM,		/* numeric, bucketed by bounds -> a side slot */
	SCHEMA_K_HASH,		/* string hashed into buckets -> a side slot */
	SCHEMA_K_SKIP,		/* a column that is read and ignored */
};

enum schema_side {
	SCHEMA_S_NONE = 0,
	SCHEMA_S_USER,		/* a property of the user */
	SCHEMA_S_ITEM,		/* a property of the item */
	SCHEMA_S_CONTEXT,	/* a property of the impression */
};

struct schema_field {
	char	 name[SCHEMA_NAME_MAX];
	enum schema_kind kind;
	enum schema_side side;
	int	 slot;		/* side slot, -1 for non-side kinds */
	/*
	 * cat: vocabulary size; bag: vocabulary size (<= 32); hash: buckets;
	 * num: n_bounds + 1; user/item: id bound (0 = DATASET_ID_MAX).
	 */
	uint32_t card;
	uint32_t n_values;	/* cat/bag with values=: the names, in order */
	char	*values;	/* n_values NUL-terminated names, back to back */
	uint32_t n_bounds;
	double	 bounds[SCHEMA_BOUNDS_MAX];	/* strictly increasing */
	double	 threshold;	/* rating: label threshold (default 4) */
	/*
	 * user/item with ids=hash: the column holds any string id, hashed
	 * (FNV-1a 64 mod card) into card buckets; otherwise a dense integer.
	 */
	uint8_t	 ids_hash;
};

struct schema {
	struct schema_field f[SCHEMA_FIELDS_MAX];
	uint32_t n;
	/* index into f of each role, -1 when absent */
	int	 user, item, ts, label, rating, hist, bag;
	uint32_t n_side;
	int	 side_field[SAMPLE_SIDE_MAX];	/* slot -> index into f */
};

void	schema_init(struct schema *s);
void	schema_fini(struct schema *s);
/*
 * Parses text[0..len) (need not be NUL-terminated) into s (initialized or
 * finished). name is used in error messages ("name:line: what"). Returns
 * 0, or -EINVAL with the message in err (s is then empty), -E2BIG when
 * len > SCHEMA_TEXT_MAX.
 */
int	schema_parse(struct schema *s, const char *text, size_t len,
	    const char *name, char *err, size_t errlen);
/* Reads and parses path; adds -ENOENT / -EIO (message in err). */
int	schema_load(struct schema *s, const char *path, char *err,
	    size_t errlen);
/*
 * The canonical text of s (one "field" line per field, keys in a fixed
 * order): parsing it gives the same schema, and two schemas are the same
 * when their canonical texts are. Returns a malloc'ed NUL-terminated
 * string.
 */
char	*schema_format(const struct schema *s);
/* Writes n_side and side_card (values per slot) into ds. */
void	schema_apply(const struct schema *s, struct dataset *ds);
/*
 * Encodes one value of side field f (cat, num, hash) into *out: the
 * value's category, or f->card ("unknown") for an empty value. Returns 0
 * or -1 (not a value of this field: bad number, name not in values=,
 * integer >= vocab).
 */
int	schema_encode(const struct schema_field *f, const char *p, size_t n,
	    uint32_t *out);
/*
 * Encodes one id of user/item field f: a dense integer < the field's bound,
 * or with ids=hash any non-empty string's bucket (FNV-1a 64 mod card), the
 * rule every producer of ids (dccl-data, cloudd --import, an app, dcctl
 * device --schema) applies. Returns 0, -1 (empty or not an integer) or -2
 * (an integer >= the bound).
 */
int	schema_encode_id(const struct schema_field *f, const char *p, size_t n,
	    uint32_t *out);
/* FNV-1a, 64 bits, of p[0..n): the hash of hash fields and hashed ids. */
uint64_t schema_hash64(const char *p, size_t n);
/* A number's bucket in num field f: the number of bounds <= x. */
uint32_t schema_bucket(const struct schema_field *f, double x);
/* Bag value ("a|b|c" names or indices) -> bitmask; 0 or -1. */
int	schema_encode_bag(const struct schema_field *f, const char *p,
	    size_t n, uint32_t *out);
/* The side slots of item-side fields, as a bit mask. */
uint32_t schema_item_mask(const struct schema *s);
/* Index of the field named p[0..n), or -1. */
int	schema_find(const struct schema *s, const char *p, size_t n);
/*
 * Adds a field (for loaders that describe their own data); checks it like
 * the parser would, except the cross-field rules (schema_check). Returns 0
 * or -EINVAL with a message in err.
 */
int	schema_add(struct schema *s, const struct schema_field *f, char *err,
	    size_t errlen);
/* The cross-field rules: one user, one item, a label or a rating. */
int	schema_check(const struct schema *s, char *err, size_t errlen);

/*
 * Reads a header CSV (comma-separated, RFC 4180 quoting, optional UTF-8
 * BOM) whose every column is a field of sc, and which has a column for
 * every field of sc but those of kind skip, into ds (initialized, empty).
 * Ids must be < the field's vocab (or DATASET_ID_MAX). Without a ts
 * column, a row's ts is its data row number; without a hist column, the
 * histories are rebuilt from the labels (dataset_build_hist, H =
 * o->hist_k) and the result is canonical. ds gets n_side, side_card and,
 * with a bag, n_genres from the schema. With o->skip_bad, bad rows are
 * counted and skipped; a bad header always fails. Errors
 * "path:line: what"; on failure ds is left empty.
 */
int	schema_read_csv(struct dataset *ds, const char *path,
	    const struct schema *sc, const struct dataset_opts *o,
	    struct dataset_err *err);

/*
 * Hashed-id collisions seen by schema_read_csv_ids: distinct strings (by
 * their 64-bit hash) and the buckets they occupy, per id field; strings -
 * buckets of them share a bucket with another. All 0 without ids=hash.
 */
struct schema_ids {
	uint64_t user_strings, user_buckets;
	uint64_t item_strings, item_buckets;	/* items of rows and histories */
};

/* schema_read_csv, also counting hashed-id collisions into *ids. */
int	schema_read_csv_ids(struct dataset *ds, const char *path,
	    const struct schema *sc, const struct dataset_opts *o,
	    struct dataset_err *err, struct schema_ids *ids);

const char *schema_kind_name(enum schema_kind k);
const char *schema_side_name(enum schema_side sd);

#endif
