/* The msgpack cursor: each header form, and every way a header can lie. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "proto/error.h"
#include "proto/mpread.h"

static void test_str_forms(void **state)
{
	(void)state;
	static const uint8_t fix[] = {0xa2, 'h', 'i', 0xc0};
	struct mpread r = mpread_init(fix, sizeof(fix));
	const uint8_t *s;
	size_t len;
	assert_int_equal(mpread_str(&r, &s, &len), 0);
	assert_int_equal(len, 2);
	assert_memory_equal(s, "hi", 2);
	assert_ptr_equal(r.p, fix + 3);
	/* nil is not a str: refused, and the cursor stays. */
	assert_int_equal(mpread_str(&r, &s, &len), LOKET_E_MALFORMED);
	assert_ptr_equal(r.p, fix + 3);

	static const uint8_t s8[] = {0xd9, 3, 'a', 'b', 'c'};
	static const uint8_t s16[] = {0xda, 0, 1, 'x'};
	static const uint8_t s32[] = {0xdb, 0, 0, 0, 1, 'y'};
	r = mpread_init(s8, sizeof(s8));
	assert_int_equal(mpread_str(&r, &s, &len), 0);
	assert_int_equal(len, 3);
	r = mpread_init(s16, sizeof(s16));
	assert_int_equal(mpread_str(&r, &s, &len), 0);
	assert_int_equal(s[0], 'x');
	r = mpread_init(s32, sizeof(s32));
	assert_int_equal(mpread_str(&r, &s, &len), 0);
	assert_int_equal(s[0], 'y');
	assert_ptr_equal(r.p, r.end);
}

static void test_str_truncated(void **state)
{
	(void)state;
	static const uint8_t longer[] = {0xa5, 'a', 'b'};
	static const uint8_t header[] = {0xda, 0};
	const uint8_t *s;
	size_t len;
	struct mpread r = mpread_init(longer, sizeof(longer));
	assert_int_equal(mpread_str(&r, &s, &len), LOKET_E_TRUNCATED);
	r = mpread_init(header, sizeof(header));
	assert_int_equal(mpread_str(&r, &s, &len), LOKET_E_TRUNCATED);
	r = mpread_init(NULL, 0);
	assert_int_equal(mpread_str(&r, &s, &len), LOKET_E_TRUNCATED);
}

static void test_containers(void **state)
{
	(void)state;
	static const uint8_t map[] = {0x81, 0xa1, 'k', 0x01};
	static const uint8_t arr16[] = {0xdc, 0, 2, 0x01, 0x02};
	static const uint8_t map32[] = {0xdf, 0, 0, 0, 1, 0xa1, 'k', 0x01};
	size_t n;
	struct mpread r = mpread_init(map, sizeof(map));
	assert_int_equal(mpread_array(&r, &n), LOKET_E_MALFORMED);
	assert_int_equal(mpread_map(&r, &n), 0);
	assert_int_equal(n, 1);
	assert_ptr_equal(r.p, map + 1);
	r = mpread_init(arr16, sizeof(arr16));
	assert_int_equal(mpread_array(&r, &n), 0);
	assert_int_equal(n, 2);
	r = mpread_init(map32, sizeof(map32));
	assert_int_equal(mpread_map(&r, &n), 0);
	assert_int_equal(n, 1);
}

/* A count no input could hold is refused before anyone allocates for it. */
static void test_counts_bounded(void **state)
{
	(void)state;
	static const uint8_t huge[] = {0xdd, 0xff, 0xff, 0xff, 0xff, 0x01};
	static const uint8_t fix[] = {0x93, 0x01, 0x02};
	static const uint8_t cut[] = {0xde, 0};
	size_t n;
	struct mpread r = mpread_init(huge, sizeof(huge));
	assert_int_equal(mpread_array(&r, &n), LOKET_E_TRUNCATED);
	r = mpread_init(fix, sizeof(fix));
	assert_int_equal(mpread_array(&r, &n), LOKET_E_TRUNCATED);
	r = mpread_init(cut, sizeof(cut));
	assert_int_equal(mpread_map(&r, &n), LOKET_E_TRUNCATED);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_str_forms),
	    cmocka_unit_test(test_str_truncated),
	    cmocka_unit_test(test_containers),
	    cmocka_unit_test(test_counts_bounded),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
