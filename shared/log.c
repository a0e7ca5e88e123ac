/*
 * log: see log.h. The level is an atomic so SIGHUP can change it while
 * worker threads log. Each line gets an ISO-8601 UTC timestamp, the level
 * and the program tag, and is written with a single write(2).
 */
#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "shared/log.h"

static const char *log_tag = "dccl";
static atomic_int log_level = LOG_L_INFO;

static const char *const log_names[] = { "error", "warn", "info", "debug" };

void
log_init(const char *tag, int level)
{
	log_tag = tag;
	atomic_store(&log_level, level);
}

void
log_setlevel(int level)
{
	atomic_store(&log_level, level);
}

int
log_getlevel(void)
{
	return atomic_load(&log_level);
}

int
log_level_parse(const char *s)
{
	for (int i = 0; i < 4; i++)
		if (strcmp(s, log_names[i]) == 0)
			return i;
	return -1;
}

const char *
log_level_name(int level)
{
	return (level >= 0 && level < 4) ? log_names[level] : "?";
}

static void
vlog(int level, const char *fmt, va_list ap, const char *err)
{
	char buf[2048];
	struct timespec ts;
	struct tm tm;
	int n, m;

	if (level > atomic_load(&log_level))
		return;
	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	n = snprintf(buf, sizeof(buf),
	    "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ %s %s[%d]: ",
	    tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
	    tm.tm_min, tm.tm_sec, ts.tv_nsec / 1000000, log_names[level],
	    log_tag, (int)getpid());
	if (n < 0 || (size_t)n >= sizeof(buf))
		n = 0;
	m = vsnprintf(buf + n, sizeof(buf) - n, fmt, ap);
	if (m < 0)
		m = 0;
	n += m;
	if ((size_t)n >= sizeof(buf) - 2)
		n = sizeof(buf) - 2;
	if (err != NULL) {
		m = snprintf(buf + n, sizeof(buf) - n, ": %s", err);
		if (m > 0)
			n += m;
		if ((size_t)n >= sizeof(buf) - 2)
			n = sizeof(buf) - 2;
	}
	/*
	 * Messages quote strings from the wire (error texts, ids): a control
	 * character there could end the line and forge the next one.
	 */
	for (int i = 0; i < n; i++)
		if ((unsigned char)buf[i] < 0x20 || buf[i] == 0x7f)
			buf[i] = '?';
	buf[n++] = '\n';
	(void)!write(STDERR_FILENO, buf, n);
}

#define LOGFN(name, level, witherr)					\
void									\
name(const char *fmt, ...)						\
{									\
	int saved = errno;						\
	va_list ap;							\
	va_start(ap, fmt);						\
	vlog(level, fmt, ap, witherr ? strerror(saved) : NULL);		\
	va_end(ap);							\
	errno = saved;							\
}

LOGFN(log_warn, LOG_L_WARN, 1)
LOGFN(log_warnx, LOG_L_WARN, 0)
LOGFN(log_info, LOG_L_INFO, 0)
LOGFN(log_debug, LOG_L_DEBUG, 0)

void
fatal(const char *fmt, ...)
{
	int saved = errno;
	va_list ap;

	va_start(ap, fmt);
	vlog(LOG_L_ERROR, fmt, ap, strerror(saved));
	va_end(ap);
	exit(1);
}

void
fatalx(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vlog(LOG_L_ERROR, fmt, ap, NULL);
	va_end(ap);
	exit(1);
}
