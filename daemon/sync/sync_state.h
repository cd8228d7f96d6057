/*
 * Inside sync: the state behind struct sync (members, origins, sessions,
 * the queue of received batches) and the functions the sync files call
 * across: daemon/sync.c (state, sockets, members, timer, control commands),
 * daemon/sync_session.c (sending, sessions, heads, fetching, wants, the
 * dispatch of messages) and daemon/sync_receive.c (verify, apply, announce).
 * Only daemon/sync*.c include this file.
 */
#ifndef LOKET_SYNC_INT_H
#define LOKET_SYNC_INT_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>
#include <uv.h>
#include <zmq.h>

#include "common/config.h"
#include "daemon/node.h"
#include "daemon/sync/sync.h"
#include "daemon/sync/zap.h"
#include "daemon/zwatch.h"
#include "proto/changeset.h"
#include "proto/limits.h"
#include "proto/value.h"

#define SYNC_MAX_ORIGINS   256u                      /* self and members, ever seen */
#define SYNC_MSG_BYTES     (1024u * 1024u)           /* changesets per cs message */
#define SYNC_MSG_MAX       (LOKET_MAX_MESSAGE_BYTES) /* one whole sync message */
#define SYNC_MAX_PER_MSG   256u                      /* changesets per cs message */
#define SYNC_WANT_MAX      256u                      /* credit per want */
#define SYNC_WANT_TIMEOUT  3000u                     /* ms before a want is given up */
#define SYNC_MAX_QUEUE     8u                        /* batches received, not applied */
#define SYNC_MAX_VERIFYING 3u                        /* batches on the thread pool */
#define SYNC_PUSH_WINDOW   8u                        /* own changesets pushed, unconfirmed */
#define SYNC_TICK_MS       100u
#define SYNC_HWM           64
#define SYNC_RID_MAX       256u
#define SYNC_HEARTBEAT_MS  2000
#define SYNC_REASON_MAX    480u

enum session_kind {
	SESSION_DIALLED = 0,
	SESSION_ACCEPTED = 1,
};

struct sync_session {
	int up;
	unsigned gen; /* bumped whenever the session ends or is dropped */
	uint8_t rid[SYNC_RID_MAX];
	size_t rid_len;
	uint8_t banned_rid[SYNC_RID_MAX];
	size_t banned_rid_len;
	uint64_t last_seen;      /* uv_now ms */
	uint64_t last_seen_wall; /* ms since the epoch, for people */
	int hello_owed;
};

struct sync_origin {
	uint8_t key[32];
	char b64[45];
	uint64_t head; /* as stored */
	uint8_t head_hash[32];
	uint64_t expect; /* next seq to take into the pipeline */
	struct sync_member *fetch_from;
	uint64_t fetch_deadline;
};

struct sync_member {
	struct sync_state *st;
	uint8_t key[32];
	char b64[45];
	char name[LOKET_MAX_NAME_LEN + 1];
	char endpoint[CONFIG_ENDPOINT_MAX];
	size_t slot;
	int removed;
	void *dealer;
	void *monitor;
	char mon_endpoint[64];
	struct zwatch dealer_watch;
	struct zwatch monitor_watch;
	struct sync_session s[2];
	int incompatible;
	/* libzmq gives up on a connection refused at the handshake: we dial again. */
	uint64_t redial_at;
	unsigned redial_backoff;
	unsigned long errors;
	char last_error[SYNC_REASON_MAX];
	/* Their heads: what they reported, raised by what we sent them. */
	uint64_t their_seq[SYNC_MAX_ORIGINS];
	uint8_t their_hash[SYNC_MAX_ORIGINS][32];
	uint8_t their_known[SYNC_MAX_ORIGINS]; /* 1 once a hello told us */
	uint64_t confirmed_self;               /* our own head as they reported it */
};

struct sync_item {
	const uint8_t *p;
	size_t len;
	size_t slot;
	uint64_t seq;
	int rc;
	char err[160];
	struct changeset cs;
	int decoded;
	uint8_t hash[32];
};

struct sync_batch {
	struct sync_batch *next;
	struct sync_state *st;
	uv_work_t work;
	struct sync_member *from;
	int kind;
	unsigned gen;
	char federation[LOKET_MAX_FEDERATION_LEN + 1];
	zmq_msg_t msg;
	int started;
	int done;
	size_t n;
	struct sync_item items[];
};

struct sync_state {
	struct sync *owner;
	uv_loop_t *loop;
	void *zctx;
	struct node *node;
	struct zap zap;
	int zap_open;
	void *router;
	struct zwatch router_watch;
	int router_open;
	char listen[CONFIG_ENDPOINT_MAX];
	uv_timer_t timer;
	struct sync_member *members[SYNC_MAX_ORIGINS];
	size_t n_members;
	struct sync_origin origins[SYNC_MAX_ORIGINS];
	size_t n_origins;
	struct sync_batch *queue_head, *queue_tail;
	unsigned queued;
	unsigned verifying;
	uint64_t next_hello;
	unsigned monitor_seq;
	int closing;
	int pending_closes;
	int rebind_pending;
	/* Counters, for the log and `loket peers`. */
	unsigned long accepted, duplicates, gaps, forks, refused, dropped_busy;
};

/* ---- sync.c: the state ---- */

uint64_t sync_now_ms(struct sync_state *st);
void sync_hex32(const uint8_t h[32], char out[65]);
struct sync_origin *sync_origin_by_key(struct sync_state *st, const uint8_t key[32]);
/* Whether changesets of this origin are accepted now: self and current members. */
int sync_origin_admitted(struct sync_state *st, size_t slot);
/* Counts an error of m and keeps reason for `loket peers`. */
void sync_set_error(struct sync_member *m, const char *reason);
/* Frees the state once closing and nothing is pending; runs the close callback. */
void sync_maybe_closed(struct sync_state *st);

/* ---- sync_session.c: sending, sessions, heads, fetching ---- */

/* Sends header + the bins in sb (already packed after the header); takes sb's data. */
int sync_send_buffer(struct sync_state *st, struct sync_member *m, struct sync_session *sess,
                     msgpack_sbuffer *sb);
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
/* Logs and records reason, tells the peer, and drops the session. */
void sync_misbehave(struct sync_state *st, struct sync_member *m, int kind, const char *reason);
/* Opens local writes once a peer has shown this node its own head. */
void sync_check_self(struct sync_state *st);
/* Asks peers for what we lack of every origin. */
void sync_pump(struct sync_state *st);
void sync_handle_message(struct sync_state *st, struct sync_member *m, int kind, zmq_msg_t *msg);

/* ---- sync_receive.c: the receive path ---- */

void sync_batch_free(struct sync_batch *b);
void sync_take_changesets(struct sync_state *st, struct sync_member *m, int kind, const json_t *hdr,
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
