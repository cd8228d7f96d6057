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

/* A put request on its way to becoming changesets. */
struct batch {
	struct node *node;
	const struct op *ops;
	size_t n;
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
	const struct op *op = &b->ops[index];
	size_t mask = b->touched_cap - 1;
	for (size_t i = (size_t)entity_hash(op) & mask;; i = (i + 1) & mask) {
		if (b->touched[i] == SIZE_MAX) {
			b->touched[i] = index;
			return 0;
		}
		if (same_entity(&b->ops[b->touched[i]], op))
			return 1;
	}
}

static int batch_touched(struct batch *b, size_t index)
{
	const struct op *op = &b->ops[index];
	size_t mask = b->touched_cap - 1;
	for (size_t i = (size_t)entity_hash(op) & mask; b->touched[i] != SIZE_MAX;
	     i = (i + 1) & mask)
		if (same_entity(&b->ops[b->touched[i]], op))
			return 1;
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

/*
 * Holds a local op to the schema of its collection (daemon/schema.h): the
 * collection must exist, and a put that changes something must follow the
 * collection's field rules and refer only to entities this node holds.
 * live says whether the entity exists now: in the store, which already
 * holds any earlier op of the same request on it.
 */
static int node_check_schema(struct node *n, const struct op *op, int changes, int live, char *err,
                             size_t errlen)
{
	char coll[LOKET_MAX_COLL_LEN + 1], why[512];

	/* The op's coll passed changeset_valid_coll: short, and no NUL in it. */
	memcpy(coll, op->coll, op->coll_len);
	coll[op->coll_len] = '\0';
	int rc = schema_check_coll(coll, why, sizeof(why));
	if (rc == 0 && changes && op->kind == OP_PUT) {
		rc = schema_check_fields(coll, op->fields, op->fields_len, !live, why, sizeof(why));
		if (rc == 0) {
			struct ref_check r = {.n = n, .err = err, .errlen = errlen};
			return schema_each_ref_in(coll, op->fields, op->fields_len, ref_held, &r);
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
}

int node_put(struct node *n, const struct op *ops, size_t n_ops, json_t **result, long *bad_index,
             char *err, size_t errlen)
{
	*bad_index = -1;
	err[0] = '\0';
	if (n->writes_blocked) {
		snprintf(err, errlen, "%s", n->writes_blocked);
		return LOKET_E_UNAVAILABLE;
	}
	if (n_ops == 0 || n_ops > LOKET_MAX_OPS) {
		snprintf(err, errlen, "\"ops\" must be an array of 1 to %u ops", LOKET_MAX_OPS);
		return LOKET_E_BAD_REQUEST;
	}

	struct batch b = {.node = n, .ops = ops, .n = n_ops};
	b.cs_ops = calloc(b.n, sizeof(*b.cs_ops));
	for (b.touched_cap = 16; b.touched_cap < 2 * b.n; b.touched_cap *= 2)
		;
	b.touched = malloc(b.touched_cap * sizeof(*b.touched));
	if (!b.cs_ops || !b.touched)
		abort();
	for (size_t i = 0; i < b.touched_cap; i++)
		b.touched[i] = SIZE_MAX;

	int rc = store_begin(n->store);
	if (rc != 0) {
		snprintf(err, errlen, "store: cannot begin: %s", store_errmsg(n->store));
		goto out;
	}
	size_t changed = 0, unchanged = 0;
	for (size_t i = 0; i < b.n; i++) {
		const struct op *op = &b.ops[i];
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
			rc = store_op_changes(n->store, n->self, op, &changes, &live);
		/* An unchanged op matches what the store holds, checked when written. */
		if (rc == 0)
			rc = node_check_schema(n, op, changes, live, err, errlen);
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
