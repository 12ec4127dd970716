/* internal.h — what the sandbox's own modules share; not part of the library's interface. */
#ifndef PYEXEC_SANDBOX_INTERNAL_H
#define PYEXEC_SANDBOX_INTERNAL_H

#include <stddef.h>
#include <sys/resource.h>

#include "cgroup.h"
#include "sandbox.h"

/* ---- one sandbox, from preparation to teardown (sandbox.c) -------------------------------- */

/* Where a sandbox sits on the host: the pair of host ids it maps to (SB_ID_SLOTS), and whether
 * it shares its caller's private network namespace (sb_network_private()) instead of making
 * one. Zero for the flag is the safe side on purpose. */
struct sb_placement {
        unsigned id_slot;
        bool share_caller_netns;
};

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
        bool warm;       /* its script's process is a fork of pyexec-zygote */
        bool extras;     /* its job asked for files or figures back (struct sb_job) */
        bool batch;      /* its job has many inputs (struct sb_job) */
        bool lowered;    /* its job's rlimits are below the sandbox's: the runner lowers its own */
        pid_t init;      /* our child */
        struct sb_parent_ends ends;
        struct sb_cgroup cg;
        struct sb_limits limits;
        struct sb_placement where;
};

struct sb_zygote;
/* Prepares a sandbox under limits: cold (python3 is execve()d) when zygote is NULL, else
 * warm, in the cgroups of slot (lent to it until sb_discard(); a warm sandbox needs one of its
 * tier's own, where its forker moves). 0, or -errno with err set (nothing to clean up then). */
int sb_prepare(const struct sb_limits *limits, const struct sb_placement *where, struct sb_zygote *zygote,
               struct sb_cgroup_slot *slot, struct sb_prepared *p, char *err, size_t errlen);
/* Whether a prepared sandbox is still waiting (its init has not died meanwhile). */
bool sb_prepared_usable(const struct sb_prepared *p);
/* Kills what is left of a sandbox, waits until its PID namespace is gone and removes its
 * cgroup: for one that will not be used, and after every sb_execute(). */
void sb_discard(struct sb_prepared *p);
/* Only the first half of sb_discard(): SIGKILL to init, no wait (no-op when not active). */
void sb_prepared_kill(struct sb_prepared *p);
/* Runs a job in a prepared sandbox. 0: the script ran and *out says how it went.
 * -errno: the sandbox broke; err says which step and why, and nothing of *out needs freeing.
 * Either way every process of the sandbox has been sent SIGKILL on return; the caller then
 * calls sb_discard(), if it likes after answering. */
int sb_execute(struct sb_prepared *p, const struct sb_job *job, struct sb_outcome *out, char *err, size_t errlen);

/* Runs job once in a cold sandbox of a provider of its own, made with cfg and freed again, then
 * stops the caller's init factory (sb_probe(), sb_inventory(): the master only waits for its
 * children afterwards). As sb_provider_run(). */
int sb_run_cold_once(const struct sb_config *cfg, const struct sb_job *job, struct sb_outcome *out, char *err,
                     size_t errlen);

/* Moves the calling process into a network namespace of its own, which its sandboxes then
 * share one at a time (struct sb_placement). 0, or -errno with a message in err. */
int sb_network_private(char *err, size_t errlen);
/* socketpair(AF_UNIX, type) made where no sandbox sees it in /proc/net/unix: in the host's
 * network namespace once sb_network_private() has moved the caller out of it. 0 or -errno. */
int sb_socketpair_unseen(int type, int sv[2]);

/* Stops this process's init factory, the helper that clones every sandbox's init (initd.c);
 * the next sandbox starts a new one. */
void sb_initd_stop(void);

/* Inside the sandbox the script runs as this uid/gid; init stays uid 0 without capabilities. */
#define SB_SCRIPT_UID 1000
#define SB_SCRIPT_GID 1000

/* Signals queued at once and POSIX timers, per sandbox (RLIMIT_SIGPENDING). */
#define SB_SIGPENDING_MAX 256

/* Descriptors the script's process is given (see runner.py). */
enum {
        SB_FD_RESULT = 3,
        SB_FD_SCRIPT = 4,
        SB_FD_SETUP_ERR = 5, /* CLOEXEC: closed by the exec (cold) or before the payload (warm) */
        SB_FD_FIRST_FREE,    /* everything from here on is closed */
};

/* The runner's Python source, embedded at build time (runner_blob.S). */
extern const char sb_runner_py[];

/* What runs in the script's process once it is confined: execve() of python3 (cold), or a
 * function of pyexec-zygote, whose fork the process is (warm: its initialised interpreter).
 * It must not return. */
typedef void (*sb_payload_fn)(const struct sb_limits *limits);

/* The script process's ends of a sandbox's pipes. */
struct sb_child_ends {
        int script_rd, stdout_wr, stderr_wr, result_wr;
        int setup_err_wr; /* CLOEXEC: a set-up failure is written here; EOF means the payload started */
        int status_wr;    /* the script's wait status and rusage are reported here when it ends */
};
void sb_child_ends_close(struct sb_child_ends *e);
/* Ends that hold no descriptor. */
#define SB_CHILD_ENDS_NONE \
        ((struct sb_child_ends){ .script_rd = -1, .stdout_wr = -1, .stderr_wr = -1, .result_wr = -1, .setup_err_wr = -1, \
                                 .status_wr = -1 })
#define SB_PARENT_ENDS_NONE \
        ((struct sb_parent_ends){ .pidfd = -1, .go_wr = -1, .ready_rd = -1, .script_wr = -1, .stdout_rd = -1, \
                                  .stderr_rd = -1, .result_rd = -1, .setup_err_rd = -1, .status_rd = -1 })

/* Everything a sandbox's init or script process needs; it lives in the parent's memory and
 * is copied into the child with the rest of the address space. */
struct sb_child_ctx {
        struct sb_limits limits;
        sb_payload_fn payload; /* NULL: execve python3 with the runner */
        bool inject;      /* warm: init forks no script process; pyexec-zygote injects one */
        int go_rd;        /* the worker writes one byte once maps and cgroup are in place */
        int ready_wr;     /* inject: init writes one byte here once the root is built */
        struct sb_child_ends ends;
};

/* Makes the pipes and clone()s init into new namespaces in the calling process. On success,
 * *pid is init and *ends the parent's ends (all CLOEXEC); init waits for the go byte. Cold
 * (inject false): init forks the script's process, which execve()s python3; the child ends
 * are closed here. Warm (inject true): init builds the root, says so on ready_rd and waits;
 * the child ends are left in *kept for pyexec-zygote, whose fork joins init's namespaces and
 * becomes the script's process (see zygote-main.c). 0, or -errno with err set. */
int sb_spawn_init(const struct sb_limits *limits, const struct sb_placement *where, bool inject, pid_t *pid, struct sb_parent_ends *ends,
                  struct sb_child_ends *kept, char *err, size_t errlen);
void sb_parent_ends_close(struct sb_parent_ends *ends);

/* A set-up step after clone() or fork() failed: its name and errno (either sign) go to the
 * set-up pipe, which the worker reads as "the sandbox broke", and the process leaves. */
__attribute__((noreturn)) void sb_setup_failed(const struct sb_child_ctx *c, const char *step, int err);

/* The script's process from its first step on: session, descriptors (ctx->ends become fds
 * 1-4), rlimits, credentials, no_new_privs, seccomp, then the payload. Never returns. */
__attribute__((noreturn)) void sb_script_process_main(struct sb_child_ctx *ctx);

/* What the parent of the script's process (init cold, pyexec-zygote warm) reports on the
 * status pipe once that process has ended. */
struct sb_init_report {
        int wait_status;
        struct rusage usage; /* the script's process and the children it reaped (cold: all init reaped) */
};

/* Blanks the calling process's command line and sets its name (comm). */
void sb_hide_identity(const char *name);

/* Fills envp (cap entries, NULL-terminated) with the script's scrubbed environment. */
#define SB_SCRIPT_ENV_MAX 24
void sb_build_script_env(char **envp, size_t cap);

/* Every sandbox's init is cloned by its caller's init factory: pyexec-init, a small static
 * program exec'd fresh (init-main.c, initd.c), so that init starts from memory that never held
 * a request (a copy of the worker held the bodies, scripts and outputs of its earlier requests,
 * and its environment). The factory clones with CLONE_PARENT, so init is the caller's child.
 * What the caller sends for each init, with these descriptors in this order: */
enum sb_init_slot {
        SB_INIT_GO,          /* struct sb_init_go arrives here once maps and cgroups are set */
        SB_INIT_SETUP_ERR,   /* why set-up failed; EOF when the payload started */
        SB_INIT_READY,       /* warm: one byte once the root is built */
        SB_INIT_STATUS,      /* cold: the script's end (struct sb_init_report) */
        SB_INIT_SCRIPT,      /* cold: the script process's ends */
        SB_INIT_STDOUT,
        SB_INIT_STDERR,
        SB_INIT_RESULT,
        SB_INIT_SLOTS,
};
struct sb_init_request {
        int clone_flags;     /* the namespaces */
        unsigned slots;      /* bit i: a descriptor for slot i follows, in slot order */
        int inject;          /* warm: the zygote's fork becomes the script's process */
};
struct sb_init_reply {
        int err;             /* 0 (init's pidfd follows), or the errno of clone() */
        pid_t pid;
};
/* The factory's descriptors. */
enum { SB_FACTORY_CONTROL_FD = 3, SB_FACTORY_SECCOMP_FD = 4 };

/* The go message: the worker has written the id maps and moved init into its cgroups. */
struct sb_init_go {
        char go;
        struct sb_limits limits;
};

/* Asks this process's init factory (started on first use, and again in a forked child) for an
 * init in new namespaces (flags) with the descriptors of fds[SB_INIT_SLOTS] (-1: none). 0 with
 * *pid and *pidfd, or -errno with err set. */
int sb_initd_clone(int flags, bool inject, const int *fds, pid_t *pid, int *pidfd, char *err, size_t errlen);

/* init's work, from its first instruction in the sandbox (child.c); never returns. */
__attribute__((noreturn)) void sb_init_main(struct sb_child_ctx *ctx);

/* Builds the sandbox's root file system and pivots into it (mounts.c). Called by init as uid
 * 0 of the new user namespace. 0, or -errno with the failing step in err. */
int sb_setup_root(const struct sb_limits *limits, char *err, size_t errlen);
/* In the init factory, once: the template every init's root is bound from (mounts.c). 0, or
 * -errno with why set, and then each init builds its root itself. */
int sb_root_template_prepare(char *why, size_t whylen);

/* Compiles the seccomp filter once per process (seccomp.c); the sandboxes it clones inherit
 * the program. 0 or -errno. */
int sb_seccomp_compile(void);
/* Installs the compiled filter on the calling thread; no_new_privs must be set. 0 or -errno. */
int sb_seccomp_install(void);
/* Loads a compiled program from the memfd fd, which it keeps (seccomp-bpf.c). 0 or -errno. */
int sb_seccomp_load(int fd);
/* The memfd of the compiled program, or -1 before sb_seccomp_compile()/sb_seccomp_load(). */
int sb_seccomp_program_fd(void);

#endif
