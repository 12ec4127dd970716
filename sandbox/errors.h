/* errors.h — every error_kind of the API with its HTTP status: the one table that the
 * sandbox's verdicts (sb_status_kind()), the worker's request errors, the metrics and
 * pyexec-run use, and that tests/test_error_kinds.py checks nginx's own error pages, the
 * sources and the README against (pyexec-worker --print-error-kinds). */
#ifndef PYEXEC_ERRORS_H
#define PYEXEC_ERRORS_H

#include <stddef.h>

/* Room for every kind, and one more: the metrics keep a counter per kind (fcgi/stats.h). */
#define SB_ERROR_KINDS_MAX 47

struct sb_error_kind {
        const char *name; /* the API's error_kind ("ok" for a success) */
        int status;       /* the HTTP status it is answered with */
};

/* The script's outcomes first, indexed by enum sb_status (all HTTP 200: a served request),
 * then the errors of the request itself (the worker's and nginx's). */
extern const struct sb_error_kind sb_error_kinds[];
extern const size_t sb_error_kind_count;

/* Its position in sb_error_kinds, or -1 for a name that is not an error_kind. */
int sb_error_kind_index(const char *name);

#endif
