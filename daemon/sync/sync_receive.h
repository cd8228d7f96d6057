/*
 * sync_receive: the receive path, for changesets from peers and this
 * node's own, on their way to the store and to the other peers. A cs
 * message is parsed and pre-filtered cheaply on the loop thread
 * (duplicates, gaps, origins outside the roster), the rest is queued as a
 * batch and verified on the libuv thread pool (decode, federation,
 * signature, hash), batches are applied in arrival order, one transaction
 * each, and what was accepted is announced to every peer. It calls
 * sync_session.c (to send) and sync_state.c.
 */
#ifndef LOKET_SYNC_RECEIVE_H
#define LOKET_SYNC_RECEIVE_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>
#include <zmq.h>

#include "daemon/sync/sync_state.h"

/* A cs message from m: the changesets after its header (hdr_len bytes) enter the pipeline. */
void sync_take_changesets(struct sync_state *st, struct sync_member *m, int kind, const json_t *hdr,
                          zmq_msg_t *msg, size_t hdr_len);
/*
 * A fork message from m: the two changesets after its header, of the origin
 * and seq it names, are verified like any other and then kept as the
 * origin's fork proof (daemon/sync/sync_receive.c, record_proof).
 */
void sync_take_proof(struct sync_state *st, struct sync_member *m, int kind, const json_t *hdr,
                     zmq_msg_t *msg, size_t hdr_len);
/* node->on_accepted: announces a changeset this node just signed. */
void sync_on_own_accepted(const uint8_t *bytes, size_t len, const uint8_t hash[32], void *data);

/*
 * The parts of a "cs" message after its header: one msgpack bin per
 * changeset, at most SYNC_MAX_PER_MSG, each 1..LOKET_MAX_CHANGESET_BYTES;
 * 0 and the spans in bins/lens, or -1. (Fuzzed: tests/fuzz/fuzz_sync_frame.c.)
 */
int sync_parse_bins(const uint8_t *p, size_t len, const uint8_t **bins, size_t *lens, size_t *n);
/* Origin and seq of a signed changeset, read without decoding it whole; 0 or -1. */
int sync_peek_changeset(const uint8_t *p, size_t len, uint8_t origin[32], uint64_t *seq);

#endif
