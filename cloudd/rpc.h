/*
 * rpc.h: the request object, the route table and the handlers it names. Loop thread only, except the fields a job's
 * work callback owns until its after_cb.
 */
#ifndef CLOUDD_RPC_H
#define CLOUDD_RPC_H

#include <stdarg.h>
#include <uv.h>

#include "cloudd/cloudd.h"
#include "shared/auth.h"

struct rpc_req {
	uv_work_t	 work;
	struct cloudd	*cd;
	struct nnuv	*sock;
	void		*hdr;		/* raw REP routing header */
	Dccl__Envelope	*env;		/* decoded request; NULL if garbage */
	int		 body;
	double		 t0;
	/* threadpool results */
	int		 code;		/* 0 or an error code */
	char		 err[256];
	void		*out;		/* packed reply (nn_allocmsg) */
	size_t		 out_len;
	struct pool	*pool;
	uint32_t	 user;
	uint64_t	 rows;
	double		 seconds;
	double		 t_admit;	/* clock_now when admitted (retrieve) */
	/* guard.c: how the reply is sealed; the device's in-flight slot */
	struct auth_seal seal;
	struct guard_dev *gdev;
	/*
	 * A RegisterReq MACed only with the token key for an id that is
	 * already enrolled with this key: the token proves nothing about the
	 * device, so the request may change nothing (counter, user, row).
	 */
	int		 reg_token_only;
	/* A RegisterReq authorized by the token MAC (not a session key). */
	int		 reg_token;
	/* guard.c: the authenticated device (reply cache), an exact resend */
	struct guard_dev *gauth;
	int		 resend;
	/* rpc_error: the least retry-after an E_BUSY may carry (dlpace.c) */
	uint32_t	 retry_min_ms;
	/* rpc_error: the retry-after, exactly (an appointment: appoint.h) */
	uint32_t	 retry_exact_ms;
	/* guard.c: its device's key was read off the loop (keylookup) */
	int		 looked_up;
};

/*
 * The route table: which handler serves a body, and where. The daemon
 * hands rpc.c one table at start (rpc_set_routes, ending with fn = NULL);
 * rpc.c names no handler.
 */
typedef void (*rpc_handler)(struct cloudd *cd, struct rpc_req *r);

#define RPC_DEVICE	0x1	/* served on the device socket(s) */
#define RPC_ADMIN	0x2	/* served on the admin socket */
#define RPC_REGISTERED	0x4	/* device socket: a registered device only;
				   r->user is its user */

struct rpc_route {
	int		 body;		/* DCCL__ENVELOPE__BODY_* */
	int		 flags;		/* RPC_* */
	rpc_handler	 fn;
};

void	rpc_set_routes(struct cloudd *cd, const struct rpc_route *routes);
/*
 * Admits r again after guard_admit parked it (GUARD_PARKED) for a key
 * lookup or re-read, with its raw bytes; code: 0, or the error to answer
 * instead. A guard_resume_fn: main hands it to guard_lookup_start().
 */
void	rpc_resume(struct cloudd *cd, struct rpc_req *r, const void *buf,
	    size_t len, int code);
void	rpc_req_free(struct rpc_req *r);
void	rpc_reply_init(Dccl__Envelope *e, const struct rpc_req *r);
void	rpc_reply(struct cloudd *cd, struct rpc_req *r, Dccl__Envelope *reply);
void	rpc_send_packed(struct cloudd *cd, struct rpc_req *r, void *msg,
	    size_t len, int code);
/*
 * An E_BUSY or E_RATE_LIMITED carries Error.retry_after_ms:
 * RPC_BUSY_BASE_MS, plus as much again for every RPC_BUSY_PER_STEP refusals
 * already made this second, up to RPC_BUSY_MAX_MS.
 */
#define RPC_BUSY_BASE_MS	250
#define RPC_BUSY_PER_STEP	64
#define RPC_BUSY_MAX_MS		15000
void	rpc_error(struct cloudd *cd, struct rpc_req *r, int code,
	    const char *fmt, ...) __attribute__((format(printf, 4, 5)));

/*
 * Handlers (rpc_handler), each in the file named after what it serves.
 * Loop thread; the heavy ones reply from a job's after_cb.
 */
void	register_rpc(struct cloudd *cd, struct rpc_req *r);	/* register.c */
void	enroll_rpc(struct cloudd *cd, struct rpc_req *r);
void	status_rpc(struct cloudd *cd, struct rpc_req *r);	/* admin.c */
void	list_rpc(struct cloudd *cd, struct rpc_req *r);
void	train_rpc(struct cloudd *cd, struct rpc_req *r);
void	download_rpc(struct cloudd *cd, struct rpc_req *r);	/* download.c */
void	ofa_download_rpc(struct cloudd *cd, struct rpc_req *r);
void	upload_rpc(struct cloudd *cd, struct rpc_req *r);	/* upload.c */
void	retrieve_rpc(struct cloudd *cd, struct rpc_req *r);	/* threadpool */
void	retrieve_rpc_free(struct cloudd *cd);	/* at stop: the exit line */
void	import_rpc(struct cloudd *cd, struct rpc_req *r);	/* threadpool */
/* Model lifecycle (lifecycle.c): admin socket only. */
void	lifecycle_show_rpc(struct cloudd *cd, struct rpc_req *r);
void	lifecycle_rollback_rpc(struct cloudd *cd, struct rpc_req *r);
void	lifecycle_prune_rpc(struct cloudd *cd, struct rpc_req *r);
/* Federated selection (fedsel_rpc.c): reports in, choices out. */
void	fedsel_report_rpc(struct cloudd *cd, struct rpc_req *r);
void	fedsel_get_rpc(struct cloudd *cd, struct rpc_req *r);
void	fedsel_open(struct cloudd *cd);
void	fedsel_close(struct cloudd *cd);
/* Admin metrics (metrics.c): the exposition text as a MetricsText reply. */
void	metrics_rpc(struct cloudd *cd, struct rpc_req *r);
/*
 * patch.c: every check of an upload (tensors, metrics, norm, base version,
 * names and shapes against the model). 0, or a DCCL error code with the
 * message in err; *clipped is the norm limit the patch was clipped to in
 * place, or 0.
 */
int	patch_validate(struct cloudd *cd, Dccl__UploadPatch *q, double *clipped,
	    char *err, size_t errlen);
/* Its last step, pure: names and shapes against m's MetaPatch. */
int	patch_shape_check(const struct model_cache *m,
	    const Dccl__UploadPatch *q, char *err, size_t errlen);

#endif
