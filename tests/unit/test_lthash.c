/*
 * proto/lthash: the lane expansion is RFC 8439's ChaCha20 keystream (its
 * test vectors, which do not come from libsodium), and the sum behaves as
 * a set hash: order does not matter, taking out undoes adding, replacing
 * is both, lanes wrap mod 2^16, the bytes are little-endian, and the empty
 * set's digest is SHA-256 of 4096 zero bytes.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>
#include <sodium.h>

#include "proto/lthash.h"

static void unhex(const char *s, uint8_t *out, size_t n)
{
	size_t got = 0;

	assert_int_equal(sodium_hex2bin(out, n, s, strlen(s), NULL, &got, NULL), 0);
	assert_int_equal(got, n);
}

static void test_expand_is_rfc8439_chacha20(void **state)
{
	uint8_t key[32] = {0}, ks[LTHASH_BYTES], want[64];

	(void)state;
	lthash_expand(key, ks);
	/* RFC 8439 A.1, test vectors 1 and 2: zero key and nonce, blocks 0 and 1. */
	unhex("76b8e0ada0f13d90405d6ae55386bd28bdd219b8a08ded1aa836efcc8b770dc7"
	      "da41597c5157488d7724e03fb8d84a376a43b8f41518a11cc387b669b2ee6586",
	      want, 64);
	assert_memory_equal(ks, want, 64);
	unhex("9f07e7be5551387a98ba977c732d080dcb0f29a048e3656912c6533e32ee7aed"
	      "29b721769ce64e43d57133b074d839d531ed1f28510afb45ace10a1f4b794d6f",
	      want, 64);
	assert_memory_equal(ks + 64, want, 64);
}

static void test_set_laws(void **state)
{
	struct lthash a, b, c;
	uint8_t d1[32], d2[32], d3[32];

	(void)state;
	randombytes_buf(d1, 32);
	randombytes_buf(d2, 32);
	randombytes_buf(d3, 32);
	lthash_zero(&a);
	lthash_add(&a, d1);
	lthash_add(&a, d2);
	lthash_zero(&b);
	lthash_add(&b, d2);
	lthash_add(&b, d1);
	assert_true(lthash_equal(&a, &b));

	/* Out again: the empty set. */
	lthash_sub(&a, d1);
	lthash_sub(&a, d2);
	lthash_zero(&c);
	assert_true(lthash_equal(&a, &c));

	/* Replace = out with the old, in with the new. */
	lthash_replace(&b, d1, d3);
	lthash_zero(&a);
	lthash_add(&a, d2);
	lthash_add(&a, d3);
	assert_true(lthash_equal(&a, &b));

	/* Sums of sets add up. */
	lthash_zero(&c);
	lthash_add(&c, d1);
	lthash_add_sum(&a, &c);
	lthash_add(&b, d1);
	assert_true(lthash_equal(&a, &b));
	lthash_sub_sum(&a, &c);
	lthash_sub(&b, d1);
	assert_true(lthash_equal(&a, &b));
	assert_false(lthash_equal(&a, &c));
}

/* 2^16 copies of an element are no element at all: the lanes are 16 bits. */
static void test_lanes_wrap(void **state)
{
	struct lthash h, zero;
	uint8_t d[32];

	(void)state;
	randombytes_buf(d, 32);
	lthash_zero(&h);
	lthash_zero(&zero);
	lthash_add(&h, d);
	for (int i = 0; i < 15; i++)
		lthash_add_sum(&h, &h); /* 2^(i+1) copies */
	assert_false(lthash_equal(&h, &zero));
	lthash_add_sum(&h, &h);
	assert_true(lthash_equal(&h, &zero));
}

static void test_bytes_and_digest(void **state)
{
	struct lthash h, back;
	uint8_t d[32], b[LTHASH_BYTES], ks[LTHASH_BYTES], digest[32], want[32];

	(void)state;
	lthash_zero(&h);
	lthash_digest(&h, digest);
	unhex("ad7facb2586fc6e966c004d7d1d16b024f5805ff7cb47c7a85dabd8b48892ca7", want, 32);
	assert_memory_equal(digest, want, 32);

	randombytes_buf(d, 32);
	lthash_add(&h, d);
	lthash_expand(d, ks);
	lthash_to_bytes(&h, b);
	/* One element's sum is its lane vector; lane i is bytes 2i (low) and 2i+1. */
	assert_memory_equal(b, ks, LTHASH_BYTES);
	assert_int_equal(h.lane[7], ks[14] | ks[15] << 8);
	lthash_from_bytes(&back, b);
	assert_true(lthash_equal(&h, &back));
	lthash_digest(&h, digest);
	crypto_hash_sha256(want, b, LTHASH_BYTES);
	assert_memory_equal(digest, want, 32);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_expand_is_rfc8439_chacha20),
	    cmocka_unit_test(test_set_laws),
	    cmocka_unit_test(test_lanes_wrap),
	    cmocka_unit_test(test_bytes_and_digest),
	};

	if (sodium_init() < 0)
		return 1;
	return cmocka_run_group_tests(tests, NULL, NULL);
}
