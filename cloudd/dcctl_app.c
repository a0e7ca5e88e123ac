/*
 * dcctl_app: `dcctl device`, the client of a device's app socket. One
 * blocking REQ socket, one request per invocation, like the rest of dcctl.
 * Values are passed through as given (a NaN rating, an id beyond the
 * vocabulary, too many candidates): checking them is deviced's job, and
 * the integration tests use this client to see that it does.
 */
#include <errno.h>
#include <getopt.h>
#include <nanomsg/nn.h>
#include <nanomsg/reqrep.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "app.pb-c.h"
#include "cloudd/dcctl_app.h"
#include "shared/data/schema.h"

#define MAX_STDIN_CANDIDATES	1000000

static void
usage(FILE *f)
{
	fprintf(f,
"usage: dcctl device [-s EP] [options] COMMAND [ARGS]\n"
"  -s, --socket EP    the device's app socket (default $DCCL_APP), e.g.\n"
"                     ipc://DATA-DIR/DEVICE-ID/app.ipc\n"
"  -t, --timeout S    reply timeout (default 10)\n"
"  -i, --id DEVICE    name the device (checked by deviced)\n"
"  -T, --ts SECONDS   event or ranking time, unix seconds (default now)\n"
"  -k, --top K        rank: return the best K (default all)\n"
"  -r, --rating R     event: explicit rating (default 0 = unknown)\n"
"  -S, --side LIST    event, rank: side values V0,V1,... (one per side field\n"
"                     of the device's data; of every candidate for rank)\n"
"  -c, --schema FILE  ITEMs are ids of the data's feature schema FILE: with\n"
"                     ids=hash any string, hashed as dccl-data did\n"
"commands:\n"
"  event ITEM CLICKED [GENRES]   record an impression; CLICKED 0 or 1,\n"
"                                GENRES a bitmask\n"
"  rank [ITEM[:GENRES]]...       rank candidates, best first (\"ITEM SCORE\"\n"
"                                lines); none or \"-\": read \"ITEM [GENRES]\"\n"
"                                lines from stdin\n"
"  status                        the device's model, samples, retraining\n");
}

static int
parse_u32(const char *s, uint32_t *out, const char *what)
{
	char *end;
	unsigned long long v;

	errno = 0;
	v = strtoull(s, &end, 0);
	if (errno != 0 || end == s || *end != '\0' || s[0] == '-' ||
	    v > UINT32_MAX) {
		fprintf(stderr, "dcctl: %s '%s' is not a 32-bit number\n", what,
		    s);
		return -1;
	}
	*out = (uint32_t)v;
	return 0;
}

/* An item id: a number, or through the schema's item field fi. */
static int
parse_item(const char *s, uint32_t *out, const struct schema_field *fi)
{
	if (fi == NULL)
		return parse_u32(s, out, "item");
	if (schema_encode_id(fi, s, strlen(s), out) != 0) {
		fprintf(stderr, "dcctl: item '%s' is not an id of field '%s'\n",
		    s, fi->name);
		return -1;
	}
	return 0;
}

/* "ITEM" or "ITEM:GENRES" (also "ITEM GENRES" from stdin). */
static int
parse_cand(char *s, Dccl__App__Candidate *c, const struct schema_field *fi)
{
	char *sep = strpbrk(s, ": \t,");

	dccl__app__candidate__init(c);
	if (sep != NULL) {
		*sep++ = '\0';
		sep += strspn(sep, " \t");
		if (*sep != '\0' && parse_u32(sep, &c->genres, "genres") != 0)
			return -1;
	}
	return parse_item(s, &c->item, fi);
}

static const char *
code_name(int code)
{
	const ProtobufCEnumValue *v = protobuf_c_enum_descriptor_get_value(
	    &dccl__app__app_error_code__descriptor, code);

	return v ? v->name : "E_UNKNOWN";
}

static int
exchange(const char *ep, int tmo, Dccl__App__AppRequest *req,
    Dccl__App__AppReply **rep)
{
	size_t len = dccl__app__app_request__get_packed_size(req);
	void *msg, *buf = NULL;
	int sock, n;

	*rep = NULL;
	if ((sock = nn_socket(AF_SP, NN_REQ)) < 0 ||
	    nn_setsockopt(sock, NN_SOL_SOCKET, NN_RCVTIMEO, &tmo,
	    sizeof(tmo)) < 0 || nn_setsockopt(sock, NN_SOL_SOCKET, NN_SNDTIMEO,
	    &tmo, sizeof(tmo)) < 0 || nn_connect(sock, ep) < 0) {
		fprintf(stderr, "dcctl: %s: %s\n", ep, nn_strerror(nn_errno()));
		if (sock >= 0)
			nn_close(sock);
		return -1;
	}
	if ((msg = nn_allocmsg(len ? len : 1, 0)) == NULL) {
		nn_close(sock);
		return -1;
	}
	dccl__app__app_request__pack(req, msg);
	if (nn_send(sock, &msg, NN_MSG, 0) < 0) {
		fprintf(stderr, "dcctl: send: %s\n", nn_strerror(nn_errno()));
		nn_freemsg(msg);
		nn_close(sock);
		return -1;
	}
	if ((n = nn_recv(sock, &buf, NN_MSG, 0)) < 0) {
		fprintf(stderr, "dcctl: no reply from the device: %s\n",
		    nn_strerror(nn_errno()));
		nn_close(sock);
		return -1;
	}
	*rep = dccl__app__app_reply__unpack(NULL, (size_t)n, buf);
	nn_freemsg(buf);
	nn_close(sock);
	if (*rep == NULL) {
		fprintf(stderr, "dcctl: malformed reply (%d bytes)\n", n);
		return -1;
	}
	if ((*rep)->body_case == DCCL__APP__APP_REPLY__BODY_ERROR) {
		fprintf(stderr, "dcctl: %s: %s\n",
		    code_name((*rep)->error->code), (*rep)->error->message);
		return -1;
	}
	return 0;
}

/* Reads candidates, one "ITEM [GENRES]" per line; blank and # lines skip. */
static int
read_stdin(Dccl__App__Candidate **cv, char ***names, size_t *n, size_t *cap,
    const struct schema_field *fi)
{
	char line[256];
	size_t ln = 0;

	while (fgets(line, sizeof(line), stdin) != NULL) {
		char *s = line + strspn(line, " \t");
		ln++;
		s[strcspn(s, "\r\n")] = '\0';
		if (*s == '\0' || *s == '#')
			continue;
		if (*n == MAX_STDIN_CANDIDATES) {
			fprintf(stderr, "dcctl: more than %d candidates\n",
			    MAX_STDIN_CANDIDATES);
			return -1;
		}
		if (*n == *cap) {
			*cap = *cap ? *cap * 2 : 256;
			if ((*cv = realloc(*cv, *cap * sizeof(**cv))) == NULL ||
			    (*names = realloc(*names, *cap * sizeof(**names)))
			    == NULL)
				return -1;
		}
		(*names)[*n] = NULL;
		if (parse_cand(s, &(*cv)[*n], fi) != 0 ||
		    ((*names)[*n] = strdup(s)) == NULL) {
			fprintf(stderr, "dcctl: stdin line %zu\n", ln);
			return -1;
		}
		(*n)++;
	}
	return 0;
}

int
dcctl_app_main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "socket", required_argument, NULL, 's' },
		{ "timeout", required_argument, NULL, 't' },
		{ "id", required_argument, NULL, 'i' },
		{ "ts", required_argument, NULL, 'T' },
		{ "top", required_argument, NULL, 'k' },
		{ "rating", required_argument, NULL, 'r' },
		{ "side", required_argument, NULL, 'S' },
		{ "schema", required_argument, NULL, 'c' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 }
	};
	const char *ep = getenv("DCCL_APP"), *cmd;
	Dccl__App__AppRequest req = DCCL__APP__APP_REQUEST__INIT;
	Dccl__App__RecordEvent ev = DCCL__APP__RECORD_EVENT__INIT;
	Dccl__App__RankRequest rk = DCCL__APP__RANK_REQUEST__INIT;
	Dccl__App__StatusRequest st = DCCL__APP__STATUS_REQUEST__INIT;
	Dccl__App__AppReply *rep = NULL;
	Dccl__App__Candidate *cv = NULL, **cp = NULL;
	char **names = NULL;	/* with --schema: each candidate as given */
	struct schema sc;
	const struct schema_field *fi = NULL;
	char serr[256];
	size_t n = 0, cap = 0;
	long long ts = 0;
	uint32_t k = 0, clicked;
	double rating = 0;
	int ch, tmo = 10000, rc = 2;
	char *end;
	uint32_t side[8];	/* SAMPLE_SIDE_MAX */
	size_t n_side = 0;

	schema_init(&sc);
	optind = 1;
	while ((ch = getopt_long(argc, argv, "s:t:i:T:k:r:S:c:h", longopts, NULL))
	    != -1) {
		switch (ch) {
		case 's': ep = optarg; break;
		case 't': tmo = atoi(optarg) * 1000; break;
		case 'i': req.device_id = optarg; break;
		case 'T':
			errno = 0;
			ts = strtoll(optarg, &end, 10);
			if (errno || end == optarg || *end) {
				fprintf(stderr, "dcctl: bad --ts '%s'\n",
				    optarg);
				goto done;
			}
			break;
		case 'k':
			if (parse_u32(optarg, &k, "--top") != 0)
				goto done;
			break;
		case 'r':
			rating = strtod(optarg, &end);	/* "nan" passes */
			if (end == optarg || *end) {
				fprintf(stderr, "dcctl: bad --rating '%s'\n",
				    optarg);
				goto done;
			}
			break;
		case 'S': {
			/* "v0,v1,...": the side values of the event or of
			 * every candidate */
			char *p = optarg, *q;

			for (n_side = 0; *p != '\0'; n_side++) {
				unsigned long v;

				errno = 0;
				v = strtoul(p, &q, 10);
				if (errno || q == p || v > UINT32_MAX ||
				    n_side == 8 || (*q != ',' && *q != '\0')) {
					fprintf(stderr, "dcctl: bad --side "
					    "'%s'\n", optarg);
					goto done;
				}
				side[n_side] = (uint32_t)v;
				p = *q == ',' ? q + 1 : q;
			}
			break;
		}
		case 'c':
			schema_fini(&sc);
			if (schema_load(&sc, optarg, serr, sizeof(serr)) != 0 ||
			    schema_check(&sc, serr, sizeof(serr)) != 0) {
				fprintf(stderr, "dcctl: %s\n", serr);
				goto done;
			}
			fi = &sc.f[sc.item];
			break;
		case 'h': usage(stdout); goto done0;
		default: usage(stderr); goto done;
		}
	}
	if (optind >= argc) {
		usage(stderr);
		goto done;
	}
	if (ep == NULL) {
		fprintf(stderr, "dcctl: device commands need --socket or "
		    "$DCCL_APP\n");
		goto done;
	}
	cmd = argv[optind++];
	req.version = 2;	/* app protocol 2 (proto/app.proto) */
	req.request_id = (uint64_t)time(NULL) << 20 | (uint64_t)getpid();
	if (!strcmp(cmd, "event") && argc - optind >= 2 &&
	    argc - optind <= 3) {
		if (parse_item(argv[optind], &ev.item, fi) != 0 ||
		    parse_u32(argv[optind + 1], &clicked, "clicked") != 0 ||
		    clicked > 1 || (argc - optind == 3 &&
		    parse_u32(argv[optind + 2], &ev.genres, "genres") != 0)) {
			fprintf(stderr, "dcctl: event ITEM 0|1 [GENRES]\n");
			goto done;
		}
		ev.clicked = clicked;
		ev.n_side = n_side;
		ev.side = side;
		ev.ts = ts;
		ev.rating = (float)rating;
		req.body_case = DCCL__APP__APP_REQUEST__BODY_EVENT;
		req.event = &ev;
	} else if (!strcmp(cmd, "rank")) {
		if (optind == argc || (argc - optind == 1 &&
		    !strcmp(argv[optind], "-"))) {
			if (read_stdin(&cv, &names, &n, &cap, fi) != 0)
				goto done;
		} else {
			n = (size_t)(argc - optind);
			if ((cv = calloc(n, sizeof(*cv))) == NULL ||
			    (names = calloc(n, sizeof(*names))) == NULL)
				goto done;
			for (size_t i = 0; i < n; i++)
				if (parse_cand(argv[optind + i], &cv[i], fi) !=
				    0 || (names[i] = strdup(argv[optind + i])) ==
				    NULL)
					goto done;
		}
		if (n > 0 && (cp = calloc(n, sizeof(*cp))) == NULL)
			goto done;
		for (size_t i = 0; i < n; i++) {
			cp[i] = &cv[i];
			cv[i].n_side = n_side;
			cv[i].side = side;
		}
		rk.n_candidates = n;
		rk.candidates = cp;
		rk.ts = ts;
		rk.k = k;
		req.body_case = DCCL__APP__APP_REQUEST__BODY_RANK;
		req.rank = &rk;
	} else if (!strcmp(cmd, "status")) {
		req.body_case = DCCL__APP__APP_REQUEST__BODY_STATUS;
		req.status = &st;
	} else {
		usage(stderr);
		goto done;
	}
	rc = 1;
	if (exchange(ep, tmo, &req, &rep) != 0)
		goto done;
	switch (rep->body_case) {
	case DCCL__APP__APP_REPLY__BODY_STORED: {
		Dccl__App__EventStored *s = rep->stored;
		printf("stored: %llu local samples, %llu since the last "
		    "learning job, history %u%s%s\n",
		    (unsigned long long)s->n_samples,
		    (unsigned long long)s->since_train, s->hist_n,
		    s->retrain ? "; retraining" : "",
		    s->oov ? "; new item (beyond the model's vocabulary)" : "");
		break;
	}
	case DCCL__APP__APP_REPLY__BODY_RANKED: {
		Dccl__App__Ranked *r = rep->ranked;
		/* stdout: "ITEM SCORE" best first; the rest to stderr. */
		for (size_t i = 0; i < r->n_items && i < r->n_scores; i++) {
			const char *nm = NULL;

			/* with --schema, the id as given */
			for (size_t j = 0; fi != NULL && j < n && nm == NULL;
			    j++)
				if (cv[j].item == r->items[i])
					nm = names[j];
			if (nm != NULL)
				printf("%s %.9g\n", nm, r->scores[i]);
			else
				printf("%u %.9g\n", r->items[i], r->scores[i]);
		}
		fprintf(stderr, "ranked %zu by model v%llu (%s), history %u, "
		    "%u new item(s)\n", r->n_items,
		    (unsigned long long)r->model_version, r->personalized ?
		    "personalized" : "cloud", r->hist_n, r->n_oov);
		break;
	}
	case DCCL__APP__APP_REPLY__BODY_STATUS: {
		Dccl__App__AppStatus *s = rep->status;
		printf("device:         %s (user %u)\n", s->device_id,
		    s->user_id);
		printf("state:          %s\n", s->state);
		printf("model version:  %llu%s\n",
		    (unsigned long long)s->model_version, s->personalized ?
		    " (personalized)" : "");
		printf("item vocab:     %u\n", s->n_items);
		printf("local samples:  %llu (%llu since the last learning "
		    "job; retrain every %u)\n",
		    (unsigned long long)s->n_samples,
		    (unsigned long long)s->since_train, s->retrain_every);
		printf("learning jobs:  %llu\n",
		    (unsigned long long)s->trainings);
		printf("max candidates: %u\n", s->max_candidates);
		break;
	}
	default:
		fprintf(stderr, "dcctl: unexpected reply\n");
		goto done;
	}
	rc = 0;
done:
	if (rep != NULL)
		dccl__app__app_reply__free_unpacked(rep, NULL);
	free(cp);
	free(cv);
	for (size_t i = 0; names != NULL && i < n; i++)
		free(names[i]);
	free(names);
	schema_fini(&sc);
	return rc;
done0:
	schema_fini(&sc);
	return 0;
}
