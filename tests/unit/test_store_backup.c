/*
 * Online backup (store_backup.c): the copy, made a page at a time while
 * changesets are appended between the steps, holds all of them, is one
 * file (a rollback-journal database, nothing beside it) that passes
 * store_check_file and verifies; an existing file or an existing FILE.tmp
 * is never replaced; an abandoned backup leaves nothing behind and the
 * store goes on.
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
#include <unistd.h>

#include <cmocka.h>
#include <jansson.h>
#include <sodium.h>

#include "proto/changeset.h"
#include "proto/error.h"
#include "store/store.h"
#include "tests/unit/signed_ops.h"

static char dir[] = "/tmp/test_store_backup_XXXXXX";
static int file_no;

static void new_path(char *out, size_t len, const char *suffix)
{
	int k = snprintf(out, len, "%s/f%d%s", dir, file_no++, suffix);
	assert_true(k > 0 && (size_t)k < len);
}

/* Appends the next changeset of n: per entities with 2000-byte names. */
static void append_next(struct store *s, struct node *n, int per)
{
	static char text[2001];
	memset(text, 'b', sizeof(text) - 1);
	json_t *ops = json_array();
	for (int i = 0; i < per; i++) {
		char id[64];
		snprintf(id, sizeof(id), "e%llu-%d", (unsigned long long)n->seq + 1, i);
		json_array_append_new(ops, json_pack("{s:s, s:s, s:{s:s}}", "coll", "expert", "id",
		                                     id, "fields", "name", text));
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

static struct store *open_with(struct node *n, int changesets)
{
	char path[256], err[512];
	struct store *s;
	new_path(path, sizeof(path), ".db");
	node_init(n);
	assert_int_equal(store_open(path, STORE_CREATE, &s, err, sizeof(err)), 0);
	for (int i = 0; i < changesets; i++)
		append_next(s, n, 20);
	return s;
}

static void assert_absent(const char *path, const char *suffix)
{
	char p[400];
	snprintf(p, sizeof(p), "%s%s", path, suffix);
	assert_int_equal(access(p, F_OK), -1);
}

static void test_copy_holds_writes_between_steps(void **state)
{
	(void)state;
	char path[256], err[1024];
	struct node n;
	struct store *s = open_with(&n, 10), *copy;
	struct store_backup *b;
	int rc, steps = 0;

	new_path(path, sizeof(path), ".backup");
	assert_int_equal(store_backup_start(s, path, &b, err, sizeof(err)), 0);
	/* One page a step, and a changeset between the steps, until the copy is whole. */
	while ((rc = store_backup_step(b, 1, err, sizeof(err))) == 0) {
		if (steps++ % 4 == 0)
			append_next(s, &n, 3);
	}
	assert_int_equal(rc, 1);
	assert_true(steps > 4);
	assert_true(store_backup_pages(b) > 4);
	assert_int_equal(store_backup_end(b, err, sizeof(err)), 0);
	assert_int_equal(access(path, F_OK), -1); /* not before commit */
	assert_int_equal(store_backup_commit(b, err, sizeof(err)), 0);
	assert_true(store_backup_bytes(b) > 0);
	store_backup_free(b);
	assert_absent(path, ".tmp");
	assert_absent(path, "-wal");
	assert_absent(path, ".tmp-journal");

	/* One file, not WAL: bytes 18 and 19 of the header are 1. */
	uint8_t header[20];
	int fd = open(path, O_RDONLY);
	assert_true(fd >= 0);
	assert_int_equal(read(fd, header, sizeof(header)), (ssize_t)sizeof(header));
	close(fd);
	assert_int_equal(header[18], 1);
	assert_int_equal(header[19], 1);

	assert_int_equal(store_check_file(path, err, sizeof(err)), 0);
	assert_int_equal(store_open(path, STORE_READONLY, &copy, err, sizeof(err)), 0);
	uint64_t seq;
	uint8_t hash[32];
	assert_int_equal(store_head(copy, n.pk, &seq, hash), 0);
	assert_int_equal(seq, n.seq);
	assert_memory_equal(hash, n.head, 32);
	json_t *report = NULL;
	assert_int_equal(store_verify(copy, NULL, &report), 0);
	assert_true(json_is_true(json_object_get(report, "ok")));
	json_decref(report);
	store_close(copy);
	assert_absent(path, "-wal");
	store_close(s);
}

static void test_never_replaces(void **state)
{
	(void)state;
	char path[256], tmp[300], err[1024];
	struct node n;
	struct store *s = open_with(&n, 2);
	struct store_backup *b = NULL;

	new_path(path, sizeof(path), ".backup");
	FILE *f = fopen(path, "w");
	assert_non_null(f);
	fputs("keep me", f);
	fclose(f);
	assert_int_equal(store_backup_start(s, path, &b, err, sizeof(err)), LOKET_E_EXISTS);
	assert_null(b);
	assert_non_null(strstr(err, path));
	assert_non_null(strstr(err, "never replaces"));
	assert_absent(path, ".tmp");

	/* A FILE.tmp is another backup's. */
	new_path(path, sizeof(path), ".backup");
	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	f = fopen(tmp, "w");
	assert_non_null(f);
	fclose(f);
	assert_int_equal(store_backup_start(s, path, &b, err, sizeof(err)), LOKET_E_EXISTS);
	assert_non_null(strstr(err, tmp));
	assert_int_equal(access(tmp, F_OK), 0);

	/* A file that appears at FILE while the copy is made stays. */
	new_path(path, sizeof(path), ".backup");
	assert_int_equal(store_backup_start(s, path, &b, err, sizeof(err)), 0);
	assert_int_equal(store_backup_step(b, -1, err, sizeof(err)), 1);
	assert_int_equal(store_backup_end(b, err, sizeof(err)), 0);
	f = fopen(path, "w");
	assert_non_null(f);
	fputs("late", f);
	fclose(f);
	assert_int_equal(store_backup_commit(b, err, sizeof(err)), LOKET_E_EXISTS);
	assert_non_null(strstr(err, path));
	store_backup_free(b);
	assert_absent(path, ".tmp");
	char text[8] = "";
	f = fopen(path, "r");
	assert_non_null(f);
	assert_non_null(fgets(text, sizeof(text), f));
	fclose(f);
	assert_string_equal(text, "late");
	store_close(s);
}

static void test_abandoned_leaves_nothing(void **state)
{
	(void)state;
	char path[256], err[1024];
	struct node n;
	struct store *s = open_with(&n, 5);
	struct store_backup *b;

	new_path(path, sizeof(path), ".backup");
	assert_int_equal(store_backup_start(s, path, &b, err, sizeof(err)), 0);
	assert_int_equal(store_backup_step(b, 1, err, sizeof(err)), 0);
	store_backup_free(b);
	assert_absent(path, "");
	assert_absent(path, ".tmp");
	append_next(s, &n, 2);
	store_backup_free(NULL);

	assert_int_equal(store_backup_start(s, "/nonexistent-dir/x.db", &b, err, sizeof(err)),
	                 -ENOENT);
	assert_non_null(strstr(err, "/nonexistent-dir/x.db.tmp"));
	store_close(s);
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
	    cmocka_unit_test(test_copy_holds_writes_between_steps),
	    cmocka_unit_test(test_never_replaces),
	    cmocka_unit_test(test_abandoned_leaves_nothing),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
