/*
 * control: the local control socket (proto/CONTROL.md). Owns a ZeroMQ
 * ROUTER bound at ipc://DATA/control.sock, decodes each request, runs the
 * handler its "cmd" names and sends the reply. A bad request gets an error
 * reply and is counted; it never stops the daemon.
 */
#ifndef LOKET_CONTROL_H
#define LOKET_CONTROL_H

#include <limits.h>

#include <uv.h>
#include <zmq.h>

#include "daemon/node.h"
#include "daemon/zwatch.h"

#define CONTROL_MAX_COMMANDS 24
/* Requests of one client held back behind its request that is answered later. */
#define CONTROL_MAX_PARKED 16

/*
 * What a handler returns when it answers later, with control_answer: the
 * backup runs for many loop iterations. One request at a time may wait so;
 * other clients are served meanwhile, and the waiting client's next
 * requests are held back until its answer has gone, so that each client
 * still gets its replies in the order of its requests.
 */
#define CONTROL_LATER 1

/*
 * A request handler: fills *result (a new reference) or err, and returns 0
 * or a negative code. On failure it may still set *result to an object whose
 * members are added to the error reply (a put names the "index" at fault).
 * Or it returns CONTROL_LATER, sets nothing, and calls control_answer once.
 */
typedef int (*control_handler)(void *data, const json_t *req, json_t **result, char *err,
                               size_t errlen);

struct control_command {
	const char *name;
	control_handler handler;
	void *data;
};

struct control {
	struct node *node;
	void *zsock;
	struct zwatch watch;
	char endpoint[PATH_MAX + 8];
	unsigned long requests;
	unsigned long bad_requests;
	unsigned long dropped_replies; /* left unread beyond LOKET_CONTROL_SNDHWM */
	uint64_t dropped_logged_at;    /* loop time of the last log line about them */
	/* The loop time queries may still take (control.c), and when it was counted. */
	double query_ms;
	uint64_t query_at;
	struct control_command commands[CONTROL_MAX_COMMANDS];
	size_t n_commands;
	/* The request answered later, by its client's identity, and that client's next ones. */
	int later;
	zmq_msg_t later_id;
	struct {
		zmq_msg_t id;
		zmq_msg_t req;
	} parked[CONTROL_MAX_PARKED];
	size_t parked_first, n_parked;
	void (*on_closed)(struct control *c);
};

/* Binds the socket in the node's data directory and starts serving. */
int control_init(struct control *c, uv_loop_t *loop, void *zctx, struct node *node, char *err,
                 size_t errlen);
/*
 * The typed getter of every handler: member key of req as a non-empty
 * string in *out (borrowed). Absent or nil is "not given" (*out NULL), an
 * error when required; anything else must be a string without NULs.
 */
int control_get_string(const json_t *req, const char *key, int required, const char **out,
                       char *err, size_t errlen);
/* Adds a command served by another module (sync adds "peers"); name is borrowed. */
int control_add_command(struct control *c, const char *name, control_handler handler, void *data);
/*
 * Answers the request whose handler returned CONTROL_LATER, as the handler
 * would have: rc, result (taken; may be NULL) and err. Once the control
 * socket is closing there is nobody to answer: result is only freed.
 */
void control_answer(struct control *c, int rc, json_t *result_take, const char *err);
/*
 * Stops serving and closes the socket; cb runs once the handles are closed.
 * A request still waiting for control_answer gets no reply.
 */
void control_close(struct control *c, void (*cb)(struct control *c));

#endif
