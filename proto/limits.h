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

/*
 * Values (map keys, map values, array elements, scalars: each one) of one
 * control or sync message that is decoded into objects. Decoding makes an
 * object of each, and the costliest per byte, an empty map, takes about
 * 250 bytes of jansson for its one byte of msgpack: 16,384 of them are
 * about 4 MiB, twice LOKET_MAX_MESSAGE_BYTES, where the bytes alone let a
 * 2 MiB message of empty maps decode to 490 MB. Honest messages hold far
 * fewer: a sync hello of 256 origins about 1,300 (a head is a key and a
 * [seq, hash] pair), a read request a handful. Puts are read straight from
 * their msgpack and never decoded whole (daemon/put_ops.c): an import
 * batch of 8,000 ops (about 1.75 MiB, some 100,000 values) meets no such
 * bound; only one op's fields may be, when a client sent them in another
 * form than the canonical one, and those are bounded by this too.
 */
#define LOKET_MAX_MESSAGE_ELEMENTS 16384u

/*
 * The control socket (daemon/control.c), per client. A request up to
 * LOKET_CONTROL_MAX_READ bytes is read and, beyond
 * LOKET_MAX_MESSAGE_BYTES, answered with an error; libzmq closes the
 * connection of one that sends a larger frame (the client sees the
 * connection end). At most LOKET_CONTROL_RCVHWM requests wait in the
 * daemon per client (further ones wait in the client: ZeroMQ pushes back,
 * nothing is lost) and at most LOKET_CONTROL_SNDHWM replies wait unread;
 * a reply beyond that is dropped and logged. loket import keeps 2 batches
 * in flight.
 */
#define LOKET_CONTROL_MAX_READ (2u * LOKET_MAX_MESSAGE_BYTES)
#define LOKET_CONTROL_RCVHWM   2
#define LOKET_CONTROL_SNDHWM   4

/*
 * Work one request may make on the loop thread. A read (get, list, search,
 * log, board, show, experts, match) that runs longer than
 * LOKET_MAX_READ_MS is stopped and refused, so that a request waiting
 * behind it (a status, a sync message, a CURVE handshake) is answered
 * within about that time. A search holds at most LOKET_MAX_SEARCH_WORDS
 * words (a repeat counts, and is looked up once) in LOKET_MAX_SEARCH_BYTES
 * bytes, and at most LOKET_MAX_SEARCH_PREFIXES prefix words ("eenzaam*"),
 * each of at least LOKET_MIN_SEARCH_PREFIX bytes before its '*': the search
 * index expands a prefix into all the terms it starts in one step that no
 * time budget can stop (a 3-letter prefix of the test vocabulary, 300
 * terms, about 3 ms). A match looks
 * up at most LOKET_MAX_MATCH_WORDS of the question's words (desk/broker.c).
 */
/*
 * Sanitizer builds run several times slower; their budgets of time are
 * wider by this, so that the suite's honest reads pass there too.
 */
#if defined(__SANITIZE_ADDRESS__)
#define LOKET_TIME_SCALE 8
#else
#define LOKET_TIME_SCALE 1
#endif
#define LOKET_MAX_READ_MS         (30 * LOKET_TIME_SCALE)
#define LOKET_MAX_SEARCH_WORDS    32u
#define LOKET_MAX_SEARCH_BYTES    4096u
#define LOKET_MIN_SEARCH_PREFIX   3u /* bytes before the '*' of a prefix word */
#define LOKET_MAX_SEARCH_PREFIXES 2u /* prefix words in one search */
#define LOKET_MAX_MATCH_WORDS     64u

#endif
