/*
 * Signed notes, checkpoints and cosignatures (note.h says the format).
 * Parsing walks the bytes once with explicit bounds: the whole note is
 * checked for UTF-8 and control characters first, so that every later
 * step reads text that cannot forge a line or hide a byte; the text is
 * split from the signatures at the last blank line, as the specification
 * says; base64 is decoded and encoded again, so that one signature has one
 * spelling. Nothing here allocates: a parsed note points into its input.
 */
#include "proto/note.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include <sodium.h>

#include "proto/error.h"
#include "proto/sha256.h"
#include "proto/value.h"

static const uint8_t em_dash[] = {0xe2, 0x80, 0x94, ' '};
static const char cosig_header[] = "cosignature/v1\ntime ";

/* The length of the UTF-8 sequence at s (valid UTF-8 checked before) and its code point. */
static size_t utf8_next(const uint8_t *s, size_t len, uint32_t *cp)
{
	if (s[0] < 0x80 || len < 2) {
		*cp = s[0];
		return 1;
	}
	if (s[0] < 0xe0) {
		*cp = (uint32_t)(s[0] & 0x1f) << 6 | (uint32_t)(s[1] & 0x3f);
		return 2;
	}
	if (s[0] < 0xf0 && len >= 3) {
		*cp = (uint32_t)(s[0] & 0x0f) << 12 | (uint32_t)(s[1] & 0x3f) << 6 |
		      (uint32_t)(s[2] & 0x3f);
		return 3;
	}
	if (len >= 4) {
		*cp = (uint32_t)(s[0] & 0x07) << 18 | (uint32_t)(s[1] & 0x3f) << 12 |
		      (uint32_t)(s[2] & 0x3f) << 6 | (uint32_t)(s[3] & 0x3f);
		return 4;
	}
	*cp = s[0];
	return 1;
}

/* Unicode's White_Space, as Go's unicode.IsSpace (the controls among them are refused anyway). */
static int is_space(uint32_t cp)
{
	return cp == ' ' || (cp >= 0x09 && cp <= 0x0d) || cp == 0x85 || cp == 0xa0 ||
	       cp == 0x1680 || (cp >= 0x2000 && cp <= 0x200a) || cp == 0x2028 || cp == 0x2029 ||
	       cp == 0x202f || cp == 0x205f || cp == 0x3000;
}

/* 1 if s is UTF-8 with no control character (C0, DEL or C1) but, if nl, newline. */
static int clean_text(const uint8_t *s, size_t len, int nl)
{
	if (!value_valid_utf8(s, len))
		return 0;
	for (size_t i = 0; i < len;) {
		uint32_t cp;
		size_t n = utf8_next(s + i, len - i, &cp);

		if ((cp < 0x20 && !(nl && cp == '\n')) || cp == 0x7f || (cp >= 0x80 && cp < 0xa0))
			return 0;
		i += n;
	}
	return 1;
}

int note_valid_name(const uint8_t *s, size_t len)
{
	if (len == 0 || len > NOTE_MAX_NAME || !clean_text(s, len, 0))
		return 0;
	for (size_t i = 0; i < len;) {
		uint32_t cp;
		size_t n = utf8_next(s + i, len - i, &cp);

		if (cp == '+' || is_space(cp))
			return 0;
		i += n;
	}
	return 1;
}

uint32_t note_key_id(const uint8_t *name, size_t name_len, uint8_t type, const uint8_t pub[32])
{
	struct sha256 c;
	uint8_t sep[2] = {0x0a, type}, h[32];

	sha256_init(&c);
	sha256_update(&c, name, name_len);
	sha256_update(&c, sep, sizeof(sep));
	sha256_update(&c, pub, 32);
	sha256_final(&c, h);
	return (uint32_t)h[0] << 24 | (uint32_t)h[1] << 16 | (uint32_t)h[2] << 8 | (uint32_t)h[3];
}

/* Decodes canonical standard base64 (with padding) of at most cap bytes; -1 if it is not. */
static int b64_decode(const uint8_t *s, size_t len, uint8_t *out, size_t cap, size_t *n)
{
	char again[4 * ((NOTE_MAX_SIG + 4 + 2) / 3) + 1];
	size_t bin = 0;

	if (len == 0 || len % 4 != 0 || len > sizeof(again) - 1)
		return -1;
	if (sodium_base642bin(out, cap, (const char *)s, len, NULL, &bin, NULL,
	                      sodium_base64_VARIANT_ORIGINAL) != 0)
		return -1;
	/* One spelling per value: padding bits set or a shorter form spell the same bytes. */
	sodium_bin2base64(again, sizeof(again), out, bin, sodium_base64_VARIANT_ORIGINAL);
	if (strlen(again) != len || memcmp(again, s, len) != 0)
		return -1;
	*n = bin;
	return 0;
}

static void seterr(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void seterr(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	if (errlen == 0)
		return;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
}

/* The last "\n\n" in p: the offset of its first newline, or -1. */
static ptrdiff_t last_blank(const uint8_t *p, size_t len)
{
	for (size_t i = len; i >= 2; i--)
		if (p[i - 1] == '\n' && p[i - 2] == '\n')
			return (ptrdiff_t)(i - 2);
	return -1;
}

static int parse_sig_line(const uint8_t *l, size_t len, size_t lineno, struct note_sig *s,
                          char *err, size_t errlen)
{
	char q[ERROR_QUOTE_SIZE];
	uint8_t raw[4 + NOTE_MAX_SIG];
	const uint8_t *sp;
	size_t name_len, b_len, n;

	if (len < sizeof(em_dash) || memcmp(l, em_dash, sizeof(em_dash)) != 0) {
		seterr(err, errlen,
		       "note signature line %zu does not start with an em dash and a space: %s",
		       lineno, error_quote(q, sizeof(q), (const char *)l, len));
		return LOKET_E_MALFORMED;
	}
	l += sizeof(em_dash);
	len -= sizeof(em_dash);
	sp = memchr(l, ' ', len);
	if (sp == NULL) {
		seterr(err, errlen,
		       "note signature line %zu has no space between key name and signature: %s",
		       lineno, error_quote(q, sizeof(q), (const char *)l, len));
		return LOKET_E_MALFORMED;
	}
	name_len = (size_t)(sp - l);
	if (!note_valid_name(l, name_len)) {
		seterr(err, errlen,
		       "note signature line %zu: key name %s is not 1 to %u bytes without spaces "
		       "or '+'",
		       lineno, error_quote(q, sizeof(q), (const char *)l, name_len), NOTE_MAX_NAME);
		return LOKET_E_MALFORMED;
	}
	b_len = len - name_len - 1;
	if (b64_decode(sp + 1, b_len, raw, sizeof(raw), &n) != 0 || n < 5) {
		seterr(err, errlen,
		       "note signature line %zu: signature %s is not canonical base64 of 5 to %u "
		       "bytes",
		       lineno, error_quote(q, sizeof(q), (const char *)sp + 1, b_len),
		       4 + NOTE_MAX_SIG);
		return LOKET_E_MALFORMED;
	}
	s->name = l;
	s->name_len = name_len;
	s->key_id = (uint32_t)raw[0] << 24 | (uint32_t)raw[1] << 16 | (uint32_t)raw[2] << 8 |
	            (uint32_t)raw[3];
	s->len = n - 4;
	memcpy(s->sig, raw + 4, n - 4);
	return 0;
}

int note_parse(const uint8_t *p, size_t len, struct note *n, char *err, size_t errlen)
{
	const uint8_t *s, *end;
	ptrdiff_t split;
	size_t lineno = 0;
	int rc;

	if (errlen > 0)
		err[0] = '\0';
	n->text = NULL;
	n->text_len = 0;
	n->count = 0;
	if (len > NOTE_MAX_BYTES) {
		seterr(err, errlen, "note of %zu bytes is longer than %u", len, NOTE_MAX_BYTES);
		return LOKET_E_TOO_BIG;
	}
	if (!clean_text(p, len, 1)) {
		seterr(err, errlen,
		       "note is not UTF-8 without control characters other than newline");
		return LOKET_E_MALFORMED;
	}
	split = last_blank(p, len);
	if (split < 0) {
		seterr(err, errlen, "note has no blank line before its signatures");
		return LOKET_E_MALFORMED;
	}
	s = p + split + 2;
	end = p + len;
	if (s == end) {
		seterr(err, errlen, "note has no signature line after its blank line");
		return LOKET_E_MALFORMED;
	}
	if (end[-1] != '\n') {
		seterr(err, errlen, "note does not end in a newline");
		return LOKET_E_MALFORMED;
	}
	while (s < end) {
		const uint8_t *nl = memchr(s, '\n', (size_t)(end - s));

		lineno++;
		if (n->count == NOTE_MAX_SIGS) {
			seterr(err, errlen, "note has more than %u signature lines", NOTE_MAX_SIGS);
			return LOKET_E_TOO_BIG;
		}
		rc = parse_sig_line(s, (size_t)(nl - s), lineno, &n->sig[n->count], err, errlen);
		if (rc < 0) {
			n->count = 0;
			return rc;
		}
		for (size_t i = 0; i < n->count; i++) {
			const struct note_sig *a = &n->sig[i], *b = &n->sig[n->count];

			if (a->key_id == b->key_id && a->name_len == b->name_len &&
			    memcmp(a->name, b->name, a->name_len) == 0) {
				char q[ERROR_QUOTE_SIZE];

				seterr(
				    err, errlen,
				    "note signature line %zu repeats key %s with key ID %08" PRIx32,
				    lineno,
				    error_quote(q, sizeof(q), (const char *)b->name, b->name_len),
				    b->key_id);
				n->count = 0;
				return LOKET_E_MALFORMED;
			}
		}
		n->count++;
		s = nl + 1;
	}
	n->text = p;
	n->text_len = (size_t)split + 1;
	return 0;
}

int note_append_sig(char *buf, size_t cap, size_t *len, const uint8_t *name, size_t name_len,
                    uint32_t key_id, const uint8_t *sig, size_t sig_len)
{
	uint8_t raw[4 + NOTE_MAX_SIG];
	char b64[4 * ((4 + NOTE_MAX_SIG + 2) / 3) + 1];
	size_t b_len, need;

	if (!note_valid_name(name, name_len) || sig_len == 0 || sig_len > NOTE_MAX_SIG)
		return -EINVAL;
	raw[0] = (uint8_t)(key_id >> 24);
	raw[1] = (uint8_t)(key_id >> 16);
	raw[2] = (uint8_t)(key_id >> 8);
	raw[3] = (uint8_t)key_id;
	memcpy(raw + 4, sig, sig_len);
	sodium_bin2base64(b64, sizeof(b64), raw, 4 + sig_len, sodium_base64_VARIANT_ORIGINAL);
	b_len = strlen(b64);
	need = sizeof(em_dash) + name_len + 1 + b_len + 1;
	if (*len > cap || cap - *len < need)
		return -ENOSPC;
	memcpy(buf + *len, em_dash, sizeof(em_dash));
	*len += sizeof(em_dash);
	memcpy(buf + *len, name, name_len);
	*len += name_len;
	buf[(*len)++] = ' ';
	memcpy(buf + *len, b64, b_len);
	*len += b_len;
	buf[(*len)++] = '\n';
	return 0;
}

int note_find(const struct note *n, const uint8_t *name, size_t name_len, uint32_t key_id)
{
	for (size_t i = 0; i < n->count; i++)
		if (n->sig[i].key_id == key_id && n->sig[i].name_len == name_len &&
		    memcmp(n->sig[i].name, name, name_len) == 0)
			return (int)i;
	return -1;
}

int note_verify(const struct note *n, const uint8_t *name, size_t name_len, const uint8_t pub[32])
{
	int i = note_find(n, name, name_len, note_key_id(name, name_len, NOTE_TYPE_ED25519, pub));

	if (i < 0)
		return LOKET_E_NOT_FOUND;
	if (n->sig[i].len != crypto_sign_BYTES ||
	    crypto_sign_verify_detached(n->sig[i].sig, n->text, n->text_len, pub) != 0)
		return LOKET_E_BAD_SIGNATURE;
	return 0;
}

int note_cosig_message(const uint8_t *text, size_t text_len, uint64_t ts, uint8_t *buf, size_t cap,
                       size_t *len)
{
	char t[32];
	int tn;
	size_t need;

	if (ts > (uint64_t)INT64_MAX)
		return -EINVAL;
	tn = snprintf(t, sizeof(t), "%" PRIu64 "\n", ts);
	if (tn < 0 || (size_t)tn >= sizeof(t))
		return -EINVAL;
	need = sizeof(cosig_header) - 1 + (size_t)tn + text_len;
	if (need > cap)
		return -ENOSPC;
	memcpy(buf, cosig_header, sizeof(cosig_header) - 1);
	memcpy(buf + sizeof(cosig_header) - 1, t, (size_t)tn);
	memcpy(buf + sizeof(cosig_header) - 1 + (size_t)tn, text, text_len);
	*len = need;
	return 0;
}

int note_verify_cosig(const struct note *n, const uint8_t *name, size_t name_len,
                      const uint8_t pub[32], uint64_t *ts)
{
	uint8_t msg[sizeof(cosig_header) + 32 + NOTE_MAX_TEXT];
	size_t mlen;
	uint64_t t = 0;
	int i = note_find(n, name, name_len, note_key_id(name, name_len, NOTE_TYPE_COSIG, pub));

	if (i < 0)
		return LOKET_E_NOT_FOUND;
	if (n->sig[i].len != NOTE_COSIG_BYTES || n->text_len > NOTE_MAX_TEXT)
		return LOKET_E_BAD_SIGNATURE;
	for (int k = 0; k < 8; k++)
		t = t << 8 | n->sig[i].sig[k];
	if (note_cosig_message(n->text, n->text_len, t, msg, sizeof(msg), &mlen) != 0)
		return LOKET_E_BAD_SIGNATURE;
	if (crypto_sign_verify_detached(n->sig[i].sig + 8, msg, mlen, pub) != 0)
		return LOKET_E_BAD_SIGNATURE;
	*ts = t;
	return 0;
}

int note_origin_line(const char *federation, const uint8_t origin[32], struct note_checkpoint *c)
{
	size_t flen = strlen(federation);
	char hex[65];
	int n;

	if (flen == 0 || !note_valid_name((const uint8_t *)federation, flen) ||
	    memchr(federation, '/', flen) != NULL)
		return -EINVAL;
	sodium_bin2hex(hex, sizeof(hex), origin, 32);
	n = snprintf(c->origin, sizeof(c->origin), NOTE_ORIGIN_PREFIX "%s/%s", federation, hex);
	if (n < 0 || (size_t)n >= sizeof(c->origin))
		return -EINVAL;
	c->origin_len = (size_t)n;
	return 0;
}

int note_origin_parse(const char *line, size_t len, char *federation, size_t cap,
                      uint8_t origin[32])
{
	const size_t pre = sizeof(NOTE_ORIGIN_PREFIX) - 1;
	size_t flen, bin = 0;

	if (len < pre + 1 + 1 + 64 || memcmp(line, NOTE_ORIGIN_PREFIX, pre) != 0 ||
	    line[len - 65] != '/')
		return -EINVAL;
	flen = len - pre - 65;
	if (flen == 0 || flen >= cap || memchr(line + pre, '/', flen) != NULL ||
	    !note_valid_name((const uint8_t *)line + pre, flen))
		return -EINVAL;
	for (size_t i = len - 64; i < len; i++)
		if (!((line[i] >= '0' && line[i] <= '9') || (line[i] >= 'a' && line[i] <= 'f')))
			return -EINVAL;
	if (sodium_hex2bin(origin, 32, line + len - 64, 64, NULL, &bin, NULL) != 0 || bin != 32)
		return -EINVAL;
	memcpy(federation, line + pre, flen);
	federation[flen] = '\0';
	return 0;
}

int note_checkpoint_text(const struct note_checkpoint *c, char *buf, size_t cap, size_t *len)
{
	char b64[45];
	int n;

	sodium_bin2base64(b64, sizeof(b64), c->root, 32, sodium_base64_VARIANT_ORIGINAL);
	n = snprintf(buf, cap, "%.*s\n%" PRIu64 "\n%s\n", (int)c->origin_len, c->origin, c->size,
	             b64);
	if (n < 0 || (size_t)n >= cap)
		return -ENOSPC;
	*len = (size_t)n;
	return 0;
}

int note_checkpoint_parse(const uint8_t *text, size_t len, struct note_checkpoint *c, char *err,
                          size_t errlen)
{
	const uint8_t *line[3], *p = text, *end = text + len;
	size_t llen[3];
	char q[ERROR_QUOTE_SIZE];
	uint64_t size = 0;
	size_t bin;

	if (errlen > 0)
		err[0] = '\0';
	memset(c, 0, sizeof(*c));
	if (len > NOTE_MAX_TEXT) {
		seterr(err, errlen, "checkpoint of %zu bytes is longer than %u", len,
		       NOTE_MAX_TEXT);
		return LOKET_E_MALFORMED;
	}
	for (int i = 0; i < 3; i++) {
		const uint8_t *nl = p < end ? memchr(p, '\n', (size_t)(end - p)) : NULL;

		if (nl == NULL) {
			seterr(err, errlen, "checkpoint has %d lines ending in a newline, not 3",
			       i);
			return LOKET_E_MALFORMED;
		}
		line[i] = p;
		llen[i] = (size_t)(nl - p);
		p = nl + 1;
	}
	if (p != end) {
		seterr(err, errlen,
		       "checkpoint has a line after its root hash (extension lines are refused)");
		return LOKET_E_MALFORMED;
	}
	if (!note_valid_name(line[0], llen[0])) {
		seterr(err, errlen,
		       "checkpoint line 1: origin %s is not 1 to %u bytes of UTF-8 without "
		       "controls, spaces or '+'",
		       error_quote(q, sizeof(q), (const char *)line[0], llen[0]), NOTE_MAX_NAME);
		return LOKET_E_MALFORMED;
	}
	if (llen[1] == 0 || llen[1] > 19 || (llen[1] > 1 && line[1][0] == '0')) {
		seterr(
		    err, errlen,
		    "checkpoint line 2: tree size %s is not a decimal number without leading zeros",
		    error_quote(q, sizeof(q), (const char *)line[1], llen[1]));
		return LOKET_E_MALFORMED;
	}
	for (size_t i = 0; i < llen[1]; i++) {
		if (line[1][i] < '0' || line[1][i] > '9') {
			seterr(err, errlen,
			       "checkpoint line 2: tree size %s is not a decimal number",
			       error_quote(q, sizeof(q), (const char *)line[1], llen[1]));
			return LOKET_E_MALFORMED;
		}
		size = size * 10 + (uint64_t)(line[1][i] - '0');
	}
	if (size > (uint64_t)INT64_MAX) {
		seterr(err, errlen, "checkpoint line 2: tree size %s is beyond 2^63 - 1",
		       error_quote(q, sizeof(q), (const char *)line[1], llen[1]));
		return LOKET_E_MALFORMED;
	}
	if (llen[2] != 44 || b64_decode(line[2], llen[2], c->root, 32, &bin) != 0 || bin != 32) {
		seterr(err, errlen,
		       "checkpoint line 3: root hash %s is not canonical base64 of 32 bytes",
		       error_quote(q, sizeof(q), (const char *)line[2], llen[2]));
		memset(c->root, 0, 32);
		return LOKET_E_MALFORMED;
	}
	memcpy(c->origin, line[0], llen[0]);
	c->origin[llen[0]] = '\0';
	c->origin_len = llen[0];
	c->size = size;
	return 0;
}
