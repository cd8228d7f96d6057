/*
 * The control socket pool. Each socket is a DEALER that writes the empty
 * delimiter frame a REQ would, with ZMQ_IMMEDIATE and a send timeout, so
 * that a request made while loketd is down fails within CTL_CONNECT_MS
 * (503) instead of waiting in a queue for a daemon that may never come (a
 * new socket's first send waits for its connection), and ZMQ_LINGER 0 so
 * that closing never waits. A DEALER reconnects by itself when loketd restarts.
 */
#include "http/ctl.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/un.h>
#include <time.h>

#include <zmq.h>

#include "common/paths.h"
#include "http/clock.h"
#include "proto/control_reply.h"
#include "proto/error.h"
#include "proto/limits.h"
#include "proto/value.h"

#define CTL_IDLE_MAX   32   /* sockets kept idle; more are closed when given back */
#define CTL_CONNECT_MS 1000 /* a send waits this long for the connection to loketd */

struct ctl {
	void *zsock;
	int broken;
};

struct ctl_pool {
	void *zctx;
	char endpoint[sizeof(((struct sockaddr_un *)0)->sun_path) + 8];
	pthread_mutex_t lock;
	struct ctl *idle[CTL_IDLE_MAX];
	size_t n_idle;
};

int ctl_pool_new(const char *data_dir, struct ctl_pool **out, char *err, size_t errlen)
{
	struct ctl_pool *p = calloc(1, sizeof(*p));
	char path[sizeof(((struct sockaddr_un *)0)->sun_path)];

	*out = NULL;
	if (!p)
		abort();
	int n = snprintf(path, sizeof(path), "%s/%s", data_dir, LOKET_CONTROL_FILE);
	if (n < 0 || (size_t)n >= sizeof(path)) {
		snprintf(err, errlen, "the control socket path under %s is too long", data_dir);
		free(p);
		return -ENAMETOOLONG;
	}
	snprintf(p->endpoint, sizeof(p->endpoint), "ipc://%s", path);
	p->zctx = zmq_ctx_new();
	if (!p->zctx) {
		snprintf(err, errlen, "zmq_ctx_new: %s", zmq_strerror(errno));
		free(p);
		return -ENOMEM;
	}
	pthread_mutex_init(&p->lock, NULL);
	*out = p;
	return 0;
}

static void ctl_close(struct ctl *c)
{
	if (!c)
		return;
	if (c->zsock)
		zmq_close(c->zsock);
	free(c);
}

void ctl_pool_free(struct ctl_pool *p)
{
	if (!p)
		return;
	for (size_t i = 0; i < p->n_idle; i++)
		ctl_close(p->idle[i]);
	zmq_ctx_term(p->zctx);
	pthread_mutex_destroy(&p->lock);
	free(p);
}

struct ctl *ctl_get(struct ctl_pool *p, char *err, size_t errlen)
{
	struct ctl *c = NULL;
	int linger = 0, immediate = 1, sndtimeo = CTL_CONNECT_MS;

	pthread_mutex_lock(&p->lock);
	if (p->n_idle > 0)
		c = p->idle[--p->n_idle];
	pthread_mutex_unlock(&p->lock);
	if (c)
		return c;
	c = calloc(1, sizeof(*c));
	if (!c)
		abort();
	c->zsock = zmq_socket(p->zctx, ZMQ_DEALER);
	if (!c->zsock || zmq_setsockopt(c->zsock, ZMQ_LINGER, &linger, sizeof(linger)) < 0 ||
	    zmq_setsockopt(c->zsock, ZMQ_IMMEDIATE, &immediate, sizeof(immediate)) < 0 ||
	    zmq_setsockopt(c->zsock, ZMQ_SNDTIMEO, &sndtimeo, sizeof(sndtimeo)) < 0 ||
	    zmq_connect(c->zsock, p->endpoint) < 0) {
		snprintf(err, errlen, "cannot connect to loketd at %s: %s", p->endpoint,
		         zmq_strerror(errno));
		ctl_close(c);
		return NULL;
	}
	return c;
}

void ctl_put(struct ctl_pool *p, struct ctl *c)
{
	if (!c)
		return;
	if (!c->broken) {
		pthread_mutex_lock(&p->lock);
		if (p->n_idle < CTL_IDLE_MAX) {
			p->idle[p->n_idle++] = c;
			c = NULL;
		}
		pthread_mutex_unlock(&p->lock);
	}
	ctl_close(c);
}

static int unavailable(struct ctl *c, const char *why, char *err, size_t errlen)
{
	c->broken = 1;
	snprintf(err, errlen, "loketd is not reachable: %s", why);
	return LOKET_E_UNAVAILABLE;
}

int ctl_call_raw(struct ctl *c, const void *msg, size_t len, int timeout_ms, json_t **result,
                 long *index, char *err, size_t errlen)
{
	zmq_pollitem_t item = {.socket = c->zsock, .events = ZMQ_POLLIN};
	long long deadline = clock_ms() + timeout_ms;
	char derr[256];
	json_t *reply = NULL;
	zmq_msg_t m;

	*result = NULL;
	if (index)
		*index = -1;
	if (c->broken)
		return unavailable(c, "an earlier request got no reply", err, errlen);
	if (len > LOKET_MAX_MESSAGE_BYTES) {
		snprintf(err, errlen, "the request is too big for one message");
		return LOKET_E_TOO_BIG;
	}
	if (zmq_send(c->zsock, "", 0, ZMQ_SNDMORE) < 0 || zmq_send(c->zsock, msg, len, 0) < 0)
		return unavailable(c, "is it running?", err, errlen);
	for (;;) {
		long long left = deadline - clock_ms();
		int n = zmq_poll(&item, 1, left < 0 ? 0 : (long)left);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return unavailable(c, zmq_strerror(errno), err, errlen);
		if (n == 0)
			return unavailable(c, "no reply in time", err, errlen);
		break;
	}
	/* [empty, reply]: anything else means the replies no longer line up. */
	zmq_msg_init(&m);
	if (zmq_msg_recv(&m, c->zsock, ZMQ_DONTWAIT) < 0 || zmq_msg_size(&m) != 0 ||
	    !zmq_msg_more(&m)) {
		zmq_msg_close(&m);
		return unavailable(c, "a reply came without its delimiter", err, errlen);
	}
	zmq_msg_close(&m);
	zmq_msg_init(&m);
	if (zmq_msg_recv(&m, c->zsock, ZMQ_DONTWAIT) < 0 || zmq_msg_more(&m)) {
		zmq_msg_close(&m);
		return unavailable(c, "a malformed reply", err, errlen);
	}
	/* No bound on the values, as in the CLI: loketd's replies are bounded in bytes. */
	int rc = value_decode_message_limit(zmq_msg_data(&m), zmq_msg_size(&m), 0, &reply, derr,
	                                    sizeof(derr));
	zmq_msg_close(&m);
	if (rc < 0) {
		snprintf(err, errlen, "malformed reply from loketd: %s", derr);
		return rc;
	}
	rc = control_reply_take(reply, result, index, err, errlen);
	json_decref(reply);
	return rc;
}

int ctl_call(struct ctl *c, const json_t *req, int timeout_ms, json_t **result, long *index,
             char *err, size_t errlen)
{
	msgpack_sbuffer buf;

	*result = NULL;
	if (index)
		*index = -1;
	msgpack_sbuffer_init(&buf);
	int rc = value_encode_message(req, &buf);
	if (rc < 0)
		snprintf(err, errlen, "cannot encode the request: %s", loket_strerror(rc));
	else
		rc = ctl_call_raw(c, buf.data, buf.size, timeout_ms, result, index, err, errlen);
	msgpack_sbuffer_destroy(&buf);
	return rc;
}

int ctl_pool_call(struct ctl_pool *p, const json_t *req, int timeout_ms, json_t **result, char *err,
                  size_t errlen)
{
	struct ctl *c = ctl_get(p, err, errlen);
	int rc = LOKET_E_UNAVAILABLE;

	*result = NULL;
	if (c)
		rc = ctl_call(c, req, timeout_ms, result, NULL, err, errlen);
	ctl_put(p, c);
	return rc;
}
