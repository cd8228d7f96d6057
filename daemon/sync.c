/*
 * sync: sessions, version vectors, credit, the receive path.
 *
 * Wire format. Every sync message is one ZeroMQ frame (so ZMQ_MAXMSGSIZE
 * bounds it and ZMQ_RCVHWM bounds how many wait): a msgpack map, the
 * header, followed by zero or more msgpack bin values, each one signed
 * changeset exactly as stored. Headers:
 *
 *   {"t":"hello","proto":1,"federation":F,"heads":{ORIGIN:[SEQ,"HASH"]},"reply":B?}
 *       on connect (the dialler first, the listener answers with reply:true)
 *       and every sync_interval; heads holds roster origins only
 *   {"t":"have","heads":{...}}     news of changesets just accepted
 *   {"t":"want","origin":O,"from":S,"count":N}
 *       credit: the peer may answer with changesets S.. of O, at most N
 *       (<= SYNC_WANT_MAX) and about SYNC_MSG_BYTES, in one "cs" message
 *   {"t":"cs","origin":O?,"end":true?,"next":S?} + changesets
 *       the answer to a want (end, next: the first seq not sent), or a push
 *   {"t":"error","reason":"..."}
 *
 * ORIGIN is a base64 key, HASH 64 hex digits. A peer is known only by the
 * key ZAP attached to its connection (User-Id), or by the server key a
 * DEALER pinned; nothing a message says about its sender is believed.
 */
#include "sync.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>
#include <zmq.h>

#include "common/config.h"
#include "common/key.h"
#include "common/log.h"
#include "daemon/zap.h"
#include "daemon/zwatch.h"
#include "proto/error.h"
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

static const char sync_blocked_msg[] =
    "this node is taking back its own chain from its peers before it signs again (it may "
    "have been restored from a backup or had its data wiped); retry once `loket peers` "
    "shows a session up";
static const char sync_self_fork_msg[] =
    "a peer holds a different changeset of this node's own chain: this node's history has "
    "forked (restored from an old backup?); local writes stay refused, see the log";

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

static void sync_pump(struct sync_state *st);
static void sync_run_queue(struct sync_state *st);
static void sync_maybe_closed(struct sync_state *st);

/* ---- helpers ---- */

static uint64_t now_ms(struct sync_state *st)
{
	return uv_now(st->loop);
}

static void hex32(const uint8_t h[32], char out[65])
{
	sodium_bin2hex(out, 65, h, 32);
}

static int unhex32(const char *s, uint8_t out[32])
{
	size_t n = 0;
	if (!s || strlen(s) != 64)
		return -1;
	if (sodium_hex2bin(out, 32, s, 64, NULL, &n, NULL) != 0 || n != 32)
		return -1;
	return 0;
}

static int rd_uint(const uint8_t *p, size_t len, size_t *i, uint64_t *v)
{
	if (*i >= len)
		return -1;
	uint8_t b = p[(*i)++];
	size_t n;
	if (b < 0x80) {
		*v = b;
		return 0;
	}
	switch (b) {
	case 0xcc:
		n = 1;
		break;
	case 0xcd:
		n = 2;
		break;
	case 0xce:
		n = 4;
		break;
	case 0xcf:
		n = 8;
		break;
	default:
		return -1;
	}
	if (len - *i < n)
		return -1;
	uint64_t x = 0;
	for (size_t k = 0; k < n; k++)
		x = x << 8 | p[(*i)++];
	*v = x;
	return 0;
}

/*
 * Reads origin and seq from the head of a signed changeset without
 * decoding it, to drop duplicates and gaps before any real work. The full,
 * strict decode on the thread pool must agree, or the changeset is bad.
 */
static int peek_changeset(const uint8_t *p, size_t len, uint8_t origin[32], uint64_t *seq)
{
	size_t i = 1, n;
	uint64_t version;
	if (len < 40 || p[0] != 0x97 || rd_uint(p, len, &i, &version) != 0 || i >= len)
		return -1;
	uint8_t b = p[i++];
	if ((b & 0xe0) == 0xa0) {
		n = b & 0x1f;
	} else if (b == 0xd9 && i < len) {
		n = p[i++];
	} else {
		return -1;
	}
	if (len - i < n + 34)
		return -1;
	i += n;
	if (p[i] != 0xc4 || p[i + 1] != 32)
		return -1;
	memcpy(origin, p + i + 2, 32);
	i += 34;
	if (rd_uint(p, len, &i, seq) != 0 || *seq == 0)
		return -1;
	return 0;
}

static struct sync_origin *origin_by_key(struct sync_state *st, const uint8_t key[32])
{
	for (size_t i = 0; i < st->n_origins; i++)
		if (memcmp(st->origins[i].key, key, 32) == 0)
			return &st->origins[i];
	return NULL;
}

/* The slot of key, added if new; SIZE_MAX if the table is full. */
static size_t origin_slot(struct sync_state *st, const uint8_t key[32])
{
	struct sync_origin *o = origin_by_key(st, key);
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
	return st->n_origins++;
}

static struct sync_member *member_by_key(struct sync_state *st, const uint8_t key[32])
{
	for (size_t i = 0; i < st->n_members; i++)
		if (memcmp(st->members[i]->key, key, 32) == 0)
			return st->members[i];
	return NULL;
}

/* Whether changesets of this origin are accepted now: self and current members. */
static int origin_admitted(struct sync_state *st, size_t slot)
{
	if (slot == 0)
		return 1;
	for (size_t i = 0; i < st->n_members; i++)
		if (st->members[i]->slot == slot)
			return !st->members[i]->removed;
	return 0;
}

static void set_error(struct sync_member *m, const char *reason)
{
	m->errors++;
	snprintf(m->last_error, sizeof(m->last_error), "%s", reason);
}

static struct sync_session *send_session(struct sync_member *m)
{
	if (m->removed || m->incompatible)
		return NULL;
	if (m->s[SESSION_DIALLED].up)
		return &m->s[SESSION_DIALLED];
	if (m->s[SESSION_ACCEPTED].up)
		return &m->s[SESSION_ACCEPTED];
	return NULL;
}

/* ---- sending ---- */

static void free_buffer(void *data, void *hint)
{
	(void)hint;
	free(data);
}

/* Sends header + the bins in sb (already packed after the header); takes sb's data. */
static int send_buffer(struct sync_state *st, struct sync_member *m, struct sync_session *sess,
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
	if (zmq_msg_send(&msg, zsock, ZMQ_DONTWAIT) < 0) {
		rc = -zmq_errno();
		zmq_msg_close(&msg);
	}
	zwatch_kick(w);
	return rc;
}

static int send_json(struct sync_state *st, struct sync_member *m, struct sync_session *sess,
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
	return send_buffer(st, m, sess, &sb);
}

static void send_error(struct sync_state *st, struct sync_member *m, struct sync_session *sess,
                       const char *reason)
{
	json_t *hdr = json_pack("{s:s, s:s}", "t", "error", "reason", reason);
	if (hdr)
		send_json(st, m, sess, hdr);
}

/* Our heads for every roster origin we hold. */
static json_t *heads_json(struct sync_state *st)
{
	json_t *heads = json_object();
	for (size_t i = 0; i < st->n_origins; i++) {
		struct sync_origin *o = &st->origins[i];
		if (o->head == 0 || !origin_admitted(st, i))
			continue;
		char hex[65];
		hex32(o->head_hash, hex);
		json_object_set_new(heads, o->b64, json_pack("[I, s]", (json_int_t)o->head, hex));
	}
	return heads;
}

static void send_hello(struct sync_state *st, struct sync_member *m, struct sync_session *sess,
                       int reply)
{
	json_t *hdr =
	    json_pack("{s:s, s:i, s:s, s:o, s:b}", "t", "hello", "proto", SYNC_PROTO, "federation",
	              st->node->cfg->federation, "heads", heads_json(st), "reply", reply);
	if (!hdr)
		abort();
	int rc = send_json(st, m, sess, hdr);
	sess->hello_owed = rc != 0;
}

/* ---- sessions ---- */

static void clear_fetches(struct sync_state *st, struct sync_member *m)
{
	for (size_t i = 0; i < st->n_origins; i++)
		if (st->origins[i].fetch_from == m)
			st->origins[i].fetch_from = NULL;
}

/*
 * Stops talking to a session: an accepted one is forgotten (its routing id
 * is ignored until the peer connects anew and passes ZAP again), a dialled
 * one is torn down and dialled afresh.
 */
static void session_drop(struct sync_state *st, struct sync_member *m, int kind)
{
	struct sync_session *sess = &m->s[kind];
	sess->up = 0;
	sess->gen++;
	sess->hello_owed = 0;
	if (kind == SESSION_ACCEPTED) {
		memcpy(sess->banned_rid, sess->rid, sess->rid_len);
		sess->banned_rid_len = sess->rid_len;
		sess->rid_len = 0;
	} else if (m->dealer && m->endpoint[0] && !m->removed) {
		zmq_disconnect(m->dealer, m->endpoint);
		if (zmq_connect(m->dealer, m->endpoint) != 0)
			log_error("sync: %s: cannot dial %s again: %s", m->name, m->endpoint,
			          zmq_strerror(zmq_errno()));
	}
	clear_fetches(st, m);
}

static void misbehave(struct sync_state *st, struct sync_member *m, int kind, const char *reason)
{
	log_warn("sync: %s (%s session) misbehaved: %s; dropping the session", m->name,
	         kind == SESSION_DIALLED ? "dialled" : "accepted", reason);
	set_error(m, reason);
	if (m->s[kind].up)
		send_error(st, m, &m->s[kind], reason);
	session_drop(st, m, kind);
}

/* ---- never fork yourself ---- */

static void check_self(struct sync_state *st)
{
	struct node *n = st->node;
	struct sync_origin *self = &st->origins[0];
	if (!n->writes_blocked)
		return;
	for (size_t i = 0; i < st->n_members; i++) {
		struct sync_member *m = st->members[i];
		if (m->removed || !m->their_known[0])
			continue;
		uint64_t theirs = m->their_seq[0];
		if (theirs > self->head)
			continue; /* still taking it back */
		if (theirs == self->head && theirs > 0 &&
		    memcmp(m->their_hash[0], self->head_hash, 32) != 0) {
			if (n->writes_blocked != sync_self_fork_msg)
				log_error("sync: %s holds a different changeset %" PRIu64
				          " of this node's own chain: this node has forked its "
				          "history; local writes stay refused",
				          m->name, theirs);
			n->writes_blocked = sync_self_fork_msg;
			return;
		}
		if (n->writes_blocked == sync_self_fork_msg)
			return;
		log_info("sync: %s confirmed this node's own chain (its head %" PRIu64
		         ", ours %" PRIu64 "); local writes are open",
		         m->name, theirs, self->head);
		n->writes_blocked = NULL;
		return;
	}
}

/* ---- heads from peers ---- */

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
		struct sync_origin *o = origin_by_key(st, key);
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
		json_t *want = json_pack("{s:s, s:s, s:I, s:i}", "t", "want", "origin", o->b64,
		                         "from", (json_int_t)o->head, "count", 1);
		if (want)
			send_json(st, m, sess, want);
	}
}

/* ---- fetching ---- */

/* Asks the best peer for what we lack of origin slot, if nothing is asked yet. */
static void pump_origin(struct sync_state *st, size_t slot)
{
	struct sync_origin *o = &st->origins[slot];
	uint64_t now = now_ms(st);
	if (!origin_admitted(st, slot))
		return;
	if (o->fetch_from && now < o->fetch_deadline)
		return;
	o->fetch_from = NULL;
	if (st->queued + 1 >= SYNC_MAX_QUEUE)
		return;
	struct sync_member *best = NULL;
	for (size_t i = 0; i < st->n_members; i++) {
		struct sync_member *m = st->members[i];
		if (!send_session(m) || m->their_seq[slot] < o->expect)
			continue;
		if (!best || m->their_seq[slot] > best->their_seq[slot])
			best = m;
	}
	if (!best)
		return;
	uint64_t lack = best->their_seq[slot] - o->expect + 1;
	json_t *want = json_pack("{s:s, s:s, s:I, s:I}", "t", "want", "origin", o->b64, "from",
	                         (json_int_t)o->expect, "count",
	                         (json_int_t)(lack < SYNC_WANT_MAX ? lack : SYNC_WANT_MAX));
	if (!want)
		abort();
	if (send_json(st, best, send_session(best), want) == 0) {
		o->fetch_from = best;
		o->fetch_deadline = now + SYNC_WANT_TIMEOUT;
	}
}

static void sync_pump(struct sync_state *st)
{
	if (st->closing)
		return;
	for (size_t i = 0; i < st->n_origins; i++)
		pump_origin(st, i);
}

/* ---- answering wants ---- */

static void answer_want(struct sync_state *st, struct sync_member *m, struct sync_session *sess,
                        const json_t *hdr)
{
	const char *ob64 = json_string_value(json_object_get(hdr, "origin"));
	json_t *jfrom = json_object_get(hdr, "from"), *jcount = json_object_get(hdr, "count");
	uint8_t key[32];
	if (!ob64 || config_key_decode(ob64, key) != 0 || !json_is_integer(jfrom) ||
	    !json_is_integer(jcount) || json_integer_value(jfrom) < 1 ||
	    json_integer_value(jcount) < 1 || json_integer_value(jcount) > SYNC_WANT_MAX) {
		misbehave(st, m, sess == &m->s[0] ? SESSION_DIALLED : SESSION_ACCEPTED,
		          "malformed want");
		return;
	}
	uint64_t from = (uint64_t)json_integer_value(jfrom);
	uint64_t count = (uint64_t)json_integer_value(jcount);
	struct sync_origin *o = origin_by_key(st, key);
	uint8_t *bytes[SYNC_MAX_PER_MSG];
	size_t lens[SYNC_MAX_PER_MSG], n = 0, total = 0;
	if (o && origin_admitted(st, (size_t)(o - st->origins))) {
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
	if (!out)
		abort();
	msgpack_sbuffer sb;
	msgpack_sbuffer_init(&sb);
	if (value_encode_message(out, &sb) != 0)
		abort();
	json_decref(out);
	msgpack_packer pk;
	msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
	for (size_t i = 0; i < n; i++) {
		msgpack_pack_bin(&pk, lens[i]);
		msgpack_pack_bin_body(&pk, bytes[i], lens[i]);
		free(bytes[i]);
	}
	send_buffer(st, m, sess, &sb);
}

/* ---- the receive path ---- */

static void batch_free(struct sync_batch *b)
{
	for (size_t i = 0; i < b->n; i++)
		if (b->items[i].decoded)
			changeset_release(&b->items[i].cs);
	zmq_msg_close(&b->msg);
	free(b);
}

/* On the thread pool: decode, federation, signature, hash. No socket, no store. */
static void batch_work(uv_work_t *work)
{
	struct sync_batch *b = work->data;
	for (size_t i = 0; i < b->n; i++) {
		struct sync_item *it = &b->items[i];
		it->rc = changeset_decode(it->p, it->len, &it->cs, it->err, sizeof(it->err));
		if (it->rc != 0)
			continue;
		it->decoded = 1;
		if (it->cs.federation_len != strlen(b->federation) ||
		    memcmp(it->cs.federation, b->federation, it->cs.federation_len) != 0) {
			it->rc = LOKET_E_FEDERATION;
			snprintf(it->err, sizeof(it->err), "changeset of another federation");
			continue;
		}
		if (it->cs.seq != it->seq) {
			it->rc = LOKET_E_MALFORMED;
			snprintf(it->err, sizeof(it->err), "changeset header is inconsistent");
			continue;
		}
		it->rc = changeset_verify(it->p, it->len, it->cs.origin);
		if (it->rc != 0) {
			snprintf(it->err, sizeof(it->err), "bad signature");
			continue;
		}
		changeset_hash(it->p, it->len, it->hash);
	}
}

struct accepted {
	size_t slot;
	uint64_t seq;
	const uint8_t *p;
	size_t len;
	const uint8_t *hash;
};

/*
 * Tells every peer of changesets just accepted. Our own go whole to peers
 * that are up to date with us (within the push window); everything else is
 * announced, and a peer that lacks it asks for it. The origin that sent us
 * its own changeset hears back too: that refills its push window.
 */
static void announce(struct sync_state *st, const struct accepted *acc, size_t n,
                     struct sync_member *from)
{
	for (size_t i = 0; i < st->n_members; i++) {
		struct sync_member *m = st->members[i];
		struct sync_session *sess = send_session(m);
		if (!sess)
			continue;
		json_t *have = NULL;
		for (size_t k = 0; k < n; k++) {
			const struct accepted *a = &acc[k];
			if (a->slot == 0 && m != from && m->their_seq[0] + 1 == a->seq &&
			    a->seq - 1 - m->confirmed_self < SYNC_PUSH_WINDOW) {
				json_t *hdr = json_pack("{s:s}", "t", "cs");
				msgpack_sbuffer sb;
				msgpack_sbuffer_init(&sb);
				if (!hdr || value_encode_message(hdr, &sb) != 0)
					abort();
				json_decref(hdr);
				msgpack_packer pk;
				msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
				msgpack_pack_bin(&pk, a->len);
				msgpack_pack_bin_body(&pk, a->p, a->len);
				if (send_buffer(st, m, sess, &sb) == 0) {
					m->their_seq[0] = a->seq;
					continue;
				}
			}
			int owner_acks = from == m && m->slot == a->slot;
			if (m->their_seq[a->slot] >= a->seq && !owner_acks)
				continue;
			if (!have)
				have = json_object();
			char hex[65];
			hex32(a->hash, hex);
			json_object_set_new(have, st->origins[a->slot].b64,
			                    json_pack("[I, s]", (json_int_t)a->seq, hex));
		}
		if (have) {
			json_t *hdr = json_pack("{s:s, s:o}", "t", "have", "heads", have);
			if (hdr)
				send_json(st, m, sess, hdr);
		}
	}
}

static void refresh_origin(struct sync_state *st, size_t slot, int reset_expect)
{
	struct sync_origin *o = &st->origins[slot];
	if (store_head(st->node->store, o->key, &o->head, o->head_hash) != 0)
		log_error("sync: cannot read head: %s", store_errmsg(st->node->store));
	if (reset_expect || o->expect <= o->head)
		o->expect = o->head + 1;
}

/* Applies a verified batch on the loop thread, in one transaction. */
static void batch_apply(struct sync_state *st, struct sync_batch *b)
{
	struct sync_member *m = b->from;
	int live = !m->removed && m->s[b->kind].gen == b->gen;
	struct accepted *acc = calloc(b->n ? b->n : 1, sizeof(*acc));
	size_t n_acc = 0;
	uint8_t touched[SYNC_MAX_ORIGINS] = {0}, reset[SYNC_MAX_ORIGINS] = {0};
	if (!acc)
		abort();
	for (size_t i = 0; i < b->n; i++) {
		touched[b->items[i].slot] = 1;
		if (!live)
			reset[b->items[i].slot] = 1;
	}
	if (!live)
		goto done;
	struct store *store = st->node->store;
	if (store_begin(store) != 0) {
		log_error("sync: store: cannot begin: %s", store_errmsg(store));
		for (size_t i = 0; i < b->n; i++)
			reset[b->items[i].slot] = 1;
		goto done;
	}
	int failed = 0;
	for (size_t i = 0; i < b->n && !failed; i++) {
		struct sync_item *it = &b->items[i];
		char why[256];
		if (it->rc != 0) {
			snprintf(why, sizeof(why), "changeset %s seq %" PRIu64 " refused: %s",
			         st->origins[it->slot].b64, it->seq, it->err);
			st->refused++;
			for (size_t k = i; k < b->n; k++)
				reset[b->items[k].slot] = 1;
			misbehave(st, m, b->kind, why);
			break;
		}
		if (!origin_admitted(st, it->slot)) {
			st->refused++;
			reset[it->slot] = 1;
			snprintf(why, sizeof(why), "changeset of %s, which is not a roster member",
			         st->origins[it->slot].b64);
			set_error(m, why);
			continue;
		}
		int rc = store_append(store, it->p, it->len, &it->cs);
		switch (rc) {
		case 0:
			acc[n_acc++] =
			    (struct accepted){it->slot, it->seq, it->p, it->len, it->hash};
			hlc_observe(&st->node->hlc, it->cs.hlc);
			break;
		case 1:
			st->duplicates++;
			break;
		case LOKET_E_FORK:
			st->forks++;
			reset[it->slot] = 1;
			log_error("sync: FORK: %s%s holds two different changesets for seq %" PRIu64
			          " (received from %s); both are kept as evidence and nothing is "
			          "built on this origin any more: %s",
			          it->slot == 0 ? "this node's own chain " : "origin ",
			          st->origins[it->slot].b64, it->seq, m->name, store_errmsg(store));
			break;
		case LOKET_E_BAD_SEQ:
			st->gaps++;
			reset[it->slot] = 1;
			break;
		case LOKET_E_BAD_PREV:
			st->refused++;
			reset[it->slot] = 1;
			snprintf(why, sizeof(why),
			         "changeset %s seq %" PRIu64 " refused: broken chain link (%s)",
			         st->origins[it->slot].b64, it->seq, store_errmsg(store));
			for (size_t k = i; k < b->n; k++)
				reset[b->items[k].slot] = 1;
			misbehave(st, m, b->kind, why);
			failed = 1;
			break;
		default:
			log_error("sync: store: cannot append: %s (%s)", loket_strerror(rc),
			          store_errmsg(store));
			failed = 2;
			break;
		}
	}
	if (failed != 2 && store_commit(store) != 0) {
		log_error("sync: store: cannot commit: %s", store_errmsg(store));
		failed = 2;
	}
	if (failed == 2) {
		store_rollback(store);
		n_acc = 0;
		for (size_t i = 0; i < b->n; i++)
			reset[b->items[i].slot] = 1;
	}
done:
	for (size_t i = 0; i < st->n_origins; i++)
		if (touched[i])
			refresh_origin(st, i, reset[i]);
	st->accepted += n_acc;
	if (n_acc > 0 && !st->closing)
		announce(st, acc, n_acc, m);
	free(acc);
	check_self(st);
}

static void batch_after(uv_work_t *work, int status)
{
	struct sync_batch *b = work->data;
	struct sync_state *st = b->st;
	(void)status;
	b->done = 1;
	st->verifying--;
	/* Apply in arrival order: only the head of the queue, as long as it is done. */
	while (st->queue_head && st->queue_head->done) {
		struct sync_batch *h = st->queue_head;
		st->queue_head = h->next;
		if (!st->queue_head)
			st->queue_tail = NULL;
		st->queued--;
		if (!st->closing)
			batch_apply(st, h);
		batch_free(h);
	}
	if (st->closing) {
		sync_maybe_closed(st);
		return;
	}
	sync_run_queue(st);
	sync_pump(st);
}

static void sync_run_queue(struct sync_state *st)
{
	for (struct sync_batch *b = st->queue_head; b && st->verifying < SYNC_MAX_VERIFYING;
	     b = b->next) {
		if (b->started)
			continue;
		b->started = 1;
		b->work.data = b;
		if (uv_queue_work(st->loop, &b->work, batch_work, batch_after) != 0) {
			/* Cannot happen with a valid loop; keep the invariant anyway. */
			b->done = 1;
			continue;
		}
		st->verifying++;
	}
}

/* Reads the bins after the header; -1 if they are not a sequence of bins within bounds. */
static int parse_bins(const uint8_t *p, size_t len, const uint8_t **bins, size_t *lens, size_t *n)
{
	size_t i = 0;
	*n = 0;
	while (i < len) {
		if (*n == SYNC_MAX_PER_MSG)
			return -1;
		uint8_t t = p[i++];
		size_t hl, bl = 0;
		if (t == 0xc4)
			hl = 1;
		else if (t == 0xc5)
			hl = 2;
		else if (t == 0xc6)
			hl = 4;
		else
			return -1;
		if (len - i < hl)
			return -1;
		for (size_t k = 0; k < hl; k++)
			bl = bl << 8 | p[i++];
		if (bl == 0 || bl > LOKET_MAX_CHANGESET_BYTES || len - i < bl)
			return -1;
		bins[*n] = p + i;
		lens[(*n)++] = bl;
		i += bl;
	}
	return 0;
}

/* A cs message: pre-filter each changeset cheaply, queue the rest for verification. */
static void take_changesets(struct sync_state *st, struct sync_member *m, int kind,
                            const json_t *hdr, zmq_msg_t *msg, size_t hdr_len)
{
	const uint8_t *p = (const uint8_t *)zmq_msg_data(msg) + hdr_len;
	size_t len = zmq_msg_size(msg) - hdr_len;
	const uint8_t *bins[SYNC_MAX_PER_MSG];
	size_t lens[SYNC_MAX_PER_MSG];
	size_t n;
	if (parse_bins(p, len, bins, lens, &n) != 0) {
		misbehave(st, m, kind, "malformed cs message");
		return;
	}
	/* The end of a want's answer frees the fetch slot of its origin. */
	const char *end_origin = NULL;
	if (json_is_true(json_object_get(hdr, "end"))) {
		end_origin = json_string_value(json_object_get(hdr, "origin"));
		uint8_t key[32];
		struct sync_origin *o = end_origin && config_key_decode(end_origin, key) == 0
		                            ? origin_by_key(st, key)
		                            : NULL;
		json_t *next = json_object_get(hdr, "next");
		if (o) {
			size_t slot = (size_t)(o - st->origins);
			if (o->fetch_from == m)
				o->fetch_from = NULL;
			/* Nothing sent: they do not hold what they claimed. */
			if (n == 0 && json_is_integer(next) && json_integer_value(next) >= 1 &&
			    (uint64_t)json_integer_value(next) <= m->their_seq[slot])
				m->their_seq[slot] = (uint64_t)json_integer_value(next) - 1;
		}
	}
	if (n == 0)
		return;
	if (st->queued >= SYNC_MAX_QUEUE) {
		st->dropped_busy++;
		return;
	}
	struct sync_batch *b = calloc(1, sizeof(*b) + n * sizeof(struct sync_item));
	if (!b)
		abort();
	b->st = st;
	b->from = m;
	b->kind = kind;
	b->gen = m->s[kind].gen;
	snprintf(b->federation, sizeof(b->federation), "%s", st->node->cfg->federation);
	for (size_t i = 0; i < n; i++) {
		uint8_t origin[32];
		uint64_t seq;
		if (peek_changeset(bins[i], lens[i], origin, &seq) != 0) {
			st->refused++;
			free(b);
			misbehave(st, m, kind, "undecodable changeset");
			return;
		}
		struct sync_origin *o = origin_by_key(st, origin);
		size_t slot = o ? (size_t)(o - st->origins) : SIZE_MAX;
		if (!o || !origin_admitted(st, slot)) {
			char why[160], b64[45];
			config_key_encode(origin, b64);
			snprintf(why, sizeof(why),
			         "refused a changeset of %s, which is not a roster member", b64);
			st->refused++;
			set_error(m, why);
			log_warn("sync: %s: %s", m->name, why);
			continue;
		}
		/* They hold it, whatever becomes of it here. */
		if (seq > m->their_seq[slot])
			m->their_seq[slot] = seq;
		if (seq < o->expect) {
			if (seq > o->head) {
				st->duplicates++; /* already on its way through the pipeline */
				continue;
			}
			uint8_t *held;
			size_t held_len;
			if (store_changeset(st->node->store, origin, seq, &held, &held_len) == 0) {
				int same =
				    held_len == lens[i] && memcmp(held, bins[i], lens[i]) == 0;
				free(held);
				if (same) {
					st->duplicates++;
					continue;
				}
			}
			/* A different changeset for a seq we hold: verify it, keep the evidence. */
		} else if (seq > o->expect) {
			st->gaps++;
			continue; /* the pump asks for what is missing */
		} else {
			o->expect++;
		}
		struct sync_item *it = &b->items[b->n++];
		it->p = bins[i];
		it->len = lens[i];
		it->slot = slot;
		it->seq = seq;
	}
	if (b->n == 0) {
		free(b);
		return;
	}
	zmq_msg_init(&b->msg);
	zmq_msg_move(&b->msg, msg);
	if (st->queue_tail)
		st->queue_tail->next = b;
	else
		st->queue_head = b;
	st->queue_tail = b;
	st->queued++;
	sync_run_queue(st);
}

/* One message from member m on one of its sessions. */
static void handle_message(struct sync_state *st, struct sync_member *m, int kind, zmq_msg_t *msg)
{
	struct sync_session *sess = &m->s[kind];
	const uint8_t *p = zmq_msg_data(msg);
	size_t len = zmq_msg_size(msg), used = 0;
	char err[256];
	json_t *hdr = NULL;
	sess->last_seen = now_ms(st);
	sess->last_seen_wall = hlc_wall_ms();
	if (value_check(p, len, LOKET_MAX_MESSAGE_DEPTH, 0, &used, err, sizeof(err)) != 0 ||
	    value_decode_message(p, used, &hdr, err, sizeof(err)) != 0) {
		char why[320];
		snprintf(why, sizeof(why), "undecodable message: %s", err);
		misbehave(st, m, kind, why);
		return;
	}
	const char *t = json_string_value(json_object_get(hdr, "t"));
	if (!t) {
		misbehave(st, m, kind, "message without a type");
		goto out;
	}
	if (strcmp(t, "hello") == 0) {
		json_t *proto = json_object_get(hdr, "proto");
		const char *fed = json_string_value(json_object_get(hdr, "federation"));
		char why[SYNC_REASON_MAX];
		why[0] = '\0';
		if (!json_is_integer(proto) || json_integer_value(proto) != SYNC_PROTO)
			snprintf(why, sizeof(why),
			         "incompatible sync protocol: the peer speaks version %lld, this "
			         "node version %d",
			         json_is_integer(proto) ? (long long)json_integer_value(proto)
			                                : -1LL,
			         SYNC_PROTO);
		else if (!fed || strcmp(fed, st->node->cfg->federation) != 0)
			snprintf(why, sizeof(why),
			         "the peer is of federation \"%.64s\", this node of \"%s\"",
			         fed ? fed : "?", st->node->cfg->federation);
		if (why[0]) {
			if (!m->incompatible)
				log_error("sync: %s: %s; ignoring it", m->name, why);
			m->incompatible = 1;
			set_error(m, why);
			send_error(st, m, sess, why);
			goto out;
		}
		if (m->incompatible)
			log_info("sync: %s is compatible again", m->name);
		m->incompatible = 0;
		if (take_heads(st, m, json_object_get(hdr, "heads"), 1) != 0) {
			misbehave(st, m, kind, "malformed heads in hello");
			goto out;
		}
		if (!json_is_true(json_object_get(hdr, "reply")))
			send_hello(st, m, sess, 1);
		check_fork_hint(st, m, sess);
		check_self(st);
		sync_pump(st);
	} else if (m->incompatible) {
		/* Nothing but a hello is heard from an incompatible peer. */
	} else if (strcmp(t, "have") == 0) {
		if (take_heads(st, m, json_object_get(hdr, "heads"), 0) != 0) {
			misbehave(st, m, kind, "malformed heads in have");
			goto out;
		}
		sync_pump(st);
	} else if (strcmp(t, "want") == 0) {
		answer_want(st, m, sess, hdr);
	} else if (strcmp(t, "cs") == 0) {
		take_changesets(st, m, kind, hdr, msg, used);
		sync_pump(st);
	} else if (strcmp(t, "error") == 0) {
		const char *reason = json_string_value(json_object_get(hdr, "reason"));
		char why[SYNC_REASON_MAX];
		snprintf(why, sizeof(why), "the peer says: %.160s", reason ? reason : "?");
		log_warn("sync: %s: %s", m->name, why);
		set_error(m, why);
	} else {
		misbehave(st, m, kind, "message of unknown type");
	}
out:
	json_decref(hdr);
}

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
	if (!sess->up || sess->rid_len != rid_len || memcmp(sess->rid, rid, rid_len) != 0) {
		memcpy(sess->rid, rid, rid_len);
		sess->rid_len = rid_len;
		sess->up = 1;
		sess->gen++;
		log_info("sync: %s connected to us", m->name);
	}
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
	m->redial_at = now_ms(st) + m->redial_backoff;
}

static void monitor_on_readable(struct zwatch *w, void *zsock, void *data)
{
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
			send_hello(st, m, sess, 0);
		break;
	case ZMQ_EVENT_DISCONNECTED:
		if (sess->up)
			log_info("sync: lost the session dialled to %s", m->name);
		sess->up = 0;
		sess->gen++;
		clear_fetches(st, m);
		break;
	case ZMQ_EVENT_HANDSHAKE_FAILED_AUTH:
		snprintf(why, sizeof(why),
		         "%s refused this node's key (ZAP status %u): is this node in its roster?",
		         m->endpoint, value);
		if (strcmp(m->last_error, why) != 0)
			log_warn("sync: %s: %s", m->name, why);
		set_error(m, why);
		schedule_redial(st, m);
		break;
	case ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL:
	case ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL:
		snprintf(why, sizeof(why),
		         "CURVE handshake with %s failed: is the member key in the roster right?",
		         m->endpoint);
		if (strcmp(m->last_error, why) != 0)
			log_warn("sync: %s: %s", m->name, why);
		set_error(m, why);
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
	sync_maybe_closed(st);
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
	rc = key_arm_curve_client(st->node->key, m->dealer, m->key);
	if (rc != 0)
		goto fail;
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
		memcpy(m->key, cm->key, 32);
		config_key_encode(cm->key, m->b64);
		m->slot = slot;
		st->members[st->n_members++] = m;
	}
	snprintf(m->name, sizeof(m->name), "%s", cm->name);
	if (m->dealer) {
		/* Its sockets may still be closing: a new endpoint waits for a restart. */
		if (strcmp(m->endpoint, cm->endpoint) != 0)
			log_warn("sync: %s: the new endpoint %s takes effect at the next restart",
			         m->name, cm->endpoint[0] ? cm->endpoint : "(none)");
		m->removed = 0;
		return m;
	}
	m->removed = 0;
	snprintf(m->endpoint, sizeof(m->endpoint), "%s", cm->endpoint);
	if (m->endpoint[0] && !m->dealer) {
		int rc = member_dial(st, m);
		if (rc != 0) {
			char why[SYNC_REASON_MAX];
			snprintf(why, sizeof(why), "cannot dial %s: %s", m->endpoint,
			         loket_strerror(rc));
			log_error("sync: %s: %s", m->name, why);
			set_error(m, why);
		}
	}
	return m;
}

static void member_remove(struct sync_state *st, struct sync_member *m)
{
	m->removed = 1;
	member_hang_up(st, m);
	if (m->s[SESSION_ACCEPTED].up)
		send_error(st, m, &m->s[SESSION_ACCEPTED], "this node removed you from its roster");
	session_drop(st, m, SESSION_ACCEPTED);
	clear_fetches(st, m);
}

/*
 * Closes every connection accepted on the listener by binding it afresh:
 * libzmq ends a listener's connections with it. Members reconnect at once
 * and pass ZAP again; removed ones no longer can.
 */
static void rebind_listener(struct sync_state *st)
{
	if (!st->router || !st->listen[0])
		return;
	char last[CONFIG_ENDPOINT_MAX];
	size_t size = sizeof(last);
	if (zmq_getsockopt(st->router, ZMQ_LAST_ENDPOINT, last, &size) != 0)
		return;
	if (zmq_unbind(st->router, last) != 0) {
		log_error("sync: cannot unbind %s: %s", last, zmq_strerror(zmq_errno()));
		return;
	}
	/* The listener closes on libzmq's I/O thread: bind again from the timer. */
	st->rebind_pending = 1;
}

static void try_rebind(struct sync_state *st)
{
	if (zmq_bind(st->router, st->listen) == 0) {
		st->rebind_pending = 0;
		log_info("sync: listening on %s again", st->listen);
	} else if (zmq_errno() != EADDRINUSE) {
		st->rebind_pending = 0;
		log_error("sync: cannot bind %s again: %s", st->listen, zmq_strerror(zmq_errno()));
	}
}

/* ---- the periodic timer ---- */

static void on_tick(uv_timer_t *t)
{
	struct sync_state *st = t->data;
	uint64_t now = now_ms(st);
	int hello = now >= st->next_hello;
	if (hello)
		st->next_hello = now + (uint64_t)st->node->cfg->sync_interval_s * 1000u;
	if (st->rebind_pending)
		try_rebind(st);
	uint64_t expiry = 3u * (uint64_t)st->node->cfg->sync_interval_s * 1000u + 2000u;
	for (size_t i = 0; i < st->n_members; i++) {
		struct sync_member *m = st->members[i];
		if (m->removed)
			continue;
		struct sync_session *d = &m->s[SESSION_DIALLED], *a = &m->s[SESSION_ACCEPTED];
		if (d->up && (hello || d->hello_owed))
			send_hello(st, m, d, 0);
		if (a->up && a->hello_owed)
			send_hello(st, m, a, 1);
		if (m->redial_at && now >= m->redial_at && m->dealer) {
			m->redial_at = 0;
			zmq_disconnect(m->dealer, m->endpoint);
			if (zmq_connect(m->dealer, m->endpoint) != 0)
				log_error("sync: %s: cannot dial %s again: %s", m->name,
				          m->endpoint, zmq_strerror(zmq_errno()));
		}
		if (a->up && now - a->last_seen > expiry) {
			log_info("sync: %s went silent; its session to us is taken as closed",
			         m->name);
			a->up = 0;
			a->gen++;
			clear_fetches(st, m);
		}
	}
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
		if (!origin_admitted(st, i))
			continue;
		uint64_t ours = st->origins[i].head, theirs = m->their_seq[i];
		if (ours > theirs)
			they_lack += ours - theirs;
		else
			we_lack += theirs - ours;
	}
	json_t *o = json_pack(
	    "{s:s, s:s, s:s?, s:s?, s:o, s:I, s:I, s:I, s:s?, s:b}", "name", m->name, "key", m->b64,
	    "endpoint", m->endpoint[0] ? m->endpoint : NULL, "session",
	    d && a ? "both"
	    : d    ? "dialled"
	    : a    ? "accepted"
	           : NULL,
	    "last_seen", seen ? json_integer((json_int_t)seen) : json_null(), "they_lack",
	    (json_int_t)they_lack, "we_lack", (json_int_t)we_lack, "errors", (json_int_t)m->errors,
	    "last_error", m->last_error[0] ? m->last_error : NULL, "incompatible", m->incompatible);
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

static int handle_peers(void *data, const json_t *req, json_t **result, char *err, size_t errlen)
{
	(void)req;
	(void)err;
	(void)errlen;
	*result = sync_peers(data);
	return 0;
}

static int handle_reload(void *data, const json_t *req, json_t **result, char *err, size_t errlen)
{
	(void)req;
	return sync_reload(data, result, err, errlen);
}

/* Makes the sync tables follow node->cfg's roster; names of added and removed members. */
static void apply_roster(struct sync_state *st, json_t *added, json_t *removed)
{
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
			          cfg->members[i].name);
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

/* ---- node hook: our own changesets ---- */

static void on_own_accepted(const uint8_t *bytes, size_t len, void *data)
{
	struct sync_state *st = data;
	uint8_t origin[32];
	uint64_t seq;
	if (st->closing || peek_changeset(bytes, len, origin, &seq) != 0)
		return;
	struct sync_origin *o = &st->origins[0];
	uint8_t hash[32];
	changeset_hash(bytes, len, hash);
	o->head = seq;
	memcpy(o->head_hash, hash, 32);
	if (o->expect <= seq)
		o->expect = seq + 1;
	struct accepted a = {0, seq, bytes, len, hash};
	announce(st, &a, 1, NULL);
}

/* ---- init and close ---- */

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
		if (zmq_bind(st->router, st->listen) != 0)
			goto zfail;
		rc = zwatch_init(loop, &st->router_watch, st->router, router_on_readable, st);
		if (rc != 0) {
			snprintf(err, errlen, "sync: cannot watch socket: %s", uv_strerror(rc));
			goto fail;
		}
		st->router_open = 1;
		log_info("sync: listening on %s", st->listen);
	}
	apply_roster(st, NULL, NULL);
	if (node->cfg->n_members > 0) {
		node->writes_blocked = sync_blocked_msg;
		log_info("sync: local writes wait until a peer confirms this node's own chain");
	}
	node->on_accepted = on_own_accepted;
	node->on_accepted_data = st;
	control_add_command(control, "peers", handle_peers, s);
	control_add_command(control, "reload", handle_reload, s);
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
	sync_maybe_closed(st);
}

static void on_zap_closed(struct zap *z)
{
	struct sync_state *st = (struct sync_state *)((char *)z - offsetof(struct sync_state, zap));
	st->pending_closes--;
	sync_maybe_closed(st);
}

static void on_timer_closed(uv_handle_t *h)
{
	struct sync_state *st = h->data;
	st->pending_closes--;
	sync_maybe_closed(st);
}

static void sync_maybe_closed(struct sync_state *st)
{
	if (!st->closing || st->pending_closes > 0 || st->verifying > 0)
		return;
	while (st->queue_head) {
		struct sync_batch *b = st->queue_head;
		st->queue_head = b->next;
		batch_free(b);
	}
	for (size_t i = 0; i < st->n_members; i++)
		free(st->members[i]);
	struct sync *s = st->owner;
	free(st);
	s->st = NULL;
	if (s->on_closed)
		s->on_closed(s);
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
	st->pending_closes = 1; /* held until every close below has been started */
	st->pending_closes++;
	uv_close((uv_handle_t *)&st->timer, on_timer_closed);
	for (size_t i = 0; i < st->n_members; i++)
		member_hang_up(st, st->members[i]);
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
	sync_maybe_closed(st);
}
