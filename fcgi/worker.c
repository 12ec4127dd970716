/* worker.c — pyexec-worker: the FastCGI pool that spawn-fcgi starts.
 *
 *   spawn-fcgi -n -s SOCKET -- pyexec-worker [-c CONFIG] [-w WORKERS]
 *
 * spawn-fcgi binds the socket and execs this program with it as fd 0 (FastCGI's listening
 * socket). The process becomes the pool's master: it checks once that the sandbox can be set
 * up on this machine, forks WORKERS workers that accept on the shared socket, replaces any
 * worker that dies (with a growing back-off if they keep dying), and on SIGTERM/SIGINT lets
 * every worker finish the request it holds and then exits. No process outlives it: workers
 * get SIGTERM if the master dies, sandboxes get SIGKILL if their worker dies.
 *
 * A worker serves one request at a time: route, validate, run the script with sb_run(),
 * answer with JSON, log one line. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcgiapp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <limits.h>
#include <time.h>
#include <unistd.h>

#include "http.h"
#include "imports.h"
#include "jsontext.h"
#include "request.h"
#include "sandbox.h"
#include "zygote.h"

#define MAX_WORKERS 256

/* ---- state shared by master and workers ------------------------------------------------ */

static struct sb_limits limits;
/* The sandbox's last known state, for /health. Starts from the master's check and follows
 * every run in this worker. */
static bool sandbox_ok;
static char sandbox_problem[512];

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
static char zygote_path[PATH_MAX];
/* The sandbox of the request being answered; discarded once the answer is out. */
static struct sb_prepared used;

static volatile sig_atomic_t stop_requested;
static volatile sig_atomic_t in_request;

static void log_line(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void log_line(const char *fmt, ...)
{
        char buf[2048];
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        struct tm tm;
        gmtime_r(&ts.tv_sec, &tm);
        int n = (int)strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%S", &tm);
        n += snprintf(buf + n, sizeof(buf) - (size_t)n, ".%03ldZ pid=%d ", ts.tv_nsec / 1000000, (int)getpid());
        va_list ap;
        va_start(ap, fmt);
        int m = vsnprintf(buf + n, sizeof(buf) - (size_t)n - 1, fmt, ap);
        va_end(ap);
        n = m < 0 ? n : (n + m >= (int)sizeof(buf) - 1 ? (int)sizeof(buf) - 2 : n + m);
        buf[n++] = '\n';
        (void)write_all(2, buf, (size_t)n);
}

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
        char words[sizeof(limits.warm_preload)];
        snprintf(words, sizeof(words), "%s", limits.warm_preload);
        const char *list[MAX_TIERS];
        int n = 0;
        for (char *save, *w = strtok_r(words, " ,", &save); w && n < MAX_TIERS - 1; w = strtok_r(NULL, " ,", &save))
                list[n++] = w;
        ntiers = limits.warm_tiers ? n + 1 : 1;
        for (int t = 0; t < ntiers; t++) {
                int upto = limits.warm_tiers ? t : n;
                struct tier *tr = &tiers[t];
                tr->zygote = (struct sb_zygote){ -1, -1 };
                tr->preload[0] = '\0';
                for (int i = 0; i < upto; i++) {
                        if (i)
                                strcat(tr->preload, " ");
                        strcat(tr->preload, list[i]);
                }
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

static void handle_health(struct answer *a, bool healthz)
{
        a->kind = "ok";
        if (sandbox_ok) {
                a->status = 200;
                (void)sbuf_puts(&a->body, healthz ? "{\"status\": \"ok\"}" : "{\"status\": \"healthy\"}");
                return;
        }
        a->status = 503;
        a->kind = "sandbox_error";
        (void)sbuf_puts(&a->body, "{\"status\": \"unhealthy\", \"reason\": ");
        (void)jt_append_string(&a->body, sandbox_problem, strlen(sandbox_problem));
        (void)sbuf_puts(&a->body, "}");
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

        char err[512];
        struct tier *t = limits.warm ? &tiers[tier_for(script, script_len)] : NULL;
        if (take_sandbox(t, &used, err, sizeof(err)) < 0 || sb_execute(&used, script, script_len, out, err, sizeof(err)) < 0) {
                sandbox_ok = false;
                snprintf(sandbox_problem, sizeof(sandbox_problem), "%s", err);
                log_line("event=sandbox_error reason=\"%s\"", err);
                api_error_set(&e, 500, "sandbox_error", "Sandbox unavailable, the script was not run: %s", err);
                answer_error(a, &e);
                return;
        }
        sandbox_ok = true;
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
        log_line("id=%s method=%s path=%s status=%d kind=%s wall_ms=%lld cpu_ms=%lld peak_rss_kb=%ld in=%s out=%zu "
                 "total_ms=%lld",
                 id ? id : "-", method ? method : "-", path ? path : "-", a.status, a.kind, ran ? out.wall_ms : 0,
                 ran ? out.cpu_ms : 0, ran ? out.peak_rss_kb : 0, cl && *cl ? cl : "0", a.body.len,
                 monotonic_ms() - start);
        sbuf_free(&a.body);
        if (ran)
                sb_outcome_free(&out);
}

/* ---- worker ---------------------------------------------------------------------------- */

static void worker_on_term(int sig)
{
        (void)sig;
        /* Idle in accept(): leave now (the kept sandbox and the zygote die with us through
         * their parent-death signals). Busy: finish the request first. */
        if (!in_request)
                _exit(0);
        stop_requested = 1;
}

static __attribute__((noreturn)) void worker_main(void)
{
        /* The master's death ends the worker; the worker's death ends its sandbox (child.c). */
        (void)prctl(PR_SET_PDEATHSIG, SIGTERM);
        if (getppid() == 1)
                _exit(0);
        struct sigaction sa = { .sa_handler = worker_on_term };
        sigemptyset(&sa.sa_mask);
        sigaction(SIGTERM, &sa, NULL);
        sigaction(SIGINT, &sa, NULL);
        signal(SIGPIPE, SIG_IGN);

        FCGX_Request req;
        if (FCGX_InitRequest(&req, 0, 0) != 0) {
                log_line("event=fatal reason=\"FCGX_InitRequest failed\"");
                _exit(1);
        }
        setup_tiers();
        if (limits.warm)
                for (int i = 0; i < ntiers; i++)
                        start_zygote(&tiers[i]);
        prepare_next();
        while (!stop_requested) {
                if (FCGX_Accept_r(&req) < 0)
                        break;
                in_request = 1;
                handle(&req);
                FCGX_Finish_r(&req);
                sb_discard(&used);
                prepare_next();
                in_request = 0;
        }
        for (int i = 0; i < ntiers; i++) {
                sb_discard(&tiers[i].ready);
                sb_zygote_stop(&tiers[i].zygote);
        }
        _exit(0);
}

/* ---- master ---------------------------------------------------------------------------- */

static volatile sig_atomic_t master_stop;
static void master_on_term(int sig) { master_stop = sig; }

static void check_sandbox(void)
{
        static const char probe[] = "def main():\n    return 'ok'\n";
        struct sb_outcome out;
        char err[512];
        if (sb_run(&limits, NULL, probe, sizeof(probe) - 1, &out, err, sizeof(err)) < 0) {
                snprintf(sandbox_problem, sizeof(sandbox_problem), "%s", err);
                return;
        }
        if (out.status != SB_OK || out.result.len != 4 || memcmp(out.result.data, "\"ok\"", 4) != 0) {
                snprintf(sandbox_problem, sizeof(sandbox_problem), "the probe script did not run correctly: %s %.200s",
                         sb_status_kind(out.status), out.stderr_buf.data ? out.stderr_buf.data : "");
        } else {
                sandbox_ok = true;
        }
        sb_outcome_free(&out);
}

static pid_t spawn_worker(void)
{
        pid_t pid = fork();
        if (pid == 0) {
                signal(SIGTERM, SIG_DFL);
                signal(SIGINT, SIG_DFL);
                worker_main();
        }
        return pid;
}

static void usage(const char *argv0)
{
        fprintf(stderr, "usage: %s [-c CONFIG] [-w WORKERS]   (fd 0: the FastCGI listening socket)\n", argv0);
}

int main(int argc, char **argv)
{
        const char *config = getenv("PYEXEC_CONFIG");
        int nworkers = getenv("PYEXEC_WORKERS") ? atoi(getenv("PYEXEC_WORKERS")) : 4;
        int opt;
        while ((opt = getopt(argc, argv, "c:w:h")) != -1) {
                switch (opt) {
                case 'c': config = optarg; break;
                case 'w': nworkers = atoi(optarg); break;
                default: usage(argv[0]); return opt == 'h' ? 0 : 1;
                }
        }
        if (nworkers < 1 || nworkers > MAX_WORKERS) {
                fprintf(stderr, "pyexec-worker: -w must be from 1 to %d\n", MAX_WORKERS);
                return 1;
        }
        struct stat st;
        if (fstat(0, &st) < 0 || !S_ISSOCK(st.st_mode)) {
                fprintf(stderr, "pyexec-worker: fd 0 is not a socket; start me with spawn-fcgi\n");
                usage(argv[0]);
                return 1;
        }
        sb_limits_default(&limits);
        char err[512];
        if (config && sb_limits_load(&limits, config, err, sizeof(err)) < 0) {
                fprintf(stderr, "pyexec-worker: %s\n", err);
                return 1;
        }
        if (FCGX_Init() != 0) {
                fprintf(stderr, "pyexec-worker: FCGX_Init failed\n");
                return 1;
        }

        /* pyexec-zygote sits next to this binary. */
        ssize_t n = readlink("/proc/self/exe", zygote_path, sizeof(zygote_path) - 32);
        if (n > 0) {
                zygote_path[n] = '\0';
                char *slash = strrchr(zygote_path, '/');
                strcpy(slash ? slash + 1 : zygote_path, "pyexec-zygote");
        }

        check_sandbox();
        if (!sb_cgroups_enabled())
                log_line("event=cgroups_unavailable reason=\"%s\" -- sandboxes are limited by rlimits only",
                         sb_cgroups_problem());
        if (sandbox_ok)
                log_line("event=start workers=%d sandbox=ok mode=%s prefork=%u cgroups=%s wall_time_s=%u memory_mb=%lu",
                         nworkers, limits.warm ? "warm" : "cold", limits.prefork,
                         sb_cgroups_enabled() ? "v1" : "none", limits.wall_time_s, limits.memory_mb);
        else
                log_line("event=start workers=%d sandbox=UNAVAILABLE reason=\"%s\" -- scripts will be refused with 500 "
                         "sandbox_error and /health answers 503; nothing runs unsandboxed",
                         nworkers, sandbox_problem);

        /* Orphans of the pool (a dead zygote's sandbox inits) come back to the master, which
         * reaps everything, rather than to the host's init. */
        (void)prctl(PR_SET_CHILD_SUBREAPER, 1);
        struct sigaction sa = { .sa_handler = master_on_term };
        sigemptyset(&sa.sa_mask);
        sigaction(SIGTERM, &sa, NULL);
        sigaction(SIGINT, &sa, NULL);
        signal(SIGPIPE, SIG_IGN);

        pid_t workers[MAX_WORKERS] = { 0 };
        long long started[MAX_WORKERS] = { 0 };
        unsigned quick_deaths = 0;
        for (int i = 0; i < nworkers; i++) {
                workers[i] = spawn_worker();
                started[i] = monotonic_ms();
        }

        while (!master_stop) {
                int status;
                pid_t pid = waitpid(-1, &status, 0);
                if (pid < 0) {
                        if (errno == EINTR)
                                continue;
                        break;
                }
                for (int i = 0; i < nworkers; i++) {
                        if (workers[i] != pid)
                                continue;
                        if (WIFSIGNALED(status))
                                log_line("event=worker_died worker=%d signal=%d", (int)pid, WTERMSIG(status));
                        else
                                log_line("event=worker_exited worker=%d status=%d", (int)pid, WEXITSTATUS(status));
                        if (master_stop)
                                break;
                        /* A worker that keeps dying right after start is not hammered: back off up
                         * to 5 s. A worker that lived a while is replaced at once. */
                        quick_deaths = monotonic_ms() - started[i] < 1000 ? quick_deaths + 1 : 0;
                        if (quick_deaths > 1) {
                                unsigned delay_ms = 100u << (quick_deaths < 6 ? quick_deaths : 6);
                                if (delay_ms > 5000)
                                        delay_ms = 5000;
                                usleep(delay_ms * 1000);
                        }
                        workers[i] = spawn_worker();
                        started[i] = monotonic_ms();
                }
        }

        log_line("event=stopping signal=%d", (int)master_stop);
        for (int i = 0; i < nworkers; i++)
                if (workers[i] > 0)
                        (void)kill(workers[i], SIGTERM);
        while (waitpid(-1, NULL, 0) > 0 || errno == EINTR)
                ;
        log_line("event=stopped");
        return 0;
}
