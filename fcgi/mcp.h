/* mcp.h — POST /mcp: pyexec as a Model Context Protocol server (README, "MCP").
 *
 * The Streamable HTTP transport of MCP revisions 2025-06-18 and 2025-03-26, stateless: every
 * POST carries one JSON-RPC 2.0 message and gets its answer as application/json (no session,
 * no event stream). One tool, run_python, whose arguments are an /execute request and whose
 * call goes through exactly the /execute path (the caller's execute function). Pure: nothing
 * here touches libfcgi, so all of it is unit-tested. */
#ifndef PYEXEC_MCP_H
#define PYEXEC_MCP_H

#include <stddef.h>

#include "http.h"
#include "reply.h"
#include "sandbox.h"

#define MCP_SERVER_NAME "pyexec"
#define MCP_SERVER_VERSION "1.0.0" /* the API's: nginx/openapi.json's info.version */
#define MCP_TOOL_NAME "run_python"

/* The protocol revisions spoken, the newest first (what initialize offers when the client's
 * is not one of them). */
extern const char *const mcp_protocol_versions[];
extern const size_t mcp_protocol_version_count;

/* What a tools/call does with its arguments: serve.c's /execute path. body[0..len) is an
 * /execute body (NUL-terminated); 0 with *answer the /execute answer's JSON (the script ran),
 * or -1 with *e what /execute would have answered instead (400 or 413: the request is wrong;
 * 503 busy; 500 sandbox_error or internal_error). */
typedef int (*mcp_execute_fn)(void *ctx, const char *body, size_t len, struct sbuf *answer, struct api_error *e);

struct mcp_env {
        const struct sb_config *config; /* the limits the tool's description gives */
        mcp_execute_fn execute;
        void *ctx;
};

/* Answers one POST /mcp body[0..len) (NUL-terminated) into *a (status, kind, body; *a's body
 * is empty on entry). version: the MCP-Protocol-Version header, or NULL. The answer:
 *   200  a JSON-RPC response: a result, or an error for a method not found (-32601), invalid
 *        params (-32602), or a tools/call the pool could not run (busy -32000, sandbox or
 *        internal error -32603; data.error_kind says which). A script that failed, or
 *        arguments /execute refuses, is a result with isError: true.
 *   202  no body: a notification, or a response (accepted, and nothing to do).
 *   400  a JSON-RPC error with id null (or the request's): not JSON (-32700), not one JSON-RPC
 *        message (-32600; batches included), an unsupported MCP-Protocol-Version (-32000).
 * a->kind is "ok", or the error_kind of the error for the log and the metrics. */
void mcp_handle(const char *body, size_t len, const char *version, const struct mcp_env *env, struct reply *a);

/* The tools/list result ({"tools": [...]}) as JSON text, built once per process from the
 * config and the embedded nginx/openapi.json; NULL out of memory. */
const char *mcp_tools_json(const struct sb_config *config);

#endif
