/*
 * SHA-256 for the hot paths: every changeset hash (written, received,
 * verified) and every entity digest. libsodium's portable SHA-256 runs at
 * about 190 MB/s here, which alone would cap the import, sync and verify
 * rates; on x86-64 CPUs with the SHA extensions this uses them (several
 * times faster) and otherwise falls back to libsodium. Both give the same
 * digests; the unit test checks them against each other.
 */
#include <string.h>

#include <sodium.h>

#include "proto/sha256.h"

#if defined(__x86_64__) && defined(__GNUC__)
#include <cpuid.h>
#include <immintrin.h>
#define SHA256_NI 1
#endif

static const uint32_t sha256_iv[8] = {0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a,
                                      0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19};

#ifdef SHA256_NI
static const uint32_t sha256_k[64] = {
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
    0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
    0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
    0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
    0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
    0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
    0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
    0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2};

/* Compresses n 64-byte blocks into state with the SHA-NI instructions. */
__attribute__((target("sha,sse4.1,ssse3"))) static void blocks_ni(uint32_t state[8],
                                                                  const uint8_t *p, size_t n)
{
	const __m128i mask = _mm_set_epi64x(0x0c0d0e0f08090a0bULL, 0x0405060700010203ULL);
	__m128i st0, st1, tmp, msg, w[16], save0, save1;

	tmp = _mm_loadu_si128((const __m128i *)(const void *)&state[0]);
	st1 = _mm_loadu_si128((const __m128i *)(const void *)&state[4]);
	tmp = _mm_shuffle_epi32(tmp, 0xB1);    /* CDAB */
	st1 = _mm_shuffle_epi32(st1, 0x1B);    /* EFGH */
	st0 = _mm_alignr_epi8(tmp, st1, 8);    /* ABEF */
	st1 = _mm_blend_epi16(st1, tmp, 0xF0); /* CDGH */
	for (; n > 0; n--, p += 64) {
		save0 = st0;
		save1 = st1;
		for (int j = 0; j < 16; j++) {
			if (j < 4) {
				w[j] = _mm_shuffle_epi8(
				    _mm_loadu_si128((const __m128i *)(const void *)(p + 16 * j)),
				    mask);
			} else {
				tmp = _mm_sha256msg1_epu32(w[j - 4], w[j - 3]);
				tmp = _mm_add_epi32(tmp, _mm_alignr_epi8(w[j - 1], w[j - 2], 4));
				w[j] = _mm_sha256msg2_epu32(tmp, w[j - 1]);
			}
			msg = _mm_add_epi32(
			    w[j], _mm_loadu_si128((const __m128i *)(const void *)&sha256_k[4 * j]));
			st1 = _mm_sha256rnds2_epu32(st1, st0, msg);
			msg = _mm_shuffle_epi32(msg, 0x0E);
			st0 = _mm_sha256rnds2_epu32(st0, st1, msg);
		}
		st0 = _mm_add_epi32(st0, save0);
		st1 = _mm_add_epi32(st1, save1);
	}
	tmp = _mm_shuffle_epi32(st0, 0x1B);    /* FEBA */
	st1 = _mm_shuffle_epi32(st1, 0xB1);    /* DCHG */
	st0 = _mm_blend_epi16(tmp, st1, 0xF0); /* DCBA */
	st1 = _mm_alignr_epi8(st1, tmp, 8);    /* HGFE */
	_mm_storeu_si128((__m128i *)(void *)&state[0], st0);
	_mm_storeu_si128((__m128i *)(void *)&state[4], st1);
}

static int have_ni(void)
{
	unsigned a, b, c, d;

	if (!__get_cpuid_count(7, 0, &a, &b, &c, &d) || !(b & (1u << 29)))
		return 0;
	/* SSE4.1 and SSSE3 are needed too. */
	return __get_cpuid(1, &a, &b, &c, &d) && (c & (1u << 19)) && (c & (1u << 9));
}
#else
static int have_ni(void)
{
	return 0;
}
#endif

int sha256_hw = -1;

/*
 * Asked once, on whichever thread hashes first: threads that ask at the
 * same moment get the same answer, and the atomics make that race a
 * defined one.
 */
static int use_hw(void)
{
	int hw = __atomic_load_n(&sha256_hw, __ATOMIC_RELAXED);

	if (hw < 0) {
		hw = have_ni();
		__atomic_store_n(&sha256_hw, hw, __ATOMIC_RELAXED);
	}
	return hw;
}

void sha256_init(struct sha256 *c)
{
	c->hw = use_hw();
	if (!c->hw) {
		crypto_hash_sha256_init(&c->sod);
		return;
	}
	memcpy(c->h, sha256_iv, sizeof(c->h));
	c->n = 0;
	c->total = 0;
}

void sha256_update(struct sha256 *c, const void *data, size_t len)
{
	const uint8_t *p = data;

	if (!c->hw) {
		crypto_hash_sha256_update(&c->sod, p, len);
		return;
	}
#ifdef SHA256_NI
	c->total += len;
	if (c->n) {
		size_t k = 64 - c->n < len ? 64 - c->n : len;

		memcpy(c->buf + c->n, p, k);
		c->n += k;
		p += k;
		len -= k;
		if (c->n < 64)
			return;
		blocks_ni(c->h, c->buf, 1);
		c->n = 0;
	}
	if (len >= 64) {
		blocks_ni(c->h, p, len / 64);
		p += len & ~(size_t)63;
		len &= 63;
	}
	memcpy(c->buf, p, len);
	c->n = len;
#endif
}

void sha256_final(struct sha256 *c, uint8_t out[32])
{
	if (!c->hw) {
		crypto_hash_sha256_final(&c->sod, out);
		return;
	}
#ifdef SHA256_NI
	uint64_t bits = c->total * 8;

	c->buf[c->n++] = 0x80;
	if (c->n > 56) {
		memset(c->buf + c->n, 0, 64 - c->n);
		blocks_ni(c->h, c->buf, 1);
		c->n = 0;
	}
	memset(c->buf + c->n, 0, 56 - c->n);
	for (int i = 0; i < 8; i++)
		c->buf[56 + i] = (uint8_t)(bits >> (56 - 8 * i));
	blocks_ni(c->h, c->buf, 1);
	for (int i = 0; i < 8; i++) {
		out[4 * i] = (uint8_t)(c->h[i] >> 24);
		out[4 * i + 1] = (uint8_t)(c->h[i] >> 16);
		out[4 * i + 2] = (uint8_t)(c->h[i] >> 8);
		out[4 * i + 3] = (uint8_t)c->h[i];
	}
#endif
}

void sha256(const void *p, size_t len, uint8_t out[32])
{
	struct sha256 c;

	sha256_init(&c);
	sha256_update(&c, p, len);
	sha256_final(&c, out);
}
