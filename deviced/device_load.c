/*
 * device_load: a device's state on disk, for device.c's state machine
 * (loop thread). device_load opens the device's directory at start (store,
 * auth key and enrollment token, DP budget, local and test samples, the
 * stored model); device_load_install installs a downloaded model once its
 * chunks are all stored; device_load_fits checks a model against the local
 * data's side fields for both. Moved out of device.c, which keeps the
 * protocol; nothing here sends or changes the device's state.
 */
#include <errno.h>
#include <unistd.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "deviced/dev_model.h"
#include "deviced/device_load.h"
#include "deviced/deviced.h"
#include "deviced/dp.h"
#include "deviced/dshared.h"
#include "deviced/model_fit.h"
#include "shared/auth.h"
#include "shared/ml/ctr.h"
#include "shared/ml/ctr_slice.h"
#include "shared/data/dataset.h"
#include "shared/fsutil.h"
#include "shared/log.h"
#include "shared/notify.h"
#include "shared/xmalloc.h"

/*
 * A model whose side fields are not the local data's is refused
 * (MODEL_FIT_EREFUSED), logged, and remembered by device.c's on_chunk so the device
 * does not fetch that version again (model_fit.h). A device without
 * local data takes the model's fields.
 */
int
device_load_fits(struct device *d, struct ctr *m, uint64_t version)
{
	const struct ctr_config *c = ctr_config(m);
	char err[256];

	switch (model_fit_check(c, &d->local, err, sizeof(err))) {
	case MODEL_FIT_OK:
		return 0;
	case MODEL_FIT_ADOPT:
		d->local.n_side = c->n_side;
		memcpy(d->local.side_card, c->side_card,
		    sizeof(d->local.side_card));
		log_info("SCHEMA: device=%s has no local data; takes the "
		    "model's %u side fields", d->id, c->n_side);
		return 0;
	case MODEL_FIT_REFUSED:
		break;
	}
	log_warnx("SCHEMA: device=%s model v%llu refused: %s; keeping "
	    "model v%llu", d->id, (unsigned long long)version, err,
	    (unsigned long long)d->version);
	return MODEL_FIT_EREFUSED;
}

/*
 * Installs a downloaded model after verifying it: when all its chunks
 * were stored in a row from chunk 0 under one manifest (dl_checked), each
 * matched the manifest's BLAKE2b-256 for its index and the manifest came
 * authenticated, so the model is bound already and only its length is
 * checked; else (a download resumed from chunks stored earlier, or the
 * manifest fetched again midway) the whole model's BLAKE2b-256 is.
 */
int
device_load_install(struct device *d, const Dccl__UserRows *rows)
{
	const char *dir = d->dd->cf.data_dir;
	uint8_t sum[32], sid[32], *sl = NULL, *ref = NULL;
	void *blob = NULL;
	size_t len = 0, sllen = 0, reflen = 0;
	struct ctr *m = NULL;
	double gctr = 0;
	char err[256];
	int rc, bound;

	if ((rc = dstore_dl_assemble(d->st, d->dl_version, &blob, &len)))
		return rc;
	bound = d->dl_checked == d->dl_n && d->dl_n > 0;
	if (!bound)
		crypto_generichash(sum, 32, blob, len, NULL, 0);
	if (len != d->dl_total || (!bound && memcmp(sum, d->dl_sum, 32) != 0)) {
		log_warnx("DOWNLOAD: device=%s model v%llu checksum mismatch; "
		    "starting over", d->id, (unsigned long long)d->dl_version);
		rc = -EBADMSG;
		goto fail;
	}
	/*
	 * Protocol 7: the chunks are the shared part; with the device's own
	 * rows from the manifest they make its slice, which is what the
	 * device uses (shared/ml/ctr_slice.h): a view of the shared part
	 * when this deviced holds it already, else assembled and unpacked.
	 */
	if (rows == NULL || rows->user_id != d->user) {
		log_warnx("DOWNLOAD: device=%s model v%llu: no rows for user "
		    "%u", d->id, (unsigned long long)d->dl_version, d->user);
		rc = -EBADMSG;
		goto fail;
	}
	if (ctr_slice_shared_id(blob, len, sid) != 0) {
		snprintf(err, sizeof(err), "not a shared part");
		rc = -EBADMSG;
	} else if ((rc = dev_model_view(d->dd, d->dl_version, sid, d->user,
	    rows, &m, &gctr, err, sizeof(err))) == -ENOENT &&
	    (rc = ctr_slice_assemble(blob, len, d->user, rows->tensors,
	    rows->n_tensors, &sl, &sllen, err, sizeof(err))) == 0) {
		rc = dev_model_get(d->dd, d->dl_version, sl, sllen, &m, &gctr,
		    err, sizeof(err));
		free(sl);
	}
	if (rc != 0) {
		log_warnx("DOWNLOAD: device=%s model v%llu refused: %s", d->id,
		    (unsigned long long)d->dl_version, err);
		goto fail;
	}
	if ((rc = device_load_fits(d, m, d->dl_version)) != 0) {
		dev_model_put(d->dd, m);
		goto fail;
	}
	/* The shared part once per data directory (dshared.h), then the
	 * device's reference to it. */
	if ((rc = dshared_put(dir, d->dl_version, sid, blob, len)) != 0) {
		log_warnx("MODEL: device=%s cannot store the shared part of "
		    "v%llu in %s/shared: %s", d->id,
		    (unsigned long long)d->dl_version, dir, strerror(-rc));
		dev_model_put(d->dd, m);
		goto fail;
	}
	dshared_ref_pack(sid, rows, &ref, &reflen);
	rc = dstore_model_put(d->st, d->dl_version, ref, reflen);
	free(ref);
	if (rc != 0) {
		dev_model_put(d->dd, m);
		goto fail;
	}
	dev_model_put(d->dd, d->model);
	d->model = m;
	{
		/* older versions' files, but for those hosted devices use */
		uint64_t below = dev_model_oldest(d->dd);
		if (below > d->dl_version)
			below = d->dl_version;
		if (d->dd->shared_pruned < below) {
			dshared_prune(dir, below);
			d->dd->shared_pruned = below;
		}
	}
	d->enc = dev_model_enc(d->dd, m);
	d->version = d->dl_version;
	d->global_ctr = gctr;
	dstore_dl_clear(d->st);
	free(blob);
	uv_update_time(&d->dd->loop);
	log_info("DOWNLOAD: device=%s model v%llu installed (%zu bytes, r_g "
	    "%.4f, chunks since the manifest %.0f ms, install %.0f ms, %s)",
	    d->id, (unsigned long long)d->version, len, d->global_ctr,
	    d->dl_t1 - d->dl_t0, (double)uv_now(&d->dd->loop) - d->dl_t1,
	    bound ? "checked per chunk" : "whole-model hash");
	notify_status("device %s: model v%llu", d->id,
	    (unsigned long long)d->version);
	return 0;
fail:
	dstore_dl_clear(d->st);
	d->dl_next = 0;
	free(blob);
	return rc;
}

/* What a device that cannot enrol must be given, in one line. */
void
device_load_token_hint(const struct device *d)
{
	const struct deviced_conf *cf = &d->dd->cf;

	log_warnx("AUTH: device=%s has no enrollment token and no enrolled "
	    "key, so the cloud will refuse it: copy cloudd's "
	    "<cloudd.data-dir>/enroll.token to %s (auth.token-file), or set "
	    "auth.token or $DCCL_AUTH_TOKEN, or install a key file from "
	    "'dcctl enroll %s -o KEYFILE' as %s/auth.key", d->id,
	    cf->auth_token_file[0] != '\0' ? cf->auth_token_file :
	    "a file named by auth.token-file", d->id, d->dir);
}

/*
 * The device's key file (<dir>/auth.key, made on first start) and the
 * enrollment token: auth.token, else $DCCL_AUTH_TOKEN, else the first line
 * of auth.token-file.
 */
static int
device_auth_open(struct device *d)
{
	const struct deviced_conf *cf = &d->dd->cf;
	const char *env = getenv("DCCL_AUTH_TOKEN");
	char path[1100], tok[256] = "";
	int rc;

	if (cf->auth_token[0] != '\0')
		snprintf(tok, sizeof(tok), "%s", cf->auth_token);
	else if (env != NULL && env[0] != '\0')
		snprintf(tok, sizeof(tok), "%s", env);
	else if (cf->auth_token_file[0] != '\0' && (rc = auth_read_token(
	    cf->auth_token_file, tok, sizeof(tok))) != 0 && rc != -ENOENT) {
		log_warnx("AUTH: %s: %s", cf->auth_token_file, strerror(-rc));
		return -1;
	}
	d->auth = xcalloc(1, sizeof(*d->auth));
	snprintf(path, sizeof(path), "%s/auth.key", d->dir);
	if ((rc = auth_dev_open(d->auth, path, tok, cf->auth_mode)) != 0) {
		log_warnx("AUTH: %s: %s", path, strerror(-rc));
		return -1;
	}
	d->auth->repin = cf->auth_repin;
	sodium_memzero(tok, sizeof(tok));
	if (cf->auth_mode != AUTH_OFF && !d->auth->have_tok &&
	    !d->auth->have_cpk)
		device_load_token_hint(d);
	return 0;
}

/*
 * The device's state from its directory (<deviced.data-dir>/<id>): the
 * store, the key file and enrollment token, the DP budget, the local
 * samples (imported once from local_csv), the test samples, the stored
 * model and whether a patch for it was already made.
 */
/*
 * The slice a store's reference names (dshared.h): a view of the shared
 * part when this deviced holds it, else assembled from the shared part's
 * file and the stored rows. 0, or -1 with err (the device downloads
 * its model again).
 */
static int
load_ref(struct device *d, uint32_t user, const void *blob, size_t len,
    char *err, size_t errlen)
{
	Dccl__UserRows *rows = NULL;
	uint8_t sid[32], *sl = NULL;
	void *sh = NULL;
	size_t shlen = 0, sllen = 0;
	int rc;

	if (dshared_ref_unpack(blob, len, sid, &rows) != 1) {
		snprintf(err, errlen, "a damaged reference");
		return -1;
	}
	if (rows->user_id != user) {
		snprintf(err, errlen, "rows of user %u", rows->user_id);
		rc = -1;
	} else if ((rc = dev_model_view(d->dd, d->version, sid, user, rows,
	    &d->model, NULL, err, errlen)) == -ENOENT) {
		if ((rc = dshared_get(d->dd->cf.data_dir, d->version, sid, &sh,
		    &shlen)) != 0)
			snprintf(err, errlen, "its shared part %s (%s/shared)",
			    rc == -ENOENT ? "is gone" : "is damaged",
			    d->dd->cf.data_dir);
		else if ((rc = ctr_slice_assemble(sh, shlen, user,
		    rows->tensors, rows->n_tensors, &sl, &sllen, err,
		    errlen)) == 0)
			rc = dev_model_get(d->dd, d->version, sl, sllen,
			    &d->model, NULL, err, errlen);
	}
	free(sl);
	free(sh);
	dccl__user_rows__free_unpacked(rows, NULL);
	return rc != 0 ? -1 : 0;
}

/*
 * Stores an imported CSV's samples oldest first, so that store ids grow
 * with time and the retention window never deletes the newest id
 * (dstore_samples_add).
 */
static int
import_in_time_order(struct device *d, const struct dataset *ds)
{
	struct dataset srt;
	uint32_t *ord;
	size_t *idx;
	int rc, sorted = 1;

	for (size_t i = 1; i < ds->n && sorted; i++)
		sorted = ds->s[i].ts >= ds->s[i - 1].ts;
	if (sorted)
		return dstore_samples_add(d->st, ds, 0, NULL);
	ord = xmalloc(ds->n * sizeof(*ord));
	idx = xmalloc(ds->n * sizeof(*idx));
	for (size_t i = 0; i < ds->n; i++)
		ord[i] = (uint32_t)i;
	dataset_sort_by_time(ds, ord, ds->n);
	for (size_t i = 0; i < ds->n; i++)
		idx[i] = ord[i];
	dataset_init(&srt);
	srt.n_side = ds->n_side;
	memcpy(srt.side_card, ds->side_card, sizeof(srt.side_card));
	dataset_append_subset(&srt, ds, idx, ds->n);
	rc = dstore_samples_add(d->st, &srt, 0, NULL);
	dataset_fini(&srt);
	free(ord);
	free(idx);
	return rc;
}

int
device_load(struct device *d, const char *id, uint32_t user,
    const char *local_csv, const char *test_csv)
{
	struct deviced *dd = d->dd;
	const struct deviced_conf *cf = &dd->cf;
	char path[1100], err[512];
	struct dataset_opts o;
	struct dataset_err de;
	uint64_t n = 0;
	void *blob;
	size_t len;
	int fresh;

	snprintf(d->dir, sizeof(d->dir), "%s/%s", cf->data_dir, id);
	if (fs_mkdirs(d->dir, 0750) != 0) {
		log_warn("STATE-DIR: %s", d->dir);
		return -1;
	}
	snprintf(path, sizeof(path), "%s/device.db", d->dir);
	fresh = access(path, F_OK) != 0;
	if (dstore_open(&d->st, path, err, sizeof(err)) != 0) {
		log_warnx("DB-OPEN: %s", err);
		return -1;
	}
	if (device_auth_open(d) != 0)
		return -1;
	(void)dp_device_load(d, fresh);	/* a bad budget refuses releases */
	dataset_opts_default(&o);
	memset(&de, 0, sizeof(de));
	if (local_csv != NULL && local_csv[0] != '\0' &&
	    dstore_samples_count(d->st, &n) == 0 && n == 0) {
		struct dataset tmp;
		dataset_init(&tmp);
		if (dataset_read_csv(&tmp, local_csv, &o, &de) != 0 ||
		    import_in_time_order(d, &tmp) != 0) {
			log_warnx("LOCAL-DATA: %s", de.msg[0] ? de.msg :
			    dstore_errmsg(d->st));
			dataset_fini(&tmp);
			return -1;
		}
		dataset_fini(&tmp);
	}
	/* The retention window (learn.max-local), also for an older store. */
	if (dstore_samples_count(d->st, &n) == 0 && n > (uint64_t)cf->max_local) {
		log_info("LOCAL-DATA: device=%s keeps its newest %lld of %llu "
		    "samples (learn.max-local)", id, (long long)cf->max_local,
		    (unsigned long long)n);
		if (dstore_samples_trim(d->st, (uint64_t)cf->max_local) != 0) {
			log_warnx("LOCAL-DATA: %s", dstore_errmsg(d->st));
			return -1;
		}
	}
	dstore_samples_load(d->st, &d->local, user);
	(void)dstore_samples_last_id(d->st, &d->local_last_id);
	if (test_csv != NULL && cf->eval_dir[0] != '\0' &&
	    dataset_read_csv(&d->test, test_csv, &o, &de) != 0)
		log_warnx("TEST-DATA: %s", de.msg);
	for (size_t i = 0; i < d->test.n; i++)
		d->test.s[i].user = user;
	if (dstore_model_get(d->st, &d->version, &blob, &len) == 0) {
		if (dshared_ref_is(blob, len) ? load_ref(d, user, blob, len,
		    err, sizeof(err)) != 0 : dev_model_get(dd, d->version,
		    blob, len, &d->model, NULL, err, sizeof(err)) != 0) {
			log_warnx("MODEL: device=%s stored model refused: %s",
			    id, err);
			d->version = 0;
		} else if (!ctr_config(d->model)->sliced ||
		    ctr_config(d->model)->slice_user != user) {
			/*
			 * A store of protocol 6 holds the whole model, every
			 * user's rows: not used; the device downloads its
			 * slice, which replaces it.
			 */
			log_info("MODEL: device=%s stored model v%llu is not "
			    "this user's slice; downloading again", id,
			    (unsigned long long)d->version);
			dev_model_put(dd, d->model);
			d->model = NULL;
			d->version = 0;
		} else if (device_load_fits(d, d->model, d->version) != 0) {
			/* The local data changed schema since. */
			dev_model_put(dd, d->model);
			d->model = NULL;
			d->version = 0;
		} else
			d->enc = dev_model_enc(dd, d->model);
		free(blob);
	}
	/*
	 * A patch already made for the stored model from the same samples
	 * is not made again after a restart (a killed deviced hosting many
	 * devices would upload twice for those done): a pending one is sent,
	 * an acknowledged one stands. New samples since train again.
	 */
	{
		int64_t tn = -1;
		if (d->model == NULL || dstore_outbox_last_base(d->st,
		    &d->trained_version) != 0 || d->trained_version !=
		    d->version || dstore_kv_get(d->st, "trained_last_id",
		    &tn) != 0 || tn != d->local_last_id)
			d->trained_version = 0;
	}
	return 0;
}
