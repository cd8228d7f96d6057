/*
 * The writing subcommands for one entity: put and del. Both check what they
 * send before sending it (a collection or id the daemon would refuse, JSON
 * that is not an object), send a one-op "put" request, and report the
 * changeset written, or "unchanged" when the daemon found nothing to
 * change. put then reads the entity back as this node holds it, so what is
 * printed is what was stored.
 */
#include <err.h>
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/subcommands.h"
#include "common/op_check.h"
#include "proto/error.h"

struct write_opts {
	const char *fields; /* --json */
	int json_out;       /* --output json */
};

static int parse_write_opts(int argc, char *argv[], int with_fields, struct write_opts *o)
{
	static const struct option options[] = {
	    {"output", required_argument, NULL, 'o'},
	    {"json", required_argument, NULL, 'j'},
	    {"fields", required_argument, NULL, 'j'},
	    {NULL, 0, NULL, 0},
	};
	int c;
	char q[ERROR_QUOTE_SIZE];

	memset(o, 0, sizeof(*o));
	while ((c = getopt_long(argc, argv, "o:", options, NULL)) != -1) {
		switch (c) {
		case 'o':
			if (strcmp(optarg, "json") != 0 && strcmp(optarg, "text") != 0) {
				warnx("%s: --output is json or text, not %s", argv[0],
				      error_quote_str(q, sizeof(q), optarg));
				return CLI_EXIT_USAGE;
			}
			o->json_out = !strcmp(optarg, "json");
			break;
		case 'j':
			if (with_fields) {
				o->fields = optarg;
				break;
			}
			/* del takes no fields: an unknown option for it. */
			warnx("%s: unknown option: %s", argv[0],
			      error_quote_str(q, sizeof(q), argv[optind - 1]));
			return CLI_EXIT_USAGE;
		default:
			warnx("%s: unknown option or missing value: %s", argv[0],
			      error_quote_str(q, sizeof(q), argv[optind - 1]));
			return CLI_EXIT_USAGE;
		}
	}
	if (optind != argc - 2) {
		warnx("%s: expected COLL and ID", argv[0]);
		return CLI_EXIT_USAGE;
	}
	if (with_fields && !o->fields) {
		warnx("%s: --json FIELDS is required", argv[0]);
		return CLI_EXIT_USAGE;
	}
	return 0;
}

/*
 * Connects and sends a put request holding the one op; *seq gets the
 * changeset written (0: none). Says what failed and returns -1.
 */
static int write_op(json_t *op, struct config **cfg, struct client **client, long long *seq)
{
	json_t *req = json_pack("{s:s, s:[O]}", "cmd", "put", "ops", op);
	json_t *result = NULL;
	char err[PATH_MAX + 256];
	int rc;

	if (!req)
		abort();
	rc = cli_connect(cfg, client, err, sizeof(err));
	if (rc == 0)
		rc = client_call(*client, req, CLIENT_TIMEOUT_MS, &result, NULL, err, sizeof(err));
	if (rc == 0)
		*seq = cli_json_int(result, "seq", 0);
	else
		warnx("%s", err);
	json_decref(result);
	json_decref(req);
	return rc == 0 ? 0 : -1;
}

int put_main(int argc, char *argv[])
{
	struct write_opts o;
	struct config *cfg = NULL;
	struct client *client = NULL;
	json_t *fields = NULL, *op = NULL, *req = NULL, *got = NULL, *entity, *out = NULL;
	json_error_t jerr;
	const char *coll, *id;
	char err[PATH_MAX + 256];
	long long seq = 0;
	int rc = parse_write_opts(argc, argv, 1, &o);
	int status = CLI_EXIT_FAIL;

	if (rc)
		return rc;
	coll = argv[optind];
	id = argv[optind + 1];
	if (op_check_coll(coll, err, sizeof(err)) < 0 || op_check_id(id, err, sizeof(err)) < 0) {
		warnx("%s", err);
		goto cleanup;
	}
	fields = json_loads(o.fields, JSON_REJECT_DUPLICATES | JSON_DECODE_ANY, &jerr);
	if (!fields) {
		warnx("--json: invalid JSON at column %d: %s", jerr.column, jerr.text);
		goto cleanup;
	}
	if (op_check_fields(fields, err, sizeof(err)) < 0) {
		warnx("--json: %s", err);
		goto cleanup;
	}
	op = json_pack("{s:s, s:s, s:O}", "coll", coll, "id", id, "fields", fields);
	if (!op)
		abort();

	if (write_op(op, &cfg, &client, &seq) != 0)
		goto cleanup;
	/* Read back this node's version: what the changeset made of the entity. */
	req = json_pack("{s:s, s:s, s:s, s:s}", "cmd", "get", "coll", coll, "id", id, "owner",
	                cfg->name);
	if (!req)
		abort();
	if (client_call(client, req, CLIENT_TIMEOUT_MS, &got, NULL, err, sizeof(err)) < 0) {
		warnx("written (seq %lld), but reading it back failed: %s", seq, err);
		goto cleanup;
	}
	entity = json_array_get(got, 0);
	if (o.json_out) {
		out = json_pack("{s:I, s:O?}", "seq", (json_int_t)seq, "entity", entity);
		if (!out)
			abort();
		if (cli_print_json(out) < 0)
			goto cleanup;
	} else {
		if (entity)
			cli_print_entity(entity);
		if (seq)
			printf("seq %lld\n", seq);
		else
			printf("unchanged\n");
	}
	status = CLI_EXIT_OK;
cleanup:
	json_decref(out);
	json_decref(got);
	json_decref(req);
	json_decref(op);
	json_decref(fields);
	client_free(client);
	config_free(cfg);
	return status;
}

int del_main(int argc, char *argv[])
{
	struct write_opts o;
	struct config *cfg = NULL;
	struct client *client = NULL;
	json_t *op = NULL, *out = NULL;
	const char *coll, *id;
	char err[PATH_MAX + 256];
	long long seq = 0;
	int rc = parse_write_opts(argc, argv, 0, &o);
	int status = CLI_EXIT_FAIL;

	if (rc)
		return rc;
	coll = argv[optind];
	id = argv[optind + 1];
	if (op_check_coll(coll, err, sizeof(err)) < 0 || op_check_id(id, err, sizeof(err)) < 0) {
		warnx("%s", err);
		goto cleanup;
	}
	op = json_pack("{s:s, s:s, s:b}", "coll", coll, "id", id, "del", 1);
	if (!op)
		abort();
	if (write_op(op, &cfg, &client, &seq) != 0)
		goto cleanup;
	if (o.json_out) {
		out = json_pack("{s:I}", "seq", (json_int_t)seq);
		if (!out)
			abort();
		if (cli_print_json(out) < 0)
			goto cleanup;
	} else if (seq) {
		printf("deleted %s/%s/%s\nseq %lld\n", coll, cfg->name, id, seq);
	} else {
		printf("unchanged\n");
	}
	status = CLI_EXIT_OK;
cleanup:
	json_decref(out);
	json_decref(op);
	client_free(client);
	config_free(cfg);
	return status;
}
