/*
 * fuzz_dataset: libFuzzer harness for the samples CSV reader
 * (dataset_read_csv, used by cloudd --import, AdminImportReq and the
 * device's local data) on a memfd, and for the packed-model parser
 * (ctr_io_unpack, what a device runs on a downloaded model) on the same
 * bytes.
 */
#define _GNU_SOURCE
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "shared/ml/ctr.h"
#include "shared/ml/ctr_io.h"
#include "shared/data/dataset.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct dataset ds;
	struct dataset_opts o;
	struct dataset_err de;
	struct ctr *m = NULL;
	char path[64], err[256];
	int fd;

	if ((fd = memfd_create("fuzzcsv", 0)) < 0)
		return 0;
	if (write(fd, data, size) != (ssize_t)size) {
		close(fd);
		return 0;
	}
	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	dataset_opts_default(&o);
	memset(&de, 0, sizeof(de));
	dataset_init(&ds);
	(void)dataset_read_csv(&ds, path, &o, &de);
	dataset_fini(&ds);
	close(fd);
	if (ctr_io_unpack(&m, NULL, data, size, err, sizeof(err)) == 0)
		ctr_free(m);
	return 0;
}
