/* sandbox.c — the parent's side of one run: start the sandbox, feed it, watch it, read it.
 *
 * sb_run() makes the pipes, clone()s init into new namespaces (child.c), writes the user
 * namespace's uid/gid maps, lets init go, and then polls five descriptors until every one is
 * at EOF or the wall-clock deadline passes: the script's stdout, its stderr, the result
 * channel, the set-up error pipe, and init's status pipe. At the deadline init is SIGKILLed,
 * which takes the whole PID namespace with it. The outcome is then decided from what the
 * kernel says (deadline, wait status, CPU time) first and from the runner's frame second. */
#define _GNU_SOURCE
#include "sandbox.h"

#include <errno.h>
#include <fcntl.h>
#include <json-c/json.h>
#include <poll.h>
#include <stdarg.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cgroup.h"
#include "internal.h"
#include "jsontext.h"

#define STACK_SIZE (256 * 1024)
#define STDERR_MAX (64 * 1024)
#define SETUP_ERR_MAX 1024
/* How long to keep draining after the kill: the kernel tears the namespace down in far less. */
#define DRAIN_AFTER_KILL_MS 2000
/* Results are nested no deeper than Python's own recursion limit allows. */
#define RESULT_MAX_DEPTH 2000

const char *sb_status_kind(enum sb_status s)
{
        switch (s) {
        case SB_OK: return "ok";
        case SB_NO_MAIN: return "no_main";
        case SB_SYNTAX_ERROR: return "syntax_error";
        case SB_NOT_SERIALIZABLE: return "not_serializable";
        case SB_EXCEPTION: return "exception";
        case SB_TIMEOUT: return "timeout";
        case SB_MEMORY_LIMIT: return "memory_limit";
        case SB_RESULT_TOO_LARGE: return "result_too_large";
        case SB_EXITED: return "exited";
        case SB_KILLED: return "killed";
        }
        return "internal_error";
}

void sb_outcome_free(struct sb_outcome *o)
{
        sbuf_free(&o->stdout_buf);
        sbuf_free(&o->stderr_buf);
        sbuf_free(&o->result);
        sbuf_free(&o->message);
        sbuf_free(&o->traceback);
}

/* ---- the pipes ------------------------------------------------------------------------- */

struct pipes {
        int stdout_rd, stdout_wr;
        int stderr_rd, stderr_wr;
        int result_rd, result_wr;
        int setup_err_rd, setup_err_wr;
        int status_rd, status_wr;
        int go_rd, go_wr;
        int script_fd;
};

static void pipes_close(struct pipes *p)
{
        int *all[] = { &p->stdout_rd, &p->stdout_wr, &p->stderr_rd, &p->stderr_wr, &p->result_rd,
                       &p->result_wr, &p->setup_err_rd, &p->setup_err_wr, &p->status_rd, &p->status_wr,
                       &p->go_rd, &p->go_wr, &p->script_fd };
        for (size_t i = 0; i < ARRAY_SIZE(all); i++) {
                if (*all[i] >= 0)
                        (void)close(*all[i]);
                *all[i] = -1;
        }
}

static void close_child_ends(struct pipes *p)
{
        int *ends[] = { &p->stdout_wr, &p->stderr_wr, &p->result_wr, &p->setup_err_wr, &p->status_wr,
                        &p->go_rd, &p->script_fd };
        for (size_t i = 0; i < ARRAY_SIZE(ends); i++) {
                (void)close(*ends[i]);
                *ends[i] = -1;
        }
}

static int make_pipe(int *rd, int *wr)
{
        int fds[2];
        if (pipe2(fds, O_CLOEXEC) < 0)
                return -errno;
        *rd = fds[0];
        *wr = fds[1];
        return 0;
}

/* The script travels in a sealed memfd: the runner reads it at its own pace, whatever its size,
 * and nobody can change it once sealed. */
static int make_script_fd(const char *script, size_t len)
{
        int fd = memfd_create("script", MFD_CLOEXEC | MFD_ALLOW_SEALING);
        if (fd < 0)
                return -errno;
        int r = write_all(fd, script, len);
        if (r == 0 && lseek(fd, 0, SEEK_SET) < 0)
                r = -errno;
        if (r == 0 && fcntl(fd, F_ADD_SEALS, F_SEAL_WRITE | F_SEAL_GROW | F_SEAL_SHRINK | F_SEAL_SEAL) < 0)
                r = -errno;
        if (r < 0) {
                (void)close(fd);
                return r;
        }
        return fd;
}

static int open_pipes(struct pipes *p, const char *script, size_t len)
{
        int r;
        memset(p, 0xff, sizeof(*p)); /* every fd -1 */
        if ((r = make_pipe(&p->stdout_rd, &p->stdout_wr)) < 0 || (r = make_pipe(&p->stderr_rd, &p->stderr_wr)) < 0 ||
            (r = make_pipe(&p->result_rd, &p->result_wr)) < 0 ||
            (r = make_pipe(&p->setup_err_rd, &p->setup_err_wr)) < 0 ||
            (r = make_pipe(&p->status_rd, &p->status_wr)) < 0 || (r = make_pipe(&p->go_rd, &p->go_wr)) < 0)
                goto fail;
        if ((r = make_script_fd(script, len)) < 0)
                goto fail;
        p->script_fd = r;
        return 0;
fail:
        pipes_close(p);
        return r;
}

/* ---- user namespace maps --------------------------------------------------------------- */

static int write_proc_file(pid_t pid, const char *name, const char *text)
{
        char path[64];
        snprintf(path, sizeof(path), "/proc/%d/%s", (int)pid, name);
        int fd = open(path, O_WRONLY | O_CLOEXEC);
        if (fd < 0)
                return -errno;
        int r = write_all(fd, text, strlen(text));
        (void)close(fd);
        return r;
}

/* Sandbox uid 0 (init) and 1000 (the script) map to two unprivileged host uids; nothing else
 * is mapped, so every host file shows as owned by nobody. */
static int write_id_maps(pid_t pid, unsigned base, char *err, size_t errlen)
{
        char map[96];
        snprintf(map, sizeof(map), "0 %u 1\n%u %u 1\n", base, SB_SCRIPT_UID, base + SB_SCRIPT_UID);
        int r = write_proc_file(pid, "uid_map", map);
        if (r < 0) {
                snprintf(err, errlen, "writing uid_map: %s", strerror(-r));
                return r;
        }
        snprintf(map, sizeof(map), "0 %u 1\n%u %u 1\n", base, SB_SCRIPT_GID, base + SB_SCRIPT_GID);
        r = write_proc_file(pid, "gid_map", map);
        if (r < 0)
                snprintf(err, errlen, "writing gid_map: %s", strerror(-r));
        return r;
}

/* ---- collecting output ----------------------------------------------------------------- */

struct stream {
        int fd;
        struct sbuf *buf;
        size_t keep;     /* bytes kept; the rest is read and dropped so the writer never blocks */
        bool overflowed;
};

/* Reads what is available. Returns 1 at EOF, 0 otherwise, -errno on error. */
static int stream_read(struct stream *s)
{
        char chunk[65536];
        ssize_t n = read(s->fd, chunk, sizeof(chunk));
        if (n < 0)
                return errno == EINTR || errno == EAGAIN ? 0 : -errno;
        if (n == 0)
                return 1;
        size_t room = s->buf->len < s->keep ? s->keep - s->buf->len : 0;
        size_t take = (size_t)n < room ? (size_t)n : room;
        if (take < (size_t)n)
                s->overflowed = true;
        if (take && sbuf_append(s->buf, chunk, take) < 0)
                return -ENOMEM;
        return 0;
}

struct run_state {
        struct sb_outcome *out;
        struct sbuf frame, setup_err, status;
        bool frame_overflowed;
        bool deadline_hit;
        bool oom_killed; /* the memory cgroup's OOM killer fired */
};

static void run_state_free(struct run_state *st)
{
        sbuf_free(&st->frame);
        sbuf_free(&st->setup_err);
        sbuf_free(&st->status);
}

/* Polls the five descriptors until all are at EOF; kills init at the deadline. */
static int collect(const struct sb_limits *l, struct pipes *p, pid_t init, struct run_state *st)
{
        struct stream streams[] = {
                { p->stdout_rd, &st->out->stdout_buf, l->stdout_max_bytes, false },
                { p->stderr_rd, &st->out->stderr_buf, STDERR_MAX, false },
                /* One byte of frame tag on top of the result limit. */
                { p->result_rd, &st->frame, l->result_max_bytes + 1, false },
                { p->setup_err_rd, &st->setup_err, SETUP_ERR_MAX, false },
                { p->status_rd, &st->status, sizeof(struct sb_init_report), false },
        };
        enum { N = ARRAY_SIZE(streams) };
        bool open[N];
        for (int i = 0; i < N; i++)
                open[i] = true;
        long long start = monotonic_ms();
        long long deadline = start + (long long)l->wall_time_s * 1000;
        long long give_up = 0;

        for (;;) {
                struct pollfd pfd[N];
                int map[N], n = 0;
                for (int i = 0; i < N; i++)
                        if (open[i]) {
                                pfd[n] = (struct pollfd){ .fd = streams[i].fd, .events = POLLIN };
                                map[n++] = i;
                        }
                if (n == 0)
                        break;
                long long now = monotonic_ms();
                if (!st->deadline_hit && now >= deadline) {
                        st->deadline_hit = true;
                        (void)kill(init, SIGKILL);
                        give_up = now + DRAIN_AFTER_KILL_MS;
                }
                if (give_up && now >= give_up)
                        return -ETIMEDOUT; /* something outside the namespace holds a pipe open */
                long long until = st->deadline_hit ? give_up : deadline;
                int timeout = (int)(until - now);
                int r = poll(pfd, (nfds_t)n, timeout < 0 ? 0 : timeout);
                if (r < 0) {
                        if (errno == EINTR)
                                continue;
                        return -errno;
                }
                for (int k = 0; k < n; k++) {
                        if (!pfd[k].revents)
                                continue;
                        int i = map[k];
                        r = stream_read(&streams[i]);
                        if (r < 0)
                                return r;
                        if (r == 1)
                                open[i] = false;
                }
        }
        st->out->stdout_truncated = streams[0].overflowed;
        st->frame_overflowed = streams[2].overflowed;
        st->out->wall_ms = monotonic_ms() - start;
        return 0;
}

/* ---- deciding the outcome -------------------------------------------------------------- */

static void set_error(struct sb_outcome *o, enum sb_status s, const char *fmt, ...)
        __attribute__((format(printf, 3, 4)));
static void set_error(struct sb_outcome *o, enum sb_status s, const char *fmt, ...)
{
        char msg[512];
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(msg, sizeof(msg), fmt, ap);
        va_end(ap);
        o->status = s;
        o->message.len = 0;
        (void)sbuf_puts(&o->message, msg);
}

static enum sb_status status_from_kind(const char *kind)
{
        static const enum sb_status frame_kinds[] = { SB_NO_MAIN, SB_SYNTAX_ERROR, SB_NOT_SERIALIZABLE,
                                                      SB_EXCEPTION, SB_MEMORY_LIMIT, SB_RESULT_TOO_LARGE };
        for (size_t i = 0; i < ARRAY_SIZE(frame_kinds); i++)
                if (strcmp(kind, sb_status_kind(frame_kinds[i])) == 0)
                        return frame_kinds[i];
        return SB_OK; /* not a kind a frame may carry */
}

/* The runner's "E" frame: {"kind", "message", "traceback"}. Returns false if malformed. */
static bool parse_error_frame(const char *json, size_t len, struct sb_outcome *o)
{
        bool ok = false;
        struct json_tokener *tok = json_tokener_new_ex(4);
        if (!tok)
                return false;
        json_tokener_set_flags(tok, JSON_TOKENER_STRICT | JSON_TOKENER_VALIDATE_UTF8);
        struct json_object *root = json_tokener_parse_ex(tok, json, (int)len);
        struct json_object *kind, *message, *tb;
        if (!root || json_tokener_get_error(tok) != json_tokener_success || (size_t)json_tokener_get_parse_end(tok) != len)
                goto exit;
        if (!json_object_object_get_ex(root, "kind", &kind) || !json_object_is_type(kind, json_type_string) ||
            !json_object_object_get_ex(root, "message", &message) || !json_object_is_type(message, json_type_string))
                goto exit;
        enum sb_status s = status_from_kind(json_object_get_string(kind));
        if (s == SB_OK)
                goto exit;
        o->status = s;
        o->message.len = 0;
        if (sbuf_append(&o->message, json_object_get_string(message), (size_t)json_object_get_string_len(message)) < 0)
                goto exit;
        if (json_object_object_get_ex(root, "traceback", &tb) && json_object_is_type(tb, json_type_string) &&
            s == SB_EXCEPTION)
                (void)sbuf_append(&o->traceback, json_object_get_string(tb), (size_t)json_object_get_string_len(tb));
        ok = true;
exit:
        json_object_put(root);
        json_tokener_free(tok);
        return ok;
}

static long long timeval_ms(struct timeval tv)
{
        return (long long)tv.tv_sec * 1000 + tv.tv_usec / 1000;
}

static void decide(const struct sb_limits *l, struct run_state *st)
{
        struct sb_outcome *o = st->out;
        struct sb_init_report rep = { 0 };
        bool have_report = st->status.len == sizeof(rep);
        if (have_report) {
                memcpy(&rep, st->status.data, sizeof(rep));
                o->cpu_ms = timeval_ms(rep.usage.ru_utime) + timeval_ms(rep.usage.ru_stime);
                o->peak_rss_kb = rep.usage.ru_maxrss;
        }

        /* The kernel's word first: these cannot be forged from inside. */
        if (st->deadline_hit) {
                set_error(o, SB_TIMEOUT, "Script execution timed out (%u seconds)", l->wall_time_s);
                return;
        }
        int ws = rep.wait_status;
        if (have_report && WIFSIGNALED(ws) &&
            (WTERMSIG(ws) == SIGXCPU || (WTERMSIG(ws) == SIGKILL && o->cpu_ms >= (long long)l->cpu_time_s * 1000))) {
                set_error(o, SB_TIMEOUT, "Script execution timed out (%u seconds)", l->cpu_time_s);
                return;
        }

        /* Then the runner's frame, checked as untrusted input. */
        if (st->frame_overflowed) {
                set_error(o, SB_RESULT_TOO_LARGE, "main() returned more than the %zu-byte result limit",
                          l->result_max_bytes);
                return;
        }
        if (st->frame.len > 0 && have_report && WIFEXITED(ws) && WEXITSTATUS(ws) == 0) {
                const char *body = st->frame.data + 1;
                size_t body_len = st->frame.len - 1;
                if (st->frame.data[0] == 'R' && jt_validate(body, body_len, RESULT_MAX_DEPTH) == 0) {
                        o->status = SB_OK;
                        (void)sbuf_append(&o->result, body, body_len);
                        return;
                }
                if (st->frame.data[0] == 'E' && parse_error_frame(body, body_len, o))
                        return;
                set_error(o, SB_EXCEPTION, "Script execution error: the result channel was written to by the script");
                return;
        }

        if (have_report && WIFSIGNALED(ws)) {
                int sig = WTERMSIG(ws);
                if (sig == SIGKILL && st->oom_killed) {
                        set_error(o, SB_MEMORY_LIMIT, "Script execution error: Memory limit exceeded");
                        return;
                }
                const char *abbrev = sigabbrev_np(sig);
                o->term_signal = sig;
                set_error(o, SB_KILLED, "Script execution error: killed by signal SIG%s", abbrev ? abbrev : "UNKNOWN");
                return;
        }
        o->exit_code = have_report && WIFEXITED(ws) ? WEXITSTATUS(ws) : -1;
        set_error(o, SB_EXITED, "Script exited with status %d before main() returned", o->exit_code);
}

/* ---- cgroups --------------------------------------------------------------------------- */

static int cgroups_state; /* 0 not probed, 1 usable, -1 not usable */
static char cgroups_problem[256];

bool sb_cgroups_enabled(void)
{
        if (cgroups_state == 0) {
                struct sb_limits l;
                struct sb_cgroup cg;
                sb_limits_default(&l);
                cgroups_state = sb_cgroup_create(&cg, &l, cgroups_problem, sizeof(cgroups_problem)) == 0 ? 1 : -1;
                sb_cgroup_destroy(&cg);
        }
        return cgroups_state > 0;
}

const char *sb_cgroups_problem(void)
{
        return sb_cgroups_enabled() ? NULL : cgroups_problem;
}

/* ---- sb_run ---------------------------------------------------------------------------- */

int sb_run(const struct sb_limits *limits, const char *script, size_t len, struct sb_outcome *out, char *err,
           size_t errlen)
{
        struct pipes p;
        struct run_state st = { .out = out };
        memset(out, 0, sizeof(*out));
        int r = open_pipes(&p, script, len);
        if (r < 0) {
                snprintf(err, errlen, "creating pipes: %s", strerror(-r));
                return r;
        }

        struct sb_child_ctx ctx = {
                .limits = limits,
                .go_rd = p.go_rd,
                .setup_err_wr = p.setup_err_wr,
                .status_wr = p.status_wr,
                .stdout_wr = p.stdout_wr,
                .stderr_wr = p.stderr_wr,
                .result_wr = p.result_wr,
                .script_fd = p.script_fd,
        };
        cleanup_free char *stack = malloc(STACK_SIZE);
        if (!stack) {
                pipes_close(&p);
                snprintf(err, errlen, "allocating the clone stack: %s", strerror(ENOMEM));
                return -ENOMEM;
        }
        struct sb_cgroup cg = { 0 };
        if (sb_cgroups_enabled()) {
                r = sb_cgroup_create(&cg, limits, err, errlen);
                if (r < 0) {
                        pipes_close(&p);
                        return r;
                }
        }
        /* CLONE_NEWCGROUP is left to init, after it has been moved into its cgroup, so that
         * the cgroup it sees as its root is its own. */
        int flags = CLONE_NEWUSER | CLONE_NEWPID | CLONE_NEWNS | CLONE_NEWNET | CLONE_NEWIPC | CLONE_NEWUTS | SIGCHLD;
        pid_t init = clone(sb_child_main, stack + STACK_SIZE, flags, &ctx);
        if (init < 0) {
                r = -errno;
                pipes_close(&p);
                sb_cgroup_destroy(&cg);
                snprintf(err, errlen, "clone() into new namespaces: %s", strerror(-r));
                return r;
        }
        close_child_ends(&p);

        r = write_id_maps(init, limits->uid_base, err, errlen);
        if (r == 0 && cg.active && (r = sb_cgroup_attach(&cg, init)) < 0)
                snprintf(err, errlen, "moving the sandbox into its cgroup: %s", strerror(-r));
        if (r == 0 && write_all(p.go_wr, "g", 1) < 0) {
                r = -EPIPE;
                snprintf(err, errlen, "starting the sandbox's init: it died");
        }
        (void)close(p.go_wr);
        p.go_wr = -1;
        if (r < 0) {
                (void)kill(init, SIGKILL);
                (void)waitpid(init, NULL, 0);
                pipes_close(&p);
                sb_cgroup_destroy(&cg);
                return r;
        }

        r = collect(limits, &p, init, &st);
        (void)kill(init, SIGKILL); /* normally gone already; never leave it behind */
        while (waitpid(init, NULL, 0) < 0 && errno == EINTR)
                ;
        pipes_close(&p);
        if (cg.active) {
                long long peak;
                sb_cgroup_stats(&cg, &st.oom_killed, &peak);
                sb_cgroup_destroy(&cg);
        }
        if (r < 0) {
                snprintf(err, errlen, "watching the sandbox: %s", strerror(-r));
                goto fail;
        }
        if (st.setup_err.len > 0) {
                snprintf(err, errlen, "sandbox set-up failed: %s", st.setup_err.data);
                r = -EPERM;
                goto fail;
        }
        if (out->stdout_buf.oom || out->stderr_buf.oom || st.frame.oom) {
                snprintf(err, errlen, "out of memory collecting output");
                r = -ENOMEM;
                goto fail;
        }
        decide(limits, &st);
        run_state_free(&st);
        return 0;
fail:
        run_state_free(&st);
        sb_outcome_free(out);
        return r;
}
