/*
 * xmalloc: allocation that treats OOM as fatal, so callers need no NULL
 * checks. Lengths that come from the network must be bounded before they
 * reach these functions. Any thread.
 */
#ifndef SHARED_XMALLOC_H
#define SHARED_XMALLOC_H

#include <stddef.h>

void	*xmalloc(size_t n);
void	*xcalloc(size_t nmemb, size_t size);
void	*xreallocarray(void *p, size_t nmemb, size_t size);
char	*xstrdup(const char *s);

#endif
