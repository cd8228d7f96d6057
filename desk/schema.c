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
 *
 * Fields arrive as canonical msgpack and are checked where they lie: a
 * bounded cursor reads each header once, nothing is allocated or unpacked,
 * and labels and quotes are formatted only when an error is reported, since
 * an import checks a hundred thousand puts a second. The JSON form is packed
 * and handed to the same checker.
 */
#include "desk/schema.h"

#include <assert.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <msgpack.h>

#include "proto/changeset.h"
#include "proto/error.h"
#include "proto/limits.h"
#include "proto/mpread.h"

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

/*
 * Deepest nesting of arrays and maps in a put's fields, the fields map
 * counting as one. Deeper input is refused as malformed, so the walk's
 * recursion is bounded whatever the caller checked before; the JSON form is
 * packed with the same limit.
 */
#define NEST_MAX 32u

/* Most rules in one table (the question has 9). */
#define RULES_MAX 16u

/* Room for a field label: a map field, a key and an array index. */
#define LABEL_MAX (2 * LOKET_MAX_KEY_LEN + 32)

/* What a msgpack value is, as far as the rules care. */
enum vtype {
	V_NIL,
	V_BOOL,
	V_NUM,
	V_STR,
	V_ARRAY,
	V_MAP,
};

/* One value's header: its type, a string's bytes, a container's count. */
struct val {
	enum vtype type;
	const char *s; /* V_STR: the bytes, not NUL-terminated */
	size_t n;      /* V_STR: bytes; V_ARRAY: items; V_MAP: entries */
};

/*
 * A cursor over msgpack bytes that never reads past end. The first thing
 * wrong (truncated input, bin or ext, a key that is not a string, nesting
 * too deep) stops the walk; why and where are kept for the message.
 */
struct cur {
	const uint8_t *start;
	const uint8_t *p;
	const uint8_t *end;
	const char *why;
	size_t at; /* offset of the failure */
};

/*
 * A field's label in messages ("title", "asker.name", "topics[1]"), kept as
 * pieces and formatted only when an error is reported: the success path
 * builds no string.
 */
struct label {
	const struct label *up; /* the map field this one is in, or NULL */
	const char *key;        /* at most len bytes are shown, and none past a NUL */
	size_t len;
	size_t index; /* the item of an array field, when indexed */
	int indexed;
};

/*
 * What a value is, for the "(got ...)" part of a message: the words the JSON
 * form of the value has always been described with. v NULL is "nothing".
 */
static void describe(const struct val *v, char *buf, size_t buflen)
{
	static const char *const names[] = {
	    [V_NIL] = "null",   [V_BOOL] = "boolean", [V_NUM] = "number",
	    [V_STR] = "string", [V_ARRAY] = "array",  [V_MAP] = "map",
	};
	if (!v) {
		snprintf(buf, buflen, "nothing");
		return;
	}
	if (v->type == V_STR) {
		error_quote(buf, buflen, v->s, v->n);
		return;
	}
	snprintf(buf, buflen, "%s", names[v->type]);
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
 * Writes the label into buf and returns its length, which may be buflen or
 * more when the label was cut (keys are cut at LOKET_MAX_KEY_LEN and only a
 * rule's name is ever a prefix, so LABEL_MAX + 24 bytes hold any label).
 */
static size_t label_format(const struct label *l, char *buf, size_t buflen)
{
	size_t o = l->up ? label_format(l->up, buf, buflen) : 0;
	if (o >= buflen)
		return o;
	int keylen = (int)(l->len < LOKET_MAX_KEY_LEN ? l->len : LOKET_MAX_KEY_LEN);
	int w = l->indexed
	            ? snprintf(buf + o, buflen - o, "%s%.*s[%zu]", l->up ? "." : "", keylen, l->key,
	                       l->index)
	            : snprintf(buf + o, buflen - o, "%s%.*s", l->up ? "." : "", keylen, l->key);
	return w < 0 ? buflen : o + (size_t)w;
}

/*
 * Fills the error buffer with "COLL: field "LABEL" <what>" and returns code.
 * A message longer than the caller's buffer is cut, which is all a message
 * can do.
 */
__attribute__((format(printf, 4, 5))) static int fail(const struct check *c, int code,
                                                      const struct label *l, const char *fmt, ...)
{
	char label[LABEL_MAX + 24], q[ERROR_QUOTE_SIZE], what[512];
	label_format(l, label, sizeof(label));
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(what, sizeof(what), fmt, ap);
	va_end(ap);
	snprintf(c->err, c->errlen, "%s: field %s %s", c->coll,
	         error_quote_str(q, sizeof(q), label), what);
	return code;
}

static int fail_got(const struct check *c, const struct label *l, const char *expected,
                    const struct val *v)
{
	char got[ERROR_QUOTE_SIZE];
	describe(v, got, sizeof(got));
	return fail(c, LOKET_E_MALFORMED, l, "must be %s (got %s)", expected, got);
}

/* The cursor stopped on bytes that are not one well-formed map: says where. */
static int fail_malformed(const struct check *c, const struct cur *cur)
{
	snprintf(c->err, c->errlen, "%s: fields are malformed msgpack (%s at byte %zu)", c->coll,
	         cur->why ? cur->why : "bad value", cur->at);
	return LOKET_E_MALFORMED;
}

/* Walking msgpack. */

static int bad(struct cur *c, const char *why)
{
	if (!c->why) {
		c->why = why;
		c->at = (size_t)(c->p - c->start);
	}
	return -1;
}

static size_t left(const struct cur *c)
{
	return (size_t)(c->end - c->p);
}

/* Moves past n bytes of a scalar's body. */
static int take(struct cur *c, size_t n)
{
	if (left(c) < n)
		return bad(c, "truncated value");
	c->p += n;
	return 0;
}

/* Reads the n-byte big-endian length or count of a header. */
static int take_uint(struct cur *c, size_t n, size_t *out)
{
	if (left(c) < n)
		return bad(c, "truncated header");
	uint64_t v = mpread_be(c->p, n);
	c->p += n;
	if (v > SIZE_MAX)
		return bad(c, "count beyond memory");
	*out = (size_t)v;
	return 0;
}

static int head_str(struct cur *c, struct val *v, size_t n)
{
	if (left(c) < n)
		return bad(c, "truncated string");
	v->type = V_STR;
	v->s = (const char *)c->p;
	v->n = n;
	c->p += n;
	return 0;
}

/* Every item takes at least a byte, an entry two: a larger count is a lie. */
static int head_container(struct cur *c, struct val *v, enum vtype type, size_t n)
{
	if (n > left(c) / (type == V_MAP ? 2 : 1))
		return bad(c, "count beyond the bytes that follow");
	v->type = type;
	v->n = n;
	return 0;
}

/*
 * Reads the header of the value at the cursor into v and moves past it:
 * past a scalar or a string whole, past only the header of an array or a
 * map, whose items follow.
 */
static int read_head(struct cur *c, struct val *v)
{
	size_t n = 0;
	if (c->p >= c->end)
		return bad(c, "truncated value");
	uint8_t t = *c->p++;
	if (t <= 0x7f || t >= 0xe0) {
		v->type = V_NUM;
		return 0;
	}
	if (t <= 0x8f)
		return head_container(c, v, V_MAP, t & 0x0fu);
	if (t <= 0x9f)
		return head_container(c, v, V_ARRAY, t & 0x0fu);
	if (t <= 0xbf)
		return head_str(c, v, t & 0x1fu);
	v->type = V_NUM;
	switch (t) {
	case 0xc0:
		v->type = V_NIL;
		return 0;
	case 0xc2:
	case 0xc3:
		v->type = V_BOOL;
		return 0;
	case 0xcc:
	case 0xd0:
		return take(c, 1);
	case 0xcd:
	case 0xd1:
		return take(c, 2);
	case 0xca:
	case 0xce:
	case 0xd2:
		return take(c, 4);
	case 0xcb:
	case 0xcf:
	case 0xd3:
		return take(c, 8);
	case 0xd9:
	case 0xda:
	case 0xdb:
		return take_uint(c, (size_t)1 << (t - 0xd9), &n) ? -1 : head_str(c, v, n);
	case 0xdc:
	case 0xdd:
		return take_uint(c, t == 0xdc ? 2 : 4, &n) ? -1 : head_container(c, v, V_ARRAY, n);
	case 0xde:
	case 0xdf:
		return take_uint(c, t == 0xde ? 2 : 4, &n) ? -1 : head_container(c, v, V_MAP, n);
	default:
		c->p--;
		return bad(c, "bin, ext or reserved byte");
	}
}

/*
 * Moves past the items of a value whose header v was just read (nothing to
 * do for a scalar). level is the nesting of v, the fields map being 1.
 */
static int skip_rest(struct cur *c, const struct val *v, unsigned level)
{
	if (v->type != V_ARRAY && v->type != V_MAP)
		return 0;
	if (level > NEST_MAX)
		return bad(c, "nesting too deep");
	for (size_t i = 0; i < v->n; i++) {
		struct val x;
		if (v->type == V_MAP) {
			const uint8_t *key = c->p;
			if (read_head(c, &x))
				return -1;
			if (x.type != V_STR) {
				c->p = key;
				return bad(c, "map key that is not a string");
			}
		}
		if (read_head(c, &x) || skip_rest(c, &x, level + 1))
			return -1;
	}
	return 0;
}

/* The rules. */

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

/*
 * 1 if the NUL-terminated name is exactly the len bytes of s. Names are a
 * few bytes and most differ in the first, so a plain loop beats strlen and
 * memcmp; it never reads name past its NUL, even when s holds one.
 */
static int name_is(const char *name, const char *s, size_t len)
{
	for (size_t i = 0; i < len; i++)
		if (name[i] == '\0' || name[i] != s[i])
			return 0;
	return name[len] == '\0';
}

static int is_one_of(const char *s, size_t len, const char *const *values)
{
	for (size_t i = 0; values[i]; i++)
		if (name_is(values[i], s, len))
			return 1;
	return 0;
}

static const struct rule *find_rule(const struct rule *rules, const char *name, size_t len)
{
	for (const struct rule *r = rules; r->name; r++)
		if (name_is(r->name, name, len))
			return r;
	return NULL;
}

static int check_string(const struct check *c, const struct label *l, const struct val *v,
                        size_t max, int required)
{
	if (v->type != V_STR)
		return fail_got(c, l, "a string", v);
	if (v->n > max)
		return fail(c, LOKET_E_TOO_BIG, l, "must be at most %zu bytes (got %zu)", max,
		            v->n);
	if (required && v->n == 0)
		return fail(c, LOKET_E_MALFORMED, l, "must not be empty");
	return 0;
}

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

/* One value that is not an array or a map: a rule's own value or an item of an array rule. */
static int check_one(const struct check *c, const struct label *l, const struct rule *r,
                     enum kind kind, const struct val *v)
{
	char expected[256];
	int str = v->type == V_STR;
	switch (kind) {
	case TEXT:
		return check_string(c, l, v, SCHEMA_MAX_TEXT, r->required);
	case LONG:
		return check_string(c, l, v, SCHEMA_MAX_LONG, r->required);
	case ENUM:
		if (str && is_one_of(v->s, v->n, r->values))
			return 0;
		join("one of ", r->values, expected, sizeof(expected));
		return fail_got(c, l, expected, v);
	case DATE:
		if (str && is_date(v->s, v->n))
			return 0;
		return fail_got(c, l, "a date YYYY-MM-DD", v);
	case REF:
		if (str && is_reference(v->s, v->n))
			return 0;
		return fail_got(c, l, "a reference OWNER/ID", v);
	case MAP:
	case TEXTS:
	case ENUMS:
	case REFS:
		break;
	}
	assert(0 && "maps and arrays are checked by check_value");
	return LOKET_E_MALFORMED;
}

/* A rule's value in a map: its header, read once, and where its items start. */
struct slot {
	const uint8_t *p; /* just after the header; NULL when the field is absent */
	struct val v;
};

/*
 * Where each rule's value is in a map: one walk over the entries, which
 * also proves every entry well formed down to the last byte. slots[i] is
 * the value of rules[i]; *extra says whether the map holds a non-nil field
 * the table does not name. Leaves the cursor after the map. level is the
 * map's nesting.
 */
static int locate(struct cur *cur, const struct rule *rules, size_t n, unsigned level,
                  struct slot slots[RULES_MAX], int *extra)
{
	for (size_t i = 0; rules[i].name; i++) {
		assert(i < RULES_MAX);
		slots[i].p = NULL;
	}
	*extra = 0;
	if (level > NEST_MAX)
		return bad(cur, "nesting too deep");
	for (size_t i = 0; i < n; i++) {
		struct val k, v;
		const uint8_t *key = cur->p;
		if (read_head(cur, &k))
			return -1;
		if (k.type != V_STR) {
			cur->p = key;
			return bad(cur, "map key that is not a string");
		}
		if (read_head(cur, &v))
			return -1;
		const uint8_t *items = cur->p;
		if (skip_rest(cur, &v, level + 1))
			return -1;
		const struct rule *r = find_rule(rules, k.s, k.n);
		if (r) {
			struct slot *s = &slots[r - rules];
			if (s->p) {
				cur->p = key;
				return bad(cur, "field given twice");
			}
			s->p = items;
			s->v = v;
		} else if (v.type != V_NIL) {
			*extra = 1;
		}
	}
	return 0;
}

static int check_map(const struct check *c, struct cur *cur, const struct label *up,
                     const struct rule *rules, size_t n, int creating, unsigned level);

/*
 * The value of a field named by a rule, whose header v was read at the
 * cursor; nil (clearing) was handled by the caller. level is v's nesting.
 */
static int check_value(const struct check *c, struct cur *cur, const struct label *l,
                       const struct rule *r, const struct val *v, unsigned level)
{
	char buf[256];
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
	case MAP:
		/* A map is replaced whole, so its own required fields always hold. */
		if (v->type == V_MAP)
			return check_map(c, cur, l, r->sub, v->n, 1, level);
		map_expected(r->sub, buf, sizeof(buf));
		return fail_got(c, l, buf, v);
	default:
		return check_one(c, l, r, r->kind, v);
	}
	if (v->type != V_ARRAY)
		return fail_got(c, l, expected, v);
	if (v->n > SCHEMA_MAX_ITEMS)
		return fail(c, LOKET_E_TOO_BIG, l, "must have at most %u items (got %zu)",
		            SCHEMA_MAX_ITEMS, v->n);
	/* Items are not required: an empty string in a list is only odd. */
	struct rule item_rule = *r;
	item_rule.required = 0;
	struct label at = *l;
	at.indexed = 1;
	for (size_t i = 0; i < v->n; i++) {
		struct val x;
		if (read_head(cur, &x))
			return fail_malformed(c, cur);
		at.index = i;
		/* A good item is a string, which read_head moved past whole. */
		int rc = check_one(c, &at, &item_rule, item, &x);
		if (rc != 0)
			return rc;
	}
	return 0;
}

/* Limits on any field the tables do not name. */
static int check_extra(const struct check *c, const struct label *l, const struct val *v)
{
	if (v->type == V_STR)
		return check_string(c, l, v, SCHEMA_MAX_LONG, 0);
	if (v->type == V_ARRAY && v->n > SCHEMA_MAX_ITEMS)
		return fail(c, LOKET_E_TOO_BIG, l, "must have at most %u items (got %zu)",
		            SCHEMA_MAX_ITEMS, v->n);
	return 0;
}

/*
 * The fields the table does not name, in the map's order: English twins
 * "<field>_en" of text fields get the rule of their field, anything else
 * the generic limits. cur is at the map's first entry; the map was located.
 */
static int check_extras(const struct check *c, struct cur *cur, const struct label *up,
                        const struct rule *rules, size_t n, unsigned level)
{
	for (size_t i = 0; i < n; i++) {
		struct val k, v;
		if (read_head(cur, &k) || k.type != V_STR || read_head(cur, &v))
			return fail_malformed(c, cur);
		if (v.type != V_NIL && !find_rule(rules, k.s, k.n)) {
			struct label l = {.up = up, .key = k.s, .len = k.n};
			const struct rule *base = NULL;
			if (k.n > 3 && memcmp(k.s + k.n - 3, "_en", 3) == 0)
				base = find_rule(rules, k.s, k.n - 3);
			int rc;
			if (base && (base->kind == TEXT || base->kind == LONG))
				rc = check_string(
				    c, &l, &v,
				    base->kind == TEXT ? SCHEMA_MAX_TEXT : SCHEMA_MAX_LONG, 0);
			else
				rc = check_extra(c, &l, &v);
			if (rc != 0)
				return rc;
		}
		if (skip_rest(cur, &v, level + 1))
			return fail_malformed(c, cur);
	}
	return 0;
}

/*
 * The fields of a located map: the table first, in its order, so errors
 * come in a stable order, then the fields it does not name. entries is the
 * map's first entry, n its entries, at and extra what locate found.
 */
static int check_located(const struct check *c, const struct cur *cur, const uint8_t *entries,
                         const struct label *up, const struct rule *rules, size_t n,
                         const struct slot slots[RULES_MAX], int extra, int creating,
                         unsigned level)
{
	for (size_t i = 0; rules[i].name; i++) {
		const struct rule *r = &rules[i];
		/* A rule's name is NUL-terminated and shorter than a key may be. */
		struct label l = {.up = up, .key = r->name, .len = LOKET_MAX_KEY_LEN};
		const struct slot *s = &slots[i];
		if (!s->p || s->v.type == V_NIL) {
			if (r->required && creating)
				return fail(c, LOKET_E_MALFORMED, &l, "is required");
			if (r->required && s->p)
				return fail(c, LOKET_E_MALFORMED, &l,
				            "is required and cannot be cleared");
			continue;
		}
		struct cur vc = {.start = cur->start, .p = s->p, .end = cur->end};
		int rc = check_value(c, &vc, &l, r, &s->v, level + 1);
		if (rc != 0)
			return rc;
	}
	if (!extra)
		return 0;
	struct cur ec = {.start = cur->start, .p = entries, .end = cur->end};
	return check_extras(c, &ec, up, rules, n, level);
}

/*
 * Checks a map of n entries at the cursor against rules and leaves the
 * cursor after it. up labels the map field, NULL for the fields themselves;
 * level is the map's nesting.
 */
static int check_map(const struct check *c, struct cur *cur, const struct label *up,
                     const struct rule *rules, size_t n, int creating, unsigned level)
{
	struct slot slots[RULES_MAX];
	const uint8_t *entries = cur->p;
	int extra;
	if (locate(cur, rules, n, level, slots, &extra))
		return fail_malformed(c, cur);
	return check_located(c, cur, entries, up, rules, n, slots, extra, creating, level);
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
	char known[256], q[ERROR_QUOTE_SIZE];
	join("", names, known, sizeof(known));
	snprintf(err, errlen, "unknown collection %s (known: %s)",
	         error_quote_str(q, sizeof(q), coll), known);
	return LOKET_E_MALFORMED;
}

int schema_check_fields(const char *coll, const uint8_t *fields, size_t len, int creating,
                        char *err, size_t errlen)
{
	const struct rule *rules = rules_of(coll);
	if (!rules)
		return schema_check_coll(coll, err, errlen);
	struct check c = {.coll = coll, .err = err, .errlen = errlen};
	char got[ERROR_QUOTE_SIZE];
	if (!fields || len == 0) {
		describe(NULL, got, sizeof(got));
		snprintf(err, errlen, "%s: fields must be a map (got %s)", coll, got);
		return LOKET_E_MALFORMED;
	}
	struct cur cur = {.start = fields, .p = fields, .end = fields + len};
	struct val v;
	if (read_head(&cur, &v))
		return fail_malformed(&c, &cur);
	if (v.type != V_MAP) {
		describe(&v, got, sizeof(got));
		snprintf(err, errlen, "%s: fields must be a map (got %s)", coll, got);
		return LOKET_E_MALFORMED;
	}
	/* Malformed bytes are reported before any rule, wherever they are. */
	struct slot slots[RULES_MAX];
	const uint8_t *entries = cur.p;
	int extra;
	if (locate(&cur, rules, v.n, 1, slots, &extra))
		return fail_malformed(&c, &cur);
	if (cur.p != cur.end) {
		bad(&cur, "bytes after the map");
		return fail_malformed(&c, &cur);
	}
	return check_located(&c, &cur, entries, NULL, rules, v.n, slots, extra, creating, 1);
}

/* Splits a reference and hands it to fn; 0 if it is not one, or what fn returned. */
static int each_ref_call(const char *field, const char *target, const struct val *v,
                         schema_ref_fn *fn, void *arg)
{
	char owner[LOKET_MAX_NAME_LEN + 1], id[LOKET_MAX_ID_LEN + 1];
	if (v->type != V_STR || !is_reference(v->s, v->n))
		return 0; /* schema_check_fields refuses it; nothing to look up */
	const char *slash = memchr(v->s, '/', v->n);
	size_t owner_len = (size_t)(slash - v->s);
	memcpy(owner, v->s, owner_len);
	owner[owner_len] = '\0';
	memcpy(id, slash + 1, v->n - owner_len - 1);
	id[v->n - owner_len - 1] = '\0';
	return fn(arg, field, target, owner, id);
}

/* Whether a collection's fields may refer to other entities. */
static int has_refs(const struct rule *rules)
{
	for (size_t i = 0; rules[i].name; i++)
		if (rules[i].kind == REF || rules[i].kind == REFS)
			return 1;
	return 0;
}

int schema_each_ref_in(const char *coll, const uint8_t *fields, size_t len, schema_ref_fn *fn,
                       void *arg)
{
	const struct rule *rules = rules_of(coll);
	if (!rules || !has_refs(rules) || !fields || len == 0)
		return 0;
	struct cur cur = {.start = fields, .p = fields, .end = fields + len};
	struct val v;
	struct slot slots[RULES_MAX];
	int extra;
	if (read_head(&cur, &v))
		return LOKET_E_MALFORMED;
	if (v.type != V_MAP)
		return 0;
	if (locate(&cur, rules, v.n, 1, slots, &extra) || cur.p != cur.end)
		return LOKET_E_MALFORMED;
	for (size_t i = 0; rules[i].name; i++) {
		const struct rule *r = &rules[i];
		if (!slots[i].p || (r->kind != REF && r->kind != REFS))
			continue;
		struct cur vc = {.start = fields, .p = slots[i].p, .end = cur.end};
		v = slots[i].v;
		if (r->kind == REF) {
			int rc = each_ref_call(r->name, r->target, &v, fn, arg);
			if (rc != 0)
				return rc;
			continue;
		}
		if (v.type != V_ARRAY)
			continue;
		size_t items = v.n;
		for (size_t k = 0; k < items; k++) {
			struct val x;
			if (read_head(&vc, &x) || skip_rest(&vc, &x, 3))
				return LOKET_E_MALFORMED;
			int rc = each_ref_call(r->name, r->target, &x, fn, arg);
			if (rc != 0)
				return rc;
		}
	}
	return 0;
}
