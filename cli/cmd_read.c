/*
 * The reading subcommands: status, get, list, search and log. Each builds
 * one control request (proto/CONTROL.md), sends it, and prints the result
 * either as the daemon's JSON (--json, for scripts and jq) or in a form
 * meant for people. They share the request-and-print step, run_read.
 */
#include <err.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli/cli.h"
#include "cli/subcommands.h"
#include "common/op_check.h"
#include "proto/error.h"

/* Options every read has: --json, and for some --owner/--origin/--coll and --limit. */
struct read_opts {
	int json;
	const char *who_name; /* "owner", "origin", "coll" or NULL */
	const char *who;      /* its value */
	long limit;           /* 0: the daemon's default */
};

static int utf8_ok(const char *s)
{
	json_t *v = json_string(s);

	json_decref(v);
	return v != NULL;
}

/*
 * Parses the options of a read. who_name names the one string option it
 * takes ("owner", "origin", "coll", or NULL for none); with_limit says
 * whether --limit is allowed. Returns 0, or the usage exit status after
 * saying what is wrong.
 */
static int parse_read_opts(int argc, char *argv[], const char *who_name, int with_limit,
                           struct read_opts *o)
{
	struct option options[4];
	size_t n = 0;
	char err[256], q[ERROR_QUOTE_SIZE];
	int c;

	memset(o, 0, sizeof(*o));
	o->who_name = who_name;
	memset(options, 0, sizeof(options));
	options[n++] = (struct option){"json", no_argument, NULL, 'j'};
	if (who_name)
		options[n++] = (struct option){who_name, required_argument, NULL, 'w'};
	if (with_limit)
		options[n++] = (struct option){"limit", required_argument, NULL, 'n'};

	while ((c = getopt_long(argc, argv, "", options, NULL)) != -1) {
		switch (c) {
		case 'j':
			o->json = 1;
			break;
		case 'w':
			if (!utf8_ok(optarg)) {
				warnx("%s: --%s %s is not valid UTF-8", argv[0], who_name,
				      error_quote_str(q, sizeof(q), optarg));
				return CLI_EXIT_USAGE;
			}
			o->who = optarg;
			break;
		case 'n':
			if (cli_parse_limit(optarg, &o->limit, err, sizeof(err)) < 0) {
				warnx("%s: %s", argv[0], err);
				return CLI_EXIT_USAGE;
			}
			break;
		default:
			warnx("%s: unknown option or missing value: %s", argv[0],
			      error_quote_str(q, sizeof(q), argv[optind - 1]));
			return CLI_EXIT_USAGE;
		}
	}
	return 0;
}

/* Says why a request failed, naming the member the user gave if it is the cause. */
static void report(const struct read_opts *o, int rc, const char *err)
{
	char q[ERROR_QUOTE_SIZE];

	if (o->who && (rc == LOKET_E_NOT_FOUND || rc == LOKET_E_NOT_MEMBER))
		warnx("--%s %s: %s", o->who_name, error_quote_str(q, sizeof(q), o->who), err);
	else
		warnx("%s", err);
}

/*
 * Sends req (consumed) and prints the result with print, or as JSON.
 * Returns the exit status.
 */
static int run_read(json_t *req, const struct read_opts *o, void (*print)(const json_t *result))
{
	json_t *result = NULL;
	char err[512];
	int rc, status = CLI_EXIT_FAIL;

	if (!req)
		abort();
	rc = cli_request(req, CLIENT_TIMEOUT_MS, &result, err, sizeof(err));
	if (rc < 0) {
		report(o, rc, err);
		goto cleanup;
	}
	if (o->json) {
		if (cli_print_json(result) < 0)
			goto cleanup;
	} else {
		print(result);
	}
	status = CLI_EXIT_OK;
cleanup:
	json_decref(result);
	json_decref(req);
	return status;
}

static void print_entities(const json_t *result)
{
	size_t i;
	json_t *e;

	json_array_foreach(result, i, e) cli_print_entity(e);
}

/* Sets key in obj unless value is NULL (or, for integers, 0). */
static void set_str(json_t *obj, const char *key, const char *value)
{
	if (value && json_object_set_new(obj, key, json_string(value)) < 0)
		abort();
}

static void set_limit(json_t *obj, long limit)
{
	if (limit > 0 && json_object_set_new(obj, "limit", json_integer(limit)) < 0)
		abort();
}

static void print_status(const json_t *r)
{
	json_t *heads = json_object_get(r, "heads");
	json_t *counts = json_object_get(r, "counts");
	json_t *forks = json_object_get(r, "forks");
	const char *key;
	json_t *v;
	size_t i;

	printf("name: %s\n", cli_json_str(r, "name") ? cli_json_str(r, "name") : "?");
	printf("key: %s\n", cli_json_str(r, "key") ? cli_json_str(r, "key") : "?");
	printf("federation: %s\n",
	       cli_json_str(r, "federation") ? cli_json_str(r, "federation") : "?");
	printf("digest: %s\n", cli_json_str(r, "digest") ? cli_json_str(r, "digest") : "?");
	printf("entities: %lld\n", cli_json_int(r, "entities", 0));
	printf("changesets: %lld\n", cli_json_int(r, "changesets", 0));
	json_t *writes = json_object_get(r, "writes");
	if (json_is_object(writes)) {
		if (json_is_true(json_object_get(writes, "open")))
			printf("writes: open\n");
		else
			printf("writes: refused: %s\n", cli_json_str(writes, "reason")
			                                    ? cli_json_str(writes, "reason")
			                                    : "?");
	}
	json_t *index = json_object_get(r, "index");
	if (json_is_object(index))
		printf(
		    "search index: %lld entity writes behind%s\n", cli_json_int(index, "behind", 0),
		    json_is_true(json_object_get(index, "failing")) ? ", cannot be updated" : "");
	json_t *peers = json_object_get(r, "peers");
	if (json_is_object(peers))
		printf("peers: %lld of %lld up\n", cli_json_int(peers, "up", 0),
		       cli_json_int(peers, "total", 0));
	json_t *disk = json_object_get(r, "disk");
	if (json_is_object(disk))
		printf("disk: store %lld bytes, wal %lld, index %lld; %lld free\n",
		       cli_json_int(disk, "store_bytes", 0), cli_json_int(disk, "wal_bytes", 0),
		       cli_json_int(disk, "index_bytes", 0), cli_json_int(disk, "free_bytes", 0));
	if (cli_json_str(r, "version"))
		printf("version: %s, up %lld s\n", cli_json_str(r, "version"),
		       cli_json_int(r, "uptime_s", 0));
	printf("heads:\n");
	if (json_object_size(heads) == 0)
		printf("  (none)\n");
	json_object_foreach(heads, key, v)
	{
		const char *hash = cli_json_str(v, "hash");
		printf("  %s seq %lld hash %s\n", key, cli_json_int(v, "seq", 0),
		       hash ? hash : "?");
	}
	printf("counts:\n");
	if (json_object_size(counts) == 0)
		printf("  (none)\n");
	json_object_foreach(counts, key, v)
	    printf("  %s %lld\n", key, json_is_integer(v) ? json_integer_value(v) : 0);
	if (json_array_size(forks) > 0) {
		printf("forks:\n");
		json_array_foreach(forks, i, v)
		{
			const char *origin = cli_json_str(v, "origin");
			json_t *hashes = json_object_get(v, "hashes");
			json_t *h;
			size_t j;
			printf("  %s seq %lld:", origin ? origin : "?", cli_json_int(v, "seq", 0));
			json_array_foreach(hashes, j, h)
			    printf(" %s", json_is_string(h) ? json_string_value(h) : "?");
			putchar('\n');
		}
	}
	json_array_foreach(json_object_get(r, "splits"), i, v)
	{
		if (i == 0)
			printf("split views:\n");
		printf("  %s size %lld\n",
		       cli_json_str(v, "origin") ? cli_json_str(v, "origin") : "?",
		       cli_json_int(v, "size", 0));
	}
	if (json_is_object(json_object_get(r, "key_alarm")))
		printf("KEY ALARM: %s\n",
		       cli_json_str(json_object_get(r, "key_alarm"), "last")
		           ? cli_json_str(json_object_get(r, "key_alarm"), "last")
		           : "?");
}

/* Why a node is unhealthy, into why (empty when it is healthy). */
static void unhealthy(const json_t *r, char *why, size_t len)
{
	const json_t *writes = json_object_get(r, "writes");
	const json_t *forks = json_object_get(r, "forks");
	const json_t *index = json_object_get(r, "index");

	const json_t *alarm = json_object_get(r, "key_alarm");
	const json_t *splits = json_object_get(r, "splits");

	why[0] = '\0';
	if (json_is_object(alarm))
		snprintf(why, len, "KEY ALARM: %s (%lld times)",
		         cli_json_str(alarm, "last") ? cli_json_str(alarm, "last") : "?",
		         cli_json_int(alarm, "count", 0));
	else if (json_is_object(writes) && !json_is_true(json_object_get(writes, "open")))
		snprintf(why, len, "local writes are refused: %s",
		         cli_json_str(writes, "reason") ? cli_json_str(writes, "reason") : "?");
	else if (json_array_size(forks) > 0)
		snprintf(why, len, "a fork proof is held: %s forked at seq %lld",
		         cli_json_str(json_array_get(forks, 0), "origin")
		             ? cli_json_str(json_array_get(forks, 0), "origin")
		             : "?",
		         cli_json_int(json_array_get(forks, 0), "seq", 0));
	else if (json_array_size(splits) > 0)
		snprintf(why, len, "a split-view proof is held: %s showed two trees at size %lld",
		         cli_json_str(json_array_get(splits, 0), "origin")
		             ? cli_json_str(json_array_get(splits, 0), "origin")
		             : "?",
		         cli_json_int(json_array_get(splits, 0), "size", 0));
	else if (json_is_true(json_object_get(index, "failing")))
		snprintf(why, len, "the search index cannot be written (%lld entity writes behind)",
		         cli_json_int(index, "behind", 0));
}

int status_main(int argc, char *argv[])
{
	static const struct option options[] = {
	    {"json", no_argument, NULL, 'j'},
	    {"timeout", required_argument, NULL, 't'},
	    {NULL, 0, NULL, 0},
	};
	json_t *req, *result = NULL;
	char err[1024], why[1024], q[ERROR_QUOTE_SIZE], *end;
	int json = 0, c, status = CLI_EXIT_FAIL;
	long timeout_s = 5;

	while ((c = getopt_long(argc, argv, "", options, NULL)) != -1) {
		switch (c) {
		case 'j':
			json = 1;
			break;
		case 't':
			timeout_s = strtol(optarg, &end, 10);
			if (*end || end == optarg || timeout_s < 1 || timeout_s > 3600) {
				warnx("status: --timeout %s is not a number of seconds from 1 to "
				      "3600",
				      error_quote_str(q, sizeof(q), optarg));
				return CLI_EXIT_USAGE;
			}
			break;
		default:
			warnx("status: unknown option or missing value: %s",
			      error_quote_str(q, sizeof(q), argv[optind - 1]));
			return CLI_EXIT_USAGE;
		}
	}
	if (optind != argc) {
		warnx("status: takes no arguments");
		return CLI_EXIT_USAGE;
	}
	req = json_pack("{s:s}", "cmd", "status");
	if (!req)
		abort();
	if (cli_request(req, (int)timeout_s * 1000, &result, err, sizeof(err)) < 0) {
		warnx("%s", err);
		goto cleanup;
	}
	if (json ? cli_print_json(result) < 0 : (print_status(result), 0))
		goto cleanup;
	unhealthy(result, why, sizeof(why));
	status = CLI_EXIT_OK;
	if (why[0]) {
		warnx("status: unhealthy: %s", why);
		status = CLI_EXIT_UNHEALTHY;
	}
cleanup:
	json_decref(result);
	json_decref(req);
	return status;
}

int get_main(int argc, char *argv[])
{
	struct read_opts o;
	json_t *req, *result = NULL;
	const char *coll, *id;
	char err[512];
	int rc = parse_read_opts(argc, argv, "owner", 0, &o);
	int status = CLI_EXIT_FAIL;

	if (rc)
		return rc;
	if (optind != argc - 2) {
		warnx("get: expected COLL and ID");
		return CLI_EXIT_USAGE;
	}
	coll = argv[optind];
	id = argv[optind + 1];
	if (op_check_coll(coll, err, sizeof(err)) < 0 || op_check_id(id, err, sizeof(err)) < 0) {
		warnx("%s", err);
		return CLI_EXIT_FAIL;
	}
	req = json_pack("{s:s, s:s, s:s}", "cmd", "get", "coll", coll, "id", id);
	if (!req)
		abort();
	set_str(req, "owner", o.who);
	rc = cli_request(req, CLIENT_TIMEOUT_MS, &result, err, sizeof(err));
	if (rc < 0) {
		report(&o, rc, err);
		goto cleanup;
	}
	if (json_array_size(result) == 0) {
		char q[ERROR_QUOTE_SIZE], qo[ERROR_QUOTE_SIZE];
		error_quotef(q, sizeof(q), "%s/%s", coll, id);
		if (o.who)
			warnx("%s not found for owner %s", q,
			      error_quote_str(qo, sizeof(qo), o.who));
		else
			warnx("%s not found", q);
		goto cleanup;
	}
	/* With --owner there is at most one: print the object itself. */
	if (o.json && cli_print_json(o.who ? json_array_get(result, 0) : result) < 0)
		goto cleanup;
	if (!o.json)
		print_entities(result);
	status = CLI_EXIT_OK;
cleanup:
	json_decref(result);
	json_decref(req);
	return status;
}

int list_main(int argc, char *argv[])
{
	struct read_opts o;
	json_t *req;
	char err[512];
	int rc = parse_read_opts(argc, argv, "owner", 1, &o);

	if (rc)
		return rc;
	if (optind != argc - 1) {
		warnx("list: expected COLL");
		return CLI_EXIT_USAGE;
	}
	if (op_check_coll(argv[optind], err, sizeof(err)) < 0) {
		warnx("%s", err);
		return CLI_EXIT_FAIL;
	}
	req = json_pack("{s:s, s:s}", "cmd", "list", "coll", argv[optind]);
	if (!req)
		abort();
	set_str(req, "owner", o.who);
	set_limit(req, o.limit);
	return run_read(req, &o, print_entities);
}

int search_main(int argc, char *argv[])
{
	struct read_opts o;
	json_t *req;
	char text[4096], err[512];
	size_t len = 0;
	int rc = parse_read_opts(argc, argv, "coll", 1, &o);

	if (rc)
		return rc;
	if (optind >= argc) {
		warnx("search: expected TEXT");
		return CLI_EXIT_USAGE;
	}
	if (o.who && op_check_coll(o.who, err, sizeof(err)) < 0) {
		warnx("%s", err);
		return CLI_EXIT_FAIL;
	}
	/* The words of the query may come as separate arguments. */
	text[0] = '\0';
	for (int i = optind; i < argc; i++) {
		int n = snprintf(text + len, sizeof(text) - len, "%s%s", i > optind ? " " : "",
		                 argv[i]);
		if (n < 0 || (size_t)n >= sizeof(text) - len) {
			warnx("search: the text is longer than %zu bytes", sizeof(text) - 1);
			return CLI_EXIT_FAIL;
		}
		len += (size_t)n;
	}
	req = json_pack("{s:s, s:s}", "cmd", "search", "text", text);
	if (!req) {
		warnx("search: the text is not valid UTF-8");
		return CLI_EXIT_FAIL;
	}
	set_str(req, "coll", o.who);
	set_limit(req, o.limit);
	return run_read(req, &o, print_entities);
}

/* "2024-05-01T10:00:00.123Z" from a hybrid logical clock (ms << 16 | counter). */
static void format_hlc(long long hlc, char *out, size_t outsize)
{
	long long ms = hlc >> 16;
	time_t secs = (time_t)(ms / 1000);
	struct tm tm;
	char buf[32];

	if (hlc <= 0 || !gmtime_r(&secs, &tm) ||
	    strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%S", &tm) == 0) {
		snprintf(out, outsize, "?");
		return;
	}
	snprintf(out, outsize, "%s.%03lldZ", buf, ms % 1000);
}

static void print_log(const json_t *result)
{
	size_t i;
	json_t *e;

	json_array_foreach(result, i, e)
	{
		const char *origin = cli_json_str(e, "origin");
		const char *hash = cli_json_str(e, "hash");
		json_t *ops = json_object_get(e, "ops");
		long long n_ops = json_is_array(ops) ? (long long)json_array_size(ops)
		                                     : cli_json_int(e, "ops", 0);
		char when[48];

		format_hlc(cli_json_int(e, "hlc", 0), when, sizeof(when));
		printf("%s seq %lld  %s  %lld ops  %lld bytes  hash %s\n", origin ? origin : "?",
		       cli_json_int(e, "seq", 0), when, n_ops, cli_json_int(e, "bytes", 0),
		       hash ? hash : "?");
	}
}

int log_main(int argc, char *argv[])
{
	struct read_opts o;
	json_t *req;
	int rc = parse_read_opts(argc, argv, "origin", 1, &o);

	if (rc)
		return rc;
	if (optind != argc) {
		warnx("log: takes no arguments besides options");
		return CLI_EXIT_USAGE;
	}
	req = json_pack("{s:s}", "cmd", "log");
	if (!req)
		abort();
	set_str(req, "origin", o.who);
	set_limit(req, o.limit);
	return run_read(req, &o, print_log);
}
