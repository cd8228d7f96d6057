/*
 * ratelimit: the requests a client of loket-http may make, as a token
 * bucket per client: a bucket holds at most burst requests and fills at
 * rate a second, and a request takes one. A client is named by a string:
 * loket-http uses "token NAME" for a request with a valid bearer token
 * (all the connections of a partner share it, also through a proxy) and
 * "address ADDR" for any other (an IPv6 address by its /64, which one
 * host holds whole).
 *
 * Memory is bounded: RATELIMIT_SLOTS buckets in a table, and a client
 * that finds no free slot near its hash takes the slot of a full bucket
 * (one that would let its client do anything, so forgetting it changes
 * nothing) or else the one used longest ago. Thread-safe.
 */
#ifndef LOKET_HTTP_RATELIMIT_H
#define LOKET_HTTP_RATELIMIT_H

#define RATELIMIT_SLOTS   4096
#define RATELIMIT_PROBES  8
#define RATELIMIT_KEY_MAX 80

struct ratelimit;

/* rate: requests a second; burst: what a bucket holds (at least 1). */
struct ratelimit *ratelimit_new(unsigned rate, unsigned burst);
void ratelimit_free(struct ratelimit *rl);

/*
 * Takes one request from client's bucket at now_ms (a monotonic clock).
 * 0 if it may go on; LOKET_E_RATE_LIMITED if the bucket is empty, with
 * *retry_s the whole seconds until it holds a request again (at least 1).
 * A client name longer than RATELIMIT_KEY_MAX is cut there.
 */
int ratelimit_take(struct ratelimit *rl, const char *client, long long now_ms, unsigned *retry_s);

#endif
