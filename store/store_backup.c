/*
 * Online backup of the store into a new file, with SQLite's backup API on
 * the store's own connection (see store.h for the calls and their order).
 *
 * The copy is consistent at the moment its last step ends: SQLite copies
 * pages as the connection reads them (the log's included), and every
 * write this connection commits between two steps is written into the
 * copy as well (a transaction rolled back after pages of it reached the
 * log makes the copy start over). So the copy holds at least everything
 * committed before the backup began.
 *
 * The copy is written to FILE.tmp with journal_mode OFF and synchronous
 * OFF (nothing can be lost that is not also in the store), turned into a
 * rollback-journal database at the end so that it is one standalone file
 * that opens read-only without a log beside it, then synced and moved to
 * FILE without replacing anything that appeared there meanwhile, and the
 * directory synced.
 */
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "proto/error.h"
#include "store/store_int.h"

struct store_backup {
	struct store *s;
	sqlite3 *dst;
	sqlite3_backup *bk;
	int committed; /* the copy is at path */
	long long pages;
	long long bytes;
	char path[PATH_MAX];
	char tmp[PATH_MAX];
};

/* The files SQLite may make beside the copy while it is written. */
static void remove_tmp(const struct store_backup *b)
{
	static const char *const suffixes[] = {"", "-journal", "-wal", "-shm"};
	char p[PATH_MAX + 16];

	for (size_t i = 0; i < sizeof(suffixes) / sizeof(suffixes[0]); i++) {
		snprintf(p, sizeof(p), "%s%s", b->tmp, suffixes[i]);
		(void)unlink(p);
	}
}

int store_backup_start(struct store *s, const char *path, struct store_backup **out, char *err,
                       size_t errlen)
{
	struct store_backup *b;
	struct stat st;
	int rc, fd, n;

	*out = NULL;
	if (lstat(path, &st) == 0) {
		snprintf(err, errlen,
		         "%s exists; a backup never replaces a file: remove it or name another",
		         path);
		return LOKET_E_EXISTS;
	}
	b = calloc(1, sizeof(*b));
	if (!b)
		abort();
	b->s = s;
	n = snprintf(b->path, sizeof(b->path), "%s", path);
	if (n < 0 || (size_t)n >= sizeof(b->path) ||
	    (n = snprintf(b->tmp, sizeof(b->tmp), "%s.tmp", path)) < 0 ||
	    (size_t)n >= sizeof(b->tmp)) {
		snprintf(err, errlen, "%s: path too long", path);
		free(b);
		return -ENAMETOOLONG;
	}
	/* Ours alone: a FILE.tmp that exists belongs to another backup, running or interrupted. */
	fd = open(b->tmp, O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC | O_NOFOLLOW, 0640);
	if (fd < 0) {
		rc = errno == EEXIST ? LOKET_E_EXISTS : -errno;
		if (errno == EEXIST)
			snprintf(err, errlen,
			         "%s exists: another backup to %s is running, or one was"
			         " interrupted (then remove it)",
			         b->tmp, path);
		else
			snprintf(err, errlen, "cannot create %s: %s", b->tmp, strerror(errno));
		free(b);
		return rc;
	}
	close(fd);
	if (sqlite3_open_v2(b->tmp, &b->dst, SQLITE_OPEN_READWRITE, NULL) != SQLITE_OK ||
	    sqlite3_exec(b->dst, "PRAGMA journal_mode = OFF", NULL, NULL, NULL) != SQLITE_OK ||
	    sqlite3_exec(b->dst, "PRAGMA synchronous = OFF", NULL, NULL, NULL) != SQLITE_OK) {
		snprintf(err, errlen, "cannot open %s: %s", b->tmp,
		         b->dst ? sqlite3_errmsg(b->dst) : "out of memory");
		store_backup_free(b);
		return LOKET_E_STORE;
	}
	b->bk = sqlite3_backup_init(b->dst, "main", s->db, "main");
	if (!b->bk) {
		snprintf(err, errlen, "cannot start a backup into %s: %s", b->tmp,
		         sqlite3_errmsg(b->dst));
		store_backup_free(b);
		return LOKET_E_STORE;
	}
	*out = b;
	return 0;
}

int store_backup_step(struct store_backup *b, int pages, char *err, size_t errlen)
{
	int rc = sqlite3_backup_step(b->bk, pages);

	b->pages = sqlite3_backup_pagecount(b->bk);
	if (rc == SQLITE_DONE)
		return 1;
	/* The store's connection was busy (it is not, between loop callbacks): next step. */
	if (rc == SQLITE_OK || rc == SQLITE_BUSY || rc == SQLITE_LOCKED)
		return 0;
	snprintf(err, errlen, "backup into %s failed: %s", b->tmp, sqlite3_errstr(rc));
	return LOKET_E_STORE;
}

int store_backup_end(struct store_backup *b, char *err, size_t errlen)
{
	sqlite3_stmt *st = NULL;
	int rc = sqlite3_backup_finish(b->bk);

	b->bk = NULL;
	if (rc != SQLITE_OK) {
		snprintf(err, errlen, "backup into %s failed: %s", b->tmp, sqlite3_errmsg(b->dst));
		return LOKET_E_STORE;
	}
	/*
	 * The copied header says WAL, as the store's does: made a rollback
	 * journal database, the copy is one file that opens read-only (verify,
	 * restore) without making a log beside it. loketd makes it WAL again.
	 */
	rc = sqlite3_prepare_v2(b->dst, "PRAGMA journal_mode = DELETE", -1, &st, NULL);
	const char *mode = rc == SQLITE_OK && sqlite3_step(st) == SQLITE_ROW
	                       ? (const char *)sqlite3_column_text(st, 0)
	                       : NULL;
	rc = mode && strcmp(mode, "delete") == 0 ? SQLITE_OK : SQLITE_ERROR;
	if (rc != SQLITE_OK)
		snprintf(err, errlen, "cannot finish %s as one file: %s", b->tmp,
		         sqlite3_errmsg(b->dst));
	sqlite3_finalize(st);
	if (sqlite3_close(b->dst) != SQLITE_OK && rc == SQLITE_OK) {
		snprintf(err, errlen, "cannot close %s: %s", b->tmp, sqlite3_errmsg(b->dst));
		rc = SQLITE_ERROR;
	}
	b->dst = NULL;
	return rc == SQLITE_OK ? 0 : LOKET_E_STORE;
}

/* Moves tmp to path unless something is at path by now. */
static int move_no_replace(const char *tmp, const char *path)
{
	if (renameat2(AT_FDCWD, tmp, AT_FDCWD, path, RENAME_NOREPLACE) == 0)
		return 0;
	if (errno != EINVAL && errno != ENOSYS)
		return -errno;
	/* A file system without RENAME_NOREPLACE: a hard link fails as well when path exists. */
	if (link(tmp, path) == 0) {
		(void)unlink(tmp);
		return 0;
	}
	return -errno;
}

int store_backup_commit(struct store_backup *b, char *err, size_t errlen)
{
	char dir[PATH_MAX];
	struct stat st;
	int fd, rc;

	fd = open(b->tmp, O_RDONLY | O_CLOEXEC);
	if (fd < 0 || fsync(fd) != 0 || fstat(fd, &st) != 0) {
		rc = -errno;
		snprintf(err, errlen, "cannot sync %s: %s", b->tmp, strerror(errno));
		if (fd >= 0)
			close(fd);
		return rc;
	}
	close(fd);
	b->bytes = (long long)st.st_size;
	if ((rc = move_no_replace(b->tmp, b->path)) < 0) {
		if (rc == -EEXIST)
			snprintf(err, errlen, "%s appeared while the backup was made; not replaced",
			         b->path);
		else
			snprintf(err, errlen, "cannot move %s to %s: %s", b->tmp, b->path,
			         strerror(-rc));
		return rc == -EEXIST ? LOKET_E_EXISTS : rc;
	}
	b->committed = 1;
	/* The new name must survive a crash too. */
	snprintf(dir, sizeof(dir), "%s", b->path);
	fd = open(dirname(dir), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0 || fsync(fd) != 0) {
		rc = -errno;
		snprintf(err, errlen, "cannot sync the directory of %s: %s", b->path,
		         strerror(errno));
		if (fd >= 0)
			close(fd);
		return rc;
	}
	close(fd);
	return 0;
}

long long store_backup_pages(const struct store_backup *b)
{
	return b->pages;
}

long long store_backup_bytes(const struct store_backup *b)
{
	return b->bytes;
}

void store_backup_free(struct store_backup *b)
{
	if (!b)
		return;
	if (b->bk)
		sqlite3_backup_finish(b->bk);
	sqlite3_close(b->dst);
	if (!b->committed)
		remove_tmp(b);
	free(b);
}
