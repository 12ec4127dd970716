/* serve.c — a worker of the pool: one request at a time, from accept to answer.
 *
 * Route, validate, take a sandbox (the one its warm tier keeps ready, see imports.c), run the
 * script, answer with JSON, log one line, count it for /metrics; then, with no client
 * waiting, tear the used sandbox down and prepare the next one. A request that waited in the
 * queue longer than queue_timeout_ms is answered 503 at once (back-pressure); SIGTERM lets
 * the request in hand finish. */
#define _GNU_SOURCE
#include "serve.h"

#include <errno.h>
#include <fcgiapp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <time.h>
#include <unistd.h>

#include "http.h"
#include "imports.h"
#include "jsontext.h"
#include "log.h"
#include "request.h"
#include "sandbox.h"
#include "zygote.h"

static struct sb_limits limits;
static struct pool_stats *stats;
static int slot;
static const char *zygote_path;

/* Warm mode: this worker's interpreters, one per tier (tier k has imported the first k
 * modules of warm_preload; see imports.c), and for each a sandbox kept ready. */
#define MAX_TIERS 8
struct tier {
        struct sb_zygote zygote;
        char preload[sizeof(((struct sb_limits *)0)->warm_preload)];
        struct sb_prepared ready;
};
static struct tier tiers[MAX_TIERS];
static int ntiers;
/* The sandbox of the request being answered; discarded once the answer is out. */
static struct sb_prepared used;

static volatile sig_atomic_t stop_requested;

/* ---- answering ------------------------------------------------------------------------- */

struct answer {
        int status;
        const char *kind; /* for the log: "ok" or an error_kind */
        const char *allow;
        struct sbuf body;
        const struct sb_outcome *usage; /* adds X-Pyexec-* usage headers when set */
};

/* libfcgi's own printf knows no %zu or %lld, so headers are formatted here. */
static void send_answer(FCGX_Request *req, const struct answer *a)
{
        char head[512];
        int n = snprintf(head, sizeof(head), "Status: %s\r\nContent-Type: application/json\r\nContent-Length: %zu\r\n",
                         http_status_line(a->status), a->body.len);
        if (a->allow)
                n += snprintf(head + n, sizeof(head) - (size_t)n, "Allow: %s\r\n", a->allow);
        if (a->status == 503)
                n += snprintf(head + n, sizeof(head) - (size_t)n, "Retry-After: 1\r\n");
        if (a->usage)
                n += snprintf(head + n, sizeof(head) - (size_t)n,
                              "X-Pyexec-Wall-Ms: %lld\r\nX-Pyexec-Cpu-Ms: %lld\r\nX-Pyexec-Peak-Rss-Kb: %ld\r\n",
                              a->usage->wall_ms, a->usage->cpu_ms, a->usage->peak_rss_kb);
        n += snprintf(head + n, sizeof(head) - (size_t)n, "\r\n");
        FCGX_PutStr(head, n, req->out);
        if (a->body.len)
                FCGX_PutStr(a->body.data, (int)a->body.len, req->out);
}

static void answer_error(struct answer *a, const struct api_error *e)
{
        a->status = e->status;
        a->kind = e->kind;
        a->allow = e->allow;
        a->body.len = 0;
        if (http_error_body(e, &a->body) < 0) {
                a->status = 500;
                a->body.len = 0;
                (void)sbuf_puts(&a->body, "{\"error\": \"Out of memory\", \"stdout\": \"\", \"error_kind\": \"internal_error\"}");
        }
}

/* ---- where sandboxes come from --------------------------------------------------------- */

/* The tiers: with warm_tiers, one per prefix of warm_preload ("", "numpy", "numpy pandas");
 * without, only the full list. */
static void setup_tiers(void)
{
        int n = sb_preload_count(limits.warm_preload);
        if (n > MAX_TIERS - 1)
                n = MAX_TIERS - 1;
        ntiers = limits.warm_tiers ? n + 1 : 1;
        for (int t = 0; t < ntiers; t++) {
                tiers[t].zygote = (struct sb_zygote){ -1, -1 };
                sb_preload_prefix(limits.warm_preload, limits.warm_tiers ? t : n, tiers[t].preload,
                                  sizeof(tiers[t].preload));
        }
}

static int tier_for(const char *script, size_t len)
{
        if (ntiers == 1)
                return 0;
        int need = sb_preload_needed(script, len, limits.warm_preload);
        return need < ntiers ? need : ntiers - 1;
}

static void start_zygote(struct tier *t)
{
        char err[512];
        if (sb_zygote_start(&t->zygote, zygote_path, t->preload, err, sizeof(err)) < 0)
                log_line("event=warm_unavailable preload=\"%s\" reason=\"%s\" -- such scripts run cold", t->preload, err);
}

/* A sandbox for the request at hand: the one its tier keeps ready if it is still good, else a
 * new one — warm while the tier's zygote runs (restarted once if it died), cold otherwise. */
static int take_sandbox(struct tier *t, struct sb_prepared *p, char *err, size_t errlen)
{
        if (t && sb_prepared_usable(&t->ready)) {
                *p = t->ready;
                t->ready.active = false;
                return 0;
        }
        if (t)
                sb_discard(&t->ready);
        if (limits.warm && t) {
                if (!sb_zygote_alive(&t->zygote)) {
                        sb_zygote_stop(&t->zygote);
                        start_zygote(t);
                }
                if (t->zygote.sock >= 0) {
                        if (sb_prepare(&limits, &t->zygote, p, err, errlen) == 0)
                                return 0;
                        log_line("event=warm_failed reason=\"%s\" -- running this script cold", err);
                        stats_add(&stats->warm_fallbacks, 1);
                        sb_zygote_stop(&t->zygote);
                }
        }
        return sb_prepare(&limits, NULL, p, err, errlen);
}

/* While no client waits: make sure every tier has its next sandbox ready. */
static void prepare_next(void)
{
        if (!limits.prefork || !limits.warm)
                return;
        for (int i = 0; i < ntiers; i++) {
                struct tier *t = &tiers[i];
                if (t->ready.active)
                        continue;
                char err[512];
                struct sb_prepared p;
                if (take_sandbox(t, &p, err, sizeof(err)) < 0) {
                        log_line("event=prefork_failed reason=\"%s\"", err);
                        continue;
                }
                t->ready = p;
        }
}

/* ---- the routes ------------------------------------------------------------------------ */

/* The monitor answers health checks (so they never queue behind scripts); a worker asked
 * directly gives the same answer, from the same shared view. */
static void handle_health(struct answer *a, bool healthz)
{
        a->status = stats_health(stats, healthz, &a->body);
        a->kind = a->status == 200 ? "ok" : "sandbox_error";
}

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
        if (want > limits.body_max_bytes) {
                api_error_set(e, 413, "too_large", "Request body too large (limit %zu bytes)", limits.body_max_bytes);
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

static void handle_execute(FCGX_Request *req, struct answer *a, struct sb_outcome *out, bool *ran)
{
        struct api_error e;
        if (!http_is_json_content_type(FCGX_GetParam("CONTENT_TYPE", req->envp))) {
                api_error_set(&e, 415, "unsupported_media_type", "Content-Type must be application/json");
                answer_error(a, &e);
                return;
        }
        struct sbuf body = { 0 };
        cleanup_free char *script = NULL;
        size_t script_len = 0;
        if (read_body(req, &body, &e) < 0 ||
            request_parse_execute(body.data ? body.data : "", body.len, &limits, &script, &script_len, &e) < 0) {
                sbuf_free(&body);
                answer_error(a, &e);
                return;
        }
        sbuf_free(&body);

        long long waited = queued_ms(req);
        if (waited > (long long)limits.queue_timeout_ms) {
                api_error_set(&e, 503, "busy", "All workers are busy (the request waited %lld ms); retry later", waited);
                answer_error(a, &e);
                return;
        }

        char err[512];
        struct tier *t = limits.warm ? &tiers[tier_for(script, script_len)] : NULL;
        if (take_sandbox(t, &used, err, sizeof(err)) < 0 || sb_execute(&used, script, script_len, out, err, sizeof(err)) < 0) {
                stats_add(&stats->sandbox_failures, 1);
                log_line("event=sandbox_error reason=\"%s\"", err);
                api_error_set(&e, 500, "sandbox_error", "Sandbox unavailable, the script was not run: %s", err);
                answer_error(a, &e);
                return;
        }
        *ran = true;
        a->status = 200;
        a->kind = sb_status_kind(out->status);
        a->usage = out;
        if (sb_outcome_to_json(out, &a->body) < 0) {
                api_error_set(&e, 500, "internal_error", "Out of memory building the response");
                answer_error(a, &e);
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

        struct answer a = { .status = 500, .kind = "internal_error" };
        struct sb_outcome out;
        bool ran = false;
        const char *allow = NULL;
        struct api_error e;
        enum route route = http_route(method, path, &allow);
        switch (route) {
        case ROUTE_EXECUTE:
                handle_execute(req, &a, &out, &ran);
                break;
        case ROUTE_HEALTH:
        case ROUTE_HEALTHZ:
                handle_health(&a, route == ROUTE_HEALTHZ);
                break;
        case ROUTE_RUNTIME:
                a.status = 200;
                a.kind = "ok";
                (void)stats_runtime(stats, &a.body);
                break;
        case ROUTE_METHOD_NOT_ALLOWED:
                api_error_set(&e, 405, "method_not_allowed", "Method %s not allowed on %s", method ? method : "?", path);
                e.allow = allow;
                answer_error(&a, &e);
                break;
        case ROUTE_NOT_FOUND:
                api_error_set(&e, 404, "not_found", "No such endpoint: %.200s", path ? path : "");
                answer_error(&a, &e);
                break;
        }
        if (a.body.oom) {
                api_error_set(&e, 500, "internal_error", "Out of memory building the response");
                sbuf_free(&a.body);
                answer_error(&a, &e);
        }
        send_answer(req, &a);
        stats_count(stats, a.kind, route == ROUTE_EXECUTE ? monotonic_ms() - start : -1);
        log_line("id=%s method=%s path=%s status=%d kind=%s wall_ms=%lld cpu_ms=%lld peak_rss_kb=%ld in=%s out=%zu "
                 "total_ms=%lld",
                 id ? id : "-", method ? method : "-", path ? path : "-", a.status, a.kind, ran ? out.wall_ms : 0,
                 ran ? out.cpu_ms : 0, ran ? out.peak_rss_kb : 0, cl && *cl ? cl : "0", a.body.len,
                 monotonic_ms() - start);
        sbuf_free(&a.body);
        if (ran)
                sb_outcome_free(&out);
}

/* ---- the worker's loop ----------------------------------------------------------------- */

/* Kills the kept sandboxes (removing their cgroups) and the zygotes. */
static void release_sandboxes(void)
{
        for (int i = 0; i < ntiers; i++) {
                sb_discard(&tiers[i].ready);
                sb_zygote_stop(&tiers[i].zygote);
        }
}

/* Idle: libfcgi's accept() is interrupted (the handler has no SA_RESTART) and, with shutdown
 * pending, FCGX_Accept_r() returns -1 instead of retrying. Busy: the request is finished
 * first. This handler used to _exit() at once when idle, but "idle" was only known from a
 * flag, and a connection accepted just before the signal was then dropped (a 502 during a
 * reload under load). */
static void on_term(int sig)
{
        (void)sig;
        stop_requested = 1;
        FCGX_ShutdownPending();
}

void serve_main(const struct sb_limits *l, struct pool_stats *st, int my_slot, const char *zygote)
{
        limits = *l;
        limits.id_slot = (unsigned)my_slot; /* one script at a time: the slot's host ids are ours */
        stats = st;
        slot = my_slot;
        zygote_path = zygote;
        /* The master's death ends the worker; the worker's death ends its sandboxes. */
        (void)prctl(PR_SET_PDEATHSIG, SIGTERM);
        (void)prctl(PR_SET_NAME, "pyexec-worker");
        if (getppid() == 1)
                _exit(0);
        struct sigaction sa = { .sa_handler = on_term };
        sigemptyset(&sa.sa_mask);
        sigaction(SIGTERM, &sa, NULL);
        sigaction(SIGINT, &sa, NULL);
        sigaction(SIGHUP, &(struct sigaction){ .sa_handler = SIG_IGN }, NULL);
        signal(SIGPIPE, SIG_IGN);

        FCGX_Request req;
        if (FCGX_InitRequest(&req, 0, 0) != 0) {
                log_line("event=fatal reason=\"FCGX_InitRequest failed\"");
                _exit(1);
        }
        char err[256];
        if (sb_network_private(err, sizeof(err)) == 0)
                limits.share_caller_netns = 1;
        else
                log_line("event=netns_per_sandbox reason=\"%s\" -- each sandbox makes its own (slower)", err);
        setup_tiers();
        if (limits.warm)
                for (int i = 0; i < ntiers; i++)
                        start_zygote(&tiers[i]);
        prepare_next();
        stats_set_state(stats, slot, SLOT_IDLE);
        while (!stop_requested) {
                if (FCGX_Accept_r(&req) < 0)
                        break;
                stats_set_state(stats, slot, SLOT_BUSY);
                handle(&req);
                FCGX_Finish_r(&req);
                sb_discard(&used);
                prepare_next();
                stats_set_state(stats, slot, SLOT_IDLE);
        }
        release_sandboxes();
        _exit(0);
}
