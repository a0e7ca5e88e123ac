/*
 * conf: see conf.h. inih does the INI syntax; this file maps section.key to
 * the option table, parses and bounds-checks values, and tracks where each
 * value came from for --print-config. inih's handler has no line number in
 * Debian's build, so the stream reader counts lines itself.
 */
#include <errno.h>
#include <ini.h>
#include <sys/types.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "shared/conf.h"
#include "shared/xmalloc.h"

struct conf_parse {
	struct conf	*c;
	FILE		*fp;
	int		 line;
	int		 errors;
};

static const char *const src_names[] = { "default", "file", "flag" };

const struct conf_opt *
conf_find(const struct conf_opt *opts, const char *name)
{
	for (const struct conf_opt *o = opts; o->name != NULL; o++)
		if (strcmp(o->name, name) == 0)
			return o;
	return NULL;
}

static int
parse_bool(const char *v, int *out)
{
	if (!strcmp(v, "yes") || !strcmp(v, "true") || !strcmp(v, "on") ||
	    !strcmp(v, "1"))
		*out = 1;
	else if (!strcmp(v, "no") || !strcmp(v, "false") ||
	    !strcmp(v, "off") || !strcmp(v, "0"))
		*out = 0;
	else
		return -1;
	return 0;
}

/* Parses value into the option's field. Returns NULL or an error string. */
static const char *
apply(const struct conf_opt *o, void *base, const char *v, char *eb,
    size_t el)
{
	char *end;
	void *field = (char *)base + o->off;

	switch (o->type) {
	case CONF_T_STR: {
		char **p = field;
		if (strlen(v) > 4096)
			return "value too long (max 4096)";
		free(*p);
		*p = xstrdup(v);
		return NULL;
	}
	case CONF_T_INT: {
		long long x;
		errno = 0;
		x = strtoll(v, &end, 0);
		if (errno != 0 || end == v || *end != '\0')
			return "expected an integer";
		if ((double)x < o->min || (double)x > o->max) {
			snprintf(eb, el, "%lld out of range [%.0f, %.0f]", x,
			    o->min, o->max);
			return eb;
		}
		*(int64_t *)field = x;
		return NULL;
	}
	case CONF_T_DBL: {
		double x;
		errno = 0;
		x = strtod(v, &end);
		if (errno != 0 || end == v || *end != '\0' || !isfinite(x))
			return "expected a finite number";
		if (x < o->min || x > o->max) {
			snprintf(eb, el, "%g out of range [%g, %g]", x, o->min,
			    o->max);
			return eb;
		}
		*(double *)field = x;
		return NULL;
	}
	case CONF_T_BOOL:
		if (parse_bool(v, field) != 0)
			return "expected yes or no";
		return NULL;
	case CONF_T_ENUM:
		for (int i = 0; o->enums[i] != NULL; i++)
			if (strcmp(o->enums[i], v) == 0) {
				*(int *)field = i;
				return NULL;
			}
		snprintf(eb, el, "'%s' is not one of:", v);
		for (int i = 0; o->enums[i] != NULL; i++) {
			size_t n = strlen(eb);
			snprintf(eb + n, el - n, " %s", o->enums[i]);
		}
		return eb;
	}
	return "bad option type";
}

int
conf_set(struct conf *c, const char *name, const char *value,
    enum conf_src src, const char *where)
{
	const struct conf_opt *o = conf_find(c->opts, name);
	const char *err;
	char eb[512];

	if (o == NULL) {
		fprintf(c->err, "%s: unknown option '%s'\n", where, name);
		return -1;
	}
	if ((err = apply(o, c->base, value, eb, sizeof(eb))) != NULL) {
		fprintf(c->err, "%s: %s: %s\n", where, name, err);
		return -1;
	}
	c->src[o - c->opts] = src;
	return 0;
}

int
conf_init(struct conf *c, const struct conf_opt *opts, void *base, FILE *err)
{
	size_t n = 0;
	int rc = 0;

	memset(c, 0, sizeof(*c));
	c->opts = opts;
	c->base = base;
	c->err = err;
	while (opts[n].name != NULL)
		n++;
	c->src = xcalloc(n + 1, 1);
	for (size_t i = 0; i < n; i++)
		if (conf_set(c, opts[i].name, opts[i].def, CONF_SRC_DEFAULT,
		    "default") != 0)
			rc = -1;
	return rc;
}

void
conf_fini(struct conf *c)
{
	if (c->opts == NULL)
		return;
	for (const struct conf_opt *o = c->opts; o->name != NULL; o++)
		if (o->type == CONF_T_STR) {
			char **p = (char **)((char *)c->base + o->off);
			free(*p);
			*p = NULL;
		}
	free(c->src);
	c->src = NULL;
}

/* 1 if the line is something inih would call a syntax error. */
static int
bad_syntax(const char *l)
{
	while (*l == ' ' || *l == '\t')
		l++;
	if (*l == '\0' || *l == '\n' || *l == '\r' || *l == ';' || *l == '#')
		return 0;
	if (*l == '[')
		return strchr(l, ']') == NULL;
	return strpbrk(l, "=:") == NULL;
}

/*
 * Feeds inih one line at a time, counting lines so the handler can name
 * them. Lines inih would reject (too long for its buffer, no '=' or an
 * unclosed '[') are reported here and replaced by an empty line, so every
 * error is reported and line numbers never shift.
 */
static char *
reader(char *str, int num, void *stream)
{
	struct conf_parse *p = stream;
	char *line = NULL;
	size_t cap = 0;
	ssize_t n = getline(&line, &cap, p->fp);

	if (n < 0) {
		free(line);
		return NULL;
	}
	p->line++;
	if (n >= num - 1) {
		fprintf(p->c->err, "%s:%d: line too long (max %d bytes)\n",
		    p->c->file, p->line, num - 2);
		p->errors++;
		snprintf(str, num, "\n");
	} else if (bad_syntax(line)) {
		fprintf(p->c->err, "%s:%d: syntax error\n", p->c->file,
		    p->line);
		p->errors++;
		snprintf(str, num, "\n");
	} else
		memcpy(str, line, n + 1);
	free(line);
	return str;
}

static int
handler(void *user, const char *section, const char *name, const char *value)
{
	struct conf_parse *p = user;
	char key[256], where[600];

	if (section[0] == '\0') {
		snprintf(where, sizeof(where), "%s:%d", p->c->file, p->line);
		fprintf(p->c->err, "%s: option '%s' outside a [section]\n",
		    where, name);
		p->errors++;
		return 1;
	}
	snprintf(key, sizeof(key), "%s.%s", section, name);
	snprintf(where, sizeof(where), "%s:%d", p->c->file, p->line);
	if (conf_set(p->c, key, value, CONF_SRC_FILE, where) != 0)
		p->errors++;
	return 1;	/* keep going: report every error */
}

int
conf_load(struct conf *c, const char *path)
{
	struct conf_parse p = { c, NULL, 0, 0 };
	int rc;

	snprintf(c->file, sizeof(c->file), "%s", path);
	if ((p.fp = fopen(path, "r")) == NULL) {
		fprintf(c->err, "%s: %s\n", path, strerror(errno));
		return -1;
	}
	rc = ini_parse_stream(reader, &p, handler, &p);
	fclose(p.fp);
	if (rc > 0 && p.errors == 0) {
		/* One inih found that the screening above did not. */
		fprintf(c->err, "%s:%d: syntax error\n", path, rc);
		p.errors++;
	} else if (rc < 0) {
		fprintf(c->err, "%s: cannot parse\n", path);
		p.errors++;
	}
	return p.errors;
}

int
conf_set_arg(struct conf *c, const char *kv, enum conf_src src)
{
	char name[256];
	const char *eq = strchr(kv, '=');

	if (eq == NULL || eq == kv || (size_t)(eq - kv) >= sizeof(name)) {
		fprintf(c->err, "-o %s: expected section.key=value\n", kv);
		return -1;
	}
	memcpy(name, kv, eq - kv);
	name[eq - kv] = '\0';
	return conf_set(c, name, eq + 1, src, "-o");
}

void
conf_format(const struct conf_opt *o, const void *base, char *buf, size_t len)
{
	const void *field = (const char *)base + o->off;

	switch (o->type) {
	case CONF_T_STR:
		snprintf(buf, len, "%s", *(char *const *)field ?
		    *(char *const *)field : "");
		break;
	case CONF_T_INT:
		snprintf(buf, len, "%lld", (long long)*(const int64_t *)field);
		break;
	case CONF_T_DBL:
		snprintf(buf, len, "%g", *(const double *)field);
		break;
	case CONF_T_BOOL:
		snprintf(buf, len, "%s", *(const int *)field ? "yes" : "no");
		break;
	case CONF_T_ENUM:
		snprintf(buf, len, "%s", o->enums[*(const int *)field]);
		break;
	}
}

void
conf_print(const struct conf *c, FILE *out)
{
	char val[4200];

	for (const struct conf_opt *o = c->opts; o->name != NULL; o++) {
		conf_format(o, c->base, val, sizeof(val));
		/*
		 * Secrets (the token, a password in a conninfo: password=,
		 * or a URI's user:password@) stay out.
		 */
		if (val[0] != '\0' && strcmp(val, "\"\"") != 0 &&
		    ((strstr(o->name, "token") != NULL &&
		    strstr(o->name, "token-file") == NULL) ||
		    (strstr(o->name, "conninfo") != NULL &&
		    (strstr(val, "password") != NULL ||
		    (strstr(val, "://") != NULL &&
		    strchr(strstr(val, "://"), '@') != NULL)))))
			snprintf(val, sizeof(val), "<set, not shown>");
		fprintf(out, "%-28s = %-30s # %s%s\n", o->name, val,
		    src_names[c->src[o - c->opts]],
		    o->reload ? ", reloadable" : "");
	}
}

void
conf_write_example(const struct conf_opt *opts, const char *title, FILE *out)
{
	char section[64] = "";

	fprintf(out, "# %s\n#\n# Every option with its default. Generated from the "
	    "option table\n# (--example-config); override any of them with "
	    "-o section.key=value.\n# \"reloadable\": SIGHUP applies a change "
	    "without a restart.\n", title);
	for (const struct conf_opt *o = opts; o->name != NULL; o++) {
		const char *dot = strchr(o->name, '.');
		size_t sl = dot ? (size_t)(dot - o->name) : 0;

		if (sl == 0 || sl >= sizeof(section))
			continue;
		if (strncmp(section, o->name, sl) != 0 || section[sl] != '\0') {
			memcpy(section, o->name, sl);
			section[sl] = '\0';
			fprintf(out, "\n[%s]\n", section);
		}
		fprintf(out, "\n# %s\n", o->help);
		switch (o->type) {
		case CONF_T_INT:
			fprintf(out, "# integer, %.0f..%.0f", o->min, o->max);
			break;
		case CONF_T_DBL:
			fprintf(out, "# number, %g..%g", o->min, o->max);
			break;
		case CONF_T_BOOL:
			fprintf(out, "# yes or no");
			break;
		case CONF_T_ENUM:
			fprintf(out, "# one of:");
			for (int i = 0; o->enums[i] != NULL; i++)
				fprintf(out, " %s", o->enums[i]);
			break;
		case CONF_T_STR:
			fprintf(out, "# string");
			break;
		}
		fprintf(out, "; default %s%s\n%s = %s\n", o->def[0] ? o->def :
		    "(empty)", o->reload ? "; reloadable" : "", dot + 1, o->def);
	}
}
