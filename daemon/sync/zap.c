/*
 * zap: answers ZAP requests from libzmq's I/O threads on the loop thread.
 *
 * A request is [version, request id, domain, address, identity, mechanism,
 * credentials...]; for CURVE the one credential is the client's 32-byte
 * public key. The reply is [version, request id, status, text, user id,
 * metadata]. The REP socket handles the envelope.
 */
#include "daemon/sync/zap.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include <zmq.h>

#include "common/config.h"
#include "common/key.h"
#include "common/log.h"

#define ZAP_ENDPOINT   "inproc://zeromq.zap.01"
#define ZAP_MAX_FRAMES 8

/* The roster member whose CURVE key is curve, or NULL. */
static const struct config_member *zap_member(const struct config *cfg, const uint8_t *curve)
{
	for (size_t i = 0; i < cfg->n_members; i++) {
		uint8_t pk[32];
		if (key_curve_public(cfg->members[i].key, pk) == 0 && memcmp(pk, curve, 32) == 0)
			return &cfg->members[i];
	}
	return NULL;
}

static void zap_on_readable(struct zwatch *w, void *zsock, void *data)
{
	(void)w;
	struct zap *z = data;
	zmq_msg_t frames[ZAP_MAX_FRAMES];
	size_t n = 0;
	int more = 1;
	for (; n < ZAP_MAX_FRAMES && more; n++) {
		zmq_msg_init(&frames[n]);
		if (zmq_msg_recv(&frames[n], zsock, ZMQ_DONTWAIT) < 0) {
			zmq_msg_close(&frames[n]);
			goto done;
		}
		more = zmq_msg_more(&frames[n]);
	}
	while (more) {
		zmq_msg_t rest;
		zmq_msg_init(&rest);
		if (zmq_msg_recv(&rest, zsock, ZMQ_DONTWAIT) < 0)
			more = 0;
		else
			more = zmq_msg_more(&rest);
		zmq_msg_close(&rest);
	}
	if (n < 2)
		goto done; /* cannot even answer: libzmq never sends this */

	const char *status = "400", *text = "not a roster member";
	char user[45] = "";
	const struct config_member *m = NULL;
	if (n == 7 && zmq_msg_size(&frames[5]) == 5 &&
	    memcmp(zmq_msg_data(&frames[5]), "CURVE", 5) == 0 && zmq_msg_size(&frames[6]) == 32)
		m = zap_member(z->node->cfg, zmq_msg_data(&frames[6]));
	if (m) {
		status = "200";
		text = "OK";
		config_key_encode(m->key, user);
		z->admitted++;
		log_debug("zap: admitted %s", m->name);
	} else {
		char addr[64] = "?";
		if (n > 3) {
			size_t len = zmq_msg_size(&frames[3]);
			if (len >= sizeof(addr))
				len = sizeof(addr) - 1;
			memcpy(addr, zmq_msg_data(&frames[3]), len);
			addr[len] = '\0';
			for (size_t i = 0; i < len; i++)
				if ((unsigned char)addr[i] < 0x20 || (unsigned char)addr[i] > 0x7e)
					addr[i] = '?';
		}
		z->refused++;
		log_warn("zap: refused a connection from %s: its key is not in the roster "
		         "(%lu refused so far)",
		         addr, z->refused);
	}
	/* [version, request id, status, text, user id, metadata] */
	if (zmq_send(zsock, "1.0", 3, ZMQ_SNDMORE) < 0 ||
	    zmq_send(zsock, zmq_msg_data(&frames[1]), zmq_msg_size(&frames[1]), ZMQ_SNDMORE) < 0 ||
	    zmq_send(zsock, status, 3, ZMQ_SNDMORE) < 0 ||
	    zmq_send(zsock, text, strlen(text), ZMQ_SNDMORE) < 0 ||
	    zmq_send(zsock, user, strlen(user), ZMQ_SNDMORE) < 0 || zmq_send(zsock, "", 0, 0) < 0)
		log_error("zap: cannot reply: %s", zmq_strerror(zmq_errno()));
	zwatch_kick(&z->watch);
done:
	for (size_t i = 0; i < n; i++)
		zmq_msg_close(&frames[i]);
}

int zap_init(struct zap *z, uv_loop_t *loop, void *zctx, struct node *node, char *err,
             size_t errlen)
{
	memset(z, 0, sizeof(*z));
	z->node = node;
	z->zsock = zmq_socket(zctx, ZMQ_REP);
	if (!z->zsock)
		goto zmq_failed;
	int linger = 0;
	zmq_setsockopt(z->zsock, ZMQ_LINGER, &linger, sizeof(linger));
	if (zmq_bind(z->zsock, ZAP_ENDPOINT) != 0)
		goto zmq_failed;
	int rc = zwatch_init(loop, &z->watch, z->zsock, zap_on_readable, z);
	if (rc != 0) {
		snprintf(err, errlen, "zap: cannot watch socket: %s", uv_strerror(rc));
		zmq_close(z->zsock);
		z->zsock = NULL;
		return rc;
	}
	return 0;
zmq_failed:
	rc = -zmq_errno();
	snprintf(err, errlen, "zap: %s: %s", ZAP_ENDPOINT, zmq_strerror(zmq_errno()));
	if (z->zsock)
		zmq_close(z->zsock);
	z->zsock = NULL;
	return rc;
}

static void zap_on_watch_closed(struct zwatch *w)
{
	struct zap *z = (struct zap *)((char *)w - offsetof(struct zap, watch));
	zmq_close(z->zsock);
	z->zsock = NULL;
	if (z->on_closed)
		z->on_closed(z);
}

void zap_close(struct zap *z, void (*cb)(struct zap *z))
{
	z->on_closed = cb;
	zwatch_close(&z->watch, zap_on_watch_closed);
}
