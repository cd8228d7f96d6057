/*
 * guard: the deadline of a request's arrival. libmicrohttpd drops a
 * connection that is silent for [http] timeout seconds, but a client that
 * sends its request line and headers a byte a second is never silent, and
 * would hold its connection (a thread) for as long as it likes: the
 * slowloris attack. The guard gives each request a deadline instead: from
 * the moment its connection opens, or the one before it was answered,
 * the whole request (line, headers, and a body the route reads before it
 * runs) must arrive within deadline_s, or a watchdog thread shuts the
 * connection's socket, which libmicrohttpd then closes. While a request
 * is being answered (a long poll, a stream, a bulk write that reads its
 * body while it applies it) the guard leaves it alone.
 *
 * The connection registers when libmicrohttpd says it started and leaves
 * when it says it closed, which is before the socket is closed; the
 * watchdog shuts a socket only under the lock that guards both, so it
 * never touches a descriptor that was closed and given to someone else.
 */
#ifndef LOKET_HTTP_GUARD_H
#define LOKET_HTTP_GUARD_H

#define GUARD_SCAN_MS 100 /* how often the watchdog looks */

struct guard;
struct guard_conn;

/* Starts the watchdog; NULL if its thread cannot be made. */
struct guard *guard_new(unsigned deadline_s);
/* Stops the watchdog; every connection must have left (stop the server first). */
void guard_free(struct guard *g);

/* A connection on socket fd started: its first request's deadline runs from now. */
struct guard_conn *guard_add(struct guard *g, int fd);
/* It closed; c is freed. */
void guard_remove(struct guard *g, struct guard_conn *c);
/* Its request has arrived and is being answered: no deadline until guard_next. */
void guard_hold(struct guard *g, struct guard_conn *c);
/* Its request was answered: the next one's deadline runs from now. */
void guard_next(struct guard *g, struct guard_conn *c);

#endif
