/*
 * Values: the canonical msgpack form, the checks that guard the unpacker,
 * JSON conversion both ways, and whole control messages. Each test is a short
 * example of one use or one rejection.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "proto/error.h"
#include "proto/limits.h"
#include "proto/value.h"

/* Packs JSON text canonically into sb; fails the test on any error. */
static void pack_text(msgpack_sbuffer *sb, const char *text, unsigned max_depth)
{
	json_error_t jerr;
	json_t *v = json_loads(text, JSON_DECODE_ANY, &jerr);
	assert_non_null(v);
	msgpack_packer pk;
	msgpack_packer_init(&pk, sb, msgpack_sbuffer_write);
	char err[256];
	assert_int_equal(value_pack_json(&pk, v, max_depth, err, sizeof(err)), 0);
	json_decref(v);
}

static int check(const uint8_t *p, size_t len, unsigned flags, char *err, size_t errlen)
{
	size_t used = 0;
	return value_check(p, len, LOKET_MAX_DEPTH, flags, &used, err, errlen);
}

static void test_pack_check_unpack_round_trip(void **state)
{
	(void)state;
	const char *text =
	    "{\"name\":\"Ada Lovelace\",\"topics\":[\"math\",\"engines\"],"
	    "\"born\":1815,\"neg\":-40000,\"score\":0.5,\"ok\":true,\"no\":false,"
	    "\"gone\":null,\"nested\":{\"z\":{\"y\":[1,[2,[3]]]}},\"nl\":\"\\u00fcber\"}";
	msgpack_sbuffer sb;
	msgpack_sbuffer_init(&sb);
	pack_text(&sb, text, LOKET_MAX_DEPTH);

	size_t used = 0;
	char err[256];
	assert_int_equal(value_check((const uint8_t *)sb.data, sb.size, LOKET_MAX_DEPTH,
	                             VALUE_CANONICAL, &used, err, sizeof(err)),
	                 0);
	assert_int_equal(used, sb.size);

	json_t *back = value_to_json((const uint8_t *)sb.data, sb.size);
	json_t *orig = json_loads(text, 0, NULL);
	assert_non_null(back);
	assert_true(json_equal(back, orig));
	json_decref(back);
	json_decref(orig);
	msgpack_sbuffer_destroy(&sb);
}

static void test_keys_sorted_bytewise_shorter_first(void **state)
{
	(void)state;
	msgpack_sbuffer sb;
	msgpack_sbuffer_init(&sb);
	pack_text(&sb, "{\"b\":1,\"aa\":2,\"a\":3}", 1);
	const uint8_t want[] = {0x83, 0xa1, 'a', 0x03, 0xa2, 'a', 'a', 0x02, 0xa1, 'b', 0x01};
	assert_int_equal(sb.size, sizeof(want));
	assert_memory_equal(sb.data, want, sizeof(want));
	msgpack_sbuffer_destroy(&sb);
}

static void test_integers_shortest(void **state)
{
	(void)state;
	static const struct {
		const char *json;
		uint8_t bytes[9];
		size_t len;
	} cases[] = {
	    {"5", {0x05}, 1},
	    {"-1", {0xff}, 1},
	    {"-32", {0xe0}, 1},
	    {"-33", {0xd0, 0xdf}, 2},
	    {"200", {0xcc, 0xc8}, 2},
	    {"300", {0xcd, 0x01, 0x2c}, 3},
	    {"-100", {0xd0, 0x9c}, 2},
	    {"70000", {0xce, 0x00, 0x01, 0x11, 0x70}, 5},
	    {"9223372036854775807", {0xcf, 0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}, 9},
	    {"-9223372036854775808", {0xd3, 0x80, 0, 0, 0, 0, 0, 0, 0}, 9},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		msgpack_sbuffer sb;
		msgpack_sbuffer_init(&sb);
		pack_text(&sb, cases[i].json, 0);
		assert_int_equal(sb.size, cases[i].len);
		assert_memory_equal(sb.data, cases[i].bytes, cases[i].len);
		assert_int_equal(check((const uint8_t *)sb.data, sb.size, VALUE_CANONICAL, NULL, 0),
		                 0);
		msgpack_sbuffer_destroy(&sb);
	}
}

static void test_rejects_duplicate_key(void **state)
{
	(void)state;
	const uint8_t sorted_dup[] = {0x82, 0xa1, 'x', 0x01, 0xa1, 'x', 0x02};
	const uint8_t unsorted_dup[] = {0x83, 0xa1, 'x', 0x01, 0xa1, 'a', 0x02, 0xa1, 'x', 0x03};
	char err[256];
	assert_int_equal(check(sorted_dup, sizeof(sorted_dup), VALUE_CANONICAL, err, sizeof(err)),
	                 LOKET_E_DUPLICATE_KEY);
	assert_non_null(strstr(err, "map key \"x\" appears twice"));
	assert_int_equal(check(unsorted_dup, sizeof(unsorted_dup), 0, err, sizeof(err)),
	                 LOKET_E_DUPLICATE_KEY);
	assert_non_null(strstr(err, "map key \"x\" appears twice"));
}

static void test_unsorted_keys_only_outside_canonical(void **state)
{
	(void)state;
	const uint8_t unsorted[] = {0x82, 0xa1, 'b', 0x01, 0xa1, 'a', 0x02};
	char err[256];
	assert_int_equal(check(unsorted, sizeof(unsorted), VALUE_CANONICAL, err, sizeof(err)),
	                 LOKET_E_NOT_CANONICAL);
	assert_non_null(strstr(err, "out of order"));
	assert_int_equal(check(unsorted, sizeof(unsorted), 0, err, sizeof(err)), 0);
}

static void test_rejects_big_unsorted_map(void **state)
{
	(void)state;
	/* 300 distinct keys "k000".."k299" written in descending order. */
	msgpack_sbuffer sb;
	msgpack_sbuffer_init(&sb);
	msgpack_packer pk;
	msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
	msgpack_pack_map(&pk, 300);
	for (int i = 299; i >= 0; i--) {
		char k[5] = {'k', (char)('0' + i / 100), (char)('0' + i / 10 % 10),
		             (char)('0' + i % 10), 0};
		msgpack_pack_str(&pk, 4);
		msgpack_pack_str_body(&pk, k, 4);
		msgpack_pack_nil(&pk);
	}
	char err[256];
	assert_int_equal(check((const uint8_t *)sb.data, sb.size, 0, err, sizeof(err)),
	                 LOKET_E_TOO_BIG);

	/* The same keys in ascending order are fine, and a repeat among them is found. */
	sb.size = 0;
	msgpack_pack_map(&pk, 301);
	for (int i = 0; i <= 300; i++) {
		int n = i < 300 ? i : 299;
		char k[5] = {'k', (char)('0' + n / 100), (char)('0' + n / 10 % 10),
		             (char)('0' + n % 10), 0};
		msgpack_pack_str(&pk, 4);
		msgpack_pack_str_body(&pk, k, 4);
		msgpack_pack_nil(&pk);
	}
	assert_int_equal(check((const uint8_t *)sb.data, sb.size, 0, err, sizeof(err)),
	                 LOKET_E_DUPLICATE_KEY);
	assert_non_null(strstr(err, "map key \"k299\" appears twice"));
	sb.data[1] = 0x01; /* map16 of 300 entries: drop the repeat */
	sb.data[2] = 0x2c;
	size_t used = 0;
	assert_int_equal(value_check((const uint8_t *)sb.data, sb.size, 1, VALUE_CANONICAL, &used,
	                             err, sizeof(err)),
	                 0);
	assert_int_equal(used, sb.size - 6);
	msgpack_sbuffer_destroy(&sb);
}

static void test_rejects_non_shortest_int(void **state)
{
	(void)state;
	const uint8_t five_u16[] = {0xcd, 0x00, 0x05};
	const uint8_t five_i8[] = {0xd0, 0x05};
	const uint8_t minus_one_i16[] = {0xd1, 0xff, 0xff};
	char err[256];
	assert_int_equal(check(five_u16, sizeof(five_u16), VALUE_CANONICAL, err, sizeof(err)),
	                 LOKET_E_NOT_CANONICAL);
	assert_non_null(strstr(err, "integer 5 not in shortest form"));
	assert_int_equal(check(five_i8, sizeof(five_i8), VALUE_CANONICAL, err, sizeof(err)),
	                 LOKET_E_NOT_CANONICAL);
	assert_int_equal(
	    check(minus_one_i16, sizeof(minus_one_i16), VALUE_CANONICAL, err, sizeof(err)),
	    LOKET_E_NOT_CANONICAL);
	assert_int_equal(check(five_u16, sizeof(five_u16), 0, err, sizeof(err)), 0);
}

static void test_rejects_uint64_beyond_int64(void **state)
{
	(void)state;
	const uint8_t big[] = {0xcf, 0x80, 0, 0, 0, 0, 0, 0, 0};
	char err[256];
	assert_int_equal(check(big, sizeof(big), VALUE_CANONICAL, err, sizeof(err)),
	                 LOKET_E_TOO_BIG);
	assert_int_equal(check(big, sizeof(big), 0, err, sizeof(err)), LOKET_E_TOO_BIG);
}

static void test_rejects_float32_and_nan(void **state)
{
	(void)state;
	const uint8_t f32[] = {0xca, 0x3f, 0x80, 0x00, 0x00};
	const uint8_t nan[] = {0xcb, 0x7f, 0xf8, 0, 0, 0, 0, 0, 0};
	const uint8_t half[] = {0xcb, 0x3f, 0xe0, 0, 0, 0, 0, 0, 0};
	char err[256];
	assert_int_equal(check(f32, sizeof(f32), VALUE_CANONICAL, err, sizeof(err)),
	                 LOKET_E_NOT_CANONICAL);
	assert_non_null(strstr(err, "float32"));
	assert_int_equal(check(nan, sizeof(nan), VALUE_CANONICAL, err, sizeof(err)),
	                 LOKET_E_NOT_CANONICAL);
	assert_non_null(strstr(err, "NaN"));
	assert_int_equal(check(half, sizeof(half), VALUE_CANONICAL, err, sizeof(err)), 0);

	/* VALUE_FINITE alone: any float width, but nothing JSON cannot hold. */
	const uint8_t inf32[] = {0xca, 0x7f, 0x80, 0x00, 0x00};
	assert_int_equal(check(nan, sizeof(nan), 0, err, sizeof(err)), 0);
	assert_int_equal(check(nan, sizeof(nan), VALUE_FINITE, err, sizeof(err)),
	                 LOKET_E_MALFORMED);
	assert_non_null(strstr(err, "NaN"));
	assert_int_equal(check(inf32, sizeof(inf32), VALUE_FINITE, err, sizeof(err)),
	                 LOKET_E_MALFORMED);
	assert_non_null(strstr(err, "infinite"));
	assert_int_equal(check(f32, sizeof(f32), VALUE_FINITE, err, sizeof(err)), 0);
}

static void test_rejects_bin_in_canonical(void **state)
{
	(void)state;
	const uint8_t bin[] = {0xc4, 0x02, 0xab, 0xcd};
	char err[256];
	assert_int_equal(check(bin, sizeof(bin), VALUE_CANONICAL, err, sizeof(err)),
	                 LOKET_E_NOT_CANONICAL);
	assert_int_equal(check(bin, sizeof(bin), 0, err, sizeof(err)), 0);
	json_t *hex = value_to_json(bin, sizeof(bin));
	assert_non_null(hex);
	assert_string_equal(json_string_value(hex), "abcd");
	json_decref(hex);
}

static void test_rejects_non_shortest_str_and_array(void **state)
{
	(void)state;
	const uint8_t str8[] = {0xd9, 0x01, 'a'};
	const uint8_t arr16[] = {0xdc, 0x00, 0x01, 0x01};
	assert_int_equal(check(str8, sizeof(str8), VALUE_CANONICAL, NULL, 0),
	                 LOKET_E_NOT_CANONICAL);
	assert_int_equal(check(arr16, sizeof(arr16), VALUE_CANONICAL, NULL, 0),
	                 LOKET_E_NOT_CANONICAL);
	assert_int_equal(check(str8, sizeof(str8), 0, NULL, 0), 0);
}

static void test_rejects_too_deep(void **state)
{
	(void)state;
	uint8_t nine[10];
	memset(nine, 0x91, 9); /* nine nested one-element arrays */
	nine[9] = 0x01;
	char err[256];
	assert_int_equal(check(nine, sizeof(nine), 0, err, sizeof(err)), LOKET_E_TOO_DEEP);
	assert_non_null(strstr(err, "nesting deeper than 8"));
	assert_int_equal(check(nine + 1, sizeof(nine) - 1, 0, err, sizeof(err)), 0);
}

static void test_rejects_huge_declared_count(void **state)
{
	(void)state;
	uint8_t p[17] = {0xdd, 0xff, 0xff, 0xff, 0xff};
	char err[256];
	assert_int_equal(check(p, sizeof(p), 0, err, sizeof(err)), LOKET_E_TRUNCATED);
	assert_non_null(strstr(err, "declared 4294967295 elements but only 12 bytes remain"));
	p[0] = 0xdf; /* map32 */
	assert_int_equal(check(p, sizeof(p), 0, err, sizeof(err)), LOKET_E_TRUNCATED);
}

static void test_rejects_bad_shapes(void **state)
{
	(void)state;
	const uint8_t ext[] = {0xd4, 0x01, 0x00};
	const uint8_t int_key[] = {0x81, 0x01, 0x02};
	const uint8_t bad_utf8[] = {0xa2, 0xc3, 0x28};
	const uint8_t surrogate[] = {0xa3, 0xed, 0xa0, 0x80};
	const uint8_t never[] = {0xc1};
	const uint8_t cut[] = {0xa5, 'a', 'b'};
	assert_int_equal(check(ext, sizeof(ext), 0, NULL, 0), LOKET_E_MALFORMED);
	assert_int_equal(check(int_key, sizeof(int_key), 0, NULL, 0), LOKET_E_MALFORMED);
	assert_int_equal(check(bad_utf8, sizeof(bad_utf8), 0, NULL, 0), LOKET_E_MALFORMED);
	assert_int_equal(check(surrogate, sizeof(surrogate), 0, NULL, 0), LOKET_E_MALFORMED);
	assert_int_equal(check(never, sizeof(never), 0, NULL, 0), LOKET_E_MALFORMED);
	assert_int_equal(check(cut, sizeof(cut), 0, NULL, 0), LOKET_E_TRUNCATED);
	assert_int_equal(check(cut, 0, 0, NULL, 0), LOKET_E_TRUNCATED);
}

static void test_used_leaves_trailing_bytes_to_caller(void **state)
{
	(void)state;
	const uint8_t two[] = {0x01, 0x02};
	size_t used = 0;
	assert_int_equal(value_check(two, sizeof(two), 0, VALUE_CANONICAL, &used, NULL, 0), 0);
	assert_int_equal(used, 1);
}

static void test_pack_error_names_path(void **state)
{
	(void)state;
	json_t *v = json_pack("{s:{s:[s,s,[i]]}}", "fields", "topics", "a", "b", 3);
	assert_non_null(v);
	msgpack_sbuffer sb;
	msgpack_sbuffer_init(&sb);
	msgpack_packer pk;
	msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
	char err[256];
	assert_int_equal(value_pack_json(&pk, v, 3, err, sizeof(err)), LOKET_E_TOO_DEEP);
	assert_string_equal(err, "\"fields.topics[2]\": nesting deeper than 3");

	json_t *bad = json_pack("{s:[s,o]}", "topics", "ok", json_stringn_nocheck("\xff", 1));
	assert_non_null(bad);
	sb.size = 0;
	assert_int_equal(value_pack_json(&pk, bad, 8, err, sizeof(err)), LOKET_E_MALFORMED);
	assert_string_equal(err, "\"topics[1]\": string is not valid UTF-8");
	json_decref(bad);
	json_decref(v);
	msgpack_sbuffer_destroy(&sb);
}

static void test_message_round_trip(void **state)
{
	(void)state;
	json_t *msg = json_pack("{s:s,s:[{s:s,s:s,s:{s:s}}]}", "cmd", "put", "ops", "coll",
	                        "expert", "id", "ada", "fields", "name", "Ada");
	msgpack_sbuffer sb;
	msgpack_sbuffer_init(&sb);
	assert_int_equal(value_encode_message(msg, &sb), 0);
	json_t *back = NULL;
	char err[256];
	assert_int_equal(
	    value_decode_message((const uint8_t *)sb.data, sb.size, &back, err, sizeof(err)), 0);
	assert_true(json_equal(msg, back));
	json_decref(back);

	json_t *arr = json_array();
	assert_int_equal(value_encode_message(arr, &sb), LOKET_E_MALFORMED);
	json_decref(arr);
	json_decref(msg);
	msgpack_sbuffer_destroy(&sb);
}

static void test_decode_message_accepts_other_writers(void **state)
{
	(void)state;
	/* Unsorted keys, a uint16 for 5, and bin: what another client may send. */
	const uint8_t p[] = {0x83, 0xa3, 'c', 'm',  'd',  0xa6, 's',  't', 'a',  't',  'u',
	                     's',  0xa1, 'n', 0xcd, 0x00, 0x05, 0xa1, 'b', 0xc4, 0x01, 0x0f};
	json_t *v = NULL;
	char err[256];
	assert_int_equal(value_decode_message(p, sizeof(p), &v, err, sizeof(err)), 0);
	assert_string_equal(json_string_value(json_object_get(v, "cmd")), "status");
	assert_int_equal(json_integer_value(json_object_get(v, "n")), 5);
	assert_string_equal(json_string_value(json_object_get(v, "b")), "0f");
	json_decref(v);
}

static void test_decode_message_rejections(void **state)
{
	(void)state;
	json_t *v = NULL;
	char err[256];
	const uint8_t not_map[] = {0x91, 0x01};
	const uint8_t trailing[] = {0x80, 0x00};
	const uint8_t dup[] = {0x82, 0xa1, 'a', 0x01, 0xa1, 'a', 0x02};
	const uint8_t nan[] = {0x81, 0xa1, 'a', 0xcb, 0x7f, 0xf8, 0, 0, 0, 0, 0, 0};
	assert_int_equal(value_decode_message(not_map, sizeof(not_map), &v, err, sizeof(err)),
	                 LOKET_E_MALFORMED);
	assert_int_equal(value_decode_message(trailing, sizeof(trailing), &v, err, sizeof(err)),
	                 LOKET_E_TRAILING);
	assert_int_equal(value_decode_message(dup, sizeof(dup), &v, err, sizeof(err)),
	                 LOKET_E_DUPLICATE_KEY);
	assert_int_equal(value_decode_message(nan, sizeof(nan), &v, err, sizeof(err)),
	                 LOKET_E_MALFORMED);
	assert_int_equal(value_decode_message(not_map, 0, &v, err, sizeof(err)), LOKET_E_TRUNCATED);
	assert_null(v);

	/* Seventeen nested maps {"a":{"a":...}} exceed the message depth of 16. */
	uint8_t deep[17 * 3 + 1];
	for (size_t i = 0; i < 17; i++) {
		deep[3 * i] = 0x81;
		deep[3 * i + 1] = 0xa1;
		deep[3 * i + 2] = 'a';
	}
	deep[sizeof(deep) - 1] = 0xc0;
	assert_int_equal(value_decode_message(deep, sizeof(deep), &v, err, sizeof(err)),
	                 LOKET_E_TOO_DEEP);
	assert_int_equal(value_decode_message(deep + 3, sizeof(deep) - 3, &v, err, sizeof(err)), 0);
	json_decref(v);

	uint8_t *big = calloc(1, LOKET_MAX_MESSAGE_BYTES + 1);
	assert_non_null(big);
	big[0] = 0x80;
	assert_int_equal(
	    value_decode_message(big, LOKET_MAX_MESSAGE_BYTES + 1, &v, err, sizeof(err)),
	    LOKET_E_TOO_BIG);
	free(big);
}

/* A 2 MiB message of empty maps decodes to 490 MB; the bound on values refuses it. */
static void test_decode_message_bounds_values(void **state)
{
	(void)state;
	size_t n = LOKET_MAX_MESSAGE_BYTES - 16, o = 0;
	uint8_t *p = malloc(n);
	json_t *v = NULL;
	char err[256];
	assert_non_null(p);
	p[o++] = 0x81;
	p[o++] = 0xa1;
	p[o++] = 'x';
	p[o++] = 0xdd;
	size_t count = n - o - 4;
	p[o++] = (uint8_t)(count >> 24);
	p[o++] = (uint8_t)(count >> 16);
	p[o++] = (uint8_t)(count >> 8);
	p[o++] = (uint8_t)count;
	memset(p + o, 0x80, count);
	assert_int_equal(value_decode_message(p, n, &v, err, sizeof(err)), LOKET_E_TOO_BIG);
	assert_null(v);
	assert_non_null(strstr(err, "more than 16384 values"));

	/* Just below the bound it decodes: the top map, its key, the array, 16381 maps. */
	size_t fits = LOKET_MAX_MESSAGE_ELEMENTS - 3;
	p[5] = (uint8_t)(fits >> 16);
	p[6] = (uint8_t)(fits >> 8);
	p[7] = (uint8_t)fits;
	p[4] = 0;
	assert_int_equal(value_decode_message(p, 8 + fits, &v, err, sizeof(err)), 0);
	assert_int_equal(json_array_size(json_object_get(v, "x")), fits);
	json_decref(v);
	p[7] = (uint8_t)(fits + 1);
	assert_int_equal(value_decode_message(p, 9 + fits, &v, err, sizeof(err)), LOKET_E_TOO_BIG);
	/* The CLI reads its own daemon's replies without the bound. */
	assert_int_equal(value_decode_message_limit(p, 9 + fits, 0, &v, err, sizeof(err)), 0);
	json_decref(v);
	free(p);
}

/* Messages name the path to the value at fault; under a root, without an offset. */
static void test_check_names_the_path(void **state)
{
	(void)state;
	char err[256];
	size_t used;
	/* {"ops":[{"fields":{"n":uint64 max}}]} */
	const uint8_t big[] = {0x81, 0xa3, 'o',  'p',  's',  0x91, 0x81, 0xa6, 'f',
	                       'i',  'e',  'l',  'd',  's',  0x81, 0xa1, 'n',  0xcf,
	                       0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff};
	assert_int_equal(value_check(big, sizeof(big), 16, 0, &used, err, sizeof(err)),
	                 LOKET_E_TOO_BIG);
	assert_string_equal(err, "\"ops[0].fields.n\": integer 18446744073709551615 beyond the "
	                         "int64 range at byte 17");
	struct value_rules r = {.max_depth = 8, .root = "fields"};
	assert_int_equal(value_check_rules(big + 14, sizeof(big) - 14, &r, &used, err, sizeof(err)),
	                 LOKET_E_TOO_BIG);
	assert_string_equal(err,
	                    "\"fields.n\": integer 18446744073709551615 beyond the int64 range");
	/* A key that is not UTF-8 is quoted with its escapes. */
	const uint8_t badkey[] = {0x81, 0xa1, 0xff, 0x01};
	assert_int_equal(value_check_rules(badkey, sizeof(badkey), &r, &used, err, sizeof(err)),
	                 LOKET_E_MALFORMED);
	assert_string_equal(err, "\"fields\": map key \"\\xff\" is not valid UTF-8");
}

/* Clients' requests must send text as str: Python's msgpack sends bytes as bin. */
static void test_check_no_bin(void **state)
{
	(void)state;
	char err[256];
	size_t used;
	const uint8_t p[] = {0x81, 0xa3, 'c', 'm', 'd', 0xc4, 0x02, 'o', 'k'};
	struct value_rules r = {.max_depth = 16};
	assert_int_equal(value_check_rules(p, sizeof(p), &r, &used, err, sizeof(err)), 0);
	r.flags = VALUE_NO_BIN;
	assert_int_equal(value_check_rules(p, sizeof(p), &r, &used, err, sizeof(err)),
	                 LOKET_E_MALFORMED);
	assert_string_equal(
	    err, "\"cmd\": bin where a string is meant (send text as msgpack str) at byte 5");
}

static void test_strerror_covers_every_code(void **state)
{
	(void)state;
	for (int c = LOKET_E_FIRST; c < LOKET_E_LAST; c++) {
		const char *s = loket_strerror(c);
		assert_non_null(s);
		assert_string_not_equal(s, "Unknown loket error");
	}
	assert_string_equal(loket_strerror(-ENOENT), strerror(ENOENT));
	assert_string_equal(loket_strerror(0), "Success");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_pack_check_unpack_round_trip),
	    cmocka_unit_test(test_keys_sorted_bytewise_shorter_first),
	    cmocka_unit_test(test_integers_shortest),
	    cmocka_unit_test(test_rejects_duplicate_key),
	    cmocka_unit_test(test_unsorted_keys_only_outside_canonical),
	    cmocka_unit_test(test_rejects_big_unsorted_map),
	    cmocka_unit_test(test_rejects_non_shortest_int),
	    cmocka_unit_test(test_rejects_uint64_beyond_int64),
	    cmocka_unit_test(test_rejects_float32_and_nan),
	    cmocka_unit_test(test_rejects_bin_in_canonical),
	    cmocka_unit_test(test_rejects_non_shortest_str_and_array),
	    cmocka_unit_test(test_rejects_too_deep),
	    cmocka_unit_test(test_rejects_huge_declared_count),
	    cmocka_unit_test(test_rejects_bad_shapes),
	    cmocka_unit_test(test_used_leaves_trailing_bytes_to_caller),
	    cmocka_unit_test(test_pack_error_names_path),
	    cmocka_unit_test(test_message_round_trip),
	    cmocka_unit_test(test_decode_message_accepts_other_writers),
	    cmocka_unit_test(test_decode_message_rejections),
	    cmocka_unit_test(test_decode_message_bounds_values),
	    cmocka_unit_test(test_check_names_the_path),
	    cmocka_unit_test(test_check_no_bin),
	    cmocka_unit_test(test_strerror_covers_every_code),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
