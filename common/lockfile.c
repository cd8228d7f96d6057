/*
 * lockfile: the data directory's lock (see lockfile.h). A POSIX record lock
 * rather than flock: F_GETLK names the holding process straight from the
 * kernel, also in the moment before the holder has written its PID into
 * the file. Such locks belong to the process and go with any close of the
 * file by it, so this module is the only code that opens the lock file,
 * once per process.
 */
#include "common/lockfile.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/paths.h"
#include "proto/error.h"

#define LOCKFILE_TEXT_MAX 128 /* "PID program\n" */
#define LOCKFILE_TRIES    3   /* a holder may let go between our two looks */

/*
 * root taking the lock (`loket restore` run by an administrator) hands the
 * file to the directory's owner, so that loketd, running as that user, can
 * open it for writing next time.
 */
static void give_to_dir_owner(int fd, const char *dir)
{
	struct stat d, f;

	if (geteuid() != 0 || stat(dir, &d) != 0 || fstat(fd, &f) != 0)
		return;
	if ((f.st_uid != d.st_uid || f.st_gid != d.st_gid) && fchown(fd, d.st_uid, d.st_gid) != 0)
		return; /* the file stays root's: it only says who holds the lock */
}

/* What the lock file says about its holder: the program's name, if the PID matches. */
static void holder_name(int fd, long pid, char *out, size_t outlen)
{
	char text[LOCKFILE_TEXT_MAX];
	ssize_t n = pread(fd, text, sizeof(text) - 1, 0);
	char *end;

	snprintf(out, outlen, "another process");
	if (n <= 0)
		return;
	text[n] = '\0';
	errno = 0;
	long written = strtol(text, &end, 10);
	if (errno != 0 || end == text || *end != ' ' || (pid > 0 && written != pid))
		return;
	end++;
	end[strcspn(end, "\n")] = '\0';
	if (*end)
		snprintf(out, outlen, "%s", end);
}

/* Records this process as the holder: "PID what". */
static void write_holder(int fd, const char *what)
{
	char text[LOCKFILE_TEXT_MAX];
	int n = snprintf(text, sizeof(text), "%ld %s\n", (long)getpid(), what);

	if (n < 0 || (size_t)n >= sizeof(text))
		n = snprintf(text, sizeof(text), "%ld\n", (long)getpid());
	/* For people only: a file that cannot say who holds it still locks. */
	if (ftruncate(fd, 0) == 0 && pwrite(fd, text, (size_t)n, 0) != n)
		return;
}

int lockfile_take(const char *dir, const char *what, int *fd, long *holder, char *err,
                  size_t errlen)
{
	char path[PATH_MAX], name[LOCKFILE_TEXT_MAX];
	int n = snprintf(path, sizeof(path), "%s/%s", dir, LOKET_LOCK_FILE);

	*fd = -1;
	*holder = 0;
	if (n < 0 || (size_t)n >= sizeof(path)) {
		snprintf(err, errlen, "%s/%s: path too long", dir, LOKET_LOCK_FILE);
		return -ENAMETOOLONG;
	}
	int lfd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0640);
	if (lfd < 0) {
		int rc = -errno;
		snprintf(err, errlen, "cannot open the lock file %s: %s", path, strerror(errno));
		return rc;
	}
	give_to_dir_owner(lfd, dir);

	for (int i = 0; i < LOCKFILE_TRIES; i++) {
		struct flock fl = {.l_type = F_WRLCK, .l_whence = SEEK_SET};
		if (fcntl(lfd, F_SETLK, &fl) == 0) {
			write_holder(lfd, what);
			*fd = lfd;
			return 0;
		}
		if (errno != EACCES && errno != EAGAIN) {
			int rc = -errno;
			snprintf(err, errlen, "cannot lock %s: %s", path, strerror(errno));
			close(lfd);
			return rc;
		}
		struct flock q = {.l_type = F_WRLCK, .l_whence = SEEK_SET};
		if (fcntl(lfd, F_GETLK, &q) == 0 && q.l_type == F_UNLCK)
			continue; /* the holder just ended: try again */
		*holder = q.l_type != F_UNLCK && q.l_pid > 0 ? (long)q.l_pid : 0;
		break;
	}
	holder_name(lfd, *holder, name, sizeof(name));
	if (*holder > 0)
		snprintf(err, errlen, "data directory %s is in use by %s (pid %ld), which holds %s",
		         dir, name, *holder, path);
	else
		snprintf(err, errlen, "data directory %s is in use by %s, which holds %s", dir,
		         name, path);
	close(lfd);
	return LOKET_E_LOCKED;
}

void lockfile_release(int fd)
{
	if (fd < 0)
		return;
	/* The PID would be stale once the lock is gone; if it stays, the lock does not. */
	int emptied = ftruncate(fd, 0);
	(void)emptied;
	close(fd);
}
