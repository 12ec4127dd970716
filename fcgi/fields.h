/* fields.h — the optional members of an /execute request (fields.c). */
#ifndef PYEXEC_FIELDS_H
#define PYEXEC_FIELDS_H

#include <json-c/json.h>
#include <stdbool.h>

#include "request.h"

#define FIELDS_PATH_MAX 1024    /* bytes of a path in "files" or a pattern in "return_files" */
#define FIELDS_NAME_MAX 255     /* bytes of one component, as NAME_MAX */
#define FIELDS_PATTERNS_MAX 100 /* patterns in "return_files" */

/* Whether path[0..len) is a relative path under the working directory: not empty, no NUL, not
 * absolute, no empty, '..' (nor, unless pattern, '.') component, within the sizes above.
 * 0, or -EINVAL with *why set to what is wrong. */
int fields_check_path(const char *path, size_t len, bool pattern, const char **why);

/* Where the top-level member "name" (spelt without escapes) of the JSON object text[0..len),
 * which jt_validate() has passed, has its value: text[*start..*end), as the client wrote it.
 * false when it is not found so. */
bool fields_member_span(const char *text, size_t len, const char *name, size_t *start, size_t *end);

/* Checks input, files, return_files, figures, limits and usage of the request root (parsed
 * from body[0..len), which jt_validate() has passed: "input" is passed on as written), and fills
 * req's options (the runner's line of JSON), limits (the server's, lowered by "limits") and
 * usage. 0, or -1 with *e set (400, or 500 out of memory). */
int fields_parse(const char *body, size_t len, struct json_object *root, const struct sb_config *config,
                 struct exec_request *req, struct api_error *e);

#endif
