/*
 * The bulk writer. Each line is parsed with jansson (duplicate keys
 * refused), checked as `loket import` checks an op, checked against the
 * token's scope, and packed canonically behind the batch's room for its
 * request header; a full batch is sent as {"cmd":"put","ops":[...]} and its
 * reply awaited before the next line is read, which is what makes the
 * report exact.
 */
#include "http/bulk.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/op_check.h"
#include "http/reply.h"
#include "proto/error.h"
#include "proto/limits.h"
#include "proto/value.h"

#define BULK_LINE_MAX    (1024u * 1024u)
#define BULK_BATCH_OPS   8000u
#define BULK_BATCH_BYTES (1792u * 1024u)
#define BULK_OP_DEPTH    (LOKET_MAX_MESSAGE_DEPTH - 2u)

/* {"cmd":"put","ops": as value_encode_message writes it, then an array16 header. */
static const uint8_t put_prefix[] = {0x82, 0xa3, 'c',  'm', 'd', 0xa3, 'p',
                                     'u',  't',  0xa3, 'o', 'p', 's'};
#define BULK_HEAD (sizeof(put_prefix) + 3u)

struct bulk {
	struct ctl_pool *pool;
	struct bell *bell;
	struct token_grant grant;
	char *line; /* the line being read, BULK_LINE_MAX + 1 bytes */
	size_t line_len;
	int line_too_long;
	unsigned long long lineno;

	msgpack_sbuffer batch; /* BULK_HEAD bytes of room, then the ops */
	size_t batch_n;
	unsigned long long op_line[BULK_BATCH_OPS];

	unsigned long long applied_through, changed, unchanged, changesets;
	int failed;
	int code;
	unsigned long long error_line, uncertain_first, uncertain_last;
	char message[1536];
};

struct bulk *bulk_new(struct ctl_pool *pool, struct bell *bell, const struct token_grant *grant)
{
	static const uint8_t room[BULK_HEAD];
	struct bulk *b = calloc(1, sizeof(*b));

	if (!b)
		abort();
	b->pool = pool;
	b->bell = bell;
	b->grant = *grant;
	b->line = malloc(BULK_LINE_MAX + 1);
	if (!b->line)
		abort();
	msgpack_sbuffer_init(&b->batch);
	if (msgpack_sbuffer_write(&b->batch, (const char *)room, sizeof(room)) != 0)
		abort();
	return b;
}

void bulk_free(struct bulk *b)
{
	if (!b)
		return;
	free(b->line);
	msgpack_sbuffer_destroy(&b->batch);
	free(b);
}

static void fail(struct bulk *b, int code, unsigned long long line, const char *message)
{
	b->failed = 1;
	b->code = code;
	b->error_line = line;
	snprintf(b->message, sizeof(b->message), "%s", message);
}

/* Sends the batch and waits for its reply; 0, or -1 with the failure recorded. */
static int send_batch(struct bulk *b)
{
	char err[512];
	json_t *result = NULL;
	long index = -1;
	size_t n = b->batch_n;

	if (n == 0)
		return 0;
	uint8_t *ops = (uint8_t *)b->batch.data + BULK_HEAD;
	uint8_t *msg = ops - sizeof(put_prefix) - (n < 16 ? 1 : 3);
	memcpy(msg, put_prefix, sizeof(put_prefix));
	if (n < 16) {
		msg[sizeof(put_prefix)] = (uint8_t)(0x90u | n);
	} else {
		msg[sizeof(put_prefix)] = 0xdc;
		msg[sizeof(put_prefix) + 1] = (uint8_t)(n >> 8);
		msg[sizeof(put_prefix) + 2] = (uint8_t)(n & 0xffu);
	}
	unsigned long long first = b->op_line[0], last = b->op_line[n - 1];
	struct ctl *c = ctl_get(b->pool, err, sizeof(err));
	int rc = c ? ctl_call_raw(c, msg, b->batch.size - (size_t)(msg - (uint8_t *)b->batch.data),
	                          CTL_TIMEOUT_BULK_MS, &result, &index, err, sizeof(err))
	           : LOKET_E_UNAVAILABLE;
	ctl_put(b->pool, c);
	b->batch.size = BULK_HEAD;
	b->batch_n = 0;
	if (rc == 0) {
		json_int_t changed = json_integer_value(json_object_get(result, "changed"));
		if (changed > 0)
			bell_ring(b->bell);
		b->changed += (unsigned long long)changed;
		b->unchanged +=
		    (unsigned long long)json_integer_value(json_object_get(result, "unchanged"));
		b->changesets +=
		    (unsigned long long)json_integer_value(json_object_get(result, "changesets"));
		b->applied_through = last;
		json_decref(result);
		return 0;
	}
	if (rc == LOKET_E_UNAVAILABLE && c) {
		/* The request may have reached the daemon and been applied. */
		b->uncertain_first = first;
		b->uncertain_last = last;
		fail(b, rc, 0, err);
	} else if (index >= 0 && (size_t)index < n) {
		fail(b, rc, b->op_line[index], err);
	} else {
		fail(b, rc, 0, err);
	}
	return -1;
}

/* A line that cannot be applied: what came before it is sent first, then it is reported. */
static void bad_line(struct bulk *b, int code, const char *reason)
{
	if (send_batch(b) < 0)
		return; /* an earlier batch failed: that is the error to fix first */
	fail(b, code, b->lineno, reason);
}

static void add_line(struct bulk *b, const char *s, size_t len)
{
	char err[1536];
	json_error_t jerr;
	msgpack_packer pk;
	size_t at = b->batch.size;

	if (b->lineno == 1 && len >= 3 && !memcmp(s, "\xef\xbb\xbf", 3)) {
		s += 3;
		len -= 3;
	}
	if (len > 0 && s[len - 1] == '\r')
		len--;
	if (strspn(s, " \t") >= len)
		return;
	json_t *op = json_loadb(s, len, JSON_REJECT_DUPLICATES, &jerr);
	if (!op) {
		snprintf(err, sizeof(err), "invalid JSON at column %d: %s", jerr.column, jerr.text);
		bad_line(b, LOKET_E_MALFORMED, err);
		return;
	}
	if (op_check(op, err, sizeof(err)) < 0) {
		json_decref(op);
		bad_line(b, LOKET_E_BAD_REQUEST, err);
		return;
	}
	const char *coll = json_string_value(json_object_get(op, "coll"));
	if (!tokens_may_write(&b->grant, coll)) {
		snprintf(err, sizeof(err), "token %s (scope %s) may not write collection %s",
		         b->grant.name, b->grant.scope, coll);
		json_decref(op);
		bad_line(b, LOKET_E_DENIED, err);
		return;
	}
	msgpack_packer_init(&pk, &b->batch, msgpack_sbuffer_write);
	int rc = value_pack_json(&pk, op, BULK_OP_DEPTH, err, sizeof(err));
	json_decref(op);
	size_t size = b->batch.size - at;
	if (rc == 0 && size > LOKET_MAX_CHANGESET_BYTES) {
		snprintf(err, sizeof(err),
		         "the op is %zu bytes encoded, more than the %u a changeset holds", size,
		         LOKET_MAX_CHANGESET_BYTES);
		rc = LOKET_E_TOO_BIG;
	}
	if (rc < 0) {
		b->batch.size = at;
		bad_line(b, rc == LOKET_E_TOO_BIG ? rc : LOKET_E_BAD_REQUEST, err);
		return;
	}
	/* The op just packed goes into the next batch when this one is full. */
	if (b->batch_n == BULK_BATCH_OPS ||
	    (b->batch_n > 0 && at - BULK_HEAD + size > BULK_BATCH_BYTES)) {
		char *moved = malloc(size);
		if (!moved)
			abort();
		memcpy(moved, b->batch.data + at, size);
		b->batch.size = at;
		int sent = send_batch(b);
		if (sent == 0 && msgpack_sbuffer_write(&b->batch, moved, size) != 0)
			abort();
		free(moved);
		if (sent < 0)
			return;
	}
	b->op_line[b->batch_n++] = b->lineno;
}

void bulk_feed(struct bulk *b, const char *data, size_t len)
{
	while (len > 0 && !b->failed) {
		const char *nl = memchr(data, '\n', len);
		size_t n = nl ? (size_t)(nl - data) : len;

		if (!b->line_too_long) {
			if (b->line_len + n > BULK_LINE_MAX) {
				b->line_too_long = 1;
			} else {
				memcpy(b->line + b->line_len, data, n);
				b->line_len += n;
			}
		}
		data += n;
		len -= n;
		if (!nl)
			break;
		data++;
		len--;
		b->lineno++;
		if (b->line_too_long)
			bad_line(b, LOKET_E_TOO_BIG, "line is longer than 1 MiB");
		else
			add_line(b, b->line, b->line_len);
		b->line_len = 0;
		b->line_too_long = 0;
	}
}

json_t *bulk_finish(struct bulk *b, unsigned *status)
{
	char report[256];

	if (!b->failed && (b->line_len > 0 || b->line_too_long)) {
		b->lineno++;
		if (b->line_too_long)
			bad_line(b, LOKET_E_TOO_BIG, "line is longer than 1 MiB");
		else
			add_line(b, b->line, b->line_len);
	}
	if (!b->failed)
		send_batch(b);
	if (!b->failed) {
		b->applied_through = b->lineno;
		*status = 200;
		return json_pack("{s:I, s:I, s:I, s:I, s:I}", "lines", (json_int_t)b->lineno,
		                 "applied_through", (json_int_t)b->applied_through, "changed",
		                 (json_int_t)b->changed, "unchanged", (json_int_t)b->unchanged,
		                 "changesets", (json_int_t)b->changesets);
	}
	int n = b->applied_through ? snprintf(report, sizeof(report),
	                                      "applied lines 1-%llu (%llu changed, %llu unchanged)",
	                                      b->applied_through, b->changed, b->unchanged)
	                           : snprintf(report, sizeof(report), "nothing applied");
	if (b->uncertain_first)
		snprintf(
		    report + n, sizeof(report) - (size_t)n,
		    "; lines %llu-%llu may or may not have been applied; send the body again to "
		    "complete the rest",
		    b->uncertain_first, b->uncertain_last);
	else if (b->error_line)
		snprintf(report + n, sizeof(report) - (size_t)n,
		         "; fix line %llu and send the body again to complete the rest",
		         b->error_line);
	else
		snprintf(report + n, sizeof(report) - (size_t)n,
		         "; send the body again to complete the rest");
	json_t *body = reply_error(b->code, b->message);
	json_object_set_new(json_object_get(body, "error"), "line",
	                    json_integer((json_int_t)b->error_line));
	json_object_set_new(body, "lines", json_integer((json_int_t)b->lineno));
	json_object_set_new(body, "applied_through", json_integer((json_int_t)b->applied_through));
	json_object_set_new(body, "changed", json_integer((json_int_t)b->changed));
	json_object_set_new(body, "unchanged", json_integer((json_int_t)b->unchanged));
	json_object_set_new(body, "changesets", json_integer((json_int_t)b->changesets));
	json_object_set_new(body, "report", json_string(report));
	if (b->uncertain_first)
		json_object_set_new(body, "uncertain",
		                    json_pack("[I, I]", (json_int_t)b->uncertain_first,
		                              (json_int_t)b->uncertain_last));
	*status = reply_status(b->code);
	return body;
}
