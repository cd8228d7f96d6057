/*
 * Tests of the token buckets of loket-http (http/ratelimit.h) on a clock
 * the test turns by hand: a burst passes, the next request is refused with
 * the seconds to wait, the bucket refills at the rate, clients do not share
 * a bucket, and a table given more clients than it has slots still answers.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>

#include "http/ratelimit.h"
#include "proto/error.h"

static void test_burst_then_rate(void **state)
{
	(void)state;
	struct ratelimit *rl = ratelimit_new(2, 5);
	unsigned retry = 99;

	for (int i = 0; i < 5; i++)
		assert_int_equal(ratelimit_take(rl, "token a", 1000, &retry), 0);
	assert_int_equal(retry, 0);
	assert_int_equal(ratelimit_take(rl, "token a", 1000, &retry), LOKET_E_RATE_LIMITED);
	assert_int_equal(retry, 1); /* 0.5 s at 2 a second, rounded up */
	/* Another client has a bucket of its own. */
	assert_int_equal(ratelimit_take(rl, "token b", 1000, &retry), 0);
	/* Half a second gives one request back, and only one. */
	assert_int_equal(ratelimit_take(rl, "token a", 1500, &retry), 0);
	assert_int_equal(ratelimit_take(rl, "token a", 1500, &retry), LOKET_E_RATE_LIMITED);
	/* A long pause fills the bucket to its burst, no more. */
	for (int i = 0; i < 5; i++)
		assert_int_equal(ratelimit_take(rl, "token a", 100000, &retry), 0);
	assert_int_equal(ratelimit_take(rl, "token a", 100000, &retry), LOKET_E_RATE_LIMITED);
	ratelimit_free(rl);
}

static void test_retry_after(void **state)
{
	(void)state;
	struct ratelimit *rl = ratelimit_new(1, 1);
	unsigned retry;

	assert_int_equal(ratelimit_take(rl, "address 10.0.0.1", 0, &retry), 0);
	assert_int_equal(ratelimit_take(rl, "address 10.0.0.1", 0, &retry), LOKET_E_RATE_LIMITED);
	assert_int_equal(retry, 1);
	assert_int_equal(ratelimit_take(rl, "address 10.0.0.1", 999, &retry), LOKET_E_RATE_LIMITED);
	assert_int_equal(retry, 1);
	assert_int_equal(ratelimit_take(rl, "address 10.0.0.1", 1000, &retry), 0);
	ratelimit_free(rl);
}

/* More clients than slots: each new one still gets a full bucket (the table is fixed). */
static void test_many_clients(void **state)
{
	(void)state;
	struct ratelimit *rl = ratelimit_new(1, 2);
	char client[32];
	unsigned retry;

	assert_int_equal(ratelimit_take(rl, "token busy", 0, &retry), 0);
	assert_int_equal(ratelimit_take(rl, "token busy", 0, &retry), 0);
	for (int i = 0; i < 4 * RATELIMIT_SLOTS; i++) {
		snprintf(client, sizeof(client), "address 10.%d.%d.%d", i >> 16, (i >> 8) & 255,
		         i & 255);
		assert_int_equal(ratelimit_take(rl, client, 0, &retry), 0);
	}
	/* An empty name and an over-long one are clients too. */
	assert_int_equal(ratelimit_take(rl, "", 0, &retry), 0);
	char longname[RATELIMIT_KEY_MAX * 2];
	for (size_t i = 0; i < sizeof(longname) - 1; i++)
		longname[i] = 'x';
	longname[sizeof(longname) - 1] = '\0';
	assert_int_equal(ratelimit_take(rl, longname, 0, &retry), 0);
	assert_int_equal(ratelimit_take(rl, longname, 0, &retry), 0);
	assert_int_equal(ratelimit_take(rl, longname, 0, &retry), LOKET_E_RATE_LIMITED);
	ratelimit_free(rl);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_burst_then_rate),
	    cmocka_unit_test(test_retry_after),
	    cmocka_unit_test(test_many_clients),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
