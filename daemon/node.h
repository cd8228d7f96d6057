/*
 * node: the daemon's state that outlives any one connection: the
 * configuration, the signing key, the store and the clock. Local writes
 * enter here: node_put validates a batch of ops, drops those that would
 * change nothing, signs the rest into changesets of this node's own chain
 * and makes them durable before it returns.
 *
 * It also decides whether local writes are open (never fork yourself):
 * it keeps the record of the node's own head beside the key
 * (common/own_head.h), written after each own commit and before the
 * changesets leave the node, and compares it with the store's own chain at
 * start and whenever that chain grows. Only changesets signed by this
 * node's key that the store holds count; what a peer says never opens or
 * closes writes.
 */
#ifndef LOKET_NODE_H
#define LOKET_NODE_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "common/config.h"
#include "common/key.h"
#include "common/own_head.h"
#include "daemon/hlc.h"
#include "store/store.h"

/* Told of every changeset the store accepted, with its hash, after it is durable. */
typedef void (*node_accepted_cb)(const uint8_t *bytes, size_t len, const uint8_t hash[32],
                                 void *data);

/* Whether local writes are open, and if not, what would open them. */
enum node_writes {
	NODE_WRITES_OPEN = 0,
	/* The store's own chain is behind the record: open once it has caught up. */
	NODE_WRITES_WAIT,
	/* The record is missing, damaged or cannot be written: the operator decides. */
	NODE_WRITES_REFUSED,
	/* The key has signed two histories: never open again. */
	NODE_WRITES_FORKED,
};

struct node {
	struct config *cfg;
	struct key *key;       /* the key that signs now: the origin's, or the last it rotated to */
	struct worker *signer; /* signs sealed changesets off the loop thread; may be NULL */
	struct store *store;
	int lock_fd;      /* holds the data directory's lock (common/lockfile.h) */
	uint8_t self[32]; /* the origin: its first key, whatever key signs now */
	char self_b64[45];
	struct hlc hlc;
	node_accepted_cb on_accepted;
	void *on_accepted_data;
	/* Sessions up and members, for status; set by sync (NULL: no peers). */
	void (*peers_count)(void *data, size_t *up, size_t *total);
	void *peers_count_data;
	uint64_t started_ms; /* wall clock at node_open_take, for uptime */
	/* Local writes committed since start, for metrics. */
	uint64_t written_changesets, written_ops;
	/* The record of the node's own head; NULL while it cannot be opened. */
	struct own_head *own_head;
	char own_head_path[PATH_MAX];
	enum node_writes writes;
	/*
	 * NULL while writes are open; otherwise the sentence local writes
	 * are refused with (it points into writes_reason).
	 */
	const char *writes_blocked;
	char writes_reason[1024];
	const char *wait_case; /* NODE_WRITES_WAIT: restored or wiped, in words */
	/*
	 * The key alarm: changesets or checkpoints under this node's key that
	 * it did not sign were seen (its key is in someone else's hands). A
	 * count, the last sentence, and the log's rate limit.
	 */
	unsigned long key_alarms;
	char key_alarm[512];
	uint64_t key_alarm_logged_ms;
	unsigned long key_alarm_unlogged;
};

/*
 * Takes the lock of cfg->data (LOKET_E_LOCKED when another process holds
 * it, with err naming that one's PID), opens the store there, records the
 * roster's names in it (when the store cannot take them, on a full disk,
 * it says so in the log and goes on), and compares the store's own chain
 * with the record beside the key to decide whether local writes open at
 * once (a clean restart, a new node) or wait (restored, wiped, record
 * missing or damaged; node_writes_refused says why). Takes ownership of
 * cfg and key (freed by node_free, also on failure).
 */
int node_open_take(struct config *cfg, struct key *key, struct node **out, char *err,
                   size_t errlen);
void node_free(struct node *n);

/*
 * Applies the ops of a put request (read by put_ops_parse) atomically: on
 * success everything that changed is durable and *result is
 * {"seq","changesets","changed","unchanged"}; on failure nothing was
 * applied, err names the problem and *bad_index is the position of the op
 * at fault (-1 if none).
 */
int node_put(struct node *n, const struct op *ops, size_t n_ops, json_t **result, long *bad_index,
             char *err, size_t errlen);

/*
 * `loket rotate-key` (proto/FORMAT.md section 14): makes a new key (KEY.new),
 * signs with the current key a rotation record naming it as the next
 * changeset of this node's chain, commits it, writes the own head, tells
 * the peers, then puts the new key in place of the key file (the old one
 * kept as KEY.old-SEQ) and signs with it from then on. The origin stays.
 * *result is {"rotated":true,"seq","origin","key","old_key","old_key_file"}.
 * Refused (LOKET_E_DENIED) while local writes are refused.
 */
int node_rotate(struct node *n, json_t **result, char *err, size_t errlen);

/*
 * Status for the control socket: the store's view plus name, key,
 * federation and "writes": {"open":true} or {"open":false,"reason",
 * "own_head","recorded_head"} (recorded_head null without a valid record).
 */
int node_status(struct node *n, json_t **out);

/*
 * Raises the key alarm: something signed with this node's key that it did
 * not sign was seen (what says what, and from whom). Counted, kept for
 * status ("key_alarm") and metrics, and logged at most once per 10 s (with
 * the count of those not logged).
 */
void node_key_alarm(struct node *n, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* NULL while local writes are open, else the sentence they are refused with. */
const char *node_writes_refused(const struct node *n);

/*
 * The store's chain of this node's own changesets has grown (the receive
 * path took some from a peer): re-checks it against the record. Writes
 * that wait open once the store holds the recorded seq with the recorded
 * hash; a different hash there means the key has signed two histories, and
 * writes never open again. The record follows a store that is ahead of it.
 */
void node_own_chain_changed(struct node *n);

/*
 * The operator's override (`loket resume --force`): rewrites the record to
 * the store's own head and opens writes. Refused while writes are open,
 * after a fork of the node's own chain, without force (the sentence says
 * what it risks), and when peer_claim (the highest own head a connected
 * peer claims, 0 for none, by peer_name) is beyond the store's head.
 * *result is {"resumed":true,"own_head":SEQ}.
 */
int node_resume(struct node *n, int force, uint64_t peer_claim, const char *peer_name,
                json_t **result, char *err, size_t errlen);

#endif
