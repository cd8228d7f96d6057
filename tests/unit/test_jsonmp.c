/*
 * jsonmp: every accepted text gives exactly the bytes of jansson followed
 * by value_pack_json, and every kind of input the slow path refuses is
 * refused. Each test is one family of inputs.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "proto/error.h"
#include "proto/jsonmp.h"
#include "proto/limits.h"
#include "proto/value.h"

#define DEPTH 16u

/* The slow path: jansson as the import uses it, then value_pack_json. */
static int slow(const char *text, size_t len, unsigned depth, msgpack_sbuffer *sb)
{
	json_error_t jerr;
	json_t *v = json_loadb(text, len, JSON_REJECT_DUPLICATES | JSON_DECODE_ANY, &jerr);
	if (!v)
		return -1;
	msgpack_packer pk;
	msgpack_packer_init(&pk, sb, msgpack_sbuffer_write);
	int rc = value_pack_json(&pk, v, depth, NULL, 0);
	json_decref(v);
	return rc;
}

/* Both paths accept text (len bytes) at depth and give the same bytes. */
static void same_n(const char *text, size_t len, unsigned depth)
{
	struct jsonmp *j = jsonmp_new();
	msgpack_sbuffer want, got;
	msgpack_sbuffer_init(&want);
	msgpack_sbuffer_init(&got);
	if (slow(text, len, depth, &want) != 0)
		fail_msg("the slow path refuses %.60s", text);
	int rc = jsonmp_pack(j, (const uint8_t *)text, len, depth, &got);
	if (rc != 0)
		fail_msg("jsonmp refuses %.60s: %d", text, rc);
	if (got.size != want.size || memcmp(got.data, want.data, want.size) != 0)
		fail_msg("jsonmp gives other bytes for %.60s (%zu vs %zu bytes)", text, got.size,
		         want.size);
	msgpack_sbuffer_destroy(&want);
	msgpack_sbuffer_destroy(&got);
	jsonmp_free(j);
}

static void same(const char *text)
{
	same_n(text, strlen(text), DEPTH);
}

/*
 * jsonmp refuses text with code, and leaves what the buffer held. Unless
 * only_fast, the slow path refuses it too.
 */
static void refused_how(const char *text, size_t len, unsigned depth, int code, int only_fast)
{
	struct jsonmp *j = jsonmp_new();
	msgpack_sbuffer sb;
	msgpack_sbuffer_init(&sb);
	if (!only_fast && slow(text, len, depth, &sb) == 0)
		fail_msg("the slow path accepts %.60s", text);
	msgpack_sbuffer_clear(&sb);
	msgpack_sbuffer_write(&sb, "abc", 3);
	int rc = jsonmp_pack(j, (const uint8_t *)text, len, depth, &sb);
	if (rc != code)
		fail_msg("jsonmp gives %d, not %d, for %.60s", rc, code, text);
	assert_int_equal(sb.size, 3);
	assert_memory_equal(sb.data, "abc", 3);
	msgpack_sbuffer_destroy(&sb);
	jsonmp_free(j);
}

static void refused_n(const char *text, size_t len, unsigned depth, int code)
{
	refused_how(text, len, depth, code, 0);
}

static void refused(const char *text, int code)
{
	refused_n(text, strlen(text), DEPTH, code);
}

static void test_scalars(void **state)
{
	(void)state;
	same("true");
	same("false");
	same("null");
	same("\"\"");
	same("\"plain text\"");
	same("  \t\r\n 1 \n");
	same("[]");
	same("{}");
	same(" { } ");
	same("[ ]");
}

static void test_integers(void **state)
{
	(void)state;
	static const char *const ints[] = {
	    "0",
	    "-0",
	    "1",
	    "31",
	    "127",
	    "128",
	    "255",
	    "256",
	    "65535",
	    "65536",
	    "4294967295",
	    "4294967296",
	    "-1",
	    "-32",
	    "-33",
	    "-128",
	    "-129",
	    "-32768",
	    "-32769",
	    "-2147483648",
	    "-2147483649",
	    "9223372036854775807",
	    "-9223372036854775808",
	    "1000000000000000000",
	    "-1000000000000000000",
	};
	for (size_t i = 0; i < sizeof(ints) / sizeof(ints[0]); i++)
		same(ints[i]);
	same("[0,-0,1,-1,300,-300,70000,-70000,5000000000,-5000000000]");
}

static void test_reals(void **state)
{
	(void)state;
	static const char *const reals[] = {
	    "0.0",
	    "-0.0",
	    "0.5",
	    "-0.5",
	    "1.5e3",
	    "1E3",
	    "1e+3",
	    "1e-3",
	    "-2.5E-300",
	    "1e308",
	    "1e-400",
	    "4.9e-324",
	    "0e0",
	    "-0e-0",
	    "3.141592653589793238462643383279",
	    "1.7976931348623157e308",
	    "2.2250738585072014e-308",
	};
	for (size_t i = 0; i < sizeof(reals) / sizeof(reals[0]); i++)
		same(reals[i]);
}

static void test_strings_and_escapes(void **state)
{
	(void)state;
	same("\"\\\" \\\\ \\/ \\b \\f \\n \\r \\t\"");
	same("\"\\u0041\\u00e9\\u00E9\\u20ac\\uffff\"");
	same("\"\\ud83d\\ude00 smile\"");                      /* a surrogate pair */
	same("\"\\uDBFF\\uDFFF\"");                            /* U+10FFFF */
	same("\"caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80\""); /* raw UTF-8 */
	same("\"\x7f\""); /* DEL is no control character to JSON */
	/* Escapes that shrink a string across the str8 boundary (33 bytes to 31). */
	same("\"\\n\\n0123456789012345678901234567\"");
	same("{\"k\\u00e9y\":1,\"k\":2,\"ke\":3}");
}

static void test_long_strings(void **state)
{
	(void)state;
	size_t sizes[] = {31, 32, 255, 256, 65535, 65536, 70000};
	for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		size_t n = sizes[i];
		char *s = malloc(n + 3);
		assert_non_null(s);
		s[0] = '"';
		for (size_t k = 0; k < n; k++)
			s[k + 1] = (char)('a' + k % 26);
		s[n + 1] = '"';
		s[n + 2] = '\0';
		same(s);
		/* The same with an escape in front: decoded one byte shorter. */
		s[1] = '\\';
		s[2] = 'n';
		same(s);
		free(s);
	}
}

static void test_containers(void **state)
{
	(void)state;
	same("{\"coll\":\"expert\",\"id\":\"e1\",\"fields\":{\"name\":\"Ada\",\"topics\":[\"a\","
	     "\"b\"],\"n\":1,\"x\":{\"z\":null,\"a\":[1,[2,[3,{}]]]}}}");
	same("{\"coll\":\"expert\",\"id\":\"old\",\"del\":true}");
	/* Keys with shared prefixes: a prefix sorts first. */
	same("{\"ab\":1,\"a\":2,\"abc\":3,\"b\":4,\"\":5,\"aa\":6,\"B\":7,\"\xc3\xa9\":8}");
	same("{\"z\":{\"y\":{\"x\":1,\"w\":2},\"v\":[{\"b\":1,\"a\":2}]},\"a\":0}");
	same("[[],{},[[]],[{}],{\"a\":[]},{\"a\":{}}]");
	same(" { \"a\" : [ 1 , 2 ] , \"b\" : { \"c\" : true } } ");

	/* 16 and more elements and members: longer headers, and qsort for big maps. */
	char buf[8192];
	for (size_t count = 14; count <= 300; count += count < 40 ? 1 : 67) {
		size_t o = 0;
		buf[o++] = '[';
		for (size_t i = 0; i < count; i++)
			o += (size_t)snprintf(buf + o, sizeof(buf) - o, "%s%zu", i ? "," : "", i);
		buf[o++] = ']';
		buf[o] = '\0';
		same(buf);
		o = 0;
		buf[o++] = '{';
		for (size_t i = 0; i < count; i++)
			o += (size_t)snprintf(buf + o, sizeof(buf) - o, "%s\"k%zu\":%zu",
			                      i ? "," : "", (i * 7919) % count, i);
		buf[o++] = '}';
		buf[o] = '\0';
		same(buf);
	}
}

static void test_depth(void **state)
{
	(void)state;
	same_n("[[[1]]]", 7, 3);
	refused_n("[[[1]]]", 7, 2, LOKET_E_TOO_DEEP);
	same_n("{\"a\":{\"b\":{}}}", 14, 3);
	refused_n("{\"a\":{\"b\":{}}}", 14, 2, LOKET_E_TOO_DEEP);
	same_n("1", 1, 0);
	refused_n("[]", 2, 0, LOKET_E_TOO_DEEP);
	/* Never deeper than the cap, whatever the caller asks (jansson would go on). */
	char deep[2 * JSONMP_DEPTH_CAP + 3];
	memset(deep, '[', JSONMP_DEPTH_CAP + 1);
	memset(deep + JSONMP_DEPTH_CAP + 1, ']', JSONMP_DEPTH_CAP + 1);
	refused_how(deep, 2 * JSONMP_DEPTH_CAP + 2, 1000, LOKET_E_TOO_DEEP, 1);
}

static void test_appends(void **state)
{
	(void)state;
	struct jsonmp *j = jsonmp_new();
	msgpack_sbuffer sb;
	msgpack_sbuffer_init(&sb);
	msgpack_sbuffer_write(&sb, "\x92", 1);
	assert_int_equal(jsonmp_pack(j, (const uint8_t *)"{\"b\":1,\"a\":2}", 13, DEPTH, &sb), 0);
	assert_int_equal(jsonmp_pack(j, (const uint8_t *)"[true]", 6, DEPTH, &sb), 0);
	static const uint8_t want[] = {0x92, 0x82, 0xa1, 'a', 0x02, 0xa1, 'b', 0x01, 0x91, 0xc3};
	assert_int_equal(sb.size, sizeof(want));
	assert_memory_equal(sb.data, want, sizeof(want));
	msgpack_sbuffer_destroy(&sb);
	jsonmp_free(j);
	jsonmp_free(NULL);
}

static void test_refuses_bad_syntax(void **state)
{
	(void)state;
	refused("", LOKET_E_MALFORMED);
	refused("   ", LOKET_E_MALFORMED);
	refused("{} {}", LOKET_E_TRAILING);
	refused("{\"a\":1}x", LOKET_E_TRAILING);
	refused("1 2", LOKET_E_TRAILING);
	refused("truex", LOKET_E_TRAILING);
	refused("tru", LOKET_E_MALFORMED);
	refused("nul", LOKET_E_MALFORMED);
	refused("True", LOKET_E_MALFORMED);
	refused("[1,]", LOKET_E_MALFORMED);
	refused("[,1]", LOKET_E_MALFORMED);
	refused("{\"a\":1,}", LOKET_E_MALFORMED);
	refused("{,}", LOKET_E_MALFORMED);
	refused("{\"a\" 1}", LOKET_E_MALFORMED);
	refused("{a:1}", LOKET_E_MALFORMED);
	refused("{'a':1}", LOKET_E_MALFORMED);
	refused("{1:1}", LOKET_E_MALFORMED);
	refused("[1", LOKET_E_MALFORMED);
	refused("{\"a\":1", LOKET_E_MALFORMED);
	refused("\"open", LOKET_E_MALFORMED);
	refused("\"a\\\"", LOKET_E_MALFORMED);
	refused("[1 2]", LOKET_E_MALFORMED);
	refused("\x0c"
	        "1",
	        LOKET_E_MALFORMED); /* form feed is no JSON whitespace */
	refused_n("[1]\0", 4, DEPTH, LOKET_E_TRAILING);
	refused_n("\"a\0b\"", 5, DEPTH, LOKET_E_MALFORMED);
}

static void test_refuses_bad_numbers(void **state)
{
	(void)state;
	refused("01", LOKET_E_MALFORMED);
	refused("-01", LOKET_E_MALFORMED);
	refused("00", LOKET_E_MALFORMED);
	refused("1.", LOKET_E_MALFORMED);
	refused(".5", LOKET_E_MALFORMED);
	refused("-", LOKET_E_MALFORMED);
	refused("- 1", LOKET_E_MALFORMED);
	refused("+1", LOKET_E_MALFORMED);
	refused("1e", LOKET_E_MALFORMED);
	refused("1e+", LOKET_E_MALFORMED);
	refused("1.e5", LOKET_E_MALFORMED);
	refused("0x10", LOKET_E_TRAILING);
	refused("NaN", LOKET_E_MALFORMED);
	refused("nan", LOKET_E_MALFORMED);
	refused("Infinity", LOKET_E_MALFORMED);
	refused("-Infinity", LOKET_E_MALFORMED);
	refused("inf", LOKET_E_MALFORMED);
	/* int64 overflow is an error, as in jansson, not a real. */
	refused("9223372036854775808", LOKET_E_TOO_BIG);
	refused("-9223372036854775809", LOKET_E_TOO_BIG);
	refused("18446744073709551616", LOKET_E_TOO_BIG);
	refused("123456789012345678901234567890", LOKET_E_TOO_BIG);
	refused("1e309", LOKET_E_TOO_BIG);
	refused("-1e309", LOKET_E_TOO_BIG);
	char longreal[JSONMP_NUMBER_MAX + 8];
	memset(longreal, '1', sizeof(longreal) - 1);
	longreal[1] = '.';
	longreal[sizeof(longreal) - 1] = '\0';
	/* Refused by jsonmp only: the caller converts such a line the slow way. */
	refused_how(longreal, strlen(longreal), DEPTH, LOKET_E_TOO_BIG, 1);
}

static void test_refuses_bad_strings(void **state)
{
	(void)state;
	refused("\"\\x41\"", LOKET_E_MALFORMED);
	refused("\"\\a\"", LOKET_E_MALFORMED);
	refused("\"\\u12\"", LOKET_E_MALFORMED);
	refused("\"\\u12g4\"", LOKET_E_MALFORMED);
	refused("\"\\u0000\"", LOKET_E_MALFORMED);
	refused("{\"\\u0000\":1}", LOKET_E_MALFORMED);
	refused("\"\\ud83d\"", LOKET_E_MALFORMED); /* lone high surrogate */
	refused("\"\\ud83d x\"", LOKET_E_MALFORMED);
	refused("\"\\ud83d\\u0041\"", LOKET_E_MALFORMED); /* high then no low */
	refused("\"\\ud83d\\ud83d\"", LOKET_E_MALFORMED);
	refused("\"\\ude00\"", LOKET_E_MALFORMED); /* lone low surrogate */
	refused("\"tab\there\"", LOKET_E_MALFORMED);
	refused("\"nl\nhere\"", LOKET_E_MALFORMED);
	refused("\"\x80\"", LOKET_E_MALFORMED);
	refused("\"\xc3\"", LOKET_E_MALFORMED);
	refused("\"\xc0\xaf\"", LOKET_E_MALFORMED);         /* overlong */
	refused("\"\xe0\x80\xaf\"", LOKET_E_MALFORMED);     /* overlong */
	refused("\"\xed\xa0\x80\"", LOKET_E_MALFORMED);     /* a surrogate in UTF-8 */
	refused("\"\xf4\x90\x80\x80\"", LOKET_E_MALFORMED); /* beyond U+10FFFF */
	refused("\"\xff\"", LOKET_E_MALFORMED);
	refused("\"\\\xc3\xa9\"", LOKET_E_MALFORMED);
	refused("{\"\xc3\":1}", LOKET_E_MALFORMED);
	refused("\xc3\xa9", LOKET_E_MALFORMED);
}

static void test_refuses_duplicate_keys(void **state)
{
	(void)state;
	refused("{\"a\":1,\"a\":2}", LOKET_E_DUPLICATE_KEY);
	refused("{\"b\":1,\"a\":2,\"b\":3}", LOKET_E_DUPLICATE_KEY);
	refused("{\"a\":1,\"\\u0061\":2}", LOKET_E_DUPLICATE_KEY);
	refused("{\"x\":{\"a\":1,\"a\":1}}", LOKET_E_DUPLICATE_KEY);
	/* The same key in different maps is no duplicate. */
	same("{\"a\":{\"a\":{\"a\":1}},\"b\":{\"a\":2}}");
	char buf[4096];
	size_t o = 0;
	buf[o++] = '{';
	for (size_t i = 0; i < 100; i++)
		o += (size_t)snprintf(buf + o, sizeof(buf) - o, "\"k%zu\":1,", (i * 37) % 100);
	o += (size_t)snprintf(buf + o, sizeof(buf) - o, "\"k42\":2}");
	refused(buf, LOKET_E_DUPLICATE_KEY);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_scalars),
	    cmocka_unit_test(test_integers),
	    cmocka_unit_test(test_reals),
	    cmocka_unit_test(test_strings_and_escapes),
	    cmocka_unit_test(test_long_strings),
	    cmocka_unit_test(test_containers),
	    cmocka_unit_test(test_depth),
	    cmocka_unit_test(test_appends),
	    cmocka_unit_test(test_refuses_bad_syntax),
	    cmocka_unit_test(test_refuses_bad_numbers),
	    cmocka_unit_test(test_refuses_bad_strings),
	    cmocka_unit_test(test_refuses_duplicate_keys),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
