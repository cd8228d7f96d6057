/*
 * export: the lines of an export (common/export.h). Keys come in the order
 * of import's docs (coll, id, fields), and the fields in the order the
 * node gave them (the canonical order of the changeset encoding), so an
 * export of the same state is the same bytes every time.
 */
#include "common/export.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

json_t *export_page_request(const char *coll, const char *owner, const char *after)
{
	json_t *req =
	    json_pack("{s:s, s:s, s:i}", "cmd", "page", "coll", coll, "limit", EXPORT_PAGE);

	if (!req)
		abort();
	if (owner)
		json_object_set_new(req, "owner", json_string(owner));
	if (after)
		json_object_set_new(req, "after", json_string(after));
	return req;
}

char *export_line(const json_t *entity, size_t *len, char *err, size_t errlen)
{
	json_t *coll = json_object_get(entity, "coll"), *id = json_object_get(entity, "id");
	json_t *fields = json_object_get(entity, "fields");

	*len = 0;
	if (!json_is_string(coll) || !json_is_string(id) || !json_is_object(fields)) {
		snprintf(err, errlen, "an entity of the page lacks its coll, id or fields");
		return NULL;
	}
	json_t *op = json_pack("{s:O, s:O, s:O}", "coll", coll, "id", id, "fields", fields);
	if (!op)
		abort();
	char *text = json_dumps(op, JSON_COMPACT | JSON_PRESERVE_ORDER);
	json_decref(op);
	if (!text)
		abort();
	size_t n = strlen(text);
	char *line = realloc(text, n + 2);
	if (!line)
		abort();
	line[n] = '\n';
	line[n + 1] = '\0';
	*len = n + 1;
	return line;
}
