/*
 * Changesets on the wire: the canonical encoder, the strict decoder, and the
 * signature and hash over the exact bytes (the wire form is documented in
 * changeset.h). The decoder walks the body with its own cursor and checks the
 * canonical form as it reads, so a body it accepts is byte for byte what
 * changeset_encode would emit for the decoded changeset; the fuzz harness
 * holds it to that. Decoding allocates one array of ops, sized only after
 * the declared count has been checked against the bytes that remain; all
 * strings and field maps point into the caller's buffer.
 */
#include "proto/changeset.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "proto/error.h"
#include "proto/limits.h"
#include "proto/mpread.h"
#include "proto/sha256.h"
#include "proto/value.h"

#define DOMAIN_LEN (sizeof(CHANGESET_SIGN_DOMAIN) - 1)

/* The fewest bytes an op can take: [2, "c", "i"]. */
#define MIN_OP_BYTES 6u

/* For fail(): the sentence already says where. */
#define NO_POS SIZE_MAX

struct reader {
	const uint8_t *p;
	size_t len; /* the body only, without the signature */
	size_t pos;
	long op; /* index of the op being read, -1 outside ops */
	char *err;
	size_t errlen;
};

/* Fills err with "op N: <sentence> at byte B" and returns code; NO_POS leaves out the byte. */
__attribute__((format(printf, 4, 5))) static int fail(struct reader *r, size_t at, int code,
                                                      const char *fmt, ...)
{
	if (!r->err || r->errlen == 0)
		return code;
	size_t o = 0;
	int n = 0;
	if (r->op >= 0)
		n = snprintf(r->err, r->errlen, "op %ld: ", r->op);
	if (n < 0 || (size_t)n >= r->errlen)
		return code;
	o = (size_t)n;
	va_list ap;
	va_start(ap, fmt);
	n = vsnprintf(r->err + o, r->errlen - o, fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= r->errlen - o)
		return code;
	o += (size_t)n;
	if (at != NO_POS)
		snprintf(r->err + o, r->errlen - o, " at byte %zu", at);
	return code;
}

static int need(struct reader *r, size_t at, size_t n, const char *what)
{
	if (r->len - r->pos < n)
		return fail(r, at, LOKET_E_TRUNCATED, "changeset ends inside %s", what);
	return 0;
}

/* Reads an unsigned integer in its shortest format. */
static int read_uint(struct reader *r, const char *what, uint64_t *v)
{
	size_t at = r->pos;
	int rc = need(r, at, 1, what);
	if (rc)
		return rc;
	uint8_t t = r->p[r->pos];
	if (t <= 0x7f) {
		r->pos++;
		*v = t;
		return 0;
	}
	if (t >= 0xe0)
		return fail(r, at, LOKET_E_MALFORMED, "%s is negative", what);
	if (t < 0xcc || t > 0xd3)
		return fail(r, at, LOKET_E_MALFORMED, "%s is not an integer", what);
	size_t n = (size_t)1 << (t & 0x03u);
	if ((rc = need(r, at, 1 + n, what)))
		return rc;
	const uint8_t *b = r->p + r->pos + 1;
	r->pos += 1 + n;
	uint64_t u =
	    n == 1 ? b[0] : (n == 2 ? mpread_be16(b) : (n == 4 ? mpread_be32(b) : mpread_be64(b)));
	if (t >= 0xd0) {
		/* A signed format: negative is wrong, non-negative is not canonical. */
		int neg = (b[0] & 0x80) != 0;
		if (neg)
			return fail(r, at, LOKET_E_MALFORMED, "%s is negative", what);
		return fail(r, at, LOKET_E_NOT_CANONICAL, "%s %llu not in shortest form", what,
		            (unsigned long long)u);
	}
	uint64_t min = n == 1 ? 0x80 : (n == 2 ? 0x100 : (n == 4 ? 0x10000 : 0x100000000));
	if (u < min)
		return fail(r, at, LOKET_E_NOT_CANONICAL, "%s %llu not in shortest form", what,
		            (unsigned long long)u);
	*v = u;
	return 0;
}

/* Reads a str with the shortest header; the bytes are not yet validated. */
static int read_str(struct reader *r, const char *what, const char **s, size_t *n)
{
	size_t at = r->pos;
	int rc = need(r, at, 1, what);
	if (rc)
		return rc;
	uint8_t t = r->p[r->pos];
	size_t len;
	size_t hl;
	size_t min;
	if (t >= 0xa0 && t <= 0xbf) {
		len = t & 0x1fu;
		hl = 0;
		min = 0;
	} else if (t >= 0xd9 && t <= 0xdb) {
		hl = (size_t)1 << (t - 0xd9);
		if ((rc = need(r, at, 1 + hl, what)))
			return rc;
		const uint8_t *h = r->p + r->pos + 1;
		len = hl == 1 ? h[0] : (hl == 2 ? mpread_be16(h) : mpread_be32(h));
		min = hl == 1 ? 32 : (hl == 2 ? 256 : 65536);
	} else if (t >= 0xc4 && t <= 0xc6) {
		return fail(r, at, LOKET_E_MALFORMED, "%s is bin where str is expected", what);
	} else {
		return fail(r, at, LOKET_E_MALFORMED, "%s is not a string", what);
	}
	r->pos += 1 + hl;
	if (r->len - r->pos < len)
		return fail(r, at, LOKET_E_TRUNCATED, "%s of %zu bytes but only %zu bytes remain",
		            what, len, r->len - r->pos);
	if (len < min)
		return fail(r, at, LOKET_E_NOT_CANONICAL, "%s length %zu not in shortest form",
		            what, len);
	*s = (const char *)r->p + r->pos;
	*n = len;
	r->pos += len;
	return 0;
}

/* Reads a bin of exactly 32 bytes (a key or a hash). */
static int read_bin32(struct reader *r, const char *what, uint8_t out[32])
{
	size_t at = r->pos;
	int rc = need(r, at, 2, what);
	if (rc)
		return rc;
	uint8_t t = r->p[r->pos];
	if ((t >= 0xa0 && t <= 0xbf) || (t >= 0xd9 && t <= 0xdb))
		return fail(r, at, LOKET_E_MALFORMED, "%s is str where bin is expected", what);
	if (t < 0xc4 || t > 0xc6)
		return fail(r, at, LOKET_E_MALFORMED, "%s is not bin", what);
	size_t hl = (size_t)1 << (t - 0xc4);
	if ((rc = need(r, at, 1 + hl, what)))
		return rc;
	const uint8_t *h = r->p + r->pos + 1;
	size_t len = hl == 1 ? h[0] : (hl == 2 ? mpread_be16(h) : mpread_be32(h));
	if (len != 32)
		return fail(r, at, LOKET_E_MALFORMED, "%s is %zu bytes, not 32", what, len);
	if (hl != 1)
		return fail(r, at, LOKET_E_NOT_CANONICAL, "%s length not in shortest form", what);
	r->pos += 1 + hl;
	if ((rc = need(r, at, 32, what)))
		return rc;
	memcpy(out, r->p + r->pos, 32);
	r->pos += 32;
	return 0;
}

/* Reads an array header with the shortest encoding. */
static int read_array(struct reader *r, const char *what, size_t *count)
{
	size_t at = r->pos;
	int rc = need(r, at, 1, what);
	if (rc)
		return rc;
	uint8_t t = r->p[r->pos];
	if (t >= 0x90 && t <= 0x9f) {
		r->pos++;
		*count = t & 0x0fu;
		return 0;
	}
	if (t != 0xdc && t != 0xdd)
		return fail(r, at, LOKET_E_MALFORMED, "%s is not an array", what);
	size_t hl = t == 0xdc ? 2 : 4;
	if ((rc = need(r, at, 1 + hl, what)))
		return rc;
	const uint8_t *h = r->p + r->pos + 1;
	size_t n = hl == 2 ? mpread_be16(h) : mpread_be32(h);
	if (n < (hl == 2 ? 16u : 65536u))
		return fail(r, at, LOKET_E_NOT_CANONICAL, "%s count %zu not in shortest form", what,
		            n);
	r->pos += 1 + hl;
	*count = n;
	return 0;
}

static int key_cmp(const char *a, size_t alen, const char *b, size_t blen)
{
	int c = memcmp(a, b, alen < blen ? alen : blen);
	if (c != 0)
		return c;
	return alen < blen ? -1 : (alen > blen ? 1 : 0);
}

/*
 * Checks a put op's fields: a canonical map of 1..LOKET_MAX_FIELDS entries,
 * names of 1..LOKET_MAX_KEY_LEN bytes in order, each value canonical, at most
 * LOKET_MAX_FIELD_BYTES, nested so that the map and its values together stay
 * within LOKET_MAX_DEPTH. The encoder runs the same check, so what this node
 * signs is exactly what its peers accept.
 */
static int read_fields(struct reader *r)
{
	char q[ERROR_QUOTE_SIZE];
	char verr[160];
	size_t at = r->pos;
	int rc = need(r, at, 1, "fields");
	if (rc)
		return rc;
	uint8_t t = r->p[r->pos];
	size_t count;
	if (t >= 0x80 && t <= 0x8f) {
		count = t & 0x0fu;
		r->pos++;
	} else if (t == 0xde || t == 0xdf) {
		size_t hl = t == 0xde ? 2 : 4;
		if ((rc = need(r, at, 1 + hl, "fields")))
			return rc;
		const uint8_t *h = r->p + r->pos + 1;
		count = hl == 2 ? mpread_be16(h) : mpread_be32(h);
		if (count < (hl == 2 ? 16u : 65536u))
			return fail(r, at, LOKET_E_NOT_CANONICAL,
			            "fields count %zu not in shortest form", count);
		r->pos += 1 + hl;
	} else {
		return fail(r, at, LOKET_E_MALFORMED, "fields are not a map");
	}
	if (count == 0)
		return fail(r, at, LOKET_E_MALFORMED, "fields map is empty");
	if (count > LOKET_MAX_FIELDS)
		return fail(r, at, LOKET_E_TOO_BIG,
		            "fields map has %zu entries; at most %u allowed", count,
		            LOKET_MAX_FIELDS);
	if (count > (r->len - r->pos) / 2)
		return fail(r, at, LOKET_E_TRUNCATED,
		            "declared %zu fields but only %zu bytes remain", count,
		            r->len - r->pos);
	const char *prev = NULL;
	size_t prev_len = 0;
	for (size_t i = 0; i < count; i++) {
		size_t kat = r->pos;
		const char *k;
		size_t klen;
		if ((rc = read_str(r, "field name", &k, &klen)))
			return rc;
		if (klen == 0)
			return fail(r, kat, LOKET_E_MALFORMED, "field name is empty");
		if (klen > LOKET_MAX_KEY_LEN)
			return fail(r, kat, LOKET_E_TOO_BIG,
			            "field name %s is %zu bytes; at most %u allowed",
			            error_quote(q, sizeof(q), k, klen), klen, LOKET_MAX_KEY_LEN);
		if (!value_valid_utf8((const uint8_t *)k, klen))
			return fail(r, kat, LOKET_E_MALFORMED, "field name is not valid UTF-8");
		if (prev) {
			int c = key_cmp(prev, prev_len, k, klen);
			if (c == 0)
				return fail(r, kat, LOKET_E_DUPLICATE_KEY,
				            "map key %s appears twice",
				            error_quote(q, sizeof(q), k, klen));
			if (c > 0)
				return fail(r, kat, LOKET_E_NOT_CANONICAL,
				            "map key %s is out of order",
				            error_quote(q, sizeof(q), k, klen));
		}
		prev = k;
		prev_len = klen;
		size_t vat = r->pos;
		size_t used = 0;
		rc = value_check(r->p + vat, r->len - vat, LOKET_MAX_DEPTH - 1, VALUE_CANONICAL,
		                 &used, verr, sizeof(verr));
		if (rc)
			return fail(r, NO_POS, rc, "field %s (value at byte %zu): %s",
			            error_quote(q, sizeof(q), k, klen), vat, verr);
		if (used > LOKET_MAX_FIELD_BYTES)
			return fail(
			    r, vat, LOKET_E_TOO_BIG, "field %s takes %zu bytes; at most %u allowed",
			    error_quote(q, sizeof(q), k, klen), used, LOKET_MAX_FIELD_BYTES);
		r->pos += used;
	}
	return 0;
}

static int read_op(struct reader *r, struct op *op)
{
	char q[ERROR_QUOTE_SIZE];
	size_t at = r->pos;
	size_t n;
	uint64_t kind;
	int rc;
	if ((rc = read_array(r, "op", &n)))
		return rc;
	if (n < 2 || n > 4)
		return fail(r, at, LOKET_E_MALFORMED, "op has %zu elements, not 2, 3 or 4", n);
	if ((rc = read_uint(r, "op kind", &kind)))
		return rc;
	if (kind == OP_ROTATE) {
		if (n != 2)
			return fail(r, at, LOKET_E_MALFORMED,
			            "rotate op has %zu elements, not 2 (kind and key)", n);
		uint8_t key[CHANGESET_KEY_BYTES];
		op->kind = OP_ROTATE;
		size_t kat = r->pos;
		if ((rc = read_bin32(r, "rotate op's key", key)))
			return rc;
		op->key = r->p + kat + 2;
		if (!changeset_valid_key(op->key))
			return fail(r, kat, LOKET_E_MALFORMED,
			            "rotate op's key is not a valid Ed25519 public key");
		return 0;
	}
	if (n == 2)
		return fail(r, at, LOKET_E_MALFORMED, "op has 2 elements, not 3 or 4");
	if (kind == OP_PUT && n != 4)
		return fail(r, at, LOKET_E_MALFORMED, "put op has no fields");
	if (kind == OP_DEL && n != 3)
		return fail(r, at, LOKET_E_MALFORMED, "del op has fields");
	if (kind != OP_PUT && kind != OP_DEL)
		return fail(r, at, LOKET_E_MALFORMED, "unknown op kind %llu",
		            (unsigned long long)kind);
	op->kind = kind == OP_PUT ? OP_PUT : OP_DEL;
	size_t cat = r->pos;
	if ((rc = read_str(r, "collection", &op->coll, &op->coll_len)))
		return rc;
	if (!changeset_valid_coll(op->coll, op->coll_len))
		return fail(r, cat, LOKET_E_MALFORMED, "collection name %s is not valid",
		            error_quote(q, sizeof(q), op->coll, op->coll_len));
	size_t iat = r->pos;
	if ((rc = read_str(r, "id", &op->id, &op->id_len)))
		return rc;
	if (!changeset_valid_id(op->id, op->id_len))
		return fail(r, iat, LOKET_E_MALFORMED, "id %s is not valid",
		            error_quote(q, sizeof(q), op->id, op->id_len));
	if (op->kind == OP_PUT) {
		size_t fat = r->pos;
		if ((rc = read_fields(r)))
			return rc;
		op->fields = r->p + fat;
		op->fields_len = r->pos - fat;
	}
	return 0;
}

static int is_zero(const uint8_t *b, size_t n)
{
	uint8_t acc = 0;
	for (size_t i = 0; i < n; i++)
		acc |= b[i];
	return acc == 0;
}

int changeset_decode(const uint8_t *p, size_t len, struct changeset *out, char *err, size_t errlen)
{
	struct reader r = {.p = p, .op = -1, .err = err, .errlen = errlen};
	uint64_t v;
	size_t n;
	int rc;
	memset(out, 0, sizeof(*out));
	if (err && errlen)
		err[0] = '\0';
	if (!p || len < CHANGESET_SIG_BYTES + 1)
		return fail(&r, 0, LOKET_E_TRUNCATED,
		            "changeset of %zu bytes is too short for a body and a signature", len);
	if (len > LOKET_MAX_CHANGESET_BYTES)
		return fail(&r, 0, LOKET_E_TOO_BIG,
		            "changeset of %zu bytes is over the limit of %u", len,
		            LOKET_MAX_CHANGESET_BYTES);
	r.len = len - CHANGESET_SIG_BYTES;

	/* The version comes first: a later version may have another shape. */
	if ((rc = read_array(&r, "changeset body", &n)))
		goto cleanup;
	if (n == 0) {
		rc = fail(&r, 0, LOKET_E_MALFORMED, "changeset body is an empty array");
		goto cleanup;
	}
	size_t at = r.pos;
	if ((rc = read_uint(&r, "version", &v)))
		goto cleanup;
	if (v != CHANGESET_VERSION) {
		rc = fail(&r, at, LOKET_E_VERSION, "unknown changeset version %llu",
		          (unsigned long long)v);
		goto cleanup;
	}
	out->version = CHANGESET_VERSION;
	if (n != 7) {
		rc = fail(&r, 0, LOKET_E_MALFORMED, "changeset body has %zu elements, not 7", n);
		goto cleanup;
	}

	at = r.pos;
	if ((rc = read_str(&r, "federation", &out->federation, &out->federation_len)))
		goto cleanup;
	if (out->federation_len == 0) {
		rc = fail(&r, at, LOKET_E_MALFORMED, "federation name is empty");
		goto cleanup;
	}
	if (out->federation_len > LOKET_MAX_FEDERATION_LEN) {
		rc = fail(&r, at, LOKET_E_TOO_BIG, "federation name of %zu bytes; at most %u",
		          out->federation_len, LOKET_MAX_FEDERATION_LEN);
		goto cleanup;
	}
	if (!value_valid_utf8((const uint8_t *)out->federation, out->federation_len)) {
		rc = fail(&r, at, LOKET_E_MALFORMED, "federation name is not valid UTF-8");
		goto cleanup;
	}

	if ((rc = read_bin32(&r, "origin", out->origin)))
		goto cleanup;

	at = r.pos;
	if ((rc = read_uint(&r, "seq", &out->seq)))
		goto cleanup;
	if (out->seq == 0) {
		rc = fail(&r, at, LOKET_E_BAD_SEQ, "seq is 0; sequences start at 1");
		goto cleanup;
	}
	/* seq and hlc are stored as SQLite integers, which are signed 64-bit. */
	if (out->seq > INT64_MAX) {
		rc = fail(&r, at, LOKET_E_TOO_BIG, "seq %llu beyond the int64 range",
		          (unsigned long long)out->seq);
		goto cleanup;
	}

	at = r.pos;
	if ((rc = read_bin32(&r, "prev", out->prev)))
		goto cleanup;
	if (out->seq == 1 && !is_zero(out->prev, sizeof(out->prev))) {
		rc = fail(&r, at, LOKET_E_BAD_PREV, "prev of seq 1 is not all zeros");
		goto cleanup;
	}

	at = r.pos;
	if ((rc = read_uint(&r, "hlc", &out->hlc)))
		goto cleanup;
	if (out->hlc > INT64_MAX) {
		rc = fail(&r, at, LOKET_E_TOO_BIG, "hlc %llu beyond the int64 range",
		          (unsigned long long)out->hlc);
		goto cleanup;
	}

	at = r.pos;
	if ((rc = read_array(&r, "ops", &n)))
		goto cleanup;
	if (n == 0) {
		rc = fail(&r, at, LOKET_E_MALFORMED, "changeset has no ops");
		goto cleanup;
	}
	if (n > LOKET_MAX_OPS) {
		rc = fail(&r, at, LOKET_E_TOO_BIG, "changeset has %zu ops; at most %u allowed", n,
		          LOKET_MAX_OPS);
		goto cleanup;
	}
	if (n > (r.len - r.pos) / MIN_OP_BYTES) {
		rc = fail(&r, at, LOKET_E_TRUNCATED, "declared %zu ops but only %zu bytes remain",
		          n, r.len - r.pos);
		goto cleanup;
	}
	out->ops = calloc(n, sizeof(*out->ops));
	if (!out->ops) {
		rc = -ENOMEM;
		goto cleanup;
	}
	for (size_t i = 0; i < n; i++) {
		r.op = (long)i;
		size_t oat = r.pos;
		if ((rc = read_op(&r, &out->ops[i])))
			goto cleanup;
		out->n_ops = i + 1;
		/* A rotation record is a changeset of its own: one op, naming a new key. */
		if (out->ops[i].kind == OP_ROTATE && n != 1) {
			rc = fail(&r, oat, LOKET_E_MALFORMED,
			          "a rotate op is not the only op of its changeset");
			goto cleanup;
		}
		if (out->ops[i].kind == OP_ROTATE &&
		    memcmp(out->ops[i].key, out->origin, CHANGESET_KEY_BYTES) == 0) {
			rc = fail(&r, oat, LOKET_E_MALFORMED,
			          "a rotate op names the origin's own key");
			goto cleanup;
		}
	}
	r.op = -1;
	if (r.pos != r.len) {
		rc = fail(&r, r.pos, LOKET_E_TRAILING,
		          "%zu bytes between the body and the signature", r.len - r.pos);
		goto cleanup;
	}
	return 0;
cleanup:
	changeset_release(out);
	return rc;
}

void changeset_release(struct changeset *cs)
{
	if (!cs)
		return;
	free(cs->ops);
	memset(cs, 0, sizeof(*cs));
}

/* Checks the parts of cs that the decoder would check, before anything is packed. */
static int check_for_encode(const struct changeset *cs, int fields_checked)
{
	if (cs->version != CHANGESET_VERSION)
		return LOKET_E_VERSION;
	if (!cs->federation || cs->federation_len == 0 ||
	    !value_valid_utf8((const uint8_t *)cs->federation, cs->federation_len))
		return LOKET_E_MALFORMED;
	if (cs->federation_len > LOKET_MAX_FEDERATION_LEN)
		return LOKET_E_TOO_BIG;
	if (cs->seq == 0)
		return LOKET_E_BAD_SEQ;
	if (cs->seq > INT64_MAX || cs->hlc > INT64_MAX)
		return LOKET_E_TOO_BIG;
	if (cs->seq == 1 && !is_zero(cs->prev, sizeof(cs->prev)))
		return LOKET_E_BAD_PREV;
	if (cs->n_ops == 0 || !cs->ops)
		return LOKET_E_MALFORMED;
	if (cs->n_ops > LOKET_MAX_OPS)
		return LOKET_E_TOO_BIG;
	for (size_t i = 0; i < cs->n_ops; i++) {
		const struct op *op = &cs->ops[i];
		if (op->kind == OP_ROTATE) {
			if (cs->n_ops != 1 || !op->key || !changeset_valid_key(op->key) ||
			    memcmp(op->key, cs->origin, CHANGESET_KEY_BYTES) == 0)
				return LOKET_E_MALFORMED;
			continue;
		}
		if (op->kind != OP_PUT && op->kind != OP_DEL)
			return LOKET_E_MALFORMED;
		if (!changeset_valid_coll(op->coll, op->coll_len) ||
		    !changeset_valid_id(op->id, op->id_len))
			return LOKET_E_MALFORMED;
		if (op->kind == OP_DEL) {
			if (op->fields || op->fields_len)
				return LOKET_E_MALFORMED;
			continue;
		}
		if (!op->fields || op->fields_len == 0)
			return LOKET_E_MALFORMED;
		int rc = fields_checked
		             ? 0
		             : changeset_check_fields(op->fields, op->fields_len, NULL, 0);
		if (rc)
			return rc;
	}
	return 0;
}

int changeset_check_fields_at(const uint8_t *p, size_t len, size_t *used, char *err, size_t errlen)
{
	struct reader r = {.p = p, .len = p ? len : 0, .op = -1, .err = err, .errlen = errlen};
	if (err && errlen)
		err[0] = '\0';
	int rc = read_fields(&r);
	*used = r.pos;
	return rc;
}

int changeset_check_fields(const uint8_t *p, size_t len, char *err, size_t errlen)
{
	size_t used;
	int rc = changeset_check_fields_at(p, len, &used, err, errlen);
	if (rc == 0 && used != len) {
		struct reader r = {.p = p, .len = len, .op = -1, .err = err, .errlen = errlen};
		rc =
		    fail(&r, used, LOKET_E_TRAILING, "%zu bytes follow the fields map", len - used);
	}
	return rc;
}

static int encode(const struct changeset *cs, int fields_checked, msgpack_sbuffer *out)
{
	msgpack_packer pk;
	size_t start = out->size;
	int rc = check_for_encode(cs, fields_checked);
	if (rc)
		return rc;
	msgpack_packer_init(&pk, out, msgpack_sbuffer_write);
	int bad = 0;
	bad |= msgpack_pack_array(&pk, 7);
	bad |= msgpack_pack_uint64(&pk, cs->version);
	bad |= msgpack_pack_str(&pk, cs->federation_len);
	bad |= msgpack_pack_str_body(&pk, cs->federation, cs->federation_len);
	bad |= msgpack_pack_bin(&pk, CHANGESET_KEY_BYTES);
	bad |= msgpack_pack_bin_body(&pk, cs->origin, CHANGESET_KEY_BYTES);
	bad |= msgpack_pack_uint64(&pk, cs->seq);
	bad |= msgpack_pack_bin(&pk, CHANGESET_HASH_BYTES);
	bad |= msgpack_pack_bin_body(&pk, cs->prev, CHANGESET_HASH_BYTES);
	bad |= msgpack_pack_uint64(&pk, cs->hlc);
	bad |= msgpack_pack_array(&pk, cs->n_ops);
	for (size_t i = 0; i < cs->n_ops && !bad; i++) {
		const struct op *op = &cs->ops[i];
		if (op->kind == OP_ROTATE) {
			bad |= msgpack_pack_array(&pk, 2);
			bad |= msgpack_pack_uint64(&pk, (uint64_t)op->kind);
			bad |= msgpack_pack_bin(&pk, CHANGESET_KEY_BYTES);
			bad |= msgpack_pack_bin_body(&pk, op->key, CHANGESET_KEY_BYTES);
			continue;
		}
		bad |= msgpack_pack_array(&pk, op->kind == OP_PUT ? 4 : 3);
		bad |= msgpack_pack_uint64(&pk, (uint64_t)op->kind);
		bad |= msgpack_pack_str(&pk, op->coll_len);
		bad |= msgpack_pack_str_body(&pk, op->coll, op->coll_len);
		bad |= msgpack_pack_str(&pk, op->id_len);
		bad |= msgpack_pack_str_body(&pk, op->id, op->id_len);
		if (op->kind == OP_PUT)
			bad |= msgpack_sbuffer_write(out, (const char *)op->fields, op->fields_len);
	}
	if (bad) {
		rc = -ENOMEM;
		goto cleanup;
	}
	if (out->size - start + CHANGESET_SIG_BYTES > LOKET_MAX_CHANGESET_BYTES) {
		rc = LOKET_E_TOO_BIG;
		goto cleanup;
	}
	return 0;
cleanup:
	out->size = start;
	return rc;
}

int changeset_encode(const struct changeset *cs, msgpack_sbuffer *out)
{
	return encode(cs, 0, out);
}

int changeset_encode_checked(const struct changeset *cs, msgpack_sbuffer *out)
{
	return encode(cs, 1, out);
}

int changeset_signing_input(const uint8_t *body, size_t body_len, uint8_t **msg, size_t *msg_len)
{
	*msg = NULL;
	*msg_len = 0;
	if (body_len > SIZE_MAX - DOMAIN_LEN)
		return -EINVAL;
	uint8_t *m = malloc(DOMAIN_LEN + body_len);
	if (!m)
		return -ENOMEM;
	memcpy(m, CHANGESET_SIGN_DOMAIN, DOMAIN_LEN);
	if (body_len)
		memcpy(m + DOMAIN_LEN, body, body_len);
	*msg = m;
	*msg_len = DOMAIN_LEN + body_len;
	return 0;
}

int changeset_verify(const uint8_t *p, size_t len, const uint8_t key[CHANGESET_KEY_BYTES])
{
	uint8_t *msg = NULL;
	size_t msg_len = 0;
	if (!p || len < CHANGESET_SIG_BYTES + 1 || len > LOKET_MAX_CHANGESET_BYTES)
		return LOKET_E_BAD_SIGNATURE;
	if (sodium_init() < 0)
		return -EIO;
	size_t body_len = len - CHANGESET_SIG_BYTES;
	int rc = changeset_signing_input(p, body_len, &msg, &msg_len);
	if (rc)
		return rc;
	if (crypto_sign_verify_detached(p + body_len, msg, msg_len, key) != 0)
		rc = LOKET_E_BAD_SIGNATURE;
	free(msg);
	return rc;
}

const uint8_t *changeset_rotation(const struct changeset *cs)
{
	if (cs->n_ops == 1 && cs->ops && cs->ops[0].kind == OP_ROTATE)
		return cs->ops[0].key;
	return NULL;
}

int changeset_valid_key(const uint8_t k[CHANGESET_KEY_BYTES])
{
	uint8_t curve[32];
	if (is_zero(k, CHANGESET_KEY_BYTES) || sodium_init() < 0)
		return 0;
	/* The CURVE key is derived from it: a point that gives none could never connect. */
	return crypto_sign_ed25519_pk_to_curve25519(curve, k) == 0 &&
	       crypto_core_ed25519_is_valid_point(k);
}

void changeset_hash(const uint8_t *p, size_t len, uint8_t out[CHANGESET_HASH_BYTES])
{
	sha256(p, len, out);
}

int changeset_valid_coll(const char *s, size_t len)
{
	if (!s || len == 0 || len > LOKET_MAX_COLL_LEN)
		return 0;
	if (s[0] < 'a' || s[0] > 'z')
		return 0;
	for (size_t i = 1; i < len; i++) {
		char c = s[i];
		if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_'))
			return 0;
	}
	return 1;
}

int changeset_valid_id(const char *s, size_t len)
{
	if (!s || len == 0 || len > LOKET_MAX_ID_LEN)
		return 0;
	/* "." and ".." would read as paths wherever ids become file or URL parts. */
	if ((len == 1 && s[0] == '.') || (len == 2 && s[0] == '.' && s[1] == '.'))
		return 0;
	for (size_t i = 0; i < len; i++) {
		char c = s[i];
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '.' || c == '_' || c == ':' || c == '@' || c == '-'))
			return 0;
	}
	return 1;
}
