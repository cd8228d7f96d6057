/*
 * server: loket-http's HTTP side. libmicrohttpd runs it, a thread per
 * connection (at most [http] connections in all and client_connections
 * from one address, each dropped after timeout seconds of silence or when
 * a request takes longer to arrive, http/guard.h), and this module owns
 * the rate of each client (http/ratelimit.h), the routes of
 * /v1/ (README, "HTTP API"; http/openapi.json), the bearer-token check on
 * each, the bounds on what a request may send, and the translation of
 * each route into control requests to loketd (http/ctl.h).
 */
#ifndef LOKET_HTTP_SERVER_H
#define LOKET_HTTP_SERVER_H

#include <stddef.h>

#define HTTP_MEMORY_LIMIT (64u * 1024u)   /* per connection: request line, headers, buffers */
#define HTTP_MAX_BODY     (1024u * 1024u) /* a PUT's fields, the size of one changeset */
#define HTTP_MAX_WAIT_S   60              /* the longest long poll of /v1/changes */

struct server;

struct server_options {
	const char *listen;      /* ADDRESS:PORT */
	const char *data_dir;    /* loketd's data directory (its control socket) */
	const char *tokens_path; /* the token file */
	unsigned timeout_s; /* a connection silent this long, or a request this slow, is dropped */
	unsigned rate, burst;        /* requests a second per client, and at once */
	unsigned connections;        /* at once, in all */
	unsigned client_connections; /* at once, from one address */
	unsigned stream_max_s;       /* the longest life of an event stream */
};

int server_start(const struct server_options *o, struct server **out, char *err, size_t errlen);
void server_stop(struct server *s);

#endif
