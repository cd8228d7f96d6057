/*
 * store_fork: fork proofs and the freeze they impose (store.h). A fork
 * proof is two different changesets that one origin signed for one seq.
 * The store keeps at most one proof per origin, the one of the lowest seq
 * it has seen, as the two rows of that origin in the fork table, and
 * freezes the origin there: of a forked origin only the changesets below
 * the proof's seq are held and applied, and its head is the one before.
 * Every node that holds the proof then holds the same changesets of that
 * origin, whichever branch it had taken before it learned of the fork, so
 * all honest nodes reach the same state digest. A member cannot fill the
 * disk with variants: a proof replaces another only with a lower seq.
 */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "proto/changeset.h"
#include "proto/error.h"
#include "proto/sha256.h"
#include "store/store_int.h"

/* A statement run once; what a failed prepare says. */
static int prep(struct store *s, const char *sql, sqlite3_stmt **st)
{
	return store_sql_prepare(s, sql, st, "cannot prepare a fork statement");
}

int store_fork_seq(struct store *s, const uint8_t origin[32], uint64_t *seq)
{
	sqlite3_stmt *st;
	int rc, step;

	*seq = 0;
	if ((rc = prep(s, "SELECT min(seq) FROM fork WHERE origin = ?1", &st)) < 0)
		return rc;
	sqlite3_bind_blob(st, 1, origin, 32, SQLITE_STATIC);
	step = sqlite3_step(st);
	if (step == SQLITE_ROW && sqlite3_column_type(st, 0) != SQLITE_NULL)
		*seq = (uint64_t)sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	if (step != SQLITE_ROW && step != SQLITE_DONE)
		return store_sqlite_fail(s, "cannot read forks");
	return 0;
}

int store_fork_proof(struct store *s, const uint8_t origin[32], uint64_t *seq, uint8_t *bytes[2],
                     size_t len[2])
{
	sqlite3_stmt *st;
	size_t n = 0;
	int rc, step;

	bytes[0] = bytes[1] = NULL;
	len[0] = len[1] = 0;
	if ((rc = store_fork_seq(s, origin, seq)) < 0)
		return rc;
	if (*seq == 0)
		return LOKET_E_NOT_FOUND;
	if ((rc = prep(
	         s, "SELECT bytes FROM fork WHERE origin = ?1 AND seq = ?2 ORDER BY hash LIMIT 2",
	         &st)) < 0)
		return rc;
	sqlite3_bind_blob(st, 1, origin, 32, SQLITE_STATIC);
	sqlite3_bind_int64(st, 2, (sqlite3_int64)*seq);
	while ((step = sqlite3_step(st)) == SQLITE_ROW) {
		len[n] = (size_t)sqlite3_column_bytes(st, 0);
		bytes[n] = malloc(len[n] ? len[n] : 1);
		if (!bytes[n])
			abort();
		memcpy(bytes[n], sqlite3_column_blob(st, 0), len[n]);
		n++;
	}
	sqlite3_finalize(st);
	if (step != SQLITE_DONE || n != 2) {
		free(bytes[0]);
		free(bytes[1]);
		bytes[0] = bytes[1] = NULL;
		if (step != SQLITE_DONE)
			return store_sqlite_fail(s, "cannot read a fork proof");
		store_set_error(s, "the fork proof at seq %llu lacks a changeset",
		                (unsigned long long)*seq);
		return LOKET_E_STORE;
	}
	return 0;
}

int store_each_fork(struct store *s, store_fork_fn *fn, void *arg)
{
	sqlite3_stmt *st;
	int rc, step;

	if ((rc = prep(s, "SELECT origin, min(seq) FROM fork GROUP BY origin ORDER BY origin",
	               &st)) < 0)
		return rc;
	rc = 0;
	while (rc == 0 && (step = sqlite3_step(st)) == SQLITE_ROW)
		if (sqlite3_column_bytes(st, 0) == 32)
			rc = fn(arg, sqlite3_column_blob(st, 0),
			        (uint64_t)sqlite3_column_int64(st, 1));
	sqlite3_finalize(st);
	if (rc == 0 && step != SQLITE_DONE)
		return store_sqlite_fail(s, "cannot read forks");
	return rc;
}

static int insert_variant(struct store *s, const uint8_t origin[32], uint64_t seq,
                          const uint8_t *bytes, size_t len)
{
	sqlite3_stmt *st;
	uint8_t hash[32];
	int rc;

	sha256(bytes, len, hash); /* = changeset_hash */
	if ((rc = prep(s,
	               "INSERT OR IGNORE INTO fork(origin, seq, hash, bytes, seen)"
	               " VALUES(?1, ?2, ?3, ?4, ?5)",
	               &st)) < 0)
		return rc;
	sqlite3_bind_blob(st, 1, origin, 32, SQLITE_STATIC);
	sqlite3_bind_int64(st, 2, (sqlite3_int64)seq);
	sqlite3_bind_blob(st, 3, hash, 32, SQLITE_STATIC);
	sqlite3_bind_blob(st, 4, bytes, (int)len, SQLITE_STATIC);
	sqlite3_bind_int64(st, 5, (sqlite3_int64)time(NULL));
	return store_sql_finish(s, st, "cannot record a fork proof");
}

/* Runs sql with ?1 = origin and, when it has a second parameter, ?2 = seq. */
static int run_origin_seq(struct store *s, const char *sql, const uint8_t origin[32], uint64_t seq,
                          const char *what)
{
	sqlite3_stmt *st;
	int rc;

	if ((rc = prep(s, sql, &st)) < 0)
		return rc;
	sqlite3_bind_blob(st, 1, origin, 32, SQLITE_STATIC);
	if (sqlite3_bind_parameter_count(st) > 1)
		sqlite3_bind_int64(st, 2, (sqlite3_int64)seq);
	return store_sql_finish(s, st, what);
}

/*
 * The freeze inside a transaction: the origin's proof becomes (a, b) at
 * seq, its changesets from seq on go, its head moves to seq-1, and the
 * state is made again from the changesets that remain.
 */
static int freeze(struct store *s, const uint8_t origin[32], uint64_t seq, const uint8_t *a,
                  size_t la, const uint8_t *b, size_t lb)
{
	int rc;

	if ((rc = run_origin_seq(s, "DELETE FROM fork WHERE origin = ?1", origin, 0,
	                         "cannot replace a fork proof")) < 0 ||
	    (rc = insert_variant(s, origin, seq, a, la)) < 0 ||
	    (rc = insert_variant(s, origin, seq, b, lb)) < 0 ||
	    (rc = run_origin_seq(s, "DELETE FROM changeset WHERE origin = ?1 AND seq >= ?2", origin,
	                         seq, "cannot drop the changesets of a forked origin")) < 0 ||
	    (rc = store_tree_truncate(s, origin, seq - 1)) < 0)
		return rc;
	if (seq == 1)
		rc = run_origin_seq(s, "DELETE FROM head WHERE origin = ?1", origin, 0,
		                    "cannot move the head of a forked origin");
	else
		rc = run_origin_seq(s,
		                    "UPDATE head SET seq = ?2, hash = (SELECT hash FROM changeset"
		                    " WHERE origin = ?1 AND seq = ?2) WHERE origin = ?1",
		                    origin, seq - 1, "cannot move the head of a forked origin");
	if (rc < 0)
		return rc;
	return store_rebuild(s);
}

int store_fork_record(struct store *s, const uint8_t origin[32], uint64_t seq, const uint8_t *a,
                      size_t la, const uint8_t *b, size_t lb)
{
	uint64_t held;
	int rc;

	store_clear_error(s);
	if (seq == 0 || seq > (uint64_t)INT64_MAX || (la == lb && memcmp(a, b, la) == 0)) {
		store_set_error(s, "a fork proof needs two different changesets of one seq");
		return LOKET_E_MALFORMED;
	}
	if ((rc = store_fork_seq(s, origin, &held)) < 0)
		return rc;
	if (held != 0 && held <= seq)
		return 1;
	if ((rc = store_begin(s)) < 0)
		return rc;
	if ((rc = freeze(s, origin, seq, a, la, b, lb)) < 0) {
		store_rollback(s);
		return rc;
	}
	if ((rc = store_commit(s)) < 0) {
		store_rollback(s);
		return rc;
	}
	return 0;
}

/* One origin of the fork table as an older store left it. */
struct legacy {
	uint8_t origin[32];
	uint64_t seq;
};

/*
 * Stores before fork proofs kept only the rival changeset in the fork table
 * (the one held stayed in the log) and went on holding the origin's later
 * changesets. Each such origin is frozen as a proof would freeze it now.
 */
int store_fork_normalize(struct store *s)
{
	sqlite3_stmt *st;
	struct legacy *todo = NULL;
	size_t n = 0, cap = 0;
	int rc, step;

	if ((rc = prep(s,
	               "SELECT f.origin, f.seq FROM fork f WHERE f.seq = (SELECT min(seq) FROM fork"
	               " WHERE origin = f.origin) GROUP BY f.origin HAVING count(*) < 2"
	               " OR EXISTS (SELECT 1 FROM changeset c WHERE c.origin = f.origin"
	               " AND c.seq >= f.seq)",
	               &st)) < 0)
		return rc;
	while ((step = sqlite3_step(st)) == SQLITE_ROW) {
		if (sqlite3_column_bytes(st, 0) != 32)
			continue;
		if (n == cap) {
			cap = cap ? 2 * cap : 8;
			todo = realloc(todo, cap * sizeof(*todo));
			if (!todo)
				abort();
		}
		memcpy(todo[n].origin, sqlite3_column_blob(st, 0), 32);
		todo[n++].seq = (uint64_t)sqlite3_column_int64(st, 1);
	}
	sqlite3_finalize(st);
	if (step != SQLITE_DONE) {
		free(todo);
		return store_sqlite_fail(s, "cannot read forks");
	}
	for (size_t i = 0; rc == 0 && i < n; i++) {
		uint8_t *held = NULL, *rival = NULL;
		size_t held_len = 0, rival_len = 0;
		uint64_t seq = todo[i].seq;

		rc = store_changeset(s, todo[i].origin, seq, &held, &held_len);
		if (rc == 0 && (rc = prep(s,
		                          "SELECT bytes FROM fork WHERE origin = ?1 AND seq = ?2"
		                          " ORDER BY hash LIMIT 1",
		                          &st)) == 0) {
			sqlite3_bind_blob(st, 1, todo[i].origin, 32, SQLITE_STATIC);
			sqlite3_bind_int64(st, 2, (sqlite3_int64)seq);
			if (sqlite3_step(st) == SQLITE_ROW) {
				rival_len = (size_t)sqlite3_column_bytes(st, 0);
				rival = malloc(rival_len ? rival_len : 1);
				if (!rival)
					abort();
				memcpy(rival, sqlite3_column_blob(st, 0), rival_len);
			}
			sqlite3_finalize(st);
		}
		if (rc == LOKET_E_NOT_FOUND)
			rc = 0; /* already frozen: nothing of seq is held */
		else if (rc == 0 && rival && (rc = store_begin(s)) == 0) {
			rc = freeze(s, todo[i].origin, seq, held, held_len, rival, rival_len);
			if (rc == 0)
				rc = store_commit(s);
			if (rc != 0)
				store_rollback(s);
		}
		free(held);
		free(rival);
	}
	free(todo);
	return rc;
}
