/*
 * loket rotate-key: asks the running loketd to rotate its key (proto/
 * FORMAT.md section 14). loketd makes the new key beside the old one,
 * signs with the old key a rotation record naming the new one as the next
 * changeset of its chain, and signs with the new key from then on; the
 * origin, its entities and its chain stay, and peers follow the record
 * with no change to their configuration. The old key file is kept as
 * KEY.old-SEQ for the operator to destroy or archive.
 */
#include <err.h>
#include <getopt.h>
#include <stdio.h>

#include "cli/cli.h"
#include "cli/subcommands.h"

static const char *or_unknown(const char *s)
{
	return s ? s : "?";
}

static void print_rotated(const json_t *result)
{
	printf("rotated: from seq %lld on this node signs with key %s\n"
	       "the rotation record is seq %lld, signed by the old key %s\n"
	       "the old key is kept as %s; the origin stays %s\n",
	       cli_json_int(result, "seq", 0) + 1, or_unknown(cli_json_str(result, "key")),
	       cli_json_int(result, "seq", 0), or_unknown(cli_json_str(result, "old_key")),
	       or_unknown(cli_json_str(result, "old_key_file")),
	       or_unknown(cli_json_str(result, "origin")));
}

int rotate_key_main(int argc, char *argv[])
{
	static const struct option options[] = {
	    {"json", no_argument, NULL, 'j'},
	    {NULL, 0, NULL, 0},
	};
	int c, json = 0;

	while ((c = getopt_long(argc, argv, "", options, NULL)) != -1) {
		switch (c) {
		case 'j':
			json = 1;
			break;
		default:
			warnx("rotate-key: unknown option or missing value: %s", argv[optind - 1]);
			return CLI_EXIT_USAGE;
		}
	}
	if (optind != argc) {
		warnx("rotate-key: takes no arguments");
		return CLI_EXIT_USAGE;
	}
	return cli_request_print_take(CLIENT_TIMEOUT_MS, json_pack("{s:s}", "cmd", "rotate_key"),
	                              json, print_rotated);
}
