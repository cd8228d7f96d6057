/*
 * loket export: writes entities as JSON Lines in the format `loket import`
 * reads (common/export.h), so that importing the export of this node's own
 * entities into another node gives that node the same entities. It reads
 * a page of EXPORT_PAGE entities at a time through the control command
 * "page" and writes each before it asks for the next, so memory stays one
 * page whatever the store's size. Without COLL it exports every collection
 * the node holds entities of (`status` counts them), in name order. Pages
 * are the list's keyset pages: an entity that exists from the start of the
 * export to its end is written exactly once, whatever is written
 * meanwhile; the export is not one snapshot of the whole store.
 *
 * -o FILE writes a temporary file beside FILE and renames it into place
 * once the export is complete and on disk, so FILE is never a partial
 * export; without it the lines go to standard output.
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
#include "common/export.h"
#include "common/op_check.h"
#include "proto/error.h"

struct export
{
	struct client *client;
	const char *owner;
	FILE *out;
	unsigned long long lines;
};

/* Writes every entity of coll; 0, or -1 after saying why. */
static int export_coll(struct export *x, const char *coll)
{
	char err[1024];
	char *after = NULL;
	int status = -1;

	for (;;) {
		json_t *req = export_page_request(coll, x->owner, after), *page = NULL, *e;
		size_t i;
		int rc =
		    client_call(x->client, req, CLIENT_TIMEOUT_MS, &page, NULL, err, sizeof(err));
		json_decref(req);
		free(after);
		after = NULL;
		if (rc != 0) {
			warnx("export: %s: %s", coll, err);
			goto cleanup;
		}
		json_array_foreach(json_object_get(page, "entities"), i, e)
		{
			size_t len;
			char *line = export_line(e, &len, err, sizeof(err));
			if (!line) {
				warnx("export: %s: %s", coll, err);
				json_decref(page);
				goto cleanup;
			}
			size_t written = fwrite(line, 1, len, x->out);
			free(line);
			if (written != len) {
				warn("export: write");
				json_decref(page);
				goto cleanup;
			}
			x->lines++;
		}
		json_t *next = json_object_get(page, "next");
		if (json_is_string(next)) {
			after = strdup(json_string_value(next));
			if (!after)
				abort();
		}
		json_decref(page);
		if (!after)
			break;
	}
	status = 0;
cleanup:
	free(after);
	return status;
}

static int by_name(const void *a, const void *b)
{
	return strcmp(json_string_value(*(json_t *const *)a),
	              json_string_value(*(json_t *const *)b));
}

/* The collections the node holds live entities of, by name: a new array of strings. */
static int held_collections(struct client *client, json_t **out)
{
	char err[1024];
	json_t *req = json_pack("{s:s}", "cmd", "status"), *st = NULL, *count;
	const char *coll;

	*out = NULL;
	int rc = client_call(client, req, CLIENT_TIMEOUT_MS, &st, NULL, err, sizeof(err));
	json_decref(req);
	if (rc != 0) {
		warnx("export: %s", err);
		return -1;
	}
	json_t *colls = json_array();
	json_object_foreach(json_object_get(st, "counts"), coll, count)
	{
		if (json_integer_value(count) > 0)
			json_array_append_new(colls, json_string(coll));
	}
	json_decref(st);
	/* Sorted, so that an export of the same state is the same file. */
	size_t n = json_array_size(colls);
	json_t **sorted = calloc(n ? n : 1, sizeof(*sorted));
	if (!sorted)
		abort();
	for (size_t i = 0; i < n; i++)
		sorted[i] = json_incref(json_array_get(colls, i));
	qsort(sorted, n, sizeof(*sorted), by_name);
	json_array_clear(colls);
	for (size_t i = 0; i < n; i++)
		json_array_append_new(colls, sorted[i]);
	free(sorted);
	*out = colls;
	return 0;
}

/* A temporary file beside path, with the mode a new file would get; NULL after saying why. */
static FILE *open_beside(const char *path, char *tmp, size_t tmplen)
{
	int n = snprintf(tmp, tmplen, "%s.tmp.XXXXXX", path);
	if (n < 0 || (size_t)n >= tmplen) {
		warnx("export: the path %s is too long", path);
		return NULL;
	}
	int fd = mkstemp(tmp);
	if (fd < 0) {
		warn("export: %s", tmp);
		return NULL;
	}
	mode_t mask = umask(0);
	umask(mask);
	if (fchmod(fd, 0666 & ~mask) < 0)
		warn("export: chmod %s", tmp);
	FILE *f = fdopen(fd, "w");
	if (!f) {
		warn("export: %s", tmp);
		close(fd);
		unlink(tmp);
	}
	return f;
}

int export_main(int argc, char *argv[])
{
	static const struct option options[] = {
	    {"owner", required_argument, NULL, 'w'},
	    {NULL, 0, NULL, 0},
	};
	struct config *cfg = NULL;
	struct export x = {.out = stdout};
	json_t *colls = NULL;
	const char *path = NULL;
	char err[1024], q[ERROR_QUOTE_SIZE], tmp[PATH_MAX] = "";
	int c, status = CLI_EXIT_FAIL;

	while ((c = getopt_long(argc, argv, "o:", options, NULL)) != -1) {
		switch (c) {
		case 'w':
			x.owner = optarg;
			break;
		case 'o':
			path = optarg;
			break;
		default:
			warnx("export: unknown option or missing value: %s",
			      error_quote_str(q, sizeof(q), argv[optind - 1]));
			return CLI_EXIT_USAGE;
		}
	}
	for (int i = optind; i < argc; i++) {
		if (op_check_coll(argv[i], err, sizeof(err)) < 0) {
			warnx("export: %s", err);
			return CLI_EXIT_USAGE;
		}
	}
	if (path && !path[0]) {
		warnx("export: -o needs a file name");
		return CLI_EXIT_USAGE;
	}
	if (cli_connect(&cfg, &x.client, err, sizeof(err)) < 0) {
		warnx("%s", err);
		goto cleanup;
	}
	if (optind == argc) {
		if (held_collections(x.client, &colls) < 0)
			goto cleanup;
	} else {
		colls = json_array();
		for (int i = optind; i < argc; i++)
			json_array_append_new(colls, json_string(argv[i]));
	}
	if (path && !(x.out = open_beside(path, tmp, sizeof(tmp))))
		goto cleanup;
	for (size_t i = 0; i < json_array_size(colls); i++)
		if (export_coll(&x, json_string_value(json_array_get(colls, i))) < 0)
			goto cleanup;
	if (path) {
		/* On disk before it takes the name, so that FILE is whole even after a crash. */
		if (fflush(x.out) != 0 || fsync(fileno(x.out)) < 0) {
			warn("export: %s", tmp);
			goto cleanup;
		}
		FILE *f = x.out;
		x.out = stdout;
		if (fclose(f) != 0) {
			warn("export: %s", tmp);
			goto cleanup;
		}
		if (rename(tmp, path) < 0) {
			warn("export: %s", path);
			goto cleanup;
		}
		tmp[0] = '\0';
		fprintf(stderr, "exported %llu %s to %s\n", x.lines,
		        x.lines == 1 ? "entity" : "entities", path);
	}
	status = CLI_EXIT_OK;
cleanup:
	if (x.out != stdout)
		fclose(x.out);
	if (tmp[0])
		unlink(tmp);
	json_decref(colls);
	client_free(x.client);
	config_free(cfg);
	return status;
}
