/*
 * Tests of board_list (desk/board.h): changesets of two members (the asker
 * "a" and the responder "b") are signed and appended through the store's
 * public API as loketd would, then the board is read. It shows a response that arrived
 * before its question linked once the question is there, counts that leave
 * out withdrawn, deleted and other questions' responses, the filters and
 * the order, and fields of unexpected types read as null rather than
 * breaking the board.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <sodium.h>

#include "desk/board.h"
#include "proto/changeset.h"
#include "proto/error.h"
#include "proto/limits.h"
#include "proto/value.h"
#include "store/store.h"
#include "tests/unit/signed_ops.h"

struct member {
	uint8_t pk[32];
	uint8_t sk[64];
	uint64_t seq;
	uint8_t head[32];
	uint64_t hlc;
};

static char dir[] = "/tmp/test_board_XXXXXX";
static int file_no;

static void member_init(struct member *m, uint64_t hlc)
{
	memset(m, 0, sizeof(*m));
	crypto_sign_keypair(m->pk, m->sk);
	m->hlc = hlc;
}

/* Signs the next changeset of m holding ops (JSON text) and appends it to s. */
static void write_ops(struct store *s, struct member *m, const char *ops_json)
{
	struct changeset dec;
	uint8_t *bytes;
	size_t len;
	char err[200];

	m->seq++;
	signed_ops(m->pk, m->sk, m->seq, m->head, ++m->hlc, ops_json, &bytes, &len);
	changeset_hash(bytes, len, m->head);
	assert_int_equal(changeset_decode(bytes, len, &dec, err, sizeof(err)), 0);
	assert_int_equal(store_append(s, bytes, len, &dec, NULL), 0);
	changeset_release(&dec);
	free(bytes);
}

/* A new store that knows a and b by name. */
static struct store *open_new(struct member *a, struct member *b)
{
	char path[256], err[256];
	struct store *s = NULL;
	int n = snprintf(path, sizeof(path), "%s/b%d.db", dir, file_no++);

	assert_true(n > 0 && (size_t)n < sizeof(path));
	assert_int_equal(store_open(path, STORE_CREATE, &s, err, sizeof(err)), 0);
	assert_int_equal(store_set_member(s, a->pk, "a"), 0);
	assert_int_equal(store_set_member(s, b->pk, "b"), 0);
	return s;
}

static json_t *board(struct store *s, const char *status, const char *topic, const char *kind,
                     long limit)
{
	json_t *out = NULL;

	assert_int_equal(board_list(s, status, topic, kind, limit, &out), 0);
	assert_true(json_is_array(out));
	return out;
}

/* The board entry of ref, or NULL. */
static json_t *entry(json_t *b, const char *ref)
{
	json_t *e;
	size_t i;

	json_array_foreach(b, i, e)
	{
		if (!strcmp(json_string_value(json_object_get(e, "ref")), ref))
			return e;
	}
	return NULL;
}

static long long num(const json_t *e, const char *key)
{
	assert_true(json_is_integer(json_object_get(e, key)));
	return json_integer_value(json_object_get(e, key));
}

static const char *str(const json_t *e, const char *key)
{
	return json_string_value(json_object_get(e, key));
}

static void test_response_before_question(void **state)
{
	struct member a, b;
	struct store *s;
	json_t *bd, *e;

	(void)state;
	member_init(&a, (uint64_t)1700000000000 << 16);
	member_init(&b, (uint64_t)1700000000000 << 16);
	s = open_new(&a, &b);
	/* As sync may deliver it: b's response first, a's question later. */
	write_ops(s, &b,
	          "[{\"coll\":\"response\",\"id\":\"r1\",\"fields\":{\"question\":\"a/q1\","
	          "\"kind\":\"offer\",\"status\":\"offered\"}}]");
	bd = board(s, NULL, NULL, NULL, 0);
	assert_int_equal(json_array_size(bd), 0);
	json_decref(bd);

	write_ops(s, &a,
	          "[{\"coll\":\"question\",\"id\":\"q1\",\"fields\":{\"title\":\"Eenzaamheid\","
	          "\"status\":\"open\",\"kind\":\"research\",\"topics\":[\"ouderen\"],"
	          "\"asker\":{\"name\":\"Wijkraad\",\"kind\":\"neighbourhood\"},"
	          "\"deadline\":\"2031-06-30\"}}]");
	bd = board(s, NULL, NULL, NULL, 0);
	assert_int_equal(json_array_size(bd), 1);
	e = json_array_get(bd, 0);
	assert_string_equal(str(e, "ref"), "a/q1");
	assert_string_equal(str(e, "owner"), "a");
	assert_string_equal(str(e, "id"), "q1");
	assert_string_equal(str(e, "title"), "Eenzaamheid");
	assert_string_equal(str(e, "status"), "open");
	assert_string_equal(str(e, "kind"), "research");
	assert_string_equal(str(e, "asker"), "Wijkraad");
	assert_string_equal(str(e, "deadline"), "2031-06-30");
	assert_string_equal(json_string_value(json_array_get(json_object_get(e, "topics"), 0)),
	                    "ouderen");
	assert_int_equal(num(e, "responses"), 1);
	assert_int_equal(num(e, "accepted"), 0);
	assert_int_equal(json_object_size(e), 13); /* hlc_text beside hlc */
	json_decref(bd);

	/* The owner accepts: the count follows accepted[]. */
	write_ops(s, &a,
	          "[{\"coll\":\"question\",\"id\":\"q1\",\"fields\":{\"accepted\":[\"b/r1\"],"
	          "\"status\":\"matched\"}}]");
	bd = board(s, NULL, NULL, NULL, 0);
	e = entry(bd, "a/q1");
	assert_non_null(e);
	assert_string_equal(str(e, "status"), "matched");
	assert_int_equal(num(e, "accepted"), 1);
	json_decref(bd);
	store_close(s);
}

static void test_counts(void **state)
{
	struct member a, b;
	struct store *s;
	json_t *bd;

	(void)state;
	member_init(&a, (uint64_t)1700000000000 << 16);
	member_init(&b, (uint64_t)1700000000000 << 16);
	s = open_new(&a, &b);
	write_ops(s, &a,
	          "[{\"coll\":\"question\",\"id\":\"q1\",\"fields\":{\"title\":\"Een\"}},"
	          " {\"coll\":\"question\",\"id\":\"q2\",\"fields\":{\"title\":\"Twee\"}}]");
	/* Counted: r1 (b), r2 (a itself). Not: withdrawn r3, deleted r4, r5 of q2,
	 * r6 naming an owner by a wrong name, r7 whose question is not a string. */
	write_ops(s, &b,
	          "[{\"coll\":\"response\",\"id\":\"r1\",\"fields\":{\"question\":\"a/q1\"}},"
	          " {\"coll\":\"response\",\"id\":\"r3\",\"fields\":{\"question\":\"a/q1\","
	          "\"status\":\"withdrawn\"}},"
	          " {\"coll\":\"response\",\"id\":\"r4\",\"fields\":{\"question\":\"a/q1\"}},"
	          " {\"coll\":\"response\",\"id\":\"r5\",\"fields\":{\"question\":\"a/q2\"}},"
	          " {\"coll\":\"response\",\"id\":\"r6\",\"fields\":{\"question\":\"x/q1\"}},"
	          " {\"coll\":\"response\",\"id\":\"r7\",\"fields\":{\"question\":[\"a/q1\"]}}]");
	write_ops(s, &b, "[{\"coll\":\"response\",\"id\":\"r4\",\"del\":true}]");
	write_ops(s, &a,
	          "[{\"coll\":\"response\",\"id\":\"r2\",\"fields\":{\"question\":\"a/q1\"}}]");
	bd = board(s, NULL, NULL, NULL, 0);
	assert_int_equal(json_array_size(bd), 2);
	assert_int_equal(num(entry(bd, "a/q1"), "responses"), 2);
	assert_int_equal(num(entry(bd, "a/q2"), "responses"), 1);
	/* A question without a status is open. */
	assert_string_equal(str(entry(bd, "a/q2"), "status"), "open");
	json_decref(bd);
	store_close(s);
}

static void test_filters_and_order(void **state)
{
	struct member a, b;
	struct store *s;
	json_t *bd;

	(void)state;
	member_init(&a, (uint64_t)1700000000000 << 16);
	member_init(&b, (uint64_t)1700000001000 << 16); /* b writes later */
	s = open_new(&a, &b);
	write_ops(s, &a,
	          "[{\"coll\":\"question\",\"id\":\"q1\",\"fields\":{\"title\":\"Een\","
	          "\"kind\":\"research\",\"topics\":[\"Water\",\"klimaat\"]}}]");
	write_ops(s, &a,
	          "[{\"coll\":\"question\",\"id\":\"q2\",\"fields\":{\"title\":\"Twee\","
	          "\"kind\":\"pitch\",\"status\":\"closed\",\"topics\":[\"data\"]}}]");
	write_ops(s, &b,
	          "[{\"coll\":\"question\",\"id\":\"q3\",\"fields\":{\"title\":\"Drie\","
	          "\"kind\":\"research\",\"status\":\"open\",\"topics\":\"water\"}}]");
	write_ops(s, &b, "[{\"coll\":\"expert\",\"id\":\"q9\",\"fields\":{\"name\":\"Ada\"}}]");

	bd = board(s, NULL, NULL, NULL, 0);
	assert_int_equal(json_array_size(bd), 3);
	assert_string_equal(str(json_array_get(bd, 0), "ref"), "b/q3");
	assert_string_equal(str(json_array_get(bd, 1), "ref"), "a/q2");
	assert_string_equal(str(json_array_get(bd, 2), "ref"), "a/q1");
	json_decref(bd);

	bd = board(s, "open", NULL, NULL, 0);
	assert_int_equal(json_array_size(bd), 2);
	assert_null(entry(bd, "a/q2"));
	json_decref(bd);
	bd = board(s, NULL, NULL, "pitch", 0);
	assert_int_equal(json_array_size(bd), 1);
	assert_non_null(entry(bd, "a/q2"));
	json_decref(bd);
	bd = board(s, NULL, "WATER", NULL, 0);
	assert_int_equal(json_array_size(bd), 2);
	assert_non_null(entry(bd, "a/q1"));
	assert_non_null(entry(bd, "b/q3"));
	json_decref(bd);
	bd = board(s, "open", "water", "research", 1);
	assert_int_equal(json_array_size(bd), 1);
	assert_non_null(entry(bd, "b/q3"));
	json_decref(bd);
	bd = board(s, "matched", NULL, NULL, 0);
	assert_int_equal(json_array_size(bd), 0);
	json_decref(bd);
	store_close(s);
}

static void test_odd_fields(void **state)
{
	struct member a, b, stranger;
	struct store *s;
	json_t *bd, *e;
	char b64[64];

	(void)state;
	member_init(&a, (uint64_t)1700000000000 << 16);
	member_init(&b, (uint64_t)1700000000000 << 16);
	member_init(&stranger, (uint64_t)1700000000000 << 16);
	s = open_new(&a, &b);
	/* A newer node's shapes: none of these is what the schema says. */
	write_ops(s, &a,
	          "[{\"coll\":\"question\",\"id\":\"q1\",\"fields\":{\"title\":42,"
	          "\"status\":[\"open\"],\"kind\":{\"x\":1},\"topics\":[\"ok\",7,null],"
	          "\"asker\":\"Buurtvereniging\",\"deadline\":false,\"accepted\":\"b/r1\"}}]");
	/* A question of an owner this store has no name for. */
	write_ops(s, &stranger,
	          "[{\"coll\":\"question\",\"id\":\"q2\",\"fields\":{\"title\":\"T\"}}]");
	bd = board(s, NULL, NULL, NULL, 0);
	assert_int_equal(json_array_size(bd), 2);
	e = entry(bd, "a/q1");
	assert_non_null(e);
	assert_true(json_is_null(json_object_get(e, "title")));
	assert_string_equal(str(e, "status"), "open");
	assert_true(json_is_null(json_object_get(e, "kind")));
	assert_true(json_is_null(json_object_get(e, "deadline")));
	assert_string_equal(str(e, "asker"), "Buurtvereniging");
	assert_int_equal(json_array_size(json_object_get(e, "topics")), 1);
	assert_int_equal(num(e, "accepted"), 0);
	sodium_bin2base64(b64, sizeof(b64), stranger.pk, 32, sodium_base64_VARIANT_ORIGINAL);
	/* Shown by base64 key; its ref uses the key, as nothing names it. */
	e = json_array_get(bd, 0) == entry(bd, "a/q1") ? json_array_get(bd, 1)
	                                               : json_array_get(bd, 0);
	assert_string_equal(str(e, "owner"), b64);
	assert_string_equal(str(e, "id"), "q2");
	assert_string_equal(str(e, "ref") + strlen(b64), "/q2");
	assert_memory_equal(str(e, "ref"), b64, strlen(b64));
	json_decref(bd);
	store_close(s);
}

static int setup(void **state)
{
	(void)state;
	if (sodium_init() < 0 || !mkdtemp(dir))
		return -1;
	return 0;
}

static int teardown(void **state)
{
	char cmd[128];
	int n;

	(void)state;
	n = snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	if (n < 0 || (size_t)n >= sizeof(cmd))
		return -1;
	return system(cmd) == 0 ? 0 : -1;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_response_before_question),
	    cmocka_unit_test(test_counts),
	    cmocka_unit_test(test_filters_and_order),
	    cmocka_unit_test(test_odd_fields),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
