/*
 * control: a request whose handler answers later (CONTROL_LATER, as the
 * backup does) leaves other clients served meanwhile, holds back the next
 * requests of its own client until control_answer has sent its reply, and
 * then answers those in order; closing with an answer still owed leaves
 * nothing behind, and an answer after the close is only freed.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>
#include <zmq.h>

#include "daemon/control.h"
#include "proto/value.h"

struct fixture {
	uv_loop_t loop;
	void *ctx;
	struct config cfg;
	struct node node;
	struct control control;
	void *a, *b; /* two clients */
	int later_calls, echo_calls, closed;
};

static char dir[] = "/tmp/test_control_XXXXXX";

static int handle_later(void *data, const json_t *req, json_t **result, char *err, size_t errlen)
{
	(void)req;
	(void)result;
	(void)err;
	(void)errlen;
	struct fixture *f = data;
	f->later_calls++;
	return CONTROL_LATER;
}

static int handle_echo(void *data, const json_t *req, json_t **result, char *err, size_t errlen)
{
	(void)err;
	(void)errlen;
	struct fixture *f = data;
	f->echo_calls++;
	*result = json_pack("{s:O}", "n", json_object_get(req, "n"));
	return 0;
}

static void *client(struct fixture *f)
{
	void *s = zmq_socket(f->ctx, ZMQ_DEALER);
	int linger = 0;
	assert_non_null(s);
	zmq_setsockopt(s, ZMQ_LINGER, &linger, sizeof(linger));
	assert_int_equal(zmq_connect(s, f->control.endpoint), 0);
	return s;
}

static void send_req(void *s, json_t *req_take)
{
	msgpack_sbuffer out;
	msgpack_sbuffer_init(&out);
	assert_int_equal(value_encode_message(req_take, &out), 0);
	json_decref(req_take);
	assert_int_equal(zmq_send(s, "", 0, ZMQ_SNDMORE), 0);
	assert_int_equal(zmq_send(s, out.data, out.size, 0), (int)out.size);
	msgpack_sbuffer_destroy(&out);
}

/* A reply waiting on s, or NULL: runs the loop a little while looking. */
static json_t *reply(struct fixture *f, void *s, int tries)
{
	for (int i = 0; i < tries; i++) {
		uv_run(&f->loop, UV_RUN_NOWAIT);
		zmq_pollitem_t item = {.socket = s, .events = ZMQ_POLLIN};
		if (zmq_poll(&item, 1, 5) != 1)
			continue;
		char empty[8], buf[512];
		assert_int_equal(zmq_recv(s, empty, sizeof(empty), 0), 0);
		int n = zmq_recv(s, buf, sizeof(buf), 0);
		assert_true(n > 0 && n < (int)sizeof(buf));
		json_t *v;
		char err[128];
		assert_int_equal(
		    value_decode_message((const uint8_t *)buf, (size_t)n, &v, err, sizeof(err)), 0);
		return v;
	}
	return NULL;
}

static void run_until(struct fixture *f, int *flag, int value)
{
	for (int i = 0; i < 2000 && *flag != value; i++) {
		uv_run(&f->loop, UV_RUN_NOWAIT);
		zmq_poll(NULL, 0, 1);
	}
	assert_int_equal(*flag, value);
}

static void on_closed(struct control *c)
{
	struct fixture *f = (struct fixture *)((char *)c - offsetof(struct fixture, control));
	f->closed = 1;
}

static int setup(void **state)
{
	static struct fixture f;
	char err[512];

	f = (struct fixture){0};
	snprintf(f.cfg.data, sizeof(f.cfg.data), "%s", dir);
	f.node.cfg = &f.cfg;
	assert_int_equal(uv_loop_init(&f.loop), 0);
	f.ctx = zmq_ctx_new();
	assert_int_equal(control_init(&f.control, &f.loop, f.ctx, &f.node, err, sizeof(err)), 0);
	assert_int_equal(control_add_command(&f.control, "later", handle_later, &f), 0);
	assert_int_equal(control_add_command(&f.control, "echo", handle_echo, &f), 0);
	f.a = client(&f);
	f.b = client(&f);
	*state = &f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	if (!f->closed)
		control_close(&f->control, on_closed);
	run_until(f, &f->closed, 1);
	while (uv_run(&f->loop, UV_RUN_NOWAIT) != 0)
		;
	int rc = uv_loop_close(&f->loop);
	zmq_close(f->a);
	zmq_close(f->b);
	zmq_ctx_term(f->ctx);
	return rc;
}

static void test_answer_later_in_order(void **state)
{
	struct fixture *f = *state;

	send_req(f->a, json_pack("{s:s}", "cmd", "later"));
	run_until(f, &f->later_calls, 1);
	send_req(f->a, json_pack("{s:s, s:i}", "cmd", "echo", "n", 1));
	send_req(f->b, json_pack("{s:s, s:i}", "cmd", "echo", "n", 2));

	/* b is served while a waits; a's echo waits behind a's first request. */
	json_t *r = reply(f, f->b, 400);
	assert_non_null(r);
	assert_int_equal(json_integer_value(json_object_get(json_object_get(r, "result"), "n")), 2);
	json_decref(r);
	for (int i = 0; i < 400 && f->control.n_parked == 0; i++)
		uv_run(&f->loop, UV_RUN_NOWAIT);
	assert_int_equal(f->control.n_parked, 1);
	assert_null(reply(f, f->a, 20));
	assert_int_equal(f->echo_calls, 1);

	control_answer(&f->control, 0, json_pack("{s:s}", "done", "yes"), NULL);
	r = reply(f, f->a, 400);
	assert_non_null(r);
	assert_string_equal(
	    json_string_value(json_object_get(json_object_get(r, "result"), "done")), "yes");
	json_decref(r);
	r = reply(f, f->a, 400);
	assert_non_null(r);
	assert_int_equal(json_integer_value(json_object_get(json_object_get(r, "result"), "n")), 1);
	json_decref(r);
	assert_int_equal(f->control.n_parked, 0);

	/* An error answered later reads as any error reply. */
	send_req(f->a, json_pack("{s:s}", "cmd", "later"));
	run_until(f, &f->later_calls, 2);
	control_answer(&f->control, -16, NULL, "busy here");
	r = reply(f, f->a, 400);
	assert_non_null(r);
	assert_true(json_is_false(json_object_get(r, "ok")));
	assert_string_equal(json_string_value(json_object_get(r, "error")), "busy here");
	assert_int_equal(json_integer_value(json_object_get(r, "code")), -16);
	json_decref(r);
}

static void test_close_with_an_answer_owed(void **state)
{
	struct fixture *f = *state;

	send_req(f->a, json_pack("{s:s}", "cmd", "later"));
	run_until(f, &f->later_calls, 1);
	send_req(f->a, json_pack("{s:s, s:i}", "cmd", "echo", "n", 1));
	for (int i = 0; i < 400 && f->control.n_parked == 0; i++) {
		uv_run(&f->loop, UV_RUN_NOWAIT);
		zmq_poll(NULL, 0, 1);
	}
	assert_int_equal(f->control.n_parked, 1);
	control_close(&f->control, on_closed);
	run_until(f, &f->closed, 1);
	/* Nobody to answer: the result is only freed (leak-checked under ASan). */
	control_answer(&f->control, 0, json_pack("{s:s}", "late", "yes"), NULL);
	assert_int_equal(f->echo_calls, 0);
}

int main(void)
{
	if (!mkdtemp(dir))
		return 1;
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_answer_later_in_order, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_close_with_an_answer_owed, setup, teardown),
	};
	int rc = cmocka_run_group_tests(tests, NULL, NULL);
	char cmd[300];
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	if (system(cmd) != 0)
		return 1;
	return rc;
}
