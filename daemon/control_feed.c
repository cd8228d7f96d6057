/*
 * control_feed: serves "page" and "changes" on the control socket. The
 * request's members are checked here; the store checks the cursors and
 * says in its sentence why one does not resume (a malformed one, or one
 * from before a rebuild: LOKET_E_GONE).
 */
#include "daemon/control_feed.h"

#include <stdio.h>
#include <string.h>

#include "daemon/control.h"
#include "daemon/node.h"
#include "proto/changeset.h"
#include "proto/error.h"

#define FEED_DEFAULT_LIMIT 100
#define FEED_MAX_LIMIT     1000

static int feed_limit(const json_t *req, long *out, char *err, size_t errlen)
{
	const json_t *v = json_object_get(req, "limit");

	*out = FEED_DEFAULT_LIMIT;
	if (!v || json_is_null(v))
		return 0;
	if (!json_is_integer(v) || json_integer_value(v) < 1 ||
	    json_integer_value(v) > FEED_MAX_LIMIT) {
		snprintf(err, errlen, "\"limit\" must be an integer from 1 to %d", FEED_MAX_LIMIT);
		return LOKET_E_BAD_REQUEST;
	}
	*out = (long)json_integer_value(v);
	return 0;
}

static int check_coll(const char *coll, char *err, size_t errlen)
{
	char q[ERROR_QUOTE_SIZE];

	if (coll && !changeset_valid_coll(coll, strlen(coll))) {
		snprintf(err, errlen, "invalid collection %s", error_quote_str(q, sizeof(q), coll));
		return LOKET_E_BAD_REQUEST;
	}
	return 0;
}

static int feed_failed(struct node *n, int rc, char *err, size_t errlen)
{
	if (rc == LOKET_E_NOT_FOUND || rc == LOKET_E_MALFORMED || rc == LOKET_E_GONE) {
		snprintf(err, errlen, "%s", store_errmsg(n->store));
		return rc == LOKET_E_MALFORMED ? LOKET_E_BAD_REQUEST : rc;
	}
	snprintf(err, errlen, "store: %s (%s)", loket_strerror(rc), store_errmsg(n->store));
	return rc;
}

int control_page(void *data, const json_t *req, json_t **result, char *err, size_t errlen)
{
	struct node *n = data;
	const char *coll, *owner, *after;
	long limit;
	int rc = control_get_string(req, "coll", 1, &coll, err, errlen);

	if (rc == 0)
		rc = check_coll(coll, err, errlen);
	if (rc == 0)
		rc = control_get_string(req, "owner", 0, &owner, err, errlen);
	if (rc == 0)
		rc = control_get_string(req, "after", 0, &after, err, errlen);
	if (rc == 0)
		rc = feed_limit(req, &limit, err, errlen);
	if (rc != 0)
		return rc;
	rc = store_page(n->store, coll, owner, after, limit, result);
	return rc ? feed_failed(n, rc, err, errlen) : 0;
}

int control_changes(void *data, const json_t *req, json_t **result, char *err, size_t errlen)
{
	struct node *n = data;
	const char *since, *coll, *owner;
	long limit;
	int rc = control_get_string(req, "since", 0, &since, err, errlen);

	if (rc == 0)
		rc = control_get_string(req, "coll", 0, &coll, err, errlen);
	if (rc == 0)
		rc = check_coll(coll, err, errlen);
	if (rc == 0)
		rc = control_get_string(req, "owner", 0, &owner, err, errlen);
	if (rc == 0)
		rc = feed_limit(req, &limit, err, errlen);
	if (rc != 0)
		return rc;
	rc = store_changes(n->store, since, coll, owner, limit, result);
	return rc ? feed_failed(n, rc, err, errlen) : 0;
}
