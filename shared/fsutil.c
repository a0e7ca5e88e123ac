/* fsutil: see fsutil.h. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "shared/fsutil.h"

int
fs_mkdirs(const char *path, mode_t mode)
{
	char buf[1024];

	if (snprintf(buf, sizeof(buf), "%s", path) >= (int)sizeof(buf)) {
		errno = ENAMETOOLONG;
		return -1;
	}
	for (char *p = buf + 1; *p; p++)
		if (*p == '/') {
			*p = '\0';
			if (mkdir(buf, mode) != 0 && errno != EEXIST)
				return -1;
			*p = '/';
		}
	return (mkdir(buf, mode) != 0 && errno != EEXIST) ? -1 : 0;
}

int
fs_pwrite_all(int fd, const void *p, size_t len, off_t off)
{
	const char *b = p;

	while (len > 0) {
		ssize_t w = pwrite(fd, b, len, off);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0) {
			if (w == 0)
				errno = EIO;
			return -1;
		}
		b += w;
		len -= (size_t)w;
		off += w;
	}
	return 0;
}
