/*
 * Differential fuzzing of jsonmp against the slow path it stands in for:
 * whatever jsonmp_pack accepts, jansson (with the import's flags, plus
 * JSON_DECODE_ANY as jsonmp takes any value at the top level) must accept
 * and value_pack_json must encode to the very same bytes. jsonmp may refuse
 * more, never less. The first input byte picks the depth limit, so that
 * the limit itself is fuzzed too.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "proto/jsonmp.h"
#include "proto/value.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct jsonmp *j;
	msgpack_sbuffer fast, slow;
	unsigned depth = 16;

	if (!j)
		j = jsonmp_new(); /* reused, as the import reuses it */
	if (size > 0 && data[0] >= '0' && data[0] <= '9') {
		/* "3[[[1]]]": depth 3, then the text. */
		depth = (unsigned)(data[0] - '0');
		data++;
		size--;
	}
	msgpack_sbuffer_init(&fast);
	msgpack_sbuffer_init(&slow);
	/* Something in front, as in a batch: jsonmp appends. */
	msgpack_sbuffer_write(&fast, "\x91", 1);
	int rc = jsonmp_pack(j, data, size, depth, &fast);
	if (rc != 0 && fast.size != 1)
		abort(); /* a refusal leaves the buffer as it was */
	if (rc == 0) {
		json_error_t jerr;
		json_t *v = json_loadb((const char *)data, size,
		                       JSON_REJECT_DUPLICATES | JSON_DECODE_ANY, &jerr);
		if (!v)
			abort(); /* jsonmp accepted what jansson refuses */
		msgpack_packer pk;
		msgpack_packer_init(&pk, &slow, msgpack_sbuffer_write);
		msgpack_sbuffer_write(&slow, "\x91", 1);
		if (value_pack_json(&pk, v, depth, NULL, 0) != 0)
			abort(); /* jsonmp accepted what value_pack_json refuses */
		if (fast.size != slow.size || memcmp(fast.data, slow.data, slow.size) != 0)
			abort(); /* different bytes */
		json_decref(v);
	}
	msgpack_sbuffer_destroy(&fast);
	msgpack_sbuffer_destroy(&slow);
	return 0;
}
