/*
 * request: decodes a control request in three steps, each bounded before
 * the next allocates. The bytes are checked whole (value_check_rules: no
 * bin, finite floats, UTF-8, unique keys, depth), which allocates nothing;
 * the top-level keys are then read in place and held to the command's
 * table, so that a request with a wrong key is refused for that key
 * whatever its size; only then, and only within LOKET_MAX_MESSAGE_ELEMENTS
 * values, is it decoded into JSON and each key's type checked.
 */
#include "proto/request.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "proto/error.h"
#include "proto/limits.h"
#include "proto/mpread.h"
#include "proto/value.h"

#define STR(name)                                                                                  \
	{                                                                                          \
		name, REQUEST_STR, 0                                                               \
	}
#define STR_REQ(name)                                                                              \
	{                                                                                          \
		name, REQUEST_STR, 1                                                               \
	}
#define LIMIT                                                                                      \
	{                                                                                          \
		"limit", REQUEST_LIMIT, 0                                                          \
	}
#define KEYS(...)   ((const struct request_key[]){__VA_ARGS__})
#define N_KEYS(...) (sizeof(KEYS(__VA_ARGS__)) / sizeof(struct request_key))
#define COMMAND(c, ...)                                                                            \
	{                                                                                          \
		c, KEYS(__VA_ARGS__), N_KEYS(__VA_ARGS__)                                          \
	}

/* Every command of proto/CONTROL.md and its keys besides "cmd". */
static const struct request_command commands[] = {
    {"status", NULL, 0},
    COMMAND("put", {"ops", REQUEST_OPS, 1}),
    COMMAND("get", STR_REQ("coll"), STR_REQ("id"), STR("owner")),
    COMMAND("list", STR_REQ("coll"), STR("owner"), LIMIT),
    COMMAND("search", STR_REQ("text"), STR("coll"), LIMIT),
    COMMAND("log", STR("origin"), LIMIT),
    {"rebuild", NULL, 0},
    COMMAND("board", STR("status"), STR("topic"), STR("kind"), LIMIT),
    COMMAND("show", STR_REQ("coll"), STR_REQ("owner"), STR_REQ("id")),
    COMMAND("experts", STR("topic"), STR("org"), LIMIT),
    COMMAND("match", STR_REQ("owner"), STR_REQ("id"), LIMIT),
    COMMAND("query", STR_REQ("sql"), LIMIT),
    COMMAND("page", STR_REQ("coll"), STR("owner"), STR("after"), LIMIT),
    COMMAND("changes", STR("since"), STR("coll"), STR("owner"), LIMIT),
    COMMAND("backup", STR_REQ("file")),
    {"peers", NULL, 0},
    {"checkpoints", NULL, 0},
    {"reload", NULL, 0},
    COMMAND("resume", {"force", REQUEST_BOOL, 0}),
    {"rotate_key", NULL, 0},
};

const struct request_command *request_command(const char *cmd)
{
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
		if (strcmp(commands[i].cmd, cmd) == 0)
			return &commands[i];
	return NULL;
}

static const struct request_key *find_key(const struct request_command *c, const char *k,
                                          size_t len)
{
	for (size_t i = 0; i < c->n_keys; i++)
		if (strlen(c->keys[i].name) == len && memcmp(c->keys[i].name, k, len) == 0)
			return &c->keys[i];
	return NULL;
}

/* "unknown key "offset" in a list request (list takes "coll", "owner", "limit")". */
static int unknown_key(const struct request_command *c, const char *k, size_t len, char *err,
                       size_t errlen)
{
	char q[ERROR_QUOTE_SIZE];
	int n = snprintf(err, errlen, "unknown key %s in a %s request (%s takes ",
	                 error_quote(q, sizeof(q), k, len), c->cmd, c->cmd);
	size_t o = n > 0 ? (size_t)n : 0;
	if (c->n_keys == 0 && o < errlen)
		o += (size_t)snprintf(err + o, errlen - o, "no key but \"cmd\"");
	for (size_t i = 0; i < c->n_keys && o < errlen; i++)
		o += (size_t)snprintf(err + o, errlen - o, "%s\"%s\"", i ? ", " : "",
		                      c->keys[i].name);
	if (o < errlen)
		snprintf(err + o, errlen - o, ")");
	return LOKET_E_BAD_REQUEST;
}

/* The value of key in req, held to its type; absent or nil is "not given". */
static int check_type(const json_t *req, const struct request_key *k, char *err, size_t errlen)
{
	const json_t *v = json_object_get(req, k->name);
	if (!v || json_is_null(v)) {
		if (!k->required)
			return 0;
		snprintf(err, errlen, "request lacks \"%s\"", k->name);
		return LOKET_E_BAD_REQUEST;
	}
	switch (k->type) {
	case REQUEST_STR:
		if (json_is_string(v) && json_string_length(v) > 0 &&
		    strlen(json_string_value(v)) == json_string_length(v))
			return 0;
		snprintf(err, errlen, "\"%s\" must be a non-empty string", k->name);
		return LOKET_E_BAD_REQUEST;
	case REQUEST_LIMIT:
		if (json_is_integer(v) && json_integer_value(v) >= 1 &&
		    json_integer_value(v) <= REQUEST_MAX_LIMIT)
			return 0;
		snprintf(err, errlen, "\"%s\" must be an integer from 1 to %d", k->name,
		         REQUEST_MAX_LIMIT);
		return LOKET_E_BAD_REQUEST;
	case REQUEST_BOOL:
		if (json_is_boolean(v))
			return 0;
		snprintf(err, errlen, "\"%s\" must be true or false", k->name);
		return LOKET_E_BAD_REQUEST;
	case REQUEST_OPS:
		if (json_is_array(v))
			return 0;
		snprintf(err, errlen, "\"%s\" must be an array of 1 to %u ops", k->name,
		         LOKET_MAX_OPS);
		return LOKET_E_BAD_REQUEST;
	}
	return LOKET_E_BAD_REQUEST;
}

/*
 * Reads the top-level keys of a checked request in place: finds "cmd" and
 * holds every key to the command's table.
 */
static int check_keys(const uint8_t *p, size_t len, char *err, size_t errlen)
{
	struct mpread r = mpread_init(p, len);
	const struct request_command *c = NULL;
	size_t n;
	int rc = mpread_map(&r, &n);
	/* Keys were checked already; the walk just finds them. */
	const uint8_t *key_at[LOKET_MAX_UNSORTED_KEYS];
	size_t key_len[LOKET_MAX_UNSORTED_KEYS], n_seen = 0;
	for (size_t i = 0; rc == 0 && i < n; i++) {
		const uint8_t *k, *v;
		size_t klen, vlen;
		if ((rc = mpread_str(&r, &k, &klen)) != 0)
			break;
		v = r.p;
		if ((rc = value_check(r.p, (size_t)(r.end - r.p), LOKET_MAX_MESSAGE_DEPTH, 0, &vlen,
		                      NULL, 0)) != 0)
			break;
		r.p += vlen;
		if (klen == 3 && memcmp(k, "cmd", 3) == 0 && !(vlen == 1 && v[0] == 0xc0)) {
			struct mpread cr = mpread_init(v, vlen);
			const uint8_t *s;
			size_t slen;
			char name[32];
			if (mpread_str(&cr, &s, &slen) != 0 || slen == 0 || memchr(s, 0, slen)) {
				snprintf(err, errlen, "\"cmd\" must be a non-empty string");
				return LOKET_E_BAD_REQUEST;
			}
			/* A name longer than any command's is no command of the table. */
			if (slen < sizeof(name)) {
				memcpy(name, s, slen);
				name[slen] = '\0';
				c = request_command(name);
			}
			continue;
		}
		/* Held until "cmd" is found; more keys than any command has are wrong anyway. */
		if (n_seen < LOKET_MAX_UNSORTED_KEYS) {
			key_at[n_seen] = k;
			key_len[n_seen++] = klen;
		}
	}
	if (rc != 0) {
		snprintf(err, errlen, "the request cannot be read");
		return LOKET_E_MALFORMED; /* not after value_check passed: a bug if seen */
	}
	for (size_t i = 0; c && i < n_seen; i++)
		if (!find_key(c, (const char *)key_at[i], key_len[i]))
			return unknown_key(c, (const char *)key_at[i], key_len[i], err, errlen);
	return 0;
}

int request_decode(const uint8_t *p, size_t len, json_t **out, char *err, size_t errlen)
{
	size_t used = 0;
	int rc;
	*out = NULL;
	if (err && errlen)
		err[0] = '\0';
	if (len > LOKET_MAX_MESSAGE_BYTES) {
		snprintf(err, errlen, "request of %zu bytes is over the limit of %u bytes", len,
		         LOKET_MAX_MESSAGE_BYTES);
		return LOKET_E_TOO_BIG;
	}
	if (len == 0 || !p) {
		snprintf(err, errlen, "request is empty");
		return LOKET_E_TRUNCATED;
	}
	if (!((p[0] >= 0x80 && p[0] <= 0x8f) || p[0] == 0xde || p[0] == 0xdf)) {
		snprintf(err, errlen, "a request is one msgpack map (first byte 0x%02x)", p[0]);
		return LOKET_E_MALFORMED;
	}
	struct value_rules rules = {.max_depth = LOKET_MAX_MESSAGE_DEPTH,
	                            .flags = VALUE_FINITE | VALUE_NO_BIN};
	if ((rc = value_check_rules(p, len, &rules, &used, err, errlen)) != 0)
		return rc;
	if (used != len) {
		snprintf(err, errlen, "%zu bytes follow the request", len - used);
		return LOKET_E_TRAILING;
	}
	if ((rc = check_keys(p, len, err, errlen)) != 0)
		return rc;
	if (rules.elements > LOKET_MAX_MESSAGE_ELEMENTS) {
		snprintf(err, errlen, "request holds %zu values; at most %u are read",
		         rules.elements, LOKET_MAX_MESSAGE_ELEMENTS);
		return LOKET_E_TOO_BIG;
	}
	json_t *req = value_to_json(p, len);
	if (!req) {
		snprintf(err, errlen, "the request cannot be decoded");
		return -ENOMEM; /* checked bytes decode unless memory runs out */
	}
	const json_t *cmd = json_object_get(req, "cmd");
	if (!cmd || json_is_null(cmd)) {
		snprintf(err, errlen, "request lacks \"cmd\"");
		rc = LOKET_E_BAD_REQUEST;
		goto fail;
	}
	const struct request_command *c = request_command(json_string_value(cmd));
	for (size_t i = 0; c && i < c->n_keys; i++)
		if ((rc = check_type(req, &c->keys[i], err, errlen)) != 0)
			goto fail;
	*out = req;
	return 0;
fail:
	json_decref(req);
	return rc;
}
