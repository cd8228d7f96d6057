/*
 * zap: the ZeroMQ authentication handler (ZAP, RFC 27) of the daemon's
 * context. Without it a CURVE server admits every client that knows its
 * public key, so it must be bound before any CURVE socket binds. It admits
 * a client only if its CURVE key derives from the Ed25519 key of a current
 * roster member, and names that member in the User-Id it returns (the
 * member's key in base64), which every message on the connection then
 * carries: sync attributes messages by that, never by what they claim.
 * It reads the roster from node->cfg on every request, so a reload takes
 * effect at once. A member that broke the protocol is refused for a
 * back-off that grows with each offence (zap_ban), and refusals are logged
 * once per window with a count, so a flood of handshakes cannot flood the
 * log.
 */
#ifndef LOKET_ZAP_H
#define LOKET_ZAP_H

#include <uv.h>

#include "daemon/node.h"
#include "daemon/zwatch.h"
#include "proto/error.h"

#define ZAP_BAN_FIRST_MS 5000u    /* the first ban of a member that broke the protocol */
#define ZAP_BAN_MAX_MS   600000u  /* bans double with each offence up to ten minutes */
#define ZAP_BAN_FORGIVE  3600000u /* an hour without an offence starts the count again */
#define ZAP_LOG_WINDOW   10000u   /* refused connections: one log line per window */

/* A member shut out at the handshake after a protocol error. */
struct zap_ban {
	uint8_t key[32];       /* the member's Ed25519 key */
	uint64_t until;        /* uv_now ms; refused before it */
	uint64_t last_offence; /* uv_now ms */
	unsigned offences;
};

struct zap {
	struct node *node;
	uv_loop_t *loop;
	void *zsock;
	struct zwatch watch;
	unsigned long admitted;
	unsigned long refused;
	struct zap_ban *bans; /* one per member that ever offended; grows with the roster */
	size_t n_bans, cap_bans;
	/* Refusals since the last log line, and what the last one was. */
	unsigned long refused_unlogged;
	uint64_t refused_logged_at;
	char refused_last[ERROR_QUOTE_SIZE + 200];
	void (*on_closed)(struct zap *z);
};

/* Binds inproc://zeromq.zap.01 in zctx and starts answering. */
int zap_init(struct zap *z, uv_loop_t *loop, void *zctx, struct node *node, char *err,
             size_t errlen);
/*
 * Refuses member key at the handshake for a back-off that starts at
 * ZAP_BAN_FIRST_MS and doubles with each offence; returns its length in ms.
 */
uint64_t zap_ban(struct zap *z, const uint8_t key[32]);
/* The ms left of key's ban (0: none) and its offences so far. */
uint64_t zap_ban_left(const struct zap *z, const uint8_t key[32], unsigned *offences);
/* Logs the refusals not logged yet once their window has ended (from the sync timer). */
void zap_log_flush(struct zap *z);
/* Stops answering and closes the socket; cb runs once the handles are closed. */
void zap_close(struct zap *z, void (*cb)(struct zap *z));

#endif
