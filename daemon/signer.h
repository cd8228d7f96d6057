/*
 * signer: one thread that signs with the node's key while the loop thread
 * goes on applying ops. A thread started per changeset took longer to be
 * scheduled than the signature itself (milliseconds on a busy machine);
 * this one waits on a semaphore between signatures. One signature at a
 * time: signer_sign, then signer_wait before the next.
 */
#ifndef LOKET_SIGNER_H
#define LOKET_SIGNER_H

#include <stddef.h>
#include <stdint.h>

struct key;
struct signer;

/* NULL when no thread can be started: the caller then signs with key_sign. */
struct signer *signer_start(const struct key *key);
void signer_stop(struct signer *s);

/*
 * Starts the signature of msg (len bytes) into sig. msg and sig must stay
 * as they are until signer_wait returns.
 */
void signer_sign(struct signer *s, const uint8_t *msg, size_t len, uint8_t sig[64]);

/* Waits until the signature started last is in its sig. */
void signer_wait(struct signer *s);

#endif
