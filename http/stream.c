/*
 * The streamed responses (http/stream.h). Each keeps the bytes it has
 * made and not yet handed to libmicrohttpd in buf (buf[off..len)), and
 * makes the next piece only when those are gone.
 */
#include "http/stream.h"

#include <errno.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/export.h"
#include "common/log.h"
#include "http/clock.h"
#include "http/reply.h"
#include "proto/error.h"

/* Bytes made and not yet handed to libmicrohttpd: buf[off..len). */
struct pending {
	char *buf;
	size_t len, off;
};

struct feed {
	struct stream_source src;
	json_t *since; /* the cursor after the last change sent, or null */
	json_t *batch; /* changes fetched after since and not sent yet, in order */
	size_t at;     /* the next of them */
	char *coll, *owner;
	long long end_ms, beat_ms;
	int ended;
	struct pending out;
};

struct list {
	struct stream_source src;
	char *coll, *owner;
	json_t *page; /* the page being sent */
	size_t at;    /* its next entity */
	struct pending out;
};

static char *dup_or_null(const char *s)
{
	if (!s)
		return NULL;
	char *d = strdup(s);
	if (!d)
		abort();
	return d;
}

/* The pending bytes become text_take, a malloc'd string of n bytes. */
static void pending_take(struct pending *p, char *text_take, size_t n)
{
	free(p->buf);
	p->buf = text_take;
	p->len = n;
	p->off = 0;
}

static void pending_printf(struct pending *p, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void pending_printf(struct pending *p, const char *fmt, ...)
{
	va_list ap, again;

	va_start(ap, fmt);
	va_copy(again, ap);
	int n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	char *text = n >= 0 ? malloc((size_t)n + 1) : NULL;
	if (!text)
		abort();
	vsnprintf(text, (size_t)n + 1, fmt, again);
	va_end(again);
	pending_take(p, text, (size_t)n);
}

/* Hands out what is pending, at most max bytes. */
static ssize_t pending_read(struct pending *p, char *out, size_t max)
{
	size_t n = p->len - p->off < max ? p->len - p->off : max;

	memcpy(out, p->buf + p->off, n);
	p->off += n;
	return (ssize_t)n;
}

/* Whether the client has closed its side, or its connection failed. */
static int client_gone(int fd)
{
	struct pollfd p = {.fd = fd, .events = POLLRDHUP};

	if (fd < 0)
		return 0;
	return poll(&p, 1, 0) > 0 && (p.revents & (POLLRDHUP | POLLHUP | POLLERR | POLLNVAL));
}

static void free_feed(void *cls)
{
	struct feed *f = cls;

	json_decref(f->since);
	json_decref(f->batch);
	free(f->coll);
	free(f->owner);
	free(f->out.buf);
	free(f);
}

/*
 * The next change after f->since: 0 with *change (a new reference, or NULL
 * if none) and *more (more rows to examine at once), and f->since moved on
 * to that change's own cursor; else the code, with its sentence in err.
 * Changes come from loketd FEED_BATCH at a time and go out one by one.
 */
static int feed_fetch(struct feed *f, json_t **change, int *more, char *err, size_t errlen)
{
	*change = NULL;
	*more = 0;
	if (f->at == json_array_size(f->batch)) {
		json_t *req = json_pack("{s:s, s:O, s:i}", "cmd", "changes", "since", f->since,
		                        "limit", FEED_BATCH);
		json_t *result = NULL;
		if (!req)
			abort();
		if (f->coll)
			json_object_set_new(req, "coll", json_string(f->coll));
		if (f->owner)
			json_object_set_new(req, "owner", json_string(f->owner));
		int rc = ctl_pool_call(f->src.pool, req, CTL_TIMEOUT_MS, &result, err, errlen);
		json_decref(req);
		if (rc != 0)
			return rc;
		json_decref(f->batch);
		f->batch = json_incref(json_object_get(result, "changes"));
		f->at = 0;
		/* No change: the cursor still moves past the rows the filters passed over. */
		json_t *cursor = json_object_get(result, "cursor");
		if (json_array_size(f->batch) == 0 && json_is_string(cursor)) {
			json_decref(f->since);
			f->since = json_incref(cursor);
		}
		*more = json_is_true(json_object_get(result, "more"));
		json_decref(result);
	}
	json_t *c = json_array_get(f->batch, f->at);
	if (!c)
		return 0;
	f->at++;
	json_decref(f->since);
	f->since = json_incref(json_object_get(c, "cursor"));
	*change = json_deep_copy(c);
	json_object_del(*change, "cursor"); /* it is the event's id */
	return 0;
}

static void feed_event(struct feed *f, json_t *change_take)
{
	char *data = json_dumps(change_take, JSON_COMPACT);

	json_decref(change_take);
	if (!data)
		abort();
	pending_printf(&f->out, "id: %s\ndata: %s\n\n", json_string_value(f->since), data);
	free(data);
}

/* The body of an error as the data of an "error" event; the stream ends after it. */
static void feed_error(struct feed *f, int rc, const char *err)
{
	json_t *body = reply_error(rc, err);
	char *data = json_dumps(body, JSON_COMPACT);

	json_decref(body);
	if (!data)
		abort();
	pending_printf(&f->out, "event: error\ndata: %s\n\n", data);
	free(data);
	f->ended = 1;
}

/* Makes the next piece of the stream in f->out: 0, or a libmicrohttpd end code. */
static ssize_t feed_next(struct feed *f)
{
	char err[1024];

	for (;;) {
		if (f->ended)
			return MHD_CONTENT_READER_END_OF_STREAM;
		long long now = clock_ms();
		if (now >= f->end_ms) {
			pending_printf(
			    &f->out,
			    ": the stream ends after %u s; reconnect with Last-Event-ID\n\n",
			    f->src.max_s);
			f->ended = 1;
			return 0;
		}
		uint64_t seen = bell_count(f->src.bell);
		json_t *change;
		int more;
		int rc = feed_fetch(f, &change, &more, err, sizeof(err));
		if (rc == 0 && change) {
			feed_event(f, change);
			f->beat_ms = clock_ms() + f->src.heartbeat_ms;
			return 0;
		}
		if (rc != 0 && rc != LOKET_E_UNAVAILABLE) {
			log_warn("http: an event stream ends: %s", err);
			feed_error(f, rc, err);
			return 0;
		}
		if (rc == 0 && more)
			continue; /* rows were passed over by the filters: look on at once */
		/* Nothing new, or loketd is down (the stream waits for it). */
		now = clock_ms();
		if (now >= f->beat_ms) {
			pending_printf(&f->out, ": keep-alive\n\n");
			f->beat_ms = now + f->src.heartbeat_ms;
			return 0;
		}
		long long wait = STREAM_POLL_MS;
		if (f->beat_ms - now < wait)
			wait = f->beat_ms - now;
		if (f->end_ms - now < wait)
			wait = f->end_ms - now;
		if (bell_wait(f->src.bell, seen, (long)wait) < 0)
			return MHD_CONTENT_READER_END_OF_STREAM; /* loket-http stops */
		if (client_gone(f->src.fd))
			return MHD_CONTENT_READER_END_WITH_ERROR;
	}
}

static ssize_t feed_read(void *cls, uint64_t pos, char *out, size_t max)
{
	struct feed *f = cls;
	(void)pos;

	if (f->out.off == f->out.len) {
		ssize_t rc = feed_next(f);
		if (rc != 0)
			return rc;
	}
	return pending_read(&f->out, out, max);
}

struct MHD_Response *stream_changes_new(const struct stream_source *src, const char *since,
                                        const char *coll, const char *owner, json_t **error,
                                        unsigned *status)
{
	struct feed *f = calloc(1, sizeof(*f));
	char err[1024];
	json_t *change;
	int more;

	if (!f)
		abort();
	f->src = *src;
	f->since = since ? json_string(since) : json_null();
	f->coll = dup_or_null(coll);
	f->owner = dup_or_null(owner);
	*error = NULL;
	int rc = feed_fetch(f, &change, &more, err, sizeof(err));
	if (rc != 0) {
		*status = reply_status(rc);
		*error = reply_error(rc, err);
		free_feed(f);
		return NULL;
	}
	long long now = clock_ms();
	f->end_ms = now + (long long)src->max_s * 1000;
	f->beat_ms = now + src->heartbeat_ms;
	/* The first bytes go out at once, so that the client knows the stream is open. */
	if (change)
		feed_event(f, change);
	else
		pending_printf(&f->out, ": the change feed of this node\n\n");
	struct MHD_Response *resp = MHD_create_response_from_callback(
	    MHD_SIZE_UNKNOWN, STREAM_BLOCK, feed_read, f, free_feed);
	if (!resp) {
		free_feed(f);
		*status = 500;
		*error = reply_error(-ENOMEM, "cannot make the response");
		return NULL;
	}
	MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, "text/event-stream");
	MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
	/* nginx passes the events on as they come, not when its buffer fills. */
	MHD_add_response_header(resp, "X-Accel-Buffering", "no");
	return resp;
}

static void free_list(void *cls)
{
	struct list *l = cls;

	free(l->coll);
	free(l->owner);
	json_decref(l->page);
	free(l->out.buf);
	free(l);
}

/* The page after cursor after (NULL: the first) into l->page. */
static int list_fetch(struct list *l, const char *after, char *err, size_t errlen)
{
	json_t *req = export_page_request(l->coll, l->owner, after);
	json_t *page = NULL;
	int rc = ctl_pool_call(l->src.pool, req, CTL_TIMEOUT_MS, &page, err, errlen);

	json_decref(req);
	if (rc != 0)
		return rc;
	json_decref(l->page);
	l->page = page;
	l->at = 0;
	return 0;
}

static ssize_t list_read(void *cls, uint64_t pos, char *out, size_t max)
{
	struct list *l = cls;
	char err[1024];
	(void)pos;

	while (l->out.off == l->out.len) {
		json_t *entities = json_object_get(l->page, "entities");
		json_t *next = json_object_get(l->page, "next");
		if (l->at < json_array_size(entities)) {
			size_t n;
			char *line =
			    export_line(json_array_get(entities, l->at++), &n, err, sizeof(err));
			if (!line) {
				log_warn("http: a list stream of %s is cut: %s", l->coll, err);
				return MHD_CONTENT_READER_END_WITH_ERROR;
			}
			pending_take(&l->out, line, n);
			break;
		}
		if (!json_is_string(next))
			return MHD_CONTENT_READER_END_OF_STREAM;
		char *after = dup_or_null(json_string_value(next));
		int rc = list_fetch(l, after, err, sizeof(err));
		free(after);
		if (rc != 0) {
			log_warn("http: a list stream of %s is cut: %s", l->coll, err);
			return MHD_CONTENT_READER_END_WITH_ERROR;
		}
	}
	return pending_read(&l->out, out, max);
}

struct MHD_Response *stream_list_new(const struct stream_source *src, const char *coll,
                                     const char *owner, const char *after, json_t **error,
                                     unsigned *status)
{
	struct list *l = calloc(1, sizeof(*l));
	char err[1024];

	if (!l)
		abort();
	l->src = *src;
	l->coll = dup_or_null(coll);
	l->owner = dup_or_null(owner);
	*error = NULL;
	int rc = list_fetch(l, after, err, sizeof(err));
	if (rc != 0) {
		*status = reply_status(rc);
		*error = reply_error(rc, err);
		free_list(l);
		return NULL;
	}
	struct MHD_Response *resp = MHD_create_response_from_callback(
	    MHD_SIZE_UNKNOWN, STREAM_BLOCK, list_read, l, free_list);
	if (!resp) {
		free_list(l);
		*status = 500;
		*error = reply_error(-ENOMEM, "cannot make the response");
		return NULL;
	}
	MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, "application/x-ndjson");
	return resp;
}
