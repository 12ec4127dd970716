/* serve.c — a worker of the pool: one request at a time, from accept to answer.
 *
 * Route, validate, run the script through this worker's sandbox provider (sandbox.h), answer
 * with JSON, log one line, count it for /metrics; then, with no client waiting, let the
 * provider tear the used sandbox down and prepare the next one. A request that waited in the
 * queue longer than queue_timeout_ms is answered 503 at once (back-pressure); SIGTERM lets
 * the request in hand finish. */
#define _GNU_SOURCE
#include "serve.h"

#include <errno.h>
#include <fastcgi.h>
#include <fcgiapp.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/prctl.h>
#include <time.h>
#include <unistd.h>

#include "http.h"
#include "keys.h"
#include "log.h"
#include "mcp.h"
#include "reply.h"
#include "request.h"
#include "sandbox.h"
#include "stream.h"

static struct sb_config config;
static struct pool_stats *stats;
static int slot;
static struct sb_provider *provider; /* this worker's sandboxes and interpreters */

static volatile sig_atomic_t stop_requested;

/* ---- what the provider reports ------------------------------------------------------- */

static void on_provider_event(void *ctx, enum sb_event ev, const char *detail)
{
        (void)ctx;
        switch (ev) {
        case SB_EVENT_WARM_UNAVAILABLE:
                log_line("event=warm_unavailable reason=\"%s\" -- such scripts run cold", detail);
                break;
        case SB_EVENT_WARM_FAILED:
                log_line("event=warm_failed reason=\"%s\" -- running this script cold", detail);
                stats_add(&stats->warm_fallbacks, 1);
                break;
        case SB_EVENT_PREPARE_FAILED:
                log_line("event=prefork_failed reason=\"%s\"", detail);
                break;
        case SB_EVENT_NETNS_PER_SANDBOX:
                log_line("event=netns_per_sandbox reason=\"%s\" -- each sandbox makes its own (slower)", detail);
                break;
        }
}

/* ---- the routes ------------------------------------------------------------------------ */

/* How long nginx has held this request (PYEXEC_START is its $msec at arrival), in ms. */
static long long queued_ms(FCGX_Request *req)
{
        const char *start = FCGX_GetParam("PYEXEC_START", req->envp);
        if (!start)
                return 0;
        char *end;
        double t = strtod(start, &end);
        if (end == start)
                return 0;
        struct timespec now;
        clock_gettime(CLOCK_REALTIME, &now);
        double waited = (double)now.tv_sec + now.tv_nsec / 1e9 - t;
        return waited > 0 ? (long long)(waited * 1000) : 0;
}

/* Reads exactly the announced body. 0, or -1 with *e set. */
static int read_body(FCGX_Request *req, struct sbuf *body, struct api_error *e)
{
        const char *cl = FCGX_GetParam("CONTENT_LENGTH", req->envp);
        char *end;
        unsigned long long want = cl && *cl ? strtoull(cl, &end, 10) : 0;
        if (cl && *cl && *end) {
                api_error_set(e, 400, "invalid_request", "Invalid Content-Length");
                return -1;
        }
        if (want > config.service.body_max_bytes) {
                api_error_set(e, 413, "too_large", "Request body too large (limit %zu bytes)",
                              config.service.body_max_bytes);
                return -1;
        }
        if (sbuf_reserve(body, (size_t)want) < 0) {
                api_error_set(e, 500, "internal_error", "Out of memory reading the request");
                return -1;
        }
        while (body->len < want) {
                int n = FCGX_GetStr(body->data + body->len, (int)(want - body->len), req->in);
                if (n <= 0)
                        break;
                body->len += (size_t)n;
        }
        body->data[body->len] = '\0';
        if (body->len != want) {
                api_error_set(e, 400, "invalid_request", "Request body ended after %zu of %llu bytes", body->len, want);
                return -1;
        }
        return 0;
}

/* Streaming: the output goes to the client as it comes, and the client's connection is
 * watched (nothing more comes on it once the body's end is read: whatever does, or its end,
 * means the client went away). */
static void stream_job(struct sse *sse, struct sb_job *job)
{
        char rest[4096];
        while (FCGX_GetStr(rest, sizeof(rest), sse->req->in) > 0)
                ; /* up to the end of FastCGI's stdin */
        job->on_stdout = stream_on_stdout;
        job->stdout_ctx = sse;
        job->watch_client = true;
        job->client_fd = sse->req->ipcFd;
}

/* Validates an /execute body and runs it, as POST /execute and MCP's tools/call both do: 0 with
 * *answer the answer's JSON (the script ran: *out, *ran), -1 with *e, or -ECONNRESET when the
 * client of a streamed run (sse; NULL: not streamed) went away. waited: how long the request
 * has queued. */
static int execute_body(const char *body, size_t len, long long waited, struct sse *sse, struct sb_outcome *out,
                        bool *ran, struct sbuf *answer, struct api_error *e)
{
        struct exec_request x;
        if (request_parse_execute(body, len, &config, &x, e) < 0)
                return -1;
        if (waited > (long long)config.service.queue_timeout_ms) {
                exec_request_free(&x);
                api_error_set(e, 503, "busy", "All workers are busy (the request waited %lld ms); retry later", waited);
                return -1;
        }
        char err[512];
        struct sb_job job = { .script = x.script, .script_len = x.script_len, .options = x.options.data,
                              .extras = x.extras, .batch = x.batch, .limits = &x.limits };
        if (sse)
                stream_job(sse, &job);
        int r = sb_provider_run(provider, &job, out, err, sizeof(err));
        bool usage = x.usage;
        exec_request_free(&x);
        if (r == -ECONNRESET && sse) {
                stats_add(&stats->streams_aborted, 1);
                return r;
        }
        if (r < 0) {
                stats_add(&stats->sandbox_failures, 1);
                log_line("event=sandbox_error reason=\"%s\"", err);
                api_error_set(e, 500, "sandbox_error", "Sandbox unavailable, the script was not run: %s", err);
                return -1;
        }
        *ran = true;
        if (sb_outcome_to_json(out, usage, answer) < 0 || answer->oom) {
                sbuf_free(answer);
                api_error_set(e, 500, "internal_error", "Out of memory building the response");
                return -1;
        }
        return 0;
}

/* The body of a POST whose Content-Type is JSON; -1 with *e otherwise. */
static int json_body(FCGX_Request *req, struct sbuf *body, struct api_error *e)
{
        if (!http_is_json_content_type(FCGX_GetParam("CONTENT_TYPE", req->envp))) {
                api_error_set(e, 415, "unsupported_media_type", "Content-Type must be application/json");
                return -1;
        }
        if (read_body(req, body, e) < 0) {
                sbuf_free(body);
                return -1;
        }
        return 0;
}

static void handle_execute(FCGX_Request *req, struct reply *a, struct sb_outcome *out, bool *ran)
{
        struct api_error e;
        struct sbuf body = { 0 }, answer = { 0 };
        if (json_body(req, &body, &e) < 0) {
                reply_error(a, &e);
                return;
        }
        struct sse sse = { .req = req };
        bool streaming = stream_wanted(FCGX_GetParam("HTTP_ACCEPT", req->envp));
        int r = execute_body(body.data ? body.data : "", body.len, queued_ms(req), streaming ? &sse : NULL, out, ran,
                             &answer, &e);
        sbuf_free(&body);
        if (r == -ECONNRESET) {
                a->status = 499;         /* nginx's word for it, in the log */
                a->kind = "client_gone"; /* nothing to send: the client is not there */
                a->sent = true;
                return;
        }
        if (r < 0) {
                reply_error(a, &e);
        } else {
                a->status = 200;
                a->kind = sb_status_kind(out->status);
                a->usage = out;
                a->body = answer;
        }
        /* Once events have gone out, the answer, whatever it is, is the last of them. */
        if (streaming && (sse.started || r == 0)) {
                stream_finish(&sse, r == 0 && out->status == SB_OK, &a->body);
                a->sent = true;
        }
}

/* MCP's tools/call: the same path as POST /execute (mcp.h). */
struct mcp_run {
        FCGX_Request *req;
        struct sb_outcome *out;
        bool *ran;
};

static int mcp_execute(void *ctx, const char *body, size_t len, struct sbuf *answer, struct api_error *e)
{
        struct mcp_run *m = ctx;
        return execute_body(body, len, queued_ms(m->req), NULL, m->out, m->ran, answer, e);
}

static void handle_mcp(FCGX_Request *req, struct reply *a, struct sb_outcome *out, bool *ran)
{
        struct api_error e;
        struct sbuf body = { 0 };
        if (json_body(req, &body, &e) < 0) {
                reply_error(a, &e);
                return;
        }
        struct mcp_run m = { .req = req, .out = out, .ran = ran };
        struct mcp_env env = { .config = &config, .execute = mcp_execute, .ctx = &m };
        mcp_handle(body.data ? body.data : "", body.len, FCGX_GetParam("HTTP_MCP_PROTOCOL_VERSION", req->envp), &env,
                   a);
        sbuf_free(&body);
        if (*ran && a->status == 200 && !a->body.oom) {
                a->kind = sb_status_kind(out->status);
                a->usage = out;
        }
}

static void handle(FCGX_Request *req)
{
        long long start = monotonic_ms();
        const char *method = FCGX_GetParam("REQUEST_METHOD", req->envp);
        const char *path = FCGX_GetParam("PYEXEC_PATH", req->envp);
        if (!path)
                path = FCGX_GetParam("DOCUMENT_URI", req->envp);
        const char *id = FCGX_GetParam("REQUEST_ID", req->envp);
        const char *cl = FCGX_GetParam("CONTENT_LENGTH", req->envp);
        /* The key nginx's authenticator found (never its secret: nginx passes no Authorization
         * on); checked again, as it goes into the log and the metrics as it is. */
        const char *key = FCGX_GetParam("PYEXEC_KEY", req->envp);
        if (key && !keys_id_valid(key, strlen(key)))
                key = NULL;

        struct reply a = { .status = 500, .kind = "internal_error" };
        struct sb_outcome out;
        bool ran = false;
        const char *allow = NULL;
        struct api_error e;
        enum route route = http_route(method, path, &allow);
        switch (route) {
        case ROUTE_EXECUTE:
                handle_execute(req, &a, &out, &ran);
                break;
        case ROUTE_MCP:
                handle_mcp(req, &a, &out, &ran);
                break;
        case ROUTE_METHOD_NOT_ALLOWED:
                api_error_set(&e, 405, "method_not_allowed", "Method %s not allowed on %s", method ? method : "?", path);
                e.allow = allow;
                reply_error(&a, &e);
                break;
        default: /* health checks, /runtime and /metrics are the monitor's (nginx/nginx.conf.in) */
                api_error_set(&e, 404, "not_found", "No such endpoint: %.200s", path ? path : "");
                reply_error(&a, &e);
                break;
        }
        if (a.body.oom) {
                api_error_set(&e, 500, "internal_error", "Out of memory building the response");
                reply_error(&a, &e);
        }
        if (!a.sent)
                reply_send(req, &a);
        /* MCP's own messages (initialize, tools/list, ...) are not requests to run a script. */
        if (route != ROUTE_MCP || ran || strcmp(a.kind, "ok") != 0)
                stats_count_key(stats, key, a.kind, route == ROUTE_EXECUTE || ran ? monotonic_ms() - start : -1);
        log_line("id=%s key=%s method=%s path=%s status=%d kind=%s wall_ms=%lld cpu_ms=%lld peak_rss_kb=%ld in=%s "
                 "out=%zu total_ms=%lld",
                 id ? id : "-", key ? key : "-", method ? method : "-", path ? path : "-", a.status, a.kind,
                 ran ? out.wall_ms : 0,
                 ran ? out.cpu_ms : 0, ran ? out.peak_rss_kb : 0, cl && *cl ? cl : "0", a.body.len,
                 monotonic_ms() - start);
        reply_free(&a);
        if (ran)
                sb_outcome_free(&out);
}

/* ---- the worker's loop ----------------------------------------------------------------- */

/* The sandboxes' phase timings, into the pool's counters (/metrics). */
static void count_phases(void)
{
        uint64_t us[SB_PHASE_COUNT] = { 0 };
        sb_phases_take(us);
        for (int i = 0; i < SB_PHASE_COUNT; i++)
                stats_add(&stats->phase_us[i], us[i]);
}

/* Stopping (SIGTERM from a reload or a drain, SIGINT) must never cut the request in hand.
 * libfcgi reads and writes its connection with plain read()/write(), and takes an EINTR for a
 * broken connection: a handler without SA_RESTART made a reload under load answer some
 * requests 400 ("Request body ended after ...") or cut them (nginx: 502). So the handler
 * restarts what it interrupts and only records the stop; the stop signals are blocked while
 * libfcgi accepts (its poll() for the first byte is never restarted); and the worker waits for
 * a connection in epoll on the listening socket and on a pipe the handler writes to, never in
 * accept() (the listening socket is non-blocking; a connection another worker took first is
 * EAGAIN). EPOLLEXCLUSIVE wakes one idle worker per connection, as a blocking accept() did,
 * and a worker woken for a connection takes it even when told to stop at the same moment, so
 * that no connection waits for a worker that will never look. A stop that comes while it
 * serves is seen once the answer is sent. */
static int stop_pipe[2] = { -1, -1 };
static int waiter = -1; /* the epoll instance: the listening socket and the stop pipe */

static void on_term(int sig)
{
        (void)sig;
        int saved = errno;
        stop_requested = 1;
        (void)!write(stop_pipe[1], "s", 1);
        errno = saved;
}

/* The wait for a connection or a stop (above), and the signals. */
static void prepare_waiting(void)
{
        int flags = fcntl(FCGI_LISTENSOCK_FILENO, F_GETFL);
        struct epoll_event listen_ev = { .events = EPOLLIN | EPOLLEXCLUSIVE };
        struct epoll_event stop_ev = { .events = EPOLLIN, .data.u32 = 1 };
        if (pipe2(stop_pipe, O_CLOEXEC | O_NONBLOCK) < 0 || (waiter = epoll_create1(EPOLL_CLOEXEC)) < 0 ||
            epoll_ctl(waiter, EPOLL_CTL_ADD, FCGI_LISTENSOCK_FILENO, &listen_ev) < 0 ||
            epoll_ctl(waiter, EPOLL_CTL_ADD, stop_pipe[0], &stop_ev) < 0 || flags < 0 ||
            fcntl(FCGI_LISTENSOCK_FILENO, F_SETFL, flags | O_NONBLOCK) < 0) {
                log_line("event=fatal reason=\"waiting for connections: %s\"", strerror(errno));
                _exit(1);
        }
        struct sigaction sa = { .sa_handler = on_term, .sa_flags = SA_RESTART };
        sigemptyset(&sa.sa_mask);
        sigaction(SIGTERM, &sa, NULL);
        sigaction(SIGINT, &sa, NULL);
        sigaction(SIGHUP, &(struct sigaction){ .sa_handler = SIG_IGN }, NULL);
        signal(SIGPIPE, SIG_IGN);
}

/* libfcgi's accept, with the stop signals held back (above). 1: a request; 0: none after all
 * (another worker took it); -1: the worker cannot go on. */
static int accept_one(FCGX_Request *req)
{
        sigset_t stops, saved;
        sigemptyset(&stops);
        sigaddset(&stops, SIGTERM);
        sigaddset(&stops, SIGINT);
        sigprocmask(SIG_BLOCK, &stops, &saved);
        int rc = FCGX_Accept_r(req);
        sigprocmask(SIG_SETMASK, &saved, NULL);
        if (rc >= 0)
                return 1;
        if (rc == -EAGAIN || rc == -EWOULDBLOCK || rc == -EINTR || rc == -ECONNABORTED)
                return 0;
        log_line("event=fatal reason=\"accept: %s\"", strerror(-rc));
        return -1;
}

/* The next request, or false once the worker is to stop. While one of the pool's interpreters
 * is still starting, the wait looks in on it every STARTING_POLL_MS and prepares its sandbox
 * once it is ready, so that its first script finds one. */
#define STARTING_POLL_MS 50
static bool accept_next(FCGX_Request *req)
{
        while (!stop_requested) {
                struct epoll_event ev[2];
                bool starting = sb_provider_starting(provider);
                int n = epoll_wait(waiter, ev, 2, starting ? STARTING_POLL_MS : -1);
                if (n < 0 && errno != EINTR)
                        return false;
                if (n == 0 && starting)
                        sb_provider_refill(provider);
                for (int i = 0; i < n; i++) {
                        if (ev[i].data.u32 != 0)
                                continue;
                        int r = accept_one(req);
                        if (r != 0)
                                return r > 0;
                }
        }
        return false;
}

/* A worker of a new generation (a reload or a rotation) whose interpreters are new: until they
 * are ready (or WARM_FIRST_MAX_MS), it does not take requests, so that the old generation,
 * which the master retires once this one accepts, serves them at full speed meanwhile rather
 * than this worker making a script wait for its tier's start (0.6-0.7 s for pandas here). */
#define WARM_FIRST_MAX_MS 10000
static void wait_for_interpreters(void)
{
        long long until = monotonic_ms() + WARM_FIRST_MAX_MS;
        while (!stop_requested && sb_provider_starting(provider) && monotonic_ms() < until) {
                struct timespec tick = { 0, STARTING_POLL_MS * 1000000L };
                nanosleep(&tick, NULL);
                sb_provider_refill(provider);
        }
}

void serve_main(const struct sb_config *cfg, struct pool_stats *st, int my_slot, const struct sb_hub *hub,
                bool warm_first)
{
        config = *cfg;
        stats = st;
        slot = my_slot;
        /* The master's death ends the worker; the worker's death ends its sandboxes. */
        (void)prctl(PR_SET_PDEATHSIG, SIGTERM);
        (void)prctl(PR_SET_NAME, "pyexec-worker");
        if (getppid() == 1)
                _exit(0);
        prepare_waiting();

        FCGX_Request req;
        if (FCGX_InitRequest(&req, FCGI_LISTENSOCK_FILENO, 0) != 0) {
                log_line("event=fatal reason=\"FCGX_InitRequest failed\"");
                _exit(1);
        }
        /* One script at a time: the slot's host ids are this worker's, and so can be one
         * private network namespace for all of its sandboxes. */
        struct sb_provider_options o = { .id_slot = (unsigned)my_slot, .hub = hub, .private_network = true,
                                         .on_event = on_provider_event };
        char err[512];
        if (sb_provider_new(&config, &o, &provider, err, sizeof(err)) < 0) {
                log_line("event=fatal reason=\"%s\"", err);
                _exit(1);
        }
        sb_provider_refill(provider);
        if (warm_first)
                wait_for_interpreters();
        stats_set_state(stats, slot, SLOT_IDLE);
        while (accept_next(&req)) {
                stats_set_state(stats, slot, SLOT_BUSY);
                handle(&req);
                FCGX_Finish_r(&req);
                count_phases();
                sb_provider_refill(provider); /* with no client waiting */
                count_phases();
                stats_set_state(stats, slot, SLOT_IDLE);
        }
        sb_provider_free(provider);
        _exit(0);
}
