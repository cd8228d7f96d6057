/*
 * The full-text index, kept off the write path. It lives in its own SQLite
 * file next to the store (STORE-index, WAL, synchronous=NORMAL): a regular
 * FTS5 table search(text, coll UNINDEXED) whose rowid is the entity's rowid,
 * and a meta table with the store's id and the watermark, the highest
 * entity ver indexed, written in the same transaction as the FTS changes.
 *
 * An indexer thread with its own connection (the index file as main, the
 * store attached; its transactions write only the index file, so they never
 * take the store's write lock) folds every entity with ver above the
 * watermark into the index, a batch per transaction, then sleeps until the
 * writer announces a new commit. Readers (on the loop thread) wait until the
 * watermark reaches the ver they saw committed, then query through a
 * read-only connection of their own with the store attached.
 *
 * The index is derived data: one that is missing, unreadable, from another
 * store or ahead of the store's vers is deleted and built again. Only the
 * store's own files (store/) include this one.
 */
#ifndef LOKET_STORE_INDEX_H
#define LOKET_STORE_INDEX_H

#include <stddef.h>
#include <stdint.h>

#include <sqlite3.h>

/* Entities indexed per transaction of the indexer. */
#define STORE_INDEX_BATCH 2000
/* The indexer thread's nice value. */
#define STORE_INDEX_NICE 19
/* How long a read waits for the index to catch up before it answers anyway. */
#define STORE_INDEX_WAIT_MS 3000

struct store_index;

/*
 * Opens (creating, or deleting and recreating when it does not belong to
 * this store) the index of the store at store_path, whose id is store_id
 * and whose highest committed entity ver is ver, and starts the indexer.
 */
int store_index_start(const char *store_path, const uint8_t store_id[16], int64_t ver,
                      struct store_index **out, char *err, size_t errlen);
/* Stops the indexer and closes the index; NULL is a no-op. */
void store_index_stop(struct store_index *ix);

/* The writer committed every entity up to ver: wakes the indexer. */
void store_index_publish(struct store_index *ix, int64_t ver);

/*
 * Waits until the index holds every entity up to ver, at most wait_ms
 * (STORE_INDEX_WAIT_MS, or a read's budget) and not past a stop signal
 * (then logs at debug level and returns 1; the index is read as it is). 0
 * when caught up.
 */
#define STORE_INDEX_SLICE_MS 10
int store_index_wait(struct store_index *ix, int64_t ver, int wait_ms);

/* The highest entity ver the index holds. */
int64_t store_index_watermark(struct store_index *ix);

/* Whether the indexer's last batch failed (a full disk, say): it is not catching up. */
int store_index_failing(struct store_index *ix);

/* The read-only connection for queries (loop thread only): main.search, store.entity. */
sqlite3 *store_index_reader(struct store_index *ix);

/*
 * Empties the index (watermark 0) so that every entity is indexed again,
 * with the indexer stopped meanwhile; for store_rebuild.
 */
int store_index_reset(struct store_index *ix, char *err, size_t errlen);

#endif
