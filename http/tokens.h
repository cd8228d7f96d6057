/*
 * tokens: the bearer tokens of loket-http, from the file that [http]
 * tokens names. One token a line, "NAME SCOPE HASH":
 *
 *   partner-ris write:expert,project 5f2b...(64 hex digits)
 *   museum-ro   read                 0c9a...
 *
 * NAME is 1..64 of a-z, 0-9, '_' and '-', unique; SCOPE is "read" (every
 * GET), "write:*" (reads and writes of every collection) or
 * "write:COLL,COLL..." (reads, and writes of those collections); HASH is
 * the lowercase hex SHA-256 of the token. Blank lines and lines starting
 * with '#' are skipped. The file never holds a token itself: a token is 32
 * random bytes (base64url, made by `loket token add`), so a plain SHA-256
 * cannot be reversed by guessing, and it is cheap enough to check on every
 * request, which a password hash (crypto_pwhash, tens of ms) is not.
 *
 * The file is read again whenever its size, time or inode changes, so a
 * token added or removed applies to the next request without a restart. A
 * file that cannot be read or parsed denies every token until it is fixed
 * (logged once per change).
 */
#ifndef LOKET_HTTP_TOKENS_H
#define LOKET_HTTP_TOKENS_H

#include <stddef.h>

#define TOKENS_NAME_MAX  64u
#define TOKENS_SCOPE_MAX 1024u
#define TOKENS_MAX       1024u

struct tokens;

/* What a token grants, copied out for the request. */
struct token_grant {
	char name[TOKENS_NAME_MAX + 1];
	char scope[TOKENS_SCOPE_MAX + 1]; /* as the file writes it */
};

struct tokens *tokens_new(const char *path);
void tokens_free(struct tokens *t);

/* The grant of a presented token; LOKET_E_DENIED if it is none of the file's. */
int tokens_check(struct tokens *t, const char *token, size_t len, struct token_grant *out);

/* Whether the grant may write coll. */
int tokens_may_write(const struct token_grant *g, const char *coll);

/*
 * Parses one line of a token file into *out (its hash into hash). 0 for a
 * token, 1 for a blank or comment line, -EINVAL with a sentence otherwise.
 */
int tokens_parse_line(const char *line, size_t len, struct token_grant *out, unsigned char hash[32],
                      char *err, size_t errlen);

#endif
