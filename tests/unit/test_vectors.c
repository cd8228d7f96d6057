/*
 * The test vectors of proto/FORMAT.md (the JSON files of tests/vectors) against the C
 * code: every output a vector file states is computed again from its
 * inputs by the code loketd runs (changeset_encode and the signature input,
 * changeset_decode on the invalid bodies, value_pack_json, the store's fold
 * and entity text, store_entity_digest, lthash, and a real store that takes
 * the state vectors' changesets and must show their digests, rows and
 * lanes, and verify; the key rotation vectors through store_append, the
 * key history and store_verify with revocations). Where the code and the file disagree, one of
 * them, or FORMAT.md, is wrong.
 *
 * `test_vectors --fill FILE` computes the outputs of FILE from its inputs
 * and writes them into it: how the files were made, once, and how a new
 * section's vectors are made. tests/vectors/check.py checks the same files
 * with a Python implementation written from FORMAT.md alone.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <jansson.h>
#include <sodium.h>

#include "proto/bundle.h"
#include "proto/changeset.h"
#include "proto/error.h"
#include "proto/limits.h"
#include "proto/lthash.h"
#include "proto/merkle.h"
#include "proto/note.h"
#include "proto/value.h"
#include "store/store.h"
#include "store/store_int.h"

#ifndef LOKET_VECTORS_DIR
#error "LOKET_VECTORS_DIR names tests/vectors"
#endif

/* 1 while filling a file: computed outputs are written, not compared. */
static int filling;
static char dir[] = "/tmp/test_vectors_XXXXXX";

static json_t *hex_json(const uint8_t *b, size_t n)
{
	char *s = malloc(2 * n + 1);
	json_t *j;

	assert_non_null(s);
	sodium_bin2hex(s, 2 * n + 1, b, n);
	j = json_string(s);
	free(s);
	return j;
}

/* Decodes the hex string s into a new buffer; *n gets its length. */
static uint8_t *hex_decode(const json_t *str, size_t *n)
{
	const char *s = json_string_value(str);
	size_t len, bin_len = 0;
	uint8_t *b;

	assert_non_null(s);
	len = strlen(s);
	b = malloc(len / 2 + 1);
	assert_non_null(b);
	assert_int_equal(sodium_hex2bin(b, len / 2 + 1, s, len, NULL, &bin_len, NULL), 0);
	assert_int_equal(bin_len * 2, len);
	*n = bin_len;
	return b;
}

/* The same for the hex string at key of o. */
static uint8_t *hex_get(const json_t *o, const char *key, size_t *n)
{
	return hex_decode(json_object_get(o, key), n);
}

static void hex_get_n(const json_t *o, const char *key, uint8_t *out, size_t want)
{
	size_t n;
	uint8_t *b = hex_get(o, key, &n);

	assert_int_equal(n, want);
	memcpy(out, b, n);
	free(b);
}

/*
 * An output of case c: written into c while filling, else compared with
 * what c says (and named, so a failure says which vector and which value).
 */
static void output(json_t *c, const char *key, json_t *got)
{
	json_t *want = json_object_get(c, key);

	if (filling) {
		json_object_set_new(c, key, got);
		return;
	}
	if (!want || !json_equal(want, got)) {
		char *g = json_dumps(got, JSON_ENCODE_ANY),
		     *w = want ? json_dumps(want, JSON_ENCODE_ANY) : NULL;

		print_error("vector \"%s\", %s:\n  computed %s\n  file     %s\n",
		            json_string_value(json_object_get(c, "name")), key, g,
		            w ? w : "(none)");
		free(g);
		free(w);
		json_decref(got);
		fail();
	}
	json_decref(got);
}

static json_t *load(const char *name)
{
	char path[512];
	json_error_t jerr;
	json_t *root;

	snprintf(path, sizeof(path), "%s/%s", LOKET_VECTORS_DIR, name);
	root = json_load_file(path, JSON_ALLOW_NUL, &jerr);
	if (!root)
		print_error("%s:%d: %s\n", path, jerr.line, jerr.text);
	assert_non_null(root);
	return root;
}

/* A put op's fields as canonical msgpack, into sb (which the caller destroys). */
static void pack_fields(msgpack_sbuffer *sb, const json_t *fields)
{
	msgpack_packer pk;
	char err[200];

	msgpack_sbuffer_init(sb);
	msgpack_packer_init(&pk, sb, msgpack_sbuffer_write);
	assert_int_equal(value_pack_json(&pk, fields, LOKET_MAX_DEPTH, err, sizeof(err)), 0);
	assert_int_equal(
	    changeset_check_fields((const uint8_t *)sb->data, sb->size, err, sizeof(err)), 0);
}

/*
 * The signed changeset of the inputs: body, signature and hash, by the key
 * made from seed. *bytes (body || signature) is malloc'd.
 */
/*
 * A changeset of origin (NULL: the signer's own key) signed by the key of
 * seed: of ops, or, with rotate, the rotation record naming rotate.
 */
static void make_signed(const uint8_t seed[32], const uint8_t *origin, const char *federation,
                        uint64_t seq, const uint8_t prev[32], uint64_t hlc, const json_t *ops,
                        const uint8_t *rotate, uint8_t **bytes, size_t *len, size_t *body_len)
{
	uint8_t pk[32], sk[64], *msg = NULL;
	size_t msg_len = 0, i;
	struct changeset cs;
	msgpack_sbuffer body, *fields;
	json_t *o;

	crypto_sign_seed_keypair(pk, sk, seed);
	memset(&cs, 0, sizeof(cs));
	cs.version = CHANGESET_VERSION;
	cs.federation = federation;
	cs.federation_len = strlen(federation);
	memcpy(cs.origin, origin ? origin : pk, 32);
	cs.seq = seq;
	memcpy(cs.prev, prev, 32);
	cs.hlc = hlc;
	cs.n_ops = rotate ? 1 : json_array_size(ops);
	cs.ops = calloc(cs.n_ops + 1, sizeof(*cs.ops));
	fields = calloc(cs.n_ops + 1, sizeof(*fields));
	assert_non_null(cs.ops);
	assert_non_null(fields);
	if (rotate) {
		cs.ops[0].kind = OP_ROTATE;
		cs.ops[0].key = rotate;
		msgpack_sbuffer_init(&fields[0]);
		ops = NULL;
	}
	json_array_foreach(ops, i, o)
	{
		struct op *op = &cs.ops[i];

		op->coll = json_string_value(json_object_get(o, "coll"));
		op->coll_len = strlen(op->coll);
		op->id = json_string_value(json_object_get(o, "id"));
		op->id_len = strlen(op->id);
		msgpack_sbuffer_init(&fields[i]);
		if (json_is_true(json_object_get(o, "del"))) {
			op->kind = OP_DEL;
			continue;
		}
		op->kind = OP_PUT;
		msgpack_sbuffer_destroy(&fields[i]);
		pack_fields(&fields[i], json_object_get(o, "fields"));
		op->fields = (const uint8_t *)fields[i].data;
		op->fields_len = fields[i].size;
	}
	msgpack_sbuffer_init(&body);
	assert_int_equal(changeset_encode(&cs, &body), 0);
	assert_int_equal(
	    changeset_signing_input((const uint8_t *)body.data, body.size, &msg, &msg_len), 0);
	/* What is signed is the domain tag, then the body: nothing else. */
	assert_int_equal(msg_len, strlen(CHANGESET_SIGN_DOMAIN) + body.size);
	assert_memory_equal(msg, CHANGESET_SIGN_DOMAIN, strlen(CHANGESET_SIGN_DOMAIN));
	*body_len = body.size;
	*len = body.size + 64;
	*bytes = malloc(*len);
	assert_non_null(*bytes);
	memcpy(*bytes, body.data, body.size);
	crypto_sign_detached(*bytes + body.size, NULL, msg, msg_len, sk);
	assert_int_equal(changeset_verify(*bytes, *len, pk), 0);
	free(msg);
	msgpack_sbuffer_destroy(&body);
	for (i = 0; i < cs.n_ops; i++)
		msgpack_sbuffer_destroy(&fields[i]);
	free(fields);
	free(cs.ops);
}

static void make_changeset(const uint8_t seed[32], const char *federation, uint64_t seq,
                           const uint8_t prev[32], uint64_t hlc, const json_t *ops, uint8_t **bytes,
                           size_t *len, size_t *body_len)
{
	make_signed(seed, NULL, federation, seq, prev, hlc, ops, NULL, bytes, len, body_len);
}

/* Outputs body, signature and hash of one signed changeset into c. */
static void output_signed(json_t *c, const uint8_t *bytes, size_t len, size_t body_len)
{
	uint8_t hash[32];

	changeset_hash(bytes, len, hash);
	output(c, "body", hex_json(bytes, body_len));
	output(c, "signature", hex_json(bytes + body_len, 64));
	output(c, "hash", hex_json(hash, 32));
}

static const struct {
	const char *name;
	int code;
} error_names[] = {
    {"TRUNCATED", LOKET_E_TRUNCATED},
    {"TRAILING", LOKET_E_TRAILING},
    {"TOO_BIG", LOKET_E_TOO_BIG},
    {"TOO_DEEP", LOKET_E_TOO_DEEP},
    {"VERSION", LOKET_E_VERSION},
    {"MALFORMED", LOKET_E_MALFORMED},
    {"NOT_CANONICAL", LOKET_E_NOT_CANONICAL},
    {"DUPLICATE_KEY", LOKET_E_DUPLICATE_KEY},
    {"BAD_SEQ", LOKET_E_BAD_SEQ},
    {"BAD_PREV", LOKET_E_BAD_PREV},
};

static const char *error_name(int code)
{
	for (size_t i = 0; i < sizeof(error_names) / sizeof(error_names[0]); i++)
		if (error_names[i].code == code)
			return error_names[i].name;
	return code == 0 ? "accepted" : "another error";
}

static void do_changesets(json_t *root)
{
	uint8_t seed[32], pk[32], sk[64], prev[32];
	size_t i, len, body_len;
	json_t *c;

	hex_get_n(json_object_get(root, "key"), "seed", seed, 32);
	crypto_sign_seed_keypair(pk, sk, seed);
	output(json_object_get(root, "key"), "public", hex_json(pk, 32));
	json_array_foreach(json_object_get(root, "valid"), i, c)
	{
		uint8_t *bytes;
		struct changeset cs;
		char err[200];

		hex_get_n(c, "prev", prev, 32);
		make_changeset(seed, json_string_value(json_object_get(c, "federation")),
		               (uint64_t)json_integer_value(json_object_get(c, "seq")), prev,
		               (uint64_t)json_integer_value(json_object_get(c, "hlc")),
		               json_object_get(c, "ops"), &bytes, &len, &body_len);
		/* And the decoder takes back exactly these bytes. */
		assert_int_equal(changeset_decode(bytes, len, &cs, err, sizeof(err)), 0);
		assert_int_equal(cs.n_ops, json_array_size(json_object_get(c, "ops")));
		changeset_release(&cs);
		output_signed(c, bytes, len, body_len);
		free(bytes);
	}
	json_array_foreach(json_object_get(root, "invalid"), i, c)
	{
		struct changeset cs;
		char err[200];
		size_t n;
		uint8_t *body = hex_get(c, "body", &n), *bytes = calloc(n + 64, 1);
		int rc;

		assert_non_null(bytes);
		memcpy(bytes, body, n);
		rc = changeset_decode(bytes, n + 64, &cs, err, sizeof(err));
		if (rc == 0)
			changeset_release(&cs);
		output(c, "error", json_string(error_name(rc)));
		free(body);
		free(bytes);
	}
}

static void do_entities(json_t *root)
{
	struct store_buf buf = {0};
	size_t i;
	json_t *c;

	json_array_foreach(json_object_get(root, "text"), i, c)
	{
		msgpack_sbuffer sb;
		const json_t *old = json_object_get(c, "old");
		const char *nf;
		size_t nl;
		int nd, unchanged;
		char err[200];
		struct op op = {.kind = OP_PUT, .coll = "t", .coll_len = 1, .id = "i", .id_len = 1};

		pack_fields(&sb, json_object_get(c, "fields"));
		op.fields = (const uint8_t *)sb.data;
		op.fields_len = sb.size;
		output(c, "msgpack", hex_json((const uint8_t *)sb.data, sb.size));
		assert_int_equal(store_apply_fold(&buf, json_is_string(old), 0,
		                                  json_string_value(old), json_string_length(old),
		                                  &op, &nd, &nf, &nl, &unchanged, err, sizeof(err)),
		                 0);
		output(c, "text", json_stringn(nf, nl));
		msgpack_sbuffer_destroy(&sb);
	}
	json_array_foreach(json_object_get(root, "fold"), i, c)
	{
		json_t *states = json_array(), *op_j;
		char *fields = NULL;
		size_t fields_len = 0, k;
		int exists = 0, deleted = 0;
		long long seq = 0;

		json_array_foreach(json_object_get(c, "ops"), k, op_j)
		{
			msgpack_sbuffer sb;
			struct op op = {.coll = "t", .coll_len = 1, .id = "i", .id_len = 1};
			const char *nf;
			size_t nl;
			int nd, unchanged;
			char err[200];

			msgpack_sbuffer_init(&sb);
			if (json_is_true(json_object_get(op_j, "del"))) {
				op.kind = OP_DEL;
			} else {
				op.kind = OP_PUT;
				msgpack_sbuffer_destroy(&sb);
				pack_fields(&sb, json_object_get(op_j, "fields"));
				op.fields = (const uint8_t *)sb.data;
				op.fields_len = sb.size;
			}
			assert_int_equal(store_apply_fold(&buf, exists, deleted, fields, fields_len,
			                                  &op, &nd, &nf, &nl, &unchanged, err,
			                                  sizeof(err)),
			                 0);
			if (!unchanged) {
				exists = 1;
				deleted = nd;
				free(fields);
				fields = malloc(nl + 1);
				assert_non_null(fields);
				memcpy(fields, nf, nl);
				fields_len = nl;
				seq = (long long)k + 1;
			}
			json_array_append_new(
			    states,
			    json_pack("{s:b, s:b, s:b, s:o, s:I}", "changed", !unchanged, "exists",
			              exists, "deleted", deleted, "fields",
			              exists ? json_stringn(fields, fields_len) : json_null(),
			              "seq", (json_int_t)seq));
			msgpack_sbuffer_destroy(&sb);
		}
		free(fields);
		output(c, "states", states);
	}
	json_array_foreach(json_object_get(root, "digest"), i, c)
	{
		uint8_t owner[32], d[32];
		const char *coll = json_string_value(json_object_get(c, "coll"));
		const char *id = json_string_value(json_object_get(c, "id"));
		const json_t *f = json_object_get(c, "fields");

		hex_get_n(c, "owner", owner, 32);
		store_entity_digest(coll, strlen(coll), owner, id, strlen(id),
		                    json_is_true(json_object_get(c, "deleted")),
		                    json_string_value(f), json_string_length(f), d);
		output(c, "digest", hex_json(d, 32));
	}
	free(buf.p);
}

static json_t *lanes_head(const struct lthash *h)
{
	json_t *a = json_array();

	for (int i = 0; i < 8; i++)
		json_array_append_new(a, json_integer(h->lane[i]));
	return a;
}

static void do_lthash(json_t *root)
{
	uint8_t ks[LTHASH_BYTES], d[32];
	size_t i, k;
	json_t *c, *x;

	json_array_foreach(json_object_get(root, "expand"), i, c)
	{
		hex_get_n(c, "d", d, 32);
		lthash_expand(d, ks);
		output(c, "first64", hex_json(ks, 64));
		crypto_hash_sha256(d, ks, LTHASH_BYTES);
		output(c, "sha256", hex_json(d, 32));
	}
	json_array_foreach(json_object_get(root, "sets"), i, c)
	{
		struct lthash h;
		uint8_t b[LTHASH_BYTES];

		lthash_zero(&h);
		json_array_foreach(json_object_get(c, "add"), k, x)
		{
			size_t n;
			uint8_t *e = hex_decode(x, &n);

			assert_int_equal(n, 32);
			lthash_add(&h, e);
			free(e);
		}
		json_array_foreach(json_object_get(c, "remove"), k, x)
		{
			size_t n;
			uint8_t *e = hex_decode(x, &n);

			assert_int_equal(n, 32);
			lthash_sub(&h, e);
			free(e);
		}
		/* The lanes are little-endian in the bytes that are hashed. */
		lthash_to_bytes(&h, b);
		assert_int_equal(b[0] | b[1] << 8, h.lane[0]);
		output(c, "lanes0_7", lanes_head(&h));
		lthash_digest(&h, d);
		output(c, "digest", hex_json(d, 32));
	}
}

/* The leaves of merkle.json, as an array a merkle_get_fn reads. */
static uint8_t (*merkle_leaves(json_t *root, size_t *n))[32]
{
	json_t *leaves = json_object_get(root, "leaves"), *x;
	uint8_t(*h)[32] = calloc(json_array_size(leaves) + 1, 32);
	size_t i;

	assert_non_null(h);
	json_array_foreach(leaves, i, x)
	{
		size_t len;
		uint8_t *b = hex_decode(x, &len);

		assert_int_equal(len, 32);
		memcpy(h[i], b, 32);
		free(b);
	}
	*n = json_array_size(leaves);
	return h;
}

static json_t *proof_json(uint8_t proof[][32], size_t count)
{
	json_t *a = json_array();

	for (size_t i = 0; i < count; i++)
		json_array_append_new(a, hex_json(proof[i], 32));
	return a;
}

static void do_merkle(json_t *root)
{
	size_t n, i;
	uint8_t(*leaves)[32] = merkle_leaves(root, &n);
	struct merkle_array a = {leaves[0], 0};
	uint8_t r[32], proof[MERKLE_MAX_PROOF][32], r2[32];
	size_t count;
	json_t *c;

	json_array_foreach(json_object_get(root, "roots"), i, c)
	{
		uint64_t size = (uint64_t)json_integer_value(json_object_get(c, "size"));
		struct merkle_frontier f;

		assert_true(size <= n);
		a.n = size;
		assert_int_equal(merkle_root(merkle_array_get, &a, size, r), 0);
		merkle_frontier_init(&f);
		for (uint64_t k = 0; k < size; k++)
			assert_int_equal(merkle_frontier_append(&f, leaves[k], NULL, NULL), 0);
		merkle_frontier_root(&f, r2);
		assert_memory_equal(r, r2, 32);
		output(c, "root", hex_json(r, 32));
	}
	json_array_foreach(json_object_get(root, "inclusion"), i, c)
	{
		uint64_t idx = (uint64_t)json_integer_value(json_object_get(c, "index"));
		uint64_t size = (uint64_t)json_integer_value(json_object_get(c, "size"));
		uint8_t leaf[32];

		a.n = size;
		assert_int_equal(
		    merkle_inclusion_proof(merkle_array_get, &a, idx, size, proof, &count), 0);
		assert_int_equal(merkle_root(merkle_array_get, &a, size, r), 0);
		merkle_leaf_hash(leaves[idx], leaf);
		assert_int_equal(merkle_verify_inclusion(leaf, idx, size, proof[0], count, r), 0);
		output(c, "root", hex_json(r, 32));
		output(c, "proof", proof_json(proof, count));
	}
	json_array_foreach(json_object_get(root, "consistency"), i, c)
	{
		uint64_t m = (uint64_t)json_integer_value(json_object_get(c, "m"));
		uint64_t size = (uint64_t)json_integer_value(json_object_get(c, "n"));

		a.n = size;
		assert_int_equal(
		    merkle_consistency_proof(merkle_array_get, &a, m, size, proof, &count), 0);
		assert_int_equal(merkle_root(merkle_array_get, &a, m, r2), 0);
		assert_int_equal(merkle_root(merkle_array_get, &a, size, r), 0);
		assert_int_equal(merkle_verify_consistency(m, size, r2, r, proof[0], count), 0);
		output(c, "proof", proof_json(proof, count));
	}
	free(leaves);
}

/* The signed note of text by the log key sk (its origin line is name). */
static size_t sign_note(char *buf, size_t cap, const char *text, size_t len, const char *name,
                        const uint8_t pk[32], const uint8_t sk[64])
{
	uint8_t sig[64];
	size_t n = len;

	assert_true(len + 1 < cap);
	memcpy(buf, text, len);
	buf[n++] = '\n';
	crypto_sign_detached(sig, NULL, (const uint8_t *)text, len, sk);
	assert_int_equal(
	    note_append_sig(buf, cap, &n, (const uint8_t *)name, strlen(name),
	                    note_key_id((const uint8_t *)name, strlen(name), NOTE_TYPE_ED25519, pk),
	                    sig, 64),
	    0);
	return n;
}

static void do_checkpoint(json_t *root)
{
	json_t *log = json_object_get(root, "log"), *c;
	struct note_checkpoint cp, back;
	uint8_t seed[32], pk[32], sk[64];
	char text[NOTE_MAX_TEXT], note[4096], err[256], keyid[9];
	size_t tlen, nlen, i;
	struct note *n = malloc(sizeof(*n));
	struct merkle_array a;
	size_t nleaves;
	json_t *mroot = load("merkle.json");
	uint8_t(*leaves)[32] = merkle_leaves(mroot, &nleaves);

	assert_non_null(n);
	hex_get_n(log, "seed", seed, 32);
	crypto_sign_seed_keypair(pk, sk, seed);
	output(log, "public", hex_json(pk, 32));
	assert_int_equal(
	    note_origin_line(json_string_value(json_object_get(log, "federation")), pk, &cp), 0);
	output(log, "origin", json_string(cp.origin));
	cp.size = (uint64_t)json_integer_value(json_object_get(log, "size"));
	a.hashes = leaves[0];
	a.n = cp.size;
	assert_int_equal(merkle_root(merkle_array_get, &a, cp.size, cp.root), 0);
	output(log, "root", hex_json(cp.root, 32));
	snprintf(keyid, sizeof(keyid), "%08x",
	         (unsigned)note_key_id((const uint8_t *)cp.origin, cp.origin_len, NOTE_TYPE_ED25519,
	                               pk));
	output(log, "key_id", json_string(keyid));
	assert_int_equal(note_checkpoint_text(&cp, text, sizeof(text), &tlen), 0);
	output(log, "text", json_stringn(text, tlen));
	nlen = sign_note(note, sizeof(note), text, tlen, cp.origin, pk, sk);
	output(log, "note", json_stringn(note, nlen));
	assert_int_equal(note_parse((const uint8_t *)note, nlen, n, err, sizeof(err)), 0);
	assert_int_equal(note_verify(n, (const uint8_t *)cp.origin, cp.origin_len, pk), 0);
	assert_int_equal(note_checkpoint_parse(n->text, n->text_len, &back, err, sizeof(err)), 0);
	assert_int_equal(back.size, cp.size);
	assert_memory_equal(back.root, cp.root, 32);
	assert_string_equal(back.origin, cp.origin);

	json_array_foreach(json_object_get(root, "cosigners"), i, c)
	{
		uint8_t cseed[32], cpk[32], csk[64], msg[2048], sig[NOTE_COSIG_BYTES];
		uint64_t ts = (uint64_t)json_integer_value(json_object_get(c, "time")), got;
		struct note_checkpoint name;
		size_t mlen;
		uint32_t id;

		hex_get_n(c, "seed", cseed, 32);
		crypto_sign_seed_keypair(cpk, csk, cseed);
		output(c, "public", hex_json(cpk, 32));
		assert_int_equal(note_origin_line("leiden", cpk, &name), 0);
		output(c, "name", json_string(name.origin));
		id = note_key_id((const uint8_t *)name.origin, name.origin_len, NOTE_TYPE_COSIG,
		                 cpk);
		snprintf(keyid, sizeof(keyid), "%08x", (unsigned)id);
		output(c, "key_id", json_string(keyid));
		assert_int_equal(
		    note_cosig_message((const uint8_t *)text, tlen, ts, msg, sizeof(msg), &mlen),
		    0);
		output(c, "message", json_stringn((const char *)msg, mlen));
		for (int k = 0; k < 8; k++)
			sig[k] = (uint8_t)(ts >> (56 - 8 * k));
		crypto_sign_detached(sig + 8, NULL, msg, mlen, csk);
		assert_int_equal(note_append_sig(note, sizeof(note), &nlen,
		                                 (const uint8_t *)name.origin, name.origin_len, id,
		                                 sig, sizeof(sig)),
		                 0);
		output(c, "note", json_stringn(note, nlen));
		assert_int_equal(note_parse((const uint8_t *)note, nlen, n, err, sizeof(err)), 0);
		assert_int_equal(
		    note_verify_cosig(n, (const uint8_t *)name.origin, name.origin_len, cpk, &got),
		    0);
		assert_int_equal(got, ts);
		/* A cosignature is not a log signature of that key. */
		assert_int_equal(note_verify(n, (const uint8_t *)name.origin, name.origin_len, cpk),
		                 LOKET_E_NOT_FOUND);
	}
	/* A split-view proof: the same size, another tree, both signed by the log. */
	{
		json_t *sp = json_object_get(root, "split");
		struct note_checkpoint other = cp;
		char t2[NOTE_MAX_TEXT], n2[1024];
		size_t t2len, n2len;
		uint64_t first = (uint64_t)json_integer_value(json_object_get(sp, "first_leaf"));

		a.hashes = leaves[first];
		a.n = cp.size;
		assert_int_equal(merkle_root(merkle_array_get, &a, cp.size, other.root), 0);
		assert_memory_not_equal(other.root, cp.root, 32);
		output(sp, "root", hex_json(other.root, 32));
		assert_int_equal(note_checkpoint_text(&other, t2, sizeof(t2), &t2len), 0);
		output(sp, "text", json_stringn(t2, t2len));
		n2len = sign_note(n2, sizeof(n2), t2, t2len, cp.origin, pk, sk);
		output(sp, "note", json_stringn(n2, n2len));
		assert_int_equal(note_parse((const uint8_t *)n2, n2len, n, err, sizeof(err)), 0);
		assert_int_equal(note_verify(n, (const uint8_t *)cp.origin, cp.origin_len, pk), 0);
	}
	json_array_foreach(json_object_get(root, "invalid_notes"), i, c)
	{
		const char *s = json_string_value(json_object_get(c, "note"));

		if (note_parse((const uint8_t *)s, strlen(s), n, err, sizeof(err)) == 0) {
			print_error("invalid note \"%s\" parses\n",
			            json_string_value(json_object_get(c, "name")));
			fail();
		}
		assert_true(err[0] != '\0');
	}
	json_array_foreach(json_object_get(root, "invalid_checkpoints"), i, c)
	{
		const char *s = json_string_value(json_object_get(c, "text"));

		if (note_checkpoint_parse((const uint8_t *)s, strlen(s), &back, err, sizeof(err)) ==
		    0) {
			print_error("invalid checkpoint \"%s\" parses\n",
			            json_string_value(json_object_get(c, "name")));
			fail();
		}
		assert_true(err[0] != '\0');
	}
	free(leaves);
	json_decref(mroot);
	free(n);
}

/* The entity rows of s, as state.json lists them. */
static json_t *entity_rows(struct store *s)
{
	sqlite3_stmt *st = NULL;
	json_t *rows = json_array();

	assert_int_equal(sqlite3_prepare_v2(store_sql_db(s),
	                                    "SELECT coll, owner, id, deleted, fields, seq, hlc,"
	                                    " digest FROM entity ORDER BY coll, owner, id",
	                                    -1, &st, NULL),
	                 SQLITE_OK);
	while (sqlite3_step(st) == SQLITE_ROW)
		json_array_append_new(rows,
		                      json_pack("{s:s, s:o, s:s, s:b, s:s, s:I, s:I, s:o}", "coll",
		                                (const char *)sqlite3_column_text(st, 0), "owner",
		                                hex_json(sqlite3_column_blob(st, 1), 32), "id",
		                                (const char *)sqlite3_column_text(st, 2), "deleted",
		                                sqlite3_column_int(st, 3), "fields",
		                                (const char *)sqlite3_column_text(st, 4), "seq",
		                                (json_int_t)sqlite3_column_int64(st, 5), "hlc",
		                                (json_int_t)sqlite3_column_int64(st, 6), "digest",
		                                hex_json(sqlite3_column_blob(st, 7), 32)));
	sqlite3_finalize(st);
	return rows;
}

static void do_state(json_t *root)
{
	char path[300], err[256];
	struct store *s = NULL;
	uint8_t seeds[2][32], heads[2][32], d[32], lanes[LTHASH_BYTES];
	uint64_t seqs[2] = {0, 0};
	const char *federation = json_string_value(json_object_get(root, "federation"));
	json_t *c, *report = NULL;
	size_t i;

	assert_int_equal(json_array_size(json_object_get(root, "origins")), 2);
	for (i = 0; i < 2; i++) {
		uint8_t pk[32], sk[64];
		json_t *o = json_array_get(json_object_get(root, "origins"), i);

		hex_get_n(o, "seed", seeds[i], 32);
		crypto_sign_seed_keypair(pk, sk, seeds[i]);
		output(o, "public", hex_json(pk, 32));
		memset(heads[i], 0, 32);
	}
	snprintf(path, sizeof(path), "%s/state.db", dir);
	unlink(path);
	assert_int_equal(store_open(path, STORE_CREATE, &s, err, sizeof(err)), 0);
	json_array_foreach(json_object_get(root, "changesets"), i, c)
	{
		size_t o = (size_t)json_integer_value(json_object_get(c, "origin")), len, body_len;
		uint8_t *bytes;
		struct changeset cs;

		assert_true(o < 2);
		output(c, "seq", json_integer((json_int_t)seqs[o] + 1));
		output(c, "prev", hex_json(heads[o], 32));
		make_changeset(seeds[o], federation, seqs[o] + 1, heads[o],
		               (uint64_t)json_integer_value(json_object_get(c, "hlc")),
		               json_object_get(c, "ops"), &bytes, &len, &body_len);
		output_signed(c, bytes, len, body_len);
		seqs[o]++;
		changeset_hash(bytes, len, heads[o]);
		assert_int_equal(changeset_decode(bytes, len, &cs, err, sizeof(err)), 0);
		assert_int_equal(store_append(s, bytes, len, &cs, NULL), 0);
		changeset_release(&cs);
		free(bytes);
		store_digest(s, d);
		output(c, "digest", hex_json(d, 32));
	}
	output(root, "entities", entity_rows(s));
	lthash_to_bytes(store_lanes_get(&s->apply.lanes), lanes);
	output(root, "lanes", hex_json(lanes, LTHASH_BYTES));
	store_digest(s, d);
	output(root, "digest", hex_json(d, 32));
	/* The offline audit replays to the same digest, and so does a rebuild. */
	assert_int_equal(store_verify(s, NULL, &report), 0);
	assert_true(json_is_true(json_object_get(report, "ok")));
	output(root, "digest", json_incref(json_object_get(report, "digest")));
	json_decref(report);
	assert_int_equal(store_rebuild(s), 0);
	store_digest(s, d);
	output(root, "digest", hex_json(d, 32));
	store_close(s);
	unlink(path);
}

/* A bundle in memory, written and read by the callbacks below. */
struct membuf {
	uint8_t *p;
	size_t n, cap, at;
};

static int mem_write(void *arg, const void *p, size_t n)
{
	struct membuf *m = arg;

	if (m->n + n > m->cap) {
		m->cap = (m->n + n) * 2;
		m->p = realloc(m->p, m->cap);
		assert_non_null(m->p);
	}
	memcpy(m->p + m->n, p, n);
	m->n += n;
	return 0;
}

static int mem_read(void *arg, uint8_t *buf, size_t n, size_t *got)
{
	struct membuf *m = arg;

	*got = n < m->n - m->at ? n : m->n - m->at;
	memcpy(buf, m->p + m->at, *got);
	m->at += *got;
	return 0;
}

/* The report of store_bundle_verify on len bytes at p. */
static json_t *verify_bytes(const uint8_t *p, size_t len)
{
	struct membuf m = {(uint8_t *)p, len, len, 0};
	json_t *report = NULL;

	assert_int_equal(store_bundle_verify(mem_read, &m, &report), 0);
	return report;
}

/* Byte offsets of the records of a valid bundle, found by its own framing. */
static size_t record_offsets(const struct membuf *b, size_t *offs, size_t max)
{
	size_t at = BUNDLE_MAGIC_BYTES, n = 0;

	while (at + BUNDLE_HEADER_BYTES <= b->n && n < max) {
		offs[n++] = at;
		at +=
		    BUNDLE_HEADER_BYTES + ((size_t)b->p[at + 1] << 24 | (size_t)b->p[at + 2] << 16 |
		                           (size_t)b->p[at + 3] << 8 | b->p[at + 4]);
	}
	return n;
}

static void do_bundle(json_t *root)
{
	json_t *state = load(json_string_value(json_object_get(root, "state")));
	const char *federation = json_string_value(json_object_get(state, "federation"));
	uint8_t seeds[2][32], pks[2][32], heads[2][32];
	uint64_t seqs[2] = {0, 0};
	char path[300], err[256];
	struct store *s = NULL;
	struct membuf b = {0};
	json_t *c, *summary = NULL, *report, *sections;
	size_t i, offs[16], n_recs;

	for (i = 0; i < 2; i++) {
		uint8_t sk[64];
		hex_get_n(json_array_get(json_object_get(state, "origins"), i), "seed", seeds[i],
		          32);
		crypto_sign_seed_keypair(pks[i], sk, seeds[i]);
		memset(heads[i], 0, 32);
	}
	snprintf(path, sizeof(path), "%s/bundle.db", dir);
	unlink(path);
	assert_int_equal(store_open(path, STORE_CREATE, &s, err, sizeof(err)), 0);
	json_array_foreach(json_object_get(state, "changesets"), i, c)
	{
		size_t o = (size_t)json_integer_value(json_object_get(c, "origin")), len, body_len;
		uint8_t *bytes;
		struct changeset cs;

		make_changeset(seeds[o], federation, ++seqs[o], heads[o],
		               (uint64_t)json_integer_value(json_object_get(c, "hlc")),
		               json_object_get(c, "ops"), &bytes, &len, &body_len);
		changeset_hash(bytes, len, heads[o]);
		assert_int_equal(changeset_decode(bytes, len, &cs, err, sizeof(err)), 0);
		assert_int_equal(store_append(s, bytes, len, &cs, NULL), 0);
		changeset_release(&cs);
		free(bytes);
	}
	json_array_foreach(json_object_get(root, "members"), i, c) assert_int_equal(
	    store_set_member(s, pks[json_integer_value(json_object_get(c, "origin"))],
	                     json_string_value(json_object_get(c, "name"))),
	    0);
	assert_int_equal(store_bundle_export(s, NULL, NULL, 0, mem_write, &b, &summary), 0);
	json_decref(summary);
	store_close(s);
	unlink(path);
	output(root, "bundle", hex_json(b.p, b.n));

	/* The reader's own hashes of the sections and of the file. */
	struct membuf r = b;
	struct bundle_reader rd;
	struct bundle_record rec;
	r.at = 0;
	assert_int_equal(bundle_reader_init(&rd, mem_read, &r, err, sizeof(err)), 0);
	while (bundle_next(&rd, &rec, err, sizeof(err)) == 0)
		;
	sections = json_object();
	for (i = 0; i < BUNDLE_N_SECTIONS; i++)
		json_object_set_new(sections, bundle_section_name((enum bundle_section)i),
		                    hex_json(rd.section_hash[i], 32));
	output(root, "sections", sections);
	output(root, "end", hex_json(rd.file_hash, 32));
	bundle_reader_fini(&rd);

	report = verify_bytes(b.p, b.n);
	assert_true(json_is_true(json_object_get(report, "ok")));
	output(root, "digest", json_incref(json_object_get(report, "digest")));
	/* The state the bundle replays to is the state of state.json. */
	if (!filling)
		assert_true(json_equal(json_object_get(report, "digest"),
		                       json_object_get(state, "digest")));
	json_decref(report);

	n_recs = record_offsets(&b, offs, 16);
	json_array_foreach(json_object_get(root, "invalid"), i, c)
	{
		struct membuf t = {0};
		json_t *rj = json_object_get(c, "record"), *p0;
		long long at = json_integer_value(json_object_get(c, "at"));
		size_t off = 0;

		mem_write(&t, b.p, b.n);
		if (json_object_get(c, "truncate")) {
			t.n -= (size_t)json_integer_value(json_object_get(c, "truncate"));
		} else if (json_object_get(c, "append")) {
			size_t al;
			uint8_t *extra = hex_get(c, "append", &al);
			mem_write(&t, extra, al);
			free(extra);
		} else {
			long long rix = json_integer_value(rj);
			if (rix < 0) {
				off = (size_t)at;
			} else {
				size_t start, len;
				assert_true((size_t)rix < n_recs);
				start = offs[rix] + BUNDLE_HEADER_BYTES;
				len = ((size_t)rix + 1 < n_recs ? offs[rix + 1] : b.n) - start;
				/* -10000: the last byte of the length in the record's header. */
				off = at == -10000 ? start - 1
				      : at < 0     ? start + len - (size_t)(-at)
				                   : start + (size_t)at;
			}
			assert_true(off < t.n);
			t.p[off] ^= 0x01;
			output(c, "offset", json_integer((json_int_t)off));
		}
		report = verify_bytes(t.p, t.n);
		assert_false(json_is_true(json_object_get(report, "ok")));
		p0 = json_array_get(json_object_get(report, "problems"), 0);
		assert_non_null(p0);
		output(c, "problem",
		       json_sprintf("%s: %s", json_string_value(json_object_get(p0, "section")),
		                    json_string_value(json_object_get(p0, "problem"))));
		json_decref(report);
		free(t.p);
	}
	free(b.p);
	json_decref(state);
}

/* The changeset of case c, at seq after prev, of origin keys[0], signed by keys[c.signer]. */
static void rotation_case(const json_t *c, const char *federation, uint8_t seeds[][32],
                          uint8_t pks[][32], size_t n_keys, uint64_t seq, const uint8_t prev[32],
                          uint8_t **bytes, size_t *len, size_t *body_len)
{
	size_t signer = (size_t)json_integer_value(json_object_get(c, "signer"));
	json_t *rot = json_object_get(c, "rotate");

	assert_true(signer < n_keys);
	assert_true(!rot || (size_t)json_integer_value(rot) < n_keys);
	make_signed(seeds[signer], pks[0], federation, seq, prev,
	            (uint64_t)json_integer_value(json_object_get(c, "hlc")),
	            json_object_get(c, "ops"), rot ? pks[json_integer_value(rot)] : NULL, bytes,
	            len, body_len);
}

static int collect_keys(void *arg, const uint8_t origin[32], uint64_t from_seq,
                        const uint8_t key[32])
{
	(void)origin;
	json_array_append_new(arg, json_pack("{s:I, s:o}", "from_seq", (json_int_t)from_seq, "key",
	                                     hex_json(key, 32)));
	return 0;
}

/* What store_append and store_verify (with the case's revocation) say of case c. */
static const char *rotation_verdict(const uint8_t *bytes, size_t len, const uint8_t origin[32],
                                    uint8_t pks[][32], const json_t *revoke, struct store *s,
                                    uint64_t seq)
{
	struct changeset cs;
	json_t *roster, *report = NULL, *p;
	char err[200], b64[45], ob64[45];
	const char *verdict = "accepted";
	size_t i;

	assert_int_equal(changeset_decode(bytes, len, &cs, err, sizeof(err)), 0);
	if (store_append(s, bytes, len, &cs, NULL) == LOKET_E_MALFORMED) {
		changeset_release(&cs);
		return "KEY_REUSED";
	}
	changeset_release(&cs);
	sodium_bin2base64(ob64, sizeof(ob64), origin, 32, sodium_base64_VARIANT_ORIGINAL);
	if (revoke) {
		sodium_bin2base64(b64, sizeof(b64),
		                  pks[json_integer_value(json_array_get(revoke, 0))], 32,
		                  sodium_base64_VARIANT_ORIGINAL);
		roster = json_pack("[{s:s, s:[[s, O]]}]", "key", ob64, "revoke", b64,
		                   json_array_get(revoke, 1));
	} else {
		roster = json_pack("[s]", ob64);
	}
	assert_int_equal(store_verify(s, roster, &report), 0);
	json_array_foreach(json_object_get(report, "problems"), i, p)
	{
		const char *what = json_string_value(json_object_get(p, "problem"));
		if (json_integer_value(json_object_get(p, "seq")) != (json_int_t)seq || !what)
			continue;
		if (strstr(what, "signature does not verify"))
			verdict = "BAD_SIGNATURE";
		else if (strstr(what, "revokes"))
			verdict = "REVOKED";
		else
			verdict = "another problem";
	}
	json_decref(report);
	json_decref(roster);
	return verdict;
}

/* Removes a scratch store and its index file. */
static void remove_store(const char *path)
{
	char index[320];
	snprintf(index, sizeof(index), "%s-index", path);
	unlink(path);
	unlink(index);
}

static void do_rotation(json_t *root)
{
	char path[300], err[256];
	struct store *s = NULL;
	uint8_t seeds[3][32], pks[3][32], sk[64], prev[32], d[32], (*hashes)[32];
	const char *federation = json_string_value(json_object_get(root, "federation"));
	json_t *c, *report = NULL, *rows, *chain = json_object_get(root, "chain");
	size_t i, n_keys = json_array_size(json_object_get(root, "keys"));

	assert_int_equal(n_keys, 3);
	for (i = 0; i < n_keys; i++) {
		json_t *k = json_array_get(json_object_get(root, "keys"), i);
		hex_get_n(k, "seed", seeds[i], 32);
		crypto_sign_seed_keypair(pks[i], sk, seeds[i]);
		output(k, "public", hex_json(pks[i], 32));
	}
	hashes = calloc(json_array_size(chain) + 1, 32);
	assert_non_null(hashes);
	snprintf(path, sizeof(path), "%s/rotation.db", dir);
	remove_store(path);
	assert_int_equal(store_open(path, STORE_CREATE, &s, err, sizeof(err)), 0);
	memset(prev, 0, 32);
	json_array_foreach(chain, i, c)
	{
		uint8_t *bytes, key[32];
		size_t len, body_len;
		struct changeset cs;

		output(c, "seq", json_integer((json_int_t)i + 1));
		output(c, "prev", hex_json(prev, 32));
		rotation_case(c, federation, seeds, pks, n_keys, i + 1, prev, &bytes, &len,
		              &body_len);
		output_signed(c, bytes, len, body_len);
		/* The key the history names for this seq is the one that signed it. */
		assert_int_equal(store_key_at(s, pks[0], i + 1, key), 0);
		assert_int_equal(changeset_verify(bytes, len, key), 0);
		changeset_hash(bytes, len, prev);
		memcpy(hashes[i + 1], prev, 32);
		assert_int_equal(changeset_decode(bytes, len, &cs, err, sizeof(err)), 0);
		assert_int_equal(store_append(s, bytes, len, &cs, NULL), 0);
		changeset_release(&cs);
		free(bytes);
	}
	rows = json_array();
	assert_int_equal(store_each_key(s, collect_keys, rows), 0);
	output(root, "key_history", rows);
	store_digest(s, d);
	output(root, "digest", hex_json(d, 32));
	/* The whole chain verifies, across its rotations. */
	assert_int_equal(store_verify(s, NULL, &report), 0);
	assert_true(json_is_true(json_object_get(report, "ok")));
	json_decref(report);
	store_close(s);
	remove_store(path);

	json_array_foreach(json_object_get(root, "refused"), i, c)
	{
		size_t after = (size_t)json_integer_value(json_object_get(c, "after")), len,
		       body_len;
		uint8_t *bytes;
		struct changeset cs;
		json_t *x;
		size_t k;

		assert_true(after <= json_array_size(chain));
		remove_store(path);
		assert_int_equal(store_open(path, STORE_CREATE, &s, err, sizeof(err)), 0);
		json_array_foreach(chain, k, x)
		{
			uint8_t *b;
			size_t l;
			if (k == after)
				break;
			rotation_case(x, federation, seeds, pks, n_keys, k + 1, hashes[k], &b, &l,
			              &body_len);
			assert_int_equal(changeset_decode(b, l, &cs, err, sizeof(err)), 0);
			assert_int_equal(store_append(s, b, l, &cs, NULL), 0);
			changeset_release(&cs);
			free(b);
		}
		rotation_case(c, federation, seeds, pks, n_keys, after + 1, hashes[after], &bytes,
		              &len, &body_len);
		output_signed(c, bytes, len, body_len);
		output(c, "verdict",
		       json_string(rotation_verdict(bytes, len, pks[0], pks,
		                                    json_object_get(c, "revoke"), s, after + 1)));
		free(bytes);
		store_close(s);
		remove_store(path);
	}
	free(hashes);
	json_array_foreach(json_object_get(root, "invalid"), i, c)
	{
		struct changeset cs;
		size_t n;
		uint8_t *body = hex_get(c, "body", &n), *bytes = calloc(n + 64, 1);
		int rc;

		assert_non_null(bytes);
		memcpy(bytes, body, n);
		rc = changeset_decode(bytes, n + 64, &cs, err, sizeof(err));
		if (rc == 0)
			changeset_release(&cs);
		output(c, "error", json_string(error_name(rc)));
		free(body);
		free(bytes);
	}
}

static void run_file(const char *name, void (*fn)(json_t *))
{
	json_t *root = load(name);

	fn(root);
	json_decref(root);
}

static void test_changesets(void **state)
{
	(void)state;
	run_file("changeset.json", do_changesets);
}

static void test_entities(void **state)
{
	(void)state;
	run_file("entity.json", do_entities);
}

static void test_lthash(void **state)
{
	(void)state;
	run_file("lthash.json", do_lthash);
}

static void test_state(void **state)
{
	(void)state;
	run_file("state.json", do_state);
}

static void test_merkle(void **state)
{
	(void)state;
	run_file("merkle.json", do_merkle);
}

static void test_checkpoint(void **state)
{
	(void)state;
	run_file("checkpoint.json", do_checkpoint);
}

static void test_bundle(void **state)
{
	(void)state;
	run_file("bundle.json", do_bundle);
}

static void test_rotation(void **state)
{
	(void)state;
	run_file("rotation.json", do_rotation);
}

/* Computes the outputs of one vector file and writes them into it. */
static int fill(const char *path)
{
	static const struct {
		const char *name;
		void (*fn)(json_t *);
	} files[] = {{"changeset.json", do_changesets}, {"entity.json", do_entities},
	             {"lthash.json", do_lthash},        {"state.json", do_state},
	             {"merkle.json", do_merkle},        {"checkpoint.json", do_checkpoint},
	             {"bundle.json", do_bundle},        {"rotation.json", do_rotation}};
	const char *base = strrchr(path, '/') ? strrchr(path, '/') + 1 : path;
	json_error_t jerr;

	filling = 1;
	for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
		json_t *root;

		if (strcmp(base, files[i].name) != 0)
			continue;
		root = json_load_file(path, JSON_ALLOW_NUL, &jerr);
		if (!root) {
			fprintf(stderr, "%s:%d: %s\n", path, jerr.line, jerr.text);
			return 1;
		}
		files[i].fn(root);
		if (json_dump_file(root, path, JSON_INDENT(1) | JSON_REAL_PRECISION(17)) < 0) {
			fprintf(stderr, "%s: cannot write\n", path);
			return 1;
		}
		json_decref(root);
		return 0;
	}
	fprintf(stderr, "%s: not a vector file this program knows\n", path);
	return 2;
}

int main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_changesets), cmocka_unit_test(test_entities),
	    cmocka_unit_test(test_lthash),     cmocka_unit_test(test_state),
	    cmocka_unit_test(test_merkle),     cmocka_unit_test(test_checkpoint),
	    cmocka_unit_test(test_bundle),     cmocka_unit_test(test_rotation),
	};
	int rc;

	if (sodium_init() < 0 || !mkdtemp(dir))
		return 1;
	if (argc == 3 && strcmp(argv[1], "--fill") == 0)
		rc = fill(argv[2]);
	else
		rc = cmocka_run_group_tests(tests, NULL, NULL);
	rmdir(dir);
	return rc;
}
