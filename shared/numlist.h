/*
 * numlist: a comma-separated list of numbers in a configuration value
 * ("0,1,3,9"), as the pair-weight candidates of federated selection
 * (cloudd fedsel.pair-weights, deviced learn.pair-weights) are written.
 */
#ifndef SHARED_NUMLIST_H
#define SHARED_NUMLIST_H

#include <stddef.h>

/*
 * Parses s into v[0..*n): at least one and at most max numbers, each in
 * [lo, hi], distinct, comma-separated, no empty entry. 0, or -1 with the
 * reason in err.
 */
int	numlist_parse(const char *s, double *v, int max, double lo, double hi,
	    int *n, char *err, size_t errlen);

#endif
