/*
 * Inside the store: the struct behind struct store, and the apply code that
 * folds ops into entity rows. It is shared by store_append, store_rebuild
 * and the scratch replay of store_verify, so all three compute state the
 * same way. Only the store's own files include this one; the parts built
 * on the store (desk/) read it through store/store_sql.h.
 */
#ifndef LOKET_STORE_INT_H
#define LOKET_STORE_INT_H

#include <stddef.h>
#include <stdint.h>

#include <sodium.h>
#include <sqlite3.h>

#include "proto/changeset.h"
#include "proto/limits.h"
#include "proto/lthash.h"
#include "proto/sha256.h"
#include "store/store.h"
#include "store/store_ckpt.h"
#include "store/store_index.h"
#include "store/store_sql.h"

#define STORE_ERR_MAX 256

/*
 * An LtHash16 sum (proto/lthash.h) kept up to date mostly off the calling
 * thread: 4096 bytes of ChaCha20 per entity digest is most of what a new
 * entity costs, so changes are queued in batches, which a thread of the
 * sum's own expands and adds up; the caller never waits for it, and does
 * a batch itself when too many wait. One
 * thread calls these. store_lanes_get folds in everything queued: the sum
 * is whole only then.
 */
struct store_lanes {
	struct lthash sum;
	struct lanes_queue *q;
};

/* The empty set; store_lanes_fini stops the thread and frees the batches. */
void store_lanes_init(struct store_lanes *l);
void store_lanes_fini(struct store_lanes *l);
/* Queues a change: the element new_d in, and old (unless NULL) out. */
void store_lanes_change(struct store_lanes *l, const uint8_t *old, const uint8_t new_d[32]);
/* The whole sum, once everything queued is in. */
const struct lthash *store_lanes_get(struct store_lanes *l);
/* Drops what is queued and makes the sum *sum (NULL: the empty set). */
void store_lanes_set(struct store_lanes *l, const struct lthash *sum);

/* Growable byte buffer; store_buf_put leaves a NUL after its bytes. */
struct store_buf {
	char *p;
	size_t n;
	size_t cap;
};

/* Appends len bytes of p (aborts when memory runs out, as the store's buffers do). */
void store_buf_put(struct store_buf *b, const void *p, size_t len);

/*
 * Entity fields as JSON text: merges the put op's canonical msgpack map
 * into old (the stored JSON object text, NULL for none) into out, which
 * gets the NUL-terminated result: keys sorted bytewise, compact, UTF-8
 * kept. A nil value removes its key. LOKET_E_MALFORMED on bad input.
 */
int store_json_merge(struct store_buf *out, const char *old, size_t old_len, const uint8_t *fields,
                     size_t fields_len);

/*
 * The text the FTS index holds for an entity: every string value of its
 * fields JSON (keys left out), one per line, into b (NUL-terminated).
 */
void store_fts_text(struct store_buf *b, const char *json, size_t len);

/* The statements that apply ops to one database's entity table. */
/* Live entities of one collection, or a change to that number. */
struct coll_count {
	char coll[LOKET_MAX_COLL_LEN + 1];
	long long n;
};

/* A small set of them, one per collection met (collections are few). */
struct coll_counts {
	struct coll_count *c;
	size_t n, cap;
};

/* Adds delta to coll's number (coll_len bytes), adding coll if it is new. */
void coll_counts_add(struct coll_counts *cc, const char *coll, size_t coll_len, long long delta);

struct store_apply {
	sqlite3 *db;
	sqlite3_stmt *ent_get; /* rowid, fields, deleted, digest by (coll, owner, id) */
	sqlite3_stmt *ent_ins;
	sqlite3_stmt *ent_upd;
	struct store_lanes lanes; /* the LtHash16 sum of every entity row's digest */
	int digest_dirty;         /* lanes changed since they were last written */
	int64_t ver;              /* the last entity ver given; each write takes the next */
	int last_live;            /* the last op's entity existed, not deleted */
	int guess_new;            /* puts have been creating entities: insert before looking */
	struct coll_counts
	    live; /* this transaction's changes to the live entities per collection */
	struct store_buf fields; /* reused: serialized fields */
};

struct store {
	sqlite3 *db;
	unsigned flags;
	struct store_apply apply;
	sqlite3_stmt *head_get;
	sqlite3_stmt *head_put;
	sqlite3_stmt *cs_hash;
	sqlite3_stmt *cs_ins;
	sqlite3_stmt *fork_any;
	sqlite3_stmt *digest_get; /* NULL while the sum is derived (digest_derived) */
	sqlite3_stmt *digest_put;
	sqlite3_stmt *sp_begin;
	sqlite3_stmt *sp_release;
	sqlite3_stmt *sp_rollback;
	sqlite3_stmt *tx_begin;
	sqlite3_stmt *tx_commit;
	sqlite3_stmt *tx_rollback;
	sqlite3_stmt *member_name;
	sqlite3_stmt *tree_get; /* store_tree.c: a node of the log tree */
	sqlite3_stmt *tree_put;
	sqlite3_stmt *split_size; /* store_tlog.c: the size of an origin's split-view proof */
	int tree_table;           /* schema 4: the tree and checkpoint tables are there */
	sqlite3_stmt *key_at;     /* store_keys.c; NULL without the key_history table */
	sqlite3_stmt *key_used;
	sqlite3_stmt *key_ins;
	int keys_table;            /* schema 4 or later: the key_history table is there */
	struct store_index *index; /* NULL in a read-only store */
	struct store_ckpt *ckpt;   /* NULL in a read-only store */
	int64_t committed_ver;     /* the highest entity ver committed */
	int index_reset;           /* a rebuild awaits its commit to reset the index */
	uint8_t id[16];            /* the store's identity, also kept by its index */
	int spoiled;               /* an append failed half way: the transaction must roll back */
	int digest_derived;        /* schema 2, read-only: no digest table; the sum is recomputed */
	int derived_stale;         /* ... and is to be made again before it is read */
	/*
	 * Live entities per collection as committed, for status without a
	 * scan of every entity: counted once, then kept up by each commit's
	 * apply.live. counts_known is 0 until the first count, and again
	 * after a rebuild.
	 */
	struct coll_counts counts;
	int counts_known;
	/* The time budget of the reads under way (store_budget.c); deadline 0: none. */
	struct {
		int active;
		long long deadline_ms;
		int ms;
		int waited;  /* for the search index, once */
		int ran_out; /* enum store_budget_end */
	} budget;
	char err[STORE_ERR_MAX];
};

/*
 * SQL creating the entity table. ver is a store-wide counter given to every
 * insert and update of an entity, so the indexer (store_index.c) finds
 * what changed since its watermark.
 */
extern const char store_entity_sql[];

/* The key history (store_keys.c): creation, its table added to a schema 3 store (store_tree_migrate
 * then sets version 4), statements. */
extern const char store_keys_sql[];
int store_keys_migrate(struct store *s, const char *path, char *err, size_t errlen);
int store_keys_prepare(struct store *s, long long version);
void store_keys_fini(struct store *s);
/* Before anything of cs is written: a rotation record may not name a key of the origin's past. */
int store_keys_check(struct store *s, const struct changeset *cs);
/* With cs's rows: the key history row of a rotation record. */
int store_keys_note(struct store *s, const struct changeset *cs);

/*
 * A chain's keys as a verifier walks it (FORMAT.md, 14.2), with no store:
 * signer is the key at the next seq; keys every key the chain has had.
 * store_keychain_rotate follows a rotation record whose signature
 * verified under signer: LOKET_E_MALFORMED (nothing changed) if it names a
 * key the chain has had. Used by store_verify, the bundle check and the
 * proof check, so that the three follow one rule.
 */
struct store_keychain {
	uint8_t signer[32];
	uint8_t (*keys)[32];
	size_t n, cap;
};
void store_keychain_start(struct store_keychain *kc, const uint8_t origin[32]);
int store_keychain_rotate(struct store_keychain *kc, const uint8_t key[32]);
void store_keychain_free(struct store_keychain *kc);

/* Prepares the apply statements on db; a->ver starts at 0 (set it after). */
int store_apply_init(struct store_apply *a, sqlite3 *db, char *err, size_t errlen);
void store_apply_fini(struct store_apply *a);

/*
 * The state transition itself: the entity after op, given whether it
 * exists, is a tombstone and its fields (old). *new_fields points into buf
 * or to a constant. *unchanged when op leaves it as it is.
 */
int store_apply_fold(struct store_buf *buf, int exists, int old_deleted, const char *old,
                     size_t old_len, const struct op *op, int *new_deleted, const char **new_fields,
                     size_t *new_len, int *unchanged, char *err, size_t errlen);

/*
 * The state digest as the store keeps it (store_digest.c): the table that
 * holds the 4096-byte LtHash16 sum, its statements, the upgrade of a
 * schema 2 store (whose digest was a XOR) and the sum made afresh from
 * the entity rows' digests.
 */
extern const char store_digest_sql[];
/* Prepares digest_get and digest_put, or sets digest_derived on a read-only schema 2 store. */
int store_digest_prepare(struct store *s, long long version);
/* Reads the stored sum into s->apply.lanes (dropping what is queued), as of the current read. */
int store_load_digest(struct store *s);
/* The whole sum as it stands (on a read-only schema 2 store, made from the rows first). */
int store_digest_sum(struct store *s, const struct lthash **sum);
/* Writes s->apply.lanes into the digest table, inside the current transaction. */
int store_digest_write(struct store *s);
/* Upgrades a store of schema 2 to 3 in one transaction: the sum made from the entities. */
int store_digest_migrate(struct store *s, const char *path, char *err, size_t errlen);
/* The sum over the digest column of every entity row of db; *n gets the rows. */
int store_digest_of_entities(sqlite3 *db, struct lthash *out, long long *n);

/*
 * Applies op as written by owner in changeset (seq, hlc). With dry set it
 * only computes *changed. An op that would leave the entity as it is
 * writes nothing (*changed 0).
 */
/*
 * Freezes every origin that a store from before fork proofs left with a
 * single rival changeset, or with changesets at or after its fork
 * (store_fork.c); at a read-write open.
 */
int store_fork_normalize(struct store *s);

/*
 * The log tree (store_tree.c) and the checkpoint tables (store_tlog.c) of
 * schema 4. store_tree_sql and store_tlog_sql create them (a new store
 * runs both; store_tree_migrate takes a store of schema 3 to 4 and builds
 * every origin's tree from the changesets held). store_tree_append adds
 * the leaf of (origin, seq) inside the append's transaction;
 * store_tree_truncate drops the nodes that cover leaves beyond size.
 */
extern const char store_tree_sql[];
extern const char store_tlog_sql[];
int store_tree_prepare(struct store *s, long long version);
void store_tree_finalize(struct store *s);
int store_tree_append(struct store *s, const uint8_t origin[32], uint64_t seq,
                      const uint8_t hash[32]);
int store_tree_truncate(struct store *s, const uint8_t origin[32], uint64_t size);
int store_tree_build(struct store *s);
int store_tree_migrate(struct store *s, const char *path, char *err, size_t errlen);
/* The size a split-view proof freezes origin at; UINT64_MAX when it has none. */
int store_split_frozen(struct store *s, const uint8_t origin[32], uint64_t *size);

int store_apply_op(struct store_apply *a, const uint8_t owner[32], const struct op *op,
                   uint64_t seq, uint64_t hlc, int dry, int *changed, char *err, size_t errlen);

/*
 * Decodes one stored changeset (held under origin and seq) and applies its
 * ops into a; *n_ops gets their count. The signature is not checked here.
 */
int store_replay(struct store_apply *a, const uint8_t *bytes, size_t len, const uint8_t origin[32],
                 uint64_t seq, size_t *n_ops, char *err, size_t errlen);

/*
 * Called by store_rebuild inside its savepoint, before the rows are made
 * anew: feed cursors up to the current ver no longer resume (store_changes.c).
 */
int store_changes_note_rebuild(struct store *s);

/* The entity digest (proto/FORMAT.md, section 7.1). */
void store_entity_digest(const char *coll, size_t coll_len, const uint8_t owner[32], const char *id,
                         size_t id_len, int deleted, const char *fields, size_t fields_len,
                         uint8_t out[32]);

/*
 * The integrity check of an open store (store_check.c): PRAGMA quick_check,
 * or integrity_check when thorough, then every head against the changeset
 * it names. 0; LOKET_E_DAMAGED with err saying what was found (without the
 * file's name); LOKET_E_STORE when SQLite could not run the check.
 */
int store_check_db(sqlite3 *db, int thorough, char *err, size_t errlen);

/* Whether the write-ahead log beside the store file path holds frames. */
int store_wal_has_frames(const char *path);

/*
 * A scratch state replayed from changesets with the store's own fold
 * (store_verify.c): the offline audits, of a store and of a bundle
 * (store_bundle.c), replay into one, in memory, and sum it once at the
 * end. store_scratch_op applies one op of owner's changeset seq; the sum
 * is the LtHash16 sum of every entity made (w, if not NULL, helps).
 */
struct store_scratch;
struct worker;
struct store_scratch *store_scratch_new(void);
void store_scratch_free(struct store_scratch *sc);
int store_scratch_op(struct store_scratch *sc, const uint8_t owner[32], const struct op *op,
                     uint64_t seq, char *err, size_t errlen);
size_t store_scratch_count(const struct store_scratch *sc);
void store_scratch_sum(const struct store_scratch *sc, struct worker *w, struct lthash *out);

/* Lowercase hex of 32 bytes, as a new JSON string. */
json_t *store_hex_json(const uint8_t b[32]);

#endif
