/* dlslots: see dlslots.h. */
#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#include "cloudd/cloudd.h"
#include "cloudd/dlslots.h"
#include "shared/log.h"
#include "shared/xmalloc.h"

struct dlslots {
	uint32_t	 n;		/* slots: max-download-bytes / chunk */
	int64_t		 chunk, bytes;	/* the limits n was made for */
	uint8_t		 key[crypto_shorthash_KEYBYTES];
	struct {
		uint64_t	 who;	/* SipHash of the device id */
		uint64_t	 until;	/* loop ms; free once past */
	}		*e;
	uint64_t	 refused;	/* since start (log at stop) */
};

/*
 * The table for the current limits (both reload): made anew when they
 * change, which forgets the slots held (at most one table's worth of
 * downloads admitted twice, once).
 */
static struct dlslots *
table(struct cloudd *cd)
{
	struct dlslots *s = cd->dls;
	int64_t n = cd->cf.max_download_bytes / cd->cf.chunk_size;

	if (n > DLSLOTS_MAX)
		n = DLSLOTS_MAX;

	if (s != NULL && s->chunk == cd->cf.chunk_size &&
	    s->bytes == cd->cf.max_download_bytes)
		return s;
	if (s == NULL) {
		s = cd->dls = xcalloc(1, sizeof(*s));
		crypto_shorthash_keygen(s->key);
	}
	free(s->e);
	s->n = n < 1 ? 1 : (uint32_t)n;
	s->e = xcalloc(s->n, sizeof(*s->e));
	s->chunk = cd->cf.chunk_size;
	s->bytes = cd->cf.max_download_bytes;
	return s;
}

int
dlslots_take(struct cloudd *cd, struct rpc_req *r, uint32_t idx,
    uint32_t n_chunks)
{
	struct dlslots *s = table(cd);
	const char *id = r->env->device_id != NULL ? r->env->device_id : "";
	uint64_t now = uv_now(&cd->loop), who;
	uint8_t h[crypto_shorthash_BYTES];
	int64_t k = -1;

	/* keyed: no device can pick an id that shares another's slot */
	crypto_shorthash(h, (const unsigned char *)id, strlen(id), s->key);
	memcpy(&who, h, sizeof(who));
	for (uint32_t i = 0; i < s->n && k < 0; i++)
		if (s->e[i].until > now && s->e[i].who == who)
			k = i;		/* its own, renewed */
	for (uint32_t i = 0; i < s->n && k < 0; i++)
		if (s->e[i].until <= now)
			k = i;		/* a free one */
	if (k < 0) {
		s->refused++;
		rpc_error(cd, r, DCCL__ERROR_CODE__E_BUSY, "%u model "
		    "downloads under way (limits.max-download-bytes); retry "
		    "later", s->n);
		return -1;
	}
	s->e[k].who = who;
	s->e[k].until = now + (idx + 1 >= n_chunks ? DLSLOTS_DRAIN_MS :
	    DLSLOTS_IDLE_MS);
	return 0;
}

uint32_t
dlslots_held(struct cloudd *cd)
{
	struct dlslots *s = cd->dls;
	uint64_t now = uv_now(&cd->loop);
	uint32_t held = 0;

	for (uint32_t i = 0; s != NULL && i < s->n; i++)
		held += s->e[i].until > now;
	return held;
}

void
dlslots_free(struct cloudd *cd)
{
	if (cd->dls == NULL)
		return;
	log_info("DLSLOTS: %u download slots, %llu chunk requests refused "
	    "(E_BUSY)", cd->dls->n, (unsigned long long)cd->dls->refused);
	free(cd->dls->e);
	free(cd->dls);
	cd->dls = NULL;
}
