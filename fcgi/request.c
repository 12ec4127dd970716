/* request.c — the /execute body: strict JSON (json-c), an object, a string "script" within the
 * size limit. json-c's strings are borrowed from the tree, so the script is copied out before
 * the tree is put. */
#include "request.h"

#include "fields.h"
#include "jsontext.h"

#include <errno.h>
#include <json-c/json.h>
#include <limits.h>
#include <string.h>

/* {"script": "..."} nests one level; ignored extra fields may nest up to this depth. */
#define REQUEST_MAX_DEPTH 128

void exec_request_free(struct exec_request *req)
{
        free(req->script);
        sbuf_free(&req->options);
        *req = (struct exec_request){ 0 };
}

int request_parse_json(const char *body, size_t len, const struct sb_config *config, struct json_object **out,
                       struct api_error *e)
{
        *out = NULL;
        if (len > INT_MAX) {
                api_error_set(e, 413, "too_large", "Request body too large (limit %zu bytes)", config->service.body_max_bytes);
                return -1;
        }
        struct json_tokener *tok = json_tokener_new_ex(REQUEST_MAX_DEPTH);
        if (!tok) {
                api_error_set(e, 500, "internal_error", "Out of memory parsing the request");
                return -1;
        }
        json_tokener_set_flags(tok, JSON_TOKENER_STRICT | JSON_TOKENER_VALIDATE_UTF8);
        struct json_object *root = NULL;
        int ret = -1;
        if (memchr(body, '\0', len)) {
                api_error_set(e, 400, "invalid_json", "Request body is not valid JSON: it contains a NUL byte");
                goto exit;
        }
        /* The terminating NUL is passed too: it tells json-c the input has ended, so that a
         * bare number at the very end is complete rather than "to be continued". */
        root = json_tokener_parse_ex(tok, body, (int)len + 1);
        enum json_tokener_error jerr = json_tokener_get_error(tok);
        if (jerr == json_tokener_continue) {
                api_error_set(e, 400, "invalid_json", "Request body is not valid JSON: unexpected end of input");
                goto exit;
        }
        if (jerr != json_tokener_success) {
                api_error_set(e, 400, "invalid_json", "Request body is not valid JSON: %s at byte %zu",
                              json_tokener_error_desc(jerr), json_tokener_get_parse_end(tok));
                goto exit;
        }
        /* json-c's strict mode still takes NaN and Infinity, and stops after the first value:
         * the strict validator that guards responses settles both. */
        int v = jt_validate(body, len, REQUEST_MAX_DEPTH);
        if (v < 0) {
                api_error_set(e, 400, "invalid_json", "Request body is not valid JSON: %s",
                              v == -EEXIST   ? "an object has a name twice"
                              : v == -ERANGE ? "a number too large for a double"
                                             : "NaN, Infinity or data after the value");
                goto exit;
        }
        *out = root;
        root = NULL;
        ret = 0;
exit:
        json_object_put(root);
        json_tokener_free(tok);
        return ret;
}

int request_parse_execute(const char *body, size_t len, const struct sb_config *config, struct exec_request *req,
                          struct api_error *e)
{
        *req = (struct exec_request){ 0 };
        int ret = -1;
        struct json_object *root, *field;
        if (request_parse_json(body, len, config, &root, e) < 0)
                return -1;
        if (!json_object_is_type(root, json_type_object)) {
                api_error_set(e, 400, "invalid_request", "Request body must be a JSON object");
                goto exit;
        }
        if (!json_object_object_get_ex(root, "script", &field)) {
                api_error_set(e, 400, "invalid_request", "Request must contain 'script' field");
                goto exit;
        }
        if (!json_object_is_type(field, json_type_string)) {
                api_error_set(e, 400, "invalid_request", "'script' must be a string");
                goto exit;
        }
        size_t n = (size_t)json_object_get_string_len(field);
        if (n > config->limits.script_max_bytes) {
                api_error_set(e, 413, "too_large", "Script too large: %zu bytes (limit %zu bytes)", n,
                              config->limits.script_max_bytes);
                goto exit;
        }
        char *copy = malloc(n + 1);
        if (!copy) {
                api_error_set(e, 500, "internal_error", "Out of memory copying the script");
                goto exit;
        }
        memcpy(copy, json_object_get_string(field), n + 1);
        req->script = copy;
        req->script_len = n;
        ret = fields_parse(body, len, root, config, req, e);
        if (ret < 0)
                exec_request_free(req);
exit:
        json_object_put(root);
        return ret;
}
