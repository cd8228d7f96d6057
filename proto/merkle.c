/*
 * The RFC 6962 tree hashes and RFC 9162's proofs (merkle.h says what they
 * compute). Generation follows RFC 9162's recursive definitions (PATH and
 * SUBPROOF in 2.1.3.1 and 2.1.4.1) unrolled into loops that walk from the
 * root down, collecting the sibling hashes and reversing them at the end;
 * every sibling is a subtree whose start is aligned to a power of two at
 * least its size, so it is one complete subtree or a few, from the
 * caller's merkle_get_fn. Verification is RFC 9162 2.1.3.2 and 2.1.4.2
 * step by step, so that it can be read against the RFC.
 */
#include "proto/merkle.h"

#include <errno.h>
#include <string.h>

#include "proto/error.h"
#include "proto/sha256.h"

void merkle_leaf_hash(const uint8_t changeset_hash[32], uint8_t out[32])
{
	uint8_t b[33];

	b[0] = 0x00;
	memcpy(b + 1, changeset_hash, 32);
	sha256(b, sizeof(b), out);
}

void merkle_node_hash(const uint8_t left[32], const uint8_t right[32], uint8_t out[32])
{
	uint8_t b[65];

	b[0] = 0x01;
	memcpy(b + 1, left, 32);
	memcpy(b + 33, right, 32);
	sha256(b, sizeof(b), out);
}

void merkle_empty_root(uint8_t out[32])
{
	sha256("", 0, out);
}

/* The largest power of two smaller than n (n >= 2). */
static uint64_t split_of(uint64_t n)
{
	return (uint64_t)1 << (63 - __builtin_clzll(n - 1));
}

/*
 * The hash of leaves [start, start + len), len >= 1, start a multiple of a
 * power of two >= len (every range RFC 9162's recursion names is): the
 * complete subtrees of len's bits from the largest, folded right to left.
 */
static int range_hash(merkle_get_fn get, void *ctx, uint64_t start, uint64_t len, uint8_t out[32])
{
	uint8_t part[64][32];
	unsigned count = 0;
	int rc;

	if (len == 0)
		return -EINVAL;
	for (int level = 63; level >= 0; level--) {
		uint64_t size = (uint64_t)1 << level;

		if (!(len & size))
			continue;
		if (start % size != 0)
			return -EINVAL;
		rc = get(ctx, (unsigned)level, start >> level, part[count]);
		if (rc < 0)
			return rc;
		count++;
		start += size;
	}
	memcpy(out, part[count - 1], 32);
	for (unsigned i = count - 1; i-- > 0;)
		merkle_node_hash(part[i], out, out);
	return 0;
}

int merkle_root(merkle_get_fn get, void *ctx, uint64_t n, uint8_t out[32])
{
	if (n > MERKLE_MAX_SIZE)
		return -EINVAL;
	if (n == 0) {
		merkle_empty_root(out);
		return 0;
	}
	return range_hash(get, ctx, 0, n, out);
}

static void reverse(uint8_t proof[][32], size_t count)
{
	uint8_t t[32];

	for (size_t i = 0, j = count; i + 1 < j; i++, j--) {
		memcpy(t, proof[i], 32);
		memcpy(proof[i], proof[j - 1], 32);
		memcpy(proof[j - 1], t, 32);
	}
}

int merkle_inclusion_proof(merkle_get_fn get, void *ctx, uint64_t index, uint64_t n,
                           uint8_t proof[][32], size_t *count)
{
	uint64_t off = 0, len = n, m = index;
	size_t c = 0;
	int rc;

	*count = 0;
	if (n > MERKLE_MAX_SIZE || index >= n)
		return -EINVAL;
	while (len > 1) {
		uint64_t k = split_of(len);

		if (c == MERKLE_MAX_PROOF)
			return -EINVAL;
		if (m < k) {
			rc = range_hash(get, ctx, off + k, len - k, proof[c]);
			len = k;
		} else {
			rc = range_hash(get, ctx, off, k, proof[c]);
			off += k;
			m -= k;
			len -= k;
		}
		if (rc < 0)
			return rc;
		c++;
	}
	reverse(proof, c);
	*count = c;
	return 0;
}

int merkle_consistency_proof(merkle_get_fn get, void *ctx, uint64_t m, uint64_t n,
                             uint8_t proof[][32], size_t *count)
{
	uint64_t off = 0, len = n;
	size_t c = 0;
	int whole = 1, rc;

	*count = 0;
	if (n > MERKLE_MAX_SIZE || m > n)
		return -EINVAL;
	if (m == 0 || m == n)
		return 0;
	for (;;) {
		uint64_t k;

		if (c == MERKLE_MAX_PROOF)
			return -EINVAL;
		if (m == len) {
			/* SUBPROOF(m, D[m], false) = {MTH(D[m])}; with true, {}. */
			if (!whole) {
				rc = range_hash(get, ctx, off, m, proof[c]);
				if (rc < 0)
					return rc;
				c++;
			}
			break;
		}
		k = split_of(len);
		if (m <= k) {
			rc = range_hash(get, ctx, off + k, len - k, proof[c]);
			len = k;
		} else {
			rc = range_hash(get, ctx, off, k, proof[c]);
			off += k;
			m -= k;
			len -= k;
			whole = 0;
		}
		if (rc < 0)
			return rc;
		c++;
	}
	reverse(proof, c);
	*count = c;
	return 0;
}

int merkle_verify_inclusion(const uint8_t leaf_hash[32], uint64_t index, uint64_t n,
                            const uint8_t *proof, size_t count, const uint8_t root[32])
{
	uint64_t fn = index, sn;
	uint8_t r[32];

	if (index >= n || n > MERKLE_MAX_SIZE)
		return -EINVAL;
	if (count > MERKLE_MAX_PROOF)
		return LOKET_E_VERIFY;
	sn = n - 1;
	memcpy(r, leaf_hash, 32);
	for (size_t i = 0; i < count; i++) {
		if (sn == 0)
			return LOKET_E_VERIFY;
		if ((fn & 1) || fn == sn) {
			merkle_node_hash(proof + 32 * i, r, r);
			while (!(fn & 1) && fn != 0) {
				fn >>= 1;
				sn >>= 1;
			}
		} else {
			merkle_node_hash(r, proof + 32 * i, r);
		}
		fn >>= 1;
		sn >>= 1;
	}
	if (sn != 0 || memcmp(r, root, 32) != 0)
		return LOKET_E_VERIFY;
	return 0;
}

int merkle_verify_consistency(uint64_t m, uint64_t n, const uint8_t root_m[32],
                              const uint8_t root_n[32], const uint8_t *proof, size_t count)
{
	uint64_t fn, sn;
	uint8_t fr[32], sr[32];
	size_t i = 0;

	if (m > n || n > MERKLE_MAX_SIZE)
		return -EINVAL;
	if (count > MERKLE_MAX_PROOF)
		return LOKET_E_VERIFY;
	if (m == n)
		return count == 0 && memcmp(root_m, root_n, 32) == 0 ? 0 : LOKET_E_VERIFY;
	if (m == 0)
		return count == 0 ? 0 : LOKET_E_VERIFY;
	/* 1. An empty path is refused. */
	if (count == 0)
		return LOKET_E_VERIFY;
	/* 2. When m is a power of two, the path starts with root_m itself. */
	if ((m & (m - 1)) == 0) {
		memcpy(fr, root_m, 32);
	} else {
		memcpy(fr, proof, 32);
		i = 1;
	}
	memcpy(sr, fr, 32);
	/* 3., 4. */
	fn = m - 1;
	sn = n - 1;
	while (fn & 1) {
		fn >>= 1;
		sn >>= 1;
	}
	/* 6. */
	for (; i < count; i++) {
		if (sn == 0)
			return LOKET_E_VERIFY;
		if ((fn & 1) || fn == sn) {
			merkle_node_hash(proof + 32 * i, fr, fr);
			merkle_node_hash(proof + 32 * i, sr, sr);
			while (!(fn & 1) && fn != 0) {
				fn >>= 1;
				sn >>= 1;
			}
		} else {
			merkle_node_hash(sr, proof + 32 * i, sr);
		}
		fn >>= 1;
		sn >>= 1;
	}
	/* 7. */
	if (sn != 0 || memcmp(fr, root_m, 32) != 0 || memcmp(sr, root_n, 32) != 0)
		return LOKET_E_VERIFY;
	return 0;
}

void merkle_frontier_init(struct merkle_frontier *f)
{
	memset(f, 0, sizeof(*f));
}

int merkle_frontier_append(struct merkle_frontier *f, const uint8_t h[32],
                           void (*done)(void *ctx, unsigned level, uint64_t index,
                                        const uint8_t hash[32]),
                           void *ctx)
{
	uint64_t s = f->size;
	uint8_t cur[32];
	unsigned level = 0;

	if (s >= MERKLE_MAX_SIZE)
		return -EOVERFLOW;
	merkle_leaf_hash(h, cur);
	if (done)
		done(ctx, 0, s, cur);
	/* Each bit set at the bottom of s is a subtree of that size the new leaf completes. */
	while (s & ((uint64_t)1 << level)) {
		merkle_node_hash(f->hash[--f->count], cur, cur);
		level++;
		if (done)
			done(ctx, level, s >> level, cur);
	}
	memcpy(f->hash[f->count++], cur, 32);
	f->size = s + 1;
	return 0;
}

void merkle_frontier_root(const struct merkle_frontier *f, uint8_t out[32])
{
	if (f->count == 0) {
		merkle_empty_root(out);
		return;
	}
	memcpy(out, f->hash[f->count - 1], 32);
	for (unsigned i = f->count - 1; i-- > 0;)
		merkle_node_hash(f->hash[i], out, out);
}

int merkle_array_get(void *ctx, unsigned level, uint64_t index, uint8_t out[32])
{
	const struct merkle_array *a = ctx;
	uint64_t size = (uint64_t)1 << level, start = index << level;
	uint8_t l[32], r[32];
	int rc;

	if (level >= 63 || start >= a->n || a->n - start < size)
		return -EINVAL;
	if (level == 0) {
		merkle_leaf_hash(a->hashes + 32 * start, out);
		return 0;
	}
	rc = merkle_array_get(ctx, level - 1, 2 * index, l);
	if (rc == 0)
		rc = merkle_array_get(ctx, level - 1, 2 * index + 1, r);
	if (rc == 0)
		merkle_node_hash(l, r, out);
	return rc;
}
