/*
 * dev_model: the cloud models one deviced shares among its devices (see
 * dev_model.h).
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "deviced/dev_model.h"
#include "deviced/deviced.h"
#include "shared/ml/ctr.h"
#include "shared/ml/ctr_io.h"
#include "shared/ml/ctr_slice.h"
#include "shared/ml/encoder.h"
#include "shared/ml/encoder_io.h"
#include "shared/log.h"
#include "shared/xmalloc.h"

/*
 * Cloud models are read-only once installed (training clones them), so the
 * devices one deviced hosts share what they can of a version: since
 * protocol 7 a device holds its slice (its own per-user rows beside the
 * version's shared part), so an entry holds the shared part's parameters
 * once (base, keyed by version and the shared part's checksum) and each
 * device a view of it with its own rows (ctr_view: 245 KB less per hosted
 * device). A model that is no slice (a protocol-6 store, before it is
 * replaced) is shared whole by version and blob hash, as before.
 * Loop thread only; a running job holds its device's reference.
 */
struct dev_model {
	struct dev_model	*next;
	uint64_t		 version;
	uint8_t			 sum[32];	/* shared part's, or blob's */
	int			 views;		/* entries of slices */
	double			 global_ctr;
	int			 refs;		/* devices using it */
	struct ctr		*m;		/* base of the views, or the
						   model itself */
	struct enc		*enc;	/* its auxiliary encoder, or NULL */
};

/* Unlinks e and frees it with its model. */
static void
drop(struct deviced *dd, struct dev_model *e)
{
	struct dev_model **pp;

	for (pp = &dd->models; *pp != NULL; pp = &(*pp)->next)
		if (*pp == e) {
			*pp = e->next;
			break;
		}
	ctr_free(e->m);
	enc_free(e->enc);
	free(e);
}

static struct dev_model *
find(struct deviced *dd, uint64_t version, const uint8_t sum[32], int views)
{
	struct dev_model *e;

	for (e = dd->models; e != NULL; e = e->next)
		if (e->version == version && e->views == views &&
		    memcmp(e->sum, sum, 32) == 0)
			break;
	return e;
}

/* The model packed in blob, sharing what this deviced already holds. */
int
dev_model_get(struct deviced *dd, uint64_t version, const void *blob,
    size_t len, struct ctr **out, double *global_ctr, char *err,
    size_t errlen)
{
	struct dev_model *e;
	struct ctr_meta meta;
	struct ctr *m = NULL, *v;
	uint8_t sum[32];
	int rc, views;

	*out = NULL;
	views = ctr_slice_shared_sum(blob, len, sum) == 0;
	if (!views)
		crypto_generichash(sum, sizeof(sum), blob, len, NULL, 0);
	e = find(dd, version, sum, views);
	/* A slice is unpacked (and its checksum checked) for its rows. */
	if ((e == NULL || views) &&
	    (rc = ctr_io_unpack(&m, &meta, blob, len, err, errlen)))
		return rc;
	if (e == NULL) {
		struct enc *en = NULL;
		if ((rc = encoder_io_unpack(&en, NULL, m, blob, len, err,
		    errlen))) {
			ctr_free(m);
			return rc;
		}
		/* Installed models are only read (jobs train clones): no
		 * gradient buffer, a quarter of a hosted device's memory. */
		ctr_release_grads(m);
		e = xcalloc(1, sizeof(*e));
		e->enc = en;
		e->version = version;
		memcpy(e->sum, sum, sizeof(sum));
		e->views = views;
		e->global_ctr = meta.global_ctr;
		e->m = m;
		e->next = dd->models;
		dd->models = e;
		m = views ? m : NULL;	/* the base is the entry's */
		if (views)
			log_info("MODEL: v%llu shared part held once for the "
			    "devices of this deviced (%zu parameters)",
			    (unsigned long long)version, ctr_num_params(e->m));
	}
	if (views) {
		/* its rows over the version's shared parameters */
		rc = ctr_view(&v, e->m, ctr_config(m), m);
		if (m != e->m)
			ctr_free(m);
		if (rc != 0) {
			snprintf(err, errlen, "not a view of the shared part");
			if (e->refs == 0)
				drop(dd, e);
			return CTR_IO_ECONFIG;
		}
		m = v;
	} else
		m = e->m;
	e->refs++;
	*out = m;
	if (global_ctr != NULL)
		*global_ctr = e->global_ctr;
	return 0;
}

/* A slice from its rows over a shared part this deviced holds. */
int
dev_model_view(struct deviced *dd, uint64_t version, const uint8_t sum[32],
    uint32_t user, const Dccl__UserRows *rows, struct ctr **out,
    double *global_ctr, char *err, size_t errlen)
{
	struct dev_model *e = find(dd, version, sum, 1);
	int rc;

	*out = NULL;
	if (e == NULL)
		return -ENOENT;
	if ((rc = ctr_slice_view(out, e->m, user, rows->tensors,
	    rows->n_tensors, err, errlen)) != 0)
		return rc;
	e->refs++;
	if (global_ctr != NULL)
		*global_ctr = e->global_ctr;
	return 0;
}

/* The entry of m (of a view's base), or NULL. */
static struct dev_model *
entry_of(const struct deviced *dd, const struct ctr *m)
{
	const struct ctr *b = ctr_view_base(m) != NULL ? ctr_view_base(m) : m;
	struct dev_model *e;

	for (e = dd->models; e != NULL; e = e->next)
		if (e->m == b)
			break;
	return e;
}

/* Drops a reference from dev_model_get; the last one frees the model. */
void
dev_model_put(struct deviced *dd, struct ctr *m)
{
	struct dev_model *e;

	if (m == NULL)
		return;
	if ((e = entry_of(dd, m)) == NULL) {
		ctr_free(m);	/* not shared */
		return;
	}
	if (m != e->m)
		ctr_free(m);	/* a view: drops its reference on the base */
	if (--e->refs == 0)
		drop(dd, e);
}

/* The oldest version this deviced holds, UINT64_MAX if none. */
uint64_t
dev_model_oldest(const struct deviced *dd)
{
	uint64_t v = UINT64_MAX;

	for (const struct dev_model *e = dd->models; e != NULL; e = e->next)
		if (e->version < v)
			v = e->version;
	return v;
}

/* The encoder shipped with shared model m (dev_model_get), or NULL. */
struct enc *
dev_model_enc(const struct deviced *dd, const struct ctr *m)
{
	const struct dev_model *e = entry_of(dd, m);

	return e != NULL ? e->enc : NULL;
}
