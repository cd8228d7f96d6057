/*
 * Error codes shared by every loket module. Functions return 0 on success
 * and a negative code on failure: either a negative errno value (-ENOMEM,
 * -EINVAL, ...) or one of the codes below. Codes are only ever appended, so
 * a number once printed in a log keeps its meaning.
 *
 * Messages quote input one way. Whatever a message names as wrong that
 * came from outside (an argument, a value or path from a file, a request, a
 * peer's changeset) is written by error_quote: in double quotes, '"' and
 * '\' as \" and \\, each byte of a control character (C0, DEL, C1) or of
 * what is not UTF-8 as \xNN, at most ERROR_QUOTE_MAX bytes of it and then
 * "..." after the closing quote:
 *
 *	unknown key "titel" in [node]
 *	cannot open store "/srv/loket/store.db": Permission denied
 *	field "status" must be one of open, closed (got "a\"b\x0a")
 *
 * The quotes show where the input starts and ends, even when it is empty or
 * ends in a space, and "..." outside them is never taken for input; the
 * escapes keep a hostile newline from forging a log line and an escape byte
 * from reaching a terminal, while printable text (Zoë, Université) stays
 * as it was typed; the bound keeps one bad line from filling a log. Names
 * of keys and fields are quoted the same way, the program's own ("coll" in
 * a request) as well as the input's, so one kind of word always has one
 * look.
 *
 * Left bare: where it happened, when a message opens with it before ": "
 * (FILE:LINE as compilers print it, a path as err(3) does, a subcommand,
 * module or member name) or names a config section as the file writes it
 * ([member NAME]), because eyes and tools look for it in that form; numbers,
 * and the hex and base64 the program encodes itself, which hold nothing to
 * escape; lists of what the program accepts (a character in one keeps C's
 * '_').
 */
#ifndef LOKET_ERROR_H
#define LOKET_ERROR_H

#include <stddef.h>

enum loket_error {
	LOKET_E_FIRST = -10000,
	LOKET_E_TRUNCATED = LOKET_E_FIRST, /* input ends inside a value */
	LOKET_E_TRAILING,                  /* bytes left after the value */
	LOKET_E_TOO_BIG,                   /* a size or count beyond a limit */
	LOKET_E_TOO_DEEP,                  /* nesting beyond the limit */
	LOKET_E_VERSION,                   /* unknown format version */
	LOKET_E_MALFORMED,                 /* wrong type or shape */
	LOKET_E_NOT_CANONICAL,             /* would not re-encode identically */
	LOKET_E_DUPLICATE_KEY,             /* a map names a key twice */
	LOKET_E_BAD_SIGNATURE,             /* Ed25519 signature does not verify */
	LOKET_E_BAD_SEQ,                   /* seq 0, or a gap */
	LOKET_E_BAD_PREV,                  /* prev does not link to the chain */
	LOKET_E_NOT_MEMBER,                /* origin or key not in the roster */
	LOKET_E_FORK,                      /* a second changeset for an (origin, seq) */
	LOKET_E_FEDERATION,                /* changeset of another federation */
	LOKET_E_CONFIG,                    /* configuration is invalid */
	LOKET_E_KEY_PERMS,                 /* key file readable by others */
	LOKET_E_NOT_FOUND,                 /* no such entity, origin or file */
	LOKET_E_EXISTS,                    /* refusing to overwrite */
	LOKET_E_STORE,                     /* SQLite reported an error */
	LOKET_E_SCHEMA,                    /* store schema is newer or unknown */
	LOKET_E_BAD_REQUEST,               /* control request malformed */
	LOKET_E_UNAVAILABLE,               /* daemon not reachable */
	LOKET_E_VERIFY,                    /* verification found problems */
	LOKET_E_FROZEN,                    /* origin frozen by a fork proof */
	LOKET_E_GONE,                      /* a cursor older than what the node keeps */
	LOKET_E_DENIED,                    /* no valid credentials, or not allowed */
	LOKET_E_LOCKED,                    /* another process holds the data directory */
	LOKET_E_DAMAGED,                   /* the store failed its integrity check */
	LOKET_E_RATE_LIMITED,              /* a client asked more often than it may */
	LOKET_E_LAST,
};

/* A sentence for any code this project returns, errno values included. */
const char *loket_strerror(int code);

/* Input bytes a message quotes at most: every name, key and collection whole. */
#define ERROR_QUOTE_MAX 80u

/* Room for any quote: each byte as \xNN, two quotes, "..." and the NUL. */
#define ERROR_QUOTE_SIZE (4u * ERROR_QUOTE_MAX + 6u)

/*
 * Writes s (len bytes, NUL or not) into buf as the rule above quotes input,
 * and returns buf, so that a call can be an argument of snprintf. A buf of
 * ERROR_QUOTE_SIZE bytes always holds it; a smaller one gets a shorter quote
 * that still ends in "...".
 */
const char *error_quote(char *buf, size_t buflen, const char *s, size_t len);

/* error_quote of a NUL-terminated string. */
const char *error_quote_str(char *buf, size_t buflen, const char *s);

/* error_quote of what fmt makes, for input in parts such as COLL/OWNER/ID. */
const char *error_quotef(char *buf, size_t buflen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#endif
