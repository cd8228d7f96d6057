/*
 * note: the C2SP signed-note format, the tlog-checkpoint text it carries,
 * and tlog-cosignatures (proto/FORMAT.md, sections 11 and 12). No I/O and
 * no secrets: the module parses strictly, builds the bytes a key signs,
 * formats signature lines and verifies signatures against public keys;
 * the signing itself is common/key's.
 *
 * A signed note is a text ending in a newline, one blank line, and one or
 * more signature lines "— NAME BASE64(key ID || signature)\n" (U+2014 em
 * dash, a space, the key name, a space, standard base64 with padding).
 * The whole note is valid UTF-8 with no control character but newline;
 * the text is what comes before the last blank line. Key IDs are the
 * first 4 bytes, big-endian, of SHA-256(name || 0x0A || type || public
 * key): type 0x01 for a log's Ed25519 signature over the text, 0x04 for a
 * timestamped Ed25519 cosignature over
 *
 *	"cosignature/v1\ntime " TIMESTAMP "\n" || text
 *
 * whose signature bytes are the 8-byte big-endian timestamp and the 64
 * bytes of the Ed25519 signature.
 *
 * A loket checkpoint's text is exactly three lines: the origin line
 * "loket/FEDERATION/ORIGIN" (ORIGIN: the origin's 32-byte key in lower-case
 * hex), the tree size in decimal (no leading zero) and the root hash in
 * base64. The log's key name and every cosigner's key name are such
 * origin lines (the cosigner's own origin), so a name alone says which
 * member signed. Extension lines are refused.
 */
#ifndef LOKET_NOTE_H
#define LOKET_NOTE_H

#include <stddef.h>
#include <stdint.h>

#define NOTE_MAX_BYTES     65536u /* a whole signed note */
#define NOTE_MAX_SIGS      258u   /* signature lines: a log's and one per origin of 256, and one */
#define NOTE_MAX_NAME      255u   /* bytes of a key name, and of an origin line */
#define NOTE_MAX_SIG       128u   /* bytes of a signature after its key ID */
#define NOTE_MAX_TEXT      1024u  /* bytes of a checkpoint text */
#define NOTE_TYPE_ED25519  0x01   /* a log's signature (signed-note) */
#define NOTE_TYPE_COSIG    0x04   /* a timestamped cosignature (tlog-cosignature) */
#define NOTE_COSIG_BYTES   72u    /* timestamp (8) and Ed25519 signature (64) */
#define NOTE_ORIGIN_PREFIX "loket/"

/* One signature line. name points into the parsed bytes. */
struct note_sig {
	const uint8_t *name;
	size_t name_len;
	uint32_t key_id;
	size_t len;
	uint8_t sig[NOTE_MAX_SIG];
};

/*
 * A parsed note; text and names point into the bytes parsed, which must
 * outlive it. About 40 KiB: allocate it, do not put it on a small stack.
 */
struct note {
	const uint8_t *text; /* the signed text, its final newline included */
	size_t text_len;
	size_t count;
	struct note_sig sig[NOTE_MAX_SIGS];
};

/* A checkpoint's three lines. */
struct note_checkpoint {
	char origin[NOTE_MAX_NAME + 1]; /* NUL-terminated */
	size_t origin_len;
	uint64_t size;
	uint8_t root[32];
};

/*
 * Parses a signed note strictly: at most NOTE_MAX_BYTES, UTF-8 with no
 * control character but newline, text, blank line, 1..NOTE_MAX_SIGS
 * signature lines each with a valid key name, canonical base64 of 5 to
 * 4 + NOTE_MAX_SIG bytes, and no (name, key ID) twice. On failure err gets
 * a sentence naming what is wrong and where (LOKET_E_TOO_BIG or
 * LOKET_E_MALFORMED).
 */
int note_parse(const uint8_t *p, size_t len, struct note *n, char *err, size_t errlen);

/* 1 if s is a key name: 1..NOTE_MAX_NAME bytes of UTF-8, no control, no space, no '+'. */
int note_valid_name(const uint8_t *s, size_t len);

/* The key ID of (name, type, Ed25519 public key). */
uint32_t note_key_id(const uint8_t *name, size_t name_len, uint8_t type, const uint8_t pub[32]);

/*
 * Appends the signature line "— NAME BASE64(key_id || sig)\n" to buf,
 * which holds *len bytes of cap. -ENOSPC if it does not fit, -EINVAL for
 * an invalid name or a signature of 0 or more than NOTE_MAX_SIG bytes.
 */
int note_append_sig(char *buf, size_t cap, size_t *len, const uint8_t *name, size_t name_len,
                    uint32_t key_id, const uint8_t *sig, size_t sig_len);

/*
 * The index of the signature line of (name, key_id) in n, or -1 if none:
 * a verifier looks only at the lines of the keys it knows.
 */
int note_find(const struct note *n, const uint8_t *name, size_t name_len, uint32_t key_id);

/*
 * Verifies the log signature (type 0x01) of name under pub over n's text.
 * 0 if it verifies, LOKET_E_NOT_FOUND if n has no line of that key,
 * LOKET_E_BAD_SIGNATURE if the line does not verify.
 */
int note_verify(const struct note *n, const uint8_t *name, size_t name_len, const uint8_t pub[32]);

/*
 * The message a cosigner signs at time ts (seconds since the epoch, at
 * most 2^63 - 1) for a checkpoint text: "cosignature/v1\ntime TS\n" ||
 * text. -ENOSPC if it does not fit in cap, -EINVAL for a ts beyond 2^63-1.
 */
int note_cosig_message(const uint8_t *text, size_t text_len, uint64_t ts, uint8_t *buf, size_t cap,
                       size_t *len);

/*
 * Verifies the cosignature (type 0x04) of name under pub; *ts gets its
 * timestamp. Returns as note_verify; a cosignature whose bytes are not 72,
 * or whose timestamp exceeds 2^63 - 1, is LOKET_E_BAD_SIGNATURE.
 */
int note_verify_cosig(const struct note *n, const uint8_t *name, size_t name_len,
                      const uint8_t pub[32], uint64_t *ts);

/* The origin line "loket/FEDERATION/HEX" of an origin key; -EINVAL for a bad federation. */
int note_origin_line(const char *federation, const uint8_t origin[32], struct note_checkpoint *c);

/* The checkpoint's text (three lines) into buf; -ENOSPC if it does not fit. */
int note_checkpoint_text(const struct note_checkpoint *c, char *buf, size_t cap, size_t *len);

/*
 * Parses a checkpoint text strictly: three lines, each ending in a newline,
 * an origin that is a valid key name, a size 0..2^63-1 in decimal without
 * a leading zero, a root of 44 characters of canonical base64 (32 bytes),
 * nothing after. err gets a sentence naming the line (LOKET_E_MALFORMED).
 */
int note_checkpoint_parse(const uint8_t *text, size_t len, struct note_checkpoint *c, char *err,
                          size_t errlen);

/*
 * The origin key and federation named by a loket origin line; -EINVAL if
 * the line is not "loket/FEDERATION/HEX" with 64 lower-case hex digits.
 * federation gets the name NUL-terminated (cap at least 65 bytes).
 */
int note_origin_parse(const char *line, size_t len, char *federation, size_t cap,
                      uint8_t origin[32]);

#endif
