/*
 * manifest: GetManifest (protocol 5). A version's manifest (chunk count,
 * size, the model's BLAKE2b-256 and a BLAKE2b-256 per chunk) is made once per
 * version and chunk size, on first request, and kept for the last
 * MF_SLOTS versions; the reply is MACed or sealed in the device's session
 * like any reply. The chunks themselves then go out unMACed in auth.mode
 * mac (download.c), since the device checks them against it. Loop thread.
 */
#ifndef CLOUDD_MANIFEST_H
#define CLOUDD_MANIFEST_H

#include "cloudd/rpc.h"

void	manifest_rpc(struct cloudd *cd, struct rpc_req *r);
/* Frees the cache (shutdown, or a version's bytes changed). */
void	manifest_cache_free(struct cloudd *cd);

#endif
