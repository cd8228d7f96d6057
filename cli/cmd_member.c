/*
 * loket member: prints this node's [member NAME] section again, as `loket
 * init` printed it, for an administrator adding this node to a peer's
 * roster. The public key comes from the key file when this user may read
 * it (root, or the node's own user); an administrator who may only talk to
 * the daemon (group loket: the key file is the daemon's alone) gets it from
 * the running loketd's status instead.
 */
#include <err.h>
#include <errno.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/subcommands.h"
#include "common/config.h"
#include "common/key.h"
#include "common/rotate.h"

/* The key as the daemon reports it: 44 characters of base64 that decode to 32 bytes. */
static int daemon_key(char out[45], char *err, size_t errlen)
{
	json_t *req = json_pack("{s:s}", "cmd", "status"), *result = NULL;
	uint8_t pk[32];
	int rc;

	if (!req)
		abort();
	rc = cli_request(req, CLIENT_TIMEOUT_MS, &result, err, errlen);
	json_decref(req);
	if (rc < 0)
		return rc;
	const char *key = cli_json_str(result, "key");
	if (!key || strlen(key) != 44 || config_key_decode(key, pk) < 0) {
		snprintf(err, errlen, "loketd's status has no valid \"key\"");
		json_decref(result);
		return -EPROTO;
	}
	memcpy(out, key, 45);
	json_decref(result);
	return 0;
}

int member_main(int argc, char *argv[])
{
	struct config *cfg = NULL;
	struct key *key = NULL;
	char err[PATH_MAX + 256], derr[512], pub[45];
	uint8_t pk[32];
	int status = CLI_EXIT_FAIL;

	(void)argv;
	if (argc != 1) {
		warnx("member: takes no arguments");
		return CLI_EXIT_USAGE;
	}
	if (cli_load_config(&cfg, err, sizeof(err)) < 0) {
		warnx("%s", err);
		goto cleanup;
	}
	if (key_load(cfg->key, &key, err, sizeof(err)) == 0 &&
	    (key_public(key, pk), rotate_origin(cfg->key, pk, pk, err, sizeof(err))) == 0) {
		/* The roster names the origin: the first key, after any rotation too. */
		config_key_encode(pk, pub);
	} else if (daemon_key(pub, derr, sizeof(derr)) < 0) {
		warnx("%s", err);
		warnx("and loketd cannot tell the key either: %s", derr);
		goto cleanup;
	}
	cli_print_member(cfg->name, pub, cfg->listen);
	status = CLI_EXIT_OK;
cleanup:
	key_free(key);
	config_free(cfg);
	return status;
}
