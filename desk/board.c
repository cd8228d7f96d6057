/*
 * board: the question board as a read of the store: every question of every
 * owner, newest first, with the number of responses that refer to it and
 * the number its owner accepted. Responses are joined at read time by their
 * "question" field (OWNER/ID, OWNER a member name), never linked at write
 * time, so a response that arrived by sync before its question counts as
 * soon as the question is there, and no order of arrival can leave the
 * board inconsistent. Fields come from peers unchecked by our schema (a
 * newer node may write shapes we do not know), so each shown field is taken
 * only when it has the expected type. Nothing here writes.
 */
#include "desk/board.h"

#include "proto/error.h"
#include "store/store_sql.h"

/*
 * Responses are counted once per question in r (withdrawn ones left out),
 * then joined by the reference the question's owner name and id make.
 * A question without a status counts as open, as the board shows it.
 */
static const char board_sql[] =
    "WITH r AS (SELECT json_extract(fields, '$.question') AS q, count(*) AS n"
    "  FROM entity WHERE coll = 'response' AND deleted = 0"
    "  AND json_type(fields, '$.question') = 'text'"
    "  AND coalesce(json_extract(fields, '$.status'), '') IS NOT 'withdrawn'"
    "  GROUP BY q)"
    " SELECT e.owner, e.id, e.fields, e.hlc, m.name, coalesce(r.n, 0),"
    "  CASE json_type(e.fields, '$.accepted') WHEN 'array'"
    "   THEN json_array_length(e.fields, '$.accepted') ELSE 0 END"
    " FROM entity e"
    " LEFT JOIN member m ON m.key = e.owner"
    " LEFT JOIN r ON r.q = m.name || '/' || e.id"
    " WHERE e.coll = 'question' AND e.deleted = 0"
    "  AND (?1 IS NULL OR coalesce(json_extract(e.fields, '$.status'), 'open') = ?1)"
    "  AND (?2 IS NULL OR json_extract(e.fields, '$.kind') = ?2)"
    "  AND (?3 IS NULL OR EXISTS (SELECT 1 FROM json_each(e.fields, '$.topics') t"
    "   WHERE t.type = 'text' AND lower(t.value) = lower(?3)))"
    " ORDER BY e.hlc DESC, m.name IS NULL, m.name, e.owner, e.id"
    " LIMIT ?4";

/* A string member of fields, or JSON null when absent or of another type. */
static json_t *string_or_null(const json_t *fields, const char *key)
{
	const json_t *v = json_object_get(fields, key);

	return json_is_string(v) ? json_copy((json_t *)v) : json_null();
}

/* The asker's name: {"name":...} as the schema has it, or a plain string. */
static json_t *asker_json(const json_t *fields)
{
	const json_t *a = json_object_get(fields, "asker");

	if (json_is_object(a))
		return string_or_null(a, "name");
	return json_is_string(a) ? json_copy((json_t *)a) : json_null();
}

/* The string topics, in order; anything else in the array is left out. */
static json_t *topics_json(const json_t *fields)
{
	const json_t *t = json_object_get(fields, "topics"), *v;
	json_t *arr = json_array();
	size_t i;

	if (json_is_string(t))
		json_array_append_new(arr, json_copy((json_t *)t));
	json_array_foreach(t, i, v)
	{
		if (json_is_string(v))
			json_array_append_new(arr, json_copy((json_t *)v));
	}
	return arr;
}

/* One row of board_sql as the board entry board.h describes. */
static json_t *board_entry(struct store *s, sqlite3_stmt *st)
{
	const char *f = (const char *)sqlite3_column_text(st, 2);
	const char *id = (const char *)sqlite3_column_text(st, 1);
	json_t *e = json_object(), *fields = NULL, *owner, *status;
	json_error_t jerr;

	if (f)
		fields = json_loadb(f, (size_t)sqlite3_column_bytes(st, 2), JSON_ALLOW_NUL, &jerr);
	if (!json_is_object(fields)) {
		json_decref(fields);
		fields = json_object();
	}
	if (sqlite3_column_bytes(st, 0) == 32)
		owner = store_owner_json(s, sqlite3_column_blob(st, 0));
	else
		owner = json_string("");
	status = string_or_null(fields, "status");
	if (json_is_null(status)) {
		json_decref(status);
		status = json_string("open");
	}
	json_object_set_new(e, "ref",
	                    json_sprintf("%s/%s", json_string_value(owner), id ? id : ""));
	json_object_set_new(e, "owner", owner);
	json_object_set_new(e, "id", json_string(id ? id : ""));
	json_object_set_new(e, "title", string_or_null(fields, "title"));
	json_object_set_new(e, "status", status);
	json_object_set_new(e, "kind", string_or_null(fields, "kind"));
	json_object_set_new(e, "topics", topics_json(fields));
	json_object_set_new(e, "asker", asker_json(fields));
	json_object_set_new(e, "deadline", string_or_null(fields, "deadline"));
	json_object_set_new(e, "responses", json_integer(sqlite3_column_int64(st, 5)));
	json_object_set_new(e, "accepted", json_integer(sqlite3_column_int64(st, 6)));
	store_set_hlc(e, sqlite3_column_int64(st, 3));
	json_decref(fields);
	return e;
}

int board_list(struct store *s, const char *status, const char *topic, const char *kind, long limit,
               json_t **out)
{
	sqlite3_stmt *st = NULL;
	json_t *arr = NULL;
	int rc = 0, step;

	*out = NULL;
	store_clear_error(s);
	if (sqlite3_prepare_v2(store_sql_db(s), board_sql, -1, &st, NULL) != SQLITE_OK)
		return store_sqlite_fail(s, "cannot prepare the board query");
	if (status)
		sqlite3_bind_text(st, 1, status, -1, SQLITE_STATIC);
	if (kind)
		sqlite3_bind_text(st, 2, kind, -1, SQLITE_STATIC);
	if (topic)
		sqlite3_bind_text(st, 3, topic, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 4, limit <= 0 ? -1 : (sqlite3_int64)limit);
	arr = json_array();
	while ((step = sqlite3_step(st)) == SQLITE_ROW)
		json_array_append_new(arr, board_entry(s, st));
	if (step != SQLITE_DONE) {
		rc = store_sqlite_fail(s, "cannot read the board");
		json_decref(arr);
		arr = NULL;
	}
	sqlite3_finalize(st);
	*out = arr;
	return rc;
}
