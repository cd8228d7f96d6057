/*
 * Fuzzes the put request reader (daemon/put_ops.c) with arbitrary bytes, as
 * a local client could send them. Whatever it accepts must be what the
 * changeset encoder takes: valid collection names and ids, a del without
 * fields, and fields that pass changeset_check_fields, inside the request
 * or in the repacked buffer; and every refusal says why.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "daemon/put_ops.h"
#include "proto/changeset.h"
#include "proto/error.h"
#include "proto/limits.h"
#include "proto/value.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int inside(const uint8_t *p, size_t len, const uint8_t *base, size_t base_len)
{
	return p >= base && len <= base_len && (size_t)(p - base) <= base_len - len;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const uint8_t *ops;
	size_t ops_len;
	if (size > LOKET_MAX_MESSAGE_BYTES || !put_ops_find(data, size, &ops, &ops_len))
		return 0;
	struct put_ops po;
	long index;
	char err[256];
	int rc = put_ops_parse(&po, ops, ops_len, &index, err, sizeof(err));
	if (rc == 0) {
		if (po.n == 0 || po.n > LOKET_MAX_OPS)
			abort();
		for (size_t i = 0; i < po.n; i++) {
			const struct op *op = &po.ops[i];
			if (!changeset_valid_coll(op->coll, op->coll_len) ||
			    !changeset_valid_id(op->id, op->id_len))
				abort();
			if (op->kind == OP_DEL) {
				if (op->fields)
					abort();
				continue;
			}
			if (op->kind != OP_PUT ||
			    !(inside(op->fields, op->fields_len, data, size) ||
			      inside(op->fields, op->fields_len, (const uint8_t *)po.repacked.data,
			             po.repacked.size)) ||
			    changeset_check_fields(op->fields, op->fields_len, NULL, 0) != 0)
				abort();
		}
	} else if (err[0] == '\0' || (index >= 0 && (size_t)index >= LOKET_MAX_OPS)) {
		abort(); /* every refusal says why, and names an op that exists */
	}
	put_ops_release(&po);
	return 0;
}
