/*
 * The map from loket error codes to HTTP. A code is never reused
 * (proto/error.h), so a partner may key on "code" or on "name"; the status
 * only says what kind of failure it is.
 */
#include "http/reply.h"

#include <errno.h>
#include <stdlib.h>

#include "proto/error.h"

static const struct {
	int code;
	const char *name;
	unsigned status;
} codes[] = {
    {LOKET_E_TRUNCATED, "TRUNCATED", 400},
    {LOKET_E_TRAILING, "TRAILING", 400},
    {LOKET_E_TOO_BIG, "TOO_BIG", 413},
    {LOKET_E_TOO_DEEP, "TOO_DEEP", 400},
    {LOKET_E_VERSION, "VERSION", 400},
    {LOKET_E_MALFORMED, "MALFORMED", 400},
    {LOKET_E_NOT_CANONICAL, "NOT_CANONICAL", 400},
    {LOKET_E_DUPLICATE_KEY, "DUPLICATE_KEY", 400},
    {LOKET_E_BAD_SIGNATURE, "BAD_SIGNATURE", 400},
    {LOKET_E_BAD_SEQ, "BAD_SEQ", 409},
    {LOKET_E_BAD_PREV, "BAD_PREV", 409},
    {LOKET_E_NOT_MEMBER, "NOT_MEMBER", 404},
    {LOKET_E_FORK, "FORK", 409},
    {LOKET_E_FEDERATION, "FEDERATION", 400},
    {LOKET_E_CONFIG, "CONFIG", 500},
    {LOKET_E_KEY_PERMS, "KEY_PERMS", 500},
    {LOKET_E_NOT_FOUND, "NOT_FOUND", 404},
    {LOKET_E_EXISTS, "EXISTS", 409},
    {LOKET_E_STORE, "STORE", 500},
    {LOKET_E_SCHEMA, "SCHEMA", 500},
    {LOKET_E_BAD_REQUEST, "BAD_REQUEST", 400},
    {LOKET_E_UNAVAILABLE, "UNAVAILABLE", 503},
    {LOKET_E_VERIFY, "VERIFY", 500},
    {LOKET_E_FROZEN, "FROZEN", 409},
    {LOKET_E_GONE, "GONE", 410},
    {LOKET_E_DENIED, "DENIED", 403},
    {LOKET_E_LOCKED, "LOCKED", 503},
    {LOKET_E_DAMAGED, "DAMAGED", 500},
    {LOKET_E_RATE_LIMITED, "RATE_LIMITED", 429},
    {-EINVAL, "EINVAL", 400},
    {-E2BIG, "E2BIG", 413},
    {-ENOMEM, "ENOMEM", 503},
};

unsigned reply_status(int code)
{
	for (size_t i = 0; i < sizeof(codes) / sizeof(codes[0]); i++)
		if (codes[i].code == code)
			return codes[i].status;
	return 500;
}

const char *reply_code_name(int code)
{
	for (size_t i = 0; i < sizeof(codes) / sizeof(codes[0]); i++)
		if (codes[i].code == code)
			return codes[i].name;
	return "UNKNOWN";
}

json_t *reply_error(int code, const char *message)
{
	json_t *e =
	    json_pack("{s:{s:i, s:s, s:s}}", "error", "code", code, "name", reply_code_name(code),
	              "message", message && message[0] ? message : loket_strerror(code));
	if (!e)
		abort();
	return e;
}
