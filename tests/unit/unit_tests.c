/* unit_tests.c — C unit tests of the pure parts: JSON text (escaping, validation), request
 * validation, routing, error bodies, outcome bodies, the verdict, the config parser, /runtime,
 * the API keys file's parser and the match of a secret.
 *
 *   unit_tests            run all, end with "N passed, N failed"
 *   unit_tests --list     print the test names
 *   unit_tests NAME...    run only those (tests/test_unit.py runs each as a pytest case) */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../../fcgi/http.h"
#include "../../fcgi/keys.h"
#include "../../fcgi/request.h"
#include "../../fcgi/fields.h"
#include "../../fcgi/mcp.h"
#include "../../fcgi/reply.h"
#include "../../fcgi/stats.h"
#include "imports.h"
#include "internal.h"
#include "jsontext.h"
#include "sandbox.h"
#include "verdict.h"

static int failures;

#define CHECK(cond)                                                                          \
        do {                                                                                 \
                if (!(cond)) {                                                               \
                        fprintf(stderr, "  %s:%d: CHECK(%s) failed\n", __FILE__, __LINE__, #cond); \
                        failures++;                                                          \
                }                                                                            \
        } while (0)

#define CHECK_STR(got, want)                                                                          \
        do {                                                                                          \
                const char *g_ = (got), *w_ = (want);                                                 \
                if (!g_ || strcmp(g_, w_) != 0) {                                                     \
                        fprintf(stderr, "  %s:%d: got  %s\n  %*s want %s\n", __FILE__, __LINE__,       \
                                g_ ? g_ : "(null)", (int)strlen(__FILE__) + 6, "", w_);               \
                        failures++;                                                                   \
                }                                                                                     \
        } while (0)

/* jt_append_string of n bytes, as a C string the caller frees. */
static char *escaped(const char *s, size_t n)
{
        struct sbuf b = { 0 };
        if (jt_append_string(&b, s, n) < 0)
                abort();
        return b.data;
}

static bool valid(const char *s) { return jt_validate(s, strlen(s), 64) == 0; }

/* ---- jsontext -------------------------------------------------------------------------- */

static void test_escape_plain_and_specials(void)
{
        char *e = escaped("hi \"x\" \\ /", 10);
        CHECK_STR(e, "\"hi \\\"x\\\" \\\\ /\"");
        free(e);
        e = escaped("a\nb\tc\r\b\f", 8);
        CHECK_STR(e, "\"a\\nb\\tc\\r\\b\\f\"");
        free(e);
        e = escaped("\x01\x1f\x7f", 3);
        CHECK_STR(e, "\"\\u0001\\u001f\x7f\"");
        free(e);
}

static void test_escape_nul_byte_kept(void)
{
        char *e = escaped("a\0b", 3);
        CHECK_STR(e, "\"a\\u0000b\"");
        free(e);
}

static void test_escape_valid_utf8_passes(void)
{
        const char *s = "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80"; /* café € 😀 */
        char *e = escaped(s, strlen(s));
        struct sbuf want = { 0 };
        sbuf_printf(&want, "\"%s\"", s);
        CHECK_STR(e, want.data);
        sbuf_free(&want);
        free(e);
}

static void test_escape_invalid_utf8_replaced(void)
{
        /* lone continuation, truncated sequence, overlong '/', encoded surrogate, > U+10FFFF */
        const char *cases[][2] = {
                { "\x80", "\"\xef\xbf\xbd\"" },
                { "a\xc3", "\"a\xef\xbf\xbd\"" },
                { "\xc0\xaf", "\"\xef\xbf\xbd\xef\xbf\xbd\"" },
                { "\xed\xa0\x80", "\"\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\"" },
                { "\xf4\x90\x80\x80", "\"\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\"" },
                { "\xff\xfe", "\"\xef\xbf\xbd\xef\xbf\xbd\"" },
        };
        for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
                char *e = escaped(cases[i][0], strlen(cases[i][0]));
                CHECK_STR(e, cases[i][1]);
                CHECK(e && jt_validate(e, strlen(e), 4) == 0);
                free(e);
        }
}

static void test_escape_line_separators(void)
{
        char *e = escaped("\xe2\x80\xa8\xe2\x80\xa9", 6);
        CHECK_STR(e, "\"\\u2028\\u2029\"");
        free(e);
}

static void test_validate_accepts_json(void)
{
        const char *ok[] = { "1", " -0.5e+10 ", "\"x\"", "true", "false", "null", "[]", "{}", "[1, [2, {\"a\": null}]]",
                             "{\"a\": {\"b\": [true, false]}, \"c\": \"\\u00e9\\ud83d\\ude00\"}", "\"caf\xc3\xa9\"",
                             "123456789012345678901234567890" };
        for (size_t i = 0; i < ARRAY_SIZE(ok); i++) {
                if (!valid(ok[i]))
                        fprintf(stderr, "  rejected: %s\n", ok[i]);
                CHECK(valid(ok[i]));
        }
}

static void test_validate_rejects_non_json(void)
{
        const char *bad[] = { "", " ", "NaN", "Infinity", "-Infinity", "[1,]", "{\"a\":1,}", "[1 2]", "01", "1.", ".5",
                              "+1", "'x'", "\"a\nb\"", "\"\\x\"", "\"\\ud800\"", "\"\\udc00\"", "\"\xff\"",
                              "{1: 2}", "[1]]", "[[1]", "{\"a\"}", "tru", "nul", "1 2", "\"abc", "[\"a\":1]",
                              "{\"a\":1 \"b\":2}" };
        for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
                if (valid(bad[i]))
                        fprintf(stderr, "  accepted: %s\n", bad[i]);
                CHECK(!valid(bad[i]));
        }
}

static void test_validate_depth_limit(void)
{
        char deep[300];
        memset(deep, '[', 100);
        memset(deep + 100, ']', 100);
        deep[200] = '\0';
        CHECK(jt_validate(deep, 200, 100) == 0);
        CHECK(jt_validate(deep, 200, 99) == -EINVAL);
}

static int validate(const char *s) { return jt_validate(s, strlen(s), 64); }

static void test_validate_rejects_repeated_names(void)
{
        const char *bad[] = { "{\"a\": 1, \"a\": 2}", "{\"a\": 1, \"b\": 2, \"a\": 3}", "{\"a\": 1, \"\\u0061\": 2}",
                              "{\"\\u00e9\": 1, \"\xc3\xa9\": 2}", "{\"\\ud83d\\ude00\": 1, \"\xf0\x9f\x98\x80\": 2}",
                              "[1, {\"x\": {\"k\": 1, \"k\": [1]}}]", "{\"\\/\": 1, \"/\": 2}",
                              "{\"\": 1, \"\": 2}", "{\"a\\u0000\": 1, \"a\\u0000\": 2}" };
        for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
                int r = validate(bad[i]);
                if (r != -EEXIST)
                        fprintf(stderr, "  %d for: %s\n", r, bad[i]);
                CHECK(r == -EEXIST);
        }
        /* Grammar is checked to the end even after a repeated name; either error will do. */
        CHECK(validate("{\"a\": 1, \"a\": 2") < 0);
}

static void test_validate_names_are_per_object(void)
{
        const char *ok[] = { "{\"a\": {\"a\": 1}, \"b\": {\"a\": 2}}", "[{\"a\": 1}, {\"a\": 1}]",
                             "{\"a\": 1, \"A\": 2, \"a \": 3, \"a\\u0000\": 4, \"a\\u0000b\": 5}",
                             "{\"k\": {\"x\": 1, \"y\": 2}, \"x\": 3, \"y\": {}}" };
        for (size_t i = 0; i < ARRAY_SIZE(ok); i++) {
                int r = validate(ok[i]);
                if (r != 0)
                        fprintf(stderr, "  %d for: %s\n", r, ok[i]);
                CHECK(r == 0);
        }
        /* Many names in one object: all distinct, then one repeated at the very end. */
        struct sbuf b = { 0 };
        sbuf_puts(&b, "{");
        for (int i = 0; i < 5000; i++)
                sbuf_printf(&b, "%s\"k%d\": %d", i ? ", " : "", i, i);
        size_t open_len = b.len;
        sbuf_puts(&b, "}");
        CHECK(jt_validate(b.data, b.len, 4) == 0);
        b.len = open_len;
        sbuf_puts(&b, ", \"k2500\": 0}");
        CHECK(jt_validate(b.data, b.len, 4) == -EEXIST);
        sbuf_free(&b);
}

static void test_validate_number_range(void)
{
        const char *bad[] = { "1e999", "-1e999", "1e309", "1.8e308", "-1.8e308", "2E+308", "[1.5, 1e309]",
                              "{\"x\": 10e308}", "1000000000000000000000000000000000000000000000000000000000000000000000000"
                              "000000000000000000000000000000000000000000000000000000000000000000000000000000000000"
                              "000000000000000000000000000000000000000000000000000000000000000000000000000000000000"
                              "000000000000000000000000000000000000000000000000000000000000000000000000000000000000"
                              "0.0",
                              "0.00001e314", "1.7976931348623159e308", "1e99999999999999999999999" };
        for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
                int r = validate(bad[i]);
                if (r != -ERANGE)
                        fprintf(stderr, "  %d for: %s\n", r, bad[i]);
                CHECK(r == -ERANGE);
        }
        const char *ok[] = { "1e308", "1.7976931348623157e308", "-1.7976931348623157e308", "10e307", "0.001e311",
                             "0e999", "0.0e99999", "-0.0", "1e-999", "5e-324", "1e-99999999999999999999999",
                             "123.456e-7", "1000000000000000000000000000000000000000000000000000000000000000000000000"
                             "000000000000000000000000000000000000000000000000000000000000000000000000000000000000"
                             "000000000000000000000000000000000000000000000000000000000000000000000000000000000000"
                             "000000000000000000000000000000000000000000000000000000000000000000000000000000000000",
                             "-1797693134862315807937289714053034150799341327100378269361737789804449682927647509"
                             "4664901797758720709633028641669288791094655554785194040263065748867150582068190890"
                             "2000708383676273854845817711531764475730270069855571366959622842914819860834936475"
                             "2927190741684443655107043427115596995080930428801779041744977919999" };
        for (size_t i = 0; i < ARRAY_SIZE(ok); i++) {
                int r = validate(ok[i]);
                if (r != 0)
                        fprintf(stderr, "  %d for: %s\n", r, ok[i]);
                CHECK(r == 0);
        }
}

/* ---- http ------------------------------------------------------------------------------ */

static void test_route(void)
{
        const char *allow = NULL;
        CHECK(http_route("POST", "/execute", &allow) == ROUTE_EXECUTE);
        CHECK(http_route("GET", "/health", &allow) == ROUTE_HEALTH);
        CHECK(http_route("HEAD", "/healthz", &allow) == ROUTE_HEALTHZ);
        CHECK(http_route("GET", "/execute", &allow) == ROUTE_METHOD_NOT_ALLOWED);
        CHECK_STR(allow, "POST");
        CHECK(http_route("POST", "/health", &allow) == ROUTE_METHOD_NOT_ALLOWED);
        CHECK_STR(allow, "GET, HEAD");
        CHECK(http_route("POST", "/mcp", &allow) == ROUTE_MCP);
        CHECK(http_route("GET", "/mcp", &allow) == ROUTE_METHOD_NOT_ALLOWED);
        CHECK_STR(allow, "POST");
        CHECK(http_route("POST", "/mcp/", &allow) == ROUTE_NOT_FOUND);
        CHECK(http_route("POST", "/execute/", &allow) == ROUTE_NOT_FOUND);
        CHECK(http_route("GET", "/", &allow) == ROUTE_NOT_FOUND);
        CHECK(http_route(NULL, NULL, &allow) == ROUTE_NOT_FOUND);
}

static void test_content_type(void)
{
        CHECK(http_is_json_content_type("application/json"));
        CHECK(http_is_json_content_type("Application/JSON"));
        CHECK(http_is_json_content_type("application/json; charset=utf-8"));
        CHECK(http_is_json_content_type("application/json;charset=UTF-8"));
        CHECK(!http_is_json_content_type("application/jsonx"));
        CHECK(!http_is_json_content_type("text/plain"));
        CHECK(!http_is_json_content_type("application/x-www-form-urlencoded"));
        CHECK(!http_is_json_content_type(""));
        CHECK(!http_is_json_content_type(NULL));
}

static void test_error_body(void)
{
        struct api_error e;
        api_error_set(&e, 400, "invalid_request", "Request must contain '%s' field", "script");
        struct sbuf b = { 0 };
        CHECK(http_error_body(&e, &b) == 0);
        CHECK_STR(b.data, "{\"error\": \"Request must contain 'script' field\", \"stdout\": \"\", \"error_kind\": \"invalid_request\"}");
        CHECK(e.status == 400);
        CHECK(jt_validate(b.data, b.len, 4) == 0);
        sbuf_free(&b);
}

/* ---- request --------------------------------------------------------------------------- */

struct parsed {
        int r;
        char *script;
        size_t len;
        struct api_error e;
};

/* The script limit is 32 bytes here, to test it cheaply. */
static struct parsed parse(const char *body, size_t len)
{
        struct sb_config c;
        sb_config_default(&c);
        c.limits.script_max_bytes = 32;
        struct parsed p = { 0 };
        struct exec_request x;
        p.r = request_parse_execute(body, len, &c, &x, &p.e);
        p.script = x.script; /* the caller frees it */
        p.len = x.script_len;
        sbuf_free(&x.options);
        return p;
}

/* The optional fields: what the runner gets, and what is refused with which message. */
static void test_request_fields(void)
{
        struct sb_config c;
        sb_config_default(&c);
        struct exec_request x;
        struct api_error e;
        const char ok[] = "{\"script\": \"s\", \"input\": {\"a\": [1, 0.1]}, \"files\": {\"d/x.csv\": \"a,b\\n\", "
                          "\"b.bin\": {\"base64\": \"AP8=\"}}, \"return_files\": [\"**/*.csv\"], \"figures\": \"svg\", "
                          "\"limits\": {\"wall_time_s\": 2, \"memory_mb\": 100}, \"usage\": true}";
        CHECK(request_parse_execute(ok, sizeof(ok) - 1, &c, &x, &e) == 0);
        CHECK(x.usage && x.limits.wall_time_s == 2 && x.limits.memory_mb == 100 && x.limits.cpu_time_s == 10);
        CHECK(x.options.data && !strchr(x.options.data, '\n') && jt_validate(x.options.data, x.options.len, 8) == 0);
        static const char head[] = "{\"input\":{\"a\": [1, 0.1]},\"files\"";
        CHECK(strncmp(x.options.data, head, sizeof(head) - 1) == 0);
        exec_request_free(&x);
        /* input as written: a number past 64 bits stays itself; raw newlines become spaces. */
        const char big[] = "{\"input\" :\n[123456789012345678901234567890,\r\n\"a\\nb\"] , \"script\": \"s\"}";
        CHECK(request_parse_execute(big, sizeof(big) - 1, &c, &x, &e) == 0);
        CHECK_STR(x.options.data, "{\"input\":[123456789012345678901234567890,  \"a\\nb\"]}");
        exec_request_free(&x);
        static const struct {
                const char *body, *message;
        } refused[] = {
                { "{\"script\": \"s\", \"files\": {\"/etc/x\": \"\"}}", "files: \"/etc/x\": an absolute path" },
                { "{\"script\": \"s\", \"files\": {\"a/../b\": \"\"}}", "files: \"a/../b\": a '..' or '.'" },
                { "{\"script\": \"s\", \"files\": {\"a//b\": \"\"}}", "files: \"a//b\": an empty component" },
                { "{\"script\": \"s\", \"files\": {\"a\": \"\", \"a/b\": \"\"}}", "files: \"a\": also a directory" },
                { "{\"script\": \"s\", \"files\": {\"a\": {\"base64\": \"A===\"}}}", "files: \"a\": invalid base64" },
                { "{\"script\": \"s\", \"files\": {\"a\": 1}}", "files: \"a\": the content must be" },
                { "{\"script\": \"s\", \"files\": []}", "files: must be an object" },
                /* json-c would cut the name at the NUL, to "a" */
                { "{\"script\": \"s\", \"files\": {\"ok\": \"\\u0000\", \"a\\u0000b\": \"\"}}", "files: \"a\\u0000b\": a NUL byte" },
                { "{\"script\": \"s\", \"fil\\u0065s\": {\"a\": \"\"}}", "files: spell the member's name" },
                { "{\"script\": \"s\", \"return_files\": [\"../x\"]}", "return_files[0]: a '..'" },
                { "{\"script\": \"s\", \"figures\": \"jpg\"}", "figures: must be" },
                { "{\"script\": \"s\", \"limits\": {\"memory_mb\": 1024}}", "limits.memory_mb: 1024 is above the server's maximum of 512" },
                { "{\"script\": \"s\", \"limits\": {\"wall_time_s\": 0}}", "limits.wall_time_s: must be a positive" },
                { "{\"script\": \"s\", \"limits\": {\"cpu_time_s\": 1.5}}", "limits.cpu_time_s: must be a positive" },
                { "{\"script\": \"s\", \"limits\": {\"foo\": 1}}", "limits.foo: unknown limit" },
                { "{\"script\": \"s\", \"limits\": 3}", "limits: must be an object" },
                { "{\"script\": \"s\", \"usage\": \"yes\"}", "usage: must be true or false" },
        };
        for (size_t i = 0; i < ARRAY_SIZE(refused); i++) {
                int r = request_parse_execute(refused[i].body, strlen(refused[i].body), &c, &x, &e);
                CHECK(r == -1 && e.status == 400 && strncmp(e.message, refused[i].message, strlen(refused[i].message)) == 0);
                if (r == 0 || strncmp(e.message, refused[i].message, strlen(refused[i].message)) != 0)
                        fprintf(stderr, "  %s -> %s\n", refused[i].body, e.message);
                CHECK(x.script == NULL);
        }
}

static void test_request_valid(void)
{
        const char body[] = "{\"script\": \"def main():\\n\\treturn 1\", \"extra\": [1]}";
        struct parsed p = parse(body, sizeof(body) - 1);
        CHECK(p.r == 0);
        CHECK_STR(p.script, "def main():\n\treturn 1");
        CHECK(p.len == 21);
        free(p.script);
}

static void test_request_script_with_nul(void)
{
        const char body[] = "{\"script\": \"a\\u0000b\"}";
        struct parsed p = parse(body, sizeof(body) - 1);
        CHECK(p.r == 0);
        CHECK(p.len == 3 && p.script && memcmp(p.script, "a\0b", 3) == 0);
        free(p.script);
}

static void test_request_errors(void)
{
        const struct {
                const char *body;
                int status;
                const char *kind;
                const char *message; /* prefix */
        } cases[] = {
                { "not json", 400, "invalid_json", "Request body is not valid JSON" },
                { "{\"script\": \"x\"", 400, "invalid_json", "Request body is not valid JSON: unexpected end" },
                { "", 400, "invalid_json", "Request body is not valid JSON" },
                { "{\"script\": \"x\"} {}", 400, "invalid_json", "Request body is not valid JSON" },
                { "{\"script\": NaN}", 400, "invalid_json", "Request body is not valid JSON" },
                { "{\"script\": \"x\"}   \n", 0, NULL, NULL },
                { "{\"script\": \"\xff\"}", 400, "invalid_json", "Request body is not valid JSON" },
                { "[\"script\"]", 400, "invalid_request", "Request body must be a JSON object" },
                { "42", 400, "invalid_request", "Request body must be a JSON object" },
                { "{}", 400, "invalid_request", "Request must contain 'script' field" },
                { "{\"Script\": \"x\"}", 400, "invalid_request", "Request must contain 'script' field" },
                { "{\"script\": 1}", 400, "invalid_request", "'script' must be a string" },
                { "{\"script\": null}", 400, "invalid_request", "'script' must be a string" },
                { "{\"script\": \"123456789012345678901234567890123\"}", 413, "too_large", "Script too large: 33 bytes (limit 32 bytes)" },
                { "{\"script\": \"x\", \"n\": NaN}", 400, "invalid_json", "Request body is not valid JSON" },
        };
        for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
                struct parsed p = parse(cases[i].body, strlen(cases[i].body));
                if (cases[i].status == 0) { /* a valid body in the list, to keep the table honest */
                        CHECK(p.r == 0 && p.len == 1);
                        free(p.script);
                        continue;
                }
                CHECK(p.r == -1);
                CHECK(p.script == NULL);
                CHECK(p.e.status == cases[i].status);
                CHECK_STR(p.e.kind, cases[i].kind);
                if (strncmp(p.e.message, cases[i].message, strlen(cases[i].message)) != 0) {
                        fprintf(stderr, "  body %s: message '%s'\n", cases[i].body, p.e.message);
                        failures++;
                }
        }
}

static void test_request_raw_nul_rejected(void)
{
        const char body[] = "{\"script\": \"x\"}\0";
        struct parsed p = parse(body, sizeof(body) - 1);
        CHECK(p.r == -1 && p.e.status == 400);
        CHECK_STR(p.e.kind, "invalid_json");
}

static void test_request_deeply_nested_rejected(void)
{
        char body[200] = "{\"script\": \"x\", \"a\": ";
        size_t n = strlen(body);
        for (int i = 0; i < 60; i++)
                body[n++] = '[';
        body[n] = '\0';
        struct parsed p = parse(body, n);
        CHECK(p.r == -1 && p.e.status == 400);
}

/* ---- outcome bodies -------------------------------------------------------------------- */

static void test_outcome_ok_body(void)
{
        struct sb_outcome o = { .status = SB_OK };
        sbuf_puts(&o.result, "{\"sum\": 30}");
        sbuf_puts(&o.stdout_buf, "line\n\xff");
        struct sbuf b = { 0 };
        CHECK(sb_outcome_to_json(&o, false, &b) == 0);
        CHECK_STR(b.data, "{\"result\": {\"sum\": 30}, \"stdout\": \"line\\n\xef\xbf\xbd\"}");
        sbuf_free(&b);
        sb_outcome_free(&o);
}

static void test_outcome_error_body(void)
{
        struct sb_outcome o = { .status = SB_EXCEPTION, .stdout_truncated = true };
        sbuf_puts(&o.message, "ZeroDivisionError: division by zero");
        sbuf_puts(&o.traceback, "Traceback\n");
        struct sbuf b = { 0 };
        CHECK(sb_outcome_to_json(&o, false, &b) == 0);
        CHECK_STR(b.data, "{\"error\": \"ZeroDivisionError: division by zero\", \"stdout\": \"\", \"error_kind\": "
                          "\"exception\", \"traceback\": \"Traceback\\n\", \"stdout_truncated\": true}");
        sbuf_free(&b);
        sb_outcome_free(&o);
}

static void test_status_kinds_distinct(void)
{
        for (int a = SB_OK; a <= SB_CHANNEL_TAMPERED; a++)
                for (int b = a + 1; b <= SB_CHANNEL_TAMPERED; b++)
                        CHECK(strcmp(sb_status_kind(a), sb_status_kind(b)) != 0);
        CHECK_STR(sb_status_kind(SB_MEMORY_LIMIT), "memory_limit");
        CHECK_STR(sb_status_kind(SB_CHANNEL_TAMPERED), "channel_tampered");
}

/* ---- verdict --------------------------------------------------------------------------- */

static void test_signal_names(void)
{
        const struct {
                int sig;
                const char *name;
        } cases[] = { { SIGSEGV, "SIGSEGV" }, { SIGKILL, "SIGKILL" }, { SIGSYS, "SIGSYS" },
                      { SIGRTMIN, "SIGRTMIN" }, { SIGRTMIN + 3, "SIGRTMIN+3" }, { SIGRTMIN + 15, "SIGRTMIN+15" },
                      { SIGRTMAX - 14, "SIGRTMAX-14" }, { SIGRTMAX - 1, "SIGRTMAX-1" }, { SIGRTMAX, "SIGRTMAX" },
                      { 32, "SIG32" }, { 33, "SIG33" }, { 0, "SIG0" }, { 65, "SIG65" } };
        for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
                char name[SB_SIGNAME_MAX];
                sb_signal_name(cases[i].sig, name, sizeof(name));
                CHECK_STR(name, cases[i].name);
        }
}

/* sb_decide() on a result channel's bytes, as collected; status < 0: init's report never came. */
static struct sb_limits default_limits(void)
{
        struct sb_config c;
        sb_config_default(&c);
        return c.limits;
}

static void decide(struct sb_outcome *o, const struct sb_limits *l, const char *frame, size_t len, bool overflowed,
                   int status)
{
        memset(o, 0, sizeof(*o));
        struct sb_run_facts f = { .out = o, .frame_overflowed = overflowed, .cgroup_peak = -1 };
        (void)sbuf_append(&f.frame, frame, len);
        if (status >= 0) {
                struct sb_init_report rep = { .wait_status = status };
                rep.usage.ru_utime.tv_sec = 2;
                rep.usage.ru_maxrss = 4321;
                (void)sbuf_append(&f.status, &rep, sizeof(rep));
        }
        sb_decide(l, &f);
        sbuf_free(&f.frame);
        sbuf_free(&f.status);
}

static void test_decide_result_limit_is_exact(void)
{
        struct sb_limits l = default_limits();
        l.result_max_bytes = 16;
        struct sb_outcome o;
        const char at[] = "R123456789012 123456789\n\"xxxxxxxxxxxxxx\""; /* 16 bytes of JSON */
        decide(&o, &l, at, strlen(at), false, 0);
        CHECK(o.status == SB_OK && o.result.len == 16);
        sb_outcome_free(&o);
        const char over[] = "R1 2\n\"xxxxxxxxxxxxxxx\"";
        decide(&o, &l, over, strlen(over), false, -1);
        CHECK(o.status == SB_RESULT_TOO_LARGE);
        CHECK(o.cpu_ms == 1 && o.peak_rss_kb == 2); /* usage from the frame: no report came */
        sb_outcome_free(&o);
        /* The frame's room takes the longest header and the extras on top of the limit. */
        CHECK(sb_frame_max(&l, false, false) >= 16 + SB_FRAME_HEADER_MAX);
        l.result_max_bytes = 8u << 20;
        CHECK(sb_frame_max(&l, false, false) == (8u << 20) + SB_FRAME_HEADER_MAX);
        CHECK(sb_frame_max(&l, true, false) == (8u << 20) + sb_extras_max(&l) + SB_FRAME_HEADER_MAX);
        CHECK(sb_extras_max(&l) >= 2 * ((l.files_max_bytes + 2) / 3 * 4));
}

/* Extras before the value: the runner's members only, spliced into the answer. */
static void test_decide_extras(void)
{
        struct sb_limits l = default_limits();
        struct sb_outcome o;
        const char ok[] = "R1 2 34\n{\"figures\": [], \"files\": {\"a\": 1}}[1]";
        decide(&o, &l, ok, strlen(ok), false, 0);
        CHECK(o.status == SB_OK && o.result.len == 3 && o.extras.len == 32);
        struct sbuf b = { 0 };
        CHECK(sb_outcome_to_json(&o, true, &b) == 0 && jt_validate(b.data, b.len, 8) == 0);
        CHECK(strstr(b.data, "\"figures\": [], \"files\"") && strstr(b.data, "\"usage\": {\"wall_ms\""));
        sbuf_free(&b);
        sb_outcome_free(&o);
        static const char *forged[] = { "R1 2 16\n{\"result\": true}[1]", "R1 2 12\n{\"files\": 1}[1]",
                                        "R1 2 99\n{\"files\": {}}", "R1 2 12\n{\"files\": {}[1]" };
        for (size_t i = 0; i < ARRAY_SIZE(forged); i++) {
                decide(&o, &l, forged[i], strlen(forged[i]), false, 0);
                CHECK(o.status == SB_CHANNEL_TAMPERED && o.extras.len == 0);
                sb_outcome_free(&o);
        }
}

static void test_decide_keeps_usage_on_overflow(void)
{
        struct sb_limits l = default_limits();
        struct sb_outcome o;
        decide(&o, &l, "R250 9000\n\"aaaa", 15, true, -1);
        CHECK(o.status == SB_RESULT_TOO_LARGE);
        CHECK(o.cpu_ms == 250 && o.peak_rss_kb == 9000);
        sb_outcome_free(&o);
        decide(&o, &l, "R250 9000\n\"aaaa", 15, true, 0); /* the kernel's figures win */
        CHECK(o.status == SB_RESULT_TOO_LARGE);
        CHECK(o.cpu_ms == 2000 && o.peak_rss_kb == 4321);
        sb_outcome_free(&o);
}

static void test_decide_tampered_frames(void)
{
        struct sb_limits l = default_limits();
        const char *tampered[] = { "garbage", "R0 0\n1R0 0\n2", "R0 0\n", "R0 0\n1e999", "R0 0\n[-1e999]",
                                   "E0 0\n{}",
                                   "E0 0\n{\"kind\": \"exception\", \"kind\": \"no_main\", \"message\": \"m\"}",
                                   "X0 0\n1", "R\n1" };
        for (size_t i = 0; i < ARRAY_SIZE(tampered); i++) {
                struct sb_outcome o;
                decide(&o, &l, tampered[i], strlen(tampered[i]), false, 0);
                if (o.status != SB_CHANNEL_TAMPERED)
                        fprintf(stderr, "  %s for: %s\n", sb_status_kind(o.status), tampered[i]);
                CHECK(o.status == SB_CHANNEL_TAMPERED);
                sb_outcome_free(&o);
        }
        /* An error frame bigger than the runner ever writes, though the result limit is bigger. */
        struct sbuf big = { 0 };
        sbuf_puts(&big, "E0 0\n{\"kind\": \"exception\", \"message\": \"");
        for (size_t i = 0; i < SB_ERROR_FRAME_MAX; i++)
                sbuf_puts(&big, "m");
        sbuf_puts(&big, "\", \"traceback\": \"\"}");
        struct sb_outcome o;
        decide(&o, &l, big.data, big.len, false, 0);
        CHECK(o.status == SB_CHANNEL_TAMPERED);
        sb_outcome_free(&o);
        sbuf_free(&big);
}

static void test_decide_repeated_names_not_serializable(void)
{
        struct sb_limits l = default_limits();
        struct sb_outcome o;
        const char frame[] = "R0 0\n{\"1\": \"int\", \"1\": \"str\"}";
        decide(&o, &l, frame, strlen(frame), false, 0);
        CHECK(o.status == SB_NOT_SERIALIZABLE);
        CHECK_STR(o.message.data, "main() function must return JSON serializable data: a dict has keys that become "
                                  "the same JSON name (such as 1 and \"1\")");
        sb_outcome_free(&o);
}

static void test_decide_real_time_signal(void)
{
        struct sb_limits l = default_limits();
        struct sb_outcome o;
        decide(&o, &l, "", 0, false, SIGRTMIN + 3); /* a wait status of "killed by signal 37" */
        CHECK(o.status == SB_KILLED && o.term_signal == SIGRTMIN + 3);
        CHECK_STR(o.message.data, "Script execution error: killed by signal SIGRTMIN+3");
        sb_outcome_free(&o);
}

/* ---- verdict --------------------------------------------------------------------------- */

/* sb_decide() on a status report and a frame; the caller frees *o. */
static void decide_report(const struct sb_init_report *rep, const char *frame, struct sb_outcome *o)
{
        struct sb_limits l = default_limits();
        *o = (struct sb_outcome){ 0 };
        struct sb_run_facts f = { .out = o, .cgroup_peak = -1, .cgroup_cpu_ms = -1 };
        sbuf_append(&f.status, rep, sizeof(*rep));
        sbuf_puts(&f.frame, frame);
        sb_decide(&l, &f);
        sbuf_free(&f.status);
        sbuf_free(&f.frame);
}

/* A corrupt report's figures are clamped, not multiplied past LLONG_MAX (undefined behaviour,
 * which the sanitizer build's unit run catches): tests/fuzz/corpus/verdict/crash-*. */
static void test_decide_corrupt_report_does_not_overflow(void)
{
        struct sb_init_report rep = { .wait_status = 0 };
        rep.usage.ru_utime.tv_sec = 1L << 62;
        rep.usage.ru_stime.tv_sec = 1L << 62;
        rep.usage.ru_maxrss = 1L << 60;
        struct sb_outcome o;
        decide_report(&rep, "R1 1\n[1]", &o);
        CHECK(o.status == SB_OK);
        CHECK(o.cpu_ms == 2 * (1LL << 40) * 1000);
        sb_outcome_free(&o);
        /* Killed at the CPU limit with a huge resident set: the memory ceiling, as before. */
        rep.wait_status = SIGKILL;
        decide_report(&rep, "", &o);
        CHECK(o.status == SB_MEMORY_LIMIT);
        sb_outcome_free(&o);
        rep.usage.ru_maxrss = 1000;
        decide_report(&rep, "", &o);
        CHECK(o.status == SB_TIMEOUT);
        sb_outcome_free(&o);
}

/* ---- config ---------------------------------------------------------------------------- */

static int load_bytes(struct sb_config *c, const char *text, size_t len, char *err, size_t errlen)
{
        char path[] = "/tmp/pyexec-unit-XXXXXX";
        int fd = mkstemp(path);
        if (fd < 0)
                abort();
        if (write_all(fd, text, len) < 0)
                abort();
        close(fd);
        int r = sb_config_load(c, path, err, errlen);
        unlink(path);
        return r;
}

static int load_text(struct sb_config *c, const char *text, char *err, size_t errlen)
{
        return load_bytes(c, text, strlen(text), err, errlen);
}

static void test_config_parse(void)
{
        struct sb_config c;
        sb_config_default(&c);
        char err[256] = "";
        CHECK(load_text(&c, "# c\n wall_time_s = 3  # x\n\nmemory_mb=256\n", err, sizeof(err)) == 0);
        CHECK(c.limits.wall_time_s == 3 && c.limits.memory_mb == 256 && c.limits.cpu_time_s == 10);
        CHECK(load_text(&c, "wall_time_s = 0\n", err, sizeof(err)) == -EINVAL);
        CHECK(strstr(err, "wall_time_s") != NULL);
        CHECK(load_text(&c, "wal_time_s = 3\n", err, sizeof(err)) == -EINVAL);
        CHECK(strstr(err, "unknown setting 'wal_time_s'") != NULL);
        CHECK(load_text(&c, "memory_mb = -5\n", err, sizeof(err)) == -EINVAL);
        CHECK(load_text(&c, "memory_mb = 12x\n", err, sizeof(err)) == -EINVAL);
        CHECK(load_text(&c, "memory_mb\n", err, sizeof(err)) == -EINVAL);
}

/* A setting past the 511th byte of a comment stays in the comment (it used to be read as a
 * line of its own), long lines load whole, and a NUL byte is refused: tests/fuzz/corpus/config. */
static void test_config_long_lines_and_nul(void)
{
        struct sb_config c;
        sb_config_default(&c);
        char err[256] = "", text[2100];
        snprintf(text, sizeof(text), "#%01000d wall_time_s = 1\n", 0);
        CHECK(load_text(&c, text, err, sizeof(err)) == 0);
        CHECK(c.limits.wall_time_s == 10);
        snprintf(text, sizeof(text), "wall_time_s = %01000d3 # %01000d\n", 0, 0);
        CHECK(load_text(&c, text, err, sizeof(err)) == 0);
        CHECK(c.limits.wall_time_s == 3);
        CHECK(load_bytes(&c, "memory_mb = 256\0 x\n", 18, err, sizeof(err)) == -EINVAL);
        CHECK(strstr(err, ":1: a NUL byte") != NULL);
}

static void test_config_shipped_file_matches_defaults(void)
{
        struct sb_config def, shipped;
        sb_config_default(&def);
        sb_config_default(&shipped);
        char err[256];
        int r = sb_config_load(&shipped, "config/pyexec.conf", err, sizeof(err));
        if (r < 0)
                fprintf(stderr, "  %s\n", err);
        CHECK(r == 0);
        CHECK(memcmp(&def, &shipped, sizeof(def)) == 0);
}

/* What --print-config writes loads back as the same settings (serve.sh reads it). */
static void test_config_print_round_trip(void)
{
        struct sb_config c, back;
        sb_config_default(&c);
        c.limits.wall_time_s = 7;
        snprintf(c.supply.warm_preload, sizeof(c.supply.warm_preload), "numpy scipy");
        char *text = NULL;
        size_t len = 0;
        FILE *f = open_memstream(&text, &len);
        CHECK(f && sb_config_print(&c, f) == 0);
        fclose(f);
        CHECK(strstr(text, "wall_time_s=7\n") && strstr(text, "warm_preload=numpy scipy\n"));
        sb_config_default(&back);
        back.limits.wall_time_s = 1;
        char err[256];
        CHECK(load_text(&back, text, err, sizeof(err)) == 0);
        CHECK(memcmp(&c, &back, sizeof(c)) == 0);
        free(text);
}

/* A directory standing for /etc with the given subuid and passwd contents. */
static void write_etc(const char *dir, const char *subuid, const char *passwd)
{
        char path[256];
        snprintf(path, sizeof(path), "%s/subuid", dir);
        CHECK(write_text_file(path, O_CREAT | O_TRUNC, subuid) == 0);
        snprintf(path, sizeof(path), "%s/passwd", dir);
        CHECK(write_text_file(path, O_CREAT | O_TRUNC, passwd) == 0);
}

static void test_config_uid_block_must_be_free(void)
{
        char dir[] = "/tmp/pyexec-etc-XXXXXX";
        CHECK(mkdtemp(dir) != NULL);
        struct sb_limits l = default_limits();
        char err[512] = "";
        /* Debian's first subordinate range, and users below the default block: free. */
        write_etc(dir, "alice:100000:65536\n", "root:x:0:0::/root:/bin/sh\nalice:x:1000:1000::/home/alice:/bin/sh\n");
        CHECK(sb_limits_check_ids(&l, dir, err, sizeof(err)) == 0);
        /* A block that meets the subordinate range, at either end. */
        l.uid_base = 100000 - 10;
        CHECK(sb_limits_check_ids(&l, dir, err, sizeof(err)) == -EEXIST);
        CHECK(strstr(err, "'alice'") && strstr(err, "subuid"));
        l.uid_base = 100000 + 65535;
        CHECK(sb_limits_check_ids(&l, dir, err, sizeof(err)) == -EEXIST);
        l.uid_base = 100000 + 65536;
        CHECK(sb_limits_check_ids(&l, dir, err, sizeof(err)) == 0);
        /* A block that holds a user's uid. */
        l.uid_base = 500;
        CHECK(sb_limits_check_ids(&l, dir, err, sizeof(err)) == -EEXIST);
        CHECK(strstr(err, "passwd"));
        char path[300];
        snprintf(path, sizeof(path), "%s/subuid", dir);
        unlink(path);
        snprintf(path, sizeof(path), "%s/passwd", dir);
        unlink(path);
        rmdir(dir);
}

/* ---- imports --------------------------------------------------------------------------- */

static int needed(const char *script) { return sb_preload_needed(script, strlen(script), "numpy pandas"); }

static void test_preload_needed(void)
{
        CHECK(needed("def main():\n    return 1\n") == 0);
        CHECK(needed("import math, json\n") == 0);
        CHECK(needed("import numpy as np\n") == 1);
        CHECK(needed("from numpy.linalg import norm\n") == 1);
        CHECK(needed("import os, numpy\n") == 1);
        CHECK(needed("def main():\n    import pandas as pd\n") == 2);
        CHECK(needed("import numpy; import pandas\n") == 2);
        CHECK(needed("import pandas\nimport numpy\n") == 2);
        CHECK(needed("from sklearn import linear_model\n") == 2); /* built on both */
        CHECK(needed("import seaborn as sns\n") == 2);
        CHECK(needed("import numpyish\n") == 0);   /* another package */
        CHECK(needed("x = 'important'\nimported = 1\n") == 0);
        CHECK(needed("import\n") == 0);
        CHECK(sb_preload_needed("import pandas", 13, "") == 0);
        CHECK(needed("\xef\xbb\xbfimport numpy\n") == 1); /* after a byte-order mark, as the runner allows */
        CHECK(needed("x = 1\n\xef\xbb\xbfimport numpy\n") == 0); /* elsewhere it is not Python */
}

/* Groups: '|' separates the tiers' steps; a dotted entry counts for its package. */
static void test_preload_groups(void)
{
        static const char list[] = "numpy | pandas | scipy.stats sklearn matplotlib seaborn requests";
        char out[256];
        CHECK(sb_preload_count(list) == 3);
        CHECK(sb_preload_count("numpy pandas") == 2);
        CHECK(sb_preload_count("numpy,pandas") == 2);
        CHECK(sb_preload_count("") == 0);
        CHECK(sb_preload_count(" | numpy") == 1); /* an empty group is no group */
        sb_preload_prefix(list, 0, out, sizeof(out));
        CHECK(strcmp(out, "") == 0);
        sb_preload_prefix(list, 2, out, sizeof(out));
        CHECK(strcmp(out, "numpy pandas") == 0);
        sb_preload_prefix(list, 3, out, sizeof(out));
        CHECK(strcmp(out, "numpy pandas scipy.stats sklearn matplotlib seaborn requests") == 0);
        sb_preload_prefix(list, 9, out, sizeof(out));
        CHECK(strcmp(out, "numpy pandas scipy.stats sklearn matplotlib seaborn requests") == 0);
        sb_preload_prefix("numpy pandas", 1, out, sizeof(out));
        CHECK(strcmp(out, "numpy") == 0);
        CHECK(sb_preload_needed("import requests\n", 16, list) == 3);
        CHECK(sb_preload_needed("from scipy import stats\n", 24, list) == 3);
        CHECK(sb_preload_needed("import pandas\n", 14, list) == 2);
        CHECK(sb_preload_needed("import numpy\n", 13, list) == 1);
        CHECK(sb_preload_needed("import statsmodels\n", 19, list) == 3); /* built on them, named by none */
        CHECK(sb_preload_needed("import requestsx\n", 17, list) == 0);
        CHECK(sb_preload_needed("import requests\n", 16, "numpy pandas") == 0);
}

/* ---- /runtime --------------------------------------------------------------------------- */

/* The answer of GET /runtime for st, as a C string the caller frees; it must be one JSON value. */
static char *runtime_body(const struct pool_stats *st)
{
        struct sbuf b = { 0 };
        CHECK(stats_runtime(st, &b) == 0);
        CHECK(jt_validate(b.data, b.len, 8) == 0);
        return b.data;
}

static void test_runtime_inventory(void)
{
        static struct pool_stats st; /* a page's worth: not on the stack */
        char err[256];
        snprintf(st.runtime.cgroups, sizeof(st.runtime.cgroups), "v1");
        snprintf(st.runtime.mode, sizeof(st.runtime.mode), "warm");
        /* No inventory yet: the members are there all the same. */
        char *body = runtime_body(&st);
        CHECK(strstr(body, "\"python\": null, \"packages\": {}, \"limits\": {"));
        CHECK(strstr(body, "\"features\": [\"input\", \"inputs\", \"files\", \"return_files\", \"figures\", \"limits\", \"usage\"]}"));
        free(body);
        const char inv[] = "{\"python\": \"3.11.2\", \"packages\": {\"numpy\": \"1.24.2\", \"a\\\"b\": \"1\"}}";
        CHECK(stats_set_inventory(&st, inv, sizeof(inv) - 1, err, sizeof(err)) == 0);
        body = runtime_body(&st);
        CHECK(strstr(body, "\"python\": \"3.11.2\", \"packages\": {\"numpy\": \"1.24.2\", \"a\\\"b\": \"1\"}"));
        free(body);
}

static void test_runtime_inventory_refused(void)
{
        static struct pool_stats st;
        char err[256];
        const char *bad[] = { "[]", "{\"python\": 3, \"packages\": {}}", "{\"python\": \"3\"}",
                              "{\"python\": \"3\", \"packages\": []}", "{\"python\": \"3\", \"packages\": {\"x\": 1}}",
                              "{\"python\": \"3\", \"packages\": {}, \"more\": 1}", "{\"python\": " };
        for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
                CHECK(stats_set_inventory(&st, bad[i], strlen(bad[i]), err, sizeof(err)) == -EINVAL);
                CHECK(st.runtime.inventory[0] == '\0'); /* left as it was */
        }
        /* One that does not fit the shared page's room. */
        struct sbuf big = { 0 };
        CHECK(sbuf_puts(&big, "{\"python\": \"3\", \"packages\": {") == 0);
        for (int i = 0; i < 400; i++)
                CHECK(sbuf_printf(&big, "%s\"package%d\": \"1.0\"", i ? ", " : "", i) == 0);
        CHECK(sbuf_puts(&big, "}}") == 0);
        CHECK(stats_set_inventory(&st, big.data, big.len, err, sizeof(err)) == -E2BIG);
        CHECK(strstr(err, "room") && st.runtime.inventory[0] == '\0');
        sbuf_free(&big);
}

/* ---- mcp ------------------------------------------------------------------------------- */

/* The execute function of a test: what it was given, and what it answers (e.status 0: the
 * script "ran" and answered `answer`). */
struct fake_pool {
        char body[256];
        int calls;
        const char *answer;
        struct api_error e;
};

static int fake_execute(void *ctx, const char *body, size_t len, struct sbuf *answer, struct api_error *e)
{
        struct fake_pool *f = ctx;
        f->calls++;
        snprintf(f->body, sizeof(f->body), "%.*s", (int)len, body);
        CHECK(body[len] == '\0');
        if (f->e.status) {
                *e = f->e;
                return -1;
        }
        return sbuf_puts(answer, f->answer);
}

/* POSTs body to a fake /mcp; returns the answer's status, its body in *out (freed by the caller). */
static int mcp_post(struct fake_pool *f, const char *version, const char *body, struct sbuf *out, const char **kind)
{
        struct sb_config c;
        sb_config_default(&c);
        struct mcp_env env = { .config = &c, .execute = fake_execute, .ctx = f };
        struct reply a = { .status = 500, .kind = "internal_error" };
        mcp_handle(body, strlen(body), version, &env, &a);
        CHECK(!a.body.oom);
        CHECK(a.body.len == 0 || jt_validate(a.body.data, a.body.len, 64) == 0);
        *out = a.body;
        if (kind)
                *kind = a.kind;
        return a.status;
}

static void test_mcp_protocol(void)
{
        const struct {
                const char *version, *body;
                int status;
                const char *answer; /* exact */
        } cases[] = {
                { NULL, "{\"jsonrpc\": \"2.0\", \"id\": 1, \"method\": \"initialize\", \"params\": {\"protocolVersion\": \"2025-03-26\"}}", 200,
                  "{\"jsonrpc\": \"2.0\", \"id\": 1, \"result\": {\"protocolVersion\": \"2025-03-26\", \"capabilities\": {\"tools\": {}}, "
                  "\"serverInfo\": {\"name\": \"pyexec\", \"version\": \"1.0.0\"}}}" },
                { "1999-01-01", "{\"jsonrpc\": \"2.0\", \"id\": \"i\", \"method\": \"initialize\", \"params\": {\"protocolVersion\": \"2024-11-05\"}}", 200,
                  "{\"jsonrpc\": \"2.0\", \"id\": \"i\", \"result\": {\"protocolVersion\": \"2025-06-18\", \"capabilities\": {\"tools\": {}}, "
                  "\"serverInfo\": {\"name\": \"pyexec\", \"version\": \"1.0.0\"}}}" },
                { "2025-06-18", "{\"jsonrpc\": \"2.0\", \"id\": 1e2, \"method\": \"ping\"}", 200, "{\"jsonrpc\": \"2.0\", \"id\": 1e2, \"result\": {}}" },
                { NULL, "{\"jsonrpc\": \"2.0\", \"method\": \"notifications/initialized\"}", 202, "" },
                { NULL, "{\"jsonrpc\": \"2.0\", \"id\": 3, \"result\": {}}", 202, "" },
                { "2024-11-05", "{\"jsonrpc\": \"2.0\", \"id\": 2, \"method\": \"ping\"}", 400,
                  "{\"jsonrpc\": \"2.0\", \"id\": 2, \"error\": {\"code\": -32000, \"message\": \"Bad Request: unsupported "
                  "MCP-Protocol-Version 2024-11-05 (supported: 2025-06-18, 2025-03-26)\"}}" },
                { NULL, "{\"jsonrpc\": \"2.0\", \"id\": 5, \"method\": \"prompts/list\"}", 200,
                  "{\"jsonrpc\": \"2.0\", \"id\": 5, \"error\": {\"code\": -32601, \"message\": \"Method not found: prompts/list\"}}" },
                { NULL, "[{\"jsonrpc\": \"2.0\", \"id\": 5, \"method\": \"ping\"}]", 400,
                  "{\"jsonrpc\": \"2.0\", \"id\": null, \"error\": {\"code\": -32600, \"message\": \"Invalid Request: batches are "
                  "not supported; send one message per POST\"}}" },
                { NULL, "{\"jsonrpc\": \"2.0\", \"id\": 1, \"method\": \"ping\"", 400,
                  "{\"jsonrpc\": \"2.0\", \"id\": null, \"error\": {\"code\": -32700, \"message\": \"Parse error: Request body is "
                  "not valid JSON: unexpected end of data at byte 44\"}}" },
                { NULL, "{\"jsonrpc\": \"2.0\", \"id\": true, \"method\": \"ping\"}", 400,
                  "{\"jsonrpc\": \"2.0\", \"id\": null, \"error\": {\"code\": -32600, \"message\": \"Invalid Request: \\\"id\\\" "
                  "must be a string or a number\"}}" },
                { NULL, "{\"jsonrpc\": \"2.0\", \"id\": 4, \"method\": \"tools/call\", \"params\": {\"name\": \"x\"}}", 200,
                  "{\"jsonrpc\": \"2.0\", \"id\": 4, \"error\": {\"code\": -32602, \"message\": \"Unknown tool: x (this server "
                  "has run_python)\"}}" },
        };
        for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
                struct fake_pool f = { 0 };
                struct sbuf out;
                int status = mcp_post(&f, cases[i].version, cases[i].body, &out, NULL);
                CHECK(status == cases[i].status);
                CHECK_STR(out.data ? out.data : "", cases[i].answer);
                CHECK(f.calls == 0);
                sbuf_free(&out);
        }
}

static void test_mcp_tools_call(void)
{
        const char call[] = "{\"jsonrpc\": \"2.0\", \"id\": 9, \"method\": \"tools/call\", \"params\": {\"name\": \"run_python\", "
                            "\"arguments\": {\"script\": \"s\", \"input\": 123456789012345678901234567890}}}";
        struct fake_pool f = { .answer = "{\"result\": 123456789012345678901234567890, \"stdout\": \"hi\\n\", "
                                         "\"figures\": [{\"media_type\": \"image/png\", \"base64\": \"AA==\"}]}" };
        struct sbuf out;
        const char *kind;
        CHECK(mcp_post(&f, NULL, call, &out, &kind) == 200);
        CHECK(f.calls == 1);
        CHECK_STR(f.body, "{\"script\": \"s\", \"input\": 123456789012345678901234567890}");
        CHECK_STR(out.data, "{\"jsonrpc\": \"2.0\", \"id\": 9, \"result\": {\"content\": [{\"type\": \"text\", \"text\": \"hi\\n\"}, "
                            "{\"type\": \"text\", \"text\": \"123456789012345678901234567890\"}, {\"type\": \"image\", \"data\": "
                            "\"AA==\", \"mimeType\": \"image/png\"}], \"structuredContent\": {\"result\": "
                            "123456789012345678901234567890, \"stdout\": \"hi\\n\", \"figures\": [{\"media_type\": \"image/png\", "
                            "\"base64\": \"AA==\"}]}, \"isError\": false}}");
        sbuf_free(&out);

        /* refused by /execute's validation: a tool error */
        struct fake_pool refused = { 0 };
        api_error_set(&refused.e, 400, "invalid_request", "Request must contain 'script' field");
        CHECK(mcp_post(&refused, NULL, "{\"jsonrpc\": \"2.0\", \"id\": 1, \"method\": \"tools/call\", \"params\": {\"name\": "
                                       "\"run_python\"}}", &out, &kind) == 200);
        CHECK_STR(refused.body, "{}");
        CHECK_STR(kind, "invalid_request");
        CHECK_STR(out.data, "{\"jsonrpc\": \"2.0\", \"id\": 1, \"result\": {\"content\": [{\"type\": \"text\", \"text\": \"Request "
                            "must contain 'script' field\"}], \"structuredContent\": {\"error\": \"Request must contain 'script' "
                            "field\", \"stdout\": \"\", \"error_kind\": \"invalid_request\"}, \"isError\": true}}");
        sbuf_free(&out);

        /* not run: JSON-RPC errors with the kind */
        const struct {
                int status;
                const char *kind, *answer;
        } notrun[] = {
                { 503, "busy", "{\"jsonrpc\": \"2.0\", \"id\": 1, \"error\": {\"code\": -32000, \"message\": \"m\", \"data\": "
                               "{\"error_kind\": \"busy\"}}}" },
                { 500, "sandbox_error", "{\"jsonrpc\": \"2.0\", \"id\": 1, \"error\": {\"code\": -32603, \"message\": \"m\", "
                                        "\"data\": {\"error_kind\": \"sandbox_error\"}}}" },
        };
        for (size_t i = 0; i < ARRAY_SIZE(notrun); i++) {
                struct fake_pool p = { 0 };
                api_error_set(&p.e, notrun[i].status, notrun[i].kind, "m");
                CHECK(mcp_post(&p, NULL, "{\"jsonrpc\": \"2.0\", \"id\": 1, \"method\": \"tools/call\", \"params\": {\"name\": "
                                         "\"run_python\", \"arguments\": {}}}", &out, &kind) == 200);
                CHECK_STR(out.data, notrun[i].answer);
                CHECK_STR(kind, notrun[i].kind);
                sbuf_free(&out);
        }
}

static void test_mcp_tools_list(void)
{
        struct sb_config c;
        sb_config_default(&c);
        const char *tools = mcp_tools_json(&c);
        CHECK(tools && jt_validate(tools, strlen(tools), 64) == 0);
        CHECK(tools && strncmp(tools, "{\"tools\":[{\"name\":\"run_python\",", 31) == 0);
        CHECK(tools && !strstr(tools, "$ref") && strstr(tools, "\"inputSchema\":{\"type\":\"object\""));
        CHECK(tools && strstr(tools, "10 s wall clock, 10 s of CPU, 512 MiB of memory"));
}


/* ---- API keys ------------------------------------------------------------------------- */

static const struct key_limits key_defaults = { .rps = 5, .burst = 10, .concurrency = 2 };

static char *digest_hex(const char *secret)
{
        static char hex[2 * KEY_DIGEST_LEN + 1];
        uint8_t d[KEY_DIGEST_LEN];
        keys_digest(secret, strlen(secret), d);
        for (int i = 0; i < KEY_DIGEST_LEN; i++)
                snprintf(hex + 2 * i, 3, "%02x", d[i]);
        return hex;
}

static int parse_keys(const char *text, struct key_set *set, char *err, size_t errlen)
{
        return keys_parse(text, strlen(text), "keys", &key_defaults, set, err, errlen);
}

static void test_keys_sha256_known_answer(void)
{
        /* FIPS 180-2's "abc". */
        CHECK_STR(digest_hex("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

static void test_keys_parse_lines(void)
{
        static struct key_set set;
        char err[256], text[1024];
        char a[65], b[65];
        snprintf(a, sizeof(a), "%s", digest_hex("secret-a"));
        snprintf(b, sizeof(b), "%s", digest_hex("secret-b"));
        for (char *c = b; *c; c++)
                *c = (char)toupper((unsigned char)*c); /* either case of hex */
        snprintf(text, sizeof(text),
                 "# tenants\n\n  alice %s rps=1 burst=0 concurrency=3   # a comment\r\n\tbob.x-2_y\t%s\n", a, b);
        CHECK(parse_keys(text, &set, err, sizeof(err)) == 0);
        CHECK(set.count == 2);
        CHECK_STR(set.keys[0].id, "alice");
        CHECK(set.keys[0].limits.rps == 1 && set.keys[0].limits.burst == 0 && set.keys[0].limits.concurrency == 3);
        CHECK_STR(set.keys[1].id, "bob.x-2_y");
        CHECK(set.keys[1].limits.rps == 5 && set.keys[1].limits.burst == 10 && set.keys[1].limits.concurrency == 2);
        CHECK(keys_match(&set, "secret-a", 8) == 0);
        CHECK(keys_match(&set, "secret-b", 8) == 1);
        CHECK(keys_match(&set, "secret-c", 8) == -1);
        CHECK(keys_match(&set, "secret-", 7) == -1);
        CHECK(parse_keys("", &set, err, sizeof(err)) == 0 && set.count == 0);
        CHECK(keys_match(&set, "secret-a", 8) == -1);
}

static void test_keys_parse_errors(void)
{
        static struct key_set set;
        char a[65], text[1024], err[256];
        snprintf(a, sizeof(a), "%s", digest_hex("secret-a"));
        static const struct {
                const char *line; /* %s: a valid digest */
                const char *message;
        } bad[] = {
                { "alice\n", "expected the secret's SHA-256" },
                { "alice 1234\n", "expected the secret's SHA-256" },
                { "alice %.63sg\n", "expected the secret's SHA-256" },
                { "-alice %s\n", "is not a key id" },
                { "al/ice %s\n", "is not a key id" },
                { "al\"ice %s\n", "is not a key id" },
                { "a{b} %s\n", "is not a key id" },
                { "alice %s speed=3\n", "unknown option 'speed'" },
                { "alice %s rps\n", "rps: '' is not a whole number" },
                { "alice %s rps=-1\n", "rps: '-1' is not a whole number" },
                { "alice %s rps=100001\n", "from 0 to 100000" },
                { "alice %s rps=1x\n", "is not a whole number" },
                { "alice %s rps=1 rps=2\n", "'rps' given twice" },
                { "alice %s concurrency=99999999999999999999\n", "is not a whole number" },
        };
        for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wformat-nonliteral"
                snprintf(text, sizeof(text), bad[i].line, a); /* the table's own formats, each with one %s */
#pragma GCC diagnostic pop
                err[0] = '\0';
                CHECK(parse_keys(text, &set, err, sizeof(err)) == -EINVAL);
                if (!strstr(err, bad[i].message) || strncmp(err, "keys:1: ", 8) != 0)
                        fprintf(stderr, "  case %zu: %s\n", i, err);
                CHECK(strstr(err, bad[i].message) && strncmp(err, "keys:1: ", 8) == 0);
        }
        /* Duplicates: the same id, or the same secret under two ids. */
        snprintf(text, sizeof(text), "alice %s\nbob %s\n", a, digest_hex("x"));
        CHECK(parse_keys(text, &set, err, sizeof(err)) == 0);
        snprintf(text, sizeof(text), "alice %s\nalice %s\n", a, digest_hex("x"));
        CHECK(parse_keys(text, &set, err, sizeof(err)) == -EINVAL && strstr(err, "keys:2: key 'alice': the id is used twice"));
        snprintf(text, sizeof(text), "alice %s\n\nbob %s\n", a, a);
        CHECK(parse_keys(text, &set, err, sizeof(err)) == -EINVAL &&
              strstr(err, "keys:3: key 'bob': the same secret as key 'alice'"));
        /* A NUL byte, and an id one byte too long. */
        CHECK(keys_parse("alice\0x", 7, "keys", &key_defaults, &set, err, sizeof(err)) == -EINVAL && strstr(err, "NUL"));
        char id[KEY_ID_MAX + 2];
        memset(id, 'a', sizeof(id) - 1);
        id[KEY_ID_MAX + 1] = '\0';
        snprintf(text, sizeof(text), "%s %s\n", id, a);
        CHECK(parse_keys(text, &set, err, sizeof(err)) == -EINVAL && strstr(err, "is not a key id"));
        id[KEY_ID_MAX] = '\0';
        snprintf(text, sizeof(text), "%s %s\n", id, a);
        CHECK(parse_keys(text, &set, err, sizeof(err)) == 0);
}

static void test_keys_too_many(void)
{
        static struct key_set set;
        struct sbuf text = { 0 };
        for (int i = 0; i <= KEYS_MAX; i++) {
                char secret[32];
                snprintf(secret, sizeof(secret), "s%d", i);
                CHECK(sbuf_printf(&text, "k%d %s\n", i, digest_hex(secret)) == 0);
        }
        char err[256];
        CHECK(keys_parse(text.data, text.len, "keys", &key_defaults, &set, err, sizeof(err)) == -EINVAL);
        CHECK(strstr(err, "more than 1024 keys"));
        /* The last key, past the others: every digest is compared, the last one matches. */
        text.len = (size_t)(strrchr(text.data, 'k') - text.data);
        CHECK(keys_parse(text.data, text.len, "keys", &key_defaults, &set, err, sizeof(err)) == 0);
        CHECK(set.count == KEYS_MAX && keys_match(&set, "s1023", 5) == KEYS_MAX - 1 && keys_match(&set, "s0", 2) == 0);
        sbuf_free(&text);
}

static void test_keys_bearer(void)
{
        const char *s;
        size_t n;
        CHECK(keys_bearer("Bearer abc", &s, &n) == 0 && n == 3 && strncmp(s, "abc", 3) == 0);
        CHECK(keys_bearer("bearer   abc  ", &s, &n) == 0 && n == 3 && strncmp(s, "abc", 3) == 0);
        CHECK(keys_bearer(NULL, &s, &n) == -1);
        CHECK(keys_bearer("", &s, &n) == -1);
        CHECK(keys_bearer("Basic YWxpY2U6eA==", &s, &n) == -1);
        CHECK(keys_bearer("Bearer ", &s, &n) == -1);
        CHECK(keys_bearer("Bearerabc", &s, &n) == -1);
        char big[KEY_SECRET_MAX + 16];
        snprintf(big, sizeof(big), "Bearer %0*d", KEY_SECRET_MAX + 1, 0);
        CHECK(keys_bearer(big, &s, &n) == -1);
}

static void test_keys_new_secret_and_line(void)
{
        char a[KEY_SECRET_MAX + 1], b[KEY_SECRET_MAX + 1], line[512];
        CHECK(keys_new_secret(a, sizeof(a)) == 0 && keys_new_secret(b, sizeof(b)) == 0);
        CHECK(strlen(a) == 47 && strncmp(a, "pyx_", 4) == 0 && strcmp(a, b) != 0);
        CHECK(strspn(a + 4, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_") == 43);
        CHECK(keys_format_line("alice", a, "rps=2", line, sizeof(line)) == 0);
        static struct key_set set;
        char err[256];
        CHECK(parse_keys(line, &set, err, sizeof(err)) == 0 && set.count == 1 && set.keys[0].limits.rps == 2);
        CHECK(keys_match(&set, a, strlen(a)) == 0 && keys_match(&set, b, strlen(b)) == -1);
        CHECK(!strstr(line, a)); /* the line holds the digest, never the secret */
}

/* ---- runner ---------------------------------------------------------------------------- */

#define T(name) { #name, name }
static const struct {
        const char *name;
        void (*fn)(void);
} tests[] = {
        T(test_escape_plain_and_specials),
        T(test_escape_nul_byte_kept),
        T(test_escape_valid_utf8_passes),
        T(test_escape_invalid_utf8_replaced),
        T(test_escape_line_separators),
        T(test_validate_accepts_json),
        T(test_validate_rejects_non_json),
        T(test_validate_depth_limit),
        T(test_validate_rejects_repeated_names),
        T(test_validate_names_are_per_object),
        T(test_validate_number_range),
        T(test_route),
        T(test_content_type),
        T(test_mcp_protocol),
        T(test_mcp_tools_call),
        T(test_mcp_tools_list),
        T(test_error_body),
        T(test_request_valid),
        T(test_request_fields),
        T(test_decide_extras),
        T(test_request_script_with_nul),
        T(test_request_errors),
        T(test_request_raw_nul_rejected),
        T(test_request_deeply_nested_rejected),
        T(test_outcome_ok_body),
        T(test_outcome_error_body),
        T(test_status_kinds_distinct),
        T(test_signal_names),
        T(test_decide_result_limit_is_exact),
        T(test_decide_keeps_usage_on_overflow),
        T(test_decide_tampered_frames),
        T(test_decide_repeated_names_not_serializable),
        T(test_decide_real_time_signal),
        T(test_decide_corrupt_report_does_not_overflow),
        T(test_config_parse),
        T(test_config_long_lines_and_nul),
        T(test_config_uid_block_must_be_free),
        T(test_config_print_round_trip),
        T(test_config_shipped_file_matches_defaults),
        T(test_preload_needed),
        T(test_preload_groups),
        T(test_runtime_inventory),
        T(test_runtime_inventory_refused),
        T(test_keys_sha256_known_answer),
        T(test_keys_parse_lines),
        T(test_keys_parse_errors),
        T(test_keys_too_many),
        T(test_keys_bearer),
        T(test_keys_new_secret_and_line),
};

static bool run_one(size_t i)
{
        int before = failures;
        tests[i].fn();
        bool ok = failures == before;
        printf("%s %s\n", ok ? "PASS" : "FAIL", tests[i].name);
        return ok;
}

int main(int argc, char **argv)
{
        int passed = 0, failed = 0;
        if (argc == 2 && strcmp(argv[1], "--list") == 0) {
                for (size_t i = 0; i < ARRAY_SIZE(tests); i++)
                        puts(tests[i].name);
                return 0;
        }
        for (size_t i = 0; i < ARRAY_SIZE(tests); i++) {
                bool wanted = argc == 1;
                for (int a = 1; a < argc; a++)
                        wanted |= strcmp(argv[a], tests[i].name) == 0;
                if (!wanted)
                        continue;
                if (run_one(i))
                        passed++;
                else
                        failed++;
        }
        if (passed + failed == 0) {
                fprintf(stderr, "no such test\n");
                return 2;
        }
        printf("%d passed, %d failed\n", passed, failed);
        return failed ? 1 : 0;
}
