/*
 * proto/merkle: roots by three routes (a get function over complete
 * subtrees, the frontier, and a naive recursion written here from RFC 6962
 * 2.1) agree for every size up to 70; every inclusion and consistency
 * proof of those trees verifies, and each one with a flipped bit, a wrong
 * size, index or root, a missing or an extra hash is refused. The vectors
 * of tests/vectors/merkle.json are test_vectors'.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "proto/error.h"
#include "proto/merkle.h"
#include "proto/sha256.h"

#define N 70

static uint8_t leaves[N][32];

/* MTH(D[start:start+n]) straight from RFC 6962 2.1. */
static void naive(uint64_t start, uint64_t n, uint8_t out[32])
{
	uint8_t l[32], r[32];
	uint64_t k = 1;

	if (n == 0) {
		merkle_empty_root(out);
		return;
	}
	if (n == 1) {
		merkle_leaf_hash(leaves[start], out);
		return;
	}
	while (k * 2 < n)
		k *= 2;
	naive(start, k, l);
	naive(start + k, n - k, r);
	merkle_node_hash(l, r, out);
}

static int setup(void **state)
{
	(void)state;
	for (int i = 0; i < N; i++) {
		uint8_t b = (uint8_t)i;

		sha256(&b, 1, leaves[i]);
	}
	return 0;
}

static int calls;

static int counting_get(void *ctx, unsigned level, uint64_t index, uint8_t out[32])
{
	calls++;
	return merkle_array_get(ctx, level, index, out);
}

static void test_roots(void **state)
{
	struct merkle_frontier f;
	uint8_t a[32], b[32], c[32];

	(void)state;
	merkle_frontier_init(&f);
	for (uint64_t n = 0; n <= N; n++) {
		struct merkle_array arr = {leaves[0], n};

		calls = 0;
		assert_int_equal(merkle_root(counting_get, &arr, n, a), 0);
		/* One complete subtree per bit of n. */
		assert_int_equal(calls, __builtin_popcountll(n));
		merkle_frontier_root(&f, b);
		naive(0, n, c);
		assert_memory_equal(a, c, 32);
		assert_memory_equal(b, c, 32);
		if (n < N)
			assert_int_equal(merkle_frontier_append(&f, leaves[n], NULL, NULL), 0);
	}
}

/* What the frontier says it completed must be the subtrees' hashes. */
static void check_done(void *ctx, unsigned level, uint64_t index, const uint8_t hash[32])
{
	uint8_t want[32];

	(void)ctx;
	naive(index << level, (uint64_t)1 << level, want);
	assert_memory_equal(hash, want, 32);
	calls++;
}

static void test_frontier_done(void **state)
{
	struct merkle_frontier f;

	(void)state;
	merkle_frontier_init(&f);
	calls = 0;
	for (int i = 0; i < 64; i++)
		assert_int_equal(merkle_frontier_append(&f, leaves[i], check_done, NULL), 0);
	/* 64 leaves make 127 complete subtrees. */
	assert_int_equal(calls, 127);
}

static void flip(uint8_t *p)
{
	p[5] ^= 0x10;
}

static void test_inclusion(void **state)
{
	uint8_t proof[MERKLE_MAX_PROOF + 1][32], root[32], leaf[32], other[32];
	size_t count;

	(void)state;
	for (uint64_t n = 1; n <= N; n++) {
		struct merkle_array arr = {leaves[0], n};

		naive(0, n, root);
		for (uint64_t i = 0; i < n; i++) {
			assert_int_equal(
			    merkle_inclusion_proof(merkle_array_get, &arr, i, n, proof, &count), 0);
			merkle_leaf_hash(leaves[i], leaf);
			assert_int_equal(merkle_verify_inclusion(leaf, i, n, proof[0], count, root),
			                 0);
			/* Another leaf, another index, a flipped bit, a hash short or over. */
			merkle_leaf_hash(leaves[(i + 1) % N], other);
			assert_int_equal(
			    merkle_verify_inclusion(other, i, n, proof[0], count, root),
			    LOKET_E_VERIFY);
			if (n > 1)
				assert_int_equal(merkle_verify_inclusion(leaf, (i + 1) % n, n,
				                                         proof[0], count, root),
				                 LOKET_E_VERIFY);
			for (size_t k = 0; k < count; k++) {
				flip(proof[k]);
				assert_int_equal(
				    merkle_verify_inclusion(leaf, i, n, proof[0], count, root),
				    LOKET_E_VERIFY);
				flip(proof[k]);
			}
			if (count > 0)
				assert_int_equal(
				    merkle_verify_inclusion(leaf, i, n, proof[0], count - 1, root),
				    LOKET_E_VERIFY);
			memcpy(proof[count], root, 32);
			assert_int_equal(
			    merkle_verify_inclusion(leaf, i, n, proof[0], count + 1, root),
			    LOKET_E_VERIFY);
		}
		assert_int_equal(
		    merkle_inclusion_proof(merkle_array_get, &arr, n, n, proof, &count), -EINVAL);
		assert_int_equal(merkle_verify_inclusion(leaf, n, n, proof[0], 0, root), -EINVAL);
	}
}

static void test_consistency(void **state)
{
	uint8_t proof[MERKLE_MAX_PROOF + 1][32], rm[32], rn[32];
	size_t count;

	(void)state;
	for (uint64_t n = 1; n <= N; n++) {
		struct merkle_array arr = {leaves[0], n};

		naive(0, n, rn);
		for (uint64_t m = 0; m <= n; m++) {
			naive(0, m, rm);
			assert_int_equal(
			    merkle_consistency_proof(merkle_array_get, &arr, m, n, proof, &count),
			    0);
			if (m == 0 || m == n)
				assert_int_equal(count, 0);
			assert_int_equal(merkle_verify_consistency(m, n, rm, rn, proof[0], count),
			                 0);
			for (size_t k = 0; k < count; k++) {
				flip(proof[k]);
				assert_int_equal(
				    merkle_verify_consistency(m, n, rm, rn, proof[0], count),
				    LOKET_E_VERIFY);
				flip(proof[k]);
			}
			if (m > 0 && m < n) {
				uint8_t bad[32];

				memcpy(bad, rm, 32);
				flip(bad);
				assert_int_equal(
				    merkle_verify_consistency(m, n, bad, rn, proof[0], count),
				    LOKET_E_VERIFY);
				assert_int_equal(
				    merkle_verify_consistency(m, n, rm, bad, proof[0], count),
				    LOKET_E_VERIFY);
				assert_int_equal(
				    merkle_verify_consistency(m, n, rm, rn, proof[0], count - 1),
				    LOKET_E_VERIFY);
				memcpy(proof[count], rn, 32);
				assert_int_equal(
				    merkle_verify_consistency(m, n, rm, rn, proof[0], count + 1),
				    LOKET_E_VERIFY);
			}
			if (m == n && n > 1) {
				/* Same size, another root: the split view. */
				uint8_t other[32];

				naive(0, n - 1, other);
				assert_int_equal(
				    merkle_verify_consistency(n, n, other, rn, proof[0], 0),
				    LOKET_E_VERIFY);
			}
		}
		assert_int_equal(
		    merkle_consistency_proof(merkle_array_get, &arr, n + 1, n, proof, &count),
		    -EINVAL);
	}
}

/* A get function's error comes back unchanged. */
static int failing_get(void *ctx, unsigned level, uint64_t index, uint8_t out[32])
{
	(void)ctx;
	(void)level;
	(void)index;
	(void)out;
	return LOKET_E_STORE;
}

static void test_get_error(void **state)
{
	uint8_t out[32], proof[MERKLE_MAX_PROOF][32];
	size_t count;

	(void)state;
	assert_int_equal(merkle_root(failing_get, NULL, 5, out), LOKET_E_STORE);
	assert_int_equal(merkle_inclusion_proof(failing_get, NULL, 1, 5, proof, &count),
	                 LOKET_E_STORE);
	assert_int_equal(merkle_consistency_proof(failing_get, NULL, 3, 5, proof, &count),
	                 LOKET_E_STORE);
	assert_int_equal(merkle_root(failing_get, NULL, (uint64_t)INT64_MAX + 1, out), -EINVAL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_roots),     cmocka_unit_test(test_frontier_done),
	    cmocka_unit_test(test_inclusion), cmocka_unit_test(test_consistency),
	    cmocka_unit_test(test_get_error),
	};

	return cmocka_run_group_tests(tests, setup, NULL);
}
