/*
 * merkle: the RFC 6962 Merkle tree of an origin's log (proto/FORMAT.md,
 * section 10), with RFC 9162's proofs. The leaves are the changesets'
 * 32-byte hashes in seq order (leaf index = seq - 1), so a leaf's input is
 * always exactly 32 bytes:
 *
 *	leaf hash  = SHA-256(0x00 || changeset hash)
 *	node hash  = SHA-256(0x01 || left || right)
 *	empty tree = SHA-256("")
 *
 * The module does no I/O. Whoever holds a tree answers one question, the
 * hash of a complete subtree (2^level leaves from index * 2^level), through
 * a merkle_get_fn; roots and proofs of a tree of n leaves then cost
 * O(log n) calls (the store answers from its table of complete subtrees).
 * merkle_frontier computes roots of a stream of leaves in O(log n) memory,
 * with no callback at all: what a verifier of a whole chain uses.
 */
#ifndef LOKET_MERKLE_H
#define LOKET_MERKLE_H

#include <stddef.h>
#include <stdint.h>

#define MERKLE_HASH_BYTES 32u

/* Tree sizes are seq numbers: at most 2^63 - 1 leaves. */
#define MERKLE_MAX_SIZE INT64_MAX

/* Hashes in any proof of a tree of at most MERKLE_MAX_SIZE leaves (63 + 1). */
#define MERKLE_MAX_PROOF 64u

/* SHA-256(0x00 || the 32-byte changeset hash). */
void merkle_leaf_hash(const uint8_t changeset_hash[32], uint8_t out[32]);

/* SHA-256(0x01 || left || right). */
void merkle_node_hash(const uint8_t left[32], const uint8_t right[32], uint8_t out[32]);

/* The root of the empty tree, SHA-256 of no bytes. */
void merkle_empty_root(uint8_t out[32]);

/*
 * The hash of the complete subtree over leaves [index * 2^level,
 * (index + 1) * 2^level): at level 0 the leaf hash of leaf index. The
 * merkle functions only ask for subtrees that lie inside the tree they
 * were given. Returns 0, or a negative code that the caller passes on.
 */
typedef int (*merkle_get_fn)(void *ctx, unsigned level, uint64_t index, uint8_t out[32]);

/* The root of the first n leaves (n = 0: the empty root); O(log n) calls. */
int merkle_root(merkle_get_fn get, void *ctx, uint64_t n, uint8_t out[32]);

/*
 * The inclusion proof of leaf index in the tree of n leaves (RFC 9162
 * 2.1.3.1), leaf to root: *count hashes into proof (at most
 * MERKLE_MAX_PROOF). -EINVAL if index >= n or n > MERKLE_MAX_SIZE.
 */
int merkle_inclusion_proof(merkle_get_fn get, void *ctx, uint64_t index, uint64_t n,
                           uint8_t proof[][32], size_t *count);

/*
 * The consistency proof from the tree of m leaves to the tree of n
 * leaves (RFC 9162 2.1.4.1): empty when m = 0 or m = n. -EINVAL if m > n
 * or n > MERKLE_MAX_SIZE.
 */
int merkle_consistency_proof(merkle_get_fn get, void *ctx, uint64_t m, uint64_t n,
                             uint8_t proof[][32], size_t *count);

/*
 * RFC 9162 2.1.3.2: does proof show that the leaf whose hash is leaf_hash
 * (merkle_leaf_hash of the changeset hash) is leaf index of the tree of n
 * leaves whose root is root? 0 if so, LOKET_E_VERIFY if not (a proof of the
 * wrong length included), -EINVAL for index >= n.
 */
int merkle_verify_inclusion(const uint8_t leaf_hash[32], uint64_t index, uint64_t n,
                            const uint8_t *proof, size_t count, const uint8_t root[32]);

/*
 * RFC 9162 2.1.4.2: does proof show that the tree of m leaves with root
 * root_m is a prefix of the tree of n leaves with root root_n? m = n needs
 * an empty proof and equal roots; m = 0 needs an empty proof (every tree
 * extends the empty one). 0 if so, LOKET_E_VERIFY if not, -EINVAL for m > n.
 */
int merkle_verify_consistency(uint64_t m, uint64_t n, const uint8_t root_m[32],
                              const uint8_t root_n[32], const uint8_t *proof, size_t count);

/*
 * The right edge of a growing tree: the roots of its complete subtrees,
 * largest first (one per bit set in size). Appending a leaf and taking the
 * root cost O(log n) hashes and no lookups.
 */
struct merkle_frontier {
	uint64_t size;
	unsigned count;
	uint8_t hash[64][32];
};

void merkle_frontier_init(struct merkle_frontier *f);

/*
 * Appends the leaf of changeset hash h. If done is not NULL it is called
 * for every complete subtree the leaf completes, smallest first (level 0
 * is the leaf itself): how a store learns which nodes to keep.
 * -EOVERFLOW if the tree already holds MERKLE_MAX_SIZE leaves.
 */
int merkle_frontier_append(struct merkle_frontier *f, const uint8_t h[32],
                           void (*done)(void *ctx, unsigned level, uint64_t index,
                                        const uint8_t hash[32]),
                           void *ctx);

/* The root of the leaves appended so far. */
void merkle_frontier_root(const struct merkle_frontier *f, uint8_t out[32]);

/*
 * A merkle_get_fn over an array of changeset hashes in memory (ctx is a
 * struct merkle_array): O(2^level) hashes a call, for tests and small
 * trees.
 */
struct merkle_array {
	const uint8_t *hashes; /* n hashes of 32 bytes, leaf 0 first */
	uint64_t n;
};

int merkle_array_get(void *ctx, unsigned level, uint64_t index, uint8_t out[32]);

#endif
