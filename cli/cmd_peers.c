/*
 * peers and reload: the sync side of a running node. peers shows, for each
 * roster member, whether a session is up and who dialled it, when the last
 * message came, how many changesets each side lacks of the other's view,
 * and the errors seen; reload makes loketd re-read the roster from its
 * configuration file, as SIGHUP does; checkpoints shows the latest
 * checkpoint the node holds of every origin and who cosigned it.
 */
#include <err.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli/cli.h"
#include "cli/subcommands.h"
#include "proto/error.h"

/* Parses the one option both take; returns 0 or the usage exit status. */
static int parse_json_opt(int argc, char *argv[], int *json)
{
	static const struct option options[] = {
	    {"json", no_argument, NULL, 'j'},
	    {NULL, 0, NULL, 0},
	};
	int c;
	char q[ERROR_QUOTE_SIZE];

	*json = 0;
	while ((c = getopt_long(argc, argv, "", options, NULL)) != -1) {
		if (c != 'j') {
			warnx("%s: unknown option or missing value: %s", argv[0],
			      error_quote_str(q, sizeof(q), argv[optind - 1]));
			return CLI_EXIT_USAGE;
		}
		*json = 1;
	}
	if (optind != argc) {
		warnx("%s: takes no arguments", argv[0]);
		return CLI_EXIT_USAGE;
	}
	return 0;
}

/* "3s ago", "2h ago" or "never", from milliseconds since the epoch. */
static void format_ago(const json_t *seen, char *out, size_t outlen)
{
	if (!json_is_integer(seen)) {
		snprintf(out, outlen, "never");
		return;
	}
	long long ms = (long long)json_integer_value(seen);
	long long ago = (long long)time(NULL) - ms / 1000;
	if (ago < 0)
		ago = 0;
	if (ago < 120)
		snprintf(out, outlen, "%llds ago", ago);
	else if (ago < 7200)
		snprintf(out, outlen, "%lldm ago", ago / 60);
	else
		snprintf(out, outlen, "%lldh ago", ago / 3600);
}

static void print_peers(const json_t *result)
{
	size_t i;
	json_t *p;

	if (json_array_size(result) == 0) {
		printf("no members in the roster\n");
		return;
	}
	printf("%-20s %-9s %-10s %9s %9s %6s\n", "MEMBER", "SESSION", "LAST SEEN", "THEY LACK",
	       "WE LACK", "ERRORS");
	json_array_foreach(result, i, p)
	{
		const char *session = cli_json_str(p, "session");
		char ago[32];

		format_ago(json_object_get(p, "last_seen"), ago, sizeof(ago));
		printf("%-20s %-9s %-10s %9lld %9lld %6lld\n", cli_json_str(p, "name"),
		       session ? session : "down", ago, cli_json_int(p, "they_lack", 0),
		       cli_json_int(p, "we_lack", 0), cli_json_int(p, "errors", 0));
		if (json_is_true(json_object_get(p, "incompatible")))
			printf("  incompatible: sync with it is off\n");
		if (cli_json_int(p, "banned_ms", 0) > 0)
			printf("  refused for %lld s more after a protocol error (offence %lld)\n",
			       (cli_json_int(p, "banned_ms", 0) + 999) / 1000,
			       cli_json_int(p, "offences", 0));
		if (cli_json_str(p, "last_error"))
			printf("  last error: %s\n", cli_json_str(p, "last_error"));
	}
}

int peers_main(int argc, char *argv[])
{
	int json, rc = parse_json_opt(argc, argv, &json);

	return rc ? rc
	          : cli_request_print_take(CLIENT_TIMEOUT_MS, json_pack("{s:s}", "cmd", "peers"),
	                                   json, print_peers);
}

static void print_names(const char *what, const json_t *names)
{
	size_t i;
	json_t *n;

	if (json_array_size(names) == 0)
		return;
	printf("%s:", what);
	json_array_foreach(names, i, n) printf(" %s", json_string_value(n));
	printf("\n");
}

static void print_reload(const json_t *result)
{
	printf("roster reloaded: %lld members\n", cli_json_int(result, "members", 0));
	print_names("added", json_object_get(result, "added"));
	print_names("removed", json_object_get(result, "removed"));
}

int reload_main(int argc, char *argv[])
{
	int json, rc = parse_json_opt(argc, argv, &json);

	return rc ? rc
	          : cli_request_print_take(CLIENT_TIMEOUT_MS, json_pack("{s:s}", "cmd", "reload"),
	                                   json, print_reload);
}

static void print_checkpoints(const json_t *result)
{
	size_t i, j;
	json_t *c, *n;

	if (json_array_size(result) == 0) {
		printf("no checkpoints yet\n");
		return;
	}
	printf("%-20s %10s %-44s %s\n", "ORIGIN", "SIZE", "ROOT", "COSIGNERS");
	json_array_foreach(result, i, c)
	{
		json_t *names = json_object_get(c, "cosigners");

		printf("%-20s %10lld %-44s",
		       cli_json_str(c, "origin") ? cli_json_str(c, "origin") : "?",
		       cli_json_int(c, "size", 0),
		       cli_json_str(c, "root") ? cli_json_str(c, "root") : "?");
		if (json_array_size(names) == 0)
			printf(" (none)");
		json_array_foreach(names, j, n) printf(" %s", json_string_value(n));
		putchar('\n');
		if (json_is_object(json_object_get(c, "split")))
			printf("  SPLIT VIEW: two trees at size %lld; frozen there\n",
			       cli_json_int(json_object_get(c, "split"), "size", 0));
	}
}

int checkpoints_main(int argc, char *argv[])
{
	int json, rc = parse_json_opt(argc, argv, &json);

	return rc ? rc
	          : cli_request_print_take(CLIENT_TIMEOUT_MS,
	                                   json_pack("{s:s}", "cmd", "checkpoints"), json,
	                                   print_checkpoints);
}
