/*
 * Hybrid logical clock: 48 bits of milliseconds since the epoch and a 16-bit
 * counter, so that a node's timestamps never go backwards even when its wall
 * clock does, and stay close to real time for people reading the log.
 */
#ifndef LOKET_HLC_H
#define LOKET_HLC_H

#include <stdint.h>

struct hlc {
	uint64_t last; /* ms << 16 | counter */
};

#define HLC_MS(t)      ((t) >> 16)
#define HLC_COUNTER(t) ((t)&0xffffu)

/* A timestamp greater than every one issued or observed before. */
uint64_t hlc_next(struct hlc *c, uint64_t now_ms);
/* Takes note of a timestamp seen in a changeset from elsewhere. */
void hlc_observe(struct hlc *c, uint64_t t);
/* Wall-clock milliseconds since the epoch. */
uint64_t hlc_wall_ms(void);

#endif
