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
#include "proto/error.h"

static void print_rebuild(const json_t *result)
{
	const char *digest = cli_json_str(result, "digest");

	printf("rebuilt %lld entities, digest %s\n", cli_json_int(result, "entities", 0),
	       digest ? digest : "?");
}

int rebuild_main(int argc, char *argv[])
{
	static const struct option options[] = {
	    {"json", no_argument, NULL, 'j'},
	    {NULL, 0, NULL, 0},
	};
	int c, json = 0;
	char q[ERROR_QUOTE_SIZE];

	while ((c = getopt_long(argc, argv, "", options, NULL)) != -1) {
		if (c != 'j') {
			warnx("rebuild: unknown option or missing value: %s",
			      error_quote_str(q, sizeof(q), argv[optind - 1]));
			return CLI_EXIT_USAGE;
		}
		json = 1;
	}
	if (optind != argc) {
		warnx("rebuild: takes no arguments");
		return CLI_EXIT_USAGE;
	}
	return cli_request_print_take(CLIENT_TIMEOUT_LONG_MS, json_pack("{s:s}", "cmd", "rebuild"),
	                              json, print_rebuild);
}
