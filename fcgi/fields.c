/* fields.c — the optional members of an /execute request: input, files, return_files, figures,
 * limits and usage (README, "Request fields"). Each is checked here, in the worker, so that a
 * wrong one is a 400 naming it before any sandbox is made; what passes becomes the runner's
 * options (one line of JSON) and the job's limits. */
#include "fields.h"

#include <errno.h>
#include <limits.h>
#include <stdint.h>
#include <string.h>

/* ---- paths and patterns ---------------------------------------------------------------- */

int fields_check_path(const char *path, size_t len, bool pattern, const char **why)
{
        if (len == 0)
                return *why = "an empty path", -EINVAL;
        if (len > FIELDS_PATH_MAX)
                return *why = "a path over 1024 bytes", -EINVAL;
        if (memchr(path, '\0', len))
                return *why = "a NUL byte", -EINVAL;
        if (path[0] == '/')
                return *why = "an absolute path (paths are relative to the working directory, /tmp)", -EINVAL;
        for (size_t start = 0; start <= len;) {
                const char *slash = memchr(path + start, '/', len - start);
                size_t end = slash ? (size_t)(slash - path) : len;
                size_t n = end - start;
                if (n == 0)
                        return *why = "an empty component ('//' or a trailing '/')", -EINVAL;
                if (n > FIELDS_NAME_MAX)
                        return *why = "a component over 255 bytes", -EINVAL;
                if ((n == 2 && memcmp(path + start, "..", 2) == 0) || (!pattern && n == 1 && path[start] == '.'))
                        return *why = "a '..' or '.' component", -EINVAL;
                start = end + 1;
        }
        return 0;
}

/* ---- the request as written: json-c does not tell where a member is ------------------- */

/* The end of the JSON value at text[i] (text is valid JSON: jt_validate()). */
static size_t skip_value(const char *t, size_t i, size_t len)
{
        int depth = 0;
        do {
                if (t[i] == '"') {
                        for (i++; i < len && t[i] != '"'; i++)
                                if (t[i] == '\\')
                                        i++;
                        i++;
                } else if (t[i] == '{' || t[i] == '[') {
                        depth++, i++;
                } else if (t[i] == '}' || t[i] == ']') {
                        depth--, i++;
                } else if (depth == 0) {
                        while (i < len && !strchr(",]} \t\r\n", t[i]))
                                i++;
                } else {
                        i++;
                }
        } while (depth > 0 && i < len);
        return i;
}

static size_t skip_ws(const char *t, size_t i, size_t len)
{
        while (i < len && strchr(" \t\r\n", t[i]))
                i++;
        return i;
}

/* Where the top-level member "name" (spelt without escapes) of the valid JSON object text is:
 * its value's bytes, as the client sent them. json-c would give a number past 64 bits back as
 * 18446744073709551615; main(input) gets the client's number. False when not found so. */
static bool member_span(const char *t, size_t len, const char *name, size_t *start, size_t *end)
{
        size_t i = skip_ws(t, 0, len), n = strlen(name);
        if (i >= len || t[i] != '{')
                return false;
        for (i = skip_ws(t, i + 1, len); i < len && t[i] == '"';) {
                size_t key = i + 1, key_end = skip_value(t, i, len) - 1;
                i = skip_ws(t, skip_ws(t, key_end + 1, len) + 1, len); /* past ':' */
                size_t value_end = skip_value(t, i, len);
                if (key_end - key == n && memcmp(t + key, name, n) == 0) {
                        *start = i;
                        *end = value_end;
                        return true;
                }
                i = skip_ws(t, value_end, len);
                i = i < len && t[i] == ',' ? skip_ws(t, i + 1, len) : len;
        }
        return false;
}

/* ---- files ----------------------------------------------------------------------------- */

/* Whether the JSON string at t[i] (its opening quote) holds an escaped NUL: json-c ends an
 * object's member names at a NUL, so "a\u0000b" would arrive as "a". */
static bool string_has_nul(const char *t, size_t i, size_t end)
{
        for (i++; i < end && t[i] != '"'; i++) {
                if (t[i] != '\\')
                        continue;
                if (t[i + 1] == 'u' && end - i > 5 && memcmp(t + i + 2, "0000", 4) == 0)
                        return true;
                i++; /* the escaped character: a '\\' never starts another escape */
        }
        return false;
}

/* Whether a path of "files", as the client wrote it, holds a NUL; *name is that path as
 * written, or empty when "files" is not found as written (its own name spelt with escapes:
 * nothing can be checked then, and it is refused too). */
static bool file_names_have_nul(const char *t, size_t len, const char **name, int *name_len)
{
        size_t i, end;
        *name = "";
        *name_len = 0;
        if (!member_span(t, len, "files", &i, &end))
                return true;
        if (t[i] != '{')
                return false; /* not an object: refused as such */
        for (i = skip_ws(t, i + 1, len); i < end && t[i] == '"';) {
                if (string_has_nul(t, i, end)) {
                        size_t key_end = skip_value(t, i, len);
                        *name = t + i + 1;
                        *name_len = key_end - i - 2 > 200 ? 200 : (int)(key_end - i - 2);
                        return true;
                }
                i = skip_ws(t, skip_ws(t, skip_value(t, i, len), len) + 1, len); /* past ':' */
                i = skip_ws(t, skip_value(t, i, len), len);
                i = i < end && t[i] == ',' ? skip_ws(t, i + 1, len) : end;
        }
        return false;
}

/* The size of RFC 4648 base64 text once decoded, or -1 when it is not that (standard
 * alphabet, padded to a multiple of 4, '=' only at the end). */
static long long base64_decoded_size(const char *s, size_t n)
{
        if (n % 4)
                return -1;
        size_t pad = n && s[n - 1] == '=' ? (n > 1 && s[n - 2] == '=' ? 2 : 1) : 0;
        for (size_t i = 0; i < n - pad; i++) {
                char c = s[i];
                if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '+' || c == '/'))
                        return -1;
        }
        return (long long)(n / 4 * 3 - pad);
}

/* A file's content: a string, or {"base64": "..."}. Its size in bytes, or -1 with *why. */
static long long file_size(struct json_object *v, const char **why)
{
        if (json_object_is_type(v, json_type_string))
                return json_object_get_string_len(v);
        struct json_object *b64;
        if (!json_object_is_type(v, json_type_object) || json_object_object_length(v) != 1 ||
            !json_object_object_get_ex(v, "base64", &b64) || !json_object_is_type(b64, json_type_string)) {
                *why = "the content must be a string or {\"base64\": \"...\"}";
                return -1;
        }
        long long n = base64_decoded_size(json_object_get_string(b64), (size_t)json_object_get_string_len(b64));
        if (n < 0)
                *why = "invalid base64 (RFC 4648, standard alphabet, padded)";
        return n;
}

/* Whether another of the files has this path as a directory ("a" and "a/b"). */
static const char *directory_clash(struct json_object *files, const char *path, size_t len)
{
        json_object_object_foreach(files, other, v)
        {
                (void)v;
                size_t n = strlen(other);
                if (n > len && memcmp(other, path, len) == 0 && other[len] == '/')
                        return other;
        }
        return NULL;
}

static int check_files(const char *body, size_t len, struct json_object *files, const struct sb_limits *l,
                       struct api_error *e)
{
        if (!json_object_is_type(files, json_type_object)) {
                api_error_set(e, 400, "invalid_request", "files: must be an object mapping paths to contents");
                return -1;
        }
        const char *name;
        int name_len;
        if (file_names_have_nul(body, len, &name, &name_len)) {
                if (name_len)
                        api_error_set(e, 400, "invalid_request", "files: \"%.*s\": a NUL byte", name_len, name);
                else
                        api_error_set(e, 400, "invalid_request", "files: spell the member's name without escapes");
                return -1;
        }
        if ((size_t)json_object_object_length(files) > l->files_max_count) {
                api_error_set(e, 400, "invalid_request", "files: %d files, over the limit of %u",
                              json_object_object_length(files), l->files_max_count);
                return -1;
        }
        unsigned long long total = 0, room = (unsigned long long)l->tmp_size_mb << 20;
        json_object_object_foreach(files, path, content)
        {
                const char *why = NULL;
                long long size = -1;
                if (fields_check_path(path, strlen(path), false, &why) == 0 &&
                    !directory_clash(files, path, strlen(path)))
                        size = file_size(content, &why);
                else if (!why)
                        why = "also a directory of another file";
                if (size < 0) {
                        api_error_set(e, 400, "invalid_request", "files: \"%.200s\": %s", path, why);
                        return -1;
                }
                total += (unsigned long long)size;
        }
        if (total > room) {
                api_error_set(e, 400, "invalid_request", "files: %llu bytes in all, more than /tmp holds (%lu MiB)",
                              total, l->tmp_size_mb);
                return -1;
        }
        return 0;
}

static int check_patterns(struct json_object *v, struct api_error *e)
{
        if (!json_object_is_type(v, json_type_array) || json_object_array_length(v) > FIELDS_PATTERNS_MAX) {
                api_error_set(e, 400, "invalid_request", "return_files: must be an array of at most %d glob patterns",
                              FIELDS_PATTERNS_MAX);
                return -1;
        }
        for (size_t i = 0; i < json_object_array_length(v); i++) {
                struct json_object *p = json_object_array_get_idx(v, i);
                const char *why = "not a string";
                if (json_object_is_type(p, json_type_string) &&
                    fields_check_path(json_object_get_string(p), (size_t)json_object_get_string_len(p), true, &why) == 0)
                        continue;
                api_error_set(e, 400, "invalid_request", "return_files[%zu]: %s", i, why);
                return -1;
        }
        return 0;
}

/* ---- limits ---------------------------------------------------------------------------- */

#define LIMIT(name, type) { #name, offsetof(struct sb_limits, name), sizeof(type) }
static const struct {
        const char *name;
        size_t offset, size;
} request_limits[] = {
        LIMIT(wall_time_s, unsigned), LIMIT(cpu_time_s, unsigned), LIMIT(memory_mb, unsigned long),
        LIMIT(max_processes, unsigned), LIMIT(max_open_files, unsigned), LIMIT(stdout_max_bytes, size_t),
};

static unsigned long long get_field(const struct sb_limits *l, size_t offset, size_t size)
{
        const char *p = (const char *)l + offset;
        if (size == sizeof(unsigned))
                return *(const unsigned *)p;
        return *(const unsigned long long *)p; /* unsigned long and size_t: 64 bits here */
}

static void set_field(struct sb_limits *l, size_t offset, size_t size, unsigned long long v)
{
        char *p = (char *)l + offset;
        if (size == sizeof(unsigned))
                *(unsigned *)p = (unsigned)v;
        else
                *(unsigned long long *)p = v;
}
_Static_assert(sizeof(unsigned long) == 8 && sizeof(size_t) == 8, "limits of 64 bits");

/* One member of "limits" over *l (which holds the server's values). */
static int take_limit(const char *name, struct json_object *v, struct sb_limits *l, struct api_error *e)
{
        for (size_t i = 0; i < ARRAY_SIZE(request_limits); i++) {
                if (strcmp(name, request_limits[i].name) != 0)
                        continue;
                unsigned long long max = get_field(l, request_limits[i].offset, request_limits[i].size);
                int64_t n = json_object_is_type(v, json_type_int) ? json_object_get_int64(v) : 0;
                if (n <= 0) {
                        api_error_set(e, 400, "invalid_request", "limits.%s: must be a positive whole number", name);
                        return -1;
                }
                if ((unsigned long long)n > max) {
                        api_error_set(e, 400, "invalid_request", "limits.%s: %lld is above the server's maximum of %llu",
                                      name, (long long)n, max);
                        return -1;
                }
                set_field(l, request_limits[i].offset, request_limits[i].size, (unsigned long long)n);
                return 0;
        }
        api_error_set(e, 400, "invalid_request", "limits.%.100s: unknown limit (known: wall_time_s, cpu_time_s, "
                      "memory_mb, max_processes, max_open_files, stdout_max_bytes)", name);
        return -1;
}

static int take_limits(struct json_object *v, struct sb_limits *l, struct api_error *e)
{
        if (!json_object_is_type(v, json_type_object)) {
                api_error_set(e, 400, "invalid_request", "limits: must be an object");
                return -1;
        }
        json_object_object_foreach(v, name, value)
        {
                if (take_limit(name, value, l, e) < 0)
                        return -1;
        }
        return 0;
}

/* ---- input, as sent -------------------------------------------------------------------- */

bool fields_member_span(const char *text, size_t len, const char *name, size_t *start, size_t *end)
{
        return member_span(text, len, name, start, end);
}

/* options with "input" (or "inputs") as the client wrote it, on one line: a raw newline can
 * only be whitespace between tokens in valid JSON, so it becomes a space. */
static int splice_input(const char *name, const char *body, size_t start, size_t end, const char *options,
                        struct sbuf *out)
{
        int r = sbuf_printf(out, "{\"%s\":", name);
        for (size_t i = start; r == 0 && i < end; i++)
                r = sbuf_append(out, body[i] == '\n' || body[i] == '\r' ? " " : body + i, 1);
        if (r == 0 && strcmp(options, "{}") != 0)
                r = sbuf_printf(out, ",%s", options + 1);
        else if (r == 0)
                r = sbuf_puts(out, "}");
        return r;
}

/* ---- the whole ------------------------------------------------------------------------- */

/* Each of the runner's options that the request has, checked, into options. */
static int take_options(const char *body, size_t len, struct json_object *root, const struct sb_limits *l,
                        struct json_object *options, struct exec_request *req, struct api_error *e)
{
        struct json_object *v;
        if (json_object_object_get_ex(root, "files", &v)) {
                if (check_files(body, len, v, l, e) < 0)
                        return -1;
                json_object_object_add(options, "files", json_object_get(v));
        }
        /* A batch answers entries only, and sets /tmp back between its calls: no one state of
         * /tmp or of the figures is the request's to return. Refused rather than ignored. */
        if (req->batch && (json_object_object_get_ex(root, "return_files", NULL) ||
                           json_object_object_get_ex(root, "figures", NULL))) {
                api_error_set(e, 400, "invalid_request", "return_files and figures: not with inputs");
                return -1;
        }
        if (json_object_object_get_ex(root, "return_files", &v)) {
                if (check_patterns(v, e) < 0)
                        return -1;
                json_object_object_add(options, "return_files", json_object_get(v));
                req->extras = true;
        }
        if (json_object_object_get_ex(root, "figures", &v)) {
                const char *f = json_object_is_type(v, json_type_string) ? json_object_get_string(v) : "";
                if (strcmp(f, "png") != 0 && strcmp(f, "svg") != 0) {
                        api_error_set(e, 400, "invalid_request", "figures: must be \"png\" or \"svg\"");
                        return -1;
                }
                json_object_object_add(options, "figures", json_object_get(v));
                req->extras = true;
        }
        return 0;
}

/* Where "input" or "inputs" (checked: an array of 1 to max_batch values, never with "input")
 * is in the body, to be passed on as written: 1 with *name, *start and *end; 0 when there is
 * none, or it could only be added to options from json-c's tree (its name written with
 * escapes); -1 with *e set. */
static int take_input(const char *body, size_t len, struct json_object *root, const struct sb_limits *l,
                      struct json_object *options, struct exec_request *req, const char **name, size_t *start,
                      size_t *end, struct api_error *e)
{
        struct json_object *input, *inputs;
        bool has_input = json_object_object_get_ex(root, "input", &input);
        if (json_object_object_get_ex(root, "inputs", &inputs)) {
                if (has_input) {
                        api_error_set(e, 400, "invalid_request", "inputs: give either input or inputs, not both");
                        return -1;
                }
                size_t n = json_object_is_type(inputs, json_type_array) ? json_object_array_length(inputs) : 0;
                if (n == 0 || n > l->max_batch) {
                        api_error_set(e, 400, "invalid_request", "inputs: must be an array of 1 to %u values",
                                      l->max_batch);
                        return -1;
                }
                req->batch = true;
                *name = "inputs";
                input = inputs;
        } else if (has_input) {
                *name = "input";
        } else {
                return 0;
        }
        if (member_span(body, len, *name, start, end))
                return 1;
        json_object_object_add(options, *name, json_object_get(input)); /* its name had escapes */
        return 0;
}

int fields_parse(const char *body, size_t len, struct json_object *root, const struct sb_config *config,
                 struct exec_request *req, struct api_error *e)
{
        struct json_object *v;
        req->limits = config->limits;
        if (json_object_object_get_ex(root, "limits", &v) && take_limits(v, &req->limits, e) < 0)
                return -1;
        if (json_object_object_get_ex(root, "usage", &v)) {
                if (!json_object_is_type(v, json_type_boolean)) {
                        api_error_set(e, 400, "invalid_request", "usage: must be true or false");
                        return -1;
                }
                req->usage = json_object_get_boolean(v);
        }
        struct json_object *options = json_object_new_object();
        if (!options) {
                api_error_set(e, 500, "internal_error", "Out of memory reading the request");
                return -1;
        }
        size_t start = 0, end = 0;
        const char *name = NULL;
        int raw_input = take_input(body, len, root, &config->limits, options, req, &name, &start, &end, e);
        int r = raw_input < 0 ? -1 : take_options(body, len, root, &config->limits, options, req, e);
        if (r == 0) {
                /* Plain: one line (json-c escapes every control character in strings). */
                const char *text = json_object_to_json_string_ext(options, JSON_C_TO_STRING_PLAIN |
                                                                                JSON_C_TO_STRING_NOSLASHESCAPE);
                if (!text || (raw_input ? splice_input(name, body, start, end, text, &req->options)
                                        : sbuf_puts(&req->options, text)) < 0 || req->options.oom) {
                        api_error_set(e, 500, "internal_error", "Out of memory reading the request");
                        r = -1;
                }
        }
        json_object_put(options);
        return r;
}
