/*
 * loket board: the question board of the whole federation as this node
 * holds it, newest first, from the daemon's "board" command. The filters
 * go to the daemon as they are, so it is the daemon that says which
 * statuses and kinds exist. Prints one block per question for people, or
 * the daemon's array with --json.
 */
#include <err.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/subcommands.h"
#include "proto/error.h"

/* Prints "  label: a, b, c" for the strings of arr, nothing if it has none. */
static void print_list(const char *label, const json_t *arr)
{
	const json_t *v;
	size_t i, n = 0;

	json_array_foreach(arr, i, v)
	{
		if (!json_is_string(v))
			continue;
		printf("%s%s", n++ ? ", " : label, json_string_value(v));
	}
}

static void print_board(const json_t *board)
{
	const json_t *q;
	size_t i;

	if (json_array_size(board) == 0) {
		printf("no questions\n");
		return;
	}
	json_array_foreach(board, i, q)
	{
		const char *ref = cli_json_str(q, "ref"), *title = cli_json_str(q, "title");
		const char *status = cli_json_str(q, "status"), *kind = cli_json_str(q, "kind");
		const char *asker = cli_json_str(q, "asker");
		const char *deadline = cli_json_str(q, "deadline");
		long long responses = cli_json_int(q, "responses", 0);

		if (i > 0)
			putchar('\n');
		printf("%s  [%s]%s%s\n", ref ? ref : "?", status ? status : "?", kind ? "  " : "",
		       kind ? kind : "");
		printf("  %s\n", title ? title : "(no title)");
		if (asker)
			printf("  asked by %s\n", asker);
		if (json_array_size(json_object_get(q, "topics")) > 0) {
			print_list("  topics: ", json_object_get(q, "topics"));
			putchar('\n');
		}
		if (deadline)
			printf("  deadline: %s\n", deadline);
		printf("  %lld response%s, %lld accepted\n", responses, responses == 1 ? "" : "s",
		       cli_json_int(q, "accepted", 0));
	}
}

int board_main(int argc, char *argv[])
{
	static const struct option options[] = {
	    {"status", required_argument, NULL, 's'}, {"topic", required_argument, NULL, 't'},
	    {"kind", required_argument, NULL, 'k'},   {"limit", required_argument, NULL, 'n'},
	    {"json", no_argument, NULL, 'j'},         {NULL, 0, NULL, 0},
	};
	const char *filter[3] = {NULL, NULL, NULL}; /* status, topic, kind */
	static const char *const names[3] = {"status", "topic", "kind"};
	json_t *req = NULL, *result = NULL;
	char err[512], q[ERROR_QUOTE_SIZE];
	long limit = 0;
	int ch, json = 0, status = CLI_EXIT_FAIL;

	while ((ch = getopt_long(argc, argv, "", options, NULL)) != -1) {
		switch (ch) {
		case 's':
			filter[0] = optarg;
			break;
		case 't':
			filter[1] = optarg;
			break;
		case 'k':
			filter[2] = optarg;
			break;
		case 'n':
			if (cli_parse_limit(optarg, &limit, err, sizeof(err)) < 0) {
				warnx("board: %s", err);
				return CLI_EXIT_USAGE;
			}
			break;
		case 'j':
			json = 1;
			break;
		default:
			warnx("board: unknown option or missing value: %s",
			      error_quote_str(q, sizeof(q), argv[optind - 1]));
			return CLI_EXIT_USAGE;
		}
	}
	if (optind != argc) {
		warnx("board: takes no arguments besides options");
		return CLI_EXIT_USAGE;
	}
	req = json_pack("{s:s}", "cmd", "board");
	if (!req)
		abort();
	for (int i = 0; i < 3; i++) {
		json_t *v;
		if (!filter[i])
			continue;
		v = json_string(filter[i]);
		if (!v || !filter[i][0]) {
			json_decref(v);
			warnx("board: --%s must be non-empty UTF-8 text", names[i]);
			goto cleanup;
		}
		json_object_set_new(req, names[i], v);
	}
	if (limit > 0)
		json_object_set_new(req, "limit", json_integer(limit));
	if (cli_request(req, CLIENT_TIMEOUT_MS, &result, err, sizeof(err)) < 0) {
		warnx("board: %s", err);
		goto cleanup;
	}
	if (json) {
		if (cli_print_json(result) < 0)
			goto cleanup;
	} else {
		print_board(result);
	}
	status = CLI_EXIT_OK;
cleanup:
	json_decref(result);
	json_decref(req);
	return status;
}
