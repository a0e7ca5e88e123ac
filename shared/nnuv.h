/*
 * nnuv: glue between a nanomsg socket and a libuv loop. NN_RCVFD is watched
 * with a uv_poll_t and drained in bounded bursts; NN_SNDFD is watched only
 * while the outbound queue is non-empty, since it is level-triggered and
 * would make the loop spin. For raw (AF_SP_RAW) REP sockets the routing
 * header of each request travels with it and must go back with the reply.
 * Loop thread only.
 */
#ifndef SHARED_NNUV_H
#define SHARED_NNUV_H

#include <stddef.h>
#include <uv.h>

struct nnuv;

/*
 * Called for each received message. Takes ownership of msg (free with
 * nn_freemsg) and of hdr (raw sockets only, else NULL; pass it back to
 * nnuv_send or nn_freemsg it).
 */
typedef void (*nnuv_recv_fn)(struct nnuv *s, void *msg, size_t len,
    void *hdr);

struct nnuv_out {
	struct nnuv_out	*next;
	void		*msg;
	size_t		 len;
	void		*hdr;
};

struct nnuv {
	int		 sock;
	int		 raw;
	int		 has_rfd, has_sfd;
	uv_poll_t	 rpoll, spoll;
	int		 reading, writing;
	int		 open_handles;
	struct nnuv_out	*head, *tail;
	size_t		 queued;
	nnuv_recv_fn	 recv;
	void		*data;		/* owner's */
	void		(*closed)(struct nnuv *);
};

/*
 * Starts watching sock (already bound/connected). raw selects raw-socket
 * header handling. recv may be NULL for send-only sockets (PUB).
 */
int	nnuv_init(struct nnuv *s, uv_loop_t *loop, int sock, int raw,
	    nnuv_recv_fn recv, void *data);
/*
 * Sends msg (an nn_allocmsg buffer) with hdr (raw only, else NULL). Always
 * takes ownership of both: on a full socket they are queued; on a hard
 * error they are freed and -1 is returned.
 */
int	nnuv_send(struct nnuv *s, void *msg, size_t len, void *hdr);
/*
 * Delivers the messages already waiting (at most one burst) now, outside
 * the poll: a loop that was busy for longer than a deadline runs its
 * timers before it polls, so a reply that arrived in time would
 * otherwise be seen only after the timer gave up on it.
 */
void	nnuv_drain(struct nnuv *s);
/*
 * Sets the kernel send and receive buffers (NN_SNDBUF, NN_RCVBUF) of the
 * TCP connections sock makes or accepts from now on, in bytes. nanomsg
 * sets both to its own 128 KiB on every connection, which turns off
 * Linux's autotuning: a model chunk then crosses in 256 KiB windows, one
 * round trip each. The kernel caps bytes at net.core.wmem_max/rmem_max.
 * Returns 0 or -errno.
 */
int	nnuv_sockbuf(int sock, int bytes);
/* Stops / restarts delivering messages (in-flight limits). */
void	nnuv_pause(struct nnuv *s);
void	nnuv_resume(struct nnuv *s);
/*
 * Stops the polls, drops queued output and closes the nanomsg socket once
 * libuv has released the handles; then calls closed (may be NULL).
 */
void	nnuv_close(struct nnuv *s, void (*closed)(struct nnuv *));

#endif
