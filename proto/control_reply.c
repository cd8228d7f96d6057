/*
 * control_reply: a control reply read back by a client
 * (proto/control_reply.h).
 */
#include "proto/control_reply.h"

#include <stdio.h>

#include "proto/error.h"

int control_reply_take(const json_t *reply, json_t **result, long *index, char *err, size_t errlen)
{
	const json_t *ok = json_object_get(reply, "ok");
	const json_t *v;

	if (json_is_true(ok)) {
		*result = json_incref(json_object_get(reply, "result"));
		if (!*result)
			*result = json_null();
		return 0;
	}
	if (!json_is_false(ok)) {
		snprintf(err, errlen, "malformed reply from loketd: no \"ok\"");
		return LOKET_E_MALFORMED;
	}
	v = json_object_get(reply, "error");
	snprintf(err, errlen, "%s", json_is_string(v) ? json_string_value(v) : "request failed");
	v = json_object_get(reply, "index");
	if (index && json_is_integer(v))
		*index = (long)json_integer_value(v);
	v = json_object_get(reply, "code");
	/* Negative errno values and LOKET_E_* codes; anything else is not a code. */
	if (json_is_integer(v) && json_integer_value(v) < 0 && json_integer_value(v) > -100000)
		return (int)json_integer_value(v);
	return LOKET_E_BAD_REQUEST;
}
