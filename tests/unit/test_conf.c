/*
 * test_conf: unit tests for shared/conf.c, the option table over inih.
 *
 * Each test owns a small config struct described by its own table (all five
 * option types, bounds, an enum and a reloadable flag), writes INI files into
 * a private mkdtemp() directory and captures the error stream with
 * open_memstream(), so that messages ("FILE:LINE: ...") and their line
 * numbers can be checked exactly. Single-threaded; no global state besides
 * the temp directory, which the group teardown removes.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "shared/conf.h"

struct tcfg {
	char	*name;
	int64_t	 port;
	double	 rate;
	int	 verbose;
	int	 mode;
	char	*path;
};

static const char *const modes[] = { "fast", "slow", "exact", NULL };

static const struct conf_opt opts[] = {
	CONF_STR("server.name", offsetof(struct tcfg, name), "dccl", 0,
	    "server name"),
	CONF_INT("server.port", offsetof(struct tcfg, port), "5555", 1, 65535,
	    0, "port"),
	CONF_DBL("train.rate", offsetof(struct tcfg, rate), "0.01", 0, 1, 1,
	    "learning rate"),
	CONF_BOOL("log.verbose", offsetof(struct tcfg, verbose), "no", 1,
	    "verbose logs"),
	CONF_ENUM("train.mode", offsetof(struct tcfg, mode), "fast", modes, 0,
	    "mode"),
	CONF_STR("store.path", offsetof(struct tcfg, path), "", 0, "db path"),
	{ NULL, 0, 0, NULL, 0, 0, NULL, 0, NULL },
};

/* Per-test state: the config, the conf, and a memstream for errors. */
struct fx {
	struct tcfg	 cfg;
	struct conf	 c;
	char		*ebuf;
	size_t		 elen;
	FILE		*err;
	char		 path[600];
};

static char tmpdir[256];
static int file_seq;

static int
group_setup(void **state)
{
	(void)state;
	snprintf(tmpdir, sizeof(tmpdir), "/tmp/test_conf.XXXXXX");
	return mkdtemp(tmpdir) == NULL ? -1 : 0;
}

static int
group_teardown(void **state)
{
	char cmd[300];

	(void)state;
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
	return system(cmd) == 0 ? 0 : -1;
}

static int
setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));

	if (f == NULL)
		return -1;
	f->err = open_memstream(&f->ebuf, &f->elen);
	if (f->err == NULL)
		return -1;
	if (conf_init(&f->c, opts, &f->cfg, f->err) != 0)
		return -1;
	*state = f;
	return 0;
}

static int
teardown(void **state)
{
	struct fx *f = *state;

	conf_fini(&f->c);
	fclose(f->err);
	free(f->ebuf);
	if (f->path[0] != '\0')
		unlink(f->path);
	free(f);
	return 0;
}

/* Writes text to a fresh file in tmpdir; its path goes to f->path. */
static const char *
write_file(struct fx *f, const char *text)
{
	FILE *fp;

	snprintf(f->path, sizeof(f->path), "%s/t%d.conf", tmpdir, file_seq++);
	fp = fopen(f->path, "w");
	assert_non_null(fp);
	assert_int_equal(fputs(text, fp) >= 0, 1);
	assert_int_equal(fclose(fp), 0);
	return f->path;
}

/* The error text so far (NUL-terminated by open_memstream). */
static const char *
errs(struct fx *f)
{
	fflush(f->err);
	return f->ebuf != NULL ? f->ebuf : "";
}

static int
count_lines(const char *s)
{
	int n = 0;

	for (; *s; s++)
		if (*s == '\n')
			n++;
	return n;
}

/* Asserts that the error stream contains "PATH:LINE: " and then needle. */
static void
expect_err_at(struct fx *f, int line, const char *needle)
{
	char pfx[700];
	const char *e = errs(f), *p;

	snprintf(pfx, sizeof(pfx), "%s:%d: ", f->path, line);
	p = strstr(e, pfx);
	if (p == NULL)
		fail_msg("no error at %s in:\n%s", pfx, e);
	if (needle != NULL) {
		const char *eol = strchr(p, '\n');
		const char *q = strstr(p, needle);
		if (q == NULL || (eol != NULL && q > eol))
			fail_msg("error at %s lacks '%s':\n%s", pfx, needle, e);
	}
}

static enum conf_src
src_of(struct fx *f, const char *name)
{
	const struct conf_opt *o = conf_find(opts, name);

	assert_non_null(o);
	return (enum conf_src)f->c.src[o - opts];
}

/* --- tests --------------------------------------------------------------- */

static void
test_defaults(void **state)
{
	struct fx *f = *state;

	assert_string_equal(f->cfg.name, "dccl");
	assert_int_equal(f->cfg.port, 5555);
	assert_true(f->cfg.rate == 0.01);
	assert_int_equal(f->cfg.verbose, 0);
	assert_int_equal(f->cfg.mode, 0);
	assert_string_equal(f->cfg.path, "");
	for (int i = 0; opts[i].name != NULL; i++)
		assert_int_equal(f->c.src[i], CONF_SRC_DEFAULT);
	assert_string_equal(errs(f), "");
	assert_ptr_equal(conf_find(opts, "train.mode"), &opts[4]);
	assert_null(conf_find(opts, "train.nope"));
}

static void
test_bad_default(void **state)
{
	static const struct conf_opt bad[] = {
		CONF_INT("a.n", offsetof(struct tcfg, port), "99", 1, 10, 0,
		    ""),
		CONF_ENUM("a.m", offsetof(struct tcfg, mode), "warp", modes, 0,
		    ""),
		{ NULL, 0, 0, NULL, 0, 0, NULL, 0, NULL },
	};
	struct fx *f = *state;
	struct tcfg cfg;
	struct conf c;

	memset(&cfg, 0, sizeof(cfg));
	assert_int_equal(conf_init(&c, bad, &cfg, f->err), -1);
	assert_non_null(strstr(errs(f), "default: a.n: 99 out of range"));
	assert_non_null(strstr(errs(f), "default: a.m: 'warp' is not one"));
	conf_fini(&c);
}

static void
test_good_file(void **state)
{
	struct fx *f = *state;
	const char *p = write_file(f,
	    "; a comment\n"
	    "# another comment\n"
	    "\n"
	    "[server]\n"
	    "name = cloud-1\n"
	    "port = 7000   ; inline comment\n"
	    "[train]\n"
	    "rate = 0.5\n"
	    "mode = exact\n"
	    "[log]\n"
	    "verbose = yes\n"
	    "[store]\n"
	    "path = /var/lib/dccl/cloud.db\n");

	assert_int_equal(conf_load(&f->c, p), 0);
	assert_string_equal(errs(f), "");
	assert_string_equal(f->cfg.name, "cloud-1");
	assert_int_equal(f->cfg.port, 7000);
	assert_true(f->cfg.rate == 0.5);
	assert_int_equal(f->cfg.verbose, 1);
	assert_int_equal(f->cfg.mode, 2);
	assert_string_equal(f->cfg.path, "/var/lib/dccl/cloud.db");
	for (int i = 0; opts[i].name != NULL; i++)
		assert_int_equal(f->c.src[i], CONF_SRC_FILE);
	assert_string_equal(f->c.file, p);
}

static void
test_bool_spellings(void **state)
{
	static const char *const yes[] = { "yes", "true", "on", "1" };
	static const char *const no[] = { "no", "false", "off", "0" };
	struct fx *f = *state;
	char kv[64];

	for (size_t i = 0; i < 4; i++) {
		snprintf(kv, sizeof(kv), "log.verbose=%s", yes[i]);
		assert_int_equal(conf_set_arg(&f->c, kv, CONF_SRC_FLAG), 0);
		assert_int_equal(f->cfg.verbose, 1);
		snprintf(kv, sizeof(kv), "log.verbose=%s", no[i]);
		assert_int_equal(conf_set_arg(&f->c, kv, CONF_SRC_FLAG), 0);
		assert_int_equal(f->cfg.verbose, 0);
	}
	assert_string_equal(errs(f), "");
}

static void
test_unknown_key(void **state)
{
	struct fx *f = *state;
	const char *p = write_file(f,
	    "[server]\n"
	    "name = x\n"
	    "\n"
	    "nmae = y\n");

	assert_int_equal(conf_load(&f->c, p), 1);
	expect_err_at(f, 4, "unknown option 'server.nmae'");
	assert_int_equal(count_lines(errs(f)), 1);
	/* The good line before it still applied. */
	assert_string_equal(f->cfg.name, "x");
}

static void
test_bad_int(void **state)
{
	struct fx *f = *state;
	const char *p = write_file(f,
	    "[server]\n"
	    "port = 12ab\n");

	assert_int_equal(conf_load(&f->c, p), 1);
	expect_err_at(f, 2, "server.port: expected an integer");
	assert_int_equal(f->cfg.port, 5555);	/* unchanged */
	assert_int_equal(src_of(f, "server.port"), CONF_SRC_DEFAULT);
}

static void
test_int_out_of_range(void **state)
{
	struct fx *f = *state;
	const char *p = write_file(f,
	    "[server]\n"
	    "port = 0\n"
	    "port = 65536\n"
	    "port = 65535\n");

	assert_int_equal(conf_load(&f->c, p), 2);
	expect_err_at(f, 2, "0 out of range [1, 65535]");
	expect_err_at(f, 3, "65536 out of range [1, 65535]");
	assert_int_equal(f->cfg.port, 65535);	/* the bound itself is fine */
}

static void
test_bad_double(void **state)
{
	struct fx *f = *state;
	const char *p = write_file(f,
	    "[train]\n"
	    "rate = fast\n"
	    "rate = nan\n"
	    "rate = 1.5\n"
	    "rate = -0.1\n");

	assert_int_equal(conf_load(&f->c, p), 4);
	expect_err_at(f, 2, "expected a finite number");
	expect_err_at(f, 3, "expected a finite number");
	expect_err_at(f, 4, "out of range");
	expect_err_at(f, 5, "out of range");
	assert_true(f->cfg.rate == 0.01);
}

static void
test_bad_bool(void **state)
{
	struct fx *f = *state;
	const char *p = write_file(f,
	    "[log]\n"
	    "verbose = maybe\n");

	assert_int_equal(conf_load(&f->c, p), 1);
	expect_err_at(f, 2, "log.verbose: expected yes or no");
	assert_int_equal(f->cfg.verbose, 0);
}

static void
test_bad_enum(void **state)
{
	struct fx *f = *state;
	const char *p = write_file(f,
	    "[train]\n"
	    "mode = slow\n"
	    "mode = warp\n");

	assert_int_equal(conf_load(&f->c, p), 1);
	expect_err_at(f, 3, "'warp' is not one of: fast slow exact");
	assert_int_equal(f->cfg.mode, 1);	/* from line 2 */
}

static void
test_outside_section(void **state)
{
	struct fx *f = *state;
	const char *p = write_file(f,
	    "# header\n"
	    "port = 80\n"
	    "[server]\n"
	    "port = 81\n");

	assert_int_equal(conf_load(&f->c, p), 1);
	expect_err_at(f, 2, "option 'port' outside a [section]");
	assert_int_equal(f->cfg.port, 81);
}

static void
test_syntax_error(void **state)
{
	struct fx *f = *state;
	const char *p = write_file(f,
	    "[server]\n"
	    "name = a\n"
	    "this line has no equals sign\n"
	    "port = 99\n");

	assert_int_equal(conf_load(&f->c, p), 1);
	expect_err_at(f, 3, "syntax error");
	/* inih keeps going after a syntax error. */
	assert_int_equal(f->cfg.port, 99);
}

static void
test_all_errors_reported(void **state)
{
	struct fx *f = *state;
	const char *p = write_file(f,
	    "top = 1\n"			/* 1: outside a section */
	    "[server]\n"
	    "port = x\n"		/* 3: bad int */
	    "port = 70000\n"		/* 4: out of range */
	    "colour = red\n"		/* 5: unknown */
	    "[log]\n"
	    "verbose = sometimes\n"	/* 7: bad bool */
	    "[train]\n"
	    "mode = warp\n"		/* 9: bad enum */
	    "[broken\n"			/* 10: syntax (unclosed section) */
	    "rate = 0.25\n");		/* 11: fine, still applied */

	assert_int_equal(conf_load(&f->c, p), 7);
	expect_err_at(f, 1, "outside a [section]");
	expect_err_at(f, 3, "expected an integer");
	expect_err_at(f, 4, "out of range");
	expect_err_at(f, 5, "unknown option 'server.colour'");
	expect_err_at(f, 7, "expected yes or no");
	expect_err_at(f, 9, "is not one of");
	expect_err_at(f, 10, "syntax error");
	assert_int_equal(count_lines(errs(f)), 7);
}

/*
 * conf.h promises that all errors are reported. inih's return value only
 * names the first syntax error line, so a second bad line must be caught by
 * conf.c itself.
 */
static void
test_all_syntax_errors_reported(void **state)
{
	struct fx *f = *state;
	const char *p = write_file(f,
	    "[server]\n"
	    "first bad line\n"
	    "name = ok\n"
	    "second bad line\n");

	assert_int_equal(conf_load(&f->c, p), 2);
	expect_err_at(f, 2, "syntax error");
	expect_err_at(f, 4, "syntax error");
	assert_string_equal(f->cfg.name, "ok");
}

/*
 * A value longer than inih's line buffer (INI_MAX_LINE, 200 bytes) must be
 * either taken whole or reported as an error at its own line, and must not
 * shift the line numbers of later errors.
 */
static void
test_long_line(void **state)
{
	struct fx *f = *state;
	char text[1024], val[301];
	int n, rc;

	memset(val, 'a', 300);
	val[0] = '/';
	val[300] = '\0';
	n = snprintf(text, sizeof(text),
	    "[store]\n"
	    "path = %s\n"
	    "[server]\n"
	    "port = x\n", val);
	assert_true(n > 0 && (size_t)n < sizeof(text));
	write_file(f, text);

	rc = conf_load(&f->c, f->path);
	if (rc == 1) {
		/* Accepted whole; only the bad port is an error. */
		assert_string_equal(f->cfg.path, val);
		expect_err_at(f, 4, "expected an integer");
		assert_int_equal(count_lines(errs(f)), 1);
	} else {
		/* Refused: reported at line 2, and the port at line 4. */
		assert_int_equal(rc, 2);
		expect_err_at(f, 2, NULL);
		expect_err_at(f, 4, "expected an integer");
		assert_string_equal(f->cfg.path, "");
	}
}

static void
test_missing_file(void **state)
{
	struct fx *f = *state;
	char p[600];

	snprintf(p, sizeof(p), "%s/does-not-exist.conf", tmpdir);
	assert_int_equal(conf_load(&f->c, p), -1);
	assert_non_null(strstr(errs(f), p));
	assert_non_null(strstr(errs(f), "No such file"));
	assert_string_equal(f->cfg.name, "dccl");
}

static void
test_empty_file(void **state)
{
	struct fx *f = *state;
	const char *p = write_file(f, "");

	assert_int_equal(conf_load(&f->c, p), 0);
	assert_string_equal(errs(f), "");
	assert_int_equal(f->cfg.port, 5555);
}

static void
test_set_arg(void **state)
{
	struct fx *f = *state;

	assert_int_equal(conf_set_arg(&f->c, "server.port=8080", CONF_SRC_FLAG),
	    0);
	assert_int_equal(f->cfg.port, 8080);
	assert_int_equal(src_of(f, "server.port"), CONF_SRC_FLAG);
	/* Only the first '=' separates; the value may contain more. */
	assert_int_equal(conf_set_arg(&f->c, "server.name=a=b", CONF_SRC_FLAG),
	    0);
	assert_string_equal(f->cfg.name, "a=b");
	/* An empty string value is a value. */
	assert_int_equal(conf_set_arg(&f->c, "store.path=", CONF_SRC_FLAG), 0);
	assert_string_equal(f->cfg.path, "");
	assert_int_equal(conf_set_arg(&f->c, "train.mode=slow", CONF_SRC_FLAG),
	    0);
	assert_int_equal(f->cfg.mode, 1);
	assert_int_equal(conf_set_arg(&f->c, "train.rate=1e-3", CONF_SRC_FLAG),
	    0);
	assert_true(f->cfg.rate == 1e-3);
	assert_string_equal(errs(f), "");
}

static void
test_set_arg_overrides_file(void **state)
{
	struct fx *f = *state;
	const char *p = write_file(f, "[server]\nport = 7000\nname = filed\n");

	assert_int_equal(conf_load(&f->c, p), 0);
	assert_int_equal(conf_set_arg(&f->c, "server.port=7001", CONF_SRC_FLAG),
	    0);
	assert_int_equal(f->cfg.port, 7001);
	assert_int_equal(src_of(f, "server.port"), CONF_SRC_FLAG);
	assert_int_equal(src_of(f, "server.name"), CONF_SRC_FILE);
	assert_int_equal(src_of(f, "train.rate"), CONF_SRC_DEFAULT);
}

static void
test_set_arg_malformed(void **state)
{
	static const char *const bad[] = {
		"server.port",		/* no '=' */
		"=8080",		/* no name */
		"",			/* nothing */
	};
	struct fx *f = *state;
	char longname[400];

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		assert_int_equal(conf_set_arg(&f->c, bad[i], CONF_SRC_FLAG),
		    -1);
		assert_non_null(strstr(errs(f), "expected section.key=value"));
	}
	assert_int_equal(count_lines(errs(f)), 3);

	/* A name longer than any key cannot overflow the name buffer. */
	memset(longname, 'k', sizeof(longname));
	memcpy(longname + 350, "=1", 3);
	assert_int_equal(conf_set_arg(&f->c, longname, CONF_SRC_FLAG), -1);
	assert_int_equal(count_lines(errs(f)), 4);

	assert_int_equal(conf_set_arg(&f->c, "server.nope=1", CONF_SRC_FLAG),
	    -1);
	assert_non_null(strstr(errs(f), "-o: unknown option 'server.nope'"));
	assert_int_equal(conf_set_arg(&f->c, "server.port=99999",
	    CONF_SRC_FLAG), -1);
	assert_non_null(strstr(errs(f), "-o: server.port: 99999 out of range"));
	assert_int_equal(conf_set_arg(&f->c, "server.port=", CONF_SRC_FLAG),
	    -1);
	assert_int_equal(conf_set_arg(&f->c, "log.verbose=2", CONF_SRC_FLAG),
	    -1);
	assert_int_equal(count_lines(errs(f)), 8);
	/* Nothing changed, and nothing is marked as set by a flag. */
	assert_int_equal(f->cfg.port, 5555);
	assert_int_equal(f->cfg.verbose, 0);
	for (int i = 0; opts[i].name != NULL; i++)
		assert_int_equal(f->c.src[i], CONF_SRC_DEFAULT);
}

static void
test_print_sources(void **state)
{
	struct fx *f = *state;
	const char *p = write_file(f, "[train]\nmode = exact\n");
	char *out = NULL, *line;
	size_t len = 0;
	FILE *fp;

	assert_int_equal(conf_load(&f->c, p), 0);
	assert_int_equal(conf_set_arg(&f->c, "log.verbose=on", CONF_SRC_FLAG),
	    0);
	fp = open_memstream(&out, &len);
	assert_non_null(fp);
	conf_print(&f->c, fp);
	fclose(fp);
	assert_int_equal(count_lines(out), 6);

	line = strstr(out, "server.port");
	assert_non_null(line);
	assert_true(strstr(line, "5555") < strchr(line, '\n'));
	assert_true(strstr(line, "# default") < strchr(line, '\n'));

	line = strstr(out, "train.mode");
	assert_non_null(line);
	assert_true(strstr(line, "exact") < strchr(line, '\n'));
	assert_true(strstr(line, "# file") < strchr(line, '\n'));

	line = strstr(out, "log.verbose");
	assert_non_null(line);
	assert_true(strstr(line, "yes") < strchr(line, '\n'));
	assert_true(strstr(line, "# flag, reloadable") < strchr(line, '\n'));

	line = strstr(out, "train.rate");
	assert_non_null(line);
	assert_true(strstr(line, "0.01") < strchr(line, '\n'));
	assert_true(strstr(line, "# default, reloadable") < strchr(line, '\n'));

	line = strstr(out, "server.name");
	assert_non_null(line);
	{
		char one[256];
		size_t n = (size_t)(strchr(line, '\n') - line);
		assert_true(n < sizeof(one));
		memcpy(one, line, n);
		one[n] = '\0';
		assert_non_null(strstr(one, "# default"));
		assert_null(strstr(one, "reloadable"));
	}
	free(out);
}

static void
test_format(void **state)
{
	struct fx *f = *state;
	char buf[64];

	conf_format(conf_find(opts, "server.port"), &f->cfg, buf, sizeof(buf));
	assert_string_equal(buf, "5555");
	conf_format(conf_find(opts, "log.verbose"), &f->cfg, buf, sizeof(buf));
	assert_string_equal(buf, "no");
	conf_format(conf_find(opts, "train.mode"), &f->cfg, buf, sizeof(buf));
	assert_string_equal(buf, "fast");
	conf_format(conf_find(opts, "server.name"), &f->cfg, buf, sizeof(buf));
	assert_string_equal(buf, "dccl");
	/* Truncates, never overflows. */
	conf_format(conf_find(opts, "server.name"), &f->cfg, buf, 3);
	assert_string_equal(buf, "dc");
}

/* Runs under valgrind: strings replaced many times and then freed. */
static void
test_fini_frees(void **state)
{
	struct fx *f = *state;
	const char *p = write_file(f,
	    "[server]\nname = one\nname = two\n[store]\npath = /x\n");

	assert_int_equal(conf_load(&f->c, p), 0);
	assert_int_equal(conf_set_arg(&f->c, "server.name=three",
	    CONF_SRC_FLAG), 0);
	assert_int_equal(conf_load(&f->c, p), 0);	/* reload */
	assert_string_equal(f->cfg.name, "two");
	conf_fini(&f->c);
	assert_null(f->cfg.name);
	assert_null(f->cfg.path);
	assert_null(f->c.src);
	/* A second fini (the teardown's) is harmless. */
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_defaults, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bad_default, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_good_file, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_bool_spellings, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_unknown_key, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_bad_int, setup, teardown),
		cmocka_unit_test_setup_teardown(test_int_out_of_range, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_bad_double, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_bad_bool, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bad_enum, setup, teardown),
		cmocka_unit_test_setup_teardown(test_outside_section, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_syntax_error, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_all_errors_reported, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_all_syntax_errors_reported,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(test_long_line, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_missing_file, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_empty_file, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_set_arg, setup, teardown),
		cmocka_unit_test_setup_teardown(test_set_arg_overrides_file,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(test_set_arg_malformed, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_print_sources, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_format, setup, teardown),
		cmocka_unit_test_setup_teardown(test_fini_frees, setup,
		    teardown),
	};

	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
