/*
 * test_own_head: the record of a node's own head (common/own_head.h): a
 * slot reads back what was written, a torn or foreign slot is refused and
 * the other one used, writes alternate between the slots, a lower seq
 * rewrites both, and the file is created only where none is.
 */
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

#include "common/own_head.h"
#include "proto/error.h"

struct dir {
	char path[64];
	char file[96];
};

static void dir_make(struct dir *d)
{
	snprintf(d->path, sizeof(d->path), "/tmp/loket-test-own-head.XXXXXX");
	assert_non_null(mkdtemp(d->path));
	snprintf(d->file, sizeof(d->file), "%s/node.key.head", d->path);
}

static void dir_remove(struct dir *d)
{
	unlink(d->file);
	assert_int_equal(rmdir(d->path), 0);
}

static void read_file(const char *path, uint8_t *buf, size_t len)
{
	FILE *f = fopen(path, "rb");
	assert_non_null(f);
	assert_int_equal(fread(buf, 1, len, f), len);
	fclose(f);
}

static void write_file(const char *path, const uint8_t *buf, size_t len)
{
	FILE *f = fopen(path, "wb");
	assert_non_null(f);
	assert_int_equal(fwrite(buf, 1, len, f), len);
	assert_int_equal(fclose(f), 0);
}

static void test_slot_round_trip(void **state)
{
	(void)state;
	uint8_t slot[OWN_HEAD_SLOT_BYTES], hash[32], got[32];
	uint64_t seq;
	char why[128];
	for (size_t i = 0; i < 32; i++)
		hash[i] = (uint8_t)(i * 7 + 1);
	own_head_format_slot(18446744073709551615ull, hash, slot);
	assert_int_equal(slot[OWN_HEAD_SLOT_BYTES - 1], '\n');
	assert_memory_equal(slot, "loket-own-head 1 18446744073709551615 01080f", 43);
	assert_int_equal(own_head_parse_slot(slot, &seq, got, why, sizeof(why)), 0);
	assert_true(seq == 18446744073709551615ull);
	assert_memory_equal(got, hash, 32);

	/* One flipped digit of the hash: the check says so. */
	slot[40] ^= 1;
	assert_int_equal(own_head_parse_slot(slot, &seq, got, why, sizeof(why)), LOKET_E_MALFORMED);
	assert_non_null(strstr(why, "fails its check"));
	slot[40] ^= 1;
	/* Another version is named as such. */
	slot[15] = '2';
	assert_int_equal(own_head_parse_slot(slot, &seq, got, why, sizeof(why)), LOKET_E_VERSION);
	assert_non_null(strstr(why, "version \"2\""));
	/* A torn write: zeros where the end of the line was. */
	own_head_format_slot(7, hash, slot);
	memset(slot + 60, 0, OWN_HEAD_SLOT_BYTES - 60);
	assert_int_equal(own_head_parse_slot(slot, &seq, got, why, sizeof(why)), LOKET_E_MALFORMED);
	/* Seq 0 comes with the zero hash only. */
	own_head_format_slot(0, hash, slot);
	assert_int_equal(own_head_parse_slot(slot, &seq, got, why, sizeof(why)), LOKET_E_MALFORMED);
	assert_non_null(strstr(why, "seq 0"));
}

static void test_create_write_read(void **state)
{
	(void)state;
	struct dir d;
	struct own_head *h;
	uint8_t zero[32] = {0}, a[32], b[32], buf[OWN_HEAD_FILE_BYTES];
	char err[512];
	memset(a, 0xaa, sizeof(a));
	memset(b, 0xbb, sizeof(b));
	dir_make(&d);
	assert_int_equal(own_head_open(d.file, &h, err, sizeof(err)), LOKET_E_NOT_FOUND);
	assert_int_equal(own_head_create(d.file, 0, zero, &h, err, sizeof(err)), 0);
	struct stat st;
	assert_int_equal(stat(d.file, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0600);
	assert_int_equal(st.st_size, OWN_HEAD_FILE_BYTES);
	assert_int_equal(own_head_create(d.file, 0, zero, NULL, err, sizeof(err)), LOKET_E_EXISTS);

	/* Writes alternate: each leaves the other slot with the record before it. */
	assert_int_equal(own_head_write(h, 1, a, err, sizeof(err)), 0);
	int first = h->slot;
	assert_int_equal(own_head_write(h, 2, b, err, sizeof(err)), 0);
	assert_int_not_equal(h->slot, first);
	own_head_close(h);
	assert_int_equal(own_head_open(d.file, &h, err, sizeof(err)), 0);
	assert_int_equal(h->state, OWN_HEAD_VALID);
	assert_int_equal(h->seq, 2);
	assert_memory_equal(h->hash, b, 32);
	int newest = h->slot;
	own_head_close(h);

	/* A torn newest slot: the one before is the record. */
	read_file(d.file, buf, sizeof(buf));
	memset(buf + (size_t)newest * OWN_HEAD_SLOT_BYTES + 30, 0, 40);
	write_file(d.file, buf, sizeof(buf));
	assert_int_equal(own_head_open(d.file, &h, err, sizeof(err)), 0);
	assert_int_equal(h->state, OWN_HEAD_VALID);
	assert_int_equal(h->seq, 1);
	assert_memory_equal(h->hash, a, 32);

	/* A lower seq (resume) rewrites both slots: nothing higher is left. */
	assert_int_equal(own_head_write(h, 2, b, err, sizeof(err)), 0);
	assert_int_equal(own_head_write(h, 0, zero, err, sizeof(err)), 0);
	own_head_close(h);
	assert_int_equal(own_head_open(d.file, &h, err, sizeof(err)), 0);
	assert_int_equal(h->seq, 0);
	own_head_close(h);

	/* Both slots bad: damaged, and why names both. */
	memset(buf, ' ', sizeof(buf));
	write_file(d.file, buf, sizeof(buf));
	assert_int_equal(own_head_open(d.file, &h, err, sizeof(err)), 0);
	assert_int_equal(h->state, OWN_HEAD_DAMAGED);
	assert_non_null(strstr(h->why, "slot 1"));
	assert_non_null(strstr(h->why, "slot 2"));
	/* Writing it again makes it whole. */
	assert_int_equal(own_head_write(h, 3, a, err, sizeof(err)), 0);
	own_head_close(h);
	assert_int_equal(own_head_open(d.file, &h, err, sizeof(err)), 0);
	assert_int_equal(h->state, OWN_HEAD_VALID);
	assert_int_equal(h->seq, 3);
	own_head_close(h);

	/* The wrong size is damage too; an empty file is a record not written yet. */
	write_file(d.file, buf, 100);
	assert_int_equal(own_head_open(d.file, &h, err, sizeof(err)), 0);
	assert_int_equal(h->state, OWN_HEAD_DAMAGED);
	assert_non_null(strstr(h->why, "100 bytes"));
	own_head_close(h);
	write_file(d.file, buf, 0);
	assert_int_equal(own_head_open(d.file, &h, err, sizeof(err)), 0);
	assert_int_equal(h->state, OWN_HEAD_EMPTY);
	assert_int_equal(own_head_write(h, 4, b, err, sizeof(err)), 0);
	own_head_close(h);
	assert_int_equal(own_head_open(d.file, &h, err, sizeof(err)), 0);
	assert_int_equal(h->state, OWN_HEAD_VALID);
	assert_int_equal(h->seq, 4);
	own_head_close(h);
	dir_remove(&d);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_slot_round_trip),
	    cmocka_unit_test(test_create_write_read),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
