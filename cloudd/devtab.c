/*
 * devtab: registered devices in memory (device id -> user id), so the
 * per-request registration check costs a hash probe, not a query. Filled
 * from the store at start and on each Register. Loop thread only.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cloudd/cloudd.h"
#include "shared/xmalloc.h"

struct devent {
	char		*id;	/* NULL = empty slot */
	uint32_t	 user;
};

static uint64_t
hash(const char *s)
{
	uint64_t h = 1469598103934665603ULL;	/* FNV-1a */

	while (*s)
		h = (h ^ (unsigned char)*s++) * 1099511628211ULL;
	return h;
}

void
devtab_init(struct devtab *t)
{
	t->cap = 64;
	t->n = 0;
	t->e = xcalloc(t->cap, sizeof(*t->e));
}

void
devtab_fini(struct devtab *t)
{
	for (size_t i = 0; i < t->cap; i++)
		free(t->e[i].id);
	free(t->e);
	t->e = NULL;
	t->cap = t->n = 0;
}

static struct devent *
slot(const struct devtab *t, const char *id)
{
	size_t i = hash(id) & (t->cap - 1);

	while (t->e[i].id != NULL && strcmp(t->e[i].id, id) != 0)
		i = (i + 1) & (t->cap - 1);
	return &t->e[i];
}

int
devtab_get(const struct devtab *t, const char *id, uint32_t *user)
{
	struct devent *e = slot(t, id);

	if (e->id == NULL)
		return -1;
	*user = e->user;
	return 0;
}

void
devtab_put(struct devtab *t, const char *id, uint32_t user)
{
	struct devent *e;

	if ((t->n + 1) * 2 > t->cap) {
		struct devtab big = { NULL, t->cap * 2, 0 };
		big.e = xcalloc(big.cap, sizeof(*big.e));
		for (size_t i = 0; i < t->cap; i++)
			if (t->e[i].id != NULL) {
				*slot(&big, t->e[i].id) = t->e[i];
				big.n++;
			}
		free(t->e);
		*t = big;
	}
	e = slot(t, id);
	if (e->id == NULL) {
		e->id = xstrdup(id);
		t->n++;
	}
	e->user = user;
}

/*
 * The devtab is a cache of the devices table: with a shared store (several
 * replicas), a device that registered on another replica is looked up
 * there on a miss. With SQLite this process wrote every row, so a miss is
 * final (and costs no query).
 */
int
devtab_lookup(struct devtab *t, struct store *shared, const char *id,
    uint32_t *user)
{
	struct store_device d;

	if (devtab_get(t, id, user) == 0)
		return 0;
	if (shared == NULL || store_device_get(shared, id, &d) != 0)
		return -ENOENT;
	devtab_put(t, d.id, d.user_id);
	*user = d.user_id;
	return 0;
}
