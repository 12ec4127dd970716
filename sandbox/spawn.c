/* spawn.c — make a sandbox's pipes and clone() its init into new namespaces.
 *
 * The worker clones init from itself in both modes: a copy of a small process is cheap to
 * make and to tear down. Cold, init forks the script's process, which execve()s python3.
 * Warm, the script's process is a fork of pyexec-zygote (an interpreter that has already
 * imported numpy and pandas) that joins init's namespaces; init forks nothing. Either way
 * the uid/gid maps, the cgroup, feeding the script and watching the run are the worker's,
 * with the ends returned here. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <limits.h>
#include <pthread.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "image.h"
#include "internal.h"
#include "util.h"

#define STACK_SIZE (256 * 1024)

void sb_parent_ends_close(struct sb_parent_ends *e)
{
        int *all[] = { &e->pidfd, &e->go_wr, &e->ready_rd, &e->script_wr, &e->stdout_rd,
                       &e->stderr_rd, &e->result_rd, &e->setup_err_rd, &e->status_rd };
        for (size_t i = 0; i < ARRAY_SIZE(all); i++) {
                if (*all[i] >= 0)
                        (void)close(*all[i]);
                *all[i] = -1;
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

/* A network namespace is the costliest namespace to make and to destroy: 0.8 ms of CPU of
 * the 1 ms that all seven take (loopback device, sysctl tables, IPv6 set-up, then an
 * asynchronous cleanup_net). What a sandbox needs from it is that nothing outside is
 * reachable: no interface but a loopback that is down, no abstract unix socket of the host
 * or of another sandbox, no host connections in /proc/net. A worker therefore makes one
 * empty namespace for itself and all its sandboxes. It is owned by the host's user
 * namespace, so no sandbox (whose user namespace is a child of it) may configure it, and the
 * worker runs one script at a time and waits for each sandbox's whole PID namespace to die
 * before it hands the next script over (sb_discard()), so no two scripts are ever in it
 * together: the sockets a script leaves die with its processes. Where the worker may not
 * unshare (a container without CAP_SYS_ADMIN) every sandbox keeps a namespace of its own. */
/* The host's network namespace and the worker's private one, once it has one. */
static int host_netns = -1, private_netns = -1;

int sb_network_private(char *err, size_t errlen)
{
        host_netns = open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC);
        if (host_netns < 0) {
                int r = -errno;
                snprintf(err, errlen, "opening /proc/self/ns/net: %s", strerror(-r));
                return r;
        }
        if (unshare(CLONE_NEWNET) < 0 || (private_netns = open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC)) < 0) {
                int r = -errno;
                snprintf(err, errlen, "unshare(CLONE_NEWNET): %s", strerror(-r));
                (void)close(host_netns);
                host_netns = -1;
                return r;
        }
        return 0;
}

/* Every unix socket is listed in /proc/net/unix of the namespace it was made in, which the
 * scripts read: the worker's own sockets (to its zygotes) are made in the host's namespace,
 * where no script looks. */
int sb_socketpair_unseen(int type, int sv[2])
{
        if (host_netns < 0)
                return socketpair(AF_UNIX, type, 0, sv) < 0 ? -errno : 0;
        if (setns(host_netns, CLONE_NEWNET) < 0)
                return -errno;
        int r = socketpair(AF_UNIX, type, 0, sv) < 0 ? -errno : 0;
        if (setns(private_netns, CLONE_NEWNET) < 0)
                abort(); /* every later sandbox would share the host's network: never go on */
        return r;
}

static int write_proc_file(pid_t pid, const char *name, const char *text)
{
        char path[64];
        snprintf(path, sizeof(path), "/proc/%d/%s", (int)pid, name);
        return write_text_file(path, 0, text);
}

/* Sandbox uid 0 (init) and 1000 (the script) map to two unprivileged host uids of the
 * caller's id slot (config.h); nothing else is mapped, so every host file shows as owned by
 * nobody. */
static int write_id_maps(pid_t pid, const struct sb_limits *l, char *err, size_t errlen)
{
        unsigned host = l->uid_base + 2 * (l->id_slot < SB_ID_SLOTS ? l->id_slot : SB_ID_SLOT_RUN);
        char map[96];
        snprintf(map, sizeof(map), "0 %u 1\n%u %u 1\n", host, SB_SCRIPT_UID, host + 1);
        int r = write_proc_file(pid, "uid_map", map);
        if (r < 0) {
                snprintf(err, errlen, "writing uid_map: %s", strerror(-r));
                return r;
        }
        snprintf(map, sizeof(map), "0 %u 1\n%u %u 1\n", host, SB_SCRIPT_GID, host + 1);
        r = write_proc_file(pid, "gid_map", map);
        if (r < 0)
                snprintf(err, errlen, "writing gid_map: %s", strerror(-r));
        return r;
}

/* pyexec-init's image, copied once per process (image.h). */
static int init_image(char *err, size_t errlen)
{
        static int fd = -1;
        if (fd >= 0)
                return fd;
        char path[PATH_MAX];
        sb_image_path_beside("pyexec-init", path, sizeof(path));
        fd = sb_image_open(path, "pyexec-init");
        if (fd < 0)
                snprintf(err, errlen, "copying %s: %s", path, strerror(-fd));
        return fd;
}

struct init_exec {
        int fds[SB_INIT_FD_END]; /* the descriptor for each of init's slots, -1 for none */
        int release_rd;          /* one byte: the id maps are written, exec */
        int exec_wr;             /* CLOEXEC: EOF tells the parent the child exec'd (or died) */
        char **argv, **envp;
        int error;               /* set by the child when it could not exec */
};

/* The clone()d child, on the worker's memory (CLONE_VM) until the exec, so system calls only.
 * It waits until the worker has written its id maps (before, it has no uid of the namespace to
 * become), becomes its root, places each descriptor in its slot, closes everything else and
 * execs pyexec-init. */
static int exec_init(void *arg)
{
        struct init_exec *x = arg;
        char go;
        if (read(x->release_rd, &go, 1) != 1)
                _exit(127); /* the worker gave up on us */
        /* Root of the namespace before the exec, or the exec would drop every capability
         * there: the host root this child still is is not mapped in it. (Raw calls: glibc's
         * wrappers would try to change every thread of the worker, whose memory this is.) */
        if (syscall(SYS_setgroups, 0, NULL) < 0 || syscall(SYS_setresgid, 0, 0, 0) < 0 ||
            syscall(SYS_setresuid, 0, 0, 0) < 0)
                goto fail;
        int lifted[SB_INIT_FD_END];
        /* Lift every source above the slots first so no dup2 clobbers a later source. */
        for (int slot = SB_INIT_FD_GO; slot < SB_INIT_FD_END; slot++) {
                lifted[slot] = x->fds[slot] >= 0 ? fcntl(x->fds[slot], F_DUPFD_CLOEXEC, SB_INIT_FD_END + 1) : -1;
                if (x->fds[slot] >= 0 && lifted[slot] < 0)
                        goto fail;
        }
        int exec_wr = fcntl(x->exec_wr, F_DUPFD_CLOEXEC, SB_INIT_FD_END + 1);
        if (exec_wr < 0 || dup3(exec_wr, SB_INIT_FD_END, O_CLOEXEC) < 0)
                goto fail;
        for (int slot = SB_INIT_FD_GO; slot < SB_INIT_FD_END; slot++) {
                if (lifted[slot] < 0)
                        (void)close(slot); /* a descriptor of the worker's */
                else if (dup2(lifted[slot], slot) < 0)
                        goto fail;
        }
        if (fcntl(SB_INIT_FD_IMAGE, F_SETFD, FD_CLOEXEC) < 0 || syscall(SYS_close_range, 0, SB_INIT_FD_GO - 1, 0) < 0 ||
            syscall(SYS_close_range, SB_INIT_FD_END + 1, ~0U, 0) < 0)
                goto fail;
        (void)syscall(SYS_execveat, SB_INIT_FD_IMAGE, "", x->argv, x->envp, AT_EMPTY_PATH);
fail:
        x->error = errno ? errno : EIO;
        _exit(127);
}

/* clone()s a child into the namespaces of flags, writes its id maps and lets it exec
 * pyexec-init: no copy of the worker's memory is ever made. Returns once the child has exec'd
 * (its exec_wr closed), or with -errno and err set. Signals stay blocked until the clone is
 * done, as in posix_spawn(), so that no handler of the worker's runs on the child's stack. */
static pid_t clone_init(int flags, struct init_exec *x, const struct sb_limits *l, char *stack, int *pidfd, char *err,
                        size_t errlen)
{
        int release[2], exec_done[2];
        if (pipe2(release, O_CLOEXEC) < 0)
                return -errno;
        if (pipe2(exec_done, O_CLOEXEC) < 0) {
                int e = errno;
                (void)close(release[0]);
                (void)close(release[1]);
                return -e;
        }
        x->release_rd = release[0];
        x->exec_wr = exec_done[1];
        sigset_t all, saved;
        sigfillset(&all);
        (void)pthread_sigmask(SIG_SETMASK, &all, &saved);
        pid_t child = clone(exec_init, stack + STACK_SIZE, flags | CLONE_VM, x, pidfd);
        int r = child < 0 ? -errno : 0;
        (void)pthread_sigmask(SIG_SETMASK, &saved, NULL);
        (void)close(exec_done[1]);
        (void)close(release[0]);
        if (r < 0)
                snprintf(err, errlen, "clone() into new namespaces: %s", strerror(-r));
        else if ((r = write_id_maps(child, l, err, errlen)) < 0)
                (void)syscall(SYS_pidfd_send_signal, *pidfd, SIGKILL, NULL, 0);
        else if (write(release[1], "x", 1) != 1)
                r = -EPIPE;
        (void)close(release[1]);
        char byte;
        ssize_t n;
        while ((n = read(exec_done[0], &byte, 1)) < 0 && errno == EINTR)
                ; /* EOF: the child has exec'd or is gone; the stack and *x are ours again */
        (void)close(exec_done[0]);
        if (r == 0 && x->error) {
                r = -x->error;
                snprintf(err, errlen, "exec of pyexec-init: %s", strerror(-r));
        }
        if (r < 0 && child > 0) {
                (void)syscall(SYS_pidfd_send_signal, *pidfd, SIGKILL, NULL, 0);
                while (waitpid(child, NULL, __WALL) < 0 && errno == EINTR)
                        ;
                (void)close(*pidfd);
                *pidfd = -1;
        }
        return r < 0 ? r : child;
}

int sb_spawn_init(const struct sb_limits *limits, bool inject, pid_t *pid, struct sb_parent_ends *ends,
                  struct sb_child_ends *kept, char *err, size_t errlen)
{
        struct sb_child_ctx ctx = { .limits = *limits, .inject = inject, .go_rd = -1, .ready_wr = -1 };
        cleanup_free char *stack = NULL;
        struct sb_parent_ends e;
        memset(&e, 0xff, sizeof(e)); /* every fd -1 */
        memset(&ctx.ends, 0xff, sizeof(ctx.ends));
        struct sb_child_ends *c = &ctx.ends;

        int r = sb_seccomp_compile();
        if (r < 0) {
                snprintf(err, errlen, "compiling the seccomp filter: %s", strerror(-r));
                goto out;
        }
        if ((r = make_pipe(&ctx.go_rd, &e.go_wr)) < 0 || (inject && (r = make_pipe(&e.ready_rd, &ctx.ready_wr)) < 0) ||
            (r = make_pipe(&c->script_rd, &e.script_wr)) < 0 || (r = make_pipe(&e.stdout_rd, &c->stdout_wr)) < 0 ||
            (r = make_pipe(&e.stderr_rd, &c->stderr_wr)) < 0 || (r = make_pipe(&e.result_rd, &c->result_wr)) < 0 ||
            (r = make_pipe(&e.setup_err_rd, &c->setup_err_wr)) < 0 || (r = make_pipe(&e.status_rd, &c->status_wr)) < 0) {
                snprintf(err, errlen, "creating pipes: %s", strerror(-r));
                goto out;
        }
        /* The worker feeds scripts of up to script_max_bytes; a large pipe buffer lets most of
         * them go in one write. Failure only costs a few more poll rounds. */
        (void)fcntl(e.script_wr, F_SETPIPE_SZ, 1 << 20);

        int image = init_image(err, errlen);
        if (image < 0) {
                r = image;
                goto out;
        }
        stack = malloc(STACK_SIZE);
        if (!stack) {
                r = -ENOMEM;
                snprintf(err, errlen, "allocating the clone stack: %s", strerror(ENOMEM));
                goto out;
        }
        /* CLONE_NEWCGROUP is left to init: it unshares it once the worker has moved it into
         * its cgroup, so the cgroup it sees as its root is its own. CLONE_PIDFD gives a handle
         * on init that no pid reuse can fool. */
        int flags = CLONE_NEWUSER | CLONE_NEWPID | CLONE_NEWNS | CLONE_NEWIPC | CLONE_NEWUTS | CLONE_PIDFD | SIGCHLD;
        if (!limits->share_caller_netns)
                flags |= CLONE_NEWNET;
        char *envp[SB_SCRIPT_ENV_MAX];
        sb_build_script_env(envp, SB_SCRIPT_ENV_MAX);
        struct init_exec x = { .argv = (char *[]){ "init", inject ? "warm" : "cold", NULL }, .envp = envp };
        for (int slot = 0; slot < SB_INIT_FD_END; slot++)
                x.fds[slot] = -1;
        x.fds[SB_INIT_FD_GO] = ctx.go_rd;
        x.fds[SB_INIT_FD_SETUP_ERR] = c->setup_err_wr;
        x.fds[SB_INIT_FD_IMAGE] = image;
        if (inject) {
                x.fds[SB_INIT_FD_READY] = ctx.ready_wr;
        } else {
                x.fds[SB_INIT_FD_STATUS] = c->status_wr;
                x.fds[SB_INIT_FD_SECCOMP] = sb_seccomp_program_fd();
                x.fds[SB_INIT_FD_SCRIPT] = c->script_rd;
                x.fds[SB_INIT_FD_STDOUT] = c->stdout_wr;
                x.fds[SB_INIT_FD_STDERR] = c->stderr_wr;
                x.fds[SB_INIT_FD_RESULT] = c->result_wr;
        }
        pid_t child = clone_init(flags, &x, limits, stack, &e.pidfd, err, errlen);
        if (child < 0) {
                r = child;
                goto out;
        }
        (void)fcntl(e.pidfd, F_SETFD, FD_CLOEXEC);
        *pid = child;
        *ends = e;
        memset(&e, 0xff, sizeof(e)); /* handed over */
        if (inject) {
                *kept = ctx.ends;
                memset(&ctx.ends, 0xff, sizeof(ctx.ends)); /* handed over */
        }
out:
        if (ctx.go_rd >= 0)
                (void)close(ctx.go_rd);
        if (ctx.ready_wr >= 0)
                (void)close(ctx.ready_wr);
        sb_child_ends_close(&ctx.ends);
        sb_parent_ends_close(&e);
        return r;
}
