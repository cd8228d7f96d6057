/*
 * Reads of the store, each returning a new JSON value in exactly the shape
 * proto/CONTROL.md documents and the CLI prints: entities (get, list,
 * search), the changeset log and the status summary. Owners and origins are
 * shown by member name, else by base64 key. Nothing here writes.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "proto/error.h"
#include "store/store_int.h"

static int prepare(struct store *s, const char *sql, sqlite3_stmt **st)
{
	if (sqlite3_prepare_v2(s->db, sql, -1, st, NULL) != SQLITE_OK)
		return store_sqlite_fail(s, "cannot prepare query");
	return 0;
}

static sqlite3_int64 sql_limit(long limit)
{
	return limit <= 0 ? -1 : (sqlite3_int64)limit;
}

void store_set_hlc(json_t *o, int64_t hlc)
{
	char text[24];

	snprintf(text, sizeof(text), "%lld", (long long)hlc);
	json_object_set_new(o, "hlc", json_integer(hlc));
	json_object_set_new(o, "hlc_text", json_string(text));
}

json_t *store_text_json(sqlite3_stmt *st, int col)
{
	const char *t = (const char *)sqlite3_column_text(st, col);

	return json_stringn(t ? t : "", (size_t)sqlite3_column_bytes(st, col));
}

json_t *store_entity_json(struct store *s, sqlite3_stmt *st)
{
	json_t *e = json_object(), *fields;
	json_error_t jerr;
	const char *f = (const char *)sqlite3_column_text(st, 3);

	fields =
	    f ? json_loadb(f, (size_t)sqlite3_column_bytes(st, 3), JSON_ALLOW_NUL, &jerr) : NULL;
	if (!fields)
		fields = json_object();
	json_object_set_new(e, "coll", store_text_json(st, 0));
	if (sqlite3_column_bytes(st, 1) == 32)
		json_object_set_new(e, "owner", store_owner_json(s, sqlite3_column_blob(st, 1)));
	else
		json_object_set_new(e, "owner", json_string(""));
	json_object_set_new(e, "id", store_text_json(st, 2));
	json_object_set_new(e, "fields", fields);
	json_object_set_new(e, "seq", json_integer(sqlite3_column_int64(st, 4)));
	store_set_hlc(e, sqlite3_column_int64(st, 5));
	return e;
}

/*
 * A reply is one message: a read stops building it once its rows' text
 * passes what a message may hold, instead of building objects of a size
 * without bound (100,000 entities) only to fail when encoding them.
 */
static int reply_full(struct store *s, size_t bytes)
{
	if (bytes <= LOKET_MAX_MESSAGE_BYTES)
		return 0;
	snprintf(s->err, sizeof(s->err),
	         "the reply would exceed the %u bytes of one message; ask for less (a lower "
	         "limit)",
	         LOKET_MAX_MESSAGE_BYTES);
	return LOKET_E_TOO_BIG;
}

/* Steps st to the end, appending one entity per row (plus search extras). */
static int collect(struct store *s, sqlite3_stmt *st, int search, json_t **out)
{
	json_t *arr = json_array();
	size_t bytes = 0;
	int step, rc;

	while ((step = sqlite3_step(st)) == SQLITE_ROW) {
		/* The text of its columns, and the keys and numbers around them. */
		bytes +=
		    64 + (size_t)sqlite3_column_bytes(st, 2) + (size_t)sqlite3_column_bytes(st, 3);
		if (search)
			bytes += 32 + (size_t)sqlite3_column_bytes(st, 7);
		if ((rc = reply_full(s, bytes)) < 0) {
			json_decref(arr);
			return rc;
		}
		json_t *e = store_entity_json(s, st);

		if (search) {
			json_object_set_new(e, "rank", json_real(-sqlite3_column_double(st, 6)));
			json_object_set_new(e, "snippet", store_text_json(st, 7));
		}
		json_array_append_new(arr, e);
	}
	if (step != SQLITE_DONE) {
		json_decref(arr);
		return store_sqlite_fail_db(s, sqlite3_db_handle(st), "cannot read entities");
	}
	*out = arr;
	return 0;
}

static int owner_key(struct store *s, const char *owner, uint8_t key[32])
{
	int rc = store_resolve_key(s, owner, key);
	char q[ERROR_QUOTE_SIZE];

	if (rc == LOKET_E_NOT_FOUND)
		snprintf(s->err, sizeof(s->err), "no member named %s and not a base64 key",
		         error_quote_str(q, sizeof(q), owner));
	return rc;
}

int store_get(struct store *s, const char *coll, const char *id, const char *owner, json_t **out)
{
	sqlite3_stmt *st = NULL;
	uint8_t key[32];
	int rc;

	*out = NULL;
	s->err[0] = '\0';
	if (owner && (rc = owner_key(s, owner, key)) < 0)
		return rc;
	if ((rc = prepare(
	         s,
	         owner ? "SELECT " ENTITY_COLS " FROM entity e"
	                 " WHERE e.coll = ?1 AND e.id = ?2 AND e.owner = ?3 AND e.deleted = 0"
	               : "SELECT " ENTITY_COLS " FROM entity e"
	                 " LEFT JOIN member m ON m.key = e.owner"
	                 " WHERE e.coll = ?1 AND e.id = ?2 AND e.deleted = 0"
	                 " ORDER BY m.name IS NULL, m.name, e.owner",
	         &st)) < 0)
		return rc;
	sqlite3_bind_text(st, 1, coll, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, id, -1, SQLITE_STATIC);
	if (owner)
		sqlite3_bind_blob(st, 3, key, 32, SQLITE_STATIC);
	rc = collect(s, st, 0, out);
	sqlite3_finalize(st);
	return rc;
}

int store_list(struct store *s, const char *coll, const char *owner, long limit, json_t **out)
{
	sqlite3_stmt *st = NULL;
	uint8_t key[32];
	char sql[512];
	int rc, n;

	*out = NULL;
	s->err[0] = '\0';
	if (owner && (rc = owner_key(s, owner, key)) < 0)
		return rc;
	/* Distinct texts per filter, so SQLite can use the (coll, id) index. */
	n = snprintf(sql, sizeof(sql),
	             "SELECT " ENTITY_COLS " FROM entity e WHERE e.deleted = 0%s%s"
	             " ORDER BY e.id, e.coll, e.owner LIMIT ?3",
	             coll ? " AND e.coll = ?1" : "", owner ? " AND e.owner = ?2" : "");
	if (n < 0 || (size_t)n >= sizeof(sql))
		return -ENOMEM;
	if ((rc = prepare(s, sql, &st)) < 0)
		return rc;
	if (coll)
		sqlite3_bind_text(st, 1, coll, -1, SQLITE_STATIC);
	if (owner)
		sqlite3_bind_blob(st, 2, key, 32, SQLITE_STATIC);
	sqlite3_bind_int64(st, 3, sql_limit(limit));
	rc = collect(s, st, 0, out);
	sqlite3_finalize(st);
	return rc;
}

static int is_word_byte(unsigned char c)
{
	return c >= 0x80 || (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') ||
	       (c >= 'A' && c <= 'Z');
}

/* The next word of [*p, end) as store_fts_query reads it: 1 and [*w, *wend), with *prefix. */
static int next_word(const unsigned char **p, const unsigned char *end, const unsigned char **w,
                     const unsigned char **wend, int *prefix)
{
	while (*p < end && !is_word_byte(**p))
		(*p)++;
	if (*p == end)
		return 0;
	*w = *p;
	while (*p < end && is_word_byte(**p))
		(*p)++;
	*wend = *p;
	*prefix = *p < end && **p == '*';
	if (*prefix)
		(*p)++;
	return 1;
}

/* 1 if the word [w, wend) with prefix came before at [start, before). */
static int seen_before(const unsigned char *start, const unsigned char *before,
                       const unsigned char *w, const unsigned char *wend, int prefix)
{
	const unsigned char *p = start, *v, *vend;
	int vprefix;
	while (p < before && next_word(&p, before, &v, &vend, &vprefix))
		if (v < w && vprefix == prefix && vend - v == wend - w &&
		    memcmp(v, w, (size_t)(wend - w)) == 0)
			return 1;
	return 0;
}

int store_search_words(const char *text, size_t *n, char *err, size_t errlen)
{
	size_t len = strlen(text);
	const unsigned char *p = (const unsigned char *)text, *end = p + len, *w, *wend;
	int prefix;

	*n = 0;
	if (len > LOKET_MAX_SEARCH_BYTES) {
		snprintf(err, errlen, "the search text is %zu bytes long; at most %u are read", len,
		         LOKET_MAX_SEARCH_BYTES);
		return LOKET_E_TOO_BIG;
	}
	size_t prefixes = 0;
	/* Repeats count too: each is read (and dropped) by store_fts_query. */
	while (next_word(&p, end, &w, &wend, &prefix)) {
		if (prefix && ++prefixes > LOKET_MAX_SEARCH_PREFIXES) {
			snprintf(err, errlen, "the search has more than %u prefix words (word*)",
			         LOKET_MAX_SEARCH_PREFIXES);
			return LOKET_E_TOO_BIG;
		}
		/*
		 * FTS5 expands a prefix into every term it starts in one step that
		 * SQLite cannot stop: "a*" is most of the vocabulary.
		 */
		if (prefix && (size_t)(wend - w) < LOKET_MIN_SEARCH_PREFIX) {
			char q[ERROR_QUOTE_SIZE];
			snprintf(
			    err, errlen, "a prefix has at least %u letters (got %s)",
			    LOKET_MIN_SEARCH_PREFIX,
			    error_quotef(q, sizeof(q), "%.*s*", (int)(wend - w), (const char *)w));
			return LOKET_E_BAD_REQUEST;
		}
		if (++*n > LOKET_MAX_SEARCH_WORDS) {
			snprintf(err, errlen, "the search has more than %u words",
			         LOKET_MAX_SEARCH_WORDS);
			return LOKET_E_TOO_BIG;
		}
	}
	return 0;
}

/*
 * Turns what a user typed into an FTS5 query that cannot be a syntax error:
 * each word becomes a quoted string (quotes doubled), "word*" a prefix
 * query, and the words are ANDed; a word given twice is taken once (it
 * would only cost the same lookup again). Non-ASCII bytes stay inside words
 * and are left to FTS5's own tokenizer. Returns a malloc'd string ("" if no
 * words).
 */
char *store_fts_query(const char *text)
{
	size_t len = strlen(text), n = 0;
	/* Worst case: every byte a one-letter word: "x"* plus a space, or a quote doubled. */
	char *q = malloc(len * 6 + 1);
	const unsigned char *p = (const unsigned char *)text, *end = p + len, *w, *wend;
	int prefix;

	if (!q)
		abort();
	while (next_word(&p, end, &w, &wend, &prefix)) {
		if (seen_before((const unsigned char *)text, w, w, wend, prefix))
			continue;
		if (n)
			q[n++] = ' ';
		q[n++] = '"';
		for (; w < wend; w++) {
			if (*w == '"')
				q[n++] = '"';
			q[n++] = (char)*w;
		}
		q[n++] = '"';
		if (prefix)
			q[n++] = '*';
	}
	q[n] = '\0';
	return q;
}

int store_search(struct store *s, const char *text, const char *coll, long limit, json_t **out)
{
	sqlite3_stmt *st = NULL;
	sqlite3 *db;
	char *q;
	int rc;

	*out = NULL;
	s->err[0] = '\0';
	size_t words;
	if ((rc = store_search_words(text, &words, s->err, sizeof(s->err))) < 0)
		return rc;
	q = store_fts_query(text);
	if (!q[0]) {
		free(q);
		*out = json_array();
		return 0;
	}
	if ((rc = store_search_db(s, &db)) < 0)
		goto cleanup;
	/* The index may hold a document its entity no longer has: deleted = 0 says. */
	if (sqlite3_prepare_v2(db,
	                       coll ? "SELECT " ENTITY_COLS ", search.rank,"
	                              " snippet(search, 0, '[', ']', '...', 12)"
	                              " FROM main.search JOIN store.entity e"
	                              " ON e.rowid = search.rowid"
	                              " WHERE search MATCH ?1 AND e.coll = ?2"
	                              " AND e.deleted = 0 ORDER BY search.rank LIMIT ?3"
	                            : "SELECT " ENTITY_COLS ", search.rank,"
	                              " snippet(search, 0, '[', ']', '...', 12)"
	                              " FROM main.search JOIN store.entity e"
	                              " ON e.rowid = search.rowid"
	                              " WHERE search MATCH ?1 AND e.deleted = 0"
	                              " ORDER BY search.rank LIMIT ?3",
	                       -1, &st, NULL) != SQLITE_OK) {
		rc = store_sqlite_fail_db(s, db, "cannot prepare the search");
		goto cleanup;
	}
	sqlite3_bind_text(st, 1, q, -1, SQLITE_STATIC);
	if (coll)
		sqlite3_bind_text(st, 2, coll, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 3, sql_limit(limit));
	rc = collect(s, st, 1, out);
cleanup:
	sqlite3_finalize(st);
	free(q);
	return rc;
}

int store_log(struct store *s, const char *origin, long limit, json_t **out)
{
	sqlite3_stmt *st = NULL;
	uint8_t key[32];
	json_t *arr = NULL;
	int rc, step;

	*out = NULL;
	s->err[0] = '\0';
	if (origin && (rc = owner_key(s, origin, key)) < 0)
		return rc;
	rc = prepare(s,
	             origin ? "SELECT origin, seq, hash, hlc, n_ops, length(bytes) FROM changeset"
	                      " WHERE origin = ?1 ORDER BY hlc DESC, seq DESC LIMIT ?2"
	                    : "SELECT origin, seq, hash, hlc, n_ops, length(bytes) FROM changeset"
	                      " ORDER BY hlc DESC, seq DESC LIMIT ?2",
	             &st);
	if (rc < 0)
		return rc;
	if (origin)
		sqlite3_bind_blob(st, 1, key, 32, SQLITE_STATIC);
	sqlite3_bind_int64(st, 2, sql_limit(limit));
	arr = json_array();
	size_t bytes = 0;
	while ((step = sqlite3_step(st)) == SQLITE_ROW) {
		json_t *e;
		uint8_t hash[32] = {0};

		/* A hash in hex, an origin's name, four numbers and six keys. */
		bytes += 160;
		if ((rc = reply_full(s, bytes)) < 0) {
			sqlite3_finalize(st);
			json_decref(arr);
			return rc;
		}
		e = json_object();

		if (sqlite3_column_bytes(st, 2) == 32)
			memcpy(hash, sqlite3_column_blob(st, 2), 32);
		if (sqlite3_column_bytes(st, 0) == 32)
			json_object_set_new(e, "origin",
			                    store_owner_json(s, sqlite3_column_blob(st, 0)));
		else
			json_object_set_new(e, "origin", json_string(""));
		json_object_set_new(e, "seq", json_integer(sqlite3_column_int64(st, 1)));
		json_object_set_new(e, "hash", store_hex_json(hash));
		store_set_hlc(e, sqlite3_column_int64(st, 3));
		json_object_set_new(e, "ops", json_integer(sqlite3_column_int64(st, 4)));
		json_object_set_new(e, "bytes", json_integer(sqlite3_column_int64(st, 5)));
		json_array_append_new(arr, e);
	}
	if (step != SQLITE_DONE) {
		rc = store_sqlite_fail(s, "cannot read the log");
		json_decref(arr);
		arr = NULL;
	}
	sqlite3_finalize(st);
	*out = arr;
	return rc;
}

/* The key of a JSON object member: an owner shown by name or base64. */
static const char *owner_name(struct store *s, const uint8_t key[32], json_t **hold)
{
	*hold = store_owner_json(s, key);
	return json_string_value(*hold);
}

static int status_heads(struct store *s, json_t *heads)
{
	sqlite3_stmt *st = NULL;
	int rc, step;

	if ((rc = prepare(s, "SELECT origin, seq, hash FROM head", &st)) < 0)
		return rc;
	while ((step = sqlite3_step(st)) == SQLITE_ROW) {
		json_t *h = json_object(), *name;
		uint8_t hash[32] = {0};

		if (sqlite3_column_bytes(st, 0) != 32) {
			json_decref(h);
			continue;
		}
		if (sqlite3_column_bytes(st, 2) == 32)
			memcpy(hash, sqlite3_column_blob(st, 2), 32);
		json_object_set_new(h, "seq", json_integer(sqlite3_column_int64(st, 1)));
		json_object_set_new(h, "hash", store_hex_json(hash));
		json_object_set_new(heads, owner_name(s, sqlite3_column_blob(st, 0), &name), h);
		json_decref(name);
	}
	if (step != SQLITE_DONE)
		rc = store_sqlite_fail(s, "cannot read heads");
	sqlite3_finalize(st);
	return rc;
}

/* Counts the live entities of each collection into cc. */
static int count_entities(struct store *s, struct coll_counts *cc)
{
	sqlite3_stmt *st = NULL;
	int rc, step;

	cc->n = 0;
	if ((rc = prepare(s, "SELECT coll, count(*) FROM entity WHERE deleted = 0 GROUP BY coll",
	                  &st)) < 0)
		return rc;
	while ((step = sqlite3_step(st)) == SQLITE_ROW) {
		const char *coll = (const char *)sqlite3_column_text(st, 0);

		if (coll)
			coll_counts_add(cc, coll, (size_t)sqlite3_column_bytes(st, 0),
			                sqlite3_column_int64(st, 1));
	}
	if (step != SQLITE_DONE)
		rc = store_sqlite_fail(s, "cannot count entities");
	sqlite3_finalize(st);
	return rc;
}

/*
 * The live entities per collection. Counting scans every entity, so it is
 * done once and commits keep the numbers (s->counts) since; inside a
 * transaction the scan would see uncommitted rows, so there it is not kept.
 */
static int status_counts(struct store *s, json_t *counts, long long *total)
{
	struct coll_counts scratch = {0};
	const struct coll_counts *cc = &s->counts;
	int rc = 0;

	*total = 0;
	if (!sqlite3_get_autocommit(s->db)) {
		rc = count_entities(s, &scratch);
		cc = &scratch;
	} else if (!s->counts_known) {
		rc = count_entities(s, &s->counts);
		s->counts_known = rc == 0;
	}
	for (size_t i = 0; rc == 0 && i < cc->n; i++) {
		if (cc->c[i].n == 0)
			continue; /* as a count shows it: only collections with live entities */
		json_object_set_new(counts, cc->c[i].coll, json_integer(cc->c[i].n));
		*total += cc->c[i].n;
	}
	free(scratch.c);
	return rc;
}

/* Fork proofs: per origin, its seq and the hashes of its changesets, in hash order. */
static int status_forks(struct store *s, json_t *forks)
{
	sqlite3_stmt *st = NULL;
	json_t *cur = NULL;
	uint8_t cur_origin[32];
	long long cur_seq = -1;
	int rc, step;

	if ((rc = prepare(s,
	                  "SELECT origin, seq, hash FROM fork UNION"
	                  " SELECT c.origin, c.seq, c.hash FROM changeset c, fork f"
	                  " WHERE c.origin = f.origin AND c.seq = f.seq ORDER BY 1, 2, 3",
	                  &st)) < 0)
		return rc;
	while ((step = sqlite3_step(st)) == SQLITE_ROW) {
		const uint8_t *origin = sqlite3_column_blob(st, 0);
		long long seq = sqlite3_column_int64(st, 1);

		if (sqlite3_column_bytes(st, 0) != 32 || sqlite3_column_bytes(st, 2) != 32)
			continue;
		if (!cur || seq != cur_seq || memcmp(origin, cur_origin, 32) != 0) {
			cur = json_object();
			memcpy(cur_origin, origin, 32);
			cur_seq = seq;
			json_object_set_new(cur, "origin", store_owner_json(s, origin));
			json_object_set_new(cur, "seq", json_integer(seq));
			json_object_set_new(cur, "hashes", json_array());
			json_array_append_new(forks, cur);
		}
		json_array_append_new(json_object_get(cur, "hashes"),
		                      store_hex_json(sqlite3_column_blob(st, 2)));
	}
	if (step != SQLITE_DONE)
		rc = store_sqlite_fail(s, "cannot read forks");
	sqlite3_finalize(st);
	return rc;
}

struct splits_ctx {
	struct store *s;
	json_t *a;
};

static int status_split(void *arg, const uint8_t origin[32], uint64_t size)
{
	struct splits_ctx *c = arg;

	json_array_append_new(c->a,
	                      json_pack("{s:o, s:I}", "origin", store_owner_json(c->s, origin),
	                                "size", (json_int_t)size));
	return 0;
}

/*
 * "index": {"behind": entity writes the search index does not hold yet,
 * "failing": whether its last update failed}.
 */
static int status_index(struct store *s, json_t *o)
{
	sqlite3_stmt *st = NULL;
	json_t *ix;
	int rc;

	if ((rc = prepare(s, "SELECT count(*) FROM entity WHERE ver > ?1", &st)) < 0)
		return rc;
	sqlite3_bind_int64(st, 1, store_index_watermark(s->index));
	if (sqlite3_step(st) != SQLITE_ROW) {
		rc = store_sqlite_fail(s, "cannot count what the index lacks");
	} else {
		ix = json_object();
		json_object_set_new(ix, "behind", json_integer(sqlite3_column_int64(st, 0)));
		json_object_set_new(ix, "failing", json_boolean(store_index_failing(s->index)));
		json_object_set_new(o, "index", ix);
	}
	sqlite3_finalize(st);
	return rc;
}

int store_status(struct store *s, json_t **out)
{
	json_t *o = json_object(), *heads = json_object(), *counts = json_object();
	json_t *forks = json_array();
	sqlite3_stmt *st = NULL;
	long long entities = 0, changesets = 0;
	uint8_t digest[32];
	int rc;

	*out = NULL;
	s->err[0] = '\0';
	json_object_set_new(o, "heads", heads);
	json_object_set_new(o, "counts", counts);
	json_object_set_new(o, "forks", forks);
	json_object_set_new(o, "splits", json_array());
	struct splits_ctx sc = {s, json_object_get(o, "splits")};
	if ((rc = status_heads(s, heads)) < 0 || (rc = status_counts(s, counts, &entities)) < 0 ||
	    (rc = status_forks(s, forks)) < 0 ||
	    (rc = store_each_split(s, status_split, &sc)) < 0 ||
	    /*
	     * Each origin's chain is held from seq 1 to its head without a gap
	     * (store_append takes only the seq after the head), so the heads
	     * add up to the changesets held, without counting them.
	     */
	    (rc = prepare(s, "SELECT coalesce(sum(seq), 0) FROM head", &st)) < 0)
		goto fail;
	if (sqlite3_step(st) != SQLITE_ROW) {
		rc = store_sqlite_fail(s, "cannot count changesets");
		goto fail;
	}
	changesets = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	st = NULL;
	if (s->index && (rc = status_index(s, o)) < 0)
		goto fail;
	json_object_set_new(o, "entities", json_integer(entities));
	json_object_set_new(o, "changesets", json_integer(changesets));
	if ((rc = store_digest(s, digest)) < 0)
		goto fail;
	json_object_set_new(o, "digest", store_hex_json(digest));
	*out = o;
	return 0;
fail:
	sqlite3_finalize(st);
	json_decref(o);
	return rc;
}
