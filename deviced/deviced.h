/*
 * deviced: the device side's internal header: its options and types. A
 * host (struct deviced, run by host.c) holds one device, or N device instances (the daemon's
 * --devices N, e.g. for simulations and the evaluation), each with its own
 * state directory, SQLite store, REQ socket and request ids; they share
 * the loop, the threadpool and one SUB socket for the cloud's model
 * announcements. The daemon (main.c) and the embeddable library
 * (dccl_device.c) are both a host. All state is in struct deviced; loop
 * thread only, except a training job's private copies.
 */
#ifndef DEVICED_DEVICED_H
#define DEVICED_DEVICED_H

#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <uv.h>

#include "dccl.pb-c.h"
#include "deviced/dstore.h"
#include "deviced/uplink.h"
#include "shared/conf.h"
#include "shared/nnuv.h"
#include "shared/data/sample.h"

#define DEVICED_VERSION "0.1.0"
/* nanomsg's NN_MAX_SOCKETS: sockets one process may open. */
#define DEVICED_MAX_SOCKETS 512

struct deviced_conf {
	char	*cloud;		/* cloud REP endpoints, comma-separated */
	char	*cloud_pub;	/* cloud PUB endpoints */
	char	*device_id;	/* id, or prefix with --devices */
	char	*data_dir;
	char	*local_data;	/* samples CSV imported once into the store */
	char	*shards;	/* dir of <user>.local.csv (multi-device) */
	char	*eval_dir;	/* write test predictions here ("" = off) */
	int64_t	 user_id;
	int64_t	 devices;	/* instances hosted */
	int	 log_level;
	int	 run_once;	/* exit after one upload per device */
	char	*compute_class;	/* classes[compute_class_i] */
	int	 compute_class_i;
	int64_t	 memory_mb, flops_budget;
	int64_t	 request_timeout_ms, resend_ms, backoff_min_ms,
		 backoff_max_ms, max_message, sockbuf, workers;
	int64_t	 start_jitter_ms;	/* devices start within this window */
	int64_t	 uplink_lanes;		/* connections to the cloud (uplink.h) */
	char	*eval_methods;	/* comma-separated method names */
	/* authentication (shared/auth.h) and differential privacy (dp.c) */
	int	 auth_mode;	/* enum auth_mode */
	char	*auth_token, *auth_token_file;
	int	 auth_repin;	/* accept a new cloud key once */
	double	 dp_clip, dp_noise, dp_delta, dp_repr_clip, dp_repr_noise;
	double	 dp_max_eps;	/* cap on the total epsilon, 0 = none */
	char	*app_listen;	/* app socket endpoint ("" = off), app.c */
	int64_t	 app_max_candidates;
	int64_t	 retrain_every;	/* new local samples that re-run the job */
	int64_t	 max_local;	/* learn.max-local: the retention window */
	int64_t	 window;	/* learn.window: newest samples a fit reads */
	int	 ofa;		/* learn.ofa: Forward-OFA (ofa_dev.c) */
	/* learning */
	int	 adapt;		/* 0 none, 1 metapatch, 2 finetune, 3 bias */
	int	 bias_fallback, guard_rank;
	int	 encoder;	/* learn.encoder (encoder_dev.c) */
	int	 lc;		/* enum lc_mode */
	int	 lc_target;	/* 0 r_g, 1 the model's mean prediction */
	int	 coda;
	double	 coda_rho, coda_tau, coda_weight, lc_prior;
	int64_t	 lc_min_n;
	int64_t	 retrieve_k, retrieve_queries;
	int	 retrieve_mode;	/* 0 samples, 1 users */
	double	 lr, ft_lr, bias_lr, guard_z;
	double	 guard_move;	/* learn.guard-move: least movement */
	double	 pair_weight;	/* learn.pair-weight (pairwise.h) */
	int64_t	 steps, ft_steps, batch, cv_folds, guard_min_n, seed;
	int	 delay_dist;	/* learn.delay-dist (delay.h) */
	int64_t	 delay_ms, delay_seed;	/* 0 ms = upload at once */
	/* federated selection (fedsel.c) */
	int	 select;	/* learn.select: 0 cv, 1 fed */
	int	 fedsel_report;	/* learn.fedsel-report */
	char	*fedsel_methods;	/* what the report covers */
	int	 pair_select;	/* learn.pair-select: 0 fixed, 1 fed */
	char	*pair_weights;	/* learn.pair-weights, parsed into: */
	int	 npw;
	double	 pw[8];		/* the candidates, the first the default */
};

enum dev_state {
	DEV_REGISTER = 0, DEV_DOWNLOAD, DEV_RETRIEVE, DEV_TRAIN, DEV_UPLOAD,
	DEV_IDLE, DEV_DONE,
	DEV_OFA,	/* Forward-OFA part download (ofa_dev.c) */
	DEV_SELECT,	/* fetch the cloud's chosen settings (fedsel.c) */
	DEV_REPORT	/* send the job's grid report (fedsel.c) */
};

struct app;
struct auth_dev;
struct device;

/*
 * What a device tells the code above it, which sets them (app.c, with
 * device_set_hooks), so that device.c names nothing above itself. Any may
 * be NULL. Loop thread.
 */
struct device_hooks {
	/* A learning job ended (ok: it succeeded and its result is
	 * adopted); takes d->job_serving (device.c frees what is left). */
	void	(*job_done)(struct device *d, int ok);
	/* The device is idle on its current model: 1 = run a job now. */
	int	(*job_wanted)(struct device *d);
	/* The device stops (before the loop drains), then is freed. */
	void	(*close)(struct device *d);
	void	(*fini)(struct device *d);
};

struct ofa_dev;
struct ctr;
struct dev_model;
struct enc;
struct learn_result;
struct fedsel_dev;

struct device {
	struct deviced	*dd;
	char		 id[65];
	uint32_t	 user;
	char		 dir[1024];
	struct dstore	*st;
	uv_timer_t	 timer;		/* reply timeout, then backoff */
	uv_work_t	 work;
	enum dev_state	 state;
	int		 waiting;	/* a request is outstanding */
	int		 attempt;
	uint64_t	 req_id;
	struct dataset	 local;		/* the newest learn.max-local samples */
	int64_t		 local_last_id;	/* store id of local's newest */
	struct dataset	 test;		/* eval mode only */
	struct dataset	 retrieved;
	struct dataset	 retrieved_u;	/* eval: by similar users (MODE_USERS) */
	int		 ret_pass;	/* 1 while fetching retrieved_u */
	struct ctr	*model;		/* cloud model, as downloaded */
	struct enc	*enc;		/* its auxiliary encoder or NULL
					   (shared with model; encoder_dev.c) */
	struct ctr	*serving;	/* what the app is ranked with (app.c):
					   the adopted model or a cloud copy;
					   loop thread only */
	struct ctr	*job_serving;	/* the job's serving model, handed to
					   the loop in learn_after_cb */
	struct app	*app;		/* app socket state; NULL = off */
	const struct device_hooks *hooks;	/* its owner's; NULL = none */
	struct ofa_dev	*ofa;		/* Forward-OFA state; NULL = none */
	struct auth_dev	*auth;		/* key pair, cloud key, counter */
	uint64_t	 sent_ctr;	/* counter of the outstanding request */
	int		 sent_body;	/* and its body */
	uint32_t	 sp_id;		/* nanomsg id of its latest send */
	uint32_t	 sp_first;	/* and of its first (re-sends between) */
	uint64_t	 first_ctr;	/* counter of its first send */
	double		 deadline;	/* give up on it then (uv_now, ms) */
	void		*pend;		/* it, packed unsealed, to re-send */
	size_t		 pend_len;
	double		 dp_rho;	/* zCDP budget spent (dp.c) */
	int		 dp_bad;	/* budget unknown: no DP release */
	uint64_t	 version;
	double		 global_ctr;
	uint64_t	 announced;
	uint64_t	 trained_version;
	uint64_t	 refused;	/* newest model refused (model_fit.h) */
	/* download in progress */
	uint64_t	 dl_version, dl_total;
	uint32_t	 retry_after;	/* the cloud's hint for the next retry */
	uint32_t	 dl_next, dl_n;
	uint8_t		 dl_sum[32];
	/* protocol 5: the version's manifest (its reply), chunks checked */
	Dccl__Envelope	*dl_man;
	/* chunks stored in a row from chunk 0 under dl_man: all dl_n of
	 * them bind the model to the manifest (no whole-model hash) */
	uint32_t	 dl_checked;
	/* index + 1 of the chunk asked ahead, before the one that arrived
	 * was checked and stored (0: none; device.c, ask_ahead) */
	uint32_t	 dl_ahead;
	/* when the manifest in use arrived and the last chunk was stored
	 * (loop ms): the install line's chunk and install times */
	double		 dl_t0, dl_t1;
	/* job results: the job's, until learn_apply moves them here */
	struct learn_result *learned;
	int		 job_rc;
	char		 job_err[256];
	Dccl__Tensor	**patch;
	size_t		 n_patch;
	double		 val_before, val_after, train_s;
	int		 adopted;
	int		 taught;	/* the patch is an adopted MetaPatch */
	size_t		 kept;		/* retrieved samples the filter kept */
	/* bytes per protocol phase, for the per-method cost columns */
	uint64_t	 b_reg, b_model, b_ret_up, b_ret_down, b_patch;
	uint64_t	 b_retu_up, b_retu_down;	/* eval: by similar users */
	/* accounting */
	uint64_t	 bytes_up, bytes_down;
	double		 t_start, t_done;
	/* federated selection (fedsel.c): the cloud's choice, for which
	 * model version it was fetched, and a report waiting to go up */
	struct fedsel_dev *fedsel;
	uint64_t	 fedsel_version;
	void		*report;	/* packed SelectReport, or NULL */
	size_t		 report_len;
};

struct deviced {
	struct deviced_conf	 cf;
	struct conf		 conf;
	const char		*conf_path;
	uv_loop_t		 loop;
	int			 loop_open;
	struct nnuv		 sub;
	int			 has_sub;
	struct uplink		 up;		/* the cloud, for all devices */
	struct device		*dev;		/* max_dev slots, n_dev used */
	int			 n_dev, max_dev;
	struct dev_model	*models;	/* shared cloud models, device.c */
	uint64_t		 shared_pruned;	/* dshared_prune ran below it */
	int			 n_done;
	int			 n_refused;	/* run-once: ended on a refused model */
	int			 jobs;
	int			 stopping;
	atomic_int		 stop;
	int			 stopped;	/* host_stop ran */
	/* traffic counters, logged at exit (scripts/scale.sh reads them) */
	uint64_t		 n_req, n_resend, n_timeout, n_busy;
	uint64_t		 n_late_chunk;	/* late chunks kept (device.c) */
};

/*
 * deviced.c: the options, as the daemon and the library read them:
 * defaults, then the file at path (NULL: none), then n_opts
 * "section.key=value" strings in order; then deviced_conf_done once the
 * caller's own settings are in. Reasons go to err with the option named;
 * 0 or -1. dd starts zeroed.
 */
struct conf_opt;
extern const struct conf_opt deviced_opts[];
int	deviced_configure(struct deviced *dd, const char *path,
	    const char *const *opts, size_t n_opts, FILE *err);
int	deviced_conf_done(struct deviced *dd);
/*
 * Sets c (over deviced_opts) to serve MetaPatch alone, the evaluation row
 * mp-fb: learn.adapt metapatch, lc none, pair-weight 0, as
 * conf/deviced-metapatch.conf does. where names the origin for errors.
 * 0 or -1.
 */
int	deviced_conf_metapatch(struct conf *c, const char *where);
/*
 * The uplink's lanes: net.uplink-lanes, at most two per hosted device, so
 * that a re-send (net.resend-ms, maybe to another replica) can go out
 * while the first send still holds its lane.
 */
static inline int
uplink_lanes(const struct deviced *dd)
{
	int64_t most = 2 * (int64_t)(dd->max_dev > 0 ? dd->max_dev : 1);

	return (int)(dd->cf.uplink_lanes < most ? dd->cf.uplink_lanes : most);
}

/* device.c */
int	device_init(struct deviced *dd, struct device *d, const char *id,
	    uint32_t user, const char *local_csv, const char *test_csv);
void	device_start(struct device *d);
void	device_announce(struct device *d, uint64_t version);
/* Re-checks an idle device for work (new model, retrain due). */
void	device_poke(struct device *d);
void	device_set_hooks(struct device *d, const struct device_hooks *h);
/* "register", "download", ... (the app's status). */
const char *device_state_name(enum dev_state s);
void	device_close(struct device *d);
void	device_fini(struct device *d);

/* learn_job.c (threadpool) */
void	learn_work_cb(uv_work_t *w);
/*
 * Whether d's job reads retrieved pool samples: learn.coda, or the
 * evaluation's CoDA rows. Otherwise the device does not retrieve, which
 * would send its query vectors, spend DP budget and the cloud's CPU on
 * samples nothing reads.
 */
int	learn_wants_retrieved(const struct device *d);

#endif
