/*
 * The control request decoder: what a request must be before any handler
 * sees it, and the sentence each refusal gives.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "proto/error.h"
#include "proto/limits.h"
#include "proto/request.h"
#include "proto/value.h"

/* Encodes a JSON text as a request (keys in the order jansson keeps). */
static int decode_json(const char *text, json_t **out, char *err, size_t errlen)
{
	json_error_t jerr;
	json_t *v = json_loads(text, 0, &jerr);
	msgpack_sbuffer sb;
	assert_non_null(v);
	msgpack_sbuffer_init(&sb);
	assert_int_equal(value_encode_message(v, &sb), 0);
	json_decref(v);
	int rc = request_decode((const uint8_t *)sb.data, sb.size, out, err, errlen);
	msgpack_sbuffer_destroy(&sb);
	return rc;
}

static void expect(const char *text, int code, const char *message)
{
	json_t *req = NULL;
	char err[512];
	assert_int_equal(decode_json(text, &req, err, sizeof(err)), code);
	if (code == 0) {
		assert_non_null(req);
		json_decref(req);
		return;
	}
	assert_null(req);
	assert_string_equal(err, message);
}

static void test_accepts_what_the_protocol_names(void **state)
{
	(void)state;
	expect("{\"cmd\":\"status\"}", 0, NULL);
	expect("{\"cmd\":\"list\",\"coll\":\"expert\",\"owner\":null,\"limit\":5}", 0, NULL);
	expect("{\"cmd\":\"search\",\"text\":\"water\"}", 0, NULL);
	/* A command the table does not know is left to whoever serves it. */
	expect("{\"cmd\":\"selftest\",\"path\":\"/tmp/x\"}", 0, NULL);
	expect("{\"cmd\":\"backup\",\"file\":\"/tmp/x\"}", 0, NULL);
	expect("{\"cmd\":\"resume\",\"force\":true}", 0, NULL);
	expect("{\"cmd\":\"changes\",\"since\":null,\"limit\":1000}", 0, NULL);
}

static void test_refuses_unknown_and_missing_keys(void **state)
{
	(void)state;
	expect("{\"cmd\":\"list\",\"coll\":\"expert\",\"offset\":10}", LOKET_E_BAD_REQUEST,
	       "unknown key \"offset\" in a list request (list takes \"coll\", \"owner\", "
	       "\"limit\")");
	expect("{\"cmd\":\"status\",\"verbose\":true}", LOKET_E_BAD_REQUEST,
	       "unknown key \"verbose\" in a status request (status takes no key but \"cmd\")");
	expect("{\"cmd\":\"get\",\"coll\":\"expert\"}", LOKET_E_BAD_REQUEST,
	       "request lacks \"id\"");
	expect("{\"coll\":\"expert\"}", LOKET_E_BAD_REQUEST, "request lacks \"cmd\"");
	expect("{\"cmd\":7}", LOKET_E_BAD_REQUEST, "\"cmd\" must be a non-empty string");
	expect("{\"cmd\":\"put\",\"ops\":[],\"dry\":true}", LOKET_E_BAD_REQUEST,
	       "unknown key \"dry\" in a put request (put takes \"ops\")");
	expect("{\"cmd\":\"backup\",\"path\":\"/tmp/x\"}", LOKET_E_BAD_REQUEST,
	       "unknown key \"path\" in a backup request (backup takes \"file\")");
	expect("{\"cmd\":\"resume\",\"force\":1}", LOKET_E_BAD_REQUEST,
	       "\"force\" must be true or false");
}

static void test_refuses_wrong_types(void **state)
{
	(void)state;
	expect("{\"cmd\":\"get\",\"coll\":\"expert\",\"id\":5}", LOKET_E_BAD_REQUEST,
	       "\"id\" must be a non-empty string");
	expect("{\"cmd\":\"get\",\"coll\":\"\",\"id\":\"a\"}", LOKET_E_BAD_REQUEST,
	       "\"coll\" must be a non-empty string");
	expect("{\"cmd\":\"list\",\"coll\":\"expert\",\"limit\":0}", LOKET_E_BAD_REQUEST,
	       "\"limit\" must be an integer from 1 to 100000");
	expect("{\"cmd\":\"list\",\"coll\":\"expert\",\"limit\":\"5\"}", LOKET_E_BAD_REQUEST,
	       "\"limit\" must be an integer from 1 to 100000");
	expect("{\"cmd\":\"put\",\"ops\":{}}", LOKET_E_BAD_REQUEST,
	       "\"ops\" must be an array of 1 to 10000 ops");

	/* {"cmd":"status","x":bin} and {"cmd":bin "status"}: text must be str. */
	static const uint8_t bin_cmd[] = {0x81, 0xa3, 'c', 'm', 'd', 0xc4, 0x06,
	                                  's',  't',  'a', 't', 'u', 's'};
	json_t *req = NULL;
	char err[256];
	assert_int_equal(request_decode(bin_cmd, sizeof(bin_cmd), &req, err, sizeof(err)),
	                 LOKET_E_MALFORMED);
	assert_string_equal(err,
	                    "\"cmd\": bin where a string is meant (send text as msgpack str) at "
	                    "byte 5");
	static const uint8_t nan[] = {0x82, 0xa3, 'c', 'm', 'd',  0xa6, 's',  't',
	                              'a',  't',  'u', 's', 0xa1, 'x',  0xcb, 0x7f,
	                              0xf8, 0,    0,   0,   0,    0,    0,    0};
	assert_int_equal(request_decode(nan, sizeof(nan), &req, err, sizeof(err)),
	                 LOKET_E_MALFORMED);
	assert_string_equal(err, "\"x\": float is NaN at byte 14");
	static const uint8_t array[] = {0x91, 0x01};
	assert_int_equal(request_decode(array, sizeof(array), &req, err, sizeof(err)),
	                 LOKET_E_MALFORMED);
	assert_string_equal(err, "a request is one msgpack map (first byte 0x91)");
	static const uint8_t trailing[] = {0x80, 0xc0};
	assert_int_equal(request_decode(trailing, sizeof(trailing), &req, err, sizeof(err)),
	                 LOKET_E_TRAILING);
	assert_null(req);
}

/* A request within the bytes but with more values than it may decode to. */
static void test_bounds(void **state)
{
	(void)state;
	size_t n = 64 * 1024, o = 0;
	uint8_t *p = malloc(n);
	json_t *req = NULL;
	char err[256];
	assert_non_null(p);
	memcpy(p,
	       "\x82\xa3"
	       "cmd"
	       "\xa6"
	       "status"
	       "\xa1"
	       "x\xdd",
	       15);
	o = 15;
	size_t count = n - o - 4;
	p[o++] = 0;
	p[o++] = 0;
	p[o++] = (uint8_t)(count >> 8);
	p[o++] = (uint8_t)count;
	memset(p + o, 0x80, count);
	/* The key check comes first: status takes no "x". */
	assert_int_equal(request_decode(p, n, &req, err, sizeof(err)), LOKET_E_BAD_REQUEST);
	memcpy(p + 6, "sxlftx", 6); /* a command of no table: the generic bound */
	assert_int_equal(request_decode(p, n, &req, err, sizeof(err)), LOKET_E_TOO_BIG);
	assert_null(req);
	assert_non_null(strstr(err, "at most 16384 are read"));
	free(p);

	uint8_t *big = calloc(1, LOKET_MAX_MESSAGE_BYTES + 1);
	assert_non_null(big);
	big[0] = 0x80;
	assert_int_equal(request_decode(big, LOKET_MAX_MESSAGE_BYTES + 1, &req, err, sizeof(err)),
	                 LOKET_E_TOO_BIG);
	assert_string_equal(err, "request of 2097153 bytes is over the limit of 2097152 bytes");
	free(big);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_accepts_what_the_protocol_names),
	    cmocka_unit_test(test_refuses_unknown_and_missing_keys),
	    cmocka_unit_test(test_refuses_wrong_types),
	    cmocka_unit_test(test_bounds),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
