/*
 * Tests of the search index kept off the write path (store_index.c): a
 * search right after a write sees it, updates and deletes change what is
 * found, the lag shown by status reaches 0, batches larger than one indexer
 * transaction, an index file that is missing, garbage or another store's is
 * built again, a rebuild ends with an index of exactly the live entities, a
 * store of schema 1 is upgraded, and a read-only open leaves the index alone.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>
#include <sodium.h>
#include <sqlite3.h>

#include "proto/changeset.h"
#include "proto/error.h"
#include "store/store.h"
#include "store/store_int.h"
#include "tests/unit/signed_ops.h"

static char dir[] = "/tmp/test_store_index_XXXXXX";
static int file_no;

static void store_path(char *out, size_t len)
{
	int k = snprintf(out, len, "%s/s%d.db", dir, file_no++);

	assert_true(k > 0 && (size_t)k < len);
}

static void index_path(const char *path, char *out, size_t len)
{
	int k = snprintf(out, len, "%s-index", path);

	assert_true(k > 0 && (size_t)k < len);
}

static int exists(const char *path)
{
	struct stat st;

	return stat(path, &st) == 0;
}

/* Signs the next changeset of n holding ops_json and appends it in its own transaction. */
static void write_ops(struct store *s, struct node *n, const char *ops_json)
{
	struct changeset cs;
	uint8_t *bytes = NULL;
	size_t len = 0;
	char err[200];

	signed_ops(n->pk, n->sk, n->seq + 1, n->head, ++n->hlc, ops_json, &bytes, &len);
	n->seq++;
	changeset_hash(bytes, len, n->head);
	assert_int_equal(changeset_decode(bytes, len, &cs, err, sizeof(err)), 0);
	assert_int_equal(store_begin(s), 0);
	assert_int_equal(store_append(s, bytes, len, &cs, NULL), 0);
	assert_int_equal(store_commit(s), 0);
	changeset_release(&cs);
	free(bytes);
}

static struct store *open_rw(const char *path)
{
	char err[256];
	struct store *s = NULL;

	assert_int_equal(store_open(path, STORE_CREATE, &s, err, sizeof(err)), 0);
	assert_non_null(s);
	return s;
}

static size_t hits(struct store *s, const char *text)
{
	json_t *arr = NULL;
	size_t n;

	assert_int_equal(store_search(s, text, NULL, 0, &arr), 0);
	assert_true(json_is_array(arr));
	n = json_array_size(arr);
	json_decref(arr);
	return n;
}

/* The id of the single hit of text. */
static void hit_id(struct store *s, const char *text, const char *want)
{
	json_t *arr = NULL;

	assert_int_equal(store_search(s, text, NULL, 0, &arr), 0);
	assert_int_equal(json_array_size(arr), 1);
	assert_string_equal(json_string_value(json_object_get(json_array_get(arr, 0), "id")), want);
	json_decref(arr);
}

static long long index_behind(struct store *s)
{
	json_t *st = NULL;
	long long n;

	assert_int_equal(store_status(s, &st), 0);
	assert_true(json_is_integer(json_object_get(json_object_get(st, "index"), "behind")));
	n = json_integer_value(json_object_get(json_object_get(st, "index"), "behind"));
	json_decref(st);
	return n;
}

/* Documents in the index file, counted on a connection of the test's own. */
static long long index_docs(const char *path, const char *match)
{
	char ipath[300];
	sqlite3 *db = NULL;
	sqlite3_stmt *st = NULL;
	long long n;

	index_path(path, ipath, sizeof(ipath));
	assert_int_equal(sqlite3_open_v2(ipath, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
	assert_int_equal(
	    sqlite3_prepare_v2(db,
	                       match ? "SELECT count(*) FROM search WHERE search MATCH ?1"
	                             : "SELECT count(*) FROM search",
	                       -1, &st, NULL),
	    SQLITE_OK);
	if (match)
		sqlite3_bind_text(st, 1, match, -1, SQLITE_STATIC);
	assert_int_equal(sqlite3_step(st), SQLITE_ROW);
	n = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	sqlite3_close(db);
	return n;
}

static void test_search_sees_each_write(void **state)
{
	char path[256], ops[256], word[32];
	struct store *s;
	struct node a;

	(void)state;
	store_path(path, sizeof(path));
	s = open_rw(path);
	node_init(&a);
	/* Each search comes straight after its commit: only the wait makes it find the write. */
	for (int i = 0; i < 40; i++) {
		snprintf(word, sizeof(word), "woord%dx", i);
		snprintf(ops, sizeof(ops),
		         "[{\"coll\":\"expert\",\"id\":\"e%d\",\"fields\":{\"name\":\"%s\"}}]", i,
		         word);
		write_ops(s, &a, ops);
		assert_int_equal(hits(s, word), 1);
	}
	assert_int_equal(store_index_wait(s->index, s->committed_ver, STORE_INDEX_WAIT_MS), 0);
	assert_int_equal(index_behind(s), 0);
	store_close(s);
}

static void test_update_and_delete(void **state)
{
	char path[256];
	struct store *s;
	struct node a;

	(void)state;
	store_path(path, sizeof(path));
	s = open_rw(path);
	node_init(&a);
	write_ops(s, &a,
	          "[{\"coll\":\"expert\",\"id\":\"x\",\"fields\":{\"name\":\"Anna\","
	          "\"topics\":[\"zeespiegel\",\"dijken\"]}},"
	          "{\"coll\":\"project\",\"id\":\"p\",\"fields\":{\"name\":\"Dijkversterking\"}}]");
	hit_id(s, "zeespiegel", "x");
	hit_id(s, "dijkversterking", "p");
	/* A put replaces the document: the old words are gone, the new found. */
	write_ops(s, &a,
	          "[{\"coll\":\"expert\",\"id\":\"x\",\"fields\":{\"topics\":[\"erfgoed\"]}}]");
	assert_int_equal(hits(s, "zeespiegel"), 0);
	assert_int_equal(hits(s, "dijken"), 0);
	hit_id(s, "erfgoed", "x");
	hit_id(s, "anna", "x");
	/* A del removes it; a put on the tombstone brings it back with only its new fields. */
	write_ops(s, &a, "[{\"coll\":\"expert\",\"id\":\"x\",\"del\":true}]");
	assert_int_equal(hits(s, "erfgoed"), 0);
	assert_int_equal(hits(s, "anna"), 0);
	hit_id(s, "dijkversterking", "p");
	write_ops(s, &a, "[{\"coll\":\"expert\",\"id\":\"x\",\"fields\":{\"name\":\"Bram\"}}]");
	hit_id(s, "bram", "x");
	assert_int_equal(hits(s, "anna"), 0);
	assert_int_equal(index_behind(s), 0);
	store_close(s);
	/* The file holds one document per live entity. */
	assert_int_equal(index_docs(path, NULL), 2);
}

/* More entities than one indexer transaction takes, in one commit. */
static void test_many_batches(void **state)
{
	enum { N = STORE_INDEX_BATCH * 2 + 500, PER_CS = 1000 };
	char path[256];
	struct store *s;
	struct node a;
	size_t cap = (size_t)PER_CS * 96 + 16;
	char *ops = malloc(cap);
	int made = 0;

	(void)state;
	assert_non_null(ops);
	store_path(path, sizeof(path));
	s = open_rw(path);
	node_init(&a);
	while (made < N) {
		size_t n = 0;

		ops[n++] = '[';
		for (int i = 0; i < PER_CS && made < N; i++, made++) {
			int k = snprintf(ops + n, cap - n,
			                 "%s{\"coll\":\"expert\",\"id\":\"e%d\",\"fields\":"
			                 "{\"name\":\"naam%d\",\"org\":\"gedeeld\"}}",
			                 i ? "," : "", made, made);

			assert_true(k > 0 && (size_t)k < cap - n);
			n += (size_t)k;
		}
		ops[n++] = ']';
		ops[n] = '\0';
		write_ops(s, &a, ops);
	}
	free(ops);
	hit_id(s, "naam0", "e0");
	hit_id(s, "naam4499", "e4499");
	assert_int_equal(hits(s, "gedeeld"), N);
	assert_int_equal(index_behind(s), 0);
	store_close(s);
}

/* Two entities, searched for by their words. */
static void check_two(struct store *s)
{
	hit_id(s, "zeespiegel", "x");
	hit_id(s, "museum", "y");
	assert_int_equal(hits(s, "leiden"), 2);
}

static void write_two(struct store *s, struct node *a)
{
	write_ops(s, a,
	          "[{\"coll\":\"expert\",\"id\":\"x\",\"fields\":{\"name\":\"Zeespiegel Leiden\"}},"
	          "{\"coll\":\"org\",\"id\":\"y\",\"fields\":{\"name\":\"Museum Leiden\"}}]");
}

/*
 * A new store, its path in path, holding write_two's entities; the path
 * of its index file in ipath (300 bytes, as the tests declare it) unless
 * NULL.
 */
static struct store *new_store_with_two(char path[static 256], char *ipath, struct node *a)
{
	struct store *s;

	store_path(path, 256);
	if (ipath)
		index_path(path, ipath, 300);
	s = open_rw(path);
	node_init(a);
	write_two(s, a);
	return s;
}

static void test_index_file_rebuilt(void **state)
{
	char path[256], ipath[300], other[256], oipath[300], cmd[700];
	struct store *s, *o;
	struct node a, b;
	FILE *f;

	(void)state;
	s = new_store_with_two(path, ipath, &a);
	check_two(s);
	store_close(s);
	assert_true(exists(ipath));

	/* Deleted while the store is closed: built again at the next open. */
	assert_int_equal(unlink(ipath), 0);
	s = open_rw(path);
	assert_true(exists(ipath));
	check_two(s);
	assert_int_equal(index_behind(s), 0);
	store_close(s);

	/* Garbage in its place. */
	f = fopen(ipath, "w");
	assert_non_null(f);
	for (int i = 0; i < 1000; i++)
		fputs("not a database ", f);
	fclose(f);
	s = open_rw(path);
	check_two(s);
	store_close(s);

	/* Another store's index, even one further ahead, is not taken. */
	store_path(other, sizeof(other));
	index_path(other, oipath, sizeof(oipath));
	o = open_rw(other);
	node_init(&b);
	for (int i = 0; i < 5; i++)
		write_ops(o, &b,
		          "[{\"coll\":\"expert\",\"id\":\"z\",\"fields\":{\"name\":\"Spook\"}}]");
	write_ops(o, &b, "[{\"coll\":\"expert\",\"id\":\"z\",\"fields\":{\"name\":\"Geest\"}}]");
	assert_int_equal(hits(o, "geest"), 1);
	store_close(o);
	assert_true(snprintf(cmd, sizeof(cmd), "cp '%s' '%s' && rm -f '%s-wal' '%s-shm'", oipath,
	                     ipath, ipath, ipath) < (int)sizeof(cmd));
	assert_int_equal(system(cmd), 0);
	s = open_rw(path);
	check_two(s);
	assert_int_equal(hits(s, "geest"), 0);
	store_close(s);
	assert_int_equal(index_docs(path, NULL), 2);
}

static void test_rebuild_resets_index(void **state)
{
	char path[256];
	struct store *s;
	struct node a;
	char *err = NULL;
	sqlite3 *db;

	(void)state;
	s = new_store_with_two(path, NULL, &a);
	write_ops(s, &a, "[{\"coll\":\"org\",\"id\":\"y\",\"del\":true}]");
	write_ops(s, &a, "[{\"coll\":\"org\",\"id\":\"w\",\"fields\":{\"name\":\"Waag\"}}]");
	/* An entity row no changeset makes: the rebuild drops it, and the index must too. */
	assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
	assert_int_equal(sqlite3_exec(db,
	                              "INSERT INTO entity(rowid, coll, owner, id, fields, deleted,"
	                              " seq, hlc, digest, ver) VALUES(100, 'org', zeroblob(32),"
	                              " 'ghost', '{\"name\":\"Spookhuis\"}', 0, 1, 1,"
	                              " zeroblob(32), 1000)",
	                              NULL, NULL, &err),
	                 SQLITE_OK);
	sqlite3_close(db);
	/* The writer's ver counter is behind the hand-made row; tell the indexer of it. */
	s->apply.ver = 1000;
	s->committed_ver = 1000;
	store_index_publish(s->index, 1000);
	assert_int_equal(hits(s, "spookhuis"), 1);

	assert_int_equal(store_rebuild(s), 0);
	assert_int_equal(hits(s, "spookhuis"), 0);
	hit_id(s, "zeespiegel", "x");
	hit_id(s, "waag", "w");
	assert_int_equal(hits(s, "museum"), 0);
	assert_int_equal(index_behind(s), 0);
	/* The rebuild's entities came after every old ver. */
	assert_true(s->committed_ver > 1000);
	store_close(s);
	assert_int_equal(index_docs(path, NULL), 2);
	assert_int_equal(index_docs(path, "spookhuis"), 0);
}

static void test_upgrade_from_schema_1(void **state)
{
	char path[256], ipath[300], err[256];
	struct store *s = NULL;
	struct node a;
	sqlite3 *db;

	(void)state;
	s = new_store_with_two(path, ipath, &a);
	store_close(s);
	/*
	 * Back to what schema 1 had: no ver, no store id, the FTS tables in
	 * the store, the digest in meta.
	 */
	assert_int_equal(unlink(ipath), 0);
	assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
	assert_int_equal(
	    sqlite3_exec(db,
	                 "DROP INDEX entity_ver; ALTER TABLE entity DROP COLUMN ver;"
	                 "DELETE FROM meta WHERE k = 'store_id';"
	                 "DROP TABLE digest; DROP TABLE tree; DROP TABLE tlog_signed;"
	                 "DROP TABLE checkpoint; DROP TABLE split; INSERT INTO meta(k, v) "
	                 "VALUES('digest', zeroblob(32));"
	                 "CREATE VIEW search_src AS SELECT rowid, loket_fts_text(fields) AS text,"
	                 " coll FROM entity WHERE deleted = 0;"
	                 "CREATE VIRTUAL TABLE search USING fts5(text, coll UNINDEXED,"
	                 " content = 'search_src', content_rowid = 'rowid',"
	                 " tokenize = 'unicode61 remove_diacritics 2');"
	                 "PRAGMA user_version = 1;",
	                 NULL, NULL, NULL),
	    SQLITE_OK);
	sqlite3_close(db);

	/* Read-only, it is refused with what to do. */
	assert_int_equal(store_open(path, STORE_READONLY, &s, err, sizeof(err)), LOKET_E_SCHEMA);
	assert_non_null(strstr(err, "loketd"));
	/* Read-write, it is upgraded and its index built. */
	s = open_rw(path);
	check_two(s);
	write_ops(s, &a, "[{\"coll\":\"expert\",\"id\":\"x\",\"fields\":{\"name\":\"Bram\"}}]");
	hit_id(s, "bram", "x");
	assert_int_equal(hits(s, "zeespiegel"), 0);
	store_close(s);
	assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
	{
		sqlite3_stmt *st = NULL;

		assert_int_equal(
		    sqlite3_prepare_v2(db,
		                       "SELECT count(*) FROM sqlite_master WHERE name IN"
		                       " ('search', 'search_src')",
		                       -1, &st, NULL),
		    SQLITE_OK);
		assert_int_equal(sqlite3_step(st), SQLITE_ROW);
		assert_int_equal(sqlite3_column_int(st, 0), 0);
		sqlite3_finalize(st);
	}
	sqlite3_close(db);
}

static void test_readonly_leaves_index(void **state)
{
	char path[256], ipath[300], err[256];
	struct store *s = NULL;
	struct node a;
	json_t *arr = NULL, *st = NULL;

	(void)state;
	s = new_store_with_two(path, ipath, &a);
	store_close(s);
	assert_int_equal(unlink(ipath), 0);
	assert_int_equal(store_open(path, STORE_READONLY, &s, err, sizeof(err)), 0);
	assert_null(s->index);
	assert_int_equal(store_search(s, "leiden", NULL, 0, &arr), LOKET_E_STORE);
	assert_null(arr);
	assert_int_equal(store_status(s, &st), 0);
	assert_null(json_object_get(st, "index"));
	json_decref(st);
	store_close(s);
	assert_false(exists(ipath));
}

/* The highest nice value among the threads of this process but the calling one. */
static int max_thread_nice(void)
{
	DIR *d = opendir("/proc/self/task");
	struct dirent *e;
	int best = -100;

	assert_non_null(d);
	while ((e = readdir(d))) {
		char p[300], buf[1024], *q;
		FILE *f;
		int field = 0;
		long nice = 0;

		if (e->d_name[0] == '.' || atol(e->d_name) == (long)gettid())
			continue;
		snprintf(p, sizeof(p), "/proc/self/task/%s/stat", e->d_name);
		f = fopen(p, "r");
		if (!f)
			continue;
		q = fgets(buf, sizeof(buf), f);
		fclose(f);
		if (!q || !(q = strrchr(buf, ')')))
			continue;
		/* Fields after the comm: state is field 3, nice field 19. */
		for (q += 2, field = 3; *q && field < 19; q++)
			if (*q == ' ')
				field++;
		nice = strtol(q, NULL, 10);
		if (nice > best)
			best = (int)nice;
	}
	closedir(d);
	return best;
}

/* A store path with characters a URI would misread; the indexer runs below the writer. */
static void test_odd_path_and_priority(void **state)
{
	char sub[200], path[256];
	struct store *s;
	struct node a;

	(void)state;
	assert_true(snprintf(sub, sizeof(sub), "%s/odd dir %%20?x#y", dir) < (int)sizeof(sub));
	assert_int_equal(mkdir(sub, 0700), 0);
	assert_true(snprintf(path, sizeof(path), "%s/s.db", sub) < (int)sizeof(path));
	s = open_rw(path);
	node_init(&a);
	write_two(s, &a);
	check_two(s);
	assert_int_equal(max_thread_nice(), STORE_INDEX_NICE);
	store_close(s);
	assert_true(exists(path));
	assert_true(snprintf(path, sizeof(path), "%s/s.db-index", sub) < (int)sizeof(path));
	assert_true(exists(path));
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

	(void)state;
	if (snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir) < (int)sizeof(cmd))
		return system(cmd) == 0 ? 0 : -1;
	return -1;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_search_sees_each_write),
	    cmocka_unit_test(test_update_and_delete),
	    cmocka_unit_test(test_many_batches),
	    cmocka_unit_test(test_index_file_rebuilt),
	    cmocka_unit_test(test_rebuild_resets_index),
	    cmocka_unit_test(test_upgrade_from_schema_1),
	    cmocka_unit_test(test_readonly_leaves_index),
	    cmocka_unit_test(test_odd_path_and_priority),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
