/*
 * control_board: serves "board" on the control socket. The filters are
 * checked here, before the store sees them, so that a typo in a status
 * gives a sentence naming what is allowed instead of an empty board.
 */
#include "daemon/control_board.h"

#include <stdio.h>
#include <string.h>

#include "daemon/control.h"
#include "daemon/node.h"
#include "desk/board.h"
#include "proto/error.h"

#define BOARD_DEFAULT_LIMIT 100

/* The values of the question schema (desk/schema.c), for the filters. */
static const char *const board_states[] = {"open",   "matched",   "in_progress", "answered",
                                           "closed", "withdrawn", NULL};
static const char *const board_kinds[] = {"research", "thesis",       "internship", "contest",
                                          "pitch",    "science-shop", "advice",     NULL};

/* value, when given, must be one of values; the error lists them. */
static int board_enum(const char *what, const char *value, const char *const *values, char *err,
                      size_t errlen)
{
	size_t n = 0;
	char q[ERROR_QUOTE_SIZE];

	if (!value)
		return 0;
	for (size_t i = 0; values[i]; i++)
		if (strcmp(values[i], value) == 0)
			return 0;
	int len = snprintf(err, errlen, "unknown %s %s: use one of ", what,
	                   error_quote_str(q, sizeof(q), value));
	if (len > 0)
		n = (size_t)len;
	for (size_t i = 0; values[i] && n < errlen; i++) {
		len = snprintf(err + n, errlen - n, "%s%s", i ? ", " : "", values[i]);
		if (len < 0)
			break;
		n += (size_t)len;
	}
	return LOKET_E_BAD_REQUEST;
}

int control_board(void *data, const json_t *req, json_t **result, char *err, size_t errlen)
{
	struct node *n = data;
	const char *status, *topic, *kind;
	const json_t *lim = json_object_get(req, "limit");
	long limit = BOARD_DEFAULT_LIMIT;
	int rc = control_get_string(req, "status", 0, &status, err, errlen);

	if (rc == 0)
		rc = control_get_string(req, "topic", 0, &topic, err, errlen);
	if (rc == 0)
		rc = control_get_string(req, "kind", 0, &kind, err, errlen);
	if (rc == 0)
		rc = board_enum("status", status, board_states, err, errlen);
	if (rc == 0)
		rc = board_enum("kind", kind, board_kinds, err, errlen);
	if (rc != 0)
		return rc;
	if (lim && !json_is_null(lim)) {
		if (!json_is_integer(lim) || json_integer_value(lim) < 1 ||
		    json_integer_value(lim) > 100000) {
			snprintf(err, errlen, "\"limit\" must be an integer from 1 to 100000");
			return LOKET_E_BAD_REQUEST;
		}
		limit = (long)json_integer_value(lim);
	}
	rc = board_list(n->store, status, topic, kind, limit, result);
	if (rc != 0)
		snprintf(err, errlen, "store: %s (%s)", loket_strerror(rc), store_errmsg(n->store));
	return rc;
}
