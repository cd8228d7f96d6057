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
#include <stdlib.h>
#include <string.h>

#include <zmq.h>

#include "common/config.h"
#include "common/key.h"
#include "common/log.h"
#include "proto/error.h"

#define ZAP_ENDPOINT   "inproc://zeromq.zap.01"
#define ZAP_MAX_FRAMES 8

struct zap_find {
	const struct config *cfg;
	const uint8_t *curve;
	const struct config_member *m;
};

static int zap_rotated(void *arg, const uint8_t origin[32], uint64_t from_seq,
                       const uint8_t key[32])
{
	struct zap_find *f = arg;
	uint8_t pk[32];
	const struct config_member *m = config_member_by_key(f->cfg, origin);
	(void)from_seq;
	if (!m || key_curve_public(key, pk) != 0 || memcmp(pk, f->curve, 32) != 0 ||
	    config_key_revoked(f->cfg, origin, key))
		return 0;
	/* Two members' chains that rotated to one key: neither is told by it. */
	if (f->m && f->m != m) {
		f->m = NULL;
		return 1;
	}
	f->m = m;
	return 0;
}

/*
 * The roster member whose CURVE key is curve, or NULL: the CURVE key of
 * the member's origin or of any key its chain rotated to (the store's key
 * history, proto/FORMAT.md section 14), but for keys the roster revokes
 * and keys that the chains of two members name (a member may write a
 * record naming any key: an origin's own key always wins, and an
 * ambiguous one admits no one).
 * Older keys stay admitted so that a member that has not switched its
 * CURVE identity yet still connects; what it sends is checked by
 * signature under the key each seq names, whatever the connection.
 */
static const struct config_member *zap_member(struct node *node, const uint8_t *curve)
{
	const struct config *cfg = node->cfg;
	for (size_t i = 0; i < cfg->n_members; i++) {
		uint8_t pk[32];
		if (key_curve_public(cfg->members[i].key, pk) == 0 && memcmp(pk, curve, 32) == 0)
			return config_key_revoked(cfg, cfg->members[i].key, cfg->members[i].key)
			           ? NULL
			           : &cfg->members[i];
	}
	struct zap_find f = {.cfg = cfg, .curve = curve};
	if (store_each_key(node->store, zap_rotated, &f) < 0)
		log_error("zap: cannot read the key history: %s", store_errmsg(node->store));
	return f.m;
}

/* One line per ZAP_LOG_WINDOW: the first refusal at once, the rest as a count. */
static void refused_log(struct zap *z)
{
	uint64_t now = uv_now(z->loop);
	if (z->refused_logged_at && now - z->refused_logged_at < ZAP_LOG_WINDOW) {
		z->refused_unlogged++;
		return;
	}
	log_warn("zap: refused a connection %s (%lu refused so far)", z->refused_last, z->refused);
	z->refused_logged_at = now;
	z->refused_unlogged = 0;
}

void zap_log_flush(struct zap *z)
{
	uint64_t now = uv_now(z->loop);
	if (z->refused_unlogged == 0 || now - z->refused_logged_at < ZAP_LOG_WINDOW)
		return;
	log_warn("zap: refused %lu more connections in %llu s; the last %s", z->refused_unlogged,
	         (unsigned long long)((now - z->refused_logged_at) / 1000), z->refused_last);
	z->refused_logged_at = now;
	z->refused_unlogged = 0;
}

static struct zap_ban *ban_of(const struct zap *z, const uint8_t key[32])
{
	for (size_t i = 0; i < z->n_bans; i++)
		if (memcmp(z->bans[i].key, key, 32) == 0)
			return &z->bans[i];
	return NULL;
}

uint64_t zap_ban(struct zap *z, const uint8_t key[32])
{
	uint64_t now = uv_now(z->loop);
	struct zap_ban *b = ban_of(z, key);
	if (!b) {
		if (z->n_bans == z->cap_bans) {
			z->cap_bans = z->cap_bans ? 2 * z->cap_bans : 8;
			z->bans = realloc(z->bans, z->cap_bans * sizeof(*z->bans));
			if (!z->bans)
				abort();
		}
		b = &z->bans[z->n_bans++];
		memset(b, 0, sizeof(*b));
		memcpy(b->key, key, 32);
	}
	if (b->offences && now - b->last_offence > ZAP_BAN_FORGIVE)
		b->offences = 0;
	uint64_t len = ZAP_BAN_FIRST_MS;
	for (unsigned i = 0; i < b->offences && len < ZAP_BAN_MAX_MS; i++)
		len *= 2;
	if (len > ZAP_BAN_MAX_MS)
		len = ZAP_BAN_MAX_MS;
	b->offences++;
	b->last_offence = now;
	b->until = now + len;
	return len;
}

uint64_t zap_ban_left(const struct zap *z, const uint8_t key[32], unsigned *offences)
{
	const struct zap_ban *b = ban_of(z, key);
	uint64_t now = uv_now(z->loop);
	if (offences)
		*offences = b ? b->offences : 0;
	return b && b->until > now ? b->until - now : 0;
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
	char user[45] = "", curve[45] = "?";
	const struct config_member *m = NULL;
	uint64_t ban_left = 0;
	if (n == 7 && zmq_msg_size(&frames[5]) == 5 &&
	    memcmp(zmq_msg_data(&frames[5]), "CURVE", 5) == 0 && zmq_msg_size(&frames[6]) == 32) {
		m = zap_member(z->node, zmq_msg_data(&frames[6]));
		config_key_encode(zmq_msg_data(&frames[6]), curve);
	}
	if (m && (ban_left = zap_ban_left(z, m->key, NULL)) > 0) {
		text = "banned for a protocol error";
	} else if (m) {
		status = "200";
		text = "OK";
		config_key_encode(m->key, user);
		z->admitted++;
		log_debug("zap: admitted %s", m->name);
	}
	if (!m || ban_left > 0) {
		char addr[ERROR_QUOTE_SIZE] = "?";
		if (n > 3)
			error_quote(addr, sizeof(addr), zmq_msg_data(&frames[3]),
			            zmq_msg_size(&frames[3]));
		z->refused++;
		if (m)
			snprintf(
			    z->refused_last, sizeof(z->refused_last),
			    "from %s: member %s is banned for %llu s more after a protocol error",
			    addr, m->name, (unsigned long long)((ban_left + 999) / 1000));
		else
			snprintf(z->refused_last, sizeof(z->refused_last),
			         "from %s: its CURVE key %s is not a roster member's", addr, curve);
		refused_log(z);
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
	z->loop = loop;
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
	free(z->bans);
	z->bans = NULL;
	z->n_bans = z->cap_bans = 0;
	if (z->on_closed)
		z->on_closed(z);
}

void zap_close(struct zap *z, void (*cb)(struct zap *z))
{
	z->on_closed = cb;
	zwatch_close(&z->watch, zap_on_watch_closed);
}
