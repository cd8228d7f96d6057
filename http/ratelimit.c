/*
 * The bucket table: open addressing over RATELIMIT_SLOTS slots, a probe
 * of RATELIMIT_PROBES from the client's FNV-1a hash, one mutex (a take is
 * a few dozen instructions, far below a request's cost). Buckets are
 * refilled lazily: the tokens a bucket gained since it was last used are
 * added when it is next looked at.
 */
#include "http/ratelimit.h"

#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "proto/error.h"

struct slot {
	char client[RATELIMIT_KEY_MAX + 1]; /* "" if free */
	double tokens;
	long long last_ms;
};

struct ratelimit {
	pthread_mutex_t lock;
	double rate, burst;
	struct slot slots[RATELIMIT_SLOTS];
};

struct ratelimit *ratelimit_new(unsigned rate, unsigned burst)
{
	struct ratelimit *rl = calloc(1, sizeof(*rl));

	if (!rl)
		abort();
	pthread_mutex_init(&rl->lock, NULL);
	rl->rate = rate > 0 ? rate : 1;
	rl->burst = burst > 0 ? burst : 1;
	return rl;
}

void ratelimit_free(struct ratelimit *rl)
{
	if (!rl)
		return;
	pthread_mutex_destroy(&rl->lock);
	free(rl);
}

static uint32_t fnv1a(const char *s, size_t len)
{
	uint32_t h = 2166136261u;

	for (size_t i = 0; i < len; i++) {
		h ^= (uint8_t)s[i];
		h *= 16777619u;
	}
	return h;
}

static void refill(const struct ratelimit *rl, struct slot *s, long long now_ms)
{
	if (now_ms > s->last_ms) {
		s->tokens += (double)(now_ms - s->last_ms) * rl->rate / 1000.0;
		if (s->tokens > rl->burst)
			s->tokens = rl->burst;
		s->last_ms = now_ms;
	}
}

/* The slot of client, found or taken; a taken slot starts with a full bucket. */
static struct slot *find(struct ratelimit *rl, const char *client, size_t len, long long now_ms)
{
	uint32_t h = fnv1a(client, len);
	struct slot *free_slot = NULL, *full = NULL, *oldest = NULL;

	for (uint32_t i = 0; i < RATELIMIT_PROBES; i++) {
		struct slot *s = &rl->slots[(h + i) % RATELIMIT_SLOTS];
		if (!s->client[0]) {
			if (!free_slot)
				free_slot = s;
			continue;
		}
		if (strlen(s->client) == len && !memcmp(s->client, client, len))
			return s;
		refill(rl, s, now_ms);
		if (!full && s->tokens >= rl->burst)
			full = s;
		if (!oldest || s->last_ms < oldest->last_ms)
			oldest = s;
	}
	struct slot *s = free_slot ? free_slot : full ? full : oldest;
	memcpy(s->client, client, len);
	s->client[len] = '\0';
	s->tokens = rl->burst;
	s->last_ms = now_ms;
	return s;
}

int ratelimit_take(struct ratelimit *rl, const char *client, long long now_ms, unsigned *retry_s)
{
	size_t len = strnlen(client, RATELIMIT_KEY_MAX);
	int rc = 0;

	*retry_s = 0;
	if (len == 0) {
		client = "?";
		len = 1;
	}
	pthread_mutex_lock(&rl->lock);
	struct slot *s = find(rl, client, len, now_ms);
	refill(rl, s, now_ms);
	if (s->tokens >= 1.0) {
		s->tokens -= 1.0;
	} else {
		double wait_s = (1.0 - s->tokens) / rl->rate;
		*retry_s = (unsigned)wait_s + ((double)(unsigned)wait_s < wait_s);
		if (*retry_s == 0)
			*retry_s = 1;
		rc = LOKET_E_RATE_LIMITED;
	}
	pthread_mutex_unlock(&rl->lock);
	return rc;
}
