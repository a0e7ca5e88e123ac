/*
 * conf: a Redis-style option table over inih. Each option names a
 * "section.key", its type, bounds, default and the offset of its field in
 * the daemon's config struct. Every default lives in the table and nowhere
 * else. Errors name file and line ("cloudd.conf:12: unknown option 'x'");
 * all are reported, then the caller exits. Startup/SIGHUP (loop thread) only.
 */
#ifndef SHARED_CONF_H
#define SHARED_CONF_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

enum conf_type { CONF_T_STR, CONF_T_INT, CONF_T_DBL, CONF_T_BOOL, CONF_T_ENUM };
enum conf_src { CONF_SRC_DEFAULT = 0, CONF_SRC_FILE, CONF_SRC_FLAG };

/* Fields: STR -> char * (owned), INT -> int64_t, DBL -> double,
 * BOOL and ENUM -> int (ENUM holds the index into enums[]). */
struct conf_opt {
	const char		*name;	/* "section.key" */
	enum conf_type		 type;
	size_t			 off;
	const char		*def;	/* default, as it would be written */
	double			 min, max;	/* INT, DBL bounds */
	const char *const	*enums;		/* ENUM: NULL-terminated */
	int			 reload;	/* SIGHUP may change it */
	const char		*help;
};

#define CONF_STR(n, o, d, r, h)  { n, CONF_T_STR, o, d, 0, 0, NULL, r, h }
#define CONF_INT(n, o, d, lo, hi, r, h) { n, CONF_T_INT, o, d, lo, hi, NULL, r, h }
#define CONF_DBL(n, o, d, lo, hi, r, h) { n, CONF_T_DBL, o, d, lo, hi, NULL, r, h }
#define CONF_BOOL(n, o, d, r, h) { n, CONF_T_BOOL, o, d, 0, 1, NULL, r, h }
#define CONF_ENUM(n, o, d, e, r, h) { n, CONF_T_ENUM, o, d, 0, 0, e, r, h }

struct conf {
	const struct conf_opt	*opts;	/* terminated by name == NULL */
	void			*base;	/* the daemon's config struct */
	uint8_t			*src;	/* enum conf_src per option */
	char			 file[512];	/* last file loaded */
	FILE			*err;	/* where errors go (stderr) */
};

/* Applies every default. Returns 0, or -1 when a default is invalid. */
int	conf_init(struct conf *c, const struct conf_opt *opts, void *base,
	    FILE *err);
/* Frees owned strings and the source array. */
void	conf_fini(struct conf *c);
/* Reads an INI file; returns the number of errors (0 = OK), -1 if missing. */
int	conf_load(struct conf *c, const char *path);
/* Applies "section.key=value" (the -o flag). Returns 0 or -1 (reported). */
int	conf_set_arg(struct conf *c, const char *kv, enum conf_src src);
/* Sets one option from a string; where names the origin for errors. */
int	conf_set(struct conf *c, const char *name, const char *value,
	    enum conf_src src, const char *where);
/* Prints "key = value  # source" for every option. */
void	conf_print(const struct conf *c, FILE *out);
/*
 * Writes a commented INI example of every option (help, default, range,
 * whether SIGHUP reloads it), grouped by section; the shipped conf files
 * are generated with it.
 */
void	conf_write_example(const struct conf_opt *opts, const char *title,
	    FILE *out);
/* Looks an option up by name; NULL if unknown. */
const struct conf_opt *conf_find(const struct conf_opt *opts, const char *name);
/* Formats an option's current value into buf. */
void	conf_format(const struct conf_opt *o, const void *base, char *buf,
	    size_t len);

#endif
