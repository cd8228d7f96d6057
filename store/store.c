/*
 * The store: opening and creating the SQLite database, members, transactions,
 * and the write path (store_append, store_rebuild). Every changeset is kept
 * byte for byte as signed, next to the head of its origin and any fork
 * evidence; the ops are folded into entity rows by store_apply.c in the same
 * transaction, with the state digest kept both in memory and in the digest
 * table (store_digest.c). The search index is not written here: every
 * entity write takes the next ver, and each commit tells the indexer thread
 * (store_index.c), which keeps the index in a file of its own. Reads live in store_read.c, the
 * offline audit in store_verify.c.
 */
#include <errno.h>
#include <stdarg.h>
#include <limits.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <sodium.h>

#include "common/log.h"
#include "proto/error.h"
#include "proto/limits.h"
#include "store/store_int.h"

static const char schema_sql[] =
    "CREATE TABLE meta(k TEXT PRIMARY KEY, v BLOB) WITHOUT ROWID;"
    "INSERT INTO meta(k, v) VALUES('store_id', randomblob(16));"
    "CREATE TABLE member(key BLOB PRIMARY KEY, name TEXT NOT NULL UNIQUE) WITHOUT ROWID;"
    "CREATE TABLE changeset(rowid INTEGER PRIMARY KEY, origin BLOB NOT NULL,"
    " seq INTEGER NOT NULL, hash BLOB NOT NULL, hlc INTEGER NOT NULL, n_ops INTEGER NOT NULL,"
    " bytes BLOB NOT NULL, UNIQUE(origin, seq));"
    "CREATE INDEX changeset_hlc ON changeset(hlc, seq);"
    "CREATE TABLE head(origin BLOB PRIMARY KEY, seq INTEGER NOT NULL, hash BLOB NOT NULL)"
    " WITHOUT ROWID;"
    "CREATE TABLE fork(origin BLOB NOT NULL, seq INTEGER NOT NULL, hash BLOB NOT NULL,"
    " bytes BLOB NOT NULL, seen INTEGER NOT NULL, UNIQUE(origin, seq, hash));";

/*
 * Schema 1 kept the FTS index in the store, written on every op; schema 2
 * moves it to the index file and numbers entity writes (ver).
 */
static const char migrate_1_sql[] =
    "DROP TABLE IF EXISTS search;"
    "DROP VIEW IF EXISTS search_src;"
    "ALTER TABLE entity ADD COLUMN ver INTEGER NOT NULL DEFAULT 0;"
    "UPDATE entity SET ver = rowid;"
    "CREATE INDEX entity_ver ON entity(ver);"
    "INSERT OR IGNORE INTO meta(k, v) VALUES('store_id', randomblob(16));"
    "PRAGMA user_version = 2;";

int store_sqlite_fail(struct store *s, const char *what)
{
	return store_sqlite_fail_db(s, s->db, what);
}

int store_sql_prepare(struct store *s, const char *sql, sqlite3_stmt **st, const char *what)
{
	if (sqlite3_prepare_v2(s->db, sql, -1, st, NULL) != SQLITE_OK)
		return store_sqlite_fail(s, what);
	return 0;
}

int store_sql_finish(struct store *s, sqlite3_stmt *st, const char *what)
{
	int step = sqlite3_step(st);

	sqlite3_finalize(st);
	if (step != SQLITE_DONE && step != SQLITE_ROW)
		return store_sqlite_fail(s, what);
	return 0;
}

uint8_t *store_sql_blob(sqlite3_stmt *st, int col, size_t *len)
{
	size_t n = (size_t)sqlite3_column_bytes(st, col);
	uint8_t *p = malloc(n ? n : 1);

	if (!p)
		abort();
	if (n)
		memcpy(p, sqlite3_column_blob(st, col), n);
	*len = n;
	return p;
}

int store_sqlite_fail_db(struct store *s, sqlite3 *db, const char *what)
{
	snprintf(s->err, sizeof(s->err), "%s: %s", what, sqlite3_errmsg(db));
	return LOKET_E_STORE;
}

sqlite3 *store_sql_db(struct store *s)
{
	return s->db;
}

void store_set_error(struct store *s, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(s->err, sizeof(s->err), fmt, ap);
	va_end(ap);
}

void store_clear_error(struct store *s)
{
	s->err[0] = '\0';
}

const char *store_errmsg(const struct store *s)
{
	if (!s)
		return "no store";
	if (s->err[0])
		return s->err;
	return sqlite3_errmsg(s->db);
}

/* Runs a prepared statement that returns no rows. */
static int run(struct store *s, sqlite3_stmt *st, const char *what)
{
	int step = sqlite3_step(st);

	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
	if (step != SQLITE_DONE && step != SQLITE_ROW)
		return store_sqlite_fail(s, what);
	return 0;
}

static int prepare(struct store *s, const char *sql, sqlite3_stmt **st)
{
	if (sqlite3_prepare_v3(s->db, sql, -1, SQLITE_PREPARE_PERSISTENT, st, NULL) != SQLITE_OK)
		return store_sqlite_fail(s, "cannot prepare statement");
	return 0;
}

static int pragma_int(sqlite3 *db, const char *sql, long long *out)
{
	sqlite3_stmt *st = NULL;
	int rc = LOKET_E_STORE;

	if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) == SQLITE_OK &&
	    sqlite3_step(st) == SQLITE_ROW) {
		*out = sqlite3_column_int64(st, 0);
		rc = 0;
	}
	sqlite3_finalize(st);
	return rc;
}

static int create_schema(struct store *s, const char *path, char *err, size_t errlen)
{
	long long version = 0, tables = 0;
	char qp[ERROR_QUOTE_SIZE];

	if (sqlite3_exec(s->db, "BEGIN IMMEDIATE", NULL, NULL, NULL) != SQLITE_OK)
		goto fail;
	/* Another process may have created it between our look and the lock. */
	if (pragma_int(s->db, "PRAGMA user_version", &version) < 0 ||
	    pragma_int(s->db, "SELECT count(*) FROM sqlite_master", &tables) < 0)
		goto fail;
	if (version == 0 && tables > 0) {
		sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
		snprintf(err, errlen,
		         "%s is not a loket store: it holds tables but no schema version",
		         error_quote_str(qp, sizeof(qp), path));
		return LOKET_E_SCHEMA;
	}
	if (version == 0) {
		char sql[64];
		int n =
		    snprintf(sql, sizeof(sql), "PRAGMA user_version = %d", STORE_SCHEMA_VERSION);

		if (n < 0 || (size_t)n >= sizeof(sql))
			goto fail;
		if (sqlite3_exec(s->db, store_entity_sql, NULL, NULL, NULL) != SQLITE_OK ||
		    sqlite3_exec(s->db, schema_sql, NULL, NULL, NULL) != SQLITE_OK ||
		    sqlite3_exec(s->db, store_digest_sql, NULL, NULL, NULL) != SQLITE_OK ||
		    sqlite3_exec(s->db, store_tree_sql, NULL, NULL, NULL) != SQLITE_OK ||
		    sqlite3_exec(s->db, store_tlog_sql, NULL, NULL, NULL) != SQLITE_OK ||
		    sqlite3_exec(s->db, store_keys_sql, NULL, NULL, NULL) != SQLITE_OK ||
		    sqlite3_exec(s->db, sql, NULL, NULL, NULL) != SQLITE_OK)
			goto fail;
	}
	if (sqlite3_exec(s->db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK)
		goto fail;
	return 0;
fail:
	snprintf(err, errlen, "cannot create the schema of %s: %s",
	         error_quote_str(qp, sizeof(qp), path), sqlite3_errmsg(s->db));
	sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
	return LOKET_E_STORE;
}

/*
 * Upgrades a store of schema 1 to 2, in one transaction; the index is built
 * anew. store_digest_migrate takes it on to 3.
 */
static int migrate_1(struct store *s, const char *path, char *err, size_t errlen)
{
	char qp[ERROR_QUOTE_SIZE];
	if (sqlite3_exec(s->db, "BEGIN IMMEDIATE", NULL, NULL, NULL) != SQLITE_OK ||
	    sqlite3_exec(s->db, migrate_1_sql, NULL, NULL, NULL) != SQLITE_OK ||
	    sqlite3_exec(s->db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK) {
		snprintf(err, errlen, "cannot upgrade store %s to schema version 2: %s",
		         error_quote_str(qp, sizeof(qp), path), sqlite3_errmsg(s->db));
		sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
		return LOKET_E_STORE;
	}
	log_info("store: %s upgraded to schema version 2 (the search index moves to %s-index)",
	         path, path);
	return 0;
}

/* The highest entity ver: every write since takes a higher one. */
static int load_ver(struct store *s)
{
	long long ver = 0;

	if (pragma_int(s->db, "SELECT coalesce(max(ver), 0) FROM entity", &ver) < 0)
		return store_sqlite_fail(s, "cannot read the entity vers");
	s->apply.ver = ver;
	return 0;
}

static int load_id(struct store *s)
{
	sqlite3_stmt *st = NULL;
	int rc = 0;

	if (sqlite3_prepare_v2(s->db, "SELECT v FROM meta WHERE k = 'store_id'", -1, &st, NULL) !=
	        SQLITE_OK ||
	    sqlite3_step(st) != SQLITE_ROW || sqlite3_column_bytes(st, 0) != 16)
		rc = store_sqlite_fail(s, "cannot read the store id");
	else
		memcpy(s->id, sqlite3_column_blob(st, 0), 16);
	sqlite3_finalize(st);
	return rc;
}

static int prepare_all(struct store *s)
{
	int rc;

	if ((rc = prepare(s, "SELECT seq, hash FROM head WHERE origin = ?1", &s->head_get)) < 0 ||
	    (rc = prepare(
	         s,
	         "INSERT INTO head(origin, seq, hash) VALUES(?1, ?2, ?3)"
	         " ON CONFLICT(origin) DO UPDATE SET seq = excluded.seq, hash = excluded.hash",
	         &s->head_put)) < 0 ||
	    (rc = prepare(s, "SELECT hash FROM changeset WHERE origin = ?1 AND seq = ?2",
	                  &s->cs_hash)) < 0 ||
	    (rc = prepare(s,
	                  "INSERT OR IGNORE INTO changeset(origin, seq, hash, hlc, n_ops, bytes)"
	                  " VALUES(?1, ?2, ?3, ?4, ?5, ?6)",
	                  &s->cs_ins)) < 0 ||
	    (rc = prepare(s, "SELECT 1 FROM fork WHERE origin = ?1 LIMIT 1", &s->fork_any)) < 0 ||
	    (rc = prepare(s, "SAVEPOINT store_append", &s->sp_begin)) < 0 ||
	    (rc = prepare(s, "RELEASE store_append", &s->sp_release)) < 0 ||
	    (rc = prepare(s, "ROLLBACK TO store_append", &s->sp_rollback)) < 0 ||
	    (rc = prepare(s, "BEGIN IMMEDIATE", &s->tx_begin)) < 0 ||
	    (rc = prepare(s, "COMMIT", &s->tx_commit)) < 0 ||
	    (rc = prepare(s, "ROLLBACK", &s->tx_rollback)) < 0 ||
	    (rc = prepare(s, "SELECT name FROM member WHERE key = ?1", &s->member_name)) < 0)
		return rc;
	return store_apply_init(&s->apply, s->db, s->err, sizeof(s->err));
}

/*
 * SQLite counts every allocation under one global mutex unless told not
 * to, and the loop thread and the indexer thread then queue on it: about a
 * tenth of an import's time. It can only be told before it starts.
 */
static void sqlite_setup(void)
{
	(void)sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0);
}

/* What a refused store's message says: the file, what was found, the log beside it, the way out. */
static void damaged(char *err, size_t errlen, const char *path, const char *why, int had_wal)
{
	snprintf(err, errlen,
	         "store %s is damaged: %s%s%s%s; it is not opened for writing: put a backup in"
	         " place with `loket restore FILE` while loketd is stopped",
	         path, why, had_wal ? " (" : "", had_wal ? path : "",
	         had_wal ? "-wal was beside it: the write-ahead log of a process that did not"
	                   " stop cleanly, which SQLite replays into whatever store.db holds; a"
	                   " log left beside a store.db that was replaced by a copy damages the"
	                   " copy)"
	                 : "");
}

/*
 * "file:PATH?immutable=1", with the bytes a URI path may not hold escaped;
 * an absolute path gets an empty authority ("file:///..."), so that one
 * starting with "//" is not read as a host.
 */
static int immutable_uri(const char *path, char *out, size_t outsize)
{
	static const char hex[] = "0123456789ABCDEF";
	size_t n = (size_t)snprintf(out, outsize, "%s", path[0] == '/' ? "file://" : "file:");

	for (const unsigned char *p = (const unsigned char *)path; *p; p++) {
		if (n + 4 > outsize)
			return -ENAMETOOLONG;
		if (*p == '%' || *p == '?' || *p == '#' || *p <= ' ' || *p >= 0x7f) {
			out[n++] = '%';
			out[n++] = hex[*p >> 4];
			out[n++] = hex[*p & 15];
		} else {
			out[n++] = (char)*p;
		}
	}
	int len = snprintf(out + n, outsize - n, "?immutable=1");
	return len < 0 || (size_t)len >= outsize - n ? -ENAMETOOLONG : 0;
}

int store_open(const char *path, unsigned flags, struct store **out, char *err, size_t errlen)
{
	static pthread_once_t setup = PTHREAD_ONCE_INIT;
	struct store *s;
	int oflags, rc, had_wal;
	long long version = 0;
	char qp[ERROR_QUOTE_SIZE];
	char why[STORE_ERR_MAX * 2];

	pthread_once(&setup, sqlite_setup);
	/* Looked at before SQLite replays (and, at close, removes) it. */
	had_wal = !(flags & STORE_READONLY) && store_wal_has_frames(path);
	*out = NULL;
	error_quote_str(qp, sizeof(qp), path);
	s = calloc(1, sizeof(*s));
	if (!s)
		abort();
	s->flags = flags;
	if (flags & STORE_READONLY)
		oflags = SQLITE_OPEN_READONLY;
	else
		oflags = SQLITE_OPEN_READWRITE | ((flags & STORE_CREATE) ? SQLITE_OPEN_CREATE : 0);
	char uri[PATH_MAX * 3 + 32];
	if ((flags & STORE_IMMUTABLE) && (flags & STORE_READONLY)) {
		if (immutable_uri(path, uri, sizeof(uri)) < 0) {
			snprintf(err, errlen, "cannot open store %s: path too long", path);
			rc = -ENAMETOOLONG;
			goto fail;
		}
		oflags |= SQLITE_OPEN_URI;
	}
	rc = sqlite3_open_v2(oflags & SQLITE_OPEN_URI ? uri : path, &s->db, oflags, NULL);
	if (rc != SQLITE_OK) {
		snprintf(err, errlen, "cannot open store %s: %s", qp,
		         s->db ? sqlite3_errmsg(s->db) : sqlite3_errstr(rc));
		rc = rc == SQLITE_CANTOPEN ? LOKET_E_NOT_FOUND : LOKET_E_STORE;
		goto fail;
	}
	sqlite3_busy_timeout(s->db, 5000);
	/*
	 * Until the store has passed its check, closing it must not copy the
	 * log into the file: a refused store stays as it was found.
	 */
	sqlite3_db_config(s->db, SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE, 1, NULL);
	if (sqlite3_exec(s->db, "PRAGMA foreign_keys = ON", NULL, NULL, NULL) != SQLITE_OK ||
	    pragma_int(s->db, "PRAGMA user_version", &version) < 0) {
		int code = sqlite3_errcode(s->db) & 0xff;

		snprintf(why, sizeof(why), "%s", sqlite3_errmsg(s->db));
		if (!(flags & STORE_READONLY) &&
		    (code == SQLITE_CORRUPT || code == SQLITE_NOTADB)) {
			damaged(err, errlen, path, why, had_wal);
			rc = LOKET_E_DAMAGED;
		} else {
			snprintf(err, errlen, "cannot read store %s: %s", qp, why);
			rc = LOKET_E_STORE;
		}
		goto fail;
	}
	if (version > STORE_SCHEMA_VERSION) {
		snprintf(err, errlen,
		         "store %s has schema version %lld but this loket knows only up to %d;"
		         " upgrade loket to open it",
		         qp, version, STORE_SCHEMA_VERSION);
		rc = LOKET_E_SCHEMA;
		goto fail;
	}
	if (version < 0) {
		snprintf(err, errlen, "store %s has an unknown schema version %lld", qp, version);
		rc = LOKET_E_SCHEMA;
		goto fail;
	}
	if (!(flags & STORE_READONLY) && version > 0 &&
	    (rc = store_check_db(s->db, had_wal, why, sizeof(why))) < 0) {
		if (rc != LOKET_E_DAMAGED)
			snprintf(err, errlen, "cannot check store %s: %s", path, why);
		else
			damaged(err, errlen, path, why, had_wal);
		goto fail;
	}
	sqlite3_db_config(s->db, SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE, 0, NULL);
	if (!(flags & STORE_READONLY)) {
		/*
		 * A new store gets 16 KiB pages (before WAL mode fixes the size):
		 * SQLite writes the WAL a page per system call, and with 4 KiB
		 * pages a bulk import spent more time in those calls than in
		 * SQLite; with 64 KiB pages a single put's commit wrote half a
		 * megabyte, and five nodes syncing it on one disk took the
		 * slowest puts past 80 ms. Stores made with another size keep
		 * theirs. 16 MiB of page cache holds the hot indexes of a large
		 * store and keeps loketd inside its 64 MiB memory budget.
		 */
		if ((version == 0 && sqlite3_exec(s->db, "PRAGMA page_size = 16384", NULL, NULL,
		                                  NULL) != SQLITE_OK) ||
		    sqlite3_exec(s->db, "PRAGMA journal_mode = WAL", NULL, NULL, NULL) !=
		        SQLITE_OK ||
		    sqlite3_exec(s->db, "PRAGMA synchronous = FULL", NULL, NULL, NULL) !=
		        SQLITE_OK ||
		    sqlite3_exec(s->db, "PRAGMA cache_size = -16384", NULL, NULL, NULL) !=
		        SQLITE_OK) {
			snprintf(err, errlen, "cannot set up store %s: %s", qp,
			         sqlite3_errmsg(s->db));
			rc = LOKET_E_STORE;
			goto fail;
		}
	}
	if (version == 0) {
		if ((flags & STORE_READONLY) || !(flags & STORE_CREATE)) {
			snprintf(err, errlen, "%s is not a loket store (no schema version)", qp);
			rc = LOKET_E_SCHEMA;
			goto fail;
		}
		if ((rc = create_schema(s, path, err, errlen)) < 0)
			goto fail;
		/* Another process may have made it first, with another loket. */
		if (pragma_int(s->db, "PRAGMA user_version", &version) < 0) {
			snprintf(err, errlen, "cannot read store %s: %s", path,
			         sqlite3_errmsg(s->db));
			rc = LOKET_E_STORE;
			goto fail;
		}
	}
	if (version == 1 && (flags & STORE_READONLY)) {
		snprintf(err, errlen,
		         "store %s has schema version 1; start loketd on it once to upgrade it"
		         " to version %d",
		         qp, STORE_SCHEMA_VERSION);
		rc = LOKET_E_SCHEMA;
		goto fail;
	} else if (version == 1) {
		if ((rc = migrate_1(s, path, err, errlen)) < 0)
			goto fail;
		version = 2;
	}
	if (version == 2 && !(flags & STORE_READONLY)) {
		if ((rc = store_digest_migrate(s, path, err, errlen)) < 0)
			goto fail;
		version = 3;
	}
	if (version == 3 && !(flags & STORE_READONLY)) {
		/*
		 * Schema 4 adds the key history (empty: schema 3 knew no rotation)
		 * and the log trees, made from the changesets; the trees' step sets
		 * the version, so a failure in it leaves a store of 3 to upgrade again.
		 */
		if ((rc = store_keys_migrate(s, path, err, errlen)) < 0 ||
		    (rc = store_tree_migrate(s, path, err, errlen)) < 0)
			goto fail;
		version = 4;
	}
	if ((rc = prepare_all(s)) < 0 || (rc = store_digest_prepare(s, version)) < 0 ||
	    (rc = store_tree_prepare(s, version)) < 0 ||
	    (rc = store_keys_prepare(s, version)) < 0 || (rc = store_load_digest(s)) < 0 ||
	    (rc = load_ver(s)) < 0) {
		snprintf(err, errlen, "cannot open store %s: %s", qp, s->err);
		goto fail;
	}
	s->committed_ver = s->apply.ver;
	if (!(flags & STORE_READONLY)) {
		const char *file = sqlite3_db_filename(s->db, "main");

		if ((rc = load_id(s)) < 0) {
			snprintf(err, errlen, "cannot open store %s: %s", qp, s->err);
			goto fail;
		}
		if ((rc = store_index_start(file && file[0] ? file : path, s->id, s->committed_ver,
		                            &s->index, err, errlen)) < 0 ||
		    (rc = store_ckpt_start(s->db, &s->ckpt, err, errlen)) < 0)
			goto fail;
		if ((rc = store_fork_normalize(s)) < 0) {
			snprintf(err, errlen, "cannot open store %s: %s", path, s->err);
			goto fail;
		}
	}
	s->err[0] = '\0';
	*out = s;
	return 0;
fail:
	store_close(s);
	return rc;
}

void store_close(struct store *s)
{
	if (!s)
		return;
	store_ckpt_stop(s->ckpt);
	store_index_stop(s->index);
	store_apply_fini(&s->apply);
	free(s->counts.c);
	sqlite3_finalize(s->head_get);
	sqlite3_finalize(s->head_put);
	sqlite3_finalize(s->cs_hash);
	sqlite3_finalize(s->cs_ins);
	sqlite3_finalize(s->fork_any);
	sqlite3_finalize(s->digest_get);
	sqlite3_finalize(s->digest_put);
	sqlite3_finalize(s->sp_begin);
	sqlite3_finalize(s->sp_release);
	sqlite3_finalize(s->sp_rollback);
	sqlite3_finalize(s->tx_begin);
	sqlite3_finalize(s->tx_commit);
	sqlite3_finalize(s->tx_rollback);
	sqlite3_finalize(s->member_name);
	store_tree_finalize(s);
	store_keys_fini(s);
	sqlite3_close(s->db);
	free(s);
}

int store_set_member(struct store *s, const uint8_t key[32], const char *name)
{
	sqlite3_stmt *del = NULL, *put = NULL;
	size_t len = strlen(name);
	int rc = 0;

	if (len == 0 || len > LOKET_MAX_NAME_LEN) {
		snprintf(s->err, sizeof(s->err), "member name must be 1..%u bytes",
		         LOKET_MAX_NAME_LEN);
		return -EINVAL;
	}
	/* A name moves to the key the roster now gives it. */
	if ((rc = prepare(s, "DELETE FROM member WHERE name = ?1 AND key <> ?2", &del)) < 0 ||
	    (rc = prepare(s,
	                  "INSERT INTO member(key, name) VALUES(?2, ?1)"
	                  " ON CONFLICT(key) DO UPDATE SET name = excluded.name",
	                  &put)) < 0)
		goto cleanup;
	sqlite3_bind_text(del, 1, name, (int)len, SQLITE_STATIC);
	sqlite3_bind_blob(del, 2, key, 32, SQLITE_STATIC);
	sqlite3_bind_text(put, 1, name, (int)len, SQLITE_STATIC);
	sqlite3_bind_blob(put, 2, key, 32, SQLITE_STATIC);
	if ((rc = run(s, del, "cannot record member")) < 0 ||
	    (rc = run(s, put, "cannot record member")) < 0)
		goto cleanup;
cleanup:
	sqlite3_finalize(del);
	sqlite3_finalize(put);
	return rc;
}

int store_member_key(struct store *s, const char *name, uint8_t key[32])
{
	sqlite3_stmt *st = NULL;
	int rc, step;

	if ((rc = prepare(s, "SELECT key FROM member WHERE name = ?1", &st)) < 0)
		return rc;
	sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
	step = sqlite3_step(st);
	if (step == SQLITE_ROW && sqlite3_column_bytes(st, 0) == 32) {
		memcpy(key, sqlite3_column_blob(st, 0), 32);
		rc = 0;
	} else if (step == SQLITE_ROW || step == SQLITE_DONE) {
		rc = LOKET_E_NOT_FOUND;
	} else {
		rc = store_sqlite_fail(s, "cannot read members");
	}
	sqlite3_finalize(st);
	return rc;
}

int store_resolve_key(struct store *s, const char *name_or_b64, uint8_t key[32])
{
	size_t len = strlen(name_or_b64), bin_len = 0;
	const char *end = NULL;
	int rc = store_member_key(s, name_or_b64, key);

	if (rc != LOKET_E_NOT_FOUND)
		return rc;
	if (sodium_base642bin(key, 32, name_or_b64, len, NULL, &bin_len, &end,
	                      sodium_base64_VARIANT_ORIGINAL) == 0 &&
	    bin_len == 32 && end == name_or_b64 + len)
		return 0;
	return LOKET_E_NOT_FOUND;
}

json_t *store_owner_json(struct store *s, const uint8_t key[32])
{
	char b64[sodium_base64_ENCODED_LEN(32, sodium_base64_VARIANT_ORIGINAL)];
	json_t *v = NULL;

	sqlite3_bind_blob(s->member_name, 1, key, 32, SQLITE_STATIC);
	if (sqlite3_step(s->member_name) == SQLITE_ROW)
		v = json_string((const char *)sqlite3_column_text(s->member_name, 0));
	sqlite3_reset(s->member_name);
	if (v)
		return v;
	sodium_bin2base64(b64, sizeof(b64), key, 32, sodium_base64_VARIANT_ORIGINAL);
	return json_string(b64);
}

json_t *store_hex_json(const uint8_t b[32])
{
	char hex[65];

	sodium_bin2hex(hex, sizeof(hex), b, 32);
	return json_string(hex);
}

int store_begin(struct store *s)
{
	s->spoiled = 0;
	return run(s, s->tx_begin, "cannot begin a transaction");
}

/*
 * After a commit: the indexer learns of the new entities (and, after a
 * rebuild, starts over from an empty index). Only the libuv thread's
 * committed vers are announced, so a read waits for nothing uncommitted.
 */
static int committed(struct store *s)
{
	int rc = 0;

	s->committed_ver = s->apply.ver;
	for (size_t i = 0; s->counts_known && i < s->apply.live.n; i++)
		coll_counts_add(&s->counts, s->apply.live.c[i].coll,
		                strlen(s->apply.live.c[i].coll), s->apply.live.c[i].n);
	s->apply.live.n = 0;
	if (!s->index)
		return 0;
	if (s->index_reset) {
		s->index_reset = 0;
		rc = store_index_reset(s->index, s->err, sizeof(s->err));
	}
	store_index_publish(s->index, s->committed_ver);
	return rc;
}

int store_commit(struct store *s)
{
	int rc;

	if (s->spoiled) {
		snprintf(s->err, sizeof(s->err),
		         "an append failed half way in this transaction; roll it back");
		return LOKET_E_STORE;
	}
	/* The state digest's row goes with the entity rows it sums. */
	if (s->apply.digest_dirty && (rc = store_digest_write(s)) < 0)
		return rc;
	if ((rc = run(s, s->tx_commit, "cannot commit")) < 0)
		return rc;
	/* The changesets are durable; an index that cannot be reset is only logged. */
	if (committed(s) < 0)
		log_error("store: %s", s->err);
	return 0;
}

void store_rollback(struct store *s)
{
	int step = sqlite3_step(s->tx_rollback);

	sqlite3_reset(s->tx_rollback);
	(void)step; /* no transaction to roll back is fine */
	s->spoiled = 0;
	s->index_reset = 0;
	s->apply.live.n = 0;
	/* The committed digest and vers are the truth again. */
	if (store_load_digest(s) < 0)
		store_lanes_set(&s->apply.lanes, NULL);
	if (load_ver(s) < 0)
		s->apply.ver = s->committed_ver;
}

static int head_read(struct store *s, const uint8_t origin[32], uint64_t *seq, uint8_t hash[32])
{
	int step, rc = 0;

	*seq = 0;
	memset(hash, 0, 32);
	sqlite3_bind_blob(s->head_get, 1, origin, 32, SQLITE_STATIC);
	step = sqlite3_step(s->head_get);
	if (step == SQLITE_ROW) {
		*seq = (uint64_t)sqlite3_column_int64(s->head_get, 0);
		if (sqlite3_column_bytes(s->head_get, 1) == 32)
			memcpy(hash, sqlite3_column_blob(s->head_get, 1), 32);
	} else if (step != SQLITE_DONE) {
		rc = store_sqlite_fail(s, "cannot read head");
	}
	sqlite3_reset(s->head_get);
	return rc;
}

int store_head(struct store *s, const uint8_t origin[32], uint64_t *seq, uint8_t hash[32])
{
	return head_read(s, origin, seq, hash);
}

/*
 * An (origin, seq) we already hold: the same changeset again, or a fork,
 * which the caller proves with store_fork_record (the held one and this).
 */
static int append_held(struct store *s, const struct changeset *cs, const uint8_t hash[32])
{
	int step, same = 0;

	sqlite3_bind_blob(s->cs_hash, 1, cs->origin, 32, SQLITE_STATIC);
	sqlite3_bind_int64(s->cs_hash, 2, (sqlite3_int64)cs->seq);
	step = sqlite3_step(s->cs_hash);
	if (step == SQLITE_ROW)
		same = sqlite3_column_bytes(s->cs_hash, 0) == 32 &&
		       memcmp(sqlite3_column_blob(s->cs_hash, 0), hash, 32) == 0;
	sqlite3_reset(s->cs_hash);
	if (step != SQLITE_ROW && step != SQLITE_DONE)
		return store_sqlite_fail(s, "cannot read changeset");
	if (same)
		return 1;
	snprintf(s->err, sizeof(s->err), "fork: a different changeset is held for seq %llu",
	         (unsigned long long)cs->seq);
	return LOKET_E_FORK;
}

static int forked(struct store *s, const uint8_t origin[32], int *yes)
{
	int step;

	sqlite3_bind_blob(s->fork_any, 1, origin, 32, SQLITE_STATIC);
	step = sqlite3_step(s->fork_any);
	sqlite3_reset(s->fork_any);
	if (step != SQLITE_ROW && step != SQLITE_DONE)
		return store_sqlite_fail(s, "cannot read forks");
	*yes = step == SQLITE_ROW;
	return 0;
}

/* Inserts the changeset, moves the head, applies the ops unless they already are. */
static int append_new(struct store *s, const uint8_t *bytes, size_t len, const struct changeset *cs,
                      const uint8_t hash[32], int applied)
{
	int rc, changed;

	sqlite3_bind_blob(s->cs_ins, 1, cs->origin, 32, SQLITE_STATIC);
	sqlite3_bind_int64(s->cs_ins, 2, (sqlite3_int64)cs->seq);
	sqlite3_bind_blob(s->cs_ins, 3, hash, 32, SQLITE_STATIC);
	sqlite3_bind_int64(s->cs_ins, 4, (sqlite3_int64)cs->hlc);
	sqlite3_bind_int64(s->cs_ins, 5, (sqlite3_int64)cs->n_ops);
	sqlite3_bind_blob(s->cs_ins, 6, bytes, (int)len, SQLITE_STATIC);
	/* OR IGNORE spares a statement journal (see store_apply.c); one row it must be. */
	if ((rc = run(s, s->cs_ins, "cannot store changeset")) < 0)
		return rc;
	if (sqlite3_changes(s->db) != 1) {
		snprintf(s->err, sizeof(s->err), "changeset seq %llu is already stored",
		         (unsigned long long)cs->seq);
		return LOKET_E_STORE;
	}
	sqlite3_bind_blob(s->head_put, 1, cs->origin, 32, SQLITE_STATIC);
	sqlite3_bind_int64(s->head_put, 2, (sqlite3_int64)cs->seq);
	sqlite3_bind_blob(s->head_put, 3, hash, 32, SQLITE_STATIC);
	if ((rc = run(s, s->head_put, "cannot move head")) < 0 ||
	    (rc = store_tree_append(s, cs->origin, cs->seq, hash)) < 0)
		return rc;
	if ((rc = store_keys_note(s, cs)) < 0)
		return rc;
	for (size_t i = 0; !applied && i < cs->n_ops; i++) {
		rc = store_apply_op(&s->apply, cs->origin, &cs->ops[i], cs->seq, cs->hlc, 0,
		                    &changed, s->err, sizeof(s->err));
		if (rc < 0)
			return rc;
	}
	return 0;
}

/* The checks and writes of store_append, inside a transaction. */
static int append_in_tx(struct store *s, const uint8_t *bytes, size_t len,
                        const struct changeset *cs, const uint8_t hash[32], int applied)
{
	uint8_t head_hash[32];
	uint64_t head_seq, split;
	int rc, yes;

	if ((rc = head_read(s, cs->origin, &head_seq, head_hash)) < 0)
		return rc;
	if (cs->seq <= head_seq)
		return append_held(s, cs, hash);
	if (cs->seq != head_seq + 1) {
		snprintf(s->err, sizeof(s->err), "seq %llu does not follow head %llu",
		         (unsigned long long)cs->seq, (unsigned long long)head_seq);
		return LOKET_E_BAD_SEQ;
	}
	if (memcmp(cs->prev, head_hash, 32) != 0) {
		snprintf(s->err, sizeof(s->err), "prev of seq %llu is not the hash of seq %llu",
		         (unsigned long long)cs->seq, (unsigned long long)head_seq);
		return LOKET_E_BAD_PREV;
	}
	/* A forked origin is frozen below its proof: its history is in dispute. */
	if ((rc = forked(s, cs->origin, &yes)) < 0)
		return rc;
	if (yes) {
		snprintf(s->err, sizeof(s->err),
		         "origin is frozen by a fork proof; seq %llu is not taken",
		         (unsigned long long)cs->seq);
		return LOKET_E_FROZEN;
	}
	if ((rc = store_split_frozen(s, cs->origin, &split)) < 0)
		return rc;
	if (cs->seq > split) {
		snprintf(
		    s->err, sizeof(s->err),
		    "origin is frozen by a split-view proof at size %llu; seq %llu is not taken",
		    (unsigned long long)split, (unsigned long long)cs->seq);
		return LOKET_E_FROZEN;
	}
	if ((rc = store_keys_check(s, cs)) < 0)
		return rc;
	/*
	 * Everything that can refuse the changeset was checked above; from
	 * here on only SQLite can fail, and then the transaction is spoiled.
	 * (No savepoint per append: each costs a statement journal, and when
	 * the FTS index was written here it halved the rate of small
	 * changesets.)
	 */
	if ((rc = append_new(s, bytes, len, cs, hash, applied)) < 0)
		s->spoiled = 1;
	return rc;
}

/* Refuses what no store may hold: a seq beyond SQLite's integers, an oversized changeset. */
static int append_bounds(struct store *s, size_t len, const struct changeset *cs)
{
	s->err[0] = '\0';
	if (cs->seq == 0 || cs->seq > (uint64_t)INT64_MAX) {
		snprintf(s->err, sizeof(s->err), "seq %llu is out of range",
		         (unsigned long long)cs->seq);
		return LOKET_E_BAD_SEQ;
	}
	if (len > LOKET_MAX_CHANGESET_BYTES) {
		snprintf(s->err, sizeof(s->err), "changeset of %zu bytes is too big", len);
		return LOKET_E_TOO_BIG;
	}
	return 0;
}

int store_append(struct store *s, const uint8_t *bytes, size_t len, const struct changeset *cs,
                 const uint8_t hash[32])
{
	uint8_t made[32];
	int rc, own_tx;

	if ((rc = append_bounds(s, len, cs)) < 0)
		return rc;
	if (!hash) {
		sha256(bytes, len, made); /* = changeset_hash */
		hash = made;
	}
	own_tx = sqlite3_get_autocommit(s->db);
	if (own_tx && (rc = store_begin(s)) < 0)
		return rc;
	rc = append_in_tx(s, bytes, len, cs, hash, 0);
	if (!own_tx)
		return rc;
	/* Fork evidence is kept: only a failure rolls back. */
	if (rc == LOKET_E_STORE || rc == LOKET_E_MALFORMED || rc == LOKET_E_TOO_BIG) {
		store_rollback(s);
		return rc;
	}
	if (store_commit(s) < 0) {
		store_rollback(s);
		return LOKET_E_STORE;
	}
	return rc;
}

int store_apply_local(struct store *s, const uint8_t owner[32], const struct op *op, uint64_t seq,
                      uint64_t hlc, int *changed, int *live)
{
	s->err[0] = '\0';
	if (sqlite3_get_autocommit(s->db)) {
		snprintf(s->err, sizeof(s->err), "a local op is applied inside a transaction");
		return LOKET_E_STORE;
	}
	int rc = store_apply_op(&s->apply, owner, op, seq, hlc, 0, changed, s->err, sizeof(s->err));
	if (rc == LOKET_E_STORE)
		s->spoiled = 1;
	if (live)
		*live = s->apply.last_live;
	return rc;
}

int store_append_applied(struct store *s, const uint8_t *bytes, size_t len,
                         const struct changeset *cs, uint8_t hash[32])
{
	int rc;

	if ((rc = append_bounds(s, len, cs)) < 0)
		return rc;
	if (sqlite3_get_autocommit(s->db)) {
		snprintf(s->err, sizeof(s->err), "applied ops are stored inside their transaction");
		return LOKET_E_STORE;
	}
	sha256(bytes, len, hash);
	return append_in_tx(s, bytes, len, cs, hash, 1);
}

int store_changeset(struct store *s, const uint8_t origin[32], uint64_t seq, uint8_t **bytes,
                    size_t *len)
{
	sqlite3_stmt *st = NULL;
	int rc, step;

	*bytes = NULL;
	*len = 0;
	if ((rc = prepare(s, "SELECT bytes FROM changeset WHERE origin = ?1 AND seq = ?2", &st)) <
	    0)
		return rc;
	sqlite3_bind_blob(st, 1, origin, 32, SQLITE_STATIC);
	sqlite3_bind_int64(st, 2, (sqlite3_int64)seq);
	step = sqlite3_step(st);
	if (step == SQLITE_ROW) {
		*bytes = store_sql_blob(st, 0, len);
		rc = 0;
	} else if (step == SQLITE_DONE) {
		rc = LOKET_E_NOT_FOUND;
	} else {
		rc = store_sqlite_fail(s, "cannot read changeset");
	}
	sqlite3_finalize(st);
	return rc;
}

int store_each_head(struct store *s, store_head_fn *fn, void *arg)
{
	sqlite3_stmt *st = NULL;
	int rc, step;

	if ((rc = prepare(s, "SELECT origin, seq, hash FROM head ORDER BY origin", &st)) < 0)
		return rc;
	while ((step = sqlite3_step(st)) == SQLITE_ROW) {
		if (sqlite3_column_bytes(st, 0) != 32 || sqlite3_column_bytes(st, 2) != 32)
			continue;
		rc = fn(arg, sqlite3_column_blob(st, 0), (uint64_t)sqlite3_column_int64(st, 1),
		        sqlite3_column_blob(st, 2));
		if (rc != 0)
			goto cleanup;
	}
	if (step != SQLITE_DONE)
		rc = store_sqlite_fail(s, "cannot read heads");
cleanup:
	sqlite3_finalize(st);
	return rc;
}

int store_replay(struct store_apply *a, const uint8_t *bytes, size_t len, const uint8_t origin[32],
                 uint64_t seq, size_t *n_ops, char *err, size_t errlen)
{
	struct changeset cs;
	char derr[200];
	int rc, changed;

	memset(&cs, 0, sizeof(cs));
	*n_ops = 0;
	if ((rc = changeset_decode(bytes, len, &cs, derr, sizeof(derr))) < 0) {
		snprintf(err, errlen, "cannot decode: %s", derr);
		return rc;
	}
	if (memcmp(cs.origin, origin, 32) != 0 || cs.seq != seq) {
		snprintf(err, errlen, "stored under another origin or seq than it names");
		rc = LOKET_E_MALFORMED;
		goto cleanup;
	}
	for (size_t i = 0; i < cs.n_ops; i++) {
		rc = store_apply_op(a, cs.origin, &cs.ops[i], cs.seq, cs.hlc, 0, &changed, err,
		                    errlen);
		if (rc < 0)
			goto cleanup;
	}
	*n_ops = cs.n_ops;
cleanup:
	changeset_release(&cs);
	return rc;
}

int store_rebuild(struct store *s)
{
	sqlite3_stmt *st = NULL;
	struct lthash saved;
	int64_t saved_ver = s->apply.ver;
	size_t n_ops;
	int rc, step, own_tx = sqlite3_get_autocommit(s->db);

	s->err[0] = '\0';
	saved = *store_lanes_get(&s->apply.lanes);
	/* Counted again after the commit, whatever happens here. */
	s->counts_known = 0;
	if ((rc = run(s, s->sp_begin, "cannot begin rebuild")) < 0)
		return rc;
	if ((rc = store_changes_note_rebuild(s)) < 0)
		goto undo;
	if (sqlite3_exec(s->db, "DELETE FROM entity", NULL, NULL, NULL) != SQLITE_OK) {
		rc = store_sqlite_fail(s, "cannot clear entities");
		goto undo;
	}
	store_lanes_set(&s->apply.lanes, NULL);
	if ((rc = prepare(s, "SELECT origin, seq, bytes FROM changeset ORDER BY origin, seq",
	                  &st)) < 0)
		goto undo;
	while ((step = sqlite3_step(st)) == SQLITE_ROW) {
		uint64_t seq = (uint64_t)sqlite3_column_int64(st, 1);
		const uint8_t *bytes = sqlite3_column_blob(st, 2);
		size_t len = (size_t)sqlite3_column_bytes(st, 2);
		char why[STORE_ERR_MAX - 40];

		if (sqlite3_column_bytes(st, 0) != 32) {
			rc = LOKET_E_STORE;
			snprintf(s->err, sizeof(s->err), "a changeset row has a malformed origin");
			goto undo;
		}
		rc = store_replay(&s->apply, bytes, len, sqlite3_column_blob(st, 0), seq, &n_ops,
		                  why, sizeof(why));
		if (rc < 0) {
			snprintf(s->err, sizeof(s->err), "changeset seq %llu: %s",
			         (unsigned long long)seq, why);
			goto undo;
		}
	}
	if (step != SQLITE_DONE) {
		rc = store_sqlite_fail(s, "cannot read changesets");
		goto undo;
	}
	sqlite3_finalize(st);
	st = NULL;
	if ((rc = store_digest_write(s)) < 0)
		goto undo;
	if ((rc = run(s, s->sp_release, "cannot finish rebuild")) < 0)
		goto undo;
	/*
	 * The new rows take vers above every old one, but rowids of entities
	 * the rebuild did not make again would keep their documents: the index
	 * starts over, at the commit (now, or that of the caller's transaction).
	 */
	s->index_reset = 1;
	if (own_tx)
		return committed(s);
	return 0;
undo:
	sqlite3_finalize(st);
	sqlite3_step(s->sp_rollback);
	sqlite3_reset(s->sp_rollback);
	sqlite3_step(s->sp_release);
	sqlite3_reset(s->sp_release);
	store_lanes_set(&s->apply.lanes, &saved);
	s->apply.digest_dirty = 1;
	s->apply.ver = saved_ver;
	return rc;
}

int store_search_db(struct store *s, sqlite3 **db)
{
	*db = NULL;
	if (!s->index) {
		snprintf(s->err, sizeof(s->err),
		         "the store is open read-only, without its search index");
		return LOKET_E_STORE;
	}
	/*
	 * Within a read's budget the wait is bounded by it too, and the read
	 * that follows gets its budget afresh: an index behind a bulk import is
	 * then read as it stands instead of failing the read (store_budget.c).
	 */
	if (s->budget.active && s->budget.ms > 0 && s->budget.ms < STORE_INDEX_WAIT_MS) {
		if (store_index_wait(s->index, s->committed_ver, s->budget.ms) != 0 &&
		    !s->budget.waited) {
			s->budget.waited = 1; /* once per budget */
			store_budget_begin(s, s->budget.ms);
			s->budget.waited = 1;
		}
	} else {
		store_index_wait(s->index, s->committed_ver, STORE_INDEX_WAIT_MS);
	}
	*db = store_index_reader(s->index);
	return 0;
}
