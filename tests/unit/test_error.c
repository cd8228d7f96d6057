/* How a message quotes input (error_quote): the one rule of proto/error.h, case by case. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "proto/error.h"

/* Quotes len bytes of s into a buffer of ERROR_QUOTE_SIZE and checks the result. */
static void expect_quote(const char *s, size_t len, const char *want)
{
	char q[ERROR_QUOTE_SIZE];
	assert_ptr_equal(error_quote(q, sizeof(q), s, len), q);
	assert_string_equal(q, want);
}

static void test_quotes_and_escapes(void **state)
{
	(void)state;
	expect_quote("titel", 5, "\"titel\"");
	expect_quote("", 0, "\"\"");
	expect_quote("ends in a space ", 16, "\"ends in a space \"");
	expect_quote("a\"b\\c", 5, "\"a\\\"b\\\\c\"");
	/* Control characters: a newline, a NUL, ESC, DEL and a C1 control (U+0085). */
	expect_quote("a\nb", 3, "\"a\\x0ab\"");
	expect_quote("a\0b", 3, "\"a\\x00b\"");
	expect_quote("\x1b[2J", 4, "\"\\x1b[2J\"");
	expect_quote("\x7f", 1, "\"\\x7f\"");
	expect_quote("\xc2\x85", 2, "\"\\xc2\\x85\"");
}

static void test_printable_utf8_stays(void **state)
{
	(void)state;
	expect_quote("Zoë", strlen("Zoë"), "\"Zoë\"");
	expect_quote("\xc2\xa0|€|😀", strlen("\xc2\xa0|€|😀"), "\"\xc2\xa0|€|😀\"");
	/* What is not UTF-8 is escaped byte by byte: stray, overlong, surrogate, cut short. */
	expect_quote("\xff", 1, "\"\\xff\"");
	expect_quote("\xc0\xaf", 2, "\"\\xc0\\xaf\"");
	expect_quote("\xed\xa0\x80", 3, "\"\\xed\\xa0\\x80\"");
	expect_quote("a\xc3", 2, "\"a\\xc3\"");
}

static void test_bounded(void **state)
{
	(void)state;
	char in[ERROR_QUOTE_MAX + 2], want[ERROR_QUOTE_MAX + 8];
	memset(in, 'a', sizeof(in));

	/* Exactly the bound: all of it, no "...". */
	snprintf(want, sizeof(want), "\"%.*s\"", (int)ERROR_QUOTE_MAX, in);
	expect_quote(in, ERROR_QUOTE_MAX, want);
	/* One byte more: the bound, then "..." outside the quotes. */
	snprintf(want, sizeof(want), "\"%.*s\"...", (int)ERROR_QUOTE_MAX, in);
	expect_quote(in, ERROR_QUOTE_MAX + 1, want);
	/* A character across the bound is left out whole. */
	memcpy(in + ERROR_QUOTE_MAX - 1, "é", 2);
	snprintf(want, sizeof(want), "\"%.*s\"...", (int)ERROR_QUOTE_MAX - 1, in);
	expect_quote(in, ERROR_QUOTE_MAX + 1, want);

	/* Every byte escaped still fits ERROR_QUOTE_SIZE. */
	char ctl[ERROR_QUOTE_MAX + 1], q[ERROR_QUOTE_SIZE];
	memset(ctl, 1, sizeof(ctl));
	error_quote(q, sizeof(q), ctl, sizeof(ctl));
	assert_int_equal(strlen(q), 4 * ERROR_QUOTE_MAX + 5);
	assert_string_equal(q + strlen(q) - 12, "\\x01\\x01\"...");
}

static void test_small_buffer(void **state)
{
	(void)state;
	char q[10];
	assert_string_equal(error_quote(q, sizeof(q), "abcdefghij", 10), "\"abcd\"...");
	assert_string_equal(error_quote(q, 7, "abc", 3), "");
}

static void test_str_and_formatted(void **state)
{
	(void)state;
	char q[ERROR_QUOTE_SIZE], want[ERROR_QUOTE_MAX + 8];
	assert_string_equal(error_quote_str(q, sizeof(q), "a\tb"), "\"a\\x09b\"");
	assert_string_equal(error_quotef(q, sizeof(q), "%s/%s/%d", "expert", "lumc", 7),
	                    "\"expert/lumc/7\"");

	char id[2 * ERROR_QUOTE_MAX];
	memset(id, 'x', sizeof(id) - 1);
	id[sizeof(id) - 1] = '\0';
	snprintf(want, sizeof(want), "\"q/%.*s\"...", (int)ERROR_QUOTE_MAX - 2, id);
	assert_string_equal(error_quotef(q, sizeof(q), "q/%s", id), want);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_quotes_and_escapes),
	    cmocka_unit_test(test_printable_utf8_stays),
	    cmocka_unit_test(test_bounded),
	    cmocka_unit_test(test_small_buffer),
	    cmocka_unit_test(test_str_and_formatted),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
