/*
 * Fuzzes what a peer's "cs" message goes through before any signature
 * check: the header (value_check, value_decode_message), the bins after it
 * (sync_parse_bins), the cheap peek at origin and seq, and the strict
 * decode, which must agree with the peek whenever both accept.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "daemon/sync/sync_receive.h"
#include "proto/changeset.h"
#include "proto/limits.h"
#include "proto/value.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char err[256];
	size_t used = 0;
	json_t *hdr = NULL;
	if (value_check(data, size, LOKET_MAX_MESSAGE_DEPTH, 0, &used, err, sizeof(err)) != 0 ||
	    value_decode_message(data, used, &hdr, err, sizeof(err)) != 0)
		return 0;
	json_decref(hdr);

	static const uint8_t *bins[SYNC_MAX_PER_MSG];
	static size_t lens[SYNC_MAX_PER_MSG];
	size_t n = 0;
	if (sync_parse_bins(data + used, size - used, bins, lens, &n) != 0)
		return 0;
	/* abort, not assert: the check must hold in every build. */
	if (n > SYNC_MAX_PER_MSG)
		abort();
	for (size_t i = 0; i < n; i++) {
		if (bins[i] < data || bins[i] + lens[i] > data + size)
			abort();
		uint8_t origin[32];
		uint64_t seq;
		int peeked = sync_peek_changeset(bins[i], lens[i], origin, &seq) == 0;
		struct changeset cs;
		if (changeset_decode(bins[i], lens[i], &cs, err, sizeof(err)) != 0)
			continue;
		/* What the strict decode accepts, the peek reads the same way. */
		if (!peeked || seq != cs.seq || memcmp(origin, cs.origin, 32) != 0)
			abort();
		changeset_release(&cs);
	}
	return 0;
}
