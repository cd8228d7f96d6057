/* The hybrid logical clock: monotonic whatever the wall clock does. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "daemon/hlc.h"

static void test_follows_wall_clock(void **state)
{
	(void)state;
	struct hlc c = {0};
	uint64_t t = hlc_next(&c, 1000);
	assert_int_equal(HLC_MS(t), 1000);
	assert_int_equal(HLC_COUNTER(t), 0);
	t = hlc_next(&c, 2000);
	assert_int_equal(HLC_MS(t), 2000);
}

static void test_never_goes_back(void **state)
{
	(void)state;
	struct hlc c = {0};
	uint64_t a = hlc_next(&c, 5000);
	uint64_t b = hlc_next(&c, 4000); /* wall clock stepped back */
	uint64_t d = hlc_next(&c, 5000);
	assert_true(b > a);
	assert_true(d > b);
	assert_int_equal(HLC_MS(b), 5000);
	assert_int_equal(HLC_COUNTER(d), 2);
}

static void test_observe_moves_forward(void **state)
{
	(void)state;
	struct hlc c = {0};
	uint64_t remote = (UINT64_C(9000) << 16) | 7;
	hlc_observe(&c, remote);
	assert_true(hlc_next(&c, 1000) > remote);
	hlc_observe(&c, 1); /* an older stamp changes nothing */
	assert_true(hlc_next(&c, 1000) > remote + 1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_follows_wall_clock),
	    cmocka_unit_test(test_never_goes_back),
	    cmocka_unit_test(test_observe_moves_forward),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
