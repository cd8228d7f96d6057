/*
 * The writing verbs of the question board: ask, respond, accept, close and
 * withdraw. Each is made of the ordinary control requests (a "get" to see
 * what this node holds, then a one-op "put"), so the daemon's schema checks
 * and reference checks apply to them as to any write, and its sentences are
 * what the user reads. Entities are single-writer: a node can only change
 * its own questions and responses, so a verb given another owner's
 * reference says whose node can change it instead of writing anything.
 * Changing a field of an existing entity is a put of that field alone (puts
 * merge); accept reads accepted[] first and writes the extended array.
 */
#include <err.h>
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/subcommands.h"
#include "common/op_check.h"
#include "proto/changeset.h"
#include "proto/error.h"
#include "proto/limits.h"

#define SLUG_MAX     64   /* bytes of an id made from a title */
#define SLUG_TRIES   1000 /* -2 .. -1000 before giving up */
#define ASK_MAX_TOPS 64   /* --topic given at most this often */

/* OWNER/ID split into its parts. */
struct ref {
	char owner[LOKET_MAX_NAME_LEN + 1];
	char id[LOKET_MAX_ID_LEN + 1];
};

/* What a verb works with: this node's configuration and a daemon connection. */
struct conn {
	struct config *cfg;
	struct client *client;
};

static void conn_close(struct conn *c)
{
	client_free(c->client);
	config_free(c->cfg);
	c->client = NULL;
	c->cfg = NULL;
}

/*
 * Folds one code point of Latin-1 Supplement or Latin Extended-A to ASCII
 * letters ("é" to "e", "ĳ" to "ij"); returns the letters (in one, for a
 * single letter), or NULL when the code point is not a letter there (it
 * then separates words).
 */
static const char *fold_latin(unsigned cp, char one[2])
{
	/* U+00C0..U+00FF; '*' marks the letters spelled with two. */
	static const char latin1[] = "aaaaaa*ceeeeiiiidnooooo ouuuuy**"
	                             "aaaaaa*ceeeeiiiidnooooo ouuuuy*y";
	/* U+0100..U+017F, pairs of capital and small letter mostly. */
	static const char ext_a[] = "aaaaaaccccccccddddeeeeeeeeeegggggggghhhhiiiiiiiiii**jjkkk"
	                            "llllllllllnnnnnnnnnoooooo**rrrrrrsssssssstttttt"
	                            "uuuuuuuuuuuuwwyyyzzzzzzs";
	_Static_assert(sizeof(latin1) == 65, "64 code points from U+00C0");
	_Static_assert(sizeof(ext_a) == 129, "128 code points from U+0100");
	switch (cp) {
	case 0xc6:
	case 0xe6:
		return "ae";
	case 0xde:
	case 0xfe:
		return "th";
	case 0xdf:
		return "ss";
	case 0x132:
	case 0x133:
		return "ij";
	case 0x152:
	case 0x153:
		return "oe";
	default:
		break;
	}
	one[1] = '\0';
	if (cp >= 0xc0 && cp <= 0xff)
		one[0] = latin1[cp - 0xc0];
	else if (cp >= 0x100 && cp <= 0x17f)
		one[0] = ext_a[cp - 0x100];
	else
		return NULL;
	return one[0] == ' ' ? NULL : one;
}

/* Decodes the UTF-8 sequence at p (len bytes left); *n its length. 0xFFFD if invalid. */
static unsigned utf8_next(const unsigned char *p, size_t len, size_t *n)
{
	unsigned cp, need, min;

	*n = 1;
	if (p[0] < 0x80)
		return p[0];
	if ((p[0] & 0xe0) == 0xc0) {
		need = 1;
		cp = p[0] & 0x1fu;
		min = 0x80;
	} else if ((p[0] & 0xf0) == 0xe0) {
		need = 2;
		cp = p[0] & 0x0fu;
		min = 0x800;
	} else if ((p[0] & 0xf8) == 0xf0) {
		need = 3;
		cp = p[0] & 0x07u;
		min = 0x10000;
	} else {
		return 0xfffd;
	}
	if (len <= need)
		return 0xfffd;
	for (unsigned i = 1; i <= need; i++) {
		if ((p[i] & 0xc0) != 0x80)
			return 0xfffd;
		cp = (cp << 6) | (p[i] & 0x3fu);
	}
	if (cp < min || cp > 0x10ffff)
		return 0xfffd;
	*n = need + 1;
	return cp;
}

/*
 * The id a title gives: lowercase ASCII letters and digits, diacritics
 * folded, every other run of characters one '-', none at either end, at
 * most max bytes (cut at the end, then trailing '-' removed). Apostrophes
 * and combining marks vanish without separating ("Jan's" gives "jans").
 * out has room for max + 1 bytes; it may come out empty.
 */
static void slugify(const char *text, char *out, size_t max)
{
	const unsigned char *p = (const unsigned char *)text;
	size_t len = strlen(text), o = 0, n;
	int dash = 0;

	while (len > 0 && o < max) {
		unsigned cp = utf8_next(p, len, &n);
		const char *letters = NULL;
		char ascii[2] = {0, 0}, one[2];

		p += n;
		len -= n;
		if ((cp >= '0' && cp <= '9') || (cp >= 'a' && cp <= 'z')) {
			ascii[0] = (char)cp;
			letters = ascii;
		} else if (cp >= 'A' && cp <= 'Z') {
			ascii[0] = (char)(cp - 'A' + 'a');
			letters = ascii;
		} else if (cp == '\'' || cp == 0x2019 || (cp >= 0x300 && cp <= 0x36f)) {
			continue;
		} else {
			letters = fold_latin(cp, one);
		}
		if (!letters) {
			dash = o > 0;
			continue;
		}
		if (dash && o < max)
			out[o++] = '-';
		dash = 0;
		for (; *letters && o < max; letters++)
			out[o++] = *letters;
	}
	while (o > 0 && out[o - 1] == '-')
		o--;
	out[o] = '\0';
}

/* Parses "OWNER/ID", or a bare "ID" naming self's entity when self is not NULL. */
static int parse_ref(const char *s, const char *self, const char *what, struct ref *r, char *err,
                     size_t errlen)
{
	const char *slash = strchr(s, '/');
	const char *id = slash ? slash + 1 : s;
	size_t owner_len = slash ? (size_t)(slash - s) : 0;
	char q[ERROR_QUOTE_SIZE];

	if (!slash && self) {
		snprintf(r->owner, sizeof(r->owner), "%s", self);
	} else {
		int ok = slash && owner_len > 0 && owner_len <= LOKET_MAX_NAME_LEN;
		for (size_t i = 0; ok && i < owner_len; i++)
			ok = (s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9') ||
			     s[i] == '_' || s[i] == '-';
		if (!ok) {
			snprintf(err, errlen,
			         "%s %s is not a reference OWNER/ID (OWNER a member name "
			         "of a-z, 0-9, '_' and '-')",
			         what, error_quote_str(q, sizeof(q), s));
			return -1;
		}
		memcpy(r->owner, s, owner_len);
		r->owner[owner_len] = '\0';
	}
	if (!changeset_valid_id(id, strlen(id))) {
		snprintf(err, errlen,
		         "%s %s: invalid id (use A-Z, a-z, 0-9 and '.', '_', ':', '@', '-', at "
		         "most %u bytes)",
		         what, error_quote_str(q, sizeof(q), s), LOKET_MAX_ID_LEN);
		return -1;
	}
	snprintf(r->id, sizeof(r->id), "%s", id);
	return 0;
}

/* A reference to one of this node's own entities: others' are refused, naming whose. */
static int parse_own_ref(const char *s, const char *self, const char *what, struct ref *r,
                         char *err, size_t errlen)
{
	if (parse_ref(s, self, what, r, err, errlen) < 0)
		return -1;
	if (strcmp(r->owner, self) != 0) {
		char q[ERROR_QUOTE_SIZE];
		snprintf(err, errlen,
		         "%s %s belongs to %s: only %s's node can change it (this node is %s)",
		         what, error_quotef(q, sizeof(q), "%s/%s", r->owner, r->id), r->owner,
		         r->owner, self);
		return -1;
	}
	return 0;
}

/* The entity owner holds as coll/id into *entity (a new reference), or NULL if none. */
static int fetch(struct conn *c, const char *coll, const struct ref *r, json_t **entity, char *err,
                 size_t errlen)
{
	json_t *req = json_pack("{s:s, s:s, s:s, s:s}", "cmd", "get", "coll", coll, "id", r->id,
	                        "owner", r->owner);
	json_t *result = NULL;
	int rc;

	if (!req)
		abort();
	*entity = NULL;
	rc = client_call(c->client, req, CLIENT_TIMEOUT_MS, &result, NULL, err, errlen);
	json_decref(req);
	if (rc < 0)
		return rc;
	*entity = json_incref(json_array_get(result, 0));
	json_decref(result);
	return 0;
}

/* Puts fields on this node's coll/id; on failure err holds the daemon's sentence. */
static int put_fields(struct conn *c, const char *coll, const char *id, json_t *fields,
                      long long *seq, char *err, size_t errlen)
{
	json_t *req = json_pack("{s:s, s:[{s:s, s:s, s:O}]}", "cmd", "put", "ops", "coll", coll,
	                        "id", id, "fields", fields);
	json_t *result = NULL;
	int rc;

	if (!req)
		abort();
	rc = client_call(c->client, req, CLIENT_TIMEOUT_MS, &result, NULL, err, errlen);
	if (rc == 0)
		*seq = cli_json_int(result, "seq", 0);
	json_decref(result);
	json_decref(req);
	return rc;
}

/*
 * Picks the id for a new entity of this node: given (it must be free), or
 * made from text by slugify with -2, -3 ... until free. base is the word
 * used when text gives no letters at all.
 */
static int pick_id(struct conn *c, const char *coll, const char *given, const char *text,
                   const char *base, struct ref *r, char *err, size_t errlen)
{
	char slug[SLUG_MAX + 1], q[ERROR_QUOTE_SIZE], q2[ERROR_QUOTE_SIZE];
	json_t *found = NULL;

	snprintf(r->owner, sizeof(r->owner), "%s", c->cfg->name);
	if (given) {
		if (op_check_id(given, err, errlen) < 0)
			return -1;
		snprintf(r->id, sizeof(r->id), "%s", given);
		if (fetch(c, coll, r, &found, err, errlen) < 0)
			return -1;
		if (found) {
			json_decref(found);
			snprintf(err, errlen,
			         "this node already has %s %s; choose another ID, or leave it out "
			         "to have one made",
			         coll, error_quotef(q, sizeof(q), "%s/%s", r->owner, r->id));
			return -1;
		}
		return 0;
	}
	for (int n = 1; n <= SLUG_TRIES; n++) {
		char suffix[16] = "";
		if (n > 1)
			snprintf(suffix, sizeof(suffix), "-%d", n);
		slugify(text, slug, SLUG_MAX - strlen(suffix));
		if (!slug[0])
			snprintf(slug, sizeof(slug), "%s", base);
		snprintf(r->id, sizeof(r->id), "%s%s", slug, suffix);
		if (fetch(c, coll, r, &found, err, errlen) < 0)
			return -1;
		if (!found)
			return 0;
		json_decref(found);
	}
	snprintf(err, errlen, "%s ids %s to %s are all taken; give an ID", coll,
	         error_quote_str(q, sizeof(q), slug),
	         error_quotef(q2, sizeof(q2), "%s-%d", slug, SLUG_TRIES));
	return -1;
}

/* Sets fields[key] to the string value unless it is NULL; -1 if not valid UTF-8. */
static int set_text(json_t *fields, const char *key, const char *value, const char *option)
{
	json_t *v;

	if (!value)
		return 0;
	v = json_string(value);
	if (!v) {
		warnx("%s: not valid UTF-8", option);
		return -1;
	}
	json_object_set_new(fields, key, v);
	return 0;
}

static int unknown_option(char *argv[])
{
	char q[ERROR_QUOTE_SIZE];
	warnx("%s: unknown option or missing value: %s", argv[0],
	      error_quote_str(q, sizeof(q), argv[optind - 1]));
	return CLI_EXIT_USAGE;
}

int ask_main(int argc, char *argv[])
{
	static const struct option options[] = {
	    {"title", required_argument, NULL, 't'},
	    {"body", required_argument, NULL, 'b'},
	    {"topic", required_argument, NULL, 'p'},
	    {"kind", required_argument, NULL, 'k'},
	    {"asker", required_argument, NULL, 'a'},
	    {"asker-kind", required_argument, NULL, 'A'},
	    {"neighbourhood", required_argument, NULL, 'n'},
	    {"deadline", required_argument, NULL, 'd'},
	    {"title-en", required_argument, NULL, 'T'},
	    {"body-en", required_argument, NULL, 'B'},
	    {NULL, 0, NULL, 0},
	};
	const char *title = NULL, *body = NULL, *kind = NULL, *asker = NULL, *asker_kind = NULL;
	const char *hood = NULL, *deadline = NULL, *title_en = NULL, *body_en = NULL;
	const char *topics[ASK_MAX_TOPS];
	size_t n_topics = 0;
	struct conn c = {0};
	struct ref r;
	json_t *fields = NULL, *tops = NULL, *who = NULL;
	char err[1024];
	long long seq = 0;
	int ch, status = CLI_EXIT_FAIL;

	while ((ch = getopt_long(argc, argv, "", options, NULL)) != -1) {
		switch (ch) {
		case 't':
			title = optarg;
			break;
		case 'b':
			body = optarg;
			break;
		case 'p':
			if (n_topics == ASK_MAX_TOPS) {
				warnx("ask: at most %d topics", ASK_MAX_TOPS);
				return CLI_EXIT_FAIL;
			}
			topics[n_topics++] = optarg;
			break;
		case 'k':
			kind = optarg;
			break;
		case 'a':
			asker = optarg;
			break;
		case 'A':
			asker_kind = optarg;
			break;
		case 'n':
			hood = optarg;
			break;
		case 'd':
			deadline = optarg;
			break;
		case 'T':
			title_en = optarg;
			break;
		case 'B':
			body_en = optarg;
			break;
		default:
			return unknown_option(argv);
		}
	}
	if (optind < argc - 1) {
		warnx("ask: expected at most one ID; quote a title of several words");
		return CLI_EXIT_USAGE;
	}
	/* What a question on the board needs; the daemon checks the values. */
	const struct {
		const char *value, *option;
	} needed[] = {{title, "--title"},
	              {body, "--body"},
	              {kind, "--kind"},
	              {asker, "--asker"},
	              {asker_kind, "--asker-kind"}};
	for (size_t i = 0; i < sizeof(needed) / sizeof(needed[0]); i++) {
		if (!needed[i].value || !needed[i].value[0]) {
			warnx("ask: a question needs %s (see loket ask --help)", needed[i].option);
			return CLI_EXIT_FAIL;
		}
	}
	if (n_topics == 0) {
		warnx("ask: a question needs at least one --topic (see loket ask --help)");
		return CLI_EXIT_FAIL;
	}
	fields = json_object();
	tops = json_array();
	who = json_object();
	if (set_text(fields, "title", title, "--title") < 0 ||
	    set_text(fields, "body", body, "--body") < 0 ||
	    set_text(fields, "kind", kind, "--kind") < 0 ||
	    set_text(fields, "neighbourhood", hood, "--neighbourhood") < 0 ||
	    set_text(fields, "deadline", deadline, "--deadline") < 0 ||
	    set_text(fields, "title_en", title_en, "--title-en") < 0 ||
	    set_text(fields, "body_en", body_en, "--body-en") < 0 ||
	    set_text(who, "name", asker, "--asker") < 0 ||
	    set_text(who, "kind", asker_kind, "--asker-kind") < 0)
		goto cleanup;
	for (size_t i = 0; i < n_topics; i++) {
		json_t *t = json_string(topics[i]);
		if (!t) {
			warnx("--topic: not valid UTF-8");
			goto cleanup;
		}
		json_array_append_new(tops, t);
	}
	json_object_set(fields, "topics", tops);
	json_object_set(fields, "asker", who);
	json_object_set_new(fields, "status", json_string("open"));

	if (cli_connect(&c.cfg, &c.client, err, sizeof(err)) < 0 ||
	    pick_id(&c, "question", optind < argc ? argv[optind] : NULL, title, "question", &r, err,
	            sizeof(err)) < 0 ||
	    put_fields(&c, "question", r.id, fields, &seq, err, sizeof(err)) < 0) {
		warnx("ask: %s", err);
		goto cleanup;
	}
	printf("%s/%s\n", r.owner, r.id);
	status = CLI_EXIT_OK;
cleanup:
	json_decref(who);
	json_decref(tops);
	json_decref(fields);
	conn_close(&c);
	return status;
}

/* The status an entity's fields hold, or dflt when it has none. */
static const char *status_of(const json_t *entity, const char *dflt)
{
	const char *s = cli_json_str(json_object_get(entity, "fields"), "status");

	return s ? s : dflt;
}

int respond_main(int argc, char *argv[])
{
	static const struct option options[] = {
	    {"kind", required_argument, NULL, 'k'},
	    {"text", required_argument, NULL, 't'},
	    {"text-en", required_argument, NULL, 'T'},
	    {"team", required_argument, NULL, 'm'},
	    {"contact", required_argument, NULL, 'c'},
	    {"id", required_argument, NULL, 'i'},
	    {NULL, 0, NULL, 0},
	};
	const char *kind = NULL, *text = NULL, *text_en = NULL, *team = NULL, *contact = NULL;
	const char *id = NULL, *qstatus;
	struct conn c = {0};
	struct ref q, r;
	json_t *fields = NULL, *question = NULL;
	char err[1024], qref[sizeof(q.owner) + sizeof(q.id) + 1], base[sizeof(qref)];
	char qq[ERROR_QUOTE_SIZE];
	long long seq = 0;
	int ch, status = CLI_EXIT_FAIL;

	while ((ch = getopt_long(argc, argv, "", options, NULL)) != -1) {
		switch (ch) {
		case 'k':
			kind = optarg;
			break;
		case 't':
			text = optarg;
			break;
		case 'T':
			text_en = optarg;
			break;
		case 'm':
			team = optarg;
			break;
		case 'c':
			contact = optarg;
			break;
		case 'i':
			id = optarg;
			break;
		default:
			return unknown_option(argv);
		}
	}
	if (optind != argc - 1) {
		warnx("respond: expected QUESTION-REF (OWNER/ID)");
		return CLI_EXIT_USAGE;
	}
	if (!kind || !kind[0] || !text || !text[0]) {
		warnx("respond: a response needs %s (see loket respond --help)",
		      !kind || !kind[0] ? "--kind" : "--text");
		return CLI_EXIT_FAIL;
	}
	if (parse_ref(argv[optind], NULL, "question", &q, err, sizeof(err)) < 0) {
		warnx("respond: %s", err);
		return CLI_EXIT_FAIL;
	}
	snprintf(qref, sizeof(qref), "%s/%s", q.owner, q.id);
	fields = json_pack("{s:s, s:s}", "question", qref, "status", "offered");
	if (!fields)
		abort();
	if (set_text(fields, "kind", kind, "--kind") < 0 ||
	    set_text(fields, "text", text, "--text") < 0 ||
	    set_text(fields, "text_en", text_en, "--text-en") < 0 ||
	    set_text(fields, "team", team, "--team") < 0 ||
	    set_text(fields, "contact", contact, "--contact") < 0)
		goto cleanup;
	if (cli_connect(&c.cfg, &c.client, err, sizeof(err)) < 0 ||
	    fetch(&c, "question", &q, &question, err, sizeof(err)) < 0) {
		warnx("respond: %s", err);
		goto cleanup;
	}
	if (!question) {
		warnx("respond: this node does not hold question %s (not asked, or not yet here by "
		      "sync)",
		      error_quote_str(qq, sizeof(qq), qref));
		goto cleanup;
	}
	qstatus = status_of(question, "open");
	if (!strcmp(qstatus, "closed") || !strcmp(qstatus, "withdrawn")) {
		warnx("respond: question %s is %s and takes no more responses",
		      error_quote_str(qq, sizeof(qq), qref), qstatus);
		goto cleanup;
	}
	snprintf(base, sizeof(base), "%s-%s", q.owner, q.id);
	if (pick_id(&c, "response", id, base, "response", &r, err, sizeof(err)) < 0 ||
	    put_fields(&c, "response", r.id, fields, &seq, err, sizeof(err)) < 0) {
		warnx("respond: %s", err);
		goto cleanup;
	}
	printf("%s/%s\n", r.owner, r.id);
	status = CLI_EXIT_OK;
cleanup:
	json_decref(question);
	json_decref(fields);
	conn_close(&c);
	return status;
}

/* Whether arr (a JSON array) holds the string s. */
static int holds_string(const json_t *arr, const char *s)
{
	const json_t *v;
	size_t i;

	json_array_foreach(arr, i, v)
	{
		if (json_is_string(v) && !strcmp(json_string_value(v), s))
			return 1;
	}
	return 0;
}

int accept_main(int argc, char *argv[])
{
	struct conn c = {0};
	struct ref q, r;
	json_t *question = NULL, *response = NULL, *accepted = NULL, *fields = NULL;
	const char *qstatus, *answers, *rstatus;
	char err[1024], qref[sizeof(q.owner) + sizeof(q.id) + 1];
	char rref[sizeof(r.owner) + sizeof(r.id) + 1];
	char q1[ERROR_QUOTE_SIZE], q2[ERROR_QUOTE_SIZE], q3[ERROR_QUOTE_SIZE];
	long long seq = 0;
	int status = CLI_EXIT_FAIL;

	if (getopt_long(argc, argv, "", (const struct option[]){{NULL, 0, NULL, 0}}, NULL) != -1)
		return unknown_option(argv);
	if (optind != argc - 2) {
		warnx("accept: expected QUESTION-ID and RESPONSE-REF");
		return CLI_EXIT_USAGE;
	}
	if (cli_connect(&c.cfg, &c.client, err, sizeof(err)) < 0 ||
	    parse_own_ref(argv[optind], c.cfg->name, "question", &q, err, sizeof(err)) < 0 ||
	    parse_ref(argv[optind + 1], NULL, "response", &r, err, sizeof(err)) < 0 ||
	    fetch(&c, "question", &q, &question, err, sizeof(err)) < 0 ||
	    fetch(&c, "response", &r, &response, err, sizeof(err)) < 0) {
		warnx("accept: %s", err);
		goto cleanup;
	}
	snprintf(qref, sizeof(qref), "%s/%s", q.owner, q.id);
	snprintf(rref, sizeof(rref), "%s/%s", r.owner, r.id);
	if (!question) {
		warnx("accept: this node has no question %s",
		      error_quote_str(q1, sizeof(q1), q.id));
		goto cleanup;
	}
	if (!response) {
		warnx("accept: this node does not hold response %s (not written, or not yet here "
		      "by sync)",
		      error_quote_str(q1, sizeof(q1), rref));
		goto cleanup;
	}
	answers = cli_json_str(json_object_get(response, "fields"), "question");
	if (!answers || strcmp(answers, qref) != 0) {
		warnx("accept: response %s answers question %s, not %s",
		      error_quote_str(q1, sizeof(q1), rref),
		      answers ? error_quote_str(q2, sizeof(q2), answers) : "(none)",
		      error_quote_str(q3, sizeof(q3), qref));
		goto cleanup;
	}
	rstatus = status_of(response, "offered");
	if (!strcmp(rstatus, "withdrawn")) {
		warnx("accept: response %s was withdrawn", error_quote_str(q1, sizeof(q1), rref));
		goto cleanup;
	}
	qstatus = status_of(question, "open");
	if (!strcmp(qstatus, "closed") || !strcmp(qstatus, "withdrawn")) {
		warnx("accept: question %s is %s", error_quote_str(q1, sizeof(q1), qref), qstatus);
		goto cleanup;
	}
	accepted = json_object_get(json_object_get(question, "fields"), "accepted");
	accepted = json_is_array(accepted) ? json_copy(accepted) : json_array();
	if (holds_string(accepted, rref)) {
		printf("%s: %s was already accepted (status %s)\n", qref, rref, qstatus);
		status = CLI_EXIT_OK;
		goto cleanup;
	}
	json_array_append_new(accepted, json_string(rref));
	if (!strcmp(qstatus, "open"))
		qstatus = "matched";
	fields = json_pack("{s:O, s:s}", "accepted", accepted, "status", qstatus);
	if (!fields)
		abort();
	if (put_fields(&c, "question", q.id, fields, &seq, err, sizeof(err)) < 0) {
		warnx("accept: %s", err);
		goto cleanup;
	}
	printf("%s: accepted %s (status %s)\n", qref, rref, qstatus);
	status = CLI_EXIT_OK;
cleanup:
	json_decref(fields);
	json_decref(accepted);
	json_decref(response);
	json_decref(question);
	conn_close(&c);
	return status;
}

/*
 * Sets the status of this node's coll/ID to to; refuses when the entity is
 * not here, or is in one of the states in never (a NULL-terminated list).
 */
static int set_status(const char *verb, const char *coll, const char *arg, const char *to,
                      const char *const *never)
{
	struct conn c = {0};
	struct ref r;
	json_t *entity = NULL, *fields = NULL;
	const char *was;
	char err[1024], q[ERROR_QUOTE_SIZE];
	long long seq = 0;
	int status = CLI_EXIT_FAIL;

	if (cli_connect(&c.cfg, &c.client, err, sizeof(err)) < 0 ||
	    parse_own_ref(arg, c.cfg->name, coll, &r, err, sizeof(err)) < 0 ||
	    fetch(&c, coll, &r, &entity, err, sizeof(err)) < 0) {
		warnx("%s: %s", verb, err);
		goto cleanup;
	}
	if (!entity) {
		warnx("%s: this node has no %s %s", verb, coll,
		      error_quote_str(q, sizeof(q), r.id));
		goto cleanup;
	}
	was = status_of(entity, strcmp(coll, "question") ? "offered" : "open");
	if (!strcmp(was, to)) {
		printf("%s/%s: already %s\n", r.owner, r.id, to);
		status = CLI_EXIT_OK;
		goto cleanup;
	}
	for (size_t i = 0; never && never[i]; i++) {
		if (!strcmp(was, never[i])) {
			warnx("%s: %s %s is %s", verb, coll,
			      error_quotef(q, sizeof(q), "%s/%s", r.owner, r.id), was);
			goto cleanup;
		}
	}
	fields = json_pack("{s:s}", "status", to);
	if (!fields)
		abort();
	if (put_fields(&c, coll, r.id, fields, &seq, err, sizeof(err)) < 0) {
		warnx("%s: %s", verb, err);
		goto cleanup;
	}
	printf("%s/%s: %s (was %s)\n", r.owner, r.id, to, was);
	status = CLI_EXIT_OK;
cleanup:
	json_decref(fields);
	json_decref(entity);
	conn_close(&c);
	return status;
}

int close_main(int argc, char *argv[])
{
	static const char *const never[] = {"withdrawn", NULL};

	if (getopt_long(argc, argv, "", (const struct option[]){{NULL, 0, NULL, 0}}, NULL) != -1)
		return unknown_option(argv);
	if (optind != argc - 1) {
		warnx("close: expected QUESTION-ID");
		return CLI_EXIT_USAGE;
	}
	return set_status("close", "question", argv[optind], "closed", never);
}

int withdraw_main(int argc, char *argv[])
{
	static const struct option options[] = {
	    {"response", no_argument, NULL, 'r'},
	    {NULL, 0, NULL, 0},
	};
	int ch, response = 0;

	while ((ch = getopt_long(argc, argv, "", options, NULL)) != -1) {
		if (ch != 'r')
			return unknown_option(argv);
		response = 1;
	}
	if (optind != argc - 1) {
		warnx("withdraw: expected QUESTION-ID, or --response RESPONSE-ID");
		return CLI_EXIT_USAGE;
	}
	return set_status("withdraw", response ? "response" : "question", argv[optind], "withdrawn",
	                  NULL);
}
