/* reply.c — writing one FastCGI answer (reply.h). */
#include "reply.h"

#include <stdio.h>

void reply_error(struct reply *r, const struct api_error *e)
{
        r->status = e->status;
        r->kind = e->kind;
        r->allow = e->allow;
        r->content_type = NULL;
        reply_free(r);
        if (http_error_body(e, &r->body) < 0 || r->body.oom) {
                static const char oom[] =
                        "{\"error\": \"Out of memory\", \"stdout\": \"\", \"error_kind\": \"internal_error\"}";
                reply_free(r);
                r->status = 500;
                r->kind = "internal_error";
                r->body = (struct sbuf){ .data = (char *)oom, .len = sizeof(oom) - 1 };
                r->fixed_body = true;
        }
}

void reply_free(struct reply *r)
{
        if (!r->fixed_body)
                sbuf_free(&r->body);
        r->body = (struct sbuf){ 0 };
        r->fixed_body = false;
}

void reply_send(FCGX_Request *req, const struct reply *r)
{
        char head[1024];
        size_t cap = sizeof(head);
        int n = snprintf(head, cap, "Status: %s\r\nContent-Length: %zu\r\n", http_status_line(r->status), r->body.len);
        if (r->status != 202) /* 202 Accepted (MCP's notifications) has no body, so no type */
                n += snprintf(head + n, cap - (size_t)n, "Content-Type: %s\r\n",
                              r->content_type ? r->content_type : "application/json");
        if (r->allow)
                n += snprintf(head + n, cap - (size_t)n, "Allow: %s\r\n", r->allow);
        if (r->status == 503)
                n += snprintf(head + n, cap - (size_t)n, "Retry-After: 1\r\n");
        if (r->usage)
                n += snprintf(head + n, cap - (size_t)n,
                              "X-Pyexec-Wall-Ms: %lld\r\nX-Pyexec-Cpu-Ms: %lld\r\nX-Pyexec-Peak-Rss-Kb: %ld\r\n"
                              "X-Pyexec-Interpreter: %.280s\r\n",
                              r->usage->wall_ms, r->usage->cpu_ms, r->usage->peak_rss_kb, r->usage->interpreter);
        n += snprintf(head + n, cap - (size_t)n, "\r\n");
        FCGX_PutStr(head, n, req->out);
        if (r->body.len)
                FCGX_PutStr(r->body.data, (int)r->body.len, req->out);
}
