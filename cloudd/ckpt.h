/*
 * ckpt: SQLite WAL checkpoints on a thread and connection of their own.
 * A checkpoint syncs the database file, which took 100-300 ms on this
 * VM's disk; run inside a commit on the loop, as SQLite does by default,
 * it stalled every request for that long (make loadtest: GetStatus p99
 * 110-200 ms on disk against 3 ms on tmpfs). The loop's connection then
 * commits to the log only (synchronous=NORMAL: no sync at commit).
 * Nothing to do on PostgreSQL.
 */
#ifndef CLOUDD_CKPT_H
#define CLOUDD_CKPT_H

struct cloudd;

/* Starts it (cloudd.checkpoint-ms > 0, SQLite); 0, or -1 when it cannot
 * (SQLite's own checkpoints in the committing connection stay on). */
int	ckpt_start(struct cloudd *cd);
void	ckpt_stop(struct cloudd *cd);

#endif
