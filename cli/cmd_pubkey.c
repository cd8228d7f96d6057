/*
 * loket pubkey: prints the node's public key, base64, as rosters and
 * `loket init` write it. Only the key module reads the secret; this asks it
 * for the public half.
 */
#include <err.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>

#include "cli/cli.h"
#include "cli/subcommands.h"
#include "common/config.h"
#include "common/key.h"
#include "common/rotate.h"

int pubkey_main(int argc, char *argv[])
{
	struct config *cfg = NULL;
	struct key *key = NULL;
	char err[PATH_MAX + 256], pub[45];
	uint8_t pk[32];
	int status = CLI_EXIT_FAIL;

	(void)argv;
	if (argc != 1) {
		warnx("pubkey: takes no arguments");
		return CLI_EXIT_USAGE;
	}
	if (cli_load_config(&cfg, err, sizeof(err)) < 0) {
		warnx("%s", err);
		goto cleanup;
	}
	if (key_load(cfg->key, &key, err, sizeof(err)) < 0) {
		warnx("%s", err);
		goto cleanup;
	}
	key_public(key, pk);
	/* The roster names the origin: the first key, after any rotation too. */
	if (rotate_origin(cfg->key, pk, pk, err, sizeof(err)) < 0) {
		warnx("%s", err);
		goto cleanup;
	}
	config_key_encode(pk, pub);
	printf("%s\n", pub);
	status = CLI_EXIT_OK;
cleanup:
	key_free(key);
	config_free(cfg);
	return status;
}
