/* zygote_proto.h — the messages between a worker and its pyexec-zygote (see zygote.c). */
#ifndef PYEXEC_ZYGOTE_PROTO_H
#define PYEXEC_ZYGOTE_PROTO_H

#include <sys/types.h>

#include <stdbool.h>

#include "cgroup.h"
#include "sandbox.h"

/* The zygote's end of the control socket. */
#define ZY_CONTROL_FD 3

struct zy_hello {
        int ok;
        char message[480]; /* why not, when !ok */
};

/* worker -> zygote: make a script process in the namespaces of a prepared init. With it, by
 * SCM_RIGHTS, in this order: init's pidfd, the six ends of struct sb_child_ends, then
 * ncgroups cgroup.procs descriptors for the process to join. */
struct zy_inject {
        struct sb_limits limits;
        bool share_caller_netns; /* struct sb_placement */
        int ncgroups;
};
enum zy_inject_fd {
        ZY_FD_PIDFD,     /* init's: the namespaces to join, and what to kill when the script ends */
        ZY_FD_SCRIPT,    /* the script process's ends (struct sb_child_ends) */
        ZY_FD_STDOUT,
        ZY_FD_STDERR,
        ZY_FD_RESULT,
        ZY_FD_SETUP_ERR,
        ZY_FD_STATUS,    /* the zygote's to write the script's end on, never the script's */
        ZY_FD_CGROUPS,   /* then ncgroups cgroup.procs descriptors */
};
#define ZY_INJECT_FDS_MAX (ZY_FD_CGROUPS + SB_CG_COUNT)

/* zygote -> worker: the script process's pid, or why there is none. */
struct zy_reply {
        int err; /* 0, or the errno of the failed step */
        pid_t pid;
        char message[400];
};

#endif
