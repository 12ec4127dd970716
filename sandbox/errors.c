/* errors.c — the table of error kinds (sandbox.h) and the shape of an error answer. */
#include <string.h>

#include "jsontext.h"
#include "sandbox.h"

const struct sb_error_kind sb_error_kinds[] = {
        /* What happened to the script: HTTP 200, by enum sb_status. */
        [SB_OK] = { "ok", 200 },
        [SB_NO_MAIN] = { "no_main", 200 },
        [SB_SYNTAX_ERROR] = { "syntax_error", 200 },
        [SB_NOT_SERIALIZABLE] = { "not_serializable", 200 },
        [SB_EXCEPTION] = { "exception", 200 },
        [SB_TIMEOUT] = { "timeout", 200 },
        [SB_MEMORY_LIMIT] = { "memory_limit", 200, "Script execution error: Memory limit exceeded" },
        [SB_RESULT_TOO_LARGE] = { "result_too_large", 200 },
        [SB_EXITED] = { "exited", 200 },
        [SB_KILLED] = { "killed", 200 },
        [SB_CHANNEL_TAMPERED] = { "channel_tampered", 200,
                                  "Script execution error: the result channel was written to by the script" },
        /* What was wrong with the request, or with the service. */
        { "invalid_json", 400 },
        { "invalid_request", 400 },
        { "headers_too_large", 400 },      /* nginx */
        { "forbidden", 403 },              /* nginx: /metrics from outside */
        { "not_found", 404 },
        { "method_not_allowed", 405 },
        { "too_large", 413 },
        { "uri_too_long", 414 },           /* nginx */
        { "unsupported_media_type", 415 },
        { "sandbox_error", 500 },
        { "internal_error", 500 },
        { "unsupported_transfer_encoding", 501 }, /* nginx */
        { "bad_gateway", 502 },            /* nginx */
        { "busy", 503 },
        { "gateway_timeout", 504 },        /* nginx */
        { "http_version_not_supported", 505 }, /* nginx */
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
