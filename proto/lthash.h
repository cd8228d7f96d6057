/*
 * lthash: the state digest's homomorphic set hash, LtHash16 with 2048
 * lanes (proto/FORMAT.md, "The state digest"). Each element of the set
 * is named by a 32-byte digest d (an entity digest); its lane vector is
 * the first 4096 bytes of the ChaCha20 keystream under key d, all-zero
 * nonce, block counter from 0, read as 2048 little-endian 16-bit lanes.
 * The set's sum is the lane-wise sum of its elements' vectors mod 2^16,
 * so an element is added or taken out in constant time whatever the size
 * of the set; the published digest is SHA-256 over the sum's 4096 bytes.
 *
 * Call sodium_init() before the first expansion so that libsodium picks
 * its fastest ChaCha20 (the results are the same without it, only slower).
 */
#ifndef LOKET_LTHASH_H
#define LOKET_LTHASH_H

#include <stddef.h>
#include <stdint.h>

#define LTHASH_LANES 2048u
#define LTHASH_BYTES (2u * LTHASH_LANES)

/* A sum of lane vectors, in host byte order; all zeros is the empty set. */
struct lthash {
	uint16_t lane[LTHASH_LANES];
};

/* The empty set. */
void lthash_zero(struct lthash *h);

/* The lane vector of the element named d, as its 4096 bytes. */
void lthash_expand(const uint8_t d[32], uint8_t out[LTHASH_BYTES]);

/* Adds the element named d to h, or takes it out. */
void lthash_add(struct lthash *h, const uint8_t d[32]);
void lthash_sub(struct lthash *h, const uint8_t d[32]);

/* Replaces the element named old by the one named new_d (an entity that changed). */
void lthash_replace(struct lthash *h, const uint8_t old[32], const uint8_t new_d[32]);

/* h += x and h -= x, lane by lane: sums of two sets, or a difference. */
void lthash_add_sum(struct lthash *h, const struct lthash *x);
void lthash_sub_sum(struct lthash *h, const struct lthash *x);

/* 1 if the two sums are equal. */
int lthash_equal(const struct lthash *a, const struct lthash *b);

/* The sum's 4096 bytes (lane i little-endian at bytes 2i, 2i+1), and back. */
void lthash_to_bytes(const struct lthash *h, uint8_t out[LTHASH_BYTES]);
void lthash_from_bytes(struct lthash *h, const uint8_t in[LTHASH_BYTES]);

/* The published state digest: SHA-256 of the sum's 4096 bytes. */
void lthash_digest(const struct lthash *h, uint8_t out[32]);

#endif
