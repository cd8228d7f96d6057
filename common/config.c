/*
 * The node configuration parser. The core (config_parse_begin / _line /
 * _finish) does no I/O: it takes one line at a time, so the fuzz harness and
 * the tests drive exactly the code the daemon runs. config_load is the thin
 * reader around it that bounds line length and supplies the directory that
 * relative paths are resolved against. Every rejection is a sentence of the
 * form "FILE:LINE: reason" that quotes the offending input (error_quote), so
 * that an administrator can find and fix the line without reading this file.
 */
#include "common/config.h"

#include <arpa/inet.h>
#include <assert.h>
#include <errno.h>
#include <libgen.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <arpa/inet.h>
#include <sys/stat.h>

#include <sodium.h>

#include "common/log.h"
#include "proto/error.h"

#define CONFIG_LINE_MAX     4096u           /* bytes of one line, newline excluded */
#define CONFIG_FILE_MAX     (1024u * 1024u) /* bytes of the file: 1,024 members fit many times */
#define CONFIG_MEMBERS_MAX  1024u
#define CONFIG_SYNC_MIN     1ul
#define CONFIG_SYNC_MAX     3600ul
#define CONFIG_SYNC_DEFAULT 10u

enum section {
	SECTION_NONE,
	SECTION_NODE,
	SECTION_MEMBER,
	SECTION_HTTP,
};

/* Keys of [node]; a bit each in node_seen. */
enum node_key {
	NODE_NAME,
	NODE_FEDERATION,
	NODE_LISTEN,
	NODE_DATA,
	NODE_KEY,
	NODE_SYNC_INTERVAL,
	NODE_LOG_LEVEL,
	NODE_METRICS,
};

/* Keys of [member NAME]; a bit each in member_seen. */
enum member_key {
	MEMBER_KEY,
	MEMBER_ENDPOINT,
	MEMBER_REVOKE,
};

static const char *const node_keys[] = {
    [NODE_NAME] = "name",
    [NODE_FEDERATION] = "federation",
    [NODE_LISTEN] = "listen",
    [NODE_DATA] = "data",
    [NODE_KEY] = "key",
    [NODE_SYNC_INTERVAL] = "sync_interval",
    [NODE_LOG_LEVEL] = "log_level",
    [NODE_METRICS] = "metrics",
};

/* Keys of [http]; a bit each in http_seen. */
enum http_key {
	HTTP_LISTEN,
	HTTP_TOKENS,
	HTTP_TIMEOUT,
	HTTP_RATE,
	HTTP_BURST,
	HTTP_CONNECTIONS,
	HTTP_CLIENT_CONNECTIONS,
	HTTP_STREAM_MAX,
};

static const char *const http_keys[] = {
    [HTTP_LISTEN] = "listen",
    [HTTP_TOKENS] = "tokens",
    [HTTP_TIMEOUT] = "timeout",
    [HTTP_RATE] = "rate",
    [HTTP_BURST] = "burst",
    [HTTP_CONNECTIONS] = "connections",
    [HTTP_CLIENT_CONNECTIONS] = "client_connections",
    [HTTP_STREAM_MAX] = "stream_max",
};

static const char *const member_keys[] = {
    [MEMBER_KEY] = "key",
    [MEMBER_ENDPOINT] = "endpoint",
    [MEMBER_REVOKE] = "revoke",
};

struct config_parser {
	char file[PATH_MAX];     /* names the input in messages */
	char base_dir[PATH_MAX]; /* "" leaves relative paths as written */
	unsigned line;
	bool failed;
	char first_error[1024]; /* repeated by finish after a failed line */

	enum section section;
	bool node_seen_section;
	unsigned node_seen;   /* bits of enum node_key */
	unsigned member_seen; /* bits of enum member_key, current member */
	char data_raw[PATH_MAX];
	char key_raw[PATH_MAX];
	bool http_seen_section;
	unsigned http_seen; /* bits of enum http_key */
	char http_tokens_raw[PATH_MAX];

	struct config *cfg;
	size_t members_cap;
	unsigned *member_lines; /* line of each member's section header */
};

static void *xrealloc(void *p, size_t n, size_t size)
{
	void *q = reallocarray(p, n, size);
	if (!q) {
		log_error("out of memory");
		abort();
	}
	return q;
}

static void *xcalloc(size_t n, size_t size)
{
	void *p = calloc(n, size);
	if (!p) {
		log_error("out of memory");
		abort();
	}
	return p;
}

/* Copies s (len bytes) into dst, NUL-terminated; -ENAMETOOLONG if it does not fit. */
static int copy_bytes(char *dst, size_t dstsize, const char *s, size_t len)
{
	if (len >= dstsize)
		return -ENAMETOOLONG;
	memcpy(dst, s, len);
	dst[len] = '\0';
	return 0;
}

/* Formats "FILE:LINE: reason" into err, remembers it, and returns LOKET_E_CONFIG. */
static int fail(struct config_parser *cp, char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static int fail(struct config_parser *cp, char *err, size_t errlen, const char *fmt, ...)
{
	char reason[sizeof(cp->first_error)];
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(reason, sizeof(reason), fmt, ap);
	va_end(ap);
	if (n < 0)
		reason[0] = '\0';

	/* If this is cut, it is cut at the end: file and line always come through. */
	char msg[sizeof(cp->first_error)];
	if (cp->line > 0)
		n = snprintf(msg, sizeof(msg), "%s:%u: %s", cp->file, cp->line, reason);
	else
		n = snprintf(msg, sizeof(msg), "%s: %s", cp->file, reason);
	if (n < 0)
		msg[0] = '\0';

	if (!cp->failed) {
		cp->failed = true;
		memcpy(cp->first_error, msg, sizeof(msg));
	}
	if (err && errlen > 0)
		snprintf(err, errlen, "%s", msg);
	return LOKET_E_CONFIG;
}

static bool is_space(char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\v' || c == '\f';
}

static void trim(const char **s, size_t *len)
{
	while (*len > 0 && is_space(**s)) {
		(*s)++;
		(*len)--;
	}
	while (*len > 0 && is_space((*s)[*len - 1]))
		(*len)--;
}

/* Node, member and federation names: [a-z0-9_-], 1..max bytes. */
static bool valid_name(const char *s, size_t len, size_t max)
{
	if (len == 0 || len > max)
		return false;
	for (size_t i = 0; i < len; i++) {
		char c = s[i];
		if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '-'))
			return false;
	}
	return true;
}

/* "HOST:PORT" for [node] metrics: an IPv4 or bracketed IPv6 literal, a port 1..65535. */
static bool valid_metrics(const char *v, size_t len)
{
	char buf[CONFIG_ENDPOINT_MAX], host[64];
	if (len == 0 || len >= sizeof(buf))
		return false;
	memcpy(buf, v, len);
	buf[len] = '\0';
	char *colon = strrchr(buf, ':'), *end;
	if (!colon || colon == buf || (size_t)(colon - buf) >= sizeof(host) || colon[1] < '0' ||
	    colon[1] > '9')
		return false;
	errno = 0;
	unsigned long port = strtoul(colon + 1, &end, 10);
	if (*end || errno || port == 0 || port > 65535)
		return false;
	size_t hl = (size_t)(colon - buf);
	memcpy(host, buf, hl);
	host[hl] = '\0';
	unsigned char addr[16];
	if (hl > 2 && host[0] == '[' && host[hl - 1] == ']') {
		host[hl - 1] = '\0';
		return inet_pton(AF_INET6, host + 1, addr) == 1;
	}
	return inet_pton(AF_INET, host, addr) == 1;
}

/* A DNS name (RFC 1123): labels of letters, digits and '-', not at a label's ends. */
static bool valid_hostname(const char *s, size_t len)
{
	size_t label = 0;
	if (len == 0 || len > 253)
		return false;
	for (size_t i = 0; i <= len; i++) {
		char c = i < len ? s[i] : '.';
		if (c == '.') {
			if (label == 0 || label > 63 || s[i - 1] == '-')
				return false;
			label = 0;
		} else if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		           (c >= '0' && c <= '9') || (c == '-' && label > 0)) {
			label++;
		} else {
			return false;
		}
	}
	return true;
}

/*
 * An endpoint we dial or bind: tcp://HOST:PORT, where HOST is an IPv4
 * address, an IPv6 address in brackets, a host name (or, to bind, an
 * interface name, which reads like one) or, for listen only, '*'; PORT is
 * 1..65535. Anything else is a sentence in why: ZeroMQ would take "tcp://
 * 256.1.1.1:7400" as a name to look up, and a port above 65535 wraps.
 */
static bool valid_endpoint(const char *s, size_t len, bool listen, char *why, size_t whylen)
{
	static const char prefix[] = "tcp://";
	char host[CONFIG_ENDPOINT_MAX], q[ERROR_QUOTE_SIZE];
	snprintf(why, whylen, "expected tcp://HOST:PORT, at most %u bytes",
	         CONFIG_ENDPOINT_MAX - 1);
	if (len <= sizeof(prefix) - 1 || len >= CONFIG_ENDPOINT_MAX ||
	    memcmp(s, prefix, sizeof(prefix) - 1) != 0)
		return false;
	const char *h = s + sizeof(prefix) - 1, *end = s + len;
	const char *colon = NULL;
	for (const char *c = h; c < end; c++)
		if (*c == ':')
			colon = c;
	if (!colon || colon == h || colon + 1 == end) {
		snprintf(why, whylen, "expected tcp://HOST:PORT");
		return false;
	}
	size_t hlen = (size_t)(colon - h), plen = (size_t)(end - colon - 1);
	unsigned long port = 0;
	for (size_t i = 0; i < plen; i++) {
		char c = colon[1 + i];
		if (c < '0' || c > '9' || plen > 5) {
			snprintf(why, whylen, "port %s is not a number from 1 to 65535",
			         error_quote(q, sizeof(q), colon + 1, plen));
			return false;
		}
		port = port * 10 + (unsigned long)(c - '0');
	}
	if (port < 1 || port > 65535) {
		snprintf(why, whylen, "port %lu is out of range (1..65535)", port);
		return false;
	}
	memcpy(host, h, hlen);
	host[hlen] = '\0';
	error_quote(q, sizeof(q), h, hlen);
	if (hlen == 1 && host[0] == '*') {
		if (listen)
			return true;
		snprintf(why, whylen, "host \"*\" is for listen only; name the host to dial");
		return false;
	}
	uint8_t addr[16];
	if (host[0] == '[') {
		if (hlen > 2 && host[hlen - 1] == ']') {
			host[hlen - 1] = '\0';
			if (inet_pton(AF_INET6, host + 1, addr) == 1)
				return true;
		}
		snprintf(why, whylen, "host %s is not an IPv6 address", q);
		return false;
	}
	/* Digits and dots only: an IPv4 address, never a name to look up. */
	if (strspn(host, "0123456789.") == hlen) {
		if (inet_pton(AF_INET, host, addr) == 1)
			return true;
		snprintf(why, whylen, "host %s is not an IPv4 address", q);
		return false;
	}
	if (!valid_hostname(host, hlen)) {
		snprintf(why, whylen, "host %s is not a host name, IPv4 address or [IPv6] address",
		         q);
		return false;
	}
	return true;
}

/* Joins base_dir and a relative path; absolute paths and an empty base stay as written. */
static int resolve_path(const struct config_parser *cp, const char *raw, char *out, size_t outsize)
{
	int n;
	if (raw[0] == '/' || cp->base_dir[0] == '\0')
		n = snprintf(out, outsize, "%s", raw);
	else if (strcmp(raw, ".") == 0)
		n = snprintf(out, outsize, "%s", cp->base_dir);
	else
		n = snprintf(out, outsize, "%s/%s", cp->base_dir, raw);
	if (n < 0 || (size_t)n >= outsize)
		return -ENAMETOOLONG;
	return 0;
}

static struct config_member *current_member(struct config_parser *cp)
{
	assert(cp->section == SECTION_MEMBER && cp->cfg->n_members > 0);
	return &cp->cfg->members[cp->cfg->n_members - 1];
}

/* A member section ends at the next header or at the end of input: it must have had a key. */
static int end_section(struct config_parser *cp, char *err, size_t errlen)
{
	if (cp->section != SECTION_MEMBER || (cp->member_seen & (1u << MEMBER_KEY)))
		return 0;
	const struct config_member *m = current_member(cp);
	unsigned saved = cp->line;
	cp->line = cp->member_lines[cp->cfg->n_members - 1];
	int rc = fail(cp, err, errlen, "[member %s] has no key", m->name);
	cp->line = saved;
	return rc;
}

static int parse_section(struct config_parser *cp, const char *s, size_t len, char *err,
                         size_t errlen)
{
	char q[ERROR_QUOTE_SIZE];
	error_quote(q, sizeof(q), s, len);

	if (len < 2 || s[len - 1] != ']')
		return fail(cp, err, errlen,
		            "malformed section header %s (expected [node] or "
		            "[member NAME])",
		            q);
	const char *in = s + 1;
	size_t inlen = len - 2;
	trim(&in, &inlen);

	/* The first word names the section; a member's name follows it. */
	size_t wlen = 0;
	while (wlen < inlen && !is_space(in[wlen]))
		wlen++;
	const char *arg = in + wlen;
	size_t arglen = inlen - wlen;
	trim(&arg, &arglen);

	int rc = end_section(cp, err, errlen);
	if (rc < 0)
		return rc;

	if (wlen == 4 && memcmp(in, "node", 4) == 0) {
		if (arglen > 0)
			return fail(cp, err, errlen,
			            "malformed section header %s ([node] takes no "
			            "name)",
			            q);
		if (cp->node_seen_section)
			return fail(cp, err, errlen, "duplicate section %s", q);
		cp->node_seen_section = true;
		cp->section = SECTION_NODE;
		return 0;
	}
	if (wlen == 4 && memcmp(in, "http", 4) == 0) {
		if (arglen > 0)
			return fail(cp, err, errlen,
			            "malformed section header %s ([http] takes no name)", q);
		if (cp->http_seen_section)
			return fail(cp, err, errlen, "duplicate section %s", q);
		cp->http_seen_section = true;
		cp->section = SECTION_HTTP;
		return 0;
	}
	if (!(wlen == 6 && memcmp(in, "member", 6) == 0))
		return fail(cp, err, errlen, "unknown section %s", q);

	if (arglen == 0)
		return fail(cp, err, errlen, "malformed section header %s (expected [member NAME])",
		            q);
	char qname[ERROR_QUOTE_SIZE];
	error_quote(qname, sizeof(qname), arg, arglen);
	if (!valid_name(arg, arglen, LOKET_MAX_NAME_LEN))
		return fail(cp, err, errlen,
		            "invalid member name %s (use 1 to %u of a-z, 0-9, '_' and '-')", qname,
		            LOKET_MAX_NAME_LEN);

	struct config *cfg = cp->cfg;
	for (size_t i = 0; i < cfg->n_members; i++) {
		if (strlen(cfg->members[i].name) == arglen &&
		    memcmp(cfg->members[i].name, arg, arglen) == 0)
			return fail(cp, err, errlen, "duplicate member %s (first at line %u)",
			            qname, cp->member_lines[i]);
	}
	if ((cp->node_seen & (1u << NODE_NAME)) && strlen(cfg->name) == arglen &&
	    memcmp(cfg->name, arg, arglen) == 0)
		return fail(cp, err, errlen, "member %s has the node's own name", qname);
	if (cfg->n_members >= CONFIG_MEMBERS_MAX)
		return fail(cp, err, errlen, "too many members (at most %u)", CONFIG_MEMBERS_MAX);

	if (cfg->n_members == cp->members_cap) {
		size_t cap = cp->members_cap ? cp->members_cap * 2 : 8;
		cfg->members = xrealloc(cfg->members, cap, sizeof(*cfg->members));
		cp->member_lines = xrealloc(cp->member_lines, cap, sizeof(*cp->member_lines));
		cp->members_cap = cap;
	}
	struct config_member *m = &cfg->members[cfg->n_members];
	memset(m, 0, sizeof(*m));
	rc = copy_bytes(m->name, sizeof(m->name), arg, arglen);
	assert(rc == 0); /* valid_name bounded the length */
	cp->member_lines[cfg->n_members] = cp->line;
	cfg->n_members++;
	cp->member_seen = 0;
	cp->section = SECTION_MEMBER;
	return 0;
}

static int lookup(const char *const *keys, size_t n, const char *k, size_t klen)
{
	for (size_t i = 0; i < n; i++) {
		if (strlen(keys[i]) == klen && memcmp(keys[i], k, klen) == 0)
			return (int)i;
	}
	return -1;
}

static int parse_node_key(struct config_parser *cp, enum node_key key, const char *v, size_t vlen,
                          const char *qv, char *err, size_t errlen)
{
	struct config *cfg = cp->cfg;
	char buf[PATH_MAX];

	switch (key) {
	case NODE_NAME:
		if (!valid_name(v, vlen, LOKET_MAX_NAME_LEN))
			return fail(cp, err, errlen,
			            "invalid name %s (use 1 to %u of a-z, 0-9, '_' and '-')", qv,
			            LOKET_MAX_NAME_LEN);
		copy_bytes(buf, sizeof(buf), v, vlen);
		if (config_member_by_name(cfg, buf))
			return fail(cp, err, errlen, "name %s is also the name of a [member]", qv);
		copy_bytes(cfg->name, sizeof(cfg->name), v, vlen);
		return 0;
	case NODE_FEDERATION:
		if (!valid_name(v, vlen, LOKET_MAX_FEDERATION_LEN))
			return fail(cp, err, errlen,
			            "invalid federation %s (use 1 to %u of a-z, 0-9, '_' and '-')",
			            qv, LOKET_MAX_FEDERATION_LEN);
		copy_bytes(cfg->federation, sizeof(cfg->federation), v, vlen);
		return 0;
	case NODE_LISTEN:
		if (!valid_endpoint(v, vlen, true, buf, sizeof(buf)))
			return fail(cp, err, errlen, "invalid listen %s (%s)", qv, buf);
		copy_bytes(cfg->listen, sizeof(cfg->listen), v, vlen);
		return 0;
	case NODE_METRICS:
		if (!valid_metrics(v, vlen))
			return fail(
			    cp, err, errlen,
			    "invalid metrics %s (expected HOST:PORT with an IPv4 address, or "
			    "[IPv6]:PORT, and a port of 1 to 65535)",
			    qv);
		copy_bytes(cfg->metrics, sizeof(cfg->metrics), v, vlen);
		return 0;
	case NODE_DATA:
	case NODE_KEY: {
		char *raw = key == NODE_DATA ? cp->data_raw : cp->key_raw;
		if (copy_bytes(raw, PATH_MAX, v, vlen) < 0 ||
		    resolve_path(cp, raw, buf, sizeof(buf)) < 0)
			return fail(cp, err, errlen, "path %s is too long", qv);
		return 0;
	}
	case NODE_SYNC_INTERVAL: {
		/* strtoul would accept "-5", " 5" and "+5"; digits only. */
		if (copy_bytes(buf, 32, v, vlen) < 0 || v[0] < '0' || v[0] > '9')
			return fail(cp, err, errlen, "sync_interval %s is not a number of seconds",
			            qv);
		char *end;
		errno = 0;
		unsigned long s = strtoul(buf, &end, 10);
		if (*end != '\0')
			return fail(cp, err, errlen, "sync_interval %s is not a number of seconds",
			            qv);
		if (errno == ERANGE || s < CONFIG_SYNC_MIN || s > CONFIG_SYNC_MAX)
			return fail(cp, err, errlen, "sync_interval %s is out of range (%lu..%lu)",
			            qv, CONFIG_SYNC_MIN, CONFIG_SYNC_MAX);
		cfg->sync_interval_s = (unsigned)s;
		return 0;
	}
	case NODE_LOG_LEVEL: {
		int level = -1;
		if (copy_bytes(buf, 16, v, vlen) == 0)
			level = log_level_parse(buf);
		if (level < 0)
			return fail(cp, err, errlen,
			            "unknown log_level %s (use error, warn, info or debug)", qv);
		cfg->log_level = level;
		return 0;
	}
	}
	assert(!"unreachable");
	return LOKET_E_CONFIG;
}

/*
 * [http] listen: HOST:PORT where HOST is an IPv4 address, "localhost" or
 * an IPv6 address in brackets, and PORT 1..65535; what the address means
 * is the HTTP server's to find out when it binds.
 */
static bool valid_http_listen(const char *s, size_t len)
{
	size_t colon = len;

	if (len == 0 || len >= CONFIG_HTTP_LISTEN_MAX)
		return false;
	while (colon > 0 && s[colon - 1] != ':')
		colon--;
	if (colon < 2 || colon == len || len - colon > 5)
		return false;
	unsigned long port = 0;
	for (size_t i = colon; i < len; i++) {
		if (s[i] < '0' || s[i] > '9')
			return false;
		port = port * 10 + (unsigned long)(s[i] - '0');
	}
	if (port < 1 || port > 65535)
		return false;
	size_t hlen = colon - 1;
	if (s[0] == '[')
		return hlen > 2 && s[hlen - 1] == ']' &&
		       strspn(s + 1, "0123456789abcdefABCDEF:.") == hlen - 2;
	return strspn(s, "0123456789.") == hlen || (hlen == 9 && memcmp(s, "localhost", 9) == 0);
}

/* The bounds of loket-http's clients: a number each, range-checked. */
static int parse_http_bound(struct config_parser *cp, enum http_key key, const char *v, size_t vlen,
                            const char *qv, char *err, size_t errlen)
{
	struct config *cfg = cp->cfg;
	const struct {
		unsigned *to, min, max;
		const char *unit;
	} bounds[] = {
	    [HTTP_RATE] = {&cfg->http_rate, 1, 100000, "requests a second"},
	    [HTTP_BURST] = {&cfg->http_burst, 1, 100000, "requests"},
	    [HTTP_CONNECTIONS] = {&cfg->http_connections, 1, 1024, "connections"},
	    [HTTP_CLIENT_CONNECTIONS] = {&cfg->http_client_connections, 1, 1024, "connections"},
	    [HTTP_STREAM_MAX] = {&cfg->http_stream_max_s, 1, 86400, "seconds"},
	};
	unsigned long n = 0;
	size_t i = 0;

	assert(key < sizeof(bounds) / sizeof(bounds[0]) && bounds[key].to);
	while (i < vlen && i < 6 && v[i] >= '0' && v[i] <= '9')
		n = n * 10 + (unsigned long)(v[i++] - '0');
	if (i != vlen || n < bounds[key].min || n > bounds[key].max)
		return fail(cp, err, errlen, "%s %s in [http] is not a number of %s from %u to %u",
		            http_keys[key], qv, bounds[key].unit, bounds[key].min, bounds[key].max);
	*bounds[key].to = (unsigned)n;
	return 0;
}

static int parse_http_key(struct config_parser *cp, enum http_key key, const char *v, size_t vlen,
                          const char *qv, char *err, size_t errlen)
{
	struct config *cfg = cp->cfg;
	char buf[PATH_MAX];

	switch (key) {
	case HTTP_LISTEN:
		if (!valid_http_listen(v, vlen))
			return fail(cp, err, errlen,
			            "invalid listen %s in [http] (expected ADDRESS:PORT, like "
			            "127.0.0.1:8470 or [::1]:8470)",
			            qv);
		copy_bytes(cfg->http_listen, sizeof(cfg->http_listen), v, vlen);
		return 0;
	case HTTP_TOKENS:
		if (copy_bytes(cp->http_tokens_raw, PATH_MAX, v, vlen) < 0 ||
		    resolve_path(cp, cp->http_tokens_raw, buf, sizeof(buf)) < 0)
			return fail(cp, err, errlen, "path %s is too long", qv);
		return 0;
	case HTTP_TIMEOUT: {
		unsigned long t = 0;
		size_t i = 0;
		while (i < vlen && i < 5 && v[i] >= '0' && v[i] <= '9')
			t = t * 10 + (unsigned long)(v[i++] - '0');
		if (i != vlen || t < CONFIG_HTTP_TIMEOUT_MIN || t > CONFIG_HTTP_TIMEOUT_MAX)
			return fail(cp, err, errlen,
			            "timeout %s in [http] is not a number of seconds from %u to %u",
			            qv, CONFIG_HTTP_TIMEOUT_MIN, CONFIG_HTTP_TIMEOUT_MAX);
		cfg->http_timeout_s = (unsigned)t;
		return 0;
	}
	case HTTP_RATE:
	case HTTP_BURST:
	case HTTP_CONNECTIONS:
	case HTTP_CLIENT_CONNECTIONS:
	case HTTP_STREAM_MAX:
		return parse_http_bound(cp, key, v, vlen, qv, err, errlen);
	}
	assert(!"unreachable");
	return LOKET_E_CONFIG;
}

static int parse_member_key(struct config_parser *cp, enum member_key key, const char *v,
                            size_t vlen, const char *qv, char *err, size_t errlen)
{
	struct config_member *m = current_member(cp);
	struct config *cfg = cp->cfg;
	char buf[512];
	uint8_t curve[32];
	static const uint8_t zero[32];

	switch (key) {
	case MEMBER_KEY:
		if (vlen > 48 || copy_bytes(buf, sizeof(buf), v, vlen) < 0 ||
		    config_key_decode(buf, m->key) < 0)
			return fail(cp, err, errlen,
			            "invalid key %s in [member %s] (expected 44 characters of "
			            "base64 for 32 bytes)",
			            qv, m->name);
		/*
		 * CURVE keys are derived from it: a key that is no point of the curve
		 * (or of small order, as all zeros) could never authenticate.
		 */
		if (memcmp(m->key, zero, sizeof(zero)) == 0 ||
		    crypto_sign_ed25519_pk_to_curve25519(curve, m->key) != 0) {
			memset(m->key, 0, sizeof(m->key));
			return fail(cp, err, errlen,
			            "key %s of [member %s] is not a valid Ed25519 public key", qv,
			            m->name);
		}
		m->line = cp->line;
		for (size_t i = 0; i + 1 < cfg->n_members; i++) {
			if (memcmp(cfg->members[i].key, m->key, sizeof(m->key)) == 0) {
				memset(m->key, 0, sizeof(m->key));
				return fail(cp, err, errlen,
				            "key %s of [member %s] is already the key of [member "
				            "%s]",
				            qv, m->name, cfg->members[i].name);
			}
		}
		return 0;
	case MEMBER_ENDPOINT:
		if (!valid_endpoint(v, vlen, false, buf, sizeof(buf)))
			return fail(cp, err, errlen, "invalid endpoint %s in [member %s] (%s)", qv,
			            m->name, buf);
		copy_bytes(m->endpoint, sizeof(m->endpoint), v, vlen);
		return 0;
	case MEMBER_REVOKE: {
		struct config_revoke *r;
		unsigned long long after = 0;
		size_t i = 51, digits = 0;
		if (m->n_revoked == CONFIG_REVOKE_MAX)
			return fail(cp, err, errlen, "more than %u revoke lines in [member %s]",
			            CONFIG_REVOKE_MAX, m->name);
		r = &m->revoked[m->n_revoked];
		/* BASE64 after SEQ: 44 characters, " after ", 1..19 digits. */
		if (vlen < 52 || vlen > 70 || memcmp(v + 44, " after ", 7) != 0 ||
		    copy_bytes(buf, sizeof(buf), v, 44) < 0 || config_key_decode(buf, r->key) < 0)
			return fail(cp, err, errlen,
			            "invalid revoke %s in [member %s] (expected KEY after SEQ: 44"
			            " characters of base64, the word after, a seq)",
			            qv, m->name);
		for (; i < vlen && v[i] >= '0' && v[i] <= '9' && digits < 19; i++, digits++)
			after = after * 10 + (unsigned long long)(v[i] - '0');
		if (i != vlen || digits == 0 || after > INT64_MAX)
			return fail(cp, err, errlen,
			            "invalid seq in revoke %s of [member %s] (expected 0 to %lld)",
			            qv, m->name, (long long)INT64_MAX);
		r->after = after;
		m->n_revoked++;
		return 0;
	}
	}
	assert(!"unreachable");
	return LOKET_E_CONFIG;
}

int config_parse_begin(struct config_parser **out, const char *file, const char *base_dir)
{
	*out = NULL;
	struct config_parser *cp = xcalloc(1, sizeof(*cp));
	int rc = 0;
	if (!file)
		file = "<config>";
	if (!base_dir)
		base_dir = "";
	if (copy_bytes(cp->file, sizeof(cp->file), file, strlen(file)) < 0 ||
	    copy_bytes(cp->base_dir, sizeof(cp->base_dir), base_dir, strlen(base_dir)) < 0) {
		rc = -ENAMETOOLONG;
		goto cleanup;
	}
	cp->cfg = xcalloc(1, sizeof(*cp->cfg));
	cp->cfg->sync_interval_s = CONFIG_SYNC_DEFAULT;
	cp->cfg->log_level = LOG_LEVEL_INFO;
	copy_bytes(cp->cfg->federation, sizeof(cp->cfg->federation), "default", 7);
	copy_bytes(cp->data_raw, sizeof(cp->data_raw), ".", 1);
	copy_bytes(cp->key_raw, sizeof(cp->key_raw), "node.key", 8);
	copy_bytes(cp->cfg->http_listen, sizeof(cp->cfg->http_listen), "127.0.0.1:8470", 14);
	copy_bytes(cp->http_tokens_raw, sizeof(cp->http_tokens_raw), "http.tokens", 11);
	cp->cfg->http_timeout_s = CONFIG_HTTP_TIMEOUT_DEFAULT;
	cp->cfg->http_rate = CONFIG_HTTP_RATE_DEFAULT;
	cp->cfg->http_burst = CONFIG_HTTP_BURST_DEFAULT;
	cp->cfg->http_connections = CONFIG_HTTP_CONNECTIONS_DEFAULT;
	cp->cfg->http_client_connections = CONFIG_HTTP_CLIENT_CONNECTIONS_DEFAULT;
	cp->cfg->http_stream_max_s = CONFIG_HTTP_STREAM_MAX_DEFAULT;
	*out = cp;
	cp = NULL;
cleanup:
	free(cp);
	return rc;
}

/* A ';' or '#' at the start of a line, or after white space, starts a comment. */
static size_t strip_comment(const char *s, size_t len)
{
	for (size_t i = 0; i < len; i++) {
		if ((s[i] == ';' || s[i] == '#') && (i == 0 || is_space(s[i - 1])))
			return i;
	}
	return len;
}

int config_parse_line(struct config_parser *cp, const char *line, size_t len, char *err,
                      size_t errlen)
{
	cp->line++;
	if (len > CONFIG_LINE_MAX)
		return fail(cp, err, errlen, "line is too long (%zu bytes, at most %u)", len,
		            CONFIG_LINE_MAX);
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)line[i];
		if ((c < 0x20 && c != '\t' && c != '\r') || c == 0x7f) {
			char q[ERROR_QUOTE_SIZE];
			error_quote(q, sizeof(q), line, len);
			return fail(cp, err, errlen, "control character in line %s", q);
		}
	}

	const char *s = line;
	/* Editors on some systems start a file with a UTF-8 byte order mark. */
	if (cp->line == 1 && len >= 3 && memcmp(s, "\xef\xbb\xbf", 3) == 0) {
		s += 3;
		len -= 3;
	}
	len = strip_comment(s, len);
	trim(&s, &len);
	if (len == 0)
		return 0;
	if (s[0] == '[')
		return parse_section(cp, s, len, err, errlen);

	char q[ERROR_QUOTE_SIZE];
	error_quote(q, sizeof(q), s, len);
	const char *eq = memchr(s, '=', len);
	if (!eq)
		return fail(cp, err, errlen, "malformed line %s (expected KEY = VALUE)", q);
	const char *k = s;
	size_t klen = (size_t)(eq - s);
	const char *v = eq + 1;
	size_t vlen = len - klen - 1;
	trim(&k, &klen);
	trim(&v, &vlen);
	if (klen == 0)
		return fail(cp, err, errlen, "malformed line %s (expected KEY = VALUE)", q);

	char qk[ERROR_QUOTE_SIZE];
	char qv[ERROR_QUOTE_SIZE];
	error_quote(qk, sizeof(qk), k, klen);
	error_quote(qv, sizeof(qv), v, vlen);

	if (cp->section == SECTION_NONE)
		return fail(cp, err, errlen, "key %s outside a section (start with [node])", qk);

	if (cp->section == SECTION_NODE) {
		int key = lookup(node_keys, sizeof(node_keys) / sizeof(node_keys[0]), k, klen);
		if (key < 0)
			return fail(cp, err, errlen, "unknown key %s in [node]", qk);
		if (cp->node_seen & (1u << key))
			return fail(cp, err, errlen, "duplicate key %s in [node]", qk);
		if (vlen == 0)
			return fail(cp, err, errlen, "empty value for %s in [node]", qk);
		int rc = parse_node_key(cp, (enum node_key)key, v, vlen, qv, err, errlen);
		if (rc == 0)
			cp->node_seen |= 1u << key;
		return rc;
	}

	if (cp->section == SECTION_HTTP) {
		int key = lookup(http_keys, sizeof(http_keys) / sizeof(http_keys[0]), k, klen);
		if (key < 0)
			return fail(cp, err, errlen, "unknown key %s in [http]", qk);
		if (cp->http_seen & (1u << key))
			return fail(cp, err, errlen, "duplicate key %s in [http]", qk);
		if (vlen == 0)
			return fail(cp, err, errlen, "empty value for %s in [http]", qk);
		int rc = parse_http_key(cp, (enum http_key)key, v, vlen, qv, err, errlen);
		if (rc == 0)
			cp->http_seen |= 1u << key;
		return rc;
	}

	const struct config_member *m = current_member(cp);
	int key = lookup(member_keys, sizeof(member_keys) / sizeof(member_keys[0]), k, klen);
	if (key < 0)
		return fail(cp, err, errlen, "unknown key %s in [member %s]", qk, m->name);
	if (key != MEMBER_REVOKE && (cp->member_seen & (1u << key)))
		return fail(cp, err, errlen, "duplicate key %s in [member %s]", qk, m->name);
	if (vlen == 0)
		return fail(cp, err, errlen, "empty value for %s in [member %s]", qk, m->name);
	int rc = parse_member_key(cp, (enum member_key)key, v, vlen, qv, err, errlen);
	if (rc == 0)
		cp->member_seen |= 1u << key;
	return rc;
}

int config_parse_finish(struct config_parser *cp, struct config **out, char *err, size_t errlen)
{
	int rc = 0;
	*out = NULL;

	if (cp->failed) {
		/* A line was rejected: the config is incomplete whatever follows. */
		if (err && errlen > 0)
			snprintf(err, errlen, "%s", cp->first_error);
		rc = LOKET_E_CONFIG;
		goto cleanup;
	}
	rc = end_section(cp, err, errlen);
	if (rc < 0)
		goto cleanup;

	cp->line = 0; /* what is missing is missing from the whole file */
	if (!(cp->node_seen & (1u << NODE_NAME))) {
		rc = fail(cp, err, errlen, "no name in [node] (add: name = NODE_NAME)");
		goto cleanup;
	}
	if (resolve_path(cp, cp->data_raw, cp->cfg->data, sizeof(cp->cfg->data)) < 0 ||
	    resolve_path(cp, cp->key_raw, cp->cfg->key, sizeof(cp->cfg->key)) < 0 ||
	    resolve_path(cp, cp->http_tokens_raw, cp->cfg->http_tokens,
	                 sizeof(cp->cfg->http_tokens)) < 0) {
		rc = fail(cp, err, errlen, "a resolved path is too long");
		goto cleanup;
	}
	*out = cp->cfg;
	cp->cfg = NULL;
cleanup:
	config_free(cp->cfg);
	free(cp->member_lines);
	free(cp);
	return rc;
}

/* Reads one line of at most CONFIG_LINE_MAX bytes; 1 at end of file, <0 on error. */
static int read_line(FILE *f, char *buf, size_t bufsize, size_t *len, bool *too_long)
{
	size_t n = 0;
	int c;
	*len = 0;
	*too_long = false;
	while ((c = getc(f)) != EOF && c != '\n') {
		if (n == bufsize) {
			/* Refused at once: the rest of the line is never read. */
			*too_long = true;
			return 0;
		}
		buf[n++] = (char)c;
	}
	if (ferror(f))
		return errno ? -errno : -EIO;
	*len = n;
	if (c == EOF && n == 0 && !*too_long)
		return 1;
	return 0;
}

int config_load(const char *path, struct config **out, char *err, size_t errlen)
{
	struct config_parser *cp = NULL;
	FILE *f = NULL;
	char *buf = NULL;
	char dir[PATH_MAX];
	char base[PATH_MAX];
	int rc;

	*out = NULL;
	f = fopen(path, "re");
	if (!f) {
		rc = -errno;
		snprintf(err, errlen, "%s: cannot open: %s", path, strerror(errno));
		goto cleanup;
	}
	/* A device or a FIFO could be read forever: only a file of bounded size. */
	struct stat st;
	if (fstat(fileno(f), &st) != 0) {
		rc = -errno;
		snprintf(err, errlen, "%s: cannot stat: %s", path, strerror(errno));
		goto cleanup;
	}
	if (!S_ISREG(st.st_mode)) {
		rc = LOKET_E_CONFIG;
		snprintf(err, errlen, "%s: not a regular file", path);
		goto cleanup;
	}
	if (st.st_size > CONFIG_FILE_MAX) {
		rc = LOKET_E_CONFIG;
		snprintf(err, errlen, "%s: %lld bytes; a configuration is at most %u bytes", path,
		         (long long)st.st_size, CONFIG_FILE_MAX);
		goto cleanup;
	}
	if (copy_bytes(dir, sizeof(dir), path, strlen(path)) < 0) {
		rc = -ENAMETOOLONG;
		snprintf(err, errlen, "%s: path is too long", path);
		goto cleanup;
	}
	/* Relative paths inside mean relative to this file, wherever we run from. */
	if (!realpath(dirname(dir), base)) {
		rc = -errno;
		snprintf(err, errlen, "%s: cannot resolve its directory: %s", path,
		         strerror(errno));
		goto cleanup;
	}
	rc = config_parse_begin(&cp, path, base);
	if (rc < 0) {
		snprintf(err, errlen, "%s: path is too long", path);
		goto cleanup;
	}

	buf = xcalloc(1, CONFIG_LINE_MAX);
	for (;;) {
		size_t len;
		bool too_long;
		rc = read_line(f, buf, CONFIG_LINE_MAX, &len, &too_long);
		if (rc < 0) {
			snprintf(err, errlen, "%s:%u: read error: %s", path, cp->line + 1,
			         strerror(-rc));
			goto cleanup;
		}
		if (rc == 1)
			break;
		if (too_long) {
			cp->line++;
			rc = fail(cp, err, errlen, "line is longer than %u bytes", CONFIG_LINE_MAX);
			goto cleanup;
		}
		rc = config_parse_line(cp, buf, len, err, errlen);
		if (rc < 0)
			goto cleanup;
	}

	struct config_parser *p = cp;
	cp = NULL;
	rc = config_parse_finish(p, out, err, errlen);
	if (rc < 0)
		goto cleanup;
	/* Record where the file is, absolutely, for reloads after a chdir. */
	char *slash = strrchr(path, '/');
	const char *name = slash ? slash + 1 : path;
	int n = snprintf((*out)->path, sizeof((*out)->path), "%s/%s",
	                 strcmp(base, "/") == 0 ? "" : base, name);
	if (n < 0 || (size_t)n >= sizeof((*out)->path)) {
		config_free(*out);
		*out = NULL;
		rc = -ENAMETOOLONG;
		snprintf(err, errlen, "%s: path is too long", path);
		goto cleanup;
	}
cleanup:
	if (cp) {
		struct config *unused;
		config_parse_finish(cp, &unused, NULL, 0);
	}
	free(buf);
	if (f)
		fclose(f);
	return rc;
}

void config_free(struct config *cfg)
{
	if (!cfg)
		return;
	free(cfg->members);
	free(cfg);
}

int config_check_self(const struct config *cfg, const uint8_t self[32], char *err, size_t errlen)
{
	for (size_t i = 0; i < cfg->n_members; i++) {
		const struct config_member *m = &cfg->members[i];
		char b64[45];
		if (memcmp(m->key, self, 32) != 0)
			continue;
		config_key_encode(self, b64);
		snprintf(err, errlen,
		         "%s:%u: key \"%s\" of [member %s] is this node's own key (from %s)",
		         cfg->path[0] ? cfg->path : "<config>", m->line, b64, m->name, cfg->key);
		return LOKET_E_CONFIG;
	}
	return 0;
}

const struct config_member *config_member_by_key(const struct config *cfg, const uint8_t key[32])
{
	for (size_t i = 0; i < cfg->n_members; i++) {
		if (memcmp(cfg->members[i].key, key, 32) == 0)
			return &cfg->members[i];
	}
	return NULL;
}

const struct config_member *config_member_by_name(const struct config *cfg, const char *name)
{
	for (size_t i = 0; i < cfg->n_members; i++) {
		if (strcmp(cfg->members[i].name, name) == 0)
			return &cfg->members[i];
	}
	return NULL;
}

const struct config_revoke *config_revoked(const struct config *cfg, const uint8_t origin[32],
                                           const uint8_t key[32], uint64_t seq)
{
	const struct config_member *m = config_member_by_key(cfg, origin);
	for (size_t i = 0; m && i < m->n_revoked; i++)
		if (seq > m->revoked[i].after && memcmp(m->revoked[i].key, key, 32) == 0)
			return &m->revoked[i];
	return NULL;
}

int config_key_revoked(const struct config *cfg, const uint8_t origin[32], const uint8_t key[32])
{
	const struct config_member *m = config_member_by_key(cfg, origin);
	for (size_t i = 0; m && i < m->n_revoked; i++)
		if (memcmp(m->revoked[i].key, key, 32) == 0)
			return 1;
	return 0;
}

int config_key_decode(const char *b64, uint8_t key[32])
{
	uint8_t tmp[32];
	size_t len;
	const char *end;
	if (strlen(b64) != 44)
		return LOKET_E_MALFORMED;
	if (sodium_base642bin(tmp, sizeof(tmp), b64, 44, NULL, &len, &end,
	                      sodium_base64_VARIANT_ORIGINAL) != 0 ||
	    len != 32 || end != b64 + 44)
		return LOKET_E_MALFORMED;
	memcpy(key, tmp, 32);
	return 0;
}

void config_key_encode(const uint8_t key[32], char out[45])
{
	sodium_bin2base64(out, 45, key, 32, sodium_base64_VARIANT_ORIGINAL);
}
