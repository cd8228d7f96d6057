/*
 * The store's integrity checks (store_check.c): a read-write open refuses
 * a store with damaged pages, with heads that name changesets it does not
 * hold, and a store.db replaced by an older copy of itself while its
 * write-ahead log stayed beside it; each refusal names the file and what
 * failed, and leaves the files as they were. store_check_file takes a good
 * backup and refuses what is not one.
 */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>
#include <jansson.h>
#include <sodium.h>
#include <sqlite3.h>

#include "proto/changeset.h"
#include "proto/error.h"
#include "store/store.h"
#include "tests/unit/signed_ops.h"

static char dir[] = "/tmp/test_store_check_XXXXXX";
static int file_no;

static void new_path(char *out, size_t len)
{
	int k = snprintf(out, len, "%s/s%d.db", dir, file_no++);
	assert_true(k > 0 && (size_t)k < len);
}

/* Appends n changesets of the node, each of per entities with text of size bytes. */
static void write_changesets(struct store *s, struct node *n, int count, int per, size_t size)
{
	char *text = malloc(size + 1);
	assert_non_null(text);
	memset(text, 'x', size);
	text[size] = '\0';
	for (int k = 0; k < count; k++) {
		json_t *ops = json_array();
		for (int i = 0; i < per; i++) {
			char id[64];
			snprintf(id, sizeof(id), "e%llu-%d", (unsigned long long)n->seq + 1, i);
			json_array_append_new(ops,
			                      json_pack("{s:s, s:s, s:{s:s}}", "coll", "expert",
			                                "id", id, "fields", "name", text));
		}
		char *ops_json = json_dumps(ops, 0);
		json_decref(ops);
		uint8_t *bytes;
		size_t len;
		signed_ops(n->pk, n->sk, n->seq + 1, n->head, ++n->hlc, ops_json, &bytes, &len);
		free(ops_json);
		struct changeset cs;
		char err[200];
		assert_int_equal(changeset_decode(bytes, len, &cs, err, sizeof(err)), 0);
		assert_int_equal(store_append(s, bytes, len, &cs, NULL), 0);
		changeset_release(&cs);
		changeset_hash(bytes, len, n->head);
		n->seq++;
		free(bytes);
	}
	free(text);
}

/* A closed store at path holding count changesets of a new node. */
static void make_store(const char *path, struct node *n, int count)
{
	struct store *s;
	char err[512];
	node_init(n);
	assert_int_equal(store_open(path, STORE_CREATE, &s, err, sizeof(err)), 0);
	write_changesets(s, n, count, 20, 300);
	store_close(s);
}

static void copy_file(const char *from, const char *to)
{
	char cmd[1024];
	snprintf(cmd, sizeof(cmd), "cp '%s' '%s'", from, to);
	assert_int_equal(system(cmd), 0);
}

static int same_file(const char *a, const char *b)
{
	char cmd[1024];
	snprintf(cmd, sizeof(cmd), "cmp -s '%s' '%s'", a, b);
	return system(cmd) == 0;
}

static void sql(const char *path, const char *text)
{
	sqlite3 *db;
	assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
	assert_int_equal(sqlite3_exec(db, text, NULL, NULL, NULL), SQLITE_OK);
	assert_int_equal(sqlite3_close(db), SQLITE_OK);
}

/* store_open(path) read-write must refuse with LOKET_E_DAMAGED naming the file and what. */
static void expect_damaged(const char *path, const char *what)
{
	struct store *s = NULL;
	char err[2048];
	assert_int_equal(store_open(path, 0, &s, err, sizeof(err)), LOKET_E_DAMAGED);
	assert_null(s);
	assert_non_null(strstr(err, path));
	assert_non_null(strstr(err, what));
	assert_non_null(strstr(err, "loket restore"));
}

static void test_good_store_opens_and_checks(void **state)
{
	(void)state;
	char path[256], err[512];
	struct node n;
	struct store *s;

	new_path(path, sizeof(path));
	make_store(path, &n, 5);
	assert_int_equal(store_check_file(path, err, sizeof(err)), 0);
	assert_int_equal(store_open(path, 0, &s, err, sizeof(err)), 0);
	store_close(s);
}

static void test_head_without_its_changeset(void **state)
{
	(void)state;
	char path[256], copy[300];
	struct node n;
	struct store *s;
	char err[1024];

	new_path(path, sizeof(path));
	make_store(path, &n, 3);
	sql(path, "UPDATE head SET seq = 7");
	snprintf(copy, sizeof(copy), "%s.before", path);
	copy_file(path, copy);
	expect_damaged(path, "is seq 7, which the store does not hold");
	assert_true(same_file(path, copy));
	assert_int_equal(store_check_file(path, err, sizeof(err)), LOKET_E_DAMAGED);
	assert_non_null(strstr(err, path));
	/* An auditor can still open it read-only and be told. */
	assert_int_equal(store_open(path, STORE_READONLY, &s, err, sizeof(err)), 0);
	store_close(s);

	sql(path, "UPDATE head SET seq = 3, hash = zeroblob(32)");
	expect_damaged(path, "with hash 0000000000000000..., but the changeset held for seq 3");
}

static void test_damaged_page(void **state)
{
	(void)state;
	char path[256], copy[300];
	uint8_t junk[512];
	struct node n;

	new_path(path, sizeof(path));
	make_store(path, &n, 10);
	/* Page 2 is the root of the entity table; make it junk. */
	memset(junk, 0xab, sizeof(junk));
	int fd = open(path, O_WRONLY);
	assert_true(fd >= 0);
	assert_int_equal(pwrite(fd, junk, sizeof(junk), 16384), (ssize_t)sizeof(junk));
	close(fd);
	snprintf(copy, sizeof(copy), "%s.before", path);
	copy_file(path, copy);
	expect_damaged(path, "PRAGMA quick_check found: ");
	assert_true(same_file(path, copy));
}

/*
 * The case of issue 10: a backup put back as store.db by hand while the
 * log of the store it replaced stayed beside it. The log began after a
 * checkpoint of a store grown far beyond the backup, so SQLite replays
 * pages that point at pages the backup does not have.
 */
static void test_old_copy_beside_its_newer_log(void **state)
{
	(void)state;
	char path[256], backup[300], wal[300], shm[300], wal_copy[300], path_copy[300];
	char err[2048];
	struct node n;
	struct store *s;
	sqlite3 *db;

	new_path(path, sizeof(path));
	snprintf(backup, sizeof(backup), "%s.backup", path);
	snprintf(wal, sizeof(wal), "%s-wal", path);
	snprintf(shm, sizeof(shm), "%s-shm", path);
	snprintf(wal_copy, sizeof(wal_copy), "%s.wal-copy", path);
	snprintf(path_copy, sizeof(path_copy), "%s.before", path);
	make_store(path, &n, 2);
	copy_file(path, backup);

	assert_int_equal(store_open(path, 0, &s, err, sizeof(err)), 0);
	write_changesets(s, &n, 40, 20, 2000);
	/* Restart the log, as a checkpoint with no reader left does; a reader makes it wait. */
	assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
	int busy = 1;
	for (int i = 0; busy && i < 500; i++) {
		sqlite3_stmt *st;
		assert_int_equal(
		    sqlite3_prepare_v2(db, "PRAGMA wal_checkpoint(TRUNCATE)", -1, &st, NULL),
		    SQLITE_OK);
		assert_int_equal(sqlite3_step(st), SQLITE_ROW);
		busy = sqlite3_column_int(st, 0);
		sqlite3_finalize(st);
		if (busy)
			usleep(10000);
	}
	assert_int_equal(busy, 0);
	sqlite3_close(db);
	write_changesets(s, &n, 2, 20, 300);
	/* The log as a kill -9 would leave it. */
	copy_file(wal, wal_copy);
	store_close(s);

	copy_file(backup, path);
	copy_file(wal_copy, wal);
	unlink(shm);
	copy_file(path, path_copy);
	expect_damaged(path, "-wal was beside it");
	assert_true(same_file(path, path_copy));
	assert_true(same_file(wal, wal_copy));

	/* The backup alone is fine: what `loket restore` would put in place. */
	assert_int_equal(store_check_file(backup, err, sizeof(err)), 0);
}

static void test_check_file_refuses_what_is_not_a_store(void **state)
{
	(void)state;
	char path[256], err[1024];
	struct node n;

	new_path(path, sizeof(path));
	assert_int_equal(store_check_file(path, err, sizeof(err)), -ENOENT);
	assert_non_null(strstr(err, path));

	assert_int_equal(store_check_file(dir, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "not a regular file"));

	FILE *f = fopen(path, "w");
	assert_non_null(f);
	fputs("not a database at all, but long enough to look at its header bytes.....", f);
	fclose(f);
	assert_int_equal(store_check_file(path, err, sizeof(err)), LOKET_E_SCHEMA);
	assert_non_null(strstr(err, path));

	new_path(path, sizeof(path));
	sql(path, "CREATE TABLE t(x)");
	assert_int_equal(store_check_file(path, err, sizeof(err)), LOKET_E_SCHEMA);
	assert_non_null(strstr(err, "not a loket store"));
	sql(path, "PRAGMA user_version = 2");
	assert_int_equal(store_check_file(path, err, sizeof(err)), LOKET_E_SCHEMA);
	assert_non_null(strstr(err, "lacks the tables"));

	new_path(path, sizeof(path));
	make_store(path, &n, 1);
	sql(path, "PRAGMA user_version = 99");
	assert_int_equal(store_check_file(path, err, sizeof(err)), LOKET_E_SCHEMA);
	assert_non_null(strstr(err, "schema version 99"));
}

/* store_check_file reads the file alone: a log beside it is neither read nor made. */
static void test_check_file_makes_nothing(void **state)
{
	(void)state;
	char path[256], wal[300], shm[300], err[512];
	struct node n;

	new_path(path, sizeof(path));
	make_store(path, &n, 2);
	snprintf(wal, sizeof(wal), "%s-wal", path);
	snprintf(shm, sizeof(shm), "%s-shm", path);
	assert_int_equal(store_check_file(path, err, sizeof(err)), 0);
	assert_int_equal(access(wal, F_OK), -1);
	assert_int_equal(access(shm, F_OK), -1);
}

static int setup(void **state)
{
	(void)state;
	return mkdtemp(dir) ? 0 : -1;
}

static int teardown(void **state)
{
	char cmd[300];
	(void)state;
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	return system(cmd) == 0 ? 0 : -1;
}

int main(void)
{
	if (sodium_init() < 0)
		return 1;
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_good_store_opens_and_checks),
	    cmocka_unit_test(test_head_without_its_changeset),
	    cmocka_unit_test(test_damaged_page),
	    cmocka_unit_test(test_old_copy_beside_its_newer_log),
	    cmocka_unit_test(test_check_file_refuses_what_is_not_a_store),
	    cmocka_unit_test(test_check_file_makes_nothing),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
