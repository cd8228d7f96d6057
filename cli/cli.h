/*
 * cli: what the subcommands of loket share. It holds the one piece of
 * global state the program has (which configuration file -c chose), loads
 * that configuration, connects to the daemon, parses bounded numbers,
 * checks the ops that put and import send, and prints results: JSON as the
 * daemon sent it, or the readable form of an entity. Nothing here prints an
 * error: functions return a code and a sentence, and the subcommand that
 * called them decides what to say and how to exit.
 */
#ifndef LOKET_CLI_H
#define LOKET_CLI_H

#include <stddef.h>

#include <jansson.h>

#include "cli/client.h"
#include "common/config.h"

/* Exit statuses: success, failure, usage error; status of an unhealthy node. */
enum {
	CLI_EXIT_OK = 0,
	CLI_EXIT_FAIL = 1,
	CLI_EXIT_USAGE = 2,
	CLI_EXIT_UNHEALTHY = 3,
};

#define CLI_LIMIT_MAX 100000L

/*
 * The configuration file every subcommand reads. explicit is 1 when the
 * user chose it (-c or $LOKET_CONF), 0 for the built-in default; verify
 * uses that to decide whether --db comes with a roster.
 */
void cli_set_config_path(const char *path, int explicit);
const char *cli_config_path(void);
int cli_config_explicit(void);

/* Loads the configuration; errors read "FILE:LINE: reason". */
int cli_load_config(struct config **out, char *err, size_t errlen);

/*
 * Loads the configuration and connects to its daemon. On failure nothing
 * is left allocated. Free both with config_free and client_free.
 */
int cli_connect(struct config **cfg, struct client **client, char *err, size_t errlen);

/*
 * One request to the daemon of the current configuration: connect, call,
 * disconnect. *result gets the reply's result on success.
 */
int cli_request(const json_t *req, int timeout_ms, json_t **result, char *err, size_t errlen);

/* Parses a decimal limit in 1..CLI_LIMIT_MAX; -EINVAL otherwise, with a sentence naming what. */
int cli_parse_limit(const char *s, long *out, char *err, size_t errlen);

/*
 * Prints v as JSON and a newline on stdout: indented on a terminal,
 * compact (one line) otherwise. Returns 0 or -EIO.
 */
int cli_print_json(const json_t *v);

/*
 * Sends req_take (consumed), waits at most timeout_ms, and prints the
 * result with print, or as JSON when json is set. Returns the exit status.
 */
int cli_request_print_take(int timeout_ms, json_t *req_take, int json,
                           void (*print)(const json_t *result));

/*
 * Prints an entity for people: a line "COLL/OWNER/ID", then one line
 * "  key: value" per field, strings as they are and other values as
 * compact JSON.
 */
void cli_print_entity(const json_t *entity);

/*
 * Prints the [member NAME] section that other nodes paste into their
 * configuration: name, public key (base64) and, when the node listens, the
 * endpoint they dial. A listen address on every interface (0.0.0.0, *,
 * [::]) cannot be dialled, so the endpoint then names this host (its
 * fully qualified name where the resolver knows one), with a comment
 * saying so.
 */
void cli_print_member(const char *name, const char *key_b64, const char *listen);

/*
 * Opening a store for an offline audit (cmd_verify.c): read-only, writing
 * nothing beside it, consistent while a loketd writes it; a store copied
 * with a -wal but no -shm is opened as a copy in $TMPDIR, which
 * cli_audit_copy_remove removes. verify, prove and audit export share it.
 */
struct store;
struct cli_audit_copy {
	char dir[4096];
	char db[4096 + 16];
	char store[4096]; /* the store asked for (cli_audit_store), for messages */
};
int cli_audit_open(const char *path, struct store **s, struct cli_audit_copy *copy, char *err,
                   size_t errlen);
void cli_audit_copy_remove(struct cli_audit_copy *c);
/*
 * The store an audit command reads: --db (db, non-NULL) or the configured
 * node's, with the configuration loaded into *cfg unless db is given alone
 * (then *cfg stays NULL); opened as cli_audit_open does. 0, or a code with
 * a sentence in err.
 */
int cli_audit_store(const char *db, struct config **cfg, struct store **s,
                    struct cli_audit_copy *copy, char *err, size_t errlen);

/* A JSON value as a string member of obj, or NULL if absent or not a string. */
const char *cli_json_str(const json_t *obj, const char *key);
/* An integer member of obj, or dflt if absent or not an integer. */
long long cli_json_int(const json_t *obj, const char *key, long long dflt);

#endif
