/* spawn.c — make a sandbox's pipes and clone() its init into new namespaces.
 *
 * This is the one step that must run in the process whose memory the sandbox starts from: the
 * worker itself in cold mode (init then forks a process that execve()s python3), or
 * pyexec-zygote in warm mode (the script's process is a fork of an interpreter that has
 * already imported numpy and pandas). Everything else — uid/gid maps, the cgroup, feeding the
 * script, watching the run — is done by the worker with the ends returned here. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "internal.h"
#include "util.h"

#define STACK_SIZE (256 * 1024)

void sb_parent_ends_close(struct sb_parent_ends *e)
{
        int *all[] = { &e->pidfd, &e->go_wr, &e->script_wr, &e->stdout_rd, &e->stderr_rd,
                       &e->result_rd, &e->setup_err_rd, &e->status_rd };
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
int sb_network_private(char *err, size_t errlen)
{
        if (unshare(CLONE_NEWNET) < 0) {
                int r = -errno;
                snprintf(err, errlen, "unshare(CLONE_NEWNET): %s", strerror(-r));
                return r;
        }
        return 0;
}

int sb_spawn_init(const struct sb_limits *limits, sb_payload_fn payload, pid_t *pid, struct sb_parent_ends *ends,
                  char *err, size_t errlen)
{
        struct sb_child_ctx ctx = { .limits = *limits, .payload = payload };
        cleanup_free char *stack = NULL;
        struct sb_parent_ends e;
        memset(&e, 0xff, sizeof(e)); /* every fd -1 */
        int *child_ends[] = { &ctx.go_rd, &ctx.script_rd, &ctx.stdout_wr, &ctx.stderr_wr,
                              &ctx.result_wr, &ctx.setup_err_wr, &ctx.status_wr };
        for (size_t i = 0; i < ARRAY_SIZE(child_ends); i++)
                *child_ends[i] = -1;

        int r = sb_seccomp_compile();
        if (r < 0) {
                snprintf(err, errlen, "compiling the seccomp filter: %s", strerror(-r));
                goto out;
        }
        if ((r = make_pipe(&ctx.go_rd, &e.go_wr)) < 0 || (r = make_pipe(&ctx.script_rd, &e.script_wr)) < 0 ||
            (r = make_pipe(&e.stdout_rd, &ctx.stdout_wr)) < 0 || (r = make_pipe(&e.stderr_rd, &ctx.stderr_wr)) < 0 ||
            (r = make_pipe(&e.result_rd, &ctx.result_wr)) < 0 ||
            (r = make_pipe(&e.setup_err_rd, &ctx.setup_err_wr)) < 0 ||
            (r = make_pipe(&e.status_rd, &ctx.status_wr)) < 0) {
                snprintf(err, errlen, "creating pipes: %s", strerror(-r));
                goto out;
        }
        /* The worker feeds scripts of up to script_max_bytes; a large pipe buffer lets most of
         * them go in one write. Failure only costs a few more poll rounds. */
        (void)fcntl(e.script_wr, F_SETPIPE_SZ, 1 << 20);

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
        pid_t child = clone(sb_child_main, stack + STACK_SIZE, flags, &ctx, &e.pidfd);
        if (child < 0) {
                r = -errno;
                snprintf(err, errlen, "clone() into new namespaces: %s", strerror(-r));
                goto out;
        }
        (void)fcntl(e.pidfd, F_SETFD, FD_CLOEXEC);
        *pid = child;
        *ends = e;
        memset(&e, 0xff, sizeof(e)); /* handed over */
out:
        for (size_t i = 0; i < ARRAY_SIZE(child_ends); i++)
                if (*child_ends[i] >= 0)
                        (void)close(*child_ends[i]);
        sb_parent_ends_close(&e);
        return r;
}
