/*
 * ctl: loket-http's side of loketd's control socket (proto/CONTROL.md).
 * A pool of ZeroMQ DEALER sockets on one context: each HTTP connection
 * thread borrows one for the requests of its request and gives it back, so
 * no socket is used by two threads at once (the mutex hands it over with a
 * full barrier, which is what ZeroMQ asks of a socket that moves between
 * threads). A socket whose reply was lost is closed, never given back: a
 * late reply would be taken for the next request's.
 */
#ifndef LOKET_HTTP_CTL_H
#define LOKET_HTTP_CTL_H

#include <stddef.h>

#include <jansson.h>

#define CTL_TIMEOUT_MS      10000  /* an ordinary request */
#define CTL_TIMEOUT_BULK_MS 120000 /* a put of a bulk batch */

struct ctl_pool;
struct ctl;

/* A pool for the daemon of data_dir; -ENAMETOOLONG if its socket path does not fit. */
int ctl_pool_new(const char *data_dir, struct ctl_pool **out, char *err, size_t errlen);
void ctl_pool_free(struct ctl_pool *p);

/* Borrows a socket (a new one if none is idle); NULL with err set if none can be made. */
struct ctl *ctl_get(struct ctl_pool *p, char *err, size_t errlen);
/* Gives c back, or closes it if its replies no longer match its requests. */
void ctl_put(struct ctl_pool *p, struct ctl *c);

/*
 * One request and its reply, like cli/client.h's client_call:
 *   {"ok":true,"result":R}  0, *result = R (a new reference)
 *   {"ok":false,...}        the reply's code, its sentence in err, its
 *                           "index" in *index (-1 if none)
 *   loketd not reachable or silent until timeout_ms: LOKET_E_UNAVAILABLE
 */
int ctl_call(struct ctl *c, const json_t *req, int timeout_ms, json_t **result, long *index,
             char *err, size_t errlen);
/* ctl_call on a socket borrowed from p for the call (LOKET_E_UNAVAILABLE if none can be made). */
int ctl_pool_call(struct ctl_pool *p, const json_t *req, int timeout_ms, json_t **result, char *err,
                  size_t errlen);
/* ctl_call for a request already encoded as one msgpack map. */
int ctl_call_raw(struct ctl *c, const void *msg, size_t len, int timeout_ms, json_t **result,
                 long *index, char *err, size_t errlen);

#endif
