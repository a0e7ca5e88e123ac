/*
 * app_query: the features of a query and their scoring, shared by the app
 * socket (app.c) and the evaluation (learn.c). Pure: any thread.
 *
 * Features of a query, as the device sees them: user = the device's user,
 * item and genres from the app, hour and weekday from ts, and history = the
 * device's own last K positives at ts (K = app_hist_k()): the history of
 * the first local sample of the latest second at or before ts, plus that
 * second's positives (samples of one second may share one history, as
 * dataset_build_hist makes them). Replaying a test set (app_replay) takes
 * strictly earlier seconds only, as the split's files do; a live app's
 * events are ordered, so a query sees the events of its own second.
 * Local samples imported from a CSV carry their histories,
 * so a device's histories continue the ones it was given; for a canonical
 * split, replaying the test samples gives exactly the test file's
 * histories (tests/unit/test_app.c).
 */
#ifndef DEVICED_APP_QUERY_H
#define DEVICED_APP_QUERY_H

#include <stddef.h>
#include <stdint.h>

struct ctr;
struct dataset;

/* History length for model m (NULL: the dataset default). */
int	app_hist_k(const struct ctr *m);
/*
 * The last K positives at ts over the samples of a, then b (each in time
 * order; b after a; b may be NULL), oldest first, into out (K). Returns the
 * count.
 */
size_t	app_hist(const struct dataset *a, const struct dataset *b, int64_t ts,
	    int K, uint32_t *out);
/* Same, strictly before ts's second (the split files' rule). */
size_t	app_hist_before(const struct dataset *a, const struct dataset *b,
	    int64_t ts, int K, uint32_t *out);
/*
 * Appends one query sample (user, item, genres, ts, label, rating, history
 * from a and b as above) to q and returns its index.
 */
size_t	app_query(struct dataset *q, const struct dataset *a,
	    const struct dataset *b, int K, uint32_t user, uint32_t item,
	    uint32_t genres, int64_t ts, float label, float rating);
/*
 * The evaluation's queries: replays events (in time order) on top of the
 * local samples as an app would, query first, then the event recorded, so
 * each gets the history an app's rank request would have got at its time,
 * from strictly earlier seconds (app_hist_before: the split's files do not
 * know the order within a second). q (initialised, empty) gets events->n
 * samples in events' order.
 */
void	app_replay(struct dataset *q, const struct dataset *local,
	    const struct dataset *events, uint32_t user, int K);
/*
 * Scores every sample of q with m: out (q->n) gets P(click). Returns 0,
 * -EINVAL (empty q) or -ERANGE (a non-finite score). The one scoring path
 * of the app socket and the evaluation.
 */
int	app_score(struct ctr *m, const struct dataset *q, float *out);

#endif
