/*
 * sync_conns: the listener's connection budget (daemon/sync/sync_conns.h).
 * libzmq reports ZMQ_EVENT_ACCEPTED and ZMQ_EVENT_DISCONNECTED with the
 * connection's descriptor as the event's value; a bit set per descriptor
 * makes the count exact however often an event repeats. A descriptor shut
 * here is one libzmq is about to close: it reports it disconnected, and
 * the bit goes.
 */
#include "daemon/sync/sync_conns.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <zmq.h>

#include "common/log.h"

static int fd_is_open(const struct sync_conns *c, int fd)
{
	return (size_t)fd < c->fd_bits && (c->open_fds[fd / 8] >> (fd % 8) & 1);
}

static void fd_set_open(struct sync_conns *c, int fd, int open)
{
	if ((size_t)fd >= c->fd_bits) {
		size_t bits = c->fd_bits ? c->fd_bits : 1024;
		while (bits <= (size_t)fd)
			bits *= 2;
		c->open_fds = realloc(c->open_fds, bits / 8);
		if (!c->open_fds)
			abort();
		memset(c->open_fds + c->fd_bits / 8, 0, (bits - c->fd_bits) / 8);
		c->fd_bits = bits;
	}
	if (open)
		c->open_fds[fd / 8] |= (uint8_t)(1u << (fd % 8));
	else
		c->open_fds[fd / 8] &= (uint8_t) ~(1u << (fd % 8));
}

static void refused_log(struct sync_conns *c, uint64_t now)
{
	if (c->logged_at == 0)
		log_warn("sync: shut a connection to the listen port: more than %zu were open",
		         c->max);
	else
		log_warn("sync: shut %lu connections to the listen port in %llu s: more than %zu"
		         " were open",
		         c->shut_unlogged, (unsigned long long)((now - c->logged_at) / 1000),
		         c->max);
	c->logged_at = now;
	c->shut_unlogged = 0;
}

void sync_conns_log_flush(struct sync_conns *c)
{
	uint64_t now = uv_now(c->loop);
	if (c->shut_unlogged > 0 && (c->logged_at == 0 || now - c->logged_at >= SYNC_CONNS_LOG_MS))
		refused_log(c, now);
}

static void on_event(struct zwatch *w, void *zsock, void *data)
{
	(void)w;
	struct sync_conns *c = data;
	zmq_msg_t frame;
	int more;
	zmq_msg_init(&frame);
	if (zmq_msg_recv(&frame, zsock, ZMQ_DONTWAIT) < 0) {
		zmq_msg_close(&frame);
		return;
	}
	more = zmq_msg_more(&frame);
	if (zmq_msg_size(&frame) >= 6) {
		const uint8_t *d = zmq_msg_data(&frame);
		uint16_t event = (uint16_t)(d[0] | d[1] << 8);
		int fd = (int)((uint32_t)d[2] | (uint32_t)d[3] << 8 | (uint32_t)d[4] << 16 |
		               (uint32_t)d[5] << 24);
		if (fd >= 0 && event == ZMQ_EVENT_ACCEPTED && !fd_is_open(c, fd)) {
			fd_set_open(c, fd, 1);
			if (++c->n_open > c->max) {
				/* Reads end: libzmq closes it. (A write side shut too makes
				 * libzmq 4.3 assert on its next read event.) */
				shutdown(fd, SHUT_RD);
				c->shut++;
				c->shut_unlogged++;
				sync_conns_log_flush(c);
			}
		} else if (fd >= 0 && event == ZMQ_EVENT_DISCONNECTED && fd_is_open(c, fd)) {
			fd_set_open(c, fd, 0);
			c->n_open--;
			if (c->on_ended)
				c->on_ended(c->on_ended_data, fd);
		}
	}
	zmq_msg_close(&frame);
	/* The endpoint frame, and anything after it, is not needed. */
	while (more) {
		zmq_msg_init(&frame);
		if (zmq_msg_recv(&frame, zsock, ZMQ_DONTWAIT) < 0)
			more = 0;
		else
			more = zmq_msg_more(&frame);
		zmq_msg_close(&frame);
	}
}

int sync_conns_init(struct sync_conns *c, uv_loop_t *loop, void *zctx, void *router, size_t max,
                    const char *endpoint, char *err, size_t errlen)
{
	memset(c, 0, sizeof(*c));
	c->loop = loop;
	c->max = max;
	if (zmq_socket_monitor(router, endpoint, ZMQ_EVENT_ACCEPTED | ZMQ_EVENT_DISCONNECTED) != 0)
		goto zfail;
	c->monitor = zmq_socket(zctx, ZMQ_PAIR);
	if (!c->monitor)
		goto zfail;
	int linger = 0;
	zmq_setsockopt(c->monitor, ZMQ_LINGER, &linger, sizeof(linger));
	if (zmq_connect(c->monitor, endpoint) != 0)
		goto zfail;
	int rc = zwatch_init(loop, &c->watch, c->monitor, on_event, c);
	if (rc != 0) {
		snprintf(err, errlen, "sync: cannot watch the listener's monitor: %s",
		         uv_strerror(rc));
		zmq_close(c->monitor);
		c->monitor = NULL;
		return rc;
	}
	c->watching = 1;
	return 0;
zfail:
	rc = -zmq_errno();
	snprintf(err, errlen, "sync: cannot monitor the listener: %s", zmq_strerror(zmq_errno()));
	if (c->monitor)
		zmq_close(c->monitor);
	c->monitor = NULL;
	return rc;
}

static void on_watch_closed(struct zwatch *w)
{
	struct sync_conns *c =
	    (struct sync_conns *)((char *)w - offsetof(struct sync_conns, watch));
	zmq_close(c->monitor);
	c->monitor = NULL;
	free(c->open_fds);
	c->open_fds = NULL;
	if (c->on_closed)
		c->on_closed(c);
}

void sync_conns_close(struct sync_conns *c, void (*cb)(struct sync_conns *c))
{
	c->on_closed = cb;
	if (!c->watching) {
		free(c->open_fds);
		c->open_fds = NULL;
		if (cb)
			cb(c);
		return;
	}
	c->watching = 0;
	zwatch_close(&c->watch, on_watch_closed);
}
