/*
 * openapi: http/openapi.json as the build embeds it (CMakeLists.txt makes
 * openapi_json.c from the file), served at /v1/openapi.json.
 */
#ifndef LOKET_HTTP_OPENAPI_H
#define LOKET_HTTP_OPENAPI_H

#include <stddef.h>

extern const unsigned char openapi_json[];
extern const size_t openapi_json_len;

#endif
