/*
 * rotate: the key files of a rotation (common/rotate.h), created, linked
 * and renamed so that each step is durable before the next begins.
 */
#include "common/rotate.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <libgen.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/config.h"
#include "proto/error.h"

static int suffixed(const char *key_path, const char *suffix, char *out, size_t outlen)
{
	int n = snprintf(out, outlen, "%s%s", key_path, suffix);
	return n < 0 || (size_t)n >= outlen ? -ENAMETOOLONG : 0;
}

static int sync_dir_of(const char *path)
{
	char dir[PATH_MAX];
	int n = snprintf(dir, sizeof(dir), "%s", path), rc = 0;
	if (n < 0 || (size_t)n >= sizeof(dir))
		return -ENAMETOOLONG;
	int fd = open(dirname(dir), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (fsync(fd) != 0)
		rc = -errno;
	close(fd);
	return rc;
}

int rotate_origin_load(const char *key_path, uint8_t origin[32], char *err, size_t errlen)
{
	char path[PATH_MAX], buf[64];
	if (suffixed(key_path, ROTATE_ORIGIN_SUFFIX, path, sizeof(path)) < 0) {
		snprintf(err, errlen, "%s: path too long", key_path);
		return -ENAMETOOLONG;
	}
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0) {
		if (errno == ENOENT)
			return LOKET_E_NOT_FOUND;
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return -errno;
	}
	ssize_t n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n < 0) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return -EIO;
	}
	buf[n] = '\0';
	if (n != 45 || buf[44] != '\n') {
		snprintf(err, errlen, "%s: not one line of a 44-character base64 key", path);
		return LOKET_E_MALFORMED;
	}
	buf[44] = '\0';
	if (config_key_decode(buf, origin) != 0) {
		snprintf(err, errlen, "%s: not a base64 key", path);
		return LOKET_E_MALFORMED;
	}
	return 0;
}

int rotate_origin(const char *key_path, const uint8_t pk[32], uint8_t origin[32], char *err,
                  size_t errlen)
{
	int rc = rotate_origin_load(key_path, origin, err, errlen);
	if (rc == LOKET_E_NOT_FOUND) {
		memcpy(origin, pk, 32);
		return 0;
	}
	return rc;
}

int rotate_origin_save(const char *key_path, const uint8_t origin[32], char *err, size_t errlen)
{
	char path[PATH_MAX], line[46];
	uint8_t held[32];
	int rc = rotate_origin_load(key_path, held, err, errlen);
	if (rc == 0)
		return memcmp(held, origin, 32) == 0 ? 0 : LOKET_E_EXISTS;
	if (rc != LOKET_E_NOT_FOUND)
		return rc;
	if (suffixed(key_path, ROTATE_ORIGIN_SUFFIX, path, sizeof(path)) < 0)
		return -ENAMETOOLONG;
	config_key_encode(origin, line);
	line[44] = '\n';
	int fd = open(path, O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC | O_NOFOLLOW, 0644);
	if (fd < 0) {
		rc = -errno;
		snprintf(err, errlen, "cannot create %s: %s", path, strerror(errno));
		return rc;
	}
	if (write(fd, line, 45) != 45 || fsync(fd) != 0) {
		rc = errno ? -errno : -EIO;
		snprintf(err, errlen, "cannot write %s: %s", path, strerror(-rc));
		close(fd);
		unlink(path);
		return rc;
	}
	close(fd);
	if ((rc = sync_dir_of(path)) < 0) {
		snprintf(err, errlen, "cannot make %s durable: %s", path, strerror(-rc));
		return rc;
	}
	return 0;
}

int rotate_prepare(const char *key_path, struct key **out, char *err, size_t errlen)
{
	char path[PATH_MAX];
	struct key *k = NULL;
	int rc;

	*out = NULL;
	if (suffixed(key_path, ROTATE_NEW_SUFFIX, path, sizeof(path)) < 0) {
		snprintf(err, errlen, "%s: path too long", key_path);
		return -ENAMETOOLONG;
	}
	/* No record names a KEY.new while writes are open: it is a rotation never signed. */
	if (unlink(path) != 0 && errno != ENOENT) {
		rc = -errno;
		snprintf(err, errlen, "cannot remove the unused %s: %s", path, strerror(errno));
		return rc;
	}
	if ((rc = key_generate(&k)) < 0) {
		snprintf(err, errlen, "cannot make a key: %s", loket_strerror(rc));
		return rc;
	}
	if ((rc = key_save(k, path)) < 0) {
		snprintf(err, errlen, "cannot write %s: %s", path, loket_strerror(rc));
		key_free(k);
		return rc;
	}
	*out = k;
	return 0;
}

int rotate_load_new(const char *key_path, struct key **out, char *err, size_t errlen)
{
	char path[PATH_MAX];
	*out = NULL;
	if (suffixed(key_path, ROTATE_NEW_SUFFIX, path, sizeof(path)) < 0) {
		snprintf(err, errlen, "%s: path too long", key_path);
		return -ENAMETOOLONG;
	}
	int rc = key_load(path, out, err, errlen);
	return rc == -ENOENT ? LOKET_E_NOT_FOUND : rc;
}

int rotate_install(const char *key_path, uint64_t seq, char *err, size_t errlen)
{
	char newp[PATH_MAX], oldp[PATH_MAX], suffix[48];
	int rc;

	snprintf(suffix, sizeof(suffix), "%s%" PRIu64, ROTATE_OLD_SUFFIX, seq);
	if (suffixed(key_path, ROTATE_NEW_SUFFIX, newp, sizeof(newp)) < 0 ||
	    suffixed(key_path, suffix, oldp, sizeof(oldp)) < 0) {
		snprintf(err, errlen, "%s: path too long", key_path);
		return -ENAMETOOLONG;
	}
	/* The old key stays, under a name of its own; a second run finds the link made. */
	if (link(key_path, oldp) != 0 && errno != EEXIST) {
		rc = -errno;
		snprintf(err, errlen, "cannot keep the old key as %s: %s", oldp, strerror(errno));
		return rc;
	}
	if (rename(newp, key_path) != 0) {
		rc = -errno;
		snprintf(err, errlen, "cannot put %s in place of %s: %s", newp, key_path,
		         strerror(errno));
		return rc;
	}
	if ((rc = sync_dir_of(key_path)) < 0) {
		snprintf(err, errlen, "cannot make %s durable: %s", key_path, strerror(-rc));
		return rc;
	}
	return 0;
}
