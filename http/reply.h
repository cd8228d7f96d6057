/*
 * reply: what loket-http answers with when something fails: the HTTP
 * status that means what a loket error code (proto/error.h) says, and the
 * JSON body {"error":{"code":N,"name":"NAME","message":"..."}} carrying the
 * stable number, its symbolic name and a sentence.
 */
#ifndef LOKET_HTTP_REPLY_H
#define LOKET_HTTP_REPLY_H

#include <jansson.h>

/* The HTTP status for a loket error code (or negative errno). */
unsigned reply_status(int code);
/* "NOT_FOUND" for LOKET_E_NOT_FOUND, "EINVAL" style for errno values, "UNKNOWN" else. */
const char *reply_code_name(int code);
/* A new {"error":{...}} object; message NULL takes loket_strerror's sentence. */
json_t *reply_error(int code, const char *message);

#endif
