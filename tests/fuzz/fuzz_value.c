/*
 * Fuzzes value_check and value_decode_message with arbitrary bytes. A value
 * that passes the canonical check must survive msgpack -> JSON -> msgpack
 * byte for byte, because the canonical form is by definition what
 * value_pack_json emits.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "proto/error.h"
#include "proto/limits.h"
#include "proto/value.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_canonical_round_trip(const uint8_t *data, size_t used)
{
	json_t *v = value_to_json(data, used);
	if (!v)
		abort(); /* canonical values hold nothing JSON cannot */
	msgpack_sbuffer sb;
	msgpack_sbuffer_init(&sb);
	msgpack_packer pk;
	msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
	if (value_pack_json(&pk, v, LOKET_MAX_DEPTH, NULL, 0) != 0)
		abort();
	if (sb.size != used || memcmp(sb.data, data, used) != 0)
		abort();
	msgpack_sbuffer_destroy(&sb);
	json_decref(v);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char err[256];
	size_t used = 0;
	if (value_check(data, size, LOKET_MAX_DEPTH, VALUE_CANONICAL, &used, err, sizeof(err)) ==
	    0) {
		if (used == 0 || used > size)
			abort();
		check_canonical_round_trip(data, used);
	}
	if (value_check(data, size, LOKET_MAX_DEPTH, 0, &used, err, sizeof(err)) == 0) {
		json_t *v = value_to_json(data, used);
		json_decref(v);
	}
	/* Unchecked bytes must not crash the unpacker either; it may only fail. */
	json_decref(value_to_json(data, size));

	json_t *msg = NULL;
	if (value_decode_message(data, size, &msg, err, sizeof(err)) == 0) {
		if (!json_is_object(msg))
			abort();
		msgpack_sbuffer sb;
		msgpack_sbuffer_init(&sb);
		/* bin turned hex may outgrow the limit; nothing else may fail. */
		int rc = value_encode_message(msg, &sb);
		if (rc != 0 && rc != LOKET_E_TOO_BIG)
			abort();
		msgpack_sbuffer_destroy(&sb);
		json_decref(msg);
	} else if (msg != NULL) {
		abort();
	}
	return 0;
}
