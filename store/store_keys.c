/*
 * The key history of every origin (proto/FORMAT.md, section 14): the table
 * key_history(origin, from_seq, key), one row per rotation record held,
 * saying that the origin's changesets from from_seq on are signed by key.
 * The key that signs (origin, seq) is the key of the row with the highest
 * from_seq <= seq, and the origin itself when there is none. Rows are
 * written by store_append in the transaction that holds their record, so
 * the table is the same on every node with the same heads, and never
 * changes after; `loket verify` checks it against the chains. Schema 4
 * adds the table (store_keys_migrate); stores of schema 3 and older could
 * hold no rotation record (their decoders refused op kind 3), so a
 * read-only open of one has no rotations.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proto/error.h"
#include "store/store_int.h"

const char store_keys_sql[] =
    "CREATE TABLE IF NOT EXISTS key_history(origin BLOB NOT NULL, from_seq INTEGER NOT NULL,"
    " key BLOB NOT NULL, PRIMARY KEY(origin, from_seq), UNIQUE(origin, key)) WITHOUT ROWID;";

int store_keys_prepare(struct store *s, long long version)
{
	s->keys_table = version >= 4;
	if (!s->keys_table)
		return 0;
	if (sqlite3_prepare_v3(s->db,
	                       "SELECT key FROM key_history WHERE origin = ?1 AND from_seq <= ?2"
	                       " ORDER BY from_seq DESC LIMIT 1",
	                       -1, SQLITE_PREPARE_PERSISTENT, &s->key_at, NULL) != SQLITE_OK ||
	    sqlite3_prepare_v3(s->db,
	                       "SELECT from_seq FROM key_history WHERE origin = ?1 AND key = ?2",
	                       -1, SQLITE_PREPARE_PERSISTENT, &s->key_used, NULL) != SQLITE_OK ||
	    sqlite3_prepare_v3(s->db,
	                       "INSERT INTO key_history(origin, from_seq, key) VALUES(?1, ?2, ?3)",
	                       -1, SQLITE_PREPARE_PERSISTENT, &s->key_ins, NULL) != SQLITE_OK)
		return store_sqlite_fail(s, "cannot prepare the key history statements");
	return 0;
}

void store_keys_fini(struct store *s)
{
	sqlite3_finalize(s->key_at);
	sqlite3_finalize(s->key_used);
	sqlite3_finalize(s->key_ins);
	s->key_at = s->key_used = s->key_ins = NULL;
}

int store_keys_migrate(struct store *s, const char *path, char *err, size_t errlen)
{
	if (sqlite3_exec(s->db, "BEGIN IMMEDIATE", NULL, NULL, NULL) != SQLITE_OK ||
	    sqlite3_exec(s->db, store_keys_sql, NULL, NULL, NULL) != SQLITE_OK ||
	    sqlite3_exec(s->db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK) {
		snprintf(err, errlen, "cannot upgrade store %s to schema version 4: %s", path,
		         sqlite3_errmsg(s->db));
		sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
		return LOKET_E_STORE;
	}
	return 0;
}

int store_key_at(struct store *s, const uint8_t origin[32], uint64_t seq, uint8_t key[32])
{
	int step;

	memcpy(key, origin, 32);
	if (!s->keys_table)
		return 0;
	sqlite3_bind_blob(s->key_at, 1, origin, 32, SQLITE_STATIC);
	sqlite3_bind_int64(s->key_at, 2, seq > INT64_MAX ? INT64_MAX : (sqlite3_int64)seq);
	step = sqlite3_step(s->key_at);
	if (step == SQLITE_ROW && sqlite3_column_bytes(s->key_at, 0) == 32)
		memcpy(key, sqlite3_column_blob(s->key_at, 0), 32);
	sqlite3_reset(s->key_at);
	sqlite3_clear_bindings(s->key_at);
	if (step != SQLITE_ROW && step != SQLITE_DONE)
		return store_sqlite_fail(s, "cannot read the key history");
	return 0;
}

int store_keys_check(struct store *s, const struct changeset *cs)
{
	const uint8_t *key = changeset_rotation(cs);
	int step;

	if (!key)
		return 0;
	if (!s->keys_table) {
		snprintf(s->err, sizeof(s->err),
		         "this store (schema 3) cannot hold a rotation record");
		return LOKET_E_SCHEMA;
	}
	/* A key once left is never current again: not even a rotation back to it. */
	sqlite3_bind_blob(s->key_used, 1, cs->origin, 32, SQLITE_STATIC);
	sqlite3_bind_blob(s->key_used, 2, key, 32, SQLITE_STATIC);
	step = sqlite3_step(s->key_used);
	sqlite3_reset(s->key_used);
	sqlite3_clear_bindings(s->key_used);
	if (step == SQLITE_ROW) {
		snprintf(s->err, sizeof(s->err),
		         "rotation record seq %llu names a key the origin has had before",
		         (unsigned long long)cs->seq);
		return LOKET_E_MALFORMED;
	}
	if (step != SQLITE_DONE)
		return store_sqlite_fail(s, "cannot read the key history");
	return 0;
}

int store_keys_note(struct store *s, const struct changeset *cs)
{
	const uint8_t *key = changeset_rotation(cs);
	int step;

	if (!key)
		return 0;
	sqlite3_bind_blob(s->key_ins, 1, cs->origin, 32, SQLITE_STATIC);
	sqlite3_bind_int64(s->key_ins, 2, (sqlite3_int64)(cs->seq + 1));
	sqlite3_bind_blob(s->key_ins, 3, key, 32, SQLITE_STATIC);
	step = sqlite3_step(s->key_ins);
	sqlite3_reset(s->key_ins);
	sqlite3_clear_bindings(s->key_ins);
	if (step != SQLITE_DONE)
		return store_sqlite_fail(s, "cannot write the key history");
	return 0;
}

int store_each_key(struct store *s, store_key_fn *fn, void *arg)
{
	sqlite3_stmt *st = NULL;
	int rc = 0, step;

	if (!s->keys_table)
		return 0;
	if (sqlite3_prepare_v2(s->db,
	                       "SELECT origin, from_seq, key FROM key_history ORDER BY origin,"
	                       " from_seq",
	                       -1, &st, NULL) != SQLITE_OK)
		return store_sqlite_fail(s, "cannot read the key history");
	while ((step = sqlite3_step(st)) == SQLITE_ROW) {
		if (sqlite3_column_bytes(st, 0) != 32 || sqlite3_column_bytes(st, 2) != 32)
			continue; /* verify reports it */
		rc = fn(arg, sqlite3_column_blob(st, 0), (uint64_t)sqlite3_column_int64(st, 1),
		        sqlite3_column_blob(st, 2));
		if (rc != 0)
			break;
	}
	if (rc == 0 && step != SQLITE_DONE && step != SQLITE_ROW)
		rc = store_sqlite_fail(s, "cannot read the key history");
	sqlite3_finalize(st);
	return rc;
}

void store_keychain_start(struct store_keychain *kc, const uint8_t origin[32])
{
	memcpy(kc->signer, origin, 32);
	kc->n = 0;
	if (kc->cap == 0) {
		kc->cap = 4;
		kc->keys = malloc(kc->cap * 32);
		if (!kc->keys)
			abort();
	}
	memcpy(kc->keys[kc->n++], origin, 32);
}

int store_keychain_rotate(struct store_keychain *kc, const uint8_t key[32])
{
	for (size_t i = 0; i < kc->n; i++)
		if (memcmp(kc->keys[i], key, 32) == 0)
			return LOKET_E_MALFORMED;
	if (kc->n == kc->cap) {
		kc->cap *= 2;
		kc->keys = realloc(kc->keys, kc->cap * 32);
		if (!kc->keys)
			abort();
	}
	memcpy(kc->keys[kc->n++], key, 32);
	memcpy(kc->signer, key, 32);
	return 0;
}

void store_keychain_free(struct store_keychain *kc)
{
	free(kc->keys);
	memset(kc, 0, sizeof(*kc));
}
