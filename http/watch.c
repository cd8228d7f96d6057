/*
 * watch: see watch.h. Every entity change comes from a changeset, and every
 * changeset moves a head, so the thread compares the heads of loketd's
 * `status` between two looks and rings the bell when they differ. (A
 * rebuild renumbers the feed without moving a head; the waiters learn of it
 * at their own next ask.)
 */
#include "http/watch.h"

#include <pthread.h>
#include <stdlib.h>
#include <time.h>

#include "http/clock.h"

struct watch {
	struct ctl_pool *pool;
	struct bell *bell;
	pthread_t thread;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	int stop;
	json_t *heads; /* as the last look saw them; NULL: not known */
};

/* One look: 1 if the heads moved since the last look, else 0. */
static int look(struct watch *w)
{
	char err[256];
	json_t *result = NULL, *req = json_pack("{s:s}", "cmd", "status");
	if (!req)
		abort();
	int rc = ctl_pool_call(w->pool, req, 1000, &result, err, sizeof(err));
	json_decref(req);
	if (rc < 0)
		return 0; /* loketd away: the waiters' own asks say so */
	json_t *heads = json_incref(json_object_get(result, "heads"));
	json_decref(result);
	int moved = w->heads && heads && !json_equal(w->heads, heads);
	json_decref(w->heads);
	w->heads = heads;
	return moved;
}

/* Sleeps ms, or until watch_free; 1 if told to stop. */
static int pause_ms(struct watch *w, long ms)
{
	struct timespec until = clock_after_ms(ms);

	pthread_mutex_lock(&w->lock);
	while (!w->stop && pthread_cond_timedwait(&w->cond, &w->lock, &until) == 0)
		;
	int stop = w->stop;
	pthread_mutex_unlock(&w->lock);
	return stop;
}

static void *watch_run(void *arg)
{
	struct watch *w = arg;
	while (!pause_ms(w, WATCH_MS)) {
		/*
		 * Nobody waits: no look. The heads kept from before make the first
		 * look after it ring if anything moved meanwhile, which at worst
		 * makes the new waiters ask once more.
		 */
		if (bell_waiting(w->bell) == 0)
			continue;
		if (look(w))
			bell_ring(w->bell);
	}
	return NULL;
}

struct watch *watch_new(struct ctl_pool *pool, struct bell *bell)
{
	struct watch *w = calloc(1, sizeof(*w));
	if (!w)
		abort();
	w->pool = pool;
	w->bell = bell;
	pthread_mutex_init(&w->lock, NULL);
	clock_cond_init(&w->cond);
	if (pthread_create(&w->thread, NULL, watch_run, w) != 0) {
		pthread_cond_destroy(&w->cond);
		pthread_mutex_destroy(&w->lock);
		free(w);
		return NULL;
	}
	return w;
}

void watch_free(struct watch *w)
{
	if (!w)
		return;
	pthread_mutex_lock(&w->lock);
	w->stop = 1;
	pthread_cond_signal(&w->cond);
	pthread_mutex_unlock(&w->lock);
	pthread_join(w->thread, NULL);
	json_decref(w->heads);
	pthread_cond_destroy(&w->cond);
	pthread_mutex_destroy(&w->lock);
	free(w);
}
