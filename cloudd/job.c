/*
 * job: see job.h.
 */
#include <assert.h>
#include <stddef.h>

#include "cloudd/job.h"

void
job_begin(struct job_ctl *j)
{
	j->n++;
}

void
job_end(struct job_ctl *j, uint32_t k)
{
	assert(j->n >= k);
	j->n -= k;
}

void
job_idle(struct job_ctl *j)
{
	if (j->n == 0 && j->idle != NULL)
		j->idle(j->arg);
}
