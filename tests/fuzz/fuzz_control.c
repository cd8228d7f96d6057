/*
 * Fuzzes the control request decoder (proto/request.c) with arbitrary
 * bytes, as a local client could send them. A request it accepts must be
 * what every handler may assume without checking again: an object with a
 * non-empty "cmd" string and, for a command of the protocol's table, no key
 * but its own, each of its type, the required ones there; a request it
 * refuses must say why, and leave nothing behind. What it accepts must
 * also be what the generic decoder accepts (bounds and all), and encode
 * again.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "proto/error.h"
#include "proto/limits.h"
#include "proto/request.h"
#include "proto/value.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_accepted(const json_t *req)
{
	const char *cmd = json_string_value(json_object_get(req, "cmd"));
	if (!json_is_object(req) || !cmd || !cmd[0])
		abort();
	const struct request_command *c = request_command(cmd);
	if (!c)
		return;
	const char *key;
	const json_t *v;
	json_object_foreach((json_t *)req, key, v)
	{
		if (strcmp(key, "cmd") == 0)
			continue;
		const struct request_key *k = NULL;
		for (size_t i = 0; i < c->n_keys; i++)
			if (strcmp(c->keys[i].name, key) == 0)
				k = &c->keys[i];
		if (!k)
			abort(); /* a key the command does not take */
		if (json_is_null(v))
			continue;
		if (k->type == REQUEST_STR &&
		    (!json_is_string(v) || json_string_length(v) == 0 ||
		     strlen(json_string_value(v)) != json_string_length(v)))
			abort();
		if (k->type == REQUEST_LIMIT && (!json_is_integer(v) || json_integer_value(v) < 1 ||
		                                 json_integer_value(v) > REQUEST_MAX_LIMIT))
			abort();
		if (k->type == REQUEST_OPS && !json_is_array(v))
			abort();
	}
	for (size_t i = 0; i < c->n_keys; i++) {
		const json_t *r = json_object_get(req, c->keys[i].name);
		if (c->keys[i].required && (!r || json_is_null(r)))
			abort();
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char err[512];
	json_t *req = NULL;
	int rc = request_decode(data, size, &req, err, sizeof(err));
	if (rc != 0) {
		if (req || rc > 0 || !err[0])
			abort();
		return 0;
	}
	check_accepted(req);
	/*
	 * Within the generic decoder's bounds, which sync messages meet too,
	 * and decoded alike (compared encoded: json_equal stops at a NUL in a
	 * key, which a request may hold).
	 */
	json_t *again = NULL;
	if (value_decode_message(data, size, &again, err, sizeof(err)) != 0)
		abort();
	msgpack_sbuffer sb, sb2;
	msgpack_sbuffer_init(&sb);
	msgpack_sbuffer_init(&sb2);
	/* float32 becomes float64 and may outgrow the limit; nothing else may fail. */
	rc = value_encode_message(req, &sb);
	if (rc != 0 && rc != LOKET_E_TOO_BIG)
		abort();
	if (value_encode_message(again, &sb2) != rc || sb.size != sb2.size ||
	    (sb.size && memcmp(sb.data, sb2.data, sb.size) != 0))
		abort();
	msgpack_sbuffer_destroy(&sb);
	msgpack_sbuffer_destroy(&sb2);
	json_decref(again);
	json_decref(req);
	return 0;
}
