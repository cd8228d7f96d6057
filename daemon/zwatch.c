/*
 * zwatch: drains a ZeroMQ socket from the libuv loop. See zwatch.h for why
 * the descriptor alone is not enough.
 */
#include "daemon/zwatch.h"

#include <stddef.h>

#include <zmq.h>

#define ZWATCH_BUDGET     64
#define ZWATCH_RECHECK_MS 1000
#define ZWATCH_HANDLES    4

static void zwatch_on_idle(uv_idle_t *idle);

static int zwatch_readable(struct zwatch *w)
{
	int events = 0;
	size_t size = sizeof(events);
	if (zmq_getsockopt(w->zsock, ZMQ_EVENTS, &events, &size) != 0)
		return 0;
	return (events & ZMQ_POLLIN) != 0;
}

static void zwatch_drain(struct zwatch *w)
{
	for (unsigned i = 0; i < w->budget; i++) {
		if (w->closing || !zwatch_readable(w)) {
			uv_idle_stop(&w->idle);
			return;
		}
		w->on_readable(w, w->zsock, w->data);
	}
	/* Budget spent and messages may be left: come back next iteration. */
	if (!w->closing)
		uv_idle_start(&w->idle, zwatch_on_idle);
}

static void zwatch_on_idle(uv_idle_t *idle)
{
	zwatch_drain(idle->data);
}

/* The safety nets: drain only when something waits unseen. */
static void zwatch_recheck(struct zwatch *w)
{
	if (!w->closing && !uv_is_active((uv_handle_t *)&w->idle) && zwatch_readable(w))
		zwatch_drain(w);
}

static void zwatch_on_check(uv_check_t *check)
{
	zwatch_recheck(check->data);
}

static void zwatch_on_timer(uv_timer_t *timer)
{
	zwatch_recheck(timer->data);
}

static void zwatch_on_poll(uv_poll_t *poll, int status, int events)
{
	(void)status;
	(void)events;
	zwatch_drain(poll->data);
}

int zwatch_init(uv_loop_t *loop, struct zwatch *w, void *zsock, zwatch_cb cb, void *data)
{
	int fd;
	size_t size = sizeof(fd);
	if (zmq_getsockopt(zsock, ZMQ_FD, &fd, &size) != 0)
		return -zmq_errno();

	w->zsock = zsock;
	w->on_readable = cb;
	w->data = data;
	w->budget = ZWATCH_BUDGET;
	w->closing = 0;
	w->pending_closes = 0;
	w->on_close = NULL;

	/* These cannot fail on a valid loop. */
	uv_idle_init(loop, &w->idle);
	uv_check_init(loop, &w->check);
	uv_timer_init(loop, &w->timer);
	w->idle.data = w;
	w->check.data = w;
	w->timer.data = w;
	int rc = uv_poll_init(loop, &w->poll, fd);
	w->poll.data = w;
	if (rc == 0)
		rc = uv_poll_start(&w->poll, UV_READABLE, zwatch_on_poll);
	if (rc != 0)
		return rc; /* the caller still closes the watch */
	uv_check_start(&w->check, zwatch_on_check);
	uv_timer_start(&w->timer, zwatch_on_timer, ZWATCH_RECHECK_MS, ZWATCH_RECHECK_MS);
	/* The timer alone does not keep a loop alive. */
	uv_unref((uv_handle_t *)&w->timer);
	/* Messages may have arrived before the watch began. */
	zwatch_kick(w);
	return 0;
}

void zwatch_kick(struct zwatch *w)
{
	if (!w->closing)
		uv_idle_start(&w->idle, zwatch_on_idle);
}

static void zwatch_on_handle_closed(uv_handle_t *handle)
{
	struct zwatch *w = handle->data;
	if (--w->pending_closes == 0 && w->on_close)
		w->on_close(w);
}

void zwatch_close(struct zwatch *w, zwatch_close_cb cb)
{
	w->closing = 1;
	w->on_close = cb;
	w->pending_closes = ZWATCH_HANDLES;
	uv_close((uv_handle_t *)&w->poll, zwatch_on_handle_closed);
	uv_close((uv_handle_t *)&w->idle, zwatch_on_handle_closed);
	uv_close((uv_handle_t *)&w->check, zwatch_on_handle_closed);
	uv_close((uv_handle_t *)&w->timer, zwatch_on_handle_closed);
}
