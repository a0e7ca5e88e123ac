/* memtune: see memtune.h. */
#include <stdlib.h>
#ifdef __GLIBC__
#include <malloc.h>
#endif

#include "shared/memtune.h"

int
memtune_chunks(void)
{
	const char *off = getenv("DCCL_MALLOC_DEFAULT");

	if (off != NULL && off[0] == '1')
		return 0;
#ifdef __GLIBC__
	/* an explicit mmap threshold also stops glibc's dynamic one */
	if (mallopt(M_MMAP_THRESHOLD, MEMTUNE_MMAP_MAX) == 1 &&
	    mallopt(M_TRIM_THRESHOLD, MEMTUNE_TRIM_MAX) == 1)
		return 1;
#endif
	return 0;
}
