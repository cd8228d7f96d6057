/*
 * The HTTP server. libmicrohttpd parses HTTP (request line, headers,
 * chunked bodies) within a fixed memory budget per connection and caps the
 * connections, in all and per address; this file sees each request as a
 * route, its path segments, its query and its body. A request's life: the
 * first call of the access handler takes it from its client's rate (429),
 * finds the route, checks the query's names and the bearer token, and
 * refuses at once what cannot succeed (401, 403, 404, 405, a
 * Content-Length beyond the bound: 413), so a refused body is never read;
 * the calls with body data append it (bounded) or stream it into a bulk
 * write; the last call runs the route and queues its JSON, or the
 * streaming response it made (http/stream.h). Until then the request is
 * under the guard's deadline (http/guard.h). Every route is a few control
 * requests to loketd, made on this connection's thread, so a slow loketd
 * holds only the connections that wait for it, and a slow client holds
 * only its own thread, never loketd's loop.
 */
#include "http/server.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <microhttpd.h>

#include "common/log.h"
#include "common/op_check.h"
#include "http/bell.h"
#include "http/bulk.h"
#include "http/clock.h"
#include "http/ctl.h"
#include "http/guard.h"
#include "http/openapi.h"
#include "http/ratelimit.h"
#include "http/reply.h"
#include "http/stream.h"
#include "http/tokens.h"
#include "http/watch.h"
#include "proto/error.h"
#include "proto/limits.h"

#define HTTP_MAX_SEGMENTS  4
#define HTTP_SEGMENT_MAX   160
#define HTTP_TOKEN_MAX     256
#define HTTP_LIMIT_MAX     1000
#define HTTP_POLL_MS       50
#define HTTP_DENIALS_PER_S 10

struct server {
	struct MHD_Daemon *mhd;
	struct ctl_pool *pool;
	struct tokens *tokens;
	struct bell *bell;           /* rung by each write made here, and by the watch */
	struct watch *watch;         /* looks at loketd for every waiter */
	struct guard *guard;         /* each request's deadline to arrive */
	struct ratelimit *ratelimit; /* each client's requests */
	unsigned heartbeat_ms, stream_max_s;
	pthread_mutex_t log_lock; /* the denial log's rate */
	time_t log_second;
	unsigned log_count, log_dropped;
};

enum access {
	ACCESS_PUBLIC, /* no token */
	ACCESS_READ,   /* any valid token */
	ACCESS_WRITE,  /* a token whose scope writes the path's collection */
	ACCESS_BULK,   /* any valid token; each line is checked against its scope */
};

struct request;
typedef json_t *route_fn(struct request *r, unsigned *status);

struct route {
	const char *method;
	const char *pattern[HTTP_MAX_SEGMENTS]; /* literal segments, "*" for a parameter */
	size_t n;
	enum access access;
	const char *args; /* query parameters allowed, comma-separated */
	route_fn *fn;
};

struct request {
	struct server *server;
	struct MHD_Connection *conn;
	const struct route *route;
	char seg[HTTP_MAX_SEGMENTS][HTTP_SEGMENT_MAX + 1];
	struct token_grant grant;
	struct guard_conn *guarded;  /* the connection's deadline, NULL if unknown */
	struct MHD_Response *stream; /* what a streaming route answers with */
	unsigned retry_after_s;      /* a 429's Retry-After */
	int answered;                /* a response was queued */
	int too_big;                 /* the body passed its bound (or came where none is taken) */
	char *body;
	size_t body_len;
	struct bulk *bulk;
};

static route_fn route_get, route_list, route_put, route_delete, route_bulk, route_search,
    route_board, route_show, route_match, route_status, route_peers, route_changes, route_openapi;

static const struct route routes[] = {
    {"GET", {"entities", "*", "*", "*"}, 4, ACCESS_READ, "", route_get},
    {"GET", {"entities", "*"}, 2, ACCESS_READ, "after,limit,owner", route_list},
    {"PUT", {"entities", "*", "*"}, 3, ACCESS_WRITE, "", route_put},
    {"DELETE", {"entities", "*", "*"}, 3, ACCESS_WRITE, "", route_delete},
    {"POST", {"bulk"}, 1, ACCESS_BULK, "", route_bulk},
    {"GET", {"search"}, 1, ACCESS_READ, "q,coll,limit", route_search},
    {"GET", {"board"}, 1, ACCESS_READ, "status,topic,kind,limit", route_board},
    {"GET", {"show", "*", "*", "*"}, 4, ACCESS_READ, "", route_show},
    {"GET", {"match", "*", "*"}, 3, ACCESS_READ, "limit", route_match},
    {"GET", {"status"}, 1, ACCESS_READ, "", route_status},
    {"GET", {"peers"}, 1, ACCESS_READ, "", route_peers},
    {"GET", {"changes"}, 1, ACCESS_READ, "since,coll,owner,limit,wait", route_changes},
    {"GET", {"openapi.json"}, 1, ACCESS_PUBLIC, "", route_openapi},
};

/* Logs a refused request, at most HTTP_DENIALS_PER_S a second, so that a flood cannot fill the log.
 */
static void log_denial(struct server *s, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void log_denial(struct server *s, const char *fmt, ...)
{
	char line[512];
	va_list ap;
	time_t now = time(NULL);
	unsigned dropped = 0;
	int show;

	pthread_mutex_lock(&s->log_lock);
	if (now != s->log_second) {
		dropped = s->log_dropped;
		s->log_second = now;
		s->log_count = 0;
		s->log_dropped = 0;
	}
	show = s->log_count++ < HTTP_DENIALS_PER_S;
	if (!show)
		s->log_dropped++;
	pthread_mutex_unlock(&s->log_lock);
	if (dropped)
		log_warn("http: %u more refused requests were not logged", dropped);
	if (!show)
		return;
	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	log_warn("http: %s", line);
}

static json_t *error_body(int code, unsigned *status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static json_t *error_body(int code, unsigned *status, const char *fmt, ...)
{
	char msg[1536];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	*status = reply_status(code);
	return reply_error(code, msg);
}

static enum MHD_Result send_json(struct request *r, unsigned status, json_t *body_take)
{
	char *text = json_dumps(body_take, JSON_COMPACT | JSON_ENCODE_ANY);
	json_decref(body_take);
	if (!text)
		abort();
	size_t len = strlen(text);
	char *buf = realloc(text, len + 2);
	if (!buf)
		abort();
	buf[len] = '\n';
	buf[len + 1] = '\0';
	struct MHD_Response *resp =
	    MHD_create_response_from_buffer(len + 1, buf, MHD_RESPMEM_MUST_FREE);
	if (!resp) {
		free(buf);
		return MHD_NO;
	}
	MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, "application/json");
	if (status == MHD_HTTP_UNAUTHORIZED)
		MHD_add_response_header(resp, MHD_HTTP_HEADER_WWW_AUTHENTICATE,
		                        "Bearer realm=\"loket\"");
	if (r->retry_after_s) {
		char secs[16];
		snprintf(secs, sizeof(secs), "%u", r->retry_after_s);
		MHD_add_response_header(resp, MHD_HTTP_HEADER_RETRY_AFTER, secs);
	}
	enum MHD_Result rc = MHD_queue_response(r->conn, status, resp);
	MHD_destroy_response(resp);
	r->answered = 1;
	return rc;
}

/* One control request; the daemon's code, with its sentence in err. */
static int call(struct request *r, json_t *req_take, json_t **result, char *err, size_t errlen)
{
	if (!req_take)
		abort();
	int rc = ctl_pool_call(r->server->pool, req_take, CTL_TIMEOUT_MS, result, err, errlen);
	json_decref(req_take);
	return rc;
}

/* Whether the Accept header names the media type (parameters and q values aside). */
static int accepts(struct request *r, const char *type)
{
	const char *h =
	    MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_ACCEPT);
	size_t n = strlen(type);

	for (const char *p = h; p && *p;) {
		p += strspn(p, " \t,");
		size_t len = strcspn(p, ";, \t");
		if (len == n && !strncasecmp(p, type, n))
			return 1;
		p += strcspn(p, ",");
	}
	return 0;
}

/* Where a streaming route reads from and how long it may last. */
static struct stream_source stream_source(struct request *r)
{
	const union MHD_ConnectionInfo *ci =
	    MHD_get_connection_info(r->conn, MHD_CONNECTION_INFO_CONNECTION_FD);
	struct stream_source src = {
	    .pool = r->server->pool,
	    .bell = r->server->bell,
	    .fd = ci ? ci->connect_fd : -1,
	    .heartbeat_ms = r->server->heartbeat_ms,
	    .max_s = r->server->stream_max_s,
	};
	return src;
}

/* A streaming route's answer: r->stream, or the body of its refusal. */
static json_t *streamed(struct request *r, struct MHD_Response *resp, json_t *error,
                        unsigned *status)
{
	r->stream = resp;
	if (resp)
		*status = 200;
	return error;
}

/* A control request whose result is the response body as it is. */
static json_t *relay(struct request *r, json_t *req_take, unsigned *status)
{
	char err[1024];
	json_t *result;
	int rc = call(r, req_take, &result, err, sizeof(err));

	if (rc != 0)
		return error_body(rc, status, "%s", err);
	*status = 200;
	return result;
}

static const char *arg(struct request *r, const char *name)
{
	const char *v = MHD_lookup_connection_value(r->conn, MHD_GET_ARGUMENT_KIND, name);
	return v && v[0] ? v : NULL;
}

/* Sets key of req to the query parameter name, if given. */
static void arg_into(struct request *r, json_t *req, const char *name, const char *key)
{
	const char *v = arg(r, name);
	if (v)
		json_object_set_new(req, key, json_string(v));
}

/* The query parameter name as a number in 1..max (absent: 0 in *out); -1 with a body if bad. */
static int arg_number(struct request *r, const char *name, long min, long max, long *out,
                      json_t **body, unsigned *status)
{
	const char *v = arg(r, name);
	char *end, q[ERROR_QUOTE_SIZE];

	*out = -1;
	if (!v)
		return 0;
	errno = 0;
	long n = strtol(v, &end, 10);
	if (v[0] < '0' || v[0] > '9' || *end || errno || n < min || n > max) {
		*body =
		    error_body(LOKET_E_BAD_REQUEST, status, "%s %s is not a number from %ld to %ld",
		               name, error_quote_str(q, sizeof(q), v), min, max);
		return -1;
	}
	*out = n;
	return 0;
}

static json_t *with_limit(struct request *r, json_t *req, unsigned *status)
{
	json_t *body = NULL;
	long limit;

	if (arg_number(r, "limit", 1, HTTP_LIMIT_MAX, &limit, &body, status) < 0) {
		json_decref(req);
		return body;
	}
	if (limit > 0)
		json_object_set_new(req, "limit", json_integer(limit));
	return NULL;
}

/* Checks the coll and id of the path; NULL if they are valid, else the error body. */
static json_t *check_path(struct request *r, int coll_at, int id_at, unsigned *status)
{
	char err[512];

	if (coll_at >= 0 && op_check_coll(r->seg[coll_at], err, sizeof(err)) < 0)
		return error_body(LOKET_E_BAD_REQUEST, status, "%s", err);
	if (id_at >= 0 && op_check_id(r->seg[id_at], err, sizeof(err)) < 0)
		return error_body(LOKET_E_BAD_REQUEST, status, "%s", err);
	return NULL;
}

static json_t *route_get(struct request *r, unsigned *status)
{
	json_t *body = check_path(r, 1, 3, status), *result;
	char err[1024], q[ERROR_QUOTE_SIZE];

	if (body)
		return body;
	int rc = call(r,
	              json_pack("{s:s, s:s, s:s, s:s}", "cmd", "get", "coll", r->seg[1], "owner",
	                        r->seg[2], "id", r->seg[3]),
	              &result, err, sizeof(err));
	if (rc != 0)
		return error_body(rc, status, "%s", err);
	if (json_array_size(result) == 0) {
		json_decref(result);
		return error_body(
		    LOKET_E_NOT_FOUND, status, "%s not found",
		    error_quotef(q, sizeof(q), "%s/%s/%s", r->seg[1], r->seg[2], r->seg[3]));
	}
	body = json_incref(json_array_get(result, 0));
	json_decref(result);
	*status = 200;
	return body;
}

static json_t *route_list(struct request *r, unsigned *status)
{
	json_t *body = check_path(r, 1, -1, status);
	if (body)
		return body;
	if (accepts(r, "application/x-ndjson")) {
		struct stream_source src = stream_source(r);
		json_t *error = NULL;
		if (arg(r, "limit"))
			return error_body(
			    LOKET_E_BAD_REQUEST, status,
			    "limit does not apply to application/x-ndjson, which gives "
			    "every entity after the cursor");
		struct MHD_Response *resp = stream_list_new(&src, r->seg[1], arg(r, "owner"),
		                                            arg(r, "after"), &error, status);
		return streamed(r, resp, error, status);
	}
	json_t *req = json_pack("{s:s, s:s}", "cmd", "page", "coll", r->seg[1]);
	arg_into(r, req, "after", "after");
	arg_into(r, req, "owner", "owner");
	if ((body = with_limit(r, req, status)))
		return body;
	return relay(r, req, status);
}

static json_t *put_ops(struct request *r, json_t *op_take, unsigned *status)
{
	json_t *body = relay(r, json_pack("{s:s, s:[o]}", "cmd", "put", "ops", op_take), status);
	if (*status == 200)
		bell_ring(r->server->bell);
	return body;
}

static json_t *route_put(struct request *r, unsigned *status)
{
	json_t *body = check_path(r, 1, 2, status);
	json_error_t jerr;
	char err[512];

	if (body)
		return body;
	json_t *fields =
	    json_loadb(r->body ? r->body : "", r->body_len, JSON_REJECT_DUPLICATES, &jerr);
	if (!fields)
		return error_body(LOKET_E_MALFORMED, status,
		                  "invalid JSON at line %d column %d: %s", jerr.line, jerr.column,
		                  jerr.text);
	if (op_check_fields(fields, err, sizeof(err)) < 0) {
		json_decref(fields);
		return error_body(LOKET_E_BAD_REQUEST, status, "%s", err);
	}
	return put_ops(
	    r, json_pack("{s:s, s:s, s:o}", "coll", r->seg[1], "id", r->seg[2], "fields", fields),
	    status);
}

static json_t *route_delete(struct request *r, unsigned *status)
{
	json_t *body = check_path(r, 1, 2, status);
	if (body)
		return body;
	return put_ops(
	    r, json_pack("{s:s, s:s, s:b}", "coll", r->seg[1], "id", r->seg[2], "del", 1), status);
}

static json_t *route_bulk(struct request *r, unsigned *status)
{
	return bulk_finish(r->bulk, status);
}

static json_t *route_search(struct request *r, unsigned *status)
{
	json_t *body;
	const char *q = arg(r, "q");

	if (!q)
		return error_body(LOKET_E_BAD_REQUEST, status,
		                  "give the words to search for in q=");
	json_t *req = json_pack("{s:s, s:s}", "cmd", "search", "text", q);
	arg_into(r, req, "coll", "coll");
	if ((body = with_limit(r, req, status)))
		return body;
	return relay(r, req, status);
}

static json_t *route_board(struct request *r, unsigned *status)
{
	json_t *body, *req = json_pack("{s:s}", "cmd", "board");

	arg_into(r, req, "status", "status");
	arg_into(r, req, "topic", "topic");
	arg_into(r, req, "kind", "kind");
	if ((body = with_limit(r, req, status)))
		return body;
	return relay(r, req, status);
}

static json_t *route_show(struct request *r, unsigned *status)
{
	json_t *body = check_path(r, 1, 3, status);
	if (body)
		return body;
	return relay(r,
	             json_pack("{s:s, s:s, s:s, s:s}", "cmd", "show", "coll", r->seg[1], "owner",
	                       r->seg[2], "id", r->seg[3]),
	             status);
}

static json_t *route_match(struct request *r, unsigned *status)
{
	json_t *body = check_path(r, -1, 2, status);
	if (body)
		return body;
	json_t *req =
	    json_pack("{s:s, s:s, s:s}", "cmd", "match", "owner", r->seg[1], "id", r->seg[2]);
	if ((body = with_limit(r, req, status)))
		return body;
	return relay(r, req, status);
}

static json_t *route_status(struct request *r, unsigned *status)
{
	return relay(r, json_pack("{s:s}", "cmd", "status"), status);
}

static json_t *route_peers(struct request *r, unsigned *status)
{
	return relay(r, json_pack("{s:s}", "cmd", "peers"), status);
}

/* The change feed as server-sent events (http/stream.h). */
static json_t *changes_stream(struct request *r, unsigned *status)
{
	const char *last = MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, "Last-Event-ID");
	struct stream_source src = stream_source(r);
	json_t *error = NULL;

	if (arg(r, "wait") || arg(r, "limit"))
		return error_body(LOKET_E_BAD_REQUEST, status,
		                  "wait and limit do not apply to text/event-stream, which sends "
		                  "every change as it comes");
	/* A reconnecting EventSource sends the URL it began with and the id it got to. */
	const char *since = last && last[0] ? last : arg(r, "since");
	struct MHD_Response *resp =
	    stream_changes_new(&src, since, arg(r, "coll"), arg(r, "owner"), &error, status);
	return streamed(r, resp, error, status);
}

/*
 * The long poll asks loketd again every HTTP_POLL_MS until something
 * changed or the wait is over (at once when a write is made here): each
 * ask is a read of the ver index that finds nothing, and loketd's loop is
 * never held for this request.
 */
static json_t *route_changes(struct request *r, unsigned *status)
{
	json_t *body = NULL, *result = NULL;
	long wait_s, limit;
	char err[1024];
	const char *coll = arg(r, "coll");

	if (coll && op_check_coll(coll, err, sizeof(err)) < 0)
		return error_body(LOKET_E_BAD_REQUEST, status, "%s", err);
	if (accepts(r, "text/event-stream"))
		return changes_stream(r, status);
	if (arg_number(r, "wait", 0, HTTP_MAX_WAIT_S, &wait_s, &body, status) < 0 ||
	    arg_number(r, "limit", 1, HTTP_LIMIT_MAX, &limit, &body, status) < 0)
		return body;
	long long deadline = clock_ms() + (wait_s > 0 ? wait_s * 1000 : 0);
	json_t *since = arg(r, "since") ? json_string(arg(r, "since")) : json_null();
	int logged = 0;
	for (;;) {
		uint64_t seen = bell_count(r->server->bell);
		json_t *req = json_pack("{s:s, s:O}", "cmd", "changes", "since", since);
		arg_into(r, req, "coll", "coll");
		arg_into(r, req, "owner", "owner");
		if (limit > 0)
			json_object_set_new(req, "limit", json_integer(limit));
		int rc = call(r, req, &result, err, sizeof(err));
		if (rc != 0) {
			json_decref(since);
			return error_body(rc, status, "%s", err);
		}
		if (json_array_size(json_object_get(result, "changes")) > 0 ||
		    clock_ms() >= deadline)
			break;
		/* Nothing yet: go on from the cursor given, which may have passed filtered rows. */
		json_t *more = json_object_get(result, "more");
		json_decref(since);
		since = json_incref(json_object_get(result, "cursor"));
		if (json_is_true(more)) {
			json_decref(result);
			result = NULL;
			continue;
		}
		if (!logged++)
			log_debug("http: a long poll waits for changes after %s",
			          json_string_value(since));
		long long left = deadline - clock_ms();
		if (bell_wait(r->server->bell, seen,
		              left < HTTP_POLL_MS ? (long)left : HTTP_POLL_MS) < 0)
			break; /* loket-http stops: answer with the nothing found */
		json_decref(result);
		result = NULL;
	}
	json_decref(since);
	*status = 200;
	return result;
}

static json_t *route_openapi(struct request *r, unsigned *status)
{
	(void)r;
	json_error_t jerr;
	json_t *doc = json_loadb((const char *)openapi_json, openapi_json_len, 0, &jerr);

	if (!doc)
		return error_body(LOKET_E_MALFORMED, status,
		                  "the built-in openapi.json is invalid");
	*status = 200;
	return doc;
}

/* Splits url "/v1/a/b" into r->seg and finds its route; a status if none fits. */
static unsigned find_route(struct request *r, const char *url, const char *method)
{
	size_t n = 0;
	int path_known = 0;

	if (strncmp(url, "/v1/", 4) != 0)
		return MHD_HTTP_NOT_FOUND;
	for (const char *p = url + 4;;) {
		size_t len = strcspn(p, "/");
		if (len == 0 || len > HTTP_SEGMENT_MAX || n == HTTP_MAX_SEGMENTS)
			return MHD_HTTP_NOT_FOUND;
		memcpy(r->seg[n], p, len);
		r->seg[n++][len] = '\0';
		p += len;
		if (!*p)
			break;
		p++;
	}
	for (size_t i = 0; i < sizeof(routes) / sizeof(routes[0]); i++) {
		const struct route *rt = &routes[i];
		size_t k = 0;
		if (rt->n != n)
			continue;
		while (k < n &&
		       (!strcmp(rt->pattern[k], "*") || !strcmp(rt->pattern[k], r->seg[k])))
			k++;
		if (k < n)
			continue;
		path_known = 1;
		if (!strcmp(rt->method, method)) {
			r->route = rt;
			return 0;
		}
	}
	return path_known ? MHD_HTTP_METHOD_NOT_ALLOWED : MHD_HTTP_NOT_FOUND;
}

struct arg_check {
	const char *allowed;
	char bad[ERROR_QUOTE_SIZE];
};

static enum MHD_Result check_arg(void *cls, enum MHD_ValueKind kind, const char *key,
                                 const char *value)
{
	(void)kind;
	(void)value;
	struct arg_check *a = cls;
	size_t len = strlen(key);

	for (const char *p = a->allowed; *p;) {
		size_t n = strcspn(p, ",");
		if (n == len && !memcmp(p, key, n))
			return MHD_YES;
		p += n + (p[n] == ',');
	}
	error_quote_str(a->bad, sizeof(a->bad), key);
	return MHD_NO;
}

/* The token of "Authorization: Bearer TOKEN", or NULL. */
static const char *bearer(struct request *r, size_t *len)
{
	const char *h =
	    MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_AUTHORIZATION);
	if (!h || strncasecmp(h, "Bearer ", 7) != 0)
		return NULL;
	h += 7;
	while (*h == ' ')
		h++;
	*len = strlen(h);
	return *len > 0 && *len <= HTTP_TOKEN_MAX ? h : NULL;
}

static const char *peer_address(struct request *r, char *buf, size_t len)
{
	const union MHD_ConnectionInfo *ci =
	    MHD_get_connection_info(r->conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);

	snprintf(buf, len, "?");
	if (!ci || !ci->client_addr)
		return buf;
	if (ci->client_addr->sa_family == AF_INET)
		inet_ntop(AF_INET, &((const struct sockaddr_in *)ci->client_addr)->sin_addr, buf,
		          (socklen_t)len);
	else if (ci->client_addr->sa_family == AF_INET6)
		inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)ci->client_addr)->sin6_addr, buf,
		          (socklen_t)len);
	return buf;
}

/*
 * Takes the request from its client's bucket: the client is the token's
 * name for a valid token, else the peer's address, an IPv6 address by its
 * /64 (what one host holds). NULL if it may go on, else a 429's body.
 */
static json_t *rate_check(struct request *r, int token_ok, const char *method, const char *url,
                          unsigned *status)
{
	const union MHD_ConnectionInfo *ci =
	    MHD_get_connection_info(r->conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
	char client[RATELIMIT_KEY_MAX + 1], addr[INET6_ADDRSTRLEN + 1] = "?";
	int v6 = ci && ci->client_addr && ci->client_addr->sa_family == AF_INET6;

	if (v6) {
		struct in6_addr a = ((const struct sockaddr_in6 *)ci->client_addr)->sin6_addr;
		memset(a.s6_addr + 8, 0, 8);
		inet_ntop(AF_INET6, &a, addr, sizeof(addr));
	} else {
		peer_address(r, addr, sizeof(addr));
	}
	if (token_ok)
		snprintf(client, sizeof(client), "token %s", r->grant.name);
	else
		snprintf(client, sizeof(client), "address %s%s", addr, v6 ? "/64" : "");
	if (ratelimit_take(r->server->ratelimit, client, clock_ms(), &r->retry_after_s) == 0)
		return NULL;
	log_denial(r->server, "%s %s from %s: %s is over its rate", method, url, addr, client);
	return error_body(LOKET_E_RATE_LIMITED, status,
	                  "too many requests from %s; try again in %u s (Retry-After)", client,
	                  r->retry_after_s);
}

/*
 * The checks of a request's first call. NULL if it may go on, else the
 * body of the refusal (and its status).
 */
static json_t *admit(struct request *r, const char *url, const char *method, unsigned *status)
{
	char addr[INET6_ADDRSTRLEN + 1], q[ERROR_QUOTE_SIZE];
	size_t len = 0;
	const char *token = bearer(r, &len);
	int token_ok = token && tokens_check(r->server->tokens, token, len, &r->grant) == 0;
	json_t *refusal = rate_check(r, token_ok, method, url, status);

	if (refusal)
		return refusal;
	unsigned st = find_route(r, url, method);
	if (st == MHD_HTTP_NOT_FOUND)
		return error_body(LOKET_E_NOT_FOUND, status,
		                  "no such resource %s (see /v1/openapi.json)",
		                  error_quote_str(q, sizeof(q), url));
	if (st) {
		*status = st;
		return reply_error(LOKET_E_BAD_REQUEST, "this resource does not take that method");
	}
	struct arg_check ac = {.allowed = r->route->args};
	if (MHD_get_connection_values(r->conn, MHD_GET_ARGUMENT_KIND, check_arg, &ac) < 0 ||
	    ac.bad[0])
		return error_body(LOKET_E_BAD_REQUEST, status, "unknown query parameter %s%s%s",
		                  ac.bad, r->route->args[0] ? " (this resource takes " : "",
		                  r->route->args[0] ? r->route->args : "");
	if (r->route->access == ACCESS_PUBLIC)
		return NULL;
	if (!token_ok) {
		log_denial(r->server, "%s %s from %s: %s", method, url,
		           peer_address(r, addr, sizeof(addr)),
		           token ? "unknown token" : "no bearer token");
		*status = MHD_HTTP_UNAUTHORIZED;
		return reply_error(LOKET_E_DENIED,
		                   token ? "the bearer token is not valid"
		                         : "give a bearer token: Authorization: Bearer TOKEN");
	}
	if (r->route->access == ACCESS_WRITE && !tokens_may_write(&r->grant, r->seg[1])) {
		log_denial(r->server, "%s %s from %s: token %s (scope %s) may not write %s", method,
		           url, peer_address(r, addr, sizeof(addr)), r->grant.name, r->grant.scope,
		           r->seg[1]);
		return error_body(LOKET_E_DENIED, status,
		                  "token %s (scope %s) may not write collection %s", r->grant.name,
		                  r->grant.scope, r->seg[1]);
	}
	if (r->route->access == ACCESS_BULK && strncmp(r->grant.scope, "write:", 6) != 0) {
		log_denial(r->server, "%s %s from %s: token %s (scope %s) may not write", method,
		           url, peer_address(r, addr, sizeof(addr)), r->grant.name, r->grant.scope);
		return error_body(LOKET_E_DENIED, status, "token %s (scope %s) may not write",
		                  r->grant.name, r->grant.scope);
	}
	const char *cl =
	    MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
	unsigned long long max = r->route->access == ACCESS_WRITE ? HTTP_MAX_BODY : 0;
	if (r->route->access != ACCESS_BULK && cl && strtoull(cl, NULL, 10) > max)
		return max ? error_body(LOKET_E_TOO_BIG, status,
		                        "the body is larger than %llu bytes", max)
		           : error_body(LOKET_E_TOO_BIG, status, "this resource takes no body");
	if (r->route->access == ACCESS_BULK)
		r->bulk = bulk_new(r->server->pool, r->server->bell, &r->grant);
	log_debug("http: %s %s by %s", method, url, r->grant.name);
	return NULL;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
                                  const char *method, const char *version, const char *upload_data,
                                  size_t *upload_data_size, void **con_cls)
{
	(void)version;
	struct request *r = *con_cls;
	unsigned status = 500;

	if (!r) {
		r = calloc(1, sizeof(*r));
		if (!r)
			abort();
		r->server = cls;
		r->conn = conn;
		const union MHD_ConnectionInfo *ci =
		    MHD_get_connection_info(conn, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
		r->guarded = ci ? ci->socket_context : NULL;
		*con_cls = r;
		json_t *refusal = admit(r, url, method, &status);
		if (refusal)
			return send_json(r, status, refusal);
		/* A bulk body is read while it is applied, at loketd's pace, not by a deadline. */
		if (r->bulk)
			guard_hold(r->server->guard, r->guarded);
		return MHD_YES;
	}
	if (r->answered) {
		/* Refused before its body: what still comes is dropped. */
		*upload_data_size = 0;
		return MHD_YES;
	}
	if (*upload_data_size > 0) {
		size_t n = *upload_data_size;
		*upload_data_size = 0;
		if (r->bulk) {
			bulk_feed(r->bulk, upload_data, n);
			return MHD_YES;
		}
		/* Past the bound the rest is read and dropped: the answer comes at its end. */
		if (r->too_big || r->route->access != ACCESS_WRITE ||
		    r->body_len + n > HTTP_MAX_BODY) {
			r->too_big = 1;
			return MHD_YES;
		}
		char *grown = realloc(r->body, r->body_len + n);
		if (!grown)
			abort();
		r->body = grown;
		memcpy(r->body + r->body_len, upload_data, n);
		r->body_len += n;
		return MHD_YES;
	}
	if (r->too_big)
		return send_json(
		    r, reply_status(LOKET_E_TOO_BIG),
		    reply_error(LOKET_E_TOO_BIG, r->route->access == ACCESS_WRITE
		                                     ? "the body is larger than 1048576 bytes"
		                                     : "this resource takes no body"));
	guard_hold(r->server->guard, r->guarded);
	json_t *body = r->route->fn(r, &status);
	if (r->stream) {
		enum MHD_Result rc = MHD_queue_response(conn, MHD_HTTP_OK, r->stream);
		MHD_destroy_response(r->stream);
		r->stream = NULL;
		r->answered = 1;
		return rc;
	}
	return send_json(r, status, body);
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
	(void)cls;
	(void)conn;
	(void)toe;
	struct request *r = *con_cls;

	if (!r)
		return;
	guard_next(r->server->guard, r->guarded);
	bulk_free(r->bulk);
	free(r->body);
	free(r);
	*con_cls = NULL;
}

/* Each connection is known to the guard from its start to its close. */
static void on_connection(void *cls, struct MHD_Connection *conn, void **socket_context,
                          enum MHD_ConnectionNotificationCode code)
{
	struct server *s = cls;

	if (code == MHD_CONNECTION_NOTIFY_STARTED) {
		const union MHD_ConnectionInfo *ci =
		    MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CONNECTION_FD);
		*socket_context = ci ? guard_add(s->guard, ci->connect_fd) : NULL;
	} else if (code == MHD_CONNECTION_NOTIFY_CLOSED) {
		guard_remove(s->guard, *socket_context);
		*socket_context = NULL;
	}
}

static void on_mhd_log(void *cls, const char *fmt, va_list ap)
{
	(void)cls;
	char line[512];

	vsnprintf(line, sizeof(line), fmt, ap);
	line[strcspn(line, "\n")] = '\0';
	log_debug("http: libmicrohttpd: %s", line);
}

/* ADDRESS:PORT into a socket address; config.c has checked the form. */
static int parse_listen(const char *listen, struct sockaddr_storage *sa, char *err, size_t errlen)
{
	char host[64];
	const char *colon = strrchr(listen, ':');
	size_t hlen = colon ? (size_t)(colon - listen) : 0;
	unsigned long port = colon ? strtoul(colon + 1, NULL, 10) : 0;

	memset(sa, 0, sizeof(*sa));
	if (!colon || hlen == 0 || hlen >= sizeof(host) || port == 0 || port > 65535)
		goto bad;
	memcpy(host, listen, hlen);
	host[hlen] = '\0';
	if (!strcmp(host, "localhost"))
		snprintf(host, sizeof(host), "127.0.0.1");
	if (host[0] == '[' && host[hlen - 1] == ']') {
		struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)sa;
		host[hlen - 1] = '\0';
		s6->sin6_family = AF_INET6;
		s6->sin6_port = htons((uint16_t)port);
		if (inet_pton(AF_INET6, host + 1, &s6->sin6_addr) != 1)
			goto bad;
		return 0;
	}
	struct sockaddr_in *s4 = (struct sockaddr_in *)sa;
	s4->sin_family = AF_INET;
	s4->sin_port = htons((uint16_t)port);
	if (inet_pton(AF_INET, host, &s4->sin_addr) != 1)
		goto bad;
	return 0;
bad:
	snprintf(err, errlen, "invalid [http] listen \"%s\" (expected ADDRESS:PORT)", listen);
	return -EINVAL;
}

int server_start(const struct server_options *o, struct server **out, char *err, size_t errlen)
{
	struct sockaddr_storage sa;
	struct server *s;
	int rc;

	*out = NULL;
	if ((rc = parse_listen(o->listen, &sa, err, errlen)) < 0)
		return rc;
	s = calloc(1, sizeof(*s));
	if (!s)
		abort();
	pthread_mutex_init(&s->log_lock, NULL);
	if ((rc = ctl_pool_new(o->data_dir, &s->pool, err, errlen)) < 0) {
		server_stop(s);
		return rc;
	}
	s->tokens = tokens_new(o->tokens_path);
	s->bell = bell_new();
	s->ratelimit = ratelimit_new(o->rate, o->burst);
	/*
	 * A quiet event stream sends a comment every half timeout (at most 15 s):
	 * libmicrohttpd drops a stream whose callback kept it silent for longer
	 * than timeout, and proxies drop quiet connections too.
	 */
	s->heartbeat_ms = o->timeout_s * 500u < 15000u ? o->timeout_s * 500u : 15000u;
	s->stream_max_s = o->stream_max_s;
	s->guard = guard_new(o->timeout_s);
	s->watch = watch_new(s->pool, s->bell);
	if (!s->guard || !s->watch) {
		snprintf(err, errlen, "cannot start the watchdog or watch thread");
		server_stop(s);
		return -EAGAIN;
	}
	unsigned flags = MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD |
	                 MHD_USE_POLL | MHD_USE_ERROR_LOG |
	                 (sa.ss_family == AF_INET6 ? MHD_USE_IPv6 : 0);
	s->mhd = MHD_start_daemon(
	    flags, 0, NULL, NULL, on_request, s, MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&sa,
	    MHD_OPTION_CONNECTION_LIMIT, o->connections, MHD_OPTION_PER_IP_CONNECTION_LIMIT,
	    o->client_connections, MHD_OPTION_CONNECTION_TIMEOUT, o->timeout_s,
	    MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)HTTP_MEMORY_LIMIT,
	    MHD_OPTION_NOTIFY_COMPLETED, on_completed, s, MHD_OPTION_NOTIFY_CONNECTION,
	    on_connection, s, MHD_OPTION_EXTERNAL_LOGGER, on_mhd_log, s,
	    MHD_OPTION_STRICT_FOR_CLIENT, 1, MHD_OPTION_END);
	if (!s->mhd) {
		snprintf(err, errlen, "cannot listen on %s: %s", o->listen,
		         errno ? strerror(errno) : "libmicrohttpd refused to start");
		server_stop(s);
		return -EADDRINUSE;
	}
	*out = s;
	return 0;
}

void server_stop(struct server *s)
{
	if (!s)
		return;
	if (s->bell)
		bell_close(s->bell); /* long polls and streams end, so that the stop is not held */
	if (s->mhd)
		MHD_stop_daemon(s->mhd);
	watch_free(s->watch); /* before the bell and the pool it uses */
	guard_free(s->guard);
	ratelimit_free(s->ratelimit);
	bell_free(s->bell);
	tokens_free(s->tokens);
	ctl_pool_free(s->pool);
	pthread_mutex_destroy(&s->log_lock);
	free(s);
}
