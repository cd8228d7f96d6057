/*
 * loket prove: writes the inclusion proof of the changesets that made an
 * entity (COLL/OWNER/ID), or of one changeset (ORIGIN SEQ), against the
 * latest checkpoint of their origin that the store holds, with its
 * cosignatures (proto/FORMAT.md, section 15.6). Like verify and audit
 * export it reads the store itself, read-only, in one read transaction,
 * so it needs no daemon and works beside a running one. The proof is
 * checked alone by `loket verify --proof FILE`.
 */
#include <err.h>
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli.h"
#include "cli/subcommands.h"
#include "common/paths.h"
#include "proto/error.h"
#include "store/store.h"

int prove_main(int argc, char *argv[])
{
	static const struct option options[] = {
	    {"db", required_argument, NULL, 'd'},
	    {"out", required_argument, NULL, 'o'},
	    {NULL, 0, NULL, 0},
	};
	const char *db = NULL, *out = NULL;
	char err[3 * PATH_MAX], q[ERROR_QUOTE_SIZE], ref[512];
	char *coll = NULL, *owner = NULL, *id = NULL, *end = NULL;
	unsigned long long seq = 0;
	struct config *cfg = NULL;
	struct store *s = NULL;
	struct cli_audit_copy copy = {{0}, {0}, {0}};
	json_t *proof = NULL;
	int c, status = CLI_EXIT_FAIL;

	while ((c = getopt_long(argc, argv, "", options, NULL)) != -1) {
		switch (c) {
		case 'd':
			db = optarg;
			break;
		case 'o':
			out = optarg;
			break;
		default:
			warnx("prove: unknown option or missing value: %s",
			      error_quote_str(q, sizeof(q), argv[optind - 1]));
			return CLI_EXIT_USAGE;
		}
	}
	if (argc - optind == 1) {
		/* COLL/OWNER/ID: neither COLL nor OWNER holds a '/'; ID is the rest. */
		char *s1 = NULL, *s2 = NULL;
		if ((size_t)snprintf(ref, sizeof(ref), "%s", argv[optind]) < sizeof(ref) &&
		    (s1 = strchr(ref, '/')) && (s2 = strchr(s1 + 1, '/'))) {
			*s1 = *s2 = '\0';
			coll = ref;
			owner = s1 + 1;
			id = s2 + 1;
		}
		if (!coll || !*coll || !*owner || !*id) {
			warnx("prove: %s is not COLL/OWNER/ID",
			      error_quote_str(q, sizeof(q), argv[optind]));
			return CLI_EXIT_USAGE;
		}
	} else if (argc - optind == 2) {
		owner = argv[optind];
		errno = 0;
		seq = strtoull(argv[optind + 1], &end, 10);
		if (errno || !*argv[optind + 1] || *end || seq < 1 || seq > INT64_MAX) {
			warnx("prove: seq %s is not a number from 1",
			      error_quote_str(q, sizeof(q), argv[optind + 1]));
			return CLI_EXIT_USAGE;
		}
	} else {
		warnx("prove: takes COLL/OWNER/ID, or ORIGIN SEQ");
		return CLI_EXIT_USAGE;
	}
	if (cli_audit_store(db, &cfg, &s, &copy, err, sizeof(err)) < 0) {
		warnx("%s", err);
		goto cleanup;
	}
	if (store_prove(s, coll, owner, id, seq, &proof) < 0) {
		if (coll)
			warnx("cannot prove %s: %s",
			      error_quotef(q, sizeof(q), "%s/%s/%s", coll, owner, id),
			      store_errmsg(s));
		else
			warnx("cannot prove %s seq %llu: %s", error_quote_str(q, sizeof(q), owner),
			      seq, store_errmsg(s));
		goto cleanup;
	}
	if (out) {
		if (access(out, F_OK) == 0) {
			warnx("%s exists; prove never replaces a file",
			      error_quote_str(q, sizeof(q), out));
			goto cleanup;
		}
		if (json_dump_file(proof, out, JSON_INDENT(1)) < 0) {
			warnx("cannot write %s", error_quote_str(q, sizeof(q), out));
			goto cleanup;
		}
	} else if (json_dumpf(proof, stdout, JSON_INDENT(1)) < 0 || putchar('\n') == EOF) {
		goto cleanup;
	}
	status = CLI_EXIT_OK;
cleanup:
	json_decref(proof);
	store_close(s);
	cli_audit_copy_remove(&copy);
	config_free(cfg);
	return status;
}
