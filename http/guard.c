/*
 * The guard: a list of connections under one mutex, scanned by a watchdog
 * thread every GUARD_SCAN_MS. Dropped connections are counted and logged
 * at most once a second, so that an attack cannot fill the log.
 */
#include "http/guard.h"

#include <pthread.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <time.h>

#include "common/log.h"
#include "http/clock.h"

struct guard_conn {
	struct guard_conn *prev, *next;
	int fd;
	int waiting; /* its request has not all arrived */
	int cut;     /* its socket was shut */
	long long since_ms;
};

struct guard {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	pthread_t thread;
	int stop;
	long long deadline_ms;
	struct guard_conn *head;
	unsigned long long cut_unlogged;
	long long logged_ms;
};

static void scan(struct guard *g)
{
	long long now = clock_ms();

	for (struct guard_conn *c = g->head; c; c = c->next) {
		if (!c->waiting || c->cut || now - c->since_ms < g->deadline_ms)
			continue;
		/* Both directions: a poll waiting to read sees the end at once. */
		shutdown(c->fd, SHUT_RDWR);
		c->cut = 1;
		g->cut_unlogged++;
	}
	if (g->cut_unlogged && now - g->logged_ms >= 1000) {
		log_warn(
		    "http: dropped %llu connection(s) whose request did not arrive within %lld s",
		    g->cut_unlogged, g->deadline_ms / 1000);
		g->cut_unlogged = 0;
		g->logged_ms = now;
	}
}

static void *watch(void *arg)
{
	struct guard *g = arg;
	struct timespec until;

	pthread_mutex_lock(&g->lock);
	while (!g->stop) {
		scan(g);
		until = clock_after_ms(GUARD_SCAN_MS);
		pthread_cond_timedwait(&g->cond, &g->lock, &until);
	}
	pthread_mutex_unlock(&g->lock);
	return NULL;
}

struct guard *guard_new(unsigned deadline_s)
{
	struct guard *g = calloc(1, sizeof(*g));
	if (!g)
		abort();
	g->deadline_ms = (long long)deadline_s * 1000;
	pthread_mutex_init(&g->lock, NULL);
	clock_cond_init(&g->cond);
	if (pthread_create(&g->thread, NULL, watch, g) != 0) {
		pthread_cond_destroy(&g->cond);
		pthread_mutex_destroy(&g->lock);
		free(g);
		return NULL;
	}
	return g;
}

void guard_free(struct guard *g)
{
	if (!g)
		return;
	pthread_mutex_lock(&g->lock);
	g->stop = 1;
	pthread_cond_signal(&g->cond);
	pthread_mutex_unlock(&g->lock);
	pthread_join(g->thread, NULL);
	while (g->head)
		guard_remove(g, g->head);
	pthread_cond_destroy(&g->cond);
	pthread_mutex_destroy(&g->lock);
	free(g);
}

struct guard_conn *guard_add(struct guard *g, int fd)
{
	struct guard_conn *c = calloc(1, sizeof(*c));

	if (!c)
		abort();
	c->fd = fd;
	c->waiting = 1;
	c->since_ms = clock_ms();
	pthread_mutex_lock(&g->lock);
	c->next = g->head;
	if (g->head)
		g->head->prev = c;
	g->head = c;
	pthread_mutex_unlock(&g->lock);
	return c;
}

void guard_remove(struct guard *g, struct guard_conn *c)
{
	if (!c)
		return;
	pthread_mutex_lock(&g->lock);
	if (c->prev)
		c->prev->next = c->next;
	else
		g->head = c->next;
	if (c->next)
		c->next->prev = c->prev;
	pthread_mutex_unlock(&g->lock);
	free(c);
}

void guard_hold(struct guard *g, struct guard_conn *c)
{
	if (!c)
		return;
	pthread_mutex_lock(&g->lock);
	c->waiting = 0;
	pthread_mutex_unlock(&g->lock);
}

void guard_next(struct guard *g, struct guard_conn *c)
{
	if (!c)
		return;
	pthread_mutex_lock(&g->lock);
	c->waiting = 1;
	c->since_ms = clock_ms();
	pthread_mutex_unlock(&g->lock);
}
