/*
 * auth: per-device authentication and optional payload encryption of the
 * envelope (issue 6). Pure functions over libsodium plus the device's key
 * file; no logging, no daemon state. Any thread, on its own objects.
 *
 * Keys. Each device owns an X25519 key pair (crypto_kx), created on first
 * start in its state directory. It registers its public key with a
 * RegisterReq whose envelope is MACed with the enrollment-token key
 * K_tok = BLAKE2b-256("dccl-enroll-v1", token), so only a holder of the
 * cloud's token can enroll, and the token itself never crosses the wire.
 * The cloud answers with its own public key, MACed with K_tok too, and the
 * device pins it. Both sides then derive the same session keys with
 * crypto_kx (device tx = cloud rx); no secret key is ever sent.
 *
 * Pre-enrolment (dcctl enroll): the admin's dcctl makes the key pair,
 * registers the public key with the cloud over the admin socket and writes
 * the key file with the cloud's key already pinned. Such a device needs no
 * token: it MACs its RegisterReq with the session key, which the cloud can
 * derive only for a key it enrolled, and the reply comes back under the
 * reverse session key.
 *
 * Envelope. counter (strictly increasing per device) and mac = BLAKE2b-256
 * keyed with the direction's MAC key over (direction byte || the packed
 * envelope without mac). The sender appends the mac field as the last 35
 * bytes (tag 0xF2 0x03, length 32, tag), so the receiver checks the MAC
 * over exactly the bytes it received, with no re-encoding. With
 * encryption, the body is moved into `sealed`: a random 192-bit nonce,
 * then the packed inner envelope XORed with XChaCha20 under the
 * direction's encryption key and that nonce (protocol version 2; version
 * 1 used the nonce (direction, counter), which a reply shares with its
 * request's resends). The MAC then covers nonce and ciphertext
 * (encrypt-then-MAC). A reply echoes its request's counter, which binds it
 * to that request.
 */
#ifndef SHARED_AUTH_H
#define SHARED_AUTH_H

#include <stddef.h>
#include <stdint.h>

#include "dccl.pb-c.h"

#define AUTH_KEY_LEN	32
#define AUTH_MAC_LEN	32
#define AUTH_TRAILER	(3 + AUTH_MAC_LEN)	/* tag, length, mac */

enum auth_mode { AUTH_OFF = 0, AUTH_MAC = 1, AUTH_ENCRYPT = 2 };
enum auth_dir { AUTH_UP = 1, AUTH_DOWN = 2 };	/* device->cloud, back */

/* One direction's keys. */
struct auth_key {
	uint8_t	mac[AUTH_KEY_LEN];
	uint8_t	enc[AUTH_KEY_LEN];
};

/* How to seal one message: mode AUTH_OFF packs plainly. */
struct auth_seal {
	int		 mode;		/* enum auth_mode */
	int		 dir;		/* enum auth_dir */
	uint64_t	 counter;
	struct auth_key	 key;
};

/* K_tok from the enrollment token; a MAC-only key (enc unused). */
void	auth_token_key(const char *token, struct auth_key *k);
/* Session keys from a crypto_kx exchange: up = device->cloud, down. */
int	auth_session_device(struct auth_key *up, struct auth_key *down,
	    const uint8_t dpk[32], const uint8_t dsk[32], const uint8_t cpk[32]);
int	auth_session_cloud(struct auth_key *up, struct auth_key *down,
	    const uint8_t cpk[32], const uint8_t csk[32], const uint8_t dpk[32]);

/*
 * Packs e into an nn_allocmsg buffer, sealed as s says (sets e->counter;
 * with AUTH_ENCRYPT moves the body into sealed and back before returning,
 * so e is unchanged for the caller). Returns 0 or -ENOMEM.
 */
int	auth_pack_nn(Dccl__Envelope *e, const struct auth_seal *s, void **msg,
	    size_t *len);

/* 1 when buf ends with a mac trailer (the sender sealed it). */
int	auth_has_mac(const void *buf, size_t len, const Dccl__Envelope *e);
/*
 * Checks the MAC of a received, already unpacked envelope against key for
 * direction dir: 0 or -EBADMSG. Constant time in the tag comparison.
 */
int	auth_verify(const void *buf, size_t len, const Dccl__Envelope *e,
	    const struct auth_key *key, int dir);
/*
 * Decrypts e->sealed in place into e's body (after auth_verify). Returns 0
 * (also when nothing is sealed) or -EBADMSG when the plaintext is not one
 * envelope body.
 */
int	auth_unseal(Dccl__Envelope *e, const struct auth_key *key, int dir);

/*
 * The device side: its key pair, the pinned cloud key, the session keys and
 * the counter. The file (mode 0600) holds the key pair, the cloud key and a
 * counter reservation: the counter is persisted AUTH_CTR_BLOCK ahead, so a
 * restart (or kill -9) never reuses a counter, at one fsync'd write per
 * block.
 */
#define AUTH_CTR_BLOCK	1024

struct auth_dev {
	char		 path[1100];
	uint8_t		 pk[32], sk[32], cpk[32];
	int		 have_cpk;
	int		 mode;		/* effective: max(own, cloud's) */
	int		 want;		/* configured auth.mode */
	uint64_t	 ctr, ctr_saved;
	struct auth_key	 tok, up, down;
	int		 have_tok;
	int		 repin;		/* accept one different cloud key */
	uint8_t		 spk[32];	/* the cloud's announcement key */
	int		 have_spk;	/* learned under the session MAC */
};

/*
 * Loads path or creates it with a fresh key pair. token may be NULL or ""
 * (the device cannot enroll then). Returns 0 or -errno.
 */
int	auth_dev_open(struct auth_dev *a, const char *path, const char *token,
	    int mode);
/*
 * Pins the cloud's key and derives session keys; persists. A key other
 * than the one already pinned is refused (-EPERM): whoever holds the
 * token could otherwise answer a re-registration with its own key and
 * read everything after. a->repin (the operator's auth.repin) lets one
 * change through, then clears itself.
 */
int	auth_dev_set_cloud(struct auth_dev *a, const uint8_t cpk[32],
	    int cloud_mode);
/*
 * Seals and packs a request: RegisterReq with K_tok (without a token but
 * with a pinned cloud key: MACed with the session key), others with the
 * session key (plain when mode is off or no cloud key is pinned yet). Sets
 * e->counter; returns 0 or -errno.
 */
int	auth_dev_pack(struct auth_dev *a, Dccl__Envelope *e, void **msg,
	    size_t *len);
/*
 * Checks a reply to the request sent with counter ctr and body req_body.
 * Returns 1 when it is authenticated (and unsealed), 0 when it carries no
 * MAC (callers may accept only an Error then), -1 when it is forged or
 * does not belong to that request.
 */
int	auth_dev_check(struct auth_dev *a, const void *buf, size_t len,
	    Dccl__Envelope *e, uint64_t ctr, int req_body);

/*
 * Writes a new device key file at path, in the format auth_dev_open reads:
 * the key pair pk/sk, the cloud's key cpk pinned with its mode, counters
 * from 0. For a key enrolled beforehand (dcctl enroll): a device that opens
 * it registers without the token (auth_dev_pack). Never replaces an
 * existing file (-EEXIST). 0 or -errno.
 */
int	auth_keyfile_create(const char *path, const uint8_t pk[32],
	    const uint8_t sk[32], const uint8_t cpk[32], int cloud_mode);

/*
 * Signed announcements (protocol version 3). ModelAnnounce goes out on PUB
 * to every device at once, so no session key can authenticate it: the
 * cloud signs it with Ed25519. The signing key is derived from the
 * cloud's X25519 secret key (so replicas, which share that key, sign
 * alike, and nothing new is stored); its public half reaches a device in
 * Registered with a MAC under that device's down session key, which only
 * the holder of the pinned cloud key can compute. A token holder who
 * answers a re-registration therefore cannot substitute its own
 * announcement key, and a device needs no second pin.
 */
#define AUTH_SIG_LEN	64
void	auth_announce_keypair(const uint8_t csk[32], uint8_t spk[32],
	    uint8_t ssk[64]);
/* The MAC of spk that Registered.announce_key_mac carries. */
void	auth_announce_key_mac(uint8_t out[32], const struct auth_key *down,
	    const uint8_t spk[32]);
/* Signs m's fields (not its signature) into m->signature's sig buffer. */
void	auth_announce_sign(const uint8_t ssk[64], Dccl__ModelAnnounce *m,
	    uint8_t sig[AUTH_SIG_LEN]);
/* 0 when m carries a valid signature by spk, else -EBADMSG. */
int	auth_announce_verify(const uint8_t spk[32],
	    const Dccl__ModelAnnounce *m);
/*
 * The device side: takes Registered's announcement key when its MAC
 * checks under a->down (after auth_dev_set_cloud). 0 or -EBADMSG; a
 * failure leaves no key, so announcements are ignored until the next
 * registration.
 */
int	auth_dev_set_announce_key(struct auth_dev *a, const uint8_t *spk,
	    size_t spk_len, const uint8_t *mac, size_t mac_len);
/*
 * 1 when the device may act on m: auth.mode off (nothing is
 * authenticated then), or a valid signature by the learned key. 0 else.
 */
int	auth_dev_announce_ok(const struct auth_dev *a,
	    const Dccl__ModelAnnounce *m);

/* Reads a token file (first line, trimmed) into buf. 0 or -errno. */
int	auth_read_token(const char *path, char *buf, size_t len);
/* A new random token (hex) into buf (>= 2 * n + 1 bytes). */
void	auth_new_token(char *buf, size_t n);

#endif
