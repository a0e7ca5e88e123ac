/*
 * dcctl: the cloud's admin CLI. It talks to cloudd's admin socket (a
 * local ipc:// endpoint by default) with a blocking REQ socket, one request
 * per invocation, and prints the typed reply. It doubles as the RPC client
 * of the integration tests.
 */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <nanomsg/nn.h>
#include <nanomsg/reqrep.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cloudd/dcctl_app.h"
#include "shared/auth.h"
#include "shared/wire.h"

static void
usage(FILE *f)
{
	fprintf(f,
"usage: dcctl [-s ENDPOINT] [-t SECONDS] COMMAND [ARGS]\n"
"  -s, --socket EP    cloudd admin endpoint (default $DCCL_ADMIN or\n"
"                     ipc:///tmp/dccl-cloudd-admin.ipc)\n"
"  -t, --timeout S    reply timeout (default 30)\n"
"  -o, --output FILE  enroll: the device key file to write (new file)\n"
"  -r, --replace      enroll: replace the key of an enrolled device id\n"
"commands:\n"
"  status             model version, pool, devices, patches, requests\n"
"  import FILE [SCHEMA]  import a samples CSV into the pool (path on the\n"
"                     cloud); with a feature schema file, any header CSV\n"
"                     whose columns it names\n"
"  train [EPOCHS]     train a new model version on the pool\n"
"  distill [EPOCHS]   MoMoDistill the device patches into a new version\n"
"  metrics            the Prometheus exposition (as served on metrics.listen)\n"
"  models             list model versions (CURRENT * = served)\n"
"  model show [V]     one version: parent, size, r_g, checksum, metrics\n"
"  rollback V         make V's weights current as a new version, announced\n"
"  prune [KEEP]       delete all but the KEEP (default models.keep) newest\n"
"                     versions; never the current one; patches are kept\n"
"  devices            list registered devices\n"
"  enroll ID -o FILE  make device ID's key pair, enrol its public key with\n"
"                     cloudd (all replicas) and write the key file that\n"
"                     deviced reads from <data-dir>/ID/auth.key; the device\n"
"                     then needs no enrollment token\n"
"  device [-s EP] event|rank|status ...\n"
"                     a device's local app socket (dcctl device -h)\n");
}

/* A version number from the command line; complains and returns -1. */
static int
parse_u64(const char *s, uint64_t *out)
{
	char *end;
	unsigned long long v;

	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno != 0 || end == s || *end != '\0' || s[0] == '-') {
		fprintf(stderr, "dcctl: '%s' is not a number\n", s);
		return -1;
	}
	*out = v;
	return 0;
}

static int
call(int sock, Dccl__Envelope *req, Dccl__Envelope **rep)
{
	void *msg, *buf = NULL;
	size_t len;
	char err[256];
	int n;

	req->version = WIRE_VERSION;
	req->device_id = "dcctl";
	req->request_id = (uint64_t)time(NULL) << 20 | (uint64_t)getpid();
	if (wire_pack_nn(req, &msg, &len) != 0)
		return -1;
	if (nn_send(sock, &msg, NN_MSG, 0) < 0) {
		fprintf(stderr, "dcctl: send: %s\n", nn_strerror(nn_errno()));
		nn_freemsg(msg);
		return -1;
	}
	if ((n = nn_recv(sock, &buf, NN_MSG, 0)) < 0) {
		fprintf(stderr, "dcctl: no reply from cloudd: %s\n",
		    nn_strerror(nn_errno()));
		return -1;
	}
	if (wire_unpack(buf, (size_t)n, rep, err, sizeof(err)) != 0) {
		fprintf(stderr, "dcctl: bad reply: %s\n", err);
		nn_freemsg(buf);
		wire_free(*rep);
		*rep = NULL;	/* main frees it again */
		return -1;
	}
	nn_freemsg(buf);
	if ((*rep)->body_case == DCCL__ENVELOPE__BODY_ERROR) {
		fprintf(stderr, "dcctl: %s: %s\n",
		    wire_error_name((*rep)->error->code),
		    (*rep)->error->message);
		wire_free(*rep);
		*rep = NULL;
		return -1;
	}
	return 0;
}

/*
 * enroll: refuses a key file that exists or cannot be written before
 * asking the cloud, so a refusal here leaves no key enrolled without its
 * file. Returns 0 or -1 (said on stderr).
 */
static int
enroll_check_out(const char *out)
{
	char dir[PATH_MAX];
	const char *slash = strrchr(out, '/');

	if (access(out, F_OK) == 0) {
		fprintf(stderr, "dcctl: %s exists; a device key file is never "
		    "overwritten (remove it first)\n", out);
		return -1;
	}
	if (slash == NULL)
		snprintf(dir, sizeof(dir), ".");
	else
		snprintf(dir, sizeof(dir), "%.*s", (int)(slash - out + 1), out);
	if (access(dir, W_OK) != 0) {
		fprintf(stderr, "dcctl: %s: %s\n", dir, strerror(errno));
		return -1;
	}
	return 0;
}

/* Writes the key file once the cloud has enrolled the key. */
static int
enroll_finish(const Dccl__Enrolled *en, const char *id, const char *out,
    const uint8_t pk[32], const uint8_t sk[32])
{
	int rc;

	if (en->cloud_pubkey.len != 32 || en->auth_mode < AUTH_MAC ||
	    en->auth_mode > AUTH_ENCRYPT) {
		fprintf(stderr, "dcctl: Enrolled without a valid cloud key or "
		    "mode\n");
		return -1;
	}
	if ((rc = auth_keyfile_create(out, pk, sk, en->cloud_pubkey.data,
	    (int)en->auth_mode)) != 0) {
		fprintf(stderr, "dcctl: %s: %s; device %s is enrolled but has "
		    "no key file: run dcctl enroll --replace %s -o KEYFILE\n",
		    out, strerror(-rc), id, id);
		return -1;
	}
	printf("enrolled %s%s: key file %s (mode 0600; cloud key "
	    "%02x%02x%02x%02x..., auth mode %s)\n", id, en->replaced ?
	    " (its old key is replaced)" : "", out, en->cloud_pubkey.data[0],
	    en->cloud_pubkey.data[1], en->cloud_pubkey.data[2],
	    en->cloud_pubkey.data[3], en->auth_mode == AUTH_ENCRYPT ?
	    "encrypt" : "mac");
	printf("install it as <data-dir>/%s/auth.key on the device; it "
	    "needs no enrollment token\n", id);
	return 0;
}

/*
 * An ipc admin socket in a directory every user may write to (/tmp, the
 * default) can be taken by another local user first; dcctl would then
 * talk to that user's process (dcctl enroll would pin its cloud key). Such
 * a socket must belong to us or to root. 0, or -1 with a message.
 */
static int
admin_socket_owner_ok(const char *ep)
{
	char dir[PATH_MAX], *slash;
	struct stat sd, ss;

	if (strncmp(ep, "ipc://", 6) != 0)
		return 0;
	snprintf(dir, sizeof(dir), "%s", ep + 6);
	if ((slash = strrchr(dir, '/')) == NULL)
		snprintf(dir, sizeof(dir), ".");
	else if (slash == dir)
		dir[1] = '\0';
	else
		*slash = '\0';
	if (stat(dir, &sd) != 0 || !(sd.st_mode & S_IWOTH))
		return 0;	/* only its owner's group can place it */
	if (stat(ep + 6, &ss) != 0)
		return 0;	/* nothing there: connect fails anyway */
	if (ss.st_uid != getuid() && ss.st_uid != 0) {
		fprintf(stderr, "dcctl: %s is in a world-writable directory "
		    "and owned by uid %u, not by you or root: refusing it "
		    "(another user may have taken the path; set "
		    "cloudd.admin-listen to a directory cloudd owns)\n",
		    ep + 6, (unsigned)ss.st_uid);
		return -1;
	}
	return 0;
}

int
main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "socket", required_argument, NULL, 's' },
		{ "timeout", required_argument, NULL, 't' },
		{ "output", required_argument, NULL, 'o' },
		{ "replace", no_argument, NULL, 'r' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 }
	};
	const char *ep = getenv("DCCL_ADMIN");
	Dccl__Envelope req = DCCL__ENVELOPE__INIT, *rep = NULL;
	Dccl__GetStatusReq gs = DCCL__GET_STATUS_REQ__INIT;
	Dccl__AdminImportReq im = DCCL__ADMIN_IMPORT_REQ__INIT;
	Dccl__AdminTrainReq tr = DCCL__ADMIN_TRAIN_REQ__INIT;
	Dccl__AdminListReq ls = DCCL__ADMIN_LIST_REQ__INIT;
	Dccl__AdminMetricsReq mr = DCCL__ADMIN_METRICS_REQ__INIT;
	Dccl__AdminModelShowReq sh = DCCL__ADMIN_MODEL_SHOW_REQ__INIT;
	Dccl__AdminRollbackReq rb = DCCL__ADMIN_ROLLBACK_REQ__INIT;
	Dccl__AdminPruneReq pr = DCCL__ADMIN_PRUNE_REQ__INIT;
	Dccl__AdminDistillReq di = DCCL__ADMIN_DISTILL_REQ__INIT;
	Dccl__AdminEnrollReq en = DCCL__ADMIN_ENROLL_REQ__INIT;
	uint8_t pk[32], sk[32];
	char path[PATH_MAX], spath[PATH_MAX];
	const char *cmd, *out = NULL;
	int replace = 0;
	int ch, sock, tmo = 30000, rc = 1;

	if (ep == NULL)
		ep = "ipc:///tmp/dccl-cloudd-admin.ipc";
	/* A device's app socket: its own options (dcctl_app.c). */
	if (argc > 1 && !strcmp(argv[1], "device"))
		return dcctl_app_main(argc - 1, argv + 1);
	while ((ch = getopt_long(argc, argv, "s:t:o:rh", longopts, NULL)) !=
	    -1) {
		switch (ch) {
		case 's': ep = optarg; break;
		case 't': tmo = atoi(optarg) * 1000; break;
		case 'o': out = optarg; break;
		case 'r': replace = 1; break;
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return 2;
		}
	}
	if (optind >= argc) {
		usage(stderr);
		return 2;
	}
	cmd = argv[optind++];
	if (admin_socket_owner_ok(ep) != 0)
		return 1;
	if (!strcmp(cmd, "status")) {
		req.body_case = DCCL__ENVELOPE__BODY_GET_STATUS;
		req.get_status = &gs;
	} else if (!strcmp(cmd, "import") && optind < argc) {
		if (realpath(argv[optind], path) == NULL) {
			fprintf(stderr, "dcctl: %s: %s\n", argv[optind],
			    strerror(errno));
			return 1;
		}
		im.path = path;
		if (optind + 1 < argc) {
			if (realpath(argv[optind + 1], spath) == NULL) {
				fprintf(stderr, "dcctl: %s: %s\n",
				    argv[optind + 1], strerror(errno));
				return 1;
			}
			im.schema_path = spath;
		}
		req.body_case = DCCL__ENVELOPE__BODY_ADMIN_IMPORT;
		req.admin_import = &im;
	} else if (!strcmp(cmd, "train")) {
		tr.epochs = optind < argc ? (uint32_t)atoi(argv[optind]) : 0;
		req.body_case = DCCL__ENVELOPE__BODY_ADMIN_TRAIN;
		req.admin_train = &tr;
	} else if (!strcmp(cmd, "distill")) {
		di.epochs = optind < argc ? (uint32_t)atoi(argv[optind]) : 0;
		req.body_case = DCCL__ENVELOPE__BODY_ADMIN_DISTILL;
		req.admin_distill = &di;
	} else if (!strcmp(cmd, "metrics")) {
		req.body_case = DCCL__ENVELOPE__BODY_ADMIN_METRICS;
		req.admin_metrics = &mr;
	} else if (!strcmp(cmd, "model") && optind < argc &&
	    !strcmp(argv[optind], "show")) {
		if (optind + 1 < argc && parse_u64(argv[optind + 1],
		    &sh.version) != 0)
			return 2;
		req.body_case = DCCL__ENVELOPE__BODY_ADMIN_MODEL_SHOW;
		req.admin_model_show = &sh;
	} else if (!strcmp(cmd, "rollback") && optind < argc) {
		if (parse_u64(argv[optind], &rb.version) != 0 || rb.version == 0)
			return 2;
		req.body_case = DCCL__ENVELOPE__BODY_ADMIN_ROLLBACK;
		req.admin_rollback = &rb;
	} else if (!strcmp(cmd, "prune")) {
		uint64_t k = 0;
		if (optind < argc && (parse_u64(argv[optind], &k) != 0 ||
		    k == 0 || k > UINT32_MAX))
			return 2;
		pr.keep = (uint32_t)k;
		req.body_case = DCCL__ENVELOPE__BODY_ADMIN_PRUNE;
		req.admin_prune = &pr;
	} else if (!strcmp(cmd, "enroll") && optind + 1 == argc) {
		if (!wire_devid_valid(argv[optind])) {
			fprintf(stderr, "dcctl: '%s': a device id is 1-64 "
			    "characters of [A-Za-z0-9._-]\n", argv[optind]);
			return 2;
		}
		if (out == NULL) {
			fprintf(stderr, "dcctl: enroll needs -o KEYFILE\n");
			return 2;
		}
		if (enroll_check_out(out) != 0)
			return 1;
		if (sodium_init() < 0) {
			fprintf(stderr, "dcctl: libsodium failed to "
			    "initialise\n");
			return 1;
		}
		/* The secret key never leaves this process but in the file. */
		crypto_kx_keypair(pk, sk);
		en.device_id = argv[optind];
		en.pubkey.data = pk;
		en.pubkey.len = sizeof(pk);
		en.replace = replace;
		req.body_case = DCCL__ENVELOPE__BODY_ADMIN_ENROLL;
		req.admin_enroll = &en;
	} else if (!strcmp(cmd, "models") || !strcmp(cmd, "devices")) {
		ls.what = !strcmp(cmd, "devices");
		req.body_case = DCCL__ENVELOPE__BODY_ADMIN_LIST;
		req.admin_list = &ls;
	} else {
		usage(stderr);
		return 2;
	}
	if ((out != NULL || replace) &&
	    req.body_case != DCCL__ENVELOPE__BODY_ADMIN_ENROLL) {
		fprintf(stderr, "dcctl: -o and --replace are for enroll\n");
		return 2;
	}
	if ((sock = nn_socket(AF_SP, NN_REQ)) < 0 ||
	    nn_setsockopt(sock, NN_SOL_SOCKET, NN_RCVTIMEO, &tmo,
	    sizeof(tmo)) < 0 || nn_setsockopt(sock, NN_SOL_SOCKET, NN_SNDTIMEO,
	    &tmo, sizeof(tmo)) < 0 || nn_connect(sock, ep) < 0) {
		fprintf(stderr, "dcctl: %s: %s\n", ep, nn_strerror(nn_errno()));
		return 1;
	}
	if (call(sock, &req, &rep) != 0)
		goto done;
	switch (rep->body_case) {
	case DCCL__ENVELOPE__BODY_STATUS: {
		Dccl__Status *s = rep->status;
		printf("server:        %s\n", s->server);
		printf("model version: %llu%s\n",
		    (unsigned long long)s->model_version,
		    s->training ? " (training)" : "");
		printf("pool size:     %llu\n", (unsigned long long)s->pool_size);
		printf("devices:       %llu\n", (unsigned long long)s->devices);
		printf("patches:       %llu\n", (unsigned long long)s->patches);
		printf("requests:      %llu (%llu errors, %u in flight)\n",
		    (unsigned long long)s->requests,
		    (unsigned long long)s->errors, s->inflight);
		if (s->n_requests_by_type > 0) {
			printf("by type:      ");
			for (size_t i = 0; i < s->n_requests_by_type; i++)
				printf(" %s %.0f", s->requests_by_type[i]->name,
				    s->requests_by_type[i]->value);
			printf("\n");
		}
		printf("last train:    %.2f s\n", s->last_train_seconds);
		printf("last index:    %.2f s\n", s->last_index_seconds);
		printf("dropped:       %llu\n", (unsigned long long)s->dropped);
		printf("uptime:        %.1f s\n", s->uptime);
		break;
	}
	case DCCL__ENVELOPE__BODY_METRICS_TEXT:
		fputs(rep->metrics_text->text, stdout);
		break;
	case DCCL__ENVELOPE__BODY_MODEL_INFO: {
		Dccl__ModelInfo *m = rep->model_info;
		char when[32] = "?";
		time_t t = (time_t)m->created;
		struct tm tm;
		if (gmtime_r(&t, &tm) != NULL)
			strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", &tm);
		printf("version:  %llu%s\n", (unsigned long long)m->version,
		    m->current ? " (current)" : "");
		printf("parent:   %llu\n", (unsigned long long)m->parent);
		if (m->copy_of != 0)
			printf("copy of:  %llu (rollback)\n",
			    (unsigned long long)m->copy_of);
		printf("created:  %s (%lld)\n", when, (long long)m->created);
		printf("size:     %llu bytes\n", (unsigned long long)m->size);
		printf("r_g:      %.4f\n", m->global_ctr);
		printf("checksum: ");
		for (size_t i = 0; i < m->checksum.len; i++)
			printf("%02x", m->checksum.data[i]);
		printf("\n");
		for (size_t i = 0; i < m->n_metrics; i++)
			printf("metric:   %-14s %.6g\n", m->metrics[i]->name,
			    m->metrics[i]->value);
		break;
	}
	case DCCL__ENVELOPE__BODY_ROLLED_BACK:
		printf("rolled back: model v%llu has v%llu's weights (parent "
		    "v%llu); announced\n",
		    (unsigned long long)rep->rolled_back->version,
		    (unsigned long long)rep->rolled_back->copy_of,
		    (unsigned long long)rep->rolled_back->parent);
		break;
	case DCCL__ENVELOPE__BODY_PRUNED: {
		Dccl__Pruned *p = rep->pruned;
		printf("pruned %zu version(s):", p->n_deleted);
		for (size_t i = 0; i < p->n_deleted; i++)
			printf(" v%llu", (unsigned long long)p->deleted[i]);
		printf("%s; %llu bytes freed, %llu version(s) left\n",
		    p->n_deleted ? "" : " none",
		    (unsigned long long)p->bytes,
		    (unsigned long long)p->remaining);
		break;
	}
	case DCCL__ENVELOPE__BODY_IMPORT_DONE:
		printf("imported %llu rows in %.3f s (%.0f rows/s)\n",
		    (unsigned long long)rep->import_done->rows,
		    rep->import_done->seconds, rep->import_done->rows /
		    (rep->import_done->seconds > 0 ?
		    rep->import_done->seconds : 1e-9));
		break;
	case DCCL__ENVELOPE__BODY_ENROLLED:
		if (enroll_finish(rep->enrolled, en.device_id, out, pk, sk) != 0)
			goto done;
		break;
	case DCCL__ENVELOPE__BODY_TRAIN_STARTED:
		printf("training started (base v%llu)\n",
		    (unsigned long long)rep->train_started->base_version);
		break;
	case DCCL__ENVELOPE__BODY_DISTILL_STARTED: {
		Dccl__DistillStarted *d = rep->distill_started;
		printf("distillation started (base v%llu): %u patches, %u stale "
		    "used, %u stale dropped, %u skipped\n",
		    (unsigned long long)d->base_version, d->patches,
		    d->stale_used, d->stale_dropped, d->skipped);
		break;
	}
	case DCCL__ENVELOPE__BODY_LISTING: {
		Dccl__Listing *l = rep->listing;
		if (ls.what == 0) {
			/* CURRENT last: scripts match "^V " on the rows. */
			printf("%-8s %-8s %-10s %-8s %-11s %s\n", "VERSION",
			    "PARENT", "BYTES", "R_G", "CREATED", "CURRENT");
			for (size_t i = 0; i < l->n_models; i++)
				printf("%-8llu %-8llu %-10llu %-8.4f %-11lld "
				    "%s\n",
				    (unsigned long long)l->models[i]->version,
				    (unsigned long long)l->models[i]->parent,
				    (unsigned long long)l->models[i]->size,
				    l->models[i]->global_ctr,
				    (long long)l->models[i]->created,
				    l->models[i]->current ? "*" : "");
		} else {
			printf("%-24s %-8s %-6s %-8s %s\n", "DEVICE", "USER",
			    "CLASS", "PATCHES", "LAST-SEEN");
			for (size_t i = 0; i < l->n_devices; i++)
				printf("%-24s %-8u %-6s %-8llu %lld\n",
				    l->devices[i]->device_id,
				    l->devices[i]->user_id,
				    l->devices[i]->compute_class,
				    (unsigned long long)l->devices[i]->patches,
				    (long long)l->devices[i]->last_seen);
		}
		break;
	}
	default:
		fprintf(stderr, "dcctl: unexpected reply %s\n",
		    wire_body_name(rep->body_case));
		goto done;
	}
	rc = 0;
done:
	sodium_memzero(sk, sizeof(sk));
	wire_free(rep);
	nn_close(sock);
	return rc;
}
