/*
 * put_ops: reads the ops of a control "put" request straight from its
 * msgpack bytes, without building a JSON tree, because a bulk import sends
 * thousands of ops a request and the daemon's time per op is the import's
 * speed. Fields a client sent in canonical form (as loket does) are used
 * where they lie; other well-formed fields are packed canonically once.
 * Refusals read exactly as they did when requests went through JSON.
 */
#ifndef LOKET_PUT_OPS_H
#define LOKET_PUT_OPS_H

#include <stddef.h>
#include <stdint.h>

#include <msgpack.h>

#include "proto/changeset.h"

struct put_ops {
	struct op *ops; /* n ops; coll, id and fields point into the request or into repacked */
	size_t n;
	msgpack_sbuffer repacked; /* canonical fields of ops that were sent otherwise */
};

/*
 * Finds "cmd" and "ops" in a control request. Returns 1 when it is a
 * well-formed put request (one map of at most 16 distinct UTF-8 keys,
 * nothing after it; every value but "ops" checked here) and sets *ops to
 * the bytes of its "ops" value (NULL, 0 when absent); put_ops_parse checks
 * those. Returns 0 for any other request, well-formed or not, which is left
 * to the generic JSON path.
 */
int put_ops_find(const uint8_t *req, size_t len, const uint8_t **ops, size_t *ops_len);

/*
 * Parses and checks the "ops" array (1..LOKET_MAX_OPS ops, each
 * {"coll","id","fields"} or {"coll","id","del":true}). On failure returns a
 * LOKET_E_* code, a sentence in err and the op's position in *bad_index (-1
 * when the array itself is wrong). po must be released either way.
 */
int put_ops_parse(struct put_ops *po, const uint8_t *ops, size_t len, long *bad_index, char *err,
                  size_t errlen);
void put_ops_release(struct put_ops *po);

#endif
