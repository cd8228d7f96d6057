/*
 * control_feed: the control commands "page" and "changes" (proto/CONTROL.md),
 * with which a client outside the node (loket-http, loket changes) pages
 * through a collection and follows the change feed by cursors that the
 * store makes (store_page, store_changes in store/store.h).
 */
#ifndef LOKET_CONTROL_FEED_H
#define LOKET_CONTROL_FEED_H

#include <stddef.h>

#include <jansson.h>

/*
 * Control handlers (daemon/control.h) with data a struct node.
 * page:    {"coll","owner"?,"after"?,"limit"? (1..1000, default 100)}
 * changes: {"since"?,"coll"?,"owner"?,"limit"? (1..1000, default 100)}
 */
int control_page(void *data, const json_t *req, json_t **result, char *err, size_t errlen);
int control_changes(void *data, const json_t *req, json_t **result, char *err, size_t errlen);

#endif
