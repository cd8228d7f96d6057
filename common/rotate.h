/*
 * rotate: the files of a key rotation, beside the key file KEY (e.g.
 * /etc/loket/node.key). The rotation itself (proto/FORMAT.md section 14)
 * is signed by loketd (daemon/node.c); this module only moves files, in
 * an order that leaves a node that starts and signs with the right key
 * after a crash at any moment:
 *
 *   KEY.origin   the origin's first key, base64 and '\n', mode 0644: the
 *                origin keeps its id after the key has changed. Written
 *                once, before the first rotation record is signed; absent,
 *                the origin is the key in KEY.
 *   KEY.new      the next key, mode 0600, written durably before the
 *                rotation record that names it is signed.
 *   KEY.old-SEQ  the key the rotation record of seq SEQ retired (a hard
 *                link to the old KEY, mode 0600): kept, never deleted by
 *                loket, for the operator to destroy or archive.
 *
 * Once the record is durable, rotate_install links KEY to KEY.old-SEQ and
 * renames KEY.new over KEY (one atomic rename). A node that stops between
 * the record and the rename finds, at its next start, a KEY that its
 * chain no longer names and the named key in KEY.new: it finishes the
 * install then. The record of the own head (KEY.head) keeps its name: it
 * belongs to the chain, not to one key.
 */
#ifndef LOKET_ROTATE_H
#define LOKET_ROTATE_H

#include <stddef.h>
#include <stdint.h>

#include "common/key.h"

#define ROTATE_ORIGIN_SUFFIX ".origin"
#define ROTATE_NEW_SUFFIX    ".new"
#define ROTATE_OLD_SUFFIX    ".old-"

/* KEY.origin into origin: 0, LOKET_E_NOT_FOUND if there is none, or a code with a sentence. */
int rotate_origin_load(const char *key_path, uint8_t origin[32], char *err, size_t errlen);

/*
 * Makes KEY.origin hold origin, durably. Nothing to do when it does
 * already; LOKET_E_EXISTS when it names another key.
 */
int rotate_origin_save(const char *key_path, const uint8_t origin[32], char *err, size_t errlen);

/*
 * The origin of the node whose key file is key_path and whose current key
 * is pk: KEY.origin if present, else pk.
 */
int rotate_origin(const char *key_path, const uint8_t pk[32], uint8_t origin[32], char *err,
                  size_t errlen);

/* A fresh key, saved durably as KEY.new (a KEY.new left by a rotation never signed goes). */
int rotate_prepare(const char *key_path, struct key **out, char *err, size_t errlen);

/* Loads KEY.new: LOKET_E_NOT_FOUND (-ENOENT) when there is none. */
int rotate_load_new(const char *key_path, struct key **out, char *err, size_t errlen);

/*
 * After the rotation record of seq is durable: KEY becomes KEY.old-SEQ
 * too, and KEY.new becomes KEY. Safe to run again after a crash in it.
 */
int rotate_install(const char *key_path, uint64_t seq, char *err, size_t errlen);

#endif
