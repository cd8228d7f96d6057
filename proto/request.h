/*
 * request: the door of the control socket (proto/CONTROL.md). Decodes one
 * control request and holds it to the protocol before any handler sees it:
 * one msgpack map within the size, depth and value bounds of proto/limits.h,
 * text as str (never bin), finite numbers, keys once each, and for every
 * command of the protocol exactly the keys that command takes, each of its
 * type. Every refusal is a sentence naming the key or the path at fault.
 * The table of commands here is the protocol's; a command another module
 * serves that the table does not name yet passes with the generic checks
 * only.
 */
#ifndef LOKET_REQUEST_H
#define LOKET_REQUEST_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

/* What a request key holds. Every optional key may also be nil. */
enum request_type {
	REQUEST_STR,   /* a non-empty str without NUL bytes */
	REQUEST_LIMIT, /* an integer from 1 to REQUEST_MAX_LIMIT */
	REQUEST_OPS,   /* an array (a put's ops, read by daemon/put_ops.c) */
	REQUEST_BOOL,  /* true or false */
};

#define REQUEST_MAX_LIMIT 100000

struct request_key {
	const char *name;
	enum request_type type;
	int required;
};

struct request_command {
	const char *cmd;
	const struct request_key *keys; /* n_keys of them, "cmd" not among them */
	size_t n_keys;
};

/* The protocol's command of that name, or NULL. */
const struct request_command *request_command(const char *cmd);

/*
 * Decodes and checks one request of len bytes. Returns 0 and the request in
 * *out (a new reference; "cmd" is a string in it), or a LOKET_E_* code and
 * a sentence in err: LOKET_E_TOO_BIG (bytes or values beyond the bounds),
 * LOKET_E_BAD_REQUEST (a key unknown, missing or of the wrong type), and
 * value_check's codes for bytes that are not a well-formed message.
 */
int request_decode(const uint8_t *p, size_t len, json_t **out, char *err, size_t errlen);

#endif
