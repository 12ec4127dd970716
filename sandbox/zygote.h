/* zygote.h — warm mode: a process holding an initialised interpreter that sandboxes fork from.
 *
 * pyexec-zygote (sandbox/zygote-main.c) is started by each worker before it serves anything:
 * it is exec()d fresh, so its memory never holds any request's data. It initialises CPython
 * with the sandbox's environment, imports the preload modules (numpy, pandas, ...) and then
 * only clone()s sandbox inits on request, handing their pipes back over a unix socket. The
 * script reaches the sandbox straight from the worker; the zygote never sees it. */
#ifndef PYEXEC_ZYGOTE_H
#define PYEXEC_ZYGOTE_H

#include <stdbool.h>
#include <sys/types.h>

#include "sandbox.h"

struct sb_zygote {
        pid_t pid;
        int sock; /* SOCK_SEQPACKET to the zygote */
};

/* The path of pyexec-zygote: next to the running binary (pyexec-worker, pyexec-run). */
void sb_zygote_default_path(char *out, size_t outlen);

/* Starts path (pyexec-zygote) with the modules to preload (space-separated) and waits until it
 * is ready. 0, or -errno with err set (its own report when it failed to initialise). */
int sb_zygote_start(struct sb_zygote *z, const char *path, const char *preload, char *err, size_t errlen);
/* Asks the zygote for a sandbox init under limits. 0, or -errno with err set. */
int sb_zygote_spawn(struct sb_zygote *z, const struct sb_limits *l, pid_t *init, struct sb_parent_ends *ends,
                    char *err, size_t errlen);
/* Whether the zygote is still running. */
bool sb_zygote_alive(struct sb_zygote *z);
/* Stops the zygote (its sandboxes die with it). */
void sb_zygote_stop(struct sb_zygote *z);

#endif
