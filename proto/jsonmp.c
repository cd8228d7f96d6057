/*
 * jsonmp: JSON text to canonical msgpack in one pass over the text. Values
 * are written straight into the caller's buffer. Arrays and maps need their
 * count in front, so a one-byte header is reserved and fixed up at the
 * close (moving the body only for 16 elements or more). Maps also need
 * their keys sorted: each member (packed key, then value) is written in
 * text order while struct jsonmp remembers where it went, and at the close
 * the members are sorted by key, copied after the map in that order and
 * moved back down. Nested maps do the same above their parent's members,
 * so one growable array of members, used as a stack, serves every level
 * and the common op allocates nothing once the buffers have grown.
 *
 * The grammar and the limits follow jansson 2.14 as the import path calls
 * it (JSON_REJECT_DUPLICATES, no JSON_ALLOW_NUL), so that this never
 * accepts what jansson refuses: no U+0000 in strings, lone surrogates
 * refused, an integer literal beyond int64 an error rather than a real, a
 * real beyond double an error, a real too small for double taken as strtod
 * rounds it. tests/fuzz/fuzz_jsonmp.c checks that claim against jansson.
 */
#include "proto/jsonmp.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "proto/error.h"
#include "proto/value.h"

/* A member of a map being converted, by offsets into the output. */
struct member {
	size_t off; /* the packed key, then the value */
	size_t len;
	size_t key; /* the key's bytes, after its str header */
	size_t key_len;
	const uint8_t *k; /* the key's bytes, set once the output stops moving */
};

struct jsonmp {
	struct member *m; /* members of every open map, innermost last */
	size_t n;
	size_t cap;
};

struct conv {
	const uint8_t *p; /* next byte of text */
	const uint8_t *end;
	msgpack_sbuffer *out;
	struct jsonmp *j;
	unsigned max_depth;
};

/* Maps up to this many members are sorted by insertion; larger ones by qsort. */
#define INSERTION_SORT_MAX 24u

#define ONES  UINT64_C(0x0101010101010101)
#define HIGHS UINT64_C(0x8080808080808080)

static int conv_value(struct conv *c, unsigned depth);

struct jsonmp *jsonmp_new(void)
{
	struct jsonmp *j = calloc(1, sizeof(*j));
	if (!j)
		abort();
	return j;
}

void jsonmp_free(struct jsonmp *j)
{
	if (!j)
		return;
	free(j->m);
	free(j);
}

/* Makes room for n more bytes of output and returns where they go. */
static uint8_t *reserve(msgpack_sbuffer *out, size_t n)
{
	if (out->alloc - out->size < n) {
		size_t want = out->alloc ? out->alloc : 256;
		while (want - out->size < n) {
			if (want > SIZE_MAX / 2)
				abort();
			want *= 2;
		}
		char *d = realloc(out->data, want);
		if (!d)
			abort();
		out->data = d;
		out->alloc = want;
	}
	return (uint8_t *)out->data + out->size;
}

static void push_member(struct jsonmp *j, const struct member *m)
{
	if (j->n == j->cap) {
		size_t cap = j->cap ? 2 * j->cap : 64;
		struct member *nm = realloc(j->m, cap * sizeof(*nm));
		if (!nm)
			abort();
		j->m = nm;
		j->cap = cap;
	}
	j->m[j->n++] = *m;
}

/* Writes v big-endian in n bytes; returns n. */
static size_t put_be(uint8_t *d, uint64_t v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		d[i] = (uint8_t)(v >> (8 * (n - 1 - i)));
	return n;
}

/* Header lengths of the shortest str and container formats for n. */
static size_t str_header_len(size_t n)
{
	return n < 32 ? 1 : (n < 256 ? 2 : (n < 65536 ? 3 : 5));
}

static size_t container_header_len(size_t n)
{
	return n < 16 ? 1 : (n < 65536 ? 3 : 5);
}

static void put_str_header(uint8_t *d, size_t hl, size_t n)
{
	switch (hl) {
	case 1:
		d[0] = (uint8_t)(0xa0u | n);
		break;
	case 2:
		d[0] = 0xd9;
		put_be(d + 1, n, 1);
		break;
	case 3:
		d[0] = 0xda;
		put_be(d + 1, n, 2);
		break;
	default:
		d[0] = 0xdb;
		put_be(d + 1, n, 4);
		break;
	}
}

/* fix is 0x80 for a map, 0x90 for an array. */
static void put_container_header(uint8_t *d, size_t hl, uint8_t fix, size_t n)
{
	uint8_t map = fix == 0x80;
	if (hl == 1) {
		d[0] = (uint8_t)(fix | n);
	} else if (hl == 3) {
		d[0] = map ? 0xde : 0xdc;
		put_be(d + 1, n, 2);
	} else {
		d[0] = map ? 0xdf : 0xdd;
		put_be(d + 1, n, 4);
	}
}

static void skip_ws(struct conv *c)
{
	while (c->p < c->end && (*c->p == ' ' || *c->p == '\t' || *c->p == '\n' || *c->p == '\r'))
		c->p++;
}

static int is_digit(uint8_t ch)
{
	return ch >= '0' && ch <= '9';
}

/* Nonzero if any byte of w is zero. */
static uint64_t zero_byte(uint64_t w)
{
	return (w - ONES) & ~w & HIGHS;
}

/* Nonzero if any byte of w ends or escapes a string, is a control byte or is not ASCII. */
static uint64_t special_byte(uint64_t w)
{
	return zero_byte(w ^ (ONES * '"')) | zero_byte(w ^ (ONES * '\\')) |
	       ((w - ONES * 0x20u) & ~w & HIGHS) | (w & HIGHS);
}

/*
 * Finds the closing quote of a string whose body starts at s. Returns
 * NULL when there is none or a control byte comes first; *esc and *high
 * tell whether the body holds escapes and bytes beyond ASCII. An escape is
 * skipped as two bytes here and checked when it is decoded.
 */
static const uint8_t *string_end(const uint8_t *s, const uint8_t *end, int *esc, int *high)
{
	const uint8_t *q = s;
	while (q < end) {
		if (end - q >= 8) {
			uint64_t w;
			memcpy(&w, q, sizeof(w));
			if (!special_byte(w)) {
				q += 8;
				continue;
			}
		}
		uint8_t ch = *q;
		if (ch == '"')
			return q;
		if (ch == '\\') {
			if (end - q < 2)
				return NULL;
			*esc = 1;
			q += 2;
			continue;
		}
		if (ch < 0x20)
			return NULL;
		if (ch >= 0x80)
			*high = 1;
		q++;
	}
	return NULL;
}

/* Four hex digits at s (at least four bytes there), or -1. */
static long hex4(const uint8_t *s)
{
	long v = 0;
	for (int i = 0; i < 4; i++) {
		uint8_t ch = s[i];
		long d;
		if (ch >= '0' && ch <= '9')
			d = ch - '0';
		else if (ch >= 'a' && ch <= 'f')
			d = ch - 'a' + 10;
		else if (ch >= 'A' && ch <= 'F')
			d = ch - 'A' + 10;
		else
			return -1;
		v = v << 4 | d;
	}
	return v;
}

static size_t put_utf8(uint8_t *d, unsigned long cp)
{
	if (cp < 0x80) {
		d[0] = (uint8_t)cp;
		return 1;
	}
	if (cp < 0x800) {
		d[0] = (uint8_t)(0xc0u | cp >> 6);
		d[1] = (uint8_t)(0x80u | (cp & 0x3fu));
		return 2;
	}
	if (cp < 0x10000) {
		d[0] = (uint8_t)(0xe0u | cp >> 12);
		d[1] = (uint8_t)(0x80u | (cp >> 6 & 0x3fu));
		d[2] = (uint8_t)(0x80u | (cp & 0x3fu));
		return 3;
	}
	d[0] = (uint8_t)(0xf0u | cp >> 18);
	d[1] = (uint8_t)(0x80u | (cp >> 12 & 0x3fu));
	d[2] = (uint8_t)(0x80u | (cp >> 6 & 0x3fu));
	d[3] = (uint8_t)(0x80u | (cp & 0x3fu));
	return 4;
}

/*
 * Decodes the escaped body s..e into d, which has room for e - s bytes
 * (no escape decodes longer than it is written). The body's other bytes
 * were checked by string_end and value_valid_utf8.
 */
static int unescape(const uint8_t *s, const uint8_t *e, uint8_t *d, size_t *len)
{
	uint8_t *o = d;
	while (s < e) {
		if (*s != '\\') {
			*o++ = *s++;
			continue;
		}
		s++; /* string_end saw a byte after every backslash */
		uint8_t ch = *s++;
		switch (ch) {
		case '"':
		case '\\':
		case '/':
			*o++ = ch;
			break;
		case 'b':
			*o++ = '\b';
			break;
		case 'f':
			*o++ = '\f';
			break;
		case 'n':
			*o++ = '\n';
			break;
		case 'r':
			*o++ = '\r';
			break;
		case 't':
			*o++ = '\t';
			break;
		case 'u': {
			if (e - s < 4)
				return LOKET_E_MALFORMED;
			long cp = hex4(s);
			if (cp < 0)
				return LOKET_E_MALFORMED;
			s += 4;
			if (cp >= 0xd800 && cp <= 0xdbff) {
				if (e - s < 6 || s[0] != '\\' || s[1] != 'u')
					return LOKET_E_MALFORMED;
				long lo = hex4(s + 2);
				if (lo < 0xdc00 || lo > 0xdfff)
					return LOKET_E_MALFORMED;
				cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
				s += 6;
			} else if (cp >= 0xdc00 && cp <= 0xdfff) {
				return LOKET_E_MALFORMED;
			}
			/* jansson refuses U+0000 unless asked to allow it. */
			if (cp == 0)
				return LOKET_E_MALFORMED;
			o += put_utf8(o, (unsigned long)cp);
			break;
		}
		default:
			return LOKET_E_MALFORMED;
		}
	}
	*len = (size_t)(o - d);
	return 0;
}

/*
 * Converts the string at c->p (its opening quote) into a str. *key gets
 * the offset of its bytes in the output, *key_len their length.
 */
static int conv_string(struct conv *c, size_t *key, size_t *key_len)
{
	const uint8_t *body = c->p + 1;
	int esc = 0, high = 0;
	const uint8_t *q = string_end(body, c->end, &esc, &high);
	if (!q)
		return LOKET_E_MALFORMED;
	size_t raw = (size_t)(q - body);
	if (raw > UINT32_MAX)
		return LOKET_E_TOO_BIG;
	if (high && !value_valid_utf8(body, raw))
		return LOKET_E_MALFORMED;
	size_t hl = str_header_len(raw);
	uint8_t *d = reserve(c->out, hl + raw);
	size_t n = raw;
	if (!esc) {
		memcpy(d + hl, body, raw);
	} else {
		int rc = unescape(body, q, d + hl, &n);
		if (rc)
			return rc;
		size_t shorter = str_header_len(n);
		if (shorter < hl) {
			memmove(d + shorter, d + hl, n);
			hl = shorter;
		}
	}
	put_str_header(d, hl, n);
	*key = c->out->size + hl;
	*key_len = n;
	c->out->size += hl + n;
	c->p = q + 1;
	return 0;
}

static void pack_int(struct conv *c, int64_t v)
{
	uint8_t *d = reserve(c->out, 9);
	size_t n;
	if (v >= 0) {
		uint64_t u = (uint64_t)v;
		if (u < 0x80) {
			d[0] = (uint8_t)u;
			n = 1;
		} else if (u < 0x100) {
			d[0] = 0xcc;
			n = 1 + put_be(d + 1, u, 1);
		} else if (u < 0x10000) {
			d[0] = 0xcd;
			n = 1 + put_be(d + 1, u, 2);
		} else if (u < 0x100000000) {
			d[0] = 0xce;
			n = 1 + put_be(d + 1, u, 4);
		} else {
			d[0] = 0xcf;
			n = 1 + put_be(d + 1, u, 8);
		}
	} else if (v >= -32) {
		d[0] = (uint8_t)(int8_t)v;
		n = 1;
	} else if (v >= -128) {
		d[0] = 0xd0;
		n = 1 + put_be(d + 1, (uint64_t)v, 1);
	} else if (v >= -32768) {
		d[0] = 0xd1;
		n = 1 + put_be(d + 1, (uint64_t)v, 2);
	} else if (v >= INT32_MIN) {
		d[0] = 0xd2;
		n = 1 + put_be(d + 1, (uint64_t)v, 4);
	} else {
		d[0] = 0xd3;
		n = 1 + put_be(d + 1, (uint64_t)v, 8);
	}
	c->out->size += n;
}

/*
 * -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)? : without a fraction or
 * exponent an integer, which must fit int64 (jansson's strtoll), else a
 * float64.
 */
static int conv_number(struct conv *c)
{
	const uint8_t *s = c->p, *q = s, *end = c->end;
	int neg = 0, real = 0;

	if (*q == '-') {
		neg = 1;
		q++;
	}
	if (q == end || !is_digit(*q))
		return LOKET_E_MALFORMED;
	const uint8_t *digits = q;
	if (*q == '0') {
		q++;
		if (q < end && is_digit(*q))
			return LOKET_E_MALFORMED;
	} else {
		while (q < end && is_digit(*q))
			q++;
	}
	size_t ndigits = (size_t)(q - digits);
	if (q < end && *q == '.') {
		real = 1;
		q++;
		if (q == end || !is_digit(*q))
			return LOKET_E_MALFORMED;
		while (q < end && is_digit(*q))
			q++;
	}
	if (q < end && (*q == 'e' || *q == 'E')) {
		real = 1;
		q++;
		if (q < end && (*q == '+' || *q == '-'))
			q++;
		if (q == end || !is_digit(*q))
			return LOKET_E_MALFORMED;
		while (q < end && is_digit(*q))
			q++;
	}
	c->p = q;

	if (!real) {
		/* 19 digits always fit in uint64; int64 never needs more. */
		if (ndigits > 19)
			return LOKET_E_TOO_BIG;
		uint64_t u = 0;
		for (size_t i = 0; i < ndigits; i++)
			u = u * 10 + (uint64_t)(digits[i] - '0');
		if (neg) {
			if (u > (uint64_t)INT64_MAX + 1)
				return LOKET_E_TOO_BIG;
			pack_int(c, u == (uint64_t)INT64_MAX + 1 ? INT64_MIN : -(int64_t)u);
		} else {
			if (u > INT64_MAX)
				return LOKET_E_TOO_BIG;
			pack_int(c, (int64_t)u);
		}
		return 0;
	}

	/*
	 * strtod needs a terminated copy. It reads the decimal point of the
	 * locale; the CLI never sets LC_NUMERIC, so that is '.' as in JSON.
	 * jansson converts the same way (with the same strtod).
	 */
	size_t n = (size_t)(q - s);
	char buf[JSONMP_NUMBER_MAX + 1];
	if (n > JSONMP_NUMBER_MAX)
		return LOKET_E_TOO_BIG;
	memcpy(buf, s, n);
	buf[n] = '\0';
	char *stop;
	double d = strtod(buf, &stop);
	if (stop != buf + n)
		return LOKET_E_MALFORMED;
	if (!isfinite(d))
		return LOKET_E_TOO_BIG;
	uint64_t bits;
	memcpy(&bits, &d, sizeof(bits));
	uint8_t *o = reserve(c->out, 9);
	o[0] = 0xcb;
	put_be(o + 1, bits, 8);
	c->out->size += 9;
	return 0;
}

static int conv_literal(struct conv *c, const char *word, size_t n, uint8_t byte)
{
	if ((size_t)(c->end - c->p) < n || memcmp(c->p, word, n) != 0)
		return LOKET_E_MALFORMED;
	c->p += n;
	*reserve(c->out, 1) = byte;
	c->out->size++;
	return 0;
}

/* Bytewise, a prefix before the longer key: value.c's order. */
static int member_cmp(const struct member *a, const struct member *b)
{
	size_t n = a->key_len < b->key_len ? a->key_len : b->key_len;
	int r = memcmp(a->k, b->k, n);
	if (r != 0)
		return r;
	return a->key_len < b->key_len ? -1 : (a->key_len > b->key_len ? 1 : 0);
}

static int member_qsort_cmp(const void *a, const void *b)
{
	return member_cmp(a, b);
}

static void sort_members(struct member *m, size_t n)
{
	if (n > INSERTION_SORT_MAX) {
		qsort(m, n, sizeof(*m), member_qsort_cmp);
		return;
	}
	for (size_t i = 1; i < n; i++) {
		struct member x = m[i];
		size_t k = i;
		while (k > 0 && member_cmp(&m[k - 1], &x) > 0) {
			m[k] = m[k - 1];
			k--;
		}
		m[k] = x;
	}
}

/*
 * The members of the map whose header byte is at start are the members
 * from first on: sorts them, refuses a duplicate key, and rewrites the
 * map as header and members in key order.
 */
static int finish_map(struct conv *c, size_t start, size_t first)
{
	msgpack_sbuffer *out = c->out;
	struct member *m = c->j->m + first;
	size_t n = c->j->n - first;
	size_t body = out->size - (start + 1);
	size_t hl = container_header_len(n);
	int sorted = 1;

	if (n > UINT32_MAX)
		return LOKET_E_TOO_BIG;
	/* Room for the sorted copy first: the output must not move while keys point into it. */
	reserve(out, hl + body);
	const uint8_t *base = (const uint8_t *)out->data;
	for (size_t i = 0; i < n; i++)
		m[i].k = base + m[i].key;
	for (size_t i = 1; i < n; i++) {
		int r = member_cmp(&m[i - 1], &m[i]);
		if (r == 0)
			return LOKET_E_DUPLICATE_KEY;
		if (r > 0) {
			sorted = 0;
			break;
		}
	}
	if (!sorted) {
		sort_members(m, n);
		for (size_t i = 1; i < n; i++)
			if (member_cmp(&m[i - 1], &m[i]) == 0)
				return LOKET_E_DUPLICATE_KEY;
	}
	uint8_t *data = (uint8_t *)out->data;
	if (sorted && hl == 1) {
		data[start] = (uint8_t)(0x80u | n);
		return 0;
	}
	uint8_t *tail = data + out->size;
	uint8_t *d = tail + hl;
	put_container_header(tail, hl, 0x80, n);
	for (size_t i = 0; i < n; i++) {
		memcpy(d, data + m[i].off, m[i].len);
		d += m[i].len;
	}
	memmove(data + start, tail, hl + body);
	out->size = start + hl + body;
	return 0;
}

/*
 * Steps into a container at c->p ('{' or '['): leaves a byte for its
 * header at *start, written once the count is known. Returns 1 when the
 * container is empty (closed, its header the fix form empty), 0 to go on
 * reading members, or LOKET_E_TOO_DEEP.
 */
static int open_container(struct conv *c, unsigned depth, char close, uint8_t empty, size_t *start)
{
	if (depth + 1 > c->max_depth)
		return LOKET_E_TOO_DEEP;
	*start = c->out->size;
	reserve(c->out, 1);
	c->out->size++;
	c->p++;
	skip_ws(c);
	if (c->p < c->end && *c->p == close) {
		c->p++;
		c->out->data[*start] = (char)empty;
		return 1;
	}
	return 0;
}

static int conv_object(struct conv *c, unsigned depth)
{
	struct jsonmp *j = c->j;
	size_t start, first = j->n;
	int rc = open_container(c, depth, '}', 0x80, &start);

	if (rc != 0)
		return rc < 0 ? rc : 0;
	for (;;) {
		struct member m;
		if (c->p == c->end || *c->p != '"') {
			rc = LOKET_E_MALFORMED;
			goto cleanup;
		}
		m.off = c->out->size;
		if ((rc = conv_string(c, &m.key, &m.key_len)))
			goto cleanup;
		skip_ws(c);
		if (c->p == c->end || *c->p != ':') {
			rc = LOKET_E_MALFORMED;
			goto cleanup;
		}
		c->p++;
		if ((rc = conv_value(c, depth + 1)))
			goto cleanup;
		m.len = c->out->size - m.off;
		m.k = NULL;
		push_member(j, &m);
		skip_ws(c);
		if (c->p < c->end && *c->p == ',') {
			c->p++;
			skip_ws(c);
			continue;
		}
		if (c->p < c->end && *c->p == '}') {
			c->p++;
			break;
		}
		rc = LOKET_E_MALFORMED;
		goto cleanup;
	}
	rc = finish_map(c, start, first);
cleanup:
	j->n = first;
	return rc;
}

static int conv_array(struct conv *c, unsigned depth)
{
	size_t start, n = 0;
	int rc = open_container(c, depth, ']', 0x90, &start);

	if (rc != 0)
		return rc < 0 ? rc : 0;
	for (;;) {
		if ((rc = conv_value(c, depth + 1)))
			return rc;
		n++;
		skip_ws(c);
		if (c->p < c->end && *c->p == ',') {
			c->p++;
			continue;
		}
		if (c->p < c->end && *c->p == ']') {
			c->p++;
			break;
		}
		return LOKET_E_MALFORMED;
	}
	if (n > UINT32_MAX)
		return LOKET_E_TOO_BIG;
	size_t hl = container_header_len(n);
	if (hl > 1) {
		size_t body = c->out->size - (start + 1);
		reserve(c->out, hl - 1);
		uint8_t *data = (uint8_t *)c->out->data;
		memmove(data + start + hl, data + start + 1, body);
		c->out->size += hl - 1;
	}
	put_container_header((uint8_t *)c->out->data + start, hl, 0x90, n);
	return 0;
}

static int conv_value(struct conv *c, unsigned depth)
{
	size_t key, key_len;

	skip_ws(c);
	if (c->p == c->end)
		return LOKET_E_MALFORMED;
	switch (*c->p) {
	case '{':
		return conv_object(c, depth);
	case '[':
		return conv_array(c, depth);
	case '"':
		return conv_string(c, &key, &key_len);
	case 't':
		return conv_literal(c, "true", 4, 0xc3);
	case 'f':
		return conv_literal(c, "false", 5, 0xc2);
	case 'n':
		return conv_literal(c, "null", 4, 0xc0);
	default:
		if (*c->p == '-' || is_digit(*c->p))
			return conv_number(c);
		return LOKET_E_MALFORMED;
	}
}

int jsonmp_pack(struct jsonmp *j, const uint8_t *text, size_t len, unsigned max_depth,
                msgpack_sbuffer *out)
{
	static const uint8_t empty[1];
	if (!text) {
		text = empty;
		len = 0;
	}
	struct conv c = {
	    .p = text,
	    .end = text + len,
	    .out = out,
	    .j = j,
	    .max_depth = max_depth < JSONMP_DEPTH_CAP ? max_depth : JSONMP_DEPTH_CAP,
	};
	size_t start = out->size;

	j->n = 0;
	int rc = conv_value(&c, 0);
	if (rc == 0) {
		skip_ws(&c);
		if (c.p != c.end)
			rc = LOKET_E_TRAILING;
	}
	if (rc)
		out->size = start;
	return rc;
}
