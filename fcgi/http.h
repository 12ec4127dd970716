/* http.h — the HTTP surface of the worker, as pure functions: routing, the Content-Type
 * check, and the JSON error bodies. Nothing here touches libfcgi, so all of it is unit-tested. */
#ifndef PYEXEC_HTTP_H
#define PYEXEC_HTTP_H

#include <stdbool.h>
#include <stddef.h>

#include "sandbox.h"

enum route {
        ROUTE_EXECUTE,
        ROUTE_HEALTH,  /* {"status": "healthy"} */
        ROUTE_HEALTHZ, /* {"status": "ok"} (seed 000) */
        ROUTE_RUNTIME, /* the pool as it runs: cgroups, mode, workers, limits */
        ROUTE_MCP,     /* POST /mcp: the Model Context Protocol (mcp.h) */
        ROUTE_NOT_FOUND,
        ROUTE_METHOD_NOT_ALLOWED,
};

/* Maps method and path to a route. For ROUTE_METHOD_NOT_ALLOWED, *allow is the Allow header. */
enum route http_route(const char *method, const char *path, const char **allow);

/* true for "application/json", case-insensitive, with or without parameters. */
bool http_is_json_content_type(const char *content_type);

/* An error answer: status, the API's error_kind and message, and (for 405) the Allow header.
 *
 * fcgi/'s error contract: a function that turns a request into its answer returns 0, or -1
 * with a struct api_error filled in (the answer itself; its status says whose fault it is);
 * one that fails for a system reason returns -errno, as in the sandbox library (util.h). */
struct api_error {
        int status;
        const char *kind;
        char message[256];
        const char *allow;
};

void api_error_set(struct api_error *e, int status, const char *kind, const char *fmt, ...)
        __attribute__((format(printf, 4, 5)));

/* {"error": ..., "stdout": "", "error_kind": ...}: the shape every error has. */
int http_error_body(const struct api_error *e, struct sbuf *out);

/* "200 OK", "413 Payload Too Large", ... for the Status header. */
const char *http_status_line(int status);

#endif
