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

#include "internal.h"
#include "util.h"


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
 * caller's id slot (sandbox.h); nothing else is mapped, so every host file shows as owned by
 * nobody. */
static int write_id_maps(pid_t pid, const struct sb_limits *l, const struct sb_placement *where, char *err,
                         size_t errlen)
{
        unsigned slot = where->id_slot < SB_ID_SLOTS ? where->id_slot : SB_ID_SLOT_RUN;
        unsigned host = l->uid_base + 2 * slot;
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

int sb_spawn_init(const struct sb_limits *limits, const struct sb_placement *where, bool inject, pid_t *pid, struct sb_parent_ends *ends,
                  struct sb_child_ends *kept, char *err, size_t errlen)
{
        struct sb_child_ctx ctx = { .limits = *limits, .inject = inject, .go_rd = -1, .ready_wr = -1 };
        struct sb_parent_ends e = SB_PARENT_ENDS_NONE;
        ctx.ends = SB_CHILD_ENDS_NONE;
        struct sb_child_ends *c = &ctx.ends;

        int r;
        /* The seccomp program is compiled where it is installed from: by the init factory's
         * start (initd.c) and by pyexec-zygote. */
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

        /* CLONE_NEWCGROUP is left to init: it unshares it once the worker has moved it into
         * its cgroup, so the cgroup it sees as its root is its own. The pidfd is a handle on
         * init that no pid reuse can fool. */
        int flags = CLONE_NEWUSER | CLONE_NEWPID | CLONE_NEWNS | CLONE_NEWIPC | CLONE_NEWUTS;
        if (!where->share_caller_netns)
                flags |= CLONE_NEWNET;
        int fds[SB_INIT_SLOTS] = { [SB_INIT_GO] = ctx.go_rd, [SB_INIT_SETUP_ERR] = c->setup_err_wr,
                                   [SB_INIT_READY] = ctx.ready_wr, [SB_INIT_STATUS] = c->status_wr,
                                   [SB_INIT_SCRIPT] = c->script_rd, [SB_INIT_STDOUT] = c->stdout_wr,
                                   [SB_INIT_STDERR] = c->stderr_wr, [SB_INIT_RESULT] = c->result_wr };
        if (inject) /* the script process's ends are for pyexec-zygote's fork, not for init */
                fds[SB_INIT_STATUS] = fds[SB_INIT_SCRIPT] = fds[SB_INIT_STDOUT] = fds[SB_INIT_STDERR] =
                        fds[SB_INIT_RESULT] = -1;
        pid_t child;
        r = sb_initd_clone(flags, inject, fds, &child, &e.pidfd, err, errlen);
        if (r < 0)
                goto out;
        r = write_id_maps(child, limits, where, err, errlen);
        if (r < 0) {
                (void)syscall(SYS_pidfd_send_signal, e.pidfd, SIGKILL, NULL, 0);
                while (waitpid(child, NULL, __WALL) < 0 && errno == EINTR)
                        ;
                goto out;
        }
        (void)fcntl(e.pidfd, F_SETFD, FD_CLOEXEC);
        *pid = child;
        *ends = e;
        e = SB_PARENT_ENDS_NONE; /* handed over */
        if (inject) {
                *kept = ctx.ends;
                ctx.ends = SB_CHILD_ENDS_NONE; /* handed over */
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
