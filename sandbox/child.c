/* child.c — what runs inside the namespaces: init (PID 1) and the script's process.
 *
 * Theory of operation. sb_prepare() clone()s a child into new namespaces that at once execs
 * pyexec-init (init-main.c), which runs sb_init_main(). That process is PID 1 of the sandbox
 * ("init"). It waits until the parent has written its uid/gid maps,
 * becomes uid 0 of the new user namespace, builds the root file system and forks the script's
 * process (PID 2) — or, warm, says it is ready and pyexec-zygote forks PID 2, which joins the
 * namespaces with setns() (zygote-main.c). PID 2 follows one linear recipe —
 *
 *     setup_session(); setup_fds(); setup_rlimits(); setup_credentials();
 *     setup_no_new_privs(); setup_seccomp(); exec_payload();
 *
 * — and any failure on the way is written to the CLOEXEC set-up pipe (the parent sees EOF when
 * execve succeeded, a message when it did not) before _exit(127). Init drops its capabilities
 * and reaps every process that ends up parented to it. When PID 2 ends, its parent reports
 * PID 2's wait status and rusage and init exits (cold: init is the parent) or is killed (warm:
 * by the zygote). Init's end makes the kernel kill whatever else is left in the PID namespace,
 * so nothing the script started outlives it. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/capability.h>
#include <grp.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "internal.h"
#include "util.h"

#define PYTHON_PATH "/usr/bin/python3"

/* ---- failure reporting ---------------------------------------------------------------- */

/* The sandbox broke: tell the parent which step and why, then leave. Only the child may die;
 * init, the script's process and pyexec-zygote's fork all report this way. */
__attribute__((noreturn)) void sb_setup_failed(const struct sb_child_ctx *c, const char *step, int err)
{
        char msg[512];
        int n = snprintf(msg, sizeof(msg), "%s: %s", step, strerror(err < 0 ? -err : err));
        if (n > 0)
                (void)write_all(c->ends.setup_err_wr, msg, (size_t)n < sizeof(msg) ? (size_t)n : sizeof(msg) - 1);
        _exit(127);
}

/* ---- the script's process ------------------------------------------------------------- */

static void setup_session(const struct sb_child_ctx *c)
{
        /* A new session has no controlling terminal: TIOCSTI and friends have nothing to aim at. */
        if (setsid() < 0)
                sb_setup_failed(c, "setsid", errno);
        if (prctl(PR_SET_PDEATHSIG, SIGKILL) < 0)
                sb_setup_failed(c, "prctl(PR_SET_PDEATHSIG)", errno);
}

static void move_fd(const struct sb_child_ctx *c, int from, int to)
{
        if (from == to) {
                /* dup2 to itself would leave FD_CLOEXEC set: clear it instead. */
                if (fcntl(to, F_SETFD, 0) < 0)
                        sb_setup_failed(c, "fcntl(F_SETFD)", errno);
                return;
        }
        if (dup2(from, to) < 0)
                sb_setup_failed(c, "dup2", errno);
}

/* Only 0-2, the result channel and the script survive; every other inherited descriptor (the
 * FastCGI socket above all) is closed. The set-up pipe is moved out of the way and stays
 * CLOEXEC so that execve closes it. */
static void setup_fds(struct sb_child_ctx *c)
{
        int devnull = open("/dev/null", O_RDONLY | O_CLOEXEC);
        if (devnull < 0)
                sb_setup_failed(c, "open(/dev/null)", errno);
        /* Lift every source above the target range first so no dup2 clobbers a later source. */
        int *fds[] = { &devnull, &c->ends.stdout_wr, &c->ends.stderr_wr, &c->ends.result_wr, &c->ends.script_rd, &c->ends.setup_err_wr };
        for (size_t i = 0; i < ARRAY_SIZE(fds); i++) {
                int moved = fcntl(*fds[i], F_DUPFD_CLOEXEC, 10);
                if (moved < 0)
                        sb_setup_failed(c, "fcntl(F_DUPFD_CLOEXEC)", errno);
                *fds[i] = moved;
        }
        move_fd(c, devnull, 0);
        move_fd(c, c->ends.stdout_wr, 1);
        move_fd(c, c->ends.stderr_wr, 2);
        move_fd(c, c->ends.result_wr, SB_FD_RESULT);
        move_fd(c, c->ends.script_rd, SB_FD_SCRIPT);
        if (dup2(c->ends.setup_err_wr, SB_FD_SETUP_ERR) < 0)
                sb_setup_failed(c, "dup2", errno);
        if (fcntl(SB_FD_SETUP_ERR, F_SETFD, FD_CLOEXEC) < 0)
                sb_setup_failed(c, "fcntl(F_SETFD)", errno);
        c->ends.setup_err_wr = SB_FD_SETUP_ERR;
        if (syscall(SYS_close_range, SB_FD_FIRST_FREE, ~0U, 0) < 0)
                sb_setup_failed(c, "close_range", errno);
}

static void set_rlimit(const struct sb_child_ctx *c, int resource, const char *name, rlim_t soft, rlim_t hard)
{
        struct rlimit rl = { soft, hard };
        if (setrlimit(resource, &rl) < 0)
                sb_setup_failed(c, name, errno);
}

static void setup_rlimits(const struct sb_child_ctx *c)
{
        const struct sb_limits *l = &c->limits;
        /* SIGXCPU at the limit; the hard limit one second later is a SIGKILL for a script that
         * catches SIGXCPU. */
        set_rlimit(c, RLIMIT_CPU, "setrlimit(RLIMIT_CPU)", l->cpu_time_s, l->cpu_time_s + 1);
        rlim_t mem = (rlim_t)l->memory_mb << 20;
        set_rlimit(c, RLIMIT_AS, "setrlimit(RLIMIT_AS)", mem, mem);
        /* Counted per uid in the sandbox's own user namespace, so sandboxes do not share it. */
        set_rlimit(c, RLIMIT_NPROC, "setrlimit(RLIMIT_NPROC)", l->max_processes, l->max_processes);
        set_rlimit(c, RLIMIT_NOFILE, "setrlimit(RLIMIT_NOFILE)", l->max_open_files, l->max_open_files);
        /* /tmp's own size says ENOSPC first, as documented; this only backs it up (a file
         * exactly the size of /tmp would otherwise meet EFBIG). */
        rlim_t fsize = ((rlim_t)l->tmp_size_mb + 1) << 20;
        set_rlimit(c, RLIMIT_FSIZE, "setrlimit(RLIMIT_FSIZE)", fsize, fsize);
        /* Queued signals and POSIX timers (each holds one) are charged up the user namespaces
         * to root: without a limit of its own a script took ~96,000 and left host processes
         * none. */
        set_rlimit(c, RLIMIT_SIGPENDING, "setrlimit(RLIMIT_SIGPENDING)", SB_SIGPENDING_MAX, SB_SIGPENDING_MAX);
        set_rlimit(c, RLIMIT_CORE, "setrlimit(RLIMIT_CORE)", 0, 0);
        set_rlimit(c, RLIMIT_MEMLOCK, "setrlimit(RLIMIT_MEMLOCK)", 64 << 10, 64 << 10);
        set_rlimit(c, RLIMIT_MSGQUEUE, "setrlimit(RLIMIT_MSGQUEUE)", 0, 0);
        set_rlimit(c, RLIMIT_STACK, "setrlimit(RLIMIT_STACK)", 8 << 20, 8 << 20);
}

/* Empties the effective, permitted and inheritable sets. */
static int clear_capability_sets(void)
{
        struct __user_cap_header_struct hdr = { _LINUX_CAPABILITY_VERSION_3, 0 };
        struct __user_cap_data_struct data[2] = { { 0 } };
        return (int)syscall(SYS_capset, &hdr, data);
}

/* Drops the capability bounding set (needs CAP_SETPCAP, so before the uid change), becomes the
 * unprivileged script uid, then empties every other set explicitly. The uid change alone would
 * not do: it clears capabilities only when a uid was 0 *in the process's user namespace*, and a
 * warm script's process entered the namespace by setns() with a host uid the namespace does
 * not map, keeping every capability in it (the adversarial suite caught this). */
static void setup_credentials(const struct sb_child_ctx *c)
{
        for (int cap = 0; cap <= CAP_LAST_CAP; cap++)
                if (prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) < 0 && errno != EINVAL)
                        sb_setup_failed(c, "prctl(PR_CAPBSET_DROP)", errno);
        if (setgroups(0, NULL) < 0)
                sb_setup_failed(c, "setgroups", errno);
        if (setresgid(SB_SCRIPT_GID, SB_SCRIPT_GID, SB_SCRIPT_GID) < 0)
                sb_setup_failed(c, "setresgid", errno);
        if (setresuid(SB_SCRIPT_UID, SB_SCRIPT_UID, SB_SCRIPT_UID) < 0)
                sb_setup_failed(c, "setresuid", errno);
        if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) < 0)
                sb_setup_failed(c, "prctl(PR_CAP_AMBIENT_CLEAR_ALL)", errno);
        if (clear_capability_sets() < 0)
                sb_setup_failed(c, "capset", errno);
}

static void setup_no_new_privs(const struct sb_child_ctx *c)
{
        if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
                sb_setup_failed(c, "prctl(PR_SET_NO_NEW_PRIVS)", errno);
}

static void setup_seccomp(const struct sb_child_ctx *c)
{
        int r = sb_seccomp_install();
        if (r < 0)
                sb_setup_failed(c, "seccomp", r);
}

/* The scrubbed environment: nothing of the worker's leaks in. */
static char *const script_env[] = {
        "PATH=/usr/bin:/bin",
        "HOME=/tmp",
        "TMPDIR=/tmp",
        "LANG=C.UTF-8",
        "LC_ALL=C.UTF-8",
        "USER=sandbox",
        "LOGNAME=sandbox",
        /* One BLAS/OpenMP thread: a request gets one core's worth of work, and threads count
         * against max_processes. */
        "OPENBLAS_NUM_THREADS=1",
        "OMP_NUM_THREADS=1",
        "MKL_NUM_THREADS=1",
        "MPLBACKEND=Agg",
        "MPLCONFIGDIR=/tmp/.matplotlib",
        NULL,
};

/* Tuning some hosts need for their OpenBLAS to run correctly at all; passed through if set. */
static const char *const passthrough_env[] = { "OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE" };

void sb_build_script_env(char **envp, size_t cap)
{
        static char passthrough[ARRAY_SIZE(passthrough_env)][128];
        size_t n = 0;
        for (; script_env[n] && n + 1 < cap; n++)
                envp[n] = script_env[n];
        for (size_t i = 0; i < ARRAY_SIZE(passthrough_env); i++) {
                const char *v = getenv(passthrough_env[i]);
                if (!v || n + 1 >= cap)
                        continue;
                int w = snprintf(passthrough[i], sizeof(passthrough[i]), "%s=%s", passthrough_env[i], v);
                if (w > 0 && (size_t)w < sizeof(passthrough[i]))
                        envp[n++] = passthrough[i];
        }
        envp[n] = NULL;
}

static __attribute__((noreturn)) void exec_payload(const struct sb_child_ctx *c, char **envp)
{
        if (c->payload) {
                /* Warm: the interpreter is already here. Its environment is replaced too. */
                if (clearenv() != 0)
                        sb_setup_failed(c, "clearenv", ENOMEM);
                for (char **e = envp; *e; e++)
                        if (putenv(*e) != 0)
                                sb_setup_failed(c, "putenv", errno);
                /* No execve will close the set-up pipe: close it here, or the script could
                 * write to it and pass for a broken sandbox. */
                (void)close(c->ends.setup_err_wr);
                c->payload(&c->limits);
                _exit(127);
        }
        char result_max[32];
        snprintf(result_max, sizeof(result_max), "%zu", c->limits.result_max_bytes);
        /* -I: isolated mode, no user site-packages, no PYTHON* variables, no script dir on path. */
        char *argv[] = { "python3", "-I", "-c", (char *)sb_runner_py, result_max, NULL };
        execve(PYTHON_PATH, argv, envp);
        sb_setup_failed(c, "execve(" PYTHON_PATH ")", errno);
}

__attribute__((noreturn)) void sb_script_process_main(struct sb_child_ctx *c)
{
        char *envp[SB_SCRIPT_ENV_MAX];
        sb_build_script_env(envp, ARRAY_SIZE(envp));
        setup_session(c);
        setup_fds(c);
        setup_rlimits(c);
        setup_credentials(c);
        setup_no_new_privs(c);
        if (chdir("/tmp") < 0)
                sb_setup_failed(c, "chdir(/tmp)", errno);
        setup_seccomp(c);
        exec_payload(c, envp);
}

/* ---- init ----------------------------------------------------------------------------- */

static void drop_all_caps(const struct sb_child_ctx *c)
{
        if (clear_capability_sets() < 0)
                sb_setup_failed(c, "capset", errno);
        if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
                sb_setup_failed(c, "prctl(PR_SET_NO_NEW_PRIVS)", errno);
}

static void become_namespace_root(const struct sb_child_ctx *c)
{
        if (setgroups(0, NULL) < 0)
                sb_setup_failed(c, "setgroups", errno);
        if (setresgid(0, 0, 0) < 0)
                sb_setup_failed(c, "setresgid(0)", errno);
        if (setresuid(0, 0, 0) < 0)
                sb_setup_failed(c, "setresuid(0)", errno);
}

/* Init is a copy of the worker, and a warm script's process one of pyexec-zygote: each blanks
 * the command line it inherited (host paths, the pool's options) and renames itself, so /proc
 * inside tells the script nothing. (A cold script's process execs, which replaces both.) */
void sb_hide_identity(const char *name)
{
        char stat[1024];
        int fd = open("/proc/self/stat", O_RDONLY | O_CLOEXEC);
        ssize_t n = fd >= 0 ? read_all(fd, stat, sizeof(stat) - 1) : -1;
        if (fd >= 0)
                (void)close(fd);
        if (n > 0) {
                stat[n] = '\0';
                /* Fields 48 and 49, arg_start and arg_end, counted after the ")" of comm. */
                char *p = strrchr(stat, ')');
                unsigned long start = 0, end = 0;
                for (int field = 2; p && field < 49; field++) {
                        p = strchr(p + 1, ' ');
                        if (p && field == 47)
                                start = strtoul(p + 1, NULL, 10);
                        if (p && field == 48)
                                end = strtoul(p + 1, NULL, 10);
                }
                if (start && end > start && end - start < (1UL << 20))
                        memset((void *)start, 0, end - start);
        }
        (void)prctl(PR_SET_NAME, name);
}

/* Warm: the script's process is not ours to fork. pyexec-zygote forks it and it joins our
 * namespaces (its parent stays the zygote, which reports its end and then kills us). Init
 * says the root is ready, keeps no descriptor at all, and reaps what the script orphans
 * until it is killed. */
static __attribute__((noreturn)) void reap_for_injected_script(struct sb_child_ctx *c)
{
        drop_all_caps(c);
        sigset_t chld;
        sigemptyset(&chld);
        sigaddset(&chld, SIGCHLD);
        /* Blocked, so an exit between the last waitpid() and sigwaitinfo() stays pending. */
        if (sigprocmask(SIG_BLOCK, &chld, NULL) < 0)
                sb_setup_failed(c, "init: sigprocmask", errno);
        /* The zygote's fork joins our namespaces by setns() on our pidfd, which takes ptrace
         * read access to us. Our change of uid made us non-dumpable, and access to a
         * non-dumpable process needs CAP_SYS_PTRACE where our memory was made: a
         * least-privilege container does not grant it. Dumpable again, the owner of our user
         * namespace may (the script's process, uid 1000 there without capabilities, still may
         * not: it is not our uid). */
        if (prctl(PR_SET_DUMPABLE, 1, 0, 0, 0) < 0)
                sb_setup_failed(c, "init: prctl(PR_SET_DUMPABLE)", errno);
        if (write_all(c->ready_wr, "r", 1) < 0)
                _exit(127);
        if (syscall(SYS_close_range, 0, ~0U, 0) < 0)
                _exit(127);
        for (;;) {
                while (waitpid(-1, NULL, WNOHANG | __WALL) > 0)
                        ;
                (void)sigwaitinfo(&chld, NULL);
        }
}

void sb_child_ends_close(struct sb_child_ends *e)
{
        int *all[] = { &e->script_rd, &e->stdout_wr, &e->stderr_wr, &e->result_wr, &e->setup_err_wr, &e->status_wr };
        for (size_t i = 0; i < ARRAY_SIZE(all); i++) {
                if (*all[i] >= 0)
                        (void)close(*all[i]);
                *all[i] = -1;
        }
}

__attribute__((noreturn)) void sb_init_main(struct sb_child_ctx *c)
{
        /* If the worker dies, the sandbox dies with it. Set before waiting for "go" so that a
         * worker dying in between is noticed as EOF. */
        if (prctl(PR_SET_PDEATHSIG, SIGKILL) < 0)
                sb_setup_failed(c, "prctl(PR_SET_PDEATHSIG)", errno);
        struct sb_init_go go;
        if (read_all(c->go_rd, &go, sizeof(go)) != (ssize_t)sizeof(go))
                _exit(127); /* the parent gave up; it is not listening for a reason */
        c->limits = go.limits;

        /* The parent has moved us into this request's cgroup by now: make it our cgroup root. */
        if (unshare(CLONE_NEWCGROUP) < 0)
                sb_setup_failed(c, "unshare(CLONE_NEWCGROUP)", errno);
        sb_hide_identity("init");
        /* If the machine runs out of memory, sandboxes go first, not nginx or the pool: the only
         * bound across a sandbox's processes where there are no cgroups (containers). Written
         * while our credentials still own our /proc entries. */
        (void)write_text_file("/proc/self/oom_score_adj", 0, "1000");
        become_namespace_root(c);
        /* A change of credentials clears the parent-death signal: set it again, then make sure
         * the worker did not die in between (it holds the go pipe open while the sandbox
         * lives, so its death shows as a hang-up). Without this an init whose worker was
         * killed would outlive it. */
        if (prctl(PR_SET_PDEATHSIG, SIGKILL) < 0)
                sb_setup_failed(c, "prctl(PR_SET_PDEATHSIG)", errno);
        struct pollfd worker = { .fd = c->go_rd, .events = POLLIN };
        if (poll(&worker, 1, 0) != 0)
                _exit(127);
        (void)close(c->go_rd);

        char err[400];
        int r = sb_setup_root(&c->limits, err, sizeof(err));
        if (r < 0) {
                (void)write_all(c->ends.setup_err_wr, err, strlen(err));
                _exit(127);
        }
        if (sethostname("pyexec", 6) < 0)
                sb_setup_failed(c, "sethostname", errno);
        if (c->inject)
                reap_for_injected_script(c);

        pid_t script = fork();
        if (script < 0)
                sb_setup_failed(c, "fork", errno);
        if (script == 0)
                sb_script_process_main(c);

        /* Init keeps only the status pipe, as fd 3: not the script's pipes, and none of the
         * worker's descriptors (the FastCGI sockets above all). */
        drop_all_caps(c);
        enum { STATUS_FD = 3 };
        if (dup2(c->ends.status_wr, STATUS_FD) < 0 || syscall(SYS_close_range, 0, STATUS_FD - 1, 0) < 0 ||
            syscall(SYS_close_range, STATUS_FD + 1, ~0U, 0) < 0)
                sb_setup_failed(c, "init: closing descriptors", errno);

        struct sb_init_report report = { 0 };
        for (;;) {
                int st;
                pid_t p = waitpid(-1, &st, __WALL);
                if (p < 0) {
                        if (errno == EINTR)
                                continue;
                        _exit(126); /* ECHILD before the script ended cannot happen */
                }
                if (p == script) {
                        report.wait_status = st;
                        break;
                }
        }
        (void)getrusage(RUSAGE_CHILDREN, &report.usage);
        (void)write_all(STATUS_FD, &report, sizeof(report));
        _exit(0);
}
