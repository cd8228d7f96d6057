/*
 * LtHash16 over 2048 lanes, the state digest's set hash (lthash.h says
 * what it computes, proto/FORMAT.md why). The expansion is libsodium's
 * ChaCha20, which picks an AVX2 or SSE code path at sodium_init; the lane
 * arithmetic is plain loops over 16-bit arrays of a fixed length, which
 * the compiler turns into vector adds. The keystream lands in a buffer
 * on the stack (4 KiB, in L1) and is added from there, lane by lane.
 */
#include "proto/lthash.h"

#include <string.h>

#include <sodium.h>

#include "proto/sha256.h"

/* crypto_stream_chacha20 takes the original 8-byte nonce: all zero here. */
static const uint8_t zero_nonce[crypto_stream_chacha20_NONCEBYTES];

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
#define LTHASH_LE 1
#endif

/* The lanes of the element named d, in host order. */
static void lanes_of(const uint8_t d[32], uint16_t k[LTHASH_LANES])
{
#ifdef LTHASH_LE
	crypto_stream_chacha20((uint8_t *)k, LTHASH_BYTES, zero_nonce, d);
#else
	_Alignas(64) uint8_t b[LTHASH_BYTES];

	crypto_stream_chacha20(b, LTHASH_BYTES, zero_nonce, d);
	for (size_t i = 0; i < LTHASH_LANES; i++)
		k[i] = (uint16_t)(b[2 * i] | b[2 * i + 1] << 8);
#endif
}

void lthash_zero(struct lthash *h)
{
	memset(h->lane, 0, sizeof(h->lane));
}

void lthash_expand(const uint8_t d[32], uint8_t out[LTHASH_BYTES])
{
	crypto_stream_chacha20(out, LTHASH_BYTES, zero_nonce, d);
}

void lthash_add(struct lthash *h, const uint8_t d[32])
{
	_Alignas(64) uint16_t k[LTHASH_LANES];

	lanes_of(d, k);
	for (size_t i = 0; i < LTHASH_LANES; i++)
		h->lane[i] = (uint16_t)(h->lane[i] + k[i]);
}

void lthash_sub(struct lthash *h, const uint8_t d[32])
{
	_Alignas(64) uint16_t k[LTHASH_LANES];

	lanes_of(d, k);
	for (size_t i = 0; i < LTHASH_LANES; i++)
		h->lane[i] = (uint16_t)(h->lane[i] - k[i]);
}

void lthash_replace(struct lthash *h, const uint8_t old[32], const uint8_t new_d[32])
{
	_Alignas(64) uint16_t o[LTHASH_LANES], n[LTHASH_LANES];

	lanes_of(old, o);
	lanes_of(new_d, n);
	for (size_t i = 0; i < LTHASH_LANES; i++)
		h->lane[i] = (uint16_t)(h->lane[i] + n[i] - o[i]);
}

void lthash_add_sum(struct lthash *h, const struct lthash *x)
{
	for (size_t i = 0; i < LTHASH_LANES; i++)
		h->lane[i] = (uint16_t)(h->lane[i] + x->lane[i]);
}

void lthash_sub_sum(struct lthash *h, const struct lthash *x)
{
	for (size_t i = 0; i < LTHASH_LANES; i++)
		h->lane[i] = (uint16_t)(h->lane[i] - x->lane[i]);
}

int lthash_equal(const struct lthash *a, const struct lthash *b)
{
	return memcmp(a->lane, b->lane, sizeof(a->lane)) == 0;
}

void lthash_to_bytes(const struct lthash *h, uint8_t out[LTHASH_BYTES])
{
#ifdef LTHASH_LE
	memcpy(out, h->lane, LTHASH_BYTES);
#else
	for (size_t i = 0; i < LTHASH_LANES; i++) {
		out[2 * i] = (uint8_t)(h->lane[i] & 0xffu);
		out[2 * i + 1] = (uint8_t)(h->lane[i] >> 8);
	}
#endif
}

void lthash_from_bytes(struct lthash *h, const uint8_t in[LTHASH_BYTES])
{
#ifdef LTHASH_LE
	memcpy(h->lane, in, LTHASH_BYTES);
#else
	for (size_t i = 0; i < LTHASH_LANES; i++)
		h->lane[i] = (uint16_t)(in[2 * i] | in[2 * i + 1] << 8);
#endif
}

void lthash_digest(const struct lthash *h, uint8_t out[32])
{
#ifdef LTHASH_LE
	sha256(h->lane, LTHASH_BYTES, out);
#else
	uint8_t b[LTHASH_BYTES];

	lthash_to_bytes(h, b);
	sha256(b, LTHASH_BYTES, out);
#endif
}
