/*
 * board: the question board as one node holds it, read from the store:
 * questions of every owner with their responses counted.
 */
#ifndef LOKET_DESK_BOARD_H
#define LOKET_DESK_BOARD_H

#include <jansson.h>

#include "store/store.h"

/*
 * The question board: questions of every owner, newest first (by hlc), as
 * {"ref","owner","id","title","status","kind","topics","asker","deadline",
 *  "responses","accepted","hlc"}: ref is "OWNER/ID", a missing status reads
 * "open", asker is the asker's name, fields of another type read null.
 * "responses" counts the responses (not withdrawn) whose "question" is ref,
 * joined at read time, so a response that arrived before its question counts
 * once the question is there; "accepted" is the length of the question's
 * accepted[]. status, topic (case-insensitive for ASCII) and kind filter
 * when not NULL; limit <= 0 means no limit.
 */
int board_list(struct store *s, const char *status, const char *topic, const char *kind, long limit,
               json_t **out);

#endif
