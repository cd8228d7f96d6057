/*
 * Values: checking msgpack bytes against our rules, and converting between
 * msgpack and JSON. value_check is the gate for everything that arrives from
 * outside: it walks the bytes with a cursor, allocates nothing, and rejects
 * any count that the remaining bytes could not hold, so a hostile header never
 * reaches an allocator. Only checked (or our own) bytes are ever unpacked.
 * The canonical form, which changesets must use, is the one that
 * value_pack_json emits: shortest headers, str for text, float64 only, map
 * keys unique and sorted bytewise (memcmp, then shorter first).
 */
#include "proto/value.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proto/error.h"
#include "proto/limits.h"
#include "proto/mpread.h"

/*
 * The walk recurses once per level of nesting; whatever depth a caller asks
 * for, it never goes deeper than this, so hostile input cannot exhaust the
 * stack. Messages need 16, changeset fields 8.
 */
#define VALUE_DEPTH_CAP 32u

/* One step of the path to the value being checked, for messages. */
struct walk_step {
	const uint8_t *key; /* NULL for an array element */
	size_t len;
	size_t index;
};

struct walk {
	const uint8_t *p;
	size_t len;
	size_t pos;
	unsigned max_depth;
	int canonical;
	int finite; /* floats must be finite */
	int no_bin; /* text must be str: bin is refused */
	size_t elements;
	size_t max_elements; /* 0: no bound */
	const char *root;    /* names the value in messages; NULL: none */
	/* Where the walk is: steps 0..n_path-1, formatted only for a message. */
	struct walk_step path[VALUE_DEPTH_CAP + 1];
	size_t n_path;
	char *err;
	size_t errlen;
};

/* A map key seen earlier in the same map, as an offset into the input. */
struct seen_key {
	size_t off;
	size_t len;
};

static int check_item(struct walk *w, unsigned depth);

int value_valid_utf8(const uint8_t *s, size_t len)
{
	size_t i = 0;
	while (i < len) {
		/* Most text is ASCII: skip it eight bytes at a time. */
		if (len - i >= 8) {
			uint64_t w;
			memcpy(&w, s + i, sizeof(w));
			if ((w & UINT64_C(0x8080808080808080)) == 0) {
				i += 8;
				continue;
			}
		}
		uint8_t c = s[i];
		if (c < 0x80) {
			i++;
			continue;
		}
		size_t n;
		uint32_t cp;
		if (c >= 0xc2 && c <= 0xdf) {
			n = 1;
			cp = c & 0x1fu;
		} else if (c >= 0xe0 && c <= 0xef) {
			n = 2;
			cp = c & 0x0fu;
		} else if (c >= 0xf0 && c <= 0xf4) {
			n = 3;
			cp = c & 0x07u;
		} else {
			return 0;
		}
		if (len - i - 1 < n)
			return 0;
		for (size_t k = 1; k <= n; k++) {
			uint8_t cc = s[i + k];
			if ((cc & 0xc0) != 0x80)
				return 0;
			cp = cp << 6 | (cc & 0x3fu);
		}
		/* Overlong forms, UTF-16 surrogates and code points past Unicode. */
		if ((n == 2 && cp < 0x800) || (n == 3 && cp < 0x10000) || cp > 0x10ffff ||
		    (cp >= 0xd800 && cp <= 0xdfff))
			return 0;
		i += n + 1;
	}
	return 1;
}

/*
 * Appends one step of a value's path at o in buf: ".key" (no dot first) or
 * "[index]" for an array element (key NULL); cut at buflen. The new length.
 */
static size_t path_append(char *buf, size_t buflen, size_t o, const char *key, size_t len,
                          size_t index)
{
	char at[32];
	if (!key) {
		int k = snprintf(at, sizeof(at), "[%zu]", index);
		key = at;
		len = k > 0 ? (size_t)k : 0;
	} else if (o > 0 && o < buflen) {
		buf[o++] = '.';
	}
	if (len > buflen - o)
		len = buflen - o;
	memcpy(buf + o, key, len);
	return o + len;
}

/*
 * Writes the path of the value being checked (root, then fields.topics[2])
 * into buf as it is, for fail to quote, and returns its length; a path
 * longer than buf is cut, which the quote then shows as "...".
 */
static size_t walk_path(const struct walk *w, char *buf, size_t buflen)
{
	size_t o = 0;
	if (w->root) {
		size_t n = strlen(w->root);
		if (n > buflen)
			n = buflen;
		memcpy(buf, w->root, n);
		o = n;
	}
	for (size_t i = 0; i < w->n_path && o < buflen; i++)
		o = path_append(buf, buflen, o, (const char *)w->path[i].key, w->path[i].len,
		                w->path[i].index);
	return o;
}

__attribute__((format(printf, 4, 5))) static int fail(struct walk *w, size_t at, int code,
                                                      const char *fmt, ...)
{
	if (!w->err || w->errlen == 0)
		return code;
	char path[ERROR_QUOTE_MAX + 1], q[ERROR_QUOTE_SIZE];
	size_t plen = walk_path(w, path, sizeof(path));
	int n = 0;
	if (plen > 0)
		n = snprintf(w->err, w->errlen, "%s: ", error_quote(q, sizeof(q), path, plen));
	if (n < 0 || (size_t)n >= w->errlen)
		return code;
	va_list ap;
	va_start(ap, fmt);
	int m = vsnprintf(w->err + n, w->errlen - (size_t)n, fmt, ap);
	va_end(ap);
	/* Under a root the path says where; a byte offset into a part would mislead. */
	if (m >= 0 && (size_t)(n + m) < w->errlen && !w->root)
		snprintf(w->err + n + m, w->errlen - (size_t)(n + m), " at byte %zu", at);
	return code;
}

/* Makes sure n more bytes are there; what names the thing being read. */
static int need(struct walk *w, size_t at, size_t n, const char *what)
{
	if (w->len - w->pos < n)
		return fail(w, at, LOKET_E_TRUNCATED, "input ends inside %s", what);
	return 0;
}

/* Order of canonical map keys: bytewise, a prefix before the longer key. */
static int key_cmp(const uint8_t *a, size_t alen, const uint8_t *b, size_t blen)
{
	int c = memcmp(a, b, alen < blen ? alen : blen);
	if (c != 0)
		return c;
	return alen < blen ? -1 : (alen > blen ? 1 : 0);
}

/* Reads a str header and body; *s and *n get the string. */
static int check_str(struct walk *w, size_t at, uint8_t t, const uint8_t **s, size_t *n)
{
	size_t len;
	size_t min;
	int rc;
	if (t >= 0xa0 && t <= 0xbf) {
		len = t & 0x1fu;
		min = 0;
	} else {
		size_t hl = t == 0xd9 ? 1 : (t == 0xda ? 2 : 4);
		if ((rc = need(w, at, hl, "a string header")))
			return rc;
		const uint8_t *h = w->p + w->pos;
		len = hl == 1 ? h[0] : (hl == 2 ? mpread_be16(h) : mpread_be32(h));
		min = hl == 1 ? 32 : (hl == 2 ? 256 : 65536);
		w->pos += hl;
	}
	if (w->len - w->pos < len)
		return fail(w, at, LOKET_E_TRUNCATED,
		            "string of %zu bytes but only %zu bytes remain", len, w->len - w->pos);
	if (w->canonical && len < min)
		return fail(w, at, LOKET_E_NOT_CANONICAL,
		            "string of %zu bytes not in shortest form", len);
	const uint8_t *body = w->p + w->pos;
	if (!value_valid_utf8(body, len)) {
		char q[ERROR_QUOTE_SIZE];
		if (s) /* a map key */
			return fail(w, at, LOKET_E_MALFORMED, "map key %s is not valid UTF-8",
			            error_quote(q, sizeof(q), (const char *)body, len));
		return fail(w, at, LOKET_E_MALFORMED, "string is not valid UTF-8");
	}
	w->pos += len;
	if (s) {
		*s = body;
		*n = len;
	}
	return 0;
}

static int check_container_header(struct walk *w, size_t at, unsigned depth, size_t count,
                                  size_t min, size_t per_item, const char *what)
{
	if (depth + 1 > w->max_depth)
		return fail(w, at, LOKET_E_TOO_DEEP, "nesting deeper than %u", w->max_depth);
	if (count > (w->len - w->pos) / per_item)
		return fail(w, at, LOKET_E_TRUNCATED, "declared %zu %s but only %zu bytes remain",
		            count, what, w->len - w->pos);
	if (w->canonical && count < min)
		return fail(w, at, LOKET_E_NOT_CANONICAL, "%s count %zu not in shortest form",
		            per_item == 1 ? "array" : "map", count);
	return 0;
}

static int check_array(struct walk *w, size_t at, unsigned depth, size_t count, size_t min)
{
	int rc = check_container_header(w, at, depth, count, min, 1, "elements");
	for (size_t i = 0; rc == 0 && i < count; i++) {
		w->path[depth] = (struct walk_step){NULL, 0, i};
		w->n_path = depth + 1;
		rc = check_item(w, depth + 1);
	}
	if (rc == 0)
		w->n_path = depth;
	return rc;
}

/*
 * Keys must be strings and unique. Sorted keys prove uniqueness by comparing
 * each key with the one before; the canonical form requires that. Other
 * writers may send keys in any order, so up to LOKET_MAX_UNSORTED_KEYS keys
 * are compared pairwise, which bounds the work without allocating.
 */
static int check_map(struct walk *w, size_t at, unsigned depth, size_t count, size_t min)
{
	struct seen_key seen[LOKET_MAX_UNSORTED_KEYS];
	int sorted = 1;
	char q[ERROR_QUOTE_SIZE];
	int rc = check_container_header(w, at, depth, count, min, 2, "map entries");
	if (rc)
		return rc;
	for (size_t i = 0; i < count; i++) {
		size_t kat = w->pos;
		const uint8_t *k;
		size_t klen;
		if ((rc = need(w, kat, 1, "a map")))
			return rc;
		uint8_t t = w->p[w->pos];
		if (!((t >= 0xa0 && t <= 0xbf) || (t >= 0xd9 && t <= 0xdb)))
			return fail(w, kat, LOKET_E_MALFORMED, "map key is not a string");
		/* A key is a value too: a member of the decoded object. */
		if (++w->elements > w->max_elements && w->max_elements) {
			w->n_path = 0;
			return fail(w, kat, LOKET_E_TOO_BIG, "more than %zu values",
			            w->max_elements);
		}
		w->pos++;
		if ((rc = check_str(w, kat, t, &k, &klen)))
			return rc;
		if (i > 0 && sorted) {
			const struct seen_key *pk =
			    &seen[i < LOKET_MAX_UNSORTED_KEYS ? i - 1
			                                      : LOKET_MAX_UNSORTED_KEYS - 1];
			int c = key_cmp(w->p + pk->off, pk->len, k, klen);
			if (c == 0)
				return fail(w, kat, LOKET_E_DUPLICATE_KEY,
				            "map key %s appears twice",
				            error_quote(q, sizeof(q), (const char *)k, klen));
			if (c > 0) {
				if (w->canonical)
					return fail(
					    w, kat, LOKET_E_NOT_CANONICAL,
					    "map key %s is out of order",
					    error_quote(q, sizeof(q), (const char *)k, klen));
				sorted = 0;
			}
		}
		if (!sorted) {
			if (i >= LOKET_MAX_UNSORTED_KEYS)
				return fail(w, at, LOKET_E_TOO_BIG,
				            "map of %zu entries has unsorted keys; only maps of "
				            "at most %u entries may",
				            count, LOKET_MAX_UNSORTED_KEYS);
			for (size_t j = 0; j < i; j++) {
				if (key_cmp(w->p + seen[j].off, seen[j].len, k, klen) == 0)
					return fail(
					    w, kat, LOKET_E_DUPLICATE_KEY,
					    "map key %s appears twice",
					    error_quote(q, sizeof(q), (const char *)k, klen));
			}
		}
		/*
		 * Past the pairwise limit only sorted maps go on, and they need
		 * just the previous key, kept in the last slot.
		 */
		size_t slot = i < LOKET_MAX_UNSORTED_KEYS ? i : LOKET_MAX_UNSORTED_KEYS - 1;
		seen[slot].off = (size_t)(k - w->p);
		seen[slot].len = klen;
		w->path[depth] = (struct walk_step){k, klen, 0};
		w->n_path = depth + 1;
		if ((rc = check_item(w, depth + 1)))
			return rc;
		w->n_path = depth;
	}
	return 0;
}

static int check_int(struct walk *w, size_t at, uint8_t t)
{
	size_t n = (size_t)1 << (t & 0x03u);
	int rc = need(w, at, n, "an integer");
	if (rc)
		return rc;
	const uint8_t *b = w->p + w->pos;
	w->pos += n;
	if (t <= 0xcf) {
		uint64_t v =
		    n == 1 ? b[0]
		           : (n == 2 ? mpread_be16(b) : (n == 4 ? mpread_be32(b) : mpread_be64(b)));
		if (v > INT64_MAX)
			return fail(w, at, LOKET_E_TOO_BIG, "integer %llu beyond the int64 range",
			            (unsigned long long)v);
		uint64_t min = n == 1 ? 0x80 : (n == 2 ? 0x100 : (n == 4 ? 0x10000 : 0x100000000));
		if (w->canonical && v < min)
			return fail(w, at, LOKET_E_NOT_CANONICAL,
			            "integer %llu not in shortest form", (unsigned long long)v);
		return 0;
	}
	int64_t v;
	int64_t min;
	if (n == 1) {
		v = (int8_t)b[0];
		min = -32;
	} else if (n == 2) {
		v = (int16_t)mpread_be16(b);
		min = -128;
	} else if (n == 4) {
		v = (int32_t)mpread_be32(b);
		min = -32768;
	} else {
		v = (int64_t)mpread_be64(b);
		min = -2147483648LL;
	}
	/* Non-negative integers canonically use the unsigned formats. */
	if (w->canonical && v >= min)
		return fail(w, at, LOKET_E_NOT_CANONICAL, "integer %lld not in shortest form",
		            (long long)v);
	return 0;
}

static int check_float(struct walk *w, size_t at, uint8_t t)
{
	size_t n = t == 0xca ? 4 : 8;
	int rc = need(w, at, n, "a float");
	if (rc)
		return rc;
	const uint8_t *b = w->p + w->pos;
	w->pos += n;
	if (!w->canonical && !w->finite)
		return 0;
	if (n == 4 && w->canonical)
		return fail(w, at, LOKET_E_NOT_CANONICAL, "float32 where only float64 is allowed");
	double d;
	if (n == 4) {
		uint32_t bits = mpread_be32(b);
		float f;
		memcpy(&f, &bits, sizeof(f));
		d = f;
	} else {
		uint64_t bits = mpread_be64(b);
		memcpy(&d, &bits, sizeof(d));
	}
	/* JSON cannot carry NaN or infinity, and NaN has many encodings. */
	int code = w->canonical ? LOKET_E_NOT_CANONICAL : LOKET_E_MALFORMED;
	if (isnan(d))
		return fail(w, at, code, "float is NaN");
	if (isinf(d))
		return fail(w, at, code, "float is infinite");
	return 0;
}

static int check_bin(struct walk *w, size_t at, uint8_t t)
{
	size_t hl = t == 0xc4 ? 1 : (t == 0xc5 ? 2 : 4);
	int rc = need(w, at, hl, "a bin header");
	if (rc)
		return rc;
	const uint8_t *h = w->p + w->pos;
	size_t len = hl == 1 ? h[0] : (hl == 2 ? mpread_be16(h) : mpread_be32(h));
	w->pos += hl;
	if (w->canonical)
		return fail(w, at, LOKET_E_NOT_CANONICAL, "bin where text must be str");
	if (w->no_bin)
		return fail(w, at, LOKET_E_MALFORMED,
		            "bin where a string is meant (send text as msgpack str)");
	if (w->len - w->pos < len)
		return fail(w, at, LOKET_E_TRUNCATED, "bin of %zu bytes but only %zu bytes remain",
		            len, w->len - w->pos);
	w->pos += len;
	return 0;
}

static int check_item(struct walk *w, unsigned depth)
{
	size_t at = w->pos;
	int rc = need(w, at, 1, "a value");
	if (rc)
		return rc;
	/*
	 * Every value counts, scalars too: each becomes an object when the
	 * message is decoded, whatever few bytes it took here.
	 */
	if (++w->elements > w->max_elements && w->max_elements) {
		w->n_path = 0; /* a bound on the whole, not on where it was reached */
		return fail(w, at, LOKET_E_TOO_BIG, "more than %zu values", w->max_elements);
	}
	uint8_t t = w->p[w->pos++];
	if (t <= 0x7f || t >= 0xe0)
		return 0;
	if (t <= 0x8f)
		return check_map(w, at, depth, t & 0x0fu, 0);
	if (t <= 0x9f)
		return check_array(w, at, depth, t & 0x0fu, 0);
	if (t <= 0xbf)
		return check_str(w, at, t, NULL, NULL);
	switch (t) {
	case 0xc0: /* nil */
	case 0xc2: /* false */
	case 0xc3: /* true */
		return 0;
	case 0xc4:
	case 0xc5:
	case 0xc6:
		return check_bin(w, at, t);
	case 0xca:
	case 0xcb:
		return check_float(w, at, t);
	case 0xcc:
	case 0xcd:
	case 0xce:
	case 0xcf:
	case 0xd0:
	case 0xd1:
	case 0xd2:
	case 0xd3:
		return check_int(w, at, t);
	case 0xd9:
	case 0xda:
	case 0xdb:
		return check_str(w, at, t, NULL, NULL);
	case 0xdc:
	case 0xdd:
	case 0xde:
	case 0xdf: {
		size_t hl = (t & 1u) ? 4 : 2;
		if ((rc = need(w, at, hl, "a container header")))
			return rc;
		const uint8_t *h = w->p + w->pos;
		size_t count = hl == 2 ? mpread_be16(h) : mpread_be32(h);
		size_t min = hl == 2 ? 16 : 65536;
		w->pos += hl;
		if (t <= 0xdd)
			return check_array(w, at, depth, count, min);
		return check_map(w, at, depth, count, min);
	}
	case 0xc1:
		return fail(w, at, LOKET_E_MALFORMED, "byte 0xc1 is never used in msgpack");
	default: /* 0xc7..0xc9 and 0xd4..0xd8 */
		return fail(w, at, LOKET_E_MALFORMED, "ext type 0x%02x is not allowed", t);
	}
}

int value_check_rules(const uint8_t *p, size_t len, struct value_rules *rules, size_t *used,
                      char *err, size_t errlen)
{
	/* On the stack: the path is the one thing of size here, a few hundred bytes. */
	struct walk w = {
	    .p = p,
	    .len = p ? len : 0,
	    .max_depth = rules->max_depth < VALUE_DEPTH_CAP ? rules->max_depth : VALUE_DEPTH_CAP,
	    .canonical = (rules->flags & VALUE_CANONICAL) != 0,
	    .finite = (rules->flags & VALUE_FINITE) != 0,
	    .no_bin = (rules->flags & VALUE_NO_BIN) != 0,
	    .max_elements = rules->max_elements,
	    .root = rules->root,
	    .err = err,
	    .errlen = errlen,
	};
	if (err && errlen)
		err[0] = '\0';
	int rc = check_item(&w, 0);
	rules->elements = w.elements;
	if (rc == 0 && used)
		*used = w.pos;
	return rc;
}

int value_check(const uint8_t *p, size_t len, unsigned max_depth, unsigned flags, size_t *used,
                char *err, size_t errlen)
{
	struct value_rules rules = {.max_depth = max_depth, .flags = flags};
	return value_check_rules(p, len, &rules, used, err, errlen);
}

/* JSON to msgpack. */

/*
 * Where the packer is, kept as a stack of keys and indices and formatted
 * only when an error needs it: writers pack millions of values that are fine.
 */
struct path_step {
	const char *key; /* NULL for an array index */
	size_t len;
	size_t index;
};

struct pack {
	msgpack_packer *pk;
	unsigned max_depth;
	struct path_step path[VALUE_DEPTH_CAP + 2];
	size_t depth;
	char *err;
	size_t errlen;
};

struct json_key {
	const char *key;
	size_t len;
	json_t *value;
};

static int pack_value(struct pack *c, const json_t *v, unsigned depth);

/*
 * Writes the path of the value being packed (fields.topics[2]) into buf as
 * it is, for pack_fail to quote, and returns its length. A path longer than
 * buf is cut at buflen bytes, so a buf longer than ERROR_QUOTE_MAX shows the
 * cut as "...".
 */
static size_t path_format(const struct pack *c, char *buf, size_t buflen)
{
	size_t o = 0;
	for (size_t i = 0; i < c->depth && i < sizeof(c->path) / sizeof(c->path[0]) && o < buflen;
	     i++)
		o = path_append(buf, buflen, o, c->path[i].key, c->path[i].len, c->path[i].index);
	return o;
}

__attribute__((format(printf, 3, 4))) static int pack_fail(struct pack *c, int code,
                                                           const char *fmt, ...)
{
	if (!c->err || c->errlen == 0)
		return code;
	char path[ERROR_QUOTE_MAX + 1], q[ERROR_QUOTE_SIZE];
	size_t len = path_format(c, path, sizeof(path));
	int n = snprintf(c->err, c->errlen,
	                 "%s: ", c->depth ? error_quote(q, sizeof(q), path, len) : "top level");
	if (n < 0 || (size_t)n >= c->errlen)
		return code;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(c->err + n, c->errlen - (size_t)n, fmt, ap);
	va_end(ap);
	return code;
}

/* Steps into a member or element; the depth limit keeps the stack in bounds. */
static void path_push(struct pack *c, const char *key, size_t len, size_t index)
{
	if (c->depth < sizeof(c->path) / sizeof(c->path[0]))
		c->path[c->depth] = (struct path_step){key, len, index};
	c->depth++;
}

static void path_pop(struct pack *c)
{
	c->depth--;
}

static int json_key_cmp(const void *a, const void *b)
{
	const struct json_key *x = a;
	const struct json_key *y = b;
	return key_cmp((const uint8_t *)x->key, x->len, (const uint8_t *)y->key, y->len);
}

static int pack_str(struct pack *c, const char *s, size_t len)
{
	if (len > UINT32_MAX)
		return pack_fail(c, LOKET_E_TOO_BIG, "string of %zu bytes is too long", len);
	if (!value_valid_utf8((const uint8_t *)s, len))
		return pack_fail(c, LOKET_E_MALFORMED, "string is not valid UTF-8");
	if (msgpack_pack_str(c->pk, len) || msgpack_pack_str_body(c->pk, s, len))
		return -ENOMEM;
	return 0;
}

static int pack_object(struct pack *c, const json_t *v, unsigned depth)
{
	size_t n = json_object_size(v);
	struct json_key small[16];
	struct json_key *keys = small;
	int rc = 0;
	if (n > UINT32_MAX)
		return pack_fail(c, LOKET_E_TOO_BIG, "object of %zu members is too big", n);
	/* Most objects are small: no allocation for them. */
	if (n > sizeof(small) / sizeof(small[0])) {
		keys = calloc(n, sizeof(*keys));
		if (!keys)
			return -ENOMEM;
	}
	size_t i = 0;
	/* jansson's iterator takes a non-const object but does not change it. */
	for (void *it = json_object_iter((json_t *)v); it && i < n;
	     it = json_object_iter_next((json_t *)v, it), i++) {
		keys[i].key = json_object_iter_key(it);
		keys[i].len = json_object_iter_key_len(it);
		keys[i].value = json_object_iter_value(it);
	}
	if (i > 1)
		qsort(keys, i, sizeof(*keys), json_key_cmp);
	if (msgpack_pack_map(c->pk, i)) {
		rc = -ENOMEM;
		goto cleanup;
	}
	for (size_t k = 0; k < i; k++) {
		if ((rc = pack_str(c, keys[k].key, keys[k].len)))
			goto cleanup;
		path_push(c, keys[k].key, keys[k].len, 0);
		rc = pack_value(c, keys[k].value, depth + 1);
		path_pop(c);
		if (rc)
			goto cleanup;
	}
cleanup:
	if (keys != small)
		free(keys);
	return rc;
}

static int pack_value(struct pack *c, const json_t *v, unsigned depth)
{
	int rc = 0;
	switch (json_typeof(v)) {
	case JSON_OBJECT:
		if (depth + 1 > c->max_depth)
			return pack_fail(c, LOKET_E_TOO_DEEP, "nesting deeper than %u",
			                 c->max_depth);
		return pack_object(c, v, depth);
	case JSON_ARRAY: {
		if (depth + 1 > c->max_depth)
			return pack_fail(c, LOKET_E_TOO_DEEP, "nesting deeper than %u",
			                 c->max_depth);
		size_t n = json_array_size(v);
		if (n > UINT32_MAX)
			return pack_fail(c, LOKET_E_TOO_BIG, "array of %zu elements is too big", n);
		if (msgpack_pack_array(c->pk, n))
			return -ENOMEM;
		for (size_t i = 0; i < n && rc == 0; i++) {
			path_push(c, NULL, 0, i);
			rc = pack_value(c, json_array_get(v, i), depth + 1);
			path_pop(c);
		}
		return rc;
	}
	case JSON_STRING:
		return pack_str(c, json_string_value(v), json_string_length(v));
	case JSON_INTEGER:
		return msgpack_pack_int64(c->pk, (int64_t)json_integer_value(v)) ? -ENOMEM : 0;
	case JSON_REAL: {
		double d = json_real_value(v);
		if (!isfinite(d))
			return pack_fail(c, LOKET_E_MALFORMED, "number is not finite");
		return msgpack_pack_double(c->pk, d) ? -ENOMEM : 0;
	}
	case JSON_TRUE:
		return msgpack_pack_true(c->pk) ? -ENOMEM : 0;
	case JSON_FALSE:
		return msgpack_pack_false(c->pk) ? -ENOMEM : 0;
	case JSON_NULL:
		return msgpack_pack_nil(c->pk) ? -ENOMEM : 0;
	}
	return pack_fail(c, LOKET_E_MALFORMED, "unknown JSON type");
}

int value_pack_json(msgpack_packer *pk, const json_t *v, unsigned max_depth, char *err,
                    size_t errlen)
{
	struct pack c = {.pk = pk, .max_depth = max_depth, .err = err, .errlen = errlen};
	if (err && errlen)
		err[0] = '\0';
	if (!v)
		return pack_fail(&c, -EINVAL, "no value");
	return pack_value(&c, v, 0);
}

/* msgpack to JSON. */

struct unpack {
	const uint8_t *p;
	size_t len;
	size_t pos;
	const char *why; /* set on failure */
};

static json_t *unpack_value(struct unpack *u, unsigned depth);

static int unpack_need(struct unpack *u, size_t n)
{
	if (u->len - u->pos < n) {
		u->why = "input ends inside a value";
		return -1;
	}
	return 0;
}

/* Reads a header field of n bytes (1, 2, 4 or 8), big-endian. */
static int unpack_uint(struct unpack *u, size_t n, uint64_t *v)
{
	if (unpack_need(u, n))
		return -1;
	const uint8_t *b = u->p + u->pos;
	*v = n == 1 ? b[0] : (n == 2 ? mpread_be16(b) : (n == 4 ? mpread_be32(b) : mpread_be64(b)));
	u->pos += n;
	return 0;
}

static json_t *unpack_str(struct unpack *u, size_t len)
{
	if (unpack_need(u, len))
		return NULL;
	json_t *s = json_stringn((const char *)u->p + u->pos, len);
	if (!s)
		u->why = "string is not valid UTF-8";
	u->pos += len;
	return s;
}

static json_t *unpack_bin(struct unpack *u, size_t len)
{
	static const char hex[] = "0123456789abcdef";
	if (unpack_need(u, len))
		return NULL;
	char *buf = malloc(2 * len + 1);
	if (!buf) {
		u->why = "out of memory";
		return NULL;
	}
	const uint8_t *b = u->p + u->pos;
	for (size_t i = 0; i < len; i++) {
		buf[2 * i] = hex[b[i] >> 4];
		buf[2 * i + 1] = hex[b[i] & 0x0f];
	}
	json_t *s = json_stringn(buf, 2 * len);
	free(buf);
	u->pos += len;
	if (!s)
		u->why = "out of memory";
	return s;
}

static json_t *unpack_array(struct unpack *u, size_t count, unsigned depth)
{
	json_t *a = json_array();
	if (!a) {
		u->why = "out of memory";
		return NULL;
	}
	/* No space is reserved for count, which nothing has checked here. */
	for (size_t i = 0; i < count; i++) {
		json_t *e = unpack_value(u, depth + 1);
		if (!e || json_array_append_new(a, e)) {
			if (e && !u->why)
				u->why = "out of memory";
			json_decref(a);
			return NULL;
		}
	}
	return a;
}

static json_t *unpack_map(struct unpack *u, size_t count, unsigned depth)
{
	json_t *o = json_object();
	if (!o) {
		u->why = "out of memory";
		return NULL;
	}
	for (size_t i = 0; i < count; i++) {
		uint64_t klen;
		if (unpack_need(u, 1))
			goto fail;
		uint8_t t = u->p[u->pos++];
		if (t >= 0xa0 && t <= 0xbf)
			klen = t & 0x1fu;
		else if (t >= 0xd9 && t <= 0xdb) {
			if (unpack_uint(u, (size_t)1 << (t - 0xd9), &klen))
				goto fail;
		} else {
			u->why = "map key is not a string";
			goto fail;
		}
		if (unpack_need(u, (size_t)klen))
			goto fail;
		const char *k = (const char *)u->p + u->pos;
		u->pos += (size_t)klen;
		json_t *v = unpack_value(u, depth + 1);
		if (!v)
			goto fail;
		if (json_object_setn_new(o, k, (size_t)klen, v)) {
			u->why = "map key is not valid UTF-8";
			goto fail;
		}
	}
	return o;
fail:
	json_decref(o);
	return NULL;
}

static json_t *unpack_value(struct unpack *u, unsigned depth)
{
	uint64_t n;
	if (depth > VALUE_DEPTH_CAP) {
		u->why = "nesting too deep";
		return NULL;
	}
	if (unpack_need(u, 1))
		return NULL;
	uint8_t t = u->p[u->pos++];
	if (t <= 0x7f)
		return json_integer(t);
	if (t >= 0xe0)
		return json_integer((int8_t)t);
	if (t <= 0x8f)
		return unpack_map(u, t & 0x0fu, depth);
	if (t <= 0x9f)
		return unpack_array(u, t & 0x0fu, depth);
	if (t <= 0xbf)
		return unpack_str(u, t & 0x1fu);
	switch (t) {
	case 0xc0:
		return json_null();
	case 0xc2:
		return json_false();
	case 0xc3:
		return json_true();
	case 0xc4:
	case 0xc5:
	case 0xc6:
		if (unpack_uint(u, (size_t)1 << (t - 0xc4), &n))
			return NULL;
		return unpack_bin(u, (size_t)n);
	case 0xca: {
		if (unpack_uint(u, 4, &n))
			return NULL;
		uint32_t bits = (uint32_t)n;
		float f;
		memcpy(&f, &bits, sizeof(f));
		json_t *r = json_real((double)f);
		if (!r)
			u->why = "float is NaN or infinite, which JSON cannot hold";
		return r;
	}
	case 0xcb: {
		if (unpack_uint(u, 8, &n))
			return NULL;
		double d;
		memcpy(&d, &n, sizeof(d));
		json_t *r = json_real(d);
		if (!r)
			u->why = "float is NaN or infinite, which JSON cannot hold";
		return r;
	}
	case 0xcc:
	case 0xcd:
	case 0xce:
	case 0xcf:
		if (unpack_uint(u, (size_t)1 << (t - 0xcc), &n))
			return NULL;
		if (n > INT64_MAX) {
			u->why = "integer beyond the int64 range";
			return NULL;
		}
		return json_integer((json_int_t)n);
	case 0xd0:
		if (unpack_uint(u, 1, &n))
			return NULL;
		return json_integer((int8_t)n);
	case 0xd1:
		if (unpack_uint(u, 2, &n))
			return NULL;
		return json_integer((int16_t)n);
	case 0xd2:
		if (unpack_uint(u, 4, &n))
			return NULL;
		return json_integer((int32_t)n);
	case 0xd3:
		if (unpack_uint(u, 8, &n))
			return NULL;
		return json_integer((json_int_t)(int64_t)n);
	case 0xd9:
	case 0xda:
	case 0xdb:
		if (unpack_uint(u, (size_t)1 << (t - 0xd9), &n))
			return NULL;
		return unpack_str(u, (size_t)n);
	case 0xdc:
	case 0xdd:
		if (unpack_uint(u, t == 0xdc ? 2 : 4, &n))
			return NULL;
		return unpack_array(u, (size_t)n, depth);
	case 0xde:
	case 0xdf:
		if (unpack_uint(u, t == 0xde ? 2 : 4, &n))
			return NULL;
		return unpack_map(u, (size_t)n, depth);
	default:
		u->why = "ext types are not allowed";
		return NULL;
	}
}

json_t *value_to_json(const uint8_t *p, size_t len)
{
	struct unpack u = {.p = p, .len = p ? len : 0};
	return unpack_value(&u, 0);
}

int value_encode_message(const json_t *msg, msgpack_sbuffer *out)
{
	msgpack_packer pk;
	size_t start = out->size;
	if (!json_is_object(msg))
		return LOKET_E_MALFORMED;
	msgpack_packer_init(&pk, out, msgpack_sbuffer_write);
	int rc = value_pack_json(&pk, msg, LOKET_MAX_MESSAGE_DEPTH, NULL, 0);
	if (rc == 0 && out->size - start > LOKET_MAX_MESSAGE_BYTES)
		rc = LOKET_E_TOO_BIG;
	if (rc)
		out->size = start;
	return rc;
}

int value_decode_message(const uint8_t *p, size_t len, json_t **out, char *err, size_t errlen)
{
	return value_decode_message_limit(p, len, LOKET_MAX_MESSAGE_ELEMENTS, out, err, errlen);
}

int value_decode_message_limit(const uint8_t *p, size_t len, size_t max_elements, json_t **out,
                               char *err, size_t errlen)
{
	size_t used = 0;
	*out = NULL;
	if (err && errlen)
		err[0] = '\0';
	if (len > LOKET_MAX_MESSAGE_BYTES) {
		if (err && errlen)
			snprintf(err, errlen, "message of %zu bytes is over the limit of %u bytes",
			         len, LOKET_MAX_MESSAGE_BYTES);
		return LOKET_E_TOO_BIG;
	}
	if (len == 0 || !p) {
		if (err && errlen)
			snprintf(err, errlen, "message is empty");
		return LOKET_E_TRUNCATED;
	}
	if (!((p[0] >= 0x80 && p[0] <= 0x8f) || p[0] == 0xde || p[0] == 0xdf)) {
		if (err && errlen)
			snprintf(err, errlen, "message is not a map (first byte 0x%02x)", p[0]);
		return LOKET_E_MALFORMED;
	}
	struct value_rules rules = {.max_depth = LOKET_MAX_MESSAGE_DEPTH,
	                            .max_elements = max_elements};
	int rc = value_check_rules(p, len, &rules, &used, err, errlen);
	if (rc)
		return rc;
	if (used != len) {
		if (err && errlen)
			snprintf(err, errlen, "%zu bytes follow the message", len - used);
		return LOKET_E_TRAILING;
	}
	struct unpack u = {.p = p, .len = len};
	json_t *v = unpack_value(&u, 0);
	if (!v) {
		if (err && errlen)
			snprintf(err, errlen, "%s", u.why ? u.why : "out of memory");
		return u.why && strcmp(u.why, "out of memory") != 0 ? LOKET_E_MALFORMED : -ENOMEM;
	}
	*out = v;
	return 0;
}
