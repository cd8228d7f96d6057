/*
 * Named limits on everything that crosses a trust boundary: changesets from
 * peers, requests from local clients, lines of an import file. Decoders
 * reject input beyond these before allocating for it.
 */
#ifndef LOKET_LIMITS_H
#define LOKET_LIMITS_H

#define LOKET_MAX_CHANGESET_BYTES (1024u * 1024u)      /* encoded body + signature */
#define LOKET_MAX_OPS             10000u               /* ops per changeset */
#define LOKET_MAX_FIELDS          256u                 /* fields per put op */
#define LOKET_MAX_FIELD_BYTES     (64u * 1024u)        /* encoded size of one field value */
#define LOKET_MAX_DEPTH           8u                   /* nesting of arrays and maps in a value */
#define LOKET_MAX_FEDERATION_LEN  64u                  /* bytes of a federation name */
#define LOKET_MAX_COLL_LEN        32u                  /* bytes of a collection name */
#define LOKET_MAX_ID_LEN          128u                 /* bytes of an entity id */
#define LOKET_MAX_KEY_LEN         64u                  /* bytes of a field name */
#define LOKET_MAX_NAME_LEN        64u                  /* bytes of a node or member name */
#define LOKET_MAX_MESSAGE_BYTES   (2u * 1024u * 1024u) /* one control or sync message */
#define LOKET_MAX_MESSAGE_DEPTH   16u                  /* nesting of a control or sync message */
#define LOKET_MAX_UNSORTED_KEYS   256u /* entries of a map whose keys are not sorted */

#endif
