/*
 * watch: one thread that looks at loketd's change feed every WATCH_MS on
 * behalf of every long poll and event stream waiting, and rings the bell
 * (http/bell.h) when something was written, however it was written (the
 * CLI, sync, another loket-http). Waiters then wake within about WATCH_MS
 * of a write, while loketd gets one `status` per WATCH_MS whatever the
 * number of waiters, and none while nobody waits.
 */
#ifndef LOKET_HTTP_WATCH_H
#define LOKET_HTTP_WATCH_H

#include "http/bell.h"
#include "http/ctl.h"

#define WATCH_MS 10

struct watch;

/* Starts the thread; NULL if it cannot be started. */
struct watch *watch_new(struct ctl_pool *pool, struct bell *bell);
/* Stops and joins it; NULL is fine. */
void watch_free(struct watch *w);

#endif
