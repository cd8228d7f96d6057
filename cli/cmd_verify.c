/*
 * loket verify: the auditor's command. It needs no daemon: it opens the
 * store read-only (the node's own, or any copy given with --db) and has
 * store_verify check every signature, chain link and seq, the roster,
 * forks, and the state digest replayed from scratch. The roster is the
 * configuration's members plus this node itself; an auditor holding only a
 * store file and no configuration gets every other check, and is told that
 * membership was not checked. The exit status is 0 only when nothing was
 * found.
 */
#include <err.h>
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli.h"
#include "cli/subcommands.h"
#include "common/key.h"
#include "common/paths.h"
#include "proto/error.h"
#include "store/store.h"

#define VERIFY_NO_ROSTER "roster: not checked (--db without -c or $LOKET_CONF)"

static int add_key(json_t *roster, const uint8_t pk[32])
{
	char b64[45];

	config_key_encode(pk, b64);
	return json_array_append_new(roster, json_string(b64));
}

/*
 * The roster as store_verify takes it: base64 keys of the members and of
 * this node. This node's key comes from its key file if this user may read
 * it, else from the store's member table.
 */
static int build_roster(const struct config *cfg, struct store *s, json_t **out, char *err,
                        size_t errlen)
{
	json_t *roster = json_array();
	struct key *key = NULL;
	uint8_t pk[32];
	char kerr[PATH_MAX + 256], q[ERROR_QUOTE_SIZE];

	if (!roster)
		abort();
	for (size_t i = 0; i < cfg->n_members; i++)
		if (add_key(roster, cfg->members[i].key) < 0)
			abort();
	if (key_load(cfg->key, &key, kerr, sizeof(kerr)) == 0) {
		key_public(key, pk);
		key_free(key);
	} else if (store_member_key(s, cfg->name, pk) < 0) {
		snprintf(err, errlen,
		         "cannot tell this node's own key: %s; and the store names no member %s",
		         kerr, error_quote_str(q, sizeof(q), cfg->name));
		json_decref(roster);
		return LOKET_E_NOT_FOUND;
	}
	if (add_key(roster, pk) < 0)
		abort();
	*out = roster;
	return 0;
}

static void print_report(const json_t *report, int roster_checked)
{
	json_t *problems = json_object_get(report, "problems");
	const char *digest = cli_json_str(report, "digest");
	json_t *p;
	size_t i;

	if (!roster_checked)
		printf("%s\n", VERIFY_NO_ROSTER);
	json_array_foreach(problems, i, p)
	{
		const char *origin = cli_json_str(p, "origin");
		const char *problem = cli_json_str(p, "problem");
		json_t *seq = json_object_get(p, "seq");

		if (origin && json_is_integer(seq))
			printf("%s seq %lld: ", origin, (long long)json_integer_value(seq));
		else if (origin)
			printf("%s: ", origin);
		printf("%s\n", problem ? problem : "unknown problem");
	}
	printf("verified %lld changesets, %lld ops, digest %s: ",
	       cli_json_int(report, "changesets", 0), cli_json_int(report, "ops", 0),
	       digest ? digest : "?");
	if (json_is_true(json_object_get(report, "ok")))
		printf("ok\n");
	else
		printf("%zu problem%s\n", json_array_size(problems),
		       json_array_size(problems) == 1 ? "" : "s");
}

int verify_main(int argc, char *argv[])
{
	static const struct option options[] = {
	    {"db", required_argument, NULL, 'd'},
	    {"json", no_argument, NULL, 'j'},
	    {NULL, 0, NULL, 0},
	};
	const char *db = NULL;
	struct config *cfg = NULL;
	struct store *s = NULL;
	json_t *roster = NULL, *report = NULL;
	char path[PATH_MAX], err[2 * PATH_MAX], q[ERROR_QUOTE_SIZE];
	int c, n, json = 0, status = CLI_EXIT_FAIL;

	while ((c = getopt_long(argc, argv, "", options, NULL)) != -1) {
		switch (c) {
		case 'd':
			db = optarg;
			break;
		case 'j':
			json = 1;
			break;
		default:
			warnx("verify: unknown option or missing value: %s",
			      error_quote_str(q, sizeof(q), argv[optind - 1]));
			return CLI_EXIT_USAGE;
		}
	}
	if (optind != argc) {
		warnx("verify: takes no arguments besides options");
		return CLI_EXIT_USAGE;
	}

	/* A store given alone is audited without a roster. */
	if (!db || cli_config_explicit()) {
		if (cli_load_config(&cfg, err, sizeof(err)) < 0) {
			warnx("%s", err);
			goto cleanup;
		}
	}
	if (db)
		n = snprintf(path, sizeof(path), "%s", db);
	else
		n = snprintf(path, sizeof(path), "%s/%s", cfg->data, LOKET_STORE_FILE);
	if (n < 0 || (size_t)n >= sizeof(path)) {
		warnx("store path is too long");
		goto cleanup;
	}
	if (access(path, R_OK) < 0) {
		warnx("cannot read the store %s: %s", error_quote_str(q, sizeof(q), path),
		      strerror(errno));
		goto cleanup;
	}
	if (store_open(path, STORE_READONLY, &s, err, sizeof(err)) < 0) {
		warnx("%s", err);
		goto cleanup;
	}
	if (cfg && build_roster(cfg, s, &roster, err, sizeof(err)) < 0) {
		warnx("%s", err);
		goto cleanup;
	}
	if (store_verify(s, roster, &report) < 0) {
		warnx("cannot verify %s: %s", error_quote_str(q, sizeof(q), path), store_errmsg(s));
		goto cleanup;
	}
	if (json) {
		if (json_object_set_new(report, "roster_checked", json_boolean(roster != NULL)) < 0)
			abort();
		if (cli_print_json(report) < 0)
			goto cleanup;
	} else {
		print_report(report, roster != NULL);
	}
	if (json_is_true(json_object_get(report, "ok")))
		status = CLI_EXIT_OK;
cleanup:
	json_decref(report);
	json_decref(roster);
	store_close(s);
	config_free(cfg);
	return status;
}
