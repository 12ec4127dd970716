/* pyexec-init — PID 1 of every sandbox (see internal.h, enum sb_init_fd).
 *
 *   exec'd by the worker's clone()d child, already in the sandbox's new namespaces, with
 *   argv[1] "cold" (it forks the script's process) or "warm" (pyexec-zygote's fork joins it)
 *
 * A static program with nothing in it but the sandbox's set-up: what it holds in memory is its
 * own image, its descriptors and the limits of the go message, never a request's data. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "internal.h"
#include "util.h"

int main(int argc, char **argv)
{
        /* The worker blocked every signal around the clone (as posix_spawn does). */
        sigset_t none;
        sigemptyset(&none);
        (void)sigprocmask(SIG_SETMASK, &none, NULL);

        bool warm = argc > 1 && strcmp(argv[1], "warm") == 0;
        struct sb_child_ctx ctx = {
                .inject = warm,
                .go_rd = SB_INIT_FD_GO,
                .ready_wr = warm ? SB_INIT_FD_READY : -1,
                .ends = { .script_rd = warm ? -1 : SB_INIT_FD_SCRIPT,
                          .stdout_wr = warm ? -1 : SB_INIT_FD_STDOUT,
                          .stderr_wr = warm ? -1 : SB_INIT_FD_STDERR,
                          .result_wr = warm ? -1 : SB_INIT_FD_RESULT,
                          .setup_err_wr = SB_INIT_FD_SETUP_ERR,
                          .status_wr = warm ? -1 : SB_INIT_FD_STATUS },
        };
        /* As in the worker, every descriptor is close-on-exec: the script's process keeps only
         * what its recipe places, and python3 is exec'd with nothing else. */
        for (int fd = SB_INIT_FD_GO; fd < SB_INIT_FD_END; fd++)
                (void)fcntl(fd, F_SETFD, FD_CLOEXEC);
        if (!warm) {
                int r = sb_seccomp_load(SB_INIT_FD_SECCOMP);
                if (r < 0) {
                        char msg[128];
                        int n = snprintf(msg, sizeof(msg), "init: loading the seccomp program: %s", strerror(-r));
                        (void)write_all(SB_INIT_FD_SETUP_ERR, msg, (size_t)n);
                        return 127;
                }
        }
        sb_init_main(&ctx);
}
