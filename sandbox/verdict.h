/* verdict.h — what the parent collected from a run, and the decision made from it. */
#ifndef PYEXEC_VERDICT_H
#define PYEXEC_VERDICT_H

#include <stdbool.h>

#include "sandbox.h"

struct sb_run_facts {
        struct sb_outcome *out;  /* stdout/stderr already filled in by the collector */
        struct sbuf frame;       /* the result channel's bytes */
        struct sbuf setup_err;   /* non-empty: the sandbox broke */
        struct sbuf status;      /* init's struct sb_init_report */
        bool frame_overflowed;
        bool deadline_hit;       /* the worker killed the sandbox at the wall-clock limit */
        bool cpu_limit_hit;      /* ... or when all its processes together used up the CPU limit */
        bool oom_killed;         /* the memory cgroup's OOM killer fired */
        long long cgroup_peak;   /* the memory cgroup's peak use in bytes, -1 if unknown */
        long long cgroup_cpu_ms; /* CPU time of all the request's processes, -1 if unknown */
};

/* Sets out->status, message, traceback, result and usage from the facts. */
void sb_decide(const struct sb_limits *l, struct sb_run_facts *facts);

/* A frame is a tag byte and a usage line ("R<cpu_ms> <peak_rss_kb>\n", or with the length
 * of the extras that come first "R<cpu_ms> <peak_rss_kb> <n>\n"), at most this long, then
 * JSON: main()'s value (at most result_max_bytes) or an error object, which the runner
 * keeps under SB_ERROR_FRAME_MAX whatever the result limit (runner.py, ERROR_TEXT_MAX: two
 * texts of 64 KiB, each byte escaped to 6 at worst). */
#define SB_FRAME_HEADER_MAX 64
#define SB_ERROR_FRAME_MAX (1 << 20)

/* The bytes of the result channel worth keeping: the largest frame the runner may write, with
 * room for extras when the job asked for files or figures back. */
size_t sb_frame_max(const struct sb_limits *l, bool extras, bool batch);
/* The most an R frame's extras (files, figures) may take. */
size_t sb_extras_max(const struct sb_limits *l);

/* Bytes of memory past which a process counts as at its limit (16 MiB short of memory_mb:
 * what fails near it may fail as anything): the verdict's rule, and the runner's (sent with the
 * job). */
long long sb_memory_ceiling(const struct sb_limits *l);

/* "Script execution timed out (N seconds)": the verdict's, and a batch entry's (runner.py
 * gets it with its job). Returns buf. */
const char *sb_timeout_text(unsigned seconds, char *buf, size_t len);

/* A signal's name as kill -l gives it, with the SIG prefix: "SIGSEGV", "SIGRTMIN+3",
 * "SIGRTMAX-1"; "SIG<n>" for a number without a name. */
#define SB_SIGNAME_MAX 16
void sb_signal_name(int sig, char *buf, size_t len);

#endif
