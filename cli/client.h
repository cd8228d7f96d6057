/*
 * client: the loket side of the control socket (proto/CONTROL.md). One
 * ZeroMQ DEALER socket connected to ipc://DATA/control.sock, each reply
 * awaited with a deadline, so that a daemon that is down or stuck gives
 * a one-line error instead of a hang. The socket and its context live in
 * struct client and nowhere else.
 */
#ifndef LOKET_CLIENT_H
#define LOKET_CLIENT_H

#include <stddef.h>

#include <jansson.h>

#define CLIENT_TIMEOUT_MS      30000  /* an ordinary request */
#define CLIENT_TIMEOUT_LONG_MS 120000 /* rebuild, import batches */

struct client;

/*
 * Connects to the daemon serving the data directory data_dir. Fails with
 * LOKET_E_UNAVAILABLE and "cannot reach loketd at ipc://...: is it
 * running?" when nobody listens on the socket file.
 */
int client_open(const char *data_dir, struct client **out, char *err, size_t errlen);
void client_free(struct client *c);

/* "ipc://DATA/control.sock", for messages. */
const char *client_endpoint(const struct client *c);

/*
 * Sends req and waits at most timeout_ms for the reply.
 *   {"ok":true,"result":R}   returns 0, *result = R (a new reference)
 *   {"ok":false,...}         returns the reply's "code" (LOKET_E_BAD_REQUEST
 *                            if it has none), its "error" sentence in err,
 *                            and its "index" in *index (-1 if none; index
 *                            may be NULL)
 *   no reply in time         returns LOKET_E_UNAVAILABLE; the client is
 *                            then unusable, as a late reply would be
 *                            taken for the next request's
 */
int client_call(struct client *c, const json_t *req, int timeout_ms, json_t **result, long *index,
                char *err, size_t errlen);

/*
 * client_call in two halves, so that a caller can prepare or send its next
 * request while the daemon works on this one. Replies come in the order
 * of the requests: each client_receive takes the reply to the oldest
 * request not yet answered.
 */
int client_send(struct client *c, const json_t *req, char *err, size_t errlen);

/*
 * client_send for a request already encoded: msg holds one msgpack map of
 * len bytes, at most LOKET_MAX_MESSAGE_BYTES, in the form value_encode_message
 * gives (so that bulk writers can build it without a JSON tree). The bytes
 * are copied before it returns.
 */
int client_send_raw(struct client *c, const void *msg, size_t len, char *err, size_t errlen);
int client_receive(struct client *c, int timeout_ms, json_t **result, long *index, char *err,
                   size_t errlen);

#endif
