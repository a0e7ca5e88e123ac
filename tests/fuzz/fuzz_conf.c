/*
 * fuzz_conf: libFuzzer harness for the INI config parser (shared/conf.c
 * over inih): the input is written to a memfd and loaded against a table
 * with one option of each type; errors go to /dev/null. Also applies the
 * input's first line as a -o override.
 */
#define _GNU_SOURCE
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "shared/conf.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct fc {
	char	*s;
	int64_t	 i;
	double	 d;
	int	 b, e;
};

static const char *const kinds[] = { "auto", "exact", "ivf", NULL };
static const struct conf_opt opts[] = {
	CONF_STR("a.str", offsetof(struct fc, s), "x", 1, "a string"),
	CONF_INT("a.int", offsetof(struct fc, i), "5", -10, 1000000, 1, "i"),
	CONF_DBL("b.dbl", offsetof(struct fc, d), "0.5", 0, 1e9, 0, "d"),
	CONF_BOOL("b.bool", offsetof(struct fc, b), "yes", 0, "b"),
	CONF_ENUM("c.enum", offsetof(struct fc, e), "auto", kinds, 0, "e"),
	{ NULL }
};

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static FILE *devnull;
	struct fc v;
	struct conf c;
	char path[64], line[256];
	int fd;

	if (devnull == NULL)
		devnull = fopen("/dev/null", "w");
	if ((fd = memfd_create("fuzzconf", 0)) < 0)
		return 0;
	if (write(fd, data, size) != (ssize_t)size) {
		close(fd);
		return 0;
	}
	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	memset(&v, 0, sizeof(v));
	if (conf_init(&c, opts, &v, devnull) != 0)
		abort();
	(void)conf_load(&c, path);
	{
		size_t n = 0;
		while (n < size && n < sizeof(line) - 1 && data[n] != '\n' &&
		    data[n] != '\0')
			n++;
		memcpy(line, data, n);
		line[n] = '\0';
		(void)conf_set_arg(&c, line, CONF_SRC_FLAG);
	}
	for (const struct conf_opt *o = opts; o->name; o++) {
		char buf[512];
		conf_format(o, &v, buf, sizeof(buf));
	}
	conf_fini(&c);
	close(fd);
	return 0;
}
