/*
 * The bell: a counter under a mutex and a condition variable on the
 * monotonic clock, so that a change of the wall clock neither cuts a wait
 * short nor makes it last.
 */
#include "http/bell.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <time.h>

#include "http/clock.h"

struct bell {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	uint64_t count;
	unsigned waiting; /* threads in bell_wait */
	int closed;
};

struct bell *bell_new(void)
{
	struct bell *b = calloc(1, sizeof(*b));
	if (!b)
		abort();
	pthread_mutex_init(&b->lock, NULL);
	clock_cond_init(&b->cond);
	return b;
}

void bell_free(struct bell *b)
{
	if (!b)
		return;
	pthread_cond_destroy(&b->cond);
	pthread_mutex_destroy(&b->lock);
	free(b);
}

uint64_t bell_count(struct bell *b)
{
	pthread_mutex_lock(&b->lock);
	uint64_t n = b->count;
	pthread_mutex_unlock(&b->lock);
	return n;
}

unsigned bell_waiting(struct bell *b)
{
	pthread_mutex_lock(&b->lock);
	unsigned n = b->waiting;
	pthread_mutex_unlock(&b->lock);
	return n;
}

void bell_ring(struct bell *b)
{
	pthread_mutex_lock(&b->lock);
	b->count++;
	pthread_cond_broadcast(&b->cond);
	pthread_mutex_unlock(&b->lock);
}

void bell_close(struct bell *b)
{
	pthread_mutex_lock(&b->lock);
	b->closed = 1;
	pthread_cond_broadcast(&b->cond);
	pthread_mutex_unlock(&b->lock);
}

int bell_wait(struct bell *b, uint64_t seen, long ms)
{
	struct timespec until = clock_after_ms(ms);
	int rc = 0;

	pthread_mutex_lock(&b->lock);
	b->waiting++;
	while (!b->closed && b->count == seen && rc != ETIMEDOUT)
		rc = pthread_cond_timedwait(&b->cond, &b->lock, &until);
	b->waiting--;
	int out = b->closed ? -1 : b->count != seen ? 1 : 0;
	pthread_mutex_unlock(&b->lock);
	return out;
}
