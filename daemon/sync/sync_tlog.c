/*
 * Checkpoints and witnessing (sync_tlog.h says what; proto/SYNC.md,
 * "Checkpoints", the rules). Everything runs on the loop thread: a
 * checkpoint is a few hundred bytes and its signatures are checked only
 * when its bytes differ from the note held for its origin, and then only
 * the lines that differ, so a peer repeating what this node holds costs a
 * comparison. The store keeps one note per origin (store_tlog.c); cosigner
 * lines of a note are put in the order of this node's origin table.
 */
#include "daemon/sync/sync_tlog.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <sodium.h>

#include "common/config.h"
#include "common/key.h"
#include "common/log.h"
#include "daemon/sync/sync_session.h"
#include "proto/error.h"
#include "proto/merkle.h"
#include "proto/note.h"

/* A signed checkpoint as parsed here, and which of its lines verified. */
struct ckpt {
	const uint8_t *bytes;
	size_t len;
	struct note n;
	struct note_checkpoint cp;
	size_t slot;
	int log_line;
	int cosig[SYNC_MAX_ORIGINS]; /* the line of slot i's verified cosignature, or -1 */
	uint64_t cosig_ts[SYNC_MAX_ORIGINS];
};

static struct ckpt *ckpt_new(void)
{
	struct ckpt *c = calloc(1, sizeof(*c));

	if (!c)
		abort();
	return c;
}

/* The key name of origin slot: its origin line. */
static int name_of(struct sync_state *st, size_t slot, struct note_checkpoint *nm)
{
	return note_origin_line(st->node->cfg->federation, st->origins[slot].key, nm);
}

/* The roster name of slot, for people. */
static const char *slot_name(struct sync_state *st, size_t slot)
{
	if (slot == 0)
		return st->node->cfg->name;
	for (size_t i = 0; i < st->n_members; i++)
		if (st->members[i]->slot == slot)
			return st->members[i]->name;
	return st->origins[slot].b64;
}

/*
 * Parses and checks a signed checkpoint: 0, -1 (malformed, or not signed by
 * its origin: the sender misbehaves; why says how) or 1 (not of this
 * federation or not of an origin admitted here: dropped). A line that is
 * byte for byte one that trusted (a note of the same text) verified is
 * taken without checking it again.
 */
static int parse_ckpt(struct sync_state *st, const uint8_t *p, size_t len, struct ckpt *c,
                      const struct ckpt *trusted, char *why, size_t whylen)
{
	char err[256], fed[LOKET_MAX_FEDERATION_LEN + 1];
	uint8_t key[32], empty[32];
	struct sync_origin *o;

	c->bytes = p;
	c->len = len;
	for (size_t i = 0; i < SYNC_MAX_ORIGINS; i++)
		c->cosig[i] = -1;
	if (note_parse(p, len, &c->n, err, sizeof(err)) != 0) {
		snprintf(why, whylen, "checkpoint: %s", err);
		return -1;
	}
	if (note_checkpoint_parse(c->n.text, c->n.text_len, &c->cp, err, sizeof(err)) != 0) {
		snprintf(why, whylen, "%s", err);
		return -1;
	}
	if (note_origin_parse(c->cp.origin, c->cp.origin_len, fed, sizeof(fed), key) != 0 ||
	    strcmp(fed, st->node->cfg->federation) != 0) {
		char q[ERROR_QUOTE_SIZE];

		snprintf(why, whylen, "checkpoint of origin %s is not of this federation's logs",
		         error_quote(q, sizeof(q), c->cp.origin, c->cp.origin_len));
		return 1;
	}
	o = sync_origin_by_key(st, key);
	if (!o || !sync_origin_admitted(st, (size_t)(o - st->origins))) {
		snprintf(why, whylen, "checkpoint of an origin outside the roster");
		return 1;
	}
	c->slot = (size_t)(o - st->origins);
	if (st->ckpt_budget == 0) {
		snprintf(why, whylen,
		         "checkpoint left for later: this message's signature checks are spent");
		return 1;
	}
	st->ckpt_budget--;
	/*
	 * A log is signed by the key its chain names after the checkpoint's
	 * size (FORMAT.md 14): one this node can know only once it holds that
	 * size. Beyond it, a signature under another key may be a rotation not
	 * heard of yet: left for later, no offence.
	 */
	uint8_t signer[32];
	int held = c->cp.size <= o->head;
	if (store_key_at(st->node->store, o->key, (held ? c->cp.size : o->head) + 1, signer) != 0)
		memcpy(signer, o->key, 32);
	c->log_line = note_find(&c->n, (const uint8_t *)c->cp.origin, c->cp.origin_len,
	                        note_key_id((const uint8_t *)c->cp.origin, c->cp.origin_len,
	                                    NOTE_TYPE_ED25519, signer));
	if (c->log_line < 0 ||
	    note_verify(&c->n, (const uint8_t *)c->cp.origin, c->cp.origin_len, signer) != 0) {
		if (!held) {
			snprintf(why, whylen,
			         "checkpoint of %s at size %" PRIu64
			         " left for later: not signed by the key of its chain known here",
			         o->b64, c->cp.size);
			return 1;
		}
		snprintf(why, whylen,
		         "checkpoint of %s at size %" PRIu64 " is not signed by its origin", o->b64,
		         c->cp.size);
		return -1;
	}
	merkle_empty_root(empty);
	if (c->cp.size == 0 && memcmp(c->cp.root, empty, 32) != 0) {
		snprintf(why, whylen,
		         "checkpoint of %s at size 0 has a root that is not the empty tree's",
		         o->b64);
		return -1;
	}
	for (size_t i = 0; i < st->n_origins; i++) {
		struct note_checkpoint nm;
		int line;

		if (!sync_origin_admitted(st, i) || name_of(st, i, &nm) != 0)
			continue;
		line = note_find(&c->n, (const uint8_t *)nm.origin, nm.origin_len,
		                 note_key_id((const uint8_t *)nm.origin, nm.origin_len,
		                             NOTE_TYPE_COSIG, st->origins[i].signer));
		if (line < 0)
			continue;
		if (trusted && trusted->cosig[i] >= 0 && trusted->n.text_len == c->n.text_len &&
		    memcmp(trusted->n.text, c->n.text, c->n.text_len) == 0 &&
		    trusted->n.sig[trusted->cosig[i]].len == c->n.sig[line].len &&
		    memcmp(trusted->n.sig[trusted->cosig[i]].sig, c->n.sig[line].sig,
		           c->n.sig[line].len) == 0) {
			c->cosig[i] = line;
			c->cosig_ts[i] = trusted->cosig_ts[i];
			continue;
		}
		if (st->ckpt_budget == 0)
			continue;
		st->ckpt_budget--;
		/* A member cosigns with its newest key (a cosignature of an older one is dropped).
		 */
		if (note_verify_cosig(&c->n, (const uint8_t *)nm.origin, nm.origin_len,
		                      st->origins[i].signer, &c->cosig_ts[i]) == 0)
			c->cosig[i] = line;
	}
	return 0;
}

static int append_line(const struct ckpt *c, int line, char *out, size_t cap, size_t *len)
{
	const struct note_sig *s = &c->n.sig[line];

	return note_append_sig(out, cap, len, s->name, s->name_len, s->key_id, s->sig, s->len);
}

/*
 * The note of base's checkpoint with its log signature and every verified
 * cosignature of base and of more (the same text), and own (a 72-byte
 * cosignature of this node, slot 0) if not NULL. *added counts the
 * cosignatures base lacked.
 */
static int merge(struct sync_state *st, const struct ckpt *base, const struct ckpt *more,
                 const uint8_t *own, uint8_t *out, size_t cap, size_t *len, int *added)
{
	char *o = (char *)out;
	size_t n = base->n.text_len;
	int rc;

	*added = 0;
	if (n + 1 > cap)
		return -ENOSPC;
	memcpy(o, base->n.text, n);
	o[n++] = '\n';
	if ((rc = append_line(base, base->log_line, o, cap, &n)) < 0)
		return rc;
	for (size_t i = 0; i < st->n_origins; i++) {
		if (base->cosig[i] >= 0) {
			rc = append_line(base, base->cosig[i], o, cap, &n);
		} else if (more && more->cosig[i] >= 0) {
			rc = append_line(more, more->cosig[i], o, cap, &n);
			++*added;
		} else if (i == 0 && own) {
			struct note_checkpoint nm;

			if ((rc = name_of(st, 0, &nm)) == 0)
				rc = note_append_sig(
				    o, cap, &n, (const uint8_t *)nm.origin, nm.origin_len,
				    note_key_id((const uint8_t *)nm.origin, nm.origin_len,
				                NOTE_TYPE_COSIG, st->origins[0].signer),
				    own, NOTE_COSIG_BYTES);
			++*added;
		}
		if (rc < 0)
			return rc;
	}
	*len = n;
	return 0;
}

/* Sends notes (an array of strings, taken) to m, or to every peer that takes them when m is NULL.
 */
static void send_notes(struct sync_state *st, struct sync_member *m, const char *type,
                       json_t *notes)
{
	for (size_t i = 0; i < st->n_members; i++) {
		struct sync_member *p = st->members[i];
		struct sync_session *sess;
		json_t *hdr;

		if ((m && p != m) || !p->knows_ckpt || !(sess = sync_send_session(p)))
			continue;
		hdr = json_pack("{s:s, s:O}", "t", type, "notes", notes);
		if (!hdr)
			abort();
		sync_send_json(st, p, sess, hdr);
	}
	json_decref(notes);
}

static json_t *note_json(const uint8_t *p, size_t len)
{
	json_t *s = json_stringn((const char *)p, len);

	if (!s)
		abort();
	return s;
}

static void share_note(struct sync_state *st, const uint8_t *p, size_t len)
{
	json_t *a = json_array();

	json_array_append_new(a, note_json(p, len));
	send_notes(st, NULL, "ckpt", a);
}

static void share_split(struct sync_state *st, struct sync_member *m, size_t slot)
{
	uint8_t *notes[2];
	size_t len[2];
	uint64_t size;
	json_t *a;

	if (store_split_get(st->node->store, st->origins[slot].key, &size, notes, len) != 0)
		return;
	a = json_array();
	json_array_append_new(a, note_json(notes[0], len[0]));
	if (len[1] > 0)
		json_array_append_new(a, note_json(notes[1], len[1]));
	free(notes[0]);
	free(notes[1]);
	send_notes(st, m, "split", a);
}

/*
 * Records the split-view proof (a, b) of slot at size (b empty: a against
 * the changesets held): the store freezes the origin at size. Logged once,
 * passed on to every peer.
 */
static void record_split(struct sync_state *st, struct sync_member *from, size_t slot,
                         uint64_t size, const uint8_t *a, size_t la, const uint8_t *b, size_t lb)
{
	struct sync_origin *o = &st->origins[slot];
	int rc = store_split_record(st->node->store, o->key, size, a, la, b, lb);

	if (rc == 1)
		return;
	if (rc != 0) {
		log_error("sync: store: cannot record the split-view proof of %s at size %" PRIu64
		          ": %s",
		          o->b64, size, store_errmsg(st->node->store));
		return;
	}
	st->splits++;
	o->split_at = size + 1;
	if (store_head(st->node->store, o->key, &o->head, o->head_hash) != 0)
		log_error("sync: cannot read head: %s", store_errmsg(st->node->store));
	o->expect = o->head + 1;
	log_error("sync: SPLIT VIEW: %s%s signed %s for tree size %" PRIu64
	          " (shown by %s); the proof is kept and passed on, and the origin is frozen at"
	          " that size: its changesets after seq %" PRIu64
	          " are dropped here and everywhere",
	          slot == 0 ? "this node's own key " : "origin ", o->b64,
	          lb ? "two checkpoints with different roots"
	             : "a checkpoint whose root is not the tree of its changesets",
	          size, from ? from->name : "this node", size);
	if (slot == 0)
		node_key_alarm(st->node,
		               "a checkpoint of this node's own log at size %" PRIu64
		               " that it did not sign was shown by %s (a split-view proof)",
		               size, from ? from->name : "this node");
	share_split(st, NULL, slot);
	if (slot == 0)
		node_own_chain_changed(st->node);
}

/* This node's cosignature of c at the current time into sig (72 bytes). */
static int cosign(struct sync_state *st, const struct ckpt *c, uint8_t sig[NOTE_COSIG_BYTES])
{
	uint8_t msg[64 + NOTE_MAX_TEXT];
	uint64_t ts = (uint64_t)time(NULL);
	size_t mlen;
	int rc;

	if ((rc = note_cosig_message(c->n.text, c->n.text_len, ts, msg, sizeof(msg), &mlen)) < 0)
		return rc;
	for (int k = 0; k < 8; k++)
		sig[k] = (uint8_t)(ts >> (56 - 8 * k));
	key_sign(st->node->key, msg, mlen, sig + 8);
	return 0;
}

/*
 * Whether this node may cosign c (of a member): it holds the tree at c's
 * size, the root is its own (checked by the caller), and c does not go
 * back on or contradict the last checkpoint it cosigned for that origin: a
 * consistency proof from that one to c, from the store's tree, verifies.
 */
static int may_cosign(struct sync_state *st, const struct ckpt *c)
{
	struct store *s = st->node->store;
	const uint8_t *key = st->origins[c->slot].key;
	uint8_t last_root[32], proof[MERKLE_MAX_PROOF][32];
	uint64_t last;
	size_t count;

	if (c->slot == 0 || c->cosig[0] >= 0 || c->cp.size == 0 ||
	    c->cp.size > st->origins[c->slot].head)
		return 0;
	if (store_tlog_signed(s, key, &last, last_root) != 0 || last > c->cp.size)
		return 0;
	if (store_tree_consistency(s, key, last, c->cp.size, proof, &count) != 0)
		return 0;
	if (last > 0 && merkle_verify_consistency(last, c->cp.size, last_root, c->cp.root, proof[0],
	                                          count) != 0) {
		log_error("sync: the checkpoint of %s at size %" PRIu64
		          " is not consistent with the one this node cosigned at size %" PRIu64
		          "; not cosigned",
		          st->origins[c->slot].b64, c->cp.size, last);
		return 0;
	}
	return 1;
}

/*
 * The own-key checks: a cosignature under this node's key of a root that
 * is not its own tree's (it only ever cosigns its own tree), or a
 * checkpoint of its own log beyond every seq it ever signed.
 */
static void check_own_key(struct sync_state *st, struct sync_member *from, const struct ckpt *c)
{
	struct sync_origin *o = &st->origins[c->slot];
	uint8_t root[32];

	if (c->slot != 0 && c->cosig[0] >= 0 && c->cp.size > 0 && c->cp.size <= o->head &&
	    store_tree_root(st->node->store, o->key, c->cp.size, root) == 0 &&
	    memcmp(root, c->cp.root, 32) != 0)
		node_key_alarm(
		    st->node,
		    "a cosignature under this node's key of %s's checkpoint at size %" PRIu64
		    ", whose root is not the tree this node holds, was shown by %s",
		    slot_name(st, c->slot), c->cp.size, from ? from->name : "this node");
	if (c->slot == 0) {
		const struct own_head *h = st->node->own_head;
		uint64_t signed_max = o->head;

		if (h && h->state == OWN_HEAD_VALID && h->seq > signed_max)
			signed_max = h->seq;
		if (c->cp.size > signed_max)
			node_key_alarm(st->node,
			               "a checkpoint of this node's own log at size %" PRIu64
			               ", beyond the %" PRIu64 " it ever signed, was shown by %s",
			               c->cp.size, signed_max, from ? from->name : "this node");
	}
}

/*
 * One signed checkpoint from from (NULL: this node, again after it waited).
 * force: look at it even if its bytes are the note held.
 */
static void take_note(struct sync_state *st, struct sync_member *from, int kind, const uint8_t *p,
                      size_t len, int force)
{
	struct store *s = st->node->store;
	struct ckpt *held = NULL, *c = ckpt_new();
	uint8_t *held_bytes = NULL, *out = NULL, own[NOTE_COSIG_BYTES], root[32];
	size_t held_len = 0, out_len = 0;
	char why[SYNC_REASON_MAX];
	int rc, added = 0, store_it = 0, do_cosign;
	struct sync_origin *o;

	rc = parse_ckpt(st, p, len, c, NULL, why, sizeof(why));
	if (rc != 0) {
		st->ckpt_refused++;
		if (rc < 0 && from)
			sync_misbehave(st, from, kind, why);
		goto done;
	}
	o = &st->origins[c->slot];
	if (store_checkpoint_get(s, o->key, &held_bytes, &held_len) == 0) {
		if (!force && held_len == len && memcmp(held_bytes, p, len) == 0)
			goto done;
		held = ckpt_new();
		if (parse_ckpt(st, held_bytes, held_len, held, NULL, why, sizeof(why)) != 0) {
			free(held);
			held = NULL;
		} else {
			/* Lines the held note verified need no second check. */
			if (parse_ckpt(st, p, len, c, held, why, sizeof(why)) != 0)
				goto done;
		}
	}
	st->ckpt_received++;
	check_own_key(st, from, c);
	/* Same size, another root: the origin showed two trees. */
	if (held && held->cp.size == c->cp.size && memcmp(held->cp.root, c->cp.root, 32) != 0) {
		record_split(st, from, c->slot, c->cp.size, held_bytes, held_len, p, len);
		goto done;
	}
	/* A root that is not the tree of the changesets held: the origin showed another tree. */
	if (c->cp.size > 0 && c->cp.size <= o->head &&
	    store_tree_root(s, o->key, c->cp.size, root) == 0 &&
	    memcmp(root, c->cp.root, 32) != 0) {
		record_split(st, from, c->slot, c->cp.size, p, len, NULL, 0);
		goto done;
	}
	if (held && c->cp.size < held->cp.size)
		goto done; /* an older one, consistent with what is held: nothing to keep */
	/* This node's own checkpoint is the one it signed: others only bring cosignatures. */
	if (c->slot == 0 && (!held || c->cp.size != held->cp.size))
		goto done;
	out = malloc(NOTE_MAX_BYTES);
	if (!out)
		abort();
	if (!held || c->cp.size > held->cp.size) {
		do_cosign = may_cosign(st, c);
		if (do_cosign && cosign(st, c, own) != 0)
			do_cosign = 0;
		rc = merge(st, c, NULL, do_cosign ? own : NULL, out, NOTE_MAX_BYTES, &out_len,
		           &added);
		store_it = 1;
	} else {
		do_cosign = may_cosign(st, held) && c->cosig[0] < 0;
		if (do_cosign && cosign(st, held, own) != 0)
			do_cosign = 0;
		rc = merge(st, held, c, do_cosign ? own : NULL, out, NOTE_MAX_BYTES, &out_len,
		           &added);
		store_it = added > 0;
	}
	if (rc < 0) {
		log_error("sync: the checkpoint of %s does not fit in a note", o->b64);
		goto done;
	}
	o->ckpt_wait =
	    c->slot != 0 && !do_cosign && c->cosig[0] < 0 && c->cp.size > o->head ? c->cp.size : 0;
	if (!store_it && !do_cosign)
		goto done;
	if ((rc = store_begin(s)) == 0 &&
	    (rc = store_checkpoint_put(s, o->key, c->cp.size, c->cp.root, out, out_len)) == 0 &&
	    (!do_cosign || (rc = store_tlog_set_signed(s, o->key, c->cp.size, c->cp.root)) == 0))
		rc = store_commit(s);
	if (rc != 0) {
		store_rollback(s);
		log_error("sync: store: cannot keep the checkpoint of %s: %s", o->b64,
		          store_errmsg(s));
		goto done;
	}
	if (do_cosign)
		st->ckpt_cosigned++;
	share_note(st, out, out_len);
done:
	free(out);
	free(held_bytes);
	free(held);
	free(c);
}

void sync_tlog_take(struct sync_state *st, struct sync_member *m, int kind, const json_t *hdr)
{
	const json_t *notes = json_object_get(hdr, "notes"), *v;
	size_t i;

	if (!json_is_array(notes) || json_array_size(notes) > SYNC_TLOG_PER_MSG) {
		sync_misbehave(st, m, kind,
		               "a ckpt message needs \"notes\", an array of at most 256");
		return;
	}
	st->ckpt_budget = SYNC_TLOG_VERIFY_BUDGET;
	json_array_foreach(notes, i, v)
	{
		if (!json_is_string(v)) {
			sync_misbehave(st, m, kind, "a ckpt message's notes are strings");
			return;
		}
		take_note(st, m, kind, (const uint8_t *)json_string_value(v), json_string_length(v),
		          0);
		if (!m->s[kind].up)
			return; /* dropped for misbehaving */
	}
}

void sync_tlog_take_split(struct sync_state *st, struct sync_member *m, int kind, const json_t *hdr)
{
	const json_t *notes = json_object_get(hdr, "notes");
	struct ckpt *a = ckpt_new(), *b = NULL;
	char why[SYNC_REASON_MAX];
	uint8_t root[32];
	size_t n = json_array_size(notes);
	int rc;

	st->ckpt_budget = SYNC_TLOG_VERIFY_BUDGET;
	if (!json_is_array(notes) || n < 1 || n > 2 || !json_is_string(json_array_get(notes, 0)) ||
	    (n == 2 && !json_is_string(json_array_get(notes, 1)))) {
		sync_misbehave(st, m, kind, "a split message needs \"notes\", one or two strings");
		goto done;
	}
	rc = parse_ckpt(st, (const uint8_t *)json_string_value(json_array_get(notes, 0)),
	                json_string_length(json_array_get(notes, 0)), a, NULL, why, sizeof(why));
	if (rc == 0 && n == 2) {
		b = ckpt_new();
		rc = parse_ckpt(st, (const uint8_t *)json_string_value(json_array_get(notes, 1)),
		                json_string_length(json_array_get(notes, 1)), b, NULL, why,
		                sizeof(why));
		if (rc == 0 && (a->slot != b->slot || a->cp.size != b->cp.size ||
		                memcmp(a->cp.root, b->cp.root, 32) == 0)) {
			snprintf(
			    why, sizeof(why),
			    "a split-view proof needs two checkpoints of one origin and size with"
			    " different roots");
			rc = -1;
		}
	}
	if (rc < 0) {
		char w[SYNC_REASON_MAX + 40];

		snprintf(w, sizeof(w), "a split-view proof does not hold: %s", why);
		sync_misbehave(st, m, kind, w);
		goto done;
	}
	if (rc > 0)
		goto done;
	if (b) {
		record_split(st, m, a->slot, a->cp.size, a->bytes, a->len, b->bytes, b->len);
	} else if (a->cp.size > 0 && a->cp.size <= st->origins[a->slot].head &&
	           store_tree_root(st->node->store, st->origins[a->slot].key, a->cp.size, root) ==
	               0 &&
	           memcmp(root, a->cp.root, 32) != 0) {
		/* Against the changesets: checked here with this node's own. */
		record_split(st, m, a->slot, a->cp.size, a->bytes, a->len, NULL, 0);
	}
done:
	free(a);
	free(b);
}

/* Signs a checkpoint of this node's own log at its head, if the log grew since the last. */
static void sign_own(struct sync_state *st)
{
	struct store *s = st->node->store;
	struct note_checkpoint cp;
	uint8_t last_root[32], rlast[32], proof[MERKLE_MAX_PROOF][32], sig[64];
	char text[NOTE_MAX_TEXT], note[NOTE_MAX_TEXT + 512];
	uint64_t head, last;
	size_t tlen, nlen, count;
	uint8_t h[32];
	int rc;

	/* Never while the store lacks the chain this key signed (restored, wiped, forked). */
	if (node_writes_refused(st->node) || store_head(s, st->node->self, &head, h) != 0 ||
	    head == 0 || store_tlog_signed(s, st->node->self, &last, last_root) != 0 ||
	    head == last)
		return;
	if (head < last) {
		if (!st->ckpt_behind_logged)
			log_error("sync: this node's log holds %" PRIu64
			          " changesets but it signed a checkpoint at %" PRIu64
			          "; no checkpoint is signed until it holds as many",
			          head, last);
		st->ckpt_behind_logged = 1;
		return;
	}
	st->ckpt_behind_logged = 0;
	if (name_of(st, 0, &cp) != 0 || store_tree_root(s, st->node->self, head, cp.root) != 0)
		return;
	cp.size = head;
	/* Never two that are not consistent: the last one must be a prefix of this one. */
	if (last > 0 &&
	    (store_tree_root(s, st->node->self, last, rlast) != 0 ||
	     memcmp(rlast, last_root, 32) != 0 ||
	     store_tree_consistency(s, st->node->self, last, head, proof, &count) != 0 ||
	     merkle_verify_consistency(last, head, last_root, cp.root, proof[0], count) != 0)) {
		log_error("sync: this node's log at size %" PRIu64
		          " is not consistent with its checkpoint at size %" PRIu64
		          "; no checkpoint signed",
		          head, last);
		return;
	}
	if (note_checkpoint_text(&cp, text, sizeof(text), &tlen) != 0)
		return;
	memcpy(note, text, tlen);
	nlen = tlen;
	note[nlen++] = '\n';
	key_sign(st->node->key, (const uint8_t *)text, tlen, sig);
	if (note_append_sig(note, sizeof(note), &nlen, (const uint8_t *)cp.origin, cp.origin_len,
	                    note_key_id((const uint8_t *)cp.origin, cp.origin_len,
	                                NOTE_TYPE_ED25519, st->origins[0].signer),
	                    sig, sizeof(sig)) != 0)
		return;
	/* What it signed is durable before the checkpoint leaves the node. */
	if ((rc = store_begin(s)) == 0 &&
	    (rc = store_tlog_set_signed(s, st->node->self, head, cp.root)) == 0 &&
	    (rc = store_checkpoint_put(s, st->node->self, head, cp.root, (const uint8_t *)note,
	                               nlen)) == 0)
		rc = store_commit(s);
	if (rc != 0) {
		store_rollback(s);
		log_error("sync: store: cannot keep this node's checkpoint: %s", store_errmsg(s));
		return;
	}
	st->ckpt_signed++;
	share_note(st, (const uint8_t *)note, nlen);
}

void sync_tlog_tick(struct sync_state *st)
{
	uint64_t now = sync_now_ms(st);

	if (now < st->ckpt_next_ms)
		return;
	st->ckpt_next_ms = now + SYNC_TLOG_SIGN_MS;
	st->ckpt_budget = SYNC_TLOG_VERIFY_BUDGET;
	sign_own(st);
	/* Checkpoints that waited for this node to hold their size. */
	for (size_t i = 1; i < st->n_origins; i++) {
		struct sync_origin *o = &st->origins[i];
		uint8_t *p;
		size_t len;

		if (!o->ckpt_wait || o->head < o->ckpt_wait)
			continue;
		o->ckpt_wait = 0;
		if (store_checkpoint_get(st->node->store, o->key, &p, &len) == 0) {
			take_note(st, NULL, 0, p, len, 1);
			free(p);
		}
	}
}

struct share_ctx {
	json_t *notes;
	size_t bytes;
};

static int share_one(void *arg, const uint8_t origin[32], const uint8_t *note, size_t len,
                     int64_t seen)
{
	struct share_ctx *c = arg;

	(void)origin;
	(void)seen;
	if (c->bytes + len > SYNC_TLOG_MSG_BYTES || json_array_size(c->notes) == SYNC_TLOG_PER_MSG)
		return 1;
	json_array_append_new(c->notes, note_json(note, len));
	c->bytes += len;
	return 0;
}

struct split_share {
	struct sync_state *st;
	struct sync_member *m;
};

static int share_split_one(void *arg, const uint8_t origin[32], uint64_t size)
{
	struct split_share *c = arg;
	struct sync_origin *o = sync_origin_by_key(c->st, origin);

	(void)size;
	if (o)
		share_split(c->st, c->m, (size_t)(o - c->st->origins));
	return 0;
}

void sync_tlog_share(struct sync_state *st, struct sync_member *m, struct sync_session *sess)
{
	struct share_ctx c = {json_array(), 0};
	struct split_share sp = {st, m};

	(void)sess;
	if (!m->knows_ckpt) {
		json_decref(c.notes);
		return;
	}
	if (store_each_checkpoint(st->node->store, share_one, &c) < 0 ||
	    json_array_size(c.notes) == 0)
		json_decref(c.notes);
	else
		send_notes(st, m, "ckpt", c.notes);
	store_each_split(st->node->store, share_split_one, &sp);
}

struct list_ctx {
	struct sync_state *st;
	json_t *out;
};

static int list_one(void *arg, const uint8_t origin[32], const uint8_t *note, size_t len,
                    int64_t seen)
{
	struct list_ctx *l = arg;
	struct sync_state *st = l->st;
	struct ckpt *c = ckpt_new();
	char why[SYNC_REASON_MAX], root[45], b64[45];
	json_t *names, *cos, *o;
	uint64_t split = 0;

	(void)origin;
	if (parse_ckpt(st, note, len, c, NULL, why, sizeof(why)) != 0) {
		free(c);
		return 0;
	}
	sodium_bin2base64(root, sizeof(root), c->cp.root, 32, sodium_base64_VARIANT_ORIGINAL);
	sodium_bin2base64(b64, sizeof(b64), st->origins[c->slot].key, 32,
	                  sodium_base64_VARIANT_ORIGINAL);
	names = json_array();
	cos = json_array();
	for (size_t i = 0; i < st->n_origins; i++) {
		if (c->cosig[i] < 0)
			continue;
		json_array_append_new(names, json_string(slot_name(st, i)));
		json_array_append_new(cos, json_pack("{s:s, s:I}", "name", slot_name(st, i), "time",
		                                     (json_int_t)c->cosig_ts[i]));
	}
	if (store_split_get(st->node->store, st->origins[c->slot].key, &split, NULL, NULL) != 0)
		split = 0;
	o = json_pack("{s:s, s:s, s:s, s:I, s:s, s:I, s:o, s:o, s:s%, s:o}", "origin",
	              slot_name(st, c->slot), "key", b64, "log", c->cp.origin, "size",
	              (json_int_t)c->cp.size, "root", root, "time", (json_int_t)seen, "cosigners",
	              names, "cosignatures", cos, "note", (const char *)note, len, "split",
	              split ? json_pack("{s:I}", "size", (json_int_t)split) : json_null());
	if (!o)
		abort();
	json_array_append_new(l->out, o);
	free(c);
	return 0;
}

json_t *sync_tlog_checkpoints(struct sync_state *st)
{
	struct list_ctx l = {st, json_array()};

	st->ckpt_budget = UINT32_MAX;
	store_each_checkpoint(st->node->store, list_one, &l);
	return l.out;
}
