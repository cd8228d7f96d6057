/*
 * put_ops: the ops of a put request, read from msgpack in one pass. Every
 * header and length is checked against the end of the bytes before it is
 * used, and every value is either read as the type expected or passed over
 * by value_check, so no byte of the request is trusted unread. Whatever
 * this reader cannot take goes to the generic JSON path, which words the
 * error.
 */
#include "daemon/put_ops.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proto/error.h"
#include "proto/limits.h"
#include "proto/mpread.h"
#include "proto/value.h"

/* A str as C chars: 1 if the value is one (the cursor then moved past it). */
static int read_str(struct mpread *r, const char **s, size_t *len)
{
	const uint8_t *p;
	if (mpread_str(r, &p, len) != 0)
		return 0;
	*s = (const char *)p;
	return 1;
}

/*
 * Steps over one value, returning where it started and its length. Only a
 * value the generic path could read (no NaN: it becomes JSON there) is
 * stepped over; anything else is left to that path's refusal.
 */
static int skip_value(struct mpread *r, const uint8_t **at, size_t *len)
{
	char why[8];
	size_t used = 0;
	if (value_check(r->p, (size_t)(r->end - r->p), LOKET_MAX_MESSAGE_DEPTH, VALUE_FINITE, &used,
	                why, sizeof(why)) != 0)
		return 0;
	*at = r->p;
	*len = used;
	r->p += used;
	return 1;
}

static int str_is(const char *s, size_t len, const char *lit)
{
	return len == strlen(lit) && memcmp(s, lit, len) == 0;
}

/* Keys a put request may have at its top level, or it is left to the generic path. */
#define PUT_MAX_KEYS 16

int put_ops_find(const uint8_t *req, size_t len, const uint8_t **ops, size_t *ops_len)
{
	struct mpread r = mpread_init(req, len);
	struct {
		const char *s;
		size_t len;
	} seen[PUT_MAX_KEYS];
	size_t n;
	int put = 0;

	*ops = NULL;
	*ops_len = 0;
	if (mpread_map(&r, &n) != 0 || n > PUT_MAX_KEYS)
		return 0;
	for (size_t i = 0; i < n; i++) {
		const char *key, *cmd;
		size_t key_len, cmd_len;
		const uint8_t *at;
		size_t at_len;
		if (!read_str(&r, &key, &key_len) ||
		    !value_valid_utf8((const uint8_t *)key, key_len))
			return 0;
		for (size_t k = 0; k < i; k++)
			if (seen[k].len == key_len && memcmp(seen[k].s, key, key_len) == 0)
				return 0; /* a key twice */
		seen[i].s = key;
		seen[i].len = key_len;
		if (str_is(key, key_len, "cmd")) {
			if (!read_str(&r, &cmd, &cmd_len) || !str_is(cmd, cmd_len, "put"))
				return 0;
			put = 1;
		} else if (!str_is(key, key_len, "ops")) {
			return 0; /* the generic path names the unknown key */
		} else if (i + 1 == n) {
			/* Last, as loket sends it: put_ops_parse reads it to the end, once. */
			*ops = r.p;
			*ops_len = (size_t)(r.end - r.p);
			r.p = r.end;
		} else if (!skip_value(&r, &at, &at_len)) {
			return 0;
		} else {
			*ops = at;
			*ops_len = at_len;
		}
	}
	return put && r.p == r.end;
}

/*
 * Fields sent in another form than the canonical one (keys unsorted, wider
 * integers) are packed canonically, as the JSON path always did. They
 * passed check_fields, so they decode, within LOKET_MAX_MESSAGE_ELEMENTS
 * values.
 */
static int repack_fields(struct put_ops *po, const uint8_t *p, size_t len, size_t *off, char *err,
                         size_t errlen)
{
	json_t *fields = value_to_json(p, len);
	msgpack_packer pk;
	int rc;

	if (!fields) {
		snprintf(err, errlen, "\"fields\" cannot be read");
		return LOKET_E_MALFORMED;
	}
	*off = po->repacked.size;
	msgpack_packer_init(&pk, &po->repacked, msgpack_sbuffer_write);
	rc = value_pack_json(&pk, fields, LOKET_MAX_DEPTH, err, errlen);
	json_decref(fields);
	if (rc != 0)
		return rc;
	return changeset_check_fields((const uint8_t *)po->repacked.data + *off,
	                              po->repacked.size - *off, err, errlen);
}

/*
 * Checks fields that are not canonical before they are decoded: a map of 1
 * to LOKET_MAX_FIELDS fields, and every value one the changeset can hold
 * (finite numbers in the int64 range, text as UTF-8 str, keys once each,
 * depth, values), each refusal naming the field. *len gets their length.
 */
static int check_fields(const uint8_t *p, size_t avail, size_t *len, char *err, size_t errlen)
{
	struct mpread r = mpread_init(p, avail);
	size_t n;
	int map = mpread_map(&r, &n) == 0;
	if (!map || n == 0 || n > LOKET_MAX_FIELDS) {
		if (map && n > LOKET_MAX_FIELDS)
			snprintf(err, errlen,
			         "\"fields\" must be a map of 1 to %u fields (it has %zu)",
			         LOKET_MAX_FIELDS, n);
		else
			snprintf(err, errlen, "\"fields\" must be a map of 1 to %u fields",
			         LOKET_MAX_FIELDS);
		return LOKET_E_BAD_REQUEST;
	}
	struct value_rules rules = {.max_depth = LOKET_MAX_DEPTH,
	                            .flags = VALUE_FINITE | VALUE_NO_BIN,
	                            .max_elements = LOKET_MAX_MESSAGE_ELEMENTS,
	                            .root = "fields"};
	return value_check_rules(p, avail, &rules, len, err, errlen);
}

/* The op's "coll" or "id": a str, said so when it is a bin (Python's bytes). */
static int read_text(struct mpread *r, const char *key, const char **s, size_t *len, char *err,
                     size_t errlen)
{
	if (r->p < r->end && *r->p >= 0xc4 && *r->p <= 0xc6) {
		snprintf(err, errlen,
		         "\"%s\" is a bin where a string is meant (send text as "
		         "msgpack str)",
		         key);
		return LOKET_E_BAD_REQUEST;
	}
	return read_str(r, s, len) ? 1 : 0;
}

/* The keys of an op, each allowed once. */
enum op_key {
	OP_KEY_COLL,
	OP_KEY_ID,
	OP_KEY_FIELDS,
	OP_KEY_DEL,
};

static int op_key(const char *key, size_t len)
{
	static const char *const names[] = {"coll", "id", "fields", "del"};
	for (int i = 0; i < 4; i++)
		if (str_is(key, len, names[i]))
			return i;
	return -1;
}

/* Reads one op; *off is set when its fields were repacked (else SIZE_MAX). */
static int parse_op(struct put_ops *po, struct mpread *r, struct op *op, size_t *off, char *err,
                    size_t errlen)
{
	const uint8_t *fields = NULL, *del = NULL;
	size_t fields_len = 0, del_len = 0;
	size_t n;
	unsigned seen = 0;
	int have_coll = 0, have_id = 0, canonical = 0, rc;
	char q[ERROR_QUOTE_SIZE];

	*off = SIZE_MAX;
	if (mpread_map(r, &n) != 0) {
		const uint8_t *at;
		size_t at_len;
		snprintf(err, errlen, "the op is not a map");
		return skip_value(r, &at, &at_len) ? LOKET_E_BAD_REQUEST : LOKET_E_MALFORMED;
	}
	for (size_t i = 0; i < n; i++) {
		const char *key;
		size_t key_len;
		const uint8_t *at;
		size_t at_len;
		if (!read_str(r, &key, &key_len)) {
			snprintf(err, errlen, "a key of the op is not a string");
			return LOKET_E_MALFORMED;
		}
		if (!value_valid_utf8((const uint8_t *)key, key_len)) {
			snprintf(err, errlen, "key %s of the op is not valid UTF-8",
			         error_quote(q, sizeof(q), key, key_len));
			return LOKET_E_MALFORMED;
		}
		int k = op_key(key, key_len);
		if (k < 0) {
			snprintf(err, errlen, "unknown key %s",
			         error_quote(q, sizeof(q), key, key_len));
			return LOKET_E_BAD_REQUEST;
		}
		if (seen & (1u << k)) {
			snprintf(err, errlen, "key %s appears twice in the op",
			         error_quote(q, sizeof(q), key, key_len));
			return LOKET_E_DUPLICATE_KEY;
		}
		seen |= 1u << k;
		size_t avail = (size_t)(r->end - r->p);
		switch (k) {
		case OP_KEY_FIELDS:
			/* Canonical fields, the common case, are checked in the one pass that finds
			 * their end. */
			if (changeset_check_fields_at(r->p, avail, &at_len, NULL, 0) == 0) {
				canonical = 1;
			} else if ((r->p < r->end && *r->p == 0xc0)) {
				at_len = 1; /* nil: no fields, refused below */
			} else if ((rc = check_fields(r->p, avail, &at_len, err, errlen)) != 0) {
				return rc;
			}
			fields = r->p;
			fields_len = at_len;
			r->p += at_len;
			continue;
		case OP_KEY_COLL:
			if ((rc = read_text(r, "coll", &op->coll, &op->coll_len, err, errlen)) < 0)
				return rc;
			have_coll = rc;
			break;
		case OP_KEY_ID:
			if ((rc = read_text(r, "id", &op->id, &op->id_len, err, errlen)) < 0)
				return rc;
			have_id = rc;
			break;
		default:
			break;
		}
		if ((k == OP_KEY_COLL && have_coll) || (k == OP_KEY_ID && have_id))
			continue;
		/* "del", or a "coll" or "id" of another type: refused below, once read. */
		struct value_rules rules = {.max_depth = LOKET_MAX_DEPTH,
		                            .flags = VALUE_FINITE | VALUE_NO_BIN,
		                            .root = k == OP_KEY_DEL    ? "del"
		                                    : k == OP_KEY_COLL ? "coll"
		                                                       : "id"};
		if ((rc = value_check_rules(r->p, avail, &rules, &at_len, err, errlen)) != 0)
			return rc;
		at = r->p;
		r->p += at_len;
		if (k == OP_KEY_DEL) {
			del = at;
			del_len = at_len;
		}
	}
	if (!have_coll || !changeset_valid_coll(op->coll, op->coll_len)) {
		snprintf(err, errlen,
		         "\"coll\" must be a collection name ([a-z][a-z0-9_]*, at most %u bytes)",
		         LOKET_MAX_COLL_LEN);
		return LOKET_E_BAD_REQUEST;
	}
	if (!have_id || !changeset_valid_id(op->id, op->id_len)) {
		snprintf(err, errlen,
		         "\"id\" must be an entity id ([A-Za-z0-9._:@-], at most %u bytes)",
		         LOKET_MAX_ID_LEN);
		return LOKET_E_BAD_REQUEST;
	}
	int fields_nil = fields && fields_len == 1 && fields[0] == 0xc0;
	if (del && !(del_len == 1 && del[0] == 0xc0)) {
		if (!(del_len == 1 && del[0] == 0xc3) || (fields && !fields_nil)) {
			snprintf(err, errlen, "\"del\" must be true and comes without fields");
			return LOKET_E_BAD_REQUEST;
		}
		op->kind = OP_DEL;
		return 0;
	}
	struct mpread f = mpread_init(fields, fields_len);
	if (!fields || mpread_map(&f, &n) != 0 || n == 0 || n > LOKET_MAX_FIELDS) {
		snprintf(err, errlen, "\"fields\" must be a map of 1 to %u fields",
		         LOKET_MAX_FIELDS);
		return LOKET_E_BAD_REQUEST;
	}
	op->kind = OP_PUT;
	op->fields = fields;
	op->fields_len = fields_len;
	if (canonical)
		return 0;
	rc = repack_fields(po, fields, fields_len, off, err, errlen);
	if (rc == 0)
		op->fields_len = po->repacked.size - *off;
	return rc;
}

int put_ops_parse(struct put_ops *po, const uint8_t *ops, size_t len, long *bad_index, char *err,
                  size_t errlen)
{
	struct mpread r = mpread_init(ops, len);
	size_t *offs = NULL;
	size_t n;
	int rc = 0;

	memset(po, 0, sizeof(*po));
	msgpack_sbuffer_init(&po->repacked);
	*bad_index = -1;
	if (!ops || mpread_array(&r, &n) != 0 || n == 0 || n > LOKET_MAX_OPS) {
		snprintf(err, errlen, "\"ops\" must be an array of 1 to %u ops", LOKET_MAX_OPS);
		return LOKET_E_BAD_REQUEST;
	}
	po->ops = calloc(n, sizeof(*po->ops));
	offs = calloc(n, sizeof(*offs));
	if (!po->ops || !offs)
		abort();
	for (size_t i = 0; i < n; i++) {
		rc = parse_op(po, &r, &po->ops[i], &offs[i], err, errlen);
		if (rc != 0) {
			*bad_index = (long)i;
			goto out;
		}
	}
	if (r.p != r.end) {
		snprintf(err, errlen, "%zu bytes follow the ops", (size_t)(r.end - r.p));
		rc = LOKET_E_TRAILING;
		goto out;
	}
	po->n = n;
	/* Repacked fields no longer move: point their ops at them. */
	for (size_t i = 0; i < po->n; i++)
		if (offs[i] != SIZE_MAX)
			po->ops[i].fields = (const uint8_t *)po->repacked.data + offs[i];
out:
	free(offs);
	return rc;
}

void put_ops_release(struct put_ops *po)
{
	free(po->ops);
	msgpack_sbuffer_destroy(&po->repacked);
	memset(po, 0, sizeof(*po));
}
