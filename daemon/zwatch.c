/*
 * zwatch: drains a ZeroMQ socket from the libuv loop. See zwatch.h for why
 * the descriptor alone is not enough.
 */
#include "zwatch.h"

#include <stddef.h>

#include <zmq.h>

#define ZWATCH_BUDGET 64

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

	int rc = uv_poll_init(loop, &w->poll, fd);
	if (rc != 0)
		return rc;
	rc = uv_idle_init(loop, &w->idle);
	if (rc != 0) {
		/* The poll handle must still be closed; nothing else to free. */
		w->closing = 1;
		uv_close((uv_handle_t *)&w->poll, NULL);
		return rc;
	}
	w->poll.data = w;
	w->idle.data = w;
	rc = uv_poll_start(&w->poll, UV_READABLE, zwatch_on_poll);
	if (rc != 0)
		return rc;
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
	w->pending_closes = 2;
	uv_close((uv_handle_t *)&w->poll, zwatch_on_handle_closed);
	uv_close((uv_handle_t *)&w->idle, zwatch_on_handle_closed);
}
