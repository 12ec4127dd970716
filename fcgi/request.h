/* request.h — validation of a POST /execute body with json-c. */
#ifndef PYEXEC_REQUEST_H
#define PYEXEC_REQUEST_H

#include <json-c/json.h>
#include <stddef.h>

#include "http.h"
#include "sandbox.h"

/* A checked /execute request. */
struct exec_request {
        char *script;            /* malloc'd; may contain NUL bytes, hence script_len */
        size_t script_len;
        struct sbuf options;     /* the runner's options: one line of JSON (fields.c) */
        struct sb_limits limits; /* the server's, lowered by the request's "limits" */
        bool usage;              /* the answer carries "usage" */
        bool extras;             /* it asks for files or figures back */
        bool batch;              /* it has "inputs" */
};

/* Parses body[0..len) (with body[len] == '\0', as struct sbuf guarantees): a JSON object with
 * a string "script" within the size limit and the optional fields of fields.h; other members
 * are ignored. 0 with *req filled (free it with exec_request_free()), or -1 with *e filled
 * (400, 413, or 500 out of memory) and nothing to free. */
/* body[0..len) (NUL-terminated) as one strict JSON value (RFC 8259, UTF-8, no NaN, no name
 * twice, at most 128 levels deep): 0 with *root (json_object_put() it), or -1 with *e (400
 * invalid_json, 413, or 500 out of memory). The first step of request_parse_execute(), and
 * of POST /mcp (mcp.c). */
int request_parse_json(const char *body, size_t len, const struct sb_config *config, struct json_object **root,
                       struct api_error *e);

int request_parse_execute(const char *body, size_t len, const struct sb_config *config, struct exec_request *req,
                          struct api_error *e);
void exec_request_free(struct exec_request *req);

#endif
