/*
 * text: the bounded text input every reader of shared/data and the
 * MovieLens loaders share: a buffered line reader (1 MiB read(2) chunks,
 * lines longer than DATASET_LINE_MAX reported and skipped whole), fields
 * split in place, and numbers parsed by hand (no sscanf, no locale), each
 * parser bounded by its field's length, so garbage input can only produce
 * an error. Errors are "path:line: what", the first one kept. Any thread,
 * on objects it owns.
 */
#ifndef SHARED_DATA_TEXT_H
#define SHARED_DATA_TEXT_H

#include <stddef.h>
#include <stdint.h>

#include "shared/data/dataset.h"

#define TEXT_LR_BUFSZ	(1u << 20)

/* Where errors go, and whether a bad line is skipped (1) or fatal (0). */
struct text_ectx {
	struct dataset_err *err;
	int	 skip;
};

struct text_lr {
	int	 fd;
	const char *path;
	char	*buf;
	size_t	 beg, end, cap;
	size_t	 lineno;
	int	 eof;
	int	 skipping;	/* inside an over-long line */
};

/* text_lr_next's results */
enum { TEXT_LR_EOF = 0, TEXT_LR_LINE = 1, TEXT_LR_LONG = 2, TEXT_LR_IOERR = -1 };

/* A field: a slice of the line, not NUL-terminated. */
struct text_fld {
	char	*p;
	size_t	 n;
};

void	text_err_set(struct dataset_err *err, const char *fmt, ...)
	    __attribute__((format(printf, 2, 3)));
int	text_bad_line(struct text_ectx *e, const char *path, size_t line,
	    const char *what);
int	text_lr_open(struct text_lr *r, const char *path);
void	text_lr_close(struct text_lr *r);
int	text_lr_next(struct text_lr *r, char **line, size_t *len);
int	text_split_c(char *s, size_t n, char d, struct text_fld *f, int max);
int	text_split_first(char *s, size_t n, char d, struct text_fld *f, int k);
int	text_parse_idlist(const char *p, size_t n, uint32_t lim, uint32_t *out,
	    int max);
int	text_split_cc(char *s, size_t n, struct text_fld *f, int max);
int	text_split_csv(char *s, size_t n, struct text_fld *f, int max);
int	text_parse_u64(const char *p, size_t n, uint64_t *out);
int	text_parse_u32(const char *p, size_t n, uint32_t *out);
int	text_parse_i64(const char *p, size_t n, int64_t *out);
int	text_parse_dbl(const char *p, size_t n, double *out);

#endif
