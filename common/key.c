/*
 * The node's private key, and the only code in loket that sees its bytes.
 * Like OpenSMTPD's ca.c it does nothing but hold the key and use it: sign,
 * or arm a ZeroMQ socket for CURVE with the X25519 pair derived from the
 * same Ed25519 key. The secret (libsodium's 64-byte seed || public key) lives
 * in sodium_malloc'd memory: guard pages around it, kept out of swap where
 * mlock is allowed, read-only once made, wiped by sodium_free. Every
 * temporary copy (file contents, the derived CURVE secret) is wiped before
 * its memory is released.
 */
#include "common/key.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sodium.h>
#include <zmq.h>

#include "proto/error.h"

#define KEY_B64_LEN  44u
#define KEY_FILE_MAX 128u /* more than this cannot be a key file */

struct key {
	uint8_t sk[crypto_sign_SECRETKEYBYTES]; /* seed || public key */
};

/* A key in guarded memory, from a seed or, without one, at random. */
static int key_make(struct key **out, const uint8_t *seed)
{
	*out = NULL;
	if (sodium_init() < 0)
		return -EIO; /* no usable randomness source */
	struct key *k = sodium_malloc(sizeof(*k));
	if (!k)
		return -ENOMEM;
	uint8_t pk[crypto_sign_PUBLICKEYBYTES];
	if (seed)
		crypto_sign_seed_keypair(pk, k->sk, seed);
	else
		crypto_sign_keypair(pk, k->sk);
	/* Nothing writes the key after this; a stray write now faults. */
	sodium_mprotect_readonly(k);
	*out = k;
	return 0;
}

int key_generate(struct key **out)
{
	return key_make(out, NULL);
}

void key_free(struct key *k)
{
	if (k)
		sodium_free(k);
}

static int write_all(int fd, const char *p, size_t len)
{
	while (len > 0) {
		ssize_t w = write(fd, p, len);
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0)
			return -errno;
		p += w;
		len -= (size_t)w;
	}
	return 0;
}

/* Makes a new directory entry durable; best effort, since the key itself is already synced. */
static void sync_parent_dir(const char *path)
{
	char dir[PATH_MAX];
	int n = snprintf(dir, sizeof(dir), "%s", path);
	if (n < 0 || (size_t)n >= sizeof(dir))
		return;
	int fd = open(dirname(dir), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return;
	(void)fsync(fd);
	close(fd);
}

int key_save(const struct key *k, const char *path)
{
	char line[KEY_B64_LEN + 2];
	int rc = 0;
	bool created = false;

	int fd = open(path, O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0) {
		rc = errno == EEXIST ? LOKET_E_EXISTS : -errno;
		goto cleanup;
	}
	created = true;
	/* The umask can only clear bits, but be explicit about what the file is. */
	if (fchmod(fd, 0600) != 0) {
		rc = -errno;
		goto cleanup;
	}
	/* The seed is the first half of libsodium's secret key. */
	sodium_bin2base64(line, sizeof(line), k->sk, crypto_sign_SEEDBYTES,
	                  sodium_base64_VARIANT_ORIGINAL);
	line[KEY_B64_LEN] = '\n';
	rc = write_all(fd, line, KEY_B64_LEN + 1);
	if (rc < 0)
		goto cleanup;
	if (fsync(fd) != 0) {
		rc = -errno;
		goto cleanup;
	}
	int cfd = fd;
	fd = -1;
	if (close(cfd) != 0) {
		rc = -errno;
		goto cleanup;
	}
	sync_parent_dir(path);
cleanup:
	sodium_memzero(line, sizeof(line));
	if (fd >= 0)
		close(fd);
	if (rc < 0 && created)
		unlink(path);
	return rc;
}

int key_load(const char *path, struct key **out, char *err, size_t errlen)
{
	char buf[KEY_FILE_MAX];
	char q[ERROR_QUOTE_SIZE];
	uint8_t seed[crypto_sign_SEEDBYTES];
	size_t len = 0;
	int rc = 0;

	*out = NULL;
	/* O_NONBLOCK: a FIFO in place of the key must not hang us before the S_ISREG check. */
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
	if (fd < 0) {
		rc = -errno;
		snprintf(err, errlen, "%s: cannot open key file: %s", path, strerror(errno));
		goto cleanup;
	}
	struct stat st;
	if (fstat(fd, &st) != 0) {
		rc = -errno;
		snprintf(err, errlen, "%s: cannot stat key file: %s", path, strerror(errno));
		goto cleanup;
	}
	if (!S_ISREG(st.st_mode)) {
		rc = LOKET_E_MALFORMED;
		snprintf(err, errlen, "%s: key file is not a regular file", path);
		goto cleanup;
	}
	if ((st.st_mode & 077) != 0) {
		rc = LOKET_E_KEY_PERMS;
		snprintf(err, errlen,
		         "%s: key file is %s by group or others (mode %04o); run: "
		         "chmod 600 %s",
		         path, (st.st_mode & 044) ? "readable" : "writable or executable",
		         (unsigned)(st.st_mode & 07777), error_quote_str(q, sizeof(q), path));
		goto cleanup;
	}

	for (;;) {
		ssize_t r = read(fd, buf + len, sizeof(buf) - len);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			rc = -errno;
			snprintf(err, errlen, "%s: cannot read key file: %s", path,
			         strerror(errno));
			goto cleanup;
		}
		if (r == 0)
			break;
		len += (size_t)r;
		if (len == sizeof(buf))
			break;
	}
	/* One line: 44 characters and a newline (tolerating trailing white space). */
	while (len > 0 && (buf[len - 1] == '\n' || buf[len - 1] == '\r' || buf[len - 1] == ' ' ||
	                   buf[len - 1] == '\t'))
		len--;
	size_t seed_len = 0;
	const char *end = NULL;
	if (len != KEY_B64_LEN ||
	    sodium_base642bin(seed, sizeof(seed), buf, len, NULL, &seed_len, &end,
	                      sodium_base64_VARIANT_ORIGINAL) != 0 ||
	    seed_len != sizeof(seed) || end != buf + len) {
		rc = LOKET_E_MALFORMED;
		snprintf(err, errlen,
		         "%s: not a key file (expected one line of %u base64 characters "
		         "holding a 32-byte Ed25519 seed)",
		         path, KEY_B64_LEN);
		goto cleanup;
	}
	rc = key_make(out, seed);
	if (rc < 0)
		snprintf(err, errlen, "%s: cannot allocate secure memory for the key", path);
cleanup:
	sodium_memzero(buf, sizeof(buf));
	sodium_memzero(seed, sizeof(seed));
	if (fd >= 0)
		close(fd);
	return rc;
}

void key_public(const struct key *k, uint8_t pk[32])
{
	crypto_sign_ed25519_sk_to_pk(pk, k->sk);
}

void key_sign(const struct key *k, const uint8_t *msg, size_t len, uint8_t sig[64])
{
	crypto_sign_detached(sig, NULL, msg, len, k->sk);
}

int key_curve_public(const uint8_t ed_pk[32], uint8_t curve_pk[32])
{
	if (crypto_sign_ed25519_pk_to_curve25519(curve_pk, ed_pk) != 0)
		return LOKET_E_MALFORMED;
	return 0;
}

/* Sets the node's own CURVE pair on zsock; the derived secret exists only for the call. */
static int set_own_curve_keys(const struct key *k, void *zsock)
{
	uint8_t curve_pk[crypto_scalarmult_curve25519_BYTES];
	uint8_t ed_pk[crypto_sign_PUBLICKEYBYTES];
	int rc = 0;

	uint8_t *curve_sk = sodium_malloc(crypto_scalarmult_curve25519_BYTES);
	if (!curve_sk)
		return -ENOMEM;
	key_public(k, ed_pk);
	if (crypto_sign_ed25519_sk_to_curve25519(curve_sk, k->sk) != 0 ||
	    key_curve_public(ed_pk, curve_pk) != 0) {
		rc = LOKET_E_MALFORMED;
		goto cleanup;
	}
	if (zmq_setsockopt(zsock, ZMQ_CURVE_PUBLICKEY, curve_pk, sizeof(curve_pk)) != 0 ||
	    zmq_setsockopt(zsock, ZMQ_CURVE_SECRETKEY, curve_sk,
	                   crypto_scalarmult_curve25519_BYTES) != 0) {
		rc = -zmq_errno();
		goto cleanup;
	}
cleanup:
	sodium_memzero(curve_sk, crypto_scalarmult_curve25519_BYTES);
	sodium_free(curve_sk);
	return rc;
}

int key_arm_curve_server(const struct key *k, void *zsock)
{
	int one = 1;
	if (zmq_setsockopt(zsock, ZMQ_CURVE_SERVER, &one, sizeof(one)) != 0)
		return -zmq_errno();
	return set_own_curve_keys(k, zsock);
}

int key_arm_curve_client(const struct key *k, void *zsock, const uint8_t server_ed_pk[32])
{
	uint8_t server_curve[crypto_scalarmult_curve25519_BYTES];
	int rc = key_curve_public(server_ed_pk, server_curve);
	if (rc < 0)
		return rc;
	rc = set_own_curve_keys(k, zsock);
	if (rc < 0)
		return rc;
	if (zmq_setsockopt(zsock, ZMQ_CURVE_SERVERKEY, server_curve, sizeof(server_curve)) != 0)
		return -zmq_errno();
	return 0;
}
