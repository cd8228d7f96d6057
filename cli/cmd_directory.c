/*
 * The directory and the broker: loket show (one entity with its links
 * followed), loket experts (who knows what, across every institution) and
 * loket match (what the federation holds for a question). Each builds one
 * control request (proto/CONTROL.md) and prints the daemon's JSON with
 * --json, or a form meant for people.
 */
#include <err.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/subcommands.h"
#include "common/op_check.h"
#include "proto/error.h"
#include "proto/limits.h"

/* The options these commands take: --json, --limit, and experts' --topic and --org. */
struct dir_opts {
	int json;
	long limit;
	const char *topic;
	const char *org;
};

/* A REF of two or three parts split at '/': COLL/OWNER/ID or OWNER/ID. */
struct ref {
	char coll[LOKET_MAX_COLL_LEN + 1];
	char owner[LOKET_MAX_NAME_LEN + 1];
	char id[LOKET_MAX_ID_LEN + 1];
};

static int valid_utf8(const char *s)
{
	json_t *v = json_string(s);

	json_decref(v);
	return v != NULL;
}

/*
 * Parses options; with_filters allows --topic and --org. Returns 0, or the
 * usage exit status after saying what is wrong.
 */
static int parse_opts(int argc, char *argv[], int with_filters, int with_limit, struct dir_opts *o)
{
	struct option options[5];
	size_t n = 0;
	char err[256], q[ERROR_QUOTE_SIZE];
	int c;

	memset(o, 0, sizeof(*o));
	memset(options, 0, sizeof(options));
	options[n++] = (struct option){"json", no_argument, NULL, 'j'};
	if (with_limit)
		options[n++] = (struct option){"limit", required_argument, NULL, 'n'};
	if (with_filters) {
		options[n++] = (struct option){"topic", required_argument, NULL, 't'};
		options[n++] = (struct option){"org", required_argument, NULL, 'o'};
	}
	while ((c = getopt_long(argc, argv, "", options, NULL)) != -1) {
		switch (c) {
		case 'j':
			o->json = 1;
			break;
		case 'n':
			if (cli_parse_limit(optarg, &o->limit, err, sizeof(err)) < 0) {
				warnx("%s: %s", argv[0], err);
				return CLI_EXIT_USAGE;
			}
			break;
		case 't':
		case 'o':
			if (!optarg[0] || !valid_utf8(optarg)) {
				warnx("%s: --%s must be non-empty UTF-8 text", argv[0],
				      c == 't' ? "topic" : "org");
				return CLI_EXIT_USAGE;
			}
			*(c == 't' ? &o->topic : &o->org) = optarg;
			break;
		default:
			warnx("%s: unknown option or missing value: %s", argv[0],
			      error_quote_str(q, sizeof(q), argv[optind - 1]));
			return CLI_EXIT_USAGE;
		}
	}
	return 0;
}

/* Copies the part [p, p+len) into buf of size cap; 0 if it does not fit or is empty. */
static int take_part(char *buf, size_t cap, const char *p, size_t len)
{
	if (len == 0 || len >= cap)
		return 0;
	memcpy(buf, p, len);
	buf[len] = '\0';
	return 1;
}

/*
 * Splits s into a reference. parts is 3 for COLL/OWNER/ID; for 2 (match) a
 * leading "question/" may also be given. Fails with a sentence quoting s.
 */
static int parse_ref(const char *s, int parts, struct ref *r, char *err, size_t errlen)
{
	const char *a = strchr(s, '/'), *b = a ? strchr(a + 1, '/') : NULL;
	int ok;

	memset(r, 0, sizeof(*r));
	if (parts == 2 && b && (size_t)(a - s) == strlen("question") &&
	    !strncmp(s, "question", 8)) {
		s = a + 1;
		a = b;
		b = strchr(a + 1, '/');
	}
	if (parts == 3)
		ok = a && b && !strchr(b + 1, '/') &&
		     take_part(r->coll, sizeof(r->coll), s, (size_t)(a - s)) &&
		     take_part(r->owner, sizeof(r->owner), a + 1, (size_t)(b - a - 1)) &&
		     take_part(r->id, sizeof(r->id), b + 1, strlen(b + 1));
	else
		ok = a && !b && take_part(r->owner, sizeof(r->owner), s, (size_t)(a - s)) &&
		     take_part(r->id, sizeof(r->id), a + 1, strlen(a + 1));
	if (!ok) {
		char q[ERROR_QUOTE_SIZE];
		snprintf(err, errlen, "%s is not a reference %s", error_quote_str(q, sizeof(q), s),
		         parts == 3 ? "COLL/OWNER/ID, like expert/universiteit/ineke-brandsma"
		                    : "OWNER/ID, like gemeente/eenzaamheid-merenwijk");
		return -1;
	}
	if ((parts == 3 && op_check_coll(r->coll, err, errlen) < 0) ||
	    op_check_id(r->id, err, errlen) < 0)
		return -1;
	return 0;
}

/* A string field of an entity, or NULL. */
static const char *field(const json_t *e, const char *key)
{
	return cli_json_str(json_object_get(e, "fields"), key);
}

/* Prints a JSON array of strings as "a, b, c". */
static void print_list(const json_t *arr)
{
	const json_t *v;
	size_t i;

	json_array_foreach(arr, i, v)
	{
		char *s = json_is_string(v) ? NULL : json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);

		printf("%s%s", i ? ", " : "",
		       json_is_string(v) ? json_string_value(v)
		       : s               ? s
		                         : "?");
		free(s);
	}
}

/* One linked entity on one line: its display form and its name or title; a string as is. */
static void print_link(const char *indent, const json_t *v)
{
	const char *label;

	if (!json_is_object(v)) {
		printf("%s%s (not held here)\n", indent,
		       json_is_string(v) ? json_string_value(v) : "?");
		return;
	}
	label = field(v, "name");
	if (!label)
		label = field(v, "title");
	printf("%s%s/%s/%s", indent, cli_json_str(v, "coll"), cli_json_str(v, "owner"),
	       cli_json_str(v, "id"));
	if (label)
		printf("  %s", label);
	if (!strcmp(cli_json_str(v, "coll") ? cli_json_str(v, "coll") : "", "response")) {
		const char *kind = field(v, "kind"), *status = field(v, "status");
		const char *team = field(v, "team"), *text = field(v, "text");

		printf("  %s, %s", kind ? kind : "?", status ? status : "offered");
		if (team)
			printf(", team %s", team);
		if (text)
			printf("\n%s    %s", indent, text);
	}
	putchar('\n');
}

/* Prints one kind of link: a single entity or string, or an array of them. */
static void print_links_of(const char *key, const json_t *v)
{
	const json_t *e;
	size_t i;

	if (!json_is_array(v)) {
		printf("%s:\n", key);
		print_link("  ", v);
		return;
	}
	printf("%s (%zu):\n", key, json_array_size(v));
	if (json_array_size(v) == 0)
		printf("  (none)\n");
	json_array_foreach(v, i, e) print_link("  ", e);
}

static void print_show(const json_t *result)
{
	const json_t *links = json_object_get(result, "links"), *v;
	const char *key;

	cli_print_entity(result);
	json_object_foreach((json_t *)links, key, v) print_links_of(key, v);
}

int show_main(int argc, char *argv[])
{
	struct dir_opts o;
	struct ref r;
	char err[256];
	int rc = parse_opts(argc, argv, 0, 0, &o);

	if (rc)
		return rc;
	if (optind != argc - 1) {
		warnx("show: expected one reference COLL/OWNER/ID");
		return CLI_EXIT_USAGE;
	}
	if (parse_ref(argv[optind], 3, &r, err, sizeof(err)) < 0) {
		warnx("show: %s", err);
		return CLI_EXIT_USAGE;
	}
	return cli_request_print_take(CLIENT_TIMEOUT_MS,
	                              json_pack("{s:s, s:s, s:s, s:s}", "cmd", "show", "coll",
	                                        r.coll, "owner", r.owner, "id", r.id),
	                              o.json, print_show);
}

static void print_experts(const json_t *result)
{
	const json_t *e;
	size_t i;

	if (json_array_size(result) == 0)
		printf("(no experts found)\n");
	json_array_foreach(result, i, e)
	{
		const char *name = field(e, "name"), *title = field(e, "title");
		const char *org = cli_json_str(e, "org_name");
		const json_t *topics = json_object_get(json_object_get(e, "fields"), "topics");

		printf("expert/%s/%s  %s\n", cli_json_str(e, "owner"), cli_json_str(e, "id"),
		       name ? name : "");
		if (title || org)
			printf("  %s%s%s\n", title ? title : "", title && org ? ", " : "",
			       org ? org : "");
		if (json_array_size(topics)) {
			printf("  topics: ");
			print_list(topics);
			putchar('\n');
		}
	}
}

int experts_main(int argc, char *argv[])
{
	struct dir_opts o;
	json_t *req;
	int rc = parse_opts(argc, argv, 1, 1, &o);

	if (rc)
		return rc;
	if (optind != argc) {
		warnx("experts: takes no arguments besides options");
		return CLI_EXIT_USAGE;
	}
	req = json_pack("{s:s}", "cmd", "experts");
	if (!req)
		abort();
	if (o.topic)
		json_object_set_new(req, "topic", json_string(o.topic));
	if (o.org)
		json_object_set_new(req, "org", json_string(o.org));
	if (o.limit > 0)
		json_object_set_new(req, "limit", json_integer(o.limit));
	return cli_request_print_take(CLIENT_TIMEOUT_MS, req, o.json, print_experts);
}

static void print_match(const json_t *result)
{
	const json_t *m;
	size_t i;

	if (json_array_size(result) == 0)
		printf("(nothing in the directory matches this question)\n");
	json_array_foreach(result, i, m)
	{
		const json_t *name = json_object_get(m, "name");
		const json_t *shared = json_object_get(m, "shared_topics");
		const json_t *terms = json_object_get(m, "matched_terms");

		printf("%2zu. %s/%s/%s  %s  (score %.2f)\n", i + 1, cli_json_str(m, "coll"),
		       cli_json_str(m, "owner"), cli_json_str(m, "id"),
		       json_is_string(name) ? json_string_value(name) : "",
		       json_number_value(json_object_get(m, "score")));
		if (json_array_size(shared)) {
			printf("    shared topics: ");
			print_list(shared);
			putchar('\n');
		}
		if (json_array_size(terms)) {
			printf("    matched terms: ");
			print_list(terms);
			putchar('\n');
		}
	}
}

int match_main(int argc, char *argv[])
{
	struct dir_opts o;
	struct ref r;
	json_t *req;
	char err[256];
	int rc = parse_opts(argc, argv, 0, 1, &o);

	if (rc)
		return rc;
	if (optind != argc - 1) {
		warnx("match: expected one question reference OWNER/ID");
		return CLI_EXIT_USAGE;
	}
	if (parse_ref(argv[optind], 2, &r, err, sizeof(err)) < 0) {
		warnx("match: %s", err);
		return CLI_EXIT_USAGE;
	}
	req = json_pack("{s:s, s:s, s:s}", "cmd", "match", "owner", r.owner, "id", r.id);
	if (!req)
		abort();
	if (o.limit > 0)
		json_object_set_new(req, "limit", json_integer(o.limit));
	return cli_request_print_take(CLIENT_TIMEOUT_MS, req, o.json, print_match);
}
