/*
 * loket rebuild: asks the daemon to recreate every entity, the search index
 * and the state digest from the changesets it holds. It can take a while on
 * a large store, hence the long timeout.
 */
#include <err.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/subcommands.h"

int rebuild_main(int argc, char *argv[])
{
	static const struct option options[] = {
	    {"json", no_argument, NULL, 'j'},
	    {NULL, 0, NULL, 0},
	};
	json_t *req = NULL, *result = NULL;
	char err[512];
	int c, json = 0, status = CLI_EXIT_FAIL;

	while ((c = getopt_long(argc, argv, "", options, NULL)) != -1) {
		if (c != 'j') {
			warnx("rebuild: unknown option or missing value: %s", argv[optind - 1]);
			return CLI_EXIT_USAGE;
		}
		json = 1;
	}
	if (optind != argc) {
		warnx("rebuild: takes no arguments");
		return CLI_EXIT_USAGE;
	}
	req = json_pack("{s:s}", "cmd", "rebuild");
	if (!req)
		abort();
	if (cli_request(req, CLIENT_TIMEOUT_LONG_MS, &result, err, sizeof(err)) < 0) {
		warnx("%s", err);
		goto cleanup;
	}
	if (json) {
		if (cli_print_json(result) < 0)
			goto cleanup;
	} else {
		const char *digest = cli_json_str(result, "digest");
		printf("rebuilt %lld entities, digest %s\n", cli_json_int(result, "entities", 0),
		       digest ? digest : "?");
	}
	status = CLI_EXIT_OK;
cleanup:
	json_decref(result);
	json_decref(req);
	return status;
}
