/*
 * guard: cloudd's gate for the device socket (issue 6). It authenticates
 * each request (shared/auth.h: enrollment-token MAC on RegisterReq,
 * per-device session MAC with a strictly increasing counter on all others,
 * optional payload encryption), applies per-device rate limits and an
 * in-flight cap, and validates upload contents beyond their shape (metric
 * counts and names, patch norm). The cloud's key pair and the devices'
 * public keys and counter high-water marks live in the store (store.h,
 * "Authentication state"), so every replica of a PostgreSQL store has the
 * same cloud key and knows every enrolled device. Loop thread only (it
 * uses the loop's store connection), except guard_upload_check() and
 * guard_patch_norm(), which are pure.
 */
#ifndef CLOUDD_GUARD_H
#define CLOUDD_GUARD_H

#include <stddef.h>
#include <stdint.h>

#include "dccl.pb-c.h"
#include "shared/auth.h"

struct cloudd;
struct rpc_req;
struct store;
struct guard;
struct guard_dev;

/*
 * Opens the guard on store st (kept, not owned; the loop thread's
 * connection): gets the cloud's X25519 key pair from the store, making it
 * if no replica has yet, and caches every enrolled device key. shared: other
 * processes enrol too (PostgreSQL replicas), so a device missing from the
 * cache is looked up in the store. token is the enrollment token ("" =
 * only keys enrolled by dcctl enroll can register). 0 or -1 with err.
 */
int	guard_open(struct guard **out, struct store *st, int shared,
	    const char *token, int mode, char *err, size_t errlen);
/*
 * Resolves the enrollment token (auth.token, else $DCCL_AUTH_TOKEN, else
 * auth.token-file, created with a random token when missing), moves the
 * keys of a legacy auth.db into the store (once; the file is renamed
 * <auth.db>.imported) and opens cd->guard on cd->st (NULL with auth.mode
 * off). Startup only. 0 or -1 with err.
 */
int	guard_start(struct cloudd *cd, char *err, size_t errlen);
/*
 * Bounds the work unknown ids cause: enroll_rate/s (bucket enroll_burst)
 * first enrolments and store lookups of uncached ids together, checked
 * before any crypto or query (beyond it E_RATE_LIMITED); and at most
 * max_devices enrolled keys (0 = no bound; beyond it E_BUSY).
 */
void	guard_limits(struct guard *g, double enroll_rate, double enroll_burst,
	    size_t max_devices);
/* Flushes counters and closes. NULL is a no-op. Before store_close. */
void	guard_close(struct guard *g);
/*
 * Writes the counters that moved since the last flush to the store, as a
 * max-merge (cron). 0 or -errno; the message is guard_errmsg().
 */
int	guard_flush(struct guard *g);
const char *guard_errmsg(const struct guard *g);
/* Enrolled devices (for logs and tests). */
size_t	guard_count(const struct guard *g);

/*
 * Admits the decoded request r (raw bytes buf/len) from the device
 * socket: authentication, replay check, decryption, rate limit, per-device
 * in-flight cap. Returns 0, or an error code with a message in err. On
 * return r->seal says how to seal the reply (set whenever the device is
 * authenticated, also for a rate-limit error).
 */
int	guard_admit(struct cloudd *cd, struct rpc_req *r, const void *buf,
	    size_t len, char *err, size_t errlen);
/*
 * guard_admit's answer when r waits for a store read of its device's key
 * off the loop (PostgreSQL; keylookup.h): the key of an uncached id, or
 * a re-read after a failed MAC. guard.c holds r and a copy of its bytes,
 * and hands them to the resume function once the answer is cached.
 */
#define GUARD_PARKED	(-1)
/* Admits r again (rpc.c's rpc_resume); code: 0, or the error to answer. */
typedef void guard_resume_fn(struct cloudd *cd, struct rpc_req *r,
    const void *buf, size_t len, int code);
/*
 * Starts the thread that reads keys and flushes counters off the loop
 * (PostgreSQL; once the loop exists); parked requests go to resume.
 */
void	guard_lookup_start(struct cloudd *cd, guard_resume_fn *resume);
/* Stops it (shutdown, once no job is left). */
void	guard_lookup_stop(struct cloudd *cd);
/*
 * Exact resends (same counter and MAC as the device's latest request) are
 * never executed again. The reply to each device's latest request is kept
 * when it is at most GUARD_REPLY_MAX bytes (GUARD_REPLY_TOTAL for all
 * devices together); a resend gets those bytes. A resend of a request
 * still being served gets E_BUSY (a second copy would double its cost);
 * one whose reply was larger (a model chunk, a large retrieval) or did
 * not fit the total gets E_UNAUTHENTICATED: the devices re-send with a
 * new counter, so only a replay repeats one exactly.
 * guard_keep_reply() stores the packed reply of r (rpc_send_packed);
 * after guard_admit() set r->resend, guard_cached_reply() gives a copy
 * (nn_allocmsg) to send: 0, or an error code with a message in err.
 */
#define GUARD_REPLY_MAX		(16 * 1024)
#define GUARD_REPLY_TOTAL	((size_t)64 << 20)
void	guard_keep_reply(struct rpc_req *r, const void *msg, size_t len);
int	guard_cached_reply(struct rpc_req *r, void **msg, size_t *len,
	    char *err, size_t errlen);
/* Releases r's in-flight slot, if it holds one (rpc_req_free). */
void	guard_release(struct rpc_req *r);
/*
 * Enrolls r's device with the public key of its RegisterReq (committed
 * before it returns) and fills the Registered reply's key fields. Returns 0
 * or an error code with a message.
 */
int	guard_enroll(struct cloudd *cd, struct rpc_req *r, Dccl__Registered *rg,
	    char *err, size_t errlen);

/*
 * dcctl enroll (admin socket): commits q's key for its device id, with
 * counter 0, refusing (E_FORBIDDEN) an id enrolled with another key unless
 * q->replace, and fills en with the cloud's public key (pointing into the
 * guard) and auth mode for the device's key file. Returns 0 or an error
 * code with a message in err.
 */
int	guard_admin_enroll(struct cloudd *cd, const Dccl__AdminEnrollReq *q,
	    Dccl__Enrolled *en, char *err, size_t errlen);

/*
 * Lowers the calling threadpool thread's CPU priority (nice GUARD_NICE,
 * once per thread; Linux threads have their own nice value), so that on a
 * loaded host the loop thread, which answers the light requests, preempts
 * searches and training instead of queueing behind them. Threadpool only.
 */
#define GUARD_NICE	10
void	guard_worker_nice(void);
/* Signs a ModelAnnounce (auth.h, protocol v3); nothing when auth is off. */
void	guard_sign_announce(const struct guard *g, Dccl__ModelAnnounce *a,
	    uint8_t sig[64]);

/*
 * Pure checks of an upload beyond its tensor shapes: at most 32 metrics,
 * names of 1..64 printable chars, finite values; kind at most 23 chars.
 * Then the L2 norm of all tensors together against max_norm (0 = no
 * limit): above it the patch is refused (E_BAD_TENSOR), or with clip set
 * scaled down to max_norm in place. Returns 0 or an error code.
 */
int	guard_upload_check(Dccl__UploadPatch *q, double max_norm, int clip,
	    int *clipped, char *err, size_t errlen);
/* L2 norm over every tensor of q, in double. */
double	guard_patch_norm(const Dccl__UploadPatch *q);
/* Pure checks of a RegisterReq's strings and numbers. */
int	guard_register_check(const Dccl__RegisterReq *q, int need_key,
	    char *err, size_t errlen);

#endif
