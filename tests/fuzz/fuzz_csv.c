/*
 * fuzz_csv: libFuzzer harness for the schema-mapped CSV import
 * (schema_read_csv_ids: what dccl-data split --schema, cloudd --import
 * --schema and dcctl import read). fuzz_schema mutates schema and CSV
 * together, so most of its inputs stop at the schema; here the schema is
 * fixed and every input is a CSV. The first byte picks one of the schemas
 * below (the two fixtures', string ids with a history and every value
 * kind, integer ids and histories) and with its top bit whether bad rows
 * are skipped; the rest is the file. A dataset that reads must hold only
 * ids below its vocabularies and side values up to their cards, and no
 * more buckets than strings; anything else aborts.
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

static const char *const schemas[] = {
	/* tests/fixtures/ctr-log/schema.txt */
	"dccl-schema 1\n"
	"field click label\n"
	"field user user vocab=60\n"
	"field item item vocab=80\n"
	"field time ts\n"
	"field banner_pos cat side=context vocab=8\n"
	"field site_category cat side=item values=news|sports|games|shop|video\n"
	"field device_type cat side=user values=phone|tablet|desktop\n"
	"field device_model hash side=user buckets=32\n",
	/* string ids, a string history, a rating, a bag and a num */
	"dccl-schema 1\n"
	"field u user vocab=64 ids=hash\n"
	"field i item vocab=128 ids=hash\n"
	"field h hist\n"
	"field t ts\n"
	"field r rating threshold=3.5\n"
	"field g bag values=a|b|c\n"
	"field age num side=user bounds=18,25,35.5\n"
	"field c hash side=item buckets=7\n"
	"field x skip\n",
	/* integer ids, an integer history, a label */
	"dccl-schema 1\n"
	"field y label\n"
	"field u user vocab=1000\n"
	"field i item vocab=1000\n"
	"field h hist\n"
	"field g bag vocab=32\n"
	"field p cat side=context vocab=3\n",
	/* tests/fixtures/ctr-log-strid/schema.txt, fewer buckets (faster) */
	"dccl-schema 1\n"
	"field click label\n"
	"field user user vocab=256 ids=hash\n"
	"field item item vocab=256 ids=hash\n"
	"field time ts\n"
	"field banner_pos cat side=context vocab=8\n"
	"field site_category cat side=item values=news|sports|games|shop|video\n"
	"field device_type cat side=user values=phone|tablet|desktop\n"
	"field device_model hash side=user buckets=32\n",
};
#define N_SCHEMAS	(sizeof(schemas) / sizeof(schemas[0]))

static void
check(const struct dataset *ds)
{
	for (size_t i = 0; i < ds->n; i++) {
		const struct sample *s = &ds->s[i];

		if (s->user >= ds->n_users || s->item >= ds->n_items ||
		    !(s->label >= 0 && s->label <= 1) ||
		    s->hist_n > SAMPLE_HIST_MAX)
			abort();
		for (uint32_t k = 0; k < ds->n_side; k++)
			if (s->side[k] > ds->side_card[k])
				abort();
		for (uint32_t k = 0; k < s->hist_n; k++)
			if (ds->hist[s->hist_off + k] >= ds->n_items)
				abort();
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	/* parsed once: a tenth of each run was the fixed schemas' parse */
	static struct schema sc[N_SCHEMAS];
	static int parsed;
	const struct schema *s;
	struct dataset ds;
	struct dataset_opts o;
	struct dataset_err de;
	struct schema_ids ids;
	char err[256], path[64];
	int fd;

	if (!parsed) {
		for (size_t k = 0; k < N_SCHEMAS; k++) {
			schema_init(&sc[k]);
			if (schema_parse(&sc[k], schemas[k], strlen(schemas[k]),
			    "fixed", err, sizeof(err)) != 0)
				abort();
		}
		parsed = 1;
	}
	if (size < 1)
		return 0;
	s = &sc[(data[0] & 0x7f) % N_SCHEMAS];
	if ((fd = memfd_create("fuzzcsv", 0)) < 0)
		return 0;
	if (write(fd, data + 1, size - 1) == (ssize_t)(size - 1)) {
		snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
		dataset_opts_default(&o);
		o.skip_bad = (data[0] & 0x80) != 0;
		dataset_init(&ds);
		if (schema_read_csv_ids(&ds, path, s, &o, &de, &ids) == 0) {
			check(&ds);
			if (ids.user_buckets > ids.user_strings ||
			    ids.item_buckets > ids.item_strings)
				abort();
		}
		dataset_fini(&ds);
	}
	close(fd);
	return 0;
}
