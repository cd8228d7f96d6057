/*
 * loket changes: the node's change feed (proto/CONTROL.md, "changes"), one
 * JSON line per entity changed after the cursor, in the order the node
 * applied the changes (a tombstone has "deleted":true), then the cursor to
 * resume from on standard error ("cursor CURSOR"). --follow keeps asking
 * every 100 ms and prints changes as they come, until interrupted.
 */
#include <err.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli/cli.h"
#include "cli/subcommands.h"
#include "proto/error.h"

#define CHANGES_FOLLOW_MS 100

int changes_main(int argc, char *argv[])
{
	static const struct option options[] = {
	    {"since", required_argument, NULL, 's'},
	    {"coll", required_argument, NULL, 'c'},
	    {"owner", required_argument, NULL, 'o'},
	    {"follow", no_argument, NULL, 'f'},
	    {NULL, 0, NULL, 0},
	};
	struct config *cfg = NULL;
	struct client *client = NULL;
	const char *coll = NULL, *owner = NULL;
	json_t *since = json_null();
	char err[1024], q[ERROR_QUOTE_SIZE];
	int c, follow = 0, status = CLI_EXIT_FAIL;

	while ((c = getopt_long(argc, argv, "", options, NULL)) != -1) {
		switch (c) {
		case 's':
			json_decref(since);
			since = json_string(optarg);
			break;
		case 'c':
			coll = optarg;
			break;
		case 'o':
			owner = optarg;
			break;
		case 'f':
			follow = 1;
			break;
		default:
			warnx("changes: unknown option or missing value: %s",
			      error_quote_str(q, sizeof(q), argv[optind - 1]));
			json_decref(since);
			return CLI_EXIT_USAGE;
		}
	}
	if (optind != argc || !since) {
		warnx("changes: takes no arguments besides its options");
		json_decref(since);
		return CLI_EXIT_USAGE;
	}
	if (cli_connect(&cfg, &client, err, sizeof(err)) < 0) {
		warnx("%s", err);
		goto cleanup;
	}
	for (;;) {
		json_t *req =
		    json_pack("{s:s, s:O, s:i}", "cmd", "changes", "since", since, "limit", 1000);
		json_t *result = NULL, *e;
		size_t i;
		if (coll)
			json_object_set_new(req, "coll", json_string(coll));
		if (owner)
			json_object_set_new(req, "owner", json_string(owner));
		int rc =
		    client_call(client, req, CLIENT_TIMEOUT_MS, &result, NULL, err, sizeof(err));
		json_decref(req);
		if (rc != 0) {
			warnx("changes: %s", err);
			goto cleanup;
		}
		json_array_foreach(json_object_get(result, "changes"), i, e)
		{
			if (json_dumpf(e, stdout, JSON_COMPACT) < 0 || putchar('\n') == EOF) {
				json_decref(result);
				goto cleanup;
			}
		}
		json_decref(since);
		since = json_incref(json_object_get(result, "cursor"));
		int more = json_is_true(json_object_get(result, "more"));
		json_decref(result);
		if (fflush(stdout) != 0)
			goto cleanup;
		if (more)
			continue;
		if (!follow)
			break;
		struct timespec ts = {0, CHANGES_FOLLOW_MS * 1000000L};
		nanosleep(&ts, NULL);
	}
	fprintf(stderr, "cursor %s\n", json_string_value(since));
	status = CLI_EXIT_OK;
cleanup:
	json_decref(since);
	client_free(client);
	config_free(cfg);
	return status;
}
