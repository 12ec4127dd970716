/* mcp.c — POST /mcp: the Model Context Protocol over Streamable HTTP, stateless (mcp.h).
 *
 * The body is parsed as strictly as /execute's (request_parse_json); ids and the tool's
 * arguments travel as the client wrote them (an integer past 64 bits stays exact), and a
 * tools/call's answer carries the /execute answer verbatim as structuredContent. */
#include "mcp.h"

#include <json-c/json.h>
#include <stdio.h>
#include <string.h>

#include "fields.h"
#include "jsontext.h"
#include "request.h"

extern const char pyexec_openapi_json[]; /* nginx/openapi.json (openapi_blob.S) */

const char *const mcp_protocol_versions[] = { "2025-06-18", "2025-03-26" };
const size_t mcp_protocol_version_count = ARRAY_SIZE(mcp_protocol_versions);

/* JSON-RPC 2.0's codes, and one of the server's own range for back-pressure. */
enum {
        RPC_PARSE_ERROR = -32700,
        RPC_INVALID_REQUEST = -32600,
        RPC_METHOD_NOT_FOUND = -32601,
        RPC_INVALID_PARAMS = -32602,
        RPC_INTERNAL_ERROR = -32603,
        RPC_BUSY = -32000, /* also an unsupported MCP-Protocol-Version, as the TypeScript SDK's server */
};

/* One message being answered. */
struct call {
        const char *body; /* as sent */
        size_t len;
        struct json_object *root, *params; /* params: NULL when absent */
        const char *method;
        struct sbuf id; /* the id's JSON text as sent; empty: unknown (null) */
        const struct mcp_env *env;
        struct reply *a;
};

static const char *id_text(const struct call *c)
{
        return c->id.len ? c->id.data : "null";
}

static const char *supported_version(const char *v)
{
        for (size_t i = 0; v && i < mcp_protocol_version_count; i++)
                if (strcmp(v, mcp_protocol_versions[i]) == 0)
                        return mcp_protocol_versions[i];
        return NULL;
}

/* ---- answers ---------------------------------------------------------------------------- */

/* {"jsonrpc": "2.0", "id": ..., "result": RESULT}, HTTP 200. */
static void answer_result(struct call *c, const struct sbuf *result, const char *kind)
{
        struct reply *a = c->a;
        reply_free(a);
        a->status = 200;
        a->kind = kind;
        (void)sbuf_printf(&a->body, "{\"jsonrpc\": \"2.0\", \"id\": %s, \"result\": ", id_text(c));
        (void)sbuf_append(&a->body, result->data ? result->data : "{}", result->data ? result->len : 2);
        (void)sbuf_puts(&a->body, "}");
        if (result->oom)
                a->body.oom = true;
}

/* {"jsonrpc": "2.0", "id": ..., "error": {"code", "message"[, "data": {"error_kind"}]}}. */
static void answer_error(struct call *c, int status, const char *kind, int code, const char *message,
                         const char *error_kind)
{
        struct reply *a = c->a;
        reply_free(a);
        a->status = status;
        a->kind = kind;
        (void)sbuf_printf(&a->body, "{\"jsonrpc\": \"2.0\", \"id\": %s, \"error\": {\"code\": %d, \"message\": ",
                          id_text(c), code);
        (void)jt_append_string(&a->body, message, strlen(message));
        if (error_kind)
                (void)sbuf_printf(&a->body, ", \"data\": {\"error_kind\": \"%s\"}", error_kind);
        (void)sbuf_puts(&a->body, "}}");
}

static void invalid_request(struct call *c, const char *message)
{
        answer_error(c, 400, "invalid_request", RPC_INVALID_REQUEST, message, NULL);
}

static void invalid_params(struct call *c, const char *message)
{
        answer_error(c, 200, "invalid_request", RPC_INVALID_PARAMS, message, NULL);
}

/* 202 Accepted, no body: a notification or a response. */
static void accepted(struct call *c)
{
        reply_free(c->a);
        c->a->status = 202;
        c->a->kind = "ok";
}

/* ---- the envelope ----------------------------------------------------------------------- */

/* The id, as the client wrote it (a name spelt with escapes: as json-c re-writes it). */
static int take_id(struct call *c, struct json_object *id)
{
        size_t start, end;
        if (fields_member_span(c->body, c->len, "id", &start, &end))
                return sbuf_append(&c->id, c->body + start, end - start);
        return sbuf_puts(&c->id, json_object_to_json_string_ext(id, JSON_C_TO_STRING_PLAIN));
}

/* Whether the message is one request to answer (0), or has been answered already (-1). */
static int read_envelope(struct call *c, const char *version)
{
        struct json_object *v;
        if (json_object_is_type(c->root, json_type_array))
                return invalid_request(c, "Invalid Request: batches are not supported; send one message per POST"), -1;
        if (!json_object_is_type(c->root, json_type_object))
                return invalid_request(c, "Invalid Request: a JSON-RPC message is an object"), -1;
        bool has_id = json_object_object_get_ex(c->root, "id", &v);
        if (has_id && !json_object_is_type(v, json_type_string) && !json_object_is_type(v, json_type_int) &&
            !json_object_is_type(v, json_type_double))
                return invalid_request(c, "Invalid Request: \"id\" must be a string or a number"), -1;
        if (has_id && take_id(c, v) < 0)
                return answer_error(c, 500, "internal_error", RPC_INTERNAL_ERROR, "Out of memory", NULL), -1;
        if (!json_object_object_get_ex(c->root, "jsonrpc", &v) || !json_object_is_type(v, json_type_string) ||
            strcmp(json_object_get_string(v), "2.0") != 0)
                return invalid_request(c, "Invalid Request: \"jsonrpc\" must be \"2.0\""), -1;
        bool has_method = json_object_object_get_ex(c->root, "method", &v);
        if (has_method && !json_object_is_type(v, json_type_string))
                return invalid_request(c, "Invalid Request: \"method\" must be a string"), -1;
        c->method = has_method ? json_object_get_string(v) : NULL;
        bool initialize = c->method && strcmp(c->method, "initialize") == 0;
        if (version && !initialize && !supported_version(version)) {
                char m[256];
                snprintf(m, sizeof(m), "Bad Request: unsupported MCP-Protocol-Version %.64s (supported: %s, %s)",
                         version, mcp_protocol_versions[0], mcp_protocol_versions[1]);
                return answer_error(c, 400, "invalid_request", RPC_BUSY, m, NULL), -1;
        }
        if (!c->method) { /* a response to a request of the server's: it sends none */
                if (has_id && (json_object_object_get_ex(c->root, "result", NULL) ||
                               json_object_object_get_ex(c->root, "error", NULL)))
                        return accepted(c), -1;
                return invalid_request(c, "Invalid Request: no \"method\""), -1;
        }
        if (!has_id) /* a notification: notifications/initialized, cancelled, ... */
                return accepted(c), -1;
        if (json_object_object_get_ex(c->root, "params", &c->params) && !json_object_is_type(c->params, json_type_object))
                return invalid_params(c, "Invalid params: \"params\" must be an object"), -1;
        return 0;
}

/* ---- initialize, ping ------------------------------------------------------------------- */

static void initialize(struct call *c)
{
        struct json_object *v;
        if (!c->params || !json_object_object_get_ex(c->params, "protocolVersion", &v) ||
            !json_object_is_type(v, json_type_string))
                return invalid_params(c, "Invalid params: initialize needs params.protocolVersion, a string");
        /* The client's revision when it is one of these; else the newest, which the client may
         * take or leave. */
        const char *version = supported_version(json_object_get_string(v));
        struct sbuf r = { 0 };
        (void)sbuf_printf(&r,
                          "{\"protocolVersion\": \"%s\", \"capabilities\": {\"tools\": {}}, "
                          "\"serverInfo\": {\"name\": \"%s\", \"version\": \"%s\"}}",
                          version ? version : mcp_protocol_versions[0], MCP_SERVER_NAME, MCP_SERVER_VERSION);
        answer_result(c, &r, "ok");
        sbuf_free(&r);
}

static void ping(struct call *c)
{
        struct sbuf r = { 0 };
        (void)sbuf_puts(&r, "{}");
        answer_result(c, &r, "ok");
        sbuf_free(&r);
}

/* ---- tools/list ------------------------------------------------------------------------- */

/* A copy of schema with every {"$ref": "#/components/schemas/X"} replaced by X (resolved too,
 * with the $ref's sibling members over it): an inputSchema stands alone. NULL on failure. */
static struct json_object *resolve(struct json_object *schema, struct json_object *schemas, int depth)
{
        struct json_object *ref, *out = NULL;
        if (depth > 32)
                return NULL;
        if (json_object_is_type(schema, json_type_object) && json_object_object_get_ex(schema, "$ref", &ref)) {
                const char *name = strrchr(json_object_get_string(ref), '/'), *prefix = "#/components/schemas/";
                struct json_object *target;
                if (!name || strncmp(json_object_get_string(ref), prefix, strlen(prefix)) != 0 ||
                    !json_object_object_get_ex(schemas, name + 1, &target))
                        return NULL;
                out = resolve(target, schemas, depth + 1);
        } else if (json_object_is_type(schema, json_type_object)) {
                out = json_object_new_object();
        } else if (json_object_is_type(schema, json_type_array)) {
                out = json_object_new_array();
                for (size_t i = 0; out && i < json_object_array_length(schema); i++) {
                        struct json_object *item = resolve(json_object_array_get_idx(schema, i), schemas, depth + 1);
                        if (!item || json_object_array_add(out, item) < 0)
                                json_object_put(item), json_object_put(out), out = NULL;
                }
                return out;
        } else {
                return json_object_get(schema); /* a string, number or boolean: shared */
        }
        json_object_object_foreach(schema, key, value)
        {
                if (!out || strcmp(key, "$ref") == 0)
                        continue;
                struct json_object *copy = resolve(value, schemas, depth + 1);
                if (!copy || json_object_object_add(out, key, copy) < 0)
                        json_object_put(copy), json_object_put(out), out = NULL;
        }
        return out;
}

/* The ExecuteRequest schema of the embedded OpenAPI document, resolved; NULL on failure. */
static struct json_object *input_schema(void)
{
        struct json_object *doc = json_tokener_parse(pyexec_openapi_json), *components, *schemas, *req;
        struct json_object *out = NULL;
        if (json_object_object_get_ex(doc, "components", &components) &&
            json_object_object_get_ex(components, "schemas", &schemas) &&
            json_object_object_get_ex(schemas, "ExecuteRequest", &req))
                out = resolve(req, schemas, 0);
        json_object_put(doc);
        return out;
}

static const char description[] =
        "Run a Python 3 script in a fresh, isolated sandbox and get back what its main() returned and "
        "everything it printed.\n\n"
        "Contract: `script` must define main(). The module body runs first, then main() is called once "
        "(as main(input) when `input` is given) and its return value comes back as JSON: return plain "
        "data (numbers, strings, lists, dicts; numpy scalars and arrays are converted; NaN becomes null). "
        "print() output is returned too. The script may import the standard library, numpy, pandas, scipy, "
        "scikit-learn, matplotlib (headless), seaborn and requests; there is no network access and nothing "
        "else can be installed. Files given in `files` are written into the working directory, /tmp, "
        "before the script runs (so open(\"data.csv\") works); `return_files` (glob patterns relative to "
        "/tmp) sends files back; `figures` (\"png\" or \"svg\") sends back every matplotlib figure still "
        "open when main() returns, as images. Nothing persists between calls.\n\n"
        "Limits of one run: %u s wall clock, %u s of CPU, %lu MiB of memory, %u processes, %zu bytes of "
        "printed output kept, %zu bytes of result, %lu MiB in /tmp; `limits` can lower them, never raise "
        "them. A script that fails (an exception, a syntax error, no main(), a timeout, the memory limit) "
        "gives a result with isError true: the error message and the traceback, and what it printed.";

static struct json_object *tool(const struct sb_config *cfg)
{
        const struct sb_limits *l = &cfg->limits;
        char text[sizeof(description) + 256];
        snprintf(text, sizeof(text), description, l->wall_time_s, l->cpu_time_s, l->memory_mb, l->max_processes,
                 l->stdout_max_bytes, l->result_max_bytes, l->tmp_size_mb);
        struct json_object *t = json_object_new_object(), *notes = json_object_new_object();
        struct json_object *schema = input_schema();
        if (!t || !notes || !schema) {
                json_object_put(t), json_object_put(notes), json_object_put(schema);
                return NULL;
        }
        json_object_object_add(t, "name", json_object_new_string(MCP_TOOL_NAME));
        json_object_object_add(t, "title", json_object_new_string("Run Python"));
        json_object_object_add(t, "description", json_object_new_string(text));
        json_object_object_add(t, "inputSchema", schema);
        /* Hints for clients: it changes nothing outside its sandbox and reaches no network. */
        json_object_object_add(notes, "title", json_object_new_string("Run Python"));
        json_object_object_add(notes, "readOnlyHint", json_object_new_boolean(1));
        json_object_object_add(notes, "openWorldHint", json_object_new_boolean(0));
        json_object_object_add(t, "annotations", notes);
        return t;
}

const char *mcp_tools_json(const struct sb_config *config)
{
        static struct sbuf text;
        if (text.len)
                return text.data;
        struct json_object *list = json_object_new_object(), *tools = json_object_new_array(), *t = tool(config);
        if (list && tools && t && json_object_array_add(tools, t) == 0) {
                t = NULL;
                json_object_object_add(list, "tools", tools);
                tools = NULL;
                const char *s = json_object_to_json_string_ext(list, JSON_C_TO_STRING_PLAIN |
                                                                              JSON_C_TO_STRING_NOSLASHESCAPE);
                if (s && (sbuf_puts(&text, s) < 0 || text.oom))
                        sbuf_free(&text);
        }
        json_object_put(t), json_object_put(tools), json_object_put(list);
        return text.len ? text.data : NULL;
}

static void list_tools(struct call *c)
{
        const char *tools = mcp_tools_json(c->env->config);
        if (!tools)
                return answer_error(c, 500, "internal_error", RPC_INTERNAL_ERROR, "Out of memory", NULL);
        struct sbuf r = { .data = (char *)tools, .len = strlen(tools) };
        answer_result(c, &r, "ok");
}

/* ---- tools/call ------------------------------------------------------------------------- */

/* A JSON string member of obj, appended as {"type": "text", "text": ...}. */
static void text_item(struct sbuf *r, const char *text, size_t len, bool *first)
{
        (void)sbuf_puts(r, *first ? "{\"type\": \"text\", \"text\": " : ", {\"type\": \"text\", \"text\": ");
        (void)jt_append_string(r, text, len);
        (void)sbuf_puts(r, "}");
        *first = false;
}

static const char *string_member(struct json_object *obj, const char *name, size_t *len)
{
        struct json_object *v;
        if (!json_object_object_get_ex(obj, name, &v) || !json_object_is_type(v, json_type_string))
                return *len = 0, NULL;
        *len = (size_t)json_object_get_string_len(v);
        return json_object_get_string(v);
}

/* The second text item: the result's JSON as written (a batch's "results"), or the error with
 * its traceback. */
static void outcome_item(struct sbuf *r, const struct sbuf *answer, struct json_object *root, bool *first)
{
        size_t n, tb_len, start, end;
        const char *error = string_member(root, "error", &n), *tb = string_member(root, "traceback", &tb_len);
        if (!error) {
                if (fields_member_span(answer->data, answer->len, "result", &start, &end) ||
                    fields_member_span(answer->data, answer->len, "results", &start, &end))
                        text_item(r, answer->data + start, end - start, first);
                return;
        }
        struct sbuf text = { 0 };
        (void)sbuf_append(&text, error, n);
        if (tb && tb_len) {
                (void)sbuf_puts(&text, "\n\n");
                (void)sbuf_append(&text, tb, tb_len);
        }
        text_item(r, text.data ? text.data : "", text.len, first);
        if (text.oom)
                r->oom = true;
        sbuf_free(&text);
}

static void image_items(struct sbuf *r, struct json_object *root, bool *first)
{
        struct json_object *figures;
        if (!json_object_object_get_ex(root, "figures", &figures) || !json_object_is_type(figures, json_type_array))
                return;
        for (size_t i = 0; i < json_object_array_length(figures); i++) {
                struct json_object *f = json_object_array_get_idx(figures, i);
                size_t n, m;
                const char *data = string_member(f, "base64", &n), *type = string_member(f, "media_type", &m);
                if (!data || !type)
                        continue;
                (void)sbuf_puts(r, *first ? "{\"type\": \"image\", \"data\": " : ", {\"type\": \"image\", \"data\": ");
                (void)jt_append_string(r, data, n);
                (void)sbuf_puts(r, ", \"mimeType\": ");
                (void)jt_append_string(r, type, m);
                (void)sbuf_puts(r, "}");
                *first = false;
        }
}

/* The script ran: content (stdout, the result or the error, the figures), the /execute answer
 * as structuredContent, isError when the script failed. */
static void tool_ran(struct call *c, const struct sbuf *answer)
{
        struct json_object *root = json_tokener_parse(answer->data);
        if (!json_object_is_type(root, json_type_object)) {
                json_object_put(root);
                return answer_error(c, 500, "internal_error", RPC_INTERNAL_ERROR, "Could not read the answer", NULL);
        }
        struct sbuf r = { 0 };
        bool first = true;
        size_t n;
        const char *out = string_member(root, "stdout", &n);
        (void)sbuf_puts(&r, "{\"content\": [");
        if (out && n)
                text_item(&r, out, n, &first);
        outcome_item(&r, answer, root, &first);
        image_items(&r, root, &first);
        (void)sbuf_puts(&r, "], \"structuredContent\": ");
        (void)sbuf_append(&r, answer->data, answer->len);
        (void)sbuf_printf(&r, ", \"isError\": %s}", json_object_object_get_ex(root, "error", NULL) ? "true" : "false");
        json_object_put(root);
        answer_result(c, &r, "ok");
        sbuf_free(&r);
}

/* /execute refused the arguments (400, 413): a tool error the model can act on. */
static void tool_refused(struct call *c, const struct api_error *e)
{
        struct sbuf r = { 0 }, body = { 0 };
        bool first = true;
        (void)sbuf_puts(&r, "{\"content\": [");
        text_item(&r, e->message, strlen(e->message), &first);
        (void)http_error_body(e, &body);
        (void)sbuf_puts(&r, "], \"structuredContent\": ");
        (void)sbuf_append(&r, body.data ? body.data : "{}", body.data ? body.len : 2);
        (void)sbuf_puts(&r, ", \"isError\": true}");
        if (body.oom)
                r.oom = true;
        answer_result(c, &r, e->kind);
        sbuf_free(&r);
        sbuf_free(&body);
}

/* The arguments as the client wrote them, into out (NUL-terminated); "{}" when absent. */
static int arguments_text(const struct call *c, struct json_object *args, struct sbuf *out)
{
        size_t ps, pe, as, ae;
        if (!args)
                return sbuf_puts(out, "{}");
        if (fields_member_span(c->body, c->len, "params", &ps, &pe) &&
            fields_member_span(c->body + ps, pe - ps, "arguments", &as, &ae))
                return sbuf_append(out, c->body + ps + as, ae - as);
        return sbuf_puts(out, json_object_to_json_string_ext(args, JSON_C_TO_STRING_PLAIN));
}

static void call_tool(struct call *c)
{
        struct json_object *v, *args = NULL;
        if (!c->params || !json_object_object_get_ex(c->params, "name", &v) || !json_object_is_type(v, json_type_string))
                return invalid_params(c, "Invalid params: tools/call needs params.name, a string");
        if (strcmp(json_object_get_string(v), MCP_TOOL_NAME) != 0) {
                char m[160];
                snprintf(m, sizeof(m), "Unknown tool: %.100s (this server has %s)", json_object_get_string(v),
                         MCP_TOOL_NAME);
                return invalid_params(c, m);
        }
        if (json_object_object_get_ex(c->params, "arguments", &args) && !json_object_is_type(args, json_type_object))
                return invalid_params(c, "Invalid params: params.arguments must be an object");
        struct sbuf text = { 0 }, answer = { 0 };
        struct api_error e;
        if (arguments_text(c, args, &text) < 0 || text.oom) {
                sbuf_free(&text);
                return answer_error(c, 500, "internal_error", RPC_INTERNAL_ERROR, "Out of memory", NULL);
        }
        int r = c->env->execute(c->env->ctx, text.data, text.len, &answer, &e);
        sbuf_free(&text);
        if (r == 0)
                tool_ran(c, &answer);
        else if (e.status == 400 || e.status == 413)
                tool_refused(c, &e);
        else /* not run: busy, or the sandbox could not be made */
                answer_error(c, 200, e.kind, e.status == 503 ? RPC_BUSY : RPC_INTERNAL_ERROR, e.message, e.kind);
        sbuf_free(&answer);
}

/* ---- the whole -------------------------------------------------------------------------- */

static void dispatch(struct call *c)
{
        if (strcmp(c->method, "initialize") == 0)
                return initialize(c);
        if (strcmp(c->method, "ping") == 0)
                return ping(c);
        if (strcmp(c->method, "tools/list") == 0)
                return list_tools(c);
        if (strcmp(c->method, "tools/call") == 0)
                return call_tool(c);
        char m[160];
        snprintf(m, sizeof(m), "Method not found: %.100s", c->method);
        answer_error(c, 200, "invalid_request", RPC_METHOD_NOT_FOUND, m, NULL);
}

void mcp_handle(const char *body, size_t len, const char *version, const struct mcp_env *env, struct reply *a)
{
        struct api_error e;
        struct call c = { .body = body, .len = len, .env = env, .a = a };
        if (request_parse_json(body, len, env->config, &c.root, &e) < 0) {
                if (e.status != 400)
                        return reply_error(a, &e);
                char m[sizeof(e.message) + 16];
                snprintf(m, sizeof(m), "Parse error: %s", e.message);
                return answer_error(&c, 400, e.kind, RPC_PARSE_ERROR, m, NULL);
        }
        if (read_envelope(&c, version && *version ? version : NULL) == 0)
                dispatch(&c);
        json_object_put(c.root);
        sbuf_free(&c.id);
}
