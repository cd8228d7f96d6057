/*
 * schema: checks a local write against the field rules of its collection
 * before the node signs it. The rules are data: one table of fields per
 * collection, each field with a kind (text, long text, enumeration, date,
 * reference, arrays of those, or a map with its own table), whether it is
 * required and, for enumerations, the values allowed. The checker walks the
 * table first (so errors come in a stable order), then looks at the fields
 * the table does not name: English twins "<field>_en" of text fields get
 * the rule of their field, anything else only the generic limits. Errors
 * are one sentence naming the collection, the field and what was expected,
 * quoting what was given.
 */
#include "daemon/schema.h"

#include <assert.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "proto/changeset.h"
#include "proto/error.h"
#include "proto/limits.h"

enum kind {
	TEXT,  /* string of at most SCHEMA_MAX_TEXT bytes; may have an _en twin */
	LONG,  /* string of at most SCHEMA_MAX_LONG bytes; may have an _en twin */
	ENUM,  /* one of the rule's values */
	DATE,  /* YYYY-MM-DD, a date that exists */
	REF,   /* OWNER/ID: a member name and an entity id */
	TEXTS, /* array of TEXT */
	ENUMS, /* array of ENUM */
	REFS,  /* array of REF */
	MAP,   /* map checked against the rule's own table */
};

struct rule {
	const char *name;
	enum kind kind;
	int required;
	const char *const *values; /* ENUM, ENUMS: NULL-terminated */
	const struct rule *sub;    /* MAP: table of the map's fields */
	const char *target;        /* REF, REFS: collection referred to */
};

static const char *const org_kinds[] = {"university",   "umc",    "hbo",     "mbo",
                                        "municipality", "museum", "company", "association",
                                        "other",        NULL};
static const char *const availability[] = {"questions", "internships", "theses",
                                           "lectures",  "supervision", NULL};
static const char *const resource_kinds[] = {"lab",   "facility", "collection", "dataset",
                                             "space", "course",   NULL};
static const char *const asker_kinds[] = {"citizen",      "neighbourhood", "association", "company",
                                          "municipality", "school",        "institution", NULL};
static const char *const question_kinds[] = {"research", "thesis",       "internship", "contest",
                                             "pitch",    "science-shop", "advice",     NULL};
static const char *const question_states[] = {"open",   "matched",   "in_progress", "answered",
                                              "closed", "withdrawn", NULL};
static const char *const response_kinds[] = {"claim", "offer", "answer", "referral", NULL};
static const char *const response_states[] = {"offered", "withdrawn", "delivered", NULL};

static const struct rule org_rules[] = {
    {.name = "name", .kind = TEXT, .required = 1},
    {.name = "kind", .kind = ENUM, .values = org_kinds},
    {.name = "city", .kind = TEXT},
    {.name = "website", .kind = TEXT},
    {.name = "description", .kind = LONG},
    {0},
};

static const struct rule expert_rules[] = {
    {.name = "name", .kind = TEXT, .required = 1},
    {.name = "org", .kind = TEXT},
    {.name = "title", .kind = TEXT},
    {.name = "topics", .kind = TEXTS},
    {.name = "description", .kind = LONG},
    {.name = "languages", .kind = TEXTS},
    {.name = "contact", .kind = TEXT},
    {.name = "available_for", .kind = ENUMS, .values = availability},
    {0},
};

static const struct rule resource_rules[] = {
    {.name = "name", .kind = TEXT, .required = 1},
    {.name = "kind", .kind = ENUM, .values = resource_kinds},
    {.name = "org", .kind = TEXT},
    {.name = "description", .kind = LONG},
    {.name = "topics", .kind = TEXTS},
    {.name = "access", .kind = TEXT},
    {0},
};

static const struct rule project_rules[] = {
    {.name = "name", .kind = TEXT, .required = 1},
    {.name = "org", .kind = TEXT},
    {.name = "partners", .kind = TEXTS},
    {.name = "description", .kind = LONG},
    {.name = "topics", .kind = TEXTS},
    {.name = "status", .kind = TEXT},
    {.name = "period", .kind = TEXT},
    {.name = "outcome", .kind = LONG},
    {0},
};

static const struct rule asker_rules[] = {
    {.name = "name", .kind = TEXT, .required = 1},
    {.name = "kind", .kind = ENUM, .values = asker_kinds},
    {0},
};

static const struct rule question_rules[] = {
    {.name = "title", .kind = TEXT, .required = 1},
    {.name = "body", .kind = LONG},
    {.name = "asker", .kind = MAP, .sub = asker_rules},
    {.name = "topics", .kind = TEXTS},
    {.name = "kind", .kind = ENUM, .values = question_kinds},
    {.name = "neighbourhood", .kind = TEXT},
    {.name = "deadline", .kind = DATE},
    {.name = "status", .kind = ENUM, .values = question_states},
    {.name = "accepted", .kind = REFS, .target = "response"},
    {0},
};

static const struct rule response_rules[] = {
    {.name = "question", .kind = REF, .required = 1, .target = "question"},
    {.name = "kind", .kind = ENUM, .required = 1, .values = response_kinds},
    {.name = "team", .kind = TEXT},
    {.name = "contact", .kind = TEXT},
    {.name = "text", .kind = LONG},
    {.name = "status", .kind = ENUM, .values = response_states},
    {0},
};

static const struct {
	const char *name;
	const struct rule *rules;
} collections[] = {
    {"org", org_rules},         {"expert", expert_rules},     {"resource", resource_rules},
    {"project", project_rules}, {"question", question_rules}, {"response", response_rules},
};

#define N_COLLECTIONS (sizeof(collections) / sizeof(collections[0]))

/* Where a check is: the collection for messages and the caller's buffer. */
struct check {
	const char *coll;
	char *err;
	size_t errlen;
};

/* Room for a field label: a map field, a key and an array index. */
#define LABEL_MAX (2 * LOKET_MAX_KEY_LEN + 32)

/* Longest part of a string value quoted in a message. */
#define QUOTE_MAX 48

/*
 * Quotes s for a message: at most QUOTE_MAX bytes cut at a character
 * boundary, quotes and backslashes escaped, control bytes shown as '?'.
 */
static void quote(const char *s, size_t len, char *buf, size_t buflen)
{
	size_t n = len;
	int cut = 0;
	if (n > QUOTE_MAX) {
		n = QUOTE_MAX;
		while (n > 0 && ((unsigned char)s[n] & 0xc0) == 0x80)
			n--;
		cut = 1;
	}
	size_t o = 0;
	if (buflen < 2 * QUOTE_MAX + 8) {
		snprintf(buf, buflen, "\"...\"");
		return;
	}
	buf[o++] = '"';
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c == '"' || c == '\\')
			buf[o++] = '\\';
		buf[o++] = (c < 0x20 || c == 0x7f) ? '?' : (char)c;
	}
	if (cut) {
		memcpy(buf + o, "...", 3);
		o += 3;
	}
	buf[o++] = '"';
	buf[o] = '\0';
}

/* What a value is, for the "(got ...)" part of a message. */
static void describe(const json_t *v, char *buf, size_t buflen)
{
	const char *type = "null";
	if (!v) {
		snprintf(buf, buflen, "nothing");
		return;
	}
	switch (json_typeof(v)) {
	case JSON_STRING:
		quote(json_string_value(v), json_string_length(v), buf, buflen);
		return;
	case JSON_INTEGER:
	case JSON_REAL:
		type = "number";
		break;
	case JSON_TRUE:
	case JSON_FALSE:
		type = "boolean";
		break;
	case JSON_ARRAY:
		type = "array";
		break;
	case JSON_OBJECT:
		type = "map";
		break;
	case JSON_NULL:
		break;
	}
	snprintf(buf, buflen, "%s", type);
}

/* Writes lead followed by names joined with ", ", for a message. */
static void join(const char *lead, const char *const *names, char *buf, size_t buflen)
{
	int w = snprintf(buf, buflen, "%s", lead);
	if (w < 0 || (size_t)w >= buflen)
		return;
	size_t o = (size_t)w;
	for (size_t i = 0; names[i]; i++) {
		w = snprintf(buf + o, buflen - o, "%s%s", i ? ", " : "", names[i]);
		if (w < 0 || (size_t)w >= buflen - o)
			return; /* a cut list still reads; the tables are far shorter */
		o += (size_t)w;
	}
}

/*
 * Fills the error buffer with "COLL: field "LABEL" <what>" and returns code.
 * A message longer than the caller's buffer is cut, which is all a message
 * can do.
 */
__attribute__((format(printf, 4, 5))) static int fail(const struct check *c, int code,
                                                      const char *label, const char *fmt, ...)
{
	char what[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(what, sizeof(what), fmt, ap);
	va_end(ap);
	snprintf(c->err, c->errlen, "%s: field \"%s\" %s", c->coll, label, what);
	return code;
}

static int fail_got(const struct check *c, const char *label, const char *expected, const json_t *v)
{
	char got[2 * QUOTE_MAX + 8];
	describe(v, got, sizeof(got));
	return fail(c, LOKET_E_MALFORMED, label, "must be %s (got %s)", expected, got);
}

static int is_member_char(char ch)
{
	return (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') || ch == '_' || ch == '-';
}

/* OWNER/ID: OWNER a member name ([a-z0-9_-]{1,64}), ID an entity id. */
static int is_reference(const char *s, size_t len)
{
	const char *slash = memchr(s, '/', len);
	if (!slash)
		return 0;
	size_t owner_len = (size_t)(slash - s);
	if (owner_len == 0 || owner_len > LOKET_MAX_NAME_LEN)
		return 0;
	for (size_t i = 0; i < owner_len; i++)
		if (!is_member_char(s[i]))
			return 0;
	return changeset_valid_id(slash + 1, len - owner_len - 1);
}

static int digits(const char *s, size_t n, unsigned *out)
{
	*out = 0;
	for (size_t i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return 0;
		*out = *out * 10 + (unsigned)(s[i] - '0');
	}
	return 1;
}

/* YYYY-MM-DD naming a day that exists in the Gregorian calendar. */
static int is_date(const char *s, size_t len)
{
	static const unsigned days[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
	unsigned y, m, d;
	if (len != 10 || s[4] != '-' || s[7] != '-')
		return 0;
	if (!digits(s, 4, &y) || !digits(s + 5, 2, &m) || !digits(s + 8, 2, &d))
		return 0;
	if (m < 1 || m > 12 || d < 1)
		return 0;
	int leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
	return d <= days[m - 1] + (m == 2 && leap ? 1u : 0u);
}

static int is_one_of(const char *s, size_t len, const char *const *values)
{
	for (size_t i = 0; values[i]; i++)
		if (strlen(values[i]) == len && memcmp(values[i], s, len) == 0)
			return 1;
	return 0;
}

static int check_string(const struct check *c, const char *label, const json_t *v, size_t max,
                        int required)
{
	if (!json_is_string(v))
		return fail_got(c, label, "a string", v);
	size_t len = json_string_length(v);
	if (len > max)
		return fail(c, LOKET_E_TOO_BIG, label, "must be at most %zu bytes (got %zu)", max,
		            len);
	if (required && len == 0)
		return fail(c, LOKET_E_MALFORMED, label, "must not be empty");
	return 0;
}

static int check_object(const struct check *c, const char *prefix, const struct rule *rules,
                        const json_t *obj, int creating);

/* "a map with name, kind": what a MAP rule expects, from its table. */
static void map_expected(const struct rule *sub, char *buf, size_t buflen)
{
	const char *names[16];
	size_t n = 0;
	for (const struct rule *f = sub; f->name && n + 1 < 16; f++)
		names[n++] = f->name;
	names[n] = NULL;
	join("a map with ", names, buf, buflen);
}

/* One value that is not an array: a rule's own value or one item of an array rule. */
static int check_one(const struct check *c, const char *label, const struct rule *r, enum kind kind,
                     const json_t *v)
{
	char expected[256];
	const char *s = json_string_value(v);
	size_t len = json_string_length(v);
	switch (kind) {
	case TEXT:
		return check_string(c, label, v, SCHEMA_MAX_TEXT, r->required);
	case LONG:
		return check_string(c, label, v, SCHEMA_MAX_LONG, r->required);
	case ENUM:
		if (s && is_one_of(s, len, r->values))
			return 0;
		join("one of ", r->values, expected, sizeof(expected));
		return fail_got(c, label, expected, v);
	case DATE:
		if (s && is_date(s, len))
			return 0;
		return fail_got(c, label, "a date YYYY-MM-DD", v);
	case REF:
		if (s && is_reference(s, len))
			return 0;
		return fail_got(c, label, "a reference OWNER/ID", v);
	case MAP:
		/* A map is replaced whole, so its own required fields always hold. */
		if (json_is_object(v))
			return check_object(c, label, r->sub, v, 1);
		map_expected(r->sub, expected, sizeof(expected));
		return fail_got(c, label, expected, v);
	case TEXTS:
	case ENUMS:
	case REFS:
		break;
	}
	assert(0 && "arrays are checked by check_value");
	return LOKET_E_MALFORMED;
}

/* The value of a field named by a rule; null (clearing) was handled by the caller. */
static int check_value(const struct check *c, const char *label, const struct rule *r,
                       const json_t *v)
{
	enum kind item;
	const char *expected;
	switch (r->kind) {
	case TEXTS:
		item = TEXT;
		expected = "an array of strings";
		break;
	case ENUMS:
		item = ENUM;
		expected = "an array of strings";
		break;
	case REFS:
		item = REF;
		expected = "an array of references OWNER/ID";
		break;
	default:
		return check_one(c, label, r, r->kind, v);
	}
	if (!json_is_array(v))
		return fail_got(c, label, expected, v);
	if (json_array_size(v) > SCHEMA_MAX_ITEMS)
		return fail(c, LOKET_E_TOO_BIG, label, "must have at most %u items (got %zu)",
		            SCHEMA_MAX_ITEMS, json_array_size(v));
	/* Items are not required: an empty string in a list is only odd. */
	struct rule item_rule = *r;
	item_rule.required = 0;
	size_t i;
	const json_t *x;
	json_array_foreach(v, i, x)
	{
		char at[LABEL_MAX + 24];
		int w = snprintf(at, sizeof(at), "%s[%zu]", label, i);
		assert(w > 0 && (size_t)w < sizeof(at)); /* a label and at most 2 digits */
		(void)w;
		int rc = check_one(c, at, &item_rule, item, x);
		if (rc != 0)
			return rc;
	}
	return 0;
}

/* Limits on any field the tables do not name. */
static int check_extra(const struct check *c, const char *label, const json_t *v)
{
	if (json_is_string(v))
		return check_string(c, label, v, SCHEMA_MAX_LONG, 0);
	if (json_is_array(v) && json_array_size(v) > SCHEMA_MAX_ITEMS)
		return fail(c, LOKET_E_TOO_BIG, label, "must have at most %u items (got %zu)",
		            SCHEMA_MAX_ITEMS, json_array_size(v));
	return 0;
}

static const struct rule *find_rule(const struct rule *rules, const char *name, size_t len)
{
	for (const struct rule *r = rules; r->name; r++)
		if (strlen(r->name) == len && memcmp(r->name, name, len) == 0)
			return r;
	return NULL;
}

/* The field label in messages: "title", or "asker.name" inside a map. */
static void make_label(const char *prefix, const char *key, char *buf, size_t buflen)
{
	int w = snprintf(buf, buflen, "%s%s%.*s", prefix ? prefix : "", prefix ? "." : "",
	                 (int)LOKET_MAX_KEY_LEN, key);
	/* Keys are cut at LOKET_MAX_KEY_LEN and a prefix is a rule's name, so it fits. */
	assert(w > 0 && (size_t)w < buflen);
	(void)w;
}

static int check_object(const struct check *c, const char *prefix, const struct rule *rules,
                        const json_t *obj, int creating)
{
	char label[LABEL_MAX];
	for (const struct rule *r = rules; r->name; r++) {
		const json_t *v = json_object_get(obj, r->name);
		make_label(prefix, r->name, label, sizeof(label));
		if (!v || json_is_null(v)) {
			if (r->required && creating)
				return fail(c, LOKET_E_MALFORMED, label, "is required");
			if (r->required && v)
				return fail(c, LOKET_E_MALFORMED, label,
				            "is required and cannot be cleared");
			continue;
		}
		int rc = check_value(c, label, r, v);
		if (rc != 0)
			return rc;
	}

	const char *key;
	const json_t *v;
	json_object_foreach((json_t *)obj, key, v)
	{
		size_t len = strlen(key);
		if (find_rule(rules, key, len) || json_is_null(v))
			continue;
		make_label(prefix, key, label, sizeof(label));
		const struct rule *base = NULL;
		if (len > 3 && memcmp(key + len - 3, "_en", 3) == 0)
			base = find_rule(rules, key, len - 3);
		int rc;
		if (base && (base->kind == TEXT || base->kind == LONG))
			rc = check_string(
			    c, label, v, base->kind == TEXT ? SCHEMA_MAX_TEXT : SCHEMA_MAX_LONG, 0);
		else
			rc = check_extra(c, label, v);
		if (rc != 0)
			return rc;
	}
	return 0;
}

static const struct rule *rules_of(const char *coll)
{
	for (size_t i = 0; i < N_COLLECTIONS; i++)
		if (strcmp(collections[i].name, coll) == 0)
			return collections[i].rules;
	return NULL;
}

int schema_check_coll(const char *coll, char *err, size_t errlen)
{
	if (rules_of(coll))
		return 0;
	const char *names[N_COLLECTIONS + 1];
	for (size_t i = 0; i < N_COLLECTIONS; i++)
		names[i] = collections[i].name;
	names[N_COLLECTIONS] = NULL;
	char known[256], quoted[2 * QUOTE_MAX + 8];
	join("", names, known, sizeof(known));
	quote(coll, strlen(coll), quoted, sizeof(quoted));
	snprintf(err, errlen, "unknown collection %s (known: %s)", quoted, known);
	return LOKET_E_MALFORMED;
}

int schema_check_put(const char *coll, const json_t *fields, int creating, char *err, size_t errlen)
{
	int rc = schema_check_coll(coll, err, errlen);
	if (rc != 0)
		return rc;
	if (!json_is_object(fields)) {
		char got[2 * QUOTE_MAX + 8];
		describe(fields, got, sizeof(got));
		snprintf(err, errlen, "%s: fields must be a map (got %s)", coll, got);
		return LOKET_E_MALFORMED;
	}
	struct check c = {.coll = coll, .err = err, .errlen = errlen};
	return check_object(&c, NULL, rules_of(coll), fields, creating);
}

/* Splits a checked reference and hands it to fn; 0 or what fn returned. */
static int each_ref_call(const char *field, const char *target, const json_t *v, schema_ref_fn *fn,
                         void *arg)
{
	char owner[LOKET_MAX_NAME_LEN + 1], id[LOKET_MAX_ID_LEN + 1];
	const char *s = json_string_value(v);
	size_t len = json_string_length(v);
	if (!s || !is_reference(s, len))
		return 0; /* schema_check_put refuses it; nothing to look up */
	const char *slash = memchr(s, '/', len);
	size_t owner_len = (size_t)(slash - s);
	memcpy(owner, s, owner_len);
	owner[owner_len] = '\0';
	memcpy(id, slash + 1, len - owner_len - 1);
	id[len - owner_len - 1] = '\0';
	return fn(arg, field, target, owner, id);
}

int schema_each_ref(const char *coll, const json_t *fields, schema_ref_fn *fn, void *arg)
{
	const struct rule *rules = rules_of(coll);
	if (!rules || !json_is_object(fields))
		return 0;
	for (const struct rule *r = rules; r->name; r++) {
		const json_t *v = json_object_get(fields, r->name);
		int rc = 0;
		if (r->kind == REF) {
			rc = each_ref_call(r->name, r->target, v, fn, arg);
		} else if (r->kind == REFS && json_is_array(v)) {
			size_t i;
			const json_t *x;
			json_array_foreach(v, i, x)
			{
				rc = each_ref_call(r->name, r->target, x, fn, arg);
				if (rc != 0)
					break;
			}
		}
		if (rc != 0)
			return rc;
	}
	return 0;
}
