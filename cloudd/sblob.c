/* sblob: see sblob.h. */
#include <stdlib.h>

#include "cloudd/sblob.h"
#include "shared/xmalloc.h"

struct sblob *
sblob_wrap(void *data, size_t len, uint64_t version)
{
	struct sblob *b = xcalloc(1, sizeof(*b));

	b->refs = 1;
	b->version = version;
	b->data = data;
	b->len = len;
	return b;
}

struct sblob *
sblob_ref(struct sblob *b)
{
	b->refs++;
	return b;
}

void
sblob_unref(struct sblob *b)
{
	if (b == NULL || --b->refs > 0)
		return;
	free(b->data);
	free(b);
}
