/*
 * keylookup: the store lookup of a device key that is not cached
 * (replicas, PostgreSQL: a device may have enrolled through another
 * replica), on a thread and connection of its own, so a packet under an
 * unknown id never costs the loop a database round trip. The request
 * waits (parked, with a copy of its raw bytes) until the answer is cached
 * by guard.c, then rpc.c admits it again (rpc_resume).
 *
 * Bounded: at most KEYLOOKUP_MAX ids in flight and KEYLOOKUP_PER_ID
 * requests parked per id; beyond either guard.c answers E_BUSY. The rate
 * of new lookups is limited before (guard.c: limits.enroll-rate), and a
 * negative answer is cached there for a while.
 *
 * Loop thread API.
 */
#ifndef CLOUDD_KEYLOOKUP_H
#define CLOUDD_KEYLOOKUP_H

#include <stddef.h>

struct cloudd;
struct rpc_req;
struct keylookup;

#define KEYLOOKUP_MAX		64
#define KEYLOOKUP_PER_ID	8

/* Opens the connection and starts the thread. 0, or -1 (logged). */
int	keylookup_start(struct cloudd *cd, struct keylookup **out);
/*
 * Joins the thread (a lookup in progress finishes first) and answers
 * every parked request E_SHUTTING_DOWN. NULL is a no-op.
 */
void	keylookup_stop(struct cloudd *cd, struct keylookup *k);
/*
 * Parks r (copying buf/len) until id's key has been read; the lookup is
 * started unless one for id is already in flight. 0, or -EBUSY.
 */
int	keylookup_park(struct keylookup *k, struct rpc_req *r, const char *id,
	    const void *buf, size_t len);
/* Lookups finished since start (log, tests). */
unsigned long long keylookup_count(const struct keylookup *k);

#endif
