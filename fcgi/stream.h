/* stream.h — POST /execute with "Accept: text/event-stream": the script's output as it comes,
 * as server-sent events, then the answer.
 *
 *   event: stdout          data: "<the new output, a JSON string>"   (as often as it comes)
 *   event: result | error  data: <exactly the JSON answer the request would have had>
 *
 * An event never ends inside a UTF-8 character; invalid bytes become U+FFFD as in the answer.
 * Each event is flushed at once, and X-Accel-Buffering: no keeps nginx from holding it. */
#ifndef PYEXEC_STREAM_H
#define PYEXEC_STREAM_H

#include <fcgiapp.h>
#include <stdbool.h>

#include "sandbox.h"

struct sse {
        FCGX_Request *req;
        bool started;              /* the 200 text/event-stream headers are out */
        bool gone;                 /* a write failed: the client went away */
        unsigned char pending[3];  /* the start of a character that the next piece completes */
        size_t npending;
};

/* Whether the Accept header asks for server-sent events. */
bool stream_wanted(const char *accept);

/* Sends the headers, once. */
void stream_start(struct sse *s);

/* The sandbox library's on_stdout (struct sb_job): one stdout event. -1 once the client is
 * gone, which ends the run. */
int stream_on_stdout(void *ctx, const char *data, size_t len);

/* The last event: "result" (ok) or "error", with the answer. */
void stream_finish(struct sse *s, bool ok, const struct sbuf *answer);

#endif
