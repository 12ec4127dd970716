/* sandbox.h — the sandbox library's whole interface: run Python scripts in kernel sandboxes.
 *
 * Its users (the FastCGI worker in fcgi/, pyexec-run, the tests) see only this header, plus
 * the two small utility headers util.h (struct sbuf) and jsontext.h (JSON text).
 *
 *   config     one file (config/pyexec.conf) read into struct sb_config: the limits every
 *              sandbox runs under, where sandboxes come from, and the pool's own settings.
 *   provider   where sandboxes come from (provider.c): warm interpreters by tier, sandboxes
 *              prepared ahead of their script, cold fallback, the network namespace. A caller
 *              makes one, runs jobs through it, lets it refill while idle, and frees it.
 *   outcome    what a script did, and its JSON answer.
 *   errors     every error_kind of the API, with its HTTP status.
 *
 * How one sandbox is made — clone() into new user/PID/mount/IPC/UTS/cgroup (and network)
 * namespaces, a read-only root, rlimits, credentials, capabilities, no_new_privs and seccomp —
 * is internal (internal.h). Two kinds of failure never mix (as in isolate): a call returns
 * -errno when the sandbox itself broke — nothing of the script ran, the caller answers 5xx —
 * and returns 0 with out->status != SB_OK when the script ran and failed, which is a served
 * request. Error contract: 0 or -errno; nothing here exits or logs (events go to a hook). */
#ifndef PYEXEC_SANDBOX_H
#define PYEXEC_SANDBOX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "util.h"

/* ---- configuration ----------------------------------------------------------------------- */

/* What one sandbox runs under. */
struct sb_limits {
        unsigned wall_time_s;       /* the worker kills the sandbox after this */
        unsigned cpu_time_s;        /* RLIMIT_CPU, and the whole sandbox's CPU time (cgroup) */
        unsigned long memory_mb;    /* RLIMIT_AS (and the memory cgroup where available) */
        unsigned max_processes;     /* RLIMIT_NPROC, per sandbox */
        unsigned max_open_files;    /* RLIMIT_NOFILE */
        unsigned long tmp_size_mb;  /* tmpfs size= of /tmp, and RLIMIT_FSIZE */
        unsigned tmp_inodes;        /* tmpfs nr_inodes= of /tmp */
        size_t script_max_bytes;    /* after JSON decoding */
        size_t stdout_max_bytes;    /* kept; the rest is read and dropped */
        size_t result_max_bytes;    /* JSON text of main()'s return value */
        unsigned files_max_count;   /* files a request may send in ("files") */
        unsigned max_batch;         /* inputs one request may have ("inputs") */
        size_t files_max_bytes;     /* bytes of files (and, apart, of figures) an answer may carry */
        unsigned require_cgroups;   /* 1: no script runs where per-request cgroups cannot be made */
        unsigned uid_base;          /* first of the SB_ID_COUNT host uids/gids the sandboxes map to */
};

/* Where sandboxes come from (the provider). */
struct sb_supply {
        unsigned warm;              /* 1: fork scripts from a pre-initialised interpreter; 0: execve python3 */
        unsigned prefork;           /* 1: keep a sandbox ready for the next script, per tier */
        char warm_preload[256];     /* modules the warm interpreter imports up front */
        unsigned warm_tiers;        /* 1: also keep interpreters with each prefix of warm_preload */
        unsigned warm_rotate_s;     /* the pool starts its interpreters afresh this often; 0: never */
};

/* The FastCGI pool's own settings; the library only reads them from the file. */
struct sb_service {
        unsigned workers;           /* FastCGI workers in the pool */
        unsigned queue_slots;       /* requests that may wait for a worker (nginx limit_conn) */
        unsigned queue_timeout_ms;  /* a request that waited longer is answered 503 */
        size_t body_max_bytes;      /* the raw HTTP body */
        char api_keys_file[512];    /* "": none, code runs without a key; else an absolute path */
        unsigned key_rps, key_burst, key_concurrency; /* limits of a key that names none */
};

/* The whole file. The same file configures the pool and pyexec-run, so the sandbox a user
 * debugs with is the sandbox the service uses. */
struct sb_config {
        struct sb_limits limits;
        struct sb_supply supply;
        struct sb_service service;
};

/* The built-in defaults (the values shipped in config/pyexec.conf). */
void sb_config_default(struct sb_config *c);

/* Reads "key = value" lines ('#' comments) over *c. Unknown keys and bad values are errors:
 * a typo in a limit must not silently leave the default in force. Returns 0, or -errno with a
 * message in err (at least 256 bytes). */
int sb_config_load(struct sb_config *c, const char *path, char *err, size_t errlen);

/* Writes every setting as "key=value" lines, one per key of the file, in its order: what the
 * pool's scripts read instead of parsing the file a second time. 0 or -errno. */
int sb_config_print(const struct sb_config *c, FILE *out);

/* Every sandbox that can run at the same time as another maps its uid 0 and 1000 to host ids
 * of its own: uid_base + 2 * id_slot and the one after. The kernel keeps several budgets per
 * host uid (pipe buffers, descriptors in flight over unix sockets, epoll watches), and
 * sandboxes sharing one could drain each other's. A worker runs one script at a time, so its
 * pool slot is its id slot; the master's start-up probe and pyexec-run have slots of their own
 * (concurrent pyexec-runs share theirs). */
#define SB_ID_SLOTS 514
#define SB_ID_SLOT_PROBE 512
#define SB_ID_SLOT_RUN 513
#define SB_ID_COUNT (2 * SB_ID_SLOTS)

/* Refuses a uid_base whose SB_ID_COUNT ids meet a user or group of the host, or a subordinate
 * id range (a rootless container's, say) in etc_dir's passwd, group, subuid and subgid (normally
 * "/etc"): a sandbox must never share a host identity with anything else. 0, or -EEXIST with
 * the clash in err. */
int sb_limits_check_ids(const struct sb_limits *l, const char *etc_dir, char *err, size_t errlen);

/* ---- outcomes ---------------------------------------------------------------------------- */

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
        struct sbuf extras;      /* SB_OK: validated JSON members "files", "figures", ... (no braces) */
        int exit_code;           /* SB_EXITED */
        int term_signal;         /* SB_KILLED */
        long long wall_ms;       /* from clone() to the last pipe closing */
        long long cpu_ms;        /* user + system of every process of the script */
        long peak_rss_kb;        /* largest resident set of any one of its processes */
        char interpreter[272];   /* what ran it: "warm:numpy pandas", "warm:" or "cold" */
        bool batch;              /* SB_OK: result is the list of a batch's entries ("results") */
};

void sb_outcome_free(struct sb_outcome *o);

/* Appends the API's JSON body for an outcome: {"result", "stdout"} on success, or {"error",
 * "stdout", "error_kind"[, "traceback"]}, plus "stdout_truncated" when output was dropped (a
 * batch: {"results": [...], "stdout"});
 * then the extras the job asked for ("files", "figures", ...) and, with usage, "usage". */
int sb_outcome_to_json(const struct sb_outcome *o, bool usage, struct sbuf *out);

/* ---- the provider ------------------------------------------------------------------------ */

/* What a caller asks to be run. */
struct sb_job {
        const char *script;
        size_t script_len;
        /* What the runner does beside running the script: a JSON object on one line (no raw
         * newline; NULL: "{}") with any of "input" (main(input)), "files" (written into /tmp
         * first: path -> text or {"base64"}), "return_files" (glob patterns), "figures" ("png"
         * or "svg"). The caller has validated it (fcgi/request.c); the runner trusts its shape. */
        const char *options;
        bool extras;     /* the options ask for files or figures back: room for them */
        bool batch;      /* the options have "inputs": main(v) per input, the answer "results" */
        /* The limits this job runs under, each at most the provider's (sb_limits_within());
         * NULL: the provider's. */
        const struct sb_limits *limits;
        /* Streaming: called with each piece of output as it arrives (only what the output limit
         * keeps). A negative return ends the run at once (the sandbox is killed) and the run
         * returns -ECONNRESET: the client went away. NULL: no streaming. */
        int (*on_stdout)(void *ctx, const char *data, size_t len);
        void *stdout_ctx;
        /* Streaming: client_fd (the client's connection, with nothing more to read) is watched
         * too; once it ends, the run ends as when on_stdout says stop. */
        bool watch_client;
        int client_fd;
};

/* Whether every limit of l is at most the one of max. */
bool sb_limits_within(const struct sb_limits *l, const struct sb_limits *max);

/* What the provider tells its owner about, who may log or count it (detail says why). */
enum sb_event {
        SB_EVENT_WARM_UNAVAILABLE,  /* an interpreter would not start: its scripts run cold */
        SB_EVENT_WARM_FAILED,       /* a warm sandbox failed: this script runs cold */
        SB_EVENT_PREPARE_FAILED,    /* a sandbox for the next script could not be made ahead */
        SB_EVENT_NETNS_PER_SANDBOX, /* no private network namespace: each sandbox makes one */
};
typedef void (*sb_event_fn)(void *ctx, enum sb_event event, const char *detail);

struct sb_hub;

struct sb_provider_options {
        unsigned id_slot;        /* a pool's worker slot, SB_ID_SLOT_PROBE or SB_ID_SLOT_RUN */
        /* The pool's interpreters (sb_hub_new), inherited from the master; NULL: the provider
         * starts interpreters of its own (pyexec-run). */
        const struct sb_hub *hub;
        /* Move the caller into a network namespace of its own, which its sandboxes then share
         * one at a time instead of making one each (faster; see spawn.c for why it is safe).
         * Only for a caller that runs one script at a time and makes no connections. */
        bool private_network;
        sb_event_fn on_event;    /* may be NULL */
        void *event_ctx;
};

struct sb_provider;

/* A provider for cfg's limits and supply. Starts nothing yet: interpreters start when first
 * needed or at sb_provider_refill(). 0 with *out, or -errno with err set. */
int sb_provider_new(const struct sb_config *cfg, const struct sb_provider_options *o, struct sb_provider **out,
                    char *err, size_t errlen);

/* Runs a job in a sandbox — the one its tier keeps ready, else a new one (warm, or cold when
 * warm is off or fails). 0: the script ran and *out says how (the caller frees it with
 * sb_outcome_free). -errno: the sandbox broke; err says which step and why, and nothing of
 * *out needs freeing. Every process of the sandbox has been killed on return; what is left to
 * tear down waits for the next sb_provider_refill() or sb_provider_free(), so the caller can
 * answer first. */
int sb_provider_run(struct sb_provider *p, const struct sb_job *job, struct sb_outcome *out, char *err,
                    size_t errlen);

/* For idle time: tears down the last job's sandbox, restarts interpreters that died and, with
 * prefork, prepares each tier's next sandbox. It does not wait for an interpreter still
 * starting (the pool's largest tier takes seconds to import): that tier's sandbox comes at a
 * later refill, or with its first script, which waits for it. */
void sb_provider_refill(struct sb_provider *p);

/* Whether an interpreter is still starting: the caller refills again soon, not only after its
 * next job. */
bool sb_provider_starting(const struct sb_provider *p);

/* Stops everything the provider holds (its sandboxes die, their cgroups go) and frees it. */
void sb_provider_free(struct sb_provider *p);

/* Runs a known script once, cold, in a sandbox made with cfg: whether sandboxes work on this
 * machine. 0, or -errno with the reason in problem. Stops the caller's init factory
 * afterwards (a process that probes and then only waits for its children holds none). */
int sb_probe(const struct sb_config *cfg, char *problem, size_t len);

/* What a script finds installed, asked of a sandbox made with cfg (run once, cold, like the
 * probe; inventory.c): appends to json the JSON text {"python": "3.11.2", "packages": {"numpy":
 * "1.24.2", ...}} (lowercase distribution names; those not installed are left out). 0, or
 * -errno with the reason in err. Stops the caller's init factory afterwards, as sb_probe(). */
int sb_inventory(const struct sb_config *cfg, struct sbuf *json, char *err, size_t errlen);

/* ---- where the time goes ------------------------------------------------------------------ */

/* The phases of a sandbox's life, timed (wall clock) by the process that makes and runs it:
 * per-phase timings for /metrics, and for make bench's table of where a request's time goes. */
enum sb_phase {
        SB_PHASE_CGROUP_CREATE, /* making its cgroups and setting their limits */
        SB_PHASE_SPAWN_INIT,    /* cloning its init into new namespaces, moving it into the cgroups */
        SB_PHASE_ROOT,          /* init building the root and dropping privileges, until ready (warm) */
        SB_PHASE_INJECT,        /* the interpreter forking the script's process into it (warm) */
        SB_PHASE_RUN,           /* the job: script in, output and result out (the client waits) */
        SB_PHASE_TEARDOWN,      /* killing it and waiting until every process of it is gone */
        SB_PHASE_CGROUP_REMOVE, /* removing its cgroups */
        SB_PHASE_COUNT
};
extern const char *const sb_phase_names[SB_PHASE_COUNT];

/* Adds to us[] the microseconds this process spent in each phase since the last call. */
void sb_phases_take(uint64_t us[SB_PHASE_COUNT]);

/* ---- the pool's interpreters (hub.c) ------------------------------------------------------ */

/* One warm interpreter per tier of the supply, shared by the workers a pool's master forks
 * afterwards (each worker is served by a copy of its own). Starts them and returns at once;
 * they import in the background and workers that connect meanwhile wait. Nothing when cold. 0
 * with *out, or -errno with err set. */
int sb_hub_new(const struct sb_supply *s, struct sb_hub **out, char *err, size_t errlen);
/* Whether h (NULL: none) has the interpreters s asks for: a reload keeps it then. */
bool sb_hub_serves(const struct sb_hub *h, const struct sb_supply *s);
/* The workers' end of tier's door, or -1. */
int sb_hub_door(const struct sb_hub *h, int tier);
/* The master reaped pid: when it was one of h's interpreters, what that one preloaded (it is
 * started again by sb_hub_tick(), unless h is retired); else NULL. */
const char *sb_hub_reaped(struct sb_hub *h, pid_t pid);
/* Starts again the interpreters that died, each after its back-off. */
void sb_hub_tick(struct sb_hub *h);
/* Lets go of the doors: each interpreter ends when the last worker holding its door has gone
 * (workers forked afterwards must not hold them: fork them after this). */
void sb_hub_retire(struct sb_hub *h);
/* Whether none of h's interpreters runs any more. */
bool sb_hub_finished(const struct sb_hub *h);
/* In a child the master forked: closes the interpreters' ends of the doors, and the workers'
 * ends too unless keep_doors (a worker keeps them). */
void sb_hub_in_child(const struct sb_hub *h, bool keep_doors);
/* Kills h's interpreters (their workers' sandboxes die with them) and frees it. */
void sb_hub_free(struct sb_hub *h);

/* ---- the machine ------------------------------------------------------------------------- */

/* Whether requests get their own memory and pids cgroups on this machine (probed once per
 * process). When not, sandboxes run with rlimits alone and sb_cgroups_problem() says why. */
bool sb_cgroups_enabled(void);
const char *sb_cgroups_problem(void);
/* "v1", "v2" (the unified hierarchy) or "none": what the requests' cgroups are made with. */
const char *sb_cgroups_name(void);
/* Removes the cgroups left by sandboxes whose owner is gone (a worker killed with sandboxes
 * prepared, or one that left while idle). For the process that supervises the owners. */
void sb_cgroups_sweep(void);

/* ---- error kinds ------------------------------------------------------------------------- */

/* Room for every kind, and one more: the metrics keep a counter per kind (fcgi/stats.h). */
#define SB_ERROR_KINDS_MAX 47

struct sb_error_kind {
        const char *name;    /* the API's error_kind ("ok" for a success) */
        int status;          /* the HTTP status it is answered with */
        const char *message; /* the "error" text when it is always the same, else NULL */
};

/* The script's outcomes first, indexed by enum sb_status (all HTTP 200: a served request),
 * then the errors of the request itself (the worker's and nginx's). tests/test_error_kinds.py
 * holds nginx's pages, the sources and the README to this table (pyexec-worker
 * --print-error-kinds). */
extern const struct sb_error_kind sb_error_kinds[];
extern const size_t sb_error_kind_count;

/* Its position in sb_error_kinds, or -1 for a name that is not an error_kind. */
int sb_error_kind_index(const char *name);

/* Appends the shape every error answer has: {"error": message, "stdout": "", "error_kind":
 * kind}. 0 or -ENOMEM. */
int sb_error_json(const char *kind, const char *message, struct sbuf *out);

#endif
