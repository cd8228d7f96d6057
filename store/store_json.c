/*
 * The JSON text of entity fields, written straight from the ops' msgpack.
 * This text is hashed into the state digest, so it must be one exact
 * function of the changesets on every node: keys sorted bytewise (the
 * order canonical msgpack maps already have), no whitespace, UTF-8 kept,
 * only '"', '\\' and control characters escaped, integers in decimal,
 * floats as "%.17g" with ".0" added when that looks like an integer.
 * Writing it here rather than through jansson keeps the import path free
 * of per-field allocations (jansson's sorted dump was a fifth of the cost).
 * A put merges top-level keys into the stored object in one sorted pass.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proto/error.h"
#include "proto/limits.h"
#include "proto/mpread.h"
#include "store/store_int.h"

#define JSON_MAX_DEPTH (LOKET_MAX_DEPTH + 2)

void store_buf_put(struct store_buf *b, const void *p, size_t len)
{
	if (b->n + len + 1 > b->cap) {
		size_t cap = b->cap ? b->cap : 1024;

		while (cap < b->n + len + 1)
			cap *= 2;
		b->p = realloc(b->p, cap);
		if (!b->p)
			abort();
		b->cap = cap;
	}
	if (len)
		memcpy(b->p + b->n, p, len);
	b->n += len;
	b->p[b->n] = '\0';
}

static void putc1(struct store_buf *b, char c)
{
	if (b->n + 2 > b->cap)
		store_buf_put(b, &c, 1);
	else
		b->p[b->n++] = c;
}

/* Bytes that JSON strings must escape: control characters, '"' and '\\'. */
static const uint8_t needs_escape[256] = {
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,         1,
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, ['"'] = 1, ['\\'] = 1,
};

/*
 * Whether any of the 8 bytes in w needs escaping: one below 0x20, a '"' or
 * a '\\'. The classic test for a zero byte, (x - 0x01..) & ~x & 0x80..,
 * is exact about whether one exists, and bytes of 0x80 and up (UTF-8) are
 * masked out by ~w.
 */
static int word_needs_escape(uint64_t w)
{
	const uint64_t ones = 0x0101010101010101u, highs = 0x8080808080808080u;
	uint64_t quote = w ^ (ones * '"'), backslash = w ^ (ones * '\\');

	return ((((w - ones * 0x20) & ~w) | ((quote - ones) & ~quote) |
	         ((backslash - ones) & ~backslash)) &
	        highs) != 0;
}

static void put_string(struct store_buf *b, const uint8_t *s, size_t len)
{
	static const char hexd[] = "0123456789abcdef";
	size_t run = 0, i = 0;

	putc1(b, '"');
	for (; i < len; i++) {
		uint8_t c = s[i];
		char esc[6];
		size_t k = 2;

		/* Text is mostly plain: skip it a word at a time. */
		if (i % 8 == 0 && len - i >= 8) {
			uint64_t w;
			memcpy(&w, s + i, 8);
			if (!word_needs_escape(w)) {
				i += 7;
				continue;
			}
		}
		if (!needs_escape[c])
			continue;
		store_buf_put(b, s + run, i - run);
		run = i + 1;
		esc[0] = '\\';
		switch (c) {
		case '"':
			esc[1] = '"';
			break;
		case '\\':
			esc[1] = '\\';
			break;
		case '\b':
			esc[1] = 'b';
			break;
		case '\f':
			esc[1] = 'f';
			break;
		case '\n':
			esc[1] = 'n';
			break;
		case '\r':
			esc[1] = 'r';
			break;
		case '\t':
			esc[1] = 't';
			break;
		default:
			esc[1] = 'u';
			esc[2] = '0';
			esc[3] = '0';
			esc[4] = hexd[c >> 4];
			esc[5] = hexd[c & 15];
			k = 6;
		}
		store_buf_put(b, esc, k);
	}
	store_buf_put(b, s + run, len - run);
	putc1(b, '"');
}

static void put_u64(struct store_buf *b, uint64_t v, int neg)
{
	char d[24];
	size_t i = sizeof(d);

	do {
		d[--i] = (char)('0' + v % 10);
		v /= 10;
	} while (v);
	if (neg)
		d[--i] = '-';
	store_buf_put(b, d + i, sizeof(d) - i);
}

static void put_i64(struct store_buf *b, int64_t v)
{
	if (v < 0)
		put_u64(b, (uint64_t)0 - (uint64_t)v, 1);
	else
		put_u64(b, (uint64_t)v, 0);
}

static void put_double(struct store_buf *b, double d)
{
	char s[40];
	int n = snprintf(s, sizeof(s), "%.17g", d);
	int real = 0;

	if (n <= 0 || (size_t)n >= sizeof(s)) {
		store_buf_put(b, "null", 4);
		return;
	}
	for (int i = 0; i < n; i++) {
		if (s[i] == ',')
			s[i] = '.'; /* a locale with a decimal comma */
		if (s[i] == '.' || s[i] == 'e' || s[i] == 'n' || s[i] == 'i')
			real = 1;
	}
	store_buf_put(b, s, (size_t)n);
	if (!real)
		store_buf_put(b, ".0", 2);
}

static int need(const struct mpread *m, size_t n)
{
	return (size_t)(m->end - m->p) >= n ? 0 : LOKET_E_TRUNCATED;
}

/* Writes one msgpack value as JSON and moves past it. */
static int mp_json(struct store_buf *b, struct mpread *m, unsigned depth)
{
	static const char hexd[] = "0123456789abcdef";
	const uint8_t *s;
	size_t len, count;
	uint8_t t;
	int rc;

	if (depth > JSON_MAX_DEPTH)
		return LOKET_E_TOO_DEEP;
	if (need(m, 1))
		return LOKET_E_TRUNCATED;
	t = *m->p;
	if (t <= 0x7f) {
		m->p++;
		put_u64(b, t, 0);
		return 0;
	}
	if (t >= 0xe0) {
		m->p++;
		put_i64(b, (int8_t)t);
		return 0;
	}
	if ((t >= 0xa0 && t <= 0xbf) || t == 0xd9 || t == 0xda || t == 0xdb) {
		if ((rc = mpread_str(m, &s, &len)) < 0)
			return rc;
		put_string(b, s, len);
		return 0;
	}
	if ((t >= 0x90 && t <= 0x9f) || t == 0xdc || t == 0xdd) {
		if ((rc = mpread_array(m, &count)) < 0)
			return rc;
		putc1(b, '[');
		for (size_t i = 0; i < count; i++) {
			if (i)
				putc1(b, ',');
			if ((rc = mp_json(b, m, depth + 1)) < 0)
				return rc;
		}
		putc1(b, ']');
		return 0;
	}
	if ((t >= 0x80 && t <= 0x8f) || t == 0xde || t == 0xdf) {
		if ((rc = mpread_map(m, &count)) < 0)
			return rc;
		putc1(b, '{');
		for (size_t i = 0; i < count; i++) {
			if (i)
				putc1(b, ',');
			if ((rc = mpread_str(m, &s, &len)) < 0)
				return rc;
			put_string(b, s, len);
			putc1(b, ':');
			if ((rc = mp_json(b, m, depth + 1)) < 0)
				return rc;
		}
		putc1(b, '}');
		return 0;
	}
	switch (t) {
	case 0xc0:
		m->p++;
		store_buf_put(b, "null", 4);
		return 0;
	case 0xc2:
		m->p++;
		store_buf_put(b, "false", 5);
		return 0;
	case 0xc3:
		m->p++;
		store_buf_put(b, "true", 4);
		return 0;
	case 0xcc:
	case 0xcd:
	case 0xce:
	case 0xcf:
		len = (size_t)1 << (t - 0xcc);
		if (need(m, 1 + len))
			return LOKET_E_TRUNCATED;
		put_u64(b, mpread_be(m->p + 1, len), 0);
		m->p += 1 + len;
		return 0;
	case 0xd0:
	case 0xd1:
	case 0xd2:
	case 0xd3: {
		uint64_t u;
		int64_t v;

		len = (size_t)1 << (t - 0xd0);
		if (need(m, 1 + len))
			return LOKET_E_TRUNCATED;
		u = mpread_be(m->p + 1, len);
		if (len < 8 && (u >> (8 * len - 1)) & 1)
			u |= ~(uint64_t)0 << (8 * len); /* sign-extend */
		memcpy(&v, &u, sizeof(v));
		put_i64(b, v);
		m->p += 1 + len;
		return 0;
	}
	case 0xca: {
		uint32_t u;
		float f;

		if (need(m, 5))
			return LOKET_E_TRUNCATED;
		u = (uint32_t)mpread_be(m->p + 1, 4);
		memcpy(&f, &u, sizeof(f));
		put_double(b, (double)f);
		m->p += 5;
		return 0;
	}
	case 0xcb: {
		uint64_t u;
		double d;

		if (need(m, 9))
			return LOKET_E_TRUNCATED;
		u = mpread_be(m->p + 1, 8);
		memcpy(&d, &u, sizeof(d));
		put_double(b, d);
		m->p += 9;
		return 0;
	}
	case 0xc4:
	case 0xc5:
	case 0xc6: {
		/* bin is not canonical; shown as hex like value_to_json does. */
		size_t w = (size_t)1 << (t - 0xc4);

		if (need(m, 1 + w))
			return LOKET_E_TRUNCATED;
		len = (size_t)mpread_be(m->p + 1, w);
		m->p += 1 + w;
		if (need(m, len))
			return LOKET_E_TRUNCATED;
		putc1(b, '"');
		for (size_t i = 0; i < len; i++) {
			putc1(b, hexd[m->p[i] >> 4]);
			putc1(b, hexd[m->p[i] & 15]);
		}
		putc1(b, '"');
		m->p += len;
		return 0;
	}
	default:
		return LOKET_E_MALFORMED;
	}
}

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

static long hex4(const char *p, const char *end)
{
	long v = 0;

	if (end - p < 4)
		return -1;
	for (int i = 0; i < 4; i++) {
		int h = hexval(p[i]);

		if (h < 0)
			return -1;
		v = v * 16 + h;
	}
	return v;
}

static void text_put_cp(struct store_buf *b, unsigned long cp)
{
	char u[4];
	size_t k;

	if (cp < 0x20) {
		u[0] = ' ';
		k = 1;
	} else if (cp < 0x80) {
		u[0] = (char)cp;
		k = 1;
	} else if (cp < 0x800) {
		u[0] = (char)(0xc0 | (cp >> 6));
		u[1] = (char)(0x80 | (cp & 0x3f));
		k = 2;
	} else if (cp < 0x10000) {
		u[0] = (char)(0xe0 | (cp >> 12));
		u[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
		u[2] = (char)(0x80 | (cp & 0x3f));
		k = 3;
	} else {
		u[0] = (char)(0xf0 | (cp >> 18));
		u[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
		u[2] = (char)(0x80 | ((cp >> 6) & 0x3f));
		u[3] = (char)(0x80 | (cp & 0x3f));
		k = 4;
	}
	store_buf_put(b, u, k);
}

/*
 * The text indexed for an entity: every string value of its fields (keys
 * left out), one per line. It is read off the serialized JSON, whose keys
 * are sorted, so the text is the same on every node; in that compact form
 * a string is a key exactly when a ':' follows it.
 */
void store_fts_text(struct store_buf *b, const char *json, size_t len)
{
	const char *p = json, *end = json + len;

	b->n = 0;
	while (p < end) {
		size_t start = b->n;

		if (*p != '"') {
			p++;
			continue;
		}
		p++;
		while (p < end && *p != '"') {
			const char *run = p;

			while (p < end && *p != '"' && *p != '\\')
				p++;
			store_buf_put(b, run, (size_t)(p - run));
			if (p < end && *p == '\\') {
				if (end - p < 2)
					break;
				char c = p[1];

				p += 2;
				if (c == 'u') {
					long cp = hex4(p, end);

					if (cp < 0)
						break;
					p += 4;
					if (cp >= 0xd800 && cp < 0xdc00 && end - p >= 6 &&
					    p[0] == '\\' && p[1] == 'u') {
						long lo = hex4(p + 2, end);

						if (lo >= 0xdc00 && lo < 0xe000) {
							cp = 0x10000 + ((cp - 0xd800) << 10) +
							     (lo - 0xdc00);
							p += 6;
						}
					}
					text_put_cp(b, (unsigned long)cp);
				} else if (c == '"' || c == '\\' || c == '/') {
					putc1(b, c);
				} else {
					putc1(b, ' ');
				}
			}
		}
		if (p < end)
			p++; /* closing quote */
		if (p < end && *p == ':')
			b->n = start; /* a key: drop it */
		else
			putc1(b, '\n');
	}
	store_buf_put(b, "", 0);
	b->p[b->n] = '\0';
}

/* Iterates the members of a JSON object this module wrote. */
struct old_iter {
	const char *p;
	const char *end;
	const char *key_raw; /* the key with its quotes, as written */
	size_t key_raw_len;
	uint8_t key[4 * LOKET_MAX_KEY_LEN + 8]; /* unescaped */
	size_t key_len;
	const char *val;
	size_t val_len;
};

/* Moves past a JSON string starting at p (on its quote). */
static const char *skip_string(const char *p, const char *end)
{
	for (p++; p < end; p++) {
		if (*p == '\\')
			p++;
		else if (*p == '"')
			return p + 1;
	}
	return NULL;
}

static const char *skip_value(const char *p, const char *end)
{
	int depth = 0;

	while (p < end) {
		char c = *p;

		if (c == '"') {
			if (!(p = skip_string(p, end)))
				return NULL;
			if (depth == 0)
				return p;
			continue;
		}
		if (c == '{' || c == '[') {
			depth++;
		} else if (c == '}' || c == ']') {
			if (depth == 0)
				return p;
			if (--depth == 0)
				return p + 1;
		} else if (c == ',' && depth == 0) {
			return p;
		}
		p++;
	}
	return depth == 0 ? p : NULL;
}

static int unescape_key(struct old_iter *it)
{
	const char *p = it->key_raw + 1, *end = it->key_raw + it->key_raw_len - 1;
	size_t n = 0;

	while (p < end) {
		unsigned long cp;

		if (n + 4 > sizeof(it->key))
			return LOKET_E_MALFORMED;
		if (*p != '\\') {
			it->key[n++] = (uint8_t)*p++;
			continue;
		}
		if (end - p < 2)
			return LOKET_E_MALFORMED;
		switch (p[1]) {
		case 'b':
			cp = '\b';
			break;
		case 'f':
			cp = '\f';
			break;
		case 'n':
			cp = '\n';
			break;
		case 'r':
			cp = '\r';
			break;
		case 't':
			cp = '\t';
			break;
		case 'u': {
			long u = hex4(p + 2, end);

			if (u < 0)
				return LOKET_E_MALFORMED;
			cp = (unsigned long)u;
			p += 4;
			break;
		}
		default:
			cp = (unsigned char)p[1];
		}
		p += 2;
		if (cp < 0x80) {
			it->key[n++] = (uint8_t)cp;
		} else if (cp < 0x800) {
			it->key[n++] = (uint8_t)(0xc0 | (cp >> 6));
			it->key[n++] = (uint8_t)(0x80 | (cp & 0x3f));
		} else {
			it->key[n++] = (uint8_t)(0xe0 | (cp >> 12));
			it->key[n++] = (uint8_t)(0x80 | ((cp >> 6) & 0x3f));
			it->key[n++] = (uint8_t)(0x80 | (cp & 0x3f));
		}
	}
	it->key_len = n;
	return 0;
}

/* Reads the next member; 1 if there was one, 0 at the end, <0 if malformed. */
static int old_next(struct old_iter *it)
{
	const char *k, *v;

	if (!it->p || it->p >= it->end)
		return 0;
	if (*it->p == ',')
		it->p++;
	if (it->p < it->end && *it->p == '}')
		return 0;
	if (it->p >= it->end || *it->p != '"')
		return LOKET_E_MALFORMED;
	k = it->p;
	if (!(it->p = skip_string(k, it->end)) || it->p >= it->end || *it->p != ':')
		return LOKET_E_MALFORMED;
	it->key_raw = k;
	it->key_raw_len = (size_t)(it->p - k);
	v = ++it->p;
	if (!(it->p = skip_value(v, it->end)) || it->p == v)
		return LOKET_E_MALFORMED;
	it->val = v;
	it->val_len = (size_t)(it->p - v);
	if (unescape_key(it) < 0)
		return LOKET_E_MALFORMED;
	return 1;
}

static int key_cmp(const uint8_t *a, size_t alen, const uint8_t *b, size_t blen)
{
	int c = memcmp(a, b, alen < blen ? alen : blen);

	if (c)
		return c;
	return (alen > blen) - (alen < blen);
}

int store_json_merge(struct store_buf *out, const char *old, size_t old_len, const uint8_t *fields,
                     size_t fields_len)
{
	struct mpread m = mpread_init(fields, fields_len);
	struct old_iter it;
	size_t count, left, written = 0;
	const uint8_t *nk = NULL;
	size_t nk_len = 0;
	int rc, have_old, have_new;

	out->n = 0;
	memset(&it, 0, sizeof(it));
	if (old && old_len >= 2 && old[0] == '{' && old[old_len - 1] == '}') {
		it.p = old + 1;
		it.end = old + old_len;
	} else if (old && !(old_len == 0)) {
		return LOKET_E_MALFORMED;
	}
	if (need(&m, 1) || !((*m.p >= 0x80 && *m.p <= 0x8f) || *m.p == 0xde || *m.p == 0xdf))
		return LOKET_E_MALFORMED;
	if ((rc = mpread_map(&m, &count)) < 0)
		return rc;
	left = count;
	putc1(out, '{');
	if ((have_old = old_next(&it)) < 0)
		return have_old;
	have_new = left > 0;
	if (have_new) {
		if ((rc = mpread_str(&m, &nk, &nk_len)) < 0)
			return rc;
		left--;
	}
	while (have_old || have_new) {
		int c = !have_new ? -1 : !have_old ? 1 : key_cmp(it.key, it.key_len, nk, nk_len);

		if (c < 0) {
			if (written++)
				putc1(out, ',');
			store_buf_put(out, it.key_raw, it.key_raw_len);
			putc1(out, ':');
			store_buf_put(out, it.val, it.val_len);
		} else if (need(&m, 1)) {
			return LOKET_E_TRUNCATED;
		} else if (*m.p == 0xc0) {
			m.p++; /* nil: the key goes */
		} else {
			if (written++)
				putc1(out, ',');
			put_string(out, nk, nk_len);
			putc1(out, ':');
			if ((rc = mp_json(out, &m, 1)) < 0)
				return rc;
		}
		if (c <= 0 && (have_old = old_next(&it)) < 0)
			return have_old;
		if (c >= 0) {
			have_new = left > 0;
			if (have_new) {
				if ((rc = mpread_str(&m, &nk, &nk_len)) < 0)
					return rc;
				left--;
			}
		}
	}
	putc1(out, '}');
	if (m.p != m.end)
		return LOKET_E_TRAILING;
	out->p[out->n] = '\0';
	return 0;
}
