/*
 * auth: see auth.h for the scheme. Everything here is a pure function of
 * its arguments except the device key file (auth_dev_*), which only the
 * thread owning the struct auth_dev touches.
 */
#include <errno.h>
#include <fcntl.h>
#include <nanomsg/nn.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "shared/auth.h"
#include "shared/wire.h"

/* The mac field (62, length-delimited) as the sender appends it. */
static const uint8_t mac_hdr[3] = { 0xF2, 0x03, AUTH_MAC_LEN };

static void
derive(struct auth_key *k, const uint8_t sess[32])
{
	crypto_generichash(k->mac, 32, (const uint8_t *)"dccl-mac-v1", 11,
	    sess, 32);
	crypto_generichash(k->enc, 32, (const uint8_t *)"dccl-enc-v1", 11,
	    sess, 32);
}

void
auth_token_key(const char *token, struct auth_key *k)
{
	uint8_t t[32];

	crypto_generichash(t, 32, (const uint8_t *)token, strlen(token),
	    (const uint8_t *)"dccl-enroll-v1", 14);
	derive(k, t);
	sodium_memzero(t, sizeof(t));
}

int
auth_session_device(struct auth_key *up, struct auth_key *down,
    const uint8_t dpk[32], const uint8_t dsk[32], const uint8_t cpk[32])
{
	uint8_t rx[32], tx[32];

	if (crypto_kx_client_session_keys(rx, tx, dpk, dsk, cpk) != 0)
		return -EINVAL;
	derive(up, tx);
	derive(down, rx);
	sodium_memzero(rx, 32);
	sodium_memzero(tx, 32);
	return 0;
}

int
auth_session_cloud(struct auth_key *up, struct auth_key *down,
    const uint8_t cpk[32], const uint8_t csk[32], const uint8_t dpk[32])
{
	uint8_t rx[32], tx[32];

	if (crypto_kx_server_session_keys(rx, tx, cpk, csk, dpk) != 0)
		return -EINVAL;
	derive(up, rx);
	derive(down, tx);
	sodium_memzero(rx, 32);
	sodium_memzero(tx, 32);
	return 0;
}

static void
mac_of(uint8_t out[32], const uint8_t key[32], int dir, const void *buf,
    size_t len)
{
	crypto_generichash_state st;
	uint8_t d = (uint8_t)dir;

	crypto_generichash_init(&st, key, 32, 32);
	crypto_generichash_update(&st, &d, 1);
	crypto_generichash_update(&st, buf, len);
	crypto_generichash_final(&st, out, 32);
}

/*
 * Sealed bytes are a random XChaCha20 nonce followed by the ciphertext.
 * The nonce is never derived from the counter: a reply echoes its
 * request's counter, and an exact resend is executed again, so a counter
 * nonce would put two different plaintexts under one keystream.
 */
#define SEAL_NONCE	crypto_stream_xchacha20_NONCEBYTES

int
auth_pack_nn(Dccl__Envelope *e, const struct auth_seal *s, void **msg,
    size_t *len)
{
	Dccl__Envelope inner = DCCL__ENVELOPE__INIT;
	Dccl__Envelope__BodyCase bc = e->body_case;
	ProtobufCBinaryData omac = e->mac, osealed = e->sealed;
	void *body;
	uint8_t *ib = NULL, *m;
	size_t n;

	if (s == NULL || s->mode == AUTH_OFF)
		return wire_pack_nn(e, msg, len);
	memcpy(&body, &e->error, sizeof(body));	/* the oneof's pointer */
	e->counter = s->counter;
	e->mac.len = 0;		/* packed without; restored below */
	e->sealed.len = 0;
	if (s->mode == AUTH_ENCRYPT && bc != DCCL__ENVELOPE__BODY__NOT_SET) {
		inner.body_case = bc;
		memcpy(&inner.error, &body, sizeof(body));
		n = dccl__envelope__get_packed_size(&inner);
		ib = malloc(SEAL_NONCE + n);
		if (ib == NULL) {
			e->mac = omac;
			e->sealed = osealed;
			return -ENOMEM;
		}
		randombytes_buf(ib, SEAL_NONCE);
		dccl__envelope__pack(&inner, ib + SEAL_NONCE);
		crypto_stream_xchacha20_xor(ib + SEAL_NONCE, ib + SEAL_NONCE,
		    n, ib, s->key.enc);
		e->sealed.data = ib;
		e->sealed.len = SEAL_NONCE + n;
		e->body_case = DCCL__ENVELOPE__BODY__NOT_SET;
	}
	n = dccl__envelope__get_packed_size(e);
	m = nn_allocmsg(n + AUTH_TRAILER, 0);
	if (m != NULL) {
		dccl__envelope__pack(e, m);
		memcpy(m + n, mac_hdr, 3);
		mac_of(m + n + 3, s->key.mac, s->dir, m, n);
	}
	/* Give the caller its envelope back as it was. */
	e->body_case = bc;
	memcpy(&e->error, &body, sizeof(body));
	e->mac = omac;
	e->sealed = osealed;
	free(ib);
	if (m == NULL)
		return -ENOMEM;
	*msg = m;
	*len = n + AUTH_TRAILER;
	return 0;
}

int
auth_has_mac(const void *buf, size_t len, const Dccl__Envelope *e)
{
	const uint8_t *b = buf;

	return e != NULL && len >= AUTH_TRAILER && e->mac.len == AUTH_MAC_LEN &&
	    memcmp(b + len - AUTH_TRAILER, mac_hdr, 3) == 0 &&
	    memcmp(b + len - AUTH_MAC_LEN, e->mac.data, AUTH_MAC_LEN) == 0;
}

int
auth_verify(const void *buf, size_t len, const Dccl__Envelope *e,
    const struct auth_key *key, int dir)
{
	uint8_t want[32];

	if (!auth_has_mac(buf, len, e))
		return -EBADMSG;
	mac_of(want, key->mac, dir, buf, len - AUTH_TRAILER);
	return crypto_verify_32(want, (const uint8_t *)buf + len -
	    AUTH_MAC_LEN) == 0 ? 0 : -EBADMSG;
}

int
auth_unseal(Dccl__Envelope *e, const struct auth_key *key, int dir)
{
	Dccl__Envelope *in;
	uint8_t *tmp;
	void *body;
	size_t n;

	if (e->sealed.len == 0)
		return 0;
	if (e->body_case != DCCL__ENVELOPE__BODY__NOT_SET ||
	    e->sealed.len <= SEAL_NONCE)
		return -EBADMSG;	/* both sealed and clear, or no nonce */
	n = e->sealed.len - SEAL_NONCE;
	tmp = malloc(n);
	if (tmp == NULL)
		return -ENOMEM;
	crypto_stream_xchacha20_xor(tmp, e->sealed.data + SEAL_NONCE, n,
	    e->sealed.data, key->enc);
	in = dccl__envelope__unpack(NULL, n, tmp);
	sodium_memzero(tmp, n);
	free(tmp);
	if (in == NULL || in->body_case == DCCL__ENVELOPE__BODY__NOT_SET ||
	    in->sealed.len != 0) {
		if (in != NULL)
			dccl__envelope__free_unpacked(in, NULL);
		return -EBADMSG;
	}
	/*
	 * Move the body over: protobuf-c allocates every sub-message on its
	 * own, so e's free_unpacked frees it like one it decoded itself.
	 */
	memcpy(&body, &in->error, sizeof(body));
	e->body_case = in->body_case;
	memcpy(&e->error, &body, sizeof(body));
	in->body_case = DCCL__ENVELOPE__BODY__NOT_SET;
	dccl__envelope__free_unpacked(in, NULL);
	return 0;
}

/* --- device key file ------------------------------------------------- */

#define KF_MAGIC "DCCLAK1\n"

struct keyfile {
	char		magic[8];
	uint8_t		pk[32], sk[32], cpk[32];
	uint32_t	have_cpk, cmode;
	uint64_t	ctr_saved;
};

/*
 * Writes a key file through a synced temporary file, moved into place:
 * replacing path (rename), or with excl only where none exists (link).
 */
static int
kf_write(const char *path, const uint8_t pk[32], const uint8_t sk[32],
    const uint8_t cpk[32], int have_cpk, int cmode, uint64_t ctr_saved,
    int excl)
{
	struct keyfile kf;
	char tmp[1200];
	int fd, rc = 0;

	memset(&kf, 0, sizeof(kf));
	memcpy(kf.magic, KF_MAGIC, 8);
	memcpy(kf.pk, pk, 32);
	memcpy(kf.sk, sk, 32);
	memcpy(kf.cpk, cpk, 32);
	kf.have_cpk = (uint32_t)have_cpk;
	kf.cmode = (uint32_t)cmode;
	kf.ctr_saved = ctr_saved;
	if (excl)
		snprintf(tmp, sizeof(tmp), "%s.%ld.tmp", path, (long)getpid());
	else
		snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	if ((fd = open(tmp, O_WRONLY | O_CREAT | (excl ? O_EXCL : O_TRUNC),
	    0600)) < 0)
		return -errno;
	if (write(fd, &kf, sizeof(kf)) != (ssize_t)sizeof(kf) ||
	    fsync(fd) != 0)
		rc = errno ? -errno : -EIO;
	close(fd);
	sodium_memzero(&kf, sizeof(kf));
	if (excl) {
		/* link(), unlike rename(), never replaces a file. */
		if (rc == 0 && link(tmp, path) != 0)
			rc = -errno;
		unlink(tmp);
	} else if (rc == 0 && rename(tmp, path) != 0)
		rc = -errno;
	return rc;
}

static int
save(struct auth_dev *a, int cmode)
{
	return kf_write(a->path, a->pk, a->sk, a->cpk, a->have_cpk, cmode,
	    a->ctr_saved, 0);
}

static int
cloud_mode_of(const struct auth_dev *a)
{
	return a->mode > a->want ? a->mode : a->want;
}

int
auth_dev_open(struct auth_dev *a, const char *path, const char *token,
    int mode)
{
	struct keyfile kf;
	int fd;

	if (sodium_init() < 0)
		return -EIO;
	memset(a, 0, sizeof(*a));
	snprintf(a->path, sizeof(a->path), "%s", path);
	a->want = a->mode = mode;
	if (token != NULL && token[0] != '\0') {
		auth_token_key(token, &a->tok);
		a->have_tok = 1;
	}
	if ((fd = open(path, O_RDONLY)) >= 0) {
		ssize_t n = read(fd, &kf, sizeof(kf));
		close(fd);
		if (n != (ssize_t)sizeof(kf) || memcmp(kf.magic, KF_MAGIC, 8))
			return -EBADMSG;
		memcpy(a->pk, kf.pk, 32);
		memcpy(a->sk, kf.sk, 32);
		a->ctr = a->ctr_saved = kf.ctr_saved;
		if (kf.have_cpk && auth_dev_set_cloud(a, kf.cpk,
		    (int)kf.cmode) != 0)
			return -EBADMSG;
		sodium_memzero(&kf, sizeof(kf));
		return 0;
	}
	if (errno != ENOENT)
		return -errno;
	crypto_kx_keypair(a->pk, a->sk);
	return save(a, 0);
}

int
auth_dev_set_cloud(struct auth_dev *a, const uint8_t cpk[32], int cloud_mode)
{
	if (a->have_cpk && sodium_memcmp(a->cpk, cpk, 32) != 0) {
		if (!a->repin)
			return -EPERM;
		a->repin = 0;
	}
	if (auth_session_device(&a->up, &a->down, a->pk, a->sk, cpk) != 0)
		return -EINVAL;
	if (a->have_cpk && sodium_memcmp(a->cpk, cpk, 32) != 0)
		a->have_spk = 0;	/* it came with the old key */
	memcpy(a->cpk, cpk, 32);
	a->have_cpk = 1;
	a->mode = cloud_mode > a->want ? cloud_mode : a->want;
	if (a->want == AUTH_OFF)
		a->mode = AUTH_OFF;
	return save(a, cloud_mode);
}

int
auth_dev_pack(struct auth_dev *a, Dccl__Envelope *e, void **msg, size_t *len)
{
	struct auth_seal s;
	int rc;

	if (a == NULL || a->want == AUTH_OFF)
		return wire_pack_nn(e, msg, len);
	memset(&s, 0, sizeof(s));
	s.dir = AUTH_UP;
	s.counter = ++a->ctr;
	if (a->ctr > a->ctr_saved) {
		/* Reserve the next block before using any counter in it. */
		a->ctr_saved = a->ctr + AUTH_CTR_BLOCK;
		if ((rc = save(a, cloud_mode_of(a))) != 0)
			return rc;
	}
	if (e->body_case == DCCL__ENVELOPE__BODY_REGISTER_REQ) {
		/*
		 * The token if we have one; else a pre-enrolled key (dcctl
		 * enroll) signs with its session key, which the cloud can
		 * check only if it enrolled this very key.
		 */
		if (a->have_tok) {
			s.mode = AUTH_MAC;
			s.key = a->tok;
		} else if (a->have_cpk) {
			s.mode = AUTH_MAC;
			s.key = a->up;
		}
	} else if (a->have_cpk) {
		s.mode = a->mode;
		s.key = a->up;
	}
	if (s.mode == AUTH_OFF)
		e->counter = s.counter;
	rc = auth_pack_nn(e, &s, msg, len);
	sodium_memzero(&s, sizeof(s));
	return rc;
}

int
auth_dev_check(struct auth_dev *a, const void *buf, size_t len,
    Dccl__Envelope *e, uint64_t ctr, int req_body)
{
	const struct auth_key *k;

	if (!auth_has_mac(buf, len, e))
		return 0;
	if (e->counter != ctr)
		return -1;
	if (req_body == DCCL__ENVELOPE__BODY_REGISTER_REQ && a->have_tok)
		k = &a->tok;	/* the key auth_dev_pack signed it with */
	else if (a->have_cpk)
		k = &a->down;
	else
		return -1;
	if (auth_verify(buf, len, e, k, AUTH_DOWN) != 0 ||
	    auth_unseal(e, k, AUTH_DOWN) != 0)
		return -1;
	return 1;
}

void
auth_announce_keypair(const uint8_t csk[32], uint8_t spk[32],
    uint8_t ssk[64])
{
	uint8_t seed[32];

	crypto_generichash(seed, 32, (const uint8_t *)"dccl-announce-v1", 16,
	    csk, 32);
	crypto_sign_seed_keypair(spk, ssk, seed);
	sodium_memzero(seed, sizeof(seed));
}

void
auth_announce_key_mac(uint8_t out[32], const struct auth_key *down,
    const uint8_t spk[32])
{
	crypto_generichash_state st;

	crypto_generichash_init(&st, down->mac, 32, 32);
	crypto_generichash_update(&st, (const uint8_t *)"dccl-announce-key",
	    17);
	crypto_generichash_update(&st, spk, 32);
	crypto_generichash_final(&st, out, 32);
}

/* What is signed: a label, then version, parent, size (LE), checksum. */
static size_t
announce_msg(uint8_t *b, const Dccl__ModelAnnounce *m)
{
	uint64_t v[3] = { m->version, m->parent, m->size };
	size_t n = 16;

	memcpy(b, "dccl-announce-v1", 16);
	for (int i = 0; i < 3; i++)
		for (int j = 0; j < 8; j++)
			b[n++] = (uint8_t)(v[i] >> (8 * j));
	b[n++] = (uint8_t)m->checksum.len;
	if (m->checksum.len > 0)	/* data is NULL when empty */
		memcpy(b + n, m->checksum.data, m->checksum.len);
	return n + m->checksum.len;
}

void
auth_announce_sign(const uint8_t ssk[64], Dccl__ModelAnnounce *m,
    uint8_t sig[AUTH_SIG_LEN])
{
	uint8_t b[16 + 24 + 1 + 32];
	size_t n;

	if (m->checksum.len > 32)
		m->checksum.len = 32;
	n = announce_msg(b, m);
	crypto_sign_detached(sig, NULL, b, n, ssk);
	m->signature.data = sig;
	m->signature.len = AUTH_SIG_LEN;
}

int
auth_announce_verify(const uint8_t spk[32], const Dccl__ModelAnnounce *m)
{
	uint8_t b[16 + 24 + 1 + 32];
	size_t n;

	if (m->signature.len != AUTH_SIG_LEN || m->checksum.len > 32)
		return -EBADMSG;
	n = announce_msg(b, m);
	return crypto_sign_verify_detached(m->signature.data, b, n, spk) == 0 ?
	    0 : -EBADMSG;
}

int
auth_dev_set_announce_key(struct auth_dev *a, const uint8_t *spk,
    size_t spk_len, const uint8_t *mac, size_t mac_len)
{
	uint8_t want[32];
	int ok;

	a->have_spk = 0;
	if (!a->have_cpk || spk_len != 32 || mac_len != 32)
		return -EBADMSG;
	auth_announce_key_mac(want, &a->down, spk);
	ok = sodium_memcmp(want, mac, 32) == 0;
	if (!ok)
		return -EBADMSG;
	memcpy(a->spk, spk, 32);
	a->have_spk = 1;
	return 0;
}

int
auth_dev_announce_ok(const struct auth_dev *a, const Dccl__ModelAnnounce *m)
{
	if (a == NULL || a->want == AUTH_OFF)
		return 1;
	return a->have_spk && auth_announce_verify(a->spk, m) == 0;
}

int
auth_keyfile_create(const char *path, const uint8_t pk[32],
    const uint8_t sk[32], const uint8_t cpk[32], int cloud_mode)
{
	/* The cloud enrolled the key at counter 0. */
	return kf_write(path, pk, sk, cpk, 1, cloud_mode, 0, 1);
}

int
auth_read_token(const char *path, char *buf, size_t len)
{
	FILE *f = fopen(path, "r");
	size_t n;

	if (f == NULL)
		return -errno;
	if (fgets(buf, (int)len, f) == NULL) {
		fclose(f);
		return -EINVAL;
	}
	fclose(f);
	n = strlen(buf);
	while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r' ||
	    buf[n - 1] == ' ' || buf[n - 1] == '\t'))
		buf[--n] = '\0';
	return n > 0 ? 0 : -EINVAL;
}

void
auth_new_token(char *buf, size_t n)
{
	uint8_t r[64];

	if (n > sizeof(r))
		n = sizeof(r);
	randombytes_buf(r, n);
	sodium_bin2hex(buf, 2 * n + 1, r, n);
	sodium_memzero(r, sizeof(r));
}
