/*
 * app_query: the features of a query as the device sees them, and their
 * scoring: what the app socket (app.c) and the evaluation (learn.c) share,
 * so that what the evaluation measures is what an app gets. Pure: any
 * thread; nothing here knows a device, a socket or a loop. See app.h for
 * the feature rules.
 */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "deviced/app_query.h"
#include "shared/ml/ctr.h"
#include "shared/data/dataset.h"
#include "shared/xmalloc.h"

int
app_hist_k(const struct ctr *m)
{
	int K = DATASET_HIST_DEFAULT;

	if (m != NULL && ctr_config(m)->hist_k > K)
		K = ctr_config(m)->hist_k;
	return K > SAMPLE_HIST_MAX ? SAMPLE_HIST_MAX : K;
}

/* Index + 1 of the last sample with ts <= t (0: none); ds in time order. */
static size_t
last_at(const struct dataset *ds, int64_t t)
{
	size_t lo = 0, hi = ds != NULL ? ds->n : 0;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (ds->s[mid].ts <= t)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

/* Sample i of the concatenation a ++ b (a's n_a samples first). */
static const struct sample *
at2(const struct dataset *a, size_t n_a, const struct dataset *b, size_t i,
    const struct dataset **src)
{
	*src = i < n_a ? a : b;
	return i < n_a ? &a->s[i] : &b->s[i - n_a];
}

/*
 * The last K positives of a ++ b at or before second bound: the history of
 * the first sample of the latest second <= bound (samples of one second
 * may share one history: dataset_build_hist), then that second's
 * positives in order.
 */
static size_t
hist_upto(const struct dataset *a, const struct dataset *b, int64_t bound,
    int K, uint32_t *out)
{
	const struct dataset *src;
	const struct sample *s;
	uint32_t buf[2 * SAMPLE_HIST_MAX];
	size_t j, g, n, first, n_a = a != NULL ? a->n : 0;
	int64_t t0;

	if (K <= 0)
		return 0;
	if (K > SAMPLE_HIST_MAX)
		K = SAMPLE_HIST_MAX;
	/* j: one past the last sample at or before bound in a ++ b */
	if ((j = last_at(b, bound)) > 0)
		j += n_a;
	else if ((j = last_at(a, bound)) == 0)
		return 0;
	/* The first sample of that second, which may lie in a. */
	t0 = at2(a, n_a, b, j - 1, &src)->ts;
	for (g = j - 1; g > 0 && at2(a, n_a, b, g - 1, &src)->ts == t0; g--)
		;
	/* Its history (all before t0), then the second's positives. */
	s = at2(a, n_a, b, g, &src);
	n = s->hist_n;
	first = n > (size_t)K ? n - K : 0;
	if (n > first)	/* an empty dataset's history array is NULL */
		memcpy(buf, sample_hist(src, s) + first,
		    (n - first) * sizeof(*buf));
	n -= first;
	for (size_t i = g; i < j; i++) {
		s = at2(a, n_a, b, i, &src);
		if (s->label < 0.5f)
			continue;
		if (n == sizeof(buf) / sizeof(buf[0])) {
			/* keep the last K; the rest can only fall out */
			memmove(buf, buf + n - (size_t)K, (size_t)K *
			    sizeof(*buf));
			n = (size_t)K;
		}
		buf[n++] = s->item;
	}
	first = n > (size_t)K ? n - K : 0;
	if (n > first)
		memcpy(out, buf + first, (n - first) * sizeof(*out));
	return n - first;
}

size_t
app_hist(const struct dataset *a, const struct dataset *b, int64_t ts, int K,
    uint32_t *out)
{
	return hist_upto(a, b, ts, K, out);
}

size_t
app_hist_before(const struct dataset *a, const struct dataset *b, int64_t ts,
    int K, uint32_t *out)
{
	return ts == INT64_MIN ? 0 : hist_upto(a, b, ts - 1, K, out);
}

static size_t
query(struct dataset *q, const struct dataset *a, const struct dataset *b,
    int K, uint32_t user, uint32_t item, uint32_t genres, int64_t ts,
    float label, float rating, int strict)
{
	uint32_t h[SAMPLE_HIST_MAX];
	struct sample x;
	size_t hn;

	/* History first: b may be q itself (app_replay). */
	hn = strict ? app_hist_before(a, b, ts, K, h) :
	    app_hist(a, b, ts, K, h);
	memset(&x, 0, sizeof(x));
	x.user = user;
	x.item = item;
	x.genres = genres;
	x.ts = ts;
	x.label = label;
	x.rating = rating;
	return dataset_append(q, &x, h, hn);
}

size_t
app_query(struct dataset *q, const struct dataset *a, const struct dataset *b,
    int K, uint32_t user, uint32_t item, uint32_t genres, int64_t ts,
    float label, float rating)
{
	return query(q, a, b, K, user, item, genres, ts, label, rating, 0);
}

void
app_replay(struct dataset *q, const struct dataset *local,
    const struct dataset *events, uint32_t user, int K)
{
	dataset_reserve(q, events->n, events->n * (size_t)K);
	/* the events' side values (issue 16) go along */
	q->n_side = events->n_side;
	memcpy(q->side_card, events->side_card, sizeof(q->side_card));
	for (size_t i = 0; i < events->n; i++) {
		const struct sample *s = &events->s[i];
		/* strictly earlier, as the split's files (issue 17) */
		size_t j = query(q, local, q, K, user, s->item, s->genres,
		    s->ts, s->label, s->rating, 1);

		memcpy(q->s[j].side, s->side, sizeof(s->side));
	}
}

int
app_score(struct ctr *m, const struct dataset *q, float *out)
{
	uint32_t *idx;
	int rc;

	if (q->n == 0)
		return -EINVAL;
	idx = xcalloc(q->n, sizeof(*idx));
	for (size_t i = 0; i < q->n; i++)
		idx[i] = (uint32_t)i;
	rc = ctr_predict(m, q, idx, q->n, out);
	free(idx);
	if (rc == 0)
		for (size_t i = 0; i < q->n; i++)
			if (!isfinite(out[i]))
				return -ERANGE;
	return rc;
}
