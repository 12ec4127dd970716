/* request.h — validation of a POST /execute body with json-c. */
#ifndef PYEXEC_REQUEST_H
#define PYEXEC_REQUEST_H

#include <stddef.h>

#include "http.h"
#include "sandbox.h"

/* Parses body[0..len) (with body[len] == '\0', as struct sbuf guarantees) as {"script": "<string>"} (other members are ignored). On success returns
 * 0 and a malloc'd copy of the script in *script (the caller frees it; it may contain NUL
 * bytes, hence *script_len). On failure returns -1 with *e filled (400 or 413). */
int request_parse_execute(const char *body, size_t len, const struct sb_config *config, char **script,
                          size_t *script_len, struct api_error *e);

#endif
