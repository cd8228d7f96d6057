/*
 * Values: the msgpack maps that carry an op's fields and every control
 * message, and their JSON form (jansson), which is what users type and read.
 *
 * value_check walks msgpack bytes without allocating and enforces the
 * canonical form and the limits before anything is unpacked, because
 * msgpack-c's unpacker allocates for whatever count a header declares.
 */
#ifndef LOKET_VALUE_H
#define LOKET_VALUE_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>
#include <msgpack.h>

/*
 * Checks that p holds one value of at most max_depth nesting (0: scalars
 * only) with no ext, UTF-8 strings, unique string map keys and every
 * container count within the bytes that remain. With VALUE_CANONICAL it
 * must also be canonical: no bin, keys sorted bytewise, shortest integer
 * formats, int64 range, float64 only, no NaN. Writes the length of the value
 * into *used; trailing bytes are allowed (the caller decides). On failure
 * returns a LOKET_E_* code and a sentence in err.
 */
enum value_check_flags {
	VALUE_CANONICAL = 1 << 0, /* require the one canonical encoding */
	VALUE_FINITE = 1 << 1,    /* no NaN or infinite float (which JSON cannot hold) */
	VALUE_NO_BIN = 1 << 2,    /* no bin: text must be str (clients' requests) */
};
int value_check(const uint8_t *p, size_t len, unsigned max_depth, unsigned flags, size_t *used,
                char *err, size_t errlen);

/*
 * value_check with more rules. max_elements bounds the values (map keys,
 * map values, array elements and scalars, each one) of the whole value, 0
 * for no bound: decoding makes one object of each, so this is what bounds
 * the memory a decoded value takes (LOKET_MAX_MESSAGE_ELEMENTS). A message
 * names where it found the problem by the path from the top,
 * "fields.topics[2]": string is not valid UTF-8 at byte 40, and with root
 * set the path starts with root and no byte offset is given (the caller
 * checks a part of something bigger). elements is set to the values walked.
 */
struct value_rules {
	unsigned max_depth;
	unsigned flags;      /* enum value_check_flags */
	size_t max_elements; /* 0: no bound */
	const char *root;    /* NULL: none */
	size_t elements;     /* out */
};
int value_check_rules(const uint8_t *p, size_t len, struct value_rules *rules, size_t *used,
                      char *err, size_t errlen);

/*
 * Packs a JSON value canonically (map keys sorted, integers shortest,
 * reals as float64). Rejects NaN/inf, nesting beyond max_depth, and
 * integers out of int64 range, with a sentence in err naming the path.
 */
int value_pack_json(msgpack_packer *pk, const json_t *v, unsigned max_depth, char *err,
                    size_t errlen);

/*
 * Unpacks one msgpack value into a new JSON value. The bytes must have
 * passed value_check (or be trusted, as bytes read back from our own
 * store). bin becomes a lowercase hex string. Returns NULL on malformed
 * input.
 */
json_t *value_to_json(const uint8_t *p, size_t len);

/*
 * Control and sync messages are msgpack maps of bounded size and depth;
 * these convert a whole message. value_decode_message fails with a sentence
 * in err on anything that is not one map within LOKET_MAX_MESSAGE_BYTES and
 * LOKET_MAX_MESSAGE_ELEMENTS values. Messages need not be canonical
 * (clients in other languages), but must be bounded and well formed; bin
 * values become hex strings. value_decode_message_limit takes another bound
 * on the values (0: none), for the CLI reading its own daemon's replies,
 * whose size alone is bounded.
 */
int value_encode_message(const json_t *msg, msgpack_sbuffer *out);
int value_decode_message(const uint8_t *p, size_t len, json_t **out, char *err, size_t errlen);
int value_decode_message_limit(const uint8_t *p, size_t len, size_t max_elements, json_t **out,
                               char *err, size_t errlen);

/* 1 if s holds valid UTF-8 (no overlong forms, surrogates or code points beyond U+10FFFF). */
int value_valid_utf8(const uint8_t *s, size_t len);

#endif
