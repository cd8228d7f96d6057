/*
 * zwatch: a ZeroMQ socket as a libuv event source.
 *
 * ZMQ_FD only signals that ZMQ_EVENTS may have changed, and it does so
 * edge-triggered: after any send or receive, messages can be waiting
 * although the descriptor never becomes readable again. So zwatch drains:
 * whenever the descriptor fires, or after the owner calls zwatch_kick (which
 * it must do after sending), it calls the callback while ZMQ_EVENTS shows
 * POLLIN, at most a budget of times per loop iteration; if messages remain,
 * an idle handle brings it back on the next iteration, so one busy socket
 * cannot starve the loop and no message sits unseen.
 *
 * Even so, under load (a million changesets through a busy node) a ROUTER
 * was seen holding a message for seconds while its descriptor stayed quiet.
 * So zwatch also re-checks ZMQ_EVENTS after every loop iteration (a check
 * handle: one getsockopt) and once a second on a timer for a quiet loop;
 * both cost nothing when nothing waits.
 *
 * The callback receives at most one message per call, with ZMQ_DONTWAIT.
 */
#ifndef LOKET_ZWATCH_H
#define LOKET_ZWATCH_H

#include <uv.h>

struct zwatch;
typedef void (*zwatch_cb)(struct zwatch *w, void *zsock, void *data);
typedef void (*zwatch_close_cb)(struct zwatch *w);

struct zwatch {
	uv_poll_t poll;
	uv_idle_t idle;
	uv_check_t check;
	uv_timer_t timer;
	void *zsock;
	zwatch_cb on_readable;
	void *data;
	unsigned budget; /* messages per loop iteration */
	int closing;
	int pending_closes;
	zwatch_close_cb on_close;
};

/* Watches zsock on loop; the socket stays owned by the caller. */
int zwatch_init(uv_loop_t *loop, struct zwatch *w, void *zsock, zwatch_cb cb, void *data);
/* Re-checks the socket on the next loop iteration; call after every send. */
void zwatch_kick(struct zwatch *w);
/* Stops watching; cb runs once its handles are closed (w may be freed then). */
void zwatch_close(struct zwatch *w, zwatch_close_cb cb);

#endif
