/* errors.c — the table of error kinds (sandbox.h) and the shape of an error answer. */
#include <string.h>

#include "jsontext.h"
#include "sandbox.h"

const struct sb_error_kind sb_error_kinds[] = {
        /* What happened to the script: HTTP 200, by enum sb_status. */
        [SB_OK] = { .name = "ok", .status = 200 },
        [SB_NO_MAIN] = { .name = "no_main", .status = 200 },
        [SB_SYNTAX_ERROR] = { .name = "syntax_error", .status = 200 },
        [SB_NOT_SERIALIZABLE] = { .name = "not_serializable", .status = 200 },
        [SB_EXCEPTION] = { .name = "exception", .status = 200 },
        [SB_TIMEOUT] = { .name = "timeout", .status = 200 },
        [SB_MEMORY_LIMIT] = { .name = "memory_limit", .status = 200,
                              .message = "Script execution error: Memory limit exceeded" },
        [SB_RESULT_TOO_LARGE] = { .name = "result_too_large", .status = 200 },
        [SB_EXITED] = { .name = "exited", .status = 200 },
        [SB_KILLED] = { .name = "killed", .status = 200 },
        [SB_CHANNEL_TAMPERED] = { .name = "channel_tampered", .status = 200,
                                  .message = "Script execution error: the result channel was written to by the "
                                             "script" },
        /* What was wrong with the request, or with the service. */
        { .name = "invalid_json", .status = 400 },
        { .name = "invalid_request", .status = 400 },
        { .name = "headers_too_large", .status = 400 },      /* nginx */
        { .name = "unauthorized", .status = 401 },           /* nginx: no key, or not one of the keys file */
        { .name = "forbidden", .status = 403 },              /* nginx: /metrics from outside */
        { .name = "not_found", .status = 404 },
        { .name = "method_not_allowed", .status = 405 },
        { .name = "too_large", .status = 413 },
        { .name = "uri_too_long", .status = 414 },           /* nginx */
        { .name = "unsupported_media_type", .status = 415 },
        { .name = "rate_limited", .status = 429 },           /* the monitor, for nginx: a key's limits */
        { .name = "sandbox_error", .status = 500 },
        { .name = "internal_error", .status = 500 },
        { .name = "unsupported_transfer_encoding", .status = 501 }, /* nginx */
        { .name = "bad_gateway", .status = 502 },            /* nginx */
        { .name = "busy", .status = 503 },
        { .name = "gateway_timeout", .status = 504 },        /* nginx */
        { .name = "http_version_not_supported", .status = 505 }, /* nginx */
};
const size_t sb_error_kind_count = sizeof(sb_error_kinds) / sizeof(sb_error_kinds[0]);

_Static_assert(sizeof(sb_error_kinds) / sizeof(sb_error_kinds[0]) <= SB_ERROR_KINDS_MAX, "room in the metrics");
_Static_assert(SB_STATUS_COUNT == SB_CHANNEL_TAMPERED + 1, "every enum sb_status has its row above");

int sb_error_kind_index(const char *name)
{
        for (size_t i = 0; i < sb_error_kind_count; i++)
                if (strcmp(sb_error_kinds[i].name, name) == 0)
                        return (int)i;
        return -1;
}

int sb_error_json(const char *kind, const char *message, struct sbuf *out)
{
        int r = sbuf_puts(out, "{\"error\": ");
        r = r ? r : jt_append_string(out, message, strlen(message));
        r = r ? r : sbuf_puts(out, ", \"stdout\": \"\", \"error_kind\": ");
        r = r ? r : jt_append_string(out, kind, strlen(kind));
        return r ? r : sbuf_puts(out, "}");
}
