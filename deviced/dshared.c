/* dshared: see dshared.h. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sodium.h>

#include "deviced/dshared.h"
#include "shared/fsutil.h"
#include "shared/ml/ctr_io.h"
#include "shared/ml/ctr_slice.h"
#include "shared/xmalloc.h"

#define REF_MAGIC	"DCCLREF1"	/* never the start of a Model */
#define REF_HEAD	(8 + 32)

static void
path_of(char *p, size_t n, const char *dir, uint64_t version,
    const uint8_t sum[32])
{
	char hex[65];

	sodium_bin2hex(hex, sizeof(hex), sum, 32);
	snprintf(p, n, "%s/shared/v%llu-%s.part", dir,
	    (unsigned long long)version, hex);
}

int
dshared_put(const char *data_dir, uint64_t version, const uint8_t sum[32],
    const void *blob, size_t len)
{
	char dir[PATH_MAX], path[PATH_MAX], tmp[PATH_MAX + 32];
	int fd, rc = 0;

	path_of(path, sizeof(path), data_dir, version, sum);
	if (access(path, F_OK) == 0)
		return 0;	/* written once, by this process or another */
	snprintf(dir, sizeof(dir), "%s/shared", data_dir);
	if (fs_mkdirs(dir, 0750) != 0)
		return -errno;
	/* a name of this process's: other writers race only at rename */
	snprintf(tmp, sizeof(tmp), "%s.%ld.tmp", path, (long)getpid());
	if ((fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC,
	    0640)) < 0)
		return -errno;
	if (fs_pwrite_all(fd, blob, len, 0) != 0 || fsync(fd) != 0)
		rc = -errno;
	if (close(fd) != 0 && rc == 0)
		rc = -errno;
	if (rc == 0 && rename(tmp, path) != 0)
		rc = -errno;
	if (rc != 0) {
		unlink(tmp);
		return rc;
	}
	/* the name before the store's reference to it */
	if ((fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) >= 0) {
		(void)fsync(fd);
		close(fd);
	}
	return 0;
}

int
dshared_get(const char *data_dir, uint64_t version, const uint8_t sum[32],
    void **blob, size_t *len)
{
	char path[PATH_MAX];
	struct stat st;
	uint8_t *b, got[32];
	size_t n = 0;
	int fd;

	*blob = NULL;
	*len = 0;
	path_of(path, sizeof(path), data_dir, version, sum);
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0)
		return errno == ENOENT ? -ENOENT : -EBADMSG;
	if (fstat(fd, &st) != 0 || st.st_size <= 0 ||
	    (uint64_t)st.st_size > CTR_IO_MAX_BYTES) {
		close(fd);
		return -EBADMSG;
	}
	b = xmalloc((size_t)st.st_size);
	while (n < (size_t)st.st_size) {
		ssize_t r = read(fd, b + n, (size_t)st.st_size - n);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			break;
		n += (size_t)r;
	}
	close(fd);
	/* the file's checksum field is the one it is named by (its
	 * content against that checksum: ctr_slice_assemble) */
	if (n != (size_t)st.st_size || ctr_slice_shared_id(b, n, got) != 0 ||
	    sodium_memcmp(got, sum, 32) != 0) {
		free(b);
		return -EBADMSG;
	}
	*blob = b;
	*len = n;
	return 0;
}

void
dshared_prune(const char *data_dir, uint64_t version)
{
	char dir[PATH_MAX], path[PATH_MAX + 300];
	struct dirent *e;
	DIR *dp;

	snprintf(dir, sizeof(dir), "%s/shared", data_dir);
	if ((dp = opendir(dir)) == NULL)
		return;
	while ((e = readdir(dp)) != NULL) {
		unsigned long long v;
		char c;
		/* v<version>-<hex>.part, or a writer's leftover .tmp */
		if (sscanf(e->d_name, "v%llu%c", &v, &c) != 2 || c != '-' ||
		    v >= version)
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
		(void)unlink(path);
	}
	closedir(dp);
}

void
dshared_ref_pack(const uint8_t sum[32], const Dccl__UserRows *rows,
    uint8_t **out, size_t *len)
{
	size_t n = dccl__user_rows__get_packed_size(rows);

	*len = REF_HEAD + n;
	*out = xmalloc(*len);
	memcpy(*out, REF_MAGIC, 8);
	memcpy(*out + 8, sum, 32);
	dccl__user_rows__pack(rows, *out + REF_HEAD);
}

int
dshared_ref_is(const void *blob, size_t len)
{
	return len >= 8 && memcmp(blob, REF_MAGIC, 8) == 0;
}

int
dshared_ref_unpack(const void *blob, size_t len, uint8_t sum[32],
    Dccl__UserRows **rows)
{
	const uint8_t *b = blob;

	*rows = NULL;
	if (!dshared_ref_is(blob, len))
		return 0;
	if (len < REF_HEAD || (*rows = dccl__user_rows__unpack(NULL,
	    len - REF_HEAD, b + REF_HEAD)) == NULL)
		return -EBADMSG;
	memcpy(sum, b + 8, 32);
	return 1;
}
