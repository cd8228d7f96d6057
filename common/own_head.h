/*
 * own_head: the durable record of how far this node has signed its own
 * chain, kept outside the store, beside the key (KEYFILE.head, e.g.
 * /etc/loket/node.key.head). loketd writes it after each of its own
 * commits and before the changesets leave the node, so that a store
 * restored from a backup or wiped (which loses the tail of the chain) is
 * told apart from a clean restart: the store's own head is then behind the
 * record, and the node must not sign again until it has its chain back.
 *
 * File format (version 1): exactly 256 bytes, two slots of 128 bytes. Each
 * slot holds one line of ASCII text, padded with spaces to 127 bytes and
 * ended by '\n' (byte 127 of the slot):
 *
 *   loket-own-head 1 SEQ HASH CHECK
 *
 * SEQ is the last seq of this node's chain it signed and committed
 * (decimal, no leading zeros; 0 for none), HASH the 64 lowercase hex digits
 * of that changeset's hash (all zeros for seq 0), and CHECK the first 16
 * lowercase hex digits of SHA-256 over the text before the space that
 * precedes CHECK ("loket-own-head 1 SEQ HASH"). A slot that does not parse
 * or whose CHECK does not match is invalid (a torn or damaged write); the
 * record is the valid slot with the highest SEQ. A write goes to the slot
 * that does not hold the record (pwrite, then fdatasync), so a torn write
 * never destroys the last good record, and it needs write access to the
 * file only, not to its directory. A zero-length file is a record not
 * written yet (as absent: an operator may create it empty for a daemon
 * that cannot create files beside its key).
 *
 * Used by loketd (daemon/node.c) and `loket init`, which creates the record
 * at seq 0.
 */
#ifndef LOKET_OWN_HEAD_H
#define LOKET_OWN_HEAD_H

#include <limits.h>
#include <stddef.h>
#include <stdint.h>

#define OWN_HEAD_SUFFIX     ".head"
#define OWN_HEAD_SLOT_BYTES 128u
#define OWN_HEAD_FILE_BYTES (2u * OWN_HEAD_SLOT_BYTES)
#define OWN_HEAD_WHY_MAX    320u

enum own_head_state {
	OWN_HEAD_EMPTY = 0, /* zero-length file: nothing recorded yet */
	OWN_HEAD_VALID,     /* seq and hash hold the record */
	OWN_HEAD_DAMAGED,   /* no valid slot; why says what was found */
};

struct own_head {
	int fd; /* open read-write */
	char path[PATH_MAX];
	enum own_head_state state;
	uint64_t seq;
	uint8_t hash[32];
	int slot; /* the slot that holds the record (VALID only) */
	char why[OWN_HEAD_WHY_MAX];
};

/* KEYFILE.head into out; -ENAMETOOLONG if it does not fit. */
int own_head_path(const char *key_path, char *out, size_t outlen);

/*
 * Opens the record at path read-write and reads it. LOKET_E_NOT_FOUND if
 * there is no file; other failures (not a regular file, no permission, a
 * read-only file system) return a negative code with a sentence naming the
 * file in err. A file that is there but holds no valid record is not a
 * failure: *out is returned with state OWN_HEAD_EMPTY or OWN_HEAD_DAMAGED.
 */
int own_head_open(const char *path, struct own_head **out, char *err, size_t errlen);

/*
 * Creates the record file at path (mode 0600, O_EXCL: LOKET_E_EXISTS if
 * there is one) holding (seq, hash) in both slots, and makes it and its
 * directory entry durable. *out, when not NULL, gets it open.
 */
int own_head_create(const char *path, uint64_t seq, const uint8_t hash[32], struct own_head **out,
                    char *err, size_t errlen);

/*
 * Records (seq, hash): into the slot that does not hold the record, when
 * seq is not below it; otherwise (a lower seq, or no valid record) into
 * both slots, one after the other, so that no slot keeps a higher seq.
 * Durable when it returns 0; on failure err names the file and the error.
 */
int own_head_write(struct own_head *h, uint64_t seq, const uint8_t hash[32], char *err,
                   size_t errlen);

void own_head_close(struct own_head *h);

/*
 * Parses one slot (OWN_HEAD_SLOT_BYTES bytes): 0 and (seq, hash), or
 * LOKET_E_MALFORMED with a short reason in why. Exposed for the tests.
 */
int own_head_parse_slot(const uint8_t *slot, uint64_t *seq, uint8_t hash[32], char *why,
                        size_t whylen);
/* Formats one slot for (seq, hash) into out (OWN_HEAD_SLOT_BYTES bytes). */
void own_head_format_slot(uint64_t seq, const uint8_t hash[32], uint8_t *out);

#endif
