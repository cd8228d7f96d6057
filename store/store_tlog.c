/*
 * store_tlog: what the store keeps of the witnessed logs (store.h,
 * "Checkpoints"). Three tables, all keyed by origin, so none grows beyond
 * one row per origin:
 *
 *   tlog_signed  the last (size, root) this node signed for an origin: a
 *                checkpoint of its own log, or its cosignature of a
 *                member's; it never signs one that is not consistent with
 *                this row
 *   checkpoint   the latest checkpoint of each origin as a signed note,
 *                with every cosignature seen for it merged in
 *   split        a split-view proof: two checkpoints the origin signed for
 *                one size with two roots. Like a fork proof it freezes the
 *                origin: only its changesets 1..size are held and taken.
 *
 * The store checks no signature: the daemon verifies notes before it puts
 * them here. A read-only store of schema 3 has none of these tables and
 * answers as a store that holds nothing in them.
 */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "proto/error.h"
#include "store/store_int.h"

const char store_tlog_sql[] =
    "CREATE TABLE tlog_signed(origin BLOB PRIMARY KEY, size INTEGER NOT NULL,"
    " root BLOB NOT NULL, time INTEGER NOT NULL) WITHOUT ROWID;"
    "CREATE TABLE checkpoint(origin BLOB PRIMARY KEY, size INTEGER NOT NULL,"
    " root BLOB NOT NULL, note BLOB NOT NULL, seen INTEGER NOT NULL) WITHOUT ROWID;"
    "CREATE TABLE split(origin BLOB PRIMARY KEY, size INTEGER NOT NULL, a BLOB NOT NULL,"
    " b BLOB NOT NULL, seen INTEGER NOT NULL) WITHOUT ROWID;";

/* A statement run once; what a failed prepare says. */
static int prep(struct store *s, const char *sql, sqlite3_stmt **st)
{
	return store_sql_prepare(s, sql, st, "cannot prepare a checkpoint statement");
}

int store_tlog_signed(struct store *s, const uint8_t origin[32], uint64_t *size, uint8_t root[32])
{
	sqlite3_stmt *st;
	int rc, step;

	*size = 0;
	memset(root, 0, 32);
	if (!s->tree_table)
		return 0;
	if ((rc = prep(s, "SELECT size, root FROM tlog_signed WHERE origin = ?1", &st)) < 0)
		return rc;
	sqlite3_bind_blob(st, 1, origin, 32, SQLITE_STATIC);
	step = sqlite3_step(st);
	if (step == SQLITE_ROW && sqlite3_column_bytes(st, 1) == 32) {
		*size = (uint64_t)sqlite3_column_int64(st, 0);
		memcpy(root, sqlite3_column_blob(st, 1), 32);
	}
	sqlite3_finalize(st);
	if (step != SQLITE_ROW && step != SQLITE_DONE)
		return store_sqlite_fail(s, "cannot read what this node signed");
	return 0;
}

int store_tlog_set_signed(struct store *s, const uint8_t origin[32], uint64_t size,
                          const uint8_t root[32])
{
	sqlite3_stmt *st;
	int rc;

	if (!s->tree_table)
		return LOKET_E_SCHEMA;
	if ((rc = prep(s,
	               "INSERT OR REPLACE INTO tlog_signed(origin, size, root, time)"
	               " VALUES(?1, ?2, ?3, ?4)",
	               &st)) < 0)
		return rc;
	sqlite3_bind_blob(st, 1, origin, 32, SQLITE_STATIC);
	sqlite3_bind_int64(st, 2, (sqlite3_int64)size);
	sqlite3_bind_blob(st, 3, root, 32, SQLITE_STATIC);
	sqlite3_bind_int64(st, 4, (sqlite3_int64)time(NULL));
	return store_sql_finish(s, st, "cannot record what this node signed");
}

int store_checkpoint_get(struct store *s, const uint8_t origin[32], uint8_t **note, size_t *len)
{
	sqlite3_stmt *st;
	int rc, step;

	*note = NULL;
	*len = 0;
	if (!s->tree_table)
		return LOKET_E_NOT_FOUND;
	if ((rc = prep(s, "SELECT note FROM checkpoint WHERE origin = ?1", &st)) < 0)
		return rc;
	sqlite3_bind_blob(st, 1, origin, 32, SQLITE_STATIC);
	step = sqlite3_step(st);
	if (step == SQLITE_ROW)
		*note = store_sql_blob(st, 0, len);
	sqlite3_finalize(st);
	if (step == SQLITE_DONE)
		return LOKET_E_NOT_FOUND;
	if (step != SQLITE_ROW)
		return store_sqlite_fail(s, "cannot read a checkpoint");
	return 0;
}

int store_checkpoint_put(struct store *s, const uint8_t origin[32], uint64_t size,
                         const uint8_t root[32], const uint8_t *note, size_t len)
{
	sqlite3_stmt *st;
	int rc;

	if (!s->tree_table)
		return LOKET_E_SCHEMA;
	if ((rc = prep(s,
	               "INSERT OR REPLACE INTO checkpoint(origin, size, root, note, seen)"
	               " VALUES(?1, ?2, ?3, ?4, ?5)",
	               &st)) < 0)
		return rc;
	sqlite3_bind_blob(st, 1, origin, 32, SQLITE_STATIC);
	sqlite3_bind_int64(st, 2, (sqlite3_int64)size);
	sqlite3_bind_blob(st, 3, root, 32, SQLITE_STATIC);
	sqlite3_bind_blob(st, 4, note, (int)len, SQLITE_STATIC);
	sqlite3_bind_int64(st, 5, (sqlite3_int64)time(NULL));
	return store_sql_finish(s, st, "cannot record a checkpoint");
}

int store_each_checkpoint(struct store *s, store_checkpoint_fn *fn, void *arg)
{
	sqlite3_stmt *st;
	int rc, step;

	if (!s->tree_table)
		return 0;
	if ((rc = prep(s, "SELECT origin, note, seen FROM checkpoint ORDER BY origin", &st)) < 0)
		return rc;
	rc = 0;
	while ((step = sqlite3_step(st)) == SQLITE_ROW) {
		if (sqlite3_column_bytes(st, 0) != 32)
			continue;
		rc = fn(arg, sqlite3_column_blob(st, 0), sqlite3_column_blob(st, 1),
		        (size_t)sqlite3_column_bytes(st, 1), sqlite3_column_int64(st, 2));
		if (rc != 0)
			break;
	}
	sqlite3_finalize(st);
	if (rc == 0 && step != SQLITE_DONE)
		return store_sqlite_fail(s, "cannot read the checkpoints");
	return rc;
}

int store_split_get(struct store *s, const uint8_t origin[32], uint64_t *size, uint8_t *note[2],
                    size_t len[2])
{
	sqlite3_stmt *st;
	int rc, step;

	*size = 0;
	if (note) {
		note[0] = note[1] = NULL;
		len[0] = len[1] = 0;
	}
	if (!s->tree_table)
		return LOKET_E_NOT_FOUND;
	if ((rc = prep(s, "SELECT size, a, b FROM split WHERE origin = ?1", &st)) < 0)
		return rc;
	sqlite3_bind_blob(st, 1, origin, 32, SQLITE_STATIC);
	step = sqlite3_step(st);
	if (step == SQLITE_ROW) {
		*size = (uint64_t)sqlite3_column_int64(st, 0);
		if (note) {
			note[0] = store_sql_blob(st, 1, &len[0]);
			note[1] = store_sql_blob(st, 2, &len[1]);
		}
	}
	sqlite3_finalize(st);
	if (step == SQLITE_DONE)
		return LOKET_E_NOT_FOUND;
	if (step != SQLITE_ROW)
		return store_sqlite_fail(s, "cannot read a split-view proof");
	return 0;
}

int store_split_frozen(struct store *s, const uint8_t origin[32], uint64_t *size)
{
	int step;

	*size = UINT64_MAX;
	if (!s->tree_table || !s->split_size)
		return 0;
	/* On every append: a statement prepared once. */
	sqlite3_bind_blob(s->split_size, 1, origin, 32, SQLITE_STATIC);
	step = sqlite3_step(s->split_size);
	if (step == SQLITE_ROW)
		*size = (uint64_t)sqlite3_column_int64(s->split_size, 0);
	sqlite3_reset(s->split_size);
	if (step != SQLITE_ROW && step != SQLITE_DONE)
		return store_sqlite_fail(s, "cannot read a split-view proof");
	return 0;
}

static int run_origin(struct store *s, const char *sql, const uint8_t origin[32], uint64_t n,
                      const char *what)
{
	sqlite3_stmt *st;
	int rc;

	if ((rc = prep(s, sql, &st)) < 0)
		return rc;
	sqlite3_bind_blob(st, 1, origin, 32, SQLITE_STATIC);
	if (sqlite3_bind_parameter_count(st) >= 2)
		sqlite3_bind_int64(st, 2, (sqlite3_int64)n);
	return store_sql_finish(s, st, what);
}

int store_split_record(struct store *s, const uint8_t origin[32], uint64_t size, const uint8_t *a,
                       size_t la, const uint8_t *b, size_t lb)
{
	uint64_t held_size, head;
	uint8_t head_hash[32];
	sqlite3_stmt *st;
	int rc;

	store_clear_error(s);
	if (!s->tree_table)
		return LOKET_E_SCHEMA;
	if (size > (uint64_t)INT64_MAX || (la == lb && memcmp(a, b, la) == 0)) {
		store_set_error(s,
		                "a split-view proof needs two different checkpoints of one size");
		return LOKET_E_MALFORMED;
	}
	if ((rc = store_split_frozen(s, origin, &held_size)) < 0)
		return rc;
	if (held_size <= size)
		return 1;
	if ((rc = store_begin(s)) < 0)
		return rc;
	if ((rc = prep(
	         s,
	         "INSERT OR REPLACE INTO split(origin, size, a, b, seen) VALUES(?1, ?2, ?3, ?4,"
	         " ?5)",
	         &st)) < 0)
		goto fail;
	sqlite3_bind_blob(st, 1, origin, 32, SQLITE_STATIC);
	sqlite3_bind_int64(st, 2, (sqlite3_int64)size);
	sqlite3_bind_blob(st, 3, a, (int)la, SQLITE_STATIC);
	/* A one-note proof keeps an empty b (a NULL pointer would bind SQL NULL). */
	if (lb == 0)
		sqlite3_bind_zeroblob(st, 4, 0);
	else
		sqlite3_bind_blob(st, 4, b, (int)lb, SQLITE_STATIC);
	sqlite3_bind_int64(st, 5, (sqlite3_int64)time(NULL));
	if ((rc = store_sql_finish(s, st, "cannot record a split-view proof")) < 0 ||
	    (rc = store_head(s, origin, &head, head_hash)) < 0)
		goto fail;
	/* Frozen after size: what the two checkpoints do not both claim a size for goes. */
	if (head > size) {
		if ((rc = run_origin(s, "DELETE FROM changeset WHERE origin = ?1 AND seq > ?2",
		                     origin, size,
		                     "cannot drop the changesets of a split origin")) < 0 ||
		    (rc = store_tree_truncate(s, origin, size)) < 0)
			goto fail;
		if (size == 0)
			rc = run_origin(s, "DELETE FROM head WHERE origin = ?1", origin, 0,
			                "cannot move the head of a split origin");
		else
			rc = run_origin(
			    s,
			    "UPDATE head SET seq = ?2, hash = (SELECT hash FROM changeset"
			    " WHERE origin = ?1 AND seq = ?2) WHERE origin = ?1",
			    origin, size, "cannot move the head of a split origin");
		if (rc < 0 || (rc = store_rebuild(s)) < 0)
			goto fail;
	}
	if ((rc = store_commit(s)) < 0)
		goto fail;
	return 0;
fail:
	store_rollback(s);
	return rc;
}

int store_each_split(struct store *s, store_split_fn *fn, void *arg)
{
	sqlite3_stmt *st;
	int rc, step;

	if (!s->tree_table)
		return 0;
	if ((rc = prep(s, "SELECT origin, size FROM split ORDER BY origin", &st)) < 0)
		return rc;
	rc = 0;
	while ((step = sqlite3_step(st)) == SQLITE_ROW) {
		if (sqlite3_column_bytes(st, 0) != 32)
			continue;
		rc = fn(arg, sqlite3_column_blob(st, 0), (uint64_t)sqlite3_column_int64(st, 1));
		if (rc != 0)
			break;
	}
	sqlite3_finalize(st);
	if (rc == 0 && step != SQLITE_DONE)
		return store_sqlite_fail(s, "cannot read the split-view proofs");
	return rc;
}
