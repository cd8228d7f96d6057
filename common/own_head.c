/*
 * own_head: reads and writes the record of this node's own head (format:
 * common/own_head.h). It owns the record's file descriptor, kept open from
 * start to end so that writing the record needs no access to the directory
 * beside the key (under systemd /etc/loket is read-only; only the record
 * file itself is made writable). Every write is a whole slot at a fixed
 * offset followed by fdatasync, into the slot that does not hold the
 * record, so at any moment one slot holds a whole, checked record.
 */
#include "common/own_head.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "proto/error.h"
#include "proto/sha256.h"

#define OWN_HEAD_MAGIC     "loket-own-head"
#define OWN_HEAD_VERSION   "1"
#define OWN_HEAD_CHECK_LEN 16u

static const char hexdigits[] = "0123456789abcdef";

int own_head_path(const char *key_path, char *out, size_t outlen)
{
	int n = snprintf(out, outlen, "%s" OWN_HEAD_SUFFIX, key_path);

	return n < 0 || (size_t)n >= outlen ? -ENAMETOOLONG : 0;
}

static void hex(const uint8_t *p, size_t n, char *out)
{
	for (size_t i = 0; i < n; i++) {
		out[2 * i] = hexdigits[p[i] >> 4];
		out[2 * i + 1] = hexdigits[p[i] & 15];
	}
	out[2 * n] = '\0';
}

/* The first OWN_HEAD_CHECK_LEN hex digits of SHA-256 over text. */
static void check_of(const char *text, size_t len, char out[OWN_HEAD_CHECK_LEN + 1])
{
	uint8_t d[32];

	sha256(text, len, d);
	hex(d, OWN_HEAD_CHECK_LEN / 2, out);
}

void own_head_format_slot(uint64_t seq, const uint8_t hash[32], uint8_t *out)
{
	char text[OWN_HEAD_SLOT_BYTES], h[65], check[OWN_HEAD_CHECK_LEN + 1];

	hex(hash, 32, h);
	int n = snprintf(text, sizeof(text), OWN_HEAD_MAGIC " " OWN_HEAD_VERSION " %" PRIu64 " %s",
	                 seq, h);
	/* At most 14 + 2 + 20 + 1 + 64 bytes: it always fits. */
	check_of(text, (size_t)n, check);
	memset(out, ' ', OWN_HEAD_SLOT_BYTES);
	memcpy(out, text, (size_t)n);
	out[n] = ' ';
	memcpy(out + n + 1, check, OWN_HEAD_CHECK_LEN);
	out[OWN_HEAD_SLOT_BYTES - 1] = '\n';
}

static int unhex(const char *s, size_t n, uint8_t *out)
{
	for (size_t i = 0; i < 2 * n; i++) {
		const char *d = s[i] ? strchr(hexdigits, s[i]) : NULL;
		if (!d)
			return -1;
		if (i % 2 == 0)
			out[i / 2] = (uint8_t)((d - hexdigits) << 4);
		else
			out[i / 2] |= (uint8_t)(d - hexdigits);
	}
	return 0;
}

int own_head_parse_slot(const uint8_t *slot, uint64_t *seq, uint8_t hash[32], char *why,
                        size_t whylen)
{
	char line[OWN_HEAD_SLOT_BYTES];
	size_t len = OWN_HEAD_SLOT_BYTES - 1;

	if (slot[OWN_HEAD_SLOT_BYTES - 1] != '\n') {
		snprintf(why, whylen, "does not end in a line break");
		return LOKET_E_MALFORMED;
	}
	while (len > 0 && slot[len - 1] == ' ')
		len--;
	if (len == 0) {
		snprintf(why, whylen, "is empty");
		return LOKET_E_MALFORMED;
	}
	for (size_t i = 0; i < len; i++) {
		if (slot[i] < 0x20 || slot[i] > 0x7e) {
			snprintf(why, whylen, "holds a byte 0x%02x that is no printable ASCII",
			         slot[i]);
			return LOKET_E_MALFORMED;
		}
		line[i] = (char)slot[i];
	}
	line[len] = '\0';

	/* Exactly five fields, one space apart: MAGIC VERSION SEQ HASH CHECK. */
	const char *f[5];
	size_t flen[5], nf = 0;
	const char *p = line;
	while (*p && nf < 5) {
		const char *sp = strchr(p, ' ');
		size_t n = sp ? (size_t)(sp - p) : strlen(p);
		f[nf] = p;
		flen[nf++] = n;
		p += n;
		if (*p)
			p++;
	}
	if (nf != 5 || *p || flen[0] == 0 || memcmp(f[0], OWN_HEAD_MAGIC, flen[0]) != 0 ||
	    flen[0] != strlen(OWN_HEAD_MAGIC)) {
		snprintf(why, whylen, "is not a line \"%s VERSION SEQ HASH CHECK\"",
		         OWN_HEAD_MAGIC);
		return LOKET_E_MALFORMED;
	}
	for (size_t i = 1; i < 5; i++)
		if (flen[i] == 0) {
			snprintf(why, whylen, "is not a line \"%s VERSION SEQ HASH CHECK\"",
			         OWN_HEAD_MAGIC);
			return LOKET_E_MALFORMED;
		}
	if (flen[1] != strlen(OWN_HEAD_VERSION) || memcmp(f[1], OWN_HEAD_VERSION, flen[1]) != 0) {
		snprintf(why, whylen, "has version \"%.*s\", this loket reads version %s",
		         (int)(flen[1] > 16 ? 16 : flen[1]), f[1], OWN_HEAD_VERSION);
		return LOKET_E_VERSION;
	}
	/* The check first: a torn slot is the common damage, and it says so plainly. */
	char check[OWN_HEAD_CHECK_LEN + 1];
	check_of(line, (size_t)(f[4] - 1 - line), check);
	if (flen[4] != OWN_HEAD_CHECK_LEN || memcmp(f[4], check, OWN_HEAD_CHECK_LEN) != 0) {
		snprintf(why, whylen, "fails its check (a torn or damaged write)");
		return LOKET_E_MALFORMED;
	}
	uint64_t v = 0;
	int digits_ok = flen[2] <= 20 && (flen[2] == 1 || f[2][0] != '0');
	for (size_t i = 0; digits_ok && i < flen[2]; i++) {
		unsigned d = (unsigned)(f[2][i] - '0');
		if (d > 9 || v > (UINT64_MAX - d) / 10)
			digits_ok = 0;
		else
			v = v * 10 + d;
	}
	if (!digits_ok) {
		snprintf(why, whylen, "has a seq \"%.*s\" that is no decimal number",
		         (int)(flen[2] > 24 ? 24 : flen[2]), f[2]);
		return LOKET_E_MALFORMED;
	}
	uint8_t h[32];
	if (flen[3] != 64 || unhex(f[3], 32, h) != 0) {
		snprintf(why, whylen, "has a hash that is not 64 lowercase hex digits");
		return LOKET_E_MALFORMED;
	}
	static const uint8_t zero[32];
	if (v == 0 && memcmp(h, zero, 32) != 0) {
		snprintf(why, whylen, "has seq 0 with a hash that is not all zeros");
		return LOKET_E_MALFORMED;
	}
	*seq = v;
	memcpy(hash, h, 32);
	return 0;
}

static int pwrite_all(int fd, const uint8_t *p, size_t len, off_t off)
{
	while (len > 0) {
		ssize_t w = pwrite(fd, p, len, off);
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0)
			return -errno;
		if (w == 0)
			return -EIO;
		p += w;
		len -= (size_t)w;
		off += w;
	}
	return 0;
}

static int pread_all(int fd, uint8_t *p, size_t len, off_t off)
{
	while (len > 0) {
		ssize_t r = pread(fd, p, len, off);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return -errno;
		if (r == 0)
			return -EIO; /* shorter than fstat said: changed under us */
		p += r;
		len -= (size_t)r;
		off += r;
	}
	return 0;
}

/* Reads the file behind h->fd into h's state. */
static int own_head_read(struct own_head *h, char *err, size_t errlen)
{
	struct stat st;
	uint8_t buf[OWN_HEAD_FILE_BYTES];

	h->state = OWN_HEAD_EMPTY;
	h->why[0] = '\0';
	if (fstat(h->fd, &st) < 0) {
		int e = errno;
		snprintf(err, errlen, "%s: cannot read the record of this node's own head: %s",
		         h->path, strerror(e));
		return -e;
	}
	if (!S_ISREG(st.st_mode)) {
		snprintf(err, errlen,
		         "%s: the record of this node's own head is not a regular file", h->path);
		return -EINVAL;
	}
	if (st.st_size == 0)
		return 0;
	if (st.st_size != (off_t)OWN_HEAD_FILE_BYTES) {
		h->state = OWN_HEAD_DAMAGED;
		snprintf(h->why, sizeof(h->why), "it is %lld bytes long, a record is %u",
		         (long long)st.st_size, OWN_HEAD_FILE_BYTES);
		return 0;
	}
	int rc = pread_all(h->fd, buf, sizeof(buf), 0);
	if (rc < 0) {
		snprintf(err, errlen, "%s: cannot read the record of this node's own head: %s",
		         h->path, strerror(-rc));
		return rc;
	}
	char why[2][120];
	int valid[2];
	uint64_t seq[2] = {0, 0};
	uint8_t hash[2][32];
	for (int i = 0; i < 2; i++)
		valid[i] = own_head_parse_slot(buf + (size_t)i * OWN_HEAD_SLOT_BYTES, &seq[i],
		                               hash[i], why[i], sizeof(why[i])) == 0;
	if (!valid[0] && !valid[1]) {
		h->state = OWN_HEAD_DAMAGED;
		snprintf(h->why, sizeof(h->why),
		         "no slot holds a valid record: slot 1 %s; slot 2 %s", why[0], why[1]);
		return 0;
	}
	int best = !valid[0] || (valid[1] && seq[1] > seq[0]);
	h->state = OWN_HEAD_VALID;
	h->slot = best;
	h->seq = seq[best];
	memcpy(h->hash, hash[best], 32);
	return 0;
}

static struct own_head *own_head_alloc(const char *path, int fd)
{
	struct own_head *h = calloc(1, sizeof(*h));

	if (!h)
		abort();
	h->fd = fd;
	snprintf(h->path, sizeof(h->path), "%s", path);
	return h;
}

int own_head_open(const char *path, struct own_head **out, char *err, size_t errlen)
{
	*out = NULL;
	if (strlen(path) >= PATH_MAX) {
		snprintf(err, errlen, "%.64s...: path too long", path);
		return -ENAMETOOLONG;
	}
	int fd = open(path, O_RDWR | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0) {
		int e = errno;
		if (e == ENOENT)
			return LOKET_E_NOT_FOUND;
		snprintf(err, errlen,
		         "%s: cannot open the record of this node's own head for "
		         "writing: %s",
		         path, strerror(e));
		return -e;
	}
	struct own_head *h = own_head_alloc(path, fd);
	int rc = own_head_read(h, err, errlen);
	if (rc < 0) {
		own_head_close(h);
		return rc;
	}
	*out = h;
	return 0;
}

static int write_slot(struct own_head *h, int slot, uint64_t seq, const uint8_t hash[32])
{
	uint8_t buf[OWN_HEAD_SLOT_BYTES];

	own_head_format_slot(seq, hash, buf);
	int rc = pwrite_all(h->fd, buf, sizeof(buf), (off_t)slot * OWN_HEAD_SLOT_BYTES);
	if (rc == 0 && fdatasync(h->fd) < 0)
		rc = -errno;
	return rc;
}

int own_head_write(struct own_head *h, uint64_t seq, const uint8_t hash[32], char *err,
                   size_t errlen)
{
	int rc = 0;

	if (h->state == OWN_HEAD_VALID && seq >= h->seq) {
		int target = !h->slot;
		rc = write_slot(h, target, seq, hash);
		if (rc == 0)
			h->slot = target;
	} else {
		/*
		 * Both slots: the one without the record first, so that until
		 * the second is written a reader still finds the old record
		 * (never a torn mix). A file of the wrong size is cut to size.
		 */
		int first = h->state == OWN_HEAD_VALID ? !h->slot : 0;
		if (h->state != OWN_HEAD_VALID && ftruncate(h->fd, OWN_HEAD_FILE_BYTES) < 0)
			rc = -errno;
		if (rc == 0)
			rc = write_slot(h, first, seq, hash);
		if (rc == 0)
			rc = write_slot(h, !first, seq, hash);
		if (rc == 0)
			h->slot = !first;
	}
	if (rc < 0) {
		snprintf(err, errlen, "%s: cannot write the record of this node's own head: %s",
		         h->path, strerror(-rc));
		return rc;
	}
	h->state = OWN_HEAD_VALID;
	h->seq = seq;
	memcpy(h->hash, hash, 32);
	h->why[0] = '\0';
	return 0;
}

/* Makes a new directory entry durable; best effort, the file itself is synced already. */
static void sync_dir_of(const char *path)
{
	char dir[PATH_MAX];
	snprintf(dir, sizeof(dir), "%s", path);
	char *slash = strrchr(dir, '/');
	if (slash == dir)
		dir[1] = '\0';
	else if (slash)
		*slash = '\0';
	else
		snprintf(dir, sizeof(dir), ".");
	int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd >= 0) {
		fsync(dfd);
		close(dfd);
	}
}

int own_head_create(const char *path, uint64_t seq, const uint8_t hash[32], struct own_head **out,
                    char *err, size_t errlen)
{
	if (out)
		*out = NULL;
	if (strlen(path) >= PATH_MAX) {
		snprintf(err, errlen, "%.64s...: path too long", path);
		return -ENAMETOOLONG;
	}
	int fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0) {
		int e = errno;
		snprintf(err, errlen, "%s: cannot create the record of this node's own head: %s",
		         path, e == EEXIST ? "it already exists; not overwriting it" : strerror(e));
		return e == EEXIST ? LOKET_E_EXISTS : -e;
	}
	struct own_head *h = own_head_alloc(path, fd);
	int rc = fchmod(fd, 0600) < 0 ? -errno : 0; /* open applied the umask */
	if (rc < 0)
		snprintf(err, errlen, "%s: cannot set mode 0600: %s", path, strerror(-rc));
	if (rc == 0)
		rc = own_head_write(h, seq, hash, err, errlen);
	if (rc == 0 && fsync(fd) < 0) {
		rc = -errno;
		snprintf(err, errlen, "%s: cannot sync: %s", path, strerror(-rc));
	}
	if (rc < 0) {
		unlink(path);
		own_head_close(h);
		return rc;
	}
	sync_dir_of(path);
	if (out)
		*out = h;
	else
		own_head_close(h);
	return 0;
}

void own_head_close(struct own_head *h)
{
	if (!h)
		return;
	if (h->fd >= 0)
		close(h->fd);
	free(h);
}
