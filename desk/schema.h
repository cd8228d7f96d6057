/*
 * schema: the rules a local write must follow before this node signs it.
 * Each collection of the knowledge directory and the question board (org,
 * expert, resource, project, question, response) has one table of field
 * rules: required fields, types, enumerations, sizes, dates and references
 * of the form OWNER/ID. Fields the table does not name are kept and only
 * held to generic limits, and every text field may carry an English twin
 * "<field>_en". Changesets arriving from peers are not checked here: a newer
 * node may know fields an older one does not.
 */
#ifndef LOKET_SCHEMA_H
#define LOKET_SCHEMA_H

#include <stddef.h>
#include <stdint.h>

#define SCHEMA_MAX_TEXT  (8u * 1024u)  /* bytes of a short text field (name, title) */
#define SCHEMA_MAX_LONG  (64u * 1024u) /* bytes of body, description, text, outcome */
#define SCHEMA_MAX_ITEMS 64u           /* items of an array field */

/*
 * Checks that coll is a known collection. Returns 0, or LOKET_E_MALFORMED
 * with a sentence in err that lists the known collections.
 */
int schema_check_coll(const char *coll, char *err, size_t errlen);

/*
 * Checks the fields of one put op on coll: fields/len is exactly one msgpack
 * map (an op's fields, which passed value_check with VALUE_CANONICAL; no
 * bytes may follow it). A nil value clears a field. creating is 1 when the
 * entity does not exist yet: then every required field must be present and
 * not nil. On an update (creating 0) only the given fields are checked, and
 * a required field may not be cleared. Reads nothing past len and allocates
 * nothing. Returns 0, or LOKET_E_MALFORMED (LOKET_E_TOO_BIG for sizes) with
 * a sentence in err naming the collection, the field and what was expected;
 * bytes that are not one well-formed map (truncated, bin, ext, a key that is
 * not a string, a field given twice) are LOKET_E_MALFORMED with
 * "COLL: fields are malformed msgpack (...)".
 */
int schema_check_fields(const char *coll, const uint8_t *fields, size_t len, int creating,
                        char *err, size_t errlen);

/*
 * Told of one reference OWNER/ID in a put's fields: the field, the
 * collection it refers to, and the owner's name and the id, split.
 * Returning non-zero stops the walk.
 */
typedef int schema_ref_fn(void *arg, const char *field, const char *coll, const char *owner,
                          const char *id);

/*
 * Calls fn for every well-formed reference in fields (a response's
 * "question", a question's "accepted" responses), in table order, so the
 * node can refuse a local write that refers to an entity it does not hold.
 * fields/len is as for schema_check_fields, which the node calls first.
 * Returns 0, or the first non-zero value fn returned, or LOKET_E_MALFORMED
 * for bytes that are not one well-formed map. The fields of a collection
 * without references are not read: 0 at once.
 */
int schema_each_ref_in(const char *coll, const uint8_t *fields, size_t len, schema_ref_fn *fn,
                       void *arg);

#endif
