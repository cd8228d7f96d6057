/*
 * clock: the monotonic clock loket-http's threads time themselves by (a
 * wall clock set back would make a deadline never come), in milliseconds,
 * and condition variables that wait on it.
 */
#ifndef LOKET_HTTP_CLOCK_H
#define LOKET_HTTP_CLOCK_H

#include <pthread.h>
#include <time.h>

/* Milliseconds of CLOCK_MONOTONIC. */
long long clock_ms(void);
/* The CLOCK_MONOTONIC time ms milliseconds from now, for pthread_cond_timedwait. */
struct timespec clock_after_ms(long ms);
/* A condition variable whose timed waits count CLOCK_MONOTONIC. */
void clock_cond_init(pthread_cond_t *cond);

#endif
