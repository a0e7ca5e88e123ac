/*
 * dev_model: the cloud models one deviced shares among its devices (see
 * dev_model.h).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "deviced/dev_model.h"
#include "deviced/deviced.h"
#include "shared/ml/ctr.h"
#include "shared/ml/ctr_io.h"
#include "shared/ml/encoder.h"
#include "shared/ml/encoder_io.h"
#include "shared/xmalloc.h"

/*
 * Cloud models are read-only once installed (training clones them), so the
 * devices one deviced hosts share one copy per version and checksum: with
 * hundreds of devices per process a copy each was most of their memory.
 * Loop thread only; a running job holds its device's reference.
 */
struct dev_model {
	struct dev_model	*next;
	uint64_t		 version;
	uint8_t			 sum[32];
	double			 global_ctr;
	int			 refs;
	struct ctr		*m;
	struct enc		*enc;	/* its auxiliary encoder, or NULL */
};

/* The model packed in blob, shared if this deviced already holds it. */
int
dev_model_get(struct deviced *dd, uint64_t version, const void *blob,
    size_t len, struct ctr **out, double *global_ctr, char *err,
    size_t errlen)
{
	struct dev_model *e;
	struct ctr_meta meta;
	uint8_t sum[32];
	int rc;

	crypto_generichash(sum, sizeof(sum), blob, len, NULL, 0);
	for (e = dd->models; e != NULL; e = e->next)
		if (e->version == version && memcmp(e->sum, sum, 32) == 0)
			break;
	if (e == NULL) {
		struct ctr *m = NULL;
		struct enc *en = NULL;
		if ((rc = ctr_io_unpack(&m, &meta, blob, len, err, errlen)))
			return rc;
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
		e->global_ctr = meta.global_ctr;
		e->m = m;
		e->next = dd->models;
		dd->models = e;
	}
	e->refs++;
	*out = e->m;
	if (global_ctr != NULL)
		*global_ctr = e->global_ctr;
	return 0;
}

/* Drops a reference from dev_model_get; the last one frees the model. */
void
dev_model_put(struct deviced *dd, struct ctr *m)
{
	struct dev_model **pp, *e;

	if (m == NULL)
		return;
	for (pp = &dd->models; (e = *pp) != NULL; pp = &e->next)
		if (e->m == m)
			break;
	if (e == NULL) {
		ctr_free(m);	/* not shared */
		return;
	}
	if (--e->refs > 0)
		return;
	*pp = e->next;
	ctr_free(e->m);
	enc_free(e->enc);
	free(e);
}

/* The encoder shipped with shared model m (dev_model_get), or NULL. */
struct enc *
dev_model_enc(const struct deviced *dd, const struct ctr *m)
{
	for (const struct dev_model *e = dd->models; e != NULL; e = e->next)
		if (e->m == m)
			return e->enc;
	return NULL;
}
