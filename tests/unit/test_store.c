/*
 * Tests of the store through its public API: opening and schema versions,
 * appending signed changesets and reading entities back (get, list, search
 * with folded diacritics), put merging and clearing, tombstones, idempotent
 * writes, the chain rules (duplicate, gap, wrong prev, fork), the state
 * digest across origin interleavings and rebuilds, the offline verify on a
 * good and on a tampered store, the log and the status summary. Changesets
 * are made here the way loketd makes them: encode, sign with libsodium,
 * then decode the signed bytes.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <time.h>

#include <cmocka.h>
#include <sodium.h>
#include <sqlite3.h>

#include "proto/changeset.h"
#include "proto/error.h"
#include "proto/limits.h"
#include "proto/value.h"
#include "store/store.h"
#include "store/store_int.h"
#include "tests/unit/signed_ops.h"

struct signed_cs {
	uint8_t *bytes;
	size_t len;
	uint64_t seq;
};

static char dir[] = "/tmp/test_store_XXXXXX";
static int file_no;

static void store_path(char *out, size_t len)
{
	int k = snprintf(out, len, "%s/s%d.db", dir, file_no++);

	assert_true(k > 0 && (size_t)k < len);
}

/* A changeset of n at seq linked to prev; n's chain does not move (for rivals). */
static struct signed_cs make_cs_at(struct node *n, uint64_t seq, const uint8_t prev[32],
                                   const char *ops_json)
{
	struct signed_cs out = {.seq = seq};

	signed_ops(n->pk, n->sk, seq, prev, ++n->hlc, ops_json, &out.bytes, &out.len);
	return out;
}

/* The next changeset of n's chain. */
static struct signed_cs make_cs(struct node *n, const char *ops_json)
{
	struct signed_cs c = make_cs_at(n, n->seq + 1, n->head, ops_json);

	n->seq++;
	changeset_hash(c.bytes, c.len, n->head);
	return c;
}

static int append(struct store *s, const struct signed_cs *c)
{
	struct changeset cs;
	char err[200];
	int rc;

	assert_int_equal(changeset_decode(c->bytes, c->len, &cs, err, sizeof(err)), 0);
	/* Half the appends bring their hash, as the receive path does; half have it made. */
	uint8_t hash[32];
	changeset_hash(c->bytes, c->len, hash);
	rc = store_append(s, c->bytes, c->len, &cs, c->seq % 2 ? hash : NULL);
	changeset_release(&cs);
	return rc;
}

/* Appends in its own transaction, as loketd does, and expects 0. */
static void append_ok(struct store *s, const struct signed_cs *c)
{
	assert_int_equal(store_begin(s), 0);
	assert_int_equal(append(s, c), 0);
	assert_int_equal(store_commit(s), 0);
}

/* Appends the next changeset of n, holding ops_json (as make_cs). */
static void append_ops(struct store *s, struct node *n, const char *ops_json)
{
	struct signed_cs c = make_cs(n, ops_json);

	append_ok(s, &c);
	free(c.bytes);
}

static struct store *open_new(void)
{
	char path[256], err[256];
	struct store *s = NULL;

	store_path(path, sizeof(path));
	assert_int_equal(store_open(path, STORE_CREATE, &s, err, sizeof(err)), 0);
	return s;
}

static void digest_hex(struct store *s, char out[65])
{
	uint8_t d[32];

	assert_int_equal(store_digest(s, d), 0);
	sodium_bin2hex(out, 65, d, 32);
}

static json_t *get1(struct store *s, const char *coll, const char *id)
{
	json_t *arr = NULL;

	assert_int_equal(store_get(s, coll, id, NULL, &arr), 0);
	assert_true(json_is_array(arr));
	return arr;
}

static const char *fstr(const json_t *entity, const char *field)
{
	return json_string_value(json_object_get(json_object_get(entity, "fields"), field));
}

static void test_open_create(void **state)
{
	char path[256], err[256];
	struct store *s = NULL;
	json_t *st = NULL;

	(void)state;
	store_path(path, sizeof(path));
	assert_int_equal(store_open(path, 0, &s, err, sizeof(err)), LOKET_E_NOT_FOUND);
	assert_null(s);
	assert_int_equal(store_open(path, STORE_CREATE, &s, err, sizeof(err)), 0);
	assert_int_equal(store_status(s, &st), 0);
	assert_int_equal(json_integer_value(json_object_get(st, "entities")), 0);
	/* The empty state: SHA-256 of 4096 zero bytes, the LtHash16 sum of nothing. */
	assert_string_equal(json_string_value(json_object_get(st, "digest")),
	                    "ad7facb2586fc6e966c004d7d1d16b024f5805ff7cb47c7a85dabd8b48892ca7");
	json_decref(st);
	store_close(s);
	/* Reopen without CREATE, then read-only. */
	assert_int_equal(store_open(path, 0, &s, err, sizeof(err)), 0);
	store_close(s);
	assert_int_equal(store_open(path, STORE_READONLY, &s, err, sizeof(err)), 0);
	assert_int_equal(store_status(s, &st), 0);
	json_decref(st);
	store_close(s);
	store_close(NULL);
}

static void test_schema_newer_refused(void **state)
{
	char path[256], err[256];
	struct store *s = NULL;
	sqlite3 *db;

	(void)state;
	store_path(path, sizeof(path));
	assert_int_equal(store_open(path, STORE_CREATE, &s, err, sizeof(err)), 0);
	store_close(s);
	assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
	assert_int_equal(sqlite3_exec(db, "PRAGMA user_version = 99", NULL, NULL, NULL), SQLITE_OK);
	sqlite3_close(db);
	s = NULL;
	err[0] = '\0';
	assert_int_equal(store_open(path, 0, &s, err, sizeof(err)), LOKET_E_SCHEMA);
	assert_null(s);
	assert_non_null(strstr(err, "99"));
	assert_int_equal(store_open(path, STORE_READONLY, &s, err, sizeof(err)), LOKET_E_SCHEMA);
}

static void test_append_and_read(void **state)
{
	struct store *s = open_new();
	struct node a;
	json_t *arr = NULL, *e;
	char b64[64];

	(void)state;
	node_init(&a);
	assert_int_equal(store_set_member(s, a.pk, "universiteit"), 0);
	append_ops(s, &a,
	           "[{\"coll\":\"expert\",\"id\":\"e2\",\"fields\":{\"name\":\"Jan de Vries\","
	           "\"topics\":[\"coöperatie\",\"wijken\"],\"age\":51}},"
	           "{\"coll\":\"expert\",\"id\":\"e1\",\"fields\":{\"name\":\"Anna Bakker\","
	           "\"topics\":[\"cooperatie\"],\"org\":\"Universiteit Leiden\"}},"
	           "{\"coll\":\"org\",\"id\":\"ul\",\"fields\":{\"name\":\"Universiteit "
	           "Leiden\",\"kind\":\"university\"}}]");

	arr = get1(s, "expert", "e2");
	assert_int_equal(json_array_size(arr), 1);
	e = json_array_get(arr, 0);
	assert_string_equal(json_string_value(json_object_get(e, "coll")), "expert");
	assert_string_equal(json_string_value(json_object_get(e, "owner")), "universiteit");
	assert_string_equal(json_string_value(json_object_get(e, "id")), "e2");
	assert_string_equal(fstr(e, "name"), "Jan de Vries");
	assert_int_equal(json_integer_value(json_object_get(json_object_get(e, "fields"), "age")),
	                 51);
	assert_int_equal(json_integer_value(json_object_get(e, "seq")), 1);
	assert_true(json_integer_value(json_object_get(e, "hlc")) > 0);
	json_decref(arr);

	/* By owner name and by base64 key; an unknown owner is an error. */
	assert_int_equal(store_get(s, "expert", "e2", "universiteit", &arr), 0);
	assert_int_equal(json_array_size(arr), 1);
	json_decref(arr);
	sodium_bin2base64(b64, sizeof(b64), a.pk, 32, sodium_base64_VARIANT_ORIGINAL);
	assert_int_equal(store_get(s, "expert", "e2", b64, &arr), 0);
	assert_int_equal(json_array_size(arr), 1);
	json_decref(arr);
	assert_int_equal(store_get(s, "expert", "e2", "nobody", &arr), LOKET_E_NOT_FOUND);
	arr = get1(s, "expert", "absent");
	assert_int_equal(json_array_size(arr), 0);
	json_decref(arr);

	/* list: ordered by id, limited, filtered by collection. */
	assert_int_equal(store_list(s, "expert", NULL, 100, &arr), 0);
	assert_int_equal(json_array_size(arr), 2);
	assert_string_equal(json_string_value(json_object_get(json_array_get(arr, 0), "id")), "e1");
	assert_string_equal(json_string_value(json_object_get(json_array_get(arr, 1), "id")), "e2");
	json_decref(arr);
	assert_int_equal(store_list(s, "expert", "universiteit", 1, &arr), 0);
	assert_int_equal(json_array_size(arr), 1);
	json_decref(arr);
	assert_int_equal(store_list(s, NULL, NULL, 0, &arr), 0);
	assert_int_equal(json_array_size(arr), 3);
	json_decref(arr);

	/* Diacritics fold both ways; prefixes; collection filter. */
	assert_int_equal(store_search(s, "cooperatie", NULL, 20, &arr), 0);
	assert_int_equal(json_array_size(arr), 2);
	e = json_array_get(arr, 0);
	assert_true(json_is_number(json_object_get(e, "rank")));
	assert_non_null(strchr(json_string_value(json_object_get(e, "snippet")), '['));
	json_decref(arr);
	assert_int_equal(store_search(s, "coöperatie", NULL, 20, &arr), 0);
	assert_int_equal(json_array_size(arr), 2);
	json_decref(arr);
	assert_int_equal(store_search(s, "coop*", NULL, 20, &arr), 0);
	assert_int_equal(json_array_size(arr), 2);
	json_decref(arr);
	assert_int_equal(store_search(s, "leiden", "org", 20, &arr), 0);
	assert_int_equal(json_array_size(arr), 1);
	assert_string_equal(json_string_value(json_object_get(json_array_get(arr, 0), "id")), "ul");
	json_decref(arr);
	/* Several words are ANDed. */
	assert_int_equal(store_search(s, "Anna leiden", NULL, 20, &arr), 0);
	assert_int_equal(json_array_size(arr), 1);
	json_decref(arr);
	/* Field names are not indexed. */
	assert_int_equal(store_search(s, "topics", NULL, 20, &arr), 0);
	assert_int_equal(json_array_size(arr), 0);
	json_decref(arr);
	/* Input that would be FTS5 syntax is just text. */
	assert_int_equal(store_search(s, "\"jan\" AND (NEAR* OR ) ^- :", NULL, 20, &arr), 0);
	assert_int_equal(json_array_size(arr), 0);
	json_decref(arr);
	assert_int_equal(store_search(s, "\"jan", NULL, 20, &arr), 0);
	assert_int_equal(json_array_size(arr), 1);
	json_decref(arr);
	assert_int_equal(store_search(s, "  ...  ", NULL, 20, &arr), 0);
	assert_int_equal(json_array_size(arr), 0);
	json_decref(arr);
	assert_int_equal(store_search(s, "— …", NULL, 20, &arr), 0);
	assert_int_equal(json_array_size(arr), 0);
	json_decref(arr);
	store_close(s);
}

static void test_put_merge_del(void **state)
{
	struct store *s = open_new();
	struct node a;
	json_t *arr, *f, *hits;

	(void)state;
	node_init(&a);
	append_ops(s, &a,
	           "[{\"coll\":\"expert\",\"id\":\"x\",\"fields\":{\"a\":1,\"b\":\"beta\","
	           "\"n\":null}}]");
	append_ops(s, &a,
	           "[{\"coll\":\"expert\",\"id\":\"x\",\"fields\":{\"b\":null,\"c\":true,"
	           "\"d\":{\"k\":\"gamma\"}}}]");
	arr = get1(s, "expert", "x");
	f = json_object_get(json_array_get(arr, 0), "fields");
	assert_int_equal(json_object_size(f), 3);
	assert_int_equal(json_integer_value(json_object_get(f, "a")), 1);
	assert_true(json_is_true(json_object_get(f, "c")));
	assert_null(json_object_get(f, "b"));
	assert_null(json_object_get(f, "n"));
	assert_int_equal(json_integer_value(json_object_get(json_array_get(arr, 0), "seq")), 2);
	json_decref(arr);
	/* The index follows: the cleared value is gone, the nested one is found. */
	assert_int_equal(store_search(s, "beta", NULL, 0, &hits), 0);
	assert_int_equal(json_array_size(hits), 0);
	json_decref(hits);
	assert_int_equal(store_search(s, "gamma", NULL, 0, &hits), 0);
	assert_int_equal(json_array_size(hits), 1);
	json_decref(hits);

	/* del: a tombstone, invisible to reads. */
	append_ops(s, &a, "[{\"coll\":\"expert\",\"id\":\"x\",\"del\":true}]");
	arr = get1(s, "expert", "x");
	assert_int_equal(json_array_size(arr), 0);
	json_decref(arr);
	assert_int_equal(store_list(s, "expert", NULL, 0, &arr), 0);
	assert_int_equal(json_array_size(arr), 0);
	json_decref(arr);
	assert_int_equal(store_search(s, "gamma", NULL, 0, &hits), 0);
	assert_int_equal(json_array_size(hits), 0);
	json_decref(hits);

	/* A put revives it from empty fields. */
	append_ops(s, &a, "[{\"coll\":\"expert\",\"id\":\"x\",\"fields\":{\"z\":\"zeta\"}}]");
	arr = get1(s, "expert", "x");
	f = json_object_get(json_array_get(arr, 0), "fields");
	assert_int_equal(json_object_size(f), 1);
	assert_string_equal(json_string_value(json_object_get(f, "z")), "zeta");
	json_decref(arr);
	store_close(s);
}

/*
 * store_apply_op inserts first while puts keep creating entities: a put
 * that finds its entity there after a run of new ones must still merge
 * into it, revive a tombstone from empty fields, and keep the digest that
 * a rebuild from the log computes.
 */
static void test_put_existing_after_new(void **state)
{
	struct store *s = open_new();
	struct node a;
	json_t *arr, *f, *st;
	char before[65], after[65];

	(void)state;
	node_init(&a);
	append_ops(s, &a,
	           "[{\"coll\":\"expert\",\"id\":\"t\",\"fields\":{\"old\":1}},"
	           "{\"coll\":\"expert\",\"id\":\"t\",\"del\":true}]");
	append_ops(s, &a,
	           "[{\"coll\":\"expert\",\"id\":\"x\",\"fields\":{\"a\":1}},"
	           "{\"coll\":\"expert\",\"id\":\"y\",\"fields\":{\"a\":2}},"
	           "{\"coll\":\"expert\",\"id\":\"x\",\"fields\":{\"b\":3}},"
	           "{\"coll\":\"expert\",\"id\":\"z\",\"fields\":{\"a\":4}},"
	           "{\"coll\":\"expert\",\"id\":\"w\",\"fields\":{\"a\":5}},"
	           "{\"coll\":\"expert\",\"id\":\"t\",\"fields\":{\"new\":6}},"
	           "{\"coll\":\"expert\",\"id\":\"y\",\"fields\":{\"a\":2}}]");

	arr = get1(s, "expert", "x");
	f = json_object_get(json_array_get(arr, 0), "fields");
	assert_int_equal(json_object_size(f), 2);
	assert_int_equal(json_integer_value(json_object_get(f, "a")), 1);
	assert_int_equal(json_integer_value(json_object_get(f, "b")), 3);
	json_decref(arr);
	arr = get1(s, "expert", "t");
	f = json_object_get(json_array_get(arr, 0), "fields");
	assert_int_equal(json_object_size(f), 1);
	assert_int_equal(json_integer_value(json_object_get(f, "new")), 6);
	json_decref(arr);
	assert_int_equal(store_status(s, &st), 0);
	assert_int_equal(json_integer_value(json_object_get(st, "entities")), 5);
	json_decref(st);

	digest_hex(s, before);
	assert_int_equal(store_rebuild(s), 0);
	digest_hex(s, after);
	assert_string_equal(before, after);
	store_close(s);
}

/* The live count of coll in a status report (0 when absent). */
static long long status_count(struct store *s, const char *coll)
{
	json_t *st;
	long long n;

	assert_int_equal(store_status(s, &st), 0);
	n = json_integer_value(json_object_get(json_object_get(st, "counts"), coll));
	json_decref(st);
	return n;
}

/*
 * status counts the live entities once and then keeps the numbers with
 * each commit: creations, deletes and revivals move them, a rollback and
 * a rebuild leave them true, and inside a transaction they are counted.
 */
static void test_status_counts_kept(void **state)
{
	struct store *s = open_new();
	struct node a;
	struct signed_cs c;
	struct changeset cs;
	char err[200];
	int ch;

	(void)state;
	node_init(&a);
	assert_int_equal(status_count(s, "expert"), 0);
	append_ops(s, &a,
	           "[{\"coll\":\"expert\",\"id\":\"x\",\"fields\":{\"a\":1}},"
	           "{\"coll\":\"expert\",\"id\":\"y\",\"fields\":{\"a\":2}},"
	           "{\"coll\":\"org\",\"id\":\"o\",\"fields\":{\"name\":\"O\"}}]");
	assert_int_equal(status_count(s, "expert"), 2);
	assert_int_equal(status_count(s, "org"), 1);

	append_ops(s, &a,
	           "[{\"coll\":\"expert\",\"id\":\"x\",\"del\":true},"
	           "{\"coll\":\"org\",\"id\":\"o\",\"del\":true},"
	           "{\"coll\":\"expert\",\"id\":\"gone\",\"del\":true}]");
	assert_int_equal(status_count(s, "expert"), 1);
	assert_int_equal(status_count(s, "org"), 0);

	append_ops(s, &a,
	           "[{\"coll\":\"expert\",\"id\":\"x\",\"fields\":{\"b\":3}},"
	           "{\"coll\":\"expert\",\"id\":\"y\",\"fields\":{\"b\":4}}]");
	assert_int_equal(status_count(s, "expert"), 2);

	/* Inside a transaction the uncommitted entity is counted; after the rollback it is not. */
	c = make_cs_at(&a, a.seq + 1, a.head,
	               "[{\"coll\":\"expert\",\"id\":\"z\",\"fields\":{\"n\":1}}]");
	assert_int_equal(changeset_decode(c.bytes, c.len, &cs, err, sizeof(err)), 0);
	assert_int_equal(store_begin(s), 0);
	assert_int_equal(store_apply_local(s, a.pk, &cs.ops[0], cs.seq, cs.hlc, &ch, NULL), 0);
	assert_int_equal(ch, 1);
	assert_int_equal(status_count(s, "expert"), 3);
	store_rollback(s);
	assert_int_equal(status_count(s, "expert"), 2);
	changeset_release(&cs);
	free(c.bytes);

	assert_int_equal(store_rebuild(s), 0);
	assert_int_equal(status_count(s, "expert"), 2);
	append_ops(s, &a, "[{\"coll\":\"expert\",\"id\":\"w\",\"fields\":{\"n\":1}}]");
	assert_int_equal(status_count(s, "expert"), 3);
	store_close(s);
}

/* Whether op (given as JSON like make_cs's) would change the store. */
static int changes(struct store *s, struct node *n, const char *op_json)
{
	struct signed_cs c = make_cs_at(n, n->seq + 1, n->head, op_json);
	struct changeset cs;
	char err[200];
	int ch = -1;

	assert_int_equal(changeset_decode(c.bytes, c.len, &cs, err, sizeof(err)), 0);
	assert_int_equal(store_begin(s), 0);
	assert_int_equal(store_apply_local(s, n->pk, &cs.ops[0], cs.seq, cs.hlc, &ch, NULL), 0);
	store_rollback(s);
	changeset_release(&cs);
	free(c.bytes);
	return ch;
}

static void test_op_changes(void **state)
{
	struct store *s = open_new();
	struct node a, b;
	char before[65], after[65];

	(void)state;
	node_init(&a);
	node_init(&b);
	append_ops(s, &a,
	           "[{\"coll\":\"org\",\"id\":\"o\",\"fields\":{\"name\":\"N\",\"n\":2}},"
	           "{\"coll\":\"org\",\"id\":\"gone\",\"fields\":{\"name\":\"G\"}},"
	           "{\"coll\":\"org\",\"id\":\"gone\",\"del\":true}]");
	digest_hex(s, before);
	assert_int_equal(
	    changes(s, &a, "[{\"coll\":\"org\",\"id\":\"o\",\"fields\":{\"name\":\"N\"}}]"), 0);
	assert_int_equal(
	    changes(s, &a,
	            "[{\"coll\":\"org\",\"id\":\"o\",\"fields\":{\"name\":\"N\",\"x\":null}}]"),
	    0);
	assert_int_equal(changes(s, &a, "[{\"coll\":\"org\",\"id\":\"o\",\"fields\":{\"n\":2.0}}]"),
	                 1);
	assert_int_equal(
	    changes(s, &a, "[{\"coll\":\"org\",\"id\":\"o\",\"fields\":{\"n\":null}}]"), 1);
	assert_int_equal(changes(s, &a, "[{\"coll\":\"org\",\"id\":\"o\",\"del\":true}]"), 1);
	assert_int_equal(changes(s, &a, "[{\"coll\":\"org\",\"id\":\"gone\",\"del\":true}]"), 0);
	assert_int_equal(changes(s, &a, "[{\"coll\":\"org\",\"id\":\"never\",\"del\":true}]"), 0);
	assert_int_equal(
	    changes(s, &a, "[{\"coll\":\"org\",\"id\":\"gone\",\"fields\":{\"a\":1}}]"), 1);
	/* Another owner's entity of the same id is a different entity. */
	assert_int_equal(
	    changes(s, &b, "[{\"coll\":\"org\",\"id\":\"o\",\"fields\":{\"name\":\"N\"}}]"), 1);
	/* Each was rolled back: nothing changed. */
	digest_hex(s, after);
	assert_string_equal(before, after);

	/* An unchanged put inside a changeset leaves state and seq alone. */
	append_ops(s, &a, "[{\"coll\":\"org\",\"id\":\"o\",\"fields\":{\"name\":\"N\"}}]");
	digest_hex(s, after);
	assert_string_equal(before, after);
	json_t *arr = get1(s, "org", "o");
	assert_int_equal(json_integer_value(json_object_get(json_array_get(arr, 0), "seq")), 1);
	json_decref(arr);
	store_close(s);
}

/*
 * A node's own write: ops applied as they are read, then the signed
 * changeset stored without applying them again, ends in the state a peer
 * gets from the same changeset through store_append.
 */
static void test_apply_local_then_append(void **state)
{
	struct store *mine = open_new(), *peer = open_new();
	struct node a;
	struct changeset cs;
	char err[200], d_mine[65], d_peer[65];
	int changed, live;

	(void)state;
	node_init(&a);
	struct signed_cs c =
	    make_cs(&a, "[{\"coll\":\"org\",\"id\":\"o\",\"fields\":{\"name\":\"N\",\"n\":1}},"
	                "{\"coll\":\"org\",\"id\":\"o\",\"fields\":{\"n\":2}},"
	                "{\"coll\":\"org\",\"id\":\"p\",\"fields\":{\"name\":\"P\"}}]");
	assert_int_equal(changeset_decode(c.bytes, c.len, &cs, err, sizeof(err)), 0);

	/* Outside a transaction neither step is taken. */
	assert_int_equal(store_apply_local(mine, a.pk, &cs.ops[0], 1, cs.hlc, &changed, &live),
	                 LOKET_E_STORE);
	uint8_t hash[32], expect[32];
	assert_int_equal(store_append_applied(mine, c.bytes, c.len, &cs, hash), LOKET_E_STORE);

	assert_int_equal(store_begin(mine), 0);
	assert_int_equal(store_apply_local(mine, a.pk, &cs.ops[0], 1, cs.hlc, &changed, &live), 0);
	assert_int_equal(changed, 1);
	assert_int_equal(live, 0);
	/* The second op sees the first: the entity is live now. */
	assert_int_equal(store_apply_local(mine, a.pk, &cs.ops[1], 1, cs.hlc, &changed, &live), 0);
	assert_int_equal(changed, 1);
	assert_int_equal(live, 1);
	assert_int_equal(store_apply_local(mine, a.pk, &cs.ops[2], 1, cs.hlc, &changed, &live), 0);
	assert_int_equal(store_append_applied(mine, c.bytes, c.len, &cs, hash), 0);
	changeset_hash(c.bytes, c.len, expect);
	assert_memory_equal(hash, expect, 32);
	assert_int_equal(store_commit(mine), 0);
	append_ok(peer, &c);

	digest_hex(mine, d_mine);
	digest_hex(peer, d_peer);
	assert_string_equal(d_mine, d_peer);
	json_t *arr = get1(mine, "org", "o");
	json_t *f = json_object_get(json_array_get(arr, 0), "fields");
	assert_int_equal(json_integer_value(json_object_get(f, "n")), 2);
	assert_int_equal(json_integer_value(json_object_get(json_array_get(arr, 0), "seq")), 1);
	json_decref(arr);

	/* The chain rules still hold: a changeset after a gap is refused. */
	assert_int_equal(store_begin(mine), 0);
	struct signed_cs gap =
	    make_cs_at(&a, 3, a.head, "[{\"coll\":\"org\",\"id\":\"q\",\"del\":true}]");
	struct changeset gcs;
	assert_int_equal(changeset_decode(gap.bytes, gap.len, &gcs, err, sizeof(err)), 0);
	assert_int_equal(store_append_applied(mine, gap.bytes, gap.len, &gcs, hash),
	                 LOKET_E_BAD_SEQ);
	store_rollback(mine);
	changeset_release(&gcs);
	free(gap.bytes);

	changeset_release(&cs);
	free(c.bytes);
	store_close(mine);
	store_close(peer);
}

static void test_chain_rules(void **state)
{
	struct store *s = open_new();
	struct node a;
	struct signed_cs c1, c2, c3, rival, gap, badprev;
	uint8_t zero[32] = {0}, hash[32], h1[32];
	uint64_t seq;
	json_t *st, *forks, *f;
	char d1[65], d2[65];

	(void)state;
	node_init(&a);
	assert_int_equal(store_set_member(s, a.pk, "alpha"), 0);
	c1 = make_cs(&a, "[{\"coll\":\"org\",\"id\":\"a\",\"fields\":{\"v\":1}}]");
	c2 = make_cs(&a, "[{\"coll\":\"org\",\"id\":\"a\",\"fields\":{\"v\":2}}]");
	gap = make_cs_at(&a, 4, a.head, "[{\"coll\":\"org\",\"id\":\"a\",\"fields\":{\"v\":4}}]");
	badprev = make_cs_at(&a, 2, zero, "[{\"coll\":\"org\",\"id\":\"a\",\"fields\":{\"v\":9}}]");
	append_ok(s, &c1);
	assert_int_equal(store_head(s, a.pk, &seq, hash), 0);
	assert_int_equal(seq, 1);

	/* Outside a transaction an append commits by itself. */
	assert_int_equal(append(s, &gap), LOKET_E_BAD_SEQ);
	assert_int_equal(append(s, &badprev), LOKET_E_BAD_PREV);
	assert_int_equal(append(s, &c2), 0);
	assert_int_equal(append(s, &c2), 1);
	assert_int_equal(append(s, &c1), 1);
	assert_int_equal(store_head(s, a.pk, &seq, hash), 0);
	assert_int_equal(seq, 2);
	assert_memory_equal(hash, a.head, 32);
	digest_hex(s, d1);

	/* A rival seq 2 is a fork: reported, nothing written until it is proved. */
	changeset_hash(c1.bytes, c1.len, h1);
	rival = make_cs_at(&a, 2, h1, "[{\"coll\":\"org\",\"id\":\"a\",\"fields\":{\"v\":22}}]");
	assert_int_equal(store_begin(s), 0);
	assert_int_equal(append(s, &rival), LOKET_E_FORK);
	assert_int_equal(store_commit(s), 0);
	digest_hex(s, d2);
	assert_string_equal(d1, d2);
	assert_int_equal(store_status(s, &st), 0);
	assert_int_equal(json_array_size(json_object_get(st, "forks")), 0);
	json_decref(st);

	/* Proved, it freezes the origin before seq 2: seq 2 goes, the state is seq 1's. */
	assert_int_equal(store_fork_record(s, a.pk, 2, c2.bytes, c2.len, rival.bytes, rival.len),
	                 0);
	assert_int_equal(store_head(s, a.pk, &seq, hash), 0);
	assert_int_equal(seq, 1);
	assert_memory_equal(hash, h1, 32);
	json_t *got = get1(s, "org", "a");
	assert_int_equal(json_integer_value(json_object_get(
	                     json_object_get(json_array_get(got, 0), "fields"), "v")),
	                 1);
	json_decref(got);
	assert_int_equal(store_status(s, &st), 0);
	forks = json_object_get(st, "forks");
	assert_int_equal(json_array_size(forks), 1);
	f = json_array_get(forks, 0);
	assert_string_equal(json_string_value(json_object_get(f, "origin")), "alpha");
	assert_int_equal(json_integer_value(json_object_get(f, "seq")), 2);
	assert_int_equal(json_array_size(json_object_get(f, "hashes")), 2);
	assert_string_not_equal(json_string_value(json_array_get(json_object_get(f, "hashes"), 0)),
	                        json_string_value(json_array_get(json_object_get(f, "hashes"), 1)));
	json_decref(st);

	/* The forked origin is not built on, neither branch. */
	assert_int_equal(append(s, &c2), LOKET_E_FROZEN);
	assert_int_equal(append(s, &rival), LOKET_E_FROZEN);
	c3 = make_cs(&a, "[{\"coll\":\"org\",\"id\":\"a\",\"fields\":{\"v\":3}}]");
	assert_int_equal(append(s, &c3), LOKET_E_BAD_SEQ);
	assert_int_equal(store_head(s, a.pk, &seq, hash), 0);
	assert_int_equal(seq, 1);

	free(c1.bytes);
	free(c2.bytes);
	free(c3.bytes);
	free(gap.bytes);
	free(badprev.bytes);
	free(rival.bytes);
	store_close(s);
}

/*
 * One proof per origin, the lowest: a second proof of the same or a higher
 * seq changes nothing, a lower one replaces it and freezes further back.
 * Two stores that took different branches end alike once both hold it.
 */
static void test_fork_proof_lowest_wins(void **state)
{
	struct store *s = open_new(), *t = open_new();
	struct node a;
	struct signed_cs c[4], r1, r3, r3b;
	uint8_t zero[32] = {0}, prev[32], got[2][32];
	uint64_t seq;
	char d1[65], d2[65];

	(void)state;
	node_init(&a);
	for (int i = 0; i < 4; i++) {
		char ops[96];
		snprintf(ops, sizeof(ops),
		         "[{\"coll\":\"org\",\"id\":\"o%d\",\"fields\":{\"v\":%d}}]", i, i);
		c[i] = make_cs(&a, ops);
	}
	changeset_hash(c[1].bytes, c[1].len, prev);
	r3 = make_cs_at(&a, 3, prev, "[{\"coll\":\"org\",\"id\":\"x\",\"fields\":{\"v\":1}}]");
	r3b = make_cs_at(&a, 3, prev, "[{\"coll\":\"org\",\"id\":\"y\",\"fields\":{\"v\":1}}]");
	r1 = make_cs_at(&a, 1, zero, "[{\"coll\":\"org\",\"id\":\"z\",\"fields\":{\"v\":1}}]");
	/* s holds all four; t only the first two, then the rival seq 3. */
	for (int i = 0; i < 4; i++)
		append_ok(s, &c[i]);
	append_ok(t, &c[0]);
	append_ok(t, &c[1]);
	append_ok(t, &r3);

	assert_int_equal(store_fork_record(s, a.pk, 3, c[2].bytes, c[2].len, r3.bytes, r3.len), 0);
	assert_int_equal(store_fork_record(t, a.pk, 3, r3.bytes, r3.len, c[2].bytes, c[2].len), 0);
	digest_hex(s, d1);
	digest_hex(t, d2);
	assert_string_equal(d1, d2);
	assert_int_equal(store_head(s, a.pk, &seq, got[0]), 0);
	assert_int_equal(seq, 2);
	/* Another variant of seq 3, or a fork at seq 4, is no better proof. */
	assert_int_equal(store_fork_record(s, a.pk, 3, r3.bytes, r3.len, r3b.bytes, r3b.len), 1);
	assert_int_equal(store_fork_record(s, a.pk, 4, c[3].bytes, c[3].len, r3b.bytes, r3b.len),
	                 1);
	assert_int_equal(store_fork_seq(s, a.pk, &seq), 0);
	assert_int_equal(seq, 3);

	/* A fork at seq 1 replaces it: nothing of the origin is left. */
	assert_int_equal(store_fork_record(s, a.pk, 1, c[0].bytes, c[0].len, r1.bytes, r1.len), 0);
	assert_int_equal(store_fork_seq(s, a.pk, &seq), 0);
	assert_int_equal(seq, 1);
	assert_int_equal(store_head(s, a.pk, &seq, got[0]), 0);
	assert_int_equal(seq, 0);
	uint8_t *bytes[2];
	size_t len[2];
	assert_int_equal(store_fork_proof(s, a.pk, &seq, bytes, len), 0);
	assert_int_equal(seq, 1);
	changeset_hash(bytes[0], len[0], got[0]);
	changeset_hash(bytes[1], len[1], got[1]);
	assert_memory_not_equal(got[0], got[1], 32);
	free(bytes[0]);
	free(bytes[1]);
	json_t *all = NULL;
	assert_int_equal(store_list(s, "org", NULL, 0, &all), 0);
	assert_int_equal(json_array_size(all), 0);
	json_decref(all);
	/* Two equal changesets are no proof. */
	assert_int_equal(store_fork_record(t, a.pk, 1, c[0].bytes, c[0].len, c[0].bytes, c[0].len),
	                 LOKET_E_MALFORMED);

	for (int i = 0; i < 4; i++)
		free(c[i].bytes);
	free(r1.bytes);
	free(r3.bytes);
	free(r3b.bytes);
	store_close(s);
	store_close(t);
}

/*
 * A store written before fork proofs kept only the rival in the fork table
 * and went on holding the origin's later changesets; opened read-write, it
 * is frozen as a proof freezes it now, and verify finds the proof holds.
 */
static void test_fork_legacy_normalized(void **state)
{
	char path[256], err[256];
	struct store *s = NULL;
	struct node a;
	struct signed_cs c1, c2, c3, rival;
	uint8_t h1[32], rh[32];
	uint64_t seq;
	sqlite3 *db;
	sqlite3_stmt *st;
	json_t *report;

	(void)state;
	node_init(&a);
	store_path(path, sizeof(path));
	assert_int_equal(store_open(path, STORE_CREATE, &s, err, sizeof(err)), 0);
	c1 = make_cs(&a, "[{\"coll\":\"org\",\"id\":\"a\",\"fields\":{\"v\":1}}]");
	c2 = make_cs(&a, "[{\"coll\":\"org\",\"id\":\"a\",\"fields\":{\"v\":2}}]");
	c3 = make_cs(&a, "[{\"coll\":\"org\",\"id\":\"b\",\"fields\":{\"v\":3}}]");
	append_ok(s, &c1);
	append_ok(s, &c2);
	append_ok(s, &c3);
	store_close(s);
	changeset_hash(c1.bytes, c1.len, h1);
	rival = make_cs_at(&a, 2, h1, "[{\"coll\":\"org\",\"id\":\"a\",\"fields\":{\"v\":22}}]");
	changeset_hash(rival.bytes, rival.len, rh);
	assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
	assert_int_equal(sqlite3_prepare_v2(db,
	                                    "INSERT INTO fork(origin, seq, hash, bytes, seen)"
	                                    " VALUES(?1, 2, ?2, ?3, 0)",
	                                    -1, &st, NULL),
	                 SQLITE_OK);
	sqlite3_bind_blob(st, 1, a.pk, 32, SQLITE_STATIC);
	sqlite3_bind_blob(st, 2, rh, 32, SQLITE_STATIC);
	sqlite3_bind_blob(st, 3, rival.bytes, (int)rival.len, SQLITE_STATIC);
	assert_int_equal(sqlite3_step(st), SQLITE_DONE);
	sqlite3_finalize(st);
	sqlite3_close(db);

	assert_int_equal(store_open(path, 0, &s, err, sizeof(err)), 0);
	assert_int_equal(store_head(s, a.pk, &seq, h1), 0);
	assert_int_equal(seq, 1);
	json_t *b = get1(s, "org", "b");
	assert_int_equal(json_array_size(b), 0);
	json_decref(b);
	store_close(s);
	assert_int_equal(store_open(path, STORE_READONLY, &s, err, sizeof(err)), 0);
	assert_int_equal(store_verify(s, NULL, &report), 0);
	assert_int_equal(json_array_size(json_object_get(report, "problems")), 1);
	assert_true(strstr(json_string_value(json_object_get(
	                       json_array_get(json_object_get(report, "problems"), 0), "problem")),
	                   "the proof holds") != NULL);
	json_decref(report);
	store_close(s);
	free(c1.bytes);
	free(c2.bytes);
	free(c3.bytes);
	free(rival.bytes);
}

static void test_rollback_restores_digest(void **state)
{
	struct store *s = open_new();
	struct node a;
	struct signed_cs c1, c2;
	char d1[65], d2[65];
	uint64_t seq;
	uint8_t hash[32];

	(void)state;
	node_init(&a);
	c1 = make_cs(&a, "[{\"coll\":\"org\",\"id\":\"a\",\"fields\":{\"v\":1}}]");
	c2 = make_cs(&a, "[{\"coll\":\"org\",\"id\":\"b\",\"fields\":{\"v\":2}}]");
	append_ok(s, &c1);
	digest_hex(s, d1);
	assert_int_equal(store_begin(s), 0);
	assert_int_equal(append(s, &c2), 0);
	digest_hex(s, d2);
	assert_string_not_equal(d1, d2);
	store_rollback(s);
	digest_hex(s, d2);
	assert_string_equal(d1, d2);
	assert_int_equal(store_head(s, a.pk, &seq, hash), 0);
	assert_int_equal(seq, 1);
	append_ok(s, &c2);
	free(c1.bytes);
	free(c2.bytes);
	store_close(s);
}

/* A changeset of n puts of expert e0..e(n-1), each with field v set to v. */
static char *many_puts(int n, int v)
{
	json_t *ops = json_array();
	char id[16], *text;

	for (int i = 0; i < n; i++) {
		snprintf(id, sizeof(id), "e%d", i);
		json_array_append_new(ops, json_pack("{s:s, s:s, s:{s:i}}", "coll", "expert", "id",
		                                     id, "fields", "v", v));
	}
	text = json_dumps(ops, 0);
	json_decref(ops);
	return text;
}

/*
 * Many entity changes in one transaction go through the digest thread in
 * batches: the digest read mid-transaction, at the commit, after a
 * reopen and from a rebuild is one and the same, and a rollback with
 * batches in flight leaves the committed digest.
 */
static void test_digest_batches(void **state)
{
	char path[256], err[256], d1[65], d2[65], d3[65];
	struct store *s = NULL;
	struct node a;
	struct signed_cs c;
	char *ops;
	json_t *report;

	(void)state;
	node_init(&a);
	store_path(path, sizeof(path));
	assert_int_equal(store_open(path, STORE_CREATE, &s, err, sizeof(err)), 0);
	ops = many_puts(1000, 1);
	c = make_cs(&a, ops);
	free(ops);
	assert_int_equal(store_begin(s), 0);
	assert_int_equal(append(s, &c), 0);
	digest_hex(s, d1);
	assert_int_equal(store_commit(s), 0);
	free(c.bytes);
	digest_hex(s, d2);
	assert_string_equal(d1, d2);

	/* 700 replacements and 300 new entities, then rolled back. */
	ops = many_puts(1300, 2);
	c = make_cs(&a, ops);
	free(ops);
	assert_int_equal(store_begin(s), 0);
	assert_int_equal(append(s, &c), 0);
	store_rollback(s);
	digest_hex(s, d2);
	assert_string_equal(d1, d2);
	/* And committed this time. */
	append_ok(s, &c);
	free(c.bytes);
	digest_hex(s, d2);
	assert_string_not_equal(d1, d2);
	store_close(s);

	assert_int_equal(store_open(path, 0, &s, err, sizeof(err)), 0);
	digest_hex(s, d3);
	assert_string_equal(d2, d3);
	assert_int_equal(store_rebuild(s), 0);
	digest_hex(s, d3);
	assert_string_equal(d2, d3);
	assert_int_equal(store_verify(s, NULL, &report), 0);
	assert_true(json_is_true(json_object_get(report, "ok")));
	assert_string_equal(json_string_value(json_object_get(report, "digest")), d2);
	json_decref(report);
	store_close(s);
}

#define N_CS 4

/* Two origins' chains, for the interleaving, rebuild and verify tests. */
static void make_two_chains(struct node *a, struct node *b, struct signed_cs ca[N_CS],
                            struct signed_cs cb[N_CS])
{
	node_init(a);
	node_init(b);
	ca[0] = make_cs(a, "[{\"coll\":\"expert\",\"id\":\"e1\",\"fields\":{\"name\":\"Eva\","
	                   "\"topics\":[\"water\",\"klimaat\"]}},"
	                   "{\"coll\":\"org\",\"id\":\"a\",\"fields\":{\"name\":\"Alpha\"}}]");
	cb[0] = make_cs(b, "[{\"coll\":\"expert\",\"id\":\"e1\",\"fields\":{\"name\":\"Bob\"}}]");
	ca[1] = make_cs(a, "[{\"coll\":\"expert\",\"id\":\"e1\",\"fields\":{\"title\":\"dr.\","
	                   "\"topics\":null}}]");
	cb[1] = make_cs(b, "[{\"coll\":\"question\",\"id\":\"q1\",\"fields\":{\"title\":\"Hoe "
	                   "houden we de wijk koel?\",\"asker\":{\"name\":\"Buurt\",\"kind\":"
	                   "\"neighbourhood\"},\"score\":1.5}}]");
	ca[2] = make_cs(a, "[{\"coll\":\"org\",\"id\":\"a\",\"del\":true}]");
	cb[2] = make_cs(b, "[{\"coll\":\"expert\",\"id\":\"e1\",\"del\":true},"
	                   "{\"coll\":\"expert\",\"id\":\"e1\",\"fields\":{\"name\":\"Bo\"}}]");
	ca[3] = make_cs(a, "[{\"coll\":\"project\",\"id\":\"p\",\"fields\":{\"name\":\"Koel\"}}]");
	cb[3] = make_cs(b, "[{\"coll\":\"response\",\"id\":\"r\",\"fields\":{\"question\":\"q1\","
	                   "\"text\":\"Wij helpen\"}}]");
}

static void free_chains(struct signed_cs ca[N_CS], struct signed_cs cb[N_CS])
{
	for (int i = 0; i < N_CS; i++) {
		free(ca[i].bytes);
		free(cb[i].bytes);
	}
}

static void test_digest_interleavings_and_rebuild(void **state)
{
	struct store *s1 = open_new(), *s2 = open_new();
	struct node a, b;
	struct signed_cs ca[N_CS], cb[N_CS];
	char d1[65], d2[65], d3[65];
	json_t *st;

	(void)state;
	make_two_chains(&a, &b, ca, cb);
	for (int i = 0; i < N_CS; i++)
		append_ok(s1, &ca[i]);
	for (int i = 0; i < N_CS; i++)
		append_ok(s1, &cb[i]);
	/* The other store takes them interleaved, all in one transaction. */
	assert_int_equal(store_begin(s2), 0);
	for (int i = 0; i < N_CS; i++) {
		assert_int_equal(append(s2, &cb[i]), 0);
		assert_int_equal(append(s2, &ca[i]), 0);
	}
	assert_int_equal(store_commit(s2), 0);
	digest_hex(s1, d1);
	digest_hex(s2, d2);
	assert_string_equal(d1, d2);
	assert_string_not_equal(d1,
	                        "ad7facb2586fc6e966c004d7d1d16b024f5805ff7cb47c7a85dabd8b48892ca7");

	assert_int_equal(store_rebuild(s1), 0);
	digest_hex(s1, d3);
	assert_string_equal(d1, d3);
	assert_int_equal(store_status(s1, &st), 0);
	assert_string_equal(json_string_value(json_object_get(st, "digest")), d1);
	/* expert e1 of a and b, question, project, response; org a is deleted. */
	assert_int_equal(json_integer_value(json_object_get(st, "entities")), 5);
	json_decref(st);
	/* Rebuild rebuilt the index too. */
	assert_int_equal(store_search(s1, "koel", NULL, 0, &st), 0);
	assert_int_equal(json_array_size(st), 2);
	json_decref(st);

	free_chains(ca, cb);
	store_close(s1);
	store_close(s2);
}

/* Whether report lists a problem for (origin, seq). */
static int has_problem(const json_t *report, const char *origin, long long seq)
{
	size_t i;
	json_t *p;

	json_array_foreach(json_object_get(report, "problems"), i, p)
	{
		const char *o = json_string_value(json_object_get(p, "origin"));

		if (o && strcmp(o, origin) == 0 &&
		    json_integer_value(json_object_get(p, "seq")) == seq)
			return 1;
	}
	return 0;
}

/* Whether report lists a problem of the whole store (null origin). */
static int has_store_problem(const json_t *report)
{
	size_t i;
	json_t *p;

	json_array_foreach(json_object_get(report, "problems"), i, p)
	{
		if (json_is_null(json_object_get(p, "origin")) &&
		    json_is_null(json_object_get(p, "seq")))
			return 1;
	}
	return 0;
}

static void test_verify(void **state)
{
	char path[256], err[256], ka[64], kb[64], d[65];
	struct store *s = NULL;
	struct node a, b;
	struct signed_cs ca[N_CS], cb[N_CS];
	json_t *report, *roster;
	sqlite3 *db;
	sqlite3_stmt *st;

	(void)state;
	store_path(path, sizeof(path));
	assert_int_equal(store_open(path, STORE_CREATE, &s, err, sizeof(err)), 0);
	make_two_chains(&a, &b, ca, cb);
	assert_int_equal(store_set_member(s, a.pk, "alpha"), 0);
	assert_int_equal(store_set_member(s, b.pk, "beta"), 0);
	for (int i = 0; i < N_CS; i++) {
		append_ok(s, &ca[i]);
		append_ok(s, &cb[i]);
	}
	digest_hex(s, d);
	store_close(s);

	assert_int_equal(store_open(path, STORE_READONLY, &s, err, sizeof(err)), 0);
	sodium_bin2base64(ka, sizeof(ka), a.pk, 32, sodium_base64_VARIANT_ORIGINAL);
	sodium_bin2base64(kb, sizeof(kb), b.pk, 32, sodium_base64_VARIANT_ORIGINAL);
	roster = json_pack("[s,s]", ka, kb);
	assert_int_equal(store_verify(s, roster, &report), 0);
	assert_true(json_is_true(json_object_get(report, "ok")));
	assert_int_equal(json_array_size(json_object_get(report, "problems")), 0);
	assert_int_equal(json_integer_value(json_object_get(report, "changesets")), 2 * N_CS);
	assert_int_equal(json_integer_value(json_object_get(report, "ops")), 10);
	assert_string_equal(json_string_value(json_object_get(report, "digest")), d);
	json_decref(report);
	json_decref(roster);

	/* beta missing from the roster is named. */
	roster = json_pack("[s]", ka);
	assert_int_equal(store_verify(s, roster, &report), 0);
	assert_true(json_is_false(json_object_get(report, "ok")));
	assert_true(has_problem(report, "beta", 1));
	assert_false(has_problem(report, "alpha", 1));
	json_decref(report);
	json_decref(roster);

	/* Tamper with alpha's seq 2 through a second connection. */
	assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
	assert_int_equal(sqlite3_prepare_v2(db,
	                                    "UPDATE changeset SET bytes = ?1 WHERE origin = ?2"
	                                    " AND seq = 2",
	                                    -1, &st, NULL),
	                 SQLITE_OK);
	ca[1].bytes[ca[1].len - 5] ^= 0x40; /* inside the signature */
	sqlite3_bind_blob(st, 1, ca[1].bytes, (int)ca[1].len, SQLITE_STATIC);
	sqlite3_bind_blob(st, 2, a.pk, 32, SQLITE_STATIC);
	assert_int_equal(sqlite3_step(st), SQLITE_DONE);
	assert_int_equal(sqlite3_changes(db), 1);
	sqlite3_finalize(st);
	/* And with an entity row, behind the digest's back. */
	assert_int_equal(sqlite3_exec(db,
	                              "UPDATE entity SET fields = '{\"name\":\"Mallory\"}'"
	                              " WHERE coll = 'response'",
	                              NULL, NULL, NULL),
	                 SQLITE_OK);
	sqlite3_close(db);

	assert_int_equal(store_verify(s, NULL, &report), 0);
	assert_true(json_is_false(json_object_get(report, "ok")));
	assert_true(has_problem(report, "alpha", 2));
	assert_true(has_problem(report, "beta", 4));
	assert_true(has_store_problem(report)); /* the digests no longer agree */
	assert_false(has_problem(report, "alpha", 1));
	assert_false(has_problem(report, "beta", 1));
	json_decref(report);
	free_chains(ca, cb);
	store_close(s);
}

/* The entity rows' digest column of s summed by XOR, as schema 2's state digest was. */
static void rows_xor(struct store *s, uint8_t out[32])
{
	sqlite3_stmt *st = NULL;

	memset(out, 0, 32);
	assert_int_equal(
	    sqlite3_prepare_v2(store_sql_db(s), "SELECT digest FROM entity", -1, &st, NULL),
	    SQLITE_OK);
	while (sqlite3_step(st) == SQLITE_ROW) {
		assert_int_equal(sqlite3_column_bytes(st, 0), 32);
		for (int i = 0; i < 32; i++)
			out[i] ^= ((const uint8_t *)sqlite3_column_blob(st, 0))[i];
	}
	sqlite3_finalize(st);
}

#define FORGE_CANDIDATES 300

/*
 * The digest commits to the state: a forger who picks entities so that
 * their digests XOR to those of the true state (Gaussian elimination over
 * GF(2) on 300 candidates finds such a set) gets a store whose old XOR
 * digest is the true one's, and must not get the same state digest.
 */
static void test_digest_not_xor_forgeable(void **state)
{
	struct store *honest = open_new(), *forged = open_new();
	struct node a;
	uint8_t target[32], x1[32], x2[32];
	uint64_t rows[FORGE_CANDIDATES][4], used[FORGE_CANDIDATES][5];
	uint64_t t[4], tu[5] = {0};
	char d1[65], d2[65], fields[32], id[16];
	json_t *ops = json_array();
	int pivot_of_bit[256];

	(void)state;
	node_init(&a);
	append_ops(honest, &a, "[{\"coll\":\"expert\",\"id\":\"x\",\"fields\":{\"name\":\"X\"}}]");
	rows_xor(honest, target);

	/* Candidates: expert ci with fields {"n":i}, each digest a vector over GF(2). */
	for (int i = 0; i < FORGE_CANDIDATES; i++) {
		uint8_t d[32];
		int k = snprintf(id, sizeof(id), "c%d", i);
		int f = snprintf(fields, sizeof(fields), "{\"n\":%d}", i);

		store_entity_digest("expert", 6, a.pk, id, (size_t)k, 0, fields, (size_t)f, d);
		memcpy(rows[i], d, 32);
		memset(used[i], 0, sizeof(used[i]));
		used[i][i / 64] |= (uint64_t)1 << (i % 64);
	}
	/* Reduce to a basis, one pivot bit per kept row, remembering which candidates make it. */
	for (int b = 0; b < 256; b++)
		pivot_of_bit[b] = -1;
	for (int i = 0; i < FORGE_CANDIDATES; i++) {
		for (int b = 0; b < 256; b++) {
			int p = pivot_of_bit[b];

			if (!(rows[i][b / 64] >> (b % 64) & 1))
				continue;
			if (p < 0) {
				pivot_of_bit[b] = i;
				break;
			}
			for (int w = 0; w < 4; w++)
				rows[i][w] ^= rows[p][w];
			for (int w = 0; w < 5; w++)
				used[i][w] ^= used[p][w];
		}
	}
	memcpy(t, target, 32);
	for (int b = 0; b < 256; b++) {
		int p = pivot_of_bit[b];

		if (!(t[b / 64] >> (b % 64) & 1))
			continue;
		assert_true(p >= 0); /* 300 random vectors span GF(2)^256 (all but surely) */
		for (int w = 0; w < 4; w++)
			t[w] ^= rows[p][w];
		for (int w = 0; w < 5; w++)
			tu[w] ^= used[p][w];
	}
	for (int i = 0; i < FORGE_CANDIDATES; i++) {
		if (!(tu[i / 64] >> (i % 64) & 1))
			continue;
		snprintf(id, sizeof(id), "c%d", i);
		json_array_append_new(ops, json_pack("{s:s, s:s, s:{s:i}}", "coll", "expert", "id",
		                                     id, "fields", "n", i));
	}
	{
		char *text = json_dumps(ops, 0);
		struct node f = a; /* the same origin, its chain begun again in the other store */

		f.seq = 0;
		memset(f.head, 0, 32);
		append_ops(forged, &f, text);
		free(text);
	}
	/* The forgery works against the XOR of the entity digests ... */
	rows_xor(forged, x2);
	rows_xor(honest, x1);
	assert_memory_equal(x1, x2, 32);
	/* ... and not against the state digest. */
	digest_hex(honest, d1);
	digest_hex(forged, d2);
	assert_string_not_equal(d1, d2);
	json_decref(ops);
	store_close(honest);
	store_close(forged);
}

/* Makes the store at path what schema 2 was: the XOR digest in meta, no digest table. */
static void downgrade_to_2(const char *path)
{
	sqlite3 *db;

	assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
	assert_int_equal(sqlite3_exec(db,
	                              "DROP TABLE digest;"
	                              "INSERT INTO meta(k, v) VALUES('digest', zeroblob(32));"
	                              "PRAGMA user_version = 2;",
	                              NULL, NULL, NULL),
	                 SQLITE_OK);
	sqlite3_close(db);
}

static long long sql_int(const char *path, const char *sql)
{
	sqlite3 *db;
	sqlite3_stmt *st = NULL;
	long long v = -1;

	assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
	assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK);
	if (sqlite3_step(st) == SQLITE_ROW)
		v = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	sqlite3_close(db);
	return v;
}

/*
 * A store of schema 2 is read as it is when opened read-only (the sum made
 * from its entity rows) and upgraded to schema 3 once when opened
 * read-write; either way it shows the digest it would have had as a new
 * store, verifies, and takes writes on from there.
 */
static void test_upgrade_from_schema_2(void **state)
{
	char path[256], err[256], d[65], d2[65];
	struct store *s = NULL;
	struct node a;
	json_t *report;

	(void)state;
	node_init(&a);
	store_path(path, sizeof(path));
	assert_int_equal(store_open(path, STORE_CREATE, &s, err, sizeof(err)), 0);
	append_ops(s, &a,
	           "[{\"coll\":\"expert\",\"id\":\"x\",\"fields\":{\"a\":1}},"
	           "{\"coll\":\"expert\",\"id\":\"y\",\"fields\":{\"a\":2}},"
	           "{\"coll\":\"org\",\"id\":\"o\",\"fields\":{\"name\":\"O\"}}]");
	append_ops(s, &a, "[{\"coll\":\"expert\",\"id\":\"y\",\"del\":true}]");
	digest_hex(s, d);
	store_close(s);
	downgrade_to_2(path);

	assert_int_equal(store_open(path, STORE_READONLY, &s, err, sizeof(err)), 0);
	digest_hex(s, d2);
	assert_string_equal(d, d2);
	assert_int_equal(store_verify(s, NULL, &report), 0);
	assert_true(json_is_true(json_object_get(report, "ok")));
	assert_string_equal(json_string_value(json_object_get(report, "digest")), d);
	json_decref(report);
	store_close(s);
	assert_int_equal(sql_int(path, "PRAGMA user_version"), 2);

	assert_int_equal(store_open(path, STORE_CREATE, &s, err, sizeof(err)), 0);
	digest_hex(s, d2);
	assert_string_equal(d, d2);
	assert_int_equal(sql_int(path, "PRAGMA user_version"), 4);
	assert_int_equal(sql_int(path, "SELECT count(*) FROM meta WHERE k = 'digest'"), 0);
	assert_int_equal(sql_int(path, "SELECT length(lanes) FROM digest WHERE id = 1"), 4096);
	append_ops(s, &a, "[{\"coll\":\"expert\",\"id\":\"x\",\"fields\":{\"b\":3}}]");
	digest_hex(s, d);
	assert_int_equal(store_rebuild(s), 0);
	digest_hex(s, d2);
	assert_string_equal(d, d2);
	assert_int_equal(store_verify(s, NULL, &report), 0);
	assert_true(json_is_true(json_object_get(report, "ok")));
	json_decref(report);
	store_close(s);
}

/* verify names a stored sum that is not that of the log, and not that of the rows. */
static void test_verify_digest_tampered(void **state)
{
	char path[256], err[256];
	struct store *s = NULL;
	struct node a;
	json_t *report, *p;
	sqlite3 *db;
	sqlite3_stmt *st = NULL;
	uint8_t lanes[LTHASH_BYTES];
	size_t i, found = 0;

	(void)state;
	node_init(&a);
	store_path(path, sizeof(path));
	assert_int_equal(store_open(path, STORE_CREATE, &s, err, sizeof(err)), 0);
	append_ops(s, &a, "[{\"coll\":\"expert\",\"id\":\"x\",\"fields\":{\"a\":1}}]");
	store_close(s);
	/* One byte of the stored sum moves by one. */
	assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
	assert_int_equal(
	    sqlite3_prepare_v2(db, "SELECT lanes FROM digest WHERE id = 1", -1, &st, NULL),
	    SQLITE_OK);
	assert_int_equal(sqlite3_step(st), SQLITE_ROW);
	assert_int_equal(sqlite3_column_bytes(st, 0), LTHASH_BYTES);
	memcpy(lanes, sqlite3_column_blob(st, 0), LTHASH_BYTES);
	sqlite3_finalize(st);
	lanes[100]++;
	assert_int_equal(
	    sqlite3_prepare_v2(db, "UPDATE digest SET lanes = ?1 WHERE id = 1", -1, &st, NULL),
	    SQLITE_OK);
	sqlite3_bind_blob(st, 1, lanes, LTHASH_BYTES, SQLITE_STATIC);
	assert_int_equal(sqlite3_step(st), SQLITE_DONE);
	sqlite3_finalize(st);
	sqlite3_close(db);
	assert_int_equal(sql_int(path, "SELECT length(lanes) FROM digest"), 4096);
	assert_int_equal(store_open(path, STORE_READONLY, &s, err, sizeof(err)), 0);
	assert_int_equal(store_verify(s, NULL, &report), 0);
	assert_true(json_is_false(json_object_get(report, "ok")));
	json_array_foreach(json_object_get(report, "problems"), i, p)
	{
		const char *m = json_string_value(json_object_get(p, "problem"));

		assert_true(json_is_null(json_object_get(p, "origin")));
		if (strstr(m, "differs from the replayed log's") ||
		    strstr(m, "differs from the digest of the stored entities"))
			found++;
	}
	assert_int_equal(found, 2);
	json_decref(report);
	store_close(s);
}

/* Big changesets are checked on verify's worker thread; problems still land. */
static void test_verify_big(void **state)
{
	char path[256], err[256];
	struct store *s = NULL;
	struct node a;
	struct signed_cs c[3];
	json_t *ops, *report;
	sqlite3 *db;
	sqlite3_stmt *st;
	char *text;

	(void)state;
	node_init(&a);
	store_path(path, sizeof(path));
	assert_int_equal(store_open(path, STORE_CREATE, &s, err, sizeof(err)), 0);
	assert_int_equal(store_set_member(s, a.pk, "alpha"), 0);
	for (int k = 0; k < 3; k++) {
		ops = json_array();
		for (int i = 0; i < 300; i++) {
			char id[32];

			snprintf(id, sizeof(id), "e%d", i);
			json_array_append_new(ops, json_pack("{s:s,s:s,s:{s:s,s:i,s:[s,s]}}",
			                                     "coll", "expert", "id", id, "fields",
			                                     "name", "Some Expert Name", "round", k,
			                                     "topics", "klimaat", "water"));
		}
		text = json_dumps(ops, JSON_COMPACT);
		c[k] = make_cs(&a, text);
		assert_true(c[k].len > 16384);
		free(text);
		json_decref(ops);
		append_ok(s, &c[k]);
	}
	store_close(s);

	assert_int_equal(store_open(path, STORE_READONLY, &s, err, sizeof(err)), 0);
	assert_int_equal(store_verify(s, NULL, &report), 0);
	assert_true(json_is_true(json_object_get(report, "ok")));
	assert_int_equal(json_integer_value(json_object_get(report, "ops")), 900);
	json_decref(report);

	assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
	assert_int_equal(
	    sqlite3_prepare_v2(db, "UPDATE changeset SET bytes = ?1 WHERE seq = 2", -1, &st, NULL),
	    SQLITE_OK);
	c[1].bytes[c[1].len - 1] ^= 1;
	sqlite3_bind_blob(st, 1, c[1].bytes, (int)c[1].len, SQLITE_STATIC);
	assert_int_equal(sqlite3_step(st), SQLITE_DONE);
	sqlite3_finalize(st);
	sqlite3_close(db);
	assert_int_equal(store_verify(s, NULL, &report), 0);
	assert_true(json_is_false(json_object_get(report, "ok")));
	assert_true(has_problem(report, "alpha", 2));
	assert_false(has_problem(report, "alpha", 1));
	/* Seq 3 names the hash seq 2 had; the tampered bytes hash differently. */
	assert_true(has_problem(report, "alpha", 3));
	json_decref(report);
	store_close(s);
	for (int k = 0; k < 3; k++)
		free(c[k].bytes);
}

static void test_log_and_status(void **state)
{
	struct store *s = open_new();
	struct node a, b;
	struct signed_cs ca[N_CS], cb[N_CS];
	json_t *log, *st, *e, *h;

	(void)state;
	make_two_chains(&a, &b, ca, cb);
	assert_int_equal(store_set_member(s, a.pk, "alpha"), 0);
	for (int i = 0; i < N_CS; i++)
		append_ok(s, &ca[i]);
	for (int i = 0; i < N_CS; i++)
		append_ok(s, &cb[i]);

	/* Newest first by hlc: b's chain was signed after a's in each round. */
	assert_int_equal(store_log(s, NULL, 0, &log), 0);
	assert_int_equal(json_array_size(log), 2 * N_CS);
	for (size_t i = 1; i < json_array_size(log); i++)
		assert_true(
		    json_integer_value(json_object_get(json_array_get(log, i - 1), "hlc")) >=
		    json_integer_value(json_object_get(json_array_get(log, i), "hlc")));
	e = json_array_get(log, 0);
	assert_int_equal(json_integer_value(json_object_get(e, "seq")), 4);
	assert_int_equal(json_integer_value(json_object_get(e, "ops")), 1);
	assert_int_equal(json_integer_value(json_object_get(e, "bytes")), (json_int_t)cb[3].len);
	assert_int_equal(strlen(json_string_value(json_object_get(e, "hash"))), 64);
	json_decref(log);
	assert_int_equal(store_log(s, "alpha", 2, &log), 0);
	assert_int_equal(json_array_size(log), 2);
	e = json_array_get(log, 0);
	assert_string_equal(json_string_value(json_object_get(e, "origin")), "alpha");
	assert_int_equal(json_integer_value(json_object_get(e, "seq")), 4);
	assert_int_equal(json_integer_value(json_object_get(json_array_get(log, 1), "seq")), 3);
	json_decref(log);

	assert_int_equal(store_status(s, &st), 0);
	h = json_object_get(json_object_get(st, "heads"), "alpha");
	assert_int_equal(json_integer_value(json_object_get(h, "seq")), 4);
	assert_int_equal(strlen(json_string_value(json_object_get(h, "hash"))), 64);
	assert_int_equal(json_object_size(json_object_get(st, "heads")), 2);
	assert_int_equal(
	    json_integer_value(json_object_get(json_object_get(st, "counts"), "expert")), 2);
	assert_null(json_object_get(json_object_get(st, "counts"), "org"));
	assert_int_equal(json_integer_value(json_object_get(st, "entities")), 5);
	assert_int_equal(json_integer_value(json_object_get(st, "changesets")), 2 * N_CS);
	assert_int_equal(strlen(json_string_value(json_object_get(st, "digest"))), 64);
	assert_int_equal(json_array_size(json_object_get(st, "forks")), 0);
	json_decref(st);

	/* The changeset bytes come back as stored. */
	{
		uint8_t *bytes;
		size_t len;

		assert_int_equal(store_changeset(s, b.pk, 2, &bytes, &len), 0);
		assert_int_equal(len, cb[1].len);
		assert_memory_equal(bytes, cb[1].bytes, len);
		free(bytes);
		assert_int_equal(store_changeset(s, b.pk, 9, &bytes, &len), LOKET_E_NOT_FOUND);
	}
	free_chains(ca, cb);
	store_close(s);
}

static int count_heads(void *arg, const uint8_t origin[32], uint64_t seq, const uint8_t hash[32])
{
	(void)origin;
	(void)hash;
	*(uint64_t *)arg += seq;
	return 0;
}

static void test_each_head(void **state)
{
	struct store *s = open_new();
	struct node a, b;
	struct signed_cs ca[N_CS], cb[N_CS];
	uint64_t total = 0;

	(void)state;
	make_two_chains(&a, &b, ca, cb);
	append_ok(s, &ca[0]);
	append_ok(s, &ca[1]);
	append_ok(s, &cb[0]);
	assert_int_equal(store_each_head(s, count_heads, &total), 0);
	assert_int_equal(total, 3);
	free_chains(ca, cb);
	store_close(s);
}

/* Values of every kind survive the trip through the stored JSON text. */
static void test_values_roundtrip(void **state)
{
	struct store *s = open_new();
	struct node a;
	json_t *arr, *f, *want;
	json_error_t jerr;
	const char *fields =
	    "{\"s\":\"quote \\\" backslash \\\\ nl \\n tab \\t ctl \\u0001 é 😀\","
	    "\"neg\":-5,\"big\":9223372036854775807,\"small\":-9223372036854775808,"
	    "\"f\":0.1,\"g\":-2.5e-300,\"whole\":3.0,\"t\":true,\"no\":false,"
	    "\"arr\":[1,\"x\",[],{}],\"obj\":{\"b\":{\"c\":[null]},\"a\":1},"
	    "\"k\\\"q\":1,\"Z\":\"upper first\","
	    /* Escapes on and off 8-byte boundaries, UTF-8 beside them: put_string skips words. */
	    "\"w\":"
	    "\"abcdefg\\\"hijklmnop\\\\qrstuvwxyz012345\\u001f6789012ééé😀ABCD\\nEFGHIJKL\\\"\"}";
	char ops[1024];
	int n;

	(void)state;
	node_init(&a);
	n = snprintf(ops, sizeof(ops), "[{\"coll\":\"org\",\"id\":\"v\",\"fields\":%s}]", fields);
	assert_true(n > 0 && (size_t)n < sizeof(ops));
	append_ops(s, &a, ops);
	arr = get1(s, "org", "v");
	f = json_object_get(json_array_get(arr, 0), "fields");
	want = json_loads(fields, 0, &jerr);
	assert_non_null(want);
	assert_true(json_equal(f, want));
	assert_true(json_is_real(json_object_get(f, "whole")));
	json_decref(want);
	json_decref(arr);

	/* Merging keeps the untouched keys exactly, escaped ones included. */
	append_ops(s, &a,
	           "[{\"coll\":\"org\",\"id\":\"v\",\"fields\":{\"k\\\"q\":null,"
	           "\"m\":\"new\",\"s\":null}}]");
	arr = get1(s, "org", "v");
	f = json_object_get(json_array_get(arr, 0), "fields");
	assert_null(json_object_get(f, "k\"q"));
	assert_null(json_object_get(f, "s"));
	assert_string_equal(json_string_value(json_object_get(f, "m")), "new");
	assert_int_equal(json_integer_value(json_object_get(f, "neg")), -5);
	assert_true(json_is_object(json_object_get(json_object_get(f, "obj"), "b")));
	json_decref(arr);
	store_close(s);
}

/* A read past its budget is stopped by SQLite, and store_budget_end says so. */
static void test_read_budget(void **state)
{
	struct store *s = open_new();
	struct timespec t0, t1;
	sqlite3_stmt *st;

	(void)state;
	/* A statement that would count for ever: only the budget ends it. */
	assert_int_equal(
	    sqlite3_prepare_v2(s->db,
	                       "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 "
	                       "FROM c) SELECT count(*) FROM c",
	                       -1, &st, NULL),
	    SQLITE_OK);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	store_budget_begin(s, 20);
	assert_int_equal(sqlite3_step(st), SQLITE_INTERRUPT);
	assert_int_equal(store_budget_end(s), STORE_BUDGET_TIME);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	long ms = (t1.tv_sec - t0.tv_sec) * 1000 + (t1.tv_nsec - t0.tv_nsec) / 1000000;
	assert_true(ms >= 20 && ms < 1000);
	sqlite3_finalize(st);

	/* Outside a budget nothing is stopped; a quick read inside one is kept. */
	json_t *arr;
	store_budget_begin(s, 1000);
	assert_int_equal(store_list(s, "expert", NULL, 10, &arr), 0);
	assert_int_equal(store_budget_end(s), STORE_BUDGET_KEPT);
	json_decref(arr);
	store_close(s);
}

/* Searches are bounded in words, bytes and prefixes; a repeated word is looked up once. */
static void test_search_words(void **state)
{
	char err[256], text[LOKET_MAX_SEARCH_BYTES + 2];
	size_t n;

	(void)state;
	assert_int_equal(store_search_words("eenzaam* ouderen wijk", &n, err, sizeof(err)), 0);
	assert_int_equal(n, 3);
	text[0] = '\0';
	for (int i = 0; i < 33; i++)
		strcat(text, "wijk ");
	assert_int_equal(store_search_words(text, &n, err, sizeof(err)), LOKET_E_TOO_BIG);
	assert_string_equal(err, "the search has more than 32 words");
	assert_int_equal(store_search_words("oud* wa*", &n, err, sizeof(err)), LOKET_E_BAD_REQUEST);
	assert_string_equal(err, "a prefix has at least 3 letters (got \"wa*\")");
	memset(text, 'a', sizeof(text) - 1);
	text[sizeof(text) - 1] = '\0';
	assert_int_equal(store_search_words(text, &n, err, sizeof(err)), LOKET_E_TOO_BIG);
	assert_string_equal(err, "the search text is 4097 bytes long; at most 4096 are read");

	char *q = store_fts_query("wijk Wijk wijk* wijk oud*");
	assert_string_equal(q, "\"wijk\" \"Wijk\" \"wijk\"* \"oud\"*");
	free(q);
}

/* A reply too big for one message is refused while it is read, not after. */
static void test_reply_bounded(void **state)
{
	struct store *s = open_new();
	struct node a;
	json_t *arr = NULL;
	static char ops[10 * 60100];

	(void)state;
	node_init(&a);
	/* 40 entities of 60 KB, ten a changeset (of at most 1 MiB). */
	for (int c = 0; c < 4; c++) {
		size_t o = (size_t)snprintf(ops, sizeof(ops), "[");
		for (int i = 0; i < 10; i++) {
			o += (size_t)snprintf(
			    ops + o, sizeof(ops) - o,
			    "%s{\"coll\":\"expert\",\"id\":\"e%d\",\"fields\":{\"t\":\"",
			    i ? "," : "", c * 10 + i);
			memset(ops + o, 'x', 60000);
			o += 60000;
			o += (size_t)snprintf(ops + o, sizeof(ops) - o, "\"}}");
		}
		snprintf(ops + o, sizeof(ops) - o, "]");
		append_ops(s, &a, ops);
	}
	assert_int_equal(store_list(s, "expert", NULL, 0, &arr), LOKET_E_TOO_BIG);
	assert_null(arr);
	assert_non_null(strstr(store_errmsg(s), "would exceed the 2097152 bytes of one message"));
	assert_int_equal(store_list(s, "expert", NULL, 10, &arr), 0);
	assert_int_equal(json_array_size(arr), 10);
	json_decref(arr);
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
	char cmd[512];
	int n;

	(void)state;
	n = snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	if (n > 0 && (size_t)n < sizeof(cmd) && system(cmd) != 0)
		return -1;
	return 0;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_open_create),
	    cmocka_unit_test(test_schema_newer_refused),
	    cmocka_unit_test(test_append_and_read),
	    cmocka_unit_test(test_put_merge_del),
	    cmocka_unit_test(test_put_existing_after_new),
	    cmocka_unit_test(test_op_changes),
	    cmocka_unit_test(test_apply_local_then_append),
	    cmocka_unit_test(test_chain_rules),
	    cmocka_unit_test(test_fork_proof_lowest_wins),
	    cmocka_unit_test(test_fork_legacy_normalized),
	    cmocka_unit_test(test_rollback_restores_digest),
	    cmocka_unit_test(test_digest_batches),
	    cmocka_unit_test(test_digest_interleavings_and_rebuild),
	    cmocka_unit_test(test_verify),
	    cmocka_unit_test(test_verify_big),
	    cmocka_unit_test(test_digest_not_xor_forgeable),
	    cmocka_unit_test(test_upgrade_from_schema_2),
	    cmocka_unit_test(test_verify_digest_tampered),
	    cmocka_unit_test(test_log_and_status),
	    cmocka_unit_test(test_status_counts_kept),
	    cmocka_unit_test(test_each_head),
	    cmocka_unit_test(test_values_roundtrip),
	    cmocka_unit_test(test_read_budget),
	    cmocka_unit_test(test_search_words),
	    cmocka_unit_test(test_reply_bounded),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
