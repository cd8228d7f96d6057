/*
 * The node's private key, and the only code that touches it. The secret
 * lives in sodium_malloc'd memory, is wiped on free, and never leaves this
 * module: callers ask it to sign, or to arm a ZeroMQ socket for CURVE.
 *
 * Key file: one line, the 32-byte Ed25519 seed in base64 (44 characters),
 * mode 0600. The CURVE key pair is derived from the same Ed25519 key.
 */
#ifndef LOKET_KEY_H
#define LOKET_KEY_H

#include <stddef.h>
#include <stdint.h>

struct key;

/* A fresh random key. */
int key_generate(struct key **out);
/* Writes the key to path, mode 0600, failing with LOKET_E_EXISTS if path exists. */
int key_save(const struct key *k, const char *path);
/*
 * Reads a key file. Refuses (LOKET_E_KEY_PERMS) a file that group or others
 * may read, so that a leaked key is not silently used. Writes a sentence
 * naming the file and the fix into err.
 */
int key_load(const char *path, struct key **out, char *err, size_t errlen);
void key_free(struct key *k);

void key_public(const struct key *k, uint8_t pk[32]);
/* Ed25519 detached signature over msg. */
void key_sign(const struct key *k, const uint8_t *msg, size_t len, uint8_t sig[64]);

/* The CURVE (X25519) public key derived from an Ed25519 public key. */
int key_curve_public(const uint8_t ed_pk[32], uint8_t curve_pk[32]);
/* Sets ZMQ_CURVE_SERVER and the node's CURVE keys on a ZeroMQ socket. */
int key_arm_curve_server(const struct key *k, void *zsock);
/* Sets the node's CURVE keys and the server's public key on a ZeroMQ client socket. */
int key_arm_curve_client(const struct key *k, void *zsock, const uint8_t server_ed_pk[32]);

#endif
