/*
 * metrics: the Prometheus endpoint (daemon/metrics.h). The names follow
 * Prometheus' conventions: a loket_ prefix, base units (seconds, bytes),
 * _total for counters, labels for what varies (origin, member, collection,
 * result); process_resident_memory_bytes is the standard name.
 */
#include "daemon/metrics.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <microhttpd.h>

#include "common/log.h"
#include "proto/error.h"

/* A growable text buffer for the snapshot. */
struct text {
	char *p;
	size_t n, cap;
};

__attribute__((format(printf, 2, 3))) static void put(struct text *t, const char *fmt, ...)
{
	va_list ap;
	for (;;) {
		size_t room = t->cap - t->n;
		va_start(ap, fmt);
		int k = vsnprintf(t->p ? t->p + t->n : NULL, room, fmt, ap);
		va_end(ap);
		if (k < 0)
			abort();
		if ((size_t)k < room) {
			t->n += (size_t)k;
			return;
		}
		t->cap = t->cap ? 2 * t->cap : 4096;
		while (t->cap - t->n <= (size_t)k)
			t->cap *= 2;
		t->p = realloc(t->p, t->cap);
		if (!t->p)
			abort();
	}
}

/* A label value: '\\', '"' and newline escaped as the text format says. */
static void label(struct text *t, const char *v)
{
	put(t, "\"");
	for (const char *c = v ? v : ""; *c; c++) {
		if (*c == '\\' || *c == '"')
			put(t, "\\%c", *c);
		else if (*c == '\n')
			put(t, "\\n");
		else
			put(t, "%c", *c);
	}
	put(t, "\"");
}

static void family(struct text *t, const char *name, const char *type, const char *help)
{
	put(t, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static json_int_t int_of(const json_t *o, const char *key)
{
	return json_integer_value(json_object_get(o, key));
}

static void per_member(struct text *t, const json_t *peers, const char *name, const char *type,
                       const char *help, const char *key, double scale)
{
	size_t i;
	json_t *p;
	family(t, name, type, help);
	json_array_foreach(peers, i, p)
	{
		put(t, "%s{member=", name);
		label(t, json_string_value(json_object_get(p, "name")));
		put(t, "} %.17g\n", (double)int_of(p, key) * scale);
	}
}

static void status_metrics(struct text *t, const json_t *s)
{
	const char *k;
	json_t *v;

	family(t, "loket_build_info", "gauge", "The node's version, name and federation.");
	put(t, "loket_build_info{version=");
	label(t, json_string_value(json_object_get(s, "version")));
	put(t, ",node=");
	label(t, json_string_value(json_object_get(s, "name")));
	put(t, ",federation=");
	label(t, json_string_value(json_object_get(s, "federation")));
	put(t, "} 1\n");
	family(t, "loket_uptime_seconds", "gauge", "Seconds since loketd started.");
	put(t, "loket_uptime_seconds %lld\n", (long long)int_of(s, "uptime_s"));
	family(t, "loket_origin_head_seq", "gauge",
	       "Highest contiguous seq held of each origin's chain.");
	json_object_foreach((json_t *)json_object_get(s, "heads"), k, v)
	{
		put(t, "loket_origin_head_seq{origin=");
		label(t, k);
		put(t, "} %lld\n", (long long)int_of(v, "seq"));
	}
	family(t, "loket_entities", "gauge", "Live entities held, per collection.");
	json_object_foreach((json_t *)json_object_get(s, "counts"), k, v)
	{
		put(t, "loket_entities{collection=");
		label(t, k);
		put(t, "} %lld\n", (long long)json_integer_value(v));
	}
	family(t, "loket_changesets", "gauge", "Changesets held, of every origin.");
	put(t, "loket_changesets %lld\n", (long long)int_of(s, "changesets"));
	family(t, "loket_fork_proofs", "gauge", "Origins frozen by a fork proof.");
	put(t, "loket_fork_proofs %zu\n", json_array_size(json_object_get(s, "forks")));
	family(t, "loket_split_view_proofs", "gauge", "Origins frozen by a split-view proof.");
	put(t, "loket_split_view_proofs %zu\n", json_array_size(json_object_get(s, "splits")));
	family(t, "loket_key_alarms", "gauge",
	       "Changesets or checkpoints under this node's key that it did not sign, seen since"
	       " loketd started (nonzero: the key is in someone else's hands).");
	put(t, "loket_key_alarms %lld\n",
	    (long long)json_integer_value(
	        json_object_get(json_object_get(s, "key_alarm"), "count")));
	family(t, "loket_search_index_behind_entities", "gauge",
	       "Entity writes the search index does not hold yet.");
	put(t, "loket_search_index_behind_entities %lld\n",
	    (long long)int_of(json_object_get(s, "index"), "behind"));
	family(t, "loket_writes_open", "gauge",
	       "1 when local writes are accepted, 0 when refused.");
	put(t, "loket_writes_open %d\n",
	    json_is_true(json_object_get(json_object_get(s, "writes"), "open")));
	const json_t *disk = json_object_get(s, "disk");
	family(t, "loket_store_size_bytes", "gauge", "Size of the store's files.");
	put(t, "loket_store_size_bytes{file=\"store\"} %lld\n",
	    (long long)int_of(disk, "store_bytes"));
	put(t, "loket_store_size_bytes{file=\"wal\"} %lld\n", (long long)int_of(disk, "wal_bytes"));
	put(t, "loket_store_size_bytes{file=\"index\"} %lld\n",
	    (long long)int_of(disk, "index_bytes"));
	family(t, "loket_disk_free_bytes", "gauge",
	       "Free bytes on the data directory's filesystem.");
	put(t, "loket_disk_free_bytes %lld\n", (long long)int_of(disk, "free_bytes"));
}

static void peer_metrics(struct text *t, const json_t *peers)
{
	size_t i;
	json_t *p;

	family(t, "loket_peer_session_up", "gauge",
	       "1 when a session with the member is up (dialled or accepted).");
	json_array_foreach(peers, i, p)
	{
		put(t, "loket_peer_session_up{member=");
		label(t, json_string_value(json_object_get(p, "name")));
		put(t, "} %d\n", json_is_string(json_object_get(p, "session")));
	}
	per_member(t, peers, "loket_peer_errors_total", "counter",
	           "Errors of the member: refused changesets, protocol errors, failed dials.",
	           "errors", 1);
	per_member(t, peers, "loket_peer_banned_seconds", "gauge",
	           "Seconds the member stays refused at the handshake after a protocol error.",
	           "banned_ms", 0.001);
	per_member(t, peers, "loket_peer_received_bytes_total", "counter",
	           "Bytes of sync messages received from the member.", "bytes_in", 1);
	per_member(t, peers, "loket_peer_sent_bytes_total", "counter",
	           "Bytes of sync messages sent to the member.", "bytes_out", 1);
	per_member(t, peers, "loket_peer_they_lack_changesets", "gauge",
	           "Changesets this node holds that the member does not, as far as known.",
	           "they_lack", 1);
	per_member(t, peers, "loket_peer_we_lack_changesets", "gauge",
	           "Changesets the member claims that this node does not hold.", "we_lack", 1);
}

static void counter_metrics(struct text *t, const json_t *c)
{
	static const char *const results[] = {"accepted", "duplicate", "gap",  "fork",
	                                      "refused",  "frozen",    "busy", NULL};
	family(t, "loket_received_changesets_total", "counter",
	       "Changesets received from peers, by what became of them.");
	for (size_t i = 0; results[i]; i++)
		put(t, "loket_received_changesets_total{result=\"%s\"} %lld\n", results[i],
		    (long long)int_of(c, results[i]));
	family(t, "loket_zap_refused_total", "counter",
	       "Connections refused at the handshake (not a member, or banned).");
	put(t, "loket_zap_refused_total %lld\n", (long long)int_of(c, "zap_refused"));
	family(t, "loket_listener_shut_connections_total", "counter",
	       "Connections to the listen port shut for going over the budget.");
	put(t, "loket_listener_shut_connections_total %lld\n", (long long)int_of(c, "conns_shut"));
}

static long long rss_bytes(void)
{
	long long pages = 0, resident = 0;
	FILE *f = fopen("/proc/self/statm", "r");
	if (!f)
		return 0;
	if (fscanf(f, "%lld %lld", &pages, &resident) != 2)
		resident = 0;
	fclose(f);
	return resident * sysconf(_SC_PAGESIZE);
}

char *metrics_render(const json_t *status, const json_t *peers, const json_t *counters,
                     double loop_lag_s, size_t *len)
{
	struct text t = {0};
	if (status)
		status_metrics(&t, status);
	if (peers)
		peer_metrics(&t, peers);
	if (counters)
		counter_metrics(&t, counters);
	family(&t, "loket_loop_lag_seconds", "gauge",
	       "How late the event loop ran its last one-second timer.");
	put(&t, "loket_loop_lag_seconds %.6f\n", loop_lag_s);
	family(&t, "process_resident_memory_bytes", "gauge", "Resident memory size in bytes.");
	put(&t, "process_resident_memory_bytes %lld\n", rss_bytes());
	*len = t.n;
	return t.p;
}

/* ---- the HTTP thread ---- */

static enum MHD_Result respond(struct MHD_Connection *c, unsigned status, const char *type,
                               void *body, size_t len, enum MHD_ResponseMemoryMode mode)
{
	struct MHD_Response *r = MHD_create_response_from_buffer(len, body, mode);
	if (!r)
		return MHD_NO;
	MHD_add_response_header(r, "Content-Type", type);
	enum MHD_Result rc = MHD_queue_response(c, status, r);
	MHD_destroy_response(r);
	return rc;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url,
                                  const char *method, const char *version, const char *upload,
                                  size_t *upload_len, void **con_cls)
{
	struct metrics *m = cls;
	static const char not_found[] = "only /metrics is served here\n";
	static const char not_allowed[] = "only GET is served here\n";
	(void)version;
	(void)upload;
	if (*upload_len > 0) {
		*upload_len = 0; /* a body is read and dropped; the reply says no */
		return MHD_YES;
	}
	if (!*con_cls) {
		*con_cls = m; /* the headers are in; answer once the request is whole */
		return MHD_YES;
	}
	if (strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0)
		return respond(c, MHD_HTTP_METHOD_NOT_ALLOWED, "text/plain", (void *)not_allowed,
		               sizeof(not_allowed) - 1, MHD_RESPMEM_PERSISTENT);
	if (strcmp(url, "/metrics") != 0)
		return respond(c, MHD_HTTP_NOT_FOUND, "text/plain", (void *)not_found,
		               sizeof(not_found) - 1, MHD_RESPMEM_PERSISTENT);
	pthread_mutex_lock(&m->lock);
	enum MHD_Result rc =
	    respond(c, MHD_HTTP_OK, "text/plain; version=0.0.4; charset=utf-8",
	            m->text ? m->text : (char *)"", m->text ? m->len : 0, MHD_RESPMEM_MUST_COPY);
	m->scrapes++;
	pthread_mutex_unlock(&m->lock);
	return rc;
}

/* ---- the loop thread ---- */

static void on_tick(uv_timer_t *timer)
{
	struct metrics *m = timer->data;
	uint64_t now = uv_now(m->loop);
	json_t *status = NULL, *peers = NULL, *counters = NULL;
	size_t len;

	m->loop_lag_s = now > m->due ? (double)(now - m->due) / 1000.0 : 0.0;
	m->due = now + METRICS_EVERY_MS;
	m->gather(m->gather_data, &status, &peers, &counters);
	char *text = metrics_render(status, peers, counters, m->loop_lag_s, &len);
	json_decref(status);
	json_decref(peers);
	json_decref(counters);
	pthread_mutex_lock(&m->lock);
	free(m->text);
	m->text = text;
	m->len = len;
	pthread_mutex_unlock(&m->lock);
}

/* Parses "HOST:PORT" (IPv6 as "[ADDR]:PORT") into addr. */
static int parse_listen(const char *listen, struct sockaddr_storage *addr)
{
	char host[64];
	const char *colon = strrchr(listen, ':');
	char *end;
	memset(addr, 0, sizeof(*addr));
	if (!colon || (size_t)(colon - listen) >= sizeof(host))
		return -1;
	unsigned long port = strtoul(colon + 1, &end, 10);
	if (*end || colon[1] == '\0' || port == 0 || port > 65535)
		return -1;
	memcpy(host, listen, (size_t)(colon - listen));
	host[colon - listen] = '\0';
	struct sockaddr_in *v4 = (struct sockaddr_in *)addr;
	struct sockaddr_in6 *v6 = (struct sockaddr_in6 *)addr;
	size_t hl = strlen(host);
	if (hl > 2 && host[0] == '[' && host[hl - 1] == ']') {
		host[hl - 1] = '\0';
		if (inet_pton(AF_INET6, host + 1, &v6->sin6_addr) != 1)
			return -1;
		v6->sin6_family = AF_INET6;
		v6->sin6_port = htons((uint16_t)port);
		return 0;
	}
	if (inet_pton(AF_INET, host, &v4->sin_addr) != 1)
		return -1;
	v4->sin_family = AF_INET;
	v4->sin_port = htons((uint16_t)port);
	return 0;
}

int metrics_init(struct metrics *m, uv_loop_t *loop, const char *listen, metrics_gather_fn *gather,
                 void *gather_data, char *err, size_t errlen)
{
	struct sockaddr_storage addr;
	char q[ERROR_QUOTE_SIZE];

	memset(m, 0, sizeof(*m));
	m->loop = loop;
	m->gather = gather;
	m->gather_data = gather_data;
	if (parse_listen(listen, &addr) != 0) {
		snprintf(err, errlen, "metrics: %s is not HOST:PORT with an IP address and a port",
		         error_quote_str(q, sizeof(q), listen));
		return LOKET_E_CONFIG;
	}
	pthread_mutex_init(&m->lock, NULL);
	unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_POLL;
	if (addr.ss_family == AF_INET6)
		flags |= MHD_USE_IPv6;
	m->httpd = MHD_start_daemon(
	    flags, 0, NULL, NULL, on_request, m, MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&addr,
	    MHD_OPTION_CONNECTION_LIMIT, (unsigned)METRICS_MAX_CONNECTIONS,
	    MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)METRICS_TIMEOUT_S, MHD_OPTION_END);
	if (!m->httpd) {
		snprintf(err, errlen, "metrics: cannot listen on %s: %s",
		         error_quote_str(q, sizeof(q), listen), strerror(errno));
		pthread_mutex_destroy(&m->lock);
		return LOKET_E_CONFIG;
	}
	uv_timer_init(loop, &m->timer);
	m->timer.data = m;
	m->due = uv_now(loop);
	on_tick(&m->timer);
	uv_timer_start(&m->timer, on_tick, METRICS_EVERY_MS, METRICS_EVERY_MS);
	m->running = 1;
	log_info("metrics: serving /metrics on %s", listen);
	return 0;
}

static void on_timer_closed(uv_handle_t *h)
{
	struct metrics *m = h->data;
	free(m->text);
	m->text = NULL;
	pthread_mutex_destroy(&m->lock);
	if (m->on_closed)
		m->on_closed(m);
}

void metrics_close(struct metrics *m, void (*cb)(struct metrics *m))
{
	m->on_closed = cb;
	if (!m->running) {
		if (cb)
			cb(m);
		return;
	}
	m->running = 0;
	MHD_stop_daemon(m->httpd);
	m->httpd = NULL;
	uv_close((uv_handle_t *)&m->timer, on_timer_closed);
}
