/*
 * notify: tells systemd (Type=notify) how the service is doing, by a
 * datagram to $NOTIFY_SOCKET as sd_notify(3) does; a no-op without it. It
 * also keeps systemd's watchdog (WatchdogSec= in the unit) fed from a timer
 * on the daemon's loop, so that a loop that stops turning stops the pings
 * and systemd restarts the service.
 */
#ifndef LOKET_NOTIFY_H
#define LOKET_NOTIFY_H

#include <stdint.h>

#include <uv.h>

/* Sends state, e.g. "READY=1" or "STOPPING=1"; 0 also when not under systemd. */
int notify_systemd(const char *state);

/*
 * "READY=1" with a STATUS= line (one line of text, shown by systemctl
 * status), after start-up or to end a reload.
 */
int notify_ready(const char *status);

/*
 * "RELOADING=1" with MONOTONIC_USEC= (which systemd 253's Type=notify-reload
 * requires and older ones ignore): a reload has begun; notify_ready ends it.
 */
int notify_reloading(void);

/*
 * The watchdog interval systemd asks of this process: $WATCHDOG_USEC, if
 * $WATCHDOG_PID is unset or names this process (as sd_watchdog_enabled(3)
 * reads them); 0 when there is no watchdog.
 */
uint64_t notify_watchdog_usec(void);

struct notify_watchdog {
	uv_timer_t timer;
	int running;
};

/*
 * Sends WATCHDOG=1 every half interval from a timer on loop, as systemd
 * advises, if a watchdog is asked for; otherwise starts nothing. 0 or a
 * negative libuv code.
 */
int notify_watchdog_start(struct notify_watchdog *w, uv_loop_t *loop);
/* Stops the pings and closes the timer (the loop then finishes it). */
void notify_watchdog_close(struct notify_watchdog *w);

#endif
