/*
 * The node configuration: an INI file with one [node] section and one
 * [member NAME] section per roster member. The parser does no I/O: feed it
 * lines with config_parse_line between config_parse_begin and
 * config_parse_finish (that is what the fuzz harness does); config_load
 * reads a file through it.
 *
 *   [node]
 *   name = universiteit             ; required, [a-z0-9_-], 1..64 bytes
 *   federation = leiden             ; default "default"
 *   listen = tcp://127.0.0.1:7400   ; optional; sync endpoint
 *   data = data                     ; store directory; default "."
 *   key = node.key                  ; default "node.key"
 *   sync_interval = 10              ; seconds between anti-entropy rounds
 *   log_level = info                ; error, warn, info, debug
 *   metrics = 127.0.0.1:9740        ; optional; Prometheus /metrics (off by default)
 *
 *   [member lumc]
 *   key = BASE64 (44 chars)         ; required: Ed25519 public key, a valid
 *                                   ; point, not all zeros, not the node's own
 *   endpoint = tcp://127.0.0.1:7401 ; optional: dialled if present
 *   revoke = BASE64 after SEQ       ; optional, up to 4 lines: the key (any key of
 *                                   ; the member's history, proto/FORMAT.md section
 *                                   ; 14) signs nothing of this member above SEQ
 *
 *   [http]                          ; optional: read by loket-http only
 *   listen = 127.0.0.1:8470         ; ADDRESS:PORT (IPv4, localhost or [IPv6])
 *   tokens = http.tokens            ; the bearer token file; default "http.tokens"
 *   timeout = 10                    ; seconds of silence before a connection is dropped,
 *                                   ; and the longest a request may take to arrive
 *   rate = 100                      ; requests a second per client (token, else address)
 *   burst = 200                     ; requests a client may make at once, above the rate
 *   connections = 64                ; connections at once, in all (1..1024)
 *   client_connections = 16         ; connections at once from one address (1..1024)
 *   stream_max = 3600               ; seconds an event stream lasts before it ends
 *
 * Endpoints are tcp://HOST:PORT: an IPv4 address, [IPv6], or a host name
 * (listen also '*'), and a port 1..65535. The file must be a regular file
 * of at most 1 MiB, each line at most 4096 bytes.
 *
 * Relative paths are relative to the directory of the config file. Comments
 * start with ';' or '#'. Unknown sections or keys, duplicates and malformed
 * lines are errors naming the file and line.
 */
#ifndef LOKET_CONFIG_H
#define LOKET_CONFIG_H

#include <limits.h>
#include <stddef.h>
#include <stdint.h>

#include "proto/limits.h"

#define CONFIG_ENDPOINT_MAX                    256
#define CONFIG_HTTP_LISTEN_MAX                 64
#define CONFIG_HTTP_TIMEOUT_MIN                1u
#define CONFIG_HTTP_TIMEOUT_MAX                3600u
#define CONFIG_HTTP_TIMEOUT_DEFAULT            10u
#define CONFIG_HTTP_RATE_DEFAULT               100u
#define CONFIG_HTTP_BURST_DEFAULT              200u
#define CONFIG_HTTP_CONNECTIONS_DEFAULT        64u
#define CONFIG_HTTP_CLIENT_CONNECTIONS_DEFAULT 16u
#define CONFIG_HTTP_STREAM_MAX_DEFAULT         3600u

#define CONFIG_REVOKE_MAX 4

/* A key known to be stolen: what it signs for the member above seq after is refused. */
struct config_revoke {
	uint8_t key[32];
	uint64_t after;
};

struct config_member {
	char name[LOKET_MAX_NAME_LEN + 1];
	uint8_t key[32]; /* the member's origin: the first key of its history */
	size_t n_revoked;
	struct config_revoke revoked[CONFIG_REVOKE_MAX];
	char endpoint[CONFIG_ENDPOINT_MAX]; /* "" if none */
	unsigned line;                      /* of its key, for messages */
};

struct config {
	char path[PATH_MAX]; /* the file it came from, "" if parsed from lines */
	char name[LOKET_MAX_NAME_LEN + 1];
	char federation[LOKET_MAX_FEDERATION_LEN + 1];
	char listen[CONFIG_ENDPOINT_MAX]; /* "" if none */
	char data[PATH_MAX];              /* resolved against the config's directory */
	char key[PATH_MAX];               /* resolved against the config's directory */
	unsigned sync_interval_s;
	int log_level;
	char metrics[CONFIG_ENDPOINT_MAX];        /* HOST:PORT of /metrics; "" if off */
	char http_listen[CONFIG_HTTP_LISTEN_MAX]; /* [http] listen, default 127.0.0.1:8470 */
	char http_tokens[PATH_MAX];               /* [http] tokens, resolved */
	unsigned http_timeout_s;                  /* [http] timeout */
	unsigned http_rate;                       /* [http] rate, requests a second per client */
	unsigned http_burst;                      /* [http] burst */
	unsigned http_connections;                /* [http] connections */
	unsigned http_client_connections;         /* [http] client_connections */
	unsigned http_stream_max_s;               /* [http] stream_max */
	size_t n_members;
	struct config_member *members;
};

struct config_parser;

/* base_dir resolves relative paths; file names the input in messages. */
int config_parse_begin(struct config_parser **out, const char *file, const char *base_dir);
/* One line without its newline; line numbers count from 1 as lines are fed. */
int config_parse_line(struct config_parser *cp, const char *line, size_t len, char *err,
                      size_t errlen);
/* Checks required keys; on success hands over the config. Frees the parser either way. */
int config_parse_finish(struct config_parser *cp, struct config **out, char *err, size_t errlen);

/* Reads and parses path. Errors read "FILE:LINE: reason". */
int config_load(const char *path, struct config **out, char *err, size_t errlen);
void config_free(struct config *cfg);

/*
 * The node's own public key may not be a member's: it would be its own
 * peer. Known only once the key file is read, so checked then (loketd at
 * start and on every reload): 0, or LOKET_E_CONFIG with "FILE:LINE: ..."
 * in err.
 */
int config_check_self(const struct config *cfg, const uint8_t self[32], char *err, size_t errlen);

const struct config_member *config_member_by_key(const struct config *cfg, const uint8_t key[32]);
const struct config_member *config_member_by_name(const struct config *cfg, const char *name);

/*
 * The roster's revocation that refuses a changeset of origin at seq signed
 * by key (key revoked for that member after a seq below seq), or NULL.
 */
const struct config_revoke *config_revoked(const struct config *cfg, const uint8_t origin[32],
                                           const uint8_t key[32], uint64_t seq);
/* 1 if the roster revokes key for origin at all (ZAP refuses it as a CURVE key). */
int config_key_revoked(const struct config *cfg, const uint8_t origin[32], const uint8_t key[32]);

/* Keys as written in files: standard base64 with padding, 44 characters. */
int config_key_decode(const char *b64, uint8_t key[32]);
void config_key_encode(const uint8_t key[32], char out[45]);

#endif
