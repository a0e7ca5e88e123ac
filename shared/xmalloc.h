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
/*
 * Zeroed memory for a large buffer written sparsely (a gradient buffer of
 * which a step touches a few rows of an item table): at 4 MiB and above
 * it is an anonymous mapping, so its pages cost neither the time to zero
 * them nor memory until first written. Free only with xzfree_lazy.
 */
void	*xzalloc_lazy(size_t nmemb, size_t size);
void	 xzfree_lazy(void *p);

#endif
