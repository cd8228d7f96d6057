/*
 * loket import: applies a JSON Lines file, one op per line, through the
 * daemon's "put" command, in batches of at most IMPORT_BATCH_OPS ops or
 * IMPORT_BATCH_BYTES of encoded ops. Memory stays constant whatever the
 * file's size: one line buffer and one batch.
 *
 * Import is idempotent because the daemon skips ops that change nothing, so
 * the way to finish an interrupted or failed import is to run it again.
 * What this file must get right is telling the user exactly how far it
 * got: a bad line is reported only after every valid line before it has
 * been sent, so that "applied lines 1-L" is true; a batch the daemon
 * refuses was applied not at all (a put is atomic), and the error names
 * the line of the op it refused.
 *
 * One batch is in flight while the next is read and checked, so the file
 * is parsed while the daemon signs and stores; never more than one, so
 * that what was applied is still exactly the lines before the first batch
 * that failed.
 */
#include <err.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli.h"
#include "cli/subcommands.h"
#include "proto/error.h"
#include "proto/limits.h"
#include "proto/value.h"

#define IMPORT_LINE_MAX    (1024u * 1024u) /* bytes of one line, newline excluded */
#define IMPORT_BATCH_OPS   4000u
#define IMPORT_BATCH_BYTES (1536u * 1024u) /* encoded ops per request, under the message limit */
#define IMPORT_OP_DEPTH    16u             /* nesting the control protocol allows */

struct import {
	const char *name; /* the file as messages name it */
	FILE *f;
	struct client *client;
	char *line; /* IMPORT_LINE_MAX + 1 bytes */
	msgpack_sbuffer scratch;
	unsigned long long lineno; /* lines read so far */

	json_t *ops; /* the batch being filled */
	unsigned long long op_line[IMPORT_BATCH_OPS];
	size_t batch_bytes;

	/* The batch sent and not yet answered, by the lines of its ops. */
	int in_flight;
	size_t sent_n;
	unsigned long long sent_line[IMPORT_BATCH_OPS];

	unsigned long long changed, unchanged, changesets;
	int progress; /* stderr is a terminal: show a progress line */
};

/*
 * Reads one line into buf without its newline (and without a '\r' before
 * it). Returns 1, 0 at the end of the file, -E2BIG for a line longer than
 * cap - 1 bytes, or -EIO.
 */
static int read_line(FILE *f, char *buf, size_t cap, size_t *len)
{
	size_t n = 0;
	int ch;

	while ((ch = getc_unlocked(f)) != EOF && ch != '\n') {
		if (n + 1 >= cap)
			return -E2BIG;
		buf[n++] = (char)ch;
	}
	if (ferror(f))
		return -EIO;
	if (ch == EOF && n == 0)
		return 0;
	if (n > 0 && buf[n - 1] == '\r')
		n--;
	buf[n] = '\0';
	*len = n;
	return 1;
}

static int blank(const char *s, size_t len)
{
	for (size_t i = 0; i < len; i++)
		if (s[i] != ' ' && s[i] != '\t')
			return 0;
	return 1;
}

static void clear_progress(const struct import *im)
{
	if (im->progress)
		fputs("\r\033[K", stderr);
}

static void show_progress(const struct import *im)
{
	if (im->progress)
		fprintf(stderr, "\r%s: %llu lines, %llu changed, %llu unchanged", im->name,
		        im->lineno, im->changed, im->unchanged);
}

/* "applied lines 1-L (C changed, U unchanged)", or "nothing applied". */
static void applied(const struct import *im, unsigned long long last, char *out, size_t outsize)
{
	if (last == 0)
		snprintf(out, outsize, "nothing applied");
	else
		snprintf(out, outsize, "applied lines 1-%llu (%llu changed, %llu unchanged)", last,
		         im->changed, im->unchanged);
}

/*
 * Waits for the reply to the batch in flight. On failure says what went
 * wrong and how far the import got, and returns -1.
 */
static int complete(struct import *im)
{
	json_t *result = NULL;
	char err[512], done[128];
	long index = -1;

	if (!im->in_flight)
		return 0;
	im->in_flight = 0;
	size_t n = im->sent_n;
	unsigned long long first = im->sent_line[0], last = im->sent_line[n - 1];
	int rc =
	    client_receive(im->client, CLIENT_TIMEOUT_LONG_MS, &result, &index, err, sizeof(err));
	if (rc == 0) {
		long long seq = cli_json_int(result, "seq", 0);
		im->changed += (unsigned long long)cli_json_int(result, "changed", 0);
		im->unchanged += (unsigned long long)cli_json_int(result, "unchanged", 0);
		if (seq != 0)
			im->changesets++;
		json_decref(result);
		show_progress(im);
		return 0;
	}

	clear_progress(im);
	applied(im, first - 1, done, sizeof(done));
	if (rc == LOKET_E_UNAVAILABLE) {
		/* The request may have reached the daemon and been applied. */
		warnx("%s: %s", im->name, err);
		warnx("%s; lines %llu-%llu may or may not have been applied; run the import "
		      "again to complete the rest",
		      done, first, last);
	} else if (index >= 0 && (size_t)index < n) {
		warnx("%s:%llu: %s", im->name, im->sent_line[index], err);
		warnx("%s, none of lines %llu-%llu; fix line %llu and run the import again to "
		      "complete the rest",
		      done, first, last, im->sent_line[index]);
	} else {
		warnx("%s: lines %llu-%llu: %s", im->name, first, last, err);
		warnx("%s, none of lines %llu-%llu; run the import again to complete the rest",
		      done, first, last);
	}
	return -1;
}

/*
 * Sends the batch being filled, once the one before it was answered.
 * Returns -1 when that earlier batch or this send failed.
 */
static int send_batch(struct import *im)
{
	size_t n = json_array_size(im->ops);
	char err[512], done[128];

	if (complete(im) < 0)
		return -1;
	if (n == 0)
		return 0;
	json_t *req = json_pack("{s:s, s:O}", "cmd", "put", "ops", im->ops);
	if (!req)
		abort();
	int rc = client_send(im->client, req, err, sizeof(err));
	json_decref(req);
	if (rc != 0) {
		clear_progress(im);
		applied(im, im->op_line[0] - 1, done, sizeof(done));
		warnx("%s: %s", im->name, err);
		warnx("%s; run the import again to complete the rest", done);
		return -1;
	}
	memcpy(im->sent_line, im->op_line, n * sizeof(im->op_line[0]));
	im->sent_n = n;
	im->in_flight = 1;
	json_array_clear(im->ops);
	im->batch_bytes = 0;
	return 0;
}

/* Sends what is left and waits for every reply. */
static int flush(struct import *im)
{
	if (send_batch(im) < 0)
		return -1;
	return complete(im);
}

/*
 * A line that cannot be imported: send what came before it, then report it.
 * Returns -1.
 */
static int bad_line(struct import *im, const char *reason)
{
	char done[128];

	if (flush(im) < 0)
		return -1; /* an earlier batch failed: that is the error to fix first */
	clear_progress(im);
	applied(im, im->lineno - 1, done, sizeof(done));
	warnx("%s:%llu: %s", im->name, im->lineno, reason);
	warnx("%s; fix line %llu and run the import again to complete the rest", done, im->lineno);
	return -1;
}

/* Checks one line and adds its op to the batch, sending the batch first when full. */
static int add_line(struct import *im, const char *line, size_t len)
{
	json_error_t jerr;
	json_t *op;
	msgpack_packer pk;
	char err[256];
	size_t size;

	op = json_loadb(line, len, JSON_REJECT_DUPLICATES, &jerr);
	if (!op) {
		snprintf(err, sizeof(err), "invalid JSON at column %d: %s", jerr.column, jerr.text);
		return bad_line(im, err);
	}
	if (cli_check_op(op, err, sizeof(err)) < 0) {
		json_decref(op);
		return bad_line(im, err);
	}
	/* Its encoded size decides when the batch is full. */
	msgpack_sbuffer_clear(&im->scratch);
	msgpack_packer_init(&pk, &im->scratch, msgpack_sbuffer_write);
	if (value_pack_json(&pk, op, IMPORT_OP_DEPTH, err, sizeof(err)) < 0) {
		json_decref(op);
		return bad_line(im, err);
	}
	size = im->scratch.size;
	if (size > LOKET_MAX_CHANGESET_BYTES) {
		json_decref(op);
		snprintf(err, sizeof(err),
		         "the op is %zu bytes encoded, more than the %u a changeset holds", size,
		         LOKET_MAX_CHANGESET_BYTES);
		return bad_line(im, err);
	}
	if (json_array_size(im->ops) == IMPORT_BATCH_OPS ||
	    (json_array_size(im->ops) > 0 && im->batch_bytes + size > IMPORT_BATCH_BYTES)) {
		if (send_batch(im) < 0) {
			json_decref(op);
			return -1;
		}
	}
	im->op_line[json_array_size(im->ops)] = im->lineno;
	if (json_array_append_new(im->ops, op) < 0)
		abort();
	im->batch_bytes += size;
	return 0;
}

static int run(struct import *im)
{
	const char *line;
	size_t len;
	int rc;

	for (;;) {
		rc = read_line(im->f, im->line, IMPORT_LINE_MAX + 1, &len);
		if (rc == 0)
			break;
		im->lineno++;
		if (rc == -E2BIG)
			return bad_line(im, "line is longer than 1 MiB");
		if (rc < 0) {
			char reason[128];
			snprintf(reason, sizeof(reason), "read error: %s", strerror(errno));
			return bad_line(im, reason);
		}
		line = im->line;
		/* Editors on some systems start a UTF-8 file with a byte order mark. */
		if (im->lineno == 1 && len >= 3 && !memcmp(line, "\xef\xbb\xbf", 3)) {
			line += 3;
			len -= 3;
		}
		if (blank(line, len))
			continue;
		if (add_line(im, line, len) < 0)
			return -1;
	}
	return flush(im);
}

int import_main(int argc, char *argv[])
{
	struct import *im = NULL;
	struct config *cfg = NULL;
	char err[PATH_MAX + 256];
	int status = CLI_EXIT_FAIL;

	if (argc != 2) {
		warnx("import: expected one FILE, or - for standard input");
		return CLI_EXIT_USAGE;
	}
	im = calloc(1, sizeof(*im));
	if (!im)
		abort();
	msgpack_sbuffer_init(&im->scratch);
	im->ops = json_array();
	im->line = malloc(IMPORT_LINE_MAX + 1);
	if (!im->ops || !im->line)
		abort();
	if (!strcmp(argv[1], "-")) {
		im->name = "stdin";
		im->f = stdin;
	} else {
		im->name = argv[1];
		im->f = fopen(argv[1], "r");
		if (!im->f) {
			warnx("cannot open %s: %s", argv[1], strerror(errno));
			goto cleanup;
		}
	}
	if (cli_connect(&cfg, &im->client, err, sizeof(err)) < 0) {
		warnx("%s", err);
		goto cleanup;
	}
	im->progress = isatty(STDERR_FILENO);

	if (run(im) < 0)
		goto cleanup;
	clear_progress(im);
	printf("%s: %llu lines, %llu changed, %llu unchanged, %llu changesets\n", im->name,
	       im->lineno, im->changed, im->unchanged, im->changesets);
	status = CLI_EXIT_OK;
cleanup:
	if (im->f && im->f != stdin)
		fclose(im->f);
	client_free(im->client);
	config_free(cfg);
	json_decref(im->ops);
	msgpack_sbuffer_destroy(&im->scratch);
	free(im->line);
	free(im);
	return status;
}
