/*
 * log: OpenBSD-style logging to stderr, one write(2) per line so lines from
 * worker threads never interleave. Safe from any thread; errno is preserved.
 */
#ifndef SHARED_LOG_H
#define SHARED_LOG_H

#include <stdarg.h>

enum log_level { LOG_L_ERROR = 0, LOG_L_WARN, LOG_L_INFO, LOG_L_DEBUG };

/* Sets the program tag and level. Call once before threads start. */
void	log_init(const char *tag, int level);
/* Changes the level at run time (SIGHUP); any thread. */
void	log_setlevel(int level);
int	log_getlevel(void);
/* Parses "error|warn|info|debug"; returns the level or -1. */
int	log_level_parse(const char *s);
const char *log_level_name(int level);

/* log_warn appends ": strerror(errno)"; the x variants do not. */
void	log_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void	log_warnx(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void	log_info(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void	log_debug(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void	fatal(const char *fmt, ...)
    __attribute__((format(printf, 1, 2), noreturn));
void	fatalx(const char *fmt, ...)
    __attribute__((format(printf, 1, 2), noreturn));

#endif
