/*
 * bell: how the threads of loket-http that wait for changes (long polls,
 * event streams) learn at once of a write made through loket-http itself,
 * instead of at their next look at loketd. A write rings the bell; a
 * waiter sleeps on it for at most the time to its next look. Writes made
 * elsewhere (the CLI, sync) ring it too, through the watch (http/watch.h),
 * which looks at loketd often on behalf of every waiter; the bell only
 * makes waking faster, never correct. Closing the bell wakes every
 * waiter for good, so that a stop is not held by a long poll.
 */
#ifndef LOKET_HTTP_BELL_H
#define LOKET_HTTP_BELL_H

#include <stdint.h>

struct bell;

struct bell *bell_new(void);
void bell_free(struct bell *b);

/* The count of rings so far: what a waiter passes to bell_wait. */
uint64_t bell_count(struct bell *b);
void bell_ring(struct bell *b);
/* How many threads wait on it now (the watch looks at loketd only while some do). */
unsigned bell_waiting(struct bell *b);
/* Wakes every waiter, now and later. */
void bell_close(struct bell *b);

/*
 * Waits at most ms for a ring after seen (a count bell_count gave).
 * Returns 1 if it rang, 0 if the time ran out, -1 once the bell is closed.
 */
int bell_wait(struct bell *b, uint64_t seen, long ms);

#endif
