/* fuzz_http.c — routing and the Content-Type check on the request line and headers nginx
 * passes through (any bytes a client sends), and the error body built from a message.
 *
 * Input: method, path and Content-Type separated by NUL bytes; the rest is an error message.
 * Oracles: only the exact routes match; 405 comes with an Allow header; a Content-Type that
 * passes starts with application/json; every error body is one strict JSON value. */
#define _GNU_SOURCE
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "../../fcgi/http.h"
#include "jsontext.h"

/* The next NUL-terminated field of the input, copied (the caller frees), or NULL at the end. */
static char *field(const uint8_t **p, size_t *left)
{
        if (*left == 0)
                return NULL;
        const uint8_t *nul = memchr(*p, '\0', *left);
        size_t n = nul ? (size_t)(nul - *p) : *left;
        char *s = strndup((const char *)*p, n);
        *p += nul ? n + 1 : n;
        *left -= nul ? n + 1 : n;
        return s;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        char *method = field(&data, &size), *path = field(&data, &size), *ct = field(&data, &size);
        char *msg = field(&data, &size);

        const char *allow = NULL;
        enum route r = http_route(method, path, &allow);
        if (r == ROUTE_EXECUTE && (strcmp(path, "/execute") != 0 || strcmp(method, "POST") != 0))
                abort();
        if ((r == ROUTE_HEALTH || r == ROUTE_HEALTHZ) && strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0)
                abort();
        if (r == ROUTE_METHOD_NOT_ALLOWED && !allow)
                abort();
        bool json = http_is_json_content_type(ct);
        if (json && !strcasestr(ct, "application/json"))
                abort();

        struct api_error e;
        api_error_set(&e, 400, "invalid_request", "%s", msg ? msg : "");
        struct sbuf body = { 0 };
        if (http_error_body(&e, &body) == 0 && jt_validate(body.data, body.len, 1) != 0)
                abort();
        if (strcmp(http_status_line(e.status), "400 Bad Request") != 0)
                abort();
        sbuf_free(&body);
        free(method), free(path), free(ct), free(msg);
        return 0;
}
