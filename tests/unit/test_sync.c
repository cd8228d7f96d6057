/*
 * test_sync: the sync module's lifecycle on a real loop (it starts, serves
 * "peers", and closes with nothing left on the loop), when a node's local
 * writes open (node.h: at once on a new node or a clean restart, waiting
 * while the store is behind the record of its own head, by resume), and a
 * hostile test peer for
 * tests/integration/test_sync_hostile.sh: run as
 *
 *   test_sync --peer KEYFILE SERVER_KEY ENDPOINT MODE
 *
 * it dials a loketd as the member whose key it holds, says hello, and
 * then sends what MODE names: "badsig" (a changeset whose signature does
 * not verify), "badprev" (seq 1, then a seq 2 whose prev is wrong),
 * "nonmember" (a changeset signed by a key in no roster), "garbage"
 * (bytes that are no message), "oldproto" (a hello of protocol 2) or
 * "claimself" (a hello claiming the node's own chain, SERVER_KEY, up to
 * seq 100 with a random hash; it then listens 3.5 s and answers nothing);
 * or a scripted mode with arguments (peer_script: a branch of a forked
 * chain, a claim it never backs, a chain that rotates its key, honestly
 * or with a rotation record signed by a key that is not current). It prints every error the node
 * sends back, one per line.
 */
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <sodium.h>
#include <zmq.h>

#include "common/config.h"
#include "common/key.h"
#include "common/own_head.h"
#include "daemon/control.h"
#include "daemon/node.h"
#include "daemon/sync/sync.h"
#include "proto/error.h"
#include "proto/limits.h"
#include "proto/merkle.h"
#include "proto/note.h"
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

/* Signs cs with k into out (body and signature). */
static void peer_sign(const struct key *k, const struct changeset *cs, msgpack_sbuffer *out)
{
	msgpack_sbuffer_init(out);
	if (changeset_encode(cs, out) != 0)
		abort();
	uint8_t *msg, sig[64];
	size_t msg_len;
	if (changeset_signing_input((const uint8_t *)out->data, out->size, &msg, &msg_len) != 0)
		abort();
	key_sign(k, msg, msg_len, sig);
	free(msg);
	msgpack_sbuffer_write(out, (const char *)sig, sizeof(sig));
}

/* A signed changeset of origin, of one put, signed by k at seq with prev. */
static void peer_changeset_of(const struct key *k, const uint8_t origin[32], uint64_t seq,
                              const uint8_t prev[32], uint64_t hlc, msgpack_sbuffer *out);

/* A signed changeset of one put by key k at seq with prev. */
static void peer_changeset(const struct key *k, uint64_t seq, const uint8_t prev[32], uint64_t hlc,
                           msgpack_sbuffer *out)
{
	uint8_t origin[32];
	key_public(k, origin);
	peer_changeset_of(k, origin, seq, prev, hlc, out);
}

static void peer_changeset_of(const struct key *k, const uint8_t origin[32], uint64_t seq,
                              const uint8_t prev[32], uint64_t hlc, msgpack_sbuffer *out)
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
	memcpy(cs.origin, origin, 32);
	memcpy(cs.prev, prev, 32);
	peer_sign(k, &cs, out);
	msgpack_sbuffer_destroy(&fields);
}

/* A rotation record of origin at seq naming next, signed by k (proto/FORMAT.md section 14). */
static void peer_rotation(const struct key *k, const uint8_t origin[32], uint64_t seq,
                          const uint8_t prev[32], uint64_t hlc, const uint8_t next[32],
                          msgpack_sbuffer *out)
{
	struct op op = {.kind = OP_ROTATE, .key = next};
	struct changeset cs = {.version = CHANGESET_VERSION,
	                       .federation = "default",
	                       .federation_len = 7,
	                       .seq = seq,
	                       .hlc = hlc,
	                       .n_ops = 1,
	                       .ops = &op};
	memcpy(cs.origin, origin, 32);
	memcpy(cs.prev, prev, 32);
	peer_sign(k, &cs, out);
}

/*
 * The changeset at seq of k's chain V that rotates at seq rot to next:
 * seqs below rot signed by k, the rotation record at rot naming next's
 * key signed by k (or, forged, by next, which is not current there), the
 * seqs after it signed by next.
 */
static void peer_rot_chain(const struct key *k, const struct key *next, char variant, uint64_t rot,
                           int forged, uint64_t seq, msgpack_sbuffer *out)
{
	uint8_t prev[32] = {0}, origin[32], npk[32];
	key_public(k, origin);
	key_public(next, npk);
	for (uint64_t s = 1; s <= seq; s++) {
		uint64_t hlc = s * 1000u + (uint64_t)variant;
		if (s == rot)
			peer_rotation(forged ? next : k, origin, s, prev, hlc, npk, out);
		else
			peer_changeset_of(s < rot ? k : next, origin, s, prev, hlc, out);
		if (s < seq) {
			changeset_hash((uint8_t *)out->data, out->size, prev);
			msgpack_sbuffer_destroy(out);
		}
	}
}

static int64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/*
 * Prints the errors the node sends within ms milliseconds (a deadline: a
 * node that keeps talking, asking for what was claimed, does not keep it
 * listening).
 */
static void peer_listen(void *sock, int ms)
{
	int64_t deadline = now_ms() + ms;
	for (;;) {
		int timeout = (int)(deadline - now_ms());
		if (timeout <= 0)
			return;
		zmq_setsockopt(sock, ZMQ_RCVTIMEO, &timeout, sizeof(timeout));
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
 * A member that asks and never reads: conns connections, each saying hello
 * and then asking for the node's own chain from seq 1 every 10 ms for secs
 * seconds, with receive buffers kept as small as the system allows.
 */
static int peer_hog(const struct key *k, const char *server_b64, const char *endpoint, int conns,
                    int secs)
{
	uint8_t server[32];
	if (conns < 1 || conns > 64 || config_key_decode(server_b64, server) != 0)
		return 2;
	void *ctx = zmq_ctx_new();
	void *socks[64];
	for (int i = 0; i < conns; i++) {
		int one = 1, small = 4096, linger = 0;
		socks[i] = zmq_socket(ctx, ZMQ_DEALER);
		zmq_setsockopt(socks[i], ZMQ_RCVHWM, &one, sizeof(one));
		zmq_setsockopt(socks[i], ZMQ_RCVBUF, &small, sizeof(small));
		zmq_setsockopt(socks[i], ZMQ_LINGER, &linger, sizeof(linger));
		if (key_arm_curve_client(k, socks[i], server) != 0 ||
		    zmq_connect(socks[i], endpoint) != 0)
			return 1;
		peer_send(socks[i],
		          json_pack("{s:s, s:i, s:s, s:{}}", "t", "hello", "proto", 1, "federation",
		                    "default", "heads"),
		          NULL, 0);
	}
	for (int round = 0; round < secs * 100; round++) {
		for (int i = 0; i < conns; i++) {
			json_t *want = json_pack("{s:s, s:s, s:i, s:i}", "t", "want", "origin",
			                         server_b64, "from", 1, "count", 256);
			msgpack_sbuffer sb;
			msgpack_sbuffer_init(&sb);
			if (value_encode_message(want, &sb) != 0)
				abort();
			json_decref(want);
			if (zmq_send(socks[i], sb.data, sb.size, ZMQ_DONTWAIT) < 0 && round == 0)
				printf("hog: %s\n", zmq_strerror(zmq_errno()));
			msgpack_sbuffer_destroy(&sb);
		}
		usleep(10000);
	}
	for (int i = 0; i < conns; i++)
		zmq_close(socks[i]);
	zmq_ctx_term(ctx);
	return 0;
}

/*
 * Scripted modes, after the hello:
 *   chain V FROM TO     pushes seq FROM..TO of chain V (peer_chain), one per message
 *   claim ORIGIN SEQ S  says hello claiming ORIGIN's head at SEQ (a hash of zeros)
 *                       every second for S seconds, and answers nothing
 *   hog CONNS S         (peer_hog) asks for the node's chain and never reads
 *   ckpt SIZE HOW       sends a checkpoint of its own log at SIZE, the tree of
 *                       chain A's seqs 1..SIZE: HOW is good (signed as the
 *                       checkpoint of that tree), badroot (another root,
 *                       validly signed) or badsig (the right root, a flipped
 *                       signature byte)
 *   rot V R TO NEWKEY   pushes seq 1..TO of chain V, which rotates at seq R to the
 *                       key in the file NEWKEY (peer_rot_chain), one per message
 *   forgerot V R TO NEWKEY  the same, but the record at R is signed by NEWKEY
 *   relay V FROM TO KEY     pushes seq FROM..TO of chain V of the key in the file KEY,
 *                       as a member relays another origin's changesets
 */
static void peer_ckpt(void *sock, const struct key *k, uint64_t size, const char *how)
{
	struct merkle_frontier f;
	struct note_checkpoint cp;
	uint8_t pk[32], h[32], sig[64];
	char text[NOTE_MAX_TEXT], note[2048];
	size_t tlen, nlen;

	key_public(k, pk);
	merkle_frontier_init(&f);
	for (uint64_t seq = 1; seq <= size; seq++) {
		msgpack_sbuffer cs;
		peer_chain(k, 'A', seq, &cs);
		changeset_hash((uint8_t *)cs.data, cs.size, h);
		merkle_frontier_append(&f, h, NULL, NULL);
		msgpack_sbuffer_destroy(&cs);
	}
	if (note_origin_line("default", pk, &cp) != 0)
		abort();
	cp.size = size;
	merkle_frontier_root(&f, cp.root);
	if (strcmp(how, "badroot") == 0)
		cp.root[0] ^= 0x01;
	if (note_checkpoint_text(&cp, text, sizeof(text), &tlen) != 0)
		abort();
	key_sign(k, (const uint8_t *)text, tlen, sig);
	if (strcmp(how, "badsig") == 0)
		sig[10] ^= 0x01;
	memcpy(note, text, tlen);
	nlen = tlen;
	note[nlen++] = '\n';
	if (note_append_sig(
	        note, sizeof(note), &nlen, (const uint8_t *)cp.origin, cp.origin_len,
	        note_key_id((const uint8_t *)cp.origin, cp.origin_len, NOTE_TYPE_ED25519, pk), sig,
	        sizeof(sig)) != 0)
		abort();
	peer_send(sock, json_pack("{s:s, s:[s%]}", "t", "ckpt", "notes", note, nlen), NULL, 0);
}

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
	if (strcmp(mode, "ckpt") == 0 && argc == 8) {
		peer_ckpt(sock, k, strtoull(argv[6], NULL, 10), argv[7]);
		peer_listen(sock, 1000);
		return 0;
	}
	if (strcmp(mode, "relay") == 0 && argc == 10) {
		uint64_t from = strtoull(argv[7], NULL, 10), to = strtoull(argv[8], NULL, 10);
		struct key *other;
		char err[512];
		if (key_load(argv[9], &other, err, sizeof(err)) != 0) {
			fprintf(stderr, "peer: %s\n", err);
			return 1;
		}
		for (uint64_t seq = from; seq <= to && seq > 0; seq++) {
			msgpack_sbuffer cs;
			peer_chain(other, argv[6][0], seq, &cs);
			peer_send(sock, json_pack("{s:s}", "t", "cs"), (uint8_t *)cs.data, cs.size);
			msgpack_sbuffer_destroy(&cs);
		}
		key_free(other);
		peer_listen(sock, 1000);
		return 0;
	}
	if ((strcmp(mode, "rot") == 0 || strcmp(mode, "forgerot") == 0) && argc == 10) {
		uint64_t rot = strtoull(argv[7], NULL, 10), to = strtoull(argv[8], NULL, 10);
		struct key *next;
		char err[512];
		if (key_load(argv[9], &next, err, sizeof(err)) != 0) {
			fprintf(stderr, "peer: %s\n", err);
			return 1;
		}
		for (uint64_t seq = 1; seq <= to; seq++) {
			msgpack_sbuffer cs;
			peer_rot_chain(k, next, argv[6][0], rot, mode[0] == 'f', seq, &cs);
			peer_send(sock, json_pack("{s:s}", "t", "cs"), (uint8_t *)cs.data, cs.size);
			msgpack_sbuffer_destroy(&cs);
		}
		key_free(next);
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
	if (argc < 6 || argc > 10)
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
	if (strcmp(mode, "hog") == 0) {
		int rc =
		    argc == 8 ? peer_hog(k, argv[3], argv[4], atoi(argv[6]), atoi(argv[7])) : 2;
		key_free(k);
		return rc;
	}
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
	json_t *heads = json_object();
	int claimself = strcmp(mode, "claimself") == 0;
	if (claimself) {
		/* A claim about the node's own chain, with nothing to back it. */
		uint8_t h[32];
		char hx[65];
		randombytes_buf(h, sizeof(h));
		for (size_t i = 0; i < 32; i++)
			snprintf(hx + 2 * i, 3, "%02x", h[i]);
		json_object_set_new(heads, argv[3], json_pack("[i, s]", 100, hx));
	}
	peer_send(sock,
	          json_pack("{s:s, s:i, s:s, s:o}", "t", "hello", "proto", proto, "federation",
	                    "default", "heads", heads),
	          NULL, 0);
	peer_listen(sock, claimself ? 2000 : 500);
	if (argc > 6) {
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
	} else if (strcmp(mode, "oversize") == 0) {
		/* A frame 1 KiB over the limit, within what libzmq reads. */
		size_t len = LOKET_MAX_MESSAGE_BYTES + 1024;
		uint8_t *junk = calloc(1, len);
		if (!junk)
			abort();
		peer_send(sock, json_pack("{s:s}", "t", "cs"), junk, len);
		free(junk);
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

/* Alone, a node signs at once. */
static void test_no_members(void **state)
{
	(void)state;
	struct fixture f;
	fixture_open(&f, 0);
	assert_null(node_writes_refused(f.node));
	json_t *peers = sync_peers(&f.sync);
	assert_int_equal(json_array_size(peers), 0);
	json_decref(peers);
	fixture_close(&f);
}

/* One put of expert/ID at n; returns node_put's code, the seq in *seq. */
static int put_one(struct node *n, const char *id, uint64_t *seq, char *err, size_t errlen)
{
	json_t *result = NULL;
	long index;
	/* {"name": "A"} */
	static const uint8_t fields[] = {0x81, 0xa4, 'n', 'a', 'm', 'e', 0xa1, 'A'};
	struct op op = {.kind = OP_PUT,
	                .coll = "expert",
	                .coll_len = 6,
	                .id = id,
	                .id_len = strlen(id),
	                .fields = fields,
	                .fields_len = sizeof(fields)};
	int rc = node_put(n, &op, 1, &result, &index, err, errlen);
	if (rc == 0)
		*seq = (uint64_t)json_integer_value(json_object_get(result, "seq"));
	json_decref(result);
	return rc;
}

/*
 * With members and no peer up, a new node signs at once too: the record
 * beside its key says it has signed nothing, and the store agrees. Peers
 * lists each member, no session up.
 */
static void test_members_new_node_writes_open(void **state)
{
	(void)state;
	struct fixture f;
	fixture_open(&f, 2);
	assert_null(node_writes_refused(f.node));
	json_t *peers = sync_peers(&f.sync);
	assert_int_equal(json_array_size(peers), 2);
	json_t *p = json_array_get(peers, 0);
	assert_string_equal(json_string_value(json_object_get(p, "name")), "m0");
	assert_true(json_is_null(json_object_get(p, "session")));
	assert_int_equal(json_integer_value(json_object_get(p, "we_lack")), 0);
	json_decref(peers);
	char err[1024];
	uint64_t seq = 0;
	assert_int_equal(put_one(f.node, "a", &seq, err, sizeof(err)), 0);
	assert_int_equal(seq, 1);
	/* The record follows the commit. */
	struct own_head *h;
	assert_int_equal(own_head_open(f.node->own_head_path, &h, err, sizeof(err)), 0);
	assert_int_equal(h->state, OWN_HEAD_VALID);
	assert_int_equal(h->seq, 1);
	own_head_close(h);
	fixture_close(&f);
}

/* A node of its own in dir (no sync), with the key in dir/node.key made on first use. */
static struct node *node_in(const char *dir)
{
	struct config_parser *cp;
	char err[1024], path[128];
	assert_int_equal(config_parse_begin(&cp, "test.conf", dir), 0);
	const char *lines[] = {"[node]", "name = t", "data = data", "key = node.key"};
	for (size_t i = 0; i < 4; i++)
		assert_int_equal(
		    config_parse_line(cp, lines[i], strlen(lines[i]), err, sizeof(err)), 0);
	struct config *cfg;
	assert_int_equal(config_parse_finish(cp, &cfg, err, sizeof(err)), 0);
	struct key *k;
	snprintf(path, sizeof(path), "%s/node.key", dir);
	if (access(path, F_OK) == 0) {
		assert_int_equal(key_load(path, &k, err, sizeof(err)), 0);
	} else {
		assert_int_equal(key_generate(&k), 0);
		assert_int_equal(key_save(k, path), 0);
	}
	struct node *n;
	assert_int_equal(node_open_take(cfg, k, &n, err, sizeof(err)), 0);
	return n;
}

/*
 * A store behind the record (here: the record says seq 5, the store holds
 * seq 1) waits, names why, and opens only by `resume --force`, which is
 * refused while a peer claims more and rewrites the record when it opens.
 */
static void test_store_behind_record_waits(void **state)
{
	(void)state;
	char dir[64], err[1024];
	snprintf(dir, sizeof(dir), "/tmp/loket-test-sync.XXXXXX");
	assert_non_null(mkdtemp(dir));
	struct node *n = node_in(dir);
	uint64_t seq = 0;
	assert_int_equal(put_one(n, "a", &seq, err, sizeof(err)), 0);
	assert_int_equal(seq, 1);
	uint8_t h5[32];
	memset(h5, 0xab, sizeof(h5));
	assert_int_equal(own_head_write(n->own_head, 5, h5, err, sizeof(err)), 0);
	node_free(n);

	n = node_in(dir);
	const char *why = node_writes_refused(n);
	assert_non_null(why);
	assert_non_null(strstr(why, "up to seq 5 (hash abababababab"));
	assert_non_null(strstr(why, "store holds its own chain up to seq 1"));
	assert_non_null(strstr(why, "changesets 2..5"));
	assert_int_equal(put_one(n, "b", &seq, err, sizeof(err)), LOKET_E_UNAVAILABLE);
	assert_string_equal(err, why);
	json_t *status;
	assert_int_equal(node_status(n, &status), 0);
	json_t *w = json_object_get(status, "writes");
	assert_true(json_is_false(json_object_get(w, "open")));
	assert_int_equal(json_integer_value(json_object_get(w, "own_head")), 1);
	assert_int_equal(json_integer_value(json_object_get(w, "recorded_head")), 5);
	json_decref(status);
	/* Nothing of its own chain arrived: still waiting. */
	node_own_chain_changed(n);
	assert_non_null(node_writes_refused(n));

	json_t *result = NULL;
	assert_int_equal(node_resume(n, 0, 0, "", &result, err, sizeof(err)), LOKET_E_BAD_REQUEST);
	assert_non_null(strstr(err, "its next write forks its chain"));
	assert_int_equal(node_resume(n, 1, 3, "m0", &result, err, sizeof(err)),
	                 LOKET_E_UNAVAILABLE);
	assert_non_null(
	    strstr(err, "m0 says it holds this node's chain up to seq 3, the store has 1"));
	assert_int_equal(node_resume(n, 1, 1, "m0", &result, err, sizeof(err)), 0);
	assert_int_equal(json_integer_value(json_object_get(result, "own_head")), 1);
	json_decref(result);
	assert_null(node_writes_refused(n));
	assert_int_equal(node_resume(n, 1, 0, "", &result, err, sizeof(err)), LOKET_E_BAD_REQUEST);
	assert_non_null(strstr(err, "nothing to resume"));
	assert_int_equal(put_one(n, "b", &seq, err, sizeof(err)), 0);
	assert_int_equal(seq, 2);
	node_free(n);

	/* A clean restart opens at once. */
	n = node_in(dir);
	assert_null(node_writes_refused(n));
	node_free(n);

	/* The record gone beside a store that had one: refused until resumed. */
	char path[128], cmd[128];
	snprintf(path, sizeof(path), "%s/node.key.head", dir);
	assert_int_equal(unlink(path), 0);
	n = node_in(dir);
	why = node_writes_refused(n);
	assert_non_null(why);
	assert_non_null(strstr(why, "is missing beside a store that holds changesets"));
	assert_int_equal(node_resume(n, 1, 0, "", &result, err, sizeof(err)), 0);
	json_decref(result);
	assert_int_equal(put_one(n, "c", &seq, err, sizeof(err)), 0);
	assert_int_equal(seq, 3);
	node_free(n);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	assert_int_equal(system(cmd), 0);
}

/*
 * A record that cannot be written: the put that committed stays a success,
 * the next one is refused with the reason, and resume, which opens the
 * file afresh, opens writes once it can write it.
 */
static void test_record_write_fails(void **state)
{
	(void)state;
	char dir[64], err[1024], cmd[128];
	snprintf(dir, sizeof(dir), "/tmp/loket-test-sync.XXXXXX");
	assert_non_null(mkdtemp(dir));
	struct node *n = node_in(dir);
	uint64_t seq = 0;
	/* Behind loketd's back, its descriptor becomes one it cannot write. */
	int fd = open(n->own_head_path, O_RDONLY);
	assert_true(fd >= 0);
	assert_true(dup2(fd, n->own_head->fd) >= 0);
	close(fd);
	assert_int_equal(put_one(n, "a", &seq, err, sizeof(err)), 0);
	assert_int_equal(seq, 1);
	const char *why = node_writes_refused(n);
	assert_non_null(why);
	assert_non_null(strstr(why, "cannot write the record of this node's own head"));
	assert_non_null(strstr(why, "after seq 1 (that write itself is durable)"));
	assert_int_equal(put_one(n, "b", &seq, err, sizeof(err)), LOKET_E_UNAVAILABLE);
	json_t *result = NULL;
	assert_int_equal(node_resume(n, 1, 0, "", &result, err, sizeof(err)), 0);
	json_decref(result);
	assert_int_equal(put_one(n, "b", &seq, err, sizeof(err)), 0);
	assert_int_equal(seq, 2);
	node_free(n);
	n = node_in(dir);
	assert_null(node_writes_refused(n));
	node_free(n);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	assert_int_equal(system(cmd), 0);
}

/*
 * The record's hash at its seq differs from the store's changeset there:
 * the key has signed two histories, and resume cannot open writes.
 */
static void test_other_chain_is_a_fork(void **state)
{
	(void)state;
	char dir[64], err[1024], cmd[128];
	snprintf(dir, sizeof(dir), "/tmp/loket-test-sync.XXXXXX");
	assert_non_null(mkdtemp(dir));
	struct node *n = node_in(dir);
	uint64_t seq = 0;
	assert_int_equal(put_one(n, "a", &seq, err, sizeof(err)), 0);
	assert_int_equal(put_one(n, "b", &seq, err, sizeof(err)), 0);
	uint8_t other[32];
	memset(other, 0x11, sizeof(other));
	assert_int_equal(own_head_write(n->own_head, 1, other, err, sizeof(err)), 0);
	node_free(n);
	n = node_in(dir);
	const char *why = node_writes_refused(n);
	assert_non_null(why);
	assert_non_null(strstr(why, "differs from the one it recorded signing at seq 1"));
	json_t *result = NULL;
	assert_int_equal(node_resume(n, 1, 0, "", &result, err, sizeof(err)), LOKET_E_FORK);
	assert_non_null(node_writes_refused(n));
	node_free(n);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	assert_int_equal(system(cmd), 0);
}

int main(int argc, char **argv)
{
	if (sodium_init() < 0)
		return 1;
	if (argc > 1 && strcmp(argv[1], "--peer") == 0)
		return peer_main(argc, argv);
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_no_members),
	    cmocka_unit_test(test_members_new_node_writes_open),
	    cmocka_unit_test(test_store_behind_record_waits),
	    cmocka_unit_test(test_record_write_fails),
	    cmocka_unit_test(test_other_chain_is_a_fork),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
