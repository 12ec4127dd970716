/* fuzz_request.c — the POST /execute body, as nginx hands it over: json-c in strict mode, then
 * the strict validator, then the "script" field and its limit.
 *
 * Oracles beyond "no crash": an accepted body is one strict JSON value, its script fits the
 * limit, and a refused one carries a 400 or 413 with a NUL-terminated message; json-c and the
 * strict validator agree (valid JSON, not deeply nested, is never refused as invalid_json). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../../fcgi/request.h"
#include "jsontext.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        /* request_parse_execute() relies on body[len] == '\0' (struct sbuf guarantees it). */
        char *body = malloc(size + 1);
        if (!body)
                return 0;
        memcpy(body, data, size);
        body[size] = '\0';

        struct sb_config config;
        sb_config_default(&config);
        config.limits.script_max_bytes = 64; /* small, so that the 413 path is reached too */
        struct exec_request x;
        struct api_error e = { 0 };
        int r = request_parse_execute(body, size, &config, &x, &e);
        if (r == 0) {
                /* The runner's options: one line of strict JSON; limits never above the server's. */
                if (!x.script || x.script_len > config.limits.script_max_bytes || jt_validate(body, size, 128) != 0 ||
                    !x.options.data || memchr(x.options.data, '\n', x.options.len) ||
                    jt_validate(x.options.data, x.options.len, 256) != 0 || !sb_limits_within(&x.limits, &config.limits))
                        abort();
                exec_request_free(&x);
        } else if (r != -1 || x.script || (e.status != 400 && e.status != 413) ||
                   !memchr(e.message, '\0', sizeof(e.message))) {
                abort();
        } else if (strcmp(e.kind, "invalid_json") == 0 && !memchr(body, '\0', size) &&
                   jt_validate(body, size, 100) == 0) {
                abort(); /* json-c refused what the validator calls JSON (depth well in the limit) */
        }
        free(body);
        return 0;
}
