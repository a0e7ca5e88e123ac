/*
 * guard: see guard.h. The device table is an open-addressing hash of
 * heap-allocated entries (stable pointers: a request holds its device's
 * entry while in the threadpool). Entries exist only for enrolled devices
 * (loaded from auth.db at start, added on Register), so unauthenticated
 * traffic cannot grow memory. Counters are persisted lazily (cron, and at
 * close): after a crash a device's counter may be up to one cron period
 * behind in the database, so a request from that last period could be
 * replayed once; every state-changing request is idempotent by request id
 * (uploads) or by content (Register), which is why that window is
 * acceptable. Enrolment itself is committed before Registered is sent.
 */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
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
#include "cloudd/rpc.h"
#include "shared/log.h"
#include "shared/wire.h"
#include "shared/xmalloc.h"

struct guard_dev {
	char		 id[WIRE_DEVID_MAX + 1];
	uint8_t		 pk[32];
	struct auth_key	 up, down;
	uint64_t	 ctr;		/* last accepted counter */
	uint8_t		 tag[16];	/* its MAC prefix: exact resends */
	int		 dirty;		/* ctr not yet in auth.db */
	double		 tokens, t;	/* rate-limit bucket */
	uint32_t	 inflight;	/* heavy requests held */
};

struct guard {
	sqlite3			*db;
	sqlite3_stmt		*put, *upd;
	uint8_t			 cpk[32], csk[32];
	struct auth_key		 tok;
	int			 have_tok;
	int			 mode;
	struct guard_dev	**tab;
	size_t			 cap, n;
};

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
		(*s)->tokens = -1;	/* full on first use */
		g->n++;
	}
	return *s;
}

static int
set_key(struct guard *g, struct guard_dev *d, const uint8_t pk[32])
{
	memcpy(d->pk, pk, 32);
	return auth_session_cloud(&d->up, &d->down, g->cpk, g->csk, pk);
}

int
guard_open(struct guard **out, const char *path, const char *token, int mode,
    char *err, size_t errlen)
{
	struct guard *g = xcalloc(1, sizeof(*g));
	sqlite3_stmt *st = NULL;
	int rc;

	*out = NULL;
	if (sodium_init() < 0) {
		snprintf(err, errlen, "libsodium failed to initialise");
		free(g);
		return -1;
	}
	g->mode = mode;
	g->cap = 64;
	g->tab = xcalloc(g->cap, sizeof(*g->tab));
	if (token != NULL && token[0] != '\0') {
		auth_token_key(token, &g->tok);
		g->have_tok = 1;
	}
	if (sqlite3_open_v2(path, &g->db, SQLITE_OPEN_READWRITE |
	    SQLITE_OPEN_CREATE, NULL) != SQLITE_OK)
		goto fail;
	sqlite3_busy_timeout(g->db, 2000);
	if (sqlite3_exec(g->db, "PRAGMA journal_mode=WAL;"
	    "PRAGMA synchronous=NORMAL;"
	    "CREATE TABLE IF NOT EXISTS cloud_key(id INTEGER PRIMARY KEY "
	    "  CHECK (id = 1), pk BLOB NOT NULL, sk BLOB NOT NULL);"
	    "CREATE TABLE IF NOT EXISTS device_keys(device_id TEXT PRIMARY KEY,"
	    "  pk BLOB NOT NULL, counter INTEGER NOT NULL,"
	    "  enrolled INTEGER NOT NULL);", NULL, NULL, NULL) != SQLITE_OK)
		goto fail;
	/* The cloud's key pair: made once, kept across restarts. */
	if (sqlite3_prepare_v2(g->db, "SELECT pk, sk FROM cloud_key", -1, &st,
	    NULL) != SQLITE_OK)
		goto fail;
	if ((rc = sqlite3_step(st)) == SQLITE_ROW &&
	    sqlite3_column_bytes(st, 0) == 32 &&
	    sqlite3_column_bytes(st, 1) == 32) {
		memcpy(g->cpk, sqlite3_column_blob(st, 0), 32);
		memcpy(g->csk, sqlite3_column_blob(st, 1), 32);
	} else if (rc == SQLITE_DONE) {
		sqlite3_finalize(st);
		st = NULL;
		crypto_kx_keypair(g->cpk, g->csk);
		if (sqlite3_prepare_v2(g->db, "INSERT INTO cloud_key VALUES "
		    "(1, ?, ?)", -1, &st, NULL) != SQLITE_OK)
			goto fail;
		sqlite3_bind_blob(st, 1, g->cpk, 32, SQLITE_STATIC);
		sqlite3_bind_blob(st, 2, g->csk, 32, SQLITE_STATIC);
		if (sqlite3_step(st) != SQLITE_DONE)
			goto fail;
	} else
		goto fail;
	sqlite3_finalize(st);
	st = NULL;
	if (sqlite3_prepare_v2(g->db, "SELECT device_id, pk, counter FROM "
	    "device_keys", -1, &st, NULL) != SQLITE_OK)
		goto fail;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		const char *id = (const char *)sqlite3_column_text(st, 0);
		struct guard_dev *d;
		if (id == NULL || !wire_devid_valid(id) ||
		    sqlite3_column_bytes(st, 1) != 32)
			continue;
		d = insert(g, id);
		set_key(g, d, sqlite3_column_blob(st, 1));
		d->ctr = (uint64_t)sqlite3_column_int64(st, 2);
	}
	if (rc != SQLITE_DONE)
		goto fail;
	sqlite3_finalize(st);
	st = NULL;
	if (sqlite3_prepare_v2(g->db, "INSERT INTO device_keys(device_id, pk, "
	    "counter, enrolled) VALUES (?, ?, ?, ?) ON CONFLICT(device_id) DO "
	    "UPDATE SET pk = excluded.pk, counter = excluded.counter, "
	    "enrolled = excluded.enrolled", -1, &g->put, NULL) != SQLITE_OK ||
	    sqlite3_prepare_v2(g->db, "UPDATE device_keys SET counter = ? "
	    "WHERE device_id = ? AND counter < ?1", -1, &g->upd, NULL) !=
	    SQLITE_OK)
		goto fail;
	*out = g;
	return 0;
fail:
	snprintf(err, errlen, "%s: %s", path, g->db ? sqlite3_errmsg(g->db) :
	    "cannot open");
	sqlite3_finalize(st);
	guard_close(g);
	return -1;
}

int
guard_flush(struct guard *g)
{
	int rc = 0;

	if (g == NULL || g->db == NULL)
		return 0;
	if (sqlite3_exec(g->db, "BEGIN", NULL, NULL, NULL) != SQLITE_OK)
		return -EIO;
	for (size_t i = 0; i < g->cap && rc == 0; i++) {
		struct guard_dev *d = g->tab[i];
		if (d == NULL || !d->dirty)
			continue;
		sqlite3_reset(g->upd);
		sqlite3_bind_int64(g->upd, 1, (sqlite3_int64)d->ctr);
		sqlite3_bind_text(g->upd, 2, d->id, -1, SQLITE_STATIC);
		if (sqlite3_step(g->upd) != SQLITE_DONE)
			rc = -EIO;
	}
	if (rc == 0 && sqlite3_exec(g->db, "COMMIT", NULL, NULL, NULL) ==
	    SQLITE_OK) {
		for (size_t i = 0; i < g->cap; i++)
			if (g->tab[i] != NULL)
				g->tab[i]->dirty = 0;
		return 0;
	}
	sqlite3_exec(g->db, "ROLLBACK", NULL, NULL, NULL);
	return -EIO;
}

void
guard_close(struct guard *g)
{
	if (g == NULL)
		return;
	if (g->upd != NULL && guard_flush(g) != 0)
		log_warnx("AUTH-DB: counters not saved: %s",
		    sqlite3_errmsg(g->db));
	sqlite3_finalize(g->put);
	sqlite3_finalize(g->upd);
	if (g->db != NULL)
		sqlite3_close(g->db);
	for (size_t i = 0; i < g->cap; i++)
		if (g->tab[i] != NULL) {
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

/* Token bucket: rate per second, burst deep. 1 when admitted. */
static int
bucket(struct guard_dev *d, double rate, double burst, double now)
{
	if (rate <= 0)
		return 1;
	if (d->tokens < 0) {
		d->tokens = burst;
		d->t = now;
	}
	d->tokens += (now - d->t) * rate;
	if (d->tokens > burst)
		d->tokens = burst;
	d->t = now;
	if (d->tokens < 1)
		return 0;
	d->tokens -= 1;
	return 1;
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

static void
accept_ctr(struct guard_dev *d, const Dccl__Envelope *e)
{
	if (e->counter > d->ctr) {
		d->ctr = e->counter;
		d->dirty = 1;
	}
	memcpy(d->tag, e->mac.data, sizeof(d->tag));
}

int
guard_admit(struct cloudd *cd, struct rpc_req *r, const void *buf, size_t len,
    char *err, size_t errlen)
{
	struct guard *g = cd->guard;
	Dccl__Envelope *e = r->env;
	const char *id = e->device_id;
	struct guard_dev *d;

	memset(&r->seal, 0, sizeof(r->seal));
	if (g == NULL || g->mode == AUTH_OFF)
		return 0;
	d = lookup(g, id);
	if (e->body_case == DCCL__ENVELOPE__BODY_REGISTER_REQ) {
		if (!g->have_tok) {
			snprintf(err, errlen, "enrollment is closed (no "
			    "auth.token on the cloud)");
			return DCCL__ERROR_CODE__E_UNAUTHENTICATED;
		}
		if (!auth_has_mac(buf, len, e)) {
			snprintf(err, errlen, "RegisterReq must carry the "
			    "enrollment-token MAC");
			return DCCL__ERROR_CODE__E_UNAUTHENTICATED;
		}
		if (auth_verify(buf, len, e, &g->tok, AUTH_UP) != 0) {
			snprintf(err, errlen, "enrollment MAC check failed "
			    "(wrong token?)");
			return DCCL__ERROR_CODE__E_UNAUTHENTICATED;
		}
		if (d != NULL && !cd->cf.auth_rekey &&
		    e->register_req->pubkey.len == 32 &&
		    memcmp(d->pk, e->register_req->pubkey.data, 32) != 0) {
			snprintf(err, errlen, "device %s is enrolled with "
			    "another key (auth.rekey is off)", id);
			return DCCL__ERROR_CODE__E_UNAUTHENTICATED;
		}
		if (d != NULL && !fresh(d, e)) {
			snprintf(err, errlen, "replayed RegisterReq (counter "
			    "%llu <= %llu)", (unsigned long long)e->counter,
			    (unsigned long long)d->ctr);
			return DCCL__ERROR_CODE__E_UNAUTHENTICATED;
		}
		r->seal.mode = AUTH_MAC;
		r->seal.dir = AUTH_DOWN;
		r->seal.counter = e->counter;
		r->seal.key = g->tok;
		if (d != NULL && !bucket(d, cd->cf.rate, (double)cd->cf.burst,
		    r->t0)) {
			snprintf(err, errlen, "more than %g requests/s",
			    cd->cf.rate);
			return DCCL__ERROR_CODE__E_RATE_LIMITED;
		}
		return 0;
	}
	if (!auth_has_mac(buf, len, e)) {
		snprintf(err, errlen, "unsigned request");
		return DCCL__ERROR_CODE__E_UNAUTHENTICATED;
	}
	if (d == NULL) {
		/* Signed by a key we do not know: the device re-enrolls. */
		snprintf(err, errlen, "device %s is not enrolled", id);
		return DCCL__ERROR_CODE__E_NOT_REGISTERED;
	}
	if (auth_verify(buf, len, e, &d->up, AUTH_UP) != 0) {
		snprintf(err, errlen, "MAC check failed (forged, or signed "
		    "with another device's key)");
		return DCCL__ERROR_CODE__E_UNAUTHENTICATED;
	}
	if (!fresh(d, e)) {
		snprintf(err, errlen, "replayed request (counter %llu <= "
		    "%llu)", (unsigned long long)e->counter,
		    (unsigned long long)d->ctr);
		return DCCL__ERROR_CODE__E_UNAUTHENTICATED;
	}
	accept_ctr(d, e);
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
	if (!bucket(d, cd->cf.rate, (double)cd->cf.burst, r->t0)) {
		snprintf(err, errlen, "more than %g requests/s", cd->cf.rate);
		return DCCL__ERROR_CODE__E_RATE_LIMITED;
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
guard_release(struct rpc_req *r)
{
	if (r->gdev != NULL && r->gdev->inflight > 0)
		r->gdev->inflight--;
	r->gdev = NULL;
}

int
guard_enroll(struct cloudd *cd, struct rpc_req *r, Dccl__Registered *rg,
    char *err, size_t errlen)
{
	struct guard *g = cd->guard;
	const Dccl__RegisterReq *q = r->env->register_req;
	struct guard_dev *d;
	int isnew;

	if (g == NULL || g->mode == AUTH_OFF)
		return 0;
	d = lookup(g, r->env->device_id);
	if (d != NULL && memcmp(d->pk, q->pubkey.data, 32) != 0 &&
	    !cd->cf.auth_rekey) {
		snprintf(err, errlen, "device %s is enrolled with another key "
		    "(auth.rekey is off)", r->env->device_id);
		return DCCL__ERROR_CODE__E_UNAUTHENTICATED;
	}
	isnew = d == NULL || memcmp(d->pk, q->pubkey.data, 32) != 0;
	sqlite3_reset(g->put);
	sqlite3_bind_text(g->put, 1, r->env->device_id, -1, SQLITE_STATIC);
	sqlite3_bind_blob(g->put, 2, q->pubkey.data, 32, SQLITE_STATIC);
	sqlite3_bind_int64(g->put, 3, (sqlite3_int64)r->env->counter);
	sqlite3_bind_int64(g->put, 4, (sqlite3_int64)time(NULL));
	if (sqlite3_step(g->put) != SQLITE_DONE) {
		snprintf(err, errlen, "auth.db: %s", sqlite3_errmsg(g->db));
		sqlite3_reset(g->put);
		return DCCL__ERROR_CODE__E_STORAGE;
	}
	sqlite3_reset(g->put);
	if (d == NULL)
		d = insert(g, r->env->device_id);
	if (set_key(g, d, q->pubkey.data) != 0) {
		snprintf(err, errlen, "public key refused");
		return DCCL__ERROR_CODE__E_BAD_REQUEST;
	}
	d->ctr = r->env->counter;
	memcpy(d->tag, r->env->mac.data, sizeof(d->tag));
	d->dirty = 0;
	if (isnew)
		log_info("AUTH-ENROLL: device=%s key %02x%02x%02x%02x...",
		    d->id, d->pk[0], d->pk[1], d->pk[2], d->pk[3]);
	rg->cloud_pubkey.data = g->cpk;
	rg->cloud_pubkey.len = 32;
	rg->auth_mode = (uint32_t)g->mode;
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

/* --- pure validation -------------------------------------------------- */

static int
name_ok(const char *s)
{
	size_t n = s ? strlen(s) : 0;

	if (n == 0 || n > 64)
		return 0;
	for (size_t i = 0; i < n; i++)
		if (s[i] < 0x21 || s[i] > 0x7e)
			return 0;
	return 1;
}

double
guard_patch_norm(const Dccl__UploadPatch *q)
{
	double s = 0;

	for (size_t i = 0; i < q->n_tensors; i++)
		for (size_t j = 0; j < q->tensors[i]->n_data; j++)
			s += (double)q->tensors[i]->data[j] *
			    q->tensors[i]->data[j];
	return sqrt(s);
}

int
guard_upload_check(Dccl__UploadPatch *q, double max_norm, int clip,
    int *clipped, char *err, size_t errlen)
{
	double norm;

	*clipped = 0;
	if (q->n_metrics > 32) {
		snprintf(err, errlen, "at most 32 metrics, got %zu",
		    q->n_metrics);
		return DCCL__ERROR_CODE__E_BAD_REQUEST;
	}
	for (size_t i = 0; i < q->n_metrics; i++) {
		if (!name_ok(q->metrics[i]->name)) {
			snprintf(err, errlen, "metric %zu: bad name", i);
			return DCCL__ERROR_CODE__E_BAD_REQUEST;
		}
		if (!isfinite(q->metrics[i]->value)) {
			snprintf(err, errlen, "metric %s is not finite",
			    q->metrics[i]->name);
			return DCCL__ERROR_CODE__E_BAD_REQUEST;
		}
	}
	if (q->kind != NULL && strlen(q->kind) > 23) {
		snprintf(err, errlen, "patch kind too long");
		return DCCL__ERROR_CODE__E_BAD_REQUEST;
	}
	for (size_t i = 0; i < q->n_tensors; i++)
		if (!wire_floats_finite(q->tensors[i]->data,
		    q->tensors[i]->n_data)) {
			snprintf(err, errlen, "tensor %zu: NaN or Inf", i);
			return DCCL__ERROR_CODE__E_BAD_TENSOR;
		}
	norm = guard_patch_norm(q);
	if (!isfinite(norm)) {
		snprintf(err, errlen, "patch norm overflows");
		return DCCL__ERROR_CODE__E_BAD_TENSOR;
	}
	if (max_norm > 0 && norm > max_norm) {
		if (!clip) {
			snprintf(err, errlen, "patch L2 norm %.4g above "
			    "limits.max-patch-norm %.4g", norm, max_norm);
			return DCCL__ERROR_CODE__E_BAD_TENSOR;
		}
		for (size_t i = 0; i < q->n_tensors; i++)
			for (size_t j = 0; j < q->tensors[i]->n_data; j++)
				q->tensors[i]->data[j] = (float)(
				    q->tensors[i]->data[j] * (max_norm / norm));
		*clipped = 1;
	}
	return 0;
}

int
guard_register_check(const Dccl__RegisterReq *q, int need_key, char *err,
    size_t errlen)
{
	if (q->software != NULL && strlen(q->software) > 64) {
		snprintf(err, errlen, "software string longer than 64");
		return DCCL__ERROR_CODE__E_BAD_REQUEST;
	}
	if (q->capability != NULL && (q->capability->memory_mb > (1u << 24)
	    || (q->capability->compute_class != NULL &&
	    strlen(q->capability->compute_class) > 8))) {
		snprintf(err, errlen, "capability out of range");
		return DCCL__ERROR_CODE__E_BAD_REQUEST;
	}
	if (need_key && q->pubkey.len != 32) {
		snprintf(err, errlen, "RegisterReq needs a 32-byte X25519 "
		    "public key (got %zu bytes)", q->pubkey.len);
		return DCCL__ERROR_CODE__E_UNAUTHENTICATED;
	}
	return 0;
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
		log_warnx("AUTH: no enrollment token: registration is closed");
	under(path, sizeof(path), cf->data_dir, cf->auth_db);
	if (guard_open(&cd->guard, path, tok, cf->auth_mode, err, errlen) !=
	    0)
		return -1;
	sodium_memzero(tok, sizeof(tok));
	log_info("AUTH: mode %s, %zu enrolled device(s)", cf->auth_mode ==
	    AUTH_ENCRYPT ? "encrypt" : "mac", guard_count(cd->guard));
	return 0;
}
