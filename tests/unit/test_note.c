/*
 * proto/note: a signature line made here is byte for byte the one Go's
 * golang.org/x/mod/sumdb/note makes for its documented example key (an
 * outside check of the key ID and the line); the C2SP examples parse;
 * signing and verifying round trips; every kind of malformed note and
 * checkpoint is refused with a sentence; cosignatures verify only under
 * their own key, type and timestamp.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <sodium.h>

#include "proto/error.h"
#include "proto/note.h"

static struct note *n;

static int setup(void **state)
{
	(void)state;
	n = malloc(sizeof(*n));
	return sodium_init() < 0 || n == NULL;
}

static int teardown(void **state)
{
	(void)state;
	free(n);
	return 0;
}

static int parse(const char *s, char *err, size_t errlen)
{
	return note_parse((const uint8_t *)s, strlen(s), n, err, errlen);
}

/* Go's note package documents this key and this signed note. */
static void test_go_example(void **state)
{
	static const char skey_b64[] = "AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz";
	static const char text[] = "If you think cryptography is the answer to your problem,\n"
	                           "then you don't know what your problem is.\n";
	static const char want[] =
	    "\n— PeterNeumann "
	    "x08go/ZJkuBS9UG/"
	    "SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n";
	uint8_t raw[33], pk[32], sk[64], sig[64];
	char buf[512], err[256];
	size_t len, bin;
	uint32_t id;

	(void)state;
	assert_int_equal(sodium_base642bin(raw, sizeof(raw), skey_b64, strlen(skey_b64), NULL, &bin,
	                                   NULL, sodium_base64_VARIANT_ORIGINAL),
	                 0);
	assert_int_equal(bin, 33);
	assert_int_equal(raw[0], NOTE_TYPE_ED25519);
	crypto_sign_seed_keypair(pk, sk, raw + 1);
	id = note_key_id((const uint8_t *)"PeterNeumann", 12, NOTE_TYPE_ED25519, pk);
	assert_int_equal(id, 0xc74f20a3);
	crypto_sign_detached(sig, NULL, (const uint8_t *)text, strlen(text), sk);
	len = strlen(text);
	memcpy(buf, text, len);
	buf[len++] = '\n';
	assert_int_equal(note_append_sig(buf, sizeof(buf), &len, (const uint8_t *)"PeterNeumann",
	                                 12, id, sig, 64),
	                 0);
	assert_int_equal(len, strlen(text) + strlen(want));
	assert_memory_equal(buf + strlen(text), want, strlen(want));
	assert_int_equal(note_parse((const uint8_t *)buf, len, n, err, sizeof(err)), 0);
	assert_int_equal(n->text_len, strlen(text));
	assert_int_equal(note_verify(n, (const uint8_t *)"PeterNeumann", 12, pk), 0);
	/* Another name with the same key is another key: not found. */
	assert_int_equal(note_verify(n, (const uint8_t *)"PeterNeuman", 11, pk), LOKET_E_NOT_FOUND);
	/* A flipped text byte breaks it. */
	buf[3] ^= 1;
	assert_int_equal(note_parse((const uint8_t *)buf, len, n, err, sizeof(err)), 0);
	assert_int_equal(note_verify(n, (const uint8_t *)"PeterNeumann", 12, pk),
	                 LOKET_E_BAD_SIGNATURE);
}

/* The examples of c2sp.org/signed-note and c2sp.org/tlog-cosignature. */
static void test_c2sp_examples(void **state)
{
	static const char poem[] =
	    "Ognuno sta solo sul cuor della terra\n"
	    "trafitto da un raggio di sole:\n"
	    "\n"
	    "ed è subito sera.\n"
	    "\n"
	    "— quasimodo.example/salvatore "
	    "NnugSzTjtVAewIS+Z/iJhUPeFDkO/"
	    "5QQ2i5ddnGITLlC+EhfLW9oJKONrMouFSQU0xMcXxj99ihAQwaqP3ZekRwNtIc=\n";
	static const char cosigned[] =
	    "example.com/behind-the-sofa\n"
	    "20852163\n"
	    "CsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n"
	    "\n"
	    "— example.com/behind-the-sofa "
	    "Az3grlgtzPICa5OS8npVmf1Myq/5IZniMp+ZJurmRDeOoRDe4URYN7u5/"
	    "Zhcyv2q1gGzGku9nTo+zyWE+xeMcTOAYQ8=\n"
	    "— witness.example.com/w1 "
	    "jWbPPwAAAABkGFDLEZMHwSRaJNiIDoe9DYn/"
	    "zXcrtPHeolMI5OWXEhZCB9dlrDJsX3b2oyin1nPZqhf5nNo0xUe+mbIUBkBIfZ+qnA==\n";
	struct note_checkpoint c;
	char err[256];

	(void)state;
	assert_int_equal(parse(poem, err, sizeof(err)), 0);
	/* The text ends before the last blank line and keeps the one inside it. */
	assert_int_equal(n->text_len, strlen(poem) - strlen(strstr(poem, "\n— ")));
	assert_int_equal(n->count, 1);
	assert_int_equal(n->sig[0].len, 64);
	assert_int_equal(parse(cosigned, err, sizeof(err)), 0);
	assert_int_equal(n->count, 2);
	assert_int_equal(n->sig[1].len, NOTE_COSIG_BYTES);
	/* The cosignature's timestamp: 0x64 18 50 cb = 1679315147, as the spec says. */
	assert_int_equal(n->sig[1].sig[4], 0x64);
	assert_int_equal(note_checkpoint_parse(n->text, n->text_len, &c, err, sizeof(err)), 0);
	assert_string_equal(c.origin, "example.com/behind-the-sofa");
	assert_int_equal(c.size, 20852163);
}

static void test_refusals(void **state)
{
	static const char *bad[] = {
	    "a\n— k AAAAAAA=\n",                 /* no blank line */
	    "a\n\n",                             /* no signature */
	    "a\n\n- k AAAAAAA=\n",               /* hyphen */
	    "a\n\n— k AAAAAAA=",                 /* no final newline */
	    "a\n\n— k+1 AAAAAAA=\n",             /* '+' */
	    "a\n\n— k\xc2\xa0x AAAAAAA=\n",      /* no-break space */
	    "a\n\n— k\xe3\x80\x80x AAAAAAA=\n",  /* ideographic space */
	    "a\n\n—  AAAAAAA=\n",                /* empty name */
	    "a\n\n— kAAAAAAA=\n",                /* no space */
	    "a\n\n— k AAAAAA==\n",               /* 4 bytes */
	    "a\n\n— k AAAAAAB=\n",               /* padding bits */
	    "a\n\n— k AAAAAAA\n",                /* no padding */
	    "a\n\n— k AAAA AAA=\n",              /* space in base64 */
	    "a\tb\n\n— k AAAAAAA=\n",            /* tab */
	    "a\x7f\n\n— k AAAAAAA=\n",           /* DEL */
	    "a\xc2\x85\n\n— k AAAAAAA=\n",       /* C1 */
	    "a\xff\n\n— k AAAAAAA=\n",           /* not UTF-8 */
	    "a\xed\xa0\x80\n\n— k AAAAAAA=\n",   /* a surrogate */
	    "a\n\n— k AAAAAAA=\n— k AAAAAAA=\n", /* twice */
	    "a\n\n— k AAAAAAA=\n\n",             /* blank at the end */
	};
	char err[256];

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		err[0] = '\0';
		if (parse(bad[i], err, sizeof(err)) == 0)
			fail_msg("bad note %zu parses", i);
		assert_true(strlen(err) > 10);
		assert_int_equal(n->count, 0);
	}
	/* Bounded: one byte over the size, one line over the count. */
	{
		size_t cap = NOTE_MAX_BYTES + 2, len = 0;
		char *b = malloc(cap);

		assert_non_null(b);
		memset(b, 'x', cap);
		b[NOTE_MAX_BYTES - 1] = '\n';
		assert_int_equal(
		    note_parse((const uint8_t *)b, NOTE_MAX_BYTES + 1, n, err, sizeof(err)),
		    LOKET_E_TOO_BIG);
		memcpy(b, "a\n\n", 3);
		len = 3;
		for (unsigned i = 0; i <= NOTE_MAX_SIGS; i++) {
			uint8_t name[8], sig[1] = {0};
			int k = snprintf((char *)name, sizeof(name), "k%u", i);

			assert_int_equal(note_append_sig(b, cap, &len, name, (size_t)k, i, sig, 1),
			                 0);
		}
		assert_int_equal(note_parse((const uint8_t *)b, len, n, err, sizeof(err)),
		                 LOKET_E_TOO_BIG);
		assert_non_null(strstr(err, "more than"));
		free(b);
	}
}

static void test_checkpoint_refusals(void **state)
{
	static const char root[] = "47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=";
	static const char *bad[] = {
	    "o\n1\n",
	    "o\n0\n47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=\next\n",
	    "o\n01\n47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=\n",
	    "o\n9223372036854775808\n47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=\n",
	    "o\n99999999999999999999\n47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=\n",
	    "o\n-1\n47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=\n",
	    "o\n\n47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=\n",
	    "o\n1\n47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuA==\n",
	    "o\n1\n47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFV=\n",
	    "o o\n1\n47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=\n",
	    "\n1\n47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=\n",
	    "o\n1\n47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=",
	};
	struct note_checkpoint c;
	char err[256], ok[128];

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		err[0] = '\0';
		if (note_checkpoint_parse((const uint8_t *)bad[i], strlen(bad[i]), &c, err,
		                          sizeof(err)) == 0)
			fail_msg("bad checkpoint %zu parses", i);
		assert_non_null(strstr(err, "checkpoint"));
	}
	snprintf(ok, sizeof(ok), "o\n9223372036854775807\n%s\n", root);
	assert_int_equal(
	    note_checkpoint_parse((const uint8_t *)ok, strlen(ok), &c, err, sizeof(err)), 0);
	assert_int_equal(c.size, INT64_MAX);
}

static void test_origin_line(void **state)
{
	struct note_checkpoint c;
	uint8_t key[32], back[32];
	char fed[65], text[NOTE_MAX_TEXT];
	size_t len;

	(void)state;
	for (int i = 0; i < 32; i++)
		key[i] = (uint8_t)(0xa0 + i);
	assert_int_equal(note_origin_line("leiden", key, &c), 0);
	assert_string_equal(
	    c.origin,
	    "loket/leiden/a0a1a2a3a4a5a6a7a8a9aaabacadaeafb0b1b2b3b4b5b6b7b8b9babbbcbdbebf");
	assert_int_equal(note_origin_parse(c.origin, c.origin_len, fed, sizeof(fed), back), 0);
	assert_string_equal(fed, "leiden");
	assert_memory_equal(back, key, 32);
	assert_int_equal(note_origin_parse("loket/leiden/A0", 15, fed, sizeof(fed), back), -EINVAL);
	assert_int_equal(note_origin_parse("example.com/x", 13, fed, sizeof(fed), back), -EINVAL);
	assert_int_equal(note_origin_line("a/b", key, &c), -EINVAL);
	c.size = 0;
	memset(c.root, 0, 32);
	assert_int_equal(note_checkpoint_text(&c, text, sizeof(text), &len), 0);
	assert_int_equal(note_checkpoint_text(&c, text, 20, &len), -ENOSPC);
}

static void test_cosignature(void **state)
{
	uint8_t pk[32], sk[64], wpk[32], wsk[64], msg[NOTE_MAX_TEXT + 64], sig[NOTE_COSIG_BYTES];
	struct note_checkpoint c, w;
	char text[NOTE_MAX_TEXT], buf[2048], err[256];
	size_t tlen, len, mlen;
	uint64_t ts = 1700000000, got = 0;
	uint32_t id;

	(void)state;
	crypto_sign_keypair(pk, sk);
	crypto_sign_keypair(wpk, wsk);
	assert_int_equal(note_origin_line("f", pk, &c), 0);
	assert_int_equal(note_origin_line("f", wpk, &w), 0);
	c.size = 3;
	memset(c.root, 7, 32);
	assert_int_equal(note_checkpoint_text(&c, text, sizeof(text), &tlen), 0);
	memcpy(buf, text, tlen);
	len = tlen;
	buf[len++] = '\n';
	crypto_sign_detached(sig, NULL, (const uint8_t *)text, tlen, sk);
	assert_int_equal(note_append_sig(buf, sizeof(buf), &len, (const uint8_t *)c.origin,
	                                 c.origin_len,
	                                 note_key_id((const uint8_t *)c.origin, c.origin_len,
	                                             NOTE_TYPE_ED25519, pk),
	                                 sig, 64),
	                 0);
	assert_int_equal(
	    note_cosig_message((const uint8_t *)text, tlen, ts, msg, sizeof(msg), &mlen), 0);
	assert_memory_equal(msg, "cosignature/v1\ntime 1700000000\n", 31);
	assert_int_equal(note_cosig_message((const uint8_t *)text, tlen, (uint64_t)INT64_MAX + 1,
	                                    msg, sizeof(msg), &mlen),
	                 -EINVAL);
	assert_int_equal(note_cosig_message((const uint8_t *)text, tlen, ts, msg, 10, &mlen),
	                 -ENOSPC);
	assert_int_equal(
	    note_cosig_message((const uint8_t *)text, tlen, ts, msg, sizeof(msg), &mlen), 0);
	for (int k = 0; k < 8; k++)
		sig[k] = (uint8_t)(ts >> (56 - 8 * k));
	crypto_sign_detached(sig + 8, NULL, msg, mlen, wsk);
	id = note_key_id((const uint8_t *)w.origin, w.origin_len, NOTE_TYPE_COSIG, wpk);
	assert_int_equal(note_append_sig(buf, sizeof(buf), &len, (const uint8_t *)w.origin,
	                                 w.origin_len, id, sig, sizeof(sig)),
	                 0);
	assert_int_equal(note_parse((const uint8_t *)buf, len, n, err, sizeof(err)), 0);
	assert_int_equal(note_verify(n, (const uint8_t *)c.origin, c.origin_len, pk), 0);
	assert_int_equal(note_verify_cosig(n, (const uint8_t *)w.origin, w.origin_len, wpk, &got),
	                 0);
	assert_int_equal(got, ts);
	/* The log's key is not the witness's; a log signature is no cosignature. */
	assert_int_equal(note_verify_cosig(n, (const uint8_t *)c.origin, c.origin_len, pk, &got),
	                 LOKET_E_NOT_FOUND);
	/* A timestamp changed in the line no longer verifies. */
	n->sig[1].sig[7] ^= 1;
	assert_int_equal(note_verify_cosig(n, (const uint8_t *)w.origin, w.origin_len, wpk, &got),
	                 LOKET_E_BAD_SIGNATURE);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_go_example),  cmocka_unit_test(test_c2sp_examples),
	    cmocka_unit_test(test_refusals),    cmocka_unit_test(test_checkpoint_refusals),
	    cmocka_unit_test(test_origin_line), cmocka_unit_test(test_cosignature),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
