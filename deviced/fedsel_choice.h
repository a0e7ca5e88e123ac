/*
 * fedsel_choice: the cloud's federated selection as a device fetched it
 * (struct fedsel_dev) and its lookups. Below both the learning methods
 * (learn.c reads a method's setting and pair weight here) and the
 * report (fedsel.c, which runs those methods' grids), so that neither
 * calls back into the other.
 */
#ifndef DEVICED_FEDSEL_CHOICE_H
#define DEVICED_FEDSEL_CHOICE_H

#include <stdint.h>

#define FEDSEL_DEV_METHODS	16	/* methods in a report or a choice */

struct fedsel_dev_choice {
	char	 method[32];
	double	 lr;
	int	 steps;
	int	 by_evidence;	/* 0: the cloud's default point */
	double	 pair_weight;	/* the cloud's pair weight for method */
};

/* The cloud's choice as fetched (GetSelectionReq). */
struct fedsel_dev {
	uint64_t round;		/* the base version whose reports chose */
	int	 n;
	struct fedsel_dev_choice c[FEDSEL_DEV_METHODS];
};

/* The cloud's setting for method in f (NULL: none): 0, or -1 if none. */
int	fedsel_dev_find(const struct fedsel_dev *f, const char *method,
	    double *lr, int *steps);
/*
 * The cloud's pair weight for method in f (NULL: none): 0, or -1 if the
 * cloud has no choice for it.
 */
int	fedsel_dev_find_pw(const struct fedsel_dev *f, const char *method,
	    double *w);

#endif
