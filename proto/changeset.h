/*
 * The changeset: the signed unit of storage, replication and audit.
 *
 * Its wire form is specified in proto/FORMAT.md (sections 2 and 3, with
 * test vectors in tests/vectors/changeset.json): a canonical msgpack body
 * [version, federation, origin, seq, prev, hlc, ops] followed by a 64-byte
 * Ed25519 signature over CHANGESET_SIGN_DOMAIN || body, made by the key
 * the origin's key history names for that seq (section 14); its hash is
 * SHA-256(body || signature). The limits are those of proto/limits.h.
 *
 * Decoding is strict: every rejection has its own error code, and a decoded
 * changeset points into the caller's bytes, so nothing is ever re-encoded.
 */
#ifndef LOKET_CHANGESET_H
#define LOKET_CHANGESET_H

#include <stddef.h>
#include <stdint.h>

#include <msgpack.h>

#define CHANGESET_VERSION     1u
#define CHANGESET_KEY_BYTES   32u
#define CHANGESET_HASH_BYTES  32u
#define CHANGESET_SIG_BYTES   64u
#define CHANGESET_SIGN_DOMAIN "loket/changeset/v1"

enum op_kind {
	OP_PUT = 1,
	OP_DEL = 2,
	/*
	 * A key rotation record (proto/FORMAT.md, section 14): [3, key], the
	 * only op of its changeset. From the next seq on, the origin's
	 * changesets are signed by key.
	 */
	OP_ROTATE = 3,
};

struct op {
	enum op_kind kind;
	const uint8_t *key; /* OP_ROTATE: the 32-byte new key; NULL otherwise */
	const char *coll;   /* not NUL-terminated */
	size_t coll_len;
	const char *id; /* not NUL-terminated */
	size_t id_len;
	const uint8_t *fields; /* canonical msgpack map; NULL for OP_DEL */
	size_t fields_len;
};

struct changeset {
	uint32_t version;
	const char *federation; /* not NUL-terminated */
	size_t federation_len;
	uint8_t origin[CHANGESET_KEY_BYTES];
	uint64_t seq;
	uint8_t prev[CHANGESET_HASH_BYTES];
	uint64_t hlc;
	size_t n_ops;
	struct op *ops; /* owned by the changeset after decode */
};

/*
 * Appends the canonical body of cs to out. Each put op's fields must already
 * be a canonical map (value_pack_json makes one); they are checked again here
 * so that this node never signs what its peers would reject.
 */
int changeset_encode(const struct changeset *cs, msgpack_sbuffer *out);

/*
 * The same for a writer that checked every put op's fields with
 * changeset_check_fields itself (as loketd's put does, op by op, to name
 * the op at fault), so they are not walked twice; the rest is checked.
 */
int changeset_encode_checked(const struct changeset *cs, msgpack_sbuffer *out);

/*
 * Decodes a signed changeset (body || signature) of len bytes. On success
 * out's pointers refer into p, which must outlive out; release out with
 * changeset_release. On failure writes a sentence naming the problem into
 * err and returns a LOKET_E_* code. Does not check the signature.
 */
int changeset_decode(const uint8_t *p, size_t len, struct changeset *out, char *err, size_t errlen);

/* Frees what changeset_decode allocated; the changeset is then empty. */
void changeset_release(struct changeset *cs);

/*
 * 0 if the signature at the end of p verifies under key, else
 * LOKET_E_BAD_SIGNATURE. key is the origin's key current at the
 * changeset's seq (changeset_rotation, FORMAT.md section 14): the origin
 * itself until its first rotation record.
 */
int changeset_verify(const uint8_t *p, size_t len, const uint8_t key[CHANGESET_KEY_BYTES]);

/*
 * The new key named by cs if it is a rotation record (its one op is
 * OP_ROTATE), else NULL. The decoder has already checked that a rotate op
 * stands alone and names a valid key other than the origin.
 */
const uint8_t *changeset_rotation(const struct changeset *cs);

/* 1 if k is a usable Ed25519 public key: a point of the curve, not of small order. */
int changeset_valid_key(const uint8_t k[CHANGESET_KEY_BYTES]);

/* SHA-256 over the whole signed changeset. */
void changeset_hash(const uint8_t *p, size_t len, uint8_t out[CHANGESET_HASH_BYTES]);

/* Builds the message that is signed: domain tag followed by body. Caller frees *msg. */
int changeset_signing_input(const uint8_t *body, size_t body_len, uint8_t **msg, size_t *msg_len);

/*
 * Checks one put op's fields as changeset_encode and changeset_decode do
 * (a canonical map of 1..LOKET_MAX_FIELDS entries, names of
 * 1..LOKET_MAX_KEY_LEN bytes, values of at most LOKET_MAX_FIELD_BYTES, the
 * map and its values nested at most LOKET_MAX_DEPTH, nothing after the map),
 * so a writer can name the op and the reason before building a changeset.
 * Returns 0 or a LOKET_E_* code with a sentence in err.
 */
int changeset_check_fields(const uint8_t *p, size_t len, char *err, size_t errlen);

/*
 * The same check of the fields map at the start of p, which may go on
 * after it: *used is the map's length. For reading ops out of a larger
 * message in one pass.
 */
int changeset_check_fields_at(const uint8_t *p, size_t len, size_t *used, char *err, size_t errlen);

/* 1 if s is a valid collection name / entity id (proto/FORMAT.md, section 3). */
int changeset_valid_coll(const char *s, size_t len);
int changeset_valid_id(const char *s, size_t len);

#endif
