/*
 * directory: the knowledge directory read from the store: one entity with
 * its links followed, and the experts found by topic and organisation.
 */
#ifndef LOKET_DESK_DIRECTORY_H
#define LOKET_DESK_DIRECTORY_H

#include <jansson.h>

#include "store/store.h"

/*
 * directory_show: the live entity
 * COLL/OWNER/ID (owner a member name or base64 key) with its links
 * followed, {entity..., "links":{...}}: "org" of an expert, resource or
 * project, "partners" of a project, "responses" (every response whose
 * question is this one) and "accepted" of a question, "question" of a
 * response, "experts", "resources" and "projects" of an org. A reference
 * resolves to the entity it names when held, else stays the string it is.
 * LOKET_E_NOT_FOUND if the entity is not held.
 * directory_experts: the experts of every owner, by owner and name, each with
 * "org_name"; topic matches an element of topics[], org the org field, its
 * OWNER or ID part or the referred org's name, both ignoring case and
 * diacritics; either may be NULL.
 */
int directory_show(struct store *s, const char *coll, const char *owner, const char *id,
                   json_t **out);
int directory_experts(struct store *s, const char *topic, const char *org, long limit,
                      json_t **out);

#endif
