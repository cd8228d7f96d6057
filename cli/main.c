/*
 * loket: the command line of a loket node. This file only wires things
 * together: it parses the global options, finds the subcommand in the
 * table below and runs it. The table is also the help, for the program and
 * for each subcommand, so the usage printed can never drift from what runs,
 * and the COMMANDS section of loket(1): the build makes it with the hidden
 * option --man (man/loket.1.in has the rest of the page).
 * A subcommand that returns 2 (usage error) has already said what was
 * wrong; main then prints its usage. Output is checked once at the end:
 * a full disk or a closed pipe on stdout is a failure, as in git.
 */
#include <err.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/subcommands.h"
#include "common/paths.h"
#include "proto/error.h"

static const struct {
	const char *name;
	int (*function)(int, char *[]);
	const char *args;
	const char *description;
	const char *options; /* lines explaining the arguments, or NULL */
} subcommands[] = {
    {"init", init_main,
     "DIR --name NAME [--listen tcp://HOST:PORT] [--federation NAME] [--data DIR]",
     "Creates a node in DIR: key, configuration and data directory",
     "  --name NAME        this node's name in rosters ([a-z0-9_-], 1 to 64 bytes)\n"
     "  --listen ENDPOINT  where peers dial this node, tcp://HOST:PORT\n"
     "  --federation NAME  the federation the node belongs to (default \"default\")\n"
     "  --data DIR         the store's directory (default DIR/data; relative to DIR)\n"
     "Prints this node's [member NAME] section, to paste into the configuration of every\n"
     "other node (`loket member` prints it again later).\n"},
    {"member", member_main, "",
     "Prints this node's [member] section for the configuration of its peers",
     "Name, public key and the endpoint to dial ([node] listen; a listen address on every\n"
     "interface is replaced by this host's name). The key comes from the key file, or from\n"
     "the running loketd when this user may not read the key file.\n"},
    {"pubkey", pubkey_main, "", "Prints this node's public key (base64)", NULL},
    {"status", status_main, "[--timeout S] [--json]",
     "Shows this node: heads, counts, digest, forks, writes, peers, disk",
     "  --timeout S  wait at most S seconds for loketd (default 5)\n"
     "Exits 0 when the node is healthy, 3 when it answered but is not (local writes\n"
     "refused, a fork proof held, the search index failing), saying why on stderr,\n"
     "and 1 when it cannot be reached in time.\n"},
    {"get", get_main, "COLL ID [--owner NAME] [--json]",
     "Shows an entity as every owner holds it, or as one owner does", NULL},
    {"list", list_main, "COLL [--owner NAME] [--limit N] [--json]",
     "Lists the entities of a collection (default limit 100)", NULL},
    {"search", search_main, "TEXT... [--coll COLL] [--limit N] [--json]",
     "Searches the text of all entities, best match first (default limit 20)", NULL},
    {"show", show_main, "COLL/OWNER/ID [--json]",
     "Shows an entity of any node with its links followed",
     "  COLL/OWNER/ID  like expert/universiteit/ineke-brandsma\n"
     "Follows an expert's, resource's or project's org, a project's partners, a question's\n"
     "responses (who sent them, with kind and status) and accepted responses, a response's\n"
     "question, and an org's experts, resources and projects. A reference to something this\n"
     "node does not hold, or an org given as a plain name, is shown as it is.\n"},
    {"experts", experts_main, "[--topic T] [--org O] [--limit N] [--json]",
     "Lists the experts of every institution, by institution and name",
     "  --topic T  only experts with topic T; case and diacritics are ignored\n"
     "             (--topic Cooperatie finds \"coöperatie\")\n"
     "  --org O    only experts of org O: the org field (a reference OWNER/ID or a name),\n"
     "             its OWNER or ID part, or the name of the org it refers to\n"
     "  --limit N  at most N experts (default 100)\n"},
    {"match", match_main, "QUESTION-REF [--limit N] [--json]",
     "Suggests experts, resources and projects of every institution for a question",
     "  QUESTION-REF  OWNER/ID of a question, like gemeente/eenzaamheid-merenwijk\n"
     "  --limit N     at most N suggestions (default 10)\n"
     "Each shared topic counts 1; the question's words (title, body, neighbourhood,\n"
     "topics, Dutch and English, stopwords dropped) count up to 2 by bm25. Every\n"
     "suggestion names its shared topics and matched terms.\n"},
    {"query", query_main, "SQL [--json]",
     "Runs one read-only SQL SELECT over the views of the collections",
     "  SQL  one SELECT over the views org, expert, resource, project, question and\n"
     "       response, like \"SELECT owner, id, name FROM expert ORDER BY name\"\n"
     "Each view has owner (member name), id, seq, hlc, a column per field (arrays and\n"
     "maps as JSON text) and fields (the whole object as JSON). Anything but a read is\n"
     "refused. At most 10000 rows, stopped after 2 seconds.\n"},
    {"changes", changes_main, "[--since CURSOR] [--coll COLL] [--owner NAME] [--follow]",
     "Prints the entities changed after CURSOR, in the order applied, as JSON lines",
     "  the cursor to resume from follows on standard error (\"cursor CURSOR\"); --follow\n"
     "  goes on printing changes as they come; a cursor from before a rebuild is refused\n"},
    {"export", export_main, "[COLL...] [--owner NAME] [-o FILE]",
     "Writes entities as JSON Lines that loket import reads, a page at a time",
     "  COLL          the collections to export (default: every one the node holds)\n"
     "  --owner NAME  only NAME's entities; an export of this node's own, imported into\n"
     "                another node, gives it the same entities (import makes them its own,\n"
     "                so two owners' entities of one id would merge)\n"
     "  -o FILE       write FILE, in place only once the export is complete\n"
     "An entity that exists from the start to the end of the export is written once.\n"},
    {"token", token_main, "add NAME --scope SCOPE [--file F]",
     "Makes a bearer token for loket-http, prints it once, appends its hash to [http] tokens",
     "  SCOPE: read, write:* or write:COLL,COLL...\n"},
    {"log", log_main, "[--origin NAME] [--limit N] [--json]",
     "Shows the signed changesets, newest first (default limit 20)", NULL},
    {"put", put_main, "COLL ID --json FIELDS [--output json]",
     "Sets fields of this node's entity COLL/ID; a null value clears a field",
     "  --json FIELDS   a JSON object, like '{\"name\":\"Ada\",\"phone\":null}'\n"
     "  --output json   print {\"seq\":N,\"entity\":{...}} instead of text\n"},
    {"del", del_main, "COLL ID [--output json]", "Deletes this node's entity COLL/ID", NULL},
    {"import", import_main, "FILE|-",
     "Applies a JSON Lines file of puts and deletes; re-running it is safe",
     "  One op per line: {\"coll\":C,\"id\":I,\"fields\":{...}} or "
     "{\"coll\":C,\"id\":I,\"del\":true}.\n"
     "  A bad line stops the import after applying every line before it.\n"},
    {"board", board_main, "[--status S] [--topic T] [--kind K] [--limit N] [--json]",
     "Shows the questions of the whole federation, newest first, with their responses",
     "  --status S  only questions in status S: open, matched, in_progress, answered,\n"
     "              closed or withdrawn (a question without a status is open)\n"
     "  --topic T   only questions with topic T (ASCII letters in any case)\n"
     "  --kind K    only questions of kind K: research, thesis, internship, contest,\n"
     "              pitch, science-shop or advice\n"
     "  --limit N   at most N questions (default 100)\n"
     "Counts responses that are not withdrawn, and the responses the asker accepted.\n"},
    {"ask", ask_main,
     "[ID] --title T --body B --topic X... --kind K --asker NAME --asker-kind KIND "
     "[--neighbourhood N] [--deadline YYYY-MM-DD] [--title-en T] [--body-en B]",
     "Puts a question on the board, at this node, with status open",
     "  ID                 the question's id; without it one is made from the title\n"
     "                     (\"Eenzaamheid in de Merenwijk\" gives eenzaamheid-in-de-merenwijk,\n"
     "                     then -2, -3 ... if this node already has that id)\n"
     "  --topic X          a topic; repeat it for more\n"
     "  --kind K           research, thesis, internship, contest, pitch, science-shop, advice\n"
     "  --asker-kind KIND  citizen, neighbourhood, association, company, municipality,\n"
     "                     school or institution\n"
     "Prints the question's reference, OWNER/ID.\n"},
    {"respond", respond_main,
     "QUESTION-REF --kind offer|claim|answer|referral --text T [--team T] [--contact C] "
     "[--text-en T] [--id ID]",
     "Responds to a question of any node, from this node, with status offered",
     "  QUESTION-REF  OWNER/ID of a question this node holds\n"
     "  --id ID       the response's id; without it one is made from QUESTION-REF\n"
     "Prints the response's reference, OWNER/ID, which the asker accepts.\n"},
    {"accept", accept_main, "QUESTION-ID RESPONSE-REF",
     "Accepts a response to one of this node's questions (an open question becomes matched)", NULL},
    {"close", close_main, "QUESTION-ID", "Closes one of this node's questions", NULL},
    {"withdraw", withdraw_main, "QUESTION-ID | --response RESPONSE-ID",
     "Withdraws one of this node's questions, or one of its responses", NULL},
    {"peers", peers_main, "[--json]",
     "Shows the sync session with each member: up, last seen, who lacks what, errors", NULL},
    {"checkpoints", checkpoints_main, "[--json]",
     "Shows the latest checkpoint of every origin's log (size, root) and who cosigned it", NULL},
    {"reload", reload_main, "[--json]",
     "Makes loketd re-read the roster from its configuration (as SIGHUP does)", NULL},
    {"resume", resume_main, "--force [--json]",
     "Opens local writes that wait for this node's own chain, when no peer holds it",
     "  --force  required: if this node signed changesets beyond its store's head that are\n"
     "           lost, its next write forks its chain, and every node freezes its chain\n"
     "           at that point\n"
     "loketd refuses writes while a restored or wiped store lacks the tail of the chain\n"
     "that node.key.head records, or that record is missing or damaged; `loket status`\n"
     "says why. resume rewrites the record to the store's own head and opens writes. It is\n"
     "refused while writes are open, after this node's key has signed two histories, and\n"
     "while a connected peer says it holds more of this node's chain than the store.\n"},
    {"rotate-key", rotate_key_main, "[--json]",
     "Gives this node a new key; its origin, entities and chain stay",
     "loketd makes a new key beside node.key, signs with the old key a rotation record\n"
     "naming it as the next changeset of this node's chain, puts the new key in place of\n"
     "node.key (the old one is kept as node.key.old-SEQ, SEQ the record's seq) and signs\n"
     "with it from then on. Peers follow the record: their rosters keep naming the origin,\n"
     "this node's first key (`loket pubkey`). loketd must be able to create files in the\n"
     "key's directory. Refused while local writes are refused.\n"},
    {"rebuild", rebuild_main, "[--json]",
     "Recreates entities, search index and digest from the changesets", NULL},
    {"backup", backup_main, "FILE [--json]",
     "Copies the running node's store into FILE, a new file, while it runs",
     "  FILE  the copy to make; an existing file is never replaced. loketd writes it\n"
     "        (a relative path is made absolute first), so it must be where loketd may\n"
     "        write and this user may look: under systemd in /var/lib/loket or a\n"
     "        ReadWritePaths= directory, not /tmp (loketd's is private)\n"
     "The copy holds every write acknowledged before the backup began, and whatever\n"
     "lands while it is made. It is one file: check it with `loket verify --db FILE`,\n"
     "put it back with `loket restore FILE`.\n"},
    {"restore", restore_main, "FILE",
     "Puts a backup in place as this node's store, while loketd is stopped",
     "  FILE  a store made by `loket backup`; first checked to be a loket store of a\n"
     "        schema this loket knows that passes SQLite's integrity_check\n"
     "Refused while loketd runs. Replaces DATA/" LOKET_STORE_FILE " and removes the old store's\n"
     "write-ahead log and shared memory (-wal, -shm) and the search index (-index),\n"
     "which loketd builds again. A node put back to an older state takes its newer\n"
     "changesets back from its peers before it writes.\n"},
    {"verify", verify_main, "[--db FILE | --bundle FILE | --proof FILE [--key KEY]...] [--json]",
     "Audits a store or an audit bundle offline: signatures, chains, roster, forks, digest",
     "  --db FILE      the store to audit (default: the configuration's data/" LOKET_STORE_FILE
     ");\n"
     "                 without -c or $LOKET_CONF, membership in the roster is not checked\n"
     "  --bundle FILE  an audit bundle (`loket audit export`), checked alone, with no store\n"
     "                 and no configuration; - reads it from standard input\n"
     "  --proof FILE   an inclusion proof (`loket prove`), checked alone\n"
     "  --key KEY      pin a key (base64) for --proof: the origin must be one, and only\n"
     "                 cosignatures of pinned keys count; with -c or $LOKET_CONF the\n"
     "                 configuration's roster is pinned too\n"
     "Writes nothing, also not beside the store, so a backup on read-only media can be\n"
     "audited; a store copied with its -wal but no -shm is audited as a copy in $TMPDIR.\n"
     "A bundle is checked whole: every signature, chain link and fork proof, the state\n"
     "replayed from scratch, and every count, head and hash of its manifest. A fork proof\n"
     "that holds is reported and is not a problem of the bundle.\n"},
    {"prove", prove_main, "COLL/OWNER/ID | ORIGIN SEQ [--db STORE] [--out FILE]",
     "Writes an inclusion proof of an entity's changesets against their latest checkpoint",
     "  COLL/OWNER/ID  the changesets of OWNER with an op on the entity, like\n"
     "                 expert/universiteit/jdevries\n"
     "  ORIGIN SEQ     one changeset of ORIGIN (a member's name or a base64 key)\n"
     "  --db STORE     read that store file (default: the configuration's data/" LOKET_STORE_FILE
     ")\n"
     "  --out FILE     write the proof there, a new file (default: standard output)\n"
     "The proof is JSON: the changesets' bytes, each one's inclusion path, and the\n"
     "origin's latest checkpoint with its cosignatures. Check it alone with\n"
     "`loket verify --proof FILE`. A changeset newer than the latest checkpoint waits\n"
     "for the next one.\n"},
    {"audit", audit_main, "export FILE [--db STORE] [--json]",
     "Writes an audit bundle: every changeset, the roster, fork proofs and a manifest",
     "  FILE        the bundle to write, a new file (an existing one is never replaced)\n"
     "  --db STORE  export that store file (default: the configuration's data/" LOKET_STORE_FILE
     ")\n"
     "Reads the store itself, as verify does, in one read transaction: a running node is\n"
     "exported as it stood at one moment, without stopping it. Check the bundle anywhere\n"
     "with `loket verify --bundle FILE`; its format is section 15 of proto/FORMAT.md.\n"},
};

#define N_SUBCOMMANDS (sizeof(subcommands) / sizeof(subcommands[0]))

static void show_usage(FILE *f)
{
	fprintf(f, "Usage: loket [-c FILE] <cmd> [<args>]\n\n");
	fprintf(f, "Commands:\n");
	for (size_t i = 0; i < N_SUBCOMMANDS; i++)
		fprintf(f, "  %-8s %s\n", subcommands[i].name, subcommands[i].description);
	fprintf(f, "\nOptions:\n"
	           "  -c FILE    configuration (default $LOKET_CONF, else " LOKET_DEFAULT_CONF ")\n"
	           "  --help     this help; `loket <cmd> --help' shows a command's usage\n"
	           "  --version  the version\n");
}

static void show_subcommand_usage(FILE *f, size_t i, int full)
{
	fprintf(f, "Usage: loket %s%s%s\n", subcommands[i].name, subcommands[i].args[0] ? " " : "",
	        subcommands[i].args);
	if (!full)
		return;
	fprintf(f, "%s.\n", subcommands[i].description);
	if (subcommands[i].options)
		fputs(subcommands[i].options, f);
}

/*
 * Writes s as roff text: a backslash is \e and a hyphen \- (so that an
 * option copied from the page is a minus sign), a line that would start
 * with a control character ('.' or '\'') is protected with \&, quotes
 * and backquotes are named (\(dq, \(ga) so that they print as typed, and UTF-8
 * becomes \[uXXXX] so that the page is ASCII.
 */
static void man_text(FILE *f, const char *s)
{
	int bol = 1;

	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		if (bol && (*p == '.' || *p == '\''))
			fputs("\\&", f);
		bol = *p == '\n';
		if (*p == '\\') {
			fputs("\\e", f);
		} else if (*p == '-') {
			fputs("\\-", f);
		} else if (*p == '"') {
			fputs("\\(dq", f);
		} else if (*p == '`') {
			fputs("\\(ga", f);
		} else if (*p >= 0xc0 && *p < 0xf0 && (p[1] & 0xc0) == 0x80 &&
		           (*p < 0xe0 || (p[2] & 0xc0) == 0x80)) {
			unsigned cp =
			    *p < 0xe0 ? (*p & 0x1fu) << 6 | (p[1] & 0x3fu)
			              : (*p & 0x0fu) << 12 | (p[1] & 0x3fu) << 6 | (p[2] & 0x3fu);
			fprintf(f, "\\[u%04X]", cp);
			p += *p < 0xe0 ? 1 : 2;
		} else {
			fputc(*p, f);
		}
	}
}

/* The COMMANDS section of loket(1), in roff, from the table. */
static void show_man(FILE *f)
{
	fputs(".SH COMMANDS\n", f);
	for (size_t i = 0; i < N_SUBCOMMANDS; i++) {
		fputs(".SS \"loket ", f);
		man_text(f, subcommands[i].name);
		if (subcommands[i].args[0]) {
			fputc(' ', f);
			man_text(f, subcommands[i].args);
		}
		fputs("\"\n", f);
		man_text(f, subcommands[i].description);
		fputs(".\n", f);
		if (subcommands[i].options) {
			fputs(".PP\n.RS 4\n.nf\n", f);
			man_text(f, subcommands[i].options);
			fputs(".fi\n.RE\n", f);
		}
	}
}

/* Whether the subcommand's arguments ask for help (before any "--"). */
static int wants_help(int argc, char *argv[])
{
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--"))
			return 0;
		if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h"))
			return 1;
	}
	return 0;
}

/* Exit status after a successful run: stdout must have been written in full. */
static int finish(int status)
{
	if (fflush(stdout) != 0 || ferror(stdout)) {
		warnx("error writing to standard output");
		return CLI_EXIT_FAIL;
	}
	return status;
}

int main(int argc, char *argv[])
{
	static const struct option options[] = {
	    {"help", no_argument, NULL, 'h'},
	    {"version", no_argument, NULL, 'V'},
	    {"man", no_argument, NULL, 'M'}, /* for the build: the COMMANDS of loket(1) */
	    {NULL, 0, NULL, 0},
	};
	const char *conf = NULL;
	int c;
	char q[ERROR_QUOTE_SIZE];

	opterr = 0; /* each command words its own option errors */
	while ((c = getopt_long(argc, argv, "+c:hV", options, NULL)) != -1) {
		switch (c) {
		case 'c':
			conf = optarg;
			break;
		case 'h':
			show_usage(stdout);
			return finish(CLI_EXIT_OK);
		case 'V':
			printf("loket %s\n", LOKET_VERSION);
			return finish(CLI_EXIT_OK);
		case 'M':
			show_man(stdout);
			return finish(CLI_EXIT_OK);
		default:
			warnx("unknown option or missing value: %s",
			      error_quote_str(q, sizeof(q), argv[optind - 1]));
			show_usage(stderr);
			return CLI_EXIT_USAGE;
		}
	}
	if (conf)
		cli_set_config_path(conf, 1);
	else if (getenv("LOKET_CONF") && getenv("LOKET_CONF")[0])
		cli_set_config_path(getenv("LOKET_CONF"), 1);

	if (optind >= argc) {
		show_usage(stderr);
		return CLI_EXIT_USAGE;
	}
	argc -= optind;
	argv += optind;
	for (size_t i = 0; i < N_SUBCOMMANDS; i++) {
		if (strcmp(argv[0], subcommands[i].name) != 0)
			continue;
		if (wants_help(argc, argv)) {
			show_subcommand_usage(stdout, i, 1);
			return finish(CLI_EXIT_OK);
		}
		optind = 0; /* glibc: start afresh on the subcommand's argv */
		int status = subcommands[i].function(argc, argv);
		if (status == CLI_EXIT_USAGE) {
			show_subcommand_usage(stderr, i, 0);
			return status;
		}
		return finish(status);
	}
	warnx("unknown command %s", error_quote_str(q, sizeof(q), argv[0]));
	show_usage(stderr);
	return CLI_EXIT_USAGE;
}
