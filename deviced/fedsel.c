/*
 * fedsel: the device's half of federated selection (fedsel.h). What a
 * report reveals is in conf/SECURITY.md (Federated selection): per
 * method and grid point, sums over the device's held-out local samples
 * of the logloss gain over the cloud model, of its squared difference
 * from the default point's, and of the net count of (click, no-click)
 * pairs ordered better, with the counts of samples and pairs. With DP on
 * nothing is reported: these sums are not noised, so they would leave the
 * device outside its epsilon.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "deviced/deviced.h"
#include "deviced/fedsel.h"
#include "deviced/learn.h"
#include "shared/log.h"
#include "shared/xmalloc.h"

int
fedsel_dev_reports(const struct device *d)
{
	const struct deviced_conf *cf = &d->dd->cf;

	return cf->fedsel_report && cf->dp_clip == 0 && cf->dp_repr_clip == 0;
}

int
fedsel_dev_wanted(const struct device *d)
{
	const struct deviced_conf *cf = &d->dd->cf;

	return cf->select == 1 || cf->pair_select == 1 ||
	    (cf->eval_dir[0] != '\0' && (strstr(cf->eval_methods, "-fed") !=
	    NULL || strstr(cf->eval_methods, "-pairw") != NULL));
}

void
fedsel_dev_report(struct learn_prep *p, struct learn_memo *memo,
    uint64_t version, struct learn_result *r)
{
	const struct deviced_conf *cf = p->in->cf;
	Dccl__SelectReport q = DCCL__SELECT_REPORT__INIT;
	Dccl__GridReport gr[FEDSEL_DEV_METHODS], *gp[FEDSEL_DEV_METHODS];
	struct learn_grid g[FEDSEL_DEV_METHODS];
	uint32_t steps[FEDSEL_DEV_METHODS][LEARN_GRID_ST];
	char *list = xstrdup(cf->fedsel_methods), *save = NULL, *nm;
	size_t n = 0;

	for (nm = strtok_r(list, ",", &save); nm != NULL;
	    nm = strtok_r(NULL, ",", &save)) {
		/* A family at every candidate weight, else its own. */
		int fam = learn_pair_family(cf, nm);
		int nw = fam ? (cf->npw > 0 ? cf->npw : 1) : 1;
		size_t n0 = n;

		if (n + (size_t)nw > FEDSEL_DEV_METHODS)
			break;
		for (int k = 0; k < nw; k++) {
			double w = !fam ? -1 : cf->npw > 0 ? cf->pw[k] : 0;
			if (learn_method_grid(p, nm, w, memo, &g[n]) != 0)
				break;	/* unknown */
			if ((!g[n].have || g[n].n == 0) && k > 0) {
				/*
				 * A family's weight whose CV failed (a fit at
				 * some point diverged) on data the default
				 * weight's CV scored: counted as no change from
				 * the cloud model, zero gains and net pairs,
				 * which is what a guarded row then serves.
				 * Dropping the report instead would drop the
				 * devices where a weight misbehaves.
				 */
				g[n] = g[n0];
				memset(g[n].gain, 0, sizeof(g[n].gain));
				memset(g[n].sq, 0, sizeof(g[n].sq));
				memset(g[n].dsq, 0, sizeof(g[n].dsq));
				memset(g[n].rank, 0, sizeof(g[n].rank));
			}
			if (!g[n].have || g[n].n == 0) {
				n = n0;	/* no evidence here */
				break;
			}
			dccl__grid_report__init(&gr[n]);
			gr[n].method = nm;
			gr[n].pair_weight = w > 0 ? w : 0;
			gr[n].n_lr = LEARN_GRID_LR;
			gr[n].lr = g[n].lr;
			for (int j = 0; j < LEARN_GRID_ST; j++)
				steps[n][j] = (uint32_t)g[n].steps[j];
			gr[n].n_steps = LEARN_GRID_ST;
			gr[n].steps = steps[n];
			gr[n].n = (uint32_t)g[n].n;
			gr[n].pairs = (uint32_t)g[n].pairs;
			gr[n].n_gain_sum = gr[n].n_diff_sq =
			    gr[n].n_rank_net = LEARN_GRID_N;
			gr[n].gain_sum = g[n].gain;
			gr[n].diff_sq = g[n].dsq;
			gr[n].rank_net = g[n].rank;
			gp[n] = &gr[n];
			n++;
		}
	}
	if (n > 0) {
		q.base_version = version;
		q.n_methods = n;
		q.methods = gp;
		r->report_len = dccl__select_report__get_packed_size(&q);
		r->report = xmalloc(r->report_len);
		dccl__select_report__pack(&q, r->report);
	}
	free(list);
}

void
fedsel_dev_after(struct device *d, struct learn_result *r)
{
	if (r->fed != 0)
		log_info("SETTING: device=%s served method at lr %g steps %d "
		    "(%s), %s", d->id, r->pick_lr, r->pick_steps, r->fed > 0 ?
		    "the cloud's choice" : "the default: the cloud has none",
		    !r->adopted ? "refused by the guard" : r->fallback ?
		    "refused; the bias alone adopted at its own setting" :
		    "adopted");
	if (r->pw_fed != 0)
		log_info("PAIRW: device=%s served method at pair weight %g "
		    "(%s), %s", d->id, r->pair_w, r->pw_fed > 0 ?
		    "the cloud's choice" : "the default: the cloud has none",
		    !r->adopted ? "refused by the guard" : r->fallback ?
		    "refused; the bias alone adopted" : "adopted");
	if (r->report == NULL)
		return;
	free(d->report);
	d->report = r->report;
	d->report_len = r->report_len;
	r->report = NULL;
	r->report_len = 0;
}

int
fedsel_dev_take(struct device *d, const Dccl__Selection *s)
{
	struct fedsel_dev *f = xcalloc(1, sizeof(*f));

	if (s->n_choices > FEDSEL_DEV_METHODS)
		goto fail;
	for (size_t i = 0; i < s->n_choices; i++) {
		const Dccl__MethodChoice *c = s->choices[i];
		if (c->method == NULL || strlen(c->method) >=
		    sizeof(f->c[0].method) || !(c->lr > 0 && c->lr <= 100) ||
		    c->steps == 0 || c->steps > 1000000 ||
		    !(c->pair_weight >= 0 && c->pair_weight <= 100) ||
		    c->n_pair_weights > 8 ||
		    c->n_pair_net != c->n_pair_weights)
			goto fail;
		snprintf(f->c[f->n].method, sizeof(f->c[0].method), "%s",
		    c->method);
		f->c[f->n].lr = c->lr;
		f->c[f->n].steps = (int)c->steps;
		f->c[f->n].by_evidence = c->by_evidence;
		f->c[f->n].pair_weight = c->pair_weight;
		f->n++;
		log_info("SELECTION: device=%s %s lr %g steps %u (%s; %u "
		    "devices, %llu samples, mean gain %.5f vs default %.5f)",
		    d->id, c->method, c->lr, c->steps, c->by_evidence ?
		    "by evidence" : "the default", c->devices,
		    (unsigned long long)c->n, c->mean_gain, c->default_gain);
		if (c->pair_devices > 0) {
			char net[256];
			size_t o = 0;
			for (size_t k = 0; k < c->n_pair_weights &&
			    o < sizeof(net); k++)
				o += (size_t)snprintf(net + o, sizeof(net) - o,
				    " %g:%.1f", c->pair_weights[k],
				    c->pair_net[k]);
			log_info("SELECTION: device=%s %s pair weight %g (%s; "
			    "%s users; %u reports, net pairs by weight%s)",
			    d->id, c->method, c->pair_weight,
			    c->pair_by_evidence ? "by evidence" : "the default",
			    c->group == 0 ? "warm" : c->group == 1 ? "cold" :
			    "all", c->pair_devices, net);
		}
	}
	f->round = s->round;
	free(d->fedsel);
	d->fedsel = f;
	return 0;
fail:
	free(f);
	return -1;
}

void
fedsel_dev_fini(struct device *d)
{
	free(d->fedsel);
	d->fedsel = NULL;
	free(d->report);
	d->report = NULL;
}
