/*
 * sync_receive: the receive path (daemon/sync/sync_receive.h): the cheap
 * pre-filter on the loop thread, verification on the thread pool, apply in
 * arrival order, and the announcement of what was accepted, our own
 * changesets whole to peers up to date with us, everything else as a
 * "have" for them to pull.
 */
#include "daemon/sync/sync_receive.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <zmq.h>

#include "common/config.h"
#include "common/log.h"
#include "daemon/sync/sync_session.h"
#include "proto/error.h"
#include "proto/limits.h"
#include "proto/value.h"

static void sync_run_queue(struct sync_state *st);

/* ---- reading changesets ---- */

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
int sync_peek_changeset(const uint8_t *p, size_t len, uint8_t origin[32], uint64_t *seq)
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

/* ---- the receive path ---- */

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
		it->rc = changeset_verify(it->p, it->len, it->key);
		if (it->rc != 0) {
			char b64[45];
			config_key_encode(it->key, b64);
			snprintf(it->err, sizeof(it->err),
			         "bad signature: it does not verify under %s, the origin's key at"
			         " this seq",
			         b64);
			continue;
		}
		changeset_hash(it->p, it->len, it->hash);
		/* A rotation record: the later changesets of its origin here are the new key's. */
		const uint8_t *next = changeset_rotation(&it->cs);
		for (size_t k = i + 1; next && !b->proof && k < b->n; k++)
			if (b->items[k].slot == it->slot)
				memcpy(b->items[k].key, next, 32);
	}
}

struct accepted {
	size_t slot;
	uint64_t seq;
	const uint8_t *p;
	size_t len;
	const uint8_t *hash;
	size_t n_ops;
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
		struct sync_session *sess = sync_send_session(m);
		if (!sess)
			continue;
		json_t *have = NULL;
		for (size_t k = 0; k < n; k++) {
			const struct accepted *a = &acc[k];
			if (a->slot == 0 && m != from && m->their_seq[0] + 1 == a->seq &&
			    a->seq - 1 - m->confirmed_self < SYNC_PUSH_WINDOW) {
				if (sync_send_bins(st, m, sess, json_pack("{s:s}", "t", "cs"),
				                   &a->p, &a->len, 1) == 0) {
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
			sync_hex32(a->hash, hex);
			json_object_set_new(have, st->origins[a->slot].b64,
			                    json_pack("[I, s]", (json_int_t)a->seq, hex));
		}
		if (have) {
			json_t *hdr = json_pack("{s:s, s:o}", "t", "have", "heads", have);
			if (hdr)
				sync_send_json(st, m, sess, hdr);
		}
	}
}

static void refresh_origin(struct sync_state *st, size_t slot, int reset_expect)
{
	struct sync_origin *o = &st->origins[slot];
	if (store_head(st->node->store, o->key, &o->head, o->head_hash) != 0 ||
	    store_key_at(st->node->store, o->key, o->head + 1, o->signer) != 0)
		log_error("sync: cannot read head: %s", store_errmsg(st->node->store));
	if (reset_expect || o->expect <= o->head)
		o->expect = o->head + 1;
}

/*
 * Records the fork proof (a, b) of origin slot at seq: the store freezes the
 * origin before seq. Logged once, where the decision is made, and passed
 * on to every peer that lacks it.
 */
static void record_proof(struct sync_state *st, struct sync_member *from, size_t slot, uint64_t seq,
                         const uint8_t *a, size_t la, const uint8_t *b, size_t lb)
{
	struct sync_origin *o = &st->origins[slot];
	struct store *store = st->node->store;
	int rc = store_fork_record(store, o->key, seq, a, la, b, lb);
	if (rc == 1)
		return; /* a proof of that seq or a lower one is held already */
	if (rc != 0) {
		log_error("sync: store: cannot record the fork proof of %s seq %llu: %s", o->b64,
		          (unsigned long long)seq, store_errmsg(store));
		return;
	}
	st->forks++;
	o->frozen_at = seq;
	refresh_origin(st, slot, 1);
	log_error("sync: FORK: %s%s signed two different changesets for seq %llu (shown by %s);"
	          " the proof is kept and passed on, and the origin is frozen before it: its"
	          " changesets from seq %llu on are dropped here and everywhere",
	          slot == 0 ? "this node's own key " : "origin ", o->b64, (unsigned long long)seq,
	          from ? from->name : "this node", (unsigned long long)seq);
	sync_share_proof(st, slot);
	if (slot == 0)
		node_key_alarm(
		    st->node,
		    "a changeset of this node's own key at seq %llu that it did not sign was"
		    " shown by %s (a fork proof)",
		    (unsigned long long)seq, from ? from->name : "this node");
	node_own_chain_changed(st->node);
}

/* A changeset that differs from the one held for its (origin, seq): the two are a proof. */
static void prove_fork(struct sync_state *st, struct sync_member *from, const struct sync_item *it)
{
	uint8_t *held;
	size_t held_len;
	if (store_changeset(st->node->store, st->origins[it->slot].key, it->seq, &held,
	                    &held_len) != 0)
		return;
	record_proof(st, from, it->slot, it->seq, held, held_len, it->p, it->len);
	free(held);
}

/* A verified fork proof from a peer: two different changesets of one origin and seq. */
static void apply_proof(struct sync_state *st, struct sync_batch *b)
{
	struct sync_item *x = &b->items[0], *y = &b->items[1];
	char why[SYNC_REASON_MAX];
	if (x->rc != 0 || y->rc != 0) {
		snprintf(why, sizeof(why), "a fork proof of %s seq %llu does not hold: %s",
		         st->origins[x->slot].b64, (unsigned long long)x->seq,
		         x->rc != 0 ? x->err : y->err);
		st->refused++;
		sync_misbehave(st, b->from, b->kind, why);
		return;
	}
	record_proof(st, b->from, x->slot, x->seq, x->p, x->len, y->p, y->len);
}

/*
 * A validly signed changeset whose prev is not the hash of the seq before
 * it held here: its origin signed another changeset for that seq. The peer
 * that sent it holds that one; ask it, and the two become a proof.
 */
static void hint_fork(struct sync_state *st, struct sync_batch *b, const struct sync_item *it)
{
	char why[SYNC_REASON_MAX];
	snprintf(why, sizeof(why),
	         "changeset %s seq %llu links to another seq %llu than the one held here: asked"
	         " for it, as fork evidence",
	         st->origins[it->slot].b64, (unsigned long long)it->seq,
	         (unsigned long long)(it->seq - 1));
	sync_set_error(b->from, why);
	sync_log_peer(st, b->from, LOG_LEVEL_WARN, why);
	if (b->from->s[b->kind].up)
		sync_want_one(st, b->from, &b->from->s[b->kind], it->slot, it->seq - 1);
}

/*
 * The key that signs it->seq is the one the store's key history names,
 * counting the rotation records taken earlier in this transaction: it was
 * verified under a guess made when it was queued, which a record still in
 * the pipeline then may have made wrong, so it is verified again when the
 * two differ. Then the roster's revocations. 0: go on; 1: a bad signature
 * (the peer is told and the batch stops); -1: refused, the origin's later
 * changesets in the batch with it.
 */
static int check_key(struct sync_state *st, struct sync_member *m, struct sync_batch *b,
                     struct sync_item *it)
{
	struct sync_origin *o = &st->origins[it->slot];
	uint8_t want[32];
	char why[320], kb64[45];
	const struct config_revoke *r;

	/*
	 * An origin that never rotated (its key after the head, kept up by
	 * follow_rotation within this transaction, is the origin: no record
	 * can name the origin) signs with the origin: no lookup.
	 */
	if (memcmp(o->signer, o->key, 32) == 0 && it->seq > o->head) {
		memcpy(want, o->key, 32);
	} else if (store_key_at(st->node->store, o->key, it->seq, want) != 0) {
		log_error("sync: store: cannot read the key history: %s",
		          store_errmsg(st->node->store));
		return -1;
	}
	config_key_encode(want, kb64);
	if (memcmp(want, it->key, 32) != 0 && changeset_verify(it->p, it->len, want) != 0) {
		snprintf(why, sizeof(why),
		         "changeset %s seq %" PRIu64 " refused: bad signature: it does not verify"
		         " under %s, the origin's key at this seq",
		         o->b64, it->seq, kb64);
		st->refused++;
		sync_misbehave(st, m, b->kind, why);
		return 1;
	}
	if ((r = config_revoked(st->node->cfg, o->key, want, it->seq)) != NULL) {
		snprintf(why, sizeof(why),
		         "refused changeset %s seq %" PRIu64 ": it is signed with key %s, which the"
		         " roster revokes for this member after seq %" PRIu64,
		         o->b64, it->seq, kb64, r->after);
		st->refused++;
		sync_set_error(m, why);
		/* Once: the chain is not asked for again from here until a reload. */
		if (!o->revoked_at || it->seq < o->revoked_at) {
			o->revoked_at = it->seq;
			log_warn("sync: %s: %s", m->name, why);
		}
		return -1;
	}
	return 0;
}

/*
 * A changeset that did not verify under the key guessed when it was
 * queued: a rotation record still in the pipeline then may have named
 * another key, which the store's key history (with the records taken
 * since) names now.
 */
static void verify_again(struct sync_state *st, struct sync_item *it)
{
	uint8_t want[32];
	char b64[45];
	if (store_key_at(st->node->store, st->origins[it->slot].key, it->seq, want) != 0 ||
	    memcmp(want, it->key, 32) == 0)
		return;
	memcpy(it->key, want, 32);
	if (changeset_verify(it->p, it->len, want) == 0) {
		it->rc = 0;
		it->err[0] = '\0';
		changeset_hash(it->p, it->len, it->hash);
		return;
	}
	config_key_encode(want, b64);
	snprintf(it->err, sizeof(it->err),
	         "bad signature: it does not verify under %s, the origin's key at this seq", b64);
}

/* A rotation record taken: the origin's next changesets, and dialling it, use the new key. */
static void follow_rotation(struct sync_state *st, const struct sync_item *it)
{
	const uint8_t *next = changeset_rotation(&it->cs);
	char b64[45];
	memcpy(st->origins[it->slot].signer, next, 32);
	config_key_encode(next, b64);
	for (size_t i = 0; i < st->n_members; i++)
		if (st->members[i]->slot == it->slot)
			memcpy(st->members[i]->curve_key, next, 32);
	log_info("sync: origin %s rotated its key at seq %" PRIu64 ": from seq %" PRIu64
	         " on it signs with %s",
	         st->origins[it->slot].b64, it->seq, it->seq + 1, b64);
}

/* Applies a verified batch on the loop thread, in one transaction. */
static void batch_apply(struct sync_state *st, struct sync_batch *b)
{
	struct sync_member *m = b->from;
	int live = !m->removed && m->s[b->kind].gen == b->gen;
	struct accepted *acc = calloc(b->n ? b->n : 1, sizeof(*acc));
	size_t n_acc = 0, n_forks = 0;
	size_t *forks = calloc(b->n ? b->n : 1, sizeof(*forks));
	uint8_t touched[SYNC_MAX_ORIGINS] = {0}, reset[SYNC_MAX_ORIGINS] = {0};
	if (!acc || !forks)
		abort();
	for (size_t i = 0; i < b->n; i++) {
		touched[b->items[i].slot] = 1;
		if (!live)
			reset[b->items[i].slot] = 1;
	}
	if (!live)
		goto done;
	if (b->proof) {
		apply_proof(st, b);
		goto done;
	}
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
		if (it->rc == LOKET_E_BAD_SIGNATURE && it->decoded)
			verify_again(st, it);
		if (it->rc != 0) {
			snprintf(why, sizeof(why), "changeset %s seq %" PRIu64 " refused: %s",
			         st->origins[it->slot].b64, it->seq, it->err);
			st->refused++;
			st->origins[it->slot].refused[SYNC_REFUSED_INVALID]++;
			for (size_t k = i; k < b->n; k++)
				reset[b->items[k].slot] = 1;
			sync_misbehave(st, m, b->kind, why);
			break;
		}
		/* Signed by its origin: now it tells what the peer holds. */
		if (it->seq > m->their_seq[it->slot])
			m->their_seq[it->slot] = it->seq;
		if (reset[it->slot])
			continue; /* an earlier changeset of this origin in the batch was not taken
			           */
		if (!sync_origin_admitted(st, it->slot)) {
			st->refused++;
			st->origins[it->slot].refused[SYNC_REFUSED_INVALID]++;
			reset[it->slot] = 1;
			snprintf(why, sizeof(why), "changeset of %s, which is not a roster member",
			         st->origins[it->slot].b64);
			sync_set_error(m, why);
			continue;
		}
		int rc = check_key(st, m, b, it);
		if (rc == 1) {
			for (size_t k = i; k < b->n; k++)
				reset[b->items[k].slot] = 1;
			break; /* the peer misbehaved */
		}
		if (rc != 0) {
			reset[it->slot] = 1;
			continue;
		}
		rc = store_append(store, it->p, it->len, &it->cs, it->hash);
		switch (rc) {
		case 0:
			acc[n_acc++] = (struct accepted){it->slot, it->seq,  it->p,
			                                 it->len,  it->hash, it->cs.n_ops};
			m->strikes[it->slot] = 0;
			hlc_observe(&st->node->hlc, it->cs.hlc);
			if (changeset_rotation(&it->cs))
				follow_rotation(st, it);
			break;
		case 1:
			st->duplicates++;
			break;
		case LOKET_E_FORK:
			forks[n_forks++] = i; /* proved once this transaction ends */
			st->origins[it->slot].refused[SYNC_REFUSED_FORK]++;
			reset[it->slot] = 1;
			break;
		case LOKET_E_FROZEN:
			st->frozen++;
			st->origins[it->slot].refused[SYNC_REFUSED_FROZEN]++;
			reset[it->slot] = 1;
			break;
		case LOKET_E_BAD_SEQ:
			st->gaps++;
			st->origins[it->slot].refused[SYNC_REFUSED_GAP]++;
			reset[it->slot] = 1;
			break;
		case LOKET_E_BAD_PREV:
			reset[it->slot] = 1;
			hint_fork(st, b, it);
			break;
		default:
			log_error("sync: store: cannot append: %s (%s)", loket_strerror(rc),
			          store_errmsg(store));
			failed = 1;
			break;
		}
	}
	if (!failed && store_commit(store) != 0) {
		log_error("sync: store: cannot commit: %s", store_errmsg(store));
		failed = 1;
	}
	if (failed) {
		store_rollback(store);
		n_acc = 0;
		n_forks = 0;
		for (size_t i = 0; i < b->n; i++)
			reset[b->items[i].slot] = 1;
	}
	for (size_t k = 0; k < n_forks; k++)
		prove_fork(st, m, &b->items[forks[k]]);
done:
	for (size_t i = 0; i < st->n_origins; i++)
		if (touched[i])
			refresh_origin(st, i, reset[i]);
	st->accepted += n_acc;
	for (size_t k = 0; k < n_acc; k++) {
		st->origins[acc[k].slot].applied_changesets++;
		st->origins[acc[k].slot].applied_ops += acc[k].n_ops;
	}
	if (n_acc > 0 && !st->closing)
		announce(st, acc, n_acc, m);
	free(acc);
	free(forks);
	if (n_acc > 0)
		node_own_chain_changed(st->node);
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
		sync_batch_free(h);
	}
	if (st->closing) {
		sync_state_maybe_free(st);
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
int sync_parse_bins(const uint8_t *p, size_t len, const uint8_t **bins, size_t *lens, size_t *n)
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

/* A batch of room for n changesets received from m on session kind. */
static struct sync_batch *batch_new(struct sync_state *st, struct sync_member *m, int kind,
                                    size_t n)
{
	struct sync_batch *b = calloc(1, sizeof(*b) + n * sizeof(struct sync_item));
	if (!b)
		abort();
	b->st = st;
	b->from = m;
	b->kind = kind;
	b->gen = m->s[kind].gen;
	snprintf(b->federation, sizeof(b->federation), "%s", st->node->cfg->federation);
	return b;
}

/* Queues b for verification; it takes the message that holds its bytes. */
static void enqueue(struct sync_state *st, struct sync_batch *b, zmq_msg_t *msg)
{
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

/* A cs message: pre-filter each changeset cheaply, queue the rest for verification. */
void sync_take_changesets(struct sync_state *st, struct sync_member *m, int kind, const json_t *hdr,
                          zmq_msg_t *msg, size_t hdr_len)
{
	const uint8_t *p = (const uint8_t *)zmq_msg_data(msg) + hdr_len;
	size_t len = zmq_msg_size(msg) - hdr_len;
	const uint8_t *bins[SYNC_MAX_PER_MSG];
	size_t lens[SYNC_MAX_PER_MSG];
	size_t n;
	if (sync_parse_bins(p, len, bins, lens, &n) != 0) {
		sync_misbehave(st, m, kind, "malformed cs message");
		return;
	}
	/* The end of a want's answer frees the fetch slot of its origin. */
	const char *end_origin = NULL;
	if (json_is_true(json_object_get(hdr, "end"))) {
		end_origin = json_string_value(json_object_get(hdr, "origin"));
		uint8_t key[32];
		struct sync_origin *o = end_origin && config_key_decode(end_origin, key) == 0
		                            ? sync_origin_by_key(st, key)
		                            : NULL;
		json_t *next = json_object_get(hdr, "next");
		if (o) {
			size_t slot = (size_t)(o - st->origins);
			if (o->fetch_from == m)
				o->fetch_from = NULL;
			/* Nothing sent: they do not hold what they claimed. */
			if (n == 0 && json_is_integer(next) && json_integer_value(next) >= 1 &&
			    (uint64_t)json_integer_value(next) <= m->their_seq[slot]) {
				m->their_seq[slot] = (uint64_t)json_integer_value(next) - 1;
				if (m->strikes[slot] < SYNC_MAX_STRIKES)
					m->strikes[slot]++;
			}
		}
	}
	if (n == 0)
		return;
	if (st->queued >= SYNC_MAX_QUEUE) {
		st->dropped_busy++;
		return;
	}
	struct sync_batch *b = batch_new(st, m, kind, n);
	for (size_t i = 0; i < n; i++) {
		uint8_t origin[32];
		uint64_t seq;
		if (sync_peek_changeset(bins[i], lens[i], origin, &seq) != 0) {
			st->refused++;
			free(b);
			sync_misbehave(st, m, kind, "undecodable changeset");
			return;
		}
		struct sync_origin *o = sync_origin_by_key(st, origin);
		size_t slot = o ? (size_t)(o - st->origins) : SIZE_MAX;
		if (!o || !sync_origin_admitted(st, slot)) {
			char why[160], b64[45];
			config_key_encode(origin, b64);
			snprintf(why, sizeof(why),
			         "refused a changeset of %s, which is not a roster member", b64);
			st->refused++;
			sync_set_error(m, why);
			log_warn("sync: %s: %s", m->name, why);
			continue;
		}
		if (sync_stop_at(o) && seq >= sync_stop_at(o)) {
			st->frozen++; /* a fork proof froze the origin before it */
			o->refused[SYNC_REFUSED_FROZEN]++;
			continue;
		}
		if (o->revoked_at && seq >= o->revoked_at) {
			st->refused++; /* a revoked key signed it, or a changeset before it */
			continue;
		}
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
					/* The bytes we verified before: they hold it. */
					if (seq > m->their_seq[slot])
						m->their_seq[slot] = seq;
					st->duplicates++;
					continue;
				}
			}
			/* A different changeset for a seq we hold: verify it, keep the evidence. */
		} else if (seq > o->expect) {
			st->gaps++;
			o->refused[SYNC_REFUSED_GAP]++;
			continue; /* the pump asks for what is missing */
		} else {
			o->expect++;
		}
		struct sync_item *it = &b->items[b->n++];
		it->p = bins[i];
		it->len = lens[i];
		it->slot = slot;
		it->seq = seq;
		/* A guess: a record in the pipeline may change it; batch_apply checks. */
		memcpy(it->key, o->signer, 32);
		if (seq <= o->head && store_key_at(st->node->store, origin, seq, it->key) != 0)
			memcpy(it->key, o->signer, 32);
	}
	if (b->n == 0) {
		free(b);
		return;
	}
	enqueue(st, b, msg);
}

void sync_take_proof(struct sync_state *st, struct sync_member *m, int kind, const json_t *hdr,
                     zmq_msg_t *msg, size_t hdr_len)
{
	const uint8_t *p = (const uint8_t *)zmq_msg_data(msg) + hdr_len;
	size_t len = zmq_msg_size(msg) - hdr_len;
	const uint8_t *bins[SYNC_MAX_PER_MSG];
	size_t lens[SYNC_MAX_PER_MSG], n;
	uint8_t origin[2][32], key[32];
	uint64_t seq[2];
	const char *ob64 = json_string_value(json_object_get(hdr, "origin"));
	json_t *jseq = json_object_get(hdr, "seq");
	struct sync_origin *o =
	    ob64 && config_key_decode(ob64, key) == 0 ? sync_origin_by_key(st, key) : NULL;
	if (sync_parse_bins(p, len, bins, lens, &n) != 0 || n != 2 || !json_is_integer(jseq) ||
	    sync_peek_changeset(bins[0], lens[0], origin[0], &seq[0]) != 0 ||
	    sync_peek_changeset(bins[1], lens[1], origin[1], &seq[1]) != 0 ||
	    memcmp(origin[0], key, 32) != 0 || memcmp(origin[1], key, 32) != 0 ||
	    seq[0] != seq[1] || (json_int_t)seq[0] != json_integer_value(jseq) ||
	    (lens[0] == lens[1] && memcmp(bins[0], bins[1], lens[0]) == 0)) {
		st->refused++;
		sync_misbehave(st, m, kind, "malformed fork proof");
		return;
	}
	if (!o)
		return; /* not an origin of our roster */
	size_t slot = (size_t)(o - st->origins);
	m->their_fork[slot] = seq[0];
	if (!sync_origin_admitted(st, slot) || (o->frozen_at && o->frozen_at <= seq[0]))
		return; /* a proof as low is held already */
	if (st->queued >= SYNC_MAX_QUEUE) {
		st->dropped_busy++;
		return; /* they send it again after the next hello */
	}
	struct sync_batch *b = batch_new(st, m, kind, 2);
	b->proof = 1;
	for (size_t i = 0; i < 2; i++) {
		b->items[b->n] =
		    (struct sync_item){.p = bins[i], .len = lens[i], .slot = slot, .seq = seq[0]};
		/* Both under the key the history held here names for that seq. */
		if (store_key_at(st->node->store, key, seq[0], b->items[b->n].key) != 0)
			memcpy(b->items[b->n].key, key, 32);
		b->n++;
	}
	enqueue(st, b, msg);
}

/* ---- node hook: our own changesets ---- */

void sync_on_own_accepted(const uint8_t *bytes, size_t len, const uint8_t hash[32], void *data)
{
	struct sync_state *st = data;
	uint8_t origin[32];
	uint64_t seq;
	if (st->closing || sync_peek_changeset(bytes, len, origin, &seq) != 0)
		return;
	struct sync_origin *o = &st->origins[0];
	o->head = seq;
	memcpy(o->head_hash, hash, 32);
	if (o->expect <= seq)
		o->expect = seq + 1;
	struct accepted a = {0, seq, bytes, len, hash, 0}; /* ops: not needed to announce */
	announce(st, &a, 1, NULL);
}
