/* http.c — routing and error bodies. */
#include "http.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "sandbox.h"

enum route http_route(const char *method, const char *path, const char **allow)
{
        static const struct {
                const char *path;
                enum route route;
                const char *allow;
        } routes[] = {
                { "/execute", ROUTE_EXECUTE, "POST" },
                { "/mcp", ROUTE_MCP, "POST" },
                { "/health", ROUTE_HEALTH, "GET, HEAD" },
                { "/healthz", ROUTE_HEALTHZ, "GET, HEAD" },
                { "/runtime", ROUTE_RUNTIME, "GET, HEAD" },
        };
        method = method ? method : "";
        path = path ? path : "";
        for (size_t i = 0; i < ARRAY_SIZE(routes); i++) {
                if (strcmp(path, routes[i].path) != 0)
                        continue;
                bool ok = strcmp(routes[i].allow, "POST") == 0
                                  ? strcmp(method, "POST") == 0
                                  : strcmp(method, "GET") == 0 || strcmp(method, "HEAD") == 0;
                if (ok)
                        return routes[i].route;
                *allow = routes[i].allow;
                return ROUTE_METHOD_NOT_ALLOWED;
        }
        return ROUTE_NOT_FOUND;
}

bool http_is_json_content_type(const char *ct)
{
        static const char want[] = "application/json";
        if (!ct)
                return false;
        while (*ct == ' ' || *ct == '\t')
                ct++;
        if (strncasecmp(ct, want, sizeof(want) - 1) != 0)
                return false;
        ct += sizeof(want) - 1;
        while (*ct == ' ' || *ct == '\t')
                ct++;
        return *ct == '\0' || *ct == ';';
}

void api_error_set(struct api_error *e, int status, const char *kind, const char *fmt, ...)
{
        va_list ap;
        e->status = status;
        e->kind = kind;
        e->allow = NULL;
        va_start(ap, fmt);
        vsnprintf(e->message, sizeof(e->message), fmt, ap);
        va_end(ap);
}

int http_error_body(const struct api_error *e, struct sbuf *out)
{
        return sb_error_json(e->kind, e->message, out);
}

const char *http_status_line(int status)
{
        switch (status) {
        case 200: return "200 OK";
        case 202: return "202 Accepted";
        case 400: return "400 Bad Request";
        case 404: return "404 Not Found";
        case 405: return "405 Method Not Allowed";
        case 413: return "413 Payload Too Large";
        case 415: return "415 Unsupported Media Type";
        case 500: return "500 Internal Server Error";
        case 502: return "502 Bad Gateway";
        case 503: return "503 Service Unavailable";
        default: return "500 Internal Server Error";
        }
}
