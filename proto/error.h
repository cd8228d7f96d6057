/*
 * Error codes shared by every loket module. Functions return 0 on success
 * and a negative code on failure: either a negative errno value (-ENOMEM,
 * -EINVAL, ...) or one of the codes below. Codes are only ever appended, so
 * a number once printed in a log keeps its meaning.
 */
#ifndef LOKET_ERROR_H
#define LOKET_ERROR_H

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
	LOKET_E_LOCKED,                    /* another process holds the data directory */
	LOKET_E_DAMAGED,                   /* the store failed its integrity check */
	LOKET_E_LAST,
};

/* A sentence for any code this project returns, errno values included. */
const char *loket_strerror(int code);

#endif
