/*
 * replica: several cloudd processes serving one PostgreSQL store.
 *
 * DESIGN. Every replica serves every request: devices connect their REQ
 * socket to all replicas (nanomsg spreads requests and resends to a
 * survivor), and their SUB socket to every replica's PUB. All state a
 * request needs is in the shared store (devices, models, patches), and an
 * upload is committed there before it is acknowledged, so a replica can
 * die at any moment without losing an acknowledged patch. What a replica
 * holds in memory is a cache: the devtab (refilled from the store on a
 * miss, in rpc.c), the current model and the pool snapshot with its index.
 *
 * Work that must happen once (training a new version, MoMoDistill, storing
 * the pool's vectors of a new version) is done by the leader only: the
 * replica whose dedicated connection holds the PostgreSQL advisory lock
 * STORE_PG_LOCK_LEADER. When the leader dies, the server ends its session
 * and frees the lock, and the next cron tick of another replica takes it,
 * so takeover is bounded by cloudd.cron-ms plus the server noticing the
 * dead connection (at once for a killed process; tcp_keepalives_* for a
 * vanished host). Training requests are rows in the tasks table: any
 * replica accepts `dcctl train`, the leader runs the oldest pending task,
 * and marks it done only after the new version is stored, so a task whose
 * leader died stays pending and the new leader runs it again.
 *
 * Every replica polls the latest model version in cron; a newer one made
 * by another replica is loaded, announced on this replica's PUB, and the
 * pool snapshot reloaded with that version's vectors. It recounts the
 * stored patches every 5 s too, as the others take uploads (dccl_patches,
 * and the leader's distillation trigger, which recounts its users when
 * that count moves).
 *
 * With SQLite (one process per database) this replica is always the leader
 * and nothing here changes how cloudd behaves. Loop thread only.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "cloudd/cloudd.h"
#include "shared/clock.h"
#include "shared/log.h"

int
replica_shared(const struct cloudd *cd)
{
	return cd->lead != NULL;
}

int
replica_start(struct cloudd *cd, char *err, size_t errlen)
{
	int rc;

	cd->leader = 1;
	if (strcmp(store_backend(cd->st), "postgresql") != 0)
		return 0;
	cd->leader = 0;
	if ((rc = store_open(&cd->lead, cd->cf.store, cd->dbpath,
	    (int)cd->cf.busy_ms, err, errlen)) != 0)
		return rc;
	if ((rc = store_leader_try(cd->lead, &cd->leader)) != 0) {
		snprintf(err, errlen, "%s", store_errmsg(cd->lead));
		return rc;
	}
	log_info("REPLICA: shared postgresql store; %s", cd->leader ?
	    "LEADER: this replica leads" : "another replica leads");
	return 0;
}

void
replica_stop(struct cloudd *cd)
{
	store_close(cd->lead);	/* frees the leader lock at once */
	cd->lead = NULL;
	cd->leader = 0;
}

/* Loads a version another replica stored, announces it, reloads the pool. */
static void
follow_models(struct cloudd *cd)
{
	struct store_model_info mi;
	int rc;

	if (cd->training || cd->rolling_back)
		return;		/* this replica is about to publish itself */
	if ((rc = store_model_info(cd->st, 0, &mi)) != 0) {
		if (rc != -ENOENT)
			log_warnx("REPLICA: cannot read the latest model: %s",
			    store_errmsg(cd->st));
		return;
	}
	if (mi.version > cd->model.version) {
		if (model_load_latest(cd) != 0) {
			log_warnx("REPLICA: cannot load model v%llu: %s",
			    (unsigned long long)mi.version,
			    store_errmsg(cd->st));
			return;
		}
		log_info("REPLICA: model v%llu from the shared store",
		    (unsigned long long)cd->model.version);
		rpc_announce(cd);
	}
	/*
	 * The pool's vectors must be of the served version (retrieval). No
	 * pool at all happens too: a start-up load that finished after a
	 * newer model was loaded here is dropped (pool.c), and no job of
	 * this replica brings one.
	 */
	if (cd->model.version != 0 && (cd->pool == NULL ||
	    cd->pool->version != cd->model.version) && !cd->pool_loading &&
	    clock_now() - cd->replica_t >= 1) {
		cd->replica_t = clock_now();
		if (pool_start_load(cd) != 0)
			log_warnx("REPLICA: cannot start a pool load");
	}
}

/* The leader's once-only work: pending training tasks, the first model. */
static void
lead(struct cloudd *cd)
{
	struct store_task t;
	int rc;

	if (cd->task_id != 0 && !cd->training) {
		uint64_t made = cd->model.version > cd->task_base ?
		    cd->model.version : 0;
		/*
		 * A job stopped by SIGTERM stays pending for the next leader;
		 * one that failed is done (result 0), not retried forever.
		 */
		if (!cd->stopping || made) {
			if (store_task_done(cd->st, cd->task_id, made) != 0)
				log_warnx("TASK: cannot mark task %llu done: %s",
				    (unsigned long long)cd->task_id,
				    store_errmsg(cd->st));
			else
				log_info("TASK: %llu done: %s v%llu",
				    (unsigned long long)cd->task_id, made ?
				    "made" : "failed on",
				    (unsigned long long)(made ? made :
				    cd->model.version));
		}
		cd->task_id = 0;
	}
	if (cd->stopping || cd->training || cd->pool_loading ||
	    cd->rolling_back || cd->pool == NULL ||
	    cd->pool->version != cd->model.version)
		return;
	if ((rc = store_task_next(cd->st, &t)) == 0) {
		if (strcmp(t.kind, "train") != 0) {
			log_warnx("TASK: %llu: unknown kind '%s'; dropped",
			    (unsigned long long)t.id, t.kind);
			store_task_done(cd->st, t.id, 0);
			return;
		}
		cd->task_base = cd->model.version;
		if ((rc = train_start(cd, (uint32_t)t.arg)) == 0) {
			cd->task_id = t.id;
			log_info("TASK: %llu (train, %lld epochs) started on "
			    "v%llu", (unsigned long long)t.id, (long long)t.arg,
			    (unsigned long long)cd->model.version);
		} else if (rc == -ENOENT) {
			log_warnx("TASK: %llu: the pool is empty; dropped",
			    (unsigned long long)t.id);
			store_task_done(cd->st, t.id, 0);
		}
		return;
	}
	if (rc != -ENOENT) {
		log_warnx("TASK: cannot read tasks: %s", store_errmsg(cd->st));
		return;
	}
	/* A leader that died while training the first version. */
	if (cd->model.version == 0 && cd->pool->ds.n > 0 &&
	    cd->cf.train_on_start)
		train_start(cd, 0);
}

/* The patches every replica stored (see DESIGN). */
static void
follow_patches(struct cloudd *cd)
{
	uint64_t n;

	if (clock_now() - cd->patches_t < 5)
		return;
	cd->patches_t = clock_now();
	if (store_patch_count(cd->st, &n) == 0)
		cd->patches = n;
}

void
replica_cron(struct cloudd *cd)
{
	int was = cd->leader, rc;

	if (cd->lead == NULL)
		return;
	if ((rc = store_leader_try(cd->lead, &cd->leader)) != 0)
		log_warnx("LEADER: %s", store_errmsg(cd->lead));
	if (cd->leader && !was)
		log_info("LEADER: this replica leads (pid %ld)", (long)getpid());
	else if (!cd->leader && was)
		log_warnx("LEADER: lost the leader lock; another replica will "
		    "take over");
	if (cd->stopping)
		return;
	follow_models(cd);
	follow_patches(cd);
	if (cd->leader)
		lead(cd);
}

/* dcctl train on any replica: a task the leader runs (see lead()). */
int
replica_train(struct cloudd *cd, uint32_t epochs)
{
	uint64_t id;
	int rc;

	if ((rc = store_task_add(cd->st, "train", epochs, &id)) != 0)
		return rc;
	log_info("TASK: %llu (train, %u epochs) queued for the leader%s",
	    (unsigned long long)id, epochs, cd->leader ? " (this replica)" :
	    "");
	return 0;
}
