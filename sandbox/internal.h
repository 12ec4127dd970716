/* internal.h — what the sandbox's own modules share; not part of the library's interface. */
#ifndef PYEXEC_SANDBOX_INTERNAL_H
#define PYEXEC_SANDBOX_INTERNAL_H

#include <stddef.h>
#include <sys/resource.h>

#include "config.h"

/* Inside the sandbox the script runs as this uid/gid; init stays uid 0 without capabilities. */
#define SB_SCRIPT_UID 1000
#define SB_SCRIPT_GID 1000

/* Descriptors the script's process is given (see runner.py). */
enum { SB_FD_RESULT = 3, SB_FD_SCRIPT = 4 };

/* Everything the clone()d child needs; it lives in the parent's memory and is copied into the
 * child with the rest of the address space. */
struct sb_child_ctx {
        const struct sb_limits *limits;
        int go_rd;        /* parent writes one byte once the uid/gid maps are in place */
        int setup_err_wr; /* CLOEXEC: a set-up failure is written here; EOF means execve worked */
        int status_wr;    /* init reports the script's wait status and rusage here */
        int stdout_wr, stderr_wr, result_wr, script_fd;
};

/* What init sends the parent once the script's process has ended. */
struct sb_init_report {
        int wait_status;
        struct rusage usage; /* RUSAGE_CHILDREN of init: the script and all it reaped */
};

/* clone() entry point; never returns. */
int sb_child_main(void *ctx);

/* Builds the sandbox's root file system and pivots into it (mounts.c). Called by init as uid
 * 0 of the new user namespace. 0, or -errno with the failing step in err. */
int sb_setup_root(const struct sb_limits *limits, char *err, size_t errlen);

/* Installs the seccomp filter on the calling thread (seccomp.c). 0 or -errno. */
int sb_seccomp_install(void);

/* The runner, embedded at build time (runner_blob.S). */
extern const char sb_runner_py[];

#endif
