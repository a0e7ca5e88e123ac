/*
 * model: the cloud's current model version, cached in memory as the packed
 * blob devices download in chunks. Versions live in the store; publishing
 * a new one (stored by the training job) swaps the cache and announces it
 * on PUB. Loop thread only.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "cloudd/cloudd.h"
#include "cloudd/sblob.h"
#include "dccl.pb-c.h"
#include "shared/log.h"
#include "shared/notify.h"
#include "shared/xmalloc.h"

/* Reads the shape facts patch validation needs from the packed model. */
static void
read_shape(struct model_cache *m)
{
	Dccl__Model *pm = dccl__model__unpack(NULL, m->size, m->blob);

	m->n_hidden = m->patch_rank = 0;
	if (pm == NULL)
		return;
	if (pm->config != NULL) {
		m->n_hidden = (int)pm->config->n_hidden;
		m->patch_rank = (int)pm->config->patch_rank;
	}
	dccl__model__free_unpacked(pm, NULL);
}

void
model_cache_fini(struct model_cache *m)
{
	sblob_unref(m->bytes);	/* chunks being sealed keep their ref */
	memset(m, 0, sizeof(*m));
}

int
model_load_latest(struct cloudd *cd)
{
	struct store_model_info mi;
	void *blob;
	int rc;

	if ((rc = store_model_info(cd->st, 0, &mi)) == -ENOENT)
		return 0;	/* no model yet */
	if (rc != 0)
		return rc;
	blob = xmalloc(mi.size);
	if ((rc = store_model_read(cd->st, mi.version, 0, blob, mi.size))) {
		free(blob);
		return rc;
	}
	model_cache_fini(&cd->model);
	cd->model.version = mi.version;
	cd->model.parent = mi.parent;
	cd->model.bytes = sblob_wrap(blob, mi.size, mi.version);
	cd->model.blob = blob;
	cd->model.size = mi.size;
	cd->model.global_ctr = mi.global_ctr;
	memcpy(cd->model.checksum, mi.checksum, 32);
	memcpy(cd->model.bytes->sum, mi.checksum, 32);
	read_shape(&cd->model);
	log_info("MODEL: loaded v%llu (%llu bytes, r_g %.4f)",
	    (unsigned long long)mi.version, (unsigned long long)mi.size,
	    mi.global_ctr);
	return 0;
}

int
model_publish(struct cloudd *cd, const struct store_model_info *mi,
    void *blob, size_t size)
{
	model_cache_fini(&cd->model);
	cd->model.version = mi->version;
	cd->model.parent = mi->parent;
	cd->model.bytes = sblob_wrap(blob, size, mi->version);
	cd->model.blob = blob;
	cd->model.size = size;
	cd->model.global_ctr = mi->global_ctr;
	memcpy(cd->model.checksum, mi->checksum, 32);
	memcpy(cd->model.bytes->sum, mi->checksum, 32);
	read_shape(&cd->model);
	notify_status("model v%llu", (unsigned long long)mi->version);
	rpc_announce(cd);
	return 0;
}
