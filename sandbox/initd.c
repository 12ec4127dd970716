/* initd.c — the caller's side of its init factory (pyexec-init factory; see internal.h).
 *
 * One factory per process, started on first use: it is the caller's child (so that, cloned
 * with CLONE_PARENT, the inits it makes are the caller's children too), and a forked child of
 * the caller (a worker forked by the master) starts its own. It is made after the caller has
 * moved into its private network namespace (sb_network_private()), which the inits it clones
 * share. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "image.h"
#include "internal.h"
#include "util.h"

#define REPLY_TIMEOUT_MS 5000

static struct {
        pid_t owner; /* the process whose factory this is */
        pid_t pid;
        int sock;
} factory = { .pid = -1, .sock = -1 };

void sb_initd_stop(void)
{
        if (factory.owner != getpid())
                return; /* a parent's: not ours to stop (its descriptor is closed on exec only) */
        if (factory.sock >= 0)
                (void)close(factory.sock);
        if (factory.pid > 0) {
                (void)kill(factory.pid, SIGKILL);
                while (waitpid(factory.pid, NULL, 0) < 0 && errno == EINTR)
                        ;
        }
        factory.sock = factory.pid = -1;
}

/* The factory's child side: its two descriptors in place, nothing else, the exec. */
static __attribute__((noreturn)) void exec_factory(int sock, int image, int program, char **envp)
{
        /* A process group of its own, as the interpreters have (zygote.c): a terminal's Ctrl-C
         * goes to `make run`'s group, and killed by it the factory took a request down with it.
         * The pool ends it (its worker's death signal, or sb_initd_stop()). */
        (void)setpgid(0, 0);
        int devnull = open("/dev/null", O_RDWR | O_CLOEXEC);
        int img = fcntl(image, F_DUPFD_CLOEXEC, SB_FACTORY_SECCOMP_FD + 1);
        int prog = fcntl(program, F_DUPFD_CLOEXEC, SB_FACTORY_SECCOMP_FD + 1);
        if (devnull < 0 || img < 0 || prog < 0 || dup2(devnull, 0) < 0 || dup2(devnull, 1) < 0 ||
            dup2(devnull, 2) < 0 || dup2(sock, SB_FACTORY_CONTROL_FD) < 0 || dup2(prog, SB_FACTORY_SECCOMP_FD) < 0 ||
            syscall(SYS_close_range, SB_FACTORY_SECCOMP_FD + 1, ~0U, CLOSE_RANGE_CLOEXEC) < 0)
                _exit(127);
        char *argv[] = { "pyexec-init", "factory", NULL };
        (void)sb_image_exec(img, argv, envp);
        _exit(127);
}

static int start(char *err, size_t errlen)
{
        if (factory.owner != getpid()) {
                /* Inherited from the process that forked us: its factory, not ours. */
                if (factory.sock >= 0)
                        (void)close(factory.sock);
                factory.sock = factory.pid = -1;
        }
        factory.owner = getpid();
        char path[PATH_MAX];
        sb_image_path_beside("pyexec-init", path, sizeof(path));
        int image = sb_image_once(path, "pyexec-init"), r = sb_seccomp_compile();
        if (image < 0) {
                snprintf(err, errlen, "copying %s: %s", path, strerror(-image));
                return image;
        }
        if (r < 0) {
                snprintf(err, errlen, "compiling the seccomp filter: %s", strerror(-r));
                return r;
        }
        int sv[2];
        if ((r = sb_socketpair_unseen(SOCK_SEQPACKET | SOCK_CLOEXEC, sv)) < 0) {
                snprintf(err, errlen, "socketpair: %s", strerror(-r));
                return r;
        }
        /* The script's environment: nothing of the caller's reaches init's memory. */
        char *envp[SB_SCRIPT_ENV_MAX];
        sb_build_script_env(envp, SB_SCRIPT_ENV_MAX);
        pid_t pid = fork();
        if (pid == 0)
                exec_factory(sv[1], image, sb_seccomp_program_fd(), envp);
        r = pid < 0 ? -errno : 0;
        (void)close(sv[1]);
        if (r < 0) {
                (void)close(sv[0]);
                snprintf(err, errlen, "starting the init factory: %s", strerror(-r));
                return r;
        }
        factory.pid = pid;
        factory.sock = sv[0];
        return 0;
}

static int send_request(int flags, bool inject, const int *fds)
{
        struct sb_init_request req = { .clone_flags = flags, .inject = inject };
        int sent[SB_INIT_SLOTS], n = 0;
        for (int i = 0; i < SB_INIT_SLOTS; i++)
                if (fds[i] >= 0) {
                        req.slots |= 1u << i;
                        sent[n++] = fds[i];
                }
        _Static_assert(SB_INIT_SLOTS <= SEND_FDS_MAX, "a request's descriptors fit one message");
        ssize_t w = send_with_fds(factory.sock, &req, sizeof(req), sent, (size_t)n, 0);
        return w == (ssize_t)sizeof(req) ? 0 : w < 0 ? (int)w : -EPROTO;
}

static int receive_reply(struct sb_init_reply *r, int *pidfd)
{
        struct pollfd pfd = { .fd = factory.sock, .events = POLLIN };
        int p;
        while ((p = poll(&pfd, 1, REPLY_TIMEOUT_MS)) < 0 && errno == EINTR)
                ;
        if (p <= 0)
                return p < 0 ? -errno : -ETIMEDOUT;
        char control[CMSG_SPACE(sizeof(int))];
        struct iovec iov = { r, sizeof(*r) };
        struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = control, .msg_controllen = sizeof(control) };
        ssize_t n;
        while ((n = recvmsg(factory.sock, &msg, MSG_CMSG_CLOEXEC)) < 0 && errno == EINTR)
                ;
        if (n <= 0)
                return n < 0 ? -errno : -ECONNRESET;
        struct cmsghdr *c = CMSG_FIRSTHDR(&msg);
        *pidfd = -1;
        if (c && c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS && c->cmsg_len == CMSG_LEN(sizeof(int)))
                memcpy(pidfd, CMSG_DATA(c), sizeof(int));
        if ((size_t)n != sizeof(*r) || (r->err == 0 && *pidfd < 0)) {
                if (*pidfd >= 0)
                        (void)close(*pidfd);
                return -EPROTO;
        }
        return 0;
}

/* One request and its answer. A factory that is gone (killed, crashed) is replaced once. */
int sb_initd_clone(int flags, bool inject, const int *fds, pid_t *pid, int *pidfd, char *err, size_t errlen)
{
        for (int attempt = 0;; attempt++) {
                int r = 0;
                if (factory.owner != getpid() || factory.sock < 0)
                        r = start(err, errlen);
                if (r < 0)
                        return r;
                struct sb_init_reply reply;
                r = send_request(flags, inject, fds);
                bool delivered = r == 0;
                if (r == 0)
                        r = receive_reply(&reply, pidfd);
                if (r == 0 && reply.err) {
                        snprintf(err, errlen, "clone() into new namespaces: %s", strerror(reply.err));
                        return -reply.err;
                }
                if (r == 0) {
                        *pid = reply.pid;
                        return 0;
                }
                sb_initd_stop();
                /* Asked again only if the request never reached it: a factory that died after
                 * taking it may have cloned an init with these very pipes, and a second init on
                 * them would race the first for the go message (the loser never gets ready). */
                if (attempt > 0 || delivered) {
                        snprintf(err, errlen, "the init factory did not answer: %s", strerror(-r));
                        return r;
                }
        }
}
