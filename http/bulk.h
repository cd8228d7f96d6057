/*
 * bulk: POST /v1/bulk, a JSON Lines body of ops in the format `loket
 * import` reads (one {"coll","id","fields":{...}} or {"coll","id",
 * "del":true} a line), applied through "put" requests of at most 8000 ops
 * or 1.75 MiB while the body streams in: memory stays at one line (at most
 * 1 MiB) and one batch, whatever the body's size.
 *
 * The report is exact, as import's is: a bad line is reported only after
 * every valid line before it has been applied, a batch the daemon refuses
 * was applied not at all (a put is atomic) and the error names the line of
 * the op it refused, and only one batch is in flight, so "applied_through"
 * L means lines 1..L were applied and nothing after them. When loketd
 * stops answering, the lines of the batch in flight may or may not have
 * been applied, and "uncertain" names them. Sending the body again after a
 * fix completes the rest: ops that change nothing write nothing.
 */
#ifndef LOKET_HTTP_BULK_H
#define LOKET_HTTP_BULK_H

#include <stddef.h>

#include <jansson.h>

#include "http/bell.h"
#include "http/ctl.h"
#include "http/tokens.h"

struct bulk;

/* A bulk write through pool with grant's scope; each batch that changed something rings bell. */
struct bulk *bulk_new(struct ctl_pool *pool, struct bell *bell, const struct token_grant *grant);
void bulk_free(struct bulk *b);

/* Takes the next part of the body; after a failure the rest is read and ignored. */
void bulk_feed(struct bulk *b, const char *data, size_t len);

/*
 * At the end of the body: sends what is left and returns the report (a new
 * reference) and its HTTP status: 200 and {"lines","applied_through",
 * "changed","unchanged","changesets"}, or the status of the error and the
 * same members with "error":{"code","name","message","line"} (line 0 for a
 * failure of no one line), "report" (a sentence like import's) and, when
 * loketd did not answer, "uncertain":[FIRST,LAST].
 */
json_t *bulk_finish(struct bulk *b, unsigned *status);

#endif
