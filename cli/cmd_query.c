/*
 * loket query: read-only SQL for administrators against the views the
 * daemon documents (one per collection; README.md lists them). The daemon
 * refuses anything but one read statement and bounds rows and time; this
 * file only sends the text and prints the answer: an aligned table for
 * people (long cells cut, NULL left empty), or with --json an array of
 * objects, one per row, keys in column order.
 */
#include <err.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/subcommands.h"
#include "proto/error.h"

#define CELL_MAX 60 /* characters of a cell shown in the table */

/* The number of characters (not bytes) of UTF-8 text. */
static size_t width_of(const char *s)
{
	size_t n = 0;

	for (; *s; s++)
		n += ((unsigned char)*s & 0xc0) != 0x80;
	return n;
}

/*
 * A cell as text for the table: strings as they are, other values as
 * compact JSON, null as nothing; line breaks become spaces and text past
 * CELL_MAX characters is cut with "...". Returns a new malloc'd string.
 */
static char *cell_text(const json_t *v)
{
	char *s;
	size_t chars = 0, i;

	if (json_is_null(v) || !v)
		s = strdup("");
	else if (json_is_string(v))
		s = strdup(json_string_value(v));
	else
		s = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
	if (!s)
		abort();
	for (i = 0; s[i]; i++) {
		if (s[i] == '\n' || s[i] == '\r' || s[i] == '\t')
			s[i] = ' ';
		if (((unsigned char)s[i] & 0xc0) != 0x80 && ++chars > CELL_MAX) {
			s[i] = '\0';
			break;
		}
	}
	if (chars > CELL_MAX) {
		char *cut = malloc(i + 4);

		if (!cut)
			abort();
		memcpy(cut, s, i);
		memcpy(cut + i, "...", 4);
		free(s);
		s = cut;
	}
	return s;
}

static void print_padded(const char *s, size_t width, int last)
{
	fputs(s, stdout);
	if (last)
		return;
	for (size_t w = width_of(s); w < width + 2; w++)
		putchar(' ');
}

static void print_table(const json_t *cols, const json_t *rows)
{
	size_t n_cols = json_array_size(cols), n_rows = json_array_size(rows);
	size_t *width = calloc(n_cols ? n_cols : 1, sizeof(*width));
	char **cells = calloc(n_cols * n_rows + 1, sizeof(*cells));
	size_t r, c;

	if (!width || !cells)
		abort();
	for (c = 0; c < n_cols; c++)
		width[c] = width_of(json_string_value(json_array_get(cols, c)));
	for (r = 0; r < n_rows; r++) {
		for (c = 0; c < n_cols; c++) {
			char *s = cell_text(json_array_get(json_array_get(rows, r), c));
			size_t w = width_of(s);

			cells[r * n_cols + c] = s;
			if (w > width[c])
				width[c] = w;
		}
	}
	for (c = 0; c < n_cols; c++)
		print_padded(json_string_value(json_array_get(cols, c)), width[c], c + 1 == n_cols);
	putchar('\n');
	for (c = 0; c < n_cols; c++) {
		for (size_t w = 0; w < width[c]; w++)
			putchar('-');
		if (c + 1 < n_cols)
			fputs("  ", stdout);
	}
	putchar('\n');
	for (r = 0; r < n_rows; r++) {
		for (c = 0; c < n_cols; c++)
			print_padded(cells[r * n_cols + c], width[c], c + 1 == n_cols);
		putchar('\n');
	}
	printf("(%zu row%s)\n", n_rows, n_rows == 1 ? "" : "s");
	for (r = 0; r < n_cols * n_rows; r++)
		free(cells[r]);
	free(cells);
	free(width);
}

/* The rows as objects keyed by column name, in column order. */
static json_t *rows_as_objects(const json_t *cols, const json_t *rows)
{
	json_t *arr = json_array(), *row;
	size_t r, c;

	json_array_foreach(rows, r, row)
	{
		json_t *obj = json_object();

		for (c = 0; c < json_array_size(cols); c++)
			json_object_set(obj, json_string_value(json_array_get(cols, c)),
			                json_array_get(row, c));
		json_array_append_new(arr, obj);
	}
	return arr;
}

int query_main(int argc, char *argv[])
{
	static const struct option options[] = {
	    {"json", no_argument, NULL, 'j'},
	    {NULL, 0, NULL, 0},
	};
	json_t *req = NULL, *result = NULL, *cols, *rows;
	char err[512], q[ERROR_QUOTE_SIZE];
	int c, json = 0, status = CLI_EXIT_FAIL;

	while ((c = getopt_long(argc, argv, "", options, NULL)) != -1) {
		if (c != 'j') {
			warnx("query: unknown option or missing value: %s",
			      error_quote_str(q, sizeof(q), argv[optind - 1]));
			return CLI_EXIT_USAGE;
		}
		json = 1;
	}
	if (optind != argc - 1) {
		warnx("query: expected one SQL text in quotes, like \"SELECT name FROM expert\"");
		return CLI_EXIT_USAGE;
	}
	req = json_pack("{s:s, s:s}", "cmd", "query", "sql", argv[optind]);
	if (!req) {
		warnx("query: the SQL text is not valid UTF-8");
		return CLI_EXIT_FAIL;
	}
	if (cli_request(req, CLIENT_TIMEOUT_MS, &result, err, sizeof(err)) < 0) {
		warnx("query: %s", err);
		goto cleanup;
	}
	cols = json_object_get(result, "columns");
	rows = json_object_get(result, "rows");
	if (!json_is_array(cols) || !json_is_array(rows)) {
		warnx("query: the daemon's answer has no columns and rows");
		goto cleanup;
	}
	if (json) {
		json_t *objs = rows_as_objects(cols, rows);
		int rc = cli_print_json(objs);

		json_decref(objs);
		if (rc < 0)
			goto cleanup;
	} else {
		print_table(cols, rows);
	}
	if (json_is_true(json_object_get(result, "truncated")))
		warnx("query: stopped after %zu row%s; add a LIMIT or narrow the query down",
		      json_array_size(rows), json_array_size(rows) == 1 ? "" : "s");
	status = CLI_EXIT_OK;
cleanup:
	json_decref(result);
	json_decref(req);
	return status;
}
