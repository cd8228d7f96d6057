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

#include "daemon/node.h"
#include "daemon/zwatch.h"

#define CONTROL_MAX_COMMANDS 24

/*
 * A request handler: fills *result (a new reference) or err, and returns 0
 * or a negative code. On failure it may still set *result to an object whose
 * members are added to the error reply (a put names the "index" at fault).
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
	void (*on_closed)(struct control *c);
};

/* Binds the socket in the node's data directory and starts serving. */
int control_init(struct control *c, uv_loop_t *loop, void *zctx, struct node *node, char *err,
                 size_t errlen);
/* Adds a command served by another module (sync adds "peers"); name is borrowed. */
int control_add_command(struct control *c, const char *name, control_handler handler, void *data);
/* Stops serving and closes the socket; cb runs once the handles are closed. */
void control_close(struct control *c, void (*cb)(struct control *c));

#endif
