/*
 * dataset: building, loading, splitting and exchanging struct dataset
 * (shared/data/sample.h). Everything here is plain data work with no global
 * state, so any thread may call any function on objects it owns.
 *
 * Conventions
 *  - Fallible functions return 0 or a negative errno: -ENOENT (file
 *    missing), -EIO (read/write error), -EINVAL (malformed input; the
 *    message is in struct dataset_err), -ENOSPC (request cannot be met),
 *    -E2BIG (a size bound was exceeded). Nothing here logs.
 *  - Parse errors are "FILE:LINE: what", FILE being the path as given.
 *  - A dataset's samples are "canonical" when sorted by (user, ts, item) with
 *    each history computed by dataset_build_hist(); the MovieLens loaders
 *    and the generator produce canonical datasets.
 *
 * Rounding rules (see dataset_split and dataset_carve_val) are stated next
 * to the functions and are part of the interface.
 */
#ifndef SHARED_DATASET_H
#define SHARED_DATASET_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "shared/data/sample.h"

#define DATASET_HIST_DEFAULT	20
#define DATASET_FIELD_MAX	1024	/* longest accepted field, bytes */
#define DATASET_LINE_MAX	65536	/* longest accepted line, bytes */
#define DATASET_GENRE_NAME_MAX	64
/*
 * Dense ids in a samples CSV are below this: the CTR model takes no more
 * (CTR_MAX_USERS, CTR_MAX_ITEMS), and per-user arrays are sized by the
 * largest id, so one row with a huge id must not cost gigabytes (found
 * by fuzz_schema: 1.9 GB for one row at 2^27).
 */
#define DATASET_ID_MAX		(1u << 24)

enum dataset_fmt {
	DATASET_FMT_AUTO = 0,
	DATASET_FMT_100K,	/* u.data, u.item, u.genre */
	DATASET_FMT_1M,		/* ratings.dat, movies.dat */
	DATASET_FMT_LATEST,	/* ratings.csv, movies.csv */
	DATASET_FMT_CSV,	/* a header CSV read through a feature schema */
};

/* Options for every loader/reader. dataset_opts_default() fills defaults. */
struct dataset_opts {
	float	 label_threshold;	/* label = rating >= this; 4.0 */
	int	 hist_k;		/* H: history length, 0..SAMPLE_HIST_MAX; 20 */
	int	 skip_bad;		/* 0: stop at the first bad line (-EINVAL);
					   1: skip bad lines, count them */
	enum dataset_fmt fmt;		/* DATASET_FMT_AUTO: detect from dir */
};

/* Error report: the first error's message and the number of bad lines. */
struct dataset_err {
	char	 msg[320];
	size_t	 n_bad;			/* lines skipped (skip_bad) */
	size_t	 n_lines;		/* data lines seen (all files) */
};

/*
 * Side information about a dataset: dense -> raw ids, item genres and genre
 * names. Genre bit g of a mask means genre[g]. For MovieLens the bits are
 * sorted by genre name (100K: the order of u.genre, "unknown" included).
 */
struct dataset_meta {
	enum dataset_fmt fmt;
	uint32_t n_users, n_items, n_genres;
	int64_t	*user_raw;		/* n_users; NULL if unknown */
	int64_t	*item_raw;		/* n_items; NULL if unknown */
	uint32_t *item_genres;		/* n_items genre masks; NULL if unknown */
	char	 genre[SAMPLE_GENRES_MAX][DATASET_GENRE_NAME_MAX];
	/*
	 * Item-side side values by item (slots in side_item_mask), to give
	 * an item's features to samples made for it (sampled negatives):
	 * item_side[i * SAMPLE_SIDE_MAX + k]; NULL if none.
	 */
	uint32_t *item_side;
	uint32_t side_item_mask;
	char	*schema;		/* the feature schema's canonical text
					   (shared/data/schema.h); NULL if none */
};

/*
 * An index subset of a dataset grouped by user: user u's entries are
 * v[uoff[u] .. uoff[u+1]), in chronological order (ts, then item).
 */
struct dataset_idx {
	size_t	*v;			/* n sample indices */
	size_t	 n;
	size_t	*uoff;			/* n_users + 1 */
	uint32_t n_users;
};

struct dataset_split {
	struct dataset_idx pool, local, test;
	uint8_t	*cold;			/* n_users flags: user never in pool */
	uint32_t n_cold;
};

/* --- lifecycle ----------------------------------------------------------- */

void	dataset_opts_default(struct dataset_opts *o);
void	dataset_init(struct dataset *ds);
/* Frees the arrays and re-initializes; safe on an initialized empty ds. */
void	dataset_fini(struct dataset *ds);
/* Grows capacity to at least n_samples samples and n_hist history ids. */
void	dataset_reserve(struct dataset *ds, size_t n_samples, size_t n_hist);
/*
 * Appends a copy of *s whose history is hist[0 .. hist_n) (copied into
 * ds->hist; s->hist_off/hist_n are ignored). hist_n > SAMPLE_HIST_MAX keeps
 * the last SAMPLE_HIST_MAX. Raises n_users/n_items to cover the ids.
 * Returns the new sample's index.
 */
size_t	dataset_append(struct dataset *ds, const struct sample *s,
	    const uint32_t *hist, size_t hist_n);
/*
 * Keeps the last n samples (the newest, for a dataset in time order) and
 * drops the rest, compacting the history storage; nothing when ds->n <= n.
 * A device's retention window (learn.max-local).
 */
void	dataset_keep_last(struct dataset *ds, size_t n);
/* Sorts idx[0..n) into time order; ties keep index order (stable). */
void	dataset_sort_by_time(const struct dataset *ds, uint32_t *idx,
	    size_t n);
/* Appends src's samples at idx[0..n) (with histories) to dst. */
void	dataset_append_subset(struct dataset *dst, const struct dataset *src,
	    const size_t *idx, size_t n);
/*
 * Sorts samples by (user, ts, item) (stable for full ties) and recomputes
 * every history from the labels: a sample's history is the user's last
 * up-to-H samples with label >= 0.5 and a timestamp strictly earlier than
 * its own, oldest first (samples of the same second share one history).
 * H is clipped to SAMPLE_HIST_MAX.
 */
void	dataset_build_hist(struct dataset *ds, int H);
/* The number of users: 1 + the largest user id, at least ds->n_users. */
uint32_t dataset_max_user(const struct dataset *ds);

void	dataset_meta_init(struct dataset_meta *m);
void	dataset_meta_fini(struct dataset_meta *m);
/*
 * Fills m->item_side from ds: each item's values of the slots in mask
 * (item-side fields) from its first sample; unknown (side_card) for items
 * without a sample.
 */
void	dataset_meta_item_side(struct dataset_meta *m,
	    const struct dataset *ds, uint32_t mask);

/* --- index subsets ------------------------------------------------------- */

void	dataset_idx_fini(struct dataset_idx *x);
/* All samples grouped by user, chronological. */
void	dataset_idx_all(struct dataset_idx *out, const struct dataset *ds);
/* Copy of x's entries of user u only (other users empty). */
void	dataset_idx_user(struct dataset_idx *out, const struct dataset_idx *x,
	    uint32_t u);

/* --- split --------------------------------------------------------------- */

struct dataset_fracs {
	double	 pool, local, test;	/* >= 0, sum to 1 (+-1e-6) */
	uint32_t min_user;		/* users with fewer samples: all pool */
	double	 cold;			/* share of cold users, [0, 1) */
	uint64_t cold_seed;		/* which users are cold */
};
/* .70 .15 .15, min_user 3, cold 0, cold_seed 1 */
void	dataset_fracs_default(struct dataset_fracs *f);
/* Parses "0.7,0.15,0.15" (sum 1 +- 1e-6); returns 0 or -EINVAL. */
int	dataset_fracs_parse(struct dataset_fracs *f, const char *s);
/*
 * Per-user chronological split (order: ts, then item). For a user with n
 * samples, n >= min_user:
 *   n_pool  = floor(pool * n + 1e-9)
 *   n_local = floor((pool + local) * n + 1e-9) - n_pool
 *   n_test  = n - n_pool - n_local
 * so the test share takes the rounding remainder (n = 20 -> 14/3/3, n = 10 ->
 * 7/1/2, n = 5 -> 3/1/1, n = 3 -> 2/0/1). Users with n < min_user go
 * entirely to the pool.
 * Cold users (new or privacy-minded users whose history lives only on
 * their device): among the users with n >= min_user, the
 * round(cold * count) with the smallest hash of (cold_seed, user) get
 * n_pool = 0 and n_local = n - n_test (same n_test as above), so their
 * whole pre-test history stays local; sp->cold flags them (allocated even
 * when none is cold). sp must be freed with dataset_split_fini().
 */
int	dataset_split(struct dataset_split *sp, const struct dataset *ds,
	    const struct dataset_fracs *f);
void	dataset_split_fini(struct dataset_split *sp);
/*
 * Validation slice: per user, the last n_val = round(frac * n_u) entries of
 * x (round half up), clipped so that at least one entry stays in train when
 * n_u >= 1 (n_u = 1 -> no validation). frac in [0, 1).
 * train and val are new index sets; x is unchanged.
 */
int	dataset_carve_val(struct dataset_idx *train, struct dataset_idx *val,
	    const struct dataset_idx *x, double frac);

/* --- samples CSV interchange ---------------------------------------------- */

/*
 * Format (one file = one set of samples):
 *   # dccl-samples v1 n_users=U n_items=I n_genres=G
 *   user,item,ts,rating,label,genres,hist
 *   3,17,964982703,4.5,1,5,2|9|11
 * The '#' line is optional on read; when present, ids are checked against
 * it and ds->n_* are raised to it; without it ids must be < DATASET_ID_MAX
 * (so that per-user arrays sized by the largest id stay bounded).
 * genres is the bitmask in decimal; hist is '|'-separated item ids, oldest
 * first, empty when none; rating and label are decimals (label may be
 * soft). Lines may end in \r\n. Field lengths are bounded.
 */
int	dataset_write_csv(const char *path, const struct dataset *ds,
	    const size_t *idx, size_t n);
/* Same, to an open stream (not closed). idx NULL = all samples. */
int	dataset_write_csv_fp(FILE *fp, const struct dataset *ds,
	    const size_t *idx, size_t n);
/*
 * Appends the rows of path to ds in file order (no sorting; samples keep
 * the file's histories). With o->skip_bad, bad data rows are counted in
 * err->n_bad and skipped; a bad header or '#' line always fails. o and err
 * may be NULL. On failure ds is restored to its previous contents.
 */
int	dataset_read_csv(struct dataset *ds, const char *path,
	    const struct dataset_opts *o, struct dataset_err *err);

/*
 * Meta file, "key=value" lines:
 *   # dccl-meta v1
 *   format=latest|100k|1m|csv|synth
 *   n_users=610
 *   n_items=9724
 *   n_genres=20
 *   genres=Action|Adventure|...   (names in bit order, '|'-separated)
 * Unknown keys are ignored on read. Raw ids are not in it (see items.csv
 * written by scripts/tools/dccl-data).
 */
int	dataset_meta_write(const char *path, const struct dataset_meta *m);
int	dataset_meta_read(struct dataset_meta *m, const char *path,
	    struct dataset_err *err);

const char *dataset_fmt_name(enum dataset_fmt f);

#endif
