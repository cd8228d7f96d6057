/*
 * The msgpack cursor (see mpread.h): headers of strings, maps and arrays.
 */
#include "proto/mpread.h"

#include "proto/error.h"

struct mpread mpread_init(const uint8_t *p, size_t len)
{
	struct mpread r = {.p = p, .end = p ? p + len : p};
	return r;
}

static size_t left(const struct mpread *r)
{
	return (size_t)(r->end - r->p);
}

/*
 * The length a header gives: n when it is held in the type byte (width
 * 0), else the width bytes after it. Each unit of it (a byte of a str,
 * an element of a container) takes at least one byte of what follows the
 * header, so a length beyond that is LOKET_E_TRUNCATED.
 */
static int header_length(const struct mpread *r, size_t width, size_t *n)
{
	if (left(r) < 1 + width)
		return LOKET_E_TRUNCATED;
	if (width)
		*n = (size_t)mpread_be(r->p + 1, width);
	if (left(r) - 1 - width < *n)
		return LOKET_E_TRUNCATED;
	return 0;
}

int mpread_str(struct mpread *r, const uint8_t **s, size_t *len)
{
	if (left(r) < 1)
		return LOKET_E_TRUNCATED;
	uint8_t t = r->p[0];
	size_t width, n = t & 0x1fu;
	if ((t & 0xe0u) == 0xa0u)
		width = 0;
	else if (t == 0xd9 || t == 0xda || t == 0xdb)
		width = t == 0xd9 ? 1 : t == 0xda ? 2 : 4;
	else
		return LOKET_E_MALFORMED;
	int rc = header_length(r, width, &n);
	if (rc)
		return rc;
	*s = r->p + 1 + width;
	*len = n;
	r->p += 1 + width + n;
	return 0;
}

/* A container header of the family fix_lo (fixmap 0x80, fixarray 0x90), t16 or t16 + 1. */
static int read_count(struct mpread *r, uint8_t fix_lo, uint8_t t16, size_t *count)
{
	if (left(r) < 1)
		return LOKET_E_TRUNCATED;
	uint8_t t = r->p[0];
	size_t width, n = t & 0x0fu;
	if (t >= fix_lo && t <= fix_lo + 15)
		width = 0;
	else if (t == t16 || t == t16 + 1)
		width = t == t16 ? 2 : 4;
	else
		return LOKET_E_MALFORMED;
	int rc = header_length(r, width, &n);
	if (rc)
		return rc;
	*count = n;
	r->p += 1 + width;
	return 0;
}

int mpread_map(struct mpread *r, size_t *count)
{
	return read_count(r, 0x80, 0xde, count);
}

int mpread_array(struct mpread *r, size_t *count)
{
	return read_count(r, 0x90, 0xdc, count);
}
