/*
 * guard: see guard.h. The device table is an open-addressing hash of
 * heap-allocated entries (stable pointers: a request holds its device's
 * entry while in the threadpool). It caches the store's device_keys:
 * loaded at start, added to on enrolment, and (replicas, PostgreSQL) filled
 * on a miss from the store, so a device enrolled through any replica is
 * known to all. An entry exists only for an enrolled key whose session
 * keys could be derived, so unauthenticated traffic cannot grow memory.
 *
 * Counters: the strictly-increasing check runs per process, in memory.
 * The high-water marks are written to the store lazily (cron, and at
 * close) with a max-merge, and read when an entry is loaded. So after a
 * crash a counter may be one cron period behind, and a replica that cached
 * a device earlier does not see the counters other replicas accepted
 * since: a request captured on the wire may be accepted once more by a
 * replica that has not yet seen a higher counter. Every state-changing
 * request is idempotent by request id (uploads) or by content (Register),
 * which is why that window is acceptable (README, "Authentication").
 * Enrolment itself is committed before Registered or Enrolled is sent.
 */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <nanomsg/nn.h>
#include <sodium.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "cloudd/cloudd.h"
#include "cloudd/guard.h"
#include "cloudd/keylookup.h"
#include "cloudd/rpc.h"
#include "shared/clock.h"
#include "shared/log.h"
#include "shared/tbucket.h"
#include "shared/wire.h"
#include "shared/xmalloc.h"

/* Negative cache of store lookups (replicas): slots, and for how long. */
#define GUARD_MISS_SLOTS	1024
#define GUARD_MISS_S		2.0

struct guard_dev {
	char		 id[WIRE_DEVID_MAX + 1];
	uint8_t		 pk[32];
	struct auth_key	 up, down;
	uint64_t	 ctr;		/* last accepted counter */
	uint8_t		 tag[16];	/* its MAC prefix: exact resends */
	int		 dirty;		/* ctr not yet in the store */
	double		 reread_t;	/* last store re-read (replicas) */
	uint8_t		 reread_pk[32];	/* pk when it was asked for */
	int		 reread_pend;	/* a re-read off the loop is out */
	struct tbucket	 rl;		/* rate limit (cf.rate, cf.burst) */
	uint32_t	 inflight;	/* heavy requests held */
	uint8_t		*reply;		/* packed reply to counter reply_ctr */
	size_t		 reply_len;
	uint64_t	 reply_ctr;
	/* the reply to counter ctr: REPLY_* */
	int		 reply_state;
	size_t		 reply_dropped;	/* its size, when not kept */
};

/* What became of the reply to a device's latest request (exact resends). */
#define REPLY_PENDING	0	/* not sent yet (or never: an error path) */
#define REPLY_KEPT	1	/* d->reply holds its bytes */
#define REPLY_DROPPED	2	/* sent, but too large to keep */

struct guard {
	struct store		*st;	/* the loop thread's connection */
	int			 shared;	/* replicas: misses go to the store */
	struct keylookup	*lk;	/* ... off the loop (guard_start) */
	struct cloudd		*cd;		/* for resume, with lk */
	guard_resume_fn		*resume;	/* rpc.c's, with lk */
	uint8_t			 cpk[32], csk[32];
	uint8_t			 spk[32], ssk[64];	/* announcements */
	uint8_t			 akmac[32];	/* Registered's, until packed */
	struct auth_key		 tok;
	int			 have_tok;
	int			 mode;
	struct guard_dev	**tab;
	size_t			 cap, n;
	/*
	 * One bucket for work an unknown id causes (a first enrolment, a
	 * store lookup on a cache miss), so it is bounded before any
	 * X25519 operation, commit or query; and a bound on the entries.
	 */
	double			 erate, eburst;
	struct tbucket		 eb;
	size_t			 max_devices;
	size_t			 reply_bytes;	/* kept replies, all devices */
	/*
	 * Replicas: ids the store recently said are not enrolled, so
	 * traffic under unknown ids costs no query per message.
	 */
	struct {
		char	 id[WIRE_DEVID_MAX + 1];
		double	 t;
	}			 miss[GUARD_MISS_SLOTS];
};

/* A store read after a failed MAC at most this often per device (s). */
#define GUARD_REREAD_S	1.0

static uint64_t
hash(const char *s)
{
	uint64_t h = 1469598103934665603ULL;	/* FNV-1a */

	while (*s)
		h = (h ^ (unsigned char)*s++) * 1099511628211ULL;
	return h;
}

static struct guard_dev **
slot(struct guard_dev **tab, size_t cap, const char *id)
{
	size_t i = hash(id) & (cap - 1);

	while (tab[i] != NULL && strcmp(tab[i]->id, id) != 0)
		i = (i + 1) & (cap - 1);
	return &tab[i];
}

static struct guard_dev *
lookup(struct guard *g, const char *id)
{
	return *slot(g->tab, g->cap, id);
}

static struct guard_dev *
insert(struct guard *g, const char *id)
{
	struct guard_dev **s;

	if ((g->n + 1) * 2 > g->cap) {
		size_t nc = g->cap * 2;
		struct guard_dev **nt = xcalloc(nc, sizeof(*nt));
		for (size_t i = 0; i < g->cap; i++)
			if (g->tab[i] != NULL)
				*slot(nt, nc, g->tab[i]->id) = g->tab[i];
		free(g->tab);
		g->tab = nt;
		g->cap = nc;
	}
	s = slot(g->tab, g->cap, id);
	if (*s == NULL) {
		*s = xcalloc(1, sizeof(**s));
		snprintf((*s)->id, sizeof((*s)->id), "%s", id);
		g->n++;
	}
	return *s;
}

/*
 * Sets d's key and counter. The session keys are derived first: a key
 * they cannot be derived from (a low-order point) is refused and d is left
 * as it was, so no entry ever holds unset (all-zero) MAC keys.
 */
static int
set_key(struct guard *g, struct guard_dev *d, const uint8_t pk[32],
    uint64_t ctr)
{
	struct auth_key up, down;

	if (auth_session_cloud(&up, &down, g->cpk, g->csk, pk) != 0)
		return -EINVAL;
	memcpy(d->pk, pk, 32);
	d->up = up;
	d->down = down;
	d->ctr = ctr;
	if (d->reply != NULL) {		/* a reply under the old key */
		g->reply_bytes -= d->reply_len;
		free(d->reply);
		d->reply = NULL;
		d->reply_len = 0;
	}
	memset(d->tag, 0, sizeof(d->tag));
	d->dirty = 0;
	sodium_memzero(&up, sizeof(up));
	sodium_memzero(&down, sizeof(down));
	return 0;
}

/* Caches a key read from the store; NULL if it is unusable. */
static struct guard_dev *
cache(struct guard *g, const struct store_authkey *k)
{
	struct guard_dev *d = lookup(g, k->device_id), tmp;

	memset(&tmp, 0, sizeof(tmp));
	if (!wire_devid_valid(k->device_id) || set_key(g, &tmp, k->pk,
	    k->counter) != 0) {
		log_warnx("AUTH: device %s: stored key unusable; ignored",
		    k->device_id);
		return NULL;
	}
	if (d == NULL)
		d = insert(g, k->device_id);
	set_key(g, d, k->pk, k->counter);
	sodium_memzero(&tmp, sizeof(tmp));
	return d;
}

/* The unknown-id bucket (see struct guard). 1 when admitted. */
static int
ebucket(struct guard *g, double now)
{
	return tbucket_take(&g->eb, g->erate, g->eburst, now, 1);
}

void
guard_limits(struct guard *g, double enroll_rate, double enroll_burst,
    size_t max_devices)
{
	g->erate = enroll_rate;
	g->eburst = enroll_burst;
	g->eb.primed = 0;	/* full on first use */
	g->max_devices = max_devices;
}

/*
 * The device's entry: cached, else (replicas) read from the store, so a
 * device enrolled through another replica is known here. NULL when it is
 * not enrolled; *dberr is set when the store could not say: 1 (store
 * error), 2 (unknown-id rate), 3 (r parked for a lookup off the loop,
 * keylookup.c, with a copy of buf/len), 4 (too many lookups in flight).
 */
static struct guard_dev *
find(struct guard *g, struct rpc_req *r, const char *id, const void *buf,
    size_t len, int *dberr)
{
	double now = r->t0;
	struct guard_dev *d = lookup(g, id);
	struct store_authkey k;
	size_t ms;
	int rc;

	*dberr = 0;
	if (d != NULL || !g->shared)
		return d;	/* one process per SQLite store: a miss is final */
	ms = hash(id) & (GUARD_MISS_SLOTS - 1);
	if (strcmp(g->miss[ms].id, id) == 0 && now - g->miss[ms].t <
	    GUARD_MISS_S)
		return NULL;	/* asked the store a moment ago */
	if (r->looked_up)
		return NULL;	/* the lookup for r said: not enrolled */
	if (!ebucket(g, now)) {
		*dberr = 2;	/* too many unknown ids: no query */
		return NULL;
	}
	if (g->lk != NULL) {
		*dberr = keylookup_park(g->lk, r, id, buf, len) == 0 ? 3 : 4;
		return NULL;
	}
	if ((rc = store_authkey_get(g->st, id, &k)) != 0) {
		if (rc == -ENOENT) {
			snprintf(g->miss[ms].id, sizeof(g->miss[ms].id), "%s",
			    id);
			g->miss[ms].t = now;
		} else {
			log_warnx("AUTH: device %s: %s", id,
			    store_errmsg(g->st));
			*dberr = 1;
		}
		return NULL;
	}
	return cache(g, &k);
}

/* reread()'s answers. */
#define REREAD_NO	0	/* not asked now, or the same key */
#define REREAD_NEW	1	/* d now holds another key, from the store */
#define REREAD_PARKED	2	/* r waits for the answer off the loop */
#define REREAD_BUSY	3	/* too many lookups in flight: E_BUSY */

/*
 * Replicas: d's key may have been replaced through another replica
 * (auth.rekey, dcctl enroll --replace). Re-reads it, at most once per
 * GUARD_REREAD_S per device and within the unknown-id bucket, so forged
 * traffic cannot turn into a query per message; and not for a request
 * that was already parked for it.
 * With the lookup thread (keylookup.c) r is parked (with a copy of
 * buf/len) and admitted again once the answer is in (lookup_done);
 * without it the store is read here, on the loop.
 */
static int
reread(struct guard *g, struct guard_dev *d, struct rpc_req *r,
    const void *buf, size_t len)
{
	struct store_authkey k;

	if (!g->shared || r->looked_up || r->t0 - d->reread_t < GUARD_REREAD_S)
		return REREAD_NO;
	d->reread_t = r->t0;
	/* Forged traffic under many known ids: queries at the unknown-id
	 * rate at most (the cached key stands meanwhile). */
	if (!ebucket(g, r->t0))
		return REREAD_NO;
	if (g->lk != NULL) {
		if (keylookup_park(g->lk, r, d->id, buf, len) != 0)
			return REREAD_BUSY;
		memcpy(d->reread_pk, d->pk, 32);
		d->reread_pend = 1;
		return REREAD_PARKED;
	}
	if (store_authkey_get(g->st, d->id, &k) != 0 ||
	    memcmp(k.pk, d->pk, 32) == 0)
		return REREAD_NO;
	if (set_key(g, d, k.pk, k.counter) != 0)
		return REREAD_NO;
	log_info("AUTH: device=%s key replaced through another replica",
	    d->id);
	return REREAD_NEW;
}

/*
 * keylookup.c's done callback: caches the answer of a lookup (rc 0,
 * -ENOENT, -errno) and says how to answer the requests parked on it.
 * An unknown id: its key is cached, or the miss; a store error is
 * E_STORAGE. A known device (a re-read): a different stored key replaces
 * the cached one unless ours changed meanwhile (enrolled through us:
 * ours is newer); on a store error the cached key stands, and the
 * parked requests are checked against it.
 */
static int
lookup_done(void *arg, const char *id, int rc, const struct store_authkey *k,
    const char *err)
{
	struct guard *g = arg;
	struct guard_dev *d = lookup(g, id);
	size_t ms = hash(id) & (GUARD_MISS_SLOTS - 1);
	int pend = d != NULL && d->reread_pend;

	if (d != NULL)
		d->reread_pend = 0;
	if (rc == 0) {
		if (strcmp(k->device_id, id) != 0)
			return 0;
		if (d == NULL)
			cache(g, k);
		else if (pend && memcmp(d->pk, d->reread_pk, 32) == 0 &&
		    memcmp(d->pk, k->pk, 32) != 0 &&
		    set_key(g, d, k->pk, k->counter) == 0)
			log_info("AUTH: device=%s key replaced through "
			    "another replica", id);
		return 0;
	}
	if (rc == -ENOENT) {
		snprintf(g->miss[ms].id, sizeof(g->miss[ms].id), "%s", id);
		g->miss[ms].t = clock_now();
		return 0;
	}
	log_warnx("AUTH: device %s: %s", id, err);
	return d != NULL ? 0 : DCCL__ERROR_CODE__E_STORAGE;
}

/* keylookup.c's resume callback: r goes back to rpc.c, looked up. */
static void
lookup_resume(void *arg, void *req, const void *buf, size_t len, int code)
{
	struct guard *g = arg;
	struct rpc_req *r = req;

	r->looked_up = 1;
	g->resume(g->cd, r, buf, len, code);
}

/* Counters of keys[0..n) are in the store: clean, unless they moved. */
static void
flushed_mark(struct guard *g, const struct store_authkey *keys, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		struct guard_dev *d = lookup(g, keys[i].device_id);
		if (d != NULL && d->ctr == keys[i].counter &&
		    memcmp(d->pk, keys[i].pk, 32) == 0)
			d->dirty = 0;
	}
}

/* keylookup.c's flushed callback. */
static void
lookup_flushed(void *arg, int rc, const struct store_authkey *keys, size_t n,
    const char *err)
{
	struct guard *g = arg;

	if (rc == 0)
		flushed_mark(g, keys, n);
	else if (rc != -ECANCELED)	/* at shutdown guard_close writes */
		log_warnx("AUTH-DB: cannot save device counters: %s", err);
}

void
guard_lookup_start(struct cloudd *cd, guard_resume_fn *resume)
{
	struct guard *g = cd->guard;
	struct keylookup_cb cb = { lookup_done, lookup_resume, lookup_flushed,
	    NULL };

	/* Without the thread all this runs on the loop, as before. */
	if (g == NULL || !g->shared)
		return;
	g->cd = cd;
	g->resume = resume;
	cb.arg = g;
	(void)keylookup_start(&g->lk, &cd->loop, &cd->job, cd->cf.store,
	    cd->dbpath, (int)cd->cf.busy_ms, &cb);
}

void
guard_lookup_stop(struct cloudd *cd)
{
	if (cd->guard == NULL)
		return;
	keylookup_stop(cd->guard->lk);
	cd->guard->lk = NULL;
}

int
guard_open(struct guard **out, struct store *st, int shared,
    const char *token, int mode, char *err, size_t errlen)
{
	struct guard *g = xcalloc(1, sizeof(*g));
	struct store_authkey *keys = NULL;
	uint8_t pk[32], sk[32];
	size_t n = 0;
	int created = 0;

	*out = NULL;
	if (sodium_init() < 0) {
		snprintf(err, errlen, "libsodium failed to initialise");
		free(g);
		return -1;
	}
	g->st = st;
	g->shared = shared;
	g->mode = mode;
	g->cap = 64;
	g->tab = xcalloc(g->cap, sizeof(*g->tab));
	guard_limits(g, 100, 2000, 0);	/* the config's defaults */
	if (token != NULL && token[0] != '\0') {
		auth_token_key(token, &g->tok);
		g->have_tok = 1;
	}
	/*
	 * The cloud's key pair, one for every replica: ours is a candidate
	 * that only the first replica to get there stores.
	 */
	crypto_kx_keypair(pk, sk);
	if (store_cloud_key(st, pk, sk, g->cpk, g->csk, &created) != 0) {
		sodium_memzero(sk, sizeof(sk));
		goto fail;
	}
	sodium_memzero(sk, sizeof(sk));
	auth_announce_keypair(g->csk, g->spk, g->ssk);
	if (created)
		log_info("AUTH: new cloud key pair %02x%02x%02x%02x... stored",
		    g->cpk[0], g->cpk[1], g->cpk[2], g->cpk[3]);
	if (store_authkey_list(st, &keys, &n) != 0)
		goto fail;
	for (size_t i = 0; i < n; i++)
		cache(g, &keys[i]);
	sodium_memzero(keys, n * sizeof(*keys));
	free(keys);
	*out = g;
	return 0;
fail:
	snprintf(err, errlen, "store: %s", store_errmsg(st));
	guard_close(g);
	return -1;
}

int
guard_flush(struct guard *g)
{
	struct store_authkey *k;
	size_t n = 0;
	int rc;

	if (g == NULL)
		return 0;
	for (size_t i = 0; i < g->cap; i++)
		if (g->tab[i] != NULL && g->tab[i]->dirty)
			n++;
	if (n == 0)
		return 0;
	k = xcalloc(n, sizeof(*k));
	n = 0;
	for (size_t i = 0; i < g->cap; i++) {
		struct guard_dev *d = g->tab[i];
		if (d == NULL || !d->dirty)
			continue;
		snprintf(k[n].device_id, sizeof(k[n].device_id), "%s", d->id);
		memcpy(k[n].pk, d->pk, 32);
		k[n].counter = d->ctr;
		n++;
	}
	/*
	 * Replicas: off the loop (keylookup.c), one flush at a time; while
	 * one runs, these stay dirty for the next tick.
	 */
	if (g->lk != NULL) {
		if (keylookup_flush(g->lk, k, n) != 0)
			free(k);
		return 0;
	}
	/* A max-merge: a replica behind another never lowers a counter. */
	if ((rc = store_authkey_counters(g->st, k, n)) == 0)
		flushed_mark(g, k, n);
	free(k);
	return rc;
}

const char *
guard_errmsg(const struct guard *g)
{
	return g != NULL ? store_errmsg(g->st) : "";
}

void
guard_close(struct guard *g)
{
	if (g == NULL)
		return;
	if (guard_flush(g) != 0)
		log_warnx("AUTH-DB: counters not saved: %s",
		    store_errmsg(g->st));
	for (size_t i = 0; i < g->cap; i++)
		if (g->tab[i] != NULL) {
			free(g->tab[i]->reply);
			sodium_memzero(g->tab[i], sizeof(*g->tab[i]));
			free(g->tab[i]);
		}
	free(g->tab);
	sodium_memzero(g, sizeof(*g));
	free(g);
}

size_t
guard_count(const struct guard *g)
{
	return g ? g->n : 0;
}

/* Counter check: newer, or an exact resend (same counter, same MAC). */
static int
fresh(const struct guard_dev *d, const Dccl__Envelope *e)
{
	if (e->counter > d->ctr)
		return 1;
	return e->counter == d->ctr && e->counter != 0 &&
	    memcmp(d->tag, e->mac.data, sizeof(d->tag)) == 0;
}

/* 1 (and the reason in err) unless e's counter is fresh for d. */
static int
replayed(const struct guard_dev *d, const Dccl__Envelope *e, const char *what,
    char *err, size_t errlen)
{
	if (fresh(d, e))
		return 0;
	snprintf(err, errlen, "replayed %s (counter %llu <= %llu)", what,
	    (unsigned long long)e->counter, (unsigned long long)d->ctr);
	return 1;
}

static void
accept_ctr(struct guard_dev *d, const Dccl__Envelope *e)
{
	if (e->counter > d->ctr) {
		d->ctr = e->counter;
		d->dirty = 1;
	}
	memcpy(d->tag, e->mac.data, sizeof(d->tag));
}

/*
 * A RegisterReq. Either MACed with the enrollment-token key (enrolment
 * of a new key, or a known device registering again), or, from a device
 * without the token whose key was enrolled beforehand (dcctl enroll), with
 * the session key of the enrolled key: the device derives it from its own
 * key pair and the cloud key pinned in its key file. An unknown key without
 * a valid token MAC is refused.
 */
static int
admit_register(struct cloudd *cd, struct rpc_req *r, const void *buf,
    size_t len, char *err, size_t errlen)
{
	struct guard *g = cd->guard;
	Dccl__Envelope *e = r->env;
	const ProtobufCBinaryData *pk = &e->register_req->pubkey;
	const char *id = e->device_id;
	struct guard_dev *d;
	int dberr;

	if (!auth_has_mac(buf, len, e)) {
		snprintf(err, errlen, "RegisterReq must carry the "
		    "enrollment-token MAC, or be signed with a key enrolled "
		    "by dcctl enroll");
		return DCCL__ERROR_CODE__E_UNAUTHENTICATED;
	}
	d = find(g, r, id, buf, len, &dberr);
	if (dberr == 3)
		return GUARD_PARKED;
	if (dberr == 4) {
		snprintf(err, errlen, "%d device-key lookups in flight",
		    KEYLOOKUP_MAX);
		return DCCL__ERROR_CODE__E_BUSY;
	}
	if (dberr == 2 || (d == NULL && !ebucket(g, r->t0))) {
		snprintf(err, errlen, "more than %g enrolments/s "
		    "(limits.enroll-rate)", g->erate);
		return DCCL__ERROR_CODE__E_RATE_LIMITED;
	} else if (dberr) {
		snprintf(err, errlen, "cannot read device keys");
		return DCCL__ERROR_CODE__E_STORAGE;
	}
	/* A cached key other than the request's may be stale (replicas). */
	if (d != NULL && pk->len == 32 && memcmp(d->pk, pk->data, 32) != 0)
		switch (reread(g, d, r, buf, len)) {
		case REREAD_PARKED:
			return GUARD_PARKED;
		case REREAD_BUSY:
			snprintf(err, errlen, "%d device-key lookups in "
			    "flight", KEYLOOKUP_MAX);
			return DCCL__ERROR_CODE__E_BUSY;
		}
	if (g->have_tok && auth_verify(buf, len, e, &g->tok, AUTH_UP) == 0) {
		int same = d != NULL && pk->len == 32 &&
		    memcmp(d->pk, pk->data, 32) == 0;
		if (d != NULL && !same && !cd->cf.auth_rekey &&
		    pk->len == 32) {
			snprintf(err, errlen, "device %s is enrolled with "
			    "another key (auth.rekey is off)", id);
			return DCCL__ERROR_CODE__E_UNAUTHENTICATED;
		}
		/* A new key starts its own counters. */
		if (same && replayed(d, e, "RegisterReq", err, errlen))
			return DCCL__ERROR_CODE__E_UNAUTHENTICATED;
		/*
		 * Every device holds the token and every RegisterReq shows
		 * the device's public key, so for an enrolled key the token
		 * MAC proves nothing: such a request is answered but may
		 * change no state (guard_enroll, h_register).
		 */
		r->reg_token_only = same;
		r->reg_token = 1;
		r->seal.key = g->tok;
	} else {
		if (d == NULL || pk->len != 32 ||
		    memcmp(d->pk, pk->data, 32) != 0 ||
		    auth_verify(buf, len, e, &d->up, AUTH_UP) != 0) {
			if (g->have_tok)
				snprintf(err, errlen, "enrollment MAC check "
				    "failed (wrong token, or a key that is not "
				    "enrolled)");
			else
				snprintf(err, errlen, "device %s: key not "
				    "enrolled (no auth.token on the cloud: "
				    "enrol it with dcctl enroll)", id);
			return DCCL__ERROR_CODE__E_UNAUTHENTICATED;
		}
		if (replayed(d, e, "RegisterReq", err, errlen))
			return DCCL__ERROR_CODE__E_UNAUTHENTICATED;
		accept_ctr(d, e);
		r->seal.key = d->down;
	}
	r->seal.mode = AUTH_MAC;
	r->seal.dir = AUTH_DOWN;
	r->seal.counter = e->counter;
	if (d != NULL && !tbucket_take(&d->rl, cd->cf.rate, (double)cd->cf.burst, r->t0, 1)) {
		snprintf(err, errlen, "more than %g requests/s", cd->cf.rate);
		return DCCL__ERROR_CODE__E_RATE_LIMITED;
	}
	return 0;
}

int
guard_admit(struct cloudd *cd, struct rpc_req *r, const void *buf, size_t len,
    char *err, size_t errlen)
{
	struct guard *g = cd->guard;
	Dccl__Envelope *e = r->env;
	const char *id = e->device_id;
	struct guard_dev *d;
	int dberr, resend;

	memset(&r->seal, 0, sizeof(r->seal));
	if (g == NULL || g->mode == AUTH_OFF)
		return 0;
	if (e->body_case == DCCL__ENVELOPE__BODY_REGISTER_REQ)
		return admit_register(cd, r, buf, len, err, errlen);
	if (!auth_has_mac(buf, len, e)) {
		snprintf(err, errlen, "unsigned request");
		return DCCL__ERROR_CODE__E_UNAUTHENTICATED;
	}
	if ((d = find(g, r, id, buf, len, &dberr)) == NULL) {
		if (dberr == 3)
			return GUARD_PARKED;
		if (dberr == 4) {
			snprintf(err, errlen, "%d device-key lookups in "
			    "flight", KEYLOOKUP_MAX);
			return DCCL__ERROR_CODE__E_BUSY;
		}
		if (dberr == 2) {
			snprintf(err, errlen, "too many unknown device ids "
			    "(limits.enroll-rate)");
			return DCCL__ERROR_CODE__E_RATE_LIMITED;
		} else if (dberr) {
			snprintf(err, errlen, "cannot read device keys");
			return DCCL__ERROR_CODE__E_STORAGE;
		}
		/* Signed by a key we do not know: the device re-enrolls. */
		snprintf(err, errlen, "device %s is not enrolled", id);
		return DCCL__ERROR_CODE__E_NOT_REGISTERED;
	}
	if (auth_verify(buf, len, e, &d->up, AUTH_UP) != 0) {
		int rr = reread(g, d, r, buf, len);
		if (rr == REREAD_PARKED)
			return GUARD_PARKED;
		if (rr == REREAD_BUSY) {
			snprintf(err, errlen, "%d device-key lookups in "
			    "flight", KEYLOOKUP_MAX);
			return DCCL__ERROR_CODE__E_BUSY;
		}
		if (rr != REREAD_NEW ||
		    auth_verify(buf, len, e, &d->up, AUTH_UP) != 0) {
			snprintf(err, errlen, "MAC check failed (forged, or "
			    "signed with another device's key)");
			return DCCL__ERROR_CODE__E_UNAUTHENTICATED;
		}
	}
	if (replayed(d, e, "request", err, errlen))
		return DCCL__ERROR_CODE__E_UNAUTHENTICATED;
	/* fresh() passed: the same counter means the same MAC. */
	resend = e->counter == d->ctr;
	accept_ctr(d, e);
	if (!resend) {
		d->reply_state = REPLY_PENDING;
		d->reply_dropped = 0;
	}
	/* Every reply to it from here on is kept for an exact resend. */
	r->gauth = d;
	/* From here on the device is authenticated: seal what goes back. */
	r->seal.mode = e->sealed.len > 0 ? AUTH_ENCRYPT : AUTH_MAC;
	r->seal.dir = AUTH_DOWN;
	r->seal.counter = e->counter;
	r->seal.key = d->down;
	if (g->mode == AUTH_ENCRYPT && e->sealed.len == 0) {
		snprintf(err, errlen, "auth.mode is encrypt: the body must "
		    "be sealed");
		return DCCL__ERROR_CODE__E_UNAUTHENTICATED;
	}
	if (auth_unseal(e, &d->up, AUTH_UP) != 0) {
		snprintf(err, errlen, "sealed body does not decrypt to a "
		    "request");
		return DCCL__ERROR_CODE__E_BAD_REQUEST;
	}
	r->body = e->body_case;
	if (!tbucket_take(&d->rl, cd->cf.rate, (double)cd->cf.burst, r->t0, 1)) {
		snprintf(err, errlen, "more than %g requests/s", cd->cf.rate);
		return DCCL__ERROR_CODE__E_RATE_LIMITED;
	}
	/*
	 * An exact resend is never executed again: rpc.c answers it with
	 * the first reply's bytes, or refuses it (guard_cached_reply).
	 */
	if (resend) {
		r->resend = 1;
		return 0;
	}
	if (e->body_case == DCCL__ENVELOPE__BODY_RETRIEVE) {
		if (d->inflight >= (uint32_t)cd->cf.dev_inflight) {
			snprintf(err, errlen, "%u requests of this device in "
			    "flight", d->inflight);
			return DCCL__ERROR_CODE__E_BUSY;
		}
		d->inflight++;
		r->gdev = d;
	}
	return 0;
}

void
guard_keep_reply(struct rpc_req *r, const void *msg, size_t len)
{
	struct guard *g = r->cd->guard;
	struct guard_dev *d = r->gauth;

	if (g == NULL || d == NULL || r->resend || r->env == NULL ||
	    r->env->counter != d->ctr)
		return;		/* not the device's latest request */
	g->reply_bytes -= d->reply_len;
	free(d->reply);
	d->reply = NULL;
	d->reply_len = 0;
	d->reply_ctr = d->ctr;
	if (len > GUARD_REPLY_MAX || g->reply_bytes + len > GUARD_REPLY_TOTAL) {
		d->reply_state = REPLY_DROPPED;	/* a resend is refused */
		d->reply_dropped = len;
		return;
	}
	d->reply = xmalloc(len);
	memcpy(d->reply, msg, len);
	d->reply_len = len;
	d->reply_state = REPLY_KEPT;
	g->reply_bytes += len;
}

int
guard_cached_reply(struct rpc_req *r, void **msg, size_t *len, char *err,
    size_t errlen)
{
	struct guard_dev *d = r->gauth;
	unsigned long long c = r->env != NULL ? r->env->counter : 0;
	void *m;

	if (d == NULL || d->reply_ctr != c || d->reply_state == REPLY_PENDING) {
		/* The first is still being served: a second copy would
		 * double its cost (a chunk, a search) for nothing. */
		snprintf(err, errlen, "exact resend of request %llu (counter "
		    "%llu) while it is being served", r->env != NULL ?
		    (unsigned long long)r->env->request_id : 0ULL, c);
		return DCCL__ERROR_CODE__E_BUSY;
	}
	if (d->reply_state == REPLY_DROPPED || d->reply == NULL) {
		snprintf(err, errlen, "replayed request (counter %llu): its "
		    "reply (%zu bytes) is not kept; a resend needs a new "
		    "counter", c, d->reply_dropped);
		return DCCL__ERROR_CODE__E_UNAUTHENTICATED;
	}
	if ((m = nn_allocmsg(d->reply_len, 0)) == NULL) {
		snprintf(err, errlen, "out of message memory");
		return DCCL__ERROR_CODE__E_INTERNAL;
	}
	memcpy(m, d->reply, d->reply_len);
	*msg = m;
	*len = d->reply_len;
	return 0;
}

void
guard_release(struct rpc_req *r)
{
	if (r->gdev != NULL && r->gdev->inflight > 0)
		r->gdev->inflight--;
	r->gdev = NULL;
}

/*
 * Commits id's key pk (store_authkey_put, counter ctr) and caches it.
 * Returns 0 with *how, or an error code with a message; with -EEXIST from
 * the store (another key, replace off) the code is refused_code.
 */
static int
enroll_key(struct guard *g, const char *id, const uint8_t pk[32],
    uint64_t ctr, int replace, int refused_code, int *how, char *err,
    size_t errlen)
{
	struct store_authkey k;
	struct guard_dev *d, tmp;
	int rc;

	memset(&tmp, 0, sizeof(tmp));
	if (lookup(g, id) == NULL && g->max_devices > 0 &&
	    g->n >= g->max_devices) {
		snprintf(err, errlen, "%zu devices enrolled "
		    "(limits.max-devices)", g->n);
		return DCCL__ERROR_CODE__E_BUSY;
	}
	if (set_key(g, &tmp, pk, 0) != 0) {
		snprintf(err, errlen, "public key refused (not a usable "
		    "X25519 key)");
		return DCCL__ERROR_CODE__E_BAD_REQUEST;
	}
	sodium_memzero(&tmp, sizeof(tmp));
	memset(&k, 0, sizeof(k));
	snprintf(k.device_id, sizeof(k.device_id), "%s", id);
	memcpy(k.pk, pk, 32);
	k.counter = ctr;
	k.enrolled = (int64_t)time(NULL);
	if ((rc = store_authkey_put(g->st, &k, replace, how)) == -EEXIST) {
		snprintf(err, errlen, "device %s is enrolled with another key",
		    id);
		return refused_code;
	} else if (rc != 0) {
		snprintf(err, errlen, "store: %s", store_errmsg(g->st));
		return DCCL__ERROR_CODE__E_STORAGE;
	}
	if ((d = lookup(g, id)) == NULL)
		d = insert(g, id);
	if (memcmp(d->pk, pk, 32) != 0 || *how != STORE_AUTHKEY_SAME)
		set_key(g, d, pk, ctr);		/* a new key: new counters */
	else if (ctr > d->ctr)
		d->ctr = ctr;
	return 0;
}

int
guard_enroll(struct cloudd *cd, struct rpc_req *r, Dccl__Registered *rg,
    char *err, size_t errlen)
{
	struct guard *g = cd->guard;
	const Dccl__RegisterReq *q = r->env->register_req;
	struct guard_dev *d;
	int how, code;

	if (g == NULL || g->mode == AUTH_OFF)
		return 0;
	/* Only a request that proved the key may move its counter. */
	if ((code = enroll_key(g, r->env->device_id, q->pubkey.data,
	    r->reg_token_only ? 0 : r->env->counter, cd->cf.auth_rekey,
	    DCCL__ERROR_CODE__E_UNAUTHENTICATED, &how, err, errlen)) != 0) {
		if (code == DCCL__ERROR_CODE__E_UNAUTHENTICATED)
			snprintf(err, errlen, "device %s is enrolled with "
			    "another key (auth.rekey is off)",
			    r->env->device_id);
		return code;
	}
	d = lookup(g, r->env->device_id);
	if (!r->reg_token_only)
		memcpy(d->tag, r->env->mac.data, sizeof(d->tag));
	if (how != STORE_AUTHKEY_SAME)
		log_info("AUTH-ENROLL: device=%s key %02x%02x%02x%02x...%s",
		    d->id, d->pk[0], d->pk[1], d->pk[2], d->pk[3],
		    how == STORE_AUTHKEY_REPLACED ? " (replaced)" : "");
	rg->cloud_pubkey.data = g->cpk;
	rg->cloud_pubkey.len = 32;
	rg->auth_mode = (uint32_t)g->mode;
	/* Under the session key: a token holder cannot forge it. */
	auth_announce_key_mac(g->akmac, &d->down, g->spk);
	rg->announce_key.data = g->spk;
	rg->announce_key.len = 32;
	rg->announce_key_mac.data = g->akmac;
	rg->announce_key_mac.len = 32;
	return 0;
}

void
guard_sign_announce(const struct guard *g, Dccl__ModelAnnounce *a,
    uint8_t sig[64])
{
	if (g != NULL && g->mode != AUTH_OFF)
		auth_announce_sign(g->ssk, a, sig);
}

int
guard_admin_enroll(struct cloudd *cd, const Dccl__AdminEnrollReq *q,
    Dccl__Enrolled *en, char *err, size_t errlen)
{
	struct guard *g = cd->guard;
	int how, code;

	if (g == NULL || g->mode == AUTH_OFF) {
		snprintf(err, errlen, "auth.mode is off: there is nothing to "
		    "enrol a key for");
		return DCCL__ERROR_CODE__E_FORBIDDEN;
	}
	if (q->device_id == NULL || !wire_devid_valid(q->device_id)) {
		snprintf(err, errlen, "device id must be 1-64 characters of "
		    "[A-Za-z0-9._-]");
		return DCCL__ERROR_CODE__E_BAD_REQUEST;
	}
	if (q->pubkey.len != 32) {
		snprintf(err, errlen, "public key must be 32 bytes (got %zu)",
		    q->pubkey.len);
		return DCCL__ERROR_CODE__E_BAD_REQUEST;
	}
	/* Counters start at 0: the key file dcctl writes starts there. */
	if ((code = enroll_key(g, q->device_id, q->pubkey.data, 0,
	    q->replace, DCCL__ERROR_CODE__E_FORBIDDEN, &how, err,
	    errlen)) != 0) {
		if (code == DCCL__ERROR_CODE__E_FORBIDDEN)
			snprintf(err, errlen, "device %s is already enrolled "
			    "with another key (dcctl enroll --replace replaces "
			    "it)", q->device_id);
		return code;
	}
	log_info("AUTH-ENROLL: device=%s key %02x%02x%02x%02x... by dcctl%s",
	    q->device_id, q->pubkey.data[0], q->pubkey.data[1],
	    q->pubkey.data[2], q->pubkey.data[3],
	    how == STORE_AUTHKEY_REPLACED ? " (replaced)" :
	    how == STORE_AUTHKEY_SAME ? " (already enrolled)" : "");
	en->cloud_pubkey.data = g->cpk;
	en->cloud_pubkey.len = 32;
	en->auth_mode = (uint32_t)g->mode;
	en->replaced = how == STORE_AUTHKEY_REPLACED;
	en->existed = how == STORE_AUTHKEY_SAME;
	return 0;
}

void
guard_worker_nice(void)
{
	static _Thread_local int done;

	if (!done) {
		done = 1;
		/* Per thread on Linux: only this worker is lowered. */
		(void)setpriority(PRIO_PROCESS, (id_t)syscall(SYS_gettid),
		    GUARD_NICE);
	}
}

/* --- startup ---------------------------------------------------------- */

static void
under(char *out, size_t n, const char *dir, const char *path)
{
	if (path[0] == '/')
		snprintf(out, n, "%s", path);
	else
		snprintf(out, n, "%s/%s", dir, path);
}

/*
 * Keys of a cloudd from before schema 4 lived in its own auth.db. Moves
 * them into the store once: the cloud key if the store has none yet (so
 * devices that pinned it keep working), each device key unless the store
 * already has another for that id, counters max-merged. Then the file is
 * renamed to <path>.imported, so the store is the only source of truth and
 * a later start does not import it again. 0 (also when there is no file)
 * or -1 with err.
 */
static int
legacy_import(struct store *st, const char *path, char *err, size_t errlen)
{
	char dst[1300];
	sqlite3 *db = NULL;
	sqlite3_stmt *s = NULL;
	size_t n = 0, skipped = 0;
	int r, created = 0, had_key = 0;

	if (access(path, F_OK) != 0)
		return 0;
	if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE, NULL) !=
	    SQLITE_OK)
		goto fail;
	sqlite3_busy_timeout(db, 2000);
	/* A file without the tables (never used) has nothing to move. */
	if (sqlite3_prepare_v2(db, "SELECT pk, sk FROM cloud_key", -1, &s,
	    NULL) == SQLITE_OK) {
		if ((r = sqlite3_step(s)) == SQLITE_ROW &&
		    sqlite3_column_bytes(s, 0) == 32 &&
		    sqlite3_column_bytes(s, 1) == 32) {
			uint8_t pk[32], sk[32];
			had_key = 1;
			if (store_cloud_key(st, sqlite3_column_blob(s, 0),
			    sqlite3_column_blob(s, 1), pk, sk, &created) != 0)
				goto fail_store;
			if (!created && memcmp(pk, sqlite3_column_blob(s, 0),
			    32) != 0)
				log_warnx("AUTH: %s: its cloud key differs from "
				    "the store's; devices that pinned it will "
				    "enrol again", path);
			sodium_memzero(sk, sizeof(sk));
		} else if (r != SQLITE_DONE)
			goto fail;
	}
	sqlite3_finalize(s);
	s = NULL;
	if (sqlite3_prepare_v2(db, "SELECT device_id, pk, counter, enrolled "
	    "FROM device_keys", -1, &s, NULL) == SQLITE_OK) {
		while ((r = sqlite3_step(s)) == SQLITE_ROW) {
			const char *id = (const char *)sqlite3_column_text(s,
			    0);
			struct store_authkey k;
			int how, rc;
			if (id == NULL || !wire_devid_valid(id) ||
			    sqlite3_column_bytes(s, 1) != 32) {
				skipped++;
				continue;
			}
			memset(&k, 0, sizeof(k));
			snprintf(k.device_id, sizeof(k.device_id), "%s", id);
			memcpy(k.pk, sqlite3_column_blob(s, 1), 32);
			k.counter = (uint64_t)sqlite3_column_int64(s, 2);
			k.enrolled = sqlite3_column_int64(s, 3);
			if ((rc = store_authkey_put(st, &k, 0, &how)) ==
			    -EEXIST) {
				log_warnx("AUTH: %s: device %s has another key "
				    "in the store; the store's is kept", path,
				    id);
				skipped++;
			} else if (rc != 0)
				goto fail_store;
			else
				n++;
		}
		if (r != SQLITE_DONE)
			goto fail;
	}
	sqlite3_finalize(s);
	sqlite3_close(db);	/* checkpoints its WAL into the file */
	snprintf(dst, sizeof(dst), "%s.imported", path);
	if (rename(path, dst) != 0) {
		snprintf(err, errlen, "%s: rename: %s", path, strerror(errno));
		return -1;
	}
	log_info("AUTH: moved %s%zu device key(s) from %s into the store "
	    "(%zu skipped); the file is now %s", had_key ? "the cloud key "
	    "and " : "", n, path, skipped, dst);
	return 0;
fail_store:
	snprintf(err, errlen, "importing %s: store: %s", path,
	    store_errmsg(st));
	sqlite3_finalize(s);
	sqlite3_close(db);
	return -1;
fail:
	snprintf(err, errlen, "importing %s: %s", path, db ?
	    sqlite3_errmsg(db) : "cannot open");
	sqlite3_finalize(s);
	sqlite3_close(db);
	return -1;
}

int
guard_start(struct cloudd *cd, char *err, size_t errlen)
{
	const struct cloudd_conf *cf = &cd->cf;
	char tok[256], path[1200];
	const char *env = getenv("DCCL_AUTH_TOKEN");
	int rc;

	cd->guard = NULL;
	if (cf->auth_mode == AUTH_OFF) {
		log_warnx("AUTH: auth.mode is off: requests are not "
		    "authenticated");
		return 0;
	}
	tok[0] = '\0';
	if (cf->auth_token[0] != '\0')
		snprintf(tok, sizeof(tok), "%s", cf->auth_token);
	else if (env != NULL && env[0] != '\0')
		snprintf(tok, sizeof(tok), "%s", env);
	else if (cf->auth_token_file[0] != '\0') {
		under(path, sizeof(path), cf->data_dir, cf->auth_token_file);
		if ((rc = auth_read_token(path, tok, sizeof(tok))) == -ENOENT) {
			FILE *f;
			int fd;
			auth_new_token(tok, 24);
			fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0600);
			if (fd < 0 || (f = fdopen(fd, "w")) == NULL) {
				snprintf(err, errlen, "%s: %s", path,
				    strerror(errno));
				return -1;
			}
			fprintf(f, "%s\n", tok);
			if (fclose(f) != 0) {
				snprintf(err, errlen, "%s: %s", path,
				    strerror(errno));
				return -1;
			}
			log_info("AUTH: new enrollment token in %s", path);
		} else if (rc != 0) {
			snprintf(err, errlen, "%s: %s", path, strerror(-rc));
			return -1;
		}
	}
	if (tok[0] == '\0')
		log_warnx("AUTH: no enrollment token: only keys enrolled with "
		    "dcctl enroll can register");
	if (cf->auth_db[0] != '\0') {
		under(path, sizeof(path), cf->data_dir, cf->auth_db);
		if (legacy_import(cd->st, path, err, errlen) != 0)
			return -1;
	}
	/* PostgreSQL: other replicas enrol too, so a miss asks the store. */
	if (guard_open(&cd->guard, cd->st, strcmp(store_backend(cd->st),
	    "postgresql") == 0, tok, cf->auth_mode, err, errlen) != 0)
		return -1;
	sodium_memzero(tok, sizeof(tok));
	guard_limits(cd->guard, cf->enroll_rate, (double)cf->enroll_burst,
	    (size_t)cf->max_devices);
	log_info("AUTH: mode %s, %zu enrolled device(s)", cf->auth_mode ==
	    AUTH_ENCRYPT ? "encrypt" : "mac", guard_count(cd->guard));
	return 0;
}
