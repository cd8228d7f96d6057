/*
 * Changesets: encode, sign, decode, verify and hash one; then one test per
 * way a peer's bytes can be wrong, each expecting its own error code. Keys
 * come straight from libsodium here, since the key module is not under test.
 */
#include <errno.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <sodium.h>

#include "proto/changeset.h"
#include "proto/error.h"
#include "proto/limits.h"
#include "proto/value.h"

struct keys {
	uint8_t pk[crypto_sign_PUBLICKEYBYTES];
	uint8_t sk[crypto_sign_SECRETKEYBYTES];
};

static int setup(void **state)
{
	static struct keys k;
	if (sodium_init() < 0)
		return -1;
	crypto_sign_keypair(k.pk, k.sk);
	*state = &k;
	return 0;
}

/* Packs JSON text into canonical fields in sb. */
static void pack_fields(msgpack_sbuffer *sb, const char *text)
{
	json_t *v = json_loads(text, 0, NULL);
	assert_non_null(v);
	msgpack_packer pk;
	msgpack_packer_init(&pk, sb, msgpack_sbuffer_write);
	assert_int_equal(value_pack_json(&pk, v, LOKET_MAX_DEPTH, NULL, 0), 0);
	json_decref(v);
}

/* Appends the signature over the body already in sb. */
static void sign(msgpack_sbuffer *sb, const struct keys *k)
{
	uint8_t *msg;
	size_t msg_len;
	uint8_t sig[crypto_sign_BYTES];
	assert_int_equal(
	    changeset_signing_input((const uint8_t *)sb->data, sb->size, &msg, &msg_len), 0);
	crypto_sign_detached(sig, NULL, msg, msg_len, k->sk);
	free(msg);
	msgpack_sbuffer_write(sb, (const char *)sig, sizeof(sig));
}

/* A changeset of one put and one del by k, seq 1. */
static void make_signed(msgpack_sbuffer *out, const struct keys *k, const char *fields_json)
{
	msgpack_sbuffer fields;
	msgpack_sbuffer_init(&fields);
	pack_fields(&fields, fields_json);
	struct op ops[] = {
	    {.kind = OP_PUT,
	     .coll = "expert",
	     .coll_len = 6,
	     .id = "ada",
	     .id_len = 3,
	     .fields = (const uint8_t *)fields.data,
	     .fields_len = fields.size},
	    {.kind = OP_DEL, .coll = "org", .coll_len = 3, .id = "old-1", .id_len = 5},
	};
	struct changeset cs = {
	    .version = CHANGESET_VERSION,
	    .federation = "leiden",
	    .federation_len = 6,
	    .seq = 1,
	    .hlc = (UINT64_C(1700000000000) << 16) | 3,
	    .n_ops = 2,
	    .ops = ops,
	};
	memcpy(cs.origin, k->pk, sizeof(cs.origin));
	assert_int_equal(changeset_encode(&cs, out), 0);
	sign(out, k);
	msgpack_sbuffer_destroy(&fields);
}

/*
 * Knobs for a hand-packed changeset, so each test breaks exactly one thing.
 * The signature is 64 zero bytes: decoding does not look at it.
 */
struct raw {
	uint64_t version;
	uint64_t seq;
	uint8_t prev0; /* first byte of prev */
	int origin_as_str;
	size_t n_ops;
	const uint8_t *fields; /* raw fields of each put; NULL: del ops */
	size_t fields_len;
	size_t trailing; /* zero bytes between body and signature */
};

static void pack_raw(msgpack_sbuffer *sb, const struct raw *r)
{
	static const uint8_t zero[64];
	uint8_t prev[32] = {r->prev0};
	msgpack_packer pk;
	msgpack_packer_init(&pk, sb, msgpack_sbuffer_write);
	msgpack_pack_array(&pk, 7);
	msgpack_pack_uint64(&pk, r->version);
	msgpack_pack_str(&pk, 6);
	msgpack_pack_str_body(&pk, "leiden", 6);
	if (r->origin_as_str) {
		msgpack_pack_str(&pk, 32);
		msgpack_pack_str_body(&pk, zero, 32);
	} else {
		msgpack_pack_bin(&pk, 32);
		msgpack_pack_bin_body(&pk, zero, 32);
	}
	msgpack_pack_uint64(&pk, r->seq);
	msgpack_pack_bin(&pk, 32);
	msgpack_pack_bin_body(&pk, prev, 32);
	msgpack_pack_uint64(&pk, 1);
	msgpack_pack_array(&pk, r->n_ops);
	for (size_t i = 0; i < r->n_ops; i++) {
		msgpack_pack_array(&pk, r->fields ? 4 : 3);
		msgpack_pack_uint64(&pk, r->fields ? OP_PUT : OP_DEL);
		msgpack_pack_str(&pk, 1);
		msgpack_pack_str_body(&pk, "c", 1);
		msgpack_pack_str(&pk, 2);
		msgpack_pack_str_body(&pk, "id", 2);
		if (r->fields)
			msgpack_sbuffer_write(sb, (const char *)r->fields, r->fields_len);
	}
	for (size_t i = 0; i < r->trailing; i++)
		msgpack_sbuffer_write(sb, "", 1);
	msgpack_sbuffer_write(sb, (const char *)zero, sizeof(zero));
}

static const uint8_t one_field[] = {0x81, 0xa1, 'a', 0x01};

/* Decodes a changeset built from r and returns the code; err gets the sentence. */
static int decode_raw(const struct raw *r, char *err, size_t errlen)
{
	msgpack_sbuffer sb;
	msgpack_sbuffer_init(&sb);
	pack_raw(&sb, r);
	struct changeset cs;
	int rc = changeset_decode((const uint8_t *)sb.data, sb.size, &cs, err, errlen);
	changeset_release(&cs);
	msgpack_sbuffer_destroy(&sb);
	return rc;
}

static struct raw good_raw(void)
{
	struct raw r = {.version = 1,
	                .seq = 1,
	                .n_ops = 1,
	                .fields = one_field,
	                .fields_len = sizeof(one_field)};
	return r;
}

static int decode_fields(const uint8_t *fields, size_t len, char *err, size_t errlen)
{
	struct raw r = good_raw();
	r.fields = fields;
	r.fields_len = len;
	return decode_raw(&r, err, errlen);
}

static void test_round_trip(void **state)
{
	const struct keys *k = *state;
	const char *fields_json = "{\"name\":\"Ada\",\"topics\":[\"math\",\"engines\"],"
	                          "\"born\":1815,\"h\":1.75,\"gone\":null}";
	msgpack_sbuffer sb;
	msgpack_sbuffer_init(&sb);
	make_signed(&sb, k, fields_json);
	const uint8_t *p = (const uint8_t *)sb.data;

	struct changeset cs;
	char err[256];
	assert_int_equal(changeset_decode(p, sb.size, &cs, err, sizeof(err)), 0);
	assert_int_equal(cs.version, CHANGESET_VERSION);
	assert_memory_equal(cs.federation, "leiden", 6);
	assert_memory_equal(cs.origin, k->pk, 32);
	assert_int_equal(cs.seq, 1);
	assert_int_equal(cs.hlc, (UINT64_C(1700000000000) << 16) | 3);
	assert_int_equal(cs.n_ops, 2);
	assert_int_equal(cs.ops[0].kind, OP_PUT);
	assert_memory_equal(cs.ops[0].coll, "expert", 6);
	assert_memory_equal(cs.ops[0].id, "ada", 3);
	assert_int_equal(cs.ops[1].kind, OP_DEL);
	assert_null(cs.ops[1].fields);

	json_t *fields = value_to_json(cs.ops[0].fields, cs.ops[0].fields_len);
	json_t *want = json_loads(fields_json, 0, NULL);
	assert_true(json_equal(fields, want));
	json_decref(fields);
	json_decref(want);

	/* Re-encoding the decoded changeset gives the very same body. */
	msgpack_sbuffer again;
	msgpack_sbuffer_init(&again);
	assert_int_equal(changeset_encode(&cs, &again), 0);
	assert_int_equal(again.size, sb.size - CHANGESET_SIG_BYTES);
	assert_memory_equal(again.data, p, again.size);
	msgpack_sbuffer_destroy(&again);
	/* So does the writer's form that trusts its own check of the fields. */
	msgpack_sbuffer_init(&again);
	assert_int_equal(changeset_encode_checked(&cs, &again), 0);
	assert_int_equal(again.size, sb.size - CHANGESET_SIG_BYTES);
	assert_memory_equal(again.data, p, again.size);
	msgpack_sbuffer_destroy(&again);

	assert_int_equal(changeset_verify(p, sb.size, cs.origin), 0);

	uint8_t h[CHANGESET_HASH_BYTES];
	uint8_t want_h[CHANGESET_HASH_BYTES];
	changeset_hash(p, sb.size, h);
	crypto_hash_sha256(want_h, p, sb.size);
	assert_memory_equal(h, want_h, sizeof(h));

	changeset_release(&cs);
	assert_null(cs.ops);
	assert_int_equal(cs.n_ops, 0);
	msgpack_sbuffer_destroy(&sb);
}

static void test_rejects_bad_signature(void **state)
{
	const struct keys *k = *state;
	msgpack_sbuffer sb;
	msgpack_sbuffer_init(&sb);
	make_signed(&sb, k, "{\"a\":1}");
	uint8_t *p = (uint8_t *)sb.data;

	struct keys other;
	crypto_sign_keypair(other.pk, other.sk);
	assert_int_equal(changeset_verify(p, sb.size, other.pk), LOKET_E_BAD_SIGNATURE);

	p[sb.size - 1] ^= 1; /* in the signature */
	assert_int_equal(changeset_verify(p, sb.size, k->pk), LOKET_E_BAD_SIGNATURE);
	p[sb.size - 1] ^= 1;
	p[10] ^= 1; /* in the body */
	assert_int_equal(changeset_verify(p, sb.size, k->pk), LOKET_E_BAD_SIGNATURE);
	p[10] ^= 1;
	assert_int_equal(changeset_verify(p, sb.size, k->pk), 0);
	assert_int_equal(changeset_verify(p, 10, k->pk), LOKET_E_BAD_SIGNATURE);
	msgpack_sbuffer_destroy(&sb);
}

static void test_rejects_every_truncation(void **state)
{
	const struct keys *k = *state;
	msgpack_sbuffer sb;
	msgpack_sbuffer_init(&sb);
	make_signed(&sb, k, "{\"name\":\"Ada\",\"topics\":[\"math\"]}");
	for (size_t len = 0; len < sb.size; len++) {
		/* A copy of exactly len bytes, so ASan sees any read past the end. */
		uint8_t *cut = malloc(len ? len : 1);
		assert_non_null(cut);
		memcpy(cut, sb.data, len);
		struct changeset cs;
		char err[256];
		int rc = changeset_decode(cut, len, &cs, err, sizeof(err));
		assert_true(rc < 0);
		assert_true(err[0] != '\0');
		assert_null(cs.ops);
		free(cut);
	}
	msgpack_sbuffer_destroy(&sb);
}

static void test_rejects_trailing_bytes(void **state)
{
	const struct keys *k = *state;
	msgpack_sbuffer sb;
	msgpack_sbuffer_init(&sb);
	make_signed(&sb, k, "{\"a\":1}");
	msgpack_sbuffer_write(&sb, "x", 1);
	struct changeset cs;
	char err[256];
	assert_int_equal(changeset_decode((const uint8_t *)sb.data, sb.size, &cs, err, sizeof(err)),
	                 LOKET_E_TRAILING);
	msgpack_sbuffer_destroy(&sb);

	struct raw r = good_raw();
	r.trailing = 3;
	assert_int_equal(decode_raw(&r, err, sizeof(err)), LOKET_E_TRAILING);
	assert_non_null(strstr(err, "3 bytes between the body and the signature"));
}

static void test_rejects_duplicate_keys(void **state)
{
	(void)state;
	const uint8_t f[] = {0x82, 0xa1, 'a', 0x01, 0xa1, 'a', 0x02};
	char err[256];
	assert_int_equal(decode_fields(f, sizeof(f), err, sizeof(err)), LOKET_E_DUPLICATE_KEY);
	assert_non_null(strstr(err, "map key \"a\" appears twice"));
	/* Also one level down, inside a field value. */
	const uint8_t g[] = {0x81, 0xa1, 'm', 0x82, 0xa1, 'x', 0x01, 0xa1, 'x', 0x02};
	assert_int_equal(decode_fields(g, sizeof(g), err, sizeof(err)), LOKET_E_DUPLICATE_KEY);
}

static void test_rejects_unsorted_keys(void **state)
{
	(void)state;
	const uint8_t f[] = {0x82, 0xa1, 'b', 0x01, 0xa1, 'a', 0x02};
	const uint8_t g[] = {0x81, 0xa1, 'm', 0x82, 0xa1, 'y', 0x01, 0xa1, 'x', 0x02};
	char err[256];
	assert_int_equal(decode_fields(f, sizeof(f), err, sizeof(err)), LOKET_E_NOT_CANONICAL);
	assert_int_equal(decode_fields(g, sizeof(g), err, sizeof(err)), LOKET_E_NOT_CANONICAL);
}

static void test_rejects_oversize(void **state)
{
	(void)state;
	uint8_t *big = calloc(1, LOKET_MAX_CHANGESET_BYTES + 1);
	assert_non_null(big);
	struct changeset cs;
	char err[256];
	assert_int_equal(
	    changeset_decode(big, LOKET_MAX_CHANGESET_BYTES + 1, &cs, err, sizeof(err)),
	    LOKET_E_TOO_BIG);
	free(big);
}

static void test_rejects_too_many_ops(void **state)
{
	(void)state;
	struct raw r = good_raw();
	r.fields = NULL;
	r.n_ops = LOKET_MAX_OPS + 1;
	char err[256];
	assert_int_equal(decode_raw(&r, err, sizeof(err)), LOKET_E_TOO_BIG);
	r.n_ops = LOKET_MAX_OPS;
	assert_int_equal(decode_raw(&r, err, sizeof(err)), 0);

	/* The encoder refuses too: this node never signs what peers reject. */
	struct op *ops = calloc(LOKET_MAX_OPS + 1, sizeof(*ops));
	assert_non_null(ops);
	for (size_t i = 0; i <= LOKET_MAX_OPS; i++)
		ops[i] =
		    (struct op){.kind = OP_DEL, .coll = "c", .coll_len = 1, .id = "i", .id_len = 1};
	struct changeset cs = {.version = 1,
	                       .federation = "f",
	                       .federation_len = 1,
	                       .seq = 1,
	                       .n_ops = LOKET_MAX_OPS + 1,
	                       .ops = ops};
	msgpack_sbuffer sb;
	msgpack_sbuffer_init(&sb);
	assert_int_equal(changeset_encode(&cs, &sb), LOKET_E_TOO_BIG);
	assert_int_equal(sb.size, 0);
	msgpack_sbuffer_destroy(&sb);
	free(ops);
}

static void test_rejects_field_too_big(void **state)
{
	(void)state;
	/* {"a": str32 of LOKET_MAX_FIELD_BYTES bytes}: the value takes 5 bytes more. */
	size_t n = LOKET_MAX_FIELD_BYTES;
	uint8_t *f = malloc(8 + n);
	assert_non_null(f);
	const uint8_t head[] = {0x81, 0xa1, 'a', 0xdb, 0x00, 0x01, 0x00, 0x00};
	memcpy(f, head, sizeof(head));
	memset(f + sizeof(head), 'x', n);
	char err[256];
	assert_int_equal(decode_fields(f, 8 + n, err, sizeof(err)), LOKET_E_TOO_BIG);
	assert_non_null(strstr(err, "field \"a\""));

	struct op op = {.kind = OP_PUT,
	                .coll = "c",
	                .coll_len = 1,
	                .id = "i",
	                .id_len = 1,
	                .fields = f,
	                .fields_len = 8 + n};
	struct changeset cs = {
	    .version = 1, .federation = "f", .federation_len = 1, .seq = 1, .n_ops = 1, .ops = &op};
	msgpack_sbuffer sb;
	msgpack_sbuffer_init(&sb);
	assert_int_equal(changeset_encode(&cs, &sb), LOKET_E_TOO_BIG);
	msgpack_sbuffer_destroy(&sb);
	free(f);
}

static void test_rejects_too_deep(void **state)
{
	(void)state;
	/* The fields map plus eight arrays: nine levels. */
	const uint8_t f[] = {0x81, 0xa1, 'a', 0x91, 0x91, 0x91, 0x91, 0x91, 0x91, 0x91, 0x91, 0x01};
	char err[256];
	assert_int_equal(decode_fields(f, sizeof(f), err, sizeof(err)), LOKET_E_TOO_DEEP);
	assert_non_null(strstr(err, "nesting deeper than 7"));
	/* Seven arrays inside the map are exactly at the limit. */
	const uint8_t g[] = {0x81, 0xa1, 'a', 0x91, 0x91, 0x91, 0x91, 0x91, 0x91, 0x91, 0x01};
	assert_int_equal(decode_fields(g, sizeof(g), err, sizeof(err)), 0);
}

static void test_rejects_unknown_version(void **state)
{
	(void)state;
	struct raw r = good_raw();
	r.version = 2;
	char err[256];
	assert_int_equal(decode_raw(&r, err, sizeof(err)), LOKET_E_VERSION);
	assert_non_null(strstr(err, "unknown changeset version 2"));
}

static void test_rejects_seq_zero(void **state)
{
	(void)state;
	struct raw r = good_raw();
	r.seq = 0;
	char err[256];
	assert_int_equal(decode_raw(&r, err, sizeof(err)), LOKET_E_BAD_SEQ);
}

static void test_rejects_wrong_prev_for_seq_one(void **state)
{
	(void)state;
	struct raw r = good_raw();
	r.prev0 = 0x42;
	char err[256];
	assert_int_equal(decode_raw(&r, err, sizeof(err)), LOKET_E_BAD_PREV);
	r.seq = 2; /* any prev may follow seq 1; the store checks the link */
	assert_int_equal(decode_raw(&r, err, sizeof(err)), 0);
}

static void test_rejects_non_canonical_int(void **state)
{
	(void)state;
	const uint8_t f[] = {0x81, 0xa1, 'a', 0xcd, 0x00, 0x05};
	char err[256];
	assert_int_equal(decode_fields(f, sizeof(f), err, sizeof(err)), LOKET_E_NOT_CANONICAL);
	assert_non_null(strstr(err, "integer 5 not in shortest form"));

	/* In the header too: version 1 as a uint16. */
	msgpack_sbuffer sb;
	msgpack_sbuffer_init(&sb);
	struct raw r = good_raw();
	pack_raw(&sb, &r);
	uint8_t *p = malloc(sb.size + 2);
	assert_non_null(p);
	p[0] = 0x97;
	p[1] = 0xcd;
	p[2] = 0x00;
	p[3] = 0x01;
	memcpy(p + 4, sb.data + 2, sb.size - 2);
	struct changeset cs;
	assert_int_equal(changeset_decode(p, sb.size + 2, &cs, err, sizeof(err)),
	                 LOKET_E_NOT_CANONICAL);
	free(p);
	msgpack_sbuffer_destroy(&sb);
}

static void test_rejects_float32(void **state)
{
	(void)state;
	const uint8_t f[] = {0x81, 0xa1, 'a', 0xca, 0x3f, 0x80, 0x00, 0x00};
	char err[256];
	assert_int_equal(decode_fields(f, sizeof(f), err, sizeof(err)), LOKET_E_NOT_CANONICAL);
	assert_non_null(strstr(err, "float32"));
}

static void test_rejects_nan(void **state)
{
	(void)state;
	const uint8_t f[] = {0x81, 0xa1, 'a', 0xcb, 0x7f, 0xf8, 0, 0, 0, 0, 0, 0};
	char err[256];
	assert_int_equal(decode_fields(f, sizeof(f), err, sizeof(err)), LOKET_E_NOT_CANONICAL);
	assert_non_null(strstr(err, "NaN"));
}

static void test_rejects_bin_instead_of_str(void **state)
{
	(void)state;
	const uint8_t value[] = {0x81, 0xa1, 'a', 0xc4, 0x01, 'x'};
	const uint8_t key[] = {0x81, 0xc4, 0x01, 'a', 0x01};
	char err[256];
	assert_int_equal(decode_fields(value, sizeof(value), err, sizeof(err)),
	                 LOKET_E_NOT_CANONICAL);
	assert_int_equal(decode_fields(key, sizeof(key), err, sizeof(err)), LOKET_E_MALFORMED);
	assert_non_null(strstr(err, "bin where str is expected"));
}

static void test_rejects_str_instead_of_bin(void **state)
{
	(void)state;
	struct raw r = good_raw();
	r.origin_as_str = 1;
	char err[256];
	assert_int_equal(decode_raw(&r, err, sizeof(err)), LOKET_E_MALFORMED);
	assert_non_null(strstr(err, "origin is str where bin is expected"));
}

static void test_rejects_huge_declared_count(void **state)
{
	(void)state;
	const uint8_t f[] = {0x81, 0xa1, 'a', 0xdd, 0xff, 0xff, 0xff, 0xff};
	char err[256];
	assert_int_equal(decode_fields(f, sizeof(f), err, sizeof(err)), LOKET_E_TRUNCATED);
	assert_non_null(strstr(err, "declared 4294967295 elements"));

	/* An ops array claiming four billion ops is refused before any allocation. */
	msgpack_sbuffer sb;
	msgpack_sbuffer_init(&sb);
	struct raw r = good_raw();
	pack_raw(&sb, &r);
	/* ops header is the fixarray 0x91 right after hlc (0x01) */
	size_t at = 0;
	for (size_t i = 0; i + 1 < sb.size; i++) {
		if ((uint8_t)sb.data[i] == 0x01 && (uint8_t)sb.data[i + 1] == 0x91) {
			at = i + 1;
			break;
		}
	}
	assert_true(at > 0);
	uint8_t *p = malloc(sb.size + 4);
	assert_non_null(p);
	memcpy(p, sb.data, at);
	const uint8_t huge[] = {0xdd, 0xff, 0xff, 0xff, 0xff};
	memcpy(p + at, huge, sizeof(huge));
	memcpy(p + at + sizeof(huge), sb.data + at + 1, sb.size - at - 1);
	struct changeset cs;
	assert_int_equal(changeset_decode(p, sb.size + 4, &cs, err, sizeof(err)), LOKET_E_TOO_BIG);
	assert_null(cs.ops);
	free(p);
	msgpack_sbuffer_destroy(&sb);
}

static void test_rejects_bad_ops(void **state)
{
	(void)state;
	char err[256];
	/* op kind 3 */
	msgpack_sbuffer sb;
	msgpack_sbuffer_init(&sb);
	struct raw r = good_raw();
	pack_raw(&sb, &r);
	uint8_t *p = (uint8_t *)sb.data;
	uint8_t *op = memmem(p, sb.size,
	                     "\x94\x01\xa1"
	                     "c",
	                     4);
	assert_non_null(op);
	struct changeset cs;
	op[1] = 4;
	assert_int_equal(changeset_decode(p, sb.size, &cs, err, sizeof(err)), LOKET_E_MALFORMED);
	assert_non_null(strstr(err, "unknown op kind 4"));
	/* kind 3 is a rotate op, of 2 elements */
	op[1] = 3;
	assert_int_equal(changeset_decode(p, sb.size, &cs, err, sizeof(err)), LOKET_E_MALFORMED);
	assert_non_null(strstr(err, "rotate op has 4 elements"));
	/* a del carrying fields */
	op[1] = 2;
	assert_int_equal(changeset_decode(p, sb.size, &cs, err, sizeof(err)), LOKET_E_MALFORMED);
	/* bad collection name */
	op[1] = 1;
	op[3] = 'C';
	assert_int_equal(changeset_decode(p, sb.size, &cs, err, sizeof(err)), LOKET_E_MALFORMED);
	assert_non_null(strstr(err, "collection name \"C\" is not valid"));
	msgpack_sbuffer_destroy(&sb);

	/* a put without fields */
	msgpack_sbuffer_init(&sb);
	r.fields = NULL;
	pack_raw(&sb, &r);
	p = (uint8_t *)sb.data;
	op = memmem(p, sb.size,
	            "\x93\x02\xa1"
	            "c",
	            4);
	assert_non_null(op);
	op[1] = 1;
	assert_int_equal(changeset_decode(p, sb.size, &cs, err, sizeof(err)), LOKET_E_MALFORMED);
	assert_non_null(strstr(err, "put op has no fields"));
	msgpack_sbuffer_destroy(&sb);
}

static void test_check_fields_before_encoding(void **state)
{
	(void)state;
	char err[256];
	msgpack_sbuffer sb;
	msgpack_sbuffer_init(&sb);
	pack_fields(&sb, "{\"name\":\"Ada\",\"topics\":[\"math\"]}");
	assert_int_equal(
	    changeset_check_fields((const uint8_t *)sb.data, sb.size, err, sizeof(err)), 0);
	msgpack_sbuffer_write(&sb, "\x01", 1);
	assert_int_equal(
	    changeset_check_fields((const uint8_t *)sb.data, sb.size, err, sizeof(err)),
	    LOKET_E_TRAILING);

	/* JSON allows what fields do not: an empty name, a name too long, no fields. */
	sb.size = 0;
	pack_fields(&sb, "{\"\":1}");
	assert_int_equal(
	    changeset_check_fields((const uint8_t *)sb.data, sb.size, err, sizeof(err)),
	    LOKET_E_MALFORMED);
	assert_non_null(strstr(err, "field name is empty"));
	sb.size = 0;
	pack_fields(&sb,
	            "{\"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\":1}");
	assert_int_equal(
	    changeset_check_fields((const uint8_t *)sb.data, sb.size, err, sizeof(err)),
	    LOKET_E_TOO_BIG);
	sb.size = 0;
	pack_fields(&sb, "{}");
	assert_int_equal(
	    changeset_check_fields((const uint8_t *)sb.data, sb.size, err, sizeof(err)),
	    LOKET_E_MALFORMED);
	msgpack_sbuffer_destroy(&sb);
}

static void test_valid_names(void **state)
{
	(void)state;
	assert_true(changeset_valid_coll("expert", 6));
	assert_true(changeset_valid_coll("a1_b", 4));
	assert_false(changeset_valid_coll("1a", 2));
	assert_false(changeset_valid_coll("Expert", 6));
	assert_false(changeset_valid_coll("", 0));
	assert_false(changeset_valid_coll("abcdefghijklmnopqrstuvwxyzabcdefg", 33));
	assert_true(changeset_valid_id("orcid:0000-0002@x.nl_1", 22));
	assert_true(changeset_valid_id("...", 3));
	assert_false(changeset_valid_id(".", 1));
	assert_false(changeset_valid_id("..", 2));
	assert_false(changeset_valid_id("a/b", 3));
	assert_false(changeset_valid_id("a b", 3));
	assert_false(changeset_valid_id("", 0));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_round_trip),
	    cmocka_unit_test(test_rejects_bad_signature),
	    cmocka_unit_test(test_rejects_every_truncation),
	    cmocka_unit_test(test_rejects_trailing_bytes),
	    cmocka_unit_test(test_rejects_duplicate_keys),
	    cmocka_unit_test(test_rejects_unsorted_keys),
	    cmocka_unit_test(test_rejects_oversize),
	    cmocka_unit_test(test_rejects_too_many_ops),
	    cmocka_unit_test(test_rejects_field_too_big),
	    cmocka_unit_test(test_rejects_too_deep),
	    cmocka_unit_test(test_rejects_unknown_version),
	    cmocka_unit_test(test_rejects_seq_zero),
	    cmocka_unit_test(test_rejects_wrong_prev_for_seq_one),
	    cmocka_unit_test(test_rejects_non_canonical_int),
	    cmocka_unit_test(test_rejects_float32),
	    cmocka_unit_test(test_rejects_nan),
	    cmocka_unit_test(test_rejects_bin_instead_of_str),
	    cmocka_unit_test(test_rejects_str_instead_of_bin),
	    cmocka_unit_test(test_rejects_huge_declared_count),
	    cmocka_unit_test(test_rejects_bad_ops),
	    cmocka_unit_test(test_check_fields_before_encoding),
	    cmocka_unit_test(test_valid_names),
	};
	return cmocka_run_group_tests(tests, setup, NULL);
}
