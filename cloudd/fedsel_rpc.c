/*
 * fedsel_rpc: the two requests of federated selection (fedsel.h).
 * SelectReport adds a device's grid report to its round, all or nothing,
 * and is answered with a ReportAck or a typed error; GetSelectionReq is
 * answered with the current choice of every method the kept rounds hold.
 * Loop thread only; the table lives in memory (cd->fedsel), so a
 * restarted cloudd, or another replica, starts from the default points.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cloudd/cloudd.h"
#include "cloudd/fedsel.h"
#include "cloudd/rpc.h"
#include "shared/log.h"
#include "shared/xmalloc.h"

void
fedsel_open(struct cloudd *cd)
{
	struct fedsel_opts o = { cd->cf.fedsel_min_devices,
		cd->cf.fedsel_min_n, cd->cf.fedsel_z,
		cd->cf.fedsel_max_devices };

	cd->fedsel = xcalloc(1, sizeof(*cd->fedsel));
	fedsel_init(cd->fedsel, &o);
}

void
fedsel_close(struct cloudd *cd)
{
	if (cd->fedsel == NULL)
		return;
	fedsel_fini(cd->fedsel);
	free(cd->fedsel);
	cd->fedsel = NULL;
}

void
fedsel_report_rpc(struct cloudd *cd, struct rpc_req *r)
{
	const Dccl__SelectReport *q = r->env->select_report;
	Dccl__Envelope e;
	Dccl__ReportAck a = DCCL__REPORT_ACK__INIT;
	char err[256];
	int code, dup;

	if (cd->fedsel == NULL) {
		rpc_error(cd, r, DCCL__ERROR_CODE__E_INTERNAL, "no table");
		return;
	}
	/* A report on a version this cloud never served is stale. */
	if (q->base_version > cd->model.version) {
		rpc_error(cd, r, DCCL__ERROR_CODE__E_STALE, "base v%llu is "
		    "not a served version", (unsigned long long)q->base_version);
		return;
	}
	if ((code = fedsel_add(cd->fedsel, r->env->device_id, q, &dup, err,
	    sizeof(err))) != 0) {
		log_warnx("FEDSEL: device=%s report refused: %s",
		    r->env->device_id, err);
		rpc_error(cd, r, code, "%s", err);
		return;
	}
	log_info("FEDSEL: device=%s base=v%llu %zu methods%s",
	    r->env->device_id, (unsigned long long)q->base_version,
	    q->n_methods, dup ? " (duplicate, not counted)" : "");
	a.methods = dup ? 0 : (uint32_t)q->n_methods;
	a.duplicate = dup;
	rpc_reply_init(&e, r);
	e.body_case = DCCL__ENVELOPE__BODY_REPORT_ACK;
	e.report_ack = &a;
	rpc_reply(cd, r, &e);
}

void
fedsel_get_rpc(struct cloudd *cd, struct rpc_req *r)
{
	const struct fedsel *fs = cd->fedsel;
	Dccl__Envelope e;
	Dccl__Selection s = DCCL__SELECTION__INIT;
	Dccl__MethodChoice mc[FEDSEL_METHODS * FEDSEL_ROUNDS];
	Dccl__MethodChoice *mp[FEDSEL_METHODS * FEDSEL_ROUNDS];
	size_t n = 0;

	if (fs == NULL) {
		rpc_error(cd, r, DCCL__ERROR_CODE__E_INTERNAL, "no table");
		return;
	}
	/* Every method of the kept rounds, newest round first, once each. */
	for (int i = 0; i < FEDSEL_ROUNDS; i++)
		for (int j = 0; j < fs->r[i].n; j++) {
			const char *m = fs->r[i].m[j].method;
			const struct fedsel_agg *a;
			struct fedsel_choice c;
			uint64_t round;
			int have = 0;

			for (size_t k = 0; k < n; k++)
				have |= strcmp(mc[k].method, m) == 0;
			if (have || fedsel_lookup(fs, m, &c, &round, &a) != 0)
				continue;
			dccl__method_choice__init(&mc[n]);
			mc[n].method = (char *)a->method;
			mc[n].lr = c.lr;
			mc[n].steps = c.steps;
			mc[n].point = (uint32_t)c.point;
			mc[n].by_evidence = c.by_evidence;
			mc[n].devices = a->devices;
			mc[n].n = a->n;
			mc[n].mean_gain = c.mean_gain;
			mc[n].default_gain = c.default_gain;
			mp[n] = &mc[n];
			if (s.round < round)
				s.round = round;
			n++;
		}
	s.n_choices = n;
	s.choices = mp;
	rpc_reply_init(&e, r);
	e.body_case = DCCL__ENVELOPE__BODY_SELECTION;
	e.selection = &s;
	rpc_reply(cd, r, &e);
}
