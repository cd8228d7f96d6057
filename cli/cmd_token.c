/*
 * loket token add NAME --scope SCOPE [--file F]: makes a bearer token for
 * loket-http, prints it once on standard output, and appends its line
 * "NAME SCOPE SHA256-HEX" to the token file ([http] tokens, or F). The token
 * is 32 random bytes in base64url; the file holds only its hash, so a copy
 * of the file lets nobody in. loket-http reads the file again by itself.
 * The format and the scopes are described in http/tokens.h; the checks
 * here are a copy of that module's (cli/ may not include http/).
 */
#include <err.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sodium.h>

#include "cli/cli.h"
#include "cli/subcommands.h"
#include "proto/changeset.h"
#include "proto/error.h"

static int valid_scope(const char *s)
{
	size_t len = strlen(s), start = 6;

	if (!strcmp(s, "read") || !strcmp(s, "write:*"))
		return 1;
	if (len < 7 || len > 1024 || strncmp(s, "write:", 6) != 0)
		return 0;
	for (size_t i = 6; i <= len; i++) {
		if (i == len || s[i] == ',') {
			if (!changeset_valid_coll(s + start, i - start))
				return 0;
			start = i + 1;
		}
	}
	return 1;
}

/* Whether the file at path already has a token called name (a missing file has none). */
static int name_taken(const char *path, const char *name)
{
	FILE *f = fopen(path, "re");
	char *line = NULL;
	size_t cap = 0, n = strlen(name);
	int taken = 0;

	if (!f)
		return 0;
	while (!taken && getline(&line, &cap, f) >= 0) {
		const char *p = line + strspn(line, " \t");
		taken = !strncmp(p, name, n) && (p[n] == ' ' || p[n] == '\t');
	}
	free(line);
	fclose(f);
	return taken;
}

int token_main(int argc, char *argv[])
{
	static const struct option options[] = {
	    {"scope", required_argument, NULL, 's'},
	    {"file", required_argument, NULL, 'f'},
	    {NULL, 0, NULL, 0},
	};
	struct config *cfg = NULL;
	const char *scope = NULL, *file = NULL, *name;
	char err[PATH_MAX + 256], q[ERROR_QUOTE_SIZE], line[1300];
	unsigned char raw[32], hash[32];
	char token[sodium_base64_ENCODED_LEN(32, sodium_base64_VARIANT_URLSAFE_NO_PADDING)];
	char hex[65];
	int c, fd = -1, status = CLI_EXIT_FAIL;

	while ((c = getopt_long(argc, argv, "", options, NULL)) != -1) {
		if (c == 's') {
			scope = optarg;
		} else if (c == 'f') {
			file = optarg;
		} else {
			warnx("token: unknown option or missing value: %s",
			      error_quote_str(q, sizeof(q), argv[optind - 1]));
			return CLI_EXIT_USAGE;
		}
	}
	if (argc - optind != 2 || strcmp(argv[optind], "add") != 0 || !scope) {
		warnx("token: expected add NAME --scope SCOPE [--file F]");
		return CLI_EXIT_USAGE;
	}
	name = argv[optind + 1];
	if (!name[0] || strlen(name) > 64 ||
	    strspn(name, "abcdefghijklmnopqrstuvwxyz0123456789_-") != strlen(name)) {
		warnx("token: invalid name %s (use 1 to 64 of a-z, 0-9, '_' and '-')",
		      error_quote_str(q, sizeof(q), name));
		return CLI_EXIT_USAGE;
	}
	if (!valid_scope(scope)) {
		warnx("token: invalid scope %s (use read, write:* or write:COLL,COLL...)",
		      error_quote_str(q, sizeof(q), scope));
		return CLI_EXIT_USAGE;
	}
	if (!file) {
		if (cli_load_config(&cfg, err, sizeof(err)) < 0) {
			warnx("%s", err);
			goto cleanup;
		}
		file = cfg->http_tokens;
	}
	if (name_taken(file, name)) {
		warnx("token: %s already has a token named %s; remove its line first", file, name);
		goto cleanup;
	}
	randombytes_buf(raw, sizeof(raw));
	sodium_bin2base64(token, sizeof(token), raw, sizeof(raw),
	                  sodium_base64_VARIANT_URLSAFE_NO_PADDING);
	crypto_hash_sha256(hash, (const unsigned char *)token, strlen(token));
	sodium_bin2hex(hex, sizeof(hex), hash, sizeof(hash));
	int n = snprintf(line, sizeof(line), "%s %s %s\n", name, scope, hex);
	/* Readable by the service's group, which loket-http runs in. */
	fd = open(file, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
	if (fd < 0 || write(fd, line, (size_t)n) != n || fsync(fd) != 0) {
		warnx("token: cannot write %s: %s", file, strerror(errno));
		goto cleanup;
	}
	printf("%s\n", token);
	if (fflush(stdout) != 0)
		goto cleanup;
	status = CLI_EXIT_OK;
cleanup:
	sodium_memzero(raw, sizeof(raw));
	sodium_memzero(token, sizeof(token));
	if (fd >= 0)
		close(fd);
	config_free(cfg);
	return status;
}
