/*
 * loket resume --force: the operator's override for a node whose local
 * writes are refused because it cannot prove it has its own chain back (a
 * store restored from a backup when no peer holds the newer changesets,
 * the record of its own head lost or damaged). loketd rewrites the record
 * to the store's own head and opens writes, and logs it. Without --force
 * it only says what the override risks.
 */
#include <err.h>
#include <getopt.h>
#include <stdio.h>

#include "cli/cli.h"
#include "cli/subcommands.h"

static void print_resume(const json_t *result)
{
	printf("local writes are open; this node's next changeset is seq %lld\n",
	       cli_json_int(result, "own_head", 0) + 1);
}

int resume_main(int argc, char *argv[])
{
	static const struct option options[] = {
	    {"force", no_argument, NULL, 'f'},
	    {"json", no_argument, NULL, 'j'},
	    {NULL, 0, NULL, 0},
	};
	int c, force = 0, json = 0;

	while ((c = getopt_long(argc, argv, "", options, NULL)) != -1) {
		switch (c) {
		case 'f':
			force = 1;
			break;
		case 'j':
			json = 1;
			break;
		default:
			warnx("resume: unknown option or missing value: %s", argv[optind - 1]);
			return CLI_EXIT_USAGE;
		}
	}
	if (optind != argc) {
		warnx("resume: takes no arguments");
		return CLI_EXIT_USAGE;
	}
	return cli_request_print_take(CLIENT_TIMEOUT_MS,
	                              json_pack("{s:s, s:b}", "cmd", "resume", "force", force),
	                              json, print_resume);
}
