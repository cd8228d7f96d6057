/*
 * Fuzzes changeset_decode with arbitrary bytes. Whatever decodes must
 * re-encode to the identical body: that is what "strict" promises, since
 * nodes store and forward the bytes as signed and never re-encode them.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "proto/changeset.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct changeset cs;
	char err[256];
	if (changeset_decode(data, size, &cs, err, sizeof(err)) != 0) {
		if (cs.ops != NULL || err[0] == '\0')
			abort();
		return 0;
	}
	msgpack_sbuffer sb;
	msgpack_sbuffer_init(&sb);
	if (changeset_encode(&cs, &sb) != 0)
		abort();
	if (sb.size != size - CHANGESET_SIG_BYTES || memcmp(sb.data, data, sb.size) != 0)
		abort();
	uint8_t h[CHANGESET_HASH_BYTES];
	changeset_hash(data, size, h);
	(void)changeset_verify(data, size, cs.origin);
	msgpack_sbuffer_destroy(&sb);
	changeset_release(&cs);
	return 0;
}
