/*
 * loket backup FILE: asks the daemon for a consistent copy of the running
 * node's store in FILE, a new file (an existing one is never replaced).
 * The daemon writes it, from its own working directory and with its own
 * rights, so FILE is made absolute here, and looked for again once written:
 * a daemon with a private /tmp (systemd's PrivateTmp) writes where this
 * process cannot see.
 */
#include <err.h>
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli/cli.h"
#include "cli/subcommands.h"

/* file as an absolute path: the daemon's working directory is not ours. */
static int absolute(const char *file, char *out, size_t outlen)
{
	char cwd[PATH_MAX];
	int n;

	if (file[0] == '/') {
		n = snprintf(out, outlen, "%s", file);
	} else {
		if (!getcwd(cwd, sizeof(cwd)))
			return -errno;
		n = snprintf(out, outlen, "%s/%s", strcmp(cwd, "/") == 0 ? "" : cwd, file);
	}
	return n < 0 || (size_t)n >= outlen ? -ENAMETOOLONG : 0;
}

static void print_backup(const json_t *result)
{
	json_t *secs = json_object_get(result, "seconds");

	printf("%s: %lld bytes, this node's changesets up to seq %lld, in %.2f s\n",
	       cli_json_str(result, "file") ? cli_json_str(result, "file") : "?",
	       cli_json_int(result, "bytes", 0), cli_json_int(result, "seq", 0),
	       json_is_number(secs) ? json_number_value(secs) : 0.0);
}

int backup_main(int argc, char *argv[])
{
	static const struct option options[] = {
	    {"json", no_argument, NULL, 'j'},
	    {NULL, 0, NULL, 0},
	};
	char path[PATH_MAX], err[2 * PATH_MAX];
	json_t *req = NULL, *result = NULL;
	struct stat st;
	int c, json = 0, status = CLI_EXIT_FAIL;

	while ((c = getopt_long(argc, argv, "", options, NULL)) != -1) {
		if (c != 'j') {
			warnx("backup: unknown option or missing value: %s", argv[optind - 1]);
			return CLI_EXIT_USAGE;
		}
		json = 1;
	}
	if (optind + 1 != argc || !argv[optind][0]) {
		warnx("backup: takes one argument, the file to write");
		return CLI_EXIT_USAGE;
	}
	int rc = absolute(argv[optind], path, sizeof(path));
	if (rc < 0) {
		warnx("backup: cannot make %s an absolute path: %s", argv[optind], strerror(-rc));
		return CLI_EXIT_FAIL;
	}
	if (lstat(path, &st) == 0) {
		warnx("%s exists; a backup never replaces a file: remove it or name another", path);
		return CLI_EXIT_FAIL;
	}
	req = json_pack("{s:s, s:s}", "cmd", "backup", "file", path);
	if (!req)
		abort();
	if (cli_request(req, CLIENT_TIMEOUT_LONG_MS, &result, err, sizeof(err)) < 0) {
		warnx("%s", err);
		goto cleanup;
	}
	if (stat(path, &st) != 0) {
		warnx("loketd reports %s written, but this process cannot see it (%s): loketd may"
		      " run with a private /tmp (systemd's PrivateTmp) or another view of the file"
		      " system; back up into a directory both see, such as one under loketd's data"
		      " directory",
		      path, strerror(errno));
		goto cleanup;
	}
	if (json) {
		if (cli_print_json(result) < 0)
			goto cleanup;
	} else {
		print_backup(result);
	}
	status = CLI_EXIT_OK;
cleanup:
	json_decref(result);
	json_decref(req);
	return status;
}
