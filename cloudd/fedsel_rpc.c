/*
 * fedsel_rpc: the two requests of federated selection (fedsel.h).
 * SelectReport adds a device's grid report to its round, all or nothing,
 * and is answered with a ReportAck or a typed error; GetSelectionReq is
 * answered with the current choice of every method the kept rounds hold,
 * for the asking device's group of users (fedsel_group). Loop thread
 * only; the table lives in memory (cd->fedsel), so a restarted cloudd,
 * or another replica, starts from the default points.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cloudd/cloudd.h"
#include "cloudd/fedsel.h"
#include "cloudd/rpc.h"
#include "cloudd/slice.h"
#include "shared/log.h"
#include "shared/ml/ctr_slice.h"
#include "shared/xmalloc.h"

static const char *const group_name[] = { "warm", "cold", "all" };

void
fedsel_open(struct cloudd *cd)
{
	struct fedsel_opts o;
	char err[256];

	memset(&o, 0, sizeof(o));
	o.min_devices = cd->cf.fedsel_min_devices;
	o.min_n = cd->cf.fedsel_min_n;
	o.z = cd->cf.fedsel_z;
	o.max_devices = cd->cf.fedsel_max_devices;
	/* checked at start (cloudd.c); a failure leaves the one weight 0 */
	if (cd->cf.fedsel_pw == NULL ||
	    fedsel_pw_parse(cd->cf.fedsel_pw, &o, err, sizeof(err)) != 0)
		o.npw = 0;
	cd->fedsel = xcalloc(1, sizeof(*cd->fedsel));
	fedsel_init(cd->fedsel, &o);
}

/*
 * The group of user's reports and choices, by what the cloud itself
 * knows: cold when the model of version v has no trained personal rows
 * for the user (no row, or its MetaPatch m and bias rows exactly zero as
 * initialised: the user had no pool samples the model trained on), else
 * warm. Warm too when the cloud cannot tell (a model without MetaPatch
 * rows, a version it cannot read) and with fedsel.groups off: then one
 * group holds every report.
 */
static int
fedsel_group(struct cloudd *cd, uint64_t v, uint32_t user)
{
	struct slice_ver *sv;
	Dccl__Tensor t[CTR_SLICE_MAX_TENSORS], *tp[CTR_SLICE_MAX_TENSORS];
	uint32_t shape[2 * CTR_SLICE_MAX_TENSORS];
	char err[256];
	size_t n;
	int patch = 0;

	if (!cd->cf.fedsel_groups || slice_get(cd, v, &sv, err,
	    sizeof(err)) != 0)
		return FEDSEL_WARM;
	n = ctr_slice_rows(&sv->full, user, t, tp, shape);
	for (size_t i = 0; i < n; i++) {
		if (strcmp(t[i].name, "patch_b") != 0 &&
		    strncmp(t[i].name, "patch_m", 7) != 0)
			continue;
		patch = 1;
		if (shape[2 * i] == 0)
			return FEDSEL_COLD;
		for (size_t j = 0; j < t[i].n_data; j++)
			if (t[i].data[j] != 0)
				return FEDSEL_WARM;
	}
	return patch ? FEDSEL_COLD : FEDSEL_WARM;
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
	int code, dup, group;

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
	group = fedsel_group(cd, q->base_version, r->user);
	if ((code = fedsel_add(cd->fedsel, r->env->device_id, group, q, &dup,
	    err, sizeof(err))) != 0) {
		log_warnx("FEDSEL: device=%s report refused: %s",
		    r->env->device_id, err);
		rpc_error(cd, r, code, "%s", err);
		return;
	}
	log_info("FEDSEL: device=%s base=v%llu %zu methods, %s users%s",
	    r->env->device_id, (unsigned long long)q->base_version,
	    q->n_methods, group_name[group],
	    dup ? " (duplicate, not counted)" : "");
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
#define GET_MAX	(FEDSEL_METHODS * FEDSEL_GROUPS * FEDSEL_ROUNDS)
	const struct fedsel *fs = cd->fedsel;
	const Dccl__GetSelectionReq *q = r->env->get_selection;
	Dccl__Envelope e;
	Dccl__Selection s = DCCL__SELECTION__INIT;
	Dccl__MethodChoice mc[GET_MAX], *mp[GET_MAX];
	double pw[GET_MAX][FEDSEL_PW], net[GET_MAX][FEDSEL_PW];
	uint64_t v = cd->model.version;
	size_t n = 0;
	int group;

	if (fs == NULL) {
		rpc_error(cd, r, DCCL__ERROR_CODE__E_INTERNAL, "no table");
		return;
	}
	if (q != NULL && q->model_version != 0 && q->model_version < v)
		v = q->model_version;
	group = fedsel_group(cd, v, r->user);
	/* Every method of the kept rounds, newest round first, once each. */
	for (int i = 0; i < FEDSEL_ROUNDS; i++)
		for (int j = 0; j < fs->r[i].n; j++) {
			const char *m = fs->r[i].m[j].method;
			struct fedsel_agg a;
			struct fedsel_choice c;
			uint64_t round;
			int have = 0, np = fs->o.npw > 0 ? fs->o.npw : 1;

			for (size_t k = 0; k < n; k++)
				have |= strcmp(mc[k].method, m) == 0;
			if (have || n == GET_MAX || fedsel_lookup(fs, m, group,
			    &c, &round, &a) != 0)
				continue;
			dccl__method_choice__init(&mc[n]);
			mc[n].method = (char *)m;
			mc[n].lr = c.lr;
			mc[n].steps = c.steps;
			mc[n].point = (uint32_t)c.point;
			mc[n].by_evidence = c.by_evidence;
			mc[n].devices = a.devices;
			mc[n].n = a.n;
			mc[n].mean_gain = c.mean_gain;
			mc[n].default_gain = c.default_gain;
			mc[n].pair_weight = c.pair_weight;
			mc[n].pair_by_evidence = c.pw_by_evidence;
			mc[n].group = (uint32_t)c.group;
			mc[n].pair_devices = c.ev.devices;
			for (int k = 0; k < np; k++) {
				pw[n][k] = fs->o.npw > 0 ? fs->o.pw[k] : 0;
				net[n][k] = c.ev.own[k];
			}
			mc[n].n_pair_weights = mc[n].n_pair_net = (size_t)np;
			mc[n].pair_weights = pw[n];
			mc[n].pair_net = net[n];
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
#undef GET_MAX
}
