/*
 * node: local writes and the state shared by the daemon's modules.
 *
 * A put request becomes one or more changesets of this node's chain, all in
 * one store transaction, committed (synchronous=FULL) before the reply: an
 * acknowledged write survives a crash, and a failed one leaves nothing.
 */
#include "node.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <sodium.h>

#include "common/log.h"
#include "common/paths.h"
#include "proto/error.h"
#include "proto/limits.h"
#include "daemon/schema.h"
#include "proto/value.h"

/* Room for a changeset's header and signature beside its ops. */
#define CHANGESET_OVERHEAD 256u
/* Per-op framing beyond coll, id and fields. */
#define OP_OVERHEAD 16u

/* One op of a request, validated and packed. */
struct pending_op {
	struct op op;
	size_t fields_off; /* into the batch's packed fields */
};

/* A put request on its way to becoming changesets. */
struct batch {
	struct node *node;
	size_t n;
	struct pending_op *ops;
	msgpack_sbuffer fields;
	/* The ops of the changeset being built. */
	struct op *cs_ops;
	size_t cs_n;
	size_t cs_bytes;
	/* Entities touched by cs_ops: open addressing over op indices. */
	size_t *touched;
	size_t touched_cap;
	/* Signed changesets, announced once the transaction is durable. */
	msgpack_sbuffer *signed_cs;
	size_t n_signed;
	size_t cap_signed;
	uint64_t last_seq;
};

int node_open_take(struct config *cfg, struct key *key, struct node **out, char *err, size_t errlen)
{
	struct node *n = calloc(1, sizeof(*n));
	if (!n) {
		config_free(cfg);
		key_free(key);
		return -ENOMEM;
	}
	n->cfg = cfg;
	n->key = key;
	key_public(key, n->self);
	config_key_encode(n->self, n->self_b64);

	int rc = 0;
	if (mkdir(cfg->data, 0750) != 0 && errno != EEXIST) {
		rc = -errno;
		snprintf(err, errlen, "%s: cannot create data directory: %s", cfg->data,
		         strerror(errno));
		goto fail;
	}
	char path[PATH_MAX];
	int len = snprintf(path, sizeof(path), "%s/%s", cfg->data, LOKET_STORE_FILE);
	if (len < 0 || (size_t)len >= sizeof(path)) {
		rc = -ENAMETOOLONG;
		snprintf(err, errlen, "%s: data directory path too long", cfg->data);
		goto fail;
	}
	rc = store_open(path, STORE_CREATE, &n->store, err, errlen);
	if (rc != 0)
		goto fail;

	rc = store_set_member(n->store, n->self, cfg->name);
	for (size_t i = 0; rc == 0 && i < cfg->n_members; i++)
		rc = store_set_member(n->store, cfg->members[i].key, cfg->members[i].name);
	if (rc != 0) {
		snprintf(err, errlen, "%s: cannot record the roster: %s", path,
		         store_errmsg(n->store));
		goto fail;
	}
	*out = n;
	return 0;
fail:
	node_free(n);
	return rc;
}

void node_free(struct node *n)
{
	if (!n)
		return;
	store_close(n->store);
	key_free(n->key);
	config_free(n->cfg);
	free(n);
}

static uint64_t entity_hash(const struct op *op)
{
	uint64_t h = 1469598103934665603u;
	for (size_t i = 0; i < op->coll_len; i++)
		h = (h ^ (uint8_t)op->coll[i]) * 1099511628211u;
	h = (h ^ 0xff) * 1099511628211u;
	for (size_t i = 0; i < op->id_len; i++)
		h = (h ^ (uint8_t)op->id[i]) * 1099511628211u;
	return h;
}

static int same_entity(const struct op *a, const struct op *b)
{
	return a->coll_len == b->coll_len && a->id_len == b->id_len &&
	       memcmp(a->coll, b->coll, a->coll_len) == 0 && memcmp(a->id, b->id, a->id_len) == 0;
}

/* Marks op as part of the changeset being built; 1 if it already was. */
static int batch_touch(struct batch *b, size_t index)
{
	const struct op *op = &b->ops[index].op;
	size_t mask = b->touched_cap - 1;
	for (size_t i = (size_t)entity_hash(op) & mask;; i = (i + 1) & mask) {
		if (b->touched[i] == SIZE_MAX) {
			b->touched[i] = index;
			return 0;
		}
		if (same_entity(&b->ops[b->touched[i]].op, op))
			return 1;
	}
}

static int batch_touched(struct batch *b, size_t index)
{
	const struct op *op = &b->ops[index].op;
	size_t mask = b->touched_cap - 1;
	for (size_t i = (size_t)entity_hash(op) & mask; b->touched[i] != SIZE_MAX;
	     i = (i + 1) & mask)
		if (same_entity(&b->ops[b->touched[i]].op, op))
			return 1;
	return 0;
}

static const char *json_string_field(const json_t *obj, const char *key, size_t *len)
{
	const json_t *v = json_object_get(obj, key);
	if (!json_is_string(v))
		return NULL;
	*len = json_string_length(v);
	return json_string_value(v);
}

/* Checks one op of a request and packs its fields into the batch. */
static int batch_parse_op(struct batch *b, size_t i, const json_t *jop, char *err, size_t errlen)
{
	struct pending_op *p = &b->ops[i];
	if (!json_is_object(jop)) {
		snprintf(err, errlen, "the op is not a map");
		return LOKET_E_BAD_REQUEST;
	}
	const char *key;
	const json_t *val;
	json_object_foreach((json_t *)jop, key, val)
	{
		if (strcmp(key, "coll") != 0 && strcmp(key, "id") != 0 &&
		    strcmp(key, "fields") != 0 && strcmp(key, "del") != 0) {
			snprintf(err, errlen, "unknown key \"%.32s\"", key);
			return LOKET_E_BAD_REQUEST;
		}
	}
	p->op.coll = json_string_field(jop, "coll", &p->op.coll_len);
	if (!p->op.coll || !changeset_valid_coll(p->op.coll, p->op.coll_len)) {
		snprintf(err, errlen,
		         "\"coll\" must be a collection name ([a-z][a-z0-9_]*, at most "
		         "%u bytes)",
		         LOKET_MAX_COLL_LEN);
		return LOKET_E_BAD_REQUEST;
	}
	p->op.id = json_string_field(jop, "id", &p->op.id_len);
	if (!p->op.id || !changeset_valid_id(p->op.id, p->op.id_len)) {
		snprintf(err, errlen,
		         "\"id\" must be an entity id ([A-Za-z0-9._:@-], at most %u "
		         "bytes)",
		         LOKET_MAX_ID_LEN);
		return LOKET_E_BAD_REQUEST;
	}
	const json_t *fields = json_object_get(jop, "fields");
	const json_t *del = json_object_get(jop, "del");
	if (del && !json_is_null(del)) {
		if (!json_is_true(del) || (fields && !json_is_null(fields))) {
			snprintf(err, errlen, "\"del\" must be true and comes without fields");
			return LOKET_E_BAD_REQUEST;
		}
		p->op.kind = OP_DEL;
		return 0;
	}
	if (!json_is_object(fields) || json_object_size(fields) == 0 ||
	    json_object_size(fields) > LOKET_MAX_FIELDS) {
		snprintf(err, errlen, "\"fields\" must be a map of 1 to %u fields",
		         LOKET_MAX_FIELDS);
		return LOKET_E_BAD_REQUEST;
	}
	p->op.kind = OP_PUT;
	p->fields_off = b->fields.size;
	msgpack_packer pk;
	msgpack_packer_init(&pk, &b->fields, msgpack_sbuffer_write);
	char why[256];
	int rc = value_pack_json(&pk, fields, LOKET_MAX_DEPTH, why, sizeof(why));
	if (rc != 0) {
		snprintf(err, errlen, "%s", why);
		return rc;
	}
	p->op.fields_len = b->fields.size - p->fields_off;
	/* What a changeset would refuse, refused here with the op's index. */
	rc = changeset_check_fields((const uint8_t *)b->fields.data + p->fields_off,
	                            p->op.fields_len, why, sizeof(why));
	if (rc != 0) {
		snprintf(err, errlen, "%s", why);
		return rc;
	}
	return 0;
}

/* A reference in a local write must name an entity this node holds. */
struct ref_check {
	struct node *n;
	char *err;
	size_t errlen;
};

static int ref_held(void *arg, const char *field, const char *coll, const char *owner,
                    const char *id)
{
	struct ref_check *r = arg;
	json_t *found = NULL;
	int rc = store_get(r->n->store, coll, id, owner, &found);
	if (rc == 0 && json_array_size(found) == 0)
		rc = LOKET_E_NOT_FOUND;
	json_decref(found);
	if (rc == LOKET_E_NOT_FOUND)
		snprintf(r->err, r->errlen,
		         "field \"%s\" refers to %s/%s/%s, which this node does not hold", field,
		         coll, owner, id);
	return rc;
}

/* Only the collections of the directory and the board exist. */
static int node_check_coll(const struct op *op, char *err, size_t errlen)
{
	char why[256];
	int rc = schema_check_coll(op->coll, why, sizeof(why));
	if (rc != 0)
		snprintf(err, errlen, "%s", why);
	return rc;
}

/*
 * Holds a local op that changes something to the schema of its collection
 * (daemon/schema.h) and checks what it refers to. live says whether the
 * entity exists now: in the store, which already holds any earlier op of
 * the same request on it.
 */
static int node_check_schema(struct node *n, const struct op *op, int live, const json_t *jop,
                             char *err, size_t errlen)
{
	char why[512];
	int rc = schema_check_coll(op->coll, why, sizeof(why));
	if (rc == 0 && op->kind == OP_PUT) {
		const json_t *fields = json_object_get(jop, "fields");
		rc = schema_check_put(op->coll, fields, !live, why, sizeof(why));
		if (rc == 0) {
			struct ref_check r = {.n = n, .err = err, .errlen = errlen};
			return schema_each_ref(op->coll, fields, ref_held, &r);
		}
	}
	if (rc != 0)
		snprintf(err, errlen, "%s", why);
	return rc;
}

/* Signs the ops gathered so far into the next changeset of this node's chain. */
static int batch_flush(struct batch *b, char *err, size_t errlen)
{
	struct node *n = b->node;
	if (b->cs_n == 0)
		return 0;

	struct changeset cs = {
	    .version = CHANGESET_VERSION,
	    .federation = n->cfg->federation,
	    .federation_len = strlen(n->cfg->federation),
	    .hlc = hlc_next(&n->hlc, hlc_wall_ms()),
	    .n_ops = b->cs_n,
	    .ops = b->cs_ops,
	};
	memcpy(cs.origin, n->self, sizeof(cs.origin));
	int rc = store_head(n->store, n->self, &cs.seq, cs.prev);
	if (rc != 0)
		goto store_failed;
	cs.seq++;

	if (b->n_signed == b->cap_signed) {
		size_t cap = b->cap_signed ? 2 * b->cap_signed : 4;
		msgpack_sbuffer *more = realloc(b->signed_cs, cap * sizeof(*more));
		if (!more)
			abort();
		b->signed_cs = more;
		b->cap_signed = cap;
	}
	msgpack_sbuffer *out = &b->signed_cs[b->n_signed++];
	msgpack_sbuffer_init(out);
	rc = changeset_encode(&cs, out);
	if (rc != 0) {
		snprintf(err, errlen, "cannot encode changeset: %s", loket_strerror(rc));
		return rc;
	}
	uint8_t *msg;
	size_t msg_len;
	rc = changeset_signing_input((const uint8_t *)out->data, out->size, &msg, &msg_len);
	if (rc != 0)
		abort();
	uint8_t sig[CHANGESET_SIG_BYTES];
	key_sign(n->key, msg, msg_len, sig);
	free(msg);
	msgpack_sbuffer_write(out, (const char *)sig, sizeof(sig));

	rc = store_append(n->store, (const uint8_t *)out->data, out->size, &cs);
	if (rc != 0)
		goto store_failed;
	b->last_seq = cs.seq;
	b->cs_n = 0;
	b->cs_bytes = 0;
	for (size_t i = 0; i < b->touched_cap; i++)
		b->touched[i] = SIZE_MAX;
	return 0;

store_failed:
	snprintf(err, errlen, "store: %s (%s)", loket_strerror(rc), store_errmsg(n->store));
	return rc < 0 ? rc : LOKET_E_STORE;
}

static void batch_release(struct batch *b)
{
	for (size_t i = 0; i < b->n_signed; i++)
		msgpack_sbuffer_destroy(&b->signed_cs[i]);
	free(b->signed_cs);
	free(b->touched);
	free(b->cs_ops);
	free(b->ops);
	msgpack_sbuffer_destroy(&b->fields);
}

int node_put(struct node *n, const json_t *ops, json_t **result, long *bad_index, char *err,
             size_t errlen)
{
	*bad_index = -1;
	err[0] = '\0';
	if (n->writes_blocked) {
		snprintf(err, errlen, "%s", n->writes_blocked);
		return LOKET_E_UNAVAILABLE;
	}
	if (!json_is_array(ops) || json_array_size(ops) == 0 ||
	    json_array_size(ops) > LOKET_MAX_OPS) {
		snprintf(err, errlen, "\"ops\" must be an array of 1 to %u ops", LOKET_MAX_OPS);
		return LOKET_E_BAD_REQUEST;
	}

	struct batch b = {.node = n, .n = json_array_size(ops)};
	msgpack_sbuffer_init(&b.fields);
	b.ops = calloc(b.n, sizeof(*b.ops));
	b.cs_ops = calloc(b.n, sizeof(*b.cs_ops));
	for (b.touched_cap = 16; b.touched_cap < 2 * b.n; b.touched_cap *= 2)
		;
	b.touched = malloc(b.touched_cap * sizeof(*b.touched));
	if (!b.ops || !b.cs_ops || !b.touched)
		abort();
	for (size_t i = 0; i < b.touched_cap; i++)
		b.touched[i] = SIZE_MAX;

	int rc = 0;
	for (size_t i = 0; i < b.n; i++) {
		rc = batch_parse_op(&b, i, json_array_get(ops, i), err, errlen);
		if (rc != 0) {
			*bad_index = (long)i;
			goto out;
		}
	}
	/* The packed fields no longer move: point the ops at them. */
	for (size_t i = 0; i < b.n; i++)
		if (b.ops[i].op.kind == OP_PUT)
			b.ops[i].op.fields = (const uint8_t *)b.fields.data + b.ops[i].fields_off;

	rc = store_begin(n->store);
	if (rc != 0) {
		snprintf(err, errlen, "store: cannot begin: %s", store_errmsg(n->store));
		goto out;
	}
	size_t changed = 0, unchanged = 0;
	for (size_t i = 0; i < b.n; i++) {
		const struct op *op = &b.ops[i].op;
		size_t size = op->coll_len + op->id_len + op->fields_len + OP_OVERHEAD;
		/*
		 * Whether an op changes anything is judged against the store, so
		 * an entity already in the changeset being built sends that
		 * changeset to the store first.
		 */
		if (batch_touched(&b, i) || b.cs_n == LOKET_MAX_OPS ||
		    b.cs_bytes + size + CHANGESET_OVERHEAD > LOKET_MAX_CHANGESET_BYTES)
			rc = batch_flush(&b, err, errlen);
		int changes = 0, live = 0;
		if (rc == 0)
			rc = node_check_coll(op, err, errlen);
		if (rc == 0)
			rc = store_op_changes(n->store, n->self, op, &changes, &live);
		/* An unchanged op matches what the store holds, checked when written. */
		if (rc == 0 && changes)
			rc = node_check_schema(n, op, live, json_array_get(ops, i), err, errlen);
		if (rc != 0) {
			*bad_index = (long)i;
			if (err[0] == '\0')
				snprintf(err, errlen, "store: %s", store_errmsg(n->store));
			store_rollback(n->store);
			goto out;
		}
		if (!changes) {
			unchanged++;
			continue;
		}
		changed++;
		b.cs_ops[b.cs_n++] = *op;
		b.cs_bytes += size;
		batch_touch(&b, i);
	}
	rc = batch_flush(&b, err, errlen);
	if (rc == 0) {
		rc = store_commit(n->store);
		if (rc != 0)
			snprintf(err, errlen, "store: cannot commit: %s", store_errmsg(n->store));
	}
	if (rc != 0) {
		store_rollback(n->store);
		goto out;
	}

	for (size_t i = 0; n->on_accepted && i < b.n_signed; i++)
		n->on_accepted((const uint8_t *)b.signed_cs[i].data, b.signed_cs[i].size,
		               n->on_accepted_data);
	*result = json_pack("{s:I, s:I, s:I}", "seq", (json_int_t)b.last_seq, "changed",
	                    (json_int_t)changed, "unchanged", (json_int_t)unchanged);
	if (!*result)
		abort();
out:
	batch_release(&b);
	return rc;
}

int node_status(struct node *n, json_t **out)
{
	json_t *status;
	int rc = store_status(n->store, &status);
	if (rc != 0)
		return rc;
	json_object_set_new(status, "name", json_string(n->cfg->name));
	json_object_set_new(status, "key", json_string(n->self_b64));
	json_object_set_new(status, "federation", json_string(n->cfg->federation));
	*out = status;
	return 0;
}
