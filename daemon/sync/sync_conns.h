/*
 * sync_conns: keeps the TCP connections of the sync listener within a
 * budget. Anyone who can reach the listen port can open connections, and
 * each holds a descriptor until its CURVE handshake fails, so a flood of
 * them would take the descriptors the store and the control socket need.
 * A monitor on the ROUTER tells of every connection accepted and ended,
 * with its descriptor; one accepted beyond the budget is shut at once
 * (libzmq then closes it), and refusals are logged once per window with a
 * count. It owns the monitor socket and nothing else; sync.c owns it.
 */
#ifndef LOKET_SYNC_CONNS_H
#define LOKET_SYNC_CONNS_H

#include <stddef.h>
#include <stdint.h>

#include <uv.h>

#include "daemon/zwatch.h"

#define SYNC_CONNS_LOG_MS 10000u /* one log line per window of refusals */

struct sync_conns {
	uv_loop_t *loop;
	void *monitor; /* PAIR, connected to the ROUTER's monitor endpoint */
	struct zwatch watch;
	int watching;
	uint8_t *open_fds; /* a bit per descriptor of an open connection */
	size_t fd_bits;
	size_t n_open;
	size_t max; /* connections kept open at most */
	unsigned long shut;
	unsigned long shut_unlogged;
	uint64_t logged_at;
	/* Told of every connection that ended, by its descriptor (may be NULL). */
	void (*on_ended)(void *data, int fd);
	void *on_ended_data;
	void (*on_closed)(struct sync_conns *c);
};

/*
 * Monitors router (bound, not yet connected to) and keeps at most max of
 * its connections open; endpoint names the inproc monitor endpoint.
 */
int sync_conns_init(struct sync_conns *c, uv_loop_t *loop, void *zctx, void *router, size_t max,
                    const char *endpoint, char *err, size_t errlen);
/* Logs the refusals not logged yet once their window has ended (from the sync timer). */
void sync_conns_log_flush(struct sync_conns *c);
/* Stops monitoring; cb runs once the monitor socket is closed. */
void sync_conns_close(struct sync_conns *c, void (*cb)(struct sync_conns *c));

#endif
