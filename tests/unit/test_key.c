/*
 * Tests of the key module through its public API: generate, save, load
 * (round trip, refusal to overwrite, refusal of a key file others can read,
 * malformed files), signing checked with libsodium directly, the CURVE
 * public key derivation, and a real CURVE handshake between two sockets
 * armed by key_arm_curve_server / key_arm_curve_client.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sodium.h>
#include <zmq.h>

#include "common/key.h"
#include "proto/error.h"

/* snprintf that fails the test instead of truncating. */
static void fmt(char *buf, size_t size, const char *f, ...) __attribute__((format(printf, 3, 4)));

static void fmt(char *buf, size_t size, const char *f, ...)
{
	va_list ap;
	va_start(ap, f);
	int n = vsnprintf(buf, size, f, ap);
	va_end(ap);
	assert_true(n >= 0 && (size_t)n < size);
}

struct fixture {
	char dir[PATH_MAX];
	char path[PATH_MAX]; /* dir/node.key, not yet created */
};

static int setup(void **state)
{
	struct fixture *fx = calloc(1, sizeof(*fx));
	if (!fx)
		return -1;
	fmt(fx->dir, sizeof(fx->dir), "/tmp/loket-test-key-XXXXXX");
	if (!mkdtemp(fx->dir))
		return -1;
	fmt(fx->path, sizeof(fx->path), "%s/node.key", fx->dir);
	*state = fx;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *fx = *state;
	unlink(fx->path);
	int rc = rmdir(fx->dir);
	free(fx);
	return rc;
}

static void write_file(const char *path, const char *text, mode_t mode)
{
	int fd = open(path, O_CREAT | O_TRUNC | O_WRONLY, mode);
	assert_true(fd >= 0);
	assert_int_equal(fchmod(fd, mode), 0);
	size_t len = strlen(text);
	assert_int_equal(write(fd, text, len), (ssize_t)len);
	assert_int_equal(close(fd), 0);
}

static void test_round_trip(void **state)
{
	struct fixture *fx = *state;
	struct key *k, *back;
	char err[512] = "";
	assert_int_equal(key_generate(&k), 0);
	assert_int_equal(key_save(k, fx->path), 0);

	struct stat st;
	assert_int_equal(stat(fx->path, &st), 0);
	assert_int_equal(st.st_mode & 07777, 0600);
	assert_int_equal(st.st_size, 45);

	/* One line: 44 base64 characters and a newline. */
	char buf[64] = "";
	FILE *f = fopen(fx->path, "r");
	assert_non_null(f);
	assert_non_null(fgets(buf, sizeof(buf), f));
	fclose(f);
	assert_int_equal(strlen(buf), 45);
	assert_int_equal(buf[44], '\n');

	assert_int_equal(key_load(fx->path, &back, err, sizeof(err)), 0);
	uint8_t pk1[32], pk2[32];
	key_public(k, pk1);
	key_public(back, pk2);
	assert_memory_equal(pk1, pk2, 32);

	/* Same key, same (deterministic Ed25519) signature. */
	uint8_t s1[64], s2[64];
	key_sign(k, (const uint8_t *)"x", 1, s1);
	key_sign(back, (const uint8_t *)"x", 1, s2);
	assert_memory_equal(s1, s2, 64);

	key_free(back);
	key_free(k);
	key_free(NULL);
}

static void test_two_keys_differ(void **state)
{
	(void)state;
	struct key *a, *b;
	uint8_t pa[32], pb[32];
	assert_int_equal(key_generate(&a), 0);
	assert_int_equal(key_generate(&b), 0);
	key_public(a, pa);
	key_public(b, pb);
	assert_memory_not_equal(pa, pb, 32);
	key_free(a);
	key_free(b);
}

static void test_save_refuses_overwrite(void **state)
{
	struct fixture *fx = *state;
	struct key *k, *other, *back;
	char err[512];
	assert_int_equal(key_generate(&k), 0);
	assert_int_equal(key_generate(&other), 0);
	assert_int_equal(key_save(k, fx->path), 0);
	assert_int_equal(key_save(other, fx->path), LOKET_E_EXISTS);

	/* The first key is still the one on disk. */
	assert_int_equal(key_load(fx->path, &back, err, sizeof(err)), 0);
	uint8_t p1[32], p2[32];
	key_public(k, p1);
	key_public(back, p2);
	assert_memory_equal(p1, p2, 32);
	key_free(back);
	key_free(other);
	key_free(k);
}

static void test_save_ignores_umask(void **state)
{
	struct fixture *fx = *state;
	struct key *k;
	assert_int_equal(key_generate(&k), 0);
	mode_t old = umask(0);
	int rc = key_save(k, fx->path);
	umask(old);
	assert_int_equal(rc, 0);
	struct stat st;
	assert_int_equal(stat(fx->path, &st), 0);
	assert_int_equal(st.st_mode & 07777, 0600);
	key_free(k);
}

static void test_load_refuses_open_mode(void **state)
{
	struct fixture *fx = *state;
	struct key *k;
	assert_int_equal(key_generate(&k), 0);
	assert_int_equal(key_save(k, fx->path), 0);
	key_free(k);
	assert_int_equal(chmod(fx->path, 0644), 0);

	char err[512] = "", want[PATH_MAX * 2 + 128];
	k = (void *)1;
	assert_int_equal(key_load(fx->path, &k, err, sizeof(err)), LOKET_E_KEY_PERMS);
	assert_null(k);
	fmt(want, sizeof(want),
	    "%s: key file is readable by group or others (mode 0644); run: chmod 600 \"%s\"",
	    fx->path, fx->path);
	assert_string_equal(err, want);

	/* Group-writable is refused too. */
	assert_int_equal(chmod(fx->path, 0620), 0);
	assert_int_equal(key_load(fx->path, &k, err, sizeof(err)), LOKET_E_KEY_PERMS);
	assert_non_null(strstr(err, "(mode 0620); run: chmod 600 "));

	assert_int_equal(chmod(fx->path, 0600), 0);
	assert_int_equal(key_load(fx->path, &k, err, sizeof(err)), 0);
	key_free(k);
}

static void test_load_malformed(void **state)
{
	struct fixture *fx = *state;
	struct key *k = (void *)1;
	char err[512] = "", want[PATH_MAX + 128];
	fmt(want, sizeof(want),
	    "%s: not a key file (expected one line of 44 base64 characters holding a "
	    "32-byte Ed25519 seed)",
	    fx->path);

	static const char *const bad[] = {
	    "",
	    "hello\n",
	    "y5/l8bK92CyMSKzGUGeaaMv8gVrJMDb2TqPSuq/eF34\n",   /* 43 */
	    "y5/l8bK92CyMSKzGUGeaaMv8gVrJMDb2TqPSuq/eF34==\n", /* 45 */
	    "y5/l8bK92CyMSKzGUGeaaMv8gVrJMDb2TqPSuq/eF35=\n",  /* padding bits */
	    "y5/l8bK92CyMSKzGUGeaaMv8gVrJMDb2TqPSuq/eF34=\nsecond line\n",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		write_file(fx->path, bad[i], 0600);
		assert_int_equal(key_load(fx->path, &k, err, sizeof(err)), LOKET_E_MALFORMED);
		assert_null(k);
		assert_string_equal(err, want);
	}

	/* A FIFO is refused at once rather than waited on. */
	assert_int_equal(unlink(fx->path), 0);
	assert_int_equal(mkfifo(fx->path, 0600), 0);
	assert_int_equal(key_load(fx->path, &k, err, sizeof(err)), LOKET_E_MALFORMED);
	assert_null(k);
	fmt(want, sizeof(want), "%s: key file is not a regular file", fx->path);
	assert_string_equal(err, want);
	assert_int_equal(unlink(fx->path), 0);

	/* The valid form loads, with or without the final newline. */
	write_file(fx->path, "y5/l8bK92CyMSKzGUGeaaMv8gVrJMDb2TqPSuq/eF34=", 0600);
	assert_int_equal(key_load(fx->path, &k, err, sizeof(err)), 0);
	key_free(k);

	assert_int_equal(unlink(fx->path), 0);
	assert_int_equal(key_load(fx->path, &k, err, sizeof(err)), -ENOENT);
	fmt(want, sizeof(want), "%s: cannot open key file: No such file or directory", fx->path);
	assert_string_equal(err, want);
}

static void test_sign_verify(void **state)
{
	(void)state;
	struct key *k;
	assert_int_equal(key_generate(&k), 0);
	uint8_t pk[32], sig[64];
	const uint8_t msg[] = "loket/changeset/v1 some bytes";
	key_public(k, pk);
	key_sign(k, msg, sizeof(msg), sig);
	assert_int_equal(crypto_sign_verify_detached(sig, msg, sizeof(msg), pk), 0);

	uint8_t tampered[sizeof(msg)];
	memcpy(tampered, msg, sizeof(msg));
	tampered[0] ^= 1;
	assert_int_not_equal(crypto_sign_verify_detached(sig, tampered, sizeof(msg), pk), 0);

	/* The empty message is signable too. */
	key_sign(k, NULL, 0, sig);
	assert_int_equal(crypto_sign_verify_detached(sig, (const uint8_t *)"", 0, pk), 0);
	key_free(k);
}

static void test_curve_public(void **state)
{
	(void)state;
	struct key *k;
	assert_int_equal(key_generate(&k), 0);
	uint8_t pk[32], curve[32], want[32];
	key_public(k, pk);
	assert_int_equal(key_curve_public(pk, curve), 0);
	assert_int_equal(crypto_sign_ed25519_pk_to_curve25519(want, pk), 0);
	assert_memory_equal(curve, want, 32);
	key_free(k);

	/* Not a point on the curve: refused rather than turned into a key. */
	uint8_t bad[32];
	memset(bad, 0xff, sizeof(bad));
	assert_int_equal(key_curve_public(bad, curve), LOKET_E_MALFORMED);
}

/* Server and client armed by the key module complete a CURVE handshake and talk. */
static void test_curve_handshake(void **state)
{
	(void)state;
	struct key *sk, *ck;
	assert_int_equal(key_generate(&sk), 0);
	assert_int_equal(key_generate(&ck), 0);
	uint8_t server_pk[32];
	key_public(sk, server_pk);

	void *ctx = zmq_ctx_new();
	assert_non_null(ctx);
	void *srv = zmq_socket(ctx, ZMQ_ROUTER);
	void *cli = zmq_socket(ctx, ZMQ_DEALER);
	assert_non_null(srv);
	assert_non_null(cli);
	int timeout = 10000;
	assert_int_equal(zmq_setsockopt(srv, ZMQ_RCVTIMEO, &timeout, sizeof(timeout)), 0);
	assert_int_equal(zmq_setsockopt(cli, ZMQ_RCVTIMEO, &timeout, sizeof(timeout)), 0);

	assert_int_equal(key_arm_curve_server(sk, srv), 0);
	int v = 0;
	size_t vlen = sizeof(v);
	assert_int_equal(zmq_getsockopt(srv, ZMQ_CURVE_SERVER, &v, &vlen), 0);
	assert_int_equal(v, 1);
	assert_int_equal(zmq_getsockopt(srv, ZMQ_MECHANISM, &v, &vlen), 0);
	assert_int_equal(v, ZMQ_CURVE);

	assert_int_equal(key_arm_curve_client(ck, cli, server_pk), 0);
	uint8_t got[32], want[32];
	size_t glen = sizeof(got);
	assert_int_equal(zmq_getsockopt(cli, ZMQ_CURVE_SERVERKEY, got, &glen), 0);
	assert_int_equal(glen, 32);
	assert_int_equal(key_curve_public(server_pk, want), 0);
	assert_memory_equal(got, want, 32);

	assert_int_equal(zmq_bind(srv, "tcp://127.0.0.1:*"), 0);
	char endpoint[256];
	size_t elen = sizeof(endpoint);
	assert_int_equal(zmq_getsockopt(srv, ZMQ_LAST_ENDPOINT, endpoint, &elen), 0);
	assert_int_equal(zmq_connect(cli, endpoint), 0);

	assert_int_equal(zmq_send(cli, "ping", 4, 0), 4);
	char id[256], body[16];
	int idlen = zmq_recv(srv, id, sizeof(id), 0);
	assert_true(idlen > 0);
	assert_int_equal(zmq_recv(srv, body, sizeof(body), 0), 4);
	assert_memory_equal(body, "ping", 4);

	assert_int_equal(zmq_send(srv, id, (size_t)idlen, ZMQ_SNDMORE), idlen);
	assert_int_equal(zmq_send(srv, "pong", 4, 0), 4);
	assert_int_equal(zmq_recv(cli, body, sizeof(body), 0), 4);
	assert_memory_equal(body, "pong", 4);

	int linger = 0;
	zmq_setsockopt(srv, ZMQ_LINGER, &linger, sizeof(linger));
	zmq_setsockopt(cli, ZMQ_LINGER, &linger, sizeof(linger));
	assert_int_equal(zmq_close(cli), 0);
	assert_int_equal(zmq_close(srv), 0);
	assert_int_equal(zmq_ctx_term(ctx), 0);
	key_free(ck);
	key_free(sk);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_round_trip, setup, teardown),
	    cmocka_unit_test(test_two_keys_differ),
	    cmocka_unit_test_setup_teardown(test_save_refuses_overwrite, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_save_ignores_umask, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_load_refuses_open_mode, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_load_malformed, setup, teardown),
	    cmocka_unit_test(test_sign_verify),
	    cmocka_unit_test(test_curve_public),
	    cmocka_unit_test(test_curve_handshake),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
