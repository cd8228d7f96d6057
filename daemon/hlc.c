/*
 * Hybrid logical clock (Kulkarni et al.), as used for the hlc field of a
 * changeset: ordering for people, never for correctness, which rests on seq.
 */
#include "daemon/hlc.h"

#include <time.h>

#define HLC_MS_MASK ((UINT64_C(1) << 48) - 1)

uint64_t hlc_wall_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

uint64_t hlc_next(struct hlc *c, uint64_t now_ms)
{
	uint64_t wall = (now_ms & HLC_MS_MASK) << 16;
	/* Past the last stamp by wall time, or one tick after it. */
	c->last = wall > c->last ? wall : c->last + 1;
	return c->last;
}

void hlc_observe(struct hlc *c, uint64_t t)
{
	if (t > c->last)
		c->last = t;
}
