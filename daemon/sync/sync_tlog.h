/*
 * sync_tlog: checkpoints and witnessing (proto/SYNC.md, "Checkpoints";
 * proto/FORMAT.md, sections 10 to 13). This node signs checkpoints of its
 * own log, checks and cosigns its members' checkpoints, keeps the latest
 * of every origin with every cosignature seen, passes them on in "ckpt"
 * messages to peers whose hello says "ckpt", and turns two checkpoints of
 * one origin that cannot both be true into a split-view proof, kept,
 * passed on in "split" messages and freezing the origin. A checkpoint or
 * cosignature under this node's own key that it did not make raises the
 * node's key alarm.
 */
#ifndef LOKET_SYNC_TLOG_H
#define LOKET_SYNC_TLOG_H

#include <jansson.h>

#include "daemon/sync/sync_state.h"

/* A new checkpoint of this node's own log is signed at most this often. */
#define SYNC_TLOG_SIGN_MS 1000u
/* Checkpoints in one "ckpt" message, and about as many bytes. */
#define SYNC_TLOG_PER_MSG   SYNC_MAX_ORIGINS
#define SYNC_TLOG_MSG_BYTES (1024u * 1024u)
/*
 * Signature checks one message may cost the loop (about 60 us each):
 * notes beyond them are left, to come again with the next hello.
 */
#define SYNC_TLOG_VERIFY_BUDGET 1024u

/* From the timer: signs this node's checkpoint when its log has grown, and cosigns what waited. */
void sync_tlog_tick(struct sync_state *st);

/* After m's hello: sends it every checkpoint and split-view proof held, if it takes them. */
void sync_tlog_share(struct sync_state *st, struct sync_member *m, struct sync_session *sess);

/* A "ckpt" message and a "split" message from m. */
void sync_tlog_take(struct sync_state *st, struct sync_member *m, int kind, const json_t *hdr);
void sync_tlog_take_split(struct sync_state *st, struct sync_member *m, int kind,
                          const json_t *hdr);

/* The `checkpoints` control command's answer: one object per origin (proto/CONTROL.md). */
json_t *sync_tlog_checkpoints(struct sync_state *st);

#endif
