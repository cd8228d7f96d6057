/*
 * For store tests: signs a changeset holding ops given as JSON text, the
 * way loketd would, so that a test can append it to a store. Ops are
 * [{"coll","id","fields":{...}}] or [{"coll","id","del":true}].
 * Header-only: each test program includes it once.
 */
#ifndef LOKET_TEST_SIGNED_OPS_H
#define LOKET_TEST_SIGNED_OPS_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>
#include <sodium.h>

#include "proto/changeset.h"
#include "proto/limits.h"
#include "proto/value.h"

/* A test origin: its key pair, the end of its chain and its clock. */
struct node {
	uint8_t pk[32];
	uint8_t sk[64];
	uint64_t seq;
	uint8_t head[32];
	uint64_t hlc;
};

static inline void node_init(struct node *n)
{
	memset(n, 0, sizeof(*n));
	crypto_sign_keypair(n->pk, n->sk);
	n->hlc = (uint64_t)1700000000000 << 16;
}

/*
 * The signed bytes (body || signature) of seq of the origin (pk, sk),
 * linked to prev, with the given hlc. *bytes is malloc'd; the caller frees it.
 */
static inline void signed_ops(const uint8_t pk[32], const uint8_t sk[64], uint64_t seq,
                              const uint8_t prev[32], uint64_t hlc, const char *ops_json,
                              uint8_t **bytes, size_t *len)
{
	json_error_t jerr;
	json_t *ops = json_loads(ops_json, 0, &jerr), *o;
	struct changeset cs;
	msgpack_sbuffer body, *fields;
	msgpack_packer pk_;
	uint8_t *msg = NULL;
	size_t msg_len = 0, i;
	char err[200];

	assert_non_null(ops);
	memset(&cs, 0, sizeof(cs));
	cs.version = CHANGESET_VERSION;
	cs.federation = "leiden";
	cs.federation_len = 6;
	memcpy(cs.origin, pk, 32);
	cs.seq = seq;
	memcpy(cs.prev, prev, 32);
	cs.hlc = hlc;
	cs.n_ops = json_array_size(ops);
	cs.ops = calloc(cs.n_ops, sizeof(*cs.ops));
	fields = calloc(cs.n_ops, sizeof(*fields));
	assert_non_null(cs.ops);
	assert_non_null(fields);
	json_array_foreach(ops, i, o)
	{
		struct op *op = &cs.ops[i];

		op->coll = json_string_value(json_object_get(o, "coll"));
		op->coll_len = strlen(op->coll);
		op->id = json_string_value(json_object_get(o, "id"));
		op->id_len = strlen(op->id);
		msgpack_sbuffer_init(&fields[i]);
		if (json_is_true(json_object_get(o, "del"))) {
			op->kind = OP_DEL;
			continue;
		}
		op->kind = OP_PUT;
		msgpack_packer_init(&pk_, &fields[i], msgpack_sbuffer_write);
		assert_int_equal(value_pack_json(&pk_, json_object_get(o, "fields"),
		                                 LOKET_MAX_DEPTH, err, sizeof(err)),
		                 0);
		op->fields = (const uint8_t *)fields[i].data;
		op->fields_len = fields[i].size;
	}
	msgpack_sbuffer_init(&body);
	assert_int_equal(changeset_encode(&cs, &body), 0);
	assert_int_equal(
	    changeset_signing_input((const uint8_t *)body.data, body.size, &msg, &msg_len), 0);
	*len = body.size + 64;
	*bytes = malloc(*len);
	assert_non_null(*bytes);
	memcpy(*bytes, body.data, body.size);
	crypto_sign_detached(*bytes + body.size, NULL, msg, msg_len, sk);
	free(msg);
	msgpack_sbuffer_destroy(&body);
	for (i = 0; i < cs.n_ops; i++)
		msgpack_sbuffer_destroy(&fields[i]);
	free(fields);
	free(cs.ops);
	json_decref(ops);
}

#endif
