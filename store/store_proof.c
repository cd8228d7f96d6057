/*
 * Inclusion proofs for auditors (proto/FORMAT.md, section 15.6): `loket
 * prove` takes the changesets that made an entity (or one changeset) out
 * of the store, with the latest checkpoint of their origin and, for each,
 * the RFC 9162 inclusion path to that checkpoint's root; `loket verify
 * --proof` checks such a file alone: the changesets' bytes and signatures,
 * each path, the checkpoint's signature and its cosignatures, against the
 * keys the auditor pins. A proof is one JSON object, read whole: it is
 * bounded (STORE_PROOF_MAX_CHANGESETS changesets) so that it stays small.
 */
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "proto/error.h"
#include "proto/limits.h"
#include "proto/merkle.h"
#include "proto/note.h"
#include "store/store_int.h"

static json_t *b64_json(const uint8_t *p, size_t n)
{
	size_t cap = sodium_base64_ENCODED_LEN(n, sodium_base64_VARIANT_ORIGINAL);
	char *b = malloc(cap);
	json_t *j;

	if (!b)
		abort();
	sodium_bin2base64(b, cap, p, n, sodium_base64_VARIANT_ORIGINAL);
	j = json_string(b);
	free(b);
	return j;
}

/* Whether the op touches (coll, id). */
static int op_is(const struct op *op, const char *coll, const char *id)
{
	return op->coll_len == strlen(coll) && !memcmp(op->coll, coll, op->coll_len) &&
	       op->id_len == strlen(id) && !memcmp(op->id, id, op->id_len);
}

/* Adds changeset seq of origin, with its inclusion path in the tree of size, to list. */
static int add_changeset(struct store *s, const uint8_t origin[32], uint64_t seq, uint64_t size,
                         const uint8_t *bytes, size_t len, json_t *list)
{
	uint8_t path[MERKLE_MAX_PROOF][32];
	size_t count = 0;
	json_t *hashes;
	int rc;

	if ((rc = store_tree_inclusion(s, origin, seq, size, path, &count)) < 0)
		return rc;
	hashes = json_array();
	for (size_t i = 0; i < count; i++)
		json_array_append_new(hashes, store_hex_json(path[i]));
	json_array_append_new(list, json_pack("{s:I,s:o,s:o}", "seq", (json_int_t)seq, "bytes",
	                                      b64_json(bytes, len), "path", hashes));
	return 0;
}

/* The seqs of an origin's rotation records (a key_history row from R + 1 is of record R). */
struct rot_list {
	const uint8_t *origin;
	uint64_t size;
	uint64_t seqs[STORE_PROOF_MAX_CHANGESETS];
	size_t n;
	int too_many;
};

static int collect_rotation(void *arg, const uint8_t origin[32], uint64_t from_seq,
                            const uint8_t key[32])
{
	struct rot_list *l = arg;

	(void)key;
	if (memcmp(origin, l->origin, 32) != 0 || from_seq < 2 || from_seq - 1 > l->size)
		return 0;
	if (l->n == STORE_PROOF_MAX_CHANGESETS) {
		l->too_many = 1;
		return 1;
	}
	l->seqs[l->n++] = from_seq - 1;
	return 0;
}

/*
 * The rotation records of origin up to the checkpoint's size, with their
 * paths: what a verifier needs to know the key of every seq up to size + 1
 * (FORMAT.md, 15.6).
 */
static int add_rotations(struct store *s, const uint8_t origin[32], uint64_t size, json_t *list)
{
	struct rot_list *l = calloc(1, sizeof(*l));
	uint8_t *bytes = NULL;
	size_t len;
	int rc;

	if (!l)
		abort();
	l->origin = origin;
	l->size = size;
	if ((rc = store_each_key(s, collect_rotation, l)) < 0)
		goto cleanup;
	rc = 0;
	if (l->too_many) {
		store_set_error(s,
		                "the origin has more than %u rotation records; a proof holds "
		                "at most that many",
		                STORE_PROOF_MAX_CHANGESETS);
		rc = LOKET_E_TOO_BIG;
		goto cleanup;
	}
	for (size_t i = 0; i < l->n; i++) {
		free(bytes);
		bytes = NULL;
		if ((rc = store_changeset(s, origin, l->seqs[i], &bytes, &len)) < 0) {
			store_set_error(
			    s, "the store holds no rotation record seq %llu of this origin",
			    (unsigned long long)l->seqs[i]);
			goto cleanup;
		}
		if ((rc = add_changeset(s, origin, l->seqs[i], size, bytes, len, list)) < 0)
			goto cleanup;
	}
cleanup:
	free(bytes);
	free(l);
	return rc;
}

int store_prove(struct store *s, const char *coll, const char *owner_name, const char *id,
                uint64_t seq, json_t **out)
{
	uint8_t origin[32], *note = NULL, *bytes = NULL;
	size_t note_len = 0, len = 0;
	struct note *n = NULL;
	struct note_checkpoint c;
	json_t *list = json_array(), *rots = json_array(), *ent = NULL, *proof = NULL;
	char err[300], q[ERROR_QUOTE_SIZE];
	int rc, own_tx = 0;
	size_t b64_len = 0;
	const char *end = NULL;

	*out = NULL;
	s->err[0] = '\0';
	if (sqlite3_get_autocommit(s->db)) {
		if (sqlite3_exec(s->db, "BEGIN", NULL, NULL, NULL) != SQLITE_OK) {
			rc = store_sqlite_fail(s, "cannot start reading the store");
			goto cleanup;
		}
		own_tx = 1;
	}
	if (store_member_key(s, owner_name, origin) < 0 &&
	    !(sodium_base642bin(origin, 32, owner_name, strlen(owner_name), NULL, &b64_len, &end,
	                        sodium_base64_VARIANT_ORIGINAL) == 0 &&
	      b64_len == 32 && end == owner_name + strlen(owner_name))) {
		store_set_error(s, "%s is neither a member's name nor a key",
		                error_quote_str(q, sizeof(q), owner_name));
		rc = LOKET_E_NOT_FOUND;
		goto cleanup;
	}
	if (coll) {
		/* The entity's last change; every changeset of its owner up to it is looked at. */
		if ((rc = store_get(s, coll, id, owner_name, &ent)) < 0)
			goto cleanup;
		json_t *e = json_is_array(ent) ? json_array_get(ent, 0) : ent;
		if (!json_is_integer(json_object_get(e, "seq")) ||
		    json_integer_value(json_object_get(e, "seq")) < 1) {
			store_set_error(
			    s, "the store holds no such entity (a deleted one has no proof)");
			rc = LOKET_E_NOT_FOUND;
			goto cleanup;
		}
		seq = (uint64_t)json_integer_value(json_object_get(e, "seq"));
	}
	if ((rc = store_checkpoint_get(s, origin, &note, &note_len)) < 0) {
		store_set_error(s, "the store holds no checkpoint of %s yet",
		                error_quote_str(q, sizeof(q), owner_name));
		goto cleanup;
	}
	n = malloc(sizeof(*n));
	if (!n)
		abort();
	if (note_parse(note, note_len, n, err, sizeof(err)) < 0 ||
	    note_checkpoint_parse(n->text, n->text_len, &c, err, sizeof(err)) < 0) {
		store_set_error(s, "the store's checkpoint of %s does not parse: %s",
		                error_quote_str(q, sizeof(q), owner_name), err);
		rc = LOKET_E_STORE;
		goto cleanup;
	}
	if (c.size < seq) {
		store_set_error(
		    s,
		    "the latest checkpoint of %s is of size %llu, before seq %llu; a later "
		    "one comes once it is signed and cosigned",
		    error_quote_str(q, sizeof(q), owner_name), (unsigned long long)c.size,
		    (unsigned long long)seq);
		rc = LOKET_E_NOT_FOUND;
		goto cleanup;
	}
	for (uint64_t i = coll ? 1 : seq; i <= seq; i++) {
		struct changeset cs;
		int touches = !coll;

		free(bytes);
		bytes = NULL;
		if ((rc = store_changeset(s, origin, i, &bytes, &len)) < 0) {
			store_set_error(s, "the store holds no changeset seq %llu of this origin",
			                (unsigned long long)i);
			goto cleanup;
		}
		if (coll) {
			if (changeset_decode(bytes, len, &cs, err, sizeof(err)) < 0) {
				store_set_error(
				    s, "the store's changeset seq %llu does not decode: %s",
				    (unsigned long long)i, err);
				rc = LOKET_E_STORE;
				goto cleanup;
			}
			for (size_t k = 0; k < cs.n_ops && !touches; k++)
				touches = op_is(&cs.ops[k], coll, id);
			changeset_release(&cs);
		}
		if (!touches)
			continue;
		if (json_array_size(list) == STORE_PROOF_MAX_CHANGESETS) {
			store_set_error(s,
			                "more than %u changesets made the entity; a proof holds at "
			                "most that many",
			                STORE_PROOF_MAX_CHANGESETS);
			rc = LOKET_E_TOO_BIG;
			goto cleanup;
		}
		if ((rc = add_changeset(s, origin, i, c.size, bytes, len, list)) < 0)
			goto cleanup;
	}
	if ((rc = add_rotations(s, origin, c.size, rots)) < 0)
		goto cleanup;
	proof = json_pack("{s:s,s:o,s:o,s:s%,s:O}", "format", "loket-proof/1", "origin",
	                  store_owner_json(s, origin), "key", b64_json(origin, 32), "checkpoint",
	                  (const char *)note, note_len, "changesets", list);
	if (json_array_size(rots))
		json_object_set(proof, "rotations", rots);
	if (coll)
		json_object_set_new(proof, "entity",
		                    json_pack("{s:s,s:o,s:s}", "coll", coll, "owner",
		                              store_owner_json(s, origin), "id", id));
	*out = proof;
	rc = 0;
cleanup:
	if (own_tx)
		sqlite3_exec(s->db, "COMMIT", NULL, NULL, NULL);
	free(bytes);
	free(note);
	free(n);
	json_decref(ent);
	json_decref(list);
	json_decref(rots);
	return rc;
}

/* Verification, with no store. */

/* A rotation record of the proof that held: from seq + 1 on, key signs. */
struct prot {
	uint64_t seq;
	uint8_t key[32];
};

struct pverify {
	json_t *problems;
	const uint8_t (*pinned)[32];
	size_t n_pinned;
	struct prot *rot; /* in seq order */
	size_t n_rot;
	struct store_keychain kc;
};

/* The key at seq (FORMAT.md, 14.2) by the proof's rotation records. */
static const uint8_t *key_at(const struct pverify *v, const uint8_t origin[32], uint64_t seq)
{
	const uint8_t *k = origin;

	for (size_t i = 0; i < v->n_rot && v->rot[i].seq < seq; i++)
		k = v->rot[i].key;
	return k;
}

static void pproblem(struct pverify *v, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void pproblem(struct pverify *v, const char *fmt, ...)
{
	char msg[600];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	json_array_append_new(v->problems, json_string(msg));
}

static int pinned(const struct pverify *v, const uint8_t key[32])
{
	for (size_t i = 0; i < v->n_pinned; i++)
		if (!memcmp(v->pinned[i], key, 32))
			return 1;
	return 0;
}

/* A base64 string member of at most max bytes decoded; NULL (and *len 0) if it is not one. */
static uint8_t *b64_member(const json_t *o, const char *key, size_t max, size_t *len)
{
	const char *s = json_string_value(json_object_get(o, key)), *end = NULL;
	uint8_t *b;

	*len = 0;
	if (!s || strlen(s) > sodium_base64_ENCODED_LEN(max, sodium_base64_VARIANT_ORIGINAL))
		return NULL;
	b = malloc(strlen(s) + 1);
	if (!b)
		abort();
	if (sodium_base642bin(b, strlen(s) + 1, s, strlen(s), NULL, len, &end,
	                      sodium_base64_VARIANT_ORIGINAL) != 0 ||
	    end != s + strlen(s) || *len > max) {
		free(b);
		*len = 0;
		return NULL;
	}
	return b;
}

static int hex32_member(const json_t *h, uint8_t out[32])
{
	const char *s = json_string_value(h);
	size_t n = 0;

	return s && strlen(s) == 64 && sodium_hex2bin(out, 32, s, 64, NULL, &n, NULL) == 0 &&
	       n == 32;
}

/* Checks one changeset of the proof against the checkpoint (size, root). */
static void check_one(struct pverify *v, const json_t *c, size_t i, const uint8_t origin[32],
                      const char *federation, const struct note_checkpoint *ck,
                      const json_t *entity, int *touches, int rotation)
{
	json_t *seqj = json_object_get(c, "seq"), *path = json_object_get(c, "path"), *h;
	uint8_t hashes[MERKLE_MAX_PROOF][32], hash[32], leaf[32], *bytes;
	struct changeset cs;
	size_t len, k;
	char err[300];
	uint64_t seq;

	if (!json_is_integer(seqj) || json_integer_value(seqj) < 1 || !json_is_array(path) ||
	    json_array_size(path) > MERKLE_MAX_PROOF) {
		pproblem(v, "changeset %zu: its seq or path is not there or not of its type",
		         i + 1);
		return;
	}
	seq = (uint64_t)json_integer_value(seqj);
	json_array_foreach(path, k, h) if (!hex32_member(h, hashes[k]))
	{
		pproblem(v, "seq %llu: hash %zu of its path is not 64 hex digits",
		         (unsigned long long)seq, k + 1);
		return;
	}
	if (!(bytes = b64_member(c, "bytes", LOKET_MAX_CHANGESET_BYTES, &len))) {
		pproblem(v, "seq %llu: its bytes are not base64 of at most 1 MiB",
		         (unsigned long long)seq);
		return;
	}
	if (changeset_decode(bytes, len, &cs, err, sizeof(err)) < 0) {
		pproblem(v, "seq %llu: the changeset cannot be decoded: %s",
		         (unsigned long long)seq, err);
		free(bytes);
		return;
	}
	if (memcmp(cs.origin, origin, 32) != 0 || cs.seq != seq)
		pproblem(v, "seq %llu: the changeset names another origin or seq (%llu)",
		         (unsigned long long)seq, (unsigned long long)cs.seq);
	else if (cs.federation_len != strlen(federation) ||
	         memcmp(cs.federation, federation, cs.federation_len) != 0)
		pproblem(v, "seq %llu: the changeset is of another federation than the checkpoint",
		         (unsigned long long)seq);
	else if (rotation &&
	         (!changeset_rotation(&cs) || (v->n_rot && v->rot[v->n_rot - 1].seq >= seq)))
		pproblem(v,
		         "rotation %zu: seq %llu is not a rotation record after the one before it",
		         i + 1, (unsigned long long)seq);
	else if (changeset_verify(bytes, len, rotation ? v->kc.signer : key_at(v, origin, seq)) !=
	         0)
		pproblem(v, "seq %llu: the changeset's signature does not verify%s",
		         (unsigned long long)seq,
		         rotation || key_at(v, origin, seq) != origin
		             ? " under the key the proof's rotation records name for it"
		             : "");
	else if (seq > ck->size)
		pproblem(v, "seq %llu: beyond the checkpoint's tree of size %llu",
		         (unsigned long long)seq, (unsigned long long)ck->size);
	else {
		changeset_hash(bytes, len, hash);
		merkle_leaf_hash(hash, leaf);
		if (merkle_verify_inclusion(leaf, seq - 1, ck->size, &hashes[0][0],
		                            json_array_size(path), ck->root) != 0)
			pproblem(v,
			         "seq %llu: its inclusion path does not lead to the root of the "
			         "checkpoint's tree of size %llu",
			         (unsigned long long)seq, (unsigned long long)ck->size);
		else if (rotation && store_keychain_rotate(&v->kc, changeset_rotation(&cs)) < 0)
			pproblem(v, "seq %llu: the rotation record names a key the origin has had",
			         (unsigned long long)seq);
		else if (rotation) {
			v->rot = realloc(v->rot, (v->n_rot + 1) * sizeof(*v->rot));
			if (!v->rot)
				abort();
			v->rot[v->n_rot].seq = seq;
			memcpy(v->rot[v->n_rot++].key, changeset_rotation(&cs), 32);
		}
	}
	if (entity) {
		const char *coll = json_string_value(json_object_get(entity, "coll"));
		const char *id = json_string_value(json_object_get(entity, "id"));
		for (k = 0; coll && id && k < cs.n_ops; k++)
			if (op_is(&cs.ops[k], coll, id))
				(*touches)++;
	}
	changeset_release(&cs);
	free(bytes);
}

int store_proof_verify(const json_t *proof, const uint8_t (*pin)[32], size_t n_pinned,
                       json_t **report)
{
	struct pverify v = {json_array(), pin, n_pinned, NULL, 0, {{0}, NULL, 0, 0}};
	json_t *rots = json_object_get(proof, "rotations");
	struct note *n = malloc(sizeof(*n));
	struct note_checkpoint ck;
	uint8_t origin[32], *key = NULL;
	char err[300], fed[LOKET_MAX_FEDERATION_LEN + 1] = "";
	const char *note = json_string_value(json_object_get(proof, "checkpoint"));
	json_t *list = json_object_get(proof, "changesets"), *c, *cosigners = json_array();
	json_t *entity = json_object_get(proof, "entity");
	size_t klen = 0, i;
	int touches = 0, ok_ck = 0;

	if (!n || !v.problems || !cosigners)
		abort();
	memset(&ck, 0, sizeof(ck));
	const char *format = json_string_value(json_object_get(proof, "format"));
	if (!json_is_object(proof) || !format || strcmp(format, "loket-proof/1")) {
		pproblem(&v, "not a loket proof: its \"format\" is not \"loket-proof/1\"");
		goto report;
	}
	if (!(key = b64_member(proof, "key", 32, &klen)) || klen != 32) {
		pproblem(&v, "its \"key\" is not the base64 of a 32-byte key");
		goto report;
	}
	if (!note || note_parse((const uint8_t *)note, strlen(note), n, err, sizeof(err)) < 0 ||
	    note_checkpoint_parse(n->text, n->text_len, &ck, err, sizeof(err)) < 0 ||
	    note_origin_parse(ck.origin, ck.origin_len, fed, sizeof(fed), origin) < 0) {
		pproblem(&v, "checkpoint: %s", note ? err : "not there");
		goto report;
	}
	if (memcmp(origin, key, 32) != 0) {
		pproblem(&v,
		         "checkpoint: its origin line names another origin than the proof's key");
		goto report;
	}
	/*
	 * The rotation records first: they name the key of each seq, and the
	 * checkpoint is signed by the key of seq size + 1.
	 */
	store_keychain_start(&v.kc, origin);
	if (rots && (!json_is_array(rots) || json_array_size(rots) > STORE_PROOF_MAX_CHANGESETS)) {
		pproblem(&v, "its \"rotations\" is not a list of at most %u",
		         STORE_PROOF_MAX_CHANGESETS);
		goto report;
	}
	json_array_foreach(rots, i, c) check_one(&v, c, i, origin, fed, &ck, NULL, &touches, 1);
	if (note_verify(n, (const uint8_t *)ck.origin, ck.origin_len, v.kc.signer) != 0)
		pproblem(&v, "checkpoint: the origin's signature does not verify%s",
		         v.n_rot ? " under the key its rotation records name after its size" : "");
	else
		ok_ck = 1;
	if (n_pinned && !pinned(&v, origin))
		pproblem(&v, "checkpoint: the origin's key is not one of the keys pinned");
	/* Cosignatures: every line named by an origin line with a key of its own. */
	for (i = 0; i < n->count; i++) {
		const struct note_sig *sg = &n->sig[i];
		char cfed[LOKET_MAX_FEDERATION_LEN + 1];
		uint8_t ckey[32];
		uint64_t ts;
		int dup = 0;

		if (note_origin_parse((const char *)sg->name, sg->name_len, cfed, sizeof(cfed),
		                      ckey) < 0 ||
		    !memcmp(ckey, origin, 32) || strcmp(cfed, fed) ||
		    sg->key_id != note_key_id(sg->name, sg->name_len, NOTE_TYPE_COSIG, ckey))
			continue;
		if (note_verify_cosig(n, sg->name, sg->name_len, ckey, &ts) != 0) {
			pproblem(&v, "checkpoint: a cosignature of key %.*s does not verify",
			         (int)sg->name_len, (const char *)sg->name);
			continue;
		}
		if (n_pinned && !pinned(&v, ckey))
			continue; /* a key the auditor does not know counts for nothing */
		char b64[45];
		sodium_bin2base64(b64, sizeof(b64), ckey, 32, sodium_base64_VARIANT_ORIGINAL);
		for (size_t k = 0; k < json_array_size(cosigners); k++)
			dup |= !strcmp(json_string_value(json_array_get(cosigners, k)), b64);
		if (!dup)
			json_array_append_new(cosigners, json_string(b64));
	}
	if (!json_is_array(list) || json_array_size(list) < 1 ||
	    json_array_size(list) > STORE_PROOF_MAX_CHANGESETS) {
		pproblem(&v, "its \"changesets\" is not a list of 1 to %u",
		         STORE_PROOF_MAX_CHANGESETS);
		goto report;
	}
	json_array_foreach(list, i, c) check_one(
	    &v, c, i, origin, fed, &ck, json_is_object(entity) ? entity : NULL, &touches, 0);
	if (json_is_object(entity) && json_array_size(v.problems) == 0 && !touches)
		pproblem(&v, "no changeset of the proof has an op on the entity it names");
report:
	*report = json_object();
	json_object_set_new(*report, "ok", json_boolean(json_array_size(v.problems) == 0));
	json_object_set_new(*report, "federation", json_string(fed));
	json_object_set(*report, "origin",
	                json_object_get(proof, "origin") ? json_object_get(proof, "origin")
	                                                 : json_null());
	json_object_set_new(*report, "size", json_integer((json_int_t)ck.size));
	json_object_set_new(*report, "root", ok_ck ? store_hex_json(ck.root) : json_null());
	json_object_set_new(*report, "cosigned",
	                    json_integer((json_int_t)json_array_size(cosigners)));
	json_object_set_new(*report, "cosigners", cosigners);
	json_object_set_new(*report, "keys_pinned", json_boolean(n_pinned > 0));
	json_object_set_new(*report, "problems", v.problems);
	json_object_set_new(*report, "changesets", json_integer((json_int_t)json_array_size(list)));
	json_object_set_new(*report, "rotations", json_integer((json_int_t)v.n_rot));
	free(key);
	free(n);
	free(v.rot);
	store_keychain_free(&v.kc);
	return 0;
}
