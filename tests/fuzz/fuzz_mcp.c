/* fuzz_mcp.c — a POST /mcp body, as nginx hands it over (fcgi/mcp.c): the JSON-RPC envelope,
 * the methods, the tool's arguments cut out of the text as written, and the answer built around
 * a canned /execute answer or refusal (the first byte chooses which).
 *
 * Oracles beyond "no crash": every answer is 200, 202 (without a body), 400 or 500; every body
 * is one strict JSON value; the arguments handed to /execute are one strict JSON value,
 * NUL-terminated, and whenever /execute is asked the message was a tools/call (its method read
 * as JSON: a client may spell it "tools\/call", which a search of the raw text would miss). */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "../../fcgi/mcp.h"
#include "jsontext.h"

static const char *const answers[] = {
        "{\"result\": 123456789012345678901234567890, \"stdout\": \"a\\u0000b\\n\"}",
        "{\"error\": \"E\", \"stdout\": \"\", \"error_kind\": \"exception\", \"traceback\": \"T\"}",
        "{\"result\": null, \"stdout\": \"\", \"figures\": [{\"media_type\": \"image/png\", \"base64\": \"AA==\"}]}",
};

static bool is_tools_call(const char *message)
{
        struct json_object *root = json_tokener_parse(message), *method;
        bool yes = root && json_object_object_get_ex(root, "method", &method) &&
                   json_object_is_type(method, json_type_string) &&
                   strcmp(json_object_get_string(method), "tools/call") == 0;
        json_object_put(root);
        return yes;
}

static int execute(void *ctx, const char *body, size_t len, struct sbuf *answer, struct api_error *e)
{
        unsigned choice = *(const unsigned char *)ctx;
        if (body[len] != '\0' || jt_validate(body, len, 256) != 0 || !is_tools_call(ctx))
                abort();
        switch (choice % 6) {
        case 3: api_error_set(e, 400, "invalid_request", "refused"); return -1;
        case 4: api_error_set(e, 503, "busy", "busy"); return -1;
        case 5: api_error_set(e, 500, "sandbox_error", "no sandbox"); return -1;
        default: return sbuf_puts(answer, answers[choice % 6]);
        }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        char *body = malloc(size + 1);
        if (!body)
                return 0;
        memcpy(body, data, size);
        body[size] = '\0';
        struct sb_config config;
        sb_config_default(&config);
        struct mcp_env env = { .config = &config, .execute = execute, .ctx = body };
        struct reply a = { .status = 0 };
        /* Every other input also carries an MCP-Protocol-Version header. */
        mcp_handle(body, size, size % 2 ? "2025-03-26" : NULL, &env, &a);
        if (a.status != 200 && a.status != 202 && a.status != 400 && a.status != 500)
                abort();
        if ((a.status == 202) != (a.body.len == 0) || !a.kind)
                abort();
        if (a.body.len && !a.body.oom && jt_validate(a.body.data, a.body.len, 512) != 0)
                abort();
        reply_free(&a);
        free(body);
        return 0;
}
