/*
 * sync_session: the protocol of one session (daemon/sync/sync_session.h):
 * sending, sessions, heads from peers, fetching under credit and answering
 * wants. Messages arrive here from sync.c, already decoded and sorted by
 * type.
 */
#include "daemon/sync/sync_session.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <sodium.h>
#include <zmq.h>

#include "common/config.h"
#include "common/log.h"
#include "daemon/zwatch.h"
#include "proto/error.h"
#include "proto/limits.h"
#include "proto/value.h"

/* ---- sending ---- */

static void free_buffer(void *data, void *hint)
{
	(void)hint;
	free(data);
}

/* Sends header + the bins in sb (already packed after the header); takes sb's data. */
int sync_send_buffer(struct sync_state *st, struct sync_member *m, struct sync_session *sess,
                     msgpack_sbuffer *sb)
{
	size_t size = sb->size;
	char *data = msgpack_sbuffer_release(sb);
	zmq_msg_t msg;
	if (zmq_msg_init_data(&msg, data, size, free_buffer, NULL) != 0) {
		free(data);
		return -ENOMEM;
	}
	int rc = 0;
	void *zsock;
	struct zwatch *w;
	if (sess == &m->s[SESSION_DIALLED]) {
		zsock = m->dealer;
		w = &m->dealer_watch;
	} else {
		zsock = st->router;
		w = &st->router_watch;
		if (zmq_send(zsock, sess->rid, sess->rid_len, ZMQ_SNDMORE | ZMQ_DONTWAIT) < 0) {
			rc = -zmq_errno();
			zmq_msg_close(&msg);
			if (rc == -EHOSTUNREACH) {
				sess->up = 0;
				sess->gen++;
			}
			return rc;
		}
	}
	if (!zsock) {
		zmq_msg_close(&msg);
		return -ENOTCONN;
	}
	if (zmq_msg_send(&msg, zsock, ZMQ_DONTWAIT) >= 0) {
		m->bytes_out += size;
	} else {
		rc = -zmq_errno();
		zmq_msg_close(&msg);
		/* Its queue is full: it does not read. Its wants wait a while. */
		if (rc == -EAGAIN)
			sess->stalled_until = sync_now_ms(st) + SYNC_STALL_MS;
	}
	zwatch_kick(w);
	return rc;
}

int sync_send_json(struct sync_state *st, struct sync_member *m, struct sync_session *sess,
                   json_t *hdr)
{
	msgpack_sbuffer sb;
	msgpack_sbuffer_init(&sb);
	int rc = value_encode_message(hdr, &sb);
	json_decref(hdr);
	if (rc != 0) {
		msgpack_sbuffer_destroy(&sb);
		return rc;
	}
	return sync_send_buffer(st, m, sess, &sb);
}

int sync_send_bins(struct sync_state *st, struct sync_member *m, struct sync_session *sess,
                   json_t *hdr, const uint8_t *const *bins, const size_t *lens, size_t n)
{
	msgpack_sbuffer sb;
	msgpack_sbuffer_init(&sb);
	if (!hdr || value_encode_message(hdr, &sb) != 0)
		abort();
	json_decref(hdr);
	msgpack_packer pk;
	msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
	for (size_t i = 0; i < n; i++) {
		msgpack_pack_bin(&pk, lens[i]);
		msgpack_pack_bin_body(&pk, bins[i], lens[i]);
	}
	return sync_send_buffer(st, m, sess, &sb);
}

void sync_send_error(struct sync_state *st, struct sync_member *m, struct sync_session *sess,
                     const char *reason)
{
	json_t *hdr = json_pack("{s:s, s:s}", "t", "error", "reason", reason);
	if (hdr)
		sync_send_json(st, m, sess, hdr);
}

/* Our heads for every roster origin we hold. */
static json_t *heads_json(struct sync_state *st)
{
	json_t *heads = json_object();
	for (size_t i = 0; i < st->n_origins; i++) {
		struct sync_origin *o = &st->origins[i];
		if (o->head == 0 || !sync_origin_admitted(st, i))
			continue;
		char hex[65];
		sync_hex32(o->head_hash, hex);
		json_object_set_new(heads, o->b64, json_pack("[I, s]", (json_int_t)o->head, hex));
	}
	return heads;
}

/* The seq of every fork proof we hold, by origin. */
static json_t *forks_json(struct sync_state *st)
{
	json_t *forks = json_object();
	for (size_t i = 0; i < st->n_origins; i++)
		if (st->origins[i].frozen_at)
			json_object_set_new(forks, st->origins[i].b64,
			                    json_integer((json_int_t)st->origins[i].frozen_at));
	return forks;
}

void sync_send_hello(struct sync_state *st, struct sync_member *m, struct sync_session *sess,
                     int reply)
{
	json_t *hdr = json_pack("{s:s, s:i, s:s, s:o, s:o, s:b, s:b}", "t", "hello", "proto",
	                        SYNC_PROTO, "federation", st->node->cfg->federation, "heads",
	                        heads_json(st), "forks", forks_json(st), "reply", reply, "ckpt", 1);
	if (!hdr)
		abort();
	int rc = sync_send_json(st, m, sess, hdr);
	sess->hello_owed = rc != 0;
}

/* ---- sessions ---- */

struct sync_session *sync_send_session(struct sync_member *m)
{
	if (m->removed || m->incompatible)
		return NULL;
	if (m->s[SESSION_DIALLED].up)
		return &m->s[SESSION_DIALLED];
	if (m->s[SESSION_ACCEPTED].up)
		return &m->s[SESSION_ACCEPTED];
	return NULL;
}

void sync_clear_fetches(struct sync_state *st, struct sync_member *m)
{
	for (size_t i = 0; i < st->n_origins; i++)
		if (st->origins[i].fetch_from == m)
			st->origins[i].fetch_from = NULL;
}

void sync_shut_later(struct sync_state *st, struct sync_member *m, int fd)
{
	if (fd < 0)
		return;
	if (m->shut_pending)
		sync_shut_now(m);
	m->shut_addr_len = sizeof(m->shut_addr);
	if (getpeername(fd, (struct sockaddr *)&m->shut_addr, &m->shut_addr_len) != 0)
		return;
	m->shut_pending = 1;
	m->shut_fd = fd;
	m->shut_at = sync_now_ms(st) + SYNC_SHUT_DELAY_MS;
}

void sync_shut_now(struct sync_member *m)
{
	struct sockaddr_storage addr;
	socklen_t len = sizeof(addr);
	m->shut_pending = 0;
	if (getpeername(m->shut_fd, (struct sockaddr *)&addr, &len) != 0 ||
	    len != m->shut_addr_len || memcmp(&addr, &m->shut_addr, len) != 0)
		return; /* closed meanwhile, and perhaps reused: not ours to shut */
	/* The read side only: libzmq sees the end and closes it (see sync_conns.c). */
	if (shutdown(m->shut_fd, SHUT_RD) != 0)
		log_debug("sync: %s: cannot shut its connection: %s", m->name, strerror(errno));
}

/*
 * Stops talking to a session: an accepted one is forgotten (its routing id
 * is ignored until the peer connects anew and passes ZAP again), a dialled
 * one is torn down and dialled afresh.
 */
void sync_session_drop(struct sync_state *st, struct sync_member *m, int kind)
{
	struct sync_session *sess = &m->s[kind];
	sess->up = 0;
	sess->gen++;
	sess->hello_owed = 0;
	uint64_t ban = zap_ban_left(&st->zap, m->key, NULL);
	if (kind == SESSION_ACCEPTED) {
		memcpy(sess->banned_rid, sess->rid, sess->rid_len);
		sess->banned_rid_len = sess->rid_len;
		sess->rid_len = 0;
		/* Not read any more: the connection is shut once the error is out. */
		sync_shut_later(st, m, sess->fd);
		sess->fd = -1;
	} else if (m->dealer && m->endpoint[0] && !m->removed) {
		/* Dialled again by the timer, once a ban is over. */
		zmq_disconnect(m->dealer, m->endpoint);
		m->redial_at = sync_now_ms(st) + (ban > SYNC_TICK_MS ? ban : SYNC_TICK_MS);
	}
	sync_clear_fetches(st, m);
}

void sync_misbehave(struct sync_state *st, struct sync_member *m, int kind, const char *reason)
{
	char line[SYNC_REASON_MAX + 96];
	uint64_t ban = zap_ban(&st->zap, m->key);
	snprintf(line, sizeof(line),
	         "misbehaved (%s session): %s; dropping the session, refused for %llu s",
	         kind == SESSION_DIALLED ? "dialled" : "accepted", reason,
	         (unsigned long long)(ban / 1000));
	sync_log_peer(st, m, LOG_LEVEL_WARN, line);
	sync_set_error(m, reason);
	if (m->s[kind].up)
		sync_send_error(st, m, &m->s[kind], reason);
	sync_session_drop(st, m, kind);
}

/* ---- fork proofs ---- */

void sync_send_proof(struct sync_state *st, struct sync_member *m, struct sync_session *sess,
                     size_t slot)
{
	struct sync_origin *o = &st->origins[slot];
	uint8_t *bytes[2];
	size_t len[2];
	uint64_t seq;
	if (store_fork_proof(st->node->store, o->key, &seq, bytes, len) != 0)
		return;
	json_t *hdr =
	    json_pack("{s:s, s:s, s:I}", "t", "fork", "origin", o->b64, "seq", (json_int_t)seq);
	if (sync_send_bins(st, m, sess, hdr, (const uint8_t *const *)bytes, len, 2) == 0)
		m->their_fork[slot] = seq;
	free(bytes[0]);
	free(bytes[1]);
}

void sync_share_proof(struct sync_state *st, size_t slot)
{
	for (size_t i = 0; i < st->n_members; i++) {
		struct sync_member *m = st->members[i];
		struct sync_session *sess = sync_send_session(m);
		uint64_t theirs = m->their_fork[slot];
		if (sess && m->knows_forks && (theirs == 0 || theirs > st->origins[slot].frozen_at))
			sync_send_proof(st, m, sess, slot);
	}
}

void sync_want_one(struct sync_state *st, struct sync_member *m, struct sync_session *sess,
                   size_t slot, uint64_t seq)
{
	json_t *want = json_pack("{s:s, s:s, s:I, s:i}", "t", "want", "origin",
	                         st->origins[slot].b64, "from", (json_int_t)seq, "count", 1);
	if (want)
		sync_send_json(st, m, sess, want);
}

/* ---- heads from peers ---- */

static int unhex32(const char *s, uint8_t out[32])
{
	size_t n = 0;
	if (!s || strlen(s) != 64)
		return -1;
	if (sodium_hex2bin(out, 32, s, 64, NULL, &n, NULL) != 0 || n != 32)
		return -1;
	return 0;
}

/* Applies a heads map from m; a hello's (authoritative) may lower what we believed. */
static int take_heads(struct sync_state *st, struct sync_member *m, const json_t *heads,
                      int authoritative)
{
	if (!json_is_object(heads) || json_object_size(heads) > 2 * SYNC_MAX_ORIGINS)
		return -1;
	const char *k;
	json_t *v;
	json_object_foreach((json_t *)heads, k, v)
	{
		uint8_t key[32], hash[32];
		if (config_key_decode(k, key) != 0 || !json_is_array(v) ||
		    json_array_size(v) != 2 || !json_is_integer(json_array_get(v, 0)) ||
		    json_integer_value(json_array_get(v, 0)) < 0 ||
		    unhex32(json_string_value(json_array_get(v, 1)), hash) != 0)
			return -1;
		struct sync_origin *o = sync_origin_by_key(st, key);
		if (!o)
			continue; /* not an origin of our roster */
		size_t slot = (size_t)(o - st->origins);
		uint64_t seq = (uint64_t)json_integer_value(json_array_get(v, 0));
		if (authoritative || seq > m->their_seq[slot]) {
			m->their_seq[slot] = seq;
			memcpy(m->their_hash[slot], hash, 32);
		}
		if (slot == 0 && (authoritative || seq > m->confirmed_self))
			m->confirmed_self = seq;
		if (authoritative)
			m->their_known[slot] = 1;
	}
	if (authoritative) {
		/* Origins absent from a hello are ones they hold nothing of. */
		for (size_t i = 0; i < st->n_origins; i++) {
			if (json_object_get(heads, st->origins[i].b64))
				continue;
			m->their_seq[i] = 0;
			m->their_known[i] = 1;
			if (i == 0)
				m->confirmed_self = 0;
		}
	}
	return 0;
}

/*
 * The forks map of a hello, {ORIGIN: SEQ}: which proofs the peer holds. A
 * peer whose hello has none (an older node) is sent no "fork" messages.
 */
static int take_forks(struct sync_state *st, struct sync_member *m, const json_t *forks)
{
	m->knows_forks = forks != NULL;
	memset(m->their_fork, 0, sizeof(m->their_fork));
	if (!forks)
		return 0;
	if (!json_is_object(forks) || json_object_size(forks) > 2 * SYNC_MAX_ORIGINS)
		return -1;
	const char *k;
	json_t *v;
	json_object_foreach((json_t *)forks, k, v)
	{
		uint8_t key[32];
		if (config_key_decode(k, key) != 0 || !json_is_integer(v) ||
		    json_integer_value(v) < 1)
			return -1;
		struct sync_origin *o = sync_origin_by_key(st, key);
		if (o)
			m->their_fork[o - st->origins] = (uint64_t)json_integer_value(v);
	}
	return 0;
}

/*
 * A peer that shows the same seq as ours with another hash holds a fork:
 * ask it for that changeset so that the evidence is kept here too.
 */
static void check_fork_hint(struct sync_state *st, struct sync_member *m, struct sync_session *sess)
{
	for (size_t i = 0; i < st->n_origins; i++) {
		struct sync_origin *o = &st->origins[i];
		if (!m->their_known[i] || m->their_seq[i] != o->head || o->head == 0 ||
		    memcmp(m->their_hash[i], o->head_hash, 32) == 0)
			continue;
		sync_want_one(st, m, sess, i, o->head);
	}
}

/* ---- fetching ---- */

/*
 * A want left unanswered: the member that was asked gets a strike for the
 * origin, so the next want goes to a peer with fewer (claims are hints).
 */
static void want_expired(struct sync_state *st, struct sync_origin *o, size_t slot)
{
	struct sync_member *m = o->fetch_from;
	char why[SYNC_REASON_MAX];
	if (m->strikes[slot] < SYNC_MAX_STRIKES)
		m->strikes[slot]++;
	snprintf(why, sizeof(why),
	         "did not answer a want for %s from seq %llu within %u ms; asking another peer",
	         o->b64, (unsigned long long)o->fetch_seq, SYNC_WANT_TIMEOUT);
	sync_set_error(m, why);
	sync_log_peer(st, m, LOG_LEVEL_WARN, why);
}

/*
 * Asks a peer for what we lack of origin slot, if nothing is asked yet:
 * of the members that claim it, the one with the fewest unanswered wants,
 * then the one that claims the most. Nothing is asked of an origin from
 * its fork proof's seq on.
 */
static void pump_origin(struct sync_state *st, size_t slot)
{
	struct sync_origin *o = &st->origins[slot];
	uint64_t now = sync_now_ms(st);
	if (!sync_origin_admitted(st, slot))
		return;
	if (o->fetch_from && now < o->fetch_deadline)
		return;
	if (o->fetch_from)
		want_expired(st, o, slot);
	o->fetch_from = NULL;
	if (sync_stop_at(o) && o->expect >= sync_stop_at(o))
		return;
	/* A changeset of a revoked key stops the chain here until the roster changes. */
	if (o->revoked_at && o->expect >= o->revoked_at)
		return;
	if (st->queued + 1 >= SYNC_MAX_QUEUE)
		return;
	struct sync_member *best = NULL;
	for (size_t i = 0; i < st->n_members; i++) {
		struct sync_member *m = st->members[i];
		if (!sync_send_session(m) || m->their_seq[slot] < o->expect)
			continue;
		if (!best || m->strikes[slot] < best->strikes[slot] ||
		    (m->strikes[slot] == best->strikes[slot] &&
		     m->their_seq[slot] > best->their_seq[slot]))
			best = m;
	}
	if (!best)
		return;
	uint64_t lack = best->their_seq[slot] - o->expect + 1;
	if (sync_stop_at(o) && o->expect + lack > sync_stop_at(o))
		lack = sync_stop_at(o) - o->expect;
	json_t *want = json_pack("{s:s, s:s, s:I, s:I}", "t", "want", "origin", o->b64, "from",
	                         (json_int_t)o->expect, "count",
	                         (json_int_t)(lack < SYNC_WANT_MAX ? lack : SYNC_WANT_MAX));
	if (!want)
		abort();
	if (sync_send_json(st, best, sync_send_session(best), want) == 0) {
		o->fetch_from = best;
		o->fetch_seq = o->expect;
		o->fetch_deadline = now + SYNC_WANT_TIMEOUT;
	}
}

void sync_pump(struct sync_state *st)
{
	if (st->closing)
		return;
	for (size_t i = 0; i < st->n_origins; i++)
		pump_origin(st, i);
}

/* ---- answering wants ---- */

void sync_session_want(struct sync_state *st, struct sync_member *m, int kind, const json_t *hdr)
{
	struct sync_session *sess = &m->s[kind];
	if (sync_now_ms(st) < sess->stalled_until)
		return; /* it does not read what it asked for; it asks again after its timeout */
	const char *ob64 = json_string_value(json_object_get(hdr, "origin"));
	json_t *jfrom = json_object_get(hdr, "from"), *jcount = json_object_get(hdr, "count");
	uint8_t key[32];
	if (!ob64 || config_key_decode(ob64, key) != 0 || !json_is_integer(jfrom) ||
	    !json_is_integer(jcount) || json_integer_value(jfrom) < 1 ||
	    json_integer_value(jcount) < 1 || json_integer_value(jcount) > SYNC_WANT_MAX) {
		sync_misbehave(st, m, kind, "malformed want");
		return;
	}
	uint64_t from = (uint64_t)json_integer_value(jfrom);
	uint64_t count = (uint64_t)json_integer_value(jcount);
	struct sync_origin *o = sync_origin_by_key(st, key);
	uint8_t *bytes[SYNC_MAX_PER_MSG];
	size_t lens[SYNC_MAX_PER_MSG], n = 0, total = 0;
	if (o && sync_origin_admitted(st, (size_t)(o - st->origins))) {
		/* A want also tells what the peer holds. */
		size_t slot = (size_t)(o - st->origins);
		if (from - 1 > m->their_seq[slot])
			m->their_seq[slot] = from - 1;
		if (slot == 0 && from - 1 > m->confirmed_self)
			m->confirmed_self = from - 1;
		for (uint64_t seq = from; seq <= o->head && n < count && n < SYNC_MAX_PER_MSG;
		     seq++) {
			uint8_t *b;
			size_t len;
			if (store_changeset(st->node->store, key, seq, &b, &len) != 0)
				break;
			if (n > 0 && total + len > SYNC_MSG_BYTES) {
				free(b);
				break;
			}
			bytes[n] = b;
			lens[n++] = len;
			total += len;
		}
		if (n > 0 && from + n - 1 > m->their_seq[slot])
			m->their_seq[slot] = from + n - 1;
	}
	json_t *out = json_pack("{s:s, s:s, s:b, s:I}", "t", "cs", "origin", ob64, "end", 1, "next",
	                        (json_int_t)(from + n));
	sync_send_bins(st, m, sess, out, (const uint8_t *const *)bytes, lens, n);
	for (size_t i = 0; i < n; i++)
		free(bytes[i]);
}

/* ---- messages received ---- */

void sync_session_hello(struct sync_state *st, struct sync_member *m, int kind, const json_t *hdr)
{
	struct sync_session *sess = &m->s[kind];
	json_t *proto = json_object_get(hdr, "proto");
	const char *fed = json_string_value(json_object_get(hdr, "federation"));
	char why[SYNC_REASON_MAX], q1[ERROR_QUOTE_SIZE], q2[ERROR_QUOTE_SIZE];
	why[0] = '\0';
	if (!json_is_integer(proto) || json_integer_value(proto) != SYNC_PROTO)
		snprintf(why, sizeof(why),
		         "incompatible sync protocol: the peer speaks version %lld, this "
		         "node version %d",
		         json_is_integer(proto) ? (long long)json_integer_value(proto) : -1LL,
		         SYNC_PROTO);
	else if (!fed || strcmp(fed, st->node->cfg->federation) != 0)
		snprintf(why, sizeof(why), "the peer is of federation %s, this node of %s",
		         fed ? error_quote_str(q1, sizeof(q1), fed) : "?",
		         error_quote_str(q2, sizeof(q2), st->node->cfg->federation));
	if (why[0]) {
		if (!m->incompatible)
			log_error("sync: %s: %s; ignoring it", m->name, why);
		m->incompatible = 1;
		sync_set_error(m, why);
		sync_send_error(st, m, sess, why);
		return;
	}
	if (m->incompatible)
		log_info("sync: %s is compatible again", m->name);
	m->incompatible = 0;
	if (take_heads(st, m, json_object_get(hdr, "heads"), 1) != 0) {
		sync_misbehave(st, m, kind, "malformed heads in hello");
		return;
	}
	m->knows_ckpt = json_is_true(json_object_get(hdr, "ckpt"));
	if (take_forks(st, m, json_object_get(hdr, "forks")) != 0) {
		sync_misbehave(st, m, kind, "malformed forks in hello");
		return;
	}
	if (!json_is_true(json_object_get(hdr, "reply")))
		sync_send_hello(st, m, sess, 1);
	/* The proofs it lacks, or holds only at a higher seq. */
	for (size_t i = 0; m->knows_forks && i < st->n_origins; i++)
		if (st->origins[i].frozen_at &&
		    (m->their_fork[i] == 0 || m->their_fork[i] > st->origins[i].frozen_at))
			sync_send_proof(st, m, sess, i);
	check_fork_hint(st, m, sess);
	sync_pump(st);
}

void sync_session_have(struct sync_state *st, struct sync_member *m, int kind, const json_t *hdr)
{
	if (take_heads(st, m, json_object_get(hdr, "heads"), 0) != 0) {
		sync_misbehave(st, m, kind, "malformed heads in have");
		return;
	}
	sync_pump(st);
}

void sync_session_error(struct sync_member *m, const json_t *hdr)
{
	const char *reason = json_string_value(json_object_get(hdr, "reason"));
	char why[SYNC_REASON_MAX], q[ERROR_QUOTE_SIZE];
	snprintf(why, sizeof(why), "the peer says: %s",
	         reason ? error_quote_str(q, sizeof(q), reason) : "?");
	log_warn("sync: %s: %s", m->name, why);
	sync_set_error(m, why);
}
