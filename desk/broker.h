/*
 * broker: ranks the experts, resources and projects of every owner for a
 * question on the board, by shared topics and the question's words.
 */
#ifndef LOKET_DESK_BROKER_H
#define LOKET_DESK_BROKER_H

#include <jansson.h>

#include "store/store.h"

/*
 * broker_match: the experts, resources and projects of every owner ranked
 * for the question OWNER/ID, best first:
 * [{"coll","owner","id","name","score","shared_topics":[...],
 *   "matched_terms":[...]}]. LOKET_E_NOT_FOUND if the question is not held.
 */
int broker_match(struct store *s, const char *owner, const char *id, long limit, json_t **out);

#endif
