/*
 * zap: the ZeroMQ authentication handler (ZAP, RFC 27) of the daemon's
 * context. Without it a CURVE server admits every client that knows its
 * public key, so it must be bound before any CURVE socket binds. It admits
 * a client only if its CURVE key derives from the Ed25519 key of a current
 * roster member, and names that member in the User-Id it returns (the
 * member's key in base64), which every message on the connection then
 * carries: sync attributes messages by that, never by what they claim.
 * It reads the roster from node->cfg on every request, so a reload takes
 * effect at once.
 */
#ifndef LOKET_ZAP_H
#define LOKET_ZAP_H

#include <uv.h>

#include "daemon/node.h"
#include "daemon/zwatch.h"

struct zap {
	struct node *node;
	void *zsock;
	struct zwatch watch;
	unsigned long admitted;
	unsigned long refused;
	void (*on_closed)(struct zap *z);
};

/* Binds inproc://zeromq.zap.01 in zctx and starts answering. */
int zap_init(struct zap *z, uv_loop_t *loop, void *zctx, struct node *node, char *err,
             size_t errlen);
/* Stops answering and closes the socket; cb runs once the handles are closed. */
void zap_close(struct zap *z, void (*cb)(struct zap *z));

#endif
