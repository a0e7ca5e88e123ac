/*
 * dccl-embed: an app that links the device library (deviced/dccl_device.h)
 * instead of talking to deviced: the example program of the library, and
 * what tests/integ/embed.sh drives to check that the library answers as
 * deviced's app socket does.
 *
 *   dccl-embed [-f FILE] [-o section.key=value]... < COMMANDS
 *
 * Opens one device with deviced's options, then runs one command per line
 * of standard input, printing what dcctl device prints for the same
 * request (so the two can be compared line for line):
 *
 *   learn [MS]                  run a learning job to its upload (60 s)
 *   poll MS                     let the protocol run for MS
 *   rank TS K ITEM[:GENRES]...  "ITEM SCORE" lines, best first
 *   event TS ITEM 0|1 [GENRES [RATING]]
 *   status
 *
 * A failed command prints "error CODE: message" on stdout and the program
 * goes on; it exits 1 if any command failed, 2 if the device did not open.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "deviced/dccl_device.h"

#define MAX_CAND 100000

static int
u32(const char *s, uint32_t *v)
{
	char *end;
	unsigned long long x;

	errno = 0;
	x = strtoull(s, &end, 10);
	if (errno != 0 || end == s || *end != '\0' || x > UINT32_MAX ||
	    s[0] == '-')
		return -1;
	*v = (uint32_t)x;
	return 0;
}

static int
i64(const char *s, int64_t *v)
{
	char *end;

	errno = 0;
	*v = strtoll(s, &end, 10);
	return errno != 0 || end == s || *end != '\0' ? -1 : 0;
}

static int
report(struct dccl_device *dv, int rc)
{
	if (rc != 0)
		printf("error %d: %s\n", rc, dccl_device_errmsg(dv));
	return rc;
}

static int
cmd_rank(struct dccl_device *dv, char **arg, int n)
{
	static struct dccl_candidate c[MAX_CAND];
	static struct dccl_scored out[MAX_CAND];
	int64_t ts;
	uint32_t k;
	size_t m = 0, got;
	int rc;

	if (n < 2 || i64(arg[0], &ts) != 0 || u32(arg[1], &k) != 0) {
		printf("error %d: rank TS K ITEM[:GENRES]...\n",
		    DCCL_DEVICE_E_BAD_REQUEST);
		return -1;
	}
	for (int i = 2; i < n && m < MAX_CAND; i++, m++) {
		char *g = strchr(arg[i], ':');
		c[m].genres = 0;
		if (g != NULL) {
			*g++ = '\0';
			if (u32(g, &c[m].genres) != 0)
				return report(dv, DCCL_DEVICE_E_BAD_REQUEST);
		}
		if (u32(arg[i], &c[m].item) != 0) {
			printf("error %d: bad item '%s'\n",
			    DCCL_DEVICE_E_BAD_REQUEST, arg[i]);
			return -1;
		}
	}
	if ((rc = report(dv, dccl_device_rank(dv, c, m, ts, k, out, &got))))
		return rc;
	for (size_t i = 0; i < got; i++)
		printf("%u %.9g\n", out[i].item, out[i].score);
	return 0;
}

static int
cmd_event(struct dccl_device *dv, char **arg, int n)
{
	struct dccl_event ev = { 0 };
	struct dccl_event_result r;
	uint32_t clicked;
	int rc;

	if (n < 3 || i64(arg[0], &ev.ts) != 0 || u32(arg[1], &ev.item) != 0 ||
	    u32(arg[2], &clicked) != 0 || clicked > 1 ||
	    (n > 3 && u32(arg[3], &ev.genres) != 0)) {
		printf("error %d: event TS ITEM 0|1 [GENRES [RATING]]\n",
		    DCCL_DEVICE_E_BAD_REQUEST);
		return -1;
	}
	ev.clicked = (int)clicked;
	if (n > 4)
		ev.rating = strtof(arg[4], NULL);
	if ((rc = report(dv, dccl_device_event(dv, &ev, &r))))
		return rc;
	printf("stored: %" PRIu64 " local samples, %" PRIu64 " since the last "
	    "learning job%s%s\n", r.n_samples, r.since_train,
	    r.retrain ? "; retraining" : "", r.oov ? "; new item" : "");
	return 0;
}

static int
cmd_status(struct dccl_device *dv)
{
	struct dccl_device_status st;
	int rc;

	if ((rc = report(dv, dccl_device_status(dv, &st))))
		return rc;
	printf("device:         %s (user %u)\n", st.device_id, st.user_id);
	printf("state:          %s\n", st.state);
	printf("model version:  %" PRIu64 "%s\n", st.model_version,
	    st.personalized ? " (personalized)" : "");
	printf("local samples:  %" PRIu64 " (%" PRIu64 " since the last "
	    "learning job)\n", st.n_samples, st.since_train);
	printf("learning jobs:  %" PRIu64 "\n", st.trainings);
	return 0;
}

int
main(int argc, char **argv)
{
	const char **opts = calloc((size_t)argc + 1, sizeof(char *));
	const char *conf = NULL;
	struct dccl_device *dv;
	static char line[1 << 20], *arg[MAX_CAND + 4];
	char err[512];
	int ch, n_opts = 0, failed = 0;

	if (opts == NULL)
		return 2;
	while ((ch = getopt(argc, argv, "f:o:h")) != -1) {
		switch (ch) {
		case 'f': conf = optarg; break;
		case 'o': opts[n_opts++] = optarg; break;
		default:
			fprintf(stderr, "usage: dccl-embed [-f FILE] "
			    "[-o section.key=value]... < COMMANDS\n");
			free(opts);
			return ch == 'h' ? 0 : 2;
		}
	}
	if (dccl_device_open(&dv, conf, opts, err, sizeof(err)) != 0) {
		fprintf(stderr, "dccl-embed: %s\n", err);
		free(opts);
		return 2;
	}
	while (fgets(line, sizeof(line), stdin) != NULL) {
		int n = 0, rc = 0;
		char *save = NULL;
		for (char *t = strtok_r(line, " \t\n", &save); t != NULL &&
		    n < MAX_CAND + 4; t = strtok_r(NULL, " \t\n", &save))
			arg[n++] = t;
		if (n == 0 || arg[0][0] == '#')
			continue;
		if (strcmp(arg[0], "learn") == 0)
			rc = report(dv, dccl_device_learn(dv, n > 1 ?
			    atoi(arg[1]) : 60000));
		else if (strcmp(arg[0], "poll") == 0)
			rc = dccl_device_poll(dv, n > 1 ? atoi(arg[1]) : 0);
		else if (strcmp(arg[0], "rank") == 0)
			rc = cmd_rank(dv, arg + 1, n - 1);
		else if (strcmp(arg[0], "event") == 0)
			rc = cmd_event(dv, arg + 1, n - 1);
		else if (strcmp(arg[0], "status") == 0)
			rc = cmd_status(dv);
		else {
			printf("error %d: unknown command '%s'\n",
			    DCCL_DEVICE_E_BAD_REQUEST, arg[0]);
			rc = -1;
		}
		if (rc != 0)
			failed = 1;
		printf("--\n");
		fflush(stdout);
	}
	dccl_device_close(dv);
	free(opts);
	return failed;
}
