/*
 * control: serves local clients on ipc://DATA/control.sock.
 *
 * Frames: a REQ client's message arrives on the ROUTER as [identity, empty,
 * request] and the reply goes back as [identity, empty, reply]. A message
 * framed otherwise gets an error reply framed as it came (without the
 * delimiter when it had none), so that every request that can be routed
 * is answered. What a client can make the daemon hold is bounded by the
 * socket: ZMQ_MAXMSGSIZE (a frame beyond it ends the connection), and the
 * high-water marks (requests waiting in, replies waiting unread); a reply
 * the client leaves unread beyond those is dropped and logged. Each read
 * runs under a time budget (store_budget_begin), and one request is served
 * per loop iteration, so that sync and ZAP run between two requests.
 *
 * Most handlers answer at once. One that answers later (the backup) keeps
 * its client's identity frame until control_answer; that client's next
 * requests are parked behind it, a bounded few, and served in order once
 * the answer has gone, while every other client is served as usual.
 */
#include "daemon/control.h"

#include <assert.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <zmq.h>

#include "common/log.h"
#include "common/paths.h"
#include "daemon/control_board.h"
#include "daemon/control_feed.h"
#include "daemon/put_ops.h"
#include "desk/broker.h"
#include "desk/directory.h"
#include "desk/schema.h"
#include "proto/error.h"
#include "proto/limits.h"
#include "proto/request.h"
#include "proto/value.h"

#define CONTROL_MAX_FRAMES    4
#define CONTROL_DEFAULT_LIMIT 100
/* A client that leaves its replies unread is logged at most this often. */
#define CONTROL_LOG_EVERY_MS 10000

static int handle_status(void *data, const json_t *req, json_t **result, char *err, size_t errlen);
static int handle_get(void *data, const json_t *req, json_t **result, char *err, size_t errlen);
static int handle_list(void *data, const json_t *req, json_t **result, char *err, size_t errlen);
static int handle_search(void *data, const json_t *req, json_t **result, char *err, size_t errlen);
static int handle_log(void *data, const json_t *req, json_t **result, char *err, size_t errlen);
static int handle_rebuild(void *data, const json_t *req, json_t **result, char *err, size_t errlen);
static int handle_show(void *data, const json_t *req, json_t **result, char *err, size_t errlen);
static int handle_experts(void *data, const json_t *req, json_t **result, char *err, size_t errlen);
static int handle_match(void *data, const json_t *req, json_t **result, char *err, size_t errlen);
static int handle_query(void *data, const json_t *req, json_t **result, char *err, size_t errlen);
static int handle_put_unread(void *data, const json_t *req, json_t **result, char *err,
                             size_t errlen);

static const struct {
	const char *name;
	control_handler handler;
} builtin_commands[] = {
    {"status", handle_status}, {"get", handle_get},          {"list", handle_list},
    {"search", handle_search}, {"log", handle_log},          {"rebuild", handle_rebuild},
    {"board", control_board},  {"show", handle_show},        {"experts", handle_experts},
    {"match", handle_match},   {"query", handle_query},      {"put", handle_put_unread},
    {"page", control_page},    {"changes", control_changes},
};

int control_get_string(const json_t *req, const char *key, int required, const char **out,
                       char *err, size_t errlen)
{
	const json_t *v = json_object_get(req, key);
	char q[ERROR_QUOTE_SIZE];
	*out = NULL;
	if (!v || json_is_null(v)) {
		if (!required)
			return 0;
		snprintf(err, errlen, "request lacks %s", error_quote_str(q, sizeof(q), key));
		return LOKET_E_BAD_REQUEST;
	}
	if (!json_is_string(v) || json_string_length(v) == 0 ||
	    strlen(json_string_value(v)) != json_string_length(v)) {
		snprintf(err, errlen, "%s must be a non-empty string",
		         error_quote_str(q, sizeof(q), key));
		return LOKET_E_BAD_REQUEST;
	}
	*out = json_string_value(v);
	return 0;
}

static int get_limit(const json_t *req, long fallback, long *out, char *err, size_t errlen)
{
	const json_t *v = json_object_get(req, "limit");
	*out = fallback;
	if (!v || json_is_null(v))
		return 0;
	if (!json_is_integer(v) || json_integer_value(v) < 1 || json_integer_value(v) > 100000) {
		snprintf(err, errlen, "\"limit\" must be an integer from 1 to 100000");
		return LOKET_E_BAD_REQUEST;
	}
	*out = (long)json_integer_value(v);
	return 0;
}

static int directory_failed(struct node *n, int rc, char *err, size_t errlen);

static int store_failed(struct node *n, int rc, char *err, size_t errlen)
{
	if (rc == LOKET_E_NOT_FOUND)
		snprintf(err, errlen, "no such member");
	else
		snprintf(err, errlen, "store: %s (%s)", loket_strerror(rc), store_errmsg(n->store));
	return rc;
}

/* A collection the desk does not know holds nothing: say so instead of answering []. */
static int known_coll(const char *coll, char *err, size_t errlen)
{
	if (!coll || schema_check_coll(coll, err, errlen) == 0)
		return 0;
	return LOKET_E_BAD_REQUEST;
}

static int handle_status(void *data, const json_t *req, json_t **result, char *err, size_t errlen)
{
	(void)req;
	struct node *n = data;
	int rc = node_status(n, result);
	return rc ? store_failed(n, rc, err, errlen) : 0;
}

/*
 * put is read straight from the request's msgpack (daemon/put_ops.h): a
 * bulk import sends thousands of ops a request, and a JSON tree of them
 * cost more than signing and storing them.
 */
static int handle_put(struct node *n, const uint8_t *ops, size_t len, json_t **result, char *err,
                      size_t errlen)
{
	struct put_ops po;
	long index = -1;
	int rc = put_ops_parse(&po, ops, len, &index, err, errlen);
	if (rc == 0)
		rc = node_put(n, po.ops, po.n, result, &index, err, errlen);
	put_ops_release(&po);
	if (rc != 0 && index >= 0)
		*result = json_pack("{s:I}", "index", (json_int_t)index);
	return rc;
}

/*
 * A put request the msgpack reader would not take (more keys than a put
 * has, or one twice) reaches the table as JSON: it is refused here.
 */
static int handle_put_unread(void *data, const json_t *req, json_t **result, char *err,
                             size_t errlen)
{
	(void)data;
	(void)req;
	(void)result;
	snprintf(err, errlen, "a put request is {\"cmd\":\"put\",\"ops\":[...]}, each key once");
	return LOKET_E_BAD_REQUEST;
}

/* 1 if p is a put request, with the bytes of its "ops". */
static int is_put(const uint8_t *p, size_t len, const uint8_t **ops, size_t *ops_len)
{
	return len <= LOKET_MAX_MESSAGE_BYTES && put_ops_find(p, len, ops, ops_len);
}

static int handle_get(void *data, const json_t *req, json_t **result, char *err, size_t errlen)
{
	struct node *n = data;
	const char *coll, *id, *owner;
	int rc = control_get_string(req, "coll", 1, &coll, err, errlen);
	if (rc == 0)
		rc = control_get_string(req, "id", 1, &id, err, errlen);
	if (rc == 0)
		rc = control_get_string(req, "owner", 0, &owner, err, errlen);
	if (rc == 0)
		rc = known_coll(coll, err, errlen);
	if (rc != 0)
		return rc;
	rc = store_get(n->store, coll, id, owner, result);
	return rc ? directory_failed(n, rc, err, errlen) : 0;
}

static int handle_list(void *data, const json_t *req, json_t **result, char *err, size_t errlen)
{
	struct node *n = data;
	const char *coll, *owner;
	long limit;
	int rc = control_get_string(req, "coll", 1, &coll, err, errlen);
	if (rc == 0)
		rc = control_get_string(req, "owner", 0, &owner, err, errlen);
	if (rc == 0)
		rc = get_limit(req, CONTROL_DEFAULT_LIMIT, &limit, err, errlen);
	if (rc == 0)
		rc = known_coll(coll, err, errlen);
	if (rc != 0)
		return rc;
	rc = store_list(n->store, coll, owner, limit, result);
	return rc ? directory_failed(n, rc, err, errlen) : 0;
}

static int handle_search(void *data, const json_t *req, json_t **result, char *err, size_t errlen)
{
	struct node *n = data;
	const char *text, *coll;
	long limit;
	int rc = control_get_string(req, "text", 1, &text, err, errlen);
	if (rc == 0)
		rc = control_get_string(req, "coll", 0, &coll, err, errlen);
	if (rc == 0)
		rc = get_limit(req, 20, &limit, err, errlen);
	if (rc == 0)
		rc = known_coll(coll, err, errlen);
	if (rc != 0)
		return rc;
	rc = store_search(n->store, text, coll, limit, result);
	return rc ? directory_failed(n, rc, err, errlen) : 0;
}

static int handle_log(void *data, const json_t *req, json_t **result, char *err, size_t errlen)
{
	struct node *n = data;
	const char *origin;
	long limit;
	int rc = control_get_string(req, "origin", 0, &origin, err, errlen);
	if (rc == 0)
		rc = get_limit(req, 20, &limit, err, errlen);
	if (rc != 0)
		return rc;
	rc = store_log(n->store, origin, limit, result);
	return rc ? directory_failed(n, rc, err, errlen) : 0;
}

static int handle_rebuild(void *data, const json_t *req, json_t **result, char *err, size_t errlen)
{
	(void)req;
	struct node *n = data;
	int rc = store_rebuild(n->store);
	if (rc != 0)
		return store_failed(n, rc, err, errlen);
	json_t *status;
	rc = store_status(n->store, &status);
	if (rc != 0)
		return store_failed(n, rc, err, errlen);
	*result = json_pack("{s:O, s:O}", "entities", json_object_get(status, "entities"), "digest",
	                    json_object_get(status, "digest"));
	json_decref(status);
	log_info("control: state rebuilt from the log");
	return 0;
}

/* A directory read failed: the store's sentence says which entity or member. */
static int directory_failed(struct node *n, int rc, char *err, size_t errlen)
{
	if (rc == LOKET_E_NOT_FOUND || rc == LOKET_E_BAD_REQUEST || rc == LOKET_E_TOO_BIG)
		snprintf(err, errlen, "%s", store_errmsg(n->store));
	else
		snprintf(err, errlen, "store: %s (%s)", loket_strerror(rc), store_errmsg(n->store));
	return rc;
}

static int handle_show(void *data, const json_t *req, json_t **result, char *err, size_t errlen)
{
	struct node *n = data;
	const char *coll, *owner, *id;
	int rc = control_get_string(req, "coll", 1, &coll, err, errlen);
	if (rc == 0)
		rc = control_get_string(req, "owner", 1, &owner, err, errlen);
	if (rc == 0)
		rc = control_get_string(req, "id", 1, &id, err, errlen);
	if (rc == 0)
		rc = known_coll(coll, err, errlen);
	if (rc != 0)
		return rc;
	rc = directory_show(n->store, coll, owner, id, result);
	return rc ? directory_failed(n, rc, err, errlen) : 0;
}

static int handle_experts(void *data, const json_t *req, json_t **result, char *err, size_t errlen)
{
	struct node *n = data;
	const char *topic, *org;
	long limit;
	int rc = control_get_string(req, "topic", 0, &topic, err, errlen);
	if (rc == 0)
		rc = control_get_string(req, "org", 0, &org, err, errlen);
	if (rc == 0)
		rc = get_limit(req, CONTROL_DEFAULT_LIMIT, &limit, err, errlen);
	if (rc != 0)
		return rc;
	rc = directory_experts(n->store, topic, org, limit, result);
	return rc ? directory_failed(n, rc, err, errlen) : 0;
}

static int handle_match(void *data, const json_t *req, json_t **result, char *err, size_t errlen)
{
	struct node *n = data;
	const char *owner, *id;
	long limit;
	int rc = control_get_string(req, "owner", 1, &owner, err, errlen);
	if (rc == 0)
		rc = control_get_string(req, "id", 1, &id, err, errlen);
	if (rc == 0)
		rc = get_limit(req, 10, &limit, err, errlen);
	if (rc != 0)
		return rc;
	rc = broker_match(n->store, owner, id, limit, result);
	return rc ? directory_failed(n, rc, err, errlen) : 0;
}

/*
 * Queries share a budget of loop time, a bucket of STORE_QUERY_MAX_MS that
 * fills at CONTROL_QUERY_SHARE ms per second: one query may run its full
 * time, but queries one after the other (from any number of clients) hold
 * the loop at most about a quarter of the time, and are refused with a retry
 * once the bucket is empty.
 */
#define CONTROL_QUERY_SHARE 250
#define CONTROL_QUERY_MIN   50 /* ms the bucket must hold for a query to start */

static uint64_t mono_ms(void)
{
	return uv_hrtime() / 1000000u;
}

static int handle_query(void *data, const json_t *req, json_t **result, char *err, size_t errlen)
{
	struct control *c = data;
	struct node *n = c->node;
	const char *sql;
	long limit;
	int rc = control_get_string(req, "sql", 1, &sql, err, errlen);
	if (rc == 0)
		rc = get_limit(req, STORE_QUERY_MAX_ROWS, &limit, err, errlen);
	if (rc != 0)
		return rc;
	uint64_t now = mono_ms();
	if (!c->query_at) {
		c->query_ms = STORE_QUERY_MAX_MS;
	} else {
		c->query_ms += (double)(now - c->query_at) * CONTROL_QUERY_SHARE / 1000.0;
		if (c->query_ms > STORE_QUERY_MAX_MS)
			c->query_ms = STORE_QUERY_MAX_MS;
	}
	c->query_at = now;
	if (c->query_ms < CONTROL_QUERY_MIN) {
		snprintf(err, errlen,
		         "queries have used their share of loketd's time; retry in %d ms",
		         (int)((CONTROL_QUERY_MIN - c->query_ms) * 1000 / CONTROL_QUERY_SHARE) + 1);
		return LOKET_E_UNAVAILABLE;
	}
	rc = store_query_for(n->store, sql, limit, (int)c->query_ms, result);
	c->query_ms -= (double)(mono_ms() - now);
	if (c->query_ms < 0)
		c->query_ms = 0;
	if (rc == LOKET_E_BAD_REQUEST)
		log_info("control: query refused: %s", store_errmsg(n->store));
	return rc ? directory_failed(n, rc, err, errlen) : 0;
}

static const struct control_command *control_find(const struct control *c, const char *name)
{
	for (size_t i = 0; i < c->n_commands; i++)
		if (strcmp(c->commands[i].name, name) == 0)
			return &c->commands[i];
	return NULL;
}

/*
 * The reads that run under the time budget of LOKET_MAX_READ_MS; rebuild
 * runs under none but stops for a stop signal (a rebuild undone loses
 * nothing: the log is all there). page and changes are not among them:
 * their work is bounded by count already (1,000 entities, 20,000 rows
 * examined, 1 MiB), and a partner paging through a collection on a busy
 * machine should not be told to narrow down what cannot be narrowed.
 */
static int read_budget(const char *cmd)
{
	static const char *const reads[] = {"get",   "list", "search",  "log",
	                                    "board", "show", "experts", "match"};
	for (size_t i = 0; i < sizeof(reads) / sizeof(reads[0]); i++)
		if (strcmp(reads[i], cmd) == 0)
			return LOKET_MAX_READ_MS;
	return strcmp(cmd, "rebuild") == 0 ? 0 : -1;
}

/* Runs a command's handler under its budget; a read stopped says why instead. */
static int run_command(struct control *c, const struct control_command *command, const char *cmd,
                       const json_t *req, json_t **result, char *err, size_t errlen)
{
	int ms = read_budget(cmd);
	if (ms < 0)
		return command->handler(command->data, req, result, err, errlen);
	store_budget_begin(c->node->store, ms);
	int rc = command->handler(command->data, req, result, err, errlen);
	int ran_out = store_budget_end(c->node->store);
	if (rc == 0 || ran_out == STORE_BUDGET_KEPT)
		return rc;
	json_decref(*result);
	*result = NULL;
	if (ran_out == STORE_BUDGET_STOPPED) {
		snprintf(err, errlen, "%s was stopped: loketd is stopping", cmd);
		return LOKET_E_UNAVAILABLE;
	}
	snprintf(err, errlen,
	         "the %s ran longer than %d ms and was stopped; narrow it down (fewer or longer "
	         "words, a collection, a lower limit)",
	         cmd, ms);
	return LOKET_E_TOO_BIG;
}

/*
 * Whether the same request may succeed later: only while this node waits
 * to take back its own chain (writes refused for now), or is stopping.
 */
static int retry_helps(int rc)
{
	return rc == LOKET_E_UNAVAILABLE;
}

/* {"ok":false,"error","code","retry"}: every error reply has this shape. */
static json_t *error_reply(int rc, const char *err)
{
	json_t *reply = json_pack("{s:b, s:s, s:i, s:b}", "ok", 0, "error",
	                          err && err[0] ? err : loket_strerror(rc), "code", rc, "retry",
	                          retry_helps(rc));
	if (!reply)
		abort();
	return reply;
}

/* The reply to a request: its result, or the error with the members of result added. */
static json_t *control_reply(struct control *c, int rc, json_t *result, const char *err,
                             int counted)
{
	json_t *reply;

	if (rc == 0) {
		reply = json_pack("{s:b, s:o}", "ok", 1, "result", result ? result : json_null());
		if (!reply)
			abort();
		return reply;
	}
	if (counted)
		c->bad_requests++;
	reply = error_reply(rc, err);
	if (json_is_object(result))
		json_object_update_missing(reply, result);
	json_decref(result);
	return reply;
}

/* Runs one decoded request and builds its reply; NULL when its handler answers later. */
static json_t *control_run(struct control *c, const uint8_t *p, size_t len)
{
	char err[1024] = "",
	     q[ERROR_QUOTE_SIZE]; /* a refused write names the record and what it waits for */
	json_t *req = NULL, *result = NULL, *reply;
	const char *cmd = "";
	const struct control_command *command = NULL;
	const uint8_t *ops;
	size_t ops_len;
	int rc;
	if (is_put(p, len, &ops, &ops_len)) {
		cmd = "put";
		rc = handle_put(c->node, ops, ops_len, &result, err, sizeof(err));
	} else {
		rc = request_decode(p, len, &req, err, sizeof(err));
		if (rc == 0)
			cmd = json_string_value(json_object_get(req, "cmd"));
		command = rc == 0 ? control_find(c, cmd) : NULL;
		if (rc == 0 && !command) {
			snprintf(err, sizeof(err), "unknown command %s",
			         error_quote_str(q, sizeof(q), cmd));
			rc = LOKET_E_BAD_REQUEST;
		}
		if (rc == 0)
			rc = run_command(c, command, cmd, req, &result, err, sizeof(err));
	}
	if (rc == CONTROL_LATER) {
		json_decref(req);
		return NULL;
	}
	if (rc != 0)
		log_debug("control: %s: %s", cmd, err);
	reply = control_reply(c, rc, result, err, rc == LOKET_E_BAD_REQUEST || !command);
	json_decref(req);
	return reply;
}

/* Receives the rest of a multipart message so that the next one starts clean; counts it. */
static size_t discard_rest(void *zsock)
{
	int more = 1;
	size_t size = sizeof(more), n = 0;
	while (zmq_getsockopt(zsock, ZMQ_RCVMORE, &more, &size) == 0 && more) {
		zmq_msg_t m;
		zmq_msg_init(&m);
		if (zmq_msg_recv(&m, zsock, ZMQ_DONTWAIT) < 0) {
			zmq_msg_close(&m);
			break;
		}
		zmq_msg_close(&m);
		n++;
	}
	return n;
}

/* Encodes a reply (taken); one too big for a message becomes an error saying so. */
static void encode_reply(struct control *c, json_t *reply, msgpack_sbuffer *out)
{
	int rc = value_encode_message(reply, out);
	json_decref(reply);
	/* A result too big for one message (a huge list, a big entity) is an error, not a crash. */
	if (rc != 0) {
		c->bad_requests++;
		log_warn("control: a reply could not be encoded (%s); sent an error instead",
		         loket_strerror(rc));
		reply = error_reply(rc, rc == LOKET_E_TOO_BIG
		                            ? "the reply would exceed the size of one message;"
		                              " ask for less (a lower --limit)"
		                            : "the reply could not be encoded");
		if (value_encode_message(reply, out) != 0)
			abort();
		json_decref(reply);
	}
}

/*
 * Sends [identity, (empty,) reply] (reply taken; the identity message is
 * used up). The socket is ROUTER_MANDATORY, so a client whose replies wait
 * unread up to the high-water mark makes the send fail at once (EAGAIN)
 * instead of queueing without bound: the reply is dropped, counted, and
 * logged once per CONTROL_LOG_EVERY_MS. A client gone meanwhile
 * (EHOSTUNREACH) needs no reply.
 */
static void control_send(struct control *c, zmq_msg_t *identity, int delimiter, json_t *reply)
{
	msgpack_sbuffer out;
	msgpack_sbuffer_init(&out);
	encode_reply(c, reply, &out);
	int rc = zmq_msg_send(identity, c->zsock, ZMQ_SNDMORE | ZMQ_DONTWAIT);
	if (rc >= 0 && delimiter)
		rc = zmq_send(c->zsock, "", 0, ZMQ_SNDMORE | ZMQ_DONTWAIT);
	if (rc >= 0)
		rc = zmq_send(c->zsock, out.data, out.size, ZMQ_DONTWAIT);
	msgpack_sbuffer_destroy(&out);
	zwatch_kick(&c->watch);
	if (rc >= 0 || zmq_errno() != EAGAIN)
		return;
	c->dropped_replies++;
	uint64_t now = uv_now(c->watch.poll.loop);
	if (c->dropped_logged_at == 0 || now - c->dropped_logged_at >= CONTROL_LOG_EVERY_MS) {
		log_warn("control: a client leaves its replies unread (%d waiting); dropped %lu "
		         "replies so far",
		         LOKET_CONTROL_SNDHWM, c->dropped_replies);
		c->dropped_logged_at = now;
	}
}

/* Runs a request of the client identity names and answers it, now or (CONTROL_LATER) later. */
static void control_serve(struct control *c, zmq_msg_t *identity, const uint8_t *p, size_t len)
{
	json_t *reply = control_run(c, p, len);

	if (reply) {
		control_send(c, identity, 1, reply);
		return;
	}
	/* One request at a time waits: a module answering later refuses a second. */
	assert(!c->later);
	zmq_msg_init(&c->later_id);
	zmq_msg_move(&c->later_id, identity);
	c->later = 1;
}

static int same_client(zmq_msg_t *a, zmq_msg_t *b)
{
	return zmq_msg_size(a) == zmq_msg_size(b) &&
	       memcmp(zmq_msg_data(a), zmq_msg_data(b), zmq_msg_size(a)) == 0;
}

/* Holds a request back behind its client's request that waits for control_answer. */
static void control_park(struct control *c, zmq_msg_t *identity, zmq_msg_t *req)
{
	if (c->n_parked == CONTROL_MAX_PARKED) {
		c->bad_requests++;
		log_warn("control: dropped a request: %d of this client's wait already behind its"
		         " request that is still running",
		         CONTROL_MAX_PARKED);
		return;
	}
	size_t i = (c->parked_first + c->n_parked++) % CONTROL_MAX_PARKED;
	zmq_msg_init(&c->parked[i].id);
	zmq_msg_init(&c->parked[i].req);
	zmq_msg_move(&c->parked[i].id, identity);
	zmq_msg_move(&c->parked[i].req, req);
}

/* The requests held back, in order, until one of them is answered later in its turn. */
static void control_unpark(struct control *c)
{
	while (!c->later && c->n_parked > 0) {
		size_t i = c->parked_first;
		c->parked_first = (i + 1) % CONTROL_MAX_PARKED;
		c->n_parked--;
		control_serve(c, &c->parked[i].id, zmq_msg_data(&c->parked[i].req),
		              zmq_msg_size(&c->parked[i].req));
		zmq_msg_close(&c->parked[i].id);
		zmq_msg_close(&c->parked[i].req);
	}
}

/*
 * What is wrong with the frames of a message, or NULL: [identity, empty,
 * request] is a request; anything else is answered with why.
 */
static const char *misframed(size_t n, size_t extra, int delimiter, char *buf, size_t buflen)
{
	size_t payload = n - 1 - (delimiter ? 1 : 0) + extra;
	if (!delimiter)
		return "a request comes after an empty delimiter frame, which this one lacks "
		       "(a DEALER sends it before each request; REQ does so itself)";
	if (payload == 1)
		return NULL;
	if (payload == 0)
		return "the empty delimiter frame came without a request after it";
	snprintf(buf, buflen, "a request is one frame; this one came in %zu frames", payload);
	return buf;
}

static void control_on_readable(struct zwatch *w, void *zsock, void *data)
{
	(void)w; /* control_send kicks it */
	struct control *c = data;
	zmq_msg_t frames[CONTROL_MAX_FRAMES];
	size_t n = 0, extra = 0;
	int more = 1;
	char why[96];
	for (; n < CONTROL_MAX_FRAMES && more; n++) {
		zmq_msg_init(&frames[n]);
		if (zmq_msg_recv(&frames[n], zsock, ZMQ_DONTWAIT) < 0) {
			zmq_msg_close(&frames[n]);
			goto done;
		}
		more = zmq_msg_more(&frames[n]);
	}
	if (more)
		extra = discard_rest(zsock);
	c->requests++;
	/* frames[0] is the identity the ROUTER put in front: always there. */
	if (n < 1)
		goto done;
	int delimiter = n >= 2 && zmq_msg_size(&frames[1]) == 0;
	const char *bad = misframed(n, extra, delimiter, why, sizeof(why));
	if (bad) {
		c->bad_requests++;
		log_debug("control: %s", bad);
		control_send(c, &frames[0], delimiter, error_reply(LOKET_E_BAD_REQUEST, bad));
	} else if (zmq_msg_size(&frames[2]) > LOKET_MAX_MESSAGE_BYTES) {
		/* Read whole so that it can be answered; ZMQ_MAXMSGSIZE bounds it. */
		char err[128];
		c->bad_requests++;
		snprintf(err, sizeof(err), "request of %zu bytes is over the limit of %u bytes",
		         zmq_msg_size(&frames[2]), LOKET_MAX_MESSAGE_BYTES);
		log_debug("control: %s", err);
		control_send(c, &frames[0], delimiter, error_reply(LOKET_E_TOO_BIG, err));
	} else if (c->later && same_client(&frames[0], &c->later_id)) {
		control_park(c, &frames[0], &frames[2]);
	} else {
		control_serve(c, &frames[0], zmq_msg_data(&frames[2]), zmq_msg_size(&frames[2]));
	}
done:
	for (size_t i = 0; i < n; i++)
		zmq_msg_close(&frames[i]);
}

void control_answer(struct control *c, int rc, json_t *result_take, const char *err)
{
	if (!c->later) {
		json_decref(result_take);
		return;
	}
	if (rc != 0)
		log_debug("control: answered later: %s", err ? err : loket_strerror(rc));
	c->later = 0;
	control_send(c, &c->later_id, 1, control_reply(c, rc, result_take, err, 0));
	zmq_msg_close(&c->later_id);
	control_unpark(c);
}

int control_add_command(struct control *c, const char *name, control_handler handler, void *data)
{
	if (c->n_commands == CONTROL_MAX_COMMANDS || control_find(c, name))
		return -EINVAL;
	c->commands[c->n_commands++] = (struct control_command){name, handler, data};
	return 0;
}

int control_init(struct control *c, uv_loop_t *loop, void *zctx, struct node *node, char *err,
                 size_t errlen)
{
	memset(c, 0, sizeof(*c));
	c->node = node;
	for (size_t i = 0; i < sizeof(builtin_commands) / sizeof(builtin_commands[0]); i++)
		control_add_command(c, builtin_commands[i].name, builtin_commands[i].handler,
		                    builtin_commands[i].handler == handle_query ? (void *)c
		                                                                : (void *)node);

	char path[PATH_MAX];
	int len = snprintf(path, sizeof(path), "%s/%s", node->cfg->data, LOKET_CONTROL_FILE);
	if (len < 0 || (size_t)len >= sizeof(path) || (size_t)len >= 107) {
		snprintf(err, errlen, "%s/%s: control socket path too long for ipc://",
		         node->cfg->data, LOKET_CONTROL_FILE);
		return -ENAMETOOLONG;
	}
	snprintf(c->endpoint, sizeof(c->endpoint), "ipc://%s", path);

	c->zsock = zmq_socket(zctx, ZMQ_ROUTER);
	if (!c->zsock)
		goto zmq_failed;
	/*
	 * Requests a little over the limit are read so that they can be told
	 * so; the high-water marks bound what one client holds in the daemon
	 * (proto/limits.h); mandatory routing makes a full client's reply fail
	 * at once instead of vanishing, so that it is counted.
	 */
	int64_t max = LOKET_CONTROL_MAX_READ;
	int linger = 0, sndhwm = LOKET_CONTROL_SNDHWM, rcvhwm = LOKET_CONTROL_RCVHWM, mandatory = 1;
	if (zmq_setsockopt(c->zsock, ZMQ_MAXMSGSIZE, &max, sizeof(max)) != 0 ||
	    zmq_setsockopt(c->zsock, ZMQ_LINGER, &linger, sizeof(linger)) != 0 ||
	    zmq_setsockopt(c->zsock, ZMQ_SNDHWM, &sndhwm, sizeof(sndhwm)) != 0 ||
	    zmq_setsockopt(c->zsock, ZMQ_RCVHWM, &rcvhwm, sizeof(rcvhwm)) != 0 ||
	    zmq_setsockopt(c->zsock, ZMQ_ROUTER_MANDATORY, &mandatory, sizeof(mandatory)) != 0)
		goto zmq_failed;
	/* A stale socket file from a crash would make bind fail. */
	unlink(path);
	mode_t old = umask(0117);
	int rc = zmq_bind(c->zsock, c->endpoint);
	umask(old);
	if (rc != 0)
		goto zmq_failed;
	chmod(path, 0660);
	rc = zwatch_init(loop, &c->watch, c->zsock, control_on_readable, c);
	if (rc != 0) {
		snprintf(err, errlen, "control: cannot watch socket: %s", uv_strerror(rc));
		return rc;
	}
	/* One request per loop iteration: sync and ZAP run between any two. */
	c->watch.budget = 1;
	log_info("control: listening on %s", c->endpoint);
	return 0;
zmq_failed:
	snprintf(err, errlen, "control: %s: %s", c->endpoint, zmq_strerror(zmq_errno()));
	if (c->zsock)
		zmq_close(c->zsock);
	c->zsock = NULL;
	return -zmq_errno();
}

static void control_on_watch_closed(struct zwatch *w)
{
	struct control *c = (struct control *)((char *)w - offsetof(struct control, watch));
	if (c->later)
		zmq_msg_close(&c->later_id);
	c->later = 0;
	for (; c->n_parked > 0; c->n_parked--) {
		size_t i = c->parked_first;
		c->parked_first = (i + 1) % CONTROL_MAX_PARKED;
		zmq_msg_close(&c->parked[i].id);
		zmq_msg_close(&c->parked[i].req);
	}
	zmq_close(c->zsock);
	c->zsock = NULL;
	unlink(c->endpoint + strlen("ipc://"));
	if (c->on_closed)
		c->on_closed(c);
}

void control_close(struct control *c, void (*cb)(struct control *c))
{
	c->on_closed = cb;
	zwatch_close(&c->watch, control_on_watch_closed);
}
