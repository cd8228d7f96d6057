/*
 * stream: the responses of loket-http that are written while they are
 * read from loketd, never held whole: the change feed as server-sent
 * events (GET /v1/changes, Accept: text/event-stream) and a collection as
 * the JSON Lines of an export (GET /v1/entities/COLL, Accept:
 * application/x-ndjson). Each is a libmicrohttpd response from a callback,
 * which runs on its connection's thread and may block there: it asks
 * loketd for the next piece only when libmicrohttpd wants more bytes, so
 * a slow reader slows its own stream and nothing else, and memory stays
 * one page or one change whatever the stream's length.
 *
 * The event stream: each change is one event,
 *
 *   id: CURSOR
 *   data: {"coll":...,"owner":...,"id":...,"fields":{...},"deleted":false,...}
 *
 * where CURSOR is the feed's cursor just after that change, so a client
 * that reconnects with Last-Event-ID: CURSOR (as EventSource does by
 * itself) gets exactly the changes after the last one it saw: each change
 * of the control feed carries its own cursor, so changes are read
 * FEED_BATCH at a time and still sent one by one. While nothing changes, the stream
 * looks again every STREAM_POLL_MS (at once when the bell rings: a write
 * made through loket-http, or one the watch saw; http/bell.h, http/watch.h) and sends a comment
 * line every heartbeat_ms so that proxies keep it open. It ends after max_s seconds (with a comment
 * saying so; the client reconnects), when the client closes its side (noticed within
 * STREAM_POLL_MS), when loket-http stops, or with an "event: error" whose data is the error body,
 * such as a cursor made stale by a rebuild. While loketd is down the stream waits for it and goes
 * on where it was.
 *
 * The list: one line per live entity, in export's format and order
 * (common/export.h), a page at a time. A failure in the middle ends the
 * response without its last chunk, so the client sees it cut short.
 */
#ifndef LOKET_HTTP_STREAM_H
#define LOKET_HTTP_STREAM_H

#include <jansson.h>
#include <microhttpd.h>

#include "http/bell.h"
#include "http/ctl.h"

#define STREAM_POLL_MS 50
#define STREAM_BLOCK   (16u * 1024u)
#define FEED_BATCH     100 /* changes asked of loketd at once */

struct stream_source {
	struct ctl_pool *pool;
	struct bell *bell;
	int fd;                /* the connection's socket, watched for the client leaving */
	unsigned heartbeat_ms; /* the event stream's comment interval */
	unsigned max_s;        /* the event stream's longest life */
};

/*
 * A response streaming the change feed after since (NULL: from the start),
 * filtered by coll and owner (NULL: all). The first read is made here: if
 * it fails, NULL with the error's body in *error and its HTTP status.
 */
struct MHD_Response *stream_changes_new(const struct stream_source *src, const char *since,
                                        const char *coll, const char *owner, json_t **error,
                                        unsigned *status);

/* A response streaming coll (of owner, if not NULL) after the page cursor after, likewise. */
struct MHD_Response *stream_list_new(const struct stream_source *src, const char *coll,
                                     const char *owner, const char *after, json_t **error,
                                     unsigned *status);

#endif
