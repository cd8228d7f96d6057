/*
 * jsonmp: one JSON text straight to canonical msgpack, the bytes that
 * jansson's parse followed by value_pack_json would give, without building
 * the tree in between. It exists for bulk input (loket import), where
 * parsing into a tree, packing and freeing the tree cost several times more
 * than the conversion itself.
 *
 * It is a fast path, not a second parser with its own dialect: whatever it
 * accepts, json_loadb(JSON_REJECT_DUPLICATES | JSON_DECODE_ANY) with
 * value_pack_json accepts too, with the same bytes. It may refuse more
 * (very long numbers), and its errors carry no sentence: a caller that
 * needs to tell the user why converts the slow way, which says.
 */
#ifndef LOKET_JSONMP_H
#define LOKET_JSONMP_H

#include <stddef.h>
#include <stdint.h>

#include <msgpack.h>

/* Nesting jsonmp_pack allows whatever max_depth asks for. */
#define JSONMP_DEPTH_CAP 64u

/* Characters of a number with a fraction or exponent it converts. */
#define JSONMP_NUMBER_MAX 128u

/* What one conversion needs kept between calls: the members of open objects. */
struct jsonmp;

struct jsonmp *jsonmp_new(void);
void jsonmp_free(struct jsonmp *j);

/*
 * Appends to out the canonical msgpack of the one JSON value (RFC 8259,
 * any type at the top level) in text, surrounded by nothing but
 * whitespace: objects become maps with keys sorted bytewise, integers
 * shortest, other numbers float64. Containers nest at most max_depth deep
 * (0: scalars only), as for value_pack_json. Returns 0, or on anything it
 * cannot convert, with out as it was:
 *   LOKET_E_MALFORMED      not JSON; a string that is not UTF-8 or holds
 *                          U+0000 (jansson refuses both)
 *   LOKET_E_TRAILING       something other than whitespace after the value
 *   LOKET_E_DUPLICATE_KEY  an object names a key twice
 *   LOKET_E_TOO_DEEP       nesting beyond max_depth or JSONMP_DEPTH_CAP
 *   LOKET_E_TOO_BIG        an integer beyond int64, a number beyond double,
 *                          a real of more than JSONMP_NUMBER_MAX characters
 * Out of memory aborts.
 */
int jsonmp_pack(struct jsonmp *j, const uint8_t *text, size_t len, unsigned max_depth,
                msgpack_sbuffer *out);

#endif
