/*
 * sync_state: the state behind struct sync (members, origins, sessions,
 * the queue of received batches), shared by the sync files, and the few
 * functions on it that all of them use (sync_state.c). The files call one
 * another in one direction only:
 *
 *   sync.c          owns the state, the sockets, the timer and the control
 *                   commands; reads each message and hands it on by type
 *   sync_receive.c  the receive path: verify, apply in order, announce
 *   sync_session.c  the protocol: sending, sessions, heads, fetching, wants
 *   sync_state.c    helpers on the state; calls none of the others
 *
 * sync.c calls the other three, sync_receive.c calls sync_session.c and
 * sync_state.c, sync_session.c only sync_state.c. Only daemon/sync/
 * includes this file.
 */
#ifndef LOKET_SYNC_STATE_H
#define LOKET_SYNC_STATE_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include <jansson.h>
#include <uv.h>
#include <zmq.h>

#include "common/config.h"
#include "daemon/node.h"
#include "daemon/sync/sync_conns.h"
#include "daemon/sync/zap.h"
#include "daemon/zwatch.h"
#include "proto/changeset.h"
#include "proto/limits.h"
#include "proto/value.h"

struct sync;

#define SYNC_MAX_ORIGINS   256u                      /* self and members, ever seen */
#define SYNC_MSG_BYTES     (1024u * 1024u)           /* changesets per cs message */
#define SYNC_MSG_MAX       (LOKET_MAX_MESSAGE_BYTES) /* one whole sync message */
#define SYNC_MAX_PER_MSG   256u                      /* changesets per cs message */
#define SYNC_WANT_MAX      256u                      /* credit per want */
#define SYNC_WANT_TIMEOUT  3000u                     /* ms before a want is given up */
#define SYNC_MAX_QUEUE     8u                        /* batches received, not applied */
#define SYNC_MAX_VERIFYING 3u                        /* batches on the thread pool */
#define SYNC_PUSH_WINDOW   8u                        /* own changesets pushed, unconfirmed */
#define SYNC_REARM_MS      10000u /* at most this long from a rotation to the new CURVE key */
#define SYNC_TICK_MS       100u
#define SYNC_HWM           16    /* messages queued per connection each way */
#define SYNC_STALL_MS      1000u /* wants of a peer whose queue is full wait this long */
#define SYNC_MAX_CONNS     1024u /* connections to the listener, at most half the descriptors */
#define SYNC_RID_MAX       256u
#define SYNC_HEARTBEAT_MS  2000
#define SYNC_REASON_MAX    480u
#define SYNC_LOG_WINDOW_MS 10000u /* a peer's repeated failure is logged once per window */
#define SYNC_MAX_STRIKES   8u     /* wants a member left unanswered, per origin, counted */
#define SYNC_SHUT_DELAY_MS 200u   /* a dropped connection is shut this long after its error */

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
	int fd; /* of the connection the last message came on (accepted sessions), or -1 */
	uint64_t stalled_until; /* its send queue was full: its wants are not answered */
};

/* Why a peer's changeset of an origin was not applied (sync_origin.refused). */
enum sync_refused {
	SYNC_REFUSED_INVALID, /* a bad signature, encoding or chain link; not a member */
	SYNC_REFUSED_FORK,    /* a second changeset for a held seq */
	SYNC_REFUSED_FROZEN,  /* at or after the origin's fork proof */
	SYNC_REFUSED_GAP,     /* beyond the held head: asked for again */
	SYNC_REFUSED_REASONS,
};

struct sync_origin {
	uint8_t key[32];
	char b64[45];
	uint64_t head; /* as stored */
	uint8_t head_hash[32];
	uint64_t expect; /* next seq to take into the pipeline */
	struct sync_member *fetch_from;
	uint64_t fetch_deadline;
	uint64_t fetch_seq; /* the first seq the want in flight asked for */
	/* The seq of this origin's fork proof: nothing from it on is taken. 0: none. */
	uint64_t frozen_at;
	/* Received from peers since start, for metrics: applied, and refused by reason. */
	uint64_t applied_changesets, applied_ops;
	uint64_t refused[SYNC_REFUSED_REASONS];
	/* Its split-view proof's size + 1: nothing from it on is taken. 0: none. */
	uint64_t split_at;
	/* The size of its checkpoint that waits for this node to hold it, to be cosigned; 0: none.
	 */
	uint64_t ckpt_wait;
	/* The key that signs seq head + 1 as the store's key history says (FORMAT.md 14). */
	uint8_t signer[32];
	/*
	 * The seq of a changeset refused as signed by a key the roster revokes:
	 * the chain is not taken from it on, nor asked for, until a reload. 0: none.
	 */
	uint64_t revoked_at;
};

/* The first seq of origin o that is not taken (a fork or split-view proof), or 0 for none. */
static inline uint64_t sync_stop_at(const struct sync_origin *o)
{
	if (o->frozen_at && (!o->split_at || o->frozen_at < o->split_at))
		return o->frozen_at;
	return o->split_at;
}

struct sync_member {
	struct sync_state *st;
	uint8_t key[32]; /* the member's origin: the roster's key */
	uint8_t
	    curve_key[32]; /* its newest key as far as the store knows: the server key dialled */
	uint8_t dealer_key[32]; /* the server key the dealer was armed with */
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
	unsigned long oversize; /* frames over SYNC_MSG_MAX that libzmq still passed on */
	char last_error[SYNC_REASON_MAX];
	uint64_t bytes_in, bytes_out; /* of sync messages, for metrics */
	/* Their heads: what they reported, raised by what we sent them. */
	uint64_t their_seq[SYNC_MAX_ORIGINS];
	uint8_t their_hash[SYNC_MAX_ORIGINS][32];
	uint8_t their_known[SYNC_MAX_ORIGINS]; /* 1 once a hello told us */
	uint64_t confirmed_self;               /* our own head as they reported it */
	/*
	 * Claims are hints: wants m left unanswered per origin, so that a
	 * member that claims what it never sends is asked last (reset when it
	 * sends something of that origin).
	 */
	uint8_t strikes[SYNC_MAX_ORIGINS];
	/* Their fork proofs as their hello listed them (seq, 0 for none). */
	uint64_t their_fork[SYNC_MAX_ORIGINS];
	int knows_forks; /* its hello lists forks: it takes "fork" messages */
	int knows_ckpt;  /* its hello says "ckpt": it takes "ckpt" and "split" messages */
	/*
	 * An accepted connection to shut once the error sent on it is out: its
	 * descriptor and peer address, checked again before the shutdown so
	 * that a descriptor reused meanwhile is left alone.
	 */
	int shut_pending;
	int shut_fd;
	struct sockaddr_storage shut_addr;
	socklen_t shut_addr_len;
	uint64_t shut_at;
	/* The failure logged last, and how often it recurred since (sync_log_peer). */
	char log_last[SYNC_REASON_MAX];
	uint64_t log_since;
	unsigned long log_repeats;
	int log_level;
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
	uint8_t
	    key[32]; /* the key it was verified under: its origin's key at its seq, as guessed */
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
	int proof; /* a fork proof: its two items are the two changesets of one seq */
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
	struct sync_conns conns; /* the listener's connection budget */
	int conns_open;
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
	/*
	 * After this node's own rotation record of seq rotated_seq: its CURVE
	 * identity follows (the listener rebound, the dealers dialled afresh)
	 * once every peer with a session up has the record, or at rearm_at.
	 */
	uint64_t rotated_seq;
	uint64_t rearm_at;
	/* Counters, for the log and `loket peers`. */
	unsigned long accepted, duplicates, gaps, forks, refused, dropped_busy, frozen;
	unsigned long extra_conns; /* messages dropped on a member's second connection */
	/* Checkpoints (sync_tlog.c). */
	unsigned long splits, ckpt_refused, ckpt_received, ckpt_cosigned, ckpt_signed;
	uint64_t ckpt_next_ms;
	int ckpt_behind_logged;
	uint32_t ckpt_budget; /* signature checks the message at hand may still cost */
};

/* uv_now of the loop, in ms. */
uint64_t sync_now_ms(struct sync_state *st);
void sync_hex32(const uint8_t h[32], char out[65]);
struct sync_origin *sync_origin_by_key(struct sync_state *st, const uint8_t key[32]);
/* Whether changesets of this origin are accepted now: self and current members. */
int sync_origin_admitted(struct sync_state *st, size_t slot);
/* m->curve_key from the store's key history: the newest key of m's origin. */
void sync_member_key_refresh(struct sync_state *st, struct sync_member *m);
/* Counts an error of m and keeps reason for `loket peers`. */
void sync_set_error(struct sync_member *m, const char *reason);
/*
 * Logs a failure of member m at level (common/log.h), once per
 * SYNC_LOG_WINDOW_MS: the same text again within the window is only
 * counted, and sync_log_flush sums the repeats up in one line.
 */
void sync_log_peer(struct sync_state *st, struct sync_member *m, int level, const char *text);
/* Logs the repeats of every member whose window has ended (from the timer). */
void sync_log_flush(struct sync_state *st);
void sync_batch_free(struct sync_batch *b);
/*
 * Frees st once it is closing and no close or verification is pending,
 * then runs the owner's close callback; does nothing before that.
 */
void sync_state_maybe_free(struct sync_state *st);

#endif
