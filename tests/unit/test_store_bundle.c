/*
 * store_bundle: a bundle exported from a real store verifies with no
 * store, and reports its fork and split-view proofs; the origins are met
 * in another order than their keys' (a fork proof of the higher key comes
 * before the changesets of the lower), and the manifest's heads still
 * match; a one-note split-view proof is checked against the bundle's tree;
 * roster entries of version 2 carry revocations and are read back, and
 * their malformed forms are refused.
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

#include "proto/changeset.h"
#include "proto/error.h"
#include "proto/note.h"
#include "store/store.h"

static char dir[] = "/tmp/test_store_bundle_XXXXXX";

struct membuf {
	uint8_t *p;
	size_t n, cap, at;
};

static int mem_write(void *arg, const void *p, size_t n)
{
	struct membuf *m = arg;

	if (m->n + n > m->cap) {
		m->cap = (m->n + n) * 2;
		m->p = realloc(m->p, m->cap);
		assert_non_null(m->p);
	}
	memcpy(m->p + m->n, p, n);
	m->n += n;
	return 0;
}

static int mem_read(void *arg, uint8_t *buf, size_t n, size_t *got)
{
	struct membuf *m = arg;

	*got = n < m->n - m->at ? n : m->n - m->at;
	memcpy(buf, m->p + m->at, *got);
	m->at += *got;
	return 0;
}

/* A signed changeset of one put of expert/ID {"n": v}; its hash into hash. */
static uint8_t *signed_cs(const uint8_t sk[64], const uint8_t pk[32], uint64_t seq,
                          const uint8_t prev[32], const char *id, uint8_t v, size_t *len,
                          uint8_t hash[32])
{
	uint8_t fields[4] = {0x81, 0xa1, 'n', v}, *msg = NULL, *out;
	struct op op = {.kind = OP_PUT,
	                .coll = "expert",
	                .coll_len = 6,
	                .id = id,
	                .id_len = strlen(id),
	                .fields = fields,
	                .fields_len = sizeof(fields)};
	struct changeset cs = {CHANGESET_VERSION, "leiden", 6, {0}, seq, {0}, 1000 + seq, 1, &op};
	msgpack_sbuffer body;
	size_t msg_len;

	memcpy(cs.origin, pk, 32);
	memcpy(cs.prev, prev, 32);
	msgpack_sbuffer_init(&body);
	assert_int_equal(changeset_encode(&cs, &body), 0);
	assert_int_equal(
	    changeset_signing_input((const uint8_t *)body.data, body.size, &msg, &msg_len), 0);
	*len = body.size + 64;
	out = malloc(*len);
	assert_non_null(out);
	memcpy(out, body.data, body.size);
	crypto_sign_detached(out + body.size, NULL, msg, msg_len, sk);
	changeset_hash(out, *len, hash);
	free(msg);
	msgpack_sbuffer_destroy(&body);
	return out;
}

static void append(struct store *s, const uint8_t *p, size_t len)
{
	struct changeset cs;
	char err[200];

	assert_int_equal(changeset_decode(p, len, &cs, err, sizeof(err)), 0);
	assert_int_equal(store_append(s, p, len, &cs, NULL), 0);
	changeset_release(&cs);
}

static void test_fork_of_the_higher_key_first(void **state)
{
	uint8_t pk[2][32], sk[2][64], zero[32] = {0}, h[32], h1[32], *a, *b, *c;
	size_t la, lb, lc;
	char path[300], err[256];
	struct store *s = NULL;
	struct membuf m = {0};
	json_t *summary = NULL, *report = NULL;
	int lo;

	(void)state;
	crypto_sign_keypair(pk[0], sk[0]);
	crypto_sign_keypair(pk[1], sk[1]);
	lo = memcmp(pk[0], pk[1], 32) < 0 ? 0 : 1;
	snprintf(path, sizeof(path), "%s/store.db", dir);
	assert_int_equal(store_open(path, STORE_CREATE, &s, err, sizeof(err)), 0);
	assert_int_equal(store_set_member(s, pk[lo], "low"), 0);
	assert_int_equal(store_set_member(s, pk[1 - lo], "high"), 0);
	/* The low key: two changesets. The high key: one, then two rivals of seq 2. */
	a = signed_cs(sk[lo], pk[lo], 1, zero, "a", 1, &la, h);
	append(s, a, la);
	free(a);
	a = signed_cs(sk[lo], pk[lo], 2, h, "a", 2, &la, h);
	append(s, a, la);
	free(a);
	c = signed_cs(sk[1 - lo], pk[1 - lo], 1, zero, "b", 1, &lc, h1);
	append(s, c, lc);
	a = signed_cs(sk[1 - lo], pk[1 - lo], 2, h1, "b", 2, &la, h);
	b = signed_cs(sk[1 - lo], pk[1 - lo], 2, h1, "b", 3, &lb, h);
	assert_int_equal(store_fork_record(s, pk[1 - lo], 2, a, la, b, lb), 0);
	assert_int_equal(store_bundle_export(s, NULL, NULL, 0, mem_write, &m, &summary), 0);
	assert_int_equal(json_integer_value(json_object_get(summary, "forks")), 1);
	assert_int_equal(json_integer_value(json_object_get(summary, "changesets")), 3);

	assert_int_equal(store_bundle_verify(mem_read, &m, &report), 0);
	if (!json_is_true(json_object_get(report, "ok"))) {
		char *d = json_dumps(report, 0);
		print_error("%s\n", d);
		free(d);
	}
	assert_true(json_is_true(json_object_get(report, "ok")));
	assert_int_equal(json_array_size(json_object_get(report, "forks")), 1);
	assert_string_equal(json_string_value(json_object_get(
	                        json_array_get(json_object_get(report, "forks"), 0), "origin")),
	                    "high");
	assert_int_equal(json_integer_value(json_object_get(report, "origins")), 2);
	json_decref(report);

	/* A byte after the end, and the end cut short: refused. */
	m.at = 0;
	mem_write(&m, "", 1);
	assert_int_equal(store_bundle_verify(mem_read, &m, &report), 0);
	assert_false(json_is_true(json_object_get(report, "ok")));
	json_decref(report);
	m.at = 0;
	m.n -= 2;
	assert_int_equal(store_bundle_verify(mem_read, &m, &report), 0);
	assert_false(json_is_true(json_object_get(report, "ok")));
	json_decref(report);

	json_decref(summary);
	free(a);
	free(b);
	free(c);
	free(m.p);
	store_close(s);
	unlink(path);
}

/* A checkpoint of size and root signed by the origin (sk, pk), as a signed note. */
static size_t signed_checkpoint(const uint8_t sk[64], const uint8_t pk[32], uint64_t size,
                                const uint8_t root[32], char *buf, size_t cap)
{
	struct note_checkpoint c;
	uint8_t sig[64];
	size_t len = 0;

	assert_int_equal(note_origin_line("leiden", pk, &c), 0);
	c.size = size;
	memcpy(c.root, root, 32);
	assert_int_equal(note_checkpoint_text(&c, buf, cap, &len), 0);
	crypto_sign_detached(sig, NULL, (const uint8_t *)buf, len, sk);
	buf[len++] = '\n';
	assert_int_equal(note_append_sig(buf, cap, &len, (const uint8_t *)c.origin, c.origin_len,
	                                 note_key_id((const uint8_t *)c.origin, c.origin_len,
	                                             NOTE_TYPE_ED25519, pk),
	                                 sig, sizeof(sig)),
	                 0);
	return len;
}

/* A version 2 roster entry (FORMAT.md, 15.2): written, read back, and its flaws refused. */
static void test_roster_revocations(void **state)
{
	struct membuf m = {0};
	struct bundle_writer w;
	struct bundle_member e;
	struct bundle_revoke rev[2];
	uint8_t key[32], bad[300];
	char err[300];
	size_t len;

	(void)state;
	memset(key, 7, 32);
	memset(rev[0].key, 8, 32);
	rev[0].after = 3;
	memset(rev[1].key, 9, 32);
	rev[1].after = (1ull << 63) - 1;
	assert_int_equal(bundle_writer_init(&w, mem_write, &m), 0);
	assert_int_equal(bundle_write_member(&w, key, "n1", 2, rev, 2), 0);
	/* magic (8), tag (1), length (4), then the entry. */
	len = m.n - 13;
	assert_int_equal(len, 1 + 32 + 1 + 2 + 1 + 2 * 40);
	assert_int_equal(m.p[13], 2);
	assert_int_equal(bundle_decode_member(m.p + 13, len, &e, err, sizeof(err)), 0);
	assert_int_equal(e.version, 2);
	assert_memory_equal(e.key, key, 32);
	assert_int_equal(e.n_revoked, 2);
	assert_memory_equal(e.revoked[1].key, rev[1].key, 32);
	assert_true(e.revoked[0].after == 3 && e.revoked[1].after == rev[1].after);

	/* No revocation, more than 4, a byte after them, after beyond 2^63 - 1, version 3. */
	memcpy(bad, m.p + 13, len);
	bad[36] = 0;
	assert_int_equal(bundle_decode_member(bad, 37, &e, err, sizeof(err)), LOKET_E_MALFORMED);
	bad[36] = 5;
	assert_int_equal(bundle_decode_member(bad, len, &e, err, sizeof(err)), LOKET_E_MALFORMED);
	bad[36] = 2;
	bad[len] = 0;
	assert_int_equal(bundle_decode_member(bad, len + 1, &e, err, sizeof(err)),
	                 LOKET_E_MALFORMED);
	assert_non_null(strstr(err, "1 to 4, 40 bytes each, and nothing after"));
	bad[37 + 32] = 0x80;
	assert_int_equal(bundle_decode_member(bad, len, &e, err, sizeof(err)), LOKET_E_MALFORMED);
	bad[37 + 32] = 0;
	bad[0] = 3;
	assert_int_equal(bundle_decode_member(bad, len, &e, err, sizeof(err)), LOKET_E_VERSION);
	assert_non_null(strstr(err, "of version 3"));
	/* With no revocation the entry stays version 1. */
	m.n = 0;
	assert_int_equal(bundle_writer_init(&w, mem_write, &m), 0);
	assert_int_equal(bundle_write_member(&w, key, "n1", 2, NULL, 0), 0);
	assert_int_equal(m.n - 13, 1 + 32 + 1 + 2);
	assert_int_equal(m.p[13], 1);
	free(m.p);
}

static void test_split_views(void **state)
{
	uint8_t pk[2][32], sk[2][64], zero[32] = {0}, h[32], r1[32], r2[32], *p;
	char path[300], err[256], n1[2048], n2[2048];
	size_t len, l1, l2;
	struct store *s = NULL;
	struct membuf m = {0};
	json_t *summary = NULL, *report = NULL, *splits;

	(void)state;
	crypto_sign_keypair(pk[0], sk[0]);
	crypto_sign_keypair(pk[1], sk[1]);
	snprintf(path, sizeof(path), "%s/split.db", dir);
	assert_int_equal(store_open(path, STORE_CREATE, &s, err, sizeof(err)), 0);
	/* Each origin: seq 1 and 2. */
	for (int o = 0; o < 2; o++) {
		p = signed_cs(sk[o], pk[o], 1, zero, "x", 1, &len, h);
		append(s, p, len);
		free(p);
		p = signed_cs(sk[o], pk[o], 2, h, "x", 2, &len, h);
		append(s, p, len);
		free(p);
	}
	/* Origin 0: one note of size 1 whose root is not its tree. Origin 1: two of size 1. */
	randombytes_buf(r1, 32);
	randombytes_buf(r2, 32);
	l1 = signed_checkpoint(sk[0], pk[0], 1, r1, n1, sizeof(n1));
	assert_int_equal(store_split_record(s, pk[0], 1, (uint8_t *)n1, l1, NULL, 0), 0);
	l1 = signed_checkpoint(sk[1], pk[1], 1, r1, n1, sizeof(n1));
	l2 = signed_checkpoint(sk[1], pk[1], 1, r2, n2, sizeof(n2));
	assert_int_equal(store_split_record(s, pk[1], 1, (uint8_t *)n1, l1, (uint8_t *)n2, l2), 0);
	assert_int_equal(store_bundle_export(s, NULL, NULL, 0, mem_write, &m, &summary), 0);
	assert_int_equal(json_integer_value(json_object_get(summary, "splits")), 2);
	/* Frozen at size 1: each origin's seq 2 is gone. */
	assert_int_equal(json_integer_value(json_object_get(summary, "changesets")), 2);
	assert_int_equal(store_bundle_verify(mem_read, &m, &report), 0);
	if (!json_is_true(json_object_get(report, "ok"))) {
		char *d = json_dumps(report, 0);
		print_error("%s\n", d);
		free(d);
	}
	assert_true(json_is_true(json_object_get(report, "ok")));
	splits = json_object_get(report, "splits");
	assert_int_equal(json_array_size(splits), 2);
	for (size_t i = 0; i < 2; i++) {
		json_t *sp = json_array_get(splits, i);
		int one = json_integer_value(json_object_get(sp, "notes")) == 1;
		assert_string_equal(json_string_value(json_object_get(sp, "tree")),
		                    one ? "differs" : "not needed");
	}
	json_decref(report);
	json_decref(summary);
	free(m.p);
	store_close(s);
	unlink(path);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_fork_of_the_higher_key_first),
	    cmocka_unit_test(test_split_views),
	    cmocka_unit_test(test_roster_revocations),
	};
	int rc;

	if (sodium_init() < 0 || !mkdtemp(dir))
		return 1;
	rc = cmocka_run_group_tests(tests, NULL, NULL);
	char cmd[400];
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	if (system(cmd) != 0)
		rc = 1;
	return rc;
}
