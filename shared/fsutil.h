/*
 * fsutil: small file-system helpers both daemons need. Any thread.
 */
#ifndef SHARED_FSUTIL_H
#define SHARED_FSUTIL_H

#include <sys/types.h>

/* mkdir -p: creates path and its missing parents. Returns 0 or -1 (errno). */
int	fs_mkdirs(const char *path, mode_t mode);

#endif
