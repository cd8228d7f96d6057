/*
 * sync_state: the few functions on the state every sync file shares
 * (daemon/sync/sync_state.h): the clock, origin lookups, a member's error
 * record, and freeing the state once it has closed. It calls nothing of
 * the other sync files.
 */
#include "daemon/sync/sync_state.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "common/log.h"
#include "daemon/sync/sync.h"

uint64_t sync_now_ms(struct sync_state *st)
{
	return uv_now(st->loop);
}

void sync_hex32(const uint8_t h[32], char out[65])
{
	sodium_bin2hex(out, 65, h, 32);
}

struct sync_origin *sync_origin_by_key(struct sync_state *st, const uint8_t key[32])
{
	for (size_t i = 0; i < st->n_origins; i++)
		if (memcmp(st->origins[i].key, key, 32) == 0)
			return &st->origins[i];
	return NULL;
}

/* Whether changesets of this origin are accepted now: self and current members. */
int sync_origin_admitted(struct sync_state *st, size_t slot)
{
	if (slot == 0)
		return 1;
	for (size_t i = 0; i < st->n_members; i++)
		if (st->members[i]->slot == slot)
			return !st->members[i]->removed;
	return 0;
}

void sync_member_key_refresh(struct sync_state *st, struct sync_member *m)
{
	uint8_t hash[32];
	uint64_t head = 0;
	memcpy(m->curve_key, m->key, 32);
	/* The key after the head is the newest one the store knows of. */
	if (store_head(st->node->store, m->key, &head, hash) != 0 ||
	    store_key_at(st->node->store, m->key, head + 1, m->curve_key) != 0)
		memcpy(m->curve_key, m->key, 32);
}

void sync_set_error(struct sync_member *m, const char *reason)
{
	m->errors++;
	snprintf(m->last_error, sizeof(m->last_error), "%s", reason);
}

static void log_repeats(struct sync_member *m, uint64_t window_ms)
{
	log_msg(m->log_level, "sync: %s: %s (%lu more times in %llu s)", m->name, m->log_last,
	        m->log_repeats, (unsigned long long)(window_ms / 1000u));
	m->log_repeats = 0;
}

void sync_log_peer(struct sync_state *st, struct sync_member *m, int level, const char *text)
{
	uint64_t now = sync_now_ms(st);

	if (m->log_last[0] && strcmp(m->log_last, text) == 0 &&
	    now - m->log_since < SYNC_LOG_WINDOW_MS) {
		m->log_repeats++;
		return;
	}
	if (m->log_repeats > 0)
		log_repeats(m, now - m->log_since);
	snprintf(m->log_last, sizeof(m->log_last), "%s", text);
	m->log_since = now;
	m->log_level = level;
	log_msg(level, "sync: %s: %s", m->name, text);
}

void sync_log_flush(struct sync_state *st)
{
	uint64_t now = sync_now_ms(st);

	for (size_t i = 0; i < st->n_members; i++) {
		struct sync_member *m = st->members[i];
		if (m->log_repeats > 0 && now - m->log_since >= SYNC_LOG_WINDOW_MS) {
			log_repeats(m, now - m->log_since);
			m->log_since = now;
		}
	}
}

void sync_batch_free(struct sync_batch *b)
{
	for (size_t i = 0; i < b->n; i++)
		if (b->items[i].decoded)
			changeset_release(&b->items[i].cs);
	zmq_msg_close(&b->msg);
	free(b);
}

/*
 * The end of closing: once no close and no verification is pending, the
 * queue and the members go, then the state, and the owner's callback runs.
 */
void sync_state_maybe_free(struct sync_state *st)
{
	if (!st->closing || st->pending_closes > 0 || st->verifying > 0)
		return;
	while (st->queue_head) {
		struct sync_batch *b = st->queue_head;
		st->queue_head = b->next;
		sync_batch_free(b);
	}
	for (size_t i = 0; i < st->n_members; i++)
		free(st->members[i]);
	struct sync *s = st->owner;
	free(st);
	s->st = NULL;
	if (s->on_closed)
		s->on_closed(s);
}
