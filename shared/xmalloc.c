/* xmalloc: see xmalloc.h. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "shared/log.h"
#include "shared/xmalloc.h"

void *
xmalloc(size_t n)
{
	void *p = malloc(n ? n : 1);

	if (p == NULL)
		fatalx("out of memory allocating %zu bytes", n);
	return p;
}

void *
xcalloc(size_t nmemb, size_t size)
{
	void *p = calloc(nmemb ? nmemb : 1, size ? size : 1);

	if (p == NULL)
		fatalx("out of memory allocating %zu x %zu bytes", nmemb, size);
	return p;
}

void *
xreallocarray(void *p, size_t nmemb, size_t size)
{
	void *q;

	if (size != 0 && nmemb > SIZE_MAX / size)
		fatalx("allocation overflow: %zu x %zu", nmemb, size);
	q = realloc(p, (nmemb != 0 && size != 0) ? nmemb * size : 1);
	if (q == NULL)
		fatalx("out of memory allocating %zu x %zu bytes", nmemb, size);
	return q;
}

char *
xstrdup(const char *s)
{
	size_t n = strlen(s) + 1;
	char *p = xmalloc(n);

	memcpy(p, s, n);
	return p;
}

/* A header before the buffer: its mapping's length, or 0 (calloc'd). */
#define LAZY_HDR	64
#define LAZY_MIN	(4 << 20)

void *
xzalloc_lazy(size_t nmemb, size_t size)
{
	unsigned char *b;
	size_t n;

	if (size != 0 && nmemb > (SIZE_MAX - LAZY_HDR) / size)
		fatalx("allocation overflow: %zu x %zu", nmemb, size);
	n = nmemb * size + LAZY_HDR;
	if (n < LAZY_MIN) {
		b = xcalloc(n, 1);	/* header 0: calloc'd */
	} else {
		b = mmap(NULL, n, PROT_READ | PROT_WRITE,
		    MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		if (b == MAP_FAILED)
			fatalx("out of memory mapping %zu bytes", n);
		memcpy(b, &n, sizeof(n));
	}
	return b + LAZY_HDR;
}

void
xzfree_lazy(void *p)
{
	unsigned char *b;
	size_t n;

	if (p == NULL)
		return;
	b = (unsigned char *)p - LAZY_HDR;
	memcpy(&n, b, sizeof(n));
	if (n == 0)
		free(b);
	else
		(void)munmap(b, n);
}
