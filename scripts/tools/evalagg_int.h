/*
 * evalagg_int: helpers the evalagg files share (evalagg.c defines them);
 * not part of evalagg's interface.
 */
#ifndef SCRIPTS_TOOLS_EVALAGG_INT_H
#define SCRIPTS_TOOLS_EVALAGG_INT_H

#include <stddef.h>

/* Formats into err (when err != NULL and errlen > 0). */
void	evalagg_seterr(char *err, size_t errlen, const char *fmt, ...)
	    __attribute__((format(printf, 3, 4)));
/* A method or column name: 1..EVALAGG_NAME_MAX-1 of [A-Za-z0-9_.+-@]. */
int	evalagg_valid_name(const char *s);
/* qsort comparator of char * strings. */
int	evalagg_str_cmp(const void *a, const void *b);

#endif
