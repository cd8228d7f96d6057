/*
 * Read-only SQL for administrators (loket query). Each query gets its own
 * SQLite connection, opened read-only (SQLITE_OPEN_READONLY) on the
 * store's file, so the store's connection, its statements and any
 * transaction it holds are never touched. On that connection the
 * documented views are created as TEMP views, one per collection (fields
 * as columns, owners by member name); then an authorizer admits only
 * SELECT, READ, FUNCTION and RECURSIVE (a WITH RECURSIVE is still a read)
 * and refuses everything else: writes, DDL, PRAGMA, ATTACH, transactions.
 * The text must be exactly one statement, which SQLite must also call
 * read-only. A result holds at most STORE_QUERY_MAX_ROWS rows and about
 * STORE_QUERY_MAX_BYTES bytes (it must fit one control reply), and a
 * query that runs longer than STORE_QUERY_MAX_MS is interrupted by the
 * progress handler, so a query cannot stall the daemon for long.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/interrupt.h"
#include "proto/error.h"
#include "store/store_int.h"

#define STORE_QUERY_MAX_BYTES (1024 * 1024)
#define QUERY_MAX_VALUE       (16 * 1024 * 1024) /* SQLITE_LIMIT_LENGTH */
#define QUERY_MAX_SQL         (64 * 1024)        /* SQLITE_LIMIT_SQL_LENGTH */

/*
 * The views: collection, then its columns after owner, id, seq and hlc
 * (DESIGN.md's fields, and the "_en" twins of the prose fields). Arrays
 * and maps come out as JSON text; "fields" holds the whole object, extra
 * fields included. README.md and proto/CONTROL.md list the same.
 */
static const struct {
	const char *name;
	const char *const columns[14];
} views[] = {
    {"org", {"name", "kind", "city", "website", "description", "description_en"}},
    {"expert",
     {"name", "org", "title", "title_en", "topics", "description", "description_en", "languages",
      "contact", "available_for"}},
    {"resource", {"name", "kind", "org", "description", "description_en", "topics", "access"}},
    {"project",
     {"name", "org", "partners", "description", "description_en", "topics", "status", "period",
      "outcome", "outcome_en"}},
    {"question",
     {"title", "title_en", "body", "body_en", "asker", "topics", "kind", "neighbourhood",
      "deadline", "status", "accepted"}},
    {"response", {"question", "kind", "team", "contact", "text", "text_en", "status"}},
};

#define N_VIEWS (sizeof(views) / sizeof(views[0]))

/* What the authorizer saw: the first action it refused. */
struct guard {
	int denied;
	int action;
	char what[64];
};

/* The progress handler's deadline, in ms of CLOCK_MONOTONIC. */
struct clock_limit {
	long long deadline_ms;
	int expired;
	int stopped; /* by a stop signal */
};

static long long now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* A word for what an authorizer action would do, for the refusal. */
static const char *action_name(int action)
{
	switch (action) {
	case SQLITE_INSERT:
		return "INSERT";
	case SQLITE_UPDATE:
		return "UPDATE";
	case SQLITE_DELETE:
		return "DELETE";
	case SQLITE_PRAGMA:
		return "PRAGMA";
	case SQLITE_ATTACH:
		return "ATTACH";
	case SQLITE_DETACH:
		return "DETACH";
	case SQLITE_TRANSACTION:
		return "a transaction (BEGIN, COMMIT, ROLLBACK)";
	case SQLITE_SAVEPOINT:
		return "SAVEPOINT";
	case SQLITE_ALTER_TABLE:
		return "ALTER TABLE";
	case SQLITE_REINDEX:
		return "REINDEX";
	case SQLITE_ANALYZE:
		return "ANALYZE";
	case SQLITE_CREATE_INDEX:
	case SQLITE_CREATE_TABLE:
	case SQLITE_CREATE_TEMP_INDEX:
	case SQLITE_CREATE_TEMP_TABLE:
	case SQLITE_CREATE_TEMP_TRIGGER:
	case SQLITE_CREATE_TEMP_VIEW:
	case SQLITE_CREATE_TRIGGER:
	case SQLITE_CREATE_VIEW:
	case SQLITE_CREATE_VTABLE:
		return "CREATE";
	case SQLITE_DROP_INDEX:
	case SQLITE_DROP_TABLE:
	case SQLITE_DROP_TEMP_INDEX:
	case SQLITE_DROP_TEMP_TABLE:
	case SQLITE_DROP_TEMP_TRIGGER:
	case SQLITE_DROP_TEMP_VIEW:
	case SQLITE_DROP_TRIGGER:
	case SQLITE_DROP_VIEW:
	case SQLITE_DROP_VTABLE:
		return "DROP";
	case SQLITE_FUNCTION:
		return "the function";
	default:
		return "a statement that is not a read";
	}
}

static int authorize(void *arg, int action, const char *a, const char *b, const char *db,
                     const char *trigger)
{
	struct guard *g = arg;

	(void)trigger;
	switch (action) {
	case SQLITE_SELECT:
	case SQLITE_READ:
	case SQLITE_RECURSIVE:
		return SQLITE_OK;
	case SQLITE_UPDATE:
		/*
		 * A table-valued function (json_each, json_tree, pragma_table_info)
		 * is an eponymous virtual table, and SQLite announces it as an
		 * UPDATE of sqlite_master's columns. Nothing is written: the
		 * connection is read-only, SQLite refuses real writes to
		 * sqlite_master, and the statement must be read-only. Only pragmas
		 * without side effects exist as such functions.
		 */
		if (a && !strcmp(a, "sqlite_master") && db && !strcmp(db, "main"))
			return SQLITE_OK;
		break;
	case SQLITE_FUNCTION:
		/* b is the function's name; loading code is never a read. */
		if (!b || strcasecmp(b, "load_extension") != 0)
			return SQLITE_OK;
		break;
	default:
		break;
	}
	if (!g->denied) {
		g->denied = 1;
		g->action = action;
		snprintf(g->what, sizeof(g->what), "%s",
		         action == SQLITE_FUNCTION ? (b ? b : "?") : (a ? a : ""));
	}
	return SQLITE_DENY;
}

static int progress(void *arg)
{
	struct clock_limit *c = arg;

	if (interrupt_requested()) {
		c->stopped = 1;
		return 1;
	}
	if (now_ms() > c->deadline_ms) {
		c->expired = 1;
		return 1;
	}
	return 0;
}

/* The CREATE TEMP VIEW statements, into a new malloc'd string. */
static char *views_sql(void)
{
	size_t cap = 16384, n = 0;
	char *sql = malloc(cap);

	if (!sql)
		abort();
	for (size_t v = 0; v < N_VIEWS; v++) {
		int k = snprintf(sql + n, cap - n,
		                 "CREATE TEMP VIEW \"%s\" AS SELECT"
		                 " coalesce(m.name, lower(hex(e.owner))) AS owner, e.id AS id,"
		                 " e.seq AS seq, e.hlc AS hlc",
		                 views[v].name);

		if (k < 0 || (size_t)k >= cap - n)
			abort(); /* the buffer is sized for the table above */
		n += (size_t)k;
		for (size_t c = 0; c < sizeof(views[v].columns) / sizeof(views[v].columns[0]) &&
		                   views[v].columns[c];
		     c++) {
			k = snprintf(sql + n, cap - n, ", json_extract(e.fields, '$.%s') AS \"%s\"",
			             views[v].columns[c], views[v].columns[c]);
			if (k < 0 || (size_t)k >= cap - n)
				abort();
			n += (size_t)k;
		}
		k = snprintf(sql + n, cap - n,
		             ", e.fields AS fields FROM main.entity e"
		             " LEFT JOIN main.member m ON m.key = e.owner"
		             " WHERE e.coll = '%s' AND e.deleted = 0;",
		             views[v].name);
		if (k < 0 || (size_t)k >= cap - n)
			abort();
		n += (size_t)k;
	}
	return sql;
}

/* Skips spaces, semicolons and SQL comments; what is left is another statement. */
static const char *skip_blank(const char *p)
{
	for (;;) {
		if (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r' || *p == '\f' ||
		    *p == ';') {
			p++;
		} else if (p[0] == '-' && p[1] == '-') {
			while (*p && *p != '\n')
				p++;
		} else if (p[0] == '/' && p[1] == '*') {
			const char *end = strstr(p + 2, "*/");

			p = end ? end + 2 : p + strlen(p);
		} else {
			return p;
		}
	}
}

/* One column value as JSON; *bytes grows by about what it adds to the reply. */
static json_t *value_json(sqlite3_stmt *st, int col, size_t *bytes)
{
	int n = sqlite3_column_bytes(st, col);

	*bytes += 9;
	switch (sqlite3_column_type(st, col)) {
	case SQLITE_INTEGER:
		return json_integer(sqlite3_column_int64(st, col));
	case SQLITE_FLOAT: {
		double d = sqlite3_column_double(st, col);

		/* JSON and msgpack replies carry finite numbers only. */
		return isfinite(d) ? json_real(d) : json_null();
	}
	case SQLITE_TEXT: {
		json_t *v = json_stringn((const char *)sqlite3_column_text(st, col), (size_t)n);

		*bytes += (size_t)n;
		return v ? v : json_null(); /* not UTF-8: only a CAST can make such text */
	}
	case SQLITE_BLOB: {
		size_t len = sodium_base64_ENCODED_LEN((size_t)n, sodium_base64_VARIANT_ORIGINAL);
		char *b64 = malloc(len);
		json_t *v;

		if (!b64)
			abort();
		sodium_bin2base64(b64, len, sqlite3_column_blob(st, col), (size_t)n,
		                  sodium_base64_VARIANT_ORIGINAL);
		v = json_string(b64);
		free(b64);
		*bytes += len;
		return v;
	}
	default:
		return json_null();
	}
}

/* Opens the read-only connection with the views, then arms the guard. */
static int open_reader(struct store *s, sqlite3 **out, struct guard *g)
{
	const char *path = sqlite3_db_filename(s->db, "main");
	sqlite3 *db = NULL;
	char *sql;
	int rc;

	*out = NULL;
	if (!path || !path[0]) {
		snprintf(s->err, sizeof(s->err), "the store has no file to open read-only");
		return LOKET_E_STORE;
	}
	rc = sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL);
	if (rc != SQLITE_OK) {
		snprintf(s->err, sizeof(s->err), "cannot open the store read-only: %s",
		         db ? sqlite3_errmsg(db) : sqlite3_errstr(rc));
		sqlite3_close(db);
		return LOKET_E_STORE;
	}
	sqlite3_busy_timeout(db, 1000);
	sqlite3_limit(db, SQLITE_LIMIT_LENGTH, QUERY_MAX_VALUE);
	sqlite3_limit(db, SQLITE_LIMIT_SQL_LENGTH, QUERY_MAX_SQL);
	sqlite3_limit(db, SQLITE_LIMIT_ATTACHED, 0);
	sqlite3_db_config(db, SQLITE_DBCONFIG_DEFENSIVE, 1, NULL);
	sqlite3_db_config(db, SQLITE_DBCONFIG_ENABLE_LOAD_EXTENSION, 0, NULL);
	sql = views_sql();
	rc = sqlite3_exec(db, sql, NULL, NULL, NULL);
	free(sql);
	if (rc != SQLITE_OK) {
		snprintf(s->err, sizeof(s->err), "cannot create the query views: %s",
		         sqlite3_errmsg(db));
		sqlite3_close(db);
		return LOKET_E_STORE;
	}
	sqlite3_set_authorizer(db, authorize, g);
	*out = db;
	return 0;
}

/*
 * What a refused statement is, for the message: its first keyword
 * ("INSERT", "CREATE", "VACUUM"), or for a statement that starts as a read
 * (SELECT, WITH, VALUES) what the authorizer refused in it.
 */
static void refused_what(const char *sql, const struct guard *g, char *out, size_t outlen)
{
	const char *p = skip_blank(sql);
	size_t n = 0;

	while (n + 1 < outlen && ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z'))) {
		out[n++] = (char)(*p >= 'a' ? *p - 32 : *p);
		p++;
	}
	out[n] = '\0';
	if (n == 0 || !strcmp(out, "SELECT") || !strcmp(out, "WITH") || !strcmp(out, "VALUES"))
		snprintf(out, outlen, "%s", g->denied ? action_name(g->action) : "writing");
}

/* Prepares the one statement sql holds, refusing anything but a read. */
static int prepare_read(struct store *s, sqlite3 *db, const struct guard *g, const char *sql,
                        sqlite3_stmt **out)
{
	sqlite3_stmt *st = NULL;
	const char *tail = NULL;
	char what[64], q[ERROR_QUOTE_SIZE];

	*out = NULL;
	if (sqlite3_prepare_v2(db, sql, -1, &st, &tail) != SQLITE_OK) {
		if (g->denied && g->action == SQLITE_FUNCTION) {
			snprintf(s->err, sizeof(s->err),
			         "refused: loket query runs only reads; the function %s is not"
			         " allowed",
			         error_quote_str(q, sizeof(q), g->what));
		} else if (g->denied) {
			refused_what(sql, g, what, sizeof(what));
			snprintf(s->err, sizeof(s->err),
			         "refused: loket query runs only reads (SELECT); %s is not allowed",
			         what);
		} else {
			snprintf(s->err, sizeof(s->err), "SQL error: %.200s", sqlite3_errmsg(db));
		}
		return LOKET_E_BAD_REQUEST;
	}
	if (!st) {
		snprintf(s->err, sizeof(s->err), "no SQL statement given");
		return LOKET_E_BAD_REQUEST;
	}
	if (*skip_blank(tail)) {
		sqlite3_finalize(st);
		snprintf(s->err, sizeof(s->err),
		         "refused: give exactly one SELECT statement; more follow after the first");
		return LOKET_E_BAD_REQUEST;
	}
	if (!sqlite3_stmt_readonly(st)) {
		sqlite3_finalize(st);
		refused_what(sql, g, what, sizeof(what));
		snprintf(s->err, sizeof(s->err),
		         "refused: loket query runs only reads (SELECT); %s is not allowed", what);
		return LOKET_E_BAD_REQUEST;
	}
	*out = st;
	return 0;
}

int store_query(struct store *s, const char *sql, long limit, json_t **out)
{
	return store_query_for(s, sql, limit, STORE_QUERY_MAX_MS, out);
}

int store_query_for(struct store *s, const char *sql, long limit, int ms, json_t **out)
{
	struct guard g = {0};
	struct clock_limit clk = {0};
	sqlite3 *db = NULL;
	sqlite3_stmt *st = NULL;
	json_t *res = NULL, *cols, *rows;
	size_t bytes = 0;
	int rc, step, n_cols, truncated = 0;

	*out = NULL;
	s->err[0] = '\0';
	if (limit <= 0 || limit > STORE_QUERY_MAX_ROWS)
		limit = STORE_QUERY_MAX_ROWS;
	if ((rc = open_reader(s, &db, &g)) < 0)
		return rc;
	if ((rc = prepare_read(s, db, &g, sql, &st)) < 0)
		goto cleanup;
	res = json_object();
	cols = json_array();
	rows = json_array();
	json_object_set_new(res, "columns", cols);
	json_object_set_new(res, "rows", rows);
	n_cols = sqlite3_column_count(st);
	for (int c = 0; c < n_cols; c++) {
		const char *name = sqlite3_column_name(st, c);
		json_t *v = json_string(name ? name : "?");

		json_array_append_new(cols, v ? v : json_string("?"));
		bytes += name ? strlen(name) + 4 : 4;
	}
	clk.deadline_ms = now_ms() + (ms > 0 && ms < STORE_QUERY_MAX_MS ? ms : STORE_QUERY_MAX_MS);
	sqlite3_progress_handler(db, 1000, progress, &clk);
	while ((step = sqlite3_step(st)) == SQLITE_ROW) {
		json_t *row;

		if ((long)json_array_size(rows) >= limit) {
			truncated = 1;
			break;
		}
		row = json_array();
		for (int c = 0; c < n_cols; c++)
			json_array_append_new(row, value_json(st, c, &bytes));
		/* The reply must stay under LOKET_MAX_MESSAGE_BYTES: cut before it would not. */
		if (bytes > STORE_QUERY_MAX_BYTES) {
			json_decref(row);
			truncated = 1;
			if (json_array_size(rows) > 0)
				break;
			snprintf(s->err, sizeof(s->err),
			         "the first row alone is larger than the %d bytes a reply may hold;"
			         " select fewer or shorter columns",
			         STORE_QUERY_MAX_BYTES);
			rc = LOKET_E_TOO_BIG;
			goto cleanup;
		}
		json_array_append_new(rows, row);
	}
	if (step != SQLITE_ROW && step != SQLITE_DONE) {
		if (clk.stopped) {
			snprintf(s->err, sizeof(s->err),
			         "the query was stopped: loketd is stopping");
			rc = LOKET_E_UNAVAILABLE;
		} else if (clk.expired) {
			snprintf(s->err, sizeof(s->err),
			         "the query ran longer than %d ms and was stopped; narrow it down",
			         ms > 0 && ms < STORE_QUERY_MAX_MS ? ms : STORE_QUERY_MAX_MS);
			rc = LOKET_E_TOO_BIG;
		} else {
			snprintf(s->err, sizeof(s->err), "SQL error: %.200s", sqlite3_errmsg(db));
			rc = LOKET_E_BAD_REQUEST;
		}
		goto cleanup;
	}
	json_object_set_new(res, "truncated", json_boolean(truncated));
	*out = res;
	res = NULL;
cleanup:
	json_decref(res);
	sqlite3_finalize(st);
	sqlite3_close(db);
	return rc;
}
