/*
 * nnuv: see nnuv.h. The socket descriptors nanomsg exposes are event fds
 * that are readable while a message can be received (RCVFD) or sent
 * (SNDFD); both are polled for UV_READABLE.
 */
#include <errno.h>
#include <nanomsg/nn.h>
#include <stdlib.h>
#include <string.h>

#include "shared/nnuv.h"
#include "shared/xmalloc.h"

#define NNUV_BURST 64	/* messages per wakeup, so one socket can't hog */

static void
freemsgs(void *msg, void *hdr)
{
	if (msg != NULL)
		nn_freemsg(msg);
	if (hdr != NULL)
		nn_freemsg(hdr);
}

/* Returns 1 if sent, 0 on EAGAIN, -1 on a hard error (both freed). */
static int
trysend(struct nnuv *s, void *msg, size_t len, void *hdr)
{
	struct nn_iovec iov = { &msg, NN_MSG };
	struct nn_msghdr mh;
	int rc;

	(void)len;
	memset(&mh, 0, sizeof(mh));
	mh.msg_iov = &iov;
	mh.msg_iovlen = 1;
	if (hdr != NULL) {
		/*
		 * Pass the header by value: nanomsg copies it. Handing over
		 * the chunk (NN_MSG) would let nanomsg free it even when the
		 * send fails with EAGAIN, and the queued retry would then use
		 * freed memory.
		 */
		const struct nn_cmsghdr *c = hdr;
		mh.msg_control = hdr;
		mh.msg_controllen = NN_CMSG_SPACE(c->cmsg_len - NN_CMSG_LEN(0));
	}
	rc = nn_sendmsg(s->sock, &mh, NN_DONTWAIT);
	if (rc >= 0) {
		if (hdr != NULL)
			nn_freemsg(hdr);
		return 1;
	}
	if (nn_errno() == EAGAIN)
		return 0;
	freemsgs(msg, hdr);
	return -1;
}

static void
send_cb(uv_poll_t *h, int status, int events)
{
	struct nnuv *s = h->data;

	while (s->head != NULL) {
		struct nnuv_out *o = s->head;
		int rc = trysend(s, o->msg, o->len, o->hdr);
		if (rc == 0)
			return;
		s->head = o->next;
		if (s->head == NULL)
			s->tail = NULL;
		s->queued--;
		free(o);
	}
	uv_poll_stop(&s->spoll);
	s->writing = 0;
}

static void
recv_cb(uv_poll_t *h, int status, int events)
{
	struct nnuv *s = h->data;

	for (int i = 0; i < NNUV_BURST && s->reading; i++) {
		void *msg = NULL, *hdr = NULL;
		struct nn_iovec iov = { &msg, NN_MSG };
		struct nn_msghdr mh;
		int n;

		memset(&mh, 0, sizeof(mh));
		mh.msg_iov = &iov;
		mh.msg_iovlen = 1;
		if (s->raw) {
			mh.msg_control = &hdr;
			mh.msg_controllen = NN_MSG;
		}
		n = nn_recvmsg(s->sock, &mh, NN_DONTWAIT);
		if (n < 0)
			return;	/* EAGAIN, or an error the next poll retries */
		s->recv(s, msg, (size_t)n, hdr);
	}
}

void
nnuv_drain(struct nnuv *s)
{
	if (s->has_rfd && s->reading)
		recv_cb(&s->rpoll, 0, UV_READABLE);
}

int
nnuv_init(struct nnuv *s, uv_loop_t *loop, int sock, int raw,
    nnuv_recv_fn recv, void *data)
{
	int fd;
	size_t sz = sizeof(fd);
	int rc;

	memset(s, 0, sizeof(*s));
	s->sock = sock;
	s->raw = raw;
	s->recv = recv;
	s->data = data;
	if (recv != NULL) {
		if (nn_getsockopt(sock, NN_SOL_SOCKET, NN_RCVFD, &fd, &sz) < 0)
			return -nn_errno();
		if ((rc = uv_poll_init(loop, &s->rpoll, fd)) != 0)
			return rc;
		s->rpoll.data = s;
		s->has_rfd = 1;
		s->open_handles++;
	}
	sz = sizeof(fd);
	if (nn_getsockopt(sock, NN_SOL_SOCKET, NN_SNDFD, &fd, &sz) == 0) {
		if ((rc = uv_poll_init(loop, &s->spoll, fd)) != 0)
			return rc;
		s->spoll.data = s;
		s->has_sfd = 1;
		s->open_handles++;
	}
	if (recv != NULL)
		nnuv_resume(s);
	return 0;
}

int
nnuv_sockbuf(int sock, int bytes)
{
	if (nn_setsockopt(sock, NN_SOL_SOCKET, NN_SNDBUF, &bytes,
	    sizeof(bytes)) < 0 || nn_setsockopt(sock, NN_SOL_SOCKET,
	    NN_RCVBUF, &bytes, sizeof(bytes)) < 0)
		return -nn_errno();
	return 0;
}

int
nnuv_send(struct nnuv *s, void *msg, size_t len, void *hdr)
{
	struct nnuv_out *o;
	int rc;

	if (s->head == NULL) {
		rc = trysend(s, msg, len, hdr);
		if (rc != 0)
			return rc > 0 ? 0 : -1;
	}
	if (!s->has_sfd) {
		freemsgs(msg, hdr);
		return -1;
	}
	o = xcalloc(1, sizeof(*o));
	o->msg = msg;
	o->len = len;
	o->hdr = hdr;
	if (s->tail)
		s->tail->next = o;
	else
		s->head = o;
	s->tail = o;
	s->queued++;
	if (!s->writing) {
		uv_poll_start(&s->spoll, UV_READABLE, send_cb);
		s->writing = 1;
	}
	return 0;
}

void
nnuv_pause(struct nnuv *s)
{
	if (s->has_rfd && s->reading) {
		uv_poll_stop(&s->rpoll);
		s->reading = 0;
	}
}

void
nnuv_resume(struct nnuv *s)
{
	if (s->has_rfd && !s->reading) {
		uv_poll_start(&s->rpoll, UV_READABLE, recv_cb);
		s->reading = 1;
	}
}

static void
handle_closed(uv_handle_t *h)
{
	struct nnuv *s = h->data;

	if (--s->open_handles > 0)
		return;
	nn_close(s->sock);
	s->sock = -1;
	if (s->closed)
		s->closed(s);
}

void
nnuv_close(struct nnuv *s, void (*closed)(struct nnuv *))
{
	struct nnuv_out *o, *next;

	s->closed = closed;
	s->reading = s->writing = 0;
	for (o = s->head; o != NULL; o = next) {
		next = o->next;
		freemsgs(o->msg, o->hdr);
		free(o);
	}
	s->head = s->tail = NULL;
	s->queued = 0;
	if (s->open_handles == 0) {
		if (s->sock >= 0)
			nn_close(s->sock);
		s->sock = -1;
		if (closed)
			closed(s);
		return;
	}
	if (s->has_rfd)
		uv_close((uv_handle_t *)&s->rpoll, handle_closed);
	if (s->has_sfd)
		uv_close((uv_handle_t *)&s->spoll, handle_closed);
}
