/*
 * fsutil: small file-system helpers both daemons need. Any thread.
 */
#ifndef SHARED_FSUTIL_H
#define SHARED_FSUTIL_H

#include <sys/types.h>

/* mkdir -p: creates path and its missing parents. Returns 0 or -1 (errno). */
int	fs_mkdirs(const char *path, mode_t mode);
/*
 * All len bytes of p to fd at offset off (pwrite, retried on EINTR and
 * short writes). Returns 0, or -1 with errno (EIO if a write made no
 * progress without one).
 */
int	fs_pwrite_all(int fd, const void *p, size_t len, off_t off);

#endif
