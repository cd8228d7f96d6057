/*
 * Audit bundles (proto/FORMAT.md, section 15): the export of everything a
 * store holds as of one read transaction, so that a running node is
 * exported without stopping it, and the offline check of a bundle with no
 * store at all. The export streams the store's rows into records; the
 * check streams the records back, one at a time, checking every
 * signature, chain link and fork proof and replaying the changesets into
 * a scratch state with the fold store_verify uses, and at the end compares
 * everything the manifest claims (counts, heads, the state digest, the
 * hash of each section and of the file) with what it found. Memory is one
 * record, the origins (with each one's checkpoint note, whose signatures
 * wait for the keys its chain names) and the replayed state, whatever the
 * bundle's size.
 */
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "common/worker.h"
#include "proto/error.h"
#include "proto/limits.h"
#include "proto/merkle.h"
#include "proto/note.h"
#include "store/store_int.h"

#define BUNDLE_MAX_PROBLEMS 1000
/* Changesets at least this big have their signature checked on the worker. */
#define BUNDLE_OFFLOAD_BYTES 16384

static void hex32(const uint8_t b[32], char out[65])
{
	sodium_bin2hex(out, 65, b, 32);
}

static void b64key(const uint8_t k[32], char out[45])
{
	sodium_bin2base64(out, 45, k, 32, sodium_base64_VARIANT_ORIGINAL);
}

/* Export. */

struct export_origin {
	uint8_t key[32];
};

/* The fork proofs' origins, collected before each is read. */
struct origin_list {
	struct export_origin *o;
	size_t n, cap;
};

static int collect_fork(void *arg, const uint8_t origin[32], uint64_t seq)
{
	struct origin_list *l = arg;

	(void)seq;
	if (l->n == l->cap) {
		l->cap = l->cap ? 2 * l->cap : 16;
		l->o = realloc(l->o, l->cap * sizeof(*l->o));
		if (!l->o)
			abort();
	}
	memcpy(l->o[l->n++].key, origin, 32);
	return 0;
}

static int export_roster(struct store *s, struct bundle_writer *w, long long *n,
                         const struct store_bundle_revokes *rev, size_t n_rev)
{
	sqlite3_stmt *st = NULL;
	int rc = 0, step;

	if (sqlite3_prepare_v2(s->db, "SELECT key, name FROM member ORDER BY key", -1, &st, NULL) !=
	    SQLITE_OK)
		return store_sqlite_fail(s, "cannot read members");
	while ((step = sqlite3_step(st)) == SQLITE_ROW) {
		const struct store_bundle_revokes *r = NULL;

		if (sqlite3_column_bytes(st, 0) != 32)
			continue;
		for (size_t i = 0; i < n_rev && !r; i++)
			if (!memcmp(rev[i].origin, sqlite3_column_blob(st, 0), 32) && rev[i].n)
				r = &rev[i];
		rc = bundle_write_member(
		    w, sqlite3_column_blob(st, 0), (const char *)sqlite3_column_text(st, 1),
		    (size_t)sqlite3_column_bytes(st, 1), r ? r->revoked : NULL, r ? r->n : 0);
		if (rc < 0)
			break;
		(*n)++;
	}
	if (rc == 0 && step != SQLITE_DONE)
		rc = store_sqlite_fail(s, "cannot read members");
	sqlite3_finalize(st);
	return rc;
}

struct ck_arg {
	struct bundle_writer *w;
	long long n;
};

static int export_one_checkpoint(void *arg, const uint8_t origin[32], const uint8_t *note,
                                 size_t len, int64_t seen)
{
	struct ck_arg *a = arg;
	struct bundle_part part = {note, len};

	(void)origin;
	(void)seen;
	a->n++;
	return bundle_write(a->w, BUNDLE_CHECKPOINT, &part, 1);
}

static int collect_split(void *arg, const uint8_t origin[32], uint64_t size)
{
	return collect_fork(arg, origin, size);
}

static int export_splits(struct store *s, struct bundle_writer *w, long long *n)
{
	struct origin_list l = {0};
	int rc;

	if ((rc = store_each_split(s, collect_split, &l)) < 0)
		goto cleanup;
	for (size_t i = 0; i < l.n; i++) {
		uint8_t *note[2], be[4];
		size_t len[2];
		uint64_t size;

		if ((rc = store_split_get(s, l.o[i].key, &size, note, len)) < 0)
			goto cleanup;
		be[0] = (uint8_t)(len[0] >> 24);
		be[1] = (uint8_t)(len[0] >> 16);
		be[2] = (uint8_t)(len[0] >> 8);
		be[3] = (uint8_t)len[0];
		struct bundle_part parts[3] = {{be, 4}, {note[0], len[0]}, {note[1], len[1]}};
		rc = bundle_write(w, BUNDLE_SPLIT, parts, 3);
		free(note[0]);
		free(note[1]);
		if (rc < 0)
			goto cleanup;
		(*n)++;
	}
cleanup:
	free(l.o);
	return rc;
}

static int export_forks(struct store *s, struct bundle_writer *w, long long *n)
{
	struct origin_list l = {0};
	int rc;

	if ((rc = store_each_fork(s, collect_fork, &l)) < 0)
		goto cleanup;
	for (size_t i = 0; i < l.n; i++) {
		uint8_t *bytes[2];
		size_t len[2];
		uint64_t seq;

		if ((rc = store_fork_proof(s, l.o[i].key, &seq, bytes, len)) < 0)
			goto cleanup;
		rc = bundle_write_fork(w, l.o[i].key, seq, bytes[0], len[0], bytes[1], len[1]);
		free(bytes[0]);
		free(bytes[1]);
		if (rc < 0)
			goto cleanup;
		(*n)++;
	}
cleanup:
	free(l.o);
	return rc;
}

struct export_state {
	struct bundle_head *heads;
	size_t n_heads;
	uint64_t n_ops, n_changesets;
	char federation[LOKET_MAX_FEDERATION_LEN];
	size_t federation_len;
};

static int export_changesets(struct store *s, struct bundle_writer *w, struct export_state *x)
{
	sqlite3_stmt *st = NULL;
	int rc = 0, step;

	if (sqlite3_prepare_v2(s->db,
	                       "SELECT origin, seq, hash, n_ops, bytes FROM changeset"
	                       " ORDER BY origin, seq",
	                       -1, &st, NULL) != SQLITE_OK)
		return store_sqlite_fail(s, "cannot read changesets");
	while ((step = sqlite3_step(st)) == SQLITE_ROW) {
		const uint8_t *origin = sqlite3_column_blob(st, 0);
		const uint8_t *bytes = sqlite3_column_blob(st, 4);
		size_t len = (size_t)sqlite3_column_bytes(st, 4);
		struct bundle_part part = {bytes, len};
		struct bundle_head *h;

		if (sqlite3_column_bytes(st, 0) != 32 || sqlite3_column_bytes(st, 2) != 32) {
			store_set_error(s, "a changeset row has a malformed origin or hash");
			rc = LOKET_E_STORE;
			break;
		}
		if (!x->federation_len) {
			struct changeset cs;
			char err[200];
			if (changeset_decode(bytes, len, &cs, err, sizeof(err)) == 0) {
				x->federation_len = cs.federation_len;
				memcpy(x->federation, cs.federation, cs.federation_len);
				changeset_release(&cs);
			}
		}
		if (!x->n_heads || memcmp(x->heads[x->n_heads - 1].origin, origin, 32) != 0) {
			if (x->n_heads == BUNDLE_MAX_ORIGINS) {
				store_set_error(s,
				                "the store holds more than %u origins, more than a "
				                "bundle lists",
				                BUNDLE_MAX_ORIGINS);
				rc = LOKET_E_TOO_BIG;
				break;
			}
			memcpy(x->heads[x->n_heads++].origin, origin, 32);
		}
		h = &x->heads[x->n_heads - 1];
		h->seq = (uint64_t)sqlite3_column_int64(st, 1);
		memcpy(h->hash, sqlite3_column_blob(st, 2), 32);
		if ((rc = bundle_write(w, BUNDLE_CHANGESET, &part, 1)) < 0)
			break;
		x->n_ops += (uint64_t)sqlite3_column_int64(st, 3);
		x->n_changesets++;
	}
	if (rc == 0 && step != SQLITE_DONE)
		rc = store_sqlite_fail(s, "cannot read changesets");
	sqlite3_finalize(st);
	return rc;
}

static int count_entities(struct store *s, uint64_t *n)
{
	sqlite3_stmt *st = NULL;
	int rc = 0;

	if (sqlite3_prepare_v2(s->db, "SELECT count(*) FROM entity", -1, &st, NULL) != SQLITE_OK)
		return store_sqlite_fail(s, "cannot count entities");
	if (sqlite3_step(st) == SQLITE_ROW)
		*n = (uint64_t)sqlite3_column_int64(st, 0);
	else
		rc = store_sqlite_fail(s, "cannot count entities");
	sqlite3_finalize(st);
	return rc;
}

int store_bundle_export(struct store *s, const char *federation,
                        const struct store_bundle_revokes *revokes, size_t n_revokes,
                        bundle_write_fn *fn, void *arg, json_t **summary)
{
	struct bundle_writer w;
	struct export_state x;
	struct bundle_manifest m;
	long long n_members = 0, n_forks = 0, n_splits = 0;
	struct ck_arg ck = {&w, 0};
	int rc, own_tx = 0;
	uint8_t digest[32];
	const struct lthash *sum;

	*summary = NULL;
	memset(&x, 0, sizeof(x));
	memset(&m, 0, sizeof(m));
	s->err[0] = '\0';
	x.heads = calloc(BUNDLE_MAX_ORIGINS, sizeof(*x.heads));
	if (!x.heads)
		abort();
	if (federation) {
		x.federation_len = strlen(federation);
		if (x.federation_len < 1 || x.federation_len > LOKET_MAX_FEDERATION_LEN) {
			store_set_error(s, "the federation's name must be 1 to %u bytes",
			                LOKET_MAX_FEDERATION_LEN);
			rc = LOKET_E_CONFIG;
			goto cleanup;
		}
		memcpy(x.federation, federation, x.federation_len);
	}
	/*
	 * One read transaction: a node writing meanwhile must not give the
	 * bundle the log of one moment and the digest of another. The
	 * digest, read first, fixes the snapshot.
	 */
	if (sqlite3_get_autocommit(s->db)) {
		if (sqlite3_exec(s->db, "BEGIN", NULL, NULL, NULL) != SQLITE_OK) {
			rc = store_sqlite_fail(s, "cannot start reading the store");
			goto cleanup;
		}
		own_tx = 1;
		if ((rc = store_load_digest(s)) < 0)
			goto cleanup;
	}
	if ((rc = store_digest_sum(s, &sum)) < 0)
		goto cleanup;
	lthash_digest(sum, digest);
	if ((rc = bundle_writer_init(&w, fn, arg)) < 0 ||
	    (rc = export_roster(s, &w, &n_members, revokes, n_revokes)) < 0 ||
	    (rc = store_each_checkpoint(s, export_one_checkpoint, &ck)) < 0 ||
	    (rc = export_splits(s, &w, &n_splits)) < 0 ||
	    (rc = export_forks(s, &w, &n_forks)) < 0 || (rc = export_changesets(s, &w, &x)) < 0 ||
	    (rc = count_entities(s, &m.n_entities)) < 0)
		goto fail;
	if (!x.federation_len) {
		store_set_error(s,
		                "the store holds no changeset, so it cannot tell the federation");
		rc = LOKET_E_NOT_FOUND;
		goto cleanup;
	}
	m.federation = x.federation;
	m.federation_len = x.federation_len;
	m.n_origins = (uint32_t)x.n_heads;
	m.n_ops = x.n_ops;
	memcpy(m.digest, digest, 32);
	if ((rc = bundle_write_finish(&w, &m, x.heads)) < 0)
		goto fail;
	*summary = json_pack("{s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:o}", "changesets",
	                     (json_int_t)x.n_changesets, "ops", (json_int_t)x.n_ops, "origins",
	                     (json_int_t)x.n_heads, "members", (json_int_t)n_members, "checkpoints",
	                     (json_int_t)ck.n, "splits", (json_int_t)n_splits, "forks",
	                     (json_int_t)n_forks, "digest", store_hex_json(digest));
	rc = 0;
	goto cleanup;
fail:
	if (!s->err[0])
		store_set_error(s, "cannot write the bundle: %s", loket_strerror(rc));
cleanup:
	if (own_tx)
		sqlite3_exec(s->db, "COMMIT", NULL, NULL, NULL);
	free(x.heads);
	return rc;
}

/* Verification. */

struct bv_member {
	uint8_t key[32];
	char name[LOKET_MAX_NAME_LEN + 1];
	size_t n_revoked; /* version 2: the keys the roster revokes for it */
	struct bundle_revoke revoked[BUNDLE_MAX_REVOKES];
};

struct bv_origin {
	uint8_t key[32];
	uint64_t seq; /* of the last changeset taken */
	uint8_t hash[32];
	uint64_t fork; /* the seq of its fork proof, 0 if none */
	int has_changesets;
	/* Its checkpoint, when the bundle has one: the tree of its changesets must match it. */
	int has_checkpoint;
	uint64_t ck_size;
	uint8_t ck_root[32];
	json_t *ck; /* its entry in the report's "checkpoints" */
	/*
	 * Its signatures are checked after the changesets, under the key the
	 * chain names for seq size + 1 (ck_key, once the tree reaches size)
	 * and each cosigner's newest key: so the note is kept until then.
	 */
	uint8_t *ck_note;
	size_t ck_len;
	uint64_t ck_offset;
	uint8_t ck_key[32];
	int ck_key_set;
	/* The keys of its chain as far as read (FORMAT.md, 14.2). */
	struct store_keychain kc;
	/* A one-note split-view proof: its root must not be the tree's at its size. */
	uint64_t split_size;
	uint8_t split_root[32];
	json_t *split; /* its entry in the report's "splits" */
	struct merkle_frontier tree;
};

struct sig_job {
	const uint8_t *p;
	size_t len;
	uint8_t origin[32];
	int ok;
	uint8_t hash[32];
};

struct bverify {
	json_t *problems;
	size_t n_problems;
	json_t *forks;
	json_t *checkpoints;
	json_t *splits;
	struct note *note; /* one parsed note at a time */
	struct note *note2;
	struct bv_member *members;
	size_t n_members;
	struct bv_origin *origins; /* in key order, as the sections list them */
	size_t n_origins;
	struct bv_origin *cur; /* the origin of the changeset last read */
	uint64_t expect;       /* the seq the next changeset of cur must have */
	char federation[LOKET_MAX_FEDERATION_LEN];
	size_t federation_len;
	uint64_t n_changesets, n_ops;
	struct store_scratch *sc;
	struct worker *worker;
	struct sig_job job;
	int section; /* of the record being checked */
	uint8_t last_fork[32];
	int have_fork;
	uint8_t last_ck[32];
	int have_ck;
	uint8_t last_split[32];
	int have_split;
};

static const struct bv_member *find_member(const struct bverify *v, const uint8_t key[32])
{
	size_t lo = 0, hi = v->n_members;

	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		int c = memcmp(v->members[mid].key, key, 32);
		if (c == 0)
			return &v->members[mid];
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return NULL;
}

/* An origin as messages show it: its roster name, else its key in base64. */
static json_t *origin_json(const struct bverify *v, const uint8_t key[32])
{
	const struct bv_member *m = find_member(v, key);
	char b64[45];

	if (m)
		return json_string(m->name);
	b64key(key, b64);
	return json_string(b64);
}

static void problem(struct bverify *v, int section, const uint8_t *origin, uint64_t seq,
                    const char *fmt, ...) __attribute__((format(printf, 5, 6)));

/*
 * One problem; section -1 for the manifest, -2 for the end record, -3 for
 * the file as a whole (its magic); origin NULL when none is known.
 */
static void problem(struct bverify *v, int section, const uint8_t *origin, uint64_t seq,
                    const char *fmt, ...)
{
	char msg[640];
	va_list ap;
	json_t *p;

	v->n_problems++;
	if (v->n_problems > BUNDLE_MAX_PROBLEMS)
		return;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	p = json_object();
	json_object_set_new(p, "section",
	                    section >= 0
	                        ? json_string(bundle_section_name((enum bundle_section)section))
	                    : section == -1 ? json_string("manifest")
	                    : section == -2 ? json_string("end")
	                                    : json_string("bundle"));
	json_object_set_new(p, "origin", origin ? origin_json(v, origin) : json_null());
	json_object_set_new(p, "seq", origin && seq ? json_integer((json_int_t)seq) : json_null());
	json_object_set_new(p, "problem", json_string(msg));
	json_array_append_new(v->problems, p);
}

/* The origin of key, added in order; NULL (and a problem) when out of order or too many. */
static struct bv_origin *origin_at(struct bverify *v, const uint8_t key[32], int *is_new)
{
	*is_new = 0;
	if (v->n_origins && memcmp(v->origins[v->n_origins - 1].key, key, 32) == 0)
		return &v->origins[v->n_origins - 1];
	for (size_t i = 0; i < v->n_origins; i++)
		if (memcmp(v->origins[i].key, key, 32) == 0)
			return &v->origins[i];
	if (v->n_origins == BUNDLE_MAX_ORIGINS)
		return NULL;
	memset(&v->origins[v->n_origins], 0, sizeof(v->origins[0]));
	memcpy(v->origins[v->n_origins].key, key, 32);
	merkle_frontier_init(&v->origins[v->n_origins].tree);
	store_keychain_start(&v->origins[v->n_origins].kc, key);
	*is_new = 1;
	return &v->origins[v->n_origins++];
}

static void check_member(struct bverify *v, const struct bundle_record *rec)
{
	struct bundle_member m;
	char err[300];

	if (bundle_decode_member(rec->p, rec->len, &m, err, sizeof(err)) < 0) {
		problem(v, BUNDLE_S_ROSTER, NULL, 0, "entry %llu at byte %llu: %s",
		        (unsigned long long)v->n_members + 1, (unsigned long long)rec->offset, err);
		return;
	}
	if (v->n_members && memcmp(v->members[v->n_members - 1].key, m.key, 32) >= 0) {
		char b64[45];
		b64key(m.key, b64);
		problem(
		    v, BUNDLE_S_ROSTER, NULL, 0,
		    "entry %llu at byte %llu: key %s does not follow the entry before it in key "
		    "order",
		    (unsigned long long)v->n_members + 1, (unsigned long long)rec->offset, b64);
		return;
	}
	if (v->n_members == BUNDLE_MAX_ORIGINS) {
		problem(v, BUNDLE_S_ROSTER, NULL, 0, "more than %u entries", BUNDLE_MAX_ORIGINS);
		return;
	}
	memcpy(v->members[v->n_members].key, m.key, 32);
	memcpy(v->members[v->n_members].name, m.name, m.name_len);
	v->members[v->n_members].n_revoked = m.n_revoked;
	memcpy(v->members[v->n_members].revoked, m.revoked, sizeof(m.revoked));
	v->members[v->n_members].name[m.name_len] = '\0';
	v->n_members++;
}

/* The federation of the first changeset met; a later one must have the same. */
static int check_federation(struct bverify *v, const struct changeset *cs)
{
	if (!v->federation_len) {
		v->federation_len = cs->federation_len;
		memcpy(v->federation, cs->federation, cs->federation_len);
		return 1;
	}
	return cs->federation_len == v->federation_len &&
	       memcmp(cs->federation, v->federation, v->federation_len) == 0;
}

/* Why one changeset of a fork proof does not hold, or NULL. */
static const char *fork_flaw(struct bverify *v, const struct bundle_fork *f, const uint8_t *p,
                             size_t len)
{
	struct changeset cs;
	char err[200];
	const char *flaw = NULL;

	if (changeset_decode(p, len, &cs, err, sizeof(err)) < 0)
		return "a changeset of the proof does not decode";
	if (memcmp(cs.origin, f->origin, 32) != 0 || cs.seq != f->seq)
		flaw = "a changeset of the proof names another origin or seq than the record";
	else if (!check_federation(v, &cs))
		flaw = "a changeset of the proof is of another federation";
	else if (changeset_verify(p, len, f->origin) != 0)
		flaw = "the signature of a changeset of the proof does not verify";
	changeset_release(&cs);
	return flaw;
}

static void check_fork(struct bverify *v, const struct bundle_record *rec)
{
	struct bundle_fork f;
	struct bv_origin *o;
	uint8_t ha[32], hb[32];
	char err[300], h1[65], h2[65];
	const char *flaw;
	int is_new;

	if (bundle_decode_fork(rec->p, rec->len, &f, err, sizeof(err)) < 0) {
		problem(v, BUNDLE_S_FORKS, NULL, 0, "record at byte %llu: %s",
		        (unsigned long long)rec->offset, err);
		return;
	}
	if (v->have_fork && memcmp(v->last_fork, f.origin, 32) >= 0) {
		problem(v, BUNDLE_S_FORKS, f.origin, f.seq,
		        "the proof does not follow the one before it in origin order (one proof an "
		        "origin)");
		return;
	}
	memcpy(v->last_fork, f.origin, 32);
	v->have_fork = 1;
	if (!(o = origin_at(v, f.origin, &is_new))) {
		problem(v, BUNDLE_S_FORKS, f.origin, f.seq, "more than %u origins",
		        BUNDLE_MAX_ORIGINS);
		return;
	}
	o->fork = f.seq;
	sha256(f.a, f.la, ha);
	sha256(f.b, f.lb, hb);
	hex32(ha, h1);
	hex32(hb, h2);
	if ((flaw = fork_flaw(v, &f, f.a, f.la)) || (flaw = fork_flaw(v, &f, f.b, f.lb))) {
		problem(v, BUNDLE_S_FORKS, f.origin, f.seq, "fork proof: %s", flaw);
		return;
	}
	if (memcmp(ha, hb, 32) >= 0) {
		problem(v, BUNDLE_S_FORKS, f.origin, f.seq,
		        "fork proof: its two changesets are %s, not two changesets in hash order",
		        memcmp(ha, hb, 32) == 0 ? "the same" : "in the wrong order");
		return;
	}
	json_t *j = json_object();
	json_object_set_new(j, "origin", origin_json(v, f.origin));
	json_object_set_new(j, "seq", json_integer((json_int_t)f.seq));
	json_object_set_new(j, "hashes", json_pack("[s,s]", h1, h2));
	json_array_append_new(v->forks, j);
}

/*
 * The newest key of a member: that of the last changeset of its chain in
 * the bundle, the key itself when none. The origins are in key order
 * once the changesets are read (check_checkpoint_sigs sorts them), which
 * is when cosignatures are checked.
 */
static const uint8_t *newest_key(const struct bverify *v, const uint8_t key[32])
{
	size_t lo = 0, hi = v->n_origins;

	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		int c = memcmp(v->origins[mid].key, key, 32);
		if (c == 0)
			return v->origins[mid].kc.signer;
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return key;
}

/*
 * A signed checkpoint of an origin (FORMAT.md, sections 11 and 12): its
 * note parses, its text is a loket checkpoint of this federation, the
 * origin's own signature verifies, and *names gets the members of the
 * roster (not the origin) whose cosignature verifies; a line of a member
 * that does not verify is a problem. Returns 0, or -1 after a problem.
 */
static int check_note(struct bverify *v, int section, const uint8_t *p, size_t len, struct note *n,
                      struct note_checkpoint *c, uint8_t origin[32], json_t *names,
                      const char *what, uint64_t offset, int sigs, const uint8_t *sigkey)
{
	char err[300], fed[LOKET_MAX_FEDERATION_LEN + 1];
	int rc;

	if (note_parse(p, len, n, err, sizeof(err)) < 0 ||
	    note_checkpoint_parse(n->text, n->text_len, c, err, sizeof(err)) < 0) {
		problem(v, section, NULL, 0, "%s at byte %llu: %s", what,
		        (unsigned long long)offset, err);
		return -1;
	}
	if (note_origin_parse(c->origin, c->origin_len, fed, sizeof(fed), origin) < 0) {
		problem(v, section, NULL, 0,
		        "%s at byte %llu: its origin line is not loket/FEDERATION/ORIGIN", what,
		        (unsigned long long)offset);
		return -1;
	}
	if (!v->federation_len) {
		v->federation_len = strlen(fed);
		memcpy(v->federation, fed, v->federation_len);
	} else if (strlen(fed) != v->federation_len ||
	           memcmp(fed, v->federation, v->federation_len) != 0) {
		char q[ERROR_QUOTE_SIZE];
		problem(v, section, origin, c->size, "%s names the federation %s", what,
		        error_quote_str(q, sizeof(q), fed));
		return -1;
	}
	if (!sigs)
		return 0;
	rc = note_verify(n, (const uint8_t *)c->origin, c->origin_len, sigkey ? sigkey : origin);
	if (rc < 0) {
		problem(v, section, origin, c->size, "%s of size %llu: %s", what,
		        (unsigned long long)c->size,
		        rc == LOKET_E_NOT_FOUND ? "the origin's signature is missing"
		                                : "the origin's signature does not verify");
		return -1;
	}
	for (size_t i = 0; names && i < v->n_members; i++) {
		const struct bv_member *m = &v->members[i];
		struct note_checkpoint mc;
		uint64_t ts;

		if (!memcmp(m->key, origin, 32) || note_origin_line(v->federation, m->key, &mc) < 0)
			continue;
		/* A member cosigns with its newest key (FORMAT.md, 14.2 and 15.5). */
		rc = note_verify_cosig(n, (const uint8_t *)mc.origin, mc.origin_len,
		                       newest_key(v, m->key), &ts);
		if (rc == 0)
			json_array_append_new(names, json_string(m->name));
		else if (rc != LOKET_E_NOT_FOUND)
			problem(v, section, origin, c->size,
			        "%s of size %llu: the cosignature of %s does not verify", what,
			        (unsigned long long)c->size, m->name);
	}
	return 0;
}

static void check_checkpoint(struct bverify *v, const struct bundle_record *rec)
{
	struct note_checkpoint c;
	struct bv_origin *o;
	uint8_t origin[32];
	json_t *names = json_array();
	char b64[45];
	int is_new;

	if (check_note(v, BUNDLE_S_CHECKPOINTS, rec->p, rec->len, v->note, &c, origin, NULL,
	               "the checkpoint", rec->offset, 0, NULL) < 0) {
		json_decref(names);
		return;
	}
	if (v->have_ck && memcmp(v->last_ck, origin, 32) >= 0) {
		problem(v, BUNDLE_S_CHECKPOINTS, origin, c.size,
		        "the checkpoint does not follow the one before it in origin order (one an "
		        "origin)");
		json_decref(names);
		return;
	}
	memcpy(v->last_ck, origin, 32);
	v->have_ck = 1;
	if (!(o = origin_at(v, origin, &is_new))) {
		problem(v, BUNDLE_S_CHECKPOINTS, origin, c.size, "more than %u origins",
		        BUNDLE_MAX_ORIGINS);
		json_decref(names);
		return;
	}
	o->has_checkpoint = 1;
	o->ck_note = malloc(rec->len);
	if (!o->ck_note)
		abort();
	memcpy(o->ck_note, rec->p, rec->len);
	o->ck_len = rec->len;
	o->ck_offset = rec->offset;
	o->ck_key_set = c.size == 0; /* the key of seq 1: the origin */
	memcpy(o->ck_key, origin, 32);
	o->ck_size = c.size;
	memcpy(o->ck_root, c.root, 32);
	sodium_bin2base64(b64, sizeof(b64), c.root, 32, sodium_base64_VARIANT_ORIGINAL);
	o->ck = json_pack("{s:o,s:I,s:s,s:I,s:o,s:s}", "origin", origin_json(v, origin), "size",
	                  (json_int_t)c.size, "root", b64, "cosigned",
	                  (json_int_t)json_array_size(names), "cosigners", names, "tree",
	                  c.size == 0 ? "matches" : "not reached");
	json_array_append(v->checkpoints, o->ck);
}

static void check_split(struct bverify *v, const struct bundle_record *rec)
{
	struct bundle_split sp;
	struct note_checkpoint ca, cb;
	uint8_t oa[32], ob[32];
	char err[300];
	struct bv_origin *o;
	int is_new;

	if (bundle_decode_split(rec->p, rec->len, &sp, err, sizeof(err)) < 0) {
		problem(v, BUNDLE_S_SPLITS, NULL, 0, "record at byte %llu: %s",
		        (unsigned long long)rec->offset, err);
		return;
	}
	if (check_note(v, BUNDLE_S_SPLITS, sp.a, sp.la, v->note, &ca, oa, NULL,
	               "the first checkpoint of the split-view proof", rec->offset, 1, NULL) < 0)
		return;
	if (sp.lb) {
		if (check_note(v, BUNDLE_S_SPLITS, sp.b, sp.lb, v->note2, &cb, ob, NULL,
		               "the second checkpoint of the split-view proof", rec->offset, 1,
		               NULL) < 0)
			return;
		if (memcmp(oa, ob, 32) != 0 || ca.size != cb.size ||
		    !memcmp(ca.root, cb.root, 32)) {
			problem(
			    v, BUNDLE_S_SPLITS, oa, ca.size,
			    "the split-view proof's two checkpoints are not of one origin and one "
			    "size with different roots");
			return;
		}
	}
	if (v->have_split && memcmp(v->last_split, oa, 32) >= 0) {
		problem(
		    v, BUNDLE_S_SPLITS, oa, ca.size,
		    "the proof does not follow the one before it in origin order (one an origin)");
		return;
	}
	memcpy(v->last_split, oa, 32);
	v->have_split = 1;
	if (!(o = origin_at(v, oa, &is_new))) {
		problem(v, BUNDLE_S_SPLITS, oa, ca.size, "more than %u origins",
		        BUNDLE_MAX_ORIGINS);
		return;
	}
	if (!o->fork || o->fork > ca.size + 1)
		o->fork = ca.size + 1; /* frozen at size: nothing beyond it is taken */
	json_t *j = json_pack("{s:o,s:I,s:i,s:s}", "origin", origin_json(v, oa), "size",
	                      (json_int_t)ca.size, "notes", sp.lb ? 2 : 1, "tree",
	                      sp.lb ? "not needed" : "not reached");
	json_array_append(v->splits, j);
	if (!sp.lb) {
		/* One note: its root is checked against the tree when the tree reaches its size. */
		o->split_size = ca.size;
		memcpy(o->split_root, ca.root, 32);
		o->split = json_incref(j);
		if (ca.size == 0) {
			uint8_t empty[32];
			merkle_empty_root(empty);
			json_object_set_new(
			    j, "tree",
			    json_string(memcmp(empty, ca.root, 32) ? "differs" : "matches"));
		}
	}
	json_decref(j);
}

/* After each changeset: the origin's tree at its checkpoint's size must have its root. */
static void check_tree(struct bverify *v, struct bv_origin *o, const uint8_t hash[32])
{
	uint8_t root[32];
	char h1[65], h2[65];

	if (merkle_frontier_append(&o->tree, hash, NULL, NULL) < 0)
		return;
	if (o->split && o->tree.size == o->split_size) {
		merkle_frontier_root(&o->tree, root);
		int same = memcmp(root, o->split_root, 32) == 0;
		json_object_set_new(o->split, "tree", json_string(same ? "matches" : "differs"));
		if (same)
			problem(
			    v, BUNDLE_S_SPLITS, o->key, o->split_size,
			    "the one-note split-view proof's root is the root of the tree of the "
			    "bundle's changesets 1 to %llu: it proves nothing",
			    (unsigned long long)o->split_size);
	}
	if (!o->has_checkpoint || o->tree.size != o->ck_size)
		return;
	memcpy(o->ck_key, o->kc.signer, 32); /* the key of seq size + 1 */
	o->ck_key_set = 1;
	merkle_frontier_root(&o->tree, root);
	if (memcmp(root, o->ck_root, 32) == 0) {
		json_object_set_new(o->ck, "tree", json_string("matches"));
		return;
	}
	json_object_set_new(o->ck, "tree", json_string("differs"));
	hex32(o->ck_root, h1);
	hex32(root, h2);
	problem(
	    v, BUNDLE_S_CHECKPOINTS, o->key, o->ck_size,
	    "the checkpoint's root %s is not the root %s of the tree of the bundle's changesets "
	    "1 to %llu",
	    h1, h2, (unsigned long long)o->ck_size);
}

static void sig_job_run(void *arg)
{
	struct sig_job *j = arg;

	j->ok = changeset_verify(j->p, j->len, j->origin) == 0;
	sha256(j->p, j->len, j->hash);
}

/*
 * After a changeset's signature was checked under the key its chain names
 * for its seq (FORMAT.md, 14.2, as store_verify): the problem of a bad
 * signature or of a key the roster revokes after a seq below it, and a
 * rotation record whose signature verified makes its key current.
 */
static void follow_keys(struct bverify *v, const struct changeset *cs)
{
	struct bv_origin *o = v->cur;
	const struct bv_member *m = find_member(v, cs->origin);
	const uint8_t *next = changeset_rotation(cs);
	char b64[45];

	b64key(o->kc.signer, b64);
	if (!v->job.ok) {
		/* Under the origin itself the sentence is that of a chain with no rotation. */
		if (!memcmp(o->kc.signer, cs->origin, 32))
			problem(v, BUNDLE_S_CHANGESETS, cs->origin, cs->seq,
			        "signature does not verify");
		else
			problem(v, BUNDLE_S_CHANGESETS, cs->origin, cs->seq,
			        "signature does not verify under key %s, the key its chain names "
			        "for this seq",
			        b64);
		return;
	}
	for (size_t i = 0; m && i < m->n_revoked; i++)
		if (cs->seq > m->revoked[i].after && !memcmp(m->revoked[i].key, o->kc.signer, 32))
			problem(v, BUNDLE_S_CHANGESETS, cs->origin, cs->seq,
			        "signed with key %s, which the roster revokes after seq %llu", b64,
			        (unsigned long long)m->revoked[i].after);
	if (next && store_keychain_rotate(&o->kc, next) < 0) {
		b64key(next, b64);
		problem(v, BUNDLE_S_CHANGESETS, cs->origin, cs->seq,
		        "rotation record names key %s, which the origin has had before", b64);
	}
}

static void check_changeset(struct bverify *v, const struct bundle_record *rec)
{
	struct changeset cs;
	char err[300], h1[65], h2[65];
	int rc, is_new, offload;

	memset(&cs, 0, sizeof(cs));
	v->n_changesets++;
	rc = changeset_decode(rec->p, rec->len, &cs, err, sizeof(err));
	if (rc < 0) {
		/* Taken for the next seq of the origin before it, so the chain goes on. */
		if (v->cur) {
			problem(v, BUNDLE_S_CHANGESETS, v->cur->key, v->expect,
			        "the changeset at byte %llu (after seq %llu) cannot be decoded: %s",
			        (unsigned long long)rec->offset, (unsigned long long)v->cur->seq,
			        err);
			sha256(rec->p, rec->len, v->cur->hash);
			v->cur->seq = v->expect++;
			check_tree(v, v->cur, v->cur->hash);
		} else {
			problem(v, BUNDLE_S_CHANGESETS, NULL, 0,
			        "the first changeset, at byte %llu, cannot be decoded: %s",
			        (unsigned long long)rec->offset, err);
		}
		return;
	}
	if (!v->cur || memcmp(v->cur->key, cs.origin, 32) != 0) {
		struct bv_origin *o = origin_at(v, cs.origin, &is_new);
		if (!o) {
			problem(v, BUNDLE_S_CHANGESETS, cs.origin, cs.seq, "more than %u origins",
			        BUNDLE_MAX_ORIGINS);
			goto done;
		}
		if (o->has_changesets || (v->cur && memcmp(v->cur->key, cs.origin, 32) > 0))
			problem(v, BUNDLE_S_CHANGESETS, cs.origin, cs.seq,
			        "the origin's changesets are not all together in origin order");
		if (!o->has_changesets && v->n_members && !find_member(v, cs.origin))
			problem(v, BUNDLE_S_CHANGESETS, cs.origin, cs.seq,
			        "the origin is not in the bundle's roster");
		o->has_changesets = 1;
		v->cur = o;
		v->expect = 1;
		memset(o->hash, 0, 32);
		o->seq = 0;
		store_keychain_start(&o->kc, cs.origin); /* the chain is walked from seq 1 */
	}
	offload = v->worker && rec->len >= BUNDLE_OFFLOAD_BYTES;
	if (offload) {
		v->job.p = rec->p;
		v->job.len = rec->len;
		memcpy(v->job.origin, v->cur->kc.signer, 32);
		worker_run(v->worker, sig_job_run, &v->job);
	}
	if (cs.seq != v->expect)
		problem(v, BUNDLE_S_CHANGESETS, cs.origin, cs.seq,
		        "seq %llu follows seq %llu: the chain has a gap",
		        (unsigned long long)cs.seq, (unsigned long long)v->expect - 1);
	if (memcmp(cs.prev, v->cur->hash, 32) != 0) {
		hex32(cs.prev, h1);
		hex32(v->cur->hash, h2);
		problem(v, BUNDLE_S_CHANGESETS, cs.origin, cs.seq,
		        "prev %s does not link to the changeset before it (hash %s)", h1, h2);
	}
	if (v->cur->fork && cs.seq >= v->cur->fork)
		problem(v, BUNDLE_S_CHANGESETS, cs.origin, cs.seq,
		        "the bundle holds this changeset although a fork proof freezes the origin "
		        "before seq %llu",
		        (unsigned long long)v->cur->fork);
	if (!check_federation(v, &cs)) {
		char q1[ERROR_QUOTE_SIZE], q2[ERROR_QUOTE_SIZE];
		problem(v, BUNDLE_S_CHANGESETS, cs.origin, cs.seq, "federation %s differs from %s",
		        error_quote(q1, sizeof(q1), cs.federation, cs.federation_len),
		        error_quote(q2, sizeof(q2), v->federation, v->federation_len));
	}
	for (size_t i = 0; i < cs.n_ops; i++)
		if (store_scratch_op(v->sc, cs.origin, &cs.ops[i], cs.seq, err, sizeof(err)) < 0)
			problem(v, BUNDLE_S_CHANGESETS, cs.origin, cs.seq,
			        "op %zu cannot be applied: %s", i, err);
	v->n_ops += cs.n_ops;
	if (offload) {
		worker_wait(v->worker);
	} else {
		v->job.ok = changeset_verify(rec->p, rec->len, v->cur->kc.signer) == 0;
		sha256(rec->p, rec->len, v->job.hash);
	}
	follow_keys(v, &cs);
	memcpy(v->cur->hash, v->job.hash, 32);
	v->cur->seq = cs.seq;
	check_tree(v, v->cur, v->job.hash);
	v->expect = cs.seq + 1;
done:
	changeset_release(&cs);
}

static int origin_cmp(const void *a, const void *b)
{
	return memcmp(((const struct bv_origin *)a)->key, ((const struct bv_origin *)b)->key, 32);
}

/*
 * Once every changeset is read: each checkpoint's signature under the key
 * its origin's chain names for seq size + 1 (the newest key read when the
 * bundle's changesets end before size), and its cosignatures under each
 * member's newest key, as daemon/sync/sync_tlog.c takes them.
 */
static void check_checkpoint_sigs(struct bverify *v)
{
	qsort(v->origins, v->n_origins, sizeof(*v->origins), origin_cmp);
	v->cur = NULL;
	for (size_t i = 0; i < v->n_origins; i++) {
		struct bv_origin *o = &v->origins[i];
		struct note_checkpoint c;
		uint8_t origin[32];
		json_t *names;

		if (!o->ck_note)
			continue;
		names = json_object_get(o->ck, "cosigners");
		check_note(v, BUNDLE_S_CHECKPOINTS, o->ck_note, o->ck_len, v->note, &c, origin,
		           names, "the checkpoint", o->ck_offset, 1,
		           o->ck_key_set ? o->ck_key : o->kc.signer);
		json_object_set_new(o->ck, "cosigned",
		                    json_integer((json_int_t)json_array_size(names)));
		free(o->ck_note);
		o->ck_note = NULL;
	}
}

static void check_count(struct bverify *v, const char *what, uint64_t claimed, uint64_t found)
{
	if (claimed != found)
		problem(v, -1, NULL, 0, "it counts %llu %s, the bundle holds %llu",
		        (unsigned long long)claimed, what, (unsigned long long)found);
}

static void check_manifest(struct bverify *v, const struct bundle_reader *r,
                           const struct bundle_record *rec, const uint8_t digest[32],
                           uint64_t n_entities)
{
	struct bundle_manifest m;
	char err[300], h1[65], h2[65], q1[ERROR_QUOTE_SIZE], q2[ERROR_QUOTE_SIZE];
	size_t n_with = 0, k = 0;

	if (bundle_decode_manifest(rec->p, rec->len, &m, err, sizeof(err)) < 0) {
		problem(v, -1, NULL, 0, "at byte %llu: %s", (unsigned long long)rec->offset, err);
		return;
	}
	if (v->federation_len && (m.federation_len != v->federation_len ||
	                          memcmp(m.federation, v->federation, v->federation_len) != 0))
		problem(v, -1, NULL, 0, "it names the federation %s, the changesets %s",
		        error_quote(q1, sizeof(q1), m.federation, m.federation_len),
		        error_quote(q2, sizeof(q2), v->federation, v->federation_len));
	check_count(v, "roster entries", m.n_members, r->count[BUNDLE_S_ROSTER]);
	check_count(v, "checkpoints", m.n_checkpoints, r->count[BUNDLE_S_CHECKPOINTS]);
	check_count(v, "split-view proofs", m.n_splits, r->count[BUNDLE_S_SPLITS]);
	check_count(v, "fork proofs", m.n_forks, r->count[BUNDLE_S_FORKS]);
	check_count(v, "changesets", m.n_changesets, r->count[BUNDLE_S_CHANGESETS]);
	check_count(v, "ops", m.n_ops, v->n_ops);
	check_count(v, "entities", m.n_entities, n_entities);
	for (size_t i = 0; i < v->n_origins; i++)
		n_with += v->origins[i].has_changesets;
	check_count(v, "origins", m.n_origins, n_with);
	if (memcmp(m.digest, digest, 32) != 0) {
		hex32(m.digest, h1);
		hex32(digest, h2);
		problem(v, -1, NULL, 0,
		        "its state digest %s differs from the digest of the replayed changesets %s",
		        h1, h2);
	}
	for (size_t i = 0; i < BUNDLE_N_SECTIONS; i++) {
		if (memcmp(m.section_hash[i], r->section_hash[i], 32) == 0)
			continue;
		hex32(m.section_hash[i], h1);
		hex32(r->section_hash[i], h2);
		problem(v, -1, NULL, 0, "it says the %s section hashes to %s; it hashes to %s",
		        bundle_section_name((enum bundle_section)i), h1, h2);
	}
	/*
	 * The heads: the last changeset of each origin, in key order. The
	 * origins are in the order first met (a checkpoint or a proof may name
	 * one before its changesets come), and no changeset follows the
	 * manifest, so they are put in key order here.
	 */
	qsort(v->origins, v->n_origins, sizeof(*v->origins), origin_cmp);
	v->cur = NULL;
	for (size_t i = 0; i < v->n_origins && k < m.n_origins; i++) {
		const struct bv_origin *o = &v->origins[i];
		struct bundle_head h;

		if (!o->has_changesets)
			continue;
		bundle_manifest_head(&m, k++, &h);
		if (memcmp(h.origin, o->key, 32) != 0) {
			problem(v, -1, o->key, o->seq, "head %zu names another origin", k);
			continue;
		}
		if (h.seq != o->seq || memcmp(h.hash, o->hash, 32) != 0) {
			hex32(h.hash, h1);
			hex32(o->hash, h2);
			problem(v, -1, o->key, o->seq,
			        "its head is seq %llu hash %s; the chain ends at seq %llu hash %s",
			        (unsigned long long)h.seq, h1, (unsigned long long)o->seq, h2);
		}
	}
}

int store_bundle_verify(bundle_read_fn *fn, void *arg, json_t **report)
{
	struct bverify v;
	struct bundle_reader r;
	struct bundle_record rec;
	struct lthash sum;
	uint8_t digest[32];
	char err[512], h1[65], h2[65];
	int rc, ended = 0, have_manifest = 0;
	uint64_t n_entities = 0;

	*report = NULL;
	memset(&v, 0, sizeof(v));
	v.problems = json_array();
	v.forks = json_array();
	v.checkpoints = json_array();
	v.splits = json_array();
	v.note = malloc(sizeof(*v.note));
	v.note2 = malloc(sizeof(*v.note2));
	if (!v.note || !v.note2)
		abort();
	v.members = calloc(BUNDLE_MAX_ORIGINS, sizeof(*v.members));
	v.origins = calloc(BUNDLE_MAX_ORIGINS, sizeof(*v.origins));
	if (!v.problems || !v.forks || !v.members || !v.origins)
		abort();
	v.sc = store_scratch_new();
	v.worker = worker_start();
	lthash_zero(&sum);
	lthash_digest(&sum, digest);

	rc = bundle_reader_init(&r, fn, arg, err, sizeof(err));
	if (rc < 0) {
		problem(&v, -3, NULL, 0, "%s", err);
		goto report;
	}
	for (;;) {
		rc = bundle_next(&r, &rec, err, sizeof(err));
		if (rc == 1) {
			ended = 1;
			break;
		}
		if (rc < 0) {
			/* Say where in the bundle the reading stopped. */
			int sec = r.section;
			if (r.stage >= 1 && have_manifest)
				problem(&v, -2, NULL, 0, "%s", err);
			else if (sec == BUNDLE_S_CHANGESETS && v.cur)
				problem(&v, sec, v.cur->key, v.cur->seq, "after this changeset, %s",
				        err);
			else if (r.section < 0)
				problem(&v, -3, NULL, 0, "at its first record, %s", err);
			else
				problem(&v, -3, NULL, 0,
				        "after the last record of the %s section, %s",
				        bundle_section_name((enum bundle_section)r.section), err);
			break;
		}
		switch (rec.tag) {
		case BUNDLE_MEMBER:
			check_member(&v, &rec);
			break;
		case BUNDLE_CHECKPOINT:
			check_checkpoint(&v, &rec);
			break;
		case BUNDLE_SPLIT:
			check_split(&v, &rec);
			break;
		case BUNDLE_FORK:
			check_fork(&v, &rec);
			break;
		case BUNDLE_CHANGESET:
			check_changeset(&v, &rec);
			break;
		case BUNDLE_MANIFEST:
			check_checkpoint_sigs(&v);
			store_scratch_sum(v.sc, v.worker, &sum);
			lthash_digest(&sum, digest);
			n_entities = store_scratch_count(v.sc);
			check_manifest(&v, &r, &rec, digest, n_entities);
			have_manifest = 1;
			break;
		case BUNDLE_END:
			if (memcmp(rec.p, r.file_hash, 32) != 0) {
				hex32(rec.p, h1);
				hex32(r.file_hash, h2);
				problem(&v, -2, NULL, 0,
				        "the end record says the bundle before it hashes to %s; it "
				        "hashes to %s",
				        h1, h2);
			}
			break;
		}
	}
	if (!have_manifest) {
		check_checkpoint_sigs(&v);
		/* The state as far as it was read, for the report. */
		store_scratch_sum(v.sc, v.worker, &sum);
		lthash_digest(&sum, digest);
		n_entities = store_scratch_count(v.sc);
	}
report:
	if (v.n_problems > BUNDLE_MAX_PROBLEMS) {
		json_t *p = json_pack(
		    "{s:n,s:n,s:n,s:o}", "section", "origin", "seq", "problem",
		    json_sprintf("and %zu more problems", v.n_problems - BUNDLE_MAX_PROBLEMS));
		json_array_append_new(v.problems, p);
	}
	size_t n_origins = 0;
	for (size_t i = 0; i < v.n_origins; i++)
		n_origins += v.origins[i].has_changesets;
	*report = json_object();
	json_object_set_new(*report, "ok", json_boolean(v.n_problems == 0 && ended));
	json_object_set_new(*report, "federation",
	                    v.federation_len ? json_stringn(v.federation, v.federation_len)
	                                     : json_null());
	json_object_set_new(*report, "members", json_integer((json_int_t)v.n_members));
	json_t *roster = json_array();
	for (size_t i = 0; i < v.n_members; i++) {
		char b64[45];
		b64key(v.members[i].key, b64);
		json_t *e = json_pack("{s:s,s:s}", "name", v.members[i].name, "key", b64);
		if (v.members[i].n_revoked) {
			json_t *list = json_array();
			for (size_t k = 0; k < v.members[i].n_revoked; k++) {
				char rb64[45];
				b64key(v.members[i].revoked[k].key, rb64);
				json_array_append_new(
				    list, json_pack("[s,I]", rb64,
				                    (json_int_t)v.members[i].revoked[k].after));
			}
			json_object_set_new(e, "revoke", list);
		}
		json_array_append_new(roster, e);
	}
	json_object_set_new(*report, "roster", roster);
	json_object_set_new(*report, "origins", json_integer((json_int_t)n_origins));
	json_object_set_new(*report, "changesets", json_integer((json_int_t)v.n_changesets));
	json_object_set_new(*report, "ops", json_integer((json_int_t)v.n_ops));
	json_object_set_new(*report, "entities", json_integer((json_int_t)n_entities));
	json_object_set_new(*report, "digest", store_hex_json(digest));
	json_object_set_new(*report, "forks", v.forks);
	json_object_set_new(*report, "checkpoints", v.checkpoints);
	json_object_set_new(*report, "splits", v.splits);
	json_object_set_new(*report, "problems", v.problems);
	bundle_reader_fini(&r);
	worker_stop(v.worker);
	store_scratch_free(v.sc);
	for (size_t i = 0; i < v.n_origins; i++) {
		json_decref(v.origins[i].ck);
		json_decref(v.origins[i].split);
		free(v.origins[i].ck_note);
		store_keychain_free(&v.origins[i].kc);
	}
	free(v.note);
	free(v.note2);
	free(v.members);
	free(v.origins);
	return 0;
}
