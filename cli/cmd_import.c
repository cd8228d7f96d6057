/*
 * loket import: applies a JSON Lines file, one op per line, through the
 * daemon's "put" command, in batches of at most IMPORT_BATCH_OPS ops or
 * IMPORT_BATCH_BYTES of encoded ops. Memory stays constant whatever the
 * file's size: one input buffer and one batch.
 *
 * Import is idempotent because the daemon skips ops that change nothing, so
 * the way to finish an interrupted or failed import is to run it again.
 * What this file must get right is telling the user exactly how far it
 * got: a bad line is reported only after every valid line before it has
 * been sent, so that "applied lines 1-L" is true; a batch the daemon
 * refuses was applied not at all (a put is atomic), and the error names
 * the line of the op it refused.
 *
 * Two batches are in flight while the next is read and checked, so the
 * file is parsed while the daemon signs and stores, and the daemon finds
 * the next batch already arrived when it finishes one. Moving 1.75 MiB
 * through the socket takes a few milliseconds that would otherwise be the
 * daemon's idle time. The price is in the report of a failure: the batch
 * behind a refused one may have been applied. Its reply is awaited too,
 * and the report names exactly the lines applied, which may be two
 * ranges.
 *
 * The import is CPU-bound on the CLI side unless each line is cheap, so a
 * line is converted by jsonmp straight into the batch's msgpack bytes, and
 * the batch is sent as those bytes behind a put header written by hand:
 * no JSON tree, nothing packed twice. Only a line that jsonmp refuses or
 * that is not an op of the common form (which is every valid op) goes the
 * slow way, through jansson and cli_check_op, which say what is wrong.
 *
 * On a terminal, a progress line is redrawn as each batch is answered:
 * lines done, changed, the rate since the start and, when the input is a
 * file of known size (also one redirected to stdin), the percentage done
 * and the time left at that rate. Done means answered: a batch counts up
 * to the input byte where it ended once the daemon has applied it.
 */
#include <err.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cli/cli.h"
#include "cli/subcommands.h"
#include "common/op_check.h"
#include "proto/changeset.h"
#include "proto/error.h"
#include "proto/jsonmp.h"
#include "proto/limits.h"
#include "proto/mpread.h"
#include "proto/value.h"

#define IMPORT_LINE_MAX    (1024u * 1024u) /* bytes of one line, newline excluded */
#define IMPORT_READ_CHUNK  (256u * 1024u)  /* bytes read at a time */
#define IMPORT_BATCH_OPS   8000u
#define IMPORT_BATCH_BYTES (1792u * 1024u) /* encoded ops per request, under the message limit */
#define IMPORT_IN_FLIGHT   2u              /* batches sent and not yet answered */
/*
 * Nesting of one op: the request wraps it in a map and an array, and the
 * whole request must stay within the control protocol's depth.
 */
#define IMPORT_OP_DEPTH (LOKET_MAX_MESSAGE_DEPTH - 2u)

/*
 * A batch request as value_encode_message would encode {"cmd":"put","ops":[...]}
 * (keys sorted): these bytes, then the array header, then the ops.
 */
static const uint8_t put_prefix[] = {0x82, 0xa3, 'c',  'm', 'd', 0xa3, 'p',
                                     'u',  't',  0xa3, 'o', 'p', 's'};
#define IMPORT_PUT_HEAD (sizeof(put_prefix) + 3u) /* the prefix and an array16 header */

_Static_assert(IMPORT_BATCH_OPS <= 0xffff, "a batch's array header is an array16 at most");

struct import {
	const char *name; /* the file as messages name it */
	int fd;
	int own_fd; /* opened here, closed here */
	struct client *client;
	/* Read and not yet taken: in[in_start, in_end). */
	char *in; /* IMPORT_LINE_MAX + 1 + IMPORT_READ_CHUNK bytes */
	size_t in_start, in_end;
	int in_eof;
	unsigned long long lineno; /* lines read so far */

	struct jsonmp *jsonmp;
	/*
	 * The batch being filled: IMPORT_PUT_HEAD bytes of room for the
	 * request header, then batch_bytes of encoded ops; while add_line
	 * works, the op being added follows them.
	 */
	msgpack_sbuffer batch;
	size_t batch_n;
	size_t batch_bytes;
	unsigned long long op_line[IMPORT_BATCH_OPS];

	/*
	 * The batches sent and not yet answered, oldest first from
	 * sent_first (a ring), each by the lines of its ops.
	 */
	struct sent_batch {
		size_t n;
		unsigned long long end; /* input bytes taken when it was sent */
		unsigned long long line[IMPORT_BATCH_OPS];
	} sent[IMPORT_IN_FLIGHT];
	size_t sent_first, sent_count;

	unsigned long long changed, unchanged, changesets;
	int progress;                              /* stderr is a terminal: show a progress line */
	unsigned long long read_bytes;             /* read from fd so far */
	unsigned long long size;                   /* bytes to read, 0 if unknown (a pipe) */
	unsigned long long done_bytes, done_lines; /* of the batches answered */
	struct timespec start;
};

/*
 * Points *line at the next line, without its newline (and without a '\r'
 * before it), inside the input buffer, valid until the next call. Returns
 * 1, 0 at the end of the input, -E2BIG for a line longer than
 * IMPORT_LINE_MAX bytes (found without reading more of it than that), or
 * a negative errno from read.
 */
static int read_line(struct import *im, const char **line, size_t *len)
{
	for (;;) {
		char *s = im->in + im->in_start;
		size_t avail = im->in_end - im->in_start;
		char *nl = memchr(s, '\n', avail);
		size_t n;

		if (nl) {
			n = (size_t)(nl - s);
			if (n > IMPORT_LINE_MAX)
				return -E2BIG;
			im->in_start += n + 1;
		} else if (avail > IMPORT_LINE_MAX) {
			return -E2BIG;
		} else if (im->in_eof) {
			if (avail == 0)
				return 0;
			n = avail;
			im->in_start = im->in_end;
		} else {
			/* A part of a line at most is left: move it to the front, read more. */
			memmove(im->in, s, avail);
			im->in_start = 0;
			im->in_end = avail;
			ssize_t r;
			do
				r = read(im->fd, im->in + im->in_end,
				         IMPORT_LINE_MAX + 1 + IMPORT_READ_CHUNK - im->in_end);
			while (r < 0 && errno == EINTR);
			if (r < 0)
				return -errno;
			if (r == 0)
				im->in_eof = 1;
			im->in_end += (size_t)r;
			im->read_bytes += (unsigned long long)r;
			continue;
		}
		if (n > 0 && s[n - 1] == '\r')
			n--;
		*line = s;
		*len = n;
		return 1;
	}
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

/* "1:05" or "2:01:05". */
static void format_duration(double s, char *out, size_t outsize)
{
	unsigned long long t = s > 0 && s < 3.6e6 ? (unsigned long long)(s + 0.5) : 0;

	if (t >= 3600)
		snprintf(out, outsize, "%llu:%02llu:%02llu", t / 3600, t / 60 % 60, t % 60);
	else
		snprintf(out, outsize, "%llu:%02llu", t / 60, t % 60);
}

/* After batch b was answered: percent, lines, changed, rate and time left. */
static void show_progress(struct import *im, const struct sent_batch *b)
{
	struct timespec now;
	char left[32];

	if (!im->progress)
		return;
	im->done_bytes = b->end;
	im->done_lines = b->line[b->n - 1];
	clock_gettime(CLOCK_MONOTONIC, &now);
	double elapsed = (double)(now.tv_sec - im->start.tv_sec) +
	                 (double)(now.tv_nsec - im->start.tv_nsec) / 1e9;
	double rate = elapsed > 0 ? (double)im->done_lines / elapsed : 0;
	fputs("\r\033[K", stderr);
	if (im->size > 0) {
		unsigned long long done = im->done_bytes < im->size ? im->done_bytes : im->size;
		double bytes_rate = elapsed > 0 ? (double)done / elapsed : 0;
		format_duration(bytes_rate > 0 ? (double)(im->size - done) / bytes_rate : 0, left,
		                sizeof(left));
		fprintf(stderr, "%s: %3llu%%, %llu lines (%llu changed), %.0f lines/s, %s left",
		        im->name, done * 100 / im->size, im->done_lines, im->changed, rate, left);
	} else {
		fprintf(stderr, "%s: %llu lines (%llu changed), %.0f lines/s", im->name,
		        im->done_lines, im->changed, rate);
	}
}

/*
 * "applied lines 1-L (C changed, U unchanged)", with " and A-B" when a
 * later range was applied too (from > 0), or "nothing applied".
 */
static void applied(const struct import *im, unsigned long long last, unsigned long long from,
                    unsigned long long to, char *out, size_t outsize)
{
	char ranges[96] = "";
	int n = 0;

	if (last > 0)
		n = snprintf(ranges, sizeof(ranges), "1-%llu", last);
	if (from > 0)
		snprintf(ranges + n, sizeof(ranges) - (size_t)n, "%s%llu-%llu", n ? " and " : "",
		         from, to);
	if (!ranges[0])
		snprintf(out, outsize, "nothing applied");
	else
		snprintf(out, outsize, "applied lines %s (%llu changed, %llu unchanged)", ranges,
		         im->changed, im->unchanged);
}

/* Takes the oldest batch in flight off the ring; it stays readable until the next send. */
static const struct sent_batch *pop_sent(struct import *im)
{
	const struct sent_batch *b = &im->sent[im->sent_first];

	im->sent_first = (im->sent_first + 1) % IMPORT_IN_FLIGHT;
	im->sent_count--;
	return b;
}

/* Waits for the reply to the oldest batch in flight; on success adds up its counts. */
static int receive_batch(struct import *im, long *index, char *err, size_t errlen)
{
	json_t *result = NULL;
	int rc = client_receive(im->client, CLIENT_TIMEOUT_LONG_MS, &result, index, err, errlen);

	if (rc == 0) {
		im->changed += (unsigned long long)cli_json_int(result, "changed", 0);
		im->unchanged += (unsigned long long)cli_json_int(result, "unchanged", 0);
		im->changesets += (unsigned long long)cli_json_int(result, "changesets", 0);
		json_decref(result);
	}
	return rc;
}

_Static_assert(IMPORT_IN_FLIGHT == 2, "complete reports on one batch behind a failed one");

/*
 * Waits for the reply to the oldest batch in flight. When it failed, also
 * waits for the batch behind it (which the daemon took whatever became of
 * the first), says what went wrong and exactly which lines were applied,
 * and returns -1.
 */
static int complete(struct import *im)
{
	char err[512], later_err[512], done[192], unknown[96] = "";
	long index = -1, later_index = -1;

	if (im->sent_count == 0)
		return 0;
	const struct sent_batch *b = pop_sent(im);
	int rc = receive_batch(im, &index, err, sizeof(err));
	if (rc == 0) {
		show_progress(im, b);
		return 0;
	}

	unsigned long long first = b->line[0], last = b->line[b->n - 1];
	unsigned long long none_to = last, from = 0, to = 0;
	if (im->sent_count > 0) {
		const struct sent_batch *later = pop_sent(im);
		unsigned long long later_first = later->line[0],
		                   later_last = later->line[later->n - 1];
		int later_rc = rc == LOKET_E_UNAVAILABLE
		                   ? rc
		                   : receive_batch(im, &later_index, later_err, sizeof(later_err));
		if (later_rc == 0) {
			from = later_first;
			to = later_last;
		} else if (rc == LOKET_E_UNAVAILABLE) {
			last = later_last; /* both may or may not have been applied */
		} else if (later_rc == LOKET_E_UNAVAILABLE) {
			snprintf(unknown, sizeof(unknown),
			         "; lines %llu-%llu may or may not have been applied", later_first,
			         later_last);
		} else {
			none_to = later_last;
		}
	}

	clear_progress(im);
	applied(im, first - 1, from, to, done, sizeof(done));
	if (rc == LOKET_E_UNAVAILABLE) {
		/* The requests may have reached the daemon and been applied. */
		warnx("%s: %s", im->name, err);
		warnx("%s; lines %llu-%llu may or may not have been applied; run the import "
		      "again to complete the rest",
		      done, first, last);
	} else if (index >= 0 && (size_t)index < b->n) {
		warnx("%s:%llu: %s", im->name, b->line[index], err);
		warnx("%s, none of lines %llu-%llu%s; fix line %llu and run the import again to "
		      "complete the rest",
		      done, first, none_to, unknown, b->line[index]);
	} else {
		warnx("%s: lines %llu-%llu: %s", im->name, first, last, err);
		warnx("%s, none of lines %llu-%llu%s; run the import again to complete the rest",
		      done, first, none_to, unknown);
	}
	return -1;
}

/*
 * Sends the batch being filled, once there is room in flight. Returns -1
 * when an earlier batch or this send failed. An op being added behind the
 * batch moves to the front of the next one.
 */
static int send_batch(struct import *im)
{
	size_t n = im->batch_n;
	char err[512], done[192];

	if (im->sent_count == IMPORT_IN_FLIGHT && complete(im) < 0)
		return -1;
	if (n == 0)
		return 0;
	uint8_t *ops = (uint8_t *)im->batch.data + IMPORT_PUT_HEAD;
	uint8_t *msg = ops - sizeof(put_prefix) - (n < 16 ? 1 : 3);
	memcpy(msg, put_prefix, sizeof(put_prefix));
	if (n < 16) {
		msg[sizeof(put_prefix)] = (uint8_t)(0x90u | n);
	} else {
		msg[sizeof(put_prefix)] = 0xdc;
		msg[sizeof(put_prefix) + 1] = (uint8_t)(n >> 8);
		msg[sizeof(put_prefix) + 2] = (uint8_t)(n & 0xffu);
	}
	int rc = client_send_raw(im->client, msg, (size_t)(ops - msg) + im->batch_bytes, err,
	                         sizeof(err));
	if (rc != 0) {
		/* The batches in flight may or may not have reached the daemon. */
		unsigned long long first =
		    im->sent_count ? im->sent[im->sent_first].line[0] : im->op_line[0];
		clear_progress(im);
		applied(im, first - 1, 0, 0, done, sizeof(done));
		warnx("%s: %s", im->name, err);
		if (first < im->op_line[0])
			warnx(
			    "%s; lines %llu-%llu may or may not have been applied; run the import "
			    "again to complete the rest",
			    done, first, im->op_line[0] - 1);
		else
			warnx("%s; run the import again to complete the rest", done);
		return -1;
	}
	struct sent_batch *sent = &im->sent[(im->sent_first + im->sent_count) % IMPORT_IN_FLIGHT];
	memcpy(sent->line, im->op_line, n * sizeof(im->op_line[0]));
	sent->n = n;
	sent->end = im->read_bytes - (im->in_end - im->in_start);
	im->sent_count++;
	size_t rest = im->batch.size - IMPORT_PUT_HEAD - im->batch_bytes;
	memmove(ops, ops + im->batch_bytes, rest);
	im->batch.size = IMPORT_PUT_HEAD + rest;
	im->batch_n = 0;
	im->batch_bytes = 0;
	return 0;
}

/* Sends what is left and waits for every reply. */
static int flush(struct import *im)
{
	if (send_batch(im) < 0)
		return -1;
	while (im->sent_count > 0)
		if (complete(im) < 0)
			return -1;
	return 0;
}

/*
 * A line that cannot be imported: send what came before it, then report it.
 * Returns -1.
 */
static int bad_line(struct import *im, const char *reason)
{
	char done[192];

	if (flush(im) < 0)
		return -1; /* an earlier batch failed: that is the error to fix first */
	clear_progress(im);
	applied(im, im->lineno - 1, 0, 0, done, sizeof(done));
	warnx("%s:%llu: %s", im->name, im->lineno, reason);
	warnx("%s; fix line %llu and run the import again to complete the rest", done, im->lineno);
	return -1;
}

/* Takes the str key at the cursor if it is want. */
static int take_key(struct mpread *r, const char *want)
{
	struct mpread at = *r;
	const uint8_t *s;
	size_t len;

	if (mpread_str(&at, &s, &len) != 0 || len != strlen(want) || memcmp(s, want, len) != 0)
		return 0;
	*r = at;
	return 1;
}

/* Takes a str at the cursor that check accepts. */
static int take_str(struct mpread *r, int (*check)(const char *s, size_t len))
{
	const uint8_t *s;
	size_t len;

	return mpread_str(r, &s, &len) == 0 && check((const char *)s, len);
}

/*
 * 1 if the encoded op p is one that cli_check_op passes: the map
 * {"coll":C,"del":true,"id":I} or {"coll":C,"fields":F,"id":I} (keys in
 * canonical order) with a valid collection and id, and F a map of 1 to
 * LOKET_MAX_FIELDS entries named by 1 to LOKET_MAX_KEY_LEN bytes, each
 * value well formed within the op's nesting. jsonmp refuses U+0000, so
 * lengths here are what strlen gives there.
 */
static int common_op(const uint8_t *p, size_t n)
{
	struct mpread r = mpread_init(p, n);
	size_t count, used, len;
	const uint8_t *s;

	if (mpread_map(&r, &count) != 0 || count != 3)
		return 0;
	if (!take_key(&r, "coll") || !take_str(&r, changeset_valid_coll))
		return 0;
	if (take_key(&r, "del")) {
		if (r.p == r.end || *r.p != 0xc3)
			return 0;
		r.p++;
	} else if (take_key(&r, "fields")) {
		if (mpread_map(&r, &count) != 0 || count == 0 || count > LOKET_MAX_FIELDS)
			return 0;
		for (size_t i = 0; i < count; i++) {
			if (mpread_str(&r, &s, &len) != 0 || len == 0 || len > LOKET_MAX_KEY_LEN ||
			    value_check(r.p, (size_t)(r.end - r.p), IMPORT_OP_DEPTH - 2, 0, &used,
			                NULL, 0) != 0)
				return 0;
			r.p += used;
		}
	} else {
		return 0;
	}
	return take_key(&r, "id") && take_str(&r, changeset_valid_id) && r.p == r.end;
}

/*
 * The slow way, for a line the fast one would not take: parses with
 * jansson, checks the op and appends its encoding to the batch. Returns 0,
 * or -1 with the reason in err (and perhaps part of an op appended).
 */
static int add_slowly(struct import *im, const char *line, size_t len, char *err, size_t errlen)
{
	json_error_t jerr;
	msgpack_packer pk;
	int rc = -1;

	json_t *op = json_loadb(line, len, JSON_REJECT_DUPLICATES, &jerr);
	if (!op) {
		snprintf(err, errlen, "invalid JSON at column %d: %s", jerr.column, jerr.text);
		return -1;
	}
	if (op_check(op, err, errlen) < 0)
		goto cleanup;
	msgpack_packer_init(&pk, &im->batch, msgpack_sbuffer_write);
	if (value_pack_json(&pk, op, IMPORT_OP_DEPTH, err, errlen) < 0)
		goto cleanup;
	rc = 0;
cleanup:
	json_decref(op);
	return rc;
}

/* Checks one line and adds its op to the batch, sending the batch first when full. */
static int add_line(struct import *im, const char *line, size_t len)
{
	size_t at = im->batch.size; /* where the op goes */
	char err[256];
	size_t size;

	if (jsonmp_pack(im->jsonmp, (const uint8_t *)line, len, IMPORT_OP_DEPTH, &im->batch) != 0 ||
	    !common_op((const uint8_t *)im->batch.data + at, im->batch.size - at)) {
		im->batch.size = at;
		if (add_slowly(im, line, len, err, sizeof(err)) < 0) {
			im->batch.size = at;
			return bad_line(im, err);
		}
	}
	/* Its encoded size decides when the batch is full. */
	size = im->batch.size - at;
	if (size > LOKET_MAX_CHANGESET_BYTES) {
		im->batch.size = at;
		snprintf(err, sizeof(err),
		         "the op is %zu bytes encoded, more than the %u a changeset holds", size,
		         LOKET_MAX_CHANGESET_BYTES);
		return bad_line(im, err);
	}
	if (im->batch_n == IMPORT_BATCH_OPS ||
	    (im->batch_n > 0 && im->batch_bytes + size > IMPORT_BATCH_BYTES)) {
		if (send_batch(im) < 0)
			return -1;
	}
	im->op_line[im->batch_n++] = im->lineno;
	im->batch_bytes += size;
	return 0;
}

static int run(struct import *im)
{
	const char *line = NULL;
	size_t len = 0;
	int rc;

	for (;;) {
		rc = read_line(im, &line, &len);
		if (rc == 0)
			break;
		im->lineno++;
		if (rc == -E2BIG)
			return bad_line(im, "line is longer than 1 MiB");
		if (rc < 0) {
			char reason[128];
			snprintf(reason, sizeof(reason), "read error: %s", strerror(-rc));
			return bad_line(im, reason);
		}
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
	static const uint8_t head[IMPORT_PUT_HEAD];
	struct import *im = NULL;
	struct config *cfg = NULL;
	char err[PATH_MAX + 256], q[ERROR_QUOTE_SIZE];
	int status = CLI_EXIT_FAIL;

	if (argc != 2) {
		warnx("import: expected one FILE, or - for standard input");
		return CLI_EXIT_USAGE;
	}
	im = calloc(1, sizeof(*im));
	if (!im)
		abort();
	im->fd = -1;
	im->jsonmp = jsonmp_new();
	msgpack_sbuffer_init(&im->batch);
	if (msgpack_sbuffer_write(&im->batch, (const char *)head, sizeof(head)) != 0)
		abort();
	im->in = malloc(IMPORT_LINE_MAX + 1 + IMPORT_READ_CHUNK);
	if (!im->in)
		abort();
	if (!strcmp(argv[1], "-")) {
		im->name = "stdin";
		im->fd = STDIN_FILENO;
	} else {
		im->name = argv[1];
		im->fd = open(argv[1], O_RDONLY | O_CLOEXEC);
		if (im->fd < 0) {
			warnx("cannot open %s: %s", error_quote_str(q, sizeof(q), argv[1]),
			      strerror(errno));
			goto cleanup;
		}
		im->own_fd = 1;
	}
	if (cli_connect(&cfg, &im->client, err, sizeof(err)) < 0) {
		warnx("%s", err);
		goto cleanup;
	}
	im->progress = isatty(STDERR_FILENO);
	struct stat st;
	off_t at = lseek(im->fd, 0, SEEK_CUR);
	if (fstat(im->fd, &st) == 0 && S_ISREG(st.st_mode) && st.st_size > (at > 0 ? at : 0))
		im->size = (unsigned long long)(st.st_size - (at > 0 ? at : 0));
	clock_gettime(CLOCK_MONOTONIC, &im->start);

	if (run(im) < 0)
		goto cleanup;
	clear_progress(im);
	printf("%s: %llu lines, %llu changed, %llu unchanged, %llu changesets\n", im->name,
	       im->lineno, im->changed, im->unchanged, im->changesets);
	status = CLI_EXIT_OK;
cleanup:
	if (im->own_fd)
		close(im->fd);
	client_free(im->client);
	config_free(cfg);
	jsonmp_free(im->jsonmp);
	msgpack_sbuffer_destroy(&im->batch);
	free(im->in);
	free(im);
	return status;
}
