/*
 * metrics: `/metrics` in the Prometheus text format (version 0.0.4) on
 * `[node] metrics = HOST:PORT`, off by default. HTTP is served by
 * libmicrohttpd on a thread of its own, which never touches the node: once
 * a second the loop thread renders a snapshot (metrics_render, from the
 * JSON the node and sync already give `loket status` and `loket peers`),
 * and the HTTP thread hands out the latest one under a mutex. A scraper
 * can therefore never hold the loop, and a slow or hostile one is bounded
 * by a connection limit and a timeout.
 */
#ifndef LOKET_METRICS_H
#define LOKET_METRICS_H

#include <pthread.h>
#include <stddef.h>

#include <jansson.h>
#include <uv.h>

#define METRICS_MAX_CONNECTIONS 8    /* scrapers at once */
#define METRICS_TIMEOUT_S       5    /* an idle connection is closed after this */
#define METRICS_EVERY_MS        1000 /* how often the snapshot is rendered */

/*
 * The snapshot's inputs, gathered on the loop thread: a new reference to
 * each of status (node_status), peers (sync_peers) and counters
 * (sync_counters), any of them NULL if unavailable.
 */
typedef void metrics_gather_fn(void *data, json_t **status, json_t **peers, json_t **counters);

struct metrics {
	uv_loop_t *loop;
	uv_timer_t timer;
	struct MHD_Daemon *httpd;
	metrics_gather_fn *gather;
	void *gather_data;
	uint64_t due;         /* uv_now when the timer should have fired */
	double loop_lag_s;    /* how late it fired last */
	pthread_mutex_t lock; /* guards text and len against the HTTP thread */
	char *text;
	size_t len;
	unsigned long scrapes;
	int running;
	void (*on_closed)(struct metrics *m);
};

/*
 * Serves /metrics on listen ("HOST:PORT", an IPv4 or IPv6 literal; IPv6 in
 * brackets) and starts rendering. On failure nothing runs and err says why.
 */
int metrics_init(struct metrics *m, uv_loop_t *loop, const char *listen, metrics_gather_fn *gather,
                 void *gather_data, char *err, size_t errlen);
/* Stops serving; cb runs once the timer is closed. */
void metrics_close(struct metrics *m, void (*cb)(struct metrics *m));

/*
 * The text format of a snapshot (exposed for tests): a new NUL-terminated
 * string. loop_lag_s is how late the loop ran the last timer.
 */
char *metrics_render(const json_t *status, const json_t *peers, const json_t *counters,
                     double loop_lag_s, size_t *len);

#endif
