/*
 * store_changes: the two reads that let a client outside the node follow
 * the store without re-reading it: pages of a collection in a stable order
 * (store_page) and the change feed (store_changes), both resumed from an
 * opaque cursor this file makes and checks. It owns the cursor formats and
 * the meta key "changes_floor" that store_rebuild sets (store_int.h).
 *
 * Pages are keyset pagination over the entity table's UNIQUE(coll, id,
 * owner) index: the cursor is the (id, owner) of the last entity given, and
 * the next page starts strictly after it. An entity that exists from the
 * first page to the last is given exactly once whatever is written
 * meanwhile; one created or deleted meanwhile may or may not be.
 *
 * The feed orders entity rows by ver, the store-wide counter every insert
 * and update of an entity takes (store_int.h). A row keeps only its latest
 * ver, so the feed gives the latest state of each entity changed after the
 * cursor, in the order of those latest changes: intermediate states of one
 * entity are collapsed, and a delete is its tombstone. Vers are given on
 * the loop thread in commit order, and every read here runs between
 * commits, so a feed read never passes a ver that a later commit could
 * still fill in. A rebuild recreates every row with new vers and may drop
 * entities without a tombstone (a fork proof cuts a chain), so cursors from
 * before it are refused (LOKET_E_GONE): the client re-reads with pages.
 */
#include <string.h>

#include <sodium.h>

#include "proto/changeset.h"
#include "proto/error.h"
#include "proto/limits.h"
#include "store/store_int.h"

/* Bytes of fields one reply holds at most, so that it fits a control message. */
#define CHANGES_MAX_BYTES (LOKET_MAX_MESSAGE_BYTES / 2u)
/* Rows one feed read examines at most, matching or not: bounds its time on the loop. */
#define CHANGES_MAX_SCAN 20000

#define PAGE_CURSOR_TAG    'p'
#define CHANGES_CURSOR_TAG 'c'
#define CHANGES_CURSOR_LEN (1u + 16u + 8u)

static const char floor_key[] = "changes_floor";

int store_changes_note_rebuild(struct store *s)
{
	return store_meta_set_int(s, floor_key, s->apply.ver);
}

static json_t *cursor_json(const uint8_t *bin, size_t len)
{
	char b64[sodium_base64_ENCODED_LEN(1 + 32 + LOKET_MAX_ID_LEN,
	                                   sodium_base64_VARIANT_URLSAFE_NO_PADDING)];

	sodium_bin2base64(b64, sizeof(b64), bin, len, sodium_base64_VARIANT_URLSAFE_NO_PADDING);
	return json_string(b64);
}

/* Decodes a cursor's base64 into bin; its length in *len, or LOKET_E_MALFORMED. */
static int cursor_decode(struct store *s, const char *cursor, uint8_t *bin, size_t cap, size_t *len)
{
	const char *end;
	char q[ERROR_QUOTE_SIZE];
	size_t n = strlen(cursor);

	if (n > sodium_base64_ENCODED_LEN(cap, sodium_base64_VARIANT_URLSAFE_NO_PADDING) ||
	    sodium_base642bin(bin, cap, cursor, n, NULL, len, &end,
	                      sodium_base64_VARIANT_URLSAFE_NO_PADDING) != 0 ||
	    end != cursor + n || *len == 0) {
		store_set_error(s, "malformed cursor %s (pass back a cursor the node gave)",
		                error_quote_str(q, sizeof(q), cursor));
		return LOKET_E_MALFORMED;
	}
	return 0;
}

static int owner_of(struct store *s, const char *owner, uint8_t key[32])
{
	char q[ERROR_QUOTE_SIZE];
	int rc = store_resolve_key(s, owner, key);

	if (rc == LOKET_E_NOT_FOUND)
		store_set_error(s, "no member named %s and not a base64 key",
		                error_quote_str(q, sizeof(q), owner));
	return rc;
}

int store_page(struct store *s, const char *coll, const char *owner, const char *after, long limit,
               json_t **out)
{
	uint8_t key[32], cur[1 + 32 + LOKET_MAX_ID_LEN], last[sizeof(cur)];
	size_t cur_len = 0, last_len = 0, bytes = 0;
	sqlite3_stmt *st = NULL;
	char sql[384];
	long n = 0;
	int rc, step;

	*out = NULL;
	store_clear_error(s);
	if (owner && (rc = owner_of(s, owner, key)) < 0)
		return rc;
	if (after) {
		if ((rc = cursor_decode(s, after, cur, sizeof(cur), &cur_len)) < 0)
			return rc;
		if (cur[0] != PAGE_CURSOR_TAG || cur_len < 1 + 32 + 1 ||
		    !changeset_valid_id((const char *)cur + 33, cur_len - 33)) {
			char q[ERROR_QUOTE_SIZE];
			store_set_error(s, "malformed cursor %s (not a cursor of a list)",
			                error_quote_str(q, sizeof(q), after));
			return LOKET_E_MALFORMED;
		}
	}
	snprintf(sql, sizeof(sql),
	         "SELECT " ENTITY_COLS " FROM entity e WHERE e.coll = ?1 AND e.deleted = 0%s%s"
	         " ORDER BY e.id, e.owner LIMIT ?5",
	         owner ? " AND e.owner = ?2" : "", after ? " AND (e.id, e.owner) > (?3, ?4)" : "");
	if (sqlite3_prepare_v2(s->db, sql, -1, &st, NULL) != SQLITE_OK)
		return store_sqlite_fail(s, "cannot prepare a page");
	sqlite3_bind_text(st, 1, coll, -1, SQLITE_STATIC);
	if (owner)
		sqlite3_bind_blob(st, 2, key, 32, SQLITE_STATIC);
	if (after) {
		sqlite3_bind_text(st, 3, (const char *)cur + 33, (int)(cur_len - 33),
		                  SQLITE_STATIC);
		sqlite3_bind_blob(st, 4, cur + 1, 32, SQLITE_STATIC);
	}
	/* One more than asked says whether a next page exists. */
	sqlite3_bind_int64(st, 5, (sqlite3_int64)limit + 1);

	json_t *arr = json_array();
	int more = 0;
	while ((step = sqlite3_step(st)) == SQLITE_ROW) {
		if (n == limit || bytes >= CHANGES_MAX_BYTES) {
			more = 1;
			break;
		}
		size_t id_len = (size_t)sqlite3_column_bytes(st, 2);
		if (sqlite3_column_bytes(st, 1) != 32 || id_len > LOKET_MAX_ID_LEN)
			continue; /* not a row a write makes; never given, never a cursor */
		json_array_append_new(arr, store_entity_json(s, st));
		bytes += (size_t)sqlite3_column_bytes(st, 3) + id_len + 64;
		last[0] = PAGE_CURSOR_TAG;
		memcpy(last + 1, sqlite3_column_blob(st, 1), 32);
		memcpy(last + 33, sqlite3_column_text(st, 2), id_len);
		last_len = 33 + id_len;
		n++;
	}
	if (step != SQLITE_ROW && step != SQLITE_DONE) {
		rc = store_sqlite_fail(s, "cannot read a page");
		sqlite3_finalize(st);
		json_decref(arr);
		return rc;
	}
	sqlite3_finalize(st);
	*out = json_pack("{s:o, s:o}", "entities", arr, "next",
	                 more && last_len ? cursor_json(last, last_len) : json_null());
	return 0;
}

static json_t *changes_cursor(const struct store *s, int64_t ver)
{
	uint8_t bin[CHANGES_CURSOR_LEN];

	bin[0] = CHANGES_CURSOR_TAG;
	memcpy(bin + 1, s->id, 16);
	for (int i = 0; i < 8; i++)
		bin[17 + i] = (uint8_t)((uint64_t)ver >> (56 - 8 * i));
	return cursor_json(bin, sizeof(bin));
}

static int max_ver(struct store *s, int64_t *out)
{
	sqlite3_stmt *st = NULL;
	int rc = 0;

	if (sqlite3_prepare_v2(s->db, "SELECT coalesce(max(ver), 0) FROM entity", -1, &st, NULL) !=
	        SQLITE_OK ||
	    sqlite3_step(st) != SQLITE_ROW)
		rc = store_sqlite_fail(s, "cannot read the latest ver");
	else
		*out = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	return rc;
}

/* The ver a feed cursor stands for, after checking that this store can resume from it. */
static int changes_since(struct store *s, const char *since, int64_t *ver)
{
	uint8_t bin[CHANGES_CURSOR_LEN + 1];
	char q[ERROR_QUOTE_SIZE];
	size_t len;
	int64_t floor = 0, top = 0;
	uint64_t v = 0;
	int rc;

	*ver = 0;
	if (!since)
		return 0;
	if ((rc = cursor_decode(s, since, bin, sizeof(bin), &len)) < 0)
		return rc;
	if (len != CHANGES_CURSOR_LEN || bin[0] != CHANGES_CURSOR_TAG) {
		store_set_error(s, "malformed cursor %s (not a cursor of the change feed)",
		                error_quote_str(q, sizeof(q), since));
		return LOKET_E_MALFORMED;
	}
	for (int i = 0; i < 8; i++)
		v = v << 8 | bin[17 + i];
	if (memcmp(bin + 1, s->id, 16) != 0) {
		store_set_error(
		    s,
		    "cursor %s is of another store (this node was set up anew); re-read "
		    "everything with the list, then follow the feed from its new cursor",
		    error_quote_str(q, sizeof(q), since));
		return LOKET_E_GONE;
	}
	if ((rc = max_ver(s, &top)) < 0)
		return rc;
	rc = store_meta_get_int(s, floor_key, &floor);
	if (rc < 0 && rc != LOKET_E_NOT_FOUND)
		return rc;
	if (v > (uint64_t)top || (v > 0 && rc == 0 && (int64_t)v <= floor)) {
		store_set_error(
		    s,
		    "cursor %s is older than what this node keeps (%s); re-read "
		    "everything with the list, then follow the feed from its new cursor",
		    error_quote_str(q, sizeof(q), since),
		    v > (uint64_t)top ? "the store was restored from an older copy"
		                      : "its state was rebuilt since");
		return LOKET_E_GONE;
	}
	*ver = (int64_t)v;
	return 0;
}

int store_changes(struct store *s, const char *since, const char *coll, const char *owner,
                  long limit, json_t **out)
{
	sqlite3_stmt *st = NULL;
	uint8_t key[32];
	int64_t ver, last;
	size_t bytes = 0;
	long n = 0, scanned = 0;
	int rc, step, more = 0;

	*out = NULL;
	store_clear_error(s);
	if (owner && (rc = owner_of(s, owner, key)) < 0)
		return rc;
	if ((rc = changes_since(s, since, &ver)) < 0)
		return rc;
	last = ver;
	if (sqlite3_prepare_v2(s->db,
	                       "SELECT " ENTITY_COLS ", e.deleted, e.ver FROM entity e"
	                       " WHERE e.ver > ?1 ORDER BY e.ver LIMIT ?2",
	                       -1, &st, NULL) != SQLITE_OK)
		return store_sqlite_fail(s, "cannot prepare the change feed");
	sqlite3_bind_int64(st, 1, ver);
	sqlite3_bind_int64(st, 2, CHANGES_MAX_SCAN + 1);

	json_t *arr = json_array();
	/* Filters are applied here, so that the scan stays bounded whatever they match. */
	while ((step = sqlite3_step(st)) == SQLITE_ROW) {
		if (n == limit || bytes >= CHANGES_MAX_BYTES || scanned == CHANGES_MAX_SCAN) {
			more = 1;
			break;
		}
		scanned++;
		last = sqlite3_column_int64(st, 7);
		if (coll && strcmp((const char *)sqlite3_column_text(st, 0), coll) != 0)
			continue;
		if (owner && (sqlite3_column_bytes(st, 1) != 32 ||
		              memcmp(sqlite3_column_blob(st, 1), key, 32) != 0))
			continue;
		json_t *e = store_entity_json(s, st);
		json_object_set_new(e, "deleted", json_boolean(sqlite3_column_int(st, 6)));
		/* Its own cursor, so that a stream can give each change an exact resume point. */
		json_object_set_new(e, "cursor", changes_cursor(s, last));
		json_array_append_new(arr, e);
		bytes += (size_t)sqlite3_column_bytes(st, 3) + 128;
		n++;
	}
	if (step != SQLITE_ROW && step != SQLITE_DONE) {
		rc = store_sqlite_fail(s, "cannot read the change feed");
		sqlite3_finalize(st);
		json_decref(arr);
		return rc;
	}
	sqlite3_finalize(st);
	*out = json_pack("{s:o, s:o, s:b}", "changes", arr, "cursor", changes_cursor(s, last),
	                 "more", more);
	return 0;
}
