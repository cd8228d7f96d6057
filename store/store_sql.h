/*
 * store_sql: the store opened to the parts built on it (desk/), which read
 * it with SQL of their own: the read-write connection, the search index's
 * reader, the message store_errmsg reports, and the helpers that turn rows
 * into the JSON every read returns. The tables they may read are those of
 * store.h's layout (entity, changeset, head, fork, member); they write
 * nothing.
 */
#ifndef LOKET_STORE_SQL_H
#define LOKET_STORE_SQL_H

#include <stdint.h>

#include <jansson.h>
#include <sqlite3.h>

#include "store/store.h"

/* The store's connection, for reads on the loop thread. */
sqlite3 *store_sql_db(struct store *s);

/* Sets the message store_errmsg reports for the read under way. */
void store_set_error(struct store *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Clears it, as a read starts. */
void store_clear_error(struct store *s);

/* Owner or origin for display: member name, else base64. New JSON string. */
json_t *store_owner_json(struct store *s, const uint8_t key[32]);

/* The columns every entity read selects, in the order store_entity_json takes them. */
#define ENTITY_COLS "e.coll, e.owner, e.id, e.fields, e.seq, e.hlc"
/* One entity {"coll","owner","id","fields","seq","hlc"} from ENTITY_COLS at column 0. */
json_t *store_entity_json(struct store *s, sqlite3_stmt *st);
/*
 * Sets "hlc" (an integer) and "hlc_text" (the same in decimal digits) in o:
 * an hlc passes 2^53, which JSON tools that read numbers as doubles round.
 */
void store_set_hlc(json_t *o, int64_t hlc);
/* A text column as a JSON string ("" for NULL). */
json_t *store_text_json(sqlite3_stmt *st, int col);

/* Resolves a member name or a base64 key; LOKET_E_NOT_FOUND if neither. */
int store_resolve_key(struct store *s, const char *name_or_b64, uint8_t key[32]);

/* The FTS5 query for what a user typed (see store_search); caller frees. */
char *store_fts_query(const char *text);

/* Records a SQLite failure in s->err and returns LOKET_E_STORE. */
int store_sqlite_fail(struct store *s, const char *what);
/* The same for a failure on another connection (the index reader). */
int store_sqlite_fail_db(struct store *s, sqlite3 *db, const char *what);

/*
 * A statement run once: store_sql_prepare prepares sql on the store's
 * connection (0, or store_sqlite_fail with what); store_sql_finish steps it
 * once, finalizes it, and fails with what unless it ran (SQLITE_DONE or a
 * row). store_sql_blob is a malloc'd copy of a blob column (never NULL).
 */
int store_sql_prepare(struct store *s, const char *sql, sqlite3_stmt **st, const char *what);
int store_sql_finish(struct store *s, sqlite3_stmt *st, const char *what);
uint8_t *store_sql_blob(sqlite3_stmt *st, int col, size_t *len);

/*
 * The connection for reads of the search index, once the index holds every
 * entity committed so far (or a few seconds have passed): main.search
 * (rowid = entity rowid) with the store attached as store.entity.
 * LOKET_E_STORE if the store has no index (opened read-only).
 */
int store_search_db(struct store *s, sqlite3 **db);

#endif
