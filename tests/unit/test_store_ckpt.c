/*
 * Checkpoints off the write path (store_ckpt.c): once the log passes
 * STORE_CKPT_SOON, its pages reach the database file without the writer
 * checkpointing (the writer's own threshold is far higher), and the store
 * closes and reopens with everything in it.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <jansson.h>
#include <sodium.h>

#include "proto/changeset.h"
#include "store/store.h"
#include "store/store_ckpt.h"
#include "tests/unit/signed_ops.h"

static char dir[] = "/tmp/test_store_ckpt_XXXXXX";

static long long file_size(const char *path)
{
	struct stat st;
	return stat(path, &st) == 0 ? (long long)st.st_size : -1;
}

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Appends n changesets of 50 entities with 16 KiB fields: about 1.6 MiB of log each. */
static uint64_t write_changesets(struct store *s, int n, uint8_t pk[32], uint8_t sk[64],
                                 uint64_t seq, uint8_t head[32])
{
	static char text[16384 + 1];
	memset(text, 'x', sizeof(text) - 1);
	for (int k = 0; k < n; k++) {
		json_t *ops = json_array();
		for (int i = 0; i < 50; i++) {
			char id[64];
			snprintf(id, sizeof(id), "e%llu-%d", (unsigned long long)seq, i);
			json_array_append_new(ops,
			                      json_pack("{s:s, s:s, s:{s:s}}", "coll", "expert",
			                                "id", id, "fields", "name", text));
		}
		char *ops_json = json_dumps(ops, 0);
		json_decref(ops);
		uint8_t *bytes_cs;
		size_t len;
		signed_ops(pk, sk, seq + 1, head, seq + 1, ops_json, &bytes_cs, &len);
		free(ops_json);
		struct changeset cs;
		char err[200];
		assert_int_equal(changeset_decode(bytes_cs, len, &cs, err, sizeof(err)), 0);
		assert_int_equal(store_append(s, bytes_cs, len, &cs, NULL), 0);
		changeset_release(&cs);
		changeset_hash(bytes_cs, len, head);
		free(bytes_cs);
		seq++;
	}
	return seq;
}

static void test_log_copied_by_the_thread(void **state)
{
	(void)state;
	char path[256], wal[300], err[256];
	snprintf(path, sizeof(path), "%s/store.db", dir);
	snprintf(wal, sizeof(wal), "%s-wal", path);
	struct store *s;
	assert_int_equal(store_open(path, STORE_CREATE, &s, err, sizeof(err)), 0);

	uint8_t pk[32], sk[64], head[32] = {0};
	crypto_sign_keypair(pk, sk);
	long long before = file_size(path);
	uint64_t seq = write_changesets(s, 8, pk, sk, 0, head);
	assert_true(file_size(wal) > STORE_CKPT_SOON / 2);
	assert_true(file_size(wal) < STORE_CKPT_LIMIT);

	/* The writer did not checkpoint (far below its limit): the thread does, soon. */
	double deadline = now_s() + 10;
	while (file_size(path) <= before + STORE_CKPT_SOON / 2 && now_s() < deadline)
		usleep(10000);
	assert_true(file_size(path) > before + STORE_CKPT_SOON / 2);

	store_close(s);
	assert_int_equal(store_open(path, STORE_READONLY, &s, err, sizeof(err)), 0);
	uint64_t held;
	uint8_t hash[32];
	assert_int_equal(store_head(s, pk, &held, hash), 0);
	assert_int_equal(held, seq);
	assert_memory_equal(hash, head, 32);
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
	    cmocka_unit_test(test_log_copied_by_the_thread),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
