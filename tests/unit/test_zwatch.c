/*
 * zwatch: every message reaches the callback, whether it was queued before
 * the watch began, arrived in a burst beyond the per-iteration budget, or
 * came while the loop sat idle; and closing leaves the loop empty.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <zmq.h>

#include "daemon/zwatch.h"

#define BURST 500

struct fixture {
	uv_loop_t loop;
	void *ctx;
	void *rx;
	void *tx;
	struct zwatch watch;
	uv_timer_t timer;
	int received;
	int expected;
	int closed;
};

static void on_readable(struct zwatch *w, void *zsock, void *data)
{
	(void)w;
	struct fixture *f = data;
	char buf[16];
	if (zmq_recv(zsock, buf, sizeof(buf), ZMQ_DONTWAIT) >= 0)
		f->received++;
	if (f->received == f->expected)
		uv_stop(&f->loop);
}

static void on_closed(struct zwatch *w)
{
	struct fixture *f = (struct fixture *)((char *)w - offsetof(struct fixture, watch));
	f->closed++;
}

static void send_n(void *tx, int n)
{
	for (int i = 0; i < n; i++)
		assert_int_equal(zmq_send(tx, "m", 1, 0), 1);
}

static int setup(void **state)
{
	static struct fixture f;
	f = (struct fixture){0};
	assert_int_equal(uv_loop_init(&f.loop), 0);
	f.ctx = zmq_ctx_new();
	f.rx = zmq_socket(f.ctx, ZMQ_PAIR);
	f.tx = zmq_socket(f.ctx, ZMQ_PAIR);
	assert_int_equal(zmq_bind(f.rx, "inproc://zwatch"), 0);
	assert_int_equal(zmq_connect(f.tx, "inproc://zwatch"), 0);
	*state = &f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	zwatch_close(&f->watch, on_closed);
	uv_run(&f->loop, UV_RUN_DEFAULT);
	assert_int_equal(f->closed, 1);
	assert_int_equal(uv_loop_close(&f->loop), 0);
	zmq_close(f->rx);
	zmq_close(f->tx);
	zmq_ctx_term(f->ctx);
	return 0;
}

static void test_burst_beyond_budget(void **state)
{
	struct fixture *f = *state;
	send_n(f->tx, BURST); /* queued before the watch begins */
	f->expected = BURST;
	assert_int_equal(zwatch_init(&f->loop, &f->watch, f->rx, on_readable, f), 0);
	uv_run(&f->loop, UV_RUN_DEFAULT);
	assert_int_equal(f->received, BURST);
}

static void on_timer(uv_timer_t *t)
{
	struct fixture *f = t->data;
	send_n(f->tx, 3);
	uv_close((uv_handle_t *)t, NULL);
}

static void test_message_after_idle(void **state)
{
	struct fixture *f = *state;
	f->expected = 3;
	assert_int_equal(zwatch_init(&f->loop, &f->watch, f->rx, on_readable, f), 0);
	uv_timer_init(&f->loop, &f->timer);
	f->timer.data = f;
	uv_timer_start(&f->timer, on_timer, 20, 0);
	uv_run(&f->loop, UV_RUN_DEFAULT);
	assert_int_equal(f->received, 3);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_burst_beyond_budget, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_message_after_idle, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
