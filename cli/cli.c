/*
 * What the subcommands share: the configuration path chosen on the command
 * line, loading that configuration and connecting to its daemon, bounded
 * number parsing, the checks an op passes before it is sent, and printing.
 * The only state is the configuration path, in one static struct set once
 * by main before any subcommand runs.
 */
#include "cli/cli.h"

#include <err.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/paths.h"
#include "proto/changeset.h"
#include "proto/error.h"
#include "proto/limits.h"

static struct {
	const char *config_path;
	int config_explicit;
} cli = {LOKET_DEFAULT_CONF, 0};

void cli_set_config_path(const char *path, int explicit)
{
	cli.config_path = path;
	cli.config_explicit = explicit;
}

const char *cli_config_path(void)
{
	return cli.config_path;
}

int cli_config_explicit(void)
{
	return cli.config_explicit;
}

int cli_load_config(struct config **out, char *err, size_t errlen)
{
	int rc = config_load(cli.config_path, out, err, errlen);
	char q[ERROR_QUOTE_SIZE];
	/* Nobody named a file and the default is not there: say how to name one. */
	if (rc == -ENOENT && !cli.config_explicit)
		snprintf(err, errlen,
		         "no configuration at %s: give -c FILE, set LOKET_CONF, or create a node "
		         "with `loket init DIR --name NAME`",
		         error_quote_str(q, sizeof(q), cli.config_path));
	return rc;
}

int cli_connect(struct config **cfg, struct client **client, char *err, size_t errlen)
{
	int rc;

	*cfg = NULL;
	*client = NULL;
	rc = cli_load_config(cfg, err, errlen);
	if (rc < 0)
		return rc;
	rc = client_open((*cfg)->data, client, err, errlen);
	if (rc < 0) {
		config_free(*cfg);
		*cfg = NULL;
	}
	return rc;
}

int cli_request(const json_t *req, int timeout_ms, json_t **result, char *err, size_t errlen)
{
	struct config *cfg;
	struct client *client;
	int rc;

	*result = NULL;
	rc = cli_connect(&cfg, &client, err, errlen);
	if (rc < 0)
		return rc;
	rc = client_call(client, req, timeout_ms, result, NULL, err, errlen);
	client_free(client);
	config_free(cfg);
	return rc;
}

int cli_request_print_take(int timeout_ms, json_t *req_take, int json,
                           void (*print)(const json_t *result))
{
	json_t *result = NULL;
	char err[512];
	int status = CLI_EXIT_FAIL;

	if (!req_take)
		abort();
	if (cli_request(req_take, timeout_ms, &result, err, sizeof(err)) < 0) {
		warnx("%s", err);
		goto cleanup;
	}
	if (json) {
		if (cli_print_json(result) < 0)
			goto cleanup;
	} else {
		print(result);
	}
	status = CLI_EXIT_OK;
cleanup:
	json_decref(result);
	json_decref(req_take);
	return status;
}

int cli_parse_limit(const char *s, long *out, char *err, size_t errlen)
{
	char *end, q[ERROR_QUOTE_SIZE];
	long v;

	errno = 0;
	v = strtol(s, &end, 10);
	if (s[0] < '0' || s[0] > '9' || *end != '\0' || errno == ERANGE || v < 1 ||
	    v > CLI_LIMIT_MAX) {
		snprintf(err, errlen, "limit %s is not a number from 1 to %ld",
		         error_quote_str(q, sizeof(q), s), CLI_LIMIT_MAX);
		return -EINVAL;
	}
	*out = v;
	return 0;
}

int cli_print_json(const json_t *v)
{
	size_t flags = JSON_ENCODE_ANY;

	flags |= isatty(STDOUT_FILENO) ? JSON_INDENT(2) : JSON_COMPACT;
	if (json_dumpf(v, stdout, flags) < 0 || putchar('\n') == EOF)
		return -EIO;
	return 0;
}

/* Prints a string value, indenting continuation lines under the field. */
static void print_text(const char *s)
{
	for (; *s; s++) {
		putchar(*s);
		if (*s == '\n')
			fputs("    ", stdout);
	}
}

void cli_print_entity(const json_t *entity)
{
	const char *coll = cli_json_str(entity, "coll");
	const char *owner = cli_json_str(entity, "owner");
	const char *id = cli_json_str(entity, "id");
	json_t *fields = json_object_get(entity, "fields");
	const char *key;
	json_t *v;

	printf("%s/%s/%s\n", coll ? coll : "?", owner ? owner : "?", id ? id : "?");
	json_object_foreach(fields, key, v)
	{
		printf("  %s: ", key);
		if (json_is_string(v)) {
			print_text(json_string_value(v));
		} else {
			char *s = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
			fputs(s ? s : "?", stdout);
			free(s);
		}
		putchar('\n');
	}
}

/* Whether host, as a ZeroMQ tcp:// endpoint writes it, means every local address. */
static int wildcard_host(const char *host, size_t len)
{
	static const char *const any[] = {"*", "0.0.0.0", "[::]", "[0:0:0:0:0:0:0:0]"};

	for (size_t i = 0; i < sizeof(any) / sizeof(any[0]); i++)
		if (strlen(any[i]) == len && memcmp(host, any[i], len) == 0)
			return 1;
	return 0;
}

void cli_print_member(const char *name, const char *key_b64, const char *listen)
{
	const char *host = NULL, *colon = NULL;
	char self[256];

	printf("[member %s]\nkey = %s\n", name, key_b64);
	if (!listen || !listen[0])
		return;
	/* config.c and init accept only tcp://HOST:PORT; anything else is passed on as it is. */
	if (strncmp(listen, "tcp://", 6) == 0) {
		host = listen + 6;
		colon = strrchr(host, ':');
	}
	if (!colon || !wildcard_host(host, (size_t)(colon - host)) ||
	    gethostname(self, sizeof(self)) != 0 || !self[0] || strpbrk(self, " \t;#")) {
		printf("endpoint = %s\n", listen);
		return;
	}
	self[sizeof(self) - 1] = '\0';
	printf("; loketd listens on %s (every address); peers dial it by this\n"
	       "; host's name: write the name or address they reach it at if it differs\n"
	       "endpoint = tcp://%s%s\n",
	       listen, self, colon);
}

const char *cli_json_str(const json_t *obj, const char *key)
{
	json_t *v = json_object_get(obj, key);

	return json_is_string(v) ? json_string_value(v) : NULL;
}

long long cli_json_int(const json_t *obj, const char *key, long long dflt)
{
	json_t *v = json_object_get(obj, key);

	return json_is_integer(v) ? json_integer_value(v) : dflt;
}
