/* fedsel_choice: see fedsel_choice.h. */
#include <string.h>

#include "deviced/fedsel_choice.h"

int
fedsel_dev_find(const struct fedsel_dev *f, const char *method, double *lr,
    int *steps)
{
	for (int i = 0; f != NULL && i < f->n; i++)
		if (strcmp(f->c[i].method, method) == 0) {
			*lr = f->c[i].lr;
			*steps = f->c[i].steps;
			return 0;
		}
	return -1;
}

int
fedsel_dev_find_pw(const struct fedsel_dev *f, const char *method,
    double *w)
{
	for (int i = 0; f != NULL && i < f->n; i++)
		if (strcmp(f->c[i].method, method) == 0) {
			*w = f->c[i].pair_weight;
			return 0;
		}
	return -1;
}
