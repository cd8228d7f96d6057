/*
 * loket init: creates a node in a directory: a fresh key (node.key, mode
 * 0600), the record of its own head beside it at seq 0 (node.key.head,
 * common/own_head.h: a new node that may sign at once), a configuration
 * (loket.conf) naming it, and the data directory.
 * It never replaces an existing node: the key is created with O_EXCL (by
 * key_save) and the configuration is published with link(2), which fails
 * rather than overwrite. The configuration is written to a temporary file,
 * synced, and linked into place, so a crash leaves either no loket.conf or
 * a whole one; it is then read back with config_load, so init never leaves
 * a node that loketd would refuse. On any failure, whatever this run
 * created is removed again.
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
#include "common/config.h"
#include "common/key.h"
#include "common/own_head.h"
#include "proto/error.h"
#include "proto/limits.h"

#define INIT_CONF_FILE "loket.conf"
#define INIT_KEY_FILE  "node.key"
#define INIT_DATA_DIR  "data"

/* What this run created, so that a failure can take it back. */
struct init_made {
	int dir, key, head, data, conf;
	char dir_path[PATH_MAX];
	char key_path[PATH_MAX];
	char head_path[PATH_MAX];
	char data_path[PATH_MAX];
	char conf_path[PATH_MAX];
};

/* [a-z0-9_-], 1..max bytes: the rule of the configuration parser. */
static int valid_name(const char *s, size_t max)
{
	size_t len = strlen(s);

	if (len == 0 || len > max)
		return 0;
	for (size_t i = 0; i < len; i++) {
		char ch = s[i];
		if (!((ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') || ch == '_' ||
		      ch == '-'))
			return 0;
	}
	return 1;
}

/* tcp://HOST:PORT with a port in 1..65535 and nothing a config line would misread. */
static int valid_listen(const char *s)
{
	const char *host, *colon;
	char *end;
	long port;

	if (strlen(s) >= CONFIG_ENDPOINT_MAX || strncmp(s, "tcp://", 6) != 0)
		return 0;
	host = s + 6;
	colon = strrchr(host, ':');
	if (!colon || colon == host)
		return 0;
	for (const char *p = host; p < colon; p++)
		if (*p <= ' ' || *p == ';' || *p == '#' || *p == 0x7f)
			return 0;
	if (colon[1] < '0' || colon[1] > '9')
		return 0;
	errno = 0;
	port = strtol(colon + 1, &end, 10);
	return errno == 0 && *end == '\0' && port >= 1 && port <= 65535;
}

static int join(char *out, size_t outsize, const char *dir, const char *name)
{
	int n = snprintf(out, outsize, "%s/%s", dir, name);

	return n < 0 || (size_t)n >= outsize ? -ENAMETOOLONG : 0;
}

/* Creates dir with mode 0750 unless it exists; *made says whether it was created. */
static int make_dir(const char *path, int *made)
{
	struct stat st;

	*made = 0;
	if (mkdir(path, 0750) == 0) {
		*made = 1;
		/* mkdir applies the umask; the mode is part of what init promises. */
		return chmod(path, 0750) < 0 ? -errno : 0;
	}
	if (errno != EEXIST)
		return -errno;
	if (stat(path, &st) < 0)
		return -errno;
	return S_ISDIR(st.st_mode) ? 0 : -ENOTDIR;
}

static int exists(const char *path)
{
	struct stat st;

	return lstat(path, &st) == 0 || errno != ENOENT;
}

/* Writes the configuration through a temporary file and links it into place. */
static int write_conf(const char *dir, const char *path, const char *text)
{
	char tmp[PATH_MAX];
	size_t len = strlen(text);
	int fd, rc = 0;

	if (join(tmp, sizeof(tmp), dir, ".loket.conf.XXXXXX") < 0)
		return -ENAMETOOLONG;
	fd = mkstemp(tmp);
	if (fd < 0)
		return -errno;
	if (fchmod(fd, 0640) < 0 || write(fd, text, len) != (ssize_t)len || fsync(fd) < 0)
		rc = errno ? -errno : -EIO;
	if (close(fd) < 0 && rc == 0)
		rc = -errno;
	if (rc == 0 && link(tmp, path) < 0)
		rc = -errno;
	unlink(tmp);
	if (rc == 0) {
		/* Make the new directory entries durable too. */
		int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (dfd >= 0) {
			fsync(dfd);
			close(dfd);
		}
	}
	return rc;
}

static void undo(const struct init_made *m)
{
	if (m->conf)
		unlink(m->conf_path);
	if (m->key)
		unlink(m->key_path);
	if (m->head)
		unlink(m->head_path);
	if (m->data)
		rmdir(m->data_path);
	if (m->dir)
		rmdir(m->dir_path);
}

int init_main(int argc, char *argv[])
{
	static const struct option options[] = {
	    {"name", required_argument, NULL, 'n'},
	    {"listen", required_argument, NULL, 'l'},
	    {"federation", required_argument, NULL, 'f'},
	    {"data", required_argument, NULL, 'd'},
	    {NULL, 0, NULL, 0},
	};
	const char *name = NULL, *listen = NULL, *federation = "default", *data = INIT_DATA_DIR;
	struct init_made made;
	struct key *key = NULL;
	struct config *cfg = NULL;
	char text[1024], pub[45], err[PATH_MAX + 256], q[ERROR_QUOTE_SIZE];
	uint8_t pk[32];
	int c, n, rc, status = CLI_EXIT_FAIL;

	while ((c = getopt_long(argc, argv, "", options, NULL)) != -1) {
		switch (c) {
		case 'n':
			name = optarg;
			break;
		case 'l':
			listen = optarg;
			break;
		case 'f':
			federation = optarg;
			break;
		case 'd':
			data = optarg;
			break;
		default:
			warnx("init: unknown option or missing value: %s",
			      error_quote_str(q, sizeof(q), argv[optind - 1]));
			return CLI_EXIT_USAGE;
		}
	}
	if (optind != argc - 1 || !name) {
		warnx("init: %s",
		      optind != argc - 1 ? "expected one directory" : "--name is required");
		return CLI_EXIT_USAGE;
	}
	if (!valid_name(name, LOKET_MAX_NAME_LEN)) {
		warnx("invalid name %s (use 1 to %u of a-z, 0-9, '_' and '-')",
		      error_quote_str(q, sizeof(q), name), LOKET_MAX_NAME_LEN);
		return CLI_EXIT_FAIL;
	}
	if (!valid_name(federation, LOKET_MAX_FEDERATION_LEN)) {
		warnx("invalid federation %s (use 1 to %u of a-z, 0-9, '_' and '-')",
		      error_quote_str(q, sizeof(q), federation), LOKET_MAX_FEDERATION_LEN);
		return CLI_EXIT_FAIL;
	}
	if (listen && !valid_listen(listen)) {
		warnx("invalid listen endpoint %s (expected tcp://HOST:PORT)",
		      error_quote_str(q, sizeof(q), listen));
		return CLI_EXIT_FAIL;
	}
	/* The value goes into an INI line: no line breaks, nothing read as a comment. */
	if (!data[0] || strpbrk(data, "\n\r;#")) {
		warnx("invalid data directory %s (a path without ';', '#' or line breaks)",
		      error_quote_str(q, sizeof(q), data));
		return CLI_EXIT_FAIL;
	}

	memset(&made, 0, sizeof(made));
	n = snprintf(made.dir_path, sizeof(made.dir_path), "%s", argv[optind]);
	if (n < 0 || (size_t)n >= sizeof(made.dir_path) ||
	    join(made.key_path, sizeof(made.key_path), made.dir_path, INIT_KEY_FILE) < 0 ||
	    own_head_path(made.key_path, made.head_path, sizeof(made.head_path)) < 0 ||
	    (data[0] == '/'
	         ? snprintf(made.data_path, sizeof(made.data_path), "%s", data) >=
	               (int)sizeof(made.data_path)
	         : join(made.data_path, sizeof(made.data_path), made.dir_path, data) < 0) ||
	    join(made.conf_path, sizeof(made.conf_path), made.dir_path, INIT_CONF_FILE) < 0) {
		warnx("directory name is too long: %s",
		      error_quote_str(q, sizeof(q), argv[optind]));
		return CLI_EXIT_FAIL;
	}
	n = snprintf(text, sizeof(text),
	             "; loket node configuration, written by `loket init`.\n"
	             "; Add a [member NAME] section with the key (and endpoint) of each\n"
	             "; partner node; `loket pubkey` prints this node's key for theirs.\n"
	             "\n"
	             "[node]\n"
	             "name = %s\n"
	             "federation = %s\n"
	             "%s%s%s"
	             "data = %s\n"
	             "key = " INIT_KEY_FILE "\n",
	             name, federation, listen ? "listen = " : "", listen ? listen : "",
	             listen ? "\n" : "", data);
	if (n < 0 || (size_t)n >= sizeof(text)) {
		warnx("configuration too long");
		return CLI_EXIT_FAIL;
	}

	rc = make_dir(made.dir_path, &made.dir);
	if (rc < 0) {
		warnx("cannot create directory %s: %s",
		      error_quote_str(q, sizeof(q), made.dir_path), loket_strerror(rc));
		goto cleanup;
	}
	if (exists(made.conf_path) || exists(made.key_path) || exists(made.head_path)) {
		warnx("%s already holds a node (%s, %s or %s" OWN_HEAD_SUFFIX
		      " exists); not overwriting it",
		      error_quote_str(q, sizeof(q), made.dir_path), INIT_CONF_FILE, INIT_KEY_FILE,
		      INIT_KEY_FILE);
		goto cleanup;
	}
	rc = key_generate(&key);
	if (rc < 0) {
		warnx("cannot generate a key: %s", loket_strerror(rc));
		goto cleanup;
	}
	rc = key_save(key, made.key_path);
	if (rc < 0) {
		warnx("cannot write %s: %s", error_quote_str(q, sizeof(q), made.key_path),
		      rc == LOKET_E_EXISTS ? "it already exists; not overwriting it"
		                           : loket_strerror(rc));
		goto cleanup;
	}
	made.key = 1;
	static const uint8_t none[32];
	rc = own_head_create(made.head_path, 0, none, NULL, err, sizeof(err));
	if (rc < 0) {
		warnx("%s", err);
		goto cleanup;
	}
	made.head = 1;
	rc = make_dir(made.data_path, &made.data);
	if (rc < 0) {
		warnx("cannot create directory %s: %s",
		      error_quote_str(q, sizeof(q), made.data_path), loket_strerror(rc));
		goto cleanup;
	}
	rc = write_conf(made.dir_path, made.conf_path, text);
	if (rc < 0) {
		warnx("cannot write %s: %s", error_quote_str(q, sizeof(q), made.conf_path),
		      rc == -EEXIST ? "it already exists; not overwriting it" : loket_strerror(rc));
		goto cleanup;
	}
	made.conf = 1;
	rc = config_load(made.conf_path, &cfg, err, sizeof(err));
	if (rc < 0) {
		warnx("the configuration written does not load: %s", err);
		goto cleanup;
	}

	key_public(key, pk);
	config_key_encode(pk, pub);
	cli_print_member(name, pub, listen);
	status = CLI_EXIT_OK;
cleanup:
	if (status != CLI_EXIT_OK)
		undo(&made);
	config_free(cfg);
	key_free(key);
	return status;
}
