/*
 * control_reply: a client's reading of a control reply (proto/CONTROL.md):
 * {"ok":true,"result":R} or {"ok":false,"error":SENTENCE,"code":N,
 * "index":I?}. Shared by loket and loket-http, so both report a refusal
 * the same way.
 */
#ifndef LOKET_CONTROL_REPLY_H
#define LOKET_CONTROL_REPLY_H

#include <stddef.h>

#include <jansson.h>

/*
 * 0 and *result (a new reference; null when the reply has none) for a
 * success; else the reply's code (a negative errno value or LOKET_E_*;
 * LOKET_E_BAD_REQUEST when it carries none), its sentence in err and, when
 * index is not NULL and the reply names one, the op at fault in *index.
 * LOKET_E_MALFORMED for a map without "ok".
 */
int control_reply_take(const json_t *reply, json_t **result, long *index, char *err, size_t errlen);

#endif
