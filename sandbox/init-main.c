/* pyexec-init — the init factory, and through it PID 1 of every sandbox (see internal.h).
 *
 *   exec'd by sb_initd_clone() (initd.c) with the script's environment, fd 3 its control
 *   socket and fd 4 the compiled seccomp program; argv[1] is "factory"
 *
 * A static program with nothing in it but the sandbox's set-up. For each request it clone()s
 * an init into the asked namespaces, as a sibling (CLONE_PARENT: the caller is its parent and
 * its end is the caller's to see), and answers with init's pid and pidfd. What init holds in
 * memory is this program's: its image, descriptors, and the limits of the go message, never a
 * request's data. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include "internal.h"
#include "util.h"

#define STACK_SIZE (256 * 1024)

/* One stack serves every clone: each init gets a copy of this process's memory. */
static char stack[STACK_SIZE] __attribute__((aligned(16)));

static int init_child(void *arg)
{
        /* Nothing of the factory's own: not its control socket, not the program's memfd. */
        (void)close(SB_FACTORY_CONTROL_FD);
        (void)close(SB_FACTORY_SECCOMP_FD);
        sb_init_main(arg);
}

/* The context init starts from: the request's descriptors in the roles of struct
 * sb_child_ctx. The limits come later, with the go message. */
static void fill_context(struct sb_child_ctx *c, const struct sb_init_request *req, const int *slot)
{
        *c = (struct sb_child_ctx){
                .inject = req->inject != 0,
                .go_rd = slot[SB_INIT_GO],
                .ready_wr = slot[SB_INIT_READY],
                .ends = { .script_rd = slot[SB_INIT_SCRIPT], .stdout_wr = slot[SB_INIT_STDOUT],
                          .stderr_wr = slot[SB_INIT_STDERR], .result_wr = slot[SB_INIT_RESULT],
                          .setup_err_wr = slot[SB_INIT_SETUP_ERR], .status_wr = slot[SB_INIT_STATUS] },
        };
}

/* Receives one request; its descriptors land in their slots (-1 where none came). Returns
 * the datagram's length, 0 when the caller is gone, -1 for a malformed or transient one. */
static ssize_t receive(struct sb_init_request *req, int *slot)
{
        char control[CMSG_SPACE(sizeof(int) * SB_INIT_SLOTS)];
        struct iovec iov = { req, sizeof(*req) };
        struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = control, .msg_controllen = sizeof(control) };
        for (int i = 0; i < SB_INIT_SLOTS; i++)
                slot[i] = -1;
        ssize_t n = recvmsg(SB_FACTORY_CONTROL_FD, &msg, MSG_CMSG_CLOEXEC);
        if (n <= 0)
                return n == 0 || (errno != EINTR && errno != EAGAIN) ? 0 : -1;
        struct cmsghdr *c = CMSG_FIRSTHDR(&msg);
        int count = c && c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS
                            ? (int)((c->cmsg_len - CMSG_LEN(0)) / sizeof(int)) : 0;
        const int *in = count ? (const int *)CMSG_DATA(c) : NULL;
        int k = 0;
        for (int i = 0; i < SB_INIT_SLOTS && k < count; i++)
                if (req->slots & (1u << i))
                        slot[i] = in[k++];
        bool whole = (size_t)n == sizeof(*req) && !(msg.msg_flags & (MSG_TRUNC | MSG_CTRUNC)) &&
                     k == __builtin_popcount(req->slots & ((1u << SB_INIT_SLOTS) - 1)) && k == count;
        if (!whole) {
                for (int i = 0; i < count; i++)
                        (void)close(in[i]);
                return -1;
        }
        return n;
}

static void reply(const struct sb_init_reply *r, int pidfd)
{
        (void)send_with_fds(SB_FACTORY_CONTROL_FD, r, sizeof(*r), &pidfd, pidfd >= 0 ? 1 : 0, 0);
}

static int factory_main(void)
{
        if (prctl(PR_SET_PDEATHSIG, SIGKILL) < 0 || getppid() == 1)
                return 1; /* the caller is gone already */
        (void)prctl(PR_SET_NAME, "pyexec-initd");
        if (sb_seccomp_load(SB_FACTORY_SECCOMP_FD) < 0)
                return 1; /* the caller sees EOF and says so */
        /* Without it (no CAP_SYS_ADMIN), each init builds its own root: slower, as safe. */
        char why[300];
        (void)sb_root_template_prepare(why, sizeof(why));
        for (;;) {
                struct sb_init_request req;
                int slot[SB_INIT_SLOTS];
                ssize_t n = receive(&req, slot);
                if (n == 0)
                        return 0;
                if (n < 0)
                        continue;
                struct sb_child_ctx ctx;
                fill_context(&ctx, &req, slot);
                int pidfd = -1;
                int flags = (req.clone_flags & ~(CLONE_VM | CLONE_THREAD | CLONE_FILES)) | CLONE_PARENT | CLONE_PIDFD;
                pid_t pid = clone(init_child, stack + STACK_SIZE, flags, &ctx, &pidfd);
                struct sb_init_reply r = { .err = pid < 0 ? errno : 0, .pid = pid };
                reply(&r, pid < 0 ? -1 : pidfd);
                if (pidfd >= 0)
                        (void)close(pidfd);
                for (int i = 0; i < SB_INIT_SLOTS; i++)
                        if (slot[i] >= 0)
                                (void)close(slot[i]);
        }
}

int main(int argc, char **argv)
{
        if (argc > 1 && strcmp(argv[1], "factory") == 0)
                return factory_main();
        fprintf(stderr, "pyexec-init: started by the pool's workers and pyexec-run only\n");
        return 2;
}
