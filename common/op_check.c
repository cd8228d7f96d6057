/*
 * op_check: the op checks of the clients (common/op_check.h).
 */
#include "common/op_check.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "proto/changeset.h"
#include "proto/error.h"
#include "proto/limits.h"

int op_check_coll(const char *coll, char *err, size_t errlen)
{
	char q[ERROR_QUOTE_SIZE];

	if (!changeset_valid_coll(coll, strlen(coll))) {
		snprintf(err, errlen,
		         "invalid collection %s (use a-z first, then a-z, 0-9 and '_', "
		         "at most %u bytes)",
		         error_quote_str(q, sizeof(q), coll), LOKET_MAX_COLL_LEN);
		return -EINVAL;
	}
	return 0;
}

int op_check_id(const char *id, char *err, size_t errlen)
{
	char q[ERROR_QUOTE_SIZE];

	if (!changeset_valid_id(id, strlen(id))) {
		snprintf(err, errlen,
		         "invalid id %s (use A-Z, a-z, 0-9 and '.', '_', ':', '@', '-', "
		         "at most %u bytes)",
		         error_quote_str(q, sizeof(q), id), LOKET_MAX_ID_LEN);
		return -EINVAL;
	}
	return 0;
}

int op_check_fields(const json_t *fields, char *err, size_t errlen)
{
	const char *key;
	json_t *v;
	char q[ERROR_QUOTE_SIZE];

	if (!json_is_object(fields)) {
		snprintf(err, errlen, "fields must be a JSON object, like {\"name\":\"...\"}");
		return -EINVAL;
	}
	if (json_object_size(fields) == 0) {
		snprintf(err, errlen, "fields object is empty: give at least one field");
		return -EINVAL;
	}
	if (json_object_size(fields) > LOKET_MAX_FIELDS) {
		snprintf(err, errlen, "%zu fields, more than the %u allowed",
		         json_object_size(fields), LOKET_MAX_FIELDS);
		return -EINVAL;
	}
	json_object_foreach((json_t *)fields, key, v)
	{
		size_t len = strlen(key);
		if (len == 0 || len > LOKET_MAX_KEY_LEN) {
			snprintf(err, errlen, "field name %s must be 1 to %u bytes",
			         error_quote(q, sizeof(q), key, len), LOKET_MAX_KEY_LEN);
			return -EINVAL;
		}
	}
	return 0;
}

int op_check(const json_t *op, char *err, size_t errlen)
{
	const char *key;
	json_t *v, *coll, *id, *fields, *del;
	char q[ERROR_QUOTE_SIZE];
	int rc;

	if (!json_is_object(op)) {
		snprintf(err, errlen,
		         "expected an object {\"coll\",\"id\",\"fields\"} or "
		         "{\"coll\",\"id\",\"del\":true}");
		return -EINVAL;
	}
	json_object_foreach((json_t *)op, key, v)
	{
		if (strcmp(key, "coll") != 0 && strcmp(key, "id") != 0 &&
		    strcmp(key, "fields") != 0 && strcmp(key, "del") != 0) {
			snprintf(err, errlen,
			         "unknown key %s (an op has \"coll\", \"id\" and "
			         "\"fields\" or \"del\")",
			         error_quote_str(q, sizeof(q), key));
			return -EINVAL;
		}
	}
	coll = json_object_get(op, "coll");
	id = json_object_get(op, "id");
	fields = json_object_get(op, "fields");
	del = json_object_get(op, "del");
	if (!json_is_string(coll)) {
		snprintf(err, errlen, "%s",
		         coll ? "\"coll\" must be a string" : "missing \"coll\"");
		return -EINVAL;
	}
	if (!json_is_string(id)) {
		snprintf(err, errlen, "%s", id ? "\"id\" must be a string" : "missing \"id\"");
		return -EINVAL;
	}
	if ((rc = op_check_coll(json_string_value(coll), err, errlen)) < 0 ||
	    (rc = op_check_id(json_string_value(id), err, errlen)) < 0)
		return rc;
	if (fields && del) {
		snprintf(err, errlen, "an op has either \"fields\" or \"del\", not both");
		return -EINVAL;
	}
	if (!fields && !del) {
		snprintf(err, errlen, "missing \"fields\" (or \"del\":true)");
		return -EINVAL;
	}
	if (del && !json_is_true(del)) {
		snprintf(err, errlen, "\"del\" must be true");
		return -EINVAL;
	}
	return fields ? op_check_fields(fields, err, errlen) : 0;
}
