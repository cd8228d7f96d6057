/*
 * directory: the knowledge directory as people read it: one entity with its links
 * followed (directory_show) and the experts of every institution filtered by
 * topic and organisation (directory_experts). Links are the references
 * "OWNER/ID" the collections carry (an expert's, resource's or project's
 * org, a project's partners, a response's question, a question's accepted
 * responses) and the ones pointing back (a question's responses, an org's
 * experts, resources and projects). A reference this node cannot resolve
 * (an unknown member, an entity not held, or plain text such as an org
 * written as a name) is shown as the string it is. Nothing here writes.
 */
#include "desk/directory.h"

#include <stdlib.h>
#include <string.h>

#include "desk/text.h"
#include "proto/error.h"
#include "proto/limits.h"
#include "store/store_sql.h"

/* At most this many back links of one kind (a question's responses, an org's experts). */
#define BACKLINKS_MAX 1000

static int prepare(struct store *s, const char *sql, sqlite3_stmt **st)
{
	if (sqlite3_prepare_v2(store_sql_db(s), sql, -1, st, NULL) != SQLITE_OK)
		return store_sqlite_fail(s, "cannot prepare query");
	return 0;
}

/* The live entity (coll, key, id) into *out, or *out NULL if not held. */
static int fetch(struct store *s, const char *coll, const uint8_t key[32], const char *id,
                 size_t id_len, json_t **out)
{
	sqlite3_stmt *st = NULL;
	int rc, step;

	*out = NULL;
	if ((rc = prepare(s,
	                  "SELECT " ENTITY_COLS " FROM entity e"
	                  " WHERE e.coll = ?1 AND e.owner = ?2 AND e.id = ?3 AND e.deleted = 0",
	                  &st)) < 0)
		return rc;
	sqlite3_bind_text(st, 1, coll, -1, SQLITE_STATIC);
	sqlite3_bind_blob(st, 2, key, 32, SQLITE_STATIC);
	sqlite3_bind_text(st, 3, id, (int)id_len, SQLITE_STATIC);
	step = sqlite3_step(st);
	if (step == SQLITE_ROW)
		*out = store_entity_json(s, st);
	else if (step != SQLITE_DONE)
		rc = store_sqlite_fail(s, "cannot read entity");
	sqlite3_finalize(st);
	return rc;
}

/*
 * Resolves a reference value to coll: the entity "OWNER/ID" names if this
 * node holds it, else a copy of the value as it is.
 */
static int resolve_ref(struct store *s, const char *coll, const json_t *ref, json_t **out)
{
	const char *r = json_string_value(ref), *slash;
	char name[LOKET_MAX_NAME_LEN + 1];
	uint8_t key[32];
	int rc;

	*out = NULL;
	slash = r ? strchr(r, '/') : NULL;
	if (slash && slash > r && slash[1] && (size_t)(slash - r) <= LOKET_MAX_NAME_LEN) {
		memcpy(name, r, (size_t)(slash - r));
		name[slash - r] = '\0';
		rc = store_member_key(s, name, key);
		if (rc < 0 && rc != LOKET_E_NOT_FOUND)
			return rc;
		if (rc == 0 && (rc = fetch(s, coll, key, slash + 1, strlen(slash + 1), out)) < 0)
			return rc;
	}
	if (!*out)
		*out = json_deep_copy(ref);
	return 0;
}

/* Resolves every element of an array of references; a non-array gives NULL. */
static int resolve_refs(struct store *s, const char *coll, const json_t *refs, json_t **out)
{
	json_t *arr, *v, *r;
	size_t i;
	int rc;

	*out = NULL;
	if (!json_is_array(refs))
		return 0;
	arr = json_array();
	json_array_foreach(refs, i, v)
	{
		if ((rc = resolve_ref(s, coll, v, &r)) < 0) {
			json_decref(arr);
			return rc;
		}
		json_array_append_new(arr, r);
	}
	*out = arr;
	return 0;
}

/* Steps st, appending one entity per row to a new array. */
static int collect(struct store *s, sqlite3_stmt *st, json_t **out)
{
	json_t *arr = json_array();
	int step;

	while ((step = sqlite3_step(st)) == SQLITE_ROW)
		json_array_append_new(arr, store_entity_json(s, st));
	if (step != SQLITE_DONE) {
		json_decref(arr);
		return store_sqlite_fail(s, "cannot read entities");
	}
	*out = arr;
	return 0;
}

/*
 * The live entities of coll that refer to ref: by the field at path
 * (json_extract) or, when array_path is given, by an element of that array.
 */
static int referring(struct store *s, const char *coll, const char *path, const char *array_path,
                     const char *ref, json_t **out)
{
	sqlite3_stmt *st = NULL;
	int rc;

	*out = NULL;
	rc = prepare(s,
	             "SELECT " ENTITY_COLS " FROM entity e"
	             " WHERE e.coll = ?1 AND e.deleted = 0 AND (json_extract(e.fields, ?2) = ?4"
	             "  OR (?3 IS NOT NULL AND EXISTS (SELECT 1 FROM json_each(e.fields, ?3) j"
	             "   WHERE j.value = ?4)))"
	             " ORDER BY e.hlc, e.id LIMIT ?5",
	             &st);
	if (rc < 0)
		return rc;
	sqlite3_bind_text(st, 1, coll, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, path, -1, SQLITE_STATIC);
	if (array_path)
		sqlite3_bind_text(st, 3, array_path, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 4, ref, -1, SQLITE_STATIC);
	sqlite3_bind_int(st, 5, BACKLINKS_MAX);
	rc = collect(s, st, out);
	sqlite3_finalize(st);
	return rc;
}

/* Sets links[key] to v (taken), unless v is NULL. */
static void link_set(json_t *links, const char *key, json_t *v)
{
	if (v)
		json_object_set_new(links, key, v);
}

/* The links of entity e (coll, its fields, and ref = its own "OWNER/ID"). */
static int follow(struct store *s, const char *coll, const json_t *fields, const char *ref,
                  json_t *links)
{
	json_t *v = NULL;
	int rc = 0;

	if (!strcmp(coll, "expert") || !strcmp(coll, "resource") || !strcmp(coll, "project")) {
		const json_t *org = json_object_get(fields, "org");

		if (org && !json_is_null(org) && (rc = resolve_ref(s, "org", org, &v)) < 0)
			return rc;
		link_set(links, "org", v);
	}
	if (!strcmp(coll, "project")) {
		if ((rc = resolve_refs(s, "org", json_object_get(fields, "partners"), &v)) < 0)
			return rc;
		link_set(links, "partners", v);
	} else if (!strcmp(coll, "question")) {
		if ((rc = referring(s, "response", "$.question", NULL, ref, &v)) < 0)
			return rc;
		link_set(links, "responses", v);
		if ((rc = resolve_refs(s, "response", json_object_get(fields, "accepted"), &v)) < 0)
			return rc;
		link_set(links, "accepted", v);
	} else if (!strcmp(coll, "response")) {
		const json_t *q = json_object_get(fields, "question");

		if (q && (rc = resolve_ref(s, "question", q, &v)) < 0)
			return rc;
		link_set(links, "question", v);
	} else if (!strcmp(coll, "org")) {
		if ((rc = referring(s, "expert", "$.org", NULL, ref, &v)) < 0)
			return rc;
		link_set(links, "experts", v);
		if ((rc = referring(s, "resource", "$.org", NULL, ref, &v)) < 0)
			return rc;
		link_set(links, "resources", v);
		if ((rc = referring(s, "project", "$.org", "$.partners", ref, &v)) < 0)
			return rc;
		link_set(links, "projects", v);
	}
	return 0;
}

int directory_show(struct store *s, const char *coll, const char *owner, const char *id,
                   json_t **out)
{
	json_t *e = NULL, *links = NULL, *name = NULL;
	uint8_t key[32];
	char ref[LOKET_MAX_NAME_LEN + LOKET_MAX_ID_LEN + 64], q[ERROR_QUOTE_SIZE];
	int rc, n;

	*out = NULL;
	store_clear_error(s);
	rc = store_resolve_key(s, owner, key);
	if (rc == LOKET_E_NOT_FOUND)
		store_set_error(s, "no member named %s and not a base64 key",
		                error_quote_str(q, sizeof(q), owner));
	if (rc < 0)
		return rc;
	if ((rc = fetch(s, coll, key, id, strlen(id), &e)) < 0)
		return rc;
	if (!e) {
		store_set_error(s, "%s not found",
		                error_quotef(q, sizeof(q), "%s/%s/%s", coll, owner, id));
		return LOKET_E_NOT_FOUND;
	}
	/* The form other entities use to refer to this one: the owner's member name. */
	name = store_owner_json(s, key);
	n = snprintf(ref, sizeof(ref), "%s/%s", json_string_value(name), id);
	json_decref(name);
	if (n < 0 || (size_t)n >= sizeof(ref)) {
		store_set_error(s, "reference of %s is too long",
		                error_quote_str(q, sizeof(q), id));
		rc = LOKET_E_TOO_BIG;
		goto cleanup;
	}
	links = json_object();
	if ((rc = follow(s, coll, json_object_get(e, "fields"), ref, links)) < 0)
		goto cleanup;
	json_object_set_new(e, "links", links);
	links = NULL;
	*out = e;
	e = NULL;
cleanup:
	json_decref(links);
	json_decref(e);
	return rc;
}

/*
 * Whether an expert's org field matches what the user gave: the value
 * itself, its OWNER or ID part, or the name of the org it refers to, all
 * compared folded (case and diacritics ignored). resolved is the org
 * entity (or the value) from resolve_ref.
 */
static int org_matches(const json_t *org, const json_t *resolved, const char *want)
{
	const char *v = json_string_value(org), *slash, *name;
	char part[LOKET_MAX_NAME_LEN + LOKET_MAX_ID_LEN + 2];
	size_t k;

	if (!v)
		return 0;
	if (text_equal(v, want))
		return 1;
	slash = strchr(v, '/');
	if (slash && (k = (size_t)(slash - v)) < sizeof(part)) {
		memcpy(part, v, k);
		part[k] = '\0';
		if (text_equal(part, want) || text_equal(slash + 1, want))
			return 1;
	}
	name = json_string_value(json_object_get(json_object_get(resolved, "fields"), "name"));
	return name && text_equal(name, want);
}

static int has_topic(const json_t *fields, const char *want)
{
	const json_t *topics = json_object_get(fields, "topics"), *t;
	size_t i;

	json_array_foreach(topics, i, t)
	{
		if (json_is_string(t) && text_equal(json_string_value(t), want))
			return 1;
	}
	return 0;
}

int directory_experts(struct store *s, const char *topic, const char *org, long limit, json_t **out)
{
	sqlite3_stmt *st = NULL;
	json_t *arr = json_array(), *e = NULL, *resolved = NULL;
	int rc, step;

	*out = NULL;
	store_clear_error(s);
	if ((rc = prepare(s,
	                  "SELECT " ENTITY_COLS " FROM entity e"
	                  " LEFT JOIN member m ON m.key = e.owner"
	                  " WHERE e.coll = 'expert' AND e.deleted = 0"
	                  " ORDER BY m.name IS NULL, m.name, e.owner,"
	                  "  lower(json_extract(e.fields, '$.name')), e.id",
	                  &st)) < 0)
		goto cleanup;
	while ((step = sqlite3_step(st)) == SQLITE_ROW) {
		const json_t *fields, *org_field;
		const char *org_name;

		if (limit > 0 && (long)json_array_size(arr) >= limit)
			break;
		e = store_entity_json(s, st);
		fields = json_object_get(e, "fields");
		org_field = json_object_get(fields, "org");
		if (topic && !has_topic(fields, topic)) {
			json_decref(e);
			e = NULL;
			continue;
		}
		if (json_is_string(org_field) &&
		    (rc = resolve_ref(s, "org", org_field, &resolved)) < 0)
			goto cleanup;
		if (org && !org_matches(org_field, resolved, org)) {
			json_decref(e);
			json_decref(resolved);
			e = resolved = NULL;
			continue;
		}
		/* The org as people name it, for the listing. */
		org_name =
		    json_string_value(json_object_get(json_object_get(resolved, "fields"), "name"));
		if (!org_name)
			org_name = json_string_value(org_field);
		if (org_name)
			json_object_set_new(e, "org_name", json_string(org_name));
		json_array_append_new(arr, e);
		json_decref(resolved);
		e = resolved = NULL;
	}
	if (step != SQLITE_ROW && step != SQLITE_DONE) {
		rc = store_sqlite_fail(s, "cannot read experts");
		goto cleanup;
	}
	*out = arr;
	arr = NULL;
cleanup:
	sqlite3_finalize(st);
	json_decref(e);
	json_decref(resolved);
	json_decref(arr);
	return rc;
}
