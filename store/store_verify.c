/*
 * The offline audit behind `loket verify`: walks every origin's chain in
 * seq order checking decoding, signatures, seq continuity, prev links,
 * stored hashes, roster membership and the federation name, reports fork
 * evidence, then replays the whole log into a scratch in-memory table of
 * entities with the same fold the store uses (store_apply_fold) and
 * compares the state it gets with the stored digest and with every stored
 * entity row. Signatures and changeset hashes of large changesets are
 * checked on a second thread while the ops are replayed. The replayed
 * state's LtHash16 sum is made once per entity, from its final digest,
 * by both threads while the stored rows are compared (a sum kept per
 * change on a third thread, as the store keeps its own, made three busy
 * threads of two cores' work and was slower). It only reads the store, so
 * it runs on a store opened STORE_READONLY.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "common/worker.h"
#include "proto/error.h"
#include "proto/merkle.h"
#include "proto/limits.h"
#include "store/store_int.h"

#define VERIFY_MAX_PROBLEMS 1000

/* A replayed entity, keyed by coll 0x00 owner(32) id. */
struct ent {
	uint64_t h;
	char *fields;
	size_t fields_len;
	size_t fields_cap;
	uint64_t seq;
	uint8_t digest[32];
	uint8_t deleted;
	uint8_t seen;    /* a stored row names it */
	uint8_t matched; /* a stored row holds exactly its state */
	size_t key_len;
	uint8_t key[];
};

/* Entities and their fields live in big chunks, freed all at once. */
struct chunk {
	struct chunk *next;
	size_t used;
	size_t cap;
	_Alignas(max_align_t) uint8_t mem[];
};

/*
 * Open addressing with each entity's hash beside its pointer: a lookup of
 * a million entities costs one miss in the slots and, only on a hash
 * match, one in the entity (chains cost a miss per link).
 */
struct slot {
	uint64_t h;
	struct ent *e;
};

struct emap {
	struct slot *slots;
	size_t cap; /* a power of two; at most half full */
	size_t n;
	struct chunk *chunks;
};

/* A scratch state: the replayed entities, and what the fold reuses. */
struct store_scratch {
	struct emap map;
	struct store_buf buf;
	uint8_t key[LOKET_MAX_COLL_LEN + 1 + 32 + LOKET_MAX_ID_LEN];
};

/* The signature and hash of one changeset, checked on the worker thread. */
struct sigjob {
	struct worker *worker; /* NULL: everything is checked inline */
	const uint8_t *p;
	size_t len;
	uint8_t origin[32];
	int sig_ok;
	uint8_t hash[32];
};

/* Changesets at least this big go to the worker; smaller ones are checked inline. */
#define VERIFY_OFFLOAD_BYTES 16384

/*
 * The LtHash16 sum of the replayed entities, made by the worker and the
 * verifying thread together: each takes the next SUM_SLOTS slots of the
 * entity map until none are left, into a sum of its own.
 */
struct sumjob {
	const struct emap *map;
	atomic_size_t next;
	struct lthash sum; /* the worker's part */
};

#define SUM_SLOTS 4096

/* A key the roster revokes for an origin: what it signs above seq after is refused. */
struct revoked {
	uint8_t origin[32];
	uint8_t key[32];
	uint64_t after;
};

struct verify {
	struct store *s;
	json_t *problems;
	size_t n_problems;
	uint8_t (*roster)[32];
	size_t n_roster;
	struct revoked *revoked;
	size_t n_revoked;
	/* The chain being walked: the key that signs its next seq, and every key it has had. */
	struct store_keychain kc;
	long long n_rotations;
	char federation[LOKET_MAX_FEDERATION_LEN + 1];
	size_t federation_len;
	int have_federation;
	struct store_scratch sc; /* the replayed entities */
	struct sigjob job;
	struct sumjob sum;
	struct lthash rows; /* the stored rows' sum, less the replayed one */
};

static void problem(struct verify *v, const uint8_t *origin, uint64_t seq, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* Records one problem; origin NULL for store-wide ones. */
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
	/* Store-wide problems have null origin and seq. */
	json_object_set_new(p, "origin", origin ? store_owner_json(v->s, origin) : json_null());
	json_object_set_new(p, "seq", origin ? json_integer((json_int_t)seq) : json_null());
	json_object_set_new(p, "problem", json_string(msg));
	json_array_append_new(v->problems, p);
}

static void hex(const uint8_t b[32], char out[65])
{
	sodium_bin2hex(out, 65, b, 32);
}

static int b64_key(const char *b64, uint8_t out[32])
{
	const char *end = NULL;
	size_t bin_len = 0;

	return b64 &&
	               sodium_base642bin(out, 32, b64, strlen(b64), NULL, &bin_len, &end,
	                                 sodium_base64_VARIANT_ORIGINAL) == 0 &&
	               bin_len == 32 && end == b64 + strlen(b64)
	           ? 0
	           : -1;
}

/* {"key": B64, "revoke": [[B64, AFTER], ...]}: a member with keys it revokes. */
static int load_revocations(struct verify *v, const uint8_t origin[32], const json_t *list,
                            size_t i)
{
	size_t k;
	json_t *r;

	if (!list)
		return 0;
	if (!json_is_array(list))
		return -1;
	json_array_foreach(list, k, r)
	{
		struct revoked *x;
		json_t *after = json_array_get(r, 1);

		v->revoked = realloc(v->revoked, (v->n_revoked + 1) * sizeof(*v->revoked));
		if (!v->revoked)
			abort();
		x = &v->revoked[v->n_revoked];
		if (json_array_size(r) != 2 ||
		    b64_key(json_string_value(json_array_get(r, 0)), x->key) < 0 ||
		    !json_is_integer(after) || json_integer_value(after) < 0) {
			problem(v, NULL, 0, "roster entry %zu has a malformed revocation", i);
			continue;
		}
		memcpy(x->origin, origin, 32);
		x->after = (uint64_t)json_integer_value(after);
		v->n_revoked++;
	}
	return 0;
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
		const json_t *key = json_is_object(k) ? json_object_get(k, "key") : k;

		if (b64_key(json_string_value(key), v->roster[v->n_roster]) == 0 &&
		    load_revocations(v, v->roster[v->n_roster], json_object_get(k, "revoke"), i) ==
		        0)
			v->n_roster++;
		else
			problem(v, NULL, 0, "roster entry %zu is not a base64 key", i);
	}
	return 0;
}

/* The revocation of key for origin that seq falls after, or NULL. */
static const struct revoked *revoked_at(const struct verify *v, const uint8_t origin[32],
                                        const uint8_t key[32], uint64_t seq)
{
	for (size_t i = 0; i < v->n_revoked; i++)
		if (seq > v->revoked[i].after && memcmp(v->revoked[i].origin, origin, 32) == 0 &&
		    memcmp(v->revoked[i].key, key, 32) == 0)
			return &v->revoked[i];
	return NULL;
}

static void chain_start(struct verify *v, const uint8_t origin[32])
{
	store_keychain_start(&v->kc, origin);
}

/*
 * A rotation record at (origin, seq) that verified under the key current
 * there: from seq + 1 on, key signs. It may not name a key the chain has
 * had, and the store's key_history must hold its row.
 */
static int chain_rotate(struct verify *v, const uint8_t origin[32], uint64_t seq,
                        const uint8_t key[32])
{
	uint8_t held[32];
	char b64[sodium_base64_ENCODED_LEN(32, sodium_base64_VARIANT_ORIGINAL)];
	int rc;

	if (store_keychain_rotate(&v->kc, key) < 0) {
		sodium_bin2base64(b64, sizeof(b64), key, 32, sodium_base64_VARIANT_ORIGINAL);
		problem(v, origin, seq,
		        "rotation record names key %s, which the origin has had before", b64);
		return 0;
	}
	v->n_rotations++;
	if ((rc = store_key_at(v->s, origin, seq + 1, held)) < 0)
		return rc;
	if (memcmp(held, key, 32) != 0 || !v->s->keys_table) {
		sodium_bin2base64(b64, sizeof(b64), key, 32, sodium_base64_VARIANT_ORIGINAL);
		problem(v, origin, seq,
		        "the key_history table does not say that key %s signs from seq %llu on",
		        b64, (unsigned long long)(seq + 1));
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

static uint64_t key_hash(const uint8_t *p, size_t n)
{
	uint64_t h = 0xcbf29ce484222325ULL;

	for (size_t i = 0; i < n; i++)
		h = (h ^ p[i]) * 0x100000001b3ULL;
	return h ^ (h >> 29);
}

static void *arena_alloc(struct emap *m, size_t n)
{
	struct chunk *c = m->chunks;
	void *p;

	n = (n + 15) & ~(size_t)15;
	if (!c || c->cap - c->used < n) {
		size_t cap = n > (1u << 20) ? n : (1u << 20);

		c = malloc(sizeof(*c) + cap);
		if (!c)
			abort();
		c->next = m->chunks;
		c->used = 0;
		c->cap = cap;
		m->chunks = c;
	}
	p = c->mem + c->used;
	c->used += n;
	return p;
}

static struct ent *emap_find(struct emap *m, const uint8_t *key, size_t len, uint64_t h)
{
	if (!m->cap)
		return NULL;
	for (size_t i = h & (m->cap - 1); m->slots[i].e; i = (i + 1) & (m->cap - 1)) {
		const struct slot *sl = &m->slots[i];
		if (sl->h == h && sl->e->key_len == len && memcmp(sl->e->key, key, len) == 0)
			return sl->e;
	}
	return NULL;
}

static void emap_place(struct slot *slots, size_t cap, uint64_t h, struct ent *e)
{
	size_t i = h & (cap - 1);
	while (slots[i].e)
		i = (i + 1) & (cap - 1);
	slots[i].h = h;
	slots[i].e = e;
}

static struct ent *emap_add(struct emap *m, const uint8_t *key, size_t len, uint64_t h)
{
	struct ent *e;

	if (2 * (m->n + 1) > m->cap) {
		size_t cap = m->cap ? m->cap * 2 : 2048;
		struct slot *slots = calloc(cap, sizeof(*slots));

		if (!slots)
			abort();
		for (size_t i = 0; i < m->cap; i++)
			if (m->slots[i].e)
				emap_place(slots, cap, m->slots[i].h, m->slots[i].e);
		free(m->slots);
		m->slots = slots;
		m->cap = cap;
	}
	e = arena_alloc(m, sizeof(*e) + len);
	memset(e, 0, sizeof(*e));
	e->h = h;
	e->key_len = len;
	memcpy(e->key, key, len);
	emap_place(m->slots, m->cap, h, e);
	m->n++;
	return e;
}

static void emap_free(struct emap *m)
{
	while (m->chunks) {
		struct chunk *c = m->chunks;

		m->chunks = c->next;
		free(c);
	}
	free(m->slots);
	memset(m, 0, sizeof(*m));
}

/* Builds the map key of (coll, owner, id) in sc->key; 0 if too long. */
static size_t make_key(struct store_scratch *sc, const char *coll, size_t coll_len,
                       const uint8_t owner[32], const char *id, size_t id_len)
{
	if (coll_len > LOKET_MAX_COLL_LEN || id_len > LOKET_MAX_ID_LEN)
		return 0;
	memcpy(sc->key, coll, coll_len);
	sc->key[coll_len] = 0;
	memcpy(sc->key + coll_len + 1, owner, 32);
	memcpy(sc->key + coll_len + 33, id, id_len);
	return coll_len + 33 + id_len;
}

/* Replays one op into the scratch map with the store's own fold. */
int store_scratch_op(struct store_scratch *sc, const uint8_t owner[32], const struct op *op,
                     uint64_t seq, char *err, size_t errlen)
{
	size_t klen;
	uint64_t h;
	struct ent *e;
	const char *nf;
	size_t nl;
	int rc, nd, unchanged;
	uint8_t d[32];

	if (op->kind == OP_ROTATE)
		return 0; /* no entity; walk_chains follows the key */
	klen = make_key(sc, op->coll, op->coll_len, owner, op->id, op->id_len);
	h = key_hash(sc->key, klen);
	if (!klen) {
		snprintf(err, errlen, "collection or id too long");
		return LOKET_E_TOO_BIG;
	}
	e = emap_find(&sc->map, sc->key, klen, h);
	rc = store_apply_fold(&sc->buf, e != NULL, e ? e->deleted : 0, e ? e->fields : NULL,
	                      e ? e->fields_len : 0, op, &nd, &nf, &nl, &unchanged, err, errlen);
	if (rc < 0 || unchanged)
		return rc;
	store_entity_digest(op->coll, op->coll_len, owner, op->id, op->id_len, nd, nf, nl, d);
	if (!e)
		e = emap_add(&sc->map, sc->key, klen, h);
	/* A change in place when it fits, else a new copy (the old one is left in the arena). */
	if (!e->fields || e->fields_cap < nl + 1) {
		e->fields = arena_alloc(&sc->map, nl + 1);
		e->fields_cap = nl + 1;
	}
	memcpy(e->fields, nf, nl);
	e->fields[nl] = '\0';
	e->fields_len = nl;
	e->deleted = (uint8_t)nd;
	e->seq = seq;
	memcpy(e->digest, d, 32);
	return 0;
}

static void check_signature(void *arg)
{
	struct sigjob *j = arg;

	j->sig_ok = changeset_verify(j->p, j->len, j->origin) == 0;
	sha256(j->p, j->len, j->hash);
}

/*
 * Checks and replays one changeset row; *prev_hash gets its recomputed hash.
 * The bytes stay valid (the row is not stepped) until this returns, so the
 * worker reads them in place.
 */
static int check_changeset(struct verify *v, const uint8_t origin[32], uint64_t seq,
                           const uint8_t *stored_hash, int stored_hash_len, long long stored_ops,
                           const uint8_t *bytes, size_t len, uint8_t prev_hash[32], size_t *n_ops)
{
	struct changeset cs;
	uint8_t hash[32];
	char err[200], h1[65], h2[65];
	int rc, sig_ok, offload = v->job.worker && len >= VERIFY_OFFLOAD_BYTES;

	memset(&cs, 0, sizeof(cs));
	if (offload) {
		v->job.p = bytes;
		v->job.len = len;
		memcpy(v->job.origin, v->kc.signer, 32);
		worker_run(v->job.worker, check_signature, &v->job);
	}
	rc = changeset_decode(bytes, len, &cs, err, sizeof(err));
	if (rc < 0) {
		problem(v, origin, seq, "cannot decode: %s", err);
		goto checked;
	}
	if (memcmp(cs.origin, origin, 32) != 0 || cs.seq != seq)
		problem(v, origin, seq, "changeset names origin or seq %llu other than its row",
		        (unsigned long long)cs.seq);
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
		char q1[ERROR_QUOTE_SIZE], q2[ERROR_QUOTE_SIZE];
		problem(v, origin, seq, "federation %s differs from %s",
		        error_quote(q1, sizeof(q1), cs.federation, cs.federation_len),
		        error_quote(q2, sizeof(q2), v->federation, v->federation_len));
	}
	if (stored_ops != (long long)cs.n_ops)
		problem(v, origin, seq, "row says %lld ops, changeset holds %zu", stored_ops,
		        cs.n_ops);
	/* Replay with the store's own origin rule: ops write the origin's entities. */
	for (size_t i = 0; i < cs.n_ops; i++) {
		if (store_scratch_op(&v->sc, cs.origin, &cs.ops[i], cs.seq, err, sizeof(err)) < 0)
			problem(v, origin, seq, "op %zu cannot be applied: %s", i, err);
	}
	*n_ops += cs.n_ops;
checked:
	if (offload) {
		worker_wait(v->job.worker);
		sig_ok = v->job.sig_ok;
		memcpy(hash, v->job.hash, 32);
	} else {
		sig_ok = changeset_verify(bytes, len, v->kc.signer) == 0;
		sha256(bytes, len, hash); /* = changeset_hash */
	}
	if (!sig_ok) {
		char b64[sodium_base64_ENCODED_LEN(32, sodium_base64_VARIANT_ORIGINAL)];
		sodium_bin2base64(b64, sizeof(b64), v->kc.signer, 32,
		                  sodium_base64_VARIANT_ORIGINAL);
		problem(v, origin, seq,
		        "signature does not verify under key %s, the origin's key at"
		        " this seq",
		        b64);
	} else {
		const struct revoked *r = revoked_at(v, origin, v->kc.signer, seq);
		if (r) {
			char b64[sodium_base64_ENCODED_LEN(32, sodium_base64_VARIANT_ORIGINAL)];
			sodium_bin2base64(b64, sizeof(b64), v->kc.signer, 32,
			                  sodium_base64_VARIANT_ORIGINAL);
			problem(v, origin, seq,
			        "signed with key %s, which the roster revokes after seq %llu", b64,
			        (unsigned long long)r->after);
		}
	}
	if (sig_ok && cs.n_ops && changeset_rotation(&cs) && memcmp(cs.origin, origin, 32) == 0 &&
	    (rc = chain_rotate(v, origin, seq, changeset_rotation(&cs))) < 0) {
		changeset_release(&cs);
		return rc;
	}
	if (stored_hash_len != 32 || memcmp(stored_hash, hash, 32) != 0)
		problem(v, origin, seq, "stored hash does not match the changeset's bytes");
	changeset_release(&cs);
	memcpy(prev_hash, hash, 32);
	return 0;
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

/* The log tree of the origin being walked, made again from its hash column. */
struct tree_walk {
	struct verify *v;
	const uint8_t *origin;
	struct merkle_frontier f;
	long long nodes; /* nodes of two leaves or more the changesets make */
	int broken;      /* one problem per origin is enough */
};

static void tree_node(void *arg, unsigned level, uint64_t idx, const uint8_t hash[32])
{
	struct tree_walk *t = arg;
	struct store *s = t->v->s;
	int step, same = 0;

	if (level == 0)
		return;
	t->nodes++;
	if (t->broken || !s->tree_get)
		return;
	sqlite3_bind_blob(s->tree_get, 1, t->origin, 32, SQLITE_STATIC);
	sqlite3_bind_int(s->tree_get, 2, (int)level);
	sqlite3_bind_int64(s->tree_get, 3, (sqlite3_int64)idx);
	step = sqlite3_step(s->tree_get);
	if (step == SQLITE_ROW)
		same = sqlite3_column_bytes(s->tree_get, 0) == 32 &&
		       memcmp(sqlite3_column_blob(s->tree_get, 0), hash, 32) == 0;
	sqlite3_reset(s->tree_get);
	if (!same) {
		problem(t->v, t->origin, (idx + 1) << level,
		        "log tree: the node over seqs %llu..%llu is %s",
		        (unsigned long long)((idx << level) + 1),
		        (unsigned long long)((idx + 1) << level),
		        step == SQLITE_ROW ? "not the hash of those changesets" : "missing");
		t->broken = 1;
	}
}

/* The end of an origin's chain: the tree table holds no node the changesets do not make. */
static int tree_end(struct tree_walk *t)
{
	sqlite3_stmt *st;
	long long n = 0;

	if (!t->v->s->tree_get)
		return 0;
	if (sqlite3_prepare_v2(t->v->s->db, "SELECT count(*) FROM tree WHERE origin = ?1", -1, &st,
	                       NULL) != SQLITE_OK)
		return store_sqlite_fail(t->v->s, "cannot read the log tree");
	sqlite3_bind_blob(st, 1, t->origin, 32, SQLITE_STATIC);
	if (sqlite3_step(st) == SQLITE_ROW)
		n = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	if (n != t->nodes && !t->broken)
		problem(t->v, t->origin, t->f.size,
		        "log tree: %lld nodes stored, the changesets make %lld", n, t->nodes);
	return 0;
}

/* The key_history table holds the rows of the chains' rotation records and no others. */
static int check_key_rows(struct verify *v)
{
	long long rows = 0;
	sqlite3_stmt *st = NULL;

	if (!v->s->keys_table)
		return 0;
	if (sqlite3_prepare_v2(v->s->db, "SELECT count(*) FROM key_history", -1, &st, NULL) !=
	        SQLITE_OK ||
	    sqlite3_step(st) != SQLITE_ROW) {
		sqlite3_finalize(st);
		return store_sqlite_fail(v->s, "cannot read the key history");
	}
	rows = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	if (rows != v->n_rotations)
		problem(v, NULL, 0,
		        "the key_history table holds %lld rows, the chains %lld rotation records",
		        rows, v->n_rotations);
	return 0;
}

static int walk_chains(struct verify *v, long long *n_cs, size_t *n_ops)
{
	struct tree_walk tw;
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
			if (have && ((rc = check_head(v, origin, expect - 1, prev_hash)) < 0 ||
			             (rc = tree_end(&tw)) < 0))
				goto cleanup;
			have = 1;
			memcpy(origin, sqlite3_column_blob(st, 0), 32);
			memset(&tw, 0, sizeof(tw));
			tw.v = v;
			tw.origin = origin;
			merkle_frontier_init(&tw.f);
			memset(prev_hash, 0, 32);
			expect = 1;
			chain_start(v, origin);
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
		if (sqlite3_column_bytes(st, 2) == 32 && seq == tw.f.size + 1)
			merkle_frontier_append(&tw.f, sqlite3_column_blob(st, 2), tree_node, &tw);
		expect = seq + 1;
		(*n_cs)++;
	}
	if (step != SQLITE_DONE) {
		rc = store_sqlite_fail(v->s, "cannot read changesets");
		goto cleanup;
	}
	if (have && (rc = check_head(v, origin, expect - 1, prev_hash)) == 0)
		rc = tree_end(&tw);
	if (rc == 0)
		rc = check_key_rows(v);
cleanup:
	sqlite3_finalize(st);
	return rc;
}

/* Why one changeset of a fork proof does not hold, or NULL when it does. */
static const char *proof_flaw(const struct verify *v, const uint8_t origin[32], uint64_t seq,
                              const uint8_t *p, size_t len, const uint8_t *row_hash,
                              int row_hash_len)
{
	struct changeset cs;
	uint8_t hash[32], signer[32];
	char err[200];
	const char *flaw = NULL;

	if (changeset_decode(p, len, &cs, err, sizeof(err)) < 0)
		return "a changeset of the proof does not decode";
	if (memcmp(cs.origin, origin, 32) != 0 || cs.seq != seq)
		flaw = "a changeset of the proof names another origin or seq than its row";
	else if (v->have_federation &&
	         (cs.federation_len != v->federation_len ||
	          memcmp(cs.federation, v->federation, v->federation_len) != 0))
		flaw = "a changeset of the proof is of another federation";
	else if (store_key_at(v->s, origin, seq, signer) < 0 ||
	         changeset_verify(p, len, signer) != 0)
		flaw =
		    "the signature of a changeset of the proof does not verify under the origin's"
		    " key at its seq";
	changeset_release(&cs);
	sha256(p, len, hash); /* = changeset_hash */
	if (!flaw && (row_hash_len != 32 || memcmp(row_hash, hash, 32) != 0))
		flaw = "the stored hash of a changeset of the proof does not match its bytes";
	return flaw;
}

/* The origin of a fork proof holds no changeset at or after the proof's seq. */
static int check_frozen(struct verify *v, const uint8_t origin[32], uint64_t seq)
{
	sqlite3_stmt *st = NULL;
	int step;

	if (sqlite3_prepare_v2(v->s->db,
	                       "SELECT min(seq) FROM changeset WHERE origin = ?1 AND seq >= ?2", -1,
	                       &st, NULL) != SQLITE_OK)
		return store_sqlite_fail(v->s, "cannot read changesets");
	sqlite3_bind_blob(st, 1, origin, 32, SQLITE_STATIC);
	sqlite3_bind_int64(st, 2, (sqlite3_int64)seq);
	step = sqlite3_step(st);
	if (step == SQLITE_ROW && sqlite3_column_type(st, 0) != SQLITE_NULL)
		problem(v, origin, (uint64_t)sqlite3_column_int64(st, 0),
		        "the log holds this changeset although a fork proof freezes the origin"
		        " before seq %llu",
		        (unsigned long long)seq);
	sqlite3_finalize(st);
	return step == SQLITE_ROW || step == SQLITE_DONE
	           ? 0
	           : store_sqlite_fail(v->s, "cannot read changesets");
}

/*
 * Fork proofs: per origin, the fork table holds two different changesets
 * of one seq, each decoding to that origin and seq, validly signed, with
 * its stored hash; and the origin's log stops before that seq. A proof
 * that holds is still reported: the origin forked.
 */
static int check_fork_proofs(struct verify *v)
{
	sqlite3_stmt *st = NULL;
	uint8_t origin[32];
	uint64_t proof_seq = 0;
	size_t n_variants = 0;
	char hashes[2][65];
	int rc = 0, step, have = 0, flawed = 0;

	if (sqlite3_prepare_v2(
	        v->s->db, "SELECT origin, seq, hash, bytes FROM fork ORDER BY origin, seq, hash",
	        -1, &st, NULL) != SQLITE_OK)
		return store_sqlite_fail(v->s, "cannot read forks");
	for (;;) {
		step = sqlite3_step(st);
		int row = step == SQLITE_ROW && sqlite3_column_bytes(st, 0) == 32;
		if (step == SQLITE_ROW && !row)
			continue;
		/* The end of an origin's rows: judge its proof. */
		if (have && (!row || memcmp(sqlite3_column_blob(st, 0), origin, 32) != 0)) {
			if (n_variants < 2)
				problem(v, origin, proof_seq,
				        "fork: the proof holds only one changeset of this seq");
			else if (!flawed)
				problem(
				    v, origin, proof_seq,
				    "fork: the origin signed two changesets for this seq, hashes"
				    " %s and %s; the proof holds and the origin is frozen before "
				    "it",
				    hashes[0], hashes[1]);
			if ((rc = check_frozen(v, origin, proof_seq)) < 0)
				break;
			have = 0;
		}
		if (!row)
			break;
		uint64_t seq = (uint64_t)sqlite3_column_int64(st, 1);
		if (!have) {
			memcpy(origin, sqlite3_column_blob(st, 0), 32);
			proof_seq = seq;
			n_variants = 0;
			flawed = 0;
			have = 1;
		}
		if (seq != proof_seq) {
			problem(v, origin, seq, "fork: more than one proof for this origin");
			continue;
		}
		const char *flaw = proof_flaw(
		    v, origin, seq, sqlite3_column_blob(st, 3), (size_t)sqlite3_column_bytes(st, 3),
		    sqlite3_column_blob(st, 2), sqlite3_column_bytes(st, 2));
		if (flaw) {
			problem(v, origin, seq, "fork: %s", flaw);
			flawed = 1;
		}
		if (n_variants < 2 && sqlite3_column_bytes(st, 2) == 32)
			hex(sqlite3_column_blob(st, 2), hashes[n_variants]);
		n_variants++;
		if (n_variants > 2) {
			problem(v, origin, seq, "fork: the proof holds more than two changesets");
			flawed = 1;
		}
	}
	if (rc == 0 && step != SQLITE_DONE)
		rc = store_sqlite_fail(v->s, "cannot read forks");
	sqlite3_finalize(st);
	return rc;
}

static int check_forks_and_heads(struct verify *v)
{
	sqlite3_stmt *st = NULL;
	int rc, step;

	if ((rc = check_fork_proofs(v)) < 0)
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

/* Adds the lanes of the replayed entities in the map's next slots to sum, until none are left. */
static void sum_slots(struct sumjob *j, struct lthash *sum)
{
	for (;;) {
		size_t i = atomic_fetch_add(&j->next, SUM_SLOTS);

		if (i >= j->map->cap)
			return;
		for (size_t end = i + SUM_SLOTS < j->map->cap ? i + SUM_SLOTS : j->map->cap;
		     i < end; i++)
			if (j->map->slots[i].e)
				lthash_add(sum, j->map->slots[i].e->digest);
	}
}

static void sum_job(void *arg)
{
	struct sumjob *j = arg;

	sum_slots(j, &j->sum);
}

/*
 * Compares every stored entity row with the replayed state. Each stored
 * row's digest is recomputed from its columns, and v->rows gets what the
 * sum of those digests has beyond the replayed sum: the lanes of every row
 * that does not hold exactly the state of a replayed entity (matched),
 * less those of every replayed entity no row holds. So the rows' sum is
 * replayed + v->rows, made without expanding the digests of a good store
 * again.
 */
static int compare_entities(struct verify *v)
{
	sqlite3_stmt *st = NULL;
	int rc = 0, step;

	lthash_zero(&v->rows);
	if (sqlite3_prepare_v2(v->s->db,
	                       "SELECT coll, owner, id, fields, deleted, digest, seq FROM entity",
	                       -1, &st, NULL) != SQLITE_OK)
		return store_sqlite_fail(v->s, "cannot read entities");
	while ((step = sqlite3_step(st)) == SQLITE_ROW) {
		const char *coll = (const char *)sqlite3_column_text(st, 0);
		const char *id = (const char *)sqlite3_column_text(st, 2);
		const char *fields = (const char *)sqlite3_column_text(st, 3);
		size_t coll_len = (size_t)sqlite3_column_bytes(st, 0);
		size_t id_len = (size_t)sqlite3_column_bytes(st, 2);
		size_t fields_len = (size_t)sqlite3_column_bytes(st, 3);
		const uint8_t *owner =
		    sqlite3_column_bytes(st, 1) == 32 ? sqlite3_column_blob(st, 1) : NULL;
		int deleted = sqlite3_column_int(st, 4) != 0;
		uint64_t seq = (uint64_t)sqlite3_column_int64(st, 6);
		char q[ERROR_QUOTE_SIZE];
		size_t klen;
		struct ent *e;
		uint8_t d[32];

		if (!owner || !coll || !id || !fields ||
		    !(klen = make_key(&v->sc, coll, coll_len, owner, id, id_len))) {
			problem(v, owner, seq, "an entity row has missing or malformed columns");
			continue;
		}
		e = emap_find(&v->sc.map, v->sc.key, klen, key_hash(v->sc.key, klen));
		int same = e && e->deleted == deleted && e->fields_len == fields_len &&
		           memcmp(e->fields, fields, fields_len) == 0;
		/* The same entity, state and fields as replayed: the same digest, hashed once. */
		if (same)
			memcpy(d, e->digest, 32);
		else
			store_entity_digest(coll, coll_len, owner, id, id_len, deleted, fields,
			                    fields_len, d);
		/* A second row of one entity (no UNIQUE constraint left) is a row beyond it. */
		if (same && !e->matched)
			e->matched = 1;
		else
			lthash_add(&v->rows, d);
		if (sqlite3_column_bytes(st, 5) != 32 || memcmp(sqlite3_column_blob(st, 5), d, 32))
			problem(v, owner, seq, "entity %s: stored digest does not match its fields",
			        error_quotef(q, sizeof(q), "%s/%s", coll, id));
		if (!e) {
			problem(v, owner, seq, "entity %s is stored but the log does not make it",
			        error_quotef(q, sizeof(q), "%s/%s", coll, id));
			continue;
		}
		e->seen = 1;
		if (!same)
			problem(v, owner, seq,
			        "entity %s: stored fields differ from the replayed log",
			        error_quotef(q, sizeof(q), "%s/%s", coll, id));
	}
	if (step != SQLITE_DONE)
		rc = store_sqlite_fail(v->s, "cannot read entities");
	sqlite3_finalize(st);
	for (size_t i = 0; rc == 0 && i < v->sc.map.cap; i++) {
		const struct ent *e = v->sc.map.slots[i].e;
		if (e && !e->matched)
			lthash_sub(&v->rows, e->digest);
		if (e && !e->seen) {
			size_t coll_len = strlen((const char *)e->key);
			char q[ERROR_QUOTE_SIZE];
			problem(v, e->key + coll_len + 1, e->seq,
			        "entity %s is made by the log but not stored",
			        error_quotef(q, sizeof(q), "%s/%.*s", (const char *)e->key,
			                     (int)(e->key_len - coll_len - 33),
			                     (const char *)e->key + coll_len + 33));
		}
	}
	return rc;
}

int store_verify(struct store *s, const json_t *roster, json_t **report)
{
	struct verify v;
	struct lthash stored, replayed;
	const struct lthash *sum;
	uint8_t d1[32], d2[32];
	char h1[65], h2[65];
	long long n_cs = 0;
	size_t n_ops = 0;
	int rc, own_tx = 0;

	*report = NULL;
	memset(&v, 0, sizeof(v));
	v.s = s;
	v.problems = json_array();
	s->err[0] = '\0';
	if ((rc = load_roster(&v, roster)) < 0) {
		snprintf(s->err, sizeof(s->err), "roster must be an array of base64 keys");
		goto cleanup;
	}
	/*
	 * One read transaction for the whole audit: a daemon writing
	 * meanwhile must not show it the log of one moment and the entities
	 * of another. The digest, read first, fixes the snapshot.
	 */
	if (sqlite3_get_autocommit(s->db)) {
		if (sqlite3_exec(s->db, "BEGIN", NULL, NULL, NULL) != SQLITE_OK) {
			rc = store_sqlite_fail(s, "cannot start reading the store");
			goto cleanup;
		}
		own_tx = 1;
		if ((rc = store_load_digest(s)) < 0)
			goto cleanup;
	} /* else the caller's own transaction: its digest in memory is the one */
	/*
	 * A store of schema 2 opened read-only keeps no sum: the sum of its
	 * rows' digests stands in for it (each row's digest is checked).
	 */
	if (!s->digest_derived) {
		if ((rc = store_digest_sum(s, &sum)) < 0)
			goto cleanup;
		stored = *sum;
	}
	v.job.worker = worker_start();
	if ((rc = walk_chains(&v, &n_cs, &n_ops)) < 0 || (rc = check_forks_and_heads(&v)) < 0)
		goto cleanup;
	/* The replay is done: the worker sums final states while the rows are compared. */
	v.sum.map = &v.sc.map;
	atomic_init(&v.sum.next, 0);
	lthash_zero(&v.sum.sum);
	lthash_zero(&replayed);
	if (v.job.worker)
		worker_run(v.job.worker, sum_job, &v.sum);
	rc = compare_entities(&v);
	sum_slots(&v.sum, &replayed);
	if (v.job.worker)
		worker_wait(v.job.worker);
	if (rc < 0)
		goto cleanup;
	lthash_add_sum(&replayed, &v.sum.sum);
	lthash_add_sum(&v.rows, &replayed);
	if (s->digest_derived)
		stored = v.rows;
	lthash_digest(&stored, d1);
	if (!lthash_equal(&stored, &replayed)) {
		lthash_digest(&replayed, d2);
		hex(d1, h1);
		hex(d2, h2);
		problem(&v, NULL, 0, "stored state digest %s differs from the replayed log's %s",
		        h1, h2);
	}
	if (!lthash_equal(&stored, &v.rows)) {
		lthash_digest(&v.rows, d2);
		hex(d1, h1);
		hex(d2, h2);
		problem(&v, NULL, 0,
		        "stored state digest %s differs from the digest of the stored entities %s",
		        h1, h2);
	}
	if (v.n_problems > VERIFY_MAX_PROBLEMS) {
		json_t *p = json_object();

		json_object_set_new(p, "origin", json_null());
		json_object_set_new(p, "seq", json_null());
		json_object_set_new(
		    p, "problem",
		    json_sprintf("and %zu more problems", v.n_problems - VERIFY_MAX_PROBLEMS));
		json_array_append_new(v.problems, p);
	}
	*report = json_object();
	json_object_set_new(*report, "ok", json_boolean(v.n_problems == 0));
	json_object_set_new(*report, "changesets", json_integer(n_cs));
	json_object_set_new(*report, "ops", json_integer((json_int_t)n_ops));
	lthash_digest(&replayed, d2);
	json_object_set_new(*report, "digest", store_hex_json(d2));
	json_object_set(*report, "problems", v.problems);
	rc = 0;
cleanup:
	if (own_tx)
		sqlite3_exec(s->db, "COMMIT", NULL, NULL, NULL);
	worker_stop(v.job.worker);
	emap_free(&v.sc.map);
	free(v.sc.buf.p);
	free(v.revoked);
	store_keychain_free(&v.kc);
	json_decref(v.problems);
	free(v.roster);
	return rc;
}

struct store_scratch *store_scratch_new(void)
{
	struct store_scratch *sc = calloc(1, sizeof(*sc));

	if (!sc)
		abort();
	return sc;
}

void store_scratch_free(struct store_scratch *sc)
{
	if (!sc)
		return;
	emap_free(&sc->map);
	free(sc->buf.p);
	free(sc);
}

size_t store_scratch_count(const struct store_scratch *sc)
{
	return sc->map.n;
}

void store_scratch_sum(const struct store_scratch *sc, struct worker *w, struct lthash *out)
{
	struct sumjob j;

	j.map = &sc->map;
	atomic_init(&j.next, 0);
	lthash_zero(&j.sum);
	lthash_zero(out);
	if (w)
		worker_run(w, sum_job, &j);
	sum_slots(&j, out);
	if (w)
		worker_wait(w);
	lthash_add_sum(out, &j.sum);
}
