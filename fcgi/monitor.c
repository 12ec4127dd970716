/* monitor.c — the pool's health and metrics, on a socket of their own.
 *
 * Health checks must answer within a second even when every worker is running a script to
 * its time limit, so they do not go through the workers' socket at all: nginx sends /health,
 * /healthz and /metrics to this process, which only reads the shared counters (stats.h).
 *
 * Healthy means: the sandbox works on this machine (the master's start-up check, kept up to
 * date by the workers) and at least one worker is alive. */
#define _GNU_SOURCE
#include "monitor.h"

#include <fcgiapp.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <unistd.h>

#include "http.h"
#include "log.h"

static void answer(FCGX_Request *req, int status, const char *type, const struct sbuf *body)
{
        char head[256];
        int n = snprintf(head, sizeof(head), "Status: %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n\r\n",
                         http_status_line(status), type, body->len);
        FCGX_PutStr(head, n, req->out);
        FCGX_PutStr(body->data ? body->data : "", (int)body->len, req->out);
}

static void health(FCGX_Request *req, const struct pool_stats *st, bool healthz)
{
        struct sbuf body = { 0 };
        int status = stats_health(st, healthz, &body);
        answer(req, status, "application/json", &body);
        sbuf_free(&body);
}

void monitor_main(int listen_fd, const struct pool_stats *st)
{
        (void)prctl(PR_SET_PDEATHSIG, SIGTERM);
        (void)prctl(PR_SET_NAME, "pyexec-monitor");
        if (getppid() == 1)
                _exit(0);
        signal(SIGTERM, SIG_DFL);
        signal(SIGINT, SIG_DFL);
        signal(SIGHUP, SIG_IGN);
        signal(SIGPIPE, SIG_IGN);
        FCGX_Request req;
        if (FCGX_InitRequest(&req, listen_fd, 0) != 0)
                _exit(1);
        while (FCGX_Accept_r(&req) >= 0) {
                const char *method = FCGX_GetParam("REQUEST_METHOD", req.envp);
                const char *path = FCGX_GetParam("PYEXEC_PATH", req.envp);
                const char *allow = NULL;
                struct sbuf body = { 0 };
                if (path && strcmp(path, "/metrics") == 0) {
                        if (stats_render(st, &body) == 0)
                                answer(&req, 200, "text/plain; version=0.0.4", &body);
                } else {
                        struct api_error e;
                        switch (http_route(method, path, &allow)) {
                        case ROUTE_HEALTH:
                        case ROUTE_HEALTHZ:
                                health(&req, st, strcmp(path, "/healthz") == 0);
                                break;
                        case ROUTE_RUNTIME:
                                if (stats_runtime(st, &body) == 0)
                                        answer(&req, 200, "application/json", &body);
                                break;
                        case ROUTE_METHOD_NOT_ALLOWED: {
                                char head[160];
                                api_error_set(&e, 405, "method_not_allowed", "Method %s not allowed on %s",
                                              method ? method : "?", path);
                                (void)http_error_body(&e, &body);
                                int n = snprintf(head, sizeof(head),
                                                 "Status: %s\r\nAllow: %s\r\nContent-Type: application/json\r\n"
                                                 "Content-Length: %zu\r\n\r\n",
                                                 http_status_line(405), allow, body.len);
                                FCGX_PutStr(head, n, req.out);
                                FCGX_PutStr(body.data, (int)body.len, req.out);
                                break;
                        }
                        default: {
                                api_error_set(&e, 404, "not_found", "No such endpoint on the monitor: %.200s",
                                              path ? path : "");
                                (void)http_error_body(&e, &body);
                                answer(&req, 404, "application/json", &body);
                        }
                        }
                }
                sbuf_free(&body);
                FCGX_Finish_r(&req);
        }
        _exit(0);
}
