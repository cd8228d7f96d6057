/*
 * test_sync: the sync module's lifecycle on a real loop (it starts, serves
 * "peers", holds back local writes while it has peers to ask, and closes
 * with nothing left on the loop), and a hostile test peer for
 * tests/integration/test_sync_hostile.sh: run as
 *
 *   test_sync --peer KEYFILE SERVER_KEY ENDPOINT MODE
 *
 * it dials a loketd as the member whose key it holds, says hello, and
 * then sends what MODE names: "badsig" (a changeset whose signature does
 * not verify), "badprev" (seq 1, then a seq 2 whose prev is wrong),
 * "nonmember" (a changeset signed by a key in no roster), "garbage"
 * (bytes that are no message) or "oldproto" (a hello of protocol 2); or
 * a scripted mode with arguments (peer_script: a branch of a forked
 * chain, a claim it never backs). It prints every error the node sends
 * back, one per line.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <sodium.h>
#include <zmq.h>

#include "common/config.h"
#include "common/key.h"
#include "daemon/control.h"
#include "daemon/node.h"
#include "daemon/sync/sync.h"
#include "proto/limits.h"
#include "proto/value.h"

/* ---- the hostile peer ---- */

static void peer_send(void *sock, json_t *hdr, const uint8_t *cs, size_t cs_len)
{
	msgpack_sbuffer sb;
	msgpack_sbuffer_init(&sb);
	if (value_encode_message(hdr, &sb) != 0)
		abort();
	json_decref(hdr);
	if (cs) {
		msgpack_packer pk;
		msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
		msgpack_pack_bin(&pk, cs_len);
		msgpack_pack_bin_body(&pk, cs, cs_len);
	}
	if (zmq_send(sock, sb.data, sb.size, 0) < 0)
		printf("no connection: %s\n", zmq_strerror(zmq_errno()));
	msgpack_sbuffer_destroy(&sb);
}

/* A signed changeset of one put by key k at seq with prev. */
static void peer_changeset(const struct key *k, uint64_t seq, const uint8_t prev[32], uint64_t hlc,
                           msgpack_sbuffer *out)
{
	msgpack_sbuffer fields;
	msgpack_sbuffer_init(&fields);
	msgpack_packer pk;
	msgpack_packer_init(&pk, &fields, msgpack_sbuffer_write);
	json_t *f = json_pack("{s:s}", "name", "injected");
	char why[128];
	if (value_pack_json(&pk, f, LOKET_MAX_DEPTH, why, sizeof(why)) != 0)
		abort();
	json_decref(f);
	char id[32];
	snprintf(id, sizeof(id), "evil%llu", (unsigned long long)seq);
	struct op op = {.kind = OP_PUT,
	                .coll = "expert",
	                .coll_len = 6,
	                .id = id,
	                .id_len = strlen(id),
	                .fields = (const uint8_t *)fields.data,
	                .fields_len = fields.size};
	struct changeset cs = {.version = CHANGESET_VERSION,
	                       .federation = "default",
	                       .federation_len = 7,
	                       .seq = seq,
	                       .hlc = hlc,
	                       .n_ops = 1,
	                       .ops = &op};
	key_public(k, cs.origin);
	memcpy(cs.prev, prev, 32);
	msgpack_sbuffer_init(out);
	if (changeset_encode(&cs, out) != 0)
		abort();
	uint8_t *msg, sig[64];
	size_t msg_len;
	if (changeset_signing_input((const uint8_t *)out->data, out->size, &msg, &msg_len) != 0)
		abort();
	key_sign(k, msg, msg_len, sig);
	free(msg);
	msgpack_sbuffer_write(out, (const char *)sig, sizeof(sig));
	msgpack_sbuffer_destroy(&fields);
}

/* Prints the errors the node sends within ms milliseconds. */
static void peer_listen(void *sock, int ms)
{
	int timeout = ms;
	zmq_setsockopt(sock, ZMQ_RCVTIMEO, &timeout, sizeof(timeout));
	for (;;) {
		zmq_msg_t m;
		zmq_msg_init(&m);
		if (zmq_msg_recv(&m, sock, 0) < 0) {
			zmq_msg_close(&m);
			return;
		}
		size_t used;
		char err[128];
		json_t *hdr = NULL;
		if (value_check(zmq_msg_data(&m), zmq_msg_size(&m), 16, 0, &used, err,
		                sizeof(err)) == 0 &&
		    value_decode_message(zmq_msg_data(&m), used, &hdr, err, sizeof(err)) == 0) {
			const char *t = json_string_value(json_object_get(hdr, "t"));
			if (t && strcmp(t, "error") == 0)
				printf("error: %s\n",
				       json_string_value(json_object_get(hdr, "reason")));
		}
		json_decref(hdr);
		zmq_msg_close(&m);
	}
}

/*
 * The changeset at seq of the chain named by the letter variant: every
 * variant is its own chain from seq 1 (hlc and id tell them apart), made
 * again identically by every run, so two runs can fork the member's chain
 * or extend one branch of it.
 */
static void peer_chain(const struct key *k, char variant, uint64_t seq, msgpack_sbuffer *out)
{
	uint8_t prev[32] = {0};
	for (uint64_t s = 1; s <= seq; s++) {
		peer_changeset(k, s, prev, s * 1000u + (uint64_t)variant, out);
		if (s < seq) {
			changeset_hash((uint8_t *)out->data, out->size, prev);
			msgpack_sbuffer_destroy(out);
		}
	}
}

/*
 * Scripted modes, after the hello:
 *   chain V FROM TO     pushes seq FROM..TO of chain V (peer_chain), one per message
 *   claim ORIGIN SEQ S  says hello claiming ORIGIN's head at SEQ (a hash of zeros)
 *                       every second for S seconds, and answers nothing
 */
static int peer_script(void *sock, const struct key *k, int argc, char **argv)
{
	const char *mode = argv[5];
	if (strcmp(mode, "chain") == 0 && argc == 9) {
		uint64_t from = strtoull(argv[7], NULL, 10), to = strtoull(argv[8], NULL, 10);
		for (uint64_t seq = from; seq <= to && seq > 0; seq++) {
			msgpack_sbuffer cs;
			peer_chain(k, argv[6][0], seq, &cs);
			peer_send(sock, json_pack("{s:s}", "t", "cs"), (uint8_t *)cs.data, cs.size);
			msgpack_sbuffer_destroy(&cs);
		}
		peer_listen(sock, 1000);
		return 0;
	}
	if (strcmp(mode, "claim") == 0 && argc == 9) {
		char zeros[65];
		memset(zeros, '0', 64);
		zeros[64] = '\0';
		/* Said again every second, as a live peer's hellos are. */
		for (int i = 0; i < atoi(argv[8]); i++) {
			json_t *heads = json_pack("{s:[I, s]}", argv[6],
			                          (json_int_t)strtoll(argv[7], NULL, 10), zeros);
			peer_send(sock,
			          json_pack("{s:s, s:i, s:s, s:o, s:b}", "t", "hello", "proto", 1,
			                    "federation", "default", "heads", heads, "reply", 1),
			          NULL, 0);
			peer_listen(sock, 1000);
		}
		return 0;
	}
	return 2;
}

static int peer_main(int argc, char **argv)
{
	if (argc != 6 && argc != 9)
		return 2;
	char err[512];
	struct key *k;
	uint8_t server[32];
	if (key_load(argv[2], &k, err, sizeof(err)) != 0 ||
	    config_key_decode(argv[3], server) != 0) {
		fprintf(stderr, "peer: %s\n", err);
		return 1;
	}
	const char *mode = argv[5];
	void *ctx = zmq_ctx_new();
	void *sock = zmq_socket(ctx, ZMQ_DEALER);
	/* A node that refuses this key at the handshake leaves no connection to send on. */
	int linger = 500, sndtimeo = 3000, immediate = 1;
	zmq_setsockopt(sock, ZMQ_LINGER, &linger, sizeof(linger));
	zmq_setsockopt(sock, ZMQ_SNDTIMEO, &sndtimeo, sizeof(sndtimeo));
	zmq_setsockopt(sock, ZMQ_IMMEDIATE, &immediate, sizeof(immediate));
	if (key_arm_curve_client(k, sock, server) != 0 || zmq_connect(sock, argv[4]) != 0)
		return 1;
	int proto = strcmp(mode, "oldproto") == 0 ? 2 : 1;
	peer_send(sock,
	          json_pack("{s:s, s:i, s:s, s:{}}", "t", "hello", "proto", proto, "federation",
	                    "default", "heads"),
	          NULL, 0);
	peer_listen(sock, 500);
	if (argc == 9) {
		int rc = peer_script(sock, k, argc, argv);
		zmq_close(sock);
		zmq_ctx_term(ctx);
		key_free(k);
		return rc;
	}
	uint8_t zero[32] = {0};
	msgpack_sbuffer cs;
	if (strcmp(mode, "badsig") == 0) {
		peer_changeset(k, 1, zero, 1, &cs);
		cs.data[cs.size - 1] ^= 0x01;
		peer_send(sock, json_pack("{s:s}", "t", "cs"), (uint8_t *)cs.data, cs.size);
		msgpack_sbuffer_destroy(&cs);
	} else if (strcmp(mode, "badprev") == 0) {
		uint8_t h[32];
		peer_changeset(k, 1, zero, 1, &cs);
		changeset_hash((uint8_t *)cs.data, cs.size, h);
		peer_send(sock, json_pack("{s:s}", "t", "cs"), (uint8_t *)cs.data, cs.size);
		msgpack_sbuffer_destroy(&cs);
		h[0] ^= 0xff; /* a link to nothing */
		peer_changeset(k, 2, h, 1, &cs);
		peer_send(sock, json_pack("{s:s}", "t", "cs"), (uint8_t *)cs.data, cs.size);
		msgpack_sbuffer_destroy(&cs);
	} else if (strcmp(mode, "nonmember") == 0) {
		struct key *stranger;
		if (key_generate(&stranger) != 0)
			abort();
		peer_changeset(stranger, 1, zero, 1, &cs);
		peer_send(sock, json_pack("{s:s}", "t", "cs"), (uint8_t *)cs.data, cs.size);
		msgpack_sbuffer_destroy(&cs);
		key_free(stranger);
	} else if (strcmp(mode, "fork") == 0) {
		/* A second seq 1, validly signed, that differs from the first. */
		peer_changeset(k, 1, zero, 2, &cs);
		peer_send(sock, json_pack("{s:s}", "t", "cs"), (uint8_t *)cs.data, cs.size);
		msgpack_sbuffer_destroy(&cs);
	} else if (strcmp(mode, "garbage") == 0) {
		uint8_t junk[4096];
		randombytes_buf(junk, sizeof(junk));
		junk[0] = 0x97;
		peer_send(sock, json_pack("{s:s}", "t", "cs"), junk, sizeof(junk));
		zmq_send(sock, "\xc1\xc1\xc1", 3, 0);
	}
	peer_listen(sock, 1500);
	zmq_close(sock);
	zmq_ctx_term(ctx);
	key_free(k);
	return 0;
}

/* ---- unit tests ---- */

struct fixture {
	char dir[64];
	struct node *node;
	uv_loop_t loop;
	void *zctx;
	struct control control;
	struct sync sync;
	int closed;
};

static void on_sync_closed(struct sync *s)
{
	struct fixture *f = (struct fixture *)((char *)s - offsetof(struct fixture, sync));
	f->closed++;
}

static void on_control_closed(struct control *c)
{
	(void)c;
}

/* A node in a fresh directory with members members, and its loop and context. */
static void fixture_open(struct fixture *f, int members)
{
	memset(f, 0, sizeof(*f));
	snprintf(f->dir, sizeof(f->dir), "/tmp/loket-test-sync.XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	struct config_parser *cp;
	char err[512], line[256];
	assert_int_equal(config_parse_begin(&cp, "test.conf", f->dir), 0);
	const char *lines[] = {"[node]", "name = t", "data = data", "key = node.key"};
	for (size_t i = 0; i < 4; i++)
		assert_int_equal(
		    config_parse_line(cp, lines[i], strlen(lines[i]), err, sizeof(err)), 0);
	for (int i = 0; i < members; i++) {
		struct key *mk;
		uint8_t pk[32];
		char b64[45];
		assert_int_equal(key_generate(&mk), 0);
		key_public(mk, pk);
		key_free(mk);
		config_key_encode(pk, b64);
		snprintf(line, sizeof(line), "[member m%d]", i);
		assert_int_equal(config_parse_line(cp, line, strlen(line), err, sizeof(err)), 0);
		snprintf(line, sizeof(line), "key = %s", b64);
		assert_int_equal(config_parse_line(cp, line, strlen(line), err, sizeof(err)), 0);
	}
	struct config *cfg;
	assert_int_equal(config_parse_finish(cp, &cfg, err, sizeof(err)), 0);
	struct key *k;
	assert_int_equal(key_generate(&k), 0);
	assert_int_equal(node_open_take(cfg, k, &f->node, err, sizeof(err)), 0);
	assert_int_equal(uv_loop_init(&f->loop), 0);
	f->zctx = zmq_ctx_new();
	assert_int_equal(control_init(&f->control, &f->loop, f->zctx, f->node, err, sizeof(err)),
	                 0);
	assert_int_equal(
	    sync_init(&f->sync, &f->loop, f->zctx, f->node, &f->control, err, sizeof(err)), 0);
}

static void fixture_close(struct fixture *f)
{
	sync_close(&f->sync, on_sync_closed);
	control_close(&f->control, on_control_closed);
	while (uv_run(&f->loop, UV_RUN_DEFAULT) != 0)
		;
	assert_int_equal(f->closed, 1);
	assert_int_equal(uv_loop_close(&f->loop), 0);
	zmq_ctx_term(f->zctx);
	node_free(f->node);
	char cmd[128];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", f->dir);
	assert_int_equal(system(cmd), 0);
}

/* Alone, a node signs at once; nobody could give its chain back anyway. */
static void test_no_members(void **state)
{
	(void)state;
	struct fixture f;
	fixture_open(&f, 0);
	assert_null(f.node->writes_blocked);
	json_t *peers = sync_peers(&f.sync);
	assert_int_equal(json_array_size(peers), 0);
	json_decref(peers);
	fixture_close(&f);
}

/* With members, writes wait for a peer; peers lists each, no session up. */
static void test_members_block_writes(void **state)
{
	(void)state;
	struct fixture f;
	fixture_open(&f, 2);
	assert_non_null(f.node->writes_blocked);
	json_t *peers = sync_peers(&f.sync);
	assert_int_equal(json_array_size(peers), 2);
	json_t *p = json_array_get(peers, 0);
	assert_string_equal(json_string_value(json_object_get(p, "name")), "m0");
	assert_true(json_is_null(json_object_get(p, "session")));
	assert_int_equal(json_integer_value(json_object_get(p, "we_lack")), 0);
	json_decref(peers);
	json_t *result = NULL;
	long index;
	char err[512];
	/* {"name": "A"} */
	static const uint8_t fields[] = {0x81, 0xa4, 'n', 'a', 'm', 'e', 0xa1, 'A'};
	struct op op = {.kind = OP_PUT,
	                .coll = "expert",
	                .coll_len = 6,
	                .id = "a",
	                .id_len = 1,
	                .fields = fields,
	                .fields_len = sizeof(fields)};
	assert_int_not_equal(node_put(f.node, &op, 1, &result, &index, err, sizeof(err)), 0);
	assert_non_null(strstr(err, "own chain"));
	fixture_close(&f);
}

int main(int argc, char **argv)
{
	if (sodium_init() < 0)
		return 1;
	if (argc > 1 && strcmp(argv[1], "--peer") == 0)
		return peer_main(argc, argv);
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_no_members),
	    cmocka_unit_test(test_members_block_writes),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
