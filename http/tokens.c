/*
 * The token file, parsed into a table that is replaced whole when the file
 * changes. Checking hashes the presented token once and compares it with
 * every entry in constant time (sodium_memcmp), so the time taken says
 * nothing about how close a guess came.
 */
#include "http/tokens.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <sodium.h>

#include "common/log.h"
#include "proto/changeset.h"
#include "proto/error.h"

#define TOKENS_LINE_MAX 4096u

struct token_entry {
	struct token_grant grant;
	unsigned char hash[32];
};

struct tokens {
	char path[4096];
	pthread_mutex_t lock;
	struct stat seen; /* of the file as last read; st_ino 0 before */
	int loaded;
	struct token_entry *entries;
	size_t n;
};

struct tokens *tokens_new(const char *path)
{
	struct tokens *t = calloc(1, sizeof(*t));

	if (!t)
		abort();
	snprintf(t->path, sizeof(t->path), "%s", path);
	pthread_mutex_init(&t->lock, NULL);
	return t;
}

void tokens_free(struct tokens *t)
{
	if (!t)
		return;
	free(t->entries);
	pthread_mutex_destroy(&t->lock);
	free(t);
}

static int valid_scope(const char *s, size_t len)
{
	if (len == 4 && !memcmp(s, "read", 4))
		return 1;
	if (len < 7 || memcmp(s, "write:", 6) != 0)
		return 0;
	if (len == 7 && s[6] == '*')
		return 1;
	/* COLL,COLL...: each a valid collection name. */
	size_t start = 6;
	for (size_t i = 6; i <= len; i++) {
		if (i == len || s[i] == ',') {
			if (!changeset_valid_coll(s + start, i - start))
				return 0;
			start = i + 1;
		}
	}
	return 1;
}

/* The next word of line from *at, skipping blanks. */
static size_t word(const char *line, size_t len, size_t *at, const char **w)
{
	size_t i = *at, n = 0;

	while (i < len && (line[i] == ' ' || line[i] == '\t'))
		i++;
	*w = line + i;
	while (i + n < len && line[i + n] != ' ' && line[i + n] != '\t')
		n++;
	*at = i + n;
	return n;
}

int tokens_parse_line(const char *line, size_t len, struct token_grant *out, unsigned char hash[32],
                      char *err, size_t errlen)
{
	const char *name, *scope, *hex, *rest;
	size_t at = 0, nlen, slen, hlen, bin_len;
	char q[ERROR_QUOTE_SIZE];

	if (len > 0 && line[len - 1] == '\r')
		len--;
	nlen = word(line, len, &at, &name);
	if (nlen == 0 || name[0] == '#')
		return 1;
	slen = word(line, len, &at, &scope);
	hlen = word(line, len, &at, &hex);
	if (word(line, len, &at, &rest) != 0 || hlen == 0) {
		snprintf(err, errlen, "expected NAME SCOPE HASH, got %s",
		         error_quote(q, sizeof(q), line, len));
		return -EINVAL;
	}
	if (nlen > TOKENS_NAME_MAX ||
	    strspn(name, "abcdefghijklmnopqrstuvwxyz0123456789_-") < nlen) {
		snprintf(err, errlen,
		         "invalid token name %s (use 1 to %u of a-z, 0-9, '_' and '-')",
		         error_quote(q, sizeof(q), name, nlen), TOKENS_NAME_MAX);
		return -EINVAL;
	}
	if (slen > TOKENS_SCOPE_MAX || !valid_scope(scope, slen)) {
		snprintf(err, errlen, "invalid scope %s (use read, write:* or write:COLL,COLL...)",
		         error_quote(q, sizeof(q), scope, slen));
		return -EINVAL;
	}
	if (hlen != 64 || sodium_hex2bin(hash, 32, hex, hlen, NULL, &bin_len, NULL) != 0 ||
	    bin_len != 32) {
		snprintf(err, errlen, "invalid hash %s (expected 64 hex digits of SHA-256)",
		         error_quote(q, sizeof(q), hex, hlen));
		return -EINVAL;
	}
	memcpy(out->name, name, nlen);
	out->name[nlen] = '\0';
	memcpy(out->scope, scope, slen);
	out->scope[slen] = '\0';
	return 0;
}

/* Reads the file into a new table; on failure the table is empty and the reason logged. */
static void reload(struct tokens *t, const struct stat *st)
{
	FILE *f = fopen(t->path, "re");
	char *line = NULL, err[512];
	size_t cap = 0, n = 0;
	ssize_t len;
	unsigned lineno = 0;
	struct token_entry *entries = NULL;

	free(t->entries);
	t->entries = NULL;
	t->n = 0;
	t->seen = *st;
	t->loaded = 1;
	if (!f) {
		log_error("http: tokens %s: cannot open: %s; every request is refused", t->path,
		          strerror(errno));
		return;
	}
	while ((len = getline(&line, &cap, f)) >= 0) {
		struct token_entry e;
		lineno++;
		if (len > 0 && line[len - 1] == '\n')
			len--;
		int rc =
		    (size_t)len > TOKENS_LINE_MAX
		        ? (snprintf(err, sizeof(err), "line is longer than %u bytes",
		                    TOKENS_LINE_MAX),
		           -EINVAL)
		        : tokens_parse_line(line, (size_t)len, &e.grant, e.hash, err, sizeof(err));
		if (rc == 1)
			continue;
		if (rc == 0 && n == TOKENS_MAX) {
			snprintf(err, sizeof(err), "more than %u tokens", TOKENS_MAX);
			rc = -EINVAL;
		}
		for (size_t i = 0; rc == 0 && i < n; i++)
			if (!strcmp(entries[i].grant.name, e.grant.name)) {
				snprintf(err, sizeof(err), "duplicate token name %s", e.grant.name);
				rc = -EINVAL;
			}
		if (rc < 0) {
			log_error("http: %s:%u: %s; every request is refused until it is fixed",
			          t->path, lineno, err);
			free(entries);
			free(line);
			fclose(f);
			return;
		}
		entries = reallocarray(entries, n + 1, sizeof(*entries));
		if (!entries)
			abort();
		entries[n++] = e;
	}
	free(line);
	fclose(f);
	t->entries = entries;
	t->n = n;
	log_info("http: %zu tokens from %s", n, t->path);
}

int tokens_check(struct tokens *t, const char *token, size_t len, struct token_grant *out)
{
	unsigned char hash[32];
	struct stat st;
	int rc = LOKET_E_DENIED;

	crypto_hash_sha256(hash, (const unsigned char *)token, len);
	pthread_mutex_lock(&t->lock);
	if (stat(t->path, &st) < 0)
		memset(&st, 0, sizeof(st));
	if (!t->loaded || st.st_ino != t->seen.st_ino || st.st_size != t->seen.st_size ||
	    st.st_mtim.tv_sec != t->seen.st_mtim.tv_sec ||
	    st.st_mtim.tv_nsec != t->seen.st_mtim.tv_nsec)
		reload(t, &st);
	for (size_t i = 0; i < t->n; i++)
		if (sodium_memcmp(hash, t->entries[i].hash, 32) == 0) {
			*out = t->entries[i].grant;
			rc = 0;
		}
	pthread_mutex_unlock(&t->lock);
	return rc;
}

int tokens_may_write(const struct token_grant *g, const char *coll)
{
	const char *s = g->scope;
	size_t clen = strlen(coll);

	if (strncmp(s, "write:", 6) != 0)
		return 0;
	s += 6;
	if (!strcmp(s, "*"))
		return 1;
	while (*s) {
		size_t n = strcspn(s, ",");
		if (n == clen && !memcmp(s, coll, n))
			return 1;
		s += n + (s[n] == ',');
	}
	return 0;
}
