/*
 * The store's integrity checks: the one loketd's read-write open runs
 * before it trusts a store, and the one `loket restore` runs on a backup
 * before it puts it in place.
 *
 * What they are for, beyond a disk that went bad: SQLite's write-ahead log
 * carries nothing that ties it to its database file. Its salts and
 * checksums chain its frames to its own header only, so a store.db
 * replaced by a copy (a backup put back by hand) while the old store's
 * store.db-wal stayed beside it gets that log replayed into it, page by
 * page. The result is b-trees whose pages come from two different states:
 * pages past the copy's end that read as zeros (quick_check: "btreeInitPage()
 * returns error code 11"), or tables and indexes that no longer agree
 * (integrity_check: "wrong # of entries in index ..."; quick_check does not
 * compare indexes with their tables and passes those), or heads that name
 * changesets the store does not hold. So an open that found a log beside
 * the store runs the full integrity_check, and every check compares each
 * head with the changeset it names.
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include <sodium.h>

#include "proto/error.h"
#include "store/store_int.h"

#define CHECK_MAX_ERRORS 3   /* lines of a failed check quoted in the message */
#define CHECK_QUOTE_MAX  400 /* bytes of them */
#define WAL_HEADER_BYTES 32  /* a log of no more than its header holds no frames */

int store_wal_has_frames(const char *path)
{
	char wal[PATH_MAX];
	struct stat st;
	int n = snprintf(wal, sizeof(wal), "%s-wal", path);

	if (n < 0 || (size_t)n >= sizeof(wal) || stat(wal, &st) != 0)
		return 0;
	return S_ISREG(st.st_mode) && st.st_size > WAL_HEADER_BYTES;
}

/* SQLite's answer to a check it could not finish: damage, or trouble running it. */
static int check_failed(sqlite3 *db, const char *what, char *err, size_t errlen)
{
	int code = sqlite3_errcode(db) & 0xff;

	snprintf(err, errlen, "%s failed: %s", what, sqlite3_errmsg(db));
	return code == SQLITE_CORRUPT || code == SQLITE_NOTADB ? LOKET_E_DAMAGED : LOKET_E_STORE;
}

/* Appends "SEP line" to err at used, newlines as spaces, up to CHECK_QUOTE_MAX bytes. */
static size_t quote_line(char *err, size_t errlen, size_t used, const char *sep, const char *line)
{
	for (; *sep && used + 1 < errlen; sep++)
		err[used++] = *sep;
	for (; *line && used + 1 < errlen && used < CHECK_QUOTE_MAX; line++)
		err[used++] = *line == '\n' ? ' ' : *line;
	err[used] = '\0';
	return used;
}

/* PRAGMA quick_check or integrity_check: "ok", or lines saying what is wrong. */
static int check_pages(sqlite3 *db, int thorough, char *err, size_t errlen)
{
	const char *what = thorough ? "PRAGMA integrity_check" : "PRAGMA quick_check";
	char sql[64];
	sqlite3_stmt *st = NULL;
	int step, rc = 0, n = snprintf(sql, sizeof(sql), "%s(%d)", what, CHECK_MAX_ERRORS);
	size_t used;

	if (n < 0 || (size_t)n >= sizeof(sql) ||
	    sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK)
		return check_failed(db, what, err, errlen);
	n = snprintf(err, errlen, "%s found", what);
	used = n < 0 ? 0 : (size_t)n < errlen ? (size_t)n : errlen - 1;
	while ((step = sqlite3_step(st)) == SQLITE_ROW) {
		const char *line = (const char *)sqlite3_column_text(st, 0);

		if (!line || strcmp(line, "ok") == 0)
			continue;
		used = quote_line(err, errlen, used, rc ? "; " : ": ", line);
		rc = LOKET_E_DAMAGED;
	}
	if (step != SQLITE_DONE)
		rc = check_failed(db, what, err, errlen);
	else if (rc != 0 && used >= CHECK_QUOTE_MAX)
		quote_line(err, errlen, used, " ...", "");
	sqlite3_finalize(st);
	return rc;
}

/* Every head must name a changeset the store holds, with the same hash. */
static int check_heads(sqlite3 *db, char *err, size_t errlen)
{
	static const char sql[] = "SELECT h.origin, h.seq, h.hash, c.hash FROM head h"
	                          " LEFT JOIN changeset c ON c.origin = h.origin AND c.seq = h.seq";
	char b64[sodium_base64_ENCODED_LEN(32, sodium_base64_VARIANT_ORIGINAL)];
	char want[65], held[65];
	sqlite3_stmt *st = NULL;
	int step, rc = 0;

	if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK)
		return check_failed(db, "reading the heads", err, errlen);
	while (rc == 0 && (step = sqlite3_step(st)) == SQLITE_ROW) {
		long long seq = sqlite3_column_int64(st, 1);
		const void *origin = sqlite3_column_blob(st, 0);
		int origin_len = sqlite3_column_bytes(st, 0);
		const void *h = sqlite3_column_blob(st, 2), *c = sqlite3_column_blob(st, 3);
		int h_len = sqlite3_column_bytes(st, 2), c_len = sqlite3_column_bytes(st, 3);

		if (origin_len != 32 || h_len != 32) {
			snprintf(err, errlen,
			         "a head row is malformed (origin of %d bytes, hash of %d)",
			         origin_len, h_len);
			rc = LOKET_E_DAMAGED;
			break;
		}
		if (c && c_len == 32 && memcmp(h, c, 32) == 0)
			continue;
		sodium_bin2base64(b64, sizeof(b64), origin, 32, sodium_base64_VARIANT_ORIGINAL);
		sodium_bin2hex(want, sizeof(want), h, 32);
		if (!c || c_len != 32) {
			snprintf(err, errlen,
			         "the head of origin %s is seq %lld, which the store does not hold",
			         b64, seq);
		} else {
			sodium_bin2hex(held, sizeof(held), c, 32);
			snprintf(err, errlen,
			         "the head of origin %s is seq %lld with hash %.16s..., but the"
			         " changeset held for seq %lld has hash %.16s...",
			         b64, seq, want, seq, held);
		}
		rc = LOKET_E_DAMAGED;
	}
	if (rc == 0 && step != SQLITE_DONE)
		rc = check_failed(db, "reading the heads", err, errlen);
	sqlite3_finalize(st);
	return rc;
}

int store_check_db(sqlite3 *db, int thorough, char *err, size_t errlen)
{
	int rc = check_pages(db, thorough, err, errlen);

	return rc ? rc : check_heads(db, err, errlen);
}

/* path as an SQLite URI of a file read as it is: no log beside it read or made, no locks. */
static int immutable_uri(const char *path, char *out, size_t outlen)
{
	static const char keep[] = "/-._~";
	size_t n = (size_t)snprintf(out, outlen, "file:");

	for (const unsigned char *p = (const unsigned char *)path; *p; p++) {
		int plain = (*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
		            (*p >= '0' && *p <= '9') || strchr(keep, *p);
		int k = plain ? snprintf(out + n, outlen - n, "%c", *p)
		              : snprintf(out + n, outlen - n, "%%%02X", *p);
		if (k < 0 || (size_t)k >= outlen - n)
			return -ENAMETOOLONG;
		n += (size_t)k;
	}
	int k = snprintf(out + n, outlen - n, "?immutable=1");
	return k < 0 || (size_t)k >= outlen - n ? -ENAMETOOLONG : 0;
}

static int pragma_value(sqlite3 *db, const char *sql, long long *out)
{
	sqlite3_stmt *st = NULL;
	int ok = sqlite3_prepare_v2(db, sql, -1, &st, NULL) == SQLITE_OK &&
	         sqlite3_step(st) == SQLITE_ROW;

	if (ok)
		*out = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	return ok ? 0 : -1;
}

int store_check_file(const char *path, char *err, size_t errlen)
{
	char uri[3 * PATH_MAX + 32], why[STORE_ERR_MAX * 2];
	sqlite3 *db = NULL;
	struct stat st;
	long long version = 0, tables = 0;
	int rc;

	if (stat(path, &st) != 0) {
		rc = -errno;
		snprintf(err, errlen, "cannot read %s: %s", path, strerror(errno));
		return rc;
	}
	if (!S_ISREG(st.st_mode)) {
		snprintf(err, errlen, "%s is not a regular file", path);
		return -EINVAL;
	}
	if ((rc = immutable_uri(path, uri, sizeof(uri))) < 0) {
		snprintf(err, errlen, "%s: path too long", path);
		return rc;
	}
	if (sqlite3_open_v2(uri, &db, SQLITE_OPEN_READONLY | SQLITE_OPEN_URI, NULL) != SQLITE_OK) {
		snprintf(err, errlen, "cannot open %s: %s", path,
		         db ? sqlite3_errmsg(db) : "out of memory");
		rc = LOKET_E_STORE;
		goto cleanup;
	}
	if (pragma_value(db, "PRAGMA user_version", &version) < 0) {
		snprintf(err, errlen, "%s is not a loket store: %s", path, sqlite3_errmsg(db));
		rc = LOKET_E_SCHEMA;
		goto cleanup;
	}
	if (version < 1 || version > STORE_SCHEMA_VERSION) {
		if (version > STORE_SCHEMA_VERSION)
			snprintf(err, errlen,
			         "%s has schema version %lld but this loket knows only up to %d",
			         path, version, STORE_SCHEMA_VERSION);
		else
			snprintf(err, errlen, "%s is not a loket store (schema version %lld)", path,
			         version);
		rc = LOKET_E_SCHEMA;
		goto cleanup;
	}
	if (pragma_value(db,
	                 "SELECT count(*) FROM sqlite_master WHERE type = 'table'"
	                 " AND name IN ('meta', 'member', 'changeset', 'head', 'fork', 'entity')",
	                 &tables) < 0 ||
	    tables != 6) {
		snprintf(err, errlen, "%s is not a loket store: it lacks the tables of one", path);
		rc = LOKET_E_SCHEMA;
		goto cleanup;
	}
	/* Offline, once: the full check is worth its time here. */
	if ((rc = store_check_db(db, 1, why, sizeof(why))) < 0)
		snprintf(err, errlen, "%s is damaged: %s", path, why);
cleanup:
	sqlite3_close(db);
	return rc;
}
