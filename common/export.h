/*
 * export: the lines of an export, shared by `loket export` and loket-http's
 * list in application/x-ndjson, so that both write the same bytes. An
 * export is JSON Lines in the format `loket import` reads: one put op per
 * live entity, {"coll":C,"id":I,"fields":{...}}, compact, in the order of
 * the control command "page" ((id, owner) within a collection), read
 * EXPORT_PAGE entities at a time, so that memory stays that of one page
 * whatever the collection's size. The owner and the entity's seq and hlc
 * are not in a line: importing it makes the entity the importing node's
 * own, as every import does.
 */
#ifndef LOKET_EXPORT_H
#define LOKET_EXPORT_H

#include <stddef.h>

#include <jansson.h>

#define EXPORT_PAGE 1000 /* entities a page request asks for (the most "page" gives) */

/* {"cmd":"page","coll":coll,"limit":EXPORT_PAGE}, with "owner" and "after" when not NULL. */
json_t *export_page_request(const char *coll, const char *owner, const char *after);

/*
 * The line of one entity of a page, with its newline, in a new string
 * (*len its length; free it). NULL, with a sentence in err, if the entity
 * lacks its coll, id or fields object.
 */
char *export_line(const json_t *entity, size_t *len, char *err, size_t errlen);

#endif
