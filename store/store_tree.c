/*
 * store_tree: each origin's log as an RFC 6962 tree (proto/merkle.h,
 * proto/FORMAT.md section 10), kept incrementally beside the changesets.
 * The tree table holds the hash of every complete subtree of two leaves
 * or more, (origin, level, idx) for leaves [idx * 2^level, (idx + 1) *
 * 2^level); a leaf's hash is made from the changeset's own hash column
 * (leaf i is seq i + 1). Appending leaf i writes the subtrees it
 * completes, one per trailing 1 bit of i (one on average), each from its
 * left sibling read back, in the transaction that stores the changeset,
 * so the table never holds a node the changesets do not make. Any root or
 * proof is then O(log n) reads. A freeze (fork or split-view proof) drops
 * the nodes that cover a dropped changeset. A read-only store of schema 3
 * has no table: its subtrees are made from the changesets, O(size) each.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/log.h"
#include "proto/error.h"
#include "proto/merkle.h"
#include "store/store_int.h"

const char store_tree_sql[] =
    "CREATE TABLE tree(origin BLOB NOT NULL, level INTEGER NOT NULL, idx INTEGER NOT NULL,"
    " hash BLOB NOT NULL, PRIMARY KEY(origin, level, idx)) WITHOUT ROWID;";

int store_tree_prepare(struct store *s, long long version)
{
	s->tree_table = version >= 4;
	if (!s->tree_table)
		return 0;
	if (sqlite3_prepare_v3(
	        s->db, "SELECT hash FROM tree WHERE origin = ?1 AND level = ?2 AND idx = ?3", -1,
	        SQLITE_PREPARE_PERSISTENT, &s->tree_get, NULL) != SQLITE_OK ||
	    sqlite3_prepare_v3(s->db,
	                       "INSERT OR REPLACE INTO tree(origin, level, idx, hash)"
	                       " VALUES(?1, ?2, ?3, ?4)",
	                       -1, SQLITE_PREPARE_PERSISTENT, &s->tree_put, NULL) != SQLITE_OK ||
	    sqlite3_prepare_v3(s->db, "SELECT size FROM split WHERE origin = ?1", -1,
	                       SQLITE_PREPARE_PERSISTENT, &s->split_size, NULL) != SQLITE_OK)
		return store_sqlite_fail(s, "cannot prepare a tree statement");
	return 0;
}

void store_tree_finalize(struct store *s)
{
	sqlite3_finalize(s->tree_get);
	sqlite3_finalize(s->tree_put);
	sqlite3_finalize(s->split_size);
	s->tree_get = s->tree_put = s->split_size = NULL;
}

/* The changeset hash of (origin, seq); LOKET_E_NOT_FOUND if not held. */
static int cs_hash(struct store *s, const uint8_t origin[32], uint64_t seq, uint8_t out[32])
{
	int step, rc = 0;

	sqlite3_bind_blob(s->cs_hash, 1, origin, 32, SQLITE_STATIC);
	sqlite3_bind_int64(s->cs_hash, 2, (sqlite3_int64)seq);
	step = sqlite3_step(s->cs_hash);
	if (step == SQLITE_ROW && sqlite3_column_bytes(s->cs_hash, 0) == 32)
		memcpy(out, sqlite3_column_blob(s->cs_hash, 0), 32);
	else if (step == SQLITE_ROW || step == SQLITE_DONE)
		rc = LOKET_E_NOT_FOUND;
	else
		rc = store_sqlite_fail(s, "cannot read a changeset hash");
	sqlite3_reset(s->cs_hash);
	if (rc == LOKET_E_NOT_FOUND)
		store_set_error(s, "the log tree needs seq %llu, which is not held",
		                (unsigned long long)seq);
	return rc;
}

struct tree_ctx {
	struct store *s;
	const uint8_t *origin;
};

/* merkle_get_fn over the store: leaves from the changesets, the rest from the tree table. */
static int tree_get(void *arg, unsigned level, uint64_t idx, uint8_t out[32])
{
	struct tree_ctx *t = arg;
	struct store *s = t->s;
	uint8_t h[32];
	int step, rc = 0;

	if (level == 0) {
		if ((rc = cs_hash(s, t->origin, idx + 1, h)) < 0)
			return rc;
		merkle_leaf_hash(h, out);
		return 0;
	}
	if (!s->tree_table) {
		uint8_t l[32], r[32];

		if ((rc = tree_get(arg, level - 1, 2 * idx, l)) < 0 ||
		    (rc = tree_get(arg, level - 1, 2 * idx + 1, r)) < 0)
			return rc;
		merkle_node_hash(l, r, out);
		return 0;
	}
	sqlite3_bind_blob(s->tree_get, 1, t->origin, 32, SQLITE_STATIC);
	sqlite3_bind_int(s->tree_get, 2, (int)level);
	sqlite3_bind_int64(s->tree_get, 3, (sqlite3_int64)idx);
	step = sqlite3_step(s->tree_get);
	if (step == SQLITE_ROW && sqlite3_column_bytes(s->tree_get, 0) == 32) {
		memcpy(out, sqlite3_column_blob(s->tree_get, 0), 32);
	} else if (step == SQLITE_ROW || step == SQLITE_DONE) {
		store_set_error(s, "the log tree lacks its node at level %u, index %llu", level,
		                (unsigned long long)idx);
		rc = LOKET_E_DAMAGED;
	} else {
		rc = store_sqlite_fail(s, "cannot read the log tree");
	}
	sqlite3_reset(s->tree_get);
	return rc;
}

static int put_node(struct store *s, const uint8_t origin[32], unsigned level, uint64_t idx,
                    const uint8_t hash[32])
{
	int step;

	sqlite3_bind_blob(s->tree_put, 1, origin, 32, SQLITE_STATIC);
	sqlite3_bind_int(s->tree_put, 2, (int)level);
	sqlite3_bind_int64(s->tree_put, 3, (sqlite3_int64)idx);
	sqlite3_bind_blob(s->tree_put, 4, hash, 32, SQLITE_STATIC);
	step = sqlite3_step(s->tree_put);
	sqlite3_reset(s->tree_put);
	if (step != SQLITE_DONE)
		return store_sqlite_fail(s, "cannot write the log tree");
	return 0;
}

int store_tree_append(struct store *s, const uint8_t origin[32], uint64_t seq,
                      const uint8_t hash[32])
{
	struct tree_ctx t = {s, origin};
	uint64_t idx = seq - 1;
	uint8_t cur[32], left[32];
	unsigned level = 0;
	int rc;

	if (!s->tree_table)
		return 0;
	merkle_leaf_hash(hash, cur);
	/* Each trailing 1 bit of the leaf index is a subtree this leaf completes. */
	while (idx & 1) {
		if ((rc = tree_get(&t, level, idx - 1, left)) < 0)
			return rc;
		merkle_node_hash(left, cur, cur);
		level++;
		idx >>= 1;
		if ((rc = put_node(s, origin, level, idx, cur)) < 0)
			return rc;
	}
	return 0;
}

int store_tree_truncate(struct store *s, const uint8_t origin[32], uint64_t size)
{
	sqlite3_stmt *st;
	int step;

	if (!s->tree_table)
		return 0;
	if (sqlite3_prepare_v2(s->db,
	                       "DELETE FROM tree WHERE origin = ?1 AND ((idx + 1) << level) > ?2",
	                       -1, &st, NULL) != SQLITE_OK)
		return store_sqlite_fail(s, "cannot prepare a tree statement");
	sqlite3_bind_blob(st, 1, origin, 32, SQLITE_STATIC);
	sqlite3_bind_int64(st, 2, (sqlite3_int64)size);
	step = sqlite3_step(st);
	sqlite3_finalize(st);
	if (step != SQLITE_DONE)
		return store_sqlite_fail(s, "cannot cut the log tree");
	return 0;
}

/* The tree may answer for sizes up to the origin's head. */
static int size_held(struct store *s, const uint8_t origin[32], uint64_t size)
{
	uint8_t h[32];
	uint64_t head;
	int rc;

	if ((rc = store_head(s, origin, &head, h)) < 0)
		return rc;
	if (size > head) {
		store_set_error(s, "the log holds %llu changesets of that origin, not %llu",
		                (unsigned long long)head, (unsigned long long)size);
		return LOKET_E_NOT_FOUND;
	}
	return 0;
}

int store_tree_root(struct store *s, const uint8_t origin[32], uint64_t size, uint8_t root[32])
{
	struct tree_ctx t = {s, origin};
	int rc;

	if ((rc = size_held(s, origin, size)) < 0)
		return rc;
	return merkle_root(tree_get, &t, size, root);
}

int store_tree_inclusion(struct store *s, const uint8_t origin[32], uint64_t seq, uint64_t size,
                         uint8_t proof[][32], size_t *count)
{
	struct tree_ctx t = {s, origin};
	int rc;

	*count = 0;
	if (seq == 0 || seq > size) {
		store_set_error(s, "seq %llu is not in a tree of %llu", (unsigned long long)seq,
		                (unsigned long long)size);
		return -EINVAL;
	}
	if ((rc = size_held(s, origin, size)) < 0)
		return rc;
	return merkle_inclusion_proof(tree_get, &t, seq - 1, size, proof, count);
}

int store_tree_consistency(struct store *s, const uint8_t origin[32], uint64_t m, uint64_t n,
                           uint8_t proof[][32], size_t *count)
{
	struct tree_ctx t = {s, origin};
	int rc;

	*count = 0;
	if (m > n) {
		store_set_error(s, "no consistency proof from %llu down to %llu",
		                (unsigned long long)m, (unsigned long long)n);
		return -EINVAL;
	}
	if ((rc = size_held(s, origin, n)) < 0)
		return rc;
	return merkle_consistency_proof(tree_get, &t, m, n, proof, count);
}

/* Frontier callback of the migration: every node of two leaves or more is written. */
struct build {
	struct store *s;
	const uint8_t *origin;
	int rc;
};

static void build_done(void *arg, unsigned level, uint64_t idx, const uint8_t hash[32])
{
	struct build *b = arg;

	if (level > 0 && b->rc == 0)
		b->rc = put_node(b->s, b->origin, level, idx, hash);
}

int store_tree_build(struct store *s)
{
	sqlite3_stmt *st;
	struct merkle_frontier f;
	uint8_t origin[32];
	struct build b = {s, origin, 0};
	int step, have = 0;
	uint64_t want = 1;

	if (sqlite3_prepare_v2(
	        s->db,
	        "SELECT c.origin, c.seq, c.hash FROM changeset c JOIN head h"
	        " ON h.origin = c.origin AND c.seq <= h.seq ORDER BY c.origin, c.seq",
	        -1, &st, NULL) != SQLITE_OK)
		return store_sqlite_fail(s, "cannot read the changesets for the log tree");
	while (b.rc == 0 && (step = sqlite3_step(st)) == SQLITE_ROW) {
		const uint8_t *o = sqlite3_column_blob(st, 0);
		uint64_t seq = (uint64_t)sqlite3_column_int64(st, 1);

		if (sqlite3_column_bytes(st, 0) != 32 || sqlite3_column_bytes(st, 2) != 32)
			continue;
		if (!have || memcmp(o, origin, 32) != 0) {
			memcpy(origin, o, 32);
			merkle_frontier_init(&f);
			have = 1;
			want = 1;
		}
		if (seq != want) {
			store_set_error(s, "the log of an origin has no seq %llu below its head",
			                (unsigned long long)want);
			b.rc = LOKET_E_DAMAGED;
			break;
		}
		want++;
		if (merkle_frontier_append(&f, sqlite3_column_blob(st, 2), build_done, &b) < 0)
			b.rc = -EOVERFLOW;
	}
	sqlite3_finalize(st);
	if (b.rc == 0 && step != SQLITE_DONE)
		return store_sqlite_fail(s, "cannot read the changesets for the log tree");
	return b.rc;
}

static double seconds(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int store_tree_migrate(struct store *s, const char *path, char *err, size_t errlen)
{
	long long n = 0;
	double t0 = seconds();
	int rc;

	if (sqlite3_exec(s->db, "BEGIN IMMEDIATE", NULL, NULL, NULL) != SQLITE_OK ||
	    sqlite3_exec(s->db, store_tree_sql, NULL, NULL, NULL) != SQLITE_OK ||
	    sqlite3_exec(s->db, store_tlog_sql, NULL, NULL, NULL) != SQLITE_OK)
		goto fail;
	if ((rc = store_tree_prepare(s, 4)) < 0 || (rc = store_tree_build(s)) < 0) {
		snprintf(err, errlen, "cannot upgrade store %s to schema version 4: %s", path,
		         s->err);
		sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
		store_tree_finalize(s);
		return rc;
	}
	store_tree_finalize(s);
	if (sqlite3_exec(s->db, "PRAGMA user_version = 4; COMMIT", NULL, NULL, NULL) != SQLITE_OK)
		goto fail;
	{
		sqlite3_stmt *st;

		if (sqlite3_prepare_v2(s->db, "SELECT count(*) FROM changeset", -1, &st, NULL) ==
		        SQLITE_OK &&
		    sqlite3_step(st) == SQLITE_ROW)
			n = sqlite3_column_int64(st, 0);
		sqlite3_finalize(st);
	}
	log_info("store: %s upgraded to schema version 4 (each origin's log tree, made from %lld"
	         " changesets in %.1f s)",
	         path, n, seconds() - t0);
	return 0;
fail:
	snprintf(err, errlen, "cannot upgrade store %s to schema version 4: %s", path,
	         sqlite3_errmsg(s->db));
	sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
	return LOKET_E_STORE;
}
