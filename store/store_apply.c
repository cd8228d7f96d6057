/*
 * Folding ops into entities: the one piece of code that defines state
 * (proto/FORMAT.md, "Replay"). A put merges the op's top-level fields into
 * the entity's JSON (a nil value removes a key), a del leaves a tombstone;
 * each change keeps the entity's digest and the LtHash16 sum of the state
 * digest up to date (the old digest's lanes out, the new one's in), and
 * gives the row the next ver, by which the indexer thread (store_index.c)
 * finds it. store_append and store_rebuild come through here, so they
 * cannot disagree. The lanes of each change are made on a thread of
 * their own (store_lanes, in store_digest.c).
 */
#include <assert.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "proto/error.h"
#include "proto/limits.h"
#include "store/store_int.h"

const char store_entity_sql[] =
    "CREATE TABLE entity(rowid INTEGER PRIMARY KEY, coll TEXT NOT NULL, owner BLOB NOT NULL,"
    " id TEXT NOT NULL, fields TEXT NOT NULL, deleted INTEGER NOT NULL, seq INTEGER NOT NULL,"
    " hlc INTEGER NOT NULL, digest BLOB NOT NULL, ver INTEGER NOT NULL,"
    " UNIQUE(coll, id, owner));"
    "CREATE INDEX entity_ver ON entity(ver);";

static int prepare(sqlite3 *db, const char *sql, sqlite3_stmt **st, char *err, size_t errlen)
{
	if (sqlite3_prepare_v3(db, sql, -1, SQLITE_PREPARE_PERSISTENT, st, NULL) != SQLITE_OK) {
		snprintf(err, errlen, "cannot prepare statement: %s", sqlite3_errmsg(db));
		return LOKET_E_STORE;
	}
	return 0;
}

/*
 * The writes say OR IGNORE (and callers check that one row changed) so
 * that SQLite needs no statement journal for them.
 */
int store_apply_init(struct store_apply *a, sqlite3 *db, char *err, size_t errlen)
{
	int rc;

	memset(a, 0, sizeof(*a));
	a->db = db;
	store_lanes_init(&a->lanes);
	if ((rc = prepare(db,
	                  "SELECT rowid, fields, deleted, digest FROM entity"
	                  " WHERE coll = ?1 AND owner = ?2 AND id = ?3",
	                  &a->ent_get, err, errlen)) < 0 ||
	    (rc = prepare(
	         db,
	         "INSERT OR IGNORE INTO entity(coll, owner, id, fields, deleted, seq, hlc, digest,"
	         " ver) VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
	         &a->ent_ins, err, errlen)) < 0 ||
	    (rc = prepare(
	         db,
	         "UPDATE OR IGNORE entity SET fields = ?4, deleted = ?5, seq = ?6, hlc = ?7,"
	         " digest = ?8, ver = ?9 WHERE rowid = ?1",
	         &a->ent_upd, err, errlen)) < 0)
		goto fail;
	return 0;
fail:
	store_apply_fini(a);
	return rc;
}

void store_apply_fini(struct store_apply *a)
{
	store_lanes_fini(&a->lanes);
	sqlite3_finalize(a->ent_get);
	sqlite3_finalize(a->ent_ins);
	sqlite3_finalize(a->ent_upd);
	free(a->fields.p);
	free(a->live.c);
	memset(a, 0, sizeof(*a));
}

void store_entity_digest(const char *coll, size_t coll_len, const uint8_t owner[32], const char *id,
                         size_t id_len, int deleted, const char *fields, size_t fields_len,
                         uint8_t out[32])
{
	struct sha256 st;
	uint8_t head[LOKET_MAX_COLL_LEN + 1 + 32 + LOKET_MAX_ID_LEN + 2];
	size_t n = 0;

	sha256_init(&st);
	if (coll_len <= LOKET_MAX_COLL_LEN && id_len <= LOKET_MAX_ID_LEN) {
		/* One update for the short prefix: fewer partial blocks. */
		memcpy(head, coll, coll_len);
		n = coll_len;
		head[n++] = 0;
		memcpy(head + n, owner, 32);
		n += 32;
		memcpy(head + n, id, id_len);
		n += id_len;
		head[n++] = 0;
		head[n++] = deleted ? 1 : 0;
		sha256_update(&st, head, n);
	} else {
		const uint8_t zero = 0, del = deleted ? 1 : 0;

		sha256_update(&st, coll, coll_len);
		sha256_update(&st, &zero, 1);
		sha256_update(&st, owner, 32);
		sha256_update(&st, id, id_len);
		sha256_update(&st, &zero, 1);
		sha256_update(&st, &del, 1);
	}
	sha256_update(&st, fields, fields_len);
	sha256_final(&st, out);
}

void coll_counts_add(struct coll_counts *cc, const char *coll, size_t coll_len, long long delta)
{
	struct coll_count *c;
	size_t i;

	if (coll_len > LOKET_MAX_COLL_LEN)
		return; /* refused before it could be stored */
	for (i = 0; i < cc->n; i++)
		if (!strncmp(cc->c[i].coll, coll, coll_len) && cc->c[i].coll[coll_len] == '\0')
			break;
	if (i == cc->n) {
		if (cc->n == cc->cap) {
			cc->cap = cc->cap ? 2 * cc->cap : 8;
			cc->c = realloc(cc->c, cc->cap * sizeof(*cc->c));
			if (!cc->c)
				abort();
		}
		c = &cc->c[cc->n++];
		memcpy(c->coll, coll, coll_len);
		c->coll[coll_len] = '\0';
		c->n = 0;
	}
	cc->c[i].n += delta;
}

int store_apply_fold(struct store_buf *buf, int exists, int old_deleted, const char *old,
                     size_t old_len, const struct op *op, int *new_deleted, const char **new_fields,
                     size_t *new_len, int *unchanged, char *err, size_t errlen)
{
	int rc;

	*unchanged = 0;
	*new_deleted = 0;
	*new_fields = "{}";
	*new_len = 2;
	if (op->kind == OP_DEL) {
		if (!exists || old_deleted)
			*unchanged = 1;
		else
			*new_deleted = 1;
		return 0;
	}
	if (op->kind != OP_PUT || !op->fields) {
		snprintf(err, errlen, "op has an unknown kind");
		return LOKET_E_MALFORMED;
	}
	if (!exists || old_deleted)
		old = NULL; /* a put on a tombstone starts from empty fields */
	rc = store_json_merge(buf, old, old ? old_len : 0, op->fields, op->fields_len);
	if (rc < 0) {
		snprintf(err, errlen, "put op's fields cannot be merged into the stored ones");
		return rc;
	}
	*new_fields = buf->p;
	*new_len = buf->n;
	if (old && old_len == buf->n && memcmp(old, buf->p, buf->n) == 0)
		*unchanged = 1;
	return 0;
}

/*
 * Writes the entity's new state: an update of row rowid, or an insert when
 * rowid is 0 (SQLite gives rowids from 1). Returns 1 when the row was
 * written, 0 when an insert found the entity there already (nothing
 * written), or LOKET_E_STORE.
 */
static int write_entity(struct store_apply *a, sqlite3_int64 rowid, const uint8_t owner[32],
                        const struct op *op, int deleted, const char *fields, size_t fields_len,
                        uint64_t seq, uint64_t hlc, const uint8_t digest[32], char *err,
                        size_t errlen)
{
	sqlite3_stmt *w = rowid ? a->ent_upd : a->ent_ins;
	int step, changes;

	if (rowid) {
		sqlite3_bind_int64(w, 1, rowid);
	} else {
		sqlite3_bind_text(w, 1, op->coll, (int)op->coll_len, SQLITE_STATIC);
		sqlite3_bind_blob(w, 2, owner, 32, SQLITE_STATIC);
		sqlite3_bind_text(w, 3, op->id, (int)op->id_len, SQLITE_STATIC);
	}
	sqlite3_bind_text(w, 4, fields, (int)fields_len, SQLITE_STATIC);
	sqlite3_bind_int(w, 5, deleted);
	sqlite3_bind_int64(w, 6, (sqlite3_int64)seq);
	sqlite3_bind_int64(w, 7, (sqlite3_int64)hlc);
	sqlite3_bind_blob(w, 8, digest, 32, SQLITE_STATIC);
	sqlite3_bind_int64(w, 9, (sqlite3_int64)a->ver + 1);
	step = sqlite3_step(w);
	changes = sqlite3_changes(a->db);
	sqlite3_reset(w);
	if (step != SQLITE_DONE || changes > 1 || (rowid && changes != 1)) {
		snprintf(err, errlen, "cannot write entity: %s", sqlite3_errmsg(a->db));
		return LOKET_E_STORE;
	}
	if (changes == 1)
		a->ver++;
	return changes;
}

/*
 * A put guessed to create its entity: folded from nothing and inserted;
 * the UNIQUE constraint says whether the guess was right. Returns 1 when
 * the entity was created, 0 when it exists (nothing written), or an error.
 */
static int insert_new(struct store_apply *a, const uint8_t owner[32], const struct op *op,
                      uint64_t seq, uint64_t hlc, char *err, size_t errlen)
{
	int rc, deleted, unchanged;
	const char *fields;
	size_t len;
	uint8_t digest[32];

	rc = store_apply_fold(&a->fields, 0, 0, NULL, 0, op, &deleted, &fields, &len, &unchanged,
	                      err, errlen);
	if (rc < 0)
		return rc;
	store_entity_digest(op->coll, op->coll_len, owner, op->id, op->id_len, deleted, fields, len,
	                    digest);
	rc = write_entity(a, 0, owner, op, deleted, fields, len, seq, hlc, digest, err, errlen);
	if (rc == 1) {
		store_lanes_change(&a->lanes, NULL, digest);
		a->digest_dirty = 1;
		coll_counts_add(&a->live, op->coll, op->coll_len, 1);
	}
	return rc;
}

int store_apply_op(struct store_apply *a, const uint8_t owner[32], const struct op *op,
                   uint64_t seq, uint64_t hlc, int dry, int *changed, char *err, size_t errlen)
{
	int rc = 0, step, exists = 0, old_deleted = 0, new_deleted = 0, unchanged = 0, old_ok = 0;
	sqlite3_int64 rowid = 0;
	uint8_t old_digest[32], new_digest[32];
	const char *old = NULL;
	size_t old_len = 0;
	const char *new_fields = "{}";
	size_t new_len = 2;

	*changed = 0;
	/* A rotation record writes no entity; store_append keeps its key history row. */
	if (op->kind == OP_ROTATE) {
		a->last_live = 0;
		return 0;
	}
	if (op->coll_len > LOKET_MAX_COLL_LEN || op->id_len > LOKET_MAX_ID_LEN) {
		snprintf(err, errlen, "op names a collection or id that is too long");
		return LOKET_E_TOO_BIG;
	}
	/*
	 * A bulk import of new entities is the heaviest write there is. While
	 * puts keep creating entities, each is inserted straight away, which
	 * saves the lookup; the first that finds its entity there turns the
	 * guess off until a lookup finds one missing again.
	 */
	if (a->guess_new && !dry && op->kind == OP_PUT) {
		rc = insert_new(a, owner, op, seq, hlc, err, errlen);
		if (rc != 0) {
			a->last_live = 0;
			*changed = rc == 1;
			return rc < 0 ? rc : 0;
		}
		a->guess_new = 0;
	}
	sqlite3_bind_text(a->ent_get, 1, op->coll, (int)op->coll_len, SQLITE_STATIC);
	sqlite3_bind_blob(a->ent_get, 2, owner, 32, SQLITE_STATIC);
	sqlite3_bind_text(a->ent_get, 3, op->id, (int)op->id_len, SQLITE_STATIC);
	step = sqlite3_step(a->ent_get);
	if (step == SQLITE_ROW) {
		exists = 1;
		rowid = sqlite3_column_int64(a->ent_get, 0);
		old_deleted = sqlite3_column_int(a->ent_get, 2) != 0;
		/*
		 * The sum holds the lanes of every row's digest as stored; a
		 * row without a 32-byte one (never written so) added none.
		 */
		old_ok = sqlite3_column_bytes(a->ent_get, 3) == 32;
		if (old_ok)
			memcpy(old_digest, sqlite3_column_blob(a->ent_get, 3), 32);
	} else if (step != SQLITE_DONE) {
		snprintf(err, errlen, "cannot read entity: %s", sqlite3_errmsg(a->db));
		rc = LOKET_E_STORE;
		goto cleanup;
	}

	a->last_live = exists && !old_deleted;
	a->guess_new = !exists;
	if (exists && !old_deleted) {
		old = (const char *)sqlite3_column_text(a->ent_get, 1);
		old_len = (size_t)sqlite3_column_bytes(a->ent_get, 1);
	}
	rc = store_apply_fold(&a->fields, exists, old_deleted, old, old_len, op, &new_deleted,
	                      &new_fields, &new_len, &unchanged, err, errlen);
	if (rc < 0)
		goto cleanup;
	sqlite3_reset(a->ent_get);
	sqlite3_clear_bindings(a->ent_get);
	if (unchanged)
		goto cleanup;
	*changed = 1;
	if (dry)
		goto cleanup;

	store_entity_digest(op->coll, op->coll_len, owner, op->id, op->id_len, new_deleted,
	                    new_fields, new_len, new_digest);
	rc = write_entity(a, exists ? rowid : 0, owner, op, new_deleted, new_fields, new_len, seq,
	                  hlc, new_digest, err, errlen);
	if (rc == 0) {
		snprintf(err, errlen, "cannot write entity: it appeared while being written");
		rc = LOKET_E_STORE;
	}
	if (rc < 0)
		goto cleanup;
	rc = 0;
	store_lanes_change(&a->lanes, old_ok ? old_digest : NULL, new_digest);
	a->digest_dirty = 1;
	if (a->last_live != !new_deleted)
		coll_counts_add(&a->live, op->coll, op->coll_len, a->last_live ? -1 : 1);
cleanup:
	sqlite3_reset(a->ent_get);
	return rc;
}
