/* numlist: comma-separated numbers of a configuration value (numlist.h). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

#include "shared/numlist.h"

int
numlist_parse(const char *s, double *v, int max, double lo, double hi,
    int *n, char *err, size_t errlen)
{
	const char *p = s;
	char *end;

	*n = 0;
	while (*p != '\0') {
		double x;

		if (*n == max) {
			snprintf(err, errlen, "more than %d numbers", max);
			return -1;
		}
		errno = 0;
		x = strtod(p, &end);
		if (end == p || errno != 0 || !(x >= lo && x <= hi) ||
		    (*end != ',' && *end != '\0')) {
			snprintf(err, errlen, "bad number at '%s' (want numbers "
			    "in [%g, %g], comma-separated)", p, lo, hi);
			return -1;
		}
		for (int k = 0; k < *n; k++)
			if (v[k] == x) {
				snprintf(err, errlen, "%g twice", x);
				return -1;
			}
		v[(*n)++] = x;
		p = *end == ',' ? end + 1 : end;
		if (*end == ',' && *p == '\0') {
			snprintf(err, errlen, "trailing comma");
			return -1;
		}
	}
	if (*n == 0) {
		snprintf(err, errlen, "an empty list");
		return -1;
	}
	return 0;
}
