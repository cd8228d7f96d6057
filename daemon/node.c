/*
 * node: local writes and the state shared by the daemon's modules.
 *
 * A put request becomes one or more changesets of this node's chain, all in
 * one store transaction, committed (synchronous=FULL) before the reply: an
 * acknowledged write survives a crash, and a failed one leaves nothing.
 */
#include "daemon/node.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "common/log.h"
#include "common/paths.h"
#include "common/worker.h"
#include "desk/schema.h"
#include "proto/error.h"
#include "proto/limits.h"

/* Room for a changeset's header and signature beside its ops. */
#define CHANGESET_OVERHEAD 256u
/*
 * A changeset is sealed once its ops pass a quarter MiB (a single bigger op
 * still makes one, up to LOKET_MAX_CHANGESET_BYTES): signing one runs while
 * the ops of the next are applied, and only the last one's signature keeps
 * a request waiting, so it should be short.
 */
#define SEAL_BYTES (256u * 1024u)
/* Per-op framing beyond coll, id and fields. */
#define OP_OVERHEAD 16u

/*
 * A changeset sealed and being signed on a thread of its own, while the
 * loop thread applies the ops of the next one: signing hashes the whole
 * changeset twice (Ed25519), a fifth of a bulk write's time on one core.
 */
struct signing {
	int pending;   /* sealed, not yet stored */
	int on_thread; /* the node's signer is making the signature: worker_wait */
	const struct key *key;
	uint8_t *msg; /* what is signed: domain tag and body */
	size_t msg_len;
	uint8_t sig[CHANGESET_SIG_BYTES];
	struct changeset cs; /* its header; the ops are in the encoded body */
	size_t out;          /* its index in batch.sealed */
};

/* A changeset of this request: its bytes (signature last, once signed) and hash. */
struct sealed {
	msgpack_sbuffer bytes;
	uint8_t hash[32];
};

/*
 * A put request on its way to becoming changesets. Each op is applied to
 * the store as it is read, with the seq and hlc of the changeset it will
 * be signed into; the ops that changed something are gathered, and sealed
 * into that changeset when it is full or the request ends.
 */
struct batch {
	struct node *node;
	/* The end of this node's chain in the store: prev of the next sealed changeset. */
	uint64_t tip_seq;
	uint8_t tip_hash[32];
	/* The changeset being built: seq 0 until its first op. */
	struct changeset cs;
	struct op *cs_ops;
	size_t cs_bytes;
	struct signing signing;
	/* Sealed changesets, announced once the transaction is durable. */
	struct sealed *sealed;
	size_t n_sealed;
	size_t cap_sealed;
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
	n->signer = worker_start(); /* NULL: the loop thread signs */
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

	/*
	 * The member table only names keys for reads, so a node whose disk is
	 * full still comes up: it serves reads (a member not recorded yet shows
	 * by its key), its writes fail with the store's reason until there is
	 * room, and the next reload records the names.
	 */
	int named = store_set_member(n->store, n->self, cfg->name);
	for (size_t i = 0; named == 0 && i < cfg->n_members; i++)
		named = store_set_member(n->store, cfg->members[i].key, cfg->members[i].name);
	if (named != 0)
		log_warn("%s: cannot record the roster's names: %s; starting anyway: reads work, "
		         "writes fail while the store cannot grow; once there is room, `loket "
		         "reload` records the names",
		         path, store_errmsg(n->store));
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
	worker_stop(n->signer);
	store_close(n->store);
	key_free(n->key);
	config_free(n->cfg);
	free(n);
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

/* Copies the op's collection name, which passed changeset_valid_coll, as a C string. */
static void coll_name(const struct op *op, char out[LOKET_MAX_COLL_LEN + 1])
{
	memcpy(out, op->coll, op->coll_len);
	out[op->coll_len] = '\0';
}

/*
 * A put that changed something must follow its collection's field rules
 * (desk/schema.h) and refer only to entities this node holds. live says
 * whether the entity existed before the op.
 */
static int node_check_fields(struct node *n, const struct op *op, int live, char *err,
                             size_t errlen)
{
	char coll[LOKET_MAX_COLL_LEN + 1], why[512];

	coll_name(op, coll);
	int rc = schema_check_fields(coll, op->fields, op->fields_len, !live, why, sizeof(why));
	if (rc != 0) {
		snprintf(err, errlen, "%s", why);
		return rc;
	}
	struct ref_check r = {.n = n, .err = err, .errlen = errlen};
	return schema_each_ref_in(coll, op->fields, op->fields_len, ref_held, &r);
}

static int store_failed(struct node *n, int rc, char *err, size_t errlen)
{
	snprintf(err, errlen, "store: %s (%s)", loket_strerror(rc), store_errmsg(n->store));
	return rc < 0 ? rc : LOKET_E_STORE;
}

/* Starts the next changeset of this node's chain: the seq after the last sealed one, an hlc. */
static void batch_start(struct batch *b)
{
	b->cs.seq = (b->signing.pending ? b->signing.cs.seq : b->tip_seq) + 1;
	b->cs.hlc = hlc_next(&b->node->hlc, hlc_wall_ms());
	b->cs.n_ops = 0;
	b->cs_bytes = 0;
}

static void sign(void *arg)
{
	struct signing *sg = arg;
	key_sign(sg->key, sg->msg, sg->msg_len, sg->sig);
}

/* Waits for the signature of the sealed changeset and stores it; its ops are applied already. */
static int batch_store_sealed(struct batch *b, char *err, size_t errlen)
{
	struct signing *sg = &b->signing;
	if (!sg->pending)
		return 0;
	if (sg->on_thread)
		worker_wait(b->node->signer);
	sg->pending = sg->on_thread = 0;
	free(sg->msg);
	sg->msg = NULL;
	struct sealed *out = &b->sealed[sg->out];
	msgpack_sbuffer_write(&out->bytes, (const char *)sg->sig, sizeof(sg->sig));
	int rc = store_append_applied(b->node->store, (const uint8_t *)out->bytes.data,
	                              out->bytes.size, &sg->cs, out->hash);
	if (rc != 0)
		return store_failed(b->node, rc, err, errlen);
	b->tip_seq = sg->cs.seq;
	memcpy(b->tip_hash, out->hash, sizeof(b->tip_hash));
	return 0;
}

/*
 * Seals the changeset being built: encodes it and starts its signature on
 * the node's signer, or makes it here when it is the request's last
 * (last), which is waited for at once.
 */
static int batch_seal(struct batch *b, int last, char *err, size_t errlen)
{
	struct signing *sg = &b->signing;
	if (b->cs.seq == 0 || b->cs.n_ops == 0) {
		b->cs.seq = 0; /* nothing changed: the seq is not used */
		return 0;
	}
	/* Its prev is the hash of the one sealed before, which must be signed and stored first. */
	int rc = batch_store_sealed(b, err, errlen);
	if (rc != 0)
		return rc;
	memcpy(b->cs.prev, b->tip_hash, sizeof(b->cs.prev));

	if (b->n_sealed == b->cap_sealed) {
		size_t cap = b->cap_sealed ? 2 * b->cap_sealed : 4;
		struct sealed *more = realloc(b->sealed, cap * sizeof(*more));
		if (!more)
			abort();
		b->sealed = more;
		b->cap_sealed = cap;
	}
	msgpack_sbuffer *out = &b->sealed[b->n_sealed++].bytes;
	msgpack_sbuffer_init(out);
	/* put_ops_parse checked each op's fields; they have not moved since. */
	rc = changeset_encode_checked(&b->cs, out);
	if (rc != 0) {
		snprintf(err, errlen, "cannot encode changeset: %s", loket_strerror(rc));
		return rc;
	}
	if (changeset_signing_input((const uint8_t *)out->data, out->size, &sg->msg, &sg->msg_len))
		abort();
	sg->cs = b->cs;
	sg->cs.ops = NULL;
	sg->out = b->n_sealed - 1;
	sg->pending = 1;
	sg->key = b->node->key;
	sg->on_thread = !last && b->node->signer;
	if (sg->on_thread)
		worker_run(b->node->signer, sign, sg);
	else
		sign(sg);
	b->cs.seq = 0;
	return 0;
}

static void batch_release(struct batch *b)
{
	if (b->signing.on_thread)
		worker_wait(b->node->signer);
	free(b->signing.msg);
	for (size_t i = 0; i < b->n_sealed; i++)
		msgpack_sbuffer_destroy(&b->sealed[i].bytes);
	free(b->sealed);
	free(b->cs_ops);
}

/* Applies one op to the store; *changed says whether it joined the changeset. */
static int batch_add(struct batch *b, const struct op *op, int *changed, char *err, size_t errlen)
{
	struct node *n = b->node;
	size_t size = op->coll_len + op->id_len + op->fields_len + OP_OVERHEAD;
	char coll[LOKET_MAX_COLL_LEN + 1], why[512];
	int live = 0, rc;

	coll_name(op, coll);
	if ((rc = schema_check_coll(coll, why, sizeof(why))) != 0) {
		snprintf(err, errlen, "%s", why);
		return rc;
	}
	if (b->cs.n_ops > 0 &&
	    (b->cs.n_ops == LOKET_MAX_OPS || b->cs_bytes + size + CHANGESET_OVERHEAD > SEAL_BYTES))
		if ((rc = batch_seal(b, 0, err, errlen)) != 0)
			return rc;
	if (b->cs.seq == 0)
		batch_start(b);
	rc = store_apply_local(n->store, n->self, op, b->cs.seq, b->cs.hlc, changed, &live);
	if (rc != 0)
		return store_failed(n, rc, err, errlen);
	if (!*changed)
		return 0;
	/* Applied already: a refusal here rolls the whole request back. */
	if (op->kind == OP_PUT && (rc = node_check_fields(n, op, live, err, errlen)) != 0)
		return rc;
	b->cs_ops[b->cs.n_ops++] = *op;
	b->cs_bytes += size;
	return 0;
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

	struct batch b = {
	    .node = n,
	    .cs = {.version = CHANGESET_VERSION,
	           .federation = n->cfg->federation,
	           .federation_len = strlen(n->cfg->federation)},
	};
	memcpy(b.cs.origin, n->self, sizeof(b.cs.origin));
	b.cs_ops = calloc(n_ops, sizeof(*b.cs_ops));
	if (!b.cs_ops)
		abort();
	b.cs.ops = b.cs_ops;

	int rc = store_begin(n->store);
	if (rc != 0) {
		snprintf(err, errlen, "store: cannot begin: %s", store_errmsg(n->store));
		goto out;
	}
	if ((rc = store_head(n->store, n->self, &b.tip_seq, b.tip_hash)) != 0) {
		rc = store_failed(n, rc, err, errlen);
		store_rollback(n->store);
		goto out;
	}
	size_t changed = 0;
	for (size_t i = 0; i < n_ops; i++) {
		int changes = 0;
		rc = batch_add(&b, &ops[i], &changes, err, errlen);
		if (rc != 0) {
			*bad_index = (long)i;
			store_rollback(n->store);
			goto out;
		}
		changed += changes != 0;
	}
	rc = batch_seal(&b, 1, err, errlen);
	if (rc == 0)
		rc = batch_store_sealed(&b, err, errlen);
	if (rc == 0) {
		rc = store_commit(n->store);
		if (rc != 0)
			snprintf(err, errlen, "store: cannot commit: %s", store_errmsg(n->store));
	}
	if (rc != 0) {
		store_rollback(n->store);
		goto out;
	}

	for (size_t i = 0; n->on_accepted && i < b.n_sealed; i++)
		n->on_accepted((const uint8_t *)b.sealed[i].bytes.data, b.sealed[i].bytes.size,
		               b.sealed[i].hash, n->on_accepted_data);
	*result = json_pack("{s:I, s:I, s:I, s:I}", "seq", (json_int_t)(b.n_sealed ? b.tip_seq : 0),
	                    "changesets", (json_int_t)b.n_sealed, "changed", (json_int_t)changed,
	                    "unchanged", (json_int_t)(n_ops - changed));
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
