/*
 * cloudd: the cloud daemon. All state lives in struct cloudd, touched only
 * by the loop thread; threadpool jobs get private copies or immutable,
 * refcounted snapshots (struct pool) and report back in their after_cb.
 */
#ifndef CLOUDD_CLOUDD_H
#define CLOUDD_CLOUDD_H

#include <stdatomic.h>
#include <stdint.h>
#include <uv.h>

#include "cloudd/appoint.h"
#include "cloudd/dlpace.h"
#include "cloudd/job.h"
#include "cloudd/store.h"
#include "dccl.pb-c.h"
#include "shared/conf.h"
#include "shared/nnuv.h"
#include "shared/data/sample.h"

#define CLOUDD_VERSION	"0.1.0"
#define RPC_N_BODIES	90	/* > largest Envelope body field number */
#define RPC_N_CODES	16
#define RPC_N_BUCKETS	12	/* latency histogram buckets */

struct cloudd_conf {
	char	*listen;	/* public REP endpoint(s), comma-separated */
	char	*admin_listen;	/* admin REP endpoint (dcctl) */
	char	*pub_listen;	/* model announcements */
	char	*data_dir;
	char	*db_path;	/* relative paths are under data_dir */
	char	*store;		/* backend: sqlite or postgresql */
	char	*pg_conninfo;	/* postgresql: libpq connection string */
	int64_t	 max_message;	/* NN_RCVMAXSIZE, bytes */
	int64_t	 sockbuf;	/* NN_SNDBUF and NN_RCVBUF, bytes */
	int64_t	 chunk_size;	/* model chunk bytes */
	int64_t	 max_download_bytes;	/* dlslots.c: chunk bytes in flight */
	int64_t	 max_inflight;	/* heavy requests in the threadpool */
	int64_t	 max_latency_ms;	/* heavy: beyond this mean, E_BUSY */
	int64_t	 max_k;		/* retrieval: max k */
	int64_t	 max_queries;	/* retrieval: max query vectors */
	int64_t	 max_tensor;	/* upload: max floats per tensor */
	int64_t	 busy_ms;	/* SQLite busy timeout */
	int64_t	 cron_ms;
	int64_t	 workers;	/* UV_THREADPOOL_SIZE */
	int64_t	 checkpoint_ms;	/* ckpt.c: WAL checkpoint period */
	int	 log_level;
	/* training (ctr) */
	int	 train_on_start;
	int	 encoder;	/* train.encoder (encoder_train.c) */
	int64_t	 dim, hist_k, hidden1, hidden2, patch_rank;
	int	 interaction, attention;	/* base-model options */
	int	 item_prior;	/* train.item-prior */
	char	*prior_weights;	/* train.item-prior-weights */
	int64_t	 epochs, batch, patience, seed;
	double	 lr, val_frac, l2;
	char	*lr_grid;	/* train.lr-grid (train_model.h) */
	/* retrieval index */
	int	 retr_kind;
	int64_t	 retr_ivf_min, retr_nlist, retr_nprobe;
	/* observability and model lifecycle */
	char	*metrics_listen;	/* host:port for Prometheus, "" = off */
	int64_t	 metrics_ms;		/* exposition render period */
	int64_t	 models_keep;		/* versions kept by prune */
	/* authentication and limits per device (guard.c) */
	int	 auth_mode;		/* enum auth_mode */
	char	*auth_token, *auth_token_file, *auth_db;
	int	 auth_rekey;
	int64_t	 user_devices;		/* ids a user may self-bind, 0 = any */
	double	 rate;			/* requests/s per device, 0 = off */
	double	 download_rate;		/* chunk MiB/s, all devices (dlpace.c) */
	int64_t	 burst, dev_inflight;
	double	 enroll_rate;		/* first enrolments/s, all devices */
	int64_t	 enroll_burst, max_devices;
	int64_t	 patches_per_device;	/* limits.patches-per-device */
	double	 max_patch_norm;	/* 0 = no limit */
	double	 patch_norm_factor;	/* x median of accepted, 0 = off */
	int	 patch_clip;		/* 0 reject, 1 clip */
	/* MoMoDistill (distill.c) */
	double	 distill_lambda, distill_decay, distill_lr, distill_poly_a;
	double	 distill_accept_z;	/* standard errors a gain must clear */
	int	 distill_stale;		/* DISTILL_STALE_* */
	int	 distill_freeze_users;	/* distill_fit's FREEZE_USERS */
	int64_t	 distill_min_patches;	/* 0 = no automatic runs */
	int64_t	 distill_window_s, distill_max_age, distill_epochs;
	int64_t	 distill_buffer;	/* K new patches, any base; 0 = off */
	/* Forward-OFA (ofa_train.c) */
	int	 ofa_enable;
	int64_t	 ofa_epochs, ofa_blocks, ofa_hidden, ofa_inner, ofa_rank;
	double	 ofa_mu, ofa_lr;
	double	 ofa_res_val;	/* learn on held-out validation: ofa_train.c */
	/* federated selection (fedsel.c) */
	int64_t	 fedsel_min_devices, fedsel_min_n, fedsel_max_devices;
	double	 fedsel_z;
	char	*fedsel_pw;	/* fedsel.pair-weights */
	int	 fedsel_groups;	/* fedsel.groups: warm and cold apart */
};

/*
 * An immutable snapshot of the pool with its representation vectors and
 * retrieval index, for one model version. Shared with workers by
 * reference; refs is changed on the loop thread only.
 */
struct retr;

struct pool {
	int		 refs;
	/*
	 * The samples (ds's arrays, rowid, user_off, by_user) may be shared
	 * with the snapshots made from this one (pool_share_samples): they
	 * are freed with the last of them. Counted from the loop and the
	 * threadpool, hence atomic.
	 */
	atomic_int	*srefs;
	struct dataset	 ds;
	uint64_t	*rowid;		/* ds.n */
	int		 dim;		/* of the vectors (in index, uindex) */
	uint64_t	 version;	/* model the vectors came from */
	struct retr	*index;
	struct retr	*uindex;	/* per-user mean vectors */
	uint32_t	*user_off;	/* n_users + 1: samples by user */
	uint32_t	*by_user;	/* ds.n sample indices grouped by user */
	/*
	 * Side slots retrieval may ship (item and context fields of the
	 * pool's schema); the others, user-side (another user's
	 * demographics), go out as unknown. 0 = none (no schema).
	 */
	uint32_t	 side_ship;
};

struct sblob;
struct model_cache {
	uint64_t	 version, parent;
	void		*blob;		/* packed Model: bytes->data */
	struct sblob	*bytes;		/* shared with replies being sealed */
	size_t		 size;
	uint8_t		 checksum[32];
	double		 global_ctr;
	int		 n_hidden;	/* from the model's config */
	int		 patch_rank;
};

#define UPLOAD_BATCH_MAX 256	/* uploads in one group commit (upload.c) */

/* upload.c: a validated upload waiting for the group commit. */
struct rpc_req;
struct upload_item {
	struct rpc_req		*r;		/* replied to after the commit */
	struct store_patch	 p;		/* p.blob owned */
};

struct metrics;		/* metrics.c: HTTP exporter state */
struct rpc_route;	/* rpc.h */
struct ofa_cloud;	/* ofa_train.c */
struct slice_cache;	/* slice.c */
struct fedsel;		/* fedsel.h */
struct mf_cache;	/* manifest.c */
struct dlslots;		/* dlslots.c */

struct devtab {
	struct devent	*e;
	size_t		 cap, n;
};

/*
 * L2 norms of the last accepted patches (rpc.c, h_upload): the relative
 * patch-norm limit is limits.patch-norm-factor times their median.
 */
#define NORM_HIST	1024
#define NORM_HIST_MIN	32	/* accepted patches before the rule applies */
struct normhist {
	float		 v[NORM_HIST];
	uint32_t	 n, i, since;	/* kept, next slot, since median */
	double		 median;
};

/*
 * retrieve_rpc.c: a device back for its appointment (appoint.h) that finds
 * every search place taken waits here, not on the network: at most
 * RETR_LOBBY_MAX requests, and only while the wait expected (the lobby's
 * length times the time between completions) stays within half of
 * limits.max-latency-ms, the latency the operator accepts for a heavy
 * request (the other half is the search's and the network's), or
 * RETR_LOBBY_WAIT_MS when that limit is off.
 */
#define RETR_LOBBY_MAX	64
#define RETR_LOBBY_WAIT_MS 1000

struct cloudd {
	struct cloudd_conf	 cf;
	struct normhist		 norms;
	struct conf		 conf;
	const char		*conf_path;
	char			 dbpath[1200];
	uv_loop_t		 loop;
	uv_signal_t		 sigterm, sigint, sighup;
	uv_timer_t		 cron;
	struct nnuv		 rep, adm, pub;
	const struct rpc_route	*route[RPC_N_BODIES];	/* by body */
	int			 n_open;	/* nnuv sockets still open */
	struct store		*st;
	/* replica.c: several cloudd on one PostgreSQL store */
	struct store		*lead;		/* leader-lock connection, or NULL */
	int			 leader;	/* does the once-only work */
	uint64_t		 task_id;	/* task being run, 0 = none */
	uint64_t		 task_base;	/* model version when it started */
	double			 replica_t;	/* last pool reload for a new model */
	struct model_cache	 model;
	struct pool		*pool;
	struct devtab		 devs;
	uint32_t		 inflight;	/* heavy jobs queued/running */
	double			 heavy_s;	/* their latency, moving mean */
	struct job_ctl		 job;		/* job.c: work owed a reply */
	int			 stopping;
	atomic_int		 stop;		/* read by workers */
	int			 training;
	int			 pool_loading;
	void			(*pool_loaded)(struct cloudd *cd); /* hook */
	int			 rolling_back;	/* a rollback job is queued */
	double			 pool_heal_t;	/* cron's last pool reload */
	double			 started;
	/* statistics (rendered by metrics.c) */
	uint64_t		 req[RPC_N_BODIES];
	uint64_t		 err[RPC_N_CODES];
	uint64_t		 res[RPC_N_BODIES][RPC_N_CODES]; /* by result */
	uint64_t		 lat[RPC_N_BODIES][RPC_N_BUCKETS];
	double			 lat_sum[RPC_N_BODIES];	/* seconds */
	uint64_t		 retr_lat[RPC_N_BUCKETS]; /* searches that ran */
	double			 retr_sum;
	uint64_t		 dropped;	/* replies/announces not sent */
	/* E_BUSY pacing (rpc_error): refusals in the current second */
	uint64_t		 busy_sec, busy_n;
	uint64_t		 requests, errors;
	uint64_t		 patches;	/* rows in the patches table */
	double			 patches_t;	/* clock of its last count */
	double			 last_train_s, last_index_s;
	struct metrics		*metrics;	/* NULL when metrics.listen="" */
	struct guard		*guard;		/* guard.c: auth, rate limits */
	struct sealer		*sealer;	/* seal.c: chunk MACs off-loop */
	struct ckpt		*ckpt;		/* ckpt.c: WAL checkpoints */
	struct ofa_cloud	*ofa;		/* ofa_train.c: served OFA model */
	struct slice_cache	*slc;		/* slice.c: versions' shared parts */
	struct fedsel		*fedsel;	/* fedsel.c: grid reports, choices */
	struct dlpace		 dlpace;	/* dlpace.c: chunk bytes per second */
	struct mf_cache		*mf;		/* manifest.c: versions' manifests */
	struct dlslots		*dls;		/* dlslots.c: downloads at once */
	/* retrieve_rpc.c: retrievals refused get appointments (appoint.h) */
	struct appoint		 retr_appt;
	uint8_t			 retr_key[16];	/* keys the device ids' hashes */
	double			 retr_svc_s;	/* a search's time, moving mean */
	double			 retr_gap_s;	/* between completions, mean */
	double			 retr_turn_s;	/* admitted to replied, mean */
	double			 retr_done_t;	/* last completion, 0: idle */
	/* due devices that found every place taken, oldest first */
	struct rpc_req		*retr_lobby[RETR_LOBBY_MAX];
	uint32_t		 retr_lobby_n, retr_lobby_0;
	uint64_t		 retr_lobbied;	/* waited there (exit line) */
	uint64_t		 retr_lobby_stop; /* told at stop (exit line) */
	/* upload.c: uploads of this loop iteration, committed together */
	uv_check_t		 up_check;	/* active while up_n > 0 */
	struct upload_item	 up[UPLOAD_BATCH_MAX];
	size_t			 up_n;		/* each counted in jobs */
	/* distill.c: automatic runs (cron) */
	uint64_t		 distill_seen;	/* cd->patches at the last check */
	uint64_t		 distill_base;	/* version the counts are for */
	uint32_t		 distill_ready;	/* users with a patch on it */
	int64_t			 distill_first;	/* unix s of its oldest patch */
	double			 distill_retry_t; /* no automatic run before */
	/* runs ended with a new version, the current one kept, failed */
	uint64_t		 distill_new, distill_kept, distill_failed;
};

/* rpc.c */
void	 rpc_recv_cb(struct nnuv *s, void *msg, size_t len, void *hdr);
void	 rpc_announce(struct cloudd *cd);
extern const double rpc_buckets[RPC_N_BUCKETS];

/*
 * upload.c: the group commit of uploads. Loop thread only. init: the
 * check handle (at start). queue: takes ownership of r and p->blob (a
 * validated upload); replies to r after the commit, or with E_STORAGE.
 * fini: closes the handle (at exit, with no job left).
 */
int	 upload_init(struct cloudd *cd);
void	 upload_queue(struct cloudd *cd, struct rpc_req *r,
	    const struct store_patch *p);
void	 upload_fini(struct cloudd *cd);

/* devtab.c */
void	 devtab_init(struct devtab *t);
void	 devtab_fini(struct devtab *t);
int	 devtab_get(const struct devtab *t, const char *id, uint32_t *user);
void	 devtab_put(struct devtab *t, const char *id, uint32_t user);
/* get, then (shared != NULL: replicas) the store on a miss; 0 or -ENOENT. */
int	 devtab_lookup(struct devtab *t, struct store *shared, const char *id,
	    uint32_t *user);

/* replica.c */
int	 replica_start(struct cloudd *cd, char *err, size_t errlen);
void	 replica_cron(struct cloudd *cd);
void	 replica_stop(struct cloudd *cd);
int	 replica_shared(const struct cloudd *cd);
int	 replica_train(struct cloudd *cd, uint32_t epochs);

/* model.c */
int	 model_load_latest(struct cloudd *cd);
int	 model_publish(struct cloudd *cd, const struct store_model_info *mi,
	    void *blob, size_t size);
void	 model_cache_fini(struct model_cache *m);

/* download.c: frees the cache of older versions' chunks (shutdown). */
void	 download_cache_free(struct cloudd *cd);

/* pool.c */
void	 pool_unref(struct cloudd *cd, struct pool *p);
struct pool *pool_new(void);
void	 pool_free(struct pool *p);
void	 pool_group_users(struct pool *p);
struct pool *pool_share_samples(struct pool *src);
struct pool *pool_snapshot(struct pool *src, const size_t *ord, size_t n);
struct ctr;
int	 pool_index(struct pool *p, const struct ctr *m, struct store *st,
	    uint64_t version, const struct cloudd_conf *cf, char *err,
	    size_t errlen);
int	 pool_start_load(struct cloudd *cd);

/*
 * train.c. A model step other than plain training, plugged into a
 * training job (distill.c's MoMoDistill): fit runs in the worker and
 * produces the model, or returns TRAIN_KEPT (*out NULL) when its result
 * is the current model; meta adds its metrics (worker); log reports the
 * result, a new version or (kept) the current one; done ends the job with
 * res 0 (a new version), TRAIN_KEPT or < 0 (failed) and frees arg (loop);
 * free frees arg of a job that was refused.
 */
/*
 * A kept result publishes nothing: no version is stored or announced, the
 * pool snapshot and the OFA part stay, so devices do not re-download the
 * same weights and re-upload the same patches.
 */
#define TRAIN_KEPT	1
struct ctr;
struct ctr_meta;
struct ctr_train_stats;
struct dataset;
struct train_step {
	const char	*name;		/* log tag */
	int		(*fit)(void *arg, const struct dataset *ds,
			    const uint32_t *tri, size_t ntr,
			    const uint32_t *vai, size_t nva,
			    const struct cloudd_conf *cf, const char *dbpath,
			    atomic_int *stop, struct ctr **out,
			    struct ctr_train_stats *stats, char *err,
			    size_t errlen);
	void		(*meta)(void *arg, struct ctr_meta *meta);
	void		(*log)(void *arg, uint64_t version, int kept);
	void		(*done)(struct cloudd *cd, void *arg, int res);
	void		(*free)(void *arg);
};
int	 train_start(struct cloudd *cd, uint32_t epochs);
/*
 * Queues a training job; with a step (arg's ownership passes) the step
 * produces the model. 0, -EBUSY or -ENOENT (empty pool).
 */
int	 train_queue(struct cloudd *cd, uint32_t epochs,
	    const struct train_step *step, void *arg);

/* import.c */
int	 import_file(struct store *st, const char *path, uint64_t *rows,
	    char *err, size_t errlen);
/* schema: a feature schema file (shared/data/schema.h) or NULL. */
int	 import_file_schema(struct store *st, const char *path,
	    const char *schema, uint64_t *rows, char *err, size_t errlen);

#endif
