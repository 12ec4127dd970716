/* sandbox.h — run one Python script in a fresh sandbox and collect what it did.
 *
 * The whole interface of the sandbox library for its three users: the FastCGI worker,
 * pyexec-run and the tests. One call, sb_run(), does everything for one request: it clone()s
 * an init process into new user/PID/mount/IPC/UTS/cgroup (and network) namespaces, which
 * builds a read-only root; the script's process — init's fork that execve()s /usr/bin/python3
 * with the runner (cold), or a fork of pyexec-zygote's initialised interpreter that joins
 * init's namespaces (warm) — is confined (rlimits, credentials, capabilities, no_new_privs,
 * seccomp) and then runs the runner (sandbox/runner.py).
 *
 * Two kinds of failure never mix (as in isolate): sb_run() returns -errno when the sandbox
 * itself broke — nothing of the script ran, the caller answers 5xx — and returns 0 with
 * out->status != SB_OK when the script ran and failed, which is a served request. */
#ifndef PYEXEC_SANDBOX_H
#define PYEXEC_SANDBOX_H

#include <stdbool.h>
#include <stddef.h>

#include "cgroup.h"
#include "config.h"
#include "util.h"

enum sb_status {
        SB_OK,                /* main() returned; out->result holds its JSON text */
        SB_NO_MAIN,
        SB_SYNTAX_ERROR,
        SB_NOT_SERIALIZABLE,
        SB_EXCEPTION,         /* out->traceback holds the script's own frames */
        SB_TIMEOUT,           /* wall clock or CPU time */
        SB_MEMORY_LIMIT,
        SB_RESULT_TOO_LARGE,
        SB_EXITED,            /* the process ended before main() returned; out->exit_code */
        SB_KILLED,            /* by a signal we did not send; out->term_signal */
        SB_CHANNEL_TAMPERED,  /* the result channel held something the runner never writes */
        SB_STATUS_COUNT
};

/* Stable machine-readable name ("no_main", "timeout", ...), the API's error_kind. */
const char *sb_status_kind(enum sb_status s);

struct sb_outcome {
        enum sb_status status;
        struct sbuf stdout_buf;  /* raw bytes, at most stdout_max_bytes */
        bool stdout_truncated;
        struct sbuf stderr_buf;  /* raw bytes, at most 64 KiB; for operators, not the API */
        struct sbuf result;      /* SB_OK: validated JSON text */
        struct sbuf message;     /* the API's "error" text (UTF-8) when status != SB_OK */
        struct sbuf traceback;   /* SB_EXCEPTION */
        int exit_code;           /* SB_EXITED */
        int term_signal;         /* SB_KILLED */
        long long wall_ms;       /* from clone() to the last pipe closing */
        long long cpu_ms;        /* user + system of every process of the script */
        long peak_rss_kb;        /* largest resident set of any one of its processes */
};

void sb_outcome_free(struct sb_outcome *o);

struct sb_zygote; /* warm mode's interpreter holder: zygote.h */

/* The worker's ends of a sandbox's pipes. */
struct sb_parent_ends {
        int pidfd;        /* init's pidfd: readable once init (and so the namespace) is gone */
        int go_wr;
        int ready_rd;     /* warm: init writes one byte once the root is built */
        int script_wr;
        int stdout_rd, stderr_rd, result_rd, setup_err_rd, status_rd;
};


/* A sandbox made ahead of its script: namespaces, root, cgroup and confinement are in place
 * and the script's process is blocked reading its script. */
struct sb_prepared {
        bool active;     /* something to discard */
        bool executed;   /* its script has run: only sb_discard() is left */
        pid_t init;      /* our child */
        struct sb_parent_ends ends;
        struct sb_cgroup cg;
        struct sb_limits limits;
};

/* Prepares a sandbox under limits: cold (python3 is execve()d) when zygote is NULL, else
 * warm. 0, or -errno with err set (nothing to clean up then). */
int sb_prepare(const struct sb_limits *limits, struct sb_zygote *zygote, struct sb_prepared *p, char *err,
               size_t errlen);
/* Whether a prepared sandbox is still waiting (its init has not died meanwhile). */
bool sb_prepared_usable(const struct sb_prepared *p);
/* Kills what is left of a sandbox, waits until its PID namespace is gone and removes its
 * cgroup: for one that will not be used, and after every sb_execute(). */
void sb_discard(struct sb_prepared *p);

/* Runs script[0..len) in a prepared sandbox. 0: the script ran and *out says how it went (the
 * caller frees it with sb_outcome_free). -errno: the sandbox broke; err says which step and
 * why, and nothing of *out needs freeing. Either way every process of the sandbox has been
 * sent SIGKILL on return; the caller then calls sb_discard(), if it likes after answering. */
int sb_execute(struct sb_prepared *p, const char *script, size_t len, struct sb_outcome *out, char *err,
               size_t errlen);

/* sb_prepare() and sb_execute() in one call. */
int sb_run(const struct sb_limits *limits, struct sb_zygote *zygote, const char *script, size_t len,
           struct sb_outcome *out, char *err, size_t errlen);

/* Moves the calling process (a worker, before it starts its interpreters) into a network
 * namespace of its own, which its sandboxes then share one at a time instead of making one
 * each; the caller sets limits->share_caller_netns = 1 on success. See spawn.c for why that is
 * safe. Returns 0, or -errno with a message in err. */
int sb_network_private(char *err, size_t errlen);
/* socketpair(AF_UNIX, type) made where no sandbox sees it in /proc/net/unix: in the host's
 * network namespace once sb_network_private() has moved the caller out of it. 0 or -errno. */
int sb_socketpair_unseen(int type, int sv[2]);

/* Stops this process's init factory, the helper that clones every sandbox's init (initd.c);
 * the next sandbox starts a new one. For a process that is done making sandboxes for a while
 * and waits for all of its children (the pool's master after its start-up probe). */
void sb_initd_stop(void);

/* Whether requests get their own memory and pids cgroups on this machine (probed once per
 * process). When not, sandboxes run with rlimits alone and sb_cgroups_problem() says why. */
bool sb_cgroups_enabled(void);
const char *sb_cgroups_problem(void);
/* "v1", "v2" (the unified hierarchy) or "none": what the requests' cgroups are made with. */
const char *sb_cgroups_name(void);

/* Appends the API's JSON body for an outcome: {"result", "stdout"} on success, or {"error",
 * "stdout", "error_kind"[, "traceback"]}, plus "stdout_truncated" when output was dropped. */
int sb_outcome_to_json(const struct sb_outcome *o, struct sbuf *out);

#endif
