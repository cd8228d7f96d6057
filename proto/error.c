/*
 * One sentence for every code a loket function can return: the project's
 * own LOKET_E_* codes from error.h and negative errno values. Logs, CLI
 * messages and control replies all print codes through loket_strerror, so a
 * code means the same words everywhere; and the one way a message quotes
 * the input it is about (error_quote), so input looks the same everywhere.
 */
#include "proto/error.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

const char *loket_strerror(int code)
{
	switch (code) {
	case 0:
		return "Success";
	case LOKET_E_TRUNCATED:
		return "Input ends inside a value";
	case LOKET_E_TRAILING:
		return "Bytes are left over after the value";
	case LOKET_E_TOO_BIG:
		return "A size or count is beyond its limit";
	case LOKET_E_TOO_DEEP:
		return "Values are nested beyond the limit";
	case LOKET_E_VERSION:
		return "Unknown format version";
	case LOKET_E_MALFORMED:
		return "Wrong type or shape of data";
	case LOKET_E_NOT_CANONICAL:
		return "Encoding is not the canonical one";
	case LOKET_E_DUPLICATE_KEY:
		return "A map names the same key twice";
	case LOKET_E_BAD_SIGNATURE:
		return "Signature does not verify";
	case LOKET_E_BAD_SEQ:
		return "Sequence number is zero or leaves a gap";
	case LOKET_E_BAD_PREV:
		return "Previous hash does not link to the chain";
	case LOKET_E_NOT_MEMBER:
		return "Origin or key is not in the roster";
	case LOKET_E_FORK:
		return "A second changeset exists for the same origin and sequence number";
	case LOKET_E_FEDERATION:
		return "Changeset belongs to another federation";
	case LOKET_E_CONFIG:
		return "Configuration is invalid";
	case LOKET_E_KEY_PERMS:
		return "Key file is readable by others";
	case LOKET_E_NOT_FOUND:
		return "No such entity, origin or file";
	case LOKET_E_EXISTS:
		return "Refusing to overwrite what exists";
	case LOKET_E_STORE:
		return "The store reported an error";
	case LOKET_E_SCHEMA:
		return "Store schema is newer than this program or unknown";
	case LOKET_E_BAD_REQUEST:
		return "Control request is malformed";
	case LOKET_E_UNAVAILABLE:
		return "Daemon is not reachable";
	case LOKET_E_VERIFY:
		return "Verification found problems";
	case LOKET_E_FROZEN:
		return "Origin is frozen by a fork proof";
	case LOKET_E_GONE:
		return "Cursor is older than what the node keeps";
	case LOKET_E_DENIED:
		return "Access denied";
	case LOKET_E_LOCKED:
		return "The data directory is in use by another process";
	case LOKET_E_DAMAGED:
		return "The store is damaged";
	case LOKET_E_RATE_LIMITED:
		return "Too many requests";
	default:
		break;
	}
	/* Codes appended to error.h later land here until they get a sentence. */
	if (code >= LOKET_E_FIRST && code < LOKET_E_LAST)
		return "Unknown loket error";
	if (code < 0 && code > LOKET_E_FIRST)
		return strerror(-code);
	return "Unknown error code";
}

/*
 * The length of the UTF-8 character at s (len bytes available) if it is
 * well formed and printable, U+00A0 or above; else 0, and it is escaped a
 * byte at a time: C1 controls, stray and overlong bytes, surrogates and
 * code points past U+10FFFF.
 */
static size_t printable_utf8(const unsigned char *s, size_t len)
{
	size_t n;
	uint32_t cp;
	if (s[0] >= 0xc2 && s[0] <= 0xdf) {
		n = 2;
		cp = s[0] & 0x1fu;
	} else if (s[0] >= 0xe0 && s[0] <= 0xef) {
		n = 3;
		cp = s[0] & 0x0fu;
	} else if (s[0] >= 0xf0 && s[0] <= 0xf4) {
		n = 4;
		cp = s[0] & 0x07u;
	} else {
		return 0;
	}
	if (len < n)
		return 0;
	for (size_t k = 1; k < n; k++) {
		if ((s[k] & 0xc0) != 0x80)
			return 0;
		cp = cp << 6 | (s[k] & 0x3fu);
	}
	if (cp < 0xa0 || (n == 3 && cp < 0x800) || (n == 4 && cp < 0x10000) || cp > 0x10ffff ||
	    (cp >= 0xd800 && cp <= 0xdfff))
		return 0;
	return n;
}

const char *error_quote(char *buf, size_t buflen, const char *s, size_t len)
{
	static const char hex[] = "0123456789abcdef";
	const unsigned char *u = (const unsigned char *)s;
	size_t i = 0, o = 0;

	/* Reserve room for the closing quote, "..." and the NUL. */
	if (buflen < 8) {
		if (buflen > 0)
			buf[0] = '\0';
		return buf;
	}
	buf[o++] = '"';
	while (i < len) {
		unsigned char c = u[i];
		char esc[4];
		const char *from = esc;
		size_t in = 1, n;
		if (c == '"' || c == '\\') {
			esc[0] = '\\';
			esc[1] = (char)c;
			n = 2;
		} else if (c >= 0x20 && c < 0x7f) {
			esc[0] = (char)c;
			n = 1;
		} else if ((in = printable_utf8(u + i, len - i)) > 0) {
			from = s + i;
			n = in;
		} else {
			in = 1;
			esc[0] = '\\';
			esc[1] = 'x';
			esc[2] = hex[c >> 4];
			esc[3] = hex[c & 15];
			n = 4;
		}
		/* A character that would cross the bound is left out whole. */
		if (i + in > ERROR_QUOTE_MAX || o + n + 5 > buflen)
			break;
		memcpy(buf + o, from, n);
		o += n;
		i += in;
	}
	buf[o++] = '"';
	if (i < len) {
		memcpy(buf + o, "...", 3);
		o += 3;
	}
	buf[o] = '\0';
	return buf;
}

const char *error_quote_str(char *buf, size_t buflen, const char *s)
{
	return error_quote(buf, buflen, s, strlen(s));
}

const char *error_quotef(char *buf, size_t buflen, const char *fmt, ...)
{
	/* One byte more than a quote shows, so that a longer text is cut with "...". */
	char text[ERROR_QUOTE_MAX + 2];
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(text, sizeof(text), fmt, ap);
	va_end(ap);
	size_t len = n < 0 ? 0 : (size_t)n < sizeof(text) ? (size_t)n : sizeof(text) - 1;
	return error_quote(buf, buflen, text, len);
}
