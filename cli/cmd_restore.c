/*
 * loket restore FILE: puts a backup in place as the node's store while
 * loketd is stopped. It takes the data directory's lock for as long as it
 * works (common/lockfile.h), so it refuses while loketd runs and no loketd
 * can start half way; it checks FILE (store_check_file), copies it beside
 * the store, syncs it, removes what belongs to the store being replaced
 * (its write-ahead log and shared memory, which SQLite would otherwise
 * replay into the backup, and the search index, which is derived and
 * rebuilt), moves the copy into place and syncs the directory. Files it
 * makes take the owner of what they replace, so that loketd, running as
 * another user than the administrator, can open them.
 */
#include <err.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli/cli.h"
#include "cli/subcommands.h"
#include "common/lockfile.h"
#include "common/paths.h"
#include "proto/error.h"
#include "store/store.h"

#define RESTORE_TMP   LOKET_STORE_FILE ".restore"
#define RESTORE_CHUNK (1024 * 1024)

/* What belongs to the store replaced: removed before the backup takes its name. */
static const char *const stale_store[] = {
    LOKET_STORE_FILE "-wal",
    LOKET_STORE_FILE "-shm",
    LOKET_STORE_FILE "-journal",
};

/* The search index of the store replaced (derived; loketd builds it again): removed after. */
static const char *const stale_index[] = {
    LOKET_STORE_FILE "-index",
    LOKET_STORE_FILE "-index-wal",
    LOKET_STORE_FILE "-index-shm",
    LOKET_STORE_FILE "-index-journal",
};

static int join(char *out, size_t outlen, const char *dir, const char *name)
{
	int n = snprintf(out, outlen, "%s/%s", dir, name);
	return n < 0 || (size_t)n >= outlen ? -ENAMETOOLONG : 0;
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

/*
 * Copies from to a new file to, synced, owned and moded as like (the store
 * it replaces) or, without one, as the directory dir (with mode 0640).
 */
static int copy_synced(const char *from, const char *to, const char *like, const char *dir,
                       char *err, size_t errlen)
{
	struct stat owner;
	char *buf = malloc(RESTORE_CHUNK);
	int in = -1, out = -1, rc = 0;
	mode_t mode = 0640;

	if (!buf)
		abort();
	if (stat(like, &owner) == 0)
		mode = owner.st_mode & 0777;
	else if (stat(dir, &owner) != 0)
		owner.st_uid = (uid_t)-1;
	in = open(from, O_RDONLY | O_CLOEXEC);
	if (in < 0) {
		rc = -errno;
		snprintf(err, errlen, "cannot read %s: %s", from, strerror(errno));
		goto cleanup;
	}
	/* We hold the lock: a file of that name is a restore that was interrupted. */
	(void)unlink(to);
	out = open(to, O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (out < 0) {
		rc = -errno;
		snprintf(err, errlen, "cannot create %s: %s", to, strerror(errno));
		goto cleanup;
	}
	for (;;) {
		ssize_t n = read(in, buf, RESTORE_CHUNK);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			rc = -errno;
			snprintf(err, errlen, "cannot read %s: %s", from, strerror(errno));
			goto cleanup;
		}
		if (n == 0)
			break;
		if ((rc = write_all(out, buf, (size_t)n)) < 0) {
			snprintf(err, errlen, "cannot write %s: %s", to, strerror(-rc));
			goto cleanup;
		}
	}
	if (geteuid() == 0 && owner.st_uid != (uid_t)-1 &&
	    fchown(out, owner.st_uid, owner.st_gid) != 0) {
		rc = -errno;
		snprintf(err, errlen, "cannot give %s to its owner: %s", to, strerror(errno));
		goto cleanup;
	}
	if (fchmod(out, mode) != 0 || fsync(out) != 0) {
		rc = -errno;
		snprintf(err, errlen, "cannot sync %s: %s", to, strerror(errno));
		goto cleanup;
	}
cleanup:
	if (in >= 0)
		close(in);
	if (out >= 0 && close(out) != 0 && rc == 0) {
		rc = -errno;
		snprintf(err, errlen, "cannot write %s: %s", to, strerror(errno));
	}
	if (rc < 0 && out >= 0)
		(void)unlink(to);
	free(buf);
	return rc;
}

/* Removes the files names of dir that exist, adding each to the list removed. */
static int remove_stale(const char *dir, const char *const *names, size_t n, char *removed,
                        size_t removed_len, char *err, size_t errlen)
{
	char path[PATH_MAX];

	for (size_t i = 0; i < n; i++) {
		if (join(path, sizeof(path), dir, names[i]) < 0) {
			snprintf(err, errlen, "%s: data directory path too long", dir);
			return -ENAMETOOLONG;
		}
		if (unlink(path) == 0) {
			size_t used = strlen(removed);
			snprintf(removed + used, removed_len - used, "%s%s", used ? ", " : "",
			         names[i]);
		} else if (errno != ENOENT) {
			int rc = -errno;
			snprintf(err, errlen, "cannot remove %s: %s", path, strerror(errno));
			return rc;
		}
	}
	return 0;
}

/* FILE must be a backup, not the store itself nor a store in use beside its log. */
static int check_source(const char *file, const char *store, char *err, size_t errlen)
{
	struct stat a, b;
	char wal[PATH_MAX + 8];

	if (stat(file, &a) == 0 && stat(store, &b) == 0 && a.st_dev == b.st_dev &&
	    a.st_ino == b.st_ino) {
		snprintf(err, errlen, "%s is the node's store itself, not a backup of it", file);
		return -EINVAL;
	}
	snprintf(wal, sizeof(wal), "%s-wal", file);
	if (stat(wal, &a) == 0 && a.st_size > 0) {
		snprintf(err, errlen,
		         "%s has a write-ahead log beside it (%s): it is a store in use or not"
		         " closed cleanly, not a backup; make one with `loket backup FILE`",
		         file, wal);
		return -EINVAL;
	}
	return store_check_file(file, err, errlen);
}

int restore_main(int argc, char *argv[])
{
	static const struct option options[] = {
	    {NULL, 0, NULL, 0},
	};
	struct config *cfg = NULL;
	char store[PATH_MAX], tmp[PATH_MAX], removed[512] = "";
	char err[3 * PATH_MAX];
	long holder;
	int c, lock = -1, dfd = -1, status = CLI_EXIT_FAIL, rc;

	while ((c = getopt_long(argc, argv, "", options, NULL)) != -1) {
		warnx("restore: unknown option or missing value: %s", argv[optind - 1]);
		return CLI_EXIT_USAGE;
	}
	if (optind + 1 != argc || !argv[optind][0]) {
		warnx("restore: takes one argument, the backup to put in place");
		return CLI_EXIT_USAGE;
	}
	const char *file = argv[optind];
	if (cli_load_config(&cfg, err, sizeof(err)) < 0) {
		warnx("%s", err);
		goto cleanup;
	}
	if (mkdir(cfg->data, 0750) != 0 && errno != EEXIST) {
		warnx("%s: cannot create data directory: %s", cfg->data, strerror(errno));
		goto cleanup;
	}
	rc = lockfile_take(cfg->data, "loket restore", &lock, &holder, err, sizeof(err));
	if (rc == LOKET_E_LOCKED) {
		warnx("not restoring while the store is in use: %s; stop loketd first"
		      " (systemctl stop loketd)",
		      err);
		goto cleanup;
	}
	if (rc < 0) {
		warnx("%s", err);
		goto cleanup;
	}
	if (join(store, sizeof(store), cfg->data, LOKET_STORE_FILE) < 0 ||
	    join(tmp, sizeof(tmp), cfg->data, RESTORE_TMP) < 0) {
		warnx("%s: data directory path too long", cfg->data);
		goto cleanup;
	}
	if (check_source(file, store, err, sizeof(err)) < 0) {
		warnx("not restoring: %s", err);
		goto cleanup;
	}
	if (copy_synced(file, tmp, store, cfg->data, err, sizeof(err)) < 0) {
		warnx("not restored: %s", err);
		goto cleanup;
	}
	/*
	 * The old store's log first: a restore stopped half way must never
	 * leave the backup beside a log that SQLite would replay into it.
	 */
	if (remove_stale(cfg->data, stale_store, sizeof(stale_store) / sizeof(stale_store[0]),
	                 removed, sizeof(removed), err, sizeof(err)) < 0) {
		warnx("not restored: %s", err);
		(void)unlink(tmp);
		goto cleanup;
	}
	if (rename(tmp, store) != 0) {
		warnx("not restored: cannot move %s to %s: %s; the old store's log is removed"
		      " already: run the restore again",
		      tmp, store, strerror(errno));
		(void)unlink(tmp);
		goto cleanup;
	}
	if (remove_stale(cfg->data, stale_index, sizeof(stale_index) / sizeof(stale_index[0]),
	                 removed, sizeof(removed), err, sizeof(err)) < 0) {
		warnx("restored %s as %s, but %s; remove it before loketd starts", file, store,
		      err);
		goto cleanup;
	}
	dfd = open(cfg->data, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0 || fsync(dfd) != 0) {
		warnx("cannot sync the data directory %s: %s", cfg->data, strerror(errno));
		goto cleanup;
	}
	printf("restored %s as %s", file, store);
	if (removed[0])
		printf("; removed %s", removed);
	printf("\n");
	status = CLI_EXIT_OK;
cleanup:
	if (dfd >= 0)
		close(dfd);
	lockfile_release(lock);
	config_free(cfg);
	return status;
}
