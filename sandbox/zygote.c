/* zygote.c — the worker's side of pyexec-zygote: start it, ask it for sandboxes, stop it.
 *
 * The messages on the SOCK_SEQPACKET socket (one datagram each):
 *   zygote -> worker, once:   struct zy_hello  (ready, or why it could not initialise)
 *   worker -> zygote:         struct zy_inject + SCM_RIGHTS (init's pidfd, the script
 *                             process's ends, its cgroups): fork a script process into the
 *                             namespaces of this prepared init
 *   zygote -> worker:         struct zy_reply  (its pid, or why not) */
#define _GNU_SOURCE
#include "zygote.h"

#include <errno.h>
#include <linux/close_range.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "image.h"
#include "internal.h"
#include "zygote_proto.h"

#define START_TIMEOUT_MS 120000 /* importing pandas on a busy 2-core machine */
#define SPAWN_TIMEOUT_MS 5000

/* Whether sock has something to read (or its end) within timeout_ms: 1, 0, or -errno. */
static int readable(int sock, int timeout_ms)
{
        struct pollfd pfd = { .fd = sock, .events = POLLIN };
        int r;
        while ((r = poll(&pfd, 1, timeout_ms)) < 0 && errno == EINTR)
                ;
        return r < 0 ? -errno : r;
}

static int recv_timeout(int sock, void *buf, size_t len, int timeout_ms)
{
        int r = readable(sock, timeout_ms);
        if (r < 0)
                return r;
        if (r == 0)
                return -ETIMEDOUT;
        ssize_t n;
        while ((n = recv(sock, buf, len, 0)) < 0 && errno == EINTR)
                ;
        if (n < 0)
                return -errno;
        if (n == 0)
                return -ECONNRESET;
        return (size_t)n == len ? 0 : -EPROTO;
}

/* Its first message: ready, or why not. 0, or -errno with err set (the zygote is stopped). */
static int await_hello(struct sb_zygote *z, const char *what, int timeout_ms, char *err, size_t errlen)
{
        struct zy_hello hello;
        int r = recv_timeout(z->sock, &hello, sizeof(hello), timeout_ms);
        if (r < 0) {
                snprintf(err, errlen, "%s did not start: %s", what, r == -ECONNRESET ? "it exited" : strerror(-r));
                sb_zygote_stop(z);
                return r;
        }
        if (!hello.ok) {
                hello.message[sizeof(hello.message) - 1] = '\0';
                snprintf(err, errlen, "%s", hello.message);
                sb_zygote_stop(z);
                return -EINVAL;
        }
        return 0;
}

void sb_zygote_default_path(char *out, size_t outlen)
{
        sb_image_path_beside("pyexec-zygote", out, outlen);
}

/* Starts path with control as its control socket (fd 3): "pyexec-zygote PRELOAD [--hub]".
 * The child's pid, or -errno with err set. */
static pid_t spawn(const char *path, const char *preload, int control, bool hub, char *err, size_t errlen)
{
        int image = sb_image_once(path, "pyexec-zygote");
        if (image < 0) {
                snprintf(err, errlen, "copying %s: %s", path, strerror(-image));
                return image;
        }
        /* The zygote's environment is the script's own from its first instruction: exec'd
         * with the worker's, it would keep those strings in its stack (and every script's
         * fork with it) whatever it clears later. */
        char *envp[SB_SCRIPT_ENV_MAX];
        sb_build_script_env(envp, SB_SCRIPT_ENV_MAX);
        pid_t pid = fork();
        if (pid < 0) {
                int e = errno;
                snprintf(err, errlen, "fork: %s", strerror(e));
                return -e;
        }
        if (pid == 0) {
                /* The zygote holds nothing of its parent's: not the FastCGI socket (fd 0), not
                 * its stdout. Only stderr stays, for its own complaints. */
                (void)prctl(PR_SET_PDEATHSIG, SIGKILL);
                /* A process group of its own: a terminal's Ctrl-C goes to `make run`'s group,
                 * and CPython turns it into a KeyboardInterrupt in whatever it is importing,
                 * which it then reported to the workers as a tier that cannot import. Its
                 * parent ends it (the door's end, or the parent-death signal). */
                (void)setpgid(0, 0);
                int devnull = open("/dev/null", O_RDWR | O_CLOEXEC);
                /* The image must survive until execveat(): above the slots dup2() fills, and
                 * closed by the exec itself like every other descriptor past the control one. */
                image = fcntl(image, F_DUPFD_CLOEXEC, ZY_CONTROL_FD + 1);
                if (devnull < 0 || image < 0 || dup2(devnull, 0) < 0 || dup2(devnull, 1) < 0 ||
                    dup2(control, ZY_CONTROL_FD) < 0)
                        _exit(127);
                if (syscall(SYS_close_range, ZY_CONTROL_FD + 1, ~0U, CLOSE_RANGE_CLOEXEC) < 0)
                        _exit(127);
                char *argv[] = { "pyexec-zygote", (char *)preload, hub ? "--hub" : NULL, NULL };
                (void)sb_image_exec(image, argv, envp);
                _exit(127);
        }
        return pid;
}

/* z, empty, and the socket pair that will be its control socket (sv[0], ours) and the
 * interpreter's end (sv[1]). 0, or -errno with err set. */
static int control_pair(struct sb_zygote *z, int sv[2], char *err, size_t errlen)
{
        *z = (struct sb_zygote){ .pid = -1, .sock = -1 };
        int r = sb_socketpair_unseen(SOCK_SEQPACKET | SOCK_CLOEXEC, sv);
        if (r < 0)
                snprintf(err, errlen, "socketpair: %s", strerror(-r));
        return r;
}

int sb_zygote_start(struct sb_zygote *z, const char *path, const char *preload, char *err, size_t errlen)
{
        int sv[2];
        int r = control_pair(z, sv, err, errlen);
        if (r < 0)
                return r;
        pid_t pid = spawn(path, preload, sv[1], false, err, errlen);
        (void)close(sv[1]);
        if (pid < 0) {
                (void)close(sv[0]);
                return pid;
        }
        z->pid = pid;
        z->sock = sv[0];
        return await_hello(z, path, START_TIMEOUT_MS, err, errlen);
}

pid_t sb_zygote_start_hub(const char *path, const char *preload, int door, char *err, size_t errlen)
{
        return spawn(path, preload, door, true, err, errlen);
}

int sb_zygote_connect(struct sb_zygote *z, int door, char *err, size_t errlen)
{
        int sv[2];
        int r = control_pair(z, sv, err, errlen);
        if (r < 0)
                return r;
        /* With it, our network namespace: the scripts' when they share ours (struct
         * sb_placement), which they could not enter themselves from their user namespace. */
        int netns = open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC);
        if (netns < 0) {
                int e = errno;
                (void)close(sv[0]);
                (void)close(sv[1]);
                snprintf(err, errlen, "opening /proc/self/ns/net: %s", strerror(e));
                return -e;
        }
        int fds[2] = { sv[1], netns };
        ssize_t n = send_with_fds(door, "c", 1, fds, 2, MSG_DONTWAIT);
        (void)close(netns);
        int e = n == 1 ? 0 : n < 0 ? (int)-n : EPROTO;
        (void)close(sv[1]);
        z->sock = sv[0];
        if (e) {
                snprintf(err, errlen, "reaching the pool's interpreter: %s", strerror(e));
                sb_zygote_stop(z);
                return -e;
        }
        z->hello_due_ms = monotonic_ms() + START_TIMEOUT_MS;
        return 0;
}

int sb_zygote_ready(struct sb_zygote *z, int wait_ms, char *err, size_t errlen)
{
        if (z->sock < 0) {
                snprintf(err, errlen, "the zygote is not running");
                return -ENOTCONN;
        }
        if (z->hello_due_ms == 0)
                return 1;
        long long left = z->hello_due_ms - monotonic_ms();
        bool until_due = wait_ms < 0 || wait_ms >= left;
        if (readable(z->sock, until_due ? (int)(left > 0 ? left : 0) : wait_ms) == 0 && !until_due)
                return 0;
        /* Its hello, or why not; silence until it was due is a failure too. */
        z->hello_due_ms = 0;
        int r = await_hello(z, "the pool's interpreter", 0, err, errlen);
        return r < 0 ? r : 1;
}

int sb_zygote_inject(struct sb_zygote *z, const struct sb_limits *l, bool share_caller_netns, int init_pidfd, const struct sb_child_ends *ends,
                     const int *cgroup_fds, int ncgroups, pid_t *pid, char *err, size_t errlen)
{
        if (z->sock < 0) {
                snprintf(err, errlen, "the zygote is not running");
                return -ENOTCONN;
        }
        struct zy_inject req = { .limits = *l, .share_caller_netns = share_caller_netns, .ncgroups = ncgroups };
        int fds[ZY_INJECT_FDS_MAX] = { [ZY_FD_PIDFD] = init_pidfd, [ZY_FD_SCRIPT] = ends->script_rd,
                                       [ZY_FD_STDOUT] = ends->stdout_wr, [ZY_FD_STDERR] = ends->stderr_wr,
                                       [ZY_FD_RESULT] = ends->result_wr, [ZY_FD_SETUP_ERR] = ends->setup_err_wr,
                                       [ZY_FD_STATUS] = ends->status_wr };
        for (int i = 0; i < ncgroups && i < SB_CG_COUNT; i++)
                fds[ZY_FD_CGROUPS + i] = cgroup_fds[i];
        _Static_assert(ZY_INJECT_FDS_MAX <= SEND_FDS_MAX, "a request's descriptors fit one message");
        ssize_t n = send_with_fds(z->sock, &req, sizeof(req), fds, (size_t)ZY_FD_CGROUPS + (size_t)ncgroups, 0);
        if (n != (ssize_t)sizeof(req)) {
                int e = n < 0 ? (int)-n : EPROTO;
                snprintf(err, errlen, "asking the zygote for a script process: %s", strerror(e));
                return -e;
        }
        struct zy_reply reply;
        int r = recv_timeout(z->sock, &reply, sizeof(reply), SPAWN_TIMEOUT_MS);
        if (r < 0) {
                snprintf(err, errlen, "the zygote did not answer: %s", r == -ECONNRESET ? "it exited" : strerror(-r));
                return r;
        }
        if (reply.err != 0) {
                reply.message[sizeof(reply.message) - 1] = '\0';
                snprintf(err, errlen, "%s", reply.message);
                return -reply.err;
        }
        *pid = reply.pid;
        return 0;
}

bool sb_zygote_alive(struct sb_zygote *z)
{
        if (z->sock < 0)
                return false;
        if (z->hello_due_ms)
                return true; /* starting: its hello, or its end, is sb_zygote_ready()'s to read */
        if (z->pid <= 0) {
                /* A fork of the pool's hub: not ours to wait for; its end is the socket's. Between
                 * requests nothing is due on it, so anything readable is that end. */
                struct pollfd pfd = { .fd = z->sock, .events = POLLIN };
                return poll(&pfd, 1, 0) == 0;
        }
        int st;
        pid_t r = waitpid(z->pid, &st, WNOHANG);
        if (r == z->pid) {
                z->pid = -1;
                return false;
        }
        return true;
}

void sb_zygote_stop(struct sb_zygote *z)
{
        if (z->sock >= 0)
                (void)close(z->sock);
        z->sock = -1;
        z->hello_due_ms = 0;
        if (z->pid > 0) {
                (void)kill(z->pid, SIGKILL);
                while (waitpid(z->pid, NULL, 0) < 0 && errno == EINTR)
                        ;
        }
        z->pid = -1;
}
