/* monitor.c — the pool's health and metrics, on a socket of their own.
 *
 * Health checks must answer within a second even when every worker is running a script to
 * its time limit, so they do not go through the workers' socket at all: nginx sends /health,
 * /healthz and /metrics to this process, which only reads the shared counters (stats.h).
 * It is also nginx's authenticator (auth.h): a key is checked here, before nginx reads a body
 * or involves a worker, and a request refused for its key's limits is answered here.
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

#include "auth.h"
#include "http.h"
#include "log.h"
#include "reply.h"

static void answer(FCGX_Request *req, struct reply *r)
{
        if (r->body.oom) {
                struct api_error e;
                api_error_set(&e, 500, "internal_error", "Out of memory building the response");
                reply_error(r, &e);
        }
        reply_send(req, r);
        reply_free(r);
}

/* Whether a health check asked for its detail: ?detail or ?detail=1 among its parameters. */
static bool health_detail(const char *query)
{
        for (const char *p = query; p && *p; p = strchr(p, '&') ? strchr(p, '&') + 1 : NULL)
                if (strncmp(p, "detail", 6) == 0 && (p[6] == '\0' || p[6] == '&' || strncmp(p + 6, "=1", 2) == 0))
                        return true;
        return false;
}

/* One request to the monitor: /metrics, the health checks, /runtime. */
static void handle(FCGX_Request *req, struct pool_stats *st)
{
        const char *method = FCGX_GetParam("REQUEST_METHOD", req->envp);
        const char *path = FCGX_GetParam("PYEXEC_PATH", req->envp);
        const char *allow = NULL;
        struct reply r = { .status = 200, .kind = "ok" };
        struct api_error e;
        /* nginx's own subrequests and error pages (internal locations, nginx/nginx.conf.in). */
        if (path && strcmp(path, "/_pyexec_auth") == 0) {
                auth_handle(req, st);
                return;
        }
        if (path && strcmp(path, "/_pyexec_error/rate_limited") == 0) {
                auth_limited(req, st);
                return;
        }
        if (path && strcmp(path, "/metrics") == 0) {
                r.content_type = "text/plain; version=0.0.4";
                (void)stats_render(st, &r.body);
                answer(req, &r);
                return;
        }
        switch (http_route(method, path, &allow)) {
        case ROUTE_HEALTH:
        case ROUTE_HEALTHZ:
                r.status = stats_health(st, strcmp(path, "/healthz") == 0,
                                        health_detail(FCGX_GetParam("QUERY_STRING", req->envp)), &r.body);
                break;
        case ROUTE_RUNTIME:
                (void)stats_runtime(st, &r.body);
                break;
        case ROUTE_METHOD_NOT_ALLOWED:
                api_error_set(&e, 405, "method_not_allowed", "Method %s not allowed on %s", method ? method : "?",
                              path);
                e.allow = allow;
                reply_error(&r, &e);
                break;
        default:
                api_error_set(&e, 404, "not_found", "No such endpoint on the monitor: %.200s", path ? path : "");
                reply_error(&r, &e);
        }
        answer(req, &r);
}

void monitor_main(int listen_fd, struct pool_stats *st)
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
                handle(&req, st);
                FCGX_Finish_r(&req);
        }
        _exit(0);
}
