/*
 * sync_session: the sync protocol as one node speaks it to its peers
 * (proto/SYNC.md). It packs and sends the messages,
 * tracks which session of a member is up and drops one that misbehaves,
 * takes in the heads peers report, asks the best peer for what this node
 * lacks, and answers a peer's wants from the store. It calls only
 * sync_state.c.
 */
#ifndef LOKET_SYNC_SESSION_H
#define LOKET_SYNC_SESSION_H

#include <jansson.h>
#include <msgpack.h>

#include "daemon/sync/sync_state.h"

#define SYNC_PROTO 1 /* protocol version in the hello */

/* Sends header + the bins in sb (already packed after the header); takes sb's data. */
int sync_send_buffer(struct sync_state *st, struct sync_member *m, struct sync_session *sess,
                     msgpack_sbuffer *sb);
/* Sends header hdr (taken) followed by n changesets as bins. */
int sync_send_bins(struct sync_state *st, struct sync_member *m, struct sync_session *sess,
                   json_t *hdr, const uint8_t *const *bins, const size_t *lens, size_t n);
/* Sends a header-only message; takes hdr. */
int sync_send_json(struct sync_state *st, struct sync_member *m, struct sync_session *sess,
                   json_t *hdr);
void sync_send_error(struct sync_state *st, struct sync_member *m, struct sync_session *sess,
                     const char *reason);
void sync_send_hello(struct sync_state *st, struct sync_member *m, struct sync_session *sess,
                     int reply);
/* The session to send m messages on (the dialled one first), or NULL. */
struct sync_session *sync_send_session(struct sync_member *m);
/* Forgets the wants in flight to m. */
void sync_clear_fetches(struct sync_state *st, struct sync_member *m);
void sync_session_drop(struct sync_state *st, struct sync_member *m, int kind);
/*
 * Shuts the accepted connection of m on fd once SYNC_SHUT_DELAY_MS have
 * passed (so that an error sent on it gets out first), if fd still belongs
 * to the same peer address then; sync_shut_now does it at once.
 */
void sync_shut_later(struct sync_state *st, struct sync_member *m, int fd);
void sync_shut_now(struct sync_member *m);
/* Logs and records reason, tells the peer, and drops the session. */
void sync_misbehave(struct sync_state *st, struct sync_member *m, int kind, const char *reason);
/* Sends m the fork proof of origin slot, which the store holds. */
void sync_send_proof(struct sync_state *st, struct sync_member *m, struct sync_session *sess,
                     size_t slot);
/* Sends the fork proof of origin slot to every peer that takes proofs and lacks it. */
void sync_share_proof(struct sync_state *st, size_t slot);
/* Asks m for the one changeset (origin slot, seq): the other half of a fork. */
void sync_want_one(struct sync_state *st, struct sync_member *m, struct sync_session *sess,
                   size_t slot, uint64_t seq);
/* Asks peers for what we lack of every origin. */
void sync_pump(struct sync_state *st);

/* The messages of a session, by type, their decoded header in hdr. */
void sync_session_hello(struct sync_state *st, struct sync_member *m, int kind, const json_t *hdr);
void sync_session_have(struct sync_state *st, struct sync_member *m, int kind, const json_t *hdr);
void sync_session_want(struct sync_state *st, struct sync_member *m, int kind, const json_t *hdr);
void sync_session_error(struct sync_member *m, const json_t *hdr);

#endif
