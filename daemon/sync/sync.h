/*
 * sync: federation sync. Owns the listening ROUTER (CURVE server), one
 * DEALER (CURVE client) per roster member with an endpoint, the ZAP handler
 * and the verification pipeline. Peers exchange version vectors on connect
 * and every sync_interval, pull what they lack under credit ("want"), and
 * hear of every newly accepted changeset at once: a node's own changesets
 * are pushed whole to peers that are up to date with it, everything else
 * is announced ("have") and pulled, so no node is flooded and a full mesh
 * does not receive every changeset from every neighbour. Every changeset
 * from a peer is bounded, decoded, checked against the roster, verified on
 * the libuv thread pool and appended in order, one transaction per batch.
 * The protocol: proto/SYNC.md.
 *
 * It serves the control commands "peers", "reload" and "resume" (the
 * override of daemon/node.h's node_resume, with the peers' claims).
 */
#ifndef LOKET_SYNC_H
#define LOKET_SYNC_H

#include <stddef.h>

#include <jansson.h>
#include <uv.h>

#include "daemon/control.h"
#include "daemon/node.h"

struct sync_state;

struct sync {
	struct sync_state *st;
	void (*on_closed)(struct sync *s);
};

/*
 * Starts the ZAP handler, binds [node] listen (if set), dials every member
 * with an endpoint, hooks node->on_accepted and adds "peers", "reload" and
 * "resume" to the control socket. On failure nothing is left running.
 */
int sync_init(struct sync *s, uv_loop_t *loop, void *zctx, struct node *node,
              struct control *control, char *err, size_t errlen);

/*
 * Re-reads the configuration file and applies roster changes: new members
 * are admitted and dialled, removed members' sessions close and their
 * future changesets are refused. The node's name, key and federation must
 * not change. *result is {"members":N,"added":[names],"removed":[names]}.
 */
int sync_reload(struct sync *s, json_t **result, char *err, size_t errlen);

/* Per member: {"name","key","endpoint","session","last_seen","they_lack","we_lack",...}. */
json_t *sync_peers(struct sync *s);

/*
 * What became of the changesets received, and of connections refused:
 * {"accepted","duplicate","gap","fork","refused","frozen","busy",
 *  "zap_refused","conns_shut"}, counts since start.
 */
json_t *sync_counters(struct sync *s);

/* Closes every socket and handle; cb runs once all are closed and no work is pending. */
void sync_close(struct sync *s, void (*cb)(struct sync *s));

#endif
