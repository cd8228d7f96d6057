/*
 * The control socket client. ZeroMQ connects lazily and queues what is sent
 * to a peer that is not there, so a plain socket would wait forever for a
 * daemon that is down. Two things prevent that: before connecting, a
 * throwaway AF_UNIX connect to the socket file tells at once whether anyone
 * listens; and every reply is awaited with zmq_poll and a deadline. A
 * socket monitor reports the connection dropping while a reply is awaited
 * (the daemon stopped or crashed), so the client says so at once instead of
 * waiting out the deadline.
 *
 * The socket is a DEALER that writes the empty delimiter frame a REQ would,
 * so that a caller may send a request before the reply to the one before
 * it has come (the daemon answers one client's requests in order). After
 * a reply is lost the client is unusable: a reply arriving late would be
 * taken for the next one's. ZMQ_LINGER is 0, so closing the socket never
 * waits for unsent requests.
 */
#include "cli/client.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <zmq.h>

#include "common/paths.h"
#include "proto/control_reply.h"
#include "proto/error.h"
#include "proto/limits.h"
#include "proto/value.h"

struct client {
	void *zctx;
	void *zsock;
	void *monitor; /* PAIR receiving the socket's disconnect events */
	int broken;    /* a reply was lost: the replies no longer match the requests */
	char path[sizeof(((struct sockaddr_un *)0)->sun_path)];
	char endpoint[sizeof(((struct sockaddr_un *)0)->sun_path) + 8];
};

static int unavailable(const struct client *c, const char *why, char *err, size_t errlen)
{
	char q[ERROR_QUOTE_SIZE];
	snprintf(err, errlen, "cannot reach loketd at %s: %s",
	         error_quote_str(q, sizeof(q), c->endpoint), why);
	return LOKET_E_UNAVAILABLE;
}

/*
 * Whether something accepts connections on the socket file. A stale file
 * left by a killed daemon refuses; a missing one does not exist.
 */
static int probe(const struct client *c, char *err, size_t errlen)
{
	struct sockaddr_un sa;
	int fd, rc = 0;

	memset(&sa, 0, sizeof(sa));
	sa.sun_family = AF_UNIX;
	memcpy(sa.sun_path, c->path, strlen(c->path) + 1);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		snprintf(err, errlen, "socket: %s", strerror(errno));
		return -errno;
	}
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		if (errno == EACCES || errno == EPERM)
			rc = unavailable(c,
			                 "permission denied (is this user in the group of the "
			                 "service?)",
			                 err, errlen);
		else
			rc = unavailable(c, "is it running?", err, errlen);
	}
	close(fd);
	return rc;
}

int client_open(const char *data_dir, struct client **out, char *err, size_t errlen)
{
	struct client *c;
	char q[ERROR_QUOTE_SIZE];
	int n, rc, linger = 0;

	*out = NULL;
	c = calloc(1, sizeof(*c));
	if (!c)
		abort();
	n = snprintf(c->path, sizeof(c->path), "%s/%s", data_dir, LOKET_CONTROL_FILE);
	if (n < 0 || (size_t)n >= sizeof(c->path)) {
		snprintf(err, errlen,
		         "control socket path %s is longer than the %zu bytes a socket "
		         "address holds; use a shorter data directory",
		         error_quotef(q, sizeof(q), "%s/%s", data_dir, LOKET_CONTROL_FILE),
		         sizeof(c->path) - 1);
		rc = -ENAMETOOLONG;
		goto fail;
	}
	snprintf(c->endpoint, sizeof(c->endpoint), "ipc://%s", c->path);
	rc = probe(c, err, errlen);
	if (rc < 0)
		goto fail;

	c->zctx = zmq_ctx_new();
	if (!c->zctx) {
		rc = -errno;
		snprintf(err, errlen, "zmq_ctx_new: %s", zmq_strerror(errno));
		goto fail;
	}
	c->zsock = zmq_socket(c->zctx, ZMQ_DEALER);
	if (!c->zsock || zmq_setsockopt(c->zsock, ZMQ_LINGER, &linger, sizeof(linger)) < 0 ||
	    zmq_connect(c->zsock, c->endpoint) < 0) {
		rc = -errno;
		snprintf(err, errlen, "cannot connect to %s: %s",
		         error_quote_str(q, sizeof(q), c->endpoint), zmq_strerror(errno));
		goto fail;
	}
	/* A unique inproc name per client: one process may open several. */
	char monitor[64];
	snprintf(monitor, sizeof(monitor), "inproc://loket-client-monitor-%p", (void *)c);
	c->monitor = zmq_socket(c->zctx, ZMQ_PAIR);
	if (zmq_socket_monitor(c->zsock, monitor, ZMQ_EVENT_DISCONNECTED) < 0 || !c->monitor ||
	    zmq_setsockopt(c->monitor, ZMQ_LINGER, &linger, sizeof(linger)) < 0 ||
	    zmq_connect(c->monitor, monitor) < 0) {
		rc = -errno;
		snprintf(err, errlen, "cannot monitor %s: %s",
		         error_quote_str(q, sizeof(q), c->endpoint), zmq_strerror(errno));
		goto fail;
	}
	*out = c;
	return 0;
fail:
	client_free(c);
	return rc;
}

void client_free(struct client *c)
{
	if (!c)
		return;
	if (c->monitor)
		zmq_close(c->monitor);
	if (c->zsock) {
		zmq_socket_monitor(c->zsock, NULL, 0);
		zmq_close(c->zsock);
	}
	if (c->zctx)
		zmq_ctx_term(c->zctx);
	free(c);
}

const char *client_endpoint(const struct client *c)
{
	return c->endpoint;
}

static long long now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/*
 * Waits until a reply can be read (1), the deadline passes (0), or the
 * connection to the daemon drops (-ECONNRESET); else a negative errno.
 */
static int wait_readable(struct client *c, long long deadline)
{
	zmq_pollitem_t items[] = {
	    {.socket = c->zsock, .events = ZMQ_POLLIN},
	    {.socket = c->monitor, .events = ZMQ_POLLIN},
	};

	for (;;) {
		long long left = deadline - now_ms();
		if (left < 0)
			left = 0;
		int n = zmq_poll(items, 2, (long)left);
		if (n < 0 && errno != EINTR)
			return -errno;
		if (n > 0 && (items[0].revents & ZMQ_POLLIN))
			return 1;
		if (n > 0 && (items[1].revents & ZMQ_POLLIN))
			return -ECONNRESET;
		if (n == 0)
			return 0;
	}
}

/*
 * Takes the next reply off the socket into msg (initialised here; the
 * caller closes it): the empty delimiter frame, then the reply. Returns 0,
 * -EPROTO for other frames, or a negative errno.
 */
static int receive_reply(struct client *c, zmq_msg_t *msg)
{
	int rc, delimited;

	zmq_msg_init(msg);
	if (zmq_msg_recv(msg, c->zsock, ZMQ_DONTWAIT) < 0) {
		rc = -errno;
		zmq_msg_close(msg);
		return rc;
	}
	delimited = zmq_msg_size(msg) == 0 && zmq_msg_more(msg);
	while (zmq_msg_more(msg)) {
		zmq_msg_close(msg);
		zmq_msg_init(msg);
		if (zmq_msg_recv(msg, c->zsock, ZMQ_DONTWAIT) < 0) {
			rc = -errno;
			zmq_msg_close(msg);
			return rc;
		}
		if (zmq_msg_more(msg))
			delimited = 0; /* more than one frame after the delimiter */
	}
	if (!delimited) {
		zmq_msg_close(msg);
		return -EPROTO;
	}
	return 0;
}

int client_send_raw(struct client *c, const void *msg, size_t len, char *err, size_t errlen)
{
	if (c->broken)
		return unavailable(c, "an earlier request got no reply", err, errlen);
	if (len > LOKET_MAX_MESSAGE_BYTES) {
		snprintf(err, errlen, "cannot encode the request: %s",
		         loket_strerror(LOKET_E_TOO_BIG));
		return LOKET_E_TOO_BIG;
	}
	/* zmq_send copies msg into a message of its own. */
	if (zmq_send(c->zsock, "", 0, ZMQ_SNDMORE | ZMQ_DONTWAIT) < 0 ||
	    zmq_send(c->zsock, msg, len, ZMQ_DONTWAIT) < 0) {
		c->broken = 1;
		return unavailable(c, "is it running?", err, errlen);
	}
	return 0;
}

int client_send(struct client *c, const json_t *req, char *err, size_t errlen)
{
	msgpack_sbuffer buf;

	if (c->broken)
		return unavailable(c, "an earlier request got no reply", err, errlen);
	msgpack_sbuffer_init(&buf);
	int rc = value_encode_message(req, &buf);
	if (rc < 0)
		snprintf(err, errlen, "cannot encode the request: %s", loket_strerror(rc));
	else
		rc = client_send_raw(c, buf.data, buf.size, err, errlen);
	msgpack_sbuffer_destroy(&buf);
	return rc;
}

int client_receive(struct client *c, int timeout_ms, json_t **result, long *index, char *err,
                   size_t errlen)
{
	zmq_msg_t msg;
	json_t *reply = NULL;
	char derr[256];

	*result = NULL;
	if (index)
		*index = -1;
	int rc = wait_readable(c, now_ms() + timeout_ms);
	if (rc == -ECONNRESET) {
		c->broken = 1;
		return unavailable(c,
		                   "it closed the connection before replying (stopped or crashed); "
		                   "the request may or may not have been applied",
		                   err, errlen);
	}
	if (rc <= 0) {
		char why[96];
		c->broken = 1;
		snprintf(why, sizeof(why), "no reply within %d s: is it running?",
		         timeout_ms / 1000);
		return unavailable(c, why, err, errlen);
	}
	rc = receive_reply(c, &msg);
	if (rc < 0) {
		c->broken = 1;
		return unavailable(c,
		                   rc == -EPROTO ? "a reply came without its delimiter frame"
		                                 : "the reply was lost: is it running?",
		                   err, errlen);
	}
	/*
	 * No bound on the values: a reply of the node's own daemon may hold
	 * many (a query of 10,000 rows of small numbers), and it is bounded in
	 * bytes; the bound is for what the daemon takes from others.
	 */
	rc = value_decode_message_limit(zmq_msg_data(&msg), zmq_msg_size(&msg), 0, &reply, derr,
	                                sizeof(derr));
	zmq_msg_close(&msg);
	if (rc < 0) {
		snprintf(err, errlen, "malformed reply from loketd: %s", derr);
		return rc;
	}
	rc = control_reply_take(reply, result, index, err, errlen);
	json_decref(reply);
	return rc;
}

int client_call(struct client *c, const json_t *req, int timeout_ms, json_t **result, long *index,
                char *err, size_t errlen)
{
	*result = NULL;
	if (index)
		*index = -1;
	int rc = client_send(c, req, err, errlen);
	if (rc != 0)
		return rc;
	return client_receive(c, timeout_ms, result, index, err, errlen);
}
