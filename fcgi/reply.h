/* reply.h — writing one FastCGI answer: the worker's and the monitor's, in one shape. */
#ifndef PYEXEC_REPLY_H
#define PYEXEC_REPLY_H

#include <fcgiapp.h>

#include "http.h"
#include "sandbox.h"

struct reply {
        int status;
        const char *kind;         /* for the log and the metrics: "ok" or an error_kind */
        const char *content_type; /* NULL: application/json */
        const char *allow;        /* the Allow header of a 405 */
        struct sbuf body;
        const struct sb_outcome *usage; /* adds the X-Pyexec-* usage headers when set */
        bool fixed_body;          /* body is a constant (the out-of-memory answer): not freed */
        bool sent;                /* already sent (as server-sent events, stream.c) */
};

/* Makes *r the error answer e (its body the API's error shape); out of memory, a fixed 500. */
void reply_error(struct reply *r, const struct api_error *e);

/* Frees the body. */
void reply_free(struct reply *r);

/* Sends the headers and the body. (libfcgi's own printf knows no %zu or %lld.) */
void reply_send(FCGX_Request *req, const struct reply *r);

#endif
