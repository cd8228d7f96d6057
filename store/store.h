/*
 * The store: one SQLite database (WAL) holding the signed changesets exactly
 * as received, the heads of every origin, fork evidence, the materialized
 * entities and the state digest. The FTS5 index over the entities' text is
 * derived data in a file of its own (STORE-index), kept up to date off the
 * write path by an indexer thread (store_index.h); reads that use it wait
 * until it holds every write committed before them.
 *
 * State is a pure function of the changesets: each entity is the fold of
 * its owner's ops in seq order (proto/FORMAT.md, "Replay"). Entity fields
 * are kept as the JSON text that store_json.c writes straight from the
 * ops' msgpack (FORMAT.md, "The entity text": compact, keys sorted
 * bytewise, lower-case \u00xx escapes, floats as %.17g; not jansson's
 * dump, which differs in both), so the same changesets give byte-identical
 * rows on every node.
 *
 * State digest: each entity row has digest SHA-256(coll 0x00 owner(32) id
 * 0x00 deleted(1 byte) fields-text); the state is committed to by the
 * LtHash16 sum of the lane vectors of every row's digest (2048 16-bit
 * lanes from ChaCha20, proto/lthash.h), kept in the digest table in the
 * same transaction as every change and recomputable from scratch; the
 * state digest shown is SHA-256 of the sum's 4096 bytes.
 *
 * Owners and origins are 32-byte public keys; reads show them by the name
 * the member table gives (the daemon fills it from the roster), else base64.
 *
 * The store is used by loketd (read-write) and by the offline commands of
 * loket (verify opens it read-only). A read-write open starts the indexer
 * thread; a read-only one starts no thread and leaves the index alone
 * (store_search fails, and so does the broker's match in desk/, which reads
 * the index). Otherwise one thread calls the store.
 */
#ifndef LOKET_STORE_H
#define LOKET_STORE_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "proto/bundle.h"
#include "proto/changeset.h"

#define STORE_SCHEMA_VERSION 4

enum store_flags {
	STORE_CREATE = 1 << 0,   /* create the file and schema if missing */
	STORE_READONLY = 1 << 1, /* open read-only (offline verify, reads); no index */
	/*
	 * With STORE_READONLY: SQLite's immutable=1. Nothing is created beside
	 * the file (no -wal, no -shm) and no lock is taken, so it works on
	 * read-only media; for a file that nothing writes meanwhile and whose
	 * WAL is absent or empty (an immutable open does not read a WAL).
	 */
	STORE_IMMUTABLE = 1 << 2,
};

struct store;

/*
 * A read-write open checks an existing store before anything is written:
 * PRAGMA quick_check, and the full integrity_check when a write-ahead log
 * with frames lay beside the file (left by a process that did not close
 * the store, or by the store that was there before the file was replaced,
 * which damages it), and that every head names a changeset held. A damaged
 * store is refused with LOKET_E_DAMAGED and err saying what was found and
 * how to restore a backup. A read-only open checks nothing (verify audits).
 */
int store_open(const char *path, unsigned flags, struct store **out, char *err, size_t errlen);
void store_close(struct store *s);

/*
 * Checks a store file that nobody has open, as `loket restore` does before
 * it puts a backup in place: a loket store of a schema version this program
 * knows, that passes PRAGMA integrity_check and whose heads name changesets
 * it holds. The file is read as it is: a log beside it is neither read nor
 * made. 0, or a negative code with err naming the file and what failed.
 */
int store_check_file(const char *path, char *err, size_t errlen);

/* The last SQLite error message, for logs. */
const char *store_errmsg(const struct store *s);

/* Records the display name of a member key (from the roster). */
int store_set_member(struct store *s, const uint8_t key[32], const char *name);
/* Key of a member by display name; LOKET_E_NOT_FOUND if unknown. */
int store_member_key(struct store *s, const char *name, uint8_t key[32]);

/*
 * Transactions. Every append happens inside one; store_commit is durable
 * (synchronous=FULL) when it returns 0, so a caller may acknowledge then.
 */
int store_begin(struct store *s);
int store_commit(struct store *s);
void store_rollback(struct store *s);

/* Highest contiguous seq of origin and its hash; seq 0 and zero hash if none. */
int store_head(struct store *s, const uint8_t origin[32], uint64_t *seq, uint8_t hash[32]);

/*
 * Appends a decoded changeset (its signature already verified by the
 * caller) and applies its ops, inside the current transaction. hash is the
 * changeset's hash when the caller has it (the receive path makes it on
 * the thread pool), NULL to have it made here. Returns:
 *   0                   appended and applied
 *   1                   already held, byte-identical (nothing done)
 *   LOKET_E_FORK        a different changeset is held for (origin, seq):
 *                       the two are a fork proof, which the caller records
 *                       with store_fork_record once this transaction ends
 *   LOKET_E_FROZEN      the origin holds a fork proof: nothing at or after
 *                       its seq is taken
 *   LOKET_E_BAD_SEQ     seq is not head+1 (a gap)
 *   LOKET_E_BAD_PREV    prev is not the hash of seq-1: the origin signed
 *                       another seq-1 than the one held (a fork the caller
 *                       proves by fetching that one)
 *   LOKET_E_STORE       SQLite failed; roll the transaction back
 * Nothing is written unless it returns 0, and all but LOKET_E_STORE are
 * found before anything is written, so the transaction may go on. After
 * LOKET_E_STORE the transaction must be rolled back; store_commit refuses
 * it. Outside store_begin an append is its own transaction. store_errmsg
 * says more.
 */
int store_append(struct store *s, const uint8_t *bytes, size_t len, const struct changeset *cs,
                 const uint8_t hash[32]);

/*
 * This node's own writes, folded once: inside a transaction (store_begin),
 * store_apply_local applies each op of the changeset being built (its seq
 * and hlc) as soon as it is read, and says whether it changed anything
 * (*changed is 0 when a put sets only values already held and clears only
 * absent fields, or a del hits a deleted or absent entity; such an op is
 * left out of the changeset) and whether the entity was live before
 * (*live, may be NULL). Once signed, store_append_applied stores the
 * changeset of exactly the changing ops, with the checks of store_append
 * but without applying them again, and gives its hash. On any failure
 * roll the transaction back: ops applied for a changeset that was never
 * stored must go.
 */
int store_apply_local(struct store *s, const uint8_t owner[32], const struct op *op, uint64_t seq,
                      uint64_t hlc, int *changed, int *live);
int store_append_applied(struct store *s, const uint8_t *bytes, size_t len,
                         const struct changeset *cs, uint8_t hash[32]);

/*
 * The key history (store_keys.c, proto/FORMAT.md section 14). store_key_at
 * gives the key that must sign (origin, seq) as far as the changesets
 * held (inside a transaction, those appended in it) tell: the key named by
 * the last rotation record below seq, else origin itself.
 */
int store_key_at(struct store *s, const uint8_t origin[32], uint64_t seq, uint8_t key[32]);
/* Calls fn for every rotation held: origin, the first seq the key signs, the key; by origin, seq.
 */
typedef int store_key_fn(void *arg, const uint8_t origin[32], uint64_t from_seq,
                         const uint8_t key[32]);
int store_each_key(struct store *s, store_key_fn *fn, void *arg);

/* The current state digest: SHA-256 of the 4096-byte LtHash16 sum. */
int store_digest(struct store *s, uint8_t out[32]);

/*
 * Added for sync. The signed bytes of (origin, seq) as stored, in a new
 * malloc'd buffer the caller frees; LOKET_E_NOT_FOUND if not held.
 */
int store_changeset(struct store *s, const uint8_t origin[32], uint64_t seq, uint8_t **bytes,
                    size_t *len);
/* Calls fn for the head of every origin held (the version vector), in key
 * order; stops early and returns fn's value if fn returns nonzero. */
typedef int store_head_fn(void *arg, const uint8_t origin[32], uint64_t seq,
                          const uint8_t hash[32]);
int store_each_head(struct store *s, store_head_fn *fn, void *arg);

/*
 * Fork proofs (store_fork.c). A fork proof is two different changesets one
 * origin signed for one seq. The store keeps one per origin, of the lowest
 * seq seen, and freezes the origin there: only its changesets below that
 * seq are held and applied, its head is the one before, so every node
 * holding the proof holds the same state whichever branch it had taken.
 *
 * store_fork_seq: the seq of origin's proof, 0 if it has none.
 * store_fork_proof: its two changesets, in new buffers the caller frees
 * (ordered by hash); LOKET_E_NOT_FOUND if none.
 * store_fork_record: records a proof whose two changesets the caller has
 * decoded and checked (one origin, one seq, the federation, valid
 * signatures, different bytes). In a transaction of its own (call it
 * outside store_begin): it replaces a proof of a higher seq, drops the
 * origin's changesets from seq on, moves its head back and rebuilds the
 * state (the search index starts over). 0 when recorded, 1 when a proof of
 * that seq or a lower one is held already (nothing done).
 * store_each_fork: fn for each origin's proof, in key order.
 */
int store_fork_seq(struct store *s, const uint8_t origin[32], uint64_t *seq);
int store_fork_proof(struct store *s, const uint8_t origin[32], uint64_t *seq, uint8_t *bytes[2],
                     size_t len[2]);
int store_fork_record(struct store *s, const uint8_t origin[32], uint64_t seq, const uint8_t *a,
                      size_t la, const uint8_t *b, size_t lb);
typedef int store_fork_fn(void *arg, const uint8_t origin[32], uint64_t seq);
int store_each_fork(struct store *s, store_fork_fn *fn, void *arg);

/*
 * The log tree (store_tree.c): each origin's changesets 1..head as an
 * RFC 6962 tree (proto/merkle.h), leaf seq-1 = the changeset's hash, kept
 * as each changeset is stored, so that these cost O(log n) reads. size is
 * a tree size (a seq); each returns LOKET_E_NOT_FOUND beyond the origin's
 * head. Proofs go into proof (MERKLE_MAX_PROOF hashes of room), *count
 * says how many. inclusion: of seq (1..size) in the tree of size.
 */
int store_tree_root(struct store *s, const uint8_t origin[32], uint64_t size, uint8_t root[32]);
int store_tree_inclusion(struct store *s, const uint8_t origin[32], uint64_t seq, uint64_t size,
                         uint8_t proof[][32], size_t *count);
int store_tree_consistency(struct store *s, const uint8_t origin[32], uint64_t m, uint64_t n,
                           uint8_t proof[][32], size_t *count);

/*
 * Checkpoints (store_tlog.c); the daemon has verified every note it puts.
 * store_tlog_signed: the last (size, root) this node signed for origin
 * (its own log's checkpoint or its cosignature of a member's); size 0 and
 * a zero root if none. store_tlog_set_signed records it.
 * store_checkpoint_get: the latest checkpoint of origin, a signed note
 * with its cosignatures, in a new buffer; LOKET_E_NOT_FOUND if none.
 * store_checkpoint_put replaces it. store_each_checkpoint: fn for each, in
 * key order (seen: when it was stored, seconds since the epoch).
 * Split-view proofs: two checkpoints origin signed for one size with
 * different roots, one per origin (the lowest size). store_split_record
 * keeps one (0; 1 when one of that size or lower is held) and freezes the
 * origin at size as a fork proof freezes it (its changesets beyond size go,
 * the state is rebuilt; in a transaction of its own). store_split_get
 * gives its two notes in new buffers (note may be NULL).
 */
int store_tlog_signed(struct store *s, const uint8_t origin[32], uint64_t *size, uint8_t root[32]);
int store_tlog_set_signed(struct store *s, const uint8_t origin[32], uint64_t size,
                          const uint8_t root[32]);
int store_checkpoint_get(struct store *s, const uint8_t origin[32], uint8_t **note, size_t *len);
int store_checkpoint_put(struct store *s, const uint8_t origin[32], uint64_t size,
                         const uint8_t root[32], const uint8_t *note, size_t len);
typedef int store_checkpoint_fn(void *arg, const uint8_t origin[32], const uint8_t *note,
                                size_t len, int64_t seen);
int store_each_checkpoint(struct store *s, store_checkpoint_fn *fn, void *arg);
int store_split_record(struct store *s, const uint8_t origin[32], uint64_t size, const uint8_t *a,
                       size_t la, const uint8_t *b, size_t lb);
int store_split_get(struct store *s, const uint8_t origin[32], uint64_t *size, uint8_t *note[2],
                    size_t len[2]);
typedef int store_split_fn(void *arg, const uint8_t origin[32], uint64_t size);
int store_each_split(struct store *s, store_split_fn *fn, void *arg);

/*
 * Named integers kept in the store file's meta table (store_meta.c), for
 * facts about this store that must travel with it (a backup holds them).
 * get: LOKET_E_NOT_FOUND if key was never set. set: its own transaction
 * outside store_begin.
 */
int store_meta_get_int(struct store *s, const char *key, int64_t *out);
int store_meta_set_int(struct store *s, const char *key, int64_t v);

/*
 * Reads. Each returns a new JSON value in *out, in exactly the shape the
 * CLI prints with --json (see proto/CONTROL.md):
 *   entity:  {"coll","owner","id","fields":{...},"seq","hlc"}
 *            (deleted entities are not returned by get/list/search)
 */
int store_get(struct store *s, const char *coll, const char *id, const char *owner, json_t **out);
int store_list(struct store *s, const char *coll, const char *owner, long limit, json_t **out);
/* Ranked by bm25; each hit also carries "rank" (the negated bm25 score, so
 * higher is better) and "snippet" (matches in [brackets]). Any text is a
 * valid query: words are matched as terms, all must occur, "word*" is a
 * prefix. coll may be NULL; limit <= 0 means no limit (also for list/log). */
int store_search(struct store *s, const char *text, const char *coll, long limit, json_t **out);
/*
 * The words of a search text as store_search reads them (a repeat counts,
 * though it is looked up once): 0 with their number in *n, or LOKET_E_TOO_BIG with a sentence in
 * err when the text holds more than LOKET_MAX_SEARCH_WORDS of them or is longer than
 * LOKET_MAX_SEARCH_BYTES (store_search refuses those the same way), or
 * LOKET_E_BAD_REQUEST for a prefix word shorter than LOKET_MIN_SEARCH_PREFIX.
 */
int store_search_words(const char *text, size_t *n, char *err, size_t errlen);
/* Newest first: {"origin","seq","hash","hlc","ops","bytes"}. */
int store_log(struct store *s, const char *origin, long limit, json_t **out);
/* {"heads":{NAME:{"seq","hash"}},"counts":{COLL:N},"entities":N,"changesets":N,
 *  "digest":"hex","forks":[{"origin","seq","hashes":[...]}],
 *  "index":{"behind":N}}: behind counts the entity writes the search index
 *  does not hold yet ("index" only when the store was opened read-write). */
int store_status(struct store *s, json_t **out);

/*
 * Following the store from outside (store_changes.c); cursors are opaque
 * base64url text. store_page: one page of the live entities of coll (of
 * owner, if given) in (id, owner) order, strictly after the cursor after
 * (NULL: from the start), at most limit of them and about 1 MiB;
 * *out = {"entities":[...],"next":CURSOR or null}, next null on the last
 * page. store_changes: the change feed, the latest state of every entity
 * written after the cursor since (NULL: from the start), in the order of
 * those writes, each entity with "deleted" (a tombstone has true);
 * filtered by coll and owner when given; at most limit entities and about
 * 1 MiB, and at most 20,000 rows examined; *out = {"changes":[...],
 * "cursor":CURSOR,"more":bool}, more true when it stopped at a bound (ask
 * again at once). A malformed cursor is LOKET_E_MALFORMED; one of another
 * store, of a state rebuilt since, or beyond the store (restored from an
 * older copy) is LOKET_E_GONE. store_errmsg says why.
 */
int store_page(struct store *s, const char *coll, const char *owner, const char *after, long limit,
               json_t **out);
int store_changes(struct store *s, const char *since, const char *coll, const char *owner,
                  long limit, json_t **out);

/*
 * A time budget for the reads between store_budget_begin and
 * store_budget_end (store_budget.c), so that one read cannot hold the
 * thread that serves everything else. SQLite's progress handler stops a
 * statement still running ms milliseconds after the begin (ms 0: no time
 * bound), or once a stop signal came (common/interrupt.h); the read then
 * fails, and store_budget_end says why. A read waits for the search index
 * at most ms too (else STORE_INDEX_WAIT_MS). Writes are not bounded.
 */
enum store_budget_end {
	STORE_BUDGET_KEPT = 0,    /* nothing was stopped */
	STORE_BUDGET_TIME = 1,    /* a statement ran past the budget */
	STORE_BUDGET_STOPPED = 2, /* a statement was stopped for a stop signal */
};
void store_budget_begin(struct store *s, int ms);
int store_budget_end(struct store *s);

/*
 * Read-only SQL (store_query.c) on a second, read-only connection with one
 * TEMP view per collection. *out = {"columns":[...],"rows":[[...]],
 * "truncated":bool}; at most limit rows (<= 0 or above the maximum: the
 * maximum). Anything but one read statement is refused with
 * LOKET_E_BAD_REQUEST; a query past the time bound gets LOKET_E_TOO_BIG.
 * store_errmsg says why.
 */
#define STORE_QUERY_MAX_ROWS 10000
#define STORE_QUERY_MAX_MS   2000
int store_query(struct store *s, const char *sql, long limit, json_t **out);
/* store_query stopped after ms (at most STORE_QUERY_MAX_MS) instead. */
int store_query_for(struct store *s, const char *sql, long limit, int ms, json_t **out);

/*
 * Recreates every entity and the digest from the changesets, in one
 * transaction; at its commit the search index starts over and is built
 * again by the indexer.
 */
int store_rebuild(struct store *s);

/*
 * Online backup into a new file (store_backup.c), through this connection
 * and a few pages at a time, so that the caller serves other work between
 * steps: everything committed before store_backup_start is in the copy,
 * and so is whatever this connection commits until the last step. In
 * order:
 *   store_backup_start   refuses a path that exists (LOKET_E_EXISTS), and
 *                        a path.tmp that exists (another backup's); makes
 *                        path.tmp
 *   store_backup_step    copies up to pages pages: 0 while more remain, 1
 *                        when the copy is complete, negative on failure
 *   store_backup_end     after the last step: ends the copy as one file
 *                        (a rollback-journal database, no log beside it);
 *                        the store is not used after this
 *   store_backup_commit  syncs the copy, moves it to path (never replacing
 *                        a file that appeared there) and syncs the
 *                        directory; it touches only those files, so it may
 *                        run on another thread
 *   store_backup_free    at any point; removes path.tmp unless committed
 *                        (before store_backup_end, on the store's thread)
 * Each failure says in err which file and what failed.
 */
struct store_backup;
int store_backup_start(struct store *s, const char *path, struct store_backup **out, char *err,
                       size_t errlen);
int store_backup_step(struct store_backup *b, int pages, char *err, size_t errlen);
int store_backup_end(struct store_backup *b, char *err, size_t errlen);
int store_backup_commit(struct store_backup *b, char *err, size_t errlen);
void store_backup_free(struct store_backup *b);
/* Pages of the store as the last step saw them; bytes of the copy once committed. */
long long store_backup_pages(const struct store_backup *b);
long long store_backup_bytes(const struct store_backup *b);

/*
 * Offline audit of a whole store: every signature, chain link and seq,
 * roster membership (when roster is not NULL: an array of base64 keys),
 * forks, and the state digest recomputed from scratch by replaying the log,
 * compared with the stored digest and the stored entities. *report gets
 * {"ok":bool,"changesets":N,"ops":N,"digest":"hex","problems":[{"origin",
 * "seq","problem"}]} (origin and seq are null for problems of the whole
 * store, such as a digest mismatch). Returns 0 if the audit ran (whatever
 * it found).
 */
int store_verify(struct store *s, const json_t *roster, json_t **report);

/*
 * Audit bundles (store_bundle.c; proto/FORMAT.md, section 15).
 *
 * store_bundle_export writes, through fn, the bundle of what the store
 * holds as of one read transaction (a running node may write meanwhile):
 * the member table as the roster, the fork proofs, every changeset in
 * (origin, seq) order and the manifest with the stored state digest.
 * federation names the federation (NULL: that of the changesets; a store
 * without changesets then cannot be exported); revokes (n_revokes, any
 * order) the exporting node's revocations, written into the roster
 * entries of their members (version 2). *summary gets
 * {"changesets","ops","origins","members","forks","digest"}. store_errmsg
 * says why it failed.
 *
 * store_bundle_verify reads a bundle through fn and checks all of it with
 * no store: the framing, every roster entry, fork proof and changeset
 * (decoding, signature under the key the chain names for its seq,
 * rotation records, the roster's revocations, chain, federation,
 * membership of the bundle's roster), the state replayed from scratch, and every claim of the
 * manifest and the end record. *report gets {"ok","federation","members",
 * "roster":[{"name","key","revoke":[[KEY,AFTER]] (version 2 entries)}],
 * "origins","changesets","ops","entities","digest","forks":[{"origin",
 * "seq","hashes"}],"problems":[{"section","origin","seq","problem"}]};
 * section is a section's name, "manifest" or "end", origin and seq null
 * when not known. A fork proof that holds is a finding, not a problem.
 * Returns 0 when the check ran, whatever it found.
 */
struct store_bundle_revokes {
	uint8_t origin[32];
	size_t n;
	struct bundle_revoke revoked[BUNDLE_MAX_REVOKES];
};
int store_bundle_export(struct store *s, const char *federation,
                        const struct store_bundle_revokes *revokes, size_t n_revokes,
                        bundle_write_fn *fn, void *arg, json_t **summary);
int store_bundle_verify(bundle_read_fn *fn, void *arg, json_t **report);

/*
 * Inclusion proofs (store_proof.c; proto/FORMAT.md, section 15.6).
 * store_prove: the proof, as one JSON object, of the changesets of owner
 * (a member's name or a base64 key) that have an op on its entity
 * coll/id, or (coll NULL) of its changeset seq alone, against the latest
 * checkpoint of owner the store holds; LOKET_E_NOT_FOUND (store_errmsg
 * says why) when the entity, the changeset or a checkpoint that covers
 * it is not held. store_proof_verify checks a proof with no store; with
 * pinned keys (n_pinned > 0) the origin must be one of them and only
 * their cosignatures count. *report {"ok","federation","origin","size",
 * "root","cosigned","cosigners":[base64],"keys_pinned","changesets","rotations",
 * "problems":[sentence]}.
 */
#define STORE_PROOF_MAX_CHANGESETS 1024u
int store_prove(struct store *s, const char *coll, const char *owner, const char *id, uint64_t seq,
                json_t **proof);
int store_proof_verify(const json_t *proof, const uint8_t (*pinned)[32], size_t n_pinned,
                       json_t **report);

#endif
