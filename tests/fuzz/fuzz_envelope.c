/*
 * fuzz_envelope: libFuzzer harness for the envelope codec and the
 * authentication layer: wire_unpack() of arbitrary bytes, then, as cloudd
 * does for the device socket, the MAC trailer check and verification with a
 * fixed session key, the decryption of a sealed body, and the names used in
 * logs. Also packs what decoded back and re-decodes it (round trip).
 */
#include <nanomsg/nn.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "shared/auth.h"
#include "shared/wire.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct auth_key key;
	static uint8_t spk[32], ssk[64];
	static int init;
	Dccl__Envelope *e = NULL;
	char err[256];
	int code;

	if (!init) {
		auth_token_key("fuzz-token", &key);
		auth_announce_keypair(key.mac, spk, ssk);
		init = 1;
	}
	/* The device socket's walk before unpacking (no allocation). */
	(void)wire_precheck_device(data, size, err, sizeof(err));
	code = wire_unpack(data, size, &e, err, sizeof(err));
	if (e != NULL) {
		(void)wire_body_name(e->body_case);
		(void)wire_error_name(e->body_case == DCCL__ENVELOPE__BODY_ERROR
		    ? (int)e->error->code : code);
		if (code == 0 && auth_has_mac(data, size, e))
			(void)auth_verify(data, size, e, &key, AUTH_UP);
		/* Decrypt whatever is sealed, as after a good MAC. */
		if (code == 0)
			(void)auth_unseal(e, &key, AUTH_UP);
		/* What a device does with an announcement or a Registered
		 * (protocol v3): verify the signature, check the key's MAC. */
		if (code == 0 && e->body_case == DCCL__ENVELOPE__BODY_ANNOUNCE)
			(void)auth_announce_verify(spk, e->announce);
		if (code == 0 && e->body_case ==
		    DCCL__ENVELOPE__BODY_REGISTERED) {
			struct auth_dev a;
			memset(&a, 0, sizeof(a));
			a.have_cpk = 1;
			a.down = key;
			(void)auth_dev_set_announce_key(&a,
			    e->registered->announce_key.data,
			    e->registered->announce_key.len,
			    e->registered->announce_key_mac.data,
			    e->registered->announce_key_mac.len);
		}
		if (code == 0 && e->body_case == DCCL__ENVELOPE__BODY_UPLOAD)
			for (size_t i = 0; i < e->upload->n_tensors; i++)
				(void)wire_tensor_check(e->upload->tensors[i],
				    1 << 20, err, sizeof(err));
		{
			struct auth_seal s;
			void *msg;
			size_t len;
			Dccl__Envelope *back = NULL;
			memset(&s, 0, sizeof(s));
			s.mode = AUTH_ENCRYPT;
			s.dir = AUTH_DOWN;
			s.counter = e->counter;
			s.key = key;
			/*
			 * protobuf-c accepts some inputs (e.g. a field number
			 * 0 inside a sub-message) that it then cannot decode
			 * once re-encoded; only check our seal on envelopes
			 * that survive a plain round trip.
			 */
			int plain_ok = 0;
			if (wire_pack_nn(e, &msg, &len) == 0) {
				plain_ok = wire_unpack(msg, len, &back, err,
				    sizeof(err)) == 0;
				wire_free(back);
				back = NULL;
				nn_freemsg(msg);
			}
			if (plain_ok && auth_pack_nn(e, &s, &msg, &len) == 0) {
				if (wire_unpack(msg, len, &back, err,
				    sizeof(err)) == 0 &&
				    (auth_verify(msg, len, back, &key,
				    AUTH_DOWN) != 0 || auth_unseal(back, &key,
				    AUTH_DOWN) != 0))
					abort();	/* our own seal must open */
				wire_free(back);
				nn_freemsg(msg);
			}
		}
	}
	wire_free(e);
	return 0;
}
