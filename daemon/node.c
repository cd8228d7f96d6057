/*
 * node: local writes and the state shared by the daemon's modules.
 *
 * A put request becomes one or more changesets of this node's chain, all in
 * one store transaction, committed (synchronous=FULL) before the reply: an
 * acknowledged write survives a crash, and a failed one leaves nothing.
 *
 * Never fork yourself. The node's chain must never have two changesets of
 * one seq, or every other node freezes it. The store alone cannot tell a
 * clean restart from a store restored from an older backup or wiped (both
 * look like a shorter chain), so after each own commit, and before the
 * changesets are sent, the new head is written to the record beside the
 * key (common/own_head.h). At start the two are compared (own_head_start):
 * equal opens writes; a store ahead of the record (a crash before the
 * record was written) updates the record; a store behind it waits until
 * the node has taken its own changesets back from a peer
 * (node_own_chain_changed). The store's meta key own_head_record tells a
 * store that never had a record (made by a loket before records) from one
 * whose record was lost.
 */
#include "daemon/node.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>

#include "common/lockfile.h"
#include "common/log.h"
#include "common/paths.h"
#include "common/rotate.h"
#include "common/worker.h"
#include "desk/schema.h"
#include "proto/error.h"
#include "proto/limits.h"

/* The store's meta key saying a record of the own head was made for this store. */
#define META_OWN_HEAD_RECORD "own_head_record"

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

/* ---- never fork yourself: the record of the own head ---- */

/* The first 12 hex digits of a hash, enough for people to compare two. */
static void short_hex(const uint8_t h[32], char out[13])
{
	static const char digits[] = "0123456789abcdef";
	for (size_t i = 0; i < 6; i++) {
		out[2 * i] = digits[h[i] >> 4];
		out[2 * i + 1] = digits[h[i] & 15];
	}
	out[12] = '\0';
}

static void writes_open(struct node *n)
{
	n->writes = NODE_WRITES_OPEN;
	n->writes_blocked = NULL;
	n->writes_reason[0] = '\0';
	n->wait_case = NULL;
}

__attribute__((format(printf, 3, 4))) static void
writes_refuse(struct node *n, enum node_writes why, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(n->writes_reason, sizeof(n->writes_reason), fmt, ap);
	va_end(ap);
	n->writes = why;
	n->writes_blocked = n->writes_reason;
}

const char *node_writes_refused(const struct node *n)
{
	return n->writes_blocked;
}

/* Whether the store holds any changeset of any origin. */
static int any_head(void *arg, const uint8_t origin[32], uint64_t seq, const uint8_t hash[32])
{
	(void)arg;
	(void)origin;
	(void)hash;
	return seq > 0;
}

/* The hash of this node's own changeset seq as the store holds it (seq 0: zeros). */
static int own_hash_at(struct node *n, uint64_t seq, uint8_t out[32])
{
	if (seq == 0) {
		memset(out, 0, 32);
		return 0;
	}
	uint8_t *bytes;
	size_t len;
	int rc = store_changeset(n->store, n->self, seq, &bytes, &len);
	if (rc != 0)
		return rc;
	changeset_hash(bytes, len, out);
	free(bytes);
	return 0;
}

/* Remembers in the store that a record was made for it (see the top of this file). */
static void mark_store_recorded(struct node *n)
{
	int64_t v = 0;
	if (store_meta_get_int(n->store, META_OWN_HEAD_RECORD, &v) == 0 && v == 1)
		return;
	if (store_meta_set_int(n->store, META_OWN_HEAD_RECORD, 1) != 0)
		log_warn("own head: cannot mark the store as having a record: %s",
		         store_errmsg(n->store));
}

/* Writes (seq, hash) to the record; on failure refuses writes with the reason. */
static int record_write(struct node *n, uint64_t seq, const uint8_t hash[32])
{
	char why[PATH_MAX + 160];
	if (own_head_write(n->own_head, seq, hash, why, sizeof(why)) == 0)
		return 0;
	log_error("own head: %s; local writes are refused from now on", why);
	writes_refuse(n, NODE_WRITES_REFUSED,
	              "%s after seq %" PRIu64 " (that write itself is durable); local writes are "
	              "refused until the record can be written: fix it, then restart loketd or run "
	              "`loket resume --force`",
	              why, seq);
	return -1;
}

static void refuse_forked(struct node *n, uint64_t seq, const uint8_t recorded[32],
                          const uint8_t held[32])
{
	char r[13], h[13];
	short_hex(recorded, r);
	short_hex(held, h);
	writes_refuse(n, NODE_WRITES_FORKED,
	              "this node's own chain in the store differs from the one it recorded "
	              "signing at seq %" PRIu64 " (recorded hash %s..., the store holds %s...): "
	              "its key has signed two histories; it must never sign again: give the node "
	              "a new key (and a new roster entry)",
	              seq, r, h);
	log_error("own head: FORK of this node's own chain: %s", n->writes_reason);
}

/*
 * A fork proof of this node's own key in the store: the key signed two
 * changesets for one seq, and every node froze this chain before it
 * (proto/SYNC.md). Nothing may be signed with that key again. 1 if so.
 */
static int own_fork(struct node *n)
{
	uint64_t seq = 0;
	if (n->writes == NODE_WRITES_FORKED)
		return 1;
	if (store_fork_seq(n->store, n->self, &seq) != 0 || seq == 0)
		return 0;
	writes_refuse(n, NODE_WRITES_FORKED,
	              "the store holds a fork proof of this node's own key at seq %" PRIu64
	              ": the key signed two different changesets for that seq, and every node "
	              "froze this node's chain before it; it must never sign again: give the node "
	              "a new key (and a new roster entry)",
	              seq);
	log_error("own head: FORK of this node's own chain: %s", n->writes_reason);
	return 1;
}

/* The sentence for a store whose own chain is behind the record. */
static void refuse_waiting(struct node *n, uint64_t store_seq)
{
	char r[13];
	short_hex(n->own_head->hash, r);
	writes_refuse(n, NODE_WRITES_WAIT,
	              "local writes wait: this node's store holds its own chain up to seq %" PRIu64
	              ", but %s records that it signed up to seq %" PRIu64 " (hash %s...): %s. "
	              "It refuses to sign until it has taken its own changesets "
	              "%" PRIu64 "..%" PRIu64 " back from a peer; `loket peers` shows who is up; "
	              "`loket resume --force` overrides when no peer holds them",
	              store_seq, n->own_head_path, n->own_head->seq, r, n->wait_case, store_seq + 1,
	              n->own_head->seq);
}

/*
 * Compares the store's own chain (seq, hash) with a valid record. at_start
 * only changes what is logged.
 */
static void compare_with_record(struct node *n, uint64_t seq, const uint8_t hash[32], int held,
                                int at_start)
{
	struct own_head *h = n->own_head;
	uint8_t at[32];
	char hx[13];

	if (seq < h->seq) {
		if (at_start)
			n->wait_case =
			    held ? "its store is older than its own chain (restored from an "
			           "older backup, or wiped and partly taken back)"
			         : "its data directory was wiped (the store holds no "
			           "changesets)";
		refuse_waiting(n, seq);
		if (at_start)
			log_warn("own head: %s", n->writes_reason);
		return;
	}
	int rc = 0;
	if (seq == h->seq)
		memcpy(at, hash, 32);
	else
		rc = own_hash_at(n, h->seq, at);
	if (rc != 0) {
		writes_refuse(n, NODE_WRITES_REFUSED,
		              "cannot read this node's own changeset %" PRIu64
		              " from the store: %s",
		              h->seq, store_errmsg(n->store));
		log_error("own head: %s", n->writes_reason);
		return;
	}
	if (memcmp(at, h->hash, 32) != 0) {
		refuse_forked(n, h->seq, h->hash, at);
		return;
	}
	uint64_t was = h->seq;
	if (seq > was && record_write(n, seq, hash) != 0)
		return;
	enum node_writes before = n->writes;
	writes_open(n);
	short_hex(hash, hx);
	if (at_start && seq == was)
		log_info("own head: the store's own chain ends at seq %" PRIu64 " (hash %s...) "
		         "as %s records; local writes are open",
		         seq, hx, n->own_head_path);
	else if (at_start)
		log_info("own head: the store's own chain ends at seq %" PRIu64 ", %s recorded "
		         "seq %" PRIu64 " (a crash before the record was written): record "
		         "updated; local writes are open",
		         seq, n->own_head_path, was);
	else if (before == NODE_WRITES_WAIT)
		log_info("own head: this node has its own chain back up to seq %" PRIu64 " (hash "
		         "%s..., as recorded); local writes are open",
		         seq, hx);
}

/* No record, or an empty file: a new node, a store from before records, or a lost record. */
static void start_without_record(struct node *n, uint64_t seq, const uint8_t hash[32], int held)
{
	int64_t had = 0;
	int rc = store_meta_get_int(n->store, META_OWN_HEAD_RECORD, &had);
	char why[PATH_MAX + 160];

	if (held && rc == 0 && had) {
		writes_refuse(
		    n, NODE_WRITES_REFUSED,
		    "the record %s is %s beside a store that holds changesets: this node "
		    "cannot tell how far it has signed its own chain (the store has it up "
		    "to seq %" PRIu64 "); put the record back, or run `loket resume --force` "
		    "once you are sure no peer holds changesets of this node beyond seq "
		    "%" PRIu64,
		    n->own_head_path, n->own_head ? "empty" : "missing", seq, seq);
		log_warn("own head: %s", n->writes_reason);
		return;
	}
	if (rc != 0 && rc != LOKET_E_NOT_FOUND) {
		writes_refuse(n, NODE_WRITES_REFUSED, "cannot read the store's meta table: %s",
		              store_errmsg(n->store));
		log_error("own head: %s", n->writes_reason);
		return;
	}
	/* A new node (no changesets at all), or a store of a loket without records. */
	if (n->own_head)
		rc = own_head_write(n->own_head, seq, hash, why, sizeof(why));
	else
		rc = own_head_create(n->own_head_path, seq, hash, &n->own_head, why, sizeof(why));
	if (rc != 0) {
		writes_refuse(
		    n, NODE_WRITES_REFUSED,
		    "%s; loketd needs it to keep track of its own chain (create it empty, "
		    "mode 0600 and writable by loketd, e.g. `install -m 600 -o loket -g loket "
		    "/dev/null %s`, then restart loketd)",
		    why, n->own_head_path);
		log_error("own head: %s", n->writes_reason);
		return;
	}
	mark_store_recorded(n);
	writes_open(n);
	if (held)
		log_warn(
		    "own head: no record of this node's own head beside a store made without one: "
		    "%s made from the store's own head, seq %" PRIu64 "; local writes are open",
		    n->own_head_path, seq);
	else
		log_info("own head: a new node: %s made at seq %" PRIu64 "; local writes are open",
		         n->own_head_path, seq);
}

/* At start: classifies the store against the record (see the top of this file). */
static int own_head_start(struct node *n, char *err, size_t errlen)
{
	uint64_t seq;
	uint8_t hash[32];
	char why[PATH_MAX + 160];

	if (own_head_path(n->cfg->key, n->own_head_path, sizeof(n->own_head_path)) != 0) {
		snprintf(err, errlen, "%s: key path too long for its record", n->cfg->key);
		return -ENAMETOOLONG;
	}
	int rc = store_head(n->store, n->self, &seq, hash);
	if (rc != 0) {
		snprintf(err, errlen, "store: cannot read this node's own head: %s",
		         store_errmsg(n->store));
		return rc;
	}
	rc = store_each_head(n->store, any_head, NULL);
	if (rc < 0) {
		snprintf(err, errlen, "store: cannot read the heads: %s", store_errmsg(n->store));
		return rc;
	}
	int held = rc > 0;

	rc = own_head_open(n->own_head_path, &n->own_head, why, sizeof(why));
	if (rc == LOKET_E_NOT_FOUND || (rc == 0 && n->own_head->state == OWN_HEAD_EMPTY)) {
		if (!own_fork(n))
			start_without_record(n, seq, hash, held);
		return 0;
	}
	if (rc != 0) {
		writes_refuse(
		    n, NODE_WRITES_REFUSED,
		    "%s; loketd needs to read and write it to keep track of its own chain "
		    "(owned by the user loketd runs as; under systemd also "
		    "ReadWritePaths=-%s): fix that and restart loketd",
		    why, n->own_head_path);
		log_error("own head: %s", n->writes_reason);
		return 0;
	}
	if (n->own_head->state == OWN_HEAD_DAMAGED) {
		writes_refuse(
		    n, NODE_WRITES_REFUSED,
		    "the record %s is damaged (%s): this node cannot tell how far it has "
		    "signed its own chain (the store has it up to seq %" PRIu64 "); put a good "
		    "copy back, or run `loket resume --force` once you are sure no peer holds "
		    "changesets of this node beyond seq %" PRIu64,
		    n->own_head_path, n->own_head->why, seq, seq);
		log_error("own head: %s", n->writes_reason);
		return 0;
	}
	mark_store_recorded(n);
	if (!own_fork(n))
		compare_with_record(n, seq, hash, held, 1);
	return 0;
}

void node_key_alarm(struct node *n, const char *fmt, ...)
{
	uint64_t now = hlc_wall_ms();
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(n->key_alarm, sizeof(n->key_alarm), fmt, ap);
	va_end(ap);
	n->key_alarms++;
	if (n->key_alarm_logged_ms && now - n->key_alarm_logged_ms < 10000u) {
		n->key_alarm_unlogged++;
		return;
	}
	if (n->key_alarm_unlogged)
		log_error("KEY ALARM: %s (and %lu more alarms since the last line)", n->key_alarm,
		          n->key_alarm_unlogged);
	else
		log_error("KEY ALARM: %s", n->key_alarm);
	n->key_alarm_logged_ms = now;
	n->key_alarm_unlogged = 0;
}

void node_own_chain_changed(struct node *n)
{
	/*
	 * The record is written before any own changeset leaves this node, so
	 * one beyond it that came from elsewhere was signed elsewhere.
	 */
	if (n->own_head && n->own_head->state == OWN_HEAD_VALID) {
		uint64_t held;
		uint8_t h[32];

		if (store_head(n->store, n->self, &held, h) == 0 && held > n->own_head->seq)
			node_key_alarm(
			    n,
			    "the store took changesets of this node's own key up to seq %" PRIu64
			    " from peers, beyond the %" PRIu64
			    " it ever signed: another process signs with this node's key",
			    held, n->own_head->seq);
	}
	if (own_fork(n))
		return;
	if ((n->writes != NODE_WRITES_OPEN && n->writes != NODE_WRITES_WAIT) || !n->own_head ||
	    n->own_head->state != OWN_HEAD_VALID)
		return;
	uint64_t seq;
	uint8_t hash[32];
	if (store_head(n->store, n->self, &seq, hash) != 0) {
		log_error("own head: cannot read this node's own head: %s", store_errmsg(n->store));
		return;
	}
	if (n->writes == NODE_WRITES_OPEN && seq == n->own_head->seq)
		return; /* the usual case: nothing of ours arrived */
	compare_with_record(n, seq, hash, 1, 0);
}

int node_resume(struct node *n, int force, uint64_t peer_claim, const char *peer_name,
                json_t **result, char *err, size_t errlen)
{
	uint64_t seq;
	uint8_t hash[32];
	char why[PATH_MAX + 160];

	if (n->writes == NODE_WRITES_OPEN) {
		snprintf(err, errlen, "nothing to resume: local writes are open");
		return LOKET_E_BAD_REQUEST;
	}
	if (n->writes == NODE_WRITES_FORKED) {
		snprintf(err, errlen, "resume cannot help: %s", n->writes_reason);
		return LOKET_E_FORK;
	}
	if (!force) {
		snprintf(
		    err, errlen,
		    "resume needs --force: if this node signed changesets beyond its store's head "
		    "that are lost, its next write forks its chain, and every node freezes its "
		    "chain at that point");
		return LOKET_E_BAD_REQUEST;
	}
	int rc = store_head(n->store, n->self, &seq, hash);
	if (rc != 0) {
		snprintf(err, errlen, "store: cannot read this node's own head: %s",
		         store_errmsg(n->store));
		return rc;
	}
	if (peer_claim > seq) {
		snprintf(err, errlen,
		         "%s says it holds this node's chain up to seq %" PRIu64 ", the store has "
		         "%" PRIu64 ": let sync bring it, or stop %s",
		         peer_name, peer_claim, seq, peer_name);
		return LOKET_E_UNAVAILABLE;
	}
	int had_record = n->own_head && n->own_head->state == OWN_HEAD_VALID;
	uint64_t had_seq = had_record ? n->own_head->seq : 0;
	/*
	 * The file afresh: the operator may have put it back, fixed its
	 * permissions or removed it since loketd opened it.
	 */
	own_head_close(n->own_head);
	n->own_head = NULL;
	rc = own_head_open(n->own_head_path, &n->own_head, why, sizeof(why));
	if (rc == LOKET_E_NOT_FOUND)
		rc = own_head_create(n->own_head_path, seq, hash, &n->own_head, why, sizeof(why));
	else if (rc == 0)
		rc = own_head_write(n->own_head, seq, hash, why, sizeof(why));
	if (rc != 0) {
		snprintf(err, errlen, "%s", why);
		return rc;
	}
	mark_store_recorded(n);
	char was[64];
	if (had_record)
		snprintf(was, sizeof(was), "the record said seq %" PRIu64, had_seq);
	else
		snprintf(was, sizeof(was), "there was no valid record");
	log_warn("own head: `loket resume --force`: the operator opened local writes at this "
	         "node's own head seq %" PRIu64 " (%s); if this node signed changesets beyond "
	         "seq %" PRIu64 " that are lost, its next write forks its chain",
	         seq, was, seq);
	writes_open(n);
	*result = json_pack("{s:b, s:I}", "resumed", 1, "own_head", (json_int_t)seq);
	if (!*result)
		abort();
	return 0;
}

/* ---- the key: which one signs, and rotation ---- */

/* The key that must sign this node's next changeset, as its chain in the store says. */
static int key_due(struct node *n, uint64_t *next, uint8_t want[32])
{
	uint8_t hash[32];
	uint64_t head;
	int rc = store_head(n->store, n->self, &head, hash);
	if (rc == 0)
		rc = store_key_at(n->store, n->self, head + 1, want);
	*next = head + 1;
	return rc;
}

struct own_key {
	const uint8_t *self, *key;
	uint64_t from;
};

static int own_key_row(void *arg, const uint8_t origin[32], uint64_t from_seq,
                       const uint8_t key[32])
{
	struct own_key *k = arg;
	if (memcmp(origin, k->self, 32) != 0 || memcmp(key, k->key, 32) != 0)
		return 0;
	k->from = from_seq;
	return 1;
}

/* The first seq that key signs in this node's own chain; LOKET_E_NOT_FOUND if none. */
static int own_key_from(struct node *n, const uint8_t key[32], uint64_t *from)
{
	struct own_key k = {.self = n->self, .key = key};
	int rc = store_each_key(n->store, own_key_row, &k);
	if (rc < 0)
		return rc;
	if (rc == 0)
		return LOKET_E_NOT_FOUND;
	*from = k.from;
	return 0;
}

/*
 * At start, once the store is open: the origin (KEY.origin, or the key
 * itself for a node that never rotated), and the install of a rotation
 * whose record is durable but whose key file did not follow yet (a stop
 * between the two): KEY.new then holds the key the chain names.
 */
static int key_start(struct node *n, char *err, size_t errlen)
{
	uint8_t pk[32], want[32];
	char b64[45], wb64[45], why[PATH_MAX + 200];
	uint64_t next, from = 0;
	int rc;

	key_public(n->key, pk);
	/*
	 * Only KEY.origin says that this node's chain is another key's: the
	 * store's key history is not asked, since any member may write a
	 * rotation record naming any key, this node's too. Without the file
	 * after a rotation the node takes itself for a new origin, whose chain
	 * the record of its own head does not match, and waits.
	 */
	if ((rc = rotate_origin(n->cfg->key, pk, n->self, err, errlen)) != 0)
		return rc;
	config_key_encode(n->self, n->self_b64);
	if ((rc = config_check_self(n->cfg, n->self, err, errlen)) != 0)
		return rc;
	if ((rc = key_due(n, &next, want)) != 0) {
		snprintf(err, errlen, "store: cannot read this node's key history: %s",
		         store_errmsg(n->store));
		return rc;
	}
	if (memcmp(want, pk, 32) == 0)
		return 0;
	struct key *nk = NULL;
	uint8_t npk[32];
	config_key_encode(pk, b64);
	config_key_encode(want, wb64);
	if (rotate_load_new(n->cfg->key, &nk, why, sizeof(why)) == 0) {
		key_public(nk, npk);
		if (memcmp(npk, want, 32) == 0 && own_key_from(n, want, &from) == 0 && from >= 2 &&
		    rotate_install(n->cfg->key, from - 1, why, sizeof(why)) == 0) {
			key_free(n->key);
			n->key = nk;
			log_warn("key: finished the rotation of seq %" PRIu64 " that was under way"
			         " when loketd stopped: %s now holds key %s, the old key %s is kept"
			         " as %s" ROTATE_OLD_SUFFIX "%" PRIu64,
			         from - 1, n->cfg->key, wb64, b64, n->cfg->key, from - 1);
			return 0;
		}
		key_free(nk);
	}
	/* Not fatal: reads and sync go on; node_put refuses to sign (key_check). */
	log_error("key: this node's chain in the store names key %s to sign seq %" PRIu64
	          ", but %s holds %s; local writes are refused until they agree (the key file"
	          " holding the chain's key, or the store taking back from peers the rotation"
	          " records of this node it lacks)",
	          wb64, next, n->cfg->key, b64);
	return 0;
}

/* 0 if this node's key is the one its chain names for seq next, else a sentence in err. */
static int key_check(struct node *n, uint64_t next, char *err, size_t errlen)
{
	uint8_t pk[32], want[32];
	char b64[45], wb64[45];
	int rc = store_key_at(n->store, n->self, next, want);
	if (rc != 0) {
		snprintf(err, errlen, "store: cannot read this node's key history: %s",
		         store_errmsg(n->store));
		return rc;
	}
	key_public(n->key, pk);
	if (memcmp(pk, want, 32) == 0)
		return 0;
	config_key_encode(pk, b64);
	config_key_encode(want, wb64);
	snprintf(err, errlen,
	         "local writes refused: this node's chain names key %s to sign seq %" PRIu64
	         ", but %s holds key %s",
	         wb64, next, n->cfg->key, b64);
	return LOKET_E_DENIED;
}

int node_rotate(struct node *n, json_t **result, char *err, size_t errlen)
{
	struct key *nk = NULL;
	uint8_t npk[32], opk[32], hash[32];
	char nb64[45], ob64[45], why[PATH_MAX + 200];
	msgpack_sbuffer out;
	uint8_t *msg = NULL;
	size_t msg_len = 0;
	uint64_t next;
	int rc;

	msgpack_sbuffer_init(&out);
	if (n->writes_blocked) {
		snprintf(err, errlen, "no rotation while local writes are refused: %s",
		         n->writes_blocked);
		return LOKET_E_DENIED;
	}
	if ((rc = key_due(n, &next, npk)) != 0 || (rc = key_check(n, next, err, errlen)) != 0) {
		if (rc != LOKET_E_DENIED)
			snprintf(err, errlen, "store: %s", store_errmsg(n->store));
		return rc;
	}
	/* 1. The origin's id and the next key, durable before anything names them. */
	if ((rc = rotate_origin_save(n->cfg->key, n->self, why, sizeof(why))) != 0 ||
	    (rc = rotate_prepare(n->cfg->key, &nk, why, sizeof(why))) != 0) {
		snprintf(err, errlen, "%s%s", why,
		         rc == -EACCES || rc == -EROFS || rc == -EPERM
		             ? " (loketd must be able to create files beside its key; under the"
		               " shipped systemd unit it may not: README, \"Rotating a key\")"
		             : "");
		return rc;
	}
	key_public(nk, npk);
	key_public(n->key, opk);
	/* 2. The rotation record, signed by the key current at its seq, committed. */
	struct op op = {.kind = OP_ROTATE, .key = npk};
	struct changeset cs = {.version = CHANGESET_VERSION,
	                       .federation = n->cfg->federation,
	                       .federation_len = strlen(n->cfg->federation),
	                       .n_ops = 1,
	                       .ops = &op};
	memcpy(cs.origin, n->self, 32);
	if ((rc = store_begin(n->store)) != 0) {
		snprintf(err, errlen, "store: cannot begin: %s", store_errmsg(n->store));
		goto out;
	}
	if ((rc = store_head(n->store, n->self, &cs.seq, cs.prev)) != 0) {
		snprintf(err, errlen, "store: %s", store_errmsg(n->store));
		store_rollback(n->store);
		goto out;
	}
	cs.seq++;
	cs.hlc = hlc_next(&n->hlc, hlc_wall_ms());
	if ((rc = changeset_encode(&cs, &out)) != 0 ||
	    (rc = changeset_signing_input((const uint8_t *)out.data, out.size, &msg, &msg_len)) !=
	        0) {
		snprintf(err, errlen, "cannot encode the rotation record: %s", loket_strerror(rc));
		store_rollback(n->store);
		goto out;
	}
	uint8_t sig[CHANGESET_SIG_BYTES];
	key_sign(n->key, msg, msg_len, sig);
	msgpack_sbuffer_write(&out, (const char *)sig, sizeof(sig));
	changeset_hash((const uint8_t *)out.data, out.size, hash);
	rc = store_append(n->store, (const uint8_t *)out.data, out.size, &cs, hash);
	if (rc == 0)
		rc = store_commit(n->store);
	if (rc != 0) {
		snprintf(err, errlen, "store: cannot store the rotation record: %s",
		         store_errmsg(n->store));
		store_rollback(n->store);
		goto out;
	}
	/* 3. The own head follows, then peers hear of it, as for any own changeset. */
	record_write(n, cs.seq, hash);
	if (n->on_accepted)
		n->on_accepted((const uint8_t *)out.data, out.size, hash, n->on_accepted_data);
	/* 4. The key file follows the chain; until it has, key_start finishes it. */
	if ((rc = rotate_install(n->cfg->key, cs.seq, why, sizeof(why))) != 0) {
		log_error("key: rotation record seq %" PRIu64 " is signed and stored, but %s;"
		          " loketd signs with the new key, and installs it at its next start",
		          cs.seq, why);
	}
	key_free(n->key);
	n->key = nk;
	nk = NULL;
	config_key_encode(npk, nb64);
	config_key_encode(opk, ob64);
	log_warn("key: rotated: from seq %" PRIu64 " on this node signs with key %s (record seq"
	         " %" PRIu64 ", signed by the old key %s, kept as %s" ROTATE_OLD_SUFFIX "%" PRIu64
	         "); the origin stays %s",
	         cs.seq + 1, nb64, cs.seq, ob64, n->cfg->key, cs.seq, n->self_b64);
	snprintf(why, sizeof(why), "%s" ROTATE_OLD_SUFFIX "%" PRIu64, n->cfg->key, cs.seq);
	*result =
	    json_pack("{s:b, s:I, s:s, s:s, s:s, s:s}", "rotated", 1, "seq", (json_int_t)cs.seq,
	              "origin", n->self_b64, "key", nb64, "old_key", ob64, "old_key_file", why);
	if (!*result)
		abort();
	rc = 0;
out:
	free(msg);
	msgpack_sbuffer_destroy(&out);
	key_free(nk);
	return rc;
}

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
	n->started_ms = hlc_wall_ms();
	n->lock_fd = -1;
	n->signer = worker_start(); /* NULL: the loop thread signs */

	int rc = 0;
	if (mkdir(cfg->data, 0750) != 0 && errno != EEXIST) {
		rc = -errno;
		snprintf(err, errlen, "%s: cannot create data directory: %s", cfg->data,
		         strerror(errno));
		goto fail;
	}
	/*
	 * Before the store or the control socket is touched: a second loketd
	 * on this directory must leave the first one's socket and store alone.
	 */
	long holder;
	rc = lockfile_take(cfg->data, "loketd", &n->lock_fd, &holder, err, errlen);
	if (rc == LOKET_E_LOCKED) {
		size_t used = strlen(err);
		snprintf(err + used, errlen - used,
		         "; this loketd does not start: stop that one first, or give this one a"
		         " data directory of its own");
	}
	if (rc != 0)
		goto fail;
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
	if ((rc = key_start(n, err, errlen)) != 0)
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
	if ((rc = own_head_start(n, err, errlen)) != 0)
		goto fail;
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
	own_head_close(n->own_head);
	store_close(n->store);
	/* Only once the store is closed (its log checkpointed and removed). */
	lockfile_release(n->lock_fd);
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
	if (rc == LOKET_E_NOT_FOUND) {
		char qf[ERROR_QUOTE_SIZE], qref[ERROR_QUOTE_SIZE];
		snprintf(r->err, r->errlen, "field %s refers to %s, which this node does not hold",
		         error_quote_str(qf, sizeof(qf), field),
		         error_quotef(qref, sizeof(qref), "%s/%s/%s", coll, owner, id));
	}
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
	/* Only the key the chain names signs: never one a rotation retired. */
	if ((rc = key_check(n, b.tip_seq + 1, err, errlen)) != 0) {
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
		if (rc == LOKET_E_FORK) {
			/* The store holds fork evidence for this node's own chain. */
			writes_refuse(
			    n, NODE_WRITES_FORKED,
			    "the store holds two different changesets of this node's own "
			    "chain (see `loket status`): its key has signed two histories; it "
			    "must never sign again: give the node a new key (and a new roster "
			    "entry)");
			log_error("own head: %s", n->writes_reason);
		}
		goto out;
	}

	/*
	 * The record before anyone hears of the changesets: once one has left
	 * the node, a store restored to before it must wait to take it back.
	 * A failed record write refuses the next writes; this one is durable.
	 */
	if (b.n_sealed > 0)
		record_write(n, b.tip_seq, b.tip_hash);
	n->written_changesets += b.n_sealed;
	n->written_ops += changed;
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

/* Bytes of a file in the data directory, 0 if it is not there. */
static json_int_t data_file_bytes(struct node *n, const char *name)
{
	char path[PATH_MAX];
	struct stat st;
	int len = snprintf(path, sizeof(path), "%s/%s", n->cfg->data, name);
	if (len < 0 || (size_t)len >= sizeof(path) || stat(path, &st) != 0)
		return 0;
	return (json_int_t)st.st_size;
}

/* {"store_bytes","wal_bytes","index_bytes","free_bytes"}: the data directory's use. */
static json_t *disk_json(struct node *n)
{
	struct statvfs vfs;
	json_int_t free_bytes = 0;
	if (statvfs(n->cfg->data, &vfs) == 0)
		free_bytes = (json_int_t)((uint64_t)vfs.f_bavail * vfs.f_frsize);
	json_t *d =
	    json_pack("{s:I, s:I, s:I, s:I}", "store_bytes", data_file_bytes(n, LOKET_STORE_FILE),
	              "wal_bytes", data_file_bytes(n, LOKET_STORE_FILE "-wal"), "index_bytes",
	              data_file_bytes(n, LOKET_STORE_FILE "-index"), "free_bytes", free_bytes);
	if (!d)
		abort();
	return d;
}

int node_status(struct node *n, json_t **out)
{
	json_t *status;
	int rc = store_status(n->store, &status);
	if (rc != 0)
		return rc;
	json_object_set_new(status, "name", json_string(n->cfg->name));
	json_object_set_new(status, "key", json_string(n->self_b64));
	uint8_t pk[32];
	char pk_b64[45];
	key_public(n->key, pk);
	config_key_encode(pk, pk_b64);
	json_object_set_new(status, "signing_key", json_string(pk_b64));
	json_object_set_new(status, "federation", json_string(n->cfg->federation));
	json_t *writes;
	if (!n->writes_blocked) {
		writes = json_pack("{s:b}", "open", 1);
	} else {
		uint64_t seq = 0;
		uint8_t hash[32];
		if (store_head(n->store, n->self, &seq, hash) != 0)
			seq = 0;
		int recorded = n->own_head && n->own_head->state == OWN_HEAD_VALID;
		writes =
		    json_pack("{s:b, s:s, s:I, s:o}", "open", 0, "reason", n->writes_blocked,
		              "own_head", (json_int_t)seq, "recorded_head",
		              recorded ? json_integer((json_int_t)n->own_head->seq) : json_null());
	}
	if (!writes)
		abort();
	json_object_set_new(status, "writes", writes);
	json_object_set_new(status, "version", json_string(LOKET_VERSION));
	json_object_set_new(status, "uptime_s",
	                    json_integer((json_int_t)((hlc_wall_ms() - n->started_ms) / 1000u)));
	size_t up = 0, total = 0;
	if (n->peers_count)
		n->peers_count(n->peers_count_data, &up, &total);
	json_object_set_new(
	    status, "peers",
	    json_pack("{s:I, s:I}", "up", (json_int_t)up, "total", (json_int_t)total));
	json_object_set_new(status, "disk", disk_json(n));
	json_object_set_new(
	    status, "key_alarm",
	    n->key_alarms
	        ? json_pack("{s:I, s:s}", "count", (json_int_t)n->key_alarms, "last", n->key_alarm)
	        : json_null());
	*out = status;
	return 0;
}
