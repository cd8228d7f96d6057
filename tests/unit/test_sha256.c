/* proto/sha256: the CPU's SHA instructions and libsodium give the same digests. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <sodium.h>

#include "proto/sha256.h"

/* Every length up to size, whole and fed in uneven pieces, against libsodium. */
static void check_sha256_lengths(const uint8_t *buf, size_t size)
{
	uint8_t a[32], b[32];
	struct sha256 c;

	for (size_t len = 0; len < size; len += len < 130 ? 1 : 37) {
		sha256(buf, len, a);
		crypto_hash_sha256(b, buf, len);
		assert_memory_equal(a, b, 32);
		/* Fed in uneven pieces. */
		sha256_init(&c);
		for (size_t i = 0; i < len;) {
			size_t k = (i % 7) + 1 < len - i ? (i % 7) + 1 : len - i;

			sha256_update(&c, buf + i, k);
			i += k;
		}
		sha256_final(&c, a);
		assert_memory_equal(a, b, 32);
	}
}

static void test_sha256(void **state)
{
	uint8_t buf[1000], a[32];

	(void)state;
	randombytes_buf(buf, sizeof(buf));
	sha256(buf, 1, a); /* detects the CPU */
	if (sha256_hw == 1)
		print_message("SHA-NI in use\n");
	for (int hw = sha256_hw; hw >= 0; hw--) {
		sha256_hw = hw; /* the CPU's instructions, then libsodium */
		check_sha256_lengths(buf, sizeof(buf));
	}
	sha256_hw = -1;
}

int main(void)
{
	if (sodium_init() < 0)
		return 1;
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_sha256),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
