/*
 * ops: the checks loket-http makes on what a partner writes before loketd
 * sees it, the same as the CLI's (cli/cli.c, cli_check_*), so that a
 * partner gets the same sentence over HTTP as from `loket put` and `loket
 * import`. They are copies, not shared code: cli/ is another program's
 * part (a move of both to common/ is proposed in the merge report).
 */
#ifndef LOKET_HTTP_OPS_H
#define LOKET_HTTP_OPS_H

#include <stddef.h>

#include <jansson.h>

/* A collection name and an entity id; -EINVAL with a sentence quoting it. */
int ops_check_coll(const char *coll, char *err, size_t errlen);
int ops_check_id(const char *id, char *err, size_t errlen);
/* A fields object: 1..LOKET_MAX_FIELDS names of 1..LOKET_MAX_KEY_LEN bytes. */
int ops_check_fields(const json_t *fields, char *err, size_t errlen);
/* An op {"coll","id","fields"} or {"coll","id","del":true} and nothing else. */
int ops_check(const json_t *op, char *err, size_t errlen);

#endif
