/*
 * test_control_limits: the control socket on a real loop and a real node (every
 * request gets an answer, framed as it came; error replies carry a code
 * and say whether a retry helps; unread replies are bounded), and a
 * hostile local client for tests/integration/test_control_hostile.sh:
 *
 *   test_control_limits --client SOCKET MODE ARGS...
 *
 * speaks to the ipc socket file SOCKET of a running loketd:
 *
 *   send [--no-delim] FRAME...  one message of these frames after the
 *                               delimiter (none with --no-delim): j:JSON
 *                               (encoded as a request), x:HEX (raw bytes),
 *                               e (empty); prints each frame of the reply
 *   big BYTES                   a status request padded to BYTES bytes
 *   amplify COUNT               COUNT get requests whose "id" is an array
 *                               of empty maps filling 2 MiB; prints the
 *                               first reply's error
 *   unread COUNT SECONDS        COUNT queries of about 1 MB of reply each,
 *                               sent and never read; waits SECONDS
 *   flood COUNT TEXT            COUNT searches for TEXT pipelined from one
 *                               client while another asks for status every
 *                               20 ms; prints the slowest status in ms and
 *                               how the searches were answered
 *
 * Replies are printed as JSON, one frame a line, and an error's sentence
 * again as it is on a line "error: ...".
 */
#include <errno.h>
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
#include "daemon/control.h"
#include "daemon/node.h"
#include "proto/error.h"
#include "proto/limits.h"
#include "proto/value.h"

static long long now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* A request from JSON text; aborts on text that is not one. */
static void encode_json(const char *text, msgpack_sbuffer *sb)
{
	json_error_t jerr;
	json_t *v = json_loads(text, 0, &jerr);
	if (!v || value_encode_message(v, sb) != 0) {
		fprintf(stderr, "not a request: %s\n", text);
		abort();
	}
	json_decref(v);
}

/* Prints one reply frame: JSON if it decodes, else its size. */
static void print_frame(const void *p, size_t len)
{
	json_t *v = NULL;
	char err[256];
	if (len == 0) {
		printf("(empty frame)\n");
	} else if (value_decode_message_limit(p, len, 0, &v, err, sizeof(err)) == 0) {
		char *s = json_dumps(v, JSON_COMPACT | JSON_SORT_KEYS);
		printf("%s\n", s);
		free(s);
		/* The sentence as it is, unescaped, for tests to look for. */
		if (json_is_string(json_object_get(v, "error")))
			printf("error: %s\n", json_string_value(json_object_get(v, "error")));
		json_decref(v);
	} else {
		printf("(%zu bytes: %s)\n", len, err);
	}
}

/* Waits up to ms for a message on sock and prints its frames; 0, or -1 if none came. */
static int print_reply(void *sock, int ms)
{
	zmq_pollitem_t it = {sock, 0, ZMQ_POLLIN, 0};
	if (zmq_poll(&it, 1, ms) <= 0) {
		printf("no reply within %d ms\n", ms);
		return -1;
	}
	int more = 1;
	while (more) {
		zmq_msg_t m;
		zmq_msg_init(&m);
		if (zmq_msg_recv(&m, sock, 0) < 0)
			return -1;
		print_frame(zmq_msg_data(&m), zmq_msg_size(&m));
		more = zmq_msg_more(&m);
		zmq_msg_close(&m);
	}
	return 0;
}

/* Receives one message within ms; its last frame's reply decoded into *reply. */
static int recv_reply(void *sock, int ms, json_t **reply)
{
	zmq_pollitem_t it = {sock, 0, ZMQ_POLLIN, 0};
	*reply = NULL;
	if (zmq_poll(&it, 1, ms) <= 0)
		return -1;
	int more = 1;
	while (more) {
		zmq_msg_t m;
		char err[256];
		zmq_msg_init(&m);
		if (zmq_msg_recv(&m, sock, 0) < 0)
			return -1;
		more = zmq_msg_more(&m);
		if (!more && zmq_msg_size(&m) > 0)
			value_decode_message_limit(zmq_msg_data(&m), zmq_msg_size(&m), 0, reply,
			                           err, sizeof(err));
		zmq_msg_close(&m);
	}
	return *reply ? 0 : -1;
}

static void send_request(void *sock, const void *p, size_t len, int flags)
{
	if (zmq_send(sock, "", 0, ZMQ_SNDMORE | flags) < 0 || zmq_send(sock, p, len, flags) < 0)
		printf("cannot send: %s\n", zmq_strerror(zmq_errno()));
}

static int hex_value(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

static int client_send(void *sock, int argc, char **argv)
{
	int delim = 1, i = 0;
	if (argc > 0 && strcmp(argv[0], "--no-delim") == 0) {
		delim = 0;
		i = 1;
	}
	if (delim)
		zmq_send(sock, "", 0, ZMQ_SNDMORE);
	for (; i < argc; i++) {
		int flags = i + 1 < argc ? ZMQ_SNDMORE : 0;
		msgpack_sbuffer sb;
		msgpack_sbuffer_init(&sb);
		if (strncmp(argv[i], "j:", 2) == 0) {
			encode_json(argv[i] + 2, &sb);
		} else if (strncmp(argv[i], "x:", 2) == 0) {
			for (const char *h = argv[i] + 2; h[0] && h[1]; h += 2) {
				char b = (char)(hex_value(h[0]) << 4 | hex_value(h[1]));
				msgpack_sbuffer_write(&sb, &b, 1);
			}
		}
		zmq_send(sock, sb.data, sb.size, flags);
		msgpack_sbuffer_destroy(&sb);
	}
	return print_reply(sock, 5000) == 0 ? 0 : 1;
}

/* {"cmd":"status","pad":"xxx..."} of exactly bytes bytes (str32 header). */
static int client_big(void *sock, size_t bytes)
{
	static const char head[] = "\x82\xa3"
	                           "cmd\xa6status\xa3pad\xdb";
	size_t hl = sizeof(head) - 1, body = bytes - hl - 4;
	uint8_t *p = malloc(bytes);
	if (!p || bytes < hl + 4)
		return 2;
	memcpy(p, head, hl);
	p[hl] = (uint8_t)(body >> 24);
	p[hl + 1] = (uint8_t)(body >> 16);
	p[hl + 2] = (uint8_t)(body >> 8);
	p[hl + 3] = (uint8_t)body;
	memset(p + hl + 4, 'x', body);
	send_request(sock, p, bytes, 0);
	free(p);
	/* Beyond ZMQ_MAXMSGSIZE no reply comes: do not wait long for it. */
	return print_reply(sock, bytes > LOKET_CONTROL_MAX_READ ? 1500 : 5000) == 0 ? 0 : 1;
}

/*
 * {"cmd":"get","coll":"expert","id":[{},{},...]}: the type of "id" is
 * checked once decoded, so before the bound on values this decoded whole,
 * about 490 MB of objects for 2 MiB.
 */
static int client_amplify(void *sock, int count)
{
	static const char head[] = "\x83\xa3"
	                           "cmd\xa3get\xa4"
	                           "coll\xa6"
	                           "expert\xa2id\xdd";
	size_t bytes = LOKET_MAX_MESSAGE_BYTES - 64, hl = sizeof(head) - 1, n = bytes - hl - 4;
	uint8_t *p = malloc(bytes);
	if (!p)
		return 2;
	memcpy(p, head, hl);
	p[hl] = (uint8_t)(n >> 24);
	p[hl + 1] = (uint8_t)(n >> 16);
	p[hl + 2] = (uint8_t)(n >> 8);
	p[hl + 3] = (uint8_t)n;
	memset(p + hl + 4, 0x80, n);
	for (int i = 0; i < count; i++)
		send_request(sock, p, bytes, 0);
	free(p);
	int answered = 0;
	char first[512] = "";
	for (int i = 0; i < count; i++) {
		json_t *reply;
		if (recv_reply(sock, 30000, &reply) != 0)
			break;
		answered++;
		if (!first[0])
			snprintf(first, sizeof(first), "%s",
			         json_string_value(json_object_get(reply, "error"))
			             ? json_string_value(json_object_get(reply, "error"))
			             : "ok");
		json_decref(reply);
	}
	printf("answered %d of %d: %s\n", answered, count, first);
	return answered == count ? 0 : 1;
}

static int client_unread(void *sock, const char *endpoint, int count, int seconds)
{
	/* ZeroMQ reads ahead of the application: keep it from taking in the replies. */
	int one = 1;
	zmq_setsockopt(sock, ZMQ_RCVHWM, &one, sizeof(one));
	zmq_setsockopt(sock, ZMQ_RCVBUF, &one, sizeof(one));
	zmq_disconnect(sock, endpoint);
	if (zmq_connect(sock, endpoint) != 0)
		return 2;
	msgpack_sbuffer sb;
	msgpack_sbuffer_init(&sb);
	/* About 1 MB of hex text in one cell, under the query's 1 MiB of values. */
	encode_json("{\"cmd\":\"query\",\"sql\":\"SELECT hex(zeroblob(480000)) AS x\"}", &sb);
	int sent = 0;
	for (int i = 0; i < count; i++) {
		if (zmq_send(sock, "", 0, ZMQ_SNDMORE) < 0 ||
		    zmq_send(sock, sb.data, sb.size, 0) < 0)
			break;
		sent++;
	}
	msgpack_sbuffer_destroy(&sb);
	printf("sent %d\n", sent);
	fflush(stdout);
	sleep((unsigned)seconds);
	return 0;
}

static int client_flood(void *zctx, const char *endpoint, void *sock, int count, const char *text)
{
	void *status = zmq_socket(zctx, ZMQ_REQ);
	int linger = 0;
	zmq_setsockopt(status, ZMQ_LINGER, &linger, sizeof(linger));
	if (zmq_connect(status, endpoint) != 0)
		return 2;
	json_t *req = json_pack("{s:s, s:s}", "cmd", "search", "text", text);
	msgpack_sbuffer sb, st;
	msgpack_sbuffer_init(&sb);
	msgpack_sbuffer_init(&st);
	value_encode_message(req, &sb);
	json_decref(req);
	encode_json("{\"cmd\":\"status\"}", &st);

	/* All searches are sent at once: the daemon has them queued while status asks. */
	for (int i = 0; i < count; i++)
		send_request(sock, sb.data, sb.size, 0);
	int answered = 0, refused = 0, asked = 0;
	long long worst = 0, start = now_ms(), next_status = start;
	char first_error[512] = "";
	while (answered < count && now_ms() - start < 60000) {
		json_t *reply;
		if (now_ms() >= next_status) {
			long long t0 = now_ms();
			zmq_send(status, st.data, st.size, 0);
			if (recv_reply(status, 10000, &reply) != 0) {
				printf("status got no reply within 10 s\n");
				return 1;
			}
			json_decref(reply);
			if (now_ms() - t0 > worst)
				worst = now_ms() - t0;
			asked++;
			next_status = now_ms() + 20;
		}
		zmq_pollitem_t it = {sock, 0, ZMQ_POLLIN, 0};
		if (zmq_poll(&it, 1, 5) > 0 && recv_reply(sock, 0, &reply) == 0) {
			answered++;
			if (!json_is_true(json_object_get(reply, "ok"))) {
				refused++;
				if (!first_error[0])
					snprintf(
					    first_error, sizeof(first_error), "%s",
					    json_string_value(json_object_get(reply, "error")));
			}
			json_decref(reply);
		}
	}
	printf("status asked %d times, slowest %lld ms; searches answered %d of %d in %lld ms, "
	       "refused %d%s%s\n",
	       asked, worst, answered, count, now_ms() - start, refused, first_error[0] ? ": " : "",
	       first_error);
	msgpack_sbuffer_destroy(&sb);
	msgpack_sbuffer_destroy(&st);
	zmq_close(status);
	return answered == count ? 0 : 1;
}

static int client_main(int argc, char **argv)
{
	char endpoint[512];
	if (argc < 4) {
		fprintf(stderr, "usage: test_control_limits --client SOCKET MODE ARGS...\n");
		return 2;
	}
	snprintf(endpoint, sizeof(endpoint), "ipc://%s", argv[2]);
	void *zctx = zmq_ctx_new();
	void *sock = zmq_socket(zctx, ZMQ_DEALER);
	int linger = 0, rc = 2;
	zmq_setsockopt(sock, ZMQ_LINGER, &linger, sizeof(linger));
	if (zmq_connect(sock, endpoint) != 0) {
		fprintf(stderr, "cannot connect to %s\n", endpoint);
		return 2;
	}
	const char *mode = argv[3];
	if (strcmp(mode, "send") == 0)
		rc = client_send(sock, argc - 4, argv + 4);
	else if (strcmp(mode, "big") == 0 && argc == 5)
		rc = client_big(sock, strtoull(argv[4], NULL, 10));
	else if (strcmp(mode, "amplify") == 0 && argc == 5)
		rc = client_amplify(sock, atoi(argv[4]));
	else if (strcmp(mode, "unread") == 0 && argc == 6)
		rc = client_unread(sock, endpoint, atoi(argv[4]), atoi(argv[5]));
	else if (strcmp(mode, "flood") == 0 && argc == 6)
		rc = client_flood(zctx, endpoint, sock, atoi(argv[4]), argv[5]);
	else
		fprintf(stderr, "unknown mode %s\n", mode);
	fflush(stdout);
	zmq_close(sock);
	zmq_ctx_term(zctx);
	return rc;
}

/* ---- unit tests ---- */

struct fixture {
	char dir[64];
	struct node *node;
	uv_loop_t loop;
	void *zctx;
	struct control control;
	void *client;
};

static void on_control_closed(struct control *c)
{
	(void)c;
}

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	struct config_parser *cp;
	struct config *cfg;
	struct key *k;
	char err[512];
	snprintf(f->dir, sizeof(f->dir), "/tmp/loket-test-control.XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	assert_int_equal(config_parse_begin(&cp, "test.conf", f->dir), 0);
	const char *lines[] = {"[node]", "name = t", "data = data", "key = node.key"};
	for (size_t i = 0; i < 4; i++)
		assert_int_equal(
		    config_parse_line(cp, lines[i], strlen(lines[i]), err, sizeof(err)), 0);
	assert_int_equal(config_parse_finish(cp, &cfg, err, sizeof(err)), 0);
	assert_int_equal(key_generate(&k), 0);
	assert_int_equal(node_open_take(cfg, k, &f->node, err, sizeof(err)), 0);
	assert_int_equal(uv_loop_init(&f->loop), 0);
	f->zctx = zmq_ctx_new();
	assert_int_equal(control_init(&f->control, &f->loop, f->zctx, f->node, err, sizeof(err)),
	                 0);
	f->client = zmq_socket(f->zctx, ZMQ_DEALER);
	int linger = 0;
	zmq_setsockopt(f->client, ZMQ_LINGER, &linger, sizeof(linger));
	assert_int_equal(zmq_connect(f->client, f->control.endpoint), 0);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	char cmd[128];
	zmq_close(f->client);
	control_close(&f->control, on_control_closed);
	while (uv_run(&f->loop, UV_RUN_DEFAULT) != 0)
		;
	assert_int_equal(uv_loop_close(&f->loop), 0);
	zmq_ctx_term(f->zctx);
	node_free(f->node);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", f->dir);
	assert_int_equal(system(cmd), 0);
	free(f);
	return 0;
}

/* Runs the loop until the client has a message (or 5 s pass); its frames into out. */
static size_t await(struct fixture *f, zmq_msg_t *out, size_t max)
{
	long long until = now_ms() + 5000;
	zmq_pollitem_t it = {f->client, 0, ZMQ_POLLIN, 0};
	while (now_ms() < until) {
		uv_run(&f->loop, UV_RUN_NOWAIT);
		if (zmq_poll(&it, 1, 1) > 0)
			break;
	}
	size_t n = 0;
	int more = 1;
	while (more && n < max && zmq_poll(&it, 1, 0) >= 0) {
		zmq_msg_init(&out[n]);
		if (zmq_msg_recv(&out[n], f->client, ZMQ_DONTWAIT) < 0) {
			zmq_msg_close(&out[n]);
			break;
		}
		more = zmq_msg_more(&out[n]);
		n++;
	}
	return n;
}

/* The reply in the last of n frames; the frames are closed. */
static json_t *reply_of(zmq_msg_t *frames, size_t n)
{
	json_t *v = NULL;
	char err[256];
	assert_true(n > 0);
	assert_int_equal(value_decode_message_limit(zmq_msg_data(&frames[n - 1]),
	                                            zmq_msg_size(&frames[n - 1]), 0, &v, err,
	                                            sizeof(err)),
	                 0);
	for (size_t i = 0; i < n; i++)
		zmq_msg_close(&frames[i]);
	return v;
}

static void send_frames(void *sock, const char *const *frames, const size_t *lens, size_t n)
{
	for (size_t i = 0; i < n; i++)
		assert_true(zmq_send(sock, frames[i], lens[i], i + 1 < n ? ZMQ_SNDMORE : 0) >= 0);
}

/* A well-framed request is answered behind the delimiter; a misframed one is told why. */
static void test_every_request_answered(void **state)
{
	struct fixture *f = *state;
	zmq_msg_t frames[4];
	msgpack_sbuffer sb;
	msgpack_sbuffer_init(&sb);
	encode_json("{\"cmd\":\"status\"}", &sb);

	const char *ok[] = {"", sb.data};
	size_t ok_len[] = {0, sb.size};
	send_frames(f->client, ok, ok_len, 2);
	size_t n = await(f, frames, 4);
	assert_int_equal(n, 2);
	assert_int_equal(zmq_msg_size(&frames[0]), 0);
	json_t *r = reply_of(frames, n);
	assert_true(json_is_true(json_object_get(r, "ok")));
	json_decref(r);

	/* No delimiter: the reply comes without one, as the client framed it. */
	const char *bare[] = {sb.data};
	send_frames(f->client, bare, &sb.size, 1);
	n = await(f, frames, 4);
	assert_int_equal(n, 1);
	r = reply_of(frames, n);
	assert_false(json_is_true(json_object_get(r, "ok")));
	assert_int_equal(json_integer_value(json_object_get(r, "code")), LOKET_E_BAD_REQUEST);
	assert_true(json_is_false(json_object_get(r, "retry")));
	assert_non_null(strstr(json_string_value(json_object_get(r, "error")), "delimiter"));
	json_decref(r);

	/* Two payload frames, and a delimiter with nothing after it. */
	const char *two[] = {"", sb.data, sb.data};
	size_t two_len[] = {0, sb.size, sb.size};
	send_frames(f->client, two, two_len, 3);
	n = await(f, frames, 4);
	r = reply_of(frames, n);
	assert_string_equal(json_string_value(json_object_get(r, "error")),
	                    "a request is one frame; this one came in 2 frames");
	json_decref(r);
	const char *none[] = {""};
	size_t none_len[] = {0};
	send_frames(f->client, none, none_len, 1);
	n = await(f, frames, 4);
	r = reply_of(frames, n);
	assert_string_equal(json_string_value(json_object_get(r, "error")),
	                    "the empty delimiter frame came without a request after it");
	json_decref(r);
	msgpack_sbuffer_destroy(&sb);
	assert_true(f->control.bad_requests >= 3);
}

/* A request over the size limit, but within what the socket reads, is answered. */
static void test_oversize_answered(void **state)
{
	struct fixture *f = *state;
	zmq_msg_t frames[4];
	size_t len = LOKET_MAX_MESSAGE_BYTES + 1;
	char *big = calloc(1, len);
	assert_non_null(big);
	big[0] = (char)0x80;
	const char *req[] = {"", big};
	size_t lens[] = {0, len};
	send_frames(f->client, req, lens, 2);
	size_t n = await(f, frames, 4);
	json_t *r = reply_of(frames, n);
	assert_int_equal(json_integer_value(json_object_get(r, "code")), LOKET_E_TOO_BIG);
	assert_string_equal(json_string_value(json_object_get(r, "error")),
	                    "request of 2097153 bytes is over the limit of 2097152 bytes");
	json_decref(r);
	free(big);
}

/* Replies left unread stop at the high-water mark: later ones are dropped and counted. */
static void test_unread_replies_bounded(void **state)
{
	struct fixture *f = *state;
	msgpack_sbuffer sb;
	msgpack_sbuffer_init(&sb);
	encode_json("{\"cmd\":\"query\",\"sql\":\"SELECT hex(zeroblob(480000)) AS x\"}", &sb);
	const char *req[] = {"", sb.data};
	size_t lens[] = {0, sb.size};
	/* A client whose ZeroMQ takes in no more than it reads, as one that never reads. */
	int one = 1;
	zmq_setsockopt(f->client, ZMQ_RCVHWM, &one, sizeof(one));
	zmq_setsockopt(f->client, ZMQ_RCVBUF, &one, sizeof(one));
	zmq_disconnect(f->client, f->control.endpoint);
	assert_int_equal(zmq_connect(f->client, f->control.endpoint), 0);
	for (int i = 0; i < 40; i++)
		send_frames(f->client, req, lens, 2);
	long long until = now_ms() + 20000;
	while (f->control.requests < 40 && now_ms() < until)
		uv_run(&f->loop, UV_RUN_NOWAIT);
	assert_int_equal(f->control.requests, 40);
	/* The socket buffers hold a few replies besides the high-water mark; not 40. */
	assert_true(f->control.dropped_replies >= 20);
	msgpack_sbuffer_destroy(&sb);
}

int main(int argc, char **argv)
{
	if (argc > 1 && strcmp(argv[1], "--client") == 0)
		return client_main(argc, argv);
	if (sodium_init() < 0)
		return 1;
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_every_request_answered, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_oversize_answered, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_unread_replies_bounded, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
