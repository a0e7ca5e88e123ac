/*
 * carve: per-user newest split of an index list (see carve.h).
 */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "shared/data/carve.h"
#include "shared/xmalloc.h"

int
carve_newest(const struct dataset *ds, const uint32_t *idx, size_t n,
    double frac, uint32_t **older, size_t *nolder, uint32_t **newest,
    size_t *nnewest)
{
	uint32_t *o = NULL, *w = NULL, maxu = 0;
	size_t no = 0, nw = 0;
	unsigned char *seen = NULL;

	*older = *newest = NULL;
	*nolder = *nnewest = 0;
	if (!(frac >= 0 && frac < 1))
		return -EINVAL;
	for (size_t i = 0; i < n; i++) {
		if (idx[i] >= ds->n)
			return -EINVAL;
		if (ds->s[idx[i]].user > maxu)
			maxu = ds->s[idx[i]].user;
	}
	seen = xcalloc((size_t)maxu + 1, 1);
	o = xmalloc((n + 1) * sizeof(uint32_t));
	w = xmalloc((n + 1) * sizeof(uint32_t));
	for (size_t a = 0; a < n; ) {
		uint32_t u = ds->s[idx[a]].user;
		size_t b = a + 1, m, k;
		/* a user seen before: its samples are not one run */
		if (seen[u])
			goto fail;
		seen[u] = 1;
		while (b < n && ds->s[idx[b]].user == u) {
			if (ds->s[idx[b]].ts < ds->s[idx[b - 1]].ts)
				goto fail;
			b++;
		}
		m = b - a;
		k = (size_t)floor(frac * (double)m + 0.5);
		if (k > m - 1)
			k = m - 1;
		memcpy(o + no, idx + a, (m - k) * sizeof(uint32_t));
		no += m - k;
		memcpy(w + nw, idx + a + m - k, k * sizeof(uint32_t));
		nw += k;
		a = b;
	}
	free(seen);
	*older = o;
	*newest = w;
	*nolder = no;
	*nnewest = nw;
	return 0;
fail:
	free(seen);
	free(o);
	free(w);
	return -EINVAL;
}
