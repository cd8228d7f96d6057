/*
 * The schema of the knowledge directory and the question board: every rule
 * accepted with good input and refused, with the exact sentence, with bad.
 * Cases are written as JSON and checked in the canonical msgpack form a put
 * carries (value_pack_json), as the node checks them; until the JSON form
 * goes, it must answer the same.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "desk/schema.h"
#include "proto/error.h"
#include "proto/limits.h"
#include "proto/value.h"

/* Parses a JSON literal of a test; a typo in a test is a bug in the test. */
static json_t *J(const char *text)
{
	json_error_t e;
	json_t *v = json_loads(text, JSON_DECODE_ANY, &e);
	if (!v)
		fail_msg("bad test JSON: %s: %s", text, e.text);
	return v;
}

/*
 * The canonical msgpack form of a JSON literal, as a put carries it: packed,
 * and held to the check the node makes before it calls the schema.
 */
static void pack(const char *text, msgpack_sbuffer *out)
{
	json_t *v = J(text);
	msgpack_packer pk;
	char why[256];
	size_t used = 0;
	msgpack_sbuffer_init(out);
	msgpack_packer_init(&pk, out, msgpack_sbuffer_write);
	if (value_pack_json(&pk, v, LOKET_MAX_DEPTH, why, sizeof(why)) != 0)
		fail_msg("cannot pack %s: %s", text, why);
	json_decref(v);
	assert_int_equal(value_check((const uint8_t *)out->data, out->size, LOKET_MAX_DEPTH,
	                             VALUE_CANONICAL, &used, why, sizeof(why)),
	                 0);
	assert_int_equal(used, out->size);
}

/* Checks fields (JSON text) on coll; returns the code, err holds the message. */
static int put(const char *coll, const char *fields, int creating, char *err, size_t errlen)
{
	msgpack_sbuffer b;
	pack(fields, &b);
	err[0] = '\0';
	int rc = schema_check_fields(coll, (const uint8_t *)b.data, b.size, creating, err, errlen);
	msgpack_sbuffer_destroy(&b);
	return rc;
}

/* Checks raw msgpack bytes on coll, as put does. */
static int put_raw(const char *coll, const char *bytes, size_t len, int creating, char *err,
                   size_t errlen)
{
	err[0] = '\0';
	return schema_check_fields(coll, (const uint8_t *)bytes, len, creating, err, errlen);
}

#define ACCEPT(coll, fields, creating)                                                             \
	do {                                                                                       \
		char err_[512];                                                                    \
		int rc_ = put(coll, fields, creating, err_, sizeof(err_));                         \
		if (rc_ != 0)                                                                      \
			fail_msg("refused %s %s: %s", coll, fields, err_);                         \
	} while (0)

#define REFUSE(coll, fields, creating, code, message)                                              \
	do {                                                                                       \
		char err_[512];                                                                    \
		assert_int_equal(put(coll, fields, creating, err_, sizeof(err_)), code);           \
		assert_string_equal(err_, message);                                                \
	} while (0)

/* A JSON string literal of n copies of c, for the size limits. */
static char *long_string(size_t n)
{
	char *s = malloc(n + 3);
	assert_non_null(s);
	s[0] = '"';
	memset(s + 1, 'x', n);
	s[n + 1] = '"';
	s[n + 2] = '\0';
	return s;
}

static void test_collections(void **state)
{
	(void)state;
	char err[256];
	const char *known[] = {"org", "expert", "resource", "project", "question", "response"};
	for (size_t i = 0; i < sizeof(known) / sizeof(known[0]); i++)
		assert_int_equal(schema_check_coll(known[i], err, sizeof(err)), 0);
	assert_int_equal(schema_check_coll("foo", err, sizeof(err)), LOKET_E_MALFORMED);
	assert_string_equal(err, "unknown collection \"foo\" (known: org, expert, resource, "
	                         "project, question, response)");
	REFUSE("foo", "{\"name\":\"x\"}", 1, LOKET_E_MALFORMED,
	       "unknown collection \"foo\" (known: org, expert, resource, project, question, "
	       "response)");
}

static void test_fields_must_be_a_map(void **state)
{
	(void)state;
	REFUSE("org", "[1]", 1, LOKET_E_MALFORMED, "org: fields must be a map (got array)");
	REFUSE("org", "null", 1, LOKET_E_MALFORMED, "org: fields must be a map (got null)");
	REFUSE("org", "\"x\\ny\"", 1, LOKET_E_MALFORMED,
	       "org: fields must be a map (got \"x\\x0ay\")");
	char err[128];
	assert_int_equal(put_raw("org", NULL, 0, 1, err, sizeof(err)), LOKET_E_MALFORMED);
	assert_string_equal(err, "org: fields must be a map (got nothing)");
	assert_int_equal(put_raw("org", "\x80", 0, 1, err, sizeof(err)), LOKET_E_MALFORMED);
	assert_string_equal(err, "org: fields must be a map (got nothing)");
	/* The collection is checked first. */
	assert_int_equal(put_raw("foo", "\x01", 1, 1, err, sizeof(err)), LOKET_E_MALFORMED);
	assert_string_equal(err, "unknown collection \"foo\" (known: org, expert, resource, "
	                         "project, question, response)");
}

static void test_org(void **state)
{
	(void)state;
	ACCEPT("org",
	       "{\"name\":\"Gemeente Leiden\",\"kind\":\"municipality\",\"city\":\"Leiden\","
	       "\"website\":\"https://example.org\",\"description\":\"Stad van ontdekkingen\","
	       "\"description_en\":\"City of discoveries\"}",
	       1);
	REFUSE("org", "{\"kind\":\"museum\"}", 1, LOKET_E_MALFORMED,
	       "org: field \"name\" is required");
	REFUSE("org", "{\"name\":\"\"}", 1, LOKET_E_MALFORMED,
	       "org: field \"name\" must not be empty");
	REFUSE("org", "{\"name\":42}", 1, LOKET_E_MALFORMED,
	       "org: field \"name\" must be a string (got number)");
	REFUSE("org", "{\"name\":\"X\",\"kind\":\"school\"}", 1, LOKET_E_MALFORMED,
	       "org: field \"kind\" must be one of university, umc, hbo, mbo, municipality, "
	       "museum, company, association, other (got \"school\")");
	REFUSE("org", "{\"name\":\"X\",\"city\":[\"Leiden\"]}", 1, LOKET_E_MALFORMED,
	       "org: field \"city\" must be a string (got array)");
	REFUSE("org", "{\"name\":\"X\",\"website\":true}", 1, LOKET_E_MALFORMED,
	       "org: field \"website\" must be a string (got boolean)");
	REFUSE("org", "{\"name\":\"X\",\"description\":{}}", 1, LOKET_E_MALFORMED,
	       "org: field \"description\" must be a string (got map)");
}

static void test_expert(void **state)
{
	(void)state;
	ACCEPT("expert",
	       "{\"name\":\"Dr. A. de Vries\",\"org\":\"universiteit\",\"title\":\"hoogleraar\","
	       "\"topics\":[\"eenzaamheid\",\"wijken\"],\"languages\":[\"nl\",\"en\"],"
	       "\"contact\":\"a@example.org\",\"description\":\"...\","
	       "\"available_for\":[\"questions\",\"theses\",\"internships\",\"lectures\","
	       "\"supervision\"]}",
	       1);
	ACCEPT("expert", "{\"name\":\"X\",\"topics\":[]}", 1);
	REFUSE("expert", "{\"title\":\"lector\"}", 1, LOKET_E_MALFORMED,
	       "expert: field \"name\" is required");
	REFUSE("expert", "{\"name\":\"X\",\"topics\":\"zorg\"}", 1, LOKET_E_MALFORMED,
	       "expert: field \"topics\" must be an array of strings (got \"zorg\")");
	REFUSE("expert", "{\"name\":\"X\",\"languages\":[\"nl\",3]}", 1, LOKET_E_MALFORMED,
	       "expert: field \"languages[1]\" must be a string (got number)");
	REFUSE("expert", "{\"name\":\"X\",\"available_for\":[\"questions\",\"coffee\"]}", 1,
	       LOKET_E_MALFORMED,
	       "expert: field \"available_for[1]\" must be one of questions, internships, "
	       "theses, lectures, supervision (got \"coffee\")");
	REFUSE("expert", "{\"name\":\"X\",\"available_for\":\"theses\"}", 1, LOKET_E_MALFORMED,
	       "expert: field \"available_for\" must be an array of strings (got \"theses\")");
	REFUSE("expert", "{\"name\":\"X\",\"contact\":null,\"org\":1}", 1, LOKET_E_MALFORMED,
	       "expert: field \"org\" must be a string (got number)");
}

static void test_resource(void **state)
{
	(void)state;
	ACCEPT("resource",
	       "{\"name\":\"Microscopielab\",\"kind\":\"lab\",\"org\":\"lumc\","
	       "\"description\":\"...\",\"topics\":[\"beeldvorming\"],\"access\":\"op afspraak\"}",
	       1);
	const char *kinds[] = {"lab", "facility", "collection", "dataset", "space", "course"};
	for (size_t i = 0; i < 6; i++) {
		char f[128];
		snprintf(f, sizeof(f), "{\"name\":\"R\",\"kind\":\"%s\"}", kinds[i]);
		ACCEPT("resource", f, 1);
	}
	REFUSE("resource", "{\"kind\":\"lab\"}", 1, LOKET_E_MALFORMED,
	       "resource: field \"name\" is required");
	REFUSE("resource", "{\"name\":\"R\",\"kind\":\"Lab\"}", 1, LOKET_E_MALFORMED,
	       "resource: field \"kind\" must be one of lab, facility, collection, dataset, "
	       "space, course (got \"Lab\")");
	REFUSE("resource", "{\"name\":\"R\",\"access\":false}", 1, LOKET_E_MALFORMED,
	       "resource: field \"access\" must be a string (got boolean)");
}

static void test_project(void **state)
{
	(void)state;
	ACCEPT("project",
	       "{\"name\":\"Leiden Noord adopteert\",\"org\":\"hogeschool\","
	       "\"partners\":[\"gemeente\",\"universiteit\"],\"description\":\"...\","
	       "\"topics\":[\"wijk\"],\"status\":\"afgerond\",\"period\":\"2016-2017\","
	       "\"outcome\":\"ideeën\",\"outcome_en\":\"ideas\"}",
	       1);
	REFUSE("project", "{\"org\":\"x\"}", 1, LOKET_E_MALFORMED,
	       "project: field \"name\" is required");
	REFUSE("project", "{\"name\":\"P\",\"partners\":[\"a\",null]}", 1, LOKET_E_MALFORMED,
	       "project: field \"partners[1]\" must be a string (got null)");
	REFUSE("project", "{\"name\":\"P\",\"period\":2017}", 1, LOKET_E_MALFORMED,
	       "project: field \"period\" must be a string (got number)");
}

static void test_question(void **state)
{
	(void)state;
	ACCEPT("question",
	       "{\"title\":\"Eenzaamheid in de Merenwijk\",\"title_en\":\"Loneliness\","
	       "\"body\":\"Hoe?\",\"asker\":{\"name\":\"Bewonersvereniging\","
	       "\"kind\":\"neighbourhood\"},\"topics\":[\"eenzaamheid\"],\"kind\":\"science-shop\","
	       "\"neighbourhood\":\"Merenwijk\",\"deadline\":\"2024-02-29\",\"status\":\"open\","
	       "\"accepted\":[\"hogeschool/resp-1\",\"lumc/a.b:c@d-e_f\"]}",
	       1);
	ACCEPT("question", "{\"title\":\"T\",\"asker\":{\"name\":\"Jan\"}}", 1);
	REFUSE("question", "{\"body\":\"zonder titel\"}", 1, LOKET_E_MALFORMED,
	       "question: field \"title\" is required");
	REFUSE("question", "{\"title\":null}", 1, LOKET_E_MALFORMED,
	       "question: field \"title\" is required");
	REFUSE("question", "{\"title\":\"T\",\"status\":\"done\"}", 1, LOKET_E_MALFORMED,
	       "question: field \"status\" must be one of open, matched, in_progress, answered, "
	       "closed, withdrawn (got \"done\")");
	REFUSE("question", "{\"title\":\"T\",\"status\":1}", 1, LOKET_E_MALFORMED,
	       "question: field \"status\" must be one of open, matched, in_progress, answered, "
	       "closed, withdrawn (got number)");
	REFUSE("question", "{\"title\":\"T\",\"kind\":\"survey\"}", 1, LOKET_E_MALFORMED,
	       "question: field \"kind\" must be one of research, thesis, internship, contest, "
	       "pitch, science-shop, advice (got \"survey\")");
	REFUSE("question", "{\"title\":\"T\",\"neighbourhood\":[]}", 1, LOKET_E_MALFORMED,
	       "question: field \"neighbourhood\" must be a string (got array)");
	REFUSE("question", "{\"title\":\"T\",\"topics\":[\"a\",{}]}", 1, LOKET_E_MALFORMED,
	       "question: field \"topics[1]\" must be a string (got map)");
}

static void test_question_asker(void **state)
{
	(void)state;
	const char *kinds[] = {"citizen",      "neighbourhood", "association", "company",
	                       "municipality", "school",        "institution"};
	for (size_t i = 0; i < 7; i++) {
		char f[128];
		snprintf(f, sizeof(f),
		         "{\"title\":\"T\",\"asker\":{\"name\":\"A\",\"kind\":\"%s\"}}", kinds[i]);
		ACCEPT("question", f, 1);
	}
	/* Extra keys in the map are kept. */
	ACCEPT("question",
	       "{\"title\":\"T\",\"asker\":{\"name\":\"A\",\"email\":\"a@example.org\"}}", 1);
	REFUSE("question", "{\"title\":\"T\",\"asker\":\"Jan\"}", 1, LOKET_E_MALFORMED,
	       "question: field \"asker\" must be a map with name, kind (got \"Jan\")");
	REFUSE("question", "{\"title\":\"T\",\"asker\":{\"kind\":\"citizen\"}}", 1,
	       LOKET_E_MALFORMED, "question: field \"asker.name\" is required");
	/* The map is replaced whole, so its required fields hold on an update too. */
	REFUSE("question", "{\"asker\":{\"kind\":\"citizen\"}}", 0, LOKET_E_MALFORMED,
	       "question: field \"asker.name\" is required");
	REFUSE("question", "{\"title\":\"T\",\"asker\":{\"name\":\"A\",\"kind\":\"alien\"}}", 1,
	       LOKET_E_MALFORMED,
	       "question: field \"asker.kind\" must be one of citizen, neighbourhood, "
	       "association, company, municipality, school, institution (got \"alien\")");
	REFUSE("question", "{\"title\":\"T\",\"asker\":{\"name\":7}}", 1, LOKET_E_MALFORMED,
	       "question: field \"asker.name\" must be a string (got number)");
}

static void test_question_deadline(void **state)
{
	(void)state;
	const char *good[] = {"2017-01-01", "2017-12-31", "2024-02-29", "2000-02-29"};
	for (size_t i = 0; i < 4; i++) {
		char f[128];
		snprintf(f, sizeof(f), "{\"title\":\"T\",\"deadline\":\"%s\"}", good[i]);
		ACCEPT("question", f, 1);
	}
	const char *bad[] = {"2023-02-29", "1900-02-29",    "2017-13-01", "2017-00-10",
	                     "2017-04-31", "2017-04-00",    "2017-4-30",  "17-04-30",
	                     "2017/04/30", "2017-04-30T12", "morgen",     ""};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		char f[128], want[256];
		snprintf(f, sizeof(f), "{\"title\":\"T\",\"deadline\":\"%s\"}", bad[i]);
		snprintf(want, sizeof(want),
		         "question: field \"deadline\" must be a date YYYY-MM-DD (got \"%s\")",
		         bad[i]);
		REFUSE("question", f, 1, LOKET_E_MALFORMED, want);
	}
	REFUSE("question", "{\"title\":\"T\",\"deadline\":20170430}", 1, LOKET_E_MALFORMED,
	       "question: field \"deadline\" must be a date YYYY-MM-DD (got number)");
}

static void test_references(void **state)
{
	(void)state;
	ACCEPT("response", "{\"question\":\"gemeente/eenzaamheid-merenwijk\",\"kind\":\"offer\"}",
	       1);
	ACCEPT("response", "{\"question\":\"a_b-9/A.b:c@d-E\",\"kind\":\"claim\"}", 1);
	const char *bad[] = {"q1",           "/q1",          "gemeente/",
	                     "Gemeente/q1",  "gem eente/q1", "gemeente/q 1",
	                     "gemeente/a/b", "gemeente/é",   ""};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		char f[128], want[256];
		snprintf(f, sizeof(f), "{\"question\":\"%s\",\"kind\":\"offer\"}", bad[i]);
		snprintf(want, sizeof(want),
		         "response: field \"question\" must be a reference OWNER/ID (got \"%s\")",
		         bad[i]);
		REFUSE("response", f, 1, LOKET_E_MALFORMED, want);
	}
	/* Owner at most 64 bytes, id at most 128. */
	char f[512];
	snprintf(f, sizeof(f), "{\"question\":\"%065d/q\",\"kind\":\"offer\"}", 0);
	assert_int_equal(put("response", f, 1, (char[256]){0}, 256), LOKET_E_MALFORMED);
	snprintf(f, sizeof(f), "{\"question\":\"%064d/q\",\"kind\":\"offer\"}", 0);
	ACCEPT("response", f, 1);
	snprintf(f, sizeof(f), "{\"question\":\"o/%0129d\",\"kind\":\"offer\"}", 0);
	assert_int_equal(put("response", f, 1, (char[256]){0}, 256), LOKET_E_MALFORMED);
	snprintf(f, sizeof(f), "{\"question\":\"o/%0128d\",\"kind\":\"offer\"}", 0);
	ACCEPT("response", f, 1);

	REFUSE("question", "{\"title\":\"T\",\"accepted\":[\"hogeschool/r1\",\"r2\"]}", 1,
	       LOKET_E_MALFORMED,
	       "question: field \"accepted[1]\" must be a reference OWNER/ID (got \"r2\")");
	REFUSE("question", "{\"title\":\"T\",\"accepted\":\"hogeschool/r1\"}", 1, LOKET_E_MALFORMED,
	       "question: field \"accepted\" must be an array of references OWNER/ID (got "
	       "\"hogeschool/r1\")");
}

static void test_response(void **state)
{
	(void)state;
	ACCEPT("response",
	       "{\"question\":\"gemeente/q\",\"kind\":\"answer\",\"team\":\"Lectoraat\","
	       "\"contact\":\"t@example.org\",\"text\":\"Wij helpen graag.\","
	       "\"text_en\":\"Happy to help.\",\"status\":\"delivered\"}",
	       1);
	REFUSE("response", "{\"kind\":\"offer\"}", 1, LOKET_E_MALFORMED,
	       "response: field \"question\" is required");
	REFUSE("response", "{\"question\":\"gemeente/q\"}", 1, LOKET_E_MALFORMED,
	       "response: field \"kind\" is required");
	REFUSE("response", "{\"question\":\"q1\",\"kind\":\"offer\"}", 1, LOKET_E_MALFORMED,
	       "response: field \"question\" must be a reference OWNER/ID (got \"q1\")");
	REFUSE("response", "{\"question\":\"gemeente/q\",\"kind\":\"maybe\"}", 1, LOKET_E_MALFORMED,
	       "response: field \"kind\" must be one of claim, offer, answer, referral (got "
	       "\"maybe\")");
	REFUSE("response", "{\"question\":\"gemeente/q\",\"kind\":\"offer\",\"status\":\"open\"}",
	       1, LOKET_E_MALFORMED,
	       "response: field \"status\" must be one of offered, withdrawn, delivered (got "
	       "\"open\")");
	REFUSE("response", "{\"question\":\"gemeente/q\",\"kind\":\"offer\",\"team\":[]}", 1,
	       LOKET_E_MALFORMED, "response: field \"team\" must be a string (got array)");
}

static void test_update(void **state)
{
	(void)state;
	/* An update checks only what it names; required fields may be absent. */
	ACCEPT("question", "{\"status\":\"answered\"}", 0);
	ACCEPT("response", "{\"status\":\"withdrawn\"}", 0);
	/* Optional fields may be cleared, on an update and on a create. */
	ACCEPT("question", "{\"deadline\":null,\"asker\":null,\"topics\":null}", 0);
	ACCEPT("org", "{\"name\":\"X\",\"kind\":null}", 1);
	REFUSE("question", "{\"status\":\"done\"}", 0, LOKET_E_MALFORMED,
	       "question: field \"status\" must be one of open, matched, in_progress, answered, "
	       "closed, withdrawn (got \"done\")");
	REFUSE("question", "{\"title\":null}", 0, LOKET_E_MALFORMED,
	       "question: field \"title\" is required and cannot be cleared");
	REFUSE("response", "{\"kind\":null}", 0, LOKET_E_MALFORMED,
	       "response: field \"kind\" is required and cannot be cleared");
	REFUSE("org", "{\"name\":\"\"}", 0, LOKET_E_MALFORMED,
	       "org: field \"name\" must not be empty");
}

static void test_english_twins(void **state)
{
	(void)state;
	ACCEPT("expert", "{\"name\":\"X\",\"title_en\":\"professor\",\"description_en\":\"...\"}",
	       1);
	ACCEPT("question", "{\"title\":\"T\",\"title_en\":null}", 1);
	REFUSE("question", "{\"title\":\"T\",\"title_en\":5}", 1, LOKET_E_MALFORMED,
	       "question: field \"title_en\" must be a string (got number)");
	REFUSE("question", "{\"title\":\"T\",\"asker\":{\"name\":\"A\",\"name_en\":[]}}", 1,
	       LOKET_E_MALFORMED, "question: field \"asker.name_en\" must be a string (got array)");
	/* A twin has the limit of its field. */
	char *s = long_string(8193), f[9000];
	snprintf(f, sizeof(f), "{\"name\":\"X\",\"title_en\":%s}", s);
	REFUSE("expert", f, 1, LOKET_E_TOO_BIG,
	       "expert: field \"title_en\" must be at most 8192 bytes (got 8193)");
	free(s);
	/* Enumerations have no twin: status_en is just an extra field. */
	ACCEPT("question", "{\"title\":\"T\",\"status_en\":7}", 1);
}

static void test_extra_fields(void **state)
{
	(void)state;
	ACCEPT("org",
	       "{\"name\":\"X\",\"founded\":1575,\"tags\":[1,\"a\"],\"geo\":{\"lat\":52.16}}", 1);
	char *s = long_string(64 * 1024 + 1);
	size_t n = strlen(s) + 64;
	char *f = malloc(n);
	assert_non_null(f);
	snprintf(f, n, "{\"name\":\"X\",\"notes\":%s}", s);
	REFUSE("org", f, 1, LOKET_E_TOO_BIG,
	       "org: field \"notes\" must be at most 65536 bytes (got 65537)");
	free(f);
	free(s);

	char big[1024];
	size_t o = (size_t)snprintf(big, sizeof(big), "{\"name\":\"X\",\"tags\":[");
	for (int i = 0; i < 65; i++)
		o += (size_t)snprintf(big + o, sizeof(big) - o, "%s1", i ? "," : "");
	snprintf(big + o, sizeof(big) - o, "]}");
	REFUSE("org", big, 1, LOKET_E_TOO_BIG,
	       "org: field \"tags\" must have at most 64 items (got 65)");
}

static void test_sizes(void **state)
{
	(void)state;
	size_t n = 64 * 1024 + 128;
	char *f = malloc(n);
	assert_non_null(f);

	char *s = long_string(8192);
	snprintf(f, n, "{\"title\":%s}", s);
	ACCEPT("question", f, 1);
	free(s);
	s = long_string(8193);
	snprintf(f, n, "{\"title\":%s}", s);
	REFUSE("question", f, 1, LOKET_E_TOO_BIG,
	       "question: field \"title\" must be at most 8192 bytes (got 8193)");
	snprintf(f, n, "{\"question\":\"g/q\",\"kind\":\"offer\",\"team\":%s}", s);
	REFUSE("response", f, 1, LOKET_E_TOO_BIG,
	       "response: field \"team\" must be at most 8192 bytes (got 8193)");
	snprintf(f, n, "{\"name\":\"E\",\"topics\":[\"a\",%s]}", s);
	REFUSE("expert", f, 1, LOKET_E_TOO_BIG,
	       "expert: field \"topics[1]\" must be at most 8192 bytes (got 8193)");
	free(s);

	/* body, description, text and outcome take 64 KiB. */
	const char *longs[][2] = {
	    {"question", "{\"title\":\"T\",\"body\":"},
	    {"org", "{\"name\":\"N\",\"description\":"},
	    {"response", "{\"question\":\"g/q\",\"kind\":\"offer\",\"text\":"},
	    {"project", "{\"name\":\"N\",\"outcome\":"}};
	const char *names[] = {"body", "description", "text", "outcome"};
	for (size_t i = 0; i < 4; i++) {
		s = long_string(64 * 1024);
		snprintf(f, n, "%s%s}", longs[i][1], s);
		ACCEPT(longs[i][0], f, 1);
		free(s);
		s = long_string(64 * 1024 + 1);
		snprintf(f, n, "%s%s}", longs[i][1], s);
		char want[128];
		snprintf(want, sizeof(want),
		         "%s: field \"%s\" must be at most 65536 bytes (got 65537)", longs[i][0],
		         names[i]);
		REFUSE(longs[i][0], f, 1, LOKET_E_TOO_BIG, want);
		free(s);
	}

	/* Arrays: 64 items. */
	char arr[1024];
	size_t o = (size_t)snprintf(arr, sizeof(arr), "{\"name\":\"E\",\"topics\":[");
	for (int i = 0; i < 64; i++)
		o += (size_t)snprintf(arr + o, sizeof(arr) - o, "%s\"t\"", i ? "," : "");
	snprintf(arr + o, sizeof(arr) - o, "]}");
	ACCEPT("expert", arr, 1);
	o = (size_t)snprintf(arr, sizeof(arr), "{\"name\":\"E\",\"available_for\":[");
	for (int i = 0; i < 65; i++)
		o += (size_t)snprintf(arr + o, sizeof(arr) - o, "%s\"theses\"", i ? "," : "");
	snprintf(arr + o, sizeof(arr) - o, "]}");
	REFUSE("expert", arr, 1, LOKET_E_TOO_BIG,
	       "expert: field \"available_for\" must have at most 64 items (got 65)");
	free(f);
}

static void test_quoting(void **state)
{
	(void)state;
	/*
	 * Values are quoted as proto/error.h says: cut at 80 bytes, never inside a
	 * character, with "..." after the quote; quotes escaped, control bytes as \xNN.
	 */
	REFUSE("question",
	       "{\"title\":\"T\",\"status\":\"ééééééééééééééééééééééééééééééééééééééééé\"}", 1,
	       LOKET_E_MALFORMED,
	       "question: field \"status\" must be one of open, matched, in_progress, answered, "
	       "closed, withdrawn (got \"éééééééééééééééééééééééééééééééééééééééé\"...)");
	REFUSE("question", "{\"title\":\"T\",\"status\":\"a\\\"b\\nc\"}", 1, LOKET_E_MALFORMED,
	       "question: field \"status\" must be one of open, matched, in_progress, answered, "
	       "closed, withdrawn (got \"a\\\"b\\x0ac\")");
	/* A small error buffer gets a cut message, never an overflow. */
	char err[16];
	assert_int_equal(
	    put("question", "{\"title\":\"T\",\"status\":\"done\"}", 1, err, sizeof(err)),
	    LOKET_E_MALFORMED);
	assert_string_equal(err, "question: field");
}

/* Collects what schema_each_ref_in reports as "field coll owner id;" lines. */
struct refs_seen {
	char text[512];
	size_t len;
	int stop_after;
};

static int record_ref(void *arg, const char *field, const char *coll, const char *owner,
                      const char *id)
{
	struct refs_seen *r = arg;
	int w = snprintf(r->text + r->len, sizeof(r->text) - r->len, "%s %s %s %s;", field, coll,
	                 owner, id);
	assert_true(w > 0 && (size_t)w < sizeof(r->text) - r->len);
	r->len += (size_t)w;
	return --r->stop_after == 0 ? 7 : 0;
}

/* Walks the references of fields (JSON text) in their msgpack form into *r. */
static int each_ref(const char *coll, const char *fields, struct refs_seen *r)
{
	msgpack_sbuffer b;
	pack(fields, &b);
	int rc = schema_each_ref_in(coll, (const uint8_t *)b.data, b.size, record_ref, r);
	msgpack_sbuffer_destroy(&b);
	return rc;
}

static void test_each_ref(void **state)
{
	(void)state;
	struct refs_seen r = {.stop_after = -1};
	assert_int_equal(
	    each_ref("response",
	             "{\"question\":\"gemeente/eenzaamheid-merenwijk\",\"kind\":\"offer\"}", &r),
	    0);
	assert_string_equal(r.text, "question question gemeente eenzaamheid-merenwijk;");

	const char *accepted =
	    "{\"title\":\"T\",\"accepted\":[\"hogeschool/r1\",[\"x/y\"],\"lumc/r:2\"]}";
	r = (struct refs_seen){.stop_after = -1};
	assert_int_equal(each_ref("question", accepted, &r), 0);
	assert_string_equal(r.text, "accepted response hogeschool r1;accepted response lumc r:2;");
	/* A non-zero return stops the walk and is passed on. */
	r = (struct refs_seen){.stop_after = 1};
	assert_int_equal(each_ref("question", accepted, &r), 7);
	assert_string_equal(r.text, "accepted response hogeschool r1;");

	/* Nothing to report: no references, cleared, malformed, or no such collection. */
	const char *none[][2] = {{"expert", "{\"name\":\"X\",\"org\":\"universiteit/ul\"}"},
	                         {"question", "{\"accepted\":null}"},
	                         {"question", "{\"accepted\":\"a/b\"}"},
	                         {"response", "{\"question\":\"q1\"}"},
	                         {"response", "[\"a/b\"]"},
	                         {"foo", "{\"question\":\"a/b\"}"}};
	for (size_t i = 0; i < sizeof(none) / sizeof(none[0]); i++) {
		r = (struct refs_seen){.stop_after = -1};
		assert_int_equal(each_ref(none[i][0], none[i][1], &r), 0);
		assert_int_equal(r.len, 0);
	}

	/* Bytes that are not one map are refused before fn is called. */
	static const char bad[] = "\x82\xa8question\xa3g/q\xa4kind\xa5of";
	r = (struct refs_seen){.stop_after = -1};
	assert_int_equal(
	    schema_each_ref_in("response", (const uint8_t *)bad, sizeof(bad) - 1, record_ref, &r),
	    LOKET_E_MALFORMED);
	assert_int_equal(r.len, 0);
	assert_int_equal(schema_each_ref_in("response", NULL, 0, record_ref, &r), 0);
}

static void test_nil_clears(void **state)
{
	(void)state;
	char err[256];
	/* {"name":"X","org":nil}: a create that leaves org unset. */
	static const char create[] = "\x82\xa4name\xa1X\xa3org\xc0";
	assert_int_equal(put_raw("expert", create, sizeof(create) - 1, 1, err, sizeof(err)), 0);
	/* {"org":nil}: an update that clears org. */
	static const char clear[] = "\x81\xa3org\xc0";
	assert_int_equal(put_raw("expert", clear, sizeof(clear) - 1, 0, err, sizeof(err)), 0);
	/* A nil extra field or twin is not held to any rule. */
	static const char extra[] = "\x82\xa4name\xa1X\xa7name_en\xc0";
	assert_int_equal(put_raw("expert", extra, sizeof(extra) - 1, 1, err, sizeof(err)), 0);
	/* {"name":nil}: a required field cannot be cleared. */
	static const char name[] = "\x81\xa4name\xc0";
	assert_int_equal(put_raw("expert", name, sizeof(name) - 1, 0, err, sizeof(err)),
	                 LOKET_E_MALFORMED);
	assert_string_equal(err, "expert: field \"name\" is required and cannot be cleared");
	assert_int_equal(put_raw("expert", name, sizeof(name) - 1, 1, err, sizeof(err)),
	                 LOKET_E_MALFORMED);
	assert_string_equal(err, "expert: field \"name\" is required");
}

static void test_malformed(void **state)
{
	(void)state;
	char err[256];
	/* Every cut of a good put is refused, never read past. */
	msgpack_sbuffer b;
	pack("{\"title\":\"T\",\"asker\":{\"name\":\"A\",\"kind\":\"citizen\"},"
	     "\"topics\":[\"a\",\"b\"],\"accepted\":[\"o/"
	     "r1\"],\"geo\":{\"lat\":52.16,\"n\":[1,-2]}}",
	     &b);
	assert_int_equal(put_raw("question", b.data, b.size, 1, err, sizeof(err)), 0);
	for (size_t cut = 0; cut < b.size; cut++) {
		/* A copy of exactly cut bytes, so ASan sees any read beyond. */
		char *p = malloc(cut ? cut : 1);
		assert_non_null(p);
		memcpy(p, b.data, cut);
		assert_int_equal(put_raw("question", p, cut, 1, err, sizeof(err)),
		                 LOKET_E_MALFORMED);
		if (cut > 0 && strncmp(err, "question: fields are malformed msgpack (", 40) != 0)
			fail_msg("cut at %zu: %s", cut, err);
		struct refs_seen r = {.stop_after = -1};
		int rc = schema_each_ref_in("question", (const uint8_t *)p, cut, record_ref, &r);
		assert_int_equal(rc, cut ? LOKET_E_MALFORMED : 0);
		assert_int_equal(r.len, 0);
		free(p);
	}
	msgpack_sbuffer_destroy(&b);

	static const struct {
		const char *bytes;
		size_t len;
		const char *message;
	} bad[] = {
	    /* {"name":"Jan"} cut inside the string. */
	    {"\x81\xa4name\xa3Ja", 8,
	     "org: fields are malformed msgpack (truncated string at byte 7)"},
	    /* A map header promising more entries than bytes. */
	    {"\xdf\xff\xff\xff\xff\xa4name", 10,
	     "org: fields are malformed msgpack (count beyond the bytes that follow at byte 5)"},
	    {"\x81\xa4name\xc4\x01x", 9,
	     "org: fields are malformed msgpack (bin, ext or reserved byte at byte 6)"},
	    {"\x81\xa4name\xd4\x01x", 9,
	     "org: fields are malformed msgpack (bin, ext or reserved byte at byte 6)"},
	    {"\x81\xc1\xa1x", 4,
	     "org: fields are malformed msgpack (bin, ext or reserved byte at byte 1)"},
	    {"\x82\xa4name\xa1X\x01\xa1x", 10,
	     "org: fields are malformed msgpack (map key that is not a string at byte 8)"},
	    /* A key that is not a string, deep inside an extra field. */
	    {"\x82\xa3geo\x81\x01\x02\xa4name\xa1X", 14,
	     "org: fields are malformed msgpack (map key that is not a string at byte 6)"},
	    {"\x82\xa4name\xa1X\xa4name\xa1Y", 15,
	     "org: fields are malformed msgpack (field given twice at byte 8)"},
	    {"\x81\xa4name\xa1X\xc0", 9,
	     "org: fields are malformed msgpack (bytes after the map at byte 8)"},
	    {"\x81\xa4name\xda\x00", 8,
	     "org: fields are malformed msgpack (truncated header at byte 7)"},
	    /* A well-formed value that is not a map, and one that is cut. */
	    {"\xa3"
	     "abc",
	     4, "org: fields must be a map (got \"abc\")"},
	    {"\xa3"
	     "ab",
	     3, "org: fields are malformed msgpack (truncated string at byte 1)"},
	    {"\x91\x01", 2, "org: fields must be a map (got array)"},
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		char *p = malloc(bad[i].len);
		assert_non_null(p);
		memcpy(p, bad[i].bytes, bad[i].len);
		assert_int_equal(put_raw("org", p, bad[i].len, 1, err, sizeof(err)),
		                 LOKET_E_MALFORMED);
		assert_string_equal(err, bad[i].message);
		free(p);
	}

	/* Malformed bytes are reported before any rule they break. */
	static const char both[] = "\x82\xa4kind\x05\xa4name\xa3Ja";
	assert_int_equal(put_raw("org", both, sizeof(both) - 1, 1, err, sizeof(err)),
	                 LOKET_E_MALFORMED);
	assert_string_equal(err, "org: fields are malformed msgpack (truncated string at byte 13)");

	/* Nesting is bounded: 40 arrays deep inside an extra field. */
	char deep[64];
	size_t o = 0;
	memcpy(deep, "\x82\xa1x", 3);
	o = 3;
	for (int i = 0; i < 40; i++)
		deep[o++] = '\x91';
	deep[o++] = '\x01';
	memcpy(deep + o, "\xa4name\xa1X", 7);
	o += 7;
	assert_int_equal(put_raw("org", deep, o, 1, err, sizeof(err)), LOKET_E_MALFORMED);
	assert_string_equal(err, "org: fields are malformed msgpack (nesting too deep at byte 35)");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_collections),
	    cmocka_unit_test(test_fields_must_be_a_map),
	    cmocka_unit_test(test_org),
	    cmocka_unit_test(test_expert),
	    cmocka_unit_test(test_resource),
	    cmocka_unit_test(test_project),
	    cmocka_unit_test(test_question),
	    cmocka_unit_test(test_question_asker),
	    cmocka_unit_test(test_question_deadline),
	    cmocka_unit_test(test_references),
	    cmocka_unit_test(test_response),
	    cmocka_unit_test(test_update),
	    cmocka_unit_test(test_english_twins),
	    cmocka_unit_test(test_extra_fields),
	    cmocka_unit_test(test_sizes),
	    cmocka_unit_test(test_quoting),
	    cmocka_unit_test(test_each_ref),
	    cmocka_unit_test(test_nil_clears),
	    cmocka_unit_test(test_malformed),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
