/*
 * lockfile: one process at a time in a data directory. loketd holds the
 * lock for as long as it runs, and `loket restore` holds it while it puts a
 * backup in place, so that neither ever works on a store the other has
 * open. The lock is the kernel's (a POSIX record lock on
 * DATA/loketd.lock), so it goes when its process ends, however it ends: a
 * kill -9 leaves no stale lock behind. The file also holds the holder's PID
 * and program for people; the file itself is never removed.
 */
#ifndef LOKET_LOCKFILE_H
#define LOKET_LOCKFILE_H

#include <stddef.h>

/*
 * Takes the lock of the data directory dir, which must exist, for the
 * program what ("loketd", "loket restore"), and writes "PID what" into the
 * lock file. On success *fd holds the lock until lockfile_release. When
 * another process holds it: LOKET_E_LOCKED, *holder its PID (0 if the
 * kernel does not say) and err "data directory DIR is in use by WHAT (pid
 * N), which holds DIR/loketd.lock". Any other failure is a negative errno
 * with err naming the lock file.
 */
int lockfile_take(const char *dir, const char *what, int *fd, long *holder, char *err,
                  size_t errlen);

/* Releases a lock that lockfile_take gave; -1 is a no-op. */
void lockfile_release(int fd);

#endif
