/*
 * notify: see notify.h. A thin layer over libsystemd's sd_notify(): it adds
 * the cheap NOTIFY_SOCKET check (so nothing is formatted when nobody
 * listens), printf-style STATUS formatting, and the -errno convention.
 *
 * No state is kept, so every function may be called from any thread.
 * sd_notify() is called with unset_environment = 0: the variable must
 * survive, because READY/STOPPING/STATUS are sent more than once.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "shared/notify.h"

#ifndef DCCL_NO_LIBSYSTEMD
#include <systemd/sd-daemon.h>
#else
/*
 * Builds for devices (make cross) have no libsystemd: Debian ships no static
 * one and phones run no systemd. The protocol is one datagram to the unix
 * socket named by NOTIFY_SOCKET ("@" = abstract), as sd_notify(3) documents.
 */
#include <stddef.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

static int
sd_notify(int unset_environment, const char *state)
{
	const char *path = getenv("NOTIFY_SOCKET");
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	size_t n;
	int fd, rc = 1;

	(void)unset_environment;
	if (path == NULL || path[0] == '\0')
		return 0;
	if ((n = strlen(path)) >= sizeof(sa.sun_path) ||
	    (path[0] != '/' && path[0] != '@'))
		return -EINVAL;
	memcpy(sa.sun_path, path, n);
	if (path[0] == '@')
		sa.sun_path[0] = '\0';
	if ((fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0)) < 0)
		return -errno;
	if (sendto(fd, state, strlen(state), MSG_NOSIGNAL,
	    (struct sockaddr *)&sa, offsetof(struct sockaddr_un, sun_path) + n)
	    < 0)
		rc = -errno;
	close(fd);
	return rc;
}
#endif

#define NOTIFY_STATUS_MAX 256

static int
listening(void)
{
	const char *s = getenv("NOTIFY_SOCKET");

	return s != NULL && s[0] != '\0';
}

/* Sends one datagram; sd_notify returns >0 sent, 0 not under systemd. */
static int
send_state(const char *state)
{
	int rc;

	if (!listening())
		return 0;
	rc = sd_notify(0, state);
	return rc < 0 ? rc : 0;
}

/* Copies src into dst (size n), one line: newlines become spaces. */
static void
one_line(char *dst, size_t n, const char *src)
{
	size_t i;

	for (i = 0; i + 1 < n && src[i] != '\0'; i++)
		dst[i] = (src[i] == '\n' || src[i] == '\r') ? ' ' : src[i];
	dst[i] = '\0';
}

int
notify_ready(const char *status)
{
	char buf[sizeof("READY=1\nSTATUS=") + NOTIFY_STATUS_MAX];
	char line[NOTIFY_STATUS_MAX];

	if (!listening())
		return 0;
	if (status == NULL || status[0] == '\0')
		return send_state("READY=1");
	one_line(line, sizeof(line), status);
	snprintf(buf, sizeof(buf), "READY=1\nSTATUS=%s", line);
	return send_state(buf);
}

int
notify_stopping(void)
{
	return send_state("STOPPING=1");
}

int
notify_reloading(void)
{
	return send_state("RELOADING=1");
}

int
notify_status(const char *fmt, ...)
{
	char raw[NOTIFY_STATUS_MAX], line[NOTIFY_STATUS_MAX];
	char buf[sizeof("STATUS=") + NOTIFY_STATUS_MAX];
	va_list ap;

	if (!listening())
		return 0;
	va_start(ap, fmt);
	if (vsnprintf(raw, sizeof(raw), fmt, ap) < 0) {
		va_end(ap);
		return -EINVAL;
	}
	va_end(ap);
	one_line(line, sizeof(line), raw);
	snprintf(buf, sizeof(buf), "STATUS=%s", line);
	return send_state(buf);
}
