/*
 * mpread: a bounded cursor over msgpack bytes for the readers that walk a
 * message in place (put requests, stored fields) instead of unpacking it.
 * Every header and length is checked against the end before it is used,
 * and a container's count may not exceed the bytes left, so no count read
 * here can make a caller allocate or loop for more than the input holds.
 */
#ifndef LOKET_MPREAD_H
#define LOKET_MPREAD_H

#include <stddef.h>
#include <stdint.h>

struct mpread {
	const uint8_t *p;
	const uint8_t *end;
};

/* Big-endian integers as msgpack stores them: n bytes (at most 8) at p. */
static inline uint64_t mpread_be(const uint8_t *p, size_t n)
{
	uint64_t v = 0;
	for (size_t i = 0; i < n; i++)
		v = v << 8 | p[i];
	return v;
}

static inline uint16_t mpread_be16(const uint8_t *p)
{
	return (uint16_t)mpread_be(p, 2);
}

static inline uint32_t mpread_be32(const uint8_t *p)
{
	return (uint32_t)mpread_be(p, 4);
}

static inline uint64_t mpread_be64(const uint8_t *p)
{
	return mpread_be(p, 8);
}

/* A cursor over len bytes at p (p may be NULL when len is 0). */
struct mpread mpread_init(const uint8_t *p, size_t len);

/*
 * Reads a str header and steps over its bytes, which *s and *len give.
 * Returns 0, LOKET_E_TRUNCATED, or LOKET_E_MALFORMED when the value is not
 * a str (the cursor then has not moved).
 */
int mpread_str(struct mpread *r, const uint8_t **s, size_t *len);

/*
 * Reads a map or an array header (fix, 16 or 32 bits) into *count. Returns
 * 0, LOKET_E_TRUNCATED (also for a count beyond the bytes left), or
 * LOKET_E_MALFORMED when the value is of another type (the cursor then has
 * not moved).
 */
int mpread_map(struct mpread *r, size_t *count);
int mpread_array(struct mpread *r, size_t *count);

#endif
