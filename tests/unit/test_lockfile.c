/*
 * The data directory's lock (common/lockfile.c): taken and released, and
 * refused while another process holds it, naming that process's PID and
 * program; a holder that dies, even by SIGKILL, leaves no stale lock.
 * The other process is a forked child, since the lock is per process.
 */
#include <errno.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "common/lockfile.h"
#include "common/paths.h"
#include "proto/error.h"

static char dir[] = "/tmp/test_lockfile_XXXXXX";

static void read_lock_file(char *out, size_t len)
{
	char path[256];
	snprintf(path, sizeof(path), "%s/%s", dir, LOKET_LOCK_FILE);
	FILE *f = fopen(path, "r");
	assert_non_null(f);
	size_t n = fread(out, 1, len - 1, f);
	out[n] = '\0';
	fclose(f);
}

static void test_take_and_release(void **state)
{
	(void)state;
	char err[512], text[128], want[64];
	long holder = -1;
	int fd = -1;

	assert_int_equal(lockfile_take(dir, "loketd", &fd, &holder, err, sizeof(err)), 0);
	assert_true(fd >= 0);
	assert_int_equal(holder, 0);
	read_lock_file(text, sizeof(text));
	snprintf(want, sizeof(want), "%ld loketd\n", (long)getpid());
	assert_string_equal(text, want);
	lockfile_release(fd);
	read_lock_file(text, sizeof(text));
	assert_string_equal(text, "");
	lockfile_release(-1);
}

/* A child that takes the lock, says so on ready, and holds it until go is closed. */
static pid_t holding_child(int *go_w)
{
	int ready[2], go[2];
	assert_int_equal(pipe(ready), 0);
	assert_int_equal(pipe(go), 0);
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		char err[512], c;
		long holder;
		int fd;
		close(ready[0]);
		close(go[1]);
		if (lockfile_take(dir, "loket restore", &fd, &holder, err, sizeof(err)) != 0)
			_exit(1);
		if (write(ready[1], "r", 1) != 1)
			_exit(1);
		while (read(go[0], &c, 1) > 0)
			;
		_exit(0);
	}
	close(ready[1]);
	close(go[0]);
	char c;
	assert_int_equal(read(ready[0], &c, 1), 1);
	close(ready[0]);
	*go_w = go[1];
	return pid;
}

static void test_refused_while_held(void **state)
{
	(void)state;
	char err[512], want[64];
	long holder = 0;
	int fd = -1, go, status;
	pid_t child = holding_child(&go);

	assert_int_equal(lockfile_take(dir, "loketd", &fd, &holder, err, sizeof(err)),
	                 LOKET_E_LOCKED);
	assert_int_equal(fd, -1);
	assert_int_equal(holder, child);
	snprintf(want, sizeof(want), "in use by loket restore (pid %ld)", (long)child);
	assert_non_null(strstr(err, want));
	assert_non_null(strstr(err, dir));
	assert_non_null(strstr(err, LOKET_LOCK_FILE));

	close(go);
	assert_int_equal(waitpid(child, &status, 0), child);
	assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	assert_int_equal(lockfile_take(dir, "loketd", &fd, &holder, err, sizeof(err)), 0);
	lockfile_release(fd);
}

static void test_no_stale_lock_after_kill(void **state)
{
	(void)state;
	char err[512];
	long holder;
	int fd = -1, go, status;
	pid_t child = holding_child(&go);

	assert_int_equal(kill(child, SIGKILL), 0);
	assert_int_equal(waitpid(child, &status, 0), child);
	close(go);
	assert_int_equal(lockfile_take(dir, "loketd", &fd, &holder, err, sizeof(err)), 0);
	lockfile_release(fd);
}

static void test_missing_directory(void **state)
{
	(void)state;
	char err[512], missing[300];
	long holder;
	int fd = -1;

	snprintf(missing, sizeof(missing), "%s/nope", dir);
	assert_int_equal(lockfile_take(missing, "loketd", &fd, &holder, err, sizeof(err)), -ENOENT);
	assert_int_equal(fd, -1);
	assert_non_null(strstr(err, missing));
}

static int setup(void **state)
{
	(void)state;
	return mkdtemp(dir) ? 0 : -1;
}

static int teardown(void **state)
{
	char cmd[300];
	(void)state;
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	return system(cmd) == 0 ? 0 : -1;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_take_and_release),
	    cmocka_unit_test(test_refused_while_held),
	    cmocka_unit_test(test_no_stale_lock_after_kill),
	    cmocka_unit_test(test_missing_directory),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
