/*
 * op_check: the checks a client makes on an op before loketd sees it, in
 * the JSON form `loket put`, `loket import` and loket-http's bulk writes
 * take: {"coll","id","fields"} or {"coll","id","del":true}. The CLI and
 * loket-http share them, so a partner gets the same sentence over HTTP as
 * from the command line. loketd checks everything again.
 */
#ifndef LOKET_OP_CHECK_H
#define LOKET_OP_CHECK_H

#include <stddef.h>

#include <jansson.h>

/* A collection name and an entity id; -EINVAL with a sentence quoting it. */
int op_check_coll(const char *coll, char *err, size_t errlen);
int op_check_id(const char *id, char *err, size_t errlen);
/* A fields object: 1..LOKET_MAX_FIELDS names of 1..LOKET_MAX_KEY_LEN bytes. */
int op_check_fields(const json_t *fields, char *err, size_t errlen);
/* An op {"coll","id","fields"} or {"coll","id","del":true} and nothing else. */
int op_check(const json_t *op, char *err, size_t errlen);

#endif
