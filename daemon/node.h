/*
 * node: the daemon's state that outlives any one connection: the
 * configuration, the signing key, the store and the clock. Local writes
 * enter here: node_put validates a batch of ops, drops those that would
 * change nothing, signs the rest into changesets of this node's own chain
 * and makes them durable before it returns.
 */
#ifndef LOKET_NODE_H
#define LOKET_NODE_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "common/config.h"
#include "common/key.h"
#include "daemon/hlc.h"
#include "store/store.h"

/* Told of every changeset the store accepted, with its hash, after it is durable. */
typedef void (*node_accepted_cb)(const uint8_t *bytes, size_t len, const uint8_t hash[32],
                                 void *data);

struct node {
	struct config *cfg;
	struct key *key;
	struct worker *signer; /* signs sealed changesets off the loop thread; may be NULL */
	struct store *store;
	uint8_t self[32];
	char self_b64[45];
	struct hlc hlc;
	node_accepted_cb on_accepted;
	void *on_accepted_data;
	/*
	 * When set, local writes are refused with this sentence: a node that
	 * may have lost the tail of its own chain (restored from a backup,
	 * wiped) must take it back from its peers before it signs again, or it
	 * would fork its own history.
	 */
	const char *writes_blocked;
};

/*
 * Opens the store in cfg->data and records the roster's names in it (when
 * the store cannot take them, on a full disk, it says so in the log and
 * goes on). Takes ownership of cfg and key (freed by node_free, also on
 * failure).
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

/* Status for the control socket: the store's view plus name, key, federation. */
int node_status(struct node *n, json_t **out);

#endif
