/*
 * rpc.h: the request object shared by the dispatcher and the handlers that
 * finish in the threadpool. Loop thread only, except the fields a job's
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
	/* guard.c: how the reply is sealed; the device's in-flight slot */
	struct auth_seal seal;
	struct guard_dev *gdev;
	/*
	 * A RegisterReq MACed only with the token key for an id that is
	 * already enrolled with this key: the token proves nothing about the
	 * device, so the request may change nothing (counter, user, row).
	 */
	int		 reg_token_only;
	/* guard.c: the authenticated device (reply cache), an exact resend */
	struct guard_dev *gauth;
	int		 resend;
};

void	rpc_req_free(struct rpc_req *r);
void	rpc_reply(struct cloudd *cd, struct rpc_req *r, Dccl__Envelope *reply);
void	rpc_send_packed(struct cloudd *cd, struct rpc_req *r, void *msg,
	    size_t len, int code);
void	rpc_error(struct cloudd *cd, struct rpc_req *r, int code,
	    const char *fmt, ...) __attribute__((format(printf, 4, 5)));
void	rpc_fill_status(struct cloudd *cd, Dccl__Status *st);

/* Heavy handlers (threadpool). */
void	retrieve_rpc(struct cloudd *cd, struct rpc_req *r, uint32_t user);
void	import_rpc(struct cloudd *cd, struct rpc_req *r);
/* Model lifecycle (lifecycle.c): admin socket only. */
void	lifecycle_show_rpc(struct cloudd *cd, struct rpc_req *r);
void	lifecycle_rollback_rpc(struct cloudd *cd, struct rpc_req *r);
void	lifecycle_prune_rpc(struct cloudd *cd, struct rpc_req *r);
/* Admin metrics (metrics.c): the exposition text as a MetricsText reply. */
void	metrics_rpc(struct cloudd *cd, struct rpc_req *r);
/* Checks an upload's tensors against the model (names, shapes). */
int	patch_validate(struct cloudd *cd, const Dccl__UploadPatch *q,
	    char *err, size_t errlen);

#endif
