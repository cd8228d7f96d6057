/*
 * sync: the federation's owner module. It sets the state up and tears it
 * down, binds the listening ROUTER, dials and hangs up roster members (one
 * DEALER and its monitor each), reads whole messages off every socket,
 * decodes each header and hands the message on by its type (to
 * sync_session.c, or the receive path in sync_receive.c), runs the one
 * periodic timer, and serves the control commands "peers", "reload" and
 * "resume".
 * The other sync files never call back into this one
 * (daemon/sync/sync_state.h says the order).
 *
 * The protocol (messages, credit, claims, fork proofs and the freezing
 * rule) is written down in proto/SYNC.md.
 */
#include "daemon/sync/sync.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>

#include <sodium.h>
#include <zmq.h>

#include "common/config.h"
#include "common/key.h"
#include "common/log.h"
#include "daemon/sync/sync_receive.h"
#include "daemon/sync/sync_session.h"
#include "daemon/sync/sync_tlog.h"
#include "daemon/sync/sync_state.h"
#include "daemon/sync/zap.h"
#include "daemon/zwatch.h"
#include "proto/error.h"
#include "proto/limits.h"
#include "proto/value.h"

/* ---- helpers ---- */

/* The slot of key, added if new; SIZE_MAX if the table is full. */
static size_t origin_slot(struct sync_state *st, const uint8_t key[32])
{
	struct sync_origin *o = sync_origin_by_key(st, key);
	if (o)
		return (size_t)(o - st->origins);
	if (st->n_origins == SYNC_MAX_ORIGINS)
		return SIZE_MAX;
	o = &st->origins[st->n_origins];
	memset(o, 0, sizeof(*o));
	memcpy(o->key, key, 32);
	config_key_encode(key, o->b64);
	if (store_head(st->node->store, key, &o->head, o->head_hash) != 0) {
		o->head = 0;
		memset(o->head_hash, 0, 32);
	}
	o->expect = o->head + 1;
	if (store_fork_seq(st->node->store, key, &o->frozen_at) != 0)
		o->frozen_at = 0;
	uint64_t split;
	if (store_split_get(st->node->store, key, &split, NULL, NULL) == 0)
		o->split_at = split + 1;
	if (store_key_at(st->node->store, key, o->head + 1, o->signer) != 0)
		memcpy(o->signer, key, 32);
	return st->n_origins++;
}

static int member_key_moved(struct sync_state *st, struct sync_member *m);

static struct sync_member *member_by_key(struct sync_state *st, const uint8_t key[32])
{
	for (size_t i = 0; i < st->n_members; i++)
		if (memcmp(st->members[i]->key, key, 32) == 0)
			return st->members[i];
	return NULL;
}

/* ---- messages received ---- */

/*
 * One message from member m on one of its sessions: the header is decoded
 * here and the message goes to the session code (hello, have, want, error)
 * or the receive path (cs) by its type.
 */
static void handle_message(struct sync_state *st, struct sync_member *m, int kind, zmq_msg_t *msg)
{
	struct sync_session *sess = &m->s[kind];
	const uint8_t *p = zmq_msg_data(msg);
	size_t len = zmq_msg_size(msg), used = 0;
	char err[256];
	json_t *hdr = NULL;
	sess->last_seen = sync_now_ms(st);
	sess->last_seen_wall = hlc_wall_ms();
	m->bytes_in += len;
	if (len > SYNC_MSG_MAX) {
		char why[128];
		m->oversize++;
		snprintf(why, sizeof(why), "a frame of %zu bytes, over the limit of %u", len,
		         SYNC_MSG_MAX);
		sync_misbehave(st, m, kind, why);
		return;
	}
	if (value_check(p, len, LOKET_MAX_MESSAGE_DEPTH, 0, &used, err, sizeof(err)) != 0 ||
	    value_decode_message(p, used, &hdr, err, sizeof(err)) != 0) {
		char why[320];
		snprintf(why, sizeof(why), "undecodable message: %s", err);
		sync_misbehave(st, m, kind, why);
		return;
	}
	const char *t = json_string_value(json_object_get(hdr, "t"));
	if (!t) {
		sync_misbehave(st, m, kind, "message without a type");
	} else if (strcmp(t, "hello") == 0) {
		sync_session_hello(st, m, kind, hdr);
		if (!m->incompatible && m->s[kind].up)
			sync_tlog_share(st, m, &m->s[kind]);
	} else if (m->incompatible) {
		/* Nothing but a hello is heard from an incompatible peer. */
	} else if (strcmp(t, "have") == 0) {
		sync_session_have(st, m, kind, hdr);
	} else if (strcmp(t, "want") == 0) {
		sync_session_want(st, m, kind, hdr);
	} else if (strcmp(t, "cs") == 0) {
		sync_take_changesets(st, m, kind, hdr, msg, used);
		sync_pump(st);
	} else if (strcmp(t, "fork") == 0) {
		sync_take_proof(st, m, kind, hdr, msg, used);
	} else if (strcmp(t, "ckpt") == 0) {
		sync_tlog_take(st, m, kind, hdr);
	} else if (strcmp(t, "split") == 0) {
		sync_tlog_take_split(st, m, kind, hdr);
	} else if (strcmp(t, "error") == 0) {
		sync_session_error(m, hdr);
	} else {
		sync_misbehave(st, m, kind, "message of unknown type");
	}
	json_decref(hdr);
}

/* ---- reading the sockets ---- */

/* Receives one whole message; 0 and one frame in *msg, or -1 (nothing or dropped). */
static int recv_frames(void *zsock, zmq_msg_t *frames, size_t max, size_t *n)
{
	int more = 1;
	*n = 0;
	while (more) {
		zmq_msg_t *f = &frames[*n < max ? *n : max];
		zmq_msg_init(f);
		if (zmq_msg_recv(f, zsock, ZMQ_DONTWAIT) < 0) {
			zmq_msg_close(f);
			return -1;
		}
		more = zmq_msg_more(f);
		if (*n < max)
			(*n)++;
		else
			zmq_msg_close(f); /* frames beyond max are read and dropped */
	}
	return 0;
}

static void router_on_readable(struct zwatch *w, void *zsock, void *data)
{
	(void)w;
	struct sync_state *st = data;
	zmq_msg_t frames[3]; /* one spare slot for the overflow frame */
	size_t n;
	if (recv_frames(zsock, frames, 2, &n) != 0) {
		for (size_t i = 0; i < n; i++)
			zmq_msg_close(&frames[i]);
		return;
	}
	const char *user = n == 2 ? zmq_msg_gets(&frames[1], "User-Id") : NULL;
	uint8_t key[32];
	struct sync_member *m = NULL;
	if (user && config_key_decode(user, key) == 0)
		m = member_by_key(st, key);
	size_t rid_len = zmq_msg_size(&frames[0]);
	if (!m || m->removed || rid_len == 0 || rid_len > SYNC_RID_MAX) {
		st->refused++;
		goto out;
	}
	struct sync_session *sess = &m->s[SESSION_ACCEPTED];
	const uint8_t *rid = zmq_msg_data(&frames[0]);
	if (sess->banned_rid_len == rid_len && memcmp(sess->banned_rid, rid, rid_len) == 0)
		goto out; /* dropped for misbehaving: silent until it connects anew */
	int fd = zmq_msg_get(&frames[1], ZMQ_SRCFD);
	if (!sess->up || sess->rid_len != rid_len || memcmp(sess->rid, rid, rid_len) != 0) {
		/*
		 * One accepted connection per member: while the one it has is
		 * open, messages on another are dropped unread, so that a member
		 * cannot have replies queued on many. The listener's monitor says
		 * when that one ends (conn_ended); a dead peer's ends within the
		 * heartbeat timeout.
		 */
		if (sess->up && sess->fd >= 0 && sess->fd != fd) {
			st->extra_conns++;
			sync_log_peer(st, m, LOG_LEVEL_WARN,
			              "a second connection while its first is open: ignored");
			goto out;
		}
		memcpy(sess->rid, rid, rid_len);
		sess->rid_len = rid_len;
		sess->up = 1;
		sess->gen++;
		sync_log_peer(st, m, LOG_LEVEL_INFO, "connected to us");
	}
	sess->fd = fd;
	handle_message(st, m, SESSION_ACCEPTED, &frames[1]);
out:
	for (size_t i = 0; i < n; i++)
		zmq_msg_close(&frames[i]);
}

static void dealer_on_readable(struct zwatch *w, void *zsock, void *data)
{
	(void)w;
	struct sync_member *m = data;
	zmq_msg_t frames[2];
	size_t n;
	if (recv_frames(zsock, frames, 1, &n) != 0) {
		for (size_t i = 0; i < n; i++)
			zmq_msg_close(&frames[i]);
		return;
	}
	if (n == 1 && m->s[SESSION_DIALLED].up && !m->removed)
		handle_message(m->st, m, SESSION_DIALLED, &frames[0]);
	for (size_t i = 0; i < n; i++)
		zmq_msg_close(&frames[i]);
}

/* Dials m again later, backing off from 1 s to 30 s while it keeps refusing. */
static void schedule_redial(struct sync_state *st, struct sync_member *m)
{
	m->redial_backoff = m->redial_backoff ? m->redial_backoff * 2 : 1000;
	if (m->redial_backoff > 30000)
		m->redial_backoff = 30000;
	m->redial_at = sync_now_ms(st) + m->redial_backoff;
}

static void monitor_on_readable(struct zwatch *w, void *zsock, void *data)
{
	char q[ERROR_QUOTE_SIZE];
	(void)w;
	struct sync_member *m = data;
	struct sync_state *st = m->st;
	zmq_msg_t frames[3];
	size_t n;
	if (recv_frames(zsock, frames, 2, &n) != 0) {
		for (size_t i = 0; i < n; i++)
			zmq_msg_close(&frames[i]);
		return;
	}
	if (n < 1 || zmq_msg_size(&frames[0]) < 6)
		goto out;
	const uint8_t *d = zmq_msg_data(&frames[0]);
	uint16_t event = (uint16_t)(d[0] | d[1] << 8);
	uint32_t value =
	    (uint32_t)d[2] | (uint32_t)d[3] << 8 | (uint32_t)d[4] << 16 | (uint32_t)d[5] << 24;
	struct sync_session *sess = &m->s[SESSION_DIALLED];
	char why[SYNC_REASON_MAX];
	switch (event) {
	case ZMQ_EVENT_HANDSHAKE_SUCCEEDED:
		m->redial_at = 0;
		m->redial_backoff = 0;
		sess->up = 1;
		sess->gen++;
		log_info("sync: dialled %s at %s", m->name, m->endpoint);
		if (!m->removed)
			sync_send_hello(st, m, sess, 0);
		break;
	case ZMQ_EVENT_DISCONNECTED:
		if (sess->up)
			log_info("sync: lost the session dialled to %s", m->name);
		sess->up = 0;
		sess->gen++;
		sync_clear_fetches(st, m);
		member_key_moved(st, m);
		break;
	case ZMQ_EVENT_HANDSHAKE_FAILED_AUTH:
		snprintf(why, sizeof(why),
		         "%s refused this node's key (ZAP status %u): is this node in its roster?",
		         error_quote_str(q, sizeof(q), m->endpoint), value);
		if (strcmp(m->last_error, why) != 0)
			log_warn("sync: %s: %s", m->name, why);
		sync_set_error(m, why);
		if (!member_key_moved(st, m))
			schedule_redial(st, m);
		break;
	case ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL:
	case ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL:
		snprintf(why, sizeof(why),
		         "CURVE handshake with %s failed: is the member key in the roster right?",
		         error_quote_str(q, sizeof(q), m->endpoint));
		if (strcmp(m->last_error, why) != 0)
			log_warn("sync: %s: %s", m->name, why);
		sync_set_error(m, why);
		if (!member_key_moved(st, m))
			schedule_redial(st, m);
		break;
	default:
		break;
	}
out:
	for (size_t i = 0; i < n; i++)
		zmq_msg_close(&frames[i]);
}

/* ---- sockets ---- */

static void set_common_options(void *zsock)
{
	int linger = 0, hwm = SYNC_HWM, hb = SYNC_HEARTBEAT_MS, hbt = 3 * SYNC_HEARTBEAT_MS;
	int hs = 5000;
	int64_t max = SYNC_MSG_MAX + 64 * 1024;
	zmq_setsockopt(zsock, ZMQ_LINGER, &linger, sizeof(linger));
	zmq_setsockopt(zsock, ZMQ_SNDHWM, &hwm, sizeof(hwm));
	zmq_setsockopt(zsock, ZMQ_RCVHWM, &hwm, sizeof(hwm));
	zmq_setsockopt(zsock, ZMQ_MAXMSGSIZE, &max, sizeof(max));
	zmq_setsockopt(zsock, ZMQ_HEARTBEAT_IVL, &hb, sizeof(hb));
	zmq_setsockopt(zsock, ZMQ_HEARTBEAT_TIMEOUT, &hbt, sizeof(hbt));
	zmq_setsockopt(zsock, ZMQ_HEARTBEAT_TTL, &hbt, sizeof(hbt));
	zmq_setsockopt(zsock, ZMQ_HANDSHAKE_IVL, &hs, sizeof(hs));
}

static int member_dial(struct sync_state *st, struct sync_member *m);

/*
 * Dials m afresh with the keys of now: this node's key as the client's,
 * m's newest key as the server's. libzmq takes a socket's CURVE options
 * when it connects, so a disconnect and connect is enough.
 */
static void member_rearm(struct sync_state *st, struct sync_member *m)
{
	char q[ERROR_QUOTE_SIZE];
	if (!m->dealer || key_arm_curve_client(st->node->key, m->dealer, m->curve_key) != 0)
		return;
	memcpy(m->dealer_key, m->curve_key, 32);
	m->redial_at = 0;
	zmq_disconnect(m->dealer, m->endpoint);
	if (zmq_connect(m->dealer, m->endpoint) != 0)
		log_error("sync: %s: cannot dial %s again: %s", m->name,
		          error_quote_str(q, sizeof(q), m->endpoint), zmq_strerror(zmq_errno()));
}

/* A dialled session that ended or failed: dialled again at once if m's key changed meanwhile. */
static int member_key_moved(struct sync_state *st, struct sync_member *m)
{
	if (memcmp(m->curve_key, m->dealer_key, 32) == 0)
		return 0;
	log_info("sync: %s: dialling again with its new key", m->name);
	member_rearm(st, m);
	return 1;
}

static void on_member_watch_closed(struct zwatch *w)
{
	struct sync_member *m = w->data;
	struct sync_state *st = m->st;
	if (w == &m->monitor_watch) {
		zmq_close(m->monitor);
		m->monitor = NULL;
	} else {
		zmq_close(m->dealer);
		m->dealer = NULL;
	}
	st->pending_closes--;
	/* Back in the roster while its old sockets closed: dial it again. */
	if (!m->dealer && !m->monitor && !m->removed && !st->closing && m->endpoint[0])
		member_dial(st, m);
	sync_state_maybe_free(st);
}

/* Stops dialling m; the sockets close once their watches have. */
static void member_hang_up(struct sync_state *st, struct sync_member *m)
{
	if (!m->dealer)
		return;
	zmq_socket_monitor(m->dealer, NULL, 0);
	m->s[SESSION_DIALLED].up = 0;
	m->s[SESSION_DIALLED].gen++;
	st->pending_closes += 2;
	zwatch_close(&m->monitor_watch, on_member_watch_closed);
	zwatch_close(&m->dealer_watch, on_member_watch_closed);
}

/* Creates the DEALER that dials m, and its monitor. */
static int member_dial(struct sync_state *st, struct sync_member *m)
{
	if (!m->endpoint[0] || m->dealer)
		return 0;
	int rc = 0;
	m->dealer = zmq_socket(st->zctx, ZMQ_DEALER);
	if (!m->dealer)
		return -zmq_errno();
	set_common_options(m->dealer);
	int ivl = 100, ivl_max = 5000, one = 1;
	zmq_setsockopt(m->dealer, ZMQ_RECONNECT_IVL, &ivl, sizeof(ivl));
	zmq_setsockopt(m->dealer, ZMQ_RECONNECT_IVL_MAX, &ivl_max, sizeof(ivl_max));
	zmq_setsockopt(m->dealer, ZMQ_IMMEDIATE, &one, sizeof(one));
	rc = key_arm_curve_client(st->node->key, m->dealer, m->curve_key);
	if (rc != 0)
		goto fail;
	memcpy(m->dealer_key, m->curve_key, 32);
	snprintf(m->mon_endpoint, sizeof(m->mon_endpoint), "inproc://loket-sync-monitor-%u",
	         st->monitor_seq++);
	if (zmq_socket_monitor(m->dealer, m->mon_endpoint,
	                       ZMQ_EVENT_HANDSHAKE_SUCCEEDED | ZMQ_EVENT_DISCONNECTED |
	                           ZMQ_EVENT_HANDSHAKE_FAILED_AUTH |
	                           ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL |
	                           ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL) != 0)
		goto zfail;
	m->monitor = zmq_socket(st->zctx, ZMQ_PAIR);
	if (!m->monitor)
		goto zfail;
	int linger = 0;
	zmq_setsockopt(m->monitor, ZMQ_LINGER, &linger, sizeof(linger));
	if (zmq_connect(m->monitor, m->mon_endpoint) != 0)
		goto zfail;
	if (zmq_connect(m->dealer, m->endpoint) != 0)
		goto zfail;
	rc = zwatch_init(st->loop, &m->dealer_watch, m->dealer, dealer_on_readable, m);
	if (rc != 0)
		goto fail; /* zwatch_init cleans up after itself only partly: a bug-level event */
	rc = zwatch_init(st->loop, &m->monitor_watch, m->monitor, monitor_on_readable, m);
	if (rc != 0)
		goto fail;
	return 0;
zfail:
	rc = -zmq_errno();
fail:
	if (m->dealer) {
		zmq_socket_monitor(m->dealer, NULL, 0);
		zmq_close(m->dealer);
	}
	if (m->monitor)
		zmq_close(m->monitor);
	m->dealer = NULL;
	m->monitor = NULL;
	return rc;
}

/* Adds or refreshes a roster member; returns it, or NULL if the tables are full. */
static struct sync_member *member_add(struct sync_state *st, const struct config_member *cm,
                                      int *is_new)
{
	char q[ERROR_QUOTE_SIZE];
	struct sync_member *m = member_by_key(st, cm->key);
	*is_new = !m || m->removed;
	if (!m) {
		size_t slot = origin_slot(st, cm->key);
		if (slot == SIZE_MAX || st->n_members == SYNC_MAX_ORIGINS)
			return NULL;
		m = calloc(1, sizeof(*m));
		if (!m)
			abort();
		m->st = st;
		m->s[SESSION_DIALLED].fd = m->s[SESSION_ACCEPTED].fd = -1;
		memcpy(m->key, cm->key, 32);
		config_key_encode(cm->key, m->b64);
		m->slot = slot;
		sync_member_key_refresh(st, m);
		st->members[st->n_members++] = m;
	}
	snprintf(m->name, sizeof(m->name), "%s", cm->name);
	if (m->dealer) {
		/* Its sockets may still be closing: a new endpoint waits for a restart. */
		if (strcmp(m->endpoint, cm->endpoint) != 0)
			log_warn("sync: %s: the new endpoint %s takes effect at the next restart",
			         m->name,
			         cm->endpoint[0] ? error_quote_str(q, sizeof(q), cm->endpoint)
			                         : "(none)");
		m->removed = 0;
		return m;
	}
	m->removed = 0;
	snprintf(m->endpoint, sizeof(m->endpoint), "%s", cm->endpoint);
	if (m->endpoint[0] && !m->dealer) {
		int rc = member_dial(st, m);
		if (rc != 0) {
			char why[SYNC_REASON_MAX];
			snprintf(why, sizeof(why), "cannot dial %s: %s",
			         error_quote_str(q, sizeof(q), m->endpoint), loket_strerror(rc));
			log_error("sync: %s: %s", m->name, why);
			sync_set_error(m, why);
		}
	}
	return m;
}

static void member_remove(struct sync_state *st, struct sync_member *m)
{
	m->removed = 1;
	member_hang_up(st, m);
	if (m->s[SESSION_ACCEPTED].up)
		sync_send_error(st, m, &m->s[SESSION_ACCEPTED],
		                "this node removed you from its roster");
	sync_session_drop(st, m, SESSION_ACCEPTED);
	sync_clear_fetches(st, m);
}

/*
 * Closes every connection accepted on the listener by binding it afresh:
 * libzmq ends a listener's connections with it. Members reconnect at once
 * and pass ZAP again; removed ones no longer can.
 */
static void rebind_listener(struct sync_state *st)
{
	char q[ERROR_QUOTE_SIZE];
	if (!st->router || !st->listen[0])
		return;
	char last[CONFIG_ENDPOINT_MAX];
	size_t size = sizeof(last);
	if (zmq_getsockopt(st->router, ZMQ_LAST_ENDPOINT, last, &size) != 0)
		return;
	if (zmq_unbind(st->router, last) != 0) {
		log_error("sync: cannot unbind %s: %s", error_quote_str(q, sizeof(q), last),
		          zmq_strerror(zmq_errno()));
		return;
	}
	/* The listener closes on libzmq's I/O thread: bind again from the timer. */
	st->rebind_pending = 1;
}

static void try_rebind(struct sync_state *st)
{
	char q[ERROR_QUOTE_SIZE];
	if (zmq_bind(st->router, st->listen) == 0) {
		st->rebind_pending = 0;
		log_info("sync: listening on %s again", st->listen);
	} else if (zmq_errno() != EADDRINUSE) {
		st->rebind_pending = 0;
		log_error("sync: cannot bind %s again: %s",
		          error_quote_str(q, sizeof(q), st->listen), zmq_strerror(zmq_errno()));
	}
}

/*
 * This node's CURVE identity follows its new key: the listener is bound
 * afresh with it (which ends the connections accepted) and every dealer
 * dials again with it. Done once the peers with a session up have taken
 * the rotation record (so their ZAP knows the new key), or at the
 * deadline; a peer that was away takes the record from any other peer.
 */
static void rearm_self(struct sync_state *st)
{
	uint64_t now = sync_now_ms(st);
	int all = 1;
	for (size_t i = 0; i < st->n_members; i++) {
		struct sync_member *m = st->members[i];
		if (!m->removed && sync_send_session(m) && m->confirmed_self < st->rotated_seq)
			all = 0;
	}
	if (!all && now < st->rearm_at)
		return;
	log_info("sync: the CURVE identity follows the key rotated at seq %llu%s",
	         (unsigned long long)st->rotated_seq,
	         all ? "" : " (not every peer has confirmed the record yet)");
	st->rotated_seq = 0;
	if (st->router && key_arm_curve_server(st->node->key, st->router) == 0)
		rebind_listener(st);
	for (size_t i = 0; i < st->n_members; i++)
		if (!st->members[i]->removed)
			member_rearm(st, st->members[i]);
}

/* ---- the periodic timer ---- */

static void on_tick(uv_timer_t *t)
{
	char q[ERROR_QUOTE_SIZE];
	struct sync_state *st = t->data;
	uint64_t now = sync_now_ms(st);
	int hello = now >= st->next_hello;
	if (hello)
		st->next_hello = now + (uint64_t)st->node->cfg->sync_interval_s * 1000u;
	if (st->rotated_seq)
		rearm_self(st);
	if (st->rebind_pending)
		try_rebind(st);
	uint64_t expiry = 3u * (uint64_t)st->node->cfg->sync_interval_s * 1000u + 2000u;
	for (size_t i = 0; i < st->n_members; i++) {
		struct sync_member *m = st->members[i];
		if (m->removed)
			continue;
		struct sync_session *d = &m->s[SESSION_DIALLED], *a = &m->s[SESSION_ACCEPTED];
		if (d->up && (hello || d->hello_owed))
			sync_send_hello(st, m, d, 0);
		if (a->up && a->hello_owed)
			sync_send_hello(st, m, a, 1);
		if (m->redial_at && now >= m->redial_at && m->dealer) {
			m->redial_at = 0;
			zmq_disconnect(m->dealer, m->endpoint);
			if (zmq_connect(m->dealer, m->endpoint) != 0)
				log_error("sync: %s: cannot dial %s again: %s", m->name,
				          error_quote_str(q, sizeof(q), m->endpoint),
				          zmq_strerror(zmq_errno()));
		}
		if (m->shut_pending && now >= m->shut_at)
			sync_shut_now(m);
		if (a->up && now - a->last_seen > expiry) {
			log_info("sync: %s went silent; its session to us is taken as closed",
			         m->name);
			a->up = 0;
			a->gen++;
			sync_clear_fetches(st, m);
		}
	}
	sync_tlog_tick(st);
	sync_log_flush(st);
	zap_log_flush(&st->zap);
	if (st->conns_open)
		sync_conns_log_flush(&st->conns);
	sync_pump(st);
}

/* ---- control commands ---- */

static json_t *member_json(struct sync_state *st, struct sync_member *m)
{
	int d = m->s[SESSION_DIALLED].up, a = m->s[SESSION_ACCEPTED].up;
	uint64_t seen = m->s[0].last_seen_wall > m->s[1].last_seen_wall ? m->s[0].last_seen_wall
	                                                                : m->s[1].last_seen_wall;
	uint64_t they_lack = 0, we_lack = 0;
	for (size_t i = 0; i < st->n_origins; i++) {
		if (!sync_origin_admitted(st, i))
			continue;
		uint64_t ours = st->origins[i].head, theirs = m->their_seq[i];
		uint64_t frozen = st->origins[i].frozen_at;
		if (frozen && theirs >= frozen)
			theirs = frozen - 1; /* nothing from a fork proof's seq on is taken */
		if (ours > theirs)
			they_lack += ours - theirs;
		else
			we_lack += theirs - ours;
	}
	unsigned offences;
	uint64_t banned = zap_ban_left(&st->zap, m->key, &offences);
	json_t *o = json_pack(
	    "{s:s, s:s, s:s?, s:s?, s:o, s:I, s:I, s:I, s:I, s:s?, s:b, s:I, s:I}", "name", m->name,
	    "key", m->b64, "endpoint", m->endpoint[0] ? m->endpoint : NULL, "session",
	    d && a ? "both"
	    : d    ? "dialled"
	    : a    ? "accepted"
	           : NULL,
	    "last_seen", seen ? json_integer((json_int_t)seen) : json_null(), "they_lack",
	    (json_int_t)they_lack, "we_lack", (json_int_t)we_lack, "errors", (json_int_t)m->errors,
	    "oversize", (json_int_t)m->oversize, "last_error",
	    m->last_error[0] ? m->last_error : NULL, "incompatible", m->incompatible, "banned_ms",
	    (json_int_t)banned, "offences", (json_int_t)offences);
	json_object_set_new(o, "bytes_in", json_integer((json_int_t)m->bytes_in));
	json_object_set_new(o, "bytes_out", json_integer((json_int_t)m->bytes_out));
	if (!o)
		abort();
	return o;
}

json_t *sync_peers(struct sync *s)
{
	struct sync_state *st = s->st;
	json_t *arr = json_array();
	for (size_t i = 0; i < st->n_members; i++)
		if (!st->members[i]->removed)
			json_array_append_new(arr, member_json(st, st->members[i]));
	return arr;
}

/* An origin's name as status names it: this node's, a member's, or its key. */
static const char *origin_name(struct sync_state *st, size_t slot)
{
	if (memcmp(st->origins[slot].key, st->node->self, 32) == 0)
		return st->node->cfg->name;
	for (size_t i = 0; i < st->n_members; i++)
		if (st->members[i]->slot == slot && !st->members[i]->removed)
			return st->members[i]->name;
	return st->origins[slot].b64;
}

/* Per origin, what came from peers since start: applied, and refused by reason. */
static json_t *origin_counters(struct sync_state *st)
{
	json_t *o = json_object();
	for (size_t i = 0; o && i < st->n_origins; i++) {
		const struct sync_origin *g = &st->origins[i];
		json_t *c = json_pack("{s:I, s:I, s:{s:I, s:I, s:I, s:I}}", "applied_changesets",
		                      (json_int_t)g->applied_changesets, "applied_ops",
		                      (json_int_t)g->applied_ops, "refused", "invalid",
		                      (json_int_t)g->refused[SYNC_REFUSED_INVALID], "fork",
		                      (json_int_t)g->refused[SYNC_REFUSED_FORK], "frozen",
		                      (json_int_t)g->refused[SYNC_REFUSED_FROZEN], "gap",
		                      (json_int_t)g->refused[SYNC_REFUSED_GAP]);
		if (!c || json_object_set_new(o, origin_name(st, i), c) != 0)
			abort();
	}
	if (!o)
		abort();
	return o;
}

json_t *sync_counters(struct sync *s)
{
	struct sync_state *st = s->st;
	json_t *c =
	    json_pack("{s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I}", "accepted",
	              (json_int_t)st->accepted, "duplicate", (json_int_t)st->duplicates, "gap",
	              (json_int_t)st->gaps, "fork", (json_int_t)st->forks, "refused",
	              (json_int_t)st->refused, "frozen", (json_int_t)st->frozen, "busy",
	              (json_int_t)st->dropped_busy, "zap_refused", (json_int_t)st->zap.refused,
	              "conns_shut", (json_int_t)(st->conns_open ? st->conns.shut : 0));
	if (!c)
		abort();
	json_object_set_new(c, "origins", origin_counters(st));
	json_object_set_new(c, "written",
	                    json_pack("{s:I, s:I}", "changesets",
	                              (json_int_t)st->node->written_changesets, "ops",
	                              (json_int_t)st->node->written_ops));
	return c;
}

/* node->peers_count: members in the roster, and those with a session up. */
static void count_peers(void *data, size_t *up, size_t *total)
{
	struct sync_state *st = data;
	*up = *total = 0;
	for (size_t i = 0; i < st->n_members; i++) {
		if (st->members[i]->removed)
			continue;
		(*total)++;
		*up += sync_send_session(st->members[i]) != NULL;
	}
}

static int handle_peers(void *data, const json_t *req, json_t **result, char *err, size_t errlen)
{
	(void)req;
	(void)err;
	(void)errlen;
	*result = sync_peers(data);
	return 0;
}

static int handle_checkpoints(void *data, const json_t *req, json_t **result, char *err,
                              size_t errlen)
{
	struct sync *s = data;

	(void)req;
	(void)err;
	(void)errlen;
	*result = sync_tlog_checkpoints(s->st);
	return 0;
}

static int handle_reload(void *data, const json_t *req, json_t **result, char *err, size_t errlen)
{
	(void)req;
	return sync_reload(data, result, err, errlen);
}

/*
 * `loket resume --force`: the node decides (node_resume); sync adds the
 * highest head of this node's own chain that a peer with a session up
 * claims, which is only a hint, but enough to refuse a risky override.
 */
static int handle_resume(void *data, const json_t *req, json_t **result, char *err, size_t errlen)
{
	struct sync *s = data;
	struct sync_state *st = s->st;
	uint64_t claim = 0;
	const char *claimer = "";
	for (size_t i = 0; i < st->n_members; i++) {
		struct sync_member *m = st->members[i];
		if (m->removed || !sync_send_session(m) || !m->their_known[0])
			continue;
		if (m->their_seq[0] > claim) {
			claim = m->their_seq[0];
			claimer = m->name;
		}
	}
	return node_resume(st->node, json_is_true(json_object_get(req, "force")), claim, claimer,
	                   result, err, errlen);
}

/* `loket rotate-key`: the node rotates (node_rotate); the CURVE identity follows. */
static int handle_rotate(void *data, const json_t *req, json_t **result, char *err, size_t errlen)
{
	struct sync *s = data;
	struct sync_state *st = s->st;
	(void)req;
	int rc = node_rotate(st->node, result, err, errlen);
	if (rc != 0)
		return rc;
	st->rotated_seq = (uint64_t)json_integer_value(json_object_get(*result, "seq"));
	st->rearm_at = sync_now_ms(st) + SYNC_REARM_MS;
	key_public(st->node->key, st->origins[0].signer);
	return 0;
}

/* Makes the sync tables follow node->cfg's roster; names of added and removed members. */
static void apply_roster(struct sync_state *st, json_t *added, json_t *removed)
{
	char q[ERROR_QUOTE_SIZE];
	const struct config *cfg = st->node->cfg;
	for (size_t i = 0; i < st->n_members; i++) {
		struct sync_member *m = st->members[i];
		if (m->removed || config_member_by_key(cfg, m->key))
			continue;
		log_info("sync: %s left the roster: its sessions close and its future changesets "
		         "are refused",
		         m->name);
		if (removed)
			json_array_append_new(removed, json_string(m->name));
		member_remove(st, m);
	}
	for (size_t i = 0; i < cfg->n_members; i++) {
		int is_new;
		struct sync_member *m = member_add(st, &cfg->members[i], &is_new);
		if (!m) {
			log_error("sync: more than %u origins; %s is not synced", SYNC_MAX_ORIGINS,
			          error_quote_str(q, sizeof(q), cfg->members[i].name));
			continue;
		}
		if (is_new && added)
			json_array_append_new(added, json_string(m->name));
	}
}

int sync_reload(struct sync *s, json_t **result, char *err, size_t errlen)
{
	struct sync_state *st = s->st;
	struct node *n = st->node;
	struct config *cfg;
	int rc = config_load(n->cfg->path, &cfg, err, errlen);
	if (rc != 0)
		return rc;
	if (strcmp(cfg->name, n->cfg->name) != 0 ||
	    strcmp(cfg->federation, n->cfg->federation) != 0 ||
	    strcmp(cfg->key, n->cfg->key) != 0 || strcmp(cfg->data, n->cfg->data) != 0) {
		snprintf(err, errlen,
		         "%s: name, federation, key and data may not change while loketd runs; "
		         "restart it instead",
		         n->cfg->path);
		config_free(cfg);
		return LOKET_E_CONFIG;
	}
	uint8_t self[32];
	key_public(n->key, self);
	if ((rc = config_check_self(cfg, self, err, errlen)) != 0 ||
	    (rc = config_check_self(cfg, n->self, err, errlen)) != 0) {
		config_free(cfg);
		return rc;
	}
	if (cfg->n_members + 1 > SYNC_MAX_ORIGINS) {
		snprintf(err, errlen, "%s: more than %u members", n->cfg->path,
		         SYNC_MAX_ORIGINS - 1);
		config_free(cfg);
		return LOKET_E_CONFIG;
	}
	for (size_t i = 0; i < cfg->n_members; i++) {
		rc = store_set_member(n->store, cfg->members[i].key, cfg->members[i].name);
		if (rc != 0) {
			snprintf(err, errlen, "store: cannot record the roster: %s",
			         store_errmsg(n->store));
			config_free(cfg);
			return rc;
		}
	}
	if (strcmp(cfg->listen, n->cfg->listen) != 0)
		log_warn("sync: a new listen endpoint takes effect at the next restart");
	/* Swap the roster in; the old one goes with cfg. */
	struct config_member *old = n->cfg->members;
	size_t n_old = n->cfg->n_members;
	n->cfg->members = cfg->members;
	n->cfg->n_members = cfg->n_members;
	n->cfg->sync_interval_s = cfg->sync_interval_s;
	n->cfg->log_level = cfg->log_level;
	log_set_level(cfg->log_level);
	cfg->members = old;
	cfg->n_members = n_old;
	config_free(cfg);

	json_t *added = json_array(), *removed = json_array();
	/* The revocations may have changed: every chain they stopped is asked for again. */
	for (size_t i = 0; i < st->n_origins; i++)
		st->origins[i].revoked_at = 0;
	apply_roster(st, added, removed);
	if (json_array_size(removed) > 0)
		rebind_listener(st);
	size_t members = 0;
	for (size_t i = 0; i < st->n_members; i++)
		members += !st->members[i]->removed;
	log_info("sync: roster reloaded: %zu members, %zu added, %zu removed", members,
	         json_array_size(added), json_array_size(removed));
	*result = json_pack("{s:I, s:o, s:o}", "members", (json_int_t)members, "added", added,
	                    "removed", removed);
	sync_pump(st);
	return 0;
}

/* The listener's monitor: an accepted connection ended; so did its session. */
static void conn_ended(void *data, int fd)
{
	struct sync_state *st = data;
	for (size_t i = 0; i < st->n_members; i++) {
		struct sync_member *m = st->members[i];
		struct sync_session *a = &m->s[SESSION_ACCEPTED];
		if (a->fd != fd)
			continue;
		a->fd = -1;
		if (a->up) {
			a->up = 0;
			a->gen++;
			sync_clear_fetches(st, m);
		}
	}
}

/* ---- init and close ---- */

/*
 * Connections the listener keeps open: at most half the descriptors the
 * process may have, so that a flood of connections leaves the rest to the
 * store, the search index, the control socket and libzmq's own.
 */
static size_t conns_budget(void)
{
	struct rlimit rl;
	size_t max = SYNC_MAX_CONNS;
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY &&
	    rl.rlim_cur / 2 < max)
		max = rl.rlim_cur / 2 > 8 ? (size_t)(rl.rlim_cur / 2) : 8;
	return max;
}

int sync_init(struct sync *s, uv_loop_t *loop, void *zctx, struct node *node,
              struct control *control, char *err, size_t errlen)
{
	struct sync_state *st = calloc(1, sizeof(*st));
	if (!st)
		abort();
	memset(s, 0, sizeof(*s));
	s->st = st;
	st->owner = s;
	st->loop = loop;
	st->zctx = zctx;
	st->node = node;
	int rc;
	if (node->cfg->n_members + 1 > SYNC_MAX_ORIGINS) {
		snprintf(err, errlen, "%s: more than %u members", node->cfg->path,
		         SYNC_MAX_ORIGINS - 1);
		free(st);
		s->st = NULL;
		return LOKET_E_CONFIG;
	}
	origin_slot(st, node->self);

	/* ZAP first: a CURVE server bound without it would admit anyone. */
	rc = zap_init(&st->zap, loop, zctx, node, err, errlen);
	if (rc != 0) {
		free(st);
		s->st = NULL;
		return rc;
	}
	st->zap_open = 1;
	uv_timer_init(loop, &st->timer);
	st->timer.data = st;

	if (node->cfg->listen[0]) {
		snprintf(st->listen, sizeof(st->listen), "%s", node->cfg->listen);
		st->router = zmq_socket(zctx, ZMQ_ROUTER);
		if (!st->router)
			goto zfail;
		set_common_options(st->router);
		int one = 1;
		zmq_setsockopt(st->router, ZMQ_ROUTER_MANDATORY, &one, sizeof(one));
		rc = key_arm_curve_server(node->key, st->router);
		if (rc != 0) {
			snprintf(err, errlen, "sync: cannot arm CURVE: %s", loket_strerror(rc));
			goto fail;
		}
		size_t max_conns = conns_budget();
		rc = sync_conns_init(&st->conns, loop, zctx, st->router, max_conns,
		                     "inproc://loket-sync-listener", err, errlen);
		if (rc != 0)
			goto fail;
		st->conns_open = 1;
		st->conns.on_ended = conn_ended;
		st->conns.on_ended_data = st;
		if (zmq_bind(st->router, st->listen) != 0)
			goto zfail;
		rc = zwatch_init(loop, &st->router_watch, st->router, router_on_readable, st);
		if (rc != 0) {
			snprintf(err, errlen, "sync: cannot watch socket: %s", uv_strerror(rc));
			goto fail;
		}
		st->router_open = 1;
		log_info("sync: listening on %s (at most %zu connections)", st->listen, max_conns);
	}
	apply_roster(st, NULL, NULL);
	node->on_accepted = sync_on_own_accepted;
	node->on_accepted_data = st;
	node->peers_count = count_peers;
	node->peers_count_data = st;
	control_add_command(control, "peers", handle_peers, s);
	control_add_command(control, "checkpoints", handle_checkpoints, s);
	control_add_command(control, "reload", handle_reload, s);
	control_add_command(control, "resume", handle_resume, s);
	control_add_command(control, "rotate_key", handle_rotate, s);
	st->next_hello = 0;
	uv_timer_start(&st->timer, on_tick, SYNC_TICK_MS, SYNC_TICK_MS);
	return 0;
zfail:
	rc = -zmq_errno();
	snprintf(err, errlen, "sync: %s: %s", st->listen, zmq_strerror(zmq_errno()));
fail:
	if (st->router)
		zmq_close(st->router);
	st->router = NULL;
	/* Leave the rest to sync_close, which the caller runs as for any module. */
	sync_close(s, NULL);
	return rc;
}

static void on_router_watch_closed(struct zwatch *w)
{
	struct sync_state *st = w->data;
	zmq_close(st->router);
	st->router = NULL;
	st->pending_closes--;
	sync_state_maybe_free(st);
}

static void on_conns_closed(struct sync_conns *c)
{
	struct sync_state *st =
	    (struct sync_state *)((char *)c - offsetof(struct sync_state, conns));
	st->pending_closes--;
	sync_state_maybe_free(st);
}

static void on_zap_closed(struct zap *z)
{
	struct sync_state *st = (struct sync_state *)((char *)z - offsetof(struct sync_state, zap));
	st->pending_closes--;
	sync_state_maybe_free(st);
}

static void on_timer_closed(uv_handle_t *h)
{
	struct sync_state *st = h->data;
	st->pending_closes--;
	sync_state_maybe_free(st);
}

void sync_close(struct sync *s, void (*cb)(struct sync *s))
{
	struct sync_state *st = s->st;
	s->on_closed = cb;
	if (!st || st->closing)
		return;
	st->closing = 1;
	if (st->node->on_accepted_data == st) {
		st->node->on_accepted = NULL;
		st->node->on_accepted_data = NULL;
	}
	if (st->node->peers_count_data == st) {
		st->node->peers_count = NULL;
		st->node->peers_count_data = NULL;
	}
	st->pending_closes = 1; /* held until every close below has been started */
	st->pending_closes++;
	uv_close((uv_handle_t *)&st->timer, on_timer_closed);
	for (size_t i = 0; i < st->n_members; i++)
		member_hang_up(st, st->members[i]);
	if (st->conns_open) {
		st->conns_open = 0;
		st->pending_closes++;
		if (st->router)
			zmq_socket_monitor(st->router, NULL, 0);
		sync_conns_close(&st->conns, on_conns_closed);
	}
	if (st->router_open) {
		st->pending_closes++;
		zwatch_close(&st->router_watch, on_router_watch_closed);
	} else if (st->router) {
		zmq_close(st->router);
		st->router = NULL;
	}
	if (st->zap_open) {
		st->pending_closes++;
		zap_close(&st->zap, on_zap_closed);
	}
	st->pending_closes--;
	sync_state_maybe_free(st);
}
