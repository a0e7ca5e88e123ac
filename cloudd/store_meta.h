/*
 * store_meta: the pool's side fields as the meta rows n_side and
 * side_card<k>, written and read once for both store backends through
 * their own meta accessors. Private to cloudd/store*.c.
 */
#ifndef CLOUDD_STORE_META_H
#define CLOUDD_STORE_META_H

#include <stdint.h>

struct dataset;
struct store;

/*
 * set: an upsert keeping the greater value (the schema fixes the side
 * fields, so rewriting them is a no-op); get: 0 for a missing key.
 */
typedef int	store_meta_set_fn(struct store *, const char *, int64_t);
typedef int64_t	store_meta_get_fn(struct store *, const char *);

/* Writes ds's side fields (nothing without any); 0 or set's error. */
int	store_meta_side_put(struct store *s, store_meta_set_fn *set,
	    const struct dataset *ds);
/* Fills ds->n_side and side_card[] (0 and none when absent or invalid). */
void	store_meta_side_get(struct store *s, store_meta_get_fn *get,
	    struct dataset *ds);

#endif
