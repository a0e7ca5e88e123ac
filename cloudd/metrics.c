/*
 * metrics: cloudd's statistics in the Prometheus text exposition format
 * (version 0.0.4), served over HTTP by libmicrohttpd and over the admin
 * socket (dcctl metrics).
 *
 * DESIGN: struct cloudd belongs to the loop thread, and MHD answers on a
 * thread of its own, so the two never share it. A uv_timer on the loop
 * renders the whole exposition every metrics.interval-ms into a fresh
 * buffer and swaps it in under a mutex; the MHD handler copies the latest
 * buffer under the same mutex and sends the copy. A scrape is therefore at
 * most one interval old, costs the loop nothing, and a slow client never
 * holds the lock for longer than a memcpy. The mutex, the buffer and the
 * MHD daemon live in struct metrics, which the loop frees only in the
 * timer's close callback, after MHD_stop_daemon has joined the thread.
 *
 * Metrics (all prefixed dccl_):
 *   requests_total{type,result}          counter   result = ok | E_*
 *   request_duration_seconds{type}       histogram receipt to reply
 *   retrieve_seconds                     histogram successful retrievals
 *   pool_samples, devices, patches, model_version, model_bytes, inflight,
 *   training, train_seconds (last job), index_build_seconds (last pool
 *   load + index), uptime_seconds        gauges
 *   distill_runs_total{result}           counter   MoMoDistill runs ended:
 *                                                  new | kept | failed
 *   distill_pending_users                gauge     users with a patch no
 *                                                  run has used (the
 *                                                  trigger's last count)
 *   retrieve_lobby                       gauge     retrievals waiting for
 *                                                  a search place
 *   dropped_messages_total               counter   replies and announces
 *                                                  nanomsg did not take
 *   build_info{version}                  gauge, always 1
 * Only request types that were seen get series, so the output stays short.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <microhttpd.h>
#include <uv.h>

#include "cloudd/cloudd.h"
#include "cloudd/metrics.h"
#include "cloudd/rpc.h"
#include "shared/clock.h"
#include "shared/log.h"
#include "shared/wire.h"
#include "shared/xmalloc.h"

#if MHD_VERSION >= 0x00097002
typedef enum MHD_Result mhd_result;
#else
typedef int mhd_result;
#endif

#define METRICS_CTYPE	"text/plain; version=0.0.4; charset=utf-8"

struct metrics {
	uv_timer_t		 timer;		/* loop: renders */
	struct MHD_Daemon	*mhd;
	pthread_mutex_t		 mu;		/* guards text, len */
	char			*text;		/* latest rendering */
	size_t			 len;
	int			 port;		/* bound port (for the log) */
};

/* A growable string; OOM is fatal (xmalloc). */
struct sbuf {
	char	*s;
	size_t	 len, cap;
};

static void __attribute__((format(printf, 2, 3)))
sb_printf(struct sbuf *b, const char *fmt, ...)
{
	va_list ap;
	int n;

	for (;;) {
		va_start(ap, fmt);
		n = vsnprintf(b->s + b->len, b->cap - b->len, fmt, ap);
		va_end(ap);
		if (n < 0)
			return;
		if ((size_t)n < b->cap - b->len) {
			b->len += (size_t)n;
			return;
		}
		b->cap = (b->cap + (size_t)n + 1) * 2;
		b->s = xreallocarray(b->s, b->cap, 1);
	}
}

static void
head(struct sbuf *b, const char *name, const char *type, const char *help)
{
	sb_printf(b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static void
gauge(struct sbuf *b, const char *name, const char *help, double v)
{
	head(b, name, "gauge", help);
	/* Counts print as integers; times with 9 significant digits. */
	if (v == (double)(int64_t)v && v < 9007199254740992.0)
		sb_printf(b, "%s %lld\n", name, (long long)v);
	else
		sb_printf(b, "%s %.9g\n", name, v);
}

/*
 * One histogram series: per-bucket counts cnt (non-cumulative, the last
 * bucket is +Inf, as rpc.c counts them) become cumulative _bucket lines.
 * labels is "" or 'type="x",' (with the trailing comma).
 */
static void
histogram(struct sbuf *b, const char *name, const char *labels,
    const uint64_t *cnt, double sum)
{
	uint64_t acc = 0;
	size_t ll = strlen(labels);

	for (int k = 0; k < RPC_N_BUCKETS; k++) {
		acc += cnt[k];
		if (k == RPC_N_BUCKETS - 1)
			sb_printf(b, "%s_bucket{%sle=\"+Inf\"} %llu\n", name,
			    labels, (unsigned long long)acc);
		else
			sb_printf(b, "%s_bucket{%sle=\"%g\"} %llu\n", name,
			    labels, rpc_buckets[k], (unsigned long long)acc);
	}
	/* The braces need the labels without their trailing comma. */
	if (ll > 0) {
		sb_printf(b, "%s_sum{%.*s} %.9g\n", name, (int)(ll - 1),
		    labels, sum);
		sb_printf(b, "%s_count{%.*s} %llu\n", name, (int)(ll - 1),
		    labels, (unsigned long long)acc);
	} else {
		sb_printf(b, "%s_sum %.9g\n", name, sum);
		sb_printf(b, "%s_count %llu\n", name, (unsigned long long)acc);
	}
}

char *
metrics_render(struct cloudd *cd, size_t *len)
{
	struct sbuf b = { NULL, 0, 0 };
	char labels[96];

	b.cap = 8192;
	b.s = xmalloc(b.cap);
	b.s[0] = '\0';

	head(&b, "dccl_requests_total", "counter",
	    "Requests answered, by body type and result (ok or error code).");
	for (int t = 0; t < RPC_N_BODIES; t++) {
		if (cd->req[t] == 0)
			continue;
		for (int c = 0; c < RPC_N_CODES; c++)
			if (cd->res[t][c] != 0 || c == 0)
				sb_printf(&b, "dccl_requests_total{type=\"%s\","
				    "result=\"%s\"} %llu\n", wire_body_name(t),
				    c == 0 ? "ok" : wire_error_name(c),
				    (unsigned long long)cd->res[t][c]);
	}
	head(&b, "dccl_request_duration_seconds", "histogram",
	    "Time from receipt to reply, by body type.");
	for (int t = 0; t < RPC_N_BODIES; t++) {
		if (cd->req[t] == 0)
			continue;
		snprintf(labels, sizeof(labels), "type=\"%s\",",
		    wire_body_name(t));
		histogram(&b, "dccl_request_duration_seconds", labels,
		    cd->lat[t], cd->lat_sum[t]);
	}
	head(&b, "dccl_retrieve_seconds", "histogram",
	    "Successful retrievals (CoDA coarse matching), from receipt to "
	    "reply, including the wait for a threadpool worker.");
	histogram(&b, "dccl_retrieve_seconds", "", cd->retr_lat, cd->retr_sum);

	gauge(&b, "dccl_pool_samples", "Samples in the pool snapshot served.",
	    cd->pool ? (double)cd->pool->ds.n : 0);
	gauge(&b, "dccl_devices", "Registered devices.", (double)cd->devs.n);
	gauge(&b, "dccl_patches", "Patches stored.", (double)cd->patches);
	gauge(&b, "dccl_model_version", "Model version served (0 = none).",
	    (double)cd->model.version);
	gauge(&b, "dccl_model_bytes", "Size of the packed model served.",
	    (double)cd->model.size);
	gauge(&b, "dccl_inflight", "Heavy requests queued or running.",
	    cd->inflight);
	gauge(&b, "dccl_training", "1 while a training job runs.",
	    cd->training ? 1 : 0);
	gauge(&b, "dccl_train_seconds", "Duration of the last training job "
	    "(0 = none yet).", cd->last_train_s);
	gauge(&b, "dccl_index_build_seconds", "Duration of the last pool load "
	    "and retrieval index build (0 = none yet).", cd->last_index_s);
	gauge(&b, "dccl_uptime_seconds", "Seconds since cloudd started.",
	    clock_now() - cd->started);
	head(&b, "dccl_distill_runs_total", "counter",
	    "MoMoDistill runs ended, by result: new (a version published), "
	    "kept (nothing published: no epoch beat the current model on "
	    "validation, or its gain was below distill.accept-z), "
	    "failed.");
	sb_printf(&b, "dccl_distill_runs_total{result=\"new\"} %llu\n"
	    "dccl_distill_runs_total{result=\"kept\"} %llu\n"
	    "dccl_distill_runs_total{result=\"failed\"} %llu\n",
	    (unsigned long long)cd->distill_new,
	    (unsigned long long)cd->distill_kept,
	    (unsigned long long)cd->distill_failed);
	gauge(&b, "dccl_distill_pending_users", "Users with a patch no "
	    "distillation run has used, as the automatic trigger last counted "
	    "them (0 while it is off or another replica leads).",
	    (double)cd->distill_ready);
	gauge(&b, "dccl_retrieve_lobby", "Retrievals back for their "
	    "appointment waiting in the lobby for a search place.",
	    (double)cd->retr_lobby_n);
	head(&b, "dccl_dropped_messages_total", "counter",
	    "Replies and announcements nanomsg did not accept.");
	sb_printf(&b, "dccl_dropped_messages_total %llu\n",
	    (unsigned long long)cd->dropped);
	head(&b, "dccl_build_info", "gauge", "cloudd version.");
	sb_printf(&b, "dccl_build_info{version=\"%s\"} 1\n", CLOUDD_VERSION);
	if (len != NULL)
		*len = b.len;
	return b.s;
}

/* Loop thread: a new rendering replaces the old one. */
static void
render_cb(uv_timer_t *t)
{
	struct cloudd *cd = t->data;
	struct metrics *m = cd->metrics;
	size_t len;
	char *text = metrics_render(cd, &len), *old;

	pthread_mutex_lock(&m->mu);
	old = m->text;
	m->text = text;
	m->len = len;
	pthread_mutex_unlock(&m->mu);
	free(old);
}

/*
 * MHD thread: touches only *m (under m->mu), never struct cloudd. GET or
 * HEAD of /metrics (or /) gets the latest rendering, anything else 404/405.
 */
static mhd_result
http_cb(void *cls, struct MHD_Connection *c, const char *url,
    const char *method, const char *version, const char *upload_data,
    size_t *upload_data_size, void **req_cls)
{
	struct metrics *m = cls;
	struct MHD_Response *rsp;
	unsigned int status = MHD_HTTP_OK;
	char *copy;
	size_t len;
	mhd_result ret;

	(void)version;
	(void)upload_data;
	(void)upload_data_size;
	(void)req_cls;
	if (strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0) {
		static const char msg[] = "only GET\n";
		status = MHD_HTTP_METHOD_NOT_ALLOWED;
		rsp = MHD_create_response_from_buffer(sizeof(msg) - 1,
		    (void *)msg, MHD_RESPMEM_PERSISTENT);
	} else if (strcmp(url, "/metrics") != 0 && strcmp(url, "/") != 0) {
		static const char msg[] = "not found; try /metrics\n";
		status = MHD_HTTP_NOT_FOUND;
		rsp = MHD_create_response_from_buffer(sizeof(msg) - 1,
		    (void *)msg, MHD_RESPMEM_PERSISTENT);
	} else {
		/* Copy under the lock; send after releasing it. */
		pthread_mutex_lock(&m->mu);
		len = m->len;
		copy = xmalloc(len + 1);
		memcpy(copy, m->text, len);
		pthread_mutex_unlock(&m->mu);
		rsp = MHD_create_response_from_buffer(len, copy,
		    MHD_RESPMEM_MUST_FREE);
		if (rsp == NULL)
			free(copy);
	}
	if (rsp == NULL)
		return MHD_NO;
	MHD_add_response_header(rsp, MHD_HTTP_HEADER_CONTENT_TYPE,
	    status == MHD_HTTP_OK ? METRICS_CTYPE : "text/plain");
	ret = MHD_queue_response(c, status, rsp);
	MHD_destroy_response(rsp);
	return ret;
}

/* MHD thread: its error messages go to our log (one write per line). */
static void
mhd_log_cb(void *cls, const char *fmt, va_list ap)
{
	char buf[512];
	size_t n;

	(void)cls;
	vsnprintf(buf, sizeof(buf), fmt, ap);
	n = strlen(buf);
	while (n > 0 && buf[n - 1] == '\n')
		buf[--n] = '\0';
	log_warnx("METRICS-HTTP: %s", buf);
}

/*
 * Parses "host:port" or "[v6]:port" into ss. Host must be numeric: the
 * exporter binds one given address, never a name that may resolve to many.
 */
static int
parse_addr(const char *spec, struct sockaddr_storage *ss, socklen_t *sslen,
    char *host, size_t hostlen)
{
	const char *port, *colon;
	struct addrinfo hints, *ai = NULL;
	size_t hl;

	if (spec[0] == '[') {
		const char *close = strchr(spec, ']');
		if (close == NULL || close[1] != ':')
			return -1;
		hl = (size_t)(close - spec - 1);
		if (hl >= hostlen)
			return -1;
		memcpy(host, spec + 1, hl);
		port = close + 2;
	} else {
		if ((colon = strrchr(spec, ':')) == NULL)
			return -1;
		hl = (size_t)(colon - spec);
		if (hl >= hostlen)
			return -1;
		memcpy(host, spec, hl);
		port = colon + 1;
	}
	host[hl] = '\0';
	if (host[0] == '\0' || port[0] == '\0')
		return -1;
	memset(&hints, 0, sizeof(hints));
	hints.ai_flags = AI_NUMERICHOST | AI_NUMERICSERV | AI_PASSIVE;
	hints.ai_socktype = SOCK_STREAM;
	if (getaddrinfo(host, port, &hints, &ai) != 0 || ai == NULL)
		return -1;
	memcpy(ss, ai->ai_addr, ai->ai_addrlen);
	*sslen = ai->ai_addrlen;
	freeaddrinfo(ai);
	return 0;
}

static void
timer_closed_cb(uv_handle_t *h)
{
	struct metrics *m = h->data;

	pthread_mutex_destroy(&m->mu);
	free(m->text);
	free(m);
}

int
metrics_start(struct cloudd *cd)
{
	struct sockaddr_storage ss;
	socklen_t sslen = 0;
	char host[128];
	uint16_t want;
	struct metrics *m;
	const union MHD_DaemonInfo *di;
	sigset_t all, old;
	unsigned int flags = MHD_USE_INTERNAL_POLLING_THREAD |
	    MHD_USE_ERROR_LOG;
	int rc;

	if (cd->cf.metrics_listen == NULL || cd->cf.metrics_listen[0] == '\0')
		return 0;
	if (parse_addr(cd->cf.metrics_listen, &ss, &sslen, host,
	    sizeof(host)) != 0) {
		log_warnx("METRICS: bad metrics.listen '%s' (want host:port "
		    "with a numeric host, e.g. 127.0.0.1:9400)",
		    cd->cf.metrics_listen);
		return -1;
	}
	if (ss.ss_family == AF_INET6)
		flags |= MHD_USE_IPv6;
	/* MHD binds ss; the port argument only names it in MHD's errors. */
	want = ntohs(ss.ss_family == AF_INET6 ?
	    ((struct sockaddr_in6 *)&ss)->sin6_port :
	    ((struct sockaddr_in *)&ss)->sin_port);
	m = xcalloc(1, sizeof(*m));
	pthread_mutex_init(&m->mu, NULL);
	cd->metrics = m;
	m->text = metrics_render(cd, &m->len);	/* never serve nothing */

	/*
	 * MHD's thread inherits the signal mask: block everything while it
	 * is created, so SIGTERM/SIGHUP are taken by the loop thread, whose
	 * libuv handler is where cloudd expects them.
	 */
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	/* The logger goes first, or MHD reports the options before it. */
	m->mhd = MHD_start_daemon(flags, want, NULL, NULL, http_cb, m,
	    MHD_OPTION_EXTERNAL_LOGGER, mhd_log_cb, NULL,
	    MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&ss,
	    MHD_OPTION_CONNECTION_LIMIT, (unsigned int)16,
	    MHD_OPTION_CONNECTION_TIMEOUT, (unsigned int)10,
	    MHD_OPTION_END);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (m->mhd == NULL) {
		log_warnx("METRICS: cannot serve HTTP on %s (address in use "
		    "or not local?)", cd->cf.metrics_listen);
		goto fail;
	}
	/* The real port, for port 0 ("any free one"). */
	if ((di = MHD_get_daemon_info(m->mhd, MHD_DAEMON_INFO_LISTEN_FD))
	    != NULL) {
		struct sockaddr_storage b;
		socklen_t bl = sizeof(b);
		if (getsockname(di->listen_fd, (struct sockaddr *)&b, &bl) == 0)
			m->port = ntohs(b.ss_family == AF_INET6 ?
			    ((struct sockaddr_in6 *)&b)->sin6_port :
			    ((struct sockaddr_in *)&b)->sin_port);
	}
	if ((rc = uv_timer_init(&cd->loop, &m->timer)) != 0) {
		log_warnx("METRICS: uv_timer_init: %s", uv_strerror(rc));
		goto fail_mhd;
	}
	m->timer.data = cd;
	uv_timer_start(&m->timer, render_cb, (uint64_t)cd->cf.metrics_ms,
	    (uint64_t)cd->cf.metrics_ms);
	log_info("METRICS: serving http://%s%s%s:%d/metrics (port %d, every "
	    "%lld ms)", ss.ss_family == AF_INET6 ? "[" : "", host,
	    ss.ss_family == AF_INET6 ? "]" : "", m->port, m->port,
	    (long long)cd->cf.metrics_ms);
	return 0;
fail_mhd:
	MHD_stop_daemon(m->mhd);
fail:
	cd->metrics = NULL;
	pthread_mutex_destroy(&m->mu);
	free(m->text);
	free(m);
	return -1;
}

void
metrics_stop(struct cloudd *cd)
{
	struct metrics *m = cd->metrics;

	if (m == NULL)
		return;
	cd->metrics = NULL;
	/* Joins MHD's thread: no handler runs after this returns. */
	MHD_stop_daemon(m->mhd);
	m->mhd = NULL;
	m->timer.data = m;	/* close_cb frees m */
	uv_close((uv_handle_t *)&m->timer, timer_closed_cb);
	log_info("METRICS: stopped");
}

void
metrics_rpc(struct cloudd *cd, struct rpc_req *r)
{
	Dccl__Envelope e = DCCL__ENVELOPE__INIT;
	Dccl__MetricsText mt = DCCL__METRICS_TEXT__INIT;
	char *text = metrics_render(cd, NULL);

	e.device_id = r->env->device_id;
	e.request_id = r->env->request_id;
	mt.text = text;
	e.body_case = DCCL__ENVELOPE__BODY_METRICS_TEXT;
	e.metrics_text = &mt;
	rpc_reply(cd, r, &e);
	free(text);
}
