/*
 * sha256: SHA-256 with the CPU's SHA instructions when it has them, else
 * libsodium's portable code (same digests). Changeset hashes, entity
 * digests and the audit all hash every byte they see, and libsodium's
 * SHA-256 alone capped the import, sync and verify rates.
 */
#ifndef LOKET_SHA256_H
#define LOKET_SHA256_H

#include <stddef.h>
#include <stdint.h>

#include <sodium.h>

struct sha256 {
	uint32_t h[8];
	uint8_t buf[64];
	size_t n;
	uint64_t total;
	int hw;
	crypto_hash_sha256_state sod;
};

/* -1: detect on first use; 0: libsodium; 1: SHA-NI (set only if present). Tests set it. */
extern int sha256_hw;

void sha256_init(struct sha256 *c);
void sha256_update(struct sha256 *c, const void *p, size_t len);
void sha256_final(struct sha256 *c, uint8_t out[32]);
void sha256(const void *p, size_t len, uint8_t out[32]);

#endif
