/* Reading a put request's ops from msgpack: what is taken, how, and each refusal. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "daemon/put_ops.h"
#include "proto/error.h"
#include "proto/limits.h"
#include "proto/value.h"

/* Packs a JSON text the way a client other than loket might: as given. */
static void pack_json(msgpack_sbuffer *sb, const char *text)
{
	json_error_t jerr;
	json_t *v = json_loads(text, 0, &jerr);
	assert_non_null(v);
	msgpack_sbuffer_init(sb);
	assert_int_equal(value_encode_message(v, sb), 0);
	json_decref(v);
}

/*
 * Parses the ops of {"cmd":"put","ops":OPS} held in sb, which the ops point
 * into: the caller destroys sb after looking at them.
 */
static int parse_request(const msgpack_sbuffer *sb, struct put_ops *po, long *index, char *err,
                         size_t errlen)
{
	const uint8_t *ops;
	size_t ops_len;

	assert_int_equal(put_ops_find((const uint8_t *)sb->data, sb->size, &ops, &ops_len), 1);
	return put_ops_parse(po, ops, ops_len, index, err, errlen);
}

static int parse(msgpack_sbuffer *sb, struct put_ops *po, const char *ops_json, long *index,
                 char *err, size_t errlen)
{
	char text[4096];

	snprintf(text, sizeof(text), "{\"cmd\":\"put\",\"ops\":%s}", ops_json);
	pack_json(sb, text);
	return parse_request(sb, po, index, err, errlen);
}

static void test_find(void **state)
{
	(void)state;
	msgpack_sbuffer sb;
	const uint8_t *ops;
	size_t len;

	pack_json(&sb, "{\"cmd\":\"put\",\"ops\":[1]}");
	assert_int_equal(put_ops_find((const uint8_t *)sb.data, sb.size, &ops, &len), 1);
	assert_int_equal(len, 2);
	assert_int_equal(ops[0], 0x91);
	msgpack_sbuffer_destroy(&sb);

	pack_json(&sb, "{\"cmd\":\"get\",\"ops\":[1]}");
	assert_int_equal(put_ops_find((const uint8_t *)sb.data, sb.size, &ops, &len), 0);
	msgpack_sbuffer_destroy(&sb);

	pack_json(&sb, "{\"cmd\":\"put\"}");
	assert_int_equal(put_ops_find((const uint8_t *)sb.data, sb.size, &ops, &len), 1);
	assert_null(ops);
	msgpack_sbuffer_destroy(&sb);

	/* A stray byte after the request: "ops" runs to the end and is refused there. */
	pack_json(&sb,
	          "{\"cmd\":\"put\",\"ops\":[{\"coll\":\"expert\",\"id\":\"a\",\"del\":true}]}");
	msgpack_sbuffer_write(&sb, "\xc0", 1);
	assert_int_equal(put_ops_find((const uint8_t *)sb.data, sb.size, &ops, &len), 1);
	struct put_ops po;
	long index;
	char err[128];
	assert_int_equal(put_ops_parse(&po, ops, len, &index, err, sizeof(err)), LOKET_E_TRAILING);
	assert_string_equal(err, "1 bytes follow the ops");
	put_ops_release(&po);
	msgpack_sbuffer_destroy(&sb);

	/* {"cmd":"put","cmd":"put"}: a key twice is left to the generic path, which refuses it. */
	static const uint8_t twice[] = {0x82, 0xa3, 'c', 'm', 'd',  0xa3, 'p', 'u', 't',
	                                0xa3, 'c',  'm', 'd', 0xa3, 'p',  'u', 't'};
	assert_int_equal(put_ops_find(twice, sizeof(twice), &ops, &len), 0);
	/* A key that is not UTF-8, likewise. */
	static const uint8_t not_utf8[] = {0x82, 0xa3, 'c',  'm', 'd',  0xa3, 'p',
	                                   'u',  't',  0xa2, 'o', 0xff, 0x90};
	assert_int_equal(put_ops_find(not_utf8, sizeof(not_utf8), &ops, &len), 0);

	/* {"cmd":"put","x":NaN}: JSON cannot hold it, so the generic path refuses it too. */
	static const uint8_t nan_key[] = {0x82, 0xa3, 'c',  'm',  'd',  0xa3, 'p',
	                                  'u',  't',  0xa1, 'x',  0xcb, 0x7f, 0xf8,
	                                  0x00, 0x00, 0x00, 0x00, 0x00, 0x00};
	assert_int_equal(put_ops_find(nan_key, sizeof(nan_key), &ops, &len), 0);
	static const uint8_t inf32_key[] = {0x82, 0xa3, 'c', 'm',  'd',  0xa3, 'p',  'u',
	                                    't',  0xa1, 'x', 0xca, 0x7f, 0x80, 0x00, 0x00};
	assert_int_equal(put_ops_find(inf32_key, sizeof(inf32_key), &ops, &len), 0);
	/* Any key but "cmd" and "ops" too: the generic path names it (proto/request.c). */
	static const uint8_t finite_key[] = {0x82, 0xa3, 'c', 'm',  'd',  0xa3, 'p',  'u',
	                                     't',  0xa1, 'x', 0xca, 0x3f, 0x80, 0x00, 0x00};
	assert_int_equal(put_ops_find(finite_key, sizeof(finite_key), &ops, &len), 0);

	/* ["cmd", "put"]: not a map */
	static const uint8_t array[] = {0x92, 0xa3, 'c', 'm', 'd', 0xa3, 'p', 'u', 't'};
	assert_int_equal(put_ops_find(array, sizeof(array), &ops, &len), 0);
}

static void test_canonical_fields_used_in_place(void **state)
{
	(void)state;
	msgpack_sbuffer sb;
	struct put_ops po;
	long index;
	char err[256];

	assert_int_equal(parse(&sb, &po,
	                       "[{\"coll\":\"expert\",\"id\":\"a\",\"fields\":{\"name\":\"A\"}},"
	                       " {\"coll\":\"expert\",\"id\":\"b\",\"del\":true}]",
	                       &index, err, sizeof(err)),
	                 0);
	assert_int_equal(po.n, 2);
	assert_int_equal(po.ops[0].kind, OP_PUT);
	assert_memory_equal(po.ops[0].coll, "expert", 6);
	assert_int_equal(po.ops[0].id_len, 1);
	static const uint8_t name_a[] = {0x81, 0xa4, 'n', 'a', 'm', 'e', 0xa1, 'A'};
	assert_int_equal(po.ops[0].fields_len, sizeof(name_a));
	assert_memory_equal(po.ops[0].fields, name_a, sizeof(name_a));
	assert_int_equal(po.repacked.size, 0);
	assert_int_equal(po.ops[1].kind, OP_DEL);
	assert_null(po.ops[1].fields);
	put_ops_release(&po);
	msgpack_sbuffer_destroy(&sb);
}

/* Keys out of order (value_encode_message keeps jansson's order) are packed canonically. */
static void test_other_fields_repacked(void **state)
{
	(void)state;
	msgpack_sbuffer sb;
	msgpack_sbuffer_init(&sb);
	msgpack_packer pk;
	msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
	/* {"cmd":"put","ops":[{"coll":"x","id":"i","fields":{"b":1,"a":2}}]}, b before a */
	msgpack_pack_map(&pk, 2);
	msgpack_pack_str_with_body(&pk, "cmd", 3);
	msgpack_pack_str_with_body(&pk, "put", 3);
	msgpack_pack_str_with_body(&pk, "ops", 3);
	msgpack_pack_array(&pk, 1);
	msgpack_pack_map(&pk, 3);
	msgpack_pack_str_with_body(&pk, "coll", 4);
	msgpack_pack_str_with_body(&pk, "x", 1);
	msgpack_pack_str_with_body(&pk, "id", 2);
	msgpack_pack_str_with_body(&pk, "i", 1);
	msgpack_pack_str_with_body(&pk, "fields", 6);
	msgpack_pack_map(&pk, 2);
	msgpack_pack_str_with_body(&pk, "b", 1);
	msgpack_pack_int64(&pk, 1); /* not the shortest form either */
	msgpack_pack_str_with_body(&pk, "a", 1);
	msgpack_pack_int(&pk, 2);

	struct put_ops po;
	long index;
	char err[256];
	assert_int_equal(parse_request(&sb, &po, &index, err, sizeof(err)), 0);
	static const uint8_t canonical[] = {0x82, 0xa1, 'a', 0x02, 0xa1, 'b', 0x01};
	assert_int_equal(po.ops[0].fields_len, sizeof(canonical));
	assert_memory_equal(po.ops[0].fields, canonical, sizeof(canonical));
	assert_ptr_equal(po.ops[0].fields, po.repacked.data);
	put_ops_release(&po);
	msgpack_sbuffer_destroy(&sb);
}

static void expect_refusal(const char *ops, int code, long at, const char *message)
{
	msgpack_sbuffer sb;
	struct put_ops po;
	long index;
	char err[256];

	assert_int_equal(parse(&sb, &po, ops, &index, err, sizeof(err)), code);
	assert_int_equal(index, at);
	assert_string_equal(err, message);
	put_ops_release(&po);
	msgpack_sbuffer_destroy(&sb);
}

static void test_refusals(void **state)
{
	(void)state;
	char many[64];
	snprintf(many, sizeof(many), "\"ops\" must be an array of 1 to %u ops", LOKET_MAX_OPS);
	expect_refusal("[]", LOKET_E_BAD_REQUEST, -1, many);
	expect_refusal("{}", LOKET_E_BAD_REQUEST, -1, many);
	expect_refusal("[1]", LOKET_E_BAD_REQUEST, 0, "the op is not a map");

	const char *good = "{\"coll\":\"expert\",\"id\":\"a\",\"fields\":{\"name\":\"A\"}}";
	char two[256];
	snprintf(two, sizeof(two), "[%s, {\"coll\":\"expert\",\"id\":\"b\",\"colour\":1}]", good);
	expect_refusal(two, LOKET_E_BAD_REQUEST, 1, "unknown key \"colour\"");
	expect_refusal("[{\"coll\":\"expert\",\"id\":\"b\",\"col\\nour\\\"\":1}]",
	               LOKET_E_BAD_REQUEST, 0, "unknown key \"col\\x0aour\\\"\"");

	char coll[128], id[128], fields[64];
	snprintf(coll, sizeof(coll),
	         "\"coll\" must be a collection name ([a-z][a-z0-9_]*, at most %u bytes)",
	         LOKET_MAX_COLL_LEN);
	snprintf(id, sizeof(id), "\"id\" must be an entity id ([A-Za-z0-9._:@-], at most %u bytes)",
	         LOKET_MAX_ID_LEN);
	snprintf(fields, sizeof(fields), "\"fields\" must be a map of 1 to %u fields",
	         LOKET_MAX_FIELDS);
	expect_refusal("[{\"id\":\"a\",\"fields\":{\"n\":1}}]", LOKET_E_BAD_REQUEST, 0, coll);
	expect_refusal("[{\"coll\":\"Expert\",\"id\":\"a\",\"fields\":{\"n\":1}}]",
	               LOKET_E_BAD_REQUEST, 0, coll);
	expect_refusal("[{\"coll\":\"expert\",\"id\":7,\"fields\":{\"n\":1}}]", LOKET_E_BAD_REQUEST,
	               0, id);
	expect_refusal("[{\"coll\":\"expert\",\"id\":\"a b\",\"fields\":{\"n\":1}}]",
	               LOKET_E_BAD_REQUEST, 0, id);
	expect_refusal("[{\"coll\":\"expert\",\"id\":\"a\",\"del\":true,\"fields\":{\"n\":1}}]",
	               LOKET_E_BAD_REQUEST, 0, "\"del\" must be true and comes without fields");
	expect_refusal("[{\"coll\":\"expert\",\"id\":\"a\",\"del\":false}]", LOKET_E_BAD_REQUEST, 0,
	               "\"del\" must be true and comes without fields");
	expect_refusal("[{\"coll\":\"expert\",\"id\":\"a\",\"fields\":{}}]", LOKET_E_BAD_REQUEST, 0,
	               fields);
	expect_refusal("[{\"coll\":\"expert\",\"id\":\"a\",\"fields\":[1]}]", LOKET_E_BAD_REQUEST,
	               0, fields);
	expect_refusal("[{\"coll\":\"expert\",\"id\":\"a\",\"fields\":null}]", LOKET_E_BAD_REQUEST,
	               0, fields);
	/* A nil "del" is no delete: the op is a put, and needs fields. */
	msgpack_sbuffer sb;
	struct put_ops po;
	long index;
	char err[256];
	assert_int_equal(
	    parse(&sb, &po,
	          "[{\"coll\":\"expert\",\"id\":\"a\",\"del\":null,\"fields\":{\"n\":1}}]", &index,
	          err, sizeof(err)),
	    0);
	assert_int_equal(po.ops[0].kind, OP_PUT);
	put_ops_release(&po);
	msgpack_sbuffer_destroy(&sb);
}

/* Fields beyond the changeset limits are refused with the changeset's own reason. */
static void test_field_limits(void **state)
{
	(void)state;
	static char text[LOKET_MAX_FIELD_BYTES + 200];
	int w = snprintf(text, sizeof(text),
	                 "{\"cmd\":\"put\",\"ops\":[{\"coll\":\"expert\",\"id\":\"a\","
	                 "\"fields\":{\"big\":\"");
	memset(text + w, 'x', LOKET_MAX_FIELD_BYTES);
	snprintf(text + w + LOKET_MAX_FIELD_BYTES, sizeof(text) - (size_t)w - LOKET_MAX_FIELD_BYTES,
	         "\"}}]}");
	msgpack_sbuffer sb;
	pack_json(&sb, text);
	struct put_ops po;
	long index;
	char err[256];
	assert_int_equal(parse_request(&sb, &po, &index, err, sizeof(err)), LOKET_E_TOO_BIG);
	assert_int_equal(index, 0);
	assert_non_null(strstr(err, "big"));
	put_ops_release(&po);
	msgpack_sbuffer_destroy(&sb);
}

/*
 * {"cmd":"put","ops":[{"coll":"expert","id":"a",KEY:VALUE}]} with VALUE as
 * raw msgpack bytes, parsed; the refusal must read message.
 */
static void expect_raw_refusal(const char *key, const uint8_t *raw, size_t raw_len, int code,
                               const char *message)
{
	msgpack_sbuffer sb;
	msgpack_packer pk;
	struct put_ops po;
	long index;
	char err[256];

	msgpack_sbuffer_init(&sb);
	msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
	msgpack_pack_map(&pk, 2);
	msgpack_pack_str_with_body(&pk, "cmd", 3);
	msgpack_pack_str_with_body(&pk, "put", 3);
	msgpack_pack_str_with_body(&pk, "ops", 3);
	msgpack_pack_array(&pk, 1);
	msgpack_pack_map(&pk, 3);
	msgpack_pack_str_with_body(&pk, "coll", 4);
	msgpack_pack_str_with_body(&pk, "expert", 6);
	msgpack_pack_str_with_body(&pk, "id", 2);
	msgpack_pack_str_with_body(&pk, "a", 1);
	msgpack_pack_str_with_body(&pk, key, strlen(key));
	msgpack_sbuffer_write(&sb, (const char *)raw, raw_len);
	assert_int_equal(parse_request(&sb, &po, &index, err, sizeof(err)), code);
	assert_int_equal(index, 0);
	assert_string_equal(err, message);
	put_ops_release(&po);
	msgpack_sbuffer_destroy(&sb);
}

/* Each way an op's fields can be malformed has its own sentence, naming the field. */
static void test_malformed_fields_named(void **state)
{
	(void)state;
	static const uint8_t big_int[] = {0x81, 0xa1, 'n', 0xcf, 0x80, 0, 0, 0, 0, 0, 0, 0};
	expect_raw_refusal("fields", big_int, sizeof(big_int), LOKET_E_TOO_BIG,
	                   "\"fields.n\": integer 9223372036854775808 beyond the int64 range");
	static const uint8_t nan[] = {0x81, 0xa1, 'x', 0xcb, 0x7f, 0xf8, 0, 0, 0, 0, 0, 0};
	expect_raw_refusal("fields", nan, sizeof(nan), LOKET_E_MALFORMED,
	                   "\"fields.x\": float is NaN");
	static const uint8_t inf[] = {0x81, 0xa1, 'x', 0x91, 0xca, 0x7f, 0x80, 0x00, 0x00};
	expect_raw_refusal("fields", inf, sizeof(inf), LOKET_E_MALFORMED,
	                   "\"fields.x[0]\": float is infinite");
	static const uint8_t int_key[] = {0x81, 0x01, 0x01};
	expect_raw_refusal("fields", int_key, sizeof(int_key), LOKET_E_MALFORMED,
	                   "\"fields\": map key is not a string");
	static const uint8_t bad_key[] = {0x81, 0xa2, 'a', 0xc3, 0x01};
	expect_raw_refusal("fields", bad_key, sizeof(bad_key), LOKET_E_MALFORMED,
	                   "\"fields\": map key \"a\\xc3\" is not valid UTF-8");
	static const uint8_t bad_text[] = {0x81, 0xa1, 't', 0xa1, 0xff};
	expect_raw_refusal("fields", bad_text, sizeof(bad_text), LOKET_E_MALFORMED,
	                   "\"fields.t\": string is not valid UTF-8");
	static const uint8_t dup[] = {0x82, 0xa1, 'b', 0x01, 0xa1, 'b', 0x02};
	expect_raw_refusal("fields", dup, sizeof(dup), LOKET_E_DUPLICATE_KEY,
	                   "\"fields\": map key \"b\" appears twice");
	static const uint8_t bin[] = {0x81, 0xa4, 'n', 'a', 'm', 'e', 0xc4, 0x01, 'A'};
	expect_raw_refusal("fields", bin, sizeof(bin), LOKET_E_MALFORMED,
	                   "\"fields.name\": bin where a string is meant (send text as msgpack "
	                   "str)");
	/* 257 fields, sorted: one more than an op may set. */
	uint8_t many[3 + 257 * 5];
	size_t o = 0;
	many[o++] = 0xde;
	many[o++] = 0x01;
	many[o++] = 0x01;
	for (unsigned i = 0; i < 257; i++) {
		many[o++] = 0xa3;
		many[o++] = (uint8_t)('a' + i / 100);
		many[o++] = (uint8_t)('0' + i / 10 % 10);
		many[o++] = (uint8_t)('0' + i % 10);
		many[o++] = 0x01;
	}
	char msg[96];
	snprintf(msg, sizeof(msg), "\"fields\" must be a map of 1 to %u fields (it has 257)",
	         LOKET_MAX_FIELDS);
	expect_raw_refusal("fields", many, sizeof(many), LOKET_E_BAD_REQUEST, msg);
	/* Nesting deeper than a changeset holds. */
	static const uint8_t deep[] = {0x81, 0xa1, 'd',  0x91, 0x91, 0x91,
	                               0x91, 0x91, 0x91, 0x91, 0x91, 0x01};
	expect_raw_refusal("fields", deep, sizeof(deep), LOKET_E_TOO_DEEP,
	                   "\"fields.d[0][0][0][0][0][0][0]\": nesting deeper than 8");
	/* The op's own keys: once each, as str, never bin. */
	static const uint8_t coll_again[] = {0xa3, 'o', 'r', 'g'};
	expect_raw_refusal("coll", coll_again, sizeof(coll_again), LOKET_E_DUPLICATE_KEY,
	                   "key \"coll\" appears twice in the op");
	static const uint8_t del_nan[] = {0xcb, 0x7f, 0xf8, 0, 0, 0, 0, 0, 0};
	expect_raw_refusal("del", del_nan, sizeof(del_nan), LOKET_E_MALFORMED,
	                   "\"del\": float is NaN");
}

/* coll and id sent as bin (Python's bytes) are refused as such. */
static void test_bin_coll_refused(void **state)
{
	(void)state;
	static const uint8_t op[] = {0x92, 0x82, 0xa4, 'c', 'o', 'l',  'l', 0xc4, 0x06, 'e',
	                             'x',  'p',  'e',  'r', 't', 0xa2, 'i', 'd',  0xa1, 'a'};
	msgpack_sbuffer sb;
	msgpack_sbuffer_init(&sb);
	msgpack_sbuffer_write(&sb,
	                      "\x82\xa3"
	                      "cmd"
	                      "\xa3"
	                      "put"
	                      "\xa3"
	                      "ops",
	                      13);
	msgpack_sbuffer_write(&sb, (const char *)op, sizeof(op));
	struct put_ops po;
	long index;
	char err[256];
	/* The array says 2 ops but holds one: the first is refused before that shows. */
	assert_int_equal(parse_request(&sb, &po, &index, err, sizeof(err)), LOKET_E_BAD_REQUEST);
	assert_string_equal(err,
	                    "\"coll\" is a bin where a string is meant (send text as msgpack str)");
	put_ops_release(&po);
	msgpack_sbuffer_destroy(&sb);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_find),
	    cmocka_unit_test(test_canonical_fields_used_in_place),
	    cmocka_unit_test(test_other_fields_repacked),
	    cmocka_unit_test(test_refusals),
	    cmocka_unit_test(test_field_limits),
	    cmocka_unit_test(test_malformed_fields_named),
	    cmocka_unit_test(test_bin_coll_refused),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
