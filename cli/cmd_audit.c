/*
 * loket audit export FILE: writes the audit bundle of a store (proto/
 * FORMAT.md, section 15) for an auditor who has nothing else, checked by
 * `loket verify --bundle FILE`. Like verify it needs no daemon: it opens
 * the node's store (or any copy, --db) read-only and reads it in one read
 * transaction, so a running node is exported as it stood at one moment
 * while it goes on writing. The bundle is written as FILE.tmp, synced and
 * moved to FILE; an existing FILE is never replaced.
 */
#include <err.h>
#include <errno.h>
#include <fcntl.h>
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

struct out {
	FILE *f;
	unsigned long long bytes;
};

static int write_stdio(void *arg, const void *p, size_t n)
{
	struct out *o = arg;

	if (fwrite(p, 1, n, o->f) != n)
		return -errno ? -errno : -EIO;
	o->bytes += n;
	return 0;
}

static int audit_export_main(int argc, char *argv[])
{
	static const struct option options[] = {
	    {"db", required_argument, NULL, 'd'},
	    {"json", no_argument, NULL, 'j'},
	    {NULL, 0, NULL, 0},
	};
	const char *db = NULL, *file;
	struct config *cfg = NULL;
	struct store *s = NULL;
	struct cli_audit_copy copy = {{0}, {0}, {0}};
	struct out o = {NULL, 0};
	json_t *summary = NULL;
	char tmp[PATH_MAX + 8], err[3 * PATH_MAX], q[ERROR_QUOTE_SIZE];
	int c, fd = -1, json = 0, made = 0, status = CLI_EXIT_FAIL;
	struct store_bundle_revokes *rev = NULL;
	size_t n_rev = 0;

	while ((c = getopt_long(argc, argv, "", options, NULL)) != -1) {
		switch (c) {
		case 'd':
			db = optarg;
			break;
		case 'j':
			json = 1;
			break;
		default:
			warnx("audit export: unknown option or missing value: %s",
			      error_quote_str(q, sizeof(q), argv[optind - 1]));
			return CLI_EXIT_USAGE;
		}
	}
	if (optind != argc - 1) {
		warnx("audit export: takes one FILE, the bundle to write");
		return CLI_EXIT_USAGE;
	}
	file = argv[optind];
	if ((size_t)snprintf(tmp, sizeof(tmp), "%s.tmp", file) >= sizeof(tmp)) {
		warnx("audit export: the bundle's path is too long");
		goto cleanup;
	}
	if (access(file, F_OK) == 0) {
		warnx("%s exists; audit export never replaces a file",
		      error_quote_str(q, sizeof(q), file));
		goto cleanup;
	}
	if (cli_audit_store(db, &cfg, &s, &copy, err, sizeof(err)) < 0) {
		warnx("%s", err);
		goto cleanup;
	}
	fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
	if (fd < 0 || !(o.f = fdopen(fd, "wb"))) {
		warnx("cannot make %s: %s", error_quote_str(q, sizeof(q), tmp), strerror(errno));
		if (fd >= 0)
			close(fd);
		goto cleanup;
	}
	made = 1;
	setvbuf(o.f, NULL, _IOFBF, 1 << 20);
	/* The roster's revocations go into the bundle's roster entries (FORMAT.md, 15.2). */
	n_rev = cfg ? cfg->n_members : 0;
	rev = calloc(n_rev + 1, sizeof(*rev));
	if (!rev)
		abort();
	for (size_t i = 0; i < n_rev; i++) {
		memcpy(rev[i].origin, cfg->members[i].key, 32);
		rev[i].n = cfg->members[i].n_revoked;
		for (size_t k = 0; k < rev[i].n; k++) {
			memcpy(rev[i].revoked[k].key, cfg->members[i].revoked[k].key, 32);
			rev[i].revoked[k].after = cfg->members[i].revoked[k].after;
		}
	}
	if (store_bundle_export(s, cfg ? cfg->federation : NULL, rev, n_rev, write_stdio, &o,
	                        &summary) < 0) {
		warnx("cannot export %s: %s", error_quote_str(q, sizeof(q), copy.store),
		      store_errmsg(s));
		goto cleanup;
	}
	if (fflush(o.f) != 0 || fsync(fileno(o.f)) < 0) {
		warnx("cannot write %s: %s", error_quote_str(q, sizeof(q), tmp), strerror(errno));
		goto cleanup;
	}
	if (link(tmp, file) < 0) {
		warnx("cannot make %s: %s", error_quote_str(q, sizeof(q), file), strerror(errno));
		goto cleanup;
	}
	if (json_object_set_new(summary, "file", json_string(file)) < 0 ||
	    json_object_set_new(summary, "bytes", json_integer((json_int_t)o.bytes)) < 0)
		abort();
	if (json) {
		if (cli_print_json(summary) < 0)
			goto cleanup;
	} else {
		printf("%s: %llu bytes, %lld changesets of %lld origins, %lld ops, %lld roster "
		       "entries, %lld checkpoints, %lld split-view proofs, %lld fork proofs, "
		       "digest %s\n",
		       file, o.bytes, cli_json_int(summary, "changesets", 0),
		       cli_json_int(summary, "origins", 0), cli_json_int(summary, "ops", 0),
		       cli_json_int(summary, "members", 0), cli_json_int(summary, "checkpoints", 0),
		       cli_json_int(summary, "splits", 0), cli_json_int(summary, "forks", 0),
		       cli_json_str(summary, "digest"));
	}
	status = CLI_EXIT_OK;
cleanup:
	if (o.f)
		fclose(o.f);
	if (made)
		unlink(tmp);
	json_decref(summary);
	store_close(s);
	cli_audit_copy_remove(&copy);
	free(rev);
	config_free(cfg);
	return status;
}

int audit_main(int argc, char *argv[])
{
	if (argc >= 2 && !strcmp(argv[1], "export"))
		return audit_export_main(argc - 1, argv + 1);
	if (argc < 2)
		warnx("audit: which? export");
	else
		warnx("audit: unknown subcommand %s (there is export)",
		      error_quote_str((char[ERROR_QUOTE_SIZE]){0}, ERROR_QUOTE_SIZE, argv[1]));
	return CLI_EXIT_USAGE;
}
