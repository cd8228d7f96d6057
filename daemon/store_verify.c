/*
 * The offline audit behind `loket verify`: walks every origin's chain in
 * seq order checking decoding, signatures, seq continuity, prev links,
 * stored hashes, roster membership and the federation name, reports fork
 * evidence, then replays the whole log into a scratch in-memory database
 * with the same apply code the store uses and compares the state it gets
 * with the stored digest and with every stored entity row. It only reads
 * the store, so it runs on a store opened STORE_READONLY.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "../proto/error.h"
#include "../proto/limits.h"
#include "store_int.h"

#define VERIFY_MAX_PROBLEMS 1000

struct verify {
	struct store *s;
	json_t *problems;
	size_t n_problems;
	uint8_t (*roster)[32];
	size_t n_roster;
	char federation[LOKET_MAX_FEDERATION_LEN + 1];
	size_t federation_len;
	int have_federation;
	struct store_apply scratch;
	sqlite3 *scratch_db;
};

static void problem(struct verify *v, const uint8_t *origin, uint64_t seq, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* Records one problem; origin NULL and seq 0 for store-wide ones. */
static void problem(struct verify *v, const uint8_t *origin, uint64_t seq, const char *fmt, ...)
{
	char msg[512];
	va_list ap;
	json_t *p;

	v->n_problems++;
	if (v->n_problems > VERIFY_MAX_PROBLEMS)
		return;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	p = json_object();
	json_object_set_new(p, "origin", origin ? store_owner_json(v->s, origin) : json_string(""));
	json_object_set_new(p, "seq", json_integer((json_int_t)seq));
	json_object_set_new(p, "problem", json_string(msg));
	json_array_append_new(v->problems, p);
}

static void hex(const uint8_t b[32], char out[65])
{
	sodium_bin2hex(out, 65, b, 32);
}

static int load_roster(struct verify *v, const json_t *roster)
{
	size_t i;
	json_t *k;

	if (!roster)
		return 0;
	if (!json_is_array(roster))
		return -EINVAL;
	v->roster = calloc(json_array_size(roster) + 1, 32);
	if (!v->roster)
		abort();
	json_array_foreach(roster, i, k)
	{
		const char *b64 = json_string_value(k), *end = NULL;
		size_t bin_len = 0;

		if (b64 &&
		    sodium_base642bin(v->roster[v->n_roster], 32, b64, strlen(b64), NULL, &bin_len,
		                      &end, sodium_base64_VARIANT_ORIGINAL) == 0 &&
		    bin_len == 32 && end == b64 + strlen(b64))
			v->n_roster++;
		else
			problem(v, NULL, 0, "roster entry %zu is not a base64 key", i);
	}
	return 0;
}

static int in_roster(const struct verify *v, const uint8_t origin[32])
{
	for (size_t i = 0; i < v->n_roster; i++)
		if (memcmp(v->roster[i], origin, 32) == 0)
			return 1;
	return 0;
}

static int scratch_open(struct verify *v)
{
	char err[STORE_ERR_MAX];
	int rc;

	if (sqlite3_open_v2(":memory:", &v->scratch_db,
	                    SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_MEMORY,
	                    NULL) != SQLITE_OK ||
	    sqlite3_exec(v->scratch_db, store_entity_sql, NULL, NULL, NULL) != SQLITE_OK ||
	    sqlite3_exec(v->scratch_db, "BEGIN", NULL, NULL, NULL) != SQLITE_OK) {
		snprintf(v->s->err, sizeof(v->s->err), "cannot make a scratch database: %s",
		         v->scratch_db ? sqlite3_errmsg(v->scratch_db) : "out of memory");
		return LOKET_E_STORE;
	}
	if ((rc = store_apply_init(&v->scratch, v->scratch_db, 0, err, sizeof(err))) < 0) {
		snprintf(v->s->err, sizeof(v->s->err), "%s", err);
		return rc;
	}
	return 0;
}

/* Checks and replays one changeset row; *prev_hash gets its recomputed hash. */
static int check_changeset(struct verify *v, const uint8_t origin[32], uint64_t seq,
                           const uint8_t *stored_hash, int stored_hash_len, long long stored_ops,
                           const uint8_t *bytes, size_t len, uint8_t prev_hash[32], size_t *n_ops)
{
	struct changeset cs;
	uint8_t hash[32];
	char err[200], h1[65], h2[65];
	int rc, changed;

	memset(&cs, 0, sizeof(cs));
	store_sha256(bytes, len, hash); /* = changeset_hash, faster */
	if (stored_hash_len != 32 || memcmp(stored_hash, hash, 32) != 0)
		problem(v, origin, seq, "stored hash does not match the changeset's bytes");
	rc = changeset_decode(bytes, len, &cs, err, sizeof(err));
	if (rc < 0) {
		problem(v, origin, seq, "cannot decode: %s", err);
		goto done;
	}
	if (memcmp(cs.origin, origin, 32) != 0 || cs.seq != seq)
		problem(v, origin, seq, "changeset names origin or seq %llu other than its row",
		        (unsigned long long)cs.seq);
	if (changeset_verify(bytes, len, origin) != 0)
		problem(v, origin, seq, "signature does not verify");
	if (memcmp(cs.prev, prev_hash, 32) != 0) {
		hex(cs.prev, h1);
		hex(prev_hash, h2);
		problem(v, origin, seq, "prev %s does not link to seq %llu (hash %s)", h1,
		        (unsigned long long)(seq - 1), h2);
	}
	if (!v->have_federation) {
		v->have_federation = 1;
		v->federation_len = cs.federation_len < LOKET_MAX_FEDERATION_LEN
		                        ? cs.federation_len
		                        : LOKET_MAX_FEDERATION_LEN;
		memcpy(v->federation, cs.federation, v->federation_len);
	} else if (cs.federation_len != v->federation_len ||
	           memcmp(cs.federation, v->federation, v->federation_len) != 0) {
		problem(v, origin, seq, "federation \"%.*s\" differs from \"%s\"",
		        (int)(cs.federation_len < LOKET_MAX_FEDERATION_LEN
		                  ? cs.federation_len
		                  : LOKET_MAX_FEDERATION_LEN),
		        cs.federation, v->federation);
	}
	if (stored_ops != (long long)cs.n_ops)
		problem(v, origin, seq, "row says %lld ops, changeset holds %zu", stored_ops,
		        cs.n_ops);
	/* Replay with the store's own origin rule: ops write the origin's entities. */
	for (size_t i = 0; i < cs.n_ops; i++) {
		rc = store_apply_op(&v->scratch, cs.origin, &cs.ops[i], cs.seq, cs.hlc, 0, &changed,
		                    err, sizeof(err));
		if (rc == LOKET_E_STORE) {
			snprintf(v->s->err, sizeof(v->s->err), "scratch replay failed: %s", err);
			goto done;
		}
		if (rc < 0)
			problem(v, origin, seq, "op %zu cannot be applied: %s", i, err);
	}
	*n_ops += cs.n_ops;
	rc = 0;
done:
	changeset_release(&cs);
	memcpy(prev_hash, hash, 32);
	return rc == LOKET_E_STORE ? rc : 0;
}

/* The stored head of origin must be the last changeset of its chain. */
static int check_head(struct verify *v, const uint8_t origin[32], uint64_t last_seq,
                      const uint8_t last_hash[32])
{
	uint64_t seq;
	uint8_t hash[32];
	int rc = store_head(v->s, origin, &seq, hash);

	if (rc < 0)
		return rc;
	if (seq != last_seq || memcmp(hash, last_hash, 32) != 0)
		problem(v, origin, last_seq, "head says seq %llu, chain ends at seq %llu",
		        (unsigned long long)seq, (unsigned long long)last_seq);
	return 0;
}

static int walk_chains(struct verify *v, long long *n_cs, size_t *n_ops)
{
	sqlite3_stmt *st = NULL;
	uint8_t origin[32], prev_hash[32];
	uint64_t expect = 1;
	int have = 0, rc = 0, step;

	if (sqlite3_prepare_v2(v->s->db,
	                       "SELECT origin, seq, hash, n_ops, bytes FROM changeset"
	                       " ORDER BY origin, seq",
	                       -1, &st, NULL) != SQLITE_OK)
		return store_sqlite_fail(v->s, "cannot read changesets");
	while ((step = sqlite3_step(st)) == SQLITE_ROW) {
		uint64_t seq = (uint64_t)sqlite3_column_int64(st, 1);

		if (sqlite3_column_bytes(st, 0) != 32) {
			problem(v, NULL, seq, "a changeset row has a malformed origin");
			continue;
		}
		if (!have || memcmp(origin, sqlite3_column_blob(st, 0), 32) != 0) {
			if (have && (rc = check_head(v, origin, expect - 1, prev_hash)) < 0)
				goto cleanup;
			have = 1;
			memcpy(origin, sqlite3_column_blob(st, 0), 32);
			memset(prev_hash, 0, 32);
			expect = 1;
			if (v->roster && !in_roster(v, origin))
				problem(v, origin, seq, "origin is not in the roster");
		}
		if (seq != expect)
			problem(v, origin, seq, "seq %llu follows seq %llu: the chain has a gap",
			        (unsigned long long)seq, (unsigned long long)(expect - 1));
		rc = check_changeset(v, origin, seq, sqlite3_column_blob(st, 2),
		                     sqlite3_column_bytes(st, 2), sqlite3_column_int64(st, 3),
		                     sqlite3_column_blob(st, 4),
		                     (size_t)sqlite3_column_bytes(st, 4), prev_hash, n_ops);
		if (rc < 0)
			goto cleanup;
		expect = seq + 1;
		(*n_cs)++;
	}
	if (step != SQLITE_DONE) {
		rc = store_sqlite_fail(v->s, "cannot read changesets");
		goto cleanup;
	}
	if (have)
		rc = check_head(v, origin, expect - 1, prev_hash);
cleanup:
	sqlite3_finalize(st);
	return rc;
}

static int check_forks_and_heads(struct verify *v)
{
	sqlite3_stmt *st = NULL;
	int rc = 0, step;
	char h1[65], h2[65];

	if (sqlite3_prepare_v2(v->s->db,
	                       "SELECT f.origin, f.seq, c.hash, f.hash FROM fork f"
	                       " LEFT JOIN changeset c ON c.origin = f.origin AND c.seq = f.seq"
	                       " ORDER BY f.origin, f.seq, f.hash",
	                       -1, &st, NULL) != SQLITE_OK)
		return store_sqlite_fail(v->s, "cannot read forks");
	while ((step = sqlite3_step(st)) == SQLITE_ROW) {
		if (sqlite3_column_bytes(st, 0) != 32 || sqlite3_column_bytes(st, 3) != 32)
			continue;
		if (sqlite3_column_bytes(st, 2) == 32)
			hex(sqlite3_column_blob(st, 2), h1);
		else
			snprintf(h1, sizeof(h1), "(none held)");
		hex(sqlite3_column_blob(st, 3), h2);
		problem(v, sqlite3_column_blob(st, 0), (uint64_t)sqlite3_column_int64(st, 1),
		        "fork: two changesets for this seq, hashes %s and %s", h1, h2);
	}
	if (step != SQLITE_DONE)
		rc = store_sqlite_fail(v->s, "cannot read forks");
	sqlite3_finalize(st);
	if (rc < 0)
		return rc;
	/* A head with no changesets behind it. */
	if (sqlite3_prepare_v2(v->s->db,
	                       "SELECT h.origin, h.seq FROM head h WHERE NOT EXISTS"
	                       " (SELECT 1 FROM changeset c WHERE c.origin = h.origin)",
	                       -1, &st, NULL) != SQLITE_OK)
		return store_sqlite_fail(v->s, "cannot read heads");
	while ((step = sqlite3_step(st)) == SQLITE_ROW) {
		if (sqlite3_column_bytes(st, 0) == 32)
			problem(v, sqlite3_column_blob(st, 0),
			        (uint64_t)sqlite3_column_int64(st, 1),
			        "head names a seq but no changesets of this origin are held");
	}
	if (step != SQLITE_DONE)
		rc = store_sqlite_fail(v->s, "cannot read heads");
	sqlite3_finalize(st);
	return rc;
}

/* Orders rows as the UNIQUE(coll, id, owner) index does (BINARY collation). */
static int cmp_text(const void *a, int alen, const void *b, int blen)
{
	int n = alen < blen ? alen : blen;
	int c = n > 0 ? memcmp(a, b, (size_t)n) : 0;

	if (c)
		return c;
	return (alen > blen) - (alen < blen);
}

static int cmp_rows(sqlite3_stmt *a, sqlite3_stmt *b)
{
	static const int order[3] = {0, 2, 1}; /* coll, id, owner */

	for (int i = 0; i < 3; i++) {
		int col = order[i];
		const void *pa = sqlite3_column_blob(a, col), *pb = sqlite3_column_blob(b, col);
		int c =
		    cmp_text(pa, sqlite3_column_bytes(a, col), pb, sqlite3_column_bytes(b, col));

		if (c)
			return c;
	}
	return 0;
}

static const uint8_t *row_owner(sqlite3_stmt *st)
{
	return sqlite3_column_bytes(st, 1) == 32 ? sqlite3_column_blob(st, 1) : NULL;
}

static const char entity_scan_sql[] =
    "SELECT coll, owner, id, fields, deleted, digest, seq FROM entity"
    " ORDER BY coll, id, owner";

/*
 * Merge-joins the stored entity rows with the replayed ones. Each stored
 * row's digest is recomputed from its columns; *stored_xor gets the XOR
 * of the recomputed digests.
 */
static int compare_entities(struct verify *v, uint8_t stored_xor[32])
{
	sqlite3_stmt *a = NULL, *b = NULL;
	int rc = 0, sa, sb;

	memset(stored_xor, 0, 32);
	if (sqlite3_prepare_v2(v->s->db, entity_scan_sql, -1, &a, NULL) != SQLITE_OK) {
		rc = store_sqlite_fail(v->s, "cannot read entities");
		goto cleanup;
	}
	if (sqlite3_prepare_v2(v->scratch_db, entity_scan_sql, -1, &b, NULL) != SQLITE_OK) {
		snprintf(v->s->err, sizeof(v->s->err), "cannot read scratch entities: %s",
		         sqlite3_errmsg(v->scratch_db));
		rc = LOKET_E_STORE;
		goto cleanup;
	}
	sa = sqlite3_step(a);
	sb = sqlite3_step(b);
	while (sa == SQLITE_ROW || sb == SQLITE_ROW) {
		int c;

		if (sa != SQLITE_ROW)
			c = 1;
		else if (sb != SQLITE_ROW)
			c = -1;
		else
			c = cmp_rows(a, b);
		if (c <= 0) {
			const char *coll = (const char *)sqlite3_column_text(a, 0);
			const char *id = (const char *)sqlite3_column_text(a, 2);
			const char *fields = (const char *)sqlite3_column_text(a, 3);
			int deleted = sqlite3_column_int(a, 4) != 0;
			uint64_t seq = (uint64_t)sqlite3_column_int64(a, 6);
			uint8_t d[32];

			if (!row_owner(a) || !coll || !id || !fields) {
				problem(v, NULL, seq, "an entity row has missing columns");
				sa = sqlite3_step(a);
				continue;
			}
			store_entity_digest(coll, (size_t)sqlite3_column_bytes(a, 0), row_owner(a),
			                    id, (size_t)sqlite3_column_bytes(a, 2), deleted, fields,
			                    (size_t)sqlite3_column_bytes(a, 3), d);
			for (size_t i = 0; i < 32; i++)
				stored_xor[i] ^= d[i];
			if (sqlite3_column_bytes(a, 5) != 32 ||
			    memcmp(sqlite3_column_blob(a, 5), d, 32) != 0)
				problem(v, row_owner(a), seq,
				        "entity %s/%s: stored digest does not match its fields",
				        coll, id);
			if (c < 0)
				problem(v, row_owner(a), seq,
				        "entity %s/%s is stored but the log does not make it", coll,
				        id);
			else if (sqlite3_column_int(b, 4) != sqlite3_column_int(a, 4) ||
			         cmp_text(fields, sqlite3_column_bytes(a, 3),
			                  sqlite3_column_text(b, 3),
			                  sqlite3_column_bytes(b, 3)) != 0)
				problem(v, row_owner(a), seq,
				        "entity %s/%s: stored fields differ from the replayed log",
				        coll, id);
			sa = sqlite3_step(a);
		} else {
			problem(v, row_owner(b), (uint64_t)sqlite3_column_int64(b, 6),
			        "entity %s/%s is made by the log but not stored",
			        (const char *)sqlite3_column_text(b, 0),
			        (const char *)sqlite3_column_text(b, 2));
		}
		if (c >= 0)
			sb = sqlite3_step(b);
	}
	if (sa != SQLITE_DONE || sb != SQLITE_DONE) {
		snprintf(v->s->err, sizeof(v->s->err), "cannot read entities");
		rc = LOKET_E_STORE;
	}
cleanup:
	sqlite3_finalize(a);
	sqlite3_finalize(b);
	return rc;
}

int store_verify(struct store *s, const json_t *roster, json_t **report)
{
	struct verify v;
	uint8_t stored[32], rows[32];
	char h1[65], h2[65];
	long long n_cs = 0;
	size_t n_ops = 0;
	int rc;

	*report = NULL;
	memset(&v, 0, sizeof(v));
	v.s = s;
	v.problems = json_array();
	s->err[0] = '\0';
	if ((rc = load_roster(&v, roster)) < 0) {
		snprintf(s->err, sizeof(s->err), "roster must be an array of base64 keys");
		goto cleanup;
	}
	if ((rc = scratch_open(&v)) < 0 || (rc = walk_chains(&v, &n_cs, &n_ops)) < 0 ||
	    (rc = check_forks_and_heads(&v)) < 0 || (rc = compare_entities(&v, rows)) < 0)
		goto cleanup;
	store_digest(s, stored);
	if (memcmp(stored, v.scratch.digest, 32) != 0) {
		hex(stored, h1);
		hex(v.scratch.digest, h2);
		problem(&v, NULL, 0, "stored state digest %s differs from the replayed log's %s",
		        h1, h2);
	}
	if (memcmp(stored, rows, 32) != 0) {
		hex(stored, h1);
		hex(rows, h2);
		problem(&v, NULL, 0,
		        "stored state digest %s differs from the digest of the stored entities %s",
		        h1, h2);
	}
	if (v.n_problems > VERIFY_MAX_PROBLEMS) {
		json_t *p = json_object();

		json_object_set_new(p, "origin", json_string(""));
		json_object_set_new(p, "seq", json_integer(0));
		json_object_set_new(
		    p, "problem",
		    json_sprintf("and %zu more problems", v.n_problems - VERIFY_MAX_PROBLEMS));
		json_array_append_new(v.problems, p);
	}
	*report = json_object();
	json_object_set_new(*report, "ok", json_boolean(v.n_problems == 0));
	json_object_set_new(*report, "changesets", json_integer(n_cs));
	json_object_set_new(*report, "ops", json_integer((json_int_t)n_ops));
	json_object_set_new(*report, "digest", store_hex_json(v.scratch.digest));
	json_object_set(*report, "problems", v.problems);
	rc = 0;
cleanup:
	store_apply_fini(&v.scratch);
	sqlite3_close(v.scratch_db);
	json_decref(v.problems);
	free(v.roster);
	return rc;
}
