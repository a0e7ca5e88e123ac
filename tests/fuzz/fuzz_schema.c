/*
 * fuzz_schema: libFuzzer harness for the feature schema parser
 * (schema_parse: what dccl-data and cloudd's import run on a user's
 * schema file). A schema that parses must format to a canonical text that
 * parses back to the same text; a mismatch aborts. The input's tail after
 * a line "--csv--" is also read as a header CSV through the schema
 * (schema_read_csv on a memfd), so the mapped import is fuzzed with it.
 */
#define _GNU_SOURCE
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "shared/data/dataset.h"
#include "shared/data/schema.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const uint8_t *
find_sep(const uint8_t *p, size_t n)
{
	static const char sep[] = "\n--csv--\n";

	for (size_t i = 0; i + sizeof(sep) - 1 <= n; i++)
		if (memcmp(p + i, sep, sizeof(sep) - 1) == 0)
			return p + i;
	return NULL;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct schema s, t;
	char err[256];
	const uint8_t *sep = find_sep(data, size);
	size_t slen = sep ? (size_t)(sep - data) : size;
	char *a, *b;

	schema_init(&s);
	schema_init(&t);
	if (schema_parse(&s, (const char *)data, slen, "fuzz", err,
	    sizeof(err)) != 0)
		return 0;
	a = schema_format(&s);
	if (schema_parse(&t, a, strlen(a), "canon", err, sizeof(err)) != 0)
		abort();
	b = schema_format(&t);
	if (strcmp(a, b) != 0)
		abort();
	free(a);
	free(b);
	if (sep != NULL) {
		struct dataset ds;
		struct dataset_opts o;
		struct dataset_err de;
		char path[64];
		size_t off = slen + 9;
		int fd = memfd_create("fuzzcsv", 0);

		if (fd >= 0 && write(fd, data + off, size - off) ==
		    (ssize_t)(size - off)) {
			snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
			dataset_opts_default(&o);
			dataset_init(&ds);
			(void)schema_read_csv(&ds, path, &s, &o, &de);
			dataset_fini(&ds);
		}
		if (fd >= 0)
			close(fd);
	}
	schema_fini(&s);
	schema_fini(&t);
	return 0;
}
