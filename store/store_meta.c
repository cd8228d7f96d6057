/*
 * store_meta: small named integers in the store's meta table, for the
 * modules on top of the store that must remember a fact about this very
 * store file (e.g. that a record of the node's own head was ever made for
 * it: daemon/node.c). They travel with the store: a backup holds them, a
 * wiped data directory loses them.
 */
#include "proto/error.h"
#include "store/store_int.h"

int store_meta_get_int(struct store *s, const char *key, int64_t *out)
{
	sqlite3_stmt *st = NULL;
	int rc;

	if (sqlite3_prepare_v2(s->db, "SELECT v FROM meta WHERE k = ?1", -1, &st, NULL) !=
	    SQLITE_OK)
		return store_sqlite_fail(s, "cannot read the meta table");
	sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
	int step = sqlite3_step(st);
	if (step == SQLITE_ROW && sqlite3_column_type(st, 0) == SQLITE_INTEGER) {
		*out = sqlite3_column_int64(st, 0);
		rc = 0;
	} else if (step == SQLITE_ROW || step == SQLITE_DONE) {
		rc = LOKET_E_NOT_FOUND;
	} else {
		rc = store_sqlite_fail(s, "cannot read the meta table");
	}
	sqlite3_finalize(st);
	return rc;
}

int store_meta_set_int(struct store *s, const char *key, int64_t v)
{
	sqlite3_stmt *st = NULL;
	int rc = 0;

	if (sqlite3_prepare_v2(s->db, "INSERT OR REPLACE INTO meta(k, v) VALUES(?1, ?2)", -1, &st,
	                       NULL) != SQLITE_OK)
		return store_sqlite_fail(s, "cannot write the meta table");
	sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 2, v);
	if (sqlite3_step(st) != SQLITE_DONE)
		rc = store_sqlite_fail(s, "cannot write the meta table");
	sqlite3_finalize(st);
	return rc;
}
