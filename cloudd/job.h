/*
 * job: accounting of the work cloudd has handed to threads (threadpool
 * jobs, sealer jobs, uploads waiting for their group commit), so that a
 * shutdown waits for every reply it owes. The daemon installs an idle hook
 * at start; job_idle() calls it when no job is left, which lets the code
 * that finishes a job ask "may the daemon exit now?" without knowing the
 * daemon. Loop thread only.
 */
#ifndef CLOUDD_JOB_H
#define CLOUDD_JOB_H

#include <stdint.h>

struct job_ctl {
	uint32_t	 n;			/* jobs queued or running */
	void		(*idle)(void *arg);	/* may be NULL */
	void		*arg;
};

/* One more job (before it is queued). */
void	job_begin(struct job_ctl *j);
/* k jobs finished (their results are handled; call job_idle() after). */
void	job_end(struct job_ctl *j, uint32_t k);
/* Calls the idle hook when no job is left. */
void	job_idle(struct job_ctl *j);

#endif
