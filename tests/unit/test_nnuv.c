/*
 * test_nnuv: unit tests for shared/nnuv.c over inproc:// with a real
 * uv_loop_t.
 *
 * The server side is a raw REP socket (AF_SP_RAW, NN_REP) under nnuv, as in
 * cloudd; the clients are plain REQ sockets, also under nnuv (non-raw), so
 * that both header paths run. Each test owns one loop; a 5 s uv_timer
 * watchdog stops the loop and fails the test instead of hanging. Every test
 * ends like libuv's MAKE_VALGRIND_HAPPY: close the nnuv sockets, uv_walk +
 * uv_close whatever else is open, run the loop dry and assert that
 * uv_loop_close() == 0. Single-threaded; the one fork()ed test keeps a
 * possible crash of the module out of this process.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <nanomsg/nn.h>
#include <nanomsg/pipeline.h>
#include <nanomsg/reqrep.h>
#include <sys/wait.h>
#include <unistd.h>

#include "shared/nnuv.h"

#define NCLI		3
#define WATCHDOG_MS	5000

struct ctx;

struct cli {
	struct ctx	*t;
	struct nnuv	 nv;
	int		 sock;
	int		 open;
	char		 sent[32];
	char		 got[64];
	int		 n_got;
};

struct pending {
	void	*msg;
	size_t	 len;
	void	*hdr;
};

struct ctx {
	uv_loop_t	 loop;
	uv_timer_t	 watchdog, tick;
	int		 timed_out;
	char		 url[64];
	struct nnuv	 srv;
	int		 srv_open;
	struct cli	 cli[NCLI];
	int		 n_cli;
	/* server behaviour */
	int		 hold;		/* collect this many, then answer */
	struct pending	 pend[NCLI];
	int		 n_pend;
	int		 n_req;		/* requests delivered to the server */
	int		 no_hdr;	/* a request arrived without a header */
	int		 pause_after;	/* pause after this many (0: never) */
	/* completion */
	int		 want_replies, n_replies;
	int		 closed_calls;
	int		 tick_step;
	int		 seen_while_paused;
};

static int url_seq;

/* --- harness ------------------------------------------------------------- */

static void
on_watchdog(uv_timer_t *h)
{
	struct ctx *t = h->data;

	t->timed_out = 1;
	uv_stop(&t->loop);
}

static int
setup(void **state)
{
	struct ctx *t = calloc(1, sizeof(*t));

	if (t == NULL || uv_loop_init(&t->loop) != 0)
		return -1;
	uv_timer_init(&t->loop, &t->watchdog);
	t->watchdog.data = t;
	uv_timer_start(&t->watchdog, on_watchdog, WATCHDOG_MS, 0);
	uv_unref((uv_handle_t *)&t->watchdog);	/* never keeps the loop up */
	uv_timer_init(&t->loop, &t->tick);
	t->tick.data = t;
	snprintf(t->url, sizeof(t->url), "inproc://test_nnuv.%d.%d",
	    (int)getpid(), url_seq++);
	*state = t;
	return 0;
}

static void
close_walk_cb(uv_handle_t *h, void *arg)
{
	(void)arg;
	if (!uv_is_closing(h))
		uv_close(h, NULL);
}

static void
count_closed(struct nnuv *s)
{
	struct ctx *t = s->data;

	t->closed_calls++;
}

static void
count_closed_cli(struct nnuv *s)
{
	struct cli *c = s->data;

	c->t->closed_calls++;
}

static int
teardown(void **state)
{
	struct ctx *t = *state;
	int rc;

	for (int i = 0; i < t->n_pend; i++) {
		nn_freemsg(t->pend[i].msg);
		if (t->pend[i].hdr != NULL)
			nn_freemsg(t->pend[i].hdr);
	}
	if (t->srv_open)
		nnuv_close(&t->srv, NULL);
	for (int i = 0; i < t->n_cli; i++)
		if (t->cli[i].open)
			nnuv_close(&t->cli[i].nv, NULL);
	uv_walk(&t->loop, close_walk_cb, NULL);
	uv_run(&t->loop, UV_RUN_DEFAULT);
	rc = uv_loop_close(&t->loop);
	free(t);
	assert_int_equal(rc, 0);
	return 0;
}

static void
run(struct ctx *t)
{
	uv_run(&t->loop, UV_RUN_DEFAULT);
	if (t->timed_out)
		fail_msg("watchdog: loop still busy after %d ms (%d/%d "
		    "replies, %d requests)", WATCHDOG_MS, t->n_replies,
		    t->want_replies, t->n_req);
}

/* Stops the loop by closing everything the test opened. */
static void
finish(struct ctx *t)
{
	if (t->srv_open) {
		nnuv_close(&t->srv, count_closed);
		t->srv_open = 0;
	}
	for (int i = 0; i < t->n_cli; i++)
		if (t->cli[i].open) {
			nnuv_close(&t->cli[i].nv, count_closed_cli);
			t->cli[i].open = 0;
		}
	if (!uv_is_closing((uv_handle_t *)&t->tick))
		uv_close((uv_handle_t *)&t->tick, NULL);
	uv_timer_stop(&t->watchdog);
}

static void *
mkmsg(const char *s)
{
	size_t n = strlen(s);
	void *m = nn_allocmsg(n, 0);

	assert_non_null(m);
	memcpy(m, s, n);
	return m;
}

static void
reply(struct ctx *t, struct pending *p)
{
	char buf[96];

	snprintf(buf, sizeof(buf), "re:%.*s", (int)p->len, (char *)p->msg);
	nn_freemsg(p->msg);
	assert_int_equal(nnuv_send(&t->srv, mkmsg(buf), strlen(buf), p->hdr),
	    0);
	p->msg = p->hdr = NULL;
}

static void
on_req(struct nnuv *s, void *msg, size_t len, void *hdr)
{
	struct ctx *t = s->data;
	struct pending p = { msg, len, hdr };

	t->n_req++;
	if (hdr == NULL)
		t->no_hdr = 1;
	if (t->pause_after > 0 && t->n_req == t->pause_after)
		nnuv_pause(s);
	if (t->hold <= 1) {
		reply(t, &p);
		return;
	}
	t->pend[t->n_pend++] = p;
	if (t->n_pend == t->hold) {
		/* Answer in reverse order of arrival. */
		while (t->n_pend > 0)
			reply(t, &t->pend[--t->n_pend]);
	}
}

static void
on_reply(struct nnuv *s, void *msg, size_t len, void *hdr)
{
	struct cli *c = s->data;
	struct ctx *t = c->t;

	assert_null(hdr);
	snprintf(c->got, sizeof(c->got), "%.*s", (int)len, (char *)msg);
	nn_freemsg(msg);
	c->n_got++;
	if (++t->n_replies == t->want_replies)
		finish(t);
}

static void
start_server(struct ctx *t)
{
	int sock = nn_socket(AF_SP_RAW, NN_REP);

	assert_true(sock >= 0);
	assert_true(nn_bind(sock, t->url) >= 0);
	assert_int_equal(nnuv_init(&t->srv, &t->loop, sock, 1, on_req, t), 0);
	t->srv_open = 1;
}

static struct cli *
add_client(struct ctx *t)
{
	struct cli *c = &t->cli[t->n_cli++];
	int sock = nn_socket(AF_SP, NN_REQ);

	assert_true(sock >= 0);
	assert_true(nn_connect(sock, t->url) >= 0);
	c->t = t;
	c->sock = sock;
	assert_int_equal(nnuv_init(&c->nv, &t->loop, sock, 0, on_reply, c),
	    0);
	c->open = 1;
	return c;
}

static void
client_send(struct cli *c, const char *s)
{
	snprintf(c->sent, sizeof(c->sent), "%s", s);
	assert_int_equal(nnuv_send(&c->nv, mkmsg(s), strlen(s), NULL), 0);
}

static void
expect_replies(struct ctx *t)
{
	char want[96];

	for (int i = 0; i < t->n_cli; i++) {
		snprintf(want, sizeof(want), "re:%s", t->cli[i].sent);
		assert_int_equal(t->cli[i].n_got, 1);
		assert_string_equal(t->cli[i].got, want);
	}
}

/* --- tests --------------------------------------------------------------- */

static void
test_request_reply(void **state)
{
	struct ctx *t = *state;

	start_server(t);
	client_send(add_client(t), "ping-1");
	t->want_replies = 1;
	run(t);
	assert_int_equal(t->n_req, 1);
	assert_int_equal(t->no_hdr, 0);	/* raw REP gets the header */
	expect_replies(t);
	assert_int_equal(t->closed_calls, 2);
	assert_int_equal(t->srv.sock, -1);
}

static void
test_out_of_order(void **state)
{
	struct ctx *t = *state;

	start_server(t);
	t->hold = NCLI;
	client_send(add_client(t), "alpha");
	client_send(add_client(t), "bravo");
	client_send(add_client(t), "charlie");
	t->want_replies = NCLI;
	run(t);
	assert_int_equal(t->n_req, NCLI);
	expect_replies(t);
}

/* Several requests per client, one after another, stay in step. */
static void
on_reply_again(struct nnuv *s, void *msg, size_t len, void *hdr)
{
	struct cli *c = s->data;
	char want[96], next[32];

	snprintf(want, sizeof(want), "re:%s", c->sent);
	assert_int_equal(len, strlen(want));
	assert_memory_equal(msg, want, len);
	nn_freemsg(msg);
	(void)hdr;
	if (++c->n_got < 20) {
		snprintf(next, sizeof(next), "%c%d", c->sent[0], c->n_got);
		snprintf(c->sent, sizeof(c->sent), "%s", next);
		assert_int_equal(nnuv_send(s, mkmsg(next), strlen(next), NULL),
		    0);
	} else if (++c->t->n_replies == c->t->want_replies)
		finish(c->t);
}

static void
test_many_rounds(void **state)
{
	struct ctx *t = *state;

	start_server(t);
	for (int i = 0; i < 2; i++) {
		struct cli *c = add_client(t);
		c->nv.recv = on_reply_again;
		client_send(c, i ? "b" : "a");
	}
	t->want_replies = 2;
	run(t);
	assert_int_equal(t->n_req, 40);
}

static void
on_tick_pause(uv_timer_t *h)
{
	struct ctx *t = h->data;

	switch (t->tick_step++) {
	case 0:
		/* 100 ms after the first request: the others wait. */
		t->seen_while_paused = t->n_req;
		assert_int_equal(t->srv.reading, 0);
		nnuv_resume(&t->srv);
		nnuv_resume(&t->srv);	/* idempotent */
		break;
	}
}

static void
test_pause_resume(void **state)
{
	struct ctx *t = *state;

	start_server(t);
	t->pause_after = 1;	/* on_req pauses after the first */
	client_send(add_client(t), "one");
	client_send(add_client(t), "two");
	client_send(add_client(t), "three");
	t->want_replies = NCLI;
	uv_timer_start(&t->tick, on_tick_pause, 100, 0);
	run(t);
	assert_int_equal(t->seen_while_paused, 1);
	assert_int_equal(t->n_req, NCLI);
	expect_replies(t);
}

static void
on_tick_paused_start(uv_timer_t *h)
{
	struct ctx *t = h->data;

	t->seen_while_paused = t->n_req;
	nnuv_resume(&t->srv);
}

/* Paused before anything arrives: nothing is delivered until resume. */
static void
test_pause_before(void **state)
{
	struct ctx *t = *state;

	start_server(t);
	nnuv_pause(&t->srv);
	nnuv_pause(&t->srv);	/* idempotent */
	client_send(add_client(t), "x");
	client_send(add_client(t), "y");
	t->want_replies = 2;
	uv_timer_start(&t->tick, on_tick_paused_start, 150, 0);
	run(t);
	assert_int_equal(t->seen_while_paused, 0);
	assert_int_equal(t->n_req, 2);
	expect_replies(t);
}

/* --- send queue (PUSH with no peer yet) ---------------------------------- */

struct qctx {
	struct ctx	*t;
	struct nnuv	 push, pull;
	int		 push_open, pull_open;
	char		 got[8][16];
	int		 n_got;
};

static void
on_pull(struct nnuv *s, void *msg, size_t len, void *hdr)
{
	struct qctx *q = s->data;

	(void)hdr;
	snprintf(q->got[q->n_got++], sizeof(q->got[0]), "%.*s", (int)len,
	    (char *)msg);
	nn_freemsg(msg);
	if (q->n_got == 3) {
		nnuv_close(&q->push, NULL);
		nnuv_close(&q->pull, NULL);
		q->push_open = q->pull_open = 0;
		uv_timer_stop(&q->t->watchdog);
		uv_close((uv_handle_t *)&q->t->tick, NULL);
	}
}

static void
on_tick_connect(uv_timer_t *h)
{
	struct qctx *q = h->data;
	int sock = nn_socket(AF_SP, NN_PULL);

	/* The queue is still there; now a peer appears and drains it. */
	assert_int_equal(q->push.queued, 3);
	assert_true(sock >= 0);
	assert_true(nn_connect(sock, q->t->url) >= 0);
	assert_int_equal(nnuv_init(&q->pull, &q->t->loop, sock, 0, on_pull, q),
	    0);
	q->pull_open = 1;
}

static void
test_send_queue(void **state)
{
	struct ctx *t = *state;
	struct qctx q;
	int sock = nn_socket(AF_SP, NN_PUSH);

	memset(&q, 0, sizeof(q));
	q.t = t;
	assert_true(sock >= 0);
	assert_true(nn_bind(sock, t->url) >= 0);
	assert_int_equal(nnuv_init(&q.push, &t->loop, sock, 0, NULL, &q), 0);
	q.push_open = 1;
	/* No peer: the first send would block, so all three queue. */
	assert_int_equal(nnuv_send(&q.push, mkmsg("m1"), 2, NULL), 0);
	assert_int_equal(nnuv_send(&q.push, mkmsg("m2"), 2, NULL), 0);
	assert_int_equal(nnuv_send(&q.push, mkmsg("m3"), 2, NULL), 0);
	assert_int_equal(q.push.queued, 3);
	assert_int_equal(q.push.writing, 1);
	t->tick.data = &q;
	uv_timer_start(&t->tick, on_tick_connect, 50, 0);
	uv_run(&t->loop, UV_RUN_DEFAULT);
	if (t->timed_out)
		fail_msg("watchdog: got %d of 3", q.n_got);
	assert_int_equal(q.n_got, 3);
	assert_string_equal(q.got[0], "m1");	/* in order */
	assert_string_equal(q.got[1], "m2");
	assert_string_equal(q.got[2], "m3");
	assert_int_equal(q.push.queued, 0);
}

/* Closing with queued output frees it (valgrind checks) and calls back. */
static void
test_close_with_queue(void **state)
{
	struct ctx *t = *state;
	struct nnuv push;
	int sock = nn_socket(AF_SP, NN_PUSH);

	assert_true(sock >= 0);
	assert_true(nn_bind(sock, t->url) >= 0);
	assert_int_equal(nnuv_init(&push, &t->loop, sock, 0, NULL, t), 0);
	for (int i = 0; i < 5; i++)
		assert_int_equal(nnuv_send(&push, mkmsg("queued"), 6, NULL), 0);
	assert_int_equal(push.queued, 5);
	nnuv_close(&push, count_closed);
	assert_int_equal(push.queued, 0);
	assert_null(push.head);
	uv_close((uv_handle_t *)&t->tick, NULL);
	uv_timer_stop(&t->watchdog);
	uv_run(&t->loop, UV_RUN_DEFAULT);
	assert_int_equal(t->closed_calls, 1);
	assert_int_equal(push.sock, -1);
	/* The nanomsg socket is gone. */
	assert_true(nn_send(sock, "x", 1, NN_DONTWAIT) < 0);
	assert_int_equal(nn_errno(), EBADF);
}

/* A send-only socket that never sent closes cleanly, too. */
static void
test_close_idle(void **state)
{
	struct ctx *t = *state;
	struct nnuv a;
	int sock = nn_socket(AF_SP, NN_PUSH);

	assert_true(sock >= 0);
	assert_int_equal(nnuv_init(&a, &t->loop, sock, 0, NULL, t), 0);
	nnuv_close(&a, count_closed);
	uv_close((uv_handle_t *)&t->tick, NULL);
	uv_run(&t->loop, UV_RUN_DEFAULT);
	assert_int_equal(t->closed_calls, 1);
	assert_int_equal(a.sock, -1);
}

/*
 * A raw socket whose send would block must keep the routing header for the
 * retry. nanomsg frees an NN_MSG control chunk itself when nn_sendmsg()
 * fails, so nnuv must not hand it over by reference and then queue (or
 * free) it. Run in a child: the bug shows as a double free / abort.
 */
static void
raw_queue_child(void)
{
	uv_loop_t loop;
	struct nnuv req;
	int s = nn_socket(AF_SP_RAW, NN_REQ), rep, n;
	size_t sz = NN_CMSG_SPACE(sizeof(size_t) + 4);
	struct nn_cmsghdr *c;
	void *hdr, *buf = NULL;
	char url[64];

	alarm(10);
	snprintf(url, sizeof(url), "inproc://test_nnuv.raw.%d", (int)getpid());
	if (s < 0 || nn_bind(s, url) < 0 || uv_loop_init(&loop) != 0)
		_exit(10);
	if (nnuv_init(&req, &loop, s, 1, NULL, NULL) != 0)
		_exit(11);
	/* A raw REQ routing header: one SP_HDR cmsg with a request id. */
	hdr = nn_allocmsg(sz, 0);
	memset(hdr, 0, sz);
	c = hdr;
	c->cmsg_len = NN_CMSG_LEN(sizeof(size_t) + 4);
	c->cmsg_level = PROTO_SP;
	c->cmsg_type = SP_HDR;
	*(size_t *)(void *)NN_CMSG_DATA(c) = 4;
	memcpy(NN_CMSG_DATA(c) + sizeof(size_t), "\x80\x00\x00\x07", 4);
	/* No peer yet: EAGAIN, so the message and its header queue. */
	if (nnuv_send(&req, mkmsg("hello"), 5, hdr) != 0 || req.queued != 1)
		_exit(12);
	/* A peer arrives; the queued request must reach it intact. */
	rep = nn_socket(AF_SP, NN_REP);
	if (rep < 0 || nn_connect(rep, url) < 0)
		_exit(13);
	while (req.queued > 0)
		uv_run(&loop, UV_RUN_ONCE);
	n = nn_recv(rep, &buf, NN_MSG, 0);
	if (n != 5 || memcmp(buf, "hello", 5) != 0)
		_exit(14);
	nn_freemsg(buf);
	nn_close(rep);
	nnuv_close(&req, NULL);
	uv_run(&loop, UV_RUN_DEFAULT);
	if (uv_loop_close(&loop) != 0)
		_exit(15);
	_exit(0);
}

static void
test_raw_send_queue_keeps_header(void **state)
{
	struct ctx *t = *state;
	pid_t pid;
	int st = 0;

	uv_close((uv_handle_t *)&t->tick, NULL);
	fflush(NULL);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0)
		raw_queue_child();
	assert_int_equal(waitpid(pid, &st, 0), pid);
	if (WIFSIGNALED(st))
		fail_msg("child killed by signal %d (queued header used after "
		    "nanomsg freed it?)",
		    WTERMSIG(st));
	if (WEXITSTATUS(st) != 0)
		fail_msg("child exited %d", WEXITSTATUS(st));
}

/* nnuv_drain: what waits on the socket, delivered without the poll. */
static int drained;

static void
on_drained(struct nnuv *s, void *msg, size_t len, void *hdr)
{
	(void)s;
	(void)hdr;
	if (len == 4 && memcmp(msg, "late", 4) == 0)
		drained++;
	nn_freemsg(msg);
}

static void
test_drain(void **state)
{
	struct ctx *t = *state;
	struct nnuv *pull = &t->srv;	/* teardown closes it */
	int in = nn_socket(AF_SP, NN_PULL), out = nn_socket(AF_SP, NN_PUSH);

	assert_true(in >= 0 && out >= 0);
	assert_true(nn_bind(in, t->url) >= 0);
	assert_true(nn_connect(out, t->url) >= 0);
	assert_int_equal(nnuv_init(pull, &t->loop, in, 0, on_drained, t), 0);
	t->srv_open = 1;
	drained = 0;
	assert_int_equal(nn_send(out, "late", 4, 0), 4);
	/* The loop has not run: nothing was delivered by the poll. */
	assert_int_equal(drained, 0);
	for (int i = 0; i < 100 && drained == 0; i++) {
		nnuv_drain(pull);
		if (drained == 0)
			usleep(10000);
	}
	assert_int_equal(drained, 1);
	nnuv_drain(pull);	/* nothing more waits: no callback */
	assert_int_equal(drained, 1);
	nnuv_pause(pull);	/* paused: drain delivers nothing */
	assert_int_equal(nn_send(out, "late", 4, 0), 4);
	usleep(20000);
	nnuv_drain(pull);
	assert_int_equal(drained, 1);
	nn_close(out);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_request_reply, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_out_of_order, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_many_rounds, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_pause_resume, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_pause_before, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_send_queue, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_close_with_queue, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_close_idle, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(
		    test_raw_send_queue_keeps_header, setup, teardown),
		cmocka_unit_test_setup_teardown(test_drain, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
