/*
 * loket verify: the auditor's command. It needs no daemon: it opens the
 * store read-only (the node's own, or any copy given with --db) and has
 * store_verify check every signature, chain link and seq, the roster,
 * forks, and the state digest replayed from scratch. The roster is the
 * configuration's members plus this node itself; an auditor holding only a
 * store file and no configuration gets every other check, and is told that
 * membership was not checked. The exit status is 0 only when nothing was
 * found.
 *
 * An audit writes nothing, not even beside the store: a backup on
 * read-only media must open, and a backup's directory must look the same
 * afterwards. SQLite in WAL mode wants a -shm file (and a -wal) next to the
 * database, and a read-only connection leaves both behind, so cli_audit_open
 * chooses by what lies beside the file:
 *
 * - a -wal and a -shm: a store in use (a running loketd always has both)
 *   or one left so; an ordinary read-only open takes the locks, reads the
 *   WAL and creates nothing;
 * - no -wal, or an empty one (a checkpointed backup, like sqlite3's
 *   .backup makes): every transaction is in the file itself, so it opens
 *   immutable (no lock, nothing created); the file must not be written
 *   while verify runs, which is what a missing -wal says of a WAL store;
 * - a -wal with frames but no -shm (a backup copied with its WAL): the
 *   WAL holds committed transactions that an immutable open would miss,
 *   and an ordinary open would have to create the -shm, so the two files
 *   are copied into a private temporary directory, audited there, and
 *   removed;
 * - a -journal (a rollback-mode store with a hot journal, never loket's
 *   own): an ordinary read-only open, which refuses if it must roll back.
 */
#include <err.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli/cli.h"
#include "cli/subcommands.h"
#include "common/key.h"
#include "common/rotate.h"
#include "common/paths.h"
#include "proto/error.h"
#include "store/store.h"

#define VERIFY_NO_ROSTER "roster: not checked (--db without -c or $LOKET_CONF)"

static int add_key(json_t *roster, const uint8_t pk[32])
{
	char b64[45];

	config_key_encode(pk, b64);
	return json_array_append_new(roster, json_string(b64));
}

/* A member with the keys it revokes: {"key": ORIGIN, "revoke": [[KEY, AFTER], ...]}. */
static int add_member(json_t *roster, const struct config_member *m)
{
	char b64[45];
	json_t *o, *list;

	if (m->n_revoked == 0)
		return add_key(roster, m->key);
	config_key_encode(m->key, b64);
	o = json_pack("{s:s, s:[]}", "key", b64, "revoke");
	if (!o)
		return -1;
	list = json_object_get(o, "revoke");
	for (size_t i = 0; i < m->n_revoked; i++) {
		config_key_encode(m->revoked[i].key, b64);
		json_array_append_new(list,
		                      json_pack("[s, I]", b64, (json_int_t)m->revoked[i].after));
	}
	return json_array_append_new(roster, o);
}

/*
 * The roster as store_verify takes it: base64 keys of the members and of
 * this node. This node's key comes from its key file if this user may read
 * it, else from the store's member table.
 */
static int build_roster(const struct config *cfg, struct store *s, json_t **out, char *err,
                        size_t errlen)
{
	json_t *roster = json_array();
	struct key *key = NULL;
	uint8_t pk[32];
	char kerr[PATH_MAX + 256], q[ERROR_QUOTE_SIZE];

	if (!roster)
		abort();
	for (size_t i = 0; i < cfg->n_members; i++)
		if (add_member(roster, &cfg->members[i]) < 0)
			abort();
	int own = key_load(cfg->key, &key, kerr, sizeof(kerr)) == 0;
	if (own) {
		/* The roster names the origin: the first key, after any rotation too. */
		key_public(key, pk);
		key_free(key);
		own = rotate_origin(cfg->key, pk, pk, kerr, sizeof(kerr)) == 0;
	}
	if (!own && store_member_key(s, cfg->name, pk) < 0) {
		snprintf(err, errlen,
		         "cannot tell this node's own key: %s; and the store names no member %s",
		         kerr, error_quote_str(q, sizeof(q), cfg->name));
		json_decref(roster);
		return LOKET_E_NOT_FOUND;
	}
	if (add_key(roster, pk) < 0)
		abort();
	*out = roster;
	return 0;
}

/* Copies the file from into the new file to; -errno. */
static int copy_file(const char *from, const char *to)
{
	static char buf[1 << 20];
	int in = open(from, O_RDONLY | O_CLOEXEC), out = -1, rc = 0;
	ssize_t n;

	if (in < 0)
		return -errno;
	out = open(to, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (out < 0) {
		rc = -errno;
		goto cleanup;
	}
	while ((n = read(in, buf, sizeof(buf))) != 0) {
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			rc = -errno;
			goto cleanup;
		}
		for (ssize_t done = 0; done < n;) {
			ssize_t w = write(out, buf + done, (size_t)(n - done));
			if (w < 0 && errno == EINTR)
				continue;
			if (w < 0) {
				rc = -errno;
				goto cleanup;
			}
			done += w;
		}
	}
cleanup:
	if (out >= 0 && close(out) < 0 && rc == 0)
		rc = -errno;
	close(in);
	return rc;
}

void cli_audit_copy_remove(struct cli_audit_copy *c)
{
	static const char *const suffix[] = {"", "-wal", "-shm", "-journal"};
	char path[PATH_MAX + 16];

	if (!c->dir[0])
		return;
	for (size_t i = 0; i < sizeof(suffix) / sizeof(suffix[0]); i++) {
		snprintf(path, sizeof(path), "%s%s", c->db, suffix[i]);
		unlink(path);
	}
	rmdir(c->dir);
	c->dir[0] = '\0';
}

/* Whether path followed by suffix exists; its size in *size. */
static int beside(const char *path, const char *suffix, off_t *size)
{
	char name[PATH_MAX + 16];
	struct stat st;

	if (snprintf(name, sizeof(name), "%s%s", path, suffix) >= (int)sizeof(name))
		return 0;
	if (lstat(name, &st) < 0)
		return 0;
	*size = st.st_size;
	return 1;
}

/* Opens the store at path for the audit, writing nothing beside it (see the top). */
int cli_audit_open(const char *path, struct store **s, struct cli_audit_copy *copy, char *err,
                   size_t errlen)
{
	off_t wal_size = 0, size;
	int wal = beside(path, "-wal", &wal_size), shm = beside(path, "-shm", &size);
	const char *tmp = getenv("TMPDIR");
	int rc;

	if (beside(path, "-journal", &size) || (wal && shm))
		return store_open(path, STORE_READONLY, s, err, errlen);
	if (!wal || wal_size == 0)
		return store_open(path, STORE_READONLY | STORE_IMMUTABLE, s, err, errlen);

	char wal_path[PATH_MAX + 8], wal_copy[PATH_MAX + 32];
	if (snprintf(copy->dir, sizeof(copy->dir), "%s/loket-verify.XXXXXX",
	             tmp && tmp[0] ? tmp : "/tmp") >= (int)sizeof(copy->dir) ||
	    !mkdtemp(copy->dir)) {
		snprintf(err, errlen,
		         "%s-wal holds transactions and there is no -shm, so verify reads a copy; "
		         "cannot make a directory for it: %s",
		         path, strerror(errno));
		copy->dir[0] = '\0';
		return -errno;
	}
	snprintf(copy->db, sizeof(copy->db), "%s/" LOKET_STORE_FILE, copy->dir);
	snprintf(wal_path, sizeof(wal_path), "%s-wal", path);
	snprintf(wal_copy, sizeof(wal_copy), "%s-wal", copy->db);
	if ((rc = copy_file(path, copy->db)) < 0 || (rc = copy_file(wal_path, wal_copy)) < 0) {
		snprintf(err, errlen,
		         "%s-wal holds transactions and there is no -shm, so verify reads a copy; "
		         "cannot copy it to %s: %s",
		         path, copy->dir, strerror(-rc));
		cli_audit_copy_remove(copy);
		return rc;
	}
	return store_open(copy->db, STORE_READONLY, s, err, errlen);
}

int cli_audit_store(const char *db, struct config **cfg, struct store **s,
                    struct cli_audit_copy *copy, char *err, size_t errlen)
{
	char *path = copy->store, q[ERROR_QUOTE_SIZE];
	size_t size = sizeof(copy->store);
	int n, rc;

	/* A store given alone is audited without a roster. */
	if (!db || cli_config_explicit()) {
		if ((rc = cli_load_config(cfg, err, errlen)) < 0)
			return rc;
	}
	n = db ? snprintf(path, size, "%s", db)
	       : snprintf(path, size, "%s/%s", (*cfg)->data, LOKET_STORE_FILE);
	if (n < 0 || (size_t)n >= size) {
		snprintf(err, errlen, "the store's path is too long");
		return -ENAMETOOLONG;
	}
	if (access(path, R_OK) < 0) {
		rc = -errno;
		snprintf(err, errlen, "cannot read the store %s: %s",
		         error_quote_str(q, sizeof(q), path), strerror(errno));
		return rc;
	}
	return cli_audit_open(path, s, copy, err, errlen);
}

static void print_report(const json_t *report, int roster_checked)
{
	json_t *problems = json_object_get(report, "problems");
	const char *digest = cli_json_str(report, "digest");
	json_t *p;
	size_t i;

	if (!roster_checked)
		printf("%s\n", VERIFY_NO_ROSTER);
	json_array_foreach(problems, i, p)
	{
		const char *origin = cli_json_str(p, "origin");
		const char *problem = cli_json_str(p, "problem");
		json_t *seq = json_object_get(p, "seq");

		if (origin && json_is_integer(seq))
			printf("%s seq %lld: ", origin, (long long)json_integer_value(seq));
		else if (origin)
			printf("%s: ", origin);
		printf("%s\n", problem ? problem : "unknown problem");
	}
	printf("verified %lld changesets, %lld ops, digest %s: ",
	       cli_json_int(report, "changesets", 0), cli_json_int(report, "ops", 0),
	       digest ? digest : "?");
	if (json_is_true(json_object_get(report, "ok")))
		printf("ok\n");
	else
		printf("%zu problem%s\n", json_array_size(problems),
		       json_array_size(problems) == 1 ? "" : "s");
}

/* Reads the bundle from a FILE*, for store_bundle_verify. */
static int read_stdio(void *arg, uint8_t *buf, size_t n, size_t *got)
{
	FILE *f = arg;

	*got = fread(buf, 1, n, f);
	return *got < n && ferror(f) ? -EIO : 0;
}

static void print_bundle_report(const json_t *report)
{
	json_t *p, *forks = json_object_get(report, "forks");
	json_t *problems = json_object_get(report, "problems");
	const char *digest = cli_json_str(report, "digest");
	size_t i;

	printf("bundle of federation %s: %lld roster entries, %lld origins, %lld changesets, "
	       "%lld ops, %lld entities\n",
	       cli_json_str(report, "federation") ? cli_json_str(report, "federation") : "?",
	       cli_json_int(report, "members", 0), cli_json_int(report, "origins", 0),
	       cli_json_int(report, "changesets", 0), cli_json_int(report, "ops", 0),
	       cli_json_int(report, "entities", 0));
	json_array_foreach(forks, i, p)
	{
		json_t *h = json_object_get(p, "hashes");
		printf(
		    "fork: %s seq %lld: the origin signed two changesets for this seq, hashes %s "
		    "and %s; the proof holds and the origin is frozen before it\n",
		    cli_json_str(p, "origin"), cli_json_int(p, "seq", 0),
		    json_string_value(json_array_get(h, 0)),
		    json_string_value(json_array_get(h, 1)));
	}
	json_array_foreach(json_object_get(report, "checkpoints"), i, p)
	{
		json_t *names = json_object_get(p, "cosigners"), *n;
		const char *tree = cli_json_str(p, "tree");
		size_t k;

		printf("checkpoint: %s size %lld: signed by its origin, cosigned by %zu distinct "
		       "member%s",
		       cli_json_str(p, "origin"), cli_json_int(p, "size", 0),
		       json_array_size(names), json_array_size(names) == 1 ? "" : "s");
		json_array_foreach(names, k, n)
		    printf("%s%s", k ? ", " : " (", json_string_value(n));
		printf("%s; %s\n", json_array_size(names) ? ")" : "",
		       tree && !strcmp(tree, "matches") ? "the tree of its changesets matches"
		       : tree && !strcmp(tree, "differs")
		           ? "the tree of its changesets differs"
		           : "the bundle does not hold its changesets up to that size");
	}
	json_array_foreach(json_object_get(report, "splits"), i, p)
	{
		const char *tree = cli_json_str(p, "tree");

		if (cli_json_int(p, "notes", 2) == 2)
			printf(
			    "split view: %s size %lld: the origin signed two checkpoints of this "
			    "size with different roots; the proof holds and the origin is frozen "
			    "at "
			    "that size\n",
			    cli_json_str(p, "origin"), cli_json_int(p, "size", 0));
		else
			printf("split view: %s size %lld: the origin signed a checkpoint whose "
			       "root is "
			       "not the tree of its changesets; %s\n",
			       cli_json_str(p, "origin"), cli_json_int(p, "size", 0),
			       tree && !strcmp(tree, "differs")
			           ? "the bundle's tree differs: the proof holds and the origin is "
			             "frozen at that size"
			           : "the bundle does not hold the changesets to check it");
	}
	json_array_foreach(problems, i, p)
	{
		const char *section = cli_json_str(p, "section");
		const char *origin = cli_json_str(p, "origin");
		json_t *seq = json_object_get(p, "seq");

		if (section && !strcmp(section, "manifest"))
			printf("manifest");
		else if (section && !strcmp(section, "end"))
			printf("end record");
		else if (section && !strcmp(section, "bundle"))
			printf("bundle");
		else if (section)
			printf("section %s", section);
		if (origin)
			printf(", origin %s", origin);
		if (json_is_integer(seq))
			printf(", seq %lld", (long long)json_integer_value(seq));
		printf(": %s\n", cli_json_str(p, "problem") ? cli_json_str(p, "problem") : "?");
	}
	printf("verified bundle: %lld changesets, %lld ops, digest %s: ",
	       cli_json_int(report, "changesets", 0), cli_json_int(report, "ops", 0),
	       digest ? digest : "?");
	if (json_is_true(json_object_get(report, "ok")))
		printf("ok\n");
	else
		printf("%zu problem%s\n", json_array_size(problems),
		       json_array_size(problems) == 1 ? "" : "s");
}

/* verify --bundle FILE: no store, no configuration. */
static int verify_bundle(const char *file, int json)
{
	json_t *report = NULL;
	char q[ERROR_QUOTE_SIZE];
	int status = CLI_EXIT_FAIL;
	FILE *f = strcmp(file, "-") ? fopen(file, "rb") : stdin;

	if (!f) {
		warnx("cannot open the bundle %s: %s", error_quote_str(q, sizeof(q), file),
		      strerror(errno));
		return CLI_EXIT_FAIL;
	}
	setvbuf(f, NULL, _IOFBF, 1 << 20);
	if (store_bundle_verify(read_stdio, f, &report) < 0) {
		warnx("cannot verify the bundle %s", error_quote_str(q, sizeof(q), file));
		goto cleanup;
	}
	if (json ? cli_print_json(report) < 0 : (print_bundle_report(report), 0))
		goto cleanup;
	if (json_is_true(json_object_get(report, "ok")))
		status = CLI_EXIT_OK;
cleanup:
	json_decref(report);
	if (f != stdin)
		fclose(f);
	return status;
}

/* verify --proof FILE: the proof alone, against the keys pinned. */
static int verify_proof(const char *file, uint8_t (*pinned)[32], size_t n_pinned, int json)
{
	json_t *proof = NULL, *report = NULL, *p;
	json_error_t jerr;
	char q[ERROR_QUOTE_SIZE];
	struct stat st;
	int status = CLI_EXIT_FAIL;
	size_t i;

	/* A proof holds at most STORE_PROOF_MAX_CHANGESETS changesets of 1 MiB, in base64. */
	if (stat(file, &st) < 0 || st.st_size > (off_t)STORE_PROOF_MAX_CHANGESETS * 1400 * 1024) {
		warnx("cannot read the proof %s: %s", error_quote_str(q, sizeof(q), file),
		      errno && st.st_size == 0 ? strerror(errno) : "larger than a proof can be");
		return CLI_EXIT_FAIL;
	}
	proof = json_load_file(file, JSON_REJECT_DUPLICATES, &jerr);
	if (!proof) {
		warnx("%s:%d: not a proof: %s", file, jerr.line, jerr.text);
		return CLI_EXIT_FAIL;
	}
	store_proof_verify(proof, (const uint8_t(*)[32])pinned, n_pinned, &report);
	if (json) {
		if (cli_print_json(report) < 0)
			goto cleanup;
	} else {
		if (!n_pinned)
			printf(
			    "keys: taken from the proof itself (pin them with --key or -c CONF)\n");
		long long rot = cli_json_int(report, "rotations", 0);
		char after[80] = "";
		if (rot)
			snprintf(after, sizeof(after), " (its key after %lld rotation record%s)",
			         rot, rot == 1 ? "" : "s");
		printf(
		    "checkpoint: %s size %lld, signed by its origin%s, cosigned by %lld distinct "
		    "member%s\n",
		    cli_json_str(report, "origin") ? cli_json_str(report, "origin") : "?",
		    cli_json_int(report, "size", 0), after, cli_json_int(report, "cosigned", 0),
		    cli_json_int(report, "cosigned", 0) == 1 ? "" : "s");
		json_array_foreach(json_object_get(report, "problems"), i, p)
		    printf("%s\n", json_string_value(p));
		printf("verified proof of %lld changeset%s: %s\n",
		       cli_json_int(report, "changesets", 0),
		       cli_json_int(report, "changesets", 0) == 1 ? "" : "s",
		       json_is_true(json_object_get(report, "ok")) ? "ok" : "not ok");
	}
	if (json_is_true(json_object_get(report, "ok")))
		status = CLI_EXIT_OK;
cleanup:
	json_decref(proof);
	json_decref(report);
	return status;
}

int verify_main(int argc, char *argv[])
{
	static const struct option options[] = {
	    {"db", required_argument, NULL, 'd'},    {"bundle", required_argument, NULL, 'b'},
	    {"proof", required_argument, NULL, 'p'}, {"key", required_argument, NULL, 'k'},
	    {"json", no_argument, NULL, 'j'},        {NULL, 0, NULL, 0},
	};
	const char *db = NULL, *bundle = NULL, *proof = NULL;
	uint8_t(*pinned)[32] = NULL;
	size_t n_pinned = 0;
	struct config *cfg = NULL;
	struct store *s = NULL;
	json_t *roster = NULL, *report = NULL;
	struct cli_audit_copy copy = {{0}, {0}, {0}};
	char err[3 * PATH_MAX], q[ERROR_QUOTE_SIZE];
	int c, json = 0, status = CLI_EXIT_FAIL;

	while ((c = getopt_long(argc, argv, "", options, NULL)) != -1) {
		switch (c) {
		case 'd':
			db = optarg;
			break;
		case 'b':
			bundle = optarg;
			break;
		case 'p':
			proof = optarg;
			break;
		case 'k':
			pinned = realloc(pinned, (n_pinned + 1) * sizeof(*pinned));
			if (!pinned)
				abort();
			if (config_key_decode(optarg, pinned[n_pinned]) < 0) {
				warnx("verify: --key %s is not a base64 key",
				      error_quote_str(q, sizeof(q), optarg));
				free(pinned);
				return CLI_EXIT_USAGE;
			}
			n_pinned++;
			break;
		case 'j':
			json = 1;
			break;
		default:
			warnx("verify: unknown option or missing value: %s",
			      error_quote_str(q, sizeof(q), argv[optind - 1]));
			return CLI_EXIT_USAGE;
		}
	}
	if (optind != argc) {
		warnx("verify: takes no arguments besides options");
		return CLI_EXIT_USAGE;
	}
	if (!!bundle + !!db + !!proof > 1 || (n_pinned && !proof)) {
		warnx("verify: --db, --bundle and --proof audit different things; give one (--key "
		      "goes with --proof)");
		free(pinned);
		return CLI_EXIT_USAGE;
	}
	if (bundle)
		return verify_bundle(bundle, json);
	if (proof) {
		/* The roster of an explicit configuration is pinned too. */
		if (cli_config_explicit() && cli_load_config(&cfg, err, sizeof(err)) == 0) {
			pinned = realloc(pinned, (n_pinned + cfg->n_members + 1) * sizeof(*pinned));
			if (!pinned)
				abort();
			for (size_t i = 0; i < cfg->n_members; i++)
				memcpy(pinned[n_pinned++], cfg->members[i].key, 32);
			struct key *k = NULL;
			char kerr[PATH_MAX + 256];
			if (key_load(cfg->key, &k, kerr, sizeof(kerr)) == 0) {
				key_public(k, pinned[n_pinned++]);
				key_free(k);
			}
			config_free(cfg);
			cfg = NULL;
		}
		status = verify_proof(proof, pinned, n_pinned, json);
		free(pinned);
		return status;
	}

	if (cli_audit_store(db, &cfg, &s, &copy, err, sizeof(err)) < 0) {
		warnx("%s", err);
		goto cleanup;
	}
	if (cfg && build_roster(cfg, s, &roster, err, sizeof(err)) < 0) {
		warnx("%s", err);
		goto cleanup;
	}
	if (store_verify(s, roster, &report) < 0) {
		warnx("cannot verify %s: %s", error_quote_str(q, sizeof(q), copy.store),
		      store_errmsg(s));
		goto cleanup;
	}
	if (json) {
		if (json_object_set_new(report, "roster_checked", json_boolean(roster != NULL)) < 0)
			abort();
		if (cli_print_json(report) < 0)
			goto cleanup;
	} else {
		print_report(report, roster != NULL);
	}
	if (json_is_true(json_object_get(report, "ok")))
		status = CLI_EXIT_OK;
cleanup:
	json_decref(report);
	json_decref(roster);
	store_close(s);
	cli_audit_copy_remove(&copy);
	config_free(cfg);
	return status;
}
