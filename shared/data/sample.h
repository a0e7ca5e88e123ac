/*
 * sample: the one record format every part of dccl uses for an impression:
 * loaders produce it, the cloud pool stores it, retrieval ships it, the CTR
 * model consumes it. Ids are dense (0..n-1) and assigned by the loader.
 *
 * A dataset owns its samples and one flat array of behaviour history: each
 * sample's last positively rated items before it (oldest first), at most
 * SAMPLE_HIST_MAX of them, stored at hist[hist_off .. hist_off + hist_n).
 */
#ifndef SHARED_SAMPLE_H
#define SHARED_SAMPLE_H

#include <stddef.h>
#include <stdint.h>

#define SAMPLE_HIST_MAX	64	/* upper bound on config hist-k */
#define SAMPLE_GENRES_MAX 32	/* genres are a uint32 bitmask */
#define SAMPLE_N_HOURS	24
#define SAMPLE_N_WDAYS	7
#define SAMPLE_SIDE_MAX	8	/* schema side fields (issue 16) */

struct sample {
	uint32_t user;		/* dense user id */
	uint32_t item;		/* dense item id */
	int64_t	 ts;		/* unix seconds */
	float	 rating;	/* raw rating; 0 when unknown */
	float	 label;		/* 1/0 (rating >= 4); soft after correction */
	uint32_t genres;	/* bitmask over the dataset's genres */
	uint32_t hist_off;	/* into dataset.hist */
	uint16_t hist_n;	/* <= SAMPLE_HIST_MAX */
	uint16_t flags;		/* SAMPLE_F_* */
	/*
	 * Side features declared by the data's schema (user-side, item-side
	 * or context), each a categorical value (numeric fields bucketed,
	 * strings hashed) of field f < dataset.n_side; a value >=
	 * dataset.side_card[f] means unknown. Zero when the data have none.
	 */
	uint32_t side[SAMPLE_SIDE_MAX];
};

#define SAMPLE_F_RETRIEVED 0x1	/* came from the cloud pool (CoDA) */

struct dataset {
	struct sample	*s;		/* n samples */
	size_t		 n, cap;
	uint32_t	*hist;		/* flat history storage */
	size_t		 hist_len, hist_cap;
	uint32_t	 n_users;	/* ids are < these */
	uint32_t	 n_items;
	uint32_t	 n_genres;
	uint32_t	 n_side;	/* side fields in use, <= SAMPLE_SIDE_MAX */
	uint32_t	 side_card[SAMPLE_SIDE_MAX];	/* values per field */
};

/* Time-bucket features, UTC. 1970-01-01 was a Thursday (wday 4). */
static inline uint32_t
sample_hour(int64_t ts)
{
	int64_t h = (ts / 3600) % 24;
	return (uint32_t)(h < 0 ? h + 24 : h);
}

static inline uint32_t
sample_wday(int64_t ts)
{
	int64_t d = (ts / 86400 + 4) % 7;
	return (uint32_t)(d < 0 ? d + 7 : d);
}

static inline const uint32_t *
sample_hist(const struct dataset *ds, const struct sample *s)
{
	/* A pool with no history at all has hist == NULL (and hist_len 0). */
	return ds->hist != NULL ? ds->hist + s->hist_off : ds->hist;
}

#endif
