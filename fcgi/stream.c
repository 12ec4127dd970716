/* stream.c — an /execute answer as server-sent events (stream.h). */
#define _GNU_SOURCE /* strcasestr */
#include "stream.h"

#include <stdio.h>
#include <string.h>

#include "jsontext.h"

bool stream_wanted(const char *accept)
{
        /* "text/event-stream" among the Accept header's media ranges, any case. */
        return accept && strcasestr(accept, "text/event-stream");
}

static int put(struct sse *s, const char *data, size_t len)
{
        if (s->gone || FCGX_PutStr(data, (int)len, s->req->out) != (int)len)
                s->gone = true;
        return s->gone ? -1 : 0;
}

void stream_start(struct sse *s)
{
        static const char head[] = "Status: 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-cache\r\n"
                                   "X-Accel-Buffering: no\r\n\r\n";
        if (s->started)
                return;
        s->started = true;
        (void)put(s, head, sizeof(head) - 1);
}

/* One event, flushed at once: nginx passes it on unbuffered (X-Accel-Buffering). */
static int send_event(struct sse *s, const char *event, const char *json, size_t len)
{
        char head[64];
        int n = snprintf(head, sizeof(head), "event: %s\ndata: ", event);
        if (put(s, head, (size_t)n) < 0 || put(s, json, len) < 0 || put(s, "\n\n", 2) < 0 ||
            FCGX_FFlush(s->req->out) < 0)
                s->gone = true;
        return s->gone ? -1 : 0;
}

/* How many bytes at the end of data[0..len) begin a UTF-8 sequence that is not complete yet:
 * held back for the next piece, so that no event ends inside a character. */
static size_t incomplete_tail(const unsigned char *data, size_t len)
{
        for (size_t back = 1; back <= 3 && back <= len; back++) {
                unsigned char c = data[len - back];
                if ((c & 0xC0) == 0x80)
                        continue; /* a continuation byte: look further back */
                size_t need = (c & 0xE0) == 0xC0 ? 2 : (c & 0xF0) == 0xE0 ? 3 : (c & 0xF8) == 0xF0 ? 4 : 1;
                return need > back ? back : 0;
        }
        return 0;
}

/* The pending bytes and then data, as one stdout event; what ends a character early waits. */
static int send_output(struct sse *s, const char *data, size_t len, bool last)
{
        unsigned char joined[sizeof(s->pending) + 65536];
        struct sbuf json = { 0 };
        int r = 0;
        while (r == 0 && (len || (last && s->npending))) {
                size_t take = len < 65536 ? len : 65536;
                memcpy(joined, s->pending, s->npending);
                memcpy(joined + s->npending, data, take);
                size_t n = s->npending + take, hold = last && take == len ? 0 : incomplete_tail(joined, n);
                memcpy(s->pending, joined + n - hold, hold);
                s->npending = hold;
                json.len = 0;
                if (n > hold && (jt_append_string(&json, joined, n - hold) < 0 ||
                                 send_event(s, "stdout", json.data, json.len) < 0))
                        r = -1;
                data += take;
                len -= take;
        }
        sbuf_free(&json);
        return r;
}

int stream_on_stdout(void *ctx, const char *data, size_t len)
{
        struct sse *s = ctx;
        stream_start(s);
        return send_output(s, data, len, false);
}

void stream_finish(struct sse *s, bool ok, const struct sbuf *answer)
{
        stream_start(s);
        if (s->npending)
                (void)send_output(s, "", 0, true);
        (void)send_event(s, ok ? "result" : "error", answer->data ? answer->data : "{}", answer->len);
}
