/* zygote.h — warm mode: a process holding an initialised interpreter that sandboxes fork from.
 *
 * pyexec-zygote (sandbox/zygote-main.c) is started by the pool's master, one per tier, shared by
 * every worker (hub.c; pyexec-run starts its own): it is exec()d fresh, so its memory never
 * holds any request's data. It initialises CPython
 * with the sandbox's environment, imports the preload modules (numpy, pandas, ...) and then
 * only forks script processes into sandboxes the worker has prepared, and reports how they
 * ended. The script reaches the sandbox straight from the worker; the zygote never sees it. */
#ifndef PYEXEC_ZYGOTE_H
#define PYEXEC_ZYGOTE_H

#include <stdbool.h>
#include <sys/types.h>

#include "sandbox.h"

struct sb_child_ends;

struct sb_zygote {
        pid_t pid;
        int sock;                /* SOCK_SEQPACKET to the zygote */
        long long hello_due_ms;  /* a hub's fork whose hello is still to come: when it is due; else 0 */
};

/* The path of pyexec-zygote: next to the running binary (pyexec-worker, pyexec-run). */
void sb_zygote_default_path(char *out, size_t outlen);

/* Starts path (pyexec-zygote) with the modules to preload (space-separated) and waits until it
 * is ready. 0, or -errno with err set (its own report when it failed to initialise). */
int sb_zygote_start(struct sb_zygote *z, const char *path, const char *preload, char *err, size_t errlen);
/* The pool's hub of one tier (hub.c): path started with preload and door, the interpreter's
 * end of the door that every worker holds the other end of ("pyexec-zygote PRELOAD --hub";
 * it answers no hello: each worker that connects gets one). Its pid, or -errno with err set. */
pid_t sb_zygote_start_hub(const char *path, const char *preload, int door, char *err, size_t errlen);

/* Connects to the hub behind door: asks for a fork of it that serves this caller alone, and
 * does not wait for it: a hub still importing its tier's libraries answers when it is done
 * (sb_zygote_ready). Its pid is not ours (z->pid is -1): its end is its socket's. 0, or -errno
 * with err set. */
int sb_zygote_connect(struct sb_zygote *z, int door, char *err, size_t errlen);
/* Whether the zygote has said it is ready, waiting up to wait_ms for that (-1: as long as its
 * start may take). 1, 0 while it is still starting, or -errno with err set (its own report when
 * it could not initialise) and the zygote stopped. */
int sb_zygote_ready(struct sb_zygote *z, int wait_ms, char *err, size_t errlen);

struct sb_child_ends;
/* Asks the zygote for a script process in the namespaces of init (its pidfd), a prepared
 * sandbox's whose root is built: a fork of the interpreter that joins the cgroups whose
 * cgroup.procs files are cgroup_fds[0..ncgroups), then init's namespaces, and runs the
 * script process's recipe on ends. The zygote reports its end on ends->status_wr and then
 * kills init. share_caller_netns: whether init shares the caller's network namespace (struct
 * sb_placement). The caller keeps (and closes) every descriptor it passed. 0, or -errno with err
 * set. */
int sb_zygote_inject(struct sb_zygote *z, const struct sb_limits *l, bool share_caller_netns, int init_pidfd, const struct sb_child_ends *ends,
                     const int *cgroup_fds, int ncgroups, pid_t *pid, char *err, size_t errlen);
/* Whether the zygote is still running. */
bool sb_zygote_alive(struct sb_zygote *z);
/* Stops the zygote (its sandboxes die with it). */
void sb_zygote_stop(struct sb_zygote *z);

#endif
