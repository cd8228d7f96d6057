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
		} else if (str_is(key, key_len, "ops") && i + 1 == n) {
			/* Last, as loket sends it: put_ops_parse reads it to the end, once. */
			*ops = r.p;
			*ops_len = (size_t)(r.end - r.p);
			r.p = r.end;
		} else if (!skip_value(&r, &at, &at_len)) {
			return 0;
		} else if (str_is(key, key_len, "ops")) {
			*ops = at;
			*ops_len = at_len;
		}
	}
	return put && r.p == r.end;
}

/*
 * Fields sent in another form than the canonical one (keys unsorted, wider
 * integers, bin) are packed canonically, as the JSON path always did.
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

/* Reads one op; *off is set when its fields were repacked (else SIZE_MAX). */
static int parse_op(struct put_ops *po, struct mpread *r, struct op *op, size_t *off, char *err,
                    size_t errlen)
{
	const uint8_t *fields = NULL, *del = NULL;
	size_t fields_len = 0, del_len = 0;
	size_t n;
	int have_coll = 0, have_id = 0, canonical = 0;

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
		if (!read_str(r, &key, &key_len) ||
		    !value_valid_utf8((const uint8_t *)key, key_len)) {
			snprintf(err, errlen, "the op is not a well-formed map");
			return LOKET_E_MALFORMED;
		}
		/* Canonical fields, the common case, are checked in the one pass that finds their
		 * end. */
		if (str_is(key, key_len, "fields") &&
		    changeset_check_fields_at(r->p, (size_t)(r->end - r->p), &at_len, NULL, 0) ==
		        0) {
			fields = r->p;
			fields_len = at_len;
			canonical = 1;
			r->p += at_len;
			continue;
		}
		if (!skip_value(r, &at, &at_len)) {
			snprintf(err, errlen, "the op is not a well-formed map");
			return LOKET_E_MALFORMED;
		}
		struct mpread v = mpread_init(at, at_len);
		if (str_is(key, key_len, "coll")) {
			have_coll = read_str(&v, &op->coll, &op->coll_len);
		} else if (str_is(key, key_len, "id")) {
			have_id = read_str(&v, &op->id, &op->id_len);
		} else if (str_is(key, key_len, "fields")) {
			fields = at;
			fields_len = at_len;
		} else if (str_is(key, key_len, "del")) {
			del = at;
			del_len = at_len;
		} else {
			char q[ERROR_QUOTE_SIZE];
			snprintf(err, errlen, "unknown key %s",
			         error_quote(q, sizeof(q), key, key_len));
			return LOKET_E_BAD_REQUEST;
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
	int rc = repack_fields(po, fields, fields_len, off, err, errlen);
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
