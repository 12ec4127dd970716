/* sandbox.c — the worker's side of a run: prepare a sandbox, feed it, watch it, read it.
 *
 * sb_prepare() borrows the cgroups of the worker's slot for it (cgroup.c), clone()s init into
 * new namespaces, writes the user namespace's uid/gid maps and lets init go: init builds the
 * root, and then either forks the script's process itself (cold: init is moved into the
 * cgroups first) or says it is ready and pyexec-zygote's forker, which lives in the slot's
 * cgroups, forks one that joins its namespaces (warm). The script's process confines itself
 * and blocks reading its script. A prepared sandbox can wait for a request (prefork).
 *
 * sb_execute() writes the script and polls the pipes until each is at EOF or the wall-clock
 * deadline passes; at the deadline init is SIGKILLed, which takes its whole PID namespace with
 * it. It then reads the cgroup's verdict and hands the facts to sb_decide(); sb_discard() waits
 * for init to be gone (pidfd) and gives the cgroups back to the slot. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "internal.h"
#include "sandbox.h"
#include "verdict.h"
#include "zygote.h"

#define STDERR_MAX (64 * 1024)
#define SETUP_ERR_MAX 1024
/* How long to keep draining after the kill: the kernel tears the namespace down in far less. */
#define DRAIN_AFTER_KILL_MS 2000
#define READY_TIMEOUT_MS 5000 /* init building the root, on a busy machine */
#define CPU_CHECK_MS 100

void sb_outcome_free(struct sb_outcome *o)
{
        sbuf_free(&o->stdout_buf);
        sbuf_free(&o->stderr_buf);
        sbuf_free(&o->result);
        sbuf_free(&o->message);
        sbuf_free(&o->traceback);
        sbuf_free(&o->extras);
}

/* ---- cgroups --------------------------------------------------------------------------- */

static int cgroups_state; /* 0 not probed, 1 usable, -1 not usable */
static char cgroups_problem[256];

bool sb_cgroups_enabled(void)
{
        if (cgroups_state == 0) {
                struct sb_config c;
                struct sb_cgroup cg;
                sb_config_default(&c);
                cgroups_state = sb_cgroup_create(&cg, &c.limits, cgroups_problem, sizeof(cgroups_problem)) == 0 ? 1 : -1;
                sb_cgroup_destroy(&cg);
        }
        return cgroups_state > 0;
}

const char *sb_cgroups_name(void)
{
        if (!sb_cgroups_enabled())
                return "none";
        return sb_cgroup_version() == 2 ? "v2" : "v1";
}

const char *sb_cgroups_problem(void)
{
        return sb_cgroups_enabled() ? NULL : cgroups_problem;
}

void sb_cgroups_sweep(void)
{
        if (sb_cgroups_enabled())
                sb_cgroup_remove_stale();
}

/* ---- phase timings ---------------------------------------------------------------------- */

const char *const sb_phase_names[SB_PHASE_COUNT] = {
        [SB_PHASE_CGROUP_CREATE] = "cgroup_create", [SB_PHASE_SPAWN_INIT] = "spawn_init", [SB_PHASE_ROOT] = "root",
        [SB_PHASE_INJECT] = "inject",               [SB_PHASE_RUN] = "run",               [SB_PHASE_TEARDOWN] = "teardown",
        [SB_PHASE_CGROUP_REMOVE] = "cgroup_remove",
};

static uint64_t phase_us[SB_PHASE_COUNT]; /* since the last sb_phases_take() */

/* Ends a phase that began at *since, and begins the next one there. */
static void phase_done(enum sb_phase ph, long long *since)
{
        long long now = monotonic_us();
        phase_us[ph] += (uint64_t)(now - *since);
        *since = now;
}

void sb_phases_take(uint64_t us[SB_PHASE_COUNT])
{
        for (int i = 0; i < SB_PHASE_COUNT; i++) {
                us[i] += phase_us[i];
                phase_us[i] = 0;
        }
}

/* ---- preparing ------------------------------------------------------------------------- */

static void kill_init(struct sb_prepared *p)
{
        if (p->ends.pidfd >= 0)
                (void)syscall(SYS_pidfd_send_signal, p->ends.pidfd, SIGKILL, NULL, 0);
}

/* Waits until init has exited, and with it every process of its PID namespace. */
static void wait_init_gone(struct sb_prepared *p)
{
        if (p->ends.pidfd >= 0) {
                struct pollfd pfd = { .fd = p->ends.pidfd, .events = POLLIN };
                while (poll(&pfd, 1, 5000) < 0 && errno == EINTR)
                        ;
        }
        while (waitpid(p->init, NULL, __WALL) < 0 && errno == EINTR)
                ;
}

void sb_prepared_kill(struct sb_prepared *p)
{
        if (p->active)
                kill_init(p);
}

void sb_discard(struct sb_prepared *p)
{
        if (!p->active)
                return;
        long long t = monotonic_us();
        kill_init(p);
        wait_init_gone(p);
        sb_parent_ends_close(&p->ends);
        phase_done(SB_PHASE_TEARDOWN, &t);
        sb_cgroup_destroy(&p->cg);
        phase_done(SB_PHASE_CGROUP_REMOVE, &t);
        p->active = false;
}

bool sb_prepared_usable(const struct sb_prepared *p)
{
        if (!p->active || p->executed)
                return false;
        /* A sandbox whose init died while waiting (set-up failure, OOM, a kill) is no good. */
        struct pollfd pfd = { .fd = p->ends.pidfd, .events = POLLIN };
        return poll(&pfd, 1, 0) == 0;
}

/* Warm: once init has built the root, pyexec-zygote forks the script's process into it. */
static int inject_script_process(struct sb_prepared *p, struct sb_zygote *zygote, struct sb_child_ends *kept,
                                 const int *cgroup_fds, int ncgroups, char *err, size_t errlen)
{
        long long t = monotonic_us();
        struct pollfd pfd = { .fd = p->ends.ready_rd, .events = POLLIN };
        int r;
        while ((r = poll(&pfd, 1, READY_TIMEOUT_MS)) < 0 && errno == EINTR)
                ;
        char byte;
        bool ready = r > 0 && read(p->ends.ready_rd, &byte, 1) == 1;
        phase_done(SB_PHASE_ROOT, &t);
        if (!ready) {
                /* Init failed (and said why on the set-up pipe, now at EOF with our copy of its
                 * write end closed), or hangs. */
                sb_child_ends_close(kept);
                char why[SETUP_ERR_MAX + 1] = "";
                if (r > 0) {
                        ssize_t n = read_all(p->ends.setup_err_rd, why, SETUP_ERR_MAX);
                        why[n > 0 ? n : 0] = '\0';
                }
                snprintf(err, errlen, "setting up the sandbox: %s", why[0] ? why : r == 0 ? "init did not get ready" : "init died");
                return r == 0 ? -ETIMEDOUT : -EPIPE;
        }
        pid_t script;
        r = sb_zygote_inject(zygote, &p->limits, p->where.share_caller_netns, p->ends.pidfd, kept, cgroup_fds,
                             ncgroups, &script, err, errlen);
        phase_done(SB_PHASE_INJECT, &t);
        return r;
}

int sb_prepare(const struct sb_limits *limits, const struct sb_placement *where, struct sb_zygote *zygote,
               struct sb_cgroup_slot *slot, struct sb_prepared *p, char *err, size_t errlen)
{
        int r;
        memset(p, 0, sizeof(*p));
        p->limits = *limits;
        p->where = *where;
        p->warm = zygote != NULL;
        p->ends = SB_PARENT_ENDS_NONE;
        struct sb_child_ends kept = SB_CHILD_ENDS_NONE;
        if (!sb_cgroups_enabled() && limits->require_cgroups) {
                snprintf(err, errlen, "per-request cgroups are unavailable (%s), and require_cgroups = 1 keeps "
                         "scripts from running on rlimits alone", sb_cgroups_problem());
                return -ENOTSUP;
        }
        long long t = monotonic_us();
        if (sb_cgroups_enabled()) {
                r = sb_cgroup_borrow(slot, &p->cg, limits, err, errlen);
                if (r < 0)
                        return r;
        }
        phase_done(SB_PHASE_CGROUP_CREATE, &t);
        r = sb_spawn_init(limits, where, zygote != NULL, &p->init, &p->ends, &kept, err, errlen);
        if (r < 0) {
                sb_cgroup_destroy(&p->cg);
                return r;
        }
        p->active = true;

        /* The cgroups' cgroup.procs files. Cold, init is moved in, and the script's process is
         * its fork. Warm, the script's process is the fork of a forker that moves itself in
         * (once: the slot stays its tier's), and init stays out: each move into a cgroup waits
         * for an RCU grace period (cgroup_threadgroup_rwsem), which made a pool of 4 workers
         * 15% slower on pandas at c=4 than one without cgroups. */
        int cgroup_fds[SB_CG_COUNT], ncgroups = 0;
        if (p->cg.active) {
                if ((r = sb_cgroup_open_procs(&p->cg, cgroup_fds)) >= 0) {
                        ncgroups = r;
                        r = zygote ? 0 : sb_cgroup_move(cgroup_fds, ncgroups, p->init);
                }
                if (r < 0)
                        snprintf(err, errlen, "moving the sandbox into its cgroup: %s", strerror(-r));
        }
        struct sb_init_go go = { .go = 'g', .limits = p->limits };
        if (r == 0 && write_all(p->ends.go_wr, &go, sizeof(go)) < 0) {
                r = -EPIPE;
                snprintf(err, errlen, "starting the sandbox's init: it died");
        }
        phase_done(SB_PHASE_SPAWN_INIT, &t);
        if (r == 0 && zygote)
                r = inject_script_process(p, zygote, &kept, cgroup_fds, ncgroups, err, errlen);
        for (int i = 0; i < ncgroups; i++)
                (void)close(cgroup_fds[i]);
        sb_child_ends_close(&kept);
        if (r < 0) {
                sb_discard(p);
                return r;
        }
        /* go_wr stays open while the sandbox lives: init tells our death by it (child.c). */
        if (p->ends.ready_rd >= 0) {
                (void)close(p->ends.ready_rd);
                p->ends.ready_rd = -1;
        }
        return 0;
}

/* ---- executing ------------------------------------------------------------------------- */

struct stream {
        int fd;
        struct sbuf *buf;
        size_t keep;     /* bytes kept; the rest is read and dropped so the writer never blocks */
        bool overflowed;
        bool complete_when_full;
        int (*on_data)(void *ctx, const char *data, size_t len); /* sees the kept bytes as they come */
        void *ctx;
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
        if (take && s->on_data && s->on_data(s->ctx, chunk, take) < 0)
                return -ECONNRESET; /* whoever streams the output is gone */
        /* A stream of fixed size is done when full: init's report arrives before init has
         * finished exiting, and nothing follows it. */
        if (s->complete_when_full && s->buf->len == s->keep)
                return 1;
        return 0;
}

/* RLIMIT_CPU bounds each process; the request's CPU limit is on all of them together, as its
 * cpuacct cgroup counts them. Checked every CPU_CHECK_MS while the script runs, so a script
 * overshoots by at most that times the machine's cores. Returns when to check next. */
static long long check_cpu_time(struct sb_prepared *p, struct sb_run_facts *st, long long now)
{
        long long used = sb_cgroup_cpu_ms(&p->cg);
        if (used >= (long long)p->limits.cpu_time_s * 1000)
                st->cpu_limit_hit = true;
        return now + CPU_CHECK_MS;
}

/* The script's pipe: writes what fits, closes it at the end (EOF is how the runner knows it
 * has the whole script). EPIPE: the script's process died. */
static void feed_script(struct sb_prepared *p, const char *script, size_t len, size_t *fed)
{
        ssize_t w = *fed < len ? write(p->ends.script_wr, script + *fed, len - *fed) : 0;
        if (w > 0)
                *fed += (size_t)w;
        if (*fed == len || (w < 0 && errno != EAGAIN && errno != EINTR)) {
                (void)close(p->ends.script_wr);
                p->ends.script_wr = -1;
        }
}

/* Kills the sandbox at the wall-clock deadline, or once its CPU time is used up. True when it
 * did. */
static bool enforce_limits(struct sb_prepared *p, struct sb_run_facts *st, long long now, long long deadline,
                           long long *next_cpu_check)
{
        if (now >= deadline)
                st->deadline_hit = true;
        if (now >= *next_cpu_check)
                *next_cpu_check = check_cpu_time(p, st, now);
        if (!st->deadline_hit && !st->cpu_limit_hit)
                return false;
        kill_init(p);
        return true;
}

enum { WATCH_SCRIPT = -1, WATCH_CLIENT = -2 };

/* What to wait on: the open streams, the script's pipe while it is fed, and the client's
 * connection when the job watches it (its end, or anything on it, means it went away). */
static int poll_set(const struct sb_prepared *p, const struct sb_job *job, const struct stream *streams,
                    const bool *open, int count, struct pollfd *pfd, int *map)
{
        int n = 0;
        for (int i = 0; i < count; i++)
                if (open[i]) {
                        pfd[n] = (struct pollfd){ .fd = streams[i].fd, .events = POLLIN };
                        map[n++] = i;
                }
        if (p->ends.script_wr >= 0) {
                pfd[n] = (struct pollfd){ .fd = p->ends.script_wr, .events = POLLOUT };
                map[n++] = WATCH_SCRIPT;
        }
        if (job->watch_client) {
                pfd[n] = (struct pollfd){ .fd = job->client_fd, .events = POLLIN | POLLRDHUP };
                map[n++] = WATCH_CLIENT;
        }
        return n;
}

/* Feeds the script and polls the outputs until all are at EOF; kills init at the deadline or
 * when the request's CPU time is used up. -ECONNRESET: the job's on_stdout said stop. */
static int collect(struct sb_prepared *p, const struct sb_job *job, const char *script, size_t len,
                   struct sb_run_facts *st)
{
        const struct sb_limits *l = &p->limits;
        struct stream streams[] = {
                { .fd = p->ends.stdout_rd, .buf = &st->out->stdout_buf, .keep = l->stdout_max_bytes,
                  .on_data = job->on_stdout, .ctx = job->stdout_ctx },
                { .fd = p->ends.stderr_rd, .buf = &st->out->stderr_buf, .keep = STDERR_MAX },
                /* The largest frame the runner writes: its header on top of the result limit. */
                { .fd = p->ends.result_rd, .buf = &st->frame, .keep = sb_frame_max(l, p->extras, p->batch) },
                { .fd = p->ends.setup_err_rd, .buf = &st->setup_err, .keep = SETUP_ERR_MAX },
                { .fd = p->ends.status_rd, .buf = &st->status, .keep = sizeof(struct sb_init_report),
                  .complete_when_full = true },
        };
        enum { N = ARRAY_SIZE(streams) };
        bool open[N];
        for (int i = 0; i < N; i++)
                open[i] = true;
        size_t fed = 0;
        long long start = monotonic_ms();
        long long deadline = start + (long long)l->wall_time_s * 1000;
        long long give_up = 0;
        /* A batch's CPU limit is per call (each call's RLIMIT_CPU, runner.py); its calls together
         * are bounded by the wall time, not by one call's CPU time. */
        long long next_cpu_check = p->cg.active && !p->batch ? start + CPU_CHECK_MS : LLONG_MAX;
        (void)fcntl(p->ends.script_wr, F_SETFL, O_NONBLOCK);

        enum { OUT, ERR, RESULT, SETUP, STATUS };
        for (;;) {
                /* Done when everything is in. Or sooner: once the runner has sent its frame and
                 * closed stdout, stderr and the channel, the answer is known, and waiting for
                 * init's report would only wait for the kernel to free the interpreter's
                 * memory (milliseconds, for a forked numpy/pandas process). */
                bool outputs_done = !open[OUT] && !open[ERR] && !open[RESULT] && !open[SETUP];
                if (outputs_done && (!open[STATUS] || st->frame.len > 0))
                        break;
                struct pollfd pfd[N + 2];
                int map[N + 2];
                int n = poll_set(p, job, streams, open, N, pfd, map);
                long long now = monotonic_ms();
                if (!give_up && enforce_limits(p, st, now, deadline, &next_cpu_check))
                        give_up = now + DRAIN_AFTER_KILL_MS;
                if (give_up && now >= give_up)
                        return -ETIMEDOUT; /* something outside the namespace holds a pipe open */
                long long until = give_up ? give_up : deadline < next_cpu_check ? deadline : next_cpu_check;
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
                        if (map[k] == WATCH_CLIENT)
                                return -ECONNRESET;
                        if (map[k] == WATCH_SCRIPT) {
                                feed_script(p, script, len, &fed);
                                continue;
                        }
                        int i = map[k];
                        r = stream_read(&streams[i]);
                        if (r < 0)
                                return r;
                        if (r == 1)
                                open[i] = false;
                }
        }
        st->out->stdout_truncated = streams[OUT].overflowed;
        st->frame_overflowed = streams[RESULT].overflowed;
        st->out->wall_ms = monotonic_ms() - start;
        return 0;
}

/* What goes down the script's pipe (runner.py, _read_job): the limits, on one line, with '<'
 * before them when the runner must lower its rlimits to them ('=': they are the sandbox's);
 * the job's options, on one line; the script. */
static int job_input(const struct sb_limits *l, bool lower, const struct sb_job *job, struct sbuf *in)
{
        /* The texts of a batch's entries are the verdict's (errors.c, verdict.c). */
        char wall[64], cpu[64];
        int r = sbuf_printf(in, "%c{\"wall_time_s\": %u, \"cpu_time_s\": %u, \"memory_mb\": %lu, "
                            "\"max_processes\": %u, \"max_open_files\": %u, \"stdout_max_bytes\": %zu, "
                            "\"files_max_bytes\": %zu, \"memory_ceiling\": %lld, \"texts\": {\"memory_limit\": \"%s\", "
                            "\"timeout_wall\": \"%s\", \"timeout_cpu\": \"%s\"}}\n%s\n",
                            lower ? '<' : '=', l->wall_time_s, l->cpu_time_s, l->memory_mb, l->max_processes,
                            l->max_open_files, l->stdout_max_bytes, l->files_max_bytes, sb_memory_ceiling(l),
                            sb_error_kinds[SB_MEMORY_LIMIT].message,
                            sb_timeout_text(l->wall_time_s, wall, sizeof(wall)),
                            sb_timeout_text(l->cpu_time_s, cpu, sizeof(cpu)), job->options ? job->options : "{}");
        if (r == 0)
                r = sbuf_append(in, job->script, job->script_len);
        return r < 0 || in->oom ? -ENOMEM : 0;
}

/* The job's own limits take the place of the sandbox's: lowered in its cgroup here, and by
 * the runner in its rlimits before anything of the script runs. */
static int apply_job_limits(struct sb_prepared *p, const struct sb_job *job, char *err, size_t errlen)
{
        if (!job->limits)
                return 0;
        if (!sb_limits_within(job->limits, &p->limits)) {
                snprintf(err, errlen, "the job's limits exceed the sandbox's");
                return -EINVAL;
        }
        const struct sb_limits *j = job->limits;
        bool lower = j->memory_mb != p->limits.memory_mb || j->max_processes != p->limits.max_processes;
        p->lowered = lower || j->cpu_time_s != p->limits.cpu_time_s ||
                     j->max_open_files != p->limits.max_open_files;
        p->limits = *j;
        /* Three cgroup files written per request cost more than the rest of a hello world's
         * set-up: only when the job's limits differ. */
        int r = lower ? sb_cgroup_tighten(&p->cg, &p->limits, err, errlen) : 0;
        return r < 0 ? r : 0;
}

int sb_execute(struct sb_prepared *p, const struct sb_job *job, struct sb_outcome *out, char *err, size_t errlen)
{
        struct sb_run_facts st = { .out = out };
        memset(out, 0, sizeof(*out));
        if (!p->active || p->executed) {
                snprintf(err, errlen, "no sandbox prepared");
                return -EINVAL;
        }
        p->executed = true;
        p->extras = job->extras;
        p->batch = job->batch;
        struct sbuf in = { 0 };
        int r = apply_job_limits(p, job, err, errlen);
        if (r == 0 && (r = job_input(&p->limits, p->lowered, job, &in)) < 0)
                snprintf(err, errlen, "out of memory");
        if (r < 0) {
                sbuf_free(&in);
                kill_init(p);
                return r;
        }
        long long t = monotonic_us();
        sb_cgroup_begin_run(&p->cg);
        r = collect(p, job, in.data, in.len, &st);
        phase_done(SB_PHASE_RUN, &t);
        sbuf_free(&in);
        /* Whatever is left of the sandbox dies now; sb_discard() waits for it and removes the
         * cgroup, which the caller may leave until after it has answered. */
        kill_init(p);
        st.cgroup_peak = st.cgroup_cpu_ms = -1;
        if (p->cg.active) {
                sb_cgroup_stats(&p->cg, &st.oom_killed, &st.cgroup_peak);
                st.cgroup_cpu_ms = sb_cgroup_cpu_ms(&p->cg);
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
        out->batch = p->batch;
        sb_decide(&p->limits, &st);
        sbuf_free(&st.frame);
        sbuf_free(&st.setup_err);
        sbuf_free(&st.status);
        return 0;
fail:
        sbuf_free(&st.frame);
        sbuf_free(&st.setup_err);
        sbuf_free(&st.status);
        sb_outcome_free(out);
        return r;
}
