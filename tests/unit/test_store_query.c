/*
 * Tests of store_query, the read-only SQL of loket query: the views and
 * their columns, owners by member name, arrays as JSON text, table-valued
 * functions; every kind of statement that is not a read refused with a
 * sentence and nothing changed (INSERT, UPDATE, DELETE, REPLACE, DDL,
 * PRAGMA, ATTACH, transactions, load_extension, a second statement); the
 * row limit, the time bound, and values JSON cannot carry as they are
 * (blobs, infinities). The store is filled the way loketd fills it: a
 * signed changeset appended.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <sodium.h>

#include "proto/changeset.h"
#include "proto/error.h"
#include "proto/limits.h"
#include "proto/value.h"
#include "store/store.h"
#include "tests/unit/signed_ops.h"

static char dir[] = "/tmp/test_store_query_XXXXXX";
static char path[256];

/* Appends one signed changeset of ops (JSON [{"coll","id","fields"}]) as seq 1 of a new key. */
static void append_ops(struct store *s, const char *name, const char *ops_json)
{
	uint8_t pk[32], sk[64], zero[32] = {0}, *bytes;
	struct changeset back;
	size_t len;
	char err[200];

	crypto_sign_keypair(pk, sk);
	assert_int_equal(store_set_member(s, pk, name), 0);
	signed_ops(pk, sk, 1, zero, (uint64_t)1700000000000 << 16, ops_json, &bytes, &len);
	assert_int_equal(changeset_decode(bytes, len, &back, err, sizeof(err)), 0);
	assert_int_equal(store_append(s, bytes, len, &back, NULL), 0);
	changeset_release(&back);
	free(bytes);
}

static int setup(void **state)
{
	char err[256];
	struct store *s = NULL;
	int k;

	if (!mkdtemp(dir) || sodium_init() < 0)
		return -1;
	k = snprintf(path, sizeof(path), "%s/store.db", dir);
	if (k < 0 || (size_t)k >= sizeof(path))
		return -1;
	if (store_open(path, STORE_CREATE, &s, err, sizeof(err)) != 0)
		return -1;
	append_ops(s, "universiteit",
	           "[{\"coll\":\"expert\",\"id\":\"ineke\",\"fields\":{\"name\":\"Ineke Brandsma\","
	           "\"org\":\"universiteit/ul\",\"topics\":[\"eenzaamheid\",\"ouderen\"],"
	           "\"extra\":7}},"
	           "{\"coll\":\"expert\",\"id\":\"sven\",\"fields\":{\"name\":\"Sven Oudshoorn\","
	           "\"topics\":[\"coöperatie\"]}},"
	           "{\"coll\":\"org\",\"id\":\"ul\",\"fields\":{\"name\":\"Universiteit Leiden\","
	           "\"kind\":\"university\"}}]");
	append_ops(s, "gemeente",
	           "[{\"coll\":\"question\",\"id\":\"q1\",\"fields\":{\"title\":\"Eenzaamheid\","
	           "\"asker\":{\"name\":\"Wijkraad\",\"kind\":\"neighbourhood\"},"
	           "\"status\":\"open\"}}]");
	*state = s;
	return 0;
}

static int teardown(void **state)
{
	char cmd[512];
	int k;

	store_close(*state);
	k = snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	if (k > 0 && (size_t)k < sizeof(cmd) && system(cmd) != 0)
		return -1;
	return 0;
}

/* Runs sql and expects success; returns the result. */
static json_t *query_ok(struct store *s, const char *sql, long limit)
{
	json_t *out = NULL;
	int rc = store_query(s, sql, limit, &out);

	if (rc != 0)
		fail_msg("%s: %s", sql, store_errmsg(s));
	assert_non_null(out);
	return out;
}

static const char *cell_str(const json_t *res, size_t row, size_t col)
{
	return json_string_value(
	    json_array_get(json_array_get(json_object_get(res, "rows"), row), col));
}

static void test_views(void **state)
{
	struct store *s = *state;
	json_t *res = query_ok(s, "SELECT owner, id, name, org, topics FROM expert ORDER BY id", 0);
	json_t *cols = json_object_get(res, "columns");

	assert_int_equal(json_array_size(cols), 5);
	assert_string_equal(json_string_value(json_array_get(cols, 3)), "org");
	assert_int_equal(json_array_size(json_object_get(res, "rows")), 2);
	assert_string_equal(cell_str(res, 0, 0), "universiteit");
	assert_string_equal(cell_str(res, 0, 1), "ineke");
	assert_string_equal(cell_str(res, 0, 2), "Ineke Brandsma");
	assert_string_equal(cell_str(res, 0, 4), "[\"eenzaamheid\",\"ouderen\"]");
	assert_true(
	    json_is_null(json_array_get(json_array_get(json_object_get(res, "rows"), 1), 3)));
	assert_true(json_is_false(json_object_get(res, "truncated")));
	json_decref(res);

	/* Every view starts with owner, id, seq, hlc and ends with fields. */
	static const char *const views[] = {"org",     "expert",   "resource",
	                                    "project", "question", "response"};
	for (size_t v = 0; v < sizeof(views) / sizeof(views[0]); v++) {
		char sql[64];
		json_t *c;

		snprintf(sql, sizeof(sql), "SELECT * FROM %s", views[v]);
		res = query_ok(s, sql, 0);
		c = json_object_get(res, "columns");
		assert_string_equal(json_string_value(json_array_get(c, 0)), "owner");
		assert_string_equal(json_string_value(json_array_get(c, 1)), "id");
		assert_string_equal(json_string_value(json_array_get(c, 2)), "seq");
		assert_string_equal(json_string_value(json_array_get(c, 3)), "hlc");
		assert_string_equal(json_string_value(json_array_get(c, json_array_size(c) - 1)),
		                    "fields");
		json_decref(res);
	}

	/* A map as JSON text; extra fields through "fields"; table-valued functions. */
	res = query_ok(s, "SELECT asker, json_extract(asker, '$.kind') FROM question", 0);
	assert_string_equal(cell_str(res, 0, 1), "neighbourhood");
	json_decref(res);
	res =
	    query_ok(s, "SELECT json_extract(fields, '$.extra') FROM expert WHERE id = 'ineke'", 0);
	assert_int_equal(
	    json_integer_value(json_array_get(json_array_get(json_object_get(res, "rows"), 0), 0)),
	    7);
	json_decref(res);
	res = query_ok(s,
	               "SELECT e.id FROM expert e, json_each(e.topics) t"
	               " WHERE t.value = 'coöperatie'",
	               0);
	assert_string_equal(cell_str(res, 0, 0), "sven");
	json_decref(res);
}

static void test_refused(void **state)
{
	static const char *const refused[] = {
	    "INSERT INTO member(key, name) VALUES(x'00', 'x')",
	    "UPDATE entity SET id = 'x'",
	    "DELETE FROM entity",
	    "REPLACE INTO member VALUES(x'00', 'y')",
	    "WITH x AS (SELECT 1) DELETE FROM entity",
	    "CREATE TABLE t(x)",
	    "CREATE TEMP TABLE t(x)",
	    "CREATE TEMP VIEW v AS SELECT 1",
	    "DROP VIEW expert",
	    "DROP TABLE entity",
	    "ALTER TABLE entity ADD COLUMN x",
	    "PRAGMA user_version = 9",
	    "PRAGMA user_version",
	    "PRAGMA writable_schema = ON",
	    "ATTACH DATABASE ':memory:' AS other",
	    "DETACH DATABASE temp",
	    "BEGIN",
	    "COMMIT",
	    "SAVEPOINT x",
	    "VACUUM",
	    "REINDEX",
	    "ANALYZE",
	    "SELECT load_extension('libevil')",
	    "SELECT 1; DELETE FROM entity",
	    "SELECT 1; SELECT 2",
	    "SELECT 1 /* a */; /* b */ PRAGMA user_version",
	};
	struct store *s = *state;
	uint8_t before[32], after[32];
	json_t *res;

	assert_int_equal(store_digest(s, before), 0);
	for (size_t i = 0; i < sizeof(refused) / sizeof(refused[0]); i++) {
		json_t *out = NULL;
		int rc = store_query(s, refused[i], 0, &out);

		if (rc != LOKET_E_BAD_REQUEST)
			fail_msg("%s: expected a refusal, got %d", refused[i], rc);
		assert_null(out);
		if (!strstr(store_errmsg(s), "refused"))
			fail_msg("%s: message '%s'", refused[i], store_errmsg(s));
	}
	assert_int_equal(store_digest(s, after), 0);
	assert_memory_equal(before, after, 32);
	res = query_ok(s, "SELECT count(*) FROM entity", 0);
	assert_int_equal(
	    json_integer_value(json_array_get(json_array_get(json_object_get(res, "rows"), 0), 0)),
	    4);
	json_decref(res);
	res = query_ok(s, "SELECT count(*) FROM member", 0);
	assert_int_equal(
	    json_integer_value(json_array_get(json_array_get(json_object_get(res, "rows"), 0), 0)),
	    2);
	json_decref(res);
}

static void test_errors_and_blanks(void **state)
{
	struct store *s = *state;
	json_t *out = NULL, *res;

	assert_int_equal(store_query(s, "SELEC 1", 0, &out), LOKET_E_BAD_REQUEST);
	assert_non_null(strstr(store_errmsg(s), "syntax error"));
	assert_int_equal(store_query(s, "  ; -- nothing", 0, &out), LOKET_E_BAD_REQUEST);
	assert_string_equal(store_errmsg(s), "no SQL statement given");
	assert_null(out);
	res = query_ok(s, "  SELECT 1 AS one ; -- done\n /* really */ ;", 0);
	assert_string_equal(json_string_value(json_array_get(json_object_get(res, "columns"), 0)),
	                    "one");
	json_decref(res);
}

static void test_limits_and_values(void **state)
{
	struct store *s = *state;
	json_t *res, *row, *out = NULL;
	time_t started;

	res = query_ok(s,
	               "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c LIMIT 50)"
	               " SELECT x FROM c",
	               10);
	assert_int_equal(json_array_size(json_object_get(res, "rows")), 10);
	assert_true(json_is_true(json_object_get(res, "truncated")));
	json_decref(res);
	res = query_ok(s,
	               "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c LIMIT 10)"
	               " SELECT x FROM c",
	               10);
	assert_int_equal(json_array_size(json_object_get(res, "rows")), 10);
	assert_true(json_is_false(json_object_get(res, "truncated")));
	json_decref(res);
	res = query_ok(s,
	               "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c"
	               " LIMIT 20000) SELECT x FROM c",
	               0);
	assert_int_equal(json_array_size(json_object_get(res, "rows")), STORE_QUERY_MAX_ROWS);
	json_decref(res);

	started = time(NULL);
	assert_int_equal(store_query(s,
	                             "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1"
	                             " FROM c) SELECT count(*) FROM c",
	                             0, &out),
	                 LOKET_E_TOO_BIG);
	assert_non_null(strstr(store_errmsg(s), "ran longer than"));
	assert_true(time(NULL) - started < 10);

	/* About 1 MiB of values at most: a reply must fit one control message. */
	res = query_ok(s,
	               "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c LIMIT 8)"
	               " SELECT x, zeroblob(300000) FROM c",
	               0);
	assert_int_equal(json_array_size(json_object_get(res, "rows")), 2);
	assert_true(json_is_true(json_object_get(res, "truncated")));
	json_decref(res);
	assert_int_equal(store_query(s, "SELECT zeroblob(2000000)", 0, &out), LOKET_E_TOO_BIG);
	assert_non_null(strstr(store_errmsg(s), "the first row alone is larger"));
	assert_null(out);

	res = query_ok(s, "SELECT x'00ff', 1e999, NULL, 1.5, 'tekst'", 0);
	row = json_array_get(json_object_get(res, "rows"), 0);
	assert_string_equal(json_string_value(json_array_get(row, 0)), "AP8=");
	assert_true(json_is_null(json_array_get(row, 1)));
	assert_true(json_is_null(json_array_get(row, 2)));
	assert_true(json_real_value(json_array_get(row, 3)) == 1.5);
	assert_string_equal(json_string_value(json_array_get(row, 4)), "tekst");
	json_decref(res);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_views),
	    cmocka_unit_test(test_refused),
	    cmocka_unit_test(test_errors_and_blanks),
	    cmocka_unit_test(test_limits_and_values),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
