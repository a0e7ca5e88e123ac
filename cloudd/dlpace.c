/* dlpace: see dlpace.h. */
#include "cloudd/cloudd.h"
#include "cloudd/dlpace.h"

#define DLPACE_DEPTH_S	0.25	/* bucket depth, seconds of the rate */

uint32_t
dlpace_take(struct cloudd *cd, size_t len)
{
	struct dlpace *p = &cd->dlpace;
	double rate = cd->cf.download_rate * 1048576.0 / 1e3;	/* bytes/ms */
	double depth, need;

	if (rate <= 0)
		return 0;
	depth = rate * DLPACE_DEPTH_S * 1e3;
	if (depth < (double)len)
		depth = (double)len;	/* one chunk always fits */
	if (tbucket_take(&p->b, rate, depth, (double)uv_now(&cd->loop),
	    (double)len)) {
		p->granted++;
		return 0;
	}
	p->refused++;
	need = tbucket_wait(&p->b, rate, (double)len);
	return need < 1 ? 1 : (uint32_t)need + 1;
}
